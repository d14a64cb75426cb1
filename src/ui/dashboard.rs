//! The managers' dashboard: the hospital's KPIs against their targets, and charts — arrivals by hour, satisfaction
//! trend, cases by grade, follow-up rate against target by department — for a date range and department.
//!
//! Figures come from the shared `reports` module (`Queries::figures`), computed on a background thread. To protect the people answering
//! on the patient screen, feedback from the current hour is left out (only delayed totals are shown).

use std::sync::Arc;

use chrono::{Datelike, Days, NaiveDate};
use egui::{RichText, Ui};
use egui_plot::{Bar, BarChart, HLine, Line, Plot, PlotPoints};

use super::context::{DeskScreen, ScreenCtx};
use super::i18n::Tr;
use super::job::Job;
use super::{theme, widgets};
use crate::config::Language;
use crate::model::ReferenceData;
use crate::reports::{Kpi, Lang, Period, Summary, labels};

/// Date-range presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    /// Today.
    Today,
    /// The last 7 days, today included.
    #[default]
    Week,
    /// This month to date.
    Month,
    /// Last month.
    LastMonth,
}

impl Range {
    fn period(self, today: NaiveDate) -> Period {
        match self {
            Range::Today => Period::custom(today, today),
            Range::Week => Period::custom(today.checked_sub_days(Days::new(6)).unwrap_or(today), today),
            Range::Month => Period::custom(today.with_day(1).unwrap_or(today), today),
            Range::LastMonth => {
                let first = today.with_day(1).unwrap_or(today);
                let last = first.pred_opt().unwrap_or(first);
                Period::custom(last.with_day(1).unwrap_or(last), last)
            }
        }
    }

    fn key(self) -> &'static str {
        match self {
            Range::Today => "dash.today",
            Range::Week => "dash.week",
            Range::Month => "dash.month",
            Range::LastMonth => "dash.last_month",
        }
    }
}

/// Draws one dashboard tile.
type Tile<'a> = Box<dyn Fn(&mut Ui) + 'a>;

/// What the background job computes: the figures and the desk filter's choices.
type Computed = Result<(Summary, Vec<String>), String>;

/// Dashboard state.
#[derive(Default)]
pub struct DashboardScreen {
    range: Range,
    department: Option<String>,
    /// Only the records of one desk (`Some("")`: this desk's own).
    desk: Option<String>,
    /// The other desks of the site this desk holds records of (the desk filter's choices).
    desks: Vec<String>,
    summary: Option<Arc<Summary>>,
    computed_for: Option<(u64, Range, Option<String>, Option<String>)>,
    job: Option<Job<Computed>>,
    error: Option<String>,
}

impl std::fmt::Debug for DashboardScreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardScreen")
            .field("range", &self.range)
            .field("department", &self.department)
            .finish_non_exhaustive()
    }
}

impl DashboardScreen {
    /// The figures shown (tests).
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_deref()
    }

    /// Starts computing the figures when the filters or the data changed, and takes them once they are ready.
    fn refresh(&mut self, ui: &Ui, cx: &ScreenCtx<'_>) {
        let key = (cx.version, self.range, self.department.clone(), self.desk.clone());
        if self.computed_for.as_ref() != Some(&key) && self.job.is_none() {
            let period = self.range.period(cx.today);
            let (dept, desk) = (self.department.clone(), self.desk.clone());
            let figures = move |q: &dyn crate::queries::Queries| {
                let s = q.figures(period, dept.as_deref(), desk.as_deref()).map_err(|e| e.to_string())?;
                Ok((s, q.site_desks().map_err(|e| e.to_string())?))
            };
            if let Some(q) = &cx.background {
                let q = Arc::clone(q);
                let compute = move || figures(&*q);
                match Job::spawn("dashboard", ui.ctx(), compute) {
                    Ok(job) => {
                        self.job = Some(job);
                        self.computed_for = Some(key);
                    }
                    Err(e) => self.error = Some(e.to_string()),
                }
            } else {
                // Nobody handed over reads that may leave this thread: compute here.
                self.take(figures(cx.q));
                self.computed_for = Some(key);
            }
        }
        if let Some(r) = self.job.as_ref().and_then(Job::poll) {
            self.job = None;
            if let Ok(r) = r {
                self.take(r);
            }
        }
    }

    fn take(&mut self, r: Result<(Summary, Vec<String>), String>) {
        match r {
            Ok((s, desks)) => {
                self.summary = Some(Arc::new(s));
                self.desks = desks;
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }
}

impl DeskScreen for DashboardScreen {
    /// The screen. Figures are recomputed off the UI thread when the filters or the data change.
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (tr, refs) = (cx.tr, &cx.refs);
        let lang = if tr.lang == Language::En { Lang::En } else { Lang::Zh };
        self.refresh(ui, cx);

        ui.horizontal_wrapped(|ui| {
            ui.heading(tr.t("dash.title"));
            for r in [Range::Today, Range::Week, Range::Month, Range::LastMonth] {
                if widgets::toggle(ui, self.range == r, tr.t(r.key())).clicked() {
                    self.range = r;
                }
            }
            let label = tr.t("board.filter_department");
            widgets::department_filter(ui, cx, "dash_dept", label, 170.0, &mut self.department);
            widgets::desk_filter(ui, tr, "dash_desk", &self.desks, &mut self.desk);
            if self.job.is_some() {
                ui.spinner();
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(theme::ALERT, e);
        }
        let Some(s) = self.summary.clone() else {
            ui.label(RichText::new(tr.t("dash.computing")).color(theme::MUTED));
            return;
        };
        let p = s.params().period;
        ui.label(
            RichText::new(tr.f("dash.period", &[("from", &p.from), ("to", &p.to)]))
                .color(theme::MUTED)
                .size(theme::SMALL),
        );
        let width = ui.available_width() - 20.0;
        egui::ScrollArea::vertical().id_salt("dash").scroll_source(egui::scroll_area::ScrollSource::ALL).show(
            ui,
            |ui| {
                ui.set_max_width(width);
                // Tiles in rows that fit the screen (frames do not wrap by themselves).
                let a = &s.agg.arrivals;
                let kpis = [
                    &s.overall_satisfaction,
                    &s.registration_dissatisfaction,
                    &s.guide_dissatisfaction,
                    &s.complaint_handling,
                    &s.case_on_time,
                    &s.inpatient_followup,
                    &s.outpatient_followup,
                    &s.consultation_conversion,
                    &s.appointment_arrival_rate,
                ];
                let per_row = ((width / 215.0).floor() as usize).max(1);
                let mut tiles: Vec<Tile<'_>> = vec![
                    Box::new(|ui: &mut Ui| {
                        count_tile(
                            ui,
                            tr.t("dash.arrivals"),
                            a.total,
                            &tr.f("dash.first_return", &[("first", &a.first), ("ret", &a.returning)]),
                        );
                    }),
                    Box::new(|ui: &mut Ui| count_tile(ui, tr.t("dash.consultations"), s.agg.consultations.total, "")),
                    Box::new(|ui: &mut Ui| count_tile(ui, tr.t("dash.cases"), s.agg.cases.total, "")),
                    Box::new(|ui: &mut Ui| {
                        let b = &s.agg.appointments.all;
                        let sub = tr.f("dash.bookings_sub", &[("came", &b.checked_in), ("no_show", &b.no_show)]);
                        count_tile(ui, tr.t("dash.bookings"), b.total, &sub);
                    }),
                ];
                for k in kpis {
                    tiles.push(Box::new(move |ui: &mut Ui| kpi_tile(ui, tr, lang, k)));
                }
                for row in tiles.chunks(per_row) {
                    ui.horizontal(|ui| {
                        for t in row {
                            t(ui);
                        }
                    });
                }
                ui.label(RichText::new(tr.t("dash.privacy")).color(theme::MUTED).size(theme::SMALL));
                ui.separator();
                let w = (width - 24.0) / 2.0;
                ui.horizontal_top(|ui| {
                    widgets::column(ui, w, |ui| arrivals_chart(ui, tr, &s));
                    widgets::column(ui, w, |ui| trend_chart(ui, tr, &s, refs));
                });
                ui.horizontal_top(|ui| {
                    widgets::column(ui, w, |ui| grades_chart(ui, tr, lang, &s));
                    widgets::column(ui, w, |ui| followup_chart(ui, tr, lang, &s, refs));
                });
                ui.separator();
                questions_table(ui, tr, lang, &s);
                ui.separator();
                days_table(ui, tr, &s);
                // Per-person counts are for supervisors (the matrix's `view_accountability`).
                if cx.role.is_some_and(|r| crate::access::allowed(r, crate::access::Action::ViewAccountability)) {
                    ui.separator();
                    accountability_table(ui, tr, lang, &s, refs);
                }
            },
        );
    }
}

fn count_tile(ui: &mut Ui, title: &str, n: u64, sub: &str) {
    egui::Frame::new().fill(theme::TILE).corner_radius(8.0).inner_margin(10.0).show(ui, |ui| {
        ui.set_min_size(egui::vec2(190.0, 84.0));
        ui.vertical(|ui| {
            ui.label(RichText::new(title).color(theme::MUTED).size(theme::SMALL));
            ui.label(RichText::new(n.to_string()).size(theme::HEADING).strong());
            if !sub.is_empty() {
                ui.label(RichText::new(sub).size(theme::SMALL).color(theme::MUTED));
            }
        });
    });
}

/// A KPI with its target, green when met and red when missed; formula, numerator/denominator, n and the 95%
/// interval on hover. A rate resting on few observations says so.
fn kpi_tile(ui: &mut Ui, tr: Tr, lang: Lang, k: &Kpi) {
    let color = match k.meets {
        Some(true) => theme::OK,
        Some(false) => theme::ALERT,
        None => theme::MUTED,
    };
    let name = labels::metric(k.metric, lang);
    let r = egui::Frame::new().fill(color.linear_multiply(0.10)).corner_radius(8.0).inner_margin(10.0).show(ui, |ui| {
        ui.set_min_size(egui::vec2(190.0, 84.0));
        ui.vertical(|ui| {
            ui.label(RichText::new(&name).size(theme::SMALL));
            ui.horizontal(|ui| {
                ui.label(RichText::new(k.pct_text()).size(theme::HEADING).strong().color(color));
                if let Some(t) = k.target {
                    ui.label(
                        RichText::new(tr.f("dash.target", &[("t", &t.display())]))
                            .size(theme::SMALL)
                            .color(theme::MUTED),
                    );
                }
            });
            let mut n = tr.f("dash.n", &[("n", &k.n)]);
            if k.small_n {
                n.push_str(&format!(" · {}", tr.t("dash.small_n")));
            }
            ui.label(RichText::new(n).size(theme::SMALL).color(if k.small_n { theme::WARN } else { theme::MUTED }));
        });
    });
    r.response.on_hover_ui(|ui| {
        ui.label(RichText::new(&name).strong());
        ui.label(k.formula.text(lang));
        ui.label(format!("{} ÷ {} = {}", k.numerator, k.denominator, k.pct_text()));
        ui.label(tr.f("dash.ci", &[("ci", &k.ci_text())]));
    });
}

fn plot(id: &str) -> Plot<'_> {
    // Touch screens: no accidental zoom, drag or scroll.
    Plot::new(id)
        .height(220.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .show_x(false)
        .show_y(false)
        .include_y(0.0)
}

fn arrivals_chart(ui: &mut Ui, tr: Tr, s: &Summary) {
    ui.label(RichText::new(tr.t("dash.arrivals_by_hour")).strong());
    let bars: Vec<Bar> = s
        .agg
        .arrivals
        .by_hour
        .iter()
        .enumerate()
        .skip(6)
        .take(15)
        .map(|(h, n)| Bar::new(h as f64, *n as f64).width(0.7))
        .collect();
    plot("arrivals_by_hour").x_axis_formatter(|m, _| format!("{:.0}", m.value)).show(ui, |p| {
        p.bar_chart(BarChart::new(tr.t("dash.arrivals"), bars).color(theme::ACCENT));
    });
}

fn trend_chart(ui: &mut Ui, tr: Tr, s: &Summary, refs: &ReferenceData) {
    ui.label(RichText::new(tr.t("dash.trend")).strong());
    let pts: Vec<[f64; 2]> =
        s.trend.iter().enumerate().filter_map(|(i, (_, k))| k.pct().map(|p| [i as f64, p])).collect();
    let days: Vec<NaiveDate> = s.trend.iter().map(|(d, _)| *d).collect();
    plot("trend")
        .include_y(100.0)
        .include_y(80.0)
        .x_axis_formatter(move |m, _| {
            let i = m.value.round();
            if (m.value - i).abs() < 1e-6 && i >= 0.0 {
                days.get(i as usize).map(|d| d.format("%m-%d").to_string()).unwrap_or_default()
            } else {
                String::new()
            }
        })
        .show(ui, |p| {
            p.line(Line::new(tr.t("dash.satisfaction"), PlotPoints::from(pts)).color(theme::OK).width(2.5));
            p.hline(HLine::new(tr.t("dash.target_line"), refs.targets.satisfaction_min_pct).color(theme::ALERT));
        });
}

fn grades_chart(ui: &mut Ui, tr: Tr, lang: Lang, s: &Summary) {
    ui.label(RichText::new(tr.t("dash.cases_by_grade")).strong());
    let names: Vec<String> = s.cases_by_grade.iter().map(|g| labels::grade(g.grade, lang).to_string()).collect();
    let bars: Vec<Bar> = s
        .cases_by_grade
        .iter()
        .enumerate()
        .map(|(i, g)| Bar::new(i as f64, g.counts.received as f64).width(0.6).name(&names[i]))
        .collect();
    plot("grades")
        .x_axis_formatter(move |m, _| {
            let i = m.value.round();
            if (m.value - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .show(ui, |p| {
            p.bar_chart(BarChart::new(tr.t("dash.cases"), bars).color(theme::WARN));
        });
}

fn followup_chart(ui: &mut Ui, tr: Tr, lang: Lang, s: &Summary, refs: &ReferenceData) {
    ui.label(RichText::new(tr.t("dash.followup_by_department")).strong());
    let rows: Vec<_> = s.followup_by_department.iter().filter(|r| r.inpatient.denominator > 0).collect();
    let names: Vec<String> = rows.iter().map(|r| labels::department(refs, &r.department, lang)).collect();
    let bars: Vec<Bar> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let color = if r.inpatient.meets == Some(false) { theme::ALERT } else { theme::OK };
            Bar::new(i as f64, r.inpatient.pct().unwrap_or(0.0)).width(0.6).fill(color)
        })
        .collect();
    plot("followup")
        .include_y(100.0)
        .x_axis_formatter(move |m, _| {
            let i = m.value.round();
            if (m.value - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .show(ui, |p| {
            p.bar_chart(BarChart::new(tr.t("dash.followup_rate"), bars));
            p.hline(
                HLine::new(tr.t("dash.target_line"), f64::from(refs.followup_policy.inpatient_target_pct))
                    .color(theme::ALERT),
            );
        });
}

fn questions_table(ui: &mut Ui, tr: Tr, lang: Lang, s: &Summary) {
    ui.label(RichText::new(tr.t("dash.by_question")).strong());
    widgets::compact(ui, |ui| {
        egui::Grid::new("questions").striped(true).spacing(egui::vec2(16.0, 4.0)).show(ui, |ui| {
            for h in ["dash.q", "dash.n_scored", "dash.positive", "dash.negative", "dash.dont_know", "dash.incomplete"]
            {
                ui.label(RichText::new(tr.t(h)).color(theme::MUTED));
            }
            ui.end_row();
            for q in &s.questions {
                ui.label(labels::question(q.question, lang));
                ui.label(q.positive.n.to_string());
                ui.label(q.positive.pct_text());
                ui.label(q.negative.pct_text());
                ui.label(q.counts.get(crate::model::Rating::DontKnow).to_string());
                ui.label(q.incomplete.total().to_string());
                ui.end_row();
            }
        })
    });
}

fn days_table(ui: &mut Ui, tr: Tr, s: &Summary) {
    use crate::reports::{Metric, Question};
    ui.label(RichText::new(tr.t("dash.by_day")).strong());
    widgets::compact(ui, |ui| {
        egui::Grid::new("days").striped(true).spacing(egui::vec2(16.0, 4.0)).show(ui, |ui| {
            for h in ["dash.day", "dash.n_scored", "dash.positive", "dash.negative", "dash.dont_know"] {
                ui.label(RichText::new(tr.t(h)).color(theme::MUTED));
            }
            ui.end_row();
            for (day, counts) in &s.agg.feedback.overall_by_day {
                let pos = crate::reports::summary::satisfaction(
                    Metric::SatisfactionPositive(Question::Overall),
                    *counts,
                    None,
                );
                let neg = crate::reports::summary::satisfaction(
                    Metric::SatisfactionNegative(Question::Overall),
                    *counts,
                    None,
                );
                ui.label(day.format("%m-%d").to_string());
                ui.label(pos.n.to_string());
                ui.label(pos.pct_text());
                ui.label(neg.pct_text());
                ui.label(counts.get(crate::model::Rating::DontKnow).to_string());
                ui.end_row();
            }
        })
    });
}

fn accountability_table(ui: &mut Ui, tr: Tr, lang: Lang, s: &Summary, refs: &ReferenceData) {
    ui.label(RichText::new(tr.f("dash.accountability", &[("month", &s.accountability_month)])).strong());
    if s.accountability_departments.is_empty() && s.accountability_staff.is_empty() {
        ui.label(RichText::new(tr.t("dash.accountability_none")).color(theme::MUTED));
        return;
    }
    widgets::compact(ui, |ui| {
        egui::Grid::new("accountability").striped(true).spacing(egui::vec2(16.0, 4.0)).show(ui, |ui| {
            for h in [
                "dash.who",
                "grade.dissatisfied",
                "grade.complaint",
                "grade.dispute",
                "grade.incident",
                "dash.disputes_3m",
                "dash.flags",
            ] {
                ui.label(RichText::new(tr.t(h)).color(theme::MUTED));
            }
            ui.end_row();
            let depts = s.accountability_departments.iter().map(|r| (labels::department(refs, &r.who, lang), r));
            let staff = s.accountability_staff.iter().map(|r| (labels::staff(refs, &r.who), r));
            for (who, r) in depts.chain(staff) {
                let flagged = !r.flags.is_empty();
                ui.label(if flagged { RichText::new(who).color(theme::ALERT).strong() } else { RichText::new(who) });
                ui.label(r.month.dissatisfied.to_string());
                ui.label(r.month.complaints.to_string());
                ui.label(r.month.disputes.to_string());
                ui.label(r.month.incidents.to_string());
                ui.label(r.disputes_3m.to_string());
                let flags: Vec<String> = r.flags.iter().map(|f| labels::flag(*f, lang)).collect();
                ui.label(RichText::new(flags.join("；")).color(theme::ALERT));
                ui.end_row();
            }
        })
    });
}
