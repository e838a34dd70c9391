//! The Apache Kafka flavor: one node in KRaft combined mode (`process.roles=broker,controller`)
//! on loopback, or several such nodes forming a cluster (a static quorum of all of them), its
//! data in the run's temporary folder, formatted with `kafka-storage format` (the same cluster
//! id on every node) and started with `kafka-server-start` through compat-tests/kafka-tool. The JVM gets the heap
//! Kafka's `kafka-server-start.sh` gives (`-Xmx1G -Xms1G`) and Kafka's default G1 flags; its
//! log4j2 logs go to `server.log` in the folder. Besides the shared settings it gets only what a
//! single node needs (internal topics with one replica; on a cluster, one per node and a min ISR
//! of 2); everything else is Kafka's default.

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use super::{min_insync_replicas, shared_settings, Flavor, Launch, Node};
use crate::kafka_tool::{run_bounded, KafkaTool, JVM_PERFORMANCE_OPTS};

/// Bound on `kafka-storage format` (a JVM start and a few file writes).
const FORMAT_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub struct Kafka {
    tool: KafkaTool,
    heap: String,
}

impl Kafka {
    pub fn new(tool: KafkaTool, heap: &str) -> Kafka {
        Kafka {
            tool,
            heap: heap.to_string(),
        }
    }
}

impl Flavor for Kafka {
    fn name(&self) -> String {
        format!("Kafka {}", self.tool.version)
    }

    fn short_name(&self) -> &'static str {
        "Kafka"
    }

    fn launch(&self, dir: &Path, node: &Node, partitions: i32) -> Result<Launch> {
        let (port, controller) = (node.port, node.controller_port);
        let data = dir.join("data");
        let replicas = node.replication_factor().to_string();
        let min_isr = min_insync_replicas(node.replication_factor()).to_string();
        let mut settings: Vec<(String, String)> = [
            ("process.roles", "broker,controller".to_string()),
            ("node.id", node.id.to_string()),
            ("controller.quorum.voters", node.voters_setting()),
            (
                "listeners",
                format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
            ),
            ("advertised.listeners", format!("PLAINTEXT://127.0.0.1:{port}")),
            ("controller.listener.names", "CONTROLLER".to_string()),
            ("inter.broker.listener.name", "PLAINTEXT".to_string()),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string(),
            ),
            ("log.dirs", data.display().to_string()),
            // One replica of the internal topics per node (one node can hold one only).
            ("offsets.topic.replication.factor", replicas.clone()),
            ("transaction.state.log.replication.factor", replicas.clone()),
            ("transaction.state.log.min.isr", min_isr.clone()),
            ("share.coordinator.state.topic.replication.factor", replicas),
            ("share.coordinator.state.topic.min.isr", min_isr),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        settings.extend(shared_settings(partitions).into_iter().map(|(k, v)| (k.to_string(), v)));

        let properties = dir.join("server.properties");
        let mut text = String::from("# Written by sluice-bench for one run.\n");
        for (key, value) in &settings {
            let _ = writeln!(text, "{key}={value}");
        }
        fs::write(&properties, text)?;
        let log4j = dir.join("log4j2.properties");
        let log_file = dir.join("server.log");
        fs::write(&log4j, log4j2_config(&log_file))?;

        let mut format = self.tool.command("kafka-storage", "-Xmx256M");
        format
            .arg("format")
            .arg("--config")
            .arg(&properties)
            .arg("--cluster-id")
            .arg(&node.cluster_id);
        let formatted = run_bounded(format, FORMAT_LIMIT)?;
        if !formatted.succeeded() {
            bail!("kafka-storage format: {}", formatted.failure());
        }

        let mut command = self.tool.command("kafka-server-start", &self.heap);
        command.arg(&properties).env(
            "KAFKA_LOG4J_OPTS",
            format!("-Dlog4j2.configurationFile={}", log4j.display()),
        );
        Ok(Launch {
            command,
            description: format!(
                "Apache Kafka {} from Maven Central's jars, KRaft combined mode (broker and controller), {}, \
                 started by the harness (compat-tests/kafka-tool kafka-server-start); JVM: {} {}",
                self.tool.version,
                match node.voters.len() {
                    1 => "one node".to_string(),
                    n => format!("{n} nodes on this machine, each with that JVM"),
                },
                self.heap,
                JVM_PERFORMANCE_OPTS
            ),
            settings,
            metrics: None,
            log_file,
        })
    }
}

/// Kafka's broker log at INFO into `file`, as its own log4j2.yaml logs server.log.
fn log4j2_config(file: &Path) -> String {
    format!(
        "status = error\n\
         appender.file.type = File\n\
         appender.file.name = FILE\n\
         appender.file.fileName = {}\n\
         appender.file.layout.type = PatternLayout\n\
         appender.file.layout.pattern = [%d] %p %m (%c)%n\n\
         rootLogger.level = info\n\
         rootLogger.appenderRef.file.ref = FILE\n",
        file.display()
    )
}

/// A random cluster id as Kafka writes them: 16 bytes, URL-safe base64 without padding.
pub fn cluster_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(base64_url(&bytes))
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_without_padding() {
        assert_eq!(base64_url(b"Man"), "TWFu");
        assert_eq!(base64_url(b"Ma"), "TWE");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64_url(&[0u8; 16]).len(), 22);
    }
}
