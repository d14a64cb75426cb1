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
