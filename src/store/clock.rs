//! Time for the store: the wall clock records are stamped with ([`Clock`], real or manual) and the options a store
//! is opened with ([`StoreOptions`]: clock and the site's UTC offset, which decides what "today" is).
//!
//! `StoreOptions` lives here rather than in `open.rs` because it is nothing but time: the clock and the offset. The
//! HLC that orders writes is not here; it is resumed at open (`open.rs`) and advanced by writes (`write.rs`).

use std::sync::Arc;

use chrono::FixedOffset;

use crate::model::Moment;

/// A source of wall-clock time (injectable for tests).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Moment;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Moment {
        Moment::from_datetime(chrono::Utc::now())
    }
}

/// A clock that only moves when told to (tests, demo data).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Moment) -> Self {
        Self(std::sync::atomic::AtomicI64::new(at.0))
    }

    /// Moves the clock to `at` (forwards or backwards).
    pub fn set(&self, at: Moment) {
        self.0.store(at.0, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the clock by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Moment {
        Moment(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The site's UTC offset, which decides what "today" is.
    pub utc_offset: FixedOffset,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock), utc_offset: china_offset() }
    }
}

pub use crate::model::common::china_offset;
