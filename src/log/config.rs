//! A partition log's settings, named after Kafka's topic configs: the log's own (segments,
//! retention, flushing, batch size), the cleaner's (`CompactionConfig`) and the timestamp
//! rules its appends follow (`TimestampPolicy`).
//!
//! Owns: the shape of the settings and Kafka's defaults. May call: nothing. Must never: read
//! the broker's settings or a topic's overrides (`metadata::topic_config` turns those into
//! this).

/// Per-partition settings, named after Kafka's topic configs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogConfig {
    /// Roll when the active segment would exceed this (capped at i32::MAX, as in Kafka).
    pub(crate) segment_bytes: u64,
    /// Roll when the active segment's first append is older than this; i64::MAX = never.
    pub(crate) segment_ms: i64,
    /// -1 = keep forever; else delete whole non-active segments whose largest timestamp is
    /// older than now - retention_ms.
    pub(crate) retention_ms: i64,
    /// -1 = no limit; else delete oldest whole non-active segments while the log stays at or
    /// above this size without them.
    pub(crate) retention_bytes: i64,
    pub(crate) index_interval_bytes: u32,
    /// fsync after this many appended records; u64::MAX = leave it to the OS.
    pub(crate) flush_interval_messages: u64,
    /// fsync when the last flush is older than this; i64::MAX = never.
    pub(crate) flush_interval_ms: i64,
    /// Largest single batch accepted, counting its 12-byte offset + length prefix.
    pub(crate) max_message_bytes: u32,
    /// cleanup.policy includes `delete`: clients may delete records (DeleteRecords).
    pub(crate) delete_policy: bool,
    /// cleanup.policy includes `compact`: the cleaner keeps the latest record per key, and
    /// appends must carry keys. `None`: never compacted.
    pub(crate) compaction: Option<CompactionConfig>,
    pub(crate) timestamps: TimestampPolicy,
}

/// What the log cleaner needs of a compacted log's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CompactionConfig {
    /// Tombstones are kept this long after a cleaning first covered them (delete.retention.ms).
    pub(crate) delete_retention_ms: i64,
    /// Cleaned once the dirty share of its bytes passes this (min.cleanable.dirty.ratio).
    pub(crate) min_cleanable_ratio: f64,
    /// A segment whose newest record is younger than this is not cleaned (min.compaction.lag.ms).
    pub(crate) min_compaction_lag_ms: i64,
    /// A log with a record older than this left uncleaned is cleaned whatever its dirty ratio
    /// (max.compaction.lag.ms).
    pub(crate) max_compaction_lag_ms: i64,
}

impl Default for CompactionConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        CompactionConfig {
            delete_retention_ms: 24 * 3600 * 1000,
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

/// How a leader treats the timestamps of the batches it appends (message.timestamp.*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampPolicy {
    /// LogAppendTime: the leader stamps each batch with its clock.
    pub(crate) log_append_time: bool,
    /// CreateTime only: refuse a record more than this older than the leader's clock.
    pub(crate) before_max_ms: i64,
    /// CreateTime only: refuse a record more than this ahead of the leader's clock.
    pub(crate) after_max_ms: i64,
}

impl Default for TimestampPolicy {
    /// Kafka 4's defaults: CreateTime, any age, at most an hour ahead.
    fn default() -> Self {
        TimestampPolicy {
            log_append_time: false,
            before_max_ms: i64::MAX,
            after_max_ms: 3_600_000,
        }
    }
}

impl Default for LogConfig {
    /// Kafka's broker defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            flush_interval_messages: u64::MAX,
            flush_interval_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            delete_policy: true,
            compaction: None,
            timestamps: TimestampPolicy::default(),
        }
    }
}
