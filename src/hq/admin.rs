//! Administration of HQ: enrolment codes, reference-data imports, revocation, stats.
//!
//! redb lets one process open a file at a time, and the server keeps its store open. So every administration
//! command is an [`AdminRequest`] that runs either
//!
//! - **directly** on the store, when no server runs (the CLI opens `hq.redb` itself), or
//! - **through the running server**: `serve` binds a second listener on 127.0.0.1 (a random port) and writes its
//!   URL and a fresh random bearer token to `admin.json` in the data directory (mode 0600, removed at shutdown). When
//!   the CLI finds the store locked, it reads that file and posts the request there.
//!
//! The admin endpoint never listens beyond loopback, and the token proves the caller can read HQ's data directory.

use std::path::Path;

use guidedesk_sync::DeviceId;
use serde::{Deserialize, Serialize};

use super::backend::HqBackend;
use super::store::{HqError, QuarantineRow};
use crate::model::ReferenceData;

/// The name of the admin endpoint file in HQ's data directory.
pub const ADMIN_FILE: &str = "admin.json";

/// Default validity of an enrolment code: 7 days.
pub const DEFAULT_CODE_TTL_HOURS: u64 = 24 * 7;

/// An administration command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Make a one-time enrolment code for a desk. Answer: `{"code": "…"}`.
    EnrollCode {
        /// Site code.
        site: String,
        /// Desk code.
        desk: String,
        /// Hours the code stays valid.
        ttl_hours: u64,
        /// Only this device (UUID) may use it: a new credential for an enrolled device.
        #[serde(default)]
        device: Option<String>,
        /// A code for a site hub (its desk code is `@hub`; `desk` is ignored).
        #[serde(default)]
        hub: bool,
    },
    /// Publish reference data (JSON text, validated) for every site or one. Answer: `{"change_seq": N}`.
    RefImport {
        /// The reference-data JSON document.
        json: String,
        /// Only for this site.
        site: Option<String>,
    },
    /// Revoke a device (UUID). Answer: `{"revoked": true|false}` (false: no such device).
    Revoke {
        /// Device id.
        device: String,
    },
    /// Lift a device's revocation (UUID). Answer: `{"reinstated": true|false}` (false: no such device).
    Reinstate {
        /// Device id.
        device: String,
    },
    /// Quarantined ops. Answer: a list of `{"device", "seq", "kind", "record", "reason", "received"}`.
    QuarantineList,
    /// One quarantined op, with its record as JSON. Answer: `{"device", "seq", …, "record": {…}}`.
    QuarantineShow {
        /// Device id.
        device: String,
        /// The op's sequence number on that device.
        seq: u64,
    },
    /// Apply a quarantined op without the time and code checks. Answer: `{"released": true}` or
    /// `{"released": false, "reason": "…"}`.
    QuarantineRelease {
        /// Device id.
        device: String,
        /// The op's sequence number on that device.
        seq: u64,
    },
    /// Discard a quarantined op for good (its receipt stays). Answer: `{"dropped": true|false}`.
    QuarantineDrop {
        /// Device id.
        device: String,
        /// The op's sequence number on that device.
        seq: u64,
    },
    /// Counts. Answer: `{"records": {…}, "devices": N, "quarantined": N}`, and on a hub
    /// `"upstream": {"pending": N, "last_success": "…"|null, "url": "…", "site": "…", "hub": "…"}`.
    Stats,
    /// Enrolled devices. Answer: a list of `{"device", "site", "desk", "role", "last_seq", "revoked", "skew_ms"}`
    /// (`role`: `desk`, `hub`, or `relayed` for a device known only through a hub).
    Devices,
    /// On a hub: one relay cycle to the group HQ. Answer: what it did (`hq::relay::outbound::RelayReport`).
    Relay,
}

/// Where the running server's admin endpoint is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminFile {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Bearer token.
    pub token: String,
}

/// Writes `admin.json` readable by the owner only (mode 0600, through a fresh temporary file, so a stale one with
/// a looser mode never carries its mode over).
pub fn write_admin_file(path: &Path, url: &str, token: &str) -> std::io::Result<()> {
    let body = zeroize::Zeroizing::new(
        serde_json::to_vec_pretty(&AdminFile { url: url.to_string(), token: token.to_string() })
            .map_err(std::io::Error::other)?,
    );
    crate::private_files::write_private_file(path, &body)
}

/// Reads `admin.json`.
pub fn read_admin_file(path: &Path) -> std::io::Result<AdminFile> {
    serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
}

fn parse_device(s: &str) -> Result<DeviceId, HqError> {
    uuid::Uuid::parse_str(s.trim())
        .map(|u| DeviceId(u.as_u128()))
        .map_err(|e| HqError::Refused(format!("device {s:?} is not a UUID: {e}")))
}

/// A quarantined op as JSON; with `record`, its payload decoded (personal data: shown to the admin who asks for
/// one op, never in the list).
fn quarantine_json(device: DeviceId, seq: u64, row: &QuarantineRow, record: bool) -> serde_json::Value {
    let kind = crate::model::RecordKind::from_code(row.op.key.kind).map_or("unknown", crate::model::RecordKind::name);
    let mut v = serde_json::json!({
        "device": uuid::Uuid::from_u128(device.0).to_string(),
        "seq": seq,
        "kind": kind,
        "record": uuid::Uuid::from_u128(row.op.key.id).to_string(),
        "reason": row.reason,
        "received": crate::model::Moment(i64::try_from(row.received_ms).unwrap_or(i64::MAX)).to_rfc3339(),
    });
    if record {
        v["payload"] = match crate::model::codec::decode_op_payload(&row.op) {
            Ok(r) => serde_json::to_value(&r).unwrap_or(serde_json::Value::Null),
            Err(e) => serde_json::json!({ "undecodable": e.to_string() }),
        };
    }
    v
}

/// Runs a command on the store.
pub fn execute(store: &HqBackend, req: &AdminRequest, changelog_keep: usize) -> Result<serde_json::Value, HqError> {
    let now = super::server::now_ms();
    Ok(match req {
        AdminRequest::EnrollCode { site, desk, ttl_hours, device, hub } => {
            let for_device = device.as_deref().map(parse_device).transpose()?;
            let desk = if *hub {
                super::relay::HUB_DESK
            } else if desk.trim().starts_with('@') {
                return Err(HqError::Refused(format!("desk {desk:?}: desk codes may not start with '@'")));
            } else {
                desk.as_str()
            };
            let code = store.create_code_for(site, desk, for_device, now, ttl_hours.saturating_mul(3_600_000))?;
            serde_json::json!({ "code": code, "site": site, "desk": desk, "ttl_hours": ttl_hours, "device": device })
        }
        AdminRequest::RefImport { json, site } => {
            let data = ReferenceData::from_json(json).map_err(|e| HqError::Refused(e.to_string()))?;
            let seq = store.import_reference(&data, site.as_deref(), changelog_keep)?;
            serde_json::json!({ "change_seq": seq })
        }
        AdminRequest::Revoke { device } => {
            let found = store.revoke(parse_device(device)?, now)?;
            serde_json::json!({ "revoked": found })
        }
        AdminRequest::Reinstate { device } => {
            let found = store.reinstate(parse_device(device)?)?;
            serde_json::json!({ "reinstated": found })
        }
        AdminRequest::QuarantineList => {
            let list: Vec<serde_json::Value> =
                store.quarantined()?.into_iter().map(|((d, seq), row)| quarantine_json(d, seq, &row, false)).collect();
            serde_json::Value::Array(list)
        }
        AdminRequest::QuarantineShow { device, seq } => {
            let d = parse_device(device)?;
            let row = store
                .quarantined()?
                .into_iter()
                .find(|((dd, s), _)| *dd == d && s == seq)
                .ok_or_else(|| HqError::Refused(format!("no op {seq} of device {device} is in quarantine")))?;
            quarantine_json(d, *seq, &row.1, true)
        }
        AdminRequest::QuarantineRelease { device, seq } => {
            match store.quarantine_release(parse_device(device)?, *seq, now)? {
                None => return Err(HqError::Refused(format!("no op {seq} of device {device} is in quarantine"))),
                Some(Ok(())) => serde_json::json!({ "released": true }),
                Some(Err(reason)) => serde_json::json!({ "released": false, "reason": reason }),
            }
        }
        AdminRequest::QuarantineDrop { device, seq } => {
            serde_json::json!({ "dropped": store.quarantine_drop(parse_device(device)?, *seq)? })
        }
        AdminRequest::Stats => {
            let mut v = serde_json::to_value(store.stats()?).map_err(|e| HqError::Refused(e.to_string()))?;
            if let HqBackend::Embedded(s) = store
                && let Some(up) = super::relay::outbound::stats_json(s)?
            {
                v["upstream"] = up;
            }
            v
        }
        AdminRequest::Relay => {
            let HqBackend::Embedded(s) = store else {
                return Err(HqError::Refused(
                    "a hub keeps its store in its data directory; this HQ runs on PostgreSQL and relays to no one"
                        .into(),
                ));
            };
            let report =
                super::relay::outbound::run_cycle(s, now, super::relay::outbound::DEFAULT_RETAIN_MS, changelog_keep)
                    .map_err(|e| HqError::Refused(e.to_string()))?;
            serde_json::to_value(report).map_err(|e| HqError::Refused(e.to_string()))?
        }
        AdminRequest::Devices => {
            let list: Vec<serde_json::Value> = store
                .devices()?
                .into_iter()
                .map(|(d, r)| {
                    serde_json::json!({
                        "device": uuid::Uuid::from_u128(d.0).to_string(),
                        "site": r.site,
                        "role": if super::relay::is_hub_desk(&r.desk) {
                            "hub"
                        } else if r.token_hash == [0; 32] {
                            "relayed"
                        } else {
                            "desk"
                        },
                        "desk": r.desk,
                        "last_seq": r.last_seq,
                        "revoked": r.revoked_ms.is_some(),
                        "skew_ms": r.skew_ms,
                    })
                })
                .collect();
            serde_json::Value::Array(list)
        }
    })
}
