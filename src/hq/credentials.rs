//! Credentials and enrolment codes as both HQ stores make and look them up: fresh random credentials and codes,
//! the normalisation of a typed code, the SHA-256 that is stored in their place, and the shape of site and desk
//! codes. Whether a code may be used is `hq::enrol`'s rule, not this module's.

use sha2::{Digest, Sha256};

use super::rows::HqError;

/// SHA-256 of a credential or code: what HQ stores in their place.
pub(crate) fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Site and desk codes as enrolment codes carry them: trimmed, 1–64 characters, none a control character.
pub fn check_site_desk<'a>(site: &'a str, desk: &'a str) -> Result<(&'a str, &'a str), HqError> {
    let (site, desk) = (site.trim(), desk.trim());
    for (name, value) in [("site", site), ("desk", desk)] {
        if !is_code(value) {
            return Err(HqError::Refused(format!("{name} must be 1 to 64 characters without control characters")));
        }
    }
    Ok((site, desk))
}

/// Whether `s` is a plausible site or desk code (see [`check_site_desk`]).
pub fn is_code(s: &str) -> bool {
    (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control)
}

/// Normalises a typed enrolment code: upper case, no separators or spaces.
pub fn normalize_code(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], HqError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| HqError::Refused(format!("no randomness available: {e}")))?;
    Ok(b)
}

/// A new credential: 32 random bytes in hex.
pub fn new_token() -> Result<String, HqError> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64);
    for b in random_bytes::<32>()? {
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

/// A new one-time enrolment code: 12 random characters in groups of four (`XXXX-XXXX-XXXX`).
pub(crate) fn new_code() -> Result<String, HqError> {
    // Crockford base32 without I, L, O, U: easy to read aloud and type. 12 characters, 60 bits.
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bytes = random_bytes::<12>()?;
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
    Ok(chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-"))
}
