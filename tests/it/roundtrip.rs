//! Every record kind round-trips through the binary codec and through JSON, exactly.

use guidedesk::demo::{self, DemoOptions};
use guidedesk::model::{AnyRecord, Moment, RecordKind};
use guidedesk::store::Store;
use guidedesk_sync::codec;

#[test]
fn every_kind_round_trips_through_codec_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    demo::generate(&store, DemoOptions { days: 20, per_day: 60, seed: 3 }).unwrap();
    // The demo has no audit log: a few entries of every action.
    for action in guidedesk::model::AuditAction::ALL {
        let target = guidedesk::model::AuditTarget {
            kind: RecordKind::Arrival,
            id: guidedesk::model::RecordId::new_v7(Moment(1)),
        };
        store.audit(&guidedesk::model::StaffRef("S1".into()), action, Some(target), "round trip").unwrap();
    }
    for kind in RecordKind::ALL {
        let mut n = 0;
        store
            .for_each_between(kind, Moment(i64::MIN), Moment(i64::MAX), |rec| {
                let bytes = codec::encode(&rec).unwrap();
                assert_eq!(codec::decode::<AnyRecord>(&bytes).unwrap(), rec);
                let json = serde_json::to_string(&rec).unwrap();
                assert_eq!(serde_json::from_str::<AnyRecord>(&json).unwrap(), rec);
                n += 1;
                Ok(())
            })
            .unwrap();
        assert!(n > 0, "no {kind} records to round-trip");
    }
    // And every op in the outbox decodes to the record it carries.
    for op in store.outbox_after(0, usize::MAX).unwrap() {
        guidedesk::store::decode_op_payload(&op).unwrap();
    }
}
