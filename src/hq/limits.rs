//! Request limits on every HQ route: a deadline per request and a token bucket per client.
//!
//! - **Timeout**: a request not answered within [`ApiOptions::request_timeout`] gets 503 `timeout` with
//!   `Retry-After` (the work it started on the blocking pool finishes or aborts in its own transaction; a push is
//!   never half applied, and the kiosk's retry is skipped or applied as usual).
//! - **Rate limit**: one token bucket per credential (the SHA-256 of the bearer token, so each kiosk, the reporting
//!   client and the admin each have their own) and one shared bucket for requests without a credential
//!   (enrolment, health, `/openapi.json`). An empty bucket answers 429 `rate_limited` with `Retry-After` in
//!   whole seconds. Buckets live in memory, **per HQ process**: behind a load balancer with N processes a client
//!   can get up to N times the rate.
//! - **Body size**: axum's `DefaultBodyLimit` ([`super::server::MAX_BODY_BYTES`]), answered as 413
//!   `payload_too_large` by the server's JSON error layer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::FixedOffset;
use sha2::{Digest, Sha256};

use super::reports_api::ReportsToken;
use super::server::{ApiError, HqState};

/// The stable code of a rate-limit refusal.
pub const RATE_LIMITED: &str = "rate_limited";
/// The stable code of a request that took too long.
pub const TIMEOUT: &str = "timeout";

/// How many requests a client may make: `burst` at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 20 requests a second with bursts of 60: far above what a kiosk's sync cycle needs (a push every few
    /// seconds while catching up), low enough that a misbehaving client cannot starve the others.
    fn default() -> Self {
        Self { per_second: 20.0, burst: 60 }
    }
}

/// The options of HQ's HTTP API beyond [`super::server::ServeOptions`].
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// The reporting credential; report endpoints answer 403 `reports_disabled` without one.
    pub reports_token: Option<ReportsToken>,
    /// The UTC offset reports take local days at.
    pub utc_offset: FixedOffset,
    /// The per-client rate limit (`None`: unlimited).
    pub rate_limit: Option<RateLimit>,
    /// The deadline of one request.
    pub request_timeout: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            reports_token: None,
            utc_offset: crate::store::china_offset(),
            rate_limit: Some(RateLimit::default()),
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The token buckets of one HQ process.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    buckets: Arc<Mutex<HashMap<[u8; 32], Bucket>>>,
}

/// Buckets are dropped once this many exist and the full ones are forgotten (a full bucket is the same as none).
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Takes one token from `key`'s bucket; on refusal, the seconds until one is available.
    pub fn take(&self, key: [u8; 32], limit: RateLimit, now: Instant) -> Result<(), u64> {
        let Ok(mut map) = self.buckets.lock() else { return Ok(()) };
        let burst = f64::from(limit.burst.max(1));
        let rate = limit.per_second.max(f64::MIN_POSITIVE);
        if map.len() >= MAX_BUCKETS {
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = map.entry(key).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

fn client_key(req: &Request) -> [u8; 32] {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match token {
        Some(t) => Sha256::digest(t.as_bytes()).into(),
        None => [0; 32],
    }
}

/// The middleware: rate limit first (cheap), then the deadline.
pub async fn limit(State(state): State<HqState>, req: Request, next: Next) -> Response {
    if let Some(rl) = state.api.rate_limit
        && let Err(wait) = state.limiter.take(client_key(&req), rl, Instant::now())
    {
        return ApiError::new(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED, "too many requests from this client")
            .retry_after(wait)
            .into_response();
    }
    let deadline = state.api.request_timeout;
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            TIMEOUT,
            format!("the request was not answered within {} ms", deadline.as_millis()),
        )
        .retry_after(1)
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_past_the_burst_and_refills() {
        let l = RateLimiter::default();
        let rl = RateLimit { per_second: 2.0, burst: 3 };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take([1; 32], rl, t0), Ok(()));
        }
        assert_eq!(l.take([1; 32], rl, t0), Err(1));
        // Another client has its own bucket.
        assert_eq!(l.take([2; 32], rl, t0), Ok(()));
        // Half a second refills one token at 2/s.
        assert_eq!(l.take([1; 32], rl, t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.take([1; 32], rl, t0 + Duration::from_millis(500)).is_err());
    }
}
