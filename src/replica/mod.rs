//! Partition replicas hosted by this broker: each partition's log plus its role state (leader
//! epoch, high watermark, in-sync replicas) and the waiters of long-poll fetches.
//!
//! May call: `log`. Must never call `api` or `net`; it learns about topics only from the
//! metadata image handed to [`ReplicaManager::reconcile`].

mod appender;
pub(crate) mod core;
mod dir_moves;
mod fetcher;
mod manager;
mod partition;
mod recompress;

pub(crate) use appender::Appender;
pub(crate) use dir_moves::FutureReplica;
pub(crate) use manager::ReplicaManager;
pub(crate) use partition::{Appended, FollowerFetch, FollowerRead, IsrProposal, Partition};
#[cfg(feature = "fuzzing")]
pub(crate) use recompress::recompress;

use crate::log::LogError;

#[cfg(test)]
mod tests;

/// Why a replica operation failed. Mapped to Kafka codes in `crate::error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplicaError {
    #[error("this broker does not host {topic}-{partition}")]
    UnknownTopicOrPartition { topic: String, partition: i32 },
    #[error("this broker does not lead {topic}-{partition}")]
    NotLeader { topic: String, partition: i32 },
    #[error("{isr} in-sync replicas, fewer than min.insync.replicas={min}")]
    NotEnoughReplicas { isr: usize, min: i32 },
    #[error("appended, but the ISR fell to {isr}, under min.insync.replicas={min}, before it was committed")]
    NotEnoughReplicasAfterAppend { isr: usize, min: i32 },
    #[error("not committed by the ISR within the request timeout")]
    Timeout,
    /// The topic's cleanup.policy does not allow it (DeleteRecords without `delete`).
    #[error("{0}")]
    PolicyViolation(String),
    /// A fetch answer from leader epoch {epoch}, after this replica moved on.
    #[error("fetched from leader epoch {epoch}, which this replica no longer follows")]
    StaleFetch { epoch: i32 },
    /// AlterReplicaLogDirs named a directory that is not one of `log.dirs`.
    #[error("{0} is not a log directory of this broker")]
    LogDirNotFound(String),
    /// AlterReplicaLogDirs for a partition this broker does not host (yet).
    #[error("this broker has no replica of {topic}-{partition}")]
    ReplicaNotAvailable { topic: String, partition: i32 },
    #[error(transparent)]
    Log(#[from] LogError),
}
