//! Arrival (来院登记 / 导医登记): a patient registered at the guide desk and followed through the visit.

use chrono::NaiveDate;
use guidedesk_sync::Hlc;
use serde::{Deserialize, Serialize};

use super::common::{Lww, Merge, Moment, RecordId, StaffRef, merge_events};
use super::reference::ReferenceData;
use super::validate::{self, Problem, ValidationErrors, limits};

/// Sex as recorded at the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// 男
    Male,
    /// 女
    Female,
    /// Not stated.
    Unknown,
}

/// First or return visit (初诊/复诊).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitType {
    /// 初诊
    First,
    /// 复诊
    Return,
}

/// How the patient came (来院渠道).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalChannel {
    /// 自行来院
    WalkIn,
    /// 电话预约
    PhoneBooking,
    /// 网上预约
    OnlineBooking,
    /// 转诊
    Referral,
    /// 社区/市场活动
    CommunityEvent,
    /// 急诊
    Emergency,
    /// 其他
    Other,
}

impl ArrivalChannel {
    /// Every channel, in display order.
    pub const ALL: [ArrivalChannel; 7] = [
        ArrivalChannel::WalkIn,
        ArrivalChannel::PhoneBooking,
        ArrivalChannel::OnlineBooking,
        ArrivalChannel::Referral,
        ArrivalChannel::CommunityEvent,
        ArrivalChannel::Emergency,
        ArrivalChannel::Other,
    ];

    /// Stable key (locale key suffix, export value).
    pub fn key(self) -> &'static str {
        match self {
            ArrivalChannel::WalkIn => "walk_in",
            ArrivalChannel::PhoneBooking => "phone_booking",
            ArrivalChannel::OnlineBooking => "online_booking",
            ArrivalChannel::Referral => "referral",
            ArrivalChannel::CommunityEvent => "community_event",
            ArrivalChannel::Emergency => "emergency",
            ArrivalChannel::Other => "other",
        }
    }
}

/// Triage priority. Service follows registration order unless priority says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// 普通
    #[default]
    Normal,
    /// 加急
    Urgent,
    /// 急危重
    Emergency,
}

/// Assistance a patient needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// 轮椅
    Wheelchair,
    /// 平车
    Stretcher,
    /// 陪同
    Escort,
    /// 老年人
    Elderly,
    /// 残障
    Disabled,
    /// 翻译
    Interpreter,
}

impl Need {
    /// Every need, in display order.
    pub const ALL: [Need; 6] =
        [Need::Wheelchair, Need::Stretcher, Need::Escort, Need::Elderly, Need::Disabled, Need::Interpreter];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            Need::Wheelchair => "wheelchair",
            Need::Stretcher => "stretcher",
            Need::Escort => "escort",
            Need::Elderly => "elderly",
            Need::Disabled => "disabled",
            Need::Interpreter => "interpreter",
        }
    }
}

/// Where the patient is in the visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitStep {
    /// 已分诊，待挂号 — triaged at the desk, waiting to register.
    Triaged,
    /// 已挂号，候诊 — registered, waiting for the doctor.
    Registered,
    /// 就诊中
    WithDoctor,
    /// 缴费/取药
    Paying,
    /// 检查
    Exams,
    /// 治疗
    Treatment,
    /// 完成
    Done,
    /// 住院（送至病区并交接）
    Admitted,
    /// 离院
    Left,
    /// 退号
    Cancelled,
}

impl VisitStep {
    /// Every step, in visit order.
    pub const ALL: [VisitStep; 10] = [
        VisitStep::Triaged,
        VisitStep::Registered,
        VisitStep::WithDoctor,
        VisitStep::Paying,
        VisitStep::Exams,
        VisitStep::Treatment,
        VisitStep::Done,
        VisitStep::Admitted,
        VisitStep::Left,
        VisitStep::Cancelled,
    ];

    /// Stable key (locale key suffix, policy key, export value).
    pub fn key(self) -> &'static str {
        match self {
            VisitStep::Triaged => "triaged",
            VisitStep::Registered => "registered",
            VisitStep::WithDoctor => "with_doctor",
            VisitStep::Paying => "paying",
            VisitStep::Exams => "exams",
            VisitStep::Treatment => "treatment",
            VisitStep::Done => "done",
            VisitStep::Admitted => "admitted",
            VisitStep::Left => "left",
            VisitStep::Cancelled => "cancelled",
        }
    }

    /// The step's index-key code (stable).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Whether the visit has ended at this step.
    pub fn is_final(self) -> bool {
        matches!(self, VisitStep::Done | VisitStep::Admitted | VisitStep::Left | VisitStep::Cancelled)
    }

    /// Whether moving to this step needs a reason (退号 does).
    pub fn needs_reason(self) -> bool {
        matches!(self, VisitStep::Cancelled)
    }
}

/// A step change: when, by whom, and why (for cancellations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepEvent {
    /// The step entered.
    pub step: VisitStep,
    /// When it was entered.
    pub at: Moment,
    /// Who recorded it.
    pub by: StaffRef,
    /// Why (required for 退号).
    pub reason: Option<String>,
    /// HLC stamp of the write.
    pub stamp: Hlc,
}

/// A change of department or doctor (换号), with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// Previous department code.
    pub from_department: String,
    /// New department code.
    pub to_department: String,
    /// Previous doctor code.
    pub from_doctor: Option<String>,
    /// New doctor code.
    pub to_doctor: Option<String>,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Moment,
    /// Who recorded it.
    pub by: StaffRef,
    /// HLC stamp of the write.
    pub stamp: Hlc,
}

/// The doctor the patient was sent to, and whether the patient asked for that doctor (指定).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorChoice {
    /// Doctor code.
    pub doctor: String,
    /// The patient asked for this doctor.
    pub designated: bool,
}

/// An arrival record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arrival {
    /// UUIDv7 id.
    pub id: RecordId,
    /// When the patient arrived at the desk.
    pub arrived_at: Moment,
    /// Patient name.
    pub name: String,
    /// Sex.
    pub sex: Sex,
    /// Age in years.
    pub age: Option<u8>,
    /// Phone digits (normalised), if given.
    pub phone: Option<String>,
    /// 初诊/复诊.
    pub visit_type: VisitType,
    /// 来院渠道.
    pub channel: ArrivalChannel,
    /// 来源地.
    pub origin: Option<String>,
    /// 获知途径.
    pub heard_via: Option<String>,
    /// 主诉.
    pub complaint: String,
    /// Priority.
    pub priority: Priority,
    /// Assistance needs (sorted, unique).
    pub needs: Vec<Need>,
    /// Triaged department code (changes with 换号).
    pub department: Lww<String>,
    /// Doctor, if one was chosen.
    pub doctor: Lww<Option<DoctorChoice>>,
    /// The guide who registered the arrival.
    pub handled_by: StaffRef,
    /// An earlier arrival of the same person (a linked return visit).
    pub previous_visit: Option<RecordId>,
    /// Step changes, ordered by stamp; the last is the current step.
    pub steps: Vec<StepEvent>,
    /// Department/doctor changes (换号), ordered by stamp.
    pub changes: Vec<ChangeEvent>,
}

impl Arrival {
    /// The current step.
    pub fn step(&self) -> VisitStep {
        self.steps.last().map_or(VisitStep::Triaged, |e| e.step)
    }

    /// When the current step was entered.
    pub fn step_since(&self) -> Moment {
        self.steps.last().map_or(self.arrived_at, |e| e.at)
    }

    /// When the visit ended, if it has.
    pub fn ended_at(&self) -> Option<Moment> {
        self.steps.last().filter(|e| e.step.is_final()).map(|e| e.at)
    }

    /// When a step was first entered.
    pub fn entered(&self, step: VisitStep) -> Option<Moment> {
        self.steps.iter().find(|e| e.step == step).map(|e| e.at)
    }

    /// Whether the patient has a need.
    pub fn has_need(&self, need: Need) -> bool {
        self.needs.contains(&need)
    }

    /// Records a step change. Refuses to move a finished visit, to re-enter the current step, and a 退号 without a
    /// reason.
    pub fn move_to(
        &mut self,
        step: VisitStep,
        at: Moment,
        by: StaffRef,
        reason: Option<&str>,
        stamp: Hlc,
    ) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let reason = reason.and_then(|r| validate::opt_text(&mut errs, "reason", r, limits::SHORT));
        if self.step().is_final() {
            errs.push("step", Problem::Conflict("the visit has already ended"));
        } else if self.step() == step {
            errs.push("step", Problem::Conflict("the visit is already at that step"));
        }
        if step.needs_reason() && reason.is_none() && errs.get("reason").is_none() {
            errs.push("reason", Problem::Required);
        }
        errs.into_result(|| ())?;
        self.steps.push(StepEvent { step, at, by, reason, stamp });
        Ok(())
    }

    /// Records a change of department/doctor (换号) with its reason.
    #[allow(clippy::too_many_arguments)]
    pub fn change_department(
        &mut self,
        refs: &ReferenceData,
        department: &str,
        doctor: Option<DoctorChoice>,
        reason: &str,
        at: Moment,
        by: StaffRef,
        stamp: Hlc,
    ) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let reason = validate::text(&mut errs, "reason", reason, limits::SHORT, true);
        if refs.department(department).is_none() {
            errs.push("department", Problem::Unknown(department.to_string()));
        }
        if let Some(d) = &doctor {
            match refs.doctor(&d.doctor) {
                None => errs.push("doctor", Problem::Unknown(d.doctor.clone())),
                Some(doc) if doc.department != department => {
                    errs.push("doctor", Problem::Conflict("the doctor is not in that department"));
                }
                Some(_) => {}
            }
        }
        if self.step().is_final() {
            errs.push("step", Problem::Conflict("the visit has already ended"));
        }
        errs.into_result(|| ())?;
        self.changes.push(ChangeEvent {
            from_department: self.department.value.clone(),
            to_department: department.to_string(),
            from_doctor: self.doctor.value.as_ref().map(|d| d.doctor.clone()),
            to_doctor: doctor.as_ref().map(|d| d.doctor.clone()),
            reason,
            at,
            by,
            stamp,
        });
        self.department.set(department.to_string(), stamp);
        self.doctor.set(doctor, stamp);
        Ok(())
    }
}

impl Merge for Arrival {
    fn merge(&mut self, other: &Self) {
        self.department.merge(&other.department);
        self.doctor.merge(&other.doctor);
        merge_events(&mut self.steps, &other.steps, |e| e.stamp);
        merge_events(&mut self.changes, &other.changes, |e| e.stamp);
    }
}

/// The registration form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArrivalForm {
    /// Name.
    pub name: String,
    /// Sex (chosen).
    pub sex: Option<Sex>,
    /// Age as typed.
    pub age: String,
    /// Phone as typed.
    pub phone: String,
    /// First/return (chosen).
    pub visit_type: Option<VisitType>,
    /// Channel (chosen).
    pub channel: Option<ArrivalChannel>,
    /// Where from.
    pub origin: String,
    /// How heard.
    pub heard_via: String,
    /// Chief complaint.
    pub complaint: String,
    /// Priority.
    pub priority: Priority,
    /// Needs.
    pub needs: Vec<Need>,
    /// Department code (chosen).
    pub department: String,
    /// Doctor code (chosen), empty for none.
    pub doctor: String,
    /// The patient asked for that doctor.
    pub designated: bool,
    /// A linked earlier visit.
    pub previous_visit: Option<RecordId>,
}

/// A validated arrival, ready to become a record.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalDraft(ArrivalForm, Option<u8>, Option<String>);

impl ArrivalForm {
    /// Validates the form against reference data; `day` is the day of arrival (for the duty roster: the doctor must
    /// be on duty in some session of the day).
    pub fn validate(&self, refs: &ReferenceData, day: NaiveDate) -> Result<ArrivalDraft, ValidationErrors> {
        self.validate_in(refs, day, None)
    }

    /// [`ArrivalForm::validate`] for a patient seen in `session` of the day (the session the registration time
    /// falls in): the doctor must be on duty in that session. `None` checks the whole day.
    pub fn validate_in(
        &self,
        refs: &ReferenceData,
        day: NaiveDate,
        session: Option<super::reference::Session>,
    ) -> Result<ArrivalDraft, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let mut clean = self.clone();
        clean.name = validate::text(&mut errs, "name", &self.name, limits::NAME, true);
        if self.sex.is_none() {
            errs.push("sex", Problem::Required);
        }
        let age = validate::number(&mut errs, "age", &self.age, 0, 130, false).map(|a| a as u8);
        let phone = validate::opt_phone(&mut errs, "phone", &self.phone);
        if self.visit_type.is_none() {
            errs.push("visit_type", Problem::Required);
        }
        if self.channel.is_none() {
            errs.push("channel", Problem::Required);
        }
        clean.origin = validate::text(&mut errs, "origin", &self.origin, limits::SHORT, false);
        clean.heard_via = validate::text(&mut errs, "heard_via", &self.heard_via, limits::SHORT, false);
        clean.complaint = validate::text(&mut errs, "complaint", &self.complaint, limits::LONG, true);
        clean.department = self.department.trim().to_string();
        if clean.department.is_empty() {
            errs.push("department", Problem::Required);
        } else if refs.department(&clean.department).is_none() {
            errs.push("department", Problem::Unknown(clean.department.clone()));
        }
        clean.doctor = self.doctor.trim().to_string();
        if clean.doctor.is_empty() {
            if self.designated {
                errs.push("doctor", Problem::Conflict("a designated doctor must be chosen"));
            }
        } else {
            match refs.doctor(&clean.doctor) {
                None => errs.push("doctor", Problem::Unknown(clean.doctor.clone())),
                Some(d) if d.department != clean.department => {
                    errs.push("doctor", Problem::Conflict("the doctor is not in that department"));
                }
                Some(_) if !refs.on_duty(&clean.doctor, day) => errs.push("doctor", Problem::NotOnDuty),
                Some(_) if session.is_some_and(|s| !refs.on_duty_in(&clean.doctor, day, s)) => {
                    errs.push("doctor", Problem::NotOnDuty);
                }
                Some(_) => {}
            }
        }
        clean.needs.sort_unstable();
        clean.needs.dedup();
        errs.into_result(|| ArrivalDraft(clean, age, phone))
    }
}

impl ArrivalDraft {
    /// Makes the record: first step 已分诊 at `at`.
    pub fn into_record(self, id: RecordId, at: Moment, by: StaffRef, stamp: Hlc) -> Arrival {
        let ArrivalDraft(f, age, phone) = self;
        let doctor =
            if f.doctor.is_empty() { None } else { Some(DoctorChoice { doctor: f.doctor, designated: f.designated }) };
        Arrival {
            id,
            arrived_at: at,
            name: f.name,
            sex: f.sex.unwrap_or(Sex::Unknown),
            age,
            phone,
            visit_type: f.visit_type.unwrap_or(VisitType::First),
            channel: f.channel.unwrap_or(ArrivalChannel::Other),
            origin: Some(f.origin).filter(|s| !s.is_empty()),
            heard_via: Some(f.heard_via).filter(|s| !s.is_empty()),
            complaint: f.complaint,
            priority: f.priority,
            needs: f.needs,
            department: Lww::new(f.department, stamp),
            doctor: Lww::new(doctor, stamp),
            handled_by: by.clone(),
            previous_visit: f.previous_visit,
            steps: vec![StepEvent { step: VisitStep::Triaged, at, by, reason: None, stamp }],
            changes: Vec::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn form() -> ArrivalForm {
        ArrivalForm {
            name: "王秀英".into(),
            sex: Some(Sex::Female),
            age: "67".into(),
            phone: "138 0013 8000".into(),
            visit_type: Some(VisitType::First),
            channel: Some(ArrivalChannel::WalkIn),
            complaint: "胸闷两天".into(),
            department: "cardio".into(),
            needs: vec![Need::Wheelchair, Need::Elderly, Need::Wheelchair],
            ..ArrivalForm::default()
        }
    }

    fn stamp(n: u64) -> Hlc {
        Hlc { wall_ms: n, logical: 0, node: 1 }
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn valid_form_becomes_record() {
        let refs = ReferenceData::bundled().unwrap();
        let a = form().validate(&refs, day()).unwrap().into_record(
            RecordId::new_v7(Moment(1)),
            Moment(1),
            StaffRef("g1".into()),
            stamp(1),
        );
        assert_eq!(a.phone.as_deref(), Some("13800138000"));
        assert_eq!(a.age, Some(67));
        assert_eq!(a.needs, vec![Need::Wheelchair, Need::Elderly]);
        assert_eq!(a.step(), VisitStep::Triaged);
    }

    #[test]
    fn every_bad_field_is_named() {
        let refs = ReferenceData::bundled().unwrap();
        let f = ArrivalForm {
            name: " ".into(),
            age: "two".into(),
            phone: "123".into(),
            department: "nope".into(),
            doctor: "x".into(),
            ..ArrivalForm::default()
        };
        let errs = f.validate(&refs, day()).unwrap_err();
        let fields: Vec<_> = errs.0.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["name", "sex", "age", "phone", "visit_type", "channel", "complaint", "department", "doctor"]
        );
    }

    #[test]
    fn doctor_must_be_on_duty_and_in_department() {
        let refs = ReferenceData::bundled().unwrap();
        let doc = refs.doctors.iter().find(|d| d.department == "cardio").unwrap().clone();
        let on_day = (0..7).map(|i| day() + chrono::Days::new(i)).find(|d| refs.on_duty(&doc.id, *d)).unwrap();
        let off_day = (0..7).map(|i| day() + chrono::Days::new(i)).find(|d| !refs.on_duty(&doc.id, *d)).unwrap();
        let f = ArrivalForm { doctor: doc.id.clone(), designated: true, ..form() };
        assert!(f.validate(&refs, on_day).is_ok());
        assert_eq!(f.validate(&refs, off_day).unwrap_err().get("doctor"), Some(&Problem::NotOnDuty));
        let f = ArrivalForm { department: "ortho".into(), ..f };
        assert!(matches!(f.validate(&refs, on_day).unwrap_err().get("doctor"), Some(Problem::Conflict(_))));
    }

    #[test]
    fn steps_and_cancellation_rules() {
        let refs = ReferenceData::bundled().unwrap();
        let by = StaffRef("g1".into());
        let mut a = form().validate(&refs, day()).unwrap().into_record(
            RecordId::new_v7(Moment(1)),
            Moment(1),
            by.clone(),
            stamp(1),
        );
        a.move_to(VisitStep::Registered, Moment(2), by.clone(), None, stamp(2)).unwrap();
        assert!(a.move_to(VisitStep::Registered, Moment(3), by.clone(), None, stamp(3)).is_err());
        let e = a.move_to(VisitStep::Cancelled, Moment(3), by.clone(), Some("  "), stamp(3)).unwrap_err();
        assert_eq!(e.get("reason"), Some(&Problem::Required));
        a.move_to(VisitStep::Cancelled, Moment(3), by.clone(), Some("患者改日再来"), stamp(3)).unwrap();
        assert_eq!(a.ended_at(), Some(Moment(3)));
        assert!(a.move_to(VisitStep::WithDoctor, Moment(4), by, None, stamp(4)).is_err());
    }

    #[test]
    fn merge_is_order_independent() {
        let refs = ReferenceData::bundled().unwrap();
        let by = StaffRef("g1".into());
        let base = form().validate(&refs, day()).unwrap().into_record(
            RecordId::new_v7(Moment(1)),
            Moment(1),
            by.clone(),
            stamp(1),
        );
        let mut x = base.clone();
        x.move_to(VisitStep::Registered, Moment(2), by.clone(), None, stamp(2)).unwrap();
        let mut y = x.clone();
        y.move_to(VisitStep::WithDoctor, Moment(3), by.clone(), None, stamp(3)).unwrap();
        let mut z = base.clone();
        z.change_department(&refs, "neuro", None, "患者要求", Moment(4), by, stamp(4)).unwrap();
        let mut m1 = base.clone();
        for r in [&x, &y, &z] {
            m1.merge(r);
        }
        let mut m2 = z.clone();
        for r in [&y, &base, &x, &y] {
            m2.merge(r);
        }
        assert_eq!(m1, m2);
        assert_eq!(m1.step(), VisitStep::WithDoctor);
        assert_eq!(m1.department.value, "neuro");
    }
}
