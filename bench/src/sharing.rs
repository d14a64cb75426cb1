//! Figures of site-wide sharing (group `share`): how soon a record saved at one desk is visible at another (live,
//! long poll), how fast a new desk takes in its site's year, what 300 idle connected desks cost HQ, and 50 desks of
//! one site each receiving a burst. HQ runs in a child process (the embedded store, as a site hub would), so its CPU
//! and memory are its own; the new desk's backfill runs in a child process too, for its peak RSS.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use guidedesk::config::SyncConfig;
use guidedesk::kiosk_sync::{self, SyncOptions, SyncWorker};
use guidedesk::model::{RecordKind, ReferenceData};
use guidedesk::store::Store;
use guidedesk_sync::client::{ClientConfig, HttpTransport};

use crate::Sizes;
use crate::children::{self, HqHandle};
use crate::fixtures;
use crate::table::{Samples, Table, n, proc_status_kb, process_cpu};

/// Runs the sharing figures.
pub fn run(s: &Sizes, t: &mut Table) -> Result<()> {
    let figures: [fn(&Sizes, &mut Table) -> Result<()>; 4] = [visibility, backfill, idle_desks, bursts];
    for (part, figure) in PARTS.into_iter().zip(figures) {
        if s.runs_part("share", part) {
            figure(s, t)?;
        }
    }
    Ok(())
}

/// The parts of the group (`--only share-backfill` runs one).
pub const PARTS: [&str; 4] = ["visibility", "backfill", "idle", "burst"];

/// Live settings for the bench's desks: the long poll on, no interval cycles in the way.
fn live_config() -> SyncConfig {
    SyncConfig { interval_minutes: 60, timeout_secs: 10, live: true, ..SyncConfig::default() }
}

/// A desk of the bench: a store with a manual clock, enrolled at the HQ with `code`.
fn desk(hq: &HqHandle, code: &str) -> Result<(tempfile::TempDir, Arc<Store>)> {
    let dir = tempfile::tempdir()?;
    let (store, _clock) = fixtures::open(dir.path())?;
    paced(|| kiosk_sync::enroll(&store, dir.path(), &hq.url, code, None, false))?;
    Ok((dir, Arc::new(store)))
}

/// Runs an enrolment, waiting out HQ's rate limit: enrolments carry no credential, so every desk the harness
/// enrols counts against one client address (60 at once, 20 a second). The transport words a rate-limited answer
/// "HQ is unavailable (429): …" (`guidedesk_sync::client`).
fn paced<T, E: std::fmt::Display>(mut enrol: impl FnMut() -> Result<T, E>) -> Result<T> {
    let until = Instant::now() + Duration::from_mins(2);
    loop {
        match enrol() {
            Ok(v) => return Ok(v),
            Err(e) if e.to_string().contains("(429)") && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => anyhow::bail!("enrolling a desk: {e}"),
        }
    }
}

fn worker(dir: &Path, store: &Arc<Store>) -> Result<SyncWorker> {
    Ok(SyncWorker::spawn(Arc::clone(store), dir.to_path_buf(), &live_config(), Box::new(|| {}))?)
}

fn wait_idle(w: &SyncWorker) -> Result<()> {
    let t0 = Instant::now();
    while w.status().last_success.is_none() || w.status().running {
        anyhow::ensure!(t0.elapsed() < Duration::from_mins(2), "a desk's first sync did not finish: {:?}", w.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Desk A saves a registration (and asks its worker to sync, as the app does after each save); how long until desk
/// B, keeping its long poll open, holds it.
fn visibility(s: &Sizes, t: &mut Table) -> Result<()> {
    let hq = children::embedded_hq_one_site(2)?;
    let (a_dir, a) = desk(&hq, &hq.codes[0])?;
    let (b_dir, b) = desk(&hq, &hq.codes[1])?;
    let (wa, wb) = (worker(a_dir.path(), &a)?, worker(b_dir.path(), &b)?);
    wa.sync_now();
    wb.sync_now();
    wait_idle(&wa)?;
    wait_idle(&wb)?;
    std::thread::sleep(Duration::from_millis(300));
    let rounds = if s.quick { 10 } else { 100 };
    let mut lat = Vec::with_capacity(rounds);
    for i in 0..rounds as u64 {
        let arrival = fixtures::register_one(&a, 1_000_000 + i)?;
        let saved = Instant::now();
        wa.sync_now();
        while b.get::<guidedesk::model::Arrival>(arrival.id)?.is_none() {
            anyhow::ensure!(saved.elapsed() < Duration::from_secs(30), "a registration never reached desk B");
            std::thread::sleep(Duration::from_micros(500));
        }
        lat.push(saved.elapsed());
        // Desks save a few times a minute, not back to back. Each save costs desk A about seven requests (its
        // push cycle, then the cycle its own watcher starts when the site's head moves, and the renewed watch);
        // HQ allows a device 20 a second (bursts of 60), so saves closer than ~350 ms apart would measure HQ's
        // rate limit (a 429 and a one-second Retry-After), not sharing.
        std::thread::sleep(Duration::from_millis(500));
    }
    wa.shutdown();
    wb.shutdown();
    hq.stop()?;
    let q = Samples::from_durations(&lat);
    let (p50, p95) = (q.pct(50.0) / 1000.0, q.pct(95.0) / 1000.0);
    t.target(
        "visibility desk A → desk B over loopback (live: save, push, long-poll wake-up, pull)",
        format!("p50 {p50:.0} ms, p95 {p95:.0} ms ({rounds} saves)"),
        "p95 ≤ 2 s (aim ≤ 300 ms)",
        format!("max {:.0} ms", q.pct(100.0) / 1000.0),
        p95 <= 2_000.0,
    );
    Ok(())
}

/// A site's year in HQ (one desk pushed it); a new desk of the site pulls it all, in a child process.
fn backfill(s: &Sizes, t: &mut Table) -> Result<()> {
    let total = if s.quick { 3_000 } else { 300_000 };
    let hq = children::embedded_hq_one_site(2)?;
    let (a_dir, a) = desk(&hq, &hq.codes[0])?;
    let seed_t = Instant::now();
    let total = fixtures::seed_records(&a, total, 500, 2_000)?;
    let cred = kiosk_sync::Credential::load(&a, a_dir.path())?.context("desk A has no credential")?;
    let opts = SyncOptions { batch: 5_000, ..SyncOptions::default() };
    let r = kiosk_sync::sync_with(&a, &cred, &opts)?;
    anyhow::ensure!(r.pending == 0, "desk A did not push everything");
    eprintln!("  seeded and pushed {total} records in {:.1} s", seed_t.elapsed().as_secs_f64());
    let dir = tempfile::tempdir()?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("backfill")
        .arg(dir.path())
        .arg(&hq.url)
        .arg(&hq.codes[1])
        .output()?;
    hq.stop()?;
    anyhow::ensure!(out.status.success(), "the backfill child failed: {}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> Result<f64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .context("the backfill child printed no figures")?
            .parse::<f64>()
            .context("a backfill figure is not a number")
    };
    let (records, secs, hwm_kb) = (field("records")?, field("secs")?, field("hwm_kb")?);
    anyhow::ensure!(records as u64 == total, "the new desk holds {records} of {total} records");
    let rate = records / secs;
    t.target(
        format!("backfill of a site's year ({}) into a new desk", n(total)),
        format!("{} records/s ({secs:.1} s)", n(rate as u64)),
        "≥ 50 000 records/s",
        "pages of 5 000, two read ahead and prepared (decoded, sealed) beside the apply; applied with their cursor (≤ 10 000 a transaction); phone and name entries settled in key order",
        rate >= 50_000.0,
    );
    t.target(
        "the new desk's memory during that backfill",
        format!("peak RSS {} MB", hwm_kb as u64 / 1024),
        "≤ 200 MB RSS",
        "the desk process alone (a child)",
        hwm_kb <= 200.0 * 1024.0,
    );
    Ok(())
}

/// The hidden `backfill DIR URL CODE` child: enrols a new desk, keeps a year of the site's records (sharing
/// policy), runs one sync, prints `records=N secs=S hwm_kb=K`.
pub fn backfill_child(dir: &Path, url: &str, code: &str) -> Result<()> {
    let (store, _clock) = fixtures::open(dir)?;
    let mut refs: ReferenceData = (*store.reference()).clone();
    refs.sharing.days.insert("arrival".into(), 800);
    store.apply_reference(refs, "bench")?;
    let (cred, _) = kiosk_sync::enroll(&store, dir, url, code, None, false)?;
    let t0 = Instant::now();
    let r = kiosk_sync::sync_with(&store, &cred, &SyncOptions::default())?;
    let secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(r.pending == 0, "the new desk's sync did not complete");
    let records = store.stats()?.by_origin.replicated;
    let hwm = proc_status_kb(std::process::id(), "VmHWM").unwrap_or(0);
    println!("records={records} secs={secs:.3} hwm_kb={hwm}");
    Ok(())
}

/// 300 desks connected with their long poll open and nothing happening: HQ's CPU.
fn idle_desks(s: &Sizes, t: &mut Table) -> Result<()> {
    let desks = if s.quick { 30 } else { 300 };
    let window = if s.quick { Duration::from_secs(5) } else { Duration::from_mins(1) };
    let hq = children::embedded_hq_one_site(desks)?;
    let mut clients = Vec::with_capacity(desks);
    for (i, code) in hq.codes.iter().enumerate() {
        let anon = HttpTransport::new(&ClientConfig::new(&hq.url))?;
        let device = format!("00000000-0000-7000-8000-{:012x}", i + 1);
        let enrolled = paced(|| anon.enroll(code, &device)).with_context(|| format!("desk {i}"))?;
        let mut cfg = ClientConfig::new(&hq.url);
        cfg.token = Some(enrolled.token);
        cfg.timeout = Duration::from_mins(1);
        clients.push(HttpTransport::new(&cfg)?);
    }
    let stop = AtomicBool::new(false);
    let pid = hq.pid();
    let (cpu, secs) = std::thread::scope(|sc| -> Result<(Duration, f64)> {
        for c in &clients {
            let stop = &stop;
            sc.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if c.watch(0, Duration::from_secs(15)).is_err() {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            });
        }
        // Let every desk connect, then measure a quiet window.
        std::thread::sleep(Duration::from_secs(2));
        let c0 = process_cpu(pid).context("cannot read HQ's CPU time")?;
        let t0 = Instant::now();
        std::thread::sleep(window);
        let c1 = process_cpu(pid).context("cannot read HQ's CPU time")?;
        let secs = t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::SeqCst);
        Ok((c1.saturating_sub(c0), secs))
    })?;
    let rss = proc_status_kb(pid, "VmRSS").unwrap_or(0);
    hq.stop()?;
    let share = cpu.as_secs_f64() / secs * 100.0;
    t.target(
        format!("HQ with {desks} connected idle desks (each with its long poll open)"),
        format!("{share:.2} % of a core over {secs:.0} s"),
        "< 5 % of a core",
        format!("HQ RSS {} MB; each watch answers after 15 s and is renewed", rss / 1024),
        share < 5.0,
    );
    Ok(())
}

/// 50 desks of one site, each with its worker live; desk 0 registers a burst of 1 000 arrivals and pushes it; how
/// long until every desk holds all of it.
fn bursts(s: &Sizes, t: &mut Table) -> Result<()> {
    let (count, burst) = if s.quick { (5, 100) } else { (50, 1_000) };
    let hq = children::embedded_hq_one_site(count + 1)?;
    let (src_dir, src) = desk(&hq, &hq.codes[0])?;
    let mut desks = Vec::with_capacity(count);
    for code in &hq.codes[1..] {
        let (dir, store) = desk(&hq, code)?;
        let w = worker(dir.path(), &store)?;
        w.sync_now();
        desks.push((dir, store, w));
    }
    for (_, _, w) in &desks {
        wait_idle(w)?;
    }
    std::thread::sleep(Duration::from_millis(500));
    src.write(|ctx| {
        for i in 0..burst {
            fixtures::register_in(ctx, 2_000_000 + i, ctx.now())?;
        }
        Ok(())
    })?;
    let cred = kiosk_sync::Credential::load(&src, src_dir.path())?.context("the source desk has no credential")?;
    let t0 = Instant::now();
    let r = kiosk_sync::sync_with(&src, &cred, &SyncOptions::default())?;
    anyhow::ensure!(r.pending == 0, "the burst was not pushed");
    let pushed = t0.elapsed();
    let expect = src.stats()?.records.get(RecordKind::Arrival.name()).copied().unwrap_or(0);
    let mut done: Vec<Option<Duration>> = vec![None; desks.len()];
    while done.iter().any(Option::is_none) {
        anyhow::ensure!(t0.elapsed() < Duration::from_mins(5), "the burst did not reach every desk");
        for (i, (_, store, _)) in desks.iter().enumerate() {
            if done[i].is_none() && store.stats()?.records.get("arrival").copied().unwrap_or(0) >= expect {
                done[i] = Some(t0.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let hwm = proc_status_kb(hq.pid(), "VmHWM").unwrap_or(0);
    for (_, _, w) in desks {
        w.shutdown();
    }
    hq.stop()?;
    let q = Samples::from_durations(&done.into_iter().flatten().collect::<Vec<_>>());
    t.info(
        format!("{count} desks of one site each receiving a {burst}-record burst (live)"),
        format!(
            "every desk holds it {:.2} s after the push began (p50 {:.2} s, p95 {:.2} s)",
            q.pct(100.0) / 1e6,
            q.pct(50.0) / 1e6,
            q.pct(95.0) / 1e6
        ),
        format!("the push itself {:.2} s; HQ peak RSS {} MB", pushed.as_secs_f64(), hwm / 1024),
    );
    Ok(())
}
