//! Field-level validation shared by every form.
//!
//! A form (raw strings as typed) converts to a validated value or to [`ValidationErrors`], one [`FieldError`] per
//! bad field. Each error names its field by a stable key (`"phone"`, `"age"`, …) and its [`Problem`], so a screen can
//! show the message next to the field in the user's language while the CLI prints the English text.

use std::fmt;

/// What is wrong with a field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The field must be filled in.
    Required,
    /// The text is longer than allowed (in characters).
    TooLong {
        /// The maximum number of characters.
        max: usize,
    },
    /// The text is not a whole number.
    NotANumber,
    /// The number is outside the allowed range.
    OutOfRange {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// Not a mainland mobile number (11 digits starting 1) or a landline with area code.
    InvalidPhone,
    /// The value refers to reference data that does not exist (a department or doctor code).
    Unknown(String),
    /// The doctor is not on duty on that day.
    NotOnDuty,
    /// The date is not a valid `YYYY-MM-DD` date.
    InvalidDate,
    /// The value contradicts another field; the text says how.
    Conflict(&'static str),
    /// The text contains control characters.
    ControlCharacters,
    /// A call recorded outside the calling hours needs the reason in its notes.
    OutsideCallingHours,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Required => f.write_str("is required"),
            Problem::TooLong { max } => write!(f, "is longer than {max} characters"),
            Problem::NotANumber => f.write_str("is not a whole number"),
            Problem::OutOfRange { min, max } => write!(f, "must be between {min} and {max}"),
            Problem::InvalidPhone => {
                f.write_str("is not a valid phone number (11-digit mobile, or landline with area code)")
            }
            Problem::Unknown(code) => write!(f, "refers to unknown code {code:?}"),
            Problem::NotOnDuty => f.write_str("is not on duty that day"),
            Problem::InvalidDate => f.write_str("is not a valid date (YYYY-MM-DD)"),
            Problem::Conflict(why) => f.write_str(why),
            Problem::ControlCharacters => f.write_str("contains control characters"),
            Problem::OutsideCallingHours => f.write_str(
                "must say why the patient was called outside the calling hours (e.g. asked to be called now)",
            ),
        }
    }
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's stable key (also its locale key suffix).
    pub field: &'static str,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.problem)
    }
}

/// All invalid fields of one form, in form order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Records a problem with a field.
    pub fn push(&mut self, field: &'static str, problem: Problem) {
        self.0.push(FieldError { field, problem });
    }

    /// Whether no field is invalid.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problem with `field`, if any.
    pub fn get(&self, field: &str) -> Option<&Problem> {
        self.0.iter().find(|e| e.field == field).map(|e| &e.problem)
    }

    /// `Ok(value)` if no field is invalid, else the errors.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, ValidationErrors> {
        if self.is_empty() { Ok(value()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Maximum lengths (characters) of free-text fields.
pub mod limits {
    /// Person names.
    pub const NAME: usize = 40;
    /// One-line texts (origin, how heard, relation, intention…).
    pub const SHORT: usize = 100;
    /// Multi-line texts (complaint, facts, answers, notes).
    pub const LONG: usize = 2000;
}

/// Trims and checks a text field; `required` fields may not be empty.
pub fn text(errs: &mut ValidationErrors, field: &'static str, raw: &str, max: usize, required: bool) -> String {
    let t = raw.trim();
    if t.is_empty() {
        if required {
            errs.push(field, Problem::Required);
        }
        return String::new();
    }
    if t.chars().count() > max {
        errs.push(field, Problem::TooLong { max });
    } else if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        errs.push(field, Problem::ControlCharacters);
    }
    t.to_string()
}

/// An optional text field: `None` when empty.
pub fn opt_text(errs: &mut ValidationErrors, field: &'static str, raw: &str, max: usize) -> Option<String> {
    let t = text(errs, field, raw, max, false);
    if t.is_empty() { None } else { Some(t) }
}

/// Parses a whole number in `min..=max`; empty gives `None` (or `Required` when `required`).
pub fn number(
    errs: &mut ValidationErrors,
    field: &'static str,
    raw: &str,
    min: i64,
    max: i64,
    required: bool,
) -> Option<i64> {
    let t = raw.trim();
    if t.is_empty() {
        if required {
            errs.push(field, Problem::Required);
        }
        return None;
    }
    match t.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        Ok(_) => {
            errs.push(field, Problem::OutOfRange { min, max });
            None
        }
        Err(_) => {
            errs.push(field, Problem::NotANumber);
            None
        }
    }
}

/// Normalises a phone number to its digits (spaces, dashes, dots, brackets and a `+86`/`0086` prefix removed) and
/// checks it is a mainland mobile (`1[3-9]` + 9 digits) or a landline with area code (`0` + 9–11 digits).
pub fn normalize_phone(raw: &str) -> Result<String, Problem> {
    let mut t = raw.trim().to_string();
    if let Some(rest) = t.strip_prefix("+86").or_else(|| t.strip_prefix("0086")) {
        t = rest.to_string();
    }
    if t.chars().any(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))) {
        return Err(Problem::InvalidPhone);
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let b = digits.as_bytes();
    let mobile = b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
    let landline = b.first() == Some(&b'0') && (10..=12).contains(&b.len());
    if mobile || landline { Ok(digits) } else { Err(Problem::InvalidPhone) }
}

/// An optional phone field: `None` when empty.
pub fn opt_phone(errs: &mut ValidationErrors, field: &'static str, raw: &str) -> Option<String> {
    if raw.trim().is_empty() {
        return None;
    }
    match normalize_phone(raw) {
        Ok(p) => Some(p),
        Err(p) => {
            errs.push(field, p);
            None
        }
    }
}

/// A required phone field.
pub fn phone(errs: &mut ValidationErrors, field: &'static str, raw: &str) -> String {
    if raw.trim().is_empty() {
        errs.push(field, Problem::Required);
        return String::new();
    }
    opt_phone(errs, field, raw).unwrap_or_default()
}

/// Masks a phone number for lists: `138****5678` (mobile) or the last four digits only.
pub fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    if n >= 11 {
        let head: String = phone.chars().take(3).collect();
        let tail: String = phone.chars().skip(n - 4).collect();
        format!("{head}****{tail}")
    } else if n > 4 {
        let tail: String = phone.chars().skip(n - 4).collect();
        format!("****{tail}")
    } else {
        "****".to_string()
    }
}

/// Parses an optional `YYYY-MM-DD` date.
pub fn opt_date(errs: &mut ValidationErrors, field: &'static str, raw: &str) -> Option<chrono::NaiveDate> {
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    let parsed = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok();
    if parsed.is_none() {
        errs.push(field, Problem::InvalidDate);
    }
    parsed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phones() {
        assert_eq!(normalize_phone("138 0013 8000").unwrap(), "13800138000");
        assert_eq!(normalize_phone("+86 138-0013-8000").unwrap(), "13800138000");
        assert_eq!(normalize_phone("(010) 6512-3456").unwrap(), "01065123456");
        assert_eq!(normalize_phone("0755-8888888").unwrap(), "07558888888");
        for bad in ["12800138000", "1380013800", "abc", "138001380001", "110", "13800l38000"] {
            assert_eq!(normalize_phone(bad), Err(Problem::InvalidPhone), "{bad}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("01065123456"), "010****3456");
        assert_eq!(mask_phone("123"), "****");
    }

    #[test]
    fn texts_and_numbers() {
        let mut e = ValidationErrors::default();
        assert_eq!(text(&mut e, "name", "  张三 ", 40, true), "张三");
        assert!(e.is_empty());
        text(&mut e, "name", "   ", 40, true);
        assert_eq!(e.get("name"), Some(&Problem::Required));
        let mut e = ValidationErrors::default();
        text(&mut e, "name", &"长".repeat(41), 40, true);
        assert_eq!(e.get("name"), Some(&Problem::TooLong { max: 40 }));
        let mut e = ValidationErrors::default();
        assert_eq!(number(&mut e, "age", "130", 0, 130, true), Some(130));
        assert_eq!(number(&mut e, "age", "131", 0, 130, true), None);
        assert_eq!(number(&mut e, "x", "3a", 0, 130, true), None);
        assert_eq!(e.0.len(), 2);
        assert_eq!(e.to_string(), "age must be between 0 and 130; x is not a whole number");
    }

    proptest! {
        #[test]
        fn valid_mobiles_normalise_to_themselves(second in 3u8..=9, rest in "[0-9]{9}") {
            let p = format!("1{second}{rest}");
            prop_assert_eq!(normalize_phone(&p).unwrap(), p.clone());
            prop_assert_eq!(mask_phone(&p).chars().count(), 11);
        }

        #[test]
        fn phone_normalisation_never_panics(s in ".*") {
            let _ = normalize_phone(&s);
        }
    }
}
