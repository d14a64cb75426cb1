#![allow(clippy::unwrap_used)]

use super::*;

fn s(n: u64) -> Hlc {
    Hlc { wall_ms: n, logical: 0, node: 1 }
}

fn case() -> Case {
    let refs = ReferenceData::bundled().unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    CaseForm {
        grade: Some(CaseGrade::Complaint),
        channel: Some(CaseChannel::Phone),
        complainant: "李强".into(),
        departments: vec!["cardio".into()],
        facts: "候诊两小时无人告知".into(),
        ..CaseForm::default()
    }
    .into_record(
        &refs,
        CaseOrigin {
            id: RecordId::new_v7(Moment(1)),
            at: Moment(1),
            by: StaffRef("cs1".into()),
            due: (day, false),
            stamp: s(1),
        },
    )
    .unwrap()
}

/// Two desks close the same case while apart: the merge keeps both closings and says the case needs
/// attention; a resolution at one desk and "not established" at the other likewise; a reopening starts a clean
/// round.
#[test]
fn impossible_histories_from_two_desks_are_kept_and_flagged() {
    let stamp = |n: u64, node: u64| Hlc { wall_ms: n, logical: 0, node };
    let mut base = case();
    let by = StaffRef("cs1".into());
    base.apply(CaseAction::Investigate, Moment(2), by.clone(), stamp(2, 1)).unwrap();
    let resolve = |c: &mut Case, what: &str, node: u64| {
        let action =
            CaseAction::Resolve { resolution: what.into(), actions: String::new(), responsible: "门诊部".into() };
        c.apply(action, Moment(3), StaffRef("cs1".into()), stamp(3, node)).unwrap();
    };
    let (mut a, mut b) = (base.clone(), base.clone());
    resolve(&mut a, "已致歉", 1);
    resolve(&mut b, "已致歉", 2);
    a.merge(&b);
    assert!(a.conflicts().is_empty(), "the same resolution twice is no conflict: {:?}", a.conflicts());
    let (mut c1, mut c2) = (a.clone(), a.clone());
    c1.apply(
        CaseAction::Close { satisfaction: Some(Rating::Satisfied), explanation: String::new() },
        Moment(4),
        by.clone(),
        stamp(4, 1),
    )
    .unwrap();
    c2.apply(
        CaseAction::Close { satisfaction: Some(Rating::Dissatisfied), explanation: String::new() },
        Moment(5),
        by.clone(),
        stamp(5, 2),
    )
    .unwrap();
    let mut merged = c1.clone();
    merged.merge(&c2);
    let mut other_way = c2.clone();
    other_way.merge(&c1);
    assert_eq!(merged, other_way, "merge order does not matter");
    assert_eq!(merged.conflicts(), vec![CaseConflict::TwoClosings]);
    let closings = merged.events.iter().filter(|e| matches!(e.kind, CaseEventKind::Closed { .. })).count();
    assert_eq!(closings, 2, "both closings are kept");
    // Resolved at one desk, found not established at the other, and two different resolutions.
    let (mut resolved, mut refuted) = (base.clone(), base.clone());
    resolve(&mut resolved, "已致歉", 1);
    refuted
        .apply(CaseAction::NotEstablished { explanation: "已解释".into() }, Moment(3), by.clone(), stamp(3, 2))
        .unwrap();
    resolved.merge(&refuted);
    assert_eq!(resolved.conflicts(), vec![CaseConflict::ResolvedAndNotEstablished]);
    let (mut one, mut two) = (base.clone(), base);
    resolve(&mut one, "已致歉", 1);
    resolve(&mut two, "已退费", 2);
    one.merge(&two);
    assert_eq!(one.conflicts(), vec![CaseConflict::TwoResolutions]);
    // The supervisor settles it by reopening: a new round, with nothing to reconcile.
    let mut again = merged;
    let due = Some((NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), false));
    again
        .apply_with_due(CaseAction::Reopen { reason: "核对".into() }, due, Moment(6), by.clone(), stamp(6, 1))
        .unwrap();
    assert!(again.conflicts().is_empty());
    assert_eq!(again.events.len(), 7, "the history keeps both closings");
}

#[test]
fn status_only_moves_forward() {
    let mut c = case();
    let by = StaffRef("cs1".into());
    c.advance(CaseStatus::Investigating, CaseEventKind::Investigating, None, Moment(2), by.clone(), s(2)).unwrap();
    let e = c.advance(
        CaseStatus::Assigned,
        CaseEventKind::Assigned { department: "cardio".into(), assignee: None },
        None,
        Moment(3),
        by,
        s(3),
    );
    assert!(e.is_err());
    assert_eq!(c.current(), CaseStatus::Investigating);
    assert_eq!(c.events.len(), 2);
}

#[test]
fn the_workflow_moves_forward_and_keeps_every_step() {
    let mut c = case();
    let by = StaffRef("cs1".into());
    let mut t = 1;
    let reopen_due = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let mut act = |c: &mut Case, a: CaseAction| {
        t += 1;
        let due = a.sets_deadline().then_some((reopen_due, false));
        c.apply_with_due(a, due, Moment(t), by.clone(), s(t as u64))
    };
    // Closing or notifying before resolution is refused.
    assert!(act(&mut c, CaseAction::Close { satisfaction: None, explanation: String::new() }).is_err());
    assert!(act(&mut c, CaseAction::Notify { note: String::new() }).is_err());
    act(&mut c, CaseAction::Assign { department: "cardio".into(), assignee: Some("d9".into()) }).unwrap();
    act(&mut c, CaseAction::Investigate).unwrap();
    // Backwards: assigning again is allowed as a re-assignment but does not move the status back.
    act(&mut c, CaseAction::Assign { department: "neuro".into(), assignee: None }).unwrap();
    assert_eq!(c.current(), CaseStatus::Investigating);
    assert_eq!(c.assigned_department.value.as_deref(), Some("neuro"));
    let e =
        act(&mut c, CaseAction::Resolve { resolution: " ".into(), actions: String::new(), responsible: String::new() });
    assert_eq!(e.unwrap_err().0.len(), 2);
    act(
        &mut c,
        CaseAction::Resolve { resolution: "致歉".into(), actions: "培训".into(), responsible: "王主任".into() },
    )
    .unwrap();
    assert!(act(&mut c, CaseAction::Investigate).is_err(), "no going back");
    act(&mut c, CaseAction::Notify { note: "电话告知".into() }).unwrap();
    act(&mut c, CaseAction::Close { satisfaction: Some(Rating::Satisfied), explanation: String::new() }).unwrap();
    assert!(!c.is_open());
    assert!(act(&mut c, CaseAction::Note { text: "补充".into() }).is_ok());
    assert!(act(&mut c, CaseAction::Investigate).is_err(), "closed");
    act(&mut c, CaseAction::Reopen { reason: "患者再次来电".into() }).unwrap();
    assert_eq!((c.current(), c.status.value.round), (CaseStatus::Received, 1));
    assert_eq!(c.closed_at.value, None);
    let kinds: Vec<&str> = c.events.iter().map(|e| crate::export::event_name(&e.kind)).collect();
    assert_eq!(
        kinds,
        ["received", "assigned", "investigating", "assigned", "resolved", "notified", "closed", "note", "reopened"]
    );
}

#[test]
fn escalation_only_goes_up_and_assignment_respects_recusal() {
    let mut c = case();
    let by = StaffRef("cs1".into());
    let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    assert!(
        c.apply_with_due(
            CaseAction::Escalate { to: CaseGrade::Suggestion },
            Some((day, false)),
            Moment(2),
            by.clone(),
            s(2)
        )
        .is_err()
    );
    c.apply_with_due(CaseAction::Escalate { to: CaseGrade::Dispute }, Some((day, false)), Moment(3), by.clone(), s(3))
        .unwrap();
    assert_eq!((c.grade.value, c.due.value.0), (CaseGrade::Dispute, day));
    c.staff_concerned = vec!["n7".into()];
    let e =
        c.apply(CaseAction::Assign { department: "cardio".into(), assignee: Some("n7".into()) }, Moment(4), by, s(4));
    assert!(matches!(e.unwrap_err().get("assignee"), Some(Problem::Conflict(_))));
}

#[test]
fn merge_keeps_most_advanced_status() {
    let base = case();
    let by = StaffRef("cs1".into());
    let mut a = base.clone();
    a.advance(CaseStatus::Resolved, CaseEventKind::NotEstablished, None, Moment(5), by.clone(), s(5)).unwrap();
    let mut b = base.clone();
    // A later stamp but a lower rank must not win.
    b.advance(CaseStatus::Assigned, CaseEventKind::Investigating, None, Moment(9), by, s(9)).unwrap();
    let mut m1 = a.clone();
    m1.merge(&b);
    let mut m2 = b.clone();
    m2.merge(&a);
    assert_eq!(m1, m2);
    assert_eq!(m1.current(), CaseStatus::Resolved);
    assert_eq!(m1.events.len(), 3);
}

#[test]
fn receiver_cannot_take_a_case_about_themselves() {
    let refs = ReferenceData::bundled().unwrap();
    let f = CaseForm {
        grade: Some(CaseGrade::Dissatisfied),
        channel: Some(CaseChannel::InPerson),
        complainant: "赵".into(),
        facts: "态度差".into(),
        staff_concerned: vec!["cs1".into()],
        ..CaseForm::default()
    };
    let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let origin = CaseOrigin {
        id: RecordId::new_v7(Moment(1)),
        at: Moment(1),
        by: StaffRef("cs1".into()),
        due: (day, false),
        stamp: s(1),
    };
    let e = f.into_record(&refs, origin).unwrap_err();
    assert!(matches!(e.get("staff_concerned"), Some(Problem::Conflict(_))));
}

/// 医院投诉管理办法 ("拟定承办科室，经分管领导批转至相关科室"): a proposal leaves the case waiting for a leader; the
/// approval assigns it (to the department proposed or another); a reopening starts a round with nothing pending;
/// 回避 holds for a proposal as for an assignment.
#[test]
fn a_proposed_department_awaits_approval_and_the_approval_assigns_it() {
    let mut c = case();
    let by = StaffRef("cs1".into());
    let propose = CaseAction::Propose { department: "cardio".into(), assignee: Some("H001".into()) };
    c.apply(propose, Moment(2), by.clone(), s(2)).unwrap();
    assert_eq!(c.awaiting_approval(), Some(("cardio", Some("H001"))));
    assert_eq!(c.current(), CaseStatus::Received, "a proposal does not move the status");
    assert_eq!(c.assigned_department.value, None);
    c.apply(CaseAction::Approve { department: "internal".into(), assignee: None }, Moment(3), by.clone(), s(3))
        .unwrap();
    assert_eq!(c.awaiting_approval(), None);
    assert_eq!((c.current(), c.assigned_department.value.as_deref()), (CaseStatus::Assigned, Some("internal")));
    assert!(matches!(c.events.last().unwrap().kind, CaseEventKind::Approved { .. }));

    let mut d = case();
    d.staff_concerned = vec!["H001".into()];
    let err = d
        .apply(CaseAction::Propose { department: "cardio".into(), assignee: Some("H001".into()) }, Moment(2), by, s(2))
        .unwrap_err();
    assert!(err.get("assignee").is_some(), "回避: {err:?}");
    assert_eq!(d.events.len(), 1, "a refused proposal leaves no event");
}

/// 客户服务中心管理方案 (问题…及时向有关部门和科室反馈…及时进行整改): a case records improvement measures with a day, at
/// any status (also closed), and each is recorded done once, with its effect.
#[test]
fn improvement_measures_are_planned_and_carried_out_once() {
    let mut c = case();
    let by = StaffRef("cs1".into());
    let day = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
    let missing_due =
        CaseAction::PlanImprovement { department: "cardio".into(), measure: "增设叫号屏".into(), due: None };
    assert!(c.apply(missing_due, Moment(2), by.clone(), s(2)).unwrap_err().get("due").is_some());
    let plan =
        CaseAction::PlanImprovement { department: "cardio".into(), measure: "增设叫号屏".into(), due: Some(day) };
    c.apply(plan, Moment(3), by.clone(), s(3)).unwrap();
    let improvements = c.improvements();
    assert_eq!(improvements.len(), 1);
    assert_eq!(
        (improvements[0].department, improvements[0].measure, improvements[0].due),
        ("cardio", "增设叫号屏", day)
    );
    assert!(improvements[0].done.is_none());
    let unknown = CaseAction::ImprovementDone { plan: s(99), effect: "已安装".into() };
    assert!(c.apply(unknown, Moment(4), by.clone(), s(4)).unwrap_err().get("plan").is_some());
    let done = CaseAction::ImprovementDone { plan: s(3), effect: "已安装，候诊投诉减少".into() };
    c.apply(done.clone(), Moment(5), by.clone(), s(5)).unwrap();
    assert_eq!(c.improvements()[0].done.map(|(_, e)| e), Some("已安装，候诊投诉减少"));
    assert!(c.apply(done, Moment(6), by, s(6)).unwrap_err().get("plan").is_some(), "done once");
}
