//! The site record feed on PostgreSQL (see `hq::feed` and `migrations/hq/0004_record_feed.sql`): a push batch
//! moves the records it merged to the end of their site's feed just before it commits ([`PgBatch::bump_feed`],
//! under the site's head row lock, so feed numbers are commit-ordered within a site); a pull reads a REPEATABLE READ
//! snapshot ([`PgFeed`]).

use std::sync::Mutex;

use guidedesk_sync::Hlc;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::copy::copy_in;
use super::push::PgBatch;
use super::records::{COMMON, stored_from_row, table};
use super::{PgStore, to_i64, uuid_of};
use crate::hq::feed::{FeedEntry, FeedRead};
use crate::hq::rows::{HqError, StoredRecord};
use crate::model::RecordKind;

/// A record a batch moved in the feed.
#[derive(Debug, Clone)]
pub(super) struct Bumped {
    pub(super) kind: RecordKind,
    pub(super) id: u128,
    pub(super) site: String,
    pub(super) echo: Option<u128>,
    pub(super) stamp: Hlc,
    pub(super) last_device: u128,
    /// The batch inserted the record's row, so the record has no feed position yet.
    pub(super) new: bool,
}

fn head_key(site: &str) -> String {
    format!("feed_head:{site}")
}

impl PgBatch {
    /// Moves the records a batch merged to the end of their site's feed (one statement for the head, one for the
    /// positions).
    pub(super) async fn bump_feed(&mut self, mut bumped: Vec<Bumped>, now_ms: u64) -> Result<(), HqError> {
        bumped.retain(|b| crate::hq::feed::relayed(b.kind));
        // One position per record, by site, then kind and id: the last bump wins, with the highest stamp.
        bumped.sort_by(|a, b| (&a.site, a.kind.code(), a.id).cmp(&(&b.site, b.kind.code(), b.id)));
        let mut latest: Vec<Bumped> = Vec::with_capacity(bumped.len());
        for b in bumped {
            match latest.last_mut() {
                Some(o) if o.site == b.site && o.kind == b.kind && o.id == b.id => {
                    *o = Bumped { stamp: crate::hq::feed::later(o.stamp, b.stamp), new: o.new || b.new, ..b };
                }
                _ => latest.push(b),
            }
        }
        for items in latest.chunk_by(|a, b| a.site == b.site) {
            let site = items[0].site.as_str();
            let n = i64::try_from(items.len()).unwrap_or(i64::MAX);
            let head: i64 = sqlx::query(
                "INSERT INTO hq_meta (name, value) VALUES ($1, $3 + $2) ON CONFLICT (name) \
                 DO UPDATE SET value = GREATEST(hq_meta.value, $3) + $2 RETURNING value",
            )
            .bind(head_key(site))
            .bind(n)
            .bind(to_i64(crate::hq::feed::floor(now_ms), "feed floor")?)
            .fetch_one(&mut **self.tx()?)
            .await?
            .try_get("value")?;
            let first = head - n + 1;
            let positioned = items.iter().enumerate().map(|(i, b)| (first + i64::try_from(i).unwrap_or(0), b));
            let (fresh, moved): (Vec<_>, Vec<_>) = positioned.partition(|(_, b)| b.new);
            self.feed_insert(site, fresh).await?;
            self.feed_move(site, moved).await?;
        }
        Ok(())
    }

    /// Feed positions of records the batch inserted (none held one before: a record's feed row is written with
    /// its first row, and neither is ever deleted).
    async fn feed_insert(&mut self, site: &str, items: Vec<(i64, &Bumped)>) -> Result<(), HqError> {
        if items.is_empty() {
            return Ok(());
        }
        copy_in(
            self.tx()?,
            "COPY record_feed (kind, record_id, site, seq, echo, stamp_wall, stamp_logical, stamp_node, last_device) \
             FROM STDIN (FORMAT binary)",
            items,
            |rows, (seq, b)| {
                rows.row(9);
                rows.int2(i16::try_from(b.kind.code()).unwrap_or(i16::MAX))?;
                rows.uuid(b.id)?;
                rows.text(Some(site))?;
                rows.int8(seq)?;
                rows.opt_uuid(b.echo)?;
                rows.int8(to_i64(b.stamp.wall_ms, "stamp")?)?;
                rows.int8(i64::from(b.stamp.logical))?;
                rows.int8(b.stamp.node.cast_signed())?;
                rows.uuid(b.last_device)
            },
        )
        .await?;
        Ok(())
    }

    /// New feed positions of records held before, keeping the highest stamp merged into each.
    async fn feed_move(&mut self, site: &str, items: Vec<(i64, &Bumped)>) -> Result<(), HqError> {
        if items.is_empty() {
            return Ok(());
        }
        let (mut kinds, mut ids, mut sites, mut seqs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut echoes, mut walls, mut logicals, mut nodes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut lasts = Vec::new();
        for (seq, b) in items {
            kinds.push(i16::try_from(b.kind.code()).unwrap_or(i16::MAX));
            ids.push(uuid_of(b.id));
            sites.push(site);
            seqs.push(seq);
            echoes.push(b.echo.map(uuid_of));
            walls.push(to_i64(b.stamp.wall_ms, "stamp")?);
            logicals.push(i64::from(b.stamp.logical));
            nodes.push(b.stamp.node.cast_signed());
            lasts.push(uuid_of(b.last_device));
        }
        sqlx::query(
            "INSERT INTO record_feed (kind, record_id, site, seq, echo, stamp_wall, stamp_logical, stamp_node, \
             last_device) SELECT * FROM UNNEST($1::int2[], $2::uuid[], $3::text[], $4::int8[], $5::uuid[], \
             $6::int8[], $7::int8[], $8::int8[], $9::uuid[]) \
             ON CONFLICT (kind, record_id) DO UPDATE SET seq = EXCLUDED.seq, echo = EXCLUDED.echo, \
             last_device = EXCLUDED.last_device, \
             stamp_wall = CASE WHEN (EXCLUDED.stamp_wall, EXCLUDED.stamp_logical, EXCLUDED.stamp_node) > \
               (record_feed.stamp_wall, record_feed.stamp_logical, record_feed.stamp_node) \
               THEN EXCLUDED.stamp_wall ELSE record_feed.stamp_wall END, \
             stamp_logical = CASE WHEN (EXCLUDED.stamp_wall, EXCLUDED.stamp_logical, EXCLUDED.stamp_node) > \
               (record_feed.stamp_wall, record_feed.stamp_logical, record_feed.stamp_node) \
               THEN EXCLUDED.stamp_logical ELSE record_feed.stamp_logical END, \
             stamp_node = CASE WHEN (EXCLUDED.stamp_wall, EXCLUDED.stamp_logical, EXCLUDED.stamp_node) > \
               (record_feed.stamp_wall, record_feed.stamp_logical, record_feed.stamp_node) \
               THEN EXCLUDED.stamp_node ELSE record_feed.stamp_node END",
        )
        .bind(&kinds)
        .bind(&ids)
        .bind(&sites)
        .bind(&seqs)
        .bind(&echoes)
        .bind(&walls)
        .bind(&logicals)
        .bind(&nodes)
        .bind(&lasts)
        .execute(&mut **self.tx()?)
        .await?;
        Ok(())
    }
}

/// A REPEATABLE READ snapshot of one site's record feed.
pub struct PgFeed {
    tx: Mutex<Option<Transaction<'static, Postgres>>>,
    handle: tokio::runtime::Handle,
    site: String,
}

impl std::fmt::Debug for PgFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFeed").field("site", &self.site).finish_non_exhaustive()
    }
}

impl PgStore {
    /// A read snapshot of a site's record feed.
    pub fn feed_for(&self, site: &str) -> Result<PgFeed, HqError> {
        let tx = self.run(async {
            let mut tx = self.tx().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
            Ok(tx)
        })?;
        Ok(PgFeed { tx: Mutex::new(Some(tx)), handle: self.handle.clone(), site: site.to_string() })
    }
}

impl PgFeed {
    fn with_tx<T>(
        &self,
        f: impl AsyncFnOnce(&mut Transaction<'static, Postgres>) -> Result<T, HqError>,
    ) -> Result<T, HqError> {
        let mut guard = self.tx.lock().map_err(|_| HqError::Refused("feed snapshot lock poisoned".into()))?;
        let tx = guard.as_mut().ok_or_else(|| HqError::Refused("feed snapshot already closed".into()))?;
        self.handle.block_on(f(tx))
    }
}

impl Drop for PgFeed {
    fn drop(&mut self) {
        // Ending the read transaction hands its connection back to the pool, which needs the pool's runtime.
        let _rt = self.handle.enter();
        if let Ok(mut g) = self.tx.lock() {
            drop(g.take());
        }
    }
}

impl FeedRead for PgFeed {
    fn head(&self) -> Result<u64, HqError> {
        let key = head_key(&self.site);
        self.with_tx(async |tx| {
            let v: Option<i64> = sqlx::query("SELECT value FROM hq_meta WHERE name = $1")
                .bind(&key)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get("value"))
                .transpose()?;
            Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
        })
    }

    fn entries_after(&self, after: u64, limit: usize) -> Result<Vec<FeedEntry>, HqError> {
        let after = to_i64(after, "pull cursor")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_tx(async |tx| {
            Ok(sqlx::query(
                "SELECT seq, kind, record_id, echo, stamp_wall, stamp_logical, stamp_node, last_device FROM record_feed \
                 WHERE site = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(&self.site)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: i16 = r.try_get("kind")?;
            let Some(kind) = u16::try_from(kind).ok().and_then(RecordKind::from_code) else { continue };
            let seq: i64 = r.try_get("seq")?;
            let id: Uuid = r.try_get("record_id")?;
            let echo: Option<Uuid> = r.try_get("echo")?;
            let wall: i64 = r.try_get("stamp_wall")?;
            let logical: i64 = r.try_get("stamp_logical")?;
            let node: i64 = r.try_get("stamp_node")?;
            let last: Uuid = r.try_get("last_device")?;
            out.push(FeedEntry {
                seq: u64::try_from(seq).unwrap_or(0),
                kind,
                id: id.as_u128(),
                echo: echo.map(|e| e.as_u128()),
                stamp: Hlc {
                    wall_ms: u64::try_from(wall).unwrap_or(0),
                    logical: u32::try_from(logical).unwrap_or(u32::MAX),
                    node: node.cast_unsigned(),
                },
                last_device: last.as_u128(),
            });
        }
        Ok(out)
    }

    fn records(&self, entries: &[FeedEntry]) -> Result<Vec<Option<StoredRecord>>, HqError> {
        let mut found: std::collections::HashMap<u128, StoredRecord> = std::collections::HashMap::new();
        for kind in RecordKind::ALL {
            let ids: Vec<Uuid> = entries.iter().filter(|e| e.kind == kind).map(|e| uuid_of(e.id)).collect();
            if ids.is_empty() {
                continue;
            }
            let (t, _) = table(kind);
            let rows = self.with_tx(async |tx| {
                Ok(sqlx::query(&format!("SELECT id, {COMMON}, record FROM {t} WHERE id = ANY($1)"))
                    .bind(&ids)
                    .fetch_all(&mut **tx)
                    .await?)
            })?;
            for r in &rows {
                let id: Uuid = r.try_get("id")?;
                found.insert(id.as_u128(), stored_from_row(r)?);
            }
        }
        Ok(entries.iter().map(|e| found.remove(&e.id)).collect())
    }

    fn desk_of(&self, device: u128) -> Result<String, HqError> {
        self.with_tx(async |tx| {
            Ok(sqlx::query("SELECT desk FROM devices WHERE device = $1")
                .bind(uuid_of(device))
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get::<String, _>("desk"))
                .transpose()?
                .unwrap_or_default())
        })
    }
}
