//! (a) Produce-only maximum throughput: one librdkafka producer sends as fast as its queue
//! allows into a fresh topic for the run time, then flushes. Records/s counts only records the
//! broker acknowledged, over the time from the first send to the last acknowledgement.

use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::{key_pool, payload_pool, producer_config, AckContext, Ctx, FLUSH_TIMEOUT};
use crate::report::WorkloadResult;

/// One produce variant of the matrix.
#[derive(Debug, Clone)]
pub struct Spec {
    pub record_bytes: usize,
    pub acks: &'static str,
    pub compression: &'static str,
    pub keyed: bool,
    pub linger_ms: u32,
    /// librdkafka `batch.num.messages`; `None` keeps its default (10 000).
    pub batch_records: Option<u32>,
}

impl Spec {
    pub fn name(&self) -> String {
        let size = if self.record_bytes >= 1024 {
            format!("{}KB", self.record_bytes / 1024)
        } else {
            format!("{}B", self.record_bytes)
        };
        let mut name = format!(
            "produce {size} acks={} {} {}",
            self.acks,
            self.compression,
            if self.keyed { "keyed" } else { "unkeyed" }
        );
        if let Some(n) = self.batch_records {
            name += &format!(" linger={} batch≤{n}", self.linger_ms);
        }
        name
    }

    /// Topic-name-safe short id.
    pub fn slug(&self) -> String {
        format!(
            "p{}-a{}-{}-{}{}",
            self.record_bytes,
            if self.acks == "all" { "all" } else { self.acks },
            self.compression,
            if self.keyed { "k" } else { "u" },
            self.batch_records.map_or(String::new(), |n| format!("-b{n}"))
        )
    }

    /// The one producer setting the consume and latency workloads reuse: 1 KB, acks=1, plain.
    pub fn is_base_1kb(&self) -> bool {
        self.record_bytes == 1024
            && self.acks == "1"
            && self.compression == "none"
            && !self.keyed
            && self.batch_records.is_none()
    }

    pub fn is_base_100b(&self) -> bool {
        self.record_bytes == 100
            && self.acks == "1"
            && self.compression == "none"
            && !self.keyed
            && self.batch_records.is_none()
    }
}

/// The matrix of the issue: 1 KB and 100 B, acks=1 and all, none and lz4, unkeyed and keyed,
/// all with linger 5 ms; plus 100 B in small batches (linger 0, at most 100 per batch).
pub fn matrix() -> Vec<Spec> {
    let mut specs = Vec::new();
    for record_bytes in [1024, 100] {
        for acks in ["1", "all"] {
            for compression in ["none", "lz4"] {
                for keyed in [false, true] {
                    specs.push(Spec {
                        record_bytes,
                        acks,
                        compression,
                        keyed,
                        linger_ms: 5,
                        batch_records: None,
                    });
                }
            }
        }
    }
    specs.push(Spec {
        record_bytes: 100,
        acks: "1",
        compression: "none",
        keyed: false,
        linger_ms: 0,
        batch_records: Some(100),
    });
    specs
}

/// What one producer achieved.
#[derive(Debug)]
pub struct Outcome {
    pub sent: u64,
    pub acked: u64,
    pub acked_bytes: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub hist: hdrhistogram::Histogram<u64>,
}

/// Sends at full speed to `topic` for `run_time`, then flushes (bounded).
pub fn blast(bootstrap: &str, spec: &Spec, topic: &str, run_time: Duration) -> Result<Outcome> {
    let mut config = producer_config(bootstrap, spec.acks, spec.compression, spec.linger_ms);
    if let Some(n) = spec.batch_records {
        config.set("batch.num.messages", n.to_string());
    }
    let epoch = Instant::now();
    let producer: BaseProducer<AckContext> = BaseProducer::from_config_and_context(&config, AckContext::new(epoch))?;
    // Connect and learn the partitions before the clock starts.
    producer.client().fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let payloads = payload_pool(spec.record_bytes);
    let keys = key_pool();
    let ctx = producer.context();
    ctx.inner.lock().expect("ack stats").record_from_us = ctx.now_us();
    let start = Instant::now();
    let deadline = start + run_time;
    let mut sent: u64 = 0;
    let mut send_errors: u64 = 0;
    let mut first_error = None;
    while Instant::now() < deadline {
        let i = sent as usize;
        let mut record =
            BaseRecord::with_opaque_to(topic, ctx.now_us() as usize).payload(&payloads[i % payloads.len()]);
        if spec.keyed {
            record = record.key(&keys[i % keys.len()]);
        }
        match producer.send(record) {
            Ok(()) => {
                sent += 1;
                if sent.is_multiple_of(1024) {
                    producer.poll(Duration::ZERO);
                }
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => {
                send_errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
                producer.poll(Duration::from_millis(10));
                if send_errors > 1000 {
                    break;
                }
            }
        }
    }
    let flushed = producer.flush(FLUSH_TIMEOUT);
    let elapsed = start.elapsed();
    let stats = ctx.take_stats();
    let mut outcome = Outcome {
        sent,
        acked: stats.acked,
        acked_bytes: stats.acked_bytes,
        errors: stats.errors + send_errors,
        first_error: first_error.or(stats.first_error),
        elapsed,
        hist: stats.hist,
    };
    if let Err(e) = flushed {
        outcome.first_error.get_or_insert_with(|| format!("flush: {e}"));
    }
    Ok(outcome)
}

/// Runs one variant into a fresh topic; returns the result and the topic (deleted by the
/// caller unless another workload reads it).
pub fn run(ctx: &Ctx, spec: &Spec) -> Result<(WorkloadResult, String)> {
    let topic = ctx.create_topic(&spec.slug(), ctx.args.partitions)?;
    let bytes_in_before = ctx.broker_bytes_in();
    let (outcome, bracket) = ctx.measure(|| blast(&ctx.bootstrap, spec, &topic, ctx.args.run_time()));
    let outcome = outcome?;
    let bytes_in_after = ctx.broker_bytes_in();
    let mut r = ctx.result(&spec.name(), "produce", &bracket);
    r.param("record_bytes", spec.record_bytes)
        .param("acks", spec.acks)
        .param("compression", spec.compression)
        .param("keyed", spec.keyed)
        .param("linger_ms", spec.linger_ms)
        .param("partitions", ctx.args.partitions)
        .param(
            "batch.num.messages",
            spec.batch_records
                .map_or("default (10000)".to_string(), |n| n.to_string()),
        )
        .param("sent", outcome.sent);
    r.set_rates(outcome.acked, outcome.acked_bytes, outcome.elapsed.as_secs_f64());
    r.set_latency("ack@max", &outcome.hist, false);
    r.errors = outcome.errors;
    if let Some(e) = &outcome.first_error {
        r.notes.push(format!("first error: {e}"));
    }
    if let (Some(a), Some(b)) = (bytes_in_before, bytes_in_after) {
        let wire = b - a;
        r.param("broker_bytes_in", wire as u64);
        if wire > 0.0 && spec.compression != "none" {
            r.param("wire_ratio", format!("{:.2}", outcome.acked_bytes as f64 / wire));
        }
    }
    Ok((r, topic))
}
