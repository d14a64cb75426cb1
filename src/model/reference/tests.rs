#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn bundled_default_parses_and_is_consistent() {
    let r = ReferenceData::bundled().unwrap();
    assert!(r.departments.len() >= 8);
    assert!(!r.doctors.is_empty());
    assert!(r.survey.questions.len() >= 9);
}

#[test]
fn phones_in_reference_data_must_be_phone_numbers() {
    let mut r = ReferenceData::bundled().unwrap();
    assert_eq!(r.sites[0].complaint_phone.as_deref(), Some("0571-87000000"));
    r.departments[1].phone = Some("0571-8700 1002 转 12".into());
    r.check().unwrap();
    r.departments[1].phone = Some("=HYPERLINK(\"x\")".into());
    let e = r.check().unwrap_err().to_string();
    assert!(e.contains("department \"cardio\" phone"), "{e}");
    r.departments[1].phone = None;
    r.sites[0].complaint_phone = Some("12".into());
    assert!(r.check().unwrap_err().to_string().contains("site \"main\" complaint_phone"));
}

#[test]
fn triage_suggestions_match_symptoms() {
    let r = ReferenceData::bundled().unwrap();
    let s = r.suggest_departments("胸闷心悸两天");
    assert_eq!(s.first().map(|d| d.id.as_str()), Some("cardio"));
    assert!(r.suggest_departments("").is_empty());
}

#[test]
fn inconsistent_documents_are_refused_with_the_reason() {
    let mut r = ReferenceData::bundled().unwrap();
    r.doctors[0].department = "nowhere".into();
    let json = serde_json::to_string(&r).unwrap();
    let err = ReferenceData::from_json(&json).unwrap_err().to_string();
    assert!(err.contains("unknown department \"nowhere\""), "{err}");
    assert!(ReferenceData::from_json("{").unwrap_err().to_string().contains("not valid JSON"));
}

#[test]
fn pin_policy_defaults_to_four_digits_and_is_checked() {
    let r = ReferenceData::bundled().unwrap();
    assert_eq!(r.pin_policy.min_digits, 4, "documents without the field keep 4-digit PINs");
    let mut json = serde_json::to_value(&r).unwrap();
    json["pin_policy"] = serde_json::json!({ "min_digits": 6 });
    assert_eq!(ReferenceData::from_json(&json.to_string()).unwrap().pin_policy.min_digits, 6);
    json["pin_policy"] = serde_json::json!({ "min_digits": 3 });
    let e = ReferenceData::from_json(&json.to_string()).unwrap_err().to_string();
    assert!(e.contains("pin_policy.min_digits"), "{e}");
}

#[test]
fn department_call_plans_must_name_known_departments_and_ordered_windows() {
    let mut r = ReferenceData::bundled().unwrap();
    assert_eq!(r.followup_policy.department_calls["surgery"].first, (5, 6));
    let plan = DischargeCalls { first: (5, 6), second: Some((6, 8)) };
    r.followup_policy.department_calls.insert("surgery".into(), plan);
    assert!(r.check().unwrap_err().to_string().contains("department_calls[\"surgery\"]"), "overlapping windows");
    r.followup_policy.department_calls.remove("surgery");
    r.followup_policy.department_calls.insert("nowhere".into(), DischargeCalls { first: (1, 2), second: None });
    assert!(r.check().unwrap_err().to_string().contains("department_calls[\"nowhere\"]"));
}

/// 出院病人电话回访制度 四、五: the caller says who they are before anything else, and what the patient wants
/// improved is written down and answered later; every bundled script opens and closes so.
#[test]
fn bundled_call_scripts_open_with_the_callers_identity_and_close_with_improvements() {
    let r = ReferenceData::bundled().unwrap();
    assert!(!r.followup_policy.scripts.is_empty());
    for s in &r.followup_policy.scripts {
        assert!(s.points.first().is_some_and(|p| p.starts_with("自我介绍")), "{}: {:?}", s.department, s.points);
        assert!(s.points.last().is_some_and(|p| p.starts_with("需改进的问题")), "{}: {:?}", s.department, s.points);
    }
}

#[test]
fn duty_roster() {
    let r = ReferenceData::bundled().unwrap();
    let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let on = r.doctors_on_duty(monday, None);
    assert!(!on.is_empty());
    assert!(on.len() < r.doctors.len());
}

/// 出院病人随访制度 4: the bundled chronic plan is 2–4 weeks, then every three months; a plan that cannot be followed
/// is refused on import, naming the field.
#[test]
fn chronic_plan_is_checked() {
    let mut r = ReferenceData::bundled().unwrap();
    let plan = r.followup_policy.chronic.clone().unwrap();
    assert_eq!((plan.first, plan.every_days, plan.rounds), ((14, 28), 90, 5));
    assert!(plan.matches("2型糖尿病伴周围神经病变") && !plan.matches("急性阑尾炎"));
    r.followup_policy.chronic = Some(crate::model::reference::ChronicPlan { window_days: 90, ..plan.clone() });
    assert!(r.check().unwrap_err().to_string().contains("followup_policy.chronic"));
    r.followup_policy.chronic = Some(crate::model::reference::ChronicPlan { rounds: 0, ..plan });
    assert!(r.check().unwrap_err().to_string().contains("followup_policy.chronic"));
    r.followup_policy.chronic = None;
    r.check().unwrap();
}
