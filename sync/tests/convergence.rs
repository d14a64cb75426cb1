//! Property test of the whole protocol: several devices write, sync through a transport that drops requests, loses
//! answers after HQ committed, delivers requests twice, replays stale requests late, and fails commits — in random
//! interleavings. After a final clean sync, HQ holds every op exactly once (applied or quarantined), every record
//! equals the merge of every write to it whatever the delivery order, and every device's pulled copy of the change
//! log equals HQ's.

#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use guidedesk_sync::memory::{MemoryHq, MemoryLog};
use guidedesk_sync::protocol::{PullPage, PullRequest, PullResponse, PushRequest, PushResponse};
use guidedesk_sync::replicate::{
    CycleOptions, LocalError, Outbox, PullSink, RetryPolicy, Transport, TransportError, run_cycle,
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

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    DropRequest,
    DropResponse,
    Duplicate,
    CommitFails,
    Unavailable,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::DropRequest),
        1 => Just(Fault::DropResponse),
        1 => Just(Fault::Duplicate),
        1 => Just(Fault::CommitFails),
        1 => Just(Fault::Unavailable),
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
}

fn action(devices: usize) -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (0..devices, 0u8..12, prop::bool::weighted(0.05))
            .prop_map(|(device, record, invalid)| Action::Write { device, record, invalid }),
        3 => (0..devices, prop::collection::vec(fault(), 0..6)).prop_map(|(device, faults)| Action::Sync { device, faults }),
        1 => any::<usize>().prop_map(Action::Replay),
        1 => (0u8..5, prop::option::of(any::<u8>())).prop_map(|(key, value)| Action::Publish { key, value }),
        1 => (0u8..4).prop_map(Action::Compact),
    ]
}

struct Device {
    id: DeviceId,
    ops: RefCell<Vec<Op>>,
    acked: Cell<u64>,
    pulled: RefCell<BTreeMap<String, Vec<u8>>>,
    cursor: Cell<u64>,
    counter: Cell<u64>,
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
    fn cursor(&self, _stream: &str) -> Result<u64, LocalError> {
        Ok(self.cursor.get())
    }
    fn apply(&self, _stream: &str, page: &PullPage) -> Result<(), LocalError> {
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
}

impl Net<'_> {
    fn next_fault(&self) -> Fault {
        self.faults.borrow_mut().pop_front().unwrap_or(Fault::None)
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
        let respond = || pull_page(&*self.log.lock().unwrap(), req.cursor, req.limit, 2_000).map_err(|_| lost());
        match self.next_fault() {
            Fault::DropRequest | Fault::Unavailable | Fault::CommitFails => Err(lost()),
            Fault::DropResponse => respond().and_then(|_| Err(lost())),
            Fault::None | Fault::Duplicate => respond(),
        }
    }
}

fn run(devices: usize, actions: &[Action], batch: usize) -> Result<(), TestCaseError> {
    let hq = MemoryHq::new(merge);
    let log = Mutex::new(MemoryLog::default());
    let history = RefCell::new(Vec::new());
    let devs: Vec<Device> = (0..devices)
        .map(|i| Device {
            id: DeviceId(1000 + i as u128),
            ops: RefCell::default(),
            acked: Cell::new(0),
            pulled: RefCell::default(),
            cursor: Cell::new(0),
            counter: Cell::new(0),
        })
        .collect();
    let mut expected: BTreeMap<RecordKey, BTreeSet<u64>> = BTreeMap::new();
    let mut invalid: BTreeSet<(DeviceId, u64)> = BTreeSet::new();
    let options = |attempts| CycleOptions {
        batch,
        pull_limit: 2,
        streams: vec!["s".into()],
        stream_limits: vec![],
        retry: RetryPolicy { attempts, base: std::time::Duration::ZERO, cap: std::time::Duration::ZERO },
    };
    for a in actions {
        match a {
            Action::Write { device, record, invalid: bad } => {
                let d = &devs[*device];
                let n = d.counter.get() + 1;
                d.counter.set(n);
                let element = (*device as u64) << 32 | n;
                let key = RecordKey { kind: 1, id: u128::from(*record) };
                let seq = d.ops.borrow().len() as u64 + 1;
                let payload = if *bad { vec![0xff, 0xff] } else { codec::encode(&BTreeSet::from([element])).unwrap() };
                if *bad {
                    invalid.insert((d.id, seq));
                } else {
                    expected.entry(key).or_default().insert(element);
                }
                let stamp = Hlc { wall_ms: n, logical: 0, node: d.id.node() };
                d.ops.borrow_mut().push(Op { seq, key, schema: 1, stamp, payload });
            }
            Action::Sync { device, faults } => {
                let net = Net {
                    hq: &hq,
                    log: &log,
                    faults: RefCell::new(faults.iter().copied().collect()),
                    history: &history,
                };
                let d = &devs[*device];
                // Failures are expected here; the invariants are checked after the final clean sync.
                let _ = run_cycle(&net, d, d, &options(2), &|_| {});
                prop_assert!(d.acked.get() <= d.ops.borrow().len() as u64);
            }
            Action::Replay(i) => {
                let h = history.borrow();
                if !h.is_empty() {
                    let req = h[i % h.len()].clone();
                    drop(h);
                    let _ = apply_push(&hq, req.device, &req.ops, 2_000, req.sent_at_ms);
                }
            }
            Action::Publish { key, value } => {
                log.lock().unwrap().put(&format!("k{key}"), value.map(|v| vec![v]));
            }
            Action::Compact(keep) => log.lock().unwrap().compact(usize::from(*keep)),
        }
    }
    for d in &devs {
        let net = Net { hq: &hq, log: &log, faults: RefCell::default(), history: &history };
        let report = run_cycle(&net, d, d, &options(1), &|_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(report.pending, 0);
        prop_assert_eq!(d.acked.get(), d.ops.borrow().len() as u64);
        prop_assert_eq!(&*d.pulled.borrow(), &log.lock().unwrap().live(), "pulled copy differs from HQ's log");
    }
    let state = hq.state();
    prop_assert_eq!(state.double_receipts, 0, "an op was applied twice");
    let mut all_ops = BTreeSet::new();
    for d in &devs {
        prop_assert_eq!(state.cursors.get(&d.id).copied().unwrap_or(0), d.ops.borrow().len() as u64);
        for op in d.ops.borrow().iter() {
            all_ops.insert((d.id, op.seq));
        }
    }
    let receipts: BTreeSet<_> = state.receipts.keys().copied().collect();
    prop_assert_eq!(receipts, all_ops, "HQ's receipts are not exactly the ops written");
    let quarantined: BTreeSet<_> = state.quarantine.keys().copied().collect();
    prop_assert_eq!(quarantined, invalid);
    let records: BTreeMap<RecordKey, BTreeSet<u64>> =
        state.records.iter().map(|(k, v)| (*k, codec::decode(v).unwrap())).collect();
    prop_assert_eq!(records, expected, "HQ's records differ from the merge of every write");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_with_faults_converge(
        devices in 1usize..4,
        batch in 1usize..5,
        actions in prop::collection::vec(action(3), 1..80),
    ) {
        let actions: Vec<Action> = actions
            .into_iter()
            .map(|a| match a {
                Action::Write { device, record, invalid } => Action::Write { device: device % devices, record, invalid },
                Action::Sync { device, faults } => Action::Sync { device: device % devices, faults },
                other => other,
            })
            .collect();
        run(devices, &actions, batch)?;
    }
}

#[test]
fn a_gap_after_hq_lost_data_is_refilled_from_retained_ops() {
    // HQ "restored from a backup": a fresh HQ while the device believes 5 ops were acknowledged.
    let hq = MemoryHq::new(merge);
    let log = Mutex::new(MemoryLog::default());
    let history = RefCell::new(Vec::new());
    let d = Device {
        id: DeviceId(7),
        ops: RefCell::default(),
        acked: Cell::new(0),
        pulled: RefCell::default(),
        cursor: Cell::new(0),
        counter: Cell::new(0),
    };
    for seq in 1..=8u64 {
        let payload = codec::encode(&BTreeSet::from([seq])).unwrap();
        d.ops.borrow_mut().push(Op { seq, key: RecordKey { kind: 1, id: 1 }, schema: 1, stamp: Hlc::ZERO, payload });
    }
    d.acked.set(5);
    let net = Net { hq: &hq, log: &log, faults: RefCell::default(), history: &history };
    let opts = CycleOptions { batch: 3, streams: vec![], ..CycleOptions::default() };
    let report = run_cycle(&net, &d, &d, &opts, &|_| {}).unwrap();
    assert_eq!(report.rewinds, 1);
    assert_eq!(hq.state().cursors[&DeviceId(7)], 8);
    let set: BTreeSet<u64> = codec::decode(&hq.state().records[&RecordKey { kind: 1, id: 1 }]).unwrap();
    assert_eq!(set, (1..=8).collect());
}
