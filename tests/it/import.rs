//! `guidedesk import-discharges`: a bad row is reported by its line and the rest imported; a second run of the same
//! file imports nothing new; file-level problems exit non-zero and write nothing.

use crate::guidedesk;

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let o = guidedesk(dir, args);
    let code = o.status.code().unwrap_or(-1);
    (code, String::from_utf8(o.stdout).unwrap(), String::from_utf8(o.stderr).unwrap())
}

fn followup_tasks(dir: &std::path::Path) -> u64 {
    let (code, out, err) = run(dir, &["stats", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["records"]["followup_task"].as_u64().unwrap()
}

#[test]
fn a_bad_row_is_reported_and_the_rest_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("出院名单.csv");
    let csv = "\u{feff}住院号,姓名,联系电话,出院科室,出院日期,出院诊断\r\n\
               ZY101,王建国,138 1234 5678,心血管内科,2026/11/12,冠心病\r\n\
               ZY102,李秀英,13912345601,呼吸内科,2026年11月13日,\"肺炎,已好转\"\r\n\
               ZY103,张伟,1391234560,普外科,2026-11-13,\r\n\
               ZY104,刘芳,15823456780,妇产科,2026-11-10,\r\n";
    std::fs::write(&file, csv).unwrap();
    let path = file.to_str().unwrap();

    let (code, out, err) = run(d, &["import-discharges", path]);
    assert_eq!(code, 0, "bad rows do not fail the command: {out}{err}");
    assert!(
        out.contains(
            "imported 3 new discharges (7 follow-up calls); 0 rows already imported (skipped); 1 row with errors"
        ),
        "{out}"
    );
    assert!(out.contains("line 4: phone \"1391234560\" is not a valid phone number"), "{out}");
    assert!(out.contains("1 row was not imported"), "{out}");
    assert_eq!(followup_tasks(d), 7, "two calls per discharge, and the chronic plan's first round for 冠心病");

    let (code, out, _) = run(d, &["import-discharges", path]);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "imported 0 new discharges (0 follow-up calls); 3 rows already imported (skipped); 1 row with errors"
        ),
        "{out}"
    );
    assert!(out.contains("line 4: "), "{out}");
    assert_eq!(followup_tasks(d), 7, "a second run creates nothing");

    let (code, out, _) = run(d, &["export", "--kind", "followup_task", "--format", "json"]);
    assert_eq!(code, 0);
    let tasks: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(tasks.iter().all(|t| t["inpatient"] == true && t["created_by"] == "import"), "{out}");
    let (code, out, _) = run(d, &["check"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_bundled_sample_imports_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/samples/discharges-sample.csv");
    let (code, out, err) = run(dir.path(), &["import-discharges", sample]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CSV, UTF-8 with BOM, header on line 1"), "{out}");
    assert!(
        out.contains(
            "imported 20 new discharges (45 follow-up calls); 0 rows already imported (skipped); 0 rows with errors"
        ),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn file_level_problems_exit_non_zero_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("list.csv");
    std::fs::write(&file, "住院号,姓名,出院日期\nZY1,张三,2026-11-20\n").unwrap();
    let (code, out, err) = run(d, &["import-discharges", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(err.starts_with("guidedesk: error: "), "{err}");
    assert!(err.contains("required column(s) missing: phone"), "{err}");
    assert!(err.contains("\"住院号\", \"姓名\", \"出院日期\""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let (code, _, err) = run(d, &["import-discharges", d.join("missing.csv").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");

    std::fs::write(&file, [0x50, 0x4B, 0x03, 0x04, 0xFF, 0x00]).unwrap();
    let (code, _, err) = run(d, &["import-discharges", file.to_str().unwrap(), "--sheet", "出院"]);
    assert_eq!(code, 1);
    assert!(err.contains("XLSX workbook cannot be read"), "{err}");

    let (code, _, _) = run(d, &["import-discharges"]);
    assert_eq!(code, 2, "a usage error");
    assert_eq!(followup_tasks(d), 0);
}
