//! Pages of the records stream (other desks' records, relayed by HQ) decoded for the store — on the sync's
//! read-ahead thread where it can, so the decoding and sealing run beside the apply of the pages before them.

use std::collections::VecDeque;
use std::sync::Mutex;

use guidedesk_sync::codec;
use guidedesk_sync::protocol::PullPage;
use guidedesk_sync::replicate::{LocalError, PagePreparer};

use super::boxed;
use crate::model::codec::{PayloadError, RECORDS_STREAM, Relayed};
use crate::store::{PreparedRemote, RemoteRecord, ReplicaOrigin, Store};

/// A page of other desks' records, decoded (and perhaps prepared for the store).
pub(super) struct DecodedRecords {
    pub(super) records: Vec<PreparedRemote>,
    /// Records that could not be read (HQ should never send one; one bad record must not stop the stream).
    pub(super) skipped: u64,
}

/// Decodes a page of the records stream; `prepare` also seals and indexes each record for the store
/// ([`Store::prepare_remote`]). A record of a newer schema is an error: the page must wait for this desk's update.
pub(super) fn decode_records(store: &Store, page: &PullPage, prepare: bool) -> Result<DecodedRecords, LocalError> {
    let mut out = DecodedRecords { records: Vec::with_capacity(page.changes().len()), skipped: 0 };
    for c in page.changes() {
        let Some(value) = &c.value else { continue };
        let decoded = codec::decode::<Relayed>(value)
            .map_err(PayloadError::from)
            .and_then(|r| r.open(&c.key).map(|rec| (r, rec)));
        match decoded {
            Ok((relayed, record)) => {
                let remote = RemoteRecord {
                    record,
                    origin: Some(ReplicaOrigin { device: relayed.origin, desk: relayed.origin_desk }),
                    stamp: relayed.stamp,
                    changed_desk: relayed.changed_desk,
                };
                out.records.push(if prepare { store.prepare_remote(remote).map_err(boxed)? } else { remote.into() });
            }
            Err(e @ PayloadError::Schema { .. }) => {
                return Err(format!(
                    "a record from another desk ({}) needs a newer GuideDesk on this desk: {e}",
                    c.key
                )
                .into());
            }
            Err(_) => out.skipped += 1,
        }
    }
    Ok(out)
}

/// Pages of the records stream decoded and prepared on the sync's read-ahead thread ([`PullSink::preparer`]) while
/// the pages before them are applied, waiting for their turn. Each is matched to the page applied by its cursor and
/// the sequence numbers of its changes; one that matches no page (left by a read-ahead that failed) is dropped.
pub(super) struct PreparedPages<'a> {
    store: &'a Store,
    ready: Mutex<VecDeque<PreparedPage>>,
}

struct PreparedPage {
    cursor: u64,
    seqs: Vec<u64>,
    decoded: Result<DecodedRecords, LocalError>,
}

impl<'a> PreparedPages<'a> {
    /// None yet, for `store`.
    pub(super) fn new(store: &'a Store) -> Self {
        PreparedPages { store, ready: Mutex::default() }
    }

    /// The prepared form of `page`, if it was prepared (those before it that were not applied are dropped).
    pub(super) fn take(&self, page: &PullPage) -> Option<Result<DecodedRecords, LocalError>> {
        let mut ready = self.ready.lock().ok()?;
        while let Some(front) = ready.front() {
            if front.cursor > page.cursor() {
                return None;
            }
            let front = ready.pop_front()?;
            if front.cursor == page.cursor() && front.seqs.iter().copied().eq(page.changes().iter().map(|c| c.seq)) {
                return Some(front.decoded);
            }
        }
        None
    }
}

impl PagePreparer for PreparedPages<'_> {
    fn prepare(&self, stream: &str, page: &PullPage) {
        if stream != RECORDS_STREAM {
            return;
        }
        let prepared = PreparedPage {
            cursor: page.cursor(),
            seqs: page.changes().iter().map(|c| c.seq).collect(),
            decoded: decode_records(self.store, page, true),
        };
        let Ok(mut ready) = self.ready.lock() else { return };
        // A read-ahead that starts over (after a failed request) fetches from an earlier cursor: what the failed one
        // left past that point will never be applied.
        let from = prepared.seqs.first().copied().unwrap_or(prepared.cursor);
        while ready.back().is_some_and(|b| b.cursor >= from) {
            ready.pop_back();
        }
        ready.push_back(prepared);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use guidedesk_sync::protocol::Change;

    use super::*;

    /// A page of changes `first..=last` whose values no desk can read: its decoded form counts them all as skipped,
    /// which tells the pages apart.
    fn page(first: u64, last: u64) -> PullPage {
        let changes =
            (first..=last).map(|seq| Change { seq, key: format!("k{seq}"), value: Some(vec![0xff]) }).collect();
        PullPage::Changes { changes, cursor: last }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn skipped(got: Option<Result<DecodedRecords, LocalError>>) -> Option<u64> {
        got.map(|d| d.unwrap().skipped)
    }

    #[test]
    fn prepared_pages_are_taken_by_the_page_they_were_made_from() {
        let (_dir, store) = store();
        let ready = PreparedPages::new(&store);
        // The first page of a stretch is fetched by the cycle, not ahead: nothing prepared for it.
        assert_eq!(skipped(ready.take(&page(1, 2))), None);
        ready.prepare(RECORDS_STREAM, &page(3, 5));
        ready.prepare(RECORDS_STREAM, &page(6, 9));
        ready.prepare("reference", &page(10, 10));
        // A page with the same cursor but other changes is not the one prepared.
        assert_eq!(skipped(ready.take(&page(4, 5))), None);
        assert_eq!(ready.ready.lock().unwrap().len(), 1, "the page that can no longer be applied is dropped");
        assert_eq!(skipped(ready.take(&page(6, 9))), Some(4));
        assert_eq!(skipped(ready.take(&page(10, 10))), None, "only the records stream is prepared");
        assert!(ready.ready.lock().unwrap().is_empty());
    }

    #[test]
    fn a_read_ahead_started_over_replaces_what_the_failed_one_prepared() {
        let (_dir, store) = store();
        let ready = PreparedPages::new(&store);
        ready.prepare(RECORDS_STREAM, &page(1, 3));
        ready.prepare(RECORDS_STREAM, &page(4, 6));
        ready.prepare(RECORDS_STREAM, &page(7, 9));
        // HQ compacted meanwhile: the read-ahead from 3 on gets other pages.
        ready.prepare(RECORDS_STREAM, &page(5, 8));
        assert_eq!(skipped(ready.take(&page(1, 3))), Some(3));
        assert_eq!(skipped(ready.take(&page(5, 8))), Some(4));
        assert_eq!(skipped(ready.take(&page(9, 9))), None);
        assert!(ready.ready.lock().unwrap().is_empty());
    }

    #[test]
    fn a_record_of_a_newer_schema_stops_the_page_whether_prepared_or_not() {
        let (_dir, store) = store();
        let ready = PreparedPages::new(&store);
        let relayed = Relayed {
            origin: 9,
            origin_desk: "d2".into(),
            changed_desk: "d2".into(),
            stamp: guidedesk_sync::Hlc::default(),
            schema: crate::model::RECORD_SCHEMA + 1,
            payload: Vec::new(),
        };
        let key = crate::model::codec::relay_key(crate::model::RecordKind::Arrival, 7);
        let value = Some(codec::encode(&relayed).unwrap());
        let newer = PullPage::Changes { changes: vec![Change { seq: 1, key, value }], cursor: 1 };
        let inline = decode_records(&store, &newer, false).err().unwrap().to_string();
        assert!(inline.contains("needs a newer GuideDesk"), "{inline}");
        ready.prepare(RECORDS_STREAM, &newer);
        let prepared = ready.take(&newer).unwrap().err().unwrap().to_string();
        assert_eq!(prepared, inline);
    }
}
