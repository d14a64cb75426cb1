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

    fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.pick(zh, en)
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
            let _ = write!(self.out, "<th>{}</th>", esc(lang.pick(c.zh, c.en)));
        }
        self.out.push_str("</tr></thead><tbody>\n");
        if t.rows.is_empty() {
            let _ = write!(
                self.out,
                "<tr><td colspan=\"{}\" class=\"small\">{}</td></tr>",
                width,
                esc(lang.pick("本期无记录", "No records in this period"))
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
        esc(d.t("指标", "KPI")),
        esc(d.t("数值", "Value")),
        esc(d.t("95%置信区间", "95% CI")),
        esc(d.t("分子 / 分母", "Numerator / denominator")),
        esc(d.t("样本量 n", "n")),
        esc(d.t("目标", "Target")),
        esc(d.t("达标情况", "Status")),
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
                format!("<span class=\"badge\">{}</span>", esc(lang.pick("样本小", "small n")))
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
        return format!("<span class=\"small\">{}</span>", esc(lang.pick("无数据", "no data")));
    }
    let base = match k.meets {
        Some(true) => format!("<span class=\"ok\">✓ {}</span>", esc(lang.pick("达标", "met"))),
        Some(false) => format!("<span class=\"bad\">✗ {}</span>", esc(lang.pick("未达标", "not met"))),
        None => "—".to_string(),
    };
    if k.small_n {
        format!("{base} <span class=\"small\">({})</span>", esc(lang.pick("样本量小，仅供参考", "small n, indicative")))
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
    let period = match (p.period.kind, lang) {
        (PeriodKind::Week, Lang::Zh) => format!("{from} 至 {to}（{}年第{}周）", week.year(), week.week()),
        (PeriodKind::Week, Lang::En) => format!("{from} to {to} (week {} of {})", week.week(), week.year()),
        (PeriodKind::Month, Lang::Zh) => format!("{}年{}月（{from} 至 {to}）", from.year(), from.month()),
        (PeriodKind::Month, Lang::En) => format!("{} ({from} to {to})", from.format("%B %Y")),
        (PeriodKind::Custom, Lang::Zh) => format!("{from} 至 {to}"),
        (PeriodKind::Custom, Lang::En) => format!("{from} to {to}"),
    };
    let _ = writeln!(d.out, "<p class=\"sub\" data-period=\"{}\">{}</p>", esc(&p.period.slug()), esc(&period));
    let generated = opts.generated_at.local(p.offset).format("%Y-%m-%d %H:%M").to_string();
    let org = opts.organisation.clone().unwrap_or_else(|| d.t("客户服务中心", "Customer Service Centre").to_string());
    let _ = writeln!(
        d.out,
        "<table class=\"meta\"><tr><td>{}：{}</td><td>{}：{}</td><td>{}：{}</td></tr></table>",
        esc(d.t("填报部门", "Department")),
        esc(&org),
        esc(d.t("数据截至", "Status as of")),
        esc(&p.as_of.to_string()),
        esc(d.t("生成时间", "Generated")),
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
    let mut out = Vec::new();
    for k in s.headline() {
        if k.meets == Some(false) {
            let name = labels::metric(k.metric, lang);
            let target = k.target.map(|t| t.display()).unwrap_or_default();
            let small = if k.small_n { lang.pick("（样本量小）", " (small n)") } else { "" };
            out.push(match lang {
                Lang::Zh => format!("{name} {}，未达到目标 {target}{small}。", k.pct_text()),
                Lang::En => format!("{name} is {}, target {target} not met{small}.", k.pct_text()),
            });
        }
    }
    let overdue = s.agg.cases.closure_total().overdue;
    if overdue > 0 {
        out.push(match lang {
            Lang::Zh => format!("本期受理的客诉中有 {overdue} 件已逾期未结，请督办。"),
            Lang::En => format!("{overdue} case(s) received in the period are open past their due date."),
        });
    }
    let fb = &s.agg.feedback;
    if fb.dissatisfied_with_contact > 0 {
        let n = fb.dissatisfied_with_contact;
        out.push(match lang {
            Lang::Zh => format!("{n} 位不满意的患者留下了联系方式，须当日回电。"),
            Lang::En => {
                format!("{n} dissatisfied patient(s) left contact details and must be called back the same day.")
            }
        });
    }
    if s.agg.calls.worrying > 0 {
        let n = s.agg.calls.worrying;
        out.push(match lang {
            Lang::Zh => format!("回访中发现 {n} 例病情需关注，已提示科室负责人。"),
            Lang::En => format!("{n} follow-up call(s) found a worrying condition, flagged to the department head."),
        });
    }
    let od = s.agg.followups.group(TaskGroup::Discharge).overdue + s.agg.followups.group(TaskGroup::Outpatient).overdue;
    if od > 0 {
        out.push(match lang {
            Lang::Zh => format!("{od} 个回访任务已过回访窗口仍未完成。"),
            Lang::En => format!("{od} follow-up task(s) are past their window and still open."),
        });
    }
    if monthly {
        let flagged = s.accountability_departments.iter().filter(|r| !r.flags.is_empty()).count()
            + s.accountability_staff.iter().filter(|r| !r.flags.is_empty()).count();
        if flagged > 0 {
            out.push(match lang {
                Lang::Zh => format!("{flagged} 个科室/个人触发责任考核规则，详见“责任考核”。"),
                Lang::En => {
                    format!("{flagged} department(s)/person(s) crossed an accountability rule (see Accountability).")
                }
            });
        }
    }
    if fb.incomplete > 0 {
        out.push(match lang {
            Lang::Zh => format!("满意度评价共 {} 份，其中未完成 {} 份，未计入满意率。", fb.total, fb.incomplete),
            Lang::En => format!(
                "{} of {} satisfaction surveys were not finished and are left out of the rates.",
                fb.incomplete, fb.total
            ),
        });
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
    let text = match d.lang {
        Lang::Zh => {
            let tail = if more > 0 { format!("；另有 {more} 条") } else { String::new() };
            format!("{n} 条记录因时间超出合理范围（2000-01-01 至 2200-01-01）未计入统计：{}{tail}。", named.join("；"))
        }
        Lang::En => {
            let tail = if more > 0 { format!("; and {more} more") } else { String::new() };
            format!(
                "{n} records skipped (a time outside 2000-01-01 to 2200-01-01), counted nowhere: {}{tail}.",
                named.join("; ")
            )
        }
    };
    let _ = writeln!(d.out, "<p class=\"note\" data-skipped=\"{n}\">{}</p>", esc(&text));
}

fn attention_list(d: &mut Doc, items: &[String]) {
    if items.is_empty() {
        d.p(d.lang.pick(
            "本期各项指标均达标，无需特别关注的事项。",
            "Every target was met; nothing needs special attention.",
        ));
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
            title: format!("{h:02}:00–{h:02}:59 · {} {}", a.by_hour[h], lang.pick("人次", "arrivals")),
        })
        .collect();
    svg::bar_chart(lang.pick("分时段来院人次（时）", "Arrivals by hour of day"), &bars, "")
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
                title: format!("{d} · {n} {}", lang.pick("人次", "arrivals")),
            }
        })
        .collect();
    svg::bar_chart(lang.pick("每日来院人次", "Arrivals by day"), &bars, "")
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
    let label = target.map(|t| format!("{} {}%", lang.pick("目标", "target"), super::kpi::trim_float(t)));
    svg::line_chart(
        lang.pick("每日总体满意率（空心点：样本量小）", "Overall satisfaction by day (hollow: small n)"),
        &points,
        target.zip(label.as_deref()),
    )
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
    svg::stacked_bar_chart(lang.pick("各等级客诉及办理时效", "Cases by grade and standing"), &cats, &series)
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
    push(lang.pick("全院", "All departments").to_string(), total);
    for r in &s.followup_by_department {
        let k = if inpatient { &r.inpatient } else { &r.outpatient_rate };
        if k.denominator > 0 {
            push(labels::department(refs, &r.department, lang), k);
        }
    }
    let target = total.target.map(|t| t.pct);
    let label = target.map(|t| format!("{} {}%", lang.pick("目标", "target"), super::kpi::trim_float(t)));
    let title = if inpatient {
        lang.pick("住院病人回访率与目标（灰色：样本量小）", "Inpatient follow-up rate vs target (grey: small n)")
    } else {
        lang.pick("门诊初诊回访率与目标（灰色：样本量小）", "Outpatient follow-up rate vs target (grey: small n)")
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
        esc(d.t("指标", "KPI")),
        esc(d.t("计算公式", "Formula")),
        esc(d.t("目标", "Target"))
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
    let notes: [(&str, &str); 6] = [
        (
            "满意率：“不清楚”的回答计入答题数但不计入分母；患者中途离开的未完成问卷单独列示，不计入任何满意率。",
            "Satisfaction: \"don't know\" answers are counted but left out of denominators; surveys the patient did \
             not finish are shown separately and left out of every rate.",
        ),
        (
            "95%置信区间为 Wilson 区间；n < 30 的比率标注“样本量小”，仅供参考。",
            "95% intervals are Wilson score intervals; rates with n < 30 are marked small n and are indicative only.",
        ),
        (
            "客诉按受理日期归期；按期办结 = 结案日期不晚于办结期限（按法定工作日计算，含调休）；未结且已过期限为逾期。",
            "Cases are filed by the day received; closed on time = closed on or before the due date (working days \
             on the official calendar); open past the due date = overdue.",
        ),
        (
            "回访：联系不上、拒访计为未完成，永不计为满意；回访满意率只计接通且有评价的电话。",
            "Follow-up: unreachable and refused count as not completed and never as satisfied; call satisfaction \
             counts reached calls with a rating only.",
        ),
        (
            "等候时间为相邻两个环节登记时间之差，按整分钟计，中位数与 P90 采用最近秩法。",
            "Times in a step are the difference between consecutive step times, in whole minutes; median and P90 use \
             the nearest-rank method.",
        ),
        (
            "涉及多个科室的客诉在每个科室各计一次；投诉人姓名已脱敏。",
            "A case concerning several departments counts under each; complainants' names are masked.",
        ),
    ];
    d.out.push_str("<ul class=\"note\">");
    for (zh, en) in notes {
        let _ = write!(d.out, "<li>{}</li>", esc(lang.pick(zh, en)));
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
    lang.pick("GuideDesk 导医台系统生成 · 内部资料，注意保密", "Generated by GuideDesk · Internal, confidential")
        .to_string()
}

/// The weekly opinion sheet (《医院客户服务意见表》): the week's patient opinions and suggestions, cases and
/// follow-up, with the satisfaction KPIs, for the customer-service supervisor.
pub fn weekly(s: &Summary, refs: &ReferenceData, opts: &DocOptions) -> String {
    let lang = opts.lang;
    let title = lang.pick("医院客户服务意见表", "Hospital Customer Service Opinion Sheet");
    let mut d = Doc::new(&format!("{title} {}", s.params().period.slug()), lang);
    let heading = match lang {
        Lang::Zh => format!("《{title}》"),
        Lang::En => title.to_string(),
    };
    header(&mut d, &heading, s, opts);
    let a = &s.agg;

    d.section("overview");
    d.h2("overview", lang.pick("一、本周概况", "1. The week at a glance"));
    glance(
        &mut d,
        &[
            (a.arrivals.total.to_string(), lang.pick("来院人次", "arrivals").into()),
            (a.consultations.total.to_string(), lang.pick("咨询人数", "consultations").into()),
            (a.feedback.total.to_string(), lang.pick("满意度评价（份）", "satisfaction surveys").into()),
            (a.cases.total.to_string(), lang.pick("客诉受理（件）", "cases received").into()),
            (a.calls.total.to_string(), lang.pick("回访电话（次）", "follow-up calls").into()),
        ],
    );
    d.table(&tables::arrivals_by_day(s, lang));
    d.h3(lang.pick("需关注事项", "Needs attention"));
    attention_list(&mut d, &attention(s, lang, false));
    skipped_note(&mut d, s);
    d.end_section();

    d.section("kpis");
    d.h2("kpis", lang.pick("二、主要指标", "2. Key figures"));
    kpi_table(
        &mut d,
        &[
            &s.overall_satisfaction,
            &s.registration_dissatisfaction,
            &s.guide_dissatisfaction,
            &s.complaint_handling,
            &s.case_on_time,
            &s.call_satisfaction,
            &s.inpatient_followup,
            &s.outpatient_followup,
        ],
    );
    d.note(&tables::small_n_text(lang));
    d.end_section();

    d.section("satisfaction");
    d.h2("satisfaction", lang.pick("三、患者满意度", "3. Patient satisfaction"));
    d.raw(&trend_chart(s, lang));
    d.table(&tables::satisfaction_by_question(s, lang));
    d.end_section();

    d.section("opinions");
    d.h2("opinions", lang.pick("四、患者意见与建议", "4. Patients' opinions and suggestions"));
    d.table(&tables::opinions(s, lang));
    if a.feedback.comments_not_listed > 0 {
        d.note(&match lang {
            Lang::Zh => format!("另有 {} 条意见未列出，见 CSV。", a.feedback.comments_not_listed),
            Lang::En => format!("{} more comments are not listed here.", a.feedback.comments_not_listed),
        });
    }
    d.table(&tables::feedback_reasons(s));
    d.end_section();

    d.section("cases");
    d.h2("cases", lang.pick("五、客诉受理与处理", "5. Cases received and their handling"));
    d.raw(&grade_chart(s, lang));
    d.table(&tables::cases_by_grade(s, lang));
    d.table(&tables::cases_list(s, refs, lang));
    if a.cases.items_not_listed > 0 {
        d.note(&match lang {
            Lang::Zh => format!("另有 {} 件客诉未列出。", a.cases.items_not_listed),
            Lang::En => format!("{} more cases are not listed here.", a.cases.items_not_listed),
        });
    }
    d.end_section();

    d.section("followup");
    d.h2("followup", lang.pick("六、回访情况", "6. Follow-up calls"));
    d.table(&tables::followup_by_group(s, lang));
    d.table(&tables::call_outcomes(s, lang));
    d.end_section();

    d.section("actions");
    d.h2("actions", lang.pick("七、处理意见及改进措施", "7. Actions and improvements"));
    fill_area(
        &mut d,
        lang.pick(
            "（由客服专员填写，交主管领导审阅）",
            "(filled in by the customer-service specialist for the supervisor)",
        ),
    );
    signatures(
        &mut d,
        &[lang.pick("填表人", "Prepared by"), lang.pick("客服主管", "Supervisor"), lang.pick("主管领导", "Manager")],
    );
    d.end_section();

    d.section("definitions");
    d.h2("definitions", lang.pick("附：指标说明与数据口径", "Appendix: definitions"));
    definitions(&mut d, s);
    d.end_section();
    d.finish(&footer_text(lang))
}

/// The monthly analysis report: arrivals, visit times, consultation conversion, satisfaction, cases, follow-up and
/// accountability, with every KPI against its target.
pub fn monthly(s: &Summary, refs: &ReferenceData, opts: &DocOptions) -> String {
    let lang = opts.lang;
    let title = lang.pick("客户服务月度分析报告", "Monthly Customer Service Analysis Report");
    let mut d = Doc::new(&format!("{title} {}", s.params().period.slug()), lang);
    header(&mut d, title, s, opts);
    let a = &s.agg;

    d.section("summary");
    d.h2("summary", lang.pick("一、概要", "1. Summary"));
    glance(
        &mut d,
        &[
            (a.arrivals.total.to_string(), lang.pick("来院人次", "arrivals").into()),
            (a.consultations.total.to_string(), lang.pick("咨询人数", "consultations").into()),
            (a.feedback.total.to_string(), lang.pick("满意度评价（份）", "satisfaction surveys").into()),
            (a.cases.total.to_string(), lang.pick("客诉受理（件）", "cases received").into()),
            (a.calls.total.to_string(), lang.pick("回访电话（次）", "follow-up calls").into()),
        ],
    );
    kpi_table(&mut d, &s.headline());
    d.h3(lang.pick("需关注事项", "Needs attention"));
    attention_list(&mut d, &attention(s, lang, true));
    skipped_note(&mut d, s);
    d.end_section();

    d.section("arrivals");
    d.h2("arrivals", lang.pick("二、来院情况", "2. Arrivals"));
    d.raw(&hour_chart(s, lang));
    d.raw(&day_chart(s, lang));
    d.table(&tables::arrivals_by_department(s, refs, lang));
    d.table(&tables::arrivals_by_channel(s, lang));
    d.table(&tables::arrivals_by_visit_type(s, lang));
    d.table(&tables::arrivals_by_hour(s));
    d.end_section();

    d.section("waiting");
    d.h2("waiting", lang.pick("三、就诊流程时效", "3. Time in each visit step"));
    d.table_only(&tables::waiting_times(s, lang));
    if a.arrivals.negative_intervals > 0 {
        d.note(&match lang {
            Lang::Zh => format!("{} 个时间间隔因设备时钟不一致为负值，未计入。", a.arrivals.negative_intervals),
            Lang::En => format!(
                "{} negative intervals (device clocks out of step) were left out.",
                a.arrivals.negative_intervals
            ),
        });
    }
    d.end_section();

    d.section("consultations");
    d.h2("consultations", lang.pick("四、咨询与来院转化", "4. Consultations and conversion"));
    kpi_table(&mut d, &[&s.appointment_rate, &s.appointment_arrival_rate, &s.consultation_conversion]);
    if a.consultations.appointments_pending > 0 {
        d.note(&match lang {
            Lang::Zh => format!("{} 个预约的日期尚未到，未计入来院达到率。", a.consultations.appointments_pending),
            Lang::En => format!(
                "{} appointments are still ahead and left out of the arrival rate.",
                a.consultations.appointments_pending
            ),
        });
    }
    d.table(&tables::consultations_by_channel(s, lang));
    d.table(&tables::consultations_by_concern(s, lang));
    d.table(&tables::consultations_by_department(s, refs, lang));
    d.end_section();

    d.section("satisfaction");
    d.h2("satisfaction", lang.pick("五、患者满意度", "5. Patient satisfaction"));
    kpi_table(&mut d, &[&s.overall_satisfaction, &s.registration_dissatisfaction, &s.guide_dissatisfaction]);
    d.raw(&trend_chart(s, lang));
    d.table(&tables::satisfaction_by_question(s, lang));
    d.table(&tables::feedback_reasons(s));
    d.end_section();

    d.section("cases");
    d.h2("cases", lang.pick("六、客诉分析", "6. Cases"));
    kpi_table(&mut d, &[&s.complaint_handling, &s.case_on_time]);
    d.raw(&grade_chart(s, lang));
    d.table(&tables::cases_by_grade(s, lang));
    d.table(&tables::cases_by_department(s, refs, lang));
    d.end_section();

    d.section("followup");
    d.h2("followup", lang.pick("七、回访工作", "7. Follow-up"));
    kpi_table(&mut d, &[&s.inpatient_followup, &s.outpatient_followup, &s.call_satisfaction]);
    d.raw(&followup_chart(s, refs, lang, true));
    d.raw(&followup_chart(s, refs, lang, false));
    d.table(&tables::followup_by_group(s, lang));
    d.table(&tables::followup_by_department(s, refs, lang));
    d.table(&tables::call_outcomes(s, lang));
    d.end_section();

    d.section("accountability");
    d.h2("accountability", lang.pick("八、责任考核", "8. Accountability"));
    let cp = &refs.case_policy;
    d.note(&match lang {
        Lang::Zh => format!(
            "规则（医院政策）：科室当月不满意+投诉超过 {} 件；个人当月超过 {} 件；科室近3个月纠纷达到 {} 件；近12个月纠纷达到 {} 件。",
            cp.dept_monthly_threshold, cp.staff_monthly_threshold, cp.disputes_per_quarter_threshold, cp.disputes_per_year_threshold
        ),
        Lang::En => format!(
            "Rules (hospital policy): a department with more than {} dissatisfied + complaints in the month; a person \
             with more than {}; a department with at least {} disputes in 3 months; at least {} in 12 months.",
            cp.dept_monthly_threshold, cp.staff_monthly_threshold, cp.disputes_per_quarter_threshold, cp.disputes_per_year_threshold
        ),
    });
    d.table(&tables::accountability_departments(s, refs, lang));
    d.table(&tables::accountability_staff(s, refs, lang));
    d.end_section();

    d.section("analysis");
    d.h2("analysis", lang.pick("九、问题分析与改进措施", "9. Problems found and actions"));
    fill_area(
        &mut d,
        lang.pick(
            "（存在的问题、原因分析、对策及整改落实情况，由客服主管填写）",
            "(problems, causes, countermeasures and follow-through, filled in by the supervisor)",
        ),
    );
    signatures(
        &mut d,
        &[
            lang.pick("报告人", "Prepared by"),
            lang.pick("客服部主任", "Head of customer service"),
            lang.pick("审阅", "Reviewed by"),
        ],
    );
    d.end_section();

    d.section("definitions");
    d.h2("definitions", lang.pick("附：指标说明与数据口径", "Appendix: definitions"));
    definitions(&mut d, s);
    d.end_section();
    d.finish(&footer_text(lang))
}
