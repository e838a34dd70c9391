//! The metadata image: topics, partitions and their configs, as replaying the metadata log
//! leaves them. Readers take an `Arc` snapshot; a change builds a new image and swaps it in.
//!
//! Pure data: no I/O, no locks. Applying a record that contradicts the image is a bug in
//! whoever wrote the log, so `apply` reports it instead of guessing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::records::MetadataRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionImage {
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
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
        matches!(self.name.as_str(), "__consumer_offsets" | "__transaction_state")
    }
}

/// A record that does not fit the image it is applied to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("metadata record does not apply: {0}")]
pub(crate) struct ApplyError(pub String);

#[derive(Debug, Clone, Default)]
pub(crate) struct MetadataImage {
    topics: BTreeMap<String, Arc<TopicImage>>,
    names_by_id: HashMap<Uuid, String>,
    /// The first producer id no block has handed out yet.
    next_producer_id: i64,
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
            } => {
                let topic = self.topic_mut(topic_id)?;
                topic.partitions.insert(
                    *partition,
                    PartitionImage {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
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
        }
        Ok(())
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

    #[test]
    fn duplicate_topic_or_unknown_id_does_not_apply() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        image.apply(&topic("t", id)).unwrap();
        assert!(image.apply(&topic("t", Uuid::new_v4())).is_err());
        assert!(image.apply(&partition(Uuid::new_v4(), 0)).is_err());
    }
}
