//! The desk's writes, each inside the caller's store transaction: registration (and the follow-up task an
//! outpatient first visit gets — every path that registers goes through [`register`] or [`file_arrival`]), visit
//! steps, department changes (换号), consultations and their links, and the patient's satisfaction survey.

use crate::model::arrival::DoctorChoice;
use crate::model::{
    Arrival, ArrivalForm, Consultation, ConsultationForm, FeedbackForm, FollowupSource, FollowupStatus, FollowupTask,
    Lww, RecordId, StaffRef, VisitStep,
};
use crate::store::{StoreError, WriteCtx};

/// Registers an arrival now, as `by`: the form is validated against reference data, the record written, and the
/// outpatient follow-up rule applied ([`file_arrival`]).
pub fn register(ctx: &mut WriteCtx<'_>, form: &ArrivalForm, by: &StaffRef) -> Result<RecordId, StoreError> {
    let session = ctx.reference().appointment_policy.session_for(ctx.now().local(ctx.offset()).time());
    let draft = form.validate_in(ctx.reference(), ctx.today(), session)?;
    let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
    let rec = draft.into_record(id, at, by.clone(), stamp);
    file_arrival(ctx, &rec)?;
    Ok(id)
}

/// Writes a new arrival and the follow-up task its registration calls for (an outpatient first visit with a phone
/// number goes on the next day's call list). For callers that build the record themselves (demo data at past
/// times, the stress command).
pub fn file_arrival(ctx: &mut WriteCtx<'_>, rec: &Arrival) -> Result<(), StoreError> {
    ctx.put(rec)?;
    super::calls::outpatient_followup(ctx, rec)
}

/// Moves an arrival to a visit step (退号 and the like need a reason).
pub fn move_step(
    ctx: &mut WriteCtx<'_>,
    id: RecordId,
    step: VisitStep,
    reason: Option<&str>,
    by: &StaffRef,
) -> Result<RecordId, StoreError> {
    let mut a: Arrival = ctx.require(id)?;
    let (at, stamp) = (ctx.now(), ctx.stamp());
    a.move_to(step, at, by.clone(), reason, stamp)?;
    ctx.put(&a)?;
    Ok(id)
}

/// Changes an arrival's department or doctor (换号), with the reason.
pub fn change_department(
    ctx: &mut WriteCtx<'_>,
    id: RecordId,
    department: &str,
    doctor: Option<DoctorChoice>,
    reason: &str,
    by: &StaffRef,
) -> Result<RecordId, StoreError> {
    let mut a: Arrival = ctx.require(id)?;
    let (at, stamp) = (ctx.now(), ctx.stamp());
    a.change_department(ctx.reference(), department, doctor, reason, at, by.clone(), stamp)?;
    ctx.put(&a)?;
    Ok(id)
}

/// Logs a consultation (phone, online or in person).
pub fn consult(ctx: &mut WriteCtx<'_>, form: &ConsultationForm, by: &StaffRef) -> Result<RecordId, StoreError> {
    let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
    let c = form.into_record(ctx.reference(), id, at, by.clone(), stamp)?;
    ctx.put(&c)?;
    Ok(id)
}

/// Links a consultation to the arrival it became (the enquiry's conversion).
pub fn link(ctx: &mut WriteCtx<'_>, consultation: RecordId, arrival: RecordId) -> Result<RecordId, StoreError> {
    let mut c: Consultation = ctx.require(consultation)?;
    ctx.require::<Arrival>(arrival)?;
    let stamp = ctx.stamp();
    c.arrival.set(Some(arrival), stamp);
    ctx.put(&c)?;
    Ok(consultation)
}

/// Saves a patient's survey: the feedback record on this kiosk's hash chain and, when the answer is dissatisfied
/// and the patient left a phone number, a same-day call-back task.
pub fn save_feedback(ctx: &mut WriteCtx<'_>, form: &FeedbackForm) -> Result<RecordId, StoreError> {
    let (id, at) = (ctx.new_id(), ctx.now());
    let fb = ctx.append_feedback(form.into_record(id, at)?)?;
    if fb.is_dissatisfied()
        && let Some(phone) = fb.contact_phone.clone()
    {
        let stamp = ctx.stamp();
        let today = ctx.today();
        let task = FollowupTask {
            id: ctx.new_id(),
            created_at: at,
            created_by: StaffRef("feedback".into()),
            source: FollowupSource::Feedback { feedback: fb.id },
            patient_name: String::new(),
            phone,
            department: None,
            inpatient: false,
            due_from: today,
            due_to: today,
            status: Lww::new(FollowupStatus::Open, stamp),
            closed_at: Lww::new(None, stamp),
        };
        ctx.put(&task)?;
    }
    Ok(fb.id)
}

/// Writes a shift handover or the day's work log, filed under today and the session the time falls in.
pub fn write_log(
    ctx: &mut WriteCtx<'_>,
    form: &crate::model::ShiftLogForm,
    by: &StaffRef,
) -> Result<RecordId, StoreError> {
    let (id, at) = (ctx.new_id(), ctx.now());
    let shift = ctx.reference().appointment_policy.session_for(at.local(ctx.offset()).time());
    let log = form.into_record(id, at, by.clone(), ctx.today(), shift)?;
    ctx.put(&log)?;
    Ok(id)
}

/// Marks a handover read by `by` (the next shift).
pub fn read_log(ctx: &mut WriteCtx<'_>, id: RecordId, by: &StaffRef) -> Result<RecordId, StoreError> {
    let mut log: crate::model::ShiftLog = ctx.require(id)?;
    let (at, stamp) = (ctx.now(), ctx.stamp());
    log.mark_read(by.clone(), at, stamp)?;
    ctx.put(&log)?;
    Ok(id)
}
