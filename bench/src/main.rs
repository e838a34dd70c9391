//! sluice-bench: the benchmark harness. Measures the machine's ceilings, then runs every
//! workload against each broker in turn — a release `sluice` and Apache Kafka, each started on
//! a temp data dir, one at a time, as one node and then (`--cluster N`) as an N-node cluster on
//! this machine (or one external broker given by `--bootstrap`) — with librdkafka and with
//! Kafka's own perf tools, and writes the comparison table, JSON and latency plots to `--out`.
//!
//! Benchmarks report; they do not judge. A workload that fails is reported and the run goes
//! on; only a harness that cannot start at all exits non-zero.

mod broker;
mod ceilings;
mod cli;
mod kafka_tool;
mod report;
mod session;
mod workloads;

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Parser;

use broker::kafka::Kafka;
use broker::sluice::Sluice;
use cli::Args;
use kafka_tool::KafkaTool;
use report::{compare, Machine, Report};
use session::{Plan, Target};

/// Records/s of the latency workload unless `--latency-rate` says otherwise: one fixed rate
/// for every broker, so their latencies are at the same load. 1 KB records at this rate are
/// well under what either broker takes on this 2-core machine with the generator beside it.
const DEFAULT_LATENCY_RATE: u64 = 50_000;

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

    // Kafka's jars are resolved (downloaded on a fresh machine) before any broker starts.
    let kafka_broker = args.bootstrap.is_none() && args.brokers.iter().any(|b| b == "kafka");
    // The perf tools are the perf-test workload's generator and half of the transactions one.
    let perf_tools = args.wants("perf-test") || args.wants("transactions");
    let kafka_tool = match KafkaTool::new(&args.kafka_tool) {
        Ok(tool) => Some(tool).filter(|_| kafka_broker || perf_tools),
        Err(e) if kafka_broker => return Err(e),
        Err(e) if perf_tools => {
            eprintln!("Kafka's perf tools will not run: {e:#}");
            None
        }
        Err(_) => None,
    };
    let targets = targets(args, kafka_tool.as_ref())?;
    let (latency_rate, latency_rate_source) = match args.latency_rate {
        Some(r) => (r, "--latency-rate".to_string()),
        None => (
            DEFAULT_LATENCY_RATE,
            "the fixed default, the same for every broker".to_string(),
        ),
    };
    let plan = Plan {
        args,
        perf_tool: kafka_tool.as_ref(),
        latency_rate,
        latency_rate_source,
    };
    let mut brokers = Vec::new();
    for target in &targets {
        brokers.push(session::run(&plan, target)?);
    }

    let report = Report {
        started_unix_secs,
        machine: Machine::probe(),
        run_secs_per_workload: args.run_time().as_secs_f64(),
        quick: args.quick,
        latency_rate,
        ceilings,
        comparison: compare::rows(&brokers),
        brokers,
        wall_secs: wall.elapsed().as_secs_f64(),
    };
    let markdown = report::write_all(&report, &args.out)?;
    println!("{markdown}");
    eprintln!("results written to {}", args.out.display());
    Ok(())
}

/// The brokers of this run, in the order they run: the external one, or each of `--brokers`
/// as one node, then (with `--cluster`) each as a cluster.
fn targets(args: &Args, kafka_tool: Option<&KafkaTool>) -> Result<Vec<Target>> {
    if let Some(bootstrap) = &args.bootstrap {
        return Ok(vec![Target::External {
            bootstrap: bootstrap.clone(),
            pid: args.broker_pid,
            metrics: args.metrics.clone(),
        }]);
    }
    let mut targets = Vec::new();
    for nodes in args.node_counts() {
        for name in &args.brokers {
            let flavor: Box<dyn broker::Flavor> = match (name.as_str(), kafka_tool) {
                ("sluice", _) => Box::new(Sluice::new(&args.sluice_bin)?),
                ("kafka", Some(tool)) => Box::new(Kafka::new(tool.clone(), &args.kafka_heap)),
                _ => anyhow::bail!("no way to start broker {name:?}"),
            };
            targets.push(Target::Started { flavor, nodes });
        }
    }
    Ok(targets)
}
