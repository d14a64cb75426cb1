//! Complaints and follow-up calls through the real screens.

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use guidedesk::model::case::CaseOrigin;
use guidedesk::model::{
    Case, CaseChannel, CaseForm, CaseGrade, CaseStatus, FollowupSource, FollowupStatus, FollowupTask, Lww, Rating,
    RecordKind, StaffRef,
};
use guidedesk::store::Store;

use crate::ui::{button, fixture, harness, sign_in, type_into};

fn cases(store: &Store) -> Vec<Case> {
    store.open_cases_due(None).unwrap()
}

fn pick(h: &mut egui_kittest::Harness<'_, guidedesk::app::DeskApp>, combo_label: &str, option: &str) {
    h.get_by_label(combo_label).scroll_to_me();
    h.run();
    h.get_by_label(combo_label).click();
    h.run();
    // The option in the open popup (drawn last; the same name can also be on the page).
    h.query_all_by_label(option).last().expect("the option is listed").click();
    h.run();
}

fn tick(h: &mut egui_kittest::Harness<'_, guidedesk::app::DeskApp>, label: &str) {
    h.get_by_label(label).scroll_to_me();
    h.run();
    h.get_by_label(label).click();
    h.run();
}

/// The whole handling round; the case is closed a day after its deadline, which 《客户服务中心管理方案》 allows only
/// with the reason for the delay.
#[test]
fn take_assign_resolve_and_close_a_complaint() {
    let f = fixture(true);
    // The session stays open across the days the case takes.
    let mut h = crate::ui::harness_with(&f.store, 10 * 24 * 60);
    sign_in(&mut h, "刘敏");
    button(&mut h, "客诉处理");
    button(&mut h, "新建客诉");
    button(&mut h, "投诉");
    h.get_by_role_and_label(Role::Button, "电话").click();
    h.run();
    type_into(&mut h, Role::TextInput, "投诉人", "李强");
    type_into(&mut h, Role::TextInput, "电话", "13912345678");
    pick(&mut h, "涉及科室", "心血管内科");
    // People concerned are picked from the staff list (and the doctors); anyone else is named under "others".
    pick(&mut h, "涉及人员", "陈晓燕 D001");
    type_into(&mut h, Role::TextInput, "其他人员", "保洁员小王");
    type_into(&mut h, Role::MultilineTextInput, "事实与理由", "候诊两小时无人告知原因");
    button(&mut h, "受理");
    assert!(h.query_by_label("客诉已受理").is_some());
    let all = cases(&f.store);
    assert_eq!(all.len(), 1);
    let c = &all[0];
    assert_eq!(c.staff_concerned, ["D001", "保洁员小王"]);
    // Received Monday 2026-11-23: three working days → Thursday 2026-11-26.
    assert_eq!(c.due.value, (chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(), false));
    assert_eq!(
        (c.grade.value, c.channel, c.received_by.0.as_str()),
        (CaseGrade::Complaint, CaseChannel::Phone, "K001")
    );

    button(&mut h, "转交科室");
    pick(&mut h, "分诊科室", "心血管内科");
    button(&mut h, "确认： 转交科室");
    button(&mut h, "处理完毕");
    type_into(&mut h, Role::MultilineTextInput, "处理结果", "已向患者致歉并说明原因");
    type_into(&mut h, Role::TextInput, "责任人", "王主任");
    button(&mut h, "确认： 处理完毕");
    button(&mut h, "已告知投诉人");
    button(&mut h, "确认： 已告知投诉人");
    // Friday 2026-11-27: a day past the deadline.
    f.clock.advance(4 * 24 * 3_600_000);
    button(&mut h, "结案");
    button(&mut h, "满意");
    button(&mut h, "确认： 结案");
    let open: Case = f.store.get(c.id).unwrap().unwrap();
    assert_eq!(open.current(), CaseStatus::Notified, "an overdue case is not closed without the reason");
    assert!(h.query_by_label("逾期说明").is_some());
    type_into(&mut h, Role::TextInput, "逾期说明", "科室主任出差，返院后才核实");
    button(&mut h, "确认： 结案");
    let c: Case = f.store.get(c.id).unwrap().unwrap();
    assert_eq!(c.current(), CaseStatus::Closed);
    assert_eq!(c.events.last().unwrap().note.as_deref(), Some("科室主任出差，返院后才核实"));
    assert_eq!(c.handling_satisfaction.value, Some(Rating::Satisfied));
    assert_eq!(c.assigned_department.value.as_deref(), Some("cardio"));
    let kinds: Vec<&str> = c.events.iter().map(|e| guidedesk::export::event_name(&e.kind)).collect();
    assert_eq!(kinds, ["received", "assigned", "resolved", "notified", "closed"]);
    assert!(c.events.iter().all(|e| e.by.0 == "K001"));
    // The closed complaint goes on the call list.
    let key = FollowupSource::Case { case: c.id }.dedup_key();
    assert!(f.store.followup_by_source(&key).unwrap().is_some());
}

#[test]
fn an_overdue_case_is_highlighted() {
    let f = fixture(true);
    f.store
        .write(|ctx| {
            let form = CaseForm {
                grade: Some(CaseGrade::Dispute),
                channel: Some(CaseChannel::InPerson),
                complainant: "赵敏".into(),
                facts: "要求退费".into(),
                ..CaseForm::default()
            };
            let due = (chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(), false);
            let origin =
                CaseOrigin { id: ctx.new_id(), at: ctx.now(), by: StaffRef("K002".into()), due, stamp: ctx.stamp() };
            ctx.put(&form.into_record(ctx.reference(), origin)?)
        })
        .unwrap();
    let mut h = harness(&f.store);
    sign_in(&mut h, "刘敏");
    button(&mut h, "客诉处理");
    assert!(h.query_by_label("1 件已超期").is_some());
    button(&mut h, "已超期");
    assert!(h.query_by_label_contains("⚠ 已超期 期限 2026-11-20").is_some());
    button(&mut h, "查看 赵敏");
    assert!(h.query_by_label("纠纷 · 赵敏").is_some());
}

/// A discharge call for 周建国 (cardiology), due today.
fn discharge_task(store: &Store) -> FollowupTask {
    let today = store.today();
    store
        .write(|ctx| {
            let stamp = ctx.stamp();
            let t = FollowupTask {
                id: ctx.new_id(),
                created_at: ctx.now(),
                created_by: StaffRef("import".into()),
                source: FollowupSource::Discharge {
                    his_key: "ZY001".into(),
                    discharged_on: today - chrono::Days::new(8),
                    diagnosis: Some("冠心病".into()),
                },
                patient_name: "周建国".into(),
                phone: "13600001111".into(),
                department: Some("cardio".into()),
                inpatient: true,
                due_from: today - chrono::Days::new(1),
                due_to: today + chrono::Days::new(2),
                status: Lww::new(FollowupStatus::Open, stamp),
                closed_at: Lww::new(None, stamp),
            };
            ctx.put(&t)?;
            Ok(t)
        })
        .unwrap()
}

/// 《出院病人电话回访制度》: calls are made in the calling hours; one outside them (here at 12:30) is recorded only
/// with the reason in its notes.
#[test]
fn a_follow_up_worked_through_two_attempts() {
    let f = fixture(true);
    let task = discharge_task(&f.store);
    let mut h = harness(&f.store);
    sign_in(&mut h, "刘敏");
    button(&mut h, "回访");
    assert!(h.query_by_label("今日应访 1 人").is_some());
    button(&mut h, "回访 周建国");
    button(&mut h, "无人接听");
    button(&mut h, "保存回访记录");
    assert!(h.query_by_label("回访记录已保存").is_some());
    let t: FollowupTask = f.store.get(task.id).unwrap().unwrap();
    assert_eq!(t.status.value, FollowupStatus::Open, "one unanswered call keeps it on the list");
    // 12:30: outside the calling hours (8–11, 14–17). A call is recorded only with the reason in its notes.
    f.clock.advance(2 * 3_600_000 + 30 * 60_000);
    button(&mut h, "回访 周建国");
    assert!(h.query_by_label_contains("现在不在回访时间").is_some(), "the screen says so");
    button(&mut h, "接通");
    type_into(&mut h, Role::TextInput, "恢复情况", "恢复良好");
    tick(&mut h, "已提醒复诊");
    button(&mut h, "满意");
    button(&mut h, "保存回访记录");
    assert!(h.query_by_label_contains("请在备注中写明原因").is_some(), "the reason is asked for");
    assert_eq!(f.store.attempts_of(task.id).unwrap().len(), 1, "nothing recorded without it");
    type_into(&mut h, Role::TextInput, "备注", "病人约定午休时回电");
    button(&mut h, "保存回访记录");
    let t: FollowupTask = f.store.get(task.id).unwrap().unwrap();
    assert_eq!(t.status.value, FollowupStatus::Completed);
    let attempts = f.store.attempts_of(task.id).unwrap();
    assert_eq!(attempts.len(), 2);
    let script = attempts[1].script.clone().unwrap();
    assert_eq!(
        (script.recovery.as_deref(), script.revisit_reminder, script.satisfaction),
        (Some("恢复良好"), true, Some(Rating::Satisfied))
    );
    assert!(h.query_by_label("今日应访 0 人").is_some());
    assert_eq!(f.store.count(RecordKind::CallAttempt).unwrap(), 2);
}

/// 《客户服务中心管理方案》: a complaint heard during a call-back is received like any other — in one tap from the
/// call, the patient, phone and department taken from the task, by phone.
#[test]
fn a_complaint_heard_on_a_follow_up_call_becomes_a_case_in_one_tap() {
    let f = fixture(true);
    let task = discharge_task(&f.store);
    let mut h = harness(&f.store);
    sign_in(&mut h, "刘敏");
    button(&mut h, "回访");
    button(&mut h, "回访 周建国");
    button(&mut h, "接通");
    type_into(&mut h, Role::TextInput, "意见建议", "出院结算等了两个小时");
    button(&mut h, "转为客诉（回访中反映的问题）");
    // Without a grade nothing is taken.
    button(&mut h, "受理客诉");
    assert!(h.query_by_label("请选择客诉级别").is_some());
    assert!(cases(&f.store).is_empty());
    button(&mut h, "投诉");
    button(&mut h, "受理客诉");
    let list = cases(&f.store);
    assert_eq!(list.len(), 1, "one case taken");
    let c = &list[0];
    assert_eq!((c.grade.value, c.channel), (CaseGrade::Complaint, CaseChannel::Phone));
    assert_eq!((c.complainant.as_str(), c.complainant_phone.as_deref()), ("周建国", Some("13600001111")));
    assert_eq!(c.departments, ["cardio"]);
    assert_eq!(c.facts, "回访中反映：出院结算等了两个小时");
    assert!(h.query_by_label_contains("已受理客诉").is_some());
    // The call itself is still recorded as usual, with what was typed.
    button(&mut h, "满意");
    button(&mut h, "保存回访记录");
    let attempts = f.store.attempts_of(task.id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].script.as_ref().unwrap().suggestions.as_deref(), Some("出院结算等了两个小时"));
}

#[test]
fn import_a_discharge_file_with_one_bad_row_from_the_worklist() {
    let f = fixture(true);
    let today = f.store.today();
    let d = |n: u64| (today - chrono::Days::new(n)).format("%Y-%m-%d").to_string();
    let csv = format!(
        "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY1001,周建国,13600001111,心血管内科,{},冠心病\nZY1002,吴秀英,13600002222,骨科,{},腰椎间盘突出\nZY1003,郑强,12345,普外科,{},阑尾炎\n",
        d(3),
        d(8),
        d(2)
    );
    let file = f.dir.path().join("出院名单.csv");
    std::fs::write(&file, csv).unwrap();
    let mut h = harness(&f.store);
    sign_in(&mut h, "刘敏");
    button(&mut h, "回访");
    h.get_by_label_contains("导入出院名单").click();
    h.run();
    type_into(&mut h, Role::TextInput, "文件路径", file.to_str().unwrap());
    h.get_by_role_and_label(Role::Button, "导入").click();
    for _ in 0..400 {
        h.step();
        if h.query_by_label_contains("已导入").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    h.run();
    assert!(h.query_by_label("已导入 2 条，已存在 0 条，有问题 1 行").is_some());
    assert!(h.query_by_label_contains("第 4 行").is_some(), "the bad row is named by its line");
    // Two calls for each of the two discharges, and the chronic plan's first round for 冠心病 (周建国).
    assert_eq!(f.store.count(RecordKind::FollowupTask).unwrap(), 5, "two calls each, and one chronic round");
    assert!(h.query_all_by_label("回访 吴秀英").next().is_some(), "the imported patient is on the worklist");
}

#[test]
fn escalation_recomputes_the_deadline_from_the_original_receipt() {
    use guidedesk::command::cases::{CaseCommand, act_on_case, new_case};
    let f = fixture(true);
    let by = StaffRef("K001".into());
    let form = CaseForm {
        grade: Some(CaseGrade::Complaint),
        channel: Some(CaseChannel::Phone),
        complainant: "孙丽".into(),
        departments: vec!["ortho".into()],
        facts: "术后疼痛未处理".into(),
        ..CaseForm::default()
    };
    // Received Monday 2026-11-23: a complaint is due in 3 working days.
    let id = f.store.write(|ctx| new_case(ctx, &form, by.clone())).unwrap();
    let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    assert_eq!(f.store.get::<Case>(id).unwrap().unwrap().due.value.0, d(11, 26));
    // Escalated two days later to a dispute: 7 working days from the receipt (not from today) → 2026-12-02.
    f.clock.advance(2 * 86_400_000);
    f.store.write(|ctx| act_on_case(ctx, id, CaseCommand::Escalate { to: CaseGrade::Dispute }, by.clone())).unwrap();
    let c: Case = f.store.get(id).unwrap().unwrap();
    assert_eq!((c.grade.value, c.due.value), (CaseGrade::Dispute, (d(12, 2), false)));
    assert!(c.events.iter().any(|e| matches!(e.kind, guidedesk::model::CaseEventKind::Escalated { .. })));
}

/// Two desks closed the same complaint while apart: both closings are kept, and the case says it needs a
/// supervisor, in the list and on the case, until it is reopened and finished once.
#[test]
fn a_case_closed_at_two_desks_while_apart_needs_a_supervisor() {
    use guidedesk::model::{CaseAction, CaseConflict};
    use guidedesk_sync::Hlc;
    let f = fixture(true);
    let form = CaseForm {
        grade: Some(CaseGrade::Complaint),
        channel: Some(CaseChannel::InPerson),
        complainant: "郑华".into(),
        facts: "检查结果迟迟未出".into(),
        ..CaseForm::default()
    };
    let id = f.store.write(|ctx| guidedesk::command::cases::new_case(ctx, &form, StaffRef("K001".into()))).unwrap();
    let base: Case = f.store.get(id).unwrap().unwrap();
    let at = base.received_at;
    let desk = |node: u64, rating: Rating| {
        let mut c = base.clone();
        let stamp = |n: u64| Hlc { wall_ms: u64::try_from(at.0).unwrap() + n, logical: 0, node };
        let resolve =
            CaseAction::Resolve {
                resolution: "已解释".into(), actions: String::new(), responsible: "检验科".into()
            };
        c.apply(resolve, at, StaffRef("K001".into()), stamp(10)).unwrap();
        c.apply(
            CaseAction::Close { satisfaction: Some(rating), explanation: String::new() },
            at,
            StaffRef("K001".into()),
            stamp(20 + node),
        )
        .unwrap();
        c
    };
    let mut merged = desk(7, Rating::Satisfied);
    guidedesk::model::common::Merge::merge(&mut merged, &desk(9, Rating::Dissatisfied));
    assert_eq!(merged.conflicts(), vec![CaseConflict::TwoClosings]);
    f.store.write(|ctx| ctx.put(&merged)).unwrap();
    let mut h = harness(&f.store);
    sign_in(&mut h, "刘敏");
    button(&mut h, "客诉处理");
    button(&mut h, "近90天全部");
    assert!(h.query_by_label("1 件需主管核对").is_some());
    assert!(h.query_by_label("⚠ 需主管核对").is_some());
    button(&mut h, "查看 郑华");
    assert!(h.query_by_label_contains("两个服务台各自结案").is_some());
}

/// Signs a supervisor (王主管, PIN 1234) into the fixture's staff list.
fn with_supervisor(store: &Store) {
    let mut r = (*store.reference()).clone();
    let mut boss = r.staff[0].clone();
    boss.id = "S001".into();
    boss.name = "王主管".into();
    boss.role = guidedesk::model::reference::Role::Supervisor;
    r.staff.push(boss);
    store.apply_reference(r, "test").unwrap();
}

/// The hospital's rules: a dispute or incident, a registration queue of more than 8, and cases at or past their
/// deadline are put before the supervisor at once — on every screen of a supervisor, not on a guide's.
#[test]
fn an_incident_and_a_long_queue_raise_the_alert_on_a_supervisors_screen() {
    let f = fixture(true);
    with_supervisor(&f.store);
    let dept = f.store.reference().departments[0].id.clone();
    f.store
        .write(|ctx| {
            for i in 0..9 {
                let form = guidedesk::model::ArrivalForm {
                    name: format!("排队{i}"),
                    sex: Some(guidedesk::model::Sex::Female),
                    visit_type: Some(guidedesk::model::VisitType::Return),
                    channel: Some(guidedesk::model::ArrivalChannel::WalkIn),
                    complaint: "头痛".into(),
                    department: dept.clone(),
                    ..guidedesk::model::ArrivalForm::default()
                };
                guidedesk::command::desk::register(ctx, &form, &StaffRef("D001".into()))?;
            }
            let form = CaseForm {
                grade: Some(CaseGrade::Incident),
                channel: Some(CaseChannel::InPerson),
                complainant: "李建华".into(),
                departments: vec![dept.clone()],
                facts: "输液后出现过敏反应".into(),
                ..CaseForm::default()
            };
            guidedesk::command::cases::new_case(ctx, &form, StaffRef("D001".into()))
        })
        .unwrap();
    // A guide sees no strip.
    let mut h = harness(&f.store);
    sign_in(&mut h, "陈晓燕");
    assert!(h.query_by_label_contains("主管提醒").is_none());
    // The supervisor sees it on whatever screen, and it leads to the case.
    let mut h = harness(&f.store);
    sign_in(&mut h, "王主管");
    assert!(h.query_by_label_contains("主管提醒").is_some());
    assert!(h.query_by_label("挂号排队 9 人，超过 8 人").is_some());
    assert!(h.query_by_label_contains("事故：李建华").is_some(), "the incident is named");
    // The queue alert is on the audit log, once, under the supervisor who was shown it.
    let logged = |store: &Store| {
        store
            .chain::<guidedesk::model::AuditEntry>()
            .unwrap()
            .into_iter()
            .filter(|e| e.action == guidedesk::model::AuditAction::Alert)
            .map(|e| (e.actor.0, e.detail))
            .collect::<Vec<_>>()
    };
    assert_eq!(logged(&f.store), [("S001".to_string(), "queue_alert:9/8".to_string())]);
    h.run_steps(3);
    assert_eq!(logged(&f.store).len(), 1, "not again while the queue stays over the limit");
    assert!(h.query_by_label("查看 李建华").is_none(), "the supervisor starts elsewhere");
    h.get(egui_kittest::kittest::By::new().label_contains("事故：李建华")).click();
    h.run();
    assert!(h.query_by_label("查看 李建华").is_some(), "the alert leads to the case");
}

/// 督办: the reminder before the deadline — a complaint received on Monday is due on Thursday (3 working days); on
/// Wednesday the supervisor's strip says it is due by the next working day, on Thursday that it is due today.
#[test]
fn a_case_due_by_the_next_working_day_is_put_before_the_supervisor() {
    let f = fixture(true);
    with_supervisor(&f.store);
    let dept = f.store.reference().departments[0].id.clone();
    let form = CaseForm {
        grade: Some(CaseGrade::Complaint),
        channel: Some(CaseChannel::InPerson),
        complainant: "赵敏".into(),
        departments: vec![dept],
        facts: "候诊时间过长".into(),
        ..CaseForm::default()
    };
    f.store.write(|ctx| guidedesk::command::cases::new_case(ctx, &form, StaffRef("D001".into()))).unwrap();
    let day = 86_400_000;
    f.clock.set(guidedesk::model::Moment(crate::ui::T0 + 2 * day));
    let mut h = crate::ui::harness_with(&f.store, 30 * 24 * 60);
    sign_in(&mut h, "王主管");
    assert!(h.query_by_label("1 件客诉下一工作日到期").is_some(), "Wednesday: due by the next working day");
    f.clock.set(guidedesk::model::Moment(crate::ui::T0 + 3 * day));
    let mut h = crate::ui::harness_with(&f.store, 30 * 24 * 60);
    sign_in(&mut h, "王主管");
    assert!(h.query_by_label("1 件客诉今日到期").is_some(), "Thursday: due today");
    assert!(h.query_by_label("1 件客诉下一工作日到期").is_none());
}
