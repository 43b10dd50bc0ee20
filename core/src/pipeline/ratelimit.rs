//! Connection-attempt rate limiting: GCRA (generic cell rate algorithm) as a
//! pure function over state the host stores, keyed however the host likes
//! (usually the peer IP). Time is an argument (Unix milliseconds).
//!
//! With `burst = B` and one new attempt every `interval_ms`, up to `B`
//! attempts may come at once, then one per interval. The state is a single
//! theoretical arrival time; a fresh key starts from [`RateState::default`].

use core::fmt;
use serde::{Deserialize, Serialize};

/// The per-key state the host stores (one `i64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RateState {
    /// Theoretical arrival time, Unix ms (0 for a fresh key).
    pub tat_ms: i64,
}

impl RateState {
    /// True when the key is back to a fresh state at `now_ms` (the host may forget it).
    pub fn is_idle(&self, now_ms: i64) -> bool {
        self.tat_ms <= now_ms
    }
}

/// How long to wait before the next attempt can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    /// Milliseconds.
    pub ms: u64,
}

impl RetryAfter {
    /// Whole seconds, rounded up (at least 1), for the close reason / `Retry-After`.
    pub fn secs(&self) -> u64 {
        self.ms.div_ceil(1000).max(1)
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retry after {} s", self.secs())
    }
}

/// A GCRA limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Milliseconds between attempts at the sustained rate (> 0).
    pub interval_ms: u64,
    /// Attempts allowed at once (≥ 1).
    pub burst: u32,
}

impl RateLimit {
    /// `requests` per `period_ms` with `burst`; `None` when any is zero.
    pub fn new(requests: u32, period_ms: u64, burst: u32) -> Option<Self> {
        if requests == 0 || period_ms == 0 || burst == 0 {
            return None;
        }
        let interval_ms = period_ms.checked_div(u64::from(requests))?.max(1);
        Some(RateLimit { interval_ms, burst })
    }

    /// One attempt at `now_ms`: `Ok` (and `state` advanced) or `Err` with the
    /// wait (state unchanged).
    ///
    /// The arithmetic is exact for every `interval_ms`, `burst`, state and
    /// time: `i128` holds every intermediate value (`i64 + 2^63`,
    /// `2^63 * u32`), so its saturating operations never saturate. An
    /// attempt is refused exactly when the unbounded GCRA refuses it, with
    /// its exact wait (capped at `u64::MAX` ms). An attempt the GCRA would
    /// admit but whose new theoretical arrival time does not fit the `i64`
    /// state (a clock or state within one interval of `i64::MAX`) is refused
    /// too, with the longest wait: recording a clamped time instead would
    /// under-count and let every later attempt through.
    pub fn check(&self, state: &mut RateState, now_ms: i64) -> Result<(), RetryAfter> {
        let t = i128::from(self.interval_ms.clamp(1, i64::MAX.unsigned_abs()));
        let window = t.saturating_mul(i128::from(self.burst.max(1)));
        let now = i128::from(now_ms);
        let new_tat = i128::from(state.tat_ms.max(now_ms)).saturating_add(t);
        let allow_at = new_tat.saturating_sub(window);
        if now < allow_at {
            let wait = allow_at.saturating_sub(now);
            return Err(RetryAfter {
                ms: u64::try_from(wait).unwrap_or(u64::MAX),
            });
        }
        state.tat_ms = i64::try_from(new_tat).map_err(|_| RetryAfter { ms: u64::MAX })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        // 1 attempt per second sustained, burst of 3.
        let limit = RateLimit::new(1, 1000, 3).unwrap();
        let mut st = RateState::default();
        let t0 = 1_750_000_000_000;
        for _ in 0..3 {
            assert!(limit.check(&mut st, t0).is_ok());
        }
        let err = limit.check(&mut st, t0).unwrap_err();
        assert_eq!(err.ms, 1000);
        assert_eq!(err.secs(), 1);
        assert!(limit.check(&mut st, t0 + 999).is_err());
        assert!(limit.check(&mut st, t0 + 1000).is_ok());
        assert!(limit.check(&mut st, t0 + 1000).is_err());
        assert!(st.is_idle(t0 + 10_000));
        assert!(limit.check(&mut st, t0 + 10_000).is_ok());
    }

    #[test]
    fn zero_is_refused() {
        assert!(RateLimit::new(0, 1000, 1).is_none());
        assert!(RateLimit::new(1, 0, 1).is_none());
        assert!(RateLimit::new(1, 1000, 0).is_none());
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let limit = RateLimit {
            interval_ms: u64::MAX,
            burst: u32::MAX,
        };
        let mut st = RateState { tat_ms: i64::MAX };
        let _ = limit.check(&mut st, i64::MIN);
        let _ = limit.check(&mut st, i64::MAX);
    }
}
