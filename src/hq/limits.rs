//! What HQ does before a handler runs, and the bounds on every connection and request.
//!
//! - **Connections**: at most [`ApiOptions::max_connections`] open per listener ([`ConnectionCap`]); one beyond
//!   it is closed at once and logged. A connection must deliver a complete request head within
//!   [`ApiOptions::header_timeout`] — the first request as well as each later one on a kept-alive connection — or
//!   it is closed: idle and trickling sockets do not stay.
//! - **Credentials first** ([`guard`]): the caller is established from the `Authorization` header alone, before any
//!   body is read: the admin or reporting token (compared by hash in memory), else a device credential (looked up
//!   in the store). Every route that takes a body needs a credential except enrolment (4 KiB); a refused
//!   credential is answered 401 (403 for a revoked device) before the body is read, so an attacker without a
//!   credential never makes HQ buffer one. Handlers read their body only after that, under a per-route size limit
//!   (see [`super::server`]).
//! - **Rate limit**: one token bucket per verified caller (each device, the reporting client, the admin) and, until
//!   a credential is verified, two per client address (the TCP peer; forwarding headers are not trusted): one for
//!   requests without a credential, one for requests whose credential was refused. An address whose "refused"
//!   bucket is empty is answered 429 before any further credential of its is looked up, so guessing credentials
//!   costs HQ no store reads. An empty bucket answers 429 `rate_limited` with `Retry-After` in whole seconds.
//!   Buckets live in memory, **per HQ process**: behind a load balancer with N processes a client can get up to N
//!   times the rate.
//! - **Timeout**: a request not answered within [`ApiOptions::request_timeout`] (body upload included) gets 503
//!   `timeout` with `Retry-After` (the work it started on the blocking pool finishes or aborts in its own
//!   transaction; a push is never half applied, and the kiosk's retry is skipped or applied as usual).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::FixedOffset;
use sha2::{Digest, Sha256};

use guidedesk_sync::protocol::codes;

use super::reports_api::ReportsToken;
use super::server::{ApiError, HqState, blocking};
use super::store::{AuthDevice, AuthRefusal};

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

/// Default cap on open connections per listener: far above a hospital group's desks, well below the file
/// descriptors a server process gets.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

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
    /// Open connections per listener.
    pub max_connections: usize,
    /// Time a connection has to send a complete request head (its first, and each next one while kept alive).
    pub header_timeout: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            reports_token: None,
            utc_offset: crate::model::common::china_offset(),
            rate_limit: Some(RateLimit::default()),
            request_timeout: Duration::from_secs(30),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
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
    /// Whether `key`'s bucket has a token, without taking it; on refusal, the seconds until one is available.
    pub fn peek(&self, key: [u8; 32], limit: RateLimit, now: Instant) -> Result<(), u64> {
        let Ok(map) = self.buckets.lock() else { return Ok(()) };
        let Some(b) = map.get(&key) else { return Ok(()) };
        let rate = limit.per_second.max(f64::MIN_POSITIVE);
        let tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(f64::from(limit.burst.max(1)));
        if tokens >= 1.0 { Ok(()) } else { Err(((1.0 - tokens) / rate).ceil().max(1.0) as u64) }
    }

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

/// Who sent a request, as established from its headers before any body is read (see [`guard`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An enrolled, not revoked device.
    Device(AuthDevice),
    /// The holder of the HQ reporting token.
    Reports,
    /// The holder of the admin endpoint's token.
    Admin,
    /// No credential was sent.
    Anonymous,
    /// A credential was sent and refused (unknown, malformed, or a revoked device): handlers that need one answer
    /// with the refusal before reading any body; routes that need none serve the request as anonymous.
    Refused(Refusal),
}

/// Why a presented credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The `Authorization` header is not `Bearer <token>` with a plausible token.
    Malformed,
    /// No device, reporting or admin credential matches.
    Unknown,
    /// The device was revoked.
    Revoked,
}

impl Refusal {
    /// The error answer for it.
    pub fn error(self) -> ApiError {
        match self {
            Refusal::Malformed => ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "header \"authorization\": expected `Bearer <credential>`",
            ),
            Refusal::Unknown => {
                ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, AuthRefusal::Unknown.to_string())
            }
            Refusal::Revoked => {
                ApiError::new(StatusCode::FORBIDDEN, codes::DEVICE_REVOKED, AuthRefusal::Revoked.to_string())
            }
        }
    }
}

/// A client address's bucket for requests without a credential (`anonymous`) or with a refused one (`refused`).
fn address_key(ip: IpAddr, which: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(which.as_bytes());
    h.update(b":");
    match ip {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    h.finalize().into()
}

fn caller_key(caller: &Caller, ip: IpAddr) -> [u8; 32] {
    match caller {
        Caller::Device(d) => {
            let mut h = Sha256::new();
            h.update(b"device:");
            h.update(d.device.0.to_le_bytes());
            h.finalize().into()
        }
        Caller::Reports => Sha256::digest(b"reports").into(),
        Caller::Admin => Sha256::digest(b"admin").into(),
        Caller::Anonymous => address_key(ip, "anonymous"),
        Caller::Refused(_) => address_key(ip, "refused"),
    }
}

/// The client's address: the TCP peer (HQ does not trust forwarding headers).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

fn too_many(wait: u64) -> Response {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED, "too many requests from this client")
        .retry_after(wait)
        .into_response()
}

/// Establishes the caller from the `Authorization` header alone: the admin or reporting token (compared by hash in
/// memory), else a device credential looked up in the store — unless this client address has had too many
/// credentials refused lately, in which case it is answered 429 without a lookup.
async fn identify(state: &HqState, authorization: Option<HeaderValue>, ip: IpAddr) -> Result<Caller, Response> {
    let Some(value) = authorization else { return Ok(Caller::Anonymous) };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()));
    let Some(token) =
        token.filter(|t| !t.is_empty() && t.len() <= MAX_CREDENTIAL_LEN && t.bytes().all(|b| b.is_ascii_graphic()))
    else {
        return Ok(Caller::Refused(Refusal::Malformed));
    };
    if constant_time_eq(token.as_bytes(), state.admin_token.as_bytes()) {
        return Ok(Caller::Admin);
    }
    if state.api.reports_token.as_ref().is_some_and(|t| t.matches(&token)) {
        return Ok(Caller::Reports);
    }
    if let Some(rl) = state.api.rate_limit
        && let Err(wait) = state.limiter.peek(address_key(ip, "refused"), rl, Instant::now())
    {
        return Err(too_many(wait));
    }
    let store = Arc::clone(&state.store);
    match blocking(move || Ok(store.authenticate(&token)?)).await {
        Ok(Ok(d)) => Ok(Caller::Device(d)),
        Ok(Err(AuthRefusal::Revoked)) => Ok(Caller::Refused(Refusal::Revoked)),
        Ok(Err(_)) => Ok(Caller::Refused(Refusal::Unknown)),
        Err(e) => Err(e.into_response()),
    }
}

/// Longest credential looked up (device credentials and tokens are far shorter).
const MAX_CREDENTIAL_LEN: usize = 256;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware, before any handler and so before any body is read:
///
/// 1. the caller is established from the headers ([`identify`]);
/// 2. it is charged to its bucket: a verified caller to its own (device, reporting client, admin), a request
///    without a credential or with a refused one to its client address's;
/// 3. the handler runs under the request deadline, with the [`Caller`] in the request's extensions. Handlers that
///    need a credential answer a refused one at once ([`Refusal::error`]), before they read a body.
pub async fn guard(State(state): State<HqState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    let caller = match identify(&state, req.headers().get(header::AUTHORIZATION).cloned(), ip).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    if let Some(rl) = state.api.rate_limit
        && let Err(wait) = state.limiter.take(caller_key(&caller, ip), rl, Instant::now())
    {
        return too_many(wait);
    }
    req.extensions_mut().insert(caller);
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

/// Caps the open connections of one listener: a connection accepted beyond the cap is closed at once, with one log
/// line per burst (at most one every ten seconds), so a flood of idle sockets cannot exhaust HQ's file
/// descriptors. Connections that are served hold a permit until they close.
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    permits: Arc<tokio::sync::Semaphore>,
    cap: usize,
    last_log: Arc<Mutex<Option<Instant>>>,
}

/// File descriptors kept free for the store, the admin listener and accepting (beyond the connections).
const RESERVED_FDS: usize = 128;

/// The connection cap HQ can keep with the file descriptors it may open: `requested`, lowered to the process's
/// open-file limit less [`RESERVED_FDS`] (read from `/proc/self/limits` on Linux; elsewhere `requested`).
pub fn connection_cap(requested: usize) -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits").ok().and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<usize>().ok())
    });
    match soft {
        Some(limit) if limit.saturating_sub(RESERVED_FDS) < requested => {
            let cap = limit.saturating_sub(RESERVED_FDS).max(16);
            eprintln!(
                "guidedesk-hq: the open-file limit is {limit}: serving at most {cap} connections instead of \
                 {requested} (raise the limit, e.g. LimitNOFILE= in the service unit)"
            );
            cap
        }
        _ => requested,
    }
}

impl ConnectionCap {
    /// A cap of `cap` open connections.
    pub fn new(cap: usize) -> Self {
        Self { permits: Arc::new(tokio::sync::Semaphore::new(cap.max(1))), cap: cap.max(1), last_log: Arc::default() }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.cap - self.permits.available_permits()
    }

    fn refuse(&self) -> std::io::Error {
        let now = Instant::now();
        if let Ok(mut last) = self.last_log.lock()
            && last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            *last = Some(now);
            eprintln!(
                "guidedesk-hq: connection limit reached ({} open connections); refusing new connections until some \
                 close (raise it with --max-connections)",
                self.cap
            );
        }
        std::io::Error::other("connection limit reached")
    }
}

impl<I, S> axum_server::accept::Accept<I, S> for ConnectionCap {
    type Stream = Capped<I>;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Capped<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        std::future::ready(match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Ok((Capped { inner: stream, _permit: permit }, service)),
            Err(_) => Err(self.refuse()),
        })
    }
}

/// A connection that holds one of its listener's [`ConnectionCap`] permits until it is dropped.
#[derive(Debug)]
pub struct Capped<I> {
    inner: I,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Capped<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Capped<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn the_connection_cap_fits_the_open_file_limit() {
        let cap = connection_cap(usize::MAX);
        assert!(cap < usize::MAX, "Linux reports an open-file limit");
        assert!(cap >= 16);
        assert_eq!(connection_cap(16), 16);
    }

    #[tokio::test]
    async fn a_connection_beyond_the_cap_is_refused_and_a_closed_one_frees_its_place() {
        use axum_server::accept::Accept as _;
        let cap = ConnectionCap::new(2);
        let a = cap.accept((), ()).await.unwrap();
        let _b = cap.accept((), ()).await.unwrap();
        assert_eq!(cap.open(), 2);
        assert!(cap.accept((), ()).await.is_err());
        drop(a);
        assert_eq!(cap.open(), 1);
        assert!(cap.accept((), ()).await.is_ok());
    }
}
