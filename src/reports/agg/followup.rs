//! Follow-up tasks by group and department, and call attempts.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::add_arr;
use crate::model::{CallAttempt, CallOutcome, FollowupSource, FollowupStatus, FollowupTask};
use crate::reports::ReportParams;
use crate::reports::kpi::RatingCounts;

/// Why a follow-up task exists, for rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskGroup {
    /// Discharged inpatients (target: inpatient rate).
    Discharge,
    /// Outpatient first visits (target: outpatient rate).
    Outpatient,
    /// Dissatisfied feedback with contact details.
    Feedback,
    /// Closed cases.
    Case,
    /// Bookings the patient did not come to.
    NoShow,
    /// Second calls after a discharge.
    DischargeSecond,
    /// Supervisors' spot checks of completed calls.
    SpotCheck,
    /// Rounds of chronic patients' plans.
    Chronic,
}

impl TaskGroup {
    /// Every group.
    pub const ALL: [TaskGroup; 8] = [
        TaskGroup::Discharge,
        TaskGroup::DischargeSecond,
        TaskGroup::Chronic,
        TaskGroup::Outpatient,
        TaskGroup::Feedback,
        TaskGroup::Case,
        TaskGroup::NoShow,
        TaskGroup::SpotCheck,
    ];

    /// The group of a task.
    pub fn of(t: &FollowupTask) -> TaskGroup {
        match t.source {
            FollowupSource::Discharge { .. } => TaskGroup::Discharge,
            FollowupSource::OutpatientFirstVisit { .. } => TaskGroup::Outpatient,
            FollowupSource::Feedback { .. } => TaskGroup::Feedback,
            FollowupSource::Case { .. } => TaskGroup::Case,
            FollowupSource::NoShow { .. } => TaskGroup::NoShow,
            FollowupSource::DischargeSecond { .. } => TaskGroup::DischargeSecond,
            FollowupSource::SpotCheck { .. } => TaskGroup::SpotCheck,
            FollowupSource::Chronic { .. } => TaskGroup::Chronic,
        }
    }

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            TaskGroup::Discharge => "discharge",
            TaskGroup::Outpatient => "outpatient",
            TaskGroup::Feedback => "feedback",
            TaskGroup::Case => "case",
            TaskGroup::NoShow => "no_show",
            TaskGroup::DischargeSecond => "discharge_second",
            TaskGroup::SpotCheck => "spot_check",
            TaskGroup::Chronic => "chronic",
        }
    }
}

/// Follow-up tasks by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskCounts {
    /// Tasks.
    pub total: u64,
    /// Reached and the script completed.
    pub completed: u64,
    /// Given up after unsuccessful attempts.
    pub unreachable: u64,
    /// The patient refused.
    pub refused: u64,
    /// The patient has died.
    pub deceased: u64,
    /// Cancelled (created in error).
    pub cancelled: u64,
    /// Open, window not over as of the as-of day.
    pub pending: u64,
    /// Open past the window.
    pub overdue: u64,
}

impl TaskCounts {
    pub(super) fn add(&mut self, t: &FollowupTask, as_of: NaiveDate) {
        self.total += 1;
        match t.status.value {
            FollowupStatus::Completed => self.completed += 1,
            FollowupStatus::Unreachable => self.unreachable += 1,
            FollowupStatus::Refused => self.refused += 1,
            FollowupStatus::Deceased => self.deceased += 1,
            FollowupStatus::Cancelled => self.cancelled += 1,
            FollowupStatus::Open if t.due_to >= as_of => self.pending += 1,
            FollowupStatus::Open => self.overdue += 1,
        }
    }

    /// Adds other counts.
    pub fn merge(&mut self, o: &TaskCounts) {
        self.total += o.total;
        self.completed += o.completed;
        self.unreachable += o.unreachable;
        self.refused += o.refused;
        self.deceased += o.deceased;
        self.cancelled += o.cancelled;
        self.pending += o.pending;
        self.overdue += o.overdue;
    }

    /// Tasks that should have been completed by now: all but cancelled, deceased and pending.
    pub fn eligible(&self) -> u64 {
        self.total - self.cancelled - self.deceased - self.pending
    }

    /// Tasks not reached: unreachable, refused, and open past the window.
    pub fn not_reached(&self) -> u64 {
        self.unreachable + self.refused + self.overdue
    }
}

/// Follow-up tasks created in the period, by group and department (empty code: none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FollowupAcc {
    /// Per (group, department).
    pub tasks: BTreeMap<(TaskGroup, String), TaskCounts>,
}

impl FollowupAcc {
    /// Folds one task in.
    pub fn add(&mut self, t: &FollowupTask, p: &ReportParams) {
        let key = (TaskGroup::of(t), t.department.clone().unwrap_or_default());
        self.tasks.entry(key).or_default().add(t, p.as_of);
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &FollowupAcc) {
        for (k, v) in &o.tasks {
            self.tasks.entry(k.clone()).or_default().merge(v);
        }
    }

    /// All tasks of a group.
    pub fn group(&self, g: TaskGroup) -> TaskCounts {
        let mut t = TaskCounts::default();
        for (_, v) in self.tasks.iter().filter(|((k, _), _)| *k == g) {
            t.merge(v);
        }
        t
    }
}

/// Call attempts made in the period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallAcc {
    /// Attempts.
    pub total: u64,
    /// By outcome, in [`CallOutcome::ALL`] order.
    pub outcomes: [u64; 6],
    /// Satisfaction stated on reached calls.
    pub satisfaction: RatingCounts,
    /// Reached calls without a satisfaction answer.
    pub reached_without_rating: u64,
    /// Reached calls that flagged a worrying condition.
    pub worrying: u64,
}

impl CallAcc {
    /// Folds one attempt in. Only a reached call can carry satisfaction: an unreached one is never counted.
    pub fn add(&mut self, c: &CallAttempt) {
        self.total += 1;
        let i = CallOutcome::ALL.iter().position(|o| *o == c.outcome).unwrap_or(0);
        self.outcomes[i] += 1;
        if c.outcome == CallOutcome::Reached {
            match c.script.as_ref().and_then(|s| s.satisfaction) {
                Some(r) => self.satisfaction.add(r),
                None => self.reached_without_rating += 1,
            }
            if c.worrying {
                self.worrying += 1;
            }
        }
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &CallAcc) {
        self.total += o.total;
        add_arr(&mut self.outcomes, &o.outcomes);
        self.satisfaction.merge(&o.satisfaction);
        self.reached_without_rating += o.reached_without_rating;
        self.worrying += o.worrying;
    }

    /// Attempts with an outcome.
    pub fn outcome(&self, o: CallOutcome) -> u64 {
        CallOutcome::ALL.iter().position(|x| *x == o).map_or(0, |i| self.outcomes[i])
    }
}
