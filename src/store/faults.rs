//! Injected storage faults (tests of disk-full behaviour): a redb [`StorageBackend`] over the store file that fails
//! writes once a byte budget is spent, the way a full disk does, and a way to open the store on it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::StorageBackend;
use redb::backends::FileBackend;

use super::{FILE_NAME, OpenError, Store, StoreError, StoreOptions, crypto, migrate};

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
        Store::finish_open(db, path, None, options, migrate::MIGRATIONS, &key_path)
    }
}
