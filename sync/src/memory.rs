//! An in-memory [`HqStorage`] and change log, for tests of the protocol and of clients.
//!
//! Records are opaque bytes merged by a caller-supplied function, so the protocol can be tested without any
//! application model. A transaction works on a copy of the state and replaces it on commit; the state's lock is held
//! for the whole transaction, like a single-writer database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::envelope::{DeviceId, Op, RecordKey};
use crate::protocol::Change;
use crate::server::{ChangeSource, HqStorage, HqTx, OpContext, Verdict};

/// Merges an op's payload into the stored record (`None` when new): the merged bytes, or why the op is invalid.
pub type MergeFn = dyn Fn(Option<&[u8]>, &Op) -> Result<Vec<u8>, String> + Send + Sync;

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
        let old = self.work.records.get(&op.key).map(Vec::as_slice);
        match (self.hq.merge)(old, op) {
            Ok(bytes) => {
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
