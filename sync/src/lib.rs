//! Domain-agnostic replication pieces for GuideDesk.
//!
//! This crate knows nothing about hospitals. It defines what every replicated change looks like on the wire and in a
//! kiosk's outbox, how those bytes are encoded, and how devices order concurrent changes:
//!
//! - [`codec`]: the one place where values become bytes (bincode 2 with a leading format-version byte);
//! - [`hlc`]: the hybrid logical clock that stamps every change so last-writer-wins merges are total and monotonic
//!   even when wall clocks jump;
//! - [`envelope`]: the operation envelope (`Op`) an outbox holds and a push batch carries, and the checks a batch must
//!   pass (contiguous per-device sequence numbers).
//!
//! The hospital application maps its record kinds to the opaque `kind` code and payload bytes of an [`envelope::Op`].

pub mod codec;
pub mod envelope;
pub mod hlc;

pub use codec::{CodecError, FORMAT_VERSION};
pub use envelope::{BatchError, DeviceId, Op, RecordKey};
pub use hlc::{Hlc, HlcClock};
