//! Reports: the hospital's own KPIs over the records, and the documents built from them.
//!
//! Everything here except [`source`] and [`cli`] is pure — records in, figures and text out, no I/O and no GUI — so
//! the same code serves the kiosk, the dashboard and headquarters across sites.
//!
//! - [`agg`]: an incremental [`Aggregator`]. Records are folded in one at a time ([`Aggregator::add`]) and partial
//!   aggregators merge ([`Aggregator::merge`]), so a year of data is aggregated in one streaming pass, in parallel
//!   pieces, or per site and then combined. Memory does not grow with the number of records (waiting times are
//!   kept as per-minute histograms; the comment and case lists of the weekly sheet are capped).
//! - [`kpi`]: a KPI value ([`Kpi`]) with numerator, denominator, n, formula, the target from policy, whether it is
//!   met, a small-n flag and a 95% Wilson score interval; the percentile histogram.
//! - [`summary`]: [`Summary`], the finished figures of one period: every KPI and every breakdown.
//! - [`tables`]: the breakdowns as tables, rendered both into the documents and as CSV.
//! - [`html`] and [`svg`]: the weekly opinion sheet (《医院客户服务意见表》) and the monthly analysis report as
//!   printable self-contained HTML with inline SVG charts.
//! - [`source`]: the streaming pass over the kiosk store; [`cli`]: `guidedesk report`.

pub mod agg;
pub mod cli;
pub mod html;
pub mod kpi;
pub mod labels;
pub mod source;
pub mod summary;
pub mod svg;
pub mod tables;

#[cfg(test)]
mod tests;

use std::fmt;

use chrono::{Datelike, Days, FixedOffset, Months, NaiveDate, Weekday};

use crate::model::Moment;

pub use agg::Aggregator;
pub use kpi::{Bound, Kpi, Metric, Question, Target};
pub use summary::Summary;

/// The language of a document's text: the application's one language type ([`crate::i18n::Language`]; `Lang::Zh`
/// is `Language::ZhCn`). Report text comes from the locale files' `report.*` keys through [`Tr`]; record content
/// (comments, facts) is shown as entered.
pub use crate::i18n::{Language as Lang, Tr};

/// Which document a period belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodKind {
    /// Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
    /// Any range of days.
    Custom,
}

/// A range of local calendar days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    /// What kind of period this is.
    pub kind: PeriodKind,
    /// First day.
    pub from: NaiveDate,
    /// Last day (included).
    pub to: NaiveDate,
}

impl Period {
    /// The week (Monday to Sunday) containing `day`.
    pub fn week_of(day: NaiveDate) -> Period {
        let week = day.week(Weekday::Mon);
        Period { kind: PeriodKind::Week, from: week.first_day(), to: week.last_day() }
    }

    /// The calendar month containing `day`.
    pub fn month_of(day: NaiveDate) -> Period {
        let ym = YearMonth::of(day);
        Period { kind: PeriodKind::Month, from: ym.first_day(), to: ym.last_day() }
    }

    /// Any range of days (`from` ≤ `to`; swapped otherwise).
    pub fn custom(from: NaiveDate, to: NaiveDate) -> Period {
        Period { kind: PeriodKind::Custom, from: from.min(to), to: from.max(to) }
    }

    /// Whether a day is inside.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }

    /// Every day, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }

    /// Number of days.
    pub fn len_days(&self) -> u32 {
        u32::try_from((self.to - self.from).num_days() + 1).unwrap_or(0)
    }

    /// The first instant inside, at a UTC offset.
    pub fn start(&self, offset: FixedOffset) -> Moment {
        Moment::start_of_day(self.from, offset)
    }

    /// The first instant after, at a UTC offset.
    pub fn end(&self, offset: FixedOffset) -> Moment {
        self.to.succ_opt().map_or(Moment(i64::MAX), |d| Moment::start_of_day(d, offset))
    }

    /// A short name: `2026-W47`, `2026-10` or `2026-10-01_2026-10-15`.
    pub fn slug(&self) -> String {
        match self.kind {
            PeriodKind::Week => {
                let w = self.from.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            PeriodKind::Month => YearMonth::of(self.from).to_string(),
            PeriodKind::Custom => format!("{}_{}", self.from, self.to),
        }
    }
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u32,
}

impl YearMonth {
    /// The month of a day.
    pub fn of(day: NaiveDate) -> YearMonth {
        YearMonth { year: day.year(), month: day.month() }
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// Its last day.
    pub fn last_day(self) -> NaiveDate {
        self.first_day()
            .checked_add_months(Months::new(1))
            .and_then(|d| d.checked_sub_days(Days::new(1)))
            .unwrap_or(NaiveDate::MAX)
    }

    /// The month `n` months earlier.
    pub fn minus(self, n: u32) -> YearMonth {
        YearMonth::of(self.first_day().checked_sub_months(Months::new(n)).unwrap_or(NaiveDate::MIN))
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// What an aggregation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportParams {
    /// The period reported on (records are filed by their business time's local day).
    pub period: Period,
    /// The site's UTC offset, which decides local days and hours.
    pub offset: FixedOffset,
    /// The day the figures are "as of": decides whether an open case is overdue, a follow-up window has passed, an
    /// appointment date has come.
    pub as_of: NaiveDate,
}

/// Days after a discharge within which its list is expected to be imported: a report reads follow-up tasks created
/// from this many days before its period, so a discharge of the period imported late is still filed under it.
pub const DISCHARGE_IMPORT_LAG_DAYS: u64 = 31;

/// The furthest ahead a booking can be made (`appointment_policy.horizon_days` is at most this): a report reads
/// bookings made from this many days before its period, since a booking is filed under the day booked.
pub const BOOKING_HORIZON_DAYS: u64 = 366;

/// Months of case history the accountability rules look back on (a rolling year, the report's month included).
pub const ACCOUNTABILITY_MONTHS: u32 = 12;

impl ReportParams {
    /// Parameters for a period at a UTC offset, with figures as of `as_of`.
    pub fn new(period: Period, offset: FixedOffset, as_of: NaiveDate) -> Self {
        Self { period, offset, as_of }
    }

    /// The local days whose follow-up tasks a report reads: discharge tasks are filed under their discharge date,
    /// which lies before the day their list was imported, so the window reaches from
    /// [`DISCHARGE_IMPORT_LAG_DAYS`] before the period (a list imported ahead of the discharge) to the as-of day (a
    /// list of the period imported after it ended).
    pub fn task_days(&self) -> (NaiveDate, NaiveDate) {
        let from =
            self.period.from.checked_sub_days(chrono::Days::new(DISCHARGE_IMPORT_LAG_DAYS)).unwrap_or(self.period.from);
        (from, self.period.to.max(self.as_of))
    }

    /// The local days whose bookings a report reads (by the day each was made): a booking is filed under the day
    /// booked, made at most [`BOOKING_HORIZON_DAYS`] before it and never after it.
    pub fn booking_days(&self) -> (NaiveDate, NaiveDate) {
        let from =
            self.period.from.checked_sub_days(chrono::Days::new(BOOKING_HORIZON_DAYS)).unwrap_or(self.period.from);
        (from, self.period.to)
    }

    /// The month accountability figures are reported for: the month of the period's last day.
    pub fn accountability_month(&self) -> YearMonth {
        YearMonth::of(self.period.to)
    }

    /// The first day of the accountability look-back: cases received from this day on count towards the rolling
    /// three-month and twelve-month dispute rules.
    pub fn accountability_from(&self) -> NaiveDate {
        self.accountability_month().minus(ACCOUNTABILITY_MONTHS - 1).first_day()
    }
}
