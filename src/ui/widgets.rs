//! Small shared widgets: the numeric keypad, labelled form rows, field errors, choice chips, the department filter,
//! masked phone numbers with their audited reveal.

use egui::{Align, Layout, RichText, Ui};

use super::context::ScreenCtx;
use super::data::Command;
use super::i18n::Tr;
use super::register::dept_name;
use super::theme;
use crate::model::ReferenceData;
use crate::model::validate::{Problem, ValidationErrors};

/// An on-screen numeric keypad editing `target` (digits only, at most `max_len`). Returns whether it changed.
pub fn keypad(ui: &mut Ui, tr: Tr, target: &mut String, max_len: usize) -> bool {
    let mut changed = false;
    let size = egui::vec2(theme::KEY, theme::KEY * 0.75);
    egui::Grid::new("keypad").spacing(egui::vec2(8.0, 8.0)).min_col_width(theme::KEY).show(ui, |ui| {
        for row in [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]] {
            for d in row {
                if ui.add_sized(size, egui::Button::new(RichText::new(d).size(theme::HEADING))).clicked()
                    && target.len() < max_len
                {
                    target.push_str(d);
                    changed = true;
                }
            }
            ui.end_row();
        }
        if ui.add_sized(size, egui::Button::new(tr.t("keypad.clear"))).clicked() {
            target.clear();
            changed = true;
        }
        if ui.add_sized(size, egui::Button::new(RichText::new("0").size(theme::HEADING))).clicked()
            && target.len() < max_len
        {
            target.push('0');
            changed = true;
        }
        if ui.add_sized(size, egui::Button::new(tr.t("keypad.back"))).clicked() {
            target.pop();
            changed = true;
        }
        ui.end_row();
    });
    changed
}

/// The localised message for a validation problem.
pub fn problem_text(tr: Tr, p: &Problem) -> String {
    match p {
        Problem::Required => tr.t("problem.required").to_string(),
        Problem::TooLong { max } => tr.f("problem.too_long", &[("max", max)]),
        Problem::NotANumber => tr.t("problem.not_a_number").to_string(),
        Problem::OutOfRange { min, max } => tr.f("problem.out_of_range", &[("min", min), ("max", max)]),
        Problem::InvalidPhone => tr.t("problem.invalid_phone").to_string(),
        Problem::Unknown(code) => tr.f("problem.unknown", &[("code", code)]),
        Problem::NotOnDuty => tr.t("problem.not_on_duty").to_string(),
        Problem::InvalidDate => tr.t("problem.invalid_date").to_string(),
        Problem::ControlCharacters => tr.t("problem.control").to_string(),
        Problem::Conflict(why) => format!("{}: {why}", tr.t("problem.conflict")),
        Problem::OutsideCallingHours => tr.t("problem.outside_calling_hours").to_string(),
    }
}

/// Shows the error of `field`, if any, in alert colour.
pub fn field_error(ui: &mut Ui, tr: Tr, errors: &ValidationErrors, field: &str) {
    if let Some(p) = errors.get(field) {
        let size = egui::vec2(ui.available_width(), theme::SMALL + 4.0);
        ui.allocate_ui_with_layout(size, Layout::left_to_right(Align::Center), |ui| {
            ui.add_space(theme::LABEL_WIDTH + ui.spacing().item_spacing.x);
            let text = problem_text(tr, p);
            ui.add(
                egui::Label::new(RichText::new(format!("⚠ {text}")).color(theme::ALERT).size(theme::SMALL)).truncate(),
            )
            .on_hover_text(text);
        });
    }
}

/// The width of a form label: the label column's width, or more for a longer label (never clipped).
fn label_width(ui: &Ui, label: &str) -> f32 {
    let galley = egui::WidgetText::from(label).into_galley(
        ui,
        Some(egui::TextWrapMode::Extend),
        f32::INFINITY,
        egui::TextStyle::Body,
    );
    galley.size().x.max(theme::LABEL_WIDTH)
}

/// A form row: a right-aligned label in the label column, then the field; the field is linked to the label for
/// accessibility. Returns the field's response.
pub fn row(ui: &mut Ui, label: &str, add: impl FnOnce(&mut Ui) -> egui::Response) -> egui::Response {
    ui.horizontal(|ui| {
        let width = label_width(ui, label);
        let l =
            ui.allocate_ui_with_layout(egui::vec2(width, theme::TOUCH), Layout::right_to_left(Align::Center), |ui| {
                ui.label(label)
            });
        add(ui).labelled_by(l.inner.id)
    })
    .inner
}

/// A form row whose content labels itself (choice buttons, chips).
pub fn label_row(ui: &mut Ui, label: &str, add: impl FnOnce(&mut Ui)) {
    ui.horizontal(|ui| {
        let width = label_width(ui, label);
        ui.allocate_ui_with_layout(egui::vec2(width, theme::TOUCH), Layout::right_to_left(Align::Center), |ui| {
            ui.label(label)
        });
        add(ui);
    });
}

/// A labelled single-line text field.
pub fn text_row(ui: &mut Ui, label: &str, value: &mut String, hint: &str) -> egui::Response {
    row(ui, label, |ui| {
        ui.add(
            egui::TextEdit::singleline(value)
                .hint_text(hint)
                .min_size(egui::vec2(theme::INPUT_WIDTH, theme::TOUCH - 8.0)),
        )
    })
}

/// Runs `add` with compact rows (tables of figures and facts, which are read, not tapped).
pub fn compact<R>(ui: &mut Ui, add: impl FnOnce(&mut Ui) -> R) -> R {
    ui.scope(|ui| {
        ui.spacing_mut().interact_size.y = theme::SMALL + 8.0;
        add(ui)
    })
    .inner
}

/// A column of the given width, laid out top-down (forms with unequal columns).
pub fn column(ui: &mut Ui, width: f32, add: impl FnOnce(&mut Ui)) {
    ui.allocate_ui_with_layout(egui::vec2(width, ui.available_height()), Layout::top_down(Align::Min), |ui| {
        ui.set_width(width);
        add(ui);
    });
}

/// A framed toggle button (a tappable chip): highlighted when `on`.
pub fn toggle(ui: &mut Ui, on: bool, text: impl Into<egui::WidgetText>) -> egui::Response {
    ui.add(
        egui::Button::selectable(on, text.into())
            .frame_when_inactive(true)
            .min_size(egui::vec2(theme::TOUCH, theme::TOUCH)),
    )
}

/// A row of mutually exclusive choice buttons (touch-friendly radio). Returns whether the choice changed.
pub fn choice<T: Copy + PartialEq>(ui: &mut Ui, value: &mut Option<T>, options: &[(T, &str)]) -> bool {
    let mut changed = false;
    ui.horizontal_wrapped(|ui| {
        for (v, text) in options {
            if toggle(ui, *value == Some(*v), *text).clicked() {
                *value = Some(*v);
                changed = true;
            }
        }
    });
    changed
}

/// A row of toggle chips for a set of values.
pub fn chips<T: Copy + PartialEq>(ui: &mut Ui, values: &mut Vec<T>, options: &[(T, &str)]) {
    ui.horizontal_wrapped(|ui| {
        for (v, text) in options {
            let on = values.contains(v);
            if toggle(ui, on, *text).clicked() {
                if on {
                    values.retain(|x| x != v);
                } else {
                    values.push(*v);
                }
            }
        }
    });
}

/// Minutes as `1小时05分` / `1 h 05 min`.
pub fn duration(tr: Tr, minutes: i64) -> String {
    let m = minutes.max(0);
    if m >= 60 {
        tr.f("time.hours_minutes", &[("h", &(m / 60)), ("m", &format!("{:02}", m % 60))])
    } else {
        tr.f("time.minutes", &[("m", &m)])
    }
}

/// Notes that the details of a record were opened (audited as a view).
pub fn viewed(cx: &ScreenCtx<'_>, kind: crate::model::RecordKind, id: crate::model::RecordId) {
    cx.request(Command::View { target: Some(crate::model::AuditTarget { kind, id }), what: kind.name() });
}

/// A phone number: masked (`138****8000`) unless it was revealed for this record in this session; for roles that
/// may reveal, a button beside it shows it in full once the reveal is on the audit log.
pub fn phone(ui: &mut Ui, cx: &ScreenCtx<'_>, kind: crate::model::RecordKind, id: crate::model::RecordId, phone: &str) {
    if phone.is_empty() {
        return;
    }
    if cx.revealed.contains(&id) {
        ui.label(egui::RichText::new(phone).strong());
        return;
    }
    ui.label(crate::model::validate::mask_phone(phone));
    let tr = cx.tr;
    if cx.may_reveal
        && ui
            .small_button(tr.t("audit.reveal"))
            .on_hover_text(tr.t("audit.reveal_hint"))
            .accessible_name(tr.t("audit.reveal"))
            .clicked()
    {
        cx.request(Command::Reveal(crate::model::AuditTarget { kind, id }));
    }
}

/// The department filter: a labelled combo box of every department, with "all" (`None`) first. `id` keeps each
/// screen's box apart; `label` is its row label (the accessible name).
/// The desk filter of the site-wide screens (board, dashboard): every desk (`None`), this desk's own (`Some("")`),
/// or one other desk of the site by its code. Shown only once the desk holds another desk's records.
pub fn desk_filter(ui: &mut Ui, tr: Tr, id: &str, desks: &[String], value: &mut Option<String>) {
    if desks.is_empty() {
        return;
    }
    let all = tr.t("board.all");
    let text = match value.as_deref() {
        None => all.to_string(),
        Some("") => tr.t("board.this_desk").to_string(),
        Some(d) => d.to_string(),
    };
    row(ui, tr.t("board.filter_desk"), |ui| {
        egui::ComboBox::from_id_salt(id)
            .width(120.0)
            .selected_text(text)
            .show_ui(ui, |ui| {
                ui.selectable_value(value, None, all);
                ui.selectable_value(value, Some(String::new()), tr.t("board.this_desk"));
                for d in desks {
                    ui.selectable_value(value, Some(d.clone()), d.as_str());
                }
            })
            .response
    });
}

/// A department picked from the site's list (no "all"): `value` holds its code, empty until one is chosen.
pub fn department_pick(ui: &mut Ui, tr: Tr, refs: &ReferenceData, id: &str, label: &str, value: &mut String) {
    let text = refs.department(value).map_or_else(|| tr.t("register.choose").to_string(), |d| dept_name(tr, d));
    row(ui, label, |ui| {
        egui::ComboBox::from_id_salt(id)
            .selected_text(text)
            .height(400.0)
            .show_ui(ui, |ui| {
                for d in &refs.departments {
                    ui.selectable_value(value, d.id.clone(), dept_name(tr, d));
                }
            })
            .response
    });
}

pub fn department_filter(
    ui: &mut Ui,
    cx: &ScreenCtx<'_>,
    id: &str,
    label: &str,
    width: f32,
    value: &mut Option<String>,
) -> egui::Response {
    let tr = cx.tr;
    let refs = &cx.refs;
    let all = tr.t("board.all");
    let text = value.as_ref().and_then(|d| refs.department(d)).map_or(all.to_string(), |d| dept_name(tr, d));
    row(ui, label, |ui| {
        egui::ComboBox::from_id_salt(id)
            .width(width)
            .selected_text(text)
            .height(400.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(value, None, all);
                for d in &refs.departments {
                    ui.selectable_value(value, Some(d.id.clone()), dept_name(tr, d));
                }
            })
            .response
    })
}
