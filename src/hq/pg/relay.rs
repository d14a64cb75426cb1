//! What the group HQ needs of a push transaction on PostgreSQL to take a hub's relay batch (see `hq::relay`):
//! which ops it holds already, and a row for each origin device.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use guidedesk_sync::DeviceId;
use sqlx::Row;
use uuid::Uuid;

use super::{PgBatch, to_i64, ts_u, uuid_of};
use crate::hq::rows::HqError;

/// Which of the ops `($1[i], $2[i])` (origin device, seq) the group HQ holds: one probe of the receipts' key per op
/// (the `LATERAL` subquery keeps it so). As a join, a batch's thousands of ops let the planner hash the whole receipts
/// table instead, a cost that grows with everything the group HQ holds.
pub const RELAY_HELD_SQL: &str = "SELECT w.device, w.seq FROM unnest($1::uuid[], $2::bigint[]) AS w(device, seq) \
     CROSS JOIN LATERAL (SELECT 1 FROM op_receipts r WHERE r.device = w.device AND r.seq = w.seq LIMIT 1) AS held";

impl PgBatch {
    /// Which of these ops (origin device, seq) the database holds already.
    pub fn relay_held(&mut self, ops: &[(DeviceId, u64)]) -> Result<HashSet<(u128, u64)>, HqError> {
        if ops.is_empty() {
            return Ok(HashSet::new());
        }
        let devices: Vec<Uuid> = ops.iter().map(|(d, _)| uuid_of(d.0)).collect();
        let seqs = ops.iter().map(|(_, s)| to_i64(*s, "op sequence")).collect::<Result<Vec<i64>, _>>()?;
        let h = self.handle().clone();
        h.block_on(async {
            let rows = sqlx::query(RELAY_HELD_SQL).bind(&devices).bind(&seqs).fetch_all(&mut **self.tx()?).await?;
            rows.iter()
                .map(|r| {
                    let d: Uuid = r.try_get("device")?;
                    let s: i64 = r.try_get("seq")?;
                    Ok((d.as_u128(), u64::try_from(s).unwrap_or(0)))
                })
                .collect()
        })
    }

    /// Makes sure a relayed op's origin device has a row at `site` (created on its first relayed op, with no
    /// credential); `Ok(Err(reason))` when the device belongs to another site or is revoked.
    pub fn admit_origin(
        &mut self,
        site: &str,
        origin: DeviceId,
        desk: &str,
        now_ms: u64,
    ) -> Result<Result<(), String>, HqError> {
        let h = self.handle().clone();
        h.block_on(async {
            let dev = uuid_of(origin.0);
            sqlx::query(
                "INSERT INTO devices (device, site, desk, token_hash, enrolled_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device) DO NOTHING",
            )
            .bind(dev)
            .bind(site)
            .bind(crate::hq::relay::origin_desk(desk))
            .bind([0u8; 32].as_slice())
            .bind(ts_u(now_ms))
            .execute(&mut **self.tx()?)
            .await?;
            let row = sqlx::query("SELECT site, revoked_at FROM devices WHERE device = $1")
                .bind(dev)
                .fetch_one(&mut **self.tx()?)
                .await?;
            let at: String = row.try_get("site")?;
            let revoked: Option<DateTime<Utc>> = row.try_get("revoked_at")?;
            Ok(crate::hq::relay::origin_check(site, &at, revoked.is_some()))
        })
    }
}
