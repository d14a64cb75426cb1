//! HQ on PostgreSQL under database failures, and several HQ processes on one database.
//!
//! Each test uses its own schema (see [`PgSchema`]), so they run in parallel with the other PostgreSQL tests and
//! only ever terminate their own HQ sessions.

use super::*;
use guidedesk_sync::client::{ClientConfig, HttpTransport};
use guidedesk_sync::protocol::{PushOutcome, PushRequest};
use guidedesk_sync::replicate::Transport;

/// In one snapshot: every device's cursor equals the number of receipts HQ holds from it (a batch is whole or
/// absent), and no record exists without a receipt.
fn whole_batches_only(url: &str, s: &str) {
    let bad = psql_at(
        url,
        &format!(
            "SELECT count(*) FROM {s}.devices d WHERE d.last_seq <> (SELECT count(*) FROM {s}.op_receipts r \
         WHERE r.device = d.device)"
        ),
    );
    assert_eq!(bad, "0", "a device's cursor disagrees with its receipts: a batch was applied in part");
    let orphans = psql_at(
        url,
        &format!(
            "SELECT count(*) FROM {s}.arrivals a WHERE NOT EXISTS (SELECT 1 FROM {s}.op_receipts r \
         WHERE r.record_id = a.id)"
        ),
    );
    assert_eq!(orphans, "0", "a record is at HQ without the receipt of its op");
}

#[test]
fn pg_sessions_killed_mid_push_leave_whole_batches_and_the_retry_completes() {
    let Some(pg) = PgSchema::fresh("pg_sessions_killed_mid_push") else { return };
    let b = Backend::Postgres(pg);
    let Backend::Postgres(pg) = &b else { unreachable!() };
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(&b, &dir.path().join("hq"), 100);
    hq.store().import_reference(&reference_variant("pg-kill"), None, 100).unwrap();
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    write_arrivals(&k.store, 2400, 100);
    let app = format!("guidedesk-hq/{}", pg.schema);
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicBool::new(false));
    let killer = {
        let (stop, ready) = (Arc::clone(&stop), Arc::clone(&ready));
        let (url, schema) = (pg.url.clone(), pg.schema.clone());
        std::thread::spawn(move || {
            let mut killed = 0u64;
            let deadline = Instant::now() + Duration::from_secs(20);
            let terminate = format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{app}' AND \
                 state IN ('active', 'idle in transaction')"
            );
            let mut round = 0u32;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                // Every other round holds the devices table for a moment first, so a push waiting for its device
                // row is certainly in flight when the sessions are terminated (pushes are too quick to be caught
                // by sampling alone); the other rounds land wherever the pushes happen to be.
                let sql = if round.is_multiple_of(2) {
                    format!("LOCK TABLE {schema}.devices IN EXCLUSIVE MODE; SELECT pg_sleep(0.3); {terminate}")
                } else {
                    terminate.clone()
                };
                round += 1;
                // The pushes start once the first lock is (about to be) held.
                ready.store(true, Ordering::SeqCst);
                let out = psql_at(&url, &sql);
                let n: u64 = out.lines().last().unwrap_or("0").trim().parse().unwrap();
                killed += n;
                whole_batches_only(&url, &schema);
            }
            killed
        })
    };
    let waiting = Instant::now();
    while !ready.load(Ordering::SeqCst) && waiting.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let psql connect and take the lock before the first push asks for its device row.
    std::thread::sleep(Duration::from_millis(100));
    // Push through the kills: errors (503 from HQ, or the kiosk's own retry) are expected; each cycle moves on.
    let (mut errors, mut retries) = (0u32, 0u32);
    let mut done = false;
    for _ in 0..400 {
        match kiosk_sync::sync_with(&k.store, &k.cred, &options(40)) {
            Ok(r) => {
                retries += r.retries;
                if r.pending == 0 {
                    done = true;
                    break;
                }
            }
            Err(_) => errors += 1,
        }
    }
    stop.store(true, Ordering::SeqCst);
    let killed = killer.join().unwrap();
    assert!(killed > 0, "no HQ session was terminated: the test proved nothing");
    if !done {
        // The kills are over: the retry completes.
        sync_until_done(&k, &options(60), 5);
    }
    kiosk_sync::sync_with(&k.store, &k.cred, &options(60)).unwrap();
    println!(
        "terminated {killed} HQ sessions; the kiosk retried {retries} requests, {errors} sync cycles failed and were \
         run again"
    );
    whole_batches_only(&pg.url, &pg.schema);
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

/// The local PostgreSQL cluster's version directory (`/etc/postgresql/<version>`), for `pg_ctlcluster`.
fn local_cluster(test: &str) -> Option<String> {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned());
    if version.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{test}: CI must be able to restart the local PostgreSQL");
        println!("{test}: skipped, no local PostgreSQL cluster to restart");
    }
    version
}

#[test]
fn postgres_restarted_during_a_push_applies_whole_batches_and_the_retry_completes() {
    let Some(pg) = PgSchema::fresh_exclusive("postgres_restarted_during_a_push") else { return };
    let Some(version) = local_cluster("postgres_restarted_during_a_push") else { return };
    let b = Backend::Postgres(pg);
    let Backend::Postgres(pg) = &b else { unreachable!() };
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(&b, &dir.path().join("hq"), 100);
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    write_arrivals(&k.store, 3000, 100);
    // A push takes well under a second now, and a restart between two requests is invisible (the pool reconnects),
    // so the first batch is held inside its transaction by another session's lock on the arrivals table; the server
    // restarts (fast mode: sessions are cut, open transactions roll back) while it waits.
    let locker = lock_arrivals_for_3s(pg);
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", "restart", "-m", "fast"])
            .output()
            .expect("pg_ctlcluster runs")
    });
    let (mut errors, mut retries, mut done) = (0u32, 0u32, false);
    let started = Instant::now();
    while !done && started.elapsed() < Duration::from_mins(2) {
        if let Ok(r) = kiosk_sync::sync_with(&k.store, &k.cred, &options(40)) {
            retries += r.retries;
            done = r.pending == 0;
        } else {
            errors += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let out = restarter.join().unwrap();
    let mut locker = locker;
    let _ = locker.wait();
    assert!(out.status.success(), "pg_ctlcluster restart: {}", String::from_utf8_lossy(&out.stderr));
    assert!(errors + retries > 0, "the restart did not land during the push: the test proved nothing");
    assert!(done, "the kiosk did not finish pushing after the restart");
    println!(
        "PostgreSQL restarted mid-push: {retries} requests retried, {errors} sync cycles failed and were run again"
    );
    whole_batches_only(&pg.url, &pg.schema);
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

/// Another session holds the schema's arrivals table exclusively for 3 s; returns once it holds the lock.
fn lock_arrivals_for_3s(pg: &PgSchema) -> Child {
    let locker = Command::new("psql")
        .arg(&pg.url)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("BEGIN; LOCK TABLE {}.arrivals IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;", pg.schema))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    locker
}

#[test]
fn a_request_past_its_deadline_gets_503_timeout_and_the_retry_takes_nothing_twice() {
    let Some(pg) = PgSchema::fresh("request_past_its_deadline") else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = pg.connect();
    let options = loopback_options(100);
    let api = guidedesk::hq::limits::ApiOptions {
        request_timeout: Duration::from_secs(1),
        ..guidedesk::hq::limits::ApiOptions::default()
    };
    let hq = server::start_with(store, &options, api).unwrap();
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    write_arrivals(&k.store, 40, 40);
    let ops = k.store.outbox_after(0, 40).unwrap();
    let body =
        guidedesk_sync::codec::encode(&PushRequest { device: k.store.device(), sent_at_ms: now_ms(), ops }).unwrap();
    // The arrivals table is locked for 3 s: the batch waits (statements may take 30 s) past the 1 s deadline.
    let mut locker = lock_arrivals_for_3s(&pg);
    let asked = Instant::now();
    let (status, head, resp) = raw_post(hq.addr(), "/v1/push", Some(&k.cred.token), &body);
    let waited = asked.elapsed();
    assert_eq!(status, 503, "{resp}");
    assert!(head.contains("retry-after:"), "{head}");
    assert_eq!(server::error_code(resp.as_bytes()).as_deref(), Some("timeout"), "{resp}");
    assert!(waited < Duration::from_millis(2500), "answered at the deadline, not when the lock went: {waited:?}");
    assert!(locker.wait().unwrap().success());
    // The abandoned batch may still commit once the lock is gone (whole, in its own transaction); the kiosk's
    // retry then finds it applied and sends nothing twice.
    sync_until_done(&k, &super::options(40), 3);
    check_invariants(hq.store(), &[(&k.store, "main")]);
    whole_batches_only(&pg.url, &pg.schema);
}

#[test]
fn database_timing_out_gets_503_with_retry_after_and_nothing_partial() {
    let Some(pg) = PgSchema::fresh("database_timing_out_gets_503") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = pg.config();
    cfg.statement_timeout = Duration::from_millis(500);
    let store = PgStore::connect(&cfg).unwrap();
    let options = loopback_options(100);
    let hq = server::start(store, &options).unwrap();
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    write_arrivals(&k.store, 40, 40);
    let ops = k.store.outbox_after(0, 40).unwrap();
    let body =
        guidedesk_sync::codec::encode(&PushRequest { device: k.store.device(), sent_at_ms: now_ms(), ops }).unwrap();
    // Another session holds the arrivals table exclusively for 3 s: HQ's statements time out mid-batch.
    let mut locker = lock_arrivals_for_3s(&pg);
    let (status, head, resp) = raw_post(hq.addr(), "/v1/push", Some(&k.cred.token), &body);
    assert_eq!(status, 503, "{resp}");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(server::error_code(resp.as_bytes()).as_deref(), Some("unavailable"), "{resp}");
    assert_eq!(hq.store().device(k.store.device()).unwrap().unwrap().last_seq, 0, "nothing was applied");
    assert!(hq.store().receipts().unwrap().is_empty());
    assert!(locker.wait().unwrap().success());
    // The database answers again: the kiosk's retry completes.
    sync_until_done(&k, &super::options(40), 3);
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

/// Starts the `guidedesk-hq` binary on a PostgreSQL schema.
fn spawn_pg_hq(pg: &PgSchema) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &pg.url, "--database-schema", &pg.schema])
        .env_remove("GUIDEDESK_HQ_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("the listening line has a URL");
    (child, url.trim_start_matches("http://").parse().unwrap())
}

#[test]
fn two_hq_processes_on_one_database_take_duplicate_requests_once() {
    let Some(pg) = PgSchema::fresh("two_hq_processes_on_one_database") else { return };
    let hq = HqBackend::from(pg.connect());
    let (mut a, addr_a) = spawn_pg_hq(&pg);
    let (mut b, addr_b) = spawn_pg_hq(&pg);
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = open_kiosk(&dir.path().join("k"), now());
    let code = hq.create_code("main", "d1", now_ms(), 3_600_000).unwrap();
    let (cred, _) =
        kiosk_sync::enroll(&store, &dir.path().join("k"), &format!("http://{addr_a}"), &code, None, false).unwrap();
    write_arrivals(&store, 300, 50);
    let ops = store.outbox_after(0, 300).unwrap();
    let device = store.device();
    let transports: Vec<HttpTransport> = [addr_a, addr_b, addr_a, addr_b]
        .iter()
        .map(|addr| {
            let mut cfg = ClientConfig::new(&format!("http://{addr}"));
            cfg.token = Some(cred.token.clone());
            HttpTransport::new(&cfg).unwrap()
        })
        .collect();
    for chunk in ops.chunks(30) {
        let req = PushRequest { device, sent_at_ms: now_ms(), ops: chunk.to_vec() };
        // The same batch at once to both processes, twice each.
        let answers: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = transports.iter().map(|t| s.spawn(|| t.push(&req))).collect();
            handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
        });
        let last = chunk.last().unwrap().seq;
        let mut applied = 0;
        for resp in answers {
            let PushOutcome::Accepted(ack) = resp.outcome else { panic!("{resp:?}") };
            assert_eq!(ack.acked_through, last);
            applied += ack.applied;
        }
        assert_eq!(applied as usize, chunk.len(), "each op of the batch was applied by exactly one request");
    }
    let receipts: Vec<(DeviceId, u64)> = hq.receipts().unwrap().into_iter().map(|(k, _)| k).collect();
    let expected: Vec<(DeviceId, u64)> = (1..=300).map(|s| (device, s)).collect();
    assert_eq!(receipts, expected, "exactly one receipt per (device, seq)");
    assert_eq!(hq.device(device).unwrap().unwrap().last_seq, 300);
    let pushed_records: BTreeSet<u128> = ops.iter().map(|o| o.key.id).collect();
    assert_eq!(hq.stats().unwrap().records["arrival"], pushed_records.len() as u64);
    // Administration goes straight to the database while both serve.
    let out = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .args(["stats", "--json", "--database-url", &pg.url, "--database-schema", &pg.schema])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["records"]["arrival"], hq.stats().unwrap().records["arrival"]);
    assert_eq!(stats["devices"], 1);
    a.kill().unwrap();
    b.kill().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();
}

#[test]
fn pg_store_enrolment_revocation_and_reference_log_follow_the_embedded_rules() {
    use guidedesk::hq::store::{AuthRefusal, EnrollRefusal};
    let Some(pg) = PgSchema::fresh("pg_store_rules") else { return };
    let hq = HqBackend::from(pg.connect());
    let now = now_ms();
    let code = hq.create_code("main", "d1", now, 1000).unwrap();
    assert_eq!(hq.enroll("NOPE-NOPE-NOPE", DeviceId(1), now).unwrap(), Err(EnrollRefusal::Invalid));
    let first = hq.enroll(&code.replace('-', "").to_lowercase(), DeviceId(1), now).unwrap().unwrap();
    let second = hq.enroll(&code, DeviceId(1), now + 5).unwrap().unwrap();
    assert_eq!(hq.authenticate(&first.token).unwrap(), Err(AuthRefusal::Unknown));
    assert_eq!(hq.authenticate(&second.token).unwrap().unwrap().device, DeviceId(1));
    assert_eq!(hq.enroll(&code, DeviceId(2), now).unwrap(), Err(EnrollRefusal::Used));
    let late = hq.create_code("main", "d2", now, 1000).unwrap();
    assert_eq!(hq.enroll(&late, DeviceId(2), now + 1001).unwrap(), Err(EnrollRefusal::Expired));
    assert!(hq.create_code(" ", "d", now, 1).is_err());
    assert!(hq.revoke(DeviceId(1), now).unwrap());
    assert!(!hq.revoke(DeviceId(3), now).unwrap());
    assert_eq!(hq.authenticate(&second.token).unwrap(), Err(AuthRefusal::Revoked));
    // Reference log: scoped to sites, compacted with a floor.
    let mut data = ReferenceData::bundled().unwrap();
    hq.import_reference(&data, None, 10).unwrap();
    data.departments[0].name = "东院".into();
    let east = hq.import_reference(&data, Some("east"), 10).unwrap();
    assert_eq!(hq.changes_for("reference", "main").unwrap().changes_after(0, 10).unwrap().len(), 1);
    assert_eq!(hq.changes_for("reference", "east").unwrap().changes_after(0, 10).unwrap().len(), 2);
    assert_eq!(hq.reference_for("east").unwrap().unwrap(), (east, data.clone()));
    for _ in 0..3 {
        hq.import_reference(&data, None, 1).unwrap();
    }
    let main = hq.changes_for("reference", "main").unwrap();
    assert!(main.floor().unwrap() >= 3);
    assert_eq!(main.snapshot().unwrap().len(), 1);
    assert_eq!(hq.changes_for("reference", "east").unwrap().snapshot().unwrap().len(), 2);
}

#[test]
fn concurrent_reference_imports_on_two_connections_get_commit_ordered_sequence_numbers() {
    let Some(pg) = PgSchema::fresh("concurrent_reference_imports") else { return };
    let stores = [HqBackend::from(pg.connect()), HqBackend::from(pg.connect())];
    let data = ReferenceData::bundled().unwrap();
    let mut seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (store, data) = (&stores[i % 2], &data);
                s.spawn(move || (0..5).map(|_| store.import_reference(data, None, 1000).unwrap()).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>(), "every change got its own number, with no hole");
    let log = stores[0].changes_for("reference", "main").unwrap();
    assert_eq!(log.head().unwrap(), 20);
    let after: Vec<u64> = log.changes_after(0, 100).unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(after, (1..=20).collect::<Vec<u64>>());
}

/// Two devices' first ops of one record in two transactions at once: the second one's bulk copy of the record meets
/// the first one's row (uncommitted, then committed), is undone to its savepoint and merges into that row instead.
/// Both ops are applied once, and the record has one row and one feed position.
#[test]
fn a_new_record_inserted_meanwhile_by_another_transaction_is_merged_into() {
    use guidedesk_sync::server::{HqStorage, HqTx, OpContext, Verdict};
    let Some(pg) = PgSchema::fresh("copy_meets_a_concurrent_insert") else { return };
    let hq = HqBackend::from(pg.connect());
    let at = now_ms();
    for (d, desk) in [(1u128, "d1"), (2, "d2")] {
        let code = hq.create_code("main", desk, at, 60_000).unwrap();
        hq.enroll(&code, DeviceId(d), at).unwrap().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = open_kiosk(dir.path(), now());
    let id = write_arrivals(&store, 1, 1)[0];
    let op = store.outbox_after(0, 10).unwrap().into_iter().find(|o| o.key.id == id.as_u128()).unwrap();
    let first = guidedesk_sync::Op { seq: 1, ..op.clone() };
    let second = guidedesk_sync::Op {
        seq: 1,
        stamp: guidedesk_sync::Hlc { wall_ms: op.stamp.wall_ms + 1, ..op.stamp },
        ..op.clone()
    };
    let apply = |tx: &mut guidedesk::hq::backend::BackendTx<'_>, d: u128, op: &guidedesk_sync::Op| {
        assert_eq!(tx.device_cursor(DeviceId(d)).unwrap(), 0);
        let ctx = OpContext::of(op, DeviceId(d), at, 0);
        let verdicts = tx.apply_all(&[(op, ctx)]).unwrap();
        assert_eq!(verdicts, vec![Verdict::Applied], "device {d}");
        tx.set_device_cursor(DeviceId(d), 1, at, 0).unwrap();
    };
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'guidedesk-hq/{}' AND wait_event_type = 'Lock'",
        pg.schema
    );
    std::thread::scope(|s| {
        let mut tx1 = hq.begin().unwrap();
        apply(&mut tx1, 1, &first);
        let second_device = s.spawn(|| {
            let mut tx2 = hq.begin().unwrap();
            apply(&mut tx2, 2, &second);
            tx2.commit().unwrap();
        });
        let t = Instant::now();
        while psql_at(&pg.url, &waiting) != "1" {
            assert!(t.elapsed() < Duration::from_secs(20), "the second transaction never waited for the first's row");
            std::thread::sleep(Duration::from_millis(20));
        }
        tx1.commit().unwrap();
        second_device.join().unwrap();
    });
    let s = &pg.schema;
    let count = |sql: &str| psql_at(&pg.url, &sql.replace("{s}", s).replace("{id}", &id.0.to_string()));
    assert_eq!(count("SELECT count(*) FROM {s}.arrivals WHERE id = '{id}'"), "1");
    assert_eq!(count("SELECT count(*) FROM {s}.op_receipts WHERE record_id = '{id}'"), "2");
    assert_eq!(count("SELECT count(*) FROM {s}.record_feed WHERE record_id = '{id}'"), "1");
    assert_eq!(count("SELECT last_device = '00000000-0000-0000-0000-000000000002' FROM {s}.record_feed"), "t");
    assert_eq!(count("SELECT string_agg(last_seq::text, ',' ORDER BY device) FROM {s}.devices"), "1,1");
}

/// The group HQ's check of which relayed ops it holds probes the receipts' key once per op, however many receipts it
/// holds: with a batch's 10 000 ops against 200 000 receipts (planned with the batch's real size, as the first
/// executions on a connection are), the plan reads no receipt table in full.
#[test]
fn the_relay_held_check_probes_the_receipts_key_whatever_the_batch_size() {
    let Some(pg) = PgSchema::fresh("relay_held_plan") else { return };
    drop(pg.connect());
    let s = &pg.schema;
    psql_at(
        &pg.url,
        &format!(
            "INSERT INTO {s}.op_receipts (device, seq, kind, record_id, received_at, quarantined, clamped) \
             SELECT ('00000000-0000-0000-0000-00000000000' || (g % 4))::uuid, g, 1, gen_random_uuid(), now(), false, \
             false FROM generate_series(1, 200000) g; ANALYZE {s}.op_receipts"
        ),
    );
    let devices: Vec<String> = (0..10_000).map(|g| format!("00000000-0000-0000-0000-00000000000{}", g % 4)).collect();
    let seqs: Vec<String> = (195_001..205_001).map(|g: u64| g.to_string()).collect();
    let script = format!(
        "SET search_path = {s};\nPREPARE held(uuid[], bigint[]) AS {};\nEXPLAIN EXECUTE held('{{{}}}', '{{{}}}');\n",
        guidedesk::hq::pg::RELAY_HELD_SQL,
        devices.join(","),
        seqs.join(",")
    );
    let mut child = Command::new("psql")
        .arg(&pg.url)
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(plan.contains("Index Only Scan using op_receipts_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}
