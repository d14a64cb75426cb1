//! Consultation (咨询登记): a phone, online or in-person enquiry, and whether it became an arrival.

use chrono::NaiveDate;
use guidedesk_sync::Hlc;
use serde::{Deserialize, Serialize};

use super::arrival::Sex;
use super::common::{Lww, Merge, Moment, RecordId, StaffRef};
use super::reference::ReferenceData;
use super::validate::{self, Problem, ValidationErrors, limits};

/// How the enquiry reached the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsultationChannel {
    /// 电话
    Phone,
    /// 微信
    WeChat,
    /// QQ
    Qq,
    /// 网站/网络
    Web,
    /// 现场
    InPerson,
}

impl ConsultationChannel {
    /// Every channel, in display order.
    pub const ALL: [ConsultationChannel; 5] = [
        ConsultationChannel::Phone,
        ConsultationChannel::WeChat,
        ConsultationChannel::Qq,
        ConsultationChannel::Web,
        ConsultationChannel::InPerson,
    ];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            ConsultationChannel::Phone => "phone",
            ConsultationChannel::WeChat => "wechat",
            ConsultationChannel::Qq => "qq",
            ConsultationChannel::Web => "web",
            ConsultationChannel::InPerson => "in_person",
        }
    }
}

/// What the enquirer cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concern {
    /// 健康咨询
    HealthAdvice,
    /// 价格比较
    PriceComparison,
    /// 预约
    Appointment,
    /// 其他
    Other,
}

impl Concern {
    /// Every concern, in display order.
    pub const ALL: [Concern; 4] =
        [Concern::HealthAdvice, Concern::PriceComparison, Concern::Appointment, Concern::Other];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            Concern::HealthAdvice => "health_advice",
            Concern::PriceComparison => "price_comparison",
            Concern::Appointment => "appointment",
            Concern::Other => "other",
        }
    }
}

/// A consultation record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consultation {
    /// UUIDv7 id.
    pub id: RecordId,
    /// When the enquiry was taken.
    pub at: Moment,
    /// Who took it.
    pub by: StaffRef,
    /// Channel.
    pub channel: ConsultationChannel,
    /// Enquirer's name, if given.
    pub name: Option<String>,
    /// Sex, if given.
    pub sex: Option<Sex>,
    /// Age, if given.
    pub age: Option<u8>,
    /// Phone digits, if given.
    pub phone: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// 病程.
    pub disease_course: Option<String>,
    /// 病史.
    pub history: Option<String>,
    /// 病种.
    pub disease_type: Option<String>,
    /// 就诊意向.
    pub intention: Option<String>,
    /// What they care about.
    pub concerns: Vec<Concern>,
    /// The question.
    pub question: String,
    /// The answer given.
    pub answer: Option<String>,
    /// Department referred to.
    pub referred_department: Option<String>,
    /// Expert referred to (doctor code).
    pub referred_doctor: Option<String>,
    /// Appointment made, for this day.
    pub appointment: Lww<Option<NaiveDate>>,
    /// The arrival this enquiry became (来院).
    pub arrival: Lww<Option<RecordId>>,
}

impl Merge for Consultation {
    fn merge(&mut self, other: &Self) {
        self.appointment.merge(&other.appointment);
        self.arrival.merge(&other.arrival);
    }
}

/// The consultation form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsultationForm {
    /// Channel (chosen).
    pub channel: Option<ConsultationChannel>,
    /// Name.
    pub name: String,
    /// Sex (chosen).
    pub sex: Option<Sex>,
    /// Age as typed.
    pub age: String,
    /// Phone as typed.
    pub phone: String,
    /// Address.
    pub address: String,
    /// 病程.
    pub disease_course: String,
    /// 病史.
    pub history: String,
    /// 病种.
    pub disease_type: String,
    /// 就诊意向.
    pub intention: String,
    /// Concerns (chosen).
    pub concerns: Vec<Concern>,
    /// The question.
    pub question: String,
    /// The answer given.
    pub answer: String,
    /// Department code referred to, empty for none.
    pub referred_department: String,
    /// Doctor code referred to, empty for none.
    pub referred_doctor: String,
    /// Appointment date `YYYY-MM-DD`, empty for none.
    pub appointment: String,
}

impl ConsultationForm {
    /// Validates the form and makes the record.
    pub fn into_record(
        &self,
        refs: &ReferenceData,
        id: RecordId,
        at: Moment,
        by: StaffRef,
        stamp: Hlc,
    ) -> Result<Consultation, ValidationErrors> {
        let mut e = ValidationErrors::default();
        if self.channel.is_none() {
            e.push("channel", Problem::Required);
        }
        let name = validate::opt_text(&mut e, "name", &self.name, limits::NAME);
        let age = validate::number(&mut e, "age", &self.age, 0, 130, false).map(|a| a as u8);
        let phone = validate::opt_phone(&mut e, "phone", &self.phone);
        let address = validate::opt_text(&mut e, "address", &self.address, limits::SHORT);
        let disease_course = validate::opt_text(&mut e, "disease_course", &self.disease_course, limits::SHORT);
        let history = validate::opt_text(&mut e, "history", &self.history, limits::LONG);
        let disease_type = validate::opt_text(&mut e, "disease_type", &self.disease_type, limits::SHORT);
        let intention = validate::opt_text(&mut e, "intention", &self.intention, limits::SHORT);
        let question = validate::text(&mut e, "question", &self.question, limits::LONG, true);
        let answer = validate::opt_text(&mut e, "answer", &self.answer, limits::LONG);
        let referred_department = Some(self.referred_department.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(d) = &referred_department
            && refs.department(d).is_none()
        {
            e.push("referred_department", Problem::Unknown(d.clone()));
        }
        let referred_doctor = Some(self.referred_doctor.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(d) = &referred_doctor
            && refs.doctor(d).is_none()
        {
            e.push("referred_doctor", Problem::Unknown(d.clone()));
        }
        let appointment = validate::opt_date(&mut e, "appointment", &self.appointment);
        if appointment.is_some() && phone.is_none() && e.get("phone").is_none() {
            e.push("phone", Problem::Conflict("a phone number is needed to make an appointment"));
        }
        let mut concerns = self.concerns.clone();
        concerns.sort_unstable();
        concerns.dedup();
        e.into_result(|| Consultation {
            id,
            at,
            by,
            channel: self.channel.unwrap_or(ConsultationChannel::Phone),
            name,
            sex: self.sex,
            age,
            phone,
            address,
            disease_course,
            history,
            disease_type,
            intention,
            concerns,
            question,
            answer,
            referred_department,
            referred_doctor,
            appointment: Lww::new(appointment, stamp),
            arrival: Lww::new(None, stamp),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn form_validation() {
        let refs = ReferenceData::bundled().unwrap();
        let stamp = Hlc { wall_ms: 1, logical: 0, node: 1 };
        let f = ConsultationForm {
            channel: Some(ConsultationChannel::WeChat),
            question: "膝关节置换大概多少钱".into(),
            concerns: vec![Concern::PriceComparison, Concern::PriceComparison],
            appointment: "2026-12-01".into(),
            phone: "13912345678".into(),
            referred_department: "ortho".into(),
            ..ConsultationForm::default()
        };
        let c = f.into_record(&refs, RecordId::new_v7(Moment(1)), Moment(1), StaffRef("g".into()), stamp).unwrap();
        assert_eq!(c.concerns, vec![Concern::PriceComparison]);
        assert!(c.appointment.value.is_some());
        let bad = ConsultationForm { appointment: "2026-13-01".into(), referred_department: "zz".into(), ..f };
        let e = bad.into_record(&refs, c.id, Moment(1), StaffRef("g".into()), stamp).unwrap_err();
        assert_eq!(e.get("appointment"), Some(&Problem::InvalidDate));
        assert!(matches!(e.get("referred_department"), Some(Problem::Unknown(_))));
    }
}
