//! The Sluice flavor: a release `sluice` binary started with `--override`s for its listeners,
//! its data directory and the shared settings; everything else is Sluice's default. Its
//! Prometheus endpoint listens on a second free port.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::{free_port, shared_settings, Flavor, Launch};

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

    fn launch(&self, dir: &Path, port: u16, partitions: i32) -> Result<Launch> {
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let mut settings: Vec<(String, String)> = vec![
            ("listeners".into(), format!("PLAINTEXT://127.0.0.1:{port}")),
            ("metrics.listener".into(), metrics.clone()),
            ("log.dirs".into(), data.display().to_string()),
        ];
        settings.extend(shared_settings(partitions).into_iter().map(|(k, v)| (k.to_string(), v)));
        let mut command = Command::new(&self.bin);
        for (key, value) in &settings {
            command.arg("--override").arg(format!("{key}={value}"));
        }
        Ok(Launch {
            command,
            description: format!(
                "{} (release), one node (broker and controller), started by the harness",
                self.bin.display()
            ),
            settings,
            metrics: Some(metrics),
            log_file: dir.join("console.log"),
        })
    }
}
