//! The results of a run and their renderings: a Markdown report (the comparison table, then one
//! detail table per broker), a JSON file with the same figures, and two latency plots. Pure
//! data and formatting: nothing here measures.

pub mod compare;
pub mod details;
pub mod plot;
pub mod table;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::broker::replication::Replication;
use crate::broker::Usage;

/// Everything one `sluice-bench` run measured: the machine's ceilings, then each broker's
/// part of the run in the order they ran, and the comparison built from them.
#[derive(Debug, Serialize)]
pub struct Report {
    pub started_unix_secs: u64,
    pub machine: Machine,
    pub run_secs_per_workload: f64,
    pub quick: bool,
    /// Records/s of the latency workload, the same for every broker.
    pub latency_rate: u64,
    pub ceilings: Vec<Ceiling>,
    pub brokers: Vec<BrokerRun>,
    /// One row per figure, with a value per broker and their ratio (see `compare`).
    pub comparison: Vec<compare::Row>,
    pub wall_secs: f64,
}

/// One broker's part of the run.
#[derive(Debug, Serialize)]
pub struct BrokerRun {
    /// "Sluice", "Kafka 4.4.0", "Sluice, 3 nodes" or "external broker".
    pub name: String,
    /// Nodes the harness started: 1, or a cluster's (topics then have one replica per node).
    pub nodes: usize,
    /// For the ratio column: "Kafka" gives `×Kafka`.
    pub short_name: String,
    pub description: String,
    pub bootstrap: String,
    /// Settings the harness gave the broker (everything else is the broker's default).
    pub settings: Vec<(String, String)>,
    /// Start times of a broker the harness started.
    pub start: Option<StartTimes>,
    pub workloads: Vec<WorkloadResult>,
    /// Broker RSS when the workloads were done (topics deleted, clients gone): all of it, its
    /// own memory (RssAnon) and mapped file pages (RssFile); and its peak (VmHWM).
    pub rss_end_mb: Option<f64>,
    pub rss_anon_end_mb: Option<f64>,
    pub rss_file_end_mb: Option<f64>,
    pub rss_hwm_mb: Option<f64>,
    /// The highest RssAnon (own memory: heap, stacks) sampled during any workload. Unlike the
    /// peak RSS it leaves out mapped file pages, which one broker maps and another does not.
    pub rss_anon_peak_mb: Option<f64>,
    pub cpu_total_secs: Option<f64>,
    /// How long the started broker took to stop cleanly on SIGTERM.
    pub shutdown_secs: Option<f64>,
    /// Workloads that failed, and a broker that exited during the run.
    pub failures: Vec<String>,
}

/// From the broker process's spawn (its storage already prepared) to: its client port
/// accepting a TCP connection, and the first record it acknowledged (a topic created through
/// the AdminClient, then one record produced with acks=1).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StartTimes {
    pub listening_secs: f64,
    pub first_ack_secs: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub mem_total_mb: u64,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_default();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string();
        let mem_total_mb = fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
            mem_total_mb,
        }
    }
}

/// A hardware ceiling measured without the broker.
#[derive(Debug, Serialize)]
pub struct Ceiling {
    pub name: String,
    pub how: String,
    pub mb_per_sec: Option<f64>,
    pub bytes: u64,
    pub secs: f64,
    pub note: Option<String>,
}

/// One workload run.
#[derive(Debug, Serialize)]
pub struct WorkloadResult {
    pub name: String,
    pub kind: &'static str,
    /// The load generator: "librdkafka" or "kafka-perf-test" (Kafka's Java tools).
    pub generator: &'static str,
    pub params: BTreeMap<String, String>,
    /// Records (and key + value bytes) acknowledged or consumed.
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    pub elapsed_secs: f64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    /// "ack" (paced) or "ack@max" (full speed): produce call → delivery report; "e2e": produce
    /// call → consumer poll.
    pub latency_kind: Option<&'static str>,
    pub latency: Option<Percentiles>,
    /// Broker CPU seconds and RSS over this workload (None for an external broker without pid).
    pub broker: Option<Usage>,
    /// Broker CPU per record (µs): comparable across runs even when the generator is the limit.
    pub broker_cpu_us_per_record: Option<f64>,
    /// CPU seconds the load generator itself used (it shares the machine with the broker).
    pub client_cpu_secs: f64,
    /// Cores everything else on the machine used on average meanwhile: other work sharing it,
    /// which disturbs the figures (see `workloads::disturbance`).
    pub other_cores: Option<f64>,
    pub notes: Vec<String>,
    /// Follower lag and ISR changes a Sluice cluster reported during the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
    /// The latency distribution for the plot: (percentile, ms) points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<Vec<(f64, f64)>>,
    /// Worst latency (ms) of the records sent in each second of the run, in order: shows
    /// periodic stalls (a flush, a checkpoint) that percentiles alone hide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ms_by_second: Option<Vec<f64>>,
}

impl WorkloadResult {
    pub fn set_rates(&mut self, records: u64, bytes: u64, elapsed_secs: f64) {
        self.broker_cpu_us_per_record = self
            .broker
            .filter(|_| records > 0)
            .map(|u| u.cpu_secs * 1e6 / records as f64);
        self.records = records;
        self.bytes = bytes;
        self.elapsed_secs = elapsed_secs;
        if elapsed_secs > 0.0 {
            self.records_per_sec = records as f64 / elapsed_secs;
            self.mb_per_sec = bytes as f64 / crate::workloads::MB / elapsed_secs;
        }
    }

    pub fn param(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.params.insert(key.to_string(), value.to_string());
        self
    }

    pub fn set_latency(&mut self, kind: &'static str, h: &Histogram<u64>, with_curve: bool) {
        self.latency_kind = Some(kind);
        self.latency = Percentiles::from_histogram(h);
        if with_curve && !h.is_empty() {
            self.curve = Some(curve(h));
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        })
    }
}

/// Percentile curve points from p0 to the max, denser towards the tail.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    let mut q = 0.0f64;
    // Steps that halve the distance to 100% (like HdrHistogram's percentile output).
    for _ in 0..200 {
        points.push((q * 100.0, h.value_at_quantile(q) as f64 / 1000.0));
        let remaining = 1.0 - q;
        if remaining < 1e-5 || (h.len() as f64) * remaining < 1.0 {
            break;
        }
        q += remaining / 8.0;
    }
    points.push((100.0, h.max() as f64 / 1000.0));
    points
}

/// Writes results.json, results.md, latency.png and latency-timeline.png into `dir`.
pub fn write_all(report: &Report, dir: &Path) -> Result<String> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(report)?;
    fs::write(dir.join("results.json"), json + "\n")?;
    let markdown = table::markdown(report);
    fs::write(dir.join("results.md"), &markdown)?;
    if let Err(e) = plot::latency_png(report, &dir.join("latency.png")) {
        eprintln!("latency plot not written: {e:#}");
    }
    if let Err(e) = plot::timeline_png(report, &dir.join("latency-timeline.png")) {
        eprintln!("latency timeline not written: {e:#}");
    }
    Ok(markdown)
}
