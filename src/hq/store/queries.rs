//! Reads of the embedded store for reports and administration — a record, ids by time, site or device,
//! receipts, quarantine and counts — and the two quarantine decisions an admin takes (release, drop). Writes of
//! pushed ops are `push.rs`'s; a release goes through the same [`BatchTables::apply`] without the admission screen.

use guidedesk_sync::server::{OpContext, Verdict};
use guidedesk_sync::{DeviceId, codec};
use redb::{ReadableTable, ReadableTableMetadata};

use super::push::BatchTables;
use super::{
    DEVICES, DeviceRow, HqError, HqStats, HqStore, IDX_DEVICE, IDX_SITE, IDX_TIME, OpRef, QUARANTINE, QuarantineRow,
    RECEIPTS, RECORDS, Receipt, StoredRecord,
};
use crate::model::RecordKind;

impl HqStore {
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
            let mut t = BatchTables::open(&tx, None, self.hub)?;
            let verdict = t.apply(&dev.site, &row.op, &ctx);
            t.feed.finish()?;
            verdict?
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
}
