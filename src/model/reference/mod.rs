//! Reference data: owned by headquarters, read-only at the kiosk.
//!
//! Sites and desks, departments with the symptoms they take, doctors and their duty rosters, staff accounts, the
//! holiday calendar, the survey and the case/follow-up/visit/retention policies. The kiosk receives them by sync
//! pull (or, before its first sync, from the bundled default in `assets/reference/default.json`) and keeps them in
//! its store; [`ReferenceData`] is the in-memory snapshot screens and validation read.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use super::case::CaseGrade;
use crate::policy::calendar::HolidayCalendar;

/// A hospital site (院区) and its guide desks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Stable code, e.g. `main`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The guide desks (kiosks) at this site.
    #[serde(default)]
    pub desks: Vec<Desk>,
    /// The complaint line (投诉电话), printed on the complainant's acknowledgement slip.
    #[serde(default)]
    pub complaint_phone: Option<String>,
}

/// A guide desk at a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desk {
    /// Stable code, unique within the site.
    pub id: String,
    /// Display name, e.g. 门诊大厅一楼.
    pub name: String,
}

/// A clinical department and the symptoms it takes (for triage suggestions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    /// Stable code, e.g. `cardio`.
    pub id: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    #[serde(default)]
    pub name_en: String,
    /// Symptom keywords (Chinese) that suggest this department.
    #[serde(default)]
    pub symptoms: Vec<String>,
    /// Staff id of the department head, who receives worrying follow-up findings.
    #[serde(default)]
    pub head: Option<String>,
    /// Whether the department takes inpatients (for follow-up targets).
    #[serde(default)]
    pub inpatient: bool,
    /// The department's phone, for the patient (on slips).
    #[serde(default)]
    pub phone: Option<String>,
    /// Building (楼), for the directory and the patient's slip, e.g. 门诊楼.
    #[serde(default)]
    pub building: String,
    /// Floor, e.g. `3F`.
    #[serde(default)]
    pub floor: String,
    /// Room or area, e.g. `301–306`.
    #[serde(default)]
    pub room: String,
    /// Clinic hours as shown to patients, e.g. 周一至周五 08:00–12:00 13:30–17:30.
    #[serde(default)]
    pub hours: String,
    /// What the department is known for (特色专科), shown in the directory and searched.
    #[serde(default)]
    pub specialties: Vec<String>,
}

impl Department {
    /// Where the department is, as one line (building, floor, room; the parts given).
    pub fn location(&self) -> String {
        [self.building.as_str(), self.floor.as_str(), self.room.as_str()]
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A doctor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doctor {
    /// Stable code.
    pub id: String,
    /// Name.
    pub name: String,
    /// Department code.
    pub department: String,
    /// Title, e.g. 主任医师.
    #[serde(default)]
    pub title: String,
    /// Specialty, e.g. 冠心病.
    #[serde(default)]
    pub specialty: String,
}

/// A session of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Session {
    /// Morning clinic.
    Morning,
    /// Afternoon clinic.
    Afternoon,
    /// Whole day (morning and afternoon; a roster slot only, never a booking's session).
    AllDay,
    /// Evening clinic (夜诊).
    Night,
}

impl Session {
    /// The sessions a patient can be booked into or seen in, in the day's order.
    pub const CLINIC: [Session; 3] = [Session::Morning, Session::Afternoon, Session::Night];

    /// Stable key (locale key suffix, export value).
    pub fn key(self) -> &'static str {
        match self {
            Session::Morning => "morning",
            Session::Afternoon => "afternoon",
            Session::AllDay => "all_day",
            Session::Night => "night",
        }
    }

    /// The session's index-key code (stable).
    pub fn code(self) -> u8 {
        match self {
            Session::Morning => 0,
            Session::Afternoon => 1,
            Session::AllDay => 2,
            Session::Night => 3,
        }
    }

    /// Whether a roster slot of this session covers a clinic session (a whole-day slot covers morning and
    /// afternoon).
    pub fn covers(self, clinic: Session) -> bool {
        self == clinic || (self == Session::AllDay && matches!(clinic, Session::Morning | Session::Afternoon))
    }
}

/// When a doctor sees patients: weekly slots plus dated exceptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutySchedule {
    /// Doctor code.
    pub doctor: String,
    /// Regular weekly slots.
    #[serde(default)]
    pub weekly: Vec<WeeklySlot>,
    /// Extra duty days.
    #[serde(default)]
    pub extra: Vec<NaiveDate>,
    /// Days off (leave, conferences), overriding weekly slots.
    #[serde(default)]
    pub off: Vec<NaiveDate>,
    /// Patients the doctor takes per session by appointment (absent: `appointment_policy.default_capacity`).
    #[serde(default)]
    pub capacity: Option<u32>,
}

/// A weekly clinic slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklySlot {
    /// Day of the week.
    pub weekday: Weekday,
    /// Which part of the day.
    pub session: Session,
    /// Bookable places in this slot, overriding the schedule's capacity.
    #[serde(default)]
    pub capacity: Option<u32>,
}

/// The hours of one clinic session, local time `HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHours {
    /// The session (morning, afternoon or night).
    pub session: Session,
    /// Start, `HH:MM`.
    pub start: String,
    /// End, `HH:MM`.
    pub end: String,
}

/// Appointment policy (`appointment_policy` in the reference data; absent in older documents: the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentPolicy {
    /// The hours of each clinic session; a session not listed is not held.
    #[serde(default = "AppointmentPolicy::default_sessions")]
    pub sessions: Vec<SessionHours>,
    /// Places per doctor and session when the roster gives none.
    #[serde(default = "AppointmentPolicy::default_capacity")]
    pub default_capacity: u32,
    /// Minutes after its session ends before a booking nobody checked in becomes a no-show (and a call task).
    #[serde(default = "AppointmentPolicy::default_grace")]
    pub no_show_grace_minutes: u32,
    /// Days the no-show call may take (the task's window: the day after the session to this many days later).
    #[serde(default = "AppointmentPolicy::default_call_days")]
    pub no_show_call_days: u32,
    /// How far ahead a booking may be made, in days.
    #[serde(default = "AppointmentPolicy::default_horizon")]
    pub horizon_days: u32,
}

impl Default for AppointmentPolicy {
    fn default() -> Self {
        Self {
            sessions: Self::default_sessions(),
            default_capacity: Self::default_capacity(),
            no_show_grace_minutes: Self::default_grace(),
            no_show_call_days: Self::default_call_days(),
            horizon_days: Self::default_horizon(),
        }
    }
}

impl AppointmentPolicy {
    fn default_sessions() -> Vec<SessionHours> {
        [
            (Session::Morning, "08:00", "12:00"),
            (Session::Afternoon, "13:30", "17:30"),
            (Session::Night, "18:00", "21:00"),
        ]
        .into_iter()
        .map(|(session, start, end)| SessionHours { session, start: start.into(), end: end.into() })
        .collect()
    }

    fn default_capacity() -> u32 {
        30
    }

    fn default_grace() -> u32 {
        30
    }

    fn default_call_days() -> u32 {
        2
    }

    fn default_horizon() -> u32 {
        90
    }

    /// A session's (start, end), if the session is held.
    pub fn hours(&self, session: Session) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
        let h = self.sessions.iter().find(|h| h.session == session)?;
        let parse = |t: &str| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok();
        Some((parse(&h.start)?, parse(&h.end)?))
    }

    /// The session a patient arriving at `time` is seen in: the first session of the day that has not ended yet
    /// (early arrivals wait for the morning, lunch-time arrivals for the afternoon); `None` after the last one.
    pub fn session_for(&self, time: chrono::NaiveTime) -> Option<Session> {
        Session::CLINIC.into_iter().find(|s| self.hours(*s).is_some_and(|(_, end)| time < end))
    }

    /// When a session of `day` has ended for no-show purposes (its end plus the grace), as a local date-time.
    pub fn no_show_after(&self, day: NaiveDate, session: Session) -> Option<chrono::NaiveDateTime> {
        let (_, end) = self.hours(session)?;
        Some(day.and_time(end) + chrono::Duration::minutes(i64::from(self.no_show_grace_minutes)))
    }
}

/// Staff roles, in increasing privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 导医
    Guide,
    /// 导医组长
    GuideLead,
    /// 客服专员
    CustomerService,
    /// 科室负责人: sees and works the cases of the department named on the account (`Staff::department`).
    DepartmentHead,
    /// 客服主管
    Supervisor,
    /// 系统管理员
    Administrator,
}

/// A staff account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    /// Stable id (employee number).
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Department code, for staff who belong to a clinical department (accountability).
    #[serde(default)]
    pub department: Option<String>,
    /// PIN hash (never the PIN); empty until a PIN is set.
    #[serde(default)]
    pub pin_hash: String,
    /// Whether the account may sign in.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

fn three() -> u32 {
    3
}

/// One question of the patient survey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyQuestion {
    /// Dimension key (`overall`, `registration`, `guide`, …).
    pub key: String,
    /// Question text in Chinese.
    pub text_zh: String,
    /// Question text in English.
    pub text_en: String,
    /// Whether the patient may skip it.
    pub optional: bool,
}

/// The patient survey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyDefinition {
    /// Version, recorded on every answer so figures stay comparable.
    pub version: u32,
    /// Questions in order; the first is the overall question.
    pub questions: Vec<SurveyQuestion>,
    /// Preset reasons a patient can tap (Chinese, English).
    #[serde(default)]
    pub reasons: Vec<(String, String)>,
    /// Seconds of inactivity after which an unfinished survey is saved as incomplete.
    pub timeout_secs: u32,
}

/// Case handling policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasePolicy {
    /// Working days to handle a case, per grade (grades not listed are handled on the spot: 0).
    pub deadline_working_days: BTreeMap<CaseGrade, u32>,
    /// Working days for a case concerning more than one department.
    pub multi_department_working_days: u32,
    /// A department with more than this many dissatisfied-or-complaint cases in a month is flagged.
    pub dept_monthly_threshold: u32,
    /// A person with more than this many dissatisfied-or-complaint cases in a month is flagged.
    pub staff_monthly_threshold: u32,
    /// Disputes in a rolling three months that flag a department.
    pub disputes_per_quarter_threshold: u32,
    /// Disputes in a year that flag a department.
    pub disputes_per_year_threshold: u32,
    /// Incidents (事故) in a year that flag a department (seed: one incident in a year; 0 turns the rule off).
    #[serde(default = "one_incident")]
    pub incidents_per_year_threshold: u32,
    /// Grades whose transfer to the department that handles them needs a leader's approval (批转: "拟定承办科室，经分管
    /// 领导批转至相关科室", 医院投诉管理办法): the receiver proposes the department, a supervisor approves it. Empty (the
    /// default) turns the step off: the receiver assigns directly.
    #[serde(default)]
    pub approval_grades: Vec<CaseGrade>,
}

/// The default of [`CasePolicy::incidents_per_year_threshold`]: one incident in a year.
fn one_incident() -> u32 {
    1
}

/// A call script for a department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallScript {
    /// Department code, or `*` for the default script.
    pub department: String,
    /// Points to cover, in order (Chinese).
    pub points: Vec<String>,
}

/// Follow-up call policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowupPolicy {
    /// Discharge follow-up window start, days after discharge.
    pub discharge_from_days: u32,
    /// Discharge follow-up window end, days after discharge.
    pub discharge_to_days: u32,
    /// The second discharge call's window, days after discharge (出院病人电话回访制度: the first call within 3 days,
    /// the second by the customer-service centre 7–15 days after discharge). Absent in older documents: one call
    /// only; `null` turns the second call off.
    #[serde(default)]
    pub discharge_second_call_days: Option<(u32, u32)>,
    /// Departments whose discharges are called on a plan of their own, e.g. after surgery on days 5 and 10 (术后
    /// 5 天、10 天), instead of the two windows above: department code → the windows.
    #[serde(default)]
    pub department_calls: BTreeMap<String, DischargeCalls>,
    /// The plan for patients on long-term treatment or slow to recover (慢性病人或疾病恢复慢的病人): absent turns
    /// it off.
    #[serde(default)]
    pub chronic: Option<ChronicPlan>,
    /// Outpatient first visits are called this many days later.
    pub outpatient_after_days: u32,
    /// Calling hours as (start, end) local times `HH:MM`.
    pub calling_hours: Vec<(String, String)>,
    /// Unsuccessful attempts (no answer, busy) after which a task is closed as unreachable.
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Minutes a caller's claim on a task holds ("being called by X" on every desk of the site) when the caller
    /// neither records a call nor lets go of it (a desk switched off mid-call): after this the task is free again.
    #[serde(default = "twenty")]
    pub claim_minutes: u32,
    /// Share of the calls completed in a month that supervisors spot-check by calling the patient again (抽查),
    /// percent (absent in older documents: 5).
    #[serde(default = "five")]
    pub spot_check_pct: u32,
    /// Target follow-up rate for inpatients (percent).
    pub inpatient_target_pct: u32,
    /// Target follow-up rate for outpatient first visits (percent).
    pub outpatient_target_pct: u32,
    /// Call scripts per department.
    #[serde(default)]
    pub scripts: Vec<CallScript>,
}

/// A department's discharge call plan: the first call's window and the second's (none for one call), in days
/// after the discharge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeCalls {
    /// The first call's window.
    pub first: (u32, u32),
    /// The second call's window.
    #[serde(default)]
    pub second: Option<(u32, u32)>,
}

/// Follow-up rounds for chronic patients (出院病人随访制度 4: "一般需长期治疗的慢性病人或疾病恢复慢的病人出院2~4周内应
/// 随访一次，此后至少三个月随访一次"): a first round 2–4 weeks after discharge, then one every three months, each
/// planned when the one before it is finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChronicPlan {
    /// The first round's window, days after discharge (14–28).
    pub first: (u32, u32),
    /// Each later round is due at most this many days after the round before it was finished (90).
    pub every_days: u32,
    /// The later round's window opens this many days before it is due (14).
    #[serde(default = "fourteen")]
    pub window_days: u32,
    /// Rounds in all, the first included (5: 2–4 weeks, then 3, 6, 9 and 12 months).
    pub rounds: u32,
    /// Discharge diagnoses that put a patient on the plan when the list is imported (substrings, e.g. 高血压,
    /// 糖尿病); a caller can also put any discharged patient on it.
    #[serde(default)]
    pub diagnoses: Vec<String>,
}

impl ChronicPlan {
    /// Whether a discharge diagnosis puts the patient on the plan.
    pub fn matches(&self, diagnosis: &str) -> bool {
        self.diagnoses.iter().any(|d| !d.trim().is_empty() && diagnosis.contains(d.trim()))
    }
}

fn fourteen() -> u32 {
    14
}

/// Visit board policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitPolicy {
    /// Minutes a patient may stay in a step before the board raises an alert, per step key.
    pub step_limit_minutes: BTreeMap<String, u32>,
    /// More than this many people waiting at registration alerts the supervisor.
    pub registration_queue_alert: u32,
}

/// Retention per record kind, in months, after which acknowledged records are purged from the kiosk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Months per record kind name.
    pub months: BTreeMap<String, u32>,
}

/// Staff PIN policy (`pin_policy` in the reference data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinPolicy {
    /// Fewest digits a new PIN may have, 4–8. The default, 4, keeps existing PINs and older HQ documents valid;
    /// 6 makes a stolen hash a hundred times costlier to guess. Applies when a PIN is set; PINs already set keep
    /// working.
    #[serde(default = "four")]
    pub min_digits: u32,
}

impl Default for PinPolicy {
    fn default() -> Self {
        Self { min_digits: four() }
    }
}

fn five() -> u32 {
    5
}

fn twenty() -> u32 {
    20
}

fn four() -> u32 {
    4
}

/// What a desk keeps of the records the other desks and offices of its site wrote, as HQ relays them (`sharing` in
/// the reference data). Open cases and open follow-up tasks are kept whatever their age (every desk works them);
/// other records of another desk for `days[kind]` days after their business time (kind names as in exports:
/// `arrival`, `consultation`, `feedback`, `case`, `followup_task`, `call_attempt`, `call_claim`), or `default_days` for a kind not
/// named. Audit entries never leave the desk that wrote them (HQ keeps them). A desk's own records follow the
/// retention policy only. Changing the policy applies to records relayed from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingPolicy {
    /// Days per kind name.
    #[serde(default = "SharingPolicy::default_days_by_kind")]
    pub days: BTreeMap<String, u32>,
    /// Days for a kind not named in `days`.
    #[serde(default = "SharingPolicy::default_default_days")]
    pub default_days: u32,
}

impl Default for SharingPolicy {
    fn default() -> Self {
        Self { days: Self::default_days_by_kind(), default_days: Self::default_default_days() }
    }
}

impl SharingPolicy {
    /// Today's board, the earlier-visit lookup and conversion links need a month of arrivals and consultations;
    /// the site-wide dashboard's quarter needs feedback and closed cases for 93 days.
    fn default_days_by_kind() -> BTreeMap<String, u32> {
        [
            ("arrival", 31),
            ("consultation", 31),
            ("feedback", 93),
            ("case", 93),
            ("followup_task", 31),
            ("call_attempt", 31),
            ("call_claim", 2),
            ("appointment", 31),
            ("shift_log", 31),
        ]
        .into_iter()
        .map(|(k, d)| (k.to_string(), d))
        .collect()
    }

    fn default_default_days() -> u32 {
        31
    }

    /// Days a record of another desk of this kind is kept.
    pub fn days_for(&self, kind: super::RecordKind) -> u32 {
        self.days.get(kind.name()).copied().unwrap_or(self.default_days)
    }

    /// Whether a desk keeps a record of another desk at `now`.
    pub fn keeps(&self, rec: &super::AnyRecord, now: super::Moment) -> bool {
        self.keeps_facts(KeepFacts::of(rec), now)
    }

    /// [`SharingPolicy::keeps`] for a record of which only these facts are at hand.
    #[must_use]
    pub fn keeps_facts(&self, facts: KeepFacts, now: super::Moment) -> bool {
        if facts.kind == super::RecordKind::Audit {
            return false;
        }
        if facts.open {
            return true;
        }
        let days = i64::from(self.days_for(facts.kind));
        facts.occurred_at.0 >= now.0.saturating_sub(days.saturating_mul(86_400_000))
    }
}

/// What the sharing policy asks of a record ([`SharingPolicy::keeps_facts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepFacts {
    /// Its kind.
    pub kind: super::RecordKind,
    /// Still open (a case, follow-up task or appointment not closed): kept whatever its age.
    pub open: bool,
    /// When it occurred.
    pub occurred_at: super::Moment,
}

impl KeepFacts {
    /// The facts of `rec`.
    #[must_use]
    pub fn of(rec: &super::AnyRecord) -> KeepFacts {
        let open = match rec {
            super::AnyRecord::Case(c) => c.is_open(),
            super::AnyRecord::FollowupTask(t) => !t.status.value.is_final(),
            super::AnyRecord::Appointment(a) => !a.status().is_final(),
            _ => false,
        };
        KeepFacts { kind: rec.kind(), open, occurred_at: rec.occurred_at() }
    }
}

/// Hospital targets (percent), shown beside KPIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// Patient satisfaction, at least.
    pub satisfaction_min_pct: f64,
    /// Registration dissatisfaction, at most.
    pub registration_dissatisfaction_max_pct: f64,
    /// Guide dissatisfaction, at most.
    pub guide_dissatisfaction_max_pct: f64,
    /// Complaint-handling satisfaction, at least.
    pub complaint_handling_min_pct: f64,
}

/// The whole reference-data snapshot a kiosk holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceData {
    /// Sites and their desks.
    pub sites: Vec<Site>,
    /// Departments.
    pub departments: Vec<Department>,
    /// Doctors.
    pub doctors: Vec<Doctor>,
    /// Duty rosters.
    pub duty: Vec<DutySchedule>,
    /// Staff accounts.
    pub staff: Vec<Staff>,
    /// The survey.
    pub survey: SurveyDefinition,
    /// Case policy.
    pub case_policy: CasePolicy,
    /// Follow-up policy.
    pub followup_policy: FollowupPolicy,
    /// Visit board policy.
    pub visit_policy: VisitPolicy,
    /// Retention policy.
    pub retention: RetentionPolicy,
    /// Targets.
    pub targets: Targets,
    /// Staff PIN policy (absent in older documents: 4 digits).
    #[serde(default)]
    pub pin_policy: PinPolicy,
    /// The official holiday calendar (the bundled one when the document has none).
    #[serde(default = "HolidayCalendar::empty")]
    pub calendar: HolidayCalendar,
    /// What each desk keeps of the other desks' records (absent in older documents: the defaults).
    #[serde(default)]
    pub sharing: SharingPolicy,
    /// Appointment sessions, capacity and no-shows (absent in older documents: the defaults).
    #[serde(default)]
    pub appointment_policy: AppointmentPolicy,
}

/// Why a reference-data document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The JSON is malformed or a field has the wrong type.
    #[error("reference data is not valid JSON for GuideDesk: {0}")]
    Json(#[from] serde_json::Error),
    /// The document is well-formed but inconsistent.
    #[error("reference data is inconsistent: {0}")]
    Inconsistent(String),
}

/// The default reference data shipped with the application.
pub const BUNDLED_DEFAULT: &str = include_str!("../../../assets/reference/default.json");

/// Whether a phone number in reference data is printable as one: 3 to 32 characters, digits with spaces, `+`, `-`,
/// parentheses and 转 (an extension), at least three digits.
fn is_phone_text(p: &str) -> bool {
    let n = p.chars().count();
    (3..=32).contains(&n)
        && p.chars().all(|c| c.is_ascii_digit() || " +-()转".contains(c))
        && p.chars().filter(char::is_ascii_digit).count() >= 3
}

impl ReferenceData {
    /// Parses and checks a reference-data JSON document.
    pub fn from_json(json: &str) -> Result<Self, ReferenceError> {
        let mut data: ReferenceData = serde_json::from_str(json)?;
        if data.calendar.covered_years().next().is_none() {
            data.calendar = HolidayCalendar::bundled().map_err(|e| ReferenceError::Inconsistent(e.to_string()))?;
        }
        data.check()?;
        Ok(data)
    }

    /// The bundled default reference data.
    pub fn bundled() -> Result<Self, ReferenceError> {
        Self::from_json(BUNDLED_DEFAULT)
    }

    /// Checks cross-references: unique ids, doctors and schedules pointing at known departments and doctors.
    pub fn check(&self) -> Result<(), ReferenceError> {
        fn unique<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), ReferenceError> {
            let mut seen = std::collections::BTreeSet::new();
            for id in ids {
                if id.trim().is_empty() {
                    return Err(ReferenceError::Inconsistent(format!("a {what} has an empty id")));
                }
                if !seen.insert(id) {
                    return Err(ReferenceError::Inconsistent(format!("duplicate {what} id {id:?}")));
                }
            }
            Ok(())
        }
        unique("site", self.sites.iter().map(|s| s.id.as_str()))?;
        unique("department", self.departments.iter().map(|d| d.id.as_str()))?;
        unique("doctor", self.doctors.iter().map(|d| d.id.as_str()))?;
        unique("staff", self.staff.iter().map(|s| s.id.as_str()))?;
        for d in &self.doctors {
            if self.department(&d.department).is_none() {
                return Err(ReferenceError::Inconsistent(format!(
                    "doctor {:?} belongs to unknown department {:?}",
                    d.id, d.department
                )));
            }
        }
        for s in &self.duty {
            if self.doctor(&s.doctor).is_none() {
                return Err(ReferenceError::Inconsistent(format!("duty schedule for unknown doctor {:?}", s.doctor)));
            }
        }
        let phones = self
            .sites
            .iter()
            .filter_map(|s| s.complaint_phone.as_deref().map(|p| (format!("site {:?} complaint_phone", s.id), p)))
            .chain(
                self.departments
                    .iter()
                    .filter_map(|d| d.phone.as_deref().map(|p| (format!("department {:?} phone", d.id), p))),
            );
        for (what, phone) in phones {
            if !is_phone_text(phone) {
                return Err(ReferenceError::Inconsistent(format!(
                    "{what}: {phone:?} is not a phone number (digits, spaces, + - ( ) and 转 for an extension, at most 32)"
                )));
            }
        }
        if self.survey.questions.is_empty() {
            return Err(ReferenceError::Inconsistent("the survey has no questions".into()));
        }
        let p = &self.followup_policy;
        if p.discharge_from_days > p.discharge_to_days {
            return Err(ReferenceError::Inconsistent("follow-up window starts after it ends".into()));
        }
        for (dept, plan) in &p.department_calls {
            let bad_first = plan.first.0 > plan.first.1;
            let bad_second = plan.second.is_some_and(|(from, to)| from > to || from <= plan.first.1);
            if self.department(dept).is_none() || bad_first || bad_second {
                return Err(ReferenceError::Inconsistent(format!(
                    "followup_policy.department_calls[{dept:?}]: an unknown department, or windows that end before \
                     they start or overlap"
                )));
            }
        }
        if let Some((from, to)) = p.discharge_second_call_days
            && (from > to || from <= p.discharge_to_days)
        {
            return Err(ReferenceError::Inconsistent(format!(
                "followup_policy.discharge_second_call_days {from}–{to} must start after the first call's window \
                 (ends on day {}) and not end before it starts",
                p.discharge_to_days
            )));
        }
        if let Some(c) = &p.chronic
            && (c.first.0 > c.first.1 || c.every_days == 0 || c.window_days >= c.every_days || c.rounds == 0)
        {
            return Err(ReferenceError::Inconsistent(format!(
                "followup_policy.chronic: the first window {}–{} must not end before it starts, every_days ({}) must be \
                 above window_days ({}) and rounds ({}) at least 1",
                c.first.0, c.first.1, c.every_days, c.window_days, c.rounds
            )));
        }
        let ap = &self.appointment_policy;
        for h in &ap.sessions {
            match ap.hours(h.session) {
                _ if h.session == Session::AllDay => {
                    return Err(ReferenceError::Inconsistent(
                        "appointment_policy.sessions: all_day is a roster slot, not a clinic session".into(),
                    ));
                }
                Some((start, end)) if start < end => {}
                _ => {
                    return Err(ReferenceError::Inconsistent(format!(
                        "appointment_policy.sessions: {} must have start < end as HH:MM, not {:?}–{:?}",
                        h.session.key(),
                        h.start,
                        h.end
                    )));
                }
            }
        }
        if !(1..=366).contains(&ap.horizon_days) || ap.default_capacity == 0 {
            return Err(ReferenceError::Inconsistent(
                "appointment_policy: horizon_days must be 1–366 and default_capacity at least 1".into(),
            ));
        }
        let min = self.pin_policy.min_digits;
        if !(4..=8).contains(&min) {
            return Err(ReferenceError::Inconsistent(format!(
                "pin_policy.min_digits must be between 4 and 8, not {min}"
            )));
        }
        Ok(())
    }

    /// A department by code.
    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }

    /// A doctor by code.
    pub fn doctor(&self, id: &str) -> Option<&Doctor> {
        self.doctors.iter().find(|d| d.id == id)
    }

    /// A staff member by id.
    pub fn staff_member(&self, id: &str) -> Option<&Staff> {
        self.staff.iter().find(|s| s.id == id)
    }

    /// Whether a doctor is on duty on a day (any session).
    pub fn on_duty(&self, doctor: &str, day: NaiveDate) -> bool {
        Session::CLINIC.into_iter().any(|s| self.on_duty_in(doctor, day, s))
    }

    /// Whether a doctor sees patients in a clinic session of a day: not on a day off, and either an extra duty day
    /// (morning and afternoon) or a weekly slot covering the session — except on a public holiday of the calendar
    /// (the clinics close; an extra duty day still counts), or in a session the hospital does not hold.
    pub fn on_duty_in(&self, doctor: &str, day: NaiveDate, session: Session) -> bool {
        use chrono::Datelike;
        if self.appointment_policy.hours(session).is_none() {
            return false;
        }
        let holiday = matches!(self.calendar.day_kind(day).kind, crate::policy::calendar::DayKind::Holiday { .. });
        self.duty.iter().filter(|s| s.doctor == doctor).any(|s| {
            if s.off.contains(&day) {
                false
            } else if s.extra.contains(&day) && Session::AllDay.covers(session) {
                true
            } else {
                !holiday && s.weekly.iter().any(|w| w.weekday == day.weekday() && w.session.covers(session))
            }
        })
    }

    /// Doctors on duty on a day, optionally only in one department.
    pub fn doctors_on_duty(&self, day: NaiveDate, department: Option<&str>) -> Vec<&Doctor> {
        self.doctors
            .iter()
            .filter(|d| department.is_none_or(|dep| d.department == dep))
            .filter(|d| self.on_duty(&d.id, day))
            .collect()
    }

    /// Doctors on duty in one session of a day (or, with `session` `None`, in any), optionally only in one
    /// department.
    pub fn doctors_on_duty_in(
        &self,
        day: NaiveDate,
        session: Option<Session>,
        department: Option<&str>,
    ) -> Vec<&Doctor> {
        match session {
            None => self.doctors_on_duty(day, department),
            Some(s) => self
                .doctors
                .iter()
                .filter(|d| department.is_none_or(|dep| d.department == dep))
                .filter(|d| self.on_duty_in(&d.id, day, s))
                .collect(),
        }
    }

    /// Places a doctor takes by appointment in a session of a day: the weekly slot's capacity, else the roster's,
    /// else the policy default; 0 when the doctor is not on duty then.
    pub fn capacity(&self, doctor: &str, day: NaiveDate, session: Session) -> u32 {
        use chrono::Datelike;
        if !self.on_duty_in(doctor, day, session) {
            return 0;
        }
        let default = self.appointment_policy.default_capacity;
        self.duty
            .iter()
            .filter(|s| s.doctor == doctor)
            .map(|s| {
                let slot = s.weekly.iter().find(|w| w.weekday == day.weekday() && w.session.covers(session));
                slot.and_then(|w| w.capacity).or(s.capacity).unwrap_or(default)
            })
            .max()
            .unwrap_or(default)
    }

    /// A doctor's weekly sessions, in weekday order (for the directory).
    pub fn weekly_sessions(&self, doctor: &str) -> Vec<(Weekday, Session)> {
        let mut out: Vec<(Weekday, Session)> = self
            .duty
            .iter()
            .filter(|s| s.doctor == doctor)
            .flat_map(|s| s.weekly.iter().map(|w| (w.weekday, w.session)))
            .collect();
        out.sort_by_key(|(d, s)| (d.num_days_from_monday(), *s));
        out.dedup();
        out
    }

    /// Departments and doctors matching a directory search: a symptom keyword (as triage suggests), a department's
    /// name, code or specialty, or a doctor's name or specialty. Empty text matches everything.
    pub fn directory_search(&self, text: &str) -> (Vec<&Department>, Vec<&Doctor>) {
        let t = text.trim().to_lowercase();
        if t.is_empty() {
            return (self.departments.iter().collect(), self.doctors.iter().collect());
        }
        let mut depts: Vec<&Department> = self.suggest_departments(text.trim());
        for d in &self.departments {
            let hit = d.name.to_lowercase().contains(&t)
                || d.name_en.to_lowercase().contains(&t)
                || d.id.to_lowercase() == t
                || d.specialties.iter().any(|s| s.to_lowercase().contains(&t) || t.contains(&s.to_lowercase()));
            if hit && !depts.iter().any(|x| x.id == d.id) {
                depts.push(d);
            }
        }
        let doctors = self
            .doctors
            .iter()
            .filter(|d| {
                d.name.to_lowercase().contains(&t)
                    || (!d.specialty.is_empty()
                        && (d.specialty.to_lowercase().contains(&t) || t.contains(&d.specialty.to_lowercase())))
                    || depts.iter().any(|x| x.id == d.department)
            })
            .collect();
        (depts, doctors)
    }

    /// Departments whose symptom keywords occur in a chief complaint, best match first.
    pub fn suggest_departments(&self, complaint: &str) -> Vec<&Department> {
        let mut scored: Vec<(usize, &Department)> = self
            .departments
            .iter()
            .map(|d| (d.symptoms.iter().filter(|s| !s.is_empty() && complaint.contains(s.as_str())).count(), d))
            .filter(|(n, _)| *n > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        scored.into_iter().map(|(_, d)| d).collect()
    }
}

#[cfg(test)]
mod tests;
