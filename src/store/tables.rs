//! Table definitions of the kiosk store. Table names are part of the file format.

use redb::TableDefinition;

use crate::model::RecordKind;

/// Store metadata: magic, schema version, device id, HLC, outbox counters, feedback chain head.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The outbox: per-device sequence number → sealed encoded `guidedesk_sync::Op`.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// Reference data received from HQ (or the bundled default): name → JSON.
pub const REFERENCE: TableDefinition<&str, &[u8]> = TableDefinition::new("reference");

/// Records other devices of the site wrote, as HQ relayed them: (kind code, id) → encoded `store::ReplicaOrigin`
/// (the origin device and its desk). A record this desk wrote has no entry, whoever edited it since.
pub const REPLICAS: TableDefinition<(u16, u128), &[u8]> = TableDefinition::new("replicas");

/// Records of one kind: id → sealed `[schema u16 LE][codec-encoded record]` (see `store::crypto`).
pub const fn records(kind: RecordKind) -> TableDefinition<'static, u128, &'static [u8]> {
    TableDefinition::new(match kind {
        RecordKind::Arrival => "rec_arrival",
        RecordKind::Consultation => "rec_consultation",
        RecordKind::Feedback => "rec_feedback",
        RecordKind::Case => "rec_case",
        RecordKind::FollowupTask => "rec_followup_task",
        RecordKind::CallAttempt => "rec_call_attempt",
        RecordKind::Audit => "rec_audit",
        RecordKind::CallClaim => "rec_call_claim",
        RecordKind::Appointment => "rec_appointment",
        RecordKind::ShiftLog => "rec_shift_log",
    })
}

/// Every record by (kind code, business time in ms, id): date-range scans for export and reports.
pub const IDX_TIME: TableDefinition<(u16, i64, u128), ()> = TableDefinition::new("idx_time");

/// Arrivals by (local day number, current step code, id): today's board and counts per step.
pub const IDX_ARRIVAL_DAY_STEP: TableDefinition<(i32, u8, u128), ()> = TableDefinition::new("idx_arrival_day_step");

/// People by (blind phone key, kind code, id): arrivals, consultations, cases, follow-up tasks. The text is a keyed
/// hash of the phone digits (`crypto::Keys::blind`), never the number.
pub const IDX_PHONE: TableDefinition<(&str, u16, u128), ()> = TableDefinition::new("idx_phone");

/// People by (blind key of a name prefix, kind code, id), for exact and prefix lookups: one entry per prefix of
/// the name up to `crypto::NAME_PREFIX_CHARS` characters.
pub const IDX_NAME: TableDefinition<(&str, u16, u128), ()> = TableDefinition::new("idx_name");

/// Open cases by (due day number, id).
pub const IDX_CASE_OPEN_DUE: TableDefinition<(i32, u128), ()> = TableDefinition::new("idx_case_open_due");

/// Open follow-up tasks by (window start day number, id).
pub const IDX_FOLLOWUP_OPEN_DUE: TableDefinition<(i32, u128), ()> = TableDefinition::new("idx_followup_open_due");

/// Follow-up tasks by blind source key (it holds admission numbers), so a source never makes two tasks.
pub const IDX_FOLLOWUP_SOURCE: TableDefinition<&str, u128> = TableDefinition::new("idx_followup_source");

/// Call attempts by (task id, attempt id).
pub const IDX_CALLS_BY_TASK: TableDefinition<(u128, u128), ()> = TableDefinition::new("idx_calls_by_task");

/// Consultations by (linked arrival id, consultation id).
pub const IDX_CONSULTATION_ARRIVAL: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("idx_consultation_arrival");

/// Bookings by (local day number of the booked day, session code, id): the day's expected patients, no-shows and
/// a session's occupancy.
pub const IDX_APPOINTMENT_DAY: TableDefinition<(i32, u8, u128), ()> = TableDefinition::new("idx_appointment_day");

/// When HQ acknowledged ops: highest acknowledged seq → wall-clock ms of the acknowledgement. Acknowledged ops are
/// kept in the outbox for a retention period (so a restored HQ can be refilled) and pruned with this log.
pub const ACK_LOG: TableDefinition<u64, i64> = TableDefinition::new("ack_log");

/// Meta keys.
pub mod meta {
    /// Prefix of a pulled stream's cursor (u64 LE): `pull_cursor:<stream>`.
    pub const PULL_CURSOR_PREFIX: &str = "pull_cursor:";
    /// Identifies a GuideDesk kiosk store.
    pub const MAGIC: &str = "magic";
    /// Schema version (u32 LE).
    pub const SCHEMA: &str = "schema";
    /// Device id (u128 LE).
    pub const DEVICE: &str = "device";
    /// Last HLC stamp issued (encoded).
    pub const HLC: &str = "hlc";
    /// Next outbox sequence number (u64 LE).
    pub const NEXT_SEQ: &str = "next_seq";
    /// Highest sequence number HQ acknowledged (u64 LE).
    pub const ACKED_SEQ: &str = "acked_seq";
    /// Feedback chain head: next index and last hash (encoded).
    pub const FEEDBACK_HEAD: &str = "feedback_head";
    /// Audit chain head: next index and last hash (encoded).
    pub const AUDIT_HEAD: &str = "audit_head";
    /// Feedback chain base after retention purges: first retained index and hash of the last purged (encoded).
    pub const FEEDBACK_BASE: &str = "feedback_base";
    /// Audit chain base after retention purges (encoded like [`FEEDBACK_BASE`]).
    pub const AUDIT_BASE: &str = "audit_base";

    /// The head and base keys of a hash-chained kind, `None` for the other kinds.
    pub fn chain_keys(kind: crate::model::RecordKind) -> Option<(&'static str, &'static str)> {
        match kind {
            crate::model::RecordKind::Feedback => Some((FEEDBACK_HEAD, FEEDBACK_BASE)),
            crate::model::RecordKind::Audit => Some((AUDIT_HEAD, AUDIT_BASE)),
            _ => None,
        }
    }
    /// Staff accounts created on this kiosk (JSON `Vec<Staff>`).
    pub const LOCAL_STAFF: &str = "local_staff";
    /// When the store was created (ms, i64 LE).
    pub const CREATED: &str = "created";
    /// Present while phone and name index entries of a catch-up are held in memory, not yet in their tables
    /// (`store::backlog`): a store opened with it rebuilds its indexes.
    pub const BLIND_BACKLOG: &str = "blind_backlog";
    /// The store key's id (u32 LE) and keyed check value: which key the records are sealed with.
    pub const KEY_CHECK: &str = "key_check";
}

/// The magic value stored under [`meta::MAGIC`].
pub const MAGIC_VALUE: &[u8] = b"GuideDesk kiosk store";

/// Every secondary index table name, for rebuilds.
pub const INDEX_TABLES: [&str; 10] = [
    "idx_time",
    "idx_arrival_day_step",
    "idx_phone",
    "idx_name",
    "idx_case_open_due",
    "idx_followup_open_due",
    "idx_followup_source",
    "idx_calls_by_task",
    "idx_consultation_arrival",
    "idx_appointment_day",
];
