//! Retention: records past the policy's retention are purged only once HQ has acknowledged them; indexes and the
//! feedback chain stay consistent.

use std::sync::Arc;

use guidedesk::model::{Dimension, FeedbackForm, Moment, Rating, RecordId, RecordKind};
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset};

const DAY_MS: i64 = 86_400_000;
const NOW: i64 = 1_767_225_600_000; // 2026-01-01

fn open(dir: &std::path::Path) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Moment(NOW - 3 * 365 * DAY_MS)));
    let store = Store::open_with(dir, StoreOptions { clock: clock.clone(), utc_offset: china_offset() }).unwrap();
    (store, clock)
}

/// One arrival (phone `138<k:08>`), through the desk's write path.
fn arrival(store: &Store, k: usize) -> RecordId {
    crate::backup::write_arrivals(store, k, 1)[0]
}

fn feedback(store: &Store) -> RecordId {
    store
        .write(|ctx| {
            let form = FeedbackForm {
                overall: Some(Rating::Satisfied),
                ratings: vec![(Dimension::Guide, Rating::Satisfied)],
                complete: true,
                ..FeedbackForm::default()
            };
            let rec = form.into_record(ctx.new_id(), ctx.now())?;
            Ok(ctx.append_feedback(rec)?.id)
        })
        .unwrap()
}

#[test]
fn never_purges_unacknowledged_records_and_purges_acknowledged_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open(dir.path());
    // Three years ago: two arrivals and two feedback, acknowledged; then one more of each, not acknowledged.
    let old_acked = [arrival(&store, 0), arrival(&store, 1)];
    let fb_acked = [feedback(&store), feedback(&store)];
    store.ack_through(store.stats().unwrap().outbox_last_seq).unwrap();
    let old_pending = arrival(&store, 2);
    let fb_pending = feedback(&store);
    // A year ago (inside the 24-month policy), acknowledged.
    clock.set(Moment(NOW - 365 * DAY_MS));
    let recent = arrival(&store, 3);
    clock.set(Moment(NOW));

    let dry = store.purge_expired(true).unwrap();
    assert_eq!(dry.purged.get("arrival"), Some(&2));
    assert_eq!(dry.purged.get("feedback"), Some(&2));
    assert_eq!(dry.kept_unacknowledged, 2);
    assert_eq!(store.count(RecordKind::Arrival).unwrap(), 4, "a dry run changes nothing");

    // `recent` is unacknowledged too, but young; acknowledging nothing more, purge for real.
    let r = store.purge_expired(false).unwrap();
    assert_eq!(r.total(), 4);
    for id in old_acked {
        assert!(store.get::<guidedesk::model::Arrival>(id).unwrap().is_none());
    }
    for id in fb_acked {
        assert!(store.get::<guidedesk::model::Feedback>(id).unwrap().is_none());
    }
    assert!(store.get::<guidedesk::model::Arrival>(old_pending).unwrap().is_some(), "unacknowledged kept");
    assert!(store.get::<guidedesk::model::Feedback>(fb_pending).unwrap().is_some(), "unacknowledged kept");
    assert!(store.get::<guidedesk::model::Arrival>(recent).unwrap().is_some(), "young record kept");
    assert!(store.find_by_phone("13800000000").unwrap().is_empty(), "index entries removed with the record");
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(store.feedback_base().unwrap().0, 2);

    // Once HQ acknowledges the rest, the old pending ones go too; the chain stays verifiable.
    store.ack_through(store.stats().unwrap().outbox_last_seq).unwrap();
    let r = store.purge_expired(false).unwrap();
    assert_eq!((r.purged.get("arrival"), r.purged.get("feedback")), (Some(&1), Some(&1)));
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let after = feedback(&store);
    assert!(store.get::<guidedesk::model::Feedback>(after).unwrap().is_some());
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn cli_purge_dry_run_reports_without_changing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = open(dir.path());
    arrival(&store, 0);
    store.ack_through(1).unwrap();
    drop(store);
    // The real clock is years past the record: the dry run counts it, the store keeps it.
    let o = crate::guidedesk(dir.path(), &["purge", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("would purge 1 records") && out.contains("1 arrival"), "{out}");
    let o = crate::guidedesk(dir.path(), &["purge"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("purged 1 records"));
    let o = crate::guidedesk(dir.path(), &["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn audit_entries_are_purged_oldest_first_once_acknowledged_and_never_before_six_months() {
    use guidedesk::model::{AuditAction, AuditEntry, StaffRef};
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open(dir.path());
    // A policy that asks for one month is raised to six for the audit log.
    let mut r = (*store.reference()).clone();
    r.retention.months.insert("audit".into(), 1);
    store.apply_reference(r, "test").unwrap();
    let by = StaffRef("S1".into());
    let audit = |store: &Store| store.audit(&by, AuditAction::View, None, "case").unwrap();
    // Three years ago two entries, four months ago one, all acknowledged; then one more stamped three years ago
    // (the kiosk's clock was wrong), not acknowledged.
    audit(&store);
    audit(&store);
    clock.set(Moment(NOW - 120 * DAY_MS));
    let young = audit(&store);
    store.ack_through(store.stats().unwrap().outbox_last_seq).unwrap();
    clock.set(Moment(NOW - 3 * 365 * DAY_MS));
    let pending = audit(&store);
    clock.set(Moment(NOW));

    let r = store.purge_expired(false).unwrap();
    assert_eq!(r.purged.get("audit"), Some(&2), "{r:?}");
    assert_eq!(r.kept_unacknowledged, 1);
    let left = store.chain::<AuditEntry>().unwrap();
    let indexes: Vec<u64> = left.iter().map(|e| e.chain_index).collect();
    assert_eq!(indexes, [young.chain_index, pending.chain_index, 4], "the four-month-old entry is kept: six months");
    // The purge is itself on the log.
    assert_eq!((left[2].actor.0.as_str(), left[2].detail.as_str()), ("system:retention", "retention purge: 2 audit"));
    assert_eq!(store.chain_base(RecordKind::Audit).unwrap().0, 2);
    assert_eq!(store.check().unwrap(), Vec::<String>::new(), "the chain verifies from its new base");
}
