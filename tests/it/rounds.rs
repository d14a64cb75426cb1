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
    let csv =
        "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY9,孙秀兰,13800138000,心血管内科,2026-11-22,心律失常\n";
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

/// 出院病人电话回访制度 8 (医务科、护理部、监察室每月或定期抽查病人): a supervisor puts a completed call, picked at
/// random, back on the worklist to call the patient again; each call is checked once; a guide lead cannot.
#[test]
fn a_supervisor_spot_checks_a_completed_call_picked_at_random() {
    let f = fixture(true);
    let mut r = (*f.store.reference()).clone();
    let mut boss = r.staff[0].clone();
    boss.id = "S001".into();
    boss.name = "王主管".into();
    boss.role = guidedesk::model::reference::Role::Supervisor;
    r.staff.push(boss);
    f.store.apply_reference(r, "test").unwrap();
    let csv =
        "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY9,孙秀兰,13800138000,心血管内科,2026-11-22,心律失常\n";
    import(&f.store, csv.as_bytes(), &ImportOptions::default()).unwrap();
    let first = f
        .store
        .open_followups_due(None)
        .unwrap()
        .into_iter()
        .find(|t| matches!(t.source, FollowupSource::Discharge { .. }))
        .unwrap();
    let reached = guidedesk::model::CallAttemptForm {
        outcome: Some(guidedesk::model::CallOutcome::Reached),
        ..guidedesk::model::CallAttemptForm::default()
    };
    let by = guidedesk::model::StaffRef("K001".into());
    f.store.write(|ctx| guidedesk::command::calls::record_attempt(ctx, first.id, &reached, by.clone())).unwrap();

    let mut h = harness_with(&f.store, 24 * 60);
    sign_in(&mut h, "王主管");
    button(&mut h, "回访");
    assert!(h.query_by_label_contains("可抽已完成回访 1 条").is_some());
    button(&mut h, "随机抽查一条");
    let spot: Vec<_> = f
        .store
        .open_followups_due(None)
        .unwrap()
        .into_iter()
        .filter(|t| matches!(t.source, FollowupSource::SpotCheck { task } if task == first.id))
        .collect();
    assert_eq!(spot.len(), 1, "the completed call is back on the worklist as a spot check");
    assert_eq!((spot[0].phone.as_str(), spot[0].due_from), ("13800138000", f.store.today()));
    assert!(h.query_by_label_contains("已抽查 1 条").is_some());
    // Nothing left to pick: said so, nothing written.
    let before = f.store.count(guidedesk::model::RecordKind::FollowupTask).unwrap();
    button(&mut h, "随机抽查一条");
    assert!(h.query_by_label("近 31 天没有可抽查的已完成回访").is_some());
    assert_eq!(f.store.count(guidedesk::model::RecordKind::FollowupTask).unwrap(), before);
}

/// 术后 5 天、10 天: a surgical department's discharges follow its own plan (`followup_policy.department_calls`).
#[test]
fn a_surgical_discharge_is_called_on_days_5_and_10() {
    let f = fixture(false);
    let csv = "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY7,钱伟,13800138001,普外科,2026-11-22,阑尾炎术后\n";
    assert_eq!(import(&f.store, csv.as_bytes(), &ImportOptions::default()).unwrap().calls, 2);
    let mut tasks = f.store.open_followups_due(None).unwrap();
    tasks.sort_by_key(|t| t.due_from);
    let d = |m: u32, day: u32| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    assert_eq!((tasks[0].due_from, tasks[0].due_to), (d(11, 27), d(11, 28)), "the first call on day 5");
    assert_eq!((tasks[1].due_from, tasks[1].due_to), (d(12, 2), d(12, 4)), "the second on day 10");
}

fn reached() -> guidedesk::model::CallAttemptForm {
    guidedesk::model::CallAttemptForm {
        outcome: Some(guidedesk::model::CallOutcome::Reached),
        ..guidedesk::model::CallAttemptForm::default()
    }
}

fn chronic_rounds(store: &guidedesk::store::Store) -> Vec<guidedesk::model::FollowupTask> {
    let mut v: Vec<_> = store
        .open_followups_due(None)
        .unwrap()
        .into_iter()
        .filter(|t| matches!(t.source, FollowupSource::Chronic { .. }))
        .collect();
    v.sort_by_key(|t| t.due_from);
    v
}

/// 出院病人随访制度 4 ("一般需长期治疗的慢性病人或疾病恢复慢的病人出院2~4周内应随访一次，此后至少三个月随访一次"): a
/// discharge whose diagnosis is on the chronic plan's list gets a round 2–4 weeks after discharge; each round finished
/// plans the next, due at most three months later, until the plan's five rounds are done.
#[test]
fn a_chronic_patient_is_called_in_rounds_every_three_months() {
    let f = fixture(true);
    let csv = "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY8,周建国,13800138002,内科,2026-11-22,2型糖尿病\n";
    let report = import(&f.store, csv.as_bytes(), &ImportOptions::default()).unwrap();
    assert_eq!((report.imported, report.calls), (1, 3), "first call, second call and the chronic plan's first round");
    let d = |y: i32, m: u32, day: u32| chrono::NaiveDate::from_ymd_opt(y, m, day).unwrap();
    let rounds = chronic_rounds(&f.store);
    assert_eq!(rounds.len(), 1);
    assert_eq!((rounds[0].due_from, rounds[0].due_to), (d(2026, 12, 6), d(2026, 12, 20)), "2–4 weeks after");
    let by = guidedesk::model::StaffRef("K001".into());
    let mut now = T0;
    for round in 1..=5u32 {
        let open = chronic_rounds(&f.store);
        assert_eq!(open.len(), 1, "one round open at a time");
        let t = &open[0];
        assert!(matches!(t.source, FollowupSource::Chronic { round: r, .. } if r == round), "{:?}", t.source);
        // The round is called on the first day of its window.
        let day = (t.due_from - f.store.today()).num_days();
        now += day * DAY;
        f.clock.set(Moment(now));
        f.store.write(|ctx| guidedesk::command::calls::record_attempt(ctx, t.id, &reached(), by.clone())).unwrap();
        let next = chronic_rounds(&f.store);
        if round < 5 {
            let today = f.store.today();
            assert_eq!(next.len(), 1, "round {round} plans the next");
            assert_eq!(next[0].due_to, today + chrono::Days::new(90), "at most three months later");
            assert_eq!(next[0].due_from, today + chrono::Days::new(76));
            assert_eq!(next[0].phone, "13800138002");
        } else {
            assert!(next.is_empty(), "the plan ends after its fifth round");
        }
    }
    // Importing the list again does not start the plan again.
    import(&f.store, csv.as_bytes(), &ImportOptions::default()).unwrap();
    assert!(chronic_rounds(&f.store).is_empty());
}

/// 出院病人随访制度 4: a patient who refuses the call leaves the plan; a caller puts a patient whose diagnosis is not on
/// the list on the plan from the discharge's call, once.
#[test]
fn a_refusal_ends_the_chronic_plan_and_a_caller_can_start_one() {
    let f = fixture(true);
    let csv = "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY8,周建国,13800138002,内科,2026-11-22,高血压病\n\
               ZY9,吴秀英,13800138003,骨科,2026-11-22,腰椎术后\n";
    import(&f.store, csv.as_bytes(), &ImportOptions::default()).unwrap();
    let by = guidedesk::model::StaffRef("K001".into());
    let first = chronic_rounds(&f.store).remove(0);
    f.clock.set(Moment(T0 + 13 * DAY));
    let refused = guidedesk::model::CallAttemptForm {
        outcome: Some(guidedesk::model::CallOutcome::Refused),
        ..guidedesk::model::CallAttemptForm::default()
    };
    f.store.write(|ctx| guidedesk::command::calls::record_attempt(ctx, first.id, &refused, by.clone())).unwrap();
    assert!(chronic_rounds(&f.store).is_empty(), "no next round after a refusal");

    let ortho = f
        .store
        .open_followups_due(None)
        .unwrap()
        .into_iter()
        .find(|t| t.patient_name == "吴秀英" && matches!(t.source, FollowupSource::Discharge { .. }))
        .unwrap();
    let mut h = harness_with(&f.store, 30 * 24 * 60);
    sign_in(&mut h, "刘敏");
    let o =
        h.state_mut().apply(guidedesk::command::Command::EnrolChronic { task: ortho.id }, &egui::Context::default());
    assert!(matches!(o, guidedesk::command::Outcome::Done(_)), "{o:?}");
    let rounds = chronic_rounds(&f.store);
    assert_eq!(rounds.len(), 1);
    // Put on the plan on day 14 after discharge: the 2–4 week window (days 14–28) stands.
    let d = |m: u32, day: u32| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    assert_eq!((rounds[0].due_from, rounds[0].due_to), (d(12, 6), d(12, 20)));
    let again =
        h.state_mut().apply(guidedesk::command::Command::EnrolChronic { task: ortho.id }, &egui::Context::default());
    assert!(matches!(again, guidedesk::command::Outcome::Invalid(_)), "once: {again:?}");
    assert_eq!(chronic_rounds(&f.store).len(), 1);
}
