//! What transactions cost: 1 KB `acks=all` records produced by an idempotent producer and by a
//! transactional one, and how long a commit takes.
//!
//! - `kafka-producer-perf-test` (the Java client), idempotent, then with `--transactional-id`
//!   and `--transaction-duration-ms` (a commit every [`TRANSACTION_MS`] ms), each into a fresh
//!   topic, with the same record count (what librdkafka reached at 1 KB `acks=all` on this
//!   broker × the run time). Kafka 4's Java client speaks transactions v2 (KIP-890 part 2)
//!   wherever `transaction.version` is 2, which a new Sluice and a new Kafka 4.4 both are.
//! - librdkafka, transactional (it speaks the classic protocol: AddPartitionsToTxn, EndTxn
//!   v≤4): for the run time, begin, [`RECORDS_PER_TRANSACTION`] records over every partition,
//!   flush, commit. The row's latency is that of `commit_transaction` alone (the records are
//!   acknowledged before it starts): EndTxn's round trip to the coordinator, which answers once
//!   its decision is in `__transaction_state`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::perf_test::{self, Producing, GENERATOR};
use super::produce::Spec;
use super::{disturbance, new_histogram, payload_pool, producer_config, record_us, AckContext, Ctx, FLUSH_TIMEOUT};
use crate::kafka_tool::KafkaTool;
use crate::report::WorkloadResult;

/// The perf tool's transactions: one commit every this many ms.
pub const TRANSACTION_MS: u64 = 100;
/// librdkafka's transactions: this many 1 KB records each.
pub const RECORDS_PER_TRANSACTION: usize = 100;
/// The librdkafka row the perf tool's record count is sized by.
const SIZED_BY: &str = "produce 1KB acks=all none unkeyed";
/// Bound on each transactional call of librdkafka.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn spec() -> Spec {
    Spec {
        record_bytes: 1024,
        acks: "all",
        compression: "none",
        keyed: false,
        linger_ms: 5,
        batch_records: None,
    }
}

/// Runs every row this workload has; a row that fails is reported and the others go on.
pub fn run(
    ctx: &Ctx,
    tool: Option<&KafkaTool>,
    librdkafka_rate: impl Fn(&str) -> Option<f64>,
) -> (Vec<WorkloadResult>, Vec<String>) {
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let spec = spec();
    if let Some(tool) = tool {
        let records = perf_test::records_for(librdkafka_rate(SIZED_BY), ctx.args.run_time());
        let rows = [
            (
                "produce 1KB acks=all idempotent".to_string(),
                Producing {
                    idempotent: true,
                    transaction_ms: None,
                },
            ),
            (
                format!("produce 1KB acks=all transactional, commit every {TRANSACTION_MS} ms"),
                Producing {
                    idempotent: true,
                    transaction_ms: Some(TRANSACTION_MS),
                },
            ),
        ];
        for (name, producing) in rows {
            eprintln!("== {name} ({GENERATOR})");
            let attempts = ctx.least_disturbed(
                || perf_test::produce_as(ctx, tool, &name, &spec, records, &producing),
                |(r, _)| r.other_cores,
                |(_, topic)| ctx.delete_topics(&[topic]),
            );
            match attempts {
                Ok(((mut r, topic), seen)) => {
                    disturbance::annotate(&mut r, &seen);
                    ctx.delete_topics(&[topic]);
                    results.push(r);
                }
                Err(e) => failures.push(format!("{name} ({GENERATOR}): {e:#}")),
            }
        }
    }
    let name = format!("transactions 1KB acks=all, {RECORDS_PER_TRANSACTION} records each: commit");
    eprintln!("== {name}");
    let attempts = ctx.least_disturbed(
        || commits(ctx, &name, &spec),
        |(r, _)| r.other_cores,
        |(_, topic)| ctx.delete_topics(&[topic]),
    );
    match attempts {
        Ok(((mut r, topic), seen)) => {
            disturbance::annotate(&mut r, &seen);
            ctx.delete_topics(&[topic]);
            results.push(r);
        }
        Err(e) => failures.push(format!("{name}: {e:#}")),
    }
    (results, failures)
}

/// librdkafka's transactions for the run time, each commit timed.
fn commits(ctx: &Ctx, name: &str, spec: &Spec) -> Result<(WorkloadResult, String)> {
    let topic = ctx.create_topic("txn-commit", ctx.args.partitions)?;
    let (outcome, bracket) = ctx.measure(|| transact(ctx, &topic, spec));
    let (committed, transactions, elapsed, hist) = outcome?;
    let mut r = ctx.result(name, "produce", &bracket);
    r.param("record_bytes", spec.record_bytes)
        .param("acks", spec.acks)
        .param("linger_ms", spec.linger_ms)
        .param("partitions", ctx.args.partitions)
        .param("records_per_transaction", RECORDS_PER_TRANSACTION)
        .param("transactions", transactions)
        .param("protocol", "classic (librdkafka: AddPartitionsToTxn, EndTxn)");
    r.set_rates(committed, committed * spec.record_bytes as u64, elapsed.as_secs_f64());
    r.set_latency("commit", &hist, false);
    r.notes.push(format!(
        "latency: commit_transaction alone, after the {RECORDS_PER_TRANSACTION} records were acknowledged"
    ));
    Ok((r, topic))
}

type Transacted = (u64, u64, Duration, hdrhistogram::Histogram<u64>);

fn transact(ctx: &Ctx, topic: &str, spec: &Spec) -> Result<Transacted> {
    let mut config = producer_config(&ctx.bootstrap, spec.acks, spec.compression, spec.linger_ms);
    config
        .set("enable.idempotence", "true")
        .set("transactional.id", format!("bench-{}-librdkafka", ctx.run_id));
    let epoch = Instant::now();
    let producer: BaseProducer<AckContext> = BaseProducer::from_config_and_context(&config, AckContext::new(epoch))?;
    producer.init_transactions(CALL_TIMEOUT)?;
    let payloads = payload_pool(spec.record_bytes);
    let mut hist = new_histogram();
    let (mut committed, mut transactions) = (0u64, 0u64);
    let start = Instant::now();
    let deadline = start + ctx.args.run_time();
    while Instant::now() < deadline {
        producer.begin_transaction()?;
        let mut sent = 0;
        while sent < RECORDS_PER_TRANSACTION {
            let record: BaseRecord<'_, (), Vec<u8>, usize> =
                BaseRecord::with_opaque_to(topic, 0).payload(&payloads[sent % payloads.len()]);
            match producer.send(record) {
                Ok(()) => sent += 1,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(anyhow!("send: {e}")),
            }
        }
        producer.flush(FLUSH_TIMEOUT)?;
        let errors = producer.context().take_stats().errors;
        if errors > 0 {
            return Err(anyhow!("{errors} records of a transaction failed"));
        }
        let at = Instant::now();
        producer.commit_transaction(CALL_TIMEOUT)?;
        record_us(&mut hist, at.elapsed().as_micros() as u64);
        committed += sent as u64;
        transactions += 1;
    }
    Ok((committed, transactions, start.elapsed(), hist))
}
