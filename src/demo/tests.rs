//! Demo data a hospital would recognise.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::store::{ManualClock, StoreOptions};

/// Demo data a hospital would recognise (the service-rules issue): grades 1–3 are handled on the spot
/// (《客户服务中心管理方案》), so most are closed the day they are received; staff work cases in working hours.
#[test]
fn on_the_spot_cases_close_the_same_day_and_case_work_happens_in_working_hours() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(1_795_399_200_000)));
    let offset = crate::model::common::china_offset();
    let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: offset }).unwrap();
    generate(&store, DemoOptions { days: 120, per_day: 20, seed: 3 }).unwrap();
    let (mut spot, mut same_day, mut events, mut in_hours) = (0, 0, 0, 0);
    store
        .for_each_between(crate::model::RecordKind::Case, Moment(i64::MIN), Moment(i64::MAX), |r| {
            let crate::model::AnyRecord::Case(c) = r else { return Ok(()) };
            if c.grade.value.handled_on_the_spot() && c.received_at.local_date(offset) < store.today() {
                spot += 1;
                if c.closed_at.value.is_some_and(|t| t.local_date(offset) == c.received_at.local_date(offset)) {
                    same_day += 1;
                }
            }
            for e in &c.events {
                events += 1;
                let h = chrono::Timelike::hour(&e.at.local(offset));
                if (8..19).contains(&h) {
                    in_hours += 1;
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(spot >= 50, "enough on-the-spot cases to judge: {spot}");
    assert!(same_day * 100 >= spot * 80, "{same_day} of {spot} on-the-spot cases closed the same day");
    assert!(in_hours * 100 >= events * 97, "{in_hours} of {events} case steps between 08:00 and 19:00");
}

/// The demo exercises the handling and follow-up rules: disputes and incidents go to their department by 批转
/// (proposed, then approved by the supervisor), departments record improvement measures (most carried out, some not
/// yet), and chronic patients get the chronic plan's first round beside the two discharge calls.
#[test]
fn the_demo_exercises_approval_improvements_and_chronic_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(1_795_399_200_000)));
    let offset = crate::model::common::china_offset();
    let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: offset }).unwrap();
    generate(&store, DemoOptions { days: 120, per_day: 20, seed: 3 }).unwrap();
    let leader = store.reference().staff.iter().find(|s| s.role == Role::Supervisor).unwrap().id.clone();
    let (mut approved, mut direct_serious, mut planned, mut done) = (0, 0, 0, 0);
    store
        .for_each_between(crate::model::RecordKind::Case, Moment(i64::MIN), Moment(i64::MAX), |r| {
            let crate::model::AnyRecord::Case(c) = r else { return Ok(()) };
            let serious = matches!(c.grade.value, CaseGrade::Dispute | CaseGrade::Incident);
            for e in &c.events {
                match &e.kind {
                    CaseEventKind::Approved { .. } => {
                        assert_eq!(e.by.0, leader, "the supervisor approves");
                        approved += 1;
                    }
                    CaseEventKind::Assigned { .. } if serious => direct_serious += 1,
                    _ => {}
                }
            }
            let i = c.improvements();
            planned += i.len();
            done += i.iter().filter(|i| i.done.is_some()).count();
            Ok(())
        })
        .unwrap();
    assert!(approved > 0 && direct_serious == 0, "{approved} approved, {direct_serious} assigned directly");
    assert!(planned >= 10 && done * 2 > planned && done < planned, "{done} of {planned} improvement measures done");
    let (mut chronic, mut second) = (0, 0);
    store
        .for_each_between(crate::model::RecordKind::FollowupTask, Moment(i64::MIN), Moment(i64::MAX), |r| {
            if let crate::model::AnyRecord::FollowupTask(t) = r {
                match t.source {
                    FollowupSource::Chronic { round: 1, .. } => chronic += 1,
                    FollowupSource::DischargeSecond { .. } => second += 1,
                    _ => {}
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(chronic > 0 && chronic < second, "{chronic} chronic first rounds, {second} second calls");
}
