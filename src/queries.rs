//! What screens may read: the [`Queries`] trait (read-only), implemented over the kiosk store.
//!
//! Screens never open the store: they read through `&dyn Queries` and emit [`crate::command::Command`]s. Query
//! logic that combines store lookups (earlier visits of a patient, recent lists, the dashboard's figures) lives
//! here, outside `ui`.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::model::reference::Staff;
use crate::model::{
    AnyRecord, Arrival, AuditEntry, CallAttempt, CallClaim, Case, Consultation, FollowupTask, Moment, RecordId,
    RecordKind, ReferenceData,
};
use crate::reports::{Period, ReportParams, Summary};
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
    /// The desk each record of a kind that another desk of the site wrote came from (this desk's own are not
    /// listed).
    fn origin_desks(
        &self,
        kind: crate::model::RecordKind,
    ) -> Result<std::collections::BTreeMap<RecordId, String>, StoreError>;
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
    /// Who holds each follow-up task now (see [`crate::model::followup::current_claim`]): task → the holder, with
    /// the desk of a claim made at another desk of the site (`None`: this desk).
    fn claims(&self) -> Result<BTreeMap<RecordId, HeldTask>, StoreError>;
    /// What the shared worklist needs a supervisor to settle: tasks closed by two calls in the last `days` days,
    /// and tasks made twice from one source that are both still open.
    fn worklist_attention(&self, days: u32) -> Result<WorklistAttention, StoreError>;
    /// Audit log entries of the days `from..=to`, newest first.
    fn audit_entries(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<AuditEntry>, StoreError>;
    /// Verifies the audit chain: (entries ever appended, problems found).
    fn verify_audit(&self) -> Result<(u64, Vec<String>), StoreError>;
    /// The dashboard's figures for a period and, optionally, one department and one desk (see
    /// [`dashboard_figures`]).
    fn figures(&self, period: Period, department: Option<&str>, desk: Option<&str>) -> Result<Summary, StoreError>;
    /// The other desks of the site whose records this desk holds, by code, sorted.
    fn site_desks(&self) -> Result<Vec<String>, StoreError>;
    /// Bookings for the local days `from..=to`, in (day, session, time slot) order.
    fn appointments_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<crate::model::Appointment>, StoreError>;
    /// The spot checks of the last month: (calls completed that a spot check may still pick, spot checks made).
    fn spot_check_status(&self) -> Result<(usize, usize), StoreError>;
    /// Shift handovers and daily logs of the last `days` days, newest first.
    fn shift_logs(&self, days: u32) -> Result<Vec<crate::model::ShiftLog>, StoreError>;
}

/// A caller's live claim on a task, as the worklist shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTask {
    /// The caller.
    pub by: crate::model::StaffRef,
    /// Since when.
    pub at: Moment,
    /// The desk where the claim was made, when it is another desk of the site.
    pub desk: Option<String>,
}

/// The shared worklist's conflicts, for a supervisor: both sides are kept, nothing is dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorklistAttention {
    /// Tasks two calls closed (two callers reached the same patient while their desks were apart), with both calls.
    pub double_calls: Vec<(Option<FollowupTask>, Vec<CallAttempt>)>,
    /// Open tasks made twice from one source (the same discharge list imported at two desks while apart).
    pub duplicate_tasks: Vec<Vec<FollowupTask>>,
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

    fn appointments_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<crate::model::Appointment>, StoreError> {
        Store::appointments_between(self, from, to)
    }

    fn spot_check_status(&self) -> Result<(usize, usize), StoreError> {
        use crate::command::calls::{SPOT_CHECK_DAYS, spot_checkable};
        let now = self.now();
        let from = Moment(now.0.saturating_sub(2 * SPOT_CHECK_DAYS * 86_400_000));
        let tasks =
            self.get_many::<FollowupTask>(self.ids_between(RecordKind::FollowupTask, from, Moment(i64::MAX))?)?;
        let checked: std::collections::BTreeSet<RecordId> = tasks
            .iter()
            .filter_map(|t| match t.source {
                crate::model::FollowupSource::SpotCheck { task } => Some(task),
                _ => None,
            })
            .collect();
        let open = tasks.iter().filter(|t| spot_checkable(t, now) && !checked.contains(&t.id)).count();
        let since = now.0.saturating_sub(SPOT_CHECK_DAYS * 86_400_000);
        let made = tasks
            .iter()
            .filter(|t| matches!(t.source, crate::model::FollowupSource::SpotCheck { .. }) && t.created_at.0 >= since)
            .count();
        Ok((open, made))
    }

    fn shift_logs(&self, days: u32) -> Result<Vec<crate::model::ShiftLog>, StoreError> {
        let from = Moment(self.now().0.saturating_sub(i64::from(days) * 86_400_000));
        let ids = self.ids_between(RecordKind::ShiftLog, from, Moment(i64::MAX))?;
        let mut out = self.get_many::<crate::model::ShiftLog>(ids)?;
        out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
        Ok(out)
    }

    fn origin_desks(
        &self,
        kind: crate::model::RecordKind,
    ) -> Result<std::collections::BTreeMap<RecordId, String>, StoreError> {
        Store::origin_desks(self, kind)
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

    fn claims(&self) -> Result<BTreeMap<RecordId, HeldTask>, StoreError> {
        let ttl = i64::from(self.reference().followup_policy.claim_minutes) * 60_000;
        let now = self.now();
        let from = now.plus_millis(-ttl);
        let ids = self.ids_between(RecordKind::CallClaim, from, Moment(i64::MAX))?;
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut by_task: BTreeMap<RecordId, Vec<CallClaim>> = BTreeMap::new();
        for c in self.get_many::<CallClaim>(ids)? {
            by_task.entry(c.task).or_default().push(c);
        }
        let attempts =
            self.get_many::<CallAttempt>(self.ids_between(RecordKind::CallAttempt, from, Moment(i64::MAX))?)?;
        let desks = self.origin_desks(RecordKind::CallClaim)?;
        Ok(by_task
            .into_iter()
            .filter_map(|(task, claims)| {
                let c = crate::model::followup::current_claim(&claims, &attempts, now, ttl)?;
                Some((task, HeldTask { by: c.by.clone(), at: c.at, desk: desks.get(&c.id).cloned() }))
            })
            .collect())
    }

    fn worklist_attention(&self, days: u32) -> Result<WorklistAttention, StoreError> {
        let from = self.now().plus_millis(-i64::from(days) * 86_400_000);
        let attempts =
            self.get_many::<CallAttempt>(self.ids_between(RecordKind::CallAttempt, from, Moment(i64::MAX))?)?;
        let mut out = WorklistAttention::default();
        for (task, calls) in crate::model::followup::double_calls(&attempts) {
            out.double_calls.push((self.get::<FollowupTask>(task)?, calls));
        }
        for ids in self.duplicate_followups()? {
            let open: Vec<FollowupTask> =
                self.get_many::<FollowupTask>(ids)?.into_iter().filter(|t| !t.status.value.is_final()).collect();
            if open.len() > 1 {
                out.duplicate_tasks.push(open);
            }
        }
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

    fn figures(&self, period: Period, department: Option<&str>, desk: Option<&str>) -> Result<Summary, StoreError> {
        dashboard_figures(self, period, department, desk)
    }

    fn site_desks(&self) -> Result<Vec<String>, StoreError> {
        let desks: std::collections::BTreeSet<String> = self.origins()?.into_values().map(|o| o.desk).collect();
        Ok(desks.into_iter().collect())
    }
}

/// Whether a record concerns a department (the dashboard's department filter). A call attempt belongs to its
/// task's department; feedback is the whole desk's (patients do not say which department they rate).
fn in_department(store: &Store, rec: &AnyRecord, dept: &str) -> bool {
    match rec {
        AnyRecord::Arrival(a) => a.department.value == dept,
        AnyRecord::Consultation(c) => c.referred_department.as_deref() == Some(dept),
        AnyRecord::Case(c) => {
            c.departments.iter().any(|d| d == dept) || c.assigned_department.value.as_deref() == Some(dept)
        }
        AnyRecord::FollowupTask(t) => t.department.as_deref() == Some(dept),
        AnyRecord::CallAttempt(a) => {
            store.get::<FollowupTask>(a.task).ok().flatten().is_some_and(|t| t.department.as_deref() == Some(dept))
        }
        AnyRecord::Appointment(a) => a.department == dept,
        AnyRecord::Feedback(_) => true,
        AnyRecord::Audit(_) | AnyRecord::CallClaim(_) | AnyRecord::ShiftLog(_) => false,
    }
}

/// Computes the dashboard's figures: one streaming pass per record kind through the business-time index, cases
/// from the start of the accountability look-back. Feedback given since the start of the current hour is left out,
/// so the figures never show how the last person at the patient screen answered.
///
/// The reports' own pass (`reports::source::aggregate_selected`) with what the dashboard adds: a department filter,
/// a desk filter (`Some("")`: the records this desk wrote; `Some(code)`: those another desk of the site wrote) and
/// the current-hour cut on feedback.
pub fn dashboard_figures(
    store: &Store,
    period: Period,
    department: Option<&str>,
    desk: Option<&str>,
) -> Result<Summary, StoreError> {
    let offset = store.utc_offset();
    let params = ReportParams::new(period, offset, store.today());
    let now = store.now();
    let hour_start = Moment(now.0 - now.0.rem_euclid(3_600_000));
    let origins = if desk.is_some() { store.origins()? } else { BTreeMap::new() };
    let desk_of = |rec: &AnyRecord| origins.get(&(rec.kind(), rec.id())).map_or("", |o| o.desk.as_str());
    let keep = |rec: &AnyRecord| {
        department.is_none_or(|d| in_department(store, rec, d)) && desk.is_none_or(|d| desk_of(rec) == d)
    };
    let agg = crate::reports::source::aggregate_selected(store, params, keep, Some(hour_start))?;
    Ok(agg.finish(&store.reference()))
}
