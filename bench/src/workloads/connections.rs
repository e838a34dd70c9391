//! (d) Many connections: `--idle-connections` librdkafka producers that connect (a metadata
//! request) and then sit idle, while `--busy-producers` producers (1 KB, acks=1, lz4 off,
//! linger 5 ms) send at full speed into one topic for the run time. Reports the busy
//! producers' total rate and their produce→ack latency, the broker's open connections and
//! what the idle ones cost it in RSS.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rdkafka::producer::{BaseProducer, Producer};

use super::produce::{self, Spec};
use super::{base_config, new_histogram, Ctx};
use crate::broker::procfs::status_kib_sum;
use crate::report::WorkloadResult;

/// Bound on opening all idle connections.
const IDLE_SETUP_LIMIT: Duration = Duration::from_secs(90);

pub fn run(ctx: &Ctx) -> Result<WorkloadResult> {
    let topic = ctx.create_topic("connections", ctx.args.partitions)?;
    let rss_kib = || ctx.watch.and_then(|w| status_kib_sum(w.pids(), "VmRSS:"));
    let connections_before = ctx.broker_connections();
    let rss_before = rss_kib();

    let setup = Instant::now();
    let mut idle: Vec<BaseProducer> = Vec::with_capacity(ctx.args.idle_connections);
    let mut idle_errors = 0u64;
    while idle.len() < ctx.args.idle_connections && setup.elapsed() < IDLE_SETUP_LIMIT {
        let p: BaseProducer = base_config(&ctx.bootstrap).create()?;
        match p.client().fetch_metadata(Some(&topic), Duration::from_secs(10)) {
            Ok(_) => idle.push(p),
            Err(_) => idle_errors += 1,
        }
        if idle_errors > 20 {
            break;
        }
    }
    let idle_setup_secs = setup.elapsed().as_secs_f64();
    let idle_connected = idle.len();
    let connections_idle = ctx.broker_connections();
    let rss_idle = rss_kib();

    let spec = Spec {
        record_bytes: 1024,
        acks: "1",
        compression: "none",
        keyed: false,
        linger_ms: 5,
        batch_records: None,
    };
    let run_time = ctx.args.run_time();
    let (outcomes, bracket) = ctx.measure(|| {
        thread::scope(|s| {
            let busy: Vec<_> = (0..ctx.args.busy_producers)
                .map(|_| s.spawn(|| produce::blast(&ctx.bootstrap, &spec, &topic, run_time)))
                .collect();
            let sampler = s.spawn(|| {
                thread::sleep(run_time / 2 + Duration::from_millis(500));
                ctx.broker_connections()
            });
            let outcomes = busy
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow!("busy producer panicked"))?)
                .collect::<Result<Vec<_>>>();
            (outcomes, sampler.join().ok().flatten())
        })
    });
    let (outcomes, connections_busy) = outcomes;
    let outcomes = outcomes?;
    drop(idle);

    let mut hist = new_histogram();
    let (mut acked, mut bytes, mut errors, mut elapsed) = (0, 0, 0, 0.0f64);
    let mut first_error = None;
    let mut slowest_rate = f64::MAX;
    for o in &outcomes {
        acked += o.acked;
        bytes += o.acked_bytes;
        errors += o.errors;
        elapsed = elapsed.max(o.elapsed.as_secs_f64());
        slowest_rate = slowest_rate.min(o.acked as f64 / o.elapsed.as_secs_f64().max(1e-9));
        let _ = hist.add(&o.hist);
        if first_error.is_none() {
            first_error.clone_from(&o.first_error);
        }
    }
    let name = format!(
        "connections: {} idle + {} busy producers 1KB acks=1",
        ctx.args.idle_connections, ctx.args.busy_producers
    );
    let mut r = ctx.result(&name, "connections", &bracket);
    r.set_rates(acked, bytes, elapsed);
    r.set_latency("ack@max", &hist, false);
    r.errors = errors;
    r.param("idle_connections_requested", ctx.args.idle_connections)
        .param("idle_clients_connected", idle_connected)
        .param("idle_setup_secs", format!("{idle_setup_secs:.2}"))
        .param("busy_producers", ctx.args.busy_producers)
        .param("slowest_producer_rec_per_sec", format!("{slowest_rate:.0}"));
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |c| format!("{c:.0}"));
    r.param("broker_connections_before", opt(connections_before))
        .param("broker_connections_idle", opt(connections_idle))
        .param("broker_connections_busy", opt(connections_busy));
    if let (Some(a), Some(b)) = (rss_before, rss_idle) {
        r.param(
            "broker_rss_idle_delta_mb",
            format!("{:.1}", (b as f64 - a as f64) / 1024.0),
        );
    }
    if idle_errors > 0 {
        r.notes.push(format!("{idle_errors} idle clients failed to connect"));
    }
    if let Some(e) = first_error {
        r.notes.push(format!("first error: {e}"));
    }
    ctx.delete_topics(&[topic]);
    Ok(r)
}
