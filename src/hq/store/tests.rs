//! Unit tests of the embedded HQ store: enrolment and revocation, the change log, and opening.

#![allow(clippy::unwrap_used)]

use guidedesk_sync::DeviceId;
use guidedesk_sync::server::{ChangeSource, HqStorage, HqTx};
use redb::{Database, TableDefinition};

use super::{AuthRefusal, EnrollRefusal, FILE_NAME, HqError, HqStore, REFERENCE_STREAM};
use crate::model::ReferenceData;

const NOW: u64 = 1_795_399_200_000;

fn fresh() -> (tempfile::TempDir, HqStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = HqStore::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn enrolment_codes_are_one_time_expire_and_survive_a_lost_answer() {
    let (_dir, hq) = fresh();
    let code = hq.create_code("main", "d1", NOW, 10_000).unwrap();
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(hq.enroll("NOPE-NOPE-NOPE", DeviceId(1), NOW).unwrap(), Err(EnrollRefusal::Invalid));
    // Typed in lower case without dashes, it still works.
    let typed = code.replace('-', "").to_lowercase();
    let first = hq.enroll(&typed, DeviceId(1), NOW).unwrap().unwrap();
    assert_eq!((first.site.as_str(), first.desk.as_str()), ("main", "d1"));
    // The same device again (its answer was lost): a new credential; the old one stops working.
    let second = hq.enroll(&code, DeviceId(1), NOW + 5000).unwrap().unwrap();
    assert_ne!(first.token, second.token);
    assert_eq!(hq.authenticate(&first.token).unwrap(), Err(AuthRefusal::Unknown));
    assert_eq!(hq.authenticate(&second.token).unwrap().unwrap().device, DeviceId(1));
    // Another device: refused.
    assert_eq!(hq.enroll(&code, DeviceId(2), NOW).unwrap(), Err(EnrollRefusal::Used));
    let late = hq.create_code("main", "d2", NOW, 1000).unwrap();
    assert_eq!(hq.enroll(&late, DeviceId(2), NOW + 1001).unwrap(), Err(EnrollRefusal::Expired));
    assert!(hq.create_code(" ", "d", NOW, 1).is_err());
}

#[test]
fn revocation_holds_until_reinstated_and_a_device_code_keeps_the_cursor() {
    let (_dir, hq) = fresh();
    let code = hq.create_code("east", "d1", NOW, 1000).unwrap();
    let e = hq.enroll(&code, DeviceId(9), NOW).unwrap().unwrap();
    {
        let mut tx = hq.begin().unwrap();
        tx.set_device_cursor(DeviceId(9), 42, NOW, 0).unwrap();
        tx.commit().unwrap();
    }
    assert!(hq.revoke(DeviceId(9), NOW).unwrap());
    assert!(!hq.revoke(DeviceId(10), NOW).unwrap());
    assert_eq!(hq.authenticate(&e.token).unwrap(), Err(AuthRefusal::Revoked));
    // Neither the old code (replayed) nor a new one lifts the revocation.
    assert_eq!(hq.enroll(&code, DeviceId(9), NOW + 1).unwrap(), Err(EnrollRefusal::Revoked));
    let fresh_code = hq.create_code("east", "d1", NOW, 1000).unwrap();
    assert_eq!(hq.enroll(&fresh_code, DeviceId(9), NOW).unwrap(), Err(EnrollRefusal::Revoked));
    assert!(hq.device(DeviceId(9)).unwrap().unwrap().revoked_ms.is_some());
    assert!(hq.reinstate(DeviceId(9)).unwrap());
    assert!(!hq.reinstate(DeviceId(10)).unwrap());
    assert_eq!(hq.authenticate(&e.token).unwrap().unwrap().device, DeviceId(9));
    // An enrolled device takes only a code issued for it; that one gives a new credential and keeps the cursor.
    assert_eq!(hq.enroll(&fresh_code, DeviceId(9), NOW).unwrap(), Err(EnrollRefusal::AlreadyEnrolled));
    let for_9 = hq.create_code_for("east", "d2", Some(DeviceId(9)), NOW, 1000).unwrap();
    assert_eq!(hq.enroll(&for_9, DeviceId(10), NOW).unwrap(), Err(EnrollRefusal::ForAnotherDevice));
    let e2 = hq.enroll(&for_9, DeviceId(9), NOW).unwrap().unwrap();
    assert_eq!((e2.site.as_str(), e2.desk.as_str()), ("east", "d2"));
    assert_eq!(hq.authenticate(&e.token).unwrap(), Err(AuthRefusal::Unknown));
    assert_eq!(hq.device(DeviceId(9)).unwrap().unwrap().last_seq, 42);
    // A code for another site never moves a device.
    let west = hq.create_code_for("west", "d1", Some(DeviceId(9)), NOW, 1000).unwrap();
    assert_eq!(hq.enroll(&west, DeviceId(9), NOW).unwrap(), Err(EnrollRefusal::OtherSite));
}

#[test]
fn reference_changes_are_scoped_to_sites_and_compacted_with_a_floor() {
    let (_dir, hq) = fresh();
    let mut data = ReferenceData::bundled().unwrap();
    hq.import_reference(&data, None, 10).unwrap();
    data.departments[0].name = "东院".into();
    let east = hq.import_reference(&data, Some("east"), 10).unwrap();
    let main = hq.changes_for(REFERENCE_STREAM, "main").unwrap();
    assert_eq!(main.changes_after(0, 10).unwrap().len(), 1);
    assert_eq!(main.head().unwrap(), 2);
    let e = hq.changes_for(REFERENCE_STREAM, "east").unwrap();
    assert_eq!(e.changes_after(0, 10).unwrap().len(), 2);
    assert_eq!(hq.reference_for("east").unwrap().unwrap(), (east, data.clone()));
    assert_eq!(hq.reference_for("main").unwrap().unwrap().0, 1);
    // Keeping one change: superseded global snapshots go, the floor rises, the live ones stay.
    for _ in 0..3 {
        hq.import_reference(&data, None, 1).unwrap();
    }
    let main = hq.changes_for(REFERENCE_STREAM, "main").unwrap();
    assert!(main.floor().unwrap() >= 3);
    assert_eq!(main.snapshot().unwrap().len(), 1);
    let e = hq.changes_for(REFERENCE_STREAM, "east").unwrap();
    assert_eq!(e.snapshot().unwrap().len(), 2, "the east snapshot is live and kept");
    let mut bad = data;
    bad.survey.questions.clear();
    assert!(matches!(hq.import_reference(&bad, None, 1), Err(HqError::Refused(_))));
}

#[test]
fn a_second_process_finds_the_store_locked_and_foreign_files_are_refused() {
    let (dir, _hq) = fresh();
    assert!(matches!(HqStore::open(dir.path()), Err(HqError::Locked(_))));
    let other = tempfile::tempdir().unwrap();
    let db = Database::create(other.path().join(FILE_NAME)).unwrap();
    let tx = db.begin_write().unwrap();
    tx.open_table(TableDefinition::<u64, u64>::new("something")).unwrap();
    tx.commit().unwrap();
    drop(db);
    assert!(matches!(HqStore::open(other.path()), Err(HqError::NotAnHqStore(_))));
}

/// A desk's registration as an op (arrivals decode at HQ; the payload is the kiosk codec's).
fn arrival_op(seq: u64) -> guidedesk_sync::Op {
    use crate::model::{Arrival, ArrivalChannel, ArrivalForm, Moment, Sex, StaffRef, VisitType};
    let refs = ReferenceData::bundled().unwrap();
    let form = ArrivalForm {
        name: format!("中继{seq}"),
        sex: Some(Sex::Female),
        visit_type: Some(VisitType::Return),
        channel: Some(ArrivalChannel::WalkIn),
        complaint: "头痛".into(),
        department: refs.departments[0].id.clone(),
        phone: format!("139{seq:08}"),
        ..ArrivalForm::default()
    };
    let at = Moment(i64::try_from(NOW).unwrap());
    let draft = form.validate(&refs, at.local_date(crate::model::common::china_offset())).unwrap();
    let stamp = guidedesk_sync::Hlc { wall_ms: NOW, logical: u32::try_from(seq).unwrap(), node: 7 };
    let id = crate::model::RecordId::from_u128(u128::from(seq));
    let record: Arrival = draft.into_record(id, at, StaffRef("D1".into()), stamp);
    let (_, payload) = crate::model::codec::encode_record(&record).unwrap();
    guidedesk_sync::Op {
        seq,
        key: guidedesk_sync::RecordKey { kind: crate::model::RecordKind::Arrival.code(), id: u128::from(seq) },
        schema: crate::model::RECORD_SCHEMA,
        stamp,
        payload,
    }
}

#[test]
fn a_hub_logs_each_applied_op_once_and_never_reuses_a_relay_seq_after_pruning() {
    let (_dir, mut hq) = fresh();
    let code = hq.create_code("main", "d1", NOW, 10_000).unwrap();
    hq.enroll(&code, DeviceId(5), NOW).unwrap().unwrap();
    // A store that already holds ops cannot become a hub (they were never logged).
    guidedesk_sync::server::apply_push(&hq, DeviceId(5), &[arrival_op(1)], NOW, NOW).unwrap();
    let refused = hq.enable_relay(b"{}").unwrap_err().to_string();
    assert!(refused.contains("1 ops received before it became a hub"), "{refused}");
    assert!(!hq.is_hub());

    let (_dir, mut hq) = fresh();
    let code = hq.create_code("main", "d1", NOW, 10_000).unwrap();
    hq.enroll(&code, DeviceId(5), NOW).unwrap().unwrap();
    hq.enable_relay(b"{}").unwrap();
    assert!(hq.is_hub());
    let ops: Vec<_> = (1..=3).map(arrival_op).collect();
    guidedesk_sync::server::apply_push(&hq, DeviceId(5), &ops, NOW, NOW).unwrap();
    // A retried batch is not logged twice.
    guidedesk_sync::server::apply_push(&hq, DeviceId(5), &ops, NOW, NOW).unwrap();
    let log = hq.relay_after(0, 10).unwrap();
    assert_eq!(
        log.iter().map(|e| (e.seq, e.op.seq, e.desk.as_str())).collect::<Vec<_>>(),
        [(1, 1, "d1"), (2, 2, "d1"), (3, 3, "d1")]
    );
    assert_eq!(log[0].origin, DeviceId(5));
    assert_eq!(log[1].op, ops[1], "the op exactly as the desk sent it");
    // Everything acknowledged and past retention: all but the last row go; the next op continues the numbering.
    assert_eq!(hq.relay_acked(3, NOW + 1).unwrap(), 2);
    let st = hq.relay_state().unwrap();
    assert_eq!((st.head, st.acked, st.oldest, st.pending()), (3, 3, 3, 0));
    guidedesk_sync::server::apply_push(&hq, DeviceId(5), &[arrival_op(4)], NOW, NOW).unwrap();
    assert_eq!(hq.relay_after(3, 10).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
    assert_eq!(hq.relay_state().unwrap().pending(), 1);
    // Within the retention nothing goes; a lower cursor (the group HQ restored) makes those pending again.
    assert_eq!(hq.relay_acked(1, 0).unwrap(), 0);
    assert_eq!(hq.relay_state().unwrap().pending(), 3);
}
