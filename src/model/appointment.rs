//! Appointments (预约): experts, specialist clinics, examinations, physical examinations, admissions and home care
//! booked by phone, WeChat, the web, at the desk or by referral — and what became of each booking.
//!
//! A booking is for one day and clinic session (optionally a time slot) in a department, optionally with a doctor.
//! Its status is derived from an append-only list of stamped events (booked → checked in / no-show / cancelled /
//! rescheduled), so two desks that changed the same booking apart merge without losing either change, and the
//! outcome does not depend on the order copies arrive in: a check-in beats everything (the patient came), a
//! reschedule beats a no-show or a cancellation (the booking lives on as a new one), otherwise the latest event wins.
//! A reschedule closes the booking and makes a new one (`rescheduled_from`), so the arrival rate counts each visit
//! once.

use chrono::NaiveDate;
use guidedesk_sync::Hlc;
use serde::{Deserialize, Serialize};

use super::common::{Merge, Moment, RecordId, StaffRef, merge_events};
use super::reference::{ReferenceData, Session};
use super::validate::{self, Problem, ValidationErrors, limits};

/// What is booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentType {
    /// 专家门诊 (needs a doctor)
    Expert,
    /// 专科门诊
    Specialist,
    /// 检查
    Examination,
    /// 体检
    PhysicalExam,
    /// 住院
    Admission,
    /// 居家护理
    HomeCare,
}

impl AppointmentType {
    /// Every type, in display order.
    pub const ALL: [AppointmentType; 6] = [
        AppointmentType::Expert,
        AppointmentType::Specialist,
        AppointmentType::Examination,
        AppointmentType::PhysicalExam,
        AppointmentType::Admission,
        AppointmentType::HomeCare,
    ];

    /// Stable key (locale key suffix, export value).
    pub fn key(self) -> &'static str {
        match self {
            AppointmentType::Expert => "expert",
            AppointmentType::Specialist => "specialist",
            AppointmentType::Examination => "examination",
            AppointmentType::PhysicalExam => "physical_exam",
            AppointmentType::Admission => "admission",
            AppointmentType::HomeCare => "home_care",
        }
    }

    /// Whether the patient comes to a clinic (and so registers at the desk and can be a no-show). Home care is
    /// delivered at home: it is never checked in at the desk nor counted in the arrival rate.
    pub fn comes_in(self) -> bool {
        self != AppointmentType::HomeCare
    }
}

/// How the booking was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingChannel {
    /// 电话
    Phone,
    /// 微信
    WeChat,
    /// 网站
    Web,
    /// 现场
    OnSite,
    /// 转诊
    Referral,
}

impl BookingChannel {
    /// Every channel, in display order.
    pub const ALL: [BookingChannel; 5] = [
        BookingChannel::Phone,
        BookingChannel::WeChat,
        BookingChannel::Web,
        BookingChannel::OnSite,
        BookingChannel::Referral,
    ];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            BookingChannel::Phone => "phone",
            BookingChannel::WeChat => "wechat",
            BookingChannel::Web => "web",
            BookingChannel::OnSite => "on_site",
            BookingChannel::Referral => "referral",
        }
    }

    /// The arrival channel a checked-in booking is registered under.
    pub fn arrival_channel(self) -> super::ArrivalChannel {
        match self {
            BookingChannel::Phone | BookingChannel::OnSite => super::ArrivalChannel::PhoneBooking,
            BookingChannel::WeChat | BookingChannel::Web => super::ArrivalChannel::OnlineBooking,
            BookingChannel::Referral => super::ArrivalChannel::Referral,
        }
    }
}

/// Where a booking stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    /// 已预约: expected.
    Booked,
    /// 已到院: the patient came and was registered.
    CheckedIn,
    /// 爽约: the session ended without the patient.
    NoShow,
    /// 已取消
    Cancelled,
    /// 已改约: replaced by another booking.
    Rescheduled,
}

impl AppointmentStatus {
    /// Every status, in display order.
    pub const ALL: [AppointmentStatus; 5] = [
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::NoShow,
        AppointmentStatus::Cancelled,
        AppointmentStatus::Rescheduled,
    ];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::CheckedIn => "checked_in",
            AppointmentStatus::NoShow => "no_show",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::Rescheduled => "rescheduled",
        }
    }

    /// Whether nothing more is expected of the booking (a no-show can still be checked in the same day, but it is
    /// off the expected list).
    pub fn is_final(self) -> bool {
        self != AppointmentStatus::Booked
    }
}

/// One change of a booking's status: what, when, by whom and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentEvent {
    /// The status entered.
    pub status: AppointmentStatus,
    /// When.
    pub at: Moment,
    /// Who (`system` for a no-show at the session's end).
    pub by: StaffRef,
    /// Why (cancellations and reschedules need one).
    pub reason: Option<String>,
    /// The arrival a check-in made.
    pub arrival: Option<RecordId>,
    /// The booking a reschedule made.
    pub moved_to: Option<RecordId>,
    /// HLC stamp of the write.
    pub stamp: Hlc,
}

impl AppointmentEvent {
    /// A change to `status` at `at` by `by`, with an optional reason and no links (set `arrival` or `moved_to`
    /// with struct update syntax for a check-in or a reschedule).
    pub fn new(status: AppointmentStatus, at: Moment, by: StaffRef, reason: Option<&str>, stamp: Hlc) -> Self {
        Self { status, at, by, reason: reason.map(str::to_string), arrival: None, moved_to: None, stamp }
    }
}

/// A booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    /// UUIDv7 id.
    pub id: RecordId,
    /// When the booking was taken.
    pub booked_at: Moment,
    /// Who took it.
    pub booked_by: StaffRef,
    /// What is booked.
    pub kind: AppointmentType,
    /// How it was booked.
    pub channel: BookingChannel,
    /// Patient name.
    pub patient_name: String,
    /// Phone digits (normalised): the no-show call and the walk-in match need it.
    pub phone: String,
    /// Department code.
    pub department: String,
    /// Doctor code, if a doctor was booked (always for an expert clinic).
    pub doctor: Option<String>,
    /// The day booked.
    pub day: NaiveDate,
    /// The clinic session booked.
    pub session: Session,
    /// A time within the session (`HH:MM`), if one was given.
    pub slot: Option<String>,
    /// What the patient comes for (becomes the arrival's chief complaint).
    pub reason: Option<String>,
    /// The enquiry the booking came from (咨询登记), for the enquiry's conversion.
    pub enquiry: Option<RecordId>,
    /// The booking this one replaces (改约).
    pub rescheduled_from: Option<RecordId>,
    /// Why the doctor's session was overbooked, if it was full when booked.
    pub overbooked: Option<String>,
    /// Status changes, ordered by stamp.
    pub events: Vec<AppointmentEvent>,
}

impl Appointment {
    /// The current status (see the module documentation for how concurrent changes resolve).
    pub fn status(&self) -> AppointmentStatus {
        let has = |s: AppointmentStatus| self.events.iter().any(|e| e.status == s);
        if has(AppointmentStatus::CheckedIn) {
            AppointmentStatus::CheckedIn
        } else if has(AppointmentStatus::Rescheduled) {
            AppointmentStatus::Rescheduled
        } else {
            self.events.last().map_or(AppointmentStatus::Booked, |e| e.status)
        }
    }

    /// The arrival the booking was checked in as.
    pub fn arrival(&self) -> Option<RecordId> {
        self.events.iter().find_map(|e| e.arrival)
    }

    /// The booking that replaced this one.
    pub fn moved_to(&self) -> Option<RecordId> {
        self.events.iter().find_map(|e| e.moved_to)
    }

    /// Whether the booking holds a place in its session (booked, or already checked in).
    pub fn holds_place(&self) -> bool {
        matches!(self.status(), AppointmentStatus::Booked | AppointmentStatus::CheckedIn)
    }

    /// Records a status change. Allowed: from booked to anything; a no-show may still be checked in (a patient who
    /// came late). Cancelling and rescheduling need a reason.
    pub fn record(&mut self, event: AppointmentEvent) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let now = self.status();
        let allowed = match event.status {
            AppointmentStatus::Booked => false,
            AppointmentStatus::CheckedIn => {
                self.kind.comes_in() && matches!(now, AppointmentStatus::Booked | AppointmentStatus::NoShow)
            }
            AppointmentStatus::NoShow => self.kind.comes_in() && now == AppointmentStatus::Booked,
            AppointmentStatus::Cancelled | AppointmentStatus::Rescheduled => now == AppointmentStatus::Booked,
        };
        if !allowed {
            errs.push("status", Problem::Conflict("the booking cannot change to that status now"));
        }
        let needs_reason = matches!(event.status, AppointmentStatus::Cancelled | AppointmentStatus::Rescheduled);
        let reason = event.reason.as_deref().and_then(|r| validate::opt_text(&mut errs, "reason", r, limits::SHORT));
        if needs_reason && reason.is_none() && errs.get("reason").is_none() {
            errs.push("reason", Problem::Required);
        }
        errs.into_result(|| ())?;
        self.events.push(AppointmentEvent { reason, ..event });
        Ok(())
    }
}

impl Merge for Appointment {
    fn merge(&mut self, other: &Self) {
        merge_events(&mut self.events, &other.events, |e| e.stamp);
    }
}

/// The booking form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppointmentForm {
    /// What is booked (chosen).
    pub kind: Option<AppointmentType>,
    /// How (chosen).
    pub channel: Option<BookingChannel>,
    /// Patient name.
    pub name: String,
    /// Phone as typed.
    pub phone: String,
    /// Department code (chosen).
    pub department: String,
    /// Doctor code (chosen; empty for none).
    pub doctor: String,
    /// Day as typed, `YYYY-MM-DD`.
    pub day: String,
    /// Session (chosen).
    pub session: Option<Session>,
    /// Time within the session as typed, `HH:MM` (optional).
    pub slot: String,
    /// What the patient comes for.
    pub reason: String,
    /// The enquiry the booking comes from.
    pub enquiry: Option<RecordId>,
    /// Why a full session is overbooked (only needed then).
    pub overbook_reason: String,
}

/// What validation needs to know about the bookings already held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Places the doctor's session already holds (booked or checked in).
    pub doctor_booked: u32,
    /// Whether the same phone already holds a place in the same department and session.
    pub same_patient: bool,
}

impl AppointmentForm {
    /// The form for a day and session, kind and channel preset (the form's starting point).
    pub fn for_day(day: NaiveDate, session: Session) -> Self {
        Self { day: day.to_string(), session: Some(session), ..Self::default() }
    }

    /// The booked day, if the typed text is a date (for the occupancy lookup before validation).
    pub fn parsed_day(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(self.day.trim(), "%Y-%m-%d").ok()
    }

    /// Validates the form against reference data on `today` and the session's `occupancy`, and makes the record.
    /// A full session needs an overbooking reason; a doctor must be in the department and on duty in that session
    /// (holidays close the clinics); an expert clinic needs a doctor; the day may not be past, nor a session that
    /// has ended today (`now_time`), nor beyond the policy's horizon.
    #[allow(clippy::too_many_arguments)]
    pub fn into_record(
        &self,
        refs: &ReferenceData,
        today: NaiveDate,
        now_time: chrono::NaiveTime,
        occupancy: Occupancy,
        id: RecordId,
        at: Moment,
        by: StaffRef,
    ) -> Result<Appointment, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if self.kind.is_none() {
            errs.push("kind", Problem::Required);
        }
        if self.channel.is_none() {
            errs.push("channel", Problem::Required);
        }
        let name = validate::text(&mut errs, "name", &self.name, limits::NAME, true);
        let phone = validate::phone(&mut errs, "phone", &self.phone);
        let reason = validate::opt_text(&mut errs, "reason", &self.reason, limits::SHORT);
        let department = self.department.trim().to_string();
        if department.is_empty() {
            errs.push("department", Problem::Required);
        } else if refs.department(&department).is_none() {
            errs.push("department", Problem::Unknown(department.clone()));
        }
        let policy = &refs.appointment_policy;
        let day = match self.day.trim() {
            "" => {
                errs.push("day", Problem::Required);
                None
            }
            t => match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
                Err(_) => {
                    errs.push("day", Problem::InvalidDate);
                    None
                }
                Ok(d) if d < today => {
                    errs.push("day", Problem::Conflict("the day has passed"));
                    None
                }
                Ok(d) if d > today + chrono::Days::new(u64::from(policy.horizon_days)) => {
                    errs.push("day", Problem::OutOfRange { min: 0, max: i64::from(policy.horizon_days) });
                    None
                }
                Ok(d) => Some(d),
            },
        };
        match self.session {
            None => errs.push("session", Problem::Required),
            Some(s) => match policy.hours(s) {
                None => errs.push("session", Problem::Conflict("the hospital holds no clinic in that session")),
                Some((_, end)) if day == Some(today) && now_time >= end => {
                    errs.push("session", Problem::Conflict("that session has already ended today"));
                }
                Some(_) => {}
            },
        }
        let slot = match self.slot.trim() {
            "" => None,
            t => match (chrono::NaiveTime::parse_from_str(t, "%H:%M"), self.session.and_then(|s| policy.hours(s))) {
                (Ok(time), Some((start, end))) if time >= start && time < end => Some(time.format("%H:%M").to_string()),
                (Ok(_), _) => {
                    errs.push("slot", Problem::Conflict("the time is outside the session's hours"));
                    None
                }
                (Err(_), _) => {
                    errs.push("slot", Problem::Conflict("the time must be HH:MM"));
                    None
                }
            },
        };
        let doctor = Some(self.doctor.trim().to_string()).filter(|d| !d.is_empty());
        let overbooked = validate::opt_text(&mut errs, "overbook_reason", &self.overbook_reason, limits::SHORT);
        match &doctor {
            None if self.kind == Some(AppointmentType::Expert) => {
                errs.push("doctor", Problem::Conflict("an expert clinic booking needs a doctor"));
            }
            None => {}
            Some(code) => match refs.doctor(code) {
                None => errs.push("doctor", Problem::Unknown(code.clone())),
                Some(d) if d.department != department => {
                    errs.push("doctor", Problem::Conflict("the doctor is not in that department"));
                }
                Some(_) => {
                    if let (Some(day), Some(session)) = (day, self.session) {
                        let cap = refs.capacity(code, day, session);
                        if !refs.on_duty_in(code, day, session) {
                            errs.push("doctor", Problem::NotOnDuty);
                        } else if occupancy.doctor_booked >= cap && overbooked.is_none() {
                            errs.push("overbook_reason", Problem::Conflict("the doctor's session is full"));
                        }
                    }
                }
            },
        }
        // On a public holiday the clinics close: a booking needs a doctor of the department on holiday duty then.
        if let (Some(day), Some(session)) = (day, self.session)
            && matches!(refs.calendar.day_kind(day).kind, crate::policy::calendar::DayKind::Holiday { .. })
            && self.kind.is_none_or(AppointmentType::comes_in)
            && refs.doctors_on_duty_in(day, Some(session), Some(department.as_str())).is_empty()
        {
            errs.push("day", Problem::Conflict("the clinics are closed on that public holiday"));
        }
        if occupancy.same_patient {
            errs.push("phone", Problem::Conflict("this patient is already booked in that department and session"));
        }
        let full = match (&doctor, day, self.session) {
            (Some(code), Some(day), Some(session)) => occupancy.doctor_booked >= refs.capacity(code, day, session),
            _ => false,
        };
        errs.into_result(|| Appointment {
            id,
            booked_at: at,
            booked_by: by,
            kind: self.kind.unwrap_or(AppointmentType::Specialist),
            channel: self.channel.unwrap_or(BookingChannel::Phone),
            patient_name: name,
            phone,
            department,
            doctor,
            day: day.unwrap_or(today),
            session: self.session.unwrap_or(Session::Morning),
            slot,
            reason,
            enquiry: self.enquiry,
            rescheduled_from: None,
            overbooked: if full { overbooked } else { None },
            events: Vec::new(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::many_single_char_names)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveTime};

    fn refs() -> ReferenceData {
        ReferenceData::bundled().unwrap()
    }

    /// A weekday in 2026 when `doctor` holds `session`, not a holiday.
    fn duty_day(r: &ReferenceData, doctor: &str, session: Session) -> NaiveDate {
        let start = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        (0..28).map(|i| start + chrono::Days::new(i)).find(|d| r.on_duty_in(doctor, *d, session)).unwrap()
    }

    fn stamp(n: u64) -> Hlc {
        Hlc { wall_ms: n, logical: 0, node: 1 }
    }

    fn event(status: AppointmentStatus, n: u64, reason: Option<&str>) -> AppointmentEvent {
        AppointmentEvent::new(status, Moment(i64::try_from(n).unwrap()), StaffRef("g1".into()), reason, stamp(n))
    }

    fn booking(r: &ReferenceData) -> (AppointmentForm, NaiveDate) {
        let doc = &r.doctors[0];
        let session = r.weekly_sessions(&doc.id).first().map(|(_, s)| *s).unwrap();
        let session = if session == Session::AllDay { Session::Morning } else { session };
        let day = duty_day(r, &doc.id, session);
        let f = AppointmentForm {
            kind: Some(AppointmentType::Expert),
            channel: Some(BookingChannel::Phone),
            name: "王芳".into(),
            phone: "13800138000".into(),
            department: doc.department.clone(),
            doctor: doc.id.clone(),
            ..AppointmentForm::for_day(day, session)
        };
        (f, day)
    }

    fn make(
        r: &ReferenceData,
        f: &AppointmentForm,
        today: NaiveDate,
        occ: Occupancy,
    ) -> Result<Appointment, ValidationErrors> {
        f.into_record(
            r,
            today,
            NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            occ,
            RecordId::new_v7(Moment(1)),
            Moment(1),
            StaffRef("g1".into()),
        )
    }

    #[test]
    fn capacity_comes_from_the_slot_then_the_roster_then_the_policy() {
        let mut r = refs();
        let doc = r.doctors[0].id.clone();
        let (f, day) = booking(&r);
        let s = f.session.unwrap();
        r.duty.iter_mut().filter(|d| d.doctor == doc).for_each(|d| d.capacity = None);
        assert_eq!(r.capacity(&doc, day, s), r.appointment_policy.default_capacity);
        let sched = r.duty.iter_mut().find(|d| d.doctor == doc).unwrap();
        sched.capacity = Some(12);
        assert_eq!(r.capacity(&doc, day, s), 12);
        let sched = r.duty.iter_mut().find(|d| d.doctor == doc).unwrap();
        for w in &mut sched.weekly {
            if w.weekday == day.weekday() {
                w.capacity = Some(5);
            }
        }
        assert_eq!(r.capacity(&doc, day, s), 5);
        let off = (1..7).map(|i| day + chrono::Days::new(i)).find(|d| !r.on_duty(&doc, *d)).unwrap();
        assert_eq!(r.capacity(&doc, off, s), 0, "no places when the doctor is not on duty");
    }

    #[test]
    fn a_full_session_needs_an_overbooking_reason() {
        let r = refs();
        let (mut f, day) = booking(&r);
        let cap = r.capacity(&f.doctor, day, f.session.unwrap());
        let today = day - chrono::Days::new(1);
        assert!(
            make(&r, &f, today, Occupancy { doctor_booked: cap - 1, same_patient: false })
                .unwrap()
                .overbooked
                .is_none()
        );
        let e = make(&r, &f, today, Occupancy { doctor_booked: cap, same_patient: false }).unwrap_err();
        assert!(matches!(e.get("overbook_reason"), Some(Problem::Conflict(_))), "{e:?}");
        f.overbook_reason = "主任同意加号".into();
        let a = make(&r, &f, today, Occupancy { doctor_booked: cap, same_patient: false }).unwrap();
        assert_eq!(a.overbooked.as_deref(), Some("主任同意加号"));
        let e = make(&r, &f, today, Occupancy { doctor_booked: 0, same_patient: true }).unwrap_err();
        assert!(e.get("phone").is_some(), "a second booking of the same patient in the same session is refused");
    }

    #[test]
    fn session_rules_duty_holidays_and_days() {
        let r = refs();
        let (f, day) = booking(&r);
        let today = day - chrono::Days::new(1);
        // A session the doctor does not hold that day.
        let other = Session::CLINIC.into_iter().find(|s| !r.on_duty_in(&f.doctor, day, *s)).unwrap();
        let g = AppointmentForm { session: Some(other), ..f.clone() };
        assert_eq!(make(&r, &g, today, Occupancy::default()).unwrap_err().get("doctor"), Some(&Problem::NotOnDuty));
        // 2026-10-01 (National Day) is a public holiday: no weekly slot holds.
        let holiday = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert!(r.doctors.iter().all(|d| Session::CLINIC.iter().all(|s| !r.on_duty_in(&d.id, holiday, *s))));
        let g = AppointmentForm { day: holiday.to_string(), ..f.clone() };
        let e = make(&r, &g, NaiveDate::from_ymd_opt(2026, 9, 20).unwrap(), Occupancy::default()).unwrap_err();
        assert_eq!(e.get("doctor"), Some(&Problem::NotOnDuty));
        let g = AppointmentForm { doctor: String::new(), kind: Some(AppointmentType::Examination), ..g };
        let e = make(&r, &g, NaiveDate::from_ymd_opt(2026, 9, 20).unwrap(), Occupancy::default()).unwrap_err();
        assert!(matches!(e.get("day"), Some(Problem::Conflict(_))), "no department booking on a closed holiday: {e:?}");
        // Past days, the horizon, a session that has ended today, a slot outside the session.
        assert!(make(&r, &f, day + chrono::Days::new(1), Occupancy::default()).unwrap_err().get("day").is_some());
        assert!(make(&r, &f, day - chrono::Days::new(200), Occupancy::default()).unwrap_err().get("day").is_some());
        let late = f.into_record(
            &r,
            day,
            NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            Occupancy::default(),
            RecordId::new_v7(Moment(1)),
            Moment(1),
            StaffRef("g".into()),
        );
        assert!(late.unwrap_err().get("session").is_some());
        let g = AppointmentForm { slot: "23:10".into(), ..f.clone() };
        assert!(make(&r, &g, today, Occupancy::default()).unwrap_err().get("slot").is_some());
        let (start, _) = r.appointment_policy.hours(f.session.unwrap()).unwrap();
        let g = AppointmentForm { slot: start.format("%H:%M").to_string(), ..f.clone() };
        assert!(make(&r, &g, today, Occupancy::default()).unwrap().slot.is_some());
        // An expert clinic needs a doctor; other kinds may book the department.
        let g = AppointmentForm { doctor: String::new(), ..f.clone() };
        assert!(make(&r, &g, today, Occupancy::default()).unwrap_err().get("doctor").is_some());
        let g = AppointmentForm { doctor: String::new(), kind: Some(AppointmentType::Examination), ..f };
        assert!(make(&r, &g, today, Occupancy { doctor_booked: 999, same_patient: false }).is_ok());
    }

    #[test]
    fn session_for_a_time_and_the_no_show_moment() {
        let p = refs().appointment_policy;
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(p.session_for(t(7, 10)), Some(Session::Morning));
        assert_eq!(p.session_for(t(12, 30)), Some(Session::Afternoon));
        assert_eq!(p.session_for(t(17, 45)), Some(Session::Night));
        assert_eq!(p.session_for(t(21, 30)), None);
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(p.no_show_after(day, Session::Morning), Some(day.and_time(t(12, 30))));
    }

    #[test]
    fn status_history_and_concurrent_changes_converge() {
        let r = refs();
        let (f, day) = booking(&r);
        let base = make(&r, &f, day - chrono::Days::new(1), Occupancy::default()).unwrap();
        assert_eq!(base.status(), AppointmentStatus::Booked);
        let mut a = base.clone();
        assert!(a.record(event(AppointmentStatus::Cancelled, 5, None)).unwrap_err().get("reason").is_some());
        assert!(a.record(event(AppointmentStatus::Booked, 5, None)).is_err());
        // Desk A marks the no-show at the session's end; desk B, apart, checks the late patient in.
        let mut desk_a = base.clone();
        desk_a.record(event(AppointmentStatus::NoShow, 10, None)).unwrap();
        let mut desk_b = base.clone();
        desk_b.record(event(AppointmentStatus::CheckedIn, 7, None)).unwrap();
        let (mut x, mut y) = (desk_a.clone(), desk_b.clone());
        x.merge(&desk_b);
        y.merge(&desk_a);
        assert_eq!(x, y, "merge order does not matter");
        assert_eq!(x.status(), AppointmentStatus::CheckedIn, "the patient came: the check-in wins");
        assert_eq!(x.events.len(), 2, "both changes stay in the history");
        // A no-show may still be checked in; a checked-in booking cannot be cancelled.
        desk_a.record(event(AppointmentStatus::CheckedIn, 11, None)).unwrap();
        assert!(desk_a.record(event(AppointmentStatus::Cancelled, 12, Some("x"))).is_err());
        // A reschedule beats a concurrent cancellation.
        let mut c = base.clone();
        c.record(event(AppointmentStatus::Cancelled, 20, Some("病人来电取消"))).unwrap();
        let mut d = base;
        d.record(event(AppointmentStatus::Rescheduled, 15, Some("改到下周"))).unwrap();
        c.merge(&d);
        assert_eq!(c.status(), AppointmentStatus::Rescheduled);
    }
}
