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
    // A privileged user (root in a container) writes through permission bits; the condition cannot be made here.
    let probe = data.join("probe");
    if std::fs::write(&probe, b"").is_ok() {
        let _ = std::fs::remove_file(&probe);
        eprintln!("skipped: this user can write to a 0555 directory");
        return;
    }
    let o = crate::guidedesk(&data, &["stats"]);
    let err = String::from_utf8_lossy(&o.stderr);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!o.status.success());
    assert!(err.contains("read-only") && err.contains(&*data.to_string_lossy()), "{err}");
}
