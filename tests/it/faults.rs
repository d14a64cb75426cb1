//! Resource faults at start-up: a data directory that is missing and cannot be made, that is not a directory, or
//! that is read-only gives a clear error naming the path, and nothing is written.

#[test]
fn data_directory_that_cannot_be_created_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file where a directory should be").unwrap();
    let data = blocker.join("guidedesk");
    let o = crate::guidedesk(&data, &["stats"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(&*data.to_string_lossy()) || err.contains(&*blocker.to_string_lossy()), "{err}");
    assert!(err.contains("cannot be used") || err.contains("directory"), "{err}");
}

#[test]
fn data_directory_that_is_a_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, b"x").unwrap();
    let o = crate::guidedesk(&file, &["stats"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(&*file.to_string_lossy()), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x", "the file is left alone");
}

#[cfg(unix)]
#[test]
fn read_only_data_directory_is_refused_with_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ro");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    // A privileged user (root in a container) writes through permission bits: the kiosk is then run as the
    // unprivileged `nobody` account (setpriv), for which the directory really is read-only.
    let probe = data.join("probe");
    let privileged = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    let o = if privileged {
        if !std::path::Path::new("/usr/bin/setpriv").exists() {
            eprintln!("skipped: this user writes through permission bits and setpriv is not installed");
            return;
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::process::Command::new("/usr/bin/setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_guidedesk"))
            .arg("--data-dir")
            .arg(&data)
            .arg("stats")
            .env_remove("GUIDEDESK_DATA_DIR")
            .output()
            .unwrap()
    } else {
        crate::guidedesk(&data, &["stats"])
    };
    let err = String::from_utf8_lossy(&o.stderr);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!o.status.success());
    assert!(err.contains("read-only") && err.contains(&*data.to_string_lossy()), "{err}");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0, "nothing was written");
}

// ---------------------------------------------------------------------------------------------------------------
// A full disk (injected through a redb storage backend that fails writes once its byte budget is spent)

mod full_disk {
    use std::sync::Arc;

    use egui::accesskit::Role;
    use guidedesk::model::reference::{Role as StaffRole, Staff};
    use guidedesk::model::{ArrivalChannel, ArrivalForm, Moment, RecordKind, Sex, StaffRef, VisitType};
    use guidedesk::store::faults::DiskSpace;
    use guidedesk::store::{ManualClock, Store, StoreError, StoreOptions, china_offset};

    use egui_kittest::kittest::Queryable as _;

    use crate::ui::{button, harness, sign_in, type_into};

    fn options(clock: &Arc<ManualClock>) -> StoreOptions {
        StoreOptions { clock: clock.clone(), utc_offset: china_offset() }
    }

    fn arrival(store: &Store, k: u32) -> Result<(), StoreError> {
        let dept = store.reference().departments[0].id.clone();
        store.write(|ctx| {
            let form = ArrivalForm {
                name: format!("满盘{k}"),
                sex: Some(Sex::Female),
                visit_type: Some(VisitType::First),
                channel: Some(ArrivalChannel::WalkIn),
                complaint: "头晕".into(),
                department: dept.clone(),
                phone: format!("136{k:08}"),
                ..ArrivalForm::default()
            };
            let draft = form.validate(ctx.reference(), ctx.today())?;
            let (id, at, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
            ctx.put(&draft.into_record(id, at, StaffRef("D001".into()), stamp))
        })
    }

    #[test]
    fn store_write_fails_visibly_stays_consistent_and_recovers_when_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(Moment(1_767_225_600_000)));
        let space = DiskSpace::new(u64::MAX);
        let store = Store::open_on_limited_disk(dir.path(), options(&clock), space.clone()).unwrap();
        for k in 0..3 {
            arrival(&store, k).unwrap();
        }
        space.fill();
        let err = arrival(&store, 3).unwrap_err();
        assert!(matches!(err, StoreError::Storage(_)), "{err}");
        assert!(err.to_string().contains("no space left"), "{err}");
        // Later writes keep failing cleanly while the disk is full, and the store stays as it was.
        assert!(arrival(&store, 4).is_err());
        assert_eq!(store.count(RecordKind::Arrival).unwrap(), 3);
        assert_eq!(store.stats().unwrap().outbox_last_seq, 3);
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
        // Space returns. redb refuses every write after an I/O error until the database is opened again (it cannot
        // know what reached the disk), so the kiosk must be restarted; reads keep working meanwhile.
        space.free();
        assert!(arrival(&store, 5).is_err(), "redb stays refusing writes until reopened");
        assert_eq!(store.count(RecordKind::Arrival).unwrap(), 3);
        drop(store);
        let store = Store::open_on_limited_disk(dir.path(), options(&clock), space.clone()).unwrap();
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
        arrival(&store, 5).unwrap();
        assert_eq!(store.stats().unwrap().outbox_last_seq, 4, "the next sequence number, no gap, none reused");
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
        drop(store);
        // And the file opens normally afterwards.
        let store = Store::open_with(dir.path(), options(&clock)).unwrap();
        assert_eq!(store.count(RecordKind::Arrival).unwrap(), 4);
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn registration_on_a_full_disk_shows_the_error_and_keeps_the_form() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(Moment(crate::ui::T0)));
        let space = DiskSpace::new(u64::MAX);
        let store = Store::open_on_limited_disk(dir.path(), options(&clock), space.clone()).unwrap();
        let mut r = (*store.reference()).clone();
        r.staff = vec![Staff {
            id: "D001".into(),
            name: "陈晓燕".into(),
            role: StaffRole::Guide,
            department: None,
            pin_hash: guidedesk::staff::hash_pin("1234").unwrap(),
            active: true,
        }];
        store.apply_reference(r, "test").unwrap();
        let store = Arc::new(store);
        let mut h = harness(&store);
        sign_in(&mut h, "陈晓燕");
        type_into(&mut h, Role::TextInput, "姓名", "赵丽华");
        button(&mut h, "女");
        type_into(&mut h, Role::TextInput, "电话", "13800138000");
        button(&mut h, "初诊");
        button(&mut h, "自行来院");
        type_into(&mut h, Role::MultilineTextInput, "主诉", "胸闷两天");
        button(&mut h, "★ 心血管内科");
        space.fill();
        button(&mut h, "登记");
        assert!(h.query_by_label_contains("保存失败，已填写的内容仍保留").is_some(), "the failure is shown");
        assert_eq!(h.state().register_form().name, "赵丽华", "the typed form is kept");
        assert_eq!(h.state().register_form().phone, "13800138000");
        assert_eq!(store.count(RecordKind::Arrival).unwrap(), 0);
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
        // A second tap fails the same way and still keeps the form (redb needs a restart after an I/O error).
        space.free();
        button(&mut h, "登记");
        assert!(h.query_by_label_contains("保存失败，已填写的内容仍保留").is_some());
        assert_eq!(h.state().register_form().name, "赵丽华");
        assert_eq!(store.count(RecordKind::Arrival).unwrap(), 0);
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
    }
}
