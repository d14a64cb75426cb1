//! `guidedesk`: the kiosk application and its administration commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use guidedesk::config::{self, Config};
use guidedesk::demo::{self, DemoOptions};
use guidedesk::export::{self, ExportOptions, Format};
use guidedesk::model::{AuditAction, Moment, RecordKind, StaffRef};
use guidedesk::store::{Store, StoreOptions, SystemClock};

/// Offline-first software for hospital lobby guide desks (导医台).
#[derive(Debug, Parser)]
#[command(name = "guidedesk", version, about, long_about = None)]
struct Cli {
    /// Data directory holding the store and config.toml [default: the platform data directory]
    #[arg(long, global = true, env = "GUIDEDESK_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Before opening the kiosk, fill an empty store with 30 days of demo data
    #[arg(long)]
    demo: bool,

    /// Close the kiosk window as soon as its first frame is on screen, printing
    /// `first-frame ms=<ms> peak_rss_kb=<kB>` (start-up measurements; the benchmark harness uses it)
    #[arg(long, hide = true)]
    exit_after_first_frame: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fill the store with realistic demo data (through the normal validation and outbox path)
    Demo {
        /// Number of days of data, ending today
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: u32,
        /// Arrivals per day (other record kinds scale with it)
        #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(0..=100_000))]
        per_day: u32,
        /// Random seed (the same seed gives the same records)
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print record counts, outbox state and store size
    Stats {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Export every field of one record kind as CSV (UTF-8 with BOM) or JSON
    Export {
        /// Record kind
        #[arg(long, value_enum)]
        kind: KindArg,
        /// First day included (YYYY-MM-DD, site local time)
        #[arg(long, value_parser = parse_date)]
        from: Option<NaiveDate>,
        /// Last day included (YYYY-MM-DD, site local time)
        #[arg(long, value_parser = parse_date)]
        to: Option<NaiveDate>,
        /// Output format
        #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
        format: FormatArg,
        /// Output file [default: standard output]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Mask phone numbers (138****8000)
        #[arg(long)]
        mask_phones: bool,
    },
    /// Import a discharge list exported by the HIS (CSV in UTF-8 or GBK, or XLSX) as follow-up call tasks
    ///
    /// Exit codes: 0 when the file was read, even if some rows were not imported (each is listed with its line);
    /// 1 when the file could not be imported at all (nothing is written); 2 for a command-line usage error.
    ImportDischarges {
        /// The discharge list (.csv or .xlsx)
        file: PathBuf,
        /// XLSX sheet to read [default: the first sheet]
        #[arg(long, value_name = "NAME")]
        sheet: Option<String>,
        /// Staff id recorded as the tasks' creator [default: import]
        #[arg(long, value_name = "ID")]
        staff: Option<String>,
    },
    /// Verify this kiosk's feedback hash chain: report any missing (deleted) or altered feedback record
    VerifyFeedback,
    /// Verify the store: records decode, indexes match, outbox is gap-free, feedback chain unbroken
    Check,
    /// Write a consistent copy of the store to FILE (also while the kiosk is open: the running kiosk writes it)
    Backup {
        /// The backup file to write (replaced only by a complete, verified copy)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Replace the store with a backup (the kiosk must be closed); refuses a backup older than the store, or of
    /// another kiosk, without --force. The replaced store is kept beside it as guidedesk.redb.replaced-<ms>
    Restore {
        /// The backup file
        file: PathBuf,
        /// Restore even if the current store is newer or belongs to another device
        #[arg(long)]
        force: bool,
        /// The key file the backup was sealed with, when it is not this kiosk's current key (another kiosk's
        /// backup, or one made before `key rotate`); it becomes the store's key, the previous one is kept
        #[arg(long, value_name = "KEY_FILE")]
        key: Option<PathBuf>,
    },
    /// Purge records older than the retention policy that HQ has acknowledged (the sync worker does this after
    /// every acknowledgement)
    Purge {
        /// Only report what would be purged
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the weekly opinion sheet or the monthly analysis report (printable HTML, tables as CSV)
    Report(guidedesk::reports::cli::ReportArgs),
    /// Writes arrivals one durable transaction at a time until killed, printing `seq id hlc` after each commit
    /// (crash-safety testing and burn-in)
    #[command(hide = true)]
    StressWrite {
        /// Stop after this many writes
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Store key: `guidedesk key rotate` re-encrypts the store with a new key and replaces the key file
    #[command(subcommand)]
    Key(KeyCommand),
    // Sync with headquarters: see src/cli_sync.rs.
    #[command(flatten)]
    Sync(guidedesk::cli_sync::SyncCommand),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Re-encrypt every record and outbox op with a new random key, rebuild the blind indexes and replace the key
    /// file (back up the new key file afterwards)
    Rotate,
    /// Print where the key file is and the id of the key the store is encrypted with
    Show,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Arrival,
    Consultation,
    Feedback,
    Case,
    #[value(name = "followup_task")]
    FollowupTask,
    #[value(name = "call_attempt")]
    CallAttempt,
    /// The audit log
    Audit,
    /// Who opened which follow-up task to call it (the shared worklist's claims)
    #[value(name = "call_claim")]
    CallClaim,
    /// Bookings (预约) and what became of each
    Appointment,
    /// Shift handovers and daily work logs (交班记录, 工作日志)
    #[value(name = "shift_log")]
    ShiftLog,
}

impl From<KindArg> for RecordKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Arrival => RecordKind::Arrival,
            KindArg::Consultation => RecordKind::Consultation,
            KindArg::Feedback => RecordKind::Feedback,
            KindArg::Case => RecordKind::Case,
            KindArg::FollowupTask => RecordKind::FollowupTask,
            KindArg::CallAttempt => RecordKind::CallAttempt,
            KindArg::Audit => RecordKind::Audit,
            KindArg::CallClaim => RecordKind::CallClaim,
            KindArg::Appointment => RecordKind::Appointment,
            KindArg::ShiftLog => RecordKind::ShiftLog,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Json,
}

impl FormatArg {
    fn name(self) -> &'static str {
        match self {
            FormatArg::Csv => "csv",
            FormatArg::Json => "json",
        }
    }
}

/// Who the audit log names for what the command line does: the command line has no signed-in staff member, so the
/// operating-system account that ran it.
fn cli_actor() -> StaffRef {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(|| {
            // No login variables (a service, a container): the numeric user id.
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_string();
            Some(format!("uid {uid}"))
        })
        .unwrap_or_else(|| "unknown".into());
    let user: String = user.chars().filter(|c| !c.is_control()).take(32).collect();
    StaffRef(format!("cli:{user}"))
}

fn opt_day(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?} is not a date in the form YYYY-MM-DD"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, skipping a cause whose text the message already contains.
            let mut msg = String::new();
            for cause in e.chain() {
                let text = cause.to_string();
                if !msg.contains(&text) {
                    if !msg.is_empty() {
                        msg.push_str(": ");
                    }
                    msg.push_str(&text);
                }
            }
            let msg = msg.replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "guidedesk: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn open_store(data_dir: &std::path::Path, cfg: &Config) -> Result<Store> {
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let key = cfg.store.key_path(data_dir);
    Ok(Store::open_keyed(data_dir, StoreOptions { clock: Arc::new(SystemClock), utc_offset: offset }, &key)?)
}

fn run(cli: Cli) -> Result<()> {
    let data_dir = config::data_dir(cli.data_dir.as_deref())?;
    let cfg = Config::load(&data_dir)?;
    let Some(command) = cli.command else {
        let store = open_store(&data_dir, &cfg)?;
        if cli.demo && store.stats()?.records.values().all(|n| *n == 0) {
            let r = demo::generate(&store, DemoOptions::default())?;
            eprintln!("guidedesk: filled the empty store with {} demo records", r.total());
        }
        let options = guidedesk::app::RunOptions { exit_after_first_frame: cli.exit_after_first_frame };
        return guidedesk::app::run_with(store, &cfg, options);
    };
    if cli.demo {
        bail!("--demo only applies when opening the kiosk (no subcommand); use `guidedesk demo` to add demo data");
    }
    match command {
        Command::Demo { days, per_day, seed } => {
            let store = open_store(&data_dir, &cfg)?;
            let started = std::time::Instant::now();
            let r = demo::generate(&store, DemoOptions { days, per_day, seed })?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "demo data written to {}: {} arrivals, {} consultations, {} feedback, {} cases, {} follow-up tasks, \
                 {} call attempts, {} call claims, {} bookings, {} shift log entries ({} records in {secs:.1} s)",
                store.path().display(),
                r.arrivals,
                r.consultations,
                r.feedback,
                r.cases,
                r.followup_tasks,
                r.call_attempts,
                r.call_claims,
                r.appointments,
                r.shift_logs,
                r.total(),
            );
        }
        Command::Stats { json } => {
            let store = open_store(&data_dir, &cfg)?;
            let s = store.stats()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("store: {} ({} bytes, schema {})", store.path().display(), s.store_bytes, s.schema);
                println!("device: {}", s.device);
                for (k, n) in &s.records {
                    println!("{k:>14}: {n}");
                }
                println!(
                    "by origin: {} written here, {} from other desks of the site",
                    s.by_origin.local, s.by_origin.replicated
                );
                println!(
                    "outbox: {} pending (last seq {}, acknowledged through {})",
                    s.outbox_pending, s.outbox_last_seq, s.outbox_acked_seq
                );
            }
        }
        Command::Export { kind, from, to, format, out, mask_phones } => {
            let store = open_store(&data_dir, &cfg)?;
            let offset = store.utc_offset();
            if let (Some(f), Some(t)) = (from, to)
                && f > t
            {
                bail!("--from {f} is after --to {t}");
            }
            let from_m = from.map_or(Moment(i64::MIN), |d| Moment::start_of_day(d, offset));
            let to_m = to.and_then(|d| d.succ_opt()).map_or(Moment(i64::MAX), |d| Moment::start_of_day(d, offset));
            let opts = ExportOptions {
                kind: kind.into(),
                from: from_m,
                to: to_m,
                format: match format {
                    FormatArg::Csv => Format::Csv,
                    FormatArg::Json => Format::Json,
                },
                mask_phones,
            };
            let actor = cli_actor();
            let period = match (from, to) {
                (None, None) => "all dates".to_string(),
                _ => format!("{}..{}", opt_day(from), opt_day(to)),
            };
            let what = |n: u64| {
                format!(
                    "{} {} {period}: {n} rows{}",
                    RecordKind::from(kind),
                    format.name(),
                    if mask_phones { ", masked" } else { "" }
                )
            };
            if let Some(path) = out {
                let n = export::export_to_path(&store, &opts, &path)
                    .with_context(|| format!("cannot export to {}", path.display()))?;
                store.audit(&actor, AuditAction::Export, None, &what(n))?;
                eprintln!("exported {n} {} records to {}", RecordKind::from(kind), path.display());
            } else {
                let stdout = std::io::stdout();
                let mut w = std::io::BufWriter::new(stdout.lock());
                let n = export::export(&store, &opts, &mut w)?;
                w.flush()?;
                store.audit(&actor, AuditAction::Export, None, &what(n))?;
            }
        }
        Command::Check => {
            let store = open_store(&data_dir, &cfg)?;
            let problems = store.check()?;
            if problems.is_empty() {
                let s = store.stats()?;
                println!(
                    "store OK: {} records, outbox gap-free through seq {}, indexes consistent, feedback and audit chains intact",
                    s.records.values().sum::<u64>(),
                    s.outbox_last_seq
                );
            } else {
                for p in &problems {
                    println!("problem: {p}");
                }
                bail!("{} problem(s) found in {}", problems.len(), store.path().display());
            }
        }
        Command::Backup { out } => backup(&data_dir, &cfg, &out)?,
        Command::Restore { file, force, key } => {
            let offset = cfg.offset().map_err(anyhow::Error::msg)?;
            let options = StoreOptions { clock: Arc::new(SystemClock), utc_offset: offset };
            let store_key = cfg.store.key_path(&data_dir);
            let keys = guidedesk::store::backup::RestoreKeys { store_key: &store_key, backup_key: key.as_deref() };
            let r = guidedesk::store::backup::restore(&data_dir, &file, force, &options, keys)?;
            println!(
                "restored {} records (outbox through seq {}) from {}{}",
                r.records,
                r.last_seq,
                file.display(),
                r.replaced.map(|p| format!("; the replaced store is kept as {}", p.display())).unwrap_or_default()
            );
            if r.other_device {
                println!("note: the backup came from another device; enrol this kiosk again before syncing");
            }
            let detail = format!("restore: {} records", r.records);
            open_store(&data_dir, &cfg)?.audit(&cli_actor(), AuditAction::Change, None, &detail)?;
        }
        Command::Purge { dry_run } => {
            let r = open_store(&data_dir, &cfg)?.purge_expired(dry_run)?;
            let verb = if dry_run { "would purge" } else { "purged" };
            let kinds: Vec<String> = r.purged.iter().map(|(k, n)| format!("{n} {k}")).collect();
            println!(
                "{verb} {} records past retention ({}); kept {} not yet acknowledged by HQ and {} still open",
                r.total(),
                if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") },
                r.kept_unacknowledged,
                r.kept_open
            );
        }
        Command::VerifyFeedback => {
            let store = open_store(&data_dir, &cfg)?;
            let problems = store.verify_feedback_chain()?;
            let (next, _) = store.feedback_head()?;
            if problems.is_empty() {
                println!("feedback chain intact: {next} records, none missing or altered");
            } else {
                for p in &problems {
                    println!("problem: feedback {p}");
                }
                bail!("the feedback chain of {} is broken: {} problem(s)", store.path().display(), problems.len());
            }
        }
        Command::Report(args) => {
            let store = open_store(&data_dir, &cfg)?;
            let w = guidedesk::reports::cli::run(&store, &args)?;
            store.audit(&cli_actor(), AuditAction::Export, None, &format!("report {}", w.period))?;
            println!(
                "report {} written to {} ({} CSV files) in {:.2} s",
                w.period,
                w.html.display(),
                w.csv.len(),
                w.seconds
            );
        }
        Command::ImportDischarges { file, sheet, staff } => {
            let store = open_store(&data_dir, &cfg)?;
            guidedesk::import::discharges::run_cli(&store, &file, sheet, staff, &mut std::io::stdout().lock())?;
        }
        Command::Key(KeyCommand::Rotate) => {
            let store = open_store(&data_dir, &cfg)?;
            let old = store.key_id();
            let new = store.rotate_key()?;
            store.audit(&cli_actor(), AuditAction::Change, None, &format!("key rotate: {old:08x} -> {new:08x}"))?;
            println!(
                "store re-encrypted: key {old:08x} replaced by {new:08x} in {}; back up the new key file now, the old \
                 one no longer opens this store",
                store.key_path().display()
            );
        }
        Command::Key(KeyCommand::Show) => {
            let store = open_store(&data_dir, &cfg)?;
            println!("key file {}: key id {:08x}", store.key_path().display(), store.key_id());
        }
        Command::StressWrite { limit } => stress_write(&open_store(&data_dir, &cfg)?, limit)?,
        Command::Sync(c) => guidedesk::cli_sync::run(c, &data_dir, &cfg, || open_store(&data_dir, &cfg))?,
    }
    Ok(())
}

/// `guidedesk backup`: copies the store itself, or asks the running kiosk to when the store is in use.
fn backup(data_dir: &std::path::Path, cfg: &Config, out: &std::path::Path) -> Result<()> {
    use guidedesk::store::OpenError;
    use guidedesk::store::backup::request_backup;
    let info = match open_store(data_dir, cfg) {
        Ok(store) => guidedesk::store::backup::backup_audited(&store, out, &cli_actor().0)?,
        Err(e) if matches!(e.downcast_ref::<OpenError>(), Some(OpenError::Locked { .. })) => {
            eprintln!("the kiosk is running; asking it to write the backup");
            request_backup(data_dir, out, std::time::Duration::from_mins(2), &cli_actor().0)?
        }
        Err(e) => return Err(e),
    };
    println!(
        "backup written to {}: {} records, outbox through seq {}, {} tables, {} bytes",
        info.path.display(),
        info.records,
        info.last_seq,
        info.tables,
        info.bytes
    );
    Ok(())
}

/// Writes one arrival per durable transaction (a return visit, so each write is exactly one op) through the desk's
/// own registration path, and reports each after its commit returned.
fn stress_write(store: &Store, limit: Option<u64>) -> Result<()> {
    use guidedesk::model::{ArrivalChannel, ArrivalForm, Sex, StaffRef, VisitType};
    let refs = store.reference();
    let dept = refs.departments.first().context("reference data has no departments")?.id.clone();
    let mut out = std::io::stdout().lock();
    let mut n = 0u64;
    while limit.is_none_or(|l| n < l) {
        let form = ArrivalForm {
            name: format!("压力测试{n}"),
            sex: Some(Sex::Unknown),
            visit_type: Some(VisitType::Return),
            channel: Some(ArrivalChannel::WalkIn),
            complaint: "stress".into(),
            department: dept.clone(),
            phone: format!("139{:08}", n % 100_000_000),
            ..ArrivalForm::default()
        };
        let (id, stamp, seq) = store.write(|ctx| {
            let id = guidedesk::command::desk::register(ctx, &form, &StaffRef("stress".into()))?;
            let rec: guidedesk::model::Arrival = ctx.require(id)?;
            let stamp = rec.steps.first().map_or(guidedesk_sync::Hlc::ZERO, |s| s.stamp);
            Ok((id, stamp, ctx.last_seq().unwrap_or(0)))
        })?;
        writeln!(out, "{seq} {id} {} {} {}", stamp.wall_ms, stamp.logical, stamp.node)?;
        out.flush()?;
        n += 1;
    }
    Ok(())
}
