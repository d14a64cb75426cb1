//! Records a report leaves out: instants outside [`EARLIEST_SANE`]..[`LATEST_SANE`].

use super::cap_list;
use crate::model::{AnyRecord, Moment, RecordId, RecordKind};

/// The earliest instant a report accepts in a record: 2000-01-01T00:00:00Z. GuideDesk did not exist before; an
/// earlier time is a damaged record or a device clock reset to its epoch.
pub const EARLIEST_SANE: Moment = Moment(946_684_800_000);

/// The first instant a report no longer accepts in a record: 2200-01-01T00:00:00Z. Far enough for any real
/// deadline, close enough that every derived day, month and duration stays small.
pub const LATEST_SANE: Moment = Moment(7_258_118_400_000);

/// A record left out of a report, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    /// Its kind.
    pub kind: RecordKind,
    /// Its id.
    pub id: RecordId,
    /// Why, in English: the field and its value (`closed_at 9999-12-30T23:59:59.999Z is outside …`).
    pub reason: String,
}

/// Records of the period left out because one of their instants is outside [`EARLIEST_SANE`]..[`LATEST_SANE`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkippedAcc {
    /// The records, by kind and id, at most [`MAX_LISTED`].
    pub records: Vec<SkippedRecord>,
    /// Records beyond the listed ones.
    pub not_listed: u64,
}

impl SkippedAcc {
    pub(super) fn add(&mut self, rec: &AnyRecord, reason: String) {
        self.records.push(SkippedRecord { kind: rec.kind(), id: rec.id(), reason });
        cap_list(&mut self.records, &mut self.not_listed, |r| (r.kind, r.id));
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, o: &SkippedAcc) {
        self.records.extend(o.records.iter().cloned());
        self.not_listed += o.not_listed;
        cap_list(&mut self.records, &mut self.not_listed, |r| (r.kind, r.id));
    }

    /// Every skipped record, listed or not.
    pub fn count(&self) -> u64 {
        self.records.len() as u64 + self.not_listed
    }
}

/// The first instant of a record outside [`EARLIEST_SANE`]..[`LATEST_SANE`], as a reason to skip it. Every instant
/// is checked, not only those the report reads today. Calendar dates (due dates, appointments) are only compared,
/// never converted, so they cannot break a report and are not checked.
pub fn insane_time(rec: &AnyRecord) -> Option<String> {
    let bad = |(_, m): &(&'static str, Moment)| *m < EARLIEST_SANE || *m >= LATEST_SANE;
    let one = |field: &'static str, m: Moment| Some((field, m)).filter(bad);
    let (field, m) = match rec {
        AnyRecord::Arrival(a) => std::iter::once(("arrived_at", a.arrived_at))
            .chain(a.steps.iter().map(|e| ("steps.at", e.at)))
            .chain(a.changes.iter().map(|e| ("changes.at", e.at)))
            .find(bad),
        AnyRecord::Consultation(c) => one("at", c.at),
        AnyRecord::Feedback(f) => one("at", f.at),
        AnyRecord::Case(c) => std::iter::once(("received_at", c.received_at))
            .chain(c.closed_at.value.map(|m| ("closed_at", m)))
            .chain(c.events.iter().map(|e| ("events.at", e.at)))
            .find(bad),
        AnyRecord::FollowupTask(t) => {
            std::iter::once(("created_at", t.created_at)).chain(t.closed_at.value.map(|m| ("closed_at", m))).find(bad)
        }
        AnyRecord::CallAttempt(c) => one("at", c.at),
        AnyRecord::Audit(a) => one("at", a.at),
        AnyRecord::CallClaim(c) => one("at", c.at),
        AnyRecord::Appointment(a) => {
            std::iter::once(("booked_at", a.booked_at)).chain(a.events.iter().map(|e| ("events.at", e.at))).find(bad)
        }
        AnyRecord::ShiftLog(l) => {
            std::iter::once(("at", l.at)).chain(l.reads.iter().map(|r| ("reads.at", r.at))).find(bad)
        }
    }?;
    let value = if m.in_datetime_range() { m.to_rfc3339() } else { format!("{} ms", m.0) };
    Some(format!("{field} {value} is outside the accepted range 2000-01-01 to 2200-01-01 (UTC)"))
}
