//! Bookings on one desk through its screens: a no-show becomes a call task once its session is over, a doctor
//! off on a public holiday cannot be chosen, registration offers only the doctors on duty in the session, and the
//! directory finds departments by symptom and prints the patient's guide slip.

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use guidedesk::model::reference::Session;
use guidedesk::model::{
    Appointment, AppointmentForm, AppointmentStatus, AppointmentType, ArrivalChannel, ArrivalForm, BookingChannel,
    FollowupSource, Moment, Problem, RecordKind, Sex, StaffRef, VisitType,
};
use guidedesk::store::StoreError;

use crate::ui::{T0, button, fixture, harness_with, sign_in};

const MINUTE: i64 = 60_000;

fn booking_form(day: chrono::NaiveDate, session: Session, department: &str, doctor: &str) -> AppointmentForm {
    AppointmentForm {
        kind: Some(if doctor.is_empty() { AppointmentType::Specialist } else { AppointmentType::Expert }),
        channel: Some(BookingChannel::Phone),
        name: "周建国".into(),
        phone: "13912345678".into(),
        department: department.into(),
        doctor: doctor.into(),
        ..AppointmentForm::for_day(day, session)
    }
}

#[test]
fn a_no_show_becomes_a_call_task_after_its_session_and_shows_on_the_worklist() {
    let f = fixture(true);
    let today = f.store.today();
    let mut h = harness_with(&f.store, 24 * 60);
    sign_in(&mut h, "刘敏");
    button(&mut h, "预约");
    // An afternoon booking for a department, taken on the booking screen.
    *h.state_mut().appointments_mut().form_mut() = booking_form(today, Session::Afternoon, "internal", "");
    button(&mut h, "保存预约");
    let booked = f.store.appointments_between(today, today).unwrap();
    assert_eq!(booked.len(), 1, "{:?}", h.state_mut().appointments_mut().listed());
    assert!(h.query_by_label("周建国").is_some(), "the day's list shows the booking");
    // Before the afternoon session has ended (17:30 plus 30 minutes' grace) nothing happens.
    f.clock.set(Moment::start_of_day(today, f.store.utc_offset()).plus_millis(17 * 60 * MINUTE + 59 * MINUTE));
    h.run_steps(3);
    assert_eq!(f.store.appointments_between(today, today).unwrap()[0].status(), AppointmentStatus::Booked);
    // Then the booking is a no-show, and its call is on the worklist, once.
    f.clock.advance(2 * MINUTE);
    h.run_steps(3);
    let a: Appointment = f.store.appointments_between(today, today).unwrap().remove(0);
    assert_eq!(a.status(), AppointmentStatus::NoShow);
    assert_eq!(a.events[0].by, StaffRef("system".into()));
    let tasks: Vec<_> = f
        .store
        .open_followups_due(None)
        .unwrap()
        .into_iter()
        .filter(|t| matches!(t.source, FollowupSource::NoShow { appointment, .. } if appointment == a.id))
        .collect();
    assert_eq!(tasks.len(), 1, "one call task for the no-show");
    assert_eq!((tasks[0].phone.as_str(), tasks[0].due_from), ("13912345678", today));
    f.clock.advance(20_000);
    h.run_steps(3);
    assert_eq!(f.store.count(RecordKind::FollowupTask).unwrap(), 1, "a second sweep makes nothing new");
    button(&mut h, "回访");
    assert!(h.query_all_by_label_contains("周建国").next().is_some(), "the no-show is on the call worklist");
    // The patient turns up late the same evening: still checked in, and the call is cancelled.
    let arrival = f
        .store
        .write(|ctx| {
            guidedesk::command::appointments::act(
                ctx,
                a.id,
                &guidedesk::command::AppointmentAction::CheckIn,
                &StaffRef("K001".into()),
            )
        })
        .unwrap();
    assert!(f.store.get::<guidedesk::model::Arrival>(arrival).unwrap().is_some());
    let open = f.store.open_followups_due(None).unwrap();
    assert!(
        !open.iter().any(|t| matches!(t.source, FollowupSource::NoShow { .. })),
        "the no-show call is cancelled: {open:?}"
    );
}

#[test]
fn a_doctor_off_on_a_public_holiday_cannot_be_chosen() {
    let f = fixture(true);
    // Monday 2026-09-28 10:00: National Day (2026-10-01, a Thursday) is ahead.
    f.clock.set(Moment(T0 - 56 * 24 * 60 * MINUTE));
    let holiday = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    let refs = f.store.reference();
    // cardio-02 holds Thursday all day; the holiday closes it.
    let doc = refs.doctor("cardio-02").unwrap().clone();
    assert!(refs.on_duty_in(&doc.id, holiday + chrono::Days::new(7), Session::Morning), "a normal Thursday");
    assert!(!refs.on_duty_in(&doc.id, holiday, Session::Morning));
    let mut h = harness_with(&f.store, 24 * 60);
    sign_in(&mut h, "刘敏");
    button(&mut h, "预约");
    *h.state_mut().appointments_mut().form_mut() = booking_form(holiday, Session::Morning, "cardio", "");
    h.run();
    assert!(h.query_by_label("国庆节：门诊停诊").is_some(), "the form says the clinics are closed");
    // The doctor list offers nobody that morning.
    h.get_by_role_and_label(Role::ComboBox, "医生").click();
    h.run();
    assert!(h.query_by_label("不指定医生").is_some(), "the list is open");
    assert!(h.query_by_label_contains(&doc.name).is_none(), "{} is not offered on the holiday", doc.name);
    h.key_press(egui::Key::Escape);
    h.run();
    // On an ordinary Thursday the same doctor is offered, with the places left.
    *h.state_mut().appointments_mut().form_mut() =
        booking_form(holiday + chrono::Days::new(7), Session::Morning, "cardio", "");
    h.run();
    h.get_by_role_and_label(Role::ComboBox, "医生").click();
    h.run();
    assert!(
        h.query_by_label_contains(&format!("{} ", doc.name)).is_some(),
        "{} is offered on a normal Thursday",
        doc.name
    );
    h.key_press(egui::Key::Escape);
    h.run();
    // Asked for anyway (another screen, a script): refused with the reason, nothing written.
    let stale = booking_form(holiday, Session::Morning, "cardio", &doc.id);
    let o = h.state_mut().apply(guidedesk::command::Command::Book(Box::new(stale)), &egui::Context::default());
    assert!(
        matches!(&o, guidedesk::command::Outcome::Invalid(v) if v.get("doctor") == Some(&Problem::NotOnDuty)),
        "{o:?}"
    );
    assert_eq!(f.store.count(RecordKind::Appointment).unwrap(), 0);
    // The week after, the same booking is taken.
    let next = holiday + chrono::Days::new(7);
    *h.state_mut().appointments_mut().form_mut() = booking_form(next, Session::Morning, "cardio", &doc.id);
    button(&mut h, "保存预约");
    assert_eq!(f.store.count(RecordKind::Appointment).unwrap(), 1);
}

#[test]
fn registration_takes_only_doctors_on_duty_in_the_session() {
    let f = fixture(true);
    // Monday 14:00: cardio-01 holds Monday morning only.
    f.clock.set(Moment(T0 + 4 * 60 * MINUTE));
    let form = ArrivalForm {
        name: "李强".into(),
        sex: Some(Sex::Male),
        visit_type: Some(VisitType::First),
        channel: Some(ArrivalChannel::WalkIn),
        complaint: "胸闷".into(),
        department: "cardio".into(),
        doctor: "cardio-01".into(),
        designated: true,
        ..ArrivalForm::default()
    };
    let by = StaffRef("D001".into());
    let e = f.store.write(|ctx| guidedesk::command::desk::register(ctx, &form, &by)).unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.get("doctor") == Some(&Problem::NotOnDuty)), "{e}");
    // cardio-03 holds Monday all day.
    let form = ArrivalForm { doctor: "cardio-03".into(), ..form };
    f.store.write(|ctx| guidedesk::command::desk::register(ctx, &form, &by)).unwrap();
}

#[test]
fn a_full_session_takes_an_overbooking_only_with_a_reason() {
    let f = fixture(false);
    let today = f.store.today();
    // cardio-01 holds Monday morning with 20 places.
    let cap = f.store.reference().capacity("cardio-01", today, Session::Morning);
    assert_eq!(cap, 20);
    let by = StaffRef("K001".into());
    for i in 0..cap {
        let form = AppointmentForm {
            phone: format!("139000000{i:02}"),
            ..booking_form(today, Session::Morning, "cardio", "cardio-01")
        };
        f.store.write(|ctx| guidedesk::command::appointments::book(ctx, &form, &by)).unwrap();
    }
    let form =
        AppointmentForm { phone: "13800000999".into(), ..booking_form(today, Session::Morning, "cardio", "cardio-01") };
    let e = f.store.write(|ctx| guidedesk::command::appointments::book(ctx, &form, &by)).unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.get("overbook_reason").is_some()), "{e}");
    let form = AppointmentForm { overbook_reason: "主任同意加号".into(), ..form };
    let id = f.store.write(|ctx| guidedesk::command::appointments::book(ctx, &form, &by)).unwrap();
    let a: Appointment = f.store.get(id).unwrap().unwrap();
    assert_eq!(a.overbooked.as_deref(), Some("主任同意加号"));
    // The same patient twice in one session is refused.
    let e = f.store.write(|ctx| guidedesk::command::appointments::book(ctx, &form, &by)).unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.get("phone").is_some()), "{e}");
}

#[test]
fn a_reschedule_closes_the_booking_and_makes_a_new_one() {
    let f = fixture(false);
    let today = f.store.today();
    let by = StaffRef("K001".into());
    let form = booking_form(today, Session::Afternoon, "internal", "");
    let old = f.store.write(|ctx| guidedesk::command::appointments::book(ctx, &form, &by)).unwrap();
    let to = today + chrono::Days::new(2);
    let action = guidedesk::command::AppointmentAction::Reschedule {
        form: Box::new(AppointmentForm {
            day: to.to_string(),
            session: Some(Session::Morning),
            ..AppointmentForm::default()
        }),
        reason: String::new(),
    };
    let e = f.store.write(|ctx| guidedesk::command::appointments::act(ctx, old, &action, &by)).unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.get("reason") == Some(&Problem::Required)), "{e}");
    let action = match action {
        guidedesk::command::AppointmentAction::Reschedule { form, .. } => {
            guidedesk::command::AppointmentAction::Reschedule { form, reason: "病人出差".into() }
        }
        other => other,
    };
    let new = f.store.write(|ctx| guidedesk::command::appointments::act(ctx, old, &action, &by)).unwrap();
    let (o, n): (Appointment, Appointment) = (f.store.get(old).unwrap().unwrap(), f.store.get(new).unwrap().unwrap());
    assert_eq!(o.status(), AppointmentStatus::Rescheduled);
    assert_eq!(o.moved_to(), Some(new));
    assert_eq!(
        (n.rescheduled_from, n.day, n.session, n.patient_name.as_str()),
        (Some(old), to, Session::Morning, "周建国")
    );
    assert!(f.store.check().unwrap().is_empty());
}

#[test]
fn the_directory_finds_a_department_by_symptom_and_prints_a_guide_slip() {
    let f = fixture(true);
    let mut h = harness_with(&f.store, 24 * 60);
    sign_in(&mut h, "陈晓燕");
    button(&mut h, "科室导航");
    h.state_mut().directory_mut().search_mut().push_str("胸闷");
    h.run();
    assert!(h.query_by_label("心血管内科").is_some(), "a symptom finds its department");
    assert!(h.query_by_label_contains("门诊楼 3F 301–306").is_some(), "with where it is");
    assert!(h.query_by_label("眼科").is_none(), "and not the others");
    h.get_all_by_role_and_label(Role::Button, "打印导诊单").next().unwrap().click();
    h.run();
    let slip = f.dir.path().join("slips").join("guide-cardio.html");
    let html = std::fs::read_to_string(&slip).unwrap();
    assert!(html.contains("心血管内科") && html.contains("0571-87001002"), "{html}");
    let audit = f.store.chain::<guidedesk::model::AuditEntry>().unwrap();
    assert!(audit.iter().any(|e| e.detail == "directory slip"), "the print is on the audit log");
}

#[test]
fn a_booking_from_an_enquiry_converts_it_when_the_patient_is_checked_in() {
    let f = fixture(false);
    let today = f.store.today();
    let by = StaffRef("K001".into());
    let enquiry = guidedesk::model::ConsultationForm {
        channel: Some(guidedesk::model::ConsultationChannel::Phone),
        name: "周建国".into(),
        phone: "13912345678".into(),
        question: "想约呼吸科".into(),
        concerns: vec![guidedesk::model::Concern::Appointment],
        referred_department: "resp".into(),
        ..guidedesk::model::ConsultationForm::default()
    };
    let c = f.store.write(|ctx| guidedesk::command::desk::consult(ctx, &enquiry, &by)).unwrap();
    let form = AppointmentForm { enquiry: Some(c), ..booking_form(today, Session::Morning, "resp", "") };
    let id = f.store.write(|ctx| guidedesk::command::appointments::book(ctx, &form, &by)).unwrap();
    let consultation: guidedesk::model::Consultation = f.store.get(c).unwrap().unwrap();
    assert_eq!(consultation.appointment.value, Some(today), "the enquiry records the day booked");
    let arrival = f
        .store
        .write(|ctx| {
            guidedesk::command::appointments::act(ctx, id, &guidedesk::command::AppointmentAction::CheckIn, &by)
        })
        .unwrap();
    let consultation: guidedesk::model::Consultation = f.store.get(c).unwrap().unwrap();
    assert_eq!(consultation.arrival.value, Some(arrival), "the enquiry became this arrival");
    // A booking is checked in on its day only.
    let tomorrow = AppointmentForm {
        phone: "13912345679".into(),
        ..booking_form(today + chrono::Days::new(1), Session::Morning, "resp", "")
    };
    let later = f.store.write(|ctx| guidedesk::command::appointments::book(ctx, &tomorrow, &by)).unwrap();
    let e = f
        .store
        .write(|ctx| {
            guidedesk::command::appointments::act(ctx, later, &guidedesk::command::AppointmentAction::CheckIn, &by)
        })
        .unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.get("day").is_some()), "{e}");
}
