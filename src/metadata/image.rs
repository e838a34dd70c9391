//! The metadata image: brokers, topics, partitions and their configs, as replaying the
//! metadata log leaves them. Readers take an `Arc` snapshot; a change builds a new image and swaps it in.
//!
//! Pure data: no I/O, no locks. Applying a record that contradicts the image is a bug in
//! whoever wrote the log, so `apply` reports it instead of guessing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::brokers::BrokerEndpoint;
use super::client_quotas::ClientQuotas;
use super::records::MetadataRecord;
use super::scram_credentials::ScramCredentials;
use super::topic_config::MIN_INSYNC_REPLICAS;
use crate::authz::AclTable;
use crate::config::ClusterDefaults;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PartitionImage {
    /// During a reassignment: the target replicas, then those being removed (KIP-455).
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    /// Replicas a reassignment adds (not yet in the ISR when it started); empty otherwise.
    pub(crate) adding: Vec<i32>,
    /// Replicas a reassignment removes once every target replica is in the ISR.
    pub(crate) removing: Vec<i32>,
    /// Eligible leader replicas (KIP-966): replicas that left the ISR while it was below
    /// `min.insync.replicas`, so they hold every committed record and may lead once the ISR is
    /// empty.
    pub(crate) elr: Vec<i32>,
    /// The leader when the ISR became empty, electable (as an unclean election) when no ISR or
    /// ELR member is left.
    pub(crate) last_known_elr: Vec<i32>,
}

/// What a PartitionChange record sets: the fields of `MetadataRecord::PartitionChange`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PartitionDelta {
    pub(crate) leader: i32,
    pub(crate) isr: Vec<i32>,
    /// `None`: unchanged.
    pub(crate) replicas: Option<Vec<i32>>,
    pub(crate) adding: Option<Vec<i32>>,
    pub(crate) removing: Option<Vec<i32>>,
    pub(crate) elr: Option<Vec<i32>>,
    pub(crate) last_known_elr: Option<Vec<i32>>,
}

impl PartitionImage {
    /// Whether a reassignment is in progress (Kafka's `isReassigning`).
    pub(crate) fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replica set before the reassignment in progress, if any (replicas minus adding).
    pub(crate) fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding.contains(r))
            .collect()
    }

    /// The partition once `delta` is applied: the partition epoch always goes up, the leader
    /// epoch when the leader changes or a replica leaves the replica set.
    pub(crate) fn changed(&self, delta: &PartitionDelta) -> PartitionImage {
        let mut p = self.clone();
        let replicas = delta.replicas.as_ref().unwrap_or(&self.replicas);
        let shrunk = self.replicas.iter().any(|r| !replicas.contains(r));
        if p.leader != delta.leader || shrunk {
            p.leader_epoch += 1;
        }
        p.leader = delta.leader;
        p.isr = delta.isr.clone();
        p.replicas = replicas.clone();
        if let Some(adding) = &delta.adding {
            p.adding = adding.clone();
        }
        if let Some(removing) = &delta.removing {
            p.removing = removing.clone();
        }
        if let Some(elr) = &delta.elr {
            p.elr = elr.clone();
        }
        if let Some(lke) = &delta.last_known_elr {
            p.last_known_elr = lke.clone();
        }
        p.partition_epoch += 1;
        p
    }

    /// The record that turns `self` into a partition with `delta`'s leader, ISR and replicas.
    pub(crate) fn delta_to(&self, target: &PartitionImage) -> PartitionDelta {
        let differs = |old: &[i32], new: &[i32]| (old != new).then(|| new.to_vec());
        PartitionDelta {
            leader: target.leader,
            isr: target.isr.clone(),
            replicas: differs(&self.replicas, &target.replicas),
            adding: differs(&self.adding, &target.adding),
            removing: differs(&self.removing, &target.removing),
            elr: differs(&self.elr, &target.elr),
            last_known_elr: differs(&self.last_known_elr, &target.last_known_elr),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicImage {
    pub(crate) name: String,
    pub(crate) id: Uuid,
    pub(crate) configs: BTreeMap<String, String>,
    pub(crate) partitions: BTreeMap<i32, PartitionImage>,
}

impl TopicImage {
    pub(crate) fn is_internal(&self) -> bool {
        is_internal_topic(&self.name)
    }
}

/// Kafka's internal topics (`Topic.isInternal`), whether or not they exist yet.
pub(crate) fn is_internal_topic(name: &str) -> bool {
    matches!(name, "__consumer_offsets" | "__transaction_state")
}

/// A record that does not fit the image it is applied to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("metadata record does not apply: {0}")]
pub(crate) struct ApplyError(pub String);

/// A registered broker: where clients reach it, and whether it may lead partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerImage {
    pub(crate) id: i32,
    pub(crate) incarnation_id: Uuid,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) rack: Option<String>,
    pub(crate) fenced: bool,
    /// Its log directories' ids, as it registered them.
    pub(crate) log_dirs: Vec<Uuid>,
    /// Every listener it registered; empty when its registration predates them, and then
    /// `host`:`port` is its only endpoint.
    pub(crate) listeners: Vec<BrokerEndpoint>,
}

impl BrokerImage {
    /// Where a client that connected on `listener` reaches this broker (Kafka's
    /// `BrokerRegistration.node(listenerName)`); None when the broker has no listener of that
    /// name, so it is left out of that client's answers. A registration without listeners
    /// (older records) has one endpoint, given to every client. `None` as the listener asks for
    /// the registered (inter-broker) endpoint.
    pub(crate) fn endpoint(&self, listener: Option<&str>) -> Option<(&str, u16)> {
        match listener {
            Some(name) if !self.listeners.is_empty() => self
                .listeners
                .iter()
                .find(|l| l.name == name)
                .map(|l| (l.host.as_str(), l.port)),
            _ => Some((self.host.as_str(), self.port)),
        }
    }
}

/// Why a client on some listener is told no node for a broker id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreachable {
    /// Not registered, or fenced.
    NotAlive,
    /// Alive, but without a listener of the client's listener name (LISTENER_NOT_FOUND).
    NoListener,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MetadataImage {
    topics: BTreeMap<String, Arc<TopicImage>>,
    names_by_id: HashMap<Uuid, String>,
    brokers: BTreeMap<i32, BrokerImage>,
    cluster_id: Option<String>,
    /// Broker settings set for every broker in the metadata log (`ClusterConfig` records).
    cluster_configs: ClusterDefaults,
    /// Group config overrides (`GroupConfig` records), by group.
    group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The first producer id no block has handed out yet.
    next_producer_id: i64,
    /// Finalized feature levels from `FeatureLevel` records (`metadata::features`).
    features: BTreeMap<String, i16>,
    /// The cluster's ACLs (AccessControlEntry records), shared until one changes.
    acls: Arc<AclTable>,
    /// Users' SCRAM credentials.
    scram: ScramCredentials,
    /// Client quotas by user and client id.
    quotas: ClientQuotas,
}

impl MetadataImage {
    pub(crate) fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub(crate) fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.names_by_id.get(id).and_then(|n| self.topics.get(n))
    }

    pub(crate) fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    pub(crate) fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics.values()
    }

    /// The ACLs the authorizer decides with.
    pub(crate) fn acls(&self) -> &AclTable {
        &self.acls
    }

    pub(crate) fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Broker settings set for every broker at run time; they win over each broker's file.
    pub(crate) fn cluster_configs(&self) -> &ClusterDefaults {
        &self.cluster_configs
    }

    /// The level a `FeatureLevel` record finalized for feature `name` (0 without one).
    pub(crate) fn feature_level(&self, name: &str) -> i16 {
        self.features.get(name).copied().unwrap_or(0)
    }

    /// The groups that have config overrides.
    pub(crate) fn groups_with_configs(&self) -> impl Iterator<Item = &str> {
        self.group_configs.keys().map(String::as_str)
    }

    /// A group's config overrides, if it has any.
    pub(crate) fn group_configs(&self, group: &str) -> Option<&BTreeMap<String, String>> {
        self.group_configs.get(group)
    }

    /// Users' SCRAM credentials, as SASL/SCRAM authenticates against them.
    pub(crate) fn scram_credentials(&self) -> &ScramCredentials {
        &self.scram
    }

    /// Client quotas, as the quota managers enforce them.
    pub(crate) fn client_quotas(&self) -> &ClientQuotas {
        &self.quotas
    }

    pub(crate) fn broker(&self, id: i32) -> Option<&BrokerImage> {
        self.brokers.get(&id)
    }

    pub(crate) fn brokers_fenced(&self) -> usize {
        self.brokers.values().filter(|b| b.fenced).count()
    }

    /// The brokers clients are told about and partitions may be placed on.
    pub(crate) fn live_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Live brokers with their endpoint on `listener` (Kafka's `getAliveBrokerNodes`): those
    /// without that listener are left out.
    pub(crate) fn live_endpoints<'a>(
        &'a self,
        listener: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a BrokerImage, (&'a str, u16))> + 'a {
        self.live_brokers()
            .filter_map(move |b| b.endpoint(listener).map(|e| (b, e)))
    }

    /// A live broker's endpoint on `listener` (Kafka's `getAliveBrokerNode`), or why there is none.
    pub(crate) fn live_endpoint(&self, id: i32, listener: Option<&str>) -> Result<(&str, u16), Unreachable> {
        let b = self.broker(id).filter(|b| !b.fenced).ok_or(Unreachable::NotAlive)?;
        b.endpoint(listener).ok_or(Unreachable::NoListener)
    }

    /// Records that replay into this image: what a snapshot of the metadata log holds.
    pub(crate) fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(id) = &self.cluster_id {
            out.push(MetadataRecord::ClusterId { cluster_id: id.clone() });
        }
        for (name, value) in &self.cluster_configs {
            out.push(MetadataRecord::ClusterConfig {
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
        for (name, level) in &self.features {
            out.push(MetadataRecord::FeatureLevel {
                name: name.clone(),
                level: *level,
            });
        }
        for (group, configs) in &self.group_configs {
            for (name, value) in configs {
                out.push(MetadataRecord::GroupConfig {
                    group: group.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker {
                broker_id: b.id,
                incarnation_id: b.incarnation_id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
                log_dirs: b.log_dirs.clone(),
                listeners: b.listeners.clone(),
            });
            if !b.fenced {
                out.push(MetadataRecord::UnfenceBroker { broker_id: b.id });
            }
        }
        out.extend(self.scram.to_records());
        out.extend(self.quotas.to_records());
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds {
                next_producer_id: self.next_producer_id,
            });
        }
        for (id, acl) in self.acls.iter() {
            out.push(MetadataRecord::AccessControlEntry {
                id: *id,
                acl: acl.clone(),
            });
        }
        for t in self.topics.values() {
            out.push(MetadataRecord::Topic {
                name: t.name.clone(),
                topic_id: t.id,
                configs: t.configs.clone(),
            });
            for (&partition, p) in &t.partitions {
                out.push(MetadataRecord::Partition {
                    topic_id: t.id,
                    partition,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    adding: p.adding.clone(),
                    removing: p.removing.clone(),
                    elr: p.elr.clone(),
                    last_known_elr: p.last_known_elr.clone(),
                });
            }
        }
        out
    }

    /// Applies one record in place.
    pub(crate) fn apply(&mut self, record: &MetadataRecord) -> Result<(), ApplyError> {
        match record {
            MetadataRecord::Topic {
                name,
                topic_id,
                configs,
            } => {
                if self.topics.contains_key(name) || self.names_by_id.contains_key(topic_id) {
                    return Err(ApplyError(format!("topic {name} ({topic_id}) exists")));
                }
                self.names_by_id.insert(*topic_id, name.clone());
                let topic = TopicImage {
                    name: name.clone(),
                    id: *topic_id,
                    configs: configs.clone(),
                    partitions: BTreeMap::new(),
                };
                self.topics.insert(name.clone(), Arc::new(topic));
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                adding,
                removing,
                elr,
                last_known_elr,
            } => {
                let topic = self.topic_mut(topic_id)?;
                // Creation only (changes are PartitionChange): a second one is a stale plan.
                if topic.partitions.contains_key(partition) {
                    return Err(ApplyError(format!("partition {partition} of {topic_id} exists")));
                }
                topic.partitions.insert(
                    *partition,
                    PartitionImage {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                        adding: adding.clone(),
                        removing: removing.clone(),
                        elr: elr.clone(),
                        last_known_elr: last_known_elr.clone(),
                    },
                );
            }
            MetadataRecord::TopicConfig { topic_id, name, value } => {
                let topic = self.topic_mut(topic_id)?;
                match value {
                    Some(v) => topic.configs.insert(name.clone(), v.clone()),
                    None => topic.configs.remove(name),
                };
            }
            MetadataRecord::ClusterConfig { name, value } => {
                match value {
                    Some(v) => self.cluster_configs.insert(name.clone(), v.clone()),
                    None => self.cluster_configs.remove(name),
                };
            }
            MetadataRecord::FeatureLevel { name, level } => {
                match *level {
                    0 => self.features.remove(name),
                    l => self.features.insert(name.clone(), l),
                };
            }
            MetadataRecord::GroupConfig { group, name, value } => match value {
                Some(v) => {
                    let configs = self.group_configs.entry(group.clone()).or_default();
                    configs.insert(name.clone(), v.clone());
                }
                None => {
                    if let Some(configs) = self.group_configs.get_mut(group) {
                        configs.remove(name);
                        if configs.is_empty() {
                            self.group_configs.remove(group);
                        }
                    }
                }
            },
            MetadataRecord::ClearElr { topic_id } => {
                let has_elr = |t: &TopicImage| {
                    t.partitions
                        .values()
                        .any(|p| !p.elr.is_empty() || !p.last_known_elr.is_empty())
                };
                let ids: Vec<Uuid> = match topic_id {
                    Some(id) => vec![*id],
                    None => self.topics.values().filter(|t| has_elr(t)).map(|t| t.id).collect(),
                };
                for id in ids {
                    let topic = self.topic_mut(&id)?;
                    for p in topic.partitions.values_mut() {
                        if !p.elr.is_empty() || !p.last_known_elr.is_empty() {
                            p.elr.clear();
                            p.last_known_elr.clear();
                            p.partition_epoch += 1;
                        }
                    }
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let name = self
                    .names_by_id
                    .remove(topic_id)
                    .ok_or_else(|| ApplyError(format!("no topic with id {topic_id}")))?;
                self.topics.remove(&name);
            }
            MetadataRecord::ProducerIds { next_producer_id } => {
                if *next_producer_id <= self.next_producer_id {
                    return Err(ApplyError(format!(
                        "producer id block ending at {next_producer_id} does not follow {}",
                        self.next_producer_id
                    )));
                }
                self.next_producer_id = *next_producer_id;
            }
            MetadataRecord::ClusterId { cluster_id } => {
                if self.cluster_id.as_ref().is_some_and(|c| c != cluster_id) {
                    return Err(ApplyError(format!("cluster id is already {:?}", self.cluster_id)));
                }
                self.cluster_id = Some(cluster_id.clone());
            }
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id,
                host,
                port,
                rack,
                log_dirs,
                listeners,
            } => {
                let broker = BrokerImage {
                    id: *broker_id,
                    incarnation_id: *incarnation_id,
                    host: host.clone(),
                    port: *port,
                    rack: rack.clone(),
                    fenced: true,
                    log_dirs: log_dirs.clone(),
                    listeners: listeners.clone(),
                };
                self.brokers.insert(*broker_id, broker);
            }
            MetadataRecord::AccessControlEntry { id, acl } => {
                if !Arc::make_mut(&mut self.acls).insert(*id, acl.clone()) {
                    return Err(ApplyError(format!("ACL {id} exists")));
                }
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                if Arc::make_mut(&mut self.acls).remove(id).is_none() {
                    return Err(ApplyError(format!("no ACL with id {id}")));
                }
            }
            MetadataRecord::UserScramCredential { .. } | MetadataRecord::RemoveUserScramCredential { .. } => {
                self.scram.apply(record)?
            }
            MetadataRecord::ClientQuota { .. } => self.quotas.apply(record)?,
            MetadataRecord::FenceBroker { broker_id } => self.broker_mut(*broker_id)?.fenced = true,
            MetadataRecord::UnfenceBroker { broker_id } => self.broker_mut(*broker_id)?.fenced = false,
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                leader,
                isr,
                replicas,
                adding,
                removing,
                elr,
                last_known_elr,
            } => {
                let topic = self.topic_mut(topic_id)?;
                let p = topic
                    .partitions
                    .get_mut(partition)
                    .ok_or_else(|| ApplyError(format!("no partition {partition} in topic {topic_id}")))?;
                let delta = PartitionDelta {
                    leader: *leader,
                    isr: isr.clone(),
                    replicas: replicas.clone(),
                    adding: adding.clone(),
                    removing: removing.clone(),
                    elr: elr.clone(),
                    last_known_elr: last_known_elr.clone(),
                };
                *p = p.changed(&delta);
            }
        }
        Ok(())
    }

    fn broker_mut(&mut self, id: i32) -> Result<&mut BrokerImage, ApplyError> {
        self.brokers
            .get_mut(&id)
            .ok_or_else(|| ApplyError(format!("broker {id} is not registered")))
    }

    /// The ISR size below which a topic's partitions keep eligible leader replicas: its
    /// `min.insync.replicas` (the topic's, else the cluster's, which the controller writes at
    /// bootstrap) capped by the replication factor, as Kafka's `getTopicEffectiveMinIsr`.
    pub(crate) fn min_isr(&self, topic: &TopicImage, replication_factor: usize) -> usize {
        let configured = topic
            .configs
            .get(MIN_INSYNC_REPLICAS)
            .or_else(|| self.cluster_configs.get(MIN_INSYNC_REPLICAS))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1);
        configured.min(replication_factor)
    }

    fn topic_mut(&mut self, id: &Uuid) -> Result<&mut TopicImage, ApplyError> {
        let name = self
            .names_by_id
            .get(id)
            .ok_or_else(|| ApplyError(format!("no topic with id {id}")))?;
        let topic = self.topics.get_mut(name).expect("names_by_id and topics agree");
        Ok(Arc::make_mut(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, id: Uuid) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: id,
            configs: BTreeMap::new(),
        }
    }

    fn partition(id: Uuid, p: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id: id,
            partition: p,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
            elr: Vec::new(),
            last_known_elr: Vec::new(),
        }
    }

    #[test]
    fn replaying_topic_and_partitions_builds_the_image() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        for r in [topic("orders", id), partition(id, 0), partition(id, 1)] {
            image.apply(&r).unwrap();
        }
        let t = image.topic("orders").unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(image.topic_by_id(&id).unwrap().name, "orders");
    }

    #[test]
    fn config_override_set_then_removed() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        image.apply(&topic("t", id)).unwrap();
        let set = |v: Option<&str>| MetadataRecord::TopicConfig {
            topic_id: id,
            name: "retention.ms".into(),
            value: v.map(String::from),
        };
        image.apply(&set(Some("1000"))).unwrap();
        assert_eq!(image.topic("t").unwrap().configs["retention.ms"], "1000");
        image.apply(&set(None)).unwrap();
        assert!(image.topic("t").unwrap().configs.is_empty());
    }

    #[test]
    fn removed_topic_is_gone_by_name_and_id_and_can_be_recreated() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        image.apply(&topic("t", id)).unwrap();
        image.apply(&MetadataRecord::RemoveTopic { topic_id: id }).unwrap();
        assert!(image.topic("t").is_none() && image.topic_by_id(&id).is_none());
        image.apply(&topic("t", Uuid::new_v4())).unwrap();
    }

    fn register(id: i32) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            broker_id: id,
            incarnation_id: Uuid::new_v4(),
            host: "127.0.0.1".into(),
            port: 9000 + id as u16,
            rack: None,
            log_dirs: vec![Uuid::from_u128(u128::from(id as u32))],
            listeners: vec![
                endpoint("PLAINTEXT", 9000 + id as u16),
                endpoint("SASL", 9100 + id as u16),
            ],
        }
    }

    fn endpoint(name: &str, port: u16) -> BrokerEndpoint {
        BrokerEndpoint {
            name: name.into(),
            host: "127.0.0.1".into(),
            port,
            security_protocol: "PLAINTEXT".into(),
        }
    }

    #[test]
    fn clients_get_brokers_on_their_listener_and_not_brokers_without_it() {
        let mut image = MetadataImage::default();
        image.apply(&register(1)).unwrap();
        // Broker 2 has no SASL listener.
        let mut two = register(2);
        if let MetadataRecord::RegisterBroker { listeners, .. } = &mut two {
            listeners.truncate(1);
        }
        image.apply(&two).unwrap();
        image.apply(&register(3)).unwrap();
        for id in [1, 2] {
            image.apply(&MetadataRecord::UnfenceBroker { broker_id: id }).unwrap();
        }
        let ports = |listener| {
            image
                .live_endpoints(listener)
                .map(|(b, (_, port))| (b.id, port))
                .collect::<Vec<_>>()
        };
        assert_eq!(ports(Some("SASL")), [(1, 9101)]);
        assert_eq!(ports(Some("PLAINTEXT")), [(1, 9001), (2, 9002)]);
        assert_eq!(ports(Some("OTHER")), []);
        assert_eq!(ports(None), [(1, 9001), (2, 9002)], "the registered endpoint");
        assert_eq!(image.live_endpoint(1, Some("SASL")), Ok(("127.0.0.1", 9101)));
        assert_eq!(image.live_endpoint(2, Some("SASL")), Err(Unreachable::NoListener));
        assert_eq!(
            image.live_endpoint(3, Some("SASL")),
            Err(Unreachable::NotAlive),
            "fenced"
        );
        assert_eq!(image.live_endpoint(4, Some("SASL")), Err(Unreachable::NotAlive));
        // A registration from before listeners were registered has one endpoint for everyone.
        let old: MetadataRecord = serde_json::from_str(
            r#"{"type":"RegisterBroker","broker_id":5,"incarnation_id":"00000000-0000-0000-0000-000000000005","host":"h","port":7,"rack":null}"#,
        )
        .unwrap();
        image.apply(&old).unwrap();
        image.apply(&MetadataRecord::UnfenceBroker { broker_id: 5 }).unwrap();
        assert_eq!(image.live_endpoint(5, Some("SASL")), Ok(("h", 7)));
        // Listeners survive a snapshot.
        let mut replayed = MetadataImage::default();
        for r in image.to_records() {
            replayed.apply(&r).unwrap();
        }
        assert_eq!(
            replayed.broker(1).unwrap().listeners,
            image.broker(1).unwrap().listeners
        );
        assert_eq!(replayed.live_endpoint(2, Some("SASL")), Err(Unreachable::NoListener));
    }

    #[test]
    fn brokers_register_fenced_and_unfence() {
        let mut image = MetadataImage::default();
        image.apply(&register(1)).unwrap();
        image.apply(&register(2)).unwrap();
        assert_eq!(image.live_brokers().count(), 0);
        image.apply(&MetadataRecord::UnfenceBroker { broker_id: 2 }).unwrap();
        assert_eq!(image.live_brokers().map(|b| b.id).collect::<Vec<_>>(), [2]);
        // A restart re-registers: fenced again until it catches up.
        image.apply(&register(2)).unwrap();
        assert_eq!(image.live_brokers().count(), 0);
        assert_eq!(
            image.broker(2).unwrap().log_dirs,
            [Uuid::from_u128(2)],
            "its log dirs, registered"
        );
        assert!(image.apply(&MetadataRecord::FenceBroker { broker_id: 9 }).is_err());
        // A record from before log dir ids were registered still replays.
        let old: MetadataRecord = serde_json::from_str(
            r#"{"type":"RegisterBroker","broker_id":3,"incarnation_id":"00000000-0000-0000-0000-000000000003","host":"h","port":1,"rack":null}"#,
        )
        .unwrap();
        image.apply(&old).unwrap();
        assert!(image.broker(3).unwrap().log_dirs.is_empty());
    }

    #[test]
    fn partition_change_bumps_epochs() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        image.apply(&topic("t", id)).unwrap();
        image.apply(&partition(id, 0)).unwrap();
        let change = |leader| {
            let delta = PartitionDelta {
                leader,
                isr: vec![1],
                ..PartitionDelta::default()
            };
            MetadataRecord::partition_change(id, 0, delta)
        };
        image.apply(&change(-1)).unwrap();
        image.apply(&change(-1)).unwrap();
        let p = &image.topic("t").unwrap().partitions[&0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (-1, 1, 2));
    }

    #[test]
    fn an_image_replays_from_its_own_records() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        let records = [
            MetadataRecord::ClusterId {
                cluster_id: "c1".into(),
            },
            register(1),
            register(2),
            MetadataRecord::UnfenceBroker { broker_id: 1 },
            MetadataRecord::ProducerIds { next_producer_id: 2000 },
            topic("t", id),
            partition(id, 0),
            MetadataRecord::partition_change(
                id,
                0,
                PartitionDelta {
                    leader: -1,
                    isr: vec![1],
                    ..PartitionDelta::default()
                },
            ),
        ];
        for r in &records {
            image.apply(r).unwrap();
        }
        let mut replayed = MetadataImage::default();
        for r in image.to_records() {
            replayed.apply(&r).unwrap();
        }
        assert_eq!(replayed, image);
    }

    #[test]
    fn duplicate_topic_or_unknown_id_does_not_apply() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        image.apply(&topic("t", id)).unwrap();
        assert!(image.apply(&topic("t", Uuid::new_v4())).is_err());
        assert!(image.apply(&partition(Uuid::new_v4(), 0)).is_err());
    }
}
