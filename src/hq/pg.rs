//! HQ's PostgreSQL store: the production backend (`guidedesk-hq serve --database-url postgres://…`).
//!
//! Tables (see `migrations/hq/`): one per record kind (`arrivals`, `consultations`, `feedback`, `cases`,
//! `followup_tasks`, `call_attempts`) with real columns, plus `devices`, `tokens`, `enrol_codes`, `op_receipts`,
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

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use guidedesk_sync::protocol::Change;
use guidedesk_sync::server::{ChangeSource, HqStorage, HqTx, OpContext, Verdict};
use guidedesk_sync::{DeviceId, Op, codec};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::admit::{Screen, ScreenCache};
use super::store::{
    AuthDevice, AuthRefusal, ChangeRow, DeviceRow, EnrollRefusal, Enrolled, HqError, HqStats, OpRef, QuarantineRow,
    REFERENCE_KEY, REFERENCE_STREAM, Receipt, StoredRecord, check_site_desk, new_code, new_token, normalize_code, sha,
};
use crate::model::{AnyRecord, RecordKind, ReferenceData};
use crate::store::decode_op_payload;

/// The migrations of the PostgreSQL store, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/hq");

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user@host:port/database` (any libpq-style URL sqlx accepts).
    pub url: String,
    /// A schema to use instead of the default search path (created when missing). Tests give each run its own.
    pub schema: Option<String>,
    /// Largest number of pooled connections of this process.
    pub max_connections: u32,
    /// Statement timeout set on every connection.
    pub statement_timeout: Duration,
    /// How long a request waits for a pooled connection before HQ answers 503.
    pub acquire_timeout: Duration,
    /// `application_name` of HQ's sessions (shown in `pg_stat_activity`).
    pub application_name: String,
}

impl PgConfig {
    /// Defaults for a URL: 8 connections, 30 s statement timeout, 5 s acquire timeout, default schema.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            schema: None,
            max_connections: 8,
            statement_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(5),
            application_name: "guidedesk-hq".into(),
        }
    }
}

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

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

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
fn table(kind: RecordKind) -> (&'static str, &'static [&'static str]) {
    match kind {
        RecordKind::Arrival => ("arrivals", &["department", "visit_type", "channel", "priority"]),
        RecordKind::Consultation => ("consultations", &["channel", "referred_department", "arrival"]),
        RecordKind::Feedback => ("feedback", &["overall", "complete", "survey_version"]),
        RecordKind::Case => ("cases", &["grade", "status", "channel", "assigned_department", "closed_at"]),
        RecordKind::FollowupTask => ("followup_tasks", &["status", "department", "due_to"]),
        RecordKind::CallAttempt => ("call_attempts", &["task", "outcome", "worrying"]),
        RecordKind::Audit => ("audit_entries", &["actor", "action", "target_kind", "target_id", "chain_index"]),
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

const COMMON: &str = "site, device, occurred_at, corrected_at, first_received_at, updated_at, skew_ms, clock_flagged";

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

fn stored_from_row(row: &PgRow) -> Result<StoredRecord, HqError> {
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
async fn write_record(tx: &mut Transaction<'static, Postgres>, s: &StoredRecord, new: bool) -> Result<bool, HqError> {
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
async fn write_records(
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

/// Reads records of one kind under their row locks (`FOR UPDATE`), by id.
async fn locked_records(
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

fn device_from_row(row: &PgRow) -> Result<(DeviceId, DeviceRow), HqError> {
    let device: Uuid = row.try_get("device")?;
    let hash: Vec<u8> = row.try_get("token_hash")?;
    let revoked: Option<DateTime<Utc>> = row.try_get("revoked_at")?;
    let last_push: Option<DateTime<Utc>> = row.try_get("last_push_at")?;
    let last_seq: i64 = row.try_get("last_seq")?;
    Ok((
        DeviceId(device.as_u128()),
        DeviceRow {
            site: row.try_get("site")?,
            desk: row.try_get("desk")?,
            token_hash: hash32(&hash)?,
            enrolled_ms: ms_u(row.try_get("enrolled_at")?),
            revoked_ms: revoked.map(ms_u),
            last_seq: u64::try_from(last_seq).unwrap_or(0),
            last_push_ms: last_push.map_or(0, ms_u),
            skew_ms: row.try_get("skew_ms")?,
        },
    ))
}

const DEVICE_COLS: &str = "device, site, desk, token_hash, enrolled_at, revoked_at, last_seq, last_push_at, skew_ms";

async fn meta(tx: &mut Transaction<'static, Postgres>, name: &str, lock: bool) -> Result<u64, HqError> {
    let sql = if lock {
        "SELECT value FROM hq_meta WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT value FROM hq_meta WHERE name = $1"
    };
    let v: Option<i64> = sqlx::query_scalar(sql).bind(name).fetch_optional(&mut **tx).await?;
    Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

impl PgStore {
    /// Connects (with a pool), creates the schema when one is named, and runs the embedded migrations.
    pub fn connect(cfg: &PgConfig) -> Result<PgStore, HqError> {
        if let Some(s) = &cfg.schema
            && !valid_schema(s)
        {
            return Err(HqError::Refused(format!(
                "database schema {s:?} is not valid: use lower-case letters, digits and _, starting with a letter"
            )));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hq-pg")
            .enable_all()
            .build()
            .map_err(|e| HqError::Refused(format!("cannot start the database runtime: {e}")))?;
        let handle = rt.handle().clone();
        let pool = handle.block_on(Self::open_pool(cfg))?;
        Ok(PgStore { pool, rt: Some(rt), handle, screens: Arc::default() })
    }

    async fn open_pool(cfg: &PgConfig) -> Result<PgPool, HqError> {
        let base = PgConnectOptions::from_str(&cfg.url)
            .map_err(|e| HqError::Refused(format!("database URL is not valid: {e}")))?;
        if let Some(schema) = &cfg.schema {
            let mut c = sqlx::ConnectOptions::connect(&base).await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut c).await?;
            sqlx::Connection::close(c).await?;
        }
        let mut opts: Vec<(&str, String)> =
            vec![("statement_timeout", format!("{}", cfg.statement_timeout.as_millis()))];
        if let Some(schema) = &cfg.schema {
            opts.push(("search_path", schema.clone()));
        }
        let connect = base.options(opts.iter().map(|(k, v)| (*k, v.as_str()))).application_name(&cfg.application_name);
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .acquire_timeout(cfg.acquire_timeout)
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await.map_err(|e| HqError::Migrate(e.to_string()))?;
        Ok(pool)
    }

    /// Closes the pool: waits for connections in use to come back, then closes them all.
    pub fn close(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            self.handle.block_on(self.pool.close());
        }
    }

    fn run<T>(&self, f: impl Future<Output = Result<T, HqError>>) -> Result<T, HqError> {
        self.handle.block_on(f)
    }

    async fn tx(&self) -> Result<Transaction<'static, Postgres>, HqError> {
        Ok(self.pool.begin().await?)
    }

    /// Makes a one-time enrolment code for a desk, valid for `ttl_ms`.
    pub fn create_code(&self, site: &str, desk: &str, now_ms: u64, ttl_ms: u64) -> Result<String, HqError> {
        self.create_code_for(site, desk, None, now_ms, ttl_ms)
    }

    /// Makes a code only `for_device` may use (same rules as the embedded store).
    pub fn create_code_for(
        &self,
        site: &str,
        desk: &str,
        for_device: Option<DeviceId>,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<String, HqError> {
        let (site, desk) = check_site_desk(site, desk)?;
        let code = new_code()?;
        let hash = sha(normalize_code(&code).as_bytes());
        self.run(async {
            sqlx::query(
                "INSERT INTO enrol_codes (code_hash, site, desk, created_at, expires_at, for_device) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(hash.as_slice())
            .bind(site)
            .bind(desk)
            .bind(ts_u(now_ms))
            .bind(ts_u(now_ms.saturating_add(ttl_ms)))
            .bind(for_device.map(|d| uuid_of(d.0)))
            .execute(&self.pool)
            .await?;
            Ok(())
        })?;
        Ok(code)
    }

    /// Trades a code for a credential (same rules as the embedded store).
    pub fn enroll(
        &self,
        code: &str,
        device: DeviceId,
        now_ms: u64,
    ) -> Result<Result<Enrolled, EnrollRefusal>, HqError> {
        let key = sha(normalize_code(code).as_bytes());
        self.run(async {
            let mut tx = self.tx().await?;
            let row = sqlx::query(
                "SELECT site, desk, expires_at, used_by, used_at, for_device FROM enrol_codes WHERE code_hash = $1 \
                 FOR UPDATE",
            )
            .bind(key.as_slice())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(Err(EnrollRefusal::Invalid));
            };
            let used_by: Option<Uuid> = row.try_get("used_by")?;
            let used_at: Option<DateTime<Utc>> = row.try_get("used_at")?;
            let for_device: Option<Uuid> = row.try_get("for_device")?;
            let expires: DateTime<Utc> = row.try_get("expires_at")?;
            let site: String = row.try_get("site")?;
            let desk: String = row.try_get("desk")?;
            let dev = uuid_of(device.0);
            let existing = sqlx::query("SELECT site, revoked_at FROM devices WHERE device = $1 FOR UPDATE")
                .bind(dev)
                .fetch_optional(&mut *tx)
                .await?;
            let existing: Option<(String, bool)> = match existing {
                Some(r) => Some((r.try_get("site")?, r.try_get::<Option<DateTime<Utc>>, _>("revoked_at")?.is_some())),
                None => None,
            };
            let code_state = crate::hq::enrol::CodeState {
                site: &site,
                expires_ms: ms_u(expires),
                used_by: used_by.map(|u| u.as_u128()),
                used_ms: used_at.map(ms_u),
                for_device: for_device.map(|u| u.as_u128()),
            };
            let device_state =
                existing.as_ref().map(|(s, revoked)| crate::hq::enrol::DeviceState { site: s, revoked: *revoked });
            if let Err(refusal) = crate::hq::enrol::check(&code_state, device_state.as_ref(), device.0, now_ms) {
                return Ok(Err(refusal));
            }
            sqlx::query("UPDATE enrol_codes SET used_by = $2, used_at = COALESCE(used_at, $3) WHERE code_hash = $1")
                .bind(key.as_slice())
                .bind(dev)
                .bind(ts_u(now_ms))
                .execute(&mut *tx)
                .await?;
            let token = new_token()?;
            let hash = sha(token.as_bytes());
            sqlx::query("DELETE FROM tokens WHERE device = $1").bind(dev).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO devices (device, site, desk, token_hash, enrolled_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device) DO UPDATE SET site = EXCLUDED.site, desk = EXCLUDED.desk, \
                 token_hash = EXCLUDED.token_hash, revoked_at = NULL",
            )
            .bind(dev)
            .bind(&site)
            .bind(&desk)
            .bind(hash.as_slice())
            .bind(ts_u(now_ms))
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO tokens (token_hash, device) VALUES ($1, $2)")
                .bind(hash.as_slice())
                .bind(dev)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(Enrolled { token, site, desk }))
        })
    }

    /// The device behind a credential.
    pub fn authenticate(&self, token: &str) -> Result<Result<AuthDevice, AuthRefusal>, HqError> {
        let hash = sha(token.trim().as_bytes());
        self.run(async {
            let row = sqlx::query(
                "SELECT d.device, d.site, d.revoked_at FROM tokens t JOIN devices d ON d.device = t.device \
                 WHERE t.token_hash = $1",
            )
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else {
                return Ok(Err(AuthRefusal::Unknown));
            };
            let revoked: Option<DateTime<Utc>> = row.try_get("revoked_at")?;
            if revoked.is_some() {
                return Ok(Err(AuthRefusal::Revoked));
            }
            let device: Uuid = row.try_get("device")?;
            Ok(Ok(AuthDevice { device: DeviceId(device.as_u128()), site: row.try_get("site")? }))
        })
    }

    /// A device's row.
    pub fn device(&self, device: DeviceId) -> Result<Option<DeviceRow>, HqError> {
        self.run(async {
            let row = sqlx::query(&format!("SELECT {DEVICE_COLS} FROM devices WHERE device = $1"))
                .bind(uuid_of(device.0))
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| device_from_row(&r).map(|(_, d)| d)).transpose()
        })
    }

    /// Every device, in id order.
    pub fn devices(&self) -> Result<Vec<(DeviceId, DeviceRow)>, HqError> {
        self.run(async {
            let rows = sqlx::query(&format!("SELECT {DEVICE_COLS} FROM devices ORDER BY device"))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(device_from_row).collect()
        })
    }

    /// Revokes a device. Returns whether the device exists.
    pub fn revoke(&self, device: DeviceId, now_ms: u64) -> Result<bool, HqError> {
        self.run(async {
            let r = sqlx::query("UPDATE devices SET revoked_at = COALESCE(revoked_at, $2) WHERE device = $1")
                .bind(uuid_of(device.0))
                .bind(ts_u(now_ms))
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// Lifts a device's revocation; whether the device exists.
    pub fn reinstate(&self, device: DeviceId) -> Result<bool, HqError> {
        self.run(async {
            let r = sqlx::query("UPDATE devices SET revoked_at = NULL WHERE device = $1")
                .bind(uuid_of(device.0))
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// A record.
    pub fn record(&self, kind: RecordKind, id: u128) -> Result<Option<StoredRecord>, HqError> {
        let (t, _) = table(kind);
        self.run(async {
            let row = sqlx::query(&format!("SELECT {COMMON}, record FROM {t} WHERE id = $1"))
                .bind(uuid_of(id))
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(stored_from_row).transpose()
        })
    }

    /// Ids of records of a kind with business time in `[from, to)`, optionally only from one site, in time order.
    pub fn ids_between(&self, kind: RecordKind, site: Option<&str>, from: i64, to: i64) -> Result<Vec<u128>, HqError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let (t, _) = table(kind);
        self.run(async {
            let ids: Vec<Uuid> = sqlx::query_scalar(&format!(
                "SELECT id FROM {t} WHERE occurred_at >= $1 AND occurred_at < $2 AND ($3::text IS NULL OR site = $3) \
                 ORDER BY occurred_at, id"
            ))
            .bind(ts(from))
            .bind(ts(to))
            .bind(site)
            .fetch_all(&self.pool)
            .await?;
            Ok(ids.iter().map(Uuid::as_u128).collect())
        })
    }

    /// Ids of records of a kind first sent by a device.
    pub fn ids_of_device(&self, device: DeviceId, kind: RecordKind) -> Result<Vec<u128>, HqError> {
        let (t, _) = table(kind);
        self.run(async {
            let ids: Vec<Uuid> = sqlx::query_scalar(&format!("SELECT id FROM {t} WHERE device = $1 ORDER BY id"))
                .bind(uuid_of(device.0))
                .fetch_all(&self.pool)
                .await?;
            Ok(ids.iter().map(Uuid::as_u128).collect())
        })
    }

    /// Every receipt, in (device, seq) order.
    pub fn receipts(&self) -> Result<Vec<(OpRef, Receipt)>, HqError> {
        self.run(async {
            let rows = sqlx::query(
                "SELECT device, seq, kind, record_id, received_at, quarantined, clamped FROM op_receipts \
                 ORDER BY device, seq",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let d: Uuid = r.try_get("device")?;
                    let seq: i64 = r.try_get("seq")?;
                    let kind: i16 = r.try_get("kind")?;
                    let id: Uuid = r.try_get("record_id")?;
                    Ok((
                        (DeviceId(d.as_u128()), u64::try_from(seq).unwrap_or(0)),
                        Receipt {
                            kind: u16::try_from(kind).unwrap_or(0),
                            id: id.as_u128(),
                            received_ms: ms_u(r.try_get("received_at")?),
                            quarantined: r.try_get("quarantined")?,
                            clamped: r.try_get("clamped")?,
                        },
                    ))
                })
                .collect()
        })
    }

    /// Every quarantined op, in (device, seq) order.
    pub fn quarantined(&self) -> Result<Vec<(OpRef, QuarantineRow)>, HqError> {
        self.run(async {
            let rows = sqlx::query("SELECT device, seq, reason, received_at, op FROM quarantine ORDER BY device, seq")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let d: Uuid = r.try_get("device")?;
                    let seq: i64 = r.try_get("seq")?;
                    let op: Vec<u8> = r.try_get("op")?;
                    Ok((
                        (DeviceId(d.as_u128()), u64::try_from(seq).unwrap_or(0)),
                        QuarantineRow {
                            op: codec::decode(&op)?,
                            reason: r.try_get("reason")?,
                            received_ms: ms_u(r.try_get("received_at")?),
                        },
                    ))
                })
                .collect()
        })
    }

    /// Applies a quarantined op without the time and code checks (same rules as the embedded store).
    pub fn quarantine_release(
        &self,
        device: DeviceId,
        seq: u64,
        now_ms: u64,
    ) -> Result<Option<Result<(), String>>, HqError> {
        let mut batch = self.begin()?;
        let h = self.handle.clone();
        h.block_on(async {
            let dev = uuid_of(device.0);
            let seq_i = to_i64(seq, "op sequence")?;
            let Some(row) = sqlx::query("SELECT op FROM quarantine WHERE device = $1 AND seq = $2 FOR UPDATE")
                .bind(dev)
                .bind(seq_i)
                .fetch_optional(&mut **batch.tx()?)
                .await?
            else {
                return Ok(None);
            };
            let op: Op = codec::decode(&row.try_get::<Vec<u8>, _>("op")?)?;
            let skew: i64 = sqlx::query("SELECT skew_ms FROM devices WHERE device = $1")
                .bind(dev)
                .fetch_optional(&mut **batch.tx()?)
                .await?
                .map(|r| r.try_get("skew_ms"))
                .transpose()?
                .ok_or_else(|| HqError::Refused(format!("device {dev} is not enrolled")))?;
            batch.lock_device(device).await?;
            batch.screen = None;
            // The op's receipt says "quarantined"; the release writes it anew as applied.
            sqlx::query("DELETE FROM op_receipts WHERE device = $1 AND seq = $2")
                .bind(dev)
                .bind(seq_i)
                .execute(&mut **batch.tx()?)
                .await?;
            let ctx = OpContext { device, received_ms: now_ms, stamp: op.stamp, clamped: false, skew_ms: skew };
            match batch.apply_op(&op, &ctx).await? {
                Verdict::Applied => {
                    sqlx::query("DELETE FROM quarantine WHERE device = $1 AND seq = $2")
                        .bind(dev)
                        .bind(seq_i)
                        .execute(&mut **batch.tx()?)
                        .await?;
                    batch
                        .tx
                        .take()
                        .ok_or_else(|| HqError::Refused("transaction already ended".into()))?
                        .commit()
                        .await?;
                    Ok(Some(Ok(())))
                }
                Verdict::Invalid(reason) => Ok(Some(Err(reason))),
            }
        })
    }

    /// Removes an op from quarantine for good (its receipt stays); whether it was there.
    pub fn quarantine_drop(&self, device: DeviceId, seq: u64) -> Result<bool, HqError> {
        self.run(async {
            let r = sqlx::query("DELETE FROM quarantine WHERE device = $1 AND seq = $2")
                .bind(uuid_of(device.0))
                .bind(to_i64(seq, "op sequence")?)
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// Counts.
    pub fn stats(&self) -> Result<HqStats, HqError> {
        self.run(async {
            let mut records = std::collections::BTreeMap::new();
            for kind in RecordKind::ALL {
                let (t, _) = table(kind);
                let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}")).fetch_one(&self.pool).await?;
                records.insert(kind.name(), u64::try_from(n).unwrap_or(0));
            }
            let devices: i64 = sqlx::query_scalar("SELECT count(*) FROM devices").fetch_one(&self.pool).await?;
            let quarantined: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine").fetch_one(&self.pool).await?;
            Ok(HqStats {
                records,
                devices: u64::try_from(devices).unwrap_or(0),
                quarantined: u64::try_from(quarantined).unwrap_or(0),
            })
        })
    }

    /// Publishes reference data as a new change (commit-ordered), then compacts the log keeping the last `keep`.
    pub fn import_reference(&self, data: &ReferenceData, site: Option<&str>, keep: usize) -> Result<u64, HqError> {
        data.check().map_err(|e| HqError::Refused(e.to_string()))?;
        let key = site.map_or_else(|| REFERENCE_KEY.to_string(), |s| format!("{REFERENCE_KEY}@{s}"));
        let row = ChangeRow {
            stream: REFERENCE_STREAM.into(),
            scope: site.map(str::to_string),
            key,
            value: Some(serde_json::to_vec(data).map_err(|e| HqError::Refused(format!("reference data: {e}")))?),
        };
        self.run(async {
            let mut tx = self.tx().await?;
            let seq = append_change(&mut tx, &row).await?;
            compact_changes(&mut tx, keep).await?;
            tx.commit().await?;
            self.screens.clear();
            Ok(seq)
        })
    }

    /// The latest reference data that applies to a site, with its change sequence number.
    pub fn reference_for(&self, site: &str) -> Result<Option<(u64, ReferenceData)>, HqError> {
        let src = self.changes_for(REFERENCE_STREAM, site)?;
        let snap = src.snapshot()?;
        match snap.last() {
            Some(Change { seq, value: Some(v), .. }) => Ok(Some((
                *seq,
                serde_json::from_slice(v).map_err(|e| HqError::Refused(format!("stored reference data: {e}")))?,
            ))),
            _ => Ok(None),
        }
    }

    /// A read snapshot (REPEATABLE READ) of a stream's change log as a device at `site` sees it.
    pub fn changes_for(&self, stream: &str, site: &str) -> Result<PgChanges, HqError> {
        let tx = self.run(async {
            let mut tx = self.tx().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
            Ok(tx)
        })?;
        Ok(PgChanges {
            tx: Mutex::new(Some(tx)),
            handle: self.handle.clone(),
            stream: stream.to_string(),
            site: site.to_string(),
        })
    }

    /// Begins a push batch's transaction.
    pub fn begin(&self) -> Result<PgBatch, HqError> {
        let tx = self.run(self.tx())?;
        Ok(PgBatch {
            tx: Some(tx),
            handle: self.handle.clone(),
            site: None,
            cursor: None,
            screens: Arc::clone(&self.screens),
            screen: None,
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.close();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn append_change(tx: &mut Transaction<'static, Postgres>, row: &ChangeRow) -> Result<u64, HqError> {
    // The row lock on the head serialises appends until commit: sequence numbers are commit-ordered.
    let seq = meta(tx, "change_head", true).await? + 1;
    let s = to_i64(seq, "change sequence")?;
    sqlx::query("UPDATE hq_meta SET value = $1 WHERE name = 'change_head'").bind(s).execute(&mut **tx).await?;
    sqlx::query("INSERT INTO change_log (seq, stream, scope, key, value) VALUES ($1, $2, $3, $4, $5)")
        .bind(s)
        .bind(&row.stream)
        .bind(&row.scope)
        .bind(&row.key)
        .bind(&row.value)
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

/// The same compaction as the embedded store: superseded changes and removals older than the last `keep` go, and
/// the floor rises past them.
async fn compact_changes(tx: &mut Transaction<'static, Postgres>, keep: usize) -> Result<(), HqError> {
    let rows = sqlx::query("SELECT seq, stream, key, value IS NOT NULL AS live FROM change_log ORDER BY seq")
        .fetch_all(&mut **tx)
        .await?;
    let mut list: Vec<(i64, String, String, bool)> = Vec::with_capacity(rows.len());
    for r in &rows {
        list.push((r.try_get("seq")?, r.try_get("stream")?, r.try_get("key")?, r.try_get("live")?));
    }
    let mut latest: std::collections::BTreeMap<(&str, &str), i64> = std::collections::BTreeMap::new();
    for (seq, stream, key, _) in &list {
        latest.insert((stream.as_str(), key.as_str()), *seq);
    }
    let cut = list.len().saturating_sub(keep);
    let mut doomed = Vec::new();
    for (i, (seq, stream, key, has_value)) in list.iter().enumerate() {
        let live = latest.get(&(stream.as_str(), key.as_str())) == Some(seq) && *has_value;
        if i < cut && !live {
            doomed.push(*seq);
        }
    }
    if let Some(floor) = doomed.last().copied() {
        sqlx::query("DELETE FROM change_log WHERE seq = ANY($1)").bind(&doomed).execute(&mut **tx).await?;
        sqlx::query("UPDATE hq_meta SET value = GREATEST(value, $1) WHERE name = 'change_floor'")
            .bind(floor)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A REPEATABLE READ snapshot of one stream's change log, filtered to the changes a site sees.
pub struct PgChanges {
    tx: Mutex<Option<Transaction<'static, Postgres>>>,
    handle: tokio::runtime::Handle,
    stream: String,
    site: String,
}

impl std::fmt::Debug for PgChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgChanges").field("stream", &self.stream).field("site", &self.site).finish_non_exhaustive()
    }
}

impl PgChanges {
    fn with_tx<T>(
        &self,
        f: impl AsyncFnOnce(&mut Transaction<'static, Postgres>) -> Result<T, HqError>,
    ) -> Result<T, HqError> {
        let mut guard = self.tx.lock().map_err(|_| HqError::Refused("change snapshot lock poisoned".into()))?;
        let tx = guard.as_mut().ok_or_else(|| HqError::Refused("change snapshot already closed".into()))?;
        self.handle.block_on(f(tx))
    }

    fn changes(rows: &[PgRow]) -> Result<Vec<Change>, HqError> {
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                Ok(Change { seq: u64::try_from(seq).unwrap_or(0), key: r.try_get("key")?, value: r.try_get("value")? })
            })
            .collect()
    }
}

impl Drop for PgChanges {
    fn drop(&mut self) {
        // Ending the read transaction hands its connection back to the pool, which needs the pool's runtime.
        let _rt = self.handle.enter();
        if let Ok(mut g) = self.tx.lock() {
            drop(g.take());
        }
    }
}

impl ChangeSource for PgChanges {
    type Error = HqError;

    fn head(&self) -> Result<u64, HqError> {
        self.with_tx(async |tx| meta(tx, "change_head", false).await)
    }

    fn floor(&self) -> Result<u64, HqError> {
        self.with_tx(async |tx| meta(tx, "change_floor", false).await)
    }

    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, HqError> {
        let after = to_i64(after, "pull cursor")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_tx(async |tx| {
            Ok(sqlx::query(
                "SELECT seq, key, value FROM change_log WHERE stream = $1 AND (scope IS NULL OR scope = $2) \
                 AND seq > $3 ORDER BY seq LIMIT $4",
            )
            .bind(&self.stream)
            .bind(&self.site)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?)
        })?;
        Self::changes(&rows)
    }

    fn snapshot(&self) -> Result<Vec<Change>, HqError> {
        let rows = self.with_tx(async |tx| {
            Ok(sqlx::query(
                "SELECT seq, key, value FROM (SELECT DISTINCT ON (key) seq, key, value FROM change_log \
                 WHERE stream = $1 AND (scope IS NULL OR scope = $2) ORDER BY key, seq DESC) latest \
                 WHERE value IS NOT NULL ORDER BY seq",
            )
            .bind(&self.stream)
            .bind(&self.site)
            .fetch_all(&mut **tx)
            .await?)
        })?;
        Self::changes(&rows)
    }
}

/// One push batch's transaction on PostgreSQL. Dropped without commit, it rolls back.
pub struct PgBatch {
    tx: Option<Transaction<'static, Postgres>>,
    handle: tokio::runtime::Handle,
    site: Option<String>,
    cursor: Option<u64>,
    screens: Arc<ScreenCache>,
    /// The time and code checks for the device's site (loaded with the device's row); `None` while an admin
    /// releases a quarantined op.
    screen: Option<Arc<Screen>>,
}

impl std::fmt::Debug for PgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBatch").field("site", &self.site).finish_non_exhaustive()
    }
}

impl HqStorage for PgStore {
    type Error = HqError;
    type Tx<'a> = PgBatch;

    fn begin(&self) -> Result<PgBatch, HqError> {
        PgStore::begin(self)
    }
}

impl Drop for PgBatch {
    fn drop(&mut self) {
        // Dropped without commit: the transaction rolls back as its connection returns to the pool (on the pool's
        // runtime).
        let _rt = self.handle.enter();
        drop(self.tx.take());
    }
}

impl PgBatch {
    fn tx(&mut self) -> Result<&mut Transaction<'static, Postgres>, HqError> {
        self.tx.as_mut().ok_or_else(|| HqError::Refused("push transaction already ended".into()))
    }

    /// Locks the device row (serialising this device's batches across every HQ process) and reads its cursor and
    /// site.
    async fn lock_device(&mut self, device: DeviceId) -> Result<u64, HqError> {
        let row = sqlx::query("SELECT site, last_seq FROM devices WHERE device = $1 FOR UPDATE")
            .bind(uuid_of(device.0))
            .fetch_optional(&mut **self.tx()?)
            .await?;
        let (site, seq) = match row {
            Some(r) => {
                let seq: i64 = r.try_get("last_seq")?;
                (r.try_get::<String, _>("site")?, u64::try_from(seq).unwrap_or(0))
            }
            None => (String::new(), 0),
        };
        let screen = if let Some(s) = self.screens.cached(&site) {
            s
        } else {
            let latest = sqlx::query(
                "SELECT value FROM change_log WHERE stream = $1 AND (scope IS NULL OR scope = $2) \
                 AND value IS NOT NULL ORDER BY seq DESC LIMIT 1",
            )
            .bind(REFERENCE_STREAM)
            .bind(&site)
            .fetch_optional(&mut **self.tx()?)
            .await?;
            let value: Option<Vec<u8>> = match latest {
                Some(r) => r.try_get("value")?,
                None => None,
            };
            let reference: Option<ReferenceData> = value
                .map(|v| serde_json::from_slice(&v))
                .transpose()
                .map_err(|e| HqError::Refused(format!("stored reference data: {e}")))?;
            self.screens.put(&site, Screen::new(reference.as_ref()))
        };
        self.screen = Some(screen);
        self.site = Some(site);
        self.cursor = Some(seq);
        Ok(seq)
    }

    async fn receipt(&mut self, op: &Op, ctx: &OpContext, quarantined: bool) -> Result<(), HqError> {
        let r = sqlx::query(
            "INSERT INTO op_receipts (device, seq, kind, record_id, received_at, quarantined, clamped) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(uuid_of(ctx.device.0))
        .bind(to_i64(op.seq, "op sequence")?)
        .bind(i16::try_from(op.key.kind).unwrap_or(i16::MAX))
        .bind(uuid_of(op.key.id))
        .bind(ts_u(ctx.received_ms))
        .bind(quarantined)
        .bind(ctx.clamped)
        .execute(&mut **self.tx()?)
        .await?;
        if r.rows_affected() == 0 {
            // apply_push only hands over ops above the locked cursor, so this would be a bug: refuse the batch.
            return Err(HqError::Refused(format!("op {} of device {:x} was received twice", op.seq, ctx.device.0)));
        }
        Ok(())
    }

    async fn apply_op(&mut self, op: &Op, ctx: &OpContext) -> Result<Verdict, HqError> {
        let incoming = match decode_op_payload(op) {
            Ok(r) => r,
            Err(e) => return Ok(Verdict::Invalid(e.to_string())),
        };
        if self.site.is_none() {
            self.lock_device(ctx.device).await?;
        }
        if let Some(screen) = &self.screen
            && let Err(reason) = crate::hq::admit::screen(&incoming, ctx, screen)
        {
            return Ok(Verdict::Invalid(reason));
        }
        let site = self.site.clone().unwrap_or_default();
        let (t, _) = table(incoming.kind());
        // Twice at most: a new record's insert finds its id taken only when another device's transaction inserted
        // it meanwhile; the second round reads that row under its lock and merges into it.
        for _ in 0..2 {
            let old = sqlx::query(&format!("SELECT {COMMON}, record FROM {t} WHERE id = $1 FOR UPDATE"))
                .bind(uuid_of(op.key.id))
                .fetch_optional(&mut **self.tx()?)
                .await?;
            let (stored, new) = match old {
                Some(row) => {
                    let mut s = stored_from_row(&row)?;
                    if let Err(reason) = s.merge(&incoming, ctx, &site) {
                        return Ok(Verdict::Invalid(reason));
                    }
                    (s, false)
                }
                None => (StoredRecord::first(ctx, &site, incoming.clone()), true),
            };
            if write_record(self.tx()?, &stored, new).await? {
                self.receipt(op, ctx, false).await?;
                return Ok(Verdict::Applied);
            }
        }
        Err(HqError::Refused(format!("record {:x} could not be written", op.key.id)))
    }
}

/// A record a batch touches: its state so far and whether its row already exists (read under lock).
struct Touched {
    stored: StoredRecord,
    in_db: bool,
    /// Indices (into the batch) of the ops merged into it, in order.
    ops: Vec<usize>,
}

impl PgBatch {
    /// [`HqTx::apply_all`]: the ops of one kind's table are applied together — one locked read of the records they
    /// touch, the merges in op order in memory, one write of the merged records, one insert of the new ones — and
    /// their receipts are written in one statement. The outcome is that of [`PgBatch::apply_op`] on each op in turn.
    async fn apply_ops(&mut self, ops: &[(&Op, OpContext)]) -> Result<Vec<Verdict>, HqError> {
        let mut verdicts: Vec<Option<Verdict>> = vec![None; ops.len()];
        let Some((_, first)) = ops.first() else { return Ok(Vec::new()) };
        if self.site.is_none() {
            self.lock_device(first.device).await?;
        }
        let site = self.site.clone().unwrap_or_default();
        let mut groups: Vec<(RecordKind, Vec<(usize, AnyRecord)>)> = Vec::new();
        for (i, (op, ctx)) in ops.iter().enumerate() {
            let screened = decode_op_payload(op).map_err(|e| e.to_string()).and_then(|r| match &self.screen {
                Some(screen) => crate::hq::admit::screen(&r, ctx, screen).map(|()| r),
                None => Ok(r),
            });
            match screened {
                Ok(r) => {
                    let kind = r.kind();
                    match groups.iter_mut().find(|g| g.0 == kind) {
                        Some(g) => g.1.push((i, r)),
                        None => groups.push((kind, vec![(i, r)])),
                    }
                }
                Err(reason) => verdicts[i] = Some(Verdict::Invalid(reason)),
            }
        }
        for (kind, items) in groups {
            self.apply_kind(kind, items, ops, &site, &mut verdicts).await?;
        }
        let applied: Vec<usize> = (0..ops.len()).filter(|&i| matches!(verdicts[i], Some(Verdict::Applied))).collect();
        self.receipts(ops, &applied).await?;
        verdicts
            .into_iter()
            .map(|v| v.ok_or_else(|| HqError::Refused("an op of the batch got no verdict".into())))
            .collect()
    }

    /// Applies the ops of one record kind (see [`PgBatch::apply_ops`]).
    async fn apply_kind(
        &mut self,
        kind: RecordKind,
        items: Vec<(usize, AnyRecord)>,
        ops: &[(&Op, OpContext)],
        site: &str,
        verdicts: &mut [Option<Verdict>],
    ) -> Result<(), HqError> {
        let mut ids: Vec<Uuid> = items.iter().map(|(_, r)| r.id().0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut existing = locked_records(self.tx()?, kind, &ids).await?;
        let mut touched: std::collections::HashMap<u128, Touched> = std::collections::HashMap::new();
        let mut incoming_of: Vec<Option<AnyRecord>> = vec![None; ops.len()];
        for (i, incoming) in items {
            let ctx = &ops[i].1;
            let id = ops[i].0.key.id;
            match touched.entry(id) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let t = e.get_mut();
                    match t.stored.merge(&incoming, ctx, site) {
                        Ok(()) => {
                            t.ops.push(i);
                            verdicts[i] = Some(Verdict::Applied);
                        }
                        Err(reason) => verdicts[i] = Some(Verdict::Invalid(reason)),
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    if let Some(mut s) = existing.remove(&id) {
                        match s.merge(&incoming, ctx, site) {
                            Ok(()) => {
                                verdicts[i] = Some(Verdict::Applied);
                                e.insert(Touched { stored: s, in_db: true, ops: vec![i] });
                            }
                            Err(reason) => verdicts[i] = Some(Verdict::Invalid(reason)),
                        }
                    } else {
                        let s = StoredRecord::first(ctx, site, incoming.clone());
                        verdicts[i] = Some(Verdict::Applied);
                        e.insert(Touched { stored: s, in_db: false, ops: vec![i] });
                    }
                }
            }
            incoming_of[i] = Some(incoming);
        }
        let mut merged: Vec<&Touched> = touched.values().filter(|t| t.in_db).collect();
        merged.sort_unstable_by_key(|t| t.stored.record.id().0);
        let merged: Vec<&StoredRecord> = merged.iter().map(|t| &t.stored).collect();
        write_records(self.tx()?, kind, &merged, false).await?;
        let mut fresh: Vec<&Touched> = touched.values().filter(|t| !t.in_db).collect();
        fresh.sort_unstable_by_key(|t| t.stored.record.id().0);
        let fresh_recs: Vec<&StoredRecord> = fresh.iter().map(|t| &t.stored).collect();
        let written: std::collections::HashSet<u128> =
            write_records(self.tx()?, kind, &fresh_recs, true).await?.into_iter().collect();
        // A new record whose id another device's transaction inserted meanwhile: as in `apply_op`'s second round,
        // its row is read under its lock and the batch's ops are merged into it, in order.
        let lost: Vec<&Touched> =
            fresh.into_iter().filter(|t| !written.contains(&t.stored.record.id().as_u128())).collect();
        if lost.is_empty() {
            return Ok(());
        }
        let lost_ids: Vec<Uuid> = lost.iter().map(|t| t.stored.record.id().0).collect();
        let mut rows = locked_records(self.tx()?, kind, &lost_ids).await?;
        let mut redone: Vec<StoredRecord> = Vec::with_capacity(lost.len());
        for t in lost {
            let id = t.stored.record.id().as_u128();
            let mut s =
                rows.remove(&id).ok_or_else(|| HqError::Refused(format!("record {id:x} could not be written")))?;
            for &i in &t.ops {
                let incoming = incoming_of[i].as_ref().ok_or_else(|| HqError::Refused("op lost its record".into()))?;
                if let Err(reason) = s.merge(incoming, &ops[i].1, site) {
                    verdicts[i] = Some(Verdict::Invalid(reason));
                }
            }
            redone.push(s);
        }
        let redone: Vec<&StoredRecord> = redone.iter().collect();
        write_records(self.tx()?, kind, &redone, false).await?;
        Ok(())
    }

    /// The receipts of applied ops, in one statement.
    async fn receipts(&mut self, ops: &[(&Op, OpContext)], applied: &[usize]) -> Result<(), HqError> {
        if applied.is_empty() {
            return Ok(());
        }
        let n = applied.len();
        let (mut devices, mut seqs, mut kinds) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut ids, mut at, mut clamped) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for &i in applied {
            let (op, ctx) = &ops[i];
            devices.push(uuid_of(ctx.device.0));
            seqs.push(to_i64(op.seq, "op sequence")?);
            kinds.push(i16::try_from(op.key.kind).unwrap_or(i16::MAX));
            ids.push(uuid_of(op.key.id));
            at.push(ts_u(ctx.received_ms));
            clamped.push(ctx.clamped);
        }
        let r = sqlx::query(
            "INSERT INTO op_receipts (device, seq, kind, record_id, received_at, quarantined, clamped) \
             SELECT d, s, k, r, a, false, c FROM UNNEST($1::uuid[], $2::int8[], $3::int2[], $4::uuid[], \
             $5::timestamptz[], $6::bool[]) AS u(d, s, k, r, a, c) ON CONFLICT DO NOTHING",
        )
        .bind(&devices)
        .bind(&seqs)
        .bind(&kinds)
        .bind(&ids)
        .bind(&at)
        .bind(&clamped)
        .execute(&mut **self.tx()?)
        .await?;
        if r.rows_affected() != n as u64 {
            // apply_push only hands over ops above the locked cursor, so this would be a bug: refuse the batch.
            return Err(HqError::Refused(format!(
                "{} of {n} ops of device {:x} were received before",
                n as u64 - r.rows_affected(),
                ops[applied[0]].1.device.0
            )));
        }
        Ok(())
    }
}

impl HqTx for PgBatch {
    type Error = HqError;

    fn device_cursor(&mut self, device: DeviceId) -> Result<u64, HqError> {
        if let Some(c) = self.cursor {
            return Ok(c);
        }
        let h = self.handle.clone();
        h.block_on(self.lock_device(device))
    }

    fn apply(&mut self, op: &Op, ctx: &OpContext) -> Result<Verdict, HqError> {
        let h = self.handle.clone();
        h.block_on(self.apply_op(op, ctx))
    }

    fn apply_all(&mut self, ops: &[(&Op, OpContext)]) -> Result<Vec<Verdict>, HqError> {
        let h = self.handle.clone();
        h.block_on(self.apply_ops(ops))
    }

    fn quarantine(&mut self, op: &Op, ctx: &OpContext, reason: &str) -> Result<(), HqError> {
        let h = self.handle.clone();
        h.block_on(async {
            sqlx::query(
                "INSERT INTO quarantine (device, seq, kind, record_id, reason, received_at, op) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(uuid_of(ctx.device.0))
            .bind(to_i64(op.seq, "op sequence")?)
            .bind(i16::try_from(op.key.kind).unwrap_or(i16::MAX))
            .bind(uuid_of(op.key.id))
            .bind(reason)
            .bind(ts_u(ctx.received_ms))
            .bind(codec::encode(op)?)
            .execute(&mut **self.tx()?)
            .await?;
            self.receipt(op, ctx, true).await
        })
    }

    fn set_device_cursor(&mut self, device: DeviceId, seq: u64, at_ms: u64, skew_ms: i64) -> Result<(), HqError> {
        let h = self.handle.clone();
        h.block_on(async {
            let r = sqlx::query(
                "UPDATE devices SET last_seq = GREATEST(last_seq, $2), last_push_at = $3, skew_ms = $4 \
                 WHERE device = $1",
            )
            .bind(uuid_of(device.0))
            .bind(to_i64(seq, "op sequence")?)
            .bind(ts_u(at_ms))
            .bind(skew_ms)
            .execute(&mut **self.tx()?)
            .await?;
            if r.rows_affected() == 0 {
                return Err(HqError::Refused(format!("device {:x} is not enrolled", device.0)));
            }
            Ok(())
        })
    }

    fn commit(mut self) -> Result<(), HqError> {
        let tx = self.tx.take().ok_or_else(|| HqError::Refused("push transaction already ended".into()))?;
        self.handle.block_on(tx.commit())?;
        Ok(())
    }
}
