//! The broker under test as a process: starting a release `sluice` on a temp data dir (and
//! stopping it), sampling any process's CPU time and RSS from /proc, and reading Sluice's
//! Prometheus endpoint. Never talks Kafka; the workloads do that through librdkafka.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A `sluice` started by the harness; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Option<Child>,
    pub bootstrap: String,
    pub metrics: String,
    dir: PathBuf,
    keep_dir: bool,
}

impl BrokerProcess {
    pub fn start(bin: &Path, scratch: &Path, partitions: i32, keep_dir: bool) -> Result<BrokerProcess> {
        let bin = bin.canonicalize().with_context(|| {
            format!(
                "sluice binary {} (build it with `cargo build --release`)",
                bin.display()
            )
        })?;
        let dir = scratch.join(format!("sluice-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("data")).with_context(|| format!("create {}", dir.display()))?;
        let port = free_port()?;
        let metrics_port = free_port()?;
        let log = fs::File::create(dir.join("sluice.log"))?;
        let child = Command::new(&bin)
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{port}"))
            .arg("--override")
            .arg(format!("metrics.listener=127.0.0.1:{metrics_port}"))
            .arg("--override")
            .arg(format!("log.dirs={}", dir.join("data").display()))
            .arg("--override")
            .arg(format!("num.partitions={partitions}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut broker = BrokerProcess {
            child: Some(child),
            bootstrap: format!("127.0.0.1:{port}"),
            metrics: format!("127.0.0.1:{metrics_port}"),
            dir,
            keep_dir,
        };
        broker.wait_listening()?;
        Ok(broker)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn wait_listening(&mut self) -> Result<()> {
        let addr: SocketAddr = self.bootstrap.parse()?;
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("sluice exited at start ({status}); log:\n{}", self.log_tail());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "sluice not listening on {} after {START_TIMEOUT:?}; log:\n{}",
            self.bootstrap,
            self.log_tail()
        )
    }

    /// True once the process has exited on its own.
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("sluice.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
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
        eprintln!("sluice did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it");
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

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// CPU seconds (user + system) a process has used, from /proc/<pid>/stat.
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant; no memory is passed.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// A `Vm*:` line of /proc/<pid>/status in KiB (VmRSS now, VmHWM the peak since start).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// What the broker used during one workload. RSS counts file pages the process has mapped
/// (`RssFile`, e.g. memory-mapped segments and indexes, which the kernel can drop at will) as
/// well as its own memory (`RssAnon`: heap, stacks); both are reported.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub cpu_secs: f64,
    pub rss_peak_mb: f64,
    pub rss_anon_peak_mb: f64,
    pub rss_end_mb: f64,
}

/// Samples a process's RSS in a thread; `begin`/`end` bracket a workload.
#[derive(Debug)]
pub struct ProcWatch {
    pid: u32,
    peak_kib: Arc<AtomicU64>,
    anon_peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// The start of a bracket: CPU time then.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    cpu_secs: f64,
}

impl ProcWatch {
    pub fn start(pid: u32) -> ProcWatch {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let anon_peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (peak_kib, anon_peak_kib, stop) = (peak_kib.clone(), anon_peak_kib.clone(), stop.clone());
            thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(kib) = status_kib(pid, "VmRSS:") else {
                            return; // the process is gone
                        };
                        peak_kib.fetch_max(kib, Ordering::Relaxed);
                        anon_peak_kib.fetch_max(status_kib(pid, "RssAnon:").unwrap_or(0), Ordering::Relaxed);
                        thread::sleep(RSS_SAMPLE_EVERY);
                    }
                })
                .ok()
        };
        ProcWatch {
            pid,
            peak_kib,
            anon_peak_kib,
            stop,
            handle,
        }
    }

    pub fn begin(&self) -> Mark {
        self.peak_kib
            .store(status_kib(self.pid, "VmRSS:").unwrap_or(0), Ordering::Relaxed);
        self.anon_peak_kib
            .store(status_kib(self.pid, "RssAnon:").unwrap_or(0), Ordering::Relaxed);
        Mark {
            cpu_secs: cpu_secs(Some(self.pid)).unwrap_or(0.0),
        }
    }

    pub fn end(&self, mark: Mark) -> Usage {
        let rss_end = status_kib(self.pid, "VmRSS:").unwrap_or(0);
        let anon_end = status_kib(self.pid, "RssAnon:").unwrap_or(0);
        let peak = self.peak_kib.fetch_max(rss_end, Ordering::Relaxed).max(rss_end);
        let anon_peak = self.anon_peak_kib.fetch_max(anon_end, Ordering::Relaxed).max(anon_end);
        Usage {
            cpu_secs: cpu_secs(Some(self.pid)).unwrap_or(0.0) - mark.cpu_secs,
            rss_peak_mb: peak as f64 / 1024.0,
            rss_anon_peak_mb: anon_peak as f64 / 1024.0,
            rss_end_mb: rss_end as f64 / 1024.0,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for ProcWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One gauge or counter from a Prometheus text endpoint, summed over its label sets (only
/// those whose labels contain `labels_with`, when given).
pub fn scrape_metric(endpoint: &str, name: &str, labels_with: Option<&str>) -> Option<f64> {
    let addr: SocketAddr = endpoint.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {endpoint}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.take(64 << 20).read_to_string(&mut body).ok()?;
    let mut total = None;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if labels_with.is_some_and(|l| !rest.starts_with('{') || !rest[..rest.find('}').unwrap_or(0)].contains(l)) {
            continue;
        }
        let value: f64 = rest.rsplit(' ').next()?.parse().ok()?;
        *total.get_or_insert(0.0) += value;
    }
    // A counter nothing has incremented yet is absent from the text: that is a zero.
    total.or_else(|| body.contains("# TYPE").then_some(0.0))
}
