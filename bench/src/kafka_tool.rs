//! Apache Kafka's own programs (its broker, storage tool and perf tools), run by main class
//! through `compat-tests/kafka-tool` from the jars `compat-tests/kafka/resolve.sh` fetched from
//! Maven Central. kafka-tool defaults to tool-friendly JVM flags (serial GC, C1 only); here
//! every JVM gets the flags Kafka's own `kafka-run-class.sh` gives it, so the broker and the
//! Java load generator run as they would from a Kafka distribution. Also runs a short-lived
//! program with a time bound and its output captured.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// `KAFKA_JVM_PERFORMANCE_OPTS` as Kafka's `kafka-run-class.sh` sets it by default.
pub const JVM_PERFORMANCE_OPTS: &str = "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true";
/// The heap Kafka's `kafka-producer-perf-test.sh` and `kafka-consumer-perf-test.sh` give.
pub const PERF_TOOL_HEAP: &str = "-Xmx512M";

/// compat-tests/kafka-tool, and the Kafka version its jars are.
#[derive(Debug, Clone)]
pub struct KafkaTool {
    path: PathBuf,
    pub version: String,
}

impl KafkaTool {
    /// Finds the launcher and resolves the jars (a no-op once resolved; on a fresh machine
    /// Maven downloads them here, before any broker's clock starts).
    pub fn new(path: &Path) -> Result<KafkaTool> {
        let path = path
            .canonicalize()
            .with_context(|| format!("Kafka launcher {} (compat-tests/kafka-tool)", path.display()))?;
        let resolve = path
            .parent()
            .map(|d| d.join("kafka").join("resolve.sh"))
            .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
        let out = Command::new(&resolve)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("run {}", resolve.display()))?;
        if !out.status.success() {
            bail!("{} failed ({})", resolve.display(), out.status);
        }
        // It prints …/.kafka/<version>/lib.
        let lib = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let version = lib
            .parent()
            .and_then(Path::file_name)
            .map(|v| v.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("no version in the lib folder {}", lib.display()))?;
        Ok(KafkaTool { path, version })
    }

    /// A command running Kafka's `tool` with `heap` and Kafka's default JVM flags.
    pub fn command(&self, tool: &str, heap: &str) -> Command {
        let mut c = Command::new(&self.path);
        c.arg(tool)
            .env("KAFKA_HEAP_OPTS", heap)
            .env("KAFKA_JVM_PERFORMANCE_OPTS", JVM_PERFORMANCE_OPTS);
        c
    }
}

/// What a bounded run printed, and how it ended.
#[derive(Debug)]
pub struct Finished {
    /// None when it was killed at the time bound.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// "exit status 1: <last stderr line>" or "killed after the time bound".
    pub fn failure(&self) -> String {
        let last = self.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        match self.status {
            Some(s) => format!("{s}: {last}"),
            None => format!("killed at the time bound: {last}"),
        }
    }
}

/// Runs `command` to its end, or kills it once `limit` has passed; captures its output.
pub fn run_bounded(mut command: Command, limit: Duration) -> Result<Finished> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("start a Kafka tool")?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    Ok(Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}
