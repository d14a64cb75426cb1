//! The department directory (科室导航): where each department is (building, floor, room), its phone, clinic hours
//! and specialties; its doctors with their specialty, weekly sessions and whether they are on duty today; search by
//! a symptom keyword, a department or a doctor; and the patient's printable guide slip (导诊单).

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome};
use super::register::dept_name;
use super::theme;
use crate::model::reference::{Department, Doctor, ReferenceData, Session};

/// Directory screen state.
#[derive(Debug, Default)]
pub struct DirectoryScreen {
    search: String,
    message: Option<(bool, String)>,
}

impl DirectoryScreen {
    /// The search text (tests type into it as a guide would).
    pub fn search_mut(&mut self) -> &mut String {
        &mut self.search
    }
}

/// The sessions a doctor holds on `day`, in the screen language (empty when off duty).
fn sessions_on(refs: &ReferenceData, d: &Doctor, day: chrono::NaiveDate, tr: super::i18n::Tr) -> Vec<&'static str> {
    Session::CLINIC.into_iter().filter(|s| refs.on_duty_in(&d.id, day, *s)).map(|s| tr.k("session", s.key())).collect()
}

/// A doctor's weekly sessions, e.g. `周一上午 周三下午`.
pub fn weekly_text(refs: &ReferenceData, doctor: &str, tr: super::i18n::Tr) -> String {
    refs.weekly_sessions(doctor)
        .into_iter()
        .map(|(w, s)| {
            let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][w.num_days_from_monday() as usize];
            format!("{}{}", tr.k("report.weekday", day), tr.k("session", s.key()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl DeskScreen for DirectoryScreen {
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (tr, refs) = (cx.tr, &cx.refs);
        ui.heading(tr.t("dir.title"));
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.search)
                    .hint_text(tr.t("dir.search_hint"))
                    .desired_width(theme::INPUT_WIDTH + 100.0),
            );
            if !self.search.is_empty() && ui.button(tr.t("appt.clear")).clicked() {
                self.search.clear();
            }
            if let Some((ok, m)) = &self.message {
                ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
            }
        });
        if let Some(h) = super::appointments::holiday_name(refs, cx.today, tr) {
            ui.label(RichText::new(tr.f("dir.holiday", &[("name", &h)])).color(theme::WARN));
        }
        let (depts, doctors) = refs.directory_search(&self.search);
        ui.label(RichText::new(tr.f("dir.count", &[("d", &depts.len()), ("n", &doctors.len())])).color(theme::MUTED));
        if depts.is_empty() && doctors.is_empty() {
            ui.label(RichText::new(tr.t("dir.none")).color(theme::MUTED));
            return;
        }
        let mut cmd = None;
        egui::ScrollArea::vertical().id_salt("directory").show(ui, |ui| {
            for d in &depts {
                department_card(ui, cx, d, &doctors, &mut cmd);
            }
            // Doctors found by name or specialty whose department did not match.
            let loose: Vec<&&Doctor> =
                doctors.iter().filter(|doc| !depts.iter().any(|d| d.id == doc.department)).collect();
            if !loose.is_empty() {
                ui.separator();
                ui.label(RichText::new(tr.t("dir.doctors")).strong());
                for doc in loose {
                    doctor_line(ui, cx, doc, &mut cmd);
                }
            }
        });
        if let Some(c) = cmd {
            cx.send(c);
        }
    }

    fn on_outcome(&mut self, reply: &Reply<'_>) {
        self.message = match reply.outcome {
            Outcome::Done(_) => reply.note.clone().map(|n| (true, n)),
            Outcome::Failed(m) => Some((false, m.clone())),
            _ => None,
        };
    }
}

fn department_card(ui: &mut Ui, cx: &ScreenCtx<'_>, d: &Department, doctors: &[&Doctor], cmd: &mut Option<Command>) {
    let tr = cx.tr;
    ui.separator();
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(dept_name(tr, d)).strong().size(theme::BODY + 2.0));
        let place = d.location();
        if !place.is_empty() {
            ui.label(format!("{}：{place}", tr.t("dir.location")));
        }
        if let Some(p) = &d.phone {
            ui.label(format!("{}：{p}", tr.t("dir.phone")));
        }
        if ui.add_sized([150.0, theme::TOUCH], egui::Button::new(tr.t("dir.slip"))).clicked() {
            *cmd = Some(Command::DirectorySlip { department: d.id.clone(), doctor: None, appointment: None });
        }
    });
    if !d.hours.is_empty() {
        ui.label(RichText::new(format!("{}：{}", tr.t("dir.hours"), d.hours)).color(theme::MUTED));
    }
    if !d.specialties.is_empty() {
        ui.label(
            RichText::new(format!("{}：{}", tr.t("dir.specialties"), d.specialties.join("、"))).color(theme::MUTED),
        );
    }
    for doc in doctors.iter().filter(|x| x.department == d.id) {
        doctor_line(ui, cx, doc, cmd);
    }
}

fn doctor_line(ui: &mut Ui, cx: &ScreenCtx<'_>, doc: &Doctor, cmd: &mut Option<Command>) {
    let (tr, refs) = (cx.tr, &cx.refs);
    ui.horizontal_wrapped(|ui| {
        ui.add_space(24.0);
        ui.label(RichText::new(format!("{} {}", doc.name, doc.title)).strong());
        if !doc.specialty.is_empty() {
            ui.label(&doc.specialty);
        }
        let weekly = weekly_text(refs, &doc.id, tr);
        if !weekly.is_empty() {
            ui.label(RichText::new(format!("{}：{weekly}", tr.t("dir.sessions"))).color(theme::MUTED));
        }
        let today = sessions_on(refs, doc, cx.today, tr);
        if today.is_empty() {
            ui.label(RichText::new(tr.t("dir.off_today")).color(theme::MUTED));
        } else {
            ui.label(RichText::new(tr.f("dir.on_today", &[("sessions", &today.join("、"))])).color(theme::OK));
        }
        if ui.small_button(tr.t("dir.slip")).clicked() {
            *cmd = Some(Command::DirectorySlip {
                department: doc.department.clone(),
                doctor: Some(doc.id.clone()),
                appointment: None,
            });
        }
    });
}
