//! Types shared by every record: ids, instants, stamped fields and the merge rule.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use guidedesk_sync::Hlc;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// A record id: a UUIDv7 made on the kiosk (time-ordered, unique without coordination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(pub Uuid);

impl RecordId {
    /// A new UUIDv7 id for a record made at `at`. The timestamp part is `at`, the rest random.
    pub fn new_v7(at: Moment) -> Self {
        let ms = at.0.max(0) as u64;
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
        RecordId(Uuid::new_v7(ts))
    }

    /// An id every device derives alike from another record's id and a purpose (the no-show call of a booking):
    /// two desks that make the same follow-up apart make one record, which replication merges. A `UUIDv8` whose
    /// bits are the first 16 bytes of SHA-256(purpose ‖ id).
    pub fn derived(purpose: &str, from: RecordId) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(purpose.as_bytes());
        h.update([0u8]);
        h.update(from.0.as_bytes());
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        RecordId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// The id as a 128-bit integer (the store's key form).
    pub fn as_u128(self) -> u128 {
        self.0.as_u128()
    }

    /// The id from its 128-bit integer form.
    pub fn from_u128(v: u128) -> Self {
        RecordId(Uuid::from_u128(v))
    }

    /// Parses a hyphenated or simple UUID string.
    pub fn parse(s: &str) -> Result<Self, uuid::Error> {
        Uuid::parse_str(s.trim()).map(RecordId)
    }

    /// A short human form for slips and lists (the last 8 hex digits, upper case).
    pub fn short(self) -> String {
        let s = self.0.simple().to_string();
        s[s.len() - 8..].to_uppercase()
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// China Standard Time, UTC+8 (no daylight saving): the default offset local days are taken at.
pub fn china_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Offset::fix(&Utc))
}

/// An instant: milliseconds since the Unix epoch, UTC. Encoded compactly (an integer) in binary formats and as an
/// RFC 3339 string in human-readable ones (JSON export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Moment(pub i64);

impl Moment {
    /// The instant of a `chrono` UTC time.
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Moment(dt.timestamp_millis())
    }

    /// The earliest instant the `chrono` conversions return: 0000-01-02T00:00:00Z. See [`Moment::to_datetime`].
    pub const DATETIME_MIN: Moment = Moment(-62_167_132_800_000);

    /// The latest instant the `chrono` conversions return: 9999-12-30T23:59:59.999Z. See [`Moment::to_datetime`].
    pub const DATETIME_MAX: Moment = Moment(253_402_214_399_999);

    /// Whether the instant is inside [`Moment::DATETIME_MIN`]..=[`Moment::DATETIME_MAX`], where the `chrono`
    /// conversions are exact.
    pub fn in_datetime_range(self) -> bool {
        (Self::DATETIME_MIN.0..=Self::DATETIME_MAX.0).contains(&self.0)
    }

    /// The instant as a `chrono` UTC time, clamped to [`Moment::DATETIME_MIN`]..=[`Moment::DATETIME_MAX`].
    ///
    /// Total: a stored time can hold any `i64` (a damaged or hostile record), and no conversion from it may panic.
    /// The clamp range stays more than a day inside chrono's own limits, so shifting the result by any
    /// [`FixedOffset`] (less than a day) cannot overflow, and every local time of it has a four-digit year.
    pub fn to_datetime(self) -> DateTime<Utc> {
        let ms = self.0.clamp(Self::DATETIME_MIN.0, Self::DATETIME_MAX.0);
        // Always `Some` inside the clamp range; the fallback only keeps this function free of panics.
        DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// The local wall-clock time at the given UTC offset (of the clamped instant, see [`Moment::to_datetime`]).
    pub fn local(self, offset: FixedOffset) -> DateTime<FixedOffset> {
        self.to_datetime().with_timezone(&offset)
    }

    /// The local calendar day at the given UTC offset.
    pub fn local_date(self, offset: FixedOffset) -> NaiveDate {
        self.local(offset).date_naive()
    }

    /// The instant when a local day starts at the given offset.
    pub fn start_of_day(day: NaiveDate, offset: FixedOffset) -> Self {
        let naive = day.and_time(chrono::NaiveTime::MIN);
        match offset.from_local_datetime(&naive).single() {
            Some(dt) => Moment(dt.timestamp_millis()),
            None => Moment(naive.and_utc().timestamp_millis()),
        }
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn millis_since(self, earlier: Moment) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This instant plus some milliseconds.
    pub fn plus_millis(self, ms: i64) -> Self {
        Moment(self.0.saturating_add(ms))
    }

    /// RFC 3339 text in UTC with millisecond precision (of the clamped instant, see [`Moment::to_datetime`], so the
    /// text always has a four-digit year and parses back).
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

impl Serialize for Moment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.serialize_str(&self.to_rfc3339()) } else { s.serialize_i64(self.0) }
    }
}

impl<'de> Deserialize<'de> for Moment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            DateTime::parse_from_rfc3339(&s)
                .map(|dt| Moment(dt.timestamp_millis()))
                .map_err(|e| serde::de::Error::custom(format!("invalid time {s:?}: {e}")))
        } else {
            i64::deserialize(d).map(Moment)
        }
    }
}

/// The staff member who did something, by their reference-data id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct StaffRef(pub String);

impl fmt::Display for StaffRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The record kinds the kiosk writes and replicates. The numeric codes are part of the sync format: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u16)]
pub enum RecordKind {
    /// 来院登记
    Arrival = 1,
    /// 咨询登记
    Consultation = 2,
    /// 满意度
    Feedback = 3,
    /// 客诉
    Case = 4,
    /// 回访任务
    FollowupTask = 5,
    /// 回访记录
    CallAttempt = 6,
    /// 审计日志
    Audit = 7,
    /// 回访认领 (who is calling a follow-up task now)
    CallClaim = 8,
    /// 预约
    Appointment = 9,
    /// 交班记录 / 工作日志
    ShiftLog = 10,
}

impl RecordKind {
    /// Every kind, in code order.
    pub const ALL: [RecordKind; 10] = [
        RecordKind::Arrival,
        RecordKind::Consultation,
        RecordKind::Feedback,
        RecordKind::Case,
        RecordKind::FollowupTask,
        RecordKind::CallAttempt,
        RecordKind::Audit,
        RecordKind::CallClaim,
        RecordKind::Appointment,
        RecordKind::ShiftLog,
    ];

    /// The kind's sync code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The kind for a sync code.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The kind's stable name, used in the CLI, exports and JSON (`arrival`, `followup_task`, …).
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Arrival => "arrival",
            RecordKind::Consultation => "consultation",
            RecordKind::Feedback => "feedback",
            RecordKind::Case => "case",
            RecordKind::FollowupTask => "followup_task",
            RecordKind::CallAttempt => "call_attempt",
            RecordKind::Audit => "audit",
            RecordKind::CallClaim => "call_claim",
            RecordKind::Appointment => "appointment",
            RecordKind::ShiftLog => "shift_log",
        }
    }

    /// The kind for a stable name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field that can change after the record is made: its value and the HLC stamp of the write that set it.
/// Merging keeps the value with the greater stamp (last writer wins; the device id inside the stamp breaks ties).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lww<T> {
    /// The current value.
    pub value: T,
    /// When (in HLC order) the value was set.
    pub stamp: Hlc,
}

impl<T: Clone> Lww<T> {
    /// A value set at `stamp`.
    pub fn new(value: T, stamp: Hlc) -> Self {
        Self { value, stamp }
    }

    /// Sets a new value at `stamp` if the stamp is newer than the current one; returns whether it changed.
    pub fn set(&mut self, value: T, stamp: Hlc) -> bool {
        if stamp > self.stamp {
            self.value = value;
            self.stamp = stamp;
            true
        } else {
            false
        }
    }

    /// Last-writer-wins merge.
    pub fn merge(&mut self, other: &Self) {
        if other.stamp > self.stamp {
            self.value = other.value.clone();
            self.stamp = other.stamp;
        }
    }
}

/// Merging two copies of the same record. Must be commutative, associative and idempotent, so replicas converge
/// whatever the delivery order.
pub trait Merge {
    /// Folds `other` (another copy of the same record) into `self`.
    fn merge(&mut self, other: &Self);
}

/// Merges two append-only event lists, each ordered by stamp: the union, ordered by stamp, without duplicates.
pub fn merge_events<T: Clone>(mine: &mut Vec<T>, theirs: &[T], stamp: impl Fn(&T) -> Hlc) {
    if theirs.iter().all(|t| mine.iter().any(|m| stamp(m) == stamp(t))) {
        return;
    }
    let mut all: Vec<T> = mine.iter().chain(theirs.iter()).cloned().collect();
    all.sort_by_key(&stamp);
    all.dedup_by_key(|e| stamp(e));
    *mine = all;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn moment_is_compact_in_bincode_and_readable_in_json() {
        let m = Moment(1_735_689_600_123);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"2025-01-01T00:00:00.123Z\"");
        assert_eq!(serde_json::from_str::<Moment>(&json).unwrap(), m);
        let bin = guidedesk_sync::codec::encode(&m).unwrap();
        assert!(bin.len() <= 10);
        assert_eq!(guidedesk_sync::codec::decode::<Moment>(&bin).unwrap(), m);
    }

    #[test]
    fn moment_conversions_are_total_for_every_i64() {
        let offsets = [
            FixedOffset::east_opt(8 * 3600).unwrap(),
            FixedOffset::east_opt(14 * 3600).unwrap(),
            FixedOffset::west_opt(12 * 3600).unwrap(),
            FixedOffset::east_opt(86_399).unwrap(),
            FixedOffset::west_opt(86_399).unwrap(),
        ];
        let year_9999 = Moment(253_402_214_399_999 - 3_600_000);
        for m in [Moment(i64::MIN), Moment(i64::MAX), Moment(-1), Moment(0), year_9999, Moment(i64::MAX / 2)] {
            for off in offsets {
                let local = m.local(off);
                let day = m.local_date(off);
                assert_eq!(local.date_naive(), day);
                assert!((0..=10_000).contains(&chrono::Datelike::year(&day)), "{m:?} {off}");
                let _ = local.format("%Y-%m-%d %H:%M").to_string();
                let _ = Moment::start_of_day(day, off);
            }
            let _ = m.to_rfc3339();
        }
        // The clamp range is exactly what its documentation says, and conversions inside it are exact.
        assert_eq!(Moment::DATETIME_MIN.to_rfc3339(), "0000-01-02T00:00:00.000Z");
        assert_eq!(Moment::DATETIME_MAX.to_rfc3339(), "9999-12-30T23:59:59.999Z");
        assert_eq!(Moment(i64::MAX).to_datetime(), Moment::DATETIME_MAX.to_datetime());
        assert_eq!(Moment(i64::MIN).to_datetime(), Moment::DATETIME_MIN.to_datetime());
        assert!(!Moment(i64::MAX).in_datetime_range() && Moment(0).in_datetime_range());
        assert_eq!(Moment::from_datetime(year_9999.to_datetime()), year_9999);
        // Start of the day at the far ends of the calendar does not panic either.
        let _ = Moment::start_of_day(NaiveDate::MAX, offsets[2]);
        let _ = Moment::start_of_day(NaiveDate::MIN, offsets[1]);
    }

    #[test]
    fn record_id_is_v7_and_time_ordered() {
        let a = RecordId::new_v7(Moment(1_000_000));
        let b = RecordId::new_v7(Moment(2_000_000));
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b);
        assert_eq!(RecordId::from_u128(a.as_u128()), a);
    }

    #[test]
    fn lww_keeps_newest() {
        let s = |w| Hlc { wall_ms: w, logical: 0, node: 1 };
        let mut a = Lww::new("a", s(1));
        let b = Lww::new("b", s(2));
        a.merge(&b);
        assert_eq!(a.value, "b");
        assert!(!a.set("c", s(1)));
        assert_eq!(a.value, "b");
    }

    #[test]
    fn kind_codes_and_names_round_trip() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::from_code(k.code()), Some(k));
            assert_eq!(RecordKind::from_name(k.name()), Some(k));
        }
    }
}
