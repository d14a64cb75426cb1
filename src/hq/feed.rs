//! The site record feed: every record HQ holds, except audit entries, relayed to every device of the record's site
//! and to no other (`records` stream of `POST /v1/pull`).
//!
//! Both stores keep, per record, its position in a commit-ordered feed: each push that merges into a record moves
//! it to the end (a new feed sequence number, with the highest op stamp merged into it and, when the merged record
//! is exactly what the pushing device sent, that device as the *echo*: it already holds that state, so it is not
//! sent back). A device pulls its site's feed page by page after its cursor. Because a record appears only at its
//! latest position, the feed never needs compaction or a full reset: a device whose cursor is beyond the head (HQ
//! restored from an older backup) starts again from the beginning, and merging what it already holds changes
//! nothing. What the device then keeps is its own policy (`SharingPolicy`), applied as pages arrive.
//!
//! Feed numbers never go backwards, not even when HQ is restored from an older backup: a new number is at least
//! HQ's clock in milliseconds times 1 024 ([`floor`]), so what is merged after a restore is numbered above every
//! cursor a device was given before it, and no device skips it.
//!
//! This module holds what both stores share: the page rule ([`page`]) over a store's [`FeedRead`].

use guidedesk_sync::protocol::{Change, PullPage, PullResponse};
use guidedesk_sync::{DeviceId, Hlc};

use super::rows::{HqError, StoredRecord};
use crate::model::RecordKind;
use crate::model::codec::{Relayed, relay_key};

/// The lowest feed number a merge at HQ's clock `now_ms` may take (see the module documentation).
pub fn floor(now_ms: u64) -> u64 {
    now_ms.saturating_mul(1_024)
}

/// Largest page of the records stream a device may ask for: a desk catching up asks for this much, so a site's
/// year comes in a few dozen requests, well inside the per-device rate limit.
pub const MAX_FEED_PAGE: u32 = 5_000;

/// One feed entry: a record's latest position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Feed sequence number.
    pub seq: u64,
    /// Record kind.
    pub kind: RecordKind,
    /// Record id.
    pub id: u128,
    /// The device whose op produced exactly this state (it is not sent the record back), if any.
    pub echo: Option<u128>,
    /// The highest op stamp merged into the record.
    pub stamp: Hlc,
    /// The device whose op was merged last.
    pub last_device: u128,
}

/// A consistent read of one site's feed.
pub trait FeedRead {
    /// The highest feed sequence number the site's devices can see (0 when none).
    fn head(&self) -> Result<u64, HqError>;
    /// Up to `limit` entries of the site with `seq > after`, in order.
    fn entries_after(&self, after: u64, limit: usize) -> Result<Vec<FeedEntry>, HqError>;
    /// The stored records of these entries (same order; `None` for one that vanished).
    fn records(&self, entries: &[FeedEntry]) -> Result<Vec<Option<StoredRecord>>, HqError>;
    /// The desk of a device.
    fn desk_of(&self, device: u128) -> Result<String, HqError>;
}

/// Feed entries one pull reads at most while it skips the asking device's own echoes (bounds HQ's work per request).
pub const MAX_FEED_SCAN: usize = 40_000;

/// Up to `limit` entries after `after` that `device` did not itself produce, reading on past its echoes (a desk
/// that pushed a long run of records would otherwise pull page after empty page) but no more than [`MAX_FEED_SCAN`]
/// entries. Returns them, the last entry read (the cursor when there are more) and whether entries follow it.
fn scan(
    read: &impl FeedRead,
    device: DeviceId,
    after: u64,
    limit: usize,
) -> Result<(Vec<FeedEntry>, u64, bool), HqError> {
    let mut wanted = Vec::new();
    let (mut last, mut scanned) = (after, 0usize);
    loop {
        let chunk = read.entries_after(last, limit + 1)?;
        let read_all = chunk.len() <= limit;
        let mut rest = chunk.into_iter().take(limit).peekable();
        while let Some(e) = rest.next() {
            last = e.seq;
            scanned += 1;
            if e.echo != Some(device.0) {
                wanted.push(e);
                if wanted.len() == limit {
                    return Ok((wanted, last, rest.peek().is_some() || !read_all));
                }
            }
        }
        if read_all {
            return Ok((wanted, last, false));
        }
        if scanned >= MAX_FEED_SCAN {
            return Ok((wanted, last, true));
        }
    }
}

/// Answers a pull of the records stream: the entries after `cursor` (from the start when the cursor is beyond the
/// head), without the ones `device` itself produced, each value a [`Relayed`] record.
pub fn page(
    read: &impl FeedRead,
    device: DeviceId,
    cursor: u64,
    limit: u32,
    now_ms: u64,
) -> Result<PullResponse, HqError> {
    let head = read.head()?;
    // A cursor beyond the head: HQ was restored from an older backup. The device starts again from the beginning
    // (a reset page); merging what it holds already changes nothing.
    let restart = cursor > head;
    let after = if restart { 0 } else { cursor };
    let limit = limit.clamp(1, MAX_FEED_PAGE) as usize;
    let (wanted, last, more) = scan(read, device, after, limit)?;
    let next = if more { last } else { head };
    let records = read.records(&wanted)?;
    let mut desks: std::collections::HashMap<u128, String> = std::collections::HashMap::new();
    let mut changes = Vec::with_capacity(wanted.len());
    for (e, stored) in wanted.iter().zip(records) {
        let Some(stored) = stored else { continue };
        for device in [stored.device, e.last_device] {
            if let std::collections::hash_map::Entry::Vacant(v) = desks.entry(device) {
                v.insert(read.desk_of(device)?);
            }
        }
        let desk = |d: u128| desks.get(&d).map_or("", String::as_str);
        let relayed = Relayed::of(&stored.record, (stored.device, desk(stored.device)), desk(e.last_device), e.stamp)
            .map_err(|err| HqError::Refused(format!("record {:x} cannot be relayed: {err}", e.id)))?;
        changes.push(Change {
            seq: e.seq,
            key: relay_key(e.kind, e.id),
            value: Some(guidedesk_sync::codec::encode(&relayed)?),
        });
    }
    let page = if restart {
        PullPage::Reset { snapshot: changes, cursor: next }
    } else {
        PullPage::Changes { changes, cursor: next }
    };
    Ok(PullResponse { server_time_ms: now_ms, page, more })
}

/// Whether a record of this kind is relayed to other devices: everything but audit entries (HQ only).
pub fn relayed(kind: RecordKind) -> bool {
    kind != RecordKind::Audit
}

/// The echo of a merge: the pushing device when the merged record is exactly what it sent.
pub fn echo_of(merged: &StoredRecord, incoming: &crate::model::AnyRecord, device: DeviceId) -> Option<u128> {
    (&merged.record == incoming).then_some(device.0)
}

/// The later of two stamps.
pub fn later(a: Hlc, b: Hlc) -> Hlc {
    if b > a { b } else { a }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A site's feed in memory: entry `i` (1-based) is `seq` i, produced by `echo[i - 1]`.
    struct Feed(Vec<Option<u128>>);

    impl FeedRead for Feed {
        fn head(&self) -> Result<u64, HqError> {
            Ok(self.0.len() as u64)
        }
        fn entries_after(&self, after: u64, limit: usize) -> Result<Vec<FeedEntry>, HqError> {
            Ok(self
                .0
                .iter()
                .enumerate()
                .skip(after as usize)
                .take(limit)
                .map(|(i, echo)| FeedEntry {
                    seq: i as u64 + 1,
                    kind: RecordKind::Arrival,
                    id: i as u128,
                    echo: *echo,
                    stamp: Hlc::default(),
                    last_device: 9,
                })
                .collect())
        }
        fn records(&self, entries: &[FeedEntry]) -> Result<Vec<Option<StoredRecord>>, HqError> {
            Ok(vec![None; entries.len()])
        }
        fn desk_of(&self, _device: u128) -> Result<String, HqError> {
            Ok(String::new())
        }
    }

    fn seqs(entries: &[FeedEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_desk_that_pushed_a_long_run_gets_the_others_records_in_one_page_not_page_after_empty_page() {
        // Device 1 pushed 5 000 records, then device 2 wrote 3.
        let mut feed = vec![Some(1); 5_000];
        feed.extend([Some(2), None, Some(2)]);
        let feed = Feed(feed);
        let (wanted, last, more) = scan(&feed, DeviceId(1), 0, 1_000).unwrap();
        assert_eq!(seqs(&wanted), vec![5_001, 5_002, 5_003]);
        assert_eq!((last, more), (5_003, false));
        // Device 2 gets device 1's records a page at a time, and nothing of its own.
        let (wanted, last, more) = scan(&feed, DeviceId(2), 0, 1_000).unwrap();
        assert_eq!((wanted.len(), last, more), (1_000, 1_000, true));
        let (wanted, last, more) = scan(&feed, DeviceId(2), 5_000, 1_000).unwrap();
        assert_eq!((seqs(&wanted), last, more), (vec![5_002], 5_003, false));
    }

    #[test]
    fn a_page_stops_at_its_limit_and_says_whether_more_follow() {
        let feed = Feed([Some(1), None].repeat(5));
        let (wanted, last, more) = scan(&feed, DeviceId(1), 0, 3).unwrap();
        assert_eq!((seqs(&wanted), last, more), (vec![2, 4, 6], 6, true));
        let (wanted, last, more) = scan(&feed, DeviceId(1), 6, 2).unwrap();
        assert_eq!((seqs(&wanted), last, more), (vec![8, 10], 10, false), "the last wanted entry ends the feed");
        let (wanted, last, more) = scan(&feed, DeviceId(1), 7, 1).unwrap();
        assert_eq!((seqs(&wanted), last, more), (vec![8], 8, true));
    }

    #[test]
    fn the_echo_scan_is_bounded_and_the_cursor_still_moves_on() {
        let feed = Feed(vec![Some(1); MAX_FEED_SCAN * 2 + 10]);
        let (wanted, last, more) = scan(&feed, DeviceId(1), 0, 1_000).unwrap();
        assert!(wanted.is_empty());
        assert_eq!((last, more), (MAX_FEED_SCAN as u64, true), "one request reads at most the bound");
        let (_, last, more) = scan(&feed, DeviceId(1), last, 1_000).unwrap();
        assert_eq!((last, more), (2 * MAX_FEED_SCAN as u64, true));
        let (_, last, more) = scan(&feed, DeviceId(1), last, 1_000).unwrap();
        assert_eq!((last, more), (2 * MAX_FEED_SCAN as u64 + 10, false));
    }

    #[test]
    fn an_empty_feed_or_a_cursor_at_the_head_gives_nothing_more() {
        let feed = Feed(vec![None; 4]);
        assert!(!scan(&feed, DeviceId(1), 4, 10).unwrap().2);
        let (wanted, last, more) = scan(&Feed(Vec::new()), DeviceId(1), 0, 10).unwrap();
        assert!(wanted.is_empty() && last == 0 && !more);
    }
}
