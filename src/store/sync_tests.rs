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
