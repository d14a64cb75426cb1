//! An in-memory [`HqStorage`] and change log, for tests of the protocol and of clients.
//!
//! Records are opaque bytes merged by a caller-supplied function, so the protocol can be tested without any
//! application model. A transaction works on a copy of the state and replaces it on commit; the state's lock is held
//! for the whole transaction, like a single-writer database.
//!
//! Like the real HQ, [`MemoryHq`] relays records back to devices through a per-site **record feed** (the
//! [`RECORDS_STREAM`] stream, served by [`MemoryHq::feed_page`]):
//!
//! - every device belongs to a site ([`MemoryHq::set_site`]; a device never registered belongs to
//!   [`DEFAULT_SITE`]), and a record belongs to the site of the device whose op created it. An op of a device of
//!   another site is quarantined (the ownership rule), so a site's devices never see another site's records;
//! - every applied op moves its record to the end of its site's feed: a new feed sequence number from one counter
//!   shared by every site (the feed head), assigned in commit order. When the merged record is byte for byte the
//!   op's payload, the pushing device is the entry's *echo*: it already holds that state, so it is not sent back;
//! - a record appears only at its latest position, so the feed needs no compaction: a cursor beyond the head (HQ
//!   restored from an older backup, see [`MemoryHq::restore`]) starts again from the beginning, with a reset page;
//! - feed numbers never go back, not even across a restore (the real HQ numbers from its clock; here the highest
//!   number ever handed out survives a restore as [`MemoryState::number_floor`]), so nothing merged after a restore
//!   is numbered below a cursor some device was given before it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::envelope::{DeviceId, Op, RecordKey};
use crate::protocol::{Change, PullPage, PullResponse};
use crate::server::{ChangeSource, HqStorage, HqTx, OpContext, Verdict};

/// Merges an op's payload into the stored record (`None` when new): the merged bytes, or why the op is invalid.
pub type MergeFn = dyn Fn(Option<&[u8]>, &Op) -> Result<Vec<u8>, String> + Send + Sync;

/// The name of the record feed stream (as the real HQ names it).
pub const RECORDS_STREAM: &str = "records";

/// The site of a device that was never given one with [`MemoryHq::set_site`].
pub const DEFAULT_SITE: &str = "";

/// Largest page of the record feed a device may ask for (as the real HQ's).
pub const MAX_FEED_PAGE: u32 = 2_000;

/// The key of a record's change in the record feed: `<kind>:<id as 32 hex digits>` (the real HQ's format).
pub fn feed_key(key: RecordKey) -> String {
    format!("{}:{:032x}", key.kind, key.id)
}

/// The record named by a [`feed_key`].
pub fn parse_feed_key(key: &str) -> Option<RecordKey> {
    let (kind, id) = key.split_once(':')?;
    if id.len() != 32 {
        return None;
    }
    Some(RecordKey { kind: kind.parse().ok()?, id: u128::from_str_radix(id, 16).ok()? })
}

/// Where a record stands in its site's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPos {
    /// The record's site: its origin device's.
    pub site: String,
    /// Its latest feed sequence number.
    pub seq: u64,
    /// The device whose op produced exactly this state (it is not sent the record back), if any.
    pub echo: Option<DeviceId>,
}

/// Everything the in-memory HQ holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    /// Records by key.
    pub records: BTreeMap<RecordKey, Vec<u8>>,
    /// Device cursors.
    pub cursors: BTreeMap<DeviceId, u64>,
    /// One receipt per `(device, seq)`: the record key and whether the op was quarantined.
    pub receipts: BTreeMap<(DeviceId, u64), (RecordKey, bool)>,
    /// Quarantined ops with their reasons.
    pub quarantine: BTreeMap<(DeviceId, u64), (Op, String)>,
    /// Receipts written for a `(device, seq)` that already had one (must stay 0).
    pub double_receipts: u64,
    /// Ops seen with a clamped stamp.
    pub clamped: u64,
    /// Each registered device's site (others belong to [`DEFAULT_SITE`]).
    pub sites: BTreeMap<DeviceId, String>,
    /// Each record's position in its site's feed.
    pub feed: BTreeMap<RecordKey, FeedPos>,
    /// The highest feed sequence number assigned (one counter for every site; 0 when none).
    pub feed_head: u64,
    /// New feed numbers are above this (the highest number handed out before the last restore).
    pub number_floor: u64,
}

impl MemoryState {
    /// The site of a device.
    pub fn site_of(&self, device: DeviceId) -> &str {
        self.sites.get(&device).map_or(DEFAULT_SITE, String::as_str)
    }
}

/// The in-memory HQ storage.
#[derive(Clone)]
pub struct MemoryHq {
    state: Arc<Mutex<MemoryState>>,
    merge: Arc<MergeFn>,
    fail_commits: Arc<Mutex<u32>>,
}

impl std::fmt::Debug for MemoryHq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHq").finish_non_exhaustive()
    }
}

/// A failure of the in-memory storage (only injected ones, and a poisoned lock).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("in-memory storage failure: {0}")]
pub struct MemoryError(pub String);

impl MemoryHq {
    /// An empty HQ whose records merge with `merge`.
    pub fn new(merge: impl Fn(Option<&[u8]>, &Op) -> Result<Vec<u8>, String> + Send + Sync + 'static) -> Self {
        Self { state: Arc::default(), merge: Arc::new(merge), fail_commits: Arc::default() }
    }

    /// A copy of the current state.
    pub fn state(&self) -> MemoryState {
        self.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Registers the site of a device (before its first push: a record belongs to the site its origin device had
    /// when it created the record).
    pub fn set_site(&self, device: DeviceId, site: &str) {
        if let Ok(mut s) = self.lock() {
            s.sites.insert(device, site.to_string());
        }
    }

    /// Replaces the whole state with `backup` (an earlier [`MemoryHq::state`]), as HQ restored from a backup:
    /// device cursors, records and the feed head go back to what the backup held.
    ///
    /// Feed numbers handed out after the restore stay above every one handed out before it, as the real HQ's
    /// clock-based numbers do.
    pub fn restore(&self, mut backup: MemoryState) {
        if let Ok(mut s) = self.lock() {
            backup.number_floor = backup.number_floor.max(s.number_floor).max(s.feed_head);
            *s = backup;
        }
    }

    /// Answers a pull of the [`RECORDS_STREAM`] stream by `device`, like the real HQ: the entries of the device's
    /// site after `cursor` (from the beginning when the cursor is beyond the head), at most `limit` (clamped to
    /// 1..=[`MAX_FEED_PAGE`]), each a [`feed_key`] with HQ's merged record. Entries whose echo is `device` are left
    /// out (but still move the cursor). The cursor is the last entry's sequence number when `more`, else the head,
    /// past other sites' entries. The page that starts again from the beginning is a reset page.
    pub fn feed_page(
        &self,
        device: DeviceId,
        cursor: u64,
        limit: u32,
        now_ms: u64,
    ) -> Result<PullResponse, MemoryError> {
        let state = self.lock()?;
        let site = state.site_of(device);
        let head = state.feed_head;
        let restart = cursor > head;
        let after = if restart { 0 } else { cursor };
        let limit = limit.clamp(1, MAX_FEED_PAGE) as usize;
        let mut entries: Vec<(&RecordKey, &FeedPos)> =
            state.feed.iter().filter(|(_, p)| p.site == site && p.seq > after).collect();
        entries.sort_unstable_by_key(|(_, p)| p.seq);
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next = if more { entries.last().map_or(head, |(_, p)| p.seq) } else { head };
        let changes = entries
            .into_iter()
            .filter(|(_, p)| p.echo != Some(device))
            .filter_map(|(k, p)| {
                let value = state.records.get(k)?;
                Some(Change { seq: p.seq, key: feed_key(*k), value: Some(value.clone()) })
            })
            .collect();
        let page = if restart {
            PullPage::Reset { snapshot: changes, cursor: next }
        } else {
            PullPage::Changes { changes, cursor: next }
        };
        Ok(PullResponse { server_time_ms: now_ms, page, more })
    }

    /// Makes the next `n` commits fail (after the batch was applied in the transaction), as a crash before commit.
    pub fn fail_next_commits(&self, n: u32) {
        if let Ok(mut f) = self.fail_commits.lock() {
            *f = n;
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, MemoryState>, MemoryError> {
        self.state.lock().map_err(|_| MemoryError("state lock poisoned".into()))
    }
}

/// A transaction of [`MemoryHq`].
pub struct MemoryTx<'a> {
    guard: MutexGuard<'a, MemoryState>,
    work: MemoryState,
    hq: &'a MemoryHq,
}

impl std::fmt::Debug for MemoryTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTx").finish_non_exhaustive()
    }
}

impl HqStorage for MemoryHq {
    type Error = MemoryError;
    type Tx<'a> = MemoryTx<'a>;

    fn begin(&self) -> Result<MemoryTx<'_>, MemoryError> {
        let guard = self.lock()?;
        let work = guard.clone();
        Ok(MemoryTx { guard, work, hq: self })
    }
}

impl MemoryTx<'_> {
    fn receipt(&mut self, ctx: &OpContext, op: &Op, quarantined: bool) {
        if self.work.receipts.insert((ctx.device, op.seq), (op.key, quarantined)).is_some() {
            self.work.double_receipts += 1;
        }
        if ctx.clamped {
            self.work.clamped += 1;
        }
    }
}

impl HqTx for MemoryTx<'_> {
    type Error = MemoryError;

    fn device_cursor(&mut self, device: DeviceId) -> Result<u64, MemoryError> {
        Ok(self.work.cursors.get(&device).copied().unwrap_or(0))
    }

    fn apply(&mut self, op: &Op, ctx: &OpContext) -> Result<Verdict, MemoryError> {
        let site = self.work.site_of(ctx.device).to_string();
        let owner = self.work.feed.get(&op.key).map(|p| p.site.clone());
        if let Some(owner) = owner.as_ref().filter(|o| **o != site) {
            return Ok(Verdict::Invalid(format!(
                "record {} belongs to site {owner:?}; a device of site {site:?} may not change it",
                feed_key(op.key)
            )));
        }
        let old = self.work.records.get(&op.key).map(Vec::as_slice);
        match (self.hq.merge)(old, op) {
            Ok(bytes) => {
                // The record moves to the end of its site's feed.
                self.work.feed_head = self.work.feed_head.max(self.work.number_floor) + 1;
                let echo = (bytes == op.payload).then_some(ctx.device);
                let pos = FeedPos { site: owner.unwrap_or(site), seq: self.work.feed_head, echo };
                self.work.feed.insert(op.key, pos);
                self.work.records.insert(op.key, bytes);
                self.receipt(ctx, op, false);
                Ok(Verdict::Applied)
            }
            Err(reason) => Ok(Verdict::Invalid(reason)),
        }
    }

    fn quarantine(&mut self, op: &Op, ctx: &OpContext, reason: &str) -> Result<(), MemoryError> {
        self.work.quarantine.insert((ctx.device, op.seq), (op.clone(), reason.to_string()));
        self.receipt(ctx, op, true);
        Ok(())
    }

    fn set_device_cursor(&mut self, device: DeviceId, seq: u64, _at: u64, _skew: i64) -> Result<(), MemoryError> {
        self.work.cursors.insert(device, seq);
        Ok(())
    }

    fn commit(mut self) -> Result<(), MemoryError> {
        let mut fail = self.hq.fail_commits.lock().map_err(|_| MemoryError("lock poisoned".into()))?;
        if *fail > 0 {
            *fail -= 1;
            return Err(MemoryError("injected commit failure".into()));
        }
        *self.guard = std::mem::take(&mut self.work);
        Ok(())
    }
}

/// An in-memory change log of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryLog {
    /// The retained changes, in sequence order.
    pub changes: Vec<Change>,
    /// The highest sequence number assigned.
    pub head: u64,
    /// Changes up to here may have been discarded.
    pub floor: u64,
}

impl MemoryLog {
    /// Appends a change (a value, or `None` to remove the key) and returns its sequence number.
    pub fn put(&mut self, key: &str, value: Option<Vec<u8>>) -> u64 {
        self.head += 1;
        self.changes.push(Change { seq: self.head, key: key.to_string(), value });
        self.head
    }

    /// Discards superseded changes and removals, except among the last `keep` changes. The latest value of every
    /// live key is always kept, so a snapshot stays complete; the floor moves past every discarded change.
    pub fn compact(&mut self, keep: usize) {
        let cut = self.changes.len().saturating_sub(keep);
        let mut latest: BTreeMap<String, u64> = BTreeMap::new();
        for c in &self.changes {
            latest.insert(c.key.clone(), c.seq);
        }
        let mut kept = Vec::with_capacity(self.changes.len());
        for (i, c) in std::mem::take(&mut self.changes).into_iter().enumerate() {
            if i >= cut || (latest.get(&c.key) == Some(&c.seq) && c.value.is_some()) {
                kept.push(c);
            } else {
                self.floor = self.floor.max(c.seq);
            }
        }
        self.changes = kept;
    }

    /// The live entries: the latest value per key, removed keys left out (what a full replay gives).
    pub fn live(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for c in &self.changes {
            match &c.value {
                Some(v) => out.insert(c.key.clone(), v.clone()),
                None => out.remove(&c.key),
            };
        }
        out
    }
}

impl ChangeSource for MemoryLog {
    type Error = MemoryError;

    fn head(&self) -> Result<u64, MemoryError> {
        Ok(self.head)
    }

    fn floor(&self) -> Result<u64, MemoryError> {
        Ok(self.floor)
    }

    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, MemoryError> {
        Ok(self.changes.iter().filter(|c| c.seq > after).take(limit).cloned().collect())
    }

    fn snapshot(&self) -> Result<Vec<Change>, MemoryError> {
        let mut latest: BTreeMap<&str, &Change> = BTreeMap::new();
        for c in &self.changes {
            latest.insert(&c.key, c);
        }
        Ok(latest.into_values().filter(|c| c.value.is_some()).cloned().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Hlc;
    use crate::server::apply_push;

    /// An HQ whose records are byte strings merged by keeping the longer (so a merge may or may not be an echo).
    fn hq() -> MemoryHq {
        MemoryHq::new(|old, op| match old {
            Some(o) if o.len() > op.payload.len() => Ok(o.to_vec()),
            _ => Ok(op.payload.clone()),
        })
    }

    fn op(seq: u64, id: u128, payload: &[u8]) -> Op {
        Op { seq, key: RecordKey { kind: 2, id }, schema: 1, stamp: Hlc::ZERO, payload: payload.to_vec() }
    }

    fn page(hq: &MemoryHq, device: DeviceId, cursor: u64, limit: u32) -> (Vec<(u64, String)>, u64, bool) {
        let r = hq.feed_page(device, cursor, limit, 0).unwrap();
        let (PullPage::Changes { changes, cursor } | PullPage::Reset { snapshot: changes, cursor }) = r.page;
        (changes.into_iter().map(|c| (c.seq, c.key)).collect(), cursor, r.more)
    }

    #[test]
    fn feed_keys_round_trip() {
        let k = RecordKey { kind: 3, id: 0xabc };
        assert_eq!(feed_key(k), "3:00000000000000000000000000000abc");
        assert_eq!(parse_feed_key(&feed_key(k)), Some(k));
        for bad in ["", "3", "x:00000000000000000000000000000abc", "3:abc"] {
            assert_eq!(parse_feed_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_feed_relays_a_sites_records_to_its_other_devices_only() {
        let hq = hq();
        let (a1, a2, b1) = (DeviceId(1), DeviceId(2), DeviceId(3));
        hq.set_site(a1, "A");
        hq.set_site(a2, "A");
        hq.set_site(b1, "B");
        // Feed seqs: records 10 and 11 at 1 and 2, record 20 of site B at 3, record 11 again at 4 (echo a1 for
        // all), record 10 again at 5 (no echo).
        apply_push(&hq, a1, &[op(1, 10, b"x"), op(2, 11, b"y")], 0, 0).unwrap();
        apply_push(&hq, b1, &[op(1, 20, b"z")], 0, 0).unwrap();
        apply_push(&hq, a1, &[op(3, 11, b"yy")], 0, 0).unwrap();
        // a2 merges into record 10 something shorter: the merged record is not what it sent, so it gets it back.
        apply_push(&hq, a2, &[op(1, 10, b"")], 0, 0).unwrap();
        let state = hq.state();
        assert_eq!(state.feed_head, 5);
        assert_eq!(state.feed[&RecordKey { kind: 2, id: 10 }], FeedPos { site: "A".into(), seq: 5, echo: None });
        assert_eq!(state.feed[&RecordKey { kind: 2, id: 11 }].echo, Some(a1));
        let k10 = feed_key(RecordKey { kind: 2, id: 10 });
        let k11 = feed_key(RecordKey { kind: 2, id: 11 });
        // a1 produced record 11 exactly: it only gets record 10; a2 gets both; b1 none of site A's.
        assert_eq!(page(&hq, a1, 0, 10), (vec![(5, k10.clone())], 5, false));
        assert_eq!(page(&hq, a2, 0, 10), (vec![(4, k11.clone()), (5, k10.clone())], 5, false));
        assert_eq!(page(&hq, b1, 0, 10), (vec![], 5, false));
        // Paging: a cut page ends at its last entry, even one left out as an echo.
        assert_eq!(page(&hq, a1, 0, 1), (vec![], 4, true));
        assert_eq!(page(&hq, a1, 4, 1), (vec![(5, k10.clone())], 5, false));
        // A cursor beyond the head (HQ restored from an older backup) starts again from the beginning.
        assert_eq!(page(&hq, a2, 9, 10), (vec![(4, k11), (5, k10)], 5, false));
        // A device of another site may not change a record: quarantined, and the feed does not move.
        let r = apply_push(&hq, b1, &[op(2, 10, b"zzz")], 0, 0).unwrap();
        let crate::protocol::PushOutcome::Accepted(ack) = r.outcome else { panic!("a gap") };
        assert_eq!(ack.quarantined.len(), 1, "{ack:?}");
        assert_eq!(hq.state().feed_head, 5);
    }

    #[test]
    fn devices_without_a_site_share_the_default_one_and_a_restore_takes_the_feed_back() {
        let hq = hq();
        apply_push(&hq, DeviceId(1), &[op(1, 1, b"a")], 0, 0).unwrap();
        let backup = hq.state();
        apply_push(&hq, DeviceId(2), &[op(1, 1, b"bb"), op(2, 2, b"c")], 0, 0).unwrap();
        assert_eq!(hq.state().feed[&RecordKey { kind: 2, id: 2 }].site, DEFAULT_SITE);
        assert_eq!(page(&hq, DeviceId(1), 0, 10).0.len(), 2);
        hq.restore(backup.clone());
        let restored = hq.state();
        assert_eq!(restored.records, backup.records);
        assert_eq!((restored.feed_head, restored.number_floor), (1, 3));
        // A device whose cursor is beyond the restored head starts again from the beginning, with a reset page.
        assert!(matches!(hq.feed_page(DeviceId(1), 3, 10, 0).unwrap().page, PullPage::Reset { .. }));
        // What is merged after the restore is numbered above every number handed out before it.
        apply_push(&hq, DeviceId(3), &[op(1, 5, b"d")], 0, 0).unwrap();
        assert_eq!(hq.state().feed[&RecordKey { kind: 2, id: 5 }].seq, 4);
    }
}
