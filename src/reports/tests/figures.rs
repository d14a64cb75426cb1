//! The figures: arrivals, waiting, satisfaction, consultations, cases, follow-up, accountability, merging.

use super::*;

#[test]
fn arrivals_by_hour_day_department_channel_and_needs() {
    let s = fixture();
    let a = &s.agg.arrivals;
    assert_eq!((a.total, a.first, a.returning), (4, 3, 1));
    assert_eq!((a.by_hour[8], a.by_hour[14], a.by_hour[23], a.by_hour[0]), (2, 1, 1, 0));
    assert_eq!(a.by_day.get(&d(11, 16)), Some(&2));
    assert_eq!(a.by_day.get(&d(11, 22)), Some(&1));
    assert_eq!(a.by_day.get(&d(11, 23)), None);
    assert_eq!(a.by_department["cardio"].total, 2);
    assert_eq!((a.by_department["cardio"].first, a.by_department["cardio"].returning), (1, 1));
    assert_eq!(a.by_channel[&ArrivalChannel::WalkIn], 2);
    assert_eq!(a.by_channel[&ArrivalChannel::Referral], 1);
    assert_eq!(a.needs_by_hour[&Need::Wheelchair][8], 2);
    assert_eq!(a.needs_by_hour[&Need::Escort][8], 1);
    assert_eq!(a.with_need(Need::Wheelchair), 2);
    assert_eq!(a.with_need(Need::Stretcher), 0);
    assert_eq!(a.current_step[&VisitStep::Cancelled], 1);
    assert_eq!(a.current_step[&VisitStep::Triaged], 1);
}

#[test]
fn waiting_time_per_step_from_step_times() {
    let s = fixture();
    let w = |step| s.waits.iter().find(|w| w.step == step).unwrap().clone();
    // Triaged → next step: 10, 5, 20 minutes.
    let t = w(Some(VisitStep::Triaged));
    assert_eq!((t.n, t.median, t.p90, t.limit, t.over_limit), (3, Some(10), Some(20), Some(15), 1));
    // Registered: 30 and 1 minutes; the negative interval is left out and counted.
    let r = w(Some(VisitStep::Registered));
    assert_eq!((r.n, r.median, r.p90), (2, Some(1), Some(30)));
    assert_eq!(s.agg.arrivals.negative_intervals, 1);
    let doc = w(Some(VisitStep::WithDoctor));
    assert_eq!((doc.n, doc.median, doc.p90), (2, Some(15), Some(75)));
    // Whole visit, done or admitted only (the cancelled visit is left out): 55 and 90 minutes.
    let whole = w(None);
    assert_eq!((whole.n, whole.median, whole.p90), (2, Some(55), Some(90)));
    let exams = w(Some(VisitStep::Exams));
    assert_eq!((exams.n, exams.median), (0, None));
}

#[test]
fn satisfaction_excludes_dont_know_and_incomplete_surveys() {
    let s = fixture();
    let fb = &s.agg.feedback;
    assert_eq!((fb.total, fb.incomplete, fb.dissatisfied_with_contact), (9, 1, 2));
    // Overall, complete surveys: 3 very satisfied, 1 satisfied, 1 neutral, 1 dissatisfied, 2 don't know.
    let overall = &s.overall_satisfaction;
    assert_rate(overall, 4, 6);
    assert!(close(overall.pct().unwrap(), 66.666));
    assert_eq!(overall.target, Some(Target::at_least(95.0)));
    assert_eq!(overall.meets, Some(false));
    let row = &s.questions[0];
    assert_eq!(row.question, Question::Overall);
    assert_eq!((row.counts.total(), row.counts.scored(), row.counts.get(Rating::DontKnow)), (8, 6, 2));
    assert_rate(&row.negative, 1, 6);
    // The incomplete survey's answers are reported apart.
    assert_eq!((row.incomplete.total(), row.incomplete.get(Rating::VeryDissatisfied)), (1, 1));
    // Registration: dissatisfied, satisfied, don't know → 1 of 2.
    assert_rate(&s.registration_dissatisfaction, 1, 2);
    assert_eq!(s.registration_dissatisfaction.target, Some(Target::at_most(2.0)));
    assert_eq!(s.registration_dissatisfaction.meets, Some(false));
    // Guide: one very satisfied → 0 of 1, meets ≤ 2% but with a tiny n.
    assert_rate(&s.guide_dissatisfaction, 0, 1);
    assert_eq!(s.guide_dissatisfaction.meets, Some(true));
    assert!(s.guide_dissatisfaction.small_n);
    // A dimension nobody rated.
    let billing = s.questions.iter().find(|q| q.question == Question::Dimension(Dimension::Billing)).unwrap();
    assert_rate(&billing.positive, 0, 0);
    // The trend: day 16 is 4/4, day 17 is 0/2, other days have no data.
    assert_eq!(s.trend.len(), 7);
    assert_rate(&s.trend[0].1, 4, 4);
    assert_rate(&s.trend[1].1, 0, 2);
    assert_eq!(s.trend[2].1.pct(), None);
    assert_eq!(fb.comments.len(), 1);
    assert_eq!(fb.reasons["等候时间长"], 9);
}

#[test]
fn consultation_conversion() {
    let s = fixture();
    let c = &s.agg.consultations;
    assert_eq!((c.total, c.appointments, c.appointments_pending, c.appointments_came, c.came), (5, 4, 1, 1, 2));
    assert_rate(&s.appointment_rate, 4, 5);
    assert_rate(&s.appointment_arrival_rate, 3, 5);
    assert_rate(&s.consultation_conversion, 2, 5);
    assert_eq!(c.by_channel[&ConsultationChannel::Phone], 5);
    assert_eq!(c.by_concern[&Concern::Appointment], 5);
}

#[test]
fn cases_on_time_closure_by_grade_and_department() {
    let s = fixture();
    let c = &s.agg.cases;
    assert_eq!(c.total, 6, "only cases received in the period");
    let t = c.closure_total();
    assert_eq!((t.on_time, t.late, t.open_not_due, t.overdue), (3, 1, 1, 1));
    assert_rate(&s.case_on_time, 3, 5);
    let complaint = s.cases_by_grade.iter().find(|g| g.grade == CaseGrade::Complaint).unwrap();
    assert_eq!((complaint.counts.received, complaint.counts.on_time, complaint.counts.late), (2, 1, 1));
    assert_rate(&complaint.on_time, 1, 2);
    let incident = s.cases_by_grade.iter().find(|g| g.grade == CaseGrade::Incident).unwrap();
    assert_rate(&incident.on_time, 0, 0);
    let dept = |code: &str| s.cases_by_department.iter().find(|r| r.department == code).unwrap().clone();
    let cardio = dept("cardio");
    assert_eq!(cardio.cases.closure.received, 4);
    assert_rate(&cardio.on_time, 2, 3);
    assert_eq!(cardio.cases.by_grade[&CaseGrade::Complaint], 2);
    let neuro = dept("neuro");
    assert_eq!((neuro.cases.closure.late, neuro.cases.closure.overdue), (1, 1));
    assert_rate(&neuro.on_time, 0, 2);
    // A case without departments counts under "no department".
    assert_rate(&dept("").on_time, 1, 1);
}

#[test]
fn closure_standing_rules() {
    let p = params();
    let standing = |r: &AnyRecord| match r {
        AnyRecord::Case(c) => closure(c, &p),
        _ => unreachable!(),
    };
    let list = cases();
    let got: Vec<Closure> = list[..6].iter().map(standing).collect();
    assert_eq!(
        got,
        [Closure::OnTime, Closure::Late, Closure::OpenNotDue, Closure::Overdue, Closure::OnTime, Closure::OnTime]
    );
}

/// 病人投诉处理满意率 (《经营部工作手册》 2, target 98%) is over patients' complaints: a 情况反馈 or 建议 complains of
/// no one, so its handling rating is left out of the rate (《客户服务中心管理方案》 三.4 grades them apart). The
/// figure over every case is shown beside it for a hospital that reads the rule that way.
#[test]
fn complaint_handling_satisfaction_is_over_complaints_with_every_case_beside_it() {
    let s = fixture();
    let c = &s.agg.cases;
    // Finished complaints: satisfied, don't know, (referred to legal: not rated); the finished suggestion (very
    // dissatisfied) is not a complaint.
    assert_eq!((c.handling.total(), c.handling_not_rated), (2, 1));
    assert_eq!(c.handling_all.total(), 3);
    assert_rate(&s.complaint_handling, 1, 1);
    assert_eq!(s.complaint_handling.target, Some(Target::at_least(98.0)));
    assert_eq!(s.complaint_handling.meets, Some(true));
    assert_rate(&s.case_handling_all, 1, 2);
    assert_eq!((s.case_handling_all.target, s.case_handling_all.meets), (None, None));
    assert!(s.headline().iter().any(|k| k.metric == crate::reports::kpi::Metric::CaseHandlingSatisfactionAll));
}

#[test]
fn followup_rates_inpatient_and_outpatient() {
    let s = fixture();
    let dis = s.agg.followups.group(TaskGroup::Discharge);
    assert_eq!(
        (dis.total, dis.completed, dis.unreachable, dis.refused, dis.deceased, dis.cancelled, dis.pending, dis.overdue),
        (8, 2, 1, 1, 1, 1, 1, 1)
    );
    assert_eq!(dis.eligible(), 5);
    assert_eq!(dis.not_reached(), 3);
    // Completed ÷ (8 − cancelled − deceased − pending); unreachable, refused and overdue count as not completed.
    assert_rate(&s.inpatient_followup, 2, 5);
    assert_eq!(s.inpatient_followup.target, Some(Target::at_least(95.0)));
    assert_eq!(s.inpatient_followup.meets, Some(false));
    // Outpatient: completed first-visit follow-ups ÷ first-visit arrivals (3).
    assert_rate(&s.outpatient_followup, 1, 3);
    assert_eq!(s.outpatient_followup.target, Some(Target::at_least(60.0)));
    let row = |code: &str| s.followup_by_department.iter().find(|r| r.department == code).unwrap().clone();
    assert_rate(&row("cardio").inpatient, 2, 5);
    assert_rate(&row("cardio").outpatient_rate, 0, 1);
    assert_rate(&row("neuro").outpatient_rate, 1, 1);
    assert_rate(&row("neuro").inpatient, 0, 0);
    assert_rate(&row("ortho").outpatient_rate, 0, 1);
    assert!(s.followup_by_department.iter().all(|r| !r.department.is_empty()));
    assert_eq!(s.agg.followups.group(TaskGroup::Feedback).completed, 1);
}

#[test]
fn unreached_calls_are_never_counted_as_satisfied() {
    let s = fixture();
    let c = &s.agg.calls;
    assert_eq!(c.total, 6);
    assert_eq!((c.outcome(CallOutcome::Reached), c.outcome(CallOutcome::NoAnswer)), (4, 1));
    assert_eq!((c.satisfaction.total(), c.reached_without_rating), (3, 1));
    // Reached and rated: satisfied, very dissatisfied (don't know left out) → 1 of 2.
    assert_rate(&s.call_satisfaction, 1, 2);
}

#[test]
fn accountability_counts_and_policy_thresholds() {
    let s = fixture();
    assert_eq!(s.accountability_month, YearMonth { year: 2026, month: 11 });
    let depts: Vec<&str> = s.accountability_departments.iter().map(|r| r.who.as_str()).collect();
    assert_eq!(depts, ["cardio", "neuro"], "flagged first; suggestions count nowhere");
    let cardio = &s.accountability_departments[0];
    // November: complaints k1, k2; dissatisfied k3 and the one of 11-03; the dispute of 11-19.
    assert_eq!(
        (cardio.month.dissatisfied, cardio.month.complaints, cardio.month.disputes, cardio.month.incidents),
        (2, 2, 1, 0)
    );
    // Disputes: 11-19 and 09-10 in three months; plus 01-05 in twelve; 2025-11-30 is outside the look-back.
    assert_eq!((cardio.disputes_3m, cardio.disputes_12m), (2, 3));
    assert_eq!(
        cardio.flags,
        [
            Flag::DeptMonthly { count: 4, threshold: 3 },
            Flag::DisputesQuarter { count: 2, threshold: 1 },
            Flag::DisputesYear { count: 3, threshold: 3 },
        ]
    );
    let neuro = &s.accountability_departments[1];
    assert_eq!((neuro.month.dissatisfied, neuro.month.complaints), (1, 1));
    assert!(neuro.flags.is_empty());
    // Staff: D001 named in two complaints (once per case even if listed twice) → more than 1; D002 in one.
    let staff: Vec<(&str, u64, usize)> = s
        .accountability_staff
        .iter()
        .map(|r| (r.who.as_str(), r.month.complaints + r.month.dissatisfied, r.flags.len()))
        .collect();
    assert_eq!(staff, [("D001", 2, 1), ("D002", 1, 0)]);
    assert_eq!(s.accountability_staff[0].flags, [Flag::StaffMonthly { count: 2, threshold: 1 }]);
    // Thresholds come from policy.
    let mut strict = refs();
    strict.case_policy.dept_monthly_threshold = 1;
    strict.case_policy.disputes_per_year_threshold = 0;
    let s2 = summarize(&all_records(), params(), &strict);
    assert!(
        s2.accountability_departments.iter().all(|r| r.flags.iter().any(|f| matches!(f, Flag::DeptMonthly { .. })))
    );
    assert!(s2.accountability_departments[0].flags.iter().all(|f| !matches!(f, Flag::DisputesYear { .. })));
}

/// Seed 003 §四 sets penalties "根据不同级别的不满意及投诉" — for dissatisfaction and complaints that stand; §三.5
/// asks that a complaint at odds with the facts (对投诉有出入的投诉事项) be explained to the complainant. A case found
/// not established (不成立) therefore counts against no department and no person; reopened and then resolved, it
/// counts again.
#[test]
fn a_complaint_found_not_established_counts_against_nobody() {
    let cardio_and_d001 = |s: &Summary| {
        let dept = s.accountability_departments.iter().find(|r| r.who == "cardio").map_or(0, |r| r.month.complaints);
        let staff = s.accountability_staff.iter().find(|r| r.who == "D001").map_or(0, |r| r.month.complaints);
        (dept, staff)
    };
    let mut recs = all_records();
    let before = cardio_and_d001(&summarize(&recs, params(), &refs()));
    let case = recs
        .iter_mut()
        .find_map(|r| match r {
            AnyRecord::Case(c)
                if c.grade.value == CaseGrade::Complaint
                    && c.departments.iter().any(|d| d == "cardio")
                    && c.staff_concerned.iter().any(|s| s == "D001")
                    && chrono::Datelike::month(&c.received_at.local_date(china_offset())) == 11 =>
            {
                Some(c)
            }
            _ => None,
        })
        .expect("a November complaint about cardio naming D001");
    let at = case.received_at.plus_millis(3_600_000);
    let stamp = Hlc { wall_ms: 1, logical: 0, node: 9 };
    let event = |kind| CaseEvent { at, by: StaffRef("K001".into()), kind, note: None, stamp };
    case.events.push(event(CaseEventKind::NotEstablished));
    assert!(case.found_not_established());
    let after = cardio_and_d001(&summarize(&recs, params(), &refs()));
    assert_eq!((after.0 + 1, after.1 + 1), before, "the case no longer counts");
    // Reopened and found to stand after all: it counts again.
    let case = recs
        .iter_mut()
        .find_map(|r| match r {
            AnyRecord::Case(c) if c.found_not_established() => Some(c),
            _ => None,
        })
        .unwrap();
    case.events.push(event(CaseEventKind::Reopened));
    case.events.push(event(CaseEventKind::Resolved {
        resolution: "属实".into(),
        actions: String::new(),
        responsible: "D001".into(),
    }));
    assert_eq!(cardio_and_d001(&summarize(&recs, params(), &refs())), before);
}

#[test]
fn empty_period_gives_empty_rates_not_errors() {
    let s = summarize(&[], params(), &refs());
    for k in s.headline() {
        assert_eq!((k.numerator, k.denominator, k.pct(), k.meets), (0, 0, None, None), "{:?}", k.metric);
        assert!(k.small_n);
    }
    assert_eq!(s.trend.len(), 7);
    assert!(s.waits.iter().all(|w| w.n == 0 && w.median.is_none()));
    assert!(s.accountability_departments.is_empty() && s.followup_by_department.is_empty());
    let opts = html::DocOptions { lang: Lang::Zh, generated_at: at(11, 23, 8, 0), organisation: None };
    let w = html::weekly(&s, &refs(), &opts);
    assert!(w.contains("本期无记录") && w.contains("无数据"));
    let m = html::monthly(&s, &refs(), &html::DocOptions { lang: Lang::En, ..opts });
    assert!(m.contains("No records in this period") && m.contains("no data"));
}

#[test]
fn merging_partial_aggregators_equals_one_pass_in_any_order() {
    let recs = all_records();
    let mut whole = Aggregator::new(params());
    whole.extend(&recs);
    for parts in [2usize, 3, 7] {
        let mut aggs: Vec<Aggregator> = (0..parts).map(|_| Aggregator::new(params())).collect();
        for (i, r) in recs.iter().enumerate() {
            aggs[i % parts].add(r);
        }
        let mut forward = Aggregator::new(params());
        for a in &aggs {
            assert!(forward.merge(a));
        }
        let mut backward = Aggregator::new(params());
        for a in aggs.iter().rev() {
            assert!(backward.merge(a));
        }
        assert_eq!(forward, whole);
        assert_eq!(backward, whole);
    }
    let mut reversed = Aggregator::new(params());
    reversed.extend(recs.iter().rev());
    assert_eq!(reversed, whole);
    let other = Aggregator::new(ReportParams { as_of: d(11, 30), ..params() });
    assert!(!whole.clone().merge(&other), "different parameters do not merge");
}

#[test]
fn comment_and_case_lists_are_capped_but_counted() {
    let mut agg = Aggregator::new(params());
    let n = crate::reports::agg::MAX_LISTED + 20;
    for i in 0..n {
        let t = at(11, 16, 8, 0).plus_millis(i as i64 * 1000);
        agg.add(&feedback(t, Rating::Dissatisfied, &[], true, Some("太慢"), false));
    }
    assert_eq!(agg.feedback.comments.len(), crate::reports::agg::MAX_LISTED);
    assert_eq!(agg.feedback.comments_not_listed, 20);
    assert!(agg.feedback.comments.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(agg.feedback.comments[0].at, at(11, 16, 8, 0), "the earliest are kept");
}

/// 《出院病人电话回访制度》: the month's follow-up rate is over the patients discharged in the month. A discharge task
/// is filed under its discharge date, not the day its list was imported: a list of the period imported after it
/// ended still counts in it, and one of an earlier period imported during it does not.
#[test]
fn discharge_tasks_are_filed_by_discharge_date_not_import_date() {
    let discharge = |created: Moment, discharged: NaiveDate| {
        let AnyRecord::FollowupTask(mut t) =
            task(created, TaskGroup::Discharge, Some("cardio"), FollowupStatus::Completed, d(11, 20))
        else {
            unreachable!()
        };
        t.source = FollowupSource::Discharge {
            his_key: format!("Z{}", created.0),
            discharged_on: discharged,
            diagnosis: None,
        };
        AnyRecord::FollowupTask(t)
    };
    let base = fixture().agg.followups.group(TaskGroup::Discharge).total;
    let count = |extra: AnyRecord| {
        let mut records = all_records();
        records.push(extra);
        summarize(&records, params(), &refs()).agg.followups.group(TaskGroup::Discharge).total
    };
    // Discharged on the Friday of the week, imported the Tuesday after it: counted.
    assert_eq!(count(discharge(at(11, 24, 9, 0), d(11, 20))), base + 1);
    // Discharged the week before, imported during the week: not counted.
    assert_eq!(count(discharge(at(11, 17, 9, 0), d(11, 13))), base);
    let (first, last) = params().task_days();
    assert_eq!((first, last), (d(10, 16), d(11, 23)), "31 days before the period, to the as-of day");
}

/// 《经营部工作手册》 (导医 登记): the registers of 退号/换号 and of where patients come from (来源地) and how they heard
/// of the hospital (获知途径) are summed in the weekly and monthly reports.
#[test]
fn cancellations_changes_origins_and_how_heard_are_counted_with_their_reasons() {
    let mut records = all_records();
    let mut extra = |origin: Option<&str>, heard: Option<&str>, cancel: Option<&str>, change: &[&str]| {
        let AnyRecord::Arrival(mut a) =
            arrival(at(11, 18, 9, 0), "cardio", VisitType::First, ArrivalChannel::WalkIn, &[], &[])
        else {
            unreachable!()
        };
        a.origin = origin.map(Into::into);
        a.heard_via = heard.map(Into::into);
        if let Some(r) = cancel {
            a.steps.push(StepEvent {
                step: VisitStep::Cancelled,
                at: at(11, 18, 9, 30),
                by: staff("D001"),
                reason: Some(r.into()),
                stamp: Hlc::ZERO,
            });
        }
        for r in change {
            a.changes.push(crate::model::arrival::ChangeEvent {
                from_department: "cardio".into(),
                to_department: "neuro".into(),
                from_doctor: None,
                to_doctor: None,
                reason: (*r).into(),
                at: at(11, 18, 9, 10),
                by: staff("D001"),
                stamp: Hlc::ZERO,
            });
        }
        records.push(AnyRecord::Arrival(a));
    };
    extra(Some(" 杭州市 "), Some("朋友介绍"), Some("患者改日再来"), &["挂错科室"]);
    extra(Some("杭州市"), Some("网络"), None, &["挂错科室", "指定专家"]);
    extra(None, Some("朋友介绍"), Some("患者改日再来"), &[]);
    let s = summarize(&records, params(), &refs());
    let a = &s.agg.arrivals;
    assert_eq!(a.by_origin.get("杭州市"), Some(&2));
    assert_eq!(a.by_heard_via.get("朋友介绍"), Some(&2));
    // The fixture's own 退号 gave no reason.
    assert_eq!(a.cancel_reasons.get("患者改日再来"), Some(&2));
    assert_eq!(a.cancel_reasons.get(""), Some(&1));
    assert_eq!((a.change_reasons.get("挂错科室"), a.change_reasons.get("指定专家")), (Some(&2), Some(&1)));
    let t = crate::reports::tables::cancellations_and_changes(&s, Lang::Zh);
    let first = t.rows[0].iter().map(|c| c.text.as_str()).collect::<Vec<_>>();
    assert_eq!(first, ["cancelled", "退号", "患者改日再来", "2"]);
    let origins = crate::reports::tables::arrivals_by_origin(&s, Lang::Zh);
    assert!(origins.rows.iter().any(|r| r[0].text == "未填写"), "an arrival without 来源地 reads 未填写");
}

/// Seed 003 §四: "如在一年内接到本科室事故一次，该主管罚款1000元，并直接劝退" — one incident in a year flags the
/// department; "处理事故后，直接开除事故直接主体" — the person concerned in an incident is flagged in its month.
#[test]
fn one_incident_in_a_year_flags_the_department_and_the_person_concerned() {
    let mut records = all_records();
    // An incident in ortho in March (inside the twelve months), and one in November naming D003.
    records.push(case(&spec(at(3, 10, 9, 0), CaseGrade::Incident, &["ortho"], d(3, 19))));
    records
        .push(case(&CaseSpec { staff: &["D003"], ..spec(at(11, 18, 9, 0), CaseGrade::Incident, &["eye"], d(11, 27)) }));
    let s = summarize(&records, params(), &refs());
    let row = |who: &str| s.accountability_departments.iter().find(|r| r.who == who).unwrap().clone();
    let ortho = row("ortho");
    assert_eq!((ortho.month.incidents, ortho.incidents_12m), (0, 1));
    assert_eq!(ortho.flags, [Flag::IncidentsYear { count: 1, threshold: 1 }]);
    assert_eq!(row("eye").flags, [Flag::IncidentsYear { count: 1, threshold: 1 }]);
    let d003 = s.accountability_staff.iter().find(|r| r.who == "D003").unwrap();
    assert_eq!(d003.flags, [Flag::StaffIncident { count: 1 }]);
    assert_eq!(crate::reports::labels::flag(d003.flags[0], Lang::Zh), "本月涉及事故 1 次");
    // The threshold is policy; 0 turns the department rule off.
    let mut lax = refs();
    lax.case_policy.incidents_per_year_threshold = 0;
    let s = summarize(&records, params(), &lax);
    assert!(
        s.accountability_departments.iter().all(|r| !r.flags.iter().any(|f| matches!(f, Flag::IncidentsYear { .. })))
    );
}

#[test]
fn appointment_statistics_and_the_arrival_rate_come_from_bookings() {
    use crate::model::{AppointmentType, BookingChannel};
    let s = fixture();
    let b = &s.agg.appointments;
    // Nine bookings for the week (the one for 11-24 is not of the period).
    assert_eq!(b.all.total, 9);
    assert_eq!((b.all.checked_in, b.all.no_show, b.all.cancelled, b.all.rescheduled, b.all.booked), (3, 2, 1, 1, 2));
    // Home care is never checked in at the desk: not in the rate.
    assert_eq!(b.clinic.total, 8);
    // Numerator: checked in (a late patient checked in after the no-show counts as came); denominator: came or
    // no-show — cancelled, rescheduled and still-expected bookings left out.
    assert_rate(&s.appointment_arrival_rate, 3, 5);
    assert_eq!(
        (b.by_channel[&BookingChannel::Phone].arrived(), b.by_channel[&BookingChannel::Phone].expected()),
        (1, 2)
    );
    assert_eq!(
        (b.by_channel[&BookingChannel::WeChat].arrived(), b.by_channel[&BookingChannel::WeChat].expected()),
        (2, 2)
    );
    assert_eq!((b.by_department["resp"].arrived(), b.by_department["resp"].expected()), (1, 2));
    assert_eq!(b.by_kind[&AppointmentType::HomeCare].total, 1);
    assert_eq!(b.by_day[&d(11, 17)].total, 2);
    assert_eq!(b.reasons["病人出差"], 1);
    let t = crate::reports::tables::appointments_by_day(&s, Lang::Zh);
    assert_eq!(t.rows.len(), 7, "one row per day with bookings");
    let r = crate::reports::tables::appointment_arrival_rate(&s, &refs(), Lang::Zh);
    assert!(
        r.rows.iter().any(|row| row[0].text == "channel" && row[2].text == "wechat" && row[5].text == "2"),
        "{r:?}"
    );
}

/// 客户服务中心管理方案 (回访中了解到的问题…及时进行整改，科室…每月小结): the monthly report counts each department's
/// improvement measures — recorded in the period, due in it and done on time or late, and those past their day
/// and not done (also of an earlier month), as of the as-of day; a measure done after the as-of day is not done yet.
#[test]
fn improvement_measures_per_department() {
    let plan = |at_: Moment, dept: &str, due: NaiveDate, stamp: u64| CaseEvent {
        at: at_,
        by: staff("K001"),
        kind: CaseEventKind::ImprovementPlanned { department: dept.into(), measure: "增设叫号屏".into(), due },
        note: None,
        stamp: Hlc { wall_ms: stamp, logical: 0, node: 1 },
    };
    let done = |at_: Moment, stamp: u64| CaseEvent {
        at: at_,
        by: staff("K001"),
        kind: CaseEventKind::ImprovementDone {
            plan: Hlc { wall_ms: stamp, logical: 0, node: 1 },
            effect: "已落实".into(),
        },
        note: None,
        stamp: Hlc { wall_ms: stamp + 100, logical: 0, node: 1 },
    };
    let AnyRecord::Case(mut c) = case(&spec(at(10, 5, 9, 0), CaseGrade::Complaint, &["cardio"], d(10, 8))) else {
        unreachable!()
    };
    c.events.extend([
        // Planned in October, due in the week, done on time.
        plan(at(10, 6, 9, 0), "cardio", d(11, 18), 1),
        done(at(11, 17, 10, 0), 1),
        // Planned in the week, due in the week, done late (after its day, before the as-of day).
        plan(at(11, 16, 9, 0), "cardio", d(11, 17), 2),
        done(at(11, 20, 10, 0), 2),
        // Due in October, never done: overdue.
        plan(at(10, 6, 9, 0), "gastro", d(10, 20), 3),
        // Due in the week, done after the as-of day: not done as of it, overdue.
        plan(at(11, 16, 9, 0), "gastro", d(11, 19), 4),
        done(at(11, 25, 10, 0), 4),
        // Planned in the week, due next month: recorded, not due.
        plan(at(11, 18, 9, 0), "gastro", d(12, 15), 5),
    ]);
    let s = summarize(&[AnyRecord::Case(c)], params(), &refs());
    let cardio = s.agg.improvements.by_department["cardio"];
    assert_eq!(
        (cardio.planned, cardio.due, cardio.done_on_time, cardio.done_late, cardio.open_overdue),
        (1, 2, 1, 1, 0)
    );
    let gastro = s.agg.improvements.by_department["gastro"];
    assert_eq!(
        (gastro.planned, gastro.due, gastro.done_on_time, gastro.done_late, gastro.open_overdue),
        (2, 1, 0, 0, 2)
    );
    let t = crate::reports::tables::improvements(&s, &refs(), Lang::Zh);
    assert_eq!(t.rows.len(), 3, "two departments and the total");
    let total = t.rows.last().unwrap();
    let col = |k: &str| total[t.column(k).unwrap()].text.clone();
    assert_eq!(
        (col("planned"), col("due"), col("open_overdue"), col("on_time_pct")),
        ("3".into(), "3".into(), "2".into(), "33.3".into())
    );
}
