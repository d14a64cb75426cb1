//! The site record feed on the embedded store (see `hq::feed`): `feed` holds each record's latest position by
//! (site, feed seq), `feed_pos` the position, echo and stamp by record, and `meta` the head. One write transaction
//! at a time, so feed sequence numbers are in commit order.

use guidedesk_sync::{Hlc, codec};
use redb::{ReadTransaction, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{DEVICES, DeviceRow, HqError, HqStore, META, RECORDS, StoredRecord, read_u64};
use crate::hq::feed::{FeedEntry, FeedRead};
use crate::model::RecordKind;

/// Records by site and feed position: (site, feed seq) → (kind, id).
pub(super) const FEED: TableDefinition<(&str, u64), (u16, u128)> = TableDefinition::new("feed");
/// A record's feed position: (kind, id) → [`FeedPos`].
pub(super) const FEED_POS: TableDefinition<(u16, u128), &[u8]> = TableDefinition::new("feed_pos");
/// The feed head in `meta`.
pub(super) const FEED_HEAD: &str = "feed_head";

/// Where a record stands in the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FeedPos {
    seq: u64,
    echo: Option<u128>,
    stamp: Hlc,
    /// The device whose op was merged last.
    last: u128,
}

/// What a merge tells the feed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Merged {
    /// The pushing device, when the merged record is exactly what it sent.
    pub(super) echo: Option<u128>,
    /// The op's stamp.
    pub(super) stamp: Hlc,
    /// HQ's clock at the merge (ms).
    pub(super) now_ms: u64,
    /// The pushing device.
    pub(super) device: u128,
}

/// The feed tables of a write transaction. The head is read once and written back by [`FeedTables::finish`], which
/// every user calls before its transaction commits (a debug build checks it was).
pub(super) struct FeedTables<'t> {
    pub(super) meta: redb::Table<'t, &'static str, &'static [u8]>,
    pub(super) feed: redb::Table<'t, (&'static str, u64), (u16, u128)>,
    pub(super) pos: redb::Table<'t, (u16, u128), &'static [u8]>,
    /// The head as moved by this transaction, when it moved.
    head: Option<u64>,
}

impl FeedTables<'_> {
    /// Opens the feed tables of a write transaction.
    pub(super) fn open(tx: &redb::WriteTransaction) -> Result<FeedTables<'_>, HqError> {
        Ok(FeedTables {
            meta: tx.open_table(META)?,
            feed: tx.open_table(FEED)?,
            pos: tx.open_table(FEED_POS)?,
            head: None,
        })
    }

    /// Moves a record to the end of its site's feed after a merge.
    pub(super) fn bump(&mut self, site: &str, kind: u16, id: u128, m: &Merged) -> Result<(), HqError> {
        let Merged { echo, stamp, now_ms, device } = *m;
        if RecordKind::from_code(kind).is_none_or(|k| !crate::hq::feed::relayed(k)) {
            return Ok(());
        }
        let old = self.pos.get((kind, id))?.map(|g| codec::decode::<FeedPos>(g.value())).transpose()?;
        let stamp = old.as_ref().map_or(stamp, |o| crate::hq::feed::later(o.stamp, stamp));
        if let Some(o) = &old {
            self.feed.remove((site, o.seq))?;
        }
        let head = match self.head {
            Some(h) => h,
            None => read_u64(&self.meta, FEED_HEAD)?,
        };
        let seq = head.max(crate::hq::feed::floor(now_ms)) + 1;
        self.head = Some(seq);
        self.feed.insert((site, seq), (kind, id))?;
        self.pos.insert((kind, id), codec::encode(&FeedPos { seq, echo, stamp, last: device })?.as_slice())?;
        Ok(())
    }

    /// Writes the head back (once per transaction, not once per record).
    pub(super) fn finish(mut self) -> Result<(), HqError> {
        if let Some(head) = self.head.take() {
            self.meta.insert(FEED_HEAD, head.to_le_bytes().as_slice())?;
        }
        Ok(())
    }
}

impl Drop for FeedTables<'_> {
    fn drop(&mut self) {
        // A moved head not written back would hand out its numbers again in the next transaction.
        debug_assert!(self.head.is_none() || std::thread::panicking(), "FeedTables dropped without finish()");
    }
}

/// Puts every record of a store written before the feed existed into it (once: when the feed is empty and records
/// are not), so the devices of each site receive what HQ already held.
pub(super) fn backfill(tx: &redb::WriteTransaction) -> Result<u64, HqError> {
    let mut t = FeedTables::open(tx)?;
    if t.pos.first()?.is_some() {
        return Ok(0);
    }
    let records = tx.open_table(RECORDS)?;
    let mut n = 0;
    for e in records.iter()? {
        let (k, v) = e?;
        let (kind, id) = k.value();
        let stored: StoredRecord = codec::decode(v.value())?;
        t.bump(&stored.site, kind, id, &Merged { echo: None, stamp: Hlc::ZERO, now_ms: 0, device: stored.device })?;
        n += 1;
    }
    t.finish()?;
    Ok(n)
}

/// A read snapshot of one site's feed.
pub struct SiteFeed {
    tx: ReadTransaction,
    site: String,
}

impl std::fmt::Debug for SiteFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteFeed").field("site", &self.site).finish_non_exhaustive()
    }
}

impl HqStore {
    /// A read snapshot of a site's record feed.
    pub fn feed_for(&self, site: &str) -> Result<SiteFeed, HqError> {
        Ok(SiteFeed { tx: self.read()?, site: site.to_string() })
    }
}

impl FeedRead for SiteFeed {
    fn head(&self) -> Result<u64, HqError> {
        read_u64(&self.tx.open_table(META)?, FEED_HEAD)
    }

    fn entries_after(&self, after: u64, limit: usize) -> Result<Vec<FeedEntry>, HqError> {
        let feed = self.tx.open_table(FEED)?;
        let pos = self.tx.open_table(FEED_POS)?;
        let mut out = Vec::new();
        for e in feed.range((self.site.as_str(), after.saturating_add(1))..=(self.site.as_str(), u64::MAX))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = e?;
            let (kind, id) = v.value();
            let Some(kind) = RecordKind::from_code(kind) else { continue };
            let p = pos
                .get((kind.code(), id))?
                .map(|g| codec::decode::<FeedPos>(g.value()))
                .transpose()?
                .ok_or_else(|| HqError::Refused(format!("feed entry of record {id:x} has no position")))?;
            out.push(FeedEntry { seq: k.value().1, kind, id, echo: p.echo, stamp: p.stamp, last_device: p.last });
        }
        Ok(out)
    }

    fn records(&self, entries: &[FeedEntry]) -> Result<Vec<Option<StoredRecord>>, HqError> {
        let t = self.tx.open_table(RECORDS)?;
        entries
            .iter()
            .map(|e| Ok(t.get((e.kind.code(), e.id))?.map(|g| codec::decode::<StoredRecord>(g.value())).transpose()?))
            .collect()
    }

    fn desk_of(&self, device: u128) -> Result<String, HqError> {
        Ok(self
            .tx
            .open_table(DEVICES)?
            .get(device)?
            .map(|g| codec::decode::<DeviceRow>(g.value()))
            .transpose()?
            .map(|d| d.desk)
            .unwrap_or_default())
    }
}
