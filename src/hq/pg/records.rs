//! How a record maps onto PostgreSQL: one table per record kind with the common columns (site, device, business
//! and corrected times, receive times, skew, clock flag), the kind's key columns and the merged record as `bytea`.
//! Reads a record back ([`stored_from_row`]), writes one ([`write_record`]) or many of a kind in one statement
//! ([`write_records`], `UNNEST` arrays), and reads many under their row locks ([`locked_records`]). What to write
//! (the merge, the admission checks) is the push batch's business (`push.rs`).

use chrono::{DateTime, NaiveDate, Utc};
use guidedesk_sync::codec;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::copy::{CopyRows, copy_in, is_unique_violation};
use super::{label, ms_u, ts, ts_u, uuid_of};
use crate::hq::rows::{HqError, StoredRecord};
use crate::model::{AnyRecord, RecordKind};

/// A key column value of a record kind's table.
enum Col {
    Text(Option<String>),
    Bool(bool),
    Int(i64),
    Id(Option<Uuid>),
    Date(Option<NaiveDate>),
    Time(Option<DateTime<Utc>>),
}

/// The table and key columns of a record kind.
pub(super) fn table(kind: RecordKind) -> (&'static str, &'static [&'static str]) {
    match kind {
        RecordKind::Arrival => ("arrivals", &["department", "visit_type", "channel", "priority"]),
        RecordKind::Consultation => ("consultations", &["channel", "referred_department", "arrival"]),
        RecordKind::Feedback => ("feedback", &["overall", "complete", "survey_version"]),
        RecordKind::Case => ("cases", &["grade", "status", "channel", "assigned_department", "closed_at"]),
        RecordKind::FollowupTask => ("followup_tasks", &["status", "department", "due_to"]),
        RecordKind::CallAttempt => ("call_attempts", &["task", "outcome", "worrying"]),
        RecordKind::Audit => ("audit_entries", &["actor", "action", "target_kind", "target_id", "chain_index"]),
        RecordKind::CallClaim => ("call_claims", &["task", "claimed_by", "released"]),
        RecordKind::Appointment => {
            ("appointments", &["kind", "status", "channel", "department", "doctor", "day", "session"])
        }
        RecordKind::ShiftLog => ("shift_logs", &["kind", "author", "day", "shift"]),
    }
}

/// The key column values of a record, in the order of [`table`].
fn key_columns(r: &AnyRecord) -> Vec<Col> {
    match r {
        AnyRecord::Arrival(a) => vec![
            Col::Text(Some(a.department.value.clone())),
            Col::Text(label(&a.visit_type)),
            Col::Text(label(&a.channel)),
            Col::Text(label(&a.priority)),
        ],
        AnyRecord::Consultation(c) => vec![
            Col::Text(label(&c.channel)),
            Col::Text(c.referred_department.clone()),
            Col::Id(c.arrival.value.map(|a| a.0)),
        ],
        AnyRecord::Feedback(f) => {
            vec![Col::Text(label(&f.overall)), Col::Bool(f.complete), Col::Int(i64::from(f.survey_version))]
        }
        AnyRecord::Case(c) => vec![
            Col::Text(label(&c.grade.value)),
            Col::Text(label(&c.status.value.status)),
            Col::Text(label(&c.channel)),
            Col::Text(c.assigned_department.value.clone()),
            Col::Time(c.closed_at.value.map(|m| ts(m.0))),
        ],
        AnyRecord::FollowupTask(t) => {
            vec![Col::Text(label(&t.status.value)), Col::Text(t.department.clone()), Col::Date(Some(t.due_to))]
        }
        AnyRecord::CallAttempt(c) => {
            vec![Col::Id(Some(c.task.0)), Col::Text(label(&c.outcome)), Col::Bool(c.worrying)]
        }
        AnyRecord::Audit(a) => vec![
            Col::Text(Some(a.actor.0.clone())),
            Col::Text(Some(a.action.key().to_string())),
            Col::Text(a.target.map(|t| t.kind.name().to_string())),
            Col::Id(a.target.map(|t| t.id.0)),
            Col::Int(i64::try_from(a.chain_index).unwrap_or(i64::MAX)),
        ],
        AnyRecord::CallClaim(c) => {
            vec![Col::Id(Some(c.task.0)), Col::Text(Some(c.by.0.clone())), Col::Bool(c.released)]
        }
        AnyRecord::Appointment(a) => vec![
            Col::Text(Some(a.kind.key().to_string())),
            Col::Text(Some(a.status().key().to_string())),
            Col::Text(Some(a.channel.key().to_string())),
            Col::Text(Some(a.department.clone())),
            Col::Text(a.doctor.clone()),
            Col::Date(Some(a.day)),
            Col::Text(Some(a.session.key().to_string())),
        ],
        AnyRecord::ShiftLog(l) => vec![
            Col::Text(Some(l.kind.key().to_string())),
            Col::Text(Some(l.by.0.clone())),
            Col::Date(Some(l.day)),
            Col::Text(l.shift.map(|s| s.key().to_string())),
        ],
    }
}

fn bind_col(q: Query<'_, Postgres, PgArguments>, c: Col) -> Query<'_, Postgres, PgArguments> {
    match c {
        Col::Text(v) => q.bind(v),
        Col::Bool(v) => q.bind(v),
        Col::Int(v) => q.bind(v),
        Col::Id(v) => q.bind(v),
        Col::Date(v) => q.bind(v),
        Col::Time(v) => q.bind(v),
    }
}

pub(super) const COMMON: &str =
    "site, device, occurred_at, corrected_at, first_received_at, updated_at, skew_ms, clock_flagged";

/// `INSERT … ON CONFLICT`: `DO UPDATE` for a merged record read under its row lock, `DO NOTHING` for a new one (a
/// concurrent insert of the same id by another device then shows as no row written, and the merge is redone).
fn upsert_sql(kind: RecordKind, new: bool) -> String {
    let (t, keys) = table(kind);
    let mut cols = vec!["id".to_string()];
    cols.extend(COMMON.split(", ").map(str::to_string));
    cols.extend(keys.iter().map(|k| (*k).to_string()));
    cols.push("record".into());
    let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    let updates: Vec<String> = cols[1..].iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
    let action = if new { "NOTHING".to_string() } else { format!("UPDATE SET {}", updates.join(", ")) };
    format!("INSERT INTO {t} ({}) VALUES ({}) ON CONFLICT (id) DO {action}", cols.join(", "), params.join(", "))
}

pub(super) fn stored_from_row(row: &PgRow) -> Result<StoredRecord, HqError> {
    let device: Uuid = row.try_get("device")?;
    let bytes: Vec<u8> = row.try_get("record")?;
    Ok(StoredRecord {
        device: device.as_u128(),
        site: row.try_get("site")?,
        first_received_ms: ms_u(row.try_get("first_received_at")?),
        updated_ms: ms_u(row.try_get("updated_at")?),
        skew_ms: row.try_get("skew_ms")?,
        clock_flagged: row.try_get("clock_flagged")?,
        record: decode_record(&bytes)?,
    })
}

fn decode_record(bytes: &[u8]) -> Result<AnyRecord, HqError> {
    Ok(codec::decode(bytes)?)
}

/// Writes a record; whether a row was written (`false` only for a new record whose id another transaction took).
pub(super) async fn write_record(
    tx: &mut Transaction<'static, Postgres>,
    s: &StoredRecord,
    new: bool,
) -> Result<bool, HqError> {
    let kind = s.record.kind();
    let sql = upsert_sql(kind, new);
    let mut q = sqlx::query(&sql)
        .bind(s.record.id().0)
        .bind(&s.site)
        .bind(uuid_of(s.device))
        .bind(ts(s.record.occurred_at().0))
        .bind(ts(s.corrected_business_ms()))
        .bind(ts_u(s.first_received_ms))
        .bind(ts_u(s.updated_ms))
        .bind(s.skew_ms)
        .bind(s.clock_flagged);
    for c in key_columns(&s.record) {
        q = bind_col(q, c);
    }
    q = q.bind(codec::encode(&s.record)?);
    Ok(q.execute(&mut **tx).await?.rows_affected() > 0)
}

/// One column of many rows of a record kind's table, bound as one array (`UNNEST($n::type[])`).
enum ColArray {
    Text(Vec<Option<String>>),
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Id(Vec<Option<Uuid>>),
    Date(Vec<Option<NaiveDate>>),
    Time(Vec<Option<DateTime<Utc>>>),
}

impl ColArray {
    /// An empty column of the same type as `c`.
    fn like(c: &Col, rows: usize) -> ColArray {
        match c {
            Col::Text(_) => ColArray::Text(Vec::with_capacity(rows)),
            Col::Bool(_) => ColArray::Bool(Vec::with_capacity(rows)),
            Col::Int(_) => ColArray::Int(Vec::with_capacity(rows)),
            Col::Id(_) => ColArray::Id(Vec::with_capacity(rows)),
            Col::Date(_) => ColArray::Date(Vec::with_capacity(rows)),
            Col::Time(_) => ColArray::Time(Vec::with_capacity(rows)),
        }
    }

    fn push(&mut self, c: Col) -> Result<(), HqError> {
        match (self, c) {
            (ColArray::Text(a), Col::Text(v)) => a.push(v),
            (ColArray::Bool(a), Col::Bool(v)) => a.push(v),
            (ColArray::Int(a), Col::Int(v)) => a.push(v),
            (ColArray::Id(a), Col::Id(v)) => a.push(v),
            (ColArray::Date(a), Col::Date(v)) => a.push(v),
            (ColArray::Time(a), Col::Time(v)) => a.push(v),
            _ => return Err(HqError::Refused("records of one kind gave key columns of different types".into())),
        }
        Ok(())
    }

    fn pg_type(&self) -> &'static str {
        match self {
            ColArray::Text(_) => "text[]",
            ColArray::Bool(_) => "bool[]",
            ColArray::Int(_) => "int8[]",
            ColArray::Id(_) => "uuid[]",
            ColArray::Date(_) => "date[]",
            ColArray::Time(_) => "timestamptz[]",
        }
    }

    fn bind(self, q: Query<'_, Postgres, PgArguments>) -> Query<'_, Postgres, PgArguments> {
        match self {
            ColArray::Text(v) => q.bind(v),
            ColArray::Bool(v) => q.bind(v),
            ColArray::Int(v) => q.bind(v),
            ColArray::Id(v) => q.bind(v),
            ColArray::Date(v) => q.bind(v),
            ColArray::Time(v) => q.bind(v),
        }
    }
}

/// The many-row form of [`upsert_sql`]: one `INSERT … SELECT FROM UNNEST(…)` for every record of a kind in a batch,
/// with the same `ON CONFLICT` rule; a new records' insert returns the ids it wrote.
fn bulk_upsert_sql(kind: RecordKind, new: bool, key_types: &[&str]) -> String {
    let (t, keys) = table(kind);
    let mut cols = vec!["id".to_string()];
    cols.extend(COMMON.split(", ").map(str::to_string));
    cols.extend(keys.iter().map(|k| (*k).to_string()));
    cols.push("record".into());
    let mut types = vec!["uuid[]", "text[]", "uuid[]", "timestamptz[]", "timestamptz[]", "timestamptz[]"];
    types.extend(["timestamptz[]", "int8[]", "bool[]"]);
    types.extend(key_types);
    types.push("bytea[]");
    let params: Vec<String> = types.iter().enumerate().map(|(i, ty)| format!("${}::{ty}", i + 1)).collect();
    let updates: Vec<String> = cols[1..].iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
    let action = if new { "NOTHING RETURNING id".to_string() } else { format!("UPDATE SET {}", updates.join(", ")) };
    format!(
        "INSERT INTO {t} ({}) SELECT * FROM UNNEST({}) ON CONFLICT (id) DO {action}",
        cols.join(", "),
        params.join(", ")
    )
}

/// Writes records of one kind (distinct ids) in one statement; the ids written (for new records, those whose id no
/// other transaction took meanwhile; for merged ones, all of them).
pub(super) async fn write_records(
    tx: &mut Transaction<'static, Postgres>,
    kind: RecordKind,
    recs: &[&StoredRecord],
    new: bool,
) -> Result<Vec<u128>, HqError> {
    let Some(first) = recs.first() else { return Ok(Vec::new()) };
    let n = recs.len();
    let mut keys: Vec<ColArray> = key_columns(&first.record).iter().map(|c| ColArray::like(c, n)).collect();
    let (mut ids, mut sites, mut devices) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut occurred, mut corrected) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut first_rx, mut updated) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut skews, mut flagged, mut bodies) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for s in recs {
        ids.push(s.record.id().0);
        sites.push(s.site.as_str());
        devices.push(uuid_of(s.device));
        occurred.push(ts(s.record.occurred_at().0));
        corrected.push(ts(s.corrected_business_ms()));
        first_rx.push(ts_u(s.first_received_ms));
        updated.push(ts_u(s.updated_ms));
        skews.push(s.skew_ms);
        flagged.push(s.clock_flagged);
        let cols = key_columns(&s.record);
        if cols.len() != keys.len() {
            return Err(HqError::Refused("records of one kind gave different numbers of key columns".into()));
        }
        for (a, c) in keys.iter_mut().zip(cols) {
            a.push(c)?;
        }
        bodies.push(codec::encode(&s.record)?);
    }
    let key_types: Vec<&str> = keys.iter().map(ColArray::pg_type).collect();
    let sql = bulk_upsert_sql(kind, new, &key_types);
    let mut q = sqlx::query(&sql)
        .bind(&ids)
        .bind(&sites)
        .bind(&devices)
        .bind(&occurred)
        .bind(&corrected)
        .bind(&first_rx)
        .bind(&updated)
        .bind(&skews)
        .bind(&flagged);
    for a in keys {
        q = a.bind(q);
    }
    q = q.bind(&bodies);
    if new {
        let rows = q.fetch_all(&mut **tx).await?;
        rows.iter().map(|r| Ok(r.try_get::<Uuid, _>("id")?.as_u128())).collect()
    } else {
        let written = q.execute(&mut **tx).await?.rows_affected();
        if written != n as u64 {
            return Err(HqError::Refused(format!("{written} of {n} merged records were written")));
        }
        Ok(ids.iter().map(Uuid::as_u128).collect())
    }
}

/// `COPY` into a record kind's table, the columns in [`upsert_sql`]'s order.
fn copy_sql(kind: RecordKind) -> String {
    let (t, keys) = table(kind);
    format!("COPY {t} (id, {COMMON}, {}, record) FROM STDIN (FORMAT binary)", keys.join(", "))
}

/// One record as a row of [`copy_sql`].
pub(super) fn copy_record(rows: &mut CopyRows, s: &StoredRecord) -> Result<(), HqError> {
    let keys = key_columns(&s.record);
    rows.row(i16::try_from(keys.len() + 10).unwrap_or(i16::MAX));
    rows.uuid(s.record.id().as_u128())?;
    rows.text(Some(&s.site))?;
    rows.uuid(s.device)?;
    rows.time(s.record.occurred_at().0)?;
    rows.time(s.corrected_business_ms())?;
    rows.time_u(s.first_received_ms)?;
    rows.time_u(s.updated_ms)?;
    rows.int8(s.skew_ms)?;
    rows.bool(s.clock_flagged)?;
    for c in keys {
        match c {
            Col::Text(v) => rows.text(v.as_deref())?,
            Col::Bool(v) => rows.bool(v)?,
            Col::Int(v) => rows.int8(v)?,
            Col::Id(v) => rows.opt_uuid(v.map(|u| u.as_u128()))?,
            Col::Date(v) => rows.date(v)?,
            Col::Time(v) => match v {
                Some(t) => rows.time(t.timestamp_millis())?,
                None => rows.null(),
            },
        }
    }
    rows.bytes(&codec::encode(&s.record)?)
}

/// Copies new records of one kind into its table (distinct ids, read as absent under the batch's locks), each
/// item encoded by `encode` ([`copy_record`], or nothing for an item that makes no record) as it is streamed.
/// `false` when another transaction inserted one of the ids meanwhile: the copy is then undone (to a savepoint),
/// and the caller inserts the records with [`write_records`], which leaves out the ids taken.
pub(super) async fn copy_new_records<T>(
    tx: &mut Transaction<'static, Postgres>,
    kind: RecordKind,
    items: impl IntoIterator<Item = T>,
    encode: impl FnMut(&mut CopyRows, T) -> Result<(), HqError>,
) -> Result<bool, HqError> {
    let mut items = items.into_iter().peekable();
    if items.peek().is_none() {
        return Ok(true);
    }
    sqlx::query("SAVEPOINT new_records").execute(&mut **tx).await?;
    match copy_in(tx, &copy_sql(kind), items, encode).await {
        Ok(_) => {
            sqlx::query("RELEASE SAVEPOINT new_records").execute(&mut **tx).await?;
            Ok(true)
        }
        Err(e) if is_unique_violation(&e) => {
            sqlx::query("ROLLBACK TO SAVEPOINT new_records").execute(&mut **tx).await?;
            sqlx::query("RELEASE SAVEPOINT new_records").execute(&mut **tx).await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Reads records of one kind under their row locks (`FOR UPDATE`), by id.
pub(super) async fn locked_records(
    tx: &mut Transaction<'static, Postgres>,
    kind: RecordKind,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<u128, StoredRecord>, HqError> {
    let (t, _) = table(kind);
    let rows = sqlx::query(&format!("SELECT id, {COMMON}, record FROM {t} WHERE id = ANY($1) ORDER BY id FOR UPDATE"))
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
    let mut out = std::collections::HashMap::with_capacity(rows.len());
    for r in &rows {
        let id: Uuid = r.try_get("id")?;
        out.insert(id.as_u128(), stored_from_row(r)?);
    }
    Ok(out)
}
