//! Staff PINs: argon2id hashes (PHC strings), PIN rules, and the kiosk's own accounts.
//!
//! Staff accounts come from HQ's reference data. Before a kiosk has ever synced it has none, so the first-run path
//! creates a first administrator that lives only in this kiosk's store (`Store::local_staff`).

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::model::validate::{Problem, ValidationErrors};

/// Shortest PIN.
pub const PIN_MIN: usize = 4;
/// Longest PIN.
pub const PIN_MAX: usize = 8;
const _: () = assert!(PIN_MIN == 4 && PIN_MAX == 8, "update the OutOfRange figures below");

/// Checks a PIN's shape: 4–8 digits.
pub fn check_pin(errs: &mut ValidationErrors, field: &'static str, pin: &str) {
    if pin.is_empty() {
        errs.push(field, Problem::Required);
    } else if !pin.chars().all(|c| c.is_ascii_digit()) {
        errs.push(field, Problem::NotANumber);
    } else if !(PIN_MIN..=PIN_MAX).contains(&pin.len()) {
        errs.push(field, Problem::OutOfRange { min: 4, max: 8 });
    }
}

/// Hashes a PIN with argon2id and a random salt.
pub fn hash_pin(pin: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(pin.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `pin` matches a stored hash. An empty or malformed hash never matches.
pub fn verify_pin(hash: &str, pin: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(pin.as_bytes(), &h).is_ok())
}

/// Wrong PINs allowed before an account is locked out.
pub const FREE_ATTEMPTS: u32 = 3;
/// The first lockout, after [`FREE_ATTEMPTS`] wrong PINs; each further wrong PIN doubles it.
pub const FIRST_LOCKOUT_MS: i64 = 30_000;
/// The longest lockout.
pub const MAX_LOCKOUT_MS: i64 = 15 * 60_000;

/// Failed sign-in attempts of one account: after [`FREE_ATTEMPTS`] wrong PINs the account is locked out for
/// [`FIRST_LOCKOUT_MS`], doubling with every further wrong PIN up to [`MAX_LOCKOUT_MS`]. A correct PIN clears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Lockout {
    /// Wrong PINs since the last correct one.
    pub failures: u32,
    /// When the last wrong PIN was entered.
    pub last_failure: crate::model::Moment,
}

impl Lockout {
    /// The record after one more wrong PIN at `at`.
    #[must_use]
    pub fn failed(self, at: crate::model::Moment) -> Self {
        Self { failures: self.failures.saturating_add(1), last_failure: at }
    }

    /// How long the account stays locked after its last wrong PIN (zero while free attempts remain).
    pub fn backoff_ms(self) -> i64 {
        if self.failures < FREE_ATTEMPTS {
            return 0;
        }
        let doublings = (self.failures - FREE_ATTEMPTS).min(20);
        FIRST_LOCKOUT_MS.saturating_mul(1_i64 << doublings).min(MAX_LOCKOUT_MS)
    }

    /// Until when the account is locked, if it is locked at `now`.
    pub fn locked_until(self, now: crate::model::Moment) -> Option<crate::model::Moment> {
        let until = self.last_failure.plus_millis(self.backoff_ms());
        (self.backoff_ms() > 0 && now < until).then_some(until)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Moment;

    #[test]
    fn backoff_starts_after_free_attempts_doubles_and_caps() {
        let mut l = Lockout::default();
        for _ in 0..FREE_ATTEMPTS - 1 {
            l = l.failed(Moment(1000));
            assert_eq!(l.locked_until(Moment(1000)), None);
        }
        l = l.failed(Moment(1000));
        assert_eq!(l.backoff_ms(), 30_000);
        assert_eq!(l.locked_until(Moment(1000)), Some(Moment(31_000)));
        assert_eq!(l.locked_until(Moment(31_000)), None);
        l = l.failed(Moment(31_000));
        assert_eq!(l.backoff_ms(), 60_000);
        l = l.failed(Moment(100_000));
        assert_eq!(l.backoff_ms(), 120_000);
        for _ in 0..40 {
            l = l.failed(Moment(100_000));
        }
        assert_eq!(l.backoff_ms(), MAX_LOCKOUT_MS);
    }

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_pin("2580").unwrap();
        let b = hash_pin("2580").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify_pin(&a, "2580"));
        assert!(!verify_pin(&a, "2581"));
        assert!(!verify_pin("", "2580"));
        assert!(!verify_pin("garbage", "2580"));
    }

    #[test]
    fn pin_rules() {
        for (pin, ok) in [("1234", true), ("12345678", true), ("123", false), ("123456789", false), ("12a4", false)] {
            let mut e = ValidationErrors::default();
            check_pin(&mut e, "pin", pin);
            assert_eq!(e.is_empty(), ok, "{pin}");
        }
    }
}
