//! End-to-end tests: one binary, one module per feature.

#![allow(clippy::unwrap_used, clippy::similar_names, clippy::items_after_statements)]

mod access;
mod appointments;
mod approval;
mod audit;
mod backup;
mod cases;
mod cli;
mod crash;
mod dashboard;
mod faults;
mod fuzz;
mod import;
mod keys;
mod patient;
mod report;
mod retention;
mod rounds;
mod roundtrip;
mod shiftlog;
mod ui;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `guidedesk` binary with a data directory.
pub fn guidedesk(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guidedesk"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("GUIDEDESK_DATA_DIR")
        .output()
        .expect("the guidedesk binary runs")
}

// Sync with a real HQ needs the `hq` feature (`cargo test --workspace --all-features`).
#[cfg(feature = "hq")]
mod sync;

// HQ's reports, overview and limits (feature `hq`).
#[cfg(feature = "hq")]
mod hq_api;

// Regression tests for the hostile-network review (one per finding; see SECURITY.md).
#[cfg(feature = "hq")]
mod security_api;
mod security_data;
#[cfg(feature = "hq")]
mod security_hq;
mod security_secrets;
