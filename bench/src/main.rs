//! sluice-bench: the benchmark harness of issue 5. Measures the machine's ceilings, starts a
//! release `sluice` on a temp data dir (or uses `--bootstrap`), runs the workloads through
//! librdkafka, and writes the table, JSON and latency plot to `--out`.
//!
//! Benchmarks report; they do not judge. A workload that fails is reported and the run goes
//! on; only a harness that cannot start at all exits non-zero.

mod broker;
mod ceilings;
mod cli;
mod report;
mod workloads;

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Parser;

use broker::{BrokerProcess, ProcWatch};
use cli::Args;
use report::{table, Machine, Report, WorkloadResult};
use workloads::{connections, consume, latency, produce, Ctx};

/// Pause between the last workload and the final reading of the broker's memory.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);
/// Latency workload rate as a share of the produce-only maximum. The issue suggests 50%, but
/// with the generator on the same two cores that is not half load: the paced producer plus the
/// consumer cost about twice what the producer alone did, so 50% saturates the machine.
const LATENCY_SHARE_OF_MAX: f64 = 0.25;
/// Latency workload rate when no produce maximum was measured and none was given.
const DEFAULT_LATENCY_RATE: u64 = 10_000;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    args.validate()?;
    let wall = Instant::now();
    let started_unix_secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();

    let mut ceilings = Vec::new();
    if args.wants("ceilings") {
        eprintln!("== ceilings");
        ceilings.push(ceilings::loopback_tcp(if args.quick { 2 } else { 5 }));
        ceilings.push(ceilings::disk_dsync(&args.scratch_dir, args.disk_bytes()));
        for c in &ceilings {
            eprintln!("   {}: {:?} MB/s", c.name, c.mb_per_sec.map(|m| m.round()));
        }
    }

    let mut started = match &args.bootstrap {
        Some(_) => None,
        None => {
            eprintln!("== starting {}", args.sluice_bin.display());
            Some(BrokerProcess::start(
                &args.sluice_bin,
                &args.scratch_dir,
                args.partitions,
                args.keep,
            )?)
        }
    };
    let (bootstrap, pid, metrics, broker_desc) = match &started {
        Some(b) => (
            b.bootstrap.clone(),
            b.pid(),
            Some(b.metrics.clone()),
            format!("sluice (release, started by the harness on {})", b.data_dir().display()),
        ),
        None => (
            args.bootstrap.clone().unwrap_or_default(),
            args.broker_pid,
            args.metrics.clone(),
            match args.broker_pid {
                Some(p) => format!("external broker (pid {p})"),
                None => "external broker (no --broker-pid: CPU and RSS n/a)".to_string(),
            },
        ),
    };
    let watch = pid.map(ProcWatch::start);
    let ctx = Ctx::new(args, bootstrap.clone(), watch.as_ref(), metrics)?;
    let results = run_workloads(&ctx, &mut started);

    // Read the broker's memory once its topics are gone and the clients have disconnected
    // (record data still referenced by a last response is released with its connection).
    ctx.delete_all_topics();
    drop(ctx);
    drop(watch);
    std::thread::sleep(SETTLE);
    let status_mb = |field: &str| {
        pid.and_then(|p| broker::status_kib(p, field))
            .map(|k| k as f64 / 1024.0)
    };
    let broker_rss_end_mb = status_mb("VmRSS:");
    let broker_rss_anon_end_mb = status_mb("RssAnon:");
    let broker_rss_file_end_mb = status_mb("RssFile:");
    let broker_rss_hwm_mb = status_mb("VmHWM:");
    let broker_cpu_total_secs = broker::cpu_secs(pid).filter(|_| pid.is_some());
    let broker_shutdown_secs = started.as_mut().and_then(|b| b.stop()).map(|d| d.as_secs_f64());
    drop(started);

    let report = Report {
        started_unix_secs,
        machine: Machine::probe(),
        broker: broker_desc,
        bootstrap,
        run_secs_per_workload: args.run_time().as_secs_f64(),
        quick: args.quick,
        ceilings,
        workloads: results,
        broker_rss_end_mb,
        broker_rss_anon_end_mb,
        broker_rss_file_end_mb,
        broker_rss_hwm_mb,
        broker_cpu_total_secs,
        broker_shutdown_secs,
        wall_secs: wall.elapsed().as_secs_f64(),
    };
    let markdown = report::write_all(&report, &args.out)?;
    println!("{markdown}");
    eprintln!("results written to {}", args.out.display());
    Ok(())
}

/// Runs the chosen workloads in order; a failed workload is reported and skipped.
fn run_workloads(ctx: &Ctx, started: &mut Option<BrokerProcess>) -> Vec<WorkloadResult> {
    let args = ctx.args;
    let mut results = Vec::new();
    let mut sources = consume::Sources::default();
    let mut max_1kb_rate: Option<f64> = None;

    if args.wants("produce") {
        let chosen = produce::matrix()
            .into_iter()
            .filter(|s| args.variants.as_ref().is_none_or(|v| s.name().contains(v.as_str())));
        for spec in chosen {
            if broker_gone(started) {
                break;
            }
            eprintln!("== {}", spec.name());
            match produce::run(ctx, &spec) {
                Ok((r, topic)) => {
                    progress(&r);
                    if spec.is_base_1kb() {
                        max_1kb_rate = Some(r.records_per_sec);
                        sources.topic_1kb = Some(topic);
                    } else if spec.is_base_100b() {
                        sources.topic_100b = Some(topic);
                    } else {
                        ctx.delete_topics(&[topic]);
                    }
                    results.push(r);
                }
                Err(e) => eprintln!("   failed: {e:#}"),
            }
        }
    }

    if args.wants("consume") && !broker_gone(started) {
        eprintln!("== consume");
        match consume::run(ctx, &sources) {
            Ok(rs) => {
                rs.iter().for_each(progress);
                results.extend(rs);
            }
            Err(e) => eprintln!("   failed: {e:#}"),
        }
    }
    let kept: Vec<String> = [sources.topic_1kb, sources.topic_100b].into_iter().flatten().collect();
    ctx.delete_topics(&kept);

    if args.wants("latency") && !broker_gone(started) {
        let (rate, source) = match (args.latency_rate, max_1kb_rate) {
            (Some(r), _) => (r, "--latency-rate".to_string()),
            (None, Some(max)) if max >= 4.0 => (
                (max * LATENCY_SHARE_OF_MAX) as u64,
                "25% of produce 1KB acks=1 max".to_string(),
            ),
            _ => (
                DEFAULT_LATENCY_RATE,
                "default (no produce maximum measured)".to_string(),
            ),
        };
        eprintln!("== latency at {rate} rec/s ({source})");
        match latency::run(ctx, rate, &source) {
            Ok(rs) => {
                rs.iter().for_each(progress);
                results.extend(rs);
            }
            Err(e) => eprintln!("   failed: {e:#}"),
        }
    }

    if args.wants("connections") && !broker_gone(started) {
        eprintln!(
            "== connections: {} idle + {} busy",
            args.idle_connections, args.busy_producers
        );
        match connections::run(ctx) {
            Ok(r) => {
                progress(&r);
                results.push(r);
            }
            Err(e) => eprintln!("   failed: {e:#}"),
        }
    }
    if broker_gone(started) {
        if let Some(b) = started.as_ref() {
            eprintln!("the broker exited during the run; its log ends with:\n{}", b.log_tail());
        }
    }
    results
}

/// True when the broker the harness started has exited (crashed) on its own.
fn broker_gone(started: &mut Option<BrokerProcess>) -> bool {
    started.as_mut().is_some_and(|b| b.exited())
}

fn progress(r: &WorkloadResult) {
    let lat = r
        .latency
        .as_ref()
        .map(|p| {
            format!(
                ", {} p50 {:.2} ms p99 {:.2} ms",
                r.latency_kind.unwrap_or(""),
                p.p50_ms,
                p.p99_ms
            )
        })
        .unwrap_or_default();
    let broker = r
        .broker
        .map(|u| format!(", broker {:.1} CPU s, RSS {:.0} MB", u.cpu_secs, u.rss_peak_mb))
        .unwrap_or_default();
    eprintln!(
        "   {}: {} rec/s, {:.1} MB/s{lat}{broker}{}",
        r.name,
        table::rate(r.records_per_sec),
        r.mb_per_sec,
        if r.errors > 0 {
            format!(", {} errors", r.errors)
        } else {
            String::new()
        }
    );
}
