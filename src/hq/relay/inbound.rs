//! The group HQ's side of the relay: `POST /v1/relay` takes a hub's batch in one transaction.
//!
//! The rules, beside a device push's (`guidedesk_sync::server::apply_push`):
//!
//! - only a device enrolled as a hub ([`super::HUB_DESK`]) may relay, and each op lands at the hub's site;
//! - the entries' relay seqs must be contiguous; those at or below the hub's cursor are duplicates, a batch after a
//!   hole gets `Gap` with the seq to resend from;
//! - an op whose (origin device, seq) the group HQ holds already — it came directly, or through another hub — is
//!   a duplicate too: acknowledged, never applied twice;
//! - an op whose origin belongs to another site or is revoked here is quarantined with the reason, as is one the
//!   admission checks refuse; it is acknowledged like any other;
//! - the origin's cursor advances with its ops, so a desk that later syncs directly resumes after them.

use std::collections::{HashMap, HashSet};

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use guidedesk_sync::protocol::{PushAck, PushOutcome, PushResponse, RelayEntry, RelayRequest, codes};
use guidedesk_sync::server::{HqStorage, HqTx, OpContext, Verdict};
use guidedesk_sync::{DeviceId, Op, codec};

use crate::hq::backend::HqBackend;
use crate::hq::limits::Caller;
use crate::hq::rows::HqError;
use crate::hq::server::{self, ApiError, HqState, MAX_BODY_BYTES, now_ms};

/// Why a relay batch was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The batch is malformed.
    #[error("{0}")]
    BadBatch(String),
    /// Storage failed; nothing was written.
    #[error(transparent)]
    Storage(#[from] HqError),
}

/// Takes a relay batch from `hub` (of `site`) in one transaction; see the module documentation for the rules.
pub fn apply_relay(
    store: &HqBackend,
    hub: DeviceId,
    site: &str,
    entries: &[RelayEntry],
    now_ms: u64,
    sent_at_ms: u64,
) -> Result<PushResponse, RelayError> {
    for w in entries.windows(2) {
        if w[1].seq != w[0].seq.saturating_add(1) {
            return Err(RelayError::BadBatch(format!(
                "body field \"entries\": relay seq {} follows {} (entries must be contiguous)",
                w[1].seq, w[0].seq
            )));
        }
    }
    if entries.iter().any(|e| e.origin == hub || e.op.seq == 0 || e.seq == 0) {
        return Err(RelayError::BadBatch(
            "body field \"entries\": an entry names the hub itself as origin, or a seq of 0".into(),
        ));
    }
    let skew_ms = guidedesk_sync::server::skew_ms(sent_at_ms, now_ms);
    let mut tx = store.begin()?;
    // First statement: locks the hub's row on PostgreSQL (one batch of a hub at a time) and loads its site's checks.
    let cursor = tx.device_cursor(hub)?;
    let answer = |outcome| PushResponse { server_time_ms: now_ms, outcome };
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(answer(PushOutcome::Accepted(PushAck { acked_through: cursor, ..PushAck::default() })));
    };
    if first.seq > cursor.saturating_add(1) {
        return Ok(answer(PushOutcome::Gap { expected: cursor + 1 }));
    }
    let mut ack = PushAck::default();
    let fresh: Vec<&RelayEntry> = entries
        .iter()
        .filter(|e| {
            let dup = e.seq <= cursor;
            if dup {
                ack.skipped_duplicates.push(e.seq);
            }
            !dup
        })
        .collect();
    let keys: Vec<(DeviceId, u64)> = fresh.iter().map(|e| (e.origin, e.op.seq)).collect();
    let held = tx.relay_held(&keys)?;
    let mut admitted: HashMap<u128, Result<(), String>> = HashMap::new();
    let mut seen: HashSet<(u128, u64)> = HashSet::new();
    let mut to_apply: Vec<(&Op, OpContext, u64)> = Vec::new();
    let mut origin_last: HashMap<u128, u64> = HashMap::new();
    for e in fresh {
        let key = (e.origin.0, e.op.seq);
        if held.contains(&key) || !seen.insert(key) {
            ack.skipped_duplicates.push(e.seq);
            continue;
        }
        let verdict = if let Some(v) = admitted.get(&e.origin.0) {
            v.clone()
        } else {
            let v = tx.admit_origin(site, e.origin, &e.desk, now_ms)?;
            admitted.insert(e.origin.0, v.clone());
            v
        };
        let ctx = OpContext::of(&e.op, e.origin, now_ms, skew_ms);
        if ctx.clamped {
            ack.clamped.push(e.seq);
        }
        match verdict {
            Ok(()) => {
                let last = origin_last.entry(e.origin.0).or_default();
                *last = (*last).max(e.op.seq);
                to_apply.push((&e.op, ctx, e.seq));
            }
            Err(reason) => {
                tx.quarantine(&e.op, &ctx, &reason)?;
                ack.quarantined.push((e.seq, reason));
            }
        }
    }
    let ops: Vec<(&Op, OpContext)> = to_apply.iter().map(|(op, ctx, _)| (*op, *ctx)).collect();
    let mut verdicts = tx.apply_all(&ops)?.into_iter();
    for (op, ctx, seq) in &to_apply {
        match verdicts.next().unwrap_or_else(|| Verdict::Invalid("storage gave no verdict".into())) {
            Verdict::Applied => ack.applied += 1,
            Verdict::Invalid(reason) => {
                tx.quarantine(op, ctx, &reason)?;
                ack.quarantined.push((*seq, reason));
            }
        }
    }
    for (origin, seq) in origin_last {
        tx.set_device_cursor(DeviceId(origin), seq, now_ms, skew_ms)?;
    }
    let through = cursor.max(last.seq);
    if through > cursor {
        tx.set_device_cursor(hub, through, now_ms, skew_ms)?;
        tx.commit()?;
    }
    ack.acked_through = through;
    Ok(answer(PushOutcome::Accepted(ack)))
}

/// Takes a hub's relay batch (codec body `RelayRequest` → `PushResponse`).
#[utoipa::path(post, path = "/v1/relay", tag = "sync", security(("device_credential" = [])),
    request_body(content = crate::hq::openapi::SyncBody, content_type = "application/vnd.guidedesk.sync", description = "codec-encoded RelayRequest (at most 32 MiB); only a hub's credential"),
    responses((status = 200, description = "codec-encoded PushResponse over relay seqs", content_type = "application/vnd.guidedesk.sync", body = crate::hq::openapi::SyncBody), (status = 400, description = "bad request", body = crate::hq::openapi::ErrorJson), (status = 401, description = "no or unknown credential", body = crate::hq::openapi::ErrorJson), (status = 403, description = "revoked, another device, or not a hub", body = crate::hq::openapi::ErrorJson), (status = 413, description = "body too large", body = crate::hq::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = crate::hq::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = crate::hq::openapi::ErrorJson)))]
pub(crate) async fn relay(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let auth = server::device_caller(caller)?;
    let store = state.store.clone();
    let hub = auth.device;
    let is_hub = server::blocking(move || Ok(store.device(hub)?.is_some_and(|d| super::is_hub_desk(&d.desk)))).await?;
    if !is_hub {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::UNAUTHORIZED,
            "this credential is a desk's, not a hub's: only a hub enrolled with `enroll-code --hub` may relay",
        ));
    }
    let _slot = state.push_slots.clone().acquire_owned().await.map_err(|_| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, codes::INTERNAL, "HQ is shutting down").retry_after(1)
    })?;
    let body = server::read_body(&headers, body, MAX_BODY_BYTES).await?;
    server::blocking(move || {
        let req: RelayRequest =
            codec::decode(&body).map_err(|e| ApiError::bad_request(format!("relay body cannot be decoded: {e}")))?;
        if req.hub != auth.device {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::DEVICE_MISMATCH,
                "body field \"hub\": names another device than the credential",
            ));
        }
        let resp = apply_relay(&state.store, req.hub, &auth.site, &req.entries, now_ms(), req.sent_at_ms).map_err(
            |e| match e {
                RelayError::BadBatch(m) => ApiError::new(StatusCode::BAD_REQUEST, codes::BAD_BATCH, m),
                RelayError::Storage(s) => ApiError::from(s),
            },
        )?;
        if let PushOutcome::Accepted(ack) = &resp.outcome
            && ack.applied > 0
        {
            state.signals.notify(&auth.site);
        }
        server::codec_response(&resp)
    })
    .await
}
