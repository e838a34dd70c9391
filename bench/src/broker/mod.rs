//! The broker under test as processes: one node, or a cluster of nodes on this machine that
//! are each broker and controller. One abstraction, [`Flavor`], with two implementations
//! ([`sluice::Sluice`] and [`kafka::Kafka`]) that only say how one of their nodes is
//! configured and launched; starting the nodes, timing their start, noticing a crash and
//! stopping them is shared here ([`BrokerProcess`]). The settings that matter for a fair comparison are chosen once, in
//! [`shared_settings`], and every flavor gives them to its broker. Never talks Kafka; the
//! workloads do that.

pub mod kafka;
pub mod metrics;
pub mod procfs;
pub mod replication;
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

/// Bound on the number of nodes of a cluster the harness starts on this machine.
pub const NODES_MAX: usize = 5;

/// How one kind of broker is configured and launched.
pub trait Flavor {
    /// Name in tables and plots, e.g. "Sluice" or "Kafka 4.4.0".
    fn name(&self) -> String;
    /// Short name for the ratio column (`×Kafka`).
    fn short_name(&self) -> &'static str;
    /// Prepares `dir` (config files, storage format: work done before the process starts, so
    /// outside its start time) and returns how to start `node` with its client listener on
    /// 127.0.0.1:`node.port`, its data under `dir`, and the [`shared_settings`].
    fn launch(&self, dir: &Path, node: &Node, partitions: i32) -> Result<Launch>;
}

/// One node of the broker under test: every node is a broker and a voter of the metadata
/// quorum, on loopback. A single node is a quorum of itself.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: u32,
    /// Its client (PLAINTEXT) port.
    pub port: u16,
    /// Its controller (quorum) port.
    pub controller_port: u16,
    /// (id, controller port) of every node of the cluster, this one included.
    pub voters: Vec<(u32, u16)>,
    /// The same on every node (Kafka formats each node's storage with it).
    pub cluster_id: String,
}

impl Node {
    /// True when this node is one of several.
    pub fn in_cluster(&self) -> bool {
        self.voters.len() > 1
    }

    /// `controller.quorum.voters`: `id@127.0.0.1:port` of every node.
    pub fn voters_setting(&self) -> String {
        let voters: Vec<String> = self
            .voters
            .iter()
            .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
            .collect();
        voters.join(",")
    }

    /// Replicas of a cluster's topics: one per node.
    pub fn replication_factor(&self) -> usize {
        self.voters.len()
    }
}

/// `min.insync.replicas` of the benchmark topics (and Kafka's internal ones) on `nodes` nodes:
/// 2 on a cluster, as a Kafka operator would set it with replication factor 3; 1 on one node.
pub fn min_insync_replicas(nodes: usize) -> usize {
    nodes.clamp(1, 2)
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

/// A broker started by the harness (one node, or every node of a cluster); stopped (SIGTERM,
/// then SIGKILL) when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    /// One per node, in node order.
    children: Vec<Child>,
    pub name: String,
    pub short_name: String,
    /// Every node's client address, comma-separated.
    pub bootstrap: String,
    /// The first node's client port.
    pub port: u16,
    pub nodes: usize,
    pub description: String,
    /// The first node's settings (the others differ only in id, ports and data dir).
    pub settings: Vec<(String, String)>,
    /// Every node's Prometheus endpoint (Sluice only).
    pub metrics: Vec<String>,
    /// When the first node was spawned: the start times count from here.
    pub spawned_at: Instant,
    /// Spawn → every node's client port accepting a TCP connection.
    pub listening_after: Duration,
    dir: PathBuf,
    /// Each node's (directory, log file).
    logs: Vec<(PathBuf, PathBuf)>,
    keep_dir: bool,
}

impl BrokerProcess {
    /// Prepares a fresh directory under `scratch` (one sub-directory per node of a cluster),
    /// launches every node, then waits until every node's client port accepts connections (a
    /// node of a cluster may open it only once a quorum of its voters runs).
    pub fn start(
        flavor: &dyn Flavor,
        scratch: &Path,
        partitions: i32,
        nodes: usize,
        keep_dir: bool,
    ) -> Result<BrokerProcess> {
        anyhow::ensure!(
            (1..=NODES_MAX).contains(&nodes),
            "nodes must be 1 to {NODES_MAX}, not {nodes}"
        );
        let slug: String = flavor.short_name().to_lowercase();
        let dir = scratch.join(format!("sluice-bench-{}-{slug}-{nodes}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let specs = node_specs(nodes)?;
        let mut launches = Vec::new();
        for node in &specs {
            let node_dir = if nodes == 1 {
                dir.clone()
            } else {
                dir.join(format!("node-{}", node.id))
            };
            fs::create_dir_all(&node_dir)?;
            launches.push((node_dir.clone(), flavor.launch(&node_dir, node, partitions)?));
        }
        let spawned_at = Instant::now();
        let mut children = Vec::new();
        let mut logs = Vec::new();
        for (node_dir, launch) in &mut launches {
            let console = fs::File::create(node_dir.join("console.log"))?;
            let child = launch
                .command
                .stdin(Stdio::null())
                .stdout(console.try_clone()?)
                .stderr(console)
                .spawn()
                .with_context(|| format!("start {}", flavor.name()))?;
            children.push(child);
            logs.push((node_dir.clone(), launch.log_file.clone()));
        }
        let (name, short_name) = match nodes {
            1 => (flavor.name(), flavor.short_name().to_string()),
            n => (
                format!("{}, {n} nodes", flavor.name()),
                format!("{}, {n} nodes", flavor.short_name()),
            ),
        };
        let first = launches.remove(0).1;
        let mut broker = BrokerProcess {
            children,
            name,
            short_name,
            bootstrap: specs
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.port))
                .collect::<Vec<_>>()
                .join(","),
            port: specs[0].port,
            nodes,
            description: first.description,
            settings: first.settings,
            metrics: std::iter::once(first.metrics)
                .chain(launches.into_iter().map(|(_, l)| l.metrics))
                .flatten()
                .collect(),
            spawned_at,
            listening_after: Duration::ZERO,
            dir,
            logs,
            keep_dir,
        };
        for node in &specs {
            broker.listening_after = broker.wait_listening(node.port)?;
        }
        Ok(broker)
    }

    /// Every node's pid, in node order (empty once stopped).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wait_listening(&mut self, port: u16) -> Result<Duration> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while self.spawned_at.elapsed() < START_TIMEOUT {
            if self.exited() {
                bail!("{} exited at start; log:\n{}", self.name, self.log_tail());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(self.spawned_at.elapsed());
            }
            thread::sleep(LISTEN_POLL);
        }
        bail!(
            "{} not listening on 127.0.0.1:{port} after {START_TIMEOUT:?}; log:\n{}",
            self.name,
            self.log_tail()
        )
    }

    /// True once a node has exited on its own.
    pub fn exited(&mut self) -> bool {
        self.children.iter_mut().any(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// The last lines of each node's log (and of its console, when that is another file).
    pub fn log_tail(&self) -> String {
        let tail = |path: &Path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        let mut out = Vec::new();
        for (i, (dir, log_file)) in self.logs.iter().enumerate() {
            let console = dir.join("console.log");
            let text = if *log_file == console {
                tail(&console)
            } else {
                format!("{}\n(console:)\n{}", tail(log_file), tail(&console))
            };
            out.push(if self.nodes == 1 {
                text
            } else {
                format!("(node {}:)\n{text}", i + 1)
            });
        }
        out.join("\n")
    }

    /// SIGTERM to every node, wait for clean exits (bounded), SIGKILL past the bound. Returns
    /// how long the clean shutdown of the last node took, or None if one had to be killed.
    pub fn stop(&mut self) -> Option<Duration> {
        let mut children = std::mem::take(&mut self.children);
        if children.is_empty() {
            return None;
        }
        let started = Instant::now();
        for child in &children {
            // SAFETY: sending a signal to our own child process by its pid.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        while started.elapsed() < STOP_TIMEOUT {
            if children.iter_mut().all(|c| matches!(c.try_wait(), Ok(Some(_)))) {
                return Some(started.elapsed());
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it",
            self.name
        );
        for child in &mut children {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// Ids 1..=`nodes` with a client and a controller port each, and the cluster id they share.
fn node_specs(nodes: usize) -> Result<Vec<Node>> {
    // Hold every listener until all ports are picked, so no two nodes get the same one.
    let listeners: Vec<(TcpListener, TcpListener)> = (0..nodes)
        .map(|_| Ok((TcpListener::bind("127.0.0.1:0")?, TcpListener::bind("127.0.0.1:0")?)))
        .collect::<Result<_>>()?;
    let ports: Vec<(u16, u16)> = listeners
        .iter()
        .map(|(a, b)| Ok((a.local_addr()?.port(), b.local_addr()?.port())))
        .collect::<Result<_>>()?;
    let voters: Vec<(u32, u16)> = ports.iter().enumerate().map(|(i, (_, c))| (i as u32 + 1, *c)).collect();
    let cluster_id = kafka::cluster_id()?;
    Ok(ports
        .iter()
        .zip(&voters)
        .map(|((port, controller_port), (id, _))| Node {
            id: *id,
            port: *port,
            controller_port: *controller_port,
            voters: voters.clone(),
            cluster_id: cluster_id.clone(),
        })
        .collect())
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
