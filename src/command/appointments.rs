//! Bookings: taking one (capacity and duty checked against what the session already holds), checking the patient
//! in (the booking becomes an arrival, its doctor the patient's choice 指定), cancelling, rescheduling (a new
//! booking replaces the old one), and the no-show sweep at each session's end (each no-show becomes a call task).

use chrono::NaiveDate;

use crate::model::arrival::DoctorChoice;
use crate::model::validate::normalize_phone;
use crate::model::{
    Appointment, AppointmentEvent, AppointmentForm, AppointmentStatus, Arrival, ArrivalForm, Consultation,
    FollowupSource, FollowupStatus, FollowupTask, Lww, Occupancy, Problem, RecordId, StaffRef, ValidationErrors,
    VisitType,
};
use crate::store::{StoreError, WriteCtx};

/// Who marks a no-show at a session's end.
pub const NO_SHOW_ACTOR: &str = "system";

/// The purpose under which a booking's no-show call task id is derived ([`RecordId::derived`]).
const NO_SHOW_TASK: &str = "no_show_call";

/// Days back the no-show sweep looks (a desk switched off for a week still files its no-shows).
const SWEEP_DAYS: u64 = 31;

/// What to do with a booking.
#[derive(Debug, Clone, PartialEq)]
pub enum AppointmentAction {
    /// The patient is here: register the arrival (on the booked day).
    CheckIn,
    /// Cancel, with the reason.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Mark that the patient did not come (before the sweep does).
    NoShow,
    /// Move to another day or session: a new booking is made from `form` and this one closes.
    Reschedule {
        /// The new booking (patient, department and channel are carried over when left empty).
        form: Box<AppointmentForm>,
        /// Why.
        reason: String,
    },
}

impl AppointmentAction {
    /// Stable name (audit detail).
    pub fn name(&self) -> &'static str {
        match self {
            AppointmentAction::CheckIn => "check_in",
            AppointmentAction::Cancel { .. } => "cancel",
            AppointmentAction::NoShow => "no_show",
            AppointmentAction::Reschedule { .. } => "reschedule",
        }
    }
}

/// What a session already holds for a form: the doctor's places taken and whether the same patient is booked in
/// the same department and session (`except` leaves out the booking being rescheduled).
fn occupancy(
    ctx: &mut WriteCtx<'_>,
    form: &AppointmentForm,
    except: Option<RecordId>,
) -> Result<Occupancy, StoreError> {
    let (Some(day), Some(session)) = (form.parsed_day(), form.session) else { return Ok(Occupancy::default()) };
    let phone = normalize_phone(&form.phone).ok();
    let mut occ = Occupancy::default();
    for a in ctx.appointments_between(day, day)? {
        if a.session != session || !a.holds_place() || Some(a.id) == except {
            continue;
        }
        if !form.doctor.trim().is_empty() && a.doctor.as_deref() == Some(form.doctor.trim()) {
            occ.doctor_booked += 1;
        }
        if phone.as_deref() == Some(a.phone.as_str()) && a.department == form.department.trim() {
            occ.same_patient = true;
        }
    }
    Ok(occ)
}

/// Takes a booking as `by`. A booking from an enquiry marks the enquiry's appointment day.
pub fn book(ctx: &mut WriteCtx<'_>, form: &AppointmentForm, by: &StaffRef) -> Result<RecordId, StoreError> {
    let occ = occupancy(ctx, form, None)?;
    let rec = make(ctx, form, occ, by)?;
    file_booking(ctx, &rec)?;
    Ok(rec.id)
}

fn make(
    ctx: &mut WriteCtx<'_>,
    form: &AppointmentForm,
    occ: Occupancy,
    by: &StaffRef,
) -> Result<Appointment, StoreError> {
    let (id, at) = (ctx.new_id(), ctx.now());
    let time = at.local(ctx.offset()).time();
    Ok(form.into_record(ctx.reference(), ctx.today(), time, occ, id, at, by.clone())?)
}

/// Writes a new booking and marks its enquiry (for callers that build the record themselves: demo data).
pub fn file_booking(ctx: &mut WriteCtx<'_>, rec: &Appointment) -> Result<(), StoreError> {
    ctx.put(rec)?;
    if let Some(enquiry) = rec.enquiry {
        let mut c: Consultation = ctx.require(enquiry)?;
        let stamp = ctx.stamp();
        c.appointment.set(Some(rec.day), stamp);
        ctx.put(&c)?;
    }
    Ok(())
}

/// Acts on a booking as `by`; the id of the record made (the arrival of a check-in, the new booking of a
/// reschedule) or of the booking changed.
pub fn act(
    ctx: &mut WriteCtx<'_>,
    id: RecordId,
    action: &AppointmentAction,
    by: &StaffRef,
) -> Result<RecordId, StoreError> {
    let mut a: Appointment = ctx.require(id)?;
    let (at, stamp) = (ctx.now(), ctx.stamp());
    let event = |status, reason: Option<&str>| AppointmentEvent::new(status, at, by.clone(), reason, stamp);
    match action {
        AppointmentAction::CheckIn => return check_in(ctx, a, by),
        AppointmentAction::Cancel { reason } => a.record(event(AppointmentStatus::Cancelled, Some(reason)))?,
        AppointmentAction::NoShow => {
            a.record(event(AppointmentStatus::NoShow, None))?;
            no_show_task(ctx, &a)?;
        }
        AppointmentAction::Reschedule { form, reason } => {
            let mut f = (**form).clone();
            for (field, old) in
                [(&mut f.name, &a.patient_name), (&mut f.phone, &a.phone), (&mut f.department, &a.department)]
            {
                if field.trim().is_empty() {
                    field.clone_from(old);
                }
            }
            f.kind = f.kind.or(Some(a.kind));
            f.channel = f.channel.or(Some(a.channel));
            if f.doctor.trim().is_empty() && f.department == a.department {
                f.doctor = a.doctor.clone().unwrap_or_default();
            }
            f.enquiry = None;
            let occ = occupancy(ctx, &f, Some(a.id))?;
            let new = make(ctx, &f, occ, by);
            if reason.trim().is_empty() {
                let mut e = match new {
                    Err(StoreError::Invalid(e)) => e,
                    Err(other) => return Err(other),
                    Ok(_) => ValidationErrors::default(),
                };
                e.push("reason", Problem::Required);
                return Err(e.into());
            }
            let mut new = new?;
            new.rescheduled_from = Some(a.id);
            new.enquiry = a.enquiry;
            a.record(AppointmentEvent {
                moved_to: Some(new.id),
                ..event(AppointmentStatus::Rescheduled, Some(reason))
            })?;
            ctx.put(&a)?;
            ctx.put(&new)?;
            return Ok(new.id);
        }
    }
    ctx.put(&a)?;
    Ok(id)
}

/// Checks a booked patient in on the booked day: the arrival is registered from the booking (the booked doctor as
/// the patient's choice 指定; a return visit when an earlier arrival has the same phone), the booking records the
/// arrival, an open no-show call for it is cancelled, and its enquiry is linked to the arrival.
fn check_in(ctx: &mut WriteCtx<'_>, mut a: Appointment, by: &StaffRef) -> Result<RecordId, StoreError> {
    if a.day != ctx.today() {
        let mut e = ValidationErrors::default();
        e.push("day", Problem::Conflict("a booking is checked in on the day booked"));
        return Err(e.into());
    }
    let earlier = latest_arrival_by_phone(ctx, &a.phone)?;
    let form = ArrivalForm {
        name: a.patient_name.clone(),
        sex: Some(crate::model::Sex::Unknown),
        phone: a.phone.clone(),
        visit_type: Some(if earlier.is_some() { VisitType::Return } else { VisitType::First }),
        channel: Some(a.channel.arrival_channel()),
        complaint: a.reason.clone().unwrap_or_else(|| format!("预约：{}", kind_zh(a.kind))),
        department: a.department.clone(),
        doctor: a.doctor.clone().unwrap_or_default(),
        designated: a.doctor.is_some(),
        previous_visit: earlier,
        ..ArrivalForm::default()
    };
    let draft = form.validate(ctx.reference(), ctx.today())?;
    let (arrival_id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
    let mut arrival = draft.into_record(arrival_id, at, by.clone(), stamp);
    if let Some(doctor) = &a.doctor {
        // The booked doctor is the patient's choice, whatever the session's roster says now.
        arrival.doctor = Lww::new(Some(DoctorChoice { doctor: doctor.clone(), designated: true }), stamp);
    }
    a.record(AppointmentEvent {
        arrival: Some(arrival_id),
        ..AppointmentEvent::new(AppointmentStatus::CheckedIn, at, by.clone(), None, stamp)
    })?;
    super::desk::file_arrival(ctx, &arrival)?;
    ctx.put(&a)?;
    let task_id = RecordId::derived(NO_SHOW_TASK, a.id);
    if let Some(mut t) = ctx.get::<FollowupTask>(task_id)?
        && !t.status.value.is_final()
    {
        let stamp = ctx.stamp();
        t.status.set(FollowupStatus::Cancelled, stamp);
        t.closed_at.set(Some(at), stamp);
        ctx.put(&t)?;
    }
    if let Some(enquiry) = a.enquiry
        && let Some(mut c) = ctx.get::<Consultation>(enquiry)?
        && c.arrival.value.is_none()
    {
        let stamp = ctx.stamp();
        c.arrival.set(Some(arrival_id), stamp);
        ctx.put(&c)?;
    }
    Ok(arrival_id)
}

/// The Chinese name of a booking type, for the chief complaint of a checked-in booking without a reason.
fn kind_zh(k: crate::model::AppointmentType) -> &'static str {
    use crate::model::AppointmentType as T;
    match k {
        T::Expert => "专家门诊",
        T::Specialist => "专科门诊",
        T::Examination => "检查",
        T::PhysicalExam => "体检",
        T::Admission => "住院",
        T::HomeCare => "居家护理",
    }
}

/// The no-show call task of a booking, made once: its id is derived from the booking's, so desks that sweep the
/// same session apart make the same record.
fn no_show_task(ctx: &mut WriteCtx<'_>, a: &Appointment) -> Result<(), StoreError> {
    let id = RecordId::derived(NO_SHOW_TASK, a.id);
    let source = FollowupSource::NoShow { appointment: a.id, day: a.day };
    if ctx.get::<FollowupTask>(id)?.is_some() || ctx.followup_by_source(&source.dedup_key())?.is_some() {
        return Ok(());
    }
    let (now, today, stamp) = (ctx.now(), ctx.today(), ctx.stamp());
    let days = ctx.reference().appointment_policy.no_show_call_days;
    ctx.put(&no_show_call(a, now, today, days, stamp))
}

/// The call task of a no-show made at `at` on `day`, due within `days` days; its id derived from the booking's.
pub fn no_show_call(
    a: &Appointment,
    at: crate::model::Moment,
    day: NaiveDate,
    days: u32,
    stamp: guidedesk_sync::Hlc,
) -> FollowupTask {
    FollowupTask {
        id: RecordId::derived(NO_SHOW_TASK, a.id),
        created_at: at,
        created_by: StaffRef(NO_SHOW_ACTOR.into()),
        source: FollowupSource::NoShow { appointment: a.id, day: a.day },
        patient_name: a.patient_name.clone(),
        phone: a.phone.clone(),
        department: Some(a.department.clone()),
        inpatient: false,
        due_from: day,
        due_to: day + chrono::Days::new(u64::from(days)),
        status: Lww::new(FollowupStatus::Open, stamp),
        closed_at: Lww::new(None, stamp),
    }
}

/// The bookings of the last [`SWEEP_DAYS`] days still expected after their session ended (plus the grace).
pub fn overdue(
    bookings: &[Appointment],
    refs: &crate::model::ReferenceData,
    now: chrono::NaiveDateTime,
) -> Vec<RecordId> {
    bookings
        .iter()
        .filter(|a| a.kind.comes_in() && a.status() == AppointmentStatus::Booked)
        .filter(|a| refs.appointment_policy.no_show_after(a.day, a.session).is_some_and(|t| now >= t))
        .map(|a| a.id)
        .collect()
}

/// The days the sweep looks at, ending today.
pub fn sweep_days(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    (today - chrono::Days::new(SWEEP_DAYS), today)
}

/// [`sweep_no_shows`] when a read finds a booking due (no write transaction otherwise); how many it marked.
pub fn sweep_if_due(store: &crate::store::Store) -> Result<usize, StoreError> {
    let (from, to) = sweep_days(store.today());
    let now = store.now().local(store.utc_offset()).naive_local();
    if overdue(&store.appointments_between(from, to)?, &store.reference(), now).is_empty() {
        return Ok(0);
    }
    store.write(sweep_no_shows)
}

/// Marks every booking whose session has ended without the patient as a no-show and puts a call for it on the
/// follow-up worklist; how many it marked.
pub fn sweep_no_shows(ctx: &mut WriteCtx<'_>) -> Result<usize, StoreError> {
    let (from, to) = sweep_days(ctx.today());
    let now = ctx.now().local(ctx.offset()).naive_local();
    let bookings = ctx.appointments_between(from, to)?;
    let due = overdue(&bookings, ctx.reference(), now);
    let system = StaffRef(NO_SHOW_ACTOR.into());
    for id in &due {
        let mut a: Appointment = ctx.require(*id)?;
        let (at, stamp) = (ctx.now(), ctx.stamp());
        a.record(AppointmentEvent::new(AppointmentStatus::NoShow, at, system.clone(), None, stamp))?;
        ctx.put(&a)?;
        no_show_task(ctx, &a)?;
    }
    Ok(due.len())
}

/// The most recent earlier arrival with this phone, if any (a checked-in booking links it as a return visit).
fn latest_arrival_by_phone(ctx: &mut WriteCtx<'_>, phone: &str) -> Result<Option<RecordId>, StoreError> {
    let mut best: Option<Arrival> = None;
    for id in ctx.ids_by_phone(crate::model::RecordKind::Arrival, phone)? {
        if let Some(a) = ctx.get::<Arrival>(id)?
            && best.as_ref().is_none_or(|b| a.arrived_at > b.arrived_at)
        {
            best = Some(a);
        }
    }
    Ok(best.map(|a| a.id))
}
