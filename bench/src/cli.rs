//! Command line: which brokers to start (or where the one external broker is), how long each
//! workload runs, which workloads run, and where the results go. Parsing only; nothing here
//! starts anything.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The workloads, in the order they run.
pub const ALL_WORKLOADS: &[&str] = &[
    "ceilings",
    "produce",
    "consume",
    "perf-test",
    "transactions",
    "latency",
    "connections",
    "cleaner",
];
/// The brokers the harness can start, in the order they run by default.
pub const ALL_BROKERS: &[&str] = &["sluice", "kafka"];

#[derive(Debug, Clone, Parser)]
#[command(
    name = "sluice-bench",
    about = "Kafka load generators (librdkafka, Kafka's perf tools) and a Sluice-vs-Kafka benchmark report",
    // A later flag wins, so `make bench BENCH_ARGS=...` can override what the Makefile passes.
    args_override_self = true
)]
pub struct Args {
    /// One already running broker to benchmark, host:port, instead of starting `--brokers`.
    #[arg(long)]
    pub bootstrap: Option<String>,

    /// Brokers to start, one after the other, each on its own temp data dir: sluice, kafka.
    #[arg(long, value_delimiter = ',', default_value = "sluice,kafka")]
    pub brokers: Vec<String>,

    /// After every broker has run as one node, run each again as a cluster of this many nodes
    /// on this machine (each broker and controller), its topics with one replica per node and
    /// min.insync.replicas=2.
    #[arg(long)]
    pub cluster: Option<usize>,

    /// The sluice binary to start.
    #[arg(long, default_value = "../target/release/sluice")]
    pub sluice_bin: PathBuf,

    /// compat-tests/kafka-tool: runs Apache Kafka's broker and perf tools from Maven's jars.
    #[arg(long, default_value = "../compat-tests/kafka-tool")]
    pub kafka_tool: PathBuf,

    /// KAFKA_HEAP_OPTS of the Kafka broker (what kafka-server-start.sh gives it).
    #[arg(long, default_value = "-Xmx1G -Xms1G", allow_hyphen_values = true)]
    pub kafka_heap: String,

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

    /// Comma-separated subset of: ceilings, produce, consume, perf-test, transactions, latency,
    /// connections, cleaner (Sluice only).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ceilings,produce,consume,perf-test,transactions,latency,connections,cleaner"
    )]
    pub workloads: Vec<String>,

    /// Only the produce variants whose name contains one of these (comma-separated), e.g.
    /// "1KB acks=1 none unkeyed,1KB acks=all none unkeyed".
    #[arg(long, value_delimiter = ',')]
    pub variants: Vec<String>,

    /// Seconds the latency workload measures (after 1 s of warm-up). Over a minute by default,
    /// so periodic broker work (flushes, checkpoints; Kafka's intervals are 60 s) falls inside.
    #[arg(long, default_value_t = 70)]
    pub latency_secs: u64,

    /// End-to-end latency workload rate in records/s, the same for every broker (default 50 000).
    #[arg(long)]
    pub latency_rate: Option<u64>,

    /// acks of the latency workload's producer: 1 or all.
    #[arg(long, default_value = "1")]
    pub latency_acks: String,

    /// Times a workload runs again when other work on the machine disturbed it (the least
    /// disturbed attempt is kept).
    #[arg(long, default_value_t = 2)]
    pub retries: u32,

    /// MB of dirty compacted log the cleaner workload writes and has cleaned (64 with --quick).
    #[arg(long, default_value_t = 2048)]
    pub cleaner_mb: u64,

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

    /// Directory for the disk ceiling's scratch file and the started brokers' data.
    #[arg(long, default_value = "/tmp")]
    pub scratch_dir: PathBuf,

    /// Where results.json, results.md and the plots are written.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,

    /// Keep the benchmark topics (and the started brokers' data dirs) afterwards.
    #[arg(long)]
    pub keep: bool,
}

impl Args {
    pub fn wants(&self, workload: &str) -> bool {
        self.workloads.iter().any(|w| w == workload)
    }

    /// Whether a produce variant is chosen by `--variants` (all are without it).
    pub fn wants_variant(&self, name: &str) -> bool {
        self.variants.is_empty() || self.variants.iter().any(|v| name.contains(v.as_str()))
    }

    /// Node counts each started broker runs as, in order: one node, then `--cluster`'s.
    pub fn node_counts(&self) -> Vec<usize> {
        std::iter::once(1).chain(self.cluster.filter(|&n| n > 1)).collect()
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

    pub fn cleaner_mb(&self) -> u64 {
        if self.quick {
            self.cleaner_mb.min(64)
        } else {
            self.cleaner_mb.max(1)
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
        for b in &self.brokers {
            anyhow::ensure!(
                ALL_BROKERS.contains(&b.as_str()),
                "unknown broker {b:?}; known: {}",
                ALL_BROKERS.join(",")
            );
        }
        anyhow::ensure!(!self.brokers.is_empty(), "--brokers names none");
        anyhow::ensure!(self.partitions >= 1, "--partitions must be at least 1");
        anyhow::ensure!(
            matches!(self.latency_acks.as_str(), "1" | "all"),
            "--latency-acks is 1 or all"
        );
        if let Some(n) = self.cluster {
            anyhow::ensure!(
                (1..=crate::broker::NODES_MAX).contains(&n),
                "--cluster takes 1 to {} nodes",
                crate::broker::NODES_MAX
            );
            anyhow::ensure!(
                self.bootstrap.is_none(),
                "--cluster starts brokers: not with --bootstrap"
            );
        }
        anyhow::ensure!(
            self.broker_pid.is_none() || self.bootstrap.is_some(),
            "--broker-pid goes with --bootstrap"
        );
        Ok(())
    }
}
