#![allow(clippy::unwrap_used, clippy::float_cmp)]

use std::sync::Arc;

use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;
use crate::model::reference::{Role, Staff};
use crate::model::{FollowupStatus, Moment, RecordKind};
use crate::store::{ManualClock, StoreOptions, china_offset};

/// 2026-11-23 10:00 in China.
const T0: i64 = 1_795_399_200_000;

const HEADER: &str = "住院号,姓名,联系电话,出院科室,出院日期,出院诊断\n";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn today() -> NaiveDate {
    d(2026, 11, 23)
}

fn refs() -> ReferenceData {
    ReferenceData::bundled().unwrap()
}

fn parse_bytes(bytes: &[u8]) -> Result<ParsedList, ImportError> {
    parse(bytes, None, &refs(), today(), &Limits::DEFAULT)
}

fn parse_ok(csv: &str) -> ParsedList {
    parse_bytes(csv.as_bytes()).unwrap()
}

fn messages(p: &ParsedList) -> Vec<String> {
    p.errors.iter().map(ToString::to_string).collect()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    (dir, store)
}

#[test]
fn header_variants_map_to_fields() {
    let cases = [
        ("住院号", Some(Field::AdmissionNo)),
        (" 住 院 号 ", Some(Field::AdmissionNo)),
        ("病案号", Some(Field::AdmissionNo)),
        ("Admission No.", Some(Field::AdmissionNo)),
        ("admission_number", Some(Field::AdmissionNo)),
        ("患者姓名", Some(Field::Name)),
        ("PATIENT NAME", Some(Field::Name)),
        ("\u{feff}姓名", Some(Field::Name)),
        ("联系电话*", Some(Field::Phone)),
        ("手机号码", Some(Field::Phone)),
        ("Phone", Some(Field::Phone)),
        ("Tel.", Some(Field::Phone)),
        ("出院科室", Some(Field::Department)),
        ("Dept", Some(Field::Department)),
        ("出院日期(yyyy-mm-dd)", Some(Field::DischargeDate)),
        ("出院日期（年/月/日）", Some(Field::DischargeDate)),
        ("Discharge Date:", Some(Field::DischargeDate)),
        ("出院\u{3000}诊断", Some(Field::Diagnosis)),
        ("Diagnosis", Some(Field::Diagnosis)),
        ("入院日期", None),
        ("备注", None),
        ("", None),
        ("(住院号)", None),
    ];
    for (h, want) in cases {
        assert_eq!(match_header(h).map(|(f, _)| f), want, "{h:?}");
    }
}

#[test]
fn english_headers_in_any_order() {
    let p = parse_ok(
        "Discharge Date, Patient Name ,Phone,Dept.,Admission No.,Diagnosis\n\
         2026-11-20,Zhang San,13800138000,cardio,A1,\n",
    );
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let r = &p.discharges[0];
    assert_eq!((r.his_key.as_str(), r.name.as_str(), r.department.as_str()), ("A1", "Zhang San", "cardio"));
    assert_eq!(r.discharged_on, d(2026, 11, 20));
    assert_eq!(r.diagnosis, None);
}

#[test]
fn a_title_above_the_header_is_skipped_and_lines_stay_true() {
    let csv = format!(
        "出院病人名单（2026年11月）\n\n{HEADER}ZY1,张三,13800138000,心血管内科,2026-11-20,心律失常\n\nZY2,李四,bad,骨科,2026-11-20,\n"
    );
    let p = parse_ok(&csv);
    assert_eq!(p.header_line, 3);
    assert_eq!(p.discharges[0].line, 4);
    assert_eq!(
        messages(&p),
        [r#"line 6: phone "bad" is not a valid phone number (11-digit mobile, or landline with area code)"#]
    );
}

#[test]
fn several_phone_columns_fall_back_in_order() {
    let p = parse_ok(
        "住院号,姓名,电话,手机,科室,出院日期\nZY1,张三,010-65123456,,内科,2026-11-20\nZY2,李四,010-65123456,139 0000 0000,内科,2026-11-20\n",
    );
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.discharges[0].phone, "01065123456");
    assert_eq!(p.discharges[1].phone, "13900000000", "the mobile column is preferred");
}

#[test]
fn a_missing_required_column_lists_the_headers_found() {
    let err = parse_bytes("\u{feff}住院号,姓名, 出院日期 ,备注\nZY1,张三,2026-11-20,\n".as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ImportError::MissingColumns { line: 1, .. }));
    assert!(msg.contains("phone (电话/联系电话/手机/phone)"), "{msg}");
    assert!(msg.contains("department (科室/出院科室/department)"), "{msg}");
    assert!(msg.contains(r#"has: "住院号", "姓名", "出院日期", "备注""#), "{msg}");
    assert!(!msg.contains("diagnosis"), "diagnosis is optional: {msg}");
}

#[test]
fn every_date_format() {
    for (text, want) in [
        ("2026-11-20", d(2026, 11, 20)),
        ("2026/11/20", d(2026, 11, 20)),
        ("2026/1/5", d(2026, 1, 5)),
        ("2026.11.20", d(2026, 11, 20)),
        ("2026年11月20日", d(2026, 11, 20)),
        ("2026年1月5日", d(2026, 1, 5)),
        ("2026年11月20", d(2026, 11, 20)),
        ("20261120", d(2026, 11, 20)),
        ("2026-11-20 10:30:00", d(2026, 11, 20)),
        ("2026/11/20 0:00", d(2026, 11, 20)),
        ("2026-11-20T10:30:00", d(2026, 11, 20)),
        (" 2026-11-20 ", d(2026, 11, 20)),
    ] {
        assert_eq!(parse_date_text(text), Some(want), "{text}");
    }
    for bad in ["2026-13-01", "2026-02-30", "20/11/2026", "11/20/2026", "26-11-20", "2026-11", "昨天", "", "2026年11月"]
    {
        assert_eq!(parse_date_text(bad), None, "{bad}");
    }
    // Number cells of a workbook: an Excel serial, or YYYYMMDD typed as a number.
    assert_eq!(number_date(46_346.0), Some(d(2026, 11, 20)));
    assert_eq!(number_date(20_261_120.0), Some(d(2026, 11, 20)));
    assert_eq!(number_date(-3.0), None);
    assert_eq!(number_date(f64::INFINITY), None);

    let p = parse_ok(&format!(
        "{HEADER}A,张三,13800138000,内科,2026/11/20,\nB,张三,13800138000,内科,2026年11月2日,\nC,张三,13800138000,内科,2026-13-01,\n\
         D,张三,13800138000,内科,2026-11-24,\nE,张三,13800138000,内科,1999-12-31,\nF,张三,13800138000,内科,,\n"
    ));
    let dates: Vec<_> = p.discharges.iter().map(|r| r.discharged_on).collect();
    assert_eq!(dates, [d(2026, 11, 20), d(2026, 11, 2)]);
    assert_eq!(
        messages(&p),
        [
            "line 4: discharge date \"2026-13-01\" is not a date \
             (use 2026-11-20, 2026/11/20, 2026年11月20日 or 20261120)",
            "line 5: discharge date 2026-11-24 is after today (2026-11-23)",
            "line 6: discharge date 1999-12-31 is before 2000-01-01: check the date",
            "line 7: discharge date is required",
        ]
    );
}

#[test]
fn phones_are_normalised_and_bad_ones_reported() {
    let p = parse_ok(&format!(
        "{HEADER}A,张三,+86 138-0013-8000,内科,2026-11-20,\nB,李四,(0755) 8888-8888,内科,2026-11-20,\n\
         C,王五,1380013800,内科,2026-11-20,\nD,赵六,,内科,2026-11-20,\n"
    ));
    let phones: Vec<_> = p.discharges.iter().map(|r| r.phone.as_str()).collect();
    assert_eq!(phones, ["13800138000", "075588888888"]);
    assert_eq!(
        messages(&p),
        [
            r#"line 4: phone "1380013800" is not a valid phone number (11-digit mobile, or landline with area code)"#,
            "line 5: phone is required",
        ]
    );
}

#[test]
fn departments_match_by_code_or_name_and_unknown_ones_are_named() {
    let r = refs();
    for (raw, id) in [
        ("cardio", "cardio"),
        ("CARDIO", "cardio"),
        ("心血管内科", "cardio"),
        (" Cardiology ", "cardio"),
        ("general surgery", "surgery"),
        ("骨科病区", "ortho"),
        ("骨 科", "ortho"),
    ] {
        assert_eq!(find_department(&r, raw).map(|d| d.id.as_str()), Some(id), "{raw}");
    }
    assert!(find_department(&r, "病区").is_none());
    assert!(find_department(&r, "").is_none());
    let p = parse_ok(&format!("{HEADER}A,张三,13800138000,心脏科,2026-11-20,\n"));
    assert_eq!(messages(&p), [r#"line 2: department "心脏科" is not a department of this hospital"#]);
}

#[test]
fn a_duplicate_admission_number_is_reported_on_its_second_line() {
    let p = parse_ok(&format!(
        "{HEADER}ZY1,张三,13800138000,内科,2026-11-20,\nZY2,李四,13900139000,内科,2026-11-20,\n\
         ZY1,张三,13800138000,内科,2026-11-20,\n"
    ));
    assert_eq!(p.discharges.len(), 2);
    assert_eq!(messages(&p), [r#"line 4: admission number "ZY1" also appears on line 2"#]);
}

#[test]
fn several_problems_of_one_row_are_reported_together() {
    let p = parse_ok(&format!("{HEADER},,12,火星科,明天,\n"));
    let m = &messages(&p)[0];
    for part in [
        "admission number is required",
        "name is required",
        "phone \"12\"",
        "department \"火星科\"",
        "discharge date \"明天\"",
    ] {
        assert!(m.contains(part), "{m}");
    }
    assert!(m.starts_with("line 2: "));
}

#[test]
fn gbk_csv_as_saved_by_excel_on_chinese_windows() {
    let text = format!(
        "{HEADER}ZY1,欧阳娜娜,13800138000,妇产科,2026/11/20,子宫肌瘤\r\nZY2,龚喆,13900139000,儿科,2026/11/21,\r\n"
    );
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "the fixture really is GBK");
    let p = parse_bytes(&bytes).unwrap();
    assert_eq!(p.source.to_string(), "CSV, GBK/GB18030");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let names: Vec<_> = p.discharges.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["欧阳娜娜", "龚喆"]);
    assert_eq!(p.discharges[0].diagnosis.as_deref(), Some("子宫肌瘤"));
    assert_eq!(p.discharges[1].department, "peds");
}

#[test]
fn utf8_bom_csv() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(format!("{HEADER}ZY1,张三,13800138000,内科,2026-11-20,\n").as_bytes());
    let p = parse_bytes(&bytes).unwrap();
    assert_eq!(p.source.to_string(), "CSV, UTF-8 with BOM");
    assert_eq!(p.discharges[0].his_key, "ZY1", "the BOM is not part of the first header");
}

#[test]
fn rfc4180_quoting() {
    let csv = format!(
        "{HEADER}ZY1,\"张三\",13800138000,内科,2026-11-20,\"高血压,糖尿病\"\r\n\
         ZY2,李四,13900139000,内科,2026-11-20,\"第一行\r\n第二行\"\r\n\
         ZY3,王五,13700137000,内科,2026-11-20,\"所谓\"\"冠心病\"\"\"\r\n\
         ZY4,赵六,bad,内科,2026-11-20,\r\n"
    );
    let p = parse_ok(&csv);
    let diag: Vec<_> = p.discharges.iter().map(|r| r.diagnosis.as_deref().unwrap()).collect();
    assert_eq!(diag, ["高血压,糖尿病", "第一行\n第二行", "所谓\"冠心病\""]);
    // The bad row is the 5th spreadsheet row, although the line break inside a cell puts it on text line 6.
    assert_eq!(p.errors[0].line, 5);
}

#[test]
fn formulas_and_huge_cells_are_row_errors() {
    let huge = "长".repeat(10_000);
    let p = parse_ok(&format!(
        "{HEADER}ZY1,=HYPERLINK(\"http://x\"),13800138000,内科,2026-11-20,\n\
         ZY2,{huge},13800138000,内科,2026-11-20,\nZY3,张三,13800138000,内科,2026-11-20,@SUM(1)\n"
    ));
    let m = messages(&p);
    assert!(
        m[0].starts_with(r#"line 2: name "=HYPERLINK(\"http://x\")" looks like a spreadsheet formula"#),
        "{}",
        m[0]
    );
    assert!(m[1].starts_with("line 3: name \"长长长"), "{}", m[1]);
    assert!(m[1].ends_with("is longer than 40 characters"), "{}", m[1]);
    assert!(m[1].chars().count() < 120, "messages never echo a whole huge cell");
    assert!(m[2].contains("diagnosis \"@SUM(1)\" looks like a spreadsheet formula"), "{}", m[2]);
}

#[test]
fn header_only_and_blank_rows() {
    let p = parse_ok(HEADER);
    assert!(p.discharges.is_empty() && p.errors.is_empty());
    let p = parse_ok(&format!("{HEADER},,,,,\n , ,\n\nZY1,张三,13800138000,内科,2026-11-20,\n"));
    assert_eq!(p.discharges[0].line, 5);
    assert!(p.errors.is_empty());
    assert!(matches!(parse_bytes(b"\n\n , ,\n"), Err(ImportError::NoHeader)));
}

#[test]
fn row_cap() {
    let limits = Limits { max_rows: 3, ..Limits::DEFAULT };
    let rows: String = (0..4).fold(String::new(), |acc, i| acc + &format!("ZY{i},张三,13800138000,内科,2026-11-20,\n"));
    let err = parse(format!("{HEADER}{rows}").as_bytes(), None, &refs(), today(), &limits).unwrap_err();
    assert!(matches!(err, ImportError::TooManyRows { max: 3 }), "{err}");
}

fn workbook() -> Vec<u8> {
    workbook_with(false)
}

fn workbook_with(hidden_notes: bool) -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
    let mut wb = Workbook::new();
    let notes = wb.add_worksheet();
    notes.set_name("说明").unwrap();
    notes.write_string(0, 0, "本表由HIS导出").unwrap();
    notes.set_hidden(hidden_notes);
    let ws = wb.add_worksheet();
    ws.set_name("出院名单").unwrap();
    // Excel never hides the active sheet.
    ws.set_active(hidden_notes);
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (c, h) in ["住院号", "患者姓名", "手机号码", "科室", "出院日期", "出院诊断"].iter().enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    // Line 2: numbers for the admission and phone numbers, a real date cell.
    ws.write_number(1, 0, 20_261_120_001.0).unwrap();
    ws.write_string(1, 1, "张三").unwrap();
    ws.write_number(1, 2, 13_800_138_000.0).unwrap();
    ws.write_string(1, 3, "心血管内科").unwrap();
    ws.write_datetime_with_format(1, 4, ExcelDateTime::from_ymd(2026, 11, 20).unwrap(), &date).unwrap();
    ws.write_string(1, 5, "冠心病").unwrap();
    // Line 3: a serial date in a General cell, a text phone.
    ws.write_string(2, 0, "ZY0002").unwrap();
    ws.write_string(2, 1, "李四").unwrap();
    ws.write_string(2, 2, "139-0013-9000").unwrap();
    ws.write_string(2, 3, "ortho").unwrap();
    ws.write_number(2, 4, 46_345.0).unwrap();
    // Line 5 (line 4 left empty): a formula whose cached result is an error.
    ws.write_string(4, 0, "ZY0003").unwrap();
    ws.write_string(4, 1, "王五").unwrap();
    ws.write_formula(4, 2, Formula::new("=VLOOKUP(B5,Z:Z,1,0)").set_result("#N/A")).unwrap();
    ws.write_string(4, 3, "内科").unwrap();
    ws.write_string(4, 4, "2026年11月18日").unwrap();
    // Line 6: YYYYMMDD typed as a number, a formula with a good cached value.
    ws.write_string(5, 0, "ZY0004").unwrap();
    ws.write_string(5, 1, "赵六").unwrap();
    ws.write_formula(5, 2, Formula::new("=\"13700137000\"").set_result("13700137000")).unwrap();
    ws.write_string(5, 3, "Respiratory Medicine").unwrap();
    ws.write_number(5, 4, 20_261_117.0).unwrap();
    // Line 7: a formula saved without its result.
    ws.write_string(6, 0, "ZY0005").unwrap();
    ws.write_string(6, 1, "钱七").unwrap();
    ws.set_formula_result_default("");
    ws.write_formula(6, 2, "=C6").unwrap();
    ws.write_string(6, 3, "内科").unwrap();
    ws.write_string(6, 4, "2026-11-18").unwrap();
    wb.save_to_buffer().unwrap()
}

#[test]
fn xlsx_workbook() {
    let bytes = workbook();
    let r = refs();
    // The first sheet has no list.
    let err = parse(&bytes, None, &r, today(), &Limits::DEFAULT).unwrap_err().to_string();
    assert!(err.contains(r#"has: "本表由HIS导出""#), "{err}");
    let err = parse(&bytes, Some("Sheet9"), &r, today(), &Limits::DEFAULT).unwrap_err().to_string();
    assert_eq!(err, r#"the workbook has no sheet named "Sheet9"; its sheets are: "说明", "出院名单""#);

    let p = parse(&bytes, Some("出院名单"), &r, today(), &Limits::DEFAULT).unwrap();
    assert_eq!(p.source.to_string(), r#"XLSX, sheet "出院名单""#);
    let got: Vec<_> = p
        .discharges
        .iter()
        .map(|x| (x.line, x.his_key.as_str(), x.phone.as_str(), x.department.as_str(), x.discharged_on))
        .collect();
    assert_eq!(
        got,
        [
            (2, "20261120001", "13800138000", "cardio", d(2026, 11, 20)),
            (3, "ZY0002", "13900139000", "ortho", d(2026, 11, 19)),
            (6, "ZY0004", "13700137000", "resp", d(2026, 11, 17)),
        ]
    );
    assert_eq!(
        messages(&p),
        [
            "line 5: phone cell holds the spreadsheet error #N/A",
            "line 7: phone cell holds a formula with no saved result (open the file in Excel or WPS, save it and \
             import it again)",
        ]
    );
}

#[test]
fn a_hidden_first_sheet_is_passed_over() {
    let p = parse(&workbook_with(true), None, &refs(), today(), &Limits::DEFAULT).unwrap();
    assert_eq!(p.source.to_string(), r#"XLSX, sheet "出院名单""#);
    assert_eq!(p.discharges.len(), 3);
}

#[test]
fn a_zip_bomb_is_refused_before_it_is_unpacked() {
    use std::io::Write as _;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
    z.write_all(&vec![b' '; 2 * 1024 * 1024]).unwrap();
    let bytes = z.finish().unwrap().into_inner();
    assert!(bytes.len() < 100_000);
    let limits = Limits { max_unpacked_bytes: 1024 * 1024, ..Limits::DEFAULT };
    let err = parse(&bytes, None, &refs(), today(), &limits).unwrap_err();
    assert!(matches!(err, ImportError::Unpacked { .. }), "{err}");
    assert!(err.to_string().contains("unpacks to more than 1 MB"));
}

fn sample_csv() -> String {
    format!(
        "{HEADER}ZY1,张三,13800138000,心血管内科,2026-11-20,心律失常\nZY2,李四,13900139000,骨科,2026-11-18,\n\
         ZY3,王五,bad,内科,2026-11-19,\nZY4,赵六,0755-88888888,儿科,2026-11-21,肺炎\n"
    )
}

#[test]
fn import_writes_one_transaction_and_reimport_creates_nothing_twice() {
    let (_dir, store) = store();
    let before = store.stats().unwrap().outbox_last_seq;
    let opts = ImportOptions::default();
    let report = import(&store, sample_csv().as_bytes(), &opts).unwrap();
    assert_eq!((report.imported, report.already_imported, report.calls), (3, 0, 6));
    assert_eq!(report.errors.iter().map(|e| e.line).collect::<Vec<_>>(), [4]);

    // One transaction: the six ops follow each other with no gap, one per task (two calls per discharge).
    let written = store.outbox_after(before, 100).unwrap();
    let seqs: Vec<u64> = written.iter().map(|o| o.seq).collect();
    assert_eq!(seqs, (1..=6).map(|i| before + i).collect::<Vec<_>>());
    assert!(written.iter().all(|o| o.key.kind == RecordKind::FollowupTask.code()));

    let tasks = store.open_followups_due(None).unwrap();
    assert_eq!(tasks.len(), 6);
    let t = tasks
        .iter()
        .find(|t| t.patient_name == "张三" && matches!(t.source, FollowupSource::Discharge { .. }))
        .unwrap();
    assert_eq!(
        t.source,
        FollowupSource::Discharge {
            his_key: "ZY1".into(),
            discharged_on: d(2026, 11, 20),
            diagnosis: Some("心律失常".into())
        }
    );
    assert_eq!((t.due_from, t.due_to), (d(2026, 11, 21), d(2026, 11, 23)));
    let second = tasks
        .iter()
        .find(|t| t.patient_name == "张三" && matches!(t.source, FollowupSource::DischargeSecond { .. }))
        .unwrap();
    assert_eq!((second.due_from, second.due_to), (d(2026, 11, 27), d(2026, 12, 5)));
    assert!(t.inpatient);
    assert_eq!(t.created_by, StaffRef("import".into()));
    assert_eq!(t.department.as_deref(), Some("cardio"));
    assert_eq!(t.status.value, FollowupStatus::Open);
    assert_eq!(t.created_at, Moment(T0));

    // The same file again: nothing new, the good rows reported as already imported, the bad row again.
    let again = import(&store, sample_csv().as_bytes(), &opts).unwrap();
    assert_eq!((again.imported, again.already_imported, again.errors.len()), (0, 3, 1));
    assert_eq!(store.stats().unwrap().outbox_last_seq, before + 6);

    // A corrected file imports only the fixed row.
    let fixed = sample_csv().replace("王五,bad", "王五,13600136000");
    let third = import(&store, fixed.as_bytes(), &opts).unwrap();
    assert_eq!((third.imported, third.already_imported, third.errors.len()), (1, 3, 0));
    assert_eq!(store.count(RecordKind::FollowupTask).unwrap(), 8, "two calls for each of four discharges");
    assert!(store.check().unwrap().is_empty());
}

#[test]
fn the_importing_staff_member_is_recorded_and_must_exist() {
    let (_dir, store) = store();
    let opts = |s: &str| ImportOptions { staff: Some(s.into()), ..ImportOptions::default() };
    let err = import(&store, sample_csv().as_bytes(), &opts("cs9")).unwrap_err();
    assert_eq!(err.to_string(), r#"no staff account with id "cs9" on this kiosk"#);
    assert_eq!(store.count(RecordKind::FollowupTask).unwrap(), 0);
    store
        .put_local_staff(Staff {
            id: "cs9".into(),
            name: "客服九".into(),
            role: Role::CustomerService,
            department: None,
            pin_hash: String::new(),
            active: true,
        })
        .unwrap();
    import(&store, sample_csv().as_bytes(), &opts("cs9")).unwrap();
    assert!(store.open_followups_due(None).unwrap().iter().all(|t| t.created_by == StaffRef("cs9".into())));
}

#[test]
fn a_file_level_error_writes_nothing() {
    let (_dir, store) = store();
    let err = import(&store, b"\x00\x01binary", &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::Binary { offset: 0 }));
    assert_eq!(store.stats().unwrap().outbox_last_seq, 0);
}

#[test]
fn cli_summary_lists_each_bad_line() {
    let (dir, store) = store();
    let path = dir.path().join("list.csv");
    std::fs::write(&path, sample_csv()).unwrap();
    let mut out = Vec::new();
    run_cli(&store, &path, None, None, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("list.csv: CSV, UTF-8, header on line 1"), "{out}");
    assert_eq!(
        lines[1],
        "imported 3 new discharges (6 follow-up calls); 0 rows already imported (skipped); 1 row with errors"
    );
    assert!(lines[2].starts_with("line 4: phone \"bad\""), "{out}");
    assert_eq!(
        lines[3],
        "1 row was not imported: correct it in the file and import it again (rows already imported are skipped)"
    );
    let missing = dir.path().join("nope.csv");
    let err = run_cli(&store, &missing, None, None, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("nope.csv: cannot read"), "{err}");
}

#[test]
fn oversized_files_are_refused_without_reading_them_whole() {
    let (dir, store) = store();
    let path = dir.path().join("big.csv");
    std::fs::write(&path, "x".repeat(2048)).unwrap();
    let opts = ImportOptions { limits: Limits { max_file_bytes: 1024, ..Limits::DEFAULT }, ..ImportOptions::default() };
    let err = import_file(&store, &path, &opts).unwrap_err();
    assert!(matches!(err, ImportError::TooLarge { max: 1024 }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_bytes(&bytes);
    }

    #[test]
    fn arbitrary_rows_under_a_good_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        text in "[\\PC,\"\n\r年月日0-9/-]{0,400}",
    ) {
        let mut bytes = HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let _ = parse_bytes(&bytes);
        if let Ok(p) = parse_bytes(format!("{HEADER}{text}").as_bytes()) {
            // Every row is accounted for exactly once and lines are in order.
            let mut lines: Vec<u32> =
                p.discharges.iter().map(|r| r.line).chain(p.errors.iter().map(|e| e.line)).collect();
            let n = lines.len();
            lines.sort_unstable();
            lines.dedup();
            prop_assert_eq!(lines.len(), n);
            prop_assert!(lines.iter().all(|&l| l > p.header_line));
        }
    }
}

/// The test workbook with its parts stored uncompressed, so byte changes reach the XML parser.
fn stored_workbook() -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let src = workbook();
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(src)).unwrap();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        z.start_file(f.name().unwrap().to_string(), opts).unwrap();
        z.write_all(&data).unwrap();
    }
    z.finish().unwrap().into_inner()
}

#[test]
fn the_stored_workbook_reads_like_the_original() {
    let p = parse(&stored_workbook(), Some("出院名单"), &refs(), today(), &Limits::DEFAULT).unwrap();
    assert_eq!(p.discharges.len(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn damaged_workbooks_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = stored_workbook();
        let n = bytes.len();
        for (at, b) in flips {
            bytes[at % n] = b;
        }
        let _ = parse(&bytes, Some("出院名单"), &refs(), today(), &Limits::DEFAULT);
    }
}

#[test]
fn formula_cells_follow_the_csv_export_rule() {
    // Every trigger of `csv_safe` makes a text cell a row error, wherever it is in a free-text column; leading tabs
    // and carriage returns are trimmed first, so the formula behind them is what is caught.
    let p = parse_ok(&format!(
        "{HEADER}ZY1,+1+1,13800138000,内科,2026-11-20,\n\
         ZY2,-2+3,13800138000,内科,2026-11-20,\n\
         ZY3,张三,13800138000,内科,2026-11-20,@SUM(A1)\n\
         ZY4,李四,13800138000,内科,2026-11-20,\"\t=cmd|' /C calc'!A0\"\n\
         =HYPERLINK(\"\"http://x\"\"),王五,13800138000,内科,2026-11-20,\n\
         ZY6,赵六,13800138000,内科,2026-11-20,-\n\
         -7,钱七,+86 138 0013 8000,内科,2026-11-20,\n\
         ZY8,孙八,-13800138000,内科,2026-11-20,--\n\
         ZY9,周九,13800138000,内科,2026-11-20,+\n"
    ));
    let m = messages(&p);
    assert_eq!(m.len(), 6, "{m:?}");
    assert!(m[0].starts_with("line 2: name \"+1+1\" looks like a spreadsheet formula"), "{}", m[0]);
    assert!(m[1].starts_with("line 3: name \"-2+3\" looks like a spreadsheet formula"), "{}", m[1]);
    assert!(m[2].starts_with("line 4: diagnosis \"@SUM(A1)\" looks like a spreadsheet formula"), "{}", m[2]);
    assert!(m[3].starts_with("line 5: diagnosis \"=cmd|"), "{}", m[3]);
    assert!(m[3].contains("looks like a spreadsheet formula"), "{}", m[3]);
    assert!(m[4].starts_with("line 6: admission number \"=HYPERLINK"), "{}", m[4]);
    assert!(m[5].starts_with("line 10: diagnosis \"+\" looks like a spreadsheet formula"), "{}", m[5]);
    let lines: Vec<u32> = p.discharges.iter().map(|r| r.line).collect();
    assert_eq!(lines, [7, 8, 9], "{m:?}");
    // Hyphens alone mean "none"; a plain-number admission number and `+86`/`-` in a phone are values.
    assert!(p.discharges.iter().all(|r| r.diagnosis.is_none()));
    assert_eq!(p.discharges[1].his_key, "-7");
    assert!(p.discharges[1..].iter().all(|r| r.phone == "13800138000"));
}
