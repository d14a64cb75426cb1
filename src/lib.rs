//! GuideDesk: offline-first software for hospital lobby guide desks (导医台).
//!
//! The kiosk application's library: the record model ([`model`]), pure hospital rules ([`policy`]), the kiosk's
//! durable store with its transactional outbox ([`store`]), demo data ([`demo`]), exports ([`export`]), imports of
//! HIS files ([`import`]), reports and KPIs ([`reports`]) and configuration ([`config`]). The binary in `main.rs` is a
//! thin CLI over these.

pub mod access;
pub mod app;
pub mod cli_sync;
pub mod config;
pub mod csv_safe;
pub mod demo;
pub mod export;
#[cfg(feature = "hq")]
pub mod hq;
pub mod import;
pub mod kiosk_sync;
pub mod model;
pub mod policy;
pub mod reports;
pub mod slip;
pub mod staff;
pub mod store;
pub mod ui;
pub mod workflow;
