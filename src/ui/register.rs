//! Register an arrival: the guide's most frequent task, built for speed on a touch screen.
//!
//! Department suggestions come from the chief complaint's keywords; the doctor list shows only doctors on duty
//! today. Before creating, possible earlier visits of the same person (same phone, or same name and similar age)
//! are shown so a return visit is linked instead of duplicated. Invalid input is reported next to each field and
//! the form keeps everything typed.

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome, Queries};
use super::i18n::Tr;
use super::{theme, widgets};
use crate::command::AppointmentAction;
use crate::model::validate::{mask_phone, normalize_phone};
use crate::model::{
    Appointment, AppointmentStatus, Arrival, ArrivalChannel, ArrivalForm, Need, Priority, Sex, ValidationErrors,
    VisitType,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumField {
    Phone,
    Age,
}

/// Registration screen state.
#[derive(Debug)]
pub struct RegisterScreen {
    form: ArrivalForm,
    errors: ValidationErrors,
    keypad: NumField,
    earlier: Vec<Arrival>,
    earlier_key: (String, String, String),
    message: Option<(bool, String)>,
    /// Today's bookings still expected (checked in from here), and the store version they were read at.
    expected: Vec<Appointment>,
    expected_loaded: Option<(u64, chrono::NaiveDate)>,
}

impl Default for RegisterScreen {
    fn default() -> Self {
        Self {
            form: ArrivalForm::default(),
            errors: ValidationErrors::default(),
            keypad: NumField::Phone,
            earlier: Vec::new(),
            earlier_key: Default::default(),
            message: None,
            expected: Vec::new(),
            expected_loaded: None,
        }
    }
}

impl RegisterScreen {
    /// The form as typed (tests, and keeping it across a lock).
    pub fn form(&self) -> &ArrivalForm {
        &self.form
    }
}

impl DeskScreen for RegisterScreen {
    /// The screen: two columns of fields, then the choice rows and the buttons; the keypad and possible earlier
    /// visits on the right. Everything fits a 1280×800 kiosk screen without scrolling.
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (q, tr) = (cx.q, cx.tr);
        let refs = &cx.refs;
        let today = cx.today;
        self.refresh_earlier(q);
        if self.expected_loaded != Some((cx.version, today)) {
            self.expected = q.appointments_between(today, today).unwrap_or_default();
            self.expected.retain(|a| a.kind.comes_in() && a.status() == AppointmentStatus::Booked);
            self.expected_loaded = Some((cx.version, today));
        }
        let session = refs.appointment_policy.session_for(cx.now.local(cx.offset).time());
        let mut cmd = None;
        egui::ScrollArea::vertical().id_salt("register_page").scroll_source(egui::scroll_area::ScrollSource::ALL).show(
            ui,
            |ui| {
                ui.heading(tr.t("register.title"));
                let total = ui.available_width();
                ui.horizontal_top(|ui| {
                    widgets::column(ui, total * 0.36, |ui| self.left_fields(ui, tr));
                    widgets::column(ui, total * 0.36, |ui| self.middle_fields(ui, tr, refs, today, session));
                    widgets::column(ui, ui.available_width(), |ui| self.side_ui(ui, cx));
                });
                let f = &mut self.form;
                let channels: Vec<(ArrivalChannel, &str)> =
                    ArrivalChannel::ALL.iter().map(|c| (*c, tr.k("channel", c.key()))).collect();
                widgets::label_row(ui, tr.t("register.channel"), |ui| {
                    widgets::choice(ui, &mut f.channel, &channels);
                });
                widgets::field_error(ui, tr, &self.errors, "channel");
                let needs: Vec<(Need, &str)> = Need::ALL.iter().map(|n| (*n, tr.k("need", n.key()))).collect();
                widgets::label_row(ui, tr.t("register.needs"), |ui| widgets::chips(ui, &mut f.needs, &needs));
                if let Some(prev) = f.previous_visit {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(tr.f("register.linked", &[("id", &prev.short())])).color(theme::OK));
                        if ui.button(tr.t("register.unlink")).clicked() {
                            f.previous_visit = None;
                        }
                    });
                }
                ui.horizontal(|ui| {
                    ui.add_space(theme::LABEL_WIDTH + 12.0);
                    let submit = egui::Button::new(RichText::new(tr.t("register.submit")).strong())
                        .fill(theme::ACCENT.linear_multiply(0.25));
                    if ui.add_sized([200.0, theme::TOUCH], submit).clicked() {
                        // Validated once, by the command layer; field errors come back in `on_outcome`.
                        cmd = Some(Command::Register(Box::new(self.form.clone())));
                    }
                    if ui.add_sized([140.0, theme::TOUCH], egui::Button::new(tr.t("register.clear"))).clicked() {
                        *self = RegisterScreen::default();
                    }
                    if let Some((ok, m)) = &self.message {
                        ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
                    }
                });
            },
        );
        if let Some(c) = cmd {
            cx.send(c);
        }
    }

    /// Takes the result of the register command (or of a booking's check-in): clears the form on success, keeps it
    /// otherwise.
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        let tr = reply.tr;
        if let (Command::Appointment { id, .. }, Outcome::Done(_)) = (reply.sent, reply.outcome) {
            let name = self.expected.iter().find(|a| a.id == *id).map(|a| a.patient_name.clone()).unwrap_or_default();
            *self = RegisterScreen::default();
            self.message = Some((true, tr.f("appt.checked_in_done", &[("name", &name)])));
            return;
        }
        match reply.outcome {
            Outcome::Done(_) => {
                let name = self.form.name.trim().to_string();
                *self = RegisterScreen::default();
                self.message = Some((true, tr.f("register.done", &[("name", &name)])));
            }
            Outcome::Invalid(e) => {
                self.errors = e.clone();
                self.message = Some((false, tr.t("register.fix_errors").to_string()));
            }
            Outcome::Failed(m) => self.message = Some((false, tr.f("app.write_failed", &[("error", m)]))),
            Outcome::Pending => {}
        }
    }
}

impl RegisterScreen {
    fn left_fields(&mut self, ui: &mut Ui, tr: Tr) {
        let f = &mut self.form;
        widgets::text_row(ui, tr.t("register.name"), &mut f.name, tr.t("register.name_hint"));
        widgets::field_error(ui, tr, &self.errors, "name");
        widgets::label_row(ui, tr.t("register.sex"), |ui| {
            widgets::choice(
                ui,
                &mut f.sex,
                &[
                    (Sex::Male, tr.t("sex.male")),
                    (Sex::Female, tr.t("sex.female")),
                    (Sex::Unknown, tr.t("sex.unknown")),
                ],
            );
        });
        widgets::field_error(ui, tr, &self.errors, "sex");
        if widgets::text_row(ui, tr.t("register.age"), &mut f.age, "").gained_focus() {
            self.keypad = NumField::Age;
        }
        widgets::field_error(ui, tr, &self.errors, "age");
        if widgets::text_row(ui, tr.t("register.phone"), &mut f.phone, tr.t("register.phone_hint")).gained_focus() {
            self.keypad = NumField::Phone;
        }
        widgets::field_error(ui, tr, &self.errors, "phone");
        widgets::label_row(ui, tr.t("register.visit_type"), |ui| {
            widgets::choice(
                ui,
                &mut f.visit_type,
                &[(VisitType::First, tr.t("visit.first")), (VisitType::Return, tr.t("visit.return"))],
            );
        });
        widgets::field_error(ui, tr, &self.errors, "visit_type");
        let mut p = Some(f.priority);
        widgets::label_row(ui, tr.t("register.priority"), |ui| {
            widgets::choice(
                ui,
                &mut p,
                &[
                    (Priority::Normal, tr.t("priority.normal")),
                    (Priority::Urgent, tr.t("priority.urgent")),
                    (Priority::Emergency, tr.t("priority.emergency")),
                ],
            );
        });
        f.priority = p.unwrap_or_default();
    }

    fn middle_fields(
        &mut self,
        ui: &mut Ui,
        tr: Tr,
        refs: &crate::model::ReferenceData,
        today: chrono::NaiveDate,
        session: Option<crate::model::reference::Session>,
    ) {
        let f = &mut self.form;
        widgets::row(ui, tr.t("register.complaint"), |ui| {
            ui.add(
                egui::TextEdit::multiline(&mut f.complaint)
                    .desired_rows(2)
                    .desired_width(theme::INPUT_WIDTH - 60.0)
                    .hint_text(tr.t("register.complaint_hint")),
            )
        });
        widgets::field_error(ui, tr, &self.errors, "complaint");
        // Department: suggestions from the complaint's keywords, then every department.
        let suggested = refs.suggest_departments(&f.complaint);
        if !suggested.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(tr.t("register.suggested")).color(theme::MUTED));
                for d in suggested.iter().take(3) {
                    if widgets::toggle(ui, f.department == d.id, format!("★ {}", dept_name(tr, d))).clicked() {
                        f.department.clone_from(&d.id);
                        f.doctor.clear();
                    }
                }
            });
        }
        let current =
            refs.department(&f.department).map_or_else(|| tr.t("register.choose").to_string(), |d| dept_name(tr, d));
        widgets::row(ui, tr.t("register.department"), |ui| {
            egui::ComboBox::from_id_salt("department")
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
        widgets::field_error(ui, tr, &self.errors, "department");
        // Only the doctors on duty in the session the patient is seen in (holidays close the clinics).
        let dept = Some(&f.department).filter(|d| !d.is_empty()).map(String::as_str);
        let on_duty = refs.doctors_on_duty_in(today, session, dept);
        let doctor_text = refs
            .doctor(&f.doctor)
            .map_or_else(|| tr.t("register.no_doctor").to_string(), |d| format!("{} {}", d.name, d.title));
        widgets::row(ui, tr.t("register.doctor"), |ui| {
            egui::ComboBox::from_id_salt("doctor")
                .width(theme::INPUT_WIDTH - 60.0)
                .selected_text(doctor_text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut f.doctor, String::new(), tr.t("register.no_doctor"));
                    for d in &on_duty {
                        ui.selectable_value(
                            &mut f.doctor,
                            d.id.clone(),
                            format!("{} {} · {}", d.name, d.title, d.specialty),
                        );
                    }
                })
                .response
        });
        ui.horizontal(|ui| {
            ui.add_space(theme::LABEL_WIDTH + 12.0);
            ui.checkbox(&mut f.designated, tr.t("register.designated"));
        });
        widgets::field_error(ui, tr, &self.errors, "doctor");
        widgets::text_row(ui, tr.t("register.origin"), &mut f.origin, tr.t("register.origin_hint"));
        widgets::field_error(ui, tr, &self.errors, "origin");
        widgets::text_row(ui, tr.t("register.heard_via"), &mut f.heard_via, tr.t("register.heard_via_hint"));
        widgets::field_error(ui, tr, &self.errors, "heard_via");
    }

    fn side_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (tr, refs) = (cx.tr, &cx.refs);
        ui.label(
            RichText::new(match self.keypad {
                NumField::Phone => tr.t("register.keypad_phone"),
                NumField::Age => tr.t("register.keypad_age"),
            })
            .color(theme::MUTED),
        );
        match self.keypad {
            NumField::Phone => widgets::keypad(ui, tr, &mut self.form.phone, 12),
            NumField::Age => widgets::keypad(ui, tr, &mut self.form.age, 3),
        };
        ui.separator();
        // Nothing typed yet: the panel lists today's expected patients instead of earlier visits.
        if self.expected_ui(ui, cx) {
            return;
        }
        ui.label(RichText::new(tr.t("register.earlier")).strong());
        if self.earlier.is_empty() {
            ui.label(RichText::new(tr.t("register.earlier_none")).color(theme::MUTED));
        }
        let offset = cx.offset;
        let mut link = None;
        egui::ScrollArea::vertical().id_salt("earlier").max_height(220.0).show(ui, |ui| {
            for a in &self.earlier {
                ui.horizontal_wrapped(|ui| {
                    let dept =
                        refs.department(&a.department.value).map_or(a.department.value.clone(), |d| dept_name(tr, d));
                    ui.label(format!(
                        "{} {} {} {} {}",
                        a.arrived_at.local(offset).format("%Y-%m-%d"),
                        a.name,
                        a.age.map(|x| tr.f("register.age_years", &[("n", &x)])).unwrap_or_default(),
                        dept,
                        a.phone.as_deref().map(mask_phone).unwrap_or_default()
                    ));
                    if self.form.previous_visit != Some(a.id) && ui.button(tr.t("register.link_return")).clicked() {
                        link = Some(a.id);
                    }
                });
            }
        });
        if let Some(id) = link {
            self.form.previous_visit = Some(id);
            self.form.visit_type = Some(VisitType::Return);
        }
    }

    /// Today's bookings: with nothing typed yet, the patients still expected, by session, each checked in with one
    /// tap; once a phone with a booking today is typed (a walk-in who had booked), that booking, highlighted, with
    /// "按预约签到".
    /// Whether the panel is browsing (nothing typed yet: the expected list was shown in place of earlier visits).
    fn expected_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) -> bool {
        let tr = cx.tr;
        let typed = normalize_phone(&self.form.phone).ok();
        let mut check_in = None;
        if let Some(a) = typed.as_deref().and_then(|p| self.expected.iter().find(|a| a.phone == p)) {
            let who = booking_text(cx, a);
            ui.label(RichText::new(tr.f("appt.phone_match", &[("who", &who)])).strong().color(theme::WARN));
            if ui.add_sized([200.0, theme::TOUCH], egui::Button::new(tr.t("appt.check_in_booking"))).clicked() {
                check_in = Some(a.id);
            }
            ui.separator();
        }
        // While a patient is being typed in, the panel is for their earlier visits.
        let browsing = self.form.phone.trim().is_empty() && self.form.name.trim().is_empty();
        if browsing {
            self.expected_list(ui, cx, &mut check_in);
        }
        if let Some(id) = check_in {
            cx.send(Command::Appointment { id, action: AppointmentAction::CheckIn });
        }
        browsing
    }

    /// Today's expected patients, each with its check-in button.
    fn expected_list(&self, ui: &mut Ui, cx: &ScreenCtx<'_>, check_in: &mut Option<crate::model::RecordId>) {
        let tr = cx.tr;
        ui.label(RichText::new(tr.t("appt.expected_today")).strong());
        if self.expected.is_empty() {
            ui.label(RichText::new(tr.t("appt.expected_none")).color(theme::MUTED));
        }
        // Compact rows (the button first, one line each) so the form still fits the screen without scrolling.
        egui::ScrollArea::vertical().id_salt("expected").max_height(110.0).show(ui, |ui| {
            ui.spacing_mut().interact_size.y = theme::SMALL + 18.0;
            ui.spacing_mut().item_spacing.y = 2.0;
            for a in &self.expected {
                ui.horizontal(|ui| {
                    if ui.small_button(tr.t("appt.check_in")).clicked() {
                        *check_in = Some(a.id);
                    }
                    let tail = a.phone.get(a.phone.len().saturating_sub(4)..).unwrap_or_default();
                    ui.label(
                        RichText::new(format!("{} {} …{tail}", tr.k("session", a.session.key()), booking_text(cx, a)))
                            .size(theme::SMALL),
                    );
                });
            }
        });
    }

    fn refresh_earlier(&mut self, q: &dyn Queries) {
        let key = (self.form.phone.clone(), self.form.name.trim().to_string(), self.form.age.clone());
        if key == self.earlier_key {
            return;
        }
        self.earlier_key = key;
        let phone = normalize_phone(&self.form.phone).ok();
        let age = self.form.age.trim().parse::<u8>().ok();
        let name = self.form.name.trim();
        self.earlier = if phone.is_none() && name.chars().count() < 2 {
            Vec::new()
        } else {
            q.possible_earlier_visits(phone.as_deref(), name, age).unwrap_or_default()
        };
    }
}

/// A booking as one line: time, name, department, doctor.
fn booking_text(cx: &ScreenCtx<'_>, a: &Appointment) -> String {
    let (tr, refs) = (cx.tr, &cx.refs);
    let dept = refs.department(&a.department).map_or(a.department.clone(), |d| dept_name(tr, d));
    let doctor = a.doctor.as_deref().and_then(|d| refs.doctor(d)).map(|d| d.name.clone()).unwrap_or_default();
    format!("{} {} {dept} {doctor}", a.slot.as_deref().unwrap_or(""), a.patient_name).trim().to_string()
}

/// A department's name in the current language.
pub fn dept_name(tr: Tr, d: &crate::model::reference::Department) -> String {
    match tr.lang {
        crate::config::Language::En if !d.name_en.is_empty() => d.name_en.clone(),
        _ => d.name.clone(),
    }
}
