//! What screens may read ([`Queries`], read-only) and what they may ask for ([`Command`]): both live outside the UI
//! ([`crate::queries`], [`crate::command`]); screens name them through this module.
//!
//! Screens never open the store or change it: they read through `&dyn Queries` and return commands; the app
//! applies each command in one short transaction and hands the [`Outcome`] back to the screen.

pub use crate::command::{CaseCommand, Command, Outcome, SearchHit, SearchQuery, run_search};
pub use crate::queries::Queries;
