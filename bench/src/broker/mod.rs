//! The broker under test as a process. One abstraction, [`Flavor`], with two implementations
//! ([`sluice::Sluice`] and [`kafka::Kafka`]) that only say how their broker is configured and
//! launched; starting it, timing its start, noticing a crash and stopping it is shared here
//! ([`BrokerProcess`]). The settings that matter for a fair comparison are chosen once, in
//! [`shared_settings`], and every flavor gives them to its broker. Never talks Kafka; the
//! workloads do that.

pub mod kafka;
pub mod metrics;
pub mod procfs;
pub mod sluice;

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use procfs::{ProcWatch, Usage};

/// Bound on a broker's start, from spawn to its client port accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a clean shutdown after SIGTERM (Kafka takes a few seconds).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the client port is tried while the broker starts.
const LISTEN_POLL: Duration = Duration::from_millis(10);

/// How one kind of broker is configured and launched.
pub trait Flavor {
    /// Name in tables and plots, e.g. "Sluice" or "Kafka 4.4.0".
    fn name(&self) -> String;
    /// Short name for the ratio column (`×Kafka`).
    fn short_name(&self) -> &'static str;
    /// Prepares `dir` (config files, storage format: work done before the process starts, so
    /// outside its start time) and returns how to start the broker with its client listener
    /// on 127.0.0.1:`port`, its data under `dir`, and the [`shared_settings`].
    fn launch(&self, dir: &Path, port: u16, partitions: i32) -> Result<Launch>;
}

/// What a flavor hands back: the command, and what the harness should know about the broker.
#[derive(Debug)]
pub struct Launch {
    pub command: Command,
    /// One line for the report: binary, JVM options, how it was set up.
    pub description: String,
    /// Every setting given to the broker that matters for the comparison, as given.
    pub settings: Vec<(String, String)>,
    /// The broker's Prometheus endpoint (Sluice only).
    pub metrics: Option<String>,
    /// The log to show when the broker fails (stdout and stderr go to `console.log` anyway).
    pub log_file: PathBuf,
}

/// The settings both brokers get, by their (shared) Kafka names: the partitions of every
/// topic, Kafka's default segment size, and no fsync per message (the OS flushes, as with
/// Kafka's defaults); the first rebalance waits Kafka's default 3 s on both.
pub fn shared_settings(partitions: i32) -> Vec<(&'static str, String)> {
    vec![
        ("num.partitions", partitions.to_string()),
        ("log.segment.bytes", (1u64 << 30).to_string()),
        ("log.flush.interval.messages", i64::MAX.to_string()),
        ("log.flush.interval.ms", i64::MAX.to_string()),
        ("group.initial.rebalance.delay.ms", "3000".to_string()),
    ]
}

/// A broker started by the harness; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Option<Child>,
    pub name: String,
    pub short_name: &'static str,
    pub bootstrap: String,
    pub port: u16,
    pub description: String,
    pub settings: Vec<(String, String)>,
    pub metrics: Option<String>,
    /// When the broker process was spawned: its start times count from here.
    pub spawned_at: Instant,
    /// Spawn → the client port accepting a TCP connection.
    pub listening_after: Duration,
    dir: PathBuf,
    log_file: PathBuf,
    keep_dir: bool,
}

impl BrokerProcess {
    /// Prepares a fresh directory under `scratch`, launches the broker and waits until its
    /// client port accepts connections.
    pub fn start(flavor: &dyn Flavor, scratch: &Path, partitions: i32, keep_dir: bool) -> Result<BrokerProcess> {
        let slug: String = flavor.short_name().to_lowercase();
        let dir = scratch.join(format!("sluice-bench-{}-{slug}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let port = free_port()?;
        let mut launch = flavor.launch(&dir, port, partitions)?;
        let console = fs::File::create(dir.join("console.log"))?;
        let spawned_at = Instant::now();
        let child = launch
            .command
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .spawn()
            .with_context(|| format!("start {}", flavor.name()))?;
        let mut broker = BrokerProcess {
            child: Some(child),
            name: flavor.name(),
            short_name: flavor.short_name(),
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            description: launch.description,
            settings: launch.settings,
            metrics: launch.metrics,
            spawned_at,
            listening_after: Duration::ZERO,
            dir,
            log_file: launch.log_file,
            keep_dir,
        };
        broker.listening_after = broker.wait_listening()?;
        Ok(broker)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wait_listening(&mut self) -> Result<Duration> {
        let addr: SocketAddr = self.bootstrap.parse()?;
        while self.spawned_at.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("{} exited at start ({status}); log:\n{}", self.name, self.log_tail());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(self.spawned_at.elapsed());
            }
            thread::sleep(LISTEN_POLL);
        }
        bail!(
            "{} not listening on {} after {START_TIMEOUT:?}; log:\n{}",
            self.name,
            self.bootstrap,
            self.log_tail()
        )
    }

    /// True once the process has exited on its own.
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// The last lines of the broker's log (and of its console, when that is another file).
    pub fn log_tail(&self) -> String {
        let tail = |path: &Path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        let console = self.dir.join("console.log");
        if self.log_file == console {
            tail(&console)
        } else {
            format!("{}\n(console:)\n{}", tail(&self.log_file), tail(&console))
        }
    }

    /// SIGTERM, wait for a clean exit (bounded), SIGKILL past the bound. Returns how long the
    /// clean shutdown took, or None if it had to be killed.
    pub fn stop(&mut self) -> Option<Duration> {
        let mut child = self.child.take()?;
        let started = Instant::now();
        // SAFETY: sending a signal to our own child process by its pid.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        while started.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(started.elapsed());
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it",
            self.name
        );
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.stop();
        if !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
