//! The staff screens driven through `egui_kittest` by their visible labels, asserting on what the store holds.

use std::sync::Arc;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use guidedesk::app::DeskApp;
use guidedesk::config::Config;
use guidedesk::model::reference::{Role as StaffRole, Staff};
use guidedesk::model::{
    Arrival, ArrivalChannel, ArrivalForm, Consultation, Moment, RecordKind, Sex, StaffRef, VisitStep, VisitType,
};
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset};
use guidedesk::ui::theme;

/// Monday 2026-11-23 10:00 in China.
pub const T0: i64 = 1_795_399_200_000;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub store: Arc<Store>,
}

pub fn fixture(with_staff: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store =
        Store::open_with(dir.path(), StoreOptions { clock: clock.clone(), utc_offset: china_offset() }).unwrap();
    if with_staff {
        let mut r = (*store.reference()).clone();
        let hash = guidedesk::staff::hash_pin("1234").unwrap();
        r.staff = vec![
            Staff {
                id: "D001".into(),
                name: "陈晓燕".into(),
                role: StaffRole::Guide,
                department: None,
                pin_hash: hash.clone(),
                active: true,
            },
            Staff {
                id: "K001".into(),
                name: "刘敏".into(),
                role: StaffRole::CustomerService,
                department: None,
                pin_hash: hash,
                active: true,
            },
        ];
        store.apply_reference(r, "test").unwrap();
    }
    Fixture { dir, clock, store: Arc::new(store) }
}

/// A harness on the real app at kiosk size. Staff screens lock after `idle_lock_minutes` without input (tests that
/// move the clock far ahead use a long timeout).
pub fn harness_with(store: &Arc<Store>, idle_lock_minutes: u32) -> Harness<'static, DeskApp> {
    let app = DeskApp::new(Arc::clone(store), &Config { idle_lock_minutes, ..Config::default() });
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_context_setup(theme::install)
        .build_ui_state(|ui, app: &mut DeskApp| app.show(ui), app)
}

pub fn harness(store: &Arc<Store>) -> Harness<'static, DeskApp> {
    harness_with(store, 240)
}

/// Clicks a button by its label, scrolling it into view first as a user would.
pub fn button(h: &mut Harness<'_, DeskApp>, label: &str) {
    h.get_by_role_and_label(Role::Button, label).scroll_to_me();
    h.run();
    h.get_by_role_and_label(Role::Button, label).click();
    h.run();
}

pub fn type_into(h: &mut Harness<'_, DeskApp>, role: Role, label: &str, text: &str) {
    h.get_by_role_and_label(role, label).focus();
    h.run();
    h.get_by_role_and_label(role, label).type_text(text);
    h.run();
}

pub fn choose_staff(h: &mut Harness<'_, DeskApp>, name: &str) {
    h.get(egui_kittest::kittest::By::new().role(Role::Button).label_contains(name)).click();
    h.run();
}

pub fn sign_in(h: &mut Harness<'_, DeskApp>, name: &str) {
    choose_staff(h, name);
    h.run();
    for d in ["1", "2", "3", "4"] {
        button(h, d);
    }
    button(h, "登录");
    assert!(h.state().staff().is_some(), "signed in");
}

fn arrivals(store: &Store) -> Vec<Arrival> {
    store.arrivals_on(store.today()).unwrap()
}

#[test]
fn register_with_a_correction_then_work_the_board() {
    let f = fixture(true);
    let mut h = harness(&f.store);
    // A wrong PIN is refused.
    choose_staff(&mut h, "陈晓燕");
    for d in ["9", "9", "9", "9"] {
        button(&mut h, d);
    }
    button(&mut h, "登录");
    assert!(h.state().staff().is_none());
    assert!(h.query_by_label("密码错误，请重新输入").is_some());
    sign_in(&mut h, "陈晓燕");

    type_into(&mut h, Role::TextInput, "姓名", "王秀英");
    button(&mut h, "女");
    type_into(&mut h, Role::TextInput, "年龄", "67");
    type_into(&mut h, Role::TextInput, "电话", "1380013800"); // one digit short
    button(&mut h, "初诊");
    button(&mut h, "自行来院");
    type_into(&mut h, Role::MultilineTextInput, "主诉", "胸闷两天");
    // The complaint's keywords suggest cardiology.
    button(&mut h, "★ 心血管内科");
    button(&mut h, "登记");
    assert!(h.query_by_label_contains("电话号码格式不正确").is_some(), "inline phone error");
    assert!(h.query_by_label("请按提示修改标红的项目").is_some());
    assert!(arrivals(&f.store).is_empty(), "nothing written while invalid");
    assert_eq!(h.state().register_form().name, "王秀英", "the form keeps what was typed");

    // Correct the phone on the keypad.
    h.get_by_role_and_label(Role::TextInput, "电话").focus();
    h.run();
    button(&mut h, "清空");
    for d in "13800138000".chars() {
        button(&mut h, &d.to_string());
    }
    button(&mut h, "登记");
    assert!(h.query_by_label("已登记：王秀英").is_some());
    let a = arrivals(&f.store);
    assert_eq!(a.len(), 1);
    let a = &a[0];
    assert_eq!(
        (a.name.as_str(), a.sex, a.age, a.phone.as_deref()),
        ("王秀英", Sex::Female, Some(67), Some("13800138000"))
    );
    assert_eq!(
        (a.visit_type, a.channel, a.department.value.as_str()),
        (VisitType::First, ArrivalChannel::WalkIn, "cardio")
    );
    assert_eq!(a.handled_by, StaffRef("D001".into()));
    // A first visit with a phone also goes on the next day's call list, in the same transaction.
    let key = guidedesk::model::FollowupSource::OutpatientFirstVisit { arrival: a.id }.dedup_key();
    assert!(f.store.followup_by_source(&key).unwrap().is_some());
    let ops = f.store.outbox_after(0, 100).unwrap();
    assert_eq!(ops.iter().filter(|o| o.key.kind != RecordKind::Audit.code()).count(), 2, "the arrival and its task");
    assert_eq!(ops.last().map(|o| o.key.kind), Some(RecordKind::Audit.code()), "and its audit entry");

    // The board shows it; one tap moves it on, recording time and staff.
    button(&mut h, "就诊看板");
    assert!(h.query_by_label("王秀英 67岁").is_some());
    assert!(h.query_by_label("138****8000").is_some(), "phones are masked on the board");
    f.clock.advance(5 * 60_000);
    button(&mut h, "王秀英 → 已挂号");
    f.clock.advance(20 * 60_000);
    button(&mut h, "王秀英 → 就诊中");
    let a = f.store.get::<Arrival>(a.id).unwrap().unwrap();
    assert_eq!(a.step(), VisitStep::WithDoctor);
    assert_eq!(a.steps.len(), 3);
    assert_eq!(a.steps[1].at, Moment(T0 + 5 * 60_000));
    assert_eq!(a.steps[2].by, StaffRef("D001".into()));

    // Over the step's limit (30 min with the doctor) the board flags it.
    f.clock.advance(45 * 60_000);
    h.run();
    assert!(h.query_by_label_contains("超时").is_some(), "over-time alert");

    // Cancel (退号) needs a reason, and keeps it.
    button(&mut h, "更多 王秀英");
    button(&mut h, "退号");
    assert!(h.get_by_role_and_label(Role::Button, "确认退号").accesskit_node().is_disabled(), "no reason yet");
    button(&mut h, "患者改日再来");
    button(&mut h, "确认退号");
    let a = f.store.get::<Arrival>(a.id).unwrap().unwrap();
    assert_eq!(a.step(), VisitStep::Cancelled);
    assert_eq!(a.steps.last().unwrap().reason.as_deref(), Some("患者改日再来"));
    let ops = f.store.outbox_after(0, 100).unwrap();
    let (audit, other): (Vec<_>, Vec<_>) = ops.iter().partition(|o| o.key.kind == RecordKind::Audit.code());
    assert_eq!(other.len(), 5, "the arrival and its task, then three step changes");
    assert_eq!(audit.len(), 6, "a refused and an accepted sign-in, then one entry per change");
}

#[test]
fn board_alerts_when_the_registration_queue_is_long() {
    let f = fixture(true);
    for i in 0..9 {
        f.store
            .write(|ctx| {
                let form = ArrivalForm {
                    name: format!("排队{i}"),
                    sex: Some(Sex::Male),
                    visit_type: Some(VisitType::First),
                    channel: Some(ArrivalChannel::WalkIn),
                    complaint: "头痛".into(),
                    department: "neuro".into(),
                    ..ArrivalForm::default()
                };
                let d = form.validate(ctx.reference(), ctx.today())?;
                let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
                ctx.put(&d.into_record(id, at, StaffRef("D001".into()), stamp))
            })
            .unwrap();
    }
    let mut h = harness(&f.store);
    sign_in(&mut h, "陈晓燕");
    button(&mut h, "就诊看板");
    assert!(h.query_by_label_contains("挂号处排队 9 人").is_some());
    button(&mut h, "排队0 → 已挂号");
    assert!(h.query_by_label_contains("挂号处排队").is_none(), "8 waiting is within the limit");
}

#[test]
fn consultation_logged_linked_and_found_by_search() {
    let f = fixture(true);
    let arrival = f
        .store
        .write(|ctx| {
            let form = ArrivalForm {
                name: "李强".into(),
                sex: Some(Sex::Male),
                phone: "13912345678".into(),
                visit_type: Some(VisitType::First),
                channel: Some(ArrivalChannel::PhoneBooking),
                complaint: "胸痛".into(),
                department: "cardio".into(),
                ..ArrivalForm::default()
            };
            let d = form.validate(ctx.reference(), ctx.today())?;
            let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
            let a = d.into_record(id, at, StaffRef("D001".into()), stamp);
            ctx.put(&a)?;
            Ok(a)
        })
        .unwrap();
    f.clock.advance(-3_600_000); // the enquiry came an hour before the patient

    let mut h = harness(&f.store);
    sign_in(&mut h, "陈晓燕");
    button(&mut h, "咨询登记");
    button(&mut h, "电话");
    type_into(&mut h, Role::TextInput, "姓名", "李强");
    type_into(&mut h, Role::TextInput, "电话", "13912345678");
    type_into(&mut h, Role::MultilineTextInput, "咨询内容", "请问心内科周几有专家门诊？");
    button(&mut h, "今天");
    button(&mut h, "保存咨询");
    assert!(h.query_by_label("咨询已保存").is_some());
    let ids = f.store.ids_between(RecordKind::Consultation, Moment(0), Moment(i64::MAX)).unwrap();
    assert_eq!(ids.len(), 1);
    let c: Consultation = f.store.get(ids[0]).unwrap().unwrap();
    assert_eq!((c.name.as_deref(), c.phone.as_deref()), (Some("李强"), Some("13912345678")));
    assert!(c.appointment.value.is_some());

    f.clock.advance(3_600_000);
    button(&mut h, "关联来院 李强");
    button(&mut h, "关联 李强");
    let c: Consultation = f.store.get(ids[0]).unwrap().unwrap();
    assert_eq!(c.arrival.value, Some(arrival.id));
    assert!(h.query_by_label("已来院").is_some());

    button(&mut h, "记录查询");
    type_into(&mut h, Role::TextInput, "电话或姓名", "李");
    h.get_by_role_and_label(Role::Button, "查询").click();
    for _ in 0..200 {
        h.step();
        if h.query_by_label("共 2 条").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(h.query_by_label("共 2 条").is_some(), "the arrival and the enquiry are found");
}

#[test]
fn first_run_creates_the_administrator_and_idle_screens_lock() {
    let f = fixture(false);
    let mut h = harness_with(&f.store, 5);
    assert!(h.query_by_label("首次使用：创建管理员").is_some());
    type_into(&mut h, Role::TextInput, "工号", "A001");
    type_into(&mut h, Role::TextInput, "姓名", "张管理");
    type_into(&mut h, Role::PasswordInput, "密码（4–8位数字）", "2468");
    type_into(&mut h, Role::PasswordInput, "再次输入密码", "2469");
    button(&mut h, "创建并登录");
    assert!(h.state().staff().is_none());
    assert!(h.query_by_label_contains("两").is_some() || h.query_by_label_contains("differ").is_some());
    h.get_by_role_and_label(Role::PasswordInput, "再次输入密码").focus();
    h.run();
    h.key_press(egui::Key::Backspace);
    h.run();
    h.get_by_role_and_label(Role::PasswordInput, "再次输入密码").type_text("8");
    h.run();
    button(&mut h, "创建并登录");
    assert_eq!(h.state().staff().map(|s| s.id.as_str()), Some("A001"));
    let local = f.store.local_staff().unwrap();
    assert_eq!(local.len(), 1);
    assert!(guidedesk::staff::verify_pin(&local[0].pin_hash, "2468"));

    // Idle past the configured time: the screen locks; the same PIN unlocks.
    f.clock.advance(6 * 60_000);
    h.run();
    assert!(h.state().is_locked());
    assert!(h.query_by_label("屏幕已锁定，请重新输入密码").is_some());
    for d in ["2", "4", "6", "8"] {
        button(&mut h, d);
    }
    button(&mut h, "登录");
    assert!(!h.state().is_locked());

    // The language switches at runtime.
    button(&mut h, "English");
    assert!(h.query_by_label("Register an arrival").is_some());
    button(&mut h, "中文");
    assert!(h.query_by_label_contains("待同步").is_some());
}

#[test]
fn the_status_bar_shows_sync_in_plain_words() {
    let f = fixture(true);
    let mut h = harness(&f.store);
    let dir = f.store.path().parent().unwrap().to_path_buf();
    let worker = guidedesk::kiosk_sync::SyncWorker::spawn(
        Arc::clone(&f.store),
        dir,
        &guidedesk::config::SyncConfig::default(),
        Box::new(|| {}),
    )
    .unwrap();
    h.state_mut().attach_sync(worker);
    h.run();
    assert!(h.query_by_label("未登记总部").is_some());
}
