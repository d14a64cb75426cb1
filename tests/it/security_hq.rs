//! Regression tests for the hostile-network review of HQ (SECURITY.md, "Attacks tried"): one per finding, named
//! after it, plus the load test of the acceptance (idle sockets and unauthenticated bodies while a real desk syncs).
//! Everything runs on loopback only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use guidedesk::demo::{self, DemoOptions};
use guidedesk::hq::limits::{ApiOptions, RateLimit};
use guidedesk::hq::reports_api::ReportsToken;
use guidedesk::hq::server::{self, RunningHq};
use guidedesk::kiosk_sync;
use guidedesk::model::{AnyRecord, Moment, RecordKind};
use guidedesk::store::decode_op_payload;
use guidedesk_sync::protocol::{PushOutcome, PushRequest, PushResponse};
use guidedesk_sync::{DeviceId, Hlc, Op, codec};

use super::hq_api::{get, json, request};
use super::sync::{
    Backend, PgSchema, enrol, hq_cli, now, now_ms, open_backend, options, reference_variant, spawn_hq_binary, start_hq,
    sync_until_done, write_arrivals,
};

const TOKEN: &str = "security-test-reporting-token-0123456789";

use super::sync::on_both_backends;

on_both_backends!(
    finding_3_a_device_cannot_change_another_sites_record,
    finding_3_times_outside_the_window_and_unknown_codes_are_quarantined_until_an_admin_acts,
    finding_4_a_far_future_record_does_not_break_hq_reports,
    finding_6_storage_texts_never_reach_a_client,
);

fn start_embedded(dir: &Path, api: ApiOptions) -> RunningHq {
    let store = guidedesk::hq::store::HqStore::open(dir).unwrap();
    server::start_with(store, &super::sync::loopback_options(100), api).unwrap()
}

fn start_on(b: &Backend, dir: &Path, api: ApiOptions) -> RunningHq {
    server::start_with(open_backend(b, dir), &super::sync::loopback_options(100), api).unwrap()
}

fn with_token() -> ApiOptions {
    ApiOptions { reports_token: Some(ReportsToken::new(TOKEN).unwrap()), ..ApiOptions::default() }
}

/// A device enrolled straight in HQ's store; its credential.
fn raw_device(hq: &RunningHq, site: &str) -> (DeviceId, String) {
    let code = hq.store().create_code(site, "raw", now_ms(), 3_600_000).unwrap();
    let device = DeviceId(uuid::Uuid::now_v7().as_u128());
    (device, hq.store().enroll(&code, device, now_ms()).unwrap().unwrap().token)
}

/// Pushes `ops` as `device` over HTTP; the accepted batch's quarantined ops (seq, reason) and applied count.
fn push(hq: &RunningHq, device: DeviceId, token: &str, ops: Vec<Op>) -> (u32, Vec<(u64, String)>) {
    let body = codec::encode(&PushRequest { device, sent_at_ms: now_ms(), ops }).unwrap();
    let auth = format!("Bearer {token}");
    let (status, _, resp) = request(
        hq.addr(),
        "POST",
        "/v1/push",
        &[("authorization", &auth), ("content-type", "application/vnd.guidedesk.sync")],
        &body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    match codec::decode::<PushResponse>(&resp).unwrap().outcome {
        PushOutcome::Accepted(ack) => (ack.applied, ack.quarantined),
        PushOutcome::Gap { expected } => panic!("gap: HQ expects {expected}"),
    }
}

/// `record` as op `seq` of another device, stamped now.
fn op_of(seq: u64, record: &AnyRecord) -> Op {
    let (_, payload) = guidedesk::model::codec::encode_any(record).unwrap();
    Op {
        seq,
        key: guidedesk_sync::RecordKey { kind: record.kind().code(), id: record.id().as_u128() },
        schema: guidedesk::model::RECORD_SCHEMA,
        stamp: Hlc { wall_ms: now_ms(), logical: u32::try_from(seq).unwrap(), node: 99 },
        payload,
    }
}

/// Records a desk wrote, from its outbox (latest copy of each).
fn outbox_records(store: &guidedesk::store::Store) -> Vec<AnyRecord> {
    let mut by_id = std::collections::BTreeMap::new();
    for op in store.outbox_after(0, usize::MAX).unwrap() {
        let r = decode_op_payload(&op).unwrap();
        by_id.insert((op.key.kind, op.key.id), r);
    }
    by_id.into_values().collect()
}

/// Reads whatever the server sends within `wait`; `None` if it sent nothing and kept the connection open.
fn read_within(s: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = vec![0u8; 4096];
    match s.read(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
        Err(_) => Some(Vec::new()),
    }
}

/// Opens a push with a junk credential that announces a 32 MiB body and sends only its first KiB.
fn junk_push(addr: SocketAddr, i: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/push HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer junk-{i:04}-{}\r\n\
         content-type: application/vnd.guidedesk.sync\r\ncontent-length: {}\r\n\r\n",
        uuid::Uuid::now_v7().simple(),
        server::MAX_BODY_BYTES
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&[0u8; 1024]).unwrap();
    s
}

// ---------------------------------------------------------------------------------------------------------------
// Finding 1: denial of service without a credential

#[test]
fn finding_1_no_body_is_read_before_the_credential_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_embedded(&dir.path().join("hq"), ApiOptions { rate_limit: None, ..ApiOptions::default() });
    // Forty junk credentials each announcing 32 MiB and holding back the rest: each is answered 401 at once.
    let mut conns: Vec<TcpStream> = (0..40).map(|i| junk_push(hq.addr(), i)).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        let answer = read_within(s, Duration::from_secs(5)).unwrap_or_else(|| panic!("push {i}: no answer"));
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 401"), "push {i}: {text}");
    }
    // Enrolment needs no credential, but its body is small: a larger one is refused from its length alone.
    let mut s = TcpStream::connect(hq.addr()).unwrap();
    s.write_all(
        b"POST /v1/enroll HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{",
    )
    .unwrap();
    let answer = read_within(&mut s, Duration::from_secs(5)).expect("an answer before the body");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 413"));
    // A pull body is small too, even with a valid credential.
    let (device, token) = raw_device(&hq, "main");
    let auth = format!("Bearer {token}");
    let (status, _, body) = request(hq.addr(), "POST", "/v1/pull", &[("authorization", &auth)], &vec![1u8; 64 * 1024]);
    assert_eq!((status, json(&body)["code"].as_str()), (413, Some("payload_too_large")), "{device:?}");
}

#[test]
fn finding_1_idle_trickling_and_surplus_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiOptions { header_timeout: Duration::from_secs(2), max_connections: 8, ..ApiOptions::default() };
    let hq = start_embedded(&dir.path().join("hq"), api);
    let mut idle: Vec<TcpStream> = (0..7).map(|_| TcpStream::connect(hq.addr()).unwrap()).collect();
    let mut trickle = TcpStream::connect(hq.addr()).unwrap();
    trickle.write_all(b"GET /v1/hea").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The cap is reached: one more connection is closed at once.
    let mut surplus = TcpStream::connect(hq.addr()).unwrap();
    assert_eq!(read_within(&mut surplus, Duration::from_secs(1)), Some(Vec::new()), "closed at once");
    // Past the header timeout every idle and trickling connection is gone, and HQ serves again.
    let started = Instant::now();
    for s in idle.iter_mut().chain(std::iter::once(&mut trickle)) {
        let got = read_within(s, Duration::from_secs(5));
        assert!(got.as_ref().is_some_and(|b| b.is_empty() || b.starts_with(b"HTTP/1.1 408")), "{got:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "closed after the 2 s header timeout");
    assert_eq!(get(hq.addr(), "/v1/health", None).0, 200);
    // A kept-alive connection that goes quiet after a request is closed too.
    let mut kept = TcpStream::connect(hq.addr()).unwrap();
    kept.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert!(read_within(&mut kept, Duration::from_secs(2)).is_some_and(|b| b.starts_with(b"HTTP/1.1 200")));
    assert_eq!(read_within(&mut kept, Duration::from_secs(5)), Some(Vec::new()), "idle keep-alive closed");
}

#[test]
fn finding_1_rate_limit_keys_on_the_address_until_a_credential_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiOptions { rate_limit: Some(RateLimit { per_second: 0.1, burst: 3 }), ..with_token() };
    let hq = start_embedded(&dir.path().join("hq"), api);
    // Every guess uses a new bearer token: before, each got a bucket of its own and none was ever limited.
    let statuses: Vec<u16> = (0..6)
        .map(|i| get(hq.addr(), "/v1/reports/summary", Some(&format!("guess-{i}-{}", "x".repeat(40)))).0)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
    // The reporting client (a verified credential) has its own bucket.
    assert_ne!(get(hq.addr(), "/v1/overview", Some(TOKEN)).0, 429);
}

/// The acceptance's load test: 2 000 idle connections and 40 unauthenticated 32 MiB bodies held open while a real
/// desk syncs; the desk succeeds within 5 s and HQ's peak RSS stays under 300 MB.
#[test]
fn finding_1_a_desk_syncs_while_hq_is_flooded_by_idle_sockets_and_unauthenticated_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let hq_dir = dir.path().join("hq");
    let (mut child, addr) = spawn_hq_binary(&hq_dir);
    let code = hq_cli(&hq_dir, &["enroll-code", "--site", "main", "--desk", "d1"]);
    let code = code.lines().last().unwrap().trim().to_string();
    let kdir = dir.path().join("k");
    let (store, clock) = super::sync::open_kiosk(&kdir, now());
    let (cred, _) = kiosk_sync::enroll(&store, &kdir, &format!("http://{addr}"), &code, None, false).unwrap();
    let k = super::sync::Kiosk { store, clock, cred };
    write_arrivals(&k.store, 2000, 500);
    let idle: Vec<TcpStream> = (0..2000).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let bodies: Vec<std::thread::JoinHandle<()>> = (0..40)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = junk_push(addr, i);
                s.set_write_timeout(Some(Duration::from_secs(8))).unwrap();
                // Try to send the rest of the 32 MiB but the last byte; HQ never reads it.
                let chunk = vec![0u8; 1024 * 1024];
                for _ in 0..31 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_secs(3));
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let report = sync_until_done(&k, &options(1000), 1);
    let took = started.elapsed();
    assert_eq!(report.pending, 0);
    assert!(took < Duration::from_secs(5), "the desk's sync took {took:?} under the flood");
    for b in bodies {
        b.join().unwrap();
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    println!("load test: sync of 2 000 records in {took:?}; HQ peak RSS {} MB", peak_kb / 1024);
    assert!(peak_kb < 300 * 1024, "HQ peak RSS {peak_kb} kB");
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------------------------------
// Finding 2: enrolment replay undoes revocation and moves devices

fn enrol_http(addr: SocketAddr, code: &str, device: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "code": code, "device": device }).to_string();
    let (status, _, resp) =
        request(addr, "POST", "/v1/enroll", &[("content-type", "application/json")], body.as_bytes());
    (status, json(&resp))
}

#[test]
fn finding_2_enrolment_replay_neither_lifts_a_revocation_nor_moves_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let hq_dir = dir.path().join("hq");
    let (mut child, addr) = spawn_hq_binary(&hq_dir);
    let code_of = |args: &[&str]| hq_cli(&hq_dir, args).lines().last().unwrap().trim().to_string();
    let west = code_of(&["enroll-code", "--site", "west", "--desk", "d1"]);
    let a = uuid::Uuid::now_v7().to_string();
    let (status, first) = enrol_http(addr, &west, &a);
    assert_eq!(status, 200, "{first}");
    hq_cli(&hq_dir, &["revoke", "--device", &a]);
    // Replaying the used code: refused, and the device stays revoked.
    let (status, body) = enrol_http(addr, &west, &a);
    assert_eq!((status, body["code"].as_str()), (403, Some("device_revoked")), "{body}");
    let devices: serde_json::Value = serde_json::from_str(&hq_cli(&hq_dir, &["devices"])).unwrap();
    assert_eq!(devices[0]["revoked"], true);
    // An unused code of another site, bound to the device's id: refused, the device stays at its site.
    let east = code_of(&["enroll-code", "--site", "east", "--desk", "d9"]);
    let (status, body) = enrol_http(addr, &east, &a);
    assert_eq!(status, 403, "{body}");
    // The used code is refused to any other device as well.
    assert_eq!(enrol_http(addr, &west, &uuid::Uuid::now_v7().to_string()).1["code"], "code_used");
    // Only `reinstate` lifts the revocation; the old credential then works again.
    hq_cli(&hq_dir, &["reinstate", "--device", &a]);
    let auth = format!("Bearer {}", first["token"].as_str().unwrap());
    let empty = codec::encode(&PushRequest {
        device: DeviceId(uuid::Uuid::parse_str(&a).unwrap().as_u128()),
        sent_at_ms: now_ms(),
        ops: Vec::new(),
    })
    .unwrap();
    assert_eq!(request(addr, "POST", "/v1/push", &[("authorization", &auth)], &empty).0, 200);
    // An enrolled device takes a new credential only from a code issued for it, at its own site.
    let (status, body) = enrol_http(addr, &east, &a);
    assert_eq!((status, body["code"].as_str()), (403, Some("code_invalid")), "{body}");
    let for_a = code_of(&["enroll-code", "--site", "west", "--desk", "d2", "--device", &a]);
    let (status, second) = enrol_http(addr, &for_a, &a);
    assert_eq!((status, second["site"].as_str()), (200, Some("west")), "{second}");
    assert_eq!(request(addr, "POST", "/v1/push", &[("authorization", &auth)], &empty).0, 401, "old credential");
    let devices: serde_json::Value = serde_json::from_str(&hq_cli(&hq_dir, &["devices"])).unwrap();
    assert_eq!((devices[0]["site"].as_str(), devices[0]["revoked"].as_bool()), (Some("west"), Some(false)));
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------------------------------
// Finding 3: any device can overwrite any record

fn finding_3_a_device_cannot_change_another_sites_record(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(b, &dir.path().join("hq"), 100);
    let w = enrol(&hq, &dir.path().join("w"), "west", "d1", &hq.url());
    write_arrivals(&w.store, 3, 3);
    sync_until_done(&w, &options(100), 1);
    let AnyRecord::Arrival(original) = outbox_records(&w.store).remove(0) else { panic!("an arrival") };
    let mut changed = original.clone();
    let stamp = Hlc { wall_ms: now_ms() + 1000, logical: 0, node: 1 };
    changed.department.set("ghost".into(), stamp);
    let changed = AnyRecord::Arrival(changed);
    // A device of another site: quarantined with the reason, the record untouched.
    let (east, token) = raw_device(&hq, "east");
    let (applied, quarantined) = push(&hq, east, &token, vec![op_of(1, &changed)]);
    assert_eq!(applied, 0);
    assert_eq!(quarantined.len(), 1);
    assert!(quarantined[0].1.contains("belongs to site \"west\""), "{quarantined:?}");
    let kind = RecordKind::Arrival;
    let held = hq.store().record(kind, original.id.as_u128()).unwrap().unwrap();
    assert_eq!(held.record, AnyRecord::Arrival(original.clone()), "unchanged at HQ");
    // An admin cannot release it either: the site rule has no override.
    let released = hq.store().quarantine_release(east, 1, now_ms()).unwrap();
    assert!(matches!(released, Some(Err(ref r)) if r.contains("belongs to site")), "{released:?}");
    // Another device of the record's own site may change it.
    let (west2, token2) = raw_device(&hq, "west");
    let mut same_site = original.clone();
    same_site.department.set(original.department.value.clone(), stamp);
    let (applied, quarantined) = push(&hq, west2, &token2, vec![op_of(1, &AnyRecord::Arrival(same_site))]);
    assert_eq!((applied, quarantined.len()), (1, 0));
}

fn finding_3_times_outside_the_window_and_unknown_codes_are_quarantined_until_an_admin_acts(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(b, &dir.path().join("hq"), 100);
    hq.store().import_reference(&reference_variant("window"), None, 100).unwrap();
    let w = enrol(&hq, &dir.path().join("w"), "main", "d1", &hq.url());
    write_arrivals(&w.store, 4, 4);
    let AnyRecord::Arrival(template) = outbox_records(&w.store).remove(0) else { panic!("an arrival") };
    let fresh = |f: &dyn Fn(&mut guidedesk::model::Arrival)| {
        let mut a = template.clone();
        a.id = guidedesk::model::RecordId::new_v7(now());
        f(&mut a);
        AnyRecord::Arrival(a)
    };
    let far_future = fresh(&|a| a.arrived_at = Moment(i64::MAX));
    let ancient = fresh(&|a| a.arrived_at = Moment(0));
    let unknown_code = fresh(&|a| a.department.value = "no-such-department".into());
    let good = fresh(&|_| {});
    let (device, token) = raw_device(&hq, "main");
    let ops: Vec<Op> =
        [&far_future, &ancient, &unknown_code, &good].iter().enumerate().map(|(i, r)| op_of(i as u64 + 1, r)).collect();
    let (applied, quarantined) = push(&hq, device, &token, ops);
    assert_eq!(applied, 1, "{quarantined:?}");
    let reasons: Vec<(u64, &str)> = quarantined.iter().map(|(s, r)| (*s, r.as_str())).collect();
    assert_eq!(reasons.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(reasons[0].1.contains("\"occurred_at\""), "{reasons:?}");
    assert!(reasons[1].1.contains("\"occurred_at\""), "{reasons:?}");
    assert!(reasons[2].1.contains("\"department\""), "{reasons:?}");
    for r in [&far_future, &ancient, &unknown_code] {
        assert!(hq.store().record(RecordKind::Arrival, r.id().as_u128()).unwrap().is_none());
    }
    // An admin releases the unknown code (a department added since) and drops the rest; receipts stay.
    assert_eq!(hq.store().quarantine_release(device, 3, now_ms()).unwrap(), Some(Ok(())));
    assert!(hq.store().record(RecordKind::Arrival, unknown_code.id().as_u128()).unwrap().is_some());
    assert!(hq.store().quarantine_drop(device, 1).unwrap());
    assert!(hq.store().quarantine_drop(device, 2).unwrap());
    assert!(!hq.store().quarantine_drop(device, 2).unwrap());
    assert!(hq.store().quarantined().unwrap().is_empty());
    let receipts = hq.store().receipts().unwrap();
    assert_eq!(receipts.iter().filter(|((d, _), _)| *d == device).count(), 4, "every op still acknowledged once");
    assert_eq!(hq.store().quarantine_release(device, 1, now_ms()).unwrap(), None);
}

#[test]
fn finding_3_quarantine_cli_lists_shows_releases_and_drops() {
    let dir = tempfile::tempdir().unwrap();
    let hq_dir = dir.path().join("hq");
    let device;
    {
        let hq = start_embedded(&hq_dir, ApiOptions::default());
        let w = enrol(&hq, &dir.path().join("w"), "main", "d1", &hq.url());
        write_arrivals(&w.store, 2, 2);
        let records = outbox_records(&w.store);
        let (d, token) = raw_device(&hq, "main");
        device = d;
        let bad = |r: &AnyRecord| {
            let AnyRecord::Arrival(mut a) = r.clone() else { panic!("an arrival") };
            a.arrived_at = Moment(i64::MAX);
            AnyRecord::Arrival(a)
        };
        let (applied, quarantined) =
            push(&hq, device, &token, vec![op_of(1, &bad(&records[0])), op_of(2, &bad(&records[1]))]);
        assert_eq!((applied, quarantined.len()), (0, 2));
        hq.shutdown().unwrap();
    }
    let dev = uuid::Uuid::from_u128(device.0).to_string();
    let list: serde_json::Value = serde_json::from_str(&hq_cli(&hq_dir, &["quarantine", "list"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["device"], dev);
    assert!(list[0]["reason"].as_str().unwrap().contains("occurred_at"));
    assert!(list[0].get("payload").is_none(), "no personal data in the list");
    let shown: serde_json::Value =
        serde_json::from_str(&hq_cli(&hq_dir, &["quarantine", "show", "--device", &dev, "--seq", "1"])).unwrap();
    assert_eq!(shown["kind"], "arrival");
    assert!(shown["payload"]["Arrival"]["name"].is_string(), "{shown}");
    hq_cli(&hq_dir, &["quarantine", "release", "--device", &dev, "--seq", "1"]);
    hq_cli(&hq_dir, &["quarantine", "drop", "--device", &dev, "--seq", "2"]);
    let list: serde_json::Value = serde_json::from_str(&hq_cli(&hq_dir, &["quarantine", "list"])).unwrap();
    assert!(list.as_array().unwrap().is_empty());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .args(["quarantine", "drop", "--device", &dev, "--seq", "2", "--data-dir"])
        .arg(&hq_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no op 2"), "{}", String::from_utf8_lossy(&out.stderr));
}

// ---------------------------------------------------------------------------------------------------------------
// Finding 4: one bad record breaks HQ reports

fn finding_4_a_far_future_record_does_not_break_hq_reports(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_on(b, &dir.path().join("hq"), with_token());
    // A desk's real demo data, and one of its cases closed at the end of time.
    let kdir = dir.path().join("k");
    let (store, _clock) = super::sync::open_kiosk(&kdir, now());
    demo::generate(&store, DemoOptions { days: 5, per_day: 10, seed: 4 }).unwrap();
    let case = outbox_records(&store).into_iter().find(|r| r.kind() == RecordKind::Case).expect("the demo has a case");
    let AnyRecord::Case(mut case) = case else { unreachable!() };
    case.closed_at.value = Some(Moment(i64::MAX));
    case.closed_at.stamp = Hlc { wall_ms: now_ms(), logical: 0, node: 5 };
    let bad = AnyRecord::Case(case);
    let (device, token) = raw_device(&hq, "main");
    let (_, quarantined) = push(&hq, device, &token, vec![op_of(1, &bad)]);
    assert!(quarantined.first().is_some_and(|(_, r)| r.contains("\"closed_at\"")), "{quarantined:?}");
    // An admin releases it anyway (or it was stored before HQ checked times): reports still answer.
    assert_eq!(hq.store().quarantine_release(device, 1, now_ms()).unwrap(), Some(Ok(())));
    let today = now().local_date(guidedesk::store::china_offset());
    let from = (today - chrono::Days::new(10)).format("%Y-%m-%d").to_string();
    let to = today.format("%Y-%m-%d").to_string();
    let id = bad.id().0.to_string();
    for path in [
        format!("/v1/reports/summary?from={from}&to={to}"),
        format!("/v1/reports/table.csv?table=kpis&from={from}&to={to}"),
        format!("/v1/overview?from={from}&to={to}"),
        "/v1/overview".to_string(),
    ] {
        let (status, _, body) = get(hq.addr(), &path, Some(TOKEN));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "{path}: {text}");
        assert!(!text.contains("panicked") && !text.contains("overflow"), "{path}: {text}");
        // The summary and the overview name the record they left out.
        if !path.contains("table.csv") && path.contains("from=") {
            assert!(text.contains(&id), "{path} names the skipped case: {text}");
        }
    }
    let (_, _, body) = get(hq.addr(), &format!("/v1/reports/summary?from={from}&to={to}"), Some(TOKEN));
    let summary = json(&body);
    assert_eq!(summary["skipped_count"], 1, "{summary}");
    assert!(summary["skipped"][0]["reason"].as_str().unwrap().contains("closed_at"), "{summary}");
}

// ---------------------------------------------------------------------------------------------------------------
// Finding 6: database errors leak and become 503

fn finding_6_storage_texts_never_reach_a_client(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(b, &dir.path().join("hq"), 100);
    // A NUL byte in the enrolment code never reaches the database: 400 naming the field.
    let device = uuid::Uuid::now_v7().to_string();
    let (status, body) = enrol_http(hq.addr(), "ABCD\u{0}EFGH", &device);
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("\"code\""), "{body}");
    let (status, body) = enrol_http(hq.addr(), "ABCD-EFGH-JKLM", "not-a-uuid\u{0}");
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("\"device\""), "{body}");
    // A malformed or overlong credential in the Authorization header: 401 naming the header, no lookup.
    let (status, _, body) = request(hq.addr(), "POST", "/v1/pull", &[("authorization", "Bearer a b")], b"");
    assert_eq!(status, 401);
    assert!(json(&body)["message"].as_str().unwrap().contains("authorization"), "{}", json(&body));
    let long = format!("Bearer {}", "a".repeat(10_000));
    assert_eq!(request(hq.addr(), "POST", "/v1/pull", &[("authorization", &long)], b"").0, 401);
    // A storage failure is logged at HQ and answered with a generic 503 that carries none of the database's text.
    if let Backend::Postgres(pg) = b {
        super::sync::psql_at(&pg.url, &format!("DROP TABLE {}.enrol_codes", pg.schema));
        let (status, body) = enrol_http(hq.addr(), "ABCD-EFGH-JKLM", &device);
        assert_eq!((status, body["code"].as_str()), (503, Some("unavailable")), "{body}");
        let message = body["message"].as_str().unwrap();
        assert_eq!(message, "HQ's storage is unavailable; try again later");
    }
}
