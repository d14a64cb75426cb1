//! Push batches on PostgreSQL: [`PgBatch`] is one transaction implementing `guidedesk_sync::server::HqTx`. Its
//! first statement locks the device row; ops are decoded with the hospital model, screened (`hq::admit`), merged
//! per kind in memory under the records' row locks and written in bulk (`records.rs`), with every receipt in one
//! statement and the cursor advanced before commit. The rules of a push (duplicates, gaps, when to quarantine) are
//! `guidedesk_sync::server::apply_push`'s.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use guidedesk_sync::server::{HqStorage, HqTx, OpContext, Verdict};
use guidedesk_sync::{DeviceId, Hlc, Op, codec};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::copy::{copy_in, is_unique_violation};
use super::feed::Bumped;
use super::records::{
    COMMON, copy_new_records, copy_record, locked_records, stored_from_row, table, write_record, write_records,
};
use super::{PgStore, to_i64, ts_u, uuid_of};
use crate::hq::admit::{Screen, ScreenCache};
use crate::hq::rows::{HqError, REFERENCE_STREAM, StoredRecord};
use crate::model::codec::{PayloadError, decode_op_payload};
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
    /// The ops merged into it (indices into the batch), in order.
    ops: Vec<usize>,
    /// The record the last of them carried; `None` when that is the stored record itself (a new record made by its
    /// only op).
    last: Option<AnyRecord>,
}

/// An op's record, decoded and screened (`hq::admit`), or why it is refused.
fn screened(op: &Op, ctx: &OpContext, screen: Option<&Screen>) -> Result<AnyRecord, String> {
    let r = decode_op_payload(op).map_err(|e| e.to_string())?;
    match screen {
        Some(screen) => crate::hq::admit::screen(&r, ctx, screen).map(|()| r),
        None => Ok(r),
    }
}

/// Merges one record's ops of a batch (`of`, in op order) into its row read under lock (`held`), or into a new
/// record made from the first op that is not refused; each op's verdict is set. `None` when no op was applied.
fn merge_record(
    held: Option<StoredRecord>,
    of: &[usize],
    ops: &[(&Op, OpContext)],
    site: &str,
    screen: Option<&Screen>,
    verdicts: &mut [Option<Verdict>],
) -> Option<Touched> {
    let in_db = held.is_some();
    let mut stored = held;
    let mut applied = Vec::with_capacity(of.len());
    let mut last = None;
    for &i in of {
        let (op, ctx) = &ops[i];
        let merged = screened(op, ctx, screen).and_then(|incoming| {
            if let Some(s) = &mut stored {
                s.merge(&incoming, ctx, site).map(|()| Some(incoming))
            } else {
                stored = Some(StoredRecord::first(ctx, site, incoming));
                Ok(None)
            }
        });
        verdicts[i] = Some(match merged {
            Ok(incoming) => {
                applied.push(i);
                last = incoming;
                Verdict::Applied
            }
            Err(reason) => Verdict::Invalid(reason),
        });
    }
    if applied.is_empty() {
        return None;
    }
    Some(Touched { stored: stored?, in_db, ops: applied, last })
}

/// Where a record a batch merged moves in its site's feed: stamped with the highest stamp of its ops, its echo the
/// device when the final state is exactly what the device's last op of it carried.
fn bump_of(kind: RecordKind, t: &Touched, ops: &[(&Op, OpContext)]) -> Option<Bumped> {
    let (op, ctx) = &ops[*t.ops.last()?];
    let stamp = t.ops.iter().fold(Hlc::ZERO, |m, &i| crate::hq::feed::later(m, ops[i].1.stamp));
    let echo = match &t.last {
        Some(incoming) => crate::hq::feed::echo_of(&t.stored, incoming, ctx.device),
        None => Some(ctx.device.0),
    };
    Some(Bumped {
        kind,
        id: op.key.id,
        site: t.stored.site.clone(),
        echo,
        stamp,
        last_device: ctx.device.0,
        new: !t.in_db,
    })
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
        // Grouped by the kind their keys name (a record decodes only as its op's kind, with its op's id).
        let mut groups: Vec<(RecordKind, Vec<usize>)> = Vec::new();
        for (i, (op, _)) in ops.iter().enumerate() {
            if let Some(kind) = RecordKind::from_code(op.key.kind) {
                match groups.iter_mut().find(|g| g.0 == kind) {
                    Some(g) => g.1.push(i),
                    None => groups.push((kind, vec![i])),
                }
            } else {
                verdicts[i] = Some(Verdict::Invalid(PayloadError::UnknownKind(op.key.kind).to_string()));
            }
        }
        let mut bumped = Vec::new();
        for (kind, items) in groups {
            bumped.extend(self.apply_kind(kind, &items, ops, &site, &mut verdicts).await?);
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

    /// Applies the ops of one record kind (see [`PgBatch::apply_ops`]). New records are decoded, merged and encoded
    /// as they are streamed into the table, so PostgreSQL inserts one chunk while HQ prepares the next.
    async fn apply_kind(
        &mut self,
        kind: RecordKind,
        items: &[usize],
        ops: &[(&Op, OpContext)],
        site: &str,
        verdicts: &mut [Option<Verdict>],
    ) -> Result<Vec<Bumped>, HqError> {
        let screen = self.screen.clone();
        let screen = screen.as_deref();
        let mut by_id: BTreeMap<u128, Vec<usize>> = BTreeMap::new();
        for &i in items {
            by_id.entry(ops[i].0.key.id).or_default().push(i);
        }
        let ids: Vec<Uuid> = by_id.keys().map(|&id| uuid_of(id)).collect();
        let mut existing = locked_records(self.tx()?, kind, &ids).await?;
        let (held, fresh): (Vec<_>, Vec<_>) = by_id.iter().partition(|(id, _)| existing.contains_key(id));
        let merged: Vec<Touched> = held
            .into_iter()
            .filter_map(|(id, of)| merge_record(existing.remove(id), of, ops, site, screen, verdicts))
            .collect();
        write_records(self.tx()?, kind, &merged.iter().map(|t| &t.stored).collect::<Vec<_>>(), false).await?;
        let mut bumped: Vec<Bumped> = merged.iter().filter_map(|t| bump_of(kind, t, ops)).collect();
        // Each new record is dropped as soon as its row and feed position are made, while PostgreSQL inserts the
        // rows before it.
        let mut made_bumps: Vec<Bumped> = Vec::with_capacity(fresh.len());
        let copied = copy_new_records(self.tx()?, kind, &fresh, |rows, &(_, of)| {
            if let Some(t) = merge_record(None, of, ops, site, screen, verdicts) {
                copy_record(rows, &t.stored)?;
                made_bumps.extend(bump_of(kind, &t, ops));
            }
            Ok(())
        })
        .await?;
        if copied {
            bumped.append(&mut made_bumps);
            return Ok(bumped);
        }
        // Another device's transaction inserted one of the ids meanwhile: the new records are made again and inserted
        // leaving out the ids taken, and the batch's ops of those are merged into the rows there, read under their
        // locks (as in `apply_op`'s second round).
        let made: Vec<Touched> =
            fresh.iter().filter_map(|&(_, of)| merge_record(None, of, ops, site, screen, verdicts)).collect();
        let written: HashSet<u128> =
            write_records(self.tx()?, kind, &made.iter().map(|t| &t.stored).collect::<Vec<_>>(), true)
                .await?
                .into_iter()
                .collect();
        let (ours, lost): (Vec<Touched>, Vec<Touched>) =
            made.into_iter().partition(|t| written.contains(&t.stored.record.id().as_u128()));
        bumped.extend(ours.iter().filter_map(|t| bump_of(kind, t, ops)));
        if lost.is_empty() {
            return Ok(bumped);
        }
        let lost_ids: Vec<Uuid> = lost.iter().map(|t| t.stored.record.id().0).collect();
        let mut rows = locked_records(self.tx()?, kind, &lost_ids).await?;
        let mut redone: Vec<Touched> = Vec::with_capacity(lost.len());
        for t in lost {
            let id = t.stored.record.id().as_u128();
            let mut s =
                rows.remove(&id).ok_or_else(|| HqError::Refused(format!("record {id:x} could not be written")))?;
            let mut applied = Vec::with_capacity(t.ops.len());
            let mut carried = None;
            for i in t.ops {
                let (op, ctx) = &ops[i];
                match screened(op, ctx, screen).and_then(|incoming| s.merge(&incoming, ctx, site).map(|()| incoming)) {
                    Ok(incoming) => {
                        applied.push(i);
                        carried = Some(incoming);
                    }
                    Err(reason) => verdicts[i] = Some(Verdict::Invalid(reason)),
                }
            }
            redone.push(Touched { stored: s, in_db: true, ops: applied, last: carried });
        }
        bumped.extend(redone.iter().filter_map(|t| bump_of(kind, t, ops)));
        write_records(self.tx()?, kind, &redone.iter().map(|t| &t.stored).collect::<Vec<_>>(), false).await?;
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
