//! KPI formulas against hand-computed fixtures, the aggregator's merge laws, and documents from demo data.

#![allow(clippy::unwrap_used, clippy::too_many_arguments, clippy::option_option, clippy::cast_possible_wrap)]

use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate};
use guidedesk_sync::Hlc;

use super::agg::{Aggregator, Closure, TaskGroup, closure};
use super::cli::{self, DocKind};
use super::kpi::{Bound, Kpi, Metric, MinuteHistogram, Question, SMALL_N, Target, wilson};
use super::summary::{Flag, Summary, summarize};
use super::{Lang, Period, PeriodKind, ReportParams, YearMonth, html, source, tables};
use crate::model::case::RoundStatus;
use crate::model::followup::CallScriptAnswers;
use crate::model::{
    AnyRecord, Arrival, ArrivalChannel, CallAttempt, CallOutcome, Case, CaseChannel, CaseEvent, CaseEventKind,
    CaseGrade, CaseStatus, Concern, Consultation, ConsultationChannel, Dimension, Feedback, FollowupSource,
    FollowupStatus, FollowupTask, Lww, Moment, Need, Priority, Rating, RecordId, RecordKind, ReferenceData, Sex,
    StaffRef, StepEvent, VisitStep, VisitType,
};
use crate::store::{ManualClock, Store, StoreOptions, china_offset};

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap()
}

fn off() -> FixedOffset {
    china_offset()
}

/// A local time in 2026 at the China offset.
fn at(m: u32, day: u32, h: i64, min: i64) -> Moment {
    Moment::start_of_day(d(m, day), off()).plus_millis((h * 60 + min) * 60_000)
}

/// The week 2026-11-16 (Mon) … 2026-11-22 (Sun), as of Monday 2026-11-23.
fn params() -> ReportParams {
    ReportParams::new(Period::week_of(d(11, 18)), off(), d(11, 23))
}

fn refs() -> ReferenceData {
    ReferenceData::bundled().unwrap()
}

fn lww<T: Clone>(v: T) -> Lww<T> {
    Lww::new(v, Hlc::ZERO)
}

fn staff(s: &str) -> StaffRef {
    StaffRef(s.into())
}

fn arrival(
    t: Moment,
    dept: &str,
    visit_type: VisitType,
    channel: ArrivalChannel,
    needs: &[Need],
    steps: &[(VisitStep, i64)],
) -> AnyRecord {
    let steps = std::iter::once(&(VisitStep::Triaged, 0))
        .chain(steps)
        .map(|(step, mins)| StepEvent {
            step: *step,
            at: t.plus_millis(mins * 60_000),
            by: staff("D001"),
            reason: None,
            stamp: Hlc::ZERO,
        })
        .collect();
    AnyRecord::Arrival(Arrival {
        id: RecordId::new_v7(t),
        arrived_at: t,
        name: "王秀英".into(),
        sex: Sex::Female,
        age: Some(60),
        phone: None,
        visit_type,
        channel,
        origin: None,
        heard_via: None,
        complaint: "头痛".into(),
        priority: Priority::Normal,
        needs: needs.to_vec(),
        department: lww(dept.to_string()),
        doctor: lww(None),
        handled_by: staff("D001"),
        previous_visit: None,
        steps,
        changes: Vec::new(),
    })
}

fn feedback(
    t: Moment,
    overall: Rating,
    ratings: &[(Dimension, Rating)],
    complete: bool,
    comment: Option<&str>,
    contact: bool,
) -> AnyRecord {
    AnyRecord::Feedback(Feedback {
        id: RecordId::new_v7(t),
        at: t,
        survey_version: 1,
        overall,
        ratings: ratings.to_vec(),
        reasons: vec!["等候时间长".into()],
        comment: comment.map(Into::into),
        contact_phone: contact.then(|| "13800138000".into()),
        complete,
        chain_index: 0,
        prev_hash: [0; 32],
        hash: [0; 32],
    })
}

fn consultation(t: Moment, appointment: Option<NaiveDate>, came: bool) -> AnyRecord {
    AnyRecord::Consultation(Consultation {
        id: RecordId::new_v7(t),
        at: t,
        by: staff("D001"),
        channel: ConsultationChannel::Phone,
        name: None,
        sex: None,
        age: None,
        phone: None,
        address: None,
        disease_course: None,
        history: None,
        disease_type: None,
        intention: None,
        concerns: vec![Concern::Appointment],
        question: "周末有专家门诊吗".into(),
        answer: None,
        referred_department: Some("cardio".into()),
        referred_doctor: None,
        appointment: lww(appointment),
        arrival: lww(came.then(|| RecordId::new_v7(t))),
    })
}

struct CaseSpec<'a> {
    received: Moment,
    grade: CaseGrade,
    depts: &'a [&'a str],
    staff: &'a [&'a str],
    due: NaiveDate,
    status: CaseStatus,
    closed: Option<Moment>,
    handling: Option<Rating>,
    legal_at: Option<Moment>,
}

fn case(c: &CaseSpec<'_>) -> AnyRecord {
    let mut events = vec![CaseEvent {
        at: c.received,
        by: staff("K001"),
        kind: CaseEventKind::Received,
        note: None,
        stamp: Hlc::ZERO,
    }];
    if let Some(t) = c.legal_at {
        events.push(CaseEvent {
            at: t,
            by: staff("K001"),
            kind: CaseEventKind::ReferredLegal,
            note: None,
            stamp: Hlc::ZERO,
        });
    }
    AnyRecord::Case(Case {
        id: RecordId::new_v7(c.received),
        received_at: c.received,
        received_by: staff("K001"),
        channel: CaseChannel::Phone,
        grade: lww(c.grade),
        complainant: "李强".into(),
        complainant_phone: None,
        relation: None,
        departments: c.depts.iter().map(|s| (*s).to_string()).collect(),
        staff_concerned: c.staff.iter().map(|s| (*s).to_string()).collect(),
        facts: "候诊两小时无人告知".into(),
        request: None,
        from_feedback: None,
        assigned_department: lww(None),
        assignee: lww(None),
        status: lww(RoundStatus { round: 0, status: c.status }),
        due: lww((c.due, false)),
        handling_satisfaction: lww(c.handling),
        closed_at: lww(c.closed),
        events,
    })
}

fn spec(received: Moment, grade: CaseGrade, depts: &'static [&'static str], due: NaiveDate) -> CaseSpec<'static> {
    CaseSpec {
        received,
        grade,
        depts,
        staff: &[],
        due,
        status: CaseStatus::Received,
        closed: None,
        handling: None,
        legal_at: None,
    }
}

fn task(t: Moment, group: TaskGroup, dept: Option<&str>, status: FollowupStatus, due_to: NaiveDate) -> AnyRecord {
    let source = match group {
        TaskGroup::Discharge => FollowupSource::Discharge {
            his_key: RecordId::new_v7(t).short(),
            discharged_on: d(11, 16),
            diagnosis: None,
        },
        TaskGroup::Outpatient => FollowupSource::OutpatientFirstVisit { arrival: RecordId::new_v7(t) },
        TaskGroup::Feedback => FollowupSource::Feedback { feedback: RecordId::new_v7(t) },
        TaskGroup::Case => FollowupSource::Case { case: RecordId::new_v7(t) },
        TaskGroup::NoShow => FollowupSource::NoShow { appointment: RecordId::new_v7(t), day: d(11, 16) },
        TaskGroup::SpotCheck => FollowupSource::SpotCheck { task: RecordId::new_v7(t) },
        TaskGroup::DischargeSecond => {
            FollowupSource::DischargeSecond { his_key: RecordId::new_v7(t).short(), discharged_on: d(11, 16) }
        }
        TaskGroup::Chronic => {
            FollowupSource::Chronic { his_key: RecordId::new_v7(t).short(), discharged_on: d(11, 16), round: 1 }
        }
    };
    AnyRecord::FollowupTask(FollowupTask {
        id: RecordId::new_v7(t),
        created_at: t,
        created_by: staff("K001"),
        source,
        patient_name: "周".into(),
        phone: "13800138000".into(),
        department: dept.map(Into::into),
        inpatient: group == TaskGroup::Discharge,
        due_from: due_to,
        due_to,
        status: lww(status),
        closed_at: lww(None),
    })
}

fn call(t: Moment, outcome: CallOutcome, script: Option<Option<Rating>>) -> AnyRecord {
    AnyRecord::CallAttempt(CallAttempt {
        id: RecordId::new_v7(t),
        task: RecordId::new_v7(t),
        at: t,
        by: staff("K001"),
        outcome,
        script: script.map(|s| CallScriptAnswers { satisfaction: s, ..CallScriptAnswers::default() }),
        worrying: false,
        notes: None,
    })
}

fn arrivals() -> Vec<AnyRecord> {
    use ArrivalChannel::{OnlineBooking, Referral, WalkIn};
    use VisitStep::{Admitted, Cancelled, Done, Registered, WithDoctor};
    vec![
        arrival(
            at(11, 16, 8, 30),
            "cardio",
            VisitType::First,
            WalkIn,
            &[Need::Wheelchair],
            &[(Registered, 10), (WithDoctor, 40), (Done, 55)],
        ),
        arrival(
            at(11, 16, 8, 45),
            "cardio",
            VisitType::Return,
            OnlineBooking,
            &[Need::Escort, Need::Wheelchair],
            &[(Registered, 5), (Cancelled, 6)],
        ),
        // With the doctor recorded 5 minutes before registration (clocks out of step): that interval is left out.
        arrival(
            at(11, 17, 14, 10),
            "neuro",
            VisitType::First,
            WalkIn,
            &[],
            &[(Registered, 20), (WithDoctor, 15), (Admitted, 90)],
        ),
        // The last minute of the period is in; the first minute after and the last minute before are out.
        arrival(at(11, 22, 23, 59), "ortho", VisitType::First, Referral, &[], &[]),
        arrival(at(11, 23, 0, 0), "ortho", VisitType::First, Referral, &[], &[]),
        arrival(at(11, 15, 23, 59), "ortho", VisitType::First, Referral, &[], &[]),
    ]
}

fn feedbacks() -> Vec<AnyRecord> {
    use Dimension::{Guide, Registration};
    use Rating::{Dissatisfied, DontKnow, Neutral, Satisfied, VeryDissatisfied, VerySatisfied};
    vec![
        feedback(
            at(11, 16, 9, 0),
            VerySatisfied,
            &[(Registration, Dissatisfied), (Guide, VerySatisfied)],
            true,
            Some("挂号排队太久 <script>alert(1)</script> & \"慢\""),
            true,
        ),
        feedback(at(11, 16, 10, 0), VerySatisfied, &[(Registration, Satisfied)], true, None, false),
        feedback(at(11, 16, 11, 0), VerySatisfied, &[(Registration, DontKnow)], true, None, false),
        feedback(at(11, 16, 12, 0), Satisfied, &[], true, None, false),
        feedback(at(11, 17, 9, 0), Neutral, &[], true, None, false),
        feedback(at(11, 17, 10, 0), Dissatisfied, &[], true, None, true),
        feedback(at(11, 17, 11, 0), DontKnow, &[], true, None, false),
        feedback(at(11, 17, 12, 0), DontKnow, &[], true, None, false),
        // Incomplete: reported apart, in no rate.
        feedback(at(11, 18, 9, 0), VeryDissatisfied, &[(Registration, VeryDissatisfied)], false, None, false),
    ]
}

fn consultations() -> Vec<AnyRecord> {
    vec![
        consultation(at(11, 18, 9, 0), Some(d(11, 19)), true),
        consultation(at(11, 18, 9, 10), Some(d(11, 20)), false),
        // After the as-of day: pending, out of the arrival rate.
        consultation(at(11, 18, 9, 20), Some(d(11, 25)), false),
        // On the as-of day: the date has come.
        consultation(at(11, 18, 9, 30), Some(d(11, 23)), false),
        consultation(at(11, 18, 9, 40), None, true),
    ]
}

fn cases() -> Vec<AnyRecord> {
    use CaseGrade::{Complaint, Dispute, Dissatisfied, Suggestion};
    vec![
        case(&CaseSpec {
            staff: &["D001"],
            status: CaseStatus::Closed,
            closed: Some(at(11, 18, 17, 0)),
            handling: Some(Rating::Satisfied),
            ..spec(at(11, 16, 9, 0), Complaint, &["cardio"], d(11, 18))
        }),
        case(&CaseSpec {
            staff: &["D001", "D001"],
            status: CaseStatus::Closed,
            closed: Some(at(11, 19, 9, 0)),
            handling: Some(Rating::DontKnow),
            ..spec(at(11, 16, 10, 0), Complaint, &["cardio", "neuro"], d(11, 17))
        }),
        case(&CaseSpec {
            staff: &["D002"],
            status: CaseStatus::Investigating,
            ..spec(at(11, 17, 9, 0), Dissatisfied, &["cardio"], d(11, 23))
        }),
        case(&spec(at(11, 17, 10, 0), Dissatisfied, &["neuro"], d(11, 20))),
        case(&CaseSpec {
            status: CaseStatus::ReferredLegal,
            legal_at: Some(at(11, 21, 10, 0)),
            ..spec(at(11, 19, 9, 0), Dispute, &["cardio"], d(11, 27))
        }),
        case(&CaseSpec {
            status: CaseStatus::Closed,
            closed: Some(at(11, 16, 9, 0)),
            handling: Some(Rating::VeryDissatisfied),
            ..spec(at(11, 16, 8, 0), Suggestion, &[], d(11, 16))
        }),
        // Outside the period, inside the accountability look-back (2025-12 … 2026-11).
        case(&spec(at(11, 3, 9, 0), Dissatisfied, &["cardio"], d(11, 3))),
        case(&spec(at(9, 10, 9, 0), Dispute, &["cardio"], d(9, 21))),
        case(&spec(at(1, 5, 9, 0), Dispute, &["cardio"], d(1, 14))),
        // Before the look-back: ignored.
        case(&spec(
            Moment::start_of_day(NaiveDate::from_ymd_opt(2025, 11, 30).unwrap(), off()),
            Dispute,
            &["cardio"],
            d(1, 5),
        )),
    ]
}

fn tasks() -> Vec<AnyRecord> {
    use FollowupStatus::{Cancelled, Completed, Deceased, Open, Refused, Unreachable};
    let t = at(11, 16, 7, 45);
    let dis = |s, due| task(t, TaskGroup::Discharge, Some("cardio"), s, due);
    vec![
        dis(Completed, d(11, 20)),
        dis(Completed, d(11, 20)),
        dis(Unreachable, d(11, 20)),
        dis(Refused, d(11, 20)),
        dis(Deceased, d(11, 20)),
        dis(Cancelled, d(11, 20)),
        // Window ends on the as-of day: still pending.
        dis(Open, d(11, 23)),
        dis(Open, d(11, 20)),
        task(t, TaskGroup::Outpatient, Some("neuro"), Completed, d(11, 18)),
        task(t, TaskGroup::Outpatient, Some("neuro"), Unreachable, d(11, 18)),
        task(t, TaskGroup::Feedback, None, Completed, d(11, 16)),
    ]
}

fn calls() -> Vec<AnyRecord> {
    let t = at(11, 20, 9, 0);
    vec![
        call(t, CallOutcome::Reached, Some(Some(Rating::Satisfied))),
        call(t, CallOutcome::Reached, Some(Some(Rating::VeryDissatisfied))),
        call(t, CallOutcome::Reached, Some(Some(Rating::DontKnow))),
        call(t, CallOutcome::Reached, Some(None)),
        // An unreached call is never counted as satisfied, even if a satisfaction slipped into the record.
        call(t, CallOutcome::NoAnswer, Some(Some(Rating::Satisfied))),
        call(t, CallOutcome::Busy, None),
    ]
}

/// A booking for `day` made three days earlier at the phone line, its events as (status, reason).
fn booking(
    day: NaiveDate,
    kind: crate::model::AppointmentType,
    channel: crate::model::BookingChannel,
    dept: &str,
    events: &[(crate::model::AppointmentStatus, Option<&str>)],
) -> AnyRecord {
    let booked_at = Moment::start_of_day(day, off()).plus_millis(-3 * 86_400_000 + 10 * 3_600_000);
    AnyRecord::Appointment(crate::model::Appointment {
        id: RecordId::new_v7(booked_at),
        booked_at,
        booked_by: staff("D001"),
        kind,
        channel,
        patient_name: "病人".into(),
        phone: "13800138000".into(),
        department: dept.into(),
        doctor: None,
        day,
        session: crate::model::reference::Session::Morning,
        slot: None,
        reason: None,
        enquiry: None,
        rescheduled_from: None,
        overbooked: None,
        events: events
            .iter()
            .enumerate()
            .map(|(i, (status, reason))| crate::model::AppointmentEvent {
                status: *status,
                at: Moment::start_of_day(day, off()).plus_millis(12 * 3_600_000),
                by: staff("D001"),
                reason: reason.map(str::to_string),
                arrival: None,
                moved_to: None,
                stamp: Hlc { wall_ms: 1 + i as u64, logical: 0, node: 1 },
            })
            .collect(),
    })
}

/// Bookings for the week: 3 came, 2 no-shows, 1 cancelled, 1 rescheduled, 1 still expected, 1 home care that took
/// place; one more for the week after (out of the period).
fn bookings() -> Vec<AnyRecord> {
    use crate::model::{AppointmentStatus as S, AppointmentType as T, BookingChannel as C};
    vec![
        booking(d(11, 16), T::Expert, C::Phone, "cardio", &[(S::CheckedIn, None)]),
        booking(d(11, 17), T::Expert, C::Phone, "cardio", &[(S::NoShow, None)]),
        booking(d(11, 17), T::Specialist, C::WeChat, "cardio", &[(S::CheckedIn, None)]),
        booking(d(11, 18), T::Examination, C::WeChat, "resp", &[(S::NoShow, None), (S::CheckedIn, None)]),
        booking(d(11, 19), T::PhysicalExam, C::Web, "resp", &[(S::NoShow, None)]),
        booking(d(11, 20), T::Expert, C::Phone, "cardio", &[(S::Cancelled, Some("病人出差"))]),
        booking(d(11, 21), T::Expert, C::Phone, "cardio", &[(S::Rescheduled, Some("改约下周"))]),
        booking(d(11, 22), T::Specialist, C::Referral, "resp", &[]),
        booking(d(11, 20), T::HomeCare, C::Phone, "resp", &[]),
        booking(d(11, 24), T::Expert, C::Phone, "cardio", &[]),
    ]
}

fn all_records() -> Vec<AnyRecord> {
    let mut v = arrivals();
    v.extend(bookings());
    v.extend(feedbacks());
    v.extend(consultations());
    v.extend(cases());
    v.extend(tasks());
    v.extend(calls());
    v
}

fn fixture() -> Summary {
    summarize(&all_records(), params(), &refs())
}

fn assert_rate(k: &Kpi, num: u64, den: u64) {
    assert_eq!((k.numerator, k.denominator, k.n), (num, den, den), "{:?}", k.metric);
    assert_eq!(k.small_n, den < SMALL_N);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

mod documents;
mod figures;
mod kpi;
