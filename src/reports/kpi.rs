//! KPI values and the statistics behind them: rates with their formula, target and 95% Wilson score interval;
//! rating counts; per-minute histograms for waiting-time percentiles.

use serde::Serialize;

use super::Lang;
use crate::model::{Dimension, Rating};

/// A rate computed from fewer observations than this is flagged as small-n (shown, but not to be trusted).
pub const SMALL_N: u64 = 30;

/// The z value of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Which side of a target is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The value must be at least the target.
    AtLeast,
    /// The value must be at most the target.
    AtMost,
}

/// A target from policy, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    /// Which side is good.
    pub bound: Bound,
    /// The target, percent.
    pub pct: f64,
}

impl Target {
    /// At least `pct` percent.
    pub fn at_least(pct: f64) -> Self {
        Self { bound: Bound::AtLeast, pct }
    }

    /// At most `pct` percent.
    pub fn at_most(pct: f64) -> Self {
        Self { bound: Bound::AtMost, pct }
    }

    /// Whether `numerator ÷ denominator` meets the target (`None` for an empty denominator). Compared as
    /// `numerator × 100` against `target × denominator`, so a rate exactly on the target meets it.
    pub fn met_by(&self, numerator: u64, denominator: u64) -> Option<bool> {
        if denominator == 0 {
            return None;
        }
        let lhs = numerator as f64 * 100.0;
        let rhs = self.pct * denominator as f64;
        Some(match self.bound {
            Bound::AtLeast => lhs >= rhs,
            Bound::AtMost => lhs <= rhs,
        })
    }

    /// `≥ 95%` / `≤ 2%`.
    pub fn display(&self) -> String {
        let sign = match self.bound {
            Bound::AtLeast => '≥',
            Bound::AtMost => '≤',
        };
        format!("{sign} {}%", trim_float(self.pct))
    }
}

/// A survey question: the overall one or a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Question {
    /// The overall rating.
    Overall,
    /// A rated aspect.
    Dimension(Dimension),
}

impl Question {
    /// The overall question and then every dimension, in survey order.
    pub fn all() -> impl Iterator<Item = Question> {
        std::iter::once(Question::Overall).chain(Dimension::ALL.into_iter().map(Question::Dimension))
    }

    /// Stable key (`overall`, `registration`, …).
    pub fn key(self) -> &'static str {
        match self {
            Question::Overall => "overall",
            Question::Dimension(d) => d.key(),
        }
    }
}

/// What a KPI measures. Each metric has one formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of satisfied answers to a question.
    SatisfactionPositive(Question),
    /// Share of dissatisfied answers to a question (registration and guide dissatisfaction are this metric).
    SatisfactionNegative(Question),
    /// Complainants satisfied with how their complaint was handled (情况反馈 and 建议 left out).
    ComplaintHandlingSatisfaction,
    /// The same over every finished case, 情况反馈 and 建议 included.
    CaseHandlingSatisfactionAll,
    /// Cases closed by their due date.
    CaseOnTimeClosure,
    /// Discharged inpatients followed up.
    InpatientFollowupRate,
    /// Outpatient first visits followed up.
    OutpatientFollowupRate,
    /// Satisfaction stated on reached follow-up calls.
    FollowupCallSatisfaction,
    /// Consultations that made an appointment.
    AppointmentRate,
    /// Appointments that came (来院达到率).
    AppointmentArrivalRate,
    /// Consultations that became an arrival.
    ConsultationConversion,
}

/// A formula in both languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Formula {
    /// English.
    pub en: &'static str,
    /// Chinese.
    pub zh: &'static str,
}

impl Formula {
    /// The text in a language.
    pub fn text(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::ZhCn => self.zh,
            Lang::En => self.en,
        }
    }
}

impl Metric {
    /// Stable key, e.g. `satisfaction_negative.registration`, `inpatient_followup_rate`.
    pub fn key(self) -> String {
        match self {
            Metric::SatisfactionPositive(q) => format!("satisfaction_positive.{}", q.key()),
            Metric::SatisfactionNegative(q) => format!("satisfaction_negative.{}", q.key()),
            Metric::ComplaintHandlingSatisfaction => "complaint_handling_satisfaction".into(),
            Metric::CaseHandlingSatisfactionAll => "case_handling_satisfaction_all".into(),
            Metric::CaseOnTimeClosure => "case_on_time_closure".into(),
            Metric::InpatientFollowupRate => "inpatient_followup_rate".into(),
            Metric::OutpatientFollowupRate => "outpatient_followup_rate".into(),
            Metric::FollowupCallSatisfaction => "followup_call_satisfaction".into(),
            Metric::AppointmentRate => "appointment_rate".into(),
            Metric::AppointmentArrivalRate => "appointment_arrival_rate".into(),
            Metric::ConsultationConversion => "consultation_conversion".into(),
        }
    }

    /// The formula, in both languages, from the locale files (`report.formula.*`).
    pub fn formula(self) -> Formula {
        let key = match self {
            Metric::SatisfactionPositive(_) => "report.formula.satisfaction_positive",
            Metric::SatisfactionNegative(_) => "report.formula.satisfaction_negative",
            Metric::ComplaintHandlingSatisfaction => "report.formula.complaint_handling_satisfaction",
            Metric::CaseHandlingSatisfactionAll => "report.formula.case_handling_satisfaction_all",
            Metric::CaseOnTimeClosure => "report.formula.case_on_time_closure",
            Metric::InpatientFollowupRate => "report.formula.inpatient_followup_rate",
            Metric::OutpatientFollowupRate => "report.formula.outpatient_followup_rate",
            Metric::FollowupCallSatisfaction => "report.formula.followup_call_satisfaction",
            Metric::AppointmentRate => "report.formula.appointment_rate",
            Metric::AppointmentArrivalRate => "report.formula.appointment_arrival_rate",
            Metric::ConsultationConversion => "report.formula.consultation_conversion",
        };
        Formula { en: Lang::En.tr().t(key), zh: Lang::ZhCn.tr().t(key) }
    }
}

/// One KPI value: a rate with everything needed to judge it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpi {
    /// What it measures.
    pub metric: Metric,
    /// Numerator.
    pub numerator: u64,
    /// Denominator.
    pub denominator: u64,
    /// Number of observations the rate rests on (the denominator).
    pub n: u64,
    /// How it is computed.
    pub formula: Formula,
    /// The target from policy, if the hospital sets one.
    pub target: Option<Target>,
    /// Whether the target is met (`None` without a target or without data).
    pub meets: Option<bool>,
    /// Fewer than [`SMALL_N`] observations.
    pub small_n: bool,
    /// 95% Wilson score interval, percent (`None` without data).
    pub ci95: Option<(f64, f64)>,
}

impl Kpi {
    /// A rate `numerator ÷ denominator` (a numerator above the denominator is clamped to it).
    pub fn rate(metric: Metric, numerator: u64, denominator: u64, target: Option<Target>) -> Kpi {
        let numerator = numerator.min(denominator);
        Kpi {
            metric,
            numerator,
            denominator,
            n: denominator,
            formula: metric.formula(),
            target,
            meets: target.and_then(|t| t.met_by(numerator, denominator)),
            small_n: denominator < SMALL_N,
            ci95: wilson(numerator, denominator),
        }
    }

    /// The value in percent (`None` without data).
    pub fn pct(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 * 100.0 / self.denominator as f64)
    }

    /// The value as text with one decimal (`—` without data).
    pub fn pct_text(&self) -> String {
        self.pct().map_or_else(|| "—".to_string(), |p| format!("{p:.1}%"))
    }

    /// The interval as text (`95.1–97.8%`).
    pub fn ci_text(&self) -> String {
        self.ci95.map_or_else(|| "—".to_string(), |(lo, hi)| format!("{lo:.1}–{hi:.1}%"))
    }
}

/// The 95% Wilson score interval of `x` successes in `n` trials, in percent; `None` when `n` is 0.
pub fn wilson(x: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let p = x.min(n) as f64 / nf;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = Z95 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Some(((centre - half).max(0.0) * 100.0, (centre + half).min(1.0) * 100.0))
}

/// Counts of each rating, "don't know" included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RatingCounts(pub [u64; 6]);

impl RatingCounts {
    fn index(r: Rating) -> usize {
        Rating::ALL.iter().position(|x| *x == r).unwrap_or(5)
    }

    /// Counts one answer.
    pub fn add(&mut self, r: Rating) {
        self.0[Self::index(r)] += 1;
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, o: &RatingCounts) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }

    /// The count of one rating.
    pub fn get(&self, r: Rating) -> u64 {
        self.0[Self::index(r)]
    }

    /// Every answer, "don't know" included.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Answers other than "don't know": the denominator of satisfaction rates.
    pub fn scored(&self) -> u64 {
        self.total() - self.get(Rating::DontKnow)
    }

    /// Satisfied or very satisfied.
    pub fn positive(&self) -> u64 {
        Rating::ALL.into_iter().filter(|r| r.is_positive()).map(|r| self.get(r)).sum()
    }

    /// Dissatisfied or very dissatisfied.
    pub fn negative(&self) -> u64 {
        Rating::ALL.into_iter().filter(|r| r.is_negative()).map(|r| self.get(r)).sum()
    }
}

/// Durations counted per whole minute (floored), up to a day; longer durations are counted together.
///
/// Percentiles use the nearest-rank method: the p-th percentile is the smallest recorded minute value such that at
/// least p% of the observations are at or below it. Exact to the minute, mergeable, and a fixed size whatever the
/// number of observations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MinuteHistogram {
    bins: Vec<u64>,
    overflow: u64,
    count: u64,
}

impl MinuteHistogram {
    /// Durations of this many minutes or more share one bin; a percentile falling there reads as this value.
    pub const CAP_MINUTES: u32 = 24 * 60;

    /// Records a duration in milliseconds; a negative duration (clocks out of step) is refused with `false`.
    pub fn add_millis(&mut self, ms: i64) -> bool {
        if ms < 0 {
            return false;
        }
        self.add_minutes(u64::try_from(ms / 60_000).unwrap_or(u64::MAX));
        true
    }

    /// Records a duration in whole minutes.
    pub fn add_minutes(&mut self, minutes: u64) {
        self.count += 1;
        match usize::try_from(minutes) {
            Ok(m) if m < Self::CAP_MINUTES as usize => {
                if self.bins.len() <= m {
                    self.bins.resize(m + 1, 0);
                }
                self.bins[m] += 1;
            }
            _ => self.overflow += 1,
        }
    }

    /// Adds another histogram.
    pub fn merge(&mut self, o: &MinuteHistogram) {
        if self.bins.len() < o.bins.len() {
            self.bins.resize(o.bins.len(), 0);
        }
        for (a, b) in self.bins.iter_mut().zip(&o.bins) {
            *a += b;
        }
        self.overflow += o.overflow;
        self.count += o.count;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The nearest-rank percentile (`pct` in 1–100) in minutes; `None` when empty. A value in the overflow bin
    /// reads as [`Self::CAP_MINUTES`].
    pub fn percentile(&self, pct: u32) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        let pct = u64::from(pct.clamp(1, 100));
        let rank = (pct * self.count).div_ceil(100).max(1);
        let mut seen = 0;
        for (m, n) in self.bins.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(m as u32);
            }
        }
        Some(Self::CAP_MINUTES)
    }

    /// Observations longer than `limit` minutes.
    pub fn over(&self, limit: u32) -> u64 {
        let skip = limit as usize + 1;
        self.bins.iter().skip(skip).sum::<u64>() + if skip <= Self::CAP_MINUTES as usize { self.overflow } else { 0 }
    }
}

/// `95` for 95.0, `2.5` for 2.5.
pub fn trim_float(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{v:.0}") } else { format!("{v}") }
}
