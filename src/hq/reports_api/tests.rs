//! Unit tests of the report endpoints' parsing and figures.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::reports::Period;

/// The status, code and message of a refusal.
fn refusal(e: ApiError) -> (u16, String, String) {
    let resp = e.into_response();
    let status = resp.status().as_u16();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let body = rt.block_on(axum::body::to_bytes(resp.into_body(), usize::MAX)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (status, v["code"].as_str().unwrap().to_string(), v["message"].as_str().unwrap().to_string())
}

/// Asserts that `raw` is refused with 400 `bad_request` and a message starting with `starts` and holding
/// `needle`.
fn refused(raw: &str, accepted: &[Param], starts: &str, needle: &str) {
    let e = parse_query(Some(raw), accepted).expect_err(raw);
    let (status, code, message) = refusal(e);
    assert_eq!((status, code.as_str()), (400, "bad_request"), "{raw}: {message}");
    assert!(message.starts_with(starts), "{raw}: {message}");
    assert!(message.contains(needle), "{raw}: {message}");
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn a_valid_query_is_parsed() {
    let q =
        parse_query(Some("table=kpis&from=2025-01-01&to=2025-01-31&site=main_2-b&lang=en"), TABLE_CSV_PARAMS).unwrap();
    assert_eq!(
        q,
        ReportQuery {
            from: Some(day(2025, 1, 1)),
            to: Some(day(2025, 1, 31)),
            site: Some("main_2-b".into()),
            lang: Some(Lang::En),
            table: Some("kpis"),
        }
    );
    assert_eq!(parse_query(None, OVERVIEW_PARAMS).unwrap(), ReportQuery::default());
    assert_eq!(parse_query(Some(""), OVERVIEW_PARAMS).unwrap(), ReportQuery::default());
    // Percent-encoding and `+` are decoded; empty pieces are skipped.
    let q = parse_query(Some("&lang=zh%2DCN&&site=a%5Fb&"), SUMMARY_PARAMS).unwrap();
    assert_eq!((q.lang, q.site.as_deref()), (Some(Lang::Zh), Some("a_b")));
}

#[test]
fn a_control_character_in_any_parameter_is_refused_naming_it() {
    for p in [Param::From, Param::To, Param::Site, Param::Lang, Param::Table] {
        let name = p.name();
        let starts = format!("query parameter {name:?}: ");
        for bad in ["%00", "ma%00in", "%0A", "a%1Fb", "%7F", "%C2%85"] {
            refused(&format!("{name}={bad}"), TABLE_CSV_PARAMS, &starts, "contains a control character");
        }
    }
    refused("site=%00", OVERVIEW_PARAMS, "query parameter \"site\": ", "(U+0000)");
}

#[test]
fn unknown_repeated_empty_and_overlong_parameters_are_refused_naming_them() {
    refused("foo=1", SUMMARY_PARAMS, "query parameter \"foo\": ", "unknown parameter; this endpoint takes from, to");
    // Parameter names are exact: another endpoint's parameter or another case is unknown.
    refused("lang=en", AUDIT_CSV_PARAMS, "query parameter \"lang\": ", "unknown parameter");
    refused("table=kpis", SUMMARY_PARAMS, "query parameter \"table\": ", "unknown parameter");
    refused("Site=main", SUMMARY_PARAMS, "query parameter \"Site\": ", "unknown parameter");
    refused("a%00b=1", SUMMARY_PARAMS, "query parameter \"a\\0b\": ", "unknown parameter");
    refused(&format!("{}=1", "n".repeat(200)), SUMMARY_PARAMS, "query parameter \"nnnn", "…\": unknown");
    refused("site=a&site=b", SUMMARY_PARAMS, "query parameter \"site\": ", "given more than once");
    refused("site=", SUMMARY_PARAMS, "query parameter \"site\": ", "is empty");
    refused("site", SUMMARY_PARAMS, "query parameter \"site\": ", "is empty");
    refused(&format!("site={}", "a".repeat(65)), SUMMARY_PARAMS, "query parameter \"site\": ", "at most 64");
    refused("from=2025-01-011", SUMMARY_PARAMS, "query parameter \"from\": ", "at most 10");
    refused(&format!("lang={}", "x".repeat(2000)), SUMMARY_PARAMS, "query string: ", "at most 1024");
}

#[test]
fn bad_encoding_is_refused_naming_the_parameter() {
    refused("site=%zz", SUMMARY_PARAMS, "query parameter \"site\": ", "`%` not followed by two hex digits");
    refused("site=%4", SUMMARY_PARAMS, "query parameter \"site\": ", "`%` not followed by two hex digits");
    refused("site=%+1", SUMMARY_PARAMS, "query parameter \"site\": ", "`%` not followed by two hex digits");
    refused("site=%FF", SUMMARY_PARAMS, "query parameter \"site\": ", "is not UTF-8");
    refused("%FF=1", SUMMARY_PARAMS, "query parameter name \"%FF\": ", "is not UTF-8");
}

#[test]
fn values_must_have_their_parameters_form() {
    for bad in ["2025-1-01", "%2B025-01-01", "2025-02-30", "2025/01/01", " 2025-01-1", "20250101", "2025-01-0a"] {
        let raw = format!("from={}", bad.replace(' ', "+"));
        refused(&raw, SUMMARY_PARAMS, "query parameter \"from\": ", "is not a date (YYYY-MM-DD)");
    }
    refused("to=1969-12-31", SUMMARY_PARAMS, "query parameter \"to\": ", "is outside 1970-01-01 – 9999-12-31");
    refused("to=0000-01-01", SUMMARY_PARAMS, "query parameter \"to\": ", "is outside");
    for bad in ["%C2%9F", "a%0D", "%1B%5B31m"] {
        refused(&format!("site={bad}"), SUMMARY_PARAMS, "query parameter \"site\": ", "contains a control character");
    }
    for bad in ["EN", "zh", "zh-cn", "en-US", "fr"] {
        refused(&format!("lang={bad}"), SUMMARY_PARAMS, "query parameter \"lang\": ", "use zh-CN or en");
    }
    refused("table=nope", TABLE_CSV_PARAMS, "query parameter \"table\": ", "no table \"nope\"; the tables are kpis");
    refused("table=KPIS", TABLE_CSV_PARAMS, "query parameter \"table\": ", "no table");
    assert!(
        ["main", "east-2_b.1", "总院", "main site", "<b>site&1</b>", "🏥"].iter().all(|s| is_site_code(s))
            && is_site_code(&"x".repeat(64))
    );
    assert!(!is_site_code("") && !is_site_code(&"x".repeat(65)) && !is_site_code("a\u{85}b") && !is_site_code("\0"));
    let q = parse_query(Some("site=%E6%80%BB%E9%99%A2"), SUMMARY_PARAMS).unwrap();
    assert_eq!(q.site.as_deref(), Some("总院"));
}

#[test]
fn the_period_is_checked_naming_the_parameter() {
    let offset = crate::model::common::china_offset();
    let q = |raw: &str| parse_query(Some(raw), OVERVIEW_PARAMS).unwrap();
    let check = |raw: &str, default_month: bool, starts: &str, needle: &str| {
        let (status, _, message) = refusal(params_of(&q(raw), offset, default_month).expect_err(raw));
        assert_eq!(status, 400, "{raw}");
        assert!(message.starts_with(starts) && message.contains(needle), "{raw}: {message}");
    };
    check("to=2025-01-01", false, "query parameter \"from\": ", "from is missing");
    check("from=2025-01-01", false, "query parameter \"to\": ", "to is missing");
    check("from=2025-01-01", true, "query parameter \"to\": ", "to is missing");
    check("", false, "query parameter \"from\": ", "from is missing");
    check("from=2025-02-02&to=2025-02-01", false, "query parameter \"from\": ", "2025-02-02 is after to=2025-02-01");
    check("from=2020-01-01&to=2023-01-04", false, "query parameter \"to\": ", "more than 1098 days after");
    let p = params_of(&q("from=2020-01-01&to=2023-01-03"), offset, false).unwrap();
    assert_eq!((p.period.from, p.period.to), (day(2020, 1, 1), day(2023, 1, 3)));
    let p = params_of(&q("from=9999-12-31&to=9999-12-31"), offset, false).unwrap();
    assert_eq!(p.period.to, last_day());
    // Neither day: this month up to today, when the endpoint allows it.
    assert!(params_of(&q(""), offset, true).is_ok());
}

#[test]
fn the_outbox_header_is_a_number_or_refused_naming_it() {
    let headers = |vals: &[&[u8]]| {
        let mut h = HeaderMap::new();
        for v in vals {
            h.append(OUTBOX_HEADER, axum::http::HeaderValue::from_bytes(v).unwrap());
        }
        h
    };
    assert_eq!(outbox_pending(&headers(&[])).unwrap(), None);
    assert_eq!(outbox_pending(&headers(&[b"0"])).unwrap(), Some(0));
    assert_eq!(outbox_pending(&headers(&[b"9223372036854775807"])).unwrap(), Some(MAX_OUTBOX_PENDING));
    for bad in [&b"-1"[..], b"+1", b"1 2", b"", b"x", b"9223372036854775808", b"99999999999999999999", b"\xC3\xA9"] {
        let (status, code, message) = refusal(outbox_pending(&headers(&[bad])).unwrap_err());
        assert_eq!((status, code.as_str()), (400, "bad_request"));
        assert!(message.starts_with(&format!("header {OUTBOX_HEADER:?}: not a number")), "{message}");
    }
    let (_, _, message) = refusal(outbox_pending(&headers(&[b"1", b"2"])).unwrap_err());
    assert!(message.contains("given more than once"), "{message}");
}

#[test]
fn table_names_are_the_monthly_reports() {
    let refs = ReferenceData::bundled().unwrap();
    let params = ReportParams::new(
        Period::custom(day(2025, 1, 1), day(2025, 1, 31)),
        crate::model::common::china_offset(),
        day(2025, 1, 31),
    );
    let s = summarize(std::iter::empty(), params, &refs);
    let names: Vec<&str> = tables::monthly(&s, &refs, Lang::En).iter().map(|t| t.name).collect();
    assert_eq!(names, TABLE_NAMES);
}

#[test]
fn the_document_states_every_report_parameters_format() {
    let doc = serde_json::to_value(super::super::server::openapi()).unwrap();
    let endpoints: [(&str, &[Param], &[&str]); 4] = [
        (SUMMARY_PATH, SUMMARY_PARAMS, &["from", "to"]),
        (TABLE_CSV_PATH, TABLE_CSV_PARAMS, &["table", "from", "to"]),
        ("/v1/audit.csv", AUDIT_CSV_PARAMS, &["from", "to"]),
        (OVERVIEW_PATH, OVERVIEW_PARAMS, &[]),
    ];
    for (path, accepted, required) in endpoints {
        let op = &doc["paths"][path]["get"];
        let params = op["parameters"].as_array().unwrap();
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        let mut want: Vec<&str> = accepted.iter().map(|p| p.name()).collect();
        let mut got = names.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{path}: documented = accepted");
        for p in params {
            let name = p["name"].as_str().unwrap();
            assert_eq!(p["in"], "query");
            assert_eq!(p["required"].as_bool().unwrap_or(false), required.contains(&name), "{path} {name}");
            let s = &p["schema"];
            let text = s.to_string();
            match name {
                "from" | "to" => {
                    assert_eq!(s["format"], "date", "{path} {name}");
                    assert_eq!(s["pattern"], DAY_PATTERN, "{path} {name}");
                    assert_eq!(s["maxLength"], 10, "{path} {name}");
                }
                "site" => {
                    assert_eq!(s["pattern"], SITE_PATTERN, "{path}");
                    assert_eq!(s["maxLength"], MAX_SITE_LEN, "{path}");
                }
                "lang" => assert!(text.contains(r#"["zh-CN","en"]"#), "{path}: {text}"),
                "table" => assert_eq!(s["enum"], serde_json::json!(TABLE_NAMES), "{path}"),
                other => panic!("{path}: undocumented rule for {other}"),
            }
        }
        let responses = op["responses"].as_object().unwrap();
        for code in ["200", "400", "401", "403", "429", "503"] {
            assert!(responses.contains_key(code), "{path} {code}");
        }
    }
}

#[test]
fn every_site_probe_is_no_site_code() {
    assert!(!is_site_code(EVERY_SITE_PROBE) && !EVERY_SITE_PROBE.contains('\0'));
}
