//! Injected storage faults (tests of disk-full behaviour): a redb [`StorageBackend`] over the store file that fails
//! writes once a byte budget is spent, the way a full disk does, and a way to open the store on it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::backends::FileBackend;
use redb::{ReadableDatabase as _, StorageBackend};

use super::{
    FILE_NAME, OpenError, Store, StoreError, StoreOptions, check_identity, crypto, init_meta, load_reference, migrate,
    read_key_check, resolve_key, tables,
};

/// The free space left on a simulated disk, shared between the test and the backend.
#[derive(Debug, Clone)]
pub struct DiskSpace(Arc<AtomicU64>);

impl DiskSpace {
    /// A disk with `bytes` free.
    pub fn new(bytes: u64) -> Self {
        Self(Arc::new(AtomicU64::new(bytes)))
    }
    /// No space left: every further write fails.
    pub fn fill(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
    /// Space is back.
    pub fn free(&self) {
        self.0.store(u64::MAX, Ordering::SeqCst);
    }
    fn take(&self, n: u64) -> std::io::Result<()> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(n))
            .map(|_| ())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"))
    }
}

/// A file backend whose writes fail when the [`DiskSpace`] runs out.
#[derive(Debug)]
pub struct LimitedBackend {
    inner: FileBackend,
    space: DiskSpace,
}

impl StorageBackend for LimitedBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let now = self.inner.len()?;
        if len > now {
            self.space.take(len - now)?;
        }
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.space.take(data.len() as u64)?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` on a disk with limited space (tests only: no pre-open inspection).
    #[doc(hidden)]
    pub fn open_on_limited_disk(dir: &Path, options: StoreOptions, space: DiskSpace) -> Result<Store, OpenError> {
        let path = dir.join(FILE_NAME);
        std::fs::create_dir_all(dir).map_err(|source| OpenError::DataDir { path: dir.to_path_buf(), source })?;
        let storage = |e: StoreError| OpenError::Storage { path: path.clone(), source: Box::new(e) };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| OpenError::DataDir { path: path.clone(), source })?;
        let inner = FileBackend::new(file).map_err(|e| storage(e.into()))?;
        let db = redb::Database::builder()
            .create_with_backend(LimitedBackend { inner, space })
            .map_err(|e| storage(e.into()))?;
        let key_path = crypto::resolve_key_path(dir, None);
        let check = {
            let tx = db.begin_read().map_err(|e| storage(e.into()))?;
            read_key_check(&tx).map_err(storage)?
        };
        let (key, stored_check) = resolve_key(check, &path, &key_path)?;
        let keys = key.derive();
        let tx = db.begin_write().map_err(|e| storage(e.into()))?;
        check_identity(&tx, &path)?;
        let env = migrate::MigrationEnv { offset: options.utc_offset, keys: &keys };
        migrate::run(&tx, migrate::MIGRATIONS, &env).map_err(storage)?;
        if stored_check.is_none() {
            let mut m = tx.open_table(tables::META).map_err(|e| storage(e.into()))?;
            m.insert(tables::meta::KEY_CHECK, keys.check_value().as_slice()).map_err(|e| storage(e.into()))?;
        }
        let (device, last_hlc) = init_meta(&tx, options.clock.now()).map_err(storage)?;
        tx.commit().map_err(|e| storage(e.into()))?;
        let reference = load_reference(&db).map_err(storage)?;
        Ok(Store {
            db,
            path,
            device,
            clock: options.clock,
            offset: options.utc_offset,
            hlc: std::sync::Mutex::new(guidedesk_sync::HlcClock::resume(device.node(), last_hlc)),
            reference: std::sync::RwLock::new(Arc::new(reference)),
            keys: std::sync::RwLock::new(Arc::new(keys)),
            key_path,
        })
    }
}
