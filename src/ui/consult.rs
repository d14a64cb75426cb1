//! Consultations (咨询登记): log a phone/WeChat/web/in-person enquiry, mark an appointment, and later link it to
//! the arrival it became (enquiry → arrival conversion).

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome};
use super::register::dept_name;
use super::{theme, widgets};
use crate::model::validate::mask_phone;
use crate::model::{
    Arrival, Concern, Consultation, ConsultationChannel, ConsultationForm, RecordId, Sex, ValidationErrors,
};

#[derive(Debug)]
struct LinkDialog {
    consultation: RecordId,
    who: String,
    filter: String,
    candidates: Vec<Arrival>,
}

/// Consultation screen state.
#[derive(Debug, Default)]
pub struct ConsultScreen {
    form: ConsultationForm,
    errors: ValidationErrors,
    message: Option<(bool, String)>,
    recent: Vec<Consultation>,
    loaded: Option<u64>,
    link: Option<LinkDialog>,
}

impl DeskScreen for ConsultScreen {
    /// The screen.
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (q, tr) = (cx.q, cx.tr);
        if self.loaded != Some(cx.version) {
            self.recent = q.recent_consultations(7).unwrap_or_default();
            self.loaded = Some(cx.version);
        }
        let refs = &cx.refs;
        let mut cmd = None;
        ui.heading(tr.t("consult.title"));
        ui.columns(3, |cols| {
            let [left, middle, right] = cols else { return };
            let f = &mut self.form;
            let channels: Vec<(ConsultationChannel, &str)> =
                ConsultationChannel::ALL.iter().map(|c| (*c, tr.k("cchannel", c.key()))).collect();
            widgets::label_row(left, tr.t("consult.channel"), |ui| {
                widgets::choice(ui, &mut f.channel, &channels);
            });
            widgets::field_error(left, tr, &self.errors, "channel");
            widgets::text_row(left, tr.t("consult.name"), &mut f.name, "");
            widgets::field_error(left, tr, &self.errors, "name");
            widgets::label_row(left, tr.t("register.sex"), |ui| {
                widgets::choice(ui, &mut f.sex, &[(Sex::Male, tr.t("sex.male")), (Sex::Female, tr.t("sex.female"))]);
            });
            widgets::text_row(left, tr.t("register.age"), &mut f.age, "");
            widgets::field_error(left, tr, &self.errors, "age");
            widgets::text_row(left, tr.t("register.phone"), &mut f.phone, tr.t("register.phone_hint"));
            widgets::field_error(left, tr, &self.errors, "phone");
            widgets::text_row(left, tr.t("consult.address"), &mut f.address, "");
            widgets::text_row(left, tr.t("consult.disease_course"), &mut f.disease_course, "");
            widgets::text_row(left, tr.t("consult.history"), &mut f.history, "");
            widgets::text_row(left, tr.t("consult.disease_type"), &mut f.disease_type, "");

            widgets::text_row(middle, tr.t("consult.intention"), &mut f.intention, "");
            let concerns: Vec<(Concern, &str)> = Concern::ALL.iter().map(|c| (*c, tr.k("concern", c.key()))).collect();
            widgets::label_row(middle, tr.t("consult.concerns"), |ui| widgets::chips(ui, &mut f.concerns, &concerns));
            widgets::row(middle, tr.t("consult.question"), |ui| {
                ui.add(
                    egui::TextEdit::multiline(&mut f.question).desired_rows(2).desired_width(theme::INPUT_WIDTH - 60.0),
                )
            });
            widgets::field_error(middle, tr, &self.errors, "question");
            widgets::row(middle, tr.t("consult.answer"), |ui| {
                ui.add(
                    egui::TextEdit::multiline(&mut f.answer).desired_rows(2).desired_width(theme::INPUT_WIDTH - 60.0),
                )
            });
            let dept_text = refs
                .department(&f.referred_department)
                .map_or_else(|| tr.t("consult.none").to_string(), |d| dept_name(tr, d));
            widgets::row(middle, tr.t("consult.referred_department"), |ui| {
                egui::ComboBox::from_id_salt("c_dept")
                    .width(theme::INPUT_WIDTH - 60.0)
                    .selected_text(dept_text)
                    .height(400.0)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut f.referred_department, String::new(), tr.t("consult.none"));
                        for d in &refs.departments {
                            if ui.selectable_value(&mut f.referred_department, d.id.clone(), dept_name(tr, d)).clicked()
                            {
                                f.referred_doctor.clear();
                            }
                        }
                    })
                    .response
            });
            let doc_text =
                refs.doctor(&f.referred_doctor).map_or_else(|| tr.t("consult.none").to_string(), |d| d.name.clone());
            widgets::row(middle, tr.t("consult.referred_doctor"), |ui| {
                egui::ComboBox::from_id_salt("c_doc")
                    .width(theme::INPUT_WIDTH - 60.0)
                    .selected_text(doc_text)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut f.referred_doctor, String::new(), tr.t("consult.none"));
                        for d in refs
                            .doctors
                            .iter()
                            .filter(|d| f.referred_department.is_empty() || d.department == f.referred_department)
                        {
                            ui.selectable_value(
                                &mut f.referred_doctor,
                                d.id.clone(),
                                format!("{} {}", d.name, d.title),
                            );
                        }
                    })
                    .response
            });
            widgets::text_row(middle, tr.t("consult.appointment"), &mut f.appointment, "YYYY-MM-DD");
            middle.horizontal(|ui| {
                ui.add_space(theme::LABEL_WIDTH + 12.0);
                for (key, days) in [("consult.today", 0), ("consult.tomorrow", 1)] {
                    if ui.button(tr.t(key)).clicked() {
                        let d = cx.today + chrono::Days::new(days);
                        f.appointment = d.format("%Y-%m-%d").to_string();
                    }
                }
            });
            widgets::field_error(middle, tr, &self.errors, "appointment");
            self.recent_ui(right, cx);
        });
        ui.horizontal(|ui| {
            ui.add_space(theme::LABEL_WIDTH + 12.0);
            let submit = egui::Button::new(RichText::new(tr.t("consult.submit")).strong())
                .fill(theme::ACCENT.linear_multiply(0.25));
            if ui.add_sized([200.0, theme::TOUCH], submit).clicked() {
                cmd = Some(Command::Consult(Box::new(self.form.clone())));
            }
            if ui.add_sized([140.0, theme::TOUCH], egui::Button::new(tr.t("register.clear"))).clicked() {
                self.form = ConsultationForm::default();
                self.errors = ValidationErrors::default();
            }
            if let Some((ok, m)) = &self.message {
                ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
            }
        });
        if let Some(c) = self.link_ui(ui, cx) {
            cmd = Some(c);
        }
        if let Some(c) = cmd {
            cx.send(c);
        }
    }

    /// Takes the result of a consultation command.
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        let tr = reply.tr;
        let was_form = matches!(reply.sent, Command::Consult(_));
        match reply.outcome {
            Outcome::Done(_) if was_form => {
                self.form = ConsultationForm::default();
                self.errors = ValidationErrors::default();
                self.message = Some((true, tr.t("consult.done").to_string()));
            }
            Outcome::Done(_) => self.message = Some((true, tr.t("consult.linked").to_string())),
            Outcome::Invalid(e) => {
                self.errors = e.clone();
                self.message = Some((false, tr.t("register.fix_errors").to_string()));
            }
            Outcome::Failed(m) => self.message = Some((false, tr.f("app.write_failed", &[("error", m)]))),
            Outcome::Pending => {}
        }
    }
}

impl ConsultScreen {
    fn recent_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (q, tr) = (cx.q, cx.tr);
        ui.label(RichText::new(tr.t("consult.recent")).strong());
        let offset = cx.offset;
        egui::ScrollArea::vertical()
            .id_salt("consult_recent")
            .scroll_source(egui::scroll_area::ScrollSource::ALL)
            .show(ui, |ui| {
                for c in &self.recent {
                    let who = c
                        .name
                        .clone()
                        .or_else(|| c.phone.as_deref().map(mask_phone))
                        .unwrap_or_else(|| tr.t("consult.anonymous").to_string());
                    ui.horizontal_wrapped(|ui| {
                        ui.label(c.at.local(offset).format("%m-%d %H:%M").to_string());
                        ui.label(tr.k("cchannel", c.channel.key()));
                        ui.label(RichText::new(&who).strong());
                        if let Some(d) = c.appointment.value {
                            ui.label(tr.f("consult.appointment_on", &[("date", &d)]));
                        }
                        if c.arrival.value.is_some() {
                            ui.label(RichText::new(tr.t("consult.arrived")).color(theme::OK));
                        } else if ui
                            .button(tr.t("consult.link"))
                            .accessible_name(format!("{} {who}", tr.t("consult.link")))
                            .clicked()
                        {
                            let mut candidates = q
                                .possible_earlier_visits(c.phone.as_deref(), c.name.as_deref().unwrap_or(""), c.age)
                                .unwrap_or_default();
                            candidates.retain(|a| a.arrived_at >= c.at);
                            self.link = Some(LinkDialog {
                                consultation: c.id,
                                who: who.clone(),
                                filter: String::new(),
                                candidates,
                            });
                        }
                    });
                    ui.label(
                        RichText::new(c.question.chars().take(30).collect::<String>())
                            .color(theme::MUTED)
                            .size(theme::SMALL),
                    );
                    ui.separator();
                }
            });
    }

    fn link_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) -> Option<Command> {
        let (q, tr) = (cx.q, cx.tr);
        let d = self.link.as_mut()?;
        let mut cmd = None;
        let mut close = false;
        let offset = cx.offset;
        let modal = egui::Modal::new(egui::Id::unique("link_dialog")).show(ui.ctx(), |ui| {
            ui.set_width(620.0);
            ui.heading(tr.f("consult.link_title", &[("who", &d.who)]));
            ui.label(RichText::new(tr.t("consult.link_hint")).color(theme::MUTED));
            widgets::text_row(ui, tr.t("consult.link_filter"), &mut d.filter, "");
            let mut shown: Vec<Arrival> = d.candidates.clone();
            if !d.filter.trim().is_empty() {
                let today = q.arrivals_on(cx.today).unwrap_or_default();
                shown.extend(
                    today
                        .into_iter()
                        .filter(|a| a.name.contains(d.filter.trim()) && !d.candidates.iter().any(|c| c.id == a.id)),
                );
            }
            if shown.is_empty() {
                ui.label(RichText::new(tr.t("consult.link_none")).color(theme::MUTED));
            }
            egui::ScrollArea::vertical().max_height(320.0).show(ui, |ui| {
                for a in &shown {
                    ui.horizontal(|ui| {
                        ui.label(format!(
                            "{} {} {}",
                            a.arrived_at.local(offset).format("%m-%d %H:%M"),
                            a.name,
                            a.phone.as_deref().map(mask_phone).unwrap_or_default()
                        ));
                        if ui
                            .button(tr.t("consult.link_this"))
                            .accessible_name(format!("{} {}", tr.t("consult.link_this"), a.name))
                            .clicked()
                        {
                            cmd = Some(Command::Link { consultation: d.consultation, arrival: a.id });
                            close = true;
                        }
                    });
                }
            });
            if ui.button(tr.t("dialog.close")).clicked() {
                close = true;
            }
        });
        if close || modal.should_close() {
            self.link = None;
        }
        cmd
    }
}
