//! (e) The log cleaner (Sluice only: the window of a cleaning comes from its /metrics, which
//! Kafka exposes only over JMX). A one-partition compacted topic is filled with `--cleaner-mb`
//! of 1 KB records over 10 000 keys while its `min.cleanable.dirty.ratio` is 1.0 (never
//! cleanable); then a paced producer (acks=all, 100 B keyed records, linger 0, 5 000 records/s)
//! writes to the same partition for the run time with the cleaner idle. The ratio is then set
//! to 0.01 and the same producer runs again until the cleaner's next run has ended
//! (`sluice_log_cleaner_runs_total`, polled every 50 ms); only the records sent during that
//! run count (its length: its bytes read ÷ its rate, both from /metrics, which move only when
//! a run ends). Rows: the cleaner's rate (MB of dirty log per second: half the bytes it read,
//! which is the dirty section mapped and then rewritten, over the run's time) and the
//! produce→ack latency idle vs. while cleaning.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hdrhistogram::Histogram;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::{
    key_pool, new_histogram, payload_pool, producer_config, record_us, AckContext, AckStats, Ctx, FLUSH_TIMEOUT, MB,
};
use crate::report::WorkloadResult;

const RECORD_BYTES: usize = 1024;
const PROBE_BYTES: usize = 100;
const PROBE_RATE: u64 = 5_000;
const SEGMENT_BYTES: &str = "67108864";
/// Bound on waiting for the cleaning to start and end.
const CLEANING_LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(50);

fn configs(ratio: &'static str) -> [(&'static str, &'static str); 3] {
    [
        ("cleanup.policy", "compact"),
        ("segment.bytes", SEGMENT_BYTES),
        ("min.cleanable.dirty.ratio", ratio),
    ]
}

pub fn run(ctx: &Ctx, dirty_mb: u64) -> Result<Vec<WorkloadResult>> {
    if ctx.metrics.is_empty() {
        bail!("the cleaner workload reads Sluice's /metrics; this broker has none");
    }
    let topic = ctx.create_topic_with("cleaner", 1, &configs("1.0"))?;
    let fill_start = Instant::now();
    let filled = fill(&ctx.bootstrap, &topic, dirty_mb * 1024 * 1024)?;
    let fill_secs = fill_start.elapsed().as_secs_f64();
    // The fill's page-cache writeback would otherwise land in the idle probe.
    if let Err(e) = std::process::Command::new("sync").status() {
        eprintln!("   sync: {e}");
    }
    let probe_time = ctx.args.run_time().max(Duration::from_secs(5));

    let (idle, idle_bracket) = ctx.measure(|| probe(ctx, &topic, Some(probe_time), None));
    let (mut idle, idle_samples) = idle?;
    idle.stats.hist = histogram(&idle_samples, 0, u64::MAX);
    let metric = |name: &str| ctx.broker_metric(name, None).unwrap_or(0.0);
    let (runs_before, read_before) = (
        metric("sluice_log_cleaner_runs_total"),
        metric("sluice_log_cleaner_bytes_read_total"),
    );
    let (running, running_bracket) = ctx.measure(|| {
        // Inside the bracket: after its wait for a quiet machine, so the cleaning is measured.
        ctx.alter_topic_configs(&topic, &configs("0.01"))?;
        probe(
            ctx,
            &topic,
            None,
            Some(&|| metric("sluice_log_cleaner_runs_total") > runs_before),
        )
    });
    let (mut running, running_samples) = running?;
    let read = metric("sluice_log_cleaner_bytes_read_total") - read_before;
    let last_rate = metric("sluice_log_cleaner_last_run_bytes_per_second");
    let Some(ended_us) = running.ended_us else {
        bail!("no cleaning finished within {CLEANING_LIMIT:?}");
    };
    // The broker's own measure of its run (bytes read ÷ its elapsed time); the counters move
    // only when a run ends, so the run's window is the time before that end.
    if last_rate <= 0.0 {
        bail!("the cleaner reported no rate for its run");
    }
    let cleaning_secs = read / last_rate;
    let from_us = ended_us.saturating_sub((cleaning_secs * 1e6) as u64 + POLL.as_micros() as u64);
    running.stats.hist = histogram(&running_samples, from_us, ended_us);
    running.secs = (ended_us - from_us) as f64 / 1e6;
    let mut rate = ctx.result(
        &format!("cleaner: {dirty_mb} MB dirty, 1KB over 10k keys"),
        "cleaner",
        &running_bracket,
    );
    rate.set_rates(filled.records, (read / 2.0) as u64, cleaning_secs);
    rate.broker_cpu_us_per_record = None;
    rate.param("dirty_records", filled.records)
        .param("dirty_bytes", filled.bytes)
        .param("fill_secs", format!("{fill_secs:.1}"))
        .param("cleaner_bytes_read", read as u64)
        .param("cleaning_secs", format!("{cleaning_secs:.2}"));
    rate.notes.push(format!(
        "MB/s = dirty MB cleaned (half of the {:.0} MB the cleaner read: map, then rewrite) over the cleaning's {cleaning_secs:.2} s (its bytes read ÷ sluice_log_cleaner_last_run_bytes_per_second); records/s: the dirty records over that time",
        read / MB
    ));

    let name = |what: &str| format!("cleaner: produce 100B acks=all @ {PROBE_RATE} rec/s, {what}");
    let mut rows = vec![rate];
    for (label, outcome, bracket) in [
        ("cleaner idle", idle, idle_bracket),
        ("cleaner running", running, running_bracket),
    ] {
        let mut r = ctx.result(&name(label), "latency", &bracket);
        r.param("record_bytes", PROBE_BYTES)
            .param("acks", "all")
            .param("rate", PROBE_RATE);
        let counted = outcome.stats.hist.len();
        r.set_rates(counted, counted * PROBE_BYTES as u64, outcome.secs);
        r.set_latency("ack", &outcome.stats.hist, false);
        r.errors = outcome.stats.errors;
        if let Some(e) = &outcome.stats.first_error {
            r.notes.push(format!("delivery error: {e}"));
        }
        r.notes.push(format!(
            "{counted} records counted, sent to the compacted partition {}",
            if label == "cleaner idle" {
                "while it is left alone (min.cleanable.dirty.ratio 1.0)"
            } else {
                "while it was being cleaned (the cleaning's time before its run ended, plus one poll)"
            }
        ));
        rows.push(r);
    }
    ctx.delete_topics(&[topic]);
    Ok(rows)
}

#[derive(Debug)]
struct Filled {
    records: u64,
    bytes: u64,
}

/// `bytes` of 1 KB records over the key pool, acks=1, as fast as the queue allows.
fn fill(bootstrap: &str, topic: &str, bytes: u64) -> Result<Filled> {
    let config = producer_config(bootstrap, "1", "none", 5);
    let producer: BaseProducer<AckContext> =
        BaseProducer::from_config_and_context(&config, AckContext::new(Instant::now()))?;
    let (payloads, keys) = (payload_pool(RECORD_BYTES), key_pool());
    let mut sent = 0u64;
    while sent * RECORD_BYTES as u64 <= bytes {
        let i = sent as usize;
        let record = BaseRecord::with_opaque_to(topic, 0)
            .payload(&payloads[i % payloads.len()])
            .key(&keys[i % keys.len()]);
        match producer.send(record) {
            Ok(()) => sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("fill: {e}"),
        }
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(FLUSH_TIMEOUT)?;
    let stats = producer.context().take_stats();
    if stats.errors > 0 {
        bail!("fill: {} delivery errors, first {:?}", stats.errors, stats.first_error);
    }
    Ok(Filled {
        records: stats.acked,
        bytes: stats.acked_bytes,
    })
}

/// What one paced run measured.
struct Probed {
    stats: AckStats,
    secs: f64,
    /// With a watch: when the cleaning ended, since the probe's epoch (µs).
    ended_us: Option<u64>,
}

/// Delivery reports of a paced run: each record's send time and produce→ack latency (µs), so
/// the records of any window can be picked afterwards.
struct ProbeContext {
    epoch: Instant,
    samples: Mutex<Vec<(u64, u64)>>,
    errors: Mutex<(u64, Option<String>)>,
}

/// Bound on the samples one probe keeps (over 30 minutes at PROBE_RATE).
const SAMPLES_MAX: usize = 10_000_000;

impl ClientContext for ProbeContext {}

impl ProducerContext for ProbeContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        let now = self.epoch.elapsed().as_micros() as u64;
        match result {
            Ok(_) => {
                let mut samples = self.samples.lock().expect("samples");
                if samples.len() < SAMPLES_MAX {
                    samples.push((sent_us as u64, now.saturating_sub(sent_us as u64)));
                }
            }
            Err((e, _)) => {
                let mut errors = self.errors.lock().expect("errors");
                errors.0 += 1;
                errors.1.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// A watch of the cleaner: true once the cleaning has ended.
type Watch<'a> = dyn Fn() -> bool + 'a;

/// Sends PROBE_RATE records/s (acks=all, keyed, linger 0) for `time`, or, with a `watch`,
/// until the cleaning ended; returns the run and every record's (send time, latency), µs.
fn probe(
    ctx: &Ctx,
    topic: &str,
    time: Option<Duration>,
    watch: Option<&Watch<'_>>,
) -> Result<(Probed, Vec<(u64, u64)>)> {
    let mut config = producer_config(&ctx.bootstrap, "all", "none", 0);
    config.set("linger.ms", "0");
    let context = ProbeContext {
        epoch: Instant::now(),
        samples: Mutex::new(Vec::new()),
        errors: Mutex::new((0, None)),
    };
    let producer: BaseProducer<ProbeContext> = BaseProducer::from_config_and_context(&config, context)?;
    producer.client().fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let (payloads, keys) = (payload_pool(PROBE_BYTES), key_pool());
    let pctx = producer.context();
    let start = Instant::now();
    let interval = Duration::from_nanos(1_000_000_000 / PROBE_RATE);
    let (mut ended_us, mut next_poll) = (None, start);
    let mut sent = 0u64;
    loop {
        let now = Instant::now();
        match (time, watch) {
            (Some(t), _) if now >= start + t => break,
            (None, Some(w)) if now >= next_poll => {
                if w() {
                    ended_us = Some(pctx.epoch.elapsed().as_micros() as u64);
                    break;
                }
                if now >= start + CLEANING_LIMIT {
                    break;
                }
                next_poll = now + POLL;
            }
            _ => {}
        }
        let due = start + interval * sent as u32;
        if now < due {
            producer.poll(due - now);
            continue;
        }
        let i = sent as usize;
        let record = BaseRecord::with_opaque_to(topic, pctx.epoch.elapsed().as_micros() as usize)
            .payload(&payloads[i % payloads.len()])
            .key(&keys[i % keys.len()]);
        if producer.send(record).is_err() {
            producer.poll(Duration::from_millis(1));
        }
        sent += 1;
    }
    producer.flush(FLUSH_TIMEOUT)?;
    let samples = std::mem::take(&mut *pctx.samples.lock().expect("samples"));
    let (errors, first_error) = std::mem::take(&mut *pctx.errors.lock().expect("errors"));
    let stats = AckStats {
        acked: samples.len() as u64,
        acked_bytes: (samples.len() * PROBE_BYTES) as u64,
        errors,
        first_error,
        hist: new_histogram(),
        record_from_us: 0,
    };
    let secs = start.elapsed().as_secs_f64();
    Ok((Probed { stats, secs, ended_us }, samples))
}

/// The produce→ack histogram of the samples sent in `[from_us, to_us)`.
fn histogram(samples: &[(u64, u64)], from_us: u64, to_us: u64) -> Histogram<u64> {
    let mut h = new_histogram();
    for &(_, latency) in samples.iter().filter(|(sent, _)| (from_us..to_us).contains(sent)) {
        record_us(&mut h, latency);
    }
    h
}
