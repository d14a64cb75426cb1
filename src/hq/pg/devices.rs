//! Enrolment, authentication and revocation on PostgreSQL: `enrol_codes`, `devices` and `tokens`. The rules of
//! enrolment are `hq::enrol`'s, checked under the code's and the device's row locks; this module reads and writes
//! the rows.

use chrono::{DateTime, Utc};
use guidedesk_sync::DeviceId;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{PgStore, hash32, ms_u, ts_u, uuid_of};
use crate::hq::credentials::{check_site_desk, new_code, new_token, normalize_code, sha};
use crate::hq::rows::{AuthDevice, AuthRefusal, DeviceRow, EnrollRefusal, Enrolled, HqError};

fn device_from_row(row: &PgRow) -> Result<(DeviceId, DeviceRow), HqError> {
    let device: Uuid = row.try_get("device")?;
    let hash: Vec<u8> = row.try_get("token_hash")?;
    let revoked: Option<DateTime<Utc>> = row.try_get("revoked_at")?;
    let last_push: Option<DateTime<Utc>> = row.try_get("last_push_at")?;
    let last_seq: i64 = row.try_get("last_seq")?;
    Ok((
        DeviceId(device.as_u128()),
        DeviceRow {
            site: row.try_get("site")?,
            desk: row.try_get("desk")?,
            token_hash: hash32(&hash)?,
            enrolled_ms: ms_u(row.try_get("enrolled_at")?),
            revoked_ms: revoked.map(ms_u),
            last_seq: u64::try_from(last_seq).unwrap_or(0),
            last_push_ms: last_push.map_or(0, ms_u),
            skew_ms: row.try_get("skew_ms")?,
        },
    ))
}

const DEVICE_COLS: &str = "device, site, desk, token_hash, enrolled_at, revoked_at, last_seq, last_push_at, skew_ms";
impl PgStore {
    /// Makes a one-time enrolment code for a desk, valid for `ttl_ms`.
    pub fn create_code(&self, site: &str, desk: &str, now_ms: u64, ttl_ms: u64) -> Result<String, HqError> {
        self.create_code_for(site, desk, None, now_ms, ttl_ms)
    }

    /// Makes a code only `for_device` may use (same rules as the embedded store).
    pub fn create_code_for(
        &self,
        site: &str,
        desk: &str,
        for_device: Option<DeviceId>,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<String, HqError> {
        let (site, desk) = check_site_desk(site, desk)?;
        let code = new_code()?;
        let hash = sha(normalize_code(&code).as_bytes());
        self.run(async {
            sqlx::query(
                "INSERT INTO enrol_codes (code_hash, site, desk, created_at, expires_at, for_device) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(hash.as_slice())
            .bind(site)
            .bind(desk)
            .bind(ts_u(now_ms))
            .bind(ts_u(now_ms.saturating_add(ttl_ms)))
            .bind(for_device.map(|d| uuid_of(d.0)))
            .execute(&self.pool)
            .await?;
            Ok(())
        })?;
        Ok(code)
    }

    /// Trades a code for a credential (same rules as the embedded store).
    pub fn enroll(
        &self,
        code: &str,
        device: DeviceId,
        now_ms: u64,
    ) -> Result<Result<Enrolled, EnrollRefusal>, HqError> {
        let key = sha(normalize_code(code).as_bytes());
        self.run(async {
            let mut tx = self.tx().await?;
            let row = sqlx::query(
                "SELECT site, desk, expires_at, used_by, used_at, for_device FROM enrol_codes WHERE code_hash = $1 \
                 FOR UPDATE",
            )
            .bind(key.as_slice())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(Err(EnrollRefusal::Invalid));
            };
            let used_by: Option<Uuid> = row.try_get("used_by")?;
            let used_at: Option<DateTime<Utc>> = row.try_get("used_at")?;
            let for_device: Option<Uuid> = row.try_get("for_device")?;
            let expires: DateTime<Utc> = row.try_get("expires_at")?;
            let site: String = row.try_get("site")?;
            let desk: String = row.try_get("desk")?;
            let dev = uuid_of(device.0);
            let existing = sqlx::query("SELECT site, revoked_at FROM devices WHERE device = $1 FOR UPDATE")
                .bind(dev)
                .fetch_optional(&mut *tx)
                .await?;
            let existing: Option<(String, bool)> = match existing {
                Some(r) => Some((r.try_get("site")?, r.try_get::<Option<DateTime<Utc>>, _>("revoked_at")?.is_some())),
                None => None,
            };
            let code_state = crate::hq::enrol::CodeState {
                site: &site,
                expires_ms: ms_u(expires),
                used_by: used_by.map(|u| u.as_u128()),
                used_ms: used_at.map(ms_u),
                for_device: for_device.map(|u| u.as_u128()),
            };
            let device_state =
                existing.as_ref().map(|(s, revoked)| crate::hq::enrol::DeviceState { site: s, revoked: *revoked });
            if let Err(refusal) = crate::hq::enrol::check(&code_state, device_state.as_ref(), device.0, now_ms) {
                return Ok(Err(refusal));
            }
            sqlx::query("UPDATE enrol_codes SET used_by = $2, used_at = COALESCE(used_at, $3) WHERE code_hash = $1")
                .bind(key.as_slice())
                .bind(dev)
                .bind(ts_u(now_ms))
                .execute(&mut *tx)
                .await?;
            let token = new_token()?;
            let hash = sha(token.as_bytes());
            sqlx::query("DELETE FROM tokens WHERE device = $1").bind(dev).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO devices (device, site, desk, token_hash, enrolled_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device) DO UPDATE SET site = EXCLUDED.site, desk = EXCLUDED.desk, \
                 token_hash = EXCLUDED.token_hash, revoked_at = NULL",
            )
            .bind(dev)
            .bind(&site)
            .bind(&desk)
            .bind(hash.as_slice())
            .bind(ts_u(now_ms))
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO tokens (token_hash, device) VALUES ($1, $2)")
                .bind(hash.as_slice())
                .bind(dev)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(Enrolled { token, site, desk }))
        })
    }

    /// The device behind a credential.
    pub fn authenticate(&self, token: &str) -> Result<Result<AuthDevice, AuthRefusal>, HqError> {
        let hash = sha(token.trim().as_bytes());
        self.run(async {
            let row = sqlx::query(
                "SELECT d.device, d.site, d.revoked_at FROM tokens t JOIN devices d ON d.device = t.device \
                 WHERE t.token_hash = $1",
            )
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else {
                return Ok(Err(AuthRefusal::Unknown));
            };
            let revoked: Option<DateTime<Utc>> = row.try_get("revoked_at")?;
            if revoked.is_some() {
                return Ok(Err(AuthRefusal::Revoked));
            }
            let device: Uuid = row.try_get("device")?;
            Ok(Ok(AuthDevice { device: DeviceId(device.as_u128()), site: row.try_get("site")? }))
        })
    }

    /// A device's row.
    pub fn device(&self, device: DeviceId) -> Result<Option<DeviceRow>, HqError> {
        self.run(async {
            let row = sqlx::query(&format!("SELECT {DEVICE_COLS} FROM devices WHERE device = $1"))
                .bind(uuid_of(device.0))
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| device_from_row(&r).map(|(_, d)| d)).transpose()
        })
    }

    /// Every device, in id order.
    pub fn devices(&self) -> Result<Vec<(DeviceId, DeviceRow)>, HqError> {
        self.run(async {
            let rows = sqlx::query(&format!("SELECT {DEVICE_COLS} FROM devices ORDER BY device"))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(device_from_row).collect()
        })
    }

    /// Revokes a device. Returns whether the device exists.
    pub fn revoke(&self, device: DeviceId, now_ms: u64) -> Result<bool, HqError> {
        self.run(async {
            let r = sqlx::query("UPDATE devices SET revoked_at = COALESCE(revoked_at, $2) WHERE device = $1")
                .bind(uuid_of(device.0))
                .bind(ts_u(now_ms))
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// Lifts a device's revocation; whether the device exists.
    pub fn reinstate(&self, device: DeviceId) -> Result<bool, HqError> {
        self.run(async {
            let r = sqlx::query("UPDATE devices SET revoked_at = NULL WHERE device = $1")
                .bind(uuid_of(device.0))
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }
}
