//! The harness's child processes, so time-to-first-frame and memory are measured in a process of their own.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use egui_kittest::Harness;
use guidedesk::app::DeskApp;
use guidedesk::config::Config;
use guidedesk::hq::backend::HqBackend;
use guidedesk::hq::pg::{PgConfig, PgStore};
use guidedesk::hq::server::{self, ServeOptions};
use guidedesk::hq::store::HqStore;
use guidedesk::store::Store;
use guidedesk::ui::theme;

/// `cold-start DIR`: opens the store, reads today's board, builds the kiosk app and lays out its first frame
/// headless (`egui_kittest`: layout and tessellation-ready shapes, no GPU). Prints `ms peak_rss_kb`.
pub fn cold_start(dir: &Path) -> Result<()> {
    let t = Instant::now();
    let store = Store::open(dir)?;
    let board = store.arrivals_on(store.today())?;
    let app = DeskApp::new(Arc::new(store), &Config::default());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_context_setup(theme::install)
        .build_ui_state(|ui, app: &mut DeskApp| app.show(ui), app);
    h.step();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let rss = crate::table::proc_status_kb(std::process::id(), "VmHWM").unwrap_or(0);
    println!("{ms:.1} {rss} {}", board.len());
    Ok(())
}

/// Runs `cold-start` in a child process; returns (ms to first frame measured inside, ms from spawn to exit,
/// peak RSS in kB).
pub fn run_cold_start(dir: &Path) -> Result<(f64, f64, u64)> {
    let t = Instant::now();
    let out = Command::new(std::env::current_exe()?).arg("cold-start").arg(dir).output()?;
    let wall = t.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        bail!("cold-start child failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace();
    let ms: f64 = f.next().context("cold-start printed nothing")?.parse()?;
    let rss: u64 = f.next().context("cold-start printed no RSS")?.parse()?;
    Ok((ms, wall, rss))
}

/// Where the kiosks of a benchmark HQ are enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sites {
    /// Every kiosk at one site (`main`): each pulls the others' records through the site relay (the sharing
    /// figures).
    One,
    /// Each kiosk at a site of its own (`site0`, `site1`, …): nothing is relayed between them, so the sync figures
    /// measure what one desk pushes, as at a hospital group with one desk per site.
    Each,
}

impl Sites {
    fn arg(self) -> &'static str {
        match self {
            Sites::One => "one",
            Sites::Each => "each",
        }
    }

    /// The `serve-hq` argument back.
    pub fn parse(arg: &str) -> Result<Self> {
        match arg {
            "one" => Ok(Sites::One),
            "each" => Ok(Sites::Each),
            other => bail!("serve-hq: sites must be `one` or `each`, not {other:?}"),
        }
    }

    fn site(self, kiosk: usize) -> String {
        match self {
            Sites::One => "main".to_owned(),
            Sites::Each => format!("site{kiosk}"),
        }
    }
}

/// `serve-hq DIR KIOSKS SITES [DATABASE_URL SCHEMA]`: HQ on a loopback port, on the embedded store (redb in DIR) or
/// on PostgreSQL in SCHEMA (created, migrated). Prints its URL, then one enrolment code per kiosk (at the sites
/// [`Sites`] says), then serves until its standard input closes.
pub fn serve_hq(dir: &Path, kiosks: usize, sites: Sites, pg: Option<(&str, &str)>) -> Result<()> {
    let store: HqBackend = match pg {
        None => HqStore::open(dir)?.into(),
        Some((url, schema)) => {
            let mut cfg = PgConfig::new(url);
            cfg.schema = Some(schema.to_owned());
            cfg.application_name = format!("guidedesk-bench/{schema}");
            PgStore::connect(&cfg)?.into()
        }
    };
    let now = server::now_ms();
    let mut codes = Vec::with_capacity(kiosks);
    for i in 0..kiosks {
        codes.push(store.create_code(&sites.site(i), &format!("d{i}"), now, 3_600_000)?);
    }
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse()?,
        tls: None,
        allow_plain_http: false,
        changelog_keep: 16,
        admin_file: None,
    };
    let hq = server::start(store, &options)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", hq.url())?;
    for c in codes {
        writeln!(out, "{c}")?;
    }
    out.flush()?;
    drop(out);
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    hq.shutdown()?;
    Ok(())
}

/// A running HQ: its URL, one enrolment code per kiosk, and its process (for memory). Stopped (and its PostgreSQL
/// schema dropped) when dropped.
pub struct HqHandle {
    pub url: String,
    pub codes: Vec<String>,
    child: Child,
    /// PostgreSQL URL and schema of this run, dropped after the HQ process ends.
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl HqHandle {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) -> Result<()> {
        self.end()
    }

    fn end(&mut self) -> Result<()> {
        drop(self.child.stdin.take());
        self.child.wait()?;
        if let Some((url, schema)) = self.pg.take() {
            pg_exec(&url, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
        }
        Ok(())
    }
}

impl Drop for HqHandle {
    fn drop(&mut self) {
        if let Err(e) = self.end() {
            eprintln!("  stopping HQ: {e}");
        }
    }
}

/// How an HQ backend is started for the sync figures: returns a running HQ with `kiosks` enrolment codes, each
/// kiosk at a site of its own ([`Sites::Each`]).
pub type StartHq = fn(kiosks: usize) -> Result<HqHandle>;

/// The embedded HQ (redb), in a child process, each kiosk at a site of its own (the sync figures).
pub fn embedded_hq(kiosks: usize) -> Result<HqHandle> {
    spawn_hq(kiosks, Sites::Each, None)
}

/// The embedded HQ (redb), in a child process, every kiosk at one site (the sharing figures).
pub fn embedded_hq_one_site(kiosks: usize) -> Result<HqHandle> {
    spawn_hq(kiosks, Sites::One, None)
}

/// The PostgreSQL server HQ runs on in the PostgreSQL figures: `DATABASE_URL`, or a local trust-auth default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether [`database_url`] answers; the reason when it does not.
pub fn postgres_reachable() -> Result<()> {
    pg_exec(&database_url(), "SELECT 1")
}

/// HQ on PostgreSQL ([`database_url`]) in a fresh schema of its own (dropped when the handle drops), in a child
/// process.
pub fn postgres_hq(kiosks: usize) -> Result<HqHandle> {
    spawn_hq(kiosks, Sites::Each, Some((database_url(), fresh_schema())))
}

/// A schema of this run, dropped when dropped.
pub struct PgSchema {
    url: String,
    schema: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Err(e) = pg_exec(&self.url, &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)) {
            eprintln!("  dropping schema {}: {e}", self.schema);
        }
    }
}

fn fresh_schema() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("gd_bench_{}_{nanos:x}", std::process::id())
}

/// HQ's PostgreSQL store in this process, in a fresh schema (for timing its apply apart from HTTP). Drop the store
/// before the schema.
pub fn postgres_store() -> Result<(PgStore, PgSchema)> {
    let schema = PgSchema { url: database_url(), schema: fresh_schema() };
    let mut cfg = PgConfig::new(&schema.url);
    cfg.schema = Some(schema.schema.clone());
    cfg.application_name = format!("guidedesk-bench/{}", schema.schema);
    Ok((PgStore::connect(&cfg)?, schema))
}

fn spawn_hq(kiosks: usize, sites: Sites, pg: Option<(String, String)>) -> Result<HqHandle> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("serve-hq").arg(dir.path()).arg(kiosks.to_string()).arg(sites.arg());
    if let Some((url, schema)) = &pg {
        cmd.arg(url).arg(schema);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().context("HQ child has no stdout")?;
    // From here on the handle owns the child (and the schema): an early return stops both.
    let mut hq = HqHandle { url: String::new(), codes: Vec::with_capacity(kiosks), child, pg, _dir: dir };
    let mut lines = BufReader::new(stdout).lines();
    hq.url = lines.next().context("HQ child printed no URL")??;
    for _ in 0..kiosks {
        hq.codes.push(lines.next().context("HQ child printed too few codes")??);
    }
    Ok(hq)
}

/// Runs one SQL statement on its own connection (5 s to connect).
fn pg_exec(url: &str, sql: &str) -> Result<()> {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut c = tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url))
            .await
            .map_err(|_| anyhow::anyhow!("{url} did not answer within 5 s"))??;
        sqlx::raw_sql(sql).execute(&mut c).await?;
        c.close().await?;
        Ok(())
    })
}

/// PostgreSQL's own bulk load of the same ops: in a fresh schema, a table with one row per op (device, seq, kind,
/// record id, payload; primary key (device, seq) like HQ's receipts), filled with one `COPY … FROM STDIN` per batch
/// (each its own durable commit). Returns the seconds the copies took. The floor of any PostgreSQL ingest of these
/// ops: HQ also merges each record, writes its per-kind columns and indexes, its receipt and the site feed.
pub fn pg_copy_ops(device: u128, ops: &[guidedesk_sync::Op], batch: usize) -> Result<f64> {
    use sqlx::Connection;
    use std::fmt::Write as _;
    let schema = PgSchema { url: database_url(), schema: fresh_schema() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let secs = rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&schema.url).await?;
        let table = format!("{}.ops", schema.schema);
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA {0}; CREATE TABLE {table} (device uuid NOT NULL, seq bigint NOT NULL, kind smallint NOT \
             NULL, record_id uuid NOT NULL, payload bytea NOT NULL, PRIMARY KEY (device, seq))",
            schema.schema
        ))
        .execute(&mut c)
        .await?;
        let device = uuid::Uuid::from_u128(device);
        // The rows in COPY's text format, prepared before the clock starts (HQ's decode is timed apart too).
        let mut bodies = Vec::new();
        for chunk in ops.chunks(batch.max(1)) {
            let mut text = String::new();
            for op in chunk {
                let _ =
                    write!(text, "{device}\t{}\t{}\t{}\t\\\\x", op.seq, op.key.kind, uuid::Uuid::from_u128(op.key.id));
                for b in &op.payload {
                    let _ = write!(text, "{b:02x}");
                }
                text.push('\n');
            }
            bodies.push(text);
        }
        let t0 = Instant::now();
        for body in bodies {
            let mut copy = c.copy_in_raw(&format!("COPY {table} FROM STDIN")).await?;
            copy.send(body.into_bytes()).await?;
            copy.finish().await?;
        }
        let secs = t0.elapsed().as_secs_f64();
        c.close().await?;
        anyhow::Ok(secs)
    })?;
    drop(schema);
    Ok(secs)
}

/// A program on `PATH`, if there is one.
fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The kiosk binary: `GUIDEDESK_BIN`, else `guidedesk` beside this harness (the same target directory and profile).
fn kiosk_binary() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("GUIDEDESK_BIN") {
        return Some(p.into());
    }
    let p = std::env::current_exe().ok()?.parent()?.join("guidedesk");
    p.is_file().then_some(p)
}

/// An X server of our own (Xvfb) on a free display; stopped on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb at 1280×800×24, or says why it cannot.
    pub fn start() -> Result<Xvfb, String> {
        let bin = on_path("Xvfb").ok_or("no Xvfb")?;
        let n = (90..200)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .ok_or("no free X display")?;
        let child = Command::new(bin)
            .arg(format!(":{n}"))
            .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("Xvfb did not start: {e}"))?;
        let mut x = Xvfb { child, display: format!(":{n}") };
        let socket = format!("/tmp/.X11-unix/X{n}");
        let t = Instant::now();
        while !Path::new(&socket).exists() {
            if t.elapsed().as_secs() >= 10 || matches!(x.child.try_wait(), Ok(Some(_))) {
                return Err("Xvfb did not come up".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(x)
    }
}

impl Drop for Xvfb {
    /// Stops the server with SIGTERM so that it removes its socket and lock file (a SIGKILL leaves both behind and
    /// the display number stays taken); SIGKILL only if it has not exited within two seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let t = Instant::now();
        while t.elapsed().as_secs() < 2 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the real kiosk binary on the store in `dir` in a window on `x` until its first frame is presented
/// (`--exit-after-first-frame`). Returns (ms from spawn to the first-frame line, ms inside the app from the start
/// of its window code, peak RSS in kB), or why it could not be measured.
pub fn run_window_start(dir: &Path, x: &Xvfb) -> Result<(f64, f64, u64), String> {
    let bin = kiosk_binary().ok_or("the kiosk binary is not built (cargo build --release -p guidedesk)")?;
    let t = Instant::now();
    let mut child = Command::new(&bin)
        .arg("--data-dir")
        .arg(dir)
        .arg("--exit-after-first-frame")
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("GUIDEDESK_NO_OPEN", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("the kiosk has no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if l.starts_with("first-frame ") {
                let _ = tx.send((t.elapsed().as_secs_f64() * 1e3, l));
                break;
            }
        }
    });
    let got = rx.recv_timeout(std::time::Duration::from_mins(2)).ok();
    if got.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().map_err(|e| format!("kiosk: {e}"))?;
    let Some((wall, line)) = got else {
        return Err(format!(
            "the kiosk printed no first-frame line ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        ));
    };
    let field = |k: &str| -> Option<f64> {
        line.split_whitespace().find_map(|f| f.strip_prefix(k)).and_then(|v| v.parse().ok())
    };
    let ms = field("ms=").ok_or("bad first-frame line")?;
    let rss = field("peak_rss_kb=").ok_or("bad first-frame line")? as u64;
    Ok((wall, ms, rss))
}

/// The kiosk in a window with nothing happening: spawns `guidedesk` on the store in `dir`, lets it settle for
/// `settle`, then returns its CPU time over `window` as a share of one core (percent), or why it could not be
/// measured. The window shows what an unattended kiosk shows (the sign-in screen, where the idle lock leaves it).
pub fn run_window_idle(
    dir: &Path,
    x: &Xvfb,
    settle: std::time::Duration,
    window: std::time::Duration,
) -> Result<f64, String> {
    let bin = kiosk_binary().ok_or("the kiosk binary is not built (cargo build --release -p guidedesk)")?;
    let mut child = Command::new(&bin)
        .arg("--data-dir")
        .arg(dir)
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("GUIDEDESK_NO_OPEN", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    std::thread::sleep(settle);
    let pid = child.id();
    let measured = (|| {
        let c0 = crate::table::process_cpu(pid).ok_or("cannot read the kiosk's CPU time")?;
        let t0 = Instant::now();
        std::thread::sleep(window);
        let c1 = crate::table::process_cpu(pid).ok_or("the kiosk exited while measured")?;
        Ok(100.0 * c1.saturating_sub(c0).as_secs_f64() / t0.elapsed().as_secs_f64())
    })();
    let _ = child.kill();
    let _ = child.wait();
    measured
}
