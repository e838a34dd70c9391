//! Topic-level configs: which names exist, which broker setting supplies each default, how a
//! value is checked, and how the effective values become the log's [`LogConfig`].
//!
//! Pure functions over the settings, the cluster defaults of the metadata log and a topic's
//! overrides; no I/O.

use std::collections::BTreeMap;

pub(crate) use crate::config::ConfigType;
use crate::config::{ClusterDefaults, Settings, Source, Synonym};
use crate::log::{CompactionConfig, LogConfig, TimestampPolicy};

/// The topic config (and broker setting) that eligible leader replicas are counted against.
pub(crate) const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

/// Kafka's ConfigSource values as DescribeConfigs reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigSource {
    Topic = 1,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
    DynamicBrokerLogger = 6,
    /// A group config override (Kafka's GROUP_CONFIG).
    Group = 8,
}

#[derive(Debug)]
pub(crate) struct TopicConfigDef {
    pub(crate) name: &'static str,
    pub(crate) config_type: ConfigType,
    /// The broker setting whose value is this config's default, if there is one.
    pub(crate) broker_setting: Option<&'static str>,
    /// The default when no broker setting supplies one.
    pub(crate) fixed_default: &'static str,
    rule: Rule,
    /// What it does, as the table's doc comment gives it.
    doc: &'static str,
}

impl TopicConfigDef {
    /// One line on what it does (DescribeConfigs' documentation).
    pub(crate) fn doc(&self) -> &'static str {
        self.doc.trim_start()
    }
}

/// How a value is parsed and checked, as Kafka's ConfigDef parses and validates topic configs
/// (so a refusal reads as Kafka's: `Invalid value abc for configuration retention.ms: Not a
/// number of type LONG`).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A LONG in `min..=max`.
    Long { min: i64, max: i64 },
    /// An INT in `min..=max`.
    Int { min: i64, max: i64 },
    /// A DOUBLE in `min..=max`.
    Double { min: f64, max: f64 },
    /// `true` or `false`, in any case.
    Boolean,
    /// A STRING, one of these.
    OneOf(&'static [&'static str]),
    /// A LIST whose items are each one of these; the empty list is allowed, an empty item not.
    ListOf(&'static [&'static str]),
    /// compression.gzip.level: an INT in 1..=9, or -1.
    GzipLevel,
    /// The replication throttles: a LIST of `partition:broker` items, or the literal `*`.
    ThrottledReplicas,
}

impl Rule {
    const fn config_type(self) -> ConfigType {
        match self {
            Rule::Long { .. } => ConfigType::Long,
            Rule::Int { .. } => ConfigType::Int,
            Rule::Double { .. } => ConfigType::Double,
            Rule::Boolean => ConfigType::Boolean,
            Rule::OneOf(_) => ConfigType::String,
            Rule::ListOf(_) | Rule::ThrottledReplicas => ConfigType::List,
            Rule::GzipLevel => ConfigType::Int,
        }
    }

    /// Checks `value`; the error is Kafka's wording of what is wrong with it.
    fn check(self, name: &str, value: &str) -> Result<(), String> {
        let invalid = |shown: &dyn std::fmt::Display, why: &str| {
            Err(format!("Invalid value {shown} for configuration {name}: {why}"))
        };
        let v = value.trim();
        match self {
            Rule::Long { min, max } => match v.parse::<i64>() {
                Ok(n) => in_range(n, min, max).or_else(|why| invalid(&n, &why)),
                Err(_) => invalid(&value, "Not a number of type LONG"),
            },
            Rule::Int { min, max } => match v.parse::<i32>() {
                Ok(n) => in_range(i64::from(n), min, max).or_else(|why| invalid(&n, &why)),
                Err(_) => invalid(&value, "Not a number of type INT"),
            },
            Rule::Double { min, max } => match v.parse::<f64>() {
                // Kafka declares these bounds as integers, and prints them so.
                Ok(x) if x < min => invalid(&JavaDouble(x), &format!("Value must be at least {min}")),
                Ok(x) if x > max => invalid(&JavaDouble(x), &format!("Value must be no more than {max}")),
                Ok(_) => Ok(()),
                Err(_) => invalid(&value, "Not a number of type DOUBLE"),
            },
            Rule::Boolean => match v.to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => invalid(&value, "Expected value to be either true or false"),
            },
            Rule::OneOf(choices) => match choices.contains(&v) {
                true => Ok(()),
                false => invalid(&v, &format!("String must be one of: {}", choices.join(", "))),
            },
            Rule::ListOf(choices) => {
                let items = list_items(v);
                if items.iter().any(|i| i.is_empty()) {
                    return Err(format!("Configuration '{name}' values must not be empty."));
                }
                match items.iter().find(|i| !choices.contains(i)) {
                    Some(bad) => invalid(bad, &format!("String must be one of: {}", choices.join(", "))),
                    None => Ok(()),
                }
            }
            Rule::GzipLevel => match v.parse::<i32>() {
                Ok(n) if n == -1 || (1..=9).contains(&n) => Ok(()),
                Ok(n) => invalid(&n, "Value must be between 1 and 9 or equal to -1"),
                Err(_) => invalid(&value, "Not a number of type INT"),
            },
            Rule::ThrottledReplicas => {
                let items = list_items(v);
                let replica = |i: &&str| {
                    i.is_empty()
                        || i.split_once(':').is_some_and(|(p, b)| {
                            [p, b]
                                .iter()
                                .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
                        })
                };
                if items.iter().all(replica) || items == ["*"] {
                    return Ok(());
                }
                // Kafka shows the parsed list: [0:1, abc].
                let shown = format!("[{}]", items.join(", "));
                invalid(
                    &shown,
                    &format!("{name} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
                )
            }
        }
    }
}

fn in_range(n: i64, min: i64, max: i64) -> Result<(), String> {
    if n < min {
        Err(format!("Value must be at least {min}"))
    } else if n > max {
        Err(format!("Value must be no more than {max}"))
    } else {
        Ok(())
    }
}

/// A LIST value's items as Kafka splits them: on commas, each trimmed; nothing at all is the
/// empty list, while `a,,b` has an empty item.
pub(crate) fn list_items(v: &str) -> Vec<&str> {
    let v = v.trim();
    if v.is_empty() {
        Vec::new()
    } else {
        v.split(',').map(str::trim).collect()
    }
}

/// A double as Java prints it (`2.0`, `0.5`), as Kafka's messages show values.
struct JavaDouble(f64);

impl std::fmt::Display for JavaDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

const LONG_MAX: i64 = i64::MAX;
const INT_MAX: i64 = i32::MAX as i64;
const POLICIES: &[&str] = &["compact", "delete"];
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

macro_rules! defs {
    ($( $(#[doc = $doc:literal])+ $name:literal : $rule:expr, $broker:expr, $default:literal; )*) => {
        /// Every topic config Sluice knows, in Kafka's names, with Kafka's types and bounds.
        pub(crate) static TOPIC_CONFIGS: &[TopicConfigDef] = &[
            $( TopicConfigDef {
                name: $name,
                config_type: $rule.config_type(),
                broker_setting: $broker,
                fixed_default: $default,
                rule: $rule,
                doc: concat!($($doc),+),
            }, )*
        ];
    };
}

// Kafka's 37 topic configs of 4.4, with its types, bounds, defaults and broker synonyms (the
// broker setting whose value is the default). Kafka 4 raised segment.bytes' floor to 1 MiB;
// Sluice keeps 14 (one record batch header's worth), so tests and small deployments can roll
// segments quickly. segment.jitter.ms has no synonym: Kafka's (log.roll.jitter.ms) is unset
// by default and lists none.
defs! {
    /// What happens to old segments: delete (by retention.ms and retention.bytes), compact (keep
    /// each key's last record: the log cleaner), both, or none (keep forever).
    "cleanup.policy": Rule::ListOf(POLICIES), Some("log.cleanup.policy"), "delete";
    /// The gzip level (1-9, -1 for the codec's default) when the topic's compression.type is gzip
    /// (not used yet).
    "compression.gzip.level": Rule::GzipLevel, Some("compression.gzip.level"), "-1";
    /// The lz4 level (1-17) when the topic's compression.type is lz4 (not used yet).
    "compression.lz4.level": Rule::Int { min: 1, max: 17 }, Some("compression.lz4.level"), "9";
    /// The codec batches are stored in: producer keeps what producers send; uncompressed, gzip,
    /// snappy, lz4 or zstd recompresses other batches on append.
    "compression.type": Rule::OneOf(COMPRESSION_TYPES), Some("compression.type"), "producer";
    /// The zstd level (-131072-22) when the topic's compression.type is zstd (not used yet).
    "compression.zstd.level": Rule::Int { min: -131072, max: 22 }, Some("compression.zstd.level"), "3";
    /// How long a compacted topic keeps delete markers (tombstones) for consumers to see them,
    /// counted from the cleaning that first kept them.
    "delete.retention.ms": Rule::Long { min: 0, max: LONG_MAX }, Some("log.cleaner.delete.retention.ms"), "86400000";
    /// Whether share groups may use this topic as their dead-letter queue (share groups are not
    /// implemented).
    "errors.deadletterqueue.group.enable": Rule::Boolean, None, "false";
    /// How long a deleted segment's files wait before they are removed.
    "file.delete.delay.ms": Rule::Long { min: 0, max: LONG_MAX }, Some("log.segment.delete.delay.ms"), "60000";
    /// fsync a partition after this many records; the default leaves it to the OS.
    "flush.messages": Rule::Long { min: 1, max: LONG_MAX }, Some("log.flush.interval.messages"), "9223372036854775807";
    /// fsync a partition when its last fsync is older than this; the default leaves it to the OS.
    "flush.ms": Rule::Long { min: 0, max: LONG_MAX }, Some("log.flush.interval.ms"), "9223372036854775807";
    /// Replicas (partition:broker, or *) whose follower fetching is throttled (replication
    /// throttling is not implemented yet).
    "follower.replication.throttled.replicas": Rule::ThrottledReplicas, None, "";
    /// Add a sparse offset/time index entry after this many bytes of log.
    "index.interval.bytes": Rule::Int { min: 0, max: INT_MAX }, Some("log.index.interval.bytes"), "4096";
    /// Replicas (partition:broker, or *) whose leader-side replication is throttled (replication
    /// throttling is not implemented yet).
    "leader.replication.throttled.replicas": Rule::ThrottledReplicas, None, "";
    /// With tiered storage, the bytes kept on local disk (-2: retention.bytes); tiered storage is
    /// not implemented.
    "local.retention.bytes": Rule::Long { min: -2, max: LONG_MAX }, Some("log.local.retention.bytes"), "-2";
    /// With tiered storage, how long segments stay on local disk (-2: retention.ms); tiered storage
    /// is not implemented.
    "local.retention.ms": Rule::Long { min: -2, max: LONG_MAX }, Some("log.local.retention.ms"), "-2";
    /// The longest a record may stay uncompacted, whatever the log's dirty ratio.
    "max.compaction.lag.ms": Rule::Long { min: 1, max: LONG_MAX }, Some("log.cleaner.max.compaction.lag.ms"), "9223372036854775807";
    /// The most a compressed record batch may expand to (not enforced yet).
    "max.decompressed.message.bytes": Rule::Int { min: 1, max: 2147483639 }, Some("max.decompressed.message.bytes"), "2147483639";
    /// The largest record batch a producer may send, with its 12-byte log overhead.
    "max.message.bytes": Rule::Int { min: 0, max: INT_MAX }, Some("message.max.bytes"), "1048588";
    /// How far ahead of the broker's clock a CreateTime record's timestamp may be.
    "message.timestamp.after.max.ms": Rule::Long { min: 0, max: LONG_MAX }, Some("log.message.timestamp.after.max.ms"), "3600000";
    /// How far behind the broker's clock a CreateTime record's timestamp may be.
    "message.timestamp.before.max.ms": Rule::Long { min: 0, max: LONG_MAX }, Some("log.message.timestamp.before.max.ms"), "9223372036854775807";
    /// Which timestamp records keep: CreateTime, the producer's, or LogAppendTime, the leader's
    /// clock when it appends the batch.
    "message.timestamp.type": Rule::OneOf(TIMESTAMP_TYPES), Some("log.message.timestamp.type"), "CreateTime";
    /// The share of a log that must be uncompacted before the cleaner compacts it.
    "min.cleanable.dirty.ratio": Rule::Double { min: 0.0, max: 1.0 }, Some("log.cleaner.min.cleanable.ratio"), "0.5";
    /// The least time a record stays uncompacted.
    "min.compaction.lag.ms": Rule::Long { min: 0, max: LONG_MAX }, Some("log.cleaner.min.compaction.lag.ms"), "0";
    /// The fewest in-sync replicas an acks=all produce needs to succeed, and the high watermark
    /// to move (capped at the replication factor).
    "min.insync.replicas": Rule::Int { min: 1, max: INT_MAX }, Some("min.insync.replicas"), "1";
    /// Create segment files at their full size up front (not done yet).
    "preallocate": Rule::Boolean, Some("log.preallocate"), "false";
    /// With tiered storage, the bytes a segment may lag before it is copied (-1: no limit); tiered
    /// storage is not implemented.
    "remote.copy.lag.bytes": Rule::Long { min: -1, max: LONG_MAX }, Some("log.remote.copy.lag.bytes"), "-1";
    /// With tiered storage, how long a segment may lag before it is copied; tiered storage is not
    /// implemented.
    "remote.copy.lag.ms": Rule::Long { min: -1, max: LONG_MAX }, Some("log.remote.copy.lag.ms"), "0";
    /// With tiered storage, stop copying segments to remote storage; tiered storage is not
    /// implemented.
    "remote.log.copy.disable": Rule::Boolean, None, "false";
    /// With tiered storage, delete the remote data when remote storage is turned off; tiered
    /// storage is not implemented.
    "remote.log.delete.on.disable": Rule::Boolean, None, "false";
    /// Keep old segments in remote storage (tiered storage is not implemented, so only false is
    /// taken).
    "remote.storage.enable": Rule::Boolean, None, "false";
    /// Delete the oldest segments while a partition is larger than this (-1: no limit).
    "retention.bytes": Rule::Long { min: i64::MIN, max: LONG_MAX }, Some("log.retention.bytes"), "-1";
    /// Delete whole segments whose newest record is older than this (-1 keeps forever).
    "retention.ms": Rule::Long { min: -1, max: LONG_MAX }, Some("log.retention.ms"), "604800000";
    /// Roll to a new segment when the active one would pass this size.
    "segment.bytes": Rule::Int { min: 14, max: INT_MAX }, Some("log.segment.bytes"), "1073741824";
    /// The most an offset or time index of a segment may hold.
    "segment.index.bytes": Rule::Int { min: 4, max: INT_MAX }, Some("log.index.size.max.bytes"), "10485760";
    /// Up to this much random time taken off segment.ms, so segments do not all roll at once (not
    /// used yet).
    "segment.jitter.ms": Rule::Long { min: 0, max: LONG_MAX }, None, "0";
    /// Roll to a new segment when the active one is older than this.
    "segment.ms": Rule::Long { min: 1, max: LONG_MAX }, Some("log.roll.ms"), "604800000";
    /// Whether a replica outside the ISR may be elected leader when no ISR member is alive,
    /// losing what only the others had.
    "unclean.leader.election.enable": Rule::Boolean, Some("unclean.leader.election.enable"), "false";
}

/// Checks a cleanup.policy list (also the broker's `log.cleanup.policy`): delete, compact, both,
/// or none at all. Kafka 4 accepts the empty list ("infinite retention": no policy applies,
/// segments are kept forever), which is what SUBTRACTing the last policy leaves; an empty item
/// inside a list is still refused.
pub(crate) fn check_cleanup_policy(v: &str) -> Result<(), String> {
    Rule::ListOf(POLICIES).check("cleanup.policy", v)
}

/// What Sluice refuses although Kafka would take it: features it does not have yet. A Kafka
/// broker without tiered storage refuses remote storage just so, in these words.
fn not_implemented(name: &str, value: &str) -> Option<String> {
    match (name, value.trim().to_ascii_lowercase().as_str()) {
        ("remote.storage.enable", "true") => Some(
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
                .into(),
        ),
        _ => None,
    }
}

/// Checks a topic's configs together, as Kafka's LogConfig.validateValues does once each is
/// valid alone: its overrides over the broker's defaults.
pub(crate) fn check_combination(
    settings: &Settings,
    cluster: &ClusterDefaults,
    overrides: &BTreeMap<String, String>,
) -> Result<(), String> {
    let values: BTreeMap<&str, String> = effective(settings, cluster, overrides)
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    let lag = |name: &str| values[name].trim().parse::<i64>().unwrap_or_default();
    let (min, max) = (lag("min.compaction.lag.ms"), lag("max.compaction.lag.ms"));
    if min > max {
        return Err(format!(
            "conflict topic config setting min.compaction.lag.ms ({min}) > max.compaction.lag.ms ({max})"
        ));
    }
    Ok(())
}

/// Checks the broker settings that are topic configs' defaults with those configs' rules,
/// alone and together; the error names the setting, its value and what is wrong.
pub(crate) fn check_broker_defaults(settings: &Settings) -> Result<(), (&'static str, String, String)> {
    let catalog = settings.catalog();
    for def in TOPIC_CONFIGS {
        let Some(setting) = def.broker_setting else { continue };
        let Some(value) = catalog.resolved(setting, &ClusterDefaults::new()) else {
            continue;
        };
        validate(def.name, &value).map_err(|why| (setting, value.clone(), why))?;
    }
    let none = BTreeMap::new();
    check_combination(settings, &ClusterDefaults::new(), &none).map_err(|why| {
        let value = settings.log_cleaner_min_compaction_lag_ms.to_string();
        ("log.cleaner.min.compaction.lag.ms", value, why)
    })
}

/// A topic config as DescribeConfigs reports it.
#[derive(Debug, Clone)]
pub(crate) struct EffectiveConfig {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) source: ConfigSource,
    pub(crate) config_type: ConfigType,
    /// Kafka's synonyms, most specific first: the topic's override, then the broker settings
    /// behind the default (set statically, then their defaults).
    pub(crate) synonyms: Vec<ConfigSynonym>,
    pub(crate) doc: &'static str,
}

/// One entry of a DescribeConfigs synonym list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigSynonym {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) source: ConfigSource,
}

impl From<Synonym> for ConfigSynonym {
    fn from(s: Synonym) -> Self {
        ConfigSynonym {
            name: s.name,
            value: s.value,
            source: broker_source(s.source),
        }
    }
}

/// How DescribeConfigs names where a broker setting's value comes from.
pub(crate) fn broker_source(s: Source) -> ConfigSource {
    match s {
        Source::Default => ConfigSource::Default,
        Source::File | Source::Override => ConfigSource::StaticBroker,
        Source::ClusterDefault => ConfigSource::DynamicDefaultBroker,
    }
}

/// The definition of the topic config `name`, if Sluice knows it.
pub(crate) fn find(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Kafka's refusal of a topic config name it does not know.
pub(crate) fn unknown_name(name: &str) -> String {
    format!("Unknown topic config name: {name}")
}

/// Checks one override (CreateTopics configs, IncrementalAlterConfigs); the error is Kafka's
/// message for it.
pub(crate) fn validate(name: &str, value: &str) -> Result<(), String> {
    let def = find(name).ok_or_else(|| unknown_name(name))?;
    def.rule.check(name, value)?;
    not_implemented(name, value).map_or(Ok(()), Err)
}

/// Every topic config with its effective value and where that value comes from, as Kafka
/// works it out: the topic's override, else the value in force of the broker setting behind
/// it (`log.retention.ms`, else `.minutes`, else `.hours`; a cluster default over the file),
/// else the config's own default.
/// The source is that of the first synonym, DEFAULT_CONFIG when there is none (Kafka lists no
/// synonym for `retention.ms` while only `log.retention.hours` has a value).
pub(crate) fn effective(
    settings: &Settings,
    cluster: &ClusterDefaults,
    overrides: &BTreeMap<String, String>,
) -> Vec<EffectiveConfig> {
    let catalog = settings.catalog();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let own = overrides.get(def.name).map(|v| ConfigSynonym {
                name: def.name,
                value: v.clone(),
                source: ConfigSource::Topic,
            });
            let behind = def
                .broker_setting
                .into_iter()
                .flat_map(|b| catalog.synonyms(b, cluster));
            let synonyms: Vec<ConfigSynonym> = own.into_iter().chain(behind.map(Into::into)).collect();
            let value = overrides
                .get(def.name)
                .cloned()
                .or_else(|| def.broker_setting.and_then(|b| catalog.resolved(b, cluster)))
                .unwrap_or_else(|| def.fixed_default.to_string());
            EffectiveConfig {
                name: def.name,
                value,
                source: synonyms.first().map_or(ConfigSource::Default, |s| s.source),
                config_type: def.config_type,
                synonyms,
                doc: def.doc(),
            }
        })
        .collect()
}

/// The log settings of a partition of a topic with these overrides.
pub(crate) fn log_config(
    settings: &Settings,
    cluster: &ClusterDefaults,
    overrides: &BTreeMap<String, String>,
) -> LogConfig {
    let values: BTreeMap<&str, String> = effective(settings, cluster, overrides)
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    // Every value was validated on the way in, so a parse failure means a default is broken.
    let long = |name: &str| {
        values[name]
            .trim()
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("{name} is numeric"))
    };
    // Only a policy that includes `delete` deletes by time or size: `compact` alone keeps
    // everything the cleaner does not compact away, and the empty list keeps everything
    // (Kafka 4 documents it as infinite retention): neither retention nor the cleaner runs.
    let policy = |name: &str| list_items(&values["cleanup.policy"]).contains(&name);
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
            min_cleanable_ratio: values["min.cleanable.dirty.ratio"].trim().parse().unwrap_or(0.5),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            max_compaction_lag_ms,
        }),
        timestamps: TimestampPolicy {
            log_append_time: values["message.timestamp.type"]
                .trim()
                .eq_ignore_ascii_case("LogAppendTime"),
            before_max_ms: long("message.timestamp.before.max.ms"),
            after_max_ms: long("message.timestamp.after.max.ms"),
        },
    }
}

/// The topic's compression.type: its override, else the broker's `compression.type`.
pub(crate) fn compression_type<'a>(settings: &'a Settings, overrides: &'a BTreeMap<String, String>) -> &'a str {
    overrides
        .get("compression.type")
        .unwrap_or(&settings.compression_type)
        .trim()
}

/// The min.insync.replicas in force for a topic: its override, else the cluster default, else
/// the broker's setting.
pub(crate) fn min_insync_replicas(
    settings: &Settings,
    cluster: &ClusterDefaults,
    overrides: &BTreeMap<String, String>,
) -> i32 {
    overrides
        .get(MIN_INSYNC_REPLICAS)
        .or_else(|| cluster.get(MIN_INSYNC_REPLICAS))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(settings.min_insync_replicas)
}

/// Whether the topic allows electing a replica outside the ISR when no ISR member is alive.
pub(crate) fn unclean_leader_election(settings: &Settings, overrides: &BTreeMap<String, String>) -> bool {
    overrides
        .get("unclean.leader.election.enable")
        .map_or(settings.unclean_leader_election_enable, |v| {
            v.trim().eq_ignore_ascii_case("true")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_passes_its_own_check() {
        for d in TOPIC_CONFIGS {
            validate(d.name, d.fixed_default).unwrap_or_else(|e| panic!("{}: {e}", d.name));
        }
    }

    #[test]
    fn topic_override_beats_broker_setting() {
        let settings = crate::config::load(None, &["log.retention.ms=5000".into()]).unwrap();
        let mut overrides = BTreeMap::new();
        overrides.insert("segment.bytes".to_string(), "1024".to_string());
        let eff = effective(&settings, &BTreeMap::new(), &overrides);
        let get = |n: &str| eff.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(get("segment.bytes").source, ConfigSource::Topic);
        assert_eq!(get("retention.ms").value, "5000");
        assert_eq!(get("retention.ms").source, ConfigSource::StaticBroker);
        assert_eq!(get("retention.bytes").source, ConfigSource::Default);
        let lc = log_config(&settings, &BTreeMap::new(), &overrides);
        assert_eq!((lc.segment_bytes, lc.retention_ms), (1024, 5000));
    }

    /// Regression (issue 10): kafka-configs prints the broker's message; Sluice's were its own.
    #[test]
    fn unknown_or_bad_config_is_refused_in_kafkas_words() {
        let refused = |name: &str, value: &str| validate(name, value).unwrap_err();
        assert_eq!(
            refused("no.such.config", "1"),
            "Unknown topic config name: no.such.config"
        );
        assert_eq!(
            refused("retention.ms", "abc"),
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            refused("retention.ms", "-5"),
            "Invalid value -5 for configuration retention.ms: Value must be at least -1"
        );
        assert_eq!(
            refused("segment.bytes", "2147483648"),
            "Invalid value 2147483648 for configuration segment.bytes: Not a number of type INT"
        );
        assert_eq!(
            refused("min.cleanable.dirty.ratio", "2"),
            "Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"
        );
        assert_eq!(
            refused("unclean.leader.election.enable", "yes"),
            "Invalid value yes for configuration unclean.leader.election.enable: Expected value to be either true or false"
        );
        assert_eq!(
            refused("compression.type", "GZIP"),
            "Invalid value GZIP for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"
        );
        assert_eq!(
            refused("cleanup.policy", "Delete"),
            "Invalid value Delete for configuration cleanup.policy: String must be one of: compact, delete"
        );
        assert_eq!(
            refused("cleanup.policy", "delete,,compact"),
            "Configuration 'cleanup.policy' values must not be empty."
        );
        // Kafka trims numbers and reads booleans in any case.
        for (name, value) in [("retention.ms", " 100 "), ("unclean.leader.election.enable", "TRUE")] {
            validate(name, value).unwrap_or_else(|e| panic!("{name}={value:?}: {e}"));
        }
    }

    /// Regression (issue 10): DescribeConfigs listed 16 topic configs where Kafka 4.4 lists
    /// 37. These are Kafka 4.4's, with the types and defaults it reports for them.
    #[test]
    fn every_kafka_topic_config_is_known_with_its_type_and_default() {
        use ConfigType::*;
        let kafka = [
            ("cleanup.policy", List, "delete"),
            ("compression.gzip.level", Int, "-1"),
            ("compression.lz4.level", Int, "9"),
            ("compression.type", String, "producer"),
            ("compression.zstd.level", Int, "3"),
            ("delete.retention.ms", Long, "86400000"),
            ("errors.deadletterqueue.group.enable", Boolean, "false"),
            ("file.delete.delay.ms", Long, "60000"),
            ("flush.messages", Long, "9223372036854775807"),
            ("flush.ms", Long, "9223372036854775807"),
            ("follower.replication.throttled.replicas", List, ""),
            ("index.interval.bytes", Int, "4096"),
            ("leader.replication.throttled.replicas", List, ""),
            ("local.retention.bytes", Long, "-2"),
            ("local.retention.ms", Long, "-2"),
            ("max.compaction.lag.ms", Long, "9223372036854775807"),
            ("max.decompressed.message.bytes", Int, "2147483639"),
            ("max.message.bytes", Int, "1048588"),
            ("message.timestamp.after.max.ms", Long, "3600000"),
            ("message.timestamp.before.max.ms", Long, "9223372036854775807"),
            ("message.timestamp.type", String, "CreateTime"),
            ("min.cleanable.dirty.ratio", Double, "0.5"),
            ("min.compaction.lag.ms", Long, "0"),
            ("min.insync.replicas", Int, "1"),
            ("preallocate", Boolean, "false"),
            ("remote.copy.lag.bytes", Long, "-1"),
            ("remote.copy.lag.ms", Long, "0"),
            ("remote.log.copy.disable", Boolean, "false"),
            ("remote.log.delete.on.disable", Boolean, "false"),
            ("remote.storage.enable", Boolean, "false"),
            ("retention.bytes", Long, "-1"),
            ("retention.ms", Long, "604800000"),
            ("segment.bytes", Int, "1073741824"),
            ("segment.index.bytes", Int, "10485760"),
            ("segment.jitter.ms", Long, "0"),
            ("segment.ms", Long, "604800000"),
            ("unclean.leader.election.enable", Boolean, "false"),
        ];
        let ours: Vec<_> = effective(&Settings::defaults(), &BTreeMap::new(), &BTreeMap::new())
            .into_iter()
            .map(|e| (e.name, e.config_type, e.value))
            .collect();
        let kafka: Vec<_> = kafka.iter().map(|(n, t, v)| (*n, *t, v.to_string())).collect();
        assert_eq!(ours, kafka);
    }

    #[test]
    fn the_new_configs_take_kafkas_values_and_refuse_as_kafka_does() {
        for (name, value) in [
            ("leader.replication.throttled.replicas", "*"),
            ("leader.replication.throttled.replicas", " 0:1 , 1:2 "),
            ("follower.replication.throttled.replicas", ""),
            ("compression.gzip.level", "-1"),
            ("compression.zstd.level", "-131072"),
            ("local.retention.ms", "-2"),
            ("remote.storage.enable", "false"),
            ("remote.log.copy.disable", "true"),
            ("errors.deadletterqueue.group.enable", "true"),
            ("preallocate", "TRUE"),
        ] {
            validate(name, value).unwrap_or_else(|e| panic!("{name}={value:?}: {e}"));
        }
        let refused = |name: &str, value: &str| validate(name, value).unwrap_err();
        assert_eq!(
            refused("compression.gzip.level", "12"),
            "Invalid value 12 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1"
        );
        assert_eq!(
            refused("segment.index.bytes", "3"),
            "Invalid value 3 for configuration segment.index.bytes: Value must be at least 4"
        );
        assert_eq!(
            refused("leader.replication.throttled.replicas", "0:1,abc"),
            "Invalid value [0:1, abc] for configuration leader.replication.throttled.replicas: leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
        );
        // What a Kafka broker without tiered storage answers.
        assert_eq!(
            refused("remote.storage.enable", "true"),
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
        );
    }

    /// The broker-wide default of a topic config is checked as the config is, at start.
    #[test]
    fn a_bad_broker_default_of_a_topic_config_stops_the_start() {
        for (setting, value) in [
            ("compression.type", "brotli"),
            ("compression.lz4.level", "18"),
            ("log.message.timestamp.type", "NoTime"),
            ("log.cleaner.min.compaction.lag.ms", "10"),
            ("log.roll.hours", "0"),
        ] {
            let mut overrides = vec![format!("{setting}={value}")];
            if setting == "log.cleaner.min.compaction.lag.ms" {
                overrides.push("log.cleaner.max.compaction.lag.ms=5".into());
            }
            let err = crate::config::load(None, &overrides).unwrap_err().to_string();
            assert!(err.contains(&format!("'{setting}'")), "{setting}: {err}");
        }
        let s = crate::config::load(None, &["compression.type=zstd".into()]).unwrap();
        assert_eq!(compression_type(&s, &BTreeMap::new()), "zstd");
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
            let lc = log_config(&settings, &BTreeMap::new(), &overrides);
            let expected = if deletes { (604800000, 1000) } else { (-1, -1) };
            assert_eq!((lc.retention_ms, lc.retention_bytes), expected, "{policy:?}");
        }
    }
}
