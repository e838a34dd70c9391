//! What /proc says about a process and the machine: a process's CPU time and memory (sampled
//! in a thread so a workload gets its peak), the harness's children's CPU time (the Java load
//! generator), and how many TCP connections a local listening port has. Reads only; any
//! process, whichever broker it is.

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::Serialize;

const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

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

/// CPU seconds of several processes together (the nodes of a cluster); None if one is gone.
pub fn cpu_secs_sum(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&p| cpu_secs(Some(p))).sum()
}

/// A `Vm*:` line of /proc/<pid>/status in KiB (VmRSS now, VmHWM the peak since start).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// The same line summed over several processes (the nodes of a cluster); None if one is gone.
pub fn status_kib_sum(pids: &[u32], field: &str) -> Option<u64> {
    pids.iter().map(|&p| status_kib(p, field)).sum()
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

/// Samples a broker's RSS in a thread; `begin`/`end` bracket a workload. A cluster's nodes are
/// watched together: their CPU and their RSS are summed (the RSS peak is that of the sum).
#[derive(Debug)]
pub struct ProcWatch {
    pids: Vec<u32>,
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
    pub fn start(pids: Vec<u32>) -> ProcWatch {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let anon_peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (peak_kib, anon_peak_kib, stop) = (peak_kib.clone(), anon_peak_kib.clone(), stop.clone());
            let pids = pids.clone();
            thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(kib) = status_kib_sum(&pids, "VmRSS:") else {
                            return; // a process is gone
                        };
                        peak_kib.fetch_max(kib, Ordering::Relaxed);
                        anon_peak_kib.fetch_max(status_kib_sum(&pids, "RssAnon:").unwrap_or(0), Ordering::Relaxed);
                        thread::sleep(RSS_SAMPLE_EVERY);
                    }
                })
                .ok()
        };
        ProcWatch {
            pids,
            peak_kib,
            anon_peak_kib,
            stop,
            handle,
        }
    }

    pub fn begin(&self) -> Mark {
        self.peak_kib
            .store(status_kib_sum(&self.pids, "VmRSS:").unwrap_or(0), Ordering::Relaxed);
        self.anon_peak_kib
            .store(status_kib_sum(&self.pids, "RssAnon:").unwrap_or(0), Ordering::Relaxed);
        Mark {
            cpu_secs: cpu_secs_sum(&self.pids).unwrap_or(0.0),
        }
    }

    pub fn end(&self, mark: Mark) -> Usage {
        let rss_end = status_kib_sum(&self.pids, "VmRSS:").unwrap_or(0);
        let anon_end = status_kib_sum(&self.pids, "RssAnon:").unwrap_or(0);
        let peak = self.peak_kib.fetch_max(rss_end, Ordering::Relaxed).max(rss_end);
        let anon_peak = self.anon_peak_kib.fetch_max(anon_end, Ordering::Relaxed).max(anon_end);
        Usage {
            cpu_secs: cpu_secs_sum(&self.pids).unwrap_or(0.0) - mark.cpu_secs,
            rss_peak_mb: peak as f64 / 1024.0,
            rss_anon_peak_mb: anon_peak as f64 / 1024.0,
            rss_end_mb: rss_end as f64 / 1024.0,
        }
    }

    /// The broker's processes: one, or each node of a cluster.
    pub fn pids(&self) -> &[u32] {
        &self.pids
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

/// CPU seconds (user + system) used by this process's children that have exited and been
/// waited for: the Java load generator's, read before and after it runs.
pub fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and keeps no reference to it.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds the whole machine has been busy at normal priority (all CPUs; everything but
/// idle, iowait and niced work), from the first line of /proc/stat. Niced work (a fuzzer at
/// nice 19, say) only takes CPU nothing else wants, so it is left out.
pub fn machine_busy_secs() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: f64 = [0, 2, 5, 6, 7].iter().filter_map(|&i| fields.get(i)).sum();
    Some(busy / clock_ticks())
}

/// Established TCP connections (IPv4 and IPv6) whose local end is `port` on this machine: the
/// clients connected to a broker listening there, whichever broker it is.
pub fn established_connections(port: u16) -> Option<u64> {
    let mut count = None;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else { continue };
        *count.get_or_insert(0) += count_established(&text, port);
    }
    count
}

/// Rows of a /proc/net/tcp table in state 01 (ESTABLISHED) with local port `port`.
fn count_established(table: &str, port: u16) -> u64 {
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && fields.get(3) == Some(&"01")
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_established_rows_on_the_local_port_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
            0: 0100007F:2382 00000000:0000 0A 00000000:00000000\n\
            1: 0100007F:2382 0100007F:C350 01 00000000:00000000\n\
            2: 0100007F:C350 0100007F:2382 01 00000000:00000000\n\
            3: 0000000000000000FFFF00000100007F:2382 0000000000000000FFFF00000100007F:C351 01 0:0\n";
        assert_eq!(count_established(table, 0x2382), 2);
    }
}
