//! The typed records of the metadata log, modelled on KRaft's (TopicRecord, PartitionRecord,
//! ConfigRecord, RemoveTopicRecord). The image is whatever replaying them in order produces.
//!
//! They are stored as the JSON value of a Kafka record in `__cluster_metadata-0`; a change that
//! needs several records is one batch, so it is applied whole or not at all after a crash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum MetadataRecord {
    /// A topic came into being, with its topic-level config overrides.
    Topic {
        name: String,
        topic_id: Uuid,
        configs: BTreeMap<String, String>,
    },
    /// A partition came into being (creation or CreatePartitions), or changed wholesale.
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// A topic config override was set (Some) or removed (None).
    TopicConfig {
        topic_id: Uuid,
        name: String,
        value: Option<String>,
    },
    /// A topic and all its partitions are gone.
    RemoveTopic { topic_id: Uuid },
    /// A block of producer ids was handed out; the next block starts here (KRaft's
    /// ProducerIdsRecord), so ids stay unique across restarts.
    ProducerIds { next_producer_id: i64 },
}
