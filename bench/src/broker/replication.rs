//! Replication as a Sluice cluster reports it while a workload runs: every node's Prometheus
//! endpoint is read every [`SAMPLE_EVERY`] in a thread, and each leader's
//! `sluice_follower_lag_records` (how many offsets each follower of each partition it leads is
//! behind its log end), its under-replicated and under-min-ISR partition counts and its ISR
//! shrink/expand counters are summarised for the workload. Reads metrics only; Kafka has no
//! such endpoint (its metrics are JMX), so its clusters have no such figures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::Serialize;

use super::metrics::{scrape, values};

/// How often every node is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Bound on the samples one workload keeps (an hour at the rate above).
const SAMPLES_MAX: usize = 14_400;

/// What the nodes reported over one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Replication {
    /// Samples in which every node answered.
    pub samples: usize,
    /// Median over the samples of the worst follower lag (records) in each.
    pub lag_records_p50: f64,
    /// 99th percentile of the same.
    pub lag_records_p99: f64,
    /// The worst follower lag (records) seen.
    pub lag_records_max: f64,
    /// Mean lag over every follower of every partition and every sample.
    pub lag_records_mean: f64,
    /// Samples in which some follower had not fetched in the leader's epoch yet (lag -1).
    pub samples_with_unheard_follower: usize,
    /// The most partitions under-replicated (ISR smaller than the replicas) at one sample,
    /// summed over the leaders.
    pub under_replicated_max: f64,
    /// The same for partitions whose ISR was under min.insync.replicas.
    pub under_min_isr_max: f64,
    /// ISR shrinks and expands the leaders committed during the workload.
    pub isr_shrinks: f64,
    pub isr_expands: f64,
}

/// One reading of every node.
#[derive(Debug, Clone, Default)]
struct Sample {
    lags: Vec<f64>,
    under_replicated: f64,
    under_min_isr: f64,
    shrinks: f64,
    expands: f64,
}

impl Sample {
    /// Reads every node, or None if one did not answer.
    fn take(endpoints: &[String]) -> Option<Sample> {
        let mut s = Sample::default();
        for endpoint in endpoints {
            let body = scrape(endpoint)?;
            s.lags.extend(values(&body, "sluice_follower_lag_records", None));
            s.under_replicated += values(&body, "sluice_under_replicated_partitions", None)
                .iter()
                .sum::<f64>();
            s.under_min_isr += values(&body, "sluice_under_min_isr_partitions", None)
                .iter()
                .sum::<f64>();
            s.shrinks += values(&body, "sluice_isr_shrinks_total", None).iter().sum::<f64>();
            s.expands += values(&body, "sluice_isr_expands_total", None).iter().sum::<f64>();
        }
        Some(s)
    }
}

/// Samples the nodes in a thread from `start` until `finish`.
#[derive(Debug)]
pub struct ReplicationWatch {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    first: Option<Sample>,
    endpoints: Vec<String>,
    handle: Option<JoinHandle<()>>,
}

impl ReplicationWatch {
    /// Starts sampling `endpoints` (every node's /metrics).
    pub fn start(endpoints: &[String]) -> ReplicationWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let first = Sample::take(endpoints);
        let handle = {
            let (stop, samples, endpoints) = (stop.clone(), samples.clone(), endpoints.to_vec());
            thread::Builder::new()
                .name("replication-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(s) = Sample::take(&endpoints) {
                            let mut all = samples.lock().expect("samples");
                            if all.len() < SAMPLES_MAX {
                                all.push(s);
                            }
                        }
                        thread::sleep(SAMPLE_EVERY);
                    }
                })
                .ok()
        };
        ReplicationWatch {
            stop,
            samples,
            first,
            endpoints: endpoints.to_vec(),
            handle,
        }
    }

    /// Stops sampling and summarises (None without a single complete sample).
    pub fn finish(mut self) -> Option<Replication> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let last = Sample::take(&self.endpoints);
        let samples = std::mem::take(&mut *self.samples.lock().expect("samples"));
        summarise(&samples, self.first.as_ref(), last.as_ref())
    }
}

impl Drop for ReplicationWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn summarise(samples: &[Sample], first: Option<&Sample>, last: Option<&Sample>) -> Option<Replication> {
    if samples.is_empty() {
        return None;
    }
    let mut worst: Vec<f64> = samples
        .iter()
        .map(|s| s.lags.iter().copied().filter(|l| *l >= 0.0).fold(0.0, f64::max))
        .collect();
    worst.sort_by(f64::total_cmp);
    let heard: Vec<f64> = samples
        .iter()
        .flat_map(|s| s.lags.iter().copied().filter(|l| *l >= 0.0))
        .collect();
    let at = |q: f64| worst[((worst.len() - 1) as f64 * q).round() as usize];
    let counter = |f: fn(&Sample) -> f64| match (first, last) {
        (Some(a), Some(b)) => f(b) - f(a),
        _ => 0.0,
    };
    Some(Replication {
        samples: samples.len(),
        lag_records_p50: at(0.5),
        lag_records_p99: at(0.99),
        lag_records_max: at(1.0),
        lag_records_mean: if heard.is_empty() {
            0.0
        } else {
            heard.iter().sum::<f64>() / heard.len() as f64
        },
        samples_with_unheard_follower: samples.iter().filter(|s| s.lags.iter().any(|l| *l < 0.0)).count(),
        under_replicated_max: samples.iter().map(|s| s.under_replicated).fold(0.0, f64::max),
        under_min_isr_max: samples.iter().map(|s| s.under_min_isr).fold(0.0, f64::max),
        isr_shrinks: counter(|s| s.shrinks),
        isr_expands: counter(|s| s.expands),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(lags: &[f64], under: f64, shrinks: f64) -> Sample {
        Sample {
            lags: lags.to_vec(),
            under_replicated: under,
            under_min_isr: 0.0,
            shrinks,
            expands: 0.0,
        }
    }

    #[test]
    fn summary_takes_the_worst_follower_of_each_sample_and_leaves_unheard_ones_out() {
        let samples = [
            sample(&[1.0, 3.0], 0.0, 0.0),
            sample(&[-1.0, 10.0], 1.0, 0.0),
            sample(&[0.0, 0.0], 0.0, 0.0),
        ];
        let first = sample(&[], 0.0, 2.0);
        let last = sample(&[], 0.0, 3.0);
        let r = summarise(&samples, Some(&first), Some(&last)).unwrap();
        assert_eq!(r.lag_records_p50, 3.0);
        assert_eq!(r.lag_records_max, 10.0);
        assert_eq!(r.lag_records_mean, 14.0 / 5.0);
        assert_eq!(r.samples_with_unheard_follower, 1);
        assert_eq!(r.under_replicated_max, 1.0);
        assert_eq!(r.isr_shrinks, 1.0);
    }

    #[test]
    fn no_samples_no_summary() {
        assert!(summarise(&[], None, None).is_none());
    }
}
