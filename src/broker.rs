//! The broker's services wired together: what every API handler gets to work with.
//!
//! A metadata change goes metadata log → image → replicas, in that order, here and nowhere
//! else, so no handler can publish a change without making it durable first.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::config::{Listener, Settings};
use crate::group::api::Event;
use crate::group::runtime::{GroupCoordinator, OFFSETS_TOPIC};
use crate::metadata::topics::{self, ConfigChange, NewTopic, Placement};
use crate::metadata::{Metadata, MetadataError, MetadataImage, MetadataRecord};
use crate::metrics::Metrics;
use crate::replica::ReplicaManager;
use crate::txn::ProducerIdManager;

#[derive(Debug)]
pub(crate) struct Broker {
    pub(crate) settings: Arc<Settings>,
    pub(crate) node_id: i32,
    pub(crate) cluster_id: String,
    /// The endpoint clients are told to use.
    pub(crate) advertised: Listener,
    pub(crate) metadata: Metadata,
    pub(crate) replicas: Arc<ReplicaManager>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) producer_ids: ProducerIdManager,
    pub(crate) groups: GroupCoordinator,
    /// Cancelled when the node shuts down: parked requests (long polls) answer at once.
    pub(crate) shutdown: CancellationToken,
}

impl Broker {
    /// The brokers replicas may be placed on. One until the controller issue adds registration.
    fn brokers(&self) -> Vec<i32> {
        vec![self.node_id]
    }

    /// Commits a planned change and makes this broker's partitions follow it.
    fn change<F>(&self, plan: F) -> Result<Arc<MetadataImage>, MetadataError>
    where
        F: FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, MetadataError>,
    {
        let image = self.metadata.commit(plan, now_ms())?;
        let local = self.replicas.reconcile(&image);
        self.groups.reconcile(&self.replicas);
        // Committed either way; the client learns that this broker could not serve it (yet).
        local.map_err(|e| MetadataError::LocalStorage(e.to_string()))?;
        Ok(image)
    }

    /// Retries creating local partitions a previous change could not (e.g. out of files).
    pub(crate) fn retry_reconcile(&self) {
        if self.replicas.needs_reconcile() {
            let _ = self.replicas.reconcile(&self.metadata.image());
            self.groups.reconcile(&self.replicas);
        }
    }

    /// Creates `__consumer_offsets` if it does not exist yet (Kafka creates it on the first
    /// FindCoordinator): compacted, `offsets.topic.*` partitions and segment size.
    pub(crate) fn ensure_offsets_topic(&self) -> Result<(), MetadataError> {
        if self.metadata.image().topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let rf = self
            .settings
            .offsets_topic_replication_factor
            .min(self.brokers().len() as i32);
        let topic = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: self.groups.partitions,
            replication_factor: rf as i16,
            assignments: Default::default(),
            configs: [
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "segment.bytes".to_string(),
                    self.settings.offsets_topic_segment_bytes.to_string(),
                ),
            ]
            .into(),
        };
        match self.create_topic(&topic, false) {
            Ok(_) | Err(MetadataError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub(crate) fn create_topic(
        &self,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        let brokers = self.brokers();
        let placement = Placement {
            brokers: &brokers,
            default_partitions: self.settings.num_partitions,
            default_replication_factor: self.settings.default_replication_factor,
        };
        if validate_only {
            topics::plan_create_topic(&self.metadata.image(), &placement, topic)?;
            return Ok(self.metadata.image());
        }
        self.change(|image| topics::plan_create_topic(image, &placement, topic))
    }

    pub(crate) fn delete_topic(&self, name: &str) -> Result<Arc<MetadataImage>, MetadataError> {
        let partitions: Vec<(String, i32)> = self
            .metadata
            .image()
            .topic(name)
            .map(|t| t.partitions.keys().map(|p| (name.to_string(), *p)).collect())
            .unwrap_or_default();
        let image = self.change(|image| topics::plan_delete_topic(image, name))?;
        // Committed offsets of the deleted partitions go too (tombstones), as in Kafka.
        for shard in self.groups.shards() {
            shard.notify(Event::PartitionsDeleted {
                partitions: partitions.clone(),
            });
        }
        Ok(image)
    }

    /// Changes a topic's config overrides (or only checks the change, with `validate_only`).
    pub(crate) fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, ConfigChange)],
        replace_all: bool,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        if validate_only {
            topics::plan_alter_configs(&self.metadata.image(), name, changes, replace_all)?;
            return Ok(self.metadata.image());
        }
        self.change(|image| topics::plan_alter_configs(image, name, changes, replace_all))
    }

    pub(crate) fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        let brokers = self.brokers();
        if validate_only {
            topics::plan_create_partitions(&self.metadata.image(), &brokers, name, count, assignments)?;
            return Ok(self.metadata.image());
        }
        self.change(|image| topics::plan_create_partitions(image, &brokers, name, count, assignments))
    }
}
