//! The audit log: views, reveals, changes, exports, prints and sign-ins are put on a hash-chained log, in the same
//! transaction as the change they record; the supervisor's screen lists and exports it; tampering is detected.

use egui::accesskit::Role as A11y;
use egui_kittest::kittest::Queryable as _;
use guidedesk::model::reference::{Role, Staff};
use guidedesk::model::{
    ArrivalChannel, ArrivalForm, AuditAction, AuditEntry, AuditTarget, CaseChannel, CaseForm, CaseGrade, RecordKind,
    Sex, VisitStep, VisitType,
};
use guidedesk::store::Store;
use guidedesk::ui::data::{Command, Outcome};

use crate::access::{app, desk, last_audit, records_but_audit, sign_in};

fn entries(store: &Store) -> Vec<AuditEntry> {
    store.chain::<AuditEntry>().unwrap()
}

fn arrival_form(store: &Store) -> ArrivalForm {
    ArrivalForm {
        name: "赵审计".into(),
        sex: Some(Sex::Female),
        visit_type: Some(VisitType::First),
        channel: Some(ArrivalChannel::WalkIn),
        complaint: "头痛".into(),
        department: store.reference().departments[0].id.clone(),
        phone: "13912345678".into(),
        ..ArrivalForm::default()
    }
}

fn case_form() -> CaseForm {
    CaseForm {
        grade: Some(CaseGrade::Complaint),
        channel: Some(CaseChannel::InPerson),
        complainant: "钱投诉".into(),
        complainant_phone: "13700001111".into(),
        facts: "waited too long".into(),
        ..Default::default()
    }
}

#[test]
fn changes_are_audited_in_the_same_transaction_and_failed_ones_not_at_all() {
    let d = desk();
    let ctx = egui::Context::default();
    let mut a = app(&d.store);
    sign_in(&mut a, "G1");
    let signed = last_audit(&d.store);
    assert_eq!((signed.action, signed.actor.0.as_str()), (AuditAction::SignIn, "G1"));

    let Outcome::Done(Some(id)) = a.apply(Command::Register(Box::new(arrival_form(&d.store))), &ctx) else {
        panic!("registered")
    };
    let e = last_audit(&d.store);
    assert_eq!(e.action, AuditAction::Change);
    assert_eq!(e.actor.0, "G1");
    assert_eq!(e.target, Some(AuditTarget { kind: RecordKind::Arrival, id }));
    assert_eq!(e.detail, "register");
    // The entry went out with the record (and its follow-up task) from one transaction: the transaction's last op.
    let ops = d.store.outbox_after(0, 1000).unwrap();
    let kinds: Vec<u16> = ops.iter().map(|o| o.key.kind).collect();
    let arrival_at = kinds.iter().position(|k| *k == RecordKind::Arrival.code()).unwrap();
    assert_eq!(kinds[arrival_at..], [1, 5, 7], "arrival, its outpatient follow-up task, the audit entry");

    // An invalid form writes nothing, audit entry included.
    let before = entries(&d.store).len();
    assert!(matches!(a.apply(Command::Register(Box::default()), &ctx), Outcome::Invalid(_)));
    assert_eq!(entries(&d.store).len(), before);

    a.apply(Command::MoveStep { id, step: VisitStep::Registered, reason: None }, &ctx);
    assert_eq!(last_audit(&d.store).detail, "move_step:registered");

    // A complaint taken and worked: each action is its own entry naming the action, never the text entered.
    let mut cs = app(&d.store);
    sign_in(&mut cs, "C1");
    let Outcome::Done(Some(case)) = cs.apply(Command::NewCase(Box::new(case_form())), &ctx) else { panic!() };
    assert_eq!(last_audit(&d.store).detail, "new_case");
    let note = guidedesk::command::CaseCommand::Note { text: "called back 钱投诉 at 13700001111".into() };
    assert_eq!(cs.apply(Command::Case { id: case, action: note }, &ctx), Outcome::Done(Some(case)));
    let e = last_audit(&d.store);
    assert_eq!((e.detail.as_str(), e.target.unwrap().id), ("case:note", case));
    for e in entries(&d.store) {
        assert!(!e.detail.contains("1370000") && !e.detail.contains("钱"), "no personal data: {e:?}");
    }
    assert!(d.store.check().unwrap().is_empty(), "{:?}", d.store.check().unwrap());
}

#[test]
fn views_reveals_prints_and_sign_ins_are_on_the_log() {
    let d = desk();
    let ctx = egui::Context::default();
    let mut cs = app(&d.store);
    // A wrong PIN is on the log under the account tried.
    let wrong = cs.apply(Command::SignIn { staff: "C1".into(), pin: "0000".into() }, &ctx);
    assert!(matches!(wrong, Outcome::Invalid(_)));
    let e = last_audit(&d.store);
    assert_eq!((e.action, e.actor.0.as_str(), e.detail.as_str()), (AuditAction::SignInFailed, "C1", "wrong PIN"));
    sign_in(&mut cs, "C1");
    let Outcome::Done(Some(case)) = cs.apply(Command::NewCase(Box::new(case_form())), &ctx) else { panic!() };
    let target = AuditTarget { kind: RecordKind::Case, id: case };

    cs.apply(Command::View { target: Some(target), what: "case" }, &ctx);
    let e = last_audit(&d.store);
    assert_eq!((e.action, e.target), (AuditAction::View, Some(target)));

    // A guide may not reveal: refused, on the log, and nothing revealed.
    let mut guide = app(&d.store);
    sign_in(&mut guide, "G1");
    assert!(matches!(guide.apply(Command::Reveal(target), &ctx), Outcome::Failed(_)));
    assert!(!guide.is_revealed(case));
    assert_eq!(last_audit(&d.store).action, AuditAction::Refused);

    // Customer service may: the reveal is on the log before the number shows, and the session forgets it on lock.
    assert_eq!(cs.apply(Command::Reveal(target), &ctx), Outcome::Done(Some(case)));
    let e = last_audit(&d.store);
    assert_eq!((e.action, e.actor.0.as_str(), e.target), (AuditAction::Reveal, "C1", Some(target)));
    assert!(cs.is_revealed(case));
    cs.lock();
    assert!(!cs.is_revealed(case));
    assert_eq!((last_audit(&d.store).action, last_audit(&d.store).detail.as_str()), (AuditAction::SignOut, "lock"));
    sign_in(&mut cs, "C1");

    assert_eq!(cs.apply(Command::Slip { id: case }, &ctx), Outcome::Done(Some(case)));
    let e = last_audit(&d.store);
    assert_eq!((e.action, e.target), (AuditAction::Print, Some(target)));

    cs.sign_out();
    assert_eq!(last_audit(&d.store).detail, "sign out");
    assert!(d.store.verify_chain::<AuditEntry>().unwrap().is_empty());
}

#[test]
fn the_log_is_exported_as_csv_and_the_export_itself_is_logged() {
    let d = desk();
    let ctx = egui::Context::default();
    let mut sup = app(&d.store);
    sign_in(&mut sup, "S1");
    let day = d.store.today();
    let before = entries(&d.store).len();
    assert_eq!(sup.apply(Command::ExportAudit { from: day, to: day }, &ctx), Outcome::Done(None));
    let path = d.dir.path().join("exports").join(format!("audit-{day}-{day}.csv"));
    let csv = std::fs::read_to_string(&path).unwrap();
    assert!(csv.starts_with("\u{feff}id,at,actor,action,target_kind,target_id,detail,chain_index,prev_hash,hash"));
    assert_eq!(csv.lines().count(), 1 + before, "every entry before the export, one line each");
    assert!(csv.contains(",S1,sign_in,"));
    let e = last_audit(&d.store);
    assert_eq!(e.action, AuditAction::Export);
    assert_eq!(e.detail, format!("audit csv {day}..{day}: {before} rows"));
    // A reversed period is refused with nothing written.
    let next = day.succ_opt().unwrap();
    assert!(matches!(sup.apply(Command::ExportAudit { from: next, to: day }, &ctx), Outcome::Failed(_)));
    assert_eq!(records_but_audit(&d.store), 0);
}

#[test]
fn the_command_line_puts_exports_reports_and_backups_on_the_log_under_the_os_account() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(crate::guidedesk(&data, &["demo", "--days", "2"]).status.success());
    let out = dir.path().join("arrivals.csv");
    let r = crate::guidedesk(&data, &["export", "--kind", "arrival", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let backup = dir.path().join("kiosk.backup");
    let r = crate::guidedesk(&data, &["backup", "--out", backup.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let csv = dir.path().join("audit.json");
    let r = crate::guidedesk(&data, &["export", "--kind", "audit", "--format", "json", "--out", csv.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let log: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&csv).unwrap()).unwrap();
    let exports: Vec<&serde_json::Value> = log.iter().filter(|e| e["action"] == "Export").collect();
    assert_eq!(exports.len(), 2, "{exports:?}");
    assert!(exports[0]["actor"].as_str().unwrap().starts_with("cli:"));
    assert!(exports[0]["detail"].as_str().unwrap().starts_with("arrival csv"), "{:?}", exports[0]);
    assert!(exports[1]["detail"].as_str().unwrap().starts_with("backup: "), "{:?}", exports[1]);
    let r = crate::guidedesk(&data, &["check"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
    assert!(String::from_utf8_lossy(&r.stdout).contains("feedback and audit chains intact"));
}

#[test]
fn a_deleted_entry_is_reported_by_check() {
    let d = desk();
    let ctx = egui::Context::default();
    let mut a = app(&d.store);
    sign_in(&mut a, "G1");
    for _ in 0..3 {
        a.apply(Command::Register(Box::new(arrival_form(&d.store))), &ctx);
    }
    let victim = entries(&d.store)[2].clone();
    let path = d.store.path().to_path_buf();
    drop(a);
    assert!(std::sync::Arc::try_unwrap(d.store).is_ok(), "the only handle, now closed");
    {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(redb::TableDefinition::<u128, &[u8]>::new("rec_audit")).unwrap();
            t.remove(victim.id.as_u128()).unwrap();
        }
        tx.commit().unwrap();
    }
    let r = crate::guidedesk(d.dir.path(), &["check"]);
    assert!(!r.status.success());
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("audit log #2 is missing (deleted)"), "{out}");
}

#[test]
fn supervisors_see_the_audit_screen_and_guides_do_not() {
    let f = crate::ui::fixture(true);
    let mut r = (*f.store.reference()).clone();
    r.staff.push(Staff {
        id: "S001".into(),
        name: "周主管".into(),
        role: Role::Supervisor,
        department: None,
        pin_hash: r.staff[0].pin_hash.clone(),
        active: true,
    });
    f.store.apply_reference(r, "test").unwrap();
    let mut h = crate::ui::harness(&f.store);
    crate::ui::sign_in(&mut h, "陈晓燕");
    assert!(h.query_by_role_and_label(A11y::Button, "审计日志").is_none(), "no audit tab for a guide");
    h.state_mut().sign_out();
    h.run();
    crate::ui::sign_in(&mut h, "周主管");
    crate::ui::button(&mut h, "审计日志");
    // The list shows the sign-ins so far, newest first, and reading it is itself logged.
    let last = last_audit(&f.store);
    assert_eq!((last.action, last.detail.as_str()), (AuditAction::View, "audit_log"));
    assert!(h.query_by_label_contains("登录失败").is_none());
    assert!(h.query_by_label_contains("周主管 (S001)").is_some());
    crate::ui::button(&mut h, "校验链");
    assert!(h.query_by_label_contains("链完整").is_some());
    crate::ui::button(&mut h, "导出 CSV");
    assert!(h.query_by_label_contains("审计日志已导出到").is_some());
}

#[test]
fn the_reveal_button_shows_the_full_number_only_after_it_is_logged() {
    let f = crate::ui::fixture(true);
    let mut h = crate::ui::harness(&f.store);
    crate::ui::sign_in(&mut h, "刘敏");
    let ctx = egui::Context::default();
    let Outcome::Done(Some(case)) = h.state_mut().apply(Command::NewCase(Box::new(case_form())), &ctx) else {
        panic!()
    };
    h.state_mut().sign_out();
    h.run();
    crate::ui::sign_in(&mut h, "刘敏");
    crate::ui::button(&mut h, "客诉处理");
    h.get(egui_kittest::kittest::By::new().role(A11y::Button).label_contains("钱投诉")).click();
    h.run();
    let viewed = last_audit(&f.store);
    assert_eq!((viewed.action, viewed.target.map(|t| t.id)), (AuditAction::View, Some(case)));
    assert!(h.query_by_label("137****1111").is_some(), "masked first");
    assert!(h.query_by_label("13700001111").is_none());
    crate::ui::button(&mut h, "显示");
    let e = last_audit(&f.store);
    assert_eq!((e.action, e.actor.0.as_str()), (AuditAction::Reveal, "K001"));
    assert!(h.query_by_label("13700001111").is_some(), "shown in full after the reveal");
    // The next person at the desk starts from empty screens: no open case, no revealed number.
    h.state_mut().sign_out();
    h.run();
    crate::ui::sign_in(&mut h, "陈晓燕");
    crate::ui::button(&mut h, "客诉处理");
    assert!(h.query_by_label("13700001111").is_none());
    assert!(h.query_by_label("137****1111").is_none(), "the case is not open for the guide");
}
