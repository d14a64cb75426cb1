//! HQ-side logic of the protocol, independent of how HQ stores things.
//!
//! [`apply_push`] implements the push rules once, over a storage transaction ([`HqTx`]):
//!
//! - the whole batch is applied in **one transaction that also advances the device's cursor**, so a crash leaves
//!   either all of it or none of it, and the cursor always says exactly what HQ holds;
//! - ops with `seq <= cursor` are **skipped** as duplicates (a retried batch, a duplicated request);
//! - a batch that starts after `cursor + 1` is **refused** with the expected sequence number, and nothing is written;
//! - an op the application finds **permanently invalid** (undecodable payload, unknown kind, …) is quarantined with
//!   the reason and acknowledged like any other op, so it never wedges the device's queue; a transient storage error
//!   aborts the transaction instead and the device retries the batch;
//! - stamps ahead of HQ's clock by more than [`MAX_FUTURE_SKEW_MS`] are clamped (for HQ's bookkeeping) and flagged,
//!   never refused.
//!
//! [`pull_page`] implements the pull rules over a read snapshot of a change log ([`ChangeSource`]).

use crate::envelope::{BatchError, DeviceId, Op, contiguous_range};
use crate::hlc::Hlc;
use crate::protocol::{Change, MAX_FUTURE_SKEW_MS, PullPage, PullResponse, PushAck, PushOutcome, PushResponse};

/// What the application decided about one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The op was applied (its record inserted or merged).
    Applied,
    /// The op can never be applied; the reason is kept with it in quarantine.
    Invalid(String),
}

/// Facts about one op that the storage records beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpContext {
    /// The device the op came from.
    pub device: DeviceId,
    /// HQ's wall clock when the batch arrived (ms since the Unix epoch).
    pub received_ms: u64,
    /// The op's stamp, clamped to `received_ms` when it was too far ahead.
    pub stamp: Hlc,
    /// Whether the stamp was clamped.
    pub clamped: bool,
    /// The device's clock minus HQ's clock when the batch was sent (ms), for corrected business time.
    pub skew_ms: i64,
}

impl OpContext {
    /// The context of `op` from `device` received at `now_ms`: the stamp clamped to `now_ms` when it is ahead by more
    /// than [`MAX_FUTURE_SKEW_MS`] (see [`OpContext::clamped`]).
    pub fn of(op: &Op, device: DeviceId, now_ms: u64, skew_ms: i64) -> OpContext {
        let clamped = op.stamp.wall_ms > now_ms.saturating_add(MAX_FUTURE_SKEW_MS);
        let stamp = if clamped { Hlc { wall_ms: now_ms, logical: 0, node: op.stamp.node } } else { op.stamp };
        OpContext { device, received_ms: now_ms, stamp, clamped, skew_ms }
    }
}

/// The sender's clock minus HQ's (ms), from the time a batch says it was sent.
pub fn skew_ms(sent_at_ms: u64, now_ms: u64) -> i64 {
    (i128::from(sent_at_ms) - i128::from(now_ms)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// One write transaction of HQ's storage. Dropping it without [`HqTx::commit`] must discard everything it did.
pub trait HqTx {
    /// Storage failure (transient: the batch is retried).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The highest sequence number of `device` held by HQ (0 when none).
    fn device_cursor(&mut self, device: DeviceId) -> Result<u64, Self::Error>;
    /// Applies one op: decodes its payload, merges the record, records a receipt for `(device, seq)`.
    fn apply(&mut self, op: &Op, ctx: &OpContext) -> Result<Verdict, Self::Error>;
    /// Applies a run of ops of one device, in order: exactly what calling [`HqTx::apply`] on each in turn does,
    /// one verdict per op. The default does just that; a storage that can write many rows per statement (one
    /// round trip per table instead of several per op) overrides it.
    fn apply_all(&mut self, ops: &[(&Op, OpContext)]) -> Result<Vec<Verdict>, Self::Error> {
        ops.iter().map(|(op, ctx)| self.apply(op, ctx)).collect()
    }
    /// Keeps a permanently invalid op with the reason (and a receipt for `(device, seq)`).
    fn quarantine(&mut self, op: &Op, ctx: &OpContext, reason: &str) -> Result<(), Self::Error>;
    /// Sets the device's cursor (never lower than before; [`apply_push`] guarantees it).
    fn set_device_cursor(&mut self, device: DeviceId, seq: u64, ctx_ms: u64, skew_ms: i64) -> Result<(), Self::Error>;
    /// Commits durably.
    fn commit(self) -> Result<(), Self::Error>;
}

/// HQ's storage: hands out write transactions. One transaction per push batch.
pub trait HqStorage {
    /// Storage failure.
    type Error: std::error::Error + Send + Sync + 'static;
    /// The transaction type.
    type Tx<'a>: HqTx<Error = Self::Error>
    where
        Self: 'a;
    /// Begins a write transaction.
    fn begin(&self) -> Result<Self::Tx<'_>, Self::Error>;
}

/// Why a push could not be handled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError<E: std::error::Error + 'static> {
    /// The batch is malformed (not contiguous): a client bug; the request is refused.
    #[error("invalid push batch: {0}")]
    BadBatch(#[from] BatchError),
    /// Storage failed; nothing was written.
    #[error(transparent)]
    Storage(E),
}

/// Applies a push batch from `device` (see the module documentation for the rules).
///
/// `now_ms` is HQ's wall clock and `sent_at_ms` the device's clock when it sent the batch.
pub fn apply_push<S: HqStorage>(
    storage: &S,
    device: DeviceId,
    ops: &[Op],
    now_ms: u64,
    sent_at_ms: u64,
) -> Result<PushResponse, ApplyError<S::Error>> {
    let range = match contiguous_range(ops) {
        Ok(r) => Some(r),
        Err(BatchError::Empty) => None,
        Err(e) => return Err(e.into()),
    };
    let skew_ms = skew_ms(sent_at_ms, now_ms);
    let mut tx = storage.begin().map_err(ApplyError::Storage)?;
    let cursor = tx.device_cursor(device).map_err(ApplyError::Storage)?;
    let Some((first, last)) = range else {
        // A query for the cursor: nothing to write.
        drop(tx);
        return Ok(PushResponse {
            server_time_ms: now_ms,
            outcome: PushOutcome::Accepted(PushAck { acked_through: cursor, ..PushAck::default() }),
        });
    };
    if first > cursor.saturating_add(1) {
        drop(tx);
        return Ok(PushResponse { server_time_ms: now_ms, outcome: PushOutcome::Gap { expected: cursor + 1 } });
    }
    let mut ack = PushAck::default();
    let mut fresh: Vec<(&Op, OpContext)> = Vec::with_capacity(ops.len());
    for op in ops {
        if op.seq <= cursor {
            ack.skipped_duplicates.push(op.seq);
            continue;
        }
        let ctx = OpContext::of(op, device, now_ms, skew_ms);
        if ctx.clamped {
            ack.clamped.push(op.seq);
        }
        fresh.push((op, ctx));
    }
    let mut verdicts = tx.apply_all(&fresh).map_err(ApplyError::Storage)?.into_iter();
    for (op, ctx) in &fresh {
        // A storage that answered too few verdicts has a bug; the op is kept in quarantine rather than lost.
        let verdict = verdicts.next().unwrap_or_else(|| Verdict::Invalid("storage gave no verdict".into()));
        match verdict {
            Verdict::Applied => ack.applied += 1,
            Verdict::Invalid(reason) => {
                tx.quarantine(op, ctx, &reason).map_err(ApplyError::Storage)?;
                ack.quarantined.push((op.seq, reason));
            }
        }
    }
    let through = cursor.max(last);
    if through > cursor {
        tx.set_device_cursor(device, through, now_ms, skew_ms).map_err(ApplyError::Storage)?;
        tx.commit().map_err(ApplyError::Storage)?;
    } else {
        drop(tx);
    }
    ack.acked_through = through;
    Ok(PushResponse { server_time_ms: now_ms, outcome: PushOutcome::Accepted(ack) })
}

/// A consistent read snapshot of one stream's change log, as seen by one device's scope.
pub trait ChangeSource {
    /// Storage failure.
    type Error: std::error::Error + Send + Sync + 'static;
    /// The highest change sequence number assigned so far (0 when none).
    fn head(&self) -> Result<u64, Self::Error>;
    /// Changes with `seq <= floor` may have been discarded; a cursor below it cannot be served incrementally.
    fn floor(&self) -> Result<u64, Self::Error>;
    /// Changes visible to the scope with `seq > after`, in order, at most `limit`.
    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, Self::Error>;
    /// Every live entry visible to the scope (latest value per key; removed keys left out).
    fn snapshot(&self) -> Result<Vec<Change>, Self::Error>;
}

/// Answers a pull from `cursor` with at most `limit` changes, or a reset when the cursor cannot be served.
pub fn pull_page<C: ChangeSource>(source: &C, cursor: u64, limit: u32, now_ms: u64) -> Result<PullResponse, C::Error> {
    let head = source.head()?;
    let floor = source.floor()?;
    let limit = limit.clamp(1, 10_000) as usize;
    if cursor < floor || cursor > head {
        let snapshot = source.snapshot()?;
        return Ok(PullResponse {
            server_time_ms: now_ms,
            page: PullPage::Reset { snapshot, cursor: head },
            more: false,
        });
    }
    let changes = source.changes_after(cursor, limit + 1)?;
    let more = changes.len() > limit;
    let changes: Vec<Change> = changes.into_iter().take(limit).collect();
    // A page that was cut short ends at its last change; a complete one moves the cursor to the head, past changes
    // outside the device's scope.
    let next = if more { changes.last().map_or(head, |c| c.seq) } else { head };
    Ok(PullResponse { server_time_ms: now_ms, page: PullPage::Changes { changes, cursor: next }, more })
}
