//! The storage HQ serves from: the embedded redb [`HqStore`] (the default, one file) or PostgreSQL ([`PgStore`],
//! production).
//!
//! [`HqBackend`] offers the same blocking methods as both stores and implements the push/pull traits of
//! `guidedesk_sync::server`, so the server, the admin commands and the tests use either one through one type. The
//! methods block: call them outside async code (the server does, inside `spawn_blocking`).

use guidedesk_sync::protocol::Change;
use guidedesk_sync::server::{ChangeSource, HqStorage, HqTx, OpContext, Verdict};
use guidedesk_sync::{DeviceId, Op};

use super::pg::{PgBatch, PgChanges, PgStore};
use super::store::{
    AuthDevice, AuthRefusal, DeviceRow, EnrollRefusal, Enrolled, HqBatch, HqError, HqStats, HqStore, OpRef,
    QuarantineRow, Receipt, ScopedChanges, StoredRecord,
};
use crate::model::{RecordKind, ReferenceData};

/// HQ's store, whichever backend it is.
#[derive(Debug)]
pub enum HqBackend {
    /// redb file in the data directory.
    Embedded(HqStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl From<HqStore> for HqBackend {
    fn from(s: HqStore) -> Self {
        HqBackend::Embedded(s)
    }
}

impl From<PgStore> for HqBackend {
    fn from(s: PgStore) -> Self {
        HqBackend::Postgres(s)
    }
}

macro_rules! delegate {
    ($( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {$(
        $(#[$m])*
        pub fn $name(&self $(, $arg: $ty)*) -> $ret {
            match self {
                HqBackend::Embedded(s) => s.$name($($arg),*),
                HqBackend::Postgres(s) => s.$name($($arg),*),
            }
        }
    )*};
}

impl HqBackend {
    delegate! {
        /// Makes a one-time enrolment code for a desk, valid for `ttl_ms`.
        fn create_code(&self, site: &str, desk: &str, now_ms: u64, ttl_ms: u64) -> Result<String, HqError>;
        /// Makes a one-time enrolment code only `for_device` may use.
        fn create_code_for(&self, site: &str, desk: &str, for_device: Option<DeviceId>, now_ms: u64, ttl_ms: u64) -> Result<String, HqError>;
        /// Lifts a device's revocation; whether it exists.
        fn reinstate(&self, device: DeviceId) -> Result<bool, HqError>;
        /// Applies a quarantined op without the time and code checks; `None`: not in quarantine; `Some(Err)`: it
        /// still cannot be applied, with the reason.
        fn quarantine_release(&self, device: DeviceId, seq: u64, now_ms: u64) -> Result<Option<Result<(), String>>, HqError>;
        /// Removes an op from quarantine for good; whether it was there.
        fn quarantine_drop(&self, device: DeviceId, seq: u64) -> Result<bool, HqError>;
        /// Trades a code for a credential.
        fn enroll(&self, code: &str, device: DeviceId, now_ms: u64) -> Result<Result<Enrolled, EnrollRefusal>, HqError>;
        /// The device behind a credential.
        fn authenticate(&self, token: &str) -> Result<Result<AuthDevice, AuthRefusal>, HqError>;
        /// A device's row.
        fn device(&self, device: DeviceId) -> Result<Option<DeviceRow>, HqError>;
        /// Every device.
        fn devices(&self) -> Result<Vec<(DeviceId, DeviceRow)>, HqError>;
        /// Revokes a device; whether it exists.
        fn revoke(&self, device: DeviceId, now_ms: u64) -> Result<bool, HqError>;
        /// A record.
        fn record(&self, kind: RecordKind, id: u128) -> Result<Option<StoredRecord>, HqError>;
        /// Ids of records of a kind with business time in `[from, to)`, optionally only from one site.
        fn ids_between(&self, kind: RecordKind, site: Option<&str>, from: i64, to: i64) -> Result<Vec<u128>, HqError>;
        /// Ids of records of a kind first sent by a device.
        fn ids_of_device(&self, device: DeviceId, kind: RecordKind) -> Result<Vec<u128>, HqError>;
        /// Every receipt.
        fn receipts(&self) -> Result<Vec<(OpRef, Receipt)>, HqError>;
        /// Every quarantined op.
        fn quarantined(&self) -> Result<Vec<(OpRef, QuarantineRow)>, HqError>;
        /// Counts.
        fn stats(&self) -> Result<HqStats, HqError>;
        /// Publishes reference data; the change's sequence number.
        fn import_reference(&self, data: &ReferenceData, site: Option<&str>, keep: usize) -> Result<u64, HqError>;
        /// The latest reference data for a site, with its change sequence number.
        fn reference_for(&self, site: &str) -> Result<Option<(u64, ReferenceData)>, HqError>;
    }

    /// A read snapshot of a stream's change log as a device at `site` sees it.
    pub fn changes_for(&self, stream: &str, site: &str) -> Result<BackendChanges, HqError> {
        Ok(match self {
            HqBackend::Embedded(s) => BackendChanges::Embedded(s.changes_for(stream, site)?),
            HqBackend::Postgres(s) => BackendChanges::Postgres(s.changes_for(stream, site)?),
        })
    }

    /// A page of a site's record feed for `device` (see `hq::feed`).
    pub fn feed_page(
        &self,
        site: &str,
        device: DeviceId,
        cursor: u64,
        limit: u32,
        now_ms: u64,
    ) -> Result<guidedesk_sync::protocol::PullResponse, HqError> {
        match self {
            HqBackend::Embedded(s) => super::feed::page(&s.feed_for(site)?, device, cursor, limit, now_ms),
            HqBackend::Postgres(s) => super::feed::page(&s.feed_for(site)?, device, cursor, limit, now_ms),
        }
    }

    /// The head of a site's record feed (0 when the site has no records).
    pub fn feed_head(&self, site: &str) -> Result<u64, HqError> {
        use super::feed::FeedRead as _;
        match self {
            HqBackend::Embedded(s) => s.feed_for(site)?.head(),
            HqBackend::Postgres(s) => s.feed_for(site)?.head(),
        }
    }

    /// Which backend, for logs: `embedded` or `postgresql`.
    pub fn kind(&self) -> &'static str {
        match self {
            HqBackend::Embedded(_) => "embedded",
            HqBackend::Postgres(_) => "postgresql",
        }
    }

    /// Releases the backend's resources at shutdown (closes PostgreSQL's pool; the redb file closes on drop).
    pub fn close(&self) {
        if let HqBackend::Postgres(s) = self {
            s.close();
        }
    }
}

/// A change-log snapshot of either backend.
#[derive(Debug)]
pub enum BackendChanges {
    /// redb read transaction.
    Embedded(ScopedChanges),
    /// PostgreSQL REPEATABLE READ transaction.
    Postgres(PgChanges),
}

impl ChangeSource for BackendChanges {
    type Error = HqError;

    fn head(&self) -> Result<u64, HqError> {
        match self {
            BackendChanges::Embedded(c) => c.head(),
            BackendChanges::Postgres(c) => c.head(),
        }
    }

    fn floor(&self) -> Result<u64, HqError> {
        match self {
            BackendChanges::Embedded(c) => c.floor(),
            BackendChanges::Postgres(c) => c.floor(),
        }
    }

    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, HqError> {
        match self {
            BackendChanges::Embedded(c) => c.changes_after(after, limit),
            BackendChanges::Postgres(c) => c.changes_after(after, limit),
        }
    }

    fn snapshot(&self) -> Result<Vec<Change>, HqError> {
        match self {
            BackendChanges::Embedded(c) => c.snapshot(),
            BackendChanges::Postgres(c) => c.snapshot(),
        }
    }
}

/// A push batch's transaction of either backend. One lives per request, on the stack of a blocking worker, so the
/// size difference is of no consequence.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum BackendTx<'a> {
    /// redb write transaction.
    Embedded(HqBatch<'a>),
    /// PostgreSQL transaction.
    Postgres(PgBatch),
}

impl BackendTx<'_> {
    /// Which of these ops (origin device, seq) the store holds already (a hub's relay batch).
    pub fn relay_held(&mut self, ops: &[(DeviceId, u64)]) -> Result<std::collections::HashSet<(u128, u64)>, HqError> {
        match self {
            BackendTx::Embedded(t) => t.relay_held(ops),
            BackendTx::Postgres(t) => t.relay_held(ops),
        }
    }

    /// Makes sure a relayed op's origin device has a row at `site`; `Ok(Err(reason))` when it may not come from
    /// there.
    pub fn admit_origin(
        &mut self,
        site: &str,
        origin: DeviceId,
        desk: &str,
        now_ms: u64,
    ) -> Result<Result<(), String>, HqError> {
        match self {
            BackendTx::Embedded(t) => t.admit_origin(site, origin, desk, now_ms),
            BackendTx::Postgres(t) => t.admit_origin(site, origin, desk, now_ms),
        }
    }
}

impl HqStorage for HqBackend {
    type Error = HqError;
    type Tx<'a> = BackendTx<'a>;

    fn begin(&self) -> Result<BackendTx<'_>, HqError> {
        Ok(match self {
            HqBackend::Embedded(s) => BackendTx::Embedded(s.begin()?),
            HqBackend::Postgres(s) => BackendTx::Postgres(s.begin()?),
        })
    }
}

impl HqTx for BackendTx<'_> {
    type Error = HqError;

    fn device_cursor(&mut self, device: DeviceId) -> Result<u64, HqError> {
        match self {
            BackendTx::Embedded(t) => t.device_cursor(device),
            BackendTx::Postgres(t) => t.device_cursor(device),
        }
    }

    fn apply(&mut self, op: &Op, ctx: &OpContext) -> Result<Verdict, HqError> {
        match self {
            BackendTx::Embedded(t) => t.apply(op, ctx),
            BackendTx::Postgres(t) => t.apply(op, ctx),
        }
    }

    fn apply_all(&mut self, ops: &[(&Op, OpContext)]) -> Result<Vec<Verdict>, HqError> {
        match self {
            BackendTx::Embedded(t) => t.apply_all(ops),
            BackendTx::Postgres(t) => t.apply_all(ops),
        }
    }

    fn quarantine(&mut self, op: &Op, ctx: &OpContext, reason: &str) -> Result<(), HqError> {
        match self {
            BackendTx::Embedded(t) => t.quarantine(op, ctx, reason),
            BackendTx::Postgres(t) => t.quarantine(op, ctx, reason),
        }
    }

    fn set_device_cursor(&mut self, device: DeviceId, seq: u64, at_ms: u64, skew_ms: i64) -> Result<(), HqError> {
        match self {
            BackendTx::Embedded(t) => t.set_device_cursor(device, seq, at_ms, skew_ms),
            BackendTx::Postgres(t) => t.set_device_cursor(device, seq, at_ms, skew_ms),
        }
    }

    fn commit(self) -> Result<(), HqError> {
        match self {
            BackendTx::Embedded(t) => t.commit(),
            BackendTx::Postgres(t) => t.commit(),
        }
    }
}
