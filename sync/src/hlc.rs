//! Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//!
//! An [`Hlc`] stamp is `(wall_ms, logical, node)`. Stamps from one [`HlcClock`] strictly increase, whatever the wall
//! clock does: if the wall clock stands still or goes backwards, the logical counter advances instead; if the counter
//! would overflow, the wall part is pushed one millisecond ahead. `node` (the device) breaks ties between devices, so
//! every two stamps compare and last-writer-wins merges are deterministic.
//!
//! The owner persists [`HlcClock::last`] together with every write and restores it with [`HlcClock::resume`], so the
//! clock never goes back across restarts either.

use serde::{Deserialize, Serialize};

/// A hybrid-logical-clock stamp. Ordered by wall time, then logical counter, then node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (the largest physical time this clock has seen).
    pub wall_ms: u64,
    /// Counter that orders stamps within one `wall_ms`.
    pub logical: u32,
    /// The device that made the stamp; breaks ties between devices.
    pub node: u64,
}

impl Hlc {
    /// The smallest possible stamp; every real stamp is greater.
    pub const ZERO: Hlc = Hlc { wall_ms: 0, logical: 0, node: 0 };
}

impl std::fmt::Display for Hlc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:04}@{:016x}", self.wall_ms, self.logical, self.node)
    }
}

/// A clock that issues strictly increasing [`Hlc`] stamps for one node.
#[derive(Debug, Clone)]
pub struct HlcClock {
    node: u64,
    last: Hlc,
}

impl HlcClock {
    /// A fresh clock for `node` that has issued nothing yet.
    pub fn new(node: u64) -> Self {
        Self { node, last: Hlc { node, ..Hlc::ZERO } }
    }

    /// A clock for `node` that continues after `last` (the last stamp persisted before a restart).
    pub fn resume(node: u64, last: Hlc) -> Self {
        Self { node, last: Hlc { node, ..last } }
    }

    /// The node this clock stamps for.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// The last stamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// Issues a new stamp, greater than every stamp issued or observed before, given the current physical time.
    pub fn tick(&mut self, physical_ms: u64) -> Hlc {
        let next = if physical_ms > self.last.wall_ms {
            Hlc { wall_ms: physical_ms, logical: 0, node: self.node }
        } else {
            Self::bump(self.last.wall_ms, self.last.logical, self.node)
        };
        self.last = next;
        next
    }

    /// Merges a stamp received from another node so later local stamps order after it, and returns the new stamp.
    pub fn observe(&mut self, remote: Hlc, physical_ms: u64) -> Hlc {
        let wall = physical_ms.max(self.last.wall_ms).max(remote.wall_ms);
        let next = if wall == physical_ms && wall > self.last.wall_ms && wall > remote.wall_ms {
            Hlc { wall_ms: wall, logical: 0, node: self.node }
        } else {
            let logical = match (wall == self.last.wall_ms, wall == remote.wall_ms) {
                (true, true) => self.last.logical.max(remote.logical),
                (true, false) => self.last.logical,
                (false, true) => remote.logical,
                (false, false) => 0,
            };
            Self::bump(wall, logical, self.node)
        };
        self.last = next;
        next
    }

    fn bump(wall_ms: u64, logical: u32, node: u64) -> Hlc {
        match logical.checked_add(1) {
            Some(logical) => Hlc { wall_ms, logical, node },
            None => Hlc { wall_ms: wall_ms.saturating_add(1), logical: 0, node },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn monotonic_when_wall_clock_goes_back() {
        let mut c = HlcClock::new(1);
        let a = c.tick(1_000);
        let b = c.tick(500);
        let d = c.tick(1_000);
        assert!(a < b && b < d);
        assert_eq!(b.wall_ms, 1_000);
    }

    #[test]
    fn resume_continues_after_persisted_stamp() {
        let mut c = HlcClock::new(9);
        let a = c.tick(5_000);
        let mut r = HlcClock::resume(9, c.last());
        assert!(r.tick(10) > a);
    }

    #[test]
    fn counter_overflow_moves_wall_forward() {
        let mut c = HlcClock::resume(1, Hlc { wall_ms: 7, logical: u32::MAX, node: 1 });
        let s = c.tick(0);
        assert_eq!((s.wall_ms, s.logical), (8, 0));
    }

    #[test]
    fn observe_orders_after_remote() {
        let mut c = HlcClock::new(1);
        let remote = Hlc { wall_ms: 99_999, logical: 4, node: 2 };
        let s = c.observe(remote, 10);
        assert!(s > remote);
        assert!(c.tick(10) > s);
    }

    proptest! {
        #[test]
        fn stamps_strictly_increase(steps in proptest::collection::vec((any::<bool>(), 0u64..10_000, 0u64..10_000, 0u32..5), 1..200)) {
            let mut c = HlcClock::new(3);
            let mut prev = Hlc::ZERO;
            for (is_observe, phys, rwall, rlog) in steps {
                let s = if is_observe { c.observe(Hlc { wall_ms: rwall, logical: rlog, node: 4 }, phys) } else { c.tick(phys) };
                prop_assert!(s > prev);
                prop_assert!(s.wall_ms >= phys.min(s.wall_ms));
                prev = s;
            }
        }
    }
}
