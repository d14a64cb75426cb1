//! A site hub on the hospital LAN relaying to the group HQ, end to end through fault proxies on both links: the WAN
//! cut for days while two desks share through the hub; the hub `SIGKILLed` mid-relay; the group HQ restored from an
//! older backup; a desk moved from one hub to another and then straight to the group HQ; a hub revoked at the group
//! HQ. After each: the group HQ holds every op of every desk exactly once (one receipt per origin (device, seq)),
//! the same records as the hub, each desk's cursor at its last seq, and the same reference data on every level.

use super::*;
use guidedesk::command::cases::new_case;
use guidedesk::hq::admin::{self, AdminRequest};
use guidedesk::hq::relay::HUB_DESK;
use guidedesk::hq::relay::outbound::{self, DEFAULT_RETAIN_MS, RelayFailure, RelayReport, Upstream};
use guidedesk::model::{Case, CaseChannel, CaseForm, CaseGrade};
use guidedesk_sync::protocol::{PushOutcome, RELAY_PATH, RelayEntry, RelayRequest};

fn hub_code(group: &RunningHq, site: &str) -> String {
    let req =
        AdminRequest::EnrollCode { site: site.into(), desk: String::new(), ttl_hours: 1, device: None, hub: true };
    admin::execute(group.store(), &req, 100).unwrap()["code"].as_str().unwrap().to_string()
}

/// A hub of `site` in `dir`, enrolled at the group HQ through `wan`, serving on loopback.
fn start_hub(dir: &Path, group: &RunningHq, wan: &Proxy, site: &str) -> RunningHq {
    let mut store = HqStore::open(dir).unwrap();
    outbound::enroll(&mut store, &wan.url(), &hub_code(group, site), None, false).unwrap();
    server::start(store, &loopback_options(100)).unwrap()
}

fn hub_store(hub: &HqBackend) -> &HqStore {
    match hub {
        HqBackend::Embedded(s) => s,
        HqBackend::Postgres(_) => panic!("a hub runs on its data directory"),
    }
}

fn relay(hub: &RunningHq) -> Result<RelayReport, RelayFailure> {
    outbound::run_cycle(hub_store(hub.store()), now_ms(), DEFAULT_RETAIN_MS, 100)
}

/// Relay cycles until the group HQ acknowledged everything (faults may make single cycles fail).
fn relay_until_done(hub: &RunningHq, max_cycles: u32) -> RelayReport {
    let mut last = String::new();
    for _ in 0..max_cycles {
        match relay(hub) {
            Ok(r) if r.pending == 0 => return r,
            Ok(r) => last = format!("{} pending", r.pending),
            Err(e) => last = e.to_string(),
        }
    }
    panic!("relay did not complete in {max_cycles} cycles: {last}");
}

/// Every record of a store, by (kind, id).
fn records_of(hq: &HqBackend) -> BTreeMap<(u16, u128), guidedesk::hq::store::StoredRecord> {
    let mut out = BTreeMap::new();
    for kind in RecordKind::ALL {
        for id in hq.ids_between(kind, None, i64::MIN, i64::MAX).unwrap() {
            out.insert((kind.code(), id), hq.record(kind, id).unwrap().unwrap());
        }
    }
    out
}

/// The group HQ holds exactly what the hubs hold: one receipt per origin (device, seq), the same records with the
/// same first sender and site, each desk's cursor at its last seq, and the hubs' reference data.
fn check_group(group: &HqBackend, hubs: &[&HqBackend], desks: &[&Kiosk], site: &str) {
    let group_receipts: BTreeSet<(DeviceId, u64)> = group.receipts().unwrap().into_iter().map(|(k, _)| k).collect();
    let mut expected = BTreeSet::new();
    for k in desks {
        let stats = k.store.stats().unwrap();
        for seq in 1..=stats.outbox_last_seq {
            expected.insert((k.store.device(), seq));
        }
        // A desk that never wrote is unknown at the group HQ.
        if let Some(row) = group.device(k.store.device()).unwrap() {
            assert_eq!(row.last_seq, stats.outbox_last_seq, "the group HQ's cursor of {}", stats.device);
            assert_eq!(row.site, site);
        } else {
            assert_eq!(stats.outbox_last_seq, 0, "desk {} is unknown at the group HQ", stats.device);
        }
    }
    assert_eq!(group_receipts, expected, "the group HQ holds each (origin device, seq) exactly once");
    let at_group = records_of(group);
    let mut at_hubs = BTreeMap::new();
    for hub in hubs {
        at_hubs.extend(records_of(hub));
        let up = hub_store(hub).relay_state().unwrap();
        assert_eq!(up.pending(), 0, "the hub has ops the group HQ did not acknowledge");
        assert_eq!(
            hub.reference_for(site).unwrap().map(|(_, r)| r),
            group.reference_for(site).unwrap().map(|(_, r)| r),
            "reference data differs between the hub and the group HQ"
        );
    }
    assert_eq!(at_group.len(), at_hubs.len(), "the group HQ holds other records than the hubs");
    for (key, hub_rec) in &at_hubs {
        let g = at_group.get(key).unwrap_or_else(|| panic!("{key:?} never reached the group HQ"));
        assert_eq!(g.record, hub_rec.record, "{key:?} differs between the hub and the group HQ");
        assert_eq!((g.device, &g.site), (hub_rec.device, &hub_rec.site), "{key:?}: first sender or site");
    }
}

fn wan_cut_for_days_while_two_desks_share_through_the_hub(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let group = start_hq(backend, &dir.path().join("group"), 100);
    group.store().import_reference(&reference_variant("group-v1"), None, 100).unwrap();
    let wan = Proxy::start(group.addr());
    let hub = start_hub(&dir.path().join("hub"), &group, &wan, "main");
    let first = relay_until_done(&hub, 3);
    assert_eq!(first.reference_changes, 1, "{first:?}");
    let lan = Proxy::start(hub.addr());
    lan.set_random(7, 15);
    let lobby = enrol(&hub, &dir.path().join("lobby"), "main", "lobby", &lan.url());
    let office = enrol(&hub, &dir.path().join("office"), "main", "office", &lan.url());
    settle(&[&lobby, &office]);
    assert_eq!(*lobby.store.reference(), reference_variant("group-v1"), "group reference data reached the desk");

    // The line to the group HQ is cut for three days; the hospital goes on sharing through its hub.
    wan.set_default(Fault::DropRequest);
    let mut case = None;
    for _day in 0..3 {
        write_arrivals(&lobby.store, 120, 40);
        write_arrivals(&office.store, 80, 40);
        case.get_or_insert_with(|| {
            let form = CaseForm {
                grade: Some(CaseGrade::Complaint),
                channel: Some(CaseChannel::InPerson),
                complainant: "断网".into(),
                departments: vec![lobby.store.reference().departments[0].id.clone()],
                facts: "候诊时间过长".into(),
                ..CaseForm::default()
            };
            lobby.store.write(|ctx| new_case(ctx, &form, StaffRef("K001".into()))).unwrap()
        });
        settle(&[&lobby, &office]);
        let err = relay(&hub).expect_err("the WAN is cut");
        assert!(err.to_string().contains("group HQ"), "{err}");
        for k in [&lobby, &office] {
            k.clock.advance(24 * 3_600_000);
        }
    }
    let case = case.unwrap();
    assert!(office.store.get::<Case>(case).unwrap().is_some(), "the office works the lobby's complaint offline");
    assert_eq!(group.store().stats().unwrap().records.values().sum::<u64>(), 0, "nothing crossed the cut WAN");
    // Meanwhile the group publishes new reference data.
    group.store().import_reference(&reference_variant("group-v2"), None, 100).unwrap();

    // The line comes back, flaky.
    wan.clear();
    wan.set_random(11, 25);
    let r = relay_until_done(&hub, 30);
    assert_eq!(r.pending, 0);
    wan.clear();
    settle(&[&lobby, &office]);
    assert_eq!(*office.store.reference(), reference_variant("group-v2"), "new group data reached the desks");
    check_invariants(hub.store(), &[(&lobby.store, "main"), (&office.store, "main")]);
    check_group(group.store(), &[hub.store()], &[&lobby, &office], "main");
    let total: u64 = group.store().stats().unwrap().records["arrival"];
    assert_eq!(total, 600);
}

fn a_desk_moved_between_hubs_and_then_to_the_group_hq_is_taken_once(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let group = start_hq(backend, &dir.path().join("group"), 100);
    let wan = Proxy::start(group.addr());
    let north = start_hub(&dir.path().join("north"), &group, &wan, "main");
    let south = start_hub(&dir.path().join("south"), &group, &wan, "main");
    let mut desk = enrol(&north, &dir.path().join("desk"), "main", "lobby", &north.url());
    write_arrivals(&desk.store, 60, 30);
    sync_until_done(&desk, &options(50), 3);
    relay_until_done(&north, 3);
    // Moved to the other hub: a new credential there; the desk sends its retained ops again.
    let code = south.store().create_code("main", "lobby", now_ms(), 3_600_000).unwrap();
    let (cred, _) =
        kiosk_sync::enroll(&desk.store, &dir.path().join("desk"), &south.url(), &code, None, false).unwrap();
    desk.cred = cred;
    write_arrivals(&desk.store, 30, 30);
    sync_until_done(&desk, &options(50), 3);
    let r = relay_until_done(&south, 3);
    assert!(r.duplicates >= 60, "the ops the group HQ had through the other hub are duplicates: {r:?}");
    check_group(group.store(), &[south.store()], &[&desk], "main");
    // Then straight to the group HQ: it resumes after the highest op the group HQ holds.
    let code = group.store().create_code_for("main", "lobby", Some(desk.store.device()), now_ms(), 3_600_000).unwrap();
    let (cred, _) =
        kiosk_sync::enroll(&desk.store, &dir.path().join("desk"), &group.url(), &code, None, false).unwrap();
    desk.cred = cred;
    let r = sync_until_done(&desk, &options(50), 3);
    assert_eq!((r.applied, r.duplicates, r.rewinds), (0, 0, 0), "nothing is sent twice: {r:?}");
    write_arrivals(&desk.store, 10, 10);
    sync_until_done(&desk, &options(50), 3);
    assert_eq!(group.store().stats().unwrap().records["arrival"], 100);
    let receipts = group.store().receipts().unwrap();
    let last = desk.store.stats().unwrap().outbox_last_seq;
    assert_eq!(receipts.len() as u64, last, "one receipt per op of the desk");
    assert!(receipts.iter().all(|((d, s), _)| *d == desk.store.device() && (1..=last).contains(s)));
}

fn a_revoked_hub_keeps_serving_its_desks_and_resumes_when_reinstated(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let group = start_hq(backend, &dir.path().join("group"), 100);
    let wan = Proxy::start(group.addr());
    let hub = start_hub(&dir.path().join("hub"), &group, &wan, "main");
    let hub_id = DeviceId(Upstream::of(hub_store(hub.store())).unwrap().unwrap().hub);
    let lobby = enrol(&hub, &dir.path().join("lobby"), "main", "lobby", &hub.url());
    let office = enrol(&hub, &dir.path().join("office"), "main", "office", &hub.url());
    assert!(group.store().revoke(hub_id, now_ms()).unwrap());
    write_arrivals(&lobby.store, 40, 20);
    settle(&[&lobby, &office]);
    assert_eq!(office.store.stats().unwrap().records.get("arrival").copied().unwrap_or(0), 40, "sharing goes on");
    let err = relay(&hub).expect_err("a revoked hub may not relay");
    assert!(err.to_string().contains("revoked"), "{err}");
    let written = lobby.store.stats().unwrap().outbox_last_seq + office.store.stats().unwrap().outbox_last_seq;
    assert_eq!(hub_store(hub.store()).relay_state().unwrap().pending(), written, "nothing is lost meanwhile");
    assert!(group.store().reinstate(hub_id).unwrap());
    relay_until_done(&hub, 3);
    check_invariants(hub.store(), &[(&lobby.store, "main"), (&office.store, "main")]);
    check_group(group.store(), &[hub.store()], &[&lobby, &office], "main");
}

fn only_a_hub_relays_well_formed_batches_for_its_own_site(backend: &Backend) {
    use guidedesk_sync::client::{ClientConfig, HttpTransport};

    let dir = tempfile::tempdir().unwrap();
    let group = start_hq(backend, &dir.path().join("group"), 100);
    let wan = Proxy::start(group.addr());
    let hub = start_hub(&dir.path().join("hub"), &group, &wan, "main");
    let up = Upstream::of(hub_store(hub.store())).unwrap().unwrap();
    let hub_id = DeviceId(up.hub);
    // A desk of another site, enrolled at the group HQ directly, with one op.
    let east = enrol(&group, &dir.path().join("east"), "east", "lobby", &group.url());
    write_arrivals(&east.store, 1, 1);
    let op = east.store.outbox_after(0, 1).unwrap().remove(0);
    let entry = |seq, origin, desk: &str| RelayEntry { seq, origin, desk: desk.into(), op: op.clone() };
    let post = |token: &str, req: &RelayRequest| {
        raw_post(group.addr(), RELAY_PATH, Some(token), &guidedesk_sync::codec::encode(req).unwrap())
    };
    // A desk's credential may not relay.
    let req = RelayRequest { hub: east.store.device(), sent_at_ms: now_ms(), entries: vec![] };
    let (status, _, body) = post(&east.cred.token, &req);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not a hub"), "{body}");
    // A hub names only itself, sends contiguous entries, and never its own id as an origin.
    let (status, _, body) = post(&up.token, &RelayRequest { hub: east.store.device(), ..req.clone() });
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("hub"), "{body}");
    let gap = RelayRequest {
        hub: hub_id,
        sent_at_ms: now_ms(),
        entries: vec![entry(1, DeviceId(9), "a"), entry(3, DeviceId(9), "a")],
    };
    let (status, _, body) = post(&up.token, &gap);
    assert_eq!((status, guidedesk::hq::server::error_code(body.as_bytes()).as_deref()), (400, Some("bad_batch")));
    assert!(body.contains("entries"), "{body}");
    let own = RelayRequest { hub: hub_id, sent_at_ms: now_ms(), entries: vec![entry(1, hub_id, "a")] };
    assert_eq!(post(&up.token, &own).0, 400);
    let (status, _, body) = raw_post(group.addr(), RELAY_PATH, Some(&up.token), b"\x00garbage");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("relay body"), "{body}");
    // An op of another site's device is quarantined (acknowledged, never applied); a new origin is admitted to the
    // hub's site with a plain desk code, whatever the hub calls it.
    let mut cfg = ClientConfig::new(&group.url());
    cfg.token = Some(up.token.clone());
    let t = HttpTransport::new(&cfg).unwrap();
    let stranger = DeviceId(0x5eed);
    let mut fresh = entry(2, stranger, HUB_DESK);
    fresh.op.seq = 1;
    let req =
        RelayRequest { hub: hub_id, sent_at_ms: now_ms(), entries: vec![entry(1, east.store.device(), "x"), fresh] };
    let PushOutcome::Accepted(ack) = t.relay(&req).unwrap().outcome else { panic!("gap") };
    assert_eq!(ack.acked_through, 2);
    assert_eq!(ack.quarantined.len(), 1, "{ack:?}");
    assert!(ack.quarantined[0].1.contains("site east"), "{ack:?}");
    let row = group.store().device(stranger).unwrap().unwrap();
    assert_eq!((row.site.as_str(), row.desk.as_str()), ("main", "relayed"), "a hub can never make a device a hub");
    // The same batch again is all duplicates.
    let PushOutcome::Accepted(again) = t.relay(&req).unwrap().outcome else { panic!("gap") };
    assert_eq!((again.applied, again.skipped_duplicates.clone()), (0, vec![1, 2]));
}

/// Two relay batches are on their way at once. When the first is held up on the WAN, the second reaches the group
/// HQ first and is answered with a gap: the hub sends it again once the first is acknowledged, without counting a
/// rewind, and the group HQ takes every op once.
fn a_batch_that_overtakes_the_one_ahead_of_it_is_sent_again(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let group = start_hq(backend, &dir.path().join("group"), 100);
    let wan = Proxy::start(group.addr());
    let hub = start_hub(&dir.path().join("hub"), &group, &wan, "main");
    let desk = enrol(&hub, &dir.path().join("desk"), "main", "lobby", &hub.url());
    let mut resent = 0;
    // The WAN holds up whichever batch it sees first; the first batch is nearly always the one sent first, so one
    // round in a few is enough to see a batch overtake the one ahead.
    for round in 1..=5u64 {
        let before = desk.store.stats().unwrap().outbox_last_seq;
        write_arrivals(&desk.store, 100, 100);
        sync_until_done(&desk, &options(100), 3);
        let ops = desk.store.stats().unwrap().outbox_last_seq - before;
        wan.script(&[Fault::Pass, Fault::Delay(400)]);
        let r = outbound::run_cycle_in_batches(hub_store(hub.store()), now_ms(), DEFAULT_RETAIN_MS, 100, 25).unwrap();
        wan.clear();
        assert_eq!((r.pending, r.applied, r.duplicates, r.rewinds), (0, ops, 0, 0), "{r:?}");
        assert_eq!(u64::from(r.batches), ops.div_ceil(25), "each batch acknowledged once: {r:?}");
        assert_eq!(group.store().stats().unwrap().records["arrival"], 100 * round);
        resent += r.resent;
        if resent > 0 {
            break;
        }
    }
    assert!(resent > 0, "no batch overtook the one ahead of it: the test proved nothing");
    check_group(group.store(), &[hub.store()], &[&desk], "main");
}

on_both_backends!(
    a_batch_that_overtakes_the_one_ahead_of_it_is_sent_again,
    wan_cut_for_days_while_two_desks_share_through_the_hub,
    a_desk_moved_between_hubs_and_then_to_the_group_hq_is_taken_once,
    a_revoked_hub_keeps_serving_its_desks_and_resumes_when_reinstated,
    only_a_hub_relays_well_formed_batches_for_its_own_site,
);

#[test]
fn the_group_hq_restored_from_an_older_backup_gets_the_missing_relay_again() {
    let dir = tempfile::tempdir().unwrap();
    let (group_dir, backup) = (dir.path().join("group"), dir.path().join("backup"));
    let group = start_hq(&Backend::Embedded, &group_dir, 100);
    let wan = Proxy::start(group.addr());
    let hub = start_hub(&dir.path().join("hub"), &group, &wan, "main");
    let desk = enrol(&hub, &dir.path().join("desk"), "main", "lobby", &hub.url());
    write_arrivals(&desk.store, 50, 50);
    sync_until_done(&desk, &options(100), 3);
    relay_until_done(&hub, 3);
    group.shutdown().unwrap();
    std::fs::create_dir_all(&backup).unwrap();
    std::fs::copy(group_dir.join("hq.redb"), backup.join("hq.redb")).unwrap();
    let group = start_hq(&Backend::Embedded, &group_dir, 100);
    wan.set_upstream(group.addr());
    write_arrivals(&desk.store, 50, 50);
    sync_until_done(&desk, &options(100), 3);
    relay_until_done(&hub, 3);
    // The group HQ's disk fails; it comes back from the older backup and is refilled from the hub's retained log.
    group.shutdown().unwrap();
    std::fs::copy(backup.join("hq.redb"), group_dir.join("hq.redb")).unwrap();
    let group = start_hq(&Backend::Embedded, &group_dir, 100);
    wan.set_upstream(group.addr());
    assert_eq!(group.store().stats().unwrap().records["arrival"], 50);
    let r = relay_until_done(&hub, 3);
    assert!(r.applied > 0 && r.duplicates == 0, "{r:?}");
    assert_eq!(group.store().stats().unwrap().records["arrival"], 100);
    check_group(group.store(), &[hub.store()], &[&desk], "main");
}

fn spawn_hub_binary(dir: &Path, upstream: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .args(["serve", "--listen", "127.0.0.1:0", "--relay-interval", "1", "--upstream", upstream, "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().trim_start_matches("http://").to_string();
    (child, url.parse().unwrap())
}

#[test]
fn the_hub_sigkilled_mid_relay_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let group = start_hq(&Backend::Embedded, &dir.path().join("group"), 100);
    group.store().import_reference(&reference_variant("group"), None, 100).unwrap();
    let wan = Proxy::start(group.addr());
    // Enrolled through the command line, with a code made by the group HQ's admin command.
    let out = hq_cli(&hub_dir, &["enroll", "--hq", &wan.url(), "--code", &hub_code(&group, "main")]);
    assert!(out.contains("hub of site main"), "{out}");
    // A desk fills the hub while the WAN is slow.
    let desk_dir = dir.path().join("desk");
    let (mut hub, addr) = spawn_hub_binary(&hub_dir, &wan.url());
    let code = hq_cli(&hub_dir, &["enroll-code", "--site", "main", "--desk", "lobby"]);
    let code = code.lines().last().unwrap().trim().to_string();
    let (store, clock) = open_kiosk(&desk_dir, now());
    let (cred, _) = kiosk_sync::enroll(&store, &desk_dir, &format!("http://{addr}"), &code, None, false).unwrap();
    let mut desk = Kiosk { store, clock, cred };
    // The WAN is down while the desk fills the hub, so the relay starts only afterwards, with more ops logged than
    // one relay request carries (`RELAY_BATCH`): the kill lands between two requests whatever the machine's load.
    wan.set_default(Fault::Unavailable(1));
    write_arrivals(&desk.store, 9_000, 1_000);
    sync_until_done(&desk, &options(2_000), 3);
    let total = desk.store.stats().unwrap().outbox_last_seq as usize;
    assert!(total > guidedesk::hq::relay::outbound::RELAY_BATCH, "{total} ops fit one relay request");
    assert_eq!(group.store().receipts().unwrap().len(), 0, "nothing passed the WAN while it was down");
    wan.set_default(Fault::Delay(400));
    // Killed once the group HQ holds part of it.
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let held = group.store().receipts().unwrap().len();
        assert!(held < total, "the relay finished before the kill ({held} of {total})");
        if held > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing was relayed");
        std::thread::sleep(Duration::from_millis(20));
    }
    hub.kill().unwrap();
    hub.wait().unwrap();
    wan.clear();
    let (mut hub, addr) = spawn_hub_binary(&hub_dir, &wan.url());
    // `relay` (through the running hub) exits 0 only once the group HQ acknowledged everything.
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq")).args(["relay", "--data-dir"]).arg(&hub_dir).output();
        if out.unwrap().status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "relay never completed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let stats: serde_json::Value = serde_json::from_str(&hq_cli(&hub_dir, &["stats", "--json"])).unwrap();
    assert_eq!(stats["upstream"]["pending"], 0, "{stats}");
    assert_eq!(stats["upstream"]["url"], wan.url().as_str(), "{stats}");
    assert!(stats["upstream"]["last_success"].as_str().is_some(), "{stats}");
    desk.cred.url = format!("http://{addr}");
    sync_until_done(&desk, &options(2_000), 3);
    hub.kill().unwrap();
    hub.wait().unwrap();
    let hub_store = HqBackend::from(HqStore::open(&hub_dir).unwrap());
    check_invariants(&hub_store, &[(&desk.store, "main")]);
    check_group(group.store(), &[&hub_store], &[&desk], "main");
}
