//! HQ's HTTP service (axum): the sync endpoints for kiosks and the loopback admin endpoint.
//!
//! - `POST /v1/enroll` (JSON), `POST /v1/push`, `POST /v1/pull` (codec bodies, bearer credential): see
//!   [`guidedesk_sync::protocol`].
//! - `GET /v1/health`: `ok`.
//! - `POST /admin` on a separate listener bound to 127.0.0.1 only, with its own bearer token (see [`super::admin`]).
//!
//! Every response carries HQ's clock in `x-guidedesk-server-time`. Errors are JSON `{"code", "message"}` with a
//! stable code. Store work runs on tokio's blocking pool; redb serialises writers, so push batches of different
//! kiosks are applied one after another, each in its own transaction. At most [`EMBEDDED_PUSH_SLOTS`] (redb) or
//! [`POSTGRES_PUSH_SLOTS`] push requests are decoded and applied at once; the others wait with their bodies still
//! encoded, so fifty kiosks pushing together do not hold fifty decoded batches in memory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use guidedesk_sync::protocol::{
    self, CONTENT_TYPE, EnrollRequest, EnrollResponse, ErrorBody, PullRequest, PushOutcome, PushRequest,
    SERVER_TIME_HEADER, codes,
};
use guidedesk_sync::server::{ApplyError, apply_push, pull_page};
use guidedesk_sync::{DeviceId, codec};

use super::admin::{self, AdminRequest};
use super::backend::HqBackend;
use super::limits::{self, ApiOptions, Caller, ConnectionCap, RateLimiter};
use super::reports_api::{self, OutboxReports};
use super::store::{AuthDevice, EnrollRefusal, HqError};

/// Largest push body (a push batch of a few thousand ops fits easily), and the admin endpoint's limit (reference
/// data imports).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Largest pull body (a device id, a stream name, a cursor and a page size).
pub const MAX_PULL_BODY_BYTES: usize = 4 * 1024;
/// The change streams a device may pull.
pub const PULL_STREAMS: [&str; 2] = [super::store::REFERENCE_STREAM, crate::model::codec::RECORDS_STREAM];
/// Largest enrolment body (a code and a device id).
pub const MAX_ENROLL_BODY_BYTES: usize = 4 * 1024;

/// HQ's wall clock in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct HqState {
    /// The store (embedded redb or PostgreSQL).
    pub store: Arc<HqBackend>,
    /// Changes kept in the reference log at each import (older superseded ones are compacted).
    pub changelog_keep: usize,
    /// The admin endpoint's bearer token.
    pub admin_token: Arc<String>,
    /// Reports, limits and timeouts (see [`super::limits`]).
    pub api: Arc<ApiOptions>,
    /// The per-client token buckets of this process.
    pub limiter: RateLimiter,
    /// What each kiosk last said about its outbox (in memory, this process only).
    pub outbox: OutboxReports,
    /// Push requests decoded and applied at once; the others wait with their body still encoded. The embedded store
    /// takes one writer at a time, so more would only hold decoded batches in memory while they queue for it.
    pub push_slots: Arc<tokio::sync::Semaphore>,
    /// Wakes the desks watching a site when records arrive for it.
    pub signals: super::watch::SiteSignals,
}

/// Push requests an embedded HQ works on at once: one applying, one decoded and waiting for the writer.
pub const EMBEDDED_PUSH_SLOTS: usize = 2;
/// Push requests HQ on PostgreSQL works on at once (its default connection pool size).
pub const POSTGRES_PUSH_SLOTS: usize = 8;

/// An error answer: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }
}

/// A storage failure is logged at HQ with its text and answered with a generic 503: database and file-system
/// messages never reach a client.
impl From<HqError> for ApiError {
    fn from(e: HqError) -> Self {
        match e {
            HqError::Refused(m) => ApiError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, m),
            other => {
                eprintln!("guidedesk-hq: storage error: {other}");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: codes::UNAVAILABLE,
                    message: "HQ's storage is unavailable; try again later".to_string(),
                    retry_after: Some(1),
                }
            }
        }
    }
}

/// An internal failure: logged at HQ with `detail`, answered 500 with a generic message.
pub(crate) fn internal(detail: &dyn std::fmt::Display) -> ApiError {
    eprintln!("guidedesk-hq: internal error: {detail}");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "internal error")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code.to_string(), message: self.message };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (self.status, [(header::CONTENT_TYPE, "application/json")], json).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

pub(crate) fn codec_response<T: serde::Serialize>(value: &T) -> Result<Response, ApiError> {
    let bytes = codec::encode(value).map_err(|e| internal(&e))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response())
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        let detail = match e.try_into_panic() {
            Ok(p) => p
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a handler panicked".to_string()),
            Err(e) => e.to_string(),
        };
        internal(&format_args!("request worker failed: {detail}"))
    })?
}

/// Reads a request body of at most `limit` bytes (413 naming the limit beyond it). Called only after the caller's
/// credential was verified ([`limits::guard`]) and, for pushes, a push slot was taken.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("request body: larger than this endpoint's limit of {limit} bytes"),
        )
    };
    if let Some(v) = headers.get(header::CONTENT_LENGTH) {
        let declared = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("header \"content-length\": not a number of bytes"))?;
        if declared > limit as u64 {
            return Err(too_large());
        }
    }
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::bad_request("request body: the connection ended before the whole body arrived")),
    }
}

/// The verified device behind a request, or 401 (see [`limits::guard`], which refused a bad credential already).
pub(crate) fn device_caller(caller: Option<Extension<Caller>>) -> Result<AuthDevice, ApiError> {
    match caller.map(|Extension(c)| c) {
        Some(Caller::Device(d)) => Ok(d),
        Some(Caller::Refused(r)) => Err(r.error()),
        Some(Caller::Anonymous) | None => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, "no device credential was sent"))
        }
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::UNAUTHORIZED,
            "this endpoint takes a device credential, not a reporting or admin token",
        )),
    }
}

fn same_device(auth: &AuthDevice, device: DeviceId) -> Result<(), ApiError> {
    if auth.device == device {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::DEVICE_MISMATCH,
            "the request names another device than the credential",
        ))
    }
}

/// Applies a batch of ops (codec body `PushRequest` → `PushResponse`).
#[utoipa::path(post, path = "/v1/push", tag = "sync", security(("device_credential" = [])),
    params(("x-guidedesk-outbox-pending" = Option<u64>, Header, maximum = 9_223_372_036_854_775_807_u64, description = "ops waiting in the kiosk's outbox, decimal digits; otherwise 400 naming the header")),
    request_body(content = super::openapi::SyncBody, content_type = "application/vnd.guidedesk.sync", description = "codec-encoded PushRequest (at most 32 MiB)"),
    responses((status = 200, description = "codec-encoded PushResponse", content_type = "application/vnd.guidedesk.sync", body = super::openapi::SyncBody), (status = 400, description = "bad request", body = super::openapi::ErrorJson), (status = 401, description = "no or unknown credential", body = super::openapi::ErrorJson), (status = 403, description = "revoked or another device", body = super::openapi::ErrorJson), (status = 413, description = "body too large", body = super::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson)))]
async fn push(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let auth = device_caller(caller)?;
    let pending = reports_api::outbox_pending(&headers)?;
    let _slot = state.push_slots.clone().acquire_owned().await.map_err(|_| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, codes::INTERNAL, "HQ is shutting down").retry_after(1)
    })?;
    let body = read_body(&headers, body, MAX_BODY_BYTES).await?;
    blocking(move || {
        let req: PushRequest =
            codec::decode(&body).map_err(|e| ApiError::bad_request(format!("push body cannot be decoded: {e}")))?;
        same_device(&auth, req.device)?;
        if let Some(n) = pending {
            state.outbox.note_pending(req.device, n, now_ms());
        }
        let resp = apply_push(&*state.store, req.device, &req.ops, now_ms(), req.sent_at_ms).map_err(|e| match e {
            ApplyError::BadBatch(b) => ApiError::new(StatusCode::BAD_REQUEST, codes::BAD_BATCH, b.to_string()),
            ApplyError::Storage(s) => ApiError::from(s),
            other => internal(&other),
        })?;
        if let PushOutcome::Accepted(ack) = &resp.outcome
            && ack.applied > 0
        {
            state.signals.notify(&auth.site);
        }
        codec_response(&resp)
    })
    .await
}

/// A page of a change stream (codec body `PullRequest` → `PullResponse`).
#[utoipa::path(post, path = "/v1/pull", tag = "sync", security(("device_credential" = [])),
    request_body(content = super::openapi::SyncBody, content_type = "application/vnd.guidedesk.sync", description = "codec-encoded PullRequest (at most 4 KiB)"),
    responses((status = 200, description = "codec-encoded PullResponse", content_type = "application/vnd.guidedesk.sync", body = super::openapi::SyncBody), (status = 400, description = "bad request", body = super::openapi::ErrorJson), (status = 401, description = "no or unknown credential", body = super::openapi::ErrorJson), (status = 403, description = "revoked or another device", body = super::openapi::ErrorJson), (status = 413, description = "body too large", body = super::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson)))]
async fn pull(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let auth = device_caller(caller)?;
    let body = read_body(&headers, body, MAX_PULL_BODY_BYTES).await?;
    blocking(move || {
        let req: PullRequest =
            codec::decode(&body).map_err(|e| ApiError::bad_request(format!("pull body cannot be decoded: {e}")))?;
        same_device(&auth, req.device)?;
        if !PULL_STREAMS.contains(&req.stream.as_str()) {
            return Err(ApiError::bad_request(format!(
                "body field \"stream\": not a stream HQ serves (it serves {PULL_STREAMS:?})"
            )));
        }
        let resp = if req.stream == crate::model::codec::RECORDS_STREAM {
            state.store.feed_page(&auth.site, req.device, req.cursor, req.limit, now_ms())?
        } else {
            pull_page(&state.store.changes_for(&req.stream, &auth.site)?, req.cursor, req.limit, now_ms())?
        };
        codec_response(&resp)
    })
    .await
}

/// Trades a one-time code for a device credential.
#[utoipa::path(post, path = "/v1/enroll", tag = "sync",
    request_body(content = super::openapi::EnrollJson, content_type = "application/json"),
    responses((status = 200, description = "enrolled", body = super::openapi::EnrolledJson), (status = 400, description = "bad request", body = super::openapi::ErrorJson), (status = 401, description = "no or unknown credential", body = super::openapi::ErrorJson), (status = 403, description = "revoked or another device", body = super::openapi::ErrorJson), (status = 413, description = "body too large", body = super::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson)))]
async fn enroll(State(state): State<HqState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = read_body(&headers, body, MAX_ENROLL_BODY_BYTES).await?;
    blocking(move || {
        let req: EnrollRequest = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("request body: not a valid enrolment request: {e}")))?;
        let device = uuid::Uuid::parse_str(req.device.trim())
            .ok()
            .filter(|u| !u.is_nil())
            .ok_or_else(|| ApiError::bad_request("body field \"device\": not a device id (a UUID)"))?;
        if req.code.len() > 64 || req.code.chars().any(char::is_control) {
            return Err(ApiError::bad_request("body field \"code\": not an enrolment code"));
        }
        let now = now_ms();
        match state.store.enroll(&req.code, DeviceId(device.as_u128()), now)? {
            Ok(e) => {
                let resp = EnrollResponse {
                    token: e.token,
                    device: device.to_string(),
                    site: e.site,
                    desk: e.desk,
                    server_time_ms: now,
                };
                let json = serde_json::to_vec(&resp).map_err(|e| internal(&e))?;
                Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
            }
            Err(r) => {
                let code = match r {
                    EnrollRefusal::Used => codes::CODE_USED,
                    EnrollRefusal::Expired => codes::CODE_EXPIRED,
                    EnrollRefusal::Revoked => codes::DEVICE_REVOKED,
                    _ => codes::CODE_INVALID,
                };
                Err(ApiError::new(StatusCode::FORBIDDEN, code, r.to_string()))
            }
        }
    })
    .await
}

async fn admin_handler(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !matches!(caller, Some(Extension(Caller::Admin))) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, "wrong admin token"));
    }
    let body = read_body(&headers, body, MAX_BODY_BYTES).await?;
    blocking(move || {
        let req: AdminRequest = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("admin request is not valid: {e}")))?;
        let value = admin::execute(&state.store, &req, state.changelog_keep)?;
        Ok(axum::Json(value).into_response())
    })
    .await
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such endpoint")
}

async fn stamp_time(mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&now_ms().to_string()) {
        resp.headers_mut().insert(SERVER_TIME_HEADER, v);
    }
    resp
}

/// Turns axum's own rejections (body too large, …) into JSON errors with a stable code.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => codes::PAYLOAD_TOO_LARGE,
            StatusCode::NOT_FOUND => codes::NOT_FOUND,
            StatusCode::REQUEST_TIMEOUT => super::limits::TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS => super::limits::RATE_LIMITED,
            s if s.is_server_error() => codes::INTERNAL,
            _ => codes::BAD_REQUEST,
        };
        let message = status.canonical_reason().unwrap_or("error").to_string();
        return ApiError::new(status, code, message).into_response();
    }
    resp
}

/// Answers the health check.
#[utoipa::path(get, path = "/v1/health", tag = "sync", responses((status = 200, description = "`ok`", body = String), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "timeout (Retry-After)", body = super::openapi::ErrorJson)))]
async fn health() -> &'static str {
    "ok"
}

fn openapi_json(doc: &str) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.to_owned()).into_response()
}

/// Every documented route: routing and the `OpenAPI` paths come from the same `routes!` calls.
pub fn api_routes() -> utoipa_axum::router::OpenApiRouter<HqState> {
    use utoipa::OpenApi as _;
    utoipa_axum::router::OpenApiRouter::with_openapi(super::openapi::ApiDoc::openapi())
        .routes(utoipa_axum::routes!(push))
        .routes(utoipa_axum::routes!(pull))
        .routes(utoipa_axum::routes!(enroll))
        .routes(utoipa_axum::routes!(super::relay::inbound::relay))
        .routes(utoipa_axum::routes!(super::watch::watch))
        .routes(utoipa_axum::routes!(health))
        .routes(utoipa_axum::routes!(reports_api::summary))
        .routes(utoipa_axum::routes!(reports_api::table_csv))
        .routes(utoipa_axum::routes!(reports_api::audit_csv))
        .routes(utoipa_axum::routes!(reports_api::overview))
}

/// The `OpenAPI` document of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The kiosk-facing router.
pub fn router(state: HqState) -> Router {
    let (routes, api) = api_routes().split_for_parts();
    let doc = Arc::new(api.to_json().unwrap_or_default());
    routes
        .route(super::openapi::OPENAPI_PATH, get(move || std::future::ready(openapi_json(&doc))))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::guard))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::map_response(stamp_time))
        .with_state(state)
}

/// The admin router (served on loopback only), under the same body limit, deadline, rate limit and JSON errors as
/// the kiosk-facing routes.
pub fn admin_router(state: HqState) -> Router {
    Router::new()
        .route("/admin", post(admin_handler))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::guard))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::map_response(stamp_time))
        .with_state(state)
}

/// TLS material.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// HTTPS with these files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Allow plain HTTP on a non-loopback address.
    pub allow_plain_http: bool,
    /// Reference change-log entries kept at each import.
    pub changelog_keep: usize,
    /// Where to write `admin.json` (the admin endpoint's address and token); none: no admin endpoint.
    pub admin_file: Option<PathBuf>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Plain HTTP was asked for on a non-loopback address.
    #[error(
        "refusing plain HTTP on {0}: give --tls-cert and --tls-key, listen on a loopback address, or pass \
         --allow-plain-http"
    )]
    PlainHttp(SocketAddr),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The certificate or key could not be loaded.
    #[error("cannot load the TLS certificate/key: {0}")]
    Tls(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] HqError),
}

/// A running server (on its own runtime thread). Dropping it shuts the server down.
#[derive(Debug)]
pub struct RunningHq {
    store: Arc<HqBackend>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    https: bool,
    handle: axum_server::Handle<SocketAddr>,
    admin_handle: axum_server::Handle<SocketAddr>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
    admin_file: Option<PathBuf>,
}

impl RunningHq {
    /// The store it serves, shared (for the hub's relay loop).
    pub fn shared_store(&self) -> Arc<HqBackend> {
        Arc::clone(&self.store)
    }

    /// The store it serves (for inspection; writes go through the same single-writer database).
    pub fn store(&self) -> &HqBackend {
        &self.store
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL (`https://…` or `http://…`).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// The admin endpoint's address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Stops accepting, lets requests in flight finish (up to 5 s), and waits for the store to close.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop()
    }

    /// Waits until the server stops (it runs until shut down or a fatal error).
    pub fn wait(mut self) -> Result<(), ServeError> {
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| ServeError::Io(std::io::Error::other("server thread panicked")))?,
            None => Ok(()),
        }
    }

    fn stop(&mut self) -> Result<(), ServeError> {
        self.handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        self.admin_handle.graceful_shutdown(Some(std::time::Duration::from_secs(1)));
        if let Some(f) = self.admin_file.take() {
            let _ = std::fs::remove_file(f);
        }
        let result = match self.thread.take() {
            Some(t) => t.join().map_err(|_| ServeError::Io(std::io::Error::other("server thread panicked")))?,
            None => Ok(()),
        };
        self.store.close();
        result
    }

    /// A handle that stops the server from another thread (signal handling).
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let h = self.handle.clone();
        let a = self.admin_handle.clone();
        move || {
            h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
            a.graceful_shutdown(Some(std::time::Duration::from_secs(1)));
        }
    }
}

impl Drop for RunningHq {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts serving `store` in the background and returns once the listeners are bound.
pub fn start(store: impl Into<HqBackend>, options: &ServeOptions) -> Result<RunningHq, ServeError> {
    start_with(store, options, ApiOptions::default())
}

/// [`start`] with reporting, limit and timeout options.
pub fn start_with(
    store: impl Into<HqBackend>,
    options: &ServeOptions,
    api: ApiOptions,
) -> Result<RunningHq, ServeError> {
    if options.tls.is_none() && !options.allow_plain_http && !options.listen.ip().is_loopback() {
        return Err(ServeError::PlainHttp(options.listen));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = std::net::TcpListener::bind(options.listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let admin_token = super::store::new_token()?;
    let admin_listener = match &options.admin_file {
        Some(_) => {
            let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    let admin_addr = admin_listener.as_ref().map(std::net::TcpListener::local_addr).transpose()?;
    if let (Some(file), Some(a)) = (&options.admin_file, admin_addr) {
        admin::write_admin_file(file, &format!("http://{a}"), &admin_token)?;
    }
    let store: HqBackend = store.into();
    let slots = match &store {
        HqBackend::Embedded(_) => EMBEDDED_PUSH_SLOTS,
        HqBackend::Postgres(_) => POSTGRES_PUSH_SLOTS,
    };
    let state = HqState {
        push_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
        store: Arc::new(store),
        changelog_keep: options.changelog_keep,
        admin_token: Arc::new(admin_token),
        api: Arc::new(api),
        limiter: RateLimiter::default(),
        outbox: OutboxReports::default(),
        signals: super::watch::SiteSignals::default(),
    };
    let handle = axum_server::Handle::new();
    let admin_handle = axum_server::Handle::new();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("hq-worker").enable_all().build()?;
    let tls = match &options.tls {
        Some(t) => Some(
            runtime
                .block_on(axum_server::tls_rustls::RustlsConfig::from_pem_file(&t.cert, &t.key))
                .map_err(|e| ServeError::Tls(format!("{} / {}: {e}", t.cert.display(), t.key.display())))?,
        ),
        None => None,
    };
    let https = tls.is_some();
    let shared = Arc::clone(&state.store);
    let (h, ah) = (handle.clone(), admin_handle.clone());
    let cap = ConnectionCap::new(limits::connection_cap(state.api.max_connections));
    let header_timeout = state.api.header_timeout;
    let thread = std::thread::Builder::new().name("hq-server".into()).spawn(move || {
        runtime.block_on(async move {
            let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
            if let Some(l) = admin_listener {
                let admin = admin_router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
                let mut server = axum_server::from_tcp(l)?
                    .handle(ah)
                    .acceptor(ConnectionCap::new(64))
                    .first_request_timeout(header_timeout);
                server.http_builder().http1().header_read_timeout(header_timeout);
                tokio::spawn(async move {
                    let _ = server.serve(admin).await;
                });
            }
            if let Some(cfg) = tls {
                let acceptor =
                    axum_server::tls_rustls::RustlsAcceptor::new(cfg).handshake_timeout(header_timeout).acceptor(cap);
                let mut server =
                    axum_server::from_tcp(listener)?.handle(h).acceptor(acceptor).first_request_timeout(header_timeout);
                server.http_builder().http1().header_read_timeout(header_timeout);
                server.serve(app).await?;
            } else {
                let mut server =
                    axum_server::from_tcp(listener)?.handle(h).acceptor(cap).first_request_timeout(header_timeout);
                server.http_builder().http1().header_read_timeout(header_timeout);
                server.serve(app).await?;
            }
            // Let blocking store work finish before the store is dropped.
            drop(state);
            Ok(())
        })
    })?;
    Ok(RunningHq {
        store: shared,
        addr,
        admin_addr,
        https,
        handle,
        admin_handle,
        thread: Some(thread),
        admin_file: options.admin_file.clone(),
    })
}

/// A convenience for error bodies in tests and tools: the stable code of a JSON error body.
pub fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<protocol::ErrorBody>(body).ok().map(|b| b.code)
}
