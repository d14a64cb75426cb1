//! The supervisors' alert strip, above every screen of a supervisor, guide lead or administrator: what the
//! hospital's rules say a supervisor must hear about at once, computed from the site's shared records so every desk
//! of the site shows the same.
//!
//! - **Queue** (the guides' rule: more than 8 people waiting at registration alerts the supervisor):
//!   today's arrivals of the whole site still waiting to register, against `visit_policy.registration_queue_alert`.
//! - **Disputes and incidents** (纠纷, 事故) not yet finished: each is named (grade, complainant, department, when
//!   received), since the supervisor handles them in person.
//! - **督办**: open cases due by the next working day (the reminder before the deadline, on the official
//!   calendar), due today, and past their deadline.
//! - **批转**: cases whose department was proposed and awaits a leader's approval.
//!
//! The strip re-reads only when the store changed, and each alert opens the screen where it is worked. The queue
//! alert is also put on the audit log (action `alert`) each time the queue goes over the limit.

use egui::{RichText, Ui};

use super::context::ScreenCtx;
use super::theme;
use crate::model::{Case, CaseGrade, VisitStep};

/// An alert of the strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// More patients waiting to register than policy allows.
    Queue {
        /// Waiting now (the whole site).
        waiting: usize,
        /// The policy's limit.
        limit: usize,
    },
    /// An unfinished dispute or incident.
    Serious {
        /// Grade.
        grade: CaseGrade,
        /// Complainant.
        complainant: String,
        /// First department concerned (code).
        department: Option<String>,
        /// When it was received (local time, `MM-DD HH:MM`).
        received: String,
    },
    /// Open cases due on the next working day (the reminder before the deadline).
    DueSoon(usize),
    /// Open cases due today.
    DueToday(usize),
    /// Open cases past their deadline.
    Overdue(usize),
    /// Cases whose transfer to a department awaits a leader's approval (待批转).
    AwaitingApproval(usize),
}

/// Where an alert is worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goto {
    /// The visit board.
    Board,
    /// The cases screen.
    Cases,
}

/// Disputes and incidents named one by one; the rest are counted.
const SHOWN: usize = 3;

/// The strip's state.
#[derive(Debug, Default)]
pub struct AlertStrip {
    alerts: Vec<Alert>,
    loaded: Option<(u64, chrono::NaiveDate)>,
    /// The queue over its limit was put on the audit log (once per time it goes over).
    queue_logged: bool,
}

/// The alerts of the site's state: today's arrivals and the open cases.
pub fn alerts(arrivals: &[crate::model::Arrival], open: &[Case], cx: &ScreenCtx<'_>) -> Vec<Alert> {
    let mut out = Vec::new();
    let waiting = arrivals.iter().filter(|a| a.step() == VisitStep::Triaged).count();
    let limit = cx.refs.visit_policy.registration_queue_alert as usize;
    if waiting > limit {
        out.push(Alert::Queue { waiting, limit });
    }
    let mut serious: Vec<&Case> =
        open.iter().filter(|c| matches!(c.grade.value, CaseGrade::Dispute | CaseGrade::Incident)).collect();
    serious.sort_by_key(|c| (std::cmp::Reverse(c.grade.value), c.received_at));
    for c in serious {
        out.push(Alert::Serious {
            grade: c.grade.value,
            complainant: c.complainant.clone(),
            department: c.departments.first().cloned(),
            received: c.received_at.local(cx.offset).format("%m-%d %H:%M").to_string(),
        });
    }
    let next = cx.refs.calendar.add_working_days(cx.today, 1).map_or(cx.today, |d| d.date);
    let due_soon = open.iter().filter(|c| c.due.value.0 > cx.today && c.due.value.0 <= next).count();
    if due_soon > 0 {
        out.push(Alert::DueSoon(due_soon));
    }
    let due_today = open.iter().filter(|c| c.due.value.0 == cx.today).count();
    if due_today > 0 {
        out.push(Alert::DueToday(due_today));
    }
    let overdue = open.iter().filter(|c| c.due.value.0 < cx.today).count();
    if overdue > 0 {
        out.push(Alert::Overdue(overdue));
    }
    let awaiting = open.iter().filter(|c| c.awaiting_approval().is_some()).count();
    if awaiting > 0 {
        out.push(Alert::AwaitingApproval(awaiting));
    }
    out
}

impl AlertStrip {
    /// The strip (nothing when there is nothing to say); where to go when an alert was clicked.
    pub fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) -> Option<Goto> {
        if self.loaded != Some((cx.version, cx.today)) {
            let arrivals = cx.q.arrivals_on(cx.today).unwrap_or_default();
            let open = cx.q.open_cases().unwrap_or_default();
            self.alerts = alerts(&arrivals, &open, cx);
            self.loaded = Some((cx.version, cx.today));
            // The queue alert goes on the audit log once each time the queue goes over the limit.
            match self.alerts.iter().find_map(|a| match a {
                Alert::Queue { waiting, limit } => Some((*waiting, *limit)),
                _ => None,
            }) {
                Some((waiting, limit)) if !self.queue_logged => {
                    cx.request(crate::command::Command::LogAlert { detail: format!("queue_alert:{waiting}/{limit}") });
                    self.queue_logged = true;
                }
                Some(_) => {}
                None => self.queue_logged = false,
            }
        }
        if self.alerts.is_empty() {
            return None;
        }
        let tr = cx.tr;
        let mut goto = None;
        egui::Frame::new().fill(theme::ALERT.linear_multiply(0.12)).inner_margin(6.0).show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(tr.t("alerts.title")).color(theme::ALERT).strong());
                let serious = self.alerts.iter().filter(|a| matches!(a, Alert::Serious { .. })).count();
                let mut shown_serious = 0;
                for a in &self.alerts {
                    let (text, to) = match a {
                        Alert::Queue { waiting, limit } => {
                            (tr.f("alerts.queue", &[("n", waiting), ("limit", limit)]), Goto::Board)
                        }
                        Alert::Serious { grade, complainant, department, received } => {
                            shown_serious += 1;
                            if shown_serious > SHOWN {
                                continue;
                            }
                            let dept = department
                                .as_deref()
                                .and_then(|d| cx.refs.department(d))
                                .map_or_else(String::new, |d| super::register::dept_name(tr, d));
                            let text = tr.f(
                                "alerts.serious",
                                &[
                                    ("grade", &tr.k("grade", grade.key())),
                                    ("who", complainant),
                                    ("dept", &dept),
                                    ("at", received),
                                ],
                            );
                            (text, Goto::Cases)
                        }
                        Alert::DueSoon(n) => (tr.f("alerts.due_soon", &[("n", n)]), Goto::Cases),
                        Alert::DueToday(n) => (tr.f("alerts.due_today", &[("n", n)]), Goto::Cases),
                        Alert::Overdue(n) => (tr.f("alerts.overdue", &[("n", n)]), Goto::Cases),
                        Alert::AwaitingApproval(n) => (tr.f("alerts.awaiting_approval", &[("n", n)]), Goto::Cases),
                    };
                    if ui.link(RichText::new(text).color(theme::ALERT)).clicked() {
                        goto = Some(to);
                    }
                }
                if serious > SHOWN {
                    ui.label(RichText::new(tr.f("alerts.more", &[("n", &(serious - SHOWN))])).color(theme::ALERT));
                }
            });
        });
        goto
    }
}
