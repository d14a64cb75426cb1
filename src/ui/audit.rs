//! The audit log screen (supervisors and administrators): who viewed, revealed, changed, exported or printed which
//! record, filtered by period, action and staff member; the chain's verification; and the CSV export (itself put
//! on the log).

use chrono::{Days, NaiveDate};
use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome, Queries};
use super::i18n::Tr;
use super::{theme, widgets};
use crate::model::{AuditAction, AuditEntry};

/// A detail in the screen's language: the fixed details the app writes (`sign out`, `move_step:registered`,
/// `case:resolve`, …) are translated; counts and periods (exports) are shown as written.
fn detail_text(tr: Tr, detail: &str) -> String {
    let key = |s: &str| s.replace(' ', "_");
    if let Some(t) = tr.k_opt("auditdetail", &key(detail)) {
        return t.to_string();
    }
    match detail.split_once(':') {
        Some(("move_step", step)) => {
            format!("{}：{}", tr.k("auditdetail", "move_step"), tr.k_opt("step", step).unwrap_or(step))
        }
        Some(("case", action)) => {
            format!("{}：{}", tr.k("auditdetail", "case_action"), tr.k_opt("caseaction", action).unwrap_or(action))
        }
        Some(("queue_alert", n)) => format!("{}：{n}", tr.k("auditdetail", "queue_alert")),
        Some(("appointment", action)) => format!(
            "{}：{}",
            tr.k("auditdetail", "appointment_action"),
            tr.k_opt("apptaction", action).unwrap_or(action)
        ),
        _ => detail.to_string(),
    }
}

/// The most entries listed at once (the export has them all).
const MAX_ROWS: usize = 5_000;

/// Audit screen state.
#[derive(Debug, Default)]
pub struct AuditScreen {
    from: String,
    to: String,
    action: Option<AuditAction>,
    actor: String,
    rows: Vec<AuditEntry>,
    /// The period loaded, once a query ran.
    loaded: Option<(NaiveDate, NaiveDate)>,
    verified: Option<Result<(u64, Vec<String>), String>>,
    message: Option<(bool, String)>,
}

impl AuditScreen {
    /// The entries listed now (tests).
    pub fn rows(&self) -> &[AuditEntry] {
        &self.rows
    }

    fn period(&self) -> Option<(NaiveDate, NaiveDate)> {
        let parse = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
        let (from, to) = (parse(&self.from)?, parse(&self.to)?);
        (from <= to).then_some((from, to))
    }

    fn load(&mut self, q: &dyn Queries, tr: Tr) -> Option<Command> {
        let Some((from, to)) = self.period() else {
            self.message = Some((false, tr.t("audit.bad_range").to_string()));
            return None;
        };
        match q.audit_entries(from, to) {
            Ok(rows) => {
                self.rows = rows;
                self.loaded = Some((from, to));
                self.message = None;
                // Reading the log is itself on the log.
                Some(Command::View { target: None, what: "audit_log" })
            }
            Err(e) => {
                self.message = Some((false, e.to_string()));
                None
            }
        }
    }

    /// The screen's body.
    fn body(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) -> Option<Command> {
        let (q, tr) = (cx.q, cx.tr);
        let mut cmd = None;
        if self.from.is_empty() && self.to.is_empty() {
            let today = cx.today;
            self.from = today.checked_sub_days(Days::new(6)).unwrap_or(today).to_string();
            self.to = today.to_string();
            cmd = self.load(q, tr);
        }
        ui.heading(tr.t("audit.title"));
        ui.horizontal_wrapped(|ui| {
            let l = ui.label(tr.t("audit.from"));
            ui.add(egui::TextEdit::singleline(&mut self.from).desired_width(130.0).hint_text("YYYY-MM-DD"))
                .labelled_by(l.id);
            let l = ui.label(tr.t("audit.to"));
            ui.add(egui::TextEdit::singleline(&mut self.to).desired_width(130.0).hint_text("YYYY-MM-DD"))
                .labelled_by(l.id);
            let l = ui.label(tr.t("audit.action"));
            let all = tr.t("audit.all_actions");
            egui::ComboBox::from_id_salt("audit_action")
                .width(170.0)
                .selected_text(self.action.map_or(all, |a| tr.k("auditaction", a.key())))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.action, None, all);
                    for a in AuditAction::ALL {
                        ui.selectable_value(&mut self.action, Some(a), tr.k("auditaction", a.key()));
                    }
                })
                .response
                .labelled_by(l.id);
            let l = ui.label(tr.t("audit.actor"));
            ui.add(egui::TextEdit::singleline(&mut self.actor).desired_width(100.0)).labelled_by(l.id);
            if ui.add(egui::Button::new(tr.t("audit.query")).min_size(egui::vec2(80.0, theme::TOUCH))).clicked() {
                cmd = self.load(q, tr);
            }
            if ui.button(tr.t("audit.verify")).clicked() {
                self.verified = Some(q.verify_audit().map_err(|e| e.to_string()));
            }
            if ui.button(tr.t("audit.export")).clicked() {
                match self.period() {
                    Some((from, to)) => cmd = Some(Command::ExportAudit { from, to }),
                    None => self.message = Some((false, tr.t("audit.bad_range").to_string())),
                }
            }
        });
        match &self.verified {
            Some(Ok((n, p))) if p.is_empty() => {
                ui.colored_label(theme::OK, tr.f("audit.chain_ok", &[("n", n)]));
            }
            Some(Ok((_, p))) => {
                ui.colored_label(theme::ALERT, tr.f("audit.chain_broken", &[("n", &p.len())]));
                for line in p.iter().take(20) {
                    ui.label(RichText::new(line).color(theme::ALERT).size(theme::SMALL));
                }
            }
            Some(Err(e)) => {
                ui.colored_label(theme::ALERT, e);
            }
            None => {}
        }
        if let Some((ok, m)) = &self.message {
            ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
        }
        ui.separator();
        self.table(ui, cx);
        cmd
    }

    fn table(&self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (q, tr) = (cx.q, cx.tr);
        let actor = self.actor.trim();
        let shown: Vec<&AuditEntry> = self
            .rows
            .iter()
            .filter(|e| self.action.is_none_or(|a| e.action == a))
            .filter(|e| actor.is_empty() || e.actor.0.contains(actor))
            .take(MAX_ROWS)
            .collect();
        ui.label(RichText::new(tr.f("audit.count", &[("n", &shown.len())])).color(theme::MUTED));
        if shown.is_empty() {
            return;
        }
        let offset = cx.offset;
        let names: std::collections::BTreeMap<String, String> =
            q.staff().unwrap_or_default().into_iter().map(|s| (s.id, s.name)).collect();
        let row_h = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
        widgets::compact(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("audit_rows").auto_shrink([false, false]).show_rows(
                ui,
                row_h,
                shown.len(),
                |ui, range| {
                    egui::Grid::new("audit_grid").striped(true).num_columns(5).show(ui, |ui| {
                        for e in &shown[range] {
                            ui.label(e.at.local(offset).format("%Y-%m-%d %H:%M:%S").to_string());
                            let who = names
                                .get(&e.actor.0)
                                .map_or_else(|| e.actor.0.clone(), |n| format!("{n} ({})", e.actor.0));
                            ui.label(who);
                            let mut what = RichText::new(tr.k("auditaction", e.action.key()));
                            match e.action {
                                AuditAction::Reveal | AuditAction::Export | AuditAction::Print => {
                                    what = what.color(theme::WARN);
                                }
                                AuditAction::Refused | AuditAction::SignInFailed => what = what.color(theme::ALERT),
                                _ => {}
                            }
                            ui.label(what);
                            ui.label(e.target.map_or_else(String::new, |t| {
                                format!("{} #{}", tr.k("recordkind", t.kind.name()), t.id.short())
                            }));
                            ui.label(RichText::new(detail_text(tr, &e.detail)).color(theme::MUTED));
                            ui.end_row();
                        }
                    });
                },
            );
        });
    }
}

impl DeskScreen for AuditScreen {
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        if let Some(c) = self.body(ui, cx) {
            cx.send(c);
        }
    }

    /// Shows what applying the screen's command did (the note: the app's message for a file written).
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        match reply.outcome {
            Outcome::Done(_) => {
                if let Some(m) = &reply.note {
                    self.message = Some((true, m.clone()));
                }
            }
            Outcome::Failed(m) => self.message = Some((false, reply.tr.f("app.write_failed", &[("error", m)]))),
            Outcome::Invalid(_) | Outcome::Pending => {}
        }
    }
}
