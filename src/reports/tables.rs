//! The breakdowns of a [`Summary`] as tables: one definition, rendered both into the HTML documents and as CSV
//! (UTF-8 with BOM, RFC 4180 quoting, CRLF — the conventions of [`crate::export`]).
//!
//! CSV headers are the stable column keys; category columns come as a code column and a name column in the
//! document's language; percentages are plain numbers with one decimal.

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

/// A column: its stable key (the CSV header) and its title in each language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Stable key.
    pub key: &'static str,
    /// Chinese title.
    pub zh: &'static str,
    /// English title.
    pub en: &'static str,
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
    /// Stable name (the CSV file name without `.csv`).
    pub name: &'static str,
    /// Chinese title.
    pub title_zh: &'static str,
    /// English title.
    pub title_en: &'static str,
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(
        name: &'static str,
        title: (&'static str, &'static str),
        cols: &[(&'static str, &'static str, &'static str)],
    ) -> Self {
        Table {
            name,
            title_zh: title.0,
            title_en: title.1,
            columns: cols
                .iter()
                .map(|(key, zh, en)| Column {
                    key,
                    zh,
                    en,
                    csv_only: cols.iter().any(|(k, _, _)| k.strip_suffix("_name") == Some(*key)),
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
        lang.pick(self.title_zh, self.title_en)
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
        let _ = write!(s, "\n{} {}", lang.pick("目标", "Target"), t.display());
    }
    if k.small_n {
        let _ = write!(s, "\n{}", small_n_text(lang));
    }
    s
}

/// The small-n warning.
pub fn small_n_text(lang: Lang) -> String {
    match lang {
        Lang::Zh => format!("样本量小（n < {}），仅供参考", super::kpi::SMALL_N),
        Lang::En => format!("small sample (n < {}): indicative only", super::kpi::SMALL_N),
    }
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
        Some(true) => lang.pick("是", "yes"),
        Some(false) => lang.pick("否", "no"),
        None => "",
    })
}

fn met(v: Option<bool>, lang: Lang) -> Cell {
    let mut c = text(match v {
        Some(true) => lang.pick("达标", "met"),
        Some(false) => lang.pick("未达标", "not met"),
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
        ("指标一览", "KPIs"),
        &[
            ("metric", "指标代码", "Metric"),
            ("name", "指标", "KPI"),
            ("numerator", "分子", "Numerator"),
            ("denominator", "分母", "Denominator"),
            ("n", "样本量 n", "n"),
            ("value_pct", "数值(%)", "Value (%)"),
            ("ci95_low_pct", "95%置信下限(%)", "95% CI low (%)"),
            ("ci95_high_pct", "95%置信上限(%)", "95% CI high (%)"),
            ("target", "目标", "Target"),
            ("meets_target", "是否达标", "Target met"),
            ("small_n", "样本量小", "Small n"),
            ("formula", "计算公式", "Formula"),
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
    let mut cols = vec![("hour", "时段", "Hour"), ("arrivals", "来院人次", "Arrivals")];
    cols.extend(Need::ALL.iter().map(|n| needs_column(*n)));
    let mut t = Table::new("arrivals_by_hour", ("分时段来院人次及特殊需求", "Arrivals and needs by hour"), &cols);
    let a = &s.agg.arrivals;
    for h in (0..24).filter(|h| a.by_hour[*h] > 0) {
        let mut row = vec![text(format!("{h:02}:00")), num(a.by_hour[h])];
        row.extend(Need::ALL.iter().map(|n| num(a.needs_by_hour.get(n).map_or(0, |v| v[h]))));
        t.push(row);
    }
    t
}

fn needs_column(n: Need) -> (&'static str, &'static str, &'static str) {
    match n {
        Need::Wheelchair => ("wheelchair", "轮椅", "Wheelchair"),
        Need::Stretcher => ("stretcher", "平车", "Stretcher"),
        Need::Escort => ("escort", "陪同", "Escort"),
        Need::Elderly => ("elderly", "老年人", "Elderly"),
        Need::Disabled => ("disabled", "残障", "Disabled"),
        Need::Interpreter => ("interpreter", "翻译", "Interpreter"),
    }
}

fn weekday(d: chrono::NaiveDate, lang: Lang) -> &'static str {
    let i = d.weekday().num_days_from_monday() as usize;
    match lang {
        Lang::Zh => ["周一", "周二", "周三", "周四", "周五", "周六", "周日"][i],
        Lang::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][i],
    }
}

/// Arrivals per day of the period (days without arrivals included).
pub fn arrivals_by_day(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "arrivals_by_day",
        ("每日来院人次", "Arrivals by day"),
        &[("date", "日期", "Date"), ("weekday", "星期", "Weekday"), ("arrivals", "来院人次", "Arrivals")],
    );
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
        ("各科室来院人次", "Arrivals by department"),
        &[
            ("department", "科室代码", "Code"),
            ("department_name", "科室", "Department"),
            ("arrivals", "来院人次", "Arrivals"),
            ("first_visit", "初诊", "First visit"),
            ("return_visit", "复诊", "Return visit"),
            ("share_pct", "占比(%)", "Share (%)"),
        ],
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
    let mut t = Table::new(
        "arrivals_by_channel",
        ("来院渠道", "Arrivals by channel"),
        &[
            ("channel", "渠道代码", "Code"),
            ("channel_name", "来院渠道", "Channel"),
            ("arrivals", "来院人次", "Arrivals"),
            ("share_pct", "占比(%)", "Share (%)"),
        ],
    );
    let a = &s.agg.arrivals;
    for c in ArrivalChannel::ALL {
        let n = a.by_channel.get(&c).copied().unwrap_or(0);
        t.push(vec![text(c.key()), text(labels::channel(c, lang)), num(n), share(n, a.total)]);
    }
    t
}

/// First and return visits.
pub fn arrivals_by_visit_type(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "arrivals_by_visit_type",
        ("初诊与复诊", "First and return visits"),
        &[
            ("visit_type", "类型代码", "Code"),
            ("visit_type_name", "类型", "Visit type"),
            ("arrivals", "来院人次", "Arrivals"),
            ("share_pct", "占比(%)", "Share (%)"),
        ],
    );
    let a = &s.agg.arrivals;
    for (v, n) in [(VisitType::First, a.first), (VisitType::Return, a.returning)] {
        let (key, name) = match v {
            VisitType::First => ("first", lang.pick("初诊", "First visit")),
            VisitType::Return => ("return", lang.pick("复诊", "Return visit")),
        };
        t.push(vec![text(key), text(name), num(n), share(n, a.total)]);
    }
    t
}

/// Time spent in each visit step: median and 90th percentile against the board's limit.
pub fn waiting_times(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "waiting_times",
        ("各环节等候/停留时间（分钟）", "Time in each visit step (minutes)"),
        &[
            ("step", "环节代码", "Code"),
            ("step_name", "环节", "Step"),
            ("n", "样本量 n", "n"),
            ("median_min", "中位数(分钟)", "Median (min)"),
            ("p90_min", "P90(分钟)", "P90 (min)"),
            ("limit_min", "提醒阈值(分钟)", "Alert limit (min)"),
            ("over_limit", "超阈值人次", "Over the limit"),
            ("over_limit_pct", "超阈值占比(%)", "Over the limit (%)"),
        ],
    );
    for w in &s.waits {
        let (key, name) = match w.step {
            Some(st) => (st.key(), labels::step(st, lang)),
            None => ("whole_visit", lang.pick("全程（到达至完成/住院）", "Whole visit (arrival to done/admitted)")),
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
        ("咨询渠道", "Consultations by channel"),
        &[
            ("channel", "渠道代码", "Code"),
            ("channel_name", "咨询渠道", "Channel"),
            ("consultations", "咨询人数", "Consultations"),
            ("share_pct", "占比(%)", "Share (%)"),
        ],
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
    let mut t = Table::new(
        "consultations_by_concern",
        ("咨询关注点", "Consultations by concern"),
        &[
            ("concern", "代码", "Code"),
            ("concern_name", "关注点", "Concern"),
            ("consultations", "咨询人数", "Consultations"),
            ("share_pct", "占比(%)", "Share (%)"),
        ],
    );
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
        ("各科室咨询与来院转化", "Consultations and conversion by department"),
        &[
            ("department", "科室代码", "Code"),
            ("department_name", "科室", "Department"),
            ("consultations", "咨询人数", "Consultations"),
            ("appointments", "预约人数", "Appointments"),
            ("came", "来院人数", "Came"),
            ("conversion_pct", "来院转化率(%)", "Conversion (%)"),
        ],
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
    let mut cols = vec![("question", "题目代码", "Code"), ("question_name", "题目", "Question")];
    cols.extend(Rating::ALL.iter().map(|r| rating_column(*r)));
    cols.extend([
        ("scored_n", "有效回答 n", "Scored n"),
        ("positive_pct", "满意率(%)", "Satisfied (%)"),
        ("positive_ci95_low_pct", "满意率95%下限", "Satisfied 95% CI low"),
        ("positive_ci95_high_pct", "满意率95%上限", "Satisfied 95% CI high"),
        ("negative_pct", "不满意率(%)", "Dissatisfied (%)"),
        ("negative_ci95_low_pct", "不满意率95%下限", "Dissatisfied 95% CI low"),
        ("negative_ci95_high_pct", "不满意率95%上限", "Dissatisfied 95% CI high"),
        ("small_n", "样本量小", "Small n"),
        ("incomplete_answers", "未完成问卷中的回答", "Answers in incomplete surveys"),
    ]);
    let mut t = Table::new("satisfaction_by_question", ("各题满意度", "Satisfaction by question"), &cols);
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

fn rating_column(r: Rating) -> (&'static str, &'static str, &'static str) {
    match r {
        Rating::VerySatisfied => ("very_satisfied", "非常满意", "Very satisfied"),
        Rating::Satisfied => ("satisfied", "满意", "Satisfied"),
        Rating::Neutral => ("neutral", "一般", "Neutral"),
        Rating::Dissatisfied => ("dissatisfied", "不满意", "Dissatisfied"),
        Rating::VeryDissatisfied => ("very_dissatisfied", "非常不满意", "Very dissatisfied"),
        Rating::DontKnow => ("dont_know", "不清楚", "Don't know"),
    }
}

/// Overall satisfaction per day.
pub fn satisfaction_by_day(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "satisfaction_by_day",
        ("每日总体满意率", "Overall satisfaction by day"),
        &[
            ("date", "日期", "Date"),
            ("scored_n", "有效回答 n", "Scored n"),
            ("satisfied", "满意人数", "Satisfied"),
            ("positive_pct", "满意率(%)", "Satisfied (%)"),
            ("ci95_low_pct", "95%下限", "95% CI low"),
            ("ci95_high_pct", "95%上限", "95% CI high"),
            ("small_n", "样本量小", "Small n"),
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
    let mut t = Table::new(
        "feedback_reasons",
        ("患者选择的原因", "Reasons patients chose"),
        &[("reason", "原因", "Reason"), ("count", "次数", "Count")],
    );
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
        ("患者意见与建议", "Patients' comments and suggestions"),
        &[
            ("time", "时间", "Time"),
            ("overall", "总体评价", "Overall"),
            ("dissatisfied_with", "不满意项目", "Dissatisfied with"),
            ("reasons", "所选原因", "Reasons"),
            ("comment", "意见内容", "Comment"),
            ("wants_contact", "要求回电", "Wants a call"),
            ("complete", "问卷完成", "Survey complete"),
        ],
    );
    let offset = s.params().offset;
    for c in &s.agg.feedback.comments {
        let dims: Vec<&str> = c.dissatisfied_with.iter().map(|d| labels::dimension(*d, lang)).collect();
        t.push(vec![
            text(c.at.local(offset).format("%Y-%m-%d %H:%M").to_string()),
            text(labels::rating(c.overall, lang)),
            text(dims.join(lang.pick("、", "; "))),
            text(c.reasons.join(lang.pick("、", "; "))),
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
        ("客诉登记", "Cases received"),
        &[
            ("case", "编号", "Case"),
            ("received_at", "受理时间", "Received"),
            ("grade", "等级", "Grade"),
            ("channel", "途径", "Channel"),
            ("departments", "涉及科室", "Departments"),
            ("complainant", "投诉人", "Complainant"),
            ("facts", "事实与理由", "Facts"),
            ("request", "诉求", "Request"),
            ("status", "状态", "Status"),
            ("due", "办结期限", "Due"),
            ("standing", "办理时效", "Standing"),
            ("handling_rating", "处理满意度", "Handling rating"),
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
            text(depts.join(lang.pick("、", "; "))),
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

const CLOSURE_COLS: [(&str, &str, &str); 6] = [
    ("received", "受理数", "Received"),
    ("on_time", "按期办结", "Closed on time"),
    ("late", "超期办结", "Closed late"),
    ("open_not_due", "办理中未到期", "Open, not due"),
    ("overdue", "逾期未结", "Open, overdue"),
    ("on_time_pct", "按期办结率(%)", "On time (%)"),
];

/// Cases per grade and their standing.
pub fn cases_by_grade(s: &Summary, lang: Lang) -> Table {
    let mut cols = vec![("grade", "等级代码", "Code"), ("grade_name", "等级", "Grade")];
    cols.extend(CLOSURE_COLS);
    let mut t = Table::new("cases_by_grade", ("各等级客诉及办结时效", "Cases by grade"), &cols);
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
    let mut cols = vec![("department", "科室代码", "Code"), ("department_name", "科室", "Department")];
    cols.extend(CaseGrade::ALL.iter().map(|g| grade_column(*g)));
    cols.extend(CLOSURE_COLS);
    let mut t = Table::new("cases_by_department", ("各科室客诉及办结时效", "Cases by department"), &cols);
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

fn grade_column(g: CaseGrade) -> (&'static str, &'static str, &'static str) {
    match g {
        CaseGrade::Feedback => ("feedback", "情况反馈", "Feedback"),
        CaseGrade::Suggestion => ("suggestion", "建议", "Suggestion"),
        CaseGrade::Dissatisfied => ("dissatisfied", "不满意", "Dissatisfied"),
        CaseGrade::VeryDissatisfied => ("very_dissatisfied", "非常不满意", "Very dissatisfied"),
        CaseGrade::Complaint => ("complaint", "投诉", "Complaint"),
        CaseGrade::Dispute => ("dispute", "纠纷", "Dispute"),
        CaseGrade::Incident => ("incident", "事故", "Incident"),
    }
}

const TASK_COLS: [(&str, &str, &str); 9] = [
    ("tasks", "任务数", "Tasks"),
    ("completed", "已完成", "Completed"),
    ("unreachable", "联系不上", "Unreachable"),
    ("refused", "拒访", "Refused"),
    ("deceased", "已故", "Deceased"),
    ("cancelled", "已取消", "Cancelled"),
    ("pending", "窗口内待访", "Pending (in window)"),
    ("overdue", "逾期未访", "Overdue"),
    ("eligible", "应回访", "Eligible"),
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
    let mut cols = vec![("group", "类别代码", "Code"), ("group_name", "回访类别", "Follow-up")];
    cols.extend(TASK_COLS);
    let mut t = Table::new("followup_by_group", ("回访任务完成情况", "Follow-up tasks"), &cols);
    for g in TaskGroup::ALL {
        let mut row = vec![text(g.key()), text(labels::task_group(g, lang))];
        row.extend(task_cells(&s.agg.followups.group(g)));
        t.push(row);
    }
    t
}

/// Follow-up rates per department against the targets.
pub fn followup_by_department(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut cols = vec![("department", "科室代码", "Code"), ("department_name", "科室", "Department")];
    cols.extend(TASK_COLS.iter().map(|(k, zh, en)| match *k {
        "tasks" => ("discharges", "出院人数", "Discharges"),
        _ => (*k, *zh, *en),
    }));
    cols.extend([
        ("inpatient_rate_pct", "住院回访率(%)", "Inpatient rate (%)"),
        ("inpatient_target", "住院目标", "Inpatient target"),
        ("first_visits", "初诊人次", "First visits"),
        ("outpatient_completed", "门诊回访完成", "Outpatient completed"),
        ("outpatient_rate_pct", "门诊回访率(%)", "Outpatient rate (%)"),
        ("outpatient_target", "门诊目标", "Outpatient target"),
    ]);
    let mut t = Table::new("followup_by_department", ("各科室回访率", "Follow-up rates by department"), &cols)
        .csv_only("inpatient_target")
        .csv_only("outpatient_target");
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
    let mut t = Table::new(
        "call_outcomes",
        ("回访电话结果", "Call outcomes"),
        &[
            ("outcome", "结果代码", "Code"),
            ("outcome_name", "结果", "Outcome"),
            ("attempts", "次数", "Attempts"),
            ("share_pct", "占比(%)", "Share (%)"),
        ],
    );
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
    let mut c = text(parts.join(lang.pick("；", "; ")));
    if !r.flags.is_empty() {
        c.class = Some("bad");
    }
    c
}

/// Accountability per department for the report's month, with the rolling dispute counts and flags.
pub fn accountability_departments(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "accountability_departments",
        ("科室责任考核", "Department accountability"),
        &[
            ("department", "科室代码", "Code"),
            ("department_name", "科室", "Department"),
            ("month", "月份", "Month"),
            ("dissatisfied", "不满意", "Dissatisfied"),
            ("complaints", "投诉", "Complaints"),
            ("disputes", "纠纷", "Disputes"),
            ("incidents", "事故", "Incidents"),
            ("disputes_3_months", "近3个月纠纷", "Disputes, 3 months"),
            ("disputes_12_months", "近12个月纠纷", "Disputes, 12 months"),
            ("flags", "触发的考核规则", "Rules crossed"),
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
            flags_cell(r, lang),
        ]);
    }
    t
}

/// Accountability per staff member concerned, for the report's month.
pub fn accountability_staff(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "accountability_staff",
        ("个人责任考核", "Staff accountability"),
        &[
            ("staff", "工号/姓名", "Staff"),
            ("staff_name", "姓名", "Name"),
            ("department_name", "科室", "Department"),
            ("month", "月份", "Month"),
            ("dissatisfied", "不满意", "Dissatisfied"),
            ("complaints", "投诉", "Complaints"),
            ("disputes", "纠纷", "Disputes"),
            ("incidents", "事故", "Incidents"),
            ("flags", "触发的考核规则", "Rules crossed"),
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
        ("近12个月责任考核明细", "Accountability, last 12 months"),
        &[
            ("kind", "类别", "Kind"),
            ("who", "科室代码/工号", "Code / staff"),
            ("name", "名称", "Name"),
            ("month", "月份", "Month"),
            ("dissatisfied", "不满意", "Dissatisfied"),
            ("complaints", "投诉", "Complaints"),
            ("disputes", "纠纷", "Disputes"),
            ("incidents", "事故", "Incidents"),
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
        waiting_times(s, lang),
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
    ]
}
