//! Follow-up calls (回访): the call worklist (overdue, due, upcoming), each call attempt with the department's
//! script, and the alert list of worrying conditions for department heads.
//!
//! The worklist is the site's: opening a task claims it, and every desk of the site shows it as being called by
//! that person until the call is recorded, the caller opens another task, or the claim grows stale. Opening a task
//! someone else holds asks before taking it over. Calls that clashed while desks were apart (two callers reached the
//! same patient; one discharge imported twice) are listed at the top, both sides kept.

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome};
use super::i18n::Tr;
use super::register::dept_name;
use super::{theme, widgets};
use crate::model::followup::DueState;
use crate::model::validate::mask_phone;
use crate::model::{
    CallAttempt, CallAttemptForm, CallOutcome, FollowupSource, FollowupTask, Moment, Rating, RecordId, ReferenceData,
    StaffRef, ValidationErrors,
};
use crate::queries::{HeldTask, WorklistAttention};

/// How often the claims are read again when nothing changed in the store (a claim grows stale by time alone).
const CLAIMS_REFRESH_MS: i64 = 30_000;

/// Follow-up screen state.
#[derive(Debug, Default)]
pub struct FollowupScreen {
    rows: Vec<FollowupTask>,
    worrying: Vec<(CallAttempt, Option<FollowupTask>)>,
    claims: std::collections::BTreeMap<RecordId, HeldTask>,
    claims_read: Moment,
    attention: WorklistAttention,
    loaded: Option<u64>,
    selected: Option<RecordId>,
    /// The task this screen claimed for the person signed in (let go of when another one is opened).
    held: Option<RecordId>,
    attempts: Vec<CallAttempt>,
    form: CallAttemptForm,
    errors: ValidationErrors,
    message: Option<(bool, String)>,
    import_path: String,
    importing: bool,
    import_result: Option<Result<crate::import::ImportReport, String>>,
    /// A case being taken for what the patient raised on the call: the grade and what they said.
    case_draft: Option<(Option<crate::model::CaseGrade>, String)>,
    /// For supervisors: (calls a spot check may still pick, spot checks made) over the last month, and when read.
    spot: Option<(usize, usize)>,
    spot_read: Option<Moment>,
}

/// How often a supervisor's spot-check counts are re-read.
const SPOT_REFRESH_MS: i64 = 60_000;

impl DeskScreen for FollowupScreen {
    /// The screen.
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (q, tr, version) = (cx.q, cx.tr, cx.version);
        if self.loaded != Some(version) {
            self.rows = q.open_followups().unwrap_or_default();
            self.worrying = q.worrying(7).unwrap_or_default();
            self.attempts = self.selected.map(|id| q.attempts_of(id).unwrap_or_default()).unwrap_or_default();
            self.attention = q.worklist_attention(7).unwrap_or_default();
            self.loaded = Some(version);
            self.claims_read = Moment(i64::MIN);
        }
        // The spot-check counts read a month of tasks: for supervisors only, at most once a minute (and after their
        // own spot check), not on every change the worklist sees.
        let spot = cx.role.is_some_and(|r| crate::access::allowed(r, crate::access::Action::SpotCheck));
        if spot && self.spot_read.is_none_or(|t| cx.now.0.saturating_sub(t.0) >= SPOT_REFRESH_MS) {
            self.spot = q.spot_check_status().ok();
            self.spot_read = Some(cx.now);
        }
        if cx.now.0.saturating_sub(self.claims_read.0) >= CLAIMS_REFRESH_MS {
            self.claims = q.claims().unwrap_or_default();
            self.claims_read = cx.now;
        }
        let refs = &cx.refs;
        let today = cx.today;
        let now_local = cx.now.local(cx.offset).time();
        let mut cmd = None;
        ui.horizontal(|ui| {
            ui.heading(tr.t("followup.title"));
            let hours: Vec<String> =
                refs.followup_policy.calling_hours.iter().map(|(a, b)| format!("{a}–{b}")).collect();
            if crate::policy::within_calling_hours(&refs.followup_policy.calling_hours, now_local) {
                ui.label(RichText::new(tr.f("followup.in_hours", &[("hours", &hours.join("，"))])).color(theme::OK));
            } else {
                ui.label(
                    RichText::new(tr.f("followup.out_of_hours", &[("hours", &hours.join("，"))])).color(theme::WARN),
                );
            }
        });
        if !self.worrying.is_empty() {
            egui::Frame::new().fill(theme::ALERT.linear_multiply(0.12)).inner_margin(8.0).show(ui, |ui| {
                ui.label(RichText::new(tr.t("followup.worrying_title")).color(theme::ALERT).strong());
                if self.worrying.len() > 3 {
                    ui.label(
                        RichText::new(tr.f("followup.worrying_more", &[("n", &self.worrying.len())]))
                            .size(theme::SMALL),
                    );
                }
                for (a, t) in self.worrying.iter().take(3) {
                    let (name, dept) = t.as_ref().map_or((String::new(), String::new()), |t| {
                        (
                            t.patient_name.clone(),
                            t.department
                                .as_deref()
                                .and_then(|d| refs.department(d))
                                .map_or(String::new(), |d| dept_name(tr, d)),
                        )
                    });
                    let head = t
                        .as_ref()
                        .and_then(|t| t.department.as_deref())
                        .and_then(|d| refs.department(d))
                        .and_then(|d| d.head.clone())
                        .unwrap_or_else(|| tr.t("followup.head").to_string());
                    ui.label(format!(
                        "{} {name} · {dept} → {head}：{}",
                        a.at.local(cx.offset).format("%m-%d %H:%M"),
                        a.notes.clone().unwrap_or_default()
                    ));
                }
            });
        }
        self.attention_ui(ui, cx);
        if let Some((ok, m)) = &self.message {
            ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
        }
        if let Some(c) = self.import_ui(ui, tr) {
            cmd = Some(c);
        }
        if cx.role.is_some_and(|r| crate::access::allowed(r, crate::access::Action::SpotCheck)) {
            ui.horizontal(|ui| {
                let (open, made) = self.spot.unwrap_or_default();
                let pct = refs.followup_policy.spot_check_pct;
                ui.label(tr.f("followup.spot_status", &[("open", &open), ("made", &made), ("pct", &pct)]));
                if ui.button(tr.t("followup.spot_check")).clicked() {
                    cmd = Some(Command::SpotCheck);
                }
            });
        }
        ui.separator();
        let total = ui.available_width();
        ui.horizontal_top(|ui| {
            widgets::column(ui, total * 0.42, |ui| {
                let pick = self.list_ui(ui, cx, today);
                if let Some(id) = pick {
                    widgets::viewed(cx, crate::model::RecordKind::FollowupTask, id);
                    self.selected = Some(id);
                    self.attempts = q.attempts_of(id).unwrap_or_default();
                    self.form = CallAttemptForm::default();
                    self.errors = ValidationErrors::default();
                    self.message = None;
                    self.open_task(cx, id);
                }
            });
            widgets::column(ui, ui.available_width(), |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("followup_detail")
                    .scroll_source(egui::scroll_area::ScrollSource::ALL)
                    .show(ui, |ui| {
                        if let Some(t) = self.selected.and_then(|id| self.rows.iter().find(|t| t.id == id)).cloned() {
                            cmd = self.detail_ui(ui, cx, &t);
                        } else {
                            ui.label(RichText::new(tr.t("followup.pick")).color(theme::MUTED));
                        }
                    });
            });
        });
        if let Some(c) = cmd {
            cx.send(c);
        }
    }

    /// Takes the result of a follow-up command.
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        let tr = reply.tr;
        if let Command::SpotCheck = reply.sent {
            self.spot_read = None;
            self.message = Some(match reply.outcome {
                Outcome::Done(_) => (true, tr.t("followup.spot_done").to_string()),
                Outcome::Invalid(_) => (false, tr.t("followup.spot_none").to_string()),
                Outcome::Failed(m) => (false, tr.f("app.write_failed", &[("error", m)])),
                Outcome::Pending => return,
            });
            return;
        }
        if let (Command::CaseFromCall { .. }, Outcome::Done(id)) = (reply.sent, reply.outcome) {
            // The call itself is still to be recorded: what is typed in the call form stays.
            self.case_draft = None;
            let no = id.map(RecordId::short).unwrap_or_default();
            self.message = Some((true, tr.f("followup.case_taken", &[("no", &no)])));
            return;
        }
        if let (Command::CaseFromCall { .. }, Outcome::Invalid(e)) = (reply.sent, reply.outcome) {
            let text = e.0.first().map_or_else(String::new, |f| {
                let field = if f.field == "facts" { tr.t("followup.case_facts") } else { f.field };
                format!("{field}：{}", widgets::problem_text(tr, &f.problem))
            });
            self.message = Some((false, text));
            return;
        }
        if let (Command::Claim { .. } | Command::Release { .. }, Outcome::Done(_)) = (reply.sent, reply.outcome) {
            // Taking or letting go of a task keeps what is typed; the worklist re-reads the claims.
            self.claims_read = Moment(i64::MIN);
            return;
        }
        if let (Command::Claim { task }, _) = (reply.sent, reply.outcome)
            && self.held == Some(*task)
        {
            self.held = None;
        }
        match reply.outcome {
            Outcome::Done(_) => {
                // The recorded call ends this person's claim on the task.
                self.held = None;
                self.form = CallAttemptForm::default();
                self.errors = ValidationErrors::default();
                self.message = Some((true, tr.t("followup.saved").to_string()));
            }
            Outcome::Invalid(e) => {
                self.errors = e.clone();
                self.message = Some((false, tr.t("register.fix_errors").to_string()));
            }
            Outcome::Failed(m) => {
                self.importing = false;
                self.message = Some((false, tr.f("app.write_failed", &[("error", m)])));
            }
            Outcome::Pending => {}
        }
    }
}

impl FollowupScreen {
    /// Opens a task to call it: claims it for the person signed in, unless someone else holds it (the detail then
    /// asks before taking it over), and lets go of the task held before.
    fn open_task(&mut self, cx: &ScreenCtx<'_>, id: RecordId) {
        if let Some(prev) = self.held.take()
            && prev != id
        {
            cx.send(Command::Release { task: prev });
        }
        let taken_by_other = self.claims.get(&id).is_some_and(|h| Some(&h.by) != cx.me.as_ref());
        if !taken_by_other {
            self.held = Some(id);
            cx.send(Command::Claim { task: id });
        }
    }

    /// "Being called by X (at desk D) since HH:MM", or "you are calling" for the person signed in.
    fn held_label(cx: &ScreenCtx<'_>, h: &HeldTask) -> (String, egui::Color32) {
        let tr = cx.tr;
        if Some(&h.by) == cx.me.as_ref() {
            return (tr.t("followup.held_by_you").to_string(), theme::OK);
        }
        let name = staff_name(&cx.refs, &h.by);
        let since = h.at.local(cx.offset).format("%H:%M").to_string();
        let text = match &h.desk {
            Some(desk) => tr.f("followup.held_at", &[("name", &name), ("desk", desk), ("since", &since)]),
            None => tr.f("followup.held_here", &[("name", &name), ("since", &since)]),
        };
        (text, theme::WARN)
    }

    fn list_ui(&self, ui: &mut Ui, cx: &ScreenCtx<'_>, today: chrono::NaiveDate) -> Option<RecordId> {
        let (tr, refs) = (cx.tr, &*cx.refs);
        let mut pick = None;
        egui::ScrollArea::vertical().id_salt("followup_list").scroll_source(egui::scroll_area::ScrollSource::ALL).show(
            ui,
            |ui| {
                for (state, key, color) in [
                    (DueState::Overdue, "followup.overdue", theme::ALERT),
                    (DueState::Due, "followup.due", theme::OK),
                    (DueState::Upcoming, "followup.upcoming", theme::MUTED),
                ] {
                    let tasks: Vec<&FollowupTask> = self
                        .rows
                        .iter()
                        .filter(|t| t.state_on(today) == state)
                        .filter(|t| state != DueState::Upcoming || (t.due_from - today).num_days() <= 3)
                        .collect();
                    ui.label(RichText::new(tr.f(key, &[("n", &tasks.len())])).color(color).strong());
                    for t in tasks {
                        ui.horizontal(|ui| {
                            let who = if t.patient_name.is_empty() {
                                tr.t("followup.anonymous").to_string()
                            } else {
                                t.patient_name.clone()
                            };
                            ui.label(RichText::new(&who).strong());
                            ui.label(RichText::new(mask_phone(&t.phone)).color(theme::MUTED));
                            ui.label(tr.k("fsource", t.source.kind_key()));
                            if let Some(d) = t.department.as_deref().and_then(|d| refs.department(d)) {
                                ui.label(dept_name(tr, d));
                            }
                            ui.label(
                                RichText::new(format!("{}~{}", t.due_from.format("%m-%d"), t.due_to.format("%m-%d")))
                                    .size(theme::SMALL)
                                    .color(theme::MUTED),
                            );
                            if let Some(h) = self.claims.get(&t.id) {
                                let (text, color) = Self::held_label(cx, h);
                                ui.label(RichText::new(text.clone()).color(color).size(theme::SMALL));
                            }
                            if ui
                                .button(tr.t("followup.call"))
                                .accessible_name(format!("{} {who}", tr.t("followup.call")))
                                .clicked()
                            {
                                pick = Some(t.id);
                            }
                        });
                    }
                    ui.add_space(8.0);
                }
            },
        );
        pick
    }

    fn detail_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>, t: &FollowupTask) -> Option<Command> {
        let (tr, refs) = (cx.tr, &cx.refs);
        let mut cmd = None;
        let who =
            if t.patient_name.is_empty() { tr.t("followup.anonymous").to_string() } else { t.patient_name.clone() };
        ui.horizontal(|ui| {
            ui.heading(who);
            widgets::phone(ui, cx, crate::model::RecordKind::FollowupTask, t.id, &t.phone);
        });
        if let Some(h) = self.claims.get(&t.id) {
            let (text, color) = Self::held_label(cx, h);
            ui.horizontal(|ui| {
                ui.label(RichText::new(text.clone()).color(color).strong());
                if Some(&h.by) != cx.me.as_ref() && ui.button(tr.t("followup.take_over")).clicked() {
                    self.held = Some(t.id);
                    cmd = Some(Command::Claim { task: t.id });
                }
            });
        }
        let mut info = vec![tr.k("fsource", t.source.kind_key()).to_string()];
        match &t.source {
            FollowupSource::Discharge { discharged_on, diagnosis, .. } => {
                info.push(tr.f("followup.discharged", &[("date", discharged_on)]));
                if let Some(d) = diagnosis {
                    info.push(d.clone());
                }
            }
            FollowupSource::DischargeSecond { discharged_on, .. } => {
                info.push(tr.f("followup.discharged", &[("date", discharged_on)]));
            }
            FollowupSource::Chronic { discharged_on, round, .. } => {
                info.push(tr.f("followup.discharged", &[("date", discharged_on)]));
                let rounds = cx.refs.followup_policy.chronic.as_ref().map_or(*round, |p| p.rounds);
                info.push(tr.f("followup.chronic_round", &[("n", round), ("of", &rounds)]));
            }
            _ => {}
        }
        if let Some(d) = t.department.as_deref().and_then(|d| refs.department(d)) {
            info.push(dept_name(tr, d));
        }
        info.push(tr.f("followup.window", &[("from", &t.due_from), ("to", &t.due_to)]));
        ui.label(info.join(" · "));
        if let FollowupSource::Feedback { .. } = t.source {
            if ui.button(tr.t("followup.promote")).clicked() {
                cmd = Some(Command::PromoteToCase { task: t.id });
            }
        } else if let Some(c) = self.case_ui(ui, cx, t) {
            cmd = Some(c);
        }
        // 出院病人随访制度 4: a patient on long-term treatment or slow to recover is called on the chronic plan.
        if matches!(t.source, FollowupSource::Discharge { .. } | FollowupSource::DischargeSecond { .. })
            && refs.followup_policy.chronic.is_some()
            && ui.button(tr.t("followup.enrol_chronic")).on_hover_text(tr.t("followup.enrol_chronic_hint")).clicked()
        {
            cmd = Some(Command::EnrolChronic { task: t.id });
        }
        if !self.attempts.is_empty() {
            ui.label(RichText::new(tr.t("followup.attempts")).strong());
            for a in &self.attempts {
                ui.label(
                    RichText::new(format!(
                        "{} {} · {}",
                        a.at.local(cx.offset).format("%m-%d %H:%M"),
                        a.by,
                        tr.k("outcome", a.outcome.key())
                    ))
                    .size(theme::SMALL),
                );
            }
        }
        ui.separator();
        let script = refs
            .followup_policy
            .scripts
            .iter()
            .find(|s| t.department.as_deref() == Some(s.department.as_str()))
            .or_else(|| refs.followup_policy.scripts.iter().find(|s| s.department == "*"));
        if let Some(s) = script {
            ui.label(RichText::new(tr.t("followup.script")).strong());
            for (i, p) in s.points.iter().enumerate() {
                ui.label(format!("{}. {p}", i + 1));
            }
        }
        ui.separator();
        let f = &mut self.form;
        let outcomes: Vec<(CallOutcome, &str)> =
            CallOutcome::ALL.iter().map(|o| (*o, tr.k("outcome", o.key()))).collect();
        widgets::label_row(ui, tr.t("followup.outcome"), |ui| {
            widgets::choice(ui, &mut f.outcome, &outcomes);
        });
        widgets::field_error(ui, tr, &self.errors, "outcome");
        if f.outcome == Some(CallOutcome::Reached) {
            widgets::text_row(ui, tr.t("followup.recovery"), &mut f.recovery, "");
            widgets::text_row(ui, tr.t("followup.medication"), &mut f.medication, "");
            ui.horizontal(|ui| {
                ui.add_space(theme::LABEL_WIDTH + 10.0);
                ui.checkbox(&mut f.guidance_given, tr.t("followup.guidance"));
                ui.checkbox(&mut f.revisit_reminder, tr.t("followup.revisit"));
            });
            let ratings: Vec<(Rating, &str)> = Rating::ALL.iter().map(|r| (*r, tr.k("rating", r.key()))).collect();
            widgets::label_row(ui, tr.t("followup.satisfaction"), |ui| {
                widgets::choice(ui, &mut f.satisfaction, &ratings);
            });
            widgets::text_row(ui, tr.t("followup.suggestions"), &mut f.suggestions, "");
            ui.horizontal(|ui| {
                ui.add_space(theme::LABEL_WIDTH + 10.0);
                ui.checkbox(&mut f.worrying, RichText::new(tr.t("followup.worrying")).color(theme::ALERT));
            });
        }
        widgets::field_error(ui, tr, &self.errors, "satisfaction");
        widgets::text_row(ui, tr.t("followup.notes"), &mut f.notes, "");
        widgets::field_error(ui, tr, &self.errors, "notes");
        if ui
            .add(
                egui::Button::new(RichText::new(tr.t("followup.save")).strong())
                    .fill(theme::ACCENT.linear_multiply(0.25))
                    .min_size(egui::vec2(200.0, theme::TOUCH)),
            )
            .clicked()
        {
            cmd = Some(Command::Attempt { task: t.id, form: Box::new(self.form.clone()) });
        }
        cmd
    }

    /// A case for what the patient raises during the call, in one tap: the patient, phone and department come from
    /// the task; the caller picks the grade and says what was raised (prefilled from the call's suggestions).
    fn case_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>, t: &FollowupTask) -> Option<Command> {
        let tr = cx.tr;
        let Some((grade, facts)) = &mut self.case_draft else {
            if ui.button(tr.t("followup.case_from_call")).clicked() {
                let heard = [self.form.suggestions.trim(), self.form.notes.trim()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("；");
                self.case_draft = Some((None, heard));
            }
            return None;
        };
        let (mut cmd, mut cancel, mut no_grade) = (None, false, false);
        egui::Frame::new().fill(theme::WARN.linear_multiply(0.10)).inner_margin(8.0).show(ui, |ui| {
            ui.label(RichText::new(tr.t("followup.case_from_call")).strong());
            let grades: Vec<(crate::model::CaseGrade, &str)> =
                crate::model::CaseGrade::ALL.iter().map(|g| (*g, tr.k("grade", g.key()))).collect();
            widgets::label_row(ui, tr.t("followup.case_grade"), |ui| {
                widgets::choice(ui, grade, &grades);
            });
            widgets::text_row(ui, tr.t("followup.case_facts"), facts, "");
            ui.horizontal(|ui| {
                if ui.button(RichText::new(tr.t("followup.case_take")).strong()).clicked() {
                    match grade {
                        Some(g) => cmd = Some(Command::CaseFromCall { task: t.id, grade: *g, facts: facts.clone() }),
                        None => no_grade = true,
                    }
                }
                cancel = ui.button(tr.t("followup.case_cancel")).clicked();
            });
        });
        if no_grade {
            self.message = Some((false, tr.t("followup.case_pick_grade").to_string()));
        }
        if cancel {
            self.case_draft = None;
        }
        cmd
    }

    /// The worklist's clashes, both sides shown: tasks two calls closed, and tasks made twice from one source.
    fn attention_ui(&self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let a = &self.attention;
        if a.double_calls.is_empty() && a.duplicate_tasks.is_empty() {
            return;
        }
        let tr = cx.tr;
        egui::Frame::new().fill(theme::WARN.linear_multiply(0.12)).inner_margin(8.0).show(ui, |ui| {
            ui.label(RichText::new(tr.t("followup.attention_title")).color(theme::WARN).strong());
            for (task, calls) in &a.double_calls {
                let who = task.as_ref().map_or_else(String::new, |t| t.patient_name.clone());
                let list: Vec<String> = calls
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {} · {}",
                            c.at.local(cx.offset).format("%m-%d %H:%M"),
                            staff_name(&cx.refs, &c.by),
                            tr.k("outcome", c.outcome.key())
                        )
                    })
                    .collect();
                ui.label(tr.f("followup.double_call", &[("name", &who), ("calls", &list.join("；"))]));
            }
            for tasks in &a.duplicate_tasks {
                let who = tasks.first().map_or_else(String::new, |t| t.patient_name.clone());
                ui.label(tr.f("followup.duplicate_task", &[("name", &who), ("n", &tasks.len())]));
            }
            ui.label(RichText::new(tr.t("followup.attention_hint")).color(theme::MUTED).size(theme::SMALL));
        });
    }

    fn import_ui(&mut self, ui: &mut Ui, tr: Tr) -> Option<Command> {
        let mut cmd = None;
        egui::CollapsingHeader::new(tr.t("followup.import")).id_salt("import").show(ui, |ui| {
            ui.label(RichText::new(tr.t("followup.import_hint")).color(theme::MUTED).size(theme::SMALL));
            ui.horizontal(|ui| {
                widgets::text_row(ui, tr.t("followup.import_file"), &mut self.import_path, "D:\\HIS\\出院名单.xlsx");
                let ok = !self.importing && !self.import_path.trim().is_empty();
                if ui.add_enabled(ok, egui::Button::new(tr.t("followup.import_run"))).clicked() {
                    self.importing = true;
                    self.import_result = None;
                    cmd = Some(Command::ImportDischarges { path: self.import_path.trim().into() });
                }
                if self.importing {
                    ui.spinner();
                }
            });
            match &self.import_result {
                None => {}
                Some(Err(e)) => {
                    ui.colored_label(theme::ALERT, e);
                }
                Some(Ok(r)) => {
                    let color = if r.errors.is_empty() { theme::OK } else { theme::WARN };
                    ui.colored_label(
                        color,
                        tr.f(
                            "followup.import_done",
                            &[("n", &r.imported), ("skipped", &r.already_imported), ("bad", &r.errors.len())],
                        ),
                    );
                    for e in r.errors.iter().take(20) {
                        ui.label(
                            RichText::new(tr.f("followup.import_line", &[("line", &e.line), ("message", &e.message)]))
                                .color(theme::ALERT)
                                .size(theme::SMALL),
                        );
                    }
                }
            }
        });
        cmd
    }

    /// Takes the result of an import run in the background.
    pub fn on_import(&mut self, r: Result<crate::import::ImportReport, String>) {
        self.importing = false;
        self.import_result = Some(r);
        self.loaded = None;
    }
}

/// A staff member's name from the reference data, or the id when the account is not listed (a local account).
fn staff_name(refs: &ReferenceData, who: &StaffRef) -> String {
    refs.staff.iter().find(|s| s.id == who.0).map_or_else(|| who.0.clone(), |s| s.name.clone())
}
