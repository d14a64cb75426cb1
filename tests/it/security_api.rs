//! Regression tests for the API review (issue 17): every input that is not valid is answered 4xx naming it, and
//! nothing a client sends reaches the database as text it cannot hold — on the embedded store and on PostgreSQL.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use guidedesk::hq::backend::HqBackend;
use guidedesk::hq::limits::ApiOptions;
use guidedesk::hq::pg::{PgConfig, PgStore};
use guidedesk::hq::reports_api::ReportsToken;
use guidedesk::hq::server::{self, RunningHq};
use guidedesk::hq::store::HqStore;

const TOKEN: &str = "reports-security-api-0123456789abcdef";

/// PostgreSQL at `DATABASE_URL` in a schema of this test's own, dropped at the end.
struct PgSchema {
    url: String,
    schema: String,
}

impl PgSchema {
    /// A fresh schema, or `None` (printed) when `DATABASE_URL` is unset outside CI. In CI it must be set.
    fn fresh(test: &str) -> Option<PgSchema> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                Some(PgSchema { url, schema: format!("gd_sec_{}", uuid::Uuid::now_v7().simple()) })
            }
            _ => {
                assert!(std::env::var_os("CI").is_none(), "{test}: DATABASE_URL is not set, but CI is");
                println!("{test}: PostgreSQL skipped, DATABASE_URL is not set");
                None
            }
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.url)
            .args(["-X", "-q", "-c", &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)])
            .output();
    }
}

/// Runs `scenario` against an HQ (reporting token set) on the embedded store, then on PostgreSQL.
fn on_both_backends(test: &str, scenario: impl Fn(&str, &RunningHq)) {
    let dir = tempfile::tempdir().unwrap();
    let api = || ApiOptions { reports_token: Some(ReportsToken::new(TOKEN).unwrap()), ..ApiOptions::default() };
    let embedded: HqBackend = HqStore::open(&dir.path().join("hq")).unwrap().into();
    let hq = server::start_with(embedded, &crate::sync::loopback_options(100), api()).unwrap();
    scenario("embedded", &hq);
    hq.shutdown().unwrap();
    if let Some(pg) = PgSchema::fresh(test) {
        let mut cfg = PgConfig::new(&pg.url);
        cfg.schema = Some(pg.schema.clone());
        let store: HqBackend = PgStore::connect(&cfg).unwrap().into();
        let hq = server::start_with(store, &crate::sync::loopback_options(100), api()).unwrap();
        scenario("postgres", &hq);
        hq.shutdown().unwrap();
    }
}

/// One GET with the reporting token: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap();
    (status, resp[split + 4..].to_vec())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[test]
fn finding_6_nul_byte_in_a_query_parameter_is_a_400_naming_it() {
    let days = "from=2025-01-01&to=2025-01-31";
    on_both_backends("finding_6", |backend, hq| {
        // The reported request: the overview with a NUL byte in a query parameter.
        for (path, param) in [
            ("/v1/overview?site=%00".to_string(), "site"),
            ("/v1/overview?from=%00&to=2025-01-31".to_string(), "from"),
            ("/v1/overview?lang=en%00".to_string(), "lang"),
            (format!("/v1/reports/summary?{days}&site=ma%00in"), "site"),
            ("/v1/reports/summary?from=2025-01-01&to=2025-01-3%00".to_string(), "to"),
            (format!("/v1/reports/table.csv?table=kpis&{days}&site=%00"), "site"),
            (format!("/v1/reports/table.csv?table=kp%00is&{days}"), "table"),
            (format!("/v1/audit.csv?{days}&site=%00main"), "site"),
        ] {
            let (status, body) = get(hq.addr(), &path);
            let v = json(&body);
            assert_eq!((status, v["code"].as_str()), (400, Some("bad_request")), "{backend} {path}: {v}");
            let message = v["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("query parameter {param:?}: contains a control character (U+0000)")),
                "{backend} {path}: {message}"
            );
            assert!(!message.to_lowercase().contains("database"), "{backend} {path}: {message}");
        }
        // The other control characters and the parameters' other rules are answered the same way.
        for (path, param, needle) in [
            ("/v1/overview?site=%0Amain", "site", "contains a control character (U+000A)"),
            ("/v1/overview?site=%C2%85", "site", "contains a control character (U+0085)"),
            (
                "/v1/overview?site=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "site",
                "at most 64",
            ),
            ("/v1/overview?lang=fr", "lang", "use zh-CN or en"),
            ("/v1/overview?from=2025-02-30&to=2025-03-01", "from", "is not a date"),
            ("/v1/overview?from=2025-03-01", "to", "to is missing"),
            ("/v1/overview?nope=1", "nope", "unknown parameter"),
            ("/v1/overview?lang=en&lang=en", "lang", "given more than once"),
        ] {
            let (status, body) = get(hq.addr(), path);
            let v = json(&body);
            assert_eq!((status, v["code"].as_str()), (400, Some("bad_request")), "{backend} {path}: {v}");
            let message = v["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("query parameter {param:?}: ")), "{backend} {path}: {message}");
            assert!(message.contains(needle), "{backend} {path}: {message}");
        }
        // The same endpoints answer valid queries (the overview never sends a NUL of its own to the store either).
        for path in [
            "/v1/overview".to_string(),
            "/v1/overview?lang=en&site=main".to_string(),
            format!("/v1/reports/summary?{days}&site=main&lang=en"),
            format!("/v1/reports/table.csv?table=kpis&{days}"),
            format!("/v1/audit.csv?{days}&site=main"),
        ] {
            let (status, body) = get(hq.addr(), &path);
            assert_eq!(status, 200, "{backend} {path}: {}", String::from_utf8_lossy(&body));
        }
    });
}
