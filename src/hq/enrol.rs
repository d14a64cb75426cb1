//! Enrolment rules, written once for both stores ([`super::store::HqStore`], [`super::pg::PgStore`]): each store
//! reads the code and the device under its write lock, asks [`check`], and writes what the answer allows.
//!
//! - A code is **single use**. The device that used it may use it again for [`RETRY_WINDOW_MS`] after the first
//!   use (its first answer was lost on the way): it gets a fresh credential and the first one stops working.
//! - **Expiry is always checked**, for a retry too.
//! - A code enrols an **existing** device id only when it was issued for that device (`enroll-code --device ID`,
//!   to replace a broken kiosk's credential), and never moves a device to another site.
//! - Enrolment **never clears a revocation**: a revoked device is refused until `guidedesk-hq reinstate`.

use super::rows::EnrollRefusal;

/// How long after its first use the same device may use a code again (its first answer was lost).
pub const RETRY_WINDOW_MS: u64 = 10 * 60 * 1000;

/// What a store knows about an enrolment code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeState<'a> {
    /// Site the code enrols into.
    pub site: &'a str,
    /// When it stops working (ms).
    pub expires_ms: u64,
    /// The device that used it.
    pub used_by: Option<u128>,
    /// When it was first used (ms); `None` for a used code from before this was recorded (no retry window).
    pub used_ms: Option<u64>,
    /// The only device it may enrol, when it was issued for one.
    pub for_device: Option<u128>,
}

/// What a store knows about the device that asks to enrol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceState<'a> {
    /// Its site.
    pub site: &'a str,
    /// Whether it is revoked.
    pub revoked: bool,
}

/// Whether `device` may enrol with `code` at `now_ms`; `existing` is the device's row, if it is enrolled already.
pub fn check(
    code: &CodeState<'_>,
    existing: Option<&DeviceState<'_>>,
    device: u128,
    now_ms: u64,
) -> Result<(), EnrollRefusal> {
    if now_ms > code.expires_ms {
        return Err(EnrollRefusal::Expired);
    }
    if code.for_device.is_some_and(|d| d != device) {
        return Err(EnrollRefusal::ForAnotherDevice);
    }
    let retry = match code.used_by {
        Some(d) if d != device => return Err(EnrollRefusal::Used),
        Some(_) => match code.used_ms {
            Some(at) if now_ms <= at.saturating_add(RETRY_WINDOW_MS) => true,
            _ => return Err(EnrollRefusal::Used),
        },
        None => false,
    };
    let Some(dev) = existing else { return Ok(()) };
    if dev.revoked {
        return Err(EnrollRefusal::Revoked);
    }
    if dev.site != code.site {
        return Err(EnrollRefusal::OtherSite);
    }
    if retry || code.for_device == Some(device) { Ok(()) } else { Err(EnrollRefusal::AlreadyEnrolled) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;

    fn code(used_by: Option<u128>, used_ms: Option<u64>, for_device: Option<u128>) -> CodeState<'static> {
        CodeState { site: "west", expires_ms: 10 * H, used_by, used_ms, for_device }
    }

    #[test]
    fn a_fresh_code_enrols_a_new_device_until_it_expires() {
        assert_eq!(check(&code(None, None, None), None, 7, H), Ok(()));
        assert_eq!(check(&code(None, None, None), None, 7, 11 * H), Err(EnrollRefusal::Expired));
    }

    #[test]
    fn a_used_code_is_refused_to_others_and_to_its_device_after_the_retry_window() {
        let west = DeviceState { site: "west", revoked: false };
        let c = code(Some(7), Some(H), None);
        assert_eq!(check(&c, None, 8, H + 1), Err(EnrollRefusal::Used));
        assert_eq!(check(&c, Some(&west), 7, H + RETRY_WINDOW_MS), Ok(()), "lost answer: retry");
        assert_eq!(check(&c, Some(&west), 7, H + RETRY_WINDOW_MS + 1), Err(EnrollRefusal::Used));
        // A code used before the first use was recorded never gets a retry.
        assert_eq!(check(&code(Some(7), None, None), Some(&west), 7, H), Err(EnrollRefusal::Used));
        // Expiry is checked for a retry too.
        assert_eq!(check(&c, Some(&west), 7, 11 * H), Err(EnrollRefusal::Expired));
    }

    #[test]
    fn enrolment_never_clears_a_revocation() {
        let revoked = DeviceState { site: "west", revoked: true };
        assert_eq!(check(&code(Some(7), Some(H), None), Some(&revoked), 7, H + 1), Err(EnrollRefusal::Revoked));
        assert_eq!(check(&code(None, None, Some(7)), Some(&revoked), 7, H), Err(EnrollRefusal::Revoked));
        assert_eq!(check(&code(None, None, None), Some(&revoked), 7, H), Err(EnrollRefusal::Revoked));
    }

    #[test]
    fn an_existing_device_takes_only_a_code_issued_for_it_and_never_changes_site() {
        let west = DeviceState { site: "west", revoked: false };
        let east = DeviceState { site: "east", revoked: false };
        assert_eq!(check(&code(None, None, None), Some(&west), 7, H), Err(EnrollRefusal::AlreadyEnrolled));
        assert_eq!(check(&code(None, None, Some(7)), Some(&west), 7, H), Ok(()));
        assert_eq!(check(&code(None, None, Some(7)), Some(&east), 7, H), Err(EnrollRefusal::OtherSite));
        assert_eq!(check(&code(None, None, Some(8)), None, 7, H), Err(EnrollRefusal::ForAnotherDevice));
    }
}
