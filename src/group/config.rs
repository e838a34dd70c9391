//! The group coordinator's settings, with Kafka's names and defaults.

/// Settings of the group coordinator. Defaults are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members (extended while members keep joining, up to the rebalance timeout).
    pub(crate) initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`.
    pub(crate) min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub(crate) max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub(crate) max_size: usize,
    /// How long a new member may wait in a JoinGroup before it is dropped (Kafka's internal
    /// `CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS`, 5 minutes).
    pub(crate) new_member_join_timeout_ms: i32,
    /// `offsets.retention.minutes`, in milliseconds.
    pub(crate) offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: period of the offset expiry sweep.
    pub(crate) offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes` (compared, as Kafka does, with the UTF-16 length).
    pub(crate) offset_metadata_max_bytes: usize,
    /// KIP-848 consumer groups.
    pub(crate) consumer: ConsumerGroupConfig,
}

/// Settings of KIP-848 consumer groups, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerGroupConfig {
    /// Whether `group.coordinator.rebalance.protocols` lists `consumer`.
    pub(crate) enabled: bool,
    /// `group.consumer.session.timeout.ms`.
    pub(crate) session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub(crate) heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`.
    pub(crate) max_size: usize,
    /// `group.consumer.assignors` as short names (`uniform`, `range`); the first is the default.
    pub(crate) assignors: Vec<String>,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            assignors: vec!["uniform".into(), "range".into()],
        }
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            new_member_join_timeout_ms: 5 * 60 * 1_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1_000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4_096,
            consumer: ConsumerGroupConfig::default(),
        }
    }
}
