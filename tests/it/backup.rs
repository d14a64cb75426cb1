//! Backups and restores: consistent copies while the store is in use, restores that refuse to lose newer data, and
//! sync after a restore (through a real in-process HQ when the `hq` feature is on).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use guidedesk::model::{ArrivalChannel, ArrivalForm, Moment, RecordId, Sex, StaffRef, VisitType};
use guidedesk::store::backup::{self, BackupError, BackupServer};
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset};

fn options(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions { clock: clock.clone(), utc_offset: china_offset() }
}

/// The keys of a restore into `dir` with the store's default key file.
fn own_key(dir: &Path) -> std::path::PathBuf {
    dir.join("guidedesk.key")
}

fn keys(store_key: &Path) -> backup::RestoreKeys<'_> {
    backup::RestoreKeys { store_key, backup_key: None }
}

fn open(dir: &Path) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Moment(1_767_225_600_000)));
    (Store::open_with(dir, options(&clock)).unwrap(), clock)
}

/// Arrivals `from..from + n` (phones `138<k:08>`), one transaction each, through the desk's write path.
pub fn write_arrivals(store: &Store, from: usize, n: usize) -> Vec<RecordId> {
    let dept = store.reference().departments[0].id.clone();
    (from..from + n)
        .map(|k| {
            store
                .write(|ctx| {
                    let form = ArrivalForm {
                        name: format!("备份测试{k}"),
                        sex: Some(Sex::Male),
                        visit_type: Some(VisitType::First),
                        channel: Some(ArrivalChannel::WalkIn),
                        complaint: "咳嗽".into(),
                        department: dept.clone(),
                        phone: format!("138{k:08}"),
                        ..ArrivalForm::default()
                    };
                    let draft = form.validate(ctx.reference(), ctx.today())?;
                    let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
                    ctx.put(&draft.into_record(id, at, StaffRef("D001".into()), stamp))?;
                    Ok(id)
                })
                .unwrap()
        })
        .collect()
}

#[test]
fn backup_while_writing_is_a_consistent_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = open(&dir.path().join("kiosk"));
    write_arrivals(&store, 0, 20);
    let store = Arc::new(store);
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || write_arrivals(&store, 100, 40))
    };
    let out = dir.path().join("b1.redb");
    let info = store.backup_to(&out).unwrap();
    writer.join().unwrap();
    assert!(info.records >= 20 && info.records <= 60, "{info:?}");
    assert!(!dir.path().join("b1.redb.partial").exists());
    // The copy opens as a store, passes every check, and holds exactly the records of its last op.
    let restored_dir = dir.path().join("restored");
    std::fs::create_dir_all(&restored_dir).unwrap();
    std::fs::copy(&out, restored_dir.join(guidedesk::store::FILE_NAME)).unwrap();
    // The copy is sealed with the store's key: without it, it does not open.
    assert!(Store::open_with(&restored_dir, options(&Arc::new(ManualClock::new(Moment(0))))).is_err());
    std::fs::copy(store.key_path(), own_key(&restored_dir)).unwrap();
    let (copy, _) = open(&restored_dir);
    assert_eq!(copy.check().unwrap(), Vec::<String>::new());
    let s = copy.stats().unwrap();
    assert_eq!(s.outbox_last_seq, info.last_seq);
    assert_eq!(s.records["arrival"], info.records);
    assert_eq!(s.device, store.stats().unwrap().device);
}

#[test]
fn restore_refuses_a_newer_store_and_garbage_and_keeps_the_replaced_one() {
    let dir = tempfile::tempdir().unwrap();
    let kiosk = dir.path().join("kiosk");
    let (store, clock) = open(&kiosk);
    write_arrivals(&store, 0, 5);
    let out = dir.path().join("b.redb");
    store.backup_to(&out).unwrap();
    write_arrivals(&store, 5, 3);
    drop(store);

    // A newer current store is not replaced without --force.
    let err = backup::restore(&kiosk, &out, false, &options(&clock), keys(&own_key(&kiosk))).unwrap_err();
    assert!(matches!(err, BackupError::CurrentIsNewer { current_seq: 8, backup_seq: 5, .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    // Garbage is refused and nothing is touched.
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let err = backup::restore(&kiosk, &junk, true, &options(&clock), keys(&own_key(&kiosk))).unwrap_err();
    assert!(matches!(err, BackupError::Invalid { .. }), "{err}");
    let (store, _) = open(&kiosk);
    assert_eq!(store.stats().unwrap().outbox_last_seq, 8);
    drop(store);

    let r = backup::restore(&kiosk, &out, true, &options(&clock), keys(&own_key(&kiosk))).unwrap();
    assert_eq!((r.records, r.last_seq), (5, 5));
    let kept = r.replaced.expect("the replaced store is kept");
    assert!(kept.exists());
    let (store, _) = open(&kiosk);
    assert_eq!(store.stats().unwrap().outbox_last_seq, 5);
    assert_eq!(store.restored_through().unwrap(), Some(5));
    assert!(store.check().unwrap().is_empty());
    assert!(!kiosk.join(".restore").exists());
}

#[test]
fn restore_refuses_another_kiosks_backup_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let (a, clock) = open(&dir.path().join("a"));
    write_arrivals(&a, 0, 2);
    let out = dir.path().join("a.redb");
    a.backup_to(&out).unwrap();
    let (b, _) = open(&dir.path().join("b"));
    drop(b);
    let b_dir = dir.path().join("b");
    let b_key = own_key(&b_dir);
    // Sealed with kiosk A's key: refused by name until that key is given.
    let err = backup::restore(&b_dir, &out, false, &options(&clock), keys(&b_key)).unwrap_err();
    assert!(err.to_string().contains("key"), "{err}");
    let a_key = own_key(&dir.path().join("a"));
    let with_a = backup::RestoreKeys { store_key: &b_key, backup_key: Some(&a_key) };
    let err = backup::restore(&b_dir, &out, false, &options(&clock), with_a).unwrap_err();
    assert!(matches!(err, BackupError::OtherDevice { .. }), "{err}");
    // Forced, the store and A's key take B's place; B's key is kept beside.
    let r = backup::restore(&b_dir, &out, true, &options(&clock), with_a).unwrap();
    assert!(r.other_device);
    assert_eq!(std::fs::read(&b_key).unwrap(), std::fs::read(&a_key).unwrap());
    let (restored, _) = open(&b_dir);
    assert_eq!(restored.stats().unwrap().records.values().sum::<u64>(), 2);
    assert!(restored.check().unwrap().is_empty());
}

#[test]
fn cli_backup_while_the_kiosk_holds_the_store_is_written_by_the_kiosk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kiosk");
    let (store, _) = open(&data);
    write_arrivals(&store, 0, 4);
    let store = Arc::new(store);
    let server = BackupServer::spawn(Arc::clone(&store), data.clone(), Duration::from_millis(50)).unwrap();
    let out = dir.path().join("running.redb");
    let o = crate::guidedesk(&data, &["backup", "--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout} {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("kiosk is running"));
    assert!(stdout.contains("4 records"), "{stdout}");
    drop(server);
    // Restoring it into a fresh data directory through the CLI works, and the result passes `guidedesk check`.
    let fresh = dir.path().join("fresh");
    let o = crate::guidedesk(&fresh, &["restore", out.to_str().unwrap()]);
    assert!(!o.status.success(), "a sealed backup needs its key");
    assert!(String::from_utf8_lossy(&o.stderr).contains("key file"), "{}", String::from_utf8_lossy(&o.stderr));
    let key = store.key_path().to_str().unwrap().to_owned();
    let o = crate::guidedesk(&fresh, &["restore", out.to_str().unwrap(), "--key", &key]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(own_key(&fresh)).unwrap(), std::fs::read(store.key_path()).unwrap());
    let o = crate::guidedesk(&fresh, &["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // The live store (still open here) refuses a restore while in use.
    let o = crate::guidedesk(&data, &["restore", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("in use"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn cli_check_exits_non_zero_on_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kiosk");
    let (store, _) = open(&data);
    write_arrivals(&store, 0, 2);
    drop(store);
    let o = crate::guidedesk(&data, &["check"]);
    assert!(o.status.success());
    // Damage an index behind the store's back.
    {
        let db = redb::Database::open(data.join(guidedesk::store::FILE_NAME)).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(guidedesk::store::tables::IDX_PHONE).unwrap().insert(("13900000000", 1u16, 7u128), ()).unwrap();
        tx.commit().unwrap();
    }
    let o = crate::guidedesk(&data, &["check"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("idx_phone"), "{}", String::from_utf8_lossy(&o.stdout));
}

#[cfg(feature = "hq")]
mod with_hq {
    use super::*;
    use guidedesk::hq::server::{self, ServeOptions};
    use guidedesk::hq::store::HqStore;
    use guidedesk::kiosk_sync::{self, SyncOptions};
    use guidedesk::model::RecordKind;

    fn sync_options() -> SyncOptions {
        SyncOptions {
            batch: 4,
            retry: guidedesk_sync::replicate::RetryPolicy {
                attempts: 2,
                base: Duration::from_millis(5),
                cap: Duration::from_millis(20),
            },
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            retain_acked: Duration::from_hours(30 * 24),
        }
    }

    /// A kiosk syncs, is backed up, writes and syncs more, loses its disk, is restored from the older backup and
    /// writes again before its next sync. Afterwards HQ holds every record (the ones only HQ kept and the new ones),
    /// exactly one receipt per sequence number, and the kiosk's store passes its checks.
    #[test]
    fn restore_from_an_older_backup_then_sync_loses_nothing_and_sends_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let hq = server::start(
            HqStore::open(&dir.path().join("hq")).unwrap(),
            &ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: None,
                allow_plain_http: false,
                changelog_keep: 100,
                admin_file: None,
            },
        )
        .unwrap();
        let kiosk = dir.path().join("kiosk");
        let clock = Arc::new(ManualClock::new(Moment(i64::try_from(server::now_ms()).unwrap())));
        let store = Store::open_with(&kiosk, options(&clock)).unwrap();
        let code = hq.store().create_code("S1", "D1", server::now_ms(), 3_600_000).unwrap();
        let (cred, _) = kiosk_sync::enroll(&store, &kiosk, &hq.url(), &code, None, false).unwrap();
        let before = write_arrivals(&store, 0, 6);
        assert_eq!(kiosk_sync::sync_with(&store, &cred, &sync_options()).unwrap().pending, 0);
        let out = dir.path().join("nightly.redb");
        store.backup_to(&out).unwrap();
        let only_at_hq = write_arrivals(&store, 6, 5);
        assert_eq!(kiosk_sync::sync_with(&store, &cred, &sync_options()).unwrap().pending, 0);
        drop(store);
        // The disk dies: the store is gone; the backup is restored onto a new disk.
        std::fs::remove_file(kiosk.join(guidedesk::store::FILE_NAME)).unwrap();
        let r = backup::restore(&kiosk, &out, false, &options(&clock), keys(&own_key(&kiosk))).unwrap();
        assert_eq!(r.last_seq, 6);
        let store = Store::open_with(&kiosk, options(&clock)).unwrap();
        // The desk works before the network is back: these ops get numbers 7.. that HQ holds for other records.
        let after = write_arrivals(&store, 20, 3);

        let report = kiosk_sync::sync_with(&store, &cred, &sync_options()).unwrap();
        assert_eq!(report.pending, 0);
        assert_eq!(report.applied, 3, "only the ops written after the restore are new at HQ: {report:?}");
        assert_eq!(report.duplicates, 0, "nothing is sent twice: {report:?}");
        let s = store.stats().unwrap();
        assert_eq!((s.outbox_last_seq, s.outbox_acked_seq), (14, 14));
        assert_eq!(store.restored_through().unwrap(), None);
        assert_eq!(store.seq_jumps().unwrap(), vec![(7, 12)]);
        assert_eq!(store.check().unwrap(), Vec::<String>::new());

        let hq_store = hq.store();
        for id in before.iter().chain(&only_at_hq).chain(&after) {
            assert!(hq_store.record(RecordKind::Arrival, id.as_u128()).unwrap().is_some(), "{id} lost at HQ");
        }
        let receipts: Vec<u64> =
            hq_store.receipts().unwrap().into_iter().filter(|(k, _)| k.0 == store.device()).map(|(k, _)| k.1).collect();
        assert_eq!(receipts, (1..=14).collect::<Vec<_>>());
        assert_eq!(hq_store.device(store.device()).unwrap().unwrap().last_seq, 14);
        // A second cycle has nothing to do.
        let again = kiosk_sync::sync_with(&store, &cred, &sync_options()).unwrap();
        assert_eq!((again.applied, again.duplicates, again.batches), (0, 0, 0));
    }
}

#[test]
fn cli_restore_of_an_older_backup_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kiosk");
    let (store, _) = open(&data);
    write_arrivals(&store, 0, 2);
    drop(store);
    let out = dir.path().join("old.redb");
    let o = crate::guidedesk(&data, &["backup", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (store, _) = open(&data);
    write_arrivals(&store, 2, 1);
    drop(store);
    let o = crate::guidedesk(&data, &["restore", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("newer than the backup") && err.contains("--force"), "{err}");
    let o = crate::guidedesk(&data, &["restore", out.to_str().unwrap(), "--force"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("restored 2 records") && stdout.contains("replaced store is kept"), "{stdout}");
    // The two arrivals of the backup, then the restore's own audit entry.
    let o = crate::guidedesk(&data, &["stats", "--json"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"outbox_last_seq\": 3"));
    let (store, _) = open(&data);
    let last = store.chain::<guidedesk::model::AuditEntry>().unwrap().pop().unwrap();
    assert_eq!((last.action, last.detail.as_str()), (guidedesk::model::AuditAction::Change, "restore: 2 records"));
}
