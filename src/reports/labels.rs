//! Display names of the values that appear in reports, in Chinese and English.

use super::Lang;
use super::agg::{Closure, TaskGroup};
use super::kpi::{Metric, Question};
use super::summary::Flag;
use crate::model::{
    ArrivalChannel, CallOutcome, CaseChannel, CaseGrade, CaseStatus, Concern, ConsultationChannel, Dimension, Need,
    Rating, ReferenceData, VisitStep,
};

/// A department's name by code; the code itself when unknown, "no department" for the empty code.
pub fn department(refs: &ReferenceData, code: &str, lang: Lang) -> String {
    if code.is_empty() {
        return lang.pick("未指定科室", "No department").to_string();
    }
    match refs.department(code) {
        Some(d) if lang == Lang::En && !d.name_en.is_empty() => d.name_en.clone(),
        Some(d) => d.name.clone(),
        None => code.to_string(),
    }
}

/// A staff member's name by id; what was recorded when the id is unknown.
pub fn staff(refs: &ReferenceData, who: &str) -> String {
    refs.staff_member(who).map_or_else(|| who.to_string(), |s| format!("{} ({})", s.name, s.id))
}

/// A staff member's department code, if reference data knows it.
pub fn staff_department(refs: &ReferenceData, who: &str) -> Option<String> {
    refs.staff_member(who).and_then(|s| s.department.clone())
}

/// A name shown with all but its first character masked (`李**`), for lists that leave the complaint desk.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count().max(1);
            format!("{first}{}", "*".repeat(rest))
        }
    }
}

/// 来院渠道.
pub fn channel(c: ArrivalChannel, lang: Lang) -> &'static str {
    match c {
        ArrivalChannel::WalkIn => lang.pick("自行来院", "Walk-in"),
        ArrivalChannel::PhoneBooking => lang.pick("电话预约", "Phone booking"),
        ArrivalChannel::OnlineBooking => lang.pick("网上预约", "Online booking"),
        ArrivalChannel::Referral => lang.pick("转诊", "Referral"),
        ArrivalChannel::CommunityEvent => lang.pick("社区/市场活动", "Community/marketing event"),
        ArrivalChannel::Emergency => lang.pick("急诊", "Emergency"),
        ArrivalChannel::Other => lang.pick("其他", "Other"),
    }
}

/// Assistance needs.
pub fn need(n: Need, lang: Lang) -> &'static str {
    match n {
        Need::Wheelchair => lang.pick("轮椅", "Wheelchair"),
        Need::Stretcher => lang.pick("平车", "Stretcher"),
        Need::Escort => lang.pick("陪同", "Escort"),
        Need::Elderly => lang.pick("老年人", "Elderly"),
        Need::Disabled => lang.pick("残障", "Disabled"),
        Need::Interpreter => lang.pick("翻译", "Interpreter"),
    }
}

/// Time spent in a step (what the patient was waiting for), or the step reached.
pub fn step(s: VisitStep, lang: Lang) -> &'static str {
    match s {
        VisitStep::Triaged => lang.pick("分诊后待挂号", "Triaged, waiting to register"),
        VisitStep::Registered => lang.pick("挂号后候诊", "Registered, waiting for the doctor"),
        VisitStep::WithDoctor => lang.pick("就诊", "With the doctor"),
        VisitStep::Paying => lang.pick("缴费/取药", "Paying / pharmacy"),
        VisitStep::Exams => lang.pick("检查", "Exams"),
        VisitStep::Treatment => lang.pick("治疗", "Treatment"),
        VisitStep::Done => lang.pick("完成", "Done"),
        VisitStep::Admitted => lang.pick("住院", "Admitted"),
        VisitStep::Left => lang.pick("离院", "Left"),
        VisitStep::Cancelled => lang.pick("退号", "Cancelled"),
    }
}

/// Ratings.
pub fn rating(r: Rating, lang: Lang) -> &'static str {
    match r {
        Rating::VerySatisfied => lang.pick("非常满意", "Very satisfied"),
        Rating::Satisfied => lang.pick("满意", "Satisfied"),
        Rating::Neutral => lang.pick("一般", "Neutral"),
        Rating::Dissatisfied => lang.pick("不满意", "Dissatisfied"),
        Rating::VeryDissatisfied => lang.pick("非常不满意", "Very dissatisfied"),
        Rating::DontKnow => lang.pick("不清楚", "Don't know"),
    }
}

/// Survey dimensions.
pub fn dimension(d: Dimension, lang: Lang) -> &'static str {
    match d {
        Dimension::Registration => lang.pick("挂号", "Registration"),
        Dimension::Guide => lang.pick("导医服务", "Guide service"),
        Dimension::Doctor => lang.pick("医生", "Doctor"),
        Dimension::Nurse => lang.pick("护士", "Nurse"),
        Dimension::Environment => lang.pick("环境", "Environment"),
        Dimension::Waiting => lang.pick("等候时间", "Waiting time"),
        Dimension::Pharmacy => lang.pick("药房", "Pharmacy"),
        Dimension::Billing => lang.pick("收费", "Billing"),
    }
}

/// Survey questions.
pub fn question(q: Question, lang: Lang) -> &'static str {
    match q {
        Question::Overall => lang.pick("总体满意度", "Overall"),
        Question::Dimension(d) => dimension(d, lang),
    }
}

/// Case grades, with their number in seed 003.
pub fn grade(g: CaseGrade, lang: Lang) -> &'static str {
    match g {
        CaseGrade::Feedback => lang.pick("1 情况反馈", "1 Feedback"),
        CaseGrade::Suggestion => lang.pick("2 建议", "2 Suggestion"),
        CaseGrade::Dissatisfied => lang.pick("3 不满意", "3 Dissatisfied"),
        CaseGrade::VeryDissatisfied => lang.pick("3 非常不满意", "3 Very dissatisfied"),
        CaseGrade::Complaint => lang.pick("4 投诉", "4 Complaint"),
        CaseGrade::Dispute => lang.pick("5 纠纷", "5 Dispute"),
        CaseGrade::Incident => lang.pick("6 事故", "6 Incident"),
    }
}

/// How a case reached the hospital.
pub fn case_channel(c: CaseChannel, lang: Lang) -> &'static str {
    match c {
        CaseChannel::InPerson => lang.pick("现场", "In person"),
        CaseChannel::Phone => lang.pick("电话", "Phone"),
        CaseChannel::Letter => lang.pick("来信", "Letter"),
        CaseChannel::Online => lang.pick("网络", "Online"),
        CaseChannel::FeedbackScreen => lang.pick("满意度评价", "Feedback screen"),
        CaseChannel::Other => lang.pick("其他", "Other"),
    }
}

/// Case status.
pub fn case_status(s: CaseStatus, lang: Lang) -> &'static str {
    match s {
        CaseStatus::Received => lang.pick("已受理", "Received"),
        CaseStatus::Assigned => lang.pick("已转科室", "Assigned"),
        CaseStatus::Investigating => lang.pick("调查处理中", "Investigating"),
        CaseStatus::Resolved => lang.pick("已处理", "Resolved"),
        CaseStatus::NotEstablished => lang.pick("不成立", "Not established"),
        CaseStatus::Notified => lang.pick("已反馈投诉人", "Complainant told"),
        CaseStatus::Closed => lang.pick("已结案", "Closed"),
        CaseStatus::ReferredLegal => lang.pick("转法律途径", "Referred to legal channels"),
    }
}

/// A case's standing against its deadline.
pub fn closure(c: Closure, lang: Lang) -> &'static str {
    match c {
        Closure::OnTime => lang.pick("按期办结", "Closed on time"),
        Closure::Late => lang.pick("超期办结", "Closed late"),
        Closure::OpenNotDue => lang.pick("办理中（未到期）", "Open, not yet due"),
        Closure::Overdue => lang.pick("已逾期未结", "Open, overdue"),
    }
}

/// Consultation channels.
pub fn consultation_channel(c: ConsultationChannel, lang: Lang) -> &'static str {
    match c {
        ConsultationChannel::Phone => lang.pick("电话", "Phone"),
        ConsultationChannel::WeChat => lang.pick("微信", "WeChat"),
        ConsultationChannel::Qq => "QQ",
        ConsultationChannel::Web => lang.pick("网站/网络", "Web"),
        ConsultationChannel::InPerson => lang.pick("现场", "In person"),
    }
}

/// What an enquirer cares about.
pub fn concern(c: Concern, lang: Lang) -> &'static str {
    match c {
        Concern::HealthAdvice => lang.pick("健康咨询", "Health advice"),
        Concern::PriceComparison => lang.pick("价格比较", "Price comparison"),
        Concern::Appointment => lang.pick("预约", "Appointment"),
        Concern::Other => lang.pick("其他", "Other"),
    }
}

/// Call outcomes.
pub fn call_outcome(o: CallOutcome, lang: Lang) -> &'static str {
    match o {
        CallOutcome::Reached => lang.pick("接通", "Reached"),
        CallOutcome::NoAnswer => lang.pick("无人接听", "No answer"),
        CallOutcome::Busy => lang.pick("占线", "Busy"),
        CallOutcome::WrongNumber => lang.pick("号码错误", "Wrong number"),
        CallOutcome::Refused => lang.pick("拒访", "Refused"),
        CallOutcome::Deceased => lang.pick("患者已故", "Patient deceased"),
    }
}

/// Follow-up task groups.
pub fn task_group(g: TaskGroup, lang: Lang) -> &'static str {
    match g {
        TaskGroup::Discharge => lang.pick("出院回访", "Discharge follow-up"),
        TaskGroup::Outpatient => lang.pick("门诊初诊回访", "Outpatient first-visit follow-up"),
        TaskGroup::Feedback => lang.pick("不满意评价回访", "Dissatisfied-feedback call back"),
        TaskGroup::Case => lang.pick("客诉结案回访", "Closed-case call back"),
    }
}

/// KPI names.
pub fn metric(m: Metric, lang: Lang) -> String {
    match m {
        Metric::SatisfactionPositive(Question::Overall) => lang.pick("患者满意率", "Patient satisfaction").into(),
        Metric::SatisfactionNegative(Question::Overall) => lang.pick("患者不满意率", "Patient dissatisfaction").into(),
        Metric::SatisfactionNegative(Question::Dimension(Dimension::Registration)) => {
            lang.pick("挂号不满意率", "Registration dissatisfaction").into()
        }
        Metric::SatisfactionNegative(Question::Dimension(Dimension::Guide)) => {
            lang.pick("导医不满意率", "Guide dissatisfaction").into()
        }
        Metric::SatisfactionPositive(q) => match lang {
            Lang::Zh => format!("{}满意率", question(q, lang)),
            Lang::En => format!("{} satisfaction", question(q, lang)),
        },
        Metric::SatisfactionNegative(q) => match lang {
            Lang::Zh => format!("{}不满意率", question(q, lang)),
            Lang::En => format!("{} dissatisfaction", question(q, lang)),
        },
        Metric::ComplaintHandlingSatisfaction => lang.pick("投诉处理满意率", "Complaint-handling satisfaction").into(),
        Metric::CaseOnTimeClosure => lang.pick("客诉按期办结率", "Cases closed on time").into(),
        Metric::InpatientFollowupRate => lang.pick("住院病人回访率", "Inpatient follow-up rate").into(),
        Metric::OutpatientFollowupRate => lang.pick("门诊初诊回访率", "Outpatient follow-up rate").into(),
        Metric::FollowupCallSatisfaction => lang.pick("回访满意率", "Follow-up call satisfaction").into(),
        Metric::AppointmentRate => lang.pick("咨询预约率", "Appointment rate").into(),
        Metric::AppointmentArrivalRate => lang.pick("预约来院达到率", "Appointment arrival rate").into(),
        Metric::ConsultationConversion => lang.pick("咨询来院转化率", "Consultation conversion").into(),
    }
}

/// An accountability rule that was crossed, with its figures.
pub fn flag(f: Flag, lang: Lang) -> String {
    match (f, lang) {
        (Flag::DeptMonthly { count, threshold } | Flag::StaffMonthly { count, threshold }, Lang::Zh) => {
            format!("本月不满意+投诉 {count} 件，超过 {threshold} 件")
        }
        (Flag::DeptMonthly { count, threshold } | Flag::StaffMonthly { count, threshold }, Lang::En) => {
            format!("{count} dissatisfied + complaints this month, more than {threshold}")
        }
        (Flag::DisputesQuarter { count, threshold }, Lang::Zh) => {
            format!("近3个月纠纷 {count} 件，达到 {threshold} 件")
        }
        (Flag::DisputesQuarter { count, threshold }, Lang::En) => {
            format!("{count} dispute(s) in 3 months, at least {threshold}")
        }
        (Flag::DisputesYear { count, threshold }, Lang::Zh) => {
            format!("近12个月纠纷 {count} 件，达到 {threshold} 件")
        }
        (Flag::DisputesYear { count, threshold }, Lang::En) => {
            format!("{count} dispute(s) in 12 months, at least {threshold}")
        }
    }
}
