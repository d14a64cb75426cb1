//! The figures: each measured at 1×, 10× and 100× its base size, with its baselines in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use egui_kittest::Harness;
use guidedesk::config::Language;
use guidedesk::demo::{self, DemoOptions};
use guidedesk::kiosk_sync::{self, SyncOptions};
use guidedesk::model::VisitStep;
use guidedesk::reports::Lang;
use guidedesk::reports::cli::{DocKind, generate};
use guidedesk::store::Store;
use guidedesk::ui::board::BoardScreen;
use guidedesk::ui::i18n::Tr;
use guidedesk::ui::theme;
use guidedesk::ui::{DeskScreen, ScreenCtx};
use guidedesk_sync::codec;
use guidedesk_sync::protocol::PushRequest;

use crate::Sizes;
use crate::baselines::{self, Fsync, RawServer, Sqlite};
use crate::children::{self, StartHq};
use crate::fixtures;
use crate::table::{Samples, Table, WriteCost, n, ratio, thread_cpu, us};

const GROWTH: [u64; 3] = [1, 10, 100];

/// The figure groups `--only` selects from, in run order.
/// `share-visibility`, `share-backfill`, `share-idle` and `share-burst` run one part of `share`.
pub const GROUPS: [&str; 12] = [
    "register",
    "board",
    "demo",
    "report",
    "sync",
    "hq",
    "relay",
    "share",
    "share-visibility",
    "share-backfill",
    "share-idle",
    "share-burst",
];

pub fn run_all(s: &Sizes, t: &mut Table) -> Result<()> {
    if s.runs("register") {
        eprintln!("== register, lookups, board read");
        register_lookups_board(s, t)?;
    }
    if s.runs("board") {
        eprintln!("== board frame");
        board_frame(s, t)?;
    }
    if s.runs("demo") {
        eprintln!("== demo seeding and cold start");
        demo_and_cold_start(s, t)?;
    }
    if s.runs("report") {
        eprintln!("== monthly report");
        monthly_report(s, t)?;
    }
    // PostgreSQL at DATABASE_URL (or the local default): its figures say why when it cannot be reached.
    let pg = if s.runs("sync") || s.runs("hq") { children::postgres_reachable() } else { Ok(()) };
    let pg_note =
        |e: &anyhow::Error| format!("not measured: PostgreSQL at {} unreachable: {e}", children::database_url());
    if s.runs("sync") {
        eprintln!("== sync push");
        let mut backends: Vec<(&str, StartHq)> = vec![("the embedded HQ", children::embedded_hq)];
        if pg.is_ok() {
            backends.push(("HQ on PostgreSQL", children::postgres_hq));
        }
        sync_push(s, t, &backends)?;
        if let Err(e) = &pg {
            t.info("sync push over loopback to HQ on PostgreSQL", pg_note(e), "");
        }
    }
    if s.runs("relay") {
        eprintln!("== site hub relay to the group HQ");
        crate::relay::run(s, t)?;
    }
    if crate::sharing::PARTS.iter().any(|p| s.runs_part("share", p)) {
        eprintln!("== sharing within a site");
        crate::sharing::run(s, t)?;
    }
    if s.runs("hq") {
        eprintln!("== HQ under many kiosks");
        hq_many(s, t, "embedded redb", children::embedded_hq)?;
        match &pg {
            Ok(()) => hq_many(s, t, "PostgreSQL", children::postgres_hq)?,
            Err(e) => {
                t.info(format!("HQ on PostgreSQL, {} kiosks pushing at once", s.kiosks), pg_note(e), "");
                t.info("HQ memory under that load (PostgreSQL)", pg_note(e), "");
            }
        }
    }
    Ok(())
}

/// The kiosk's sync options, with the push batch of `--batch` when given.
fn sync_options(s: &Sizes) -> SyncOptions {
    let mut o = SyncOptions::default();
    if let Some(b) = s.batch {
        o.batch = b;
    }
    o
}

/// A small deterministic sequence for picking samples.
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

fn register_lookups_board(s: &Sizes, t: &mut Table) -> Result<()> {
    let mut prev: Option<(f64, f64, f64)> = None;
    for g in GROWTH {
        let total = s.arrivals_base * g;
        let dir = tempfile::tempdir()?;
        let (store, clock) = fixtures::open(dir.path())?;
        let seed_t = Instant::now();
        fixtures::seed_arrivals(&store, total, 500, 1_000)?;
        eprintln!("  seeded {total} arrivals in {:.1} s", seed_t.elapsed().as_secs_f64());
        let label = format!("{} arrivals", n(total));
        let largest = g == 100;

        // Register one arrival: ours, SQLite with as many rows, bare write+fsync of the same bytes. The three are
        // measured in turn, one sample of each per round, so that all of them see the same disk (its fsync latency
        // drifts by several times while other work runs on the machine).
        let sdir = tempfile::tempdir()?;
        let mut sq = Sqlite::open(sdir.path(), store.reference())?;
        sq.seed(total)?;
        let mut fs = Fsync::open(sdir.path())?;
        let fs_keys = guidedesk::store::crypto::StoreKey::generate()?.derive();
        let mut hlc = guidedesk_sync::HlcClock::resume(1, guidedesk_sync::Hlc::ZERO);
        let mut fs_seq = 1;
        let (mut ours, mut sql, mut raw) =
            (Vec::with_capacity(s.reps), Vec::with_capacity(s.reps), Vec::with_capacity(s.reps));
        // What each commit sends to the disk, measured apart from the timings (reading the counters takes a
        // system call): every tenth round.
        let mut cost = [WriteCost::default(); 3];
        for k in 0..s.reps as u64 {
            clock.advance(1);
            let metered = k % 10 == 9;
            let t0 = Instant::now();
            if metered {
                cost[0].measure(|| fixtures::register_one(&store, total + k))?;
            } else {
                fixtures::register_one(&store, total + k)?;
                ours.push(t0.elapsed());
            }

            let t0 = Instant::now();
            if metered {
                cost[1].measure(|| sq.register(total + k, fixtures::NOW + k as i64))?;
            } else {
                sq.register(total + k, fixtures::NOW + k as i64)?;
                sql.push(t0.elapsed());
            }

            // The same registration's bytes: the arrival's record and op, and its task's when it gets one.
            let bytes = baselines::sealed_registration(
                &store.reference(),
                &fs_keys,
                &mut hlc,
                &mut fs_seq,
                total + k,
                fixtures::NOW,
            )?;
            let t0 = Instant::now();
            if metered {
                cost[2].measure(|| fs.commit(&bytes))?;
            } else {
                fs.commit(&bytes)?;
                raw.push(t0.elapsed());
            }
        }
        let (o, q, f) = (
            Samples::from_durations(&ours).median(),
            Samples::from_durations(&sql).median(),
            Samples::from_durations(&raw).median(),
        );
        t.info(format!("baseline: SQLite WAL+FULL registration, median ({label})"), us(q), "");
        t.info(format!("baseline: write+fsync of the same bytes, median ({label})"), us(f), "");
        t.target(
            format!("register one arrival, median ({label})"),
            us(o),
            "≤ SQLite; ≤ 2× write+fsync",
            format!("{} of SQLite; {} of write+fsync", ratio(o, q), ratio(o, f)),
            o <= q && o <= 2.0 * f,
        );
        for (what, c) in
            ["register one arrival", "baseline: SQLite WAL+FULL registration", "baseline: write+fsync"].iter().zip(cost)
        {
            t.info(format!("{what}: written per commit, mean of {} ({label})", c.samples), c.per_commit(), "");
        }

        // Lookups.
        let mut seed = 42u64;
        let lookups = s.reps.max(1_000);
        let mut by_phone = Vec::with_capacity(lookups);
        let mut found = 0usize;
        for _ in 0..lookups {
            let i = lcg(&mut seed) % total;
            let p = fixtures::phone(i);
            let t0 = Instant::now();
            let hits = store.find_by_phone(&p)?;
            by_phone.push(t0.elapsed());
            found += usize::from(!hits.is_empty());
        }
        anyhow::ensure!(found == lookups, "phone lookup found {found} of {lookups} existing phones");
        let mut by_name = Vec::with_capacity(lookups);
        for _ in 0..lookups {
            let i = lcg(&mut seed) % total;
            let name = fixtures::name(i);
            let prefix: String = name.chars().take(2).collect();
            let t0 = Instant::now();
            let hits = store.find_by_name_prefix(&prefix, 50)?;
            by_name.push(t0.elapsed());
            anyhow::ensure!(!hits.is_empty(), "name prefix {prefix} found nothing");
        }
        let (pp, pn) = (Samples::from_durations(&by_phone).pct(99.0), Samples::from_durations(&by_name).pct(99.0));
        let growth =
            |now: f64, before: Option<f64>| before.map_or(String::new(), |b| format!("{} of 10× fewer", ratio(now, b)));
        let push = |t: &mut Table, fig: String, v: f64, before: Option<f64>| {
            if largest {
                t.target(fig, us(v), "p99 ≤ 1 ms", growth(v, before), v <= 1_000.0);
            } else {
                t.info(fig, us(v), growth(v, before));
            }
        };
        push(t, format!("lookup by phone, p99 ({label})"), pp, prev.map(|p| p.0));
        push(t, format!("lookup by name prefix (50 hits max), p99 ({label})"), pn, prev.map(|p| p.1));

        // Today's board read: the board re-reads the day when the store changed, which is mostly one arrival
        // moved along between two reads. The first read of the day opens every arrival (nothing decoded yet).
        let today = store.today();
        let t0 = Instant::now();
        let first = store.arrivals_on(today)?;
        let cold = t0.elapsed();
        let rows = first.len();
        let mut board = Vec::with_capacity(s.reps);
        let mut unchanged = Vec::with_capacity(s.reps);
        let by = guidedesk::model::StaffRef("bench".into());
        let waiting: Vec<_> = first.iter().filter(|a| a.step() == VisitStep::Triaged).take(s.reps).collect();
        anyhow::ensure!(!waiting.is_empty(), "no arrival waiting to move along");
        let mut step_cost = WriteCost::default();
        for a in waiting {
            clock.advance(1);
            step_cost.measure(|| {
                store.write(|ctx| guidedesk::command::desk::move_step(ctx, a.id, VisitStep::Registered, None, &by))
            })?;
            let t0 = Instant::now();
            let read = store.arrivals_on(today)?;
            board.push(t0.elapsed());
            anyhow::ensure!(read.len() == rows, "the board read {} rows, not {rows}", read.len());
            let t0 = Instant::now();
            store.arrivals_on(today)?;
            unchanged.push(t0.elapsed());
        }
        let b = Samples::from_durations(&board);
        t.info(
            format!("an arrival moved along the board: written per commit, mean of {} ({label})", step_cost.samples),
            step_cost.per_commit(),
            "",
        );
        t.info(
            format!("today's board, first read of the day, {rows} arrivals ({label})"),
            us(cold.as_secs_f64() * 1e6),
            "",
        );
        t.info(
            format!("today's board re-read with nothing changed, {rows} arrivals, median ({label})"),
            us(Samples::from_durations(&unchanged).median()),
            "",
        );
        t.target(
            format!("today's board read after one arrival moved, {rows} arrivals, median ({label})"),
            format!("{} (p99 {})", us(b.median()), us(b.pct(99.0))),
            "≤ 1 ms",
            growth(b.median(), prev.map(|p| p.2)),
            b.median() <= 1_000.0,
        );
        prev = Some((pp, pn, b.median()));
    }
    Ok(())
}

fn board_frame(s: &Sizes, t: &mut Table) -> Result<()> {
    let mut prev = None;
    for rows in [5u64, 50, 500] {
        let dir = tempfile::tempdir()?;
        let (store, _clock) = fixtures::open(dir.path())?;
        fixtures::seed_arrivals(&store, rows, rows, 1_000)?;
        let store = Arc::new(store);
        let q = Arc::clone(&store);
        let tr = Tr::new(Language::ZhCn);
        let mut h =
            Harness::builder().with_size(egui::vec2(1280.0, 800.0)).with_context_setup(theme::install).build_ui_state(
                move |ui, b: &mut BoardScreen| {
                    let mut cx = ScreenCtx::new(&*q, tr);
                    cx.version = 1;
                    b.ui(ui, &cx);
                },
                BoardScreen::default(),
            );
        for _ in 0..5 {
            h.step();
        }
        anyhow::ensure!(
            h.state().rows().len() as u64 == rows,
            "the board shows {} rows, not {rows}",
            h.state().rows().len()
        );
        let frames = s.reps.max(50);
        let mut wall = Vec::with_capacity(frames);
        // The scheduler's CPU clock may tick coarsely, so CPU is summed over all frames and divided.
        let cpu0 = thread_cpu();
        for _ in 0..frames {
            let w0 = Instant::now();
            h.step();
            wall.push(w0.elapsed());
        }
        let cpu = match (cpu0, thread_cpu()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64() * 1e6 / frames as f64),
            _ => None,
        };
        let w = Samples::from_durations(&wall);
        let v = cpu.unwrap_or_else(|| w.median());
        let fig = format!("board screen frame, {rows} rows, mean CPU (headless egui, layout+shapes)");
        let value = format!("{} (wall median {})", us(v), us(w.median()));
        let growth = prev.map_or(String::new(), |p| format!("{} of 10× fewer rows", ratio(v, p)));
        if rows == 500 {
            t.target(fig, value, "≤ 4 ms", growth, v <= 4_000.0);
        } else {
            t.info(fig, value, growth);
        }
        prev = Some(v);
        drop(h);
        drop(store);
    }
    Ok(())
}

fn demo_and_cold_start(s: &Sizes, t: &mut Table) -> Result<()> {
    // About 890 records per demo day at 400 arrivals a day.
    let mut prev: Option<f64> = None;
    let mut last_dir = None;
    for g in GROWTH {
        let want = s.demo_base * g;
        let days = (want / 890).max(1) as u32;
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        let t0 = Instant::now();
        let rep = demo::generate(&store, DemoOptions { days, per_day: 400, seed: 1 })?;
        let secs = t0.elapsed().as_secs_f64();
        let rate = rep.total() as f64 / secs;
        let fig = format!(
            "demo seeding, {} records ({days} days, whole days per transaction of ≥ {} records or a third of the store)",
            n(rep.total()),
            n(demo::TX_RECORDS)
        );
        let value = format!("{} records/s ({secs:.1} s)", n(rate as u64));
        let growth = prev.map_or(String::new(), |p| format!("{} of the rate at 10× fewer", ratio(rate, p)));
        if g == 100 {
            t.target(fig, value, "≥ 50 000 records/s", growth, rate >= 50_000.0);
        } else {
            t.info(fig, value, growth);
        }
        prev = Some(rate);
        drop(store);
        last_dir = Some((dir, rep.total()));
    }
    let (dir, total) = last_dir.context("no demo store")?;
    // Once to warm the page cache like a kiosk that was just used, then measured.
    let _ = children::run_cold_start(dir.path())?;
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(children::run_cold_start(dir.path())?);
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ms, wall, rss) = runs[1];
    t.target(
        format!("cold start to first frame, {} records (open + board query + first headless frame)", n(total)),
        format!("{ms:.0} ms (process {wall:.0} ms), peak RSS {} MB", rss / 1024),
        "≤ 1 s; RSS ≤ 200 MB",
        "median of 3, warm page cache",
        ms <= 1_000.0 && wall <= 1_000.0 && rss <= 200 * 1024,
    );

    // The real kiosk binary in a real window (Xvfb, Mesa's software GL): spawn to first frame presented.
    let fig = format!("cold start to first frame in a window, {} records (guidedesk under Xvfb)", n(total));
    let measured = children::Xvfb::start().and_then(|x| {
        let _ = children::run_window_start(dir.path(), &x)?;
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(children::run_window_start(dir.path(), &x)?);
        }
        Ok(runs)
    });
    match measured {
        Ok(mut runs) => {
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (wall, ms, rss) = runs[1];
            t.target(
                fig,
                format!("{wall:.0} ms (window code {ms:.0} ms), peak RSS {} MB", rss / 1024),
                "≤ 1 s; RSS ≤ 200 MB",
                "spawn to first frame presented, median of 3, warm page cache",
                wall <= 1_000.0 && rss <= 200 * 1024,
            );
        }
        Err(why) => t.info(fig, format!("not measured: {why}"), ""),
    }

    // The same window left alone: it repaints on input, on a changed record, or once a second for the clock.
    let window = if s.quick { Duration::from_secs(5) } else { Duration::from_mins(1) };
    let fig = format!("idle kiosk window, {} s with nothing happening (guidedesk under Xvfb)", window.as_secs());
    match children::Xvfb::start().and_then(|x| {
        children::run_window_idle(dir.path(), &x, Duration::from_secs(if s.quick { 3 } else { 10 }), window)
    }) {
        Ok(pct) => {
            t.target(
                fig,
                format!("{pct:.2} % of a core"),
                "≤ 1 % of a core",
                "sign-in screen, software GL",
                pct <= 1.0,
            );
        }
        Err(why) => t.info(fig, format!("not measured: {why}"), ""),
    }
    Ok(())
}

fn monthly_report(s: &Sizes, t: &mut Table) -> Result<()> {
    let mut prev: Option<f64> = None;
    for g in GROWTH {
        let per_day = s.report_per_day_base * g as u32;
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        let rep = demo::generate(&store, DemoOptions { days: s.report_days, per_day, seed: 7 })?;
        let today = store.today();
        let first = Instant::now();
        let r = generate(&store, DocKind::Monthly, today, Lang::Zh)?;
        let first = first.elapsed();
        anyhow::ensure!(!r.html.is_empty(), "the monthly report is empty");
        let mut runs = vec![first];
        for _ in 0..2 {
            let t0 = Instant::now();
            generate(&store, DocKind::Monthly, today, Lang::Zh)?;
            runs.push(t0.elapsed());
        }
        let m = Samples::from_durations(&runs).median();
        let fig = format!(
            "monthly report, {} days of data ({} arrivals, {} records)",
            s.report_days,
            n(rep.arrivals),
            n(rep.total())
        );
        let value = format!("{} (first run {})", us(m), us(first.as_secs_f64() * 1e6));
        let growth = prev.map_or(String::new(), |p| format!("{} of 10× less data", ratio(m, p)));
        if g == 100 {
            t.target(fig, value, "≤ 200 ms", growth, m <= 200_000.0);
        } else {
            t.info(fig, value, growth);
        }
        prev = Some(m);
    }
    Ok(())
}

/// Pushes a kiosk's whole outbox to each backend in turn, beside the raw-POST baseline of the same bodies. The
/// targets apply to the first backend (the embedded HQ); the others are shown for comparison.
fn sync_push(s: &Sizes, t: &mut Table, backends: &[(&str, StartHq)]) -> Result<()> {
    let mut prev: Vec<Option<f64>> = vec![None; backends.len()];
    for g in GROWTH {
        let total = s.sync_base * g;
        let options = sync_options(s);
        let label = format!("{} records", n(total));
        let mut raw_rate = 0.0;
        for (b, (name, start)) in backends.iter().enumerate() {
            let dir = tempfile::tempdir()?;
            let (store, _clock) = fixtures::open(dir.path())?;
            // Arrivals and the follow-up tasks their registrations write, `total` records in all.
            let held = fixtures::seed_records(&store, total, 0, 1_000)?;
            if b == 0 {
                // The raw baseline: the same push bodies, POSTed to a server that only reads them.
                let ops = store.outbox_after(0, usize::MAX)?;
                let bodies: Vec<Vec<u8>> = ops
                    .chunks(options.batch.max(1))
                    .map(|c| {
                        codec::encode(&PushRequest {
                            device: store.device(),
                            sent_at_ms: fixtures::NOW as u64,
                            ops: c.to_vec(),
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let raw = RawServer::start()?;
                let mut client = baselines::RawClient::connect(&raw.url)?;
                let t0 = Instant::now();
                for body in &bodies {
                    let status = client.post("/push", body)?;
                    anyhow::ensure!(status == 200, "raw server answered {status}");
                }
                raw_rate = held as f64 / t0.elapsed().as_secs_f64();
                drop(raw);
                t.info(
                    format!("baseline: raw HTTP POST of the same bytes ({label})"),
                    format!("{} records/s", n(raw_rate as u64)),
                    "",
                );
            }
            let hq = start(1)?;
            let code = hq.codes.first().context("HQ gave no enrolment code")?.clone();
            let (cred, _) = kiosk_sync::enroll(&store, dir.path(), &hq.url, &code, None, false)?;
            let t0 = Instant::now();
            let rep = kiosk_sync::sync_with(&store, &cred, &options)?;
            let secs = t0.elapsed().as_secs_f64();
            hq.stop()?;
            let rate = held as f64 / secs;
            anyhow::ensure!(store.stats()?.outbox_acked_seq >= held, "HQ acknowledged fewer than {held} ops: {rep:?}");
            let growth = prev[b].map_or(String::new(), |p| format!("; {} of the rate at 10× fewer", ratio(rate, p)));
            let fig = format!("sync push over loopback to {name} ({label}, batches of {})", options.batch);
            let value = format!("{} records/s ({secs:.1} s)", n(rate as u64));
            prev[b] = Some(rate);
            if g == 100 {
                // The real limit: the same HQ store applying the same ops in one process, durably, batch by batch.
                let apply_secs = sync_breakdown(&store, name, b == 0, secs, &options, t)?;
                let limit = held as f64 / apply_secs;
                t.info(
                    format!("baseline: {name}'s own durable apply of the same ops in one process ({label})"),
                    format!("{} records/s", n(limit as u64)),
                    "",
                );
                let r = format!(
                    "{:.0}% of the durable apply; {:.1}% of raw POST{growth}",
                    100.0 * rate / limit,
                    100.0 * rate / raw_rate
                );
                let r = if b == 0 {
                    r
                } else {
                    // PostgreSQL's own bulk load of the same ops, the floor under any ingest there.
                    let ops = store.outbox_after(0, usize::MAX)?;
                    let copy = held as f64 / children::pg_copy_ops(store.device().0, &ops, options.batch)?;
                    t.info(
                        format!("baseline: PostgreSQL COPY of the same ops, one row each, a COPY per batch ({label})"),
                        format!("{} records/s", n(copy as u64)),
                        "",
                    );
                    format!("{r}; {:.0}% of COPY", 100.0 * rate / copy)
                };
                t.target(fig, value, "≥ 50% of the store's durable apply", r, rate >= 0.5 * limit);
            } else {
                t.info(fig, value, format!("{:.1}% of raw POST{growth}", 100.0 * rate / raw_rate));
            }
        }
    }
    Ok(())
}

/// Where the time of the embedded push goes: the push's stages timed one by one in this process over the same
/// ops (kiosk outbox read, request encode, HQ body decode, HQ apply with its durable commit, kiosk acknowledgement
/// commit); the rest of the measured push is HTTP, authentication and the pull. Returns the seconds HQ's apply took
/// (with its durable commits): the limit a push over the network can approach.
fn sync_breakdown(
    store: &Store,
    name: &str,
    embedded: bool,
    push_secs: f64,
    options: &SyncOptions,
    t: &mut Table,
) -> Result<f64> {
    let batch = options.batch.max(1);
    let (mut read, mut enc, mut dec, mut apply, mut ack) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let hq_dir = tempfile::tempdir()?;
    let (hq, schema) = if embedded {
        (guidedesk::hq::backend::HqBackend::from(guidedesk::hq::store::HqStore::open(hq_dir.path())?), None)
    } else {
        let (store, schema) = children::postgres_store()?;
        (guidedesk::hq::backend::HqBackend::from(store), Some(schema))
    };
    let now = guidedesk::hq::server::now_ms();
    let code = hq.create_code("main", "d0", now, 3_600_000)?;
    if let Err(e) = hq.enroll(&code, store.device(), now)? {
        anyhow::bail!("breakdown HQ refused the enrolment: {e:?}");
    }
    // The acknowledgement commits go to a store of their own (the measured one has acknowledged everything).
    let ack_dir = tempfile::tempdir()?;
    let (acks, _clock) = fixtures::open(ack_dir.path())?;
    let mut after = 0;
    let mut batches = 0u64;
    let secs = |t0: Instant| t0.elapsed().as_secs_f64();
    loop {
        let t0 = Instant::now();
        let ops = store.outbox_after(after, batch)?;
        read += secs(t0);
        let Some(last) = ops.last().map(|o| o.seq) else { break };
        let t0 = Instant::now();
        let body = codec::encode(&PushRequest { device: store.device(), sent_at_ms: fixtures::NOW as u64, ops })?;
        enc += secs(t0);
        let t0 = Instant::now();
        let req: PushRequest = codec::decode(&body)?;
        dec += secs(t0);
        let t0 = Instant::now();
        guidedesk_sync::server::apply_push(&hq, req.device, &req.ops, now, req.sent_at_ms)
            .map_err(|e| anyhow::anyhow!("in-process push failed: {e}"))?;
        apply += secs(t0);
        // One registration per batch gives the acknowledgement store ops to acknowledge (the arrival, and its
        // follow-up task when it gets one).
        fixtures::register_one(&acks, batches)?;
        let through = acks.stats()?.outbox_last_seq;
        let t0 = Instant::now();
        acks.ack_through(through)?;
        ack += secs(t0);
        batches += 1;
        after = last;
    }
    // The store closes before its schema is dropped.
    drop(hq);
    drop(schema);
    let rest = (push_secs - read - enc - dec - apply - ack).max(0.0);
    let ms = |v: f64| format!("{:.0} ms", v * 1e3);
    let pct = |v: f64| format!("{:.0}%", 100.0 * v / push_secs);
    t.info(
        format!("sync push to {name}, breakdown ({batches} batches, stages timed apart; rest = HTTP, auth, pull)"),
        format!(
            "read {} ({}), encode {} ({}), HQ decode {} ({}), HQ apply+commit {} ({}), ack {} ({}), rest {} ({})",
            ms(read),
            pct(read),
            ms(enc),
            pct(enc),
            ms(dec),
            pct(dec),
            ms(apply),
            pct(apply),
            ms(ack),
            pct(ack),
            ms(rest),
            pct(rest)
        ),
        format!("of the measured push, {}", ms(push_secs)),
    );
    Ok(apply)
}

/// Many kiosks push their outboxes to one HQ at the same moment; HQ's memory is sampled while they do.
pub fn hq_many(s: &Sizes, t: &mut Table, backend: &str, start: StartHq) -> Result<()> {
    let hq = start(s.kiosks)?;
    let mut kiosks = Vec::with_capacity(s.kiosks);
    let mut total = 0;
    for code in &hq.codes {
        let dir = tempfile::tempdir()?;
        let (store, _clock) = fixtures::open(dir.path())?;
        total += fixtures::seed_records(&store, s.per_kiosk, 0, 1_000)?;
        let (cred, _) = kiosk_sync::enroll(&store, dir.path(), &hq.url, code, None, false)?;
        kiosks.push((dir, store, cred));
    }
    let pid = hq.pid();
    let base_rss = crate::table::proc_status_kb(pid, "VmRSS").unwrap_or(0);
    let done = AtomicBool::new(false);
    let max_rss = AtomicU64::new(base_rss);
    let options = sync_options(s);
    let barrier = std::sync::Barrier::new(kiosks.len() + 1);
    let (secs, results) = std::thread::scope(|sc| {
        sc.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if let Some(r) = crate::table::proc_status_kb(pid, "VmRSS") {
                    max_rss.fetch_max(r, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let handles: Vec<_> = kiosks
            .iter()
            .map(|(_, store, cred)| {
                let (barrier, options) = (&barrier, &options);
                sc.spawn(move || {
                    barrier.wait();
                    let t0 = Instant::now();
                    let r = kiosk_sync::sync_with(store, cred, options);
                    (t0, Instant::now(), r)
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let results: Vec<_> = handles.into_iter().map(std::thread::ScopedJoinHandle::join).collect();
        let secs = t0.elapsed().as_secs_f64();
        done.store(true, Ordering::SeqCst);
        (secs, results)
    });
    let mut spans = Vec::with_capacity(results.len());
    let mut batches = 0u32;
    for r in results {
        match r {
            Ok((from, to, Ok(rep))) => {
                spans.push((from, to));
                batches += rep.batches;
            }
            Ok((_, _, Err(e))) => anyhow::bail!("a kiosk's push failed: {e}"),
            Err(_) => anyhow::bail!("a kiosk's push thread panicked"),
        }
    }
    // How many kiosks were pushing at the same moment, at most (a push in flight when another one started).
    let in_flight = spans.iter().map(|(at, _)| spans.iter().filter(|(a, b)| a <= at && at < b).count()).max();
    let hwm = crate::table::proc_status_kb(pid, "VmHWM").unwrap_or(0).max(max_rss.load(Ordering::SeqCst));
    hq.stop()?;
    let rate = total as f64 / secs;
    t.target(
        format!("HQ on {backend}, {} kiosks pushing {} records each at once", kiosks.len(), n(s.per_kiosk)),
        format!("{} records/s ({secs:.1} s)", n(rate as u64)),
        "≥ 20 000 records/s on 2 cores",
        format!(
            "{batches} batches of ≤ {}; up to {} kiosks pushing at the same moment",
            options.batch,
            in_flight.unwrap_or(0)
        ),
        rate >= 20_000.0,
    );
    t.target(
        format!("HQ memory under that load ({backend})"),
        format!("peak RSS {} MB (idle {} MB)", hwm / 1024, base_rss / 1024),
        "≤ 300 MB RSS",
        if backend == "PostgreSQL" { "the HQ process; the PostgreSQL server's own memory not included" } else { "" },
        hwm <= 300 * 1024,
    );
    Ok(())
}
