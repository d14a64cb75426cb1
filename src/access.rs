//! Roles and permissions: one table from action to the roles allowed to do it.
//!
//! [`crate::app::DeskApp::apply`] checks every staff command against [`MATRIX`] before anything is written, so a
//! command refused here is refused whatever the screen showed; the screens use [`allowed`] only to hide what the
//! signed-in role cannot do.

use crate::command::{CaseCommand, Command};
use crate::model::reference::Role;

/// Something a signed-in staff member may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Register an arrival, move it along the visit steps, log and link consultations.
    DeskWork,
    /// Change an arrival's department or doctor (换号).
    ChangeDepartment,
    /// Take, check in, cancel and reschedule bookings (预约).
    Appointments,
    /// Write and read the shift log (交班记录, 工作日志).
    ShiftLog,
    /// Search records.
    Search,
    /// Take a new complaint case.
    NewCase,
    /// Work a case: assign, investigate, resolve, not established, notify, note, close.
    WorkCase,
    /// Escalate, refer to legal channels, or reopen a case.
    EscalateCase,
    /// Approve a case's transfer to the department that handles it (批转), where the hospital's policy asks for it.
    ApproveCase,
    /// Write and print a complainant's acknowledgement slip.
    PrintSlip,
    /// Record follow-up call attempts and turn feedback call-backs into cases.
    FollowupCalls,
    /// Import a discharge list into the call worklist.
    ImportDischarges,
    /// Spot-check (抽查) completed follow-up calls by calling the patient again.
    SpotCheck,
    /// Reveal a masked phone number (audited).
    RevealPhone,
    /// View the KPI dashboard (aggregates only).
    ViewDashboard,
    /// See the accountability counts per department and per person (责任考核): supervisors only, as the hospital's
    /// rules name people.
    ViewAccountability,
    /// See the supervisors' alert strip on every screen (queue over the limit, disputes and incidents, cases due
    /// today and overdue).
    SupervisorAlerts,
    /// Put the kiosk in patient mode.
    PatientMode,
    /// View and export the audit log.
    ViewAudit,
}

use Role::{
    Administrator as A, CustomerService as C, DepartmentHead as H, Guide as G, GuideLead as L, Supervisor as S,
};

/// The permission matrix: every action and the roles allowed to do it. SECURITY.md documents the same table.
pub const MATRIX: &[(Action, &[Role])] = &[
    (Action::DeskWork, &[G, L, S, A]),
    (Action::ChangeDepartment, &[G, L, S, A]),
    (Action::Appointments, &[G, L, C, S, A]),
    (Action::ShiftLog, &[G, L, C, S, A]),
    (Action::Search, &[G, L, C, H, S, A]),
    (Action::NewCase, &[G, L, C, H, S, A]),
    (Action::WorkCase, &[C, H, S, A]),
    (Action::EscalateCase, &[S, A]),
    (Action::ApproveCase, &[S, A]),
    (Action::PrintSlip, &[G, L, C, H, S, A]),
    (Action::FollowupCalls, &[L, C, S, A]),
    (Action::ImportDischarges, &[C, S, A]),
    (Action::SpotCheck, &[S, A]),
    (Action::RevealPhone, &[L, C, S, A]),
    (Action::ViewDashboard, &[G, L, C, H, S, A]),
    (Action::ViewAccountability, &[S, A]),
    (Action::SupervisorAlerts, &[L, S, A]),
    (Action::PatientMode, &[G, L, C, S, A]),
    (Action::ViewAudit, &[S, A]),
];

impl Action {
    /// Every action, in matrix order.
    pub fn all() -> impl Iterator<Item = Action> {
        MATRIX.iter().map(|(a, _)| *a)
    }

    /// A stable name for logs, errors and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Action::DeskWork => "desk_work",
            Action::ChangeDepartment => "change_department",
            Action::Appointments => "appointments",
            Action::ShiftLog => "shift_log",
            Action::Search => "search",
            Action::NewCase => "new_case",
            Action::WorkCase => "work_case",
            Action::EscalateCase => "escalate_case",
            Action::ApproveCase => "approve_case",
            Action::PrintSlip => "print_slip",
            Action::FollowupCalls => "followup_calls",
            Action::ImportDischarges => "import_discharges",
            Action::SpotCheck => "spot_check",
            Action::RevealPhone => "reveal_phone",
            Action::ViewDashboard => "view_dashboard",
            Action::ViewAccountability => "view_accountability",
            Action::SupervisorAlerts => "supervisor_alerts",
            Action::PatientMode => "patient_mode",
            Action::ViewAudit => "view_audit",
        }
    }
}

/// Whether `role` may do `action`. An action missing from the matrix is allowed to nobody.
pub fn allowed(role: Role, action: Action) -> bool {
    MATRIX.iter().any(|(a, roles)| *a == action && roles.contains(&role))
}

/// The action a command needs, or `None` for the sign-in commands that run before anyone is signed in.
pub fn action_of(cmd: &Command) -> Option<Action> {
    Some(match cmd {
        Command::SignIn { .. } | Command::CreateAdmin { .. } => return None,
        Command::Register(_) | Command::MoveStep { .. } | Command::Consult(_) | Command::Link { .. } => {
            Action::DeskWork
        }
        Command::Change { .. } => Action::ChangeDepartment,
        // Opening a record is part of every role's search; the screens that open records are per role.
        Command::Search(_) | Command::View { .. } => Action::Search,
        Command::NewCase(_) | Command::CaseFromCall { .. } => Action::NewCase,
        Command::Case { action, .. } => case_action(action),
        Command::Slip { .. } | Command::DirectorySlip { .. } => Action::PrintSlip,
        Command::Book(_) | Command::Appointment { .. } => Action::Appointments,
        Command::WriteLog(_) | Command::ReadLog { .. } => Action::ShiftLog,
        Command::Attempt { .. }
        | Command::Claim { .. }
        | Command::Release { .. }
        | Command::PromoteToCase { .. }
        | Command::EnrolChronic { .. } => Action::FollowupCalls,
        Command::ImportDischarges { .. } => Action::ImportDischarges,
        Command::SpotCheck => Action::SpotCheck,
        Command::Reveal(_) => Action::RevealPhone,
        Command::LogAlert { .. } => Action::SupervisorAlerts,
        Command::ExportAudit { .. } => Action::ViewAudit,
    })
}

/// The action a case command needs.
pub fn case_action(cmd: &CaseCommand) -> Action {
    match cmd {
        CaseCommand::Escalate { .. } | CaseCommand::ReferLegal { .. } | CaseCommand::Reopen { .. } => {
            Action::EscalateCase
        }
        CaseCommand::Approve { .. } => Action::ApproveCase,
        CaseCommand::Assign { .. }
        | CaseCommand::Propose { .. }
        | CaseCommand::PlanImprovement { .. }
        | CaseCommand::ImprovementDone { .. }
        | CaseCommand::Investigate
        | CaseCommand::Resolve { .. }
        | CaseCommand::NotEstablished { .. }
        | CaseCommand::Notify { .. }
        | CaseCommand::Close { .. }
        | CaseCommand::Note { .. } => Action::WorkCase,
    }
}

/// Whether a staff member may work a case: a department head only the cases of the department on the account (named
/// on the case or assigned to it); every other role any case (the matrix decides what it may do). A department head
/// without a department works none.
pub fn case_in_scope(role: Role, department: Option<&str>, case: &crate::model::Case) -> bool {
    if role != Role::DepartmentHead {
        return true;
    }
    department.is_some_and(|d| {
        case.departments.iter().any(|c| c == d) || case.assigned_department.value.as_deref() == Some(d)
    })
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Nobody is signed in, the session is locked, or the kiosk is in patient mode.
    #[error("no staff member is signed in")]
    NotSignedIn,
    /// The signed-in role may not do this.
    #[error("the role {role:?} may not {}", action.name())]
    NotAllowed {
        /// The role.
        role: Role,
        /// The action.
        action: Action,
    },
}

/// Checks that a staff member with `role` (or nobody, `None`) may do `action`.
pub fn check(role: Option<Role>, action: Action) -> Result<(), Refusal> {
    match role {
        None => Err(Refusal::NotSignedIn),
        Some(role) if allowed(role, action) => Ok(()),
        Some(role) => Err(Refusal::NotAllowed { role, action }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_in_the_matrix_once() {
        let mut seen = std::collections::BTreeSet::new();
        for a in Action::all() {
            assert!(seen.insert(a), "{a:?} twice");
        }
        assert_eq!(seen.len(), 19);
    }

    #[test]
    fn administrator_may_do_everything_and_nobody_unsigned() {
        for a in Action::all() {
            assert!(allowed(Role::Administrator, a), "{a:?}");
            assert_eq!(check(None, a), Err(Refusal::NotSignedIn));
        }
    }
}
