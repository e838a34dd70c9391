//! The broker's services wired together: what every API handler gets to work with.
//!
//! Metadata flows one way: a change goes to the active controller (wherever it runs), is
//! committed to the Raft metadata log, and comes back through this node's state machine as a
//! new image; `publish` then makes the replicas and group shards follow it. A handler that
//! made a change waits until that publication has happened here, so its next request sees it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::authz::plan::Deleted;
use crate::authz::{Acl, AclError, AclFilter, Authorizer};
use crate::config::{Listener, Settings};
use crate::controller::{Command, Controller, Reply};
use crate::error::KafkaCode;
use crate::group::api::Event;
use crate::group::runtime::GroupCoordinator;
use crate::group::OFFSETS_TOPIC;
use crate::metadata::elections::IsrChange;
use crate::metadata::topics::{ConfigChange, NewTopic};
use crate::metadata::{Applied, Metadata, MetadataError, MetadataImage};
use crate::metrics::Metrics;
use crate::replica::{IsrProposal, ReplicaManager};
use crate::txn::runtime::TxnCoordinator;
use crate::txn::{ProducerIdManager, TRANSACTION_STATE_TOPIC};

#[derive(Debug)]
pub(crate) struct Broker {
    pub(crate) settings: Arc<Settings>,
    pub(crate) node_id: i32,
    /// This node's meta.properties cluster id, reported until the metadata log names one.
    pub(crate) local_cluster_id: String,
    /// The endpoint clients are told to use.
    pub(crate) advertised: Listener,
    pub(crate) metadata: Metadata,
    pub(crate) controller: Arc<Controller>,
    pub(crate) replicas: Arc<ReplicaManager>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) producer_ids: ProducerIdManager,
    pub(crate) groups: GroupCoordinator,
    pub(crate) txns: TxnCoordinator,
    /// Connections to other brokers for transaction markers and verifications.
    pub(crate) txn_peers: crate::txn::verification::Peers,
    /// Share groups (KIP-932): membership, share-partitions and share sessions of this broker.
    pub(crate) shares: crate::share::ShareService,
    /// The share coordinator: shards of `__share_group_state` led here.
    pub(crate) share_states: crate::share::state::shard::ShareCoordinator,
    /// The metadata log index replicas and groups have been brought in line with.
    pub(crate) published: watch::Sender<u64>,
    /// The image of that index; held while publishing, so publications never interleave.
    pub(crate) last_published: Mutex<Arc<MetadataImage>>,
    /// Cancelled when the node shuts down: parked requests (long polls) answer at once.
    pub(crate) shutdown: CancellationToken,
    /// This start's incarnation, which the controller checks on ISR changes.
    pub(crate) incarnation_id: uuid::Uuid,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`; the ACLs
    /// are in the metadata image.
    pub(crate) authorizer: Authorizer,
    /// Client quota rates (produce and fetch byte rates).
    pub(crate) quotas: crate::quota::ClientQuotaManagers,
}

impl Broker {
    pub(crate) fn cluster_id(&self) -> String {
        let image = self.metadata.image();
        image.cluster_id().unwrap_or(&self.local_cluster_id).to_string()
    }

    /// The controller id clients are given (Metadata, DescribeCluster): the active controller
    /// when it is also a live broker that answers this node, else a live broker (this one if it
    /// can). Admin clients send their requests to that id and expect it among the brokers; any
    /// broker forwards them to the active controller, as Kafka's KRaft brokers do. Only brokers
    /// with an endpoint on the client's `listener` are among those it is told about.
    pub(crate) fn controller_for_clients(&self, image: &MetadataImage, listener: Option<&str>) -> i32 {
        let live = |id: i32| image.live_endpoint(id, listener).is_ok();
        // Three missed heartbeats: the named controller has gone quiet.
        let max_age = Duration::from_millis(3 * self.settings.broker_heartbeat_interval_ms as u64);
        match self.controller.active_and_answering(max_age) {
            Some(id) if live(id) => id,
            _ if live(self.node_id) => self.node_id,
            _ => image.live_endpoints(listener).next().map_or(-1, |(b, _)| b.id),
        }
    }

    /// Makes the replicas and group shards follow a newly applied image (blocking file work:
    /// runs on the blocking pool). Committed offsets of deleted partitions go too, as in Kafka.
    /// Publications are serialised and in log order, so an older image never undoes a newer.
    pub(crate) fn publish(&self, applied: &Applied) {
        let mut last = self.last_published.lock().expect("publish lock");
        if applied.index < *self.published.borrow() {
            return;
        }
        let _ = self.replicas.reconcile(&applied.image);
        self.groups.reconcile(&self.replicas);
        self.txns.reconcile(&self.replicas);
        self.share_states.reconcile(&self.replicas);
        let deleted: Vec<(String, i32)> = last
            .topics()
            .filter(|t| applied.image.topic_by_id(&t.id).is_none())
            .flat_map(|t| t.partitions.keys().map(|p| (t.name.clone(), *p)))
            .collect();
        if !deleted.is_empty() {
            for shard in self.groups.shards() {
                shard.notify(Event::PartitionsDeleted {
                    partitions: deleted.clone(),
                });
            }
        }
        *last = applied.image.clone();
        self.published.send_replace(applied.index);
    }

    /// Sends the ISR changes that the cores of partitions led here propose to the active
    /// controller, batching whatever is waiting (Kafka's AlterPartitionManager). A refused or
    /// lost proposal is dropped; the partition proposes again on its next fetch or tick, and
    /// a stale one is settled by the metadata that made it stale.
    pub(crate) async fn send_isr_changes(self: Arc<Self>, mut proposals: mpsc::UnboundedReceiver<IsrProposal>) {
        const BATCH_MAX: usize = 1000;
        loop {
            let first = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                p = proposals.recv() => match p { Some(p) => p, None => return },
            };
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX {
                match proposals.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let changes = batch
                .iter()
                .map(|p| IsrChange {
                    topic_id: p.partition.topic_id,
                    partition: p.partition.index,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    isr: p.isr.clone(),
                })
                .collect();
            let command = Command::AlterPartition {
                broker_id: self.node_id,
                incarnation_id: self.incarnation_id,
                changes,
            };
            let results = match self.controller.submit(command).await {
                Ok(Reply::AlterPartition { results, .. }) => results,
                Ok(other) => {
                    tracing::warn!(reply = ?other, "unexpected answer to AlterPartition");
                    Vec::new()
                }
                Err(e) => {
                    tracing::debug!(error = %e, "AlterPartition not sent");
                    Vec::new()
                }
            };
            for (i, p) in batch.iter().enumerate() {
                match results.get(i) {
                    Some(Ok(committed)) => {
                        p.partition.proposal_committed(committed);
                        let counter = if p.isr.len() < p.from.len() {
                            &self.metrics.isr_shrinks
                        } else {
                            &self.metrics.isr_expands
                        };
                        counter.inc();
                        tracing::info!(topic = %p.partition.topic, partition = p.partition.index, from = ?p.from, to = ?p.isr, "ISR changed");
                    }
                    Some(Err(code)) => {
                        tracing::debug!(topic = %p.partition.topic, partition = p.partition.index, code, "ISR change refused");
                        p.partition.proposal_failed();
                    }
                    None => {
                        p.partition.proposal_failed();
                    }
                }
            }
            if results.is_empty() {
                // No controller answered: do not spin on the next proposals.
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }

    /// Retries creating local partitions a previous change could not (e.g. out of files),
    /// from the last published image.
    pub(crate) fn retry_reconcile(&self) {
        if self.replicas.needs_reconcile() {
            let last = self.last_published.lock().expect("publish lock");
            let _ = self.replicas.reconcile(&last);
            self.groups.reconcile(&self.replicas);
            self.txns.reconcile(&self.replicas);
            self.share_states.reconcile(&self.replicas);
        }
    }

    /// Sends `command` to the active controller and waits until this node has published the
    /// metadata its answer was decided at, so that the caller's next request sees the change.
    pub(crate) async fn submit_published(&self, command: Command) -> Result<Reply, MetadataError> {
        let limit = Duration::from_millis(self.settings.controller_request_timeout_ms as u64);
        let reply = self.controller.submit(command).await?;
        let Some(index) = reply.index() else {
            return Ok(reply);
        };
        // Committed; bounded, since publication stops when the node does.
        let mut published = self.published.subscribe();
        let waited = tokio::select! {
            _ = self.shutdown.cancelled() => false,
            r = tokio::time::timeout(limit, published.wait_for(|p| *p >= index)) => matches!(r, Ok(Ok(_))),
        };
        match waited {
            true => Ok(reply),
            false => Err(MetadataError::ControllerUnavailable(
                "committed, but not yet applied on this broker".into(),
            )),
        }
    }

    /// Sends a change to the active controller and waits until this node has published it.
    /// Blocking: admin handlers run on the blocking pool.
    fn change(&self, command: Command) -> Result<Arc<MetadataImage>, MetadataError> {
        let reply = tokio::runtime::Handle::current().block_on(self.submit_published(command))?;
        if !matches!(reply, Reply::Committed { .. }) {
            return Err(MetadataError::UnexpectedReply(format!(
                "unexpected controller reply {reply:?}"
            )));
        }
        if self.replicas.needs_reconcile() {
            // Committed either way; the client learns that this broker could not serve it (yet).
            return Err(MetadataError::LocalStorage("see the broker log".into()));
        }
        Ok(self.metadata.image())
    }

    /// Creates `__consumer_offsets` if it does not exist yet (Kafka creates it on the first
    /// FindCoordinator): compacted, `offsets.topic.*` partitions and segment size.
    pub(crate) fn ensure_offsets_topic(&self) -> Result<(), MetadataError> {
        let s = &self.settings;
        let configs = [("segment.bytes", s.offsets_topic_segment_bytes.to_string())];
        self.ensure_internal_topic(
            OFFSETS_TOPIC,
            self.groups.partitions,
            s.offsets_topic_replication_factor,
            &configs,
        )
    }

    /// Creates `__transaction_state` if it does not exist yet (Kafka creates it on the first
    /// FindCoordinator of a transactional id): compacted, uncompressed, never elected unclean,
    /// `transaction.state.log.*` partitions, segment size and min ISR.
    pub(crate) fn ensure_transaction_state_topic(&self) -> Result<(), MetadataError> {
        let s = &self.settings;
        let configs = [
            ("segment.bytes", s.transaction_state_log_segment_bytes.to_string()),
            ("compression.type", "uncompressed".to_string()),
            ("unclean.leader.election.enable", "false".to_string()),
            ("min.insync.replicas", s.transaction_state_log_min_isr.to_string()),
        ];
        self.ensure_internal_topic(
            TRANSACTION_STATE_TOPIC,
            self.txns.partitions,
            s.transaction_state_log_replication_factor,
            &configs,
        )
    }

    /// Creates `__share_group_state` if it does not exist yet (Kafka's share coordinator does on
    /// first use): compacted, `share.coordinator.state.topic.*` partitions, segment size, min ISR.
    pub(crate) fn ensure_share_state_topic(&self) -> Result<(), MetadataError> {
        let s = &self.settings;
        let configs = [
            (
                "segment.bytes",
                s.share_coordinator_state_topic_segment_bytes.to_string(),
            ),
            (
                "min.insync.replicas",
                s.share_coordinator_state_topic_min_isr.to_string(),
            ),
        ];
        self.ensure_internal_topic(
            crate::share::state::SHARE_STATE_TOPIC,
            self.share_states.partitions,
            s.share_coordinator_state_topic_replication_factor,
            &configs,
        )
    }

    /// Creates a coordinator's compacted internal topic if it does not exist yet, with its
    /// replication factor (and a min ISR given in `configs`) capped at the live brokers.
    fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, String)],
    ) -> Result<(), MetadataError> {
        let image = self.metadata.image();
        if image.topic(name).is_some() {
            return Ok(());
        }
        let live = image.live_brokers().count().max(1) as i32;
        let rf = i32::from(replication_factor).min(live);
        // A min ISR above the (capped) replication factor would leave every partition under
        // its min ISR from the start.
        let capped = |k: &str, v: &String| match (k, v.parse::<i32>()) {
            ("min.insync.replicas", Ok(n)) => n.min(rf).to_string(),
            _ => v.clone(),
        };
        let configs = configs
            .iter()
            .map(|(k, v)| (k.to_string(), capped(k, v)))
            .chain([("cleanup.policy".to_string(), "compact".to_string())])
            .collect();
        let topic = NewTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: rf as i16,
            assignments: Default::default(),
            configs,
        };
        match self.create_topic(&topic, false) {
            Ok(_) | Err(MetadataError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) if e.kafka_error() == ResponseError::TopicAlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub(crate) fn create_topic(
        &self,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        self.change(Command::CreateTopic {
            topic: topic.clone(),
            validate_only,
        })
    }

    pub(crate) fn delete_topic(&self, name: &str) -> Result<Arc<MetadataImage>, MetadataError> {
        self.change(Command::DeleteTopic { name: name.to_string() })
    }

    /// Changes a topic's config overrides (or only checks the change, with `validate_only`).
    pub(crate) fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, ConfigChange)],
        replace_all: bool,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        self.change(Command::AlterConfigs {
            name: name.to_string(),
            changes: changes.to_vec(),
            replace_all,
            validate_only,
        })
    }

    /// Changes the cluster-wide broker defaults (or only checks the change, with
    /// `validate_only`).
    pub(crate) fn alter_cluster_configs(
        &self,
        changes: &[(String, ConfigChange)],
        replace_all: bool,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        self.change(Command::AlterClusterConfigs {
            changes: changes.to_vec(),
            replace_all,
            validate_only,
        })
    }

    pub(crate) fn alter_group_configs(
        &self,
        group: &str,
        changes: &[(String, ConfigChange)],
        replace_all: bool,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        self.change(Command::AlterGroupConfigs {
            group: group.to_string(),
            changes: changes.to_vec(),
            replace_all,
            validate_only,
        })
    }

    pub(crate) fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        self.change(Command::CreatePartitions {
            name: name.to_string(),
            count,
            assignments: assignments.map(<[Vec<i32>]>::to_vec),
            validate_only,
        })
    }

    /// Creates ACLs through the active controller; each one's outcome. Blocking.
    pub(crate) fn create_acls(&self, acls: Vec<Acl>) -> Result<Vec<Result<(), AclError>>, MetadataError> {
        match tokio::runtime::Handle::current().block_on(self.submit_published(Command::CreateAcls { acls }))? {
            Reply::AclsCreated { results, .. } => Ok(results),
            other => Err(MetadataError::UnexpectedReply(format!(
                "unexpected controller reply {other:?}"
            ))),
        }
    }

    /// Deletes the ACLs each filter selects through the active controller. Blocking.
    pub(crate) fn delete_acls(&self, filters: Vec<AclFilter>) -> Result<Vec<Deleted>, MetadataError> {
        match tokio::runtime::Handle::current().block_on(self.submit_published(Command::DeleteAcls { filters }))? {
            Reply::AclsDeleted { results, .. } => Ok(results),
            other => Err(MetadataError::UnexpectedReply(format!(
                "unexpected controller reply {other:?}"
            ))),
        }
    }
}
