//! Roles and permissions enforced where commands are applied, sign-in lockout with back-off, and patient-mode
//! isolation.

use std::sync::Arc;

use guidedesk::access::{Action, allowed};
use guidedesk::app::DeskApp;
use guidedesk::config::{Config, Language};
use guidedesk::model::reference::{Role, Staff};
use guidedesk::model::{AuditAction, AuditEntry, AuditTarget, Moment, RecordId, RecordKind};
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset};
use guidedesk::ui::data::{CaseCommand, Command, Outcome, SearchQuery};

use crate::ui::T0;

const ROLES: [(Role, &str); 6] = [
    (Role::Guide, "G1"),
    (Role::GuideLead, "L1"),
    (Role::CustomerService, "C1"),
    (Role::DepartmentHead, "H1"),
    (Role::Supervisor, "S1"),
    (Role::Administrator, "A1"),
];

pub struct Desk {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub store: Arc<Store>,
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Store {
    Store::open_with(dir, StoreOptions { clock: clock.clone(), utc_offset: china_offset() }).unwrap()
}

/// A store with one account per role (G1, L1, C1, H1 — head of cardiology —, S1, A1), all with PIN 1234.
pub fn desk() -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = open(dir.path(), &clock);
    let mut r = (*store.reference()).clone();
    let hash = guidedesk::staff::hash_pin("1234").unwrap();
    r.staff = ROLES
        .iter()
        .map(|(role, id)| Staff {
            id: (*id).into(),
            name: format!("staff {id}"),
            role: *role,
            department: (*role == Role::DepartmentHead).then(|| "cardio".to_string()),
            pin_hash: hash.clone(),
            active: true,
        })
        .collect();
    store.apply_reference(r, "test").unwrap();
    Desk { dir, clock, store: Arc::new(store) }
}

pub fn app(store: &Arc<Store>) -> DeskApp {
    DeskApp::new(Arc::clone(store), &Config { language: Language::En, ..Config::default() })
}

pub fn sign_in(app: &mut DeskApp, id: &str) -> Outcome {
    app.apply(Command::SignIn { staff: id.into(), pin: "1234".into() }, &egui::Context::default())
}

/// Records of every kind but the audit log (refusals are audited, and change nothing else).
pub fn records_but_audit(store: &Store) -> u64 {
    store.stats().unwrap().records.iter().filter(|(k, _)| **k != "audit").map(|(_, n)| n).sum()
}

/// The newest audit entry.
pub fn last_audit(store: &Store) -> AuditEntry {
    store.chain::<AuditEntry>().unwrap().pop().expect("an audit entry")
}

fn day() -> chrono::NaiveDate {
    Moment(T0).local_date(china_offset())
}

fn is_refusal(o: &Outcome) -> bool {
    matches!(o, Outcome::Failed(m) if m.starts_with("Not allowed:"))
}

/// The documented matrix (SECURITY.md), written out independently of `guidedesk::access::MATRIX`.
fn expected(action: Action, role: Role) -> bool {
    use Role::{
        Administrator as A, CustomerService as C, DepartmentHead as H, Guide as G, GuideLead as L, Supervisor as S,
    };
    let roles: &[Role] = match action {
        Action::DeskWork | Action::ChangeDepartment => &[G, L, S, A],
        Action::Search | Action::NewCase | Action::PrintSlip | Action::ViewDashboard => &[G, L, C, H, S, A],
        Action::PatientMode | Action::Appointments | Action::ShiftLog => &[G, L, C, S, A],
        Action::WorkCase => &[C, H, S, A],
        Action::ImportDischarges => &[C, S, A],
        Action::EscalateCase
        | Action::ApproveCase
        | Action::ViewAudit
        | Action::ViewAccountability
        | Action::SpotCheck => &[S, A],
        Action::FollowupCalls | Action::RevealPhone => &[L, C, S, A],
        Action::SupervisorAlerts => &[L, S, A],
    };
    roles.contains(&role)
}

/// A command that needs `action`, if the action is carried by a command.
fn command_for(action: Action, missing: RecordId) -> Option<Command> {
    Some(match action {
        Action::DeskWork => Command::Register(Box::default()),
        Action::ChangeDepartment => {
            Command::Change { id: missing, department: "x".into(), doctor: None, reason: "r".into() }
        }
        Action::Search => Command::Search(SearchQuery::default()),
        Action::NewCase => Command::NewCase(Box::default()),
        Action::WorkCase => Command::Case { id: missing, action: CaseCommand::Investigate },
        Action::EscalateCase => Command::Case { id: missing, action: CaseCommand::Reopen { reason: "r".into() } },
        Action::ApproveCase => {
            Command::Case { id: missing, action: CaseCommand::Approve { department: "x".into(), assignee: None } }
        }
        Action::PrintSlip => Command::Slip { id: missing },
        Action::Appointments => Command::Book(Box::default()),
        Action::ShiftLog => Command::WriteLog(Box::default()),
        Action::FollowupCalls => Command::Attempt { task: missing, form: Box::default() },
        Action::ImportDischarges => Command::ImportDischarges { path: "/nonexistent/discharges.csv".into() },
        Action::SpotCheck => Command::SpotCheck,
        Action::RevealPhone => Command::Reveal(AuditTarget { kind: RecordKind::Arrival, id: missing }),
        Action::ViewAudit => Command::ExportAudit { from: day(), to: day() },
        Action::SupervisorAlerts => Command::LogAlert { detail: "queue_alert:9/8".into() },
        Action::ViewDashboard | Action::PatientMode | Action::ViewAccountability => {
            return None;
        }
    })
}

#[test]
fn every_rule_of_the_matrix_is_enforced_where_commands_are_applied() {
    let d = desk();
    let ctx = egui::Context::default();
    let missing = RecordId::new_v7(Moment(T0));
    let mut checked = 0;
    for (role, id) in ROLES {
        let mut app = app(&d.store);
        assert_eq!(sign_in(&mut app, id), Outcome::Done(None));
        for action in Action::all() {
            let want = expected(action, role);
            assert_eq!(allowed(role, action), want, "{role:?} {action:?}");
            assert_eq!(app.may(action), want, "{role:?} {action:?} on screen");
            if let Some(cmd) = command_for(action, missing) {
                let before = records_but_audit(&d.store);
                let entries = d.store.chain_head(RecordKind::Audit).unwrap().0;
                let o = app.apply(cmd, &ctx);
                assert_eq!(!is_refusal(&o), want, "{role:?} {action:?}: {o:?}");
                if !want {
                    assert_eq!(records_but_audit(&d.store), before, "a refused command wrote nothing");
                    let last = last_audit(&d.store);
                    assert_eq!(d.store.chain_head(RecordKind::Audit).unwrap().0, entries + 1);
                    assert_eq!(
                        (last.action, last.actor.0.as_str(), last.detail.as_str()),
                        (AuditAction::Refused, id, action.name())
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, ROLES.len() * 16);
}

#[test]
fn a_guide_cannot_escalate_a_real_case_but_a_supervisor_can() {
    let d = desk();
    let ctx = egui::Context::default();
    let mut cs = app(&d.store);
    sign_in(&mut cs, "C1");
    let form = guidedesk::model::CaseForm {
        grade: Some(guidedesk::model::CaseGrade::Complaint),
        channel: Some(guidedesk::model::CaseChannel::InPerson),
        complainant: "王芳".into(),
        facts: "waited too long".into(),
        ..Default::default()
    };
    let Outcome::Done(Some(case)) = cs.apply(Command::NewCase(Box::new(form)), &ctx) else { panic!("case taken") };
    let escalate =
        || Command::Case { id: case, action: CaseCommand::Escalate { to: guidedesk::model::CaseGrade::Dispute } };
    let mut guide = app(&d.store);
    sign_in(&mut guide, "G1");
    assert!(is_refusal(&guide.apply(escalate(), &ctx)));
    assert!(is_refusal(&cs.apply(escalate(), &ctx)));
    let c: guidedesk::model::Case = d.store.get(case).unwrap().unwrap();
    assert_eq!(c.grade.value, guidedesk::model::CaseGrade::Complaint, "unchanged");
    let mut sup = app(&d.store);
    sign_in(&mut sup, "S1");
    assert_eq!(sup.apply(escalate(), &ctx), Outcome::Done(Some(case)));
    let c: guidedesk::model::Case = d.store.get(case).unwrap().unwrap();
    assert_eq!(c.grade.value, guidedesk::model::CaseGrade::Dispute);
}

#[test]
fn nothing_is_accepted_before_sign_in_while_locked_or_in_patient_mode() {
    let d = desk();
    let ctx = egui::Context::default();
    let missing = RecordId::new_v7(Moment(T0));
    let mut app = app(&d.store);
    let every = || Action::all().filter_map(|a| command_for(a, missing)).collect::<Vec<_>>();
    for cmd in every() {
        assert!(matches!(app.apply(cmd, &ctx), Outcome::Failed(m) if m.contains("no staff member is signed in")));
    }
    sign_in(&mut app, "A1");
    app.lock();
    assert!(app.is_locked());
    for cmd in every() {
        assert!(is_refusal(&app.apply(cmd, &ctx)), "locked");
    }
    sign_in(&mut app, "A1");
    assert!(!app.is_locked());
    app.enter_patient_mode();
    assert!(app.in_patient_mode());
    for cmd in every() {
        assert!(is_refusal(&app.apply(cmd, &ctx)), "patient mode");
    }
    for action in Action::all() {
        assert!(!app.may(action), "{action:?} in patient mode");
    }
    assert_eq!(records_but_audit(&d.store), 0, "nothing but audit entries was written");
}

#[test]
fn wrong_pins_lock_the_account_with_doubling_back_off_that_survives_a_restart() {
    let d = desk();
    let ctx = egui::Context::default();
    let wrong = |app: &mut DeskApp| app.apply(Command::SignIn { staff: "G1".into(), pin: "9999".into() }, &ctx);
    let locked = |o: &Outcome| matches!(o, Outcome::Failed(m) if m.starts_with("Too many wrong PINs"));
    let mut a = app(&d.store);
    assert!(matches!(wrong(&mut a), Outcome::Invalid(_)));
    assert!(matches!(wrong(&mut a), Outcome::Invalid(_)));
    let third = wrong(&mut a);
    assert!(locked(&third), "{third:?}");
    assert!(matches!(&third, Outcome::Failed(m) if m.contains("30 s")), "{third:?}");
    // Locked: even the right PIN is refused, and other accounts are not affected.
    assert!(locked(&sign_in(&mut a, "G1")));
    assert!(a.staff().is_none());
    assert_eq!(sign_in(&mut app(&d.store), "L1"), Outcome::Done(None));

    // A restart keeps the lockout.
    let Desk { dir, clock, store } = d;
    drop(a);
    drop(store);
    let store = Arc::new(open(dir.path(), &clock));
    let mut a = app(&store);
    assert!(locked(&sign_in(&mut a, "G1")));
    assert_eq!(store.signin_lockout("G1").unwrap().failures, 3);

    // After the back-off one more wrong PIN doubles it.
    clock.advance(30_000);
    let fourth = wrong(&mut a);
    assert!(matches!(&fourth, Outcome::Failed(m) if m.contains("60 s")), "{fourth:?}");
    clock.advance(59_000);
    assert!(locked(&sign_in(&mut a, "G1")));
    clock.advance(1_000);
    assert_eq!(sign_in(&mut a, "G1"), Outcome::Done(None));
    assert_eq!(store.signin_lockout("G1").unwrap().failures, 0, "a correct PIN clears the count");
}

#[test]
fn screens_show_only_the_tabs_a_role_may_use() {
    use egui::accesskit::Role as A11y;
    use egui_kittest::kittest::Queryable as _;
    let tab =
        |h: &egui_kittest::Harness<'_, DeskApp>, label: &str| h.query_by_role_and_label(A11y::Button, label).is_some();

    let f = crate::ui::fixture(true);
    let mut h = crate::ui::harness(&f.store);
    crate::ui::sign_in(&mut h, "刘敏");
    for hidden in ["来院登记", "就诊看板", "咨询登记"] {
        assert!(!tab(&h, hidden), "customer service sees no {hidden} tab");
    }
    for shown in ["客诉处理", "回访", "数据看板", "记录查询"] {
        assert!(tab(&h, shown), "customer service sees {shown}");
    }
    assert_ne!(h.state().screen(), guidedesk::app::Screen::Register, "moved off a screen the role may not use");

    let mut h = crate::ui::harness(&f.store);
    crate::ui::sign_in(&mut h, "陈晓燕");
    assert!(!tab(&h, "回访"), "a guide has no follow-up calls");
    for shown in ["来院登记", "就诊看板", "咨询登记", "客诉处理", "数据看板", "记录查询"] {
        assert!(tab(&h, shown), "a guide sees {shown}");
    }
}

#[test]
fn the_case_screen_offers_only_the_actions_the_role_may_take() {
    use egui::accesskit::Role as A11y;
    use egui_kittest::kittest::Queryable as _;
    let f = crate::ui::fixture(true);
    let mut h = crate::ui::harness(&f.store);
    crate::ui::sign_in(&mut h, "刘敏");
    crate::ui::button(&mut h, "客诉处理");
    crate::ui::button(&mut h, "新建客诉");
    crate::ui::button(&mut h, "投诉");
    h.get_by_role_and_label(A11y::Button, "电话").click();
    h.run();
    crate::ui::type_into(&mut h, A11y::TextInput, "投诉人", "李强");
    crate::ui::type_into(&mut h, A11y::MultilineTextInput, "事实与理由", "候诊两小时无人告知原因");
    crate::ui::button(&mut h, "受理");
    assert!(h.query_by_label("客诉已受理").is_some());
    for shown in ["转交科室", "开始调查", "处理完毕", "备注"] {
        assert!(h.query_by_role_and_label(A11y::Button, shown).is_some(), "customer service may {shown}");
    }
    for hidden in ["升级", "转法律途径"] {
        assert!(h.query_by_role_and_label(A11y::Button, hidden).is_none(), "customer service may not {hidden}");
    }
}

#[test]
fn the_patient_mode_exit_keypad_backs_off_after_wrong_pins() {
    let f = crate::ui::fixture(true);
    let mut h = crate::ui::harness(&f.store);
    crate::ui::sign_in(&mut h, "陈晓燕");
    crate::ui::button(&mut h, "患者评价模式");
    assert!(h.state().in_patient_mode());
    let try_pin = |h: &mut egui_kittest::Harness<'_, DeskApp>, pin: &str| {
        crate::ui::button(h, "工作人员");
        for d in pin.chars() {
            crate::ui::button(h, &d.to_string());
        }
        crate::ui::button(h, "退出评价模式");
        h.state().in_patient_mode()
    };
    for _ in 0..3 {
        assert!(try_pin(&mut h, "5555"), "wrong PIN");
    }
    assert!(try_pin(&mut h, "1234"), "the right PIN is refused while the keypad is locked out");
    f.clock.advance(30_000);
    assert!(!try_pin(&mut h, "1234"), "accepted after the back-off");
    assert_eq!(h.state().staff().map(|s| s.id.as_str()), Some("D001"));
}

/// A department head (科室负责人) works its own department's cases and no other, whatever a screen offered: the
/// command on another department's case is refused, audited, and writes nothing; its case list shows only its
/// department's.
#[test]
fn a_department_head_works_only_its_departments_cases() {
    use egui_kittest::kittest::Queryable as _;
    use guidedesk::model::{Case, CaseChannel, CaseForm, CaseGrade, CaseStatus, StaffRef};
    let d = desk();
    let take = |dept: &str, who: &str| {
        let form = CaseForm {
            grade: Some(CaseGrade::Complaint),
            channel: Some(CaseChannel::InPerson),
            complainant: who.into(),
            departments: vec![dept.into()],
            facts: "候诊时间长".into(),
            ..CaseForm::default()
        };
        d.store.write(|ctx| guidedesk::command::cases::new_case(ctx, &form, StaffRef("C1".into()))).unwrap()
    };
    let (ours, theirs) = (take("cardio", "心内患者"), take("ortho", "骨科患者"));
    let ctx = egui::Context::default();
    let mut app = app(&d.store);
    assert_eq!(sign_in(&mut app, "H1"), Outcome::Done(None));
    let before = records_but_audit(&d.store);
    let o = app.apply(Command::Case { id: theirs, action: CaseCommand::Investigate }, &ctx);
    assert_eq!(o, Outcome::Failed("This case is not one of your department's".into()));
    assert_eq!(records_but_audit(&d.store), before, "nothing written");
    let last = last_audit(&d.store);
    assert_eq!(
        (last.action, last.actor.0.as_str(), last.detail.as_str()),
        (AuditAction::Refused, "H1", "other department")
    );
    let o = app.apply(Command::Case { id: ours, action: CaseCommand::Investigate }, &ctx);
    assert!(matches!(o, Outcome::Done(_)), "{o:?}");
    assert_eq!(d.store.get::<Case>(ours).unwrap().unwrap().current(), CaseStatus::Investigating);
    // Its list: only cardiology's case.
    let mut h = crate::ui::harness(&d.store);
    crate::ui::sign_in(&mut h, "staff H1");
    crate::ui::button(&mut h, "客诉处理");
    assert!(h.query_by_label("查看 心内患者").is_some());
    assert!(h.query_by_label("查看 骨科患者").is_none());
}

/// The customer-service office's desk (`kind = "office"`) opens on the complaints, with no registration tab and no
/// patient mode.
#[test]
fn the_office_desk_has_no_registration_and_no_patient_mode() {
    use egui_kittest::kittest::Queryable as _;
    let d = desk();
    let app =
        DeskApp::new(Arc::clone(&d.store), &Config { kind: guidedesk::config::DeskKind::Office, ..Config::default() });
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_context_setup(guidedesk::ui::theme::install)
        .build_ui_state(|ui, app: &mut DeskApp| app.show(ui), app);
    crate::ui::sign_in(&mut h, "staff S1");
    assert_eq!(h.state().screen(), guidedesk::app::Screen::Cases);
    assert!(h.query_by_label("新建客诉").is_some(), "the complaints screen is open");
    assert!(h.query_by_label("来院登记").is_none(), "no registration tab");
    assert!(h.query_by_label("患者评价模式").is_none(), "no patient mode");
}
