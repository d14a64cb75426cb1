//! The store's sync support: acknowledgement retention and pruning, atomic reference page + cursor.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::model::{ArrivalChannel, ArrivalForm, Sex, StaffRef, VisitType};

const T0: i64 = 1_795_399_200_000;
const DAY: i64 = 86_400_000;

fn fresh() -> (tempfile::TempDir, Arc<ManualClock>, Store) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store =
        Store::open_with(dir.path(), StoreOptions { clock: clock.clone(), utc_offset: china_offset() }).unwrap();
    (dir, clock, store)
}

fn write(store: &Store, n: usize) {
    for i in 0..n {
        store
            .write(|ctx| {
                let form = ArrivalForm {
                    name: format!("患者{i}"),
                    sex: Some(Sex::Male),
                    visit_type: Some(VisitType::First),
                    channel: Some(ArrivalChannel::WalkIn),
                    complaint: "头痛".into(),
                    department: "neuro".into(),
                    ..ArrivalForm::default()
                };
                let d = form.validate(ctx.reference(), ctx.today())?;
                let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
                ctx.put(&d.into_record(id, at, StaffRef("g1".into()), stamp))
            })
            .unwrap();
    }
}

#[test]
fn acknowledged_ops_are_kept_for_the_retention_period_then_pruned() {
    let (_dir, clock, store) = fresh();
    write(&store, 10);
    store.ack_through(4).unwrap();
    clock.advance(DAY);
    store.ack_through(7).unwrap();
    clock.advance(DAY);
    // Retention of 30 days: nothing is old enough.
    assert_eq!(store.prune_acked(30 * DAY).unwrap(), 0);
    assert_eq!(store.outbox_after(0, 100).unwrap().len(), 10);
    // Retention of 1.5 days: the ops acknowledged two days ago go, the ones from yesterday stay.
    assert_eq!(store.prune_acked(DAY + DAY / 2).unwrap(), 4);
    assert_eq!(store.outbox_after(0, 1).unwrap()[0].seq, 5);
    // Retention 0: every acknowledged op goes; unacknowledged ones never do.
    assert_eq!(store.prune_acked(0).unwrap(), 3);
    let left: Vec<u64> = store.outbox_after(0, 100).unwrap().iter().map(|o| o.seq).collect();
    assert_eq!(left, vec![8, 9, 10]);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    let s = store.stats().unwrap();
    assert_eq!((s.outbox_last_seq, s.outbox_acked_seq, s.outbox_pending), (10, 7, 3));
    // New writes continue the sequence.
    write(&store, 1);
    assert_eq!(store.stats().unwrap().outbox_last_seq, 11);
}

#[test]
fn a_reference_page_and_its_cursor_are_stored_together_and_survive_reopen() {
    let (dir, clock, store) = fresh();
    assert_eq!(store.pull_cursor("reference").unwrap(), 0);
    let mut data = ReferenceData::bundled().unwrap();
    data.departments[0].name = "新名称".into();
    store.apply_reference_page(Some(data.clone()), "hq", "reference", 7).unwrap();
    assert_eq!(*store.reference(), data);
    // A page without a new snapshot only moves the cursor.
    store.apply_reference_page(None, "hq", "reference", 9).unwrap();
    assert_eq!(store.pull_cursor("reference").unwrap(), 9);
    // Inconsistent data is refused and nothing moves.
    let mut bad = data.clone();
    bad.doctors[0].department = "nowhere".into();
    assert!(store.apply_reference_page(Some(bad), "hq", "reference", 12).is_err());
    assert_eq!(store.pull_cursor("reference").unwrap(), 9);
    drop(store);
    let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    assert_eq!(*store.reference(), data);
    assert_eq!(store.pull_cursor("reference").unwrap(), 9);
    assert_eq!(store.reference_source().unwrap().as_deref(), Some("hq"));
}

/// A discharge task as a desk imports it (the same source at every desk that imports the list).
pub(super) fn discharge_task(at: Moment) -> crate::model::FollowupTask {
    use crate::model::{FollowupSource, FollowupStatus, FollowupTask, Lww, RecordId};
    let day = at.local_date(china_offset());
    FollowupTask {
        id: RecordId::new_v7(at),
        created_at: at,
        created_by: StaffRef("K001".into()),
        source: FollowupSource::Discharge { his_key: "ZY2026-0042".into(), discharged_on: day, diagnosis: None },
        patient_name: "周秀兰".into(),
        phone: "13800138000".into(),
        department: Some("cardio".into()),
        inpatient: true,
        due_from: day,
        due_to: day,
        status: Lww::new(FollowupStatus::Open, Hlc::ZERO),
        closed_at: Lww::new(None, Hlc::ZERO),
    }
}

#[test]
fn a_duplicate_task_from_another_desk_can_be_settled_here_and_the_source_still_makes_no_third() {
    use crate::model::{FollowupStatus, FollowupTask};
    let (_dir, clock, store) = fresh();
    // Two desks imported the same discharge list while apart: this desk's task, and the other desk's, later.
    let mine = discharge_task(Moment(T0));
    store.write(|ctx| ctx.put(&mine)).unwrap();
    clock.advance(60_000);
    let theirs = discharge_task(Moment(T0 + 60_000));
    let remote = from_desk_d2(AnyRecord::FollowupTask(theirs.clone()), Moment(T0 + 60_000), 0);
    assert_eq!(store.apply_remote_page(&[remote], "records", 1).unwrap().new, 1);
    assert_eq!(store.duplicate_followups().unwrap(), vec![vec![mine.id, theirs.id]]);
    // The supervisor cancels the other desk's copy here. Its source stays indexed to this desk's task, so the
    // update leaves the source entry alone rather than claiming it.
    set_status_here(&store, &theirs, FollowupStatus::Cancelled);
    assert_eq!(store.get::<FollowupTask>(theirs.id).unwrap().unwrap().status.value, FollowupStatus::Cancelled);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    assert_eq!(store.write(|ctx| ctx.followup_by_source(&mine.source.dedup_key())).unwrap(), Some(mine.id));
    // A third task from the same source is still refused.
    clock.advance(60_000);
    let third = discharge_task(Moment(T0 + 120_000));
    assert!(matches!(store.write(|ctx| ctx.put(&third)), Err(StoreError::Conflict(_))));
}

/// A follow-up task of another desk from source `key`, as HQ relays it.
fn relayed_task(
    at: Moment,
    key: &str,
    status: crate::model::FollowupStatus,
) -> (crate::model::FollowupTask, RemoteRecord) {
    use crate::model::FollowupSource;
    let mut t = discharge_task(at);
    t.source = FollowupSource::Discharge {
        his_key: key.into(),
        discharged_on: at.local_date(china_offset()),
        diagnosis: None,
    };
    t.status.set(status, Hlc { wall_ms: at.0 as u64, logical: 0, node: 0xd2 });
    let remote = from_desk_d2(AnyRecord::FollowupTask(t.clone()), at, 1);
    (t, remote)
}

/// Sets a task's status at this desk (an edit with an outbox op, stamped now).
fn set_status_here(store: &Store, task: &crate::model::FollowupTask, status: crate::model::FollowupStatus) {
    let mut t = task.clone();
    store
        .write(|ctx| {
            let stamp = ctx.stamp();
            t.status.set(status, stamp);
            ctx.put(&t)
        })
        .unwrap();
}

/// `record` as HQ relays it from desk D2 (device 0xd2), last changed at `at`.
pub(super) fn from_desk_d2(record: AnyRecord, at: Moment, logical: u32) -> RemoteRecord {
    RemoteRecord {
        record,
        origin: Some(ReplicaOrigin { device: 0xd2, desk: "D2".into() }),
        stamp: Hlc { wall_ms: at.0 as u64, logical, node: 0xd2 },
        changed_desk: "D2".into(),
    }
}

#[test]
fn other_desks_records_past_the_sharing_policy_are_purged_and_the_routine_runs_once_a_day() {
    use crate::model::{FollowupStatus, FollowupTask};
    let (_dir, clock, store) = fresh();
    assert_eq!(store.reference().sharing.days_for(RecordKind::FollowupTask), 31);
    let (old_done, r1) = relayed_task(Moment(T0), "ZY-1", FollowupStatus::Completed);
    let (old_open, r2) = relayed_task(Moment(T0), "ZY-2", FollowupStatus::Open);
    let (old_edited, r3) = relayed_task(Moment(T0), "ZY-3", FollowupStatus::Open);
    store.apply_remote_page(&[r1, r2, r3], "records", 3).unwrap();
    // This desk's own finished task of the same day follows the retention policy only.
    let mut own = discharge_task(Moment(T0));
    own.status.set(FollowupStatus::Completed, Hlc::ZERO);
    store.write(|ctx| ctx.put(&own)).unwrap();
    clock.advance(35 * DAY);
    let (recent_done, r4) = relayed_task(clock.now(), "ZY-4", FollowupStatus::Completed);
    store.apply_remote_page(&[r4], "records", 4).unwrap();
    clock.advance(5 * DAY);
    // An edit made here to an old task of the other desk, not yet at HQ, keeps it here until HQ holds it.
    set_status_here(&store, &old_edited, FollowupStatus::Completed);
    let held = |t: &FollowupTask| store.get::<FollowupTask>(t.id).unwrap().is_some();

    assert_eq!(store.routine_purges().unwrap().map(|(_, replicas)| replicas), Some(1));
    assert!(!held(&old_done), "a closed task of another desk past 31 days goes");
    assert!(held(&old_open) && held(&recent_done) && held(&own) && held(&old_edited));
    assert!(store.origin_of(RecordKind::FollowupTask, old_done.id).unwrap().is_none());
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    assert!(!store.find_by_phone("13800138000").unwrap().iter().any(|(_, id)| *id == old_done.id));

    // Not due again the same day, whatever HQ acknowledges meanwhile.
    store.ack_through(store.stats().unwrap().outbox_last_seq).unwrap();
    assert_eq!(store.routine_purges().unwrap(), None);
    assert!(held(&old_edited));
    // New reference data (new policies) makes it due; so does the next day.
    store.apply_reference((*store.reference()).clone(), "hq").unwrap();
    assert_eq!(store.routine_purges().unwrap().map(|(_, replicas)| replicas), Some(1));
    assert!(!held(&old_edited), "acknowledged, the edited task goes too");
    assert_eq!(store.routine_purges().unwrap(), None);
    clock.advance(DAY);
    assert_eq!(store.routine_purges().unwrap().map(|(_, replicas)| replicas), Some(0));
    assert!(held(&old_open) && held(&recent_done) && held(&own));
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
}

#[test]
fn a_prepared_record_is_stored_as_the_record_itself_would_be() {
    use crate::model::{FollowupStatus, FollowupTask};
    let (_dir, clock, store) = fresh();
    let (a, ra) = relayed_task(Moment(T0), "ZY-1", FollowupStatus::Open);
    let (b, rb) = relayed_task(Moment(T0 + 1), "ZY-2", FollowupStatus::Open);
    let prepared: Vec<PreparedRemote> = [ra, rb].into_iter().map(|r| store.prepare_remote(r).unwrap()).collect();
    let applied = store.apply_remote_catch_up(&prepared, "records", 2).unwrap();
    assert_eq!(applied.new, 2);
    store.settle_blind_backlog().unwrap();
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    assert_eq!(store.get::<FollowupTask>(a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.origin_of(RecordKind::FollowupTask, b.id).unwrap().map(|o| o.device), Some(0xd2));
    let found: Vec<crate::model::RecordId> =
        store.find_by_phone("13800138000").unwrap().into_iter().map(|(_, id)| id).collect();
    assert!(found.contains(&a.id) && found.contains(&b.id), "{found:?}");
    assert_eq!(store.write(|ctx| ctx.followup_by_source(&b.source.dedup_key())).unwrap(), Some(b.id));

    // The sharing policy reads the prepared record's facts: a task closed 40 days ago is not kept, an open one is.
    let (_, old_done) = relayed_task(Moment(T0 - 40 * DAY), "ZY-9", FollowupStatus::Completed);
    let (old_open, r) = relayed_task(Moment(T0 - 40 * DAY), "ZY-10", FollowupStatus::Open);
    let both = [store.prepare_remote(old_done).unwrap(), store.prepare_remote(r).unwrap()];
    let applied = store.apply_remote_page(&both, "records", 2).unwrap();
    assert_eq!((applied.new, applied.not_kept), (1, 1));
    assert!(store.get::<FollowupTask>(old_open.id).unwrap().is_some());

    // Held already: merged as usual, the prepared bytes unused.
    clock.advance(60_000);
    let (mut later, _) = relayed_task(Moment(T0), "ZY-1", FollowupStatus::Open);
    later.id = a.id;
    later.status.set(FollowupStatus::Completed, Hlc { wall_ms: (T0 + 60_000) as u64, logical: 0, node: 0xd2 });
    let r = store.prepare_remote(from_desk_d2(AnyRecord::FollowupTask(later), Moment(T0 + 60_000), 0)).unwrap();
    assert_eq!(store.apply_remote_page(&[r], "records", 3).unwrap().merged, 1);
    assert_eq!(store.get::<FollowupTask>(a.id).unwrap().unwrap().status.value, FollowupStatus::Completed);

    // Prepared with a key rotated away before the apply: sealed again with the key in use.
    let (c, rc) = relayed_task(Moment(T0 + 2), "ZY-3", FollowupStatus::Open);
    let r = store.prepare_remote(rc).unwrap();
    store.rotate_key().unwrap();
    assert_eq!(store.apply_remote_page(&[r], "records", 4).unwrap().new, 1);
    assert_eq!(store.get::<FollowupTask>(c.id).unwrap(), Some(c));
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    assert_eq!(store.find_by_phone("13800138000").unwrap().len(), 4);
}
