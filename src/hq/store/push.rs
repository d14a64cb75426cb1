//! Push batches on the embedded store: [`HqBatch`] is one redb write transaction implementing
//! `guidedesk_sync::server::HqTx` — the device's cursor, each op decoded with the hospital model, screened
//! (`hq::admit`), merged into its stored record with the indexes kept, a receipt per op, quarantine — committed
//! whole. The rules of a push (duplicates, gaps, when to quarantine) are `guidedesk_sync::server::apply_push`'s.

use std::sync::Arc;

use guidedesk_sync::server::{HqStorage, HqTx, OpContext, Verdict};
use guidedesk_sync::{DeviceId, Op, codec};
use redb::{ReadableTable, WriteTransaction};

use super::feed::{FeedTables, Merged};
use super::relay::RelayLog;
use super::{
    DEVICES, DeviceRow, HqError, HqStore, IDX_DEVICE, IDX_SITE, IDX_TIME, QUARANTINE, QuarantineRow, RECEIPTS, RECORDS,
    Receipt, StoredRecord,
};
use crate::hq::admit::Screen;
use crate::model::codec::decode_op_payload;

/// One push batch's write transaction.
pub struct HqBatch<'a> {
    pub(super) tx: WriteTransaction,
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
pub(super) struct BatchTables<'t> {
    /// The time and code checks; `None` when an admin releases a quarantined op.
    pub(super) screen: Option<Arc<Screen>>,
    pub(super) records: redb::Table<'t, (u16, u128), &'static [u8]>,
    pub(super) idx_time: redb::Table<'t, (u16, i64, u128), ()>,
    pub(super) idx_site: redb::Table<'t, (&'static str, u16, i64, u128), ()>,
    pub(super) idx_device: redb::Table<'t, (u128, u16, u128), ()>,
    pub(super) receipts: redb::Table<'t, (u128, u64), &'static [u8]>,
    pub(super) feed: FeedTables<'t>,
    /// A hub's relay log (`None` on a store that is not a hub).
    pub(super) relay: Option<RelayLog<'t>>,
}

impl<'t> BatchTables<'t> {
    /// Opens every table a batch writes.
    pub(super) fn open(
        tx: &'t WriteTransaction,
        screen: Option<Arc<Screen>>,
        hub: bool,
    ) -> Result<BatchTables<'t>, HqError> {
        Ok(BatchTables {
            screen,
            records: tx.open_table(RECORDS)?,
            idx_time: tx.open_table(IDX_TIME)?,
            idx_site: tx.open_table(IDX_SITE)?,
            idx_device: tx.open_table(IDX_DEVICE)?,
            receipts: tx.open_table(RECEIPTS)?,
            feed: FeedTables::open(tx)?,
            relay: RelayLog::open(tx, hub)?,
        })
    }

    /// Applies one op: decodes its payload, merges it into the stored record (or creates it) with its indexes, and
    /// records its receipt.
    pub(super) fn apply(&mut self, site: &str, op: &Op, ctx: &OpContext) -> Result<Verdict, HqError> {
        let incoming = match decode_op_payload(op) {
            Ok(r) => r,
            Err(e) => return Ok(Verdict::Invalid(e.to_string())),
        };
        if let Some(screen) = &self.screen
            && let Err(reason) = crate::hq::admit::screen(&incoming, ctx, screen)
        {
            return Ok(Verdict::Invalid(reason));
        }
        let kind = op.key.kind;
        let id = op.key.id;
        let old = self.records.get((kind, id))?.map(|g| codec::decode::<StoredRecord>(g.value())).transpose()?;
        let mut echo_base = None;
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
            echo_base = Some(incoming);
            s
        } else {
            let s = StoredRecord::first(ctx, site, incoming);
            let at = s.record.occurred_at().0;
            self.idx_time.insert((kind, at, id), ())?;
            self.idx_site.insert((s.site.as_str(), kind, at, id), ())?;
            self.idx_device.insert((ctx.device.0, kind, id), ())?;
            s
        };
        // A new record is exactly what its device sent; a merged one only when nothing else was folded in.
        let echo = match &echo_base {
            Some(incoming) => crate::hq::feed::echo_of(&stored, incoming, ctx.device),
            None => Some(ctx.device.0),
        };
        let merged = Merged { echo, stamp: ctx.stamp, now_ms: ctx.received_ms, device: ctx.device.0 };
        self.feed.bump(&stored.site, kind, id, &merged)?;
        self.records.insert((kind, id), codec::encode(&stored)?.as_slice())?;
        let r = Receipt { kind, id, received_ms: ctx.received_ms, quarantined: false, clamped: ctx.clamped };
        // A release (no screen) replaces the op's quarantine receipt; a push never meets an existing receipt.
        if self.receipts.insert((ctx.device.0, op.seq), codec::encode(&r)?.as_slice())?.is_some()
            && self.screen.is_some()
        {
            // apply_push only hands over ops above the cursor, so this would be a bug: refuse the batch.
            return Err(HqError::Refused(format!("op {} of device {:x} was received twice", op.seq, ctx.device.0)));
        }
        if let Some(log) = &mut self.relay {
            log.append(ctx.device, ctx.received_ms, op)?;
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
        let mut t = BatchTables::open(&self.tx, Some(screen), self.store.hub)?;
        let verdicts = ops.iter().map(|(op, ctx)| t.apply(&site, op, ctx)).collect::<Result<Vec<_>, _>>();
        // The head is written back even when an op failed part-way: the batch's transaction decides what stays.
        t.feed.finish()?;
        verdicts
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
