//! Encryption at rest: raw-file scans, the plaintext → encrypted migration, wrong and missing keys, rotation.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::crypto::StoreKey;
use super::write::person;
use super::*;
use crate::model::Arrival;
use crate::model::{
    ArrivalChannel, ArrivalForm, CaseForm, CaseGrade, FeedbackForm, Rating, Sex, StaffRef, VisitType, case::CaseOrigin,
};

/// 2026-11-23 10:00 in China.
const T0: i64 = 1_795_399_200_000;

const ZH_NAME: &str = "欧阳明珠";
const ASCII_NAME: &str = "Quentin Zephyrus";
const PHONE: &str = "13912345678";
const PHONE2: &str = "13787654321";
const COMPLAINT: &str = "左膝关节肿胀三周";
const COMMENT: &str = "导诊台的护士非常耐心细致";
const FACTS: &str = "挂号窗口排队两小时无人解释";

fn opts(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions { clock: clock.clone(), utc_offset: china_offset() }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every secret the fixture writes, for raw scans.
const SECRETS: [&str; 7] = [ZH_NAME, ASCII_NAME, PHONE, PHONE2, COMPLAINT, COMMENT, FACTS];

fn leaked(path: &Path) -> Vec<&'static str> {
    let bytes = std::fs::read(path).unwrap();
    SECRETS.into_iter().filter(|s| contains(&bytes, s)).collect()
}

/// Writes an arrival for each name, a case, and a feedback with a comment and a contact phone.
fn fill(store: &Store) -> (Arrival, Arrival) {
    let arrive = |name: &str, phone: &str| {
        store
            .write(|ctx| {
                let form = ArrivalForm {
                    name: name.into(),
                    sex: Some(Sex::Female),
                    age: "52".into(),
                    phone: phone.into(),
                    visit_type: Some(VisitType::First),
                    channel: Some(ArrivalChannel::WalkIn),
                    complaint: COMPLAINT.into(),
                    department: "neuro".into(),
                    ..ArrivalForm::default()
                };
                let d = form.validate(ctx.reference(), ctx.today())?;
                let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
                let a = d.into_record(id, at, StaffRef("g1".into()), stamp);
                ctx.put(&a)?;
                Ok(a)
            })
            .unwrap()
    };
    let a = arrive(ZH_NAME, PHONE);
    let b = arrive(ASCII_NAME, PHONE2);
    store
        .write(|ctx| {
            let form = CaseForm {
                grade: Some(CaseGrade::Complaint),
                channel: Some(crate::model::CaseChannel::Phone),
                complainant: ZH_NAME.into(),
                complainant_phone: PHONE.into(),
                facts: FACTS.into(),
                ..CaseForm::default()
            };
            let stamp = ctx.stamp();
            let due = (ctx.today(), false);
            let origin = CaseOrigin { id: ctx.new_id(), at: ctx.now(), by: StaffRef("k1".into()), due, stamp };
            let c = form.into_record(ctx.reference(), origin)?;
            ctx.put(&c)
        })
        .unwrap();
    store
        .write(|ctx| {
            let form = FeedbackForm {
                overall: Some(Rating::VerySatisfied),
                comment: COMMENT.into(),
                contact_phone: PHONE2.into(),
                complete: true,
                ..FeedbackForm::default()
            };
            let rec = form.into_record(ctx.new_id(), ctx.now())?;
            ctx.append_feedback(rec).map(drop)
        })
        .unwrap();
    (a, b)
}

fn assert_lookups(store: &Store, a: &Arrival, b: &Arrival) {
    let by_phone = store.find_by_phone(PHONE).unwrap();
    assert!(by_phone.contains(&(RecordKind::Arrival, a.id)), "{by_phone:?}");
    assert_eq!(by_phone.len(), 2, "the arrival and the case: {by_phone:?}");
    assert_eq!(store.find_by_phone(PHONE2).unwrap(), [(RecordKind::Arrival, b.id)]);
    assert!(store.find_by_phone("13900000000").unwrap().is_empty());
    let zh = store.find_by_name_prefix("欧阳", 10).unwrap();
    assert_eq!(zh.iter().filter(|(n, _, _)| n == ZH_NAME).count(), 2, "{zh:?}");
    assert_eq!(
        store.find_by_name_prefix("Quentin Zep", 10).unwrap(),
        [(ASCII_NAME.to_string(), RecordKind::Arrival, b.id)]
    );
    // Longer than the hashed prefix length: checked against the decrypted name.
    assert_eq!(store.find_by_name_prefix(ASCII_NAME, 10).unwrap().len(), 1);
    assert!(store.find_by_name_prefix("Quentin Zephyrux", 10).unwrap().is_empty());
    assert_eq!(store.find_by_name_prefix("欧阳", 1).unwrap().len(), 1, "the limit applies");
}

#[test]
fn a_stolen_store_file_reveals_no_names_phones_complaints_or_comments() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    let (a, b) = fill(&store);
    assert_lookups(&store, &a, &b);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check());
    // Sync pushes decrypted records: the outbox hands out plaintext ops.
    let ops = store.outbox_after(0, 100).unwrap();
    assert_eq!(ops.len(), 4);
    assert_eq!(decode_op_payload(&ops[0]).unwrap(), AnyRecord::Arrival(a.clone()));
    let path = store.path().to_path_buf();
    drop(store);
    assert_eq!(leaked(&path), Vec::<&str>::new());
    // The key is not in the database file, and the key file is private.
    let key_path = dir.path().join(crypto::KEY_FILE);
    let key_text = std::fs::read_to_string(&key_path).unwrap();
    let hex = key_text.lines().find_map(|l| l.strip_prefix("guidedesk-store-key v1 ")).unwrap();
    assert!(!contains(&std::fs::read(&path).unwrap(), hex));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_lookups(&store, &a, &b);
    assert_eq!(store.get::<Arrival>(a.id).unwrap().unwrap(), a);
}

/// Turns an encrypted store back into the schema-1 layout written before encryption: plaintext values, plaintext
/// phone/name/source index keys, no key check, no key file.
fn downgrade_to_plaintext_v1(store: Store, key_path: &Path) {
    let keys = store.keys();
    let tx = store.db.begin_write().unwrap();
    let mut recs = Vec::new();
    for kind in RecordKind::ALL {
        let def = tables::records(kind);
        let mut t = tx.open_table(def).unwrap();
        let all: Vec<(u128, Vec<u8>)> =
            t.iter().unwrap().map(|e| e.unwrap()).map(|(k, v)| (k.value(), v.value().to_vec())).collect();
        for (id, sealed) in all {
            let plain = keys.open(&record_place(def.name(), id), &sealed).unwrap();
            recs.push(decode_any(kind, &plain).unwrap());
            t.insert(id, plain.as_slice()).unwrap();
        }
    }
    {
        let mut ob = tx.open_table(tables::OUTBOX).unwrap();
        let all: Vec<(u64, Vec<u8>)> =
            ob.iter().unwrap().map(|e| e.unwrap()).map(|(k, v)| (k.value(), v.value().to_vec())).collect();
        for (seq, sealed) in all {
            ob.insert(seq, keys.open(&outbox_place(seq), &sealed).unwrap().as_slice()).unwrap();
        }
    }
    tx.delete_table(tables::IDX_PHONE).unwrap();
    tx.delete_table(tables::IDX_NAME).unwrap();
    tx.delete_table(tables::IDX_FOLLOWUP_SOURCE).unwrap();
    {
        let mut phones = tx.open_table(tables::IDX_PHONE).unwrap();
        let mut names = tx.open_table(tables::IDX_NAME).unwrap();
        tx.open_table(tables::IDX_FOLLOWUP_SOURCE).unwrap();
        for r in &recs {
            let (name, phone) = person(r);
            let (k, id) = (r.kind().code(), r.id().as_u128());
            if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
                names.insert((n, k, id), ()).unwrap();
            }
            if let Some(p) = phone.filter(|p| !p.is_empty()) {
                phones.insert((p, k, id), ()).unwrap();
            }
        }
        let mut m = tx.open_table(tables::META).unwrap();
        m.remove(meta::KEY_CHECK).unwrap();
        m.insert(meta::SCHEMA, 1u32.to_le_bytes().as_slice()).unwrap();
    }
    tx.commit().unwrap();
    drop(store);
    std::fs::remove_file(key_path).unwrap();
}

#[test]
fn a_plaintext_store_is_encrypted_at_open_and_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let key_path = dir.path().join(crypto::KEY_FILE);
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    let (a, b) = fill(&store);
    let path = store.path().to_path_buf();
    downgrade_to_plaintext_v1(store, &key_path);
    // The fixture really is plaintext now (otherwise this test could not fail).
    assert_eq!(leaked(&path), SECRETS.to_vec());

    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert!(key_path.exists(), "a key file was created");
    assert_eq!(store.stats().unwrap().schema, STORE_SCHEMA);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check());
    assert_lookups(&store, &a, &b);
    let ops = store.outbox_after(0, 100).unwrap();
    assert_eq!(ops.len(), 4);
    assert_eq!(decode_op_payload(&ops[1]).unwrap(), AnyRecord::Arrival(b.clone()));
    drop(store);
    assert_eq!(leaked(&path), Vec::<&str>::new(), "plaintext left in the file after migration and compaction");
    // New writes after the migration are sealed too.
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    fill(&store);
    assert_eq!(store.outbox_after(0, 100).unwrap().len(), 8);
    drop(store);
    assert_eq!(leaked(&path), Vec::<&str>::new());
}

#[test]
fn a_missing_or_wrong_key_is_refused_and_the_store_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let key_path = dir.path().join(crypto::KEY_FILE);
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    let (a, _) = fill(&store);
    let path = store.path().to_path_buf();
    let id = store.key_id();
    drop(store);
    let before = std::fs::read(&path).unwrap();
    let good_key = std::fs::read(&key_path).unwrap();

    std::fs::remove_file(&key_path).unwrap();
    let e = Store::open_with(dir.path(), opts(&clock)).unwrap_err();
    assert!(matches!(e, OpenError::KeyMissing { .. }), "{e}");
    assert!(e.to_string().contains("is encrypted but its key file") && e.to_string().contains("guidedesk.key"), "{e}");
    assert!(!key_path.exists(), "no new key was made for an encrypted store");
    assert!(std::fs::read(&path).unwrap() == before, "the store was modified");

    StoreKey::generate().unwrap().write_new(&key_path).unwrap();
    let other = std::fs::read(&key_path).unwrap();
    let e = Store::open_with(dir.path(), opts(&clock)).unwrap_err();
    assert!(matches!(e, OpenError::WrongKey { expected, .. } if expected == id), "{e}");
    assert!(e.to_string().contains("is not the key the store"), "{e}");
    assert!(std::fs::read(&path).unwrap() == before, "the store was modified");
    assert_eq!(std::fs::read(&key_path).unwrap(), other, "the key file was replaced");

    std::fs::write(&key_path, &good_key).unwrap();
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_eq!(store.get::<Arrival>(a.id).unwrap().unwrap(), a);
}

#[test]
fn altered_or_swapped_values_fail_authentication_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    let (a, b) = fill(&store);
    let tx = store.db.begin_write().unwrap();
    {
        let mut t = tx.open_table(tables::records(RecordKind::Arrival)).unwrap();
        let sealed_b = t.get(b.id.as_u128()).unwrap().unwrap().value().to_vec();
        t.insert(a.id.as_u128(), sealed_b.as_slice()).unwrap();
    }
    tx.commit().unwrap();
    let e = store.get::<Arrival>(a.id).unwrap_err().to_string();
    assert!(e.contains("rec_arrival record") && e.contains(&format!("{:032x}", a.id.as_u128())), "{e}");
    assert!(e.contains("failed authentication"), "{e}");
    let problems = store.check().unwrap();
    assert!(problems.iter().any(|p| p.contains("failed authentication")), "{problems:?}");
}

#[test]
fn rotation_re_encrypts_everything_and_replaces_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let key_path = dir.path().join(crypto::KEY_FILE);
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    let (a, b) = fill(&store);
    let old_id = store.key_id();
    let old_key = std::fs::read(&key_path).unwrap();
    let ops_before = store.outbox_after(0, 100).unwrap();
    let new_id = store.rotate_key().unwrap();
    assert_ne!(old_id, new_id);
    assert_eq!(store.key_id(), new_id);
    assert_ne!(std::fs::read(&key_path).unwrap(), old_key);
    assert!(!crypto::pending_key_path(&key_path).exists());
    assert_lookups(&store, &a, &b);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check());
    assert_eq!(store.outbox_after(0, 100).unwrap(), ops_before);
    // Writes after rotation use the new key.
    fill(&store);
    let path = store.path().to_path_buf();
    drop(store);
    assert_eq!(leaked(&path), Vec::<&str>::new());
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_eq!(store.key_id(), new_id);
    assert_eq!(store.get::<Arrival>(a.id).unwrap().unwrap(), a);
    drop(store);

    // The old key no longer opens the store.
    let new_key = std::fs::read(&key_path).unwrap();
    std::fs::write(&key_path, &old_key).unwrap();
    let e = Store::open_with(dir.path(), opts(&clock)).unwrap_err();
    assert!(matches!(e, OpenError::WrongKey { .. }), "{e}");

    // A rotation that committed but died before renaming leaves the new key in `.new`: the next open finishes it.
    crypto::write_private_file(&crypto::pending_key_path(&key_path), &new_key).unwrap();
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_eq!(store.key_id(), new_id);
    assert_eq!(std::fs::read(&key_path).unwrap(), new_key);
    assert!(!crypto::pending_key_path(&key_path).exists());
    drop(store);

    // A rotation that died before its commit leaves an unused `.new`: it is discarded, the current key is kept.
    StoreKey::generate().unwrap().write_new(&crypto::pending_key_path(&key_path)).unwrap();
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_eq!(store.key_id(), new_id);
    assert!(!crypto::pending_key_path(&key_path).exists());
}

#[test]
fn the_key_file_location_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let key_path = media.path().join("usb").join("kiosk.key");
    let store = Store::open_keyed(dir.path(), opts(&clock), &key_path).unwrap();
    fill(&store);
    assert_eq!(store.key_path(), key_path);
    drop(store);
    assert!(key_path.exists());
    assert!(!dir.path().join(crypto::KEY_FILE).exists(), "no key beside the store when it lives elsewhere");
    let e = Store::open_keyed(dir.path(), opts(&clock), &dir.path().join("absent.key")).unwrap_err();
    assert!(matches!(e, OpenError::KeyMissing { .. }), "{e}");
    Store::open_keyed(dir.path(), opts(&clock), &key_path).unwrap();
    // Config: relative paths are inside the data directory.
    assert_eq!(crypto::resolve_key_path(dir.path(), Some(Path::new("k/x.key"))), dir.path().join("k/x.key"));
}
