//! The typed records of the metadata log, modelled on KRaft's (TopicRecord, PartitionRecord,
//! ConfigRecord, RemoveTopicRecord, RegisterBrokerRecord, Fence/UnfenceBrokerRecord,
//! PartitionChangeRecord). The image is whatever replaying them in order produces.
//!
//! They are stored as the JSON value of a Kafka record in `__cluster_metadata-0`; a change that
//! needs several records is one batch, so it is applied whole or not at all after a crash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::brokers::BrokerEndpoint;
use super::client_quotas::QuotaValue;
use super::image::PartitionDelta;
use crate::authz::Acl;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum MetadataRecord {
    /// A topic came into being, with its topic-level config overrides.
    Topic {
        name: String,
        topic_id: Uuid,
        configs: BTreeMap<String, String>,
    },
    /// A partition came into being (creation or CreatePartitions); later changes are
    /// PartitionChange records. `adding` and `removing` are set only in a snapshot of a
    /// partition being reassigned (absent in records written before reassignments existed).
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        adding: Vec<i32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removing: Vec<i32>,
        /// Eligible leader replicas (KIP-966); empty in logs written before them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        elr: Vec<i32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        last_known_elr: Vec<i32>,
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
    /// The cluster's id, written once by the first active controller, so every node of the
    /// cluster reports the same one.
    ClusterId { cluster_id: String },
    /// A broker setting set (Some) or removed (None) for every broker at run time (KRaft's
    /// ConfigRecord for the default BROKER resource ""). The active controller writes
    /// `min.insync.replicas` here at bootstrap, as Kafka's does with eligible leader replicas.
    ClusterConfig { name: String, value: Option<String> },
    /// A feature's finalized level (KRaft's FeatureLevelRecord); level 0 removes it.
    FeatureLevel { name: String, level: i16 },
    /// A group config override was set (Some) or removed (None) (KRaft's ConfigRecord for a
    /// GROUP resource).
    GroupConfig {
        group: String,
        name: String,
        value: Option<String>,
    },
    /// Every eligible leader replica of a topic (or of all topics) is no longer eligible: the
    /// `min.insync.replicas` they were counted against changed (KRaft's ClearElrRecord).
    ClearElr { topic_id: Option<Uuid> },
    /// A broker registered (KRaft's RegisterBrokerRecord). A new incarnation (a restart)
    /// replaces the old registration and starts fenced until the broker has caught up.
    RegisterBroker {
        broker_id: i32,
        incarnation_id: Uuid,
        host: String,
        port: u16,
        rack: Option<String>,
        /// The ids of the broker's log directories (KIP-858's `LogDirs`); absent in records
        /// written before Sluice had several.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        log_dirs: Vec<Uuid>,
        /// Every listener's endpoint (RegisterBrokerRecord `EndPoints`); absent in records
        /// written before brokers registered more than their inter-broker endpoint.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listeners: Vec<BrokerEndpoint>,
    },
    /// The broker stopped heartbeating (or asked to shut down): it leads nothing until unfenced.
    FenceBroker { broker_id: i32 },
    /// The broker is alive and caught up with the metadata log.
    UnfenceBroker { broker_id: i32 },
    /// A user's SCRAM credential for one mechanism was set (Kafka's UserScramCredentialRecord;
    /// `mechanism` is its type code, 1 SCRAM-SHA-256, 2 SCRAM-SHA-512).
    UserScramCredential {
        name: String,
        mechanism: i8,
        salt: Vec<u8>,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
        iterations: i32,
    },
    /// A user's SCRAM credential for one mechanism was deleted.
    RemoveUserScramCredential { name: String, mechanism: i8 },
    /// A client quota was set or removed (Kafka's ClientQuotaRecord): `entity` maps entity types
    /// ("user", "client-id") to names, `None` being the default.
    ClientQuota {
        entity: Vec<(String, Option<String>)>,
        key: String,
        value: QuotaValue,
        remove: bool,
    },
    /// A partition's leader, ISR or replica assignment changed (KRaft's
    /// PartitionChangeRecord). The partition epoch goes up on every change; the leader epoch
    /// when the leader changes or a replica is removed (KIP-455: a removed replica must not
    /// fetch in the epoch that dropped it). `replicas`, `adding` and `removing` are set only
    /// when they change (a reassignment), so records written before reassignments existed
    /// replay unchanged.
    PartitionChange {
        topic_id: Uuid,
        partition: i32,
        leader: i32,
        isr: Vec<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replicas: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        elr: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_known_elr: Option<Vec<i32>>,
    },
    /// An ACL came into being under `id` (Kafka's AccessControlEntryRecord: resource type,
    /// name and pattern type, principal, host, operation and permission type as Kafka codes).
    AccessControlEntry {
        id: Uuid,
        #[serde(flatten)]
        acl: Acl,
    },
    /// The ACL with `id` is gone (Kafka's RemoveAccessControlEntryRecord).
    RemoveAccessControlEntry { id: Uuid },
}

impl MetadataRecord {
    /// The PartitionChange record that applies `delta` to one partition.
    pub(crate) fn partition_change(topic_id: Uuid, partition: i32, delta: PartitionDelta) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            topic_id,
            partition,
            leader: delta.leader,
            isr: delta.isr,
            replicas: delta.replicas,
            adding: delta.adding,
            removing: delta.removing,
            elr: delta.elr,
            last_known_elr: delta.last_known_elr,
        }
    }
}
