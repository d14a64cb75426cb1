//! The harness's child processes, so time-to-first-frame and memory are measured in a process of their own.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use egui_kittest::Harness;
use guidedesk::app::DeskApp;
use guidedesk::config::Config;
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

/// `serve-hq DIR KIOSKS`: the embedded HQ (redb) on a loopback port. Prints its URL, then one enrolment code per
/// kiosk, then serves until its standard input closes.
pub fn serve_hq(dir: &Path, kiosks: usize) -> Result<()> {
    let store = HqStore::open(dir)?;
    let now = server::now_ms();
    let mut codes = Vec::with_capacity(kiosks);
    for i in 0..kiosks {
        codes.push(store.create_code("main", &format!("d{i}"), now, 3_600_000)?);
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

/// A running HQ: its URL, one enrolment code per kiosk, and its process (for memory).
pub struct HqHandle {
    pub url: String,
    pub codes: Vec<String>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl HqHandle {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        self.child.wait()?;
        Ok(())
    }
}

/// How an HQ backend is started for the sync figures: returns a running HQ with `kiosks` enrolment codes. The
/// PostgreSQL backend plugs in here as another function of this type.
pub type StartHq = fn(kiosks: usize) -> Result<HqHandle>;

/// The embedded HQ (redb), in a child process.
pub fn embedded_hq(kiosks: usize) -> Result<HqHandle> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve-hq")
        .arg(dir.path())
        .arg(kiosks.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("HQ child has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = lines.next().context("HQ child printed no URL")??;
    let mut codes = Vec::with_capacity(kiosks);
    for _ in 0..kiosks {
        codes.push(lines.next().context("HQ child printed too few codes")??);
    }
    Ok(HqHandle { url, codes, child, _dir: dir })
}
