//! Follow-up rounds after a discharge (出院病人电话回访制度 三: "一般病人出院3日内进行第一次回访，第二次回访由客户服务中心
//! 患者出院后7-15日内完成"): one imported discharge puts two calls on the worklist, each due in its own window.

use egui_kittest::kittest::Queryable as _;
use guidedesk::import::discharges::{ImportOptions, import};
use guidedesk::model::{FollowupSource, Moment};

use crate::ui::{T0, button, fixture, harness_with, sign_in};

const DAY: i64 = 86_400_000;

#[test]
fn a_discharge_gets_its_two_calls_at_the_right_dates() {
    let f = fixture(true);
    // Discharged Sunday 2026-11-22; the list is imported on Monday 2026-11-23 (T0).
    let csv = "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY9,孙秀兰,13800138000,心血管内科,2026-11-22,冠心病\n";
    let report = import(&f.store, csv.as_bytes(), &ImportOptions::default()).unwrap();
    assert_eq!(report.imported, 1);
    let d = |m: u32, day: u32| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    let mut tasks = f.store.open_followups_due(None).unwrap();
    tasks.sort_by_key(|t| t.due_from);
    assert_eq!(tasks.len(), 2, "two calls for one discharge");
    assert!(matches!(tasks[0].source, FollowupSource::Discharge { .. }));
    assert_eq!((tasks[0].due_from, tasks[0].due_to), (d(11, 23), d(11, 25)), "the first within 3 days");
    assert!(matches!(tasks[1].source, FollowupSource::DischargeSecond { .. }));
    assert_eq!((tasks[1].due_from, tasks[1].due_to), (d(11, 29), d(12, 7)), "the second 7–15 days after");
    // Importing the list again makes nothing new.
    assert_eq!(import(&f.store, csv.as_bytes(), &ImportOptions::default()).unwrap().imported, 0);
    assert_eq!(f.store.open_followups_due(None).unwrap().len(), 2);

    // On the worklist: the first call is due today, the second comes up later.
    // Staff screens lock after a day idle here; the test moves the clock a week.
    let mut h = harness_with(&f.store, 30 * 24 * 60);
    sign_in(&mut h, "刘敏");
    button(&mut h, "回访");
    let due_today = f.store.open_followups_due(Some(f.store.today())).unwrap();
    assert_eq!(due_today.len(), 1, "only the first call is due on the day of the import");
    assert!(h.query_by_label("回访 孙秀兰").is_some(), "the first call is on the worklist");
    // The first call is made.
    let reached = guidedesk::model::CallAttemptForm {
        outcome: Some(guidedesk::model::CallOutcome::Reached),
        ..guidedesk::model::CallAttemptForm::default()
    };
    let call = guidedesk::command::Command::Attempt { task: tasks[0].id, form: Box::new(reached) };
    let o = h.state_mut().apply(call, &egui::Context::default());
    assert!(matches!(o, guidedesk::command::Outcome::Done(_)), "{o:?}");
    // A week later the second call is due, and it says which round it is.
    f.clock.set(Moment(T0 + 7 * DAY));
    h.run_steps(3);
    let due = f.store.open_followups_due(Some(f.store.today())).unwrap();
    assert_eq!(due.len(), 1);
    assert!(matches!(due[0].source, FollowupSource::DischargeSecond { .. }), "the second call is due");
    button(&mut h, "回访 孙秀兰");
    assert!(h.query_all_by_label_contains("出院第二次回访").next().is_some(), "the second call is named");
}
