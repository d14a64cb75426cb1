//! `GuideDesk`'s benchmark harness: every figure of BENCHMARKS.md measured in one run, side by side with its
//! baselines (`SQLite` in WAL mode with `synchronous=FULL`, a bare write + fsync of the same bytes, a raw HTTP POST
//! of the same bytes to a trivial loopback server).
//!
//! `cargo run --release -p guidedesk-bench` runs the full sizes; `--quick` runs small sizes (CI smoke use);
//! `--scale F` multiplies the full sizes by F. Nothing here asserts a timing: the table says met or missed.
//!
//! The hidden subcommands `cold-start DIR`, `serve-hq DIR KIOSKS SITES [DATABASE_URL SCHEMA]` and `backfill DIR URL CODE`
//! are the harness's own child processes: the first opens a store and draws the kiosk's first frame, the second runs
//! HQ (embedded, or on PostgreSQL) so its memory can be measured apart from the kiosks pushing to it, the third is a
//! new desk taking in its site's records, for its own peak memory.

// Counts and sizes in a benchmark stay far below `i64::MAX`, and short names (`t`, `s`, `q`) keep the measuring
// loops readable next to the formulas they implement.
#![allow(clippy::cast_possible_wrap, clippy::many_single_char_names)]

mod baselines;
mod children;
mod figures;
mod fixtures;
mod relay;
mod sharing;
mod table;

use anyhow::{Context, Result, bail};

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Whether this is the quick (CI) run.
    pub quick: bool,
    /// Arrivals in the smallest lookup / register store (then 10× and 100×).
    pub arrivals_base: u64,
    /// Demo records in the smallest seeding run (then 10× and 100×).
    pub demo_base: u64,
    /// Arrivals per day in the smallest year of report data (then 10× and 100×).
    pub report_per_day_base: u32,
    /// Days of report data.
    pub report_days: u32,
    /// Records in the smallest sync push (then 10× and 100×).
    pub sync_base: u64,
    /// Kiosks pushing at once.
    pub kiosks: usize,
    /// Records each of those kiosks pushes.
    pub per_kiosk: u64,
    /// Repetitions of a single-operation measurement.
    pub reps: usize,
    /// Figure groups to run (`--only a,b`); empty = all of them.
    pub only: Vec<String>,
    /// Ops per push batch in the sync figures (`--batch N`); `None` = the kiosk's default.
    pub batch: Option<usize>,
}

impl Sizes {
    /// Whether the figure group `group` is part of this run.
    pub fn runs(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }

    /// Whether part `part` of figure group `group` runs: the whole group, or `group-part` alone.
    pub fn runs_part(&self, group: &str, part: &str) -> bool {
        self.runs(group)
            || self.only.iter().any(|g| g.strip_prefix(group).and_then(|r| r.strip_prefix('-')) == Some(part))
    }
}

impl Sizes {
    fn full(scale: f64) -> Sizes {
        let s = |n: f64| ((n * scale).round() as u64).max(1);
        Sizes {
            quick: false,
            arrivals_base: s(10_000.0),
            demo_base: s(10_000.0),
            report_per_day_base: (4.0 * scale).round().max(1.0) as u32,
            report_days: 365,
            sync_base: s(1_000.0),
            kiosks: 50,
            per_kiosk: s(2_000.0),
            reps: 300,
            only: Vec::new(),
            batch: None,
        }
    }

    fn quick() -> Sizes {
        Sizes {
            quick: true,
            arrivals_base: 100,
            demo_base: 300,
            report_per_day_base: 4,
            report_days: 30,
            sync_base: 100,
            kiosks: 10,
            per_kiosk: 20,
            reps: 20,
            only: Vec::new(),
            batch: None,
        }
    }
}

const USAGE: &str = "usage: guidedesk-bench [--quick | --scale F] [--only GROUP,...] [--batch N] \
     (groups: register, board, demo, report, sync, hq, share; share-visibility, share-backfill, share-idle and \
     share-burst run one part of share)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("cold-start") => {
            let dir = args.get(1).context("cold-start needs the store directory")?;
            return children::cold_start(std::path::Path::new(dir));
        }
        Some("backfill") => {
            let dir = args.get(1).context("backfill needs the desk's directory")?;
            let url = args.get(2).context("backfill needs HQ's URL")?;
            let code = args.get(3).context("backfill needs an enrolment code")?;
            return sharing::backfill_child(std::path::Path::new(dir), url, code);
        }
        Some("serve-hq") => {
            let dir = args.get(1).context("serve-hq needs a directory")?;
            let kiosks: usize = args.get(2).context("serve-hq needs the number of kiosks")?.parse()?;
            let sites = children::Sites::parse(args.get(3).context("serve-hq needs `one` or `each` site")?)?;
            let pg = args.get(4).zip(args.get(5)).map(|(u, s)| (u.as_str(), s.as_str()));
            return children::serve_hq(std::path::Path::new(dir), kiosks, sites, pg);
        }
        _ => {}
    }
    let mut sizes = None;
    let mut only: Vec<String> = Vec::new();
    let mut batch = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => sizes = Some(Sizes::quick()),
            "--scale" => {
                let v: f64 = it.next().context("--scale needs a number")?.parse().context("--scale needs a number")?;
                if !(v > 0.0 && v <= 10.0) {
                    bail!("--scale must lie in (0, 10], got {v}");
                }
                sizes = Some(Sizes::full(v));
            }
            "--only" => {
                let list = it.next().context("--only needs a comma-separated list of figure groups")?;
                for g in list.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                    if !figures::GROUPS.contains(&g) {
                        bail!("unknown figure group {g:?} in --only; the groups are {}", figures::GROUPS.join(", "));
                    }
                    only.push(g.to_owned());
                }
            }
            "--batch" => {
                let v: usize =
                    it.next().context("--batch needs a number")?.parse().context("--batch needs a number")?;
                if !(1..=5_000).contains(&v) {
                    bail!("--batch must lie in 1..=5000 (the kiosk's limit), got {v}");
                }
                batch = Some(v);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    let mut sizes = sizes.unwrap_or_else(|| Sizes::full(1.0));
    sizes.only = only;
    sizes.batch = batch;
    let started = std::time::Instant::now();
    let mut t = table::Table::default();
    figures::run_all(&sizes, &mut t)?;
    t.print();
    println!(
        "\nfinished in {:.1} s ({} mode)",
        started.elapsed().as_secs_f64(),
        if sizes.quick { "quick" } else { "full" }
    );
    Ok(())
}
