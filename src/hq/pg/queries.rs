//! Reads of the PostgreSQL store for reports and administration — a record, ids by time, site or device,
//! receipts, quarantine and counts — and the two quarantine decisions an admin takes (release, drop). A release runs
//! through the push batch's own apply (`push.rs`) with the admission screen off.

use guidedesk_sync::server::{OpContext, Verdict};
use guidedesk_sync::{DeviceId, Op, codec};
use sqlx::Row;
use uuid::Uuid;

use super::records::{COMMON, stored_from_row, table};
use super::{PgStore, ms_u, to_i64, ts, uuid_of};
use crate::hq::rows::{HqError, HqStats, OpRef, QuarantineRow, Receipt, StoredRecord};
use crate::model::RecordKind;

impl PgStore {
    /// A record.
    pub fn record(&self, kind: RecordKind, id: u128) -> Result<Option<StoredRecord>, HqError> {
        let (t, _) = table(kind);
        self.run(async {
            let row = sqlx::query(&format!("SELECT {COMMON}, record FROM {t} WHERE id = $1"))
                .bind(uuid_of(id))
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(stored_from_row).transpose()
        })
    }

    /// Ids of records of a kind with business time in `[from, to)`, optionally only from one site, in time order.
    pub fn ids_between(&self, kind: RecordKind, site: Option<&str>, from: i64, to: i64) -> Result<Vec<u128>, HqError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let (t, _) = table(kind);
        self.run(async {
            let ids: Vec<Uuid> = sqlx::query_scalar(&format!(
                "SELECT id FROM {t} WHERE occurred_at >= $1 AND occurred_at < $2 AND ($3::text IS NULL OR site = $3) \
                 ORDER BY occurred_at, id"
            ))
            .bind(ts(from))
            .bind(ts(to))
            .bind(site)
            .fetch_all(&self.pool)
            .await?;
            Ok(ids.iter().map(Uuid::as_u128).collect())
        })
    }

    /// Ids of records of a kind first sent by a device.
    pub fn ids_of_device(&self, device: DeviceId, kind: RecordKind) -> Result<Vec<u128>, HqError> {
        let (t, _) = table(kind);
        self.run(async {
            let ids: Vec<Uuid> = sqlx::query_scalar(&format!("SELECT id FROM {t} WHERE device = $1 ORDER BY id"))
                .bind(uuid_of(device.0))
                .fetch_all(&self.pool)
                .await?;
            Ok(ids.iter().map(Uuid::as_u128).collect())
        })
    }

    /// Every receipt, in (device, seq) order.
    pub fn receipts(&self) -> Result<Vec<(OpRef, Receipt)>, HqError> {
        self.run(async {
            let rows = sqlx::query(
                "SELECT device, seq, kind, record_id, received_at, quarantined, clamped FROM op_receipts \
                 ORDER BY device, seq",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let d: Uuid = r.try_get("device")?;
                    let seq: i64 = r.try_get("seq")?;
                    let kind: i16 = r.try_get("kind")?;
                    let id: Uuid = r.try_get("record_id")?;
                    Ok((
                        (DeviceId(d.as_u128()), u64::try_from(seq).unwrap_or(0)),
                        Receipt {
                            kind: u16::try_from(kind).unwrap_or(0),
                            id: id.as_u128(),
                            received_ms: ms_u(r.try_get("received_at")?),
                            quarantined: r.try_get("quarantined")?,
                            clamped: r.try_get("clamped")?,
                        },
                    ))
                })
                .collect()
        })
    }

    /// Every quarantined op, in (device, seq) order.
    pub fn quarantined(&self) -> Result<Vec<(OpRef, QuarantineRow)>, HqError> {
        self.run(async {
            let rows = sqlx::query("SELECT device, seq, reason, received_at, op FROM quarantine ORDER BY device, seq")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let d: Uuid = r.try_get("device")?;
                    let seq: i64 = r.try_get("seq")?;
                    let op: Vec<u8> = r.try_get("op")?;
                    Ok((
                        (DeviceId(d.as_u128()), u64::try_from(seq).unwrap_or(0)),
                        QuarantineRow {
                            op: codec::decode(&op)?,
                            reason: r.try_get("reason")?,
                            received_ms: ms_u(r.try_get("received_at")?),
                        },
                    ))
                })
                .collect()
        })
    }

    /// Applies a quarantined op without the time and code checks (same rules as the embedded store).
    pub fn quarantine_release(
        &self,
        device: DeviceId,
        seq: u64,
        now_ms: u64,
    ) -> Result<Option<Result<(), String>>, HqError> {
        let mut batch = self.begin()?;
        let h = self.handle.clone();
        h.block_on(async {
            let dev = uuid_of(device.0);
            let seq_i = to_i64(seq, "op sequence")?;
            let Some(row) = sqlx::query("SELECT op FROM quarantine WHERE device = $1 AND seq = $2 FOR UPDATE")
                .bind(dev)
                .bind(seq_i)
                .fetch_optional(&mut **batch.tx()?)
                .await?
            else {
                return Ok(None);
            };
            let op: Op = codec::decode(&row.try_get::<Vec<u8>, _>("op")?)?;
            let skew: i64 = sqlx::query("SELECT skew_ms FROM devices WHERE device = $1")
                .bind(dev)
                .fetch_optional(&mut **batch.tx()?)
                .await?
                .map(|r| r.try_get("skew_ms"))
                .transpose()?
                .ok_or_else(|| HqError::Refused(format!("device {dev} is not enrolled")))?;
            batch.lock_device(device).await?;
            batch.screen = None;
            // The op's receipt says "quarantined"; the release writes it anew as applied.
            sqlx::query("DELETE FROM op_receipts WHERE device = $1 AND seq = $2")
                .bind(dev)
                .bind(seq_i)
                .execute(&mut **batch.tx()?)
                .await?;
            let ctx = OpContext { device, received_ms: now_ms, stamp: op.stamp, clamped: false, skew_ms: skew };
            match batch.apply_op(&op, &ctx).await? {
                Verdict::Applied => {
                    sqlx::query("DELETE FROM quarantine WHERE device = $1 AND seq = $2")
                        .bind(dev)
                        .bind(seq_i)
                        .execute(&mut **batch.tx()?)
                        .await?;
                    batch
                        .tx
                        .take()
                        .ok_or_else(|| HqError::Refused("transaction already ended".into()))?
                        .commit()
                        .await?;
                    Ok(Some(Ok(())))
                }
                Verdict::Invalid(reason) => Ok(Some(Err(reason))),
            }
        })
    }

    /// Removes an op from quarantine for good (its receipt stays); whether it was there.
    pub fn quarantine_drop(&self, device: DeviceId, seq: u64) -> Result<bool, HqError> {
        self.run(async {
            let r = sqlx::query("DELETE FROM quarantine WHERE device = $1 AND seq = $2")
                .bind(uuid_of(device.0))
                .bind(to_i64(seq, "op sequence")?)
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// Counts.
    pub fn stats(&self) -> Result<HqStats, HqError> {
        self.run(async {
            let mut records = std::collections::BTreeMap::new();
            for kind in RecordKind::ALL {
                let (t, _) = table(kind);
                let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}")).fetch_one(&self.pool).await?;
                records.insert(kind.name(), u64::try_from(n).unwrap_or(0));
            }
            let devices: i64 = sqlx::query_scalar("SELECT count(*) FROM devices").fetch_one(&self.pool).await?;
            let quarantined: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine").fetch_one(&self.pool).await?;
            Ok(HqStats {
                records,
                devices: u64::try_from(devices).unwrap_or(0),
                quarantined: u64::try_from(quarantined).unwrap_or(0),
            })
        })
    }
}
