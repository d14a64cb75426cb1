//! The reference-data change log of the embedded store (`changes`, head and floor in `meta`): publishing a
//! snapshot (`guidedesk-hq ref import`), compaction with a rising floor, and [`ScopedChanges`], the read snapshot a
//! pull is served from (`guidedesk_sync::server::pull_page`). Admission caches are dropped after each import.

use guidedesk_sync::codec;
use guidedesk_sync::protocol::Change;
use guidedesk_sync::server::ChangeSource;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::{
    CHANGE_FLOOR, CHANGE_HEAD, CHANGES, ChangeRow, HqError, HqStore, META, REFERENCE_KEY, REFERENCE_STREAM, read_u64,
};
use crate::model::ReferenceData;

impl HqStore {
    /// Publishes reference data (for every site, or one site) as a new change, then compacts the change log keeping
    /// at least the last `keep` changes. Returns the change's sequence number.
    pub fn import_reference(&self, data: &ReferenceData, site: Option<&str>, keep: usize) -> Result<u64, HqError> {
        data.check().map_err(|e| HqError::Refused(e.to_string()))?;
        let key = site.map_or_else(|| REFERENCE_KEY.to_string(), |s| format!("{REFERENCE_KEY}@{s}"));
        let row = ChangeRow {
            stream: REFERENCE_STREAM.into(),
            scope: site.map(str::to_string),
            key,
            // JSON, like the kiosk's stored snapshot: new fields with serde defaults stay readable both ways.
            value: Some(serde_json::to_vec(data).map_err(|e| HqError::Refused(format!("reference data: {e}")))?),
        };
        let tx = self.db.begin_write()?;
        let seq = append_change(&tx, &row)?;
        compact_changes(&tx, keep)?;
        tx.commit()?;
        self.screens.clear();
        Ok(seq)
    }

    /// The latest reference data that applies to a site (what a device there holds after a full pull), with its
    /// change sequence number.
    pub fn reference_for(&self, site: &str) -> Result<Option<(u64, ReferenceData)>, HqError> {
        let tx = self.read()?;
        let src = ScopedChanges { tx, stream: REFERENCE_STREAM.into(), site: site.to_string() };
        let snap = src.snapshot()?;
        match snap.last() {
            Some(c) => match &c.value {
                Some(v) => Ok(Some((
                    c.seq,
                    serde_json::from_slice(v).map_err(|e| HqError::Refused(format!("stored reference data: {e}")))?,
                ))),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// A read snapshot of a stream's change log as a device at `site` sees it.
    pub fn changes_for(&self, stream: &str, site: &str) -> Result<ScopedChanges, HqError> {
        Ok(ScopedChanges { tx: self.read()?, stream: stream.to_string(), site: site.to_string() })
    }
}

fn append_change(tx: &WriteTransaction, row: &ChangeRow) -> Result<u64, HqError> {
    let mut meta = tx.open_table(META)?;
    let seq = read_u64(&meta, CHANGE_HEAD)? + 1;
    meta.insert(CHANGE_HEAD, seq.to_le_bytes().as_slice())?;
    tx.open_table(CHANGES)?.insert(seq, codec::encode(row)?.as_slice())?;
    Ok(seq)
}

/// Drops superseded changes and removals older than the last `keep` changes; the floor moves past them, so devices
/// with an older cursor get a reset to the snapshot.
fn compact_changes(tx: &WriteTransaction, keep: usize) -> Result<(), HqError> {
    let mut changes = tx.open_table(CHANGES)?;
    let mut rows: Vec<(u64, ChangeRow)> = Vec::new();
    for e in changes.iter()? {
        let (k, v) = e?;
        rows.push((k.value(), codec::decode(v.value())?));
    }
    let mut latest: std::collections::BTreeMap<(&str, &str), u64> = std::collections::BTreeMap::new();
    for (seq, r) in &rows {
        latest.insert((r.stream.as_str(), r.key.as_str()), *seq);
    }
    let cut = rows.len().saturating_sub(keep);
    let mut floor = None;
    for (i, (seq, r)) in rows.iter().enumerate() {
        let live = latest.get(&(r.stream.as_str(), r.key.as_str())) == Some(seq) && r.value.is_some();
        if i < cut && !live {
            changes.remove(*seq)?;
            floor = Some(*seq);
        }
    }
    drop(changes);
    if let Some(f) = floor {
        let mut meta = tx.open_table(META)?;
        let old = read_u64(&meta, CHANGE_FLOOR)?;
        meta.insert(CHANGE_FLOOR, old.max(f).to_le_bytes().as_slice())?;
    }
    Ok(())
}

/// A read snapshot of one stream's change log, filtered to the changes a site sees.
pub struct ScopedChanges {
    tx: ReadTransaction,
    stream: String,
    site: String,
}

impl std::fmt::Debug for ScopedChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedChanges").field("stream", &self.stream).field("site", &self.site).finish_non_exhaustive()
    }
}

impl ScopedChanges {
    fn visible(&self, r: &ChangeRow) -> bool {
        r.stream == self.stream && r.scope.as_deref().is_none_or(|s| s == self.site)
    }
}

impl ChangeSource for ScopedChanges {
    type Error = HqError;

    fn head(&self) -> Result<u64, HqError> {
        read_u64(&self.tx.open_table(META)?, CHANGE_HEAD)
    }

    fn floor(&self) -> Result<u64, HqError> {
        read_u64(&self.tx.open_table(META)?, CHANGE_FLOOR)
    }

    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, HqError> {
        let mut out = Vec::new();
        for e in self.tx.open_table(CHANGES)?.range(after.saturating_add(1)..)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = e?;
            let r: ChangeRow = codec::decode(v.value())?;
            if self.visible(&r) {
                out.push(Change { seq: k.value(), key: r.key, value: r.value });
            }
        }
        Ok(out)
    }

    fn snapshot(&self) -> Result<Vec<Change>, HqError> {
        let mut latest: std::collections::BTreeMap<String, Change> = std::collections::BTreeMap::new();
        for e in self.tx.open_table(CHANGES)?.iter()? {
            let (k, v) = e?;
            let r: ChangeRow = codec::decode(v.value())?;
            if self.visible(&r) {
                latest.insert(r.key.clone(), Change { seq: k.value(), key: r.key, value: r.value });
            }
        }
        let mut out: Vec<Change> = latest.into_values().filter(|c| c.value.is_some()).collect();
        out.sort_by_key(|c| c.seq);
        Ok(out)
    }
}
