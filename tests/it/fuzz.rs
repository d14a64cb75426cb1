//! Hostile-input properties (proptest-driven fuzz targets), all named `fuzz_…`: the sync payload decoders, op
//! payloads, the reference-data loader and the discharge-list import into a real store. Each must never panic,
//! must answer bad input with an error, and must leave what is already stored intact.
//!
//! CI runs a bounded number of cases; a longer run: `PROPTEST_CASES=100000 cargo test --all-features --test it fuzz_`.
//! (The codec and discharge parser have their own properties in `sync/src/codec.rs` and
//! `src/import/discharges/tests.rs`.)

use std::sync::Arc;

use guidedesk::import::Limits;
use guidedesk::import::discharges::{self, ImportOptions};
use guidedesk::model::{ArrivalChannel, ArrivalForm, Moment, ReferenceData, Sex, StaffRef, VisitType};
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset, decode_op_payload};
use guidedesk_sync::codec;
use guidedesk_sync::protocol::{PullRequest, PushRequest};
use proptest::prelude::*;

/// Cases per property: `PROPTEST_CASES` when set, else the bounded CI default.
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

fn flip(mut bytes: Vec<u8>, flips: &[(usize, u8)]) -> Vec<u8> {
    let n = bytes.len();
    if n > 0 {
        for (at, b) in flips {
            bytes[at % n] = *b;
        }
    }
    bytes
}

fn store_with_one_arrival(dir: &std::path::Path) -> Store {
    let clock = Arc::new(ManualClock::new(Moment(1_767_225_600_000)));
    let store = Store::open_with(dir, StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    let dept = store.reference().departments[0].id.clone();
    store
        .write(|ctx| {
            let form = ArrivalForm {
                name: "模糊测试".into(),
                sex: Some(Sex::Male),
                visit_type: Some(VisitType::First),
                channel: Some(ArrivalChannel::WalkIn),
                complaint: "发热".into(),
                department: dept.clone(),
                phone: "13800001111".into(),
                ..ArrivalForm::default()
            };
            let draft = form.validate(ctx.reference(), ctx.today())?;
            let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
            ctx.put(&draft.into_record(id, at, StaffRef("D001".into()), stamp))
        })
        .unwrap();
    store
}

/// A real push body with one op, as a kiosk sends it.
fn real_push(store: &Store) -> Vec<u8> {
    let ops = store.outbox_after(0, 10).unwrap();
    codec::encode(&PushRequest { device: store.device(), sent_at_ms: 1, ops }).unwrap()
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn fuzz_push_and_pull_request_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode::<PushRequest>(&bytes);
        let _ = codec::decode::<PullRequest>(&bytes);
    }

    /// A real push, damaged: it either fails to decode with an error, or decodes to ops whose payloads either
    /// decode to a record under the op's key or are refused with an error naming the problem.
    #[test]
    fn fuzz_damaged_push_payloads_are_refused_or_decode_cleanly(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_one_arrival(dir.path());
        let bytes = flip(real_push(&store), &flips);
        match codec::decode::<PushRequest>(&bytes) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(req) => {
                for op in &req.ops {
                    match decode_op_payload(op) {
                        Ok(rec) => prop_assert_eq!(rec.id().as_u128(), op.key.id),
                        Err(e) => prop_assert!(!e.to_string().is_empty()),
                    }
                }
            }
        }
    }

    /// Damaged reference data is refused with an error or, when it still parses, passes its own checks before a
    /// kiosk applies it; applying never damages the store.
    #[test]
    fn fuzz_reference_json_is_refused_or_valid(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let json = ReferenceData::bundled().unwrap();
        let text = serde_json::to_vec(&json).unwrap();
        let bytes = flip(text, &flips);
        let Ok(s) = String::from_utf8(bytes) else { return Ok(()) };
        match ReferenceData::from_json(&s) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(data) => {
                let dir = tempfile::tempdir().unwrap();
                let store = store_with_one_arrival(dir.path());
                let before = store.reference();
                match store.apply_reference(data, "fuzz") {
                    Ok(()) => {}
                    Err(e) => {
                        prop_assert!(!e.to_string().is_empty());
                        prop_assert_eq!(&*store.reference(), &*before);
                    }
                }
                prop_assert!(store.check().unwrap().is_empty());
            }
        }
    }

    /// A damaged discharge list imported into a store with data: an error or a report, and the store keeps its
    /// record and passes every check.
    #[test]
    fn fuzz_discharge_import_never_damages_the_store(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..10),
    ) {
        let sample = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/samples/discharges-sample.csv")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_one_arrival(dir.path());
        let opts = ImportOptions { sheet: None, staff: None, limits: Limits::DEFAULT };
        let _ = discharges::import(&store, &flip(sample, &flips), &opts);
        prop_assert_eq!(store.count(guidedesk::model::RecordKind::Arrival).unwrap(), 1);
        prop_assert_eq!(store.find_by_phone("13800001111").unwrap().len(), 1);
        prop_assert!(store.check().unwrap().is_empty());
    }
}
