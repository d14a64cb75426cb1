//! Cases: standing against the deadline, the case list, counts by grade and department, accountability.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{add_map, cap_list};
use crate::model::{Case, CaseChannel, CaseEventKind, CaseGrade, CaseStatus, Moment, Rating, RecordId};
use crate::reports::kpi::RatingCounts;
use crate::reports::{ReportParams, YearMonth};

/// Where a case stands against its deadline, as of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Closure {
    /// Closed on or before the due date.
    OnTime,
    /// Closed after the due date.
    Late,
    /// Open, due date not passed (due today counts as not passed).
    OpenNotDue,
    /// Open past the due date.
    Overdue,
}

impl Closure {
    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            Closure::OnTime => "on_time",
            Closure::Late => "late",
            Closure::OpenNotDue => "open_not_due",
            Closure::Overdue => "overdue",
        }
    }
}

/// When a finished case was closed: its `closed_at`, else the time of the event that finished it.
pub fn closed_moment(c: &Case) -> Option<Moment> {
    if !c.current().is_final() {
        return None;
    }
    c.closed_at.value.or_else(|| {
        c.events
            .iter()
            .rev()
            .find(|e| matches!(e.kind, CaseEventKind::Closed { .. } | CaseEventKind::ReferredLegal))
            .or(c.events.last())
            .map(|e| e.at)
    })
}

/// A case's standing: closed (closed or referred to legal channels) on time or late, or open and overdue or not.
/// Closure is judged on the local day of closing against the due date.
pub fn closure(c: &Case, p: &ReportParams) -> Closure {
    let due = c.due.value.0;
    match closed_moment(c) {
        Some(m) if m.local_date(p.offset) <= due => Closure::OnTime,
        Some(_) => Closure::Late,
        None if p.as_of > due => Closure::Overdue,
        None => Closure::OpenNotDue,
    }
}

/// Counts of cases by standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClosureCounts {
    /// Cases received.
    pub received: u64,
    /// Closed on time.
    pub on_time: u64,
    /// Closed late.
    pub late: u64,
    /// Open, not yet due.
    pub open_not_due: u64,
    /// Open past due.
    pub overdue: u64,
}

impl ClosureCounts {
    pub(super) fn add(&mut self, c: Closure) {
        self.received += 1;
        match c {
            Closure::OnTime => self.on_time += 1,
            Closure::Late => self.late += 1,
            Closure::OpenNotDue => self.open_not_due += 1,
            Closure::Overdue => self.overdue += 1,
        }
    }

    pub(super) fn merge(&mut self, o: &ClosureCounts) {
        self.received += o.received;
        self.on_time += o.on_time;
        self.late += o.late;
        self.open_not_due += o.open_not_due;
        self.overdue += o.overdue;
    }

    /// The denominator of on-time closure: closed cases plus open cases past due.
    pub fn judged(&self) -> u64 {
        self.on_time + self.late + self.overdue
    }
}

/// A case, for the opinion sheet's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseItem {
    /// The case.
    pub id: RecordId,
    /// Received.
    pub received_at: Moment,
    /// Current grade.
    pub grade: CaseGrade,
    /// Channel.
    pub channel: CaseChannel,
    /// Departments concerned.
    pub departments: Vec<String>,
    /// Complainant's name (masked when shown).
    pub complainant: String,
    /// Facts and reasons.
    pub facts: String,
    /// Request.
    pub request: Option<String>,
    /// Current status.
    pub status: CaseStatus,
    /// Due date.
    pub due: NaiveDate,
    /// Standing against the deadline.
    pub closure: Closure,
    /// The complainant's rating of the handling.
    pub handling: Option<Rating>,
}

/// The departments a case is counted under: those concerned, else the assigned one, else none (empty code).
pub fn case_departments(c: &Case) -> Vec<String> {
    if !c.departments.is_empty() {
        return c.departments.clone();
    }
    vec![c.assigned_department.value.clone().unwrap_or_default()]
}

/// Cases received in the period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaseAcc {
    /// Cases.
    pub total: u64,
    /// By current grade.
    pub by_grade: BTreeMap<CaseGrade, ClosureCounts>,
    /// By department (a case concerning two departments counts under both).
    pub by_department: BTreeMap<String, DeptCases>,
    /// By channel.
    pub by_channel: BTreeMap<CaseChannel, u64>,
    /// Handling ratings of finished complaints (every grade but 情况反馈 and 建议: [`CaseGrade::is_complaint`]).
    pub handling: RatingCounts,
    /// Finished complaints without a handling rating (not asked or not answered).
    pub handling_not_rated: u64,
    /// Handling ratings of every finished case, 情况反馈 and 建议 included (the figure a hospital that reads the
    /// rule the other way reports).
    pub handling_all: RatingCounts,
    /// Cases, earliest first, at most [`MAX_LISTED`].
    pub items: Vec<CaseItem>,
    /// Cases beyond the listed ones.
    pub items_not_listed: u64,
}

/// Cases of one department.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeptCases {
    /// By grade.
    pub by_grade: BTreeMap<CaseGrade, u64>,
    /// By standing.
    pub closure: ClosureCounts,
}

impl CaseAcc {
    /// Folds one case in.
    pub fn add(&mut self, c: &Case, p: &ReportParams) {
        let grade = c.grade.value;
        let st = closure(c, p);
        self.total += 1;
        self.by_grade.entry(grade).or_default().add(st);
        for d in case_departments(c) {
            let e = self.by_department.entry(d).or_default();
            *e.by_grade.entry(grade).or_default() += 1;
            e.closure.add(st);
        }
        *self.by_channel.entry(c.channel).or_default() += 1;
        if c.current().is_final() {
            if let Some(r) = c.handling_satisfaction.value {
                self.handling_all.add(r);
            }
            if grade.is_complaint() {
                match c.handling_satisfaction.value {
                    Some(r) => self.handling.add(r),
                    None => self.handling_not_rated += 1,
                }
            }
        }
        self.items.push(CaseItem {
            id: c.id,
            received_at: c.received_at,
            grade,
            channel: c.channel,
            departments: c.departments.clone(),
            complainant: c.complainant.clone(),
            facts: c.facts.clone(),
            request: c.request.clone(),
            status: c.current(),
            due: c.due.value.0,
            closure: st,
            handling: c.handling_satisfaction.value,
        });
        cap_list(&mut self.items, &mut self.items_not_listed, |i| (i.received_at, i.id));
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &CaseAcc) {
        self.total += o.total;
        for (k, v) in &o.by_grade {
            self.by_grade.entry(*k).or_default().merge(v);
        }
        for (k, v) in &o.by_department {
            let d = self.by_department.entry(k.clone()).or_default();
            add_map(&mut d.by_grade, &v.by_grade);
            d.closure.merge(&v.closure);
        }
        add_map(&mut self.by_channel, &o.by_channel);
        self.handling.merge(&o.handling);
        self.handling_not_rated += o.handling_not_rated;
        self.handling_all.merge(&o.handling_all);
        self.items.extend(o.items.iter().cloned());
        self.items_not_listed += o.items_not_listed;
        cap_list(&mut self.items, &mut self.items_not_listed, |i| (i.received_at, i.id));
    }

    /// All cases by standing.
    pub fn closure_total(&self) -> ClosureCounts {
        let mut t = ClosureCounts::default();
        for v in self.by_grade.values() {
            t.merge(v);
        }
        t
    }
}

/// Accountability counts (seed 003, section 四) of one department or person in one month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountCounts {
    /// 不满意 and 非常不满意.
    pub dissatisfied: u64,
    /// 投诉.
    pub complaints: u64,
    /// 纠纷.
    pub disputes: u64,
    /// 事故.
    pub incidents: u64,
}

impl AccountCounts {
    pub(super) fn add(&mut self, g: CaseGrade) {
        match g {
            CaseGrade::Dissatisfied | CaseGrade::VeryDissatisfied => self.dissatisfied += 1,
            CaseGrade::Complaint => self.complaints += 1,
            CaseGrade::Dispute => self.disputes += 1,
            CaseGrade::Incident => self.incidents += 1,
            CaseGrade::Feedback | CaseGrade::Suggestion => {}
        }
    }

    /// Adds other counts.
    pub fn merge(&mut self, o: &AccountCounts) {
        self.dissatisfied += o.dissatisfied;
        self.complaints += o.complaints;
        self.disputes += o.disputes;
        self.incidents += o.incidents;
    }

    /// Whether any grade that counts was seen.
    pub fn is_empty(&self) -> bool {
        *self == AccountCounts::default()
    }
}

/// Monthly accountability counts per department and per staff member concerned, by month of receipt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountabilityAcc {
    /// Per (department code, month).
    pub departments: BTreeMap<(String, YearMonth), AccountCounts>,
    /// Per (staff id or name as recorded, month).
    pub staff: BTreeMap<(String, YearMonth), AccountCounts>,
}

impl AccountabilityAcc {
    /// Folds one case in (by its current grade). Feedback and suggestions count nowhere, and neither does a case
    /// found not established (不成立): the penalties of seed 003 §四 are for dissatisfaction and complaints that
    /// stand; one that does not is explained to the complainant instead (§三.5).
    pub fn add(&mut self, c: &Case, p: &ReportParams) {
        let grade = c.grade.value;
        if !grade.is_complaint() || c.found_not_established() {
            return;
        }
        let month = YearMonth::of(c.received_at.local_date(p.offset));
        for d in case_departments(c) {
            self.departments.entry((d, month)).or_default().add(grade);
        }
        let mut staff: Vec<&String> = c.staff_concerned.iter().collect();
        staff.sort();
        staff.dedup();
        for s in staff {
            self.staff.entry((s.clone(), month)).or_default().add(grade);
        }
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &AccountabilityAcc) {
        for (k, v) in &o.departments {
            self.departments.entry(k.clone()).or_default().merge(v);
        }
        for (k, v) in &o.staff {
            self.staff.entry(k.clone()).or_default().merge(v);
        }
    }
}
