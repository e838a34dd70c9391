//! What goes in and out of the pure coordinator: events (requests, timer expiries, finished
//! log appends) in, actions (responses, appends, timers) out. Plain data, no behaviour.
//!
//! Strings and byte fields are owned (`String`, `Bytes`); error fields use the project's
//! `kafka_protocol::ResponseError`, `None` meaning no error. The API layer converts between
//! these and the versioned kafka-protocol messages.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use crate::coordinator::runtime;
pub(crate) use crate::group::consumer::heartbeat::{ConsumerHeartbeatRequest, ConsumerHeartbeatResponse};

#[cfg(test)]
pub(crate) use crate::coordinator::runtime::RawRecord;
pub(crate) use crate::coordinator::runtime::RequestId;

/// A protocol a member supports, in the member's order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Protocol {
    pub(crate) name: String,
    pub(crate) metadata: Bytes,
}

/// JoinGroup, all versions. `api_version` decides KIP-394 (v4+: a new dynamic member first gets
/// MEMBER_ID_REQUIRED) and KIP-814 (v9+: `skip_assignment`); for v0 the rebalance timeout is
/// the session timeout, as in Kafka.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub(crate) req: RequestId,
    pub(crate) api_version: i16,
    pub(crate) group_id: String,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
    /// From the request header.
    pub(crate) client_id: String,
    /// Kafka stores `"/" + ip`, e.g. `/127.0.0.1`; DescribeGroups shows it.
    pub(crate) client_host: String,
    pub(crate) reason: Option<String>,
}

/// SyncGroup, all versions (`protocol_type`/`protocol_name` are v5+, `None` before).
#[derive(Debug, Clone)]
pub(crate) struct SyncRequest {
    pub(crate) req: RequestId,
    pub(crate) group_id: String,
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    /// (member id, assignment); only the leader's are used.
    pub(crate) assignments: Vec<(String, Bytes)>,
}

/// Heartbeat, all versions.
#[derive(Debug, Clone)]
pub(crate) struct HeartbeatRequest {
    pub(crate) req: RequestId,
    pub(crate) group_id: String,
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
}

/// LeaveGroup. For v0-v2 the API layer passes the single top-level member id as one member
/// and copies that member's error to the top level of the response, as Kafka does.
#[derive(Debug, Clone)]
pub(crate) struct LeaveRequest {
    pub(crate) req: RequestId,
    pub(crate) group_id: String,
    pub(crate) members: Vec<LeavingMember>,
}

#[derive(Debug, Clone)]
pub(crate) struct LeavingMember {
    /// Empty with a `group_instance_id`: administrative removal of a static member.
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) reason: Option<String>,
}

/// OffsetCommit, all versions. Absent fields take Kafka's defaults: generation -1, member id
/// "", retention -1 (broker default), commit timestamp -1 (now), leader epoch -1.
#[derive(Debug, Clone)]
pub(crate) struct CommitRequest {
    pub(crate) req: RequestId,
    pub(crate) api_version: i16,
    pub(crate) group_id: String,
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    /// v2-v4 only; -1 = use `offsets.retention.minutes`.
    pub(crate) retention_time_ms: i64,
    pub(crate) topics: Vec<CommitTopic>,
    /// TxnOffsetCommit: the (producer id, epoch) whose transaction the offsets are part of;
    /// they take effect only when its COMMIT marker is written here.
    pub(crate) transaction: Option<(i64, i16)>,
}

#[derive(Debug, Clone)]
pub(crate) struct CommitTopic {
    pub(crate) name: String,
    pub(crate) partitions: Vec<CommitPartition>,
}

#[derive(Debug, Clone)]
pub(crate) struct CommitPartition {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: Option<String>,
    /// v1 only; -1 = now.
    pub(crate) commit_timestamp_ms: i64,
}

/// DeleteGroups for the groups of this coordinator (the API layer splits a request by
/// coordinator partition and merges the answers).
#[derive(Debug, Clone)]
pub(crate) struct DeleteGroupsRequest {
    pub(crate) req: RequestId,
    pub(crate) group_ids: Vec<String>,
}

/// OffsetDelete.
#[derive(Debug, Clone)]
pub(crate) struct OffsetDeleteRequest {
    pub(crate) req: RequestId,
    pub(crate) group_id: String,
    /// (topic, partitions)
    pub(crate) topics: Vec<(String, Vec<i32>)>,
}

/// Timers the core asks the shell to run. A key names at most one timer: scheduling a key again
/// replaces its deadline. The core remembers its own deadlines: a `TimerFired` for a key it
/// cancelled or already handled is ignored, and one that arrives before the deadline (a stale
/// fire, or the shell's timer clock ahead of the `now_ms` it passes) is asked for again with a
/// fresh `ScheduleTimer`, so neither a late nor an early fire can break a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKey {
    /// A member's session (also a KIP-394 pending member's, and a new member's join timeout).
    Heartbeat { group_id: String, member_id: String },
    /// The join phase of a rebalance: initial delay or rebalance timeout.
    Join { group_id: String },
    /// Members must send SyncGroup within the rebalance timeout after the join phase.
    Sync { group_id: String },
    /// The periodic offset expiry sweep (`offsets.retention.check.interval.ms`).
    OffsetExpiration,
    /// A consumer group member's session (`group.consumer.session.timeout.ms`).
    ConsumerSession { group_id: String, member_id: String },
    /// A consumer group member's deadline to revoke partitions (its rebalance timeout).
    ConsumerRevocation { group_id: String, member_id: String },
}

/// Everything that can happen to a coordinator.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Join(JoinRequest),
    Sync(SyncRequest),
    Heartbeat(HeartbeatRequest),
    Leave(LeaveRequest),
    CommitOffsets(CommitRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    /// KIP-848's ConsumerGroupHeartbeat.
    ConsumerHeartbeat(ConsumerHeartbeatRequest),
    /// The COMMIT or ABORT marker of `producer_id`'s transaction is written in this partition:
    /// its transactional offset commits take effect, or are dropped.
    TxnCompleted {
        producer_id: i64,
        commit: bool,
    },
    /// Topic partitions were deleted: their committed offsets are removed (tombstones).
    PartitionsDeleted {
        partitions: Vec<(String, i32)>,
    },
    TimerFired {
        key: TimerKey,
    },
    /// The append of `Action::Persist { token }` finished: `Err` carries the append's error
    /// (e.g. NotLeaderOrFollower, NotEnoughReplicas, RequestTimedOut); the core maps it to the
    /// code Kafka answers.
    Persisted {
        token: u64,
        result: Result<(), ResponseError>,
    },
}

/// What the shell must do, in order: the shared coordinator runtime's actions. A group's
/// writes are plain records (`Write::Records`) of `__consumer_offsets`; it has no effects.
pub(crate) type Action = runtime::Action<Response, TimerKey, NoEffect>;

/// The group coordinator asks nothing of its shell beyond answers, appends and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoEffect {}

/// A response body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Response {
    Join(JoinResponse),
    Sync(SyncResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveResponse),
    OffsetCommit(OffsetCommitResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
    ConsumerHeartbeat(ConsumerHeartbeatResponse),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinResponse {
    pub(crate) error: Option<ResponseError>,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader: String,
    pub(crate) skip_assignment: bool,
    pub(crate) member_id: String,
    /// Filled for the leader only.
    pub(crate) members: Vec<JoinMember>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinMember {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyncResponse {
    pub(crate) error: Option<ResponseError>,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeartbeatResponse {
    pub(crate) error: Option<ResponseError>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LeaveResponse {
    pub(crate) error: Option<ResponseError>,
    pub(crate) members: Vec<LeaveMemberResponse>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LeaveMemberResponse {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) error: Option<ResponseError>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OffsetCommitResponse {
    pub(crate) topics: Vec<TopicErrors>,
}

/// Per-partition errors of one topic, in request order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopicErrors {
    pub(crate) name: String,
    pub(crate) partitions: Vec<(i32, Option<ResponseError>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeleteGroupsResponse {
    pub(crate) results: Vec<(String, Option<ResponseError>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OffsetDeleteResponse {
    /// When set, `topics` is empty.
    pub(crate) error: Option<ResponseError>,
    pub(crate) topics: Vec<TopicErrors>,
}

impl JoinResponse {
    /// A JoinGroup error: no generation (-1), no protocol, no leader.
    pub(crate) fn error(member_id: impl Into<String>, error: ResponseError) -> Self {
        Self {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

impl SyncResponse {
    pub(crate) fn error(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

impl OffsetCommitResponse {
    /// The same error for every partition of the request.
    pub(crate) fn all(topics: &[CommitTopic], error: Option<ResponseError>) -> Self {
        let topics = topics
            .iter()
            .map(|t| TopicErrors {
                name: t.name.clone(),
                partitions: t.partitions.iter().map(|p| (p.partition, error)).collect(),
            })
            .collect();
        Self { topics }
    }
}
