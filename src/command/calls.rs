//! The follow-up worklist's writes, each inside the caller's store transaction: the task an outpatient first visit
//! gets, call attempts (closing the task when the outcome says so), and the one way to put a task.

use crate::model::{
    Arrival, CallAttemptForm, FollowupSource, FollowupStatus, FollowupTask, Lww, Problem, RecordId, StaffRef,
    ValidationErrors, VisitType,
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
    (due_from, due_to): (chrono::NaiveDate, chrono::NaiveDate),
    by: StaffRef,
) -> Result<RecordId, StoreError> {
    let stamp = ctx.stamp();
    let task = FollowupTask {
        id: ctx.new_id(),
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

/// An outpatient first visit with a phone number goes on the next day's call list.
pub fn outpatient_followup(ctx: &mut WriteCtx<'_>, a: &Arrival) -> Result<(), StoreError> {
    let Some(phone) = a.phone.clone() else { return Ok(()) };
    if a.visit_type != VisitType::First {
        return Ok(());
    }
    let window = policy::outpatient_window(&ctx.reference().followup_policy, a.arrived_at.local_date(ctx.offset()));
    let source = FollowupSource::OutpatientFirstVisit { arrival: a.id };
    put_task(ctx, source, a.name.clone(), phone, Some(a.department.value.clone()), false, window, a.handled_by.clone())
        .map(|_| ())
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
    ctx.put(&attempt)?;
    let max = ctx.reference().followup_policy.max_attempts;
    if let Some(status) = task.status_after(attempt.outcome, previous + 1, ctx.today(), max) {
        let stamp = ctx.stamp();
        task.status.set(status, stamp);
        task.closed_at.set(Some(attempt.at), stamp);
        ctx.put(&task)?;
    }
    Ok(attempt.id)
}
