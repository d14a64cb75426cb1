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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
