//! Topic-level configs: which names exist, which broker setting supplies each default, how a
//! value is checked, and how the effective values become the log's [`LogConfig`].
//!
//! Pure functions over the settings and a topic's overrides; no I/O.

use std::collections::BTreeMap;

use crate::config::{Settings, Source};
use crate::log::{CompactionConfig, LogConfig, TimestampPolicy};

/// Kafka's ConfigEntry.ConfigType values (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// Kafka's ConfigSource values as DescribeConfigs reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigSource {
    Topic = 1,
    StaticBroker = 4,
    Default = 5,
}

#[derive(Debug)]
pub(crate) struct TopicConfigDef {
    pub(crate) name: &'static str,
    pub(crate) config_type: ConfigType,
    /// The broker setting whose value is this config's default, if there is one.
    pub(crate) broker_setting: Option<&'static str>,
    /// The default when no broker setting supplies one.
    pub(crate) fixed_default: &'static str,
    check: fn(&str) -> Result<(), String>,
}

fn long_min(min: i64) -> impl Fn(&str) -> Result<(), String> {
    move |v| match v.parse::<i64>() {
        Ok(n) if n >= min => Ok(()),
        _ => Err(format!("must be an integer >= {min}")),
    }
}

fn long_ge_minus_one(v: &str) -> Result<(), String> {
    long_min(-1)(v)
}
fn long_ge_zero(v: &str) -> Result<(), String> {
    long_min(0)(v)
}
fn long_ge_one(v: &str) -> Result<(), String> {
    long_min(1)(v)
}
fn int_ge_one(v: &str) -> Result<(), String> {
    long_min(1)(v).and_then(|_| fits_i32(v))
}
fn fits_i32(v: &str) -> Result<(), String> {
    v.parse::<i32>()
        .map(|_| ())
        .map_err(|_| "must fit in a 32-bit int".into())
}
fn segment_bytes(v: &str) -> Result<(), String> {
    long_min(14)(v).and_then(|_| fits_i32(v))
}
fn boolean(v: &str) -> Result<(), String> {
    matches!(v, "true" | "false")
        .then_some(())
        .ok_or_else(|| "must be true or false".into())
}
fn ratio(v: &str) -> Result<(), String> {
    match v.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(()),
        _ => Err("must be a number in 0..=1".into()),
    }
}
fn check_compression_type(v: &str) -> Result<(), String> {
    matches!(v, "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd")
        .then_some(())
        .ok_or_else(|| "must be producer, uncompressed, gzip, snappy, lz4 or zstd".into())
}
/// Checks a message.timestamp.type: the producer's time or the leader's.
pub(crate) fn check_timestamp_type(v: &str) -> Result<(), String> {
    matches!(v, "CreateTime" | "LogAppendTime")
        .then_some(())
        .ok_or_else(|| "must be CreateTime or LogAppendTime".into())
}

/// Checks a cleanup.policy list: delete, compact, both, or none at all. Kafka 4 accepts the
/// empty list ("infinite retention": no policy applies, segments are kept forever), which is
/// what SUBTRACTing the last policy leaves; an empty item inside a list is still refused.
pub(crate) fn check_cleanup_policy(v: &str) -> Result<(), String> {
    let ok = v.trim().is_empty() || v.split(',').map(str::trim).all(|p| matches!(p, "delete" | "compact"));
    ok.then_some(())
        .ok_or_else(|| "must be a list of delete and compact, or empty".into())
}

macro_rules! defs {
    ($( $name:literal : $ty:ident, $broker:expr, $default:literal, $check:expr; )*) => {
        /// Every topic config Sluice knows, in Kafka's names.
        pub(crate) static TOPIC_CONFIGS: &[TopicConfigDef] = &[
            $( TopicConfigDef { name: $name, config_type: ConfigType::$ty, broker_setting: $broker, fixed_default: $default, check: $check }, )*
        ];
    };
}

defs! {
    "cleanup.policy": List, Some("log.cleanup.policy"), "delete", check_cleanup_policy;
    "compression.type": String, None, "producer", check_compression_type;
    "delete.retention.ms": Long, Some("log.cleaner.delete.retention.ms"), "86400000", long_ge_zero;
    "file.delete.delay.ms": Long, None, "60000", long_ge_zero;
    "flush.messages": Long, Some("log.flush.interval.messages"), "9223372036854775807", long_ge_one;
    "flush.ms": Long, Some("log.flush.interval.ms"), "9223372036854775807", long_ge_zero;
    "index.interval.bytes": Int, Some("log.index.interval.bytes"), "4096", int_ge_one;
    "max.message.bytes": Int, Some("message.max.bytes"), "1048588", int_ge_one;
    "max.compaction.lag.ms": Long, Some("log.cleaner.max.compaction.lag.ms"), "9223372036854775807", long_ge_one;
    "message.timestamp.after.max.ms": Long, Some("log.message.timestamp.after.max.ms"), "3600000", long_ge_zero;
    "message.timestamp.before.max.ms": Long, Some("log.message.timestamp.before.max.ms"), "9223372036854775807", long_ge_zero;
    "message.timestamp.type": String, Some("log.message.timestamp.type"), "CreateTime", check_timestamp_type;
    "min.cleanable.dirty.ratio": Double, Some("log.cleaner.min.cleanable.ratio"), "0.5", ratio;
    "min.compaction.lag.ms": Long, Some("log.cleaner.min.compaction.lag.ms"), "0", long_ge_zero;
    "min.insync.replicas": Int, Some("min.insync.replicas"), "1", int_ge_one;
    "retention.bytes": Long, Some("log.retention.bytes"), "-1", long_ge_minus_one;
    "retention.ms": Long, Some("log.retention.ms"), "604800000", long_ge_minus_one;
    "segment.bytes": Int, Some("log.segment.bytes"), "1073741824", segment_bytes;
    "segment.ms": Long, Some("log.roll.ms"), "604800000", long_ge_one;
    "unclean.leader.election.enable": Boolean, Some("unclean.leader.election.enable"), "false", boolean;
}

/// A topic config as DescribeConfigs reports it.
#[derive(Debug, Clone)]
pub(crate) struct EffectiveConfig {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) source: ConfigSource,
    pub(crate) config_type: ConfigType,
}

/// The definition of the topic config `name`, if Sluice knows it.
pub(crate) fn find(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one override (CreateTopics configs, IncrementalAlterConfigs).
pub(crate) fn validate(name: &str, value: &str) -> Result<(), String> {
    let def = find(name).ok_or_else(|| format!("unknown topic config '{name}'"))?;
    (def.check)(value).map_err(|reason| format!("invalid value '{value}' for {name}: {reason}"))
}

/// Checks the overrides of one topic against each other (each was checked alone by
/// `validate`), with a missing one at its topic default: Kafka's `LogConfig.validateValues`.
pub(crate) fn validate_combination(overrides: &BTreeMap<String, String>) -> Result<(), String> {
    let long = |name: &str| {
        let fixed = find(name).map_or("0", |d| d.fixed_default);
        overrides
            .get(name)
            .map_or(fixed, String::as_str)
            .parse::<i64>()
            .unwrap_or(0)
    };
    let (min_lag, max_lag) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"));
    if min_lag > max_lag {
        return Err(format!(
            "conflict topic config setting min.compaction.lag.ms ({min_lag}) > max.compaction.lag.ms ({max_lag})"
        ));
    }
    Ok(())
}

/// Whether `name` is a topic config Sluice knows.
pub(crate) fn is_known(name: &str) -> bool {
    find(name).is_some()
}

/// Every topic config with its effective value and where that value comes from.
pub(crate) fn effective(settings: &Settings, overrides: &BTreeMap<String, String>) -> Vec<EffectiveConfig> {
    let broker: BTreeMap<&str, (String, Source)> = settings
        .entries()
        .into_iter()
        .map(|s| (s.name, (s.value, s.source)))
        .collect();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let (value, source) = match (overrides.get(def.name), def.broker_setting.and_then(|b| broker.get(b))) {
                (Some(v), _) => (v.clone(), ConfigSource::Topic),
                (None, Some((v, Source::Default))) => (v.clone(), ConfigSource::Default),
                (None, Some((v, _))) => (v.clone(), ConfigSource::StaticBroker),
                (None, None) => (def.fixed_default.to_string(), ConfigSource::Default),
            };
            EffectiveConfig {
                name: def.name,
                value,
                source,
                config_type: def.config_type,
            }
        })
        .collect()
}

/// The log settings of a partition of a topic with these overrides.
pub(crate) fn log_config(settings: &Settings, overrides: &BTreeMap<String, String>) -> LogConfig {
    let values: BTreeMap<&str, String> = effective(settings, overrides)
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    // Every value was validated on the way in, so a parse failure means a default is broken.
    let long = |name: &str| {
        values[name]
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("{name} is numeric"))
    };
    // Only a policy that includes `delete` deletes by time or size: `compact` alone keeps
    // everything the cleaner does not compact away, and the empty list keeps everything
    // (Kafka 4 documents it as infinite retention): neither retention nor the cleaner runs.
    let policy = |name: &str| values["cleanup.policy"].split(',').any(|p| p.trim() == name);
    let (deletes, compacts) = (policy("delete"), policy("compact"));
    let max_compaction_lag_ms = long("max.compaction.lag.ms");
    LogConfig {
        segment_bytes: long("segment.bytes") as u64,
        // Kafka's `LogConfig.maxSegmentMs`: a compacted log rolls within max.compaction.lag.ms,
        // so no record waits in the active segment (never cleaned) longer than that.
        segment_ms: if compacts {
            long("segment.ms").min(max_compaction_lag_ms)
        } else {
            long("segment.ms")
        },
        retention_ms: if deletes { long("retention.ms") } else { -1 },
        retention_bytes: if deletes { long("retention.bytes") } else { -1 },
        index_interval_bytes: long("index.interval.bytes") as u32,
        flush_interval_messages: long("flush.messages") as u64,
        flush_interval_ms: long("flush.ms"),
        max_message_bytes: long("max.message.bytes") as u32,
        delete_policy: deletes,
        compaction: compacts.then(|| CompactionConfig {
            delete_retention_ms: long("delete.retention.ms"),
            min_cleanable_ratio: values["min.cleanable.dirty.ratio"].parse().unwrap_or(0.5),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            max_compaction_lag_ms,
        }),
        timestamps: TimestampPolicy {
            log_append_time: values["message.timestamp.type"] == "LogAppendTime",
            before_max_ms: long("message.timestamp.before.max.ms"),
            after_max_ms: long("message.timestamp.after.max.ms"),
        },
    }
}

/// The topic's compression.type (`producer` unless overridden).
pub(crate) fn compression_type(overrides: &BTreeMap<String, String>) -> &str {
    overrides.get("compression.type").map_or("producer", String::as_str)
}

/// The min.insync.replicas in force for a topic.
pub(crate) fn min_insync_replicas(settings: &Settings, overrides: &BTreeMap<String, String>) -> i32 {
    overrides
        .get("min.insync.replicas")
        .and_then(|v| v.parse().ok())
        .unwrap_or(settings.min_insync_replicas)
}

/// Whether the topic allows electing a replica outside the ISR when no ISR member is alive.
pub(crate) fn unclean_leader_election(settings: &Settings, overrides: &BTreeMap<String, String>) -> bool {
    overrides
        .get("unclean.leader.election.enable")
        .map_or(settings.unclean_leader_election_enable, |v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_passes_its_own_check() {
        for d in TOPIC_CONFIGS {
            (d.check)(d.fixed_default).unwrap_or_else(|e| panic!("{}: {e}", d.name));
        }
    }

    #[test]
    fn topic_override_beats_broker_setting() {
        let settings = crate::config::load(None, &["log.retention.ms=5000".into()]).unwrap();
        let mut overrides = BTreeMap::new();
        overrides.insert("segment.bytes".to_string(), "1024".to_string());
        let eff = effective(&settings, &overrides);
        let get = |n: &str| eff.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(get("segment.bytes").source, ConfigSource::Topic);
        assert_eq!(get("retention.ms").value, "5000");
        assert_eq!(get("retention.ms").source, ConfigSource::StaticBroker);
        assert_eq!(get("retention.bytes").source, ConfigSource::Default);
        let lc = log_config(&settings, &overrides);
        assert_eq!((lc.segment_bytes, lc.retention_ms), (1024, 5000));
    }

    #[test]
    fn unknown_or_bad_config_is_rejected_with_its_name() {
        assert!(validate("retention.mss", "1").unwrap_err().contains("retention.mss"));
        assert!(validate("retention.ms", "-2").unwrap_err().contains("retention.ms"));
        assert!(validate("segment.bytes", "10").is_err());
        validate("cleanup.policy", "compact,delete").unwrap();
    }

    /// As Kafka 4.x: the empty list is a policy (none), an empty item inside a list is not.
    #[test]
    fn cleanup_policy_may_be_empty_but_not_have_empty_items() {
        for ok in ["", " ", "delete", " delete , compact", "delete,delete"] {
            validate("cleanup.policy", ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in ["delete,,compact", "delete,", "bogus", "delete;compact"] {
            assert!(validate("cleanup.policy", bad).is_err(), "{bad:?}");
        }
    }

    /// Kafka 4's documentation of cleanup.policy: "An empty list means infinite retention".
    #[test]
    fn empty_or_compact_cleanup_policy_never_deletes_by_time_or_size() {
        let settings = Settings::defaults();
        for (policy, deletes) in [
            ("", false),
            ("compact", false),
            ("delete", true),
            ("compact,delete", true),
        ] {
            let overrides = BTreeMap::from([
                ("cleanup.policy".to_string(), policy.to_string()),
                ("retention.bytes".to_string(), "1000".to_string()),
            ]);
            let lc = log_config(&settings, &overrides);
            let expected = if deletes { (604800000, 1000) } else { (-1, -1) };
            assert_eq!((lc.retention_ms, lc.retention_bytes), expected, "{policy:?}");
        }
    }
}
