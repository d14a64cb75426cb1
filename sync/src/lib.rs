//! Domain-agnostic replication pieces for GuideDesk.
//!
//! This crate knows nothing about hospitals. It defines what every replicated change looks like on the wire and in a
//! kiosk's outbox, how those bytes are encoded, how devices order concurrent changes, and the push/pull protocol
//! between devices and headquarters:
//!
//! - [`codec`]: the one place where values become bytes (bincode 2 with a leading format-version byte);
//! - [`hlc`]: the hybrid logical clock that stamps every change so last-writer-wins merges are total and monotonic
//!   even when wall clocks jump;
//! - [`envelope`]: the operation envelope (`Op`) an outbox holds and a push batch carries, and the checks a batch must
//!   pass (contiguous per-device sequence numbers);
//! - [`protocol`]: the push, pull and enrolment messages and the stable error codes;
//! - [`server`]: HQ's side — applying a push batch behind a storage trait, answering a pull from a change log;
//! - [`replicate`]: the device's side of a sync cycle behind transport/outbox/sink traits;
//! - [`backoff`]: exponential backoff with full jitter that honours `Retry-After`;
//! - [`memory`]: in-memory HQ storage and change log for tests;
//! - `client` (feature `client`): the blocking HTTPS transport on reqwest + rustls.
//!
//! The hospital application maps its record kinds to the opaque `kind` code and payload bytes of an [`envelope::Op`].

pub mod backoff;
#[cfg(feature = "client")]
pub mod client;
pub mod codec;
pub mod envelope;
pub mod hlc;
pub mod memory;
pub mod protocol;
pub mod replicate;
pub mod server;

pub use codec::{CodecError, FORMAT_VERSION};
pub use envelope::{BatchError, DeviceId, Op, RecordKey};
pub use hlc::{Hlc, HlcClock};
