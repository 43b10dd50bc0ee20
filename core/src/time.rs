//! The one clock type: a Unix time the host passes in.
//!
//! The core never reads a clock. Hosts turn theirs into a [`UnixTime`] in
//! one place ([`UnixTime::from_unix_duration`] for `SystemTime`,
//! [`UnixTime::from_secs_f64`] for Python's `time.time()`), and every
//! rounding rule lives here: token and session checks compare whole seconds
//! (the floor, as `int(time.time())`), rate limits use milliseconds.

use core::fmt;
use core::time::Duration;

/// A point in time since the Unix epoch (UTC): whole seconds over the full
/// `i64` range, plus milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime {
    secs: i64,
    /// 0..1000.
    sub_ms: u16,
}

impl UnixTime {
    /// The epoch.
    pub const EPOCH: UnixTime = UnixTime { secs: 0, sub_ms: 0 };

    /// Whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        UnixTime { secs, sub_ms: 0 }
    }

    /// Milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        // rem_euclid(1000) lies in 0..1000: the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let sub_ms = ms.rem_euclid(1000) as u16;
        UnixTime {
            secs: ms.div_euclid(1000),
            sub_ms,
        }
    }

    /// A duration since the epoch (`SystemTime::now().duration_since(UNIX_EPOCH)`),
    /// saturating past `i64::MAX` milliseconds.
    pub fn from_unix_duration(d: Duration) -> Self {
        let sub_ms = u16::try_from(d.subsec_millis()).unwrap_or(0);
        match i64::try_from(d.as_secs()) {
            Ok(secs) => UnixTime { secs, sub_ms },
            Err(_) => UnixTime::from_secs(i64::MAX),
        }
    }

    /// Python's `time.time()`: seconds as a float, truncated to the millisecond
    /// below. NaN is the epoch; infinities saturate.
    pub fn from_secs_f64(secs: f64) -> Self {
        // `as` from f64 truncates toward zero, saturates and maps NaN to 0;
        // one step down makes it the floor for negative fractions.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let ms = {
            let x = secs * 1000.0;
            let t = x as i64;
            if (t as f64) > x {
                t.saturating_sub(1)
            } else {
                t
            }
        };
        UnixTime::from_millis(ms)
    }

    /// Whole seconds, rounded down (`int(time.time())`, `floor` for times
    /// before the epoch): the clock of every token and session check.
    pub const fn secs(self) -> i64 {
        self.secs
    }

    /// Milliseconds since the epoch: the clock of rate limits (saturating
    /// for seconds beyond the `i64` millisecond range).
    pub const fn millis(self) -> i64 {
        self.secs
            .saturating_mul(1000)
            .saturating_add(self.sub_ms as i64)
    }
}

impl fmt::Debug for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixTime({}.{:03} s)", self.secs, self.sub_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_milliseconds_are_exact() {
        let rows: [(UnixTime, i64, i64); 7] = [
            (UnixTime::from_secs(10), 10, 10_000),
            (UnixTime::from_millis(10_999), 10, 10_999),
            (UnixTime::from_millis(-1), -1, -1),
            (UnixTime::from_secs_f64(1.9999), 1, 1_999),
            (UnixTime::from_secs_f64(-0.0005), -1, -1),
            (UnixTime::from_secs_f64(f64::NAN), 0, 0),
            (UnixTime::from_secs(i64::MAX), i64::MAX, i64::MAX),
        ];
        for (t, secs, ms) in rows {
            assert_eq!((t.secs(), t.millis()), (secs, ms), "{t:?}");
        }
        assert_eq!(
            UnixTime::from_unix_duration(Duration::from_nanos(1_500_999_999)).millis(),
            1_500
        );
    }
}
