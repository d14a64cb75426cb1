//! A booking taken at one desk of the site is checked in at another: the customer-service office books by phone,
//! the lobby desk sees the patient among today's expected, checks them in with one tap when the phone is typed, the
//! board shows the booked doctor as the patient's choice (指定), and the office sees the booking as came.

use super::*;
use guidedesk::model::reference::Session;
use guidedesk::model::{Appointment, AppointmentForm, AppointmentStatus, AppointmentType, BookingChannel};

#[test]
fn a_phone_booking_at_one_desk_is_checked_in_at_another_and_shows_on_the_board_as_chosen() {
    use crate::ui::{button, harness, sign_in, type_into};
    use egui_kittest::kittest::Queryable as _;

    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(&Backend::Embedded, &dir.path().join("hq"), 100);
    let desks = OfficeAndLobby::enrol(&hq);
    let (office, lobby) = (&desks.office, &desks.lobby);
    let today = office.store.today();
    // Monday morning: cardio-01 is on duty.
    let doctor = office.store.reference().doctor("cardio-01").unwrap().clone();
    let mut h = harness(&office.store);
    sign_in(&mut h, "刘敏");
    button(&mut h, "预约");
    *h.state_mut().appointments_mut().form_mut() = AppointmentForm {
        kind: Some(AppointmentType::Expert),
        channel: Some(BookingChannel::Phone),
        name: "周建国".into(),
        phone: "13912345678".into(),
        department: "cardio".into(),
        doctor: doctor.id.clone(),
        ..AppointmentForm::for_day(today, Session::Morning)
    };
    button(&mut h, "保存预约");
    let id = office.store.appointments_between(today, today).unwrap()[0].id;
    desks.sync();

    let mut l = harness(&lobby.store);
    sign_in(&mut l, "陈晓燕");
    assert!(l.query_by_label("今日预约（待签到）").is_some());
    assert!(l.query_by_label_contains("周建国").is_some(), "the booking made at the office is expected here");
    type_into(&mut l, egui::accesskit::Role::TextInput, "电话", "13912345678");
    assert!(l.query_by_label_contains("此电话今日有预约").is_some(), "the typed phone finds the booking");
    button(&mut l, "按预约签到");
    let arrivals = lobby.store.arrivals_on(today).unwrap();
    assert_eq!(arrivals.len(), 1);
    let choice = arrivals[0].doctor.value.clone().unwrap();
    assert_eq!((choice.doctor.as_str(), choice.designated), (doctor.id.as_str(), true));
    assert_eq!(arrivals[0].channel, guidedesk::model::ArrivalChannel::PhoneBooking);
    button(&mut l, "就诊看板");
    assert!(
        l.query_by_label_contains(&format!("{}（指定）", doctor.name)).is_some(),
        "the board marks the chosen doctor"
    );

    desks.sync();
    let at_office: Appointment = office.store.get(id).unwrap().unwrap();
    assert_eq!(at_office.status(), AppointmentStatus::CheckedIn);
    assert_eq!(at_office.arrival(), Some(arrivals[0].id));
    // HQ holds the booking as checked in.
    let stored = hq.store().record(guidedesk::model::RecordKind::Appointment, id.as_u128()).unwrap().unwrap();
    assert!(
        matches!(stored.record, guidedesk::model::AnyRecord::Appointment(a) if a.status() == AppointmentStatus::CheckedIn)
    );
}
