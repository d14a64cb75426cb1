//! Push batches on PostgreSQL: [`PgBatch`] is one transaction implementing `guidedesk_sync::server::HqTx`. Its
//! first statement locks the device row; ops are decoded with the hospital model, screened (`hq::admit`), merged
//! per kind in memory under the records' row locks and written in bulk (`records.rs`), with every receipt in one
//! statement and the cursor advanced before commit. The rules of a push (duplicates, gaps, when to quarantine) are
//! `guidedesk_sync::server::apply_push`'s.

use std::sync::Arc;

use guidedesk_sync::server::{HqStorage, HqTx, OpContext, Verdict};
use guidedesk_sync::{DeviceId, Hlc, Op, codec};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::copy::{copy_in, is_unique_violation};
use super::feed::Bumped;
use super::records::{COMMON, insert_new_records, locked_records, stored_from_row, table, write_record, write_records};
use super::{PgStore, to_i64, ts_u, uuid_of};
use crate::hq::admit::{Screen, ScreenCache};
use crate::hq::rows::{HqError, REFERENCE_STREAM, StoredRecord};
use crate::model::codec::decode_op_payload;
use crate::model::{AnyRecord, RecordKind, ReferenceData};

impl PgStore {
    /// Begins a push batch's transaction.
    pub fn begin(&self) -> Result<PgBatch, HqError> {
        let tx = self.run(self.tx())?;
        Ok(PgBatch {
            tx: Some(tx),
            handle: self.handle.clone(),
            site: None,
            cursor: None,
            screens: Arc::clone(&self.screens),
            screen: None,
        })
    }
}

/// One push batch's transaction on PostgreSQL. Dropped without commit, it rolls back.
pub struct PgBatch {
    pub(super) tx: Option<Transaction<'static, Postgres>>,
    handle: tokio::runtime::Handle,
    site: Option<String>,
    cursor: Option<u64>,
    screens: Arc<ScreenCache>,
    /// The time and code checks for the device's site (loaded with the device's row); `None` while an admin
    /// releases a quarantined op.
    pub(super) screen: Option<Arc<Screen>>,
}

impl std::fmt::Debug for PgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBatch").field("site", &self.site).finish_non_exhaustive()
    }
}

impl HqStorage for PgStore {
    type Error = HqError;
    type Tx<'a> = PgBatch;

    fn begin(&self) -> Result<PgBatch, HqError> {
        PgStore::begin(self)
    }
}

impl Drop for PgBatch {
    fn drop(&mut self) {
        // Dropped without commit: the transaction rolls back as its connection returns to the pool (on the pool's
        // runtime).
        let _rt = self.handle.enter();
        drop(self.tx.take());
    }
}

impl PgBatch {
    pub(super) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    pub(super) fn tx(&mut self) -> Result<&mut Transaction<'static, Postgres>, HqError> {
        self.tx.as_mut().ok_or_else(|| HqError::Refused("push transaction already ended".into()))
    }

    /// Locks the device row (serialising this device's batches across every HQ process) and reads its cursor and
    /// site.
    pub(super) async fn lock_device(&mut self, device: DeviceId) -> Result<u64, HqError> {
        let row = sqlx::query("SELECT site, last_seq FROM devices WHERE device = $1 FOR UPDATE")
            .bind(uuid_of(device.0))
            .fetch_optional(&mut **self.tx()?)
            .await?;
        let (site, seq) = match row {
            Some(r) => {
                let seq: i64 = r.try_get("last_seq")?;
                (r.try_get::<String, _>("site")?, u64::try_from(seq).unwrap_or(0))
            }
            None => (String::new(), 0),
        };
        let screen = if let Some(s) = self.screens.cached(&site) {
            s
        } else {
            let latest = sqlx::query(
                "SELECT value FROM change_log WHERE stream = $1 AND (scope IS NULL OR scope = $2) \
                 AND value IS NOT NULL ORDER BY seq DESC LIMIT 1",
            )
            .bind(REFERENCE_STREAM)
            .bind(&site)
            .fetch_optional(&mut **self.tx()?)
            .await?;
            let value: Option<Vec<u8>> = match latest {
                Some(r) => r.try_get("value")?,
                None => None,
            };
            let reference: Option<ReferenceData> = value
                .map(|v| serde_json::from_slice(&v))
                .transpose()
                .map_err(|e| HqError::Refused(format!("stored reference data: {e}")))?;
            self.screens.put(&site, Screen::new(reference.as_ref()))
        };
        self.screen = Some(screen);
        self.site = Some(site);
        self.cursor = Some(seq);
        Ok(seq)
    }

    async fn receipt(&mut self, op: &Op, ctx: &OpContext, quarantined: bool) -> Result<(), HqError> {
        let r = sqlx::query(
            "INSERT INTO op_receipts (device, seq, kind, record_id, received_at, quarantined, clamped) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(uuid_of(ctx.device.0))
        .bind(to_i64(op.seq, "op sequence")?)
        .bind(i16::try_from(op.key.kind).unwrap_or(i16::MAX))
        .bind(uuid_of(op.key.id))
        .bind(ts_u(ctx.received_ms))
        .bind(quarantined)
        .bind(ctx.clamped)
        .execute(&mut **self.tx()?)
        .await?;
        if r.rows_affected() == 0 {
            // apply_push only hands over ops above the locked cursor, so this would be a bug: refuse the batch.
            return Err(HqError::Refused(format!("op {} of device {:x} was received twice", op.seq, ctx.device.0)));
        }
        Ok(())
    }

    pub(super) async fn apply_op(&mut self, op: &Op, ctx: &OpContext) -> Result<Verdict, HqError> {
        let incoming = match decode_op_payload(op) {
            Ok(r) => r,
            Err(e) => return Ok(Verdict::Invalid(e.to_string())),
        };
        if self.site.is_none() {
            self.lock_device(ctx.device).await?;
        }
        if let Some(screen) = &self.screen
            && let Err(reason) = crate::hq::admit::screen(&incoming, ctx, screen)
        {
            return Ok(Verdict::Invalid(reason));
        }
        let site = self.site.clone().unwrap_or_default();
        let (t, _) = table(incoming.kind());
        // Twice at most: a new record's insert finds its id taken only when another device's transaction inserted
        // it meanwhile; the second round reads that row under its lock and merges into it.
        for _ in 0..2 {
            let old = sqlx::query(&format!("SELECT {COMMON}, record FROM {t} WHERE id = $1 FOR UPDATE"))
                .bind(uuid_of(op.key.id))
                .fetch_optional(&mut **self.tx()?)
                .await?;
            let (stored, new) = match old {
                Some(row) => {
                    let mut s = stored_from_row(&row)?;
                    if let Err(reason) = s.merge(&incoming, ctx, &site) {
                        return Ok(Verdict::Invalid(reason));
                    }
                    (s, false)
                }
                None => (StoredRecord::first(ctx, &site, incoming.clone()), true),
            };
            if write_record(self.tx()?, &stored, new).await? {
                let bumped = Bumped {
                    kind: incoming.kind(),
                    id: op.key.id,
                    site: stored.site.clone(),
                    echo: crate::hq::feed::echo_of(&stored, &incoming, ctx.device),
                    stamp: ctx.stamp,
                    last_device: ctx.device.0,
                    new,
                };
                self.bump_feed(vec![bumped], ctx.received_ms).await?;
                self.receipt(op, ctx, false).await?;
                return Ok(Verdict::Applied);
            }
        }
        Err(HqError::Refused(format!("record {:x} could not be written", op.key.id)))
    }
}

/// A record a batch touches: its state so far and whether its row already exists (read under lock).
struct Touched {
    stored: StoredRecord,
    in_db: bool,
    /// Indices (into the batch) of the ops merged into it, in order.
    ops: Vec<usize>,
}

impl PgBatch {
    /// [`HqTx::apply_all`]: the ops of one kind's table are applied together — one locked read of the records they
    /// touch, the merges in op order in memory, one write of the merged records, one insert of the new ones — and
    /// their receipts are written in one statement. The outcome is that of [`PgBatch::apply_op`] on each op in turn.
    async fn apply_ops(&mut self, ops: &[(&Op, OpContext)]) -> Result<Vec<Verdict>, HqError> {
        let mut verdicts: Vec<Option<Verdict>> = vec![None; ops.len()];
        let Some((_, first)) = ops.first() else { return Ok(Vec::new()) };
        if self.site.is_none() {
            self.lock_device(first.device).await?;
        }
        let site = self.site.clone().unwrap_or_default();
        let mut groups: Vec<(RecordKind, Vec<(usize, AnyRecord)>)> = Vec::new();
        for (i, (op, ctx)) in ops.iter().enumerate() {
            let screened = decode_op_payload(op).map_err(|e| e.to_string()).and_then(|r| match &self.screen {
                Some(screen) => crate::hq::admit::screen(&r, ctx, screen).map(|()| r),
                None => Ok(r),
            });
            match screened {
                Ok(r) => {
                    let kind = r.kind();
                    match groups.iter_mut().find(|g| g.0 == kind) {
                        Some(g) => g.1.push((i, r)),
                        None => groups.push((kind, vec![(i, r)])),
                    }
                }
                Err(reason) => verdicts[i] = Some(Verdict::Invalid(reason)),
            }
        }
        let mut bumped = Vec::new();
        for (kind, items) in groups {
            bumped.extend(self.apply_kind(kind, items, ops, &site, &mut verdicts).await?);
        }
        let now = ops.first().map_or(0, |(_, c)| c.received_ms);
        self.bump_feed(bumped, now).await?;
        let applied: Vec<usize> = (0..ops.len()).filter(|&i| matches!(verdicts[i], Some(Verdict::Applied))).collect();
        self.receipts(ops, &applied).await?;
        verdicts
            .into_iter()
            .map(|v| v.ok_or_else(|| HqError::Refused("an op of the batch got no verdict".into())))
            .collect()
    }

    /// Applies the ops of one record kind (see [`PgBatch::apply_ops`]).
    async fn apply_kind(
        &mut self,
        kind: RecordKind,
        items: Vec<(usize, AnyRecord)>,
        ops: &[(&Op, OpContext)],
        site: &str,
        verdicts: &mut [Option<Verdict>],
    ) -> Result<Vec<Bumped>, HqError> {
        let mut ids: Vec<Uuid> = items.iter().map(|(_, r)| r.id().0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut existing = locked_records(self.tx()?, kind, &ids).await?;
        let mut touched: std::collections::HashMap<u128, Touched> = std::collections::HashMap::new();
        let mut incoming_of: Vec<Option<AnyRecord>> = vec![None; ops.len()];
        for (i, incoming) in items {
            let ctx = &ops[i].1;
            let id = ops[i].0.key.id;
            match touched.entry(id) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let t = e.get_mut();
                    match t.stored.merge(&incoming, ctx, site) {
                        Ok(()) => {
                            t.ops.push(i);
                            verdicts[i] = Some(Verdict::Applied);
                        }
                        Err(reason) => verdicts[i] = Some(Verdict::Invalid(reason)),
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    if let Some(mut s) = existing.remove(&id) {
                        match s.merge(&incoming, ctx, site) {
                            Ok(()) => {
                                verdicts[i] = Some(Verdict::Applied);
                                e.insert(Touched { stored: s, in_db: true, ops: vec![i] });
                            }
                            Err(reason) => verdicts[i] = Some(Verdict::Invalid(reason)),
                        }
                    } else {
                        let s = StoredRecord::first(ctx, site, incoming.clone());
                        verdicts[i] = Some(Verdict::Applied);
                        e.insert(Touched { stored: s, in_db: false, ops: vec![i] });
                    }
                }
            }
            incoming_of[i] = Some(incoming);
        }
        let mut merged: Vec<&Touched> = touched.values().filter(|t| t.in_db).collect();
        merged.sort_unstable_by_key(|t| t.stored.record.id().0);
        let merged: Vec<&StoredRecord> = merged.iter().map(|t| &t.stored).collect();
        write_records(self.tx()?, kind, &merged, false).await?;
        let mut fresh: Vec<&Touched> = touched.values().filter(|t| !t.in_db).collect();
        fresh.sort_unstable_by_key(|t| t.stored.record.id().0);
        let fresh_recs: Vec<&StoredRecord> = fresh.iter().map(|t| &t.stored).collect();
        let written: std::collections::HashSet<u128> =
            insert_new_records(self.tx()?, kind, &fresh_recs).await?.into_iter().collect();
        // Every record the batch merged moves in its site's feed; its echo is the device when the final state is
        // exactly what the device's last op of it carried.
        let bump = |stored: &StoredRecord,
                    t_ops: &[usize],
                    verdicts: &[Option<Verdict>],
                    new: bool|
         -> Option<Bumped> {
            let applied: Vec<usize> =
                t_ops.iter().copied().filter(|&i| matches!(verdicts[i], Some(Verdict::Applied))).collect();
            let last = *applied.last()?;
            let (op, ctx) = &ops[last];
            let stamp = applied.iter().fold(Hlc::ZERO, |m, &i| crate::hq::feed::later(m, ops[i].1.stamp));
            let echo = incoming_of[last].as_ref().and_then(|inc| crate::hq::feed::echo_of(stored, inc, ctx.device));
            Some(Bumped { kind, id: op.key.id, site: stored.site.clone(), echo, stamp, last_device: ctx.device.0, new })
        };
        let mut bumped: Vec<Bumped> = touched
            .values()
            .filter(|t| t.in_db || written.contains(&t.stored.record.id().as_u128()))
            .filter_map(|t| bump(&t.stored, &t.ops, verdicts, !t.in_db))
            .collect();
        // A new record whose id another device's transaction inserted meanwhile: as in `apply_op`'s second round,
        // its row is read under its lock and the batch's ops are merged into it, in order.
        let lost: Vec<&Touched> =
            fresh.into_iter().filter(|t| !written.contains(&t.stored.record.id().as_u128())).collect();
        if lost.is_empty() {
            return Ok(bumped);
        }
        let lost_ids: Vec<Uuid> = lost.iter().map(|t| t.stored.record.id().0).collect();
        let mut rows = locked_records(self.tx()?, kind, &lost_ids).await?;
        let mut redone: Vec<StoredRecord> = Vec::with_capacity(lost.len());
        for t in lost {
            let id = t.stored.record.id().as_u128();
            let mut s =
                rows.remove(&id).ok_or_else(|| HqError::Refused(format!("record {id:x} could not be written")))?;
            for &i in &t.ops {
                let incoming = incoming_of[i].as_ref().ok_or_else(|| HqError::Refused("op lost its record".into()))?;
                if let Err(reason) = s.merge(incoming, &ops[i].1, site) {
                    verdicts[i] = Some(Verdict::Invalid(reason));
                }
            }
            if let Some(b) = bump(&s, &t.ops, verdicts, false) {
                bumped.push(b);
            }
            redone.push(s);
        }
        let redone: Vec<&StoredRecord> = redone.iter().collect();
        write_records(self.tx()?, kind, &redone, false).await?;
        Ok(bumped)
    }

    /// The receipts of applied ops, in one statement.
    async fn receipts(&mut self, ops: &[(&Op, OpContext)], applied: &[usize]) -> Result<(), HqError> {
        if applied.is_empty() {
            return Ok(());
        }
        let n = applied.len();
        let copied = copy_in(
            self.tx()?,
            "COPY op_receipts (device, seq, kind, record_id, received_at, quarantined, clamped) \
             FROM STDIN (FORMAT binary)",
            applied.iter().map(|&i| &ops[i]),
            |rows, (op, ctx)| {
                rows.row(7);
                rows.uuid(ctx.device.0)?;
                rows.int8(to_i64(op.seq, "op sequence")?)?;
                rows.int2(i16::try_from(op.key.kind).unwrap_or(i16::MAX))?;
                rows.uuid(op.key.id)?;
                rows.time_u(ctx.received_ms)?;
                rows.bool(false)?;
                rows.bool(ctx.clamped)
            },
        )
        .await;
        match copied {
            Ok(_) => {}
            // apply_push only hands over ops above the locked cursor, so this would be a bug: refuse the batch.
            Err(e) if is_unique_violation(&e) => {
                return Err(HqError::Refused(format!(
                    "ops of device {:x} among these {n} were received before",
                    ops[applied[0]].1.device.0
                )));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

impl HqTx for PgBatch {
    type Error = HqError;

    fn device_cursor(&mut self, device: DeviceId) -> Result<u64, HqError> {
        if let Some(c) = self.cursor {
            return Ok(c);
        }
        let h = self.handle.clone();
        h.block_on(self.lock_device(device))
    }

    fn apply(&mut self, op: &Op, ctx: &OpContext) -> Result<Verdict, HqError> {
        let h = self.handle.clone();
        h.block_on(self.apply_op(op, ctx))
    }

    fn apply_all(&mut self, ops: &[(&Op, OpContext)]) -> Result<Vec<Verdict>, HqError> {
        let h = self.handle.clone();
        h.block_on(self.apply_ops(ops))
    }

    fn quarantine(&mut self, op: &Op, ctx: &OpContext, reason: &str) -> Result<(), HqError> {
        let h = self.handle.clone();
        h.block_on(async {
            sqlx::query(
                "INSERT INTO quarantine (device, seq, kind, record_id, reason, received_at, op) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(uuid_of(ctx.device.0))
            .bind(to_i64(op.seq, "op sequence")?)
            .bind(i16::try_from(op.key.kind).unwrap_or(i16::MAX))
            .bind(uuid_of(op.key.id))
            .bind(reason)
            .bind(ts_u(ctx.received_ms))
            .bind(codec::encode(op)?)
            .execute(&mut **self.tx()?)
            .await?;
            self.receipt(op, ctx, true).await
        })
    }

    fn set_device_cursor(&mut self, device: DeviceId, seq: u64, at_ms: u64, skew_ms: i64) -> Result<(), HqError> {
        let h = self.handle.clone();
        h.block_on(async {
            let r = sqlx::query(
                "UPDATE devices SET last_seq = GREATEST(last_seq, $2), last_push_at = $3, skew_ms = $4 \
                 WHERE device = $1",
            )
            .bind(uuid_of(device.0))
            .bind(to_i64(seq, "op sequence")?)
            .bind(ts_u(at_ms))
            .bind(skew_ms)
            .execute(&mut **self.tx()?)
            .await?;
            if r.rows_affected() == 0 {
                return Err(HqError::Refused(format!("device {:x} is not enrolled", device.0)));
            }
            Ok(())
        })
    }

    fn commit(mut self) -> Result<(), HqError> {
        let tx = self.tx.take().ok_or_else(|| HqError::Refused("push transaction already ended".into()))?;
        self.handle.block_on(tx.commit())?;
        Ok(())
    }
}
