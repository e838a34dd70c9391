//! The second, independent load generator: Apache Kafka's own `kafka-producer-perf-test` and
//! `kafka-consumer-perf-test` (the Java client, with the JVM flags Kafka's scripts give it),
//! run through compat-tests/kafka-tool, their summary lines parsed. Its rows carry the same
//! names as the librdkafka rows they repeat, so no produce or consume figure rests on one
//! client alone.
//!
//! Produce: 1 KB `acks=1`, 1 KB `acks=all` and 100 B `acks=1`, unkeyed, uncompressed,
//! `linger.ms=5`, idempotence off, the Java producer's other defaults (`batch.size` 16 KiB,
//! `buffer.memory` 32 MiB), each into a fresh topic. The tool sends a count, not a duration: the
//! count is what librdkafka acknowledged per second on the same broker × the run time, so the
//! tool runs at least as long as librdkafka did (longer where the Java client is slower). Consume: the whole 1 KB `acks=1` topic, through a consumer
//! group (the tool subscribes); its rate is the tool's `fetch.nMsg.sec`, which leaves out the
//! group join.

mod summary;

use std::time::Duration;

use anyhow::{anyhow, Result};

use super::produce::Spec;
use super::{disturbance, Bracket, Ctx};
use crate::kafka_tool::{run_bounded, Finished, KafkaTool, PERF_TOOL_HEAP};
use crate::report::{Percentiles, WorkloadResult};
use summary::{ConsumerSummary, ProducerSummary};

/// The generator's name in the rows.
pub const GENERATOR: &str = "kafka-perf-test";
/// Records/s to size a run by when librdkafka measured nothing on this broker.
const FALLBACK_RATE: f64 = 100_000.0;
const MIN_RECORDS: u64 = 10_000;
/// The consumer tool gives up after this long without a record.
const CONSUMER_IDLE_MS: u64 = 10_000;

/// The produce variants both generators run (named as the librdkafka rows).
pub fn produce_specs() -> Vec<Spec> {
    [(1024, "1"), (1024, "all"), (100, "1")]
        .into_iter()
        .map(|(record_bytes, acks)| Spec {
            record_bytes,
            acks,
            compression: "none",
            keyed: false,
            linger_ms: 5,
            batch_records: None,
        })
        .collect()
}

/// Runs the producer tool for every variant, then the consumer tool on the 1 KB `acks=1`
/// topic. `librdkafka_rate` gives the rate librdkafka measured for a row name on this broker.
/// A run that fails is reported in the returned list and the others go on.
pub fn run(
    ctx: &Ctx,
    tool: &KafkaTool,
    librdkafka_rate: impl Fn(&str) -> Option<f64>,
) -> (Vec<WorkloadResult>, Vec<String>) {
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut consume_source = None;
    for spec in produce_specs() {
        let name = spec.name();
        eprintln!("== {name} ({GENERATOR})");
        let records = records_for(librdkafka_rate(&name), ctx.args.run_time());
        let attempts = ctx.least_disturbed(
            || produce(ctx, tool, &spec, records),
            |(r, _)| r.other_cores,
            |(_, topic)| ctx.delete_topics(&[topic]),
        );
        match attempts {
            Ok(((mut r, topic), seen)) => {
                disturbance::annotate(&mut r, &seen);
                if spec.is_base_1kb() {
                    consume_source = Some((topic, r.records));
                } else {
                    ctx.delete_topics(&[topic]);
                }
                results.push(r);
            }
            Err(e) => failures.push(format!("{name} ({GENERATOR}): {e:#}")),
        }
    }
    if let Some((topic, records)) = consume_source {
        let name = format!("consume 1KB {} partitions", ctx.args.partitions);
        eprintln!("== {name} ({GENERATOR})");
        // Each attempt joins its own group: the tool commits what it read.
        let mut attempt = 0;
        let attempts = ctx.least_disturbed(
            || {
                attempt += 1;
                consume(ctx, tool, &name, &topic, records, attempt)
            },
            |r| r.other_cores,
            |_| {},
        );
        match attempts {
            Ok((mut r, seen)) => {
                disturbance::annotate(&mut r, &seen);
                results.push(r);
            }
            Err(e) => failures.push(format!("{name} ({GENERATOR}): {e:#}")),
        }
        ctx.delete_topics(&[topic]);
    }
    (results, failures)
}

pub fn records_for(rate: Option<f64>, run_time: Duration) -> u64 {
    ((rate.unwrap_or(FALLBACK_RATE) * run_time.as_secs_f64()) as u64).max(MIN_RECORDS)
}

/// Time bound of one tool run: its JVM start, plus several times the planned run time in case
/// the Java client is much slower than librdkafka was.
fn limit(ctx: &Ctx) -> Duration {
    ctx.args.run_time() * 8 + Duration::from_secs(60)
}

/// Runs a tool inside the measurement bracket (the generator's CPU is then the JVM's).
fn measured(ctx: &Ctx, command: std::process::Command) -> Result<(Finished, Bracket)> {
    let (finished, bracket) = ctx.measure(|| run_bounded(command, limit(ctx)));
    Ok((finished?, bracket))
}

fn produce(ctx: &Ctx, tool: &KafkaTool, spec: &Spec, records: u64) -> Result<(WorkloadResult, String)> {
    produce_as(ctx, tool, &spec.name(), spec, records, &Producing::plain())
}

/// How the perf tool's producer runs: idempotent or not, and with `--transactional-id` and
/// `--transaction-duration-ms` a transaction committed every that many ms.
#[derive(Debug, Clone)]
pub struct Producing {
    pub idempotent: bool,
    pub transaction_ms: Option<u64>,
}

impl Producing {
    fn plain() -> Producing {
        Producing {
            idempotent: false,
            transaction_ms: None,
        }
    }
}

/// One `kafka-producer-perf-test` run of `spec`, named `name`, into a fresh topic.
pub fn produce_as(
    ctx: &Ctx,
    tool: &KafkaTool,
    name: &str,
    spec: &Spec,
    records: u64,
    producing: &Producing,
) -> Result<(WorkloadResult, String)> {
    let topic = ctx.create_topic(&format!("perf-{}", spec.slug()), ctx.args.partitions)?;
    let mut command = tool.command("kafka-producer-perf-test", PERF_TOOL_HEAP);
    command
        .args(["--bootstrap-server", &ctx.bootstrap, "--topic", &topic])
        .args(["--num-records", &records.to_string()])
        .args(["--record-size", &spec.record_bytes.to_string()])
        .args(["--throughput", "-1"]);
    if let Some(ms) = producing.transaction_ms {
        command
            .args(["--transactional-id", &format!("bench-{}-{}", ctx.run_id, spec.slug())])
            .args(["--transaction-duration-ms", &ms.to_string()]);
    }
    command
        .arg("--command-property")
        .arg(format!("acks={}", spec.acks))
        .arg(format!("linger.ms={}", spec.linger_ms))
        .arg(format!("enable.idempotence={}", producing.idempotent))
        .args(["compression.type=none", "client.id=sluice-bench-perf"]);
    let (finished, bracket) = measured(ctx, command)?;
    let summary =
        ProducerSummary::find(&finished.stdout).ok_or_else(|| anyhow!("no summary line ({})", finished.failure()))?;
    let mut r = ctx.result(name, "produce", &bracket);
    r.generator = GENERATOR;
    r.param("record_bytes", spec.record_bytes)
        .param("acks", spec.acks)
        .param("linger_ms", spec.linger_ms)
        .param("partitions", ctx.args.partitions)
        .param("num_records", records)
        .param("enable.idempotence", producing.idempotent)
        .param(
            "transaction_duration_ms",
            producing.transaction_ms.map_or("none".to_string(), |ms| ms.to_string()),
        )
        .param(
            "producer",
            "Java client defaults otherwise (batch.size 16384, buffer.memory 32 MiB)",
        );
    set_reported(
        &mut r,
        summary.records,
        summary.records_per_sec,
        summary.mb_per_sec,
        spec.record_bytes,
    );
    r.latency_kind = Some("ack@max");
    r.latency = Some(Percentiles {
        count: summary.records,
        p50_ms: summary.p50_ms,
        p99_ms: summary.p99_ms,
        p999_ms: summary.p999_ms,
        max_ms: summary.max_ms,
        mean_ms: summary.avg_ms,
    });
    if summary.records < records {
        r.notes.push(format!("{} of {records} records sent", summary.records));
    }
    if !finished.succeeded() {
        r.notes.push(format!("the tool ended badly: {}", finished.failure()));
    }
    r.notes
        .push("the tool's own summary line; gen CPU includes its JVM start".to_string());
    Ok((r, topic))
}

fn consume(ctx: &Ctx, tool: &KafkaTool, name: &str, topic: &str, records: u64, attempt: u32) -> Result<WorkloadResult> {
    let mut command = tool.command("kafka-consumer-perf-test", PERF_TOOL_HEAP);
    command
        .args(["--bootstrap-server", &ctx.bootstrap, "--topic", topic])
        .args(["--num-records", &records.to_string()])
        .args(["--timeout", &CONSUMER_IDLE_MS.to_string()])
        .args(["--group", &format!("bench-{}-perf-{attempt}", ctx.run_id)]);
    let (finished, bracket) = measured(ctx, command)?;
    let summary =
        ConsumerSummary::find(&finished.stdout).ok_or_else(|| anyhow!("no summary line ({})", finished.failure()))?;
    let mut r = ctx.result(name, "consume", &bracket);
    r.generator = GENERATOR;
    r.param("expected_records", records)
        .param("rebalance_ms", summary.rebalance_ms)
        .param("fetch_ms", summary.fetch_ms)
        .param(
            "records_per_sec_with_group_join",
            format!("{:.0}", summary.overall_records_per_sec),
        );
    set_reported(
        &mut r,
        summary.records,
        summary.fetch_records_per_sec,
        summary.fetch_mb_per_sec,
        1024,
    );
    if summary.records < records {
        r.notes.push(format!("read {} of {records} records", summary.records));
    }
    if !finished.succeeded() {
        r.notes.push(format!("the tool ended badly: {}", finished.failure()));
    }
    r.notes.push(format!(
        "fetch.nMsg.sec: leaves out the {} ms group join; a subscribing consumer group, not assign()",
        summary.rebalance_ms
    ));
    Ok(r)
}

/// Fills the rates as the tool reported them (its MB is 2^20 bytes as well).
fn set_reported(r: &mut WorkloadResult, records: u64, records_per_sec: f64, mb_per_sec: f64, record_bytes: usize) {
    let elapsed = if records_per_sec > 0.0 {
        records as f64 / records_per_sec
    } else {
        0.0
    };
    r.set_rates(records, records * record_bytes as u64, elapsed);
    r.records_per_sec = records_per_sec;
    r.mb_per_sec = mb_per_sec;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_runs_by_the_librdkafka_rate() {
        assert_eq!(records_for(Some(200_000.0), Duration::from_secs(8)), 1_600_000);
        assert_eq!(records_for(Some(10.0), Duration::from_secs(2)), MIN_RECORDS);
        assert_eq!(records_for(None, Duration::from_secs(2)), 200_000);
    }
}
