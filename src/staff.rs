//! Staff PINs: argon2id hashes (PHC strings), PIN rules, and the kiosk's own accounts.
//!
//! Staff accounts come from HQ's reference data. Before a kiosk has ever synced it has none, so the first-run path
//! creates a first administrator that lives only in this kiosk's store (`Store::local_staff`).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::model::reference::PinPolicy;
use crate::model::validate::{Problem, ValidationErrors};

/// argon2id memory cost of new PIN hashes, in KiB: 64 MiB. A PIN has 10⁴–10⁸ values, so what protects a stolen
/// hash is the cost of each guess; with these parameters one guess takes tens of milliseconds of a core and 64 MiB
/// of memory (OWASP's recommendation for argon2id is m = 19 MiB, t = 2 at the least; RFC 9106's second choice is
/// m = 64 MiB, t = 3).
pub const ARGON2_M_KIB: u32 = 64 * 1024;
/// argon2id passes over memory (time cost).
pub const ARGON2_T: u32 = 3;
/// argon2id lanes: one (a kiosk signs one person in at a time; more lanes would only help an attacker with cores).
pub const ARGON2_P: u32 = 1;

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

/// A new PIN that is shorter than the reference data's PIN policy asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the PIN has {digits} digits, but the PIN policy (reference data `pin_policy.min_digits`) asks for at least {min}"
)]
pub struct PinTooShort {
    /// Digits in the PIN given.
    pub digits: usize,
    /// The policy's minimum.
    pub min: u32,
}

impl PinTooShort {
    /// The message in the user's language (locale key `signin.pin_policy`, which names the policy field).
    pub fn localized(&self, tr: crate::i18n::Tr) -> String {
        tr.f("signin.pin_policy", &[("min", &self.min), ("digits", &self.digits)])
    }
}

/// Checks a new PIN against the PIN policy (`pin_policy.min_digits` in the reference data: 4 by default, 6 where
/// HQ asks for it). Existing PINs keep working: the policy applies when a PIN is set.
pub fn check_pin_policy(pin: &str, policy: &PinPolicy) -> Result<(), PinTooShort> {
    let digits = pin.chars().count();
    if digits < policy.min_digits as usize {
        return Err(PinTooShort { digits, min: policy.min_digits });
    }
    Ok(())
}

/// The hasher for new PINs: argon2id v1.3 with [`ARGON2_M_KIB`], [`ARGON2_T`], [`ARGON2_P`].
fn hasher() -> Result<Argon2<'static>, String> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a PIN with argon2id (m = 64 MiB, t = 3, p = 1) and a random salt, as a PHC string.
pub fn hash_pin(pin: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()?.hash_password(pin.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `pin` matches a stored hash. The hash's own algorithm and parameters are used (a PHC string carries
/// them), so hashes made with older parameters still verify. An empty or malformed hash never matches.
pub fn verify_pin(hash: &str, pin: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(pin.as_bytes(), &h).is_ok())
}

/// Whether a stored hash was made with weaker parameters than [`hash_pin`] uses now (another algorithm than
/// argon2id v1.3, less memory or fewer passes), so it should be re-hashed the next time the PIN is known.
pub fn needs_rehash(hash: &str) -> bool {
    let Ok(h) = PasswordHash::new(hash) else { return false };
    let Ok(params) = Params::try_from(&h) else { return true };
    h.algorithm != Algorithm::Argon2id.ident()
        || h.version != Some(Version::V0x13.into())
        || params.m_cost() < ARGON2_M_KIB
        || params.t_cost() < ARGON2_T
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
        assert!(a.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{a}");
        assert!(!needs_rehash(&a));
        assert_ne!(a, b, "salted");
        assert!(verify_pin(&a, "2580"));
        assert!(!verify_pin(&a, "2581"));
        assert!(!verify_pin("", "2580"));
        assert!(!verify_pin("garbage", "2580"));
    }

    #[test]
    fn hashes_made_with_the_old_default_parameters_still_verify_and_need_a_rehash() {
        // argon2 0.5's default (m = 19 MiB, t = 2), which GuideDesk used before.
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default().hash_password(b"1234", &salt).unwrap().to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert!(verify_pin(&old, "1234"));
        assert!(!verify_pin(&old, "1235"));
        assert!(needs_rehash(&old));
        assert!(!needs_rehash("garbage"), "nothing to re-hash: it never verifies");
    }

    #[test]
    fn the_pin_policy_refuses_short_pins_naming_its_field() {
        let six = PinPolicy { min_digits: 6 };
        assert_eq!(check_pin_policy("123456", &six), Ok(()));
        assert_eq!(check_pin_policy("12345678", &six), Ok(()));
        let e = check_pin_policy("1234", &six).unwrap_err();
        assert_eq!(e, PinTooShort { digits: 4, min: 6 });
        assert!(e.to_string().contains("pin_policy.min_digits") && e.to_string().contains('6'), "{e}");
        for lang in [crate::config::Language::ZhCn, crate::config::Language::En] {
            let m = e.localized(crate::i18n::Tr::new(lang));
            assert!(m.contains("pin_policy.min_digits") && m.contains('6'), "{m}");
        }
        assert_eq!(check_pin_policy("1234", &PinPolicy::default()), Ok(()));
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
