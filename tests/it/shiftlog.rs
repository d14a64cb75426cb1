//! The shift log (经营部工作手册 3.2.4.8, 3.2.4.12): the morning guide writes the handover with what is left to do,
//! the afternoon shift reads it on its own screen, marks it read, and the writer sees who took it over.

use egui_kittest::kittest::Queryable as _;
use guidedesk::model::{LogKind, Moment, RecordKind, ShiftLog, ShiftLogForm, StaffRef};

use crate::ui::{T0, button, fixture, harness_with, sign_in};

#[test]
fn a_shift_handover_is_written_and_read_by_the_next_shift() {
    let f = fixture(true);
    let mut h = harness_with(&f.store, 24 * 60);
    sign_in(&mut h, "陈晓燕");
    button(&mut h, "交班");
    *h.state_mut().shiftlog_mut().form_mut() = ShiftLogForm {
        kind: Some(LogKind::Handover),
        summary: "上午接待 126 人，借出轮椅 4 次".into(),
        pending: "3 楼 B 超室王女士投诉待回复\n借出轮椅 2 台未还".into(),
        opinions: "患者反映自助机排队长".into(),
    };
    button(&mut h, "保存");
    let ids = f.store.ids_between(RecordKind::ShiftLog, Moment(0), Moment(i64::MAX)).unwrap();
    assert_eq!(ids.len(), 1);
    let log: ShiftLog = f.store.get(ids[0]).unwrap().unwrap();
    assert_eq!(log.pending.len(), 2);
    assert_eq!(log.shift, Some(guidedesk::model::reference::Session::Morning));
    assert!(h.query_by_label("下一班尚未阅").is_some());
    assert!(h.query_by_role_and_label(egui::accesskit::Role::Button, "已阅（接班）").is_none(), "not by its writer");
    button(&mut h, "退出登录");

    // The afternoon shift.
    f.clock.set(Moment(T0 + 4 * 60 * 60_000));
    sign_in(&mut h, "刘敏");
    button(&mut h, "交班");
    assert!(h.query_by_label("有 1 条交班记录您尚未阅").is_some());
    assert!(h.query_by_label_contains("3 楼 B 超室王女士投诉待回复").is_some(), "the pending matter is handed over");
    button(&mut h, "已阅（接班）");
    let log: ShiftLog = f.store.get(ids[0]).unwrap().unwrap();
    assert!(log.read_by(&StaffRef("K001".into())));
    assert!(h.query_by_label("已阅：刘敏").is_some());
    assert!(h.query_by_label_contains("您尚未阅").is_none());
    // Marking twice is refused by the record itself.
    let again = f.store.write(|ctx| guidedesk::command::desk::read_log(ctx, ids[0], &StaffRef("K001".into())));
    assert!(again.is_err());
}
