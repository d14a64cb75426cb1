//! The CLI: demo data, stats and exports agree; bad input gives one clear line and a non-zero exit.

use std::collections::BTreeMap;

use crate::guidedesk;

fn stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "command failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

#[test]
fn demo_stats_and_export_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = stdout(&guidedesk(d, &["demo", "--days", "30", "--per-day", "400", "--seed", "7"]));
    assert!(out.contains("arrivals"), "{out}");
    let stats: serde_json::Value = serde_json::from_str(&stdout(&guidedesk(d, &["stats", "--json"]))).unwrap();
    let records = stats["records"].as_object().unwrap();
    let kinds = ["arrival", "consultation", "feedback", "case", "followup_task", "call_attempt"];
    let mut counts = BTreeMap::new();
    for kind in kinds {
        let n = records[kind].as_u64().unwrap();
        assert!(n > 0, "demo wrote no {kind}");
        counts.insert(kind, n);
    }
    // 30 days × ~400 arrivals (today is cut at the current time).
    assert!((6_000..=13_300).contains(&counts["arrival"]), "{counts:?}");
    assert!(stats["outbox_pending"].as_u64().unwrap() >= counts.values().sum::<u64>());

    for kind in kinds {
        let path = d.join(format!("{kind}.csv"));
        stdout(&guidedesk(d, &["export", "--kind", kind, "--out", path.to_str().unwrap()]));
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "CSV must start with a UTF-8 BOM");
        let mut r = csv::ReaderBuilder::new().from_reader(&bytes[3..]);
        let header = r.headers().unwrap().clone();
        assert_eq!(&header[0], "id");
        let must: &[&str] = match kind {
            "case" => &["received_at", "grade", "due_date", "status", "closed_at", "events"],
            "followup_task" => &["due_from", "due_to", "status", "closed_at", "source"],
            "call_attempt" => &["task", "at", "outcome", "satisfaction"],
            _ => &[],
        };
        for col in must {
            assert!(header.iter().any(|h| h == *col), "{kind} export lacks {col}");
        }
        let rows: Vec<_> = r.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len() as u64, counts[kind], "{kind} CSV rows");
        assert!(rows.iter().all(|row| row.len() == header.len()));

        let json = stdout(&guidedesk(d, &["export", "--kind", kind, "--format", "json"]));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len() as u64, counts[kind], "{kind} JSON records");
        assert!(arr.iter().all(|r| r["id"].is_string()));
    }

    // A date range selects by the record's own time.
    let all = stdout(&guidedesk(d, &["export", "--kind", "arrival", "--format", "json"]));
    let all: Vec<serde_json::Value> = serde_json::from_str(&all).unwrap();
    let day = all[all.len() / 2]["arrived_at"].as_str().unwrap();
    let local_day = chrono::DateTime::parse_from_rfc3339(day)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
        .to_string();
    let one = stdout(&guidedesk(d, &["export", "--kind", "arrival", "--from", &local_day, "--to", &local_day]));
    let n_one = one.lines().count() - 1;
    assert!(n_one > 100 && n_one < 600, "{n_one} arrivals on {local_day}");

    let check = stdout(&guidedesk(d, &["check"]));
    assert!(check.starts_with("store OK"), "{check}");
}

#[test]
fn demo_is_deterministic_for_a_seed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [a.path(), b.path()] {
        stdout(&guidedesk(d, &["demo", "--days", "3", "--per-day", "40", "--seed", "42"]));
    }
    for kind in ["arrival", "case", "feedback"] {
        let x = stdout(&guidedesk(a.path(), &["export", "--kind", kind]));
        let y = stdout(&guidedesk(b.path(), &["export", "--kind", kind]));
        // Same ids and fields; only the per-device hash chain of feedback may not differ either.
        assert_eq!(x, y, "{kind} differs between two runs with the same seed");
    }
}

#[test]
fn bad_input_gives_one_clear_line_and_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&[&str], &str)] = &[
        (&["export", "--kind", "nonsense"], "nonsense"),
        (&["export", "--kind", "arrival", "--from", "2026-02-30"], "2026-02-30"),
        (&["export", "--kind", "arrival", "--from", "2026-03-02", "--to", "2026-03-01"], "after"),
        (&["demo", "--days", "0"], "0"),
    ];
    for (args, needle) in cases {
        let o = guidedesk(d, args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }

    // A file that is not a store: refused with the path named, and left untouched.
    let foreign = tempfile::tempdir().unwrap();
    let store_path = foreign.path().join("guidedesk.redb");
    std::fs::write(&store_path, "not a database").unwrap();
    let o = guidedesk(foreign.path(), &["stats"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("not a GuideDesk store"), "{err}");
    assert_eq!(std::fs::read_to_string(&store_path).unwrap(), "not a database");

    // A bad config file names the key.
    std::fs::write(d.join("config.toml"), "langauge = \"en\"\n").unwrap();
    let o = guidedesk(d, &["stats"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("langauge"));
}

#[test]
fn export_to_an_unwritable_place_fails_without_leaving_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stdout(&guidedesk(d, &["demo", "--days", "1", "--per-day", "5"]));
    let target = d.join("no-such-dir").join("x.csv");
    let o = guidedesk(d, &["export", "--kind", "arrival", "--out", target.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-dir"));
    assert!(!target.exists());
}

#[test]
fn verify_feedback_reports_altered_and_deleted_records() {
    use guidedesk::model::{Feedback, Rating};
    use redb::{ReadableDatabase as _, ReadableTable as _};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stdout(&guidedesk(d, &["demo", "--days", "2", "--per-day", "60"]));
    let ok = stdout(&guidedesk(d, &["verify-feedback"]));
    assert!(ok.starts_with("feedback chain intact"), "{ok}");

    let table: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("rec_feedback");
    let path = d.join("guidedesk.redb");
    // The store is encrypted: tampering "behind the application's back" here means with the key file in hand.
    let keys = guidedesk::store::crypto::StoreKey::load(&d.join("guidedesk.key")).unwrap().derive();
    let place = |id: u128| guidedesk::store::crypto::record_place("rec_feedback", id);
    type Edit<'a> = &'a dyn Fn(&mut redb::Table<u128, &[u8]>, Vec<(u128, Feedback)>);
    let rewrite = |f: Edit<'_>| {
        let db = redb::Database::open(&path).unwrap();
        let rows: Vec<(u128, Feedback)> = {
            let tx = db.begin_read().unwrap();
            let t = tx.open_table(table).unwrap();
            t.iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    let plain = keys.open(&place(k.value()), v.value()).unwrap();
                    (k.value(), guidedesk_sync::codec::decode::<Feedback>(&plain[2..]).unwrap())
                })
                .collect()
        };
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(table).unwrap();
            f(&mut t, rows);
        }
        tx.commit().unwrap();
    };
    // Turn one dissatisfied answer into a satisfied one, behind the application's back.
    rewrite(&|t, rows| {
        let (k, mut fb) = rows.into_iter().find(|(_, f)| f.chain_index == 3).unwrap();
        fb.overall = if fb.overall == Rating::Satisfied { Rating::VerySatisfied } else { Rating::Satisfied };
        let mut bytes = guidedesk::model::RECORD_SCHEMA.to_le_bytes().to_vec();
        bytes.extend(guidedesk_sync::codec::encode(&fb).unwrap());
        t.insert(k, keys.seal(&place(k), &bytes).unwrap().as_slice()).unwrap();
    });
    let o = guidedesk(d, &["verify-feedback"]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("feedback #3") && out.contains("altered"), "{out}");

    // Delete another.
    rewrite(&|t, rows| {
        let (k, _) = rows.into_iter().find(|(_, f)| f.chain_index == 5).unwrap();
        t.remove(k).unwrap();
    });
    let o = guidedesk(d, &["verify-feedback"]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("feedback #5 is missing"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("broken"));
}
