//! Staff sign-in: choose your name, enter your PIN on the keypad. First run: create the first administrator.

use egui::{RichText, Ui};

use super::context::{DeskScreen, Reply, ScreenCtx};
use super::data::{Command, Outcome};
use super::i18n::Tr;
use super::{theme, widgets};
use crate::model::ValidationErrors;
use crate::staff::PIN_MAX;

/// Sign-in screen state.
#[derive(Debug, Default)]
pub struct SignInScreen {
    selected: Option<String>,
    pin: String,
    message: Option<String>,
    admin_id: String,
    admin_name: String,
    admin_pin: String,
    admin_confirm: String,
    errors: ValidationErrors,
}

impl SignInScreen {
    /// Preselects a staff member (the one whose session is locked).
    pub fn preselect(&mut self, staff: Option<String>) {
        self.selected = staff;
        self.pin.clear();
    }

    /// The screen's body; the context says whether a session is locked (idle).
    fn body(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) -> Option<Command> {
        let (tr, locked) = (cx.tr, cx.locked);
        let staff = match cx.q.staff() {
            Ok(s) => s,
            Err(e) => {
                ui.colored_label(theme::ALERT, e.to_string());
                return None;
            }
        };
        ui.add_space(16.0);
        if staff.is_empty() {
            return self.first_run_ui(ui, tr);
        }
        let mut cmd = None;
        ui.columns(2, |cols| {
            let [left, right] = cols else { return };
            left.heading(if locked { tr.t("signin.locked") } else { tr.t("signin.title") });
            left.label(RichText::new(tr.t("signin.choose")).color(theme::MUTED));
            left.horizontal_wrapped(|ui| {
                for s in &staff {
                    let on = self.selected.as_deref() == Some(s.id.as_str());
                    let text = format!("{}\n{}", s.name, tr.k("role", role_key(s.role)));
                    if ui
                        .add_sized([150.0, 72.0], egui::Button::selectable(on, text).frame_when_inactive(true))
                        .clicked()
                    {
                        self.selected = Some(s.id.clone());
                        self.pin.clear();
                        self.message = None;
                    }
                }
            });
            cmd = self.pin_ui(right, tr, &staff);
        });
        cmd
    }

    fn pin_ui(&mut self, ui: &mut Ui, tr: Tr, staff: &[crate::model::reference::Staff]) -> Option<Command> {
        let sel = self.selected.clone()?;
        let name = staff.iter().find(|s| s.id == sel).map_or(sel.as_str(), |s| s.name.as_str());
        ui.heading(name);
        let mut submit = false;
        // A physical keyboard works too.
        ui.input(|i| {
            for e in &i.events {
                match e {
                    egui::Event::Text(t) => {
                        for c in t.chars().filter(char::is_ascii_digit) {
                            if self.pin.len() < PIN_MAX {
                                self.pin.push(c);
                            }
                        }
                    }
                    egui::Event::Key { key: egui::Key::Backspace, pressed: true, .. } => {
                        self.pin.pop();
                    }
                    egui::Event::Key { key: egui::Key::Enter, pressed: true, .. } => submit = true,
                    _ => {}
                }
            }
        });
        ui.horizontal(|ui| {
            ui.label(tr.t("signin.pin"));
            let dots: String = "●".repeat(self.pin.len()) + &"○".repeat(4usize.saturating_sub(self.pin.len()));
            ui.label(RichText::new(dots).size(theme::HEADING));
        });
        widgets::keypad(ui, tr, &mut self.pin, PIN_MAX);
        let button =
            egui::Button::new(RichText::new(tr.t("signin.submit")).strong()).fill(theme::ACCENT.linear_multiply(0.25));
        if ui.add_sized([3.0 * theme::KEY + 16.0, theme::TOUCH], button).clicked() {
            submit = true;
        }
        if let Some(m) = &self.message {
            ui.colored_label(theme::ALERT, m);
        }
        if submit {
            let pin = std::mem::take(&mut self.pin);
            return Some(Command::SignIn { staff: sel, pin });
        }
        None
    }

    fn first_run_ui(&mut self, ui: &mut Ui, tr: Tr) -> Option<Command> {
        ui.heading(tr.t("signin.first_run"));
        ui.label(RichText::new(tr.t("signin.first_run_hint")).color(theme::MUTED));
        widgets::text_row(ui, tr.t("signin.admin_id"), &mut self.admin_id, "A001");
        widgets::field_error(ui, tr, &self.errors, "id");
        widgets::text_row(ui, tr.t("signin.admin_name"), &mut self.admin_name, "");
        widgets::field_error(ui, tr, &self.errors, "name");
        widgets::row(ui, tr.t("signin.admin_pin"), |ui| {
            ui.add(egui::TextEdit::singleline(&mut self.admin_pin).password(true))
        });
        widgets::field_error(ui, tr, &self.errors, "pin");
        widgets::row(ui, tr.t("signin.admin_confirm"), |ui| {
            ui.add(egui::TextEdit::singleline(&mut self.admin_confirm).password(true))
        });
        widgets::field_error(ui, tr, &self.errors, "confirm");
        if ui.add_sized([240.0, theme::TOUCH], egui::Button::new(tr.t("signin.create_admin"))).clicked() {
            return Some(Command::CreateAdmin {
                id: self.admin_id.clone(),
                name: self.admin_name.clone(),
                pin: self.admin_pin.clone(),
                confirm: self.admin_confirm.clone(),
            });
        }
        None
    }
}

impl DeskScreen for SignInScreen {
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>) {
        if let Some(c) = self.body(ui, cx) {
            cx.send(c);
        }
    }

    /// Takes the result of a sign-in command.
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        match reply.outcome {
            Outcome::Done(_) => {
                *self = SignInScreen::default();
            }
            Outcome::Invalid(e) => {
                self.errors = e.clone();
                self.message = e.get("pin").map(|_| reply.tr.t("signin.wrong_pin").to_string());
            }
            Outcome::Failed(m) => self.message = Some(m.clone()),
            Outcome::Pending => {}
        }
    }
}

/// The locale key of a role.
pub fn role_key(r: crate::model::reference::Role) -> &'static str {
    use crate::model::reference::Role;
    match r {
        Role::Guide => "guide",
        Role::GuideLead => "guide_lead",
        Role::CustomerService => "customer_service",
        Role::DepartmentHead => "department_head",
        Role::Supervisor => "supervisor",
        Role::Administrator => "administrator",
    }
}
