//! Bookings (预约): take a booking by phone, WeChat, the web or at the desk — the doctor list holds only the doctors
//! on duty in the chosen session (holidays close the clinics) with the places left — and work a day's list: check
//! a patient in (an arrival on the board, the booked doctor chosen 指定), cancel with a reason, mark a no-show,
//! reschedule (a new booking replaces the old one), print the patient's guide slip.

use chrono::{Days, NaiveDate};
use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome};
use super::register::dept_name;
use super::{theme, widgets};
use crate::command::AppointmentAction;
use crate::model::reference::Session;
use crate::model::{
    Appointment, AppointmentForm, AppointmentStatus, AppointmentType, BookingChannel, Concern, Consultation,
    ConsultationChannel, RecordId, RecordKind, ReferenceData, ValidationErrors,
};

/// A booking being moved: the new day and session come from the form.
#[derive(Debug, Clone)]
struct Rescheduling {
    id: RecordId,
    who: String,
    day: NaiveDate,
    reason: String,
}

/// Bookings screen state.
#[derive(Debug, Default)]
pub struct AppointmentsScreen {
    form: AppointmentForm,
    errors: ValidationErrors,
    message: Option<(bool, String)>,
    /// The day listed (`None`: today).
    day: Option<NaiveDate>,
    list: Vec<Appointment>,
    loaded: Option<(u64, NaiveDate)>,
    /// The bookings of the form's day, for the places left.
    form_day: Vec<Appointment>,
    form_loaded: Option<(u64, NaiveDate)>,
    rescheduling: Option<Rescheduling>,
    cancelling: Option<(RecordId, String)>,
    /// Recent enquiries about an appointment not yet come (a booking can start from one).
    enquiries: Vec<Consultation>,
    enquiries_loaded: Option<u64>,
}

impl AppointmentsScreen {
    /// The booking form as typed (tests fill it as a guide would).
    pub fn form_mut(&mut self) -> &mut AppointmentForm {
        &mut self.form
    }

    /// The bookings listed now.
    pub fn listed(&self) -> &[Appointment] {
        &self.list
    }

    fn reload(&mut self, cx: &ScreenCtx<'_>) {
        if self.enquiries_loaded != Some(cx.version) {
            self.enquiries = cx.q.recent_consultations(3).unwrap_or_default();
            self.enquiries.retain(|c| {
                c.concerns.contains(&Concern::Appointment) && c.phone.is_some() && c.arrival.value.is_none()
            });
            self.enquiries.truncate(30);
            self.enquiries_loaded = Some(cx.version);
        }
        let day = self.day.unwrap_or(cx.today);
        if self.loaded != Some((cx.version, day)) {
            self.list = cx.q.appointments_between(day, day).unwrap_or_default();
            self.loaded = Some((cx.version, day));
        }
        if let Some(fd) = self.form.parsed_day()
            && self.form_loaded != Some((cx.version, fd))
        {
            self.form_day = cx.q.appointments_between(fd, fd).unwrap_or_default();
            self.form_loaded = Some((cx.version, fd));
        }
    }

    /// Places the doctor's session holds now (booked or checked in) on the form's day.
    fn taken(&self, doctor: &str, session: Session) -> u32 {
        let n = self
            .form_day
            .iter()
            .filter(|a| a.session == session && a.holds_place() && a.doctor.as_deref() == Some(doctor))
            .filter(|a| self.rescheduling.as_ref().is_none_or(|r| r.id != a.id))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

impl DeskScreen for AppointmentsScreen {
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        if self.form.day.is_empty() {
            self.form.day = cx.today.to_string();
        }
        self.reload(cx);
        ui.heading(cx.tr.t("appt.title"));
        let total = ui.available_width();
        ui.horizontal_top(|ui| {
            widgets::column(ui, total * 0.5, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("appt_form")
                    .scroll_source(egui::scroll_area::ScrollSource::ALL)
                    .show(ui, |ui| self.form_ui(ui, cx));
            });
            widgets::column(ui, ui.available_width(), |ui| self.list_ui(ui, cx));
        });
    }

    fn on_outcome(&mut self, reply: &Reply<'_>) {
        let tr = reply.tr;
        match (reply.sent, reply.outcome) {
            (Command::Book(f), Outcome::Done(_)) => {
                let msg = tr.f("appt.done", &[("name", &f.name.trim()), ("day", &f.day.trim())]);
                self.clear_form();
                self.message = Some((true, msg));
            }
            (Command::Appointment { action: AppointmentAction::Reschedule { form, .. }, .. }, Outcome::Done(_)) => {
                let msg = tr.f("appt.rescheduled_done", &[("day", &form.day.trim())]);
                self.clear_form();
                self.message = Some((true, msg));
            }
            (Command::Appointment { id, action }, Outcome::Done(_)) => {
                let who = self.list.iter().find(|a| a.id == *id).map(|a| a.patient_name.clone()).unwrap_or_default();
                self.message = Some((
                    true,
                    match action {
                        AppointmentAction::CheckIn => tr.f("appt.checked_in_done", &[("name", &who)]),
                        AppointmentAction::Cancel { .. } => tr.t("appt.cancelled_done").to_string(),
                        _ => tr.t("cases.saved").to_string(),
                    },
                ));
                self.cancelling = None;
            }
            (Command::DirectorySlip { .. }, Outcome::Done(_)) => {
                self.message = reply.note.clone().map(|n| (true, n));
            }
            (_, Outcome::Invalid(e)) => {
                self.errors = e.clone();
                self.message = Some((false, tr.t("appt.fix_errors").to_string()));
            }
            (_, Outcome::Failed(m)) => self.message = Some((false, tr.f("app.write_failed", &[("error", m)]))),
            _ => {}
        }
    }
}

impl AppointmentsScreen {
    fn clear_form(&mut self) {
        self.form = AppointmentForm::default();
        self.errors = ValidationErrors::default();
        self.rescheduling = None;
        self.form_loaded = None;
    }

    fn form_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (tr, refs) = (cx.tr, &cx.refs);
        let errs = self.errors.clone();
        match &self.rescheduling {
            Some(r) => {
                ui.label(
                    RichText::new(tr.f("appt.rescheduling", &[("name", &r.who), ("day", &r.day)]))
                        .strong()
                        .color(theme::WARN),
                );
            }
            None => {
                ui.label(RichText::new(tr.t("appt.new")).strong());
            }
        }
        if self.rescheduling.is_none() && !self.enquiries.is_empty() {
            self.enquiry_ui(ui, cx);
        }
        let f = &mut self.form;
        if self.rescheduling.is_none() {
            let kinds: Vec<(AppointmentType, &str)> =
                AppointmentType::ALL.iter().map(|k| (*k, tr.k("appt_kind", k.key()))).collect();
            widgets::label_row(ui, tr.t("appt.kind"), |ui| {
                widgets::choice(ui, &mut f.kind, &kinds);
            });
            widgets::field_error(ui, tr, &errs, "kind");
            let channels: Vec<(BookingChannel, &str)> =
                BookingChannel::ALL.iter().map(|c| (*c, tr.k("appt_channel", c.key()))).collect();
            widgets::label_row(ui, tr.t("appt.channel"), |ui| {
                widgets::choice(ui, &mut f.channel, &channels);
            });
            widgets::field_error(ui, tr, &errs, "channel");
            widgets::text_row(ui, tr.t("appt.name"), &mut f.name, "");
            widgets::field_error(ui, tr, &errs, "name");
            widgets::text_row(ui, tr.t("appt.phone"), &mut f.phone, "");
            widgets::field_error(ui, tr, &errs, "phone");
            let current = refs
                .department(&f.department)
                .map_or_else(|| tr.t("register.choose").to_string(), |d| dept_name(tr, d));
            widgets::row(ui, tr.t("appt.department"), |ui| {
                egui::ComboBox::from_id_salt("appt_department")
                    .width(theme::INPUT_WIDTH - 60.0)
                    .selected_text(current)
                    .height(480.0)
                    .show_ui(ui, |ui| {
                        for d in &refs.departments {
                            if ui.selectable_value(&mut f.department, d.id.clone(), dept_name(tr, d)).clicked() {
                                f.doctor.clear();
                            }
                        }
                    })
                    .response
            });
            widgets::field_error(ui, tr, &errs, "department");
        }
        widgets::text_row(ui, tr.t("appt.day"), &mut f.day, tr.t("appt.day_hint"));
        ui.horizontal(|ui| {
            ui.add_space(theme::LABEL_WIDTH + 12.0);
            for (n, key) in [(0, "appt.today"), (1, "appt.tomorrow"), (2, "appt.day_after")] {
                let d = cx.today + Days::new(n);
                if widgets::toggle(ui, f.day.trim() == d.to_string(), tr.t(key)).clicked() {
                    f.day = d.to_string();
                }
            }
        });
        widgets::field_error(ui, tr, &errs, "day");
        if let Some(h) = f.parsed_day().and_then(|d| holiday_name(refs, d, tr)) {
            ui.label(RichText::new(tr.f("appt.holiday", &[("name", &h)])).color(theme::WARN));
        }
        let sessions: Vec<(Session, &str)> = Session::CLINIC
            .iter()
            .filter(|s| refs.appointment_policy.hours(**s).is_some())
            .map(|s| (*s, tr.k("session", s.key())))
            .collect();
        widgets::label_row(ui, tr.t("appt.session"), |ui| {
            if widgets::choice(ui, &mut f.session, &sessions) {
                f.doctor.clear();
            }
        });
        widgets::field_error(ui, tr, &errs, "session");
        self.doctor_ui(ui, cx);
        let f = &mut self.form;
        widgets::text_row(ui, tr.t("appt.slot"), &mut f.slot, tr.t("appt.slot_hint"));
        widgets::field_error(ui, tr, &errs, "slot");
        if self.rescheduling.is_none() {
            widgets::text_row(ui, tr.t("appt.reason"), &mut f.reason, "");
            widgets::field_error(ui, tr, &errs, "reason");
        }
        let full = match (f.parsed_day(), f.session, refs.doctor(&f.doctor)) {
            (Some(day), Some(s), Some(d)) => {
                let cap = refs.capacity(&d.id, day, s);
                cap > 0 && self.taken(&d.id, s) >= cap
            }
            _ => false,
        };
        let f = &mut self.form;
        if full || !f.overbook_reason.is_empty() || errs.get("overbook_reason").is_some() {
            if full {
                ui.label(RichText::new(tr.t("appt.full")).color(theme::WARN));
            }
            widgets::text_row(ui, tr.t("appt.overbook_reason"), &mut f.overbook_reason, "");
            widgets::field_error(ui, tr, &errs, "overbook_reason");
        }
        let mut cmd = None;
        if let Some(r) = self.rescheduling.as_mut() {
            widgets::text_row(ui, tr.t("appt.reschedule_reason"), &mut r.reason, "");
            widgets::field_error(ui, tr, &errs, "reason");
        }
        ui.horizontal(|ui| {
            ui.add_space(theme::LABEL_WIDTH + 12.0);
            let label = if self.rescheduling.is_some() { "appt.reschedule_submit" } else { "appt.submit" };
            let submit =
                egui::Button::new(RichText::new(tr.t(label)).strong()).fill(theme::ACCENT.linear_multiply(0.25));
            if ui.add_sized([180.0, theme::TOUCH], submit).clicked() {
                cmd = Some(match &self.rescheduling {
                    Some(r) => Command::Appointment {
                        id: r.id,
                        action: AppointmentAction::Reschedule {
                            form: Box::new(self.form.clone()),
                            reason: r.reason.clone(),
                        },
                    },
                    None => Command::Book(Box::new(self.form.clone())),
                });
            }
            let clear = if self.rescheduling.is_some() { "appt.cancel_edit" } else { "appt.clear" };
            if ui.add_sized([140.0, theme::TOUCH], egui::Button::new(tr.t(clear))).clicked() {
                self.clear_form();
                self.message = None;
            }
        });
        if let Some((ok, m)) = &self.message {
            ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
        }
        if let Some(c) = cmd {
            cx.send(c);
        }
    }

    /// A booking can start from a recent enquiry about an appointment: its name, phone, department, doctor, channel
    /// and day fill the form, and the booking records the enquiry (its conversion).
    fn enquiry_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (tr, refs) = (cx.tr, &cx.refs);
        let label = |c: &Consultation| {
            let dept = c.referred_department.as_deref().and_then(|d| refs.department(d)).map(|d| dept_name(tr, d));
            let phone = c.phone.as_deref().map(crate::model::validate::mask_phone).unwrap_or_default();
            format!(
                "{} {} {phone} {}",
                c.at.local(cx.offset).format("%m-%d %H:%M"),
                c.name.as_deref().unwrap_or(""),
                dept.unwrap_or_default()
            )
        };
        let shown = self
            .form
            .enquiry
            .and_then(|id| self.enquiries.iter().find(|c| c.id == id))
            .map_or_else(|| tr.t("appt.no_enquiry").to_string(), label);
        let mut picked = None;
        widgets::row(ui, tr.t("appt.from_enquiry"), |ui| {
            egui::ComboBox::from_id_salt("appt_enquiry")
                .width(theme::INPUT_WIDTH)
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    if ui.selectable_label(self.form.enquiry.is_none(), tr.t("appt.no_enquiry")).clicked() {
                        self.form.enquiry = None;
                    }
                    for c in &self.enquiries {
                        if ui.selectable_label(self.form.enquiry == Some(c.id), label(c)).clicked() {
                            picked = Some(c.clone());
                        }
                    }
                })
                .response
        });
        if let Some(c) = picked {
            let f = &mut self.form;
            f.enquiry = Some(c.id);
            f.name = c.name.clone().unwrap_or_default();
            f.phone = c.phone.clone().unwrap_or_default();
            f.department = c.referred_department.clone().unwrap_or_default();
            f.doctor = c.referred_doctor.clone().unwrap_or_default();
            f.channel = Some(match c.channel {
                ConsultationChannel::Phone => BookingChannel::Phone,
                ConsultationChannel::WeChat => BookingChannel::WeChat,
                ConsultationChannel::Qq | ConsultationChannel::Web => BookingChannel::Web,
                ConsultationChannel::InPerson => BookingChannel::OnSite,
            });
            if let Some(day) = c.appointment.value {
                f.day = day.to_string();
            }
            if f.doctor.is_empty() {
                f.kind = f.kind.or(Some(AppointmentType::Specialist));
            } else {
                f.kind = Some(AppointmentType::Expert);
            }
        }
    }

    /// The doctor: only the department's doctors on duty in the chosen session of the chosen day, each with the
    /// places left.
    fn doctor_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (tr, refs) = (cx.tr, &cx.refs);
        let (day, session) = (self.form.parsed_day(), self.form.session);
        let dept = Some(self.form.department.as_str()).filter(|d| !d.is_empty());
        let on_duty: Vec<(String, String)> = match (day, session) {
            (Some(day), Some(s)) => refs
                .doctors_on_duty_in(day, Some(s), dept)
                .into_iter()
                .map(|d| {
                    let cap = refs.capacity(&d.id, day, s);
                    let left = cap.saturating_sub(self.taken(&d.id, s));
                    let places = tr.f("appt.places", &[("left", &left), ("cap", &cap)]);
                    (d.id.clone(), format!("{} {} · {} · {places}", d.name, d.title, d.specialty))
                })
                .collect(),
            _ => Vec::new(),
        };
        let f = &mut self.form;
        if !f.doctor.is_empty() && !on_duty.iter().any(|(id, _)| *id == f.doctor) && self.rescheduling.is_none() {
            // The day or session changed under a chosen doctor who is not on duty then.
            f.doctor.clear();
        }
        let shown = refs.doctor(&f.doctor).map_or_else(|| tr.t("appt.no_doctor").to_string(), |d| d.name.clone());
        widgets::row(ui, tr.t("appt.doctor"), |ui| {
            egui::ComboBox::from_id_salt("appt_doctor")
                .width(theme::INPUT_WIDTH - 60.0)
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut f.doctor, String::new(), tr.t("appt.no_doctor"));
                    for (id, text) in &on_duty {
                        ui.selectable_value(&mut f.doctor, id.clone(), text);
                    }
                })
                .response
        });
        widgets::field_error(ui, tr, &self.errors, "doctor");
    }

    fn list_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let tr = cx.tr;
        let day = self.day.unwrap_or(cx.today);
        ui.horizontal(|ui| {
            if ui.add_sized([48.0, theme::TOUCH], egui::Button::new("◀")).on_hover_text(tr.t("appt.prev_day")).clicked()
            {
                self.day = Some(day - Days::new(1));
            }
            ui.label(RichText::new(tr.f("appt.list_title", &[("day", &day)])).strong());
            if ui.add_sized([48.0, theme::TOUCH], egui::Button::new("▶")).on_hover_text(tr.t("appt.next_day")).clicked()
            {
                self.day = Some(day + Days::new(1));
            }
            if day != cx.today && ui.button(tr.t("appt.today")).clicked() {
                self.day = None;
            }
        });
        let count = |s: AppointmentStatus| self.list.iter().filter(|a| a.status() == s).count();
        ui.label(
            RichText::new(tr.f(
                "appt.counts",
                &[
                    ("booked", &count(AppointmentStatus::Booked)),
                    ("came", &count(AppointmentStatus::CheckedIn)),
                    ("no_show", &count(AppointmentStatus::NoShow)),
                    ("cancelled", &count(AppointmentStatus::Cancelled)),
                ],
            ))
            .color(theme::MUTED),
        );
        if self.list.is_empty() {
            ui.label(RichText::new(tr.t("appt.none")).color(theme::MUTED));
        }
        let mut action: Option<Command> = None;
        let mut reschedule: Option<Appointment> = None;
        egui::ScrollArea::vertical().id_salt("appt_list").show(ui, |ui| {
            let mut last_session = None;
            for a in &self.list {
                if last_session != Some(a.session) {
                    ui.separator();
                    ui.label(RichText::new(tr.k("session", a.session.key())).strong());
                    last_session = Some(a.session);
                }
                booking_row(ui, cx, a, day == cx.today, &mut action, &mut reschedule, &mut self.cancelling);
            }
        });
        if let Some(a) = reschedule {
            self.form = AppointmentForm {
                kind: Some(a.kind),
                channel: Some(a.channel),
                name: a.patient_name.clone(),
                phone: a.phone.clone(),
                department: a.department.clone(),
                doctor: a.doctor.clone().unwrap_or_default(),
                ..AppointmentForm::for_day(a.day, a.session)
            };
            self.errors = ValidationErrors::default();
            self.rescheduling = Some(Rescheduling { id: a.id, who: a.patient_name, day: a.day, reason: String::new() });
        }
        if let Some(c) = action {
            cx.send(c);
        }
    }
}

/// One booking: when, who, where, status; the actions its status allows.
fn booking_row(
    ui: &mut Ui,
    cx: &ScreenCtx<'_>,
    a: &Appointment,
    today: bool,
    action: &mut Option<Command>,
    reschedule: &mut Option<Appointment>,
    cancelling: &mut Option<(RecordId, String)>,
) {
    let (tr, refs) = (cx.tr, &cx.refs);
    let status = a.status();
    ui.horizontal_wrapped(|ui| {
        let colour = match status {
            AppointmentStatus::Booked => theme::ACCENT,
            AppointmentStatus::CheckedIn => theme::OK,
            AppointmentStatus::NoShow => theme::ALERT,
            AppointmentStatus::Cancelled | AppointmentStatus::Rescheduled => theme::MUTED,
        };
        ui.label(RichText::new(tr.k("appt_status", status.key())).color(colour).strong());
        if let Some(slot) = &a.slot {
            ui.label(slot);
        }
        ui.label(RichText::new(&a.patient_name).strong());
        widgets::phone(ui, cx, RecordKind::Appointment, a.id, &a.phone);
        let dept = refs.department(&a.department).map_or(a.department.clone(), |d| dept_name(tr, d));
        ui.label(dept);
        if let Some(d) = a.doctor.as_deref().and_then(|d| refs.doctor(d)) {
            ui.label(format!("{} ({})", d.name, tr.t("appt.designated")));
        }
        ui.label(RichText::new(tr.k("appt_kind", a.kind.key())).color(theme::MUTED));
        if a.overbooked.is_some() {
            ui.label(RichText::new(tr.t("appt.overbooked")).color(theme::WARN));
        }
    });
    ui.horizontal_wrapped(|ui| {
        let may_check_in =
            today && a.kind.comes_in() && matches!(status, AppointmentStatus::Booked | AppointmentStatus::NoShow);
        if may_check_in && ui.add_sized([96.0, theme::TOUCH], egui::Button::new(tr.t("appt.check_in"))).clicked() {
            *action = Some(Command::Appointment { id: a.id, action: AppointmentAction::CheckIn });
        }
        if status == AppointmentStatus::Booked {
            if ui.button(tr.t("appt.reschedule")).clicked() {
                *reschedule = Some(a.clone());
            }
            if ui.button(tr.t("appt.cancel")).clicked() {
                *cancelling = Some((a.id, String::new()));
            }
            if today && a.kind.comes_in() && ui.button(tr.t("appt.no_show")).clicked() {
                *action = Some(Command::Appointment { id: a.id, action: AppointmentAction::NoShow });
            }
        }
        if ui.button(tr.t("appt.slip")).clicked() {
            *action = Some(Command::DirectorySlip {
                department: a.department.clone(),
                doctor: a.doctor.clone(),
                appointment: Some(a.id),
            });
        }
    });
    if let Some((id, reason)) = cancelling.as_mut()
        && *id == a.id
    {
        ui.horizontal(|ui| {
            ui.label(tr.t("appt.cancel_reason"));
            ui.add(egui::TextEdit::singleline(reason).desired_width(220.0));
            if ui.button(tr.t("appt.cancel_confirm")).clicked() {
                *action = Some(Command::Appointment {
                    id: a.id,
                    action: AppointmentAction::Cancel { reason: reason.clone() },
                });
            }
        });
    }
    let who = a.booked_by.0.as_str();
    let at = a.booked_at.local(cx.offset).format("%m-%d %H:%M").to_string();
    ui.label(RichText::new(tr.f("appt.by", &[("who", &who), ("at", &at)])).small().color(theme::MUTED));
}

/// The name of a public holiday on `day`, in the screen language.
pub fn holiday_name(refs: &ReferenceData, day: NaiveDate, tr: super::i18n::Tr) -> Option<String> {
    match refs.calendar.day_kind(day).kind {
        crate::policy::calendar::DayKind::Holiday { name_zh, name_en } => Some(match tr.lang {
            crate::config::Language::En => name_en,
            crate::config::Language::ZhCn => name_zh,
        }),
        _ => None,
    }
}
