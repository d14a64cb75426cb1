//! Kiosk ↔ HQ replication end to end, on loopback only: a real HQ (in-process axum server, or the `guidedesk-hq`
//! binary where it must be killed), real kiosk stores, and an in-test HTTP fault proxy between them that drops,
//! cuts, duplicates, delays and answers 503. After every scenario the invariants are checked:
//!
//! - no loss: every record on every kiosk is at HQ (equal to the kiosk's copy) or its op is in quarantine;
//! - no duplicates: HQ holds exactly one receipt for each (device, seq) the kiosks wrote, and no more records than
//!   the kiosks hold;
//! - cursors consistent: HQ's cursor of each device equals the device's last seq, which the device has acknowledged;
//! - reference data: what each kiosk pulled equals what HQ publishes to its site, and its cursor is HQ's head.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guidedesk::hq::backend::HqBackend;
use guidedesk::hq::pg::{PgConfig, PgStore};
use guidedesk::hq::server::{self, RunningHq, ServeOptions};
use guidedesk::hq::store::HqStore;
use guidedesk::kiosk_sync::{self, Credential, SyncOptions};
use guidedesk::model::{
    AnyRecord, ArrivalChannel, ArrivalForm, Moment, RecordId, RecordKind, ReferenceData, Sex, StaffRef, VisitStep,
    VisitType,
};
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset};
use guidedesk_sync::DeviceId;
use guidedesk_sync::server::ChangeSource;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------------------------------
// HQ

/// The storage backend a scenario runs HQ on.
pub(crate) enum Backend {
    /// redb in the scenario's HQ directory.
    Embedded,
    /// PostgreSQL at `DATABASE_URL`, in a schema of this test's own (dropped at the end).
    Postgres(PgSchema),
}

/// The PostgreSQL tests share one server. The test that restarts it holds this for writing; every other PostgreSQL
/// test holds it for reading while its schema lives, so a restart never lands in the middle of another test.
static PG_SERVER: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// How a test holds [`PG_SERVER`].
enum PgGate {
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] std::sync::RwLockWriteGuard<'static, ()>),
}

/// A fresh schema for one test, dropped when the test ends.
pub(crate) struct PgSchema {
    pub(crate) url: String,
    pub(crate) schema: String,
    /// Released after the schema is dropped (fields drop after `Drop::drop`).
    _gate: PgGate,
}

impl PgSchema {
    /// A fresh schema, or `None` (printed) when `DATABASE_URL` is unset outside CI. In CI it must be set.
    pub(crate) fn fresh(test: &str) -> Option<PgSchema> {
        Self::fresh_with(test, || PgGate::Shared(PG_SERVER.read().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }

    /// A fresh schema for a test that may restart the server: it waits until no other PostgreSQL test runs.
    fn fresh_exclusive(test: &str) -> Option<PgSchema> {
        Self::fresh_with(test, || {
            PgGate::Exclusive(PG_SERVER.write().unwrap_or_else(std::sync::PoisonError::into_inner))
        })
    }

    fn fresh_with(test: &str, gate: impl FnOnce() -> PgGate) -> Option<PgSchema> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let schema = format!("gd_{}", uuid::Uuid::now_v7().simple());
                Some(PgSchema { url, schema, _gate: gate() })
            }
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{test}: DATABASE_URL is not set, but CI is: the PostgreSQL tests must run in CI"
                );
                println!("{test}: skipped, DATABASE_URL is not set (PostgreSQL tests need it)");
                None
            }
        }
    }

    fn config(&self) -> PgConfig {
        let mut cfg = PgConfig::new(&self.url);
        cfg.schema = Some(self.schema.clone());
        cfg.application_name = format!("guidedesk-hq/{}", self.schema);
        cfg
    }

    fn connect(&self) -> PgStore {
        PgStore::connect(&self.config()).unwrap()
    }
}

/// Runs SQL at `url` outside HQ (through psql, so the tests need no async client of their own) and returns its
/// unaligned output.
pub(crate) fn psql_at(url: &str, sql: &str) -> String {
    {
        let out = Command::new("psql")
            .arg(url)
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
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

pub(crate) fn open_backend(b: &Backend, dir: &Path) -> HqBackend {
    match b {
        Backend::Embedded => HqStore::open(dir).unwrap().into(),
        Backend::Postgres(pg) => pg.connect().into(),
    }
}

/// Each scenario twice: on the embedded store and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[test]
            fn $name() {
                super::$name(&super::Backend::Embedded);
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                if let Some(pg) = super::PgSchema::fresh(concat!("postgres::", stringify!($name))) {
                    super::$name(&super::Backend::Postgres(pg));
                }
            })*
        }
    };
}
pub(crate) use on_both_backends;

/// Serving on a random loopback port over plain HTTP, without an admin endpoint.
pub fn loopback_options(changelog_keep: usize) -> ServeOptions {
    ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        allow_plain_http: false,
        changelog_keep,
        admin_file: None,
    }
}

pub(crate) fn start_hq(b: &Backend, dir: &Path, keep: usize) -> RunningHq {
    let store = open_backend(b, dir);
    let options = loopback_options(keep);
    server::start(store, &options).unwrap()
}

pub(crate) fn now_ms() -> u64 {
    server::now_ms()
}

pub(crate) fn now() -> Moment {
    Moment(i64::try_from(now_ms()).unwrap())
}

pub(crate) fn reference_variant(tag: &str) -> ReferenceData {
    let mut r = ReferenceData::bundled().unwrap();
    r.departments[0].name = format!("{}（{tag}）", r.departments[0].name);
    r
}

// ---------------------------------------------------------------------------------------------------------------
// The fault proxy

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Forward the request and the answer.
    Pass,
    /// Close the connection without forwarding anything.
    DropRequest,
    /// Forward half of the request body to HQ, then cut both connections.
    CutRequest,
    /// Forward the request; pass on only half of HQ's answer, then cut.
    CutResponse,
    /// Forward the request (HQ commits); lose the whole answer.
    LoseResponse,
    /// Deliver the request to HQ twice, one after the other; answer with the second answer.
    Duplicate,
    /// Deliver the request to HQ twice at the same time; answer with one of the answers.
    DuplicateConcurrent,
    /// Wait, then forward.
    Delay(u64),
    /// Answer 503 with `Retry-After` (seconds) without forwarding.
    Unavailable(u32),
}

struct Plan {
    script: VecDeque<Fault>,
    default: Fault,
    random: Option<(rand_chacha::ChaCha8Rng, u32)>,
}

impl Plan {
    fn next(&mut self) -> Fault {
        if let Some(f) = self.script.pop_front() {
            return f;
        }
        if let Some((rng, pct)) = &mut self.random
            && rng.random_range(0..100) < *pct
        {
            const CHOICES: [Fault; 7] = [
                Fault::DropRequest,
                Fault::CutRequest,
                Fault::CutResponse,
                Fault::LoseResponse,
                Fault::Duplicate,
                Fault::DuplicateConcurrent,
                Fault::Unavailable(0),
            ];
            return CHOICES[rng.random_range(0..CHOICES.len())];
        }
        self.default
    }
}

pub(crate) struct Proxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    plan: Arc<Mutex<Plan>>,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream));
        let plan = Arc::new(Mutex::new(Plan { script: VecDeque::new(), default: Fault::Pass, random: None }));
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (u, p, r, s) = (Arc::clone(&upstream), Arc::clone(&plan), Arc::clone(&requests), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (u, p, r) = (Arc::clone(&u), Arc::clone(&p), Arc::clone(&r));
                    std::thread::spawn(move || handle(conn, &u, &p, &r));
                }
            })
            .unwrap();
        Proxy { addr, upstream, plan, requests, stop }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn script(&self, faults: &[Fault]) {
        self.plan.lock().unwrap().script.extend(faults.iter().copied());
    }

    fn set_default(&self, f: Fault) {
        self.plan.lock().unwrap().default = f;
    }

    fn set_random(&self, seed: u64, pct: u32) {
        self.plan.lock().unwrap().random = Some((rand_chacha::ChaCha8Rng::seed_from_u64(seed), pct));
    }

    fn clear(&self) {
        let mut p = self.plan.lock().unwrap();
        p.script.clear();
        p.default = Fault::Pass;
        p.random = None;
    }

    fn set_upstream(&self, addr: SocketAddr) {
        *self.upstream.lock().unwrap() = addr;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one HTTP/1.1 request (head and `content-length` body); the head is rewritten to close the connection after
/// the answer, so each connection carries one request and each request meets one fault.
fn read_request(conn: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut len = 0usize;
    let mut lines: Vec<&str> = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if !lower.starts_with("connection:") {
            lines.push(line);
        }
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let new_head = format!("{}\r\nconnection: close\r\n\r\n", lines.join("\r\n"));
    Some((new_head.into_bytes(), body))
}

fn forward(upstream: SocketAddr, head: &[u8], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(2))?;
    up.set_read_timeout(Some(Duration::from_secs(30)))?;
    up.write_all(head)?;
    up.write_all(body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    Ok(resp)
}

fn handle(mut conn: TcpStream, upstream: &Mutex<SocketAddr>, plan: &Mutex<Plan>, requests: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((head, body)) = read_request(&mut conn) else { return };
    requests.fetch_add(1, Ordering::SeqCst);
    let up = *upstream.lock().unwrap();
    let fault = plan.lock().unwrap().next();
    let reply = |conn: &mut TcpStream, bytes: &[u8]| {
        let _ = conn.write_all(bytes);
    };
    match fault {
        Fault::Pass => {
            if let Ok(r) = forward(up, &head, &body) {
                reply(&mut conn, &r);
            }
        }
        Fault::Delay(ms) => {
            std::thread::sleep(Duration::from_millis(ms));
            if let Ok(r) = forward(up, &head, &body) {
                reply(&mut conn, &r);
            }
        }
        Fault::DropRequest => {}
        Fault::CutRequest => {
            if let Ok(mut s) = TcpStream::connect(up) {
                let _ = s.write_all(&head);
                let _ = s.write_all(&body[..body.len() / 2]);
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        Fault::CutResponse => {
            if let Ok(r) = forward(up, &head, &body) {
                reply(&mut conn, &r[..r.len() / 2]);
            }
        }
        Fault::LoseResponse => {
            let _ = forward(up, &head, &body);
        }
        Fault::Duplicate => {
            let _ = forward(up, &head, &body);
            if let Ok(r) = forward(up, &head, &body) {
                reply(&mut conn, &r);
            }
        }
        Fault::DuplicateConcurrent => {
            let (h2, b2) = (head.clone(), body.clone());
            let twin = std::thread::spawn(move || forward(up, &h2, &b2));
            let first = forward(up, &head, &body);
            let second = twin.join().unwrap();
            if let Ok(r) = first.or(second) {
                reply(&mut conn, &r);
            }
        }
        Fault::Unavailable(secs) => {
            let body = br#"{"code":"unavailable","message":"HQ is busy"}"#;
            let head = format!(
                "HTTP/1.1 503 Service Unavailable\r\nretry-after: {secs}\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            reply(&mut conn, head.as_bytes());
            reply(&mut conn, body);
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

// ---------------------------------------------------------------------------------------------------------------
// Kiosks

pub(crate) struct Kiosk {
    pub(crate) store: Store,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) cred: Credential,
}

pub(crate) fn open_kiosk(dir: &Path, at: Moment) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at));
    let store = Store::open_with(dir, StoreOptions { clock: clock.clone(), utc_offset: china_offset() }).unwrap();
    (store, clock)
}

/// Enrols a kiosk directly with HQ (one-time code made in HQ's store), then points its credential at `via`.
pub(crate) fn enrol(hq: &RunningHq, dir: &Path, site: &str, desk: &str, via: &str) -> Kiosk {
    let (store, clock) = open_kiosk(dir, now());
    let code = hq.store().create_code(site, desk, now_ms(), 3_600_000).unwrap();
    let (mut cred, _) = kiosk_sync::enroll(&store, dir, &hq.url(), &code, None, false).unwrap();
    cred.url = via.to_string();
    cred.save(&store, dir).unwrap();
    Kiosk { store, clock, cred }
}

/// Two desks of the site `main` on `hq`, as the app's tests set them up (clock at T0, staff on the list): the
/// customer-service office and the lobby, each with its credential.
pub(crate) struct OfficeAndLobby {
    pub(crate) office: crate::ui::Fixture,
    pub(crate) lobby: crate::ui::Fixture,
    creds: [Credential; 2],
}

impl OfficeAndLobby {
    pub(crate) fn enrol(hq: &RunningHq) -> Self {
        let enrol = |desk: &str| {
            let f = crate::ui::fixture(true);
            let code = hq.store().create_code("main", desk, now_ms(), 3_600_000).unwrap();
            let cred = kiosk_sync::enroll(&f.store, f.dir.path(), &hq.url(), &code, None, false).unwrap().0;
            (f, cred)
        };
        let ((office, c0), (lobby, c1)) = (enrol("office"), enrol("lobby"));
        Self { office, lobby, creds: [c0, c1] }
    }

    /// Syncs the office, the lobby and the office again, each to the end: both then hold what either wrote.
    pub(crate) fn sync(&self) {
        for (f, c) in [(&self.office, &self.creds[0]), (&self.lobby, &self.creds[1]), (&self.office, &self.creds[0])] {
            assert_eq!(kiosk_sync::sync_with(&f.store, c, &options(100)).unwrap().pending, 0);
        }
    }
}

pub(crate) fn options(batch: usize) -> SyncOptions {
    SyncOptions {
        batch,
        retry: guidedesk_sync::replicate::RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(50),
        },
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        retain_acked: Duration::from_hours(30 * 24),
    }
}

/// Writes `n` arrivals, `per_tx` per transaction; every third one then moves to the next step in a second write, so
/// records get more than one op.
pub(crate) fn write_arrivals(store: &Store, n: usize, per_tx: usize) -> Vec<RecordId> {
    let refs = store.reference();
    let dept = refs.departments[0].id.clone();
    let mut ids = Vec::with_capacity(n);
    let mut done = 0;
    while done < n {
        let take = per_tx.min(n - done);
        let batch = store
            .write(|ctx| {
                let mut out = Vec::with_capacity(take);
                for i in 0..take {
                    let k = done + i;
                    // 复诊: a return visit gets no follow-up task, so the tests count arrivals only.
                    let form = ArrivalForm {
                        name: format!("同步测试{k}"),
                        sex: Some(Sex::Female),
                        visit_type: Some(VisitType::Return),
                        channel: Some(ArrivalChannel::WalkIn),
                        complaint: "头痛".into(),
                        department: dept.clone(),
                        phone: format!("139{:08}", k % 100_000_000),
                        ..ArrivalForm::default()
                    };
                    let by = StaffRef("D001".into());
                    let id = guidedesk::command::desk::register(ctx, &form, &by)?;
                    if k % 3 == 0 {
                        guidedesk::command::desk::move_step(ctx, id, VisitStep::Registered, None, &by)?;
                    }
                    out.push(id);
                }
                Ok(out)
            })
            .unwrap();
        ids.extend(batch);
        done += take;
    }
    ids
}

/// Syncs until everything is acknowledged (faults may make single cycles fail).
pub(crate) fn sync_until_done(
    k: &Kiosk,
    opts: &SyncOptions,
    max_cycles: u32,
) -> guidedesk_sync::replicate::CycleReport {
    let mut last_err = String::new();
    for _ in 0..max_cycles {
        match kiosk_sync::sync_with(&k.store, &k.cred, opts) {
            Ok(r) if r.pending == 0 => return r,
            Ok(r) => last_err = format!("{} pending", r.pending),
            Err(e) => last_err = e.to_string(),
        }
    }
    panic!("sync did not complete in {max_cycles} cycles: {last_err}");
}

fn all_records(store: &Store) -> BTreeMap<(u16, u128), AnyRecord> {
    let mut out = BTreeMap::new();
    for kind in RecordKind::ALL {
        store
            .for_each_between(kind, Moment(i64::MIN), Moment(i64::MAX), |r| {
                out.insert((kind.code(), r.id().as_u128()), r);
                Ok(())
            })
            .unwrap();
    }
    out
}

/// The invariants every scenario ends with (see the module documentation).
pub(crate) fn check_invariants(hq: &HqBackend, kiosks: &[(&Store, &str)]) {
    let receipts: BTreeSet<(DeviceId, u64)> = hq.receipts().unwrap().into_iter().map(|(k, _)| k).collect();
    let quarantined = hq.quarantined().unwrap();
    let quarantined_keys: BTreeSet<(u16, u128)> =
        quarantined.iter().map(|(_, q)| (q.op.key.kind, q.op.key.id)).collect();
    let mut expected_receipts = BTreeSet::new();
    let mut held_anywhere: BTreeSet<(u16, u128)> = BTreeSet::new();
    for (store, site) in kiosks {
        let stats = store.stats().unwrap();
        let device = store.device();
        assert_eq!(stats.outbox_pending, 0, "kiosk {} still has pending ops", stats.device);
        assert_eq!(stats.outbox_acked_seq, stats.outbox_last_seq);
        let row = hq.device(device).unwrap().expect("the kiosk is enrolled at HQ");
        assert_eq!(row.last_seq, stats.outbox_last_seq, "HQ's cursor of {} differs from its last seq", stats.device);
        for seq in 1..=stats.outbox_last_seq {
            expected_receipts.insert((device, seq));
        }
        let origins = store.origins().unwrap();
        let held = all_records(store);
        for ((kind, id), rec) in &held {
            held_anywhere.insert((*kind, *id));
            let kind_e = RecordKind::from_code(*kind).unwrap();
            let origin = origins.get(&(kind_e, RecordId::from_u128(*id))).map_or(device.0, |o| o.device);
            match hq.record(kind_e, *id).unwrap() {
                Some(at_hq) if !quarantined_keys.contains(&(*kind, *id)) => {
                    assert_eq!(&at_hq.record, rec, "{kind_e} {id:x} differs at HQ");
                    assert_eq!(at_hq.device, origin, "{kind_e} {id:x}: origin device");
                    assert_eq!(at_hq.site, *site, "{kind_e} {id:x} of another site reached {}", stats.device);
                }
                Some(_) => {}
                None => assert!(quarantined_keys.contains(&(*kind, *id)), "{kind_e} {id:x} was lost"),
            }
        }
        // Sharing: the kiosk holds every record of its site that HQ holds and its policy keeps (audit entries stay
        // with their desk).
        let policy = store.reference().sharing.clone();
        for kind in RecordKind::ALL.into_iter().filter(|k| *k != RecordKind::Audit) {
            for id in hq.ids_between(kind, Some(site), i64::MIN, i64::MAX).unwrap() {
                let at_hq = hq.record(kind, id).unwrap().unwrap();
                let own = at_hq.device == device.0;
                if own || policy.keeps(&at_hq.record, store.now()) {
                    assert!(
                        held.contains_key(&(kind.code(), id)),
                        "{kind} {id:x} of site {site} missing at {}",
                        stats.device
                    );
                }
            }
        }
        assert!(store.check().unwrap().is_empty(), "kiosk store check: {:?}", store.check().unwrap());
        // Reference data: equal to what HQ publishes to the site, with HQ's head as cursor.
        let source = hq.changes_for("reference", site).unwrap();
        let head = source.head().unwrap();
        assert_eq!(store.pull_cursor("reference").unwrap(), head, "pull cursor of {}", stats.device);
        if let Some((_, data)) = hq.reference_for(site).unwrap() {
            assert_eq!(*store.reference(), data, "reference data of {} differs from HQ's", stats.device);
        }
        assert_eq!(store.pull_cursor("records").unwrap(), hq.feed_head(site).unwrap(), "records cursor");
    }
    assert_eq!(receipts, expected_receipts, "HQ's receipts are not exactly one per (device, seq) written");
    let hq_records: u64 = hq.stats().unwrap().records.values().sum();
    let quarantined_only =
        quarantined_keys.iter().filter(|(k, id)| hq.record(RecordKind::from_code(*k).unwrap(), *id).unwrap().is_none());
    assert_eq!(
        hq_records + quarantined_only.count() as u64,
        held_anywhere.len() as u64,
        "HQ holds records no kiosk wrote"
    );
}

/// One more cycle for every kiosk once all have pushed everything, so each has pulled what the others sent.
pub(crate) fn settle(kiosks: &[&Kiosk]) {
    for k in kiosks {
        sync_until_done(k, &options(500), 3);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

fn cut_mid_request_and_mid_response(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    hq.store().import_reference(&reference_variant("v1"), None, 100).unwrap();
    let proxy = Proxy::start(hq.addr());
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &proxy.url());
    write_arrivals(&k.store, 300, 50);
    proxy.script(&[
        Fault::CutRequest,
        Fault::CutResponse,
        Fault::Pass,
        Fault::CutRequest,
        Fault::CutResponse,
        Fault::CutResponse,
        Fault::Pass,
        Fault::CutRequest,
    ]);
    let report = sync_until_done(&k, &options(40), 10);
    assert_eq!(report.pending, 0);
    assert!(proxy.requests.load(Ordering::SeqCst) > 8, "every scripted fault met a request");
    proxy.clear();
    kiosk_sync::sync_with(&k.store, &k.cred, &options(40)).unwrap();
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

fn audit_log_reaches_hq_with_its_chain_verifiable_there(backend: &Backend) {
    use guidedesk::model::{AuditAction, AuditEntry, AuditTarget, Chained};
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let proxy = Proxy::start(hq.addr());
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &proxy.url());
    let ids = write_arrivals(&k.store, 40, 10);
    let lead = StaffRef("L1".into());
    for (i, id) in ids.iter().enumerate() {
        let target = Some(AuditTarget { kind: RecordKind::Arrival, id: *id });
        let action = if i % 2 == 0 { AuditAction::View } else { AuditAction::Reveal };
        k.store.audit(&lead, action, target, "test").unwrap();
    }
    // Entries written in one transaction with other records chain in order too.
    k.store
        .write(|ctx| {
            for _ in 0..5 {
                ctx.audit(&lead, AuditAction::Export, None, "arrival csv")?;
            }
            Ok(())
        })
        .unwrap();
    proxy.set_random(7, 30);
    sync_until_done(&k, &options(16), 40);
    proxy.clear();
    check_invariants(hq.store(), &[(&k.store, "main")]);
    // HQ's copy holds the whole chain: every hash recomputes and every entry follows the one before.
    let mut at_hq: Vec<AuditEntry> = hq
        .store()
        .ids_of_device(k.store.device(), RecordKind::Audit)
        .unwrap()
        .into_iter()
        .map(|id| match hq.store().record(RecordKind::Audit, id).unwrap().unwrap().record {
            AnyRecord::Audit(a) => a,
            other => panic!("not an audit entry: {other:?}"),
        })
        .collect();
    at_hq.sort_by_key(|e| e.chain_index);
    assert_eq!(at_hq.len(), 45);
    let mut prev = [0u8; 32];
    for (i, e) in at_hq.iter().enumerate() {
        assert_eq!(e.chain_index, i as u64);
        assert_eq!(e.prev_hash, prev, "entry {i} follows the one before");
        assert_eq!(Chained::compute_hash(e), e.hash, "entry {i} unaltered");
        prev = e.hash;
    }
    assert_eq!(k.store.chain_head(RecordKind::Audit).unwrap(), (45, prev));
}

fn response_lost_after_hq_committed(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let proxy = Proxy::start(hq.addr());
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &proxy.url());
    write_arrivals(&k.store, 120, 40);
    proxy.script(&[Fault::LoseResponse, Fault::LoseResponse, Fault::Pass, Fault::LoseResponse]);
    let report = sync_until_done(&k, &options(30), 5);
    // Each lost answer made the kiosk resend a batch HQ had committed: HQ skipped it as duplicates.
    assert!(report.duplicates >= 30, "{report:?}");
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

fn every_request_delivered_twice_sequentially_and_concurrently(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    hq.store().import_reference(&reference_variant("twice"), None, 100).unwrap();
    let proxy = Proxy::start(hq.addr());
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &proxy.url());
    write_arrivals(&k.store, 150, 50);
    proxy.set_default(Fault::Duplicate);
    let r = sync_until_done(&k, &options(25), 3);
    // The first delivery was applied; the second found every op already there, and its answer is the one seen.
    assert_eq!((r.applied, r.duplicates), (0, 200), "{r:?}");
    write_arrivals(&k.store, 150, 50);
    proxy.set_default(Fault::DuplicateConcurrent);
    sync_until_done(&k, &options(25), 3);
    check_invariants(hq.store(), &[(&k.store, "main")]);
    let receipts = hq.store().receipts().unwrap();
    assert_eq!(receipts.len() as u64, k.store.stats().unwrap().outbox_last_seq);
}

fn permanently_invalid_op_mid_batch_is_quarantined_and_acknowledged(backend: &Backend) {
    use guidedesk_sync::client::{ClientConfig, HttpTransport};
    use guidedesk_sync::protocol::{PushOutcome, PushRequest};
    use guidedesk_sync::replicate::Transport;
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    write_arrivals(&k.store, 20, 20);
    // A batch whose 5th op carries a payload that does not decode (as a buggy or newer kiosk might send).
    let mut ops = k.store.outbox_after(0, 10).unwrap();
    ops[4].payload = vec![0xde, 0xad, 0xbe, 0xef];
    let bad_key = ops[4].key;
    let mut cfg = ClientConfig::new(&hq.url());
    cfg.token = Some(k.cred.token.clone());
    let t = HttpTransport::new(&cfg).unwrap();
    let resp = t.push(&PushRequest { device: k.store.device(), sent_at_ms: now_ms(), ops }).unwrap();
    let PushOutcome::Accepted(ack) = resp.outcome else { panic!("{resp:?}") };
    assert_eq!(ack.acked_through, 10);
    assert_eq!(ack.applied, 9);
    assert_eq!(ack.quarantined.len(), 1);
    assert_eq!(ack.quarantined[0].0, 5);
    assert!(!ack.quarantined[0].1.is_empty());
    // The queue is not wedged: the kiosk syncs the rest. Its first batch (1–8) is all duplicates, and HQ's answer
    // acknowledges through 10, so the kiosk goes on from 11.
    let report = sync_until_done(&k, &options(8), 2);
    assert_eq!((report.duplicates, report.applied), (8, 17), "{report:?}");
    let q = hq.store().quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0, (k.store.device(), 5));
    assert_eq!(q[0].1.op.key, bad_key);
    check_invariants(hq.store(), &[(&k.store, "main")]);
    assert_eq!(hq.store().stats().unwrap().quarantined, 1);
}

fn hq_answering_503_for_a_while_is_retried_honouring_retry_after(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let proxy = Proxy::start(hq.addr());
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &proxy.url());
    write_arrivals(&k.store, 60, 60);
    proxy.script(&[Fault::Unavailable(1), Fault::Unavailable(1), Fault::Unavailable(0), Fault::Unavailable(0)]);
    let mut opts = options(100);
    opts.retry.attempts = 8;
    let started = Instant::now();
    let report = kiosk_sync::sync_with(&k.store, &k.cred, &opts).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After: 1 was not honoured twice");
    assert_eq!(report.retries, 4);
    assert_eq!(report.pending, 0);
    // Longer than the retry budget: the cycle fails with a clear message and nothing is lost.
    write_arrivals(&k.store, 10, 10);
    proxy.set_default(Fault::Unavailable(0));
    opts.retry.attempts = 3;
    let err = kiosk_sync::sync_with(&k.store, &k.cred, &opts).unwrap_err();
    assert!(err.plain_words().contains("cannot be reached"), "{}", err.plain_words());
    assert!(err.to_string().contains("503"), "{err}");
    assert!(k.store.stats().unwrap().outbox_pending > 0);
    proxy.clear();
    sync_until_done(&k, &opts, 2);
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

fn kiosk_clocks_ahead_behind_and_jumping_back(backend: &Backend) {
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let real = now().0;
    let mut kiosks = Vec::new();
    for (i, skew) in [DAY, 365 * DAY, -DAY, 0].into_iter().enumerate() {
        let k = enrol(&hq, &dir.path().join(format!("k{i}")), "main", &format!("d{i}"), &hq.url());
        k.clock.set(Moment(real + skew));
        write_arrivals(&k.store, 20, 10);
        if i == 3 {
            // Jumping back: a year ahead, then back to the right time.
            k.clock.set(Moment(real + 365 * DAY));
            write_arrivals(&k.store, 10, 10);
            k.clock.set(Moment(real));
            write_arrivals(&k.store, 10, 10);
        }
        let report = sync_until_done(&k, &options(50), 2);
        let offset = report.hq_offset_ms.unwrap();
        assert!((offset + skew).abs() < 60_000, "kiosk {i}: HQ offset {offset} for a skew of {skew}");
        kiosks.push((k, skew));
    }
    for (i, (k, skew)) in kiosks.iter().enumerate() {
        let row = hq.store().device(k.store.device()).unwrap().unwrap();
        assert!((row.skew_ms - skew).abs() < 60_000, "kiosk {i}: skew {} recorded for {skew}", row.skew_ms);
        let receipts: Vec<_> =
            hq.store().receipts().unwrap().into_iter().filter(|((d, _), _)| *d == k.store.device()).collect();
        let clamped = receipts.iter().filter(|(_, r)| r.clamped).count();
        match i {
            0 | 1 => assert_eq!(clamped, receipts.len(), "kiosk {i}: every future stamp is clamped and flagged"),
            2 => assert_eq!(clamped, 0),
            _ => assert!(clamped > 0 && clamped < receipts.len(), "kiosk {i}: {clamped} of {}", receipts.len()),
        }
        // Reports use corrected business time: a clock a day or a year ahead is corrected back to real time.
        if i < 3 {
            for (kind, id) in all_records(&k.store).keys() {
                let r = hq.store().record(RecordKind::from_code(*kind).unwrap(), *id).unwrap().unwrap();
                assert!((r.corrected_business_ms() - real).abs() < 120_000, "kiosk {i}: corrected time off");
            }
        }
        // The HLC never went back on the kiosk, whatever its clock did.
        let ops = k.store.outbox_after(0, usize::MAX).unwrap();
        assert!(ops.windows(2).all(|w| w[0].stamp < w[1].stamp));
    }
    settle(&kiosks.iter().map(|(k, _)| k).collect::<Vec<_>>());
    let list: Vec<(&Store, &str)> = kiosks.iter().map(|(k, _)| (&k.store, "main")).collect();
    check_invariants(hq.store(), &list);
}

fn three_kiosks_at_two_sites_sync_at_once_through_faults(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    hq.store().import_reference(&reference_variant("all"), None, 100).unwrap();
    hq.store().import_reference(&reference_variant("east"), Some("east"), 100).unwrap();
    let proxy = Proxy::start(hq.addr());
    proxy.set_random(7, 25);
    let sites = ["main", "main", "east"];
    let kiosks: Vec<Kiosk> = sites
        .iter()
        .enumerate()
        .map(|(i, site)| enrol(&hq, &dir.path().join(format!("k{i}")), site, &format!("d{i}"), &proxy.url()))
        .collect();
    std::thread::scope(|s| {
        for k in &kiosks {
            s.spawn(move || {
                for round in 0..4 {
                    write_arrivals(&k.store, 40, 20);
                    let _ = kiosk_sync::sync_with(&k.store, &k.cred, &options(15));
                    if round == 1 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            });
        }
        // HQ publishes new reference data while the kiosks sync.
        std::thread::sleep(Duration::from_millis(50));
        hq.store().import_reference(&reference_variant("all-2"), None, 100).unwrap();
    });
    proxy.clear();
    for k in &kiosks {
        sync_until_done(k, &options(50), 3);
    }
    settle(&kiosks.iter().collect::<Vec<_>>());
    let list: Vec<(&Store, &str)> = kiosks.iter().zip(sites).map(|(k, s)| (&k.store, s)).collect();
    check_invariants(hq.store(), &list);
    // The east kiosk holds east's data only if it is newer than the global import; here the global one is newer.
    assert_eq!(*kiosks[2].store.reference(), reference_variant("all-2"));
    assert_eq!(hq.store().stats().unwrap().devices, 3);
}

fn revoked_device_keeps_working_locally_and_keeps_its_outbox(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    write_arrivals(&k.store, 30, 30);
    sync_until_done(&k, &options(100), 1);
    assert!(hq.store().revoke(k.store.device(), now_ms()).unwrap());
    write_arrivals(&k.store, 25, 5);
    let err = kiosk_sync::sync_with(&k.store, &k.cred, &options(100)).unwrap_err();
    assert!(err.is_revoked(), "{err}");
    assert!(err.to_string().contains("device_revoked"), "{err}");
    assert!(err.plain_words().contains("revoked"));
    let stats = k.store.stats().unwrap();
    assert!(stats.outbox_pending > 0, "the outbox was kept");
    assert_eq!(stats.records["arrival"], 55, "local work went on");
    // Enrolment does not lift a revocation; once reinstated, a code issued for this device gives it a new
    // credential, and it continues where HQ's cursor stands: nothing twice.
    let code = hq.store().create_code("main", "d1", now_ms(), 3_600_000).unwrap();
    let err = kiosk_sync::enroll(&k.store, &dir.path().join("k"), &hq.url(), &code, None, false).unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    assert!(hq.store().reinstate(k.store.device()).unwrap());
    let code = hq.store().create_code_for("main", "d1", Some(k.store.device()), now_ms(), 3_600_000).unwrap();
    let (cred, _) = kiosk_sync::enroll(&k.store, &dir.path().join("k"), &hq.url(), &code, None, false).unwrap();
    let k = Kiosk { cred, ..k };
    let report = sync_until_done(&k, &options(100), 1);
    assert_eq!(report.duplicates, 0);
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

fn too_old_pull_cursor_gets_a_snapshot(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 1);
    hq.store().import_reference(&reference_variant("1"), None, 1).unwrap();
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    let r = sync_until_done(&k, &options(100), 1);
    assert_eq!(*k.store.reference(), reference_variant("1"));
    assert_eq!(r.resets, 0);
    for v in ["2", "3", "4"] {
        hq.store().import_reference(&reference_variant(v), None, 1).unwrap();
    }
    let r = sync_until_done(&k, &options(100), 1);
    assert_eq!(r.resets, 1, "the kiosk's cursor was older than HQ's change log: {r:?}");
    assert_eq!(*k.store.reference(), reference_variant("4"));
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

fn thirty_days_offline_with_50_000_ops(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    let start = now().0 - 30 * 86_400_000;
    // 30 days of work: 1 250 arrivals a day, a third of them moved on once → 50 000 ops.
    let t0 = Instant::now();
    let mut written = 0;
    for day in 0..30 {
        k.clock.set(Moment(start + day * 86_400_000));
        write_arrivals(&k.store, 1250, 1250);
        written += 1250;
    }
    k.clock.set(now());
    let last = k.store.stats().unwrap().outbox_last_seq;
    assert!(last >= 50_000, "{last} ops for {written} arrivals");
    eprintln!("50 000 ops written in {:.1} s", t0.elapsed().as_secs_f64());
    let started = Instant::now();
    let report = sync_until_done(&k, &options(1000), 1);
    eprintln!("50 000 ops synced in {:.1} s ({} batches)", started.elapsed().as_secs_f64(), report.batches);
    assert_eq!(report.applied, last);
    let t1 = Instant::now();
    check_invariants(hq.store(), &[(&k.store, "main")]);
    eprintln!("invariants checked in {:.1} s", t1.elapsed().as_secs_f64());
    // Acknowledged ops are kept for the retention period, then pruned.
    assert_eq!(k.store.outbox_after(0, 1).unwrap().first().map(|o| o.seq), Some(1));
    let mut opts = options(1000);
    opts.retain_acked = Duration::ZERO;
    k.clock.advance(1);
    kiosk_sync::sync_with(&k.store, &k.cred, &opts).unwrap();
    assert!(k.store.outbox_after(0, 1).unwrap().is_empty());
    assert!(k.store.check().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Real processes: HQ killed and restarted, kiosk killed mid-sync

pub(crate) fn spawn_hq_binary(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
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

pub(crate) fn hq_cli(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq")).args(args).arg("--data-dir").arg(dir).output().unwrap();
    assert!(out.status.success(), "guidedesk-hq {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn hq_killed_and_restarted_mid_batch() {
    let dir = tempfile::tempdir().unwrap();
    let hq_dir = dir.path().join("hq");
    let (mut child, addr) = spawn_hq_binary(&hq_dir);
    // Administration while the server runs goes through its loopback admin endpoint.
    let code_out = hq_cli(&hq_dir, &["enroll-code", "--site", "main", "--desk", "d1"]);
    let code = code_out.lines().last().unwrap().trim().to_string();
    let ref_file = dir.path().join("ref.json");
    std::fs::write(&ref_file, serde_json::to_string(&reference_variant("cli")).unwrap()).unwrap();
    hq_cli(&hq_dir, &["ref", "import", ref_file.to_str().unwrap()]);
    let proxy = Proxy::start(addr);
    proxy.set_default(Fault::Delay(5));
    let kdir = dir.path().join("k");
    let (store, clock) = open_kiosk(&kdir, now());
    let (mut cred, _) = kiosk_sync::enroll(&store, &kdir, &format!("http://{addr}"), &code, None, false).unwrap();
    cred.url = proxy.url();
    let k = Kiosk { store, clock, cred };
    write_arrivals(&k.store, 3000, 500);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut kills = 0;
    for _ in 0..4 {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    if matches!(kiosk_sync::sync_with(&k.store, &k.cred, &options(100)), Ok(r) if r.pending == 0) {
                        break;
                    }
                }
            });
            std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            // Restart on the same store (a new port; the proxy follows it).
            let (c, a) = spawn_hq_binary(&hq_dir);
            child = c;
            proxy.set_upstream(a);
            stop.store(true, Ordering::SeqCst);
        });
        write_arrivals(&k.store, 100, 100);
    }
    proxy.clear();
    sync_until_done(&k, &options(500), 3);
    let stats_out = hq_cli(&hq_dir, &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats_out).unwrap();
    assert_eq!(stats["devices"], 1);
    assert_eq!(stats["records"]["arrival"], 3400);
    child.kill().unwrap();
    child.wait().unwrap();
    let hq = HqBackend::from(HqStore::open(&hq_dir).unwrap());
    check_invariants(&hq, &[(&k.store, "main")]);
    assert_eq!(kills, 4);
}

fn kiosk_sigkilled_mid_sync(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    hq.store().import_reference(&reference_variant("k"), None, 100).unwrap();
    let proxy = Proxy::start(hq.addr());
    proxy.set_default(Fault::Delay(25));
    let kdir = dir.path().join("k");
    {
        let k = enrol(&hq, &kdir, "main", "d1", &proxy.url());
        write_arrivals(&k.store, 1500, 500);
    }
    std::fs::write(kdir.join("config.toml"), "[sync]\nbatch_size = 20\n").unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut killed = 0;
    for _ in 0..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_guidedesk"))
            .arg("--data-dir")
            .arg(&kdir)
            .arg("sync")
            .env_remove("GUIDEDESK_DATA_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(100..700)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        let store = Store::open(&kdir).unwrap();
        assert!(store.check().unwrap().is_empty());
    }
    assert!(killed >= 2, "only {killed} kills landed mid-sync");
    proxy.clear();
    let out = crate::guidedesk(&kdir, &["sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (store, _) = open_kiosk(&kdir, now());
    check_invariants(hq.store(), &[(&store, "main")]);
}

#[test]
fn sync_command_reports_clearly_when_not_enrolled_or_hq_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::guidedesk(dir.path(), &["sync"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not enrolled"), "{err}");
    // HQ down: a closed port on loopback.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = Store::open(dir.path()).unwrap();
    let cred = Credential {
        url: format!("http://127.0.0.1:{port}"),
        token: "x".into(),
        device: uuid::Uuid::from_u128(store.device().0).to_string(),
        site: "main".into(),
        desk: "d1".into(),
        ca_pem: None,
        allow_plain_http: false,
    };
    cred.save(&store, dir.path()).unwrap();
    write_arrivals(&store, 3, 3);
    drop(store);
    std::fs::write(dir.path().join("config.toml"), "[sync]\ntimeout_secs = 5\n").unwrap();
    let out = crate::guidedesk(dir.path(), &["sync"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot be reached"), "{err}");
    // Plain HTTP to a non-loopback HQ is refused before anything is sent.
    let kdir = dir.path().join("other");
    let out = crate::guidedesk(&kdir, &["enroll", "--hq", "http://192.0.2.1:8080", "--code", "AAAA"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain HTTP"));
}

// ---------------------------------------------------------------------------------------------------------------
// HTTPS: the way a real site runs it

/// A private CA and a certificate for `localhost`/127.0.0.1 signed by it: (CA PEM, chain PEM, key PEM).
fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "GuideDesk test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "GuideDesk HQ");
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn https_with_a_private_ca_in_three_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = test_pki();
    let (ca_file, cert_file, key_file) =
        (dir.path().join("ca.pem"), dir.path().join("hq.pem"), dir.path().join("hq.key"));
    std::fs::write(&ca_file, ca).unwrap();
    std::fs::write(&cert_file, chain).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let hq_dir = dir.path().join("hq");
    // 1. serve
    let mut child = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert_file)
        .arg("--tls-key")
        .arg(&key_file)
        .arg("--data-dir")
        .arg(&hq_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("https://"), "{line}");
    let port = line.trim().rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{port}");
    // 2. a one-time code
    let code = hq_cli(&hq_dir, &["enroll-code", "--site", "main", "--desk", "lobby-1"]);
    let code = code.lines().last().unwrap().trim().to_string();
    let kdir = dir.path().join("kiosk");
    {
        let store = Store::open(&kdir).unwrap();
        write_arrivals(&store, 30, 30);
    }
    // Without the CA, the kiosk does not trust HQ's certificate, and the code is not used up.
    let out = crate::guidedesk(&kdir, &["enroll", "--hq", &url, "--code", &code]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be reached"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 3. enrol with the CA, then sync.
    let out = crate::guidedesk(&kdir, &["enroll", "--hq", &url, "--code", &code, "--ca", ca_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = crate::guidedesk(&kdir, &["sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The code works once.
    let other = dir.path().join("other");
    let out = crate::guidedesk(&other, &["enroll", "--hq", &url, "--code", &code, "--ca", ca_file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("code_used"), "{}", String::from_utf8_lossy(&out.stderr));
    let stats: serde_json::Value = serde_json::from_str(&hq_cli(&hq_dir, &["stats", "--json"])).unwrap();
    assert_eq!(stats["records"]["arrival"], 30);
    assert_eq!(stats["devices"], 1);
    assert_eq!(stats["quarantined"], 0);
    // Plain HTTP on a non-loopback address is refused without the explicit flag.
    let out = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("hq2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain HTTP"));
    child.kill().unwrap();
    child.wait().unwrap();
    let hq = HqBackend::from(HqStore::open(&hq_dir).unwrap());
    let store = Store::open(&kdir).unwrap();
    check_invariants(&hq, &[(&store, "main")]);
}

// ---------------------------------------------------------------------------------------------------------------
// The background worker the GUI uses

fn wait_for(worker: &kiosk_sync::SyncWorker, what: &str, f: impl Fn(&kiosk_sync::SyncStatus) -> bool) {
    let start = Instant::now();
    while !f(&worker.status()) {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}: {:?}", worker.status());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sync_worker_reports_status_in_plain_words(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    hq.store().import_reference(&reference_variant("worker"), None, 100).unwrap();
    let proxy = Proxy::start(hq.addr());
    let kdir = dir.path().join("k");
    let k = enrol(&hq, &kdir, "main", "d1", &proxy.url());
    write_arrivals(&k.store, 40, 40);
    let store = Arc::new(k.store);
    let notified = Arc::new(AtomicU64::new(0));
    let n = Arc::clone(&notified);
    let config =
        guidedesk::config::SyncConfig { interval_minutes: 60, timeout_secs: 5, live: false, ..Default::default() };
    let worker = kiosk_sync::SyncWorker::spawn(
        Arc::clone(&store),
        kdir.clone(),
        &config,
        Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    assert!(worker.sync_now());
    wait_for(&worker, "a successful cycle", |s| s.last_success.is_some() && !s.running);
    let s = worker.status();
    assert!(s.enrolled);
    assert_eq!(s.records_waiting, 0);
    assert_eq!(s.last_error, None);
    assert!(s.next_run.is_some());
    assert!(notified.load(Ordering::SeqCst) > 0, "the GUI is told when the status changes");
    assert_eq!(*store.reference(), reference_variant("worker"));
    // HQ unreachable: local work goes on, the status says so in plain words and counts what waits.
    proxy.set_default(Fault::DropRequest);
    write_arrivals(&store, 5, 5);
    assert!(worker.sync_now());
    wait_for(&worker, "an error", |s| s.last_error.is_some() && !s.running);
    let s = worker.status();
    assert!(s.last_error.as_deref().unwrap().contains("cannot be reached"), "{s:?}");
    assert!(s.records_waiting >= 5);
    // Revoked: said plainly, and the outbox is kept.
    proxy.clear();
    hq.store().revoke(store.device(), now_ms()).unwrap();
    assert!(worker.sync_now());
    wait_for(&worker, "the revocation", |s| s.revoked && !s.running);
    assert!(worker.status().last_error.unwrap().contains("revoked"));
    assert!(store.stats().unwrap().outbox_pending >= 5);
    let t = Instant::now();
    worker.shutdown();
    assert!(t.elapsed() <= kiosk_sync::SHUTDOWN_WAIT, "the GUI can close promptly");
}

// ---------------------------------------------------------------------------------------------------------------
// Bad requests

fn raw_post(addr: SocketAddr, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/vnd.guidedesk.sync\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn bad_requests_get_json_errors_with_stable_codes_and_the_server_time(backend: &Backend) {
    use guidedesk_sync::protocol::PushRequest;
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let k = enrol(&hq, &dir.path().join("k"), "main", "d1", &hq.url());
    write_arrivals(&k.store, 5, 5);
    let token = k.cred.token.as_str();
    let code =
        |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["code"].as_str().unwrap().to_string();
    let encode = |r: &PushRequest| guidedesk_sync::codec::encode(r).unwrap();
    let ops = k.store.outbox_after(0, 10).unwrap();
    let me = k.store.device();
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("/v1/push", None, vec![1, 2, 3], 401, "unauthorized"),
        ("/v1/push", Some("not-a-credential"), vec![1, 2, 3], 401, "unauthorized"),
        ("/v1/push", Some(token), vec![0xff; 40], 400, "bad_request"),
        ("/v1/pull", Some(token), Vec::new(), 400, "bad_request"),
        (
            "/v1/push",
            Some(token),
            encode(&PushRequest { device: DeviceId(me.0 ^ 1), sent_at_ms: now_ms(), ops: ops.clone() }),
            403,
            "device_mismatch",
        ),
        (
            "/v1/push",
            Some(token),
            encode(&PushRequest { device: me, sent_at_ms: now_ms(), ops: vec![ops[0].clone(), ops[2].clone()] }),
            400,
            "bad_batch",
        ),
        ("/v1/enroll", None, b"{\"code\": 1}".to_vec(), 400, "bad_request"),
        (
            "/v1/enroll",
            None,
            br#"{"code":"AAAA-BBBB-CCCC","device":"0190a0a0-0000-7000-8000-000000000000"}"#.to_vec(),
            403,
            "code_invalid",
        ),
        ("/v2/push", None, Vec::new(), 404, "not_found"),
    ];
    for (path, token, body, status, wanted) in cases {
        let (got, head, text) = raw_post(hq.addr(), path, token, &body);
        assert_eq!((got, code(&text).as_str()), (status, wanted), "{path}: {text}");
        assert!(head.contains("x-guidedesk-server-time: "), "{path}: {head}");
        assert!(head.contains("content-type: application/json"), "{path}: {head}");
    }
    // Nothing of that reached the records; the real sync still works.
    assert_eq!(hq.store().stats().unwrap().records.values().sum::<u64>(), 0);
    sync_until_done(&k, &options(100), 1);
    check_invariants(hq.store(), &[(&k.store, "main")]);
}

on_both_backends!(
    cut_mid_request_and_mid_response,
    response_lost_after_hq_committed,
    every_request_delivered_twice_sequentially_and_concurrently,
    permanently_invalid_op_mid_batch_is_quarantined_and_acknowledged,
    hq_answering_503_for_a_while_is_retried_honouring_retry_after,
    kiosk_clocks_ahead_behind_and_jumping_back,
    three_kiosks_at_two_sites_sync_at_once_through_faults,
    revoked_device_keeps_working_locally_and_keeps_its_outbox,
    too_old_pull_cursor_gets_a_snapshot,
    thirty_days_offline_with_50_000_ops,
    kiosk_sigkilled_mid_sync,
    sync_worker_reports_status_in_plain_words,
    bad_requests_get_json_errors_with_stable_codes_and_the_server_time,
    audit_log_reaches_hq_with_its_chain_verifiable_there,
);

// PostgreSQL failures and several HQ processes on one database.
mod appointments;
mod chronic;
mod hub;
mod pg_faults;
mod sharing;

/// Personal data never reaches a log: HQ's output while it takes pushes (good ones, and a damaged one carrying a
/// name and phone), HQ's error answers, and the kiosk's `guidedesk sync` output hold no name, phone or complaint.
#[test]
fn no_personal_data_in_hq_or_kiosk_output() {
    use guidedesk_sync::protocol::PUSH_PATH;
    const NAME: &str = "隐私测试人";
    const PHONE: &str = "13912349876";
    const COMPLAINT: &str = "隐私主诉胸痛";
    let dir = tempfile::tempdir().unwrap();
    let hq_dir = dir.path().join("hq");
    let mut child = Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&hq_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut hq_out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    hq_out.read_line(&mut first).unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_string();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let code =
        hq_cli(&hq_dir, &["enroll-code", "--site", "main", "--desk", "d1"]).lines().last().unwrap().trim().to_string();
    let kdir = dir.path().join("k");
    let token = {
        let (store, _clock) = open_kiosk(&kdir, now());
        let (cred, _) = kiosk_sync::enroll(&store, &kdir, &url, &code, None, false).unwrap();
        let dept = store.reference().departments[0].id.clone();
        store
            .write(|ctx| {
                let form = ArrivalForm {
                    name: NAME.into(),
                    sex: Some(Sex::Female),
                    visit_type: Some(VisitType::First),
                    channel: Some(ArrivalChannel::WalkIn),
                    complaint: COMPLAINT.into(),
                    department: dept.clone(),
                    phone: PHONE.into(),
                    ..ArrivalForm::default()
                };
                let draft = form.validate(ctx.reference(), ctx.today())?;
                let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
                ctx.put(&draft.into_record(id, at, StaffRef("D001".into()), stamp))
            })
            .unwrap();
        cred.token
    };
    // A damaged body that carries the personal data is refused without echoing it.
    let damaged = format!("\u{0}\u{1}{NAME}{PHONE}{COMPLAINT}").into_bytes();
    let (status, _, body) = raw_post(addr, PUSH_PATH, Some(&token), &damaged);
    assert!(status >= 400, "{status}");
    for secret in [NAME, PHONE, COMPLAINT] {
        assert!(!body.contains(secret), "HQ's error answer echoes {secret}: {body}");
    }
    // The kiosk syncs through its command line.
    let out = crate::guidedesk(&kdir, &["sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let kiosk_text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let stats: serde_json::Value = serde_json::from_str(&hq_cli(&hq_dir, &["stats", "--json"])).unwrap();
    assert_eq!(stats["records"]["arrival"], 1, "the record did reach HQ");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut hq_text = String::new();
    hq_out.read_to_string(&mut hq_text).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut hq_text).unwrap();
    for secret in [NAME, PHONE, COMPLAINT] {
        assert!(!hq_text.contains(secret), "HQ's output holds {secret}: {hq_text}");
        assert!(!kiosk_text.contains(secret), "the kiosk's sync output holds {secret}: {kiosk_text}");
    }
}
