//! The Sluice flavor: a release `sluice` binary started with `--override`s for its listeners,
//! its data directory and the shared settings; everything else is Sluice's default. Its
//! Prometheus endpoint listens on a second free port. A node of a cluster also gets its id,
//! a CONTROLLER listener and the quorum's voters, as in config/cluster/.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::{free_port, shared_settings, Flavor, Launch, Node};

#[derive(Debug)]
pub struct Sluice {
    bin: PathBuf,
}

impl Sluice {
    pub fn new(bin: &Path) -> Result<Sluice> {
        let bin = bin.canonicalize().with_context(|| {
            format!(
                "sluice binary {} (build it with `cargo build --release`)",
                bin.display()
            )
        })?;
        Ok(Sluice { bin })
    }
}

impl Flavor for Sluice {
    fn name(&self) -> String {
        "Sluice".to_string()
    }

    fn short_name(&self) -> &'static str {
        "Sluice"
    }

    fn launch(&self, dir: &Path, node: &Node, partitions: i32) -> Result<Launch> {
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let port = node.port;
        let mut settings: Vec<(String, String)> = if node.in_cluster() {
            vec![
                (
                    "listeners".into(),
                    format!(
                        "PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{}",
                        node.controller_port
                    ),
                ),
                ("node.id".into(), node.id.to_string()),
                ("controller.quorum.voters".into(), node.voters_setting()),
            ]
        } else {
            // One node is a quorum of itself and needs no controller listener.
            vec![("listeners".into(), format!("PLAINTEXT://127.0.0.1:{port}"))]
        };
        settings.extend([
            ("metrics.listener".into(), metrics.clone()),
            ("log.dirs".into(), data.display().to_string()),
        ]);
        settings.extend(shared_settings(partitions).into_iter().map(|(k, v)| (k.to_string(), v)));
        let mut command = Command::new(&self.bin);
        for (key, value) in &settings {
            command.arg("--override").arg(format!("{key}={value}"));
        }
        Ok(Launch {
            command,
            description: match node.voters.len() {
                1 => format!(
                    "{} (release), one node (broker and controller), started by the harness",
                    self.bin.display()
                ),
                n => format!(
                    "{} (release), {n} nodes on this machine, each broker and controller (a voter of the metadata quorum), started by the harness",
                    self.bin.display()
                ),
            },
            settings,
            metrics: Some(metrics),
            log_file: dir.join("console.log"),
        })
    }
}
