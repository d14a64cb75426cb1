//! KPI arithmetic (Wilson intervals, targets, small n, percentiles), periods, and the report text in the locale files.

use super::*;

#[test]
fn wilson_interval_matches_known_values() {
    assert_eq!(wilson(0, 0), None);
    let (lo, hi) = wilson(0, 10).unwrap();
    assert!(close(lo, 0.0) && close(hi, 27.75), "{lo} {hi}");
    let (lo, hi) = wilson(9, 10).unwrap();
    assert!(close(lo, 59.58) && close(hi, 98.21), "{lo} {hi}");
    let (lo, hi) = wilson(10, 10).unwrap();
    assert!(close(lo, 72.25) && close(hi, 100.0), "{lo} {hi}");
    let (lo, hi) = wilson(50, 100).unwrap();
    assert!(close(lo, 40.38) && close(hi, 59.62), "{lo} {hi}");
}

#[test]
fn targets_compare_exactly_at_the_boundary() {
    let at_least = Target::at_least(95.0);
    assert_eq!(at_least.met_by(19, 20), Some(true));
    assert_eq!(at_least.met_by(18, 20), Some(false));
    assert_eq!(at_least.met_by(0, 0), None);
    let at_most = Target::at_most(2.0);
    assert_eq!(at_most.bound, Bound::AtMost);
    assert_eq!(at_most.met_by(2, 100), Some(true));
    assert_eq!(at_most.met_by(3, 100), Some(false));
    assert_eq!(at_most.display(), "≤ 2%");
    assert_eq!(Target::at_least(97.5).display(), "≥ 97.5%");
}

#[test]
fn kpi_flags_small_n_and_empty_denominators() {
    let k = Kpi::rate(Metric::AppointmentRate, 29, 29, Some(Target::at_least(95.0)));
    assert!(k.small_n);
    assert_eq!(k.meets, Some(true));
    let k = Kpi::rate(Metric::AppointmentRate, 0, 30, Some(Target::at_least(95.0)));
    assert!(!k.small_n);
    assert_eq!(k.meets, Some(false));
    assert_eq!(k.pct(), Some(0.0));
    let empty = Kpi::rate(Metric::AppointmentRate, 0, 0, Some(Target::at_least(95.0)));
    assert_eq!((empty.pct(), empty.meets, empty.ci95), (None, None, None));
    assert!(empty.small_n);
    assert_eq!(empty.pct_text(), "—");
    // A numerator can never exceed its denominator.
    assert_eq!(Kpi::rate(Metric::AppointmentRate, 5, 3, None).numerator, 3);
}

#[test]
fn nearest_rank_percentiles() {
    let mut h = MinuteHistogram::default();
    assert_eq!(h.percentile(50), None);
    for m in [20, 5, 15, 10] {
        h.add_minutes(m);
    }
    assert_eq!((h.percentile(50), h.percentile(90), h.percentile(100)), (Some(10), Some(20), Some(20)));
    assert_eq!(h.percentile(1), Some(5));
    assert_eq!(h.over(10), 2);
    assert_eq!(h.over(20), 0);
    assert!(h.add_millis(59_999));
    assert!(!h.add_millis(-1));
    assert_eq!((h.count(), h.percentile(1)), (5, Some(0)));
    let mut long = MinuteHistogram::default();
    long.add_minutes(3000);
    assert_eq!(long.percentile(50), Some(MinuteHistogram::CAP_MINUTES));
    assert_eq!(long.over(60), 1);
    let mut merged = h.clone();
    merged.merge(&long);
    assert_eq!(merged.count(), 6);
    assert_eq!(merged.percentile(100), Some(MinuteHistogram::CAP_MINUTES));
}

#[test]
fn periods_and_months() {
    let w = Period::week_of(d(11, 18));
    assert_eq!((w.from, w.to, w.kind), (d(11, 16), d(11, 22), PeriodKind::Week));
    assert_eq!(w.slug(), "2026-W47");
    assert_eq!(Period::week_of(d(11, 22)), w);
    let m = Period::month_of(d(2, 10));
    assert_eq!((m.from, m.to, m.len_days()), (d(2, 1), d(2, 28), 28));
    assert_eq!(m.slug(), "2026-02");
    assert_eq!(YearMonth::of(d(1, 31)).minus(1).to_string(), "2025-12");
    assert_eq!(params().accountability_from(), NaiveDate::from_ymd_opt(2025, 12, 1).unwrap());
    assert_eq!(params().accountability_month(), YearMonth { year: 2026, month: 11 });
    assert_eq!(Lang::parse("zh-CN"), Some(Lang::Zh));
    assert_eq!(Lang::parse("EN"), Some(Lang::En));
    assert_eq!(Lang::parse("fr"), None);
}

#[test]
fn every_report_label_and_table_title_is_in_both_locales() {
    use crate::model::*;
    for lang in [Lang::ZhCn, Lang::En] {
        let tr = lang.tr();
        let mut keys: Vec<(&str, &str)> = Vec::new();
        keys.extend(ArrivalChannel::ALL.iter().map(|v| ("report.channel", v.key())));
        keys.extend(Need::ALL.iter().map(|v| ("report.need", v.key())));
        keys.extend(VisitStep::ALL.iter().map(|v| ("report.step", v.key())));
        keys.extend(Rating::ALL.iter().map(|v| ("report.rating", v.key())));
        keys.extend(Dimension::ALL.iter().map(|v| ("report.dimension", v.key())));
        keys.extend(CaseGrade::ALL.iter().map(|v| ("report.grade", v.key())));
        keys.extend(CaseChannel::ALL.iter().map(|v| ("report.case_channel", v.key())));
        keys.extend(CaseStatus::ALL.iter().map(|v| ("report.case_status", v.key())));
        keys.extend(ConsultationChannel::ALL.iter().map(|v| ("report.consultation_channel", v.key())));
        keys.extend(Concern::ALL.iter().map(|v| ("report.concern", v.key())));
        keys.extend(CallOutcome::ALL.iter().map(|v| ("report.call_outcome", v.key())));
        keys.extend(TaskGroup::ALL.iter().map(|v| ("report.task_group", v.key())));
        keys.extend(
            [Closure::OnTime, Closure::Late, Closure::OpenNotDue, Closure::Overdue]
                .iter()
                .map(|v| ("report.closure", v.key())),
        );
        for (prefix, key) in keys {
            assert!(tr.k_opt(prefix, key).is_some(), "{lang:?}: {prefix}.{key} missing");
        }
        let s = fixture();
        for t in tables::monthly(&s, &refs(), lang).iter().chain(&tables::weekly(&s, &refs(), lang)) {
            assert!(tr.k_opt("report.table", t.name).is_some(), "{lang:?}: title of {}", t.name);
            for c in &t.columns {
                assert!(tr.k_opt("report.col", c.label).is_some(), "{lang:?}: column {} of {}", c.key, t.name);
            }
        }
        for q in Question::all() {
            for m in [Metric::SatisfactionPositive(q), Metric::SatisfactionNegative(q)] {
                assert!(!crate::reports::labels::metric(m, lang).contains('?'), "{lang:?}: {m:?}");
                assert!(!m.formula().text(lang).starts_with("report."), "{lang:?}: formula of {m:?}");
            }
        }
    }
}
