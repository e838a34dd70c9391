//! Kafka's sampled rate (`SampledStat` + `Rate`, as `ClientQuotaManager` configures them): the
//! last `quota.window.num` windows of `quota.window.size.seconds` each, the rate over them per
//! second, and the throttle time that brings a rate over its quota back to it
//! (`QuotaUtils.throttleTime`). Pure: the caller passes the time.

/// One window's start and the total recorded in it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: u64,
    value: f64,
}

/// A rate over `samples` windows of `window_ms` each.
#[derive(Debug, Clone)]
pub(crate) struct SampledRate {
    samples: Vec<Sample>,
    current: usize,
    num: usize,
    window_ms: u64,
    /// When anything was last recorded: idle rates are dropped.
    pub(crate) last_record_ms: u64,
}

impl SampledRate {
    pub(crate) fn new(num: usize, window_ms: u64, now_ms: u64) -> SampledRate {
        let num = num.max(2);
        SampledRate {
            samples: vec![Sample {
                start_ms: now_ms,
                value: 0.0,
            }],
            current: 0,
            num,
            window_ms: window_ms.max(1),
            last_record_ms: now_ms,
        }
    }

    /// Adds `value` at `now_ms`, in a new window if the current one is over.
    pub(crate) fn record(&mut self, value: f64, now_ms: u64) {
        self.purge(now_ms);
        if now_ms.saturating_sub(self.samples[self.current].start_ms) >= self.window_ms {
            self.current = (self.current + 1) % self.num;
            let fresh = Sample {
                start_ms: now_ms,
                value: 0.0,
            };
            match self.samples.get_mut(self.current) {
                Some(s) => *s = fresh,
                None => self.samples.push(fresh),
            }
        }
        self.samples[self.current].value += value;
        self.last_record_ms = now_ms;
    }

    /// Takes back a value recorded at `now_ms` (Kafka un-records a throttled fetch's size,
    /// since the throttled answer carries no data).
    pub(crate) fn unrecord(&mut self, value: f64, now_ms: u64) {
        self.record(-value, now_ms);
    }

    /// Windows older than all of them together are forgotten (Kafka resets them).
    fn purge(&mut self, now_ms: u64) {
        let expire_ms = self.num as u64 * self.window_ms;
        for s in &mut self.samples {
            if now_ms.saturating_sub(s.start_ms) >= expire_ms {
                *s = Sample {
                    start_ms: now_ms,
                    value: 0.0,
                };
            }
        }
    }

    /// Kafka's `Rate.windowSize`: from the oldest window's start, but never less than
    /// `num - 1` whole windows, so a new client is not judged on its first burst alone.
    fn window_size_ms(&self, now_ms: u64) -> u64 {
        let oldest = self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now_ms);
        let elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / self.window_ms;
        let min_full = self.num as u64 - 1;
        match full < min_full {
            true => elapsed + (min_full - full) * self.window_ms,
            false => elapsed,
        }
    }

    /// The rate per second at `now_ms`.
    pub(crate) fn rate(&mut self, now_ms: u64) -> f64 {
        self.purge(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (self.window_size_ms(now_ms) as f64 / 1000.0)
    }

    /// How long the client must pause for the rate to come back to `quota`; 0 within it.
    pub(crate) fn throttle_ms(&mut self, quota: f64, now_ms: u64) -> u64 {
        let rate = self.rate(now_ms);
        if rate <= quota || quota <= 0.0 {
            return 0;
        }
        ((rate - quota) / quota * self.window_size_ms(now_ms) as f64).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_rate_is_spread_over_num_minus_one_windows() {
        // 11 windows of 1 s: a first burst counts over 10 s, as in Kafka.
        let mut r = SampledRate::new(11, 1000, 0);
        r.record(10_000.0, 0);
        assert_eq!(r.rate(0), 1000.0);
        assert_eq!(r.throttle_ms(1000.0, 0), 0);
        assert_eq!(r.throttle_ms(500.0, 0), 10_000);
    }

    #[test]
    fn a_steady_rate_at_the_quota_is_not_throttled_and_above_it_is() {
        let mut r = SampledRate::new(11, 1000, 0);
        for t in (0..30_000).step_by(100) {
            r.record(100.0, t); // 1000 bytes/s
        }
        let now = 30_000;
        let rate = r.rate(now);
        assert!((rate - 1000.0).abs() < 100.0, "{rate}");
        assert_eq!(r.throttle_ms(2000.0, now), 0);
        // Twice the quota: about as long again as the windows span.
        let t = r.throttle_ms(500.0, now);
        assert!((9_000..=11_000).contains(&t), "{t}");
    }

    #[test]
    fn old_windows_are_forgotten() {
        let mut r = SampledRate::new(3, 1000, 0);
        r.record(9_000.0, 0);
        assert!(r.rate(1_500) > 0.0);
        assert_eq!(r.rate(10_000), 0.0);
        r.record(100.0, 10_000);
        assert_eq!(r.rate(10_000), 50.0);
    }

    #[test]
    fn unrecording_takes_a_value_back() {
        let mut r = SampledRate::new(11, 1000, 0);
        r.record(5_000.0, 0);
        r.unrecord(5_000.0, 10);
        assert_eq!(r.rate(10), 0.0);
    }

    #[test]
    fn windows_are_reused_in_a_ring() {
        let mut r = SampledRate::new(2, 1000, 0);
        for t in 0..10 {
            r.record(1.0, t * 1000);
        }
        assert_eq!(r.samples.len(), 2);
    }
}
