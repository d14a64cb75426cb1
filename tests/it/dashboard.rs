//! The dashboard renders with demo data, and its filters change the figures.

use egui_kittest::kittest::Queryable as _;
use guidedesk::demo::{self, DemoOptions};
use guidedesk::model::{Arrival, Moment, RecordKind};

use crate::ui::{fixture, harness, sign_in};

/// Clicks a button that starts a background computation. Unlike `ui::button` it does not wait for the frame to
/// settle: the spinner repaints until the figures arrive, which on a loaded machine takes longer than
/// `Harness::run` allows. `wait_for_figures` then steps until they are shown.
fn click_and_step(h: &mut egui_kittest::Harness<'_, guidedesk::app::DeskApp>, label: &str) {
    h.get_by_role_and_label(egui::accesskit::Role::Button, label).click();
    h.step();
}

fn wait_for_figures(h: &mut egui_kittest::Harness<'_, guidedesk::app::DeskApp>, different_from: Option<u64>) -> u64 {
    for _ in 0..400 {
        // `step`: the spinner repaints while the figures are computed in the background.
        h.step();
        if let Some(s) = h.state().dashboard_summary() {
            let n = s.agg.arrivals.total;
            if different_from != Some(n) {
                h.run();
                return n;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the dashboard never showed its figures");
}

#[test]
fn dashboard_renders_demo_data_and_filters_change_the_figures() {
    let f = fixture(true);
    demo::generate(&f.store, DemoOptions { days: 7, per_day: 60, seed: 5 }).unwrap();
    let mut h = harness(&f.store);
    sign_in(&mut h, "陈晓燕");
    click_and_step(&mut h, "数据看板");
    let all = wait_for_figures(&mut h, None);
    let offset = f.store.utc_offset();
    let from = Moment::start_of_day(f.store.today() - chrono::Days::new(6), offset);
    let expected = f.store.ids_between(RecordKind::Arrival, from, Moment(i64::MAX)).unwrap().len() as u64;
    assert_eq!(all, expected, "last 7 days of arrivals");
    assert!(h.query_by_label(&all.to_string()).is_some(), "the arrivals tile shows the count");
    assert!(h.query_by_label("各时段来院人次").is_some());
    assert!(h.query_all_by_label_contains("目标 ≥").count() >= 3, "targets beside the KPIs");

    // Filter to one department.
    h.get_by_label("科室").click();
    h.run();
    h.query_all_by_label("心血管内科").last().unwrap().click();
    let cardio = wait_for_figures(&mut h, Some(all));
    let ids = f.store.ids_between(RecordKind::Arrival, from, Moment(i64::MAX)).unwrap();
    let expected: u64 =
        f.store.get_many::<Arrival>(ids).unwrap().iter().filter(|a| a.department.value == "cardio").count() as u64;
    assert_eq!(cardio, expected);
    assert!(cardio < all);

    // Another range.
    click_and_step(&mut h, "今天");
    let today = wait_for_figures(&mut h, Some(cardio));
    assert!(today < cardio);
}

/// The accountability counts name departments and people (客服中心管理方案, 责任考核): only supervisors and
/// administrators see them; a guide's dashboard leaves the table out.
#[test]
fn only_supervisors_see_the_accountability_table() {
    let f = fixture(true);
    let mut r = (*f.store.reference()).clone();
    let mut supervisor = r.staff[0].clone();
    supervisor.id = "S001".into();
    supervisor.name = "周主管".into();
    supervisor.role = guidedesk::model::reference::Role::Supervisor;
    r.staff.push(supervisor);
    f.store.apply_reference(r, "test").unwrap();
    demo::generate(&f.store, DemoOptions { days: 7, per_day: 30, seed: 6 }).unwrap();
    for (name, sees) in [("陈晓燕", false), ("周主管", true)] {
        let mut h = harness(&f.store);
        sign_in(&mut h, name);
        click_and_step(&mut h, "数据看板");
        wait_for_figures(&mut h, None);
        let shown = h.query_all_by_label_contains("责任统计").next().is_some();
        assert_eq!(shown, sees, "{name}: accountability table shown = {shown}");
    }
}
