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
