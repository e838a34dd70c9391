//! (e) The log cleaner (Sluice only: the window of a cleaning comes from its /metrics, which
//! Kafka exposes only over JMX). A one-partition compacted topic is filled with `--cleaner-mb`
//! of 1 KB records over 10 000 keys while its `min.cleanable.dirty.ratio` is 1.0 (never
//! cleanable); then a paced producer (acks=all, 100 B keyed records, linger 0, 1 000 records/s)
//! writes to the same partition for `PROBE` with the cleaner idle. The ratio is then set to
//! 0.01 and the same producer runs again until the cleaning of the whole dirty log has ended;
//! only records sent while the cleaner was reading count (from its first read to its next
//! finished run, `sluice_log_cleaner_*`, polled every 50 ms). Rows: the cleaner's rate (MB of
//! dirty log per second: half the bytes it read, which is the dirty section mapped and then
//! rewritten, over the cleaning's time) and the produce→ack latency idle vs. running.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::{key_pool, payload_pool, producer_config, AckContext, AckStats, Ctx, FLUSH_TIMEOUT, MB};
use crate::report::WorkloadResult;

const RECORD_BYTES: usize = 1024;
const PROBE_BYTES: usize = 100;
const PROBE_RATE: u64 = 1_000;
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
    let probe_time = ctx.args.run_time().max(Duration::from_secs(5));

    let (idle, idle_bracket) = ctx.measure(|| probe(ctx, &topic, Some(probe_time), None));
    let idle = idle?;
    let metric = |name: &str| ctx.broker_metric(name, None).unwrap_or(0.0);
    let (runs_before, read_before) = (metric("sluice_log_cleaner_runs_total"), metric("sluice_log_cleaner_bytes_read_total"));
    ctx.alter_topic_configs(&topic, &configs("0.01"))?;
    let (running, running_bracket) = ctx.measure(|| {
        let watch = |started: &mut Option<Instant>| -> Option<Instant> {
            if started.is_none() && metric("sluice_log_cleaner_bytes_read_total") > read_before {
                *started = Some(Instant::now());
            }
            (metric("sluice_log_cleaner_runs_total") > runs_before).then(Instant::now)
        };
        probe(ctx, &topic, None, Some(&watch))
    });
    let running = running?;
    let read = metric("sluice_log_cleaner_bytes_read_total") - read_before;
    let last_rate = metric("sluice_log_cleaner_last_run_bytes_per_second");

    let Some(window) = running.window else {
        bail!("no cleaning finished within {CLEANING_LIMIT:?}");
    };
    let cleaning_secs = window.as_secs_f64().max(1e-3);
    let mut rate = ctx.result(&format!("cleaner: {dirty_mb} MB dirty, 1KB over 10k keys"), "cleaner", &running_bracket);
    rate.generator = "librdkafka";
    rate.set_rates(filled.records, (read / 2.0) as u64, cleaning_secs);
    rate.broker_cpu_us_per_record = None;
    rate.param("dirty_records", filled.records)
        .param("dirty_bytes", filled.bytes)
        .param("fill_secs", format!("{fill_secs:.1}"))
        .param("cleaner_bytes_read", read as u64)
        .param("cleaning_secs", format!("{cleaning_secs:.2}"))
        .param("broker_last_run_mb_per_sec_read", format!("{:.1}", last_rate / MB));
    rate.notes.push(format!(
        "MB/s = dirty MB cleaned (half of the {:.0} MB the cleaner read: map, then rewrite) over the {cleaning_secs:.1} s from its first read to its finished run (polled every {} ms); records/s is the dirty records over that time",
        read / MB,
        POLL.as_millis()
    ));

    let name = |what: &str| format!("cleaner: produce 100B acks=all @ {PROBE_RATE} rec/s, {what}");
    let mut rows = vec![rate];
    for (label, outcome, bracket) in [("cleaner idle", idle, idle_bracket), ("cleaner running", running, running_bracket)] {
        let mut r = ctx.result(&name(label), "latency", &bracket);
        r.param("record_bytes", PROBE_BYTES).param("acks", "all").param("rate", PROBE_RATE);
        r.set_rates(outcome.stats.acked, outcome.stats.acked_bytes, outcome.secs);
        r.set_latency("ack", &outcome.stats.hist, false);
        r.errors = outcome.stats.errors;
        if let Some(e) = &outcome.stats.first_error {
            r.notes.push(format!("delivery error: {e}"));
        }
        r.notes.push(format!(
            "{} records counted, sent to the compacted partition being {}",
            outcome.stats.hist.len(),
            if label == "cleaner idle" { "left alone (ratio 1.0)" } else { "cleaned" }
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
    let producer: BaseProducer<AckContext> = BaseProducer::from_config_and_context(&config, AckContext::new(Instant::now()))?;
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
    /// With a watch: the time from the cleaner's first read to its finished run.
    window: Option<Duration>,
}

/// A watch of the cleaner: notes in its argument when the cleaning started; returns when it
/// ended, once it has.
type Watch<'a> = dyn Fn(&mut Option<Instant>) -> Option<Instant> + 'a;

/// Sends PROBE_RATE records/s (acks=all, keyed, linger 0) for `time`, or, with a `watch`,
/// until the cleaning ended; with a watch only records sent after the cleaning started count.
fn probe(ctx: &Ctx, topic: &str, time: Option<Duration>, watch: Option<&Watch<'_>>) -> Result<Probed> {
    let mut config = producer_config(&ctx.bootstrap, "all", "none", 0);
    config.set("linger.ms", "0");
    let producer: BaseProducer<AckContext> = BaseProducer::from_config_and_context(&config, AckContext::new(Instant::now()))?;
    producer.client().fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let (payloads, keys) = (payload_pool(PROBE_BYTES), key_pool());
    let pctx = producer.context();
    if watch.is_some() {
        pctx.inner.lock().expect("ack stats").record_from_us = u64::MAX;
    }
    let start = Instant::now();
    let interval = Duration::from_micros(1_000_000 / PROBE_RATE);
    let (mut started, mut ended, mut next_poll) = (None, None, start);
    let mut sent = 0u64;
    loop {
        let now = Instant::now();
        match (time, watch) {
            (Some(t), _) if now >= start + t => break,
            (None, Some(w)) if now >= next_poll => {
                let was = started.is_some();
                ended = w(&mut started);
                if !was && started.is_some() {
                    pctx.inner.lock().expect("ack stats").record_from_us = pctx.now_us();
                }
                if ended.is_some() || now >= start + CLEANING_LIMIT {
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
        let record = BaseRecord::with_opaque_to(topic, pctx.now_us() as usize)
            .payload(&payloads[i % payloads.len()])
            .key(&keys[i % keys.len()]);
        if producer.send(record).is_err() {
            producer.poll(Duration::from_millis(1));
        }
        sent += 1;
    }
    producer.flush(FLUSH_TIMEOUT)?;
    let window = started.zip(ended).map(|(s, e)| e.saturating_duration_since(s));
    let secs = match (time, window) {
        (Some(t), _) => t.as_secs_f64(),
        (None, Some(w)) => w.as_secs_f64(),
        (None, None) => start.elapsed().as_secs_f64(),
    };
    Ok(Probed {
        stats: pctx.take_stats(),
        secs,
        window,
    })
}
