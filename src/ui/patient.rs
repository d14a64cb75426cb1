//! The patient feedback screen: anonymous, one question per screen, taps only, very large labelled faces.
//!
//! The overall question (five labelled faces plus "don't know", all the same size so a negative answer is as easy
//! as a positive one), then the optional ratings of each aspect from the survey definition, preset reasons, an
//! optional comment, and an optional request to be contacted with a phone number on the keypad. Nothing on this
//! screen shows a staff member, a record or a name. The app saves an abandoned survey as incomplete after the
//! survey's timeout.

use egui::{Pos2, RichText, Sense, Stroke, Ui, Vec2};

use super::i18n::Tr;
use super::{theme, widgets};
use crate::config::Language;
use crate::model::reference::SurveyDefinition;
use crate::model::{Dimension, FeedbackForm, Rating};

/// Where the patient is in the survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The overall question.
    Overall,
    /// The n-th optional aspect question (index into the survey's aspect questions).
    Aspect(usize),
    /// Preset reasons.
    Reasons,
    /// Free comment.
    Comment,
    /// "May we contact you?"
    Contact,
    /// Phone number on the keypad.
    Phone,
    /// Thank you.
    Thanks,
}

/// What the patient screen asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum PatientAction {
    /// Save the survey (complete or not).
    Submit(Box<FeedbackForm>),
    /// A staff member wants to leave patient mode with this PIN.
    Leave(String),
}

/// Patient screen state.
#[derive(Debug)]
pub struct PatientScreen {
    step: Step,
    form: FeedbackForm,
    lang: Language,
    staff_exit: Option<String>,
    exit_message: bool,
    phone_error: bool,
}

impl PatientScreen {
    /// A fresh survey in the kiosk's language.
    pub fn new(lang: Language) -> Self {
        Self {
            step: Step::Overall,
            form: FeedbackForm::default(),
            lang,
            staff_exit: None,
            exit_message: false,
            phone_error: false,
        }
    }

    /// The current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Whether the patient has answered anything yet (an abandoned survey is saved only then).
    pub fn in_progress(&self) -> bool {
        self.form.overall.is_some() && self.step != Step::Thanks
    }

    /// The answers so far, marked incomplete (for the timeout).
    pub fn abandoned(&self) -> FeedbackForm {
        FeedbackForm { complete: false, ..self.form.clone() }
    }

    /// Starts over for the next person.
    pub fn reset(&mut self, lang: Language) {
        *self = Self::new(lang);
    }

    /// Shows the thanks screen after a save.
    pub fn thank(&mut self) {
        self.step = Step::Thanks;
    }

    /// The PIN was wrong.
    pub fn exit_refused(&mut self) {
        self.exit_message = true;
        self.staff_exit = Some(String::new());
    }

    fn aspects(survey: &SurveyDefinition) -> Vec<(Dimension, &crate::model::reference::SurveyQuestion)> {
        survey.questions.iter().filter_map(|q| Dimension::from_key(&q.key).map(|d| (d, q))).collect()
    }

    /// The screen.
    pub fn ui(&mut self, ui: &mut Ui, survey: &SurveyDefinition) -> Option<PatientAction> {
        let tr = Tr::new(self.lang);
        let mut action = None;
        ui.horizontal(|ui| {
            let other = if self.lang == Language::ZhCn { Language::En } else { Language::ZhCn };
            if ui.add(egui::Button::new(RichText::new(tr.t("app.switch_language")).size(theme::BODY))).clicked() {
                self.lang = other;
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui
                    .add(
                        egui::Button::new(RichText::new(tr.t("patient.staff")).size(theme::SMALL).color(theme::MUTED))
                            .frame(false),
                    )
                    .clicked()
                {
                    self.staff_exit = Some(String::new());
                    self.exit_message = false;
                }
            });
        });
        if let Some(pin) = &mut self.staff_exit {
            let mut leave = false;
            let mut cancel = false;
            egui::Modal::new(egui::Id::unique("patient_exit")).show(ui.ctx(), |ui| {
                ui.heading(tr.t("patient.exit_title"));
                ui.label(
                    RichText::new("●".repeat(pin.len()) + &"○".repeat(4usize.saturating_sub(pin.len())))
                        .size(theme::HEADING),
                );
                widgets::keypad(ui, tr, pin, crate::staff::PIN_MAX);
                if self.exit_message {
                    ui.colored_label(theme::ALERT, tr.t("signin.wrong_pin"));
                }
                ui.horizontal(|ui| {
                    leave = ui.button(tr.t("patient.exit_confirm")).clicked();
                    cancel = ui.button(tr.t("dialog.back")).clicked();
                });
            });
            if leave {
                action = Some(PatientAction::Leave(std::mem::take(pin)));
            } else if cancel {
                self.staff_exit = None;
            }
        }
        let aspects = Self::aspects(survey);
        let total = aspects.len() + 4;
        let question_text = |q: &crate::model::reference::SurveyQuestion| match self.lang {
            Language::ZhCn => q.text_zh.clone(),
            Language::En => q.text_en.clone(),
        };
        ui.add_space(12.0);
        match self.step {
            Step::Overall => {
                let q = survey.questions.first().map(question_text).unwrap_or_default();
                heading(ui, &q);
                progress(ui, tr, 1, total);
                if let Some(r) = scale(ui, tr, self.form.overall) {
                    self.form.survey_version = survey.version;
                    self.form.overall = Some(r);
                    self.step = if aspects.is_empty() { Step::Reasons } else { Step::Aspect(0) };
                }
            }
            Step::Aspect(i) => {
                let Some((dim, q)) = aspects.get(i) else {
                    self.step = Step::Reasons;
                    return action;
                };
                heading(ui, &tr.f("patient.rate_aspect", &[("aspect", &question_text(q))]));
                progress(ui, tr, i + 2, total);
                let current = self.form.ratings.iter().find(|(d, _)| d == dim).map(|x| x.1);
                let next = if i + 1 < aspects.len() { Step::Aspect(i + 1) } else { Step::Reasons };
                if let Some(r) = scale(ui, tr, current) {
                    self.form.ratings.retain(|(d, _)| d != dim);
                    self.form.ratings.push((*dim, r));
                    self.step = next;
                }
                if nav(ui, tr, "patient.skip", true) {
                    self.step = next;
                }
            }
            Step::Reasons => {
                heading(ui, tr.t("patient.reasons"));
                progress(ui, tr, total - 2, total);
                ui.horizontal_wrapped(|ui| {
                    for (zh, en) in &survey.reasons {
                        let text = if self.lang == Language::ZhCn { zh } else { en };
                        let on = self.form.reasons.contains(zh);
                        let b = egui::Button::selectable(on, RichText::new(text).size(theme::HEADING))
                            .frame_when_inactive(true)
                            .min_size(Vec2::new(220.0, 80.0));
                        if ui.add(b).clicked() {
                            if on {
                                self.form.reasons.retain(|r| r != zh);
                            } else {
                                self.form.reasons.push(zh.clone());
                            }
                        }
                    }
                });
                if nav(ui, tr, "patient.next", true) {
                    self.step = Step::Comment;
                }
            }
            Step::Comment => {
                heading(ui, tr.t("patient.comment"));
                progress(ui, tr, total - 1, total);
                let label = ui.label(RichText::new(tr.t("patient.comment_hint")).color(theme::MUTED));
                ui.add(
                    egui::TextEdit::multiline(&mut self.form.comment)
                        .desired_rows(3)
                        .desired_width(ui.available_width().min(900.0))
                        .font(egui::FontId::proportional(theme::HEADING)),
                )
                .labelled_by(label.id);
                if nav(ui, tr, "patient.next", true) {
                    self.step = Step::Contact;
                }
            }
            Step::Contact => {
                heading(ui, tr.t("patient.contact"));
                progress(ui, tr, total, total);
                ui.horizontal(|ui| {
                    if big_button(ui, tr.t("patient.contact_yes")).clicked() {
                        self.step = Step::Phone;
                    }
                    if big_button(ui, tr.t("patient.contact_no")).clicked() {
                        self.form.contact_phone.clear();
                        self.form.complete = true;
                        action = Some(PatientAction::Submit(Box::new(self.form.clone())));
                    }
                });
            }
            Step::Phone => {
                heading(ui, tr.t("patient.phone"));
                ui.label(
                    RichText::new(if self.form.contact_phone.is_empty() {
                        "—".to_string()
                    } else {
                        self.form.contact_phone.clone()
                    })
                    .size(48.0),
                );
                widgets::keypad(ui, tr, &mut self.form.contact_phone, 12);
                if self.phone_error {
                    ui.colored_label(theme::ALERT, RichText::new(tr.t("problem.invalid_phone")).size(theme::HEADING));
                }
                ui.horizontal(|ui| {
                    if big_button(ui, tr.t("patient.submit")).clicked() {
                        if crate::model::validate::normalize_phone(&self.form.contact_phone).is_ok() {
                            self.form.complete = true;
                            self.phone_error = false;
                            action = Some(PatientAction::Submit(Box::new(self.form.clone())));
                        } else {
                            self.phone_error = true;
                        }
                    }
                    if big_button(ui, tr.t("dialog.back")).clicked() {
                        self.step = Step::Contact;
                    }
                });
            }
            Step::Thanks => {
                ui.add_space(120.0);
                ui.vertical_centered(|ui| {
                    ui.label(RichText::new(tr.t("patient.thanks")).size(56.0).color(theme::OK));
                    ui.label(RichText::new(tr.t("patient.thanks_more")).size(theme::HEADING).color(theme::MUTED));
                });
            }
        }
        action
    }

    /// The language the patient chose.
    pub fn lang(&self) -> Language {
        self.lang
    }
}

fn heading(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(text).size(40.0).strong());
}

fn progress(ui: &mut Ui, tr: Tr, n: usize, total: usize) {
    ui.label(
        RichText::new(tr.f("patient.progress", &[("n", &n), ("total", &total)])).size(theme::BODY).color(theme::MUTED),
    );
    ui.add_space(16.0);
}

fn big_button(ui: &mut Ui, text: &str) -> egui::Response {
    ui.add(egui::Button::new(RichText::new(text).size(36.0)).min_size(Vec2::new(260.0, 110.0)))
}

fn nav(ui: &mut Ui, tr: Tr, key: &str, enabled: bool) -> bool {
    ui.add_space(24.0);
    ui.add_enabled(enabled, egui::Button::new(RichText::new(tr.t(key)).size(32.0)).min_size(Vec2::new(220.0, 90.0)))
        .clicked()
}

/// The five labelled faces and "don't know", all the same size. Returns the rating tapped.
fn scale(ui: &mut Ui, tr: Tr, current: Option<Rating>) -> Option<Rating> {
    let mut chosen = None;
    let gap = 16.0;
    let w = ((ui.available_width() - 5.0 * gap) / 6.0).clamp(120.0, 200.0);
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = gap;
        for r in Rating::ALL {
            if face_button(ui, r, tr.k("rating", r.key()), w, current == Some(r)).clicked() {
                chosen = Some(r);
            }
        }
    });
    chosen
}

/// A large face with its label underneath; one accessible button.
fn face_button(ui: &mut Ui, r: Rating, label: &str, width: f32, selected: bool) -> egui::Response {
    let size = Vec2::new(width, width + 80.0);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, label));
    let painter = ui.painter_at(rect);
    let color = theme::rating_color(r);
    let bg = if response.hovered() || selected { color.gamma_multiply(0.25) } else { theme::FACE_BG };
    painter.rect_filled(rect, 16.0, bg);
    if selected {
        painter.rect_stroke(rect, 16.0, Stroke::new(4.0, color), egui::StrokeKind::Inside);
    }
    let c = Pos2::new(rect.center().x, rect.top() + width / 2.0);
    let rad = width * 0.36;
    painter.circle_filled(c, rad, color);
    let ink = theme::FACE_INK;
    let eye_dx = rad * 0.38;
    let eye_y = c.y - rad * 0.25;
    if r == Rating::DontKnow {
        painter.text(c, egui::Align2::CENTER_CENTER, "?", egui::FontId::proportional(rad * 1.3), ink);
    } else {
        painter.circle_filled(Pos2::new(c.x - eye_dx, eye_y), rad * 0.11, ink);
        painter.circle_filled(Pos2::new(c.x + eye_dx, eye_y), rad * 0.11, ink);
        // Mouth: a quadratic curve; its control point sets the smile (down) or frown (up).
        let bend = match r {
            Rating::VerySatisfied => 0.55,
            Rating::Satisfied => 0.3,
            Rating::Neutral => 0.0,
            Rating::Dissatisfied => -0.3,
            _ => -0.55,
        };
        let y = c.y + rad * 0.35;
        let left = Pos2::new(c.x - rad * 0.5, y);
        let right = Pos2::new(c.x + rad * 0.5, y);
        let ctrl = Pos2::new(c.x, y + bend * rad);
        painter.add(egui::epaint::QuadraticBezierShape::from_points_stroke(
            [left, ctrl, right],
            false,
            theme::CLEAR,
            Stroke::new(rad * 0.1, ink),
        ));
    }
    // The label, wrapped onto two lines if it is too wide for the face.
    let galley =
        painter.layout(label.to_string(), egui::FontId::proportional(theme::HEADING), theme::FACE_LABEL, width - 12.0);
    let pos = Pos2::new(rect.center().x - galley.size().x / 2.0, rect.bottom() - 12.0 - galley.size().y);
    painter.galley(pos, galley, theme::FACE_LABEL);
    response
}
