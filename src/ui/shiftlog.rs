//! The shift log (交班): write the handover or the day's work log, and read what the previous shifts of the whole
//! site handed over — the next shift marks each handover read (接班), and the count of unread handovers shows at
//! the top.

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome};
use super::{theme, widgets};
use crate::model::{LogKind, ShiftLog, ShiftLogForm, ValidationErrors};

/// Days of entries listed.
const DAYS: u32 = 7;

/// Shift log screen state.
#[derive(Debug, Default)]
pub struct ShiftLogScreen {
    form: ShiftLogForm,
    errors: ValidationErrors,
    message: Option<(bool, String)>,
    entries: Vec<ShiftLog>,
    loaded: Option<u64>,
}

impl ShiftLogScreen {
    /// The form as typed (tests fill it as a guide would).
    pub fn form_mut(&mut self) -> &mut ShiftLogForm {
        &mut self.form
    }
}

impl DeskScreen for ShiftLogScreen {
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let tr = cx.tr;
        if self.loaded != Some(cx.version) {
            self.entries = cx.q.shift_logs(DAYS).unwrap_or_default();
            self.loaded = Some(cx.version);
        }
        ui.heading(tr.t("shiftlog.title"));
        let unread = cx.me.as_ref().map_or(0, |me| {
            self.entries.iter().filter(|e| e.kind == LogKind::Handover && e.by != *me && !e.read_by(me)).count()
        });
        if unread > 0 {
            ui.label(RichText::new(tr.f("shiftlog.unread", &[("n", &unread)])).strong().color(theme::WARN));
        }
        let total = ui.available_width();
        let mut cmd = None;
        ui.horizontal_top(|ui| {
            widgets::column(ui, total * 0.42, |ui| self.form_ui(ui, cx, &mut cmd));
            widgets::column(ui, ui.available_width(), |ui| self.list_ui(ui, cx, &mut cmd));
        });
        if let Some(c) = cmd {
            cx.send(c);
        }
    }

    fn on_outcome(&mut self, reply: &Reply<'_>) {
        let tr = reply.tr;
        match (reply.sent, reply.outcome) {
            (Command::WriteLog(_), Outcome::Done(_)) => {
                *self = ShiftLogScreen::default();
                self.message = Some((true, tr.t("shiftlog.saved").to_string()));
            }
            (Command::ReadLog { .. }, Outcome::Done(_)) => {
                self.message = Some((true, tr.t("shiftlog.marked").to_string()));
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

impl ShiftLogScreen {
    fn form_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>, cmd: &mut Option<Command>) {
        let tr = cx.tr;
        let f = &mut self.form;
        let kinds: Vec<(LogKind, &str)> = LogKind::ALL.iter().map(|k| (*k, tr.k("logkind", k.key()))).collect();
        widgets::label_row(ui, tr.t("shiftlog.kind"), |ui| {
            widgets::choice(ui, &mut f.kind, &kinds);
        });
        widgets::field_error(ui, tr, &self.errors, "kind");
        for (label, hint, value, field, rows) in [
            ("shiftlog.summary", "shiftlog.summary_hint", &mut f.summary, "summary", 5),
            ("shiftlog.pending", "shiftlog.pending_hint", &mut f.pending, "pending", 4),
            ("shiftlog.opinions", "shiftlog.opinions_hint", &mut f.opinions, "opinions", 3),
        ] {
            widgets::row(ui, tr.t(label), |ui| {
                ui.add(
                    egui::TextEdit::multiline(value)
                        .desired_rows(rows)
                        .desired_width(theme::INPUT_WIDTH + 60.0)
                        .hint_text(tr.t(hint)),
                )
            });
            widgets::field_error(ui, tr, &self.errors, field);
        }
        ui.horizontal(|ui| {
            ui.add_space(theme::LABEL_WIDTH + 12.0);
            let submit = egui::Button::new(RichText::new(tr.t("shiftlog.submit")).strong())
                .fill(theme::ACCENT.linear_multiply(0.25));
            if ui.add_sized([180.0, theme::TOUCH], submit).clicked() {
                *cmd = Some(Command::WriteLog(Box::new(self.form.clone())));
            }
        });
        if let Some((ok, m)) = &self.message {
            ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
        }
    }

    fn list_ui(&self, ui: &mut Ui, cx: &ScreenCtx<'_>, cmd: &mut Option<Command>) {
        let tr = cx.tr;
        ui.label(RichText::new(tr.f("shiftlog.recent", &[("days", &DAYS)])).strong());
        if self.entries.is_empty() {
            ui.label(RichText::new(tr.t("shiftlog.none")).color(theme::MUTED));
        }
        let names = |who: &crate::model::StaffRef| {
            cx.refs.staff_member(&who.0).map_or_else(|| who.0.clone(), |s| s.name.clone())
        };
        egui::ScrollArea::vertical().id_salt("shiftlog").show(ui, |ui| {
            for e in &self.entries {
                ui.separator();
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new(tr.k("logkind", e.kind.key())).strong().color(theme::ACCENT));
                    let when = e.at.local(cx.offset).format("%m-%d %H:%M").to_string();
                    let shift = e.shift.map(|s| tr.k("session", s.key())).unwrap_or_default();
                    ui.label(format!("{when} {shift} {}", names(&e.by)));
                });
                ui.label(&e.summary);
                for p in &e.pending {
                    ui.label(RichText::new(format!("• {p}")).color(theme::WARN));
                }
                if let Some(o) = &e.opinions {
                    ui.label(RichText::new(format!("{}：{o}", tr.t("shiftlog.opinions"))).color(theme::MUTED));
                }
                if e.kind == LogKind::Handover {
                    ui.horizontal_wrapped(|ui| {
                        if e.reads.is_empty() {
                            ui.label(RichText::new(tr.t("shiftlog.not_read")).color(theme::MUTED));
                        } else {
                            let who: Vec<String> = e.reads.iter().map(|r| names(&r.by)).collect();
                            ui.label(
                                RichText::new(tr.f("shiftlog.read_by", &[("who", &who.join("、"))])).color(theme::OK),
                            );
                        }
                        let mine = cx.me.as_ref().is_some_and(|me| *me == e.by || e.read_by(me));
                        if !mine && ui.button(tr.t("shiftlog.mark_read")).clicked() {
                            *cmd = Some(Command::ReadLog { id: e.id });
                        }
                    });
                }
            }
        });
    }
}
