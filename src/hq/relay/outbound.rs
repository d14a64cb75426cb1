//! The hub's side of the relay: enrolment at the group HQ, one relay cycle (ops up, reference data down), and the
//! loop that runs cycles while the hub serves.
//!
//! A cycle first asks the group HQ for the hub's cursor (a batch with no entries), so a group HQ restored from an
//! older backup gets the missing part again from the retained log; then sends the log after the cursor in batches,
//! two on their way at once, recording each acknowledgement ([`send_log`]); then pulls the group's reference data.
//! A cycle that fails part-way leaves the log as it was: what was acknowledged stays acknowledged, the rest goes next
//! time.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{NaiveTime, Timelike};
use guidedesk_sync::DeviceId;
use guidedesk_sync::client::{ClientConfig, HttpTransport};
use guidedesk_sync::protocol::{PullPage, PullRequest, PushAck, PushOutcome, RelayRequest};
use guidedesk_sync::replicate::{Transport, TransportError};
use serde::{Deserialize, Serialize};

use crate::hq::rows::{HqError, REFERENCE_STREAM};
use crate::hq::store::{HqStore, RelayState};
use crate::model::ReferenceData;

/// Entries per relay batch.
pub const RELAY_BATCH: usize = 10_000;
/// Relay batches on their way to the group HQ at once (see [`run_cycle`]).
pub const IN_FLIGHT: usize = 2;
/// How long acknowledged entries are kept for a group HQ restored from an older backup: 30 days.
pub const DEFAULT_RETAIN_MS: u64 = 30 * 24 * 3_600_000;

/// Where the hub relays to, saved in its store at enrolment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// The group HQ's base URL.
    pub url: String,
    /// The hub's device id at the group HQ.
    pub hub: u128,
    /// The hub's credential there.
    pub token: String,
    /// The hub's site there.
    pub site: String,
    /// A CA bundle (PEM) to trust for the group HQ instead of the system's roots.
    pub ca_pem: Option<String>,
    /// Plain HTTP to a non-loopback group HQ (only behind a TLS-terminating proxy on the same network).
    #[serde(default)]
    pub allow_plain_http: bool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("url", &self.url).field("site", &self.site).finish_non_exhaustive()
    }
}

impl Upstream {
    /// The hub's upstream, when it is enrolled at a group HQ.
    pub fn of(store: &HqStore) -> Result<Option<Upstream>, HqError> {
        store
            .upstream_json()?
            .map(|b| serde_json::from_slice(&b).map_err(|e| HqError::Refused(format!("stored upstream: {e}"))))
            .transpose()
    }

    fn transport(&self) -> Result<HttpTransport, RelayFailure> {
        let mut cfg = ClientConfig::new(&self.url);
        cfg.token = Some(self.token.clone());
        cfg.ca_pem = self.ca_pem.as_ref().map(|p| p.as_bytes().to_vec());
        cfg.allow_plain_http = self.allow_plain_http;
        cfg.timeout = Duration::from_mins(2);
        HttpTransport::new(&cfg).map_err(|e| RelayFailure::Setup(e.to_string()))
    }
}

/// Why a relay cycle stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayFailure {
    /// The store is not enrolled at a group HQ.
    #[error("this HQ is not a hub: enrol it first with `guidedesk-hq enroll --hq URL --code CODE`")]
    NotEnrolled,
    /// The client could not be set up (bad URL, bad CA file).
    #[error("cannot reach the group HQ: {0}")]
    Setup(String),
    /// The group HQ could not be reached, or refused.
    #[error("group HQ: {0}")]
    Transport(#[from] TransportError),
    /// The hub's store failed.
    #[error(transparent)]
    Store(#[from] HqError),
    /// The group HQ needs entries the hub no longer retains, or answered inconsistently.
    #[error("{0}")]
    Protocol(String),
}

/// What one relay cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    /// Relay batches answered.
    pub batches: u32,
    /// Ops the group HQ applied now.
    pub applied: u64,
    /// Ops it held already.
    pub duplicates: u64,
    /// Ops it quarantined.
    pub quarantined: u64,
    /// Times it asked to resend from earlier than it had acknowledged (it lost entries: restored from a backup).
    pub rewinds: u32,
    /// Batches sent again because they reached the group HQ before the batch ahead of them.
    pub resent: u32,
    /// Reference-data changes applied at the hub.
    pub reference_changes: u64,
    /// Ops still not acknowledged after the cycle.
    pub pending: u64,
}

/// One cycle at a time per process (the serve loop and an admin request may both ask).
static CYCLE: Mutex<()> = Mutex::new(());

/// Runs one relay cycle: every logged op up, then the group's reference data down.
pub fn run_cycle(store: &HqStore, now_ms: u64, retain_ms: u64, keep: usize) -> Result<RelayReport, RelayFailure> {
    run_cycle_in_batches(store, now_ms, retain_ms, keep, RELAY_BATCH)
}

/// [`run_cycle`] with relay batches of at most `batch` entries.
pub fn run_cycle_in_batches(
    store: &HqStore,
    now_ms: u64,
    retain_ms: u64,
    keep: usize,
    batch: usize,
) -> Result<RelayReport, RelayFailure> {
    let _one = CYCLE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let up = Upstream::of(store)?.ok_or(RelayFailure::NotEnrolled)?;
    let t = up.transport()?;
    let hub = DeviceId(up.hub);
    let keep_after = now_ms.saturating_sub(retain_ms);
    let mut report = RelayReport::default();
    let ask = RelayRequest { hub, sent_at_ms: now_ms, entries: Vec::new() };
    let cursor = match t.relay(&ask)?.outcome {
        PushOutcome::Accepted(a) => a.acked_through,
        PushOutcome::Gap { expected } => {
            return Err(RelayFailure::Protocol(format!(
                "the group HQ answered a cursor query with a gap at {expected}"
            )));
        }
    };
    let state = store.relay_state()?;
    if cursor > state.head {
        return Err(RelayFailure::Protocol(format!(
            "the group HQ holds this hub's relay up to {cursor}, but the hub only logged {}: the hub's store was \
             restored from an older backup; enrol it again as a new hub",
            state.head
        )));
    }
    if cursor != state.acked {
        store.relay_acked(cursor, keep_after)?;
    }
    let log = Log { store, hub, head: state.head, keep_after, batch: batch.max(1) };
    send_log(&log, &t, cursor, &mut report)?;
    report.reference_changes = pull_reference(store, &t, hub, keep)?;
    report.pending = store.relay_state()?.pending();
    if report.pending == 0 {
        store.relay_succeeded(crate::hq::server::now_ms())?;
    }
    Ok(report)
}

/// The hub's relay log as a cycle sends it.
#[derive(Clone, Copy)]
struct Log<'a> {
    store: &'a HqStore,
    hub: DeviceId,
    /// The last relay seq logged when the cycle started.
    head: u64,
    /// Acknowledged entries logged before this time are dropped.
    keep_after: u64,
    /// Entries per batch.
    batch: usize,
}

/// A relay request on its way: the batch's last relay seq, and what the group HQ had acknowledged when it was sent.
struct OnTheWay<'s> {
    answer: std::thread::ScopedJoinHandle<'s, Result<guidedesk_sync::protocol::PushResponse, TransportError>>,
    last: u64,
    acked_at_send: u64,
}

/// Sends the log after `cursor` (what the group HQ holds) through `head`, recording each acknowledgement.
///
/// [`IN_FLIGHT`] batches are on their way at once: the next batch is read, encoded and sent while the group HQ applies
/// the one before (it takes a hub's batches one at a time, under the hub's row lock). A batch that reaches it before
/// the one ahead of it is answered with a gap; the hub then waits for the rest and sends again from what the group HQ
/// acknowledged. A gap below what it had acknowledged when the batch was sent means the group HQ lost entries (it was
/// restored from an older backup): those are sent again, and more than three such rewinds in a cycle stop it.
fn send_log(log: &Log<'_>, t: &HttpTransport, cursor: u64, report: &mut RelayReport) -> Result<(), RelayFailure> {
    let Log { store, hub, head, batch: batch_size, .. } = *log;
    std::thread::scope(|s| {
        let mut after = cursor;
        let mut sent = cursor;
        let mut on_the_way: std::collections::VecDeque<OnTheWay<'_>> = std::collections::VecDeque::new();
        loop {
            while on_the_way.len() < IN_FLIGHT && sent < head {
                let entries = store.relay_after(sent, batch_size)?;
                match entries.first() {
                    Some(e) if e.seq == sent + 1 => {}
                    first => {
                        return Err(RelayFailure::Protocol(format!(
                            "the group HQ needs relay entries from {}, but the hub retains them only from {}",
                            sent + 1,
                            first.map_or(head + 1, |e| e.seq)
                        )));
                    }
                }
                let last = entries.last().map_or(sent, |e| e.seq);
                let req = RelayRequest { hub, sent_at_ms: crate::hq::server::now_ms(), entries };
                let answer = s.spawn(move || t.relay(&req));
                on_the_way.push_back(OnTheWay { answer, last, acked_at_send: after });
                sent = last;
            }
            let Some(batch) = on_the_way.pop_front() else { return Ok(()) };
            let answer = batch
                .answer
                .join()
                .map_err(|_| RelayFailure::Protocol("a relay request failed unexpectedly".into()))??;
            match answer.outcome {
                PushOutcome::Accepted(ack) => after = record_ack(log, batch.last, &ack, report)?,
                PushOutcome::Gap { expected } => {
                    // The batches behind this one cannot have been applied without it: their answers are gaps too.
                    for rest in on_the_way.drain(..) {
                        rest.answer.join().ok();
                    }
                    if expected > after + 1 {
                        return Err(RelayFailure::Protocol(format!(
                            "the group HQ keeps asking for relay entry {expected}"
                        )));
                    }
                    if expected > batch.acked_at_send {
                        report.resent += 1;
                    } else {
                        report.rewinds += 1;
                        if report.rewinds > 3 {
                            return Err(RelayFailure::Protocol(format!(
                                "the group HQ keeps asking for relay entry {expected}"
                            )));
                        }
                        after = expected.saturating_sub(1);
                    }
                    sent = after;
                }
            }
        }
    })
}

/// Records the group HQ's acknowledgement of a batch through relay seq `last`; what it now holds.
fn record_ack(log: &Log<'_>, last: u64, ack: &PushAck, report: &mut RelayReport) -> Result<u64, RelayFailure> {
    if ack.acked_through < last || ack.acked_through > log.head {
        return Err(RelayFailure::Protocol(format!(
            "the group HQ acknowledged {} for a batch through {last}",
            ack.acked_through
        )));
    }
    report.batches += 1;
    report.applied += u64::from(ack.applied);
    report.duplicates += ack.skipped_duplicates.len() as u64;
    report.quarantined += ack.quarantined.len() as u64;
    log.store.relay_acked(ack.acked_through, log.keep_after)?;
    Ok(ack.acked_through)
}

/// Pulls the group's reference data after the hub's cursor and publishes the latest for every site of the hub.
fn pull_reference(store: &HqStore, t: &HttpTransport, hub: DeviceId, keep: usize) -> Result<u64, RelayFailure> {
    let mut cursor = store.relay_state()?.ref_cursor;
    let mut applied = 0;
    loop {
        let req = PullRequest { device: hub, stream: REFERENCE_STREAM.into(), cursor, limit: 100 };
        let resp = t.pull(&req)?;
        let latest = resp.page.changes().iter().rev().find_map(|c| c.value.clone());
        if let Some(bytes) = latest {
            let data: ReferenceData = serde_json::from_slice(&bytes)
                .map_err(|e| RelayFailure::Protocol(format!("the group HQ's reference data cannot be read: {e}")))?;
            store.import_reference(&data, None, keep)?;
            applied += 1;
        }
        let next = resp.page.cursor();
        store.set_relay_ref_cursor(next)?;
        if !resp.more || next == cursor || matches!(resp.page, PullPage::Reset { .. }) {
            return Ok(applied);
        }
        cursor = next;
    }
}

/// Enrols the hub at the group HQ with a one-time code from `enroll-code --site SITE --hub`, and makes the store
/// log every op it applies from now on. The store must not be in use (stop the hub's server first).
pub fn enroll(
    store: &mut HqStore,
    url: &str,
    code: &str,
    ca_pem: Option<String>,
    allow_plain_http: bool,
) -> Result<Upstream, RelayFailure> {
    let enrolled = Upstream::of(store)?;
    if let Some(up) = &enrolled
        && up.url.trim_end_matches('/') != url.trim_end_matches('/')
    {
        return Err(RelayFailure::Protocol(format!(
            "this hub is enrolled at {} already; it relays to one group HQ",
            up.url
        )));
    }
    // Refuse before the code is spent when the store holds ops it could not forward.
    store.check_relay_possible()?;
    let hub = enrolled.map_or_else(|| uuid::Uuid::now_v7().as_u128(), |u| u.hub);
    let mut cfg = ClientConfig::new(url);
    cfg.ca_pem = ca_pem.as_ref().map(|p| p.as_bytes().to_vec());
    cfg.allow_plain_http = allow_plain_http;
    let t = HttpTransport::new(&cfg).map_err(|e| RelayFailure::Setup(e.to_string()))?;
    let e = t.enroll(code, &uuid::Uuid::from_u128(hub).to_string())?;
    if !super::is_hub_desk(&e.desk) {
        return Err(RelayFailure::Protocol(format!(
            "that code enrolled desk {} at site {}, not a hub: ask the group HQ for `enroll-code --site {} --hub`",
            e.desk, e.site, e.site
        )));
    }
    let up = Upstream {
        url: url.trim_end_matches('/').to_string(),
        hub,
        token: e.token,
        site: e.site,
        ca_pem,
        allow_plain_http,
    };
    let json = serde_json::to_vec(&up).map_err(|e| RelayFailure::Protocol(e.to_string()))?;
    store.enable_relay(&json)?;
    Ok(up)
}

/// When the serve loop may relay: always, or only inside a daily window (local time; it may span midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayWindow {
    /// Start (inclusive).
    pub from: NaiveTime,
    /// End (exclusive).
    pub to: NaiveTime,
}

impl std::str::FromStr for RelayWindow {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (start, end) = text.split_once('-').ok_or_else(|| format!("{text:?} is not HH:MM-HH:MM"))?;
        let time = |part: &str| {
            NaiveTime::parse_from_str(part.trim(), "%H:%M")
                .map_err(|_| format!("{part:?} is not a time of day (HH:MM)"))
        };
        let window = RelayWindow { from: time(start)?, to: time(end)? };
        if window.from == window.to {
            return Err(format!("{text:?} is an empty window"));
        }
        Ok(window)
    }
}

impl RelayWindow {
    /// Whether `at` (local time of day) is inside the window.
    pub fn contains(&self, at: NaiveTime) -> bool {
        let at = at.with_nanosecond(0).unwrap_or(at);
        if self.from < self.to { self.from <= at && at < self.to } else { at >= self.from || at < self.to }
    }
}

/// How the serve loop relays.
#[derive(Debug, Clone)]
pub struct RelayLoop {
    /// Seconds between cycles while the group HQ answers.
    pub interval: Duration,
    /// Only inside this window, when set.
    pub window: Option<RelayWindow>,
    /// How long acknowledged entries are kept (ms).
    pub retain_ms: u64,
    /// Reference-data changes kept in the hub's change log.
    pub keep: usize,
}

/// Runs relay cycles until `stop` says so: every `interval` inside the window, backing off (up to 10 minutes)
/// while the group HQ cannot be reached. Errors are logged, never fatal: the hub goes on serving its desks.
pub fn serve_loop(store: &HqStore, opts: &RelayLoop, stop: &dyn Fn() -> bool) {
    let mut backoff = guidedesk_sync::backoff::Backoff::new(opts.interval, Duration::from_mins(10), 0x5eed);
    let mut wait = Duration::ZERO;
    loop {
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if stop() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200).min(deadline - std::time::Instant::now()));
        }
        if stop() {
            return;
        }
        if opts.window.is_some_and(|w| !w.contains(chrono::Local::now().time())) {
            wait = Duration::from_secs(30);
            continue;
        }
        match run_cycle(store, crate::hq::server::now_ms(), opts.retain_ms, opts.keep) {
            Ok(r) => {
                backoff.reset();
                if r.applied + r.duplicates + r.reference_changes > 0 {
                    eprintln!(
                        "guidedesk-hq: relayed {} ops ({} already there), {} reference change(s), {} pending",
                        r.applied, r.duplicates, r.reference_changes, r.pending
                    );
                }
                wait = opts.interval;
            }
            Err(e) => {
                wait = backoff.next_delay(None).max(Duration::from_secs(1));
                eprintln!("guidedesk-hq: relay to the group HQ failed, next try in {} s: {e}", wait.as_secs());
            }
        }
    }
}

/// The `upstream` object of a hub's stats: pending ops, last success, URL.
pub fn stats_json(store: &HqStore) -> Result<Option<serde_json::Value>, HqError> {
    let Some(up) = Upstream::of(store)? else { return Ok(None) };
    let st: RelayState = store.relay_state()?;
    let last = (st.last_ok_ms > 0)
        .then(|| crate::model::Moment(i64::try_from(st.last_ok_ms).unwrap_or(i64::MAX)).to_rfc3339());
    Ok(Some(serde_json::json!({
        "pending": st.pending(),
        "last_success": last,
        "url": up.url,
        "site": up.site,
        "hub": uuid::Uuid::from_u128(up.hub).to_string(),
    })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_window_may_span_midnight() {
        let w: RelayWindow = "22:00-06:00".parse().unwrap();
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(w.contains(at(23, 0)) && w.contains(at(0, 0)) && w.contains(at(5, 59)));
        assert!(!w.contains(at(6, 0)) && !w.contains(at(12, 0)) && !w.contains(at(21, 59)));
        let day: RelayWindow = "08:00-18:30".parse().unwrap();
        assert!(day.contains(at(8, 0)) && !day.contains(at(18, 30)));
        assert!("8-9".parse::<RelayWindow>().is_err());
        assert!("10:00-10:00".parse::<RelayWindow>().is_err());
        assert!("25:00-01:00".parse::<RelayWindow>().unwrap_err().contains("25:00"));
    }
}
