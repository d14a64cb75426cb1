//! The rows both HQ stores keep and hand out, and the error they share.
//!
//! Devices ([`DeviceRow`]), enrolment codes ([`CodeRow`]), merged records ([`StoredRecord`]), op receipts
//! ([`Receipt`]), quarantined ops ([`QuarantineRow`]), reference changes ([`ChangeRow`]) and what enrolment and
//! authentication answer. The embedded store (`hq::store`) encodes these rows with the sync codec; the PostgreSQL
//! store (`hq::pg`) maps them onto columns. Neither storage engine's code lives here: only the values, the merge rule
//! of a stored record ([`StoredRecord::merge`], with the ownership check of `hq::admit`) and [`HqError`].

use std::path::PathBuf;

use guidedesk_sync::server::OpContext;
use guidedesk_sync::{DeviceId, Op, codec};
use serde::{Deserialize, Serialize};

use crate::model::AnyRecord;

/// The only stream devices pull today: reference data.
pub const REFERENCE_STREAM: &str = "reference";
/// The key of the reference data that applies to every site.
pub const REFERENCE_KEY: &str = "reference";

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

    pub(super) fn state(&self) -> super::enrol::CodeState<'_> {
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
