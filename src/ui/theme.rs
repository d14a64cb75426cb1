//! Design tokens: sizes, spacing and colours in one place, plus the bundled CJK font.
//!
//! The kiosk is used standing, often on a touch screen: every tappable target is at least [`TOUCH`] points high and
//! body text is [`BODY`] points.
//!
//! This is the one module that may make a colour: `clippy.toml` disallows the `Color32` constructors everywhere
//! else, so every colour on screen has a name here.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use egui::{Color32, FontData, FontDefinitions, FontFamily, FontId, TextStyle};

use crate::model::{CaseGrade, Priority, Rating, VisitStep};

/// Noto Sans CJK SC (SIL OFL 1.1), so Chinese renders on machines without CJK fonts.
pub static NOTO_SANS_SC: &[u8] = include_bytes!("../../assets/fonts/NotoSansSC-Regular.otf");

/// Minimum height of anything tappable.
pub const TOUCH: f32 = 48.0;
/// Body text size.
pub const BODY: f32 = 20.0;
/// Heading size.
pub const HEADING: f32 = 28.0;
/// Small text (hints, captions).
pub const SMALL: f32 = 16.0;
/// Width of a form's label column.
pub const LABEL_WIDTH: f32 = 100.0;
/// Width of single-line inputs.
pub const INPUT_WIDTH: f32 = 300.0;
/// Size of a keypad key.
pub const KEY: f32 = 76.0;

/// Alert red (overdue, errors).
pub const ALERT: Color32 = Color32::from_rgb(0xc6, 0x28, 0x28);
/// Warning amber.
pub const WARN: Color32 = Color32::from_rgb(0xb2, 0x6a, 0x00);
/// Success green.
pub const OK: Color32 = Color32::from_rgb(0x2e, 0x7d, 0x32);
/// Muted text.
pub const MUTED: Color32 = Color32::from_rgb(0x5f, 0x63, 0x68);
/// Accent (primary actions).
pub const ACCENT: Color32 = Color32::from_rgb(0x15, 0x65, 0xc0);
/// No fill (a frame that only takes space).
pub const CLEAR: Color32 = Color32::TRANSPARENT;
/// The background of a dashboard count tile.
pub const TILE: Color32 = Color32::from_gray(240);
/// The background of a face button on the patient screen, neither hovered nor chosen.
pub const FACE_BG: Color32 = Color32::from_gray(245);
/// The eyes, mouth and "?" drawn on a face.
pub const FACE_INK: Color32 = Color32::WHITE;
/// The label under a face.
pub const FACE_LABEL: Color32 = Color32::from_gray(30);

/// The colour of a rating's face on the patient screen: green to red, grey for "don't know".
pub fn rating_color(r: Rating) -> Color32 {
    match r {
        Rating::VerySatisfied => Color32::from_rgb(0x2e, 0x7d, 0x32),
        Rating::Satisfied => Color32::from_rgb(0x7c, 0xb3, 0x42),
        Rating::Neutral => Color32::from_rgb(0xf9, 0xa8, 0x25),
        Rating::Dissatisfied => Color32::from_rgb(0xef, 0x6c, 0x00),
        Rating::VeryDissatisfied => Color32::from_rgb(0xc6, 0x28, 0x28),
        Rating::DontKnow => Color32::from_rgb(0x78, 0x90, 0x9c),
    }
}

/// The colour of a case grade: muted for feedback, amber for dissatisfaction, red for complaints and worse.
pub fn grade_color(g: CaseGrade) -> Color32 {
    match g {
        CaseGrade::Feedback | CaseGrade::Suggestion => MUTED,
        CaseGrade::Dissatisfied | CaseGrade::VeryDissatisfied => WARN,
        CaseGrade::Complaint | CaseGrade::Dispute | CaseGrade::Incident => ALERT,
    }
}

/// The colour that marks a visit step on the board.
pub fn step_color(step: VisitStep) -> Color32 {
    match step {
        VisitStep::Triaged => Color32::from_rgb(0x6a, 0x1b, 0x9a),
        VisitStep::Registered => Color32::from_rgb(0x15, 0x65, 0xc0),
        VisitStep::WithDoctor => Color32::from_rgb(0x00, 0x83, 0x8f),
        VisitStep::Paying => Color32::from_rgb(0xef, 0x6c, 0x00),
        VisitStep::Exams => Color32::from_rgb(0x45, 0x5a, 0x64),
        VisitStep::Treatment => Color32::from_rgb(0x6d, 0x4c, 0x41),
        VisitStep::Done | VisitStep::Admitted => OK,
        VisitStep::Left | VisitStep::Cancelled => MUTED,
    }
}

/// The colour of a priority.
pub fn priority_color(p: Priority) -> Color32 {
    match p {
        Priority::Normal => MUTED,
        Priority::Urgent => WARN,
        Priority::Emergency => ALERT,
    }
}

/// Font definitions with the bundled CJK font first in both families.
pub fn fonts() -> FontDefinitions {
    let mut fonts = FontDefinitions::default();
    fonts.font_data.insert("noto_sans_sc".to_owned(), Arc::new(FontData::from_static(NOTO_SANS_SC)));
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        fonts.families.entry(family).or_default().insert(0, "noto_sans_sc".to_owned());
    }
    fonts
}

/// Installs fonts and the touch style. Call once per context (fonts are compared byte for byte when set).
pub fn install(ctx: &egui::Context) {
    ctx.set_fonts(fonts());
    ctx.set_theme(egui::Theme::Light);
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (TextStyle::Small, FontId::proportional(SMALL)),
            (TextStyle::Body, FontId::proportional(BODY)),
            (TextStyle::Button, FontId::proportional(BODY)),
            (TextStyle::Heading, FontId::proportional(HEADING)),
            (TextStyle::Monospace, FontId::monospace(BODY - 2.0)),
        ]
        .into();
        style.spacing.interact_size = egui::vec2(TOUCH, TOUCH);
        style.spacing.button_padding = egui::vec2(12.0, 8.0);
        style.spacing.item_spacing = egui::vec2(10.0, 8.0);
        style.spacing.text_edit_width = INPUT_WIDTH;
        style.spacing.icon_width = 28.0;
        style.spacing.icon_width_inner = 16.0;
        style.spacing.combo_width = INPUT_WIDTH;
        style.spacing.scroll = egui::style::ScrollStyle::solid();
        style.spacing.scroll.bar_width = 16.0;
        style.interaction.selectable_labels = false;
    });
}
