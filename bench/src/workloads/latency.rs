//! (c) End-to-end latency at a fixed rate: one producer paced to `rate` records/s (1 KB,
//! `--latency-acks`, 1 by default, linger 1 ms) and one consumer assigned to every partition, in the same process so
//! they share a monotonic clock. Each payload carries its produce-call time (µs since a shared
//! epoch) in its first 8 bytes; the consumer records now − that time. The first second is
//! warm-up (connections, first fetches) and stays out of the histograms.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::{consumer_config, new_histogram, payload_pool, producer_config, record_us, AckContext, Ctx, FLUSH_TIMEOUT};
use crate::report::WorkloadResult;

const RECORD_BYTES: usize = 1024;
const LINGER_MS: u32 = 1;
const WARMUP: Duration = Duration::from_secs(1);
/// How long the consumer may lag behind the producer's end before the run stops anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);

#[derive(Debug)]
struct Received {
    records: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Histogram<u64>,
    /// Worst e2e latency (µs) per second of send time since warm-up ended.
    max_us_by_second: Vec<u64>,
}

/// A second whose worst e2e latency passes this is counted as a stall in the notes.
const STALL_US: u64 = 100_000;
/// Longest run the per-second series covers (a bound on its length).
const SERIES_SECS_MAX: usize = 3600;

/// Runs the paced producer and the consumer; returns (e2e row, produce→ack row).
pub fn run(ctx: &Ctx, rate: u64, rate_source: &str) -> Result<Vec<WorkloadResult>> {
    let topic = ctx.create_topic("latency", ctx.args.partitions)?;
    let run_time = ctx.args.latency_time();
    let (outcome, bracket) = ctx.measure(|| paced(ctx, &topic, rate.max(1), run_time));
    let (sent, acks, mut received, behind) = outcome?;
    // A record scheduled in the last second can be sent a hair past the end: no partial bucket.
    received.max_us_by_second.truncate(run_time.as_secs().max(1) as usize);
    let measured_secs = run_time.as_secs_f64();

    let acks_setting = ctx.args.latency_acks.as_str();
    let name = match acks_setting {
        "1" => format!("latency 1KB @ {rate} rec/s"),
        _ => format!("latency 1KB acks={acks_setting} @ {rate} rec/s"),
    };
    let mut e2e = ctx.result(&format!("{name}: e2e"), "latency", &bracket);
    e2e.param("target_rate", rate)
        .param("rate_source", rate_source)
        .param("linger_ms", LINGER_MS)
        .param("acks", acks_setting)
        .param("record_bytes", RECORD_BYTES)
        .param("sent", sent)
        .param("warmup_secs", WARMUP.as_secs_f64());
    // Rates over the measured (post warm-up) window: the paced rate actually delivered.
    e2e.set_rates(received.records, received.bytes, measured_secs + WARMUP.as_secs_f64());
    e2e.set_latency("e2e", &received.hist, true);
    e2e.max_ms_by_second = Some(received.max_us_by_second.iter().map(|&us| us as f64 / 1000.0).collect());
    if let Some((second, worst)) = worst_second(&received.max_us_by_second) {
        e2e.param("worst_second", second)
            .param("worst_second_max_ms", format!("{worst:.1}"));
        let slow = received.max_us_by_second.iter().filter(|&&us| us > STALL_US).count();
        e2e.notes.push(format!(
            "worst second: +{second} s after warm-up, max {worst:.0} ms; {slow} of {} seconds had a max over {} ms (see latency-timeline.png)",
            received.max_us_by_second.len(),
            STALL_US / 1000
        ));
    }
    e2e.errors = received.errors;
    if received.records < sent {
        e2e.notes
            .push(format!("consumed {} of {} records sent", received.records, sent));
    }
    if let Some(e) = &received.first_error {
        e2e.notes.push(format!("consumer error: {e}"));
    }
    if behind > Duration::from_millis(100) {
        e2e.notes.push(format!(
            "the producer fell behind its schedule by up to {} ms (its queue was full during a stall, or it was short of CPU); latency counts from the actual produce call, so records held back meanwhile are under-counted",
            behind.as_millis()
        ));
    }

    let mut ack = ctx.result(&format!("{name}: produce→ack"), "latency", &bracket);
    ack.params = e2e.params.clone();
    ack.set_rates(acks.acked, acks.acked_bytes, measured_secs + WARMUP.as_secs_f64());
    ack.set_latency("ack", &acks.hist, true);
    ack.errors = acks.errors;
    if let Some(e) = &acks.first_error {
        ack.notes.push(format!("delivery error: {e}"));
    }
    ack.notes.push("same run as the e2e row".to_string());
    ctx.delete_topics(&[topic]);
    Ok(vec![e2e, ack])
}

fn paced(ctx: &Ctx, topic: &str, rate: u64, run_time: Duration) -> Result<(u64, super::AckStats, Received, Duration)> {
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let ready = Arc::new(AtomicBool::new(false));
    let warmup_end_us = Arc::new(AtomicU64::new(u64::MAX));
    let consumer = {
        let (bootstrap, topic) = (ctx.bootstrap.clone(), topic.to_string());
        let partitions = ctx.args.partitions;
        let (stop, target, ready, warmup_end_us) = (stop.clone(), target.clone(), ready.clone(), warmup_end_us.clone());
        thread::Builder::new().name("latency-consumer".into()).spawn(move || {
            consume(
                &bootstrap,
                &topic,
                partitions,
                epoch,
                &stop,
                &target,
                &ready,
                &warmup_end_us,
            )
        })?
    };
    let ready_by = Instant::now() + Duration::from_secs(10);
    while !ready.load(Ordering::Acquire) && Instant::now() < ready_by {
        thread::sleep(Duration::from_millis(10));
    }

    let config = producer_config(&ctx.bootstrap, &ctx.args.latency_acks, "none", LINGER_MS);
    let producer: BaseProducer<AckContext> = BaseProducer::from_config_and_context(&config, AckContext::new(epoch))?;
    let acks = producer.context().clone();
    producer.client().fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let payloads = payload_pool(RECORD_BYTES);
    let mut buf = vec![0u8; RECORD_BYTES];

    let start = Instant::now();
    let end = start + WARMUP + run_time;
    let start_us = acks.now_us();
    let warmup_us = start_us + WARMUP.as_micros() as u64;
    warmup_end_us.store(warmup_us, Ordering::Release);
    acks.inner.lock().expect("ack stats").record_from_us = warmup_us;
    let interval_ns = 1_000_000_000 / rate;
    let mut sent: u64 = 0;
    let mut behind = Duration::ZERO;
    loop {
        let due = start + Duration::from_nanos(sent.saturating_mul(interval_ns));
        if due >= end {
            break;
        }
        // Serve delivery reports at once: their time is the produce→ack latency.
        producer.poll(Duration::ZERO);
        let now = Instant::now();
        if now < due {
            // Sleep rather than spin: the generator shares two cores with the broker. An
            // oversleep is caught up by sending the records that fell due meanwhile.
            thread::sleep((due - now).min(Duration::from_millis(1)));
            continue;
        }
        behind = behind.max(now - due);
        buf.copy_from_slice(&payloads[sent as usize % payloads.len()]);
        let sent_us = acks.now_us();
        buf[..8].copy_from_slice(&sent_us.to_le_bytes());
        match producer.send(BaseRecord::<(), _, _>::with_opaque_to(topic, sent_us as usize).payload(&buf)) {
            Ok(()) => sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => {
                stop.store(true, Ordering::Release);
                let _ = consumer.join();
                return Err(anyhow!("produce: {e}"));
            }
        }
    }
    let _ = producer.flush(FLUSH_TIMEOUT);
    target.store(sent, Ordering::Release);
    let received = consumer.join().map_err(|_| anyhow!("latency consumer panicked"))??;
    stop.store(true, Ordering::Release);
    Ok((sent, acks.take_stats(), received, behind))
}

#[allow(clippy::too_many_arguments)]
fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    epoch: Instant,
    stop: &AtomicBool,
    target: &AtomicU64,
    ready: &AtomicBool,
    warmup_end_us: &AtomicU64,
) -> Result<Received> {
    let mut config = consumer_config(bootstrap);
    // Long polls are woken by appends; a short max wait only bounds an idle fetch.
    config.set("fetch.wait.max.ms", "100").set("fetch.min.bytes", "1");
    let consumer: BaseConsumer = config.create()?;
    consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    // Let the first (empty) fetches go out before the producer starts.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        consumer.poll(Duration::from_millis(50));
    }
    ready.store(true, Ordering::Release);

    let mut r = Received {
        records: 0,
        bytes: 0,
        errors: 0,
        first_error: None,
        hist: new_histogram(),
        max_us_by_second: Vec::new(),
    };
    let mut drain_deadline: Option<Instant> = None;
    // Hard bound whatever happens: the producer's schedule is far shorter than this.
    let hard_deadline = Instant::now() + Duration::from_secs(3600);
    while !stop.load(Ordering::Acquire) && Instant::now() < hard_deadline {
        let want = target.load(Ordering::Acquire);
        if want != u64::MAX {
            if r.records >= want {
                break;
            }
            let d = *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN_LIMIT);
            if Instant::now() >= d {
                break;
            }
        }
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let now_us = epoch.elapsed().as_micros() as u64;
                let payload = m.payload().unwrap_or_default();
                r.records += 1;
                r.bytes += payload.len() as u64;
                if payload.len() >= 8 {
                    let sent_us = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                    let warmup_end = warmup_end_us.load(Ordering::Acquire);
                    if sent_us >= warmup_end {
                        let latency_us = now_us.saturating_sub(sent_us);
                        record_us(&mut r.hist, latency_us);
                        let second = ((sent_us - warmup_end) / 1_000_000) as usize;
                        if second < SERIES_SECS_MAX {
                            if r.max_us_by_second.len() <= second {
                                r.max_us_by_second.resize(second + 1, 0);
                            }
                            r.max_us_by_second[second] = r.max_us_by_second[second].max(latency_us);
                        }
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(r)
}

/// The second (after warm-up) with the worst e2e latency, and that latency in ms.
fn worst_second(max_us_by_second: &[u64]) -> Option<(usize, f64)> {
    let (second, us) = max_us_by_second.iter().enumerate().max_by_key(|(_, us)| **us)?;
    Some((second, *us as f64 / 1000.0))
}
