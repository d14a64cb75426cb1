//! Tests of the working-day calendar: official holidays, 调休 make-up days, deadlines in working days.

use super::*;
use proptest::prelude::*;

fn d(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn bundled() -> HolidayCalendar {
    HolidayCalendar::bundled().unwrap()
}

/// Every day of `first ..= last`.
fn span(first: NaiveDate, last: NaiveDate) -> Vec<NaiveDate> {
    first.iter_days().take_while(|&day| day <= last).collect()
}

/// The festival periods as the notices word them (国办发明电〔2024〕12号 and 国办发明电〔2025〕7号), written
/// here as ranges independently of the JSON file.
fn expected_periods() -> Vec<(&'static str, NaiveDate, NaiveDate)> {
    vec![
        ("元旦", d(2025, 1, 1), d(2025, 1, 1)),
        ("春节", d(2025, 1, 28), d(2025, 2, 4)),
        ("清明节", d(2025, 4, 4), d(2025, 4, 6)),
        ("劳动节", d(2025, 5, 1), d(2025, 5, 5)),
        ("端午节", d(2025, 5, 31), d(2025, 6, 2)),
        ("国庆节、中秋节", d(2025, 10, 1), d(2025, 10, 8)),
        ("元旦", d(2026, 1, 1), d(2026, 1, 3)),
        ("春节", d(2026, 2, 15), d(2026, 2, 23)),
        ("清明节", d(2026, 4, 4), d(2026, 4, 6)),
        ("劳动节", d(2026, 5, 1), d(2026, 5, 5)),
        ("端午节", d(2026, 6, 19), d(2026, 6, 21)),
        ("中秋节", d(2026, 9, 25), d(2026, 9, 27)),
        ("国庆节", d(2026, 10, 1), d(2026, 10, 7)),
    ]
}

fn expected_adjusted_workdays() -> Vec<NaiveDate> {
    vec![
        d(2025, 1, 26),
        d(2025, 2, 8),
        d(2025, 4, 27),
        d(2025, 9, 28),
        d(2025, 10, 11),
        d(2026, 1, 4),
        d(2026, 2, 14),
        d(2026, 2, 28),
        d(2026, 5, 9),
        d(2026, 9, 20),
        d(2026, 10, 10),
    ]
}

fn deadline(calendar: &HolidayCalendar, start: NaiveDate, n: u32) -> Deadline {
    calendar.add_working_days(start, n).unwrap()
}

/// Day-by-day reference implementation, to check the week-skipping one against.
fn reference_deadline(calendar: &HolidayCalendar, start: NaiveDate, n: u32) -> Deadline {
    let mut current = start;
    let mut found = 0;
    let mut guessed = false;
    while found < n {
        current = current.succ_opt().unwrap();
        let day = calendar.is_working_day(current);
        guessed |= day.guessed;
        if day.working {
            found += 1;
        }
    }
    Deadline { date: current, guessed }
}

fn reference_count(calendar: &HolidayCalendar, from: NaiveDate, to: NaiveDate) -> WorkingDayCount {
    let mut count = WorkingDayCount { days: 0, guessed: false };
    for day in from.iter_days().skip(1).take_while(|&day| day <= to) {
        let working = calendar.is_working_day(day);
        count.guessed |= working.guessed;
        count.days += u32::from(working.working);
    }
    count
}

/// Bundled data plus a lone covered year 2030 (copied from 2026's shape), to exercise gaps between covered years.
fn calendar_with_gap() -> HolidayCalendar {
    let mut calendar = bundled();
    let extra = HolidayCalendar::from_json(
        r#"{"source": "test", "years": {"2030": {
            "holidays": [{"name_zh": "测试", "name_en": "Test", "dates": ["2030-01-01", "2030-06-03"]}],
            "workdays": ["2030-06-08"]}}}"#,
    )
    .unwrap();
    calendar.merge(extra);
    calendar
}

fn json_with_2025(holidays: &str, workdays: &str) -> String {
    format!(r#"{{"source": "t", "years": {{"2025": {{"holidays": {holidays}, "workdays": {workdays}}}}}}}"#)
}

const ONE_HOLIDAY: &str = r#"[{"name_zh": "元旦", "name_en": "New Year's Day", "dates": ["2025-01-01"]}]"#;

#[test]
fn bundled_covers_2025_and_2026_and_cites_the_notices() {
    let calendar = bundled();
    assert_eq!(calendar.covered_years().collect::<Vec<_>>(), vec![2025, 2026]);
    assert!(calendar.source().contains("国办发明电〔2024〕12号"));
    assert!(calendar.source().contains("国办发明电〔2025〕7号"));
    assert!(!calendar.covers_year(2024));
    assert!(!calendar.covers_year(2027));
}

#[test]
fn bundled_matches_the_notices_day_by_day() {
    let calendar = bundled();
    let mut off: BTreeMap<NaiveDate, &str> = BTreeMap::new();
    for (name, first, last) in expected_periods() {
        for day in span(first, last) {
            assert!(off.insert(day, name).is_none());
        }
    }
    let adjusted: BTreeSet<NaiveDate> = expected_adjusted_workdays().into_iter().collect();
    assert_eq!(off.len(), 28 + 33);
    for day in span(d(2025, 1, 1), d(2026, 12, 31)) {
        let info = calendar.day_kind(day);
        assert!(info.covered, "{day}");
        let expected_working = if let Some(name) = off.get(&day) {
            assert!(matches!(&info.kind, DayKind::Holiday { name_zh, .. } if name_zh == name), "{day}: {info:?}");
            false
        } else if adjusted.contains(&day) {
            assert_eq!(info.kind, DayKind::AdjustedWorkday, "{day}");
            true
        } else if is_monday_to_friday(day) {
            assert_eq!(info.kind, DayKind::Workday, "{day}");
            true
        } else {
            assert_eq!(info.kind, DayKind::Weekend, "{day}");
            false
        };
        assert_eq!(calendar.is_working_day(day), WorkingDay { working: expected_working, guessed: false }, "{day}");
    }
}

#[test]
fn every_adjusted_workday_is_a_working_weekend_day() {
    let calendar = bundled();
    let mut listed = Vec::new();
    for year in [2025, 2026] {
        for &day in calendar.year(year).unwrap().workdays() {
            assert!(!is_monday_to_friday(day), "{day}");
            assert_eq!(calendar.is_working_day(day), WorkingDay { working: true, guessed: false });
            assert_eq!(calendar.day_kind(day).kind, DayKind::AdjustedWorkday);
            listed.push(day);
        }
    }
    assert_eq!(listed, expected_adjusted_workdays());
}

#[test]
fn every_holiday_is_a_day_off() {
    let calendar = bundled();
    let mut count = 0;
    for year in [2025, 2026] {
        for holiday in calendar.year(year).unwrap().holidays() {
            for &day in &holiday.dates {
                assert_eq!(calendar.is_working_day(day), WorkingDay { working: false, guessed: false });
                assert!(!calendar.day_kind(day).kind.is_working());
                count += 1;
            }
        }
    }
    assert_eq!(count, 61);
}

#[test]
fn working_days_per_year_match_chinesecalendar() {
    // Totals computed independently with the Python package chinesecalendar 1.11.0.
    let calendar = bundled();
    for (year, total) in [(2025, 248), (2026, 248)] {
        let count = calendar.working_days_between(d(year - 1, 12, 31), d(year, 12, 31));
        assert_eq!(count, WorkingDayCount { days: total, guessed: false }, "{year}");
    }
}

#[test]
fn deadlines_across_spring_festival_2025() {
    let calendar = bundled();
    // Fri 01-24 received; Sun 01-26 (调休) is day 1, Mon 01-27 day 2, holiday 01-28..02-04, Wed 02-05 day 3.
    assert_eq!(deadline(&calendar, d(2025, 1, 24), 1), Deadline { date: d(2025, 1, 26), guessed: false });
    assert_eq!(deadline(&calendar, d(2025, 1, 24), 3), Deadline { date: d(2025, 2, 5), guessed: false });
    // ... 02-06 day 4, 02-07 day 5, Sat 02-08 (调休) day 6, Mon 02-10 day 7.
    assert_eq!(deadline(&calendar, d(2025, 1, 24), 7), Deadline { date: d(2025, 2, 10), guessed: false });
    // Received during the holiday: Wed 02-05 is day 1, Fri 02-07 day 3, Sat 02-08 (调休) day 4, Wed 02-12 day 7.
    assert_eq!(deadline(&calendar, d(2025, 1, 29), 3), Deadline { date: d(2025, 2, 7), guessed: false });
    assert_eq!(deadline(&calendar, d(2025, 1, 29), 7), Deadline { date: d(2025, 2, 12), guessed: false });
}

#[test]
fn deadlines_across_spring_festival_2026() {
    let calendar = bundled();
    // Fri 02-13 received; Sat 02-14 (调休) day 1, holiday 02-15..02-23, Tue 02-24 day 2, Wed 02-25 day 3.
    assert_eq!(deadline(&calendar, d(2026, 2, 13), 3), Deadline { date: d(2026, 2, 25), guessed: false });
    // ... Thu 02-26 day 4, Fri 02-27 day 5, Sat 02-28 (调休) day 6, Mon 03-02 day 7.
    assert_eq!(deadline(&calendar, d(2026, 2, 13), 7), Deadline { date: d(2026, 3, 2), guessed: false });
    assert_eq!(deadline(&calendar, d(2026, 2, 12), 3), Deadline { date: d(2026, 2, 24), guessed: false });
}

#[test]
fn deadlines_across_national_day_2025() {
    let calendar = bundled();
    // Fri 09-26 received; Sun 09-28 (调休) day 1, Mon 09-29 day 2, Tue 09-30 day 3.
    assert_eq!(deadline(&calendar, d(2025, 9, 26), 3), Deadline { date: d(2025, 9, 30), guessed: false });
    // Tue 09-30 received; holiday 10-01..10-08; Thu 10-09, Fri 10-10, Sat 10-11 (调休).
    assert_eq!(deadline(&calendar, d(2025, 9, 30), 3), Deadline { date: d(2025, 10, 11), guessed: false });
    assert_eq!(deadline(&calendar, d(2025, 9, 30), 7), Deadline { date: d(2025, 10, 16), guessed: false });
    assert_eq!(deadline(&calendar, d(2025, 10, 3), 1), Deadline { date: d(2025, 10, 9), guessed: false });
}

#[test]
fn deadlines_across_mid_autumn_and_national_day_2026() {
    let calendar = bundled();
    // Fri 09-18 received; Sun 09-20 (调休) day 1, Mon 09-21 day 2, Tue 09-22 day 3.
    assert_eq!(deadline(&calendar, d(2026, 9, 18), 3), Deadline { date: d(2026, 9, 22), guessed: false });
    // Thu 09-24 received; 中秋节 09-25..09-27; Mon 09-28, Tue 09-29, Wed 09-30; 国庆节 10-01..10-07;
    // Thu 10-08, Fri 10-09, Sat 10-10 (调休), Mon 10-12.
    assert_eq!(deadline(&calendar, d(2026, 9, 24), 3), Deadline { date: d(2026, 9, 30), guessed: false });
    assert_eq!(deadline(&calendar, d(2026, 9, 24), 7), Deadline { date: d(2026, 10, 12), guessed: false });
    assert_eq!(deadline(&calendar, d(2026, 9, 30), 3), Deadline { date: d(2026, 10, 10), guessed: false });
}

#[test]
fn deadlines_across_2025_to_2026() {
    let calendar = bundled();
    // Wed 2025-12-31 received; 元旦 2026-01-01..03; Sun 01-04 (调休) day 1, Mon 01-05, Tue 01-06.
    assert_eq!(deadline(&calendar, d(2025, 12, 31), 3), Deadline { date: d(2026, 1, 6), guessed: false });
    assert_eq!(deadline(&calendar, d(2025, 12, 29), 3), Deadline { date: d(2026, 1, 4), guessed: false });
    assert_eq!(deadline(&calendar, d(2025, 12, 31), 7), Deadline { date: d(2026, 1, 12), guessed: false });
}

#[test]
fn deadlines_into_uncovered_2027_are_guessed() {
    let calendar = bundled();
    // Thu 2026-12-31 received; 2027 is not covered: Fri 2027-01-01 counts as a working day by the fallback.
    assert_eq!(deadline(&calendar, d(2026, 12, 31), 3), Deadline { date: d(2027, 1, 5), guessed: true });
    assert_eq!(deadline(&calendar, d(2026, 12, 30), 1), Deadline { date: d(2026, 12, 31), guessed: false });
    // Mon 12-28 received, 3 days: Tue, Wed, Thu 12-31; 2027 is never consulted.
    assert_eq!(deadline(&calendar, d(2026, 12, 28), 3), Deadline { date: d(2026, 12, 31), guessed: false });
    assert_eq!(deadline(&calendar, d(2026, 12, 28), 4), Deadline { date: d(2027, 1, 1), guessed: true });
    assert_eq!(
        calendar.working_days_between(d(2026, 12, 28), d(2027, 1, 5)),
        WorkingDayCount { days: 6, guessed: true }
    );
}

#[test]
fn uncovered_2024_is_guessed_but_the_day_of_receipt_is_not_consulted() {
    let calendar = bundled();
    assert_eq!(deadline(&calendar, d(2024, 12, 30), 1), Deadline { date: d(2024, 12, 31), guessed: true });
    assert_eq!(deadline(&calendar, d(2024, 12, 31), 1), Deadline { date: d(2025, 1, 2), guessed: false });
    assert_eq!(calendar.is_working_day(d(2024, 2, 12)), WorkingDay { working: true, guessed: true });
    assert_eq!(calendar.day_kind(d(2027, 1, 2)), DayInfo { kind: DayKind::Weekend, covered: false });
    assert_eq!(calendar.day_kind(d(2027, 1, 1)), DayInfo { kind: DayKind::Workday, covered: false });
}

#[test]
fn zero_working_days_is_the_same_day() {
    let calendar = bundled();
    for start in [d(2025, 1, 28), d(2027, 6, 1)] {
        assert_eq!(deadline(&calendar, start, 0), Deadline { date: start, guessed: false });
    }
}

#[test]
fn working_days_between_examples() {
    let calendar = bundled();
    let count = |from, to| calendar.working_days_between(from, to);
    assert_eq!(count(d(2025, 1, 24), d(2025, 2, 5)), WorkingDayCount { days: 3, guessed: false });
    assert_eq!(count(d(2025, 1, 24), d(2025, 1, 24)), WorkingDayCount { days: 0, guessed: false });
    assert_eq!(count(d(2025, 2, 5), d(2025, 1, 24)), WorkingDayCount { days: 0, guessed: false });
    // Only holidays in the range.
    assert_eq!(count(d(2025, 1, 27), d(2025, 2, 4)), WorkingDayCount { days: 0, guessed: false });
    assert_eq!(count(d(2024, 12, 1), d(2024, 12, 31)), WorkingDayCount { days: 22, guessed: true });
}

#[test]
fn extreme_dates_do_not_panic() {
    let calendar = bundled();
    assert_eq!(calendar.add_working_days(NaiveDate::MAX, 1), None);
    assert_eq!(calendar.add_working_days(d(2025, 1, 1), u32::MAX), None);
    let far = calendar.add_working_days(d(2025, 1, 1), 50_000_000).unwrap();
    assert!(far.guessed);
    assert_eq!(calendar.working_days_between(d(2025, 1, 1), far.date).days, 50_000_000);
    let all = calendar.working_days_between(NaiveDate::MIN, NaiveDate::MAX);
    assert!(all.guessed && all.days > 0);
}

#[test]
fn merge_replaces_years_wholesale_and_keeps_the_others() {
    let mut calendar = bundled();
    let update = HolidayCalendar::from_json(
        r#"{"source": "国务院办公厅关于2027年部分节假日安排的通知", "years": {
            "2026": {"holidays": [{"name_zh": "元旦", "name_en": "New Year's Day", "dates": ["2026-01-01"]}],
                     "workdays": []},
            "2027": {"holidays": [{"name_zh": "元旦", "name_en": "New Year's Day",
                                   "dates": ["2027-01-01", "2027-01-02", "2027-01-03"]}],
                     "workdays": []}}}"#,
    )
    .unwrap();
    let report = calendar.merge(update);
    assert_eq!(report, MergeReport { added: vec![2027], replaced: vec![2026], unchanged: vec![] });
    assert_eq!(calendar.covered_years().collect::<Vec<_>>(), vec![2025, 2026, 2027]);
    // 2026 was replaced wholesale: the old Spring Festival and its adjusted working days are gone.
    assert_eq!(calendar.day_kind(d(2026, 2, 16)).kind, DayKind::Workday);
    assert_eq!(calendar.day_kind(d(2026, 2, 14)).kind, DayKind::Weekend);
    // 2025 is untouched.
    assert_eq!(calendar.year(2025), bundled().year(2025));
    assert_eq!(deadline(&calendar, d(2026, 12, 31), 1), Deadline { date: d(2027, 1, 4), guessed: false });
    assert!(calendar.source().contains("2027"));
    assert!(calendar.source().contains("国办发明电〔2024〕12号"));

    let again = calendar.clone();
    let report = calendar.merge(again);
    assert!(!report.changed());
    assert_eq!(report.unchanged, vec![2025, 2026, 2027]);
}

#[test]
fn serde_round_trip_keeps_the_calendar() {
    let calendar = bundled();
    let json = serde_json::to_string(&calendar).unwrap();
    assert_eq!(HolidayCalendar::from_json(&json).unwrap(), calendar);
    let via_serde: HolidayCalendar = serde_json::from_str(&json).unwrap();
    assert_eq!(via_serde, calendar);
}

#[test]
fn serde_deserialize_also_validates() {
    let json = json_with_2025(ONE_HOLIDAY, r#"["2025-01-01"]"#);
    let error = serde_json::from_str::<HolidayCalendar>(&json).unwrap_err().to_string();
    assert!(error.contains("years.2025.workdays[0]"), "{error}");
}

#[test]
fn rejects_a_date_that_is_both_holiday_and_workday() {
    let holidays = r#"[{"name_zh": "春节", "name_en": "Spring Festival", "dates": ["2025-01-28", "2025-02-01"]}]"#;
    let error = HolidayCalendar::from_json(&json_with_2025(holidays, r#"["2025-02-01"]"#)).unwrap_err();
    assert!(matches!(
        &error,
        CalendarError::HolidayAndWorkday { date, holiday_field, workday_field }
            if *date == d(2025, 2, 1)
                && holiday_field == "years.2025.holidays[0].dates[1]"
                && workday_field == "years.2025.workdays[0]"
    ));
    assert!(error.to_string().contains("2025-02-01"));
}

#[test]
fn rejects_dates_outside_their_year() {
    let holidays = r#"[{"name_zh": "元旦", "name_en": "New Year's Day", "dates": ["2024-12-31"]}]"#;
    let error = HolidayCalendar::from_json(&json_with_2025(holidays, "[]")).unwrap_err();
    assert!(matches!(
        &error,
        CalendarError::DateOutsideYear { field, year: 2025, .. } if field == "years.2025.holidays[0].dates[0]"
    ));
    let error = HolidayCalendar::from_json(&json_with_2025(ONE_HOLIDAY, r#"["2026-01-04"]"#)).unwrap_err();
    assert!(matches!(&error, CalendarError::DateOutsideYear { field, .. } if field == "years.2025.workdays[0]"));
}

#[test]
fn rejects_workdays_on_monday_to_friday() {
    let error = HolidayCalendar::from_json(&json_with_2025(ONE_HOLIDAY, r#"["2025-01-27"]"#)).unwrap_err();
    assert!(matches!(
        &error,
        CalendarError::WorkdayNotWeekend { field, weekday: Weekday::Mon, .. } if field == "years.2025.workdays[0]"
    ));
}

#[test]
fn rejects_malformed_dates() {
    for bad in ["2025-1-26", "2025-02-30", "26/01/2025", "2025-01-26T00:00:00", ""] {
        let error = HolidayCalendar::from_json(&json_with_2025(ONE_HOLIDAY, &format!(r#"["{bad}"]"#))).unwrap_err();
        assert!(
            matches!(&error, CalendarError::InvalidDate { field, value }
                if field == "years.2025.workdays[0]" && value == bad),
            "{bad}: {error}"
        );
    }
}

#[test]
fn rejects_duplicates() {
    let holidays = r#"[{"name_zh": "a", "name_en": "a", "dates": ["2025-01-01"]},
                       {"name_zh": "b", "name_en": "b", "dates": ["2025-01-01"]}]"#;
    let error = HolidayCalendar::from_json(&json_with_2025(holidays, "[]")).unwrap_err();
    assert!(matches!(
        &error,
        CalendarError::DuplicateDate { field, first_field, .. }
            if field == "years.2025.holidays[1].dates[0]" && first_field == "years.2025.holidays[0].dates[0]"
    ));
    let error =
        HolidayCalendar::from_json(&json_with_2025(ONE_HOLIDAY, r#"["2025-01-26", "2025-01-26"]"#)).unwrap_err();
    assert!(matches!(&error, CalendarError::DuplicateDate { field, .. } if field == "years.2025.workdays[1]"));
}

#[test]
fn rejects_bad_year_keys_empty_years_and_empty_holidays() {
    for key in ["25", "+2025", "02025", "year2025", "10000", "1899"] {
        let json = format!(r#"{{"source": "t", "years": {{"{key}": {{"holidays": [], "workdays": []}}}}}}"#);
        let error = HolidayCalendar::from_json(&json).unwrap_err();
        assert!(matches!(&error, CalendarError::InvalidYear { key: k } if k == key), "{key}: {error}");
    }
    let error = HolidayCalendar::from_json(&json_with_2025("[]", "[]")).unwrap_err();
    assert!(matches!(error, CalendarError::EmptyYear { year: 2025 }));
    let holidays = r#"[{"name_zh": " ", "name_en": "x", "dates": ["2025-01-01"]}]"#;
    let error = HolidayCalendar::from_json(&json_with_2025(holidays, "[]")).unwrap_err();
    assert!(matches!(&error, CalendarError::EmptyName { field } if field == "years.2025.holidays[0].name_zh"));
    let holidays = r#"[{"name_zh": "x", "name_en": "x", "dates": []}]"#;
    let error = HolidayCalendar::from_json(&json_with_2025(holidays, "[]")).unwrap_err();
    assert!(matches!(&error, CalendarError::NoDates { field } if field == "years.2025.holidays[0].dates"));
}

#[test]
fn rejects_unknown_and_missing_fields() {
    let misspelt = r#"{"source": "t", "years": {"2025": {"holidays": [], "workday": []}}}"#;
    let error = HolidayCalendar::from_json(misspelt).unwrap_err();
    assert!(matches!(&error, CalendarError::Json(_)));
    assert!(error.to_string().contains("workday"), "{error}");
    let missing = r#"{"years": {}}"#;
    assert!(matches!(HolidayCalendar::from_json(missing), Err(CalendarError::Json(_))));
}

/// Start dates from 2023 to 2028: uncovered years on both sides of the bundled data.
fn near_start() -> impl Strategy<Value = NaiveDate> {
    (0u64..6 * 366).prop_map(|offset| d(2023, 1, 1).checked_add_days(Days::new(offset)).unwrap())
}

/// Start dates far around the covered years, for long deadlines through gaps between covered years.
fn far_start() -> impl Strategy<Value = NaiveDate> {
    (0u64..80 * 366).prop_map(|offset| d(1990, 1, 1).checked_add_days(Days::new(offset)).unwrap())
}

proptest! {
    #[test]
    fn deadline_is_a_working_day_strictly_after_start(start in near_start(), n in 1u32..400) {
        let calendar = bundled();
        let found = deadline(&calendar, start, n);
        prop_assert!(found.date > start);
        prop_assert!(calendar.is_working_day(found.date).working);
    }

    #[test]
    fn deadline_is_monotone_in_n(start in near_start(), n in 0u32..400) {
        let calendar = bundled();
        let shorter = deadline(&calendar, start, n);
        let longer = deadline(&calendar, start, n + 1);
        prop_assert!(shorter.date < longer.date);
        prop_assert!(!shorter.guessed || longer.guessed);
    }

    #[test]
    fn counting_back_gives_n(start in near_start(), n in 0u32..400) {
        let calendar = bundled();
        let found = deadline(&calendar, start, n);
        let count = calendar.working_days_between(start, found.date);
        prop_assert_eq!(count, WorkingDayCount { days: n, guessed: found.guessed });
    }

    #[test]
    fn fast_paths_match_day_by_day_reference(start in far_start(), n in 0u32..6000) {
        let calendar = calendar_with_gap();
        let found = deadline(&calendar, start, n);
        prop_assert_eq!(found, reference_deadline(&calendar, start, n));
        prop_assert_eq!(
            calendar.working_days_between(start, found.date),
            reference_count(&calendar, start, found.date)
        );
    }

    #[test]
    fn counts_add_up(a in far_start(), b in far_start(), c in far_start()) {
        let calendar = calendar_with_gap();
        let mut dates = [a, b, c];
        dates.sort();
        let [a, b, c] = dates;
        let first = calendar.working_days_between(a, b);
        let second = calendar.working_days_between(b, c);
        let whole = calendar.working_days_between(a, c);
        prop_assert_eq!(first.days + second.days, whole.days);
        prop_assert_eq!(first.guessed || second.guessed, whole.guessed);
        prop_assert_eq!(whole, reference_count(&calendar, a, c));
    }
}
