//! Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
//!
//! The n-th retry waits a uniformly random time in `[0, min(cap, base · 2ⁿ)]`, so many kiosks that lost HQ at the
//! same moment do not come back in lockstep. A server's `Retry-After` is a lower bound: the wait is never shorter
//! than what HQ asked for (bounded by [`MAX_RETRY_AFTER`] so a bad header cannot stop sync for days).

use std::time::Duration;

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_hours(1);

/// Backoff state for one sequence of retries.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// Backoff starting at `base`, never above `cap`, with a random seed (e.g. from the device id and the time).
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Self { base, cap: cap.max(base), attempt: 0, rng: seed ^ 0x9e37_79b9_7f4a_7c15 }
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Starts over (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The upper bound of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next attempt; `retry_after` is the server's `Retry-After`, if it sent one.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let jittered = Duration::from_millis(self.next_random() % ceiling_ms.saturating_add(1));
        match retry_after {
            Some(r) => jittered.max(r.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    /// splitmix64: small, fast, good enough for jitter.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Parses an HTTP `Retry-After` value given in seconds (the HTTP-date form is not used by HQ and is ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 1);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay(None);
        }
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.ceiling().as_millis(), 100);
    }

    #[test]
    fn retry_after_is_a_lower_bound_within_reason() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(20), 7);
        assert!(b.next_delay(Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(b.next_delay(Some(Duration::from_hours(240))), MAX_RETRY_AFTER);
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1), 42);
        let delays: std::collections::BTreeSet<_> = (0..50).map(|_| b.next_delay(None).as_millis()).collect();
        assert!(delays.len() > 40, "{delays:?}");
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_ceiling(seed in any::<u64>(), base in 1u64..10_000, cap in 1u64..100_000, n in 0u32..80) {
            let mut b = Backoff::new(Duration::from_millis(base), Duration::from_millis(cap), seed);
            for _ in 0..n {
                let ceiling = b.ceiling();
                prop_assert!(b.next_delay(None) <= ceiling);
                prop_assert!(ceiling <= Duration::from_millis(cap.max(base)));
            }
        }
    }
}
