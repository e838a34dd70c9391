//! The `sluice` binary: parse the command line, load settings, run a node until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// A Kafka wire-protocol-compatible broker.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
struct Cli {
    /// The TOML settings file (Kafka's setting names; dotted names nest).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Sets one setting, overriding the file: `--override log.dirs=/tmp/d` (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match sluice::config::load(cli.config.as_deref(), &cli.overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(settings.log_filter()));
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sluice: bad value for setting 'logging.level': {e}");
            return ExitCode::from(2);
        }
    };
    // Colours only on a terminal: a log file (make cluster, systemd) gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(settings))
}

async fn run(settings: sluice::Settings) -> ExitCode {
    let server = match sluice::Server::start(settings).await {
        Ok(s) => s,
        Err(e) => {
            error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    wait_for_signal().await;
    server.shutdown().await;
    info!("stopped");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
    }
}
