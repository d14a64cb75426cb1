//! Complaints (客诉): take a case, work it through its steps with every step kept in its history, and watch the
//! lists that matter — due today, overdue, by department, by grade.

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{CaseCommand, Command, Outcome};
use super::i18n::Tr;
use super::register::dept_name;
use super::{theme, widgets};

use crate::model::{
    Case, CaseChannel, CaseForm, CaseGrade, CaseStatus, Rating, RecordId, ReferenceData, ValidationErrors,
};

/// Which cases the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseFilter {
    /// Open cases due today.
    DueToday,
    /// Open cases past their deadline.
    Overdue,
    /// Every open case.
    #[default]
    Open,
    /// Every case of the last 90 days.
    Recent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActionKind {
    Assign,
    Investigate,
    Resolve,
    NotEstablished,
    Notify,
    Close,
    Escalate,
    ReferLegal,
    Reopen,
    Note,
    Propose,
    Approve,
    Improve,
    ImproveDone,
}

impl ActionKind {
    fn key(self) -> &'static str {
        match self {
            ActionKind::Assign => "cases.act_assign",
            ActionKind::Investigate => "cases.act_investigate",
            ActionKind::Resolve => "cases.act_resolve",
            ActionKind::NotEstablished => "cases.act_not_established",
            ActionKind::Notify => "cases.act_notify",
            ActionKind::Close => "cases.act_close",
            ActionKind::Escalate => "cases.act_escalate",
            ActionKind::ReferLegal => "cases.act_legal",
            ActionKind::Reopen => "cases.act_reopen",
            ActionKind::Note => "cases.act_note",
            ActionKind::Propose => "cases.act_propose",
            ActionKind::Approve => "cases.act_approve",
            ActionKind::Improve => "cases.act_improve",
            ActionKind::ImproveDone => "cases.act_improve_done",
        }
    }

    /// The permission an action needs (see `crate::access`).
    fn needs(self) -> crate::access::Action {
        match self {
            ActionKind::Escalate | ActionKind::ReferLegal | ActionKind::Reopen => crate::access::Action::EscalateCase,
            ActionKind::Approve => crate::access::Action::ApproveCase,
            _ => crate::access::Action::WorkCase,
        }
    }

    /// The actions that make sense at a status.
    fn available(status: CaseStatus) -> Vec<ActionKind> {
        use ActionKind as A;
        match status {
            CaseStatus::Received => {
                vec![A::Assign, A::Investigate, A::Resolve, A::NotEstablished, A::Escalate, A::ReferLegal, A::Note]
            }
            CaseStatus::Assigned => {
                vec![A::Investigate, A::Assign, A::Resolve, A::NotEstablished, A::Escalate, A::ReferLegal, A::Note]
            }
            CaseStatus::Investigating => {
                vec![A::Resolve, A::NotEstablished, A::Assign, A::Escalate, A::ReferLegal, A::Note]
            }
            CaseStatus::Resolved | CaseStatus::NotEstablished => {
                vec![A::Notify, A::Close, A::Escalate, A::ReferLegal, A::Note]
            }
            CaseStatus::Notified => vec![A::Close, A::ReferLegal, A::Note],
            CaseStatus::Closed | CaseStatus::ReferredLegal => vec![A::Reopen, A::Note],
        }
    }

    /// The actions offered on a case: those of its status, with 批转 where the policy asks for it (the receiver
    /// proposes the department, a leader approves it — or, being the leader, sends it at once) and the improvement
    /// measures (整改) at any status.
    fn offered(c: &Case, refs: &ReferenceData, leader: bool) -> Vec<ActionKind> {
        use ActionKind as A;
        let mut v = Self::available(c.current());
        if refs.case_policy.approval_grades.contains(&c.grade.value) {
            for a in &mut v {
                if *a == A::Assign {
                    *a = if leader { A::Approve } else { A::Propose };
                }
            }
        }
        if c.awaiting_approval().is_some() && !v.contains(&A::Approve) {
            v.insert(0, A::Approve);
        }
        let at = v.iter().position(|a| *a == A::Note).unwrap_or(v.len());
        v.insert(at, A::Improve);
        if c.improvements().iter().any(|i| i.done.is_none()) {
            v.insert(at + 1, A::ImproveDone);
        }
        v
    }
}

/// Cases screen state.
#[derive(Debug, Default)]
pub struct CasesScreen {
    filter: CaseFilter,
    department: Option<String>,
    grade: Option<CaseGrade>,
    rows: Vec<Case>,
    loaded: Option<(u64, CaseFilter)>,
    selected: Option<RecordId>,
    intake: Option<CaseForm>,
    errors: ValidationErrors,
    action: Option<ActionKind>,
    text1: String,
    text2: String,
    text3: String,
    choice_dept: String,
    choice_staff: String,
    choice_grade: Option<CaseGrade>,
    choice_rating: Option<Rating>,
    choice_plan: Option<guidedesk_sync::Hlc>,
    message: Option<(bool, String)>,
    role: Option<crate::model::reference::Role>,
}

impl DeskScreen for CasesScreen {
    /// The screen. Only the case actions the context's role may do are offered.
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        if self.role != cx.role {
            self.role = cx.role;
            self.action = None;
        }
        let (q, tr, version) = (cx.q, cx.tr, cx.version);
        // A department head sees its department's cases only.
        let head = cx.role == Some(crate::model::reference::Role::DepartmentHead);
        if head {
            self.department.clone_from(&cx.department);
            if self.department.is_none() {
                self.department = Some(String::new());
            }
        }
        if self.loaded != Some((version, self.filter)) {
            let r = match self.filter {
                CaseFilter::Recent => q.recent_cases(90),
                _ => q.open_cases(),
            };
            match r {
                Ok(rows) => self.rows = rows,
                Err(e) => self.message = Some((false, e.to_string())),
            }
            self.loaded = Some((version, self.filter));
        }
        let refs = &cx.refs;
        let today = cx.today;
        let mut cmd = None;
        ui.horizontal(|ui| {
            ui.heading(tr.t("cases.title"));
            if ui
                .add(
                    egui::Button::new(RichText::new(tr.t("cases.new")).strong())
                        .fill(theme::ACCENT.linear_multiply(0.25)),
                )
                .clicked()
            {
                self.intake = Some(CaseForm::default());
                self.errors = ValidationErrors::default();
                self.selected = None;
            }
            let conflicted = self.rows.iter().filter(|c| !c.conflicts().is_empty()).count();
            if conflicted > 0 {
                ui.label(
                    RichText::new(tr.f("cases.attention_count", &[("n", &conflicted)])).color(theme::ALERT).strong(),
                );
            }
            let overdue = self.rows.iter().filter(|c| c.overdue_on(today)).count();
            if overdue > 0 {
                ui.label(RichText::new(tr.f("cases.overdue_count", &[("n", &overdue)])).color(theme::ALERT).strong());
            }
        });
        ui.horizontal_wrapped(|ui| {
            for (f, key) in [
                (CaseFilter::DueToday, "cases.f_due_today"),
                (CaseFilter::Overdue, "cases.f_overdue"),
                (CaseFilter::Open, "cases.f_open"),
                (CaseFilter::Recent, "cases.f_recent"),
            ] {
                if widgets::toggle(ui, self.filter == f, tr.t(key)).clicked() {
                    self.filter = f;
                }
            }
            let all = tr.t("board.all");
            let label = tr.t("board.filter_department");
            if !head {
                widgets::department_filter(ui, cx, "case_f_dept", label, 160.0, &mut self.department);
            }
            let grade_text = self.grade.map_or(all, |g| tr.k("grade", g.key()));
            widgets::row(ui, tr.t("cases.grade"), |ui| {
                egui::ComboBox::from_id_salt("case_f_grade")
                    .width(140.0)
                    .selected_text(grade_text)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.grade, None, all);
                        for g in CaseGrade::ALL {
                            ui.selectable_value(&mut self.grade, Some(g), tr.k("grade", g.key()));
                        }
                    })
                    .response
            });
        });
        if let Some((ok, m)) = &self.message {
            ui.colored_label(if *ok { theme::OK } else { theme::ALERT }, m);
        }
        ui.separator();
        let total = ui.available_width();
        ui.horizontal_top(|ui| {
            widgets::column(ui, total * 0.42, |ui| self.list_ui(ui, cx));
            widgets::column(ui, ui.available_width(), |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("case_detail")
                    .scroll_source(egui::scroll_area::ScrollSource::ALL)
                    .show(ui, |ui| {
                        if self.intake.is_some() {
                            cmd = self.intake_ui(ui, tr, refs);
                        } else if let Some(id) = self.selected
                            && let Some(c) = self.rows.iter().find(|c| c.id == id).cloned()
                        {
                            cmd = self.detail_ui(ui, cx, &c);
                        } else {
                            ui.label(RichText::new(tr.t("cases.pick")).color(theme::MUTED));
                        }
                    });
            });
        });
        if let Some(c) = cmd {
            cx.send(c);
        }
    }

    /// Takes the result of a case command; for a slip, where it was written.
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        let tr = reply.tr;
        if matches!(reply.sent, Command::Slip { .. }) {
            match reply.outcome {
                Outcome::Failed(m) => self.say(false, m.clone()),
                _ => self.say(true, reply.note.clone().unwrap_or_default()),
            }
            return;
        }
        match reply.outcome {
            Outcome::Done(id) => {
                if self.intake.take().is_some() {
                    self.selected = *id;
                    self.filter = CaseFilter::Open;
                    self.message = Some((true, tr.t("cases.created").to_string()));
                } else {
                    self.message = Some((true, tr.t("cases.saved").to_string()));
                }
                self.action = None;
                self.errors = ValidationErrors::default();
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

impl CasesScreen {
    fn visible(&self, today: chrono::NaiveDate) -> impl Iterator<Item = &Case> + use<'_> {
        self.rows.iter().filter(move |c| {
            let f = match self.filter {
                CaseFilter::DueToday => c.is_open() && c.due.value.0 == today,
                CaseFilter::Overdue => c.overdue_on(today),
                CaseFilter::Open | CaseFilter::Recent => true,
            };
            f && self
                .department
                .as_ref()
                .is_none_or(|d| c.departments.contains(d) || c.assigned_department.value.as_ref() == Some(d))
                && self.grade.is_none_or(|g| c.grade.value == g)
        })
    }

    fn list_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (tr, refs, today, offset) = (cx.tr, &cx.refs, cx.today, cx.offset);
        let mut pick = None;
        let visible: Vec<&Case> = self.visible(today).collect();
        if visible.is_empty() {
            ui.label(RichText::new(tr.t("cases.none")).color(theme::MUTED));
        }
        egui::ScrollArea::vertical().id_salt("case_list").scroll_source(egui::scroll_area::ScrollSource::ALL).show(
            ui,
            |ui| {
                for c in visible {
                    let overdue = c.overdue_on(today);
                    let due_today = c.is_open() && c.due.value.0 == today;
                    let frame = egui::Frame::new().inner_margin(6.0).corner_radius(6.0).fill(if overdue {
                        theme::ALERT.linear_multiply(0.12)
                    } else if Some(c.id) == self.selected {
                        theme::ACCENT.linear_multiply(0.12)
                    } else {
                        theme::CLEAR
                    });
                    frame.show(ui, |ui| {
                        ui.horizontal(|ui| {
                            ui.label(
                                RichText::new(tr.k("grade", c.grade.value.key()))
                                    .strong()
                                    .color(theme::grade_color(c.grade.value)),
                            );
                            ui.label(RichText::new(&c.complainant).strong());
                            let depts: Vec<String> = c
                                .departments
                                .iter()
                                .map(|d| refs.department(d).map_or(d.clone(), |x| dept_name(tr, x)))
                                .collect();
                            ui.label(depts.join("、"));
                        });
                        ui.horizontal(|ui| {
                            ui.label(
                                RichText::new(c.received_at.local(offset).format("%m-%d %H:%M").to_string())
                                    .color(theme::MUTED)
                                    .size(theme::SMALL),
                            );
                            ui.label(RichText::new(tr.k("cstatus", c.current().key())).size(theme::SMALL));
                            if c.is_open() {
                                let due = tr.f("cases.due", &[("date", &c.due.value.0)]);
                                let (text, color) = if overdue {
                                    (format!("⚠ {} {due}", tr.t("cases.overdue")), theme::ALERT)
                                } else if due_today {
                                    (format!("{} {due}", tr.t("cases.due_today")), theme::WARN)
                                } else {
                                    (due, theme::MUTED)
                                };
                                ui.label(RichText::new(text).color(color).size(theme::SMALL));
                            }
                            if c.awaiting_approval().is_some() {
                                ui.label(
                                    RichText::new(tr.t("cases.awaiting_badge")).color(theme::WARN).size(theme::SMALL),
                                );
                            }
                            if !c.conflicts().is_empty() {
                                ui.label(
                                    RichText::new(format!("⚠ {}", tr.t("cases.needs_attention")))
                                        .color(theme::ALERT)
                                        .size(theme::SMALL),
                                );
                            }
                            if ui
                                .button(tr.t("cases.open"))
                                .accessible_name(format!("{} {}", tr.t("cases.open"), c.complainant))
                                .clicked()
                            {
                                pick = Some(c.id);
                            }
                        });
                    });
                }
            },
        );
        if let Some(id) = pick {
            self.selected = Some(id);
            self.intake = None;
            self.action = None;
            widgets::viewed(cx, crate::model::RecordKind::Case, id);
        }
    }

    fn intake_ui(&mut self, ui: &mut Ui, tr: Tr, refs: &ReferenceData) -> Option<Command> {
        let mut cmd = None;
        let mut cancel = false;
        let f = self.intake.as_mut()?;
        ui.heading(tr.t("cases.new"));
        let grades: Vec<(CaseGrade, &str)> = CaseGrade::ALL.iter().map(|g| (*g, tr.k("grade", g.key()))).collect();
        widgets::label_row(ui, tr.t("cases.grade"), |ui| {
            widgets::choice(ui, &mut f.grade, &grades);
        });
        widgets::field_error(ui, tr, &self.errors, "grade");
        let channels: Vec<(CaseChannel, &str)> =
            CaseChannel::ALL.iter().map(|c| (*c, tr.k("casechannel", c.key()))).collect();
        widgets::label_row(ui, tr.t("cases.channel"), |ui| {
            widgets::choice(ui, &mut f.channel, &channels);
        });
        widgets::field_error(ui, tr, &self.errors, "channel");
        widgets::text_row(ui, tr.t("cases.complainant"), &mut f.complainant, "");
        widgets::field_error(ui, tr, &self.errors, "complainant");
        widgets::text_row(ui, tr.t("register.phone"), &mut f.complainant_phone, tr.t("register.phone_hint"));
        widgets::field_error(ui, tr, &self.errors, "complainant_phone");
        widgets::text_row(ui, tr.t("cases.relation"), &mut f.relation, tr.t("cases.relation_hint"));
        let names: Vec<String> =
            f.departments.iter().map(|d| refs.department(d).map_or(d.clone(), |x| dept_name(tr, x))).collect();
        let mut add = String::new();
        widgets::row(ui, tr.t("cases.departments"), |ui| {
            egui::ComboBox::from_id_salt("case_depts")
                .selected_text(if names.is_empty() { tr.t("register.choose").to_string() } else { names.join("、") })
                .height(400.0)
                .show_ui(ui, |ui| {
                    for d in &refs.departments {
                        ui.selectable_value(&mut add, d.id.clone(), dept_name(tr, d));
                    }
                })
                .response
        });
        if !add.is_empty() {
            if f.departments.contains(&add) {
                f.departments.retain(|d| d != &add);
            } else {
                f.departments.push(add);
            }
        }
        widgets::field_error(ui, tr, &self.errors, "departments");
        // People concerned: picked from the staff and doctor lists (so 回避 and the accountability counts match by
        // id); anyone else by name under "other".
        let known = |id: &str| refs.staff_member(id).is_some() || refs.doctor(id).is_some();
        let picked: Vec<String> = f.staff_concerned.iter().filter(|s| known(s)).cloned().collect();
        let picked_names: Vec<String> = picked.iter().map(|p| person_name(refs, p)).collect();
        let mut add = String::new();
        widgets::row(ui, tr.t("cases.staff_concerned"), |ui| {
            egui::ComboBox::from_id_salt("case_people")
                .selected_text(if picked.is_empty() {
                    tr.t("register.choose").to_string()
                } else {
                    picked_names.join("、")
                })
                .height(400.0)
                .show_ui(ui, |ui| {
                    for s in refs.staff.iter().filter(|s| s.active) {
                        ui.selectable_value(&mut add, s.id.clone(), person_name(refs, &s.id));
                    }
                    for d in &refs.doctors {
                        ui.selectable_value(&mut add, d.id.clone(), person_name(refs, &d.id));
                    }
                })
                .response
        });
        let mut picked = picked;
        if !add.is_empty() {
            if picked.contains(&add) {
                picked.retain(|p| p != &add);
            } else {
                picked.push(add);
            }
        }
        let mut other = f.staff_concerned.iter().filter(|s| !known(s)).cloned().collect::<Vec<_>>().join("，");
        widgets::text_row(ui, tr.t("cases.staff_other"), &mut other, tr.t("cases.staff_concerned_hint"));
        picked.extend(other.split([',', '，', '、']).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
        f.staff_concerned = picked;
        widgets::field_error(ui, tr, &self.errors, "staff_concerned");
        widgets::row(ui, tr.t("cases.facts"), |ui| {
            ui.add(egui::TextEdit::multiline(&mut f.facts).desired_rows(3).desired_width(ui.available_width()))
        });
        widgets::field_error(ui, tr, &self.errors, "facts");
        widgets::row(ui, tr.t("cases.request"), |ui| {
            ui.add(egui::TextEdit::multiline(&mut f.request).desired_rows(2).desired_width(ui.available_width()))
        });
        ui.horizontal(|ui| {
            if ui
                .add(
                    egui::Button::new(RichText::new(tr.t("cases.submit")).strong())
                        .fill(theme::ACCENT.linear_multiply(0.25))
                        .min_size(egui::vec2(180.0, theme::TOUCH)),
                )
                .clicked()
            {
                cmd = Some(Command::NewCase(Box::new(f.clone())));
            }
            if ui.button(tr.t("dialog.back")).clicked() {
                cancel = true;
            }
        });
        if cancel {
            self.intake = None;
        }
        cmd
    }

    fn detail_ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>, c: &Case) -> Option<Command> {
        let (q, tr, refs, offset) = (cx.q, cx.tr, &cx.refs, cx.offset);
        let mut cmd = None;
        ui.horizontal(|ui| {
            ui.heading(format!("{} · {}", tr.k("grade", c.grade.value.key()), c.complainant));
            ui.label(RichText::new(format!("#{}", c.id.short())).color(theme::MUTED));
        });
        if let Some((crate::model::RecordKind::Case, id, desk)) = &cx.last_remote
            && *id == c.id
        {
            let who = c.events.last().map(|e| e.by.0.clone()).unwrap_or_default();
            ui.label(
                RichText::new(tr.f("cases.changed_elsewhere", &[("desk", desk), ("by", &who)]))
                    .color(theme::WARN)
                    .strong(),
            );
        }
        let conflicts = c.conflicts();
        if !conflicts.is_empty() {
            let what: Vec<&str> = conflicts.iter().map(|k| tr.k("conflict", k.key())).collect();
            ui.label(
                RichText::new(format!("⚠ {}: {}", tr.t("cases.needs_attention"), what.join("；")))
                    .color(theme::ALERT)
                    .strong(),
            );
            ui.label(RichText::new(tr.t("cases.attention_hint")).color(theme::MUTED).size(theme::SMALL));
        }
        widgets::compact(ui, |ui| {
            egui::Grid::new("case_facts").num_columns(2).spacing(egui::vec2(12.0, 4.0)).show(ui, |ui| {
                let mut kv = |k: &str, v: String| {
                    ui.label(RichText::new(tr.t(k)).color(theme::MUTED));
                    ui.add(egui::Label::new(v).wrap());
                    ui.end_row();
                };
                kv("cases.status", tr.k("cstatus", c.current().key()).to_string());
                let mut due = c.due.value.0.to_string();
                if c.due.value.1 {
                    due.push_str(&format!(" {}", tr.t("cases.due_guessed")));
                }
                kv("cases.due_label", due);
                kv(
                    "cases.received",
                    format!("{} · {}", c.received_at.local(offset).format("%Y-%m-%d %H:%M"), c.received_by),
                );
                kv("cases.channel", tr.k("casechannel", c.channel.key()).to_string());
                kv("cases.relation", c.relation.clone().unwrap_or_default());
                let depts: Vec<String> =
                    c.departments.iter().map(|d| refs.department(d).map_or(d.clone(), |x| dept_name(tr, x))).collect();
                kv("cases.departments", depts.join("、"));
                kv(
                    "cases.staff_concerned",
                    c.staff_concerned.iter().map(|p| person_name(refs, p)).collect::<Vec<_>>().join("、"),
                );
                kv("cases.facts", c.facts.clone());
                kv("cases.request", c.request.clone().unwrap_or_default());
                if let Some(d) = &c.assigned_department.value {
                    let who = c.assignee.value.clone().unwrap_or_default();
                    kv(
                        "cases.assigned",
                        format!("{} {who}", refs.department(d).map_or(d.clone(), |x| dept_name(tr, x))),
                    );
                }
            })
        });
        if let Some(p) = c.complainant_phone.as_deref() {
            ui.horizontal(|ui| {
                ui.label(RichText::new(tr.t("register.phone")).color(theme::MUTED));
                widgets::phone(ui, cx, crate::model::RecordKind::Case, c.id, p);
            });
        }
        if ui.button(tr.t("cases.slip")).clicked() {
            cmd = Some(Command::Slip { id: c.id });
        }
        ui.separator();
        ui.label(RichText::new(tr.t("cases.history")).strong());
        for e in &c.events {
            let what = tr.k("cevent", crate::export::event_name(&e.kind));
            let mut line = format!("{} {} · {}", e.at.local(offset).format("%m-%d %H:%M"), e.by, what);
            match &e.kind {
                crate::model::CaseEventKind::Resolved { resolution, responsible, .. } => {
                    line.push_str(&format!("：{resolution}（{responsible}）"));
                }
                crate::model::CaseEventKind::Escalated { to, due, .. } => {
                    line.push_str(&format!("：{} → {due}", tr.k("grade", to.key())));
                }
                crate::model::CaseEventKind::Closed { satisfaction: Some(r) } => {
                    line.push_str(&format!("：{}", tr.k("rating", r.key())));
                }
                crate::model::CaseEventKind::Assigned { department, assignee }
                | crate::model::CaseEventKind::Proposed { department, assignee }
                | crate::model::CaseEventKind::Approved { department, assignee } => {
                    line.push_str(&format!(
                        "：{} {}",
                        refs.department(department).map_or(department.clone(), |x| dept_name(tr, x)),
                        assignee.clone().unwrap_or_default()
                    ));
                }
                _ => {}
            }
            if let Some(n) = &e.note {
                line.push_str(&format!("（{n}）"));
            }
            ui.label(RichText::new(line).size(theme::SMALL));
        }
        let improvements = c.improvements();
        if !improvements.is_empty() {
            ui.label(RichText::new(tr.t("cases.improvements")).strong());
            for i in improvements {
                let dept = refs.department(i.department).map_or(i.department.to_string(), |x| dept_name(tr, x));
                let (state, color) = match i.done {
                    Some((e, effect)) => (
                        format!("{} {}：{effect}", tr.t("cases.improve_done_at"), e.at.local(offset).format("%m-%d")),
                        if e.at.local_date(offset) <= i.due { theme::OK } else { theme::WARN },
                    ),
                    None if i.due < cx.today => (tr.t("cases.improve_overdue").to_string(), theme::ALERT),
                    None => (tr.t("cases.improve_open").to_string(), theme::MUTED),
                };
                ui.label(
                    RichText::new(format!(
                        "{dept} · {} · {} · {state}",
                        i.measure,
                        tr.f("cases.improve_due", &[("date", &i.due)])
                    ))
                    .color(color)
                    .size(theme::SMALL),
                );
            }
        }
        if let Some((d, _)) = c.awaiting_approval() {
            let dept = refs.department(d).map_or(d.to_string(), |x| dept_name(tr, x));
            ui.label(RichText::new(tr.f("cases.awaiting_approval", &[("dept", &dept)])).color(theme::WARN).strong());
        }
        ui.separator();
        ui.horizontal_wrapped(|ui| {
            let role = self.role;
            let allowed = |a: &ActionKind| role.is_some_and(|r| crate::access::allowed(r, a.needs()));
            let leader = role.is_some_and(|r| crate::access::allowed(r, crate::access::Action::ApproveCase));
            for a in ActionKind::offered(c, refs, leader).into_iter().filter(allowed) {
                if widgets::toggle(ui, self.action == Some(a), tr.t(a.key())).clicked() {
                    self.action = Some(a);
                    self.text1.clear();
                    self.text2.clear();
                    self.text3.clear();
                    self.choice_rating = None;
                    self.choice_grade = None;
                    self.choice_plan = None;
                    if let (ActionKind::Approve, Some((d, who))) = (a, c.awaiting_approval()) {
                        // 批转 as proposed, unless the leader changes it.
                        self.choice_dept = d.to_string();
                        self.choice_staff = who.unwrap_or_default().to_string();
                    }
                    if a == ActionKind::Improve {
                        self.choice_dept = c
                            .assigned_department
                            .value
                            .clone()
                            .or_else(|| c.departments.first().cloned())
                            .unwrap_or_default();
                        self.text2 = (cx.today + chrono::Days::new(30)).to_string();
                    }
                }
            }
        });
        let Some(a) = self.action else { return cmd };
        let staff = q.staff().unwrap_or_default();
        let action = match a {
            ActionKind::Assign | ActionKind::Propose | ActionKind::Approve => {
                widgets::department_pick(
                    ui,
                    tr,
                    refs,
                    "assign_dept",
                    tr.t("register.department"),
                    &mut self.choice_dept,
                );
                let staff_text = staff
                    .iter()
                    .find(|s| s.id == self.choice_staff)
                    .map_or_else(|| tr.t("cases.nobody").to_string(), |s| s.name.clone());
                widgets::row(ui, tr.t("cases.assignee"), |ui| {
                    egui::ComboBox::from_id_salt("assign_staff")
                        .selected_text(staff_text)
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut self.choice_staff, String::new(), tr.t("cases.nobody"));
                            for s in &staff {
                                ui.selectable_value(&mut self.choice_staff, s.id.clone(), &s.name);
                            }
                        })
                        .response
                });
                widgets::field_error(ui, tr, &self.errors, "department");
                let (department, assignee) =
                    (self.choice_dept.clone(), Some(self.choice_staff.clone()).filter(|s| !s.is_empty()));
                match a {
                    ActionKind::Propose => {
                        ui.label(RichText::new(tr.t("cases.propose_hint")).color(theme::MUTED).size(theme::SMALL));
                        CaseCommand::Propose { department, assignee }
                    }
                    ActionKind::Approve => CaseCommand::Approve { department, assignee },
                    _ => CaseCommand::Assign { department, assignee },
                }
            }
            ActionKind::Improve => self.improve_ui(ui, tr, refs),
            ActionKind::ImproveDone => {
                let open: Vec<_> = c.improvements().into_iter().filter(|i| i.done.is_none()).collect();
                if self.choice_plan.is_none() {
                    self.choice_plan = open.first().map(|i| i.planned.stamp);
                }
                widgets::label_row(ui, tr.t("cases.measure"), |ui| {
                    ui.vertical(|ui| {
                        for i in &open {
                            let text = format!("{} · {}", i.measure, tr.f("cases.improve_due", &[("date", &i.due)]));
                            ui.radio_value(&mut self.choice_plan, Some(i.planned.stamp), text);
                        }
                    });
                });
                widgets::text_row(ui, tr.t("cases.effect"), &mut self.text1, tr.t("cases.effect_hint"));
                widgets::field_error(ui, tr, &self.errors, "effect");
                match self.choice_plan {
                    Some(plan) => CaseCommand::ImprovementDone { plan, effect: self.text1.clone() },
                    None => return cmd,
                }
            }
            ActionKind::Investigate => CaseCommand::Investigate,
            ActionKind::Resolve => {
                widgets::row(ui, tr.t("cases.resolution"), |ui| {
                    ui.add(
                        egui::TextEdit::multiline(&mut self.text1).desired_rows(2).desired_width(ui.available_width()),
                    )
                });
                widgets::field_error(ui, tr, &self.errors, "resolution");
                widgets::text_row(ui, tr.t("cases.actions"), &mut self.text2, "");
                widgets::text_row(ui, tr.t("cases.responsible"), &mut self.text3, "");
                widgets::field_error(ui, tr, &self.errors, "responsible");
                CaseCommand::Resolve {
                    resolution: self.text1.clone(),
                    actions: self.text2.clone(),
                    responsible: self.text3.clone(),
                }
            }
            ActionKind::NotEstablished => {
                widgets::row(ui, tr.t("cases.explanation"), |ui| {
                    ui.add(
                        egui::TextEdit::multiline(&mut self.text1).desired_rows(2).desired_width(ui.available_width()),
                    )
                });
                widgets::field_error(ui, tr, &self.errors, "explanation");
                CaseCommand::NotEstablished { explanation: self.text1.clone() }
            }
            ActionKind::Notify => {
                widgets::text_row(ui, tr.t("cases.note"), &mut self.text1, tr.t("cases.notify_hint"));
                CaseCommand::Notify { note: self.text1.clone() }
            }
            ActionKind::Close => {
                let ratings: Vec<(Rating, &str)> = Rating::ALL.iter().map(|r| (*r, tr.k("rating", r.key()))).collect();
                widgets::label_row(ui, tr.t("cases.satisfaction"), |ui| {
                    widgets::choice(ui, &mut self.choice_rating, &ratings);
                });
                if cx.today > c.due.value.0 {
                    widgets::text_row(
                        ui,
                        tr.t("cases.overdue_explanation"),
                        &mut self.text1,
                        tr.t("cases.overdue_hint"),
                    );
                    widgets::field_error(ui, tr, &self.errors, "explanation");
                }
                CaseCommand::Close { satisfaction: self.choice_rating, explanation: self.text1.clone() }
            }
            ActionKind::Escalate => {
                let higher: Vec<(CaseGrade, &str)> = CaseGrade::ALL
                    .iter()
                    .filter(|g| **g > c.grade.value)
                    .map(|g| (*g, tr.k("grade", g.key())))
                    .collect();
                widgets::label_row(ui, tr.t("cases.grade"), |ui| {
                    widgets::choice(ui, &mut self.choice_grade, &higher);
                });
                ui.label(RichText::new(tr.t("cases.escalate_hint")).color(theme::MUTED).size(theme::SMALL));
                match self.choice_grade {
                    Some(to) => CaseCommand::Escalate { to },
                    None => return cmd,
                }
            }
            ActionKind::ReferLegal => {
                widgets::text_row(ui, tr.t("cases.note"), &mut self.text1, "");
                CaseCommand::ReferLegal { note: self.text1.clone() }
            }
            ActionKind::Reopen => {
                widgets::text_row(ui, tr.t("cases.reason"), &mut self.text1, "");
                widgets::field_error(ui, tr, &self.errors, "reason");
                CaseCommand::Reopen { reason: self.text1.clone() }
            }
            ActionKind::Note => {
                widgets::text_row(ui, tr.t("cases.note"), &mut self.text1, "");
                widgets::field_error(ui, tr, &self.errors, "text");
                CaseCommand::Note { text: self.text1.clone() }
            }
        };
        if let Some(p) = ["status", "assignee", "grade", "plan"].into_iter().find_map(|k| self.errors.get(k)) {
            ui.colored_label(theme::ALERT, widgets::problem_text(tr, p));
        }
        if ui
            .add(
                egui::Button::new(RichText::new(format!("{} {}", tr.t("cases.confirm"), tr.t(a.key()))).strong())
                    .min_size(egui::vec2(200.0, theme::TOUCH)),
            )
            .clicked()
        {
            cmd = Some(Command::Case { id: c.id, action });
        }
        cmd
    }

    /// The improvement measure form (整改措施): department, what will change, by when.
    fn improve_ui(&mut self, ui: &mut Ui, tr: Tr, refs: &ReferenceData) -> CaseCommand {
        widgets::department_pick(ui, tr, refs, "improve_dept", tr.t("cases.improve_dept"), &mut self.choice_dept);
        widgets::field_error(ui, tr, &self.errors, "department");
        widgets::text_row(ui, tr.t("cases.measure"), &mut self.text1, tr.t("cases.measure_hint"));
        widgets::field_error(ui, tr, &self.errors, "measure");
        widgets::text_row(ui, tr.t("cases.improve_by"), &mut self.text2, "YYYY-MM-DD");
        widgets::field_error(ui, tr, &self.errors, "due");
        CaseCommand::PlanImprovement {
            department: self.choice_dept.clone(),
            measure: self.text1.clone(),
            due: chrono::NaiveDate::parse_from_str(self.text2.trim(), "%Y-%m-%d").ok(),
        }
    }

    /// Shows a message (e.g. where the slip was written).
    fn say(&mut self, ok: bool, m: String) {
        self.message = Some((ok, m));
    }
}

/// A person concerned as shown: a staff member's or doctor's name with the id (a doctor with the department), or the
/// name as recorded for anyone else.
fn person_name(refs: &crate::model::ReferenceData, id: &str) -> String {
    if let Some(s) = refs.staff_member(id) {
        return format!("{} {}", s.name, s.id);
    }
    match refs.doctor(id) {
        Some(d) => {
            let dept = refs.department(&d.department).map_or(d.department.as_str(), |x| x.name.as_str());
            format!("{} · {dept}", d.name)
        }
        None => id.to_string(),
    }
}
