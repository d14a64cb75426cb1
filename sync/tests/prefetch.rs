//! A long pull with a transport that may be used from a second thread: the next pages are fetched while the current
//! one is applied, pages that wait reach the sink together (within the bound), pages are still applied in order and
//! each exactly once, and a failed read-ahead is sent again.

#![allow(clippy::unwrap_used)]

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use guidedesk_sync::DeviceId;
use guidedesk_sync::envelope::Op;
use guidedesk_sync::memory::MemoryLog;
use guidedesk_sync::protocol::{PullPage, PullRequest, PullResponse, PushAck, PushOutcome, PushRequest, PushResponse};
use guidedesk_sync::replicate::{
    CycleOptions, LocalError, MAX_APPLY_CHANGES, Outbox, PullSink, RetryPolicy, Transport, TransportError, run_cycle,
};
use guidedesk_sync::server::pull_page;

const STREAM: &str = "records";

/// Serves a log; remembers the cursors asked for, and fails the request for one cursor once.
struct Hq {
    log: MemoryLog,
    asked: Mutex<Vec<u64>>,
    fail_once_at: Mutex<Option<u64>>,
    wake: Condvar,
    concurrent: bool,
}

impl Transport for Hq {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError> {
        // The desk has nothing to send: it only asks how far HQ holds its ops (nothing).
        assert!(req.ops.is_empty());
        Ok(PushResponse { server_time_ms: 0, outcome: PushOutcome::Accepted(PushAck::default()) })
    }

    fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError> {
        let mut asked = self.asked.lock().unwrap();
        asked.push(req.cursor);
        self.wake.notify_all();
        let mut fail = self.fail_once_at.lock().unwrap();
        if *fail == Some(req.cursor) {
            *fail = None;
            return Err(TransportError::Retryable { message: "connection lost".into(), retry_after: None });
        }
        Ok(pull_page(&self.log, req.cursor, req.limit, 0).unwrap())
    }

    fn concurrent(&self) -> Option<&(dyn Transport + Sync)> {
        self.concurrent.then_some(self as &(dyn Transport + Sync))
    }
}

/// Applies pages (checking they follow each other) and, while applying a page that is not the last, waits until
/// HQ was asked for the next one — which only happens when the next page is fetched during the apply.
struct Desk<'a> {
    hq: &'a Hq,
    cursor: Mutex<u64>,
    applied: Mutex<Vec<u64>>,
    overlapped: Mutex<u32>,
    /// How long an apply waits for the next page's request.
    wait: Duration,
}

/// A device with nothing to send: the cycles here only pull.
struct Quiet;

impl Outbox for Quiet {
    fn device(&self) -> DeviceId {
        DeviceId(7)
    }
    fn acked(&self) -> Result<u64, LocalError> {
        Ok(0)
    }
    fn last_seq(&self) -> Result<u64, LocalError> {
        Ok(0)
    }
    fn ops_after(&self, _after: u64, _limit: usize) -> Result<Vec<Op>, LocalError> {
        Ok(Vec::new())
    }
    fn ack(&self, _seq: u64) -> Result<(), LocalError> {
        Ok(())
    }
    fn now_ms(&self) -> u64 {
        0
    }
}

impl PullSink for Desk<'_> {
    fn cursor(&self, _stream: &str) -> Result<u64, LocalError> {
        Ok(*self.cursor.lock().unwrap())
    }

    fn apply(&self, _stream: &str, page: &PullPage) -> Result<(), LocalError> {
        let PullPage::Changes { changes, cursor } = page else { panic!("no reset expected") };
        let mut held = self.cursor.lock().unwrap();
        assert!(changes.first().is_none_or(|c| c.seq == *held + 1), "a page out of order after {held}");
        if *cursor < self.hq.log.head {
            let asked = self.hq.asked.lock().unwrap();
            let (asked, timeout) = self.hq.wake.wait_timeout_while(asked, self.wait, |a| !a.contains(cursor)).unwrap();
            if !timeout.timed_out() {
                *self.overlapped.lock().unwrap() += 1;
            }
            drop(asked);
        }
        self.applied.lock().unwrap().extend(changes.iter().map(|c| c.seq));
        *held = *cursor;
        Ok(())
    }
}

fn hq(changes: u64, concurrent: bool, fail_once_at: Option<u64>) -> Hq {
    let mut log = MemoryLog::default();
    for i in 0..changes {
        log.put(&format!("k{i}"), Some(vec![1]));
    }
    Hq { log, asked: Mutex::default(), fail_once_at: Mutex::new(fail_once_at), wake: Condvar::new(), concurrent }
}

/// A cycle that pulls the one stream in pages of `limit`, retrying at once.
fn options(limit: u32) -> CycleOptions {
    CycleOptions {
        streams: vec![STREAM.into()],
        pull_limit: limit,
        retry: RetryPolicy { attempts: 3, base: Duration::ZERO, cap: Duration::ZERO },
        ..CycleOptions::default()
    }
}

fn pull_all(hq: &Hq, wait: Duration) -> (Desk<'_>, guidedesk_sync::replicate::CycleReport) {
    let desk = Desk { hq, cursor: Mutex::new(0), applied: Mutex::default(), overlapped: Mutex::new(0), wait };
    let report = run_cycle(hq, &Quiet, &desk, &options(100), &|_| {}).expect("the cycle completes");
    (desk, report)
}

#[test]
fn the_next_page_is_fetched_while_this_one_is_applied() {
    let hq = hq(1_050, true, None);
    let (desk, report) = pull_all(&hq, Duration::from_secs(10));
    assert_eq!(*desk.applied.lock().unwrap(), (1..=1_050).collect::<Vec<u64>>(), "every change once, in order");
    assert_eq!(report.pulled, 1_050);
    // 11 pages: each of the first 10 was applied while the next was being fetched.
    assert_eq!(*desk.overlapped.lock().unwrap(), 10);
    assert_eq!(*hq.asked.lock().unwrap(), (0..=1_000).step_by(100).collect::<Vec<u64>>(), "each page asked once");
}

#[test]
fn a_failed_prefetch_is_sent_again_and_nothing_is_skipped() {
    let hq = hq(450, true, Some(200));
    let (desk, report) = pull_all(&hq, Duration::from_secs(10));
    assert_eq!(*desk.applied.lock().unwrap(), (1..=450).collect::<Vec<u64>>());
    assert_eq!(report.retries, 0, "the prefetch failed outside the retry policy; its resend succeeded");
    assert_eq!(*hq.asked.lock().unwrap(), vec![0, 100, 200, 200, 300, 400]);
}

#[test]
fn a_transport_for_one_thread_pulls_page_after_page() {
    let hq = hq(450, false, None);
    let (desk, _) = pull_all(&hq, Duration::from_millis(50));
    assert_eq!(*desk.applied.lock().unwrap(), (1..=450).collect::<Vec<u64>>());
    assert_eq!(*desk.overlapped.lock().unwrap(), 0, "no request while a page is applied");
}

/// A sink slow to commit: it takes pages only in batches and remembers how many pages each batch held.
struct SlowDesk {
    cursor: Mutex<u64>,
    applied: Mutex<Vec<u64>>,
    batches: Mutex<Vec<usize>>,
}

impl PullSink for SlowDesk {
    fn cursor(&self, _stream: &str) -> Result<u64, LocalError> {
        Ok(*self.cursor.lock().unwrap())
    }

    fn apply(&self, _stream: &str, _page: &PullPage) -> Result<(), LocalError> {
        panic!("a read-ahead pull hands pages over with apply_many");
    }

    fn apply_many(&self, _stream: &str, pages: &[PullPage]) -> Result<(), LocalError> {
        std::thread::sleep(Duration::from_millis(30));
        let mut held = self.cursor.lock().unwrap();
        let mut changes = 0;
        for page in pages {
            let PullPage::Changes { changes: page_changes, cursor } = page else { panic!("no reset expected") };
            assert!(page_changes.first().is_none_or(|c| c.seq == *held + 1), "a page out of order after {held}");
            self.applied.lock().unwrap().extend(page_changes.iter().map(|c| c.seq));
            changes += page_changes.len();
            *held = *cursor;
        }
        assert!(changes <= MAX_APPLY_CHANGES, "a batch of {changes} changes");
        self.batches.lock().unwrap().push(pages.len());
        Ok(())
    }
}

#[test]
fn pages_fetched_during_a_slow_apply_reach_the_sink_together() {
    let hq = hq(25_000, true, None);
    let desk = SlowDesk { cursor: Mutex::new(0), applied: Mutex::default(), batches: Mutex::default() };
    let report = run_cycle(&hq, &Quiet, &desk, &options(1_000), &|_| {}).expect("the cycle completes");
    assert_eq!(report.pulled, 25_000);
    assert_eq!(*desk.applied.lock().unwrap(), (1..=25_000).collect::<Vec<u64>>(), "every change once, in order");
    let batches = desk.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), 25, "every page in some batch: {batches:?}");
    assert!(batches.iter().any(|&b| b > 1), "pages that waited went together: {batches:?}");
    assert_eq!(*hq.asked.lock().unwrap(), (0..25_000).step_by(1_000).collect::<Vec<u64>>(), "each page asked once");
}

#[test]
fn large_pages_wait_fewer_at_a_time() {
    use guidedesk_sync::replicate::{READ_AHEAD_CHANGES, READ_AHEAD_PAGES, read_ahead_pages};
    assert_eq!(read_ahead_pages(20), READ_AHEAD_PAGES, "small pages: the page bound");
    assert_eq!(read_ahead_pages(1_000), READ_AHEAD_PAGES.min(READ_AHEAD_CHANGES / 1_000));
    assert_eq!(read_ahead_pages(5_000), READ_AHEAD_CHANGES / 5_000);
    assert_eq!(read_ahead_pages(u32::MAX), 1, "never none");
    assert_eq!(read_ahead_pages(0), READ_AHEAD_PAGES, "a zero limit is one change a page");
}

/// A slow sink that records, as each batch arrives, how far ahead HQ was already asked.
struct Watcher<'a> {
    hq: &'a Hq,
    /// Changes per page.
    limit: u64,
    /// Changes the read-ahead may hold.
    bound: u64,
    cursor: Mutex<u64>,
    ahead: Mutex<Vec<u64>>,
}

impl PullSink for Watcher<'_> {
    fn cursor(&self, _stream: &str) -> Result<u64, LocalError> {
        Ok(*self.cursor.lock().unwrap())
    }

    fn apply(&self, _stream: &str, page: &PullPage) -> Result<(), LocalError> {
        self.apply_many(STREAM, std::slice::from_ref(page))
    }

    fn apply_many(&self, _stream: &str, pages: &[PullPage]) -> Result<(), LocalError> {
        // Until the read-ahead has asked for as much as it may (or for the last page), then a while longer: time
        // enough to overrun its room if it could.
        let last = pages.last().unwrap().cursor();
        let room = last + self.bound;
        let final_page = self.hq.log.head - self.limit;
        let asked = self.hq.asked.lock().unwrap();
        let reached = |a: &mut Vec<u64>| a.iter().copied().max().unwrap() < room.min(final_page);
        drop(self.hq.wake.wait_timeout_while(asked, Duration::from_secs(10), reached).unwrap());
        std::thread::sleep(Duration::from_millis(30));
        let asked = self.hq.asked.lock().unwrap().iter().copied().max().unwrap();
        self.ahead.lock().unwrap().push(asked.saturating_sub(last));
        *self.cursor.lock().unwrap() = last;
        Ok(())
    }
}

#[test]
fn the_read_ahead_of_large_pages_holds_about_one_transaction() {
    use guidedesk_sync::replicate::read_ahead_pages;
    let limit = 5_000u32;
    let hq = hq(60_000, true, None);
    let bound = read_ahead_pages(limit) as u64 * u64::from(limit);
    let desk = Watcher { hq: &hq, limit: limit.into(), bound, cursor: Mutex::new(0), ahead: Mutex::default() };
    let report = run_cycle(&hq, &Quiet, &desk, &options(limit), &|_| {}).expect("the cycle completes");
    assert_eq!(report.pulled, 60_000);
    let ahead = desk.ahead.lock().unwrap().clone();
    // Pages waiting, and the one fetched that waits for room: none further.
    assert!(ahead.iter().all(|&a| a <= bound), "asked at most {bound} changes ahead: {ahead:?}");
    assert!(ahead.contains(&bound), "the read-ahead filled its room: {ahead:?}");
}

/// Remembers the pages its preparer saw (first change's sequence, on which thread) and the pages applied.
struct Preparing {
    cursor: Mutex<u64>,
    prepared: Mutex<Vec<(u64, std::thread::ThreadId)>>,
    applied: Mutex<Vec<u64>>,
    unprepared: Mutex<Vec<u64>>,
    preparer: Prep,
}

struct Prep(Mutex<Vec<(u64, std::thread::ThreadId)>>);

impl guidedesk_sync::replicate::PagePreparer for Prep {
    fn prepare(&self, stream: &str, page: &PullPage) {
        assert_eq!(stream, STREAM);
        let first = page.changes().first().map_or(0, |c| c.seq);
        self.0.lock().unwrap().push((first, std::thread::current().id()));
    }
}

impl PullSink for Preparing {
    fn cursor(&self, _stream: &str) -> Result<u64, LocalError> {
        Ok(*self.cursor.lock().unwrap())
    }

    fn apply(&self, _stream: &str, page: &PullPage) -> Result<(), LocalError> {
        std::thread::sleep(Duration::from_millis(5));
        let first = page.changes().first().map_or(0, |c| c.seq);
        let mut prepared = self.preparer.0.lock().unwrap();
        match prepared.iter().position(|(f, _)| *f == first) {
            Some(i) => {
                let (_, thread) = prepared.remove(i);
                assert_ne!(thread, std::thread::current().id(), "prepared beside the apply, not in it");
                self.prepared.lock().unwrap().push((first, thread));
            }
            None => self.unprepared.lock().unwrap().push(first),
        }
        self.applied.lock().unwrap().push(first);
        *self.cursor.lock().unwrap() = page.cursor();
        Ok(())
    }

    fn preparer(&self) -> Option<&(dyn guidedesk_sync::replicate::PagePreparer + Sync)> {
        Some(&self.preparer)
    }
}

#[test]
fn pages_read_ahead_are_prepared_beside_the_apply_in_order() {
    // The read-ahead for the page from 200 fails once: it starts again from there.
    let hq = hq(650, true, Some(200));
    let desk = Preparing {
        cursor: Mutex::new(0),
        prepared: Mutex::default(),
        applied: Mutex::default(),
        unprepared: Mutex::default(),
        preparer: Prep(Mutex::default()),
    };
    let report = run_cycle(&hq, &Quiet, &desk, &options(100), &|_| {}).expect("the cycle completes");
    assert_eq!(report.pulled, 650);
    let starts: Vec<u64> = (0..650).step_by(100).map(|c| c + 1).collect();
    assert_eq!(*desk.applied.lock().unwrap(), starts, "every page once, in order");
    // The first page of each stretch is fetched by the cycle itself, the rest ahead of the apply.
    assert_eq!(
        *desk.unprepared.lock().unwrap(),
        vec![1, 201],
        "the first page, and the one sent again after the failure"
    );
    let prepared: Vec<u64> = desk.prepared.lock().unwrap().iter().map(|(f, _)| *f).collect();
    assert_eq!(prepared, vec![101, 301, 401, 501, 601], "prepared once each, in order");
    assert!(desk.preparer.0.lock().unwrap().is_empty(), "nothing prepared that was not applied");
}
