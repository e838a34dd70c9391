//! Cluster metadata: the typed records of the metadata log, the image they replay into, and
//! the service that plans, commits and publishes changes.
//!
//! May call: the metadata log store (and through it `log`). Must never call the replica layer
//! or the API layer: the broker wires the image into them after a commit.

pub(crate) mod brokers;
pub(crate) mod client_quotas;
pub(crate) mod cluster_configs;
pub(crate) mod elections;
pub(crate) mod features;
pub(crate) mod group_configs;
pub(crate) mod image;
pub(crate) mod reassignments;
pub(crate) mod records;
pub(crate) mod scram_credentials;
#[cfg(test)]
pub(crate) mod testkit;
pub(crate) mod topic_config;
pub(crate) mod topics;

use std::sync::Arc;

use tokio::sync::watch;

pub(crate) use image::{is_internal_topic, MetadataImage, PartitionImage, TopicImage};
pub(crate) use records::MetadataRecord;

/// The metadata log's topic name (its directory under `log.dirs` is `__cluster_metadata-0`).
pub(crate) const METADATA_TOPIC: &str = "__cluster_metadata";

/// Why a metadata change was refused or failed. Mapped to Kafka codes in `crate::error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MetadataError {
    #[error("{0}")]
    InvalidTopic(String),
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("The topic '{0}' does not exist.")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// An UpdateFeatures that cannot be carried out (Kafka's INVALID_UPDATE_VERSION).
    #[error("{0}")]
    InvalidUpdateVersion(String),
    #[error(transparent)]
    Apply(#[from] image::ApplyError),
    /// The active controller refused the change; it chose the Kafka code.
    #[error("{message}")]
    Remote { code: i16, message: String },
    /// No active controller could be reached in time (an election, or no quorum).
    #[error("{0}")]
    ControllerUnavailable(String),
    /// This node's Raft stopped: it cannot follow the metadata any more.
    #[error("the metadata log stopped on this node")]
    MetadataLogStopped,
    /// The controller answered with a reply of the wrong kind (a bug, not the client's fault).
    #[error("{0}")]
    UnexpectedReply(String),
    /// The change is committed, but this broker could not create its partitions of it.
    #[error("committed, but local partitions could not be created: {0}")]
    LocalStorage(String),
}

/// What this node has applied of the metadata log: the image after the entry at `index`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Applied {
    pub(crate) index: u64,
    pub(crate) image: Arc<MetadataImage>,
}

/// The node's read side of the metadata: the latest applied image, never torn.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    applied: watch::Receiver<Applied>,
}

impl Metadata {
    pub(crate) fn new(applied: watch::Receiver<Applied>) -> Metadata {
        Metadata { applied }
    }

    /// The current image: a snapshot that never changes under the caller.
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.applied.borrow().image.clone()
    }

    /// The current image and the index it was read at, together.
    pub(crate) fn applied(&self) -> Applied {
        self.applied.borrow().clone()
    }
}
