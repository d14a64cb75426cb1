//! Property test of the whole protocol: three devices (two at site A, one at site B) edit records concurrently, sync
//! through a transport that drops requests, loses answers after HQ committed, delivers requests twice, replays stale
//! requests late, and fails commits — in random interleavings. Each device keeps its own copy of every record it
//! writes or HQ relays to it (the record feed), and each op carries the device's whole copy of the record, as a kiosk
//! does. After a final clean sync and one more pull round, HQ holds every op exactly once (applied or quarantined),
//! every record equals the merge of every write to it whatever the delivery order, every device holds exactly HQ's
//! records of its own site and none of the other's, and every device's pulled copy of the change log equals HQ's.

#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use guidedesk_sync::memory::{MemoryHq, MemoryLog, MemoryState, RECORDS_STREAM, parse_feed_key};
use guidedesk_sync::protocol::{PullPage, PullRequest, PullResponse, PushRequest, PushResponse};
use guidedesk_sync::replicate::{
    CycleOptions, CycleReport, LocalError, Outbox, PullSink, RetryPolicy, SyncError, Transport, TransportError,
    run_cycle,
};
use guidedesk_sync::server::{apply_push, pull_page};
use guidedesk_sync::{DeviceId, Hlc, Op, RecordKey, codec};
use proptest::prelude::*;

/// Records are grow-only sets of u64: merge is union, so the expected state is order-independent.
fn merge(old: Option<&[u8]>, op: &Op) -> Result<Vec<u8>, String> {
    let new: BTreeSet<u64> = codec::decode(&op.payload).map_err(|e| format!("payload does not decode: {e}"))?;
    let mut set: BTreeSet<u64> = match old {
        Some(b) => codec::decode(b).map_err(|e| e.to_string())?,
        None => BTreeSet::new(),
    };
    set.extend(new);
    codec::encode(&set).map_err(|e| e.to_string())
}

/// The devices of a run: 0 and 1 at site A, 2 at site B.
const DEVICES: usize = 3;
const SITE_A: &str = "A";
const SITE_B: &str = "B";
/// Site B's records have ids from here on, so the sites never share a record (a record belongs to its origin's site).
const SITE_B_IDS: u128 = 1 << 64;

fn site_of_device(device: usize) -> &'static str {
    if device < 2 { SITE_A } else { SITE_B }
}

fn site_of_record(key: RecordKey) -> &'static str {
    if key.id >= SITE_B_IDS { SITE_B } else { SITE_A }
}

/// The record a device means by `record`: one of its site's.
fn record_key(device: usize, record: u8) -> RecordKey {
    let base = if site_of_device(device) == SITE_B { SITE_B_IDS } else { 0 };
    RecordKey { kind: 1, id: base + u128::from(record) }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    DropRequest,
    DropResponse,
    Duplicate,
    CommitFails,
    Unavailable,
    /// The device writes to this record while the request is under way (staff keep working during a sync); the
    /// request itself goes through.
    LocalWrite(u8),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::DropRequest),
        1 => Just(Fault::DropResponse),
        1 => Just(Fault::Duplicate),
        1 => Just(Fault::CommitFails),
        1 => Just(Fault::Unavailable),
        1 => (0u8..12).prop_map(Fault::LocalWrite),
    ]
}

#[derive(Debug, Clone)]
enum Action {
    /// Device writes to record `record` (an invalid payload when `invalid`).
    Write { device: usize, record: u8, invalid: bool },
    /// Device runs a cycle; each request meets the next fault of the list.
    Sync { device: usize, faults: Vec<Fault> },
    /// A stale push request arrives again, late.
    Replay(usize),
    /// HQ publishes a change to its log (`None` removes the key).
    Publish { key: u8, value: Option<u8> },
    /// HQ compacts its log, keeping the last few changes.
    Compact(u8),
    /// HQ takes a backup of its state.
    Backup,
    /// HQ is restored from its last backup.
    Restore,
}

/// The actions of a run; with `restores`, HQ also takes backups and is restored from them.
fn action(restores: bool) -> impl Strategy<Value = Action> {
    let restore_weight = u32::from(restores);
    prop_oneof![
        6 => (0..DEVICES, 0u8..12, prop::bool::weighted(0.05))
            .prop_map(|(device, record, invalid)| Action::Write { device, record, invalid }),
        3 => (0..DEVICES, prop::collection::vec(fault(), 0..6)).prop_map(|(device, faults)| Action::Sync { device, faults }),
        1 => any::<usize>().prop_map(Action::Replay),
        1 => (0u8..5, prop::option::of(any::<u8>())).prop_map(|(key, value)| Action::Publish { key, value }),
        1 => (0u8..4).prop_map(Action::Compact),
        restore_weight => Just(Action::Backup),
        restore_weight => Just(Action::Restore),
    ]
}

struct Device {
    id: DeviceId,
    ops: RefCell<Vec<Op>>,
    acked: Cell<u64>,
    /// The device's copy of HQ's change log (stream "s").
    pulled: RefCell<BTreeMap<String, Vec<u8>>>,
    cursor: Cell<u64>,
    /// The device's own copy of every record it wrote or HQ relayed to it, as a kiosk's store holds them.
    replica: RefCell<BTreeMap<RecordKey, BTreeSet<u64>>>,
    /// The cursor of the record feed.
    feed_cursor: Cell<u64>,
    counter: Cell<u64>,
}

impl Device {
    fn new(id: DeviceId) -> Self {
        Device {
            id,
            ops: RefCell::default(),
            acked: Cell::new(0),
            pulled: RefCell::default(),
            cursor: Cell::new(0),
            replica: RefCell::default(),
            feed_cursor: Cell::new(0),
            counter: Cell::new(0),
        }
    }

    /// Merges a page of the record feed into the replica (by union, no outbox op) and stores its cursor. A reset
    /// page (the feed starting again after an HQ restore) is merged the same way: nothing held is dropped.
    fn apply_records(&self, page: &PullPage) -> Result<(), LocalError> {
        let (PullPage::Changes { changes, cursor } | PullPage::Reset { snapshot: changes, cursor }) = page;
        let mut relayed = Vec::with_capacity(changes.len());
        for c in changes {
            let key = parse_feed_key(&c.key).ok_or_else(|| format!("relayed key {:?} is not a record", c.key))?;
            let value = c.value.as_ref().ok_or("relayed record without a value")?;
            relayed.push((key, codec::decode::<BTreeSet<u64>>(value)?));
        }
        let mut replica = self.replica.borrow_mut();
        for (key, set) in relayed {
            replica.entry(key).or_default().extend(set);
        }
        self.feed_cursor.set(*cursor);
        Ok(())
    }
}

impl Outbox for Device {
    fn device(&self) -> DeviceId {
        self.id
    }
    fn acked(&self) -> Result<u64, LocalError> {
        Ok(self.acked.get())
    }
    fn last_seq(&self) -> Result<u64, LocalError> {
        Ok(self.ops.borrow().len() as u64)
    }
    fn ops_after(&self, after: u64, limit: usize) -> Result<Vec<Op>, LocalError> {
        Ok(self.ops.borrow().iter().filter(|o| o.seq > after).take(limit).cloned().collect())
    }
    fn ack(&self, seq: u64) -> Result<(), LocalError> {
        self.acked.set(self.acked.get().max(seq));
        Ok(())
    }
    fn now_ms(&self) -> u64 {
        1_000
    }
}

impl PullSink for Device {
    fn cursor(&self, stream: &str) -> Result<u64, LocalError> {
        Ok(if stream == RECORDS_STREAM { self.feed_cursor.get() } else { self.cursor.get() })
    }
    fn apply(&self, stream: &str, page: &PullPage) -> Result<(), LocalError> {
        if stream == RECORDS_STREAM {
            return self.apply_records(page);
        }
        let mut map = self.pulled.borrow_mut();
        match page {
            PullPage::Changes { changes, cursor } => {
                for c in changes {
                    match &c.value {
                        Some(v) => map.insert(c.key.clone(), v.clone()),
                        None => map.remove(&c.key),
                    };
                }
                self.cursor.set(*cursor);
            }
            PullPage::Reset { snapshot, cursor } => {
                map.clear();
                for c in snapshot {
                    map.insert(c.key.clone(), c.value.clone().unwrap_or_default());
                }
                self.cursor.set(*cursor);
            }
        }
        Ok(())
    }
}

struct Net<'a> {
    hq: &'a MemoryHq,
    log: &'a Mutex<MemoryLog>,
    faults: RefCell<std::collections::VecDeque<Fault>>,
    history: &'a RefCell<Vec<PushRequest>>,
    /// Writes to a record of the syncing device ([`Fault::LocalWrite`]).
    local_write: Option<&'a dyn Fn(u8)>,
}

impl Net<'_> {
    fn next_fault(&self) -> Fault {
        self.faults.borrow_mut().pop_front().unwrap_or(Fault::None)
    }
    fn write_locally(&self, record: u8) {
        if let Some(write) = self.local_write {
            write(record);
        }
    }
    fn apply(&self, req: &PushRequest) -> Result<PushResponse, TransportError> {
        apply_push(self.hq, req.device, &req.ops, 2_000, req.sent_at_ms)
            .map_err(|e| TransportError::Retryable { message: e.to_string(), retry_after: None })
    }
}

fn lost() -> TransportError {
    TransportError::Retryable { message: "connection lost".into(), retry_after: None }
}

impl Transport for Net<'_> {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError> {
        self.history.borrow_mut().push(req.clone());
        match self.next_fault() {
            Fault::None => self.apply(req),
            Fault::LocalWrite(record) => {
                let r = self.apply(req);
                self.write_locally(record);
                r
            }
            Fault::DropRequest => Err(lost()),
            Fault::DropResponse => self.apply(req).and_then(|_| Err(lost())),
            Fault::Duplicate => {
                let _ = self.apply(req);
                self.apply(req)
            }
            Fault::CommitFails => {
                self.hq.fail_next_commits(1);
                let r = self.apply(req);
                self.hq.fail_next_commits(0);
                r
            }
            Fault::Unavailable => {
                Err(TransportError::Retryable { message: "503".into(), retry_after: Some(std::time::Duration::ZERO) })
            }
        }
    }

    fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError> {
        let respond = || {
            if req.stream == RECORDS_STREAM {
                self.hq.feed_page(req.device, req.cursor, req.limit, 2_000).map_err(|_| lost())
            } else {
                pull_page(&*self.log.lock().unwrap(), req.cursor, req.limit, 2_000).map_err(|_| lost())
            }
        };
        match self.next_fault() {
            Fault::DropRequest | Fault::Unavailable | Fault::CommitFails => Err(lost()),
            Fault::DropResponse => respond().and_then(|_| Err(lost())),
            Fault::None | Fault::Duplicate => respond(),
            Fault::LocalWrite(record) => {
                // HQ answered before the write: the page does not hold it, the device's copy does.
                let r = respond();
                self.write_locally(record);
                r
            }
        }
    }
}

/// HQ, its change log and the devices of one run, with what the invariants compare against.
struct World {
    hq: MemoryHq,
    log: Mutex<MemoryLog>,
    history: RefCell<Vec<PushRequest>>,
    devs: Vec<Device>,
    /// Every element written to each record by anyone.
    expected: RefCell<BTreeMap<RecordKey, BTreeSet<u64>>>,
    /// The ops written with an invalid payload.
    invalid: RefCell<BTreeSet<(DeviceId, u64)>>,
    /// HQ's last backup.
    backup: Option<MemoryState>,
    batch: usize,
    feed_limit: u32,
}

impl World {
    fn new(batch: usize, feed_limit: u32) -> Self {
        let hq = MemoryHq::new(merge);
        let devs: Vec<Device> = (0..DEVICES).map(|i| Device::new(DeviceId(1000 + i as u128))).collect();
        for (i, d) in devs.iter().enumerate() {
            hq.set_site(d.id, site_of_device(i));
        }
        World {
            hq,
            log: Mutex::new(MemoryLog::default()),
            history: RefCell::new(Vec::new()),
            devs,
            expected: RefCell::default(),
            invalid: RefCell::default(),
            backup: None,
            batch,
            feed_limit,
        }
    }

    fn options(&self, attempts: u32) -> CycleOptions {
        CycleOptions {
            batch: self.batch,
            pull_limit: 2,
            streams: vec!["s".into(), RECORDS_STREAM.into()],
            stream_limits: vec![(RECORDS_STREAM.into(), self.feed_limit)],
            retry: RetryPolicy { attempts, base: std::time::Duration::ZERO, cap: std::time::Duration::ZERO },
        }
    }

    /// Adds an element to the device's copy of a record; the op carries the whole copy (or an invalid payload).
    fn write(&self, device: usize, record: u8, bad: bool) {
        let d = &self.devs[device];
        let n = d.counter.get() + 1;
        d.counter.set(n);
        let element = (device as u64) << 32 | n;
        let key = record_key(device, record);
        let seq = d.ops.borrow().len() as u64 + 1;
        let payload = if bad {
            self.invalid.borrow_mut().insert((d.id, seq));
            vec![0xff, 0xff]
        } else {
            self.expected.borrow_mut().entry(key).or_default().insert(element);
            let mut replica = d.replica.borrow_mut();
            let local = replica.entry(key).or_default();
            local.insert(element);
            codec::encode(&*local).unwrap()
        };
        let stamp = Hlc { wall_ms: n, logical: 0, node: d.id.node() };
        d.ops.borrow_mut().push(Op { seq, key, schema: 1, stamp, payload });
    }

    /// Runs one cycle of a device; each request meets the next fault of the list.
    fn sync(&self, device: usize, faults: &[Fault], attempts: u32) -> Result<CycleReport, SyncError> {
        let net = Net {
            hq: &self.hq,
            log: &self.log,
            faults: RefCell::new(faults.iter().copied().collect()),
            history: &self.history,
            local_write: Some(&|record| self.write(device, record, false)),
        };
        let d = &self.devs[device];
        run_cycle(&net, d, d, &self.options(attempts), &|_| {})
    }

    fn step(&mut self, a: &Action) -> Result<(), TestCaseError> {
        match a {
            Action::Write { device, record, invalid } => self.write(*device, *record, *invalid),
            Action::Sync { device, faults } => {
                // Failures are expected here; the invariants are checked after the final clean sync. They include a
                // false `DeviceBehindHq` when a `Fault::LocalWrite` lands during the push phase: `run_cycle` reads
                // `last_seq` once, but a later batch from `ops_after` also carries the ops written since.
                let _ = self.sync(*device, faults, 2);
                let d = &self.devs[*device];
                prop_assert!(d.acked.get() <= d.ops.borrow().len() as u64);
            }
            Action::Replay(i) => {
                let h = self.history.borrow();
                if !h.is_empty() {
                    let req = h[i % h.len()].clone();
                    drop(h);
                    let _ = apply_push(&self.hq, req.device, &req.ops, 2_000, req.sent_at_ms);
                }
            }
            Action::Publish { key, value } => {
                self.log.lock().unwrap().put(&format!("k{key}"), value.map(|v| vec![v]));
            }
            Action::Compact(keep) => self.log.lock().unwrap().compact(usize::from(*keep)),
            Action::Backup => self.backup = Some(self.hq.state()),
            Action::Restore => {
                if let Some(b) = &self.backup {
                    self.hq.restore(b.clone());
                }
            }
        }
        Ok(())
    }

    /// A clean sync of every device, then one more pull round so each has seen what the others sent.
    fn settle(&self) -> Result<(), TestCaseError> {
        for round in 0..2 {
            for (i, d) in self.devs.iter().enumerate() {
                let report = self.sync(i, &[], 1).map_err(|e| TestCaseError::fail(format!("device {i}: {e}")))?;
                prop_assert_eq!(report.pending, 0);
                prop_assert_eq!(d.acked.get(), d.ops.borrow().len() as u64);
                if round == 1 {
                    prop_assert_eq!(report.batches, 0, "the pull round pushed something");
                }
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for d in &self.devs {
            prop_assert_eq!(&*d.pulled.borrow(), &self.log.lock().unwrap().live(), "pulled copy differs from HQ's log");
        }
        let state = self.hq.state();
        prop_assert_eq!(state.double_receipts, 0, "an op was applied twice");
        let mut all_ops = BTreeSet::new();
        for d in &self.devs {
            prop_assert_eq!(state.cursors.get(&d.id).copied().unwrap_or(0), d.ops.borrow().len() as u64);
            for op in d.ops.borrow().iter() {
                all_ops.insert((d.id, op.seq));
            }
        }
        let receipts: BTreeSet<_> = state.receipts.keys().copied().collect();
        prop_assert_eq!(receipts, all_ops, "HQ's receipts are not exactly the ops written");
        let quarantined: BTreeSet<_> = state.quarantine.keys().copied().collect();
        prop_assert_eq!(&quarantined, &*self.invalid.borrow());
        let records: BTreeMap<RecordKey, BTreeSet<u64>> =
            state.records.iter().map(|(k, v)| (*k, codec::decode(v).unwrap())).collect();
        prop_assert_eq!(&records, &*self.expected.borrow(), "HQ's records differ from the merge of every write");
        let feed_sites: BTreeMap<RecordKey, &str> = state.feed.iter().map(|(k, p)| (*k, p.site.as_str())).collect();
        let record_sites: BTreeMap<RecordKey, &str> = records.keys().map(|k| (*k, site_of_record(*k))).collect();
        prop_assert_eq!(feed_sites, record_sites, "HQ's feed does not hold every record once, at its site");
        for (i, d) in self.devs.iter().enumerate() {
            let site = site_of_device(i);
            let want: BTreeMap<RecordKey, BTreeSet<u64>> =
                records.iter().filter(|(k, _)| site_of_record(**k) == site).map(|(k, v)| (*k, v.clone())).collect();
            prop_assert_eq!(
                &*d.replica.borrow(),
                &want,
                "device {} (site {}) differs from HQ's records of its site",
                i,
                site
            );
        }
        Ok(())
    }
}

fn run(actions: &[Action], batch: usize, feed_limit: u32) -> Result<(), TestCaseError> {
    let mut world = World::new(batch, feed_limit);
    for a in actions {
        world.step(a)?;
    }
    if world.backup.is_some() {
        // After a restore HQ lacks ops each device believes acknowledged; a device only finds out (a gap refusal)
        // when it pushes again, so every device writes once more.
        for i in 0..DEVICES {
            world.write(i, 0, false);
        }
    }
    world.settle()?;
    world.check()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_with_faults_converge(
        batch in 1usize..5,
        feed_limit in 1u32..4,
        actions in prop::collection::vec(action(false), 1..80),
    ) {
        run(&actions, batch, feed_limit)?;
    }

    // HQ restored from older backups at random points: a device whose cursor is beyond the restored head starts
    // again from the beginning (a reset page); feed numbers handed out after a restore stay above every one handed
    // out before it, so a device that pulls only after others pushed again skips nothing. (Found with this property:
    // with numbers reused after a restore, A0 writes r1, A1 writes r2, backup, A1 syncs, restore — and A1 never
    // received r1.)
    #[test]
    fn restores_of_hq_from_older_backups_converge(
        batch in 1usize..5,
        feed_limit in 1u32..4,
        actions in prop::collection::vec(action(true), 1..80),
    ) {
        run(&actions, batch, feed_limit)?;
    }
}

#[test]
fn a_gap_after_hq_lost_data_is_refilled_from_retained_ops() {
    // HQ "restored from a backup": a fresh HQ while the device believes 5 ops were acknowledged.
    let hq = MemoryHq::new(merge);
    let log = Mutex::new(MemoryLog::default());
    let history = RefCell::new(Vec::new());
    let d = Device::new(DeviceId(7));
    for seq in 1..=8u64 {
        let payload = codec::encode(&BTreeSet::from([seq])).unwrap();
        d.ops.borrow_mut().push(Op { seq, key: RecordKey { kind: 1, id: 1 }, schema: 1, stamp: Hlc::ZERO, payload });
    }
    d.acked.set(5);
    let net = Net { hq: &hq, log: &log, faults: RefCell::default(), history: &history, local_write: None };
    let opts = CycleOptions { batch: 3, streams: vec![], ..CycleOptions::default() };
    let report = run_cycle(&net, &d, &d, &opts, &|_| {}).unwrap();
    assert_eq!(report.rewinds, 1);
    assert_eq!(hq.state().cursors[&DeviceId(7)], 8);
    let set: BTreeSet<u64> = codec::decode(&hq.state().records[&RecordKey { kind: 1, id: 1 }]).unwrap();
    assert_eq!(set, (1..=8).collect());
}

/// HQ restored from an older backup: the devices refill what HQ lost at their next cycle (nothing new to send: they
/// ask for HQ's cursor), a cursor beyond the restored head starts again from the beginning with a reset page (a
/// `Changes` page whose cursor went back would be refused by `run_cycle`), and all converge.
#[test]
fn after_hq_is_restored_from_an_older_backup_devices_pull_the_feed_again_from_the_start() {
    let mut world = World::new(2, 2);
    for (device, record) in [(0, 1), (0, 2), (1, 1), (1, 3), (2, 1)] {
        world.write(device, record, false);
    }
    world.settle().unwrap();
    world.step(&Action::Backup).unwrap();
    for (device, record) in [(0, 3), (1, 2), (1, 4), (2, 1), (2, 2)] {
        world.write(device, record, false);
    }
    world.settle().unwrap();
    world.check().unwrap();
    world.step(&Action::Restore).unwrap();
    let restored_head = world.hq.state().feed_head;
    for d in &world.devs {
        assert!(d.feed_cursor.get() > restored_head, "the restore did not take the feed head back");
    }
    // Each device's next cycle, with nothing new to send, asks HQ how far it holds its ops and resends what HQ lost
    // from its retained ops; its records cursor is beyond the restored head, so it pulls the feed from the beginning
    // (a reset page).
    let mut rewinds = 0;
    for i in 0..world.devs.len() {
        rewinds += world.sync(i, &[], 1).unwrap().rewinds;
    }
    assert!(rewinds >= 2, "the devices resent what HQ lost ({rewinds} rewinds)");
    world.settle().unwrap();
    world.check().unwrap();
}
