//! Kafka's `Throttler` for the log cleaner (`log.cleaner.io.max.bytes.per.second`): the
//! cleaners report the bytes they read and write, and one that runs ahead of the rate sleeps
//! until it is back on it. Shared by every cleaner thread, so the rate is their sum.
//!
//! Owns: the rate and the bytes counted in the current period. May call: std. Must never:
//! sleep with a lock held (a partition's, or its own).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the observed rate is checked (Kafka's cleaner uses 300 ms).
const CHECK_PERIOD: Duration = Duration::from_millis(300);

#[derive(Debug)]
pub(crate) struct Throttle {
    bytes_per_second: f64,
    period: Mutex<(Instant, u64)>,
}

impl Throttle {
    pub(crate) fn new(bytes_per_second: f64) -> Throttle {
        Throttle {
            bytes_per_second,
            period: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Counts `bytes` and, if the rate since the period began is above the limit, returns how
    /// long to sleep to be back on it (the caller sleeps, outside every lock).
    pub(crate) fn account(&self, bytes: u64) -> Option<Duration> {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second >= f64::MAX {
            return None;
        }
        let mut period = self.period.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A period starts with its first bytes: time spent idle is no credit for a burst.
        if period.1 == 0 {
            period.0 = Instant::now();
        }
        period.1 += bytes;
        let elapsed = period.0.elapsed();
        let due = Duration::from_secs_f64(period.1 as f64 / self.bytes_per_second);
        if elapsed >= CHECK_PERIOD {
            *period = (Instant::now(), 0);
        }
        // Checked on every call, not only once a period is over: a burst shorter than the
        // period (a small log moved or cleaned at once) is held to the rate too.
        due.checked_sub(elapsed).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_a_sleep_only_past_the_rate() {
        let unlimited = Throttle::new(f64::MAX);
        assert_eq!(unlimited.account(u64::MAX / 2), None);
        let slow = Throttle::new(1000.0);
        std::thread::sleep(CHECK_PERIOD);
        // Idle time is no credit: 10 KB at once at 1 KB/s is ~10 s early.
        let sleep = slow.account(10_000).unwrap();
        assert!(
            sleep > Duration::from_secs(9) && sleep <= Duration::from_secs(10),
            "{sleep:?}"
        );
        // Within the rate: no sleep.
        let fast = Throttle::new(1_000_000.0);
        assert!(fast.account(10).is_none_or(|d| d < Duration::from_millis(1)));
    }
}
