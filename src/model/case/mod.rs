//! Case (客诉): feedback, suggestions, dissatisfaction, complaints, disputes and incidents, with their handling.
//!
//! The status only moves forward within a handling round; reopening starts a new round (a new event), so merging by
//! `(round, rank, stamp)` keeps every replica on the most advanced state.

use chrono::NaiveDate;
use guidedesk_sync::Hlc;
use serde::{Deserialize, Serialize};

use super::common::{Lww, Merge, Moment, RecordId, StaffRef, merge_events};
use super::feedback::Rating;
use super::reference::ReferenceData;
use super::validate::{self, Problem, ValidationErrors, limits};

/// The grades of a case (seed 003), in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseGrade {
    /// 1 情况反馈 — feedback on the environment.
    Feedback,
    /// 2 建议
    Suggestion,
    /// 3 不满意
    Dissatisfied,
    /// 3+ 非常不满意 (used by the penalty table).
    VeryDissatisfied,
    /// 4 投诉
    Complaint,
    /// 5 纠纷
    Dispute,
    /// 6 事故
    Incident,
}

impl CaseGrade {
    /// Every grade, in order.
    pub const ALL: [CaseGrade; 7] = [
        CaseGrade::Feedback,
        CaseGrade::Suggestion,
        CaseGrade::Dissatisfied,
        CaseGrade::VeryDissatisfied,
        CaseGrade::Complaint,
        CaseGrade::Dispute,
        CaseGrade::Incident,
    ];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            CaseGrade::Feedback => "feedback",
            CaseGrade::Suggestion => "suggestion",
            CaseGrade::Dissatisfied => "dissatisfied",
            CaseGrade::VeryDissatisfied => "very_dissatisfied",
            CaseGrade::Complaint => "complaint",
            CaseGrade::Dispute => "dispute",
            CaseGrade::Incident => "incident",
        }
    }

    /// Whether the case is a patient's complaint in the sense of the 投诉处理满意率 and the accountability rules:
    /// every grade but 情况反馈 (feedback on the environment) and 建议 (a suggestion), which complain of no one
    /// (《客户服务中心管理方案》 三.4, the complaint grades).
    pub fn is_complaint(self) -> bool {
        !matches!(self, CaseGrade::Feedback | CaseGrade::Suggestion)
    }

    /// Grades 1–3 are handled on the spot by the specialist.
    pub fn handled_on_the_spot(self) -> bool {
        self <= CaseGrade::VeryDissatisfied
    }
}

/// How the case reached the hospital.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseChannel {
    /// 现场
    InPerson,
    /// 电话
    Phone,
    /// 来信
    Letter,
    /// 网络
    Online,
    /// 满意度评价
    FeedbackScreen,
    /// 其他
    Other,
}

impl CaseChannel {
    /// Every channel.
    pub const ALL: [CaseChannel; 6] = [
        CaseChannel::InPerson,
        CaseChannel::Phone,
        CaseChannel::Letter,
        CaseChannel::Online,
        CaseChannel::FeedbackScreen,
        CaseChannel::Other,
    ];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            CaseChannel::InPerson => "in_person",
            CaseChannel::Phone => "phone",
            CaseChannel::Letter => "letter",
            CaseChannel::Online => "online",
            CaseChannel::FeedbackScreen => "feedback_screen",
            CaseChannel::Other => "other",
        }
    }
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// 已受理
    Received,
    /// 已转科室
    Assigned,
    /// 调查处理中
    Investigating,
    /// 已处理
    Resolved,
    /// 不成立
    NotEstablished,
    /// 已反馈投诉人
    Notified,
    /// 已结案
    Closed,
    /// 转法律途径
    ReferredLegal,
}

impl CaseStatus {
    /// Every status.
    pub const ALL: [CaseStatus; 8] = [
        CaseStatus::Received,
        CaseStatus::Assigned,
        CaseStatus::Investigating,
        CaseStatus::Resolved,
        CaseStatus::NotEstablished,
        CaseStatus::Notified,
        CaseStatus::Closed,
        CaseStatus::ReferredLegal,
    ];

    /// Progress rank: a status may only be replaced by one of higher rank.
    pub fn rank(self) -> u8 {
        match self {
            CaseStatus::Received => 0,
            CaseStatus::Assigned => 1,
            CaseStatus::Investigating => 2,
            CaseStatus::Resolved | CaseStatus::NotEstablished => 3,
            CaseStatus::Notified => 4,
            CaseStatus::Closed | CaseStatus::ReferredLegal => 5,
        }
    }

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            CaseStatus::Received => "received",
            CaseStatus::Assigned => "assigned",
            CaseStatus::Investigating => "investigating",
            CaseStatus::Resolved => "resolved",
            CaseStatus::NotEstablished => "not_established",
            CaseStatus::Notified => "notified",
            CaseStatus::Closed => "closed",
            CaseStatus::ReferredLegal => "referred_legal",
        }
    }

    /// Whether the case is finished (no deadline applies).
    pub fn is_final(self) -> bool {
        self.rank() == 5
    }
}

/// A status within a handling round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundStatus {
    /// Handling round: 0, then +1 per reopening.
    pub round: u32,
    /// The status.
    pub status: CaseStatus,
}

/// What happened to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseEventKind {
    /// Received (first contact).
    Received,
    /// Assigned to a department (and person).
    Assigned {
        /// Department code.
        department: String,
        /// Assignee staff id.
        assignee: Option<String>,
    },
    /// Investigation started.
    Investigating,
    /// Resolved.
    Resolved {
        /// What was found and decided.
        resolution: String,
        /// Corrective actions.
        actions: String,
        /// The person responsible.
        responsible: String,
    },
    /// Found not established.
    NotEstablished,
    /// Result told to the complainant.
    Notified,
    /// Closed, with the complainant's satisfaction with the handling.
    Closed {
        /// Satisfaction with the handling, if asked and answered.
        satisfaction: Option<Rating>,
    },
    /// Escalated to a higher grade.
    Escalated {
        /// Previous grade.
        from: CaseGrade,
        /// New grade.
        to: CaseGrade,
        /// New deadline.
        due: NaiveDate,
    },
    /// Referred to legal channels.
    ReferredLegal,
    /// Reopened.
    Reopened,
    /// A note.
    Note,
    /// The receiver proposed the department to handle it (拟定承办科室), awaiting a leader's approval.
    Proposed {
        /// Department code.
        department: String,
        /// Assignee staff id.
        assignee: Option<String>,
    },
    /// A leader approved the transfer to the department (批转): the case is assigned to it.
    Approved {
        /// Department code.
        department: String,
        /// Assignee staff id.
        assignee: Option<String>,
    },
    /// An improvement measure (整改措施) a department commits to, by a day.
    ImprovementPlanned {
        /// Department code.
        department: String,
        /// What will be changed.
        measure: String,
        /// By when.
        due: NaiveDate,
    },
    /// An improvement measure carried out, with its effect (整改落实及效果).
    ImprovementDone {
        /// The stamp of the measure's [`CaseEventKind::ImprovementPlanned`] event.
        plan: Hlc,
        /// What was done and what it changed.
        effect: String,
    },
}

/// An improvement measure of a case and whether it was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Improvement<'a> {
    /// The plan's event (who, when, its stamp).
    pub planned: &'a CaseEvent,
    /// Department code.
    pub department: &'a str,
    /// What will be changed.
    pub measure: &'a str,
    /// By when.
    pub due: NaiveDate,
    /// The event that recorded it done, with the effect.
    pub done: Option<(&'a CaseEvent, &'a str)>,
}

/// A history two desks made while apart that cannot both stand (see [`Case::conflicts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseConflict {
    /// Closed twice in one round.
    TwoClosings,
    /// Resolved and found not established in one round.
    ResolvedAndNotEstablished,
    /// Two different resolutions in one round.
    TwoResolutions,
}

impl CaseConflict {
    /// Stable key (translations: `conflict.<key>`).
    pub fn key(self) -> &'static str {
        match self {
            CaseConflict::TwoClosings => "two_closings",
            CaseConflict::ResolvedAndNotEstablished => "resolved_and_not_established",
            CaseConflict::TwoResolutions => "two_resolutions",
        }
    }
}

/// One entry of a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEvent {
    /// When.
    pub at: Moment,
    /// Who.
    pub by: StaffRef,
    /// What.
    pub kind: CaseEventKind,
    /// Free note.
    pub note: Option<String>,
    /// HLC stamp.
    pub stamp: Hlc,
}

/// A case record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// UUIDv7 id.
    pub id: RecordId,
    /// When it was received.
    pub received_at: Moment,
    /// First-contact owner (首问负责).
    pub received_by: StaffRef,
    /// Channel.
    pub channel: CaseChannel,
    /// Grade (changes on escalation).
    pub grade: Lww<CaseGrade>,
    /// Complainant's name.
    pub complainant: String,
    /// Complainant's phone digits.
    pub complainant_phone: Option<String>,
    /// Relation to the patient (本人, 配偶, 子女…).
    pub relation: Option<String>,
    /// Departments concerned.
    pub departments: Vec<String>,
    /// Staff concerned (ids or names).
    pub staff_concerned: Vec<String>,
    /// Facts and reasons.
    pub facts: String,
    /// The complainant's request.
    pub request: Option<String>,
    /// The feedback record that led to this case, if any.
    pub from_feedback: Option<RecordId>,
    /// Responsible department.
    pub assigned_department: Lww<Option<String>>,
    /// Person handling it.
    pub assignee: Lww<Option<String>>,
    /// Status in its round.
    pub status: Lww<RoundStatus>,
    /// Deadline (working days from receipt) and whether the calendar had to guess.
    pub due: Lww<(NaiveDate, bool)>,
    /// Satisfaction with the handling.
    pub handling_satisfaction: Lww<Option<Rating>>,
    /// When it was closed.
    pub closed_at: Lww<Option<Moment>>,
    /// History, ordered by stamp.
    pub events: Vec<CaseEvent>,
}

impl Case {
    /// The current status.
    pub fn current(&self) -> CaseStatus {
        self.status.value.status
    }

    /// Whether the complaint was found not established (不成立) in its latest handling round: the last finding of
    /// the round (resolved or not established) after its last reopening is "not established".
    pub fn found_not_established(&self) -> bool {
        self.events
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.kind,
                    CaseEventKind::Resolved { .. } | CaseEventKind::NotEstablished | CaseEventKind::Reopened
                )
            })
            .is_some_and(|e| e.kind == CaseEventKind::NotEstablished)
    }

    /// The department (and person) proposed in the current round and not yet approved (待批转), if any: the last
    /// proposal after the last reopening, with no assignment or approval after it.
    pub fn awaiting_approval(&self) -> Option<(&str, Option<&str>)> {
        let start = self.events.iter().rposition(|e| matches!(e.kind, CaseEventKind::Reopened)).unwrap_or(0);
        let last = self.events[start..].iter().rev().find(|e| {
            matches!(
                e.kind,
                CaseEventKind::Proposed { .. } | CaseEventKind::Approved { .. } | CaseEventKind::Assigned { .. }
            )
        })?;
        match &last.kind {
            CaseEventKind::Proposed { department, assignee } if self.is_open() => {
                Some((department.as_str(), assignee.as_deref()))
            }
            _ => None,
        }
    }

    /// The case's improvement measures in the order planned, each with the event that recorded it done.
    pub fn improvements(&self) -> Vec<Improvement<'_>> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                CaseEventKind::ImprovementPlanned { department, measure, due } => Some(Improvement {
                    planned: e,
                    department,
                    measure,
                    due: *due,
                    done: self.events.iter().find_map(|d| match &d.kind {
                        CaseEventKind::ImprovementDone { plan, effect } if *plan == e.stamp => {
                            Some((d, effect.as_str()))
                        }
                        _ => None,
                    }),
                }),
                _ => None,
            })
            .collect()
    }

    /// Whether the case is still open.
    pub fn is_open(&self) -> bool {
        !self.current().is_final()
    }

    /// Moves the status forward, appending the event. A backward or same-rank move is refused.
    pub fn advance(
        &mut self,
        to: CaseStatus,
        kind: CaseEventKind,
        note: Option<String>,
        at: Moment,
        by: StaffRef,
        stamp: Hlc,
    ) -> Result<(), ValidationErrors> {
        let from = self.current();
        if to.rank() <= from.rank() {
            let mut e = ValidationErrors::default();
            e.push("status", Problem::Conflict("a case's status only moves forward"));
            return Err(e);
        }
        self.status.set(RoundStatus { round: self.status.value.round, status: to }, stamp);
        self.events.push(CaseEvent { at, by, kind, note, stamp });
        Ok(())
    }
}

/// What a specialist does to a case. Each action appends an event (who, when, what) to the case's history.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseAction {
    /// Assign (or re-assign) to the responsible department and person.
    Assign {
        /// Department code.
        department: String,
        /// Staff id of the person handling it.
        assignee: Option<String>,
    },
    /// Investigation started.
    Investigate,
    /// Resolved.
    Resolve {
        /// What was found and decided.
        resolution: String,
        /// Corrective actions.
        actions: String,
        /// The person responsible.
        responsible: String,
    },
    /// Found not established; the misunderstanding was explained.
    NotEstablished {
        /// The explanation given.
        explanation: String,
    },
    /// The result was told to the complainant.
    Notify {
        /// How/what was told.
        note: String,
    },
    /// Closed, with the complainant's satisfaction with the handling.
    Close {
        /// Satisfaction with the handling, if answered.
        satisfaction: Option<Rating>,
        /// Why the case was not finished by its deadline (required when it is closed late; kept as the event's
        /// note).
        explanation: String,
    },
    /// Escalated to a higher grade (the deadline is recomputed from the original receipt: see
    /// [`Case::apply_with_due`]).
    Escalate {
        /// The new grade.
        to: CaseGrade,
    },
    /// Referred to legal channels.
    ReferLegal {
        /// Note.
        note: String,
    },
    /// Reopened: a new handling round with a new deadline (see [`Case::apply_with_due`]).
    Reopen {
        /// Why.
        reason: String,
    },
    /// A note in the history.
    Note {
        /// Text.
        text: String,
    },
    /// Propose the department (and person) to handle it, for a leader's approval (拟定承办科室).
    Propose {
        /// Department code.
        department: String,
        /// Staff id of the person to handle it.
        assignee: Option<String>,
    },
    /// Approve the transfer to a department (批转): assigns the case, as proposed or to another department.
    Approve {
        /// Department code.
        department: String,
        /// Staff id of the person handling it.
        assignee: Option<String>,
    },
    /// Record an improvement measure (整改措施) a department commits to by a day; also after the case is closed.
    PlanImprovement {
        /// Department code.
        department: String,
        /// What will be changed.
        measure: String,
        /// By when (required).
        due: Option<NaiveDate>,
    },
    /// Record an improvement measure carried out, with its effect.
    ImprovementDone {
        /// The stamp of the measure's plan event.
        plan: Hlc,
        /// What was done and what it changed.
        effect: String,
    },
}

impl CaseAction {
    /// The action's stable name (audit details, logs).
    pub fn name(&self) -> &'static str {
        match self {
            CaseAction::Assign { .. } => "assign",
            CaseAction::Investigate => "investigate",
            CaseAction::Resolve { .. } => "resolve",
            CaseAction::NotEstablished { .. } => "not_established",
            CaseAction::Notify { .. } => "notify",
            CaseAction::Close { .. } => "close",
            CaseAction::Escalate { .. } => "escalate",
            CaseAction::ReferLegal { .. } => "refer_legal",
            CaseAction::Reopen { .. } => "reopen",
            CaseAction::Note { .. } => "note",
            CaseAction::Propose { .. } => "propose",
            CaseAction::Approve { .. } => "approve",
            CaseAction::PlanImprovement { .. } => "plan_improvement",
            CaseAction::ImprovementDone { .. } => "improvement_done",
        }
    }

    /// Whether applying it sets a new deadline (escalation, reopening): [`Case::apply_with_due`] needs one.
    pub fn sets_deadline(&self) -> bool {
        matches!(self, CaseAction::Escalate { .. } | CaseAction::Reopen { .. })
    }
}

impl Case {
    /// Applies an action that sets no deadline; see [`Case::apply_with_due`].
    pub fn apply(&mut self, action: CaseAction, at: Moment, by: StaffRef, stamp: Hlc) -> Result<(), ValidationErrors> {
        self.apply_with_due(action, None, at, by, stamp)
    }

    /// Applies an action: checks it against the current status and 回避, moves the status forward (never
    /// backward), updates the stamped fields, and appends the event. Escalation and reopening set the deadline
    /// `due` (what policy decides, and whether the calendar had to guess); without one they are refused.
    pub fn apply_with_due(
        &mut self,
        action: CaseAction,
        due: Option<(NaiveDate, bool)>,
        at: Moment,
        by: StaffRef,
        stamp: Hlc,
    ) -> Result<(), ValidationErrors> {
        if action.sets_deadline() && due.is_none() {
            let mut e = ValidationErrors::default();
            e.push("due", Problem::Required);
            return Err(e);
        }
        let before = self.clone();
        let r = self.apply_inner(action, due.unwrap_or(self.due.value), at, by, stamp);
        if r.is_err() {
            // A refused action leaves the case exactly as it was.
            *self = before;
        }
        r
    }

    fn apply_inner(
        &mut self,
        action: CaseAction,
        due: (NaiveDate, bool),
        at: Moment,
        by: StaffRef,
        stamp: Hlc,
    ) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        let status = self.current();
        let approved = matches!(action, CaseAction::Approve { .. });
        let need_open = |e: &mut ValidationErrors| {
            if status.is_final() {
                e.push("status", Problem::Conflict("the case is closed; reopen it first"));
            }
        };
        let (to, kind, note) = match action {
            CaseAction::Assign { department, assignee } | CaseAction::Approve { department, assignee } => {
                need_open(&mut e);
                let (department, assignee) = self.check_assignee(&mut e, &department, assignee);
                let to = (status.rank() < CaseStatus::Assigned.rank()).then_some(CaseStatus::Assigned);
                self.assigned_department.set(Some(department.clone()), stamp);
                self.assignee.set(assignee.clone(), stamp);
                let kind = if approved {
                    CaseEventKind::Approved { department, assignee }
                } else {
                    CaseEventKind::Assigned { department, assignee }
                };
                (to, kind, None)
            }
            CaseAction::Propose { department, assignee } => {
                need_open(&mut e);
                let (department, assignee) = self.check_assignee(&mut e, &department, assignee);
                (None, CaseEventKind::Proposed { department, assignee }, None)
            }
            CaseAction::PlanImprovement { department, measure, due } => {
                let department = validate::text(&mut e, "department", &department, limits::SHORT, true);
                let measure = validate::text(&mut e, "measure", &measure, limits::LONG, true);
                if due.is_none() {
                    e.push("due", Problem::Required);
                }
                let due = due.unwrap_or(NaiveDate::MIN);
                (None, CaseEventKind::ImprovementPlanned { department, measure, due }, None)
            }
            CaseAction::ImprovementDone { plan, effect } => {
                let effect = validate::text(&mut e, "effect", &effect, limits::LONG, true);
                match self.improvements().iter().find(|i| i.planned.stamp == plan) {
                    None => e.push("plan", Problem::Conflict("no such improvement measure on this case")),
                    Some(i) if i.done.is_some() => {
                        e.push("plan", Problem::Conflict("this improvement measure is recorded done already"));
                    }
                    Some(_) => {}
                }
                (None, CaseEventKind::ImprovementDone { plan, effect }, None)
            }
            CaseAction::Investigate => {
                need_open(&mut e);
                (Some(CaseStatus::Investigating), CaseEventKind::Investigating, None)
            }
            CaseAction::Resolve { resolution, actions, responsible } => {
                need_open(&mut e);
                let resolution = validate::text(&mut e, "resolution", &resolution, limits::LONG, true);
                let actions = validate::text(&mut e, "actions", &actions, limits::LONG, false);
                let responsible = validate::text(&mut e, "responsible", &responsible, limits::NAME, true);
                (Some(CaseStatus::Resolved), CaseEventKind::Resolved { resolution, actions, responsible }, None)
            }
            CaseAction::NotEstablished { explanation } => {
                need_open(&mut e);
                let explanation = validate::text(&mut e, "explanation", &explanation, limits::LONG, true);
                (Some(CaseStatus::NotEstablished), CaseEventKind::NotEstablished, Some(explanation))
            }
            CaseAction::Notify { note } => {
                if status.rank() != CaseStatus::Resolved.rank() {
                    e.push(
                        "status",
                        Problem::Conflict("tell the complainant once the case is resolved or found not established"),
                    );
                }
                let note = validate::opt_text(&mut e, "note", &note, limits::LONG);
                (Some(CaseStatus::Notified), CaseEventKind::Notified, note)
            }
            CaseAction::Close { satisfaction, explanation } => {
                need_open(&mut e);
                let note = validate::opt_text(&mut e, "explanation", &explanation, limits::LONG);
                if status.rank() < CaseStatus::Resolved.rank() {
                    e.push(
                        "status",
                        Problem::Conflict("a case is closed after it is resolved or found not established"),
                    );
                }
                self.handling_satisfaction.set(satisfaction, stamp);
                self.closed_at.set(Some(at), stamp);
                (Some(CaseStatus::Closed), CaseEventKind::Closed { satisfaction }, note)
            }
            CaseAction::Escalate { to } => {
                need_open(&mut e);
                let from = self.grade.value;
                if to <= from {
                    e.push("grade", Problem::Conflict("escalation goes to a higher grade"));
                }
                self.grade.set(to, stamp);
                self.due.set(due, stamp);
                (None, CaseEventKind::Escalated { from, to, due: due.0 }, None)
            }
            CaseAction::ReferLegal { note } => {
                need_open(&mut e);
                let note = validate::opt_text(&mut e, "note", &note, limits::LONG);
                (Some(CaseStatus::ReferredLegal), CaseEventKind::ReferredLegal, note)
            }
            CaseAction::Reopen { reason } => {
                if !status.is_final() {
                    e.push("status", Problem::Conflict("only a finished case can be reopened"));
                }
                let reason = validate::text(&mut e, "reason", &reason, limits::LONG, true);
                if e.is_empty() {
                    // A new round: merges order by (round, rank), so the reopened case wins over the closed one.
                    let round = self.status.value.round + 1;
                    self.status.set(RoundStatus { round, status: CaseStatus::Received }, stamp);
                    self.closed_at.set(None, stamp);
                    self.due.set(due, stamp);
                }
                (None, CaseEventKind::Reopened, Some(reason))
            }
            CaseAction::Note { text } => {
                let text = validate::text(&mut e, "text", &text, limits::LONG, true);
                (None, CaseEventKind::Note, Some(text))
            }
        };
        if let Some(to) = to
            && e.is_empty()
            && to.rank() <= status.rank()
        {
            e.push("status", Problem::Conflict("a case's status only moves forward"));
        }
        if !e.is_empty() {
            return Err(e);
        }
        if let Some(to) = to {
            self.status.set(RoundStatus { round: self.status.value.round, status: to }, stamp);
        }
        self.events.push(CaseEvent { at, by, kind, note, stamp });
        Ok(())
    }

    /// The department and assignee of an assignment, proposal or approval, checked: the department is required, and
    /// nobody handles a case about themselves (回避).
    fn check_assignee(
        &self,
        e: &mut ValidationErrors,
        department: &str,
        assignee: Option<String>,
    ) -> (String, Option<String>) {
        let department = validate::text(e, "department", department, limits::SHORT, true);
        if let Some(a) = &assignee
            && self.staff_concerned.iter().any(|s| s == a)
        {
            e.push("assignee", Problem::Conflict("the case concerns this person; assign someone else"));
        }
        (department, assignee)
    }

    /// What two desks did to this case while apart that cannot both stand, in its current round (since the last
    /// reopening): two closings, both a resolution and a "not established" finding, or two different resolutions.
    /// The merge keeps every event (one status wins by its stamp), so nothing is lost; such a case needs a
    /// supervisor's attention on every desk, who reads both and settles it by reopening it (a new round) and
    /// finishing it once.
    pub fn conflicts(&self) -> Vec<CaseConflict> {
        let start = self.events.iter().rposition(|e| matches!(e.kind, CaseEventKind::Reopened)).unwrap_or(0);
        let round = &self.events[start..];
        let mut out = Vec::new();
        if round.iter().filter(|e| matches!(e.kind, CaseEventKind::Closed { .. })).count() > 1 {
            out.push(CaseConflict::TwoClosings);
        }
        let resolutions: Vec<&CaseEventKind> =
            round.iter().map(|e| &e.kind).filter(|k| matches!(k, CaseEventKind::Resolved { .. })).collect();
        if !resolutions.is_empty() && round.iter().any(|e| matches!(e.kind, CaseEventKind::NotEstablished)) {
            out.push(CaseConflict::ResolvedAndNotEstablished);
        }
        if resolutions.windows(2).any(|w| w[0] != w[1]) {
            out.push(CaseConflict::TwoResolutions);
        }
        out
    }

    /// Whether the case is open and past its deadline on `day`.
    pub fn overdue_on(&self, day: NaiveDate) -> bool {
        self.is_open() && self.due.value.0 < day
    }
}

impl Merge for Case {
    fn merge(&mut self, other: &Self) {
        self.grade.merge(&other.grade);
        self.assigned_department.merge(&other.assigned_department);
        self.assignee.merge(&other.assignee);
        let key = |s: &Lww<RoundStatus>| (s.value.round, s.value.status.rank(), s.stamp);
        if key(&other.status) > key(&self.status) {
            self.status = other.status.clone();
        }
        self.due.merge(&other.due);
        self.handling_satisfaction.merge(&other.handling_satisfaction);
        self.closed_at.merge(&other.closed_at);
        merge_events(&mut self.events, &other.events, |e| e.stamp);
    }
}

/// The case form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseForm {
    /// Grade (chosen).
    pub grade: Option<CaseGrade>,
    /// Channel (chosen).
    pub channel: Option<CaseChannel>,
    /// Complainant's name.
    pub complainant: String,
    /// Complainant's phone.
    pub complainant_phone: String,
    /// Relation to the patient.
    pub relation: String,
    /// Departments concerned (codes).
    pub departments: Vec<String>,
    /// Staff concerned.
    pub staff_concerned: Vec<String>,
    /// Facts.
    pub facts: String,
    /// Request.
    pub request: String,
    /// Source feedback.
    pub from_feedback: Option<RecordId>,
}

/// A new case's identity and deadline, decided by the caller (policy + calendar).
#[derive(Debug, Clone)]
pub struct CaseOrigin {
    /// Id.
    pub id: RecordId,
    /// Receipt time.
    pub at: Moment,
    /// Receiver.
    pub by: StaffRef,
    /// Deadline and whether it was guessed.
    pub due: (NaiveDate, bool),
    /// Stamp.
    pub stamp: Hlc,
}

impl CaseForm {
    /// Validates the form and makes the record (status 已受理).
    pub fn into_record(&self, refs: &ReferenceData, origin: CaseOrigin) -> Result<Case, ValidationErrors> {
        let mut e = ValidationErrors::default();
        if self.grade.is_none() {
            e.push("grade", Problem::Required);
        }
        if self.channel.is_none() {
            e.push("channel", Problem::Required);
        }
        let complainant = validate::text(&mut e, "complainant", &self.complainant, limits::NAME, true);
        let phone = validate::opt_phone(&mut e, "complainant_phone", &self.complainant_phone);
        let relation = validate::opt_text(&mut e, "relation", &self.relation, limits::NAME);
        let mut departments: Vec<String> =
            self.departments.iter().map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect();
        departments.sort();
        departments.dedup();
        if let Some(bad) = departments.iter().find(|d| refs.department(d).is_none()) {
            e.push("departments", Problem::Unknown(bad.clone()));
        }
        let staff_concerned: Vec<String> =
            self.staff_concerned.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        let facts = validate::text(&mut e, "facts", &self.facts, limits::LONG, true);
        let request = validate::opt_text(&mut e, "request", &self.request, limits::LONG);
        if staff_concerned.contains(&origin.by.0) {
            // 回避: the receiver cannot own a case about themselves.
            e.push("staff_concerned", Problem::Conflict("a case about yourself must be received by someone else"));
        }
        let CaseOrigin { id, at, by, due, stamp } = origin;
        e.into_result(|| Case {
            id,
            received_at: at,
            received_by: by.clone(),
            channel: self.channel.unwrap_or(CaseChannel::Other),
            grade: Lww::new(self.grade.unwrap_or(CaseGrade::Complaint), stamp),
            complainant,
            complainant_phone: phone,
            relation,
            departments,
            staff_concerned,
            facts,
            request,
            from_feedback: self.from_feedback,
            assigned_department: Lww::new(None, stamp),
            assignee: Lww::new(None, stamp),
            status: Lww::new(RoundStatus { round: 0, status: CaseStatus::Received }, stamp),
            due: Lww::new(due, stamp),
            handling_satisfaction: Lww::new(None, stamp),
            closed_at: Lww::new(None, stamp),
            events: vec![CaseEvent { at, by, kind: CaseEventKind::Received, note: None, stamp }],
        })
    }
}

#[cfg(test)]
mod tests;
