//! The finished figures of one period: every KPI with its target, and the breakdowns behind them.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::agg::{AccountCounts, Aggregator, ClosureCounts, DeptCases, SkippedRecord, TaskCounts, TaskGroup};
use super::kpi::{Kpi, Metric, Question, RatingCounts, Target};
use super::{ReportParams, YearMonth};
use crate::model::{AnyRecord, CaseGrade, Dimension, ReferenceData, VisitStep};

/// Time spent in one visit step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepWait {
    /// The step (`None`: the whole visit, arrival to done/admitted).
    pub step: Option<VisitStep>,
    /// Observations (visits that moved on from the step).
    pub n: u64,
    /// Median, minutes (nearest rank).
    pub median: Option<u32>,
    /// 90th percentile, minutes (nearest rank).
    pub p90: Option<u32>,
    /// The board's alert limit for the step, minutes (visit policy).
    pub limit: Option<u32>,
    /// Observations longer than the limit.
    pub over_limit: u64,
}

/// Satisfaction with one question.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionRow {
    /// The question.
    pub question: Question,
    /// Answers in complete surveys, "don't know" included.
    pub counts: RatingCounts,
    /// Answers in incomplete surveys (not in the rates).
    pub incomplete: RatingCounts,
    /// Share satisfied.
    pub positive: Kpi,
    /// Share dissatisfied.
    pub negative: Kpi,
}

/// Cases of one grade.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeRow {
    /// The grade.
    pub grade: CaseGrade,
    /// Cases by standing.
    pub counts: ClosureCounts,
    /// On-time closure.
    pub on_time: Kpi,
}

/// Cases of one department.
#[derive(Debug, Clone, PartialEq)]
pub struct DeptCaseRow {
    /// Department code (empty: none).
    pub department: String,
    /// Counts.
    pub cases: DeptCases,
    /// On-time closure.
    pub on_time: Kpi,
}

/// Follow-up of one department.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowupDeptRow {
    /// Department code (empty: none).
    pub department: String,
    /// Discharge follow-up tasks.
    pub discharge: TaskCounts,
    /// Inpatient follow-up rate.
    pub inpatient: Kpi,
    /// First-visit arrivals.
    pub first_visits: u64,
    /// Outpatient first-visit follow-up tasks.
    pub outpatient: TaskCounts,
    /// Outpatient follow-up rate.
    pub outpatient_rate: Kpi,
}

/// An accountability rule that was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Dissatisfied + complaints in the month above the department threshold.
    DeptMonthly {
        /// The count.
        count: u64,
        /// "More than" this flags.
        threshold: u32,
    },
    /// Dissatisfied + complaints in the month above the per-person threshold.
    StaffMonthly {
        /// The count.
        count: u64,
        /// "More than" this flags.
        threshold: u32,
    },
    /// Disputes in the rolling three months at or above the threshold.
    DisputesQuarter {
        /// The count.
        count: u64,
        /// "At least" this flags.
        threshold: u32,
    },
    /// Disputes in the rolling twelve months at or above the threshold.
    DisputesYear {
        /// The count.
        count: u64,
        /// "At least" this flags.
        threshold: u32,
    },
    /// Incidents (事故) of a department in the rolling twelve months at or above the threshold.
    IncidentsYear {
        /// The count.
        count: u64,
        /// "At least" this flags.
        threshold: u32,
    },
    /// A person concerned in an incident in the month (the rules dismiss the person directly responsible).
    StaffIncident {
        /// Incidents in the month.
        count: u64,
    },
}

impl Flag {
    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            Flag::DeptMonthly { .. } => "dept_monthly",
            Flag::StaffMonthly { .. } => "staff_monthly",
            Flag::DisputesQuarter { .. } => "disputes_3_months",
            Flag::DisputesYear { .. } => "disputes_12_months",
            Flag::IncidentsYear { .. } => "incidents_12_months",
            Flag::StaffIncident { .. } => "staff_incident",
        }
    }
}

/// Accountability of one department or person for the report's month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// Department code, or staff id/name as recorded.
    pub who: String,
    /// Counts in the month.
    pub month: AccountCounts,
    /// Disputes in the month and the two before.
    pub disputes_3m: u64,
    /// Disputes in the month and the eleven before.
    pub disputes_12m: u64,
    /// Incidents in the month and the eleven before.
    pub incidents_12m: u64,
    /// Rules crossed.
    pub flags: Vec<Flag>,
}

/// The finished figures of one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The raw counts everything is computed from.
    pub agg: Aggregator,
    /// Overall patient satisfaction (target from `targets.satisfaction_min_pct`).
    pub overall_satisfaction: Kpi,
    /// Registration dissatisfaction (target from `targets.registration_dissatisfaction_max_pct`).
    pub registration_dissatisfaction: Kpi,
    /// Guide dissatisfaction (target from `targets.guide_dissatisfaction_max_pct`).
    pub guide_dissatisfaction: Kpi,
    /// Every question, overall first.
    pub questions: Vec<QuestionRow>,
    /// Overall satisfaction per day of the period.
    pub trend: Vec<(NaiveDate, Kpi)>,
    /// Time in each step that has a successor, then the whole visit (`step: None`).
    pub waits: Vec<StepWait>,
    /// Consultations with an appointment.
    pub appointment_rate: Kpi,
    /// Appointments that came (来院达到率).
    pub appointment_arrival_rate: Kpi,
    /// Consultations that became an arrival.
    pub consultation_conversion: Kpi,
    /// Complaint-handling satisfaction (target from `targets.complaint_handling_min_pct`): complaints only, 情况反馈
    /// and 建议 left out.
    pub complaint_handling: Kpi,
    /// The same over every finished case, 情况反馈 and 建议 included, shown beside it (no target).
    pub case_handling_all: Kpi,
    /// On-time closure of every case received.
    pub case_on_time: Kpi,
    /// Every grade, in order.
    pub cases_by_grade: Vec<GradeRow>,
    /// Every department with cases.
    pub cases_by_department: Vec<DeptCaseRow>,
    /// Inpatient follow-up rate (target from `followup_policy.inpatient_target_pct`).
    pub inpatient_followup: Kpi,
    /// Outpatient follow-up rate (target from `followup_policy.outpatient_target_pct`).
    pub outpatient_followup: Kpi,
    /// Follow-up by department.
    pub followup_by_department: Vec<FollowupDeptRow>,
    /// Satisfaction stated on reached follow-up calls.
    pub call_satisfaction: Kpi,
    /// The month the accountability rows are for.
    pub accountability_month: YearMonth,
    /// Departments with counts in the month or disputes in the look-back, flagged first.
    pub accountability_departments: Vec<AccountRow>,
    /// Staff members with counts in the month, flagged first.
    pub accountability_staff: Vec<AccountRow>,
    /// Records of the period left out of every figure because one of their instants is outside the accepted range
    /// ([`super::agg::EARLIEST_SANE`]..[`super::agg::LATEST_SANE`]), by kind and id; at most
    /// [`super::agg::MAX_LISTED`], the rest counted in `agg.skipped.not_listed` ([`Summary::skipped_count`]).
    pub skipped: Vec<SkippedRecord>,
}

impl Aggregator {
    /// Computes every KPI and breakdown, with targets and thresholds from reference data.
    pub fn finish(&self, refs: &ReferenceData) -> Summary {
        let a = self;
        let targets = &refs.targets;
        let fp = &refs.followup_policy;
        let fb = &a.feedback;

        let questions: Vec<QuestionRow> = Question::all()
            .map(|q| {
                let counts = fb.answers(q);
                QuestionRow {
                    question: q,
                    counts,
                    incomplete: fb.incomplete_answers.get(&q).copied().unwrap_or_default(),
                    positive: satisfaction(Metric::SatisfactionPositive(q), counts, None),
                    negative: satisfaction(Metric::SatisfactionNegative(q), counts, None),
                }
            })
            .collect();
        let overall_satisfaction = satisfaction(
            Metric::SatisfactionPositive(Question::Overall),
            fb.answers(Question::Overall),
            Some(Target::at_least(targets.satisfaction_min_pct)),
        );
        let reg = Question::Dimension(Dimension::Registration);
        let registration_dissatisfaction = satisfaction(
            Metric::SatisfactionNegative(reg),
            fb.answers(reg),
            Some(Target::at_most(targets.registration_dissatisfaction_max_pct)),
        );
        let guide = Question::Dimension(Dimension::Guide);
        let guide_dissatisfaction = satisfaction(
            Metric::SatisfactionNegative(guide),
            fb.answers(guide),
            Some(Target::at_most(targets.guide_dissatisfaction_max_pct)),
        );
        let trend = a
            .params
            .period
            .days()
            .map(|d| {
                let c = fb.overall_by_day.get(&d).copied().unwrap_or_default();
                (d, satisfaction(Metric::SatisfactionPositive(Question::Overall), c, None))
            })
            .collect();

        let limits = &refs.visit_policy.step_limit_minutes;
        let mut waits: Vec<StepWait> = VisitStep::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .map(|s| {
                let h = a.arrivals.time_in_step.get(&s).cloned().unwrap_or_default();
                let limit = limits.get(s.key()).copied();
                StepWait {
                    step: Some(s),
                    n: h.count(),
                    median: h.percentile(50),
                    p90: h.percentile(90),
                    limit,
                    over_limit: limit.map_or(0, |l| h.over(l)),
                }
            })
            .collect();
        let whole = &a.arrivals.visit_length;
        waits.push(StepWait {
            step: None,
            n: whole.count(),
            median: whole.percentile(50),
            p90: whole.percentile(90),
            limit: None,
            over_limit: 0,
        });

        let c = &a.consultations;
        let appointment_rate = Kpi::rate(Metric::AppointmentRate, c.appointments, c.total, None);
        let booked = &a.appointments.clinic;
        let appointment_arrival_rate =
            Kpi::rate(Metric::AppointmentArrivalRate, booked.arrived(), booked.expected(), None);
        let consultation_conversion = Kpi::rate(Metric::ConsultationConversion, c.came, c.total, None);

        let cases = &a.cases;
        let complaint_handling = Kpi::rate(
            Metric::ComplaintHandlingSatisfaction,
            cases.handling.positive(),
            cases.handling.scored(),
            Some(Target::at_least(targets.complaint_handling_min_pct)),
        );
        let case_handling_all = Kpi::rate(
            Metric::CaseHandlingSatisfactionAll,
            cases.handling_all.positive(),
            cases.handling_all.scored(),
            None,
        );
        let on_time = |c: &ClosureCounts| Kpi::rate(Metric::CaseOnTimeClosure, c.on_time, c.judged(), None);
        let case_on_time = on_time(&cases.closure_total());
        let cases_by_grade = CaseGrade::ALL
            .into_iter()
            .map(|g| {
                let counts = cases.by_grade.get(&g).copied().unwrap_or_default();
                GradeRow { grade: g, counts, on_time: on_time(&counts) }
            })
            .collect();
        let cases_by_department = cases
            .by_department
            .iter()
            .map(|(d, v)| DeptCaseRow { department: d.clone(), cases: v.clone(), on_time: on_time(&v.closure) })
            .collect();

        let in_target = Some(Target::at_least(f64::from(fp.inpatient_target_pct)));
        let out_target = Some(Target::at_least(f64::from(fp.outpatient_target_pct)));
        let inpatient = |c: &TaskCounts| Kpi::rate(Metric::InpatientFollowupRate, c.completed, c.eligible(), in_target);
        let outpatient = |done: u64, first: u64| Kpi::rate(Metric::OutpatientFollowupRate, done, first, out_target);
        let discharge = a.followups.group(TaskGroup::Discharge);
        let inpatient_followup = inpatient(&discharge);
        let outpatient_followup = outpatient(a.followups.group(TaskGroup::Outpatient).completed, a.arrivals.first);
        let mut depts: BTreeSet<String> = a
            .followups
            .tasks
            .keys()
            .filter(|(g, _)| matches!(g, TaskGroup::Discharge | TaskGroup::Outpatient))
            .map(|(_, d)| d.clone())
            .collect();
        depts.extend(a.arrivals.by_department.iter().filter(|(_, v)| v.first > 0).map(|(d, _)| d.clone()));
        let followup_by_department = depts
            .into_iter()
            .map(|d| {
                let get = |g| a.followups.tasks.get(&(g, d.clone())).copied().unwrap_or_default();
                let (dis, out) = (get(TaskGroup::Discharge), get(TaskGroup::Outpatient));
                let first = a.arrivals.by_department.get(&d).map_or(0, |v| v.first);
                FollowupDeptRow {
                    inpatient: inpatient(&dis),
                    outpatient_rate: outpatient(out.completed, first),
                    department: d,
                    discharge: dis,
                    first_visits: first,
                    outpatient: out,
                }
            })
            .collect();
        let call_satisfaction = Kpi::rate(
            Metric::FollowupCallSatisfaction,
            a.calls.satisfaction.positive(),
            a.calls.satisfaction.scored(),
            None,
        );

        let (accountability_departments, accountability_staff) = accountability(a, refs);
        Summary {
            agg: a.clone(),
            overall_satisfaction,
            registration_dissatisfaction,
            guide_dissatisfaction,
            questions,
            trend,
            waits,
            appointment_rate,
            appointment_arrival_rate,
            consultation_conversion,
            complaint_handling,
            case_handling_all,
            case_on_time,
            cases_by_grade,
            cases_by_department,
            inpatient_followup,
            outpatient_followup,
            followup_by_department,
            call_satisfaction,
            accountability_month: a.params.accountability_month(),
            accountability_departments,
            accountability_staff,
            skipped: a.skipped.records.clone(),
        }
    }
}

/// A satisfaction rate from rating counts: positive or negative over the answers other than "don't know".
pub fn satisfaction(metric: Metric, counts: RatingCounts, target: Option<Target>) -> Kpi {
    let num = match metric {
        Metric::SatisfactionNegative(_) => counts.negative(),
        _ => counts.positive(),
    };
    Kpi::rate(metric, num, counts.scored(), target)
}

fn accountability(a: &Aggregator, refs: &ReferenceData) -> (Vec<AccountRow>, Vec<AccountRow>) {
    let month = a.params.accountability_month();
    let policy = &refs.case_policy;
    let quarter_from = month.minus(2);
    let year_from = month.minus(super::ACCOUNTABILITY_MONTHS - 1);
    let mut depts: Vec<AccountRow> = Vec::new();
    let names: BTreeSet<&String> = a.accountability.departments.keys().map(|(d, _)| d).collect();
    for d in names {
        let mut row = AccountRow {
            who: d.clone(),
            month: AccountCounts::default(),
            disputes_3m: 0,
            disputes_12m: 0,
            incidents_12m: 0,
            flags: Vec::new(),
        };
        for ((_, m), v) in a.accountability.departments.range((d.clone(), year_from)..=(d.clone(), month)) {
            if *m == month {
                row.month = *v;
            }
            if *m >= quarter_from {
                row.disputes_3m += v.disputes;
            }
            row.disputes_12m += v.disputes;
            row.incidents_12m += v.incidents;
        }
        let monthly = row.month.dissatisfied + row.month.complaints;
        if monthly > u64::from(policy.dept_monthly_threshold) {
            row.flags.push(Flag::DeptMonthly { count: monthly, threshold: policy.dept_monthly_threshold });
        }
        let q = policy.disputes_per_quarter_threshold;
        if q > 0 && row.disputes_3m >= u64::from(q) {
            row.flags.push(Flag::DisputesQuarter { count: row.disputes_3m, threshold: q });
        }
        let y = policy.disputes_per_year_threshold;
        if y > 0 && row.disputes_12m >= u64::from(y) {
            row.flags.push(Flag::DisputesYear { count: row.disputes_12m, threshold: y });
        }
        let i = policy.incidents_per_year_threshold;
        if i > 0 && row.incidents_12m >= u64::from(i) {
            row.flags.push(Flag::IncidentsYear { count: row.incidents_12m, threshold: i });
        }
        if !row.month.is_empty() || row.disputes_12m > 0 || row.incidents_12m > 0 {
            depts.push(row);
        }
    }
    let mut staff: Vec<AccountRow> = a
        .accountability
        .staff
        .iter()
        .filter(|((_, m), v)| *m == month && !v.is_empty())
        .map(|((s, _), v)| {
            let monthly = v.dissatisfied + v.complaints;
            let threshold = policy.staff_monthly_threshold;
            let mut flags = Vec::new();
            if monthly > u64::from(threshold) {
                flags.push(Flag::StaffMonthly { count: monthly, threshold });
            }
            if v.incidents > 0 {
                flags.push(Flag::StaffIncident { count: v.incidents });
            }
            AccountRow { who: s.clone(), month: *v, disputes_3m: 0, disputes_12m: 0, incidents_12m: 0, flags }
        })
        .collect();
    let order = |r: &AccountRow| {
        let m = &r.month;
        (r.flags.is_empty(), std::cmp::Reverse(m.dissatisfied + m.complaints + m.disputes + m.incidents))
    };
    depts.sort_by(|x, y| order(x).cmp(&order(y)).then_with(|| x.who.cmp(&y.who)));
    staff.sort_by(|x, y| order(x).cmp(&order(y)).then_with(|| x.who.cmp(&y.who)));
    (depts, staff)
}

impl Summary {
    /// The headline KPIs, in the order the documents show them.
    pub fn headline(&self) -> Vec<&Kpi> {
        vec![
            &self.overall_satisfaction,
            &self.registration_dissatisfaction,
            &self.guide_dissatisfaction,
            &self.complaint_handling,
            &self.case_handling_all,
            &self.inpatient_followup,
            &self.outpatient_followup,
            &self.case_on_time,
            &self.call_satisfaction,
            &self.appointment_arrival_rate,
            &self.appointment_rate,
            &self.consultation_conversion,
        ]
    }

    /// The params the figures were computed for.
    pub fn params(&self) -> &ReportParams {
        &self.agg.params
    }

    /// How many records of the period were left out for an instant outside the accepted range, listed or not.
    pub fn skipped_count(&self) -> u64 {
        self.agg.skipped.count()
    }
}

/// Folds records into a fresh aggregator and finishes it: the one-call form of the KPI functions.
pub fn summarize<'a>(
    records: impl IntoIterator<Item = &'a AnyRecord>,
    params: ReportParams,
    refs: &ReferenceData,
) -> Summary {
    let mut agg = Aggregator::new(params);
    agg.extend(records);
    agg.finish(refs)
}
