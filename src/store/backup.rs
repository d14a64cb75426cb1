//! Backups and restores of the kiosk store.
//!
//! - **Backup** ([`Store::backup_to`]): the store is copied table by table inside *one* read transaction, so the
//!   copy is a consistent snapshot even while the desk keeps writing (redb readers never block the writer). The copy
//!   goes to `FILE.partial`, is committed durably, read back and compared table by table, and only then renamed to
//!   `FILE` (and the directory synced). A table the copier does not know makes the backup fail rather than leave
//!   something out.
//! - **While the kiosk runs** redb lets only one process open the file. The running app serves backup requests
//!   through the data directory ([`BackupServer`]): `guidedesk backup` drops `control/backup-<id>.request` (JSON with
//!   the target path) and waits for `control/backup-<id>.reply`, which the app writes after doing the backup in its
//!   own process. Whoever can write the data directory can read the store anyway, so this opens nothing new.
//! - **Restore** ([`restore`]): the backup is copied into a staging directory beside the store, opened there (which
//!   refuses foreign, corrupt and newer files), verified with [`Store::check`], compared with the current store
//!   (refused when the current one is newer or belongs to another device, unless forced), marked as restored, synced
//!   and renamed over the store. The replaced store stays beside it as `guidedesk.redb.replaced-<ms>`.
//! - **Sync after a restore**: the restored store remembers the last sequence number of the backup
//!   ([`Store::restored_through`]). Before its next push the kiosk asks HQ for its cursor; if HQ holds more than the
//!   backup did, the ops written since the restore are renumbered past HQ's cursor and the skipped range is recorded
//!   ([`Store::resume_after_restore`]), so no op reuses a number HQ holds for other content (nothing lost) and the
//!   ops HQ already has are not sent again (nothing twice). [`Store::check`] accepts exactly the recorded ranges.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use guidedesk_sync::{Hlc, Op, codec};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::crypto::outbox_place;
use super::{FILE_NAME, OpenError, Store, StoreError, StoreOptions, open_op, read_u64, tables};
use crate::model::{AuditAction, RecordKind, StaffRef};
use tables::meta;

/// Meta key: the last sequence number of the backup this store was restored from (u64 LE), until the next sync.
pub const META_RESTORED_THROUGH: &str = "restored_through";
/// Meta key: sequence ranges this store skipped after a restore (codec `Vec<(first skipped, first after)>`).
pub const META_SEQ_JUMPS: &str = "seq_jumps";
/// Directory (inside the data directory) of backup requests to a running kiosk.
pub const CONTROL_DIR: &str = "control";

/// Why a backup or restore failed. Nothing is replaced when one fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store (the current one or the backup) could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The backup (or the copy just written) failed verification.
    #[error("{path} is not a sound backup: {}", problems.join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problems: Vec<String>,
    },
    /// The current store holds writes the backup does not.
    #[error(
        "the current store is newer than the backup (last op {current_seq} vs {backup_seq}, clock {current_hlc} vs \
         {backup_hlc}); restoring would discard writes not yet in the backup. Use --force to restore anyway"
    )]
    CurrentIsNewer {
        /// Last seq of the current store.
        current_seq: u64,
        /// Last seq of the backup.
        backup_seq: u64,
        /// Last stamp of the current store.
        current_hlc: Hlc,
        /// Last stamp of the backup.
        backup_hlc: Hlc,
    },
    /// The backup belongs to another kiosk.
    #[error(
        "the backup belongs to device {backup}, this store is device {current}; use --force to replace this kiosk's \
         store with the other kiosk's"
    )]
    OtherDevice {
        /// Device of the current store.
        current: String,
        /// Device of the backup.
        backup: String,
    },
    /// The running kiosk did not answer a backup request.
    #[error(
        "the store is in use and the running kiosk did not answer the backup request within {0:?} (is it a \
         version without backup support?)"
    )]
    NoAnswer(Duration),
    /// The running kiosk tried and failed.
    #[error("the running kiosk could not make the backup: {0}")]
    Refused(String),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io { action, path: path.to_path_buf(), source }
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Records copied.
    pub records: u64,
    /// The last outbox sequence number in the backup.
    pub last_seq: u64,
    /// Tables copied.
    pub tables: usize,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Records in the restored store.
    pub records: u64,
    /// The last outbox sequence number of the restored store.
    pub last_seq: u64,
    /// Where the replaced store was kept, if there was one.
    pub replaced: Option<PathBuf>,
    /// The backup came from another device than the replaced store.
    pub other_device: bool,
}

/// Copies one table; a table the source does not have is skipped.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
    counts: &mut Vec<(String, u64)>,
) -> Result<(), StoreError> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut to = dst.open_table(def)?;
    let mut n = 0u64;
    for e in from.iter()? {
        let (k, v) = e?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    counts.push((redb::TableHandle::name(&def).to_string(), n));
    Ok(())
}

/// Copies every table of the store (known by type) from `src` into `dst`; returns (table, entries) per table.
fn copy_all(src: &ReadTransaction, dst: &redb::WriteTransaction) -> Result<Vec<(String, u64)>, StoreError> {
    let mut counts = Vec::new();
    copy_table(src, dst, tables::META, &mut counts)?;
    copy_table(src, dst, tables::OUTBOX, &mut counts)?;
    copy_table(src, dst, tables::REFERENCE, &mut counts)?;
    copy_table(src, dst, tables::ACK_LOG, &mut counts)?;
    copy_table(src, dst, tables::REPLICAS, &mut counts)?;
    for kind in RecordKind::ALL {
        copy_table(src, dst, tables::records(kind), &mut counts)?;
    }
    copy_table(src, dst, tables::IDX_TIME, &mut counts)?;
    copy_table(src, dst, tables::IDX_ARRIVAL_DAY_STEP, &mut counts)?;
    copy_table(src, dst, tables::IDX_PHONE, &mut counts)?;
    copy_table(src, dst, tables::IDX_NAME, &mut counts)?;
    copy_table(src, dst, tables::IDX_CASE_OPEN_DUE, &mut counts)?;
    copy_table(src, dst, tables::IDX_FOLLOWUP_OPEN_DUE, &mut counts)?;
    copy_table(src, dst, tables::IDX_FOLLOWUP_SOURCE, &mut counts)?;
    copy_table(src, dst, tables::IDX_CALLS_BY_TASK, &mut counts)?;
    copy_table(src, dst, tables::IDX_CONSULTATION_ARRIVAL, &mut counts)?;
    copy_table(src, dst, tables::IDX_APPOINTMENT_DAY, &mut counts)?;
    Ok(counts)
}

fn table_names(tx: &ReadTransaction) -> Result<Vec<String>, StoreError> {
    let mut names: Vec<String> = tx.list_tables()?.map(|h| redb::TableHandle::name(&h).to_string()).collect();
    names.extend(tx.list_multimap_tables()?.map(|h| redb::MultimapTableHandle::name(&h).to_string()));
    names.sort();
    Ok(names)
}

/// Flushes a directory entry (a rename) to disk where the platform supports it.
fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("cannot sync the directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn read_opt_u64(t: &impl ReadableTable<&'static str, &'static [u8]>, key: &str) -> Result<Option<u64>, StoreError> {
    match t.get(key)? {
        Some(g) => Ok(Some(u64::from_le_bytes(
            g.value().try_into().map_err(|_| StoreError::Meta(format!("meta {key} is not 8 bytes")))?,
        ))),
        None => Ok(None),
    }
}

/// The sequence ranges skipped after restores: `(first skipped, first after)`.
pub(super) fn read_jumps(t: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Vec<(u64, u64)>, StoreError> {
    match t.get(META_SEQ_JUMPS)? {
        Some(g) => Ok(codec::decode(g.value())?),
        None => Ok(Vec::new()),
    }
}

impl Store {
    /// Writes a consistent copy of the store to `out` (see the module docs). `out` is replaced only by a complete,
    /// verified copy.
    pub fn backup_to(&self, out: &Path) -> Result<BackupInfo, BackupError> {
        if out == self.path() {
            return Err(BackupError::Refused(format!("{} is the store itself", out.display())));
        }
        let tmp = sidecar(out, ".partial");
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot remove the leftover", &tmp)(e)),
        }
        let result = self.backup_into(&tmp);
        let (counts, last_seq) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, out).map_err(io("cannot move the finished backup to", out))?;
        sync_dir(&parent_of(out))?;
        let bytes = std::fs::metadata(out).map_err(io("cannot read", out))?.len();
        let records = counts.iter().filter(|(n, _)| n.starts_with("rec_")).map(|(_, c)| c).sum();
        Ok(BackupInfo { path: out.to_path_buf(), bytes, records, last_seq, tables: counts.len() })
    }

    fn backup_into(&self, tmp: &Path) -> Result<(Vec<(String, u64)>, u64), BackupError> {
        let src = self.db.begin_read().map_err(StoreError::from)?;
        let source_tables = table_names(&src)?;
        let last_seq =
            read_u64(&src.open_table(tables::META).map_err(StoreError::from)?, meta::NEXT_SEQ)?.saturating_sub(1);
        let counts = {
            let dst = Database::builder().create(tmp).map_err(StoreError::from)?;
            let mut tx = dst.begin_write().map_err(StoreError::from)?;
            let counts = copy_all(&src, &tx)?;
            let unknown: Vec<&String> = source_tables.iter().filter(|n| !counts.iter().any(|(c, _)| c == *n)).collect();
            if !unknown.is_empty() {
                return Err(BackupError::Refused(format!(
                    "the store has tables this backup does not know how to copy: {unknown:?}"
                )));
            }
            tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
            tx.commit().map_err(StoreError::from)?;
            counts
        };
        drop(src);
        // Read the copy back and compare it table by table.
        let copy = Database::builder().open_read_only(tmp).map_err(StoreError::from)?;
        let rtx = copy.begin_read().map_err(StoreError::from)?;
        let mut problems = Vec::new();
        let mut check = |name: &str, found: u64| {
            if let Some((_, want)) = counts.iter().find(|(n, _)| n == name)
                && *want != found
            {
                problems.push(format!("table {name}: copied {want} entries, read back {found}"));
            }
        };
        check("meta", rtx.open_table(tables::META).map_err(StoreError::from)?.len().map_err(StoreError::from)?);
        check("outbox", rtx.open_table(tables::OUTBOX).map_err(StoreError::from)?.len().map_err(StoreError::from)?);
        for kind in RecordKind::ALL {
            let def = tables::records(kind);
            let n = rtx.open_table(def).map_err(StoreError::from)?.len().map_err(StoreError::from)?;
            check(redb::TableHandle::name(&def), n);
        }
        if table_names(&rtx)? != source_tables {
            problems.push("the copy does not have the same tables as the store".into());
        }
        if !problems.is_empty() {
            return Err(BackupError::Invalid { path: tmp.to_path_buf(), problems });
        }
        Ok((counts, last_seq))
    }

    /// The last sequence number of the backup this store was restored from, while the kiosk has not yet synced
    /// since the restore.
    pub fn restored_through(&self) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        read_opt_u64(&tx.open_table(tables::META)?, META_RESTORED_THROUGH)
    }

    /// Sequence ranges skipped after restores: `(first skipped, first after)`.
    pub fn seq_jumps(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let tx = self.db.begin_read()?;
        read_jumps(&tx.open_table(tables::META)?)
    }

    /// Continues after a restore given HQ's cursor for this device (see the module docs), in one durable
    /// transaction. Returns how many ops were renumbered.
    pub fn resume_after_restore(&self, hq_cursor: u64) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let moved = {
            let mut m = tx.open_table(tables::META)?;
            let Some(through) = read_opt_u64(&m, META_RESTORED_THROUGH)? else {
                return Ok(0);
            };
            let mut moved = 0u64;
            if hq_cursor > through {
                let shift = hq_cursor - through;
                let next = read_u64(&m, meta::NEXT_SEQ)?;
                let keys = self.keys();
                let mut ob = tx.open_table(tables::OUTBOX)?;
                let mut ops: Vec<Op> = Vec::new();
                for e in ob.range(through.saturating_add(1)..)? {
                    let (k, v) = e?;
                    ops.push(open_op(&keys, k.value(), v.value())?);
                }
                for op in &ops {
                    ob.remove(op.seq)?;
                }
                for mut op in ops {
                    op.seq += shift;
                    // Each sealed op is bound to its seq, so a renumbered op is sealed again.
                    ob.insert(op.seq, keys.seal(&outbox_place(op.seq), &codec::encode(&op)?)?.as_slice())?;
                    moved += 1;
                }
                m.insert(meta::NEXT_SEQ, (next + shift).to_le_bytes().as_slice())?;
                // HQ is gap-free: holding ops up to its cursor, it holds all of this store's ops up to the backup.
                let acked = read_u64(&m, meta::ACKED_SEQ)?;
                if hq_cursor > acked {
                    m.insert(meta::ACKED_SEQ, hq_cursor.to_le_bytes().as_slice())?;
                    tx.open_table(tables::ACK_LOG)?.insert(hq_cursor, self.clock.now().0)?;
                }
                let mut jumps = read_jumps(&m)?;
                jumps.push((through + 1, hq_cursor + 1));
                m.insert(META_SEQ_JUMPS, codec::encode(&jumps)?.as_slice())?;
            }
            m.remove(META_RESTORED_THROUGH)?;
            moved
        };
        let mut tx = tx;
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        tx.commit()?;
        Ok(moved)
    }

    fn mark_restored(&self) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write()?;
        {
            let mut m = tx.open_table(tables::META)?;
            let last = read_u64(&m, meta::NEXT_SEQ)?.saturating_sub(1);
            // A backup of a store restored but not yet synced keeps the earlier, smaller mark: the ops after it are
            // just as unsafe.
            let mark = read_opt_u64(&m, META_RESTORED_THROUGH)?.map_or(last, |old| old.min(last));
            m.insert(META_RESTORED_THROUGH, mark.to_le_bytes().as_slice())?;
        }
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        tx.commit()?;
        Ok(())
    }
}

/// The keys of a restore: the store's key file, and the key file the backup was sealed with when that is another
/// one (another kiosk's backup, or one made before a key rotation). A backup restored with its own key brings that
/// key along: it is copied over `store_key` (the previous key file is kept beside it as `.replaced-<ms>`).
#[derive(Debug, Clone, Copy)]
pub struct RestoreKeys<'a> {
    /// Where the store's key file is (or is to be).
    pub store_key: &'a Path,
    /// The key file the backup was sealed with, when it is not `store_key`.
    pub backup_key: Option<&'a Path>,
}

/// Restores the store in `data_dir` from the backup `file` (see the module docs). The kiosk must not be running.
pub fn restore(
    data_dir: &Path,
    file: &Path,
    force: bool,
    options: &StoreOptions,
    keys: RestoreKeys<'_>,
) -> Result<RestoreReport, BackupError> {
    std::fs::metadata(file).map_err(io("cannot read the backup", file))?;
    let staging = data_dir.join(".restore");
    match std::fs::remove_dir_all(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot clear the staging directory", &staging)(e)),
    }
    std::fs::create_dir_all(&staging).map_err(io("cannot create the staging directory", &staging))?;
    let result = stage_and_swap(data_dir, &staging, file, force, options, keys);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn stage_and_swap(
    data_dir: &Path,
    staging: &Path,
    file: &Path,
    force: bool,
    options: &StoreOptions,
    keys: RestoreKeys<'_>,
) -> Result<RestoreReport, BackupError> {
    let staged = staging.join(FILE_NAME);
    let backup_key = keys.backup_key.unwrap_or(keys.store_key);
    std::fs::copy(file, &staged).map_err(io("cannot copy the backup to", &staged))?;
    let (backup_stats, backup_hlc) = {
        let b = Store::open_keyed(staging, options.clone(), backup_key).map_err(|e| match e {
            OpenError::NotAStore { detail, .. } | OpenError::Corrupt { detail, .. } => {
                BackupError::Invalid { path: file.to_path_buf(), problems: vec![detail] }
            }
            other => BackupError::Open(other),
        })?;
        let problems = b.check()?;
        if !problems.is_empty() {
            return Err(BackupError::Invalid { path: file.to_path_buf(), problems });
        }
        (b.stats()?, b.last_stamp())
    };
    let current_path = data_dir.join(FILE_NAME);
    let mut other_device = false;
    let has_current = std::fs::metadata(&current_path).is_ok_and(|m| m.len() > 0);
    if has_current {
        let cur = Store::open_keyed(data_dir, options.clone(), keys.store_key)?;
        let s = cur.stats()?;
        other_device = s.device != backup_stats.device;
        if other_device && !force {
            return Err(BackupError::OtherDevice { current: s.device, backup: backup_stats.device });
        }
        let cur_hlc = cur.last_stamp();
        if !other_device && !force && (s.outbox_last_seq > backup_stats.outbox_last_seq || cur_hlc > backup_hlc) {
            return Err(BackupError::CurrentIsNewer {
                current_seq: s.outbox_last_seq,
                backup_seq: backup_stats.outbox_last_seq,
                current_hlc: cur_hlc,
                backup_hlc,
            });
        }
    }
    {
        let b = Store::open_keyed(staging, options.clone(), backup_key)?;
        b.mark_restored()?;
    }
    std::fs::File::open(&staged).and_then(|f| f.sync_all()).map_err(io("cannot sync", &staged))?;
    let replaced = if has_current {
        let keep = data_dir.join(format!("{FILE_NAME}.replaced-{}", options.clock.now().0));
        // A hard link keeps the old store without a moment where no store is in place.
        std::fs::hard_link(&current_path, &keep).map_err(io("cannot keep the replaced store as", &keep))?;
        Some(keep)
    } else {
        None
    };
    let new_key = keys.backup_key.filter(|bk| *bk != keys.store_key);
    if let Some(bk) = new_key {
        // The restored store is sealed with the backup's key, which becomes the store's key. It goes to the
        // pending-key path first: until the store is swapped the current key still matches and the next open drops
        // the pending one; once the store is swapped, the next open finds that only the pending key matches and
        // moves it into place (the same recovery as an interrupted rotation). The previous key is kept.
        if keys.store_key.exists() {
            let keep = sidecar(keys.store_key, &format!(".replaced-{}", options.clock.now().0));
            std::fs::copy(keys.store_key, &keep).map_err(io("cannot keep the replaced key as", &keep))?;
        }
        let pending = super::crypto::pending_key_path(keys.store_key);
        std::fs::copy(bk, &pending).map_err(io("cannot copy the backup's key to", &pending))?;
        std::fs::File::open(&pending).and_then(|f| f.sync_all()).map_err(io("cannot sync", &pending))?;
    }
    std::fs::rename(&staged, &current_path).map_err(io("cannot move the restored store to", &current_path))?;
    if new_key.is_some() {
        let pending = super::crypto::pending_key_path(keys.store_key);
        std::fs::rename(&pending, keys.store_key).map_err(io("cannot install the backup's key as", keys.store_key))?;
        sync_dir(&parent_of(keys.store_key))?;
    }
    sync_dir(data_dir)?;
    Ok(RestoreReport {
        records: backup_stats.records.values().sum(),
        last_seq: backup_stats.outbox_last_seq,
        replaced,
        other_device,
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    out: PathBuf,
    /// Who asked (`cli:<os user>`), for the audit log.
    #[serde(default)]
    actor: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    ok: Option<BackupInfo>,
    error: Option<String>,
}

fn write_atomic(path: &Path, body: &[u8]) -> Result<(), BackupError> {
    let tmp = sidecar(path, ".tmp");
    std::fs::write(&tmp, body).map_err(io("cannot write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("cannot write", path))
}

/// Asks the kiosk running on `data_dir` to write a backup to `out`, and waits up to `timeout` for its answer.
pub fn request_backup(data_dir: &Path, out: &Path, timeout: Duration, actor: &str) -> Result<BackupInfo, BackupError> {
    let out = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir().map_err(io("cannot resolve", out))?.join(out)
    };
    let dir = data_dir.join(CONTROL_DIR);
    std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let request = dir.join(format!("backup-{id}.request"));
    let reply = dir.join(format!("backup-{id}.reply"));
    let body = serde_json::to_vec(&Request { out, actor: actor.to_string() })
        .map_err(|e| BackupError::Refused(e.to_string()))?;
    write_atomic(&request, &body)?;
    let started = Instant::now();
    loop {
        match std::fs::read(&reply) {
            Ok(b) => {
                let _ = std::fs::remove_file(&reply);
                let r: Reply = serde_json::from_slice(&b)
                    .map_err(|e| BackupError::Refused(format!("unreadable answer {}: {e}", reply.display())))?;
                return match (r.ok, r.error) {
                    (Some(info), _) => Ok(info),
                    (None, e) => Err(BackupError::Refused(e.unwrap_or_else(|| "no reason given".into()))),
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot read", &reply)(e)),
        }
        if started.elapsed() > timeout {
            let _ = std::fs::remove_file(&request);
            return Err(BackupError::NoAnswer(timeout));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Serves backup requests ([`request_backup`]) from inside the process that holds the store.
#[derive(Debug)]
pub struct BackupServer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl BackupServer {
    /// Starts a thread named `backup` that looks for requests in `data_dir/control` every `poll`.
    pub fn spawn(store: Arc<Store>, data_dir: PathBuf, poll: Duration) -> std::io::Result<BackupServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name("backup".into()).spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                serve_pending(&store, &data_dir);
                std::thread::sleep(poll);
            }
        })?;
        Ok(BackupServer { stop, handle: Some(handle) })
    }
}

impl Drop for BackupServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Writes a backup ([`Store::backup_to`]) and puts it on the audit log as an export by `actor`. A backup that
/// cannot be put on record is removed again.
pub fn backup_audited(store: &Store, out: &Path, actor: &str) -> Result<BackupInfo, BackupError> {
    let info = store.backup_to(out)?;
    let detail = format!("backup: {} records", info.records);
    if let Err(e) = store.audit(&StaffRef(actor.to_string()), AuditAction::Export, None, &detail) {
        let _ = std::fs::remove_file(out);
        return Err(e.into());
    }
    Ok(info)
}

/// Answers every pending request once.
pub fn serve_pending(store: &Store, data_dir: &Path) {
    let dir = data_dir.join(CONTROL_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".request")) else {
            continue;
        };
        let reply_path = dir.join(format!("{stem}.reply"));
        let reply = match std::fs::read(&path) {
            Ok(b) => match serde_json::from_slice::<Request>(&b) {
                Ok(r) => match backup_audited(store, &r.out, if r.actor.is_empty() { "cli" } else { &r.actor }) {
                    Ok(info) => Reply { ok: Some(info), error: None },
                    Err(e) => Reply { ok: None, error: Some(e.to_string()) },
                },
                Err(e) => Reply { ok: None, error: Some(format!("malformed request {}: {e}", path.display())) },
            },
            Err(_) => continue,
        };
        let _ = std::fs::remove_file(&path);
        if let Ok(body) = serde_json::to_vec(&reply) {
            let _ = write_atomic(&reply_path, &body);
        }
    }
}
