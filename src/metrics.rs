//! Prometheus metrics: the registry, the broker's counters, and the `/metrics` HTTP endpoint.
//!
//! Request counters are bumped once per request (never per record). Per-partition gauges are
//! not kept up to date on the hot path at all: a collector reads them from the replica
//! manager's atomics when Prometheus scrapes.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tracing::info;

use crate::broker::Broker;
use crate::controller::Controller;
use crate::log::CleanerStats;
use crate::replica::ReplicaManager;

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: IntCounterVec,
    pub(crate) request_seconds: HistogramVec,
    pub(crate) errors: IntCounterVec,
    pub(crate) bytes_in: IntCounter,
    pub(crate) bytes_out: IntCounter,
    pub(crate) messages_in: IntCounter,
    pub(crate) connections_open: IntGauge,
    pub(crate) connections_rejected: IntCounter,
    /// SASL authentications on SASL listeners, by result (success, failure) and mechanism
    /// ("" before the handshake named one).
    pub(crate) sasl_authentications: IntCounterVec,
    /// Requests (or parts of them) the authorizer refused, by API, resource type and operation.
    pub(crate) authorization_denials: IntCounterVec,
    /// acks=all produces waiting for their partitions' ISR (Kafka's produce purgatory).
    pub(crate) produce_purgatory: IntGauge,
    pub(crate) isr_shrinks: IntCounter,
    pub(crate) isr_expands: IntCounter,
    /// Client quota throttling, by quota (producer_byte_rate, consumer_byte_rate): how many
    /// responses were throttled and for how long in all. Not by client id: a client chooses
    /// its id, so it may not grow the label set.
    pub(crate) quota_throttled: IntCounterVec,
    pub(crate) quota_throttle_ms: IntCounterVec,
    pub(crate) replica_fetch_bytes: IntCounter,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only fails for a malformed name or a duplicate registration: a bug, caught by any test.
    r.expect("metric definition is valid")
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let registry = Registry::new_custom(Some("sluice".into()), None).expect("registry");
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let counter = |name: &str, help: &str| {
            let c = must(IntCounter::new(name, help));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let request_seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time from request decoded to response ready, by API",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["api"],
        ));
        must(registry.register(Box::new(request_seconds.clone())));
        let gauge = |name: &str, help: &str| {
            let g = must(IntGauge::new(name, help));
            must(registry.register(Box::new(g.clone())));
            g
        };
        let connections_open = gauge("connections_open", "Open client connections");
        Metrics {
            requests: counter_vec(
                "requests_total",
                "Requests handled, by API and version",
                &["api", "version"],
            ),
            errors: counter_vec(
                "errors_total",
                "Error codes returned in responses, by API and error",
                &["api", "error"],
            ),
            bytes_in: counter("bytes_in_total", "Request bytes received"),
            bytes_out: counter("bytes_out_total", "Response bytes sent"),
            messages_in: counter("messages_in_total", "Records appended to partition logs"),
            connections_rejected: counter(
                "connections_rejected_total",
                "Connections closed at accept (max.connections)",
            ),
            sasl_authentications: counter_vec(
                "sasl_authentications_total",
                "SASL authentications on SASL listeners, by result and mechanism",
                &["result", "mechanism"],
            ),
            authorization_denials: counter_vec(
                "authorization_denials_total",
                "Operations on resources the authorizer refused, by API, resource type and operation",
                &["api", "resource_type", "operation"],
            ),
            produce_purgatory: gauge(
                "produce_purgatory_size",
                "Partitions of acks=all produces waiting for their ISR",
            ),
            isr_shrinks: counter("isr_shrinks_total", "ISR shrinks committed for partitions led here"),
            isr_expands: counter("isr_expands_total", "ISR expansions committed for partitions led here"),
            quota_throttled: counter_vec(
                "quota_throttled_responses_total",
                "Responses throttled by a client quota, by quota",
                &["quota"],
            ),
            quota_throttle_ms: counter_vec(
                "quota_throttle_time_ms_total",
                "Throttle time given to clients over a quota, by quota",
                &["quota"],
            ),
            replica_fetch_bytes: counter(
                "replica_fetch_bytes_total",
                "Record bytes this broker served to its followers' fetches",
            ),
            request_seconds,
            connections_open,
            registry,
        }
    }

    /// Adds the per-partition and replication gauges, read from `replicas` at scrape time.
    pub(crate) fn watch_partitions(&self, replicas: Arc<ReplicaManager>) {
        must(
            self.registry
                .register(Box::new(PartitionCollector::new(replicas.clone()))),
        );
        must(
            self.registry
                .register(Box::new(CleanerCollector::new(replicas.cleaner_stats()))),
        );
        must(self.registry.register(Box::new(ReplicationCollector::new(replicas))));
    }

    /// Adds consumer group lag, read from the group shards this broker coordinates.
    pub(crate) fn watch_groups(&self, broker: std::sync::Weak<Broker>) {
        must(self.registry.register(Box::new(GroupLagCollector::new(broker))));
    }

    pub(crate) fn watch_controller(&self, controller: Arc<Controller>) {
        must(self.registry.register(Box::new(ControllerCollector::new(controller))));
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into memory");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }

    /// Serves `GET /metrics` until the task is dropped.
    pub(crate) async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let addr: SocketAddr = listener.local_addr()?;
        info!(%addr, "metrics endpoint listening");
        let metrics = self.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        m.render(),
                    )
                }
            }),
        );
        axum::serve(listener, app).await
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// What a scrape-time collector declares: the descriptions of the gauges it fills.
fn descs_of<C: Collector>(gauges: &[C]) -> Vec<Desc> {
    gauges.iter().flat_map(|g| g.desc().into_iter().cloned()).collect()
}

/// Per-partition log end offset and size, gathered at scrape time.
#[derive(Debug)]
struct PartitionCollector {
    replicas: Arc<ReplicaManager>,
    descs: Vec<Desc>,
}

impl PartitionCollector {
    fn new(replicas: Arc<ReplicaManager>) -> PartitionCollector {
        let descs = descs_of(&Self::gauges());
        PartitionCollector { replicas, descs }
    }

    fn gauges() -> [IntGaugeVec; 4] {
        let labels = &["topic", "partition"];
        let g = |name: &str, help: &str| must(IntGaugeVec::new(Opts::new(name, help), labels));
        [
            g("log_end_offset", "Next offset to be written, per partition"),
            g("log_start_offset", "First offset still in the log, per partition"),
            g("log_size_bytes", "Bytes on disk in the partition's segments"),
            g("log_segments", "Segments in the partition's log"),
        ]
    }
}

impl Collector for PartitionCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let [end, start, size, segments] = Self::gauges();
        for p in self.replicas.all() {
            let index = p.index.to_string();
            let labels = [p.topic.as_str(), index.as_str()];
            end.with_label_values(&labels).set(p.log_end_offset());
            start.with_label_values(&labels).set(p.log_start_offset());
            size.with_label_values(&labels).set(p.size_bytes() as i64);
            if let Ok(n) = p.with_log(|log| Ok(log.segment_count())) {
                segments.with_label_values(&labels).set(n as i64);
            }
        }
        [end, start, size, segments].iter().flat_map(|g| g.collect()).collect()
    }
}

/// Replication as this broker sees it, gathered at scrape time: partitions it leads whose
/// ISR is short of their replicas or under min ISR, each follower's lag behind it, and the
/// partitions it follows per leader.
#[derive(Debug)]
struct ReplicationCollector {
    replicas: Arc<ReplicaManager>,
    descs: Vec<Desc>,
}

impl ReplicationCollector {
    fn new(replicas: Arc<ReplicaManager>) -> ReplicationCollector {
        let (counts, lag, followed) = Self::gauges();
        let mut descs = descs_of(&counts);
        descs.extend(descs_of(&[lag, followed]));
        ReplicationCollector { replicas, descs }
    }

    fn gauges() -> ([IntGauge; 3], IntGaugeVec, IntGaugeVec) {
        let g = |name: &str, help: &str| must(IntGauge::new(name, help));
        (
            [
                g("leader_partitions", "Partitions this broker leads"),
                g(
                    "under_replicated_partitions",
                    "Partitions led here whose ISR is smaller than their replica set",
                ),
                g(
                    "under_min_isr_partitions",
                    "Partitions led here whose ISR is under min.insync.replicas (acks=all refused, high watermark held)",
                ),
            ],
            must(IntGaugeVec::new(
                Opts::new(
                    "follower_lag_records",
                    "How many offsets a follower is behind this leader's log end (-1: not heard from in this epoch)",
                ),
                &["topic", "partition", "replica"],
            )),
            must(IntGaugeVec::new(
                Opts::new("replica_fetcher_partitions", "Partitions this broker follows, per leader"),
                &["leader"],
            )),
        )
    }
}

impl Collector for ReplicationCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let ([leading, under, under_min], lag, followed) = Self::gauges();
        for p in self.replicas.all().iter().filter(|p| p.is_leader()) {
            leading.inc();
            let (isr, replicas) = p.isr_and_replicas();
            if isr.len() < replicas.len() {
                under.inc();
            }
            if p.under_min_isr() {
                under_min.inc();
            }
            let index = p.index.to_string();
            for (replica, behind) in p.follower_lags() {
                let replica = replica.to_string();
                lag.with_label_values(&[p.topic.as_str(), index.as_str(), replica.as_str()])
                    .set(behind.unwrap_or(-1));
            }
        }
        for (leader, n) in self.replicas.followed() {
            followed.with_label_values(&[leader.to_string().as_str()]).add(n as i64);
        }
        let mut out: Vec<MetricFamily> = [leading, under, under_min].iter().flat_map(|g| g.collect()).collect();
        out.extend(lag.collect());
        out.extend(followed.collect());
        out
    }
}

/// The log cleaner's work, gathered at scrape time from its counters: cleanings done, bytes
/// read and written (their rate is the cleaning throughput), the last cleaning's throughput,
/// how long since a cleaner thread last looked for work, each compacted log's dirty ratio.
#[derive(Debug)]
struct CleanerCollector {
    stats: Arc<CleanerStats>,
    descs: Vec<Desc>,
}

impl CleanerCollector {
    fn new(stats: Arc<CleanerStats>) -> CleanerCollector {
        let (counters, gauges, ratio) = Self::metrics();
        let mut descs = descs_of(&counters);
        descs.extend(descs_of(&gauges));
        descs.extend(descs_of(&[ratio]));
        CleanerCollector { stats, descs }
    }

    fn metrics() -> ([IntCounter; 3], [Gauge; 3], GaugeVec) {
        let c = |name: &str, help: &str| must(IntCounter::new(name, help));
        let g = |name: &str, help: &str| must(Gauge::new(name, help));
        (
            [
                c("log_cleaner_runs_total", "Cleanings of a compacted log completed"),
                c(
                    "log_cleaner_bytes_read_total",
                    "Bytes of log the cleaner read (its rate: bytes cleaned per second)",
                ),
                c("log_cleaner_bytes_written_total", "Bytes of cleaned segments written"),
            ],
            [
                g(
                    "log_cleaner_last_run_bytes_per_second",
                    "Bytes of log the last cleaning read per second",
                ),
                g(
                    "log_cleaner_seconds_since_last_run",
                    "Seconds since a cleaner thread last looked for a log to clean (-1: never)",
                ),
                g(
                    "log_cleaner_uncleanable_partitions",
                    "Partitions whose cleaning failed, left alone until a restart",
                ),
            ],
            must(GaugeVec::new(
                Opts::new(
                    "log_cleaner_dirty_ratio",
                    "Share of a compacted log's bytes not yet cleaned and cleanable now",
                ),
                &["topic", "partition"],
            )),
        )
    }
}

impl Collector for CleanerCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let ([runs, read, written], [rate, since, uncleanable], ratio) = Self::metrics();
        let s = &self.stats;
        runs.inc_by(s.runs.load(Ordering::Relaxed));
        read.inc_by(s.bytes_read.load(Ordering::Relaxed));
        written.inc_by(s.bytes_written.load(Ordering::Relaxed));
        rate.set(s.last_bytes_per_second());
        since.set(s.seconds_since_last_run());
        uncleanable.set(s.uncleanable.load(Ordering::Relaxed) as f64);
        for ((topic, partition), r) in s.dirty_ratios() {
            ratio
                .with_label_values(&[topic.as_str(), partition.to_string().as_str()])
                .set(r);
        }
        let mut out: Vec<MetricFamily> = [runs, read, written].iter().flat_map(|c| c.collect()).collect();
        out.extend([rate, since, uncleanable].iter().flat_map(|g| g.collect()));
        out.extend(ratio.collect());
        out
    }
}

/// Each consumer group's lag per partition: the partition's high watermark minus the group's
/// committed offset, for the groups this broker coordinates and the partitions it holds a
/// replica of (a partition held elsewhere is that broker's to report).
#[derive(Debug)]
struct GroupLagCollector {
    broker: std::sync::Weak<Broker>,
    descs: Vec<Desc>,
}

impl GroupLagCollector {
    fn new(broker: std::sync::Weak<Broker>) -> GroupLagCollector {
        let descs = descs_of(&[Self::gauge()]);
        GroupLagCollector { broker, descs }
    }

    fn gauge() -> IntGaugeVec {
        must(IntGaugeVec::new(
            Opts::new(
                "consumer_group_lag",
                "Offsets between a group's committed offset and the partition's high watermark",
            ),
            &["group", "topic", "partition"],
        ))
    }
}

impl Collector for GroupLagCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let lag = Self::gauge();
        let Some(broker) = self.broker.upgrade() else {
            return Vec::new();
        };
        for shard in broker.groups.shards() {
            let committed: Vec<(String, String, i32, i64)> = shard
                .query(|s| {
                    s.groups
                        .iter()
                        .flat_map(|(g, group)| {
                            group.offsets.iter().flat_map(move |(t, parts)| {
                                parts.iter().map(move |(p, o)| (g.clone(), t.clone(), *p, o.offset))
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (group, topic, partition, offset) in committed {
                if let Some(p) = broker.replicas.get(&topic, partition) {
                    let index = partition.to_string();
                    lag.with_label_values(&[group.as_str(), topic.as_str(), index.as_str()])
                        .set((p.high_watermark() - offset).max(0));
                }
            }
        }
        lag.collect()
    }
}

/// The metadata quorum as this node sees it, gathered at scrape time.
#[derive(Debug)]
struct ControllerCollector {
    controller: Arc<Controller>,
    descs: Vec<Desc>,
}

impl ControllerCollector {
    fn new(controller: Arc<Controller>) -> ControllerCollector {
        let descs = descs_of(&Self::gauges());
        ControllerCollector { controller, descs }
    }

    fn gauges() -> [IntGauge; 7] {
        let g = |name: &str, help: &str| must(IntGauge::new(name, help));
        [
            g(
                "controller_active",
                "1 on the active controller (the Raft leader), else 0",
            ),
            g(
                "controller_raft_term",
                "The metadata quorum's current Raft term (leader epoch)",
            ),
            g(
                "metadata_last_log_index",
                "Last entry in this node's copy of the metadata log",
            ),
            g(
                "metadata_applied_index",
                "Last metadata log entry this node has applied",
            ),
            g("brokers_live", "Registered, unfenced brokers in this node's metadata"),
            g("brokers_fenced", "Registered, fenced brokers in this node's metadata"),
            g(
                "offline_partitions",
                "Partitions with no leader (reported by the active controller; 0 on other nodes)",
            ),
        ]
    }
}

impl Collector for ControllerCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = self.controller.status();
        let gauges = Self::gauges();
        let values = [
            i64::from(s.active),
            s.term as i64,
            s.last_log_index as i64,
            s.applied_index as i64,
            s.live_brokers as i64,
            s.fenced_brokers as i64,
            s.offline_partitions as i64,
        ];
        for (g, v) in gauges.iter().zip(values) {
            g.set(v);
        }
        gauges.iter().flat_map(|g| g.collect()).collect()
    }
}
