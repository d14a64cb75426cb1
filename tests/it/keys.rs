//! The store key from the command line: location (default, config.toml, environment), rotation, missing key.

use std::path::Path;
use std::process::{Command, Output};

fn run(data_dir: &Path, key_env: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guidedesk"));
    c.arg("--data-dir").arg(data_dir).args(args).env_remove("GUIDEDESK_DATA_DIR").env_remove("GUIDEDESK_KEY_FILE");
    if let Some(k) = key_env {
        c.env("GUIDEDESK_KEY_FILE", k);
    }
    c.output().expect("the guidedesk binary runs")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "command failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn key_id(out: &str) -> String {
    out.rsplit("key id ").next().unwrap().trim().to_string()
}

#[test]
fn rotate_show_and_a_missing_key_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(d, None, &["demo", "--days", "2", "--per-day", "20"]));
    let key = d.join("guidedesk.key");
    assert!(key.exists());
    let first = key_id(&ok(&run(d, None, &["key", "show"])));
    let before = ok(&run(d, None, &["export", "--kind", "arrival", "--format", "json"]));
    let out = ok(&run(d, None, &["key", "rotate"]));
    assert!(out.contains("re-encrypted") && out.contains(&first), "{out}");
    let second = key_id(&ok(&run(d, None, &["key", "show"])));
    assert_ne!(first, second);
    assert_eq!(ok(&run(d, None, &["export", "--kind", "arrival", "--format", "json"])), before);
    ok(&run(d, None, &["check"]));

    std::fs::rename(&key, d.join("elsewhere.key")).unwrap();
    let o = run(d, None, &["stats"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is encrypted but its key file") && err.contains("guidedesk.key"), "{err}");
    assert!(!key.exists(), "no new key was made");
    // The environment variable points at the key wherever it is.
    let out = ok(&run(d, Some(&d.join("elsewhere.key")), &["key", "show"]));
    assert_eq!(key_id(&out), second);
}

#[test]
fn key_file_location_from_config_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("config.toml"), "[store]\nkey_file = \"keys/kiosk.key\"\n").unwrap();
    ok(&run(d, None, &["stats"]));
    assert!(d.join("keys/kiosk.key").exists());
    assert!(!d.join("guidedesk.key").exists());

    let other = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    let env_key = media.path().join("usb.key");
    ok(&run(other.path(), Some(&env_key), &["stats"]));
    assert!(env_key.exists());
    assert!(!other.path().join("guidedesk.key").exists());
}
