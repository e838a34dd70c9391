//! Command line: where the broker is (or which binary to start), how long each workload runs,
//! which workloads run, and where the results go. Parsing only; nothing here starts anything.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The workloads, in the order they run.
pub const ALL_WORKLOADS: &[&str] = &["ceilings", "produce", "consume", "latency", "connections"];

#[derive(Debug, Clone, Parser)]
#[command(
    name = "sluice-bench",
    about = "Kafka load generator (librdkafka) and benchmark report for Sluice or any Kafka broker",
    // A later flag wins, so `make bench BENCH_ARGS=...` can override what the Makefile passes.
    args_override_self = true
)]
pub struct Args {
    /// Broker to benchmark, host:port. Without it, `--sluice-bin` is started on a temp data dir.
    #[arg(long)]
    pub bootstrap: Option<String>,

    /// The sluice binary to start when no `--bootstrap` is given.
    #[arg(long, default_value = "../target/release/sluice")]
    pub sluice_bin: PathBuf,

    /// Pid of an already running broker (with `--bootstrap`), to report its CPU and RSS.
    #[arg(long)]
    pub broker_pid: Option<u32>,

    /// Prometheus endpoint of an already running Sluice (host:port), to report open connections.
    #[arg(long)]
    pub metrics: Option<String>,

    /// Seconds each timed workload runs (produce runs, latency, connections).
    #[arg(long, default_value_t = 8)]
    pub duration_secs: u64,

    /// A short smoke run: 2 s per workload, fewer variants, small ceilings.
    #[arg(long)]
    pub quick: bool,

    /// Comma-separated subset of: ceilings, produce, consume, latency, connections.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ceilings,produce,consume,latency,connections"
    )]
    pub workloads: Vec<String>,

    /// Only the produce variants whose name contains this, e.g. "1KB acks=1 none unkeyed".
    #[arg(long)]
    pub variants: Option<String>,

    /// Seconds the latency workload measures (after 1 s of warm-up). Over a minute by default,
    /// so periodic broker work (flushes, checkpoints; Kafka's intervals are 60 s) falls inside.
    #[arg(long, default_value_t = 70)]
    pub latency_secs: u64,

    /// End-to-end latency workload rate in records/s; default 25% of the 1 KB acks=1 maximum
    /// (its producer and consumer together cost the machine about twice what the producer alone
    /// did, so 50% would saturate two shared cores and measure the generator falling behind).
    #[arg(long)]
    pub latency_rate: Option<u64>,

    /// Idle client connections in the connections workload.
    #[arg(long, default_value_t = 200)]
    pub idle_connections: usize,

    /// Busy producers in the connections workload.
    #[arg(long, default_value_t = 10)]
    pub busy_producers: usize,

    /// Partitions of every benchmark topic.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,

    /// Size of the sequential fdatasync write ceiling, MiB.
    #[arg(long, default_value_t = 2048)]
    pub disk_mib: u64,

    /// Directory for the disk ceiling's scratch file and the started broker's data.
    #[arg(long, default_value = "/tmp")]
    pub scratch_dir: PathBuf,

    /// Where results.json, results.md and latency.png are written.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,

    /// Keep the benchmark topics (and the started broker's data dir) afterwards.
    #[arg(long)]
    pub keep: bool,
}

impl Args {
    pub fn wants(&self, workload: &str) -> bool {
        self.workloads.iter().any(|w| w == workload)
    }

    /// Length of one timed workload run.
    pub fn run_time(&self) -> Duration {
        if self.quick {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(self.duration_secs.max(1))
        }
    }

    /// Length of the latency workload's measured part.
    pub fn latency_time(&self) -> Duration {
        if self.quick {
            self.run_time()
        } else {
            Duration::from_secs(self.latency_secs.max(1))
        }
    }

    pub fn disk_bytes(&self) -> u64 {
        let mib = if self.quick {
            self.disk_mib.min(256)
        } else {
            self.disk_mib
        };
        mib.max(1) << 20
    }

    /// Rejects names that are not workloads, so a typo does not silently run nothing.
    pub fn validate(&self) -> anyhow::Result<()> {
        for w in &self.workloads {
            anyhow::ensure!(
                ALL_WORKLOADS.contains(&w.as_str()),
                "unknown workload {w:?}; known: {}",
                ALL_WORKLOADS.join(",")
            );
        }
        anyhow::ensure!(self.partitions >= 1, "--partitions must be at least 1");
        anyhow::ensure!(
            self.broker_pid.is_none() || self.bootstrap.is_some(),
            "--broker-pid goes with --bootstrap"
        );
        Ok(())
    }
}
