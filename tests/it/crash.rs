//! Crash safety with real processes: a child writes as fast as it can and is killed with SIGKILL at random
//! moments. After every kill the store opens; every write the child saw commit is there with its outbox entry;
//! sequence numbers have no gaps and are never reused; the HLC never goes back.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guidedesk::model::{Arrival, RecordId};
use guidedesk::store::Store;
use guidedesk_sync::Hlc;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    id: RecordId,
    stamp: Hlc,
}

fn parse(line: &str) -> Option<(u64, Seen)> {
    let mut it = line.split_whitespace();
    let seq = it.next()?.parse().ok()?;
    let id = RecordId::parse(it.next()?).ok()?;
    let wall_ms = it.next()?.parse().ok()?;
    let logical = it.next()?.parse().ok()?;
    let node = it.next()?.parse().ok()?;
    Some((seq, Seen { id, stamp: Hlc { wall_ms, logical, node } }))
}

#[test]
fn sigkill_at_random_moments_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let rounds: u32 = std::env::var("GUIDEDESK_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    let mut seen: BTreeMap<u64, Seen> = BTreeMap::new();
    let mut high_stamp = Hlc::ZERO;
    let mut killed_mid_write = 0;
    for round in 0..rounds {
        let mut child = Command::new(env!("CARGO_BIN_EXE_guidedesk"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("stress-write")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader =
            std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<String>>());
        // Let it write for a random while (after start-up), then kill it without warning.
        std::thread::sleep(Duration::from_millis(rng.random_range(60..400)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let lines = reader.join().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(status.code().is_none(), "round {round}: child exited by itself: {stderr}");
        let mut round_first: Option<Hlc> = None;
        for line in &lines {
            let (seq, s) = parse(line).unwrap_or_else(|| panic!("round {round}: bad line {line:?}"));
            assert!(s.stamp > high_stamp || round_first.is_some(), "round {round}: stamp went back: {s:?}");
            round_first.get_or_insert(s.stamp);
            if let Some(prev) = seen.insert(seq, s) {
                panic!("round {round}: seq {seq} reused: {prev:?} then {s:?}");
            }
            assert!(s.stamp > high_stamp, "round {round}: HLC went back at seq {seq}");
            high_stamp = s.stamp;
        }
        // The op of each write is stamped just after its record.

        let start = Instant::now();
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("round {round}: store does not open: {e}"));
        assert!(start.elapsed() < Duration::from_secs(30));
        assert!(store.last_stamp() >= high_stamp, "round {round}: persisted HLC is behind a committed write");
        let stats = store.stats().unwrap();
        let last = stats.outbox_last_seq;
        let max_seen = seen.keys().next_back().copied().unwrap_or(0);
        assert!(last >= max_seen, "round {round}: outbox ends at {last} but seq {max_seen} was committed");
        if last > max_seen {
            killed_mid_write += 1;
        }
        let ops = store.outbox_after(0, usize::MAX).unwrap();
        assert_eq!(ops.len() as u64, last, "round {round}: outbox has gaps");
        for (i, op) in ops.iter().enumerate() {
            assert_eq!(op.seq, i as u64 + 1, "round {round}: outbox gap");
        }
        for (seq, s) in &seen {
            let op = &ops[(*seq - 1) as usize];
            assert_eq!(op.key.id, s.id.as_u128(), "round {round}: seq {seq} holds another record");
            assert!(op.stamp > s.stamp, "round {round}: the op is stamped after the record it carries");
            let rec = store.get::<Arrival>(s.id).unwrap();
            let rec = rec.unwrap_or_else(|| panic!("round {round}: committed {} lost", s.id));
            assert_eq!(rec.steps[0].stamp, s.stamp);
        }
        // Writes that committed but were not reported before the kill are adopted, so later rounds see them.
        for op in &ops[max_seen as usize..] {
            let id = RecordId::from_u128(op.key.id);
            let rec = store.get::<Arrival>(id).unwrap().expect("an op's record exists");
            seen.insert(op.seq, Seen { id, stamp: rec.steps[0].stamp });
            high_stamp = high_stamp.max(op.stamp);
        }
        assert_eq!(store.count(guidedesk::model::RecordKind::Arrival).unwrap(), last);
        assert!(store.check().unwrap().is_empty(), "round {round}: {:?}", store.check().unwrap());
    }
    assert!(seen.len() as u32 > rounds, "the child wrote too little to test anything");
    eprintln!(
        "{rounds} kills, {} committed writes, {killed_mid_write} kills landed after an unreported commit",
        seen.len()
    );
}
