//! Improvement measures (整改措施) recorded on cases: planned, due, carried out on time or late, and still open past
//! their day, per department (客户服务中心管理方案: "对回访中了解到的问题…及时进行整改"; the department puts its
//! measures in place and reports their effect back).

use std::collections::BTreeMap;

use crate::model::Case;
use crate::reports::ReportParams;

/// Counts of one department's improvement measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImprovementCounts {
    /// Measures recorded in the period.
    pub planned: u64,
    /// Measures due in the period.
    pub due: u64,
    /// Of those due in the period, carried out by their day (as of the as-of day).
    pub done_on_time: u64,
    /// Of those due in the period, carried out after their day (as of the as-of day).
    pub done_late: u64,
    /// Measures due before the as-of day (in the period or earlier) and not carried out by it.
    pub open_overdue: u64,
}

impl ImprovementCounts {
    fn merge(&mut self, o: &ImprovementCounts) {
        self.planned += o.planned;
        self.due += o.due;
        self.done_on_time += o.done_on_time;
        self.done_late += o.done_late;
        self.open_overdue += o.open_overdue;
    }
}

/// Improvement measures per department, from the cases of the accountability look-back (a measure may be recorded
/// and carried out months after its case was received).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImprovementAcc {
    /// Per department code.
    pub by_department: BTreeMap<String, ImprovementCounts>,
}

impl ImprovementAcc {
    /// Folds in the measures of one case. What happened after the as-of day is not counted, so a report run again
    /// later for the same as-of day gives the same figures.
    pub fn add(&mut self, c: &Case, p: &ReportParams) {
        for i in c.improvements() {
            let planned_on = i.planned.at.local_date(p.offset);
            let done_on = i.done.map(|(e, _)| e.at.local_date(p.offset)).filter(|d| *d <= p.as_of);
            if planned_on > p.as_of {
                continue;
            }
            let n = self.by_department.entry(i.department.to_string()).or_default();
            if p.period.contains(planned_on) {
                n.planned += 1;
            }
            if p.period.contains(i.due) {
                n.due += 1;
                match done_on {
                    Some(d) if d <= i.due => n.done_on_time += 1,
                    Some(_) => n.done_late += 1,
                    None => {}
                }
            }
            if done_on.is_none() && i.due < p.as_of && i.due <= p.period.to {
                n.open_overdue += 1;
            }
        }
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &ImprovementAcc) {
        for (k, v) in &o.by_department {
            self.by_department.entry(k.clone()).or_default().merge(v);
        }
    }

    /// Every department together.
    pub fn total(&self) -> ImprovementCounts {
        let mut t = ImprovementCounts::default();
        for v in self.by_department.values() {
            t.merge(v);
        }
        t
    }
}
