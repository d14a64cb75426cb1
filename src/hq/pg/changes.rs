//! The reference-data change log on PostgreSQL (`change_log`, head and floor in `hq_meta`): publishing a snapshot
//! with a commit-ordered sequence number, compaction with a rising floor, and [`PgChanges`], the `REPEATABLE READ`
//! snapshot a pull is served from (`guidedesk_sync::server::pull_page`). Admission caches are dropped after each
//! import.

use std::sync::Mutex;

use guidedesk_sync::protocol::Change;
use guidedesk_sync::server::ChangeSource;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::{PgStore, to_i64};
use crate::hq::rows::{ChangeRow, HqError, REFERENCE_KEY, REFERENCE_STREAM};
use crate::model::ReferenceData;

async fn meta(tx: &mut Transaction<'static, Postgres>, name: &str, lock: bool) -> Result<u64, HqError> {
    let sql = if lock {
        "SELECT value FROM hq_meta WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT value FROM hq_meta WHERE name = $1"
    };
    let v: Option<i64> = sqlx::query_scalar(sql).bind(name).fetch_optional(&mut **tx).await?;
    Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}
impl PgStore {
    /// Publishes reference data as a new change (commit-ordered), then compacts the log keeping the last `keep`.
    pub fn import_reference(&self, data: &ReferenceData, site: Option<&str>, keep: usize) -> Result<u64, HqError> {
        data.check().map_err(|e| HqError::Refused(e.to_string()))?;
        let key = site.map_or_else(|| REFERENCE_KEY.to_string(), |s| format!("{REFERENCE_KEY}@{s}"));
        let row = ChangeRow {
            stream: REFERENCE_STREAM.into(),
            scope: site.map(str::to_string),
            key,
            value: Some(serde_json::to_vec(data).map_err(|e| HqError::Refused(format!("reference data: {e}")))?),
        };
        self.run(async {
            let mut tx = self.tx().await?;
            let seq = append_change(&mut tx, &row).await?;
            compact_changes(&mut tx, keep).await?;
            tx.commit().await?;
            self.screens.clear();
            Ok(seq)
        })
    }

    /// The latest reference data that applies to a site, with its change sequence number.
    pub fn reference_for(&self, site: &str) -> Result<Option<(u64, ReferenceData)>, HqError> {
        let src = self.changes_for(REFERENCE_STREAM, site)?;
        let snap = src.snapshot()?;
        match snap.last() {
            Some(Change { seq, value: Some(v), .. }) => Ok(Some((
                *seq,
                serde_json::from_slice(v).map_err(|e| HqError::Refused(format!("stored reference data: {e}")))?,
            ))),
            _ => Ok(None),
        }
    }

    /// A read snapshot (REPEATABLE READ) of a stream's change log as a device at `site` sees it.
    pub fn changes_for(&self, stream: &str, site: &str) -> Result<PgChanges, HqError> {
        let tx = self.run(async {
            let mut tx = self.tx().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
            Ok(tx)
        })?;
        Ok(PgChanges {
            tx: Mutex::new(Some(tx)),
            handle: self.handle.clone(),
            stream: stream.to_string(),
            site: site.to_string(),
        })
    }
}

async fn append_change(tx: &mut Transaction<'static, Postgres>, row: &ChangeRow) -> Result<u64, HqError> {
    // The row lock on the head serialises appends until commit: sequence numbers are commit-ordered.
    let seq = meta(tx, "change_head", true).await? + 1;
    let s = to_i64(seq, "change sequence")?;
    sqlx::query("UPDATE hq_meta SET value = $1 WHERE name = 'change_head'").bind(s).execute(&mut **tx).await?;
    sqlx::query("INSERT INTO change_log (seq, stream, scope, key, value) VALUES ($1, $2, $3, $4, $5)")
        .bind(s)
        .bind(&row.stream)
        .bind(&row.scope)
        .bind(&row.key)
        .bind(&row.value)
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

/// The same compaction as the embedded store: superseded changes and removals older than the last `keep` go, and
/// the floor rises past them.
async fn compact_changes(tx: &mut Transaction<'static, Postgres>, keep: usize) -> Result<(), HqError> {
    let rows = sqlx::query("SELECT seq, stream, key, value IS NOT NULL AS live FROM change_log ORDER BY seq")
        .fetch_all(&mut **tx)
        .await?;
    let mut list: Vec<(i64, String, String, bool)> = Vec::with_capacity(rows.len());
    for r in &rows {
        list.push((r.try_get("seq")?, r.try_get("stream")?, r.try_get("key")?, r.try_get("live")?));
    }
    let mut latest: std::collections::BTreeMap<(&str, &str), i64> = std::collections::BTreeMap::new();
    for (seq, stream, key, _) in &list {
        latest.insert((stream.as_str(), key.as_str()), *seq);
    }
    let cut = list.len().saturating_sub(keep);
    let mut doomed = Vec::new();
    for (i, (seq, stream, key, has_value)) in list.iter().enumerate() {
        let live = latest.get(&(stream.as_str(), key.as_str())) == Some(seq) && *has_value;
        if i < cut && !live {
            doomed.push(*seq);
        }
    }
    if let Some(floor) = doomed.last().copied() {
        sqlx::query("DELETE FROM change_log WHERE seq = ANY($1)").bind(&doomed).execute(&mut **tx).await?;
        sqlx::query("UPDATE hq_meta SET value = GREATEST(value, $1) WHERE name = 'change_floor'")
            .bind(floor)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A REPEATABLE READ snapshot of one stream's change log, filtered to the changes a site sees.
pub struct PgChanges {
    tx: Mutex<Option<Transaction<'static, Postgres>>>,
    handle: tokio::runtime::Handle,
    stream: String,
    site: String,
}

impl std::fmt::Debug for PgChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgChanges").field("stream", &self.stream).field("site", &self.site).finish_non_exhaustive()
    }
}

impl PgChanges {
    fn with_tx<T>(
        &self,
        f: impl AsyncFnOnce(&mut Transaction<'static, Postgres>) -> Result<T, HqError>,
    ) -> Result<T, HqError> {
        let mut guard = self.tx.lock().map_err(|_| HqError::Refused("change snapshot lock poisoned".into()))?;
        let tx = guard.as_mut().ok_or_else(|| HqError::Refused("change snapshot already closed".into()))?;
        self.handle.block_on(f(tx))
    }

    fn changes(rows: &[PgRow]) -> Result<Vec<Change>, HqError> {
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                Ok(Change { seq: u64::try_from(seq).unwrap_or(0), key: r.try_get("key")?, value: r.try_get("value")? })
            })
            .collect()
    }
}

impl Drop for PgChanges {
    fn drop(&mut self) {
        // Ending the read transaction hands its connection back to the pool, which needs the pool's runtime.
        let _rt = self.handle.enter();
        if let Ok(mut g) = self.tx.lock() {
            drop(g.take());
        }
    }
}

impl ChangeSource for PgChanges {
    type Error = HqError;

    fn head(&self) -> Result<u64, HqError> {
        self.with_tx(async |tx| meta(tx, "change_head", false).await)
    }

    fn floor(&self) -> Result<u64, HqError> {
        self.with_tx(async |tx| meta(tx, "change_floor", false).await)
    }

    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, HqError> {
        let after = to_i64(after, "pull cursor")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_tx(async |tx| {
            Ok(sqlx::query(
                "SELECT seq, key, value FROM change_log WHERE stream = $1 AND (scope IS NULL OR scope = $2) \
                 AND seq > $3 ORDER BY seq LIMIT $4",
            )
            .bind(&self.stream)
            .bind(&self.site)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?)
        })?;
        Self::changes(&rows)
    }

    fn snapshot(&self) -> Result<Vec<Change>, HqError> {
        let rows = self.with_tx(async |tx| {
            Ok(sqlx::query(
                "SELECT seq, key, value FROM (SELECT DISTINCT ON (key) seq, key, value FROM change_log \
                 WHERE stream = $1 AND (scope IS NULL OR scope = $2) ORDER BY key, seq DESC) latest \
                 WHERE value IS NOT NULL ORDER BY seq",
            )
            .bind(&self.stream)
            .bind(&self.site)
            .fetch_all(&mut **tx)
            .await?)
        })?;
        Self::changes(&rows)
    }
}
