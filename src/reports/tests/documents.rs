//! Tables, CSV and the HTML documents, over fixtures, demo data and damaged records.

use super::*;

#[test]
fn tables_render_as_csv_with_bom_and_parse() {
    let s = fixture();
    let r = refs();
    for t in tables::monthly(&s, &r, Lang::Zh).iter().chain(&tables::weekly(&s, &r, Lang::En)) {
        let mut buf = Vec::new();
        t.write_csv(&mut buf).unwrap();
        assert!(buf.starts_with(b"\xEF\xBB\xBF"), "{}", t.name);
        assert!(buf.windows(2).any(|w| w == b"\r\n"));
        let mut rd = csv::ReaderBuilder::new().from_reader(&buf[3..]);
        let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, t.columns.iter().map(|c| c.key).collect::<Vec<_>>(), "{}", t.name);
        let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), t.rows.len(), "{}", t.name);
        assert!(rows.iter().all(|row| row.len() == header.len()), "{}", t.name);
    }
    let k = tables::kpis(&s, Lang::Zh);
    let row = k.rows.iter().find(|r| r[0].text == "satisfaction_positive.overall").unwrap();
    assert_eq!((row[2].text.as_str(), row[3].text.as_str(), row[5].text.as_str()), ("4", "6", "66.7"));
    // The opinion sheet's case list masks complainants' names.
    let list = tables::cases_list(&s, &r, Lang::Zh);
    let col = list.column("complainant").unwrap();
    assert!(list.rows.iter().all(|row| row[col].text == "李*"));
}

#[test]
fn documents_escape_record_text_and_show_every_section() {
    let s = fixture();
    let opts = html::DocOptions {
        lang: Lang::Zh,
        generated_at: at(11, 23, 8, 0),
        organisation: Some("市第一医院 <总院>".into()),
    };
    let w = html::weekly(&s, &refs(), &opts);
    assert!(!w.contains("<script>"), "record text must be escaped");
    assert!(w.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;慢&quot;"));
    assert!(w.contains("市第一医院 &lt;总院&gt;"));
    assert!(w.contains("《医院客户服务意见表》"));
    for id in ["overview", "kpis", "satisfaction", "opinions", "cases", "followup", "actions", "definitions"] {
        assert!(w.contains(&format!("data-section=\"{id}\"")), "weekly lacks {id}");
    }
    assert!(w.contains("@page") && w.contains("size: A4") && w.contains("<svg"));
    let m = html::monthly(&s, &refs(), &opts);
    for id in [
        "summary",
        "arrivals",
        "waiting",
        "consultations",
        "satisfaction",
        "cases",
        "followup",
        "accountability",
        "analysis",
        "definitions",
    ] {
        assert!(m.contains(&format!("data-section=\"{id}\"")), "monthly lacks {id}");
    }
    assert_eq!(m.matches("<svg").count(), 6, "arrivals by hour and day, trend, grades, two follow-up charts");
    assert_eq!(w.matches("<svg").count(), 2, "trend and grades");
}

/// 2026-11-23 10:00 in China.
const T0: i64 = 1_795_399_200_000;

fn demo_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    crate::demo::generate(&store, crate::demo::DemoOptions { days: 45, per_day: 60, seed: 5 }).unwrap();
    (dir, store)
}

fn everything(store: &Store) -> Vec<AnyRecord> {
    let mut all = Vec::new();
    for kind in RecordKind::ALL {
        store
            .for_each_between(kind, Moment(i64::MIN), Moment(i64::MAX), |r| {
                all.push(r);
                Ok(())
            })
            .unwrap();
    }
    all
}

#[test]
fn documents_from_demo_data_show_the_kpi_figures() {
    let (dir, store) = demo_store();
    let all = everything(&store);
    let refs = store.reference();
    for (kind, date, sections) in [
        (DocKind::Weekly, d(11, 16), &["overview", "kpis", "satisfaction", "opinions", "cases", "followup"][..]),
        (DocKind::Monthly, d(10, 1), &["summary", "arrivals", "waiting", "consultations", "accountability"][..]),
    ] {
        for lang in [Lang::Zh, Lang::En] {
            let r = cli::generate(&store, kind, date, lang).unwrap();
            let s = &r.summary;
            assert_eq!(s.params().as_of, d(11, 23));
            let a = &s.agg;
            assert!(a.arrivals.total > 0 && a.feedback.total > 0 && a.cases.total > 0 && a.calls.total > 0);
            // The streaming pass over the store equals folding every record in memory.
            assert_eq!(s, &summarize(&all, *s.params(), &refs), "{kind:?}");
            let shown: Vec<&Kpi> = match kind {
                DocKind::Weekly => vec![
                    &s.overall_satisfaction,
                    &s.registration_dissatisfaction,
                    &s.guide_dissatisfaction,
                    &s.complaint_handling,
                    &s.case_on_time,
                    &s.call_satisfaction,
                    &s.inpatient_followup,
                    &s.outpatient_followup,
                ],
                DocKind::Monthly => s.headline(),
            };
            for k in shown {
                let attr = format!(
                    "data-kpi=\"{}\" data-numerator=\"{}\" data-denominator=\"{}\"",
                    k.metric.key(),
                    k.numerator,
                    k.denominator
                );
                assert!(r.html.contains(&attr), "{kind:?} {lang:?} lacks {attr}");
                assert!(r.html.contains(&format!(">{}</td>", k.pct_text())), "{kind:?} lacks {}", k.pct_text());
            }
            for id in sections {
                assert!(r.html.contains(&format!("data-section=\"{id}\"")), "{kind:?} lacks {id}");
            }
            assert!(r.html.contains(&format!(">{}</b>", a.arrivals.total)));
            for t in &r.tables {
                // Every table is in the document except those only kept as CSV (the KPI list is shown as the
                // headline table, the daily figures as charts).
                let csv_only = ["kpis", "arrivals_by_day", "satisfaction_by_day", "accountability_history"];
                assert!(
                    r.html.contains(&format!("data-table=\"{}\"", t.name)) || csv_only.contains(&t.name),
                    "{}",
                    t.name
                );
                let mut buf = Vec::new();
                t.write_csv(&mut buf).unwrap();
                let mut rd = csv::ReaderBuilder::new().from_reader(&buf[3..]);
                assert_eq!(rd.records().count(), t.rows.len(), "{}", t.name);
            }
        }
    }

    // The CLI path writes the HTML and one CSV per table, leaving no temporary files.
    let out = dir.path().join("out");
    let args = cli::ReportArgs {
        weekly: false,
        monthly: true,
        date: Some(d(10, 15)),
        out: out.join("monthly.html"),
        csv_dir: Some(out.join("csv")),
        lang: Lang::Zh,
    };
    std::fs::create_dir_all(&out).unwrap();
    let w = cli::run(&store, &args).unwrap();
    assert_eq!(w.period, "2026-10");
    assert!(std::fs::read_to_string(&w.html).unwrap().starts_with("<!DOCTYPE html>"));
    assert_eq!(
        w.csv.len(),
        tables::monthly(
            &cli::generate(&store, DocKind::Monthly, d(10, 15), Lang::Zh).unwrap().summary,
            &refs,
            Lang::Zh
        )
        .len()
    );
    let leftovers = std::fs::read_dir(out.join("csv"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".partial"))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn aggregating_the_store_in_pieces_equals_one_pass() {
    let (_dir, store) = demo_store();
    let p = ReportParams::new(Period::month_of(d(10, 10)), off(), d(11, 23));
    let whole = source::aggregate(&store, p).unwrap();
    let all = everything(&store);
    let mut pieces: Vec<Aggregator> = (0..4).map(|_| Aggregator::new(p)).collect();
    for (i, r) in all.iter().enumerate() {
        pieces[i * 7 % 4].add(r);
    }
    let mut merged = Aggregator::new(p);
    for a in &pieces {
        merged.merge(a);
    }
    assert_eq!(merged, whole);
}

/// Records of the week whose other instants are impossible (issue 17, finding 4): closed at `i64::MAX` ms or in the
/// year 9999, a step at `i64::MIN`, a task closed before 1970.
fn damaged_records() -> Vec<AnyRecord> {
    let mut far = case(&CaseSpec {
        status: CaseStatus::Closed,
        closed: Some(Moment(i64::MAX)),
        handling: Some(Rating::Satisfied),
        ..spec(at(11, 18, 9, 0), CaseGrade::Complaint, &["cardio"], d(11, 20))
    });
    if let AnyRecord::Case(c) = &mut far {
        c.id = RecordId::new_v7(at(11, 18, 9, 1));
    }
    let mut y9999 = case(&CaseSpec {
        status: CaseStatus::Closed,
        closed: Some(Moment::start_of_day(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(), off())),
        ..spec(at(11, 18, 9, 2), CaseGrade::Dispute, &["neuro"], d(11, 20))
    });
    if let AnyRecord::Case(c) = &mut y9999 {
        c.id = RecordId::new_v7(at(11, 18, 9, 3));
    }
    let mut stepped = arrival(at(11, 18, 10, 0), "cardio", VisitType::First, ArrivalChannel::WalkIn, &[], &[]);
    if let AnyRecord::Arrival(a) = &mut stepped {
        a.id = RecordId::new_v7(at(11, 18, 10, 1));
        a.steps[0].at = Moment(i64::MIN);
    }
    let mut task_closed =
        task(at(11, 18, 11, 0), TaskGroup::Discharge, Some("cardio"), FollowupStatus::Completed, d(11, 20));
    if let AnyRecord::FollowupTask(t) = &mut task_closed {
        t.id = RecordId::new_v7(at(11, 18, 11, 1));
        t.closed_at = lww(Some(Moment(-1)));
    }
    vec![far, y9999, stepped, task_closed]
}

/// Records whose business time itself is impossible: outside every sane period, so ignored like any record of
/// another period, and never a panic.
fn far_out_records() -> Vec<AnyRecord> {
    vec![
        arrival(Moment(i64::MAX), "cardio", VisitType::First, ArrivalChannel::WalkIn, &[], &[(VisitStep::Done, 5)]),
        arrival(Moment(i64::MIN), "cardio", VisitType::First, ArrivalChannel::WalkIn, &[], &[]),
        feedback(Moment(i64::MAX), Rating::Satisfied, &[], true, Some("x"), false),
        consultation(Moment(i64::MIN), Some(NaiveDate::MAX), false),
        case(&spec(Moment(i64::MAX), CaseGrade::Dispute, &["cardio"], NaiveDate::MAX)),
        case(&spec(Moment(i64::MIN), CaseGrade::Dispute, &["cardio"], NaiveDate::MIN)),
        task(Moment(i64::MIN), TaskGroup::Case, None, FollowupStatus::Open, NaiveDate::MIN),
        call(Moment(i64::MAX), CallOutcome::Reached, Some(Some(Rating::Satisfied))),
    ]
}

#[test]
fn damaged_records_are_skipped_named_and_change_no_figure() {
    let damaged = damaged_records();
    let good = all_records();
    let mut recs = good.clone();
    recs.extend(damaged.iter().cloned());
    recs.extend(far_out_records());
    let s = summarize(&recs, params(), &refs());

    let named: Vec<(RecordKind, RecordId)> = s.skipped.iter().map(|r| (r.kind, r.id)).collect();
    let mut want: Vec<(RecordKind, RecordId)> = damaged.iter().map(|r| (r.kind(), r.id())).collect();
    want.sort();
    assert_eq!(named, want, "every damaged record of the period is named, by kind and id, and nothing else");
    assert_eq!(s.skipped_count(), 4);
    let reasons: Vec<&str> = s.skipped.iter().map(|r| r.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.starts_with("closed_at 9223372036854775807 ms is outside")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("closed_at 9999-12-30T16:00:00.000Z is outside")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("steps.at -9223372036854775808 ms")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("closed_at 1969-12-31T23:59:59.999Z")), "{reasons:?}");

    // Every figure is that of the good records alone.
    let mut without = s.clone();
    without.skipped.clear();
    without.agg.skipped = crate::reports::agg::SkippedAcc::default();
    assert!(without == summarize(&good, params(), &refs()), "the damaged records changed a figure");

    // Pieces merged in any order name the same records.
    let mut a = Aggregator::new(params());
    let mut b = Aggregator::new(params());
    for (i, r) in recs.iter().enumerate() {
        if i % 2 == 0 { a.add(r) } else { b.add(r) }
    }
    let mut ab = a.clone();
    ab.merge(&b);
    b.merge(&a);
    assert_eq!(ab, b);
    assert_eq!(ab.skipped, s.agg.skipped);
}

#[test]
fn documents_and_tables_over_damaged_records_name_them_and_do_not_panic() {
    let mut recs = all_records();
    recs.extend(damaged_records());
    recs.extend(far_out_records());
    for p in [params(), ReportParams::new(Period::month_of(d(11, 1)), off(), d(11, 23))] {
        let s = summarize(&recs, p, &refs());
        assert_eq!(s.skipped_count(), 4);
        for lang in [Lang::Zh, Lang::En] {
            // Generated "at" an impossible time too: the header clamps it.
            let opts = html::DocOptions { lang, generated_at: Moment(i64::MAX), organisation: None };
            for doc in [html::weekly(&s, &refs(), &opts), html::monthly(&s, &refs(), &opts)] {
                assert!(doc.contains("data-skipped=\"4\""), "{lang:?}");
                for r in &s.skipped {
                    assert!(doc.contains(&r.id.to_string()), "{lang:?} does not name {}", r.id);
                }
                assert!(
                    doc.contains(if lang == Lang::En {
                        "4 records skipped"
                    } else {
                        "4 条记录因时间超出合理范围"
                    }),
                    "{lang:?}"
                );
            }
            for t in tables::weekly(&s, &refs(), lang).iter().chain(&tables::monthly(&s, &refs(), lang)) {
                let mut buf = Vec::new();
                t.write_csv(&mut buf).unwrap();
                let mut rd = csv::ReaderBuilder::new().from_reader(&buf[3..]);
                assert_eq!(rd.records().count(), t.rows.len(), "{}", t.name);
            }
        }
    }
    // A period at the far end of the calendar holds the far-out records themselves: skipped and named, no panic.
    let end = ReportParams::new(Period::month_of(NaiveDate::from_ymd_opt(9999, 12, 1).unwrap()), off(), d(11, 23));
    let s = summarize(&recs, end, &refs());
    assert!(s.skipped.iter().any(|r| r.kind == RecordKind::Case), "{:?}", s.skipped);
    let opts = html::DocOptions { lang: Lang::En, generated_at: Moment(i64::MIN), organisation: None };
    assert!(html::monthly(&s, &refs(), &opts).contains("records skipped"));
}

#[test]
fn csv_tables_neutralise_formulas_from_record_text() {
    let mut recs = all_records();
    let payloads = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"];
    for (i, p) in payloads.iter().enumerate() {
        let t = at(11, 19, 8, i64::try_from(i).unwrap());
        recs.push(feedback(t, Rating::Dissatisfied, &[], true, Some(&format!("x{p}")), false));
        if let AnyRecord::Feedback(f) = recs.last_mut().unwrap() {
            // The comment is trimmed when listed, so the payload goes where nothing trims it: a preset reason.
            f.reasons = vec![(*p).to_string()];
        }
        let mut c = case(&spec(t, CaseGrade::Complaint, &["cardio"], d(11, 20)));
        if let AnyRecord::Case(c) = &mut c {
            c.facts = (*p).to_string();
            c.complainant = (*p).to_string();
        }
        recs.push(c);
    }
    let s = summarize(&recs, params(), &refs());
    let mut seen = 0;
    for t in tables::weekly(&s, &refs(), Lang::Zh) {
        let mut buf = Vec::new();
        t.write_csv(&mut buf).unwrap();
        let mut rd = csv::ReaderBuilder::new().from_reader(&buf[3..]);
        for row in rd.records() {
            for cell in &row.unwrap() {
                assert!(!crate::csv_safe::looks_like_formula(cell), "{}: {cell:?}", t.name);
                if payloads.iter().any(|p| cell == format!("'{p}")) {
                    seen += 1;
                }
            }
        }
    }
    assert!(seen >= payloads.len() * 2, "the payloads are in the tables, neutralised ({seen})");
}

/// The store's report pass reads follow-up tasks created after the period, so a discharge of the period imported
/// late is counted in it (`agg::filing_day`).
#[test]
fn a_discharge_list_imported_after_the_week_counts_in_the_week_read_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Moment(T0)));
    let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: china_offset() }).unwrap();
    // Imported on Tuesday 11-24, discharged on Friday 11-20.
    let AnyRecord::FollowupTask(mut t) = super::task(
        super::at(11, 24, 9, 0),
        crate::reports::agg::TaskGroup::Discharge,
        Some("cardio"),
        crate::model::FollowupStatus::Open,
        d(11, 27),
    ) else {
        unreachable!()
    };
    t.source =
        crate::model::FollowupSource::Discharge { his_key: "Z77".into(), discharged_on: d(11, 20), diagnosis: None };
    store.write(|ctx| ctx.put(&t)).unwrap();
    let week = crate::reports::ReportParams::new(crate::reports::Period::week_of(d(11, 18)), china_offset(), d(11, 24));
    let agg = crate::reports::source::aggregate(&store, week).unwrap();
    assert_eq!(agg.followups.group(crate::reports::agg::TaskGroup::Discharge).total, 1);
    let next = crate::reports::ReportParams::new(crate::reports::Period::week_of(d(11, 25)), china_offset(), d(11, 30));
    let agg = crate::reports::source::aggregate(&store, next).unwrap();
    assert_eq!(
        agg.followups.group(crate::reports::agg::TaskGroup::Discharge).total,
        0,
        "not in the week it was imported"
    );
}
