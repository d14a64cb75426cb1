//! Working-day calendar for mainland China: official public holidays, adjusted working days (调休上班) and
//! "within n working days" deadlines.
//!
//! Complaint rules (seed 003) give handling deadlines in *working days*: a general complaint within 3 working days,
//! disputes, incidents and multi-department cases within 7. Working days follow the official arrangement that the
//! General Office of the State Council (国务院办公厅) publishes each year, usually in November for the next year.
//!
//! # Which days are working days
//!
//! For a date in a **covered** year (a year present in the calendar data), in this order:
//!
//! 1. a date listed in the year's `workdays` (an adjusted working day, 调休上班; always a Saturday or Sunday) is a
//!    working day;
//! 2. a date listed in one of the year's `holidays` (every day off of a festival period, including the weekend days
//!    inside the period) is not a working day;
//! 3. any other date is a working day from Monday to Friday and not a working day on Saturday and Sunday.
//!
//! For a date in an **uncovered** year the arrangement is not known. The calendar then falls back to rule 3 alone
//! (Monday–Friday) and always says so: [`WorkingDay::guessed`], [`Deadline::guessed`],
//! [`WorkingDayCount::guessed`] are `true` and [`DayInfo::covered`] is `false`. It never guesses silently; callers
//! should show such a deadline as provisional until HQ sends the year's data.
//!
//! # Deadlines
//!
//! [`HolidayCalendar::add_working_days`] answers "a case received on `start` must be handled within `n` working
//! days":
//!
//! * the day of receipt never counts, whatever kind of day it is and whatever the time of receipt;
//! * the deadline is the `n`-th working day strictly after `start`; the case is on time if it is closed on or before
//!   that date (until the end of that day);
//! * `n = 0` means "the same day": the deadline is `start` itself and nothing is guessed;
//! * [`Deadline::guessed`] is `true` exactly when one of the days consulted (`start + 1 ..= deadline`) lies in an
//!   uncovered year. The day of receipt is not consulted.
//!
//! Example: a complaint received on Friday 2025-01-24 with `n = 3`: Saturday 01-25 is a weekend day, Sunday 01-26
//! is an adjusted working day (day 1), Monday 01-27 is day 2, 01-28 to 02-04 is the Spring Festival holiday, so
//! Wednesday 2025-02-05 is day 3 and the deadline.
//!
//! [`HolidayCalendar::working_days_between`] is the inverse: it counts the working days `d` with `from < d <= to`,
//! so `working_days_between(start, add_working_days(start, n).date) == n`.
//!
//! Dates are calendar dates in China (Asia/Shanghai, UTC+8); convert a timestamp to its local date before asking.
//!
//! # Data
//!
//! The data is JSON (see `assets/calendar/cn-holidays.json`, bundled through [`HolidayCalendar::bundled`]):
//!
//! ```json
//! {"source": "国务院办公厅关于2025年部分节假日安排的通知 …",
//!  "years": {"2025": {"holidays": [{"name_zh": "元旦", "name_en": "New Year's Day", "dates": ["2025-01-01"]}],
//!                     "workdays": ["2025-01-26", "2025-02-08"]}}}
//! ```
//!
//! Loading validates it, and every error names the offending field (e.g. `years.2025.workdays[1]`):
//!
//! * unknown fields are rejected (a misspelt `workday` must not silently drop the adjusted working days);
//! * a year key is a plain four-digit year (1900–9999) and must list at least one holiday;
//! * dates are written `YYYY-MM-DD` and lie in the year of their key. A festival period that spans New Year (as
//!   元旦 2023 did, from 2022-12-31) is therefore split across two year keys, and when a notice for year Y changes
//!   days of year Y−1, HQ has to re-issue year Y−1 in full;
//! * an adjusted working day is a Saturday or a Sunday;
//! * no date is listed twice, and no date is both a holiday and a working day;
//! * holiday names are not empty and every holiday has at least one date.
//!
//! Deserializing a [`HolidayCalendar`] with serde runs the same validation.
//!
//! HQ sends newer data with the same format; [`HolidayCalendar::merge`] lets each year it contains replace that year
//! wholesale.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// The official arrangements shipped with the application.
const BUNDLED_JSON: &str = include_str!("../../assets/calendar/cn-holidays.json");

/// First year key accepted in the data.
const MIN_YEAR: i32 = 1900;
/// Last year key accepted in the data.
const MAX_YEAR: i32 = 9999;

/// Why holiday data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The text is not JSON of the expected shape (syntax error, missing or unknown field, wrong type).
    #[error("holiday calendar JSON is malformed: {0}")]
    Json(#[from] serde_json::Error),
    /// A key of `years` is not a plain year number in the supported range.
    #[error("years.{key:?}: not a year between {MIN_YEAR} and {MAX_YEAR} written as plain digits")]
    InvalidYear {
        /// The key as written.
        key: String,
    },
    /// A year lists no holiday at all, which no official arrangement does.
    #[error("years.{year}: lists no holidays; a year without data must be left out, not sent empty")]
    EmptyYear {
        /// The year key.
        year: i32,
    },
    /// A date is not a valid `YYYY-MM-DD` date.
    #[error("{field}: {value:?} is not a date written as YYYY-MM-DD")]
    InvalidDate {
        /// Path of the field, e.g. `years.2025.holidays[1].dates[0]`.
        field: String,
        /// The value as written.
        value: String,
    },
    /// A date is filed under another year's key.
    #[error("{field}: {date} is not in year {year}, the key it is listed under")]
    DateOutsideYear {
        /// Path of the field.
        field: String,
        /// The date.
        date: NaiveDate,
        /// The year key it was listed under.
        year: i32,
    },
    /// An adjusted working day falls on Monday–Friday, where it would change nothing.
    #[error("{field}: {date} is a {weekday}; an adjusted working day must be a Saturday or Sunday")]
    WorkdayNotWeekend {
        /// Path of the field.
        field: String,
        /// The date.
        date: NaiveDate,
        /// Its day of the week.
        weekday: Weekday,
    },
    /// A date is listed both as a day off and as an adjusted working day.
    #[error("{workday_field}: {date} is listed as a working day but also as a holiday at {holiday_field}")]
    HolidayAndWorkday {
        /// The date.
        date: NaiveDate,
        /// Path of the holiday entry.
        holiday_field: String,
        /// Path of the working-day entry.
        workday_field: String,
    },
    /// A date is listed twice (within one list or in two holidays).
    #[error("{field}: {date} is listed twice; first at {first_field}")]
    DuplicateDate {
        /// Path of the second listing.
        field: String,
        /// Path of the first listing.
        first_field: String,
        /// The date.
        date: NaiveDate,
    },
    /// A holiday has an empty name.
    #[error("{field}: a holiday name must not be empty")]
    EmptyName {
        /// Path of the field.
        field: String,
    },
    /// A holiday lists no dates.
    #[error("{field}: a holiday must list at least one date")]
    NoDates {
        /// Path of the field.
        field: String,
    },
}

/// One festival period: every day off it gives, including the weekend days inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holiday {
    /// Chinese name as in the notice, e.g. `春节`.
    pub name_zh: String,
    /// English name, e.g. `Spring Festival`.
    pub name_en: String,
    /// Every day off of the period, in the order listed.
    pub dates: Vec<NaiveDate>,
}

/// The validated arrangement of one year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearArrangement {
    holidays: Vec<Holiday>,
    workdays: Vec<NaiveDate>,
    /// Day off → index into `holidays`.
    days_off: BTreeMap<NaiveDate, usize>,
    adjusted: BTreeSet<NaiveDate>,
}

impl YearArrangement {
    /// The festival periods of the year, in the order listed.
    #[must_use]
    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    /// The adjusted working days (weekend days that become working days), in the order listed.
    #[must_use]
    pub fn workdays(&self) -> &[NaiveDate] {
        &self.workdays
    }

    fn is_working(&self, date: NaiveDate) -> bool {
        if self.adjusted.contains(&date) {
            true
        } else if self.days_off.contains_key(&date) {
            false
        } else {
            is_monday_to_friday(date)
        }
    }

    fn kind(&self, date: NaiveDate) -> DayKind {
        if self.adjusted.contains(&date) {
            return DayKind::AdjustedWorkday;
        }
        if let Some(holiday) = self.days_off.get(&date).and_then(|&index| self.holidays.get(index)) {
            return DayKind::Holiday { name_zh: holiday.name_zh.clone(), name_en: holiday.name_en.clone() };
        }
        plain_kind(date)
    }

    fn from_file(year: i32, file: YearFile) -> Result<Self, CalendarError> {
        if file.holidays.is_empty() {
            return Err(CalendarError::EmptyYear { year });
        }
        let mut holidays = Vec::with_capacity(file.holidays.len());
        let mut days_off = BTreeMap::new();
        // Where each date was first listed, for error messages.
        let mut listed_at: BTreeMap<NaiveDate, String> = BTreeMap::new();

        for (index, holiday) in file.holidays.into_iter().enumerate() {
            let holiday_field = format!("years.{year}.holidays[{index}]");
            for (name, field_name) in [(&holiday.name_zh, "name_zh"), (&holiday.name_en, "name_en")] {
                if name.trim().is_empty() {
                    return Err(CalendarError::EmptyName { field: format!("{holiday_field}.{field_name}") });
                }
            }
            if holiday.dates.is_empty() {
                return Err(CalendarError::NoDates { field: format!("{holiday_field}.dates") });
            }
            let mut dates = Vec::with_capacity(holiday.dates.len());
            for (date_index, text) in holiday.dates.iter().enumerate() {
                let field = format!("{holiday_field}.dates[{date_index}]");
                let date = parse_date_in_year(text, year, &field)?;
                record_first_listing(&mut listed_at, date, field)?;
                days_off.insert(date, index);
                dates.push(date);
            }
            holidays.push(Holiday { name_zh: holiday.name_zh, name_en: holiday.name_en, dates });
        }

        let mut workdays = Vec::with_capacity(file.workdays.len());
        let mut adjusted = BTreeSet::new();
        for (index, text) in file.workdays.iter().enumerate() {
            let field = format!("years.{year}.workdays[{index}]");
            let date = parse_date_in_year(text, year, &field)?;
            let weekday = date.weekday();
            if !matches!(weekday, Weekday::Sat | Weekday::Sun) {
                return Err(CalendarError::WorkdayNotWeekend { field, date, weekday });
            }
            if days_off.contains_key(&date) {
                let holiday_field = listed_at.get(&date).cloned().unwrap_or_default();
                return Err(CalendarError::HolidayAndWorkday { date, holiday_field, workday_field: field });
            }
            record_first_listing(&mut listed_at, date, field)?;
            adjusted.insert(date);
            workdays.push(date);
        }

        Ok(Self { holidays, workdays, days_off, adjusted })
    }

    fn to_file(&self) -> YearFile {
        YearFile {
            holidays: self
                .holidays
                .iter()
                .map(|holiday| HolidayFile {
                    name_zh: holiday.name_zh.clone(),
                    name_en: holiday.name_en.clone(),
                    dates: holiday.dates.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            workdays: self.workdays.iter().map(ToString::to_string).collect(),
        }
    }
}

/// What kind of day a date is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DayKind {
    /// Monday–Friday, not a holiday.
    Workday,
    /// Saturday or Sunday, not an adjusted working day and not listed as a holiday.
    Weekend,
    /// A day off of an official festival period (may be a weekend day inside the period).
    Holiday {
        /// Chinese name, e.g. `春节`.
        name_zh: String,
        /// English name, e.g. `Spring Festival`.
        name_en: String,
    },
    /// A Saturday or Sunday that is a working day by the official arrangement (调休上班).
    AdjustedWorkday,
}

impl DayKind {
    /// Whether this kind of day is a working day.
    #[must_use]
    pub fn is_working(&self) -> bool {
        matches!(self, Self::Workday | Self::AdjustedWorkday)
    }
}

/// A date's [`DayKind`] and whether it comes from official data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayInfo {
    /// The kind of day. For an uncovered year only [`DayKind::Workday`] or [`DayKind::Weekend`].
    pub kind: DayKind,
    /// `true` if the date's year is in the calendar data; `false` if `kind` is a Monday–Friday guess.
    pub covered: bool,
}

/// Whether a date is a working day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingDay {
    /// `true` for a working day.
    pub working: bool,
    /// `true` if the year is not covered and `working` is the Monday–Friday fallback.
    pub guessed: bool,
}

/// The last day to handle something within a number of working days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// The deadline: handling is on time until the end of this day.
    pub date: NaiveDate,
    /// `true` if any day consulted to find it lies in an uncovered year.
    pub guessed: bool,
}

/// A number of working days in a range of dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingDayCount {
    /// The number of working days.
    pub days: u32,
    /// `true` if any day of the range lies in an uncovered year.
    pub guessed: bool,
}

/// What [`HolidayCalendar::merge`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Years that were not covered before.
    pub added: Vec<i32>,
    /// Years whose data was replaced by different data.
    pub replaced: Vec<i32>,
    /// Years received with data identical to what was there.
    pub unchanged: Vec<i32>,
}

impl MergeReport {
    /// Whether the merge changed the calendar.
    #[must_use]
    pub fn changed(&self) -> bool {
        !self.added.is_empty() || !self.replaced.is_empty()
    }
}

/// Official holiday arrangements by year, validated. See the [module documentation](self) for the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CalendarFile", into = "CalendarFile")]
pub struct HolidayCalendar {
    source: String,
    years: BTreeMap<i32, YearArrangement>,
}

impl HolidayCalendar {
    /// Parses and validates calendar data in the JSON format described in the module documentation.
    ///
    /// # Errors
    ///
    /// [`CalendarError::Json`] if the text does not have the expected shape, otherwise the validation error of the
    /// first offending field.
    pub fn from_json(json: &str) -> Result<Self, CalendarError> {
        let file: CalendarFile = serde_json::from_str(json)?;
        Self::try_from(file)
    }

    /// The official arrangements shipped with the application (`assets/calendar/cn-holidays.json`).
    ///
    /// # Errors
    ///
    /// Only if the bundled file is invalid, which the module's tests rule out.
    pub fn bundled() -> Result<Self, CalendarError> {
        Self::from_json(BUNDLED_JSON)
    }

    /// A calendar that covers no year: every answer is the flagged Monday–Friday fallback.
    #[must_use]
    pub fn empty() -> Self {
        Self { source: String::new(), years: BTreeMap::new() }
    }

    /// Where the data comes from (the titles of the State Council notices).
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The covered years, ascending.
    pub fn covered_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// Whether `year` is covered by official data.
    #[must_use]
    pub fn covers_year(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The arrangement of `year`, if covered.
    #[must_use]
    pub fn year(&self, year: i32) -> Option<&YearArrangement> {
        self.years.get(&year)
    }

    /// Merges newer data received from HQ: every year in `other` replaces that year here wholesale (its holidays
    /// and its adjusted working days); years not in `other` are kept. The caller decides that `other` is the newer
    /// data. If anything changed and `other`'s source is not already mentioned, it is appended to [`Self::source`].
    pub fn merge(&mut self, other: Self) -> MergeReport {
        let mut report = MergeReport::default();
        for (year, arrangement) in other.years {
            match self.years.entry(year) {
                Entry::Vacant(entry) => {
                    entry.insert(arrangement);
                    report.added.push(year);
                }
                Entry::Occupied(mut entry) => {
                    if *entry.get() == arrangement {
                        report.unchanged.push(year);
                    } else {
                        entry.insert(arrangement);
                        report.replaced.push(year);
                    }
                }
            }
        }
        if report.changed() && !other.source.is_empty() && !self.source.contains(other.source.as_str()) {
            if !self.source.is_empty() {
                self.source.push('；');
            }
            self.source.push_str(&other.source);
        }
        report
    }

    /// The kind of day `date` is, and whether that comes from official data.
    #[must_use]
    pub fn day_kind(&self, date: NaiveDate) -> DayInfo {
        match self.years.get(&date.year()) {
            Some(arrangement) => DayInfo { kind: arrangement.kind(date), covered: true },
            None => DayInfo { kind: plain_kind(date), covered: false },
        }
    }

    /// Whether `date` is a working day; for an uncovered year the Monday–Friday fallback with `guessed = true`.
    #[must_use]
    pub fn is_working_day(&self, date: NaiveDate) -> WorkingDay {
        match self.years.get(&date.year()) {
            Some(arrangement) => WorkingDay { working: arrangement.is_working(date), guessed: false },
            None => WorkingDay { working: is_monday_to_friday(date), guessed: true },
        }
    }

    /// The deadline for handling within `n` working days something received on `start`: the `n`-th working day
    /// strictly after `start` (`start` itself when `n` is 0). See the module documentation for the exact rules.
    ///
    /// Returns `None` only if the deadline would lie after [`NaiveDate::MAX`].
    #[must_use]
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Option<Deadline> {
        let mut current = start;
        let mut remaining = n;
        let mut guessed = false;
        while remaining > 0 {
            let next = current.succ_opt()?;
            if let Some(arrangement) = self.years.get(&next.year()) {
                current = next;
                if arrangement.is_working(current) {
                    remaining -= 1;
                }
                continue;
            }
            guessed = true;
            // `next` is in an uncovered year. Skip whole weeks (5 working days each under the Monday–Friday rule)
            // while they stay before the next covered year, and keep at least one working day to find by stepping
            // so that the deadline itself is always a working day.
            let weeks = self.skippable_weeks(current, remaining);
            let skipped = u32::try_from(weeks * 5).ok().filter(|&days| days < remaining);
            match skipped {
                Some(days) if days > 0 => {
                    current = current.checked_add_days(Days::new(weeks * 7))?;
                    remaining -= days;
                }
                _ => {
                    current = next;
                    if is_monday_to_friday(current) {
                        remaining -= 1;
                    }
                }
            }
        }
        Some(Deadline { date: current, guessed })
    }

    /// The number of working days `d` with `from < d <= to` (0 when `to <= from`); `guessed` is `true` if any of
    /// those days lies in an uncovered year.
    #[must_use]
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> WorkingDayCount {
        let mut days: u64 = 0;
        let mut guessed = false;
        let mut current = from;
        while current < to {
            let Some(next) = current.succ_opt() else { break };
            let year = next.year();
            if let Some(arrangement) = self.years.get(&year) {
                let segment_end = NaiveDate::from_ymd_opt(year, 12, 31).map_or(to, |end| end.min(to));
                days += next
                    .iter_days()
                    .take_while(|&day| day <= segment_end)
                    .map(|day| u64::from(arrangement.is_working(day)))
                    .sum::<u64>();
                current = segment_end;
            } else {
                guessed = true;
                let segment_end =
                    self.next_covered_year_start(year).and_then(|start| start.pred_opt()).map_or(to, |end| end.min(to));
                days += monday_to_friday_after(current, segment_end);
                current = segment_end;
            }
        }
        WorkingDayCount { days: u32::try_from(days).unwrap_or(u32::MAX), guessed }
    }

    /// January 1st of the first covered year after `year`.
    fn next_covered_year_start(&self, year: i32) -> Option<NaiveDate> {
        let (&next_year, _) = self.years.range(year.checked_add(1)?..).next()?;
        NaiveDate::from_ymd_opt(next_year, 1, 1)
    }

    /// How many whole weeks after `current` lie entirely before the next covered year and leave at least one of
    /// `remaining` working days to find. `current + 1` must be in an uncovered year and `remaining` positive.
    fn skippable_weeks(&self, current: NaiveDate, remaining: u32) -> u64 {
        let wanted = u64::from(remaining.saturating_sub(1) / 5);
        match current.succ_opt().and_then(|next| self.next_covered_year_start(next.year())) {
            Some(covered_start) => {
                let days_before = covered_start.signed_duration_since(current).num_days() - 1;
                wanted.min(u64::try_from(days_before).unwrap_or(0) / 7)
            }
            None => wanted,
        }
    }
}

impl TryFrom<CalendarFile> for HolidayCalendar {
    type Error = CalendarError;

    fn try_from(file: CalendarFile) -> Result<Self, Self::Error> {
        let mut years = BTreeMap::new();
        for (key, year_file) in file.years {
            let year = parse_year_key(&key)?;
            years.insert(year, YearArrangement::from_file(year, year_file)?);
        }
        Ok(Self { source: file.source, years })
    }
}

impl From<HolidayCalendar> for CalendarFile {
    fn from(calendar: HolidayCalendar) -> Self {
        Self {
            source: calendar.source,
            years: calendar.years.iter().map(|(year, arrangement)| (year.to_string(), arrangement.to_file())).collect(),
        }
    }
}

/// The JSON file as written, before validation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    source: String,
    years: BTreeMap<String, YearFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    holidays: Vec<HolidayFile>,
    workdays: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayFile {
    name_zh: String,
    name_en: String,
    dates: Vec<String>,
}

fn parse_year_key(key: &str) -> Result<i32, CalendarError> {
    key.parse::<i32>()
        .ok()
        .filter(|year| (MIN_YEAR..=MAX_YEAR).contains(year) && year.to_string() == key)
        .ok_or_else(|| CalendarError::InvalidYear { key: key.to_owned() })
}

fn parse_date_in_year(text: &str, year: i32, field: &str) -> Result<NaiveDate, CalendarError> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|date| date.to_string() == text)
        .ok_or_else(|| CalendarError::InvalidDate { field: field.to_owned(), value: text.to_owned() })?;
    if date.year() == year {
        Ok(date)
    } else {
        Err(CalendarError::DateOutsideYear { field: field.to_owned(), date, year })
    }
}

fn record_first_listing(
    listed_at: &mut BTreeMap<NaiveDate, String>,
    date: NaiveDate,
    field: String,
) -> Result<(), CalendarError> {
    match listed_at.entry(date) {
        Entry::Vacant(entry) => {
            entry.insert(field);
            Ok(())
        }
        Entry::Occupied(entry) => Err(CalendarError::DuplicateDate { field, first_field: entry.get().clone(), date }),
    }
}

fn is_monday_to_friday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn plain_kind(date: NaiveDate) -> DayKind {
    if is_monday_to_friday(date) { DayKind::Workday } else { DayKind::Weekend }
}

/// The number of Monday–Friday dates `d` with `after < d <= until`.
fn monday_to_friday_after(after: NaiveDate, until: NaiveDate) -> u64 {
    let length = u64::try_from(until.signed_duration_since(after).num_days()).unwrap_or(0);
    let mut count = length / 7 * 5;
    let mut weekday = after.weekday();
    for _ in 0..length % 7 {
        weekday = weekday.succ();
        if !matches!(weekday, Weekday::Sat | Weekday::Sun) {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
}
