//! Search past arrivals and consultations by phone, name, date range and department. The search runs on a
//! background thread; the screen shows the results when they arrive.

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome, SearchHit, SearchQuery};
use super::register::dept_name;
use super::{theme, widgets};
use crate::model::RecordKind;
use crate::model::validate::{Problem, ValidationErrors};

/// Search screen state.
#[derive(Debug, Default)]
pub struct SearchScreen {
    text: String,
    from: String,
    to: String,
    department: Option<String>,
    errors: ValidationErrors,
    running: bool,
    results: Option<Result<Vec<SearchHit>, String>>,
}

impl DeskScreen for SearchScreen {
    /// The screen.
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        let (refs, offset, tr) = (&cx.refs, cx.offset, cx.tr);
        ui.heading(tr.t("search.title"));
        ui.horizontal_wrapped(|ui| {
            widgets::text_row(ui, tr.t("search.text"), &mut self.text, tr.t("search.text_hint"));
        });
        ui.horizontal_wrapped(|ui| {
            widgets::text_row(ui, tr.t("search.from"), &mut self.from, "YYYY-MM-DD");
            widgets::text_row(ui, tr.t("search.to"), &mut self.to, "YYYY-MM-DD");
        });
        widgets::field_error(ui, tr, &self.errors, "from");
        widgets::field_error(ui, tr, &self.errors, "to");
        ui.horizontal(|ui| {
            let label = tr.t("search.department");
            widgets::department_filter(ui, cx, "s_dept", label, theme::INPUT_WIDTH, &mut self.department);
            if ui
                .add_enabled(
                    !self.running,
                    egui::Button::new(RichText::new(tr.t("search.submit")).strong())
                        .min_size(egui::vec2(160.0, theme::TOUCH)),
                )
                .clicked()
            {
                let mut errors = ValidationErrors::default();
                let from = crate::model::validate::opt_date(&mut errors, "from", &self.from);
                let to = crate::model::validate::opt_date(&mut errors, "to", &self.to);
                if let (Some(f), Some(t)) = (from, to)
                    && f > t
                {
                    errors.push("to", Problem::Conflict("the end is before the start"));
                }
                self.errors = errors;
                if self.errors.is_empty() {
                    self.running = true;
                    cx.send(Command::Search(SearchQuery {
                        text: self.text.clone(),
                        from,
                        to,
                        department: self.department.clone(),
                    }));
                }
            }
        });
        ui.separator();
        if self.running {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(tr.t("search.running"));
            });
        }
        match &self.results {
            None => {}
            Some(Err(e)) => {
                ui.colored_label(theme::ALERT, e);
            }
            Some(Ok(hits)) => {
                ui.label(RichText::new(tr.f("search.count", &[("n", &hits.len())])).color(theme::MUTED));
                egui::ScrollArea::vertical()
                    .id_salt("search_results")
                    .scroll_source(egui::scroll_area::ScrollSource::ALL)
                    .show(ui, |ui| {
                        egui::Grid::new("search_grid").striped(true).show(ui, |ui| {
                            for h in hits {
                                match h {
                                    SearchHit::Arrival(a) => {
                                        ui.label(tr.t("search.kind_arrival"));
                                        ui.label(a.arrived_at.local(offset).format("%Y-%m-%d %H:%M").to_string());
                                        ui.label(RichText::new(&a.name).strong());
                                        ui.horizontal(|ui| {
                                            let p = a.phone.as_deref().unwrap_or_default();
                                            widgets::phone(ui, cx, RecordKind::Arrival, a.id, p);
                                        });
                                        ui.label(
                                            refs.department(&a.department.value)
                                                .map_or(a.department.value.clone(), |d| dept_name(tr, d)),
                                        );
                                        ui.label(tr.k("step", a.step().key()));
                                    }
                                    SearchHit::Consultation(c) => {
                                        ui.label(tr.t("search.kind_consultation"));
                                        ui.label(c.at.local(offset).format("%Y-%m-%d %H:%M").to_string());
                                        ui.label(RichText::new(c.name.clone().unwrap_or_default()).strong());
                                        ui.horizontal(|ui| {
                                            let p = c.phone.as_deref().unwrap_or_default();
                                            widgets::phone(ui, cx, RecordKind::Consultation, c.id, p);
                                        });
                                        ui.label(
                                            c.referred_department
                                                .as_deref()
                                                .and_then(|d| refs.department(d))
                                                .map_or(String::new(), |d| dept_name(tr, d)),
                                        );
                                        ui.label(c.question.chars().take(20).collect::<String>());
                                    }
                                }
                                ui.end_row();
                            }
                        });
                    });
            }
        }
    }

    /// Takes the (immediate) outcome of issuing the search.
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        if let Outcome::Failed(m) = reply.outcome {
            self.running = false;
            self.results = Some(Err(m.clone()));
        }
    }
}

impl SearchScreen {
    /// Takes search results from the background thread.
    pub fn on_results(&mut self, r: Result<Vec<SearchHit>, String>) {
        self.running = false;
        self.results = Some(r);
    }

    /// Results so far (tests).
    pub fn results(&self) -> Option<&Result<Vec<SearchHit>, String>> {
        self.results.as_ref()
    }
}
