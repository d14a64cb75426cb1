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
mod tests;
