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

use super::kpi::{MinuteHistogram, RatingCounts};
use super::{ReportParams, YearMonth};
use crate::model::{
    AnyRecord, Arrival, ArrivalChannel, CallAttempt, CallOutcome, Case, CaseChannel, CaseEventKind, CaseGrade,
    CaseStatus, Concern, Consultation, ConsultationChannel, Dimension, Feedback, FollowupSource, FollowupStatus,
    FollowupTask, Moment, Need, Rating, RecordId, RecordKind, VisitStep, VisitType,
};

/// At most this many comments and cases are listed in full (the weekly sheet); the rest are counted.
pub const MAX_LISTED: usize = 500;

/// The earliest instant a report accepts in a record: 2000-01-01T00:00:00Z. GuideDesk did not exist before; an
/// earlier time is a damaged record or a device clock reset to its epoch.
pub const EARLIEST_SANE: Moment = Moment(946_684_800_000);

/// The first instant a report no longer accepts in a record: 2200-01-01T00:00:00Z. Far enough for any real
/// deadline, close enough that every derived day, month and duration stays small.
pub const LATEST_SANE: Moment = Moment(7_258_118_400_000);

/// A record left out of a report, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    /// Its kind.
    pub kind: RecordKind,
    /// Its id.
    pub id: RecordId,
    /// Why, in English: the field and its value (`closed_at 9999-12-30T23:59:59.999Z is outside …`).
    pub reason: String,
}

/// Records of the period left out because one of their instants is outside [`EARLIEST_SANE`]..[`LATEST_SANE`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkippedAcc {
    /// The records, by kind and id, at most [`MAX_LISTED`].
    pub records: Vec<SkippedRecord>,
    /// Records beyond the listed ones.
    pub not_listed: u64,
}

impl SkippedAcc {
    fn add(&mut self, rec: &AnyRecord, reason: String) {
        self.records.push(SkippedRecord { kind: rec.kind(), id: rec.id(), reason });
        cap_list(&mut self.records, &mut self.not_listed, |r| (r.kind, r.id));
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &SkippedAcc) {
        self.records.extend(o.records.iter().cloned());
        self.not_listed += o.not_listed;
        cap_list(&mut self.records, &mut self.not_listed, |r| (r.kind, r.id));
    }

    /// Every skipped record, listed or not.
    pub fn count(&self) -> u64 {
        self.records.len() as u64 + self.not_listed
    }
}

/// The first instant of a record outside [`EARLIEST_SANE`]..[`LATEST_SANE`], as a reason to skip it. Every instant
/// is checked, not only those the report reads today. Calendar dates (due dates, appointments) are only compared,
/// never converted, so they cannot break a report and are not checked.
pub fn insane_time(rec: &AnyRecord) -> Option<String> {
    let bad = |(_, m): &(&'static str, Moment)| *m < EARLIEST_SANE || *m >= LATEST_SANE;
    let one = |field: &'static str, m: Moment| Some((field, m)).filter(bad);
    let (field, m) = match rec {
        AnyRecord::Arrival(a) => std::iter::once(("arrived_at", a.arrived_at))
            .chain(a.steps.iter().map(|e| ("steps.at", e.at)))
            .chain(a.changes.iter().map(|e| ("changes.at", e.at)))
            .find(bad),
        AnyRecord::Consultation(c) => one("at", c.at),
        AnyRecord::Feedback(f) => one("at", f.at),
        AnyRecord::Case(c) => std::iter::once(("received_at", c.received_at))
            .chain(c.closed_at.value.map(|m| ("closed_at", m)))
            .chain(c.events.iter().map(|e| ("events.at", e.at)))
            .find(bad),
        AnyRecord::FollowupTask(t) => {
            std::iter::once(("created_at", t.created_at)).chain(t.closed_at.value.map(|m| ("closed_at", m))).find(bad)
        }
        AnyRecord::CallAttempt(c) => one("at", c.at),
        AnyRecord::Audit(a) => one("at", a.at),
    }?;
    let value = if m.in_datetime_range() { m.to_rfc3339() } else { format!("{} ms", m.0) };
    Some(format!("{field} {value} is outside the accepted range 2000-01-01 to 2200-01-01 (UTC)"))
}

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
    /// Follow-up tasks created in the period.
    pub followups: FollowupAcc,
    /// Call attempts made in the period.
    pub calls: CallAcc,
    /// Records of the period left out for an instant outside the accepted range.
    pub skipped: SkippedAcc,
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
            followups: FollowupAcc::default(),
            calls: CallAcc::default(),
            skipped: SkippedAcc::default(),
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
        let day = rec.occurred_at().local_date(p.offset);
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
            AnyRecord::Audit(_) => {}
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
        self.followups.merge(&o.followups);
        self.calls.merge(&o.calls);
        self.skipped.merge(&o.skipped);
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
    fn add(&mut self, c: Closure) {
        self.received += 1;
        match c {
            Closure::OnTime => self.on_time += 1,
            Closure::Late => self.late += 1,
            Closure::OpenNotDue => self.open_not_due += 1,
            Closure::Overdue => self.overdue += 1,
        }
    }

    fn merge(&mut self, o: &ClosureCounts) {
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
    /// Handling ratings of finished cases.
    pub handling: RatingCounts,
    /// Finished cases without a handling rating (not asked or not answered).
    pub handling_not_rated: u64,
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
            match c.handling_satisfaction.value {
                Some(r) => self.handling.add(r),
                None => self.handling_not_rated += 1,
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
    fn add(&mut self, g: CaseGrade) {
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
    /// Folds one case in (by its current grade; feedback and suggestions count nowhere).
    pub fn add(&mut self, c: &Case, p: &ReportParams) {
        let grade = c.grade.value;
        if matches!(grade, CaseGrade::Feedback | CaseGrade::Suggestion) {
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
}

impl TaskGroup {
    /// Every group.
    pub const ALL: [TaskGroup; 4] = [TaskGroup::Discharge, TaskGroup::Outpatient, TaskGroup::Feedback, TaskGroup::Case];

    /// The group of a task.
    pub fn of(t: &FollowupTask) -> TaskGroup {
        match t.source {
            FollowupSource::Discharge { .. } => TaskGroup::Discharge,
            FollowupSource::OutpatientFirstVisit { .. } => TaskGroup::Outpatient,
            FollowupSource::Feedback { .. } => TaskGroup::Feedback,
            FollowupSource::Case { .. } => TaskGroup::Case,
        }
    }

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            TaskGroup::Discharge => "discharge",
            TaskGroup::Outpatient => "outpatient",
            TaskGroup::Feedback => "feedback",
            TaskGroup::Case => "case",
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
    fn add(&mut self, t: &FollowupTask, as_of: NaiveDate) {
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
