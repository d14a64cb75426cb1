//! Hospital policy rules that are pure functions of reference data (no I/O, no clock): the working-day calendar,
//! case deadlines and follow-up windows.

pub mod calendar;

use chrono::{Days, NaiveDate};

use crate::model::CaseGrade;
use crate::model::reference::{CasePolicy, ChronicPlan, FollowupPolicy};
use calendar::HolidayCalendar;

/// The deadline of a case received on `received`: the policy's working days for its grade (or the multi-department
/// figure when more than one department is concerned and that is longer), counted on the official calendar. Returns
/// the date and whether the calendar had to guess (a year without official data).
pub fn case_due(
    calendar: &HolidayCalendar,
    policy: &CasePolicy,
    grade: CaseGrade,
    departments: usize,
    received: NaiveDate,
) -> (NaiveDate, bool) {
    let mut n = policy.deadline_working_days.get(&grade).copied().unwrap_or(0);
    if departments > 1 && !grade.handled_on_the_spot() {
        n = n.max(policy.multi_department_working_days);
    }
    calendar.add_working_days(received, n).map_or((received, true), |d| (d.date, d.guessed))
}

/// The first call's window after a discharge from `department`: `[discharge + from, discharge + to]` calendar
/// days, from the department's own plan (`followup_policy.department_calls`) or the policy's default.
pub fn discharge_window(policy: &FollowupPolicy, department: &str, discharged_on: NaiveDate) -> (NaiveDate, NaiveDate) {
    let (from, to) = policy
        .department_calls
        .get(department)
        .map_or((policy.discharge_from_days, policy.discharge_to_days), |p| p.first);
    let day = |n: u32| discharged_on.checked_add_days(Days::new(n.into()));
    let start = day(from).unwrap_or(discharged_on);
    (start, day(to).unwrap_or(start))
}

/// The second call's window after a discharge from `department`, when its plan (or the policy's default) has one.
pub fn discharge_second_window(
    policy: &FollowupPolicy,
    department: &str,
    discharged_on: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    let (from, to) = match policy.department_calls.get(department) {
        Some(plan) => plan.second?,
        None => policy.discharge_second_call_days?,
    };
    let day = |n: u32| discharged_on.checked_add_days(Days::new(n.into()));
    Some((day(from)?, day(to)?))
}

/// The first round of a chronic plan after a discharge on `discharged_on`: the plan's window (2–4 weeks), or, when
/// the patient is put on the plan after that window has begun, from `today` for the window's length.
pub fn chronic_first_window(plan: &ChronicPlan, discharged_on: NaiveDate, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let day = |n: u32| discharged_on.checked_add_days(Days::new(n.into())).unwrap_or(discharged_on);
    let (from, to) = (day(plan.first.0), day(plan.first.1));
    if from >= today {
        return (from, to);
    }
    let len = Days::new(u64::from(plan.first.1 - plan.first.0).max(2));
    (today, today.checked_add_days(len).unwrap_or(today))
}

/// The next round of a chronic plan after a round finished on `finished`: due at most `every_days` later, its window
/// opening `window_days` before.
pub fn chronic_next_window(plan: &ChronicPlan, finished: NaiveDate) -> (NaiveDate, NaiveDate) {
    let to = finished.checked_add_days(Days::new(plan.every_days.into())).unwrap_or(finished);
    (to.checked_sub_days(Days::new(plan.window_days.into())).unwrap_or(to), to)
}

/// The call window of an outpatient first visit: the day(s) after the visit.
pub fn outpatient_window(policy: &FollowupPolicy, visit: NaiveDate) -> (NaiveDate, NaiveDate) {
    let from = visit.checked_add_days(Days::new(policy.outpatient_after_days.into())).unwrap_or(visit);
    (from, from.checked_add_days(Days::new(2)).unwrap_or(from))
}

/// The call window after a case is closed: the next three days.
pub fn case_callback_window(closed: NaiveDate) -> (NaiveDate, NaiveDate) {
    let from = closed.checked_add_days(Days::new(1)).unwrap_or(closed);
    (from, from.checked_add_days(Days::new(2)).unwrap_or(from))
}

/// Whether a local time falls inside one of the policy's calling-hour windows (`HH:MM` start inclusive, end
/// exclusive). Malformed windows never match.
pub fn within_calling_hours(hours: &[(String, String)], time: chrono::NaiveTime) -> bool {
    hours.iter().any(|(a, b)| {
        match (chrono::NaiveTime::parse_from_str(a, "%H:%M"), chrono::NaiveTime::parse_from_str(b, "%H:%M")) {
            (Ok(a), Ok(b)) => a <= time && time < b,
            _ => false,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ReferenceData;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn case_deadlines_follow_grade_and_departments() {
        let r = ReferenceData::bundled().unwrap();
        let (cal, p) = (&r.calendar, &r.case_policy);
        // Friday 2025-09-26: 3 working days → Sun 09-28 (调休), Mon 09-29, Tue 09-30.
        assert_eq!(case_due(cal, p, CaseGrade::Complaint, 1, d(2025, 9, 26)), (d(2025, 9, 30), false));
        // 7 working days jump the National Day holiday (10-01..10-08) and count Sat 10-11 (调休).
        assert_eq!(case_due(cal, p, CaseGrade::Dispute, 1, d(2025, 9, 26)), (d(2025, 10, 13), false));
        assert_eq!(case_due(cal, p, CaseGrade::Complaint, 2, d(2025, 9, 26)), (d(2025, 10, 13), false));
        // Grades handled on the spot are due the same day, even with several departments.
        assert_eq!(case_due(cal, p, CaseGrade::Suggestion, 3, d(2025, 9, 26)), (d(2025, 9, 26), false));
        // A year without data is flagged.
        assert!(case_due(cal, p, CaseGrade::Complaint, 1, d(2027, 3, 1)).1);
    }

    #[test]
    fn calling_hours() {
        let r = ReferenceData::bundled().unwrap();
        let h = &r.followup_policy.calling_hours;
        let t = |hh, mm| chrono::NaiveTime::from_hms_opt(hh, mm, 0).unwrap();
        assert!(within_calling_hours(h, t(8, 0)));
        assert!(!within_calling_hours(h, t(11, 0)));
        assert!(within_calling_hours(h, t(16, 59)));
        assert!(!within_calling_hours(h, t(12, 30)));
    }

    #[test]
    fn followup_windows() {
        let r = ReferenceData::bundled().unwrap();
        // 出院病人电话回访制度 三: the first call within 3 days, the second 7–15 days after the discharge.
        assert_eq!(discharge_window(&r.followup_policy, "cardio", d(2026, 11, 1)), (d(2026, 11, 2), d(2026, 11, 4)));
        assert_eq!(
            discharge_second_window(&r.followup_policy, "cardio", d(2026, 11, 1)),
            Some((d(2026, 11, 8), d(2026, 11, 16)))
        );
        let one_call =
            crate::model::reference::FollowupPolicy { discharge_second_call_days: None, ..r.followup_policy.clone() };
        assert_eq!(discharge_second_window(&one_call, "cardio", d(2026, 11, 1)), None);
        // 术后 5 天、10 天: a surgical department's own plan.
        assert_eq!(discharge_window(&r.followup_policy, "surgery", d(2026, 11, 1)), (d(2026, 11, 6), d(2026, 11, 7)));
        assert_eq!(
            discharge_second_window(&r.followup_policy, "surgery", d(2026, 11, 1)),
            Some((d(2026, 11, 11), d(2026, 11, 13)))
        );
        assert_eq!(outpatient_window(&r.followup_policy, d(2026, 11, 1)).0, d(2026, 11, 2));
    }
}
