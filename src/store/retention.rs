//! Retention: records older than the reference data's retention policy (months per kind) are purged from the kiosk,
//! but only once HQ holds them.
//!
//! A record is *acknowledged* when no op of it is waiting in the outbox: every op with a sequence number up to the
//! acknowledged one is held by HQ, so a record none of whose ops is above it has its last version at HQ (ops pruned
//! from the outbox were acknowledged before they were pruned). A record is purged when it is acknowledged, its
//! business time is before the cutoff (the start of the local day `months` before today), and it is not still being
//! worked on (an open case, a follow-up task not finished). The record and its index entries go in one transaction;
//! [`Store::check`] stays clean.
//!
//! Feedback and the audit log are hash-chained, so they are purged only as a prefix of their chain (oldest first,
//! stopping at the first record that must stay); the position and hash of the last purged record become the chain's
//! base (`meta::FEEDBACK_BASE`, `meta::AUDIT_BASE`), from which verification starts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Months;
use guidedesk_sync::codec;
use redb::ReadableTable;

use super::write::index_apply;
use super::{Store, StoreError, open_any, open_op, read_u64, tables};
use crate::model::{AnyRecord, AuditAction, Moment, RecordKind, StaffRef};
use tables::meta;

/// The actor the audit log names for retention purges.
pub const RETENTION_ACTOR: &str = "system:retention";

/// The shortest time audit entries are kept, whatever the retention policy says.
pub const AUDIT_MIN_MONTHS: u32 = 6;

/// What a purge did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Records purged per kind name.
    pub purged: BTreeMap<&'static str, u64>,
    /// Records past retention kept because HQ has not acknowledged their last op.
    pub kept_unacknowledged: u64,
    /// Records past retention kept because they are still open (cases, follow-up tasks), or feedback kept because
    /// an older chain record must stay.
    pub kept_open: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

impl PurgeReport {
    /// Records purged in total.
    pub fn total(&self) -> u64 {
        self.purged.values().sum()
    }
}

impl Store {
    /// The purges a sync cycle runs — records past retention ([`Store::purge_expired`]) and other desks' records
    /// the sharing policy no longer keeps ([`Store::purge_replicas`]) — at most once a local day, and again when
    /// new reference data (and with it the policies) arrives. Both policies count in days, so a live desk syncing
    /// after every save at its site does not look through its records each time. `None` when not due.
    pub fn routine_purges(&self) -> Result<Option<(PurgeReport, u64)>, StoreError> {
        let (today, reference) = (self.today(), self.reference());
        let mut last =
            self.purged_for.lock().map_err(|_| StoreError::Meta("purge state poisoned by a panic".into()))?;
        if last.as_ref().is_some_and(|(day, r)| *day == today && Arc::ptr_eq(r, &reference)) {
            return Ok(None);
        }
        let expired = self.purge_expired(false)?;
        let replicas = self.purge_replicas(false)?;
        *last = Some((today, reference));
        Ok(Some((expired, replicas)))
    }

    /// Purges the records past retention that HQ has acknowledged (see the module docs), in one durable
    /// transaction; with `dry_run` nothing is changed.
    pub fn purge_expired(&self, dry_run: bool) -> Result<PurgeReport, StoreError> {
        let reference = self.reference();
        let keys = self.keys();
        let today = self.today();
        let mut tx = self.db.begin_write()?;
        let settled = self.settle_backlog_in(&tx)?;
        let mut report = PurgeReport { dry_run, ..PurgeReport::default() };
        {
            let acked = read_u64(&tx.open_table(tables::META)?, meta::ACKED_SEQ)?;
            let mut pending: BTreeSet<(u16, u128)> = BTreeSet::new();
            for e in tx.open_table(tables::OUTBOX)?.range(acked.saturating_add(1)..)? {
                let (k, v) = e?;
                let op = open_op(&keys, k.value(), v.value())?;
                pending.insert((op.key.kind, op.key.id));
            }
            for kind in RecordKind::ALL {
                let Some(&months) = reference.retention.months.get(kind.name()) else {
                    continue;
                };
                // The audit log is kept at least six months whatever the policy says (Cybersecurity Law art. 21).
                let months = if kind == RecordKind::Audit { months.max(AUDIT_MIN_MONTHS) } else { months };
                let Some(cut_day) = today.checked_sub_months(Months::new(months)) else {
                    continue;
                };
                let cutoff = Moment::start_of_day(cut_day, self.offset);
                let mut ids = Vec::new();
                for e in tx
                    .open_table(tables::IDX_TIME)?
                    .range((kind.code(), i64::MIN, 0u128)..(kind.code(), cutoff.0, 0))?
                {
                    ids.push(e?.0.value().2);
                }
                let mut candidates: Vec<AnyRecord> = Vec::new();
                {
                    let t = tx.open_table(tables::records(kind))?;
                    let replicas = tx.open_table(tables::REPLICAS)?;
                    for id in ids {
                        // Other desks' records go by the sharing policy (`Store::purge_replicas`).
                        if replicas.get((kind.code(), id))?.is_some() {
                            continue;
                        }
                        let Some(g) = t.get(id)? else { continue };
                        let rec = open_any(&keys, kind, id, g.value())?;
                        if pending.contains(&(kind.code(), id)) {
                            report.kept_unacknowledged += 1;
                        } else if still_open(&rec) {
                            report.kept_open += 1;
                        } else {
                            candidates.push(rec);
                        }
                    }
                }
                if let Some((_, base_key)) = meta::chain_keys(kind) {
                    candidates = Self::chain_prefix(&tx, base_key, candidates, &mut report)?;
                }
                for rec in &candidates {
                    tx.open_table(tables::records(kind))?.remove(rec.id().as_u128())?;
                    index_apply(&tx, rec, self.offset, &keys, false)?;
                }
                if !candidates.is_empty() {
                    report.purged.insert(kind.name(), candidates.len() as u64);
                }
            }
        }
        if dry_run {
            tx.abort()?;
        } else {
            tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
            self.commit_settled(tx, settled)?;
            if report.total() > 0 {
                let kinds: Vec<String> = report.purged.iter().map(|(k, n)| format!("{n} {k}")).collect();
                let detail = format!("retention purge: {}", kinds.join(", "));
                self.audit(&StaffRef(RETENTION_ACTOR.into()), AuditAction::Change, None, &detail)?;
            }
        }
        Ok(report)
    }

    /// Keeps of `candidates` (purgeable records of one chained kind) only the prefix of the chain from its base
    /// (stored under `base_key`), and moves the base.
    fn chain_prefix(
        tx: &redb::WriteTransaction,
        base_key: &str,
        candidates: Vec<AnyRecord>,
        report: &mut PurgeReport,
    ) -> Result<Vec<AnyRecord>, StoreError> {
        let mut m = tx.open_table(tables::META)?;
        let (mut next, mut hash) = match m.get(base_key)? {
            Some(g) => codec::decode::<(u64, [u8; 32])>(g.value())?,
            None => (0, [0; 32]),
        };
        let mut by_index: BTreeMap<u64, (AnyRecord, [u8; 32])> = BTreeMap::new();
        for rec in candidates {
            let link = match &rec {
                AnyRecord::Feedback(f) => Some((f.chain_index, f.hash)),
                AnyRecord::Audit(a) => Some((a.chain_index, a.hash)),
                _ => None,
            };
            if let Some((index, h)) = link {
                by_index.insert(index, (rec, h));
            }
        }
        let total = by_index.len() as u64;
        let mut out = Vec::new();
        while let Some((rec, h)) = by_index.remove(&next) {
            hash = h;
            out.push(rec);
            next += 1;
        }
        report.kept_open += total - out.len() as u64;
        if !out.is_empty() {
            m.insert(base_key, codec::encode(&(next, hash))?.as_slice())?;
        }
        Ok(out)
    }
}

/// Records still being worked on are kept whatever their age.
fn still_open(rec: &AnyRecord) -> bool {
    match rec {
        AnyRecord::Case(c) => c.is_open(),
        AnyRecord::FollowupTask(t) => !t.status.value.is_final(),
        _ => false,
    }
}
