//! The blind-index backlog of a catch-up: lookups and checks are exact while it waits, every other writer settles
//! it first, it is bounded, and a store left with one rebuilds its indexes at open.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::model::{FollowupSource, FollowupTask, RecordId};

const T0: i64 = 1_795_399_200_000;

fn fresh() -> (tempfile::TempDir, Arc<ManualClock>, Store) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = open(dir.path(), &clock);
    (dir, clock, store)
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Store {
    Store::open_with(dir, StoreOptions { clock: clock.clone(), utc_offset: china_offset() }).unwrap()
}

/// Another desk's open follow-up task for `name` and `phone`, as HQ relays it.
fn relayed(clock: &ManualClock, name: &str, phone: &str) -> (FollowupTask, RemoteRecord) {
    clock.advance(1_000);
    let at = clock.now();
    let day = at.local_date(china_offset());
    let mut task = super::sync_tests::discharge_task(at);
    task.source = FollowupSource::Discharge { his_key: format!("ZY-{phone}"), discharged_on: day, diagnosis: None };
    task.patient_name = name.into();
    task.phone = phone.into();
    let remote = super::sync_tests::from_desk_d2(AnyRecord::FollowupTask(task.clone()), at, 0);
    (task, remote)
}

/// Entries in the phone index table itself (not counting the backlog).
fn phone_rows(store: &Store) -> u64 {
    let tx = store.db.begin_read().unwrap();
    redb::ReadableTableMetadata::len(&tx.open_table(tables::IDX_PHONE).unwrap()).unwrap()
}

fn marked(store: &Store) -> bool {
    let tx = store.db.begin_read().unwrap();
    tx.open_table(tables::META).unwrap().get(meta::BLIND_BACKLOG).unwrap().is_some()
}

fn ids(found: &[(String, RecordKind, RecordId)]) -> Vec<RecordId> {
    found.iter().map(|f| f.2).collect()
}

#[test]
fn catch_up_entries_are_found_while_they_wait_and_any_other_writer_settles_them_first() {
    let (_dir, clock, store) = fresh();
    let (zhang, r_zhang) = relayed(&clock, "张三", "13800000001");
    let (li, r_li) = relayed(&clock, "李四", "13800000002");
    let applied = store.apply_remote_catch_up(&[r_zhang, r_li], "records", 2).unwrap();
    assert_eq!(applied.new, 2);
    // One phone and two name prefixes each, in memory; the tables have none of them yet, the mark is set.
    assert_eq!(store.blind_backlog_len(), 6);
    assert_eq!(phone_rows(&store), 0);
    assert!(marked(&store));
    // Lookups and the consistency check see them all the same.
    assert_eq!(store.find_by_phone("13800000001").unwrap(), [(RecordKind::FollowupTask, zhang.id)]);
    assert_eq!(ids(&store.find_by_name_prefix("李", 10).unwrap()), [li.id]);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());

    // A second page adds to the backlog; a record of the same name is found with the first.
    let (feng, r_feng) = relayed(&clock, "张三丰", "13800000003");
    store.apply_remote_catch_up(&[r_feng], "records", 3).unwrap();
    assert_eq!(store.blind_backlog_len(), 10, "a phone and three name prefixes more");
    assert_eq!(ids(&store.find_by_name_prefix("张三", 10).unwrap()), [zhang.id, feng.id]);

    // A desk's own write settles the backlog inside its transaction before its own change.
    let mut own = relayed(&clock, "张三", "13800000001").0;
    own.source = FollowupSource::Discharge {
        his_key: "ZY-own".into(),
        discharged_on: clock.now().local_date(china_offset()),
        diagnosis: None,
    };
    store.write(|ctx| ctx.put(&own)).unwrap();
    assert_eq!(store.blind_backlog_len(), 0);
    assert!(!marked(&store));
    assert_eq!(phone_rows(&store), 4);
    let mut by_phone = store.find_by_phone("13800000001").unwrap();
    by_phone.sort();
    let mut expect = vec![(RecordKind::FollowupTask, zhang.id), (RecordKind::FollowupTask, own.id)];
    expect.sort();
    assert_eq!(by_phone, expect);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());

    // A page that is not part of a catch-up settles what waits, too.
    let (wang, r_wang) = relayed(&clock, "王五", "13800000004");
    store.apply_remote_catch_up(&[r_wang], "records", 4).unwrap();
    assert_eq!(store.blind_backlog_len(), 3);
    let (wang6, r_wang6) = relayed(&clock, "王六", "13800000005");
    store.apply_remote_page(&[r_wang6], "records", 5).unwrap();
    assert_eq!(store.blind_backlog_len(), 0);
    assert_eq!(ids(&store.find_by_name_prefix("王", 10).unwrap()), [wang.id, wang6.id]);

    // And the end of a run settles the rest.
    let (zhao, r_zhao) = relayed(&clock, "赵七", "13800000006");
    store.apply_remote_catch_up(&[r_zhao], "records", 6).unwrap();
    assert_eq!(store.settle_blind_backlog().unwrap(), 3);
    assert_eq!(store.settle_blind_backlog().unwrap(), 0);
    assert_eq!(store.find_by_phone("13800000006").unwrap(), [(RecordKind::FollowupTask, zhao.id)]);
    assert!(!marked(&store));
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    assert_eq!(store.pull_cursor("records").unwrap(), 6);
}

#[test]
fn a_catch_up_page_that_leaves_no_entry_waiting_leaves_no_mark() {
    let (dir, clock, store) = fresh();
    store.apply_remote_catch_up::<RemoteRecord>(&[], "records", 7).unwrap();
    assert_eq!(store.pull_cursor("records").unwrap(), 7);
    assert!(!marked(&store), "nothing waits, so nothing is to be rebuilt at the next open");
    drop(store);
    assert!(!marked(&open(dir.path(), &clock)));
}

#[test]
fn a_catch_up_page_settles_the_backlog_once_it_passes_the_cap() {
    let (_dir, clock, mut store) = fresh();
    store.backlog_cap = 4;
    let (_, r1) = relayed(&clock, "张三", "13800000001");
    store.apply_remote_catch_up(&[r1], "records", 1).unwrap();
    assert_eq!(store.blind_backlog_len(), 3);
    let (b, r2) = relayed(&clock, "李四", "13800000002");
    store.apply_remote_catch_up(&[r2], "records", 2).unwrap();
    assert_eq!(store.blind_backlog_len(), 0, "six entries pass a cap of four: the page settled them");
    assert_eq!(phone_rows(&store), 2);
    assert!(!marked(&store));
    assert_eq!(store.find_by_phone("13800000002").unwrap(), [(RecordKind::FollowupTask, b.id)]);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
}

#[test]
fn a_store_left_with_a_backlog_rebuilds_its_indexes_at_open() {
    let (dir, clock, store) = fresh();
    let (a, ra) = relayed(&clock, "张三", "13800000001");
    store.apply_remote_catch_up(&[ra], "records", 1).unwrap();
    // A durable commit that does not touch the blind indexes (new reference data) makes the page durable with its
    // mark; then the process ends before the run is settled.
    store.apply_reference((*store.reference()).clone(), "hq").unwrap();
    assert!(marked(&store));
    drop(store);
    let store = open(dir.path(), &clock);
    assert!(!marked(&store));
    assert_eq!(store.blind_backlog_len(), 0);
    assert_eq!(phone_rows(&store), 1);
    assert_eq!(store.find_by_phone("13800000001").unwrap(), [(RecordKind::FollowupTask, a.id)]);
    assert_eq!(ids(&store.find_by_name_prefix("张三", 5).unwrap()), [a.id]);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    assert_eq!(store.pull_cursor("records").unwrap(), 1);
}

#[test]
fn rebuilding_the_indexes_takes_in_the_backlog() {
    let (_dir, clock, store) = fresh();
    let (a, ra) = relayed(&clock, "张三", "13800000001");
    store.apply_remote_catch_up(&[ra], "records", 1).unwrap();
    store.rebuild_indexes().unwrap();
    assert_eq!(store.blind_backlog_len(), 0);
    assert!(!marked(&store));
    assert_eq!(store.find_by_phone("13800000001").unwrap(), [(RecordKind::FollowupTask, a.id)]);
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
}

#[test]
fn a_packed_entry_gives_back_its_key_and_id_and_sorts_as_the_index_does() {
    use super::backlog::{BlindOp, BlindTable};
    let keys = store_keys();
    let (k1, k2) = (keys.blind("phone", "13800000001"), keys.blind("phone", "13800000002"));
    let (id1, id2) = (0x0123_u128 << 100, 0x0124_u128);
    let a = BlindOp::new(BlindTable::Name, &k1, 5, id1, true).unwrap();
    assert_eq!(
        (a.key_hex().as_slice(), a.kind(), a.id(), a.table(), a.insert()),
        (k1.as_bytes(), 5, id1, BlindTable::Name, true)
    );
    let b = BlindOp::new(BlindTable::Phone, &k2, 5, id2, false).unwrap();
    assert_eq!((b.key_hex().as_slice(), b.id(), b.table(), b.insert()), (k2.as_bytes(), id2, BlindTable::Phone, false));
    // The order the backlog settles in is the index's (key text, kind, id) order.
    let mut packed = [(k1.clone(), id2), (k1.clone(), id1), (k2.clone(), id1)]
        .map(|(k, id)| BlindOp::new(BlindTable::Phone, &k, 5, id, true).unwrap());
    let mut plain = packed.map(|o| (String::from_utf8(o.key_hex().to_vec()).unwrap(), o.kind(), o.id()));
    plain.sort();
    packed.sort_by(|x, y| x.sort_key().cmp(&y.sort_key()));
    assert_eq!(packed.map(|o| (String::from_utf8(o.key_hex().to_vec()).unwrap(), o.kind(), o.id())), plain);
    // Anything but 32 lowercase hex digits is refused.
    assert!(BlindOp::new(BlindTable::Phone, "abc", 5, 1, true).is_err());
    assert!(BlindOp::new(BlindTable::Phone, &"G".repeat(32), 5, 1, true).is_err());
}

fn store_keys() -> std::sync::Arc<crypto::Keys> {
    let (_dir, _clock, store) = fresh();
    store.keys()
}

#[test]
fn a_store_closed_right_after_a_catch_up_page_opens_consistent() {
    let (dir, clock, store) = fresh();
    let (zhang, r_zhang) = relayed(&clock, "张三", "13800000001");
    store.apply_remote_catch_up(&[r_zhang], "records", 1).unwrap();
    // The page was committed without waiting for the disk and nothing settled it: on reopen it is either there
    // with its cursor and findable, or gone with its cursor (to be pulled again) — never half.
    drop(store);
    let store = open(dir.path(), &clock);
    assert!(!marked(&store));
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    let held = store.get::<FollowupTask>(zhang.id).unwrap().is_some();
    assert_eq!(store.pull_cursor("records").unwrap(), u64::from(held));
    let found = store.find_by_phone("13800000001").unwrap();
    assert_eq!(found, if held { vec![(RecordKind::FollowupTask, zhang.id)] } else { vec![] });
}

#[test]
fn writers_racing_catch_up_pages_and_settling_keep_the_indexes_exact() {
    let (_dir, clock, store) = fresh();
    // Made up front, so every record has its own time and id.
    let pages: Vec<Vec<RemoteRecord>> =
        (0..30).map(|p| (0..4).map(|i| relayed(&clock, "张三", &format!("1390000{p:02}{i:02}")).1).collect()).collect();
    let own: Vec<FollowupTask> = (0..30).map(|i| relayed(&clock, "李四", &format!("1370000{i:04}")).0).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for (n, page) in pages.iter().enumerate() {
                store.apply_remote_catch_up(page, "records", n as u64 + 1).unwrap();
                // A purge settles too, without the clock's lock a desk's own write takes.
                if n % 3 == 2 {
                    store.purge_replicas(false).unwrap();
                }
            }
        });
        s.spawn(|| {
            for task in &own {
                store.write(|ctx| ctx.put(task)).unwrap();
            }
        });
    });
    store.settle_blind_backlog().unwrap();
    assert_eq!(store.blind_backlog_len(), 0);
    assert!(!marked(&store));
    assert!(store.check().unwrap().is_empty(), "{:?}", store.check().unwrap());
    assert_eq!(store.find_by_name_prefix("张三", 500).unwrap().len(), 120);
    assert_eq!(store.find_by_name_prefix("李四", 500).unwrap().len(), 30);
    assert_eq!(store.find_by_phone("13900002903").unwrap().len(), 1);
}
