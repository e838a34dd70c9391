//! One broker's part of a run: start it (or use the external one), time its start to a first
//! acknowledged record, run every chosen workload against it (librdkafka, then Kafka's perf
//! tools), read its memory once its topics are gone and the clients have disconnected, and
//! stop it. The same steps for every broker; only the [`Flavor`] differs.

use std::time::Duration;

use anyhow::Result;

use crate::broker::{procfs, BrokerProcess, Flavor, ProcWatch};
use crate::cli::Args;
use crate::kafka_tool::KafkaTool;
use crate::report::{table, BrokerRun, StartTimes, WorkloadResult};
use crate::workloads::{
    cleaner, connections, consume, disturbance, latency, perf_test, produce, startup, transactions, Ctx,
};

/// Pause between the last workload and the final reading of the broker's memory.
const SETTLE: Duration = Duration::from_secs(2);
/// The produce row whose maximum the latency workload's rate is compared with.
const LATENCY_MAX_ROW: &str = "produce 1KB acks=1 none unkeyed";

/// The broker a session runs against.
pub enum Target {
    /// Started (and stopped) by the harness, as one node or a cluster of `nodes`.
    Started { flavor: Box<dyn Flavor>, nodes: usize },
    /// Already running at `bootstrap`; CPU and RSS only with its pid.
    External {
        bootstrap: String,
        pid: Option<u32>,
        metrics: Option<String>,
    },
}

/// What the workloads need that does not change during a session.
pub struct Plan<'a> {
    pub args: &'a Args,
    /// Kafka's perf tools, when they are to run.
    pub perf_tool: Option<&'a KafkaTool>,
    /// Records/s of the latency workload (the same for every broker).
    pub latency_rate: u64,
    pub latency_rate_source: String,
}

pub fn run(plan: &Plan, target: &Target) -> Result<BrokerRun> {
    let args = plan.args;
    let mut started = match target {
        Target::Started { flavor, nodes } => {
            eprintln!(
                "==== starting {} ({nodes} node{})",
                flavor.name(),
                if *nodes == 1 { "" } else { "s" }
            );
            Some(BrokerProcess::start(
                flavor.as_ref(),
                &args.scratch_dir,
                args.partitions,
                *nodes,
                args.keep,
            )?)
        }
        Target::External { .. } => None,
    };
    let mut run = match (&started, target) {
        (Some(b), _) => BrokerRun {
            name: b.name.clone(),
            nodes: b.nodes,
            short_name: b.short_name.clone(),
            description: format!("{}; data in {}", b.description, b.dir().display()),
            bootstrap: b.bootstrap.clone(),
            settings: b.settings.clone(),
            ..empty_run()
        },
        (None, Target::External { bootstrap, pid, .. }) => BrokerRun {
            name: "external broker".to_string(),
            nodes: 1,
            short_name: "external".to_string(),
            description: match pid {
                Some(p) => format!("external broker (pid {p})"),
                None => "external broker (no --broker-pid: CPU and RSS n/a)".to_string(),
            },
            bootstrap: bootstrap.clone(),
            ..empty_run()
        },
        (None, Target::Started { .. }) => unreachable!("a started target has a process"),
    };
    let (pids, metrics, local_port) = match (&started, target) {
        (Some(b), _) => (Some(b.pids()), b.metrics.clone(), Some(b.port)),
        (
            None,
            Target::External {
                bootstrap,
                pid,
                metrics,
            },
        ) => {
            let port = pid.and(bootstrap.rsplit(':').next()).and_then(|p| p.parse().ok());
            (pid.map(|p| vec![p]), metrics.iter().cloned().collect(), port)
        }
        (None, Target::Started { .. }) => (None, Vec::new(), None),
    };
    let replication_factor = started.as_ref().map_or(1, |b| b.nodes);

    let watch = pids.clone().map(ProcWatch::start);
    let ctx = Ctx::new(
        args,
        run.bootstrap.clone(),
        watch.as_ref(),
        metrics,
        local_port,
        replication_factor,
    )?;
    if let Some(b) = &started {
        let first_ack = startup::first_ack(&ctx, b.spawned_at);
        if let Err(e) = &first_ack {
            run.failures.push(format!("start-up probe: {e:#}"));
        }
        let times = StartTimes {
            listening_secs: b.listening_after.as_secs_f64(),
            first_ack_secs: first_ack.ok().map(|d| d.as_secs_f64()),
        };
        eprintln!(
            "   {}: listening after {:.2} s, first record acknowledged after {} s",
            b.name,
            times.listening_secs,
            times.first_ack_secs.map_or("n/a".to_string(), |s| format!("{s:.2}"))
        );
        run.start = Some(times);
    }
    if replication_factor > 1 {
        if let Err(e) = ctx.warm_group_coordinator() {
            run.failures.push(format!("group coordinator warm-up: {e:#}"));
        }
    }
    run_workloads(plan, &ctx, &mut started, &mut run);

    // Read the broker's memory once its topics are gone and the clients have disconnected
    // (record data still referenced by a last response is released with its connection).
    ctx.delete_all_topics();
    drop(ctx);
    drop(watch);
    std::thread::sleep(SETTLE);
    let status_mb = |field: &str| {
        pids.as_deref()
            .and_then(|p| procfs::status_kib_sum(p, field))
            .map(|k| k as f64 / 1024.0)
    };
    run.rss_end_mb = status_mb("VmRSS:");
    run.rss_anon_end_mb = status_mb("RssAnon:");
    run.rss_file_end_mb = status_mb("RssFile:");
    run.rss_hwm_mb = status_mb("VmHWM:");
    run.rss_anon_peak_mb = run
        .workloads
        .iter()
        .filter_map(|w| w.broker.map(|u| u.rss_anon_peak_mb))
        .reduce(f64::max);
    run.cpu_total_secs = pids.as_deref().and_then(procfs::cpu_secs_sum);
    run.shutdown_secs = started.as_mut().and_then(|b| b.stop()).map(|d| d.as_secs_f64());
    Ok(run)
}

fn empty_run() -> BrokerRun {
    BrokerRun {
        name: String::new(),
        nodes: 1,
        short_name: String::new(),
        description: String::new(),
        bootstrap: String::new(),
        settings: Vec::new(),
        start: None,
        workloads: Vec::new(),
        rss_end_mb: None,
        rss_anon_end_mb: None,
        rss_file_end_mb: None,
        rss_hwm_mb: None,
        rss_anon_peak_mb: None,
        cpu_total_secs: None,
        shutdown_secs: None,
        failures: Vec::new(),
    }
}

/// Runs the chosen workloads in order; a failed workload is reported and the run goes on.
fn run_workloads(plan: &Plan, ctx: &Ctx, started: &mut Option<BrokerProcess>, run: &mut BrokerRun) {
    let args = plan.args;
    let mut sources = consume::Sources::default();
    let fail = |run: &mut BrokerRun, what: &str, e: anyhow::Error| {
        eprintln!("   failed: {e:#}");
        run.failures.push(format!("{what}: {e:#}"));
    };

    if args.wants("produce") {
        let chosen = produce::matrix().into_iter().filter(|s| args.wants_variant(&s.name()));
        for spec in chosen {
            if broker_gone(started) {
                break;
            }
            eprintln!("== {}", spec.name());
            let attempts = ctx.least_disturbed(
                || produce::run(ctx, &spec),
                |(r, _)| r.other_cores,
                |(_, topic)| ctx.delete_topics(&[topic]),
            );
            match attempts {
                Ok(((mut r, topic), seen)) => {
                    disturbance::annotate(&mut r, &seen);
                    progress(&r);
                    if spec.is_base_1kb() {
                        sources.topic_1kb = Some(topic);
                    } else if spec.is_base_100b() {
                        sources.topic_100b = Some(topic);
                    } else {
                        ctx.delete_topics(&[topic]);
                    }
                    run.workloads.push(r);
                }
                Err(e) => fail(run, &spec.name(), e),
            }
        }
    }

    if args.wants("consume") && !broker_gone(started) {
        eprintln!("== consume");
        match least_disturbed_rows(ctx, || consume::run(ctx, &sources)) {
            Ok(rs) => {
                rs.iter().for_each(progress);
                run.workloads.extend(rs);
            }
            Err(e) => fail(run, "consume", e),
        }
    }
    let kept: Vec<String> = [sources.topic_1kb, sources.topic_100b].into_iter().flatten().collect();
    ctx.delete_topics(&kept);

    if let Some(tool) = plan
        .perf_tool
        .filter(|_| args.wants("perf-test") && !broker_gone(started))
    {
        let measured = |name: &str| {
            run.workloads
                .iter()
                .find(|w| w.name == name && w.generator == "librdkafka")
                .map(|w| w.records_per_sec)
        };
        let (rs, failures) = perf_test::run(ctx, tool, measured);
        rs.iter().for_each(progress);
        failures.iter().for_each(|f| eprintln!("   failed: {f}"));
        run.workloads.extend(rs);
        run.failures.extend(failures);
    }

    if args.wants("transactions") && !broker_gone(started) {
        let measured = |name: &str| {
            run.workloads
                .iter()
                .find(|w| w.name == name && w.generator == "librdkafka")
                .map(|w| w.records_per_sec)
        };
        let (rs, failures) = transactions::run(ctx, plan.perf_tool, measured);
        rs.iter().for_each(progress);
        failures.iter().for_each(|f| eprintln!("   failed: {f}"));
        run.workloads.extend(rs);
        run.failures.extend(failures);
    }

    if args.wants("latency") && !broker_gone(started) {
        eprintln!(
            "== latency at {} rec/s ({})",
            plan.latency_rate, plan.latency_rate_source
        );
        match least_disturbed_rows(ctx, || latency::run(ctx, plan.latency_rate, &plan.latency_rate_source)) {
            Ok(mut rs) => {
                rs.iter().for_each(progress);
                let max = run
                    .workloads
                    .iter()
                    .find(|w| w.generator == "librdkafka" && w.name == LATENCY_MAX_ROW)
                    .map(|w| w.records_per_sec);
                if let (Some(max), Some(e2e)) = (max, rs.first_mut()) {
                    if plan.latency_rate as f64 > max / 2.0 {
                        e2e.notes.push(format!(
                            "the rate is over half of this broker's {LATENCY_MAX_ROW} maximum ({:.0} rec/s): the latency is that of a loaded broker",
                            max
                        ));
                    }
                }
                run.workloads.extend(rs);
            }
            Err(e) => fail(run, "latency", e),
        }
    }

    if args.wants("connections") && !broker_gone(started) {
        eprintln!(
            "== connections: {} idle + {} busy",
            args.idle_connections, args.busy_producers
        );
        match least_disturbed_rows(ctx, || connections::run(ctx).map(|r| vec![r])) {
            Ok(rs) => {
                rs.iter().for_each(progress);
                run.workloads.extend(rs);
            }
            Err(e) => fail(run, "connections", e),
        }
    }
    // The cleaner's window comes from Sluice's /metrics: Kafka has no row.
    if args.wants("cleaner") && !ctx.metrics.is_empty() && !broker_gone(started) {
        eprintln!("== cleaner: {} MB dirty", args.cleaner_mb());
        match least_disturbed_rows(ctx, || cleaner::run(ctx, args.cleaner_mb())) {
            Ok(rs) => {
                rs.iter().for_each(progress);
                run.workloads.extend(rs);
            }
            Err(e) => fail(run, "cleaner", e),
        }
    }
    if broker_gone(started) {
        if let Some(b) = started.as_ref() {
            let tail = b.log_tail();
            eprintln!("{} exited during the run; its log ends with:\n{tail}", b.name);
            run.failures
                .push(format!("{} exited during the run; its log ends with:\n{tail}", b.name));
        }
    }
}

/// Runs a workload that yields several rows until it is undisturbed (see `disturbance`).
fn least_disturbed_rows(ctx: &Ctx, run: impl FnMut() -> Result<Vec<WorkloadResult>>) -> Result<Vec<WorkloadResult>> {
    let most = |rs: &Vec<WorkloadResult>| rs.iter().filter_map(|r| r.other_cores).reduce(f64::max);
    let (mut rs, seen) = ctx.least_disturbed(run, most, |_| {})?;
    rs.iter_mut().for_each(|r| disturbance::annotate(r, &seen));
    Ok(rs)
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
        "   {} [{}]: {} rec/s, {:.1} MB/s{lat}{broker}{}",
        r.name,
        r.generator,
        table::rate(r.records_per_sec),
        r.mb_per_sec,
        if r.errors > 0 {
            format!(", {} errors", r.errors)
        } else {
            String::new()
        }
    );
}
