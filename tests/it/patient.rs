//! The patient feedback screen: taps only, timeout, leaving patient mode, closing the loop, tamper evidence.

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use guidedesk::model::{Feedback, FollowupSource, FollowupTask, Rating, RecordKind};
use guidedesk::store::Store;

use crate::ui::{button, fixture, harness, sign_in};

fn feedback(store: &Store) -> Vec<Feedback> {
    store.feedback_chain().unwrap()
}

fn enter_patient_mode(h: &mut egui_kittest::Harness<'_, guidedesk::app::DeskApp>) {
    sign_in(h, "陈晓燕");
    button(h, "患者评价模式");
    assert!(h.state().in_patient_mode());
}

fn skip_to_contact(h: &mut egui_kittest::Harness<'_, guidedesk::app::DeskApp>) {
    for _ in 0..8 {
        button(h, "跳过此题");
    }
    button(h, "下一步");
    button(h, "下一步");
}

#[test]
fn a_survey_completed_by_taps_only() {
    let f = fixture(true);
    let mut h = harness(&f.store);
    enter_patient_mode(&mut h);
    // Nothing of the staff side is reachable.
    for hidden in ["来院登记", "就诊看板", "陈晓燕", "退出登录"] {
        assert!(h.query_by_label_contains(hidden).is_none(), "{hidden} visible in patient mode");
    }
    button(&mut h, "满意");
    assert!(h.query_by_label_contains("挂号服务").is_some(), "the first aspect question follows");
    button(&mut h, "非常满意");
    button(&mut h, "一般");
    for _ in 0..6 {
        button(&mut h, "跳过此题");
    }
    button(&mut h, "服务态度好");
    button(&mut h, "下一步");
    button(&mut h, "下一步");
    button(&mut h, "不需要，提交");
    assert!(h.query_by_label("谢谢您的评价！").is_some());
    let fb = feedback(&f.store);
    assert_eq!(fb.len(), 1);
    let x = &fb[0];
    assert_eq!(x.overall, Rating::Satisfied);
    assert!(x.complete);
    assert_eq!(x.ratings.len(), 2);
    assert_eq!(x.reasons, ["服务态度好"]);
    assert_eq!(x.contact_phone, None);
    assert!(f.store.verify_feedback_chain().unwrap().is_empty());
    // The thanks screen resets for the next person.
    f.clock.advance(6_000);
    h.run();
    assert!(h.query_by_label_contains("第 1 题").is_some());
}

#[test]
fn an_abandoned_survey_is_saved_as_incomplete_after_the_timeout() {
    let f = fixture(true);
    let mut h = harness(&f.store);
    enter_patient_mode(&mut h);
    button(&mut h, "不满意");
    button(&mut h, "非常不满意");
    assert!(feedback(&f.store).is_empty());
    let timeout = f.store.reference().survey.timeout_secs;
    f.clock.advance(i64::from(timeout) * 1000 - 1000);
    h.run();
    assert!(feedback(&f.store).is_empty(), "not before the timeout");
    f.clock.advance(2000);
    h.run();
    let fb = feedback(&f.store);
    assert_eq!(fb.len(), 1);
    assert!(!fb[0].complete);
    assert_eq!(fb[0].overall, Rating::Dissatisfied);
    assert_eq!(fb[0].ratings.len(), 1);
    assert!(h.query_by_label_contains("第 1 题").is_some(), "reset for the next person");
    // An untouched screen saves nothing, however long it waits.
    f.clock.advance(i64::from(timeout) * 5000);
    h.run();
    assert_eq!(feedback(&f.store).len(), 1);
}

#[test]
fn leaving_patient_mode_needs_a_staff_pin() {
    let f = fixture(true);
    let mut h = harness(&f.store);
    enter_patient_mode(&mut h);
    button(&mut h, "工作人员");
    button(&mut h, "退出评价模式");
    assert!(h.state().in_patient_mode(), "no PIN");
    for d in ["5", "5", "5", "5"] {
        button(&mut h, d);
    }
    button(&mut h, "退出评价模式");
    assert!(h.state().in_patient_mode(), "wrong PIN");
    assert!(h.query_by_label("密码错误，请重新输入").is_some());
    for d in ["1", "2", "3", "4"] {
        button(&mut h, d);
    }
    button(&mut h, "退出评价模式");
    assert!(!h.state().in_patient_mode());
    assert_eq!(h.state().staff().map(|s| s.id.as_str()), Some("D001"));
}

#[test]
fn dissatisfied_with_a_phone_creates_a_same_day_call_back() {
    let f = fixture(true);
    let mut h = harness(&f.store);
    enter_patient_mode(&mut h);
    button(&mut h, "非常不满意");
    skip_to_contact(&mut h);
    button(&mut h, "需要，请联系我");
    for d in "1380013800".chars() {
        button(&mut h, &d.to_string());
    }
    button(&mut h, "提交");
    assert!(h.query_by_label_contains("电话号码格式不正确").is_some(), "ten digits are refused");
    assert!(feedback(&f.store).is_empty());
    button(&mut h, "0");
    button(&mut h, "提交");
    let fb = feedback(&f.store);
    assert_eq!(fb.len(), 1);
    assert_eq!(fb[0].contact_phone.as_deref(), Some("13800138000"));
    let key = FollowupSource::Feedback { feedback: fb[0].id }.dedup_key();
    let task_id = f.store.followup_by_source(&key).unwrap().expect("a call-back task");
    let task: FollowupTask = f.store.get(task_id).unwrap().unwrap();
    assert_eq!((task.due_from, task.due_to), (f.store.today(), f.store.today()));
    assert_eq!(task.phone, "13800138000");
    // Both were written by one transaction: two consecutive outbox entries after the session's audit entries.
    let ops = f.store.outbox_after(0, 20).unwrap();
    assert_eq!(
        ops.iter().map(|o| o.key.kind).filter(|k| *k != RecordKind::Audit.code()).collect::<Vec<_>>(),
        [RecordKind::Feedback.code(), RecordKind::FollowupTask.code()]
    );
}

#[test]
fn every_answer_value_round_trips_to_the_store() {
    let f = fixture(true);
    let mut h = harness(&f.store);
    enter_patient_mode(&mut h);
    let labels = ["非常满意", "满意", "一般", "不满意", "非常不满意", "不清楚"];
    for (i, label) in labels.iter().enumerate() {
        button(&mut h, label);
        // The same value for the first aspect, then straight to the end.
        button(&mut h, label);
        for _ in 0..7 {
            button(&mut h, "跳过此题");
        }
        button(&mut h, "下一步");
        button(&mut h, "下一步");
        button(&mut h, "不需要，提交");
        f.clock.advance(6_000);
        h.run();
        let fb = feedback(&f.store);
        assert_eq!(fb.len(), i + 1);
        assert_eq!(fb[i].overall, Rating::ALL[i]);
        assert_eq!(fb[i].ratings, [(guidedesk::model::Dimension::Registration, Rating::ALL[i])]);
    }
    assert!(h.get_by_role_and_label(Role::Button, "非常满意").rect().height() >= 150.0, "very large faces");
}
