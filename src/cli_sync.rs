//! The kiosk's sync subcommands (`guidedesk enroll`, `guidedesk sync`), kept apart from `main.rs` so the CLI and
//! the GUI can evolve independently.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::config::Config;
use crate::kiosk_sync::{self, SyncOptions};
use crate::store::Store;

/// Sync subcommands, flattened into the main CLI.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Enrol this kiosk with headquarters using a one-time code from `guidedesk-hq enroll-code`
    Enroll {
        /// HQ's URL, e.g. `https://hq.example:8443`
        #[arg(long, value_name = "URL")]
        hq: String,
        /// The one-time enrolment code
        #[arg(long)]
        code: String,
        /// CA certificate (PEM) to trust for HQ instead of the system's roots
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Allow plain HTTP to an HQ that is not on this machine
        #[arg(long)]
        allow_plain_http: bool,
    },
    /// Run one full sync with HQ (push every pending record, pull reference data and the records other desks of the
    /// site wrote, with a progress line per page); exit 0 only when HQ has acknowledged everything
    Sync,
}

/// Runs a sync subcommand. `open` opens the kiosk store the way the rest of the CLI does.
pub fn run(command: SyncCommand, data_dir: &Path, cfg: &Config, open: impl FnOnce() -> Result<Store>) -> Result<()> {
    match command {
        SyncCommand::Enroll { hq, code, ca, allow_plain_http } => {
            let ca_pem = ca
                .map(|p| {
                    std::fs::read_to_string(&p).with_context(|| format!("cannot read the CA file {}", p.display()))
                })
                .transpose()?;
            let store = open()?;
            let (cred, path) = kiosk_sync::enroll(&store, data_dir, &hq, &code, ca_pem, allow_plain_http)?;
            println!(
                "enrolled device {} as desk {} at site {}; credential stored in {}",
                cred.device,
                cred.desk,
                cred.site,
                path.display()
            );
        }
        SyncCommand::Sync => {
            let store = open()?;
            let options = SyncOptions::from_config(&cfg.sync);
            let cred =
                kiosk_sync::Credential::load(&store, data_dir)?.ok_or(kiosk_sync::KioskSyncError::NotEnrolled)?;
            let totals = std::sync::Mutex::new((0u64, 0u64, 0u64));
            let progress = |a: &crate::store::RemoteApplied, skipped: u64| {
                if let Ok(mut t) = totals.lock() {
                    t.0 += a.received;
                    t.1 += a.new + a.merged;
                    t.2 += skipped;
                    if a.received > 0 {
                        eprintln!("records from other desks: {} received, {} new or updated here", t.0, t.1);
                    }
                }
            };
            let report = kiosk_sync::sync_with_progress(&store, &cred, &options, Some(&progress))?;
            let (received, changed, unreadable) = totals.lock().map(|t| *t).unwrap_or_default();
            let mut line = format!(
                "sync done: {} ops sent in {} batches ({} new at HQ, {} already there), acknowledged through seq {}",
                report.applied + report.duplicates + report.quarantined.len() as u64,
                report.batches,
                report.applied,
                report.duplicates,
                report.acked_through,
            );
            if !report.quarantined.is_empty() {
                let _ = write!(line, "; {} quarantined at HQ as invalid", report.quarantined.len());
            }
            let reference_updates = report.pulled.saturating_sub(received);
            if reference_updates > 0 {
                let _ = write!(line, "; {reference_updates} reference update(s) received");
            }
            if received > 0 {
                let _ =
                    write!(line, "; {received} record(s) from other desks received ({changed} new or updated here)");
            }
            if unreadable > 0 {
                let _ = write!(line, "; {unreadable} record(s) from HQ could not be read and were skipped");
            }
            if let Some(off) = report.hq_offset_ms
                && off.abs() > 60_000
            {
                let _ = write!(line, "; this kiosk's clock is off by {} s from HQ's", -off / 1000);
            }
            println!("{line}");
            if report.pending > 0 {
                bail!("{} ops are still waiting to be acknowledged by HQ", report.pending);
            }
        }
    }
    Ok(())
}
