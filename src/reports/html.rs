//! The printable documents: the weekly opinion sheet (《医院客户服务意见表》) and the monthly analysis report.
//!
//! Each is one self-contained HTML file: inline CSS with print rules for A4, charts as inline SVG, no scripts, no
//! external resources. Every text that comes from records or reference data is escaped. Print to PDF from any
//! browser (Ctrl+P → Save as PDF); sections and table rows avoid breaking across pages, table headers repeat.

use std::fmt::Write as _;

use chrono::Datelike;

use super::agg::{Closure, TaskGroup};
use super::kpi::Kpi;
use super::summary::Summary;
use super::svg::{self, Bar, Point, RateBar, Series, colour};
use super::tables::{self, Table};
use super::{Lang, PeriodKind, labels};
use crate::model::{CaseGrade, Moment, ReferenceData};

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// How a document is produced.
#[derive(Debug, Clone)]
pub struct DocOptions {
    /// Language of the document's own text.
    pub lang: Lang,
    /// When it was generated (printed in the header).
    pub generated_at: Moment,
    /// The hospital or site name for the header, if known.
    pub organisation: Option<String>,
}

const CSS: &str = r#"
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Noto Sans SC", "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
  "Hiragino Sans GB", "WenQuanYi Micro Hei", sans-serif; font-size: 10pt; color: #222; line-height: 1.45;
  margin: 0; background: #f3f5f8; }
main { max-width: 190mm; margin: 0 auto; background: #fff; padding: 10mm 10mm 14mm; }
h1 { font-size: 17pt; text-align: center; margin: 0 0 1.5mm; letter-spacing: 0.05em; }
.sub { text-align: center; color: #555; margin: 0 0 4mm; }
h2 { font-size: 12.5pt; border-bottom: 2px solid #1f5fa8; padding-bottom: 0.8mm; margin: 6mm 0 2mm;
  break-after: avoid; page-break-after: avoid; }
h3 { font-size: 10.5pt; margin: 3.5mm 0 1.5mm; break-after: avoid; page-break-after: avoid; }
p { margin: 1mm 0 2mm; }
table { width: 100%; border-collapse: collapse; font-size: 8.6pt; margin: 1mm 0 3mm; }
table[data-table] { table-layout: fixed; }
table[data-table] th:first-child { width: 17%; }
table[data-table] td, table[data-table] th { overflow-wrap: break-word; }
table[data-table="headline_kpis"], table[data-table="definitions"] { table-layout: auto; }
table[data-table="headline_kpis"] th:first-child, table[data-table="definitions"] th:first-child { width: auto; }
th, td { border: 1px solid #b9c2cc; padding: 0.8mm 1.4mm; vertical-align: top; text-align: left; }
th { background: #eaf0f7; font-weight: 600; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
table.wide { font-size: 7.4pt; }
table[data-table^="accountability"] th:last-child { width: 28%; }
td.nowrap { white-space: nowrap; }
table[data-table="cases_list"], table[data-table="opinions"] { font-size: 7.6pt; table-layout: fixed; }
table[data-table="cases_list"] td, table[data-table="opinions"] td,
table[data-table="cases_list"] th, table[data-table="opinions"] th { overflow-wrap: break-word; white-space: normal; }
table[data-table="cases_list"] th:nth-child(1) { width: 8%; }
table[data-table="cases_list"] th:nth-child(2) { width: 9%; }
table[data-table="cases_list"] th:nth-child(3) { width: 10%; }
table[data-table="cases_list"] th:nth-child(4) { width: 10%; }
table[data-table="cases_list"] th:nth-child(5) { width: 7%; }
table[data-table="cases_list"] th:nth-child(6) { width: 15%; }
table[data-table="cases_list"] th:nth-child(7) { width: 10%; }
table[data-table="cases_list"] th:nth-child(8) { width: 9%; }
table[data-table="cases_list"] th:nth-child(9) { width: 8%; }
table[data-table="cases_list"] th:nth-child(10) { width: 8%; }
table[data-table="cases_list"] th:nth-child(11) { width: 6%; }
table[data-table="opinions"] th:nth-child(1) { width: 13%; }
table[data-table="opinions"] th:nth-child(2), table[data-table="opinions"] th:nth-child(6),
table[data-table="opinions"] th:nth-child(7) { width: 9%; }
table[data-table="opinions"] th:nth-child(3), table[data-table="opinions"] th:nth-child(4) { width: 15%; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.ok { color: #2e7d32; font-weight: 600; }
.bad { color: #c62828; font-weight: 600; }
.small { color: #8a8a8a; font-style: italic; }
.badge { display: inline-block; border: 1px solid #8a8a8a; border-radius: 2px; padding: 0 1mm; font-size: 7.5pt;
  color: #6a6a6a; margin-left: 1mm; font-style: normal; font-weight: normal; }
.chart { display: block; width: 100%; height: auto; margin: 1mm 0 3mm; break-inside: avoid; page-break-inside: avoid; }
.meta td { border: none; padding: 0.5mm 1mm; }
.meta { margin-bottom: 2mm; }
.glance { display: flex; flex-wrap: wrap; gap: 2mm; margin: 1mm 0 3mm; }
.glance div { flex: 1 1 28mm; border: 1px solid #b9c2cc; border-radius: 1.5mm; padding: 1.5mm 2mm; }
.glance b { display: block; font-size: 14pt; }
.glance span { color: #555; font-size: 8.5pt; }
ul.attention { margin: 1mm 0 3mm 5mm; padding: 0; }
ul.attention li { margin: 0.6mm 0; }
.note { color: #555; font-size: 8.3pt; }
.fill { border: 1px solid #b9c2cc; min-height: 34mm; margin: 1mm 0 3mm; padding: 2mm; color: #999; font-size: 8.5pt; }
.signs { display: flex; gap: 6mm; margin-top: 4mm; break-inside: avoid; page-break-inside: avoid; }
.signs div { flex: 1; border-bottom: 1px solid #444; padding-top: 8mm; font-size: 9pt; }
section { break-inside: auto; }
.keep { break-inside: avoid; page-break-inside: avoid; }
footer { margin-top: 6mm; color: #777; font-size: 8pt; text-align: center; }
@media print {
  body { background: #fff; }
  main { max-width: none; padding: 0; }
}
"#;

struct Doc {
    out: String,
    lang: Lang,
}

impl Doc {
    fn new(title: &str, lang: Lang) -> Self {
        let mut out = String::with_capacity(256 * 1024);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
             <style>{CSS}</style>\n</head>\n<body>\n<main>\n",
            lang.tag(),
            esc(title)
        );
        Doc { out, lang }
    }

    fn t(&self, key: &'static str) -> &'static str {
        self.lang.tr().t(key)
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn h2(&mut self, id: &str, text: &str) {
        let _ = writeln!(self.out, "<h2 id=\"{}\">{}</h2>", esc(id), esc(text));
    }

    fn h3(&mut self, text: &str) {
        let _ = writeln!(self.out, "<h3>{}</h3>", esc(text));
    }

    fn p(&mut self, text: &str) {
        let _ = writeln!(self.out, "<p>{}</p>", esc(text));
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "<p class=\"note\">{}</p>", esc(text));
    }

    fn section(&mut self, id: &str) {
        let _ = writeln!(self.out, "<section data-section=\"{}\">", esc(id));
    }

    fn end_section(&mut self) {
        self.out.push_str("</section>\n");
    }

    /// A table with a heading (its title).
    fn table(&mut self, t: &Table) {
        self.h3(t.title(self.lang));
        self.table_only(t);
    }

    fn table_only(&mut self, t: &Table) {
        let lang = self.lang;
        let shown: Vec<bool> = t.columns.iter().map(|c| !c.csv_only).collect();
        let width = shown.iter().filter(|s| **s).count();
        let wide = if width > 10 { " class=\"wide\"" } else { "" };
        let _ = write!(self.out, "<table data-table=\"{}\"{wide}><thead><tr>", esc(t.name));
        for c in t.columns.iter().filter(|c| !c.csv_only) {
            let _ = write!(self.out, "<th>{}</th>", esc(c.title(lang)));
        }
        self.out.push_str("</tr></thead><tbody>\n");
        if t.rows.is_empty() {
            let _ = write!(
                self.out,
                "<tr><td colspan=\"{}\" class=\"small\">{}</td></tr>",
                width,
                esc(lang.tr().t("report.doc.no_records_in_this_period"))
            );
        }
        for r in &t.rows {
            self.out.push_str("<tr>");
            for (c, _) in r.iter().zip(&shown).filter(|(_, s)| **s) {
                let mut class: Vec<&str> = Vec::new();
                if c.numeric {
                    class.push("num");
                }
                if let Some(k) = c.class {
                    class.push(k);
                }
                self.out.push_str("<td");
                if !class.is_empty() {
                    let _ = write!(self.out, " class=\"{}\"", class.join(" "));
                }
                if let Some(title) = &c.title {
                    let _ = write!(self.out, " title=\"{}\"", esc(title));
                }
                let _ = write!(self.out, ">{}</td>", esc(&c.text));
            }
            self.out.push_str("</tr>\n");
        }
        self.out.push_str("</tbody></table>\n");
    }

    fn finish(mut self, footer: &str) -> String {
        let _ = write!(self.out, "<footer>{}</footer>\n</main>\n</body>\n</html>\n", esc(footer));
        self.out
    }
}

/// The headline KPI table: value, interval, numerator/denominator, n, target and status; formula on hover. Each
/// row carries `data-kpi`, `data-numerator` and `data-denominator` for checking.
fn kpi_table(d: &mut Doc, kpis: &[&Kpi]) {
    let lang = d.lang;
    let _ = write!(
        d.out,
        "<table data-table=\"headline_kpis\" class=\"keep\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(d.t("report.doc.kpi")),
        esc(d.t("report.doc.value")),
        esc(d.t("report.doc.ci95")),
        esc(d.t("report.doc.numerator_denominator")),
        esc(d.t("report.doc.n")),
        esc(d.t("report.doc.target")),
        esc(d.t("report.doc.status")),
    );
    d.out.push('\n');
    for k in kpis {
        let status = status_html(k, lang);
        let _ = write!(
            d.out,
            "<tr data-kpi=\"{key}\" data-numerator=\"{num}\" data-denominator=\"{den}\" title=\"{hover}\">\
             <td>{name}</td><td class=\"num{cls}\">{val}</td><td class=\"num\">{ci}</td>\
             <td class=\"num\">{num} / {den}</td><td class=\"num\">{n}{small}</td><td>{target}</td><td>{status}</td></tr>",
            key = esc(&k.metric.key()),
            num = k.numerator,
            den = k.denominator,
            hover = esc(&tables::hover(k, lang)),
            name = esc(&labels::metric(k.metric, lang)),
            cls = match (k.meets, k.small_n) {
                (Some(true), false) => " ok",
                (Some(false), false) => " bad",
                (_, true) if k.denominator > 0 => " small",
                _ => "",
            },
            val = esc(&k.pct_text()),
            ci = esc(&k.ci_text()),
            n = k.n,
            small = if k.small_n && k.denominator > 0 {
                format!("<span class=\"badge\">{}</span>", esc(lang.tr().t("report.doc.small_n")))
            } else {
                String::new()
            },
            target = esc(&k.target.map_or_else(|| "—".into(), |t| t.display())),
        );
        d.out.push('\n');
    }
    d.out.push_str("</tbody></table>\n");
}

fn status_html(k: &Kpi, lang: Lang) -> String {
    if k.denominator == 0 {
        return format!("<span class=\"small\">{}</span>", esc(lang.tr().t("report.doc.no_data")));
    }
    let base = match k.meets {
        Some(true) => format!("<span class=\"ok\">✓ {}</span>", esc(lang.tr().t("report.doc.met"))),
        Some(false) => format!("<span class=\"bad\">✗ {}</span>", esc(lang.tr().t("report.doc.not_met"))),
        None => "—".to_string(),
    };
    if k.small_n {
        format!("{base} <span class=\"small\">({})</span>", esc(lang.tr().t("report.doc.small_n_indicative")))
    } else {
        base
    }
}

fn header(d: &mut Doc, title: &str, s: &Summary, opts: &DocOptions) {
    let p = s.params();
    let lang = d.lang;
    let _ = writeln!(d.out, "<h1>{}</h1>", esc(title));
    let (from, to) = (p.period.from, p.period.to);
    let week = from.iso_week();
    let tr = lang.tr();
    let period = match p.period.kind {
        PeriodKind::Week => tr.f(
            "report.doc.period_week",
            &[("from", &from), ("to", &to), ("year", &week.year()), ("week", &week.week())],
        ),
        PeriodKind::Month => {
            let month = from.format(tr.t("report.doc.month_format"));
            tr.f("report.doc.period_month", &[("month", &month), ("from", &from), ("to", &to)])
        }
        PeriodKind::Custom => tr.f("report.doc.period_custom", &[("from", &from), ("to", &to)]),
    };
    let _ = writeln!(d.out, "<p class=\"sub\" data-period=\"{}\">{}</p>", esc(&p.period.slug()), esc(&period));
    let generated = opts.generated_at.local(p.offset).format("%Y-%m-%d %H:%M").to_string();
    let org = opts.organisation.clone().unwrap_or_else(|| d.t("report.doc.customer_service_centre").to_string());
    let _ = writeln!(
        d.out,
        "<table class=\"meta\"><tr><td>{}：{}</td><td>{}：{}</td><td>{}：{}</td></tr></table>",
        esc(d.t("report.doc.department")),
        esc(&org),
        esc(d.t("report.doc.status_as_of")),
        esc(&p.as_of.to_string()),
        esc(d.t("report.doc.generated")),
        esc(&generated),
    );
}

fn glance(d: &mut Doc, items: &[(String, String)]) {
    d.out.push_str("<div class=\"glance keep\">");
    for (v, label) in items {
        let _ = write!(d.out, "<div><b>{}</b><span>{}</span></div>", esc(v), esc(label));
    }
    d.out.push_str("</div>\n");
}

/// Points that need a manager's attention, from the figures.
fn attention(s: &Summary, lang: Lang, monthly: bool) -> Vec<String> {
    let tr = lang.tr();
    let mut out = Vec::new();
    for k in s.headline() {
        if k.meets == Some(false) {
            let name = labels::metric(k.metric, lang);
            let target = k.target.map(|t| t.display()).unwrap_or_default();
            let small = if k.small_n { lang.tr().t("report.doc.small_n_suffix") } else { "" };
            out.push(tr.f(
                "report.doc.attention_target",
                &[("name", &name), ("value", &k.pct_text()), ("target", &target), ("small", &small)],
            ));
        }
    }
    let overdue = s.agg.cases.closure_total().overdue;
    if overdue > 0 {
        out.push(tr.f("report.doc.attention_overdue_cases", &[("n", &overdue)]));
    }
    let fb = &s.agg.feedback;
    if fb.dissatisfied_with_contact > 0 {
        let n = fb.dissatisfied_with_contact;
        out.push(tr.f("report.doc.attention_call_back", &[("n", &n)]));
    }
    if s.agg.calls.worrying > 0 {
        let n = s.agg.calls.worrying;
        out.push(tr.f("report.doc.attention_worrying", &[("n", &n)]));
    }
    let od = s.agg.followups.group(TaskGroup::Discharge).overdue + s.agg.followups.group(TaskGroup::Outpatient).overdue;
    if od > 0 {
        out.push(tr.f("report.doc.attention_followup_overdue", &[("n", &od)]));
    }
    if monthly {
        let flagged = s.accountability_departments.iter().filter(|r| !r.flags.is_empty()).count()
            + s.accountability_staff.iter().filter(|r| !r.flags.is_empty()).count();
        if flagged > 0 {
            out.push(tr.f("report.doc.attention_accountability", &[("n", &flagged)]));
        }
    }
    if fb.incomplete > 0 {
        out.push(tr.f("report.doc.attention_incomplete", &[("total", &fb.total), ("incomplete", &fb.incomplete)]));
    }
    out
}

/// At most this many skipped records are named in a document's note; the rest are counted.
const SKIPPED_NAMED: usize = 20;

/// A note naming the records left out of every figure for an impossible time (nothing when there are none).
fn skipped_note(d: &mut Doc, s: &Summary) {
    let n = s.skipped_count();
    if n == 0 {
        return;
    }
    let named: Vec<String> =
        s.skipped.iter().take(SKIPPED_NAMED).map(|r| format!("{} {} ({})", r.kind, r.id, r.reason)).collect();
    let more = n.saturating_sub(named.len() as u64);
    let tr = d.lang.tr();
    let tail = if more > 0 { tr.f("report.doc.skipped_more", &[("n", &more)]) } else { String::new() };
    // The record list goes in last, so nothing in it is taken for a placeholder.
    let text =
        tr.f("report.doc.skipped", &[("n", &n), ("more", &tail), ("records", &named.join(tr.t("report.rule_sep")))]);
    let _ = writeln!(d.out, "<p class=\"note\" data-skipped=\"{n}\">{}</p>", esc(&text));
}

fn attention_list(d: &mut Doc, items: &[String]) {
    if items.is_empty() {
        d.p(d.lang.tr().t("report.doc.all_targets_met"));
        return;
    }
    d.out.push_str("<ul class=\"attention\">");
    for i in items {
        let _ = write!(d.out, "<li>{}</li>", esc(i));
    }
    d.out.push_str("</ul>\n");
}

fn hour_chart(s: &Summary, lang: Lang) -> String {
    let a = &s.agg.arrivals;
    let first = a.by_hour.iter().position(|n| *n > 0).unwrap_or(7).min(7);
    let last = a.by_hour.iter().rposition(|n| *n > 0).unwrap_or(18).max(18);
    let bars: Vec<Bar> = (first..=last)
        .map(|h| Bar {
            label: format!("{h:02}"),
            value: a.by_hour[h] as f64,
            colour: colour::PRIMARY,
            title: format!("{h:02}:00–{h:02}:59 · {} {}", a.by_hour[h], lang.tr().t("report.doc.arrivals_unit")),
        })
        .collect();
    svg::bar_chart(lang.tr().t("report.doc.hour_chart"), &bars, "")
}

fn day_chart(s: &Summary, lang: Lang) -> String {
    let bars: Vec<Bar> = s
        .params()
        .period
        .days()
        .map(|d| {
            let n = s.agg.arrivals.by_day.get(&d).copied().unwrap_or(0);
            Bar {
                label: d.format("%m-%d").to_string(),
                value: n as f64,
                colour: colour::SECONDARY,
                title: format!("{d} · {n} {}", lang.tr().t("report.doc.arrivals_unit")),
            }
        })
        .collect();
    svg::bar_chart(lang.tr().t("report.doc.day_chart"), &bars, "")
}

fn trend_chart(s: &Summary, lang: Lang) -> String {
    let points: Vec<Point> = s
        .trend
        .iter()
        .map(|(d, k)| Point {
            label: d.format("%m-%d").to_string(),
            value: k.pct(),
            small_n: k.small_n,
            title: format!("{d} · {} · {}/{} (n = {})", k.pct_text(), k.numerator, k.denominator, k.n),
        })
        .collect();
    let target = s.overall_satisfaction.target.map(|t| t.pct);
    let label = target.map(|t| format!("{} {}%", lang.tr().t("report.doc.target_lower"), super::kpi::trim_float(t)));
    svg::line_chart(lang.tr().t("report.doc.trend_chart"), &points, target.zip(label.as_deref()))
}

fn grade_chart(s: &Summary, lang: Lang) -> String {
    let cats: Vec<String> = CaseGrade::ALL.iter().map(|g| labels::grade(*g, lang).to_string()).collect();
    let series = [
        (Closure::OnTime, colour::OK),
        (Closure::Late, colour::WARN),
        (Closure::OpenNotDue, colour::SECONDARY),
        (Closure::Overdue, colour::BAD),
    ]
    .into_iter()
    .map(|(c, col)| Series {
        label: labels::closure(c, lang).to_string(),
        colour: col,
        values: s
            .cases_by_grade
            .iter()
            .map(|g| {
                (match c {
                    Closure::OnTime => g.counts.on_time,
                    Closure::Late => g.counts.late,
                    Closure::OpenNotDue => g.counts.open_not_due,
                    Closure::Overdue => g.counts.overdue,
                }) as f64
            })
            .collect(),
    })
    .collect::<Vec<_>>();
    svg::stacked_bar_chart(lang.tr().t("report.doc.grade_chart"), &cats, &series)
}

fn followup_chart(s: &Summary, refs: &ReferenceData, lang: Lang, inpatient: bool) -> String {
    let mut bars: Vec<RateBar> = Vec::new();
    let total = if inpatient { &s.inpatient_followup } else { &s.outpatient_followup };
    let mut push = |label: String, k: &Kpi| {
        bars.push(RateBar {
            label,
            value: k.pct(),
            meets: k.meets,
            small_n: k.small_n,
            note: format!("{}/{}", k.numerator, k.denominator),
            title: tables::hover(k, lang),
        });
    };
    push(lang.tr().t("report.doc.all_departments").to_string(), total);
    for r in &s.followup_by_department {
        let k = if inpatient { &r.inpatient } else { &r.outpatient_rate };
        if k.denominator > 0 {
            push(labels::department(refs, &r.department, lang), k);
        }
    }
    let target = total.target.map(|t| t.pct);
    let label = target.map(|t| format!("{} {}%", lang.tr().t("report.doc.target_lower"), super::kpi::trim_float(t)));
    let title = if inpatient {
        lang.tr().t("report.doc.inpatient_followup_chart")
    } else {
        lang.tr().t("report.doc.outpatient_followup_chart")
    };
    svg::rate_bars(title, &bars, target.zip(label.as_deref()))
}

fn definitions(d: &mut Doc, s: &Summary) {
    let lang = d.lang;
    let mut seen = Vec::new();
    d.out.push_str("<table data-table=\"definitions\"><thead><tr>");
    let _ = write!(
        d.out,
        "<th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(d.t("report.doc.kpi")),
        esc(d.t("report.doc.formula")),
        esc(d.t("report.doc.target"))
    );
    for k in s.headline() {
        if seen.contains(&k.metric) {
            continue;
        }
        seen.push(k.metric);
        let _ = write!(
            d.out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&labels::metric(k.metric, lang)),
            esc(k.formula.text(lang)),
            esc(&k.target.map_or_else(|| "—".into(), |t| t.display())),
        );
    }
    d.out.push_str("</tbody></table>\n");
    let notes = [
        "report.doc.note_satisfaction",
        "report.doc.note_ci",
        "report.doc.note_cases",
        "report.doc.note_followup",
        "report.doc.note_times",
        "report.doc.note_departments",
    ];
    d.out.push_str("<ul class=\"note\">");
    for key in notes {
        let _ = write!(d.out, "<li>{}</li>", esc(lang.tr().t(key)));
    }
    d.out.push_str("</ul>\n");
}

fn fill_area(d: &mut Doc, hint: &str) {
    let _ = writeln!(d.out, "<div class=\"fill\">{}</div>", esc(hint));
}

fn signatures(d: &mut Doc, who: &[&str]) {
    d.out.push_str("<div class=\"signs\">");
    for w in who {
        let _ = write!(d.out, "<div>{}：</div>", esc(w));
    }
    d.out.push_str("</div>\n");
}

fn footer_text(lang: Lang) -> String {
    lang.tr().t("report.doc.footer").to_string()
}

/// The weekly opinion sheet (《医院客户服务意见表》): the week's patient opinions and suggestions, cases and
/// follow-up, with the satisfaction KPIs, for the customer-service supervisor.
pub fn weekly(s: &Summary, refs: &ReferenceData, opts: &DocOptions) -> String {
    let lang = opts.lang;
    let title = lang.tr().t("report.weekly.title");
    let mut d = Doc::new(&format!("{title} {}", s.params().period.slug()), lang);
    let heading = lang.tr().f("report.weekly.heading", &[("title", &title)]);
    header(&mut d, &heading, s, opts);
    let a = &s.agg;

    d.section("overview");
    d.h2("overview", lang.tr().t("report.weekly.the_week_at_a_glance"));
    glance(
        &mut d,
        &[
            (a.arrivals.total.to_string(), lang.tr().t("report.weekly.arrivals").into()),
            (a.consultations.total.to_string(), lang.tr().t("report.weekly.consultations").into()),
            (a.feedback.total.to_string(), lang.tr().t("report.weekly.satisfaction_surveys").into()),
            (a.cases.total.to_string(), lang.tr().t("report.weekly.cases_received").into()),
            (a.calls.total.to_string(), lang.tr().t("report.weekly.follow_up_calls").into()),
        ],
    );
    d.table(&tables::arrivals_by_day(s, lang));
    d.table(&tables::arrivals_by_origin(s, lang));
    d.table(&tables::arrivals_by_heard_via(s, lang));
    d.table(&tables::cancellations_and_changes(s, lang));
    d.table(&tables::appointments_by_day(s, lang));
    d.h3(lang.tr().t("report.weekly.needs_attention"));
    attention_list(&mut d, &attention(s, lang, false));
    skipped_note(&mut d, s);
    d.end_section();

    d.section("kpis");
    d.h2("kpis", lang.tr().t("report.weekly.key_figures"));
    kpi_table(
        &mut d,
        &[
            &s.overall_satisfaction,
            &s.registration_dissatisfaction,
            &s.guide_dissatisfaction,
            &s.complaint_handling,
            &s.case_handling_all,
            &s.case_on_time,
            &s.call_satisfaction,
            &s.inpatient_followup,
            &s.outpatient_followup,
        ],
    );
    d.note(&tables::small_n_text(lang));
    d.end_section();

    d.section("satisfaction");
    d.h2("satisfaction", lang.tr().t("report.weekly.patient_satisfaction"));
    d.raw(&trend_chart(s, lang));
    d.table(&tables::satisfaction_by_question(s, lang));
    d.end_section();

    d.section("opinions");
    d.h2("opinions", lang.tr().t("report.weekly.patients_opinions_and_suggestions"));
    d.table(&tables::opinions(s, lang));
    if a.feedback.comments_not_listed > 0 {
        d.note(&lang.tr().f("report.doc.comments_not_listed", &[("n", &a.feedback.comments_not_listed)]));
    }
    d.table(&tables::feedback_reasons(s));
    d.end_section();

    d.section("cases");
    d.h2("cases", lang.tr().t("report.weekly.cases_received_and_their_handling"));
    d.raw(&grade_chart(s, lang));
    d.table(&tables::cases_by_grade(s, lang));
    d.table(&tables::cases_list(s, refs, lang));
    if a.cases.items_not_listed > 0 {
        d.note(&lang.tr().f("report.doc.cases_not_listed", &[("n", &a.cases.items_not_listed)]));
    }
    d.end_section();

    d.section("followup");
    d.h2("followup", lang.tr().t("report.weekly.section_follow_up"));
    d.table(&tables::followup_by_group(s, lang));
    d.table(&tables::call_outcomes(s, lang));
    d.end_section();

    d.section("actions");
    d.h2("actions", lang.tr().t("report.weekly.actions_and_improvements"));
    fill_area(&mut d, lang.tr().t("report.weekly.fill_hint"));
    signatures(
        &mut d,
        &[
            lang.tr().t("report.weekly.prepared_by"),
            lang.tr().t("report.weekly.supervisor"),
            lang.tr().t("report.weekly.manager"),
        ],
    );
    d.end_section();

    d.section("definitions");
    d.h2("definitions", lang.tr().t("report.weekly.appendix_definitions"));
    definitions(&mut d, s);
    d.end_section();
    d.finish(&footer_text(lang))
}

/// The monthly analysis report: arrivals, visit times, consultation conversion, satisfaction, cases, follow-up and
/// accountability, with every KPI against its target.
pub fn monthly(s: &Summary, refs: &ReferenceData, opts: &DocOptions) -> String {
    let lang = opts.lang;
    let title = lang.tr().t("report.monthly.title");
    let mut d = Doc::new(&format!("{title} {}", s.params().period.slug()), lang);
    header(&mut d, title, s, opts);
    let a = &s.agg;

    d.section("summary");
    d.h2("summary", lang.tr().t("report.monthly.summary"));
    glance(
        &mut d,
        &[
            (a.arrivals.total.to_string(), lang.tr().t("report.monthly.arrivals").into()),
            (a.consultations.total.to_string(), lang.tr().t("report.monthly.consultations").into()),
            (a.feedback.total.to_string(), lang.tr().t("report.monthly.satisfaction_surveys").into()),
            (a.cases.total.to_string(), lang.tr().t("report.monthly.cases_received").into()),
            (a.calls.total.to_string(), lang.tr().t("report.monthly.follow_up_calls").into()),
        ],
    );
    kpi_table(&mut d, &s.headline());
    d.h3(lang.tr().t("report.monthly.needs_attention"));
    attention_list(&mut d, &attention(s, lang, true));
    skipped_note(&mut d, s);
    d.end_section();

    d.section("arrivals");
    d.h2("arrivals", lang.tr().t("report.monthly.section_arrivals"));
    d.raw(&hour_chart(s, lang));
    d.raw(&day_chart(s, lang));
    d.table(&tables::arrivals_by_department(s, refs, lang));
    d.table(&tables::arrivals_by_channel(s, lang));
    d.table(&tables::arrivals_by_visit_type(s, lang));
    d.table(&tables::arrivals_by_origin(s, lang));
    d.table(&tables::arrivals_by_heard_via(s, lang));
    d.table(&tables::cancellations_and_changes(s, lang));
    d.table(&tables::arrivals_by_hour(s));
    d.end_section();

    d.section("waiting");
    d.h2("waiting", lang.tr().t("report.monthly.time_in_each_visit_step"));
    d.table_only(&tables::waiting_times(s, lang));
    if a.arrivals.negative_intervals > 0 {
        d.note(&lang.tr().f("report.doc.negative_intervals", &[("n", &a.arrivals.negative_intervals)]));
    }
    d.end_section();

    d.section("consultations");
    d.h2("consultations", lang.tr().t("report.monthly.consultations_and_conversion"));
    kpi_table(&mut d, &[&s.appointment_rate, &s.appointment_arrival_rate, &s.consultation_conversion]);
    d.table(&tables::appointments_by_day(s, lang));
    d.table(&tables::appointment_arrival_rate(s, refs, lang));
    if a.appointments.clinic.booked > 0 {
        d.note(&lang.tr().f("report.doc.appointments_pending", &[("n", &a.appointments.clinic.booked)]));
    }
    d.table(&tables::consultations_by_channel(s, lang));
    d.table(&tables::consultations_by_concern(s, lang));
    d.table(&tables::consultations_by_department(s, refs, lang));
    d.end_section();

    d.section("satisfaction");
    d.h2("satisfaction", lang.tr().t("report.monthly.patient_satisfaction"));
    kpi_table(&mut d, &[&s.overall_satisfaction, &s.registration_dissatisfaction, &s.guide_dissatisfaction]);
    d.raw(&trend_chart(s, lang));
    d.table(&tables::satisfaction_by_question(s, lang));
    d.table(&tables::feedback_reasons(s));
    d.end_section();

    d.section("cases");
    d.h2("cases", lang.tr().t("report.monthly.cases"));
    kpi_table(&mut d, &[&s.complaint_handling, &s.case_handling_all, &s.case_on_time]);
    d.raw(&grade_chart(s, lang));
    d.table(&tables::cases_by_grade(s, lang));
    d.table(&tables::cases_by_department(s, refs, lang));
    d.table(&tables::improvements(s, refs, lang));
    d.end_section();

    d.section("followup");
    d.h2("followup", lang.tr().t("report.monthly.follow_up"));
    kpi_table(&mut d, &[&s.inpatient_followup, &s.outpatient_followup, &s.call_satisfaction]);
    d.raw(&followup_chart(s, refs, lang, true));
    d.raw(&followup_chart(s, refs, lang, false));
    d.table(&tables::followup_by_group(s, lang));
    d.table(&tables::followup_by_department(s, refs, lang));
    d.table(&tables::call_outcomes(s, lang));
    d.end_section();

    d.section("accountability");
    d.h2("accountability", lang.tr().t("report.monthly.accountability"));
    let cp = &refs.case_policy;
    d.note(&lang.tr().f(
        "report.monthly.accountability_rules",
        &[
            ("dept", &cp.dept_monthly_threshold),
            ("staff", &cp.staff_monthly_threshold),
            ("quarter", &cp.disputes_per_quarter_threshold),
            ("year", &cp.disputes_per_year_threshold),
        ],
    ));
    d.table(&tables::accountability_departments(s, refs, lang));
    d.table(&tables::accountability_staff(s, refs, lang));
    d.end_section();

    d.section("analysis");
    d.h2("analysis", lang.tr().t("report.monthly.problems_found_and_actions"));
    fill_area(&mut d, lang.tr().t("report.monthly.fill_hint"));
    signatures(
        &mut d,
        &[
            lang.tr().t("report.monthly.reported_by"),
            lang.tr().t("report.monthly.head_of_customer_service"),
            lang.tr().t("report.monthly.reviewed_by"),
        ],
    );
    d.end_section();

    d.section("definitions");
    d.h2("definitions", lang.tr().t("report.monthly.appendix_definitions"));
    definitions(&mut d, s);
    d.end_section();
    d.finish(&footer_text(lang))
}
