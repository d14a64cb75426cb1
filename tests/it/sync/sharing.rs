//! Site-wide sharing end to end: records flow down to every desk of their site and to no other, concurrent offline
//! edits of one case at two desks converge everywhere, a new desk catches up with its site, and a record saved at
//! one desk reaches another live (long poll) within seconds. Both HQ backends, through the fault proxy.

use super::*;
use guidedesk::command::cases::{act_on_case, new_case};
use guidedesk::model::{Case, CaseAction, CaseChannel, CaseForm, CaseGrade, CaseStatus};

fn case_form(store: &Store, who: &str) -> CaseForm {
    CaseForm {
        grade: Some(CaseGrade::Complaint),
        channel: Some(CaseChannel::InPerson),
        complainant: who.into(),
        departments: vec![store.reference().departments[0].id.clone()],
        facts: "候诊时间过长".into(),
        ..CaseForm::default()
    }
}

fn take_case(k: &Kiosk, who: &str) -> RecordId {
    let form = case_form(&k.store, who);
    k.store.write(|ctx| new_case(ctx, &form, StaffRef("K001".into()))).unwrap()
}

fn act(k: &Kiosk, id: RecordId, action: CaseAction) {
    k.store.write(|ctx| act_on_case(ctx, id, action, StaffRef("K002".into()))).unwrap();
}

fn three_desks(backend: &Backend, dir: &Path) -> (RunningHq, Proxy, Vec<Kiosk>) {
    let hq = start_hq(backend, &dir.join("hq"), 100);
    hq.store().import_reference(&reference_variant("share"), None, 100).unwrap();
    let proxy = Proxy::start(hq.addr());
    let desks = [("main", "lobby"), ("main", "office"), ("east", "lobby")]
        .iter()
        .enumerate()
        .map(|(i, (site, desk))| enrol(&hq, &dir.join(format!("k{i}")), site, desk, &proxy.url()))
        .collect();
    (hq, proxy, desks)
}

fn sites() -> [&'static str; 3] {
    ["main", "main", "east"]
}

fn check(hq: &RunningHq, desks: &[Kiosk]) {
    settle(&desks.iter().collect::<Vec<_>>());
    let list: Vec<(&Store, &str)> = desks.iter().zip(sites()).map(|(k, s)| (&k.store, s)).collect();
    check_invariants(hq.store(), &list);
}

fn a_complaint_taken_at_one_desk_is_worked_at_another_of_its_site_and_never_seen_at_the_other_site(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (hq, proxy, desks) = three_desks(backend, dir.path());
    let (lobby, office, east) = (&desks[0], &desks[1], &desks[2]);
    proxy.set_random(11, 20);
    let id = take_case(lobby, "钱芳");
    write_arrivals(&lobby.store, 30, 10);
    write_arrivals(&east.store, 10, 10);
    for k in &desks {
        sync_until_done(k, &options(7), 20);
    }
    // The office holds the lobby's complaint, replicated; the east desk holds nothing of the main site.
    let at_office: Case = office.store.get(id).unwrap().expect("the complaint reached the office");
    assert_eq!(at_office.complainant, "钱芳");
    assert_eq!(office.store.origin_of(RecordKind::Case, id).unwrap().unwrap().desk, "lobby");
    assert!(east.store.get::<Case>(id).unwrap().is_none(), "a record of the main site reached the east site");
    let by = east.store.stats().unwrap().by_origin;
    assert_eq!(by.replicated, 0, "east holds records of another site: {by:?}");
    // The office works it to the end; the lobby sees it resolved and closed.
    let dept = office.store.reference().departments[0].id.clone();
    act(office, id, CaseAction::Assign { department: dept, assignee: None });
    act(office, id, CaseAction::Investigate);
    act(
        office,
        id,
        CaseAction::Resolve {
            resolution: "已协调加号".into(),
            actions: "增开诊室".into(),
            responsible: "门诊部".into(),
        },
    );
    sync_until_done(office, &options(7), 20);
    sync_until_done(lobby, &options(7), 20);
    let at_lobby: Case = lobby.store.get(id).unwrap().unwrap();
    assert_eq!(at_lobby.status.value.status, CaseStatus::Resolved);
    assert_eq!(at_lobby, office.store.get::<Case>(id).unwrap().unwrap());
    // What the lobby wrote was its own; the office's edits did not make it the office's.
    assert_eq!(lobby.store.origin_of(RecordKind::Case, id).unwrap(), None);
    let stats = office.store.stats().unwrap();
    assert!(stats.by_origin.replicated >= 31, "{:?}", stats.by_origin);
    assert_eq!(stats.by_origin.local + stats.by_origin.replicated, stats.records.values().sum::<u64>());
    proxy.clear();
    check(&hq, &desks);
}

fn concurrent_offline_edits_of_one_case_at_two_desks_converge_everywhere(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (hq, proxy, desks) = three_desks(backend, dir.path());
    let (lobby, office) = (&desks[0], &desks[1]);
    let id = take_case(lobby, "周强");
    sync_until_done(lobby, &options(50), 3);
    sync_until_done(office, &options(50), 3);
    // Both desks lose the line and edit the same case.
    proxy.set_default(Fault::CutRequest);
    let dept = lobby.store.reference().departments[0].id.clone();
    act(lobby, id, CaseAction::Assign { department: dept.clone(), assignee: Some("K003".into()) });
    act(lobby, id, CaseAction::Investigate);
    act(office, id, CaseAction::Escalate { to: CaseGrade::Dispute });
    // A dispute goes to its department by 批转 (the bundled policy's approval_grades).
    act(office, id, CaseAction::Approve { department: dept, assignee: Some("K004".into()) });
    for k in [lobby, office] {
        assert!(kiosk_sync::sync_with(&k.store, &k.cred, &options(50)).is_err());
    }
    proxy.clear();
    sync_until_done(office, &options(50), 3);
    sync_until_done(lobby, &options(50), 3);
    sync_until_done(office, &options(50), 3);
    let a: Case = lobby.store.get(id).unwrap().unwrap();
    let b: Case = office.store.get(id).unwrap().unwrap();
    assert_eq!(a, b, "the two desks did not converge");
    let at_hq = hq.store().record(RecordKind::Case, id.as_u128()).unwrap().unwrap();
    assert_eq!(AnyRecord::Case(a.clone()), at_hq.record, "HQ did not converge with the desks");
    // Nothing was dropped: the escalation, both assignments and the investigation are all in the history.
    assert_eq!(a.grade.value, CaseGrade::Dispute);
    assert_eq!(a.status.value.status, CaseStatus::Investigating);
    assert!(a.events.len() >= 5, "events lost: {:?}", a.events);
    check(&hq, &desks);
}

fn a_new_desk_catches_up_with_its_site_and_resumes_after_a_cut(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (hq, proxy, desks) = three_desks(backend, dir.path());
    write_arrivals(&desks[0].store, 1_500, 250);
    let open_case = take_case(&desks[1], "吴刚");
    for k in &desks {
        sync_until_done(k, &options(500), 3);
    }
    // A new desk at the main site: its first pull is cut after a few pages, then resumes where it stopped.
    let fresh = enrol(&hq, &dir.path().join("new"), "main", "floor2", &proxy.url());
    proxy.script(&[Fault::Pass, Fault::Pass, Fault::Pass, Fault::CutResponse]);
    let (calls, new) = (std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(0));
    let progress = |a: &guidedesk::store::RemoteApplied, _| {
        calls.fetch_add(1, Ordering::SeqCst);
        new.fetch_add(a.new, Ordering::SeqCst);
        // Pages that waited are applied together, never more than the bound at once.
        assert!(a.received <= guidedesk_sync::replicate::MAX_APPLY_CHANGES as u64);
    };
    let first = kiosk_sync::sync_with_progress(&fresh.store, &fresh.cred, &options(500), Some(&progress));
    let cursor_after_cut = fresh.store.pull_cursor("records").unwrap();
    // Everything reported applied before the cut is held (a batch of pages commits with its cursor, or not at all).
    let held = fresh.store.stats().unwrap().by_origin.replicated;
    assert_eq!(held, new.load(Ordering::SeqCst));
    if first.is_err() {
        assert!(cursor_after_cut < hq.store().feed_head("main").unwrap());
    }
    sync_until_done(&fresh, &options(500), 3);
    assert!(calls.load(Ordering::SeqCst) >= 1);
    assert!(fresh.store.get::<Case>(open_case).unwrap().is_some());
    let by = fresh.store.stats().unwrap().by_origin;
    assert_eq!(by.local, 0);
    assert!(by.replicated >= 1_501, "{by:?}");
    let mut all = desks;
    all.push(fresh);
    settle(&all.iter().collect::<Vec<_>>());
    let list: Vec<(&Store, &str)> =
        all.iter().zip(["main", "main", "east", "main"]).map(|(k, s)| (&k.store, s)).collect();
    check_invariants(hq.store(), &list);
}

fn a_record_saved_at_one_desk_shows_at_another_within_two_seconds_live(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(backend, &dir.path().join("hq"), 100);
    let a_dir = dir.path().join("a");
    let b_dir = dir.path().join("b");
    let a = enrol(&hq, &a_dir, "main", "lobby", &hq.url());
    let b = enrol(&hq, &b_dir, "main", "office", &hq.url());
    let (a_store, b_store) = (Arc::new(a.store), Arc::new(b.store));
    let config = guidedesk::config::SyncConfig { interval_minutes: 60, timeout_secs: 5, ..Default::default() };
    let wa = kiosk_sync::SyncWorker::spawn(Arc::clone(&a_store), a_dir, &config, Box::new(|| {})).unwrap();
    let wb = kiosk_sync::SyncWorker::spawn(Arc::clone(&b_store), b_dir, &config, Box::new(|| {})).unwrap();
    assert!(wa.sync_now() && wb.sync_now());
    wait_for(&wa, "A's first cycle", |s| s.last_success.is_some() && !s.running);
    wait_for(&wb, "B's first cycle", |s| s.last_success.is_some() && !s.running);
    // Let B's watch reach HQ.
    std::thread::sleep(Duration::from_millis(300));
    let mut latencies = Vec::new();
    for i in 0..5 {
        let form = case_form(&a_store, &format!("患者{i}"));
        let id = a_store.write(|ctx| new_case(ctx, &form, StaffRef("K001".into()))).unwrap();
        let saved = Instant::now();
        wa.sync_now(); // what the app does after each save
        while b_store.get::<Case>(id).unwrap().is_none() {
            assert!(saved.elapsed() < Duration::from_secs(10), "case {i} did not reach desk B");
            std::thread::sleep(Duration::from_millis(5));
        }
        latencies.push(saved.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    latencies.sort();
    let p95 = latencies[latencies.len() - 1];
    assert!(p95 < Duration::from_secs(2), "desk A → desk B took {latencies:?}");
    assert!(wb.status().remote_changes >= 5);
    wa.shutdown();
    wb.shutdown();
}

/// A first visit with a phone registered at `k`: its outpatient follow-up task goes on the site's worklist.
fn first_visit_task(k: &Kiosk, name: &str) -> RecordId {
    let form = ArrivalForm {
        name: name.into(),
        sex: Some(Sex::Male),
        visit_type: Some(VisitType::First),
        channel: Some(ArrivalChannel::WalkIn),
        complaint: "胸闷".into(),
        department: k.store.reference().departments[0].id.clone(),
        phone: "13812345678".into(),
        ..ArrivalForm::default()
    };
    let arrival =
        k.store.write(|ctx| guidedesk::command::desk::register(ctx, &form, &StaffRef("D001".into()))).unwrap();
    let key = guidedesk::model::FollowupSource::OutpatientFirstVisit { arrival }.dedup_key();
    k.store.followup_by_source(&key).unwrap().expect("a first visit with a phone gets a follow-up task")
}

fn reached() -> guidedesk::model::CallAttemptForm {
    guidedesk::model::CallAttemptForm {
        outcome: Some(guidedesk::model::CallOutcome::Reached),
        // The desks' clocks are the wall clock, maybe outside the calling hours: such a call carries its reason.
        notes: "病人约定此时回电".into(),
        ..guidedesk::model::CallAttemptForm::default()
    }
}

/// The shared worklist: a caller's claim shows at the other desk of the site ("being called by", with the desk) and
/// at no desk of another site; two callers who reached the same patient while apart are both recorded, everywhere,
/// and the pair is flagged.
fn a_claim_shows_at_the_other_desk_and_a_double_call_is_flagged(backend: &Backend) {
    use guidedesk::command::calls::{claim, record_attempt};
    use guidedesk::queries::Queries as _;
    let dir = tempfile::tempdir().unwrap();
    let (hq, proxy, desks) = three_desks(backend, dir.path());
    let (lobby, office, east) = (&desks[0], &desks[1], &desks[2]);
    let task = first_visit_task(lobby, "孙伟");
    for k in &desks {
        sync_until_done(k, &options(50), 3);
    }
    // The office's caller opens the task: the lobby shows it held, with the office's desk; the east site sees nothing.
    office.store.write(|ctx| claim(ctx, task, false, StaffRef("K001".into()))).unwrap();
    sync_until_done(office, &options(50), 3);
    sync_until_done(lobby, &options(50), 3);
    sync_until_done(east, &options(50), 3);
    let held = lobby.store.claims().unwrap();
    let h = held.get(&task).expect("the lobby sees the office's claim");
    assert_eq!((h.by.0.as_str(), h.desk.as_deref()), ("K001", Some("office")));
    assert!(office.store.claims().unwrap()[&task].desk.is_none(), "the office's own claim names no other desk");
    assert!(east.store.claims().unwrap().is_empty());
    // Letting go frees it at both desks.
    office.store.write(|ctx| claim(ctx, task, true, StaffRef("K001".into()))).unwrap();
    sync_until_done(office, &options(50), 3);
    sync_until_done(lobby, &options(50), 3);
    assert!(lobby.store.claims().unwrap().is_empty(), "the release did not reach the lobby");
    // Both desks lose the line; a caller at each reaches the patient.
    proxy.set_default(Fault::CutRequest);
    lobby.store.write(|ctx| record_attempt(ctx, task, &reached(), StaffRef("K002".into()))).unwrap();
    office.store.write(|ctx| record_attempt(ctx, task, &reached(), StaffRef("K001".into()))).unwrap();
    assert!(lobby.store.worklist_attention(7).unwrap().double_calls.is_empty());
    proxy.clear();
    for k in [lobby, office, lobby] {
        sync_until_done(k, &options(50), 3);
    }
    for k in [lobby, office] {
        let a = k.store.worklist_attention(7).unwrap();
        assert_eq!(a.double_calls.len(), 1, "the double call is not flagged: {a:?}");
        let (t, calls) = &a.double_calls[0];
        assert_eq!(t.as_ref().map(|t| t.id), Some(task));
        let mut by: Vec<&str> = calls.iter().map(|c| c.by.0.as_str()).collect();
        by.sort_unstable();
        assert_eq!(by, ["K001", "K002"], "a call was lost");
    }
    assert_eq!(hq.store().stats().unwrap().records.get("call_attempt").copied(), Some(2));
    check(&hq, &desks);
}

on_both_backends!(
    a_claim_shows_at_the_other_desk_and_a_double_call_is_flagged,
    a_complaint_taken_at_one_desk_is_worked_at_another_of_its_site_and_never_seen_at_the_other_site,
    concurrent_offline_edits_of_one_case_at_two_desks_converge_everywhere,
    a_new_desk_catches_up_with_its_site_and_resumes_after_a_cut,
    a_record_saved_at_one_desk_shows_at_another_within_two_seconds_live,
    a_desk_offline_for_30_days_catches_up,
);

/// Two kiosks on one HQ, each through its real screens: a complaint taken at the lobby is resolved at the
/// customer-service office and shows resolved back at the lobby.
#[test]
fn a_complaint_taken_at_desk_a_is_resolved_at_desk_b_and_shows_resolved_at_a() {
    use crate::ui::{button, fixture, harness, sign_in, type_into};
    use egui::accesskit::Role;
    use egui_kittest::kittest::Queryable as _;

    fn pick(h: &mut egui_kittest::Harness<'_, guidedesk::app::DeskApp>, combo: &str, option: &str) {
        h.get_by_label(combo).scroll_to_me();
        h.run();
        h.get_by_label(combo).click();
        h.run();
        h.query_all_by_label(option).last().expect("the option is listed").click();
        h.run();
    }

    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(&Backend::Embedded, &dir.path().join("hq"), 100);
    let (fa, fb) = (fixture(true), fixture(true));
    let enrol_fixture = |f: &crate::ui::Fixture, desk: &str| {
        let code = hq.store().create_code("main", desk, now_ms(), 3_600_000).unwrap();
        kiosk_sync::enroll(&f.store, f.dir.path(), &hq.url(), &code, None, false).unwrap().0
    };
    enrol_fixture(&fa, "lobby");
    enrol_fixture(&fb, "office");
    // Each app syncs through its own background worker, as in the window (no long poll here: the test says when).
    let config =
        guidedesk::config::SyncConfig { interval_minutes: 60, timeout_secs: 5, live: false, ..Default::default() };
    let worker = |f: &crate::ui::Fixture| {
        kiosk_sync::SyncWorker::spawn(Arc::clone(&f.store), f.dir.path().to_path_buf(), &config, Box::new(|| {}))
            .unwrap()
    };
    let cycle = |h: &egui_kittest::Harness<'_, guidedesk::app::DeskApp>, f: &crate::ui::Fixture| {
        // The kiosks' clocks are manual: a second passes, so each cycle's success has its own moment.
        f.clock.advance(1_000);
        let w = h.state().sync_worker().expect("a worker is attached");
        let before = w.status().last_success;
        assert!(w.sync_now());
        wait_for(w, "a cycle", |s| !s.running && s.last_success.is_some() && s.last_success != before);
        assert_eq!(w.status().records_waiting, 0);
    };

    // Desk A (the lobby) takes the complaint.
    let mut a = harness(&fa.store);
    a.state_mut().attach_sync(worker(&fa));
    sign_in(&mut a, "刘敏");
    button(&mut a, "客诉处理");
    button(&mut a, "新建客诉");
    button(&mut a, "投诉");
    a.get_by_role_and_label(Role::Button, "电话").click();
    a.run();
    type_into(&mut a, Role::TextInput, "投诉人", "李强");
    type_into(&mut a, Role::TextInput, "电话", "13912345678");
    pick(&mut a, "涉及科室", "心血管内科");
    type_into(&mut a, Role::MultilineTextInput, "事实与理由", "候诊两小时无人告知原因");
    button(&mut a, "受理");
    assert!(a.query_by_label("客诉已受理").is_some());
    cycle(&a, &fa);

    // Desk B (the office) finds it in its list and resolves it.
    let mut b = harness(&fb.store);
    b.state_mut().attach_sync(worker(&fb));
    sign_in(&mut b, "刘敏");
    cycle(&b, &fb);
    b.run();
    button(&mut b, "客诉处理");
    button(&mut b, "查看 李强");
    button(&mut b, "转交科室");
    pick(&mut b, "分诊科室", "心血管内科");
    button(&mut b, "确认： 转交科室");
    button(&mut b, "处理完毕");
    type_into(&mut b, Role::MultilineTextInput, "处理结果", "已向患者致歉并说明原因");
    type_into(&mut b, Role::TextInput, "责任人", "王主任");
    button(&mut b, "确认： 处理完毕");
    cycle(&b, &fb);
    cycle(&a, &fa);

    // Desk A shows it resolved, on the screen that was open all along.
    a.run();
    a.run();
    let id = fa.store.open_cases_due(None).unwrap()[0].id;
    let at_a: Case = fa.store.get(id).unwrap().unwrap();
    assert_eq!(at_a.status.value.status, CaseStatus::Resolved);
    assert_eq!(at_a, fb.store.get::<Case>(id).unwrap().unwrap());
    // The list row and the open case's status both read 已处理 now; 已受理 is gone.
    assert!(a.query_all_by_label("已处理").count() >= 2, "desk A does not show the case resolved");
    assert!(a.query_by_label("已受理").is_none());
    // The open case says where and by whom it was just changed.
    assert!(a.query_by_label_contains("这件客诉刚在 office 由 K001 更新").is_some(), "no notice of the change at B");
    assert!(a.query_by_label_contains("已向患者致歉并说明原因").is_some());
}

/// The board is site-wide: arrivals registered at the lobby show on the office's board with their desk, the queue
/// alert counts them, and the desk filter narrows the board to one desk; the dashboard likewise.
#[test]
fn the_board_shows_the_whole_site_with_a_desk_column_and_filter() {
    use crate::ui::{button, fixture, harness, sign_in};
    use egui_kittest::kittest::Queryable as _;

    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(&Backend::Embedded, &dir.path().join("hq"), 100);
    let (fa, fb) = (fixture(true), fixture(true));
    let mut creds = Vec::new();
    for (f, desk) in [(&fa, "lobby"), (&fb, "office")] {
        let code = hq.store().create_code("main", desk, now_ms(), 3_600_000).unwrap();
        creds.push(kiosk_sync::enroll(&f.store, f.dir.path(), &hq.url(), &code, None, false).unwrap().0);
    }
    // Ten waiting at the lobby, one at the office: eleven waiting on the site, over the alert's eight.
    let register = |store: &Store, n: usize, tag: &str| {
        let dept = store.reference().departments[0].id.clone();
        for i in 0..n {
            let form = ArrivalForm {
                name: format!("{tag}{i}"),
                sex: Some(Sex::Male),
                visit_type: Some(VisitType::Return),
                channel: Some(ArrivalChannel::WalkIn),
                complaint: "复诊".into(),
                department: dept.clone(),
                ..ArrivalForm::default()
            };
            store.write(|ctx| guidedesk::command::desk::register(ctx, &form, &StaffRef("D001".into()))).unwrap();
        }
    };
    register(&fa.store, 10, "大厅");
    register(&fb.store, 1, "客服");
    for (f, c) in [(&fa, &creds[0]), (&fb, &creds[1]), (&fa, &creds[0])] {
        assert_eq!(kiosk_sync::sync_with(&f.store, c, &options(100)).unwrap().pending, 0);
    }
    let mut h = harness(&fb.store);
    sign_in(&mut h, "陈晓燕");
    button(&mut h, "就诊看板");
    assert_eq!(h.state().store().arrivals_on(fb.store.today()).unwrap().len(), 11);
    assert!(h.query_by_label("今日 11 人，进行中 11 人，已结束 0 人").is_some());
    // The board draws the rows in view: each shows its desk.
    assert!(h.query_all_by_label("lobby").count() >= 5, "lobby arrivals show their desk");
    assert!(
        h.query_by_label("挂号处排队 11 人，已超过 8 人，请通知主管增开窗口").is_some(),
        "the alert counts the site"
    );
    // Only this desk's.
    h.get_by_label("服务台").click();
    h.run();
    h.get_by_role_and_label(egui::accesskit::Role::Button, "本台").click();
    h.run();
    assert!(h.query_by_label("客服0").is_some());
    assert_eq!(h.query_all_by_label("lobby").count(), 0, "only this desk's arrivals are left");

    // The dashboard counts the site, and its desk filter narrows the figures to one desk.
    let arrivals = |h: &mut egui_kittest::Harness<'_, guidedesk::app::DeskApp>, different_from: Option<u64>| {
        for _ in 0..400 {
            h.step();
            if let Some(n) = h.state().dashboard_summary().map(|s| s.agg.arrivals.total)
                && different_from != Some(n)
            {
                h.run();
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the dashboard never showed its figures");
    };
    h.get_by_role_and_label(egui::accesskit::Role::Button, "数据看板").click();
    h.run_steps(3);
    let all = arrivals(&mut h, None);
    assert_eq!(all, 11, "the dashboard does not count the whole site");
    h.get_by_label("服务台").click();
    // The figures are recomputed in the background (a spinner repaints meanwhile): step, do not settle.
    h.run_steps(3);
    h.get_by_role_and_label(egui::accesskit::Role::Button, "lobby").click();
    h.run_steps(3);
    assert_eq!(arrivals(&mut h, Some(all)), 10, "the desk filter does not narrow to the lobby");
    h.get_by_label("服务台").click();
    h.run_steps(3);
    h.get_by_role_and_label(egui::accesskit::Role::Button, "本台").click();
    h.run_steps(3);
    assert_eq!(arrivals(&mut h, Some(10)), 1, "this desk's figures");
}

/// HQ (the real binary, embedded store) is killed (SIGKILL) again and again while a desk pulls its site's records through a
/// slow link; each restart serves the same feed, and the desk ends up equal to HQ, nothing duplicated.
#[test]
fn hq_sigkilled_mid_relay_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let hq_dir = dir.path().join("hq");
    let (mut child, addr) = spawn_hq_binary(&hq_dir);
    let mut desks = Vec::new();
    for desk in ["lobby", "office"] {
        let code_out = hq_cli(&hq_dir, &["enroll-code", "--site", "main", "--desk", desk]);
        let code = code_out.lines().last().unwrap().trim().to_string();
        let kdir = dir.path().join(desk);
        let (store, clock) = open_kiosk(&kdir, now());
        let (cred, _) = kiosk_sync::enroll(&store, &kdir, &format!("http://{addr}"), &code, None, false).unwrap();
        desks.push(Kiosk { store, clock, cred });
    }
    let proxy = Proxy::start(addr);
    for k in &mut desks {
        k.cred.url = proxy.url();
    }
    write_arrivals(&desks[0].store, 4_000, 500);
    sync_until_done(&desks[0], &options(1_000), 3);
    proxy.set_default(Fault::Delay(5));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    let office = &desks[1];
    for _ in 0..3 {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    if kiosk_sync::sync_with(&office.store, &office.cred, &options(100)).is_ok() {
                        break;
                    }
                }
            });
            std::thread::sleep(Duration::from_millis(rng.random_range(30..200)));
            child.kill().unwrap();
            child.wait().unwrap();
            let (c, a) = spawn_hq_binary(&hq_dir);
            child = c;
            proxy.set_upstream(a);
            stop.store(true, Ordering::SeqCst);
        });
    }
    proxy.clear();
    sync_until_done(office, &options(500), 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let hq = HqBackend::from(HqStore::open(&hq_dir).unwrap());
    assert_eq!(office.store.stats().unwrap().by_origin.replicated, 4_000);
    check_invariants(&hq, &[(&desks[0].store, "main"), (&office.store, "main")]);
}

/// A desk offline for 30 days while the lobby works on: when it comes back it pushes its month and takes in the
/// site's, keeping what the sharing policy keeps; HQ and both desks agree.
fn a_desk_offline_for_30_days_catches_up(backend: &Backend) {
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let (hq, _proxy, desks) = three_desks(backend, dir.path());
    let (lobby, office) = (&desks[0], &desks[1]);
    let start = now().0 - 30 * DAY;
    lobby.clock.set(Moment(start));
    office.clock.set(Moment(start));
    for day in 0..30 {
        lobby.clock.set(Moment(start + day * DAY));
        office.clock.set(Moment(start + day * DAY));
        write_arrivals(&lobby.store, 40, 40);
        write_arrivals(&office.store, 5, 5);
        if day % 3 == 0 {
            take_case(lobby, &format!("离线{day}"));
        }
        // The lobby syncs daily; the office has no line for the whole month.
        sync_until_done(lobby, &options(500), 3);
    }
    let now_ms = now().0;
    lobby.clock.set(Moment(now_ms));
    office.clock.set(Moment(now_ms));
    let r = sync_until_done(office, &options(500), 3);
    assert!(r.pulled >= 1_200, "the office took in the lobby's month: {r:?}");
    assert_eq!(office.store.open_cases_due(None).unwrap().len(), 10);
    check(&hq, &desks);
}

/// HQ restored from an older backup of its store: the office's records cursor is beyond the restored feed, so it
/// starts again from the beginning; the lobby refills what HQ lost from its outbox; new feed numbers stay above the
/// old cursors, so nothing is skipped; everyone converges.
#[test]
fn hq_restored_from_an_older_backup_and_the_desks_converge() {
    let dir = tempfile::tempdir().unwrap();
    let hq_dir = dir.path().join("hq");
    let backup_dir = dir.path().join("hq-backup");
    let hq = start_hq(&Backend::Embedded, &hq_dir, 100);
    let proxy = Proxy::start(hq.addr());
    let lobby = enrol(&hq, &dir.path().join("lobby"), "main", "lobby", &proxy.url());
    let office = enrol(&hq, &dir.path().join("office"), "main", "office", &proxy.url());
    write_arrivals(&lobby.store, 50, 50);
    sync_until_done(&lobby, &options(100), 3);
    sync_until_done(&office, &options(100), 3);
    // The backup: HQ stopped, its directory copied.
    hq.shutdown().unwrap();
    std::fs::create_dir_all(&backup_dir).unwrap();
    std::fs::copy(hq_dir.join("hq.redb"), backup_dir.join("hq.redb")).unwrap();
    let hq = start_hq(&Backend::Embedded, &hq_dir, 100);
    proxy.set_upstream(hq.addr());
    write_arrivals(&lobby.store, 50, 50);
    let case = take_case(&lobby, "恢复");
    sync_until_done(&lobby, &options(100), 3);
    sync_until_done(&office, &options(100), 3);
    let office_cursor = office.store.pull_cursor("records").unwrap();
    // The disk fails; HQ comes back from the older backup.
    hq.shutdown().unwrap();
    std::fs::copy(backup_dir.join("hq.redb"), hq_dir.join("hq.redb")).unwrap();
    let hq = start_hq(&Backend::Embedded, &hq_dir, 100);
    proxy.set_upstream(hq.addr());
    assert!(office_cursor > hq.store().feed_head("main").unwrap(), "the restore took the feed back");
    // The office pulls first (a reset: from the beginning), then the lobby refills HQ, then the office catches up.
    let r = sync_until_done(&office, &options(100), 3);
    assert!(r.resets >= 1, "{r:?}");
    sync_until_done(&lobby, &options(100), 3);
    sync_until_done(&office, &options(100), 3);
    let after = office.store.pull_cursor("records").unwrap();
    assert!(
        after > office_cursor,
        "new feed numbers stay above old cursors: {after} <= {office_cursor} (head {})",
        hq.store().feed_head("main").unwrap()
    );
    assert!(office.store.get::<Case>(case).unwrap().is_some());
    assert_eq!(hq.store().stats().unwrap().records["arrival"], 100);
    check_invariants(hq.store(), &[(&lobby.store, "main"), (&office.store, "main")]);
}

/// The shared worklist through the real screens of two desks: the caller who opens a task at the lobby shows as
/// calling it on the office's worklist; the office's caller is asked before taking it over, and then the lobby shows
/// the office's caller instead.
#[test]
fn a_task_opened_at_one_desk_shows_as_being_called_at_the_other() {
    use crate::ui::{button, fixture, harness, sign_in};
    use egui_kittest::kittest::Queryable as _;

    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(&Backend::Embedded, &dir.path().join("hq"), 100);
    let (fa, fb) = (fixture(true), fixture(true));
    // The site has a second caller (the same staff list at every desk, as HQ sends it).
    let mut r = (*fb.store.reference()).clone();
    let mut wang = r.staff[1].clone();
    wang.id = "K002".into();
    wang.name = "王芳".into();
    r.staff.push(wang);
    fa.store.apply_reference(r.clone(), "test").unwrap();
    fb.store.apply_reference(r, "test").unwrap();
    for (f, desk) in [(&fa, "lobby"), (&fb, "office")] {
        let code = hq.store().create_code("main", desk, now_ms(), 3_600_000).unwrap();
        kiosk_sync::enroll(&f.store, f.dir.path(), &hq.url(), &code, None, false).unwrap();
    }
    let form = ArrivalForm {
        name: "孙伟".into(),
        sex: Some(Sex::Male),
        visit_type: Some(VisitType::First),
        channel: Some(ArrivalChannel::WalkIn),
        complaint: "胸闷".into(),
        department: fa.store.reference().departments[0].id.clone(),
        phone: "13812345678".into(),
        ..ArrivalForm::default()
    };
    fa.store.write(|ctx| guidedesk::command::desk::register(ctx, &form, &StaffRef("D001".into()))).unwrap();
    let config =
        guidedesk::config::SyncConfig { interval_minutes: 60, timeout_secs: 5, live: false, ..Default::default() };
    let worker = |f: &crate::ui::Fixture| {
        kiosk_sync::SyncWorker::spawn(Arc::clone(&f.store), f.dir.path().to_path_buf(), &config, Box::new(|| {}))
            .unwrap()
    };
    let cycle = |h: &egui_kittest::Harness<'_, guidedesk::app::DeskApp>, f: &crate::ui::Fixture| {
        f.clock.advance(1_000);
        let w = h.state().sync_worker().expect("a worker is attached");
        let before = w.status().last_success;
        assert!(w.sync_now());
        wait_for(w, "a cycle", |s| !s.running && s.last_success.is_some() && s.last_success != before);
        assert_eq!(w.status().records_waiting, 0);
    };
    let mut a = harness(&fa.store);
    a.state_mut().attach_sync(worker(&fa));
    let mut b = harness(&fb.store);
    b.state_mut().attach_sync(worker(&fb));
    cycle(&a, &fa);
    cycle(&b, &fb);

    // 刘敏 opens the task at the lobby.
    sign_in(&mut a, "刘敏");
    button(&mut a, "回访");
    button(&mut a, "回访 孙伟");
    assert!(a.query_all_by_label_contains("您正在回访").next().is_some(), "the lobby does not show its own claim");
    cycle(&a, &fa);
    cycle(&b, &fb);

    // 王芳 at the office sees who is calling, and where; opening the task does not take it.
    sign_in(&mut b, "王芳");
    button(&mut b, "回访");
    b.run();
    assert!(
        b.query_all_by_label_contains("刘敏 正在回访（lobby，10:00 起）").next().is_some(),
        "the office's worklist does not show the lobby's caller"
    );
    button(&mut b, "回访 孙伟");
    b.run();
    assert!(b.query_all_by_label_contains("您正在回访").next().is_none(), "opening a held task took it without asking");
    button(&mut b, "仍由我来回访（接手）");
    assert!(b.query_all_by_label_contains("您正在回访").next().is_some());
    cycle(&b, &fb);
    cycle(&a, &fa);
    a.run();
    a.run();
    assert!(
        a.query_all_by_label_contains("王芳 正在回访（office").next().is_some(),
        "the lobby does not show that the office took the call over"
    );
}
