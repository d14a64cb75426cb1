//! `guidedesk report`: documents and CSV tables from the CLI; bad arguments give one line and a non-zero exit.

use crate::guidedesk;

#[test]
fn weekly_and_monthly_reports_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(guidedesk(d, &["demo", "--days", "20", "--per-day", "60", "--seed", "3"]).status.success());
    let html = d.join("weekly.html");
    let csv_dir = d.join("weekly-csv");
    let o =
        guidedesk(d, &["report", "--weekly", "--out", html.to_str().unwrap(), "--csv-dir", csv_dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>") && text.contains("《医院客户服务意见表》"));
    let mut names: Vec<String> =
        std::fs::read_dir(&csv_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.contains(&"kpis.csv".to_string()) && names.contains(&"opinions.csv".to_string()), "{names:?}");
    for n in &names {
        let bytes = std::fs::read(csv_dir.join(n)).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "{n}");
        let mut r = csv::ReaderBuilder::new().from_reader(&bytes[3..]);
        let width = r.headers().unwrap().len();
        assert!(r.records().all(|row| row.unwrap().len() == width), "{n}");
    }

    let monthly = d.join("monthly.html");
    let o = guidedesk(d, &["report", "--monthly", "--lang", "en", "--out", monthly.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&monthly).unwrap().contains("Monthly Customer Service Analysis Report"));

    for bad in [
        vec!["report", "--out", "x.html"],
        vec!["report", "--weekly", "--monthly", "--out", "x.html"],
        vec!["report", "--weekly", "--lang", "fr", "--out", "x.html"],
        vec!["report", "--weekly", "--date", "2026-13-01", "--out", "x.html"],
    ] {
        let o = guidedesk(d, &bad);
        assert!(!o.status.success(), "{bad:?} should fail");
        assert!(!String::from_utf8_lossy(&o.stderr).trim().is_empty());
    }
    let o = guidedesk(d, &["report", "--weekly", "--out", d.join("no/such/dir/x.html").to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("guidedesk: error: cannot write") && err.trim().lines().count() == 1, "{err}");
}
