//! Demo bookings: taken on each day for the week ahead, and what became of them by now.

use chrono::Days;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{DURATIONS, DayGen, DemoReport, id_at, mobile, name, pick, weighted};
use crate::model::{ArrivalForm, Lww, Moment, RecordId, Sex, StaffRef, VisitStep, VisitType};
use crate::policy;
use crate::store::{StoreError, WriteCtx};

impl DayGen<'_> {
    /// Bookings taken on the day for the next week: those whose session has passed by now came (checked in, an
    /// arrival on record with the booked doctor chosen), did not come (a no-show with its call task), were
    /// cancelled or moved; the rest are still expected.
    pub(super) fn bookings(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        n: u32,
        at_time: &dyn Fn(u32, u32) -> Moment,
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        use crate::model::reference::Session;
        use crate::model::{
            Appointment, AppointmentEvent, AppointmentStatus as S, AppointmentType as T, BookingChannel as C,
        };
        let policy = &self.refs.appointment_policy;
        for _ in 0..n {
            let booked_at = self.working_hours(at_time(0, rng.random_range(480..1050)), rng);
            if booked_at > self.now {
                continue;
            }
            let day = self.day + Days::new(rng.random_range(0..8));
            let session = *pick(rng, &Session::CLINIC[..2]);
            let dept = pick(rng, &self.refs.departments).id.clone();
            let on_duty = self.refs.doctors_on_duty_in(day, Some(session), Some(&dept));
            let holiday = matches!(self.refs.calendar.day_kind(day).kind, policy::calendar::DayKind::Holiday { .. });
            if holiday && on_duty.is_empty() {
                // The clinics are closed on a public holiday (the booking rule of `AppointmentForm`).
                continue;
            }
            let kind = weighted(
                rng,
                &[
                    (T::Expert, 40),
                    (T::Specialist, 30),
                    (T::Examination, 15),
                    (T::PhysicalExam, 10),
                    (T::Admission, 3),
                    (T::HomeCare, 2),
                ],
            );
            let doctor = match kind {
                T::Expert if on_duty.is_empty() => continue,
                T::Expert => Some(pick(rng, &on_duty).id.clone()),
                T::Specialist if !on_duty.is_empty() && rng.random_bool(0.5) => Some(pick(rng, &on_duty).id.clone()),
                _ => None,
            };
            let desk = if rng.random_bool(0.6) { self.cs } else { self.guides };
            let by = StaffRef(pick(rng, desk).clone());
            let mut a = Appointment {
                id: id_at(rng, booked_at),
                booked_at,
                booked_by: by.clone(),
                kind,
                channel: weighted(
                    rng,
                    &[(C::Phone, 40), (C::WeChat, 30), (C::Web, 15), (C::OnSite, 10), (C::Referral, 5)],
                ),
                patient_name: name(rng),
                phone: mobile(rng),
                department: dept,
                doctor,
                day,
                session,
                slot: None,
                reason: Some(format!("{}复诊", pick(rng, DURATIONS))).filter(|_| rng.random_bool(0.3)),
                enquiry: None,
                rescheduled_from: None,
                overbooked: None,
                events: Vec::new(),
            };
            let (Some((start, _)), Some(over)) = (policy.hours(session), policy.no_show_after(day, session)) else {
                continue;
            };
            let over = Moment::start_of_day(day, self.offset)
                .plus_millis((over - day.and_time(chrono::NaiveTime::MIN)).num_milliseconds());
            let start =
                Moment::start_of_day(day, self.offset).plus_millis((start - chrono::NaiveTime::MIN).num_milliseconds());
            let outcome = weighted(rng, &[(S::CheckedIn, 80), (S::NoShow, 11), (S::Cancelled, 6), (S::Rescheduled, 3)]);
            let event = |status, at, by: &StaffRef, reason: Option<&str>, stamp| {
                AppointmentEvent::new(status, at, by.clone(), reason, stamp)
            };
            match outcome {
                S::Cancelled | S::Rescheduled => {
                    let at = booked_at.plus_millis(rng.random_range(1..48) * 3_600_000);
                    if at <= self.now {
                        let reason = if outcome == S::Cancelled { "患者来电取消" } else { "患者要求改期" };
                        let stamp = ctx.stamp();
                        // A reschedule here closes the booking; the new one is among the day's other bookings.
                        a.record(event(outcome, at, &by, Some(reason), stamp))?;
                    }
                }
                S::CheckedIn if kind.comes_in() => {
                    let at = start.plus_millis(rng.random_range(-30..90) * 60_000);
                    if at <= self.now {
                        let arrival = self.booked_arrival(ctx, rng, &a, at)?;
                        report.arrivals += 1;
                        let stamp = ctx.stamp();
                        a.record(AppointmentEvent {
                            arrival: Some(arrival),
                            ..event(S::CheckedIn, at, &by, None, stamp)
                        })?;
                    }
                }
                _ if kind.comes_in() && over <= self.now => {
                    let system = StaffRef(crate::command::appointments::NO_SHOW_ACTOR.into());
                    let stamp = ctx.stamp();
                    a.record(event(S::NoShow, over, &system, None, stamp))?;
                    let stamp = ctx.stamp();
                    let task =
                        crate::command::appointments::no_show_call(&a, over, day, policy.no_show_call_days, stamp);
                    ctx.put(&task)?;
                    report.followup_tasks += 1;
                }
                _ => {}
            }
            ctx.put(&a)?;
            report.appointments += 1;
        }
        Ok(())
    }

    /// The arrival a booking's check-in makes at `at`: the booked department and doctor (chosen), walked to done.
    fn booked_arrival(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        b: &crate::model::Appointment,
        at: Moment,
    ) -> Result<RecordId, StoreError> {
        let form = ArrivalForm {
            name: b.patient_name.clone(),
            sex: Some(if rng.random_bool(0.5) { Sex::Female } else { Sex::Male }),
            age: rng.random_range(18..85).to_string(),
            phone: b.phone.clone(),
            visit_type: Some(VisitType::Return),
            channel: Some(b.channel.arrival_channel()),
            complaint: b.reason.clone().unwrap_or_else(|| "预约就诊".into()),
            department: b.department.clone(),
            ..ArrivalForm::default()
        };
        let draft = form.validate(self.refs, b.day)?;
        let by = StaffRef(pick(rng, self.guides).clone());
        let stamp = ctx.stamp();
        let mut a = draft.into_record(id_at(rng, at), at, by.clone(), stamp);
        if let Some(d) = &b.doctor {
            a.doctor =
                Lww::new(Some(crate::model::arrival::DoctorChoice { doctor: d.clone(), designated: true }), stamp);
        }
        let mut t = at;
        for (step, mins) in [(VisitStep::Registered, 5..15), (VisitStep::WithDoctor, 10..50), (VisitStep::Done, 10..40)]
        {
            t = t.plus_millis(i64::from(rng.random_range(mins)) * 60_000);
            if t > self.now {
                break;
            }
            let stamp = ctx.stamp();
            a.move_to(step, t, by.clone(), None, stamp)?;
        }
        ctx.put(&a)?;
        Ok(a.id)
    }
}
