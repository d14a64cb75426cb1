//! The follow-up worklist's writes, each inside the caller's store transaction: the task an outpatient first visit
//! gets, call attempts (closing the task when the outcome says so), claims on a task ("being called by X" on every
//! desk of the site) and their release, and the one way to put a task.

use crate::model::reference::FollowupPolicy;
use crate::model::{
    Arrival, CallAttemptForm, CallClaim, FollowupSource, FollowupStatus, FollowupTask, Lww, Problem, RecordId,
    StaffRef, ValidationErrors, VisitType,
};
use crate::policy;
use crate::store::{StoreError, WriteCtx};

#[allow(clippy::too_many_arguments)]
pub(crate) fn put_task(
    ctx: &mut WriteCtx<'_>,
    source: FollowupSource,
    patient_name: String,
    phone: String,
    department: Option<String>,
    inpatient: bool,
    window: (chrono::NaiveDate, chrono::NaiveDate),
    by: StaffRef,
) -> Result<RecordId, StoreError> {
    let id = ctx.new_id();
    put_task_as(ctx, id, PlannedTask { source, patient_name, phone, department, window }, inpatient, by)
}

/// Puts a planned task under a given id (a derived one when desks that make it apart must make one task).
pub(crate) fn put_task_as(
    ctx: &mut WriteCtx<'_>,
    id: RecordId,
    p: PlannedTask,
    inpatient: bool,
    by: StaffRef,
) -> Result<RecordId, StoreError> {
    let PlannedTask { source, patient_name, phone, department, window: (due_from, due_to) } = p;
    let stamp = ctx.stamp();
    let task = FollowupTask {
        id,
        created_at: ctx.now(),
        created_by: by,
        source,
        patient_name,
        phone,
        department,
        inpatient,
        due_from,
        due_to,
        status: Lww::new(FollowupStatus::Open, stamp),
        closed_at: Lww::new(None, stamp),
    };
    ctx.put(&task)?;
    Ok(task.id)
}

/// A follow-up task a rule calls for, before it gets its id and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTask {
    /// Why it exists.
    pub source: FollowupSource,
    /// Patient name.
    pub patient_name: String,
    /// Phone digits to call.
    pub phone: String,
    /// Department the patient was seen in.
    pub department: Option<String>,
    /// The due window (first and last day).
    pub window: (chrono::NaiveDate, chrono::NaiveDate),
}

/// The rule for an arrival: an outpatient first visit with a phone number goes on the call list in the policy's
/// window after the day of the visit (`day`, local); anything else gets no task. Demo data at past times applies
/// the same rule through this function.
pub fn outpatient_plan(policy: &FollowupPolicy, a: &Arrival, day: chrono::NaiveDate) -> Option<PlannedTask> {
    let phone = a.phone.clone()?;
    (a.visit_type == VisitType::First).then(|| PlannedTask {
        source: FollowupSource::OutpatientFirstVisit { arrival: a.id },
        patient_name: a.name.clone(),
        phone,
        department: Some(a.department.value.clone()),
        window: policy::outpatient_window(policy, day),
    })
}

/// Puts the task [`outpatient_plan`] calls for, if any, in `ctx`.
pub fn outpatient_followup(ctx: &mut WriteCtx<'_>, a: &Arrival) -> Result<(), StoreError> {
    let day = a.arrived_at.local_date(ctx.offset());
    let Some(p) = outpatient_plan(&ctx.reference().followup_policy, a, day) else { return Ok(()) };
    put_task(ctx, p.source, p.patient_name, p.phone, p.department, false, p.window, a.handled_by.clone()).map(|_| ())
}

/// Records a call attempt; closes the task when the outcome says so (reached, refused, deceased, wrong number, or
/// too many unanswered attempts).
pub fn record_attempt(
    ctx: &mut WriteCtx<'_>,
    task_id: RecordId,
    form: &CallAttemptForm,
    by: StaffRef,
) -> Result<RecordId, StoreError> {
    let mut task: FollowupTask = ctx.require(task_id)?;
    if task.status.value.is_final() {
        let mut e = ValidationErrors::default();
        e.push("outcome", Problem::Conflict("this follow-up is already finished"));
        return Err(e.into());
    }
    let previous = ctx.attempts_of(task_id)?;
    let attempt = form.into_record(ctx.new_id(), task_id, ctx.now(), by)?;
    // 《出院病人电话回访制度》: calls are made in the calling hours (8–11, 14–17 by default); a call outside them is
    // recorded only with the reason (the patient asked to be called then, or called back).
    let policy = &ctx.reference().followup_policy;
    let local = ctx.now().local(ctx.offset()).time();
    if !crate::policy::within_calling_hours(&policy.calling_hours, local) && attempt.notes.is_none() {
        let mut e = ValidationErrors::default();
        e.push("notes", Problem::OutsideCallingHours);
        return Err(e.into());
    }
    ctx.put(&attempt)?;
    let max = ctx.reference().followup_policy.max_attempts;
    if let Some(status) = task.status_after(attempt.outcome, previous + 1, ctx.today(), max) {
        let stamp = ctx.stamp();
        task.status.set(status, stamp);
        task.closed_at.set(Some(attempt.at), stamp);
        ctx.put(&task)?;
        next_chronic_round(ctx, &task, attempt.by.clone())?;
    }
    Ok(attempt.id)
}

/// The purpose under which a chronic round's next round gets its id ([`RecordId::derived`] from the round's task).
const CHRONIC_NEXT: &str = "chronic plan next round";

/// The purpose under which a discharge's first chronic round gets its id ([`RecordId::derived`] from the discharge's
/// first-call task, which every desk of the site holds under the same id): desks that put the patient on the plan
/// apart — one at import, another by hand, or two callers — make one round.
pub(crate) const CHRONIC_FIRST: &str = "chronic plan first round";

/// 出院病人随访制度 4: a chronic patient's round that is finished (reached, or given up as unreachable) plans the
/// next one, due at most `every_days` after it, until the plan's rounds are done. A patient who refused or died, or
/// a cancelled round, ends the plan. The next round's id is derived from this round's, so two desks that finish the
/// same round apart (one offline) plan one next round.
fn next_chronic_round(ctx: &mut WriteCtx<'_>, task: &FollowupTask, by: StaffRef) -> Result<(), StoreError> {
    let FollowupSource::Chronic { his_key, discharged_on, round } = &task.source else { return Ok(()) };
    let Some(plan) = ctx.reference().followup_policy.chronic.clone() else { return Ok(()) };
    if *round >= plan.rounds || !matches!(task.status.value, FollowupStatus::Completed | FollowupStatus::Unreachable) {
        return Ok(());
    }
    let source = FollowupSource::Chronic { his_key: his_key.clone(), discharged_on: *discharged_on, round: round + 1 };
    let id = RecordId::derived(CHRONIC_NEXT, task.id);
    if ctx.get::<FollowupTask>(id)?.is_some() || ctx.followup_by_source(&source.dedup_key())?.is_some() {
        return Ok(());
    }
    let window = policy::chronic_next_window(&plan, ctx.today());
    let planned = PlannedTask {
        source,
        patient_name: task.patient_name.clone(),
        phone: task.phone.clone(),
        department: task.department.clone(),
        window,
    };
    put_task_as(ctx, id, planned, true, by).map(|_| ())
}

/// Puts a discharged patient on the chronic plan (慢病随访) from one of the discharge's call tasks: its first round,
/// 2–4 weeks after discharge (from today when that window has passed). Refused when the hospital has no plan, the
/// task is not a discharge's, or the patient is on the plan already.
pub fn enrol_chronic(ctx: &mut WriteCtx<'_>, task_id: RecordId, by: &StaffRef) -> Result<RecordId, StoreError> {
    let task: FollowupTask = ctx.require(task_id)?;
    let conflict = |m: &'static str| {
        let mut e = ValidationErrors::default();
        e.push("task", Problem::Conflict(m));
        StoreError::from(e)
    };
    let Some(plan) = ctx.reference().followup_policy.chronic.clone() else {
        return Err(conflict("the hospital's follow-up policy has no chronic plan"));
    };
    let (his_key, discharged_on) = match &task.source {
        FollowupSource::Discharge { his_key, discharged_on, .. }
        | FollowupSource::DischargeSecond { his_key, discharged_on } => (his_key.clone(), *discharged_on),
        _ => return Err(conflict("only a discharged patient is put on the chronic plan")),
    };
    let first_call = FollowupSource::Discharge { his_key: his_key.clone(), discharged_on, diagnosis: None };
    let anchor = ctx.followup_by_source(&first_call.dedup_key())?.unwrap_or(task.id);
    let id = RecordId::derived(CHRONIC_FIRST, anchor);
    let source = FollowupSource::Chronic { his_key, discharged_on, round: 1 };
    let window = policy::chronic_first_window(&plan, discharged_on, ctx.today());
    let planned =
        PlannedTask { source, patient_name: task.patient_name, phone: task.phone, department: task.department, window };
    if !put_task_once_as(ctx, id, planned, by)? {
        return Err(conflict("this patient is on the chronic plan already"));
    }
    Ok(id)
}

/// Puts `p` under `id` unless a task of that id or of the same source exists; whether it was put.
pub(crate) fn put_task_once_as(
    ctx: &mut WriteCtx<'_>,
    id: RecordId,
    p: PlannedTask,
    by: &StaffRef,
) -> Result<bool, StoreError> {
    if ctx.get::<FollowupTask>(id)?.is_some() || ctx.followup_by_source(&p.source.dedup_key())?.is_some() {
        return Ok(false);
    }
    put_task_as(ctx, id, p, true, by.clone())?;
    Ok(true)
}

/// Takes (or, with `release`, lets go of) a task for `by`: a claim event every desk of the site receives. Taking a
/// task another caller holds is allowed (the screen asks first) — the latest claim wins. A finished task cannot be
/// taken; letting go of one is harmless.
pub fn claim(ctx: &mut WriteCtx<'_>, task_id: RecordId, release: bool, by: StaffRef) -> Result<RecordId, StoreError> {
    let task: FollowupTask = ctx.require(task_id)?;
    if !release && task.status.value.is_final() {
        let mut e = ValidationErrors::default();
        e.push("task", Problem::Conflict("this follow-up is already finished"));
        return Err(e.into());
    }
    let c = CallClaim { id: ctx.new_id(), task: task_id, at: ctx.now(), stamp: ctx.stamp(), by, released: release };
    ctx.put(&c)?;
    Ok(c.id)
}

/// Days back a spot check looks for completed calls.
pub const SPOT_CHECK_DAYS: i64 = 31;

/// Whether a task is a call a spot check may pick: completed in the last [`SPOT_CHECK_DAYS`] days before `now`, not
/// itself a spot check.
pub fn spot_checkable(t: &FollowupTask, now: crate::model::Moment) -> bool {
    let since = now.0.saturating_sub(SPOT_CHECK_DAYS * 86_400_000);
    t.status.value == FollowupStatus::Completed
        && t.closed_at.value.is_some_and(|c| c.0 >= since)
        && !matches!(t.source, FollowupSource::SpotCheck { .. })
}

/// A supervisor's spot check (抽查): one call completed in the last [`SPOT_CHECK_DAYS`] days and not checked yet,
/// picked at random (from the new task id's random bits), goes back on the worklist as a call due within three
/// days. The supervisor does not choose which: the pick is the system's.
pub fn spot_check(ctx: &mut WriteCtx<'_>, by: StaffRef) -> Result<RecordId, StoreError> {
    let now = ctx.now();
    // Tasks are filed under when they were made: look back twice the window for calls completed in it.
    let from = crate::model::Moment(now.0.saturating_sub(2 * SPOT_CHECK_DAYS * 86_400_000));
    let mut candidates = Vec::new();
    for id in ctx.ids_between(crate::model::RecordKind::FollowupTask, from, crate::model::Moment(now.0 + 1))? {
        if let Some(t) = ctx.get::<FollowupTask>(id)?
            && spot_checkable(&t, now)
            && ctx.followup_by_source(&FollowupSource::SpotCheck { task: t.id }.dedup_key())?.is_none()
        {
            candidates.push(t);
        }
    }
    if candidates.is_empty() {
        let mut e = ValidationErrors::default();
        e.push("task", Problem::Conflict("no call completed in the last 31 days is left to spot-check"));
        return Err(e.into());
    }
    let id = ctx.new_id();
    let pick = usize::try_from(id.as_u128() % candidates.len() as u128).unwrap_or(0);
    let t = candidates.swap_remove(pick);
    let (today, stamp) = (ctx.today(), ctx.stamp());
    let task = FollowupTask {
        id,
        created_at: now,
        created_by: by,
        source: FollowupSource::SpotCheck { task: t.id },
        patient_name: t.patient_name,
        phone: t.phone,
        department: t.department,
        inpatient: t.inpatient,
        due_from: today,
        due_to: today + chrono::Days::new(2),
        status: Lww::new(FollowupStatus::Open, stamp),
        closed_at: Lww::new(None, stamp),
    };
    ctx.put(&task)?;
    Ok(id)
}
