//! The hospital's records and reference data, and the conversion of raw form input into validated values.
//!
//! Pure: nothing here does I/O. Every record kind the kiosk writes lives in its own module; [`AnyRecord`] wraps them
//! for the store and for sync. Records are identified by UUIDv7 ids made on the kiosk ([`RecordId`]). Fields that
//! change after creation carry an HLC stamp ([`Lww`]) or are append-only lists of stamped events, so copies of a
//! record merged in any order converge ([`Merge`]).

pub mod appointment;
pub mod arrival;
pub mod audit;
pub mod case;
pub mod codec;
pub mod common;
pub mod consultation;
pub mod feedback;
pub mod followup;
pub mod reference;
pub mod shiftlog;
pub mod validate;

pub use appointment::{
    Appointment, AppointmentEvent, AppointmentForm, AppointmentStatus, AppointmentType, BookingChannel, Occupancy,
};
pub use arrival::{Arrival, ArrivalChannel, ArrivalForm, Need, Priority, Sex, StepEvent, VisitStep, VisitType};
pub use audit::{AuditAction, AuditEntry, AuditTarget};
pub use case::{
    Case, CaseAction, CaseChannel, CaseConflict, CaseEvent, CaseEventKind, CaseForm, CaseGrade, CaseStatus,
};
pub use common::{Lww, Merge, Moment, RecordId, RecordKind, StaffRef};
pub use consultation::{Concern, Consultation, ConsultationChannel, ConsultationForm};
pub use feedback::{Dimension, Feedback, FeedbackForm, Rating};
pub use followup::{
    CallAttempt, CallAttemptForm, CallClaim, CallOutcome, FollowupSource, FollowupStatus, FollowupTask,
};
pub use reference::{KeepFacts, ReferenceData, SharingPolicy};
pub use shiftlog::{LogKind, ShiftLog, ShiftLogForm};
pub use validate::{FieldError, Problem, ValidationErrors};

use serde::{Deserialize, Serialize};

/// The schema version of every record payload written by this build. Bump it (and add a store migration) whenever an
/// encoded record struct changes shape.
pub const RECORD_SCHEMA: u16 = 1;

/// Any record the kiosk writes, for code that handles all kinds alike (store, sync, export).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnyRecord {
    /// A patient's arrival at the desk.
    Arrival(Arrival),
    /// A phone/online/in-person enquiry.
    Consultation(Consultation),
    /// A patient's satisfaction feedback.
    Feedback(Feedback),
    /// A complaint or other graded case.
    Case(Case),
    /// A follow-up call to make.
    FollowupTask(FollowupTask),
    /// One attempt at a follow-up call.
    CallAttempt(CallAttempt),
    /// An audit log entry.
    Audit(AuditEntry),
    /// A caller's hold on a follow-up task (or its release). Last, so the variant numbers of the kinds before it
    /// stay what HQ's stores hold.
    CallClaim(CallClaim),
    /// A booking (last, for the same reason).
    Appointment(Appointment),
    /// A shift handover or daily log entry (last, for the same reason).
    ShiftLog(ShiftLog),
}

impl AnyRecord {
    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            AnyRecord::Arrival(_) => RecordKind::Arrival,
            AnyRecord::Consultation(_) => RecordKind::Consultation,
            AnyRecord::Feedback(_) => RecordKind::Feedback,
            AnyRecord::Case(_) => RecordKind::Case,
            AnyRecord::FollowupTask(_) => RecordKind::FollowupTask,
            AnyRecord::CallAttempt(_) => RecordKind::CallAttempt,
            AnyRecord::Audit(_) => RecordKind::Audit,
            AnyRecord::CallClaim(_) => RecordKind::CallClaim,
            AnyRecord::Appointment(_) => RecordKind::Appointment,
            AnyRecord::ShiftLog(_) => RecordKind::ShiftLog,
        }
    }

    /// The record's id.
    pub fn id(&self) -> RecordId {
        match self {
            AnyRecord::Arrival(r) => r.id,
            AnyRecord::Consultation(r) => r.id,
            AnyRecord::Feedback(r) => r.id,
            AnyRecord::Case(r) => r.id,
            AnyRecord::FollowupTask(r) => r.id,
            AnyRecord::CallAttempt(r) => r.id,
            AnyRecord::Audit(r) => r.id,
            AnyRecord::CallClaim(r) => r.id,
            AnyRecord::Appointment(r) => r.id,
            AnyRecord::ShiftLog(r) => r.id,
        }
    }

    /// The business time the record is filed under (arrival time, receipt time, …), used for date-range queries.
    pub fn occurred_at(&self) -> Moment {
        match self {
            AnyRecord::Arrival(r) => r.arrived_at,
            AnyRecord::Consultation(r) => r.at,
            AnyRecord::Feedback(r) => r.at,
            AnyRecord::Case(r) => r.received_at,
            AnyRecord::FollowupTask(r) => r.created_at,
            AnyRecord::CallAttempt(r) => r.at,
            AnyRecord::Audit(r) => r.at,
            AnyRecord::CallClaim(r) => r.at,
            AnyRecord::Appointment(r) => r.booked_at,
            AnyRecord::ShiftLog(r) => r.at,
        }
    }

    /// Every instant at which something on the record happened (receipt, steps, events, closing), each with the
    /// field it comes from.
    pub fn event_times(&self) -> Vec<(&'static str, Moment)> {
        let mut out = vec![("occurred_at", self.occurred_at())];
        match self {
            AnyRecord::Arrival(r) => {
                out.extend(r.steps.iter().map(|e| ("steps.at", e.at)));
                out.extend(r.changes.iter().map(|e| ("changes.at", e.at)));
            }
            AnyRecord::Case(r) => {
                out.extend(r.closed_at.value.map(|m| ("closed_at", m)));
                out.extend(r.events.iter().map(|e| ("events.at", e.at)));
            }
            AnyRecord::FollowupTask(r) => out.extend(r.closed_at.value.map(|m| ("closed_at", m))),
            AnyRecord::Appointment(r) => out.extend(r.events.iter().map(|e| ("events.at", e.at))),
            AnyRecord::ShiftLog(r) => out.extend(r.reads.iter().map(|e| ("reads.at", e.at))),
            AnyRecord::Consultation(_)
            | AnyRecord::Feedback(_)
            | AnyRecord::CallAttempt(_)
            | AnyRecord::Audit(_)
            | AnyRecord::CallClaim(_) => {}
        }
        out
    }

    /// Every planned calendar day on the record (deadlines, due windows), each with its field.
    pub fn planned_days(&self) -> Vec<(&'static str, chrono::NaiveDate)> {
        match self {
            AnyRecord::Case(r) => vec![("due", r.due.value.0)],
            AnyRecord::FollowupTask(r) => vec![("due_from", r.due_from), ("due_to", r.due_to)],
            AnyRecord::Appointment(r) => vec![("day", r.day)],
            _ => Vec::new(),
        }
    }

    /// Department codes the record files itself under (checked against reference data at HQ).
    pub fn department_codes(&self) -> Vec<(&'static str, &str)> {
        match self {
            AnyRecord::Arrival(r) => {
                let mut out = vec![("department", r.department.value.as_str())];
                out.extend(r.changes.iter().map(|c| ("changes.to_department", c.to_department.as_str())));
                out
            }
            AnyRecord::Appointment(r) => vec![("department", r.department.as_str())],
            _ => Vec::new(),
        }
    }

    /// Merges another copy of the same record into this one. Copies of different kinds or ids are left untouched and
    /// `false` is returned.
    pub fn merge_from(&mut self, other: &AnyRecord) -> bool {
        if self.id() != other.id() {
            return false;
        }
        match (self, other) {
            (AnyRecord::Arrival(a), AnyRecord::Arrival(b)) => a.merge(b),
            (AnyRecord::Consultation(a), AnyRecord::Consultation(b)) => a.merge(b),
            (AnyRecord::Feedback(a), AnyRecord::Feedback(b)) => a.merge(b),
            (AnyRecord::Case(a), AnyRecord::Case(b)) => a.merge(b),
            (AnyRecord::FollowupTask(a), AnyRecord::FollowupTask(b)) => a.merge(b),
            (AnyRecord::CallAttempt(a), AnyRecord::CallAttempt(b)) => a.merge(b),
            (AnyRecord::Audit(a), AnyRecord::Audit(b)) => a.merge(b),
            (AnyRecord::CallClaim(a), AnyRecord::CallClaim(b)) => a.merge(b),
            (AnyRecord::Appointment(a), AnyRecord::Appointment(b)) => a.merge(b),
            (AnyRecord::ShiftLog(a), AnyRecord::ShiftLog(b)) => a.merge(b),
            _ => return false,
        }
        true
    }
}

/// Implemented by every record type, tying it to its [`RecordKind`] and to [`AnyRecord`].
pub trait Record: Clone + Merge + Serialize + serde::de::DeserializeOwned + Send + 'static {
    /// The kind of this record type.
    const KIND: RecordKind;
    /// The record's id.
    fn id(&self) -> RecordId;
    /// Wraps the record.
    fn into_any(self) -> AnyRecord;
    /// Unwraps a record of this kind.
    fn from_any(any: AnyRecord) -> Option<Self>;
}

macro_rules! impl_record {
    ($ty:ident, $variant:ident) => {
        impl Record for $ty {
            const KIND: RecordKind = RecordKind::$variant;
            fn id(&self) -> RecordId {
                self.id
            }
            fn into_any(self) -> AnyRecord {
                AnyRecord::$variant(self)
            }
            fn from_any(any: AnyRecord) -> Option<Self> {
                match any {
                    AnyRecord::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    };
}

impl_record!(Arrival, Arrival);
impl_record!(Consultation, Consultation);
impl_record!(Feedback, Feedback);
impl_record!(Case, Case);
impl_record!(FollowupTask, FollowupTask);
impl_record!(CallAttempt, CallAttempt);
impl_record!(AuditEntry, Audit);
impl_record!(CallClaim, CallClaim);
impl_record!(Appointment, Appointment);
impl_record!(ShiftLog, ShiftLog);

/// An append-only, hash-chained record kind (feedback, the audit log): the store places each new record after the
/// kiosk's last one of its kind, and verification recomputes every hash and link.
pub trait Chained: Record {
    /// Position in the kiosk's chain of this kind.
    fn chain_index(&self) -> u64;
    /// The previous record's hash as committed to.
    fn prev_hash(&self) -> [u8; 32];
    /// The stored hash.
    fn hash(&self) -> [u8; 32];
    /// Recomputes the hash from the content, the index and the previous hash.
    fn compute_hash(&self) -> [u8; 32];
    /// Places the record at `chain_index` after a record hashing to `prev_hash`.
    fn seal(&mut self, chain_index: u64, prev_hash: [u8; 32]);
}

macro_rules! impl_chained {
    ($ty:ident) => {
        impl Chained for $ty {
            fn chain_index(&self) -> u64 {
                self.chain_index
            }
            fn prev_hash(&self) -> [u8; 32] {
                self.prev_hash
            }
            fn hash(&self) -> [u8; 32] {
                self.hash
            }
            fn compute_hash(&self) -> [u8; 32] {
                $ty::compute_hash(self)
            }
            fn seal(&mut self, chain_index: u64, prev_hash: [u8; 32]) {
                self.chain_index = chain_index;
                self.prev_hash = prev_hash;
                self.hash = $ty::compute_hash(self);
            }
        }
    };
}

impl_chained!(Feedback);
impl_chained!(AuditEntry);
