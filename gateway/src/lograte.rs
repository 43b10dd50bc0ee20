//! Log rate limiting: an event that can repeat at the rate an attacker
//! chooses (a dropped message, a refused connection, an accept error) is
//! counted, and one line per interval reports how many happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The interval between two lines about the same event, milliseconds.
pub(crate) const LOG_INTERVAL: u64 = 10_000;

/// One kind of repeated event.
#[derive(Debug)]
pub(crate) struct LogRate {
    interval_ms: u64,
    /// Unix ms of the last line (0: none yet).
    last_ms: AtomicU64,
    /// Events since the last line.
    count: AtomicU64,
}

impl LogRate {
    /// An event logged at most once per `interval_ms`.
    pub(crate) const fn new(interval_ms: u64) -> Self {
        LogRate {
            interval_ms,
            last_ms: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one event at the current time; see [`LogRate::note_at`].
    pub(crate) fn note(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.note_at(now)
    }

    /// Counts one event at `now_ms`: `Some(n)` when a line is due, `n` being
    /// the events since the previous line (this one included). The first
    /// event is logged at once; later ones at most once per interval.
    pub(crate) fn note_at(&self, now_ms: u64) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < self.interval_ms {
            return None;
        }
        self.last_ms
            .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let r = LogRate::new(1000);
        assert_eq!(r.note_at(5000), Some(1));
        for t in 5001..5999 {
            assert_eq!(r.note_at(t), None);
        }
        assert_eq!(r.note_at(6000), Some(999));
        assert_eq!(r.note_at(6001), None);
        assert_eq!(r.note_at(9000), Some(2));
    }
}
