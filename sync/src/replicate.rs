//! The device side of a sync cycle, independent of HTTP and of the device's storage.
//!
//! [`run_cycle`] pushes every op the [`Outbox`] has not seen acknowledged, batch by batch, then pulls every stream into
//! a [`PullSink`]. It talks to HQ through a [`Transport`] (HTTP in production, in-memory with injected faults in
//! tests). Its rules:
//!
//! - a batch is acknowledged locally only up to what HQ says it holds (`acked_through`), and only after HQ answered;
//!   a lost answer means the same batch is sent again and HQ skips it as a duplicate;
//! - a gap refusal (HQ lost ops, e.g. restored from a backup) rewinds to HQ's expected sequence number and resends
//!   from the ops the device still retains; if they were pruned, the cycle fails with [`SyncError::Pruned`]; a
//!   device with nothing new to send asks HQ for its cursor (an empty push) and resends the same way when HQ holds
//!   less than it acknowledged;
//! - only ops written before the cycle began are sent: ops saved during the cycle wait for the next one;
//! - a device whose store was restored from a backup ([`Outbox::restored_through`]) first asks HQ for its cursor and
//!   moves the ops written since the restore past it ([`Outbox::resume_after_restore`]), so no op reuses a number
//!   HQ holds for other content;
//! - HQ claiming more ops than the device ever wrote (a store restored by other means, which would reuse sequence
//!   numbers) stops the cycle with [`SyncError::DeviceBehindHq`] rather than lose records as "duplicates";
//! - transient failures (network, timeouts, 5xx, 503 with `Retry-After`) are retried with [`Backoff`] up to
//!   [`RetryPolicy::attempts`] times; refusals (revoked credential, bad request) end the cycle at once;
//! - a pulled page and its cursor are handed to the sink together, which must store them in one transaction;
//! - while a page is applied, the next ones may already be fetched ([`Transport::concurrent`]): one request is in
//!   flight at a time, at most [`READ_AHEAD_PAGES`] pages and about [`READ_AHEAD_CHANGES`] changes wait
//!   ([`read_ahead_pages`]), pages are applied strictly in order (the pages that wait when the sink is free go to it
//!   together, [`PullSink::apply_many`], up to [`MAX_APPLY_CHANGES`] changes), and a read-ahead that failed is sent
//!   again through the retry policy;
//! - a sink with work to do on a page that needs none of its storage (decoding, sealing) can have it done on the
//!   read-ahead thread as each page arrives ([`PullSink::preparer`]), so that work runs beside the apply instead of
//!   inside it.

use std::sync::mpsc;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::envelope::{DeviceId, Op};
use crate::protocol::{PullPage, PullRequest, PullResponse, PushOutcome, PushRequest, PushResponse};

/// Why an exchange with HQ failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// HQ could not be reached or did not answer properly; trying again later may work.
    #[error("{message}")]
    Retryable {
        /// What happened, in plain words.
        message: String,
        /// HQ's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// HQ refused the request; retrying the same request will not help.
    #[error("HQ refused the request ({code}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The stable error code from HQ's error body.
        code: String,
        /// HQ's explanation.
        message: String,
    },
}

impl TransportError {
    /// Whether the error is a refusal with this code.
    pub fn is_code(&self, wanted: &str) -> bool {
        matches!(self, TransportError::Rejected { code, .. } if code == wanted)
    }
}

/// Carries protocol messages to HQ and back.
pub trait Transport {
    /// Sends a push.
    fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError>;
    /// Sends a pull.
    fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError>;
    /// This transport, when it may be used from a second thread: [`run_cycle`] then fetches the next page of a
    /// stream while the sink applies the current one (HQ's half and the device's half of a long pull overlap).
    /// `None` (the default) pulls one page after the other.
    fn concurrent(&self) -> Option<&(dyn Transport + Sync)> {
        None
    }
}

/// A boxed local storage error.
pub type LocalError = Box<dyn std::error::Error + Send + Sync>;

/// The device's outbox as the sync cycle sees it.
pub trait Outbox {
    /// This device.
    fn device(&self) -> DeviceId;
    /// The highest sequence number acknowledged by HQ, as stored locally.
    fn acked(&self) -> Result<u64, LocalError>;
    /// The last sequence number written (0 when none).
    fn last_seq(&self) -> Result<u64, LocalError>;
    /// Up to `limit` retained ops with `seq > after`, in order.
    fn ops_after(&self, after: u64, limit: usize) -> Result<Vec<Op>, LocalError>;
    /// Records that HQ holds every op through `seq` (never moves backwards).
    fn ack(&self, seq: u64) -> Result<(), LocalError>;
    /// The device's wall clock (ms since the Unix epoch).
    fn now_ms(&self) -> u64;
    /// After the store was restored from a backup: the last sequence number the backup held. Ops up to it are the
    /// ones HQ may already hold under the same numbers (with the same content); later ops were written after the
    /// restore and may reuse numbers HQ holds for other content. `None` when the store was not restored (default).
    fn restored_through(&self) -> Result<Option<u64>, LocalError> {
        Ok(None)
    }
    /// Continues after a restore, given HQ's cursor for this device: when HQ holds more than the backup did, the ops
    /// written after the restore move past HQ's cursor and everything up to it counts as acknowledged; either way
    /// the restore mark is cleared. Called once, before the first push, while [`Outbox::restored_through`] is set.
    fn resume_after_restore(&self, hq_cursor: u64) -> Result<(), LocalError> {
        let _ = hq_cursor;
        Ok(())
    }
}

/// Where pulled pages go.
pub trait PullSink {
    /// The stored cursor of a stream (0 when never pulled).
    fn cursor(&self, stream: &str) -> Result<u64, LocalError>;
    /// Applies a page and stores its cursor, in one transaction.
    fn apply(&self, stream: &str, page: &PullPage) -> Result<(), LocalError>;
    /// Applies consecutive pages of a stream (in order, each following the one before) and stores the last one's
    /// cursor. A sink that can should do it in one transaction — one commit for many pages is what makes a long
    /// catch-up fast; the default applies them one by one, which is equally correct.
    fn apply_many(&self, stream: &str, pages: &[PullPage]) -> Result<(), LocalError> {
        pages.iter().try_for_each(|page| self.apply(stream, page))
    }
    /// Work on fetched pages that may run on the read-ahead thread, before the page waits for the sink. `None`
    /// (the default): none. The sink must still apply a page correctly when it was never prepared (the first page
    /// of a stretch is not, nor is any page when the transport is not [`Transport::concurrent`]).
    fn preparer(&self) -> Option<&(dyn PagePreparer + Sync)> {
        None
    }
}

/// See [`PullSink::preparer`].
pub trait PagePreparer {
    /// Called on the read-ahead thread with each page fetched ahead, in order, before it is queued for the sink.
    /// Whatever it keeps is the sink's to match to the page when it is applied (a page prepared may also never be
    /// applied, when the cycle stops first).
    fn prepare(&self, stream: &str, page: &PullPage);
}

/// Pages of a stream fetched ahead of the sink at most (bounds what a long pull holds in memory).
pub const READ_AHEAD_PAGES: usize = 8;
/// Changes fetched ahead of the sink at most, when pages are large: a stream pulled in pages of `limit` changes has
/// [`read_ahead_pages`] pages waiting, at least one. What waits is held twice when the sink prepares it (the page
/// and its prepared form), and a catch-up gains nothing from more than one transaction's worth waiting.
pub const READ_AHEAD_CHANGES: usize = MAX_APPLY_CHANGES;
/// Changes handed to the sink in one [`PullSink::apply_many`] at most, when several fetched pages wait.
pub const MAX_APPLY_CHANGES: usize = 10_000;

/// How many fetched pages may wait for the sink when pages hold up to `limit` changes: [`READ_AHEAD_PAGES`], or
/// fewer for large pages so that about [`READ_AHEAD_CHANGES`] changes wait, never none.
#[must_use]
pub fn read_ahead_pages(limit: u32) -> usize {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
    (READ_AHEAD_CHANGES / limit).clamp(1, READ_AHEAD_PAGES)
}

/// How hard one cycle tries before giving up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request (1 = no retry).
    pub attempts: u32,
    /// First backoff ceiling.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, base: Duration::from_millis(500), cap: Duration::from_secs(30) }
    }
}

/// Options of one cycle.
#[derive(Debug, Clone)]
pub struct CycleOptions {
    /// Ops per push batch.
    pub batch: usize,
    /// Changes per pull page.
    pub pull_limit: u32,
    /// Streams to pull.
    pub streams: Vec<String>,
    /// Changes per pull page of particular streams (others use `pull_limit`).
    pub stream_limits: Vec<(String, u32)>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
}

impl Default for CycleOptions {
    fn default() -> Self {
        Self {
            batch: 2000,
            pull_limit: 100,
            streams: Vec::new(),
            stream_limits: Vec::new(),
            retry: RetryPolicy::default(),
        }
    }
}

/// What a cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Push requests that got an answer.
    pub batches: u32,
    /// Ops HQ applied now.
    pub applied: u64,
    /// Ops HQ already had.
    pub duplicates: u64,
    /// Ops HQ quarantined, with the reasons.
    pub quarantined: Vec<(u64, String)>,
    /// Ops whose stamps HQ clamped (the device clock was ahead).
    pub clamped: u64,
    /// Times HQ asked to resend from an earlier op.
    pub rewinds: u32,
    /// Highest op acknowledged after the cycle.
    pub acked_through: u64,
    /// Ops written but not acknowledged after the cycle.
    pub pending: u64,
    /// Changes pulled.
    pub pulled: u64,
    /// Resets to a snapshot received.
    pub resets: u32,
    /// HQ's clock minus the device's clock, from the last answer (ms).
    pub hq_offset_ms: Option<i64>,
    /// Transient failures that were retried.
    pub retries: u32,
}

/// Why a cycle stopped before finishing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// HQ stayed unreachable (or kept failing) through every retry, or refused a request.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The device's own storage failed.
    #[error("local storage: {0}")]
    Local(LocalError),
    /// HQ needs ops the device no longer retains.
    #[error("HQ needs ops from seq {needed}, but this device only retains ops from seq {oldest}")]
    Pruned {
        /// The first sequence number HQ needs.
        needed: u64,
        /// The oldest retained one.
        oldest: u64,
    },
    /// HQ holds more ops of this device than the device ever wrote.
    #[error(
        "HQ already holds this device's ops up to seq {hq}, but the store only wrote {local}: the store was \
         restored from an older backup; enrol it again as a new device"
    )]
    DeviceBehindHq {
        /// HQ's cursor.
        hq: u64,
        /// The device's last sequence number.
        local: u64,
    },
    /// HQ answered something the protocol does not allow.
    #[error("HQ answered inconsistently: {0}")]
    Protocol(String),
}

fn local(e: LocalError) -> SyncError {
    SyncError::Local(e)
}

struct Retrier<'a> {
    backoff: Backoff,
    attempts: u32,
    sleep: &'a dyn Fn(Duration),
    retries: u32,
}

impl Retrier<'_> {
    fn run<T>(&mut self, mut f: impl FnMut() -> Result<T, TransportError>) -> Result<T, TransportError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match f() {
                Ok(v) => {
                    self.backoff.reset();
                    return Ok(v);
                }
                Err(TransportError::Retryable { retry_after, .. }) if tries < self.attempts => {
                    self.retries += 1;
                    (self.sleep)(self.backoff.next_delay(retry_after));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Runs one push-then-pull cycle. `sleep` waits between retries (a real sleep, or a fake one in tests).
pub fn run_cycle(
    transport: &dyn Transport,
    outbox: &dyn Outbox,
    sink: &dyn PullSink,
    options: &CycleOptions,
    sleep: &dyn Fn(Duration),
) -> Result<CycleReport, SyncError> {
    let device = outbox.device();
    let seed = device.node() ^ outbox.now_ms().rotate_left(17);
    let mut retrier = Retrier {
        backoff: Backoff::new(options.retry.base, options.retry.cap, seed),
        attempts: options.retry.attempts.max(1),
        sleep,
        retries: 0,
    };
    let mut report = CycleReport::default();
    let result = cycle_inner(transport, outbox, sink, options, &mut retrier, &mut report);
    report.retries = retrier.retries;
    result.map(|()| report)
}

/// Checks a pulled page against the cursor it was asked from, counts it, and returns the cursor it ends at.
fn check_page(resp: &PullResponse, cursor: u64, report: &mut CycleReport) -> Result<u64, SyncError> {
    match &resp.page {
        PullPage::Changes { changes, cursor: next } => {
            if *next < cursor {
                return Err(SyncError::Protocol(format!("pull cursor went back from {cursor} to {next}")));
            }
            if resp.more && *next == cursor {
                return Err(SyncError::Protocol(format!("pull page at cursor {cursor} made no progress")));
            }
            report.pulled += changes.len() as u64;
            Ok(*next)
        }
        PullPage::Reset { snapshot, cursor: next } => {
            report.resets += 1;
            report.pulled += snapshot.len() as u64;
            Ok(*next)
        }
    }
}

fn offset(server_ms: u64, local_ms: u64) -> i64 {
    (i128::from(server_ms) - i128::from(local_ms)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn cycle_inner(
    transport: &dyn Transport,
    outbox: &dyn Outbox,
    sink: &dyn PullSink,
    options: &CycleOptions,
    retrier: &mut Retrier<'_>,
    report: &mut CycleReport,
) -> Result<(), SyncError> {
    let device = outbox.device();
    if outbox.restored_through().map_err(local)?.is_some() {
        // Ask HQ for its cursor (a push without ops changes nothing) before sending any op whose number might be
        // taken at HQ by an op written before the restore.
        let req = PushRequest { device, sent_at_ms: outbox.now_ms(), ops: Vec::new() };
        let resp = retrier.run(|| transport.push(&req))?;
        report.hq_offset_ms = Some(offset(resp.server_time_ms, outbox.now_ms()));
        match resp.outcome {
            PushOutcome::Accepted(ack) => outbox.resume_after_restore(ack.acked_through).map_err(local)?,
            PushOutcome::Gap { expected } => {
                return Err(SyncError::Protocol(format!("refused an empty push as a gap, expecting {expected}")));
            }
        }
    }
    let last = outbox.last_seq().map_err(local)?;
    let mut after = outbox.acked().map_err(local)?.min(last);
    let batch = options.batch.max(1);
    if after >= last {
        // Nothing new to send: ask HQ how far it holds this device's ops (an empty push), so an HQ restored from an
        // older backup is refilled from the retained ops now, not only at this device's next save — the other
        // desks of the site are waiting for those records.
        let req = PushRequest { device, sent_at_ms: outbox.now_ms(), ops: Vec::new() };
        let resp = retrier.run(|| transport.push(&req))?;
        report.hq_offset_ms = Some(offset(resp.server_time_ms, outbox.now_ms()));
        if let PushOutcome::Accepted(ack) = resp.outcome {
            if ack.acked_through > last {
                return Err(SyncError::DeviceBehindHq { hq: ack.acked_through, local: last });
            }
            if ack.acked_through < after {
                report.rewinds += 1;
                after = ack.acked_through;
            }
        }
    }
    loop {
        // Only what was written when the cycle began: ops saved meanwhile go in the next cycle (and never make HQ's
        // acknowledgement look like more than this device wrote).
        let ops: Vec<Op> =
            outbox.ops_after(after, batch).map_err(local)?.into_iter().take_while(|o| o.seq <= last).collect();
        if ops.is_empty() && after >= last {
            break;
        }
        if let Some(first) = ops.first()
            && first.seq != after + 1
        {
            return Err(SyncError::Pruned { needed: after + 1, oldest: first.seq });
        }
        if ops.is_empty() {
            return Err(SyncError::Pruned { needed: after + 1, oldest: last + 1 });
        }
        let sent_at_ms = outbox.now_ms();
        let req = PushRequest { device, sent_at_ms, ops };
        let resp = retrier.run(|| transport.push(&req))?;
        report.batches += 1;
        report.hq_offset_ms = Some(offset(resp.server_time_ms, outbox.now_ms()));
        let batch_last = req.ops.last().map_or(after, |o| o.seq);
        match resp.outcome {
            PushOutcome::Accepted(ack) => {
                if ack.acked_through > last {
                    return Err(SyncError::DeviceBehindHq { hq: ack.acked_through, local: last });
                }
                if ack.acked_through < batch_last {
                    return Err(SyncError::Protocol(format!(
                        "accepted a batch through seq {batch_last} but acknowledged only through {}",
                        ack.acked_through
                    )));
                }
                report.applied += u64::from(ack.applied);
                report.duplicates += ack.skipped_duplicates.len() as u64;
                report.clamped += ack.clamped.len() as u64;
                report.quarantined.extend(ack.quarantined);
                outbox.ack(ack.acked_through).map_err(local)?;
                after = ack.acked_through;
            }
            PushOutcome::Gap { expected } => {
                let rewind_to = expected.saturating_sub(1);
                if rewind_to >= after {
                    return Err(SyncError::Protocol(format!(
                        "refused a batch starting at seq {} as a gap, expecting {expected}",
                        after + 1
                    )));
                }
                report.rewinds += 1;
                if report.rewinds > 3 {
                    return Err(SyncError::Protocol("HQ keeps asking to resend from earlier ops".into()));
                }
                after = rewind_to;
            }
        }
    }
    report.acked_through = outbox.acked().map_err(local)?;
    report.pending = last.saturating_sub(report.acked_through);
    for stream in &options.streams {
        let limit = options.stream_limits.iter().find(|(s, _)| s == stream).map_or(options.pull_limit, |(_, l)| *l);
        pull_stream(transport, outbox, sink, stream, limit, retrier, report)?;
    }
    Ok(())
}

/// How a read-ahead pull ended.
enum ReadAhead {
    /// The last page is applied.
    Done,
    /// A read-ahead request failed (or stopped) after the page ending at this cursor was applied.
    Resume(u64),
}

/// Pulls one stream to its end. The first page of each stretch goes through the retry policy; with a transport that
/// may be used from a second thread, the rest of the stretch is read ahead while the sink applies.
fn pull_stream(
    transport: &dyn Transport,
    outbox: &dyn Outbox,
    sink: &dyn PullSink,
    stream: &str,
    limit: u32,
    retrier: &mut Retrier<'_>,
    report: &mut CycleReport,
) -> Result<(), SyncError> {
    let device = outbox.device();
    let request = |cursor: u64| PullRequest { device, stream: stream.to_owned(), cursor, limit };
    let mut cursor = sink.cursor(stream).map_err(local)?;
    loop {
        let req = request(cursor);
        let first = retrier.run(|| transport.pull(&req))?;
        let Some(ahead) = first.more.then(|| transport.concurrent()).flatten() else {
            report.hq_offset_ms = Some(offset(first.server_time_ms, outbox.now_ms()));
            let next = check_page(&first, cursor, report)?;
            sink.apply(stream, &first.page).map_err(local)?;
            if !first.more {
                return Ok(());
            }
            cursor = next;
            continue;
        };
        let from = first.page.cursor();
        let preparer = sink.preparer().map(|p| (p, stream));
        let outcome = std::thread::scope(|s| {
            let (tx, rx) = mpsc::sync_channel(read_ahead_pages(limit));
            s.spawn(move || read_ahead(ahead, &request, preparer, from, &tx));
            apply_fetched(first, &rx, outbox, sink, stream, cursor, report)
        })?;
        match outcome {
            ReadAhead::Done => return Ok(()),
            ReadAhead::Resume(at) => cursor = at,
        }
    }
}

/// Fetches page after page from `cursor` into `tx` until the last page, a failure (sent too), a page that does not
/// move on, or the receiver is gone; each page fetched goes through the sink's preparer first, if it has one.
fn read_ahead(
    transport: &(dyn Transport + Sync),
    request: &(dyn Fn(u64) -> PullRequest + Sync),
    preparer: Option<(&(dyn PagePreparer + Sync), &str)>,
    mut cursor: u64,
    tx: &mpsc::SyncSender<Result<PullResponse, TransportError>>,
) {
    loop {
        let got = transport.pull(&request(cursor));
        if let (Ok(resp), Some((p, stream))) = (&got, preparer) {
            p.prepare(stream, &resp.page);
        }
        let next = got.as_ref().ok().filter(|r| r.more).map(|r| r.page.cursor()).filter(|&n| n > cursor);
        if tx.send(got).is_err() {
            return;
        }
        match next {
            Some(n) => cursor = n,
            None => return,
        }
    }
}

/// Applies `first` and the pages read ahead into `rx`, in order, handing the sink every page that already waits
/// (up to [`MAX_APPLY_CHANGES`] changes) in one call.
fn apply_fetched(
    first: PullResponse,
    rx: &mpsc::Receiver<Result<PullResponse, TransportError>>,
    outbox: &dyn Outbox,
    sink: &dyn PullSink,
    stream: &str,
    mut cursor: u64,
    report: &mut CycleReport,
) -> Result<ReadAhead, SyncError> {
    let mut next_page = Some(first);
    let mut batch = Vec::new();
    loop {
        let mut changes = 0;
        let mut more = true;
        let mut stopped = false;
        while let Some(resp) = next_page.take() {
            report.hq_offset_ms = Some(offset(resp.server_time_ms, outbox.now_ms()));
            cursor = check_page(&resp, cursor, report)?;
            more = resp.more;
            changes += resp.page.changes().len();
            batch.push(resp.page);
            if !more || changes >= MAX_APPLY_CHANGES {
                break;
            }
            match rx.try_recv() {
                Ok(Ok(resp)) => next_page = Some(resp),
                Ok(Err(_)) | Err(mpsc::TryRecvError::Disconnected) => stopped = true,
                Err(mpsc::TryRecvError::Empty) => {}
            }
        }
        sink.apply_many(stream, &batch).map_err(local)?;
        batch.clear();
        if !more {
            return Ok(ReadAhead::Done);
        }
        if stopped {
            return Ok(ReadAhead::Resume(cursor));
        }
        match rx.recv() {
            Ok(Ok(resp)) => next_page = Some(resp),
            Ok(Err(_)) | Err(_) => return Ok(ReadAhead::Resume(cursor)),
        }
    }
}
