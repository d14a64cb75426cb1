//! A chronic patient's round finished at two desks of the site while they were apart (出院病人随访制度 4): each desk
//! plans the next round under the id derived from the finished round's, so the site ends up with one next round, and
//! both calls are kept.

use super::*;
use guidedesk::command::calls::record_attempt;
use guidedesk::import::discharges::{ImportOptions, import};
use guidedesk::model::{FollowupSource, FollowupTask};

fn round(store: &Store, n: u32) -> Vec<FollowupTask> {
    store
        .open_followups_due(None)
        .unwrap()
        .into_iter()
        .filter(|t| matches!(t.source, FollowupSource::Chronic { round, .. } if round == n))
        .collect()
}

#[test]
fn a_chronic_round_finished_at_two_desks_apart_plans_one_next_round() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(&Backend::Embedded, &dir.path().join("hq"), 100);
    let desks = OfficeAndLobby::enrol(&hq);
    let (office, lobby) = (&desks.office, &desks.lobby);
    let csv = "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY8,周建国,13800138002,内科,2026-11-22,2型糖尿病\n";
    import(&office.store, csv.as_bytes(), &ImportOptions::default()).unwrap();
    desks.sync();
    let first = round(&lobby.store, 1);
    assert_eq!(first.len(), 1, "the chronic round reached the lobby");
    // Apart (neither syncs), a caller at each desk reaches the patient for the same round.
    let reached = guidedesk::model::CallAttemptForm {
        outcome: Some(guidedesk::model::CallOutcome::Reached),
        ..guidedesk::model::CallAttemptForm::default()
    };
    for (f, who) in [(office, "K001"), (lobby, "K002")] {
        f.store.write(|ctx| record_attempt(ctx, first[0].id, &reached, StaffRef(who.into()))).unwrap();
        assert_eq!(round(&f.store, 2).len(), 1, "each desk plans the next round");
    }
    assert_eq!(round(&office.store, 2)[0].id, round(&lobby.store, 2)[0].id, "under the same derived id");
    desks.sync();
    for f in [office, lobby] {
        assert!(round(&f.store, 1).is_empty(), "the first round is finished everywhere");
        let next = round(&f.store, 2);
        assert_eq!(next.len(), 1, "one next round, not two");
        assert_eq!(f.store.count(RecordKind::CallAttempt).unwrap(), 2, "both calls are kept");
    }
    // At HQ: the two discharge calls, the first round and one second round.
    assert_eq!(hq.store().stats().unwrap().records.get("followup_task").copied(), Some(4));
}

/// Two callers put the same discharged patient on the chronic plan while their desks were apart (one from the first
/// call's task, the other from the second's): the site ends up with one first round, under the id both derived from
/// the discharge's first-call task.
#[test]
fn two_desks_putting_one_patient_on_the_chronic_plan_apart_make_one_round() {
    use guidedesk::command::calls::enrol_chronic;
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(&Backend::Embedded, &dir.path().join("hq"), 100);
    let desks = OfficeAndLobby::enrol(&hq);
    let (office, lobby) = (&desks.office, &desks.lobby);
    let csv = "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\nZY9,吴秀英,13800138003,骨科,2026-11-22,腰椎术后\n";
    import(&office.store, csv.as_bytes(), &ImportOptions::default()).unwrap();
    desks.sync();
    let tasks = lobby.store.open_followups_due(None).unwrap();
    let first = tasks.iter().find(|t| matches!(t.source, FollowupSource::Discharge { .. })).unwrap().id;
    let second = tasks.iter().find(|t| matches!(t.source, FollowupSource::DischargeSecond { .. })).unwrap().id;
    office.store.write(|ctx| enrol_chronic(ctx, first, &StaffRef("K001".into()))).unwrap();
    lobby.store.write(|ctx| enrol_chronic(ctx, second, &StaffRef("K002".into()))).unwrap();
    desks.sync();
    for f in [office, lobby] {
        assert_eq!(round(&f.store, 1).len(), 1, "one first round, not two");
    }
    assert_eq!(round(&office.store, 1)[0].id, round(&lobby.store, 1)[0].id);
    assert_eq!(hq.store().stats().unwrap().records.get("followup_task").copied(), Some(3));
}
