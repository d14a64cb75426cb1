//! Regression tests for finding 7 of the security review, "secrets at rest": HQ's data directory and files were
//! world-readable, PIN hashes were cheap argon2 hashes in clear in the store, the kiosk's HQ credential was in clear
//! in `hq.json`, and a damaged key file made the kiosk panic and print it. See SECURITY.md.

use std::path::Path;
use std::sync::Arc;

use guidedesk::model::ReferenceData;
use guidedesk::model::reference::{Role, Staff};
use guidedesk::store::crypto::StoreKey;
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset};

/// Permission bits of a file or directory.
#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn staff(id: &str, role: Role, pin_hash: &str) -> Staff {
    Staff {
        id: id.into(), name: format!("员工{id}"), role, department: None, pin_hash: pin_hash.into(), active: true
    }
}

/// Writes a key file with mode 0600 (so that only its content is under test).
fn private_key_file(path: &Path, body: &[u8]) {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    std::io::Write::write_all(&mut opts.open(path).unwrap(), body).unwrap();
}

/// Runs `guidedesk stats` on `data_dir` with the key file at `key`.
fn stats_with_key(data_dir: &Path, key: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_guidedesk"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("stats")
        .env_remove("GUIDEDESK_DATA_DIR")
        .env("GUIDEDESK_KEY_FILE", key)
        .output()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// Data directories and files

#[cfg(all(unix, feature = "hq"))]
#[test]
fn finding_7_hq_data_dir_and_files_are_owner_only() {
    use guidedesk::hq::store::HqStore;
    let root = tempfile::tempdir().unwrap();
    // A new data directory and store file.
    let dir = root.path().join("hq-data");
    let store = HqStore::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700, "HQ's data directory");
    assert_eq!(mode(&dir.join("hq.redb")), 0o600, "hq.redb");
    drop(store);
    // Left world-readable by an older version (or a careless copy): tightened at the next open.
    chmod(&dir, 0o755);
    chmod(&dir.join("hq.redb"), 0o644);
    let store = HqStore::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("hq.redb")), 0o600);
    drop(store);

    // The running server's admin endpoint file (its bearer token), even over a stale world-readable temporary file.
    let admin = dir.join("admin.json");
    std::fs::write(dir.join("admin.json.tmp"), b"stale").unwrap();
    chmod(&dir.join("admin.json.tmp"), 0o644);
    let options = guidedesk::hq::server::ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        allow_plain_http: false,
        changelog_keep: 10,
        admin_file: Some(admin.clone()),
    };
    let running = guidedesk::hq::server::start(HqStore::open(&dir).unwrap(), &options).unwrap();
    assert_eq!(mode(&admin), 0o600, "admin.json");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p) & 0o077, 0, "{} is readable by other accounts", p.display());
    }
    running.shutdown().unwrap();
}

#[cfg(unix)]
#[test]
fn finding_7_kiosk_data_dir_and_store_file_are_owner_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("kiosk-data");
    let store = Store::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700, "the kiosk's data directory");
    assert_eq!(mode(store.path()), 0o600, "guidedesk.redb");
    assert_eq!(mode(store.key_path()), 0o600, "guidedesk.key");
    let path = store.path().to_path_buf();
    drop(store);
    chmod(&dir, 0o755);
    chmod(&path, 0o644);
    drop(Store::open(&dir).unwrap());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&path), 0o600);
}

// ---------------------------------------------------------------------------------------------------------------
// PIN hashes

#[test]
fn finding_7_pin_hashes_are_argon2id_64mib_and_sealed_at_rest() {
    let hash = guidedesk::staff::hash_pin("1234").unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{hash}");

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(guidedesk::model::Moment(1_795_399_200_000)));
    let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    // A local first administrator (meta table) and HQ's staff (reference table).
    store.put_local_staff(staff("A001", Role::Administrator, &hash)).unwrap();
    let mut refs = ReferenceData::bundled().unwrap();
    refs.staff = vec![staff("D001", Role::Guide, &hash), staff("K003", Role::Supervisor, &hash)];
    store.apply_reference(refs, "hq").unwrap();
    let all = store.all_staff().unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|s| guidedesk::staff::verify_pin(&s.pin_hash, "1234")));
    let path = store.path().to_path_buf();
    drop(store);

    let raw = std::fs::read(&path).unwrap();
    assert!(!contains(&raw, b"$argon2"), "a PIN hash is readable in the store file");
    assert!(!contains(&raw, b"m=65536"), "a PIN hash's parameters are readable in the store file");
    // Sealed, they still open with the key.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.all_staff().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------------------------
// The kiosk's HQ credential

#[cfg(feature = "hq")]
#[test]
fn finding_7_kiosk_credential_is_sealed_in_hq_json() {
    use guidedesk::hq::store::HqStore;
    use guidedesk::kiosk_sync::{self, SyncOptions};
    let root = tempfile::tempdir().unwrap();
    let options = guidedesk::hq::server::ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        allow_plain_http: false,
        changelog_keep: 10,
        admin_file: None,
    };
    let hq = guidedesk::hq::server::start(HqStore::open(&root.path().join("hq")).unwrap(), &options).unwrap();
    let kdir = root.path().join("kiosk");
    let store = Store::open(&kdir).unwrap();
    let code = hq.store().create_code("main", "d1", guidedesk::hq::server::now_ms(), 3_600_000).unwrap();
    let (cred, path) = kiosk_sync::enroll(&store, &kdir, &hq.url(), &code, None, false).unwrap();
    assert!(cred.token.len() >= 16);
    let token = cred.token.clone();
    let sealed_only = |what: &str| {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "{what}: the bearer token is in clear in hq.json");
        assert!(text.contains("token_sealed"), "{what}: {text}");
    };
    sealed_only("after enrolment");
    assert!(!format!("{cred:?}").contains(&token), "Debug prints the token");
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let opts = SyncOptions { batch: 100, ..SyncOptions::default() };
    assert_eq!(kiosk_sync::sync_once(&store, &kdir, &opts).unwrap().pending, 0);

    // A file written by an older version, token in clear: it still works, and is sealed at its first use.
    let mut old: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let old = old.as_object_mut().unwrap();
    old.retain(|k, _| !k.starts_with("token"));
    old.insert("token".into(), token.clone().into());
    std::fs::write(&path, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    kiosk_sync::sync_once(&store, &kdir, &opts).unwrap();
    sealed_only("after the first use of an old file");

    // A key rotation re-seals it: sync goes on with the new key.
    store.rotate_key().unwrap();
    kiosk_sync::sync_once(&store, &kdir, &opts).unwrap();
    sealed_only("after a key rotation");
    assert!(!std::fs::read_to_string(&path).unwrap().contains("token_sealed_next"));
    drop(store);
    // Without the store key the file is useless: another store cannot open it.
    let odir = root.path().join("other");
    let other = Store::open(&odir).unwrap();
    std::fs::copy(&path, odir.join("hq.json")).unwrap();
    let e = kiosk_sync::sync_once(&other, &odir, &opts).unwrap_err().to_string();
    assert!(e.contains("hq.json") && !e.contains(&token), "{e}");
    hq.shutdown().unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Key files

#[test]
fn finding_7_key_file_with_non_ascii_byte_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("kiosk.key");
    // 61 hex digits, "é" (two bytes), one more digit: 64 bytes, as long as a key, with a character boundary inside
    // the third-last pair.
    let digits = "3f9a".repeat(16);
    let mut line = format!("guidedesk-store-key v1 {}é{}\n", &digits[..61], &digits[63..]);
    assert_eq!(line.len() - "guidedesk-store-key v1 \n".len(), 64);
    private_key_file(&key, line.as_bytes());
    let loaded = std::panic::catch_unwind(|| StoreKey::load(&key).map(|_| ()));
    let e = loaded.expect("loading a key file must not panic").unwrap_err().to_string();
    assert!(e.contains(&*key.to_string_lossy()) && e.contains("non-ASCII"), "{e}");
    assert!(!e.contains(&digits[..16]) && !e.contains('é'), "the error echoes the key: {e}");

    // The same through the command line: one line naming the file, no panic, no key bytes.
    let data = dir.path().join("data");
    let o = stats_with_key(&data, &key);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&*key.to_string_lossy()) && !err.contains("panicked"), "{err}");
    assert!(!err.contains(&digits[..16]), "{err}");

    // A byte that is not UTF-8 at all.
    line = format!("guidedesk-store-key v1 {}", &digits[..63]);
    let mut bytes = line.into_bytes();
    bytes.push(0xff);
    private_key_file(&key, &bytes);
    let e = std::panic::catch_unwind(|| StoreKey::load(&key).map(|_| ())).unwrap().unwrap_err().to_string();
    assert!(e.contains("non-ASCII") && !e.contains(&digits[..16]), "{e}");
}

#[test]
fn finding_7_damaged_key_files_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("kiosk.key");
    let digits = "c0ffee42".repeat(8);
    let huge = format!("# {}\nguidedesk-store-key v1 {digits}\n", "x".repeat(1 << 20));
    let cases: [(&str, Vec<u8>, &str); 7] = [
        ("empty", Vec::new(), "empty"),
        ("truncated", format!("guidedesk-store-key v1 {}", &digits[..20]).into_bytes(), "truncated"),
        ("no key", b"guidedesk-store-key v1\n".to_vec(), "truncated"),
        ("odd hex", format!("guidedesk-store-key v1 {}", &digits[..63]).into_bytes(), "odd number"),
        ("wrong header", format!("guidedesk-store-kee v1 {digits}").into_bytes(), "guidedesk-store-key v1"),
        ("other version", format!("guidedesk-store-key v9 {digits}").into_bytes(), "version"),
        ("huge", huge.into_bytes(), "bytes"),
    ];
    for (what, body, expect) in cases {
        private_key_file(&key, &body);
        let e = std::panic::catch_unwind(|| StoreKey::load(&key).map(|_| ()))
            .unwrap_or_else(|_| panic!("{what}: panicked"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&*key.to_string_lossy()) && e.contains(expect), "{what}: {e}");
        assert!(!e.contains(&digits[..12]), "{what}: the error echoes the key: {e}");
    }
    // A directory where the key file should be.
    let e = StoreKey::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[cfg(unix)]
#[test]
fn finding_7_group_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(&data).unwrap();
    let key = store.key_path().to_path_buf();
    let path = store.path().to_path_buf();
    drop(store);
    let before = std::fs::read(&path).unwrap();
    for loose in [0o640, 0o644, 0o604, 0o660] {
        chmod(&key, loose);
        let Err(e) = Store::open(&data).map(drop) else { panic!("a key file with mode {loose:04o} was accepted") };
        let e = e.to_string();
        let shown = format!("{loose:04o}");
        assert!(e.contains(&*key.to_string_lossy()) && e.contains(&shown), "{e}");
        assert!(e.contains(&format!("chmod 600 {}", key.display())), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "the store was touched");
        let o = stats_with_key(&data, &key);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("UNPROTECTED") && err.contains("chmod 600"), "{err}");
    }
    chmod(&key, 0o600);
    drop(Store::open(&data).unwrap());
    chmod(&key, 0o400);
    drop(Store::open(&data).unwrap());
}

#[cfg(all(unix, feature = "hq"))]
#[test]
fn finding_7_group_readable_reports_token_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("reports.token");
    std::fs::write(&token, "r3p0rts-t0ken-r3p0rts-t0ken-r3p0rts-t0ken\n").unwrap();
    chmod(&token, 0o644);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_guidedesk-hq"))
        .arg("--data-dir")
        .arg(dir.path().join("hq"))
        .args(["serve", "--listen", "127.0.0.1:0", "--reports-token-file"])
        .arg(&token)
        .env_remove("GUIDEDESK_HQ_DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let status = status.unwrap_or_else(|| panic!("HQ started with a world-readable reporting token file: {err}"));
    assert!(!status.success());
    assert!(err.contains("reports.token") && err.contains("0644") && err.contains("chmod 600"), "{err}");
    assert!(!err.contains("r3p0rts"), "{err}");
}
