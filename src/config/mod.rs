//! Settings: `config/*.toml` plus `--override key=value`, turned into typed [`Settings`].
//!
//! Names are Apache Kafka's (`log.segment.bytes`, `listeners`, …). In TOML the dotted names
//! nest (`[log] segment.bytes = …` is `log.segment.bytes`), so the file is flattened into dotted
//! keys first, overrides are laid on top, and only then is anything typed. That keeps one code
//! path for file, override and default, and lets DescribeConfigs report each value's source.
//!
//! This module reads files and parses strings; it never touches the network or the data dirs.

mod config_type;
mod listener;
mod logging;
mod settings;
mod synonyms;

use std::collections::BTreeMap;
use std::path::Path;

pub use config_type::ConfigType;
pub use listener::Listener;
pub use settings::{Setting, Settings, Source};
pub use synonyms::{Catalog, ClusterDefaults, Synonym};

/// A setting that cannot be used; the message names it, and the broker refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("unknown setting '{0}'")]
    Unknown(String),
    #[error("bad value for setting '{name}': '{value}' ({reason})")]
    BadValue {
        name: String,
        value: String,
        reason: String,
    },
    #[error("bad override '{0}': expected key=value")]
    BadOverride(String),
}

/// Loads the settings: defaults, then the TOML file (if given), then each `key=value` override.
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Settings, ConfigError> {
    let mut layers = settings::Layers::default();
    if let Some(p) = path {
        layers.file = read_file(p)?;
    }
    for o in overrides {
        let (k, v) = o.split_once('=').ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
        layers.overrides.insert(k.trim().to_string(), v.trim().to_string());
    }
    Settings::from_layers(layers)?.check_combination()
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_toml(&text).map_err(|message| ConfigError::Toml { path: shown, message })
}

/// Flattens TOML into dotted keys with string values (`[log] segment.bytes = 5` → `log.segment.bytes = "5"`).
fn parse_toml(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut flat = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut flat);
    Ok(flat)
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        toml::Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(prefix.to_string(), parts.join(","));
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_toml_flattens_to_kafka_names() {
        let flat = parse_toml("[log]\nsegment.bytes = 1024\ndirs = \"/tmp/x\"\n[node]\nid = 3\n").unwrap();
        assert_eq!(flat["log.segment.bytes"], "1024");
        assert_eq!(flat["log.dirs"], "/tmp/x");
        assert_eq!(flat["node.id"], "3");
    }

    #[test]
    fn override_wins_over_file_and_default() {
        let s = load(None, &["log.segment.bytes=2048".into(), "node.id=7".into()]).unwrap();
        assert_eq!(s.log_segment_bytes, 2048);
        assert_eq!(s.node_id, 7);
        assert_eq!(s.source("node.id"), Source::Override);
        assert_eq!(s.source("num.partitions"), Source::Default);
    }

    #[test]
    fn unknown_setting_is_named() {
        let err = load(None, &["log.segmnt.bytes=1".into()]).unwrap_err();
        assert_eq!(err.to_string(), "unknown setting 'log.segmnt.bytes'");
    }

    #[test]
    fn bad_value_is_named() {
        let err = load(None, &["num.partitions=zero".into()]).unwrap_err();
        assert!(err.to_string().contains("'num.partitions'"), "{err}");
        let err = load(None, &["num.partitions=0".into()]).unwrap_err();
        assert!(err.to_string().contains("'num.partitions'"), "{err}");
    }

    #[test]
    fn roles_listeners_and_quorum_must_fit_together() {
        let bad = |overrides: &[&str], name: &str| {
            let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            let err = load(None, &overrides).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        };
        bad(&["listeners=SSL://localhost:9093"], "'listeners'");
        bad(&["listeners=CONTROLLER://localhost:9093"], "'listeners'");
        bad(&["controller.quorum.voters=1@localhost:9093"], "'listeners'");
        bad(&["process.roles=broker"], "'process.roles'");
        bad(&["process.roles=broker,zookeeper"], "'process.roles'");
        bad(
            &[
                "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
                "controller.quorum.voters=1@localhost:9093",
            ],
            "wildcard",
        );
        let s = load(
            None,
            &[
                "listeners=PLAINTEXT://:9092,CONTROLLER://localhost:9093".into(),
                "controller.quorum.voters=1@localhost:9093".into(),
            ],
        )
        .unwrap();
        assert_eq!(s.kafka_listeners().len(), 1);
        assert_eq!(s.controller_listener().unwrap().port, 9093);
    }

    #[test]
    fn secured_listeners_need_their_credentials_and_a_protocol() {
        let load_with = |overrides: &[&str]| load(None, &overrides.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let err = load_with(&["listeners=SASL_PLAINTEXT://localhost:9094"]).unwrap_err();
        assert!(err.to_string().contains("sasl.plain.users"), "{err}");
        let err = load_with(&["listeners=SASL_SSL://localhost:9094", "sasl.plain.users=a:b"]).unwrap_err();
        assert!(err.to_string().contains("ssl.keystore.location"), "{err}");
        let err = load_with(&["listeners=CLIENTS://localhost:9094"]).unwrap_err();
        assert!(err.to_string().contains("listener.security.protocol.map"), "{err}");
        let err = load_with(&["sasl.enabled.mechanisms=GSSAPI"]).unwrap_err();
        assert!(err.to_string().contains("'sasl.enabled.mechanisms'"), "{err}");
        let s = load_with(&[
            "listeners=INTERNAL://localhost:9092,CLIENTS://localhost:9094",
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,CLIENTS:SASL_PLAINTEXT",
            "inter.broker.listener.name=INTERNAL",
            "sasl.plain.users=alice:secret",
        ])
        .unwrap();
        assert_eq!(s.inter_broker_listener().unwrap().name, "INTERNAL");
        // SCRAM users live in the metadata log: no PLAIN users needed without PLAIN.
        let scram_only = [
            "listeners=SASL_PLAINTEXT://localhost:9094,PLAINTEXT://localhost:9092",
            "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
        ];
        assert!(load_with(&scram_only).is_ok());
        let bad_bootstrap = "sasl.scram.bootstrap.credentials=SCRAM-SHA-256=[name=admin,password=x,iterations=10]";
        let err = load_with(&[scram_only[0], scram_only[1], bad_bootstrap]).unwrap_err();
        assert!(err.to_string().contains("sasl.scram.bootstrap.credentials"), "{err}");
        let clients = &s.kafka_listeners()[1];
        assert_eq!(
            s.security_protocol(clients),
            Some(crate::security::SecurityProtocol::SaslPlaintext)
        );
    }

    #[test]
    fn brokers_of_a_cluster_replicate_over_plaintext_only_yet() {
        let err = load(
            None,
            &[
                "listeners=SASL_PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093".into(),
                "controller.quorum.voters=1@localhost:9093".into(),
                "sasl.plain.users=alice:secret".into(),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("'inter.broker.listener.name'"), "{err}");
        let err = load(None, &["inter.broker.listener.name=NOPE".into()]).unwrap_err();
        assert!(err.to_string().contains("not one of the listeners"), "{err}");
    }

    const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sluice.toml");

    /// The shipped file with every commented-out setting (`#name = value`, no space after the
    /// `#`, unlike prose comments) switched on.
    fn uncommented(text: &str) -> String {
        text.lines()
            .map(|l| match l.strip_prefix('#') {
                Some(setting) if setting.starts_with(|c: char| c.is_ascii_lowercase()) => setting,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Regression (issue 10): the shipped file repeated every default, so DescribeConfigs
    /// called them all STATIC_BROKER_CONFIG (kafka-python expects `retention.bytes` to be
    /// DEFAULT_CONFIG on a broker that never set it).
    #[test]
    fn shipped_config_file_sets_nothing_so_every_setting_reports_default() {
        let s = load(Some(Path::new(SHIPPED)), &[]).unwrap();
        for e in s.entries() {
            assert_eq!(e.source, Source::Default, "config/sluice.toml sets {}", e.name);
        }
    }

    #[test]
    fn shipped_config_file_documents_every_setting_at_its_true_default() {
        let text = std::fs::read_to_string(SHIPPED).unwrap();
        let layers = settings::Layers {
            file: parse_toml(&uncommented(&text)).unwrap(),
            overrides: BTreeMap::new(),
        };
        let documented = Settings::from_layers(layers).unwrap();
        for (doc, default) in documented.entries().iter().zip(Settings::defaults().entries()) {
            assert_eq!(
                doc.source,
                Source::File,
                "config/sluice.toml has no line for {}",
                doc.name
            );
            assert_eq!(
                doc.value, default.value,
                "config/sluice.toml shows the wrong default for {}",
                doc.name
            );
        }
    }

    #[test]
    fn a_setting_is_static_only_where_the_operator_set_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "[log]\nretention.bytes = 1000\n").unwrap();
        let s = load(Some(&file), &["log.segment.bytes=2048".into()]).unwrap();
        assert_eq!(s.source("log.retention.bytes"), Source::File);
        assert_eq!(s.source("log.segment.bytes"), Source::Override);
        assert_eq!(s.source("log.retention.ms"), Source::Default);
    }
}
