//! The kiosk's durable store on redb: one file in the data directory.
//!
//! - **Records** live in one typed table per kind, encoded by [`crate::model::codec`] (a schema-version prefix, then
//!   [`guidedesk_sync::codec`]) and sealed with the store key ([`crypto`]).
//! - **Secondary indexes** (see [`tables`]) are maintained in the same write transaction as the record, so they are
//!   never out of step with it; [`Store::check`] recomputes them from the records to prove it.
//! - **Transactional outbox**: every record write appends one [`Op`] with the next gap-free per-device sequence
//!   number, in the same durably committed transaction. No code path writes a record without its op.
//! - **HLC**: the last stamp issued is persisted with every write, so stamps never go back, even across restarts
//!   with a wrong wall clock.
//! - **Reference data** is written only by [`Store::apply_reference`] (sync pull, or the bundled default at first
//!   start).
//!
//! All writes go through [`Store::write`], which hands a [`WriteCtx`] to a closure: either everything the closure
//! did commits durably, or nothing does.
//!
//! The store is split into rooms, each an `impl Store` block with one job:
//!
//! - `clock.rs`: [`Clock`]s and [`StoreOptions`];
//! - `open.rs`: opening, identity checks, key resolution, migrations at open, reference data loading;
//! - `keys.rs`: the key in use, values sealed outside the store, key rotation;
//! - `write.rs`: [`Store::write`], [`WriteCtx`] and index maintenance;
//! - `query.rs`: the read queries and [`Stats`];
//! - `outbox.rs`: outbox reads, acknowledgements, pruning, pull cursors, applying reference data;
//! - `verify.rs`: [`Store::check`], chain verification, rebuilding indexes;
//! - `accounts.rs`: this kiosk's own staff accounts;
//! - `backlog.rs`: the phone and name index entries of a catch-up, held in memory and settled in key order;
//! - `lockout.rs`, `backup.rs`, `retention.rs`, `migrate.rs`, `crypto.rs`, `tables.rs`, `faults.rs` as named.
//!
//! This file holds the [`Store`] struct, its plain accessors and the helpers every room shares (reading `meta`
//! values, opening sealed records and ops). The record codec itself is [`crate::model::codec`].

mod accounts;
mod backlog;
pub mod backup;
mod clock;
pub mod crypto;
mod error;
pub mod faults;
mod keys;
mod lockout;
pub mod migrate;
mod open;
mod outbox;
mod query;
mod replica;
pub mod retention;
pub mod tables;
mod verify;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{FixedOffset, NaiveDate};
use guidedesk_sync::{DeviceId, Hlc, HlcClock, Op, codec};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableHandle as _};

pub use clock::{Clock, ManualClock, StoreOptions, SystemClock, china_offset};
use crypto::{Keys, outbox_place, record_place};
pub use error::{OpenError, StoreError};
pub(crate) use keys::reseal_staff_in;
pub use migrate::STORE_SCHEMA;
pub use query::Stats;
pub use replica::{ByOrigin, PreparedRemote, RemoteApplied, RemoteItem, RemoteOutcome, RemoteRecord, ReplicaOrigin};
pub use verify::{ChainProblem, rebuild_indexes_in};
pub use write::WriteCtx;

/// The record codec, re-exported for the callers that knew it here (HQ moves to [`crate::model::codec`]).
pub use crate::model::codec::{decode_any, decode_op_payload};
use crate::model::codec::{decode_record, encode_any};
use crate::model::{AnyRecord, Moment, Record, RecordKind, ReferenceData};
use tables::meta;

/// The store's file name inside the data directory.
pub const FILE_NAME: &str = "guidedesk.redb";

/// The `reference` key of the reference-data snapshot.
pub(crate) const REFERENCE_SNAPSHOT: &str = "snapshot";

/// The kiosk store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
    device: DeviceId,
    clock: Arc<dyn Clock>,
    offset: FixedOffset,
    hlc: Mutex<HlcClock>,
    reference: RwLock<Arc<ReferenceData>>,
    keys: RwLock<Arc<Keys>>,
    key_path: PathBuf,
    /// Decoded arrivals of the day last read with [`Store::arrivals_on`] (the board's day), each with the nonce of
    /// the sealed value it was opened from; see [`query::DayCache`].
    day_cache: Mutex<query::DayCache>,
    /// Phone and name index entries of a catch-up not yet in their tables (see [`backlog`]).
    blind_backlog: Mutex<backlog::Backlog>,
    /// Backlog entries a catch-up page settles beyond ([`backlog::BACKLOG_MAX_OPS`]; smaller in tests).
    backlog_cap: usize,
    /// The local day and the reference data the routine purges last ran for ([`Store::routine_purges`]).
    purged_for: Mutex<Option<(NaiveDate, Arc<ReferenceData>)>>,
}

impl Store {
    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data directory the store file is in.
    pub fn data_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// This kiosk's device id.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// The site's UTC offset.
    pub fn utc_offset(&self) -> FixedOffset {
        self.offset
    }

    /// The current wall-clock time.
    pub fn now(&self) -> Moment {
        self.clock.now()
    }

    /// Today's local date at the site.
    pub fn today(&self) -> NaiveDate {
        self.now().local_date(self.offset)
    }

    /// The last HLC stamp issued (and persisted).
    pub fn last_stamp(&self) -> Hlc {
        self.hlc.lock().map_or(Hlc::ZERO, |c| c.last())
    }

    /// The current reference data.
    pub fn reference(&self) -> Arc<ReferenceData> {
        self.reference.read().map_or_else(|p| Arc::clone(&p.into_inner()), |r| Arc::clone(&r))
    }

    /// Where the reference data came from (`bundled`, `hq`, `demo`…), if it was ever applied.
    pub fn reference_source(&self) -> Result<Option<String>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(tables::REFERENCE)?;
        Ok(t.get("source")?.map(|g| String::from_utf8_lossy(g.value()).into_owned()))
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    fn keys(&self) -> Arc<Keys> {
        self.keys.read().map_or_else(|p| Arc::clone(&p.into_inner()), |k| Arc::clone(&k))
    }
}

fn read_u64(t: &impl ReadableTable<&'static str, &'static [u8]>, key: &str) -> Result<u64, StoreError> {
    match t.get(key)? {
        Some(g) => Ok(u64::from_le_bytes(
            g.value().try_into().map_err(|_| StoreError::Meta(format!("meta {key} is not 8 bytes")))?,
        )),
        None => Err(StoreError::Meta(format!("meta {key} missing"))),
    }
}

/// A chain position stored in meta: (index, hash). A chain nothing was ever appended to starts at (0, zeros).
fn read_chain_pos(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<(u64, [u8; 32]), StoreError> {
    match t.get(key)? {
        Some(g) => Ok(codec::decode(g.value())?),
        None => Ok((0, [0; 32])),
    }
}

/// The meta keys of a chained kind's head and base.
fn chain_keys(kind: RecordKind) -> Result<(&'static str, &'static str), StoreError> {
    meta::chain_keys(kind).ok_or_else(|| StoreError::Meta(format!("{kind} records are not hash-chained")))
}

/// The local day number used in index keys.
pub fn day_number(day: NaiveDate) -> i32 {
    use chrono::Datelike;
    day.num_days_from_ce()
}

/// Decrypts and decodes a stored record.
fn open_record<R: Record>(keys: &Keys, id: u128, sealed: &[u8]) -> Result<R, StoreError> {
    Ok(decode_record::<R>(&keys.open(&record_place(tables::records(R::KIND).name(), id), sealed)?)?)
}

/// Decrypts and decodes a stored record of a kind.
fn open_any(keys: &Keys, kind: RecordKind, id: u128, sealed: &[u8]) -> Result<AnyRecord, StoreError> {
    Ok(decode_any(kind, &keys.open(&record_place(tables::records(kind).name(), id), sealed)?)?)
}

/// Encodes and seals a record as its table stores it (the counterpart of [`open_any`]).
fn seal_any(keys: &Keys, rec: &AnyRecord) -> Result<Vec<u8>, StoreError> {
    let (stored, _) = encode_any(rec)?;
    keys.seal(&record_place(tables::records(rec.kind()).name(), rec.id().as_u128()), &stored)
}

/// Decrypts and decodes a stored outbox op.
fn open_op(keys: &Keys, seq: u64, sealed: &[u8]) -> Result<Op, StoreError> {
    Ok(codec::decode::<Op>(&keys.open(&outbox_place(seq), sealed)?)?)
}

#[cfg(test)]
mod backlog_tests;
#[cfg(test)]
mod crypto_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;
