#![allow(clippy::unwrap_used, clippy::unnecessary_wraps, clippy::items_after_statements)]

use std::sync::Arc;

use chrono::NaiveDate;
use proptest::prelude::*;
use redb::WriteTransaction;

use super::*;
use crate::model::codec::encode_record;
use crate::model::{Arrival, Case, FollowupTask, RecordId};
use crate::model::{
    ArrivalChannel, ArrivalForm, CaseEventKind, CaseForm, CaseGrade, CaseStatus, Dimension, FeedbackForm,
    FollowupSource, FollowupStatus, Rating, Sex, StaffRef, VisitStep, VisitType, case::CaseOrigin,
};

/// 2026-11-23 10:00 in China.
const T0: i64 = 1_795_399_200_000;

fn opts(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions { clock: clock.clone(), utc_offset: china_offset() }
}

fn fresh() -> (tempfile::TempDir, Arc<ManualClock>, Store) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    (dir, clock, store)
}

fn arrival_form(name: &str, phone: &str) -> ArrivalForm {
    ArrivalForm {
        name: name.into(),
        sex: Some(Sex::Male),
        age: "40".into(),
        phone: phone.into(),
        visit_type: Some(VisitType::First),
        channel: Some(ArrivalChannel::WalkIn),
        complaint: "头痛".into(),
        department: "neuro".into(),
        ..ArrivalForm::default()
    }
}

fn register(store: &Store, name: &str, phone: &str) -> Arrival {
    store
        .write(|ctx| {
            let d = arrival_form(name, phone).validate(ctx.reference(), ctx.today())?;
            let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
            let a = d.into_record(id, at, StaffRef("g1".into()), stamp);
            ctx.put(&a)?;
            Ok(a)
        })
        .unwrap()
}

fn raw_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn write_is_durable_with_its_outbox_entry() {
    let (dir, clock, store) = fresh();
    let a = register(&store, "张伟", "13800138000");
    assert_eq!(store.get::<Arrival>(a.id).unwrap().unwrap(), a);
    let ops = store.outbox_after(0, 10).unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!((ops[0].seq, ops[0].key.kind, ops[0].key.id), (1, RecordKind::Arrival.code(), a.id.as_u128()));
    assert_eq!(decode_op_payload(&ops[0]).unwrap(), AnyRecord::Arrival(a.clone()));
    let device = store.device();
    drop(store);
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_eq!(store.device(), device);
    assert_eq!(store.get::<Arrival>(a.id).unwrap().unwrap(), a);
    assert_eq!(store.stats().unwrap().outbox_pending, 1);
    assert!(store.check().unwrap().is_empty());
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let (_dir, _clock, store) = fresh();
    register(&store, "甲", "");
    let before = store.last_stamp();
    let r: Result<(), StoreError> = store.write(|ctx| {
        let d = arrival_form("乙", "").validate(ctx.reference(), ctx.today())?;
        let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
        ctx.put(&d.into_record(id, at, StaffRef("g".into()), stamp))?;
        Err(StoreError::Conflict("changed my mind".into()))
    });
    assert!(r.is_err());
    assert_eq!(store.count(RecordKind::Arrival).unwrap(), 1);
    assert_eq!(store.stats().unwrap().outbox_last_seq, 1);
    assert_eq!(store.last_stamp(), before);
    // The next write continues the sequence without a gap.
    register(&store, "丙", "");
    let seqs: Vec<u64> = store.outbox_after(0, 10).unwrap().iter().map(|o| o.seq).collect();
    assert_eq!(seqs, [1, 2]);
}

#[test]
fn validation_errors_write_nothing() {
    let (_dir, _clock, store) = fresh();
    let r = store.write(|ctx| {
        let d = arrival_form("", "123").validate(ctx.reference(), ctx.today())?;
        let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
        ctx.put(&d.into_record(id, at, StaffRef("g".into()), stamp))
    });
    let Err(StoreError::Invalid(errs)) = r else { panic!("expected validation error") };
    assert_eq!(errs.0.iter().map(|e| e.field).collect::<Vec<_>>(), ["name", "phone"]);
    assert_eq!(store.stats().unwrap().outbox_last_seq, 0);
}

#[test]
fn a_name_prefix_lookup_returns_the_newest_matches_when_there_are_more_than_the_limit() {
    let (_dir, clock, store) = fresh();
    let mut ids = Vec::new();
    for k in 0..12 {
        clock.advance(60_000);
        ids.push(register(&store, &format!("欧阳{}", ["甲", "乙", "丙", "丁"][k % 4]), "").id);
    }
    let hits = store.find_by_name_prefix("欧阳", 5).unwrap();
    assert_eq!(hits.len(), 5);
    let newest: std::collections::BTreeSet<RecordId> = ids[7..].iter().copied().collect();
    assert_eq!(hits.iter().map(|h| h.2).collect::<std::collections::BTreeSet<_>>(), newest);
    let names: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "ordered by name");
}

#[test]
fn lookups_by_phone_name_and_day() {
    let (_dir, clock, store) = fresh();
    let a = register(&store, "欧阳娜娜", "13912345678");
    let b = register(&store, "欧阳修", "13912345678");
    let c = register(&store, "王五", "");
    let mut by_phone = store.find_by_phone("13912345678").unwrap();
    by_phone.sort();
    let mut expect = vec![(RecordKind::Arrival, a.id), (RecordKind::Arrival, b.id)];
    expect.sort();
    assert_eq!(by_phone, expect);
    let names: Vec<String> = store.find_by_name_prefix("欧阳", 10).unwrap().into_iter().map(|x| x.0).collect();
    assert_eq!(names, ["欧阳修", "欧阳娜娜"]);
    assert_eq!(store.find_by_name_prefix("欧阳", 1).unwrap().len(), 1);
    assert!(store.find_by_name_prefix("李", 10).unwrap().is_empty());
    let today = store.today();
    assert_eq!(store.arrivals_on(today).unwrap().iter().map(|x| x.id).collect::<Vec<_>>(), [a.id, b.id, c.id]);
    // Move one along; the day/step index follows.
    store
        .write(|ctx| {
            let mut x: Arrival = ctx.require(b.id)?;
            let (at, stamp) = (ctx.now(), ctx.stamp());
            x.move_to(VisitStep::Registered, at, StaffRef("g1".into()), None, stamp)?;
            ctx.put(&x)
        })
        .unwrap();
    assert_eq!(
        store.step_counts_on(today).unwrap(),
        [(VisitStep::Triaged.code(), 2), (VisitStep::Registered.code(), 1)]
    );
    clock.advance(86_400_000);
    assert!(store.arrivals_on(store.today()).unwrap().is_empty());
    assert!(store.check().unwrap().is_empty());
}

#[test]
fn hlc_never_goes_back_across_reopen_even_when_the_clock_does() {
    let (dir, clock, store) = fresh();
    register(&store, "甲", "");
    let high = store.last_stamp();
    drop(store);
    clock.set(Moment(T0 - 86_400_000 * 365));
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_eq!(store.last_stamp().wall_ms, high.wall_ms);
    register(&store, "乙", "");
    assert!(store.last_stamp() > high);
    let stamps: Vec<_> = store.outbox_after(0, 10).unwrap().iter().map(|o| o.stamp).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn feedback_is_append_only_and_chained() {
    let (_dir, _clock, store) = fresh();
    let mut ids = Vec::new();
    for overall in [Rating::Satisfied, Rating::Dissatisfied, Rating::VerySatisfied] {
        let f = store
            .write(|ctx| {
                let form = FeedbackForm {
                    overall: Some(overall),
                    ratings: vec![(Dimension::Guide, Rating::Satisfied)],
                    complete: true,
                    ..FeedbackForm::default()
                };
                let rec = form.into_record(ctx.new_id(), ctx.now())?;
                ctx.append_feedback(rec)
            })
            .unwrap();
        ids.push(f.id);
    }
    assert!(store.verify_feedback_chain().unwrap().is_empty());
    let chain = store.feedback_chain().unwrap();
    assert_eq!(chain[1].prev_hash, chain[0].hash);
    assert_eq!(store.feedback_head().unwrap(), (3, chain[2].hash));
    // put() refuses feedback; append refuses an existing id.
    let again = chain[0].clone();
    assert!(matches!(store.write(|ctx| ctx.put(&again)), Err(StoreError::Conflict(_))));
    assert!(matches!(store.write(|ctx| ctx.append_feedback(again.clone()).map(|_| ())), Err(StoreError::Conflict(_))));

    // Alter one record behind the store's back.
    let mut altered = chain[1].clone();
    altered.overall = Rating::Satisfied;
    let tx = store.db.begin_write().unwrap();
    {
        let (stored, _) = encode_record(&altered).unwrap();
        let stored = store
            .keys()
            .seal(&record_place(tables::records(RecordKind::Feedback).name(), altered.id.as_u128()), &stored)
            .unwrap();
        tx.open_table(tables::records(RecordKind::Feedback))
            .unwrap()
            .insert(altered.id.as_u128(), stored.as_slice())
            .unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(store.verify_feedback_chain().unwrap(), [ChainProblem::Altered { index: 1, id: ids[1] }]);

    // Delete the last one.
    let tx = store.db.begin_write().unwrap();
    tx.open_table(tables::records(RecordKind::Feedback)).unwrap().remove(ids[2].as_u128()).unwrap();
    tx.commit().unwrap();
    let problems = store.verify_feedback_chain().unwrap();
    assert!(problems.contains(&ChainProblem::Missing { index: 2 }), "{problems:?}");
}

#[test]
fn audit_entries_are_append_only_chained_and_an_altered_one_is_found() {
    use crate::model::{AuditAction, AuditEntry, AuditTarget};
    let (_dir, _clock, store) = fresh();
    let by = StaffRef("S1".into());
    let target = Some(AuditTarget { kind: RecordKind::Case, id: RecordId::new_v7(store.now()) });
    // Several entries in one transaction, and single ones, chain in order across transactions.
    store
        .write(|ctx| {
            ctx.audit(&by, AuditAction::View, target, "case")?;
            ctx.audit(&by, AuditAction::Reveal, target, "phone")
        })
        .unwrap();
    store.audit(&by, AuditAction::Export, None, "arrival csv").unwrap();
    let chain = store.chain::<AuditEntry>().unwrap();
    assert_eq!(chain.iter().map(|e| e.chain_index).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(chain[2].prev_hash, chain[1].hash);
    assert_eq!(store.chain_head(RecordKind::Audit).unwrap(), (3, chain[2].hash));
    assert!(store.check().unwrap().is_empty());
    // put() refuses audit entries; append refuses an existing id.
    let again = chain[0].clone();
    assert!(matches!(store.write(|ctx| ctx.put(&again)), Err(StoreError::Conflict(_))));
    assert!(matches!(store.write(|ctx| ctx.append_chained(again.clone()).map(drop)), Err(StoreError::Conflict(_))));
    // A failed transaction leaves the chain head where it was.
    let failed: Result<(), StoreError> = store.write(|ctx| {
        ctx.audit(&by, AuditAction::View, None, "x")?;
        Err(StoreError::Conflict("abandoned".into()))
    });
    assert!(failed.is_err());
    assert_eq!(store.chain_head(RecordKind::Audit).unwrap().0, 3);

    // Alter one entry behind the store's back: the actor is changed to hide who revealed the number.
    let mut altered = chain[1].clone();
    altered.actor = StaffRef("G9".into());
    let tx = store.db.begin_write().unwrap();
    {
        let (stored, _) = encode_record(&altered).unwrap();
        let place = record_place(tables::records(RecordKind::Audit).name(), altered.id.as_u128());
        let stored = store.keys().seal(&place, &stored).unwrap();
        tx.open_table(tables::records(RecordKind::Audit))
            .unwrap()
            .insert(altered.id.as_u128(), stored.as_slice())
            .unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(store.verify_chain::<AuditEntry>().unwrap(), [ChainProblem::Altered { index: 1, id: chain[1].id }]);
    assert!(store.check().unwrap().iter().any(|p| p.starts_with("audit log #1") && p.ends_with("was altered")));
}

#[test]
fn reference_data_is_replaced_only_by_apply_and_survives_reopen() {
    let (dir, clock, store) = fresh();
    assert_eq!(store.reference_source().unwrap(), None);
    let mut r = (*store.reference()).clone();
    r.departments.retain(|d| d.id != "tcm");
    r.doctors.retain(|d| d.department != "tcm");
    r.duty.retain(|s| !s.doctor.starts_with("tcm-"));
    store.apply_reference(r.clone(), "hq").unwrap();
    drop(store);
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_eq!(*store.reference(), r);
    assert_eq!(store.reference_source().unwrap().as_deref(), Some("hq"));
    let mut bad = r;
    bad.doctors[0].department = "gone".into();
    assert!(store.apply_reference(bad, "hq").is_err());
}

#[test]
fn acknowledgement_moves_forward_only() {
    let (_dir, _clock, store) = fresh();
    for i in 0..3 {
        register(&store, &format!("人{i}"), "");
    }
    store.ack_through(2).unwrap();
    store.ack_through(1).unwrap();
    assert_eq!(store.stats().unwrap().outbox_pending, 1);
    assert!(store.ack_through(9).is_err());
}

#[test]
fn refuses_foreign_files_and_leaves_them_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, "name,phone\n张三,138\n").unwrap();
    let e = Store::open(dir.path()).unwrap_err();
    assert!(matches!(e, OpenError::NotAStore { .. }), "{e}");
    assert!(e.to_string().contains("not a GuideDesk store"));
    assert!(raw_bytes(&path) == "name,phone\n张三,138\n".as_bytes());

    // A redb database of some other program.
    std::fs::remove_file(&path).unwrap();
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(redb::TableDefinition::<&str, u64>::new("inventory")).unwrap().insert("x", 1).unwrap();
        tx.commit().unwrap();
    }
    let before = raw_bytes(&path);
    let e = Store::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("inventory"), "{e}");
    assert!(raw_bytes(&path) == before, "a foreign file was modified");
}

#[test]
fn refuses_a_corrupt_store_and_leaves_it_untouched() {
    let (dir, _clock, store) = fresh();
    for i in 0..50 {
        register(&store, &format!("人{i}"), "");
    }
    drop(store);
    let path = dir.path().join(FILE_NAME);
    let mut bytes = raw_bytes(&path);
    // Keep the redb magic, destroy the header and everything after it.
    for b in bytes.iter_mut().skip(9) {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let e = Store::open(dir.path()).unwrap_err();
    assert!(matches!(e, OpenError::Corrupt { .. } | OpenError::Storage { .. }), "{e}");
    assert!(raw_bytes(&path) == bytes, "a corrupt store was modified");
}

#[test]
fn refuses_a_newer_schema() {
    let (dir, clock, store) = fresh();
    drop(store);
    fn noop(_: &WriteTransaction, _: &migrate::MigrationEnv<'_>) -> Result<(), StoreError> {
        Ok(())
    }
    let mut steps = migrate::MIGRATIONS.to_vec();
    steps.push(migrate::Migration { to: STORE_SCHEMA + 1, name: "future", run: noop });
    let store = Store::open_migrating(dir.path(), opts(&clock), &steps).unwrap();
    assert_eq!(store.stats().unwrap().schema, STORE_SCHEMA + 1);
    drop(store);
    let e = Store::open_with(dir.path(), opts(&clock)).unwrap_err();
    assert!(
        matches!(e, OpenError::NewerSchema { found, supported, .. } if found == STORE_SCHEMA + 1 && supported == STORE_SCHEMA)
    );
    assert!(e.to_string().contains("newer GuideDesk"));
}

#[test]
fn migrations_run_in_order_once_and_can_rebuild_indexes() {
    let (dir, clock, store) = fresh();
    let a = register(&store, "赵六", "13700001111");
    // Simulate an index lost by an older layout.
    let tx = store.db.begin_write().unwrap();
    tx.delete_table(tables::IDX_PHONE).unwrap();
    tx.open_table(tables::IDX_PHONE).unwrap();
    tx.commit().unwrap();
    assert!(!store.check().unwrap().is_empty());
    drop(store);
    fn rebuild(tx: &WriteTransaction, env: &migrate::MigrationEnv<'_>) -> Result<(), StoreError> {
        rebuild_indexes_in(tx, env.offset, env.keys)
    }
    fn fail(_: &WriteTransaction, _: &migrate::MigrationEnv<'_>) -> Result<(), StoreError> {
        Err(StoreError::Conflict("must not run twice".into()))
    }
    let mut steps = migrate::MIGRATIONS.to_vec();
    steps.push(migrate::Migration { to: STORE_SCHEMA + 1, name: "rebuild indexes", run: rebuild });
    let store = Store::open_migrating(dir.path(), opts(&clock), &steps).unwrap();
    assert!(store.check().unwrap().is_empty());
    assert_eq!(store.find_by_phone("13700001111").unwrap(), [(RecordKind::Arrival, a.id)]);
    drop(store);
    // Reopening at the same version runs nothing again.
    steps[STORE_SCHEMA as usize].run = fail;
    Store::open_migrating(dir.path(), opts(&clock), &steps).unwrap();
}

#[test]
fn rebuilding_the_indexes_drops_stale_entries_of_every_index_table() {
    let (_dir, _clock, store) = fresh();
    let a = register(&store, "赵六", "13700001111");
    // A stale entry in each of the last two index tables (a booking and a consultation that no record names).
    let tx = store.db.begin_write().unwrap();
    tx.open_table(tables::IDX_APPOINTMENT_DAY).unwrap().insert((20_000, 1u8, 7u128), ()).unwrap();
    tx.open_table(tables::IDX_CONSULTATION_ARRIVAL).unwrap().insert((a.id.as_u128(), 9u128), ()).unwrap();
    tx.commit().unwrap();
    let problems = store.check().unwrap();
    assert!(problems.iter().any(|p| p.contains("idx_appointment_day")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("idx_consultation_arrival")), "{problems:?}");
    store.rebuild_indexes().unwrap();
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    assert_eq!(store.find_by_phone("13700001111").unwrap(), [(RecordKind::Arrival, a.id)]);
}

#[test]
fn missing_or_unusable_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let e = Store::open(&file).unwrap_err();
    assert!(matches!(e, OpenError::DataDir { .. }), "{e}");
    assert!(e.to_string().contains("plain-file"));
}

#[test]
fn second_process_handle_is_refused_while_open() {
    let (dir, clock, _store) = fresh();
    let e = Store::open_with(dir.path(), opts(&clock)).unwrap_err();
    assert!(matches!(e, OpenError::Locked { .. }), "{e}");
}

#[test]
fn cases_and_followups_are_listed_by_due_date_while_open() {
    let (_dir, _clock, store) = fresh();
    let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let mk_case = |due: NaiveDate| {
        store
            .write(|ctx| {
                let form = CaseForm {
                    grade: Some(CaseGrade::Complaint),
                    channel: Some(crate::model::CaseChannel::Phone),
                    complainant: "钱七".into(),
                    complainant_phone: "13600000000".into(),
                    facts: "等太久".into(),
                    ..CaseForm::default()
                };
                let stamp = ctx.stamp();
                let origin =
                    CaseOrigin { id: ctx.new_id(), at: ctx.now(), by: StaffRef("k1".into()), due: (due, false), stamp };
                let c = form.into_record(ctx.reference(), origin)?;
                ctx.put(&c)?;
                Ok(c)
            })
            .unwrap()
    };
    let late = mk_case(day(27));
    let soon = mk_case(day(25));
    assert_eq!(store.open_cases_due(None).unwrap().iter().map(|c| c.id).collect::<Vec<_>>(), [soon.id, late.id]);
    assert_eq!(store.open_cases_due(Some(day(26))).unwrap().len(), 1);
    store
        .write(|ctx| {
            let mut c: Case = ctx.require(soon.id)?;
            let (at, stamp) = (ctx.now(), ctx.stamp());
            c.advance(
                CaseStatus::Closed,
                CaseEventKind::Closed { satisfaction: None },
                None,
                at,
                StaffRef("k1".into()),
                stamp,
            )?;
            ctx.put(&c)
        })
        .unwrap();
    assert_eq!(store.open_cases_due(None).unwrap().iter().map(|c| c.id).collect::<Vec<_>>(), [late.id]);

    // Follow-ups: one task per source, ever.
    let source = FollowupSource::Discharge { his_key: "ZY1".into(), discharged_on: day(20), diagnosis: None };
    let mk_task = |src: FollowupSource| {
        store.write(|ctx| {
            let stamp = ctx.stamp();
            let t = FollowupTask {
                id: ctx.new_id(),
                created_at: ctx.now(),
                created_by: StaffRef("import".into()),
                source: src,
                patient_name: "孙八".into(),
                phone: "13500000000".into(),
                department: Some("ortho".into()),
                inpatient: true,
                due_from: day(27),
                due_to: day(30),
                status: Lww::new(FollowupStatus::Open, stamp),
                closed_at: Lww::new(None, stamp),
            };
            ctx.put(&t)?;
            Ok(t)
        })
    };
    let t = mk_task(source.clone()).unwrap();
    assert!(matches!(mk_task(source.clone()), Err(StoreError::Conflict(_))));
    assert_eq!(store.followup_by_source(&source.dedup_key()).unwrap(), Some(t.id));
    assert_eq!(store.open_followups_due(Some(day(27))).unwrap().len(), 1);
    assert!(store.open_followups_due(Some(day(26))).unwrap().is_empty());
    assert!(store.check().unwrap().is_empty());
}

use crate::model::Lww;

#[derive(Debug, Clone)]
enum Action {
    Register(u8, bool),
    Step(usize, u8),
    Case(u8),
    Advance(usize),
    Feedback(u8),
    Tick(i64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u8..20, any::<bool>()).prop_map(|(n, p)| Action::Register(n, p)),
        (any::<usize>(), 1u8..10).prop_map(|(i, s)| Action::Step(i, s)),
        (0u8..28).prop_map(Action::Case),
        any::<usize>().prop_map(Action::Advance),
        (0u8..6).prop_map(Action::Feedback),
        (-3_600_000i64..86_400_000).prop_map(Action::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever sequence of writes happens, every index equals the one recomputed from the records, the outbox
    /// holds exactly one op per write with gap-free sequence numbers, and stamps strictly increase.
    #[test]
    fn indexes_and_outbox_stay_consistent(actions in proptest::collection::vec(action(), 1..40)) {
        let (_dir, clock, store) = fresh();
        let mut arrivals: Vec<RecordId> = Vec::new();
        let mut cases: Vec<RecordId> = Vec::new();
        let mut writes = 0u64;
        for a in actions {
            let r = match a {
                Action::Register(n, with_phone) => {
                    let phone = if with_phone { format!("1380000{n:04}") } else { String::new() };
                    let rec = register(&store, &format!("患者{n}"), &phone);
                    arrivals.push(rec.id);
                    Ok(())
                }
                Action::Step(i, s) if !arrivals.is_empty() => store.write(|ctx| {
                    let mut x: Arrival = ctx.require(arrivals[i % arrivals.len()])?;
                    let step = VisitStep::ALL[s as usize];
                    let reason = step.needs_reason().then_some("原因");
                    let (at, stamp) = (ctx.now(), ctx.stamp());
                    x.move_to(step, at, StaffRef("g".into()), reason, stamp)?;
                    ctx.put(&x)
                }),
                Action::Case(d) => store.write(|ctx| {
                    let form = CaseForm {
                        grade: Some(CaseGrade::Complaint),
                        channel: Some(crate::model::CaseChannel::Phone),
                        complainant: format!("投诉人{d}"),
                        facts: "事实".into(),
                        ..CaseForm::default()
                    };
                    let stamp = ctx.stamp();
                    let due = ctx.today() + chrono::Days::new(u64::from(d));
                    let origin = CaseOrigin { id: ctx.new_id(), at: ctx.now(), by: StaffRef("k".into()), due: (due, false), stamp };
                    let c = form.into_record(ctx.reference(), origin)?;
                    cases.push(c.id);
                    ctx.put(&c)
                }),
                Action::Advance(i) if !cases.is_empty() => store.write(|ctx| {
                    let mut c: Case = ctx.require(cases[i % cases.len()])?;
                    let next = CaseStatus::ALL.iter().copied().find(|s| s.rank() == c.current().rank() + 1);
                    let Some(next) = next else { return Err(StoreError::Conflict("final".into())) };
                    let (at, stamp) = (ctx.now(), ctx.stamp());
                    c.advance(next, CaseEventKind::Note, None, at, StaffRef("k".into()), stamp)?;
                    ctx.put(&c)
                }),
                Action::Feedback(o) => store.write(|ctx| {
                    let form = FeedbackForm { overall: Some(Rating::ALL[o as usize]), complete: true, ..FeedbackForm::default() };
                    let rec = form.into_record(ctx.new_id(), ctx.now())?;
                    ctx.append_feedback(rec).map(|_| ())
                }),
                Action::Tick(ms) => { clock.advance(ms); continue; }
                _ => continue,
            };
            if r.is_ok() { writes += 1; }
        }
        prop_assert_eq!(store.check().unwrap(), Vec::<String>::new());
        let ops = store.outbox_after(0, usize::MAX).unwrap();
        prop_assert_eq!(ops.len() as u64, writes);
        prop_assert!(ops.iter().enumerate().all(|(i, o)| o.seq == i as u64 + 1));
        prop_assert!(ops.windows(2).all(|w| w[0].stamp < w[1].stamp));
    }
}

#[test]
fn reference_snapshots_from_other_versions_still_load() {
    let (dir, clock, store) = fresh();
    let mut json: serde_json::Value = serde_json::to_value(&*store.reference()).unwrap();
    // An older HQ did not send `max_attempts`; a newer one sends a field this build does not know.
    json["followup_policy"].as_object_mut().unwrap().remove("max_attempts");
    json["future_field"] = serde_json::json!({"x": 1});
    let tx = store.db.begin_write().unwrap();
    let sealed = store.keys().seal(crypto::REFERENCE_PLACE, &serde_json::to_vec(&json).unwrap()).unwrap();
    tx.open_table(tables::REFERENCE).unwrap().insert("snapshot", sealed.as_slice()).unwrap();
    tx.commit().unwrap();
    drop(store);
    let store = Store::open_with(dir.path(), opts(&clock)).unwrap();
    assert_eq!(store.reference().followup_policy.max_attempts, 3);
    // A snapshot that cannot be read at all is a clear error, and the file is left as it was.
    let tx = store.db.begin_write().unwrap();
    tx.open_table(tables::REFERENCE).unwrap().insert("snapshot", b"\x01\x02".as_slice()).unwrap();
    tx.commit().unwrap();
    drop(store);
    let e = Store::open_with(dir.path(), opts(&clock)).unwrap_err().to_string();
    assert!(e.contains("reference data cannot be read"), "{e}");
}

/// The board's read of a day keeps decoded arrivals between reads and re-opens only those whose stored value was
/// sealed anew: a local step move, a 换号, a key rotation (every value resealed) and the day turning all show at
/// once, and the cached copies always equal what a fresh store handle reads.
#[test]
fn the_day_cache_is_exact_after_every_kind_of_write() {
    let (dir, clock, store) = fresh();
    let a = register(&store, "欧阳娜娜", "13912345678");
    let b = register(&store, "王五", "");
    let today = store.today();
    assert_eq!(store.arrivals_on(today).unwrap(), [a.clone(), b.clone()]);
    store
        .write(|ctx| crate::command::desk::move_step(ctx, b.id, VisitStep::Registered, None, &StaffRef("g1".into())))
        .unwrap();
    let after_move = store.arrivals_on(today).unwrap();
    assert_eq!(after_move[1].step(), VisitStep::Registered, "a moved arrival is read anew");
    assert_eq!(after_move[0], a, "an untouched one is the same");
    store
        .write(|ctx| {
            crate::command::desk::change_department(ctx, a.id, "cardio", None, "患者要求", &StaffRef("g1".into()))
        })
        .unwrap();
    assert_eq!(store.arrivals_on(today).unwrap()[0].department.value, "cardio");
    let c = register(&store, "李四", "13800000000");
    assert_eq!(store.arrivals_on(today).unwrap().len(), 3, "a new arrival joins");
    store.rotate_key().unwrap();
    let cached = store.arrivals_on(today).unwrap();
    assert_eq!(cached.last().map(|x| x.id), Some(c.id));
    // Another handle of the same file (no cache) reads the same.
    let path = dir.path().to_path_buf();
    drop(store);
    let reopened = Store::open_with(&path, opts(&clock)).unwrap();
    assert_eq!(reopened.arrivals_on(today).unwrap(), cached);
    clock.advance(86_400_000);
    assert!(reopened.arrivals_on(reopened.today()).unwrap().is_empty());
    assert_eq!(reopened.arrivals_on(today).unwrap(), cached, "an earlier day reads the same");
}
