//! (b) Consume-only throughput from the start of a full topic: one librdkafka consumer,
//! `assign()`ed at the beginning, reads until it has every record below the high watermarks it
//! saw at the start. Three runs: all partitions of the 1 KB topic, the same topic one partition
//! at a time (one consumer re-assigned partition by partition; the rate is total records over
//! the summed per-partition read times), and all partitions of the 100 B topic.
//!
//! The topics are the ones the produce workload filled (so their data is still in the page
//! cache, as for a consumer that keeps up); without that workload they are filled here first.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::produce::{self, Spec};
use super::{consumer_config, Bracket, Ctx};
use crate::report::WorkloadResult;

/// Bound on one read-to-the-end, whatever the run time.
const READ_LIMIT: Duration = Duration::from_secs(120);

/// Topics the produce workload left for this one: (1 KB, 100 B).
#[derive(Debug, Default)]
pub struct Sources {
    pub topic_1kb: Option<String>,
    pub topic_100b: Option<String>,
}

#[derive(Debug, Default)]
struct Outcome {
    records: u64,
    bytes: u64,
    expected: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

impl Outcome {
    fn add(&mut self, o: Outcome) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.expected += o.expected;
        self.errors += o.errors;
        self.elapsed += o.elapsed;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

pub fn run(ctx: &Ctx, sources: &Sources) -> Result<Vec<WorkloadResult>> {
    let topic_1kb = match &sources.topic_1kb {
        Some(t) => t.clone(),
        None => fill(ctx, 1024)?,
    };
    let topic_100b = match &sources.topic_100b {
        Some(t) => t.clone(),
        None => fill(ctx, 100)?,
    };
    let all: Vec<i32> = (0..ctx.args.partitions).collect();
    let mut results = Vec::new();

    let one_at_a_time: Vec<Vec<i32>> = all.iter().map(|p| vec![*p]).collect();
    let runs = [
        (
            format!("consume 1KB {} partitions", all.len()),
            &topic_1kb,
            vec![all.clone()],
        ),
        ("consume 1KB 1 partition".to_string(), &topic_1kb, one_at_a_time),
        (
            format!("consume 100B {} partitions", all.len()),
            &topic_100b,
            vec![all.clone()],
        ),
    ];
    for (name, topic, groups) in runs {
        let fetches_before = ctx.broker_fetch_counters();
        let (o, bracket) = ctx.measure(|| read_all(ctx, topic, &groups));
        let mut r = finish(ctx, &name, o?, &bracket);
        if let (Some((f0, b0)), Some((f1, b1))) = (fetches_before, ctx.broker_fetch_counters()) {
            r.param("broker_fetch_requests", (f1 - f0) as u64);
            r.param("broker_bytes_out", (b1 - b0) as u64);
        }
        if groups.len() > 1 {
            r.notes
                .push(format!("each of the {} partitions read alone in turn", groups.len()));
        }
        results.push(r);
    }
    Ok(results)
}

fn finish(ctx: &Ctx, name: &str, o: Outcome, bracket: &Bracket) -> WorkloadResult {
    let mut r = ctx.result(name, "consume", bracket);
    r.set_rates(o.records, o.bytes, o.elapsed.as_secs_f64());
    r.param("expected_records", o.expected);
    r.errors = o.errors;
    if o.records < o.expected {
        r.notes.push(format!(
            "read {} of {} records before the time bound",
            o.records, o.expected
        ));
    }
    if let Some(e) = o.first_error {
        r.notes.push(format!("first error: {e}"));
    }
    r
}

/// Produces `run_time` worth of records of the given size when the produce workload did not.
fn fill(ctx: &Ctx, record_bytes: usize) -> Result<String> {
    let spec = Spec {
        record_bytes,
        acks: "1",
        compression: "none",
        keyed: false,
        linger_ms: 5,
        batch_records: None,
    };
    let topic = ctx.create_topic(&format!("fill{record_bytes}"), ctx.args.partitions)?;
    let o = produce::blast(&ctx.bootstrap, &spec, &topic, ctx.args.run_time())?;
    if o.acked == 0 {
        bail!("filling {topic}: nothing acknowledged ({:?})", o.first_error);
    }
    Ok(topic)
}

/// Reads each group of partitions from the beginning to the high watermark, one group after
/// the other with the same consumer; times only the reading.
fn read_all(ctx: &Ctx, topic: &str, groups: &[Vec<i32>]) -> Result<Outcome> {
    let consumer: BaseConsumer = consumer_config(&ctx.bootstrap).create()?;
    consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut total = Outcome::default();
    for partitions in groups {
        total.add(read_to_end(&consumer, topic, partitions)?);
    }
    Ok(total)
}

fn read_to_end(consumer: &BaseConsumer, topic: &str, partitions: &[i32]) -> Result<Outcome> {
    let mut o = Outcome::default();
    let mut assignment = TopicPartitionList::new();
    for &p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        o.expected += (high - low).max(0) as u64;
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    let start = Instant::now();
    consumer.assign(&assignment)?;
    while o.records < o.expected && start.elapsed() < READ_LIMIT {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                o.records += 1;
                o.bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => {
                o.errors += 1;
                o.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    o.elapsed = start.elapsed();
    consumer.unassign()?;
    Ok(o)
}
