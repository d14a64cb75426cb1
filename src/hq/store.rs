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
//!
//! A push batch is one write transaction ([`HqStore::begin`] implements [`HqStorage`]); the device's cursor is
//! advanced in it. redb allows one process per file, so administration while the server runs goes through the
//! server's loopback admin endpoint (see `hq::admin`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use guidedesk_sync::protocol::Change;
use guidedesk_sync::server::{ChangeSource, HqStorage, HqTx, OpContext, Verdict};
use guidedesk_sync::{DeviceId, Op, codec};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::admit::{Screen, ScreenCache};
use crate::model::{AnyRecord, RecordKind, ReferenceData};
use crate::store::decode_op_payload;

/// The store's file name inside HQ's data directory.
pub const FILE_NAME: &str = "hq.redb";
/// The only stream devices pull today: reference data.
pub const REFERENCE_STREAM: &str = "reference";
/// The key of the reference data that applies to every site.
pub const REFERENCE_KEY: &str = "reference";

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

/// Why an HQ store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HqError {
    /// The database engine failed.
    #[error("HQ storage error: {0}")]
    Storage(#[from] redb::Error),
    /// Stored bytes could not be decoded.
    #[error("HQ stored data cannot be decoded: {0}")]
    Codec(#[from] codec::CodecError),
    /// Another process (normally the running server) has the store open.
    #[error("the HQ store {0} is in use by another process")]
    Locked(PathBuf),
    /// The file is not an HQ store.
    #[error("{0} is not a GuideDesk HQ store (left untouched)")]
    NotAnHqStore(PathBuf),
    /// The data directory cannot be used.
    #[error("HQ data directory {path} cannot be used: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PostgreSQL failed or cannot be reached (HQ answers 503 with `Retry-After`; nothing was applied).
    #[error("HQ database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The PostgreSQL schema could not be migrated.
    #[error("HQ database migration failed: {0}")]
    Migrate(String),
    /// A request was refused (bad input, unknown device, …); the message says why.
    #[error("{0}")]
    Refused(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for HqError {
            fn from(e: $t) -> Self {
                HqError::Storage(e.into())
            }
        }
    )*};
}
from_redb!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError, redb::DatabaseError);

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    /// Site code.
    pub site: String,
    /// Desk code.
    pub desk: String,
    /// SHA-256 of the current credential.
    pub token_hash: [u8; 32],
    /// When it enrolled (ms).
    pub enrolled_ms: u64,
    /// When it was revoked (ms), if it was.
    pub revoked_ms: Option<u64>,
    /// The highest op sequence number HQ holds from it.
    pub last_seq: u64,
    /// When it last pushed (ms).
    pub last_push_ms: u64,
    /// Its clock minus HQ's at its last push (ms).
    pub skew_ms: i64,
}

/// A one-time enrolment code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRow {
    /// Site the enrolled device will belong to.
    pub site: String,
    /// Desk at the site.
    pub desk: String,
    /// When the code was made (ms).
    pub created_ms: u64,
    /// When it stops working (ms).
    pub expires_ms: u64,
    /// The device that used it.
    pub used_by: Option<u128>,
    /// When it was first used (ms).
    pub used_ms: Option<u64>,
    /// The only device it may enrol, when it was issued for one (`enroll-code --device`).
    pub for_device: Option<u128>,
}

/// A code row as written before first use and device binding were recorded.
#[derive(Deserialize)]
struct CodeRowV1 {
    site: String,
    desk: String,
    created_ms: u64,
    expires_ms: u64,
    used_by: Option<u128>,
}

impl CodeRow {
    /// Decodes a code row of either layout (an old row has no first-use time, so it gets no retry window).
    pub fn decode(bytes: &[u8]) -> Result<CodeRow, codec::CodecError> {
        codec::decode::<CodeRow>(bytes).or_else(|e| {
            codec::decode::<CodeRowV1>(bytes)
                .map(|o| CodeRow {
                    site: o.site,
                    desk: o.desk,
                    created_ms: o.created_ms,
                    expires_ms: o.expires_ms,
                    used_by: o.used_by,
                    used_ms: None,
                    for_device: None,
                })
                .map_err(|_| e)
        })
    }

    fn state(&self) -> super::enrol::CodeState<'_> {
        super::enrol::CodeState {
            site: &self.site,
            expires_ms: self.expires_ms,
            used_by: self.used_by,
            used_ms: self.used_ms,
            for_device: self.for_device,
        }
    }
}

/// A record as HQ keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The device that first sent it.
    pub device: u128,
    /// That device's site.
    pub site: String,
    /// When HQ first received it (ms).
    pub first_received_ms: u64,
    /// When HQ last merged a change into it (ms).
    pub updated_ms: u64,
    /// The device's clock minus HQ's when it was first sent (ms): business time corrected = occurred − skew.
    pub skew_ms: i64,
    /// Whether an op of this record had a stamp from the future (clamped at HQ).
    pub clock_flagged: bool,
    /// The merged record.
    pub record: AnyRecord,
}

impl StoredRecord {
    /// A record HQ has not seen, as the first op of it (from `ctx`'s device at `site`) creates it.
    pub fn first(ctx: &OpContext, site: &str, record: AnyRecord) -> StoredRecord {
        StoredRecord {
            device: ctx.device.0,
            site: site.to_string(),
            first_received_ms: ctx.received_ms,
            updated_ms: ctx.received_ms,
            skew_ms: ctx.skew_ms,
            clock_flagged: ctx.clamped,
            record,
        }
    }

    /// Merges an op's copy of the record, sent by a device of `site`, into this one and notes when and how it
    /// arrived. Refused, with the reason and nothing changed, when the device is of another site than the
    /// record's ([`super::admit::owner`]) or the op carries a record of another kind.
    pub fn merge(&mut self, incoming: &AnyRecord, ctx: &OpContext, site: &str) -> Result<(), String> {
        super::admit::owner(&self.site, site, &self.record)?;
        if !self.record.merge_from(incoming) {
            return Err(format!("record {} changed kind", self.record.id().0));
        }
        self.updated_ms = ctx.received_ms;
        self.clock_flagged |= ctx.clamped;
        Ok(())
    }

    /// The record's business time corrected by the sending device's clock skew, when the skew exceeded the
    /// tolerance; the business time itself otherwise.
    pub fn corrected_business_ms(&self) -> i64 {
        let t = self.record.occurred_at().0;
        if self.skew_ms.unsigned_abs() > guidedesk_sync::protocol::MAX_FUTURE_SKEW_MS {
            t.saturating_sub(self.skew_ms)
        } else {
            t
        }
    }
}

/// The receipt of one op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Record kind code.
    pub kind: u16,
    /// Record id.
    pub id: u128,
    /// When HQ took it (ms).
    pub received_ms: u64,
    /// Whether it went to quarantine.
    pub quarantined: bool,
    /// Whether its stamp was clamped.
    pub clamped: bool,
}

/// A quarantined op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRow {
    /// The op, whole.
    pub op: Op,
    /// Why it cannot be applied.
    pub reason: String,
    /// When HQ received it (ms).
    pub received_ms: u64,
}

/// One change of the pull log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    /// Stream name.
    pub stream: String,
    /// `None`: every site; `Some(site)`: that site only.
    pub scope: Option<String>,
    /// Entry key.
    pub key: String,
    /// Value, or `None` for a removal.
    pub value: Option<Vec<u8>>,
}

/// HQ's counts, for `guidedesk-hq stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HqStats {
    /// Records per kind name.
    pub records: std::collections::BTreeMap<&'static str, u64>,
    /// Enrolled devices (revoked ones included).
    pub devices: u64,
    /// Quarantined ops.
    pub quarantined: u64,
}

/// The result of a successful enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The device's new credential.
    pub token: String,
    /// Site.
    pub site: String,
    /// Desk.
    pub desk: String,
}

/// Why an enrolment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollRefusal {
    /// Unknown code.
    #[error("the enrolment code is not known to HQ")]
    Invalid,
    /// Used already (by another device, or by this one longer ago than the retry window).
    #[error("the enrolment code was already used; ask HQ for a new one")]
    Used,
    /// Expired.
    #[error("the enrolment code has expired; ask HQ for a new one")]
    Expired,
    /// Issued for another device id.
    #[error("the enrolment code was issued for another device")]
    ForAnotherDevice,
    /// The device is enrolled already and the code was not issued for it.
    #[error(
        "this device is enrolled already; to give it a new credential, HQ issues a code for it \
         (guidedesk-hq enroll-code --device ID)"
    )]
    AlreadyEnrolled,
    /// The device is revoked.
    #[error("this device was revoked at HQ; enrolment does not lift that (guidedesk-hq reinstate --device ID)")]
    Revoked,
    /// The code is for another site than the device's.
    #[error("the enrolment code is for another site than this device's; a device never moves between sites")]
    OtherSite,
}

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthRefusal {
    /// Unknown credential.
    #[error("unknown device credential")]
    Unknown,
    /// The device was revoked.
    #[error("this device was revoked at HQ; it keeps working locally, but sync stops until it is enrolled again")]
    Revoked,
}

/// The authenticated device behind a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthDevice {
    /// The device.
    pub device: DeviceId,
    /// Its site.
    pub site: String,
}

/// One op of one device: (device, seq).
pub type OpRef = (DeviceId, u64);

/// HQ's store.
#[derive(Debug)]
pub struct HqStore {
    db: Database,
    path: PathBuf,
    screens: ScreenCache,
}

pub(crate) fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Normalises a typed enrolment code: upper case, no separators or spaces.
/// Site and desk codes as enrolment codes carry them: trimmed, 1–64 characters, none a control character.
pub fn check_site_desk<'a>(site: &'a str, desk: &'a str) -> Result<(&'a str, &'a str), HqError> {
    let (site, desk) = (site.trim(), desk.trim());
    for (name, value) in [("site", site), ("desk", desk)] {
        if !is_code(value) {
            return Err(HqError::Refused(format!("{name} must be 1 to 64 characters without control characters")));
        }
    }
    Ok((site, desk))
}

/// Whether `s` is a plausible site or desk code (see [`check_site_desk`]).
pub fn is_code(s: &str) -> bool {
    (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control)
}

pub fn normalize_code(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], HqError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| HqError::Refused(format!("no randomness available: {e}")))?;
    Ok(b)
}

/// A new credential: 32 random bytes in hex.
pub fn new_token() -> Result<String, HqError> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64);
    for b in random_bytes::<32>()? {
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

pub(crate) fn new_code() -> Result<String, HqError> {
    // Crockford base32 without I, L, O, U: easy to read aloud and type. 12 characters, 60 bits.
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bytes = random_bytes::<12>()?;
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
    Ok(chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-"))
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
        crate::store::crypto::prepare_private_dir(dir)
            .map_err(|source| HqError::DataDir { path: dir.to_path_buf(), source })?;
        let path = dir.join(FILE_NAME);
        crate::store::crypto::prepare_private_file(&path)
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
        }
        tx.commit()?;
        Ok(HqStore { db, path, screens: ScreenCache::default() })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<ReadTransaction, HqError> {
        Ok(self.db.begin_read()?)
    }

    /// Makes a one-time enrolment code for a desk, valid for `ttl_ms`.
    pub fn create_code(&self, site: &str, desk: &str, now_ms: u64, ttl_ms: u64) -> Result<String, HqError> {
        self.create_code_for(site, desk, None, now_ms, ttl_ms)
    }

    /// [`HqStore::create_code`]; with `for_device`, only that device may use it (a new credential for an enrolled
    /// device, e.g. a kiosk whose disk was replaced).
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
        let row = CodeRow {
            site: site.to_string(),
            desk: desk.to_string(),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            used_by: None,
            used_ms: None,
            for_device: for_device.map(|d| d.0),
        };
        let tx = self.db.begin_write()?;
        tx.open_table(CODES)?
            .insert(sha(normalize_code(&code).as_bytes()).as_slice(), codec::encode(&row)?.as_slice())?;
        tx.commit()?;
        Ok(code)
    }

    /// Trades a code for a credential under the rules of [`super::enrol`]. A device enrolled before keeps its
    /// cursor, so nothing it sent is taken twice.
    pub fn enroll(
        &self,
        code: &str,
        device: DeviceId,
        now_ms: u64,
    ) -> Result<Result<Enrolled, EnrollRefusal>, HqError> {
        let key = sha(normalize_code(code).as_bytes());
        let tx = self.db.begin_write()?;
        let enrolled = {
            let mut codes = tx.open_table(CODES)?;
            let Some(mut row) = codes.get(key.as_slice())?.map(|g| CodeRow::decode(g.value())).transpose()? else {
                return Ok(Err(EnrollRefusal::Invalid));
            };
            let mut devices = tx.open_table(DEVICES)?;
            let old = devices.get(device.0)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?;
            let state =
                old.as_ref().map(|d| super::enrol::DeviceState { site: &d.site, revoked: d.revoked_ms.is_some() });
            if let Err(refusal) = super::enrol::check(&row.state(), state.as_ref(), device.0, now_ms) {
                return Ok(Err(refusal));
            }
            row.used_by = Some(device.0);
            row.used_ms.get_or_insert(now_ms);
            codes.insert(key.as_slice(), codec::encode(&row)?.as_slice())?;
            let token = new_token()?;
            let token_hash = sha(token.as_bytes());
            let mut tokens = tx.open_table(TOKENS)?;
            let dev = match old {
                Some(mut d) => {
                    tokens.remove(d.token_hash.as_slice())?;
                    d.desk.clone_from(&row.desk);
                    d.token_hash = token_hash;
                    d
                }
                None => DeviceRow {
                    site: row.site.clone(),
                    desk: row.desk.clone(),
                    token_hash,
                    enrolled_ms: now_ms,
                    revoked_ms: None,
                    last_seq: 0,
                    last_push_ms: 0,
                    skew_ms: 0,
                },
            };
            devices.insert(device.0, codec::encode(&dev)?.as_slice())?;
            tokens.insert(token_hash.as_slice(), device.0)?;
            Enrolled { token, site: row.site, desk: row.desk }
        };
        tx.commit()?;
        Ok(Ok(enrolled))
    }

    /// The device behind a credential.
    pub fn authenticate(&self, token: &str) -> Result<Result<AuthDevice, AuthRefusal>, HqError> {
        let tx = self.read()?;
        let Some(device) = tx.open_table(TOKENS)?.get(sha(token.trim().as_bytes()).as_slice())?.map(|g| g.value())
        else {
            return Ok(Err(AuthRefusal::Unknown));
        };
        let Some(row) = Self::device_in(&tx, device)? else {
            return Ok(Err(AuthRefusal::Unknown));
        };
        if row.revoked_ms.is_some() {
            return Ok(Err(AuthRefusal::Revoked));
        }
        Ok(Ok(AuthDevice { device: DeviceId(device), site: row.site }))
    }

    fn device_in(tx: &ReadTransaction, device: u128) -> Result<Option<DeviceRow>, HqError> {
        Ok(tx.open_table(DEVICES)?.get(device)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?)
    }

    /// A device's row.
    pub fn device(&self, device: DeviceId) -> Result<Option<DeviceRow>, HqError> {
        Self::device_in(&self.read()?, device.0)
    }

    /// Every device.
    pub fn devices(&self) -> Result<Vec<(DeviceId, DeviceRow)>, HqError> {
        let tx = self.read()?;
        let mut out = Vec::new();
        for e in tx.open_table(DEVICES)?.iter()? {
            let (k, v) = e?;
            out.push((DeviceId(k.value()), codec::decode(v.value())?));
        }
        Ok(out)
    }

    /// Revokes a device: its credential stops working. Returns whether the device exists.
    pub fn revoke(&self, device: DeviceId, now_ms: u64) -> Result<bool, HqError> {
        let tx = self.db.begin_write()?;
        let found = {
            let mut devices = tx.open_table(DEVICES)?;
            let row = devices.get(device.0)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?;
            match row {
                Some(mut r) => {
                    r.revoked_ms.get_or_insert(now_ms);
                    devices.insert(device.0, codec::encode(&r)?.as_slice())?;
                    true
                }
                None => false,
            }
        };
        tx.commit()?;
        Ok(found)
    }

    /// Lifts a device's revocation: its credential works again. Returns whether the device exists.
    pub fn reinstate(&self, device: DeviceId) -> Result<bool, HqError> {
        let tx = self.db.begin_write()?;
        let found = {
            let mut devices = tx.open_table(DEVICES)?;
            let row = devices.get(device.0)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?;
            match row {
                Some(mut r) => {
                    r.revoked_ms = None;
                    devices.insert(device.0, codec::encode(&r)?.as_slice())?;
                    true
                }
                None => false,
            }
        };
        tx.commit()?;
        Ok(found)
    }

    /// A record.
    pub fn record(&self, kind: RecordKind, id: u128) -> Result<Option<StoredRecord>, HqError> {
        let tx = self.read()?;
        let t = tx.open_table(RECORDS)?;
        Ok(t.get((kind.code(), id))?.map(|g| codec::decode::<StoredRecord>(g.value())).transpose()?)
    }

    /// Ids of records of a kind with business time in `[from, to)`, optionally only from one site.
    pub fn ids_between(&self, kind: RecordKind, site: Option<&str>, from: i64, to: i64) -> Result<Vec<u128>, HqError> {
        let tx = self.read()?;
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        let k = kind.code();
        if let Some(site) = site {
            for e in tx.open_table(IDX_SITE)?.range((site, k, from, 0u128)..(site, k, to, 0u128))? {
                out.push(e?.0.value().3);
            }
        } else {
            for e in tx.open_table(IDX_TIME)?.range((k, from, 0u128)..(k, to, 0u128))? {
                out.push(e?.0.value().2);
            }
        }
        Ok(out)
    }

    /// Ids of records of a kind first sent by a device.
    pub fn ids_of_device(&self, device: DeviceId, kind: RecordKind) -> Result<Vec<u128>, HqError> {
        let tx = self.read()?;
        let mut out = Vec::new();
        let k = kind.code();
        for e in tx.open_table(IDX_DEVICE)?.range((device.0, k, 0u128)..=(device.0, k, u128::MAX))? {
            out.push(e?.0.value().2);
        }
        Ok(out)
    }

    /// Every receipt: (device, seq) → receipt.
    pub fn receipts(&self) -> Result<Vec<(OpRef, Receipt)>, HqError> {
        let tx = self.read()?;
        let mut out = Vec::new();
        for e in tx.open_table(RECEIPTS)?.iter()? {
            let (k, v) = e?;
            let (d, s) = k.value();
            out.push(((DeviceId(d), s), codec::decode(v.value())?));
        }
        Ok(out)
    }

    /// Every quarantined op: (device, seq) → row.
    pub fn quarantined(&self) -> Result<Vec<(OpRef, QuarantineRow)>, HqError> {
        let tx = self.read()?;
        let mut out = Vec::new();
        for e in tx.open_table(QUARANTINE)?.iter()? {
            let (k, v) = e?;
            let (d, s) = k.value();
            out.push(((DeviceId(d), s), codec::decode(v.value())?));
        }
        Ok(out)
    }

    /// Applies a quarantined op without the time and code checks (an admin looked at it), removes it from
    /// quarantine and marks its receipt applied. Refused, with nothing changed, when the op still cannot be applied
    /// (undecodable, another site's record, another kind). `Ok(None)`: no such op in quarantine.
    pub fn quarantine_release(
        &self,
        device: DeviceId,
        seq: u64,
        now_ms: u64,
    ) -> Result<Option<Result<(), String>>, HqError> {
        let tx = self.db.begin_write()?;
        let verdict = {
            let Some(row) = tx
                .open_table(QUARANTINE)?
                .get((device.0, seq))?
                .map(|g| codec::decode::<QuarantineRow>(g.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let dev = tx
                .open_table(DEVICES)?
                .get(device.0)?
                .map(|g| codec::decode::<DeviceRow>(g.value()))
                .transpose()?
                .ok_or_else(|| {
                    HqError::Refused(format!("device {} is not enrolled", uuid::Uuid::from_u128(device.0)))
                })?;
            let ctx =
                OpContext { device, received_ms: now_ms, stamp: row.op.stamp, clamped: false, skew_ms: dev.skew_ms };
            let mut t = BatchTables {
                screen: None,
                records: tx.open_table(RECORDS)?,
                idx_time: tx.open_table(IDX_TIME)?,
                idx_site: tx.open_table(IDX_SITE)?,
                idx_device: tx.open_table(IDX_DEVICE)?,
                receipts: tx.open_table(RECEIPTS)?,
            };
            t.apply(&dev.site, &row.op, &ctx)?
        };
        match verdict {
            Verdict::Applied => {
                tx.open_table(QUARANTINE)?.remove((device.0, seq))?;
                tx.commit()?;
                Ok(Some(Ok(())))
            }
            Verdict::Invalid(reason) => Ok(Some(Err(reason))),
        }
    }

    /// Removes an op from quarantine for good: its receipt stays, so the device's queue never sends it again.
    /// Whether it was there.
    pub fn quarantine_drop(&self, device: DeviceId, seq: u64) -> Result<bool, HqError> {
        let tx = self.db.begin_write()?;
        let found = tx.open_table(QUARANTINE)?.remove((device.0, seq))?.is_some();
        tx.commit()?;
        Ok(found)
    }

    /// Counts.
    pub fn stats(&self) -> Result<HqStats, HqError> {
        let tx = self.read()?;
        let recs = tx.open_table(RECORDS)?;
        let mut records = std::collections::BTreeMap::new();
        for kind in RecordKind::ALL {
            let mut n = 0u64;
            for e in recs.range((kind.code(), 0u128)..=(kind.code(), u128::MAX))? {
                e?;
                n += 1;
            }
            records.insert(kind.name(), n);
        }
        Ok(HqStats { records, devices: tx.open_table(DEVICES)?.len()?, quarantined: tx.open_table(QUARANTINE)?.len()? })
    }

    /// Publishes reference data (for every site, or one site) as a new change, then compacts the change log keeping
    /// at least the last `keep` changes. Returns the change's sequence number.
    pub fn import_reference(&self, data: &ReferenceData, site: Option<&str>, keep: usize) -> Result<u64, HqError> {
        data.check().map_err(|e| HqError::Refused(e.to_string()))?;
        let key = site.map_or_else(|| REFERENCE_KEY.to_string(), |s| format!("{REFERENCE_KEY}@{s}"));
        let row = ChangeRow {
            stream: REFERENCE_STREAM.into(),
            scope: site.map(str::to_string),
            key,
            // JSON, like the kiosk's stored snapshot: new fields with serde defaults stay readable both ways.
            value: Some(serde_json::to_vec(data).map_err(|e| HqError::Refused(format!("reference data: {e}")))?),
        };
        let tx = self.db.begin_write()?;
        let seq = append_change(&tx, &row)?;
        compact_changes(&tx, keep)?;
        tx.commit()?;
        self.screens.clear();
        Ok(seq)
    }

    /// The latest reference data that applies to a site (what a device there holds after a full pull), with its
    /// change sequence number.
    pub fn reference_for(&self, site: &str) -> Result<Option<(u64, ReferenceData)>, HqError> {
        let tx = self.read()?;
        let src = ScopedChanges { tx, stream: REFERENCE_STREAM.into(), site: site.to_string() };
        let snap = src.snapshot()?;
        match snap.last() {
            Some(c) => match &c.value {
                Some(v) => Ok(Some((
                    c.seq,
                    serde_json::from_slice(v).map_err(|e| HqError::Refused(format!("stored reference data: {e}")))?,
                ))),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// A read snapshot of a stream's change log as a device at `site` sees it.
    pub fn changes_for(&self, stream: &str, site: &str) -> Result<ScopedChanges, HqError> {
        Ok(ScopedChanges { tx: self.read()?, stream: stream.to_string(), site: site.to_string() })
    }
}

fn append_change(tx: &WriteTransaction, row: &ChangeRow) -> Result<u64, HqError> {
    let mut meta = tx.open_table(META)?;
    let seq = read_u64(&meta, CHANGE_HEAD)? + 1;
    meta.insert(CHANGE_HEAD, seq.to_le_bytes().as_slice())?;
    tx.open_table(CHANGES)?.insert(seq, codec::encode(row)?.as_slice())?;
    Ok(seq)
}

/// Drops superseded changes and removals older than the last `keep` changes; the floor moves past them, so devices
/// with an older cursor get a reset to the snapshot.
fn compact_changes(tx: &WriteTransaction, keep: usize) -> Result<(), HqError> {
    let mut changes = tx.open_table(CHANGES)?;
    let mut rows: Vec<(u64, ChangeRow)> = Vec::new();
    for e in changes.iter()? {
        let (k, v) = e?;
        rows.push((k.value(), codec::decode(v.value())?));
    }
    let mut latest: std::collections::BTreeMap<(&str, &str), u64> = std::collections::BTreeMap::new();
    for (seq, r) in &rows {
        latest.insert((r.stream.as_str(), r.key.as_str()), *seq);
    }
    let cut = rows.len().saturating_sub(keep);
    let mut floor = None;
    for (i, (seq, r)) in rows.iter().enumerate() {
        let live = latest.get(&(r.stream.as_str(), r.key.as_str())) == Some(seq) && r.value.is_some();
        if i < cut && !live {
            changes.remove(*seq)?;
            floor = Some(*seq);
        }
    }
    drop(changes);
    if let Some(f) = floor {
        let mut meta = tx.open_table(META)?;
        let old = read_u64(&meta, CHANGE_FLOOR)?;
        meta.insert(CHANGE_FLOOR, old.max(f).to_le_bytes().as_slice())?;
    }
    Ok(())
}

/// A read snapshot of one stream's change log, filtered to the changes a site sees.
pub struct ScopedChanges {
    tx: ReadTransaction,
    stream: String,
    site: String,
}

impl std::fmt::Debug for ScopedChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedChanges").field("stream", &self.stream).field("site", &self.site).finish_non_exhaustive()
    }
}

impl ScopedChanges {
    fn visible(&self, r: &ChangeRow) -> bool {
        r.stream == self.stream && r.scope.as_deref().is_none_or(|s| s == self.site)
    }
}

impl ChangeSource for ScopedChanges {
    type Error = HqError;

    fn head(&self) -> Result<u64, HqError> {
        read_u64(&self.tx.open_table(META)?, CHANGE_HEAD)
    }

    fn floor(&self) -> Result<u64, HqError> {
        read_u64(&self.tx.open_table(META)?, CHANGE_FLOOR)
    }

    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, HqError> {
        let mut out = Vec::new();
        for e in self.tx.open_table(CHANGES)?.range(after.saturating_add(1)..)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = e?;
            let r: ChangeRow = codec::decode(v.value())?;
            if self.visible(&r) {
                out.push(Change { seq: k.value(), key: r.key, value: r.value });
            }
        }
        Ok(out)
    }

    fn snapshot(&self) -> Result<Vec<Change>, HqError> {
        let mut latest: std::collections::BTreeMap<String, Change> = std::collections::BTreeMap::new();
        for e in self.tx.open_table(CHANGES)?.iter()? {
            let (k, v) = e?;
            let r: ChangeRow = codec::decode(v.value())?;
            if self.visible(&r) {
                latest.insert(r.key.clone(), Change { seq: k.value(), key: r.key, value: r.value });
            }
        }
        let mut out: Vec<Change> = latest.into_values().filter(|c| c.value.is_some()).collect();
        out.sort_by_key(|c| c.seq);
        Ok(out)
    }
}

/// One push batch's write transaction.
pub struct HqBatch<'a> {
    tx: WriteTransaction,
    site: Option<String>,
    store: &'a HqStore,
}

impl std::fmt::Debug for HqBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HqBatch").finish_non_exhaustive()
    }
}

impl HqStorage for HqStore {
    type Error = HqError;
    type Tx<'a> = HqBatch<'a>;

    fn begin(&self) -> Result<HqBatch<'_>, HqError> {
        Ok(HqBatch { tx: self.db.begin_write()?, site: None, store: self })
    }
}

impl HqBatch<'_> {
    fn device_row(&self, device: DeviceId) -> Result<Option<DeviceRow>, HqError> {
        Ok(self.tx.open_table(DEVICES)?.get(device.0)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?)
    }

    fn site_of(&mut self, device: DeviceId) -> Result<String, HqError> {
        if let Some(s) = &self.site {
            return Ok(s.clone());
        }
        let site = self.device_row(device)?.map(|d| d.site).unwrap_or_default();
        self.site = Some(site.clone());
        Ok(site)
    }

    fn receipt(&self, op: &Op, ctx: &OpContext, quarantined: bool) -> Result<(), HqError> {
        let r = Receipt {
            kind: op.key.kind,
            id: op.key.id,
            received_ms: ctx.received_ms,
            quarantined,
            clamped: ctx.clamped,
        };
        let mut t = self.tx.open_table(RECEIPTS)?;
        if t.insert((ctx.device.0, op.seq), codec::encode(&r)?.as_slice())?.is_some() {
            // apply_push only hands over ops above the cursor, so this would be a bug: refuse the batch.
            return Err(HqError::Refused(format!("op {} of device {:x} was received twice", op.seq, ctx.device.0)));
        }
        Ok(())
    }
}

/// The tables a push batch writes, open for the whole batch.
struct BatchTables<'t> {
    /// The time and code checks; `None` when an admin releases a quarantined op.
    screen: Option<Arc<Screen>>,
    records: redb::Table<'t, (u16, u128), &'static [u8]>,
    idx_time: redb::Table<'t, (u16, i64, u128), ()>,
    idx_site: redb::Table<'t, (&'static str, u16, i64, u128), ()>,
    idx_device: redb::Table<'t, (u128, u16, u128), ()>,
    receipts: redb::Table<'t, (u128, u64), &'static [u8]>,
}

impl BatchTables<'_> {
    /// Applies one op: decodes its payload, merges it into the stored record (or creates it) with its indexes, and
    /// records its receipt.
    fn apply(&mut self, site: &str, op: &Op, ctx: &OpContext) -> Result<Verdict, HqError> {
        let incoming = match decode_op_payload(op) {
            Ok(r) => r,
            Err(e) => return Ok(Verdict::Invalid(e.to_string())),
        };
        if let Some(screen) = &self.screen
            && let Err(reason) = super::admit::screen(&incoming, ctx, screen)
        {
            return Ok(Verdict::Invalid(reason));
        }
        let kind = op.key.kind;
        let id = op.key.id;
        let old = self.records.get((kind, id))?.map(|g| codec::decode::<StoredRecord>(g.value())).transpose()?;
        let stored = if let Some(mut s) = old {
            let before = s.record.occurred_at().0;
            if let Err(reason) = s.merge(&incoming, ctx, site) {
                return Ok(Verdict::Invalid(reason));
            }
            let after = s.record.occurred_at().0;
            if before != after {
                self.idx_time.remove((kind, before, id))?;
                self.idx_time.insert((kind, after, id), ())?;
                self.idx_site.remove((s.site.as_str(), kind, before, id))?;
                self.idx_site.insert((s.site.as_str(), kind, after, id), ())?;
            }
            s
        } else {
            let s = StoredRecord::first(ctx, site, incoming);
            let at = s.record.occurred_at().0;
            self.idx_time.insert((kind, at, id), ())?;
            self.idx_site.insert((s.site.as_str(), kind, at, id), ())?;
            self.idx_device.insert((ctx.device.0, kind, id), ())?;
            s
        };
        self.records.insert((kind, id), codec::encode(&stored)?.as_slice())?;
        let r = Receipt { kind, id, received_ms: ctx.received_ms, quarantined: false, clamped: ctx.clamped };
        // A release (no screen) replaces the op's quarantine receipt; a push never meets an existing receipt.
        if self.receipts.insert((ctx.device.0, op.seq), codec::encode(&r)?.as_slice())?.is_some()
            && self.screen.is_some()
        {
            // apply_push only hands over ops above the cursor, so this would be a bug: refuse the batch.
            return Err(HqError::Refused(format!("op {} of device {:x} was received twice", op.seq, ctx.device.0)));
        }
        Ok(Verdict::Applied)
    }
}

impl HqTx for HqBatch<'_> {
    type Error = HqError;

    fn device_cursor(&mut self, device: DeviceId) -> Result<u64, HqError> {
        Ok(self.device_row(device)?.map_or(0, |d| d.last_seq))
    }

    fn apply(&mut self, op: &Op, ctx: &OpContext) -> Result<Verdict, HqError> {
        self.apply_all(&[(op, *ctx)])?.pop().ok_or_else(|| HqError::Refused("an op got no verdict".into()))
    }

    /// The ops in turn, with the tables they write opened once for the whole batch.
    fn apply_all(&mut self, ops: &[(&Op, OpContext)]) -> Result<Vec<Verdict>, HqError> {
        let Some((_, first)) = ops.first() else { return Ok(Vec::new()) };
        let site = self.site_of(first.device)?;
        let screen =
            self.store.screens.get(&site, || Ok::<_, HqError>(self.store.reference_for(&site)?.map(|(_, r)| r)))?;
        let mut t = BatchTables {
            screen: Some(screen),
            records: self.tx.open_table(RECORDS)?,
            idx_time: self.tx.open_table(IDX_TIME)?,
            idx_site: self.tx.open_table(IDX_SITE)?,
            idx_device: self.tx.open_table(IDX_DEVICE)?,
            receipts: self.tx.open_table(RECEIPTS)?,
        };
        ops.iter().map(|(op, ctx)| t.apply(&site, op, ctx)).collect()
    }

    fn quarantine(&mut self, op: &Op, ctx: &OpContext, reason: &str) -> Result<(), HqError> {
        let row = QuarantineRow { op: op.clone(), reason: reason.to_string(), received_ms: ctx.received_ms };
        self.tx.open_table(QUARANTINE)?.insert((ctx.device.0, op.seq), codec::encode(&row)?.as_slice())?;
        self.receipt(op, ctx, true)
    }

    fn set_device_cursor(&mut self, device: DeviceId, seq: u64, at_ms: u64, skew_ms: i64) -> Result<(), HqError> {
        let mut row = self
            .device_row(device)?
            .ok_or_else(|| HqError::Refused(format!("device {:x} is not enrolled", device.0)))?;
        row.last_seq = row.last_seq.max(seq);
        row.last_push_ms = at_ms;
        row.skew_ms = skew_ms;
        self.tx.open_table(DEVICES)?.insert(device.0, codec::encode(&row)?.as_slice())?;
        Ok(())
    }

    fn commit(self) -> Result<(), HqError> {
        self.tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_399_200_000;

    fn fresh() -> (tempfile::TempDir, HqStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = HqStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn enrolment_codes_are_one_time_expire_and_survive_a_lost_answer() {
        let (_dir, hq) = fresh();
        let code = hq.create_code("main", "d1", NOW, 10_000).unwrap();
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(hq.enroll("NOPE-NOPE-NOPE", DeviceId(1), NOW).unwrap(), Err(EnrollRefusal::Invalid));
        // Typed in lower case without dashes, it still works.
        let typed = code.replace('-', "").to_lowercase();
        let first = hq.enroll(&typed, DeviceId(1), NOW).unwrap().unwrap();
        assert_eq!((first.site.as_str(), first.desk.as_str()), ("main", "d1"));
        // The same device again (its answer was lost): a new credential; the old one stops working.
        let second = hq.enroll(&code, DeviceId(1), NOW + 5000).unwrap().unwrap();
        assert_ne!(first.token, second.token);
        assert_eq!(hq.authenticate(&first.token).unwrap(), Err(AuthRefusal::Unknown));
        assert_eq!(hq.authenticate(&second.token).unwrap().unwrap().device, DeviceId(1));
        // Another device: refused.
        assert_eq!(hq.enroll(&code, DeviceId(2), NOW).unwrap(), Err(EnrollRefusal::Used));
        let late = hq.create_code("main", "d2", NOW, 1000).unwrap();
        assert_eq!(hq.enroll(&late, DeviceId(2), NOW + 1001).unwrap(), Err(EnrollRefusal::Expired));
        assert!(hq.create_code(" ", "d", NOW, 1).is_err());
    }

    #[test]
    fn revocation_holds_until_reinstated_and_a_device_code_keeps_the_cursor() {
        let (_dir, hq) = fresh();
        let code = hq.create_code("east", "d1", NOW, 1000).unwrap();
        let e = hq.enroll(&code, DeviceId(9), NOW).unwrap().unwrap();
        {
            let mut tx = hq.begin().unwrap();
            tx.set_device_cursor(DeviceId(9), 42, NOW, 0).unwrap();
            tx.commit().unwrap();
        }
        assert!(hq.revoke(DeviceId(9), NOW).unwrap());
        assert!(!hq.revoke(DeviceId(10), NOW).unwrap());
        assert_eq!(hq.authenticate(&e.token).unwrap(), Err(AuthRefusal::Revoked));
        // Neither the old code (replayed) nor a new one lifts the revocation.
        assert_eq!(hq.enroll(&code, DeviceId(9), NOW + 1).unwrap(), Err(EnrollRefusal::Revoked));
        let fresh_code = hq.create_code("east", "d1", NOW, 1000).unwrap();
        assert_eq!(hq.enroll(&fresh_code, DeviceId(9), NOW).unwrap(), Err(EnrollRefusal::Revoked));
        assert!(hq.device(DeviceId(9)).unwrap().unwrap().revoked_ms.is_some());
        assert!(hq.reinstate(DeviceId(9)).unwrap());
        assert!(!hq.reinstate(DeviceId(10)).unwrap());
        assert_eq!(hq.authenticate(&e.token).unwrap().unwrap().device, DeviceId(9));
        // An enrolled device takes only a code issued for it; that one gives a new credential and keeps the cursor.
        assert_eq!(hq.enroll(&fresh_code, DeviceId(9), NOW).unwrap(), Err(EnrollRefusal::AlreadyEnrolled));
        let for_9 = hq.create_code_for("east", "d2", Some(DeviceId(9)), NOW, 1000).unwrap();
        assert_eq!(hq.enroll(&for_9, DeviceId(10), NOW).unwrap(), Err(EnrollRefusal::ForAnotherDevice));
        let e2 = hq.enroll(&for_9, DeviceId(9), NOW).unwrap().unwrap();
        assert_eq!((e2.site.as_str(), e2.desk.as_str()), ("east", "d2"));
        assert_eq!(hq.authenticate(&e.token).unwrap(), Err(AuthRefusal::Unknown));
        assert_eq!(hq.device(DeviceId(9)).unwrap().unwrap().last_seq, 42);
        // A code for another site never moves a device.
        let west = hq.create_code_for("west", "d1", Some(DeviceId(9)), NOW, 1000).unwrap();
        assert_eq!(hq.enroll(&west, DeviceId(9), NOW).unwrap(), Err(EnrollRefusal::OtherSite));
    }

    #[test]
    fn reference_changes_are_scoped_to_sites_and_compacted_with_a_floor() {
        let (_dir, hq) = fresh();
        let mut data = ReferenceData::bundled().unwrap();
        hq.import_reference(&data, None, 10).unwrap();
        data.departments[0].name = "东院".into();
        let east = hq.import_reference(&data, Some("east"), 10).unwrap();
        let main = hq.changes_for(REFERENCE_STREAM, "main").unwrap();
        assert_eq!(main.changes_after(0, 10).unwrap().len(), 1);
        assert_eq!(main.head().unwrap(), 2);
        let e = hq.changes_for(REFERENCE_STREAM, "east").unwrap();
        assert_eq!(e.changes_after(0, 10).unwrap().len(), 2);
        assert_eq!(hq.reference_for("east").unwrap().unwrap(), (east, data.clone()));
        assert_eq!(hq.reference_for("main").unwrap().unwrap().0, 1);
        // Keeping one change: superseded global snapshots go, the floor rises, the live ones stay.
        for _ in 0..3 {
            hq.import_reference(&data, None, 1).unwrap();
        }
        let main = hq.changes_for(REFERENCE_STREAM, "main").unwrap();
        assert!(main.floor().unwrap() >= 3);
        assert_eq!(main.snapshot().unwrap().len(), 1);
        let e = hq.changes_for(REFERENCE_STREAM, "east").unwrap();
        assert_eq!(e.snapshot().unwrap().len(), 2, "the east snapshot is live and kept");
        let mut bad = data;
        bad.survey.questions.clear();
        assert!(matches!(hq.import_reference(&bad, None, 1), Err(HqError::Refused(_))));
    }

    #[test]
    fn a_second_process_finds_the_store_locked_and_foreign_files_are_refused() {
        let (dir, _hq) = fresh();
        assert!(matches!(HqStore::open(dir.path()), Err(HqError::Locked(_))));
        let other = tempfile::tempdir().unwrap();
        let db = Database::create(other.path().join(FILE_NAME)).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(TableDefinition::<u64, u64>::new("something")).unwrap();
        tx.commit().unwrap();
        drop(db);
        assert!(matches!(HqStore::open(other.path()), Err(HqError::NotAnHqStore(_))));
    }
}
