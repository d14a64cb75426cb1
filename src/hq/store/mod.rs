//! HQ's embedded store on redb: one file, `hq.redb`, in HQ's data directory.
//!
//! | table | key → value | purpose |
//! |---|---|---|
//! | `meta` | name → bytes | magic, change-log head and floor |
//! | `devices` | device (u128) → [`DeviceRow`] | enrolled kiosks: site, desk, credential hash, cursor (`last_seq`), revocation |
//! | `tokens` | SHA-256 of a credential → device | credential lookup (HQ never stores a credential itself) |
//! | `codes` | SHA-256 of a one-time code → [`CodeRow`] | enrolment codes |
//! | `records` | (kind, id) → [`StoredRecord`] | every record, merged with `merge_from` on every upsert |
//! | `idx_time` | (kind, business ms, id) | records by kind and time |
//! | `idx_site` | (site, kind, business ms, id) | records by site |
//! | `idx_device` | (device, kind, id) | records by device |
//! | `receipts` | (device, seq) → [`Receipt`] | one per op HQ holds: proves each (device, seq) was taken once |
//! | `quarantine` | (device, seq) → [`QuarantineRow`] | permanently invalid ops, whole, with the reason |
//! | `changes` | change seq → [`ChangeRow`] | the reference-data change log that devices pull |
//! | `feed` | (site, feed seq) → (kind, id) | the site record feed devices pull (`hq::feed`): each record at its latest position |
//! | `feed_pos` | (kind, id) → position, echo device, highest stamp | where each record stands in the feed |
//! | `relay_log`, `relay_meta` | relay seq → op with its origin; name → u64 | a site hub's ops for the group HQ (`relay.rs`) |
//!
//! A push batch is one write transaction (`HqStore::begin`, its
//! [`HqStorage`](guidedesk_sync::server::HqStorage) implementation, in `push.rs`); the device's cursor is
//! advanced in it. redb allows one process per file, so administration while the server runs goes through the
//! server's loopback admin endpoint (see `hq::admin`).
//!
//! The store is split by job: this module opens the file and holds the table layout; `devices.rs` enrols,
//! authenticates and revokes, `push.rs` applies push batches ([`HqBatch`]), `changes.rs` keeps the
//! reference-data change log and serves pulls ([`ScopedChanges`]), `queries.rs` reads records, receipts, quarantine
//! and counts for reports and administration. The rows themselves and [`HqError`] are shared with the PostgreSQL
//! store (`hq::rows`), as are the credential helpers (`hq::credentials`), the enrolment rules (`hq::enrol`) and the
//! admission checks (`hq::admit`).

mod changes;
mod devices;
mod feed;
mod push;
mod queries;
mod relay;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};

use super::admit::ScreenCache;

pub use super::credentials::{check_site_desk, is_code, new_token, normalize_code};
pub(crate) use super::credentials::{new_code, sha};
pub use super::rows::{
    AuthDevice, AuthRefusal, ChangeRow, CodeRow, DeviceRow, EnrollRefusal, Enrolled, HqError, HqStats, OpRef,
    QuarantineRow, REFERENCE_KEY, REFERENCE_STREAM, Receipt, StoredRecord,
};
pub use changes::ScopedChanges;
pub use feed::SiteFeed;
pub use push::HqBatch;
pub use relay::RelayState;

/// The store's file name inside HQ's data directory.
pub const FILE_NAME: &str = "hq.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const DEVICES: TableDefinition<u128, &[u8]> = TableDefinition::new("devices");
const TOKENS: TableDefinition<&[u8], u128> = TableDefinition::new("tokens");
const CODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("codes");
const RECORDS: TableDefinition<(u16, u128), &[u8]> = TableDefinition::new("records");
const IDX_TIME: TableDefinition<(u16, i64, u128), ()> = TableDefinition::new("idx_time");
const IDX_SITE: TableDefinition<(&str, u16, i64, u128), ()> = TableDefinition::new("idx_site");
const IDX_DEVICE: TableDefinition<(u128, u16, u128), ()> = TableDefinition::new("idx_device");
const RECEIPTS: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("receipts");
const QUARANTINE: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("quarantine");
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");

const MAGIC_KEY: &str = "magic";
const MAGIC_VALUE: &[u8] = b"GuideDesk HQ store";
const CHANGE_HEAD: &str = "change_head";
const CHANGE_FLOOR: &str = "change_floor";

/// HQ's store.
#[derive(Debug)]
pub struct HqStore {
    db: Database,
    path: PathBuf,
    screens: ScreenCache,
    /// Whether the store is a site hub (logs every applied op for the group HQ).
    hub: bool,
}

fn read_u64(t: &impl ReadableTable<&'static str, &'static [u8]>, key: &str) -> Result<u64, HqError> {
    Ok(match t.get(key)? {
        Some(g) => u64::from_le_bytes(g.value().try_into().map_err(|_| HqError::Refused(format!("meta {key}")))?),
        None => 0,
    })
}

impl HqStore {
    /// Opens (or creates) the HQ store in `dir`.
    pub fn open(dir: &Path) -> Result<HqStore, HqError> {
        // Owner-only: hq.redb holds every kiosk's records in clear (names, phones, complaints). The directory is
        // created 0700 and the file 0600; ones left looser by an older version are tightened.
        crate::private_files::prepare_private_dir(dir)
            .map_err(|source| HqError::DataDir { path: dir.to_path_buf(), source })?;
        let path = dir.join(FILE_NAME);
        crate::private_files::prepare_private_file(&path)
            .map_err(|source| HqError::DataDir { path: dir.to_path_buf(), source })?;
        let db = match Database::builder().create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(HqError::Locked(path)),
            Err(e) => return Err(e.into()),
        };
        let tx = db.begin_write()?;
        {
            let names: Vec<String> = tx.list_tables()?.map(|h| redb::TableHandle::name(&h).to_string()).collect();
            let mut meta = tx.open_table(META)?;
            let magic = meta.get(MAGIC_KEY)?.map(|g| g.value().to_vec());
            match magic {
                Some(m) if m == MAGIC_VALUE => {}
                None if names.is_empty() => {
                    meta.insert(MAGIC_KEY, MAGIC_VALUE)?;
                }
                _ => return Err(HqError::NotAnHqStore(path)),
            }
            drop(meta);
            tx.open_table(DEVICES)?;
            tx.open_table(TOKENS)?;
            tx.open_table(CODES)?;
            tx.open_table(RECORDS)?;
            tx.open_table(IDX_TIME)?;
            tx.open_table(IDX_SITE)?;
            tx.open_table(IDX_DEVICE)?;
            tx.open_table(RECEIPTS)?;
            tx.open_table(QUARANTINE)?;
            tx.open_table(CHANGES)?;
            tx.open_table(feed::FEED)?;
            tx.open_table(feed::FEED_POS)?;
            relay::create(&tx)?;
        }
        feed::backfill(&tx)?;
        let hub = HqStore::read_hub_flag(&tx)?;
        tx.commit()?;
        Ok(HqStore { db, path, screens: ScreenCache::default(), hub })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<ReadTransaction, HqError> {
        Ok(self.db.begin_read()?)
    }
}
