//! Records other desks and offices of the site wrote, as HQ relays them (the `records` stream; see `hq::feed`).
//!
//! A pulled page is applied with its cursor in one transaction ([`Store::apply_remote_page`]): each record is
//! merged into the copy held here by the record's own merge rule (LWW fields by HLC, event lists united), indexes
//! kept, and no outbox op written — HQ holds it already, and an edit made here meanwhile has its own op that HQ
//! merges the same way, so every desk and HQ converge. Records of another desk are kept as the reference data's
//! [`SharingPolicy`](crate::model::SharingPolicy) says (open cases and tasks always) and purged with retention
//! ([`Store::purge_replicas`]); audit entries never arrive. A record first seen through the stream gets its origin
//! (device and desk) noted in `replicas`, so counts and exports can tell own records from replicated ones, and
//! the hash chains of other desks' feedback are verified per origin ([`Store::verify_replica_chains`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use guidedesk_sync::{Hlc, codec};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::backlog;
use super::crypto::Keys;
use super::write::{Entries, IndexTables, entries, kind_slot};
use super::{Store, StoreError, open_any, open_op, read_u64, seal_any, tables};
use crate::model::{AnyRecord, Chained, Feedback, KeepFacts, Record, RecordId, RecordKind};
use tables::meta;

/// Where a replicated record comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaOrigin {
    /// The device that first wrote it.
    pub device: u128,
    /// That device's desk code.
    pub desk: String,
}

/// What applying one relayed record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteOutcome {
    /// Not held before: stored.
    New,
    /// Merged into the copy held, which changed.
    Merged,
    /// The copy held already had everything.
    Unchanged,
    /// Outside what this desk keeps (sharing policy), and not held: not stored.
    NotKept,
    /// Not a record another desk may relay (an audit entry, a record of another kind under the same id).
    Refused,
}

/// One relayed record, decoded.
#[derive(Debug, Clone)]
pub struct RemoteRecord {
    /// The merged record as HQ holds it.
    pub record: AnyRecord,
    /// Its origin, `None` when this desk wrote it.
    pub origin: Option<ReplicaOrigin>,
    /// The highest op stamp merged into it.
    pub stamp: Hlc,
    /// The desk where it was last changed.
    pub changed_desk: String,
}

/// A relayed record as [`Store::apply_remote_page`] takes it: decoded only, or prepared by
/// [`Store::prepare_remote`] with the work that needs none of the store's tables done — sealed with the store key and
/// its index entries computed, for the case that nothing is held under its id yet (every record of a new desk's
/// catch-up). The sync's read-ahead thread prepares each page as it arrives, beside the thread that applies. A
/// prepared record keeps only its sealed bytes, entries and the few facts the apply needs, not the decoded record:
/// pages wait prepared, and the decoded form is several times larger. A record held already is merged as usual
/// (the prepared one opened again from its sealed bytes), as is one prepared with a key rotated away since.
pub struct PreparedRemote(Prepared);

// Nearly every record of a catch-up is sealed: boxing that variant would be one more allocation each.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    Plain(Box<RemoteRecord>),
    Sealed(SealedRemote),
}

/// A prepared record (see [`PreparedRemote`]).
struct SealedRemote {
    id: RecordId,
    stamp: Hlc,
    origin: Option<ReplicaOrigin>,
    changed_desk: String,
    /// What the sharing policy asks of it.
    facts: KeepFacts,
    /// The key it was sealed and blinded with.
    keys: Arc<Keys>,
    sealed: Vec<u8>,
    entries: Entries,
}

impl std::fmt::Debug for PreparedRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.view();
        f.debug_struct("PreparedRemote")
            .field("kind", &v.kind())
            .field("id", &v.id())
            .field("prepared", &matches!(self.0, Prepared::Sealed(_)))
            .finish_non_exhaustive()
    }
}

impl From<RemoteRecord> for PreparedRemote {
    /// Not prepared: applied like the record itself.
    fn from(remote: RemoteRecord) -> Self {
        PreparedRemote(Prepared::Plain(Box::new(remote)))
    }
}

/// A relayed record, decoded ([`RemoteRecord`]) or prepared ([`PreparedRemote`]).
pub trait RemoteItem {
    /// What the apply reads of it.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn view(&self) -> View<'_>;
}

impl RemoteItem for RemoteRecord {
    #[allow(private_interfaces)]
    fn view(&self) -> View<'_> {
        View::Record(self)
    }
}

impl RemoteItem for PreparedRemote {
    #[allow(private_interfaces)]
    fn view(&self) -> View<'_> {
        match &self.0 {
            Prepared::Plain(r) => View::Record(r),
            Prepared::Sealed(s) => View::Sealed(s),
        }
    }
}

/// A relayed record as the apply reads it.
#[derive(Clone, Copy)]
enum View<'a> {
    Record(&'a RemoteRecord),
    Sealed(&'a SealedRemote),
}

impl<'a> View<'a> {
    fn kind(self) -> RecordKind {
        match self {
            View::Record(r) => r.record.kind(),
            View::Sealed(s) => s.facts.kind,
        }
    }

    fn id(self) -> RecordId {
        match self {
            View::Record(r) => r.record.id(),
            View::Sealed(s) => s.id,
        }
    }

    fn stamp(self) -> Hlc {
        match self {
            View::Record(r) => r.stamp,
            View::Sealed(s) => s.stamp,
        }
    }

    fn origin(self) -> Option<&'a ReplicaOrigin> {
        match self {
            View::Record(r) => r.origin.as_ref(),
            View::Sealed(s) => s.origin.as_ref(),
        }
    }

    fn changed_desk(self) -> &'a str {
        match self {
            View::Record(r) => &r.changed_desk,
            View::Sealed(s) => &s.changed_desk,
        }
    }

    fn keeps(self, policy: &crate::model::SharingPolicy, now: crate::model::Moment) -> bool {
        match self {
            View::Record(r) => policy.keeps(&r.record, now),
            View::Sealed(s) => policy.keeps_facts(s.facts, now),
        }
    }

    /// The record itself; a prepared one is opened from its sealed bytes.
    fn record(self) -> Result<std::borrow::Cow<'a, AnyRecord>, StoreError> {
        Ok(match self {
            View::Record(r) => std::borrow::Cow::Borrowed(&r.record),
            View::Sealed(s) => std::borrow::Cow::Owned(open_any(&s.keys, s.facts.kind, s.id.as_u128(), &s.sealed)?),
        })
    }
}

/// What a pulled page did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoteApplied {
    /// Records in the page.
    pub received: u64,
    /// Stored for the first time.
    pub new: u64,
    /// Merged into a copy held here, which changed.
    pub merged: u64,
    /// Already held as sent.
    pub unchanged: u64,
    /// Outside the sharing policy (not stored).
    pub not_kept: u64,
    /// Refused (audit entries, kind clashes).
    pub refused: u64,
    /// The records that changed here, with the desk where each was last changed, for screens to refresh and forms
    /// to warn.
    #[serde(skip)]
    pub changed: Vec<(RecordKind, RecordId, String)>,
}

/// The tables a pulled page writes, open for the whole page.
struct PageTables<'t> {
    tx: &'t redb::WriteTransaction,
    /// Record tables by kind code − 1, opened on first use.
    records: [Option<redb::Table<'t, u128, &'static [u8]>>; RecordKind::ALL.len()],
    index: IndexTables<'t>,
    replicas: redb::Table<'t, (u16, u128), &'static [u8]>,
}

impl PageTables<'_> {
    /// Merges one relayed record (see [`Store::apply_remote_page`]).
    fn merge(
        &mut self,
        r: View<'_>,
        origin: Option<&ReplicaOrigin>,
        policy: &crate::model::SharingPolicy,
        now: crate::model::Moment,
        keys: &Arc<Keys>,
        offset: chrono::FixedOffset,
    ) -> Result<RemoteOutcome, StoreError> {
        let kind = r.kind();
        if kind == RecordKind::Audit {
            return Ok(RemoteOutcome::Refused);
        }
        let id = r.id().as_u128();
        let def = tables::records(kind);
        let slot = kind_slot(kind);
        if self.records[slot].is_none() {
            self.records[slot] = Some(self.tx.open_table(def)?);
        }
        let table = self.records[slot].as_mut().ok_or_else(|| StoreError::Meta("record table".into()))?;
        let old = {
            let v = table.get(id)?;
            v.map(|g| open_any(keys, kind, id, g.value())).transpose()?
        };
        let merged = match &old {
            None if origin.is_some() && !r.keeps(policy, now) => return Ok(RemoteOutcome::NotKept),
            // Prepared with the key in use: store what was sealed and indexed beside this thread.
            None if let View::Sealed(p) = r
                && Arc::ptr_eq(&p.keys, keys) =>
            {
                table.insert(id, p.sealed.as_slice())?;
                self.index.change(&Entries::default(), &p.entries, None, false)?;
                if let Some(origin) = origin {
                    self.replicas.insert((kind.code(), id), codec::encode(origin)?.as_slice())?;
                }
                return Ok(RemoteOutcome::New);
            }
            Some(_) if meta::chain_keys(kind).is_some() => return Ok(RemoteOutcome::Unchanged),
            Some(o) => {
                let mut m = o.clone();
                if !m.merge_from(&*r.record()?) {
                    return Ok(RemoteOutcome::Refused);
                }
                if &m == o {
                    return Ok(RemoteOutcome::Unchanged);
                }
                m
            }
            None => r.record()?.into_owned(),
        };
        table.insert(id, seal_any(keys, &merged)?.as_slice())?;
        self.index.update(old.as_ref(), &merged, offset, keys, false)?;
        if old.is_none()
            && let Some(origin) = origin
        {
            self.replicas.insert((kind.code(), id), codec::encode(origin)?.as_slice())?;
        }
        Ok(if old.is_none() { RemoteOutcome::New } else { RemoteOutcome::Merged })
    }
}

/// Counts of records by origin (`guidedesk stats --json`'s `by_origin`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByOrigin {
    /// Written at this desk.
    pub local: u64,
    /// Written at other desks of the site and relayed by HQ.
    pub replicated: u64,
}

impl Store {
    /// Applies a pulled page of the records stream and stores the stream's cursor, in one durable transaction.
    /// Each record is merged into the copy held here by its own merge rule, with its indexes, and **no outbox op**:
    /// HQ holds it already, and an edit made here meanwhile has its own op that HQ merges the same way. The clock
    /// observes each record's stamp, so later edits here order after every edit seen. A record first seen here
    /// gets its origin noted (none when it is this desk's own). Chained records (feedback) never change once held.
    /// The tables stay open for the whole page.
    pub fn apply_remote_page<R: RemoteItem>(
        &self,
        records: &[R],
        stream: &str,
        cursor: u64,
    ) -> Result<RemoteApplied, StoreError> {
        self.apply_remote(records, stream, cursor, false)
    }

    /// [`Store::apply_remote_page`] for a page of a catch-up (more pages follow): its phone and name index entries
    /// wait in the backlog and go into their tables in key order when the catch-up ends (see `store::backlog`), and
    /// the commit does not wait for the disk — a power cut takes back the page with its cursor, so it is pulled
    /// again; the settling commit is durable and makes every page before it durable. Call
    /// [`Store::settle_blind_backlog`] once the run of pages is over.
    pub fn apply_remote_catch_up<R: RemoteItem>(
        &self,
        records: &[R],
        stream: &str,
        cursor: u64,
    ) -> Result<RemoteApplied, StoreError> {
        self.apply_remote(records, stream, cursor, true)
    }

    fn apply_remote<R: RemoteItem>(
        &self,
        records: &[R],
        stream: &str,
        cursor: u64,
        catch_up: bool,
    ) -> Result<RemoteApplied, StoreError> {
        let policy = self.reference().sharing.clone();
        let me = self.device().0;
        let keys = self.keys();
        let now = self.now();
        let phys = now.0.max(0) as u64;
        let mut guard = self.hlc.lock().map_err(|_| StoreError::Meta("clock lock poisoned by a panic".into()))?;
        let mut clock = guard.clone();
        let mut tx = self.db.begin_write()?;
        let settled = if catch_up { 0 } else { self.settle_backlog_in(&tx)? };
        let mut out = RemoteApplied { received: records.len() as u64, ..RemoteApplied::default() };
        let deferred = {
            let mut page = PageTables {
                records: std::array::from_fn(|_| None),
                index: IndexTables::new(&tx),
                replicas: tx.open_table(tables::REPLICAS)?,
                tx: &tx,
            };
            if catch_up {
                page.index.deferred = Some(Vec::new());
            }
            for item in records {
                let r = item.view();
                clock.observe(r.stamp(), phys);
                let origin = r.origin().filter(|o| o.device != me);
                let outcome = page.merge(r, origin, &policy, now, &keys, self.offset)?;
                match outcome {
                    RemoteOutcome::New => out.new += 1,
                    RemoteOutcome::Merged => out.merged += 1,
                    RemoteOutcome::Unchanged => out.unchanged += 1,
                    RemoteOutcome::NotKept => out.not_kept += 1,
                    RemoteOutcome::Refused => out.refused += 1,
                }
                if matches!(outcome, RemoteOutcome::New | RemoteOutcome::Merged) {
                    out.changed.push((r.kind(), r.id(), r.changed_desk().to_owned()));
                }
            }
            let mut m = tx.open_table(tables::META)?;
            m.insert(meta::HLC, codec::encode(&clock.last())?.as_slice())?;
            let key = format!("{}{stream}", meta::PULL_CURSOR_PREFIX);
            m.insert(key.as_str(), cursor.to_le_bytes().as_slice())?;
            page.index.deferred.take().unwrap_or_default()
        };
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        if !catch_up {
            self.commit_settled(tx, settled)?;
            *guard = clock;
            return Ok(out);
        }
        // The backlog's lock is held across the commit, so a reader sees these entries in the tables or in the
        // backlog, never in neither.
        let mut backlog = self.backlog()?;
        let before = backlog.len();
        backlog.extend(deferred);
        let settle = backlog.len() > self.backlog_cap;
        // The mark goes only with entries that wait: a run whose records name nobody leaves nothing to rebuild.
        let marked = if settle {
            backlog::settle_in(&tx, &backlog)
        } else if backlog.is_empty() {
            Ok(())
        } else {
            backlog::mark_in(&tx)
        };
        if !settle {
            // Not flushed to disk: a power cut takes back these pages with their cursor, and they are pulled again.
            // The settling commit at the end of the run (or any local write) makes everything before it durable.
            tx.set_durability(redb::Durability::None).map_err(|e| StoreError::Meta(e.to_string()))?;
        }
        match marked.and_then(|()| tx.commit().map_err(StoreError::from)) {
            Ok(()) if settle => backlog.clear(),
            Ok(()) => {}
            Err(e) => {
                backlog.truncate(before);
                return Err(e);
            }
        }
        *guard = clock;
        Ok(out)
    }

    /// Prepares a relayed record for [`Store::apply_remote_catch_up`] (see [`PreparedRemote`]); touches no table,
    /// so it runs on any thread beside the one that applies.
    pub fn prepare_remote(&self, remote: RemoteRecord) -> Result<PreparedRemote, StoreError> {
        let rec = &remote.record;
        let kind = rec.kind();
        if kind == RecordKind::Audit {
            return Ok(remote.into());
        }
        let keys = self.keys();
        let sealed = seal_any(&keys, rec)?;
        let entries = entries(rec, self.offset, &keys);
        Ok(PreparedRemote(Prepared::Sealed(SealedRemote {
            id: rec.id(),
            stamp: remote.stamp,
            facts: KeepFacts::of(rec),
            origin: remote.origin,
            changed_desk: remote.changed_desk,
            keys,
            sealed,
            entries,
        })))
    }

    /// Where a record came from: `None` for one written here.
    pub fn origin_of(&self, kind: RecordKind, id: RecordId) -> Result<Option<ReplicaOrigin>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::REPLICAS)?;
        let v = t.get((kind.code(), id.as_u128()))?;
        Ok(v.map(|g| codec::decode::<ReplicaOrigin>(g.value())).transpose()?)
    }

    /// Every replicated record's origin, by (kind, id).
    pub fn origins(&self) -> Result<BTreeMap<(RecordKind, RecordId), ReplicaOrigin>, StoreError> {
        let tx = self.read()?;
        let mut out = BTreeMap::new();
        for e in tx.open_table(tables::REPLICAS)?.iter()? {
            let (k, v) = e?;
            let (kind, id) = k.value();
            if let Some(kind) = RecordKind::from_code(kind) {
                out.insert((kind, RecordId::from_u128(id)), codec::decode::<ReplicaOrigin>(v.value())?);
            }
        }
        Ok(out)
    }

    /// The desk each replicated record of a kind came from (records written here are not listed).
    pub fn origin_desks(&self, kind: RecordKind) -> Result<BTreeMap<RecordId, String>, StoreError> {
        let tx = self.read()?;
        let mut out = BTreeMap::new();
        let k = kind.code();
        for e in tx.open_table(tables::REPLICAS)?.range((k, 0u128)..=(k, u128::MAX))? {
            let (key, v) = e?;
            out.insert(RecordId::from_u128(key.value().1), codec::decode::<ReplicaOrigin>(v.value())?.desk);
        }
        Ok(out)
    }

    /// Follow-up tasks made from the same source at two desks while they were apart (both kept; a supervisor
    /// settles which one to call from): source → task ids, smallest first.
    pub fn duplicate_followups(&self) -> Result<Vec<Vec<RecordId>>, StoreError> {
        let tx = self.read()?;
        let keys = self.keys();
        let mut by_source: BTreeMap<String, Vec<RecordId>> = BTreeMap::new();
        let t = tx.open_table(tables::records(RecordKind::FollowupTask))?;
        for e in t.iter()? {
            let (k, v) = e?;
            if let AnyRecord::FollowupTask(task) = open_any(&keys, RecordKind::FollowupTask, k.value(), v.value())? {
                by_source.entry(task.source.dedup_key()).or_default().push(task.id);
            }
        }
        Ok(by_source
            .into_values()
            .filter(|ids| ids.len() > 1)
            .map(|mut ids| {
                ids.sort();
                ids
            })
            .collect())
    }

    /// Verifies the feedback chains of the other desks this desk holds records of: per origin, each record's hash
    /// matches its content and each record that directly follows another held one links to it. (A desk holds only
    /// part of another desk's chain — what the sharing policy keeps — so positions not held are not problems.)
    pub fn verify_replica_chains(&self) -> Result<Vec<String>, StoreError> {
        let origins = self.origins()?;
        let mut chains: BTreeMap<(u128, String), Vec<Feedback>> = BTreeMap::new();
        for ((kind, id), origin) in &origins {
            if *kind != RecordKind::Feedback {
                continue;
            }
            if let Some(f) = self.get::<Feedback>(*id)? {
                chains.entry((origin.device, origin.desk.clone())).or_default().push(f);
            }
        }
        let mut problems = Vec::new();
        for ((device, desk), mut chain) in chains {
            chain.sort_by_key(Chained::chain_index);
            let who = format!("feedback of desk {desk} ({})", uuid::Uuid::from_u128(device));
            let mut prev: Option<(u64, [u8; 32])> = None;
            for f in &chain {
                let (index, id) = (f.chain_index(), Record::id(f));
                if f.compute_hash() != f.hash() {
                    problems.push(format!("{who}: #{index} ({id}) was altered"));
                } else if let Some((pi, ph)) = prev
                    && pi + 1 == index
                    && f.prev_hash() != ph
                {
                    problems.push(format!("{who}: #{index} ({id}) does not follow the previous record"));
                }
                prev = Some((index, f.hash()));
            }
        }
        Ok(problems)
    }

    /// Purges replicated records this desk no longer keeps under the sharing policy (closed, older than the
    /// policy's days, and with no edit of this desk waiting for HQ), with their index entries and origin rows, in
    /// one durable transaction. Returns how many went.
    ///
    /// A record the policy no longer keeps is older than its kind's days, so the candidates are found by the time
    /// index below each kind's cutoff and only those are opened: the cost follows the records past the policy,
    /// not everything this desk holds.
    pub fn purge_replicas(&self, dry_run: bool) -> Result<u64, StoreError> {
        let policy = self.reference().sharing.clone();
        let keys = self.keys();
        let now = self.now();
        let mut tx = self.db.begin_write()?;
        let settled = self.settle_backlog_in(&tx)?;
        let mut purged = 0;
        {
            let acked = read_u64(&tx.open_table(tables::META)?, meta::ACKED_SEQ)?;
            let mut pending = std::collections::BTreeSet::new();
            for e in tx.open_table(tables::OUTBOX)?.range(acked.saturating_add(1)..)? {
                let (k, v) = e?;
                let op = open_op(&keys, k.value(), v.value())?;
                pending.insert((op.key.kind, op.key.id));
            }
            let mut gone = Vec::new();
            {
                let time = tx.open_table(tables::IDX_TIME)?;
                let replicas = tx.open_table(tables::REPLICAS)?;
                for kind in RecordKind::ALL.into_iter().filter(|k| *k != RecordKind::Audit) {
                    let code = kind.code();
                    let days = i64::from(policy.days_for(kind));
                    let cutoff = now.0.saturating_sub(days.saturating_mul(86_400_000));
                    let t = tx.open_table(tables::records(kind))?;
                    for e in time.range((code, i64::MIN, 0u128)..(code, cutoff, 0u128))? {
                        let id = e?.0.value().2;
                        if pending.contains(&(code, id)) || replicas.get((code, id))?.is_none() {
                            continue;
                        }
                        let Some(g) = t.get(id)? else { continue };
                        let rec = open_any(&keys, kind, id, g.value())?;
                        if !policy.keeps(&rec, now) {
                            gone.push(rec);
                        }
                    }
                }
            }
            let mut index = IndexTables::new(&tx);
            for rec in gone {
                let (code, id) = (rec.kind().code(), rec.id().as_u128());
                tx.open_table(tables::REPLICAS)?.remove((code, id))?;
                tx.open_table(tables::records(rec.kind()))?.remove(id)?;
                index.apply(&rec, self.offset, &keys, false, false)?;
                purged += 1;
            }
        }
        if dry_run {
            tx.abort()?;
        } else {
            tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
            self.commit_settled(tx, settled)?;
        }
        Ok(purged)
    }
}
