//! Bulk inserts through `COPY … FROM STDIN (FORMAT binary)`: a push batch's new records, their feed positions and
//! its receipts. `COPY` writes whole heap pages at a time (one WAL record a page instead of one a row, no
//! speculative insertion, no `UNNEST` of parameter arrays), and the rows are streamed in chunks as they are encoded,
//! so PostgreSQL inserts one chunk while the next is being built.
//!
//! [`CopyRows`] writes PostgreSQL's binary copy format; [`copy_in`] streams rows into a table.

use chrono::{Datelike, NaiveDate};
use sqlx::{Postgres, Transaction};

use super::ts;
use crate::hq::rows::HqError;

/// The binary copy header: signature, flags, header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// PostgreSQL's epoch (2000-01-01 UTC) in Unix milliseconds.
const PG_EPOCH_MS: i64 = 946_684_800_000;

/// PostgreSQL's epoch as a day number of the proleptic Gregorian calendar (`NaiveDate::num_days_from_ce`).
const PG_EPOCH_DAYS_CE: i32 = 730_120;

/// A chunk is sent to the server once it holds this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;

/// Rows in PostgreSQL's binary `COPY` format, sent in chunks.
#[derive(Debug)]
pub(super) struct CopyRows {
    buf: Vec<u8>,
    rows: u64,
}

impl CopyRows {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
        buf.extend_from_slice(HEADER);
        CopyRows { buf, rows: 0 }
    }

    /// Starts a row of `fields` fields.
    pub(super) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
    }

    fn field(&mut self, bytes: &[u8]) -> Result<(), HqError> {
        let len = i32::try_from(bytes.len()).map_err(|_| HqError::Refused("a value is too large to store".into()))?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// SQL `NULL`.
    pub(super) fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// A `uuid`.
    pub(super) fn uuid(&mut self, v: u128) -> Result<(), HqError> {
        self.field(&v.to_be_bytes())
    }

    /// A nullable `uuid`.
    pub(super) fn opt_uuid(&mut self, v: Option<u128>) -> Result<(), HqError> {
        if let Some(v) = v {
            self.uuid(v)
        } else {
            self.null();
            Ok(())
        }
    }

    /// A `text` (nullable).
    pub(super) fn text(&mut self, v: Option<&str>) -> Result<(), HqError> {
        if let Some(s) = v {
            self.field(s.as_bytes())
        } else {
            self.null();
            Ok(())
        }
    }

    /// A `bytea`.
    pub(super) fn bytes(&mut self, v: &[u8]) -> Result<(), HqError> {
        self.field(v)
    }

    /// A `bigint`.
    pub(super) fn int8(&mut self, v: i64) -> Result<(), HqError> {
        self.field(&v.to_be_bytes())
    }

    /// A `smallint`.
    pub(super) fn int2(&mut self, v: i16) -> Result<(), HqError> {
        self.field(&v.to_be_bytes())
    }

    /// A `boolean`.
    pub(super) fn bool(&mut self, v: bool) -> Result<(), HqError> {
        self.field(&[u8::from(v)])
    }

    /// A `timestamptz` from Unix milliseconds, clamped to the range every other write uses (`pg::ts`).
    pub(super) fn time(&mut self, ms: i64) -> Result<(), HqError> {
        let ms = ts(ms).timestamp_millis();
        self.field(&((ms - PG_EPOCH_MS) * 1000).to_be_bytes())
    }

    /// A `timestamptz` from Unix milliseconds as received (`u64`).
    pub(super) fn time_u(&mut self, ms: u64) -> Result<(), HqError> {
        self.time(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// A nullable `date`.
    pub(super) fn date(&mut self, v: Option<NaiveDate>) -> Result<(), HqError> {
        if let Some(d) = v {
            self.field(&(d.num_days_from_ce() - PG_EPOCH_DAYS_CE).to_be_bytes())
        } else {
            self.null();
            Ok(())
        }
    }

    /// The bytes encoded so far (for a chunk), leaving an empty buffer.
    fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES + 4096))
    }
}

/// Streams `items` into a table with `statement` (`COPY t (…) FROM STDIN (FORMAT binary)`), encoding each with
/// `encode` (which starts its row with [`CopyRows::row`]); the number of rows written. An encoding error ends the
/// copy (the transaction is then aborted, and the batch with it).
pub(super) async fn copy_in<T>(
    tx: &mut Transaction<'static, Postgres>,
    statement: &str,
    items: impl IntoIterator<Item = T>,
    mut encode: impl FnMut(&mut CopyRows, T) -> Result<(), HqError>,
) -> Result<u64, HqError> {
    let mut copy = tx.copy_in_raw(statement).await?;
    let mut rows = CopyRows::new();
    for item in items {
        if let Err(e) = encode(&mut rows, item) {
            copy.abort(e.to_string()).await.ok();
            return Err(e);
        }
        if rows.buf.len() >= CHUNK_BYTES {
            copy.send(rows.take()).await?;
        }
    }
    rows.buf.extend_from_slice(&(-1i16).to_be_bytes());
    let sent = rows.rows;
    copy.send(rows.take()).await?;
    let written = copy.finish().await?;
    if written != sent {
        return Err(HqError::Refused(format!("{written} of {sent} rows were copied")));
    }
    Ok(written)
}

/// Whether a database error is a unique-key violation (SQLSTATE 23505).
pub(super) fn is_unique_violation(e: &HqError) -> bool {
    matches!(e, HqError::Database(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_as_postgresql_receives_them() {
        let mut r = CopyRows::new();
        assert_eq!(r.buf, HEADER);
        assert_eq!(HEADER.len(), 19);
        r.buf.clear();
        r.row(3);
        r.time(PG_EPOCH_MS + 1).unwrap();
        r.date(NaiveDate::from_ymd_opt(2000, 1, 2)).unwrap();
        r.text(None).unwrap();
        let mut want = vec![0, 3];
        want.extend_from_slice(&8i32.to_be_bytes());
        want.extend_from_slice(&1000i64.to_be_bytes());
        want.extend_from_slice(&4i32.to_be_bytes());
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(r.buf, want);
        assert_eq!(r.rows, 1);
        r.buf.clear();
        r.date(NaiveDate::from_ymd_opt(1999, 12, 31)).unwrap();
        assert_eq!(&r.buf[4..], &(-1i32).to_be_bytes());
        r.buf.clear();
        r.uuid(0x0102).unwrap();
        assert_eq!(r.buf.len(), 4 + 16);
        assert_eq!(&r.buf[18..], &[1, 2]);
    }
}
