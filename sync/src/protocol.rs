//! The wire protocol between a device (kiosk) and headquarters.
//!
//! Three exchanges, all `POST` with a codec-encoded body (see [`crate::codec`]) under [`CONTENT_TYPE`], except
//! enrolment, which is JSON so it can be done by hand:
//!
//! - **push** ([`PUSH_PATH`]): a device sends a batch of its ops with contiguous sequence numbers. HQ applies the
//!   batch in one transaction that also advances the device's cursor (`last_seq`), and answers with
//!   [`PushOutcome::Accepted`] (how far it holds the device's ops, which were duplicates, which were quarantined) or
//!   [`PushOutcome::Gap`] (the batch starts after a hole; resend from `expected`). A batch with no ops asks HQ for the
//!   device's cursor without changing anything.
//! - **pull** ([`PULL_PATH`]): a device asks for the changes of a stream after its cursor. Changes carry an
//!   HQ-assigned, commit-ordered sequence number, never a timestamp. A page comes with the cursor to store with it; a
//!   cursor older than what HQ still keeps (or newer than HQ's head, after an HQ restore) gets
//!   [`PullPage::Reset`]: a full snapshot that replaces what the device held.
//! - **enrol** ([`ENROLL_PATH`]): a device trades a one-time code for its own bearer credential.
//!
//! Every response, errors included, carries HQ's wall clock in [`SERVER_TIME_HEADER`] (milliseconds since the Unix
//! epoch) so devices can measure their clock offset. Errors have a JSON body [`ErrorBody`] with a stable `code`
//! (see [`codes`]).

use serde::{Deserialize, Serialize};

use crate::envelope::{DeviceId, Op};

/// Path of the push exchange.
pub const PUSH_PATH: &str = "/v1/push";
/// Path of the pull exchange.
pub const PULL_PATH: &str = "/v1/pull";
/// Path of the enrolment exchange.
pub const ENROLL_PATH: &str = "/v1/enroll";
/// Path of the relay exchange: a site hub forwards the ops it accepted from its desks to the group HQ
/// ([`RelayRequest`] → [`PushResponse`]).
pub const RELAY_PATH: &str = "/v1/relay";
/// Path of the watch exchange (`GET`, JSON answer `{"head": N}`): a long poll that answers once the device's site
/// has records after the feed position `after`, or after `wait` seconds (at most 15).
pub const WATCH_PATH: &str = "/v1/watch";
/// Content type of codec-encoded bodies.
pub const CONTENT_TYPE: &str = "application/vnd.guidedesk.sync";
/// Response header with HQ's wall clock, milliseconds since the Unix epoch.
pub const SERVER_TIME_HEADER: &str = "x-guidedesk-server-time";
/// Optional request header on a push: how many of the device's ops come after this batch (a decimal number), so
/// HQ can show how much each kiosk still has to send. Not part of the codec: older peers ignore it.
pub const OUTBOX_PENDING_HEADER: &str = "x-guidedesk-outbox-pending";
/// Stamps more than this far ahead of HQ's clock are clamped and flagged (five minutes).
pub const MAX_FUTURE_SKEW_MS: u64 = 5 * 60 * 1000;

/// Stable error codes in [`ErrorBody::code`].
pub mod codes {
    /// No credential, or one HQ does not know.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The device's credential was revoked at HQ. Local work goes on; sync stops until the device is re-enrolled.
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// The request names a device other than the credential's.
    pub const DEVICE_MISMATCH: &str = "device_mismatch";
    /// The body could not be decoded or is not a valid request.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The ops of a push are not contiguous.
    pub const BAD_BATCH: &str = "bad_batch";
    /// The body is larger than HQ accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The enrolment code is unknown.
    pub const CODE_INVALID: &str = "code_invalid";
    /// The enrolment code was already used by another device.
    pub const CODE_USED: &str = "code_used";
    /// The enrolment code expired.
    pub const CODE_EXPIRED: &str = "code_expired";
    /// HQ cannot serve now (overloaded, storage busy); retry later, honouring `Retry-After`.
    pub const UNAVAILABLE: &str = "unavailable";
    /// HQ failed; retry later.
    pub const INTERNAL: &str = "internal";
    /// No such endpoint.
    pub const NOT_FOUND: &str = "not_found";
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, machine-readable code from [`codes`].
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

/// A push: a batch of one device's ops with contiguous sequence numbers (or none, to ask for the cursor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// The device the ops come from; must be the credential's device.
    pub device: DeviceId,
    /// The device's wall clock when it sent the batch (ms since the Unix epoch), for clock-offset bookkeeping.
    pub sent_at_ms: u64,
    /// The ops, seq ascending without gaps.
    pub ops: Vec<Op>,
}

/// A relay batch: ops a site hub accepted from its desks, forwarded to the group HQ in the hub's own order.
///
/// Each entry keeps its origin (the desk's device id and the op's own sequence number, in [`Op::seq`]), so the group
/// HQ takes every op once whatever path it travelled; the entries' `seq` (the hub's relay sequence numbers, contiguous
/// like a device's ops) are the hub's cursor at the group HQ. The answer is a [`PushResponse`] over those relay
/// sequence numbers: `acked_through` is the hub's cursor, duplicates and quarantined ops are named by relay seq. A
/// batch with no entries asks for the cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayRequest {
    /// The hub; must be the credential's device, enrolled as a hub.
    pub hub: DeviceId,
    /// The hub's wall clock when it sent the batch (ms since the Unix epoch).
    pub sent_at_ms: u64,
    /// The entries, relay seq ascending without gaps.
    pub entries: Vec<RelayEntry>,
}

/// One op forwarded by a hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayEntry {
    /// The hub's relay sequence number.
    pub seq: u64,
    /// The device that wrote the op.
    pub origin: DeviceId,
    /// That device's desk code at the hub (names the device at the group HQ when it first appears there).
    pub desk: String,
    /// The op, exactly as the device sent it (its `seq` is the origin's).
    pub op: Op,
}

/// HQ's answer to a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// HQ's wall clock when it answered (ms since the Unix epoch).
    pub server_time_ms: u64,
    /// What happened to the batch.
    pub outcome: PushOutcome,
}

/// What HQ did with a push batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushOutcome {
    /// The batch was applied (in one transaction). Every op up to `acked_through` is durably held by HQ.
    Accepted(PushAck),
    /// The batch starts after a hole: HQ holds the device's ops only up to `expected - 1`. Nothing was applied.
    Gap {
        /// The sequence number HQ needs next.
        expected: u64,
    },
}

/// Details of an accepted batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PushAck {
    /// Every op of the device with `seq <= acked_through` is held by HQ (applied or quarantined).
    pub acked_through: u64,
    /// Ops applied now.
    pub applied: u32,
    /// Sequence numbers HQ already had (skipped as duplicates).
    pub skipped_duplicates: Vec<u64>,
    /// Ops HQ found permanently invalid: acknowledged and kept in quarantine with the reason, never applied.
    pub quarantined: Vec<(u64, String)>,
    /// Ops whose stamp was ahead of HQ's clock by more than [`MAX_FUTURE_SKEW_MS`]: applied with the stamp clamped
    /// to HQ's time for HQ's bookkeeping, and flagged.
    pub clamped: Vec<u64>,
}

/// A pull: the changes of one stream after a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// The device asking; must be the credential's device (HQ scopes the stream to the device's site).
    pub device: DeviceId,
    /// The stream's name.
    pub stream: String,
    /// The last change sequence number the device has applied (0 for none).
    pub cursor: u64,
    /// At most this many changes per page (HQ may send fewer).
    pub limit: u32,
}

/// One change of a stream: a key set to a value, or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// HQ-assigned sequence number, increasing in commit order.
    pub seq: u64,
    /// The entry's key within the stream.
    pub key: String,
    /// The new value, or `None` when the entry was removed.
    pub value: Option<Vec<u8>>,
}

/// HQ's answer to a pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    /// HQ's wall clock when it answered (ms since the Unix epoch).
    pub server_time_ms: u64,
    /// The page.
    pub page: PullPage,
    /// Whether more changes follow (pull again with the new cursor).
    pub more: bool,
}

/// A page of a stream. The device applies the page and stores its cursor in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPage {
    /// The changes after the device's cursor, in sequence order (possibly none).
    Changes {
        /// The changes.
        changes: Vec<Change>,
        /// The cursor to store with them.
        cursor: u64,
    },
    /// The device's cursor is too old (HQ no longer keeps the changes after it) or unknown to HQ: here is every live
    /// entry; the device replaces what it held for the stream.
    Reset {
        /// Every live entry of the stream (values are never `None`).
        snapshot: Vec<Change>,
        /// The cursor to store with the snapshot.
        cursor: u64,
    },
}

impl PullPage {
    /// The cursor that goes with the page.
    pub fn cursor(&self) -> u64 {
        match self {
            PullPage::Changes { cursor, .. } | PullPage::Reset { cursor, .. } => *cursor,
        }
    }

    /// The changes the page carries (a reset page's snapshot).
    pub fn changes(&self) -> &[Change] {
        match self {
            PullPage::Changes { changes, .. } | PullPage::Reset { snapshot: changes, .. } => changes,
        }
    }
}

/// HQ's answer to a watch (JSON): the device's site's record feed head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchAnswer {
    /// The feed head.
    pub head: u64,
}

/// Enrolment: a one-time code and the device that uses it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time code printed by HQ.
    pub code: String,
    /// The device id, as a UUID string.
    pub device: String,
}

/// HQ's answer to a successful enrolment (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The device's own bearer credential. HQ keeps only its hash.
    pub token: String,
    /// The device id, echoed.
    pub device: String,
    /// The site the device belongs to.
    pub site: String,
    /// The desk at the site.
    pub desk: String,
    /// HQ's wall clock (ms since the Unix epoch).
    pub server_time_ms: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Hlc, RecordKey, codec};

    #[test]
    fn messages_round_trip_through_the_codec() {
        let op = Op { seq: 3, key: RecordKey { kind: 1, id: 9 }, schema: 1, stamp: Hlc::ZERO, payload: vec![7] };
        let req = PushRequest { device: DeviceId(5), sent_at_ms: 10, ops: vec![op] };
        assert_eq!(codec::decode::<PushRequest>(&codec::encode(&req).unwrap()).unwrap(), req);
        let resp = PushResponse {
            server_time_ms: 11,
            outcome: PushOutcome::Accepted(PushAck {
                acked_through: 3,
                applied: 0,
                skipped_duplicates: vec![],
                quarantined: vec![(3, "bad".into())],
                clamped: vec![],
            }),
        };
        assert_eq!(codec::decode::<PushResponse>(&codec::encode(&resp).unwrap()).unwrap(), resp);
        let pull = PullResponse {
            server_time_ms: 1,
            page: PullPage::Reset {
                snapshot: vec![Change { seq: 4, key: "k".into(), value: Some(vec![1]) }],
                cursor: 4,
            },
            more: false,
        };
        assert_eq!(codec::decode::<PullResponse>(&codec::encode(&pull).unwrap()).unwrap(), pull);
        assert_eq!(pull.page.cursor(), 4);
    }
}
