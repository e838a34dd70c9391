//! What every workload shares: the librdkafka client configs, topic creation and deletion
//! through the AdminClient, the payload and key pools, the measurement bracket (broker CPU and
//! RSS, generator CPU, the rest of the machine's CPU) and latency histograms. Workloads talk to
//! the broker only through librdkafka or Kafka's own tools; they never encode Kafka requests
//! themselves.

pub mod cleaner;
pub mod connections;
pub mod consume;
pub mod disturbance;
pub mod latency;
pub mod perf_test;
pub mod produce;
pub mod startup;
pub mod transactions;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use crate::broker::replication::{Replication, ReplicationWatch};
use crate::broker::{metrics, min_insync_replicas, procfs, ProcWatch, Usage};
use crate::cli::Args;
use crate::report::WorkloadResult;

/// Bytes in a "MB" of the MB/s columns (Kafka's perf tools use 2^20 as well).
pub const MB: f64 = 1024.0 * 1024.0;
/// How long topic creation may take to show up in metadata with a leader for every partition.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on waiting for a cluster's partitions to be fully replicated before a measured run.
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the group coordinator's first lookup (which creates `__consumer_offsets`).
const COORDINATOR_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on draining a producer's queue after the timed part of a run.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Different payloads cycled through, so batches are not one record repeated.
const PAYLOAD_POOL: usize = 1024;
/// Distinct keys of the keyed variants.
const KEY_POOL: usize = 10_000;
/// Highest latency a histogram records (60 s, in microseconds); larger values are clamped.
const HIST_MAX_US: u64 = 60_000_000;

/// Where the workloads run and what they measure with.
pub struct Ctx<'a> {
    pub args: &'a Args,
    pub bootstrap: String,
    pub watch: Option<&'a ProcWatch>,
    /// Every node's Prometheus endpoint (Sluice only; none for Kafka).
    pub metrics: Vec<String>,
    /// Replicas of every benchmark topic: one per node of the broker.
    pub replication_factor: usize,
    /// The broker's client port when it runs on this machine: its connections are counted there.
    pub local_port: Option<u16>,
    pub run_id: String,
    admin: AdminClient<DefaultClientContext>,
    runtime: tokio::runtime::Runtime,
    created: Mutex<Vec<String>>,
    topics_created: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("bootstrap", &self.bootstrap)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl<'a> Ctx<'a> {
    pub fn new(
        args: &'a Args,
        bootstrap: String,
        watch: Option<&'a ProcWatch>,
        metrics: Vec<String>,
        local_port: Option<u16>,
        replication_factor: usize,
    ) -> Result<Ctx<'a>> {
        let admin: AdminClient<DefaultClientContext> = base_config(&bootstrap)
            .create()
            .context("create the rdkafka admin client")?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let run_id = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs()
        );
        Ok(Ctx {
            args,
            bootstrap,
            watch,
            metrics,
            replication_factor,
            local_port,
            run_id,
            admin,
            runtime,
            created: Mutex::new(Vec::new()),
            topics_created: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// Creates `bench-<run>-<n>-<name>` (n counts the topics created, so a rerun never meets
    /// its discarded attempt's topic still being deleted) with `partitions` partitions, one
    /// replica per node (RF 1 on one node; on a cluster, min.insync.replicas=2), and waits until
    /// every partition has a leader in the metadata a client sees.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<String> {
        self.create_topic_with(name, partitions, &[])
    }

    /// `create_topic` with topic configs of its own.
    pub fn create_topic_with(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) -> Result<String> {
        let n = self.topics_created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let topic = format!("bench-{}-{n}-{name}", self.run_id);
        let min_isr = min_insync_replicas(self.replication_factor).to_string();
        let mut new = NewTopic::new(
            &topic,
            partitions,
            TopicReplication::Fixed(self.replication_factor as i32),
        );
        if self.replication_factor > 1 {
            new = new.set("min.insync.replicas", &min_isr);
        }
        for (k, v) in configs {
            new = new.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self.runtime.block_on(self.admin.create_topics([&new], &opts))?;
        for r in results {
            if let Err((t, code)) = r {
                bail!("create topic {t}: {code}");
            }
        }
        self.created.lock().expect("topics").push(topic.clone());
        self.wait_topic_ready(&topic, partitions)?;
        Ok(topic)
    }

    fn wait_topic_ready(&self, topic: &str, partitions: i32) -> Result<()> {
        let consumer: BaseConsumer = base_config(&self.bootstrap).create()?;
        let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
                let ready = md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                });
                if ready {
                    return Ok(());
                }
            }
            // Short: the start-up probe's time to a first record includes this wait.
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("topic {topic} not ready (all {partitions} partitions led) after {TOPIC_READY_TIMEOUT:?}")
    }

    /// Sets a topic's configs (AlterConfigs replaces them all: `configs` must list every one the
    /// topic is to keep).
    pub fn alter_topic_configs(&self, topic: &str, configs: &[(&str, &str)]) -> Result<()> {
        let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
        for (k, v) in configs {
            alter = alter.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for r in self.runtime.block_on(self.admin.alter_configs([&alter], &opts))? {
            if let Err((t, code)) = r {
                bail!("alter configs of {t:?}: {code}");
            }
        }
        Ok(())
    }

    /// Deletes benchmark topics (errors are reported, not fatal: benchmarks only report).
    pub fn delete_topics(&self, topics: &[String]) {
        if topics.is_empty() || self.args.keep {
            return;
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        match self.runtime.block_on(self.admin.delete_topics(&names, &opts)) {
            Ok(results) => {
                for r in results {
                    if let Err((t, code)) = r {
                        eprintln!("  delete topic {t}: {code}");
                    }
                }
            }
            Err(e) => eprintln!("  delete topics: {e}"),
        }
        self.created.lock().expect("topics").retain(|t| !topics.contains(t));
    }

    /// Deletes every topic this run created and has not deleted yet.
    pub fn delete_all_topics(&self) {
        let left = self.created.lock().expect("topics").clone();
        self.delete_topics(&left);
    }

    /// Waits (bounded) for a quiet machine, then runs `f` between two readings of the broker's
    /// CPU/RSS, the generator's CPU (this process's and that of children it ran to their end:
    /// the Java tools) and the machine's; on a Sluice cluster, samples its replication
    /// meanwhile.
    pub fn measure<T>(&self, f: impl FnOnce() -> T) -> (T, Bracket) {
        let pids = self.watch.map(ProcWatch::pids);
        self.wait_replicated();
        disturbance::wait_quiet(pids, disturbance::QUIET_WAIT);
        let replication = (self.metrics.len() > 1).then(|| ReplicationWatch::start(&self.metrics));
        let mark = self.watch.map(ProcWatch::begin);
        let before = disturbance::Sample::take(pids);
        let out = f();
        let after = disturbance::Sample::take(pids);
        let broker = self.watch.zip(mark).map(|(w, m)| w.end(m));
        (
            out,
            Bracket {
                broker,
                gen_cpu_secs: after.generator_since(&before),
                other_cores: after.other_cores_since(&before),
                replication: replication.and_then(ReplicationWatch::finish),
            },
        )
    }

    /// On a Sluice cluster, waits (bounded) until no partition is under-replicated, so a run
    /// starts with every follower in the ISR (a new topic's followers join after their first
    /// fetch) rather than measuring the catch-up of a previous run.
    fn wait_replicated(&self) {
        if self.metrics.len() < 2 {
            return;
        }
        let deadline = Instant::now() + REPLICATED_TIMEOUT;
        while Instant::now() < deadline {
            if self.broker_metric("sluice_under_replicated_partitions", None) == Some(0.0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("   partitions still under-replicated after {REPLICATED_TIMEOUT:?}; measuring anyway");
    }

    /// Looks up a group coordinator once, which creates `__consumer_offsets` (50 partitions,
    /// one replica per node): on a cluster that is not to happen inside the first measured run
    /// with a consumer. The offsets asked for do not exist; only the lookup matters.
    pub fn warm_group_coordinator(&self) -> Result<()> {
        let consumer: BaseConsumer = consumer_config(&self.bootstrap).create()?;
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition(&format!("bench-{}-warm-up", self.run_id), 0);
        let deadline = Instant::now() + COORDINATOR_TIMEOUT;
        loop {
            match consumer.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => bail!("find the group coordinator: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Runs a workload again while other work disturbs it (`--retries`); see `disturbance`.
    pub fn least_disturbed<T>(
        &self,
        run: impl FnMut() -> Result<T>,
        cores: impl Fn(&T) -> Option<f64>,
        discard: impl FnMut(T),
    ) -> Result<(T, Vec<f64>)> {
        let pids = self.watch.map(ProcWatch::pids);
        disturbance::least_disturbed(self.args.retries, pids, run, cores, discard)
    }

    /// A metric of the broker's Prometheus endpoint, summed over a cluster's nodes (Sluice
    /// only; None without one).
    pub fn broker_metric(&self, name: &str, labels_with: Option<&str>) -> Option<f64> {
        if self.metrics.is_empty() {
            return None;
        }
        self.metrics
            .iter()
            .map(|m| metrics::scrape_metric(m, name, labels_with))
            .sum()
    }

    pub fn broker_bytes_in(&self) -> Option<f64> {
        self.broker_metric("sluice_bytes_in_total", None)
    }

    /// Client connections the broker has open, counted by the kernel (any broker on this machine).
    pub fn broker_connections(&self) -> Option<f64> {
        procfs::established_connections(self.local_port?).map(|n| n as f64)
    }

    /// (Fetch requests, response bytes) so far: how many fetches a consume run took.
    pub fn broker_fetch_counters(&self) -> Option<(f64, f64)> {
        Some((
            self.broker_metric("sluice_requests_total", Some("api=\"Fetch\""))?,
            self.broker_metric("sluice_bytes_out_total", None)?,
        ))
    }

    /// A result with the bracket's figures filled in; the workload adds the rest.
    pub fn result(&self, name: &str, kind: &'static str, bracket: &Bracket) -> WorkloadResult {
        WorkloadResult {
            name: name.to_string(),
            kind,
            generator: "librdkafka",
            params: BTreeMap::new(),
            records: 0,
            bytes: 0,
            errors: 0,
            elapsed_secs: 0.0,
            records_per_sec: 0.0,
            mb_per_sec: 0.0,
            latency_kind: None,
            latency: None,
            broker: bracket.broker,
            broker_cpu_us_per_record: None,
            client_cpu_secs: bracket.gen_cpu_secs,
            other_cores: bracket.other_cores,
            notes: Vec::new(),
            replication: bracket.replication.clone(),
            curve: None,
            max_ms_by_second: None,
        }
    }
}

/// What the machine did during one measured run.
#[derive(Debug, Clone)]
pub struct Bracket {
    /// The broker's CPU and memory (None for an external broker without its pid).
    pub broker: Option<Usage>,
    /// CPU the load generator used.
    pub gen_cpu_secs: f64,
    /// Cores anything else on the machine used on average meanwhile (other work sharing it).
    pub other_cores: Option<f64>,
    /// Follower lag and ISR changes of a Sluice cluster (None on one node, or for Kafka).
    pub replication: Option<Replication>,
}

/// The settings every client gets: the bootstrap address and nothing broker-specific.
pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice-bench")
        // The broker is on loopback: one address family, no DNS surprises.
        .set("broker.address.family", "v4");
    c
}

/// A producer config for throughput: no idempotence (plain acks semantics), the given acks,
/// codec and linger.
pub fn producer_config(bootstrap: &str, acks: &str, compression: &str, linger_ms: u32) -> ClientConfig {
    let mut c = base_config(bootstrap);
    c.set("enable.idempotence", "false")
        .set("acks", acks)
        .set("compression.type", compression)
        .set("linger.ms", linger_ms.to_string())
        .set("message.timeout.ms", "60000");
    c
}

/// A consumer config for `assign()`-based reading, no commits. librdkafka's `assign()` needs
/// a group.id (it refuses with "Unknown group" without one), though no group is joined.
pub fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut c = base_config(bootstrap);
    c.set("group.id", "sluice-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        // librdkafka pauses a partition's fetching for this long whenever its local queue is
        // over queued.min.messages (100 000); the 1 s default leaves a fast reader idle.
        .set("fetch.queue.backoff.ms", "10");
    c
}

/// Deterministic payloads of `size` bytes: words from a fixed random dictionary, so lz4 finds
/// matches as it would in text or JSON (random bytes would not compress at all).
pub fn payload_pool(size: usize) -> Vec<Vec<u8>> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let words: Vec<Vec<u8>> = (0..512)
        .map(|_| {
            let len = 3 + (rng.next() % 8) as usize;
            (0..len).map(|_| b'a' + (rng.next() % 26) as u8).collect()
        })
        .collect();
    (0..PAYLOAD_POOL)
        .map(|_| {
            let mut p = Vec::with_capacity(size + 16);
            while p.len() < size {
                p.extend_from_slice(&words[(rng.next() % words.len() as u64) as usize]);
                p.push(b' ');
            }
            p.truncate(size);
            p
        })
        .collect()
}

pub fn key_pool() -> Vec<Vec<u8>> {
    (0..KEY_POOL).map(|i| format!("key-{i:05}").into_bytes()).collect()
}

#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("histogram bounds")
}

pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(1, HIST_MAX_US));
}

/// Counts deliveries and records produce→ack latency (microseconds since `epoch`, carried as
/// the delivery opaque so no allocation is made per record).
#[derive(Debug)]
pub struct AckContext {
    pub epoch: Instant,
    pub inner: Mutex<AckStats>,
}

#[derive(Debug)]
pub struct AckStats {
    pub acked: u64,
    pub acked_bytes: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub hist: Histogram<u64>,
    /// Records sent before this (µs since epoch) are warm-up: counted, not in the histogram.
    pub record_from_us: u64,
}

impl AckContext {
    pub fn new(epoch: Instant) -> AckContext {
        AckContext {
            epoch,
            inner: Mutex::new(AckStats {
                acked: 0,
                acked_bytes: 0,
                errors: 0,
                first_error: None,
                hist: new_histogram(),
                record_from_us: 0,
            }),
        }
    }

    /// The stats so far, replaced by empty ones.
    pub fn take_stats(&self) -> AckStats {
        let fresh = AckStats {
            acked: 0,
            acked_bytes: 0,
            errors: 0,
            first_error: None,
            hist: new_histogram(),
            record_from_us: 0,
        };
        std::mem::replace(&mut *self.inner.lock().expect("ack stats"), fresh)
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        use rdkafka::message::Message;
        let now = self.now_us();
        let mut s = self.inner.lock().expect("ack stats");
        match result {
            Ok(m) => {
                s.acked += 1;
                s.acked_bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
                if sent_us as u64 >= s.record_from_us {
                    record_us(&mut s.hist, now.saturating_sub(sent_us as u64));
                }
            }
            Err((e, _)) => {
                s.errors += 1;
                s.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}
