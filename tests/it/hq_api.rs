//! HQ's HTTP API beyond sync: cross-site reports (JSON, CSV), the HTML overview, the reporting token, and the
//! limits on every route — against a real in-process HQ that kiosks synced demo data into.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use guidedesk::demo::{self, DemoOptions};
use guidedesk::hq::limits::{ApiOptions, RateLimit};
use guidedesk::hq::reports_api::{OUTBOX_HEADER, ReportsToken};
use guidedesk::hq::server::{self, MAX_BODY_BYTES, RunningHq};
use guidedesk::hq::store::HqStore;
use guidedesk::kiosk_sync::{self, Credential, SyncOptions};
use guidedesk::model::{AnyRecord, Moment, RecordKind, ReferenceData};
use guidedesk::reports::summary::summarize;
use guidedesk::reports::{Lang, Period, ReportParams, tables};
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset};

const TOKEN: &str = "reports-0123456789abcdef0123456789abcdef";

fn start(dir: &Path, api: ApiOptions) -> RunningHq {
    let store = HqStore::open(dir).unwrap();
    let options = crate::sync::loopback_options(100);
    server::start_with(store, &options, api).unwrap()
}

fn with_token() -> ApiOptions {
    ApiOptions { reports_token: Some(ReportsToken::new(TOKEN).unwrap()), ..ApiOptions::default() }
}

fn now() -> Moment {
    Moment(i64::try_from(server::now_ms()).unwrap())
}

struct Kiosk {
    store: Store,
    cred: Credential,
}

fn kiosk(hq: &RunningHq, dir: &Path, site: &str, desk: &str, seed: u64) -> Kiosk {
    let clock = Arc::new(ManualClock::new(now()));
    let store = Store::open_with(dir, StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    let code = hq.store().create_code(site, desk, server::now_ms(), 3_600_000).unwrap();
    let (cred, _) = kiosk_sync::enroll(&store, dir, &hq.url(), &code, None, false).unwrap();
    demo::generate(&store, DemoOptions { days: 10, per_day: 12, seed }).unwrap();
    let opts = SyncOptions { batch: 500, ..SyncOptions::default() };
    let r = kiosk_sync::sync_with(&store, &cred, &opts).unwrap();
    assert_eq!(r.pending, 0);
    Kiosk { store, cred }
}

fn records(store: &Store) -> Vec<AnyRecord> {
    let mut out = Vec::new();
    for kind in RecordKind::ALL {
        store
            .for_each_between(kind, Moment(i64::MIN), Moment(i64::MAX), |r| {
                out.push(r);
                Ok(())
            })
            .unwrap();
    }
    out
}

/// One HTTP/1.1 request; a write error (the server answered early and closed) still reads the answer.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes()).and_then(|()| s.write_all(body));
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, resp[split + 4..].to_vec())
}

pub(crate) fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    request(addr, "GET", path, &headers, b"")
}

pub(crate) fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

fn params(from: chrono::NaiveDate, to: chrono::NaiveDate) -> ReportParams {
    let offset = china_offset();
    ReportParams::new(Period::custom(from, to), offset, now().local_date(offset))
}

#[test]
fn report_endpoints_equal_summarize_over_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start(&dir.path().join("hq"), with_token());
    let a = kiosk(&hq, &dir.path().join("a"), "main", "d1", 7);
    let b = kiosk(&hq, &dir.path().join("b"), "east", "d1", 8);
    let refs = ReferenceData::bundled().unwrap();
    let today = now().local_date(china_offset());
    let from = today - chrono::Days::new(9);
    let period = params(from, today);

    let (ra, rb) = (records(&a.store), records(&b.store));
    let both: Vec<AnyRecord> = ra.iter().chain(rb.iter()).cloned().collect();
    for (site, recs) in [(Some("main"), &ra), (Some("east"), &rb), (None, &both)] {
        let q = format!(
            "/v1/reports/summary?from={from}&to={today}&lang=en{}",
            site.map_or(String::new(), |s| format!("&site={s}"))
        );
        let (status, head, body) = get(hq.addr(), &q, Some(TOKEN));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(head.contains("content-type: application/json"));
        let v = json(&body);
        let expected = summarize(recs.iter(), period, &refs);
        // Every figure equal; the interval bounds up to JSON's float printing.
        let want = serde_json::to_value(expected.headline()).unwrap();
        let (got, want) = (v["kpis"].as_array().unwrap(), want.as_array().unwrap());
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            for key in ["metric", "numerator", "denominator", "n", "target", "meets", "small_n", "formula"] {
                assert_eq!(g[key], w[key], "site {site:?} {key} of {}", w["metric"]);
            }
            let ci =
                |x: &serde_json::Value| x["ci95"].as_array().map(|a| (a[0].as_f64().unwrap(), a[1].as_f64().unwrap()));
            match (ci(g), ci(w)) {
                (Some(a), Some(b)) => assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9, "{a:?} {b:?}"),
                (a, b) => assert_eq!(a, b),
            }
        }
        let want_tables = tables::monthly(&expected, &refs, Lang::En);
        let got_tables = v["tables"].as_array().unwrap();
        assert_eq!(got_tables.len(), want_tables.len());
        for (g, w) in got_tables.iter().zip(&want_tables) {
            assert_eq!(g["name"], w.name);
            let rows: Vec<Vec<&str>> = w.rows.iter().map(|r| r.iter().map(|c| c.text.as_str()).collect()).collect();
            assert_eq!(g["rows"], serde_json::to_value(rows).unwrap(), "table {}", w.name);
        }
        // Something was really aggregated.
        assert!(expected.agg.arrivals.total > 0);
        assert_eq!(v["site"], serde_json::to_value(site).unwrap());
    }

    // One site's CSV: the shared writer's bytes, BOM and header of column keys.
    let (status, head, body) = get(
        hq.addr(),
        &format!("/v1/reports/table.csv?table=kpis&from={from}&to={today}&site=main&lang=en"),
        Some(TOKEN),
    );
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/csv"), "{head}");
    assert!(head.contains("content-disposition: attachment;"), "{head}");
    let expected = tables::kpis(&summarize(ra.iter(), period, &refs), Lang::En);
    let mut want = Vec::new();
    expected.write_csv(&mut want).unwrap();
    assert_eq!(body, want);
    assert!(body.starts_with(b"\xEF\xBB\xBF"));
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    let header = text.split("\r\n").next().unwrap();
    assert_eq!(header, expected.columns.iter().map(|c| c.key).collect::<Vec<_>>().join(","));
    assert_eq!(text.matches("\r\n").count(), expected.rows.len() + 1);

    // Bad queries name the problem.
    for (q, needle) in [
        (format!("/v1/reports/table.csv?table=nope&from={from}&to={today}"), "no table \"nope\""),
        (format!("/v1/reports/summary?from={today}"), "to is missing"),
        ("/v1/reports/summary?from=2026-13-01&to=2026-12-01".to_string(), "is not a date"),
        (format!("/v1/reports/summary?from={today}&to={from}"), "is after"),
    ] {
        let (status, _, body) = get(hq.addr(), &q, Some(TOKEN));
        let v = json(&body);
        assert_eq!((status, v["code"].as_str()), (400, Some("bad_request")), "{q}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{q}: {v}");
    }

    // Auth: no token, a wrong one, a kiosk credential.
    let q = format!("/v1/reports/summary?from={from}&to={today}");
    for (token, status) in
        [(None, 401), (Some("wrong-token-wrong-token-wrong-token"), 401), (Some(a.cred.token.as_str()), 403)]
    {
        for path in [q.as_str(), "/v1/overview", "/v1/reports/table.csv?table=kpis"] {
            let (got, _, body) = get(hq.addr(), path, token);
            assert_eq!(got, status, "{path} {token:?}");
            assert_eq!(json(&body)["code"], "unauthorized");
        }
    }
}

#[test]
fn overview_lists_sites_and_kiosks_and_escapes_text() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start(&dir.path().join("hq"), with_token());
    let k = kiosk(&hq, &dir.path().join("a"), "<b>site&1</b>", "desk\"<i>", 3);
    // The kiosk's own sync told HQ what followed each batch: nothing, after its last one.
    let (_, _, body) = get(hq.addr(), "/v1/overview?lang=en", Some(TOKEN));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<td class=\"n\">0 ("), "records waiting after a full sync: {html}");
    assert!(!html.contains(">unknown<"), "{html}");
    // A push carrying the outbox header is remembered for the overview (an empty batch asks for the cursor).
    let push = guidedesk_sync::protocol::PushRequest {
        device: k.store.device(),
        sent_at_ms: server::now_ms(),
        ops: Vec::new(),
    };
    let auth = format!("Bearer {}", k.cred.token);
    let (status, _, _) = request(
        hq.addr(),
        "POST",
        "/v1/push",
        &[("authorization", &auth), (OUTBOX_HEADER, "7")],
        &guidedesk_sync::codec::encode(&push).unwrap(),
    );
    assert_eq!(status, 200);
    let (status, head, body) = get(hq.addr(), "/v1/overview?lang=en", Some(TOKEN));
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("&lt;b&gt;site&amp;1&lt;/b&gt;"), "{html}");
    assert!(html.contains("desk&quot;&lt;i&gt;"), "{html}");
    assert!(!html.contains("<b>site") && !html.contains("<i>"), "raw markup leaked");
    assert!(html.contains("<td class=\"n\">7 ("), "records waiting: {html}");
    assert!(html.contains(&uuid::Uuid::from_u128(k.store.device().0).to_string()));
    assert!(html.contains("Overall satisfaction") || html.contains("satisfaction"), "KPIs listed");

    // A dispute taken at the desk is named under the site's escalations (complainant masked), with the 督办 counts.
    let form = guidedesk::model::CaseForm {
        grade: Some(guidedesk::model::CaseGrade::Dispute),
        channel: Some(guidedesk::model::CaseChannel::InPerson),
        complainant: "王小明".into(),
        departments: vec!["cardio".into()],
        facts: "术后并发症，家属要求说法".into(),
        ..guidedesk::model::CaseForm::default()
    };
    let by = guidedesk::model::StaffRef("D001".into());
    k.store.write(|ctx| guidedesk::command::cases::new_case(ctx, &form, by.clone())).unwrap();
    assert_eq!(kiosk_sync::sync_with(&k.store, &k.cred, &SyncOptions::default()).unwrap().pending, 0);
    let html = String::from_utf8(get(hq.addr(), "/v1/overview?lang=en", Some(TOKEN)).2).unwrap();
    assert!(html.contains("<h3>Escalations</h3>"), "{html}");
    assert!(html.contains("<td>王**</td>"), "the complainant, masked: {html}");
    assert!(!html.contains("王小明"), "never the full name");
    assert!(html.contains("past their deadline"), "{html}");
}

#[test]
fn reports_are_refused_when_no_token_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start(&dir.path().join("hq"), ApiOptions::default());
    let (status, _, body) = get(hq.addr(), "/v1/overview", Some(TOKEN));
    assert_eq!((status, json(&body)["code"].as_str()), (403, Some("reports_disabled")));
}

#[test]
fn oversized_body_gets_413_json() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start(&dir.path().join("hq"), ApiOptions::default());
    // A body is read only for a valid credential (an unknown one is refused first).
    let code = hq.store().create_code("main", "d1", server::now_ms(), 3_600_000).unwrap();
    let device = guidedesk_sync::DeviceId(uuid::Uuid::now_v7().as_u128());
    let token = hq.store().enroll(&code, device, server::now_ms()).unwrap().unwrap().token;
    let bearer = format!("Bearer {token}");
    let body = vec![0u8; MAX_BODY_BYTES + 1];
    let (status, head, body) = request(hq.addr(), "POST", "/v1/push", &[("authorization", &bearer)], &body);
    assert_eq!(status, 413);
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(json(&body)["code"], "payload_too_large");
}

#[test]
fn rate_limit_answers_429_json_with_retry_after_per_client() {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiOptions { rate_limit: Some(RateLimit { per_second: 0.2, burst: 2 }), ..with_token() };
    let hq = start(&dir.path().join("hq"), api);
    for _ in 0..2 {
        assert_eq!(get(hq.addr(), "/v1/health", None).0, 200);
    }
    let (status, head, body) = get(hq.addr(), "/v1/health", None);
    assert_eq!(status, 429);
    assert!(head.contains("retry-after: 5"), "{head}");
    assert!(head.contains("x-guidedesk-server-time: "), "{head}");
    let v = json(&body);
    assert_eq!(v["code"], "rate_limited");
    // Another credential has its own bucket.
    assert_ne!(get(hq.addr(), "/v1/overview", Some(TOKEN)).0, 429);
}

#[test]
fn openapi_json_documents_exactly_the_routed_paths_with_json_errors() {
    use guidedesk_sync::protocol::{ENROLL_PATH, PULL_PATH, PUSH_PATH};
    let dir = tempfile::tempdir().unwrap();
    let hq = start(&dir.path().join("hq"), with_token());
    let (status, head, body) = get(hq.addr(), "/openapi.json", None);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"));
    let spec = json(&body);
    assert_eq!(spec, serde_json::to_value(server::openapi()).unwrap(), "served = generated");
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    // The sync protocol's own constants are what is routed and documented.
    for p in [
        PUSH_PATH,
        PULL_PATH,
        ENROLL_PATH,
        "/v1/health",
        "/v1/reports/summary",
        "/v1/reports/table.csv",
        "/v1/audit.csv",
        "/v1/overview",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the spec");
    }
    assert!(spec["components"]["schemas"]["ErrorJson"]["properties"]["code"].is_object());
    assert!(spec["components"]["schemas"]["SummaryJson"].is_object());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            // Every documented operation is routed: it never falls through to the 404 fallback or gets 405.
            let (got, _, body) = request(hq.addr(), &method.to_ascii_uppercase(), path, &[], b"");
            assert!(got != 404 && got != 405, "{method} {path}: {got} {}", String::from_utf8_lossy(&body));
            // Errors are documented as the JSON error body.
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("429"), "{method} {path}");
            for (code, r) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    let schema = &r["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorJson", "{method} {path} {code}");
                }
            }
        }
    }
    // A path that is not documented is not routed.
    assert_eq!(get(hq.addr(), "/v1/reports/other", Some(TOKEN)).0, 404);
}

#[test]
fn records_from_a_kiosk_with_a_wrong_clock_are_filed_under_corrected_time() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start(&dir.path().join("hq"), with_token());
    let ahead = 3 * 24 * 3_600_000_i64;
    let kdir = dir.path().join("k");
    let clock = Arc::new(ManualClock::new(Moment(now().0 + ahead)));
    let store = Store::open_with(&kdir, StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    let code = hq.store().create_code("main", "d1", server::now_ms(), 3_600_000).unwrap();
    let (cred, _) = kiosk_sync::enroll(&store, &kdir, &hq.url(), &code, None, false).unwrap();
    demo::generate(&store, DemoOptions { days: 4, per_day: 10, seed: 5 }).unwrap();
    let r = kiosk_sync::sync_with(&store, &cred, &SyncOptions { batch: 500, ..SyncOptions::default() }).unwrap();
    assert_eq!(r.pending, 0);
    let skew = hq.store().devices().unwrap()[0].1.skew_ms;
    assert!((skew - ahead).abs() < 60_000, "HQ saw the skew: {skew}");

    let today = now().local_date(china_offset());
    // The kiosk filed its records up to three days in the future; HQ files none there.
    let future =
        format!("/v1/reports/summary?from={}&to={}", today + chrono::Days::new(1), today + chrono::Days::new(4));
    let v = json(&get(hq.addr(), &future, Some(TOKEN)).2);
    let by_day = v["tables"].as_array().unwrap().iter().find(|t| t["name"] == "arrivals_by_day").unwrap();
    let rows = by_day["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r[2] == "0"), "no arrivals in the future: {by_day}");
    // Discharge calls are filed under the HIS's discharge date and bookings under the day booked, calendar dates no
    // device clock touches (the demo on a fast clock dated its discharges and bookings ahead; whether a booking
    // falls in these days depends on the holiday calendar around today): every other figure is empty there.
    let skewable =
        |k: &&serde_json::Value| k["metric"] != "inpatient_followup_rate" && k["metric"] != "appointment_arrival_rate";
    assert!(v["kpis"].as_array().unwrap().iter().filter(skewable).all(|k| k["denominator"] == 0), "{v}");
    // Over the days they really happened, the figures are those of the records moved back by the skew.
    let from = today - chrono::Days::new(9);
    let v = json(&get(hq.addr(), &format!("/v1/reports/summary?from={from}&to={today}"), Some(TOKEN)).2);
    let mut filed = Vec::new();
    for rec in records(&store) {
        let stored = hq.store().record(rec.kind(), rec.id().as_u128()).unwrap().unwrap();
        assert_eq!(stored.corrected_business_ms(), rec.occurred_at().0 - stored.skew_ms);
        filed.push(guidedesk::hq::reports_api::filed_record(&stored));
    }
    let expected = summarize(filed.iter(), params(from, today), &ReferenceData::bundled().unwrap());
    assert!(expected.agg.arrivals.total > 0);
    assert_eq!(v["records"], filed.len(), "every record lands in the real period");
    let got: Vec<u64> = v["kpis"].as_array().unwrap().iter().map(|k| k["denominator"].as_u64().unwrap()).collect();
    let want: Vec<u64> = expected.headline().iter().map(|k| k.denominator).collect();
    assert_eq!(got, want);
}

#[test]
fn audit_csv_lists_every_kiosks_log_with_its_chain_checked_at_hq() {
    use guidedesk::model::{AuditAction, AuditTarget, RecordId, StaffRef};
    let dir = tempfile::tempdir().unwrap();
    let hq = start(&dir.path().join("hq"), with_token());
    let a = kiosk(&hq, &dir.path().join("a"), "east", "d1", 1);
    let b = kiosk(&hq, &dir.path().join("b"), "west", "d1", 2);
    for (k, who) in [(&a, "C1"), (&b, "S1")] {
        let target = Some(AuditTarget { kind: RecordKind::Case, id: RecordId::new_v7(now()) });
        for action in [AuditAction::SignIn, AuditAction::View, AuditAction::Reveal, AuditAction::SignOut] {
            k.store.audit(&StaffRef(who.into()), action, target, "test").unwrap();
        }
        let opts = SyncOptions { batch: 500, ..SyncOptions::default() };
        assert_eq!(kiosk_sync::sync_with(&k.store, &k.cred, &opts).unwrap().pending, 0);
    }
    let today = now().local_date(china_offset());
    let path = format!("/v1/audit.csv?from={today}&to={today}");
    assert_eq!(get(hq.addr(), &path, None).0, 401, "the reports token is needed");
    let (status, head, body) = get(hq.addr(), &path, Some(TOKEN));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(head.contains("text/csv"));
    let text = String::from_utf8(body).unwrap();
    let mut lines = text.trim_start_matches('\u{feff}').lines();
    assert_eq!(
        lines.next().unwrap(),
        "site,device,id,at,actor,action,target_kind,target_id,detail,chain_index,prev_hash,hash,chain"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r[12] == "ok"), "every chain verifies at HQ: {rows:?}");
    assert_eq!(rows.iter().filter(|r| r[0] == "east" && r[4] == "C1").count(), 4);
    assert_eq!(rows.iter().filter(|r| r[5] == "reveal").count(), 2);
    // One site only.
    let (_, _, body) = get(hq.addr(), &format!("{path}&site=west"), Some(TOKEN));
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), 1 + 4);
    // A bad period is a JSON 400.
    let (status, _, body) = get(hq.addr(), "/v1/audit.csv?from=2026-13-01&to=2026-12-01", Some(TOKEN));
    assert_eq!(status, 400);
    assert!(json(&body)["message"].as_str().unwrap().contains("from="));
}
