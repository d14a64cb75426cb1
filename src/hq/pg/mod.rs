//! HQ's PostgreSQL store: the production backend (`guidedesk-hq serve --database-url postgres://…`).
//!
//! Tables (see `migrations/hq/`): one per record kind (`arrivals`, `consultations`, `feedback`, `cases`,
//! `followup_tasks`, `call_attempts`, `call_claims`) with real columns, plus `devices`, `tokens`, `enrol_codes`, `op_receipts`,
//! `quarantine`, `change_log` and `hq_meta`. Migrations are embedded in the binary and run at start.
//!
//! **Sync facade.** The store offers the same blocking methods as the embedded [`HqStore`](super::store::HqStore),
//! so the push/pull rules of `guidedesk_sync::server` run unchanged over it. It owns a small tokio runtime that
//! drives the sqlx pool; every method blocks on it. Call the methods from a thread that is not running async code
//! (the server's handlers call the store inside `spawn_blocking`, tests and the CLI from plain threads).
//!
//! **Transactions and ordering.**
//! - A push batch is one transaction ([`PgStore::begin`]); its first statement locks the device row
//!   (`SELECT … FOR UPDATE`), so concurrent or duplicated requests of one device (even on different HQ processes)
//!   apply one after another, the second seeing the first's cursor and skipping its ops as duplicates. The cursor is
//!   advanced in the same transaction. Nothing is written unless the whole batch commits.
//! - A reference-data change takes its sequence number from `hq_meta('change_head')` under a row lock held until
//!   commit, so change numbers are assigned in commit order and a reader never sees N+1 before N.
//! - A pull reads in one `REPEATABLE READ` read-only transaction, so head, floor and changes are one snapshot.
//!
//! No state lives in the process beyond the pool: any number of HQ processes may serve one database.
//!
//! The store is split by job: `connect.rs` (configuration, pool, migrations, shutdown), `devices.rs` (enrolment,
//! authentication, revocation), `push.rs` (a push batch: [`PgBatch`]), `records.rs` (how a record maps onto its
//! kind's table, read and written one or many at a time), `changes.rs` (the reference-data change log and the pull
//! snapshot, [`PgChanges`]), `relay.rs` (what a hub's relay batch needs) and `queries.rs` (reads for reports and administration, quarantine decisions, counts).
//! This module holds the store itself and the conversions between HQ's values and column values. The rows and
//! [`HqError`] are shared with the embedded store (`hq::rows`), as are the credential helpers (`hq::credentials`),
//! the enrolment rules (`hq::enrol`) and the admission checks (`hq::admit`).

mod changes;
mod connect;
mod copy;
mod devices;
mod feed;
mod push;
mod queries;
mod records;
mod relay;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::admit::ScreenCache;
use super::rows::HqError;

pub use changes::PgChanges;
pub use connect::{MIGRATOR, PgConfig};
pub use feed::PgFeed;
pub use push::PgBatch;
pub use relay::RELAY_HELD_SQL;

/// HQ's PostgreSQL store.
pub struct PgStore {
    pool: PgPool,
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    screens: Arc<ScreenCache>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("pool_size", &self.pool.size()).finish_non_exhaustive()
    }
}

/// A count or sequence number as a PostgreSQL `int8`; refused when it does not fit.
fn to_i64(v: u64, what: &str) -> Result<i64, HqError> {
    i64::try_from(v).map_err(|_| HqError::Refused(format!("{what} {v} is out of range")))
}

/// A time column's value: `ms` clamped into the range both chrono and PostgreSQL's timestamptz hold (about 4684 BC
/// to AD 255 000), so no stored record's time can make a write fail. The record itself keeps the exact value.
fn ts(ms: i64) -> DateTime<Utc> {
    const MIN_MS: i64 = -210_000_000_000_000;
    const MAX_MS: i64 = 8_000_000_000_000_000;
    DateTime::from_timestamp_millis(ms.clamp(MIN_MS, MAX_MS)).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn ts_u(ms: u64) -> DateTime<Utc> {
    ts(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn ms_u(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn uuid_of(v: u128) -> Uuid {
    Uuid::from_u128(v)
}

fn hash32(bytes: &[u8]) -> Result<[u8; 32], HqError> {
    bytes.try_into().map_err(|_| HqError::Refused("stored credential hash has the wrong length".into()))
}

/// The stable text of an enum value as serde names it (`"urgent"`, `"closed"`, …).
fn label<T: serde::Serialize>(v: &T) -> Option<String> {
    match serde_json::to_value(v).ok()? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl PgStore {
    fn run<T>(&self, f: impl Future<Output = Result<T, HqError>>) -> Result<T, HqError> {
        self.handle.block_on(f)
    }

    async fn tx(&self) -> Result<Transaction<'static, Postgres>, HqError> {
        Ok(self.pool.begin().await?)
    }
}
