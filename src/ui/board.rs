//! The visit board: today's arrivals with their current step, time in step and total time, alerts, filters and
//! one-tap step changes. Cancellations (退号) and changes (换号) need a reason and are kept in the record.

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome};
use super::register::dept_name;
use super::{theme, widgets};
use crate::model::arrival::DoctorChoice;
use crate::model::validate::mask_phone;
use crate::model::{Arrival, Need, Priority, RecordId, VisitStep};

/// The step a one-tap "next" moves to.
pub fn next_step(step: VisitStep) -> Option<VisitStep> {
    match step {
        VisitStep::Triaged => Some(VisitStep::Registered),
        VisitStep::Registered | VisitStep::Exams => Some(VisitStep::WithDoctor),
        VisitStep::WithDoctor => Some(VisitStep::Paying),
        VisitStep::Paying | VisitStep::Treatment => Some(VisitStep::Done),
        _ => None,
    }
}

#[derive(Debug, Clone)]
enum Dialog {
    Steps { id: RecordId, name: String, current: VisitStep },
    Cancel { id: RecordId, name: String, reason: String },
    Change { id: RecordId, name: String, department: String, doctor: String, reason: String },
}

/// A fixed-width cell of a board row, two lines high.
fn cell(ui: &mut Ui, width: f32, add: impl FnOnce(&mut Ui)) {
    ui.allocate_ui_with_layout(egui::vec2(width, theme::TOUCH), egui::Layout::top_down(egui::Align::Min), |ui| {
        ui.set_width(width);
        ui.spacing_mut().item_spacing.y = 0.0;
        add(ui);
    });
}

/// Board state.
#[derive(Debug, Default)]
pub struct BoardScreen {
    department: Option<String>,
    step: Option<VisitStep>,
    priority: Option<Priority>,
    need: Option<Need>,
    show_finished: bool,
    rows: Vec<Arrival>,
    /// The desk of each row another desk of the site registered (the site-wide board); this desk's are absent.
    desks: std::collections::BTreeMap<RecordId, String>,
    /// Only rows of this desk (`Some("")`: this desk's own).
    desk: Option<String>,
    loaded: Option<(u64, chrono::NaiveDate)>,
    dialog: Option<Dialog>,
    message: Option<(bool, String)>,
}

impl BoardScreen {
    /// Arrivals currently loaded (tests).
    pub fn rows(&self) -> &[Arrival] {
        &self.rows
    }
}

impl DeskScreen for BoardScreen {
    /// The screen. The context's `version` changes whenever the store changed, so the board reloads only then.
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (q, tr, today) = (cx.q, cx.tr, cx.today);
        if self.loaded != Some((cx.version, today)) {
            match q.arrivals_on(today) {
                Ok(rows) => self.rows = rows,
                Err(e) => self.message = Some((false, e.to_string())),
            }
            match q.origin_desks(crate::model::RecordKind::Arrival) {
                Ok(d) => self.desks = d,
                Err(e) => self.message = Some((false, e.to_string())),
            }
            self.loaded = Some((cx.version, today));
        }
        let refs = &cx.refs;
        let now = cx.now;
        let offset = cx.offset;
        let mut cmd = None;

        ui.horizontal(|ui| {
            ui.heading(tr.t("board.title"));
            let total = self.rows.len();
            let open = self.rows.iter().filter(|a| !a.step().is_final()).count();
            ui.label(
                RichText::new(tr.f("board.summary", &[("total", &total), ("open", &open), ("done", &(total - open))]))
                    .color(theme::MUTED),
            );
        });
        let waiting = self.rows.iter().filter(|a| a.step() == VisitStep::Triaged).count();
        let limit = refs.visit_policy.registration_queue_alert as usize;
        if waiting > limit {
            egui::Frame::new().fill(theme::ALERT.linear_multiply(0.15)).inner_margin(8.0).show(ui, |ui| {
                ui.label(
                    RichText::new(tr.f("board.queue_alert", &[("n", &waiting), ("limit", &limit)]))
                        .color(theme::ALERT)
                        .strong(),
                );
            });
        }
        self.filters_ui(ui, cx);
        if let Some((ok, m)) = &self.message {
            ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
        }
        ui.separator();

        // The desk column and filter appear once the board holds another desk's arrivals.
        let site_wide = !self.desks.is_empty();
        let visible: Vec<&Arrival> = self.rows.iter().filter(|a| self.matches(a)).collect();
        if visible.is_empty() {
            ui.label(RichText::new(tr.t("board.empty")).color(theme::MUTED));
        }
        let row_h = theme::TOUCH + 24.0;
        egui::ScrollArea::vertical().id_salt("board").scroll_source(egui::scroll_area::ScrollSource::ALL).show_rows(
            ui,
            row_h,
            visible.len(),
            |ui, range| {
                for a in &visible[range] {
                    ui.horizontal(|ui| {
                        ui.set_min_height(theme::TOUCH);
                        let step = a.step();
                        cell(ui, 56.0, |ui| {
                            ui.label(a.arrived_at.local(offset).format("%H:%M").to_string());
                            if site_wide {
                                let desk = self.desks.get(&a.id).map_or(tr.t("board.this_desk"), String::as_str);
                                ui.add(
                                    egui::Label::new(RichText::new(desk).color(theme::MUTED).size(theme::SMALL))
                                        .truncate(),
                                );
                            }
                        });
                        cell(ui, 170.0, |ui| {
                            let mut who = a.name.clone();
                            if let Some(age) = a.age {
                                who.push(' ');
                                who.push_str(&tr.f("register.age_years", &[("n", &age)]));
                            }
                            ui.add(egui::Label::new(RichText::new(who).strong()).truncate());
                            ui.label(
                                RichText::new(a.phone.as_deref().map(mask_phone).unwrap_or_default())
                                    .color(theme::MUTED)
                                    .size(theme::SMALL),
                            );
                        });
                        cell(ui, 200.0, |ui| {
                            let dept = refs
                                .department(&a.department.value)
                                .map_or(a.department.value.clone(), |d| dept_name(tr, d));
                            let doc = a.doctor.value.as_ref().and_then(|c| {
                                refs.doctor(&c.doctor).map(|d| {
                                    if c.designated {
                                        format!("{}（{}）", d.name, tr.t("board.designated"))
                                    } else {
                                        d.name.clone()
                                    }
                                })
                            });
                            ui.add(
                                egui::Label::new(match doc {
                                    Some(d) => format!("{dept} · {d}"),
                                    None => dept,
                                })
                                .truncate(),
                            );
                            ui.horizontal(|ui| {
                                if a.priority != Priority::Normal {
                                    ui.label(
                                        RichText::new(tr.k("priority", priority_key(a.priority)))
                                            .color(theme::priority_color(a.priority))
                                            .strong()
                                            .size(theme::SMALL),
                                    );
                                }
                                for n in &a.needs {
                                    ui.label(
                                        RichText::new(tr.k("need", n.key())).color(theme::WARN).size(theme::SMALL),
                                    );
                                }
                            });
                        });
                        cell(ui, 110.0, |ui| {
                            ui.label(RichText::new(tr.k("step", step.key())).color(theme::step_color(step)).strong());
                        });
                        let end = a.ended_at().unwrap_or(now);
                        let in_step = end.millis_since(a.step_since()) / 60_000;
                        let total = end.millis_since(a.arrived_at) / 60_000;
                        let over = !step.is_final()
                            && refs
                                .visit_policy
                                .step_limit_minutes
                                .get(step.key())
                                .is_some_and(|l| in_step > i64::from(*l));
                        cell(ui, 190.0, |ui| {
                            let step_text = widgets::duration(tr, in_step);
                            if over {
                                ui.label(
                                    RichText::new(format!("⚠ {} {step_text}", tr.t("board.overdue")))
                                        .color(theme::ALERT)
                                        .strong(),
                                );
                            } else {
                                ui.label(step_text);
                            }
                            ui.label(
                                RichText::new(format!("{} {}", tr.t("board.total"), widgets::duration(tr, total)))
                                    .color(theme::MUTED)
                                    .size(theme::SMALL),
                            );
                        });
                        if let Some(next) = next_step(step) {
                            let label = format!("→ {}", tr.k("step", next.key()));
                            let b = ui
                                .add(egui::Button::new(label.clone()).min_size(egui::vec2(140.0, theme::TOUCH)))
                                .accessible_name(format!("{} {label}", a.name));
                            if b.clicked() {
                                cmd = Some(Command::MoveStep { id: a.id, step: next, reason: None });
                            }
                        }
                        if !step.is_final()
                            && ui
                                .button(tr.t("board.more"))
                                .accessible_name(format!("{} {}", tr.t("board.more"), a.name))
                                .clicked()
                        {
                            self.dialog = Some(Dialog::Steps { id: a.id, name: a.name.clone(), current: step });
                        }
                    });
                    ui.separator();
                }
            },
        );
        if let Some(c) = self.dialog_ui(ui, cx) {
            cmd = Some(c);
        }
        if let Some(c) = cmd {
            cx.send(c);
        }
    }

    /// Takes the result of a board command.
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        let tr = reply.tr;
        self.message = match reply.outcome {
            Outcome::Done(_) | Outcome::Pending => None,
            Outcome::Invalid(e) => {
                Some((false, e.0.iter().map(|f| widgets::problem_text(tr, &f.problem)).collect::<Vec<_>>().join("；")))
            }
            Outcome::Failed(m) => Some((false, tr.f("app.write_failed", &[("error", m)]))),
        };
    }
}

impl BoardScreen {
    fn matches(&self, a: &Arrival) -> bool {
        (self.show_finished || !a.step().is_final() || self.step.is_some_and(VisitStep::is_final))
            && self.department.as_ref().is_none_or(|d| &a.department.value == d)
            && self.step.is_none_or(|s| a.step() == s)
            && self.priority.is_none_or(|p| a.priority == p)
            && self.need.is_none_or(|n| a.has_need(n))
            && self.desk.as_deref().is_none_or(|d| self.desks.get(&a.id).map_or("", String::as_str) == d)
    }

    fn filters_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let tr = cx.tr;
        ui.horizontal_wrapped(|ui| {
            let all = tr.t("board.all");
            widgets::department_filter(ui, cx, "f_dept", tr.t("board.filter_department"), 180.0, &mut self.department);
            let step_text = self.step.map_or(all, |s| tr.k("step", s.key()));
            widgets::row(ui, tr.t("board.filter_step"), |ui| {
                egui::ComboBox::from_id_salt("f_step")
                    .width(150.0)
                    .selected_text(step_text)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.step, None, all);
                        for s in VisitStep::ALL {
                            ui.selectable_value(&mut self.step, Some(s), tr.k("step", s.key()));
                        }
                    })
                    .response
            });
            let pr_text = self.priority.map_or(all, |p| tr.k("priority", priority_key(p)));
            widgets::row(ui, tr.t("board.filter_priority"), |ui| {
                egui::ComboBox::from_id_salt("f_priority")
                    .width(120.0)
                    .selected_text(pr_text)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.priority, None, all);
                        for p in [Priority::Normal, Priority::Urgent, Priority::Emergency] {
                            ui.selectable_value(&mut self.priority, Some(p), tr.k("priority", priority_key(p)));
                        }
                    })
                    .response
            });
            let need_text = self.need.map_or(all, |n| tr.k("need", n.key()));
            widgets::row(ui, tr.t("board.filter_need"), |ui| {
                egui::ComboBox::from_id_salt("f_need")
                    .width(120.0)
                    .selected_text(need_text)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.need, None, all);
                        for n in Need::ALL {
                            ui.selectable_value(&mut self.need, Some(n), tr.k("need", n.key()));
                        }
                    })
                    .response
            });
            let mut seen: Vec<String> = self.desks.values().cloned().collect();
            seen.sort();
            seen.dedup();
            widgets::desk_filter(ui, tr, "f_desk", &seen, &mut self.desk);
            ui.checkbox(&mut self.show_finished, tr.t("board.show_finished"));
        });
    }

    fn dialog_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) -> Option<Command> {
        let (q, tr, refs) = (cx.q, cx.tr, &cx.refs);
        let mut cmd = None;
        let mut close = false;
        let mut next_dialog = None;
        let dialog = self.dialog.as_mut()?;
        let modal = egui::Modal::new(egui::Id::unique("board_dialog")).show(ui.ctx(), |ui| {
            ui.set_width(560.0);
            match dialog {
                Dialog::Steps { id, name, current } => {
                    ui.heading(tr.f("board.steps_for", &[("name", name)]));
                    ui.horizontal_wrapped(|ui| {
                        for s in VisitStep::ALL {
                            if s == *current || s == VisitStep::Cancelled || s == VisitStep::Triaged {
                                continue;
                            }
                            if ui.button(tr.k("step", s.key())).clicked() {
                                cmd = Some(Command::MoveStep { id: *id, step: s, reason: None });
                                close = true;
                            }
                        }
                    });
                    ui.separator();
                    ui.horizontal(|ui| {
                        if ui.button(RichText::new(tr.t("board.cancel_visit")).color(theme::ALERT)).clicked() {
                            next_dialog = Some(Dialog::Cancel { id: *id, name: name.clone(), reason: String::new() });
                        }
                        if ui.button(tr.t("board.change_visit")).clicked() {
                            let a = q.arrival(*id).ok().flatten();
                            next_dialog = Some(Dialog::Change {
                                id: *id,
                                name: name.clone(),
                                department: a.as_ref().map(|a| a.department.value.clone()).unwrap_or_default(),
                                doctor: String::new(),
                                reason: String::new(),
                            });
                        }
                        if ui.button(tr.t("dialog.close")).clicked() {
                            close = true;
                        }
                    });
                }
                Dialog::Cancel { id, name, reason } => {
                    ui.heading(tr.f("board.cancel_for", &[("name", name)]));
                    ui.horizontal_wrapped(|ui| {
                        for key in [
                            "board.reason_later",
                            "board.reason_wrong_dept",
                            "board.reason_wait",
                            "board.reason_doctor_off",
                        ] {
                            if widgets::toggle(ui, reason == tr.t(key), tr.t(key)).clicked() {
                                *reason = tr.t(key).to_string();
                            }
                        }
                    });
                    widgets::text_row(ui, tr.t("board.reason"), reason, tr.t("board.reason_hint"));
                    ui.horizontal(|ui| {
                        let ok = !reason.trim().is_empty();
                        if ui
                            .add_enabled(
                                ok,
                                egui::Button::new(RichText::new(tr.t("board.confirm_cancel")).color(theme::ALERT)),
                            )
                            .clicked()
                        {
                            cmd = Some(Command::MoveStep {
                                id: *id,
                                step: VisitStep::Cancelled,
                                reason: Some(reason.clone()),
                            });
                            close = true;
                        }
                        if ui.button(tr.t("dialog.back")).clicked() {
                            close = true;
                        }
                    });
                    if reason.trim().is_empty() {
                        ui.label(RichText::new(tr.t("board.reason_required")).color(theme::MUTED));
                    }
                }
                Dialog::Change { id, name, department, doctor, reason } => {
                    ui.heading(tr.f("board.change_for", &[("name", name)]));
                    let dept_text = refs.department(department).map_or(String::new(), |d| dept_name(tr, d));
                    widgets::row(ui, tr.t("register.department"), |ui| {
                        egui::ComboBox::from_id_salt("chg_dept")
                            .selected_text(dept_text)
                            .height(400.0)
                            .show_ui(ui, |ui| {
                                for d in &refs.departments {
                                    if ui.selectable_value(department, d.id.clone(), dept_name(tr, d)).clicked() {
                                        doctor.clear();
                                    }
                                }
                            })
                            .response
                    });
                    let on_duty = refs.doctors_on_duty(cx.today, Some(department.as_str()));
                    let doc_text =
                        refs.doctor(doctor).map_or_else(|| tr.t("register.no_doctor").to_string(), |d| d.name.clone());
                    widgets::row(ui, tr.t("register.doctor"), |ui| {
                        egui::ComboBox::from_id_salt("chg_doc")
                            .selected_text(doc_text)
                            .show_ui(ui, |ui| {
                                ui.selectable_value(doctor, String::new(), tr.t("register.no_doctor"));
                                for d in &on_duty {
                                    ui.selectable_value(doctor, d.id.clone(), format!("{} {}", d.name, d.title));
                                }
                            })
                            .response
                    });
                    widgets::text_row(ui, tr.t("board.reason"), reason, tr.t("board.reason_hint"));
                    ui.horizontal(|ui| {
                        let ok = !reason.trim().is_empty() && !department.is_empty();
                        if ui.add_enabled(ok, egui::Button::new(tr.t("board.confirm_change"))).clicked() {
                            let doc = Some(doctor.clone())
                                .filter(|d| !d.is_empty())
                                .map(|d| DoctorChoice { doctor: d, designated: false });
                            cmd = Some(Command::Change {
                                id: *id,
                                department: department.clone(),
                                doctor: doc,
                                reason: reason.clone(),
                            });
                            close = true;
                        }
                        if ui.button(tr.t("dialog.back")).clicked() {
                            close = true;
                        }
                    });
                }
            }
        });
        if modal.should_close() {
            close = true;
        }
        if let Some(d) = next_dialog {
            self.dialog = Some(d);
        } else if close {
            self.dialog = None;
        }
        cmd
    }
}

/// The locale key of a priority.
pub fn priority_key(p: Priority) -> &'static str {
    match p {
        Priority::Normal => "normal",
        Priority::Urgent => "urgent",
        Priority::Emergency => "emergency",
    }
}
