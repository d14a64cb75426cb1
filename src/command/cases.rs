//! Taking and working complaint cases, each inside one store transaction: deadlines from policy and the official
//! calendar, the call-back a closed case with a phone number gets, and a feedback call-back turned into a case.

use crate::model::case::CaseOrigin;
use crate::model::{
    Case, CaseAction, CaseChannel, CaseForm, CaseGrade, CaseStatus, Feedback, FollowupSource, FollowupTask, RecordId,
    StaffRef,
};
use crate::policy;
use crate::reports::labels;
use crate::store::{StoreError, WriteCtx};

use super::calls::put_task;

/// A case action as a screen asks for it: the model's own [`CaseAction`]; the deadline an escalation or a
/// reopening sets is what policy decides, added by [`act_on_case`].
pub type CaseCommand = CaseAction;

/// Takes a new case: deadline in working days from policy for its grade (7 when several departments are
/// concerned), counted from today on the official calendar.
pub fn new_case(ctx: &mut WriteCtx<'_>, form: &CaseForm, by: StaffRef) -> Result<RecordId, StoreError> {
    let refs = ctx.reference();
    let grade = form.grade.unwrap_or(CaseGrade::Complaint);
    let departments = form.departments.iter().filter(|d| !d.trim().is_empty()).count();
    let due = policy::case_due(&refs.calendar, &refs.case_policy, grade, departments, ctx.today());
    let origin = CaseOrigin { id: ctx.new_id(), at: ctx.now(), by, due, stamp: ctx.stamp() };
    let case = form.into_record(ctx.reference(), origin)?;
    ctx.put(&case)?;
    Ok(case.id)
}

/// Takes a case for what a patient raised during a follow-up call, from any task: the patient, phone and
/// department come from the task, the channel is the phone, and the facts say it was heard on the call
/// (《客户服务中心管理方案》: a complaint heard during a call-back is received like any other).
pub fn case_from_call(
    ctx: &mut WriteCtx<'_>,
    task_id: RecordId,
    grade: CaseGrade,
    facts: &str,
    by: StaffRef,
) -> Result<RecordId, StoreError> {
    let task: FollowupTask = ctx.require(task_id)?;
    let said = facts.trim();
    let form = CaseForm {
        grade: Some(grade),
        channel: Some(CaseChannel::Phone),
        complainant: if task.patient_name.trim().is_empty() {
            "回访患者".into()
        } else {
            task.patient_name.clone()
        },
        complainant_phone: task.phone.clone(),
        relation: String::new(),
        departments: task.department.clone().into_iter().collect(),
        staff_concerned: Vec::new(),
        facts: if said.is_empty() { String::new() } else { format!("回访中反映：{said}") },
        request: String::new(),
        from_feedback: None,
    };
    new_case(ctx, &form, by)
}

/// Applies a screen's case command. Escalation recomputes the deadline from the original day of receipt; reopening
/// starts a new deadline today. A grade the policy sends through 批转 (`case_policy.approval_grades`) is never
/// assigned directly: it is proposed, then approved. An improvement measure is due today or later. Closing a case with a phone number puts a call-back on the follow-up worklist.
pub fn act_on_case(ctx: &mut WriteCtx<'_>, id: RecordId, action: CaseCommand, by: StaffRef) -> Result<(), StoreError> {
    let mut case: Case = ctx.require(id)?;
    let refs = ctx.reference();
    let received = case.received_at.local_date(ctx.offset());
    let due = match &action {
        CaseAction::Escalate { to } => {
            Some(policy::case_due(&refs.calendar, &refs.case_policy, *to, case.departments.len(), received))
        }
        CaseAction::Reopen { .. } => Some(policy::case_due(
            &refs.calendar,
            &refs.case_policy,
            case.grade.value,
            case.departments.len(),
            ctx.today(),
        )),
        _ => None,
    };
    // 医院投诉管理办法: "拟定承办科室，经分管领导批转至相关科室" — for the grades the policy lists, the receiver proposes
    // the department and a leader approves the transfer; nobody assigns such a case directly.
    if matches!(action, CaseAction::Assign { .. }) && refs.case_policy.approval_grades.contains(&case.grade.value) {
        let mut e = crate::model::ValidationErrors::default();
        e.push(
            "department",
            crate::model::validate::Problem::Conflict(
                "this grade goes to a department only with a leader's approval (批转): propose the department",
            ),
        );
        return Err(e.into());
    }
    if let CaseAction::PlanImprovement { due: Some(due), .. } = &action
        && *due < ctx.today()
    {
        let mut e = crate::model::ValidationErrors::default();
        e.push("due", crate::model::validate::Problem::Conflict("the day is in the past"));
        return Err(e.into());
    }
    // 《客户服务中心管理方案》: a case not finished by its deadline is closed only with the reason for the delay.
    if let CaseAction::Close { explanation, .. } = &action
        && ctx.today() > case.due.value.0
        && explanation.trim().is_empty()
    {
        let mut e = crate::model::ValidationErrors::default();
        e.push("explanation", crate::model::validate::Problem::Required);
        return Err(e.into());
    }
    let closing = matches!(action, CaseAction::Close { .. });
    let (at, stamp) = (ctx.now(), ctx.stamp());
    case.apply_with_due(action, due, at, by.clone(), stamp)?;
    ctx.put(&case)?;
    if closing
        && case.current() == CaseStatus::Closed
        && let Some(phone) = case.complainant_phone.clone()
    {
        let source = FollowupSource::Case { case: case.id };
        if ctx.followup_by_source(&source.dedup_key())?.is_none() {
            let window = policy::case_callback_window(ctx.today());
            let department = case.departments.first().cloned();
            put_task(ctx, source, case.complainant.clone(), phone, department, false, window, by)?;
        }
    }
    Ok(())
}

/// Turns a dissatisfied-feedback call-back into a case (grade 不满意, or 非常不满意 for the lowest answer), once.
pub fn promote_feedback(ctx: &mut WriteCtx<'_>, task_id: RecordId, by: StaffRef) -> Result<RecordId, StoreError> {
    let task: FollowupTask = ctx.require(task_id)?;
    let FollowupSource::Feedback { feedback } = task.source else {
        return Err(StoreError::Conflict("only a feedback call-back can become a case this way".into()));
    };
    if let Some(existing) = ctx.case_from_feedback(feedback)? {
        return Err(StoreError::Conflict(format!("case {} was already made from this feedback", existing.short())));
    }
    let fb: Feedback = ctx.require(feedback)?;
    let grade = if fb.overall == crate::model::Rating::VeryDissatisfied {
        CaseGrade::VeryDissatisfied
    } else {
        CaseGrade::Dissatisfied
    };
    let zh = crate::reports::Lang::Zh;
    let mut facts = vec![format!("满意度评价：总体{}", labels::rating(fb.overall, zh))];
    for (d, r) in &fb.ratings {
        if r.is_negative() {
            facts.push(format!("{}{}", labels::dimension(*d, zh), labels::rating(*r, zh)));
        }
    }
    facts.extend(fb.reasons.iter().cloned());
    if let Some(c) = &fb.comment {
        facts.push(c.clone());
    }
    let form = CaseForm {
        grade: Some(grade),
        channel: Some(CaseChannel::FeedbackScreen),
        complainant: "满意度评价患者".into(),
        complainant_phone: task.phone.clone(),
        relation: String::new(),
        departments: Vec::new(),
        staff_concerned: Vec::new(),
        facts: facts.join("；"),
        request: String::new(),
        from_feedback: Some(feedback),
    };
    new_case(ctx, &form, by)
}
