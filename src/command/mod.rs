//! The write path, outside the UI: what a person may ask for ([`Command`]) and the one place each change is made.
//!
//! ```text
//!  screen ──Command──▶ app (access::check, audit) ──▶ command::write(ctx, cmd, by) ──▶ store (one transaction)
//!  demo / CLI / bench / tests ───────────────────────▶ command::desk::register, cases::new_case, calls::record_attempt …
//! ```
//!
//! - [`desk`]: registration (with the outpatient follow-up rule), visit steps, 换号, consultations and links,
//!   satisfaction feedback (with its call-back);
//! - [`cases`]: taking and working complaint cases; a feedback call-back turned into a case;
//! - [`calls`]: the follow-up worklist's writes;
//! - [`search`]: the search the app runs off the UI thread.
//!
//! Every handler runs inside the caller's [`WriteCtx`], validates its input once (raw form → validated record) and
//! writes nothing when it fails. The permission matrix ([`crate::access`]) maps a [`Command`] to the action it
//! needs; the app checks it before anything is read or written.

pub mod appointments;
pub mod calls;
pub mod cases;
pub mod desk;
pub mod search;

use chrono::NaiveDate;

use crate::model::arrival::DoctorChoice;
use crate::model::{
    AppointmentForm, ArrivalForm, AuditTarget, CallAttemptForm, CaseForm, ConsultationForm, RecordId, RecordKind,
    ShiftLogForm, StaffRef, VisitStep,
};
use crate::store::{StoreError, WriteCtx};

pub use appointments::AppointmentAction;
pub use cases::CaseCommand;
pub use search::{SearchHit, SearchQuery, run_search};

/// What a screen asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Sign in with a PIN.
    SignIn {
        /// Staff id.
        staff: String,
        /// PIN as entered.
        pin: String,
    },
    /// First run: create the first administrator and sign in.
    CreateAdmin {
        /// Employee number.
        id: String,
        /// Name.
        name: String,
        /// PIN.
        pin: String,
        /// PIN again.
        confirm: String,
    },
    /// Register an arrival.
    Register(Box<ArrivalForm>),
    /// Move an arrival to a step (a reason for 退号).
    MoveStep {
        /// Arrival.
        id: RecordId,
        /// New step.
        step: VisitStep,
        /// Reason.
        reason: Option<String>,
    },
    /// Change department/doctor (换号) with a reason.
    Change {
        /// Arrival.
        id: RecordId,
        /// New department.
        department: String,
        /// New doctor.
        doctor: Option<DoctorChoice>,
        /// Reason.
        reason: String,
    },
    /// Log a consultation.
    Consult(Box<ConsultationForm>),
    /// Link a consultation to the arrival it became.
    Link {
        /// Consultation.
        consultation: RecordId,
        /// Arrival.
        arrival: RecordId,
    },
    /// Run a search off the UI thread.
    Search(SearchQuery),
    /// Take a new case.
    NewCase(Box<CaseForm>),
    /// Act on a case.
    Case {
        /// The case.
        id: RecordId,
        /// What to do.
        action: CaseCommand,
    },
    /// Write the complainant's acknowledgement slip (printable HTML) and open it.
    Slip {
        /// The case.
        id: RecordId,
    },
    /// Record a call attempt on a follow-up task.
    Attempt {
        /// The task.
        task: RecordId,
        /// The attempt as entered.
        form: Box<CallAttemptForm>,
    },
    /// Open a follow-up task to call it: every desk of the site shows it as being called by this person (a claim),
    /// until the call is recorded, the task is let go of, or the claim grows stale.
    Claim {
        /// The task.
        task: RecordId,
    },
    /// Spot-check (抽查) a call completed in the last month, picked at random: it goes back on the worklist.
    SpotCheck,
    /// Put a discharged patient on the chronic plan (慢病随访) from one of the discharge's call tasks.
    EnrolChronic {
        /// The discharge's task.
        task: RecordId,
    },
    /// Let go of a follow-up task opened to call without recording a call.
    Release {
        /// The task.
        task: RecordId,
    },
    /// Import a discharge list (CSV or XLSX) into the call worklist, off the UI thread.
    ImportDischarges {
        /// The file.
        path: std::path::PathBuf,
    },
    /// Turn a feedback call-back into a case.
    PromoteToCase {
        /// The follow-up task made from the feedback.
        task: RecordId,
    },
    /// Take a case for what a patient raised during a follow-up call (any task): the patient, phone and department
    /// come from the task.
    CaseFromCall {
        /// The follow-up task being called.
        task: RecordId,
        /// The grade the caller chose.
        grade: crate::model::CaseGrade,
        /// What the patient said.
        facts: String,
    },
    /// Take a booking.
    Book(Box<AppointmentForm>),
    /// Act on a booking (check in, cancel, no-show, reschedule).
    Appointment {
        /// The booking.
        id: RecordId,
        /// What to do.
        action: AppointmentAction,
    },
    /// Write a shift handover or the day's work log.
    WriteLog(Box<ShiftLogForm>),
    /// Mark a handover read (the next shift takes it over).
    ReadLog {
        /// The entry.
        id: RecordId,
    },
    /// Print the patient's slip for a department (where to go, when, the phone), optionally for a booking.
    DirectorySlip {
        /// Department code.
        department: String,
        /// Doctor code, if one is meant.
        doctor: Option<String>,
        /// The booking the slip is for, if any.
        appointment: Option<RecordId>,
    },
    /// Note in the audit log that a record's details were opened (or, without a target, a list such as the audit
    /// log itself was read).
    View {
        /// The record opened.
        target: Option<AuditTarget>,
        /// What was looked at (a fixed word, never user input).
        what: &'static str,
    },
    /// Put an alert a supervisor was shown on the audit log (`queue_alert:<waiting>/<limit>`: fixed words and
    /// numbers, never user input).
    LogAlert {
        /// What was shown.
        detail: String,
    },
    /// Show a masked phone number in full for this session; audited before it is shown.
    Reveal(AuditTarget),
    /// Export the audit log of the days `from..=to` as CSV beside the store (`exports/`).
    ExportAudit {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the id of the record made or changed.
    Done(Option<RecordId>),
    /// The input was invalid (field errors); nothing was written.
    Invalid(crate::model::ValidationErrors),
    /// The write failed (message for the user); nothing was written.
    Failed(String),
    /// Accepted; the result arrives later (search).
    Pending,
}

/// The record kind a command changes and the audit detail of the change (a fixed word, never user input); `None`
/// for commands that change no record (sign-in, search, views, reveals, exports, slips, imports).
pub fn change_of(cmd: &Command) -> Option<(RecordKind, String)> {
    Some(match cmd {
        Command::Register(_) => (RecordKind::Arrival, "register".into()),
        Command::MoveStep { step, .. } => (RecordKind::Arrival, format!("move_step:{}", step.key())),
        Command::Change { .. } => (RecordKind::Arrival, "change_department".into()),
        Command::Consult(_) => (RecordKind::Consultation, "consult".into()),
        Command::Link { .. } => (RecordKind::Consultation, "link_arrival".into()),
        Command::NewCase(_) => (RecordKind::Case, "new_case".into()),
        Command::Case { action, .. } => (RecordKind::Case, format!("case:{}", action.name())),
        Command::Attempt { .. } => (RecordKind::CallAttempt, "call_attempt".into()),
        Command::Claim { .. } => (RecordKind::CallClaim, "claim".into()),
        Command::Release { .. } => (RecordKind::CallClaim, "release".into()),
        Command::SpotCheck => (RecordKind::FollowupTask, "spot_check".into()),
        Command::EnrolChronic { .. } => (RecordKind::FollowupTask, "enrol_chronic".into()),
        Command::PromoteToCase { .. } => (RecordKind::Case, "promote_to_case".into()),
        Command::CaseFromCall { .. } => (RecordKind::Case, "case_from_call".into()),
        Command::Book(_) => (RecordKind::Appointment, "book".into()),
        Command::WriteLog(_) => (RecordKind::ShiftLog, "write_log".into()),
        Command::ReadLog { .. } => (RecordKind::ShiftLog, "read_log".into()),
        Command::Appointment { action, .. } => (RecordKind::Appointment, format!("appointment:{}", action.name())),
        Command::SignIn { .. }
        | Command::CreateAdmin { .. }
        | Command::Search(_)
        | Command::Slip { .. }
        | Command::DirectorySlip { .. }
        | Command::ImportDischarges { .. }
        | Command::View { .. }
        | Command::Reveal(_)
        | Command::LogAlert { .. }
        | Command::ExportAudit { .. } => return None,
    })
}

/// Makes the change a write command asks for inside `ctx`, as `by`; the id of the record made or changed. A command
/// that changes no record ([`change_of`] is `None`) is refused as a conflict and writes nothing.
pub fn write(ctx: &mut WriteCtx<'_>, cmd: &Command, by: &StaffRef) -> Result<RecordId, StoreError> {
    match cmd {
        Command::Register(form) => desk::register(ctx, form, by),
        Command::MoveStep { id, step, reason } => desk::move_step(ctx, *id, *step, reason.as_deref(), by),
        Command::Change { id, department, doctor, reason } => {
            desk::change_department(ctx, *id, department, doctor.clone(), reason, by)
        }
        Command::Consult(form) => desk::consult(ctx, form, by),
        Command::Link { consultation, arrival } => desk::link(ctx, *consultation, *arrival),
        Command::NewCase(form) => cases::new_case(ctx, form, by.clone()),
        Command::Case { id, action } => cases::act_on_case(ctx, *id, action.clone(), by.clone()).map(|()| *id),
        Command::Attempt { task, form } => calls::record_attempt(ctx, *task, form, by.clone()),
        Command::Claim { task } => calls::claim(ctx, *task, false, by.clone()),
        Command::Release { task } => calls::claim(ctx, *task, true, by.clone()),
        Command::SpotCheck => calls::spot_check(ctx, by.clone()),
        Command::EnrolChronic { task } => calls::enrol_chronic(ctx, *task, by),
        Command::PromoteToCase { task } => cases::promote_feedback(ctx, *task, by.clone()),
        Command::CaseFromCall { task, grade, facts } => cases::case_from_call(ctx, *task, *grade, facts, by.clone()),
        Command::Book(form) => appointments::book(ctx, form, by),
        Command::Appointment { id, action } => appointments::act(ctx, *id, action, by),
        Command::WriteLog(form) => desk::write_log(ctx, form, by),
        Command::ReadLog { id } => desk::read_log(ctx, *id, by),
        // The commands `change_of` lists as changing no record (that list is exhaustive).
        _ => Err(StoreError::Conflict("this command changes no record".into())),
    }
}
