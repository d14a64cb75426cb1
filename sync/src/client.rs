//! The blocking HTTP client (feature `client`): a [`Transport`] over reqwest with rustls.
//!
//! - HTTPS is required, except to a loopback address or when [`ClientConfig::allow_plain_http`] is set.
//! - A configured CA certificate (PEM) replaces the system roots, for HQs with a private CA or a self-signed
//!   certificate; without one the platform's trust store is used.
//! - Every request has a connect timeout and a total timeout, so a silent network never hangs a sync.
//! - Failures are classified for the retry logic: no connection, timeouts, cut bodies, 5xx and 429 are
//!   [`TransportError::Retryable`] (with `Retry-After` when HQ sent it); other statuses are
//!   [`TransportError::Rejected`] with HQ's stable error code.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::parse_retry_after;
use crate::codec;
use crate::protocol::{
    CONTENT_TYPE, ENROLL_PATH, EnrollRequest, EnrollResponse, ErrorBody, PULL_PATH, PUSH_PATH, PullRequest,
    PullResponse, PushRequest, PushResponse,
};
use crate::replicate::{Transport, TransportError};

/// How to reach HQ.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// HQ's base URL, e.g. `https://hq.example:8443`.
    pub base_url: String,
    /// The device's bearer credential (none for enrolment).
    pub token: Option<String>,
    /// A CA certificate (PEM) to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of a whole request, body included.
    pub timeout: Duration,
    /// Allow `http://` to a non-loopback host.
    pub allow_plain_http: bool,
}

impl ClientConfig {
    /// A configuration with default timeouts (10 s to connect, 60 s per request).
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: None,
            ca_pem: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_mins(1),
            allow_plain_http: false,
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not an `http(s)://` URL.
    #[error("HQ address {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// Plain HTTP to a host that is not loopback.
    #[error(
        "HQ address {0:?} uses plain HTTP to a host that is not this machine; use https:// (or allow plain HTTP explicitly)"
    )]
    PlainHttp(String),
    /// The CA certificate is not PEM.
    #[error("the CA certificate is not a PEM certificate: {0}")]
    BadCa(String),
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// A [`Transport`] over HTTPS.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    http: reqwest::blocking::Client,
    base: String,
    token: Option<String>,
    /// The device's last written seq, when known: each push then tells HQ how many ops follow its batch.
    outbox_head: Option<u64>,
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks an HQ URL against the plain-HTTP rule.
pub fn check_url(url: &str, allow_plain_http: bool) -> Result<(), ClientError> {
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        let authority = r.split('/').next().unwrap_or("");
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => authority,
        };
        if !allow_plain_http && !is_loopback_host(host) {
            return Err(ClientError::PlainHttp(url.to_string()));
        }
        r
    } else {
        return Err(ClientError::BadUrl(url.to_string()));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ClientError::BadUrl(url.to_string()));
    }
    Ok(())
}

impl HttpTransport {
    /// Builds a client.
    pub fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        check_url(&config.base_url, config.allow_plain_http)?;
        // The crypto provider is chosen once per process; ring builds quickly and needs no C toolchain beyond cc.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("guidedesk-sync/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        if let Some(pem) = &config.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ClientError::BadCa(e.to_string()))?;
            if certs.is_empty() {
                return Err(ClientError::BadCa("no certificate found".into()));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| ClientError::Setup(format!("{e:#}")))?;
        Ok(Self {
            http,
            base: config.base_url.trim_end_matches('/').to_string(),
            token: config.token.clone(),
            outbox_head: None,
        })
    }

    /// Tells HQ, on each push, how many ops follow the batch up to `head` (the device's last written seq when the
    /// cycle started), in the [`OUTBOX_PENDING_HEADER`](crate::protocol::OUTBOX_PENDING_HEADER) header.
    pub fn with_outbox_head(mut self, head: u64) -> Self {
        self.outbox_head = Some(head);
        self
    }

    fn send(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<(Vec<u8>, u64), TransportError> {
        self.send_with(path, content_type, body, None)
    }

    fn send_with(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        pending: Option<u64>,
    ) -> Result<(Vec<u8>, u64), TransportError> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(n) = pending {
            req = req.header(crate::protocol::OUTBOX_PENDING_HEADER, n.to_string());
        }
        self.finish(req)
    }

    /// Sends a request with the credential and reads the answer: the body and HQ's clock on success, the error
    /// (retryable or a refusal with HQ's code) otherwise.
    fn finish(&self, mut req: reqwest::blocking::RequestBuilder) -> Result<(Vec<u8>, u64), TransportError> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().map_err(|e| retryable(&e))?;
        let status = resp.status();
        let server_time = resp
            .headers()
            .get(crate::protocol::SERVER_TIME_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let retry_after =
            resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let bytes = resp.bytes().map_err(|e| retryable(&e))?;
        if status.is_success() {
            return Ok((bytes.to_vec(), server_time));
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let (code, message) = match body {
            Some(b) => (b.code, b.message),
            None => (format!("http_{}", status.as_u16()), String::from_utf8_lossy(&bytes).chars().take(200).collect()),
        };
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            let what = if message.is_empty() { status.to_string() } else { message };
            return Err(TransportError::Retryable {
                message: format!("HQ is unavailable ({}): {what}", status.as_u16()),
                retry_after,
            });
        }
        Err(TransportError::Rejected { status: status.as_u16(), code, message })
    }

    fn exchange<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        pending: Option<u64>,
    ) -> Result<Resp, TransportError> {
        let body = codec::encode(req).map_err(|e| TransportError::Rejected {
            status: 0,
            code: "encode".into(),
            message: e.to_string(),
        })?;
        let (bytes, _) = self.send_with(path, CONTENT_TYPE, body, pending)?;
        codec::decode(&bytes).map_err(|e| TransportError::Retryable {
            message: format!("HQ's answer could not be read: {e}"),
            retry_after: None,
        })
    }

    /// Trades a one-time enrolment code for the device's credential.
    pub fn enroll(&self, code: &str, device: &str) -> Result<EnrollResponse, TransportError> {
        let body = serde_json::to_vec(&EnrollRequest { code: code.trim().to_string(), device: device.to_string() })
            .map_err(|e| TransportError::Rejected { status: 0, code: "encode".into(), message: e.to_string() })?;
        let (bytes, _) = self.send(ENROLL_PATH, "application/json", body)?;
        serde_json::from_slice(&bytes).map_err(|e| TransportError::Retryable {
            message: format!("HQ's enrolment answer could not be read: {e}"),
            retry_after: None,
        })
    }

    /// Forwards a hub's relay batch to the group HQ (see [`RELAY_PATH`](crate::protocol::RELAY_PATH)).
    pub fn relay(&self, req: &crate::protocol::RelayRequest) -> Result<PushResponse, TransportError> {
        self.exchange(crate::protocol::RELAY_PATH, req, None)
    }

    /// Waits (long poll, at most `wait` seconds) until the device's site has records after feed position `after`;
    /// returns the site's feed head (see [`WATCH_PATH`](crate::protocol::WATCH_PATH)).
    pub fn watch(&self, after: u64, wait: Duration) -> Result<u64, TransportError> {
        let req = self
            .http
            .get(format!("{}{}?after={after}&wait={}", self.base, crate::protocol::WATCH_PATH, wait.as_secs()))
            .timeout(wait + Duration::from_secs(15));
        let (bytes, _) = self.finish(req)?;
        serde_json::from_slice::<crate::protocol::WatchAnswer>(&bytes).map(|a| a.head).map_err(|e| {
            TransportError::Retryable {
                message: format!("HQ's watch answer could not be read: {e}"),
                retry_after: None,
            }
        })
    }

    /// Posts a JSON body to `path` and returns the JSON answer (administration endpoints).
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, TransportError> {
        let bytes = serde_json::to_vec(body).map_err(|e| TransportError::Rejected {
            status: 0,
            code: "encode".into(),
            message: e.to_string(),
        })?;
        let (bytes, _) = self.send(path, "application/json", bytes)?;
        serde_json::from_slice(&bytes).map_err(|e| TransportError::Retryable {
            message: format!("HQ's answer is not JSON: {e}"),
            retry_after: None,
        })
    }
}

fn retryable(e: &reqwest::Error) -> TransportError {
    let what = if e.is_timeout() {
        "HQ did not answer in time"
    } else if e.is_connect() {
        "HQ cannot be reached"
    } else {
        "the connection to HQ broke"
    };
    // The full chain names the cause (refused, reset, certificate, …).
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    TransportError::Retryable { message: format!("{what} ({detail})"), retry_after: None }
}

impl Transport for HttpTransport {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError> {
        // An empty batch asks for the cursor: it says nothing about what follows.
        let pending = self.outbox_head.zip(req.ops.last()).map(|(head, last)| head.saturating_sub(last.seq));
        self.exchange(PUSH_PATH, req, pending)
    }

    fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError> {
        self.exchange(PULL_PATH, req, None)
    }

    fn concurrent(&self) -> Option<&(dyn Transport + Sync)> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        assert!(check_url("https://hq.example:8443", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080", false).is_ok());
        assert!(check_url("http://localhost:8080/", false).is_ok());
        assert!(check_url("http://[::1]:8080", false).is_ok());
        assert!(matches!(check_url("http://10.0.0.5:8080", false), Err(ClientError::PlainHttp(_))));
        assert!(check_url("http://10.0.0.5:8080", true).is_ok());
        assert!(matches!(check_url("ftp://x", false), Err(ClientError::BadUrl(_))));
        assert!(matches!(check_url("https://", false), Err(ClientError::BadUrl(_))));
    }
}
