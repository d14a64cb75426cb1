//! Relay between a site hub and the group HQ.
//!
//! A hospital runs `guidedesk-hq serve` on its LAN as a **hub**: its desks sync with it all day, whatever the line
//! to the group's headquarters does. Enrolled once at the group HQ (`guidedesk-hq enroll --hq URL --code CODE`,
//! with a code from the group HQ's `enroll-code --site SITE --hub`), the hub keeps a relay log of every op it
//! applies (`hq::store`'s `relay_log`, written in the op's own transaction) and forwards it upstream:
//!
//! - **Up** ([`outbound`]): the log is sent after the group HQ's cursor in [`RelayRequest`] batches over `POST
//!   /v1/relay`. Each entry keeps its origin (the desk's device and the op's own seq), and the group HQ takes each
//!   (origin, seq) once by its receipts ([`inbound`]), so an op that reached it by another path (the desk synced
//!   directly, or through another hub) is a duplicate, never a second copy. The relay seq is contiguous like a
//!   device's: a group HQ restored from an older backup asks for the missing part again (acknowledged entries are
//!   retained for a while for this).
//! - **Down**: the group's reference data (departments, doctors, duty, policies, calendar) is pulled from the group
//!   HQ and published at the hub for every site it serves; site-level data imported at the hub stays there.
//!
//! At the group HQ a hub is a device whose desk code is [`HUB_DESK`]; only a hub may relay, only for its own site.
//! Each origin device gets a row at the group HQ on its first relayed op (no credential; `enroll-code --device ID`
//! gives it one if it later syncs directly, and it resumes after the highest op the group HQ holds).
//!
//! [`RelayRequest`]: guidedesk_sync::protocol::RelayRequest

pub mod inbound;
pub mod outbound;

/// The desk code of a hub at the group HQ. Ordinary desk codes never start with `@`.
pub const HUB_DESK: &str = "@hub";

/// Whether a desk code names a hub.
pub fn is_hub_desk(desk: &str) -> bool {
    desk == HUB_DESK
}

/// The desk code an origin device gets at the group HQ: the hub's code for it, or `relayed` when that is not a
/// plain desk code (a hub may never make another device a hub).
pub fn origin_desk(desk: &str) -> String {
    if crate::hq::credentials::is_code(desk) && !desk.starts_with('@') { desk.to_string() } else { "relayed".into() }
}

/// Whether a relayed op of a device known at `known_site` may be taken from a hub of `hub_site`.
pub fn origin_check(hub_site: &str, known_site: &str, revoked: bool) -> Result<(), String> {
    if known_site != hub_site {
        return Err(format!("the op's device belongs to site {known_site}, not to the hub's site {hub_site}"));
    }
    if revoked {
        return Err("the op's device is revoked at the group HQ".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_cannot_name_a_device_a_hub_or_move_it_to_its_site() {
        assert_eq!(origin_desk("lobby-1"), "lobby-1");
        assert_eq!(origin_desk(HUB_DESK), "relayed");
        assert_eq!(origin_desk("@anything"), "relayed");
        assert_eq!(origin_desk(""), "relayed");
        assert_eq!(origin_desk("a\nb"), "relayed");
        assert!(origin_check("west", "west", false).is_ok());
        assert!(origin_check("west", "east", false).unwrap_err().contains("site east"));
        assert!(origin_check("west", "west", true).unwrap_err().contains("revoked"));
    }
}
