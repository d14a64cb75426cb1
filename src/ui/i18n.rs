//! The screens' text: the locale files and the translator live in [`crate::i18n`] (pure, shared with the reports);
//! re-exported here so screens keep using `ui::i18n::Tr`.

pub use crate::i18n::*;
