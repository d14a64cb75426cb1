//! The breakdowns of a [`Summary`] as tables: one definition, rendered both into the HTML documents and as CSV
//! (UTF-8 with BOM, RFC 4180 quoting, CRLF — the conventions of [`crate::export`]).
//!
//! CSV headers are the stable column keys; category columns come as a code column and a name column in the
//! document's language; percentages are plain numbers with one decimal.

mod appointments;

pub use appointments::{appointment_arrival_rate, appointments_by_day};

use std::fmt::Write as _;
use std::io::Write;

use chrono::Datelike;

use super::agg::{Closure, TaskCounts, TaskGroup};
use super::kpi::Kpi;
use super::summary::{AccountRow, Summary};
use super::{Lang, labels};
use crate::model::{
    ArrivalChannel, CallOutcome, CaseGrade, Concern, ConsultationChannel, Need, Rating, ReferenceData, VisitType,
};

/// A column: its stable key (the CSV header) and its title, `report.col.<label>` in the locale files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Stable key.
    pub key: &'static str,
    /// The title's key under `report.col` (usually the column key itself).
    pub label: &'static str,
    /// Only in CSV: a code column whose name column (`<key>_name`) is what the documents show, or a detail left
    /// out of a crowded printed table.
    pub csv_only: bool,
}

/// One cell: its text, and for the HTML rendering a status class and a tooltip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cell {
    /// The text (the same in HTML and CSV).
    pub text: String,
    /// Right-aligned number.
    pub numeric: bool,
    /// CSS classes: `ok`, `bad` or `small` (small n) for colouring, `nowrap`.
    pub class: Option<&'static str>,
    /// Hover text (formula and n).
    pub title: Option<String>,
}

/// A table of one breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Stable name (the CSV file name without `.csv`); the title is `report.table.<name>` in the locale files.
    pub name: &'static str,
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(name: &'static str, cols: &[Col]) -> Self {
        Table {
            name,
            columns: cols
                .iter()
                .map(|(key, label)| Column {
                    key,
                    label,
                    csv_only: cols.iter().any(|(k, _)| k.strip_suffix("_name") == Some(*key)),
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Keeps a column out of the documents (it stays in the CSV).
    fn csv_only(mut self, key: &str) -> Self {
        for c in self.columns.iter_mut().filter(|c| c.key == key) {
            c.csv_only = true;
        }
        self
    }

    fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row width of table {}", self.name);
        self.rows.push(row);
    }

    /// The title in a language.
    pub fn title(&self, lang: Lang) -> &'static str {
        lang.tr().k("report.table", self.name)
    }

    /// The index of a column by key.
    pub fn column(&self, key: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.key == key)
    }

    /// Writes the table as CSV: BOM, header of column keys, CRLF line ends. Cells that a spreadsheet could read as
    /// a formula (comments, case facts, names…) are neutralised ([`crate::csv_safe`]).
    pub fn write_csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut w = crate::csv_safe::Writer::with_bom(out)?;
        w.write_record(self.columns.iter().map(|c| c.key)).map_err(std::io::Error::other)?;
        for r in &self.rows {
            w.write_record(r.iter().map(|c| c.text.as_str())).map_err(std::io::Error::other)?;
        }
        w.flush()
    }
}

impl Column {
    /// The title in a language.
    pub fn title(&self, lang: Lang) -> &'static str {
        lang.tr().k("report.col", self.label)
    }
}

/// A column as declared: its key and the key of its title under `report.col`.
type Col = (&'static str, &'static str);

/// A column whose title's key is its own key.
const fn c(key: &'static str) -> Col {
    (key, key)
}

fn text(s: impl Into<String>) -> Cell {
    Cell { text: s.into(), ..Cell::default() }
}

fn num(v: u64) -> Cell {
    Cell { text: v.to_string(), numeric: true, ..Cell::default() }
}

fn opt_num(v: Option<u32>) -> Cell {
    Cell { text: v.map(|v| v.to_string()).unwrap_or_default(), numeric: true, ..Cell::default() }
}

/// `a ÷ b` in percent with one decimal, empty when `b` is 0.
fn share(a: u64, b: u64) -> Cell {
    let t = if b == 0 { String::new() } else { format!("{:.1}", a as f64 * 100.0 / b as f64) };
    Cell { text: t, numeric: true, ..Cell::default() }
}

/// The KPI's value in percent, coloured by target and small n, with the formula on hover.
pub fn kpi_value(k: &Kpi, lang: Lang) -> Cell {
    let class = match (k.meets, k.small_n) {
        _ if k.denominator == 0 => None,
        (Some(true), false) => Some("ok"),
        (Some(false), false) => Some("bad"),
        (_, true) => Some("small"),
        (None, false) => None,
    };
    Cell {
        text: k.pct().map(|p| format!("{p:.1}")).unwrap_or_default(),
        numeric: true,
        class,
        title: Some(hover(k, lang)),
    }
}

/// The hover text of a KPI: formula, numerator/denominator, n, target and the small-n warning.
pub fn hover(k: &Kpi, lang: Lang) -> String {
    let mut s = format!("{}\n{} / {} (n = {})", k.formula.text(lang), k.numerator, k.denominator, k.n);
    if let Some(t) = k.target {
        let _ = write!(s, "\n{} {}", lang.tr().t("report.target"), t.display());
    }
    if k.small_n {
        let _ = write!(s, "\n{}", small_n_text(lang));
    }
    s
}

/// The small-n warning.
pub fn small_n_text(lang: Lang) -> String {
    lang.tr().f("report.small_n", &[("n", &super::kpi::SMALL_N)])
}

fn ci_cells(k: &Kpi) -> [Cell; 2] {
    let f = |v: Option<f64>| Cell {
        text: v.map(|v| format!("{v:.1}")).unwrap_or_default(),
        numeric: true,
        ..Cell::default()
    };
    [f(k.ci95.map(|c| c.0)), f(k.ci95.map(|c| c.1))]
}

fn yes_no(v: Option<bool>, lang: Lang) -> Cell {
    text(match v {
        Some(true) => lang.tr().t("report.yes"),
        Some(false) => lang.tr().t("report.no"),
        None => "",
    })
}

fn met(v: Option<bool>, lang: Lang) -> Cell {
    let mut c = text(match v {
        Some(true) => lang.tr().t("report.met"),
        Some(false) => lang.tr().t("report.not_met"),
        None => "",
    });
    c.class = v.map(|m| if m { "ok" } else { "bad" });
    c
}

fn target_text(k: &Kpi) -> Cell {
    Cell { class: Some("nowrap"), ..text(k.target.map(|t| t.display()).unwrap_or_default()) }
}

/// Every KPI: the headline ones, then satisfaction with every question.
pub fn kpis(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "kpis",
        &[
            c("metric"),
            ("name", "metric_name"),
            c("numerator"),
            c("denominator"),
            c("n"),
            c("value_pct"),
            c("ci95_low_pct"),
            c("ci95_high_pct"),
            c("target"),
            c("meets_target"),
            c("small_n"),
            c("formula"),
        ],
    );
    let mut all: Vec<&Kpi> = s.headline();
    for q in &s.questions {
        for k in [&q.positive, &q.negative] {
            if !all.iter().any(|x| x.metric == k.metric) {
                all.push(k);
            }
        }
    }
    for k in all {
        let [lo, hi] = ci_cells(k);
        t.push(vec![
            text(k.metric.key()),
            text(labels::metric(k.metric, lang)),
            num(k.numerator),
            num(k.denominator),
            num(k.n),
            kpi_value(k, lang),
            lo,
            hi,
            target_text(k),
            met(k.meets, lang),
            yes_no(Some(k.small_n), lang),
            text(k.formula.text(lang)),
        ]);
    }
    t
}

/// Arrivals and assistance needs by hour of arrival (hours with arrivals).
pub fn arrivals_by_hour(s: &Summary) -> Table {
    let mut cols = vec![c("hour"), c("arrivals")];
    cols.extend(Need::ALL.iter().map(|n| needs_column(*n)));
    let mut t = Table::new("arrivals_by_hour", &cols);
    let a = &s.agg.arrivals;
    for h in (0..24).filter(|h| a.by_hour[*h] > 0) {
        let mut row = vec![text(format!("{h:02}:00")), num(a.by_hour[h])];
        row.extend(Need::ALL.iter().map(|n| num(a.needs_by_hour.get(n).map_or(0, |v| v[h]))));
        t.push(row);
    }
    t
}

fn needs_column(n: Need) -> Col {
    match n {
        Need::Wheelchair => c("wheelchair"),
        Need::Stretcher => c("stretcher"),
        Need::Escort => c("escort"),
        Need::Elderly => c("elderly"),
        Need::Disabled => c("disabled"),
        Need::Interpreter => c("interpreter"),
    }
}

fn weekday(d: chrono::NaiveDate, lang: Lang) -> &'static str {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    lang.tr().k("report.weekday", DAYS[d.weekday().num_days_from_monday() as usize])
}

/// Arrivals per day of the period (days without arrivals included).
pub fn arrivals_by_day(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new("arrivals_by_day", &[c("date"), c("weekday"), c("arrivals")]);
    for d in s.params().period.days() {
        t.push(vec![
            text(d.to_string()),
            text(weekday(d, lang)),
            num(s.agg.arrivals.by_day.get(&d).copied().unwrap_or(0)),
        ]);
    }
    t
}

/// Arrivals per department, busiest first.
pub fn arrivals_by_department(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "arrivals_by_department",
        &[c("department"), c("department_name"), c("arrivals"), c("first_visit"), c("return_visit"), c("share_pct")],
    );
    let a = &s.agg.arrivals;
    let mut rows: Vec<_> = a.by_department.iter().collect();
    rows.sort_by(|x, y| y.1.total.cmp(&x.1.total).then_with(|| x.0.cmp(y.0)));
    for (d, v) in rows {
        t.push(vec![
            text(d.clone()),
            text(labels::department(refs, d, lang)),
            num(v.total),
            num(v.first),
            num(v.returning),
            share(v.total, a.total),
        ]);
    }
    t
}

/// Arrivals per channel.
pub fn arrivals_by_channel(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new("arrivals_by_channel", &[c("channel"), c("channel_name"), c("arrivals"), c("share_pct")]);
    let a = &s.agg.arrivals;
    for c in ArrivalChannel::ALL {
        let n = a.by_channel.get(&c).copied().unwrap_or(0);
        t.push(vec![text(c.key()), text(labels::channel(c, lang)), num(n), share(n, a.total)]);
    }
    t
}

/// Free-text values with their counts, most frequent first (ties by text); an empty value reads "not given".
fn by_count(m: &std::collections::BTreeMap<String, u64>, lang: Lang) -> Vec<(String, u64)> {
    let mut rows: Vec<_> = m.iter().collect();
    rows.sort_by(|x, y| y.1.cmp(x.1).then_with(|| x.0.cmp(y.0)));
    rows.into_iter()
        .map(|(v, n)| (if v.is_empty() { lang.tr().t("report.not_given").to_string() } else { v.clone() }, *n))
        .collect()
}

/// Rows of free-text values with their counts and shares of `total`.
fn counted(t: &mut Table, m: &std::collections::BTreeMap<String, u64>, total: u64, lang: Lang) {
    for (v, n) in by_count(m, lang) {
        t.push(vec![text(v), num(n), share(n, total)]);
    }
}

/// Arrivals by where they came from (来源地), as entered at registration.
pub fn arrivals_by_origin(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new("arrivals_by_origin", &[c("origin"), c("arrivals"), c("share_pct")]);
    counted(&mut t, &s.agg.arrivals.by_origin, s.agg.arrivals.total, lang);
    t
}

/// Arrivals by how they heard of the hospital (获知途径), as entered at registration.
pub fn arrivals_by_heard_via(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new("arrivals_by_heard_via", &[c("heard_via"), c("arrivals"), c("share_pct")]);
    counted(&mut t, &s.agg.arrivals.by_heard_via, s.agg.arrivals.total, lang);
    t
}

/// 退号 and 换号 with their reasons, most frequent first.
pub fn cancellations_and_changes(s: &Summary, lang: Lang) -> Table {
    let mut t =
        Table::new("cancellations_and_changes", &[("kind", "kind_code"), c("kind_name"), c("reason"), c("count")]);
    let a = &s.agg.arrivals;
    for (key, m) in [("cancelled", &a.cancel_reasons), ("changed", &a.change_reasons)] {
        let name = lang.tr().k("report.cancel_change", key);
        for (reason, n) in by_count(m, lang) {
            t.push(vec![text(key), text(name), text(reason), num(n)]);
        }
    }
    t
}

/// First and return visits.
pub fn arrivals_by_visit_type(s: &Summary, lang: Lang) -> Table {
    let mut t =
        Table::new("arrivals_by_visit_type", &[c("visit_type"), c("visit_type_name"), c("arrivals"), c("share_pct")]);
    let a = &s.agg.arrivals;
    for (v, n) in [(VisitType::First, a.first), (VisitType::Return, a.returning)] {
        let (key, name) = match v {
            VisitType::First => ("first", lang.tr().t("report.visit_type.first")),
            VisitType::Return => ("return", lang.tr().t("report.visit_type.return")),
        };
        t.push(vec![text(key), text(name), num(n), share(n, a.total)]);
    }
    t
}

/// Time spent in each visit step: median and 90th percentile against the board's limit.
pub fn waiting_times(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "waiting_times",
        &[
            c("step"),
            c("step_name"),
            c("n"),
            c("median_min"),
            c("p90_min"),
            c("limit_min"),
            c("over_limit"),
            c("over_limit_pct"),
        ],
    );
    for w in &s.waits {
        let (key, name) = match w.step {
            Some(st) => (st.key(), labels::step(st, lang)),
            None => ("whole_visit", lang.tr().t("report.whole_visit")),
        };
        let mut p90 = opt_num(w.p90);
        if let (Some(p), Some(l)) = (w.p90, w.limit) {
            p90.class = Some(if p > l { "bad" } else { "ok" });
        }
        t.push(vec![
            text(key),
            text(name),
            num(w.n),
            opt_num(w.median),
            p90,
            opt_num(w.limit),
            if w.limit.is_some() { num(w.over_limit) } else { text("") },
            if w.limit.is_some() { share(w.over_limit, w.n) } else { text("") },
        ]);
    }
    t
}

/// Consultations per channel.
pub fn consultations_by_channel(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "consultations_by_channel",
        &[c("channel"), ("channel_name", "consultation_channel_name"), c("consultations"), c("share_pct")],
    );
    let c = &s.agg.consultations;
    for ch in ConsultationChannel::ALL {
        let n = c.by_channel.get(&ch).copied().unwrap_or(0);
        t.push(vec![text(ch.key()), text(labels::consultation_channel(ch, lang)), num(n), share(n, c.total)]);
    }
    t
}

/// Consultations per concern.
pub fn consultations_by_concern(s: &Summary, lang: Lang) -> Table {
    let mut t =
        Table::new("consultations_by_concern", &[c("concern"), c("concern_name"), c("consultations"), c("share_pct")]);
    let c = &s.agg.consultations;
    for k in Concern::ALL {
        let n = c.by_concern.get(&k).copied().unwrap_or(0);
        t.push(vec![text(k.key()), text(labels::concern(k, lang)), num(n), share(n, c.total)]);
    }
    t
}

/// Consultations per referred department and their conversion.
pub fn consultations_by_department(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "consultations_by_department",
        &[c("department"), c("department_name"), c("consultations"), c("appointments"), c("came"), c("conversion_pct")],
    );
    let mut rows: Vec<_> = s.agg.consultations.by_department.iter().collect();
    rows.sort_by(|x, y| y.1.total.cmp(&x.1.total).then_with(|| x.0.cmp(y.0)));
    for (d, v) in rows {
        t.push(vec![
            text(d.clone()),
            text(labels::department(refs, d, lang)),
            num(v.total),
            num(v.appointments),
            num(v.came),
            share(v.came, v.total),
        ]);
    }
    t
}

/// Satisfaction with every question: the answer counts, rates and intervals.
pub fn satisfaction_by_question(s: &Summary, lang: Lang) -> Table {
    let mut cols = vec![c("question"), c("question_name")];
    cols.extend(Rating::ALL.iter().map(|r| rating_column(*r)));
    cols.extend([
        c("scored_n"),
        c("positive_pct"),
        c("positive_ci95_low_pct"),
        c("positive_ci95_high_pct"),
        c("negative_pct"),
        c("negative_ci95_low_pct"),
        c("negative_ci95_high_pct"),
        c("small_n"),
        c("incomplete_answers"),
    ]);
    let mut t = Table::new("satisfaction_by_question", &cols);
    for q in &s.questions {
        let mut row = vec![text(q.question.key()), text(labels::question(q.question, lang))];
        row.extend(Rating::ALL.iter().map(|r| num(q.counts.get(*r))));
        row.push(num(q.counts.scored()));
        row.push(kpi_value(&q.positive, lang));
        row.extend(ci_cells(&q.positive));
        row.push(kpi_value(&q.negative, lang));
        row.extend(ci_cells(&q.negative));
        row.push(yes_no(Some(q.positive.small_n), lang));
        row.push(num(q.incomplete.total()));
        t.push(row);
    }
    t
}

fn rating_column(r: Rating) -> Col {
    match r {
        Rating::VerySatisfied => c("very_satisfied"),
        Rating::Satisfied => c("satisfied"),
        Rating::Neutral => c("neutral"),
        Rating::Dissatisfied => c("dissatisfied"),
        Rating::VeryDissatisfied => c("very_dissatisfied"),
        Rating::DontKnow => c("dont_know"),
    }
}

/// Overall satisfaction per day.
pub fn satisfaction_by_day(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "satisfaction_by_day",
        &[
            c("date"),
            c("scored_n"),
            ("satisfied", "satisfied_count"),
            c("positive_pct"),
            ("ci95_low_pct", "ci95_low"),
            ("ci95_high_pct", "ci95_high"),
            c("small_n"),
        ],
    );
    for (d, k) in &s.trend {
        let [lo, hi] = ci_cells(k);
        t.push(vec![
            text(d.to_string()),
            num(k.denominator),
            num(k.numerator),
            kpi_value(k, lang),
            lo,
            hi,
            yes_no(Some(k.small_n), lang),
        ]);
    }
    t
}

/// The preset reasons patients tapped, most frequent first.
pub fn feedback_reasons(s: &Summary) -> Table {
    let mut t = Table::new("feedback_reasons", &[c("reason"), c("count")]);
    let mut rows: Vec<_> = s.agg.feedback.reasons.iter().collect();
    rows.sort_by(|x, y| y.1.cmp(x.1).then_with(|| x.0.cmp(y.0)));
    for (r, n) in rows {
        t.push(vec![text(r.clone()), num(*n)]);
    }
    t
}

/// Patient comments (the opinion sheet's first part).
pub fn opinions(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "opinions",
        &[
            c("time"),
            c("overall"),
            c("dissatisfied_with"),
            c("reasons"),
            c("comment"),
            c("wants_contact"),
            c("complete"),
        ],
    );
    let offset = s.params().offset;
    for c in &s.agg.feedback.comments {
        let dims: Vec<&str> = c.dissatisfied_with.iter().map(|d| labels::dimension(*d, lang)).collect();
        t.push(vec![
            text(c.at.local(offset).format("%Y-%m-%d %H:%M").to_string()),
            text(labels::rating(c.overall, lang)),
            text(dims.join(lang.tr().t("report.list_sep"))),
            text(c.reasons.join(lang.tr().t("report.list_sep"))),
            text(c.text.clone()),
            yes_no(Some(c.wants_contact), lang),
            yes_no(Some(c.complete), lang),
        ]);
    }
    t
}

/// Cases received, one row each (names masked).
pub fn cases_list(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "cases_list",
        &[
            c("case"),
            c("received_at"),
            ("grade", "grade_name"),
            ("channel", "case_channel"),
            c("departments"),
            c("complainant"),
            c("facts"),
            c("request"),
            c("status"),
            c("due"),
            c("standing"),
            c("handling_rating"),
        ],
    )
    .csv_only("channel");
    let offset = s.params().offset;
    for c in &s.agg.cases.items {
        let depts: Vec<String> = c.departments.iter().map(|d| labels::department(refs, d, lang)).collect();
        let mut standing = text(labels::closure(c.closure, lang));
        standing.class = match c.closure {
            Closure::OnTime => Some("ok"),
            Closure::Late | Closure::Overdue => Some("bad"),
            Closure::OpenNotDue => None,
        };
        t.push(vec![
            text(c.id.short()),
            text(c.received_at.local(offset).format("%Y-%m-%d %H:%M").to_string()),
            text(labels::grade(c.grade, lang)),
            text(labels::case_channel(c.channel, lang)),
            text(depts.join(lang.tr().t("report.list_sep"))),
            text(labels::mask_name(&c.complainant)),
            text(c.facts.clone()),
            text(c.request.clone().unwrap_or_default()),
            text(labels::case_status(c.status, lang)),
            text(c.due.to_string()),
            standing,
            text(c.handling.map(|r| labels::rating(r, lang)).unwrap_or_default()),
        ]);
    }
    t
}

const CLOSURE_COLS: [Col; 6] =
    [c("received"), c("on_time"), c("late"), c("open_not_due"), c("overdue"), c("on_time_pct")];

/// Cases per grade and their standing.
pub fn cases_by_grade(s: &Summary, lang: Lang) -> Table {
    let mut cols = vec![c("grade"), c("grade_name")];
    cols.extend(CLOSURE_COLS);
    let mut t = Table::new("cases_by_grade", &cols);
    for g in &s.cases_by_grade {
        let c = &g.counts;
        t.push(vec![
            text(g.grade.key()),
            text(labels::grade(g.grade, lang)),
            num(c.received),
            num(c.on_time),
            num(c.late),
            num(c.open_not_due),
            num(c.overdue),
            kpi_value(&g.on_time, lang),
        ]);
    }
    t
}

/// Cases per department (a case concerning several departments counts under each).
pub fn cases_by_department(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut cols = vec![c("department"), c("department_name")];
    cols.extend(CaseGrade::ALL.iter().map(|g| grade_column(*g)));
    cols.extend(CLOSURE_COLS);
    let mut t = Table::new("cases_by_department", &cols);
    let mut rows: Vec<_> = s.cases_by_department.iter().collect();
    rows.sort_by(|x, y| {
        y.cases.closure.received.cmp(&x.cases.closure.received).then_with(|| x.department.cmp(&y.department))
    });
    for r in rows {
        let c = &r.cases.closure;
        let mut row = vec![text(r.department.clone()), text(labels::department(refs, &r.department, lang))];
        row.extend(CaseGrade::ALL.iter().map(|g| num(r.cases.by_grade.get(g).copied().unwrap_or(0))));
        row.extend([
            num(c.received),
            num(c.on_time),
            num(c.late),
            num(c.open_not_due),
            num(c.overdue),
            kpi_value(&r.on_time, lang),
        ]);
        t.push(row);
    }
    t
}

fn grade_column(g: CaseGrade) -> Col {
    match g {
        CaseGrade::Feedback => c("feedback"),
        CaseGrade::Suggestion => c("suggestion"),
        CaseGrade::Dissatisfied => c("dissatisfied"),
        CaseGrade::VeryDissatisfied => c("very_dissatisfied"),
        CaseGrade::Complaint => c("complaint"),
        CaseGrade::Dispute => c("dispute"),
        CaseGrade::Incident => c("incident"),
    }
}

const TASK_COLS: [Col; 9] = [
    c("tasks"),
    c("completed"),
    c("unreachable"),
    c("refused"),
    c("deceased"),
    c("cancelled"),
    c("pending"),
    ("overdue", "followup_overdue"),
    c("eligible"),
];

fn task_cells(c: &TaskCounts) -> Vec<Cell> {
    vec![
        num(c.total),
        num(c.completed),
        num(c.unreachable),
        num(c.refused),
        num(c.deceased),
        num(c.cancelled),
        num(c.pending),
        num(c.overdue),
        num(c.eligible()),
    ]
}

/// Follow-up tasks per group.
pub fn followup_by_group(s: &Summary, lang: Lang) -> Table {
    let mut cols = vec![c("group"), c("group_name")];
    cols.extend(TASK_COLS);
    let mut t = Table::new("followup_by_group", &cols);
    for g in TaskGroup::ALL {
        let mut row = vec![text(g.key()), text(labels::task_group(g, lang))];
        row.extend(task_cells(&s.agg.followups.group(g)));
        t.push(row);
    }
    t
}

/// Follow-up rates per department against the targets.
pub fn followup_by_department(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut cols = vec![c("department"), c("department_name")];
    cols.extend(TASK_COLS.iter().map(|(k, label)| match *k {
        "tasks" => c("discharges"),
        _ => (*k, *label),
    }));
    cols.extend([
        c("inpatient_rate_pct"),
        c("inpatient_target"),
        c("first_visits"),
        c("outpatient_completed"),
        c("outpatient_rate_pct"),
        c("outpatient_target"),
    ]);
    let mut t = Table::new("followup_by_department", &cols).csv_only("inpatient_target").csv_only("outpatient_target");
    for r in &s.followup_by_department {
        let mut row = vec![text(r.department.clone()), text(labels::department(refs, &r.department, lang))];
        row.extend(task_cells(&r.discharge));
        row.extend([
            kpi_value(&r.inpatient, lang),
            target_text(&r.inpatient),
            num(r.first_visits),
            num(r.outpatient.completed),
            kpi_value(&r.outpatient_rate, lang),
            target_text(&r.outpatient_rate),
        ]);
        t.push(row);
    }
    t
}

/// Call attempts per outcome.
pub fn call_outcomes(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new("call_outcomes", &[c("outcome"), c("outcome_name"), c("attempts"), c("share_pct")]);
    let c = &s.agg.calls;
    for o in CallOutcome::ALL {
        t.push(vec![
            text(o.key()),
            text(labels::call_outcome(o, lang)),
            num(c.outcome(o)),
            share(c.outcome(o), c.total),
        ]);
    }
    t
}

fn flags_cell(r: &AccountRow, lang: Lang) -> Cell {
    let parts: Vec<String> = r.flags.iter().map(|f| labels::flag(*f, lang)).collect();
    let mut c = text(parts.join(lang.tr().t("report.rule_sep")));
    if !r.flags.is_empty() {
        c.class = Some("bad");
    }
    c
}

/// Accountability per department for the report's month, with the rolling dispute counts and flags.
pub fn accountability_departments(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "accountability_departments",
        &[
            c("department"),
            c("department_name"),
            c("month"),
            c("dissatisfied"),
            c("complaints"),
            c("disputes"),
            c("incidents"),
            c("disputes_3_months"),
            c("disputes_12_months"),
            c("incidents_12_months"),
            c("flags"),
        ],
    )
    .csv_only("month");
    for r in &s.accountability_departments {
        let m = &r.month;
        t.push(vec![
            text(r.who.clone()),
            text(labels::department(refs, &r.who, lang)),
            text(s.accountability_month.to_string()),
            num(m.dissatisfied),
            num(m.complaints),
            num(m.disputes),
            num(m.incidents),
            num(r.disputes_3m),
            num(r.disputes_12m),
            num(r.incidents_12m),
            flags_cell(r, lang),
        ]);
    }
    t
}

/// Accountability per staff member concerned, for the report's month.
pub fn accountability_staff(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "accountability_staff",
        &[
            c("staff"),
            c("staff_name"),
            c("department_name"),
            c("month"),
            c("dissatisfied"),
            c("complaints"),
            c("disputes"),
            c("incidents"),
            c("flags"),
        ],
    )
    .csv_only("month");
    for r in &s.accountability_staff {
        let m = &r.month;
        t.push(vec![
            text(r.who.clone()),
            text(labels::staff(refs, &r.who)),
            text(
                labels::staff_department(refs, &r.who).map(|d| labels::department(refs, &d, lang)).unwrap_or_default(),
            ),
            text(s.accountability_month.to_string()),
            num(m.dissatisfied),
            num(m.complaints),
            num(m.disputes),
            num(m.incidents),
            flags_cell(r, lang),
        ]);
    }
    t
}

/// Monthly accountability counts over the whole look-back, departments then staff.
pub fn accountability_history(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "accountability_history",
        &[
            c("kind"),
            c("who"),
            c("name"),
            c("month"),
            c("dissatisfied"),
            c("complaints"),
            c("disputes"),
            c("incidents"),
        ],
    );
    let acc = &s.agg.accountability;
    let rows = acc
        .departments
        .iter()
        .map(|((w, m), v)| ("department", w, labels::department(refs, w, lang), m, v))
        .chain(acc.staff.iter().map(|((w, m), v)| ("staff", w, labels::staff(refs, w), m, v)));
    for (kind, who, name, m, v) in rows {
        t.push(vec![
            text(kind),
            text(who.clone()),
            text(name),
            text(m.to_string()),
            num(v.dissatisfied),
            num(v.complaints),
            num(v.disputes),
            num(v.incidents),
        ]);
    }
    t
}

/// The tables of the weekly opinion sheet.
pub fn weekly(s: &Summary, refs: &ReferenceData, lang: Lang) -> Vec<Table> {
    vec![
        kpis(s, lang),
        arrivals_by_day(s, lang),
        arrivals_by_origin(s, lang),
        arrivals_by_heard_via(s, lang),
        cancellations_and_changes(s, lang),
        appointments_by_day(s, lang),
        satisfaction_by_question(s, lang),
        satisfaction_by_day(s, lang),
        feedback_reasons(s),
        opinions(s, lang),
        cases_by_grade(s, lang),
        cases_list(s, refs, lang),
        followup_by_group(s, lang),
        call_outcomes(s, lang),
    ]
}

/// The tables of the monthly analysis report.
pub fn monthly(s: &Summary, refs: &ReferenceData, lang: Lang) -> Vec<Table> {
    vec![
        kpis(s, lang),
        arrivals_by_day(s, lang),
        arrivals_by_hour(s),
        arrivals_by_department(s, refs, lang),
        arrivals_by_channel(s, lang),
        arrivals_by_visit_type(s, lang),
        arrivals_by_origin(s, lang),
        arrivals_by_heard_via(s, lang),
        cancellations_and_changes(s, lang),
        waiting_times(s, lang),
        appointments_by_day(s, lang),
        appointment_arrival_rate(s, refs, lang),
        consultations_by_channel(s, lang),
        consultations_by_concern(s, lang),
        consultations_by_department(s, refs, lang),
        satisfaction_by_question(s, lang),
        satisfaction_by_day(s, lang),
        feedback_reasons(s),
        cases_by_grade(s, lang),
        cases_by_department(s, refs, lang),
        followup_by_group(s, lang),
        followup_by_department(s, refs, lang),
        call_outcomes(s, lang),
        accountability_departments(s, refs, lang),
        accountability_staff(s, refs, lang),
        accountability_history(s, refs, lang),
        improvements(s, refs, lang),
    ]
}

/// Improvement measures (整改措施) per department: recorded in the period, due in it and carried out on time or
/// late, and those past their day and not carried out (as of the as-of day), with a total row.
pub fn improvements(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "improvements",
        &[
            c("department"),
            c("department_name"),
            c("planned"),
            ("due", "due_in_period"),
            c("done_on_time"),
            c("done_late"),
            c("open_overdue"),
            ("on_time_pct", "improvement_on_time_pct"),
        ],
    );
    let acc = &s.agg.improvements;
    let mut row = |code: String, name: String, n: &crate::reports::agg::ImprovementCounts| {
        t.push(vec![
            text(code),
            text(name),
            num(n.planned),
            num(n.due),
            num(n.done_on_time),
            num(n.done_late),
            num(n.open_overdue),
            share(n.done_on_time, n.due),
        ]);
    };
    for (d, n) in &acc.by_department {
        row(d.clone(), labels::department(refs, d, lang), n);
    }
    if !acc.by_department.is_empty() {
        row(String::new(), lang.tr().t("report.total").to_string(), &acc.total());
    }
    t
}
