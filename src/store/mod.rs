//! The kiosk's durable store on redb: one file in the data directory.
//!
//! - **Records** live in one typed table per kind, encoded by [`guidedesk_sync::codec`] behind a schema-version
//!   prefix.
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

pub mod backup;
pub mod crypto;
mod error;
pub mod faults;
mod lockout;
pub mod migrate;
pub mod retention;
pub mod tables;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{FixedOffset, NaiveDate};
use guidedesk_sync::{DeviceId, Hlc, HlcClock, Op, RecordKey, codec};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle as _,
    WriteTransaction,
};

use crypto::{Keys, StoreKey};
pub use error::{OpenError, StoreError};
pub use migrate::STORE_SCHEMA;

use crate::model::reference::Staff;
use crate::model::{
    AnyRecord, Arrival, AuditAction, AuditEntry, AuditTarget, CallAttempt, Case, Chained, Consultation, Feedback,
    FollowupTask, Moment, RECORD_SCHEMA, Record, RecordId, RecordKind, ReferenceData, StaffRef,
};
use tables::meta;

/// The store's file name inside the data directory.
pub const FILE_NAME: &str = "guidedesk.redb";

/// A source of wall-clock time (injectable for tests).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Moment;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Moment {
        Moment::from_datetime(chrono::Utc::now())
    }
}

/// A clock that only moves when told to (tests, demo data).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Moment) -> Self {
        Self(std::sync::atomic::AtomicI64::new(at.0))
    }

    /// Moves the clock to `at` (forwards or backwards).
    pub fn set(&self, at: Moment) {
        self.0.store(at.0, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the clock by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Moment {
        Moment(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The site's UTC offset, which decides what "today" is.
    pub utc_offset: FixedOffset,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock), utc_offset: china_offset() }
    }
}

/// China Standard Time, UTC+8 (no daylight saving).
pub fn china_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

use chrono::{Offset, Utc};

/// Counts and sizes, for `guidedesk stats` and the status bar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Records per kind name.
    pub records: std::collections::BTreeMap<&'static str, u64>,
    /// Ops not yet acknowledged by HQ.
    pub outbox_pending: u64,
    /// Ops written in total (the last sequence number).
    pub outbox_last_seq: u64,
    /// Highest sequence number acknowledged by HQ.
    pub outbox_acked_seq: u64,
    /// Size of the store file in bytes.
    pub store_bytes: u64,
    /// Schema version.
    pub schema: u32,
    /// This kiosk's device id.
    pub device: String,
}

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
}

const REDB_MAGIC: &[u8] = b"redb";

impl Store {
    /// Opens (or creates) the store in `dir` with default options.
    pub fn open(dir: &Path) -> Result<Store, OpenError> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`. Runs migrations; refuses foreign, corrupt and newer files without
    /// touching them.
    /// The key file is `GUIDEDESK_KEY_FILE` or `guidedesk.key` in `dir` (see [`Store::open_keyed`]).
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, OpenError> {
        Self::open_keyed(dir, options, &crypto::resolve_key_path(dir, None))
    }

    /// Opens (or creates) the store in `dir` with its key in `key_path`. A new store gets a new key file (mode
    /// 0600); an existing plaintext store is encrypted with the key (created if absent) and compacted. An encrypted
    /// store whose key file is missing or holds another key is refused untouched; a key is never replaced.
    pub fn open_keyed(dir: &Path, options: StoreOptions, key_path: &Path) -> Result<Store, OpenError> {
        Self::open_full(dir, options, migrate::MIGRATIONS, key_path)
    }

    /// [`Store::open_with`] with an explicit list of migration steps (tests of the migration machinery).
    pub fn open_migrating(dir: &Path, options: StoreOptions, steps: &[migrate::Migration]) -> Result<Store, OpenError> {
        Self::open_full(dir, options, steps, &crypto::resolve_key_path(dir, None))
    }

    fn open_full(
        dir: &Path,
        options: StoreOptions,
        steps: &[migrate::Migration],
        key_path: &Path,
    ) -> Result<Store, OpenError> {
        // Owner-only (0700): the directory holds the store, by default its key file, `hq.json` and exports.
        crypto::prepare_private_dir(dir).map_err(|source| OpenError::DataDir { path: dir.to_path_buf(), source })?;
        if !dir.is_dir() {
            return Err(OpenError::DataDir {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let path = dir.join(FILE_NAME);
        let (db, checked) = open_db(&path, dir, key_path)?;
        // A store file left group- or world-readable by an older version (redb creates files with the umask's
        // mode) is made owner-only once it is known to be a GuideDesk store.
        let _ = crypto::make_owner_only(&path);
        Self::finish_open(db, path, checked, options, steps, key_path)
    }

    /// Completes an open on a redb database: resolves the key (unless `open_db` already did), runs migrations,
    /// records the key check, resumes the clock and loads the reference data.
    pub(super) fn finish_open(
        mut db: Database,
        path: PathBuf,
        checked: Option<(StoreKey, Option<Vec<u8>>)>,
        options: StoreOptions,
        steps: &[migrate::Migration],
        key_path: &Path,
    ) -> Result<Store, OpenError> {
        let supported = steps.last().map_or(0, |s| s.to);
        let storage = |e: StoreError| OpenError::Storage { path: path.clone(), source: Box::new(e) };
        let (key, stored_check) = if let Some(k) = checked {
            k
        } else {
            let tx = db.begin_read().map_err(|e| storage(e.into()))?;
            let check = read_key_check(&tx).map_err(storage)?;
            drop(tx);
            resolve_key(check, &path, key_path)?
        };
        let keys = key.derive();
        let tx = db.begin_write().map_err(|e| storage(e.into()))?;
        let (device, last_hlc, migrated_data) = {
            check_identity(&tx, &path)?;
            let version = migrate::schema_version(&tx).map_err(storage)?;
            if version > supported {
                return Err(OpenError::NewerSchema { path, found: version, supported });
            }
            let env = migrate::MigrationEnv { offset: options.utc_offset, keys: &keys };
            let applied = migrate::run(&tx, steps, &env).map_err(storage)?;
            if stored_check.is_none() {
                let mut m = tx.open_table(tables::META).map_err(|e| storage(e.into()))?;
                m.insert(meta::KEY_CHECK, keys.check_value().as_slice()).map_err(|e| storage(e.into()))?;
            }
            let (device, hlc) = init_meta(&tx, options.clock.now()).map_err(storage)?;
            (device, hlc, version > 0 && !applied.is_empty())
        };
        tx.commit().map_err(|e| storage(e.into()))?;
        if migrated_data {
            // The migration freed the pages that held the old (possibly plaintext) values; compaction moves the
            // live pages down and truncates the file. Freed pages that stay inside the file are overwritten as
            // the store is written to (see SECURITY.md).
            while db.compact().map_err(|e| storage(StoreError::Storage(e.into())))? {}
        }
        let reference = load_reference(&db, &keys).map_err(storage)?;
        Ok(Store {
            db,
            path,
            device,
            clock: options.clock,
            offset: options.utc_offset,
            hlc: Mutex::new(HlcClock::resume(device.node(), last_hlc)),
            reference: RwLock::new(Arc::new(reference)),
            keys: RwLock::new(Arc::new(keys)),
            key_path: key_path.to_path_buf(),
        })
    }

    /// The key file this store was opened with.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The id of the key the store is encrypted with.
    pub fn key_id(&self) -> u32 {
        self.keys().id()
    }

    fn keys(&self) -> Arc<Keys> {
        self.keys.read().map_or_else(|p| Arc::clone(&p.into_inner()), |k| Arc::clone(&k))
    }

    /// Re-encrypts the store with a new random key and replaces the key file; returns the new key id.
    ///
    /// Crash-safe order: the new key is written to `<key file>.new` and synced, then every record and outbox op is
    /// re-sealed and the blind indexes rebuilt in one durable transaction, then the new file is renamed over the
    /// old one. If the process dies in between, the next open finds the store's key in whichever of the two files
    /// holds it and finishes the rename.
    pub fn rotate_key(&self) -> Result<u32, StoreError> {
        let guard = self.hlc.lock().map_err(|_| StoreError::Meta("clock lock poisoned by a panic".into()))?;
        let old = self.keys();
        let new_key = StoreKey::generate()?;
        let new = new_key.derive();
        let pending = crypto::pending_key_path(&self.key_path);
        if pending.exists() {
            std::fs::remove_file(&pending).map_err(|source| crypto::KeyError::Io { path: pending.clone(), source })?;
        }
        new_key.write_new(&pending)?;
        let mut tx = self.db.begin_write()?;
        for kind in RecordKind::ALL {
            let def = tables::records(kind);
            let mut t = tx.open_table(def)?;
            let mut all = Vec::new();
            for e in t.iter()? {
                let (k, v) = e?;
                let place = record_place(def.name(), k.value());
                all.push((k.value(), old.open(&place, v.value())?));
            }
            for (id, plain) in all {
                let sealed = new.seal(&record_place(def.name(), id), &plain)?;
                t.insert(id, sealed.as_slice())?;
            }
        }
        {
            let mut ob = tx.open_table(tables::OUTBOX)?;
            let mut all = Vec::new();
            for e in ob.iter()? {
                let (k, v) = e?;
                all.push((k.value(), old.open(&outbox_place(k.value()), v.value())?));
            }
            for (seq, plain) in all {
                ob.insert(seq, new.seal(&outbox_place(seq), &plain)?.as_slice())?;
            }
        }
        rebuild_indexes_in(&tx, self.offset, &new)?;
        reseal_staff_in(&tx, &|place, v| new.seal(place, &old.open(place, v)?))?;
        tx.open_table(tables::META)?.insert(meta::KEY_CHECK, new.check_value().as_slice())?;
        // Secrets sealed outside the store (the HQ credential) get a copy sealed with the new key before the commit,
        // so they open whichever key the store ends up with.
        for f in crypto::SEALED_FIELDS {
            crypto::reseal_field_prepare(self.data_dir(), f, &old, &new)?;
        }
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        tx.commit()?;
        let id = new.id();
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(new);
        }
        std::fs::rename(&pending, &self.key_path)
            .map_err(|source| crypto::KeyError::Io { path: self.key_path.clone(), source })?;
        for f in crypto::SEALED_FIELDS {
            // Best effort: a reader finds the value sealed with the new key under its `next` field either way.
            let _ = crypto::reseal_field_finish(self.data_dir(), f, &self.keys());
        }
        drop(guard);
        Ok(id)
    }

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

    /// Runs `f` in one write transaction and commits it durably. If `f` fails, or the commit fails, nothing is
    /// written and the in-memory HLC is unchanged.
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut guard = self.hlc.lock().map_err(|_| StoreError::Meta("clock lock poisoned by a panic".into()))?;
        let tx = self.db.begin_write()?;
        let mut ctx = WriteCtx {
            tx,
            clock: guard.clone(),
            now: self.clock.now(),
            offset: self.offset,
            next_seq: None,
            chain_heads: Vec::new(),
            reference: self.reference(),
            keys: self.keys(),
            _store: std::marker::PhantomData,
        };
        let out = f(&mut ctx)?;
        let clock = ctx.finish()?;
        *guard = clock;
        Ok(out)
    }

    /// Replaces the reference data (sync pull, or the bundled default). Reference data is never written otherwise.
    pub fn apply_reference(&self, data: ReferenceData, source: &str) -> Result<(), StoreError> {
        data.check().map_err(|e| StoreError::Conflict(e.to_string()))?;
        // Reference data is stored as JSON: HQ's documents grow new fields over time, and JSON with serde defaults
        // reads snapshots written by older and newer versions alike.
        // It holds HQ's staff accounts with their PIN hashes: sealed with the store key like a record.
        let bytes = serde_json::to_vec(&data).map_err(|e| StoreError::Meta(format!("reference data: {e}")))?;
        let sealed = self.keys().seal(crypto::REFERENCE_PLACE, &bytes)?;
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(tables::REFERENCE)?;
            t.insert(REFERENCE_SNAPSHOT, sealed.as_slice())?;
            t.insert("source", source.as_bytes())?;
        }
        tx.commit()?;
        if let Ok(mut r) = self.reference.write() {
            *r = Arc::new(data);
        }
        Ok(())
    }

    /// Staff accounts created on this kiosk (the first administrator, before any sync). They are sealed with the
    /// store key (their PIN hashes must not be readable, or replaceable, without it).
    pub fn local_staff(&self) -> Result<Vec<Staff>, StoreError> {
        let tx = self.read()?;
        let m = tx.open_table(tables::META)?;
        let v = m.get(meta::LOCAL_STAFF)?;
        match v {
            Some(g) => {
                let plain = self.keys().open(crypto::LOCAL_STAFF_PLACE, g.value())?;
                serde_json::from_slice(&plain)
                    .map_err(|e| StoreError::Meta(format!("this kiosk's staff accounts cannot be read: {e}")))
            }
            None => Ok(Vec::new()),
        }
    }

    /// Adds (or replaces, by id) a staff account on this kiosk only.
    pub fn put_local_staff(&self, staff: Staff) -> Result<(), StoreError> {
        let mut all = self.local_staff()?;
        all.retain(|s| s.id != staff.id);
        all.push(staff);
        let bytes = serde_json::to_vec(&all).map_err(|e| StoreError::Meta(format!("staff accounts: {e}")))?;
        let sealed = self.keys().seal(crypto::LOCAL_STAFF_PLACE, &bytes)?;
        let tx = self.db.begin_write()?;
        tx.open_table(tables::META)?.insert(meta::LOCAL_STAFF, sealed.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// After a successful sign-in with `pin`: when the account is one of this kiosk's own and its PIN hash was made
    /// with weaker parameters than [`crate::staff::hash_pin`] uses now, re-hashes the PIN with the current ones.
    /// Returns whether it did. (HQ's accounts are HQ's: their hashes come with the reference data and are
    /// replaced by HQ.)
    pub fn upgrade_local_pin_hash(&self, staff: &str, pin: &str) -> Result<bool, StoreError> {
        let Some(mut s) = self.local_staff()?.into_iter().find(|s| s.id == staff) else { return Ok(false) };
        if !crate::staff::needs_rehash(&s.pin_hash) || !crate::staff::verify_pin(&s.pin_hash, pin) {
            return Ok(false);
        }
        s.pin_hash = crate::staff::hash_pin(pin).map_err(|e| StoreError::Meta(format!("PIN hash: {e}")))?;
        self.put_local_staff(s)?;
        Ok(true)
    }

    /// Seals `plain` with the store key for `place` (the associated data naming where it is kept), for secrets kept
    /// outside the store such as the HQ credential in `hq.json`.
    pub fn seal_value(&self, place: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.keys().seal(place, plain)
    }

    /// Opens a value sealed by [`Store::seal_value`] for `place`.
    pub fn open_value(&self, place: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.keys().open(place, sealed)
    }

    /// Everyone who may sign in here: HQ's staff, then this kiosk's own accounts (HQ wins on the same id).
    pub fn all_staff(&self) -> Result<Vec<Staff>, StoreError> {
        let mut out: Vec<Staff> = self.reference().staff.clone();
        for s in self.local_staff()? {
            if !out.iter().any(|x| x.id == s.id) {
                out.push(s);
            }
        }
        Ok(out)
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

    /// A record by id.
    pub fn get<R: Record>(&self, id: RecordId) -> Result<Option<R>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::records(R::KIND))?;
        let keys = self.keys();
        t.get(id.as_u128())?.map(|g| open_record::<R>(&keys, id.as_u128(), g.value())).transpose()
    }

    /// Records of a kind by id, skipping ids that do not exist.
    pub fn get_many<R: Record>(&self, ids: impl IntoIterator<Item = RecordId>) -> Result<Vec<R>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::records(R::KIND))?;
        let keys = self.keys();
        let mut out = Vec::new();
        for id in ids {
            if let Some(g) = t.get(id.as_u128())? {
                out.push(open_record::<R>(&keys, id.as_u128(), g.value())?);
            }
        }
        Ok(out)
    }

    /// Number of records of a kind.
    pub fn count(&self, kind: RecordKind) -> Result<u64, StoreError> {
        Ok(self.read()?.open_table(tables::records(kind))?.len()?)
    }

    /// Arrivals of a local day (board order: arrival order), optionally only those at some steps.
    pub fn arrivals_on(&self, day: NaiveDate) -> Result<Vec<Arrival>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_ARRIVAL_DAY_STEP)?;
        let d = day_number(day);
        let mut ids = Vec::new();
        for e in idx.range((d, 0u8, 0u128)..=(d, u8::MAX, u128::MAX))? {
            ids.push(e?.0.value().2);
        }
        ids.sort_unstable();
        let t = tx.open_table(tables::records(RecordKind::Arrival))?;
        let keys = self.keys();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(g) = t.get(id)? {
                out.push(open_record::<Arrival>(&keys, id, g.value())?);
            }
        }
        out.sort_by_key(|a| (a.arrived_at, a.steps.first().map(|e| e.stamp), a.id));
        Ok(out)
    }

    /// How many of a day's arrivals are at each step (index only; no record is decoded).
    pub fn step_counts_on(&self, day: NaiveDate) -> Result<Vec<(u8, u64)>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_ARRIVAL_DAY_STEP)?;
        let d = day_number(day);
        let mut counts: Vec<(u8, u64)> = Vec::new();
        for e in idx.range((d, 0u8, 0u128)..=(d, u8::MAX, u128::MAX))? {
            let step = e?.0.value().1;
            match counts.last_mut() {
                Some((s, n)) if *s == step => *n += 1,
                _ => counts.push((step, 1)),
            }
        }
        Ok(counts)
    }

    /// Records (of any indexed kind) with this phone number.
    pub fn find_by_phone(&self, phone: &str) -> Result<Vec<(RecordKind, RecordId)>, StoreError> {
        let blind = self.keys().blind("phone", phone);
        let phone = blind.as_str();
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_PHONE)?;
        let mut out = Vec::new();
        for e in idx.range((phone, 0u16, 0u128)..=(phone, u16::MAX, u128::MAX))? {
            let (_, kind, id) = e?.0.value();
            if let Some(k) = RecordKind::from_code(kind) {
                out.push((k, RecordId::from_u128(id)));
            }
        }
        Ok(out)
    }

    /// Records (of any indexed kind) whose name starts with `prefix`, at most `limit`: the newest `limit` of each
    /// kind, ordered by (name, kind, id), cut to `limit`.
    pub fn find_by_name_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, RecordKind, RecordId)>, StoreError> {
        let prefix = prefix.trim();
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        // The index holds keyed hashes of name prefixes, by (blind key, kind, id). Ids are time-ordered, so each
        // kind's range read backwards gives its newest matches first: at most `limit` of each kind are decrypted
        // (a common prefix among a million records no longer decrypts thousands), then ordered by (name, kind,
        // id) as a plaintext index would.
        let keys = self.keys();
        let blind = keys.name_query(prefix);
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_NAME)?;
        let mut out = Vec::new();
        for kind in RecordKind::ALL {
            let code = kind.code();
            let mut range =
                idx.range((blind.as_str(), code, 0u128)..=(blind.as_str(), code, u128::MAX))?.rev().peekable();
            if range.peek().is_none() {
                continue;
            }
            let t = tx.open_table(tables::records(kind))?;
            let mut found = 0;
            for e in range {
                if found >= limit {
                    break;
                }
                let (_, _, id) = e?.0.value();
                let Some(v) = t.get(id)? else { continue };
                let rec = open_any(&keys, kind, id, v.value())?;
                if let Some(name) = person(&rec).0.map(str::trim).filter(|n| n.starts_with(prefix)) {
                    out.push((name.to_string(), kind, RecordId::from_u128(id)));
                    found += 1;
                }
            }
        }
        out.sort_by(|a, b| (&a.0, a.1.code(), a.2).cmp(&(&b.0, b.1.code(), b.2)));
        out.truncate(limit);
        Ok(out)
    }

    /// Ids of records of a kind whose business time lies in `[from, to)`, in time order.
    pub fn ids_between(&self, kind: RecordKind, from: Moment, to: Moment) -> Result<Vec<RecordId>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_TIME)?;
        let k = kind.code();
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for e in idx.range((k, from.0, 0u128)..(k, to.0, 0u128))? {
            out.push(RecordId::from_u128(e?.0.value().2));
        }
        Ok(out)
    }

    /// Records of a kind whose business time lies in `[from, to)`, in time order; `f` is called for each so large
    /// ranges need not be held in memory.
    pub fn for_each_between(
        &self,
        kind: RecordKind,
        from: Moment,
        to: Moment,
        mut f: impl FnMut(AnyRecord) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_TIME)?;
        let t = tx.open_table(tables::records(kind))?;
        let k = kind.code();
        let keys = self.keys();
        let mut n = 0;
        if from >= to {
            return Ok(0);
        }
        for e in idx.range((k, from.0, 0u128)..(k, to.0, 0u128))? {
            let id = e?.0.value().2;
            if let Some(g) = t.get(id)? {
                f(open_any(&keys, kind, id, g.value())?)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Open cases with a due date up to and including `until` (all open cases when `None`), soonest first.
    pub fn open_cases_due(&self, until: Option<NaiveDate>) -> Result<Vec<Case>, StoreError> {
        self.due_list(tables::IDX_CASE_OPEN_DUE, until)
    }

    /// Open follow-up tasks whose window starts up to and including `until` (all when `None`), soonest first.
    pub fn open_followups_due(&self, until: Option<NaiveDate>) -> Result<Vec<FollowupTask>, StoreError> {
        self.due_list(tables::IDX_FOLLOWUP_OPEN_DUE, until)
    }

    fn due_list<R: Record>(
        &self,
        def: redb::TableDefinition<(i32, u128), ()>,
        until: Option<NaiveDate>,
    ) -> Result<Vec<R>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(def)?;
        let t = tx.open_table(tables::records(R::KIND))?;
        let end = until.map_or(i32::MAX, day_number);
        let keys = self.keys();
        let mut out = Vec::new();
        for e in idx.range((i32::MIN, 0u128)..=(end, u128::MAX))? {
            let id = e?.0.value().1;
            if let Some(g) = t.get(id)? {
                out.push(open_record::<R>(&keys, id, g.value())?);
            }
        }
        Ok(out)
    }

    /// The follow-up task made from a source, if any.
    pub fn followup_by_source(&self, dedup_key: &str) -> Result<Option<RecordId>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_FOLLOWUP_SOURCE)?;
        let blind = self.keys().blind("source", dedup_key);
        Ok(idx.get(blind.as_str())?.map(|g| RecordId::from_u128(g.value())))
    }

    /// Call attempts of a task, in time order.
    pub fn attempts_of(&self, task: RecordId) -> Result<Vec<CallAttempt>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_CALLS_BY_TASK)?;
        let t = tx.open_table(tables::records(RecordKind::CallAttempt))?;
        let k = task.as_u128();
        let keys = self.keys();
        let mut out = Vec::new();
        for e in idx.range((k, 0u128)..=(k, u128::MAX))? {
            let id = e?.0.value().1;
            if let Some(g) = t.get(id)? {
                out.push(open_record::<CallAttempt>(&keys, id, g.value())?);
            }
        }
        out.sort_by_key(|a| (a.at, a.id));
        Ok(out)
    }

    /// Consultations linked to an arrival.
    pub fn consultations_of_arrival(&self, arrival: RecordId) -> Result<Vec<Consultation>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_CONSULTATION_ARRIVAL)?;
        let k = arrival.as_u128();
        let mut ids = Vec::new();
        for e in idx.range((k, 0u128)..=(k, u128::MAX))? {
            ids.push(RecordId::from_u128(e?.0.value().1));
        }
        drop(idx);
        drop(tx);
        self.get_many(ids)
    }

    /// The records of a chained kind in chain order (the whole chain), for verification.
    pub fn chain<R: Chained>(&self) -> Result<Vec<R>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::records(R::KIND))?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        let keys = self.keys();
        for e in t.iter()? {
            let (k, v) = e?;
            out.push(open_record::<R>(&keys, k.value(), v.value())?);
        }
        out.sort_by_key(Chained::chain_index);
        Ok(out)
    }

    /// A chain's head as stored: (next index, hash of the last record).
    pub fn chain_head(&self, kind: RecordKind) -> Result<(u64, [u8; 32]), StoreError> {
        let tx = self.read()?;
        read_chain_pos(&tx.open_table(tables::META)?, chain_keys(kind)?.0)
    }

    /// A chain's base after retention purges: the first index still expected and the hash it must follow.
    pub fn chain_base(&self, kind: RecordKind) -> Result<(u64, [u8; 32]), StoreError> {
        let tx = self.read()?;
        read_chain_pos(&tx.open_table(tables::META)?, chain_keys(kind)?.1)
    }

    /// Audit entries whose time lies in `from..to`, oldest first.
    pub fn audit_entries(&self, from: Moment, to: Moment) -> Result<Vec<AuditEntry>, StoreError> {
        let ids = self.ids_between(RecordKind::Audit, from, to)?;
        self.get_many(ids)
    }

    /// Appends one audit entry in a transaction of its own (views, reveals, exports: nothing else changes).
    pub fn audit(
        &self,
        actor: &StaffRef,
        action: AuditAction,
        target: Option<AuditTarget>,
        detail: &str,
    ) -> Result<AuditEntry, StoreError> {
        self.write(|ctx| ctx.audit(actor, action, target, detail))
    }

    /// Feedback records in chain order (the whole chain), for verification.
    pub fn feedback_chain(&self) -> Result<Vec<Feedback>, StoreError> {
        self.chain()
    }

    /// The feedback chain head as stored: (next index, hash of the last record).
    pub fn feedback_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.chain_head(RecordKind::Feedback)
    }

    /// The feedback chain's base: the first index still expected and the hash it must follow.
    pub fn feedback_base(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.chain_base(RecordKind::Feedback)
    }

    /// Ops with sequence number greater than `after`, at most `limit`, in order.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::OUTBOX)?;
        let keys = self.keys();
        let mut out = Vec::new();
        for e in t.range(after.saturating_add(1)..)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = e?;
            out.push(open_op(&keys, k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Marks every op up to `seq` as acknowledged by HQ. Never moves backwards.
    pub fn ack_through(&self, seq: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut m = tx.open_table(tables::META)?;
            let last = read_u64(&m, meta::NEXT_SEQ)?.saturating_sub(1);
            if seq > last {
                return Err(StoreError::Conflict(format!("cannot acknowledge seq {seq}: the last op is {last}")));
            }
            let acked = read_u64(&m, meta::ACKED_SEQ)?;
            if seq > acked {
                m.insert(meta::ACKED_SEQ, seq.to_le_bytes().as_slice())?;
                tx.open_table(tables::ACK_LOG)?.insert(seq, self.clock.now().0)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes from the outbox the acknowledged ops whose acknowledgement is older than `retain_ms`. Returns how
    /// many ops were removed. Unacknowledged ops are never removed.
    pub fn prune_acked(&self, retain_ms: i64) -> Result<u64, StoreError> {
        let cutoff = self.clock.now().0.saturating_sub(retain_ms.max(0));
        let tx = self.db.begin_write()?;
        let removed = {
            let acked = read_u64(&tx.open_table(tables::META)?, meta::ACKED_SEQ)?;
            let mut log = tx.open_table(tables::ACK_LOG)?;
            let mut through = 0u64;
            for e in log.range(..=acked)? {
                let (k, v) = e?;
                if v.value() <= cutoff {
                    through = through.max(k.value());
                }
            }
            let mut removed = 0u64;
            if through > 0 {
                let mut ob = tx.open_table(tables::OUTBOX)?;
                let seqs: Vec<u64> =
                    ob.range(..=through)?.map(|e| e.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
                for s in seqs {
                    ob.remove(s)?;
                    removed += 1;
                }
                let old: Vec<u64> =
                    log.range(..through)?.map(|e| e.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
                for s in old {
                    log.remove(s)?;
                }
            }
            removed
        };
        tx.commit()?;
        Ok(removed)
    }

    /// The stored cursor of a pulled stream (0 when never pulled).
    pub fn pull_cursor(&self, stream: &str) -> Result<u64, StoreError> {
        let tx = self.read()?;
        let m = tx.open_table(tables::META)?;
        let key = format!("{}{stream}", meta::PULL_CURSOR_PREFIX);
        Ok(match m.get(key.as_str())? {
            Some(g) => u64::from_le_bytes(
                g.value().try_into().map_err(|_| StoreError::Meta(format!("meta {key} is not 8 bytes")))?,
            ),
            None => 0,
        })
    }

    /// Applies a pulled page of reference data and stores the stream's cursor, in one transaction: after a crash
    /// either both are stored or neither. `data` is `None` when the page held no new snapshot (only the cursor
    /// moves).
    pub fn apply_reference_page(
        &self,
        data: Option<ReferenceData>,
        source: &str,
        stream: &str,
        cursor: u64,
    ) -> Result<(), StoreError> {
        let bytes = match &data {
            Some(d) => {
                d.check().map_err(|e| StoreError::Conflict(e.to_string()))?;
                // The same sealed JSON form as `apply_reference`.
                let json = serde_json::to_vec(d).map_err(|e| StoreError::Meta(format!("reference data: {e}")))?;
                Some(self.keys().seal(crypto::REFERENCE_PLACE, &json)?)
            }
            None => None,
        };
        let mut tx = self.db.begin_write()?;
        {
            if let Some(bytes) = &bytes {
                let mut t = tx.open_table(tables::REFERENCE)?;
                t.insert(REFERENCE_SNAPSHOT, bytes.as_slice())?;
                t.insert("source", source.as_bytes())?;
            }
            let key = format!("{}{stream}", meta::PULL_CURSOR_PREFIX);
            tx.open_table(tables::META)?.insert(key.as_str(), cursor.to_le_bytes().as_slice())?;
        }
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        tx.commit()?;
        if let Some(d) = data
            && let Ok(mut r) = self.reference.write()
        {
            *r = Arc::new(d);
        }
        Ok(())
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let tx = self.read()?;
        let mut records = std::collections::BTreeMap::new();
        for kind in RecordKind::ALL {
            records.insert(kind.name(), tx.open_table(tables::records(kind))?.len()?);
        }
        let m = tx.open_table(tables::META)?;
        let last = read_u64(&m, meta::NEXT_SEQ)?.saturating_sub(1);
        let acked = read_u64(&m, meta::ACKED_SEQ)?;
        let schema = match m.get(meta::SCHEMA)? {
            Some(g) => u32::from_le_bytes(g.value().try_into().unwrap_or([0; 4])),
            None => 0,
        };
        let store_bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok(Stats {
            records,
            outbox_pending: last.saturating_sub(acked),
            outbox_last_seq: last,
            outbox_acked_seq: acked,
            store_bytes,
            schema,
            device: uuid::Uuid::from_u128(self.device.0).to_string(),
        })
    }

    /// Verifies the store: every record decodes; every secondary index equals the one recomputed from the records;
    /// the outbox is gap-free from 1 to the last sequence number and holds one op per record write; the feedback
    /// chain is unbroken. Returns the problems found (empty when healthy).
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let expected = self.recompute_indexes(&mut problems)?;
        let tx = self.read()?;
        let actual = read_indexes(&tx)?;
        for (name, exp, act) in expected.compare(&actual) {
            problems.push(format!("index {name}: expected {exp} entries matching the records, found {act}"));
        }
        let m = tx.open_table(tables::META)?;
        let next = read_u64(&m, meta::NEXT_SEQ)?;
        let ob = tx.open_table(tables::OUTBOX)?;
        let mut expect = ob.first()?.map_or(next, |(k, _)| k.value());
        let acked = read_u64(&m, meta::ACKED_SEQ)?;
        if expect > acked.saturating_add(1) {
            problems.push(format!("outbox starts at seq {expect} but only {acked} were acknowledged"));
        }
        let jumps = backup::read_jumps(&m)?;
        for e in ob.iter()? {
            let (k, v) = e?;
            if k.value() != expect && !jumps.contains(&(expect, k.value())) {
                problems.push(format!("outbox gap: expected seq {expect}, found {}", k.value()));
            }
            match open_op(&self.keys(), k.value(), v.value()) {
                Ok(op) if op.seq == k.value() => {}
                Ok(op) => problems.push(format!("outbox entry {} holds op seq {}", k.value(), op.seq)),
                Err(e) => problems.push(format!("outbox entry {} cannot be decoded: {e}", k.value())),
            }
            expect = k.value() + 1;
        }
        if expect != next && !jumps.contains(&(expect, next)) {
            problems.push(format!("outbox ends at {} but the next seq is {next}", expect.saturating_sub(1)));
        }
        drop((m, ob, tx));
        problems.extend(self.verify_feedback_chain()?.into_iter().map(|p| format!("feedback {p}")));
        problems.extend(self.verify_chain::<AuditEntry>()?.into_iter().map(|p| format!("audit log {p}")));
        Ok(problems)
    }

    /// Verifies the feedback hash chain ([`Store::verify_chain`]).
    pub fn verify_feedback_chain(&self) -> Result<Vec<ChainProblem>, StoreError> {
        self.verify_chain::<Feedback>()
    }

    /// Verifies a hash chain against its stored head: reports missing positions (deleted records), altered records
    /// (hash mismatch), broken links and a head that does not match the last record.
    pub fn verify_chain<R: Chained>(&self) -> Result<Vec<ChainProblem>, StoreError> {
        let chain = self.chain::<R>()?;
        let (next, head_hash) = self.chain_head(R::KIND)?;
        let mut problems = Vec::new();
        // Records purged by retention are a prefix of the chain; verification starts after it.
        let (mut expected, mut prev) = self.chain_base(R::KIND)?;
        for f in &chain {
            let (index, id) = (f.chain_index(), Record::id(f));
            while expected < index {
                problems.push(ChainProblem::Missing { index: expected });
                expected += 1;
                prev = [0xff; 32];
            }
            if f.compute_hash() != f.hash() {
                problems.push(ChainProblem::Altered { index, id });
            } else if f.prev_hash() != prev && prev != [0xff; 32] {
                problems.push(ChainProblem::BrokenLink { index, id });
            }
            prev = f.hash();
            expected = index + 1;
        }
        while expected < next {
            problems.push(ChainProblem::Missing { index: expected });
            expected += 1;
        }
        if next > 0 && chain.last().is_some_and(|f| f.chain_index() + 1 == next && f.hash() != head_hash) {
            problems.push(ChainProblem::HeadMismatch);
        }
        if expected > next {
            problems.push(ChainProblem::HeadMismatch);
        }
        Ok(problems)
    }

    fn recompute_indexes(&self, problems: &mut Vec<String>) -> Result<IndexSet, StoreError> {
        let tx = self.read()?;
        let mut set = IndexSet::default();
        let keys = self.keys();
        for kind in RecordKind::ALL {
            let t = tx.open_table(tables::records(kind))?;
            for e in t.iter()? {
                let (k, v) = e?;
                match open_any(&keys, kind, k.value(), v.value()) {
                    Ok(rec) => {
                        if rec.id().as_u128() != k.value() {
                            problems.push(format!("{kind} {} is stored under key {:x}", rec.id(), k.value()));
                        }
                        set.add(&rec, self.offset, &keys);
                    }
                    Err(e) => problems.push(format!("{kind} record {:x} cannot be decoded: {e}", k.value())),
                }
            }
        }
        Ok(set)
    }

    /// Drops and rebuilds every secondary index from the records (repair, and migrations that change indexes).
    pub fn rebuild_indexes(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        rebuild_indexes_in(&tx, self.offset, &self.keys())?;
        tx.commit()?;
        Ok(())
    }
}

/// A problem in a hash chain (feedback, audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainProblem {
    /// No record at this position: a record was deleted.
    Missing {
        /// Chain position.
        index: u64,
    },
    /// The record's content does not match its hash: it was altered.
    Altered {
        /// Chain position.
        index: u64,
        /// Record id.
        id: RecordId,
    },
    /// The record does not commit to its predecessor's hash: the chain was spliced.
    BrokenLink {
        /// Chain position.
        index: u64,
        /// Record id.
        id: RecordId,
    },
    /// The stored chain head does not match the last record.
    HeadMismatch,
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::Missing { index } => write!(f, "#{index} is missing (deleted)"),
            ChainProblem::Altered { index, id } => write!(f, "#{index} ({id}) was altered"),
            ChainProblem::BrokenLink { index, id } => {
                write!(f, "#{index} ({id}) does not follow the previous record")
            }
            ChainProblem::HeadMismatch => f.write_str("chain head does not match the last record"),
        }
    }
}

fn map_db_error(e: redb::DatabaseError, path: &Path, dir: &Path) -> OpenError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked { path: path.to_path_buf() },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::PermissionDenied
                || io.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
        {
            OpenError::ReadOnly { path: dir.to_path_buf() }
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(d)) => {
            OpenError::Corrupt { path: path.to_path_buf(), detail: d }
        }
        redb::DatabaseError::UpgradeRequired(v) => {
            OpenError::Corrupt { path: path.to_path_buf(), detail: format!("unsupported redb file format {v}") }
        }
        other => OpenError::Storage { path: path.to_path_buf(), source: Box::new(other.into()) },
    }
}

/// Opens the database file. An existing file is first inspected read-only, so a file that is not a GuideDesk store
/// is refused without a single byte written to it. (A file that needs crash recovery cannot be opened read-only; it
/// is recovered by the read-write open and then checked.) The store key is resolved during the read-only
/// inspection too, so a missing or wrong key refuses the store before redb's read-write open touches the file; the
/// key is returned when it was resolved there.
#[allow(clippy::type_complexity)]
fn open_db(
    path: &Path,
    dir: &Path,
    key_path: &Path,
) -> Result<(Database, Option<(StoreKey, Option<Vec<u8>>)>), OpenError> {
    use std::io::Read;
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(source) => return Err(OpenError::DataDir { path: path.to_path_buf(), source }),
    };
    if len == 0 {
        // Absent, or created but never initialised (a crash before the first commit): nothing to lose. The file is
        // created owner-only (0600) before redb initialises it.
        crypto::prepare_private_file(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                OpenError::ReadOnly { path: dir.to_path_buf() }
            }
            _ => OpenError::DataDir { path: path.to_path_buf(), source },
        })?;
        return Ok((Database::builder().create(path).map_err(|e| map_db_error(e, path, dir))?, None));
    }
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|source| OpenError::DataDir { path: path.to_path_buf(), source })?;
    if n < 4 || &head[..] != REDB_MAGIC {
        return Err(OpenError::NotAStore {
            path: path.to_path_buf(),
            detail: "the file does not start with a redb header".into(),
        });
    }
    match Database::builder().open_read_only(path) {
        Ok(ro) => {
            let storage = |e: StoreError| OpenError::Storage { path: path.to_path_buf(), source: Box::new(e) };
            let tx = ro.begin_read().map_err(|e| storage(e.into()))?;
            let names: Vec<String> = tx
                .list_tables()
                .map_err(|e| storage(e.into()))?
                .map(|h| redb::TableHandle::name(&h).to_string())
                .collect();
            let magic = if names.iter().any(|n| n == "meta") {
                let m = tx.open_table(tables::META).map_err(|e| storage(e.into()))?;
                let v = m.get(meta::MAGIC).map_err(|e| storage(e.into()))?;
                v.map(|g| g.value().to_vec())
            } else {
                None
            };
            identity(&names, magic.as_deref(), path)?;
            let check = read_key_check(&tx).map_err(storage)?;
            drop(tx);
            drop(ro);
            let key = resolve_key(check, path, key_path)?;
            return Ok((Database::builder().open(path).map_err(|e| map_db_error(e, path, dir))?, Some(key)));
        }
        Err(redb::DatabaseError::RepairAborted) => {}
        Err(e) => return Err(map_db_error(e, path, dir)),
    }
    Ok((Database::builder().open(path).map_err(|e| map_db_error(e, path, dir))?, None))
}

/// Decides from the table names and the magic value whether a file is a GuideDesk store (or an empty database to
/// initialise).
fn identity(names: &[String], magic: Option<&[u8]>, path: &Path) -> Result<(), OpenError> {
    if names.is_empty() {
        return Ok(());
    }
    if !names.iter().any(|n| n == "meta") {
        return Err(OpenError::NotAStore {
            path: path.to_path_buf(),
            detail: format!("it is a redb database with other tables ({})", names.join(", ")),
        });
    }
    match magic {
        Some(m) if m == tables::MAGIC_VALUE => Ok(()),
        Some(_) => Err(OpenError::NotAStore { path: path.to_path_buf(), detail: "its magic value differs".into() }),
        None => Err(OpenError::NotAStore {
            path: path.to_path_buf(),
            detail: "it is a redb database without GuideDesk metadata".into(),
        }),
    }
}

/// Checks, inside the opening write transaction, that the file is a GuideDesk store (or empty).
fn check_identity(tx: &WriteTransaction, path: &Path) -> Result<(), OpenError> {
    let storage = |e: StoreError| OpenError::Storage { path: path.to_path_buf(), source: Box::new(e) };
    let names: Vec<String> =
        tx.list_tables().map_err(|e| storage(e.into()))?.map(|h| redb::TableHandle::name(&h).to_string()).collect();
    let magic = if names.iter().any(|n| n == "meta") {
        let m = tx.open_table(tables::META).map_err(|e| storage(e.into()))?;
        let v = m.get(meta::MAGIC).map_err(|e| storage(e.into()))?;
        v.map(|g| g.value().to_vec())
    } else {
        None
    };
    identity(&names, magic.as_deref(), path)
}

/// Finds the store key before anything is written. An encrypted store (with `meta.key_check`) needs the key file
/// that matches it: a missing or different key is refused, and a key left pending by an interrupted rotation
/// (`<key file>.new`) is moved into place. A store without a key check (new, or plaintext from before encryption)
/// uses the key file if there is one, else a new key written to a new file. Returns the key and the stored check.
fn resolve_key(
    stored: Option<Vec<u8>>,
    path: &Path,
    key_path: &Path,
) -> Result<(StoreKey, Option<Vec<u8>>), OpenError> {
    let Some(check) = stored else {
        let key = if key_path.exists() {
            StoreKey::load(key_path)?
        } else {
            let k = StoreKey::generate()?;
            k.write_new(key_path)?;
            k
        };
        return Ok((key, None));
    };
    let expected = check.get(..4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let pending = crypto::pending_key_path(key_path);
    let current = if key_path.exists() { Some(StoreKey::load(key_path)?) } else { None };
    if let Some(k) = current.filter(|k| k.derive().matches(&check)) {
        if pending.exists() {
            // A rotation that failed before its commit: the pending key was never used.
            std::fs::remove_file(&pending).map_err(|source| crypto::KeyError::Io { path: pending.clone(), source })?;
        }
        return Ok((k, Some(check)));
    }
    if pending.exists() {
        let p = StoreKey::load(&pending)?;
        if p.derive().matches(&check) {
            // A rotation committed but died before replacing the key file: finish it.
            std::fs::rename(&pending, key_path)
                .map_err(|source| crypto::KeyError::Io { path: key_path.to_path_buf(), source })?;
            return Ok((p, Some(check)));
        }
    }
    match key_path.exists().then(|| StoreKey::load(key_path)).transpose()? {
        None => Err(OpenError::KeyMissing { path: path.to_path_buf(), key: key_path.to_path_buf() }),
        Some(k) => Err(OpenError::WrongKey {
            path: path.to_path_buf(),
            key: key_path.to_path_buf(),
            found: k.derive().id(),
            expected,
        }),
    }
}

/// The `reference` key of the reference-data snapshot.
pub(crate) const REFERENCE_SNAPSHOT: &str = "snapshot";

/// Turns a stored value at a place (`crypto::LOCAL_STAFF_PLACE`, …) into the value to store instead.
pub(crate) type Reseal<'a> = &'a dyn Fn(&str, &[u8]) -> Result<Vec<u8>, StoreError>;

/// Rewrites the two values that hold staff PIN hashes — this kiosk's accounts (`meta.local_staff`) and the
/// reference-data snapshot — with `f(place, stored)`, inside `tx` (key rotation, the schema-4 migration).
pub(crate) fn reseal_staff_in(tx: &WriteTransaction, f: Reseal<'_>) -> Result<(), StoreError> {
    {
        let mut m = tx.open_table(tables::META)?;
        let v = m.get(meta::LOCAL_STAFF)?.map(|g| g.value().to_vec());
        if let Some(v) = v {
            m.insert(meta::LOCAL_STAFF, f(crypto::LOCAL_STAFF_PLACE, &v)?.as_slice())?;
        }
    }
    let mut t = tx.open_table(tables::REFERENCE)?;
    let v = t.get(REFERENCE_SNAPSHOT)?.map(|g| g.value().to_vec());
    if let Some(v) = v {
        t.insert(REFERENCE_SNAPSHOT, f(crypto::REFERENCE_PLACE, &v)?.as_slice())?;
    }
    Ok(())
}

/// The stored `meta.key_check`, if the store has one.
fn read_key_check(tx: &ReadTransaction) -> Result<Option<Vec<u8>>, StoreError> {
    match tx.open_table(tables::META) {
        Ok(m) => Ok(m.get(meta::KEY_CHECK)?.map(|g| g.value().to_vec())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes the magic, device id and counters of a new store; reads them back for an existing one.
fn init_meta(tx: &WriteTransaction, now: Moment) -> Result<(DeviceId, Hlc), StoreError> {
    let mut m = tx.open_table(tables::META)?;
    if m.get(meta::MAGIC)?.is_none() {
        m.insert(meta::MAGIC, tables::MAGIC_VALUE)?;
        let device = RecordId::new_v7(now).as_u128();
        m.insert(meta::DEVICE, device.to_le_bytes().as_slice())?;
        m.insert(meta::NEXT_SEQ, 1u64.to_le_bytes().as_slice())?;
        m.insert(meta::ACKED_SEQ, 0u64.to_le_bytes().as_slice())?;
        m.insert(meta::CREATED, now.0.to_le_bytes().as_slice())?;
        m.insert(meta::HLC, codec::encode(&Hlc::ZERO)?.as_slice())?;
        m.insert(meta::FEEDBACK_HEAD, codec::encode(&(0u64, [0u8; 32]))?.as_slice())?;
        m.insert(meta::AUDIT_HEAD, codec::encode(&(0u64, [0u8; 32]))?.as_slice())?;
    }
    let device = match m.get(meta::DEVICE)? {
        Some(g) => {
            u128::from_le_bytes(g.value().try_into().map_err(|_| StoreError::Meta("device id is not 16 bytes".into()))?)
        }
        None => return Err(StoreError::Meta("device id missing".into())),
    };
    let hlc = match m.get(meta::HLC)? {
        Some(g) => codec::decode::<Hlc>(g.value())?,
        None => return Err(StoreError::Meta("clock state missing".into())),
    };
    Ok((DeviceId(device), hlc))
}

fn load_reference(db: &Database, keys: &Keys) -> Result<ReferenceData, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::REFERENCE)?;
    if let Some(g) = t.get(REFERENCE_SNAPSHOT)? {
        let cannot = |e: &dyn std::fmt::Display| {
            StoreError::Meta(format!("the stored reference data cannot be read ({e}); sync with HQ again"))
        };
        let plain = keys.open(crypto::REFERENCE_PLACE, g.value()).map_err(|e| cannot(&e))?;
        return serde_json::from_slice::<ReferenceData>(&plain).map_err(|e| cannot(&e));
    }
    ReferenceData::bundled().map_err(|e| StoreError::Meta(format!("bundled reference data: {e}")))
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

fn encode_record<R: Record>(rec: &R) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    let payload = codec::encode(rec)?;
    let mut stored = Vec::with_capacity(payload.len() + 2);
    stored.extend_from_slice(&RECORD_SCHEMA.to_le_bytes());
    stored.extend_from_slice(&payload);
    Ok((stored, payload))
}

fn split_schema(kind: RecordKind, bytes: &[u8]) -> Result<&[u8], StoreError> {
    if bytes.len() < 2 {
        return Err(StoreError::Codec(guidedesk_sync::CodecError::Empty));
    }
    let schema = u16::from_le_bytes([bytes[0], bytes[1]]);
    if schema != RECORD_SCHEMA {
        return Err(StoreError::Schema { kind, found: schema, supported: RECORD_SCHEMA });
    }
    Ok(&bytes[2..])
}

fn decode_record<R: Record>(bytes: &[u8]) -> Result<R, StoreError> {
    Ok(codec::decode::<R>(split_schema(R::KIND, bytes)?)?)
}

use crypto::{outbox_place, record_place};

/// Decrypts and decodes a stored record.
fn open_record<R: Record>(keys: &Keys, id: u128, sealed: &[u8]) -> Result<R, StoreError> {
    decode_record::<R>(&keys.open(&record_place(tables::records(R::KIND).name(), id), sealed)?)
}

/// Decrypts and decodes a stored record of a kind.
fn open_any(keys: &Keys, kind: RecordKind, id: u128, sealed: &[u8]) -> Result<AnyRecord, StoreError> {
    decode_any(kind, &keys.open(&record_place(tables::records(kind).name(), id), sealed)?)
}

/// Decrypts and decodes a stored outbox op.
fn open_op(keys: &Keys, seq: u64, sealed: &[u8]) -> Result<Op, StoreError> {
    Ok(codec::decode::<Op>(&keys.open(&outbox_place(seq), sealed)?)?)
}

/// Decodes a (decrypted) stored record of a kind.
pub fn decode_any(kind: RecordKind, bytes: &[u8]) -> Result<AnyRecord, StoreError> {
    Ok(match kind {
        RecordKind::Arrival => AnyRecord::Arrival(decode_record(bytes)?),
        RecordKind::Consultation => AnyRecord::Consultation(decode_record(bytes)?),
        RecordKind::Feedback => AnyRecord::Feedback(decode_record(bytes)?),
        RecordKind::Case => AnyRecord::Case(decode_record(bytes)?),
        RecordKind::FollowupTask => AnyRecord::FollowupTask(decode_record(bytes)?),
        RecordKind::CallAttempt => AnyRecord::CallAttempt(decode_record(bytes)?),
        RecordKind::Audit => AnyRecord::Audit(decode_record(bytes)?),
    })
}

/// Decodes an op payload (sync) into a record of the op's kind.
pub fn decode_op_payload(op: &Op) -> Result<AnyRecord, StoreError> {
    let kind = RecordKind::from_code(op.key.kind)
        .ok_or_else(|| StoreError::Conflict(format!("unknown record kind code {}", op.key.kind)))?;
    if op.schema != RECORD_SCHEMA {
        return Err(StoreError::Schema { kind, found: op.schema, supported: RECORD_SCHEMA });
    }
    let rec = match kind {
        RecordKind::Arrival => AnyRecord::Arrival(codec::decode(&op.payload)?),
        RecordKind::Consultation => AnyRecord::Consultation(codec::decode(&op.payload)?),
        RecordKind::Feedback => AnyRecord::Feedback(codec::decode(&op.payload)?),
        RecordKind::Case => AnyRecord::Case(codec::decode(&op.payload)?),
        RecordKind::FollowupTask => AnyRecord::FollowupTask(codec::decode(&op.payload)?),
        RecordKind::CallAttempt => AnyRecord::CallAttempt(codec::decode(&op.payload)?),
        RecordKind::Audit => AnyRecord::Audit(codec::decode(&op.payload)?),
    };
    if rec.id().as_u128() != op.key.id {
        return Err(StoreError::Conflict(format!(
            "op {} carries record {} under id {:x}",
            op.seq,
            rec.id(),
            op.key.id
        )));
    }
    Ok(rec)
}

/// One write transaction in progress. Obtain it from [`Store::write`].
pub struct WriteCtx<'s> {
    tx: WriteTransaction,
    clock: HlcClock,
    now: Moment,
    offset: FixedOffset,
    next_seq: Option<u64>,
    /// Heads of the hash chains appended to in this transaction: (kind, (next index, last hash)).
    chain_heads: Vec<(RecordKind, (u64, [u8; 32]))>,
    reference: Arc<ReferenceData>,
    keys: Arc<Keys>,
    _store: std::marker::PhantomData<&'s Store>,
}

impl std::fmt::Debug for WriteCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteCtx").field("now", &self.now).field("next_seq", &self.next_seq).finish_non_exhaustive()
    }
}

impl WriteCtx<'_> {
    /// The wall-clock time of this transaction.
    pub fn now(&self) -> Moment {
        self.now
    }

    /// Today's local date.
    pub fn today(&self) -> NaiveDate {
        self.now.local_date(self.offset)
    }

    /// The sequence number of the last op this transaction appended, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.next_seq.map(|s| s - 1)
    }

    /// The reference data.
    pub fn reference(&self) -> &ReferenceData {
        &self.reference
    }

    /// A new HLC stamp, greater than every stamp issued before.
    pub fn stamp(&mut self) -> Hlc {
        let phys = self.now.0.max(0) as u64;
        self.clock.tick(phys)
    }

    /// A new record id for a record made now.
    pub fn new_id(&self) -> RecordId {
        RecordId::new_v7(self.now)
    }

    /// A record by id (sees this transaction's own writes).
    pub fn get<R: Record>(&self, id: RecordId) -> Result<Option<R>, StoreError> {
        let t = self.tx.open_table(tables::records(R::KIND))?;
        let v = t.get(id.as_u128())?;
        v.map(|g| open_record::<R>(&self.keys, id.as_u128(), g.value())).transpose()
    }

    /// A record by id, or `NotFound`.
    pub fn require<R: Record>(&self, id: RecordId) -> Result<R, StoreError> {
        self.get::<R>(id)?.ok_or(StoreError::NotFound { kind: R::KIND, id })
    }

    /// The follow-up task made from a source, if any (sees this transaction's writes).
    pub fn followup_by_source(&self, dedup_key: &str) -> Result<Option<RecordId>, StoreError> {
        let idx = self.tx.open_table(tables::IDX_FOLLOWUP_SOURCE)?;
        let blind = self.keys.blind("source", dedup_key);
        let v = idx.get(blind.as_str())?;
        Ok(v.map(|g| RecordId::from_u128(g.value())))
    }

    /// The site's UTC offset.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// How many call attempts a task has (sees this transaction's writes).
    pub fn attempts_of(&self, task: RecordId) -> Result<usize, StoreError> {
        let idx = self.tx.open_table(tables::IDX_CALLS_BY_TASK)?;
        let k = task.as_u128();
        let n = idx.range((k, 0u128)..=(k, u128::MAX))?.count();
        Ok(n)
    }

    /// A case made from a feedback record, if any (open or closed).
    pub fn case_from_feedback(&self, feedback: RecordId) -> Result<Option<RecordId>, StoreError> {
        let t = self.tx.open_table(tables::records(RecordKind::Case))?;
        for e in t.iter()? {
            let (k, v) = e?;
            let c: Case = open_record(&self.keys, k.value(), v.value())?;
            if c.from_feedback == Some(feedback) {
                return Ok(Some(c.id));
            }
        }
        Ok(None)
    }

    /// Ids of open follow-up tasks whose window starts on or before `until` (sees this transaction's writes).
    pub fn open_followup_ids_due(&self, until: NaiveDate) -> Result<Vec<RecordId>, StoreError> {
        let idx = self.tx.open_table(tables::IDX_FOLLOWUP_OPEN_DUE)?;
        let mut out = Vec::new();
        for e in idx.range((i32::MIN, 0u128)..=(day_number(until), u128::MAX))? {
            out.push(RecordId::from_u128(e?.0.value().1));
        }
        Ok(out)
    }

    /// Writes a record (new or changed), maintains its indexes and appends its outbox op.
    /// Feedback and audit entries are append-only: they go through [`WriteCtx::append_chained`].
    pub fn put<R: Record>(&mut self, rec: &R) -> Result<(), StoreError> {
        if meta::chain_keys(R::KIND).is_some() {
            return Err(StoreError::Conflict(format!("{} records are append-only; use append_chained", R::KIND)));
        }
        self.put_any(&rec.clone().into_any())
    }

    /// Appends a record at the end of this kiosk's hash chain of its kind (sealing it) and returns the sealed
    /// record. An id already stored is refused: chained records never change.
    pub fn append_chained<R: Chained>(&mut self, mut rec: R) -> Result<R, StoreError> {
        let (head_key, _) = chain_keys(R::KIND)?;
        if self.get::<R>(Record::id(&rec))?.is_some() {
            return Err(StoreError::Conflict(format!(
                "{} {} already exists and cannot be changed",
                R::KIND,
                Record::id(&rec)
            )));
        }
        let slot = self.chain_heads.iter().position(|(k, _)| *k == R::KIND);
        let (index, prev) = match slot {
            Some(i) => self.chain_heads[i].1,
            None => read_chain_pos(&self.tx.open_table(tables::META)?, head_key)?,
        };
        rec.seal(index, prev);
        let head = (index + 1, rec.hash());
        match slot {
            Some(i) => self.chain_heads[i].1 = head,
            None => self.chain_heads.push((R::KIND, head)),
        }
        self.put_any(&rec.clone().into_any())?;
        Ok(rec)
    }

    /// Appends a feedback record to this kiosk's feedback chain ([`WriteCtx::append_chained`]).
    pub fn append_feedback(&mut self, fb: Feedback) -> Result<Feedback, StoreError> {
        self.append_chained(fb)
    }

    /// Appends an audit entry made now to this kiosk's audit chain, in this transaction: it commits with the
    /// change it records, or not at all.
    pub fn audit(
        &mut self,
        actor: &StaffRef,
        action: AuditAction,
        target: Option<AuditTarget>,
        detail: &str,
    ) -> Result<AuditEntry, StoreError> {
        let entry = AuditEntry::new(self.new_id(), self.now, actor.clone(), action, target, detail);
        self.append_chained(entry)
    }

    fn put_any(&mut self, rec: &AnyRecord) -> Result<(), StoreError> {
        let kind = rec.kind();
        let id = rec.id().as_u128();
        let (stored, payload) = match rec {
            AnyRecord::Arrival(r) => encode_record(r)?,
            AnyRecord::Consultation(r) => encode_record(r)?,
            AnyRecord::Feedback(r) => encode_record(r)?,
            AnyRecord::Case(r) => encode_record(r)?,
            AnyRecord::FollowupTask(r) => encode_record(r)?,
            AnyRecord::CallAttempt(r) => encode_record(r)?,
            AnyRecord::Audit(r) => encode_record(r)?,
        };
        let old = {
            let def = tables::records(kind);
            let sealed = self.keys.seal(&record_place(def.name(), id), &stored)?;
            let mut t = self.tx.open_table(def)?;
            let old = t.insert(id, sealed.as_slice())?;
            old.map(|g| open_any(&self.keys, kind, id, g.value())).transpose()?
        };
        if let Some(old) = &old {
            index_apply(&self.tx, old, self.offset, &self.keys, false)?;
        }
        index_apply(&self.tx, rec, self.offset, &self.keys, true)?;
        let seq = match self.next_seq {
            Some(s) => s,
            None => read_u64(&self.tx.open_table(tables::META)?, meta::NEXT_SEQ)?,
        };
        let stamp = self.stamp();
        let op = Op { seq, key: RecordKey { kind: kind.code(), id }, schema: RECORD_SCHEMA, stamp, payload };
        let sealed = self.keys.seal(&outbox_place(seq), &codec::encode(&op)?)?;
        self.tx.open_table(tables::OUTBOX)?.insert(seq, sealed.as_slice())?;
        self.next_seq = Some(seq + 1);
        Ok(())
    }

    fn finish(self) -> Result<HlcClock, StoreError> {
        let WriteCtx { mut tx, clock, next_seq, chain_heads, .. } = self;
        {
            let mut m = tx.open_table(tables::META)?;
            m.insert(meta::HLC, codec::encode(&clock.last())?.as_slice())?;
            if let Some(s) = next_seq {
                m.insert(meta::NEXT_SEQ, s.to_le_bytes().as_slice())?;
            }
            for (kind, head) in chain_heads {
                m.insert(chain_keys(kind)?.0, codec::encode(&head)?.as_slice())?;
            }
        }
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        tx.commit()?;
        Ok(clock)
    }
}

/// The index entries one record contributes.
#[derive(Default)]
struct Entries {
    time: Option<(u16, i64, u128)>,
    day_step: Option<(i32, u8, u128)>,
    phones: Vec<(String, u16, u128)>,
    names: Vec<(String, u16, u128)>,
    case_due: Option<(i32, u128)>,
    followup_due: Option<(i32, u128)>,
    followup_source: Option<(String, u128)>,
    call_by_task: Option<(u128, u128)>,
    consultation_arrival: Option<(u128, u128)>,
}

/// The person a record names: (name, phone), for the blind name and phone indexes.
fn person(rec: &AnyRecord) -> (Option<&str>, Option<&str>) {
    match rec {
        AnyRecord::Arrival(a) => (Some(&a.name), a.phone.as_deref()),
        AnyRecord::Consultation(c) => (c.name.as_deref(), c.phone.as_deref()),
        AnyRecord::Case(c) => (Some(&c.complainant), c.complainant_phone.as_deref()),
        AnyRecord::FollowupTask(t) => (Some(&t.patient_name), Some(&t.phone)),
        AnyRecord::Feedback(_) | AnyRecord::CallAttempt(_) | AnyRecord::Audit(_) => (None, None),
    }
}

fn entries(rec: &AnyRecord, offset: FixedOffset, keys: &Keys) -> Entries {
    let kind = rec.kind().code();
    let id = rec.id().as_u128();
    let mut e = Entries { time: Some((kind, rec.occurred_at().0, id)), ..Entries::default() };
    let (name, phone) = person(rec);
    if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
        e.names.extend(keys.name_prefixes(n).into_iter().map(|b| (b, kind, id)));
    }
    if let Some(p) = phone.filter(|p| !p.is_empty()) {
        e.phones.push((keys.blind("phone", p), kind, id));
    }
    match rec {
        AnyRecord::Arrival(a) => {
            e.day_step = Some((day_number(a.arrived_at.local_date(offset)), a.step().code(), id));
        }
        AnyRecord::Consultation(c) => {
            if let Some(arr) = c.arrival.value {
                e.consultation_arrival = Some((arr.as_u128(), id));
            }
        }
        AnyRecord::Feedback(_) | AnyRecord::Audit(_) => {}
        AnyRecord::Case(c) => {
            if c.is_open() {
                e.case_due = Some((day_number(c.due.value.0), id));
            }
        }
        AnyRecord::FollowupTask(t) => {
            if !t.status.value.is_final() {
                e.followup_due = Some((day_number(t.due_from), id));
            }
            e.followup_source = Some((keys.blind("source", &t.source.dedup_key()), id));
        }
        AnyRecord::CallAttempt(c) => e.call_by_task = Some((c.task.as_u128(), id)),
    }
    e
}

fn index_apply(
    tx: &WriteTransaction,
    rec: &AnyRecord,
    offset: FixedOffset,
    keys: &Keys,
    insert: bool,
) -> Result<(), StoreError> {
    let e = entries(rec, offset, keys);
    macro_rules! apply {
        ($def:expr, $key:expr, $val:expr) => {{
            let mut t = tx.open_table($def)?;
            if insert {
                t.insert($key, $val)?;
            } else {
                t.remove($key)?;
            }
        }};
    }
    if let Some(k) = e.time {
        apply!(tables::IDX_TIME, k, ());
    }
    if let Some(k) = e.day_step {
        apply!(tables::IDX_ARRIVAL_DAY_STEP, k, ());
    }
    for (p, k, i) in &e.phones {
        apply!(tables::IDX_PHONE, (p.as_str(), *k, *i), ());
    }
    for (n, k, i) in &e.names {
        apply!(tables::IDX_NAME, (n.as_str(), *k, *i), ());
    }
    if let Some(k) = e.case_due {
        apply!(tables::IDX_CASE_OPEN_DUE, k, ());
    }
    if let Some(k) = e.followup_due {
        apply!(tables::IDX_FOLLOWUP_OPEN_DUE, k, ());
    }
    if let Some((s, id)) = &e.followup_source {
        let mut t = tx.open_table(tables::IDX_FOLLOWUP_SOURCE)?;
        if insert {
            if let Some(existing) = t.get(s.as_str())?.map(|g| g.value())
                && existing != *id
            {
                let source = match rec {
                    AnyRecord::FollowupTask(t) => t.source.dedup_key(),
                    _ => s.clone(),
                };
                return Err(StoreError::Conflict(format!("a follow-up task already exists for source {source}")));
            }
            t.insert(s.as_str(), *id)?;
        } else {
            t.remove(s.as_str())?;
        }
    }
    if let Some(k) = e.call_by_task {
        apply!(tables::IDX_CALLS_BY_TASK, k, ());
    }
    if let Some(k) = e.consultation_arrival {
        apply!(tables::IDX_CONSULTATION_ARRIVAL, k, ());
    }
    Ok(())
}

/// Index contents as sets, for consistency checks.
#[derive(Default, PartialEq, Eq)]
struct IndexSet {
    time: std::collections::BTreeSet<(u16, i64, u128)>,
    day_step: std::collections::BTreeSet<(i32, u8, u128)>,
    phones: std::collections::BTreeSet<(String, u16, u128)>,
    names: std::collections::BTreeSet<(String, u16, u128)>,
    case_due: std::collections::BTreeSet<(i32, u128)>,
    followup_due: std::collections::BTreeSet<(i32, u128)>,
    followup_source: std::collections::BTreeSet<(String, u128)>,
    call_by_task: std::collections::BTreeSet<(u128, u128)>,
    consultation_arrival: std::collections::BTreeSet<(u128, u128)>,
}

impl IndexSet {
    fn add(&mut self, rec: &AnyRecord, offset: FixedOffset, keys: &Keys) {
        let e = entries(rec, offset, keys);
        self.time.extend(e.time);
        self.day_step.extend(e.day_step);
        self.phones.extend(e.phones);
        self.names.extend(e.names);
        self.case_due.extend(e.case_due);
        self.followup_due.extend(e.followup_due);
        self.followup_source.extend(e.followup_source);
        self.call_by_task.extend(e.call_by_task);
        self.consultation_arrival.extend(e.consultation_arrival);
    }

    /// (index name, expected count, actual count) for every index whose contents differ.
    fn compare(&self, actual: &IndexSet) -> Vec<(&'static str, usize, usize)> {
        let mut out = Vec::new();
        macro_rules! cmp {
            ($f:ident, $name:expr) => {
                if self.$f != actual.$f {
                    out.push(($name, self.$f.len(), actual.$f.len()));
                }
            };
        }
        cmp!(time, "idx_time");
        cmp!(day_step, "idx_arrival_day_step");
        cmp!(phones, "idx_phone");
        cmp!(names, "idx_name");
        cmp!(case_due, "idx_case_open_due");
        cmp!(followup_due, "idx_followup_open_due");
        cmp!(followup_source, "idx_followup_source");
        cmp!(call_by_task, "idx_calls_by_task");
        cmp!(consultation_arrival, "idx_consultation_arrival");
        out
    }
}

fn read_indexes(tx: &ReadTransaction) -> Result<IndexSet, StoreError> {
    let mut s = IndexSet::default();
    for e in tx.open_table(tables::IDX_TIME)?.iter()? {
        s.time.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_ARRIVAL_DAY_STEP)?.iter()? {
        s.day_step.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_PHONE)?.iter()? {
        let entry = e?;
        let (p, k, i) = entry.0.value();
        s.phones.insert((p.to_string(), k, i));
    }
    for e in tx.open_table(tables::IDX_NAME)?.iter()? {
        let entry = e?;
        let (p, k, i) = entry.0.value();
        s.names.insert((p.to_string(), k, i));
    }
    for e in tx.open_table(tables::IDX_CASE_OPEN_DUE)?.iter()? {
        s.case_due.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_FOLLOWUP_OPEN_DUE)?.iter()? {
        s.followup_due.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_FOLLOWUP_SOURCE)?.iter()? {
        let (k, v) = e?;
        s.followup_source.insert((k.value().to_string(), v.value()));
    }
    for e in tx.open_table(tables::IDX_CALLS_BY_TASK)?.iter()? {
        s.call_by_task.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_CONSULTATION_ARRIVAL)?.iter()? {
        s.consultation_arrival.insert(e?.0.value());
    }
    Ok(s)
}

/// Drops and refills every secondary index from the records, inside `tx`.
pub fn rebuild_indexes_in(tx: &WriteTransaction, offset: FixedOffset, keys: &Keys) -> Result<(), StoreError> {
    for name in tables::INDEX_TABLES {
        // Typed handles are needed to delete; re-create each table empty.
        match name {
            "idx_time" => drop(tx.delete_table(tables::IDX_TIME)?),
            "idx_arrival_day_step" => drop(tx.delete_table(tables::IDX_ARRIVAL_DAY_STEP)?),
            "idx_phone" => drop(tx.delete_table(tables::IDX_PHONE)?),
            "idx_name" => drop(tx.delete_table(tables::IDX_NAME)?),
            "idx_case_open_due" => drop(tx.delete_table(tables::IDX_CASE_OPEN_DUE)?),
            "idx_followup_open_due" => drop(tx.delete_table(tables::IDX_FOLLOWUP_OPEN_DUE)?),
            "idx_followup_source" => drop(tx.delete_table(tables::IDX_FOLLOWUP_SOURCE)?),
            "idx_calls_by_task" => drop(tx.delete_table(tables::IDX_CALLS_BY_TASK)?),
            _ => drop(tx.delete_table(tables::IDX_CONSULTATION_ARRIVAL)?),
        }
    }
    migrate::create_index_tables(tx)?;
    for kind in RecordKind::ALL {
        let mut recs = Vec::new();
        {
            let t = tx.open_table(tables::records(kind))?;
            for e in t.iter()? {
                let (k, v) = e?;
                recs.push(open_any(keys, kind, k.value(), v.value())?);
            }
        }
        for r in &recs {
            index_apply(tx, r, offset, keys, true)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod crypto_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;
