//! Regression tests for the data findings of the HQ security review (issue 17): a record with an impossible time
//! must not break a report (finding 4), and no CSV the project writes may carry a spreadsheet formula (finding 5).
//! Kiosk-side only (no `hq` feature): the HQ endpoints use the same report and CSV code.

use std::sync::Arc;

use guidedesk::csv_safe::looks_like_formula;
use guidedesk::export::{self, ExportOptions, Format};
use guidedesk::import::Limits;
use guidedesk::import::discharges;
use guidedesk::model::case::RoundStatus;
use guidedesk::model::{
    AnyRecord, Arrival, ArrivalChannel, ArrivalForm, AuditAction, Case, CaseChannel, CaseForm, CaseGrade, CaseStatus,
    FeedbackForm, Lww, Moment, Rating, RecordId, RecordKind, Sex, StaffRef, VisitType,
};
use guidedesk::reports::cli::{self, DocKind};
use guidedesk::reports::{Lang, Period, ReportParams, source, summary::summarize};
use guidedesk::store::{ManualClock, Store, StoreOptions, china_offset};

/// 2026-11-23 10:00 in China (a Monday).
const T0: i64 = 1_795_399_200_000;

/// The payloads of finding 5: each opens as a formula (or a DDE call) in Excel, WPS or LibreOffice.
const PAYLOADS: [&str; 6] = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"];

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    (dir, store)
}

/// Registers an arrival now; `edit` changes the record after validation, as a record synced from another kiosk or
/// written by another version would be, never re-validated.
fn arrival(store: &Store, edit: impl FnOnce(&mut Arrival)) -> RecordId {
    let refs = store.reference();
    store
        .write(|ctx| {
            let form = ArrivalForm {
                name: "王秀英".into(),
                sex: Some(Sex::Female),
                visit_type: Some(VisitType::Return),
                channel: Some(ArrivalChannel::WalkIn),
                complaint: "头痛".into(),
                department: refs.departments[0].id.clone(),
                ..ArrivalForm::default()
            };
            let draft = form.validate(&refs, ctx.today()).unwrap();
            let (id, now, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
            let mut a = draft.into_record(id, now, StaffRef("D001".into()), stamp);
            edit(&mut a);
            ctx.put(&a)?;
            Ok(a.id)
        })
        .unwrap()
}

/// Takes a complaint now through the normal workflow, then applies `edit` to the stored case.
fn case(store: &Store, edit: impl FnOnce(&mut Case)) -> RecordId {
    store
        .write(|ctx| {
            let form = CaseForm {
                grade: Some(CaseGrade::Complaint),
                channel: Some(CaseChannel::InPerson),
                complainant: "李强".into(),
                complainant_phone: "13700001111".into(),
                facts: "候诊两小时无人告知".into(),
                ..CaseForm::default()
            };
            let id = guidedesk::command::cases::new_case(ctx, &form, StaffRef("K001".into()))?;
            let mut c: Case = ctx.get(id)?.unwrap();
            edit(&mut c);
            ctx.put(&c)?;
            Ok(id)
        })
        .unwrap()
}

fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "CSV with BOM");
    let mut rd = csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[3..]);
    rd.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect()
}

fn export_csv(store: &Store, kind: RecordKind) -> Vec<u8> {
    let opts =
        ExportOptions { kind, from: Moment(i64::MIN), to: Moment(i64::MAX), format: Format::Csv, mask_phones: false };
    let mut buf = Vec::new();
    export::export(store, &opts, &mut buf).unwrap();
    buf
}

#[test]
fn finding_4_far_future_times_do_not_panic_reports() {
    let (_dir, store) = store();
    let good = arrival(&store, |_| {});
    // Cases of this week: one closed at i64::MAX ms, one closed in the year 9999; an arrival whose step is at
    // i64::MIN. Before the fix the first made every report, table and export over the week panic in chrono.
    let closed_at_max = case(&store, |c| {
        c.status = Lww::new(RoundStatus { round: 0, status: CaseStatus::Closed }, c.status.stamp);
        c.closed_at = Lww::new(Some(Moment(i64::MAX)), c.closed_at.stamp);
    });
    let closed_in_9999 = case(&store, |c| {
        c.status = Lww::new(RoundStatus { round: 0, status: CaseStatus::Closed }, c.status.stamp);
        c.closed_at = Lww::new(Some(Moment(253_402_214_399_999)), c.closed_at.stamp);
    });
    let step_at_min = arrival(&store, |a| a.steps[0].at = Moment(i64::MIN));
    // Records whose business time itself is impossible: in no sane period, and exports must still list them. (The
    // store's ranges end before i64::MAX, so the latest instant a range can hold is used.)
    arrival(&store, |a| a.arrived_at = Moment(i64::MAX - 1));
    case(&store, |c| c.received_at = Moment(i64::MIN));
    let bad = [closed_at_max, closed_in_9999, step_at_min];

    let today = store.today();
    for kind in [DocKind::Weekly, DocKind::Monthly] {
        for lang in [Lang::Zh, Lang::En] {
            let r = cli::generate(&store, kind, today, lang).unwrap();
            let s = &r.summary;
            let mut named: Vec<RecordId> = s.skipped.iter().map(|x| x.id).collect();
            named.sort();
            let mut want = bad.to_vec();
            want.sort();
            assert_eq!(named, want, "{kind:?} {lang:?}: the damaged records of the period, by id");
            assert_eq!(s.skipped.iter().filter(|x| x.kind == RecordKind::Case).count(), 2);
            assert_eq!(s.agg.arrivals.total, 1, "only the good arrival ({good}) is counted");
            assert_eq!(s.agg.cases.total, 0, "no damaged case is counted");
            for id in bad {
                assert!(r.html.contains(&id.to_string()), "{kind:?} {lang:?}: the document names {id}");
            }
            for t in &r.tables {
                let mut buf = Vec::new();
                t.write_csv(&mut buf).unwrap();
                assert_eq!(csv_rows(&buf).len(), t.rows.len() + 1, "{}", t.name);
            }
        }
    }

    // The dashboard's pass over the store, and the pure summary over every record at once.
    let params = ReportParams::new(Period::week_of(today), store.utc_offset(), today);
    assert_eq!(source::aggregate(&store, params).unwrap().skipped.count(), 3);
    let mut all: Vec<AnyRecord> = Vec::new();
    for kind in RecordKind::ALL {
        store
            .for_each_between(kind, Moment(i64::MIN), Moment(i64::MAX), |r| {
                all.push(r);
                Ok(())
            })
            .unwrap();
    }
    // Periods at both ends of the calendar hold the records whose business time is near i64::MAX or i64::MIN (clamped
    // to 9999-12-31 and 0000-01-02 local): they are skipped and named there, and the documents render.
    let month = |y, m| Period::month_of(chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap());
    for (period, n) in [(params.period, 3), (month(9999, 12), 1), (month(0, 1), 1)] {
        let s = summarize(&all, ReportParams::new(period, china_offset(), today), &store.reference());
        assert_eq!(s.skipped.len(), n, "{period:?}: {:?}", s.skipped);
        for kind in [DocKind::Weekly, DocKind::Monthly] {
            let r = cli::render(s.clone(), &store.reference(), kind, Lang::En, Moment(i64::MAX));
            assert!(r.html.contains(&s.skipped[0].id.to_string()));
        }
    }

    // Every export of the records, CSV and JSON, still works.
    for kind in [RecordKind::Arrival, RecordKind::Case] {
        // A header and three records of each kind.
        assert_eq!(csv_rows(&export_csv(&store, kind)).len(), 4, "{kind}");
        let opts = ExportOptions {
            kind,
            from: Moment(i64::MIN),
            to: Moment(i64::MAX),
            format: Format::Json,
            mask_phones: true,
        };
        let mut buf = Vec::new();
        export::export(&store, &opts, &mut buf).unwrap();
        assert!(serde_json::from_slice::<serde_json::Value>(&buf).unwrap().is_array());
    }
}

#[test]
fn finding_5_csv_formula_injection_is_neutralised_in_every_writer() {
    let (dir, store) = store();
    for p in PAYLOADS {
        arrival(&store, |a| {
            a.name = p.into();
            a.complaint = p.into();
            a.origin = Some(p.into());
        });
        case(&store, |c| {
            c.complainant = p.into();
            c.facts = p.into();
        });
        store
            .write(|ctx| {
                let form = FeedbackForm {
                    survey_version: 1,
                    overall: Some(Rating::Dissatisfied),
                    comment: "x".into(),
                    complete: true,
                    ..FeedbackForm::default()
                };
                let mut f = form.into_record(ctx.new_id(), ctx.now()).unwrap();
                f.comment = Some(p.into());
                f.reasons = vec![p.into()];
                ctx.append_feedback(f)?;
                Ok(())
            })
            .unwrap();
        store.audit(&StaffRef(p.into()), AuditAction::Export, None, p).unwrap();
    }

    let check = |what: &str, rows: &[Vec<String>], min_hits: usize| {
        let mut hits = 0;
        for row in rows {
            for cell in row {
                assert!(!looks_like_formula(cell), "{what}: {cell:?} would run in a spreadsheet");
                hits += usize::from(PAYLOADS.iter().any(|p| *cell == format!("'{p}")));
            }
        }
        assert!(hits >= min_hits, "{what}: {hits} neutralised payloads, expected at least {min_hits}");
    };

    // The kiosk's exports (the audit CSV of the supervisors' screen is the audit export, written to a file).
    for (kind, per_payload) in
        [(RecordKind::Arrival, 3), (RecordKind::Case, 2), (RecordKind::Feedback, 2), (RecordKind::Audit, 1)]
    {
        check(kind.name(), &csv_rows(&export_csv(&store, kind)), PAYLOADS.len() * per_payload);
    }
    let path = dir.path().join("audit.csv");
    let opts = ExportOptions {
        kind: RecordKind::Audit,
        from: Moment(i64::MIN),
        to: Moment(i64::MAX),
        format: Format::Csv,
        mask_phones: true,
    };
    export::export_to_path(&store, &opts, &path).unwrap();
    check("audit file", &csv_rows(&std::fs::read(&path).unwrap()), PAYLOADS.len());

    // The report tables (the same writer serves HQ's table.csv).
    let r = cli::generate(&store, DocKind::Weekly, store.today(), Lang::Zh).unwrap();
    let mut tables_rows = Vec::new();
    for t in &r.tables {
        let mut buf = Vec::new();
        t.write_csv(&mut buf).unwrap();
        tables_rows.extend(csv_rows(&buf));
    }
    check("report tables", &tables_rows, PAYLOADS.len());

    // The importer refuses such cells by the same rule.
    let mut list = String::from("住院号,姓名,联系电话,出院科室,出院日期,出院诊断\n");
    for (i, p) in PAYLOADS.iter().enumerate() {
        let cell = format!("\"{}\"", p.replace('"', "\"\""));
        list.push_str(&format!(
            "ZY{i},{cell},13800138000,内科,2026-11-20,\nZZ{i},张三,13800138000,内科,2026-11-20,{cell}\n"
        ));
    }
    let parsed = discharges::parse(list.as_bytes(), None, &store.reference(), store.today(), &Limits::DEFAULT).unwrap();
    // A leading tab or carriage return is trimmed (`\tcmd` is then the harmless text `cmd`); every other payload
    // is refused, as a name and as a diagnosis.
    assert_eq!(parsed.errors.len(), 2 * (PAYLOADS.len() - 2), "{:?}", parsed.errors);
    assert!(
        parsed.errors.iter().all(|e| e.message.contains("looks like a spreadsheet formula")),
        "{:?}",
        parsed.errors
    );
    assert!(
        parsed
            .discharges
            .iter()
            .all(|d| !looks_like_formula(&d.name) && d.diagnosis.as_deref().is_none_or(|x| !looks_like_formula(x)))
    );
}
