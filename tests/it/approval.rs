//! The rules around handling a case: the leader's approval of the transfer (批转) and improvement measures (整改).

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use guidedesk::command::{CaseCommand, Command, Outcome};
use guidedesk::model::reference::{Role as StaffRole, Staff};
use guidedesk::model::{Case, CaseChannel, CaseForm, CaseGrade, CaseStatus};

use crate::ui::{button, fixture, harness_with, sign_in, type_into};

/// The hospital's policy puts complaints through 批转; a supervisor 王主管 is on the staff list.
fn with_approval(f: &crate::ui::Fixture) {
    let mut r = (*f.store.reference()).clone();
    r.case_policy.approval_grades = vec![CaseGrade::Complaint, CaseGrade::Dispute, CaseGrade::Incident];
    r.staff.push(Staff {
        id: "S001".into(),
        name: "王主管".into(),
        role: StaffRole::Supervisor,
        department: None,
        pin_hash: r.staff[0].pin_hash.clone(),
        active: true,
    });
    f.store.apply_reference(r, "test").unwrap();
}

fn complaint() -> Command {
    Command::NewCase(Box::new(CaseForm {
        grade: Some(CaseGrade::Complaint),
        channel: Some(CaseChannel::InPerson),
        complainant: "李强".into(),
        departments: vec!["cardio".into()],
        facts: "候诊两小时无人告知原因".into(),
        ..CaseForm::default()
    }))
}

/// 医院投诉管理办法 ("根据投诉内容所涉及的部门拟定承办科室，经分管领导批转至相关科室"): where the policy asks for it,
/// customer service cannot send a complaint to a department directly; it proposes the department, the proposal
/// raises "待批转" on the supervisor's screen, and the supervisor's 批转 assigns it.
#[test]
fn a_complaint_goes_to_its_department_after_the_leaders_approval() {
    let f = fixture(true);
    with_approval(&f);
    let ctx = egui::Context::default();
    let mut cs = harness_with(&f.store, 24 * 60);
    sign_in(&mut cs, "刘敏");
    let Outcome::Done(Some(id)) = cs.state_mut().apply(complaint(), &ctx) else { panic!("the case is taken") };
    let assign = Command::Case { id, action: CaseCommand::Assign { department: "cardio".into(), assignee: None } };
    match cs.state_mut().apply(assign, &ctx) {
        Outcome::Invalid(e) => assert!(e.get("department").is_some(), "{e:?}"),
        o => panic!("a direct assignment is refused: {o:?}"),
    }
    let c: Case = f.store.get(id).unwrap().unwrap();
    assert_eq!((c.current(), c.events.len()), (CaseStatus::Received, 1), "nothing written");
    // The screen offers the proposal instead of the transfer.
    button(&mut cs, "客诉处理");
    button(&mut cs, "查看 李强");
    assert!(cs.query_by_label("转交科室").is_none(), "no direct transfer on screen");
    assert!(cs.query_by_label("批转").is_none(), "customer service does not approve");
    let propose = Command::Case { id, action: CaseCommand::Propose { department: "cardio".into(), assignee: None } };
    assert!(matches!(cs.state_mut().apply(propose, &ctx), Outcome::Done(_)));

    let mut boss = harness_with(&f.store, 24 * 60);
    sign_in(&mut boss, "王主管");
    boss.run_steps(2);
    assert!(boss.query_by_label("待批转 1 件").is_some(), "the supervisor's strip says a transfer awaits approval");
    boss.get_by_label("待批转 1 件").click();
    boss.run();
    button(&mut boss, "查看 李强");
    assert!(boss.query_all_by_label_contains("待批转：拟转交 心血管内科").next().is_some());
    button(&mut boss, "批转");
    button(&mut boss, "确认： 批转");
    let c: Case = f.store.get(id).unwrap().unwrap();
    assert_eq!((c.current(), c.assigned_department.value.as_deref()), (CaseStatus::Assigned, Some("cardio")));
    let kinds: Vec<&str> = c.events.iter().map(|e| guidedesk::export::event_name(&e.kind)).collect();
    assert_eq!(kinds, ["received", "proposed", "approved"]);
    assert_eq!(c.events[2].by.0, "S001");
    boss.run_steps(2);
    assert!(boss.query_by_label("待批转 1 件").is_none(), "nothing awaits approval any more");
}

/// 客户服务中心管理方案 (问题…及时向有关部门和科室反馈…及时进行整改): an improvement measure is recorded on a case with
/// the department and a day, shown on the case, and recorded done with its effect.
#[test]
fn an_improvement_measure_is_recorded_and_carried_out() {
    let f = fixture(true);
    let ctx = egui::Context::default();
    let mut h = harness_with(&f.store, 24 * 60);
    sign_in(&mut h, "刘敏");
    let Outcome::Done(Some(id)) = h.state_mut().apply(complaint(), &ctx) else { panic!("the case is taken") };
    button(&mut h, "客诉处理");
    button(&mut h, "查看 李强");
    button(&mut h, "整改措施");
    type_into(&mut h, Role::TextInput, "整改措施", "候诊区增设叫号屏，超时主动告知");
    // The day offered is a month ahead (2026-12-23); a day in the past is refused, naming the field.
    let past = Command::Case {
        id,
        action: CaseCommand::PlanImprovement {
            department: "cardio".into(),
            measure: "x".into(),
            due: chrono::NaiveDate::from_ymd_opt(2026, 11, 1),
        },
    };
    match h.state_mut().apply(past, &ctx) {
        Outcome::Invalid(e) => assert!(e.get("due").is_some(), "{e:?}"),
        o => panic!("a measure due in the past is refused: {o:?}"),
    }
    button(&mut h, "确认： 整改措施");
    let c: Case = f.store.get(id).unwrap().unwrap();
    let i = c.improvements();
    assert_eq!(i.len(), 1);
    assert_eq!((i[0].department, i[0].measure), ("cardio", "候诊区增设叫号屏，超时主动告知"));
    assert_eq!(i[0].due, chrono::NaiveDate::from_ymd_opt(2026, 12, 23).unwrap());
    assert!(h.query_all_by_label_contains("待落实").next().is_some(), "shown on the case as to be done");
    button(&mut h, "整改落实");
    type_into(&mut h, Role::TextInput, "落实情况及效果", "叫号屏已安装，本周无同类投诉");
    button(&mut h, "确认： 整改落实");
    let c: Case = f.store.get(id).unwrap().unwrap();
    assert_eq!(c.improvements()[0].done.map(|(_, e)| e), Some("叫号屏已安装，本周无同类投诉"));
    assert!(h.query_all_by_label_contains("已落实").next().is_some());
}
