//! The kiosk's staff screens (egui). Screens read through [`data::Queries`] and return [`data::Command`]s; the app
//! (`crate::app`) applies commands to the store. All text comes from the locale files ([`i18n`]); sizes and colours
//! from [`theme`].

pub mod audit;
pub mod board;
pub mod cases;
pub mod consult;
pub mod dashboard;
pub mod data;
pub mod followup;
pub mod i18n;
pub mod patient;
pub mod register;
pub mod search;
pub mod signin;
pub mod theme;
pub mod widgets;
