//! Display names of the values that appear in reports, from the locale files (`report.*` keys, see
//! [`crate::i18n`]).

use super::Lang;
use super::agg::{Closure, TaskGroup};
use super::kpi::{Metric, Question};
use super::summary::Flag;
use crate::model::{
    ArrivalChannel, CallOutcome, CaseChannel, CaseGrade, CaseStatus, Concern, ConsultationChannel, Dimension, Need,
    Rating, ReferenceData, VisitStep,
};

/// A department's name by code; the code itself when unknown, "no department" for the empty code.
pub fn department(refs: &ReferenceData, code: &str, lang: Lang) -> String {
    if code.is_empty() {
        return lang.tr().t("report.no_department").to_string();
    }
    match refs.department(code) {
        Some(d) if lang == Lang::En && !d.name_en.is_empty() => d.name_en.clone(),
        Some(d) => d.name.clone(),
        None => code.to_string(),
    }
}

/// A staff member's or doctor's name by id; what was recorded when the id is unknown.
pub fn staff(refs: &ReferenceData, who: &str) -> String {
    if let Some(s) = refs.staff_member(who) {
        return format!("{} ({})", s.name, s.id);
    }
    refs.doctor(who).map_or_else(|| who.to_string(), |d| format!("{} ({})", d.name, d.id))
}

/// A staff member's department code, if reference data knows it.
pub fn staff_department(refs: &ReferenceData, who: &str) -> Option<String> {
    refs.staff_member(who).and_then(|s| s.department.clone())
}

/// A name shown with all but its first character masked (`李**`), for lists that leave the complaint desk.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count().max(1);
            format!("{first}{}", "*".repeat(rest))
        }
    }
}

/// 来院渠道.
pub fn channel(c: ArrivalChannel, lang: Lang) -> &'static str {
    lang.tr().k("report.channel", c.key())
}

/// Assistance needs.
pub fn need(n: Need, lang: Lang) -> &'static str {
    lang.tr().k("report.need", n.key())
}

/// Time spent in a step (what the patient was waiting for), or the step reached.
pub fn step(s: VisitStep, lang: Lang) -> &'static str {
    lang.tr().k("report.step", s.key())
}

/// Ratings.
pub fn rating(r: Rating, lang: Lang) -> &'static str {
    lang.tr().k("report.rating", r.key())
}

/// Survey dimensions.
pub fn dimension(d: Dimension, lang: Lang) -> &'static str {
    lang.tr().k("report.dimension", d.key())
}

/// Survey questions.
pub fn question(q: Question, lang: Lang) -> &'static str {
    match q {
        Question::Overall => lang.tr().t("report.question.overall"),
        Question::Dimension(d) => dimension(d, lang),
    }
}

/// Case grades, with their number in seed 003.
pub fn grade(g: CaseGrade, lang: Lang) -> &'static str {
    lang.tr().k("report.grade", g.key())
}

/// How a case reached the hospital.
pub fn case_channel(c: CaseChannel, lang: Lang) -> &'static str {
    lang.tr().k("report.case_channel", c.key())
}

/// Case status.
pub fn case_status(s: CaseStatus, lang: Lang) -> &'static str {
    lang.tr().k("report.case_status", s.key())
}

/// A case's standing against its deadline.
pub fn closure(c: Closure, lang: Lang) -> &'static str {
    lang.tr().k("report.closure", c.key())
}

/// Consultation channels.
pub fn consultation_channel(c: ConsultationChannel, lang: Lang) -> &'static str {
    lang.tr().k("report.consultation_channel", c.key())
}

/// What an enquirer cares about.
pub fn concern(c: Concern, lang: Lang) -> &'static str {
    lang.tr().k("report.concern", c.key())
}

/// Call outcomes.
pub fn call_outcome(o: CallOutcome, lang: Lang) -> &'static str {
    lang.tr().k("report.call_outcome", o.key())
}

/// Follow-up task groups.
pub fn task_group(g: TaskGroup, lang: Lang) -> &'static str {
    lang.tr().k("report.task_group", g.key())
}

/// KPI names: `report.metric.<metric key>` when the locale names the metric, else built from the question.
pub fn metric(m: Metric, lang: Lang) -> String {
    let tr = lang.tr();
    if let Some(name) = tr.k_opt("report.metric", &m.key()) {
        return name.to_string();
    }
    match m {
        Metric::SatisfactionPositive(q) => tr.f("report.metric.satisfaction_of", &[("question", &question(q, lang))]),
        Metric::SatisfactionNegative(q) => {
            tr.f("report.metric.dissatisfaction_of", &[("question", &question(q, lang))])
        }
        // Every other metric is named in the locale files (a test checks it).
        other => tr.k("report.metric", &other.key()).to_string(),
    }
}

/// An accountability rule that was crossed, with its figures.
pub fn flag(f: Flag, lang: Lang) -> String {
    let (key, count, threshold) = match f {
        Flag::DeptMonthly { count, threshold } | Flag::StaffMonthly { count, threshold } => {
            ("report.flag.monthly", count, threshold)
        }
        Flag::DisputesQuarter { count, threshold } => ("report.flag.disputes_quarter", count, threshold),
        Flag::DisputesYear { count, threshold } => ("report.flag.disputes_year", count, threshold),
        Flag::IncidentsYear { count, threshold } => ("report.flag.incidents_year", count, threshold),
        Flag::StaffIncident { count } => ("report.flag.staff_incident", count, 1),
    };
    lang.tr().f(key, &[("count", &count), ("threshold", &threshold)])
}
