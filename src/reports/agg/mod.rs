//! The incremental aggregator: fold records in one at a time, merge partial results.
//!
//! Each record kind has its own accumulator of counts. Folding a record is O(1) (plus the record's own lists), the
//! state is a few tens of kilobytes whatever the number of records, and merging two aggregators built from disjoint
//! sets of records gives exactly the aggregator of their union — in any order — so a period can be aggregated in
//! pieces, in parallel, or per site and combined at headquarters.
//!
//! Records are filed by the local day of their business time (arrival time, enquiry time, receipt time, task
//! creation, call time). Records outside the period are ignored, except cases received in the accountability
//! look-back ([`ReportParams::accountability_from`]), which feed only the monthly accountability counts.
//!
//! A record that belongs to the report but holds an instant outside [`EARLIEST_SANE`]..[`LATEST_SANE`] (a damaged
//! or hostile record: a case closed in the year 9999, a step at `i64::MIN`) counts nowhere: it is listed in
//! [`Aggregator::skipped`] by kind and id, so the documents can name it, and the rest of the report stands.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Timelike};

use super::ReportParams;
use super::kpi::{MinuteHistogram, RatingCounts};
use crate::model::{
    AnyRecord, Arrival, ArrivalChannel, Concern, Consultation, ConsultationChannel, Dimension, Feedback, Moment, Need,
    Rating, RecordId, VisitStep, VisitType,
};

mod appointments;
mod cases;
mod followup;
mod improvements;
mod skipped;

pub use appointments::*;
pub use cases::*;
pub use followup::*;
pub use improvements::*;
pub use skipped::*;

/// At most this many comments and cases are listed in full (the weekly sheet); the rest are counted.
pub const MAX_LISTED: usize = 500;

/// The whole aggregation state of one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregator {
    /// What is aggregated.
    pub params: ReportParams,
    /// Arrivals.
    pub arrivals: ArrivalAcc,
    /// Consultations.
    pub consultations: ConsultationAcc,
    /// Satisfaction feedback.
    pub feedback: FeedbackAcc,
    /// Cases received in the period.
    pub cases: CaseAcc,
    /// Monthly accountability counts over the look-back.
    pub accountability: AccountabilityAcc,
    /// Improvement measures of the look-back's cases.
    pub improvements: ImprovementAcc,
    /// Follow-up tasks created in the period.
    pub followups: FollowupAcc,
    /// Call attempts made in the period.
    pub calls: CallAcc,
    /// Records of the period left out for an instant outside the accepted range.
    pub skipped: SkippedAcc,
    /// Bookings for the days of the period.
    pub appointments: AppointmentAcc,
}

/// The local day a record is filed under in reports: its business time's, except a discharge follow-up task, which
/// is filed under its discharge date, so the month's discharged patients do not move when a list is imported late
/// (《出院病人电话回访制度》: the patients discharged in the month are the base of the follow-up rate), and a booking,
/// which is filed under the day booked.
pub fn filing_day(rec: &AnyRecord, offset: chrono::FixedOffset) -> chrono::NaiveDate {
    match rec {
        AnyRecord::FollowupTask(crate::model::FollowupTask {
            source:
                crate::model::FollowupSource::Discharge { discharged_on, .. }
                | crate::model::FollowupSource::DischargeSecond { discharged_on, .. },
            ..
        }) => *discharged_on,
        AnyRecord::Appointment(a) => a.day,
        _ => rec.occurred_at().local_date(offset),
    }
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new(params: ReportParams) -> Self {
        Self {
            params,
            arrivals: ArrivalAcc::default(),
            consultations: ConsultationAcc::default(),
            feedback: FeedbackAcc::default(),
            cases: CaseAcc::default(),
            accountability: AccountabilityAcc::default(),
            improvements: ImprovementAcc::default(),
            followups: FollowupAcc::default(),
            calls: CallAcc::default(),
            skipped: SkippedAcc::default(),
            appointments: AppointmentAcc::default(),
        }
    }

    /// Folds one record in. Records outside the period (and cases outside the look-back) are ignored; a record of
    /// the period with an instant outside [`EARLIEST_SANE`]..[`LATEST_SANE`] is listed in [`Aggregator::skipped`]
    /// and counts nowhere else.
    pub fn add(&mut self, rec: &AnyRecord) {
        if matches!(rec, AnyRecord::Audit(_)) {
            // The audit log is part of no report.
            return;
        }
        let p = &self.params;
        let day = filing_day(rec, p.offset);
        let in_period = p.period.contains(day);
        let in_look_back = matches!(rec, AnyRecord::Case(_)) && day >= p.accountability_from() && day <= p.period.to;
        if !in_period && !in_look_back {
            return;
        }
        if let Some(reason) = insane_time(rec) {
            self.skipped.add(rec, reason);
            return;
        }
        if let AnyRecord::Case(c) = rec
            && in_look_back
        {
            self.accountability.add(c, p);
            self.improvements.add(c, p);
        }
        if !in_period {
            return;
        }
        match rec {
            AnyRecord::Arrival(a) => self.arrivals.add(a, p),
            AnyRecord::Consultation(c) => self.consultations.add(c, p),
            AnyRecord::Feedback(f) => self.feedback.add(f, p),
            AnyRecord::Case(c) => self.cases.add(c, p),
            AnyRecord::FollowupTask(t) => self.followups.add(t, p),
            AnyRecord::CallAttempt(c) => self.calls.add(c),
            AnyRecord::Appointment(a) => self.appointments.add(a),
            // Claims and the shift log are read at the desk, not counted.
            AnyRecord::Audit(_) | AnyRecord::CallClaim(_) | AnyRecord::ShiftLog(_) => {}
        }
    }

    /// Folds many records in.
    pub fn extend<'a>(&mut self, recs: impl IntoIterator<Item = &'a AnyRecord>) {
        for r in recs {
            self.add(r);
        }
    }

    /// Merges another aggregator built from a disjoint set of records. Returns `false` (and changes nothing) when
    /// the two were made with different parameters.
    pub fn merge(&mut self, o: &Aggregator) -> bool {
        if self.params != o.params {
            return false;
        }
        self.arrivals.merge(&o.arrivals);
        self.consultations.merge(&o.consultations);
        self.feedback.merge(&o.feedback);
        self.cases.merge(&o.cases);
        self.accountability.merge(&o.accountability);
        self.improvements.merge(&o.improvements);
        self.followups.merge(&o.followups);
        self.calls.merge(&o.calls);
        self.skipped.merge(&o.skipped);
        self.appointments.merge(&o.appointments);
        true
    }
}

fn add_map<K: Ord + Clone>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

fn add_arr<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Arrivals per department: total and first/return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeptArrivals {
    /// All arrivals.
    pub total: u64,
    /// 初诊.
    pub first: u64,
    /// 复诊.
    pub returning: u64,
}

/// Arrival counts and visit-step durations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArrivalAcc {
    /// Arrivals.
    pub total: u64,
    /// 初诊.
    pub first: u64,
    /// 复诊.
    pub returning: u64,
    /// By local hour of arrival (0–23).
    pub by_hour: [u64; 24],
    /// By local day.
    pub by_day: BTreeMap<NaiveDate, u64>,
    /// By (current) department code.
    pub by_department: BTreeMap<String, DeptArrivals>,
    /// By channel.
    pub by_channel: BTreeMap<ArrivalChannel, u64>,
    /// Arrivals with each need, by local hour of arrival.
    pub needs_by_hour: BTreeMap<Need, [u64; 24]>,
    /// Time spent in each step before the next one, in minutes.
    pub time_in_step: BTreeMap<VisitStep, MinuteHistogram>,
    /// Arrival to the end of the visit (done or admitted), in minutes.
    pub visit_length: MinuteHistogram,
    /// Where each visit stands now (its current step).
    pub current_step: BTreeMap<VisitStep, u64>,
    /// Step intervals left out because the later step was recorded earlier (device clocks out of step).
    pub negative_intervals: u64,
    /// By 来源地 as entered (trimmed; empty: not given).
    pub by_origin: BTreeMap<String, u64>,
    /// By 获知途径 as entered (trimmed; empty: not given).
    pub by_heard_via: BTreeMap<String, u64>,
    /// 退号: visits cancelled, by the reason given.
    pub cancel_reasons: BTreeMap<String, u64>,
    /// 换号: department or doctor changes, by the reason given (a visit changed twice counts twice).
    pub change_reasons: BTreeMap<String, u64>,
}

impl ArrivalAcc {
    /// Folds one arrival in.
    pub fn add(&mut self, a: &Arrival, p: &ReportParams) {
        let local = a.arrived_at.local(p.offset);
        let hour = local.hour() as usize;
        self.total += 1;
        self.by_hour[hour] += 1;
        *self.by_day.entry(local.date_naive()).or_default() += 1;
        let dept = self.by_department.entry(a.department.value.clone()).or_default();
        dept.total += 1;
        match a.visit_type {
            VisitType::First => {
                self.first += 1;
                dept.first += 1;
            }
            VisitType::Return => {
                self.returning += 1;
                dept.returning += 1;
            }
        }
        *self.by_channel.entry(a.channel).or_default() += 1;
        for n in &a.needs {
            self.needs_by_hour.entry(*n).or_default()[hour] += 1;
        }
        for w in a.steps.windows(2) {
            if w[0].step.is_final() {
                continue;
            }
            if !self.time_in_step.entry(w[0].step).or_default().add_millis(w[1].at.millis_since(w[0].at)) {
                self.negative_intervals += 1;
            }
        }
        if let Some(end) = a.ended_at()
            && matches!(a.step(), VisitStep::Done | VisitStep::Admitted)
            && !self.visit_length.add_millis(end.millis_since(a.arrived_at))
        {
            self.negative_intervals += 1;
        }
        *self.current_step.entry(a.step()).or_default() += 1;
        let given = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_string();
        *self.by_origin.entry(given(&a.origin)).or_default() += 1;
        *self.by_heard_via.entry(given(&a.heard_via)).or_default() += 1;
        if a.step() == VisitStep::Cancelled {
            let reason = a.steps.iter().rev().find(|e| e.step == VisitStep::Cancelled).map(|e| given(&e.reason));
            *self.cancel_reasons.entry(reason.unwrap_or_default()).or_default() += 1;
        }
        for c in &a.changes {
            *self.change_reasons.entry(c.reason.trim().to_string()).or_default() += 1;
        }
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &ArrivalAcc) {
        self.total += o.total;
        self.first += o.first;
        self.returning += o.returning;
        add_arr(&mut self.by_hour, &o.by_hour);
        add_map(&mut self.by_day, &o.by_day);
        for (k, v) in &o.by_department {
            let d = self.by_department.entry(k.clone()).or_default();
            d.total += v.total;
            d.first += v.first;
            d.returning += v.returning;
        }
        add_map(&mut self.by_channel, &o.by_channel);
        add_map(&mut self.by_origin, &o.by_origin);
        add_map(&mut self.by_heard_via, &o.by_heard_via);
        add_map(&mut self.cancel_reasons, &o.cancel_reasons);
        add_map(&mut self.change_reasons, &o.change_reasons);
        for (k, v) in &o.needs_by_hour {
            add_arr(self.needs_by_hour.entry(*k).or_default(), v);
        }
        for (k, v) in &o.time_in_step {
            self.time_in_step.entry(*k).or_default().merge(v);
        }
        self.visit_length.merge(&o.visit_length);
        add_map(&mut self.current_step, &o.current_step);
        self.negative_intervals += o.negative_intervals;
    }

    /// Arrivals with a need.
    pub fn with_need(&self, need: Need) -> u64 {
        self.needs_by_hour.get(&need).map_or(0, |h| h.iter().sum())
    }
}

/// Consultations of one referred department.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeptConsultations {
    /// Consultations.
    pub total: u64,
    /// With an appointment.
    pub appointments: u64,
    /// That became an arrival.
    pub came: u64,
}

/// Consultation counts and their conversion into arrivals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsultationAcc {
    /// Consultations.
    pub total: u64,
    /// With an appointment.
    pub appointments: u64,
    /// Appointments whose date is after the as-of day and that have not come yet (left out of the arrival rate).
    pub appointments_pending: u64,
    /// Appointments that became an arrival.
    pub appointments_came: u64,
    /// Consultations that became an arrival (with or without an appointment).
    pub came: u64,
    /// By channel.
    pub by_channel: BTreeMap<ConsultationChannel, u64>,
    /// By concern (a consultation may have several).
    pub by_concern: BTreeMap<Concern, u64>,
    /// By referred department code (empty: none).
    pub by_department: BTreeMap<String, DeptConsultations>,
}

impl ConsultationAcc {
    /// Folds one consultation in.
    pub fn add(&mut self, c: &Consultation, p: &ReportParams) {
        self.total += 1;
        let came = c.arrival.value.is_some();
        let d = self.by_department.entry(c.referred_department.clone().unwrap_or_default()).or_default();
        d.total += 1;
        if came {
            self.came += 1;
            d.came += 1;
        }
        if let Some(day) = c.appointment.value {
            self.appointments += 1;
            d.appointments += 1;
            if came {
                self.appointments_came += 1;
            } else if day > p.as_of {
                self.appointments_pending += 1;
            }
        }
        *self.by_channel.entry(c.channel).or_default() += 1;
        for k in &c.concerns {
            *self.by_concern.entry(*k).or_default() += 1;
        }
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &ConsultationAcc) {
        self.total += o.total;
        self.appointments += o.appointments;
        self.appointments_pending += o.appointments_pending;
        self.appointments_came += o.appointments_came;
        self.came += o.came;
        add_map(&mut self.by_channel, &o.by_channel);
        add_map(&mut self.by_concern, &o.by_concern);
        for (k, v) in &o.by_department {
            let d = self.by_department.entry(k.clone()).or_default();
            d.total += v.total;
            d.appointments += v.appointments;
            d.came += v.came;
        }
    }
}

/// A patient comment, for the opinion sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The feedback record.
    pub id: RecordId,
    /// When.
    pub at: Moment,
    /// The overall rating given.
    pub overall: Rating,
    /// Dimensions rated dissatisfied.
    pub dissatisfied_with: Vec<Dimension>,
    /// Preset reasons tapped.
    pub reasons: Vec<String>,
    /// The comment.
    pub text: String,
    /// The patient asked to be contacted.
    pub wants_contact: bool,
    /// The survey was finished.
    pub complete: bool,
}

/// Satisfaction answers.
///
/// Rates count complete surveys only; answers from incomplete surveys (the patient walked away) are kept apart and
/// reported separately, as are "don't know" answers (in the counts, left out of every denominator).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedbackAcc {
    /// Surveys, complete or not.
    pub total: u64,
    /// Incomplete surveys.
    pub incomplete: u64,
    /// Answers per question, complete surveys.
    pub answers: BTreeMap<super::Question, RatingCounts>,
    /// Answers per question, incomplete surveys (reported, never in a rate).
    pub incomplete_answers: BTreeMap<super::Question, RatingCounts>,
    /// Overall answers per local day, complete surveys (the trend).
    pub overall_by_day: BTreeMap<NaiveDate, RatingCounts>,
    /// Preset reasons tapped, complete or not.
    pub reasons: BTreeMap<String, u64>,
    /// Dissatisfied answers whose patient asked to be contacted.
    pub dissatisfied_with_contact: u64,
    /// Comments, earliest first, at most [`MAX_LISTED`].
    pub comments: Vec<Comment>,
    /// Comments beyond the listed ones.
    pub comments_not_listed: u64,
}

impl FeedbackAcc {
    /// Folds one feedback record in.
    pub fn add(&mut self, f: &Feedback, p: &ReportParams) {
        use super::Question;
        self.total += 1;
        let answers = if f.complete {
            self.overall_by_day.entry(f.at.local_date(p.offset)).or_default().add(f.overall);
            &mut self.answers
        } else {
            self.incomplete += 1;
            &mut self.incomplete_answers
        };
        answers.entry(Question::Overall).or_default().add(f.overall);
        for (d, r) in &f.ratings {
            answers.entry(Question::Dimension(*d)).or_default().add(*r);
        }
        for r in &f.reasons {
            *self.reasons.entry(r.clone()).or_default() += 1;
        }
        if f.is_dissatisfied() && f.contact_phone.is_some() {
            self.dissatisfied_with_contact += 1;
        }
        if let Some(text) = f.comment.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            self.comments.push(Comment {
                id: f.id,
                at: f.at,
                overall: f.overall,
                dissatisfied_with: f.ratings.iter().filter(|(_, r)| r.is_negative()).map(|(d, _)| *d).collect(),
                reasons: f.reasons.clone(),
                text: text.to_string(),
                wants_contact: f.contact_phone.is_some(),
                complete: f.complete,
            });
            cap_list(&mut self.comments, &mut self.comments_not_listed, |c| (c.at, c.id));
        }
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &FeedbackAcc) {
        self.total += o.total;
        self.incomplete += o.incomplete;
        for (k, v) in &o.answers {
            self.answers.entry(*k).or_default().merge(v);
        }
        for (k, v) in &o.incomplete_answers {
            self.incomplete_answers.entry(*k).or_default().merge(v);
        }
        for (k, v) in &o.overall_by_day {
            self.overall_by_day.entry(*k).or_default().merge(v);
        }
        add_map(&mut self.reasons, &o.reasons);
        self.dissatisfied_with_contact += o.dissatisfied_with_contact;
        self.comments.extend(o.comments.iter().cloned());
        self.comments_not_listed += o.comments_not_listed;
        cap_list(&mut self.comments, &mut self.comments_not_listed, |c| (c.at, c.id));
    }

    /// Answers to a question in complete surveys.
    pub fn answers(&self, q: super::Question) -> RatingCounts {
        self.answers.get(&q).copied().unwrap_or_default()
    }
}

/// Keeps a list sorted by `key` and at most [`MAX_LISTED`] long, counting what it drops.
fn cap_list<T, K: Ord>(list: &mut Vec<T>, dropped: &mut u64, key: impl Fn(&T) -> K) {
    if list.len() > 1 && list.windows(2).any(|w| key(&w[0]) > key(&w[1])) {
        list.sort_by_key(|x| key(x));
    }
    if list.len() > MAX_LISTED {
        *dropped += (list.len() - MAX_LISTED) as u64;
        list.truncate(MAX_LISTED);
    }
}
