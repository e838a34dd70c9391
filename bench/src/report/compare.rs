//! The comparison between brokers: one row per figure (a workload's rate, a latency
//! percentile, a Sluice cluster's follower lag, a start time, memory), one value per broker in
//! run order, and the ratio of each pair of brokers that ran one after the other: the first
//! to the second, the third to the fourth (`×Kafka` = Sluice ÷ Kafka, as one node, then as
//! clusters). Each row says whether higher or lower is better, so a ratio reads the same way
//! whatever the figure.

use serde::Serialize;

use super::{BrokerRun, Percentiles, WorkloadResult};
use crate::broker::replication::Replication;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Serialize)]
pub struct Row {
    /// The workload's name, or "broker" for start times and memory.
    pub workload: String,
    /// "librdkafka" or "kafka-perf-test"; empty for a broker figure.
    pub generator: String,
    /// What the values are, with their unit: "records/s", "e2e p99 ms", "RSS after the runs MB".
    pub measure: String,
    pub better: Better,
    /// One per broker, in the order the brokers ran.
    pub values: Vec<Option<f64>>,
    /// MB/s beside records/s (None for other measures), per broker.
    pub mb_per_sec: Vec<Option<f64>>,
    /// Broker CPU per record (µs) of the run, per broker: comparable when the generator limits.
    pub broker_us_per_record: Vec<Option<f64>>,
    /// values[0] ÷ values[1], when both brokers have one.
    pub ratio: Option<f64>,
    /// values[2k] ÷ values[2k + 1] for every pair of brokers (the first is `ratio`).
    pub ratios: Vec<Option<f64>>,
}

/// A named figure read from a latency distribution, or from a broker's run.
type Percentile = (&'static str, fn(&Percentiles) -> f64);
type BrokerFigure = (&'static str, fn(&BrokerRun) -> Option<f64>);
type LagFigure = (&'static str, fn(&Replication) -> f64);

/// Latency percentiles compared for each kind of latency row.
const E2E_PERCENTILES: &[Percentile] = &[
    ("p50", |p| p.p50_ms),
    ("p99", |p| p.p99_ms),
    ("p99.9", |p| p.p999_ms),
    ("max", |p| p.max_ms),
];
const ACK_PERCENTILES: &[Percentile] = &[("p50", |p| p.p50_ms), ("p99", |p| p.p99_ms)];

pub fn rows(brokers: &[BrokerRun]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, generator) in workload_keys(brokers) {
        let found: Vec<Option<&WorkloadResult>> = brokers
            .iter()
            .map(|b| b.workloads.iter().find(|w| w.name == name && w.generator == generator))
            .collect();
        let Some(first) = found.iter().flatten().next() else {
            continue;
        };
        if first.kind == "latency" {
            let (label, percentiles) = match first.latency_kind {
                Some("e2e") => ("e2e", E2E_PERCENTILES),
                _ => ("produce→ack", ACK_PERCENTILES),
            };
            for (p, value) in percentiles {
                let values = found
                    .iter()
                    .map(|w| w.and_then(|w| w.latency.as_ref()).map(value))
                    .collect();
                rows.push(row(&name, generator, &format!("{label} {p} ms"), Better::Lower, values));
            }
        } else {
            let values = found.iter().map(|w| w.map(|w| w.records_per_sec)).collect();
            let mut r = row(&name, generator, "records/s", Better::Higher, values);
            r.mb_per_sec = found.iter().map(|w| w.map(|w| w.mb_per_sec)).collect();
            r.broker_us_per_record = found
                .iter()
                .map(|w| w.and_then(|w| w.broker_cpu_us_per_record))
                .collect();
            rows.push(r);
        }
        if first.kind != "latency" || first.latency_kind == Some("e2e") {
            rows.extend(lag_rows(&name, generator, &found));
        }
    }
    let broker_figures: [BrokerFigure; 5] = [
        ("start: spawn → listening, s", |b| b.start.map(|s| s.listening_secs)),
        ("start: spawn → first acknowledged record, s", |b| {
            b.start.and_then(|s| s.first_ack_secs)
        }),
        ("RSS after the runs, MB", |b| b.rss_end_mb),
        ("own memory (RssAnon) after the runs, MB", |b| b.rss_anon_end_mb),
        ("peak own memory (RssAnon) during the runs, MB", |b| b.rss_anon_peak_mb),
    ];
    for (measure, value) in broker_figures {
        let values: Vec<Option<f64>> = brokers.iter().map(value).collect();
        if values.iter().any(Option::is_some) {
            rows.push(row("broker", "", measure, Better::Lower, values));
        }
    }
    rows
}

/// Follower lag rows of a workload that ran on a Sluice cluster (none otherwise).
fn lag_rows(name: &str, generator: &str, found: &[Option<&WorkloadResult>]) -> Vec<Row> {
    let figures: [LagFigure; 2] = [
        ("follower lag p50, records", |r| r.lag_records_p50),
        ("follower lag max, records", |r| r.lag_records_max),
    ];
    if !found.iter().flatten().any(|w| w.replication.is_some()) {
        return Vec::new();
    }
    figures
        .iter()
        .map(|(measure, value)| {
            let values = found
                .iter()
                .map(|w| w.and_then(|w| w.replication.as_ref()).map(value))
                .collect();
            row(name, generator, measure, Better::Lower, values)
        })
        .collect()
}

/// Every (workload, generator) of the run, in the order the first broker ran them, then any
/// only a later broker ran.
fn workload_keys(brokers: &[BrokerRun]) -> Vec<(String, &'static str)> {
    let mut keys: Vec<(String, &'static str)> = Vec::new();
    for w in brokers.iter().flat_map(|b| &b.workloads) {
        if !keys.iter().any(|(n, g)| *n == w.name && *g == w.generator) {
            keys.push((w.name.clone(), w.generator));
        }
    }
    keys
}

fn row(workload: &str, generator: &str, measure: &str, better: Better, values: Vec<Option<f64>>) -> Row {
    let ratios: Vec<Option<f64>> = values
        .chunks(2)
        .filter(|pair| pair.len() == 2)
        .map(|pair| match (pair[0], pair[1]) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        })
        .collect();
    let ratio = ratios.first().copied().flatten();
    let n = values.len();
    Row {
        workload: workload.to_string(),
        generator: generator.to_string(),
        measure: measure.to_string(),
        better,
        values,
        mb_per_sec: vec![None; n],
        broker_us_per_record: vec![None; n],
        ratio,
        ratios,
    }
}
