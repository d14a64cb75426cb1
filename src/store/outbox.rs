//! The store's side of sync: reading the outbox for push, HQ's acknowledgements and their log, pruning
//! acknowledged ops past retention, pull cursors, and applying pulled reference data (with its cursor, atomically).
//!
//! Ops are appended only by the write path (`write.rs`); renumbering after a restore is `backup.rs`, purging
//! records `retention.rs`. The protocol itself is the `guidedesk-sync` crate's.

use std::sync::Arc;

use guidedesk_sync::Op;
use redb::ReadableTable;

use super::tables::{self, meta};
use super::{REFERENCE_SNAPSHOT, Store, StoreError, crypto, open_op, read_u64};
use crate::model::ReferenceData;

impl Store {
    /// Replaces the reference data (sync pull, or the bundled default). Reference data is never written otherwise.
    pub fn apply_reference(&self, data: ReferenceData, source: &str) -> Result<(), StoreError> {
        data.check().map_err(|e| StoreError::Conflict(e.to_string()))?;
        // Reference data is stored as JSON: HQ's documents grow new fields over time, and JSON with serde defaults
        // reads snapshots written by older and newer versions alike.
        // It holds HQ's staff accounts with their PIN hashes: sealed with the store key like a record.
        let bytes = serde_json::to_vec(&data).map_err(|e| StoreError::Meta(format!("reference data: {e}")))?;
        let sealed = self.keys().seal(crypto::REFERENCE_PLACE, &bytes)?;
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(tables::REFERENCE)?;
            t.insert(REFERENCE_SNAPSHOT, sealed.as_slice())?;
            t.insert("source", source.as_bytes())?;
        }
        tx.commit()?;
        if let Ok(mut r) = self.reference.write() {
            *r = Arc::new(data);
        }
        Ok(())
    }

    /// Ops with sequence number greater than `after`, at most `limit`, in order.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::OUTBOX)?;
        let keys = self.keys();
        let mut out = Vec::new();
        for e in t.range(after.saturating_add(1)..)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = e?;
            out.push(open_op(&keys, k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Marks every op up to `seq` as acknowledged by HQ. Never moves backwards.
    pub fn ack_through(&self, seq: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut m = tx.open_table(tables::META)?;
            let last = read_u64(&m, meta::NEXT_SEQ)?.saturating_sub(1);
            if seq > last {
                return Err(StoreError::Conflict(format!("cannot acknowledge seq {seq}: the last op is {last}")));
            }
            let acked = read_u64(&m, meta::ACKED_SEQ)?;
            if seq > acked {
                m.insert(meta::ACKED_SEQ, seq.to_le_bytes().as_slice())?;
                tx.open_table(tables::ACK_LOG)?.insert(seq, self.clock.now().0)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes from the outbox the acknowledged ops whose acknowledgement is older than `retain_ms`. Returns how
    /// many ops were removed. Unacknowledged ops are never removed.
    pub fn prune_acked(&self, retain_ms: i64) -> Result<u64, StoreError> {
        let cutoff = self.clock.now().0.saturating_sub(retain_ms.max(0));
        let tx = self.db.begin_write()?;
        let removed = {
            let acked = read_u64(&tx.open_table(tables::META)?, meta::ACKED_SEQ)?;
            let mut log = tx.open_table(tables::ACK_LOG)?;
            let mut through = 0u64;
            for e in log.range(..=acked)? {
                let (k, v) = e?;
                if v.value() <= cutoff {
                    through = through.max(k.value());
                }
            }
            let mut removed = 0u64;
            if through > 0 {
                let mut ob = tx.open_table(tables::OUTBOX)?;
                let seqs: Vec<u64> =
                    ob.range(..=through)?.map(|e| e.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
                for s in seqs {
                    ob.remove(s)?;
                    removed += 1;
                }
                let old: Vec<u64> =
                    log.range(..through)?.map(|e| e.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
                for s in old {
                    log.remove(s)?;
                }
            }
            removed
        };
        tx.commit()?;
        Ok(removed)
    }

    /// The stored cursor of a pulled stream (0 when never pulled).
    pub fn pull_cursor(&self, stream: &str) -> Result<u64, StoreError> {
        let tx = self.read()?;
        let m = tx.open_table(tables::META)?;
        let key = format!("{}{stream}", meta::PULL_CURSOR_PREFIX);
        Ok(match m.get(key.as_str())? {
            Some(g) => u64::from_le_bytes(
                g.value().try_into().map_err(|_| StoreError::Meta(format!("meta {key} is not 8 bytes")))?,
            ),
            None => 0,
        })
    }

    /// Applies a pulled page of reference data and stores the stream's cursor, in one transaction: after a crash
    /// either both are stored or neither. `data` is `None` when the page held no new snapshot (only the cursor
    /// moves).
    pub fn apply_reference_page(
        &self,
        data: Option<ReferenceData>,
        source: &str,
        stream: &str,
        cursor: u64,
    ) -> Result<(), StoreError> {
        let bytes = match &data {
            Some(d) => {
                d.check().map_err(|e| StoreError::Conflict(e.to_string()))?;
                // The same sealed JSON form as `apply_reference`.
                let json = serde_json::to_vec(d).map_err(|e| StoreError::Meta(format!("reference data: {e}")))?;
                Some(self.keys().seal(crypto::REFERENCE_PLACE, &json)?)
            }
            None => None,
        };
        let mut tx = self.db.begin_write()?;
        {
            if let Some(bytes) = &bytes {
                let mut t = tx.open_table(tables::REFERENCE)?;
                t.insert(REFERENCE_SNAPSHOT, bytes.as_slice())?;
                t.insert("source", source.as_bytes())?;
            }
            let key = format!("{}{stream}", meta::PULL_CURSOR_PREFIX);
            tx.open_table(tables::META)?.insert(key.as_str(), cursor.to_le_bytes().as_slice())?;
        }
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        tx.commit()?;
        if let Some(d) = data
            && let Ok(mut r) = self.reference.write()
        {
            *r = Arc::new(d);
        }
        Ok(())
    }
}
