//! Follow-up calls (回访): the tasks on the call worklist and every attempt made.

use chrono::NaiveDate;
use guidedesk_sync::Hlc;
use serde::{Deserialize, Serialize};

use super::common::{Lww, Merge, Moment, RecordId, StaffRef};
use super::feedback::Rating;
use super::validate::{self, Problem, ValidationErrors, limits};

/// Why a follow-up call is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowupSource {
    /// A discharge from the HIS discharge list.
    Discharge {
        /// The HIS's key for the stay (admission number), unique per discharge; re-imports are matched on it.
        his_key: String,
        /// Discharge date.
        discharged_on: NaiveDate,
        /// Diagnosis, if the list has it.
        diagnosis: Option<String>,
    },
    /// An outpatient first visit (called the next day).
    OutpatientFirstVisit {
        /// The arrival.
        arrival: RecordId,
    },
    /// Dissatisfied feedback with contact details (same day).
    Feedback {
        /// The feedback record.
        feedback: RecordId,
    },
    /// A closed case.
    Case {
        /// The case record.
        case: RecordId,
    },
    /// A supervisor's spot check (抽查) of a follow-up recorded as completed: the patient is called again to check the
    /// call took place and what it found (出院病人电话回访制度 8: 医务科、护理部、监察室每月或定期抽查病人).
    SpotCheck {
        /// The completed task checked.
        task: RecordId,
    },
    /// The second call after a discharge (7–15 days after it, by the customer-service centre).
    DischargeSecond {
        /// The HIS's key for the stay, as on the first call's task.
        his_key: String,
        /// Discharge date.
        discharged_on: NaiveDate,
    },
    /// A booking the patient did not come to (过期预约回访).
    NoShow {
        /// The booking.
        appointment: RecordId,
        /// The day it was for.
        day: NaiveDate,
    },
    /// A round of a chronic patient's plan (慢病随访: 2–4 weeks after discharge, then every three months).
    Chronic {
        /// The HIS's key for the stay, as on the discharge call's task.
        his_key: String,
        /// Discharge date.
        discharged_on: NaiveDate,
        /// The round, from 1.
        round: u32,
    },
}

impl FollowupSource {
    /// Stable key of the source type.
    pub fn kind_key(&self) -> &'static str {
        match self {
            FollowupSource::Discharge { .. } => "discharge",
            FollowupSource::OutpatientFirstVisit { .. } => "outpatient",
            FollowupSource::Feedback { .. } => "feedback",
            FollowupSource::Case { .. } => "case",
            FollowupSource::NoShow { .. } => "no_show",
            FollowupSource::DischargeSecond { .. } => "discharge_second",
            FollowupSource::SpotCheck { .. } => "spot_check",
            FollowupSource::Chronic { .. } => "chronic",
        }
    }

    /// A key unique per source event, so the same source never makes two tasks.
    pub fn dedup_key(&self) -> String {
        match self {
            FollowupSource::Discharge { his_key, discharged_on, .. } => format!("discharge:{his_key}:{discharged_on}"),
            FollowupSource::OutpatientFirstVisit { arrival } => format!("outpatient:{arrival}"),
            FollowupSource::Feedback { feedback } => format!("feedback:{feedback}"),
            FollowupSource::Case { case } => format!("case:{case}"),
            FollowupSource::NoShow { appointment, .. } => format!("no_show:{appointment}"),
            FollowupSource::DischargeSecond { his_key, discharged_on } => {
                format!("discharge2:{his_key}:{discharged_on}")
            }
            FollowupSource::SpotCheck { task } => format!("spot:{task}"),
            FollowupSource::Chronic { his_key, discharged_on, round } => {
                format!("chronic:{his_key}:{discharged_on}:{round}")
            }
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowupStatus {
    /// Still to call.
    Open,
    /// Reached and the script completed.
    Completed,
    /// Given up after unsuccessful attempts (never counted as satisfied).
    Unreachable,
    /// The patient refused the call.
    Refused,
    /// The patient has died.
    Deceased,
    /// Cancelled (e.g. created in error), with a reason in the attempt notes.
    Cancelled,
}

impl FollowupStatus {
    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            FollowupStatus::Open => "open",
            FollowupStatus::Completed => "completed",
            FollowupStatus::Unreachable => "unreachable",
            FollowupStatus::Refused => "refused",
            FollowupStatus::Deceased => "deceased",
            FollowupStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the task is off the worklist.
    pub fn is_final(self) -> bool {
        self != FollowupStatus::Open
    }
}

/// A follow-up task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowupTask {
    /// UUIDv7 id.
    pub id: RecordId,
    /// When the task was made.
    pub created_at: Moment,
    /// Who (or which import) made it.
    pub created_by: StaffRef,
    /// Why it exists.
    pub source: FollowupSource,
    /// Patient name (may be empty for anonymous feedback).
    pub patient_name: String,
    /// Phone digits to call.
    pub phone: String,
    /// Department the patient was treated in.
    pub department: Option<String>,
    /// Whether this is an inpatient follow-up (for rates and targets).
    pub inpatient: bool,
    /// First day of the due window.
    pub due_from: NaiveDate,
    /// Last day of the due window.
    pub due_to: NaiveDate,
    /// Status.
    pub status: Lww<FollowupStatus>,
    /// When the status last became final.
    pub closed_at: Lww<Option<Moment>>,
}

impl FollowupTask {
    /// Whether the task is on the worklist and `day` is inside or after its window.
    pub fn state_on(&self, day: NaiveDate) -> DueState {
        if self.status.value.is_final() {
            DueState::Done
        } else if day < self.due_from {
            DueState::Upcoming
        } else if day <= self.due_to {
            DueState::Due
        } else {
            DueState::Overdue
        }
    }
}

impl FollowupTask {
    /// The task's status after an attempt with `outcome`, when `attempts` attempts (this one included) have been
    /// made: reached → completed; refused, deceased → closed as such; wrong number → unreachable; no answer or busy →
    /// still open until `max_attempts` or the end of the window, then unreachable. `None` keeps the task open.
    pub fn status_after(
        &self,
        outcome: CallOutcome,
        attempts: usize,
        today: NaiveDate,
        max_attempts: u32,
    ) -> Option<FollowupStatus> {
        match outcome {
            CallOutcome::Reached => Some(FollowupStatus::Completed),
            CallOutcome::Refused => Some(FollowupStatus::Refused),
            CallOutcome::Deceased => Some(FollowupStatus::Deceased),
            CallOutcome::WrongNumber => Some(FollowupStatus::Unreachable),
            CallOutcome::NoAnswer | CallOutcome::Busy => {
                (attempts >= max_attempts as usize || today > self.due_to).then_some(FollowupStatus::Unreachable)
            }
        }
    }
}

/// A task's place relative to its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DueState {
    /// Before the window.
    Upcoming,
    /// Inside the window.
    Due,
    /// Past the window, still open.
    Overdue,
    /// Off the worklist.
    Done,
}

impl Merge for FollowupTask {
    fn merge(&mut self, other: &Self) {
        self.status.merge(&other.status);
        self.closed_at.merge(&other.closed_at);
    }
}

/// The result of one call attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// 接通
    Reached,
    /// 无人接听
    NoAnswer,
    /// 占线
    Busy,
    /// 号码错误
    WrongNumber,
    /// 拒访
    Refused,
    /// 患者已故
    Deceased,
}

impl CallOutcome {
    /// Every outcome.
    pub const ALL: [CallOutcome; 6] = [
        CallOutcome::Reached,
        CallOutcome::NoAnswer,
        CallOutcome::Busy,
        CallOutcome::WrongNumber,
        CallOutcome::Refused,
        CallOutcome::Deceased,
    ];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            CallOutcome::Reached => "reached",
            CallOutcome::NoAnswer => "no_answer",
            CallOutcome::Busy => "busy",
            CallOutcome::WrongNumber => "wrong_number",
            CallOutcome::Refused => "refused",
            CallOutcome::Deceased => "deceased",
        }
    }
}

/// What a reached call covered (the department's script).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CallScriptAnswers {
    /// Recovery.
    pub recovery: Option<String>,
    /// Medication.
    pub medication: Option<String>,
    /// Diet/activity guidance was given.
    pub guidance_given: bool,
    /// Re-visit reminder was given.
    pub revisit_reminder: bool,
    /// Satisfaction with the stay/visit.
    pub satisfaction: Option<Rating>,
    /// Suggestions.
    pub suggestions: Option<String>,
}

/// One call attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallAttempt {
    /// UUIDv7 id.
    pub id: RecordId,
    /// The task.
    pub task: RecordId,
    /// When the call was made.
    pub at: Moment,
    /// Who called.
    pub by: StaffRef,
    /// Result.
    pub outcome: CallOutcome,
    /// Script answers (reached calls only).
    pub script: Option<CallScriptAnswers>,
    /// A worrying condition to flag to the department head at once.
    pub worrying: bool,
    /// Notes.
    pub notes: Option<String>,
}

impl Merge for CallAttempt {
    /// Attempts are append-only; copies are identical.
    fn merge(&mut self, _other: &Self) {}
}

/// A caller's hold on a follow-up task, replicated to every desk of the site so two callers do not ring the same
/// patient: made when a caller opens the task ("being called by X"), ended by a release, by that caller's next
/// recorded attempt, or by age (the policy's `claim_minutes`). Append-only: the latest claim event of a task (in HLC
/// order, so a release made after seeing a claim always follows it) wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallClaim {
    /// UUIDv7 id.
    pub id: RecordId,
    /// The task.
    pub task: RecordId,
    /// When the caller opened (or let go of) the task.
    pub at: Moment,
    /// The event's HLC stamp: orders the claims of a task across desks.
    pub stamp: Hlc,
    /// The caller.
    pub by: StaffRef,
    /// Whether this event lets go of the task rather than taking it.
    pub released: bool,
}

impl Merge for CallClaim {
    /// Claim events are append-only; copies are identical.
    fn merge(&mut self, _other: &Self) {}
}

/// Who holds a task now, from its claim events and attempts: the latest event (by HLC stamp), if it is a claim
/// younger than `ttl_ms` at `now` and its caller has recorded no attempt on the task since. `None` when nobody does.
pub fn current_claim<'c>(
    claims: impl IntoIterator<Item = &'c CallClaim>,
    attempts: &[CallAttempt],
    now: Moment,
    ttl_ms: i64,
) -> Option<&'c CallClaim> {
    let latest = claims.into_iter().max_by_key(|c| c.stamp)?;
    let live = !latest.released
        && now.0.saturating_sub(latest.at.0) < ttl_ms
        && !attempts.iter().any(|a| a.task == latest.task && a.by == latest.by && a.at >= latest.at);
    live.then_some(latest)
}

/// Whether an attempt with this outcome ends the call (the task's status becomes final when it is recorded).
pub fn closes_task(outcome: CallOutcome) -> bool {
    !matches!(outcome, CallOutcome::NoAnswer | CallOutcome::Busy)
}

/// Tasks that more than one call closed — two callers reached (or gave up on) the same patient while their desks
/// were apart: task → those attempts, oldest first. Both are kept; a supervisor sees the pair.
pub fn double_calls(attempts: &[CallAttempt]) -> std::collections::BTreeMap<RecordId, Vec<CallAttempt>> {
    let mut by_task: std::collections::BTreeMap<RecordId, Vec<CallAttempt>> = std::collections::BTreeMap::new();
    for a in attempts.iter().filter(|a| closes_task(a.outcome)) {
        by_task.entry(a.task).or_default().push(a.clone());
    }
    by_task.retain(|_, v| v.len() > 1);
    for v in by_task.values_mut() {
        v.sort_by_key(|a| (a.at, a.id));
    }
    by_task
}

/// A call attempt as entered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallAttemptForm {
    /// Outcome (chosen).
    pub outcome: Option<CallOutcome>,
    /// Recovery.
    pub recovery: String,
    /// Medication.
    pub medication: String,
    /// Guidance given.
    pub guidance_given: bool,
    /// Re-visit reminder given.
    pub revisit_reminder: bool,
    /// Satisfaction.
    pub satisfaction: Option<Rating>,
    /// Suggestions.
    pub suggestions: String,
    /// Worrying condition.
    pub worrying: bool,
    /// Notes.
    pub notes: String,
}

impl CallAttemptForm {
    /// Validates and makes the record.
    pub fn into_record(
        &self,
        id: RecordId,
        task: RecordId,
        at: Moment,
        by: StaffRef,
    ) -> Result<CallAttempt, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let notes = validate::opt_text(&mut e, "notes", &self.notes, limits::LONG);
        let recovery = validate::opt_text(&mut e, "recovery", &self.recovery, limits::LONG);
        let medication = validate::opt_text(&mut e, "medication", &self.medication, limits::LONG);
        let suggestions = validate::opt_text(&mut e, "suggestions", &self.suggestions, limits::LONG);
        let reached = self.outcome == Some(CallOutcome::Reached);
        match self.outcome {
            None => e.push("outcome", Problem::Required),
            Some(_) if !reached && (self.satisfaction.is_some() || self.worrying) => {
                e.push("satisfaction", Problem::Conflict("only a reached call records answers"));
            }
            Some(_) => {}
        }
        let script = reached.then_some(CallScriptAnswers {
            recovery,
            medication,
            guidance_given: self.guidance_given,
            revisit_reminder: self.revisit_reminder,
            satisfaction: self.satisfaction,
            suggestions,
        });
        e.into_result(|| CallAttempt {
            id,
            task,
            at,
            by,
            outcome: self.outcome.unwrap_or(CallOutcome::NoAnswer),
            script,
            worrying: self.worrying && reached,
            notes,
        })
    }
}

/// Helper for building a task's status field at creation.
pub fn open_status(stamp: Hlc) -> Lww<FollowupStatus> {
    Lww::new(FollowupStatus::Open, stamp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unreached_calls_cannot_carry_satisfaction() {
        let f = CallAttemptForm {
            outcome: Some(CallOutcome::NoAnswer),
            satisfaction: Some(Rating::Satisfied),
            ..CallAttemptForm::default()
        };
        let id = RecordId::new_v7(Moment(1));
        let e = f.into_record(id, id, Moment(1), StaffRef("c".into())).unwrap_err();
        assert!(matches!(e.get("satisfaction"), Some(Problem::Conflict(_))));
        let ok = CallAttemptForm { outcome: Some(CallOutcome::Reached), ..f }
            .into_record(id, id, Moment(1), StaffRef("c".into()))
            .unwrap();
        assert_eq!(ok.script.unwrap().satisfaction, Some(Rating::Satisfied));
    }

    fn claim(task: RecordId, at: i64, by: &str, released: bool) -> CallClaim {
        let stamp = Hlc { wall_ms: u64::try_from(at).unwrap(), logical: 0, node: 1 };
        CallClaim { id: RecordId::new_v7(Moment(at)), task, at: Moment(at), stamp, by: StaffRef(by.into()), released }
    }

    fn attempt(task: RecordId, at: i64, by: &str, outcome: CallOutcome) -> CallAttempt {
        CallAttempt {
            id: RecordId::new_v7(Moment(at)),
            task,
            at: Moment(at),
            by: StaffRef(by.into()),
            outcome,
            script: None,
            worrying: false,
            notes: None,
        }
    }

    /// Shared worklist: the latest claim event holds the task until it is released, its caller records an attempt,
    /// or it is older than the policy's claim time.
    #[test]
    fn the_latest_claim_holds_a_task_until_released_called_or_stale() {
        let task = RecordId::new_v7(Moment(1));
        let ttl = 20 * 60_000;
        let a = claim(task, 1_000, "g1", false);
        let b = claim(task, 2_000, "g2", false);
        assert_eq!(current_claim([&a, &b], &[], Moment(3_000), ttl).map(|c| c.by.0.as_str()), Some("g2"));
        // Order of arrival does not matter.
        assert_eq!(current_claim([&b, &a], &[], Moment(3_000), ttl).map(|c| c.by.0.as_str()), Some("g2"));
        // Stale after the claim time.
        assert!(current_claim([&a, &b], &[], Moment(2_000 + ttl), ttl).is_none());
        // Released.
        let r = claim(task, 2_500, "g2", true);
        assert!(current_claim([&a, &b, &r], &[], Moment(3_000), ttl).is_none());
        // The holder's own attempt ends it; someone else's does not.
        let other = attempt(task, 2_600, "g1", CallOutcome::NoAnswer);
        assert!(current_claim([&a, &b], std::slice::from_ref(&other), Moment(3_000), ttl).is_some());
        let own = attempt(task, 2_600, "g2", CallOutcome::NoAnswer);
        assert!(current_claim([&a, &b], &[own], Moment(3_000), ttl).is_none());
        assert!(current_claim([], &[], Moment(3_000), ttl).is_none());
    }

    /// Shared worklist: two closing calls of one task are both kept and flagged; unanswered tries are not.
    #[test]
    fn two_closing_calls_of_one_task_are_flagged() {
        let (t1, t2) = (RecordId::new_v7(Moment(1)), RecordId::new_v7(Moment(2)));
        let calls = [
            attempt(t1, 10, "g1", CallOutcome::Reached),
            attempt(t1, 5, "g2", CallOutcome::Reached),
            attempt(t2, 10, "g1", CallOutcome::NoAnswer),
            attempt(t2, 11, "g2", CallOutcome::Reached),
        ];
        let flagged = double_calls(&calls);
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[&t1].iter().map(|a| a.by.0.as_str()).collect::<Vec<_>>(), ["g2", "g1"]);
    }

    #[test]
    fn due_states() {
        let d = |n| NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        let t = FollowupTask {
            id: RecordId::new_v7(Moment(1)),
            created_at: Moment(1),
            created_by: StaffRef("import".into()),
            source: FollowupSource::Discharge { his_key: "Z1".into(), discharged_on: d(1), diagnosis: None },
            patient_name: "周".into(),
            phone: "13800138000".into(),
            department: None,
            inpatient: true,
            due_from: d(8),
            due_to: d(11),
            status: open_status(Hlc::ZERO),
            closed_at: Lww::new(None, Hlc::ZERO),
        };
        assert_eq!(t.state_on(d(7)), DueState::Upcoming);
        assert_eq!(t.state_on(d(11)), DueState::Due);
        assert_eq!(t.state_on(d(12)), DueState::Overdue);
        assert_eq!(t.source.dedup_key(), "discharge:Z1:2026-11-01");
        assert_eq!(t.status_after(CallOutcome::Reached, 1, d(9), 3), Some(FollowupStatus::Completed));
        assert_eq!(t.status_after(CallOutcome::NoAnswer, 2, d(9), 3), None);
        assert_eq!(t.status_after(CallOutcome::Busy, 3, d(9), 3), Some(FollowupStatus::Unreachable));
        assert_eq!(t.status_after(CallOutcome::NoAnswer, 1, d(12), 3), Some(FollowupStatus::Unreachable));
        assert_eq!(t.status_after(CallOutcome::WrongNumber, 1, d(9), 3), Some(FollowupStatus::Unreachable));
    }
}
