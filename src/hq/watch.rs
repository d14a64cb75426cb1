//! Live sharing: `GET /v1/watch?after=N&wait=S` answers as soon as the caller's site has records after feed
//! position `N` (or after `S` seconds, at most [`MAX_WAIT_SECS`]), with the site's feed head as JSON
//! `{"head": H}`. A desk keeps one such long poll open and syncs when the head moves past its cursor, so a record
//! saved at one desk reaches the others of the site within a round trip or two — no busy polling.
//!
//! Pushes that applied records wake the watchers of their site ([`SiteSignals`]). A second HQ process on the same
//! PostgreSQL database does not hear this process's pushes: watchers there re-read the head every
//! [`PG_RECHECK`], so they learn of it within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::limits::Caller;
use super::server::{ApiError, HqState};

/// Path of the watch exchange.
pub const WATCH_PATH: &str = "/v1/watch";
/// The longest a watch waits (below the request deadline).
pub const MAX_WAIT_SECS: u64 = 15;
/// How often a watcher on PostgreSQL re-reads the head (another HQ process may have written).
pub const PG_RECHECK: Duration = Duration::from_secs(5);

/// One wake-up channel per site.
#[derive(Debug, Clone, Default)]
pub struct SiteSignals {
    sites: Arc<Mutex<HashMap<String, tokio::sync::watch::Sender<u64>>>>,
}

impl SiteSignals {
    /// A receiver that changes whenever `site` gets records.
    pub fn subscribe(&self, site: &str) -> Option<tokio::sync::watch::Receiver<u64>> {
        let mut map = self.sites.lock().ok()?;
        Some(map.entry(site.to_string()).or_insert_with(|| tokio::sync::watch::channel(0).0).subscribe())
    }

    /// Wakes the watchers of `site`.
    pub fn notify(&self, site: &str) {
        if let Ok(map) = self.sites.lock()
            && let Some(tx) = map.get(site)
        {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// What a watch answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WatchAnswer {
    /// The caller's site's record feed head.
    pub head: u64,
}

fn parse(raw: Option<&str>) -> Result<(u64, u64), ApiError> {
    let mut after = None;
    let mut wait = MAX_WAIT_SECS;
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "after" => {
                after = Some(v.parse::<u64>().ok().filter(|n| i64::try_from(*n).is_ok()).ok_or_else(|| {
                    ApiError::bad_request("query parameter \"after\": not a feed position (0 or more)")
                })?);
            }
            "wait" => {
                wait = v.parse::<u64>().ok().filter(|n| *n <= MAX_WAIT_SECS).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "query parameter \"wait\": not a number of seconds from 0 to {MAX_WAIT_SECS}"
                    ))
                })?;
            }
            other => {
                let name: String = other.chars().filter(|c| !c.is_control()).take(40).collect();
                return Err(ApiError::bad_request(format!("query parameter \"{name}\": not known here")));
            }
        }
    }
    let after = after.ok_or_else(|| ApiError::bad_request("query parameter \"after\": missing"))?;
    Ok((after, wait))
}

/// Waits until the caller's site has records after `after`, or `wait` seconds passed; answers the head.
#[utoipa::path(get, path = "/v1/watch", tag = "sync", security(("device_credential" = [])),
    params(("after" = u64, Query, maximum = 9_223_372_036_854_775_807_u64, description = "the caller's records-stream cursor"),
           ("wait" = Option<u64>, Query, maximum = 15, description = "seconds to wait at most (default 15)")),
    responses((status = 200, description = "the site's feed head", body = WatchAnswer), (status = 400, description = "bad request", body = super::openapi::ErrorJson), (status = 401, description = "no or unknown credential", body = super::openapi::ErrorJson), (status = 403, description = "revoked or another kind of credential", body = super::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson)))]
pub async fn watch(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let auth = super::server::device_caller(caller)?;
    let (after, wait) = parse(raw.as_deref())?;
    // Subscribe before reading the head: a push committed in between still wakes us.
    let mut rx = state.signals.subscribe(&auth.site);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let recheck = matches!(*state.store, super::backend::HqBackend::Postgres(_)).then_some(PG_RECHECK);
    loop {
        let store = Arc::clone(&state.store);
        let site = auth.site.clone();
        let head = super::server::blocking(move || store.feed_head(&site).map_err(ApiError::from)).await?;
        let now = tokio::time::Instant::now();
        if head > after || now >= deadline {
            return Ok(([(header::CACHE_CONTROL, "no-store")], Json(WatchAnswer { head })).into_response());
        }
        let until = recheck.map_or(deadline, |r| deadline.min(now + r));
        match rx.as_mut() {
            Some(rx) => {
                let _ = tokio::time::timeout_at(until, rx.changed()).await;
            }
            None => tokio::time::sleep_until(until).await,
        }
    }
}
