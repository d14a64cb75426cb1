//! Signing in: the PIN check with its lockout back-off, and the first administrator on a new kiosk.

use super::DeskApp;
use crate::command::Outcome;
use crate::model::reference::{Role, Staff};
use crate::model::validate::{self, Problem, ValidationErrors};
use crate::model::{AuditAction, StaffRef};

impl DeskApp {
    /// Checks a PIN, refusing without checking while the account is locked out; wrong PINs are counted in the
    /// store (so a restart does not reset the back-off) and a correct one clears them.
    pub(super) fn sign_in(&mut self, staff: &str, pin: &str) -> Outcome {
        let now = self.store.now();
        let lockout = match self.store.signin_lockout(staff) {
            Ok(l) => l,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        // The id comes from the staff picker; it is cut short all the same before it goes on the log.
        let attempted = StaffRef(staff.chars().filter(|c| !c.is_control()).take(32).collect());
        if let Some(until) = lockout.locked_until(now) {
            self.audit_as(&attempted, AuditAction::SignInFailed, None, "locked out");
            let seconds = (until.millis_since(now) + 999) / 1000;
            return Outcome::Failed(self.tr.f("access.locked_out", &[("seconds", &seconds)]));
        }
        let all = self.store.all_staff().unwrap_or_default();
        match all.into_iter().find(|s| s.id == staff && s.active) {
            Some(s) if crate::staff::verify_pin(&s.pin_hash, pin) => {
                // A local account hashed with older, weaker argon2 parameters is re-hashed now the PIN is known.
                if let Err(e) = self.store.upgrade_local_pin_hash(&s.id, pin) {
                    self.last_error = Some(e.to_string());
                }
                // Someone else at a locked desk: the previous person's screens are not theirs to see.
                if self.staff.as_ref().is_some_and(|old| old.id != s.id) {
                    self.reset_screens();
                }
                if lockout.failures > 0
                    && let Err(e) = self.store.clear_signin_failures(staff)
                {
                    return Outcome::Failed(e.to_string());
                }
                self.staff = Some(s);
                self.locked = false;
                self.last_activity = now;
                self.audit(AuditAction::SignIn, None, "");
                Outcome::Done(None)
            }
            _ => {
                self.audit_as(&attempted, AuditAction::SignInFailed, None, "wrong PIN");
                let after = match self.store.record_signin_failure(staff, now) {
                    Ok(l) => l,
                    Err(e) => return Outcome::Failed(e.to_string()),
                };
                if let Some(until) = after.locked_until(now) {
                    let seconds = (until.millis_since(now) + 999) / 1000;
                    return Outcome::Failed(self.tr.f("access.locked_out", &[("seconds", &seconds)]));
                }
                let mut e = ValidationErrors::default();
                e.push("pin", Problem::Conflict("wrong PIN"));
                Outcome::Invalid(e)
            }
        }
    }

    pub(super) fn create_admin(&mut self, id: &str, name: &str, pin: &str, confirm: &str) -> Outcome {
        if !self.store.all_staff().unwrap_or_default().is_empty() {
            return Outcome::Failed(self.tr.t("signin.admin_exists").to_string());
        }
        let mut e = ValidationErrors::default();
        let id = validate::text(&mut e, "id", id, 20, true);
        if !id.is_empty() && !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            e.push("id", Problem::Conflict("letters, digits and '-' only"));
        }
        let name = validate::text(&mut e, "name", name, validate::limits::NAME, true);
        crate::staff::check_pin(&mut e, "pin", pin);
        if pin != confirm {
            e.push("confirm", Problem::Conflict("the two PINs differ"));
        }
        if !e.is_empty() {
            return Outcome::Invalid(e);
        }
        if let Err(short) = crate::staff::check_pin_policy(pin, &self.store.reference().pin_policy) {
            return Outcome::Failed(short.localized(self.tr));
        }
        let hash = match crate::staff::hash_pin(pin) {
            Ok(h) => h,
            Err(m) => return Outcome::Failed(m),
        };
        let staff = Staff { id, name, role: Role::Administrator, department: None, pin_hash: hash, active: true };
        match self.store.put_local_staff(staff.clone()) {
            Ok(()) => {
                self.staff = Some(staff);
                self.locked = false;
                self.version += 1;
                self.audit(AuditAction::SignIn, None, "first administrator created");
                Outcome::Done(None)
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}
