//! The kiosk's staff screens (egui). Each staff screen is a [`context::DeskScreen`]: it draws from one
//! [`context::ScreenCtx`] per frame (reads through [`data::Queries`]) and sends [`data::Command`]s through it; the
//! app (`crate::app`) applies them and hands each outcome back. All text comes from the locale files ([`i18n`]);
//! sizes and colours from [`theme`] (the only module allowed to make a colour). Work off the UI thread goes
//! through [`job::Job`].

pub mod alerts;
pub mod appointments;
pub mod audit;
pub mod board;
pub mod cases;
pub mod consult;
pub mod context;
pub mod dashboard;
pub mod data;
pub mod directory;
pub mod followup;
pub mod i18n;
pub mod job;
pub mod patient;
pub mod register;
pub mod search;
pub mod shiftlog;
pub mod signin;
pub mod theme;
pub mod widgets;
pub mod window;

pub use context::{DeskScreen, Reply, ScreenCtx};
