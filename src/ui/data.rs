//! What screens may read (the [`Queries`] trait, read-only) and what they may ask for ([`Command`]).
//!
//! Screens never open the store or change it: they read through `&dyn Queries` and return commands; the app
//! applies each command to the store in one short transaction and hands the [`Outcome`] back to the screen.

use chrono::NaiveDate;

use crate::model::arrival::DoctorChoice;
use crate::model::reference::Staff;
use crate::model::{
    Arrival, ArrivalForm, AuditEntry, AuditTarget, CallAttempt, CallAttemptForm, Case, CaseForm, Consultation,
    ConsultationForm, FollowupTask, Moment, RecordId, ReferenceData, VisitStep,
};
use crate::store::{Store, StoreError};

/// Read-only access for screens.
pub trait Queries {
    /// Reference data.
    fn reference(&self) -> std::sync::Arc<ReferenceData>;
    /// The current time.
    fn now(&self) -> Moment;
    /// Today's local date.
    fn today(&self) -> NaiveDate;
    /// The site's UTC offset.
    fn offset(&self) -> chrono::FixedOffset;
    /// A day's arrivals in registration order.
    fn arrivals_on(&self, day: NaiveDate) -> Result<Vec<Arrival>, StoreError>;
    /// Arrivals that may be the same person: same phone, or same name (and age within two years when both known).
    fn possible_earlier_visits(
        &self,
        phone: Option<&str>,
        name: &str,
        age: Option<u8>,
    ) -> Result<Vec<Arrival>, StoreError>;
    /// Consultations of the last `days` days, newest first.
    fn recent_consultations(&self, days: u32) -> Result<Vec<Consultation>, StoreError>;
    /// An arrival by id.
    fn arrival(&self, id: RecordId) -> Result<Option<Arrival>, StoreError>;
    /// Staff who may sign in.
    fn staff(&self) -> Result<Vec<Staff>, StoreError>;
    /// Open cases, soonest deadline first.
    fn open_cases(&self) -> Result<Vec<Case>, StoreError>;
    /// Cases received in the last `days` days, newest first.
    fn recent_cases(&self, days: u32) -> Result<Vec<Case>, StoreError>;
    /// Open follow-up tasks, earliest window first.
    fn open_followups(&self) -> Result<Vec<FollowupTask>, StoreError>;
    /// A follow-up task's call attempts.
    fn attempts_of(&self, task: RecordId) -> Result<Vec<CallAttempt>, StoreError>;
    /// Call attempts of the last `days` days that flagged a worrying condition, with their tasks.
    fn worrying(&self, days: u32) -> Result<Vec<(CallAttempt, Option<FollowupTask>)>, StoreError>;
    /// Audit log entries of the days `from..=to`, newest first.
    fn audit_entries(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<AuditEntry>, StoreError>;
    /// Verifies the audit chain: (entries ever appended, problems found).
    fn verify_audit(&self) -> Result<(u64, Vec<String>), StoreError>;
}

impl Queries for Store {
    fn reference(&self) -> std::sync::Arc<ReferenceData> {
        Store::reference(self)
    }

    fn now(&self) -> Moment {
        Store::now(self)
    }

    fn today(&self) -> NaiveDate {
        Store::today(self)
    }

    fn offset(&self) -> chrono::FixedOffset {
        self.utc_offset()
    }

    fn arrivals_on(&self, day: NaiveDate) -> Result<Vec<Arrival>, StoreError> {
        Store::arrivals_on(self, day)
    }

    fn possible_earlier_visits(
        &self,
        phone: Option<&str>,
        name: &str,
        age: Option<u8>,
    ) -> Result<Vec<Arrival>, StoreError> {
        let mut ids: Vec<RecordId> = Vec::new();
        if let Some(p) = phone.filter(|p| !p.is_empty()) {
            ids.extend(
                self.find_by_phone(p)?
                    .into_iter()
                    .filter(|(k, _)| *k == crate::model::RecordKind::Arrival)
                    .map(|x| x.1),
            );
        }
        let name = name.trim();
        if !name.is_empty() {
            for (n, kind, id) in self.find_by_name_prefix(name, 200)? {
                if n == name && kind == crate::model::RecordKind::Arrival && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let mut found: Vec<Arrival> = self.get_many(ids)?;
        found.retain(|a| {
            let same_phone = phone.is_some_and(|p| a.phone.as_deref() == Some(p));
            let age_close = match (age, a.age) {
                (Some(x), Some(y)) => x.abs_diff(y) <= 2,
                _ => true,
            };
            same_phone || (a.name == name && age_close)
        });
        found.sort_by_key(|a| std::cmp::Reverse(a.arrived_at));
        found.truncate(20);
        Ok(found)
    }

    fn recent_consultations(&self, days: u32) -> Result<Vec<Consultation>, StoreError> {
        let to = self.now().plus_millis(60_000);
        let from = Moment::start_of_day(
            self.today().checked_sub_days(chrono::Days::new(u64::from(days))).unwrap_or(self.today()),
            self.utc_offset(),
        );
        let ids = self.ids_between(crate::model::RecordKind::Consultation, from, to)?;
        let mut out: Vec<Consultation> = self.get_many(ids)?;
        out.reverse();
        Ok(out)
    }

    fn arrival(&self, id: RecordId) -> Result<Option<Arrival>, StoreError> {
        self.get(id)
    }

    fn staff(&self) -> Result<Vec<Staff>, StoreError> {
        Ok(self.all_staff()?.into_iter().filter(|s| s.active).collect())
    }

    fn open_cases(&self) -> Result<Vec<Case>, StoreError> {
        self.open_cases_due(None)
    }

    fn recent_cases(&self, days: u32) -> Result<Vec<Case>, StoreError> {
        let from = self.now().plus_millis(-i64::from(days) * 86_400_000);
        let ids = self.ids_between(crate::model::RecordKind::Case, from, Moment(i64::MAX))?;
        let mut out: Vec<Case> = self.get_many(ids)?;
        out.reverse();
        Ok(out)
    }

    fn open_followups(&self) -> Result<Vec<FollowupTask>, StoreError> {
        self.open_followups_due(None)
    }

    fn attempts_of(&self, task: RecordId) -> Result<Vec<CallAttempt>, StoreError> {
        Store::attempts_of(self, task)
    }

    fn worrying(&self, days: u32) -> Result<Vec<(CallAttempt, Option<FollowupTask>)>, StoreError> {
        let from = self.now().plus_millis(-i64::from(days) * 86_400_000);
        let ids = self.ids_between(crate::model::RecordKind::CallAttempt, from, Moment(i64::MAX))?;
        let mut out = Vec::new();
        for a in self.get_many::<CallAttempt>(ids)? {
            if a.worrying {
                let task = self.get::<FollowupTask>(a.task)?;
                out.push((a, task));
            }
        }
        out.reverse();
        Ok(out)
    }

    fn audit_entries(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<AuditEntry>, StoreError> {
        let offset = self.utc_offset();
        let to = to.succ_opt().map_or(Moment(i64::MAX), |d| Moment::start_of_day(d, offset));
        let mut out = Store::audit_entries(self, Moment::start_of_day(from, offset), to)?;
        out.reverse();
        Ok(out)
    }

    fn verify_audit(&self) -> Result<(u64, Vec<String>), StoreError> {
        let problems = self.verify_chain::<AuditEntry>()?.iter().map(ToString::to_string).collect();
        Ok((self.chain_head(crate::model::RecordKind::Audit)?.0, problems))
    }
}

/// A search over past arrivals and consultations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// Phone digits or a name (prefix).
    pub text: String,
    /// First day included.
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
    /// Department code.
    pub department: Option<String>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchHit {
    /// An arrival.
    Arrival(Box<Arrival>),
    /// A consultation.
    Consultation(Box<Consultation>),
}

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
    /// Note in the audit log that a record's details were opened (or, without a target, a list such as the audit
    /// log itself was read).
    View {
        /// The record opened.
        target: Option<AuditTarget>,
        /// What was looked at (a fixed word, never user input).
        what: &'static str,
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

pub use crate::workflow::CaseCommand;

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

/// Runs a search against the store (called on a background thread).
pub fn run_search(store: &Store, q: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
    use crate::model::RecordKind;
    let offset = store.utc_offset();
    let from = q.from.map_or(Moment(i64::MIN), |d| Moment::start_of_day(d, offset));
    let to = q.to.and_then(|d| d.succ_opt()).map_or(Moment(i64::MAX), |d| Moment::start_of_day(d, offset));
    let text = q.text.trim();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let is_phone =
        !digits.is_empty() && digits.len() == text.chars().filter(|c| !c.is_whitespace() && *c != '-').count();
    let mut keys: Vec<(RecordKind, RecordId)> = Vec::new();
    if text.is_empty() {
        for kind in [RecordKind::Arrival, RecordKind::Consultation] {
            let lo = if from.0 == i64::MIN { store.now().plus_millis(-7 * 86_400_000) } else { from };
            let mut ids = store.ids_between(kind, lo, to)?;
            ids.reverse();
            ids.truncate(500);
            keys.extend(ids.into_iter().map(|id| (kind, id)));
        }
    } else if is_phone {
        keys = store.find_by_phone(&digits)?;
    } else {
        keys = store.find_by_name_prefix(text, 500)?.into_iter().map(|(_, k, id)| (k, id)).collect();
    }
    let dept = q.department.as_deref();
    let mut hits = Vec::new();
    for (kind, id) in keys {
        match kind {
            RecordKind::Arrival => {
                if let Some(a) = store.get::<Arrival>(id)?
                    && a.arrived_at >= from
                    && a.arrived_at < to
                    && dept.is_none_or(|d| a.department.value == d)
                {
                    hits.push(SearchHit::Arrival(Box::new(a)));
                }
            }
            RecordKind::Consultation => {
                if let Some(c) = store.get::<Consultation>(id)?
                    && c.at >= from
                    && c.at < to
                    && dept.is_none_or(|d| c.referred_department.as_deref() == Some(d))
                {
                    hits.push(SearchHit::Consultation(Box::new(c)));
                }
            }
            _ => {}
        }
    }
    hits.sort_by_key(|h| {
        std::cmp::Reverse(match h {
            SearchHit::Arrival(a) => a.arrived_at,
            SearchHit::Consultation(c) => c.at,
        })
    });
    hits.truncate(500);
    Ok(hits)
}
