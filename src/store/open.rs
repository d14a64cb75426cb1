//! Opening a store: the data directory and file checks, the read-only identity inspection (redb header, GuideDesk
//! magic) that refuses foreign, corrupt and newer files untouched, resolving the store key before anything is
//! written, migrations, the first-run metadata and loading the reference data.
//!
//! What happens after the store is open is elsewhere; key rotation is `keys.rs`, the migration steps `migrate.rs`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use guidedesk_sync::{DeviceId, Hlc, HlcClock, codec};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::crypto::{self, Keys, StoreKey};
use super::tables::{self, meta};
use super::{FILE_NAME, OpenError, REFERENCE_SNAPSHOT, Store, StoreError, StoreOptions, migrate};
use crate::model::{Moment, RecordId, ReferenceData};

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
            // The process ended during a catch-up whose phone and name entries were still in memory: the indexes
            // are rebuilt from the records before anything reads them (see `store::backlog`).
            if super::backlog::marked(&tx).map_err(storage)? {
                super::rebuild_indexes_in(&tx, options.utc_offset, &keys).map_err(storage)?;
            }
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
            day_cache: Mutex::default(),
            purged_for: Mutex::default(),
            blind_backlog: Mutex::default(),
            backlog_cap: super::backlog::BACKLOG_MAX_OPS,
        })
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
        return Ok((builder().create(path).map_err(|e| map_db_error(e, path, dir))?, None));
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
            return Ok((builder().open(path).map_err(|e| map_db_error(e, path, dir))?, Some(key)));
        }
        Err(redb::DatabaseError::RepairAborted) => {}
        Err(e) => return Err(map_db_error(e, path, dir)),
    }
    Ok((builder().open(path).map_err(|e| map_db_error(e, path, dir))?, None))
}

/// redb's page cache of a desk's store. redb's default (1 GiB) lets a desk that takes in a year of its site's
/// records (a new desk's backfill) or imports a large list grow to hundreds of megabytes; a desk's working set — today's
/// board, the indexes' upper levels, the open cases and tasks — fits in far less.
pub const STORE_CACHE_BYTES: usize = 64 * 1024 * 1024;

fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_cache_size(STORE_CACHE_BYTES);
    b
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
