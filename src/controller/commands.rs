//! What brokers ask of the active controller, and how it carries each out: plan against the
//! image it has applied, commit the records through Raft, answer with the log index the
//! change landed at (so the asking broker can wait until its own image has it).
//!
//! Only the active controller executes; any other node answers `NotController` and the
//! caller looks for the leader again (see `Controller::submit`).

use std::time::{Duration, Instant};

use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use tracing::info;
use uuid::Uuid;

use super::{contacts, Controller, MetadataChange};
use crate::authz::plan::{self, Deleted};
use crate::authz::{Acl, AclError, AclFilter};
use crate::clock::now_ms;
use crate::error::KafkaCode;
use crate::metadata::brokers::{self, Registration};
use crate::metadata::client_quotas::{self, QuotaAlteration};
use crate::metadata::elections::{self, ElectionType, IsrChange, IsrCommitted, TopicElections};
use crate::metadata::features::{self, FeatureUpdate};
use crate::metadata::image::ApplyError;
use crate::metadata::reassignments::{self, Ongoing, Reassignment, ReassignmentError};
use crate::metadata::scram_credentials::{self, ScramDeletion, ScramUpsertion};
use crate::metadata::topic_config::{self, MIN_INSYNC_REPLICAS};
use crate::metadata::topics::{self, ConfigChange, NewTopic, Placement};
use crate::metadata::{cluster_configs, group_configs};
use crate::metadata::{MetadataError, MetadataImage, MetadataRecord};

/// A metadata change or question for the active controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Command {
    CreateTopic {
        topic: NewTopic,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    },
    AlterConfigs {
        name: String,
        changes: Vec<(String, ConfigChange)>,
        replace_all: bool,
        validate_only: bool,
    },
    /// The cluster-wide broker defaults (the BROKER resource "").
    AlterClusterConfigs {
        changes: Vec<(String, ConfigChange)>,
        replace_all: bool,
        validate_only: bool,
    },
    /// UpdateFeatures: finalize new feature levels, all or none.
    UpdateFeatures {
        updates: Vec<FeatureUpdate>,
        validate_only: bool,
    },
    /// A group's config overrides (the GROUP resource).
    AlterGroupConfigs {
        group: String,
        changes: Vec<(String, ConfigChange)>,
        replace_all: bool,
        validate_only: bool,
    },
    /// Reserve the next `count` producer ids.
    AllocateProducerIds {
        count: i64,
    },
    /// A broker starting; `learner` is its controller-listener address when it is not a voter
    /// and must be sent the metadata log.
    Register {
        registration: Registration,
        learner: Option<String>,
    },
    Heartbeat {
        broker_id: i32,
        incarnation_id: Uuid,
        want_shutdown: bool,
    },
    /// A partition leader's ISR changes (Kafka's AlterPartition), several partitions at once.
    AlterPartition {
        broker_id: i32,
        incarnation_id: Uuid,
        changes: Vec<IsrChange>,
    },
    DescribeQuorum,
    /// A preferred or unclean election (ElectLeaders); `partitions` `None` means all.
    ElectLeaders {
        election: ElectionType,
        partitions: Option<Vec<(String, Vec<i32>)>>,
    },
    /// AlterPartitionReassignments: start, replace or cancel reassignments.
    AlterReassignments {
        reassignments: Vec<Reassignment>,
        allow_replication_factor_change: bool,
    },
    /// ListPartitionReassignments: `topics` `None` means all.
    ListReassignments {
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
    /// CreateAcls: each ACL written unless it exists.
    CreateAcls {
        acls: Vec<Acl>,
    },
    /// DeleteAcls: every ACL each filter selects removed.
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
    /// AlterClientQuotas (or only its checks, with `validate_only`).
    AlterClientQuotas {
        alterations: Vec<QuotaAlteration>,
        validate_only: bool,
    },
    /// AlterUserScramCredentials, with keys the asking broker derived.
    AlterScramCredentials {
        deletions: Vec<ScramDeletion>,
        upsertions: Vec<ScramUpsertion>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The change is in the log at this index (or, when nothing needed changing, the index the
    /// decision was made at).
    Committed {
        index: u64,
    },
    /// Producer ids `[end - count, end)` are this broker's.
    ProducerIds {
        end: i64,
        index: u64,
    },
    Heartbeat {
        registered: bool,
        fenced: bool,
        index: u64,
    },
    Quorum(QuorumState),
    /// Each change's result (the partition's state once committed, or an error code), in
    /// request order.
    AlterPartition {
        results: Vec<Result<IsrCommitted, i16>>,
        index: u64,
    },
    /// Each topic's election outcomes.
    Elections {
        results: Vec<TopicElections>,
        index: u64,
    },
    /// Each reassignment's outcome, in request order.
    Reassigned {
        results: Vec<Result<(), ReassignmentError>>,
        index: u64,
    },
    Reassignments(Vec<(String, Vec<Ongoing>)>),
    /// Each CreateAcls creation's outcome, in request order.
    AclsCreated {
        results: Vec<Result<(), AclError>>,
        index: u64,
    },
    /// Each DeleteAcls filter's outcome (the ACLs it removed), in request order.
    AclsDeleted {
        results: Vec<Deleted>,
        index: u64,
    },
    /// Each alteration's outcome of AlterClientQuotas, in request order.
    QuotasAltered {
        results: Vec<Result<(), client_quotas::QuotaError>>,
        index: u64,
    },
    /// Each user's outcome of AlterScramCredentials.
    ScramAltered {
        results: Vec<scram_credentials::AlterResult>,
        index: u64,
    },
}

impl Reply {
    /// The metadata log index the answer was decided at, if it is about a change.
    pub(crate) fn index(&self) -> Option<u64> {
        match self {
            Reply::Committed { index }
            | Reply::ProducerIds { index, .. }
            | Reply::Heartbeat { index, .. }
            | Reply::AlterPartition { index, .. }
            | Reply::Elections { index, .. }
            | Reply::Reassigned { index, .. }
            | Reply::AclsCreated { index, .. }
            | Reply::AclsDeleted { index, .. }
            | Reply::ScramAltered { index, .. }
            | Reply::QuotasAltered { index, .. } => Some(*index),
            Reply::Quorum(_) | Reply::Reassignments(_) => None,
        }
    }
}

/// KIP-595's view of the quorum, from the active controller's Raft metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QuorumState {
    pub(crate) leader_id: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) high_watermark: i64,
    pub(crate) voters: Vec<ReplicaProgress>,
    pub(crate) observers: Vec<ReplicaProgress>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReplicaProgress {
    pub(crate) id: i32,
    /// One past the last entry known to be on that node; -1 when unknown.
    pub(crate) log_end_offset: i64,
    /// When it last fetched (answered an append), epoch ms; -1 when unknown (also from a
    /// controller older than these fields).
    #[serde(default = "unknown")]
    pub(crate) last_fetch_ms: i64,
    /// When it last held everything the leader had, epoch ms; -1 when unknown.
    #[serde(default = "unknown")]
    pub(crate) last_caught_up_ms: i64,
}

fn unknown() -> i64 {
    -1
}

/// How often a change is planned again after the state machine found its plan stale.
const PLAN_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum CommandError {
    /// Not the leader (any more): look for the active controller and send it there.
    #[error("this node is not the active controller")]
    NotController,
    /// The leader could not reach a quorum in time.
    #[error("the active controller has no quorum")]
    NoQuorum,
    /// Refused with a Kafka error code (the one mapping lives in `crate::error`).
    #[error("{message}")]
    Refused { code: i16, message: String },
}

impl From<MetadataError> for CommandError {
    fn from(e: MetadataError) -> Self {
        CommandError::Refused {
            code: e.kafka_error().code(),
            message: e.to_string(),
        }
    }
}

impl Controller {
    /// Carries out `command` if this node is the active controller.
    pub(crate) async fn execute(&self, command: Command) -> Result<Reply, CommandError> {
        match command {
            Command::CreateTopic { topic, validate_only } => {
                let index = self
                    .commit(validate_only, |image| {
                        let order = placement_start(brokers::placement_order(image));
                        let placement = Placement {
                            brokers: &order,
                            default_partitions: self.settings.num_partitions,
                            default_replication_factor: self.settings.default_replication_factor,
                            settings: &self.settings,
                        };
                        topics::plan_create_topic(image, &placement, &topic)
                    })
                    .await?;
                Ok(Reply::Committed { index })
            }
            Command::DeleteTopic { name } => {
                let index = self
                    .commit(false, |image| topics::plan_delete_topic(image, &name))
                    .await?;
                Ok(Reply::Committed { index })
            }
            Command::CreatePartitions {
                name,
                count,
                assignments,
                validate_only,
            } => {
                let index = self
                    .commit(validate_only, |image| {
                        let order = placement_start(brokers::placement_order(image));
                        topics::plan_create_partitions(image, &order, &name, count, assignments.as_deref())
                    })
                    .await?;
                Ok(Reply::Committed { index })
            }
            Command::AlterConfigs {
                name,
                changes,
                replace_all,
                validate_only,
            } => {
                let index = self
                    .commit(validate_only, |image| {
                        topics::plan_alter_configs(image, &self.settings, &name, &changes, replace_all)
                    })
                    .await?;
                Ok(Reply::Committed { index })
            }
            Command::AlterClusterConfigs {
                changes,
                replace_all,
                validate_only,
            } => {
                let index = self
                    .commit(validate_only, |image| {
                        cluster_configs::plan_alter_cluster_configs(image, &changes, replace_all)
                    })
                    .await?;
                Ok(Reply::Committed { index })
            }
            Command::UpdateFeatures { updates, validate_only } => {
                let index = self
                    .commit(validate_only, |image| features::plan_update(image, &updates))
                    .await?;
                Ok(Reply::Committed { index })
            }
            Command::AlterGroupConfigs {
                group,
                changes,
                replace_all,
                validate_only,
            } => {
                let index = self
                    .commit(validate_only, |image| {
                        group_configs::plan_alter_group_configs(image, &self.settings, &group, &changes, replace_all)
                    })
                    .await?;
                Ok(Reply::Committed { index })
            }
            Command::AllocateProducerIds { count } => {
                let mut end = 0;
                let index = self
                    .commit(false, |image| {
                        end = image.next_producer_id() + count;
                        Ok(vec![MetadataRecord::ProducerIds { next_producer_id: end }])
                    })
                    .await?;
                Ok(Reply::ProducerIds { end, index })
            }
            Command::Register { registration, learner } => self.register(registration, learner).await,
            Command::Heartbeat {
                broker_id,
                incarnation_id,
                want_shutdown,
            } => self.heartbeat(broker_id, incarnation_id, want_shutdown).await,
            Command::AlterPartition {
                broker_id,
                incarnation_id,
                changes,
            } => self.alter_partition(broker_id, incarnation_id, changes).await,
            Command::DescribeQuorum => {
                self.ensure_active()?;
                Ok(Reply::Quorum(self.quorum_state()))
            }
            Command::ElectLeaders { election, partitions } => {
                let mut results = Vec::new();
                let index = self
                    .commit(false, |image| {
                        let (records, planned) = elections::plan_elect_leaders(image, election, partitions.as_deref());
                        results = planned;
                        Ok(records)
                    })
                    .await?;
                Ok(Reply::Elections { results, index })
            }
            Command::AlterReassignments {
                reassignments,
                allow_replication_factor_change,
            } => {
                let mut results = Vec::new();
                let index = self
                    .commit(false, |image| {
                        let (records, planned) = reassignments::plan_reassignments(
                            image,
                            &reassignments,
                            allow_replication_factor_change,
                            &|t| self.unclean_allowed(t),
                        );
                        results = planned;
                        Ok(records)
                    })
                    .await?;
                Ok(Reply::Reassigned { results, index })
            }
            Command::ListReassignments { topics } => {
                // A read: planned (after everything committed before it is applied), never written.
                let mut listed = Vec::new();
                self.commit(true, |image| {
                    listed = reassignments::list_reassignments(image, topics.as_deref());
                    Ok(Vec::new())
                })
                .await?;
                Ok(Reply::Reassignments(listed))
            }
            Command::CreateAcls { acls } => {
                let mut results = Vec::new();
                let index = self
                    .commit(false, |image| {
                        let (records, planned) = plan::plan_create_acls(image.acls(), &acls, Uuid::new_v4);
                        results = planned;
                        Ok(records)
                    })
                    .await?;
                Ok(Reply::AclsCreated { results, index })
            }
            Command::DeleteAcls { filters } => {
                let mut results = Vec::new();
                let index = self
                    .commit(false, |image| {
                        let (records, planned) = plan::plan_delete_acls(image.acls(), &filters);
                        results = planned;
                        Ok(records)
                    })
                    .await?;
                Ok(Reply::AclsDeleted { results, index })
            }
            Command::AlterClientQuotas {
                alterations,
                validate_only,
            } => {
                let mut results = Vec::new();
                let index = self
                    .commit(validate_only, |image| {
                        let (records, planned) = client_quotas::plan_alter(image.client_quotas(), &alterations);
                        results = planned;
                        Ok(records)
                    })
                    .await?;
                Ok(Reply::QuotasAltered { results, index })
            }
            Command::AlterScramCredentials { deletions, upsertions } => {
                let mut results = Vec::new();
                let index = self
                    .commit(false, |image| {
                        let (records, planned) =
                            scram_credentials::plan_alter(image.scram_credentials(), &deletions, &upsertions);
                        results = planned;
                        Ok(records)
                    })
                    .await?;
                Ok(Reply::ScramAltered { results, index })
            }
        }
    }

    /// Plans against the applied image and commits the records; one change at a time, so each
    /// plan sees the image the previous change left. With `validate_only` nothing is written.
    ///
    /// Waiting for the turn and for the applied state is bounded (without a quorum Raft waits
    /// indefinitely; the caller then looks for a controller again). The turn is held until the
    /// write resolves: `ensure_linearizable` does not cover an entry still being written.
    /// Should a plan still meet a change it did not see (its caller gave up on an earlier
    /// write that then landed), the state machine rejects it whole and it is planned again.
    pub(super) async fn commit<F>(&self, validate_only: bool, mut plan: F) -> Result<u64, CommandError>
    where
        F: FnMut(&MetadataImage) -> Result<Vec<MetadataRecord>, MetadataError>,
    {
        let limit = Duration::from_millis(self.settings.controller_request_timeout_ms as u64);
        let _serial = tokio::time::timeout(limit, self.serial.lock())
            .await
            .map_err(|_| CommandError::NoQuorum)?;
        let mut rejected = String::new();
        for _ in 0..PLAN_ATTEMPTS {
            match tokio::time::timeout(limit, self.raft.ensure_linearizable()).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(CommandError::NotController),
                Err(_) => return Err(CommandError::NoQuorum),
            }
            let applied = self.applied.borrow().clone();
            let mut records = plan(&applied.image)?;
            if validate_only || records.is_empty() {
                return Ok(applied.index);
            }
            if applied.image.cluster_id().is_none() {
                // A new cluster: its id, its first credentials, once (Kafka's `format
                // --add-scram`), and the feature levels it starts at (as `kafka-storage format`
                // bootstraps them). An existing cluster keeps its levels until UpdateFeatures
                // changes them.
                records.splice(0..0, self.bootstrap_scram_records()?);
                records.splice(0..0, features::bootstrap_records());
                records.insert(
                    0,
                    MetadataRecord::ClusterId {
                        cluster_id: self.proposed_cluster_id.clone(),
                    },
                );
            }
            // As Kafka's controller does with eligible leader replicas: the cluster's
            // min.insync.replicas lives in the metadata log, from this controller's setting
            // until someone changes it, so every broker and election uses the same one.
            if !applied.image.cluster_configs().contains_key(MIN_INSYNC_REPLICAS) {
                records.insert(
                    0,
                    MetadataRecord::ClusterConfig {
                        name: MIN_INSYNC_REPLICAS.into(),
                        value: Some(self.settings.min_insync_replicas.to_string()),
                    },
                );
            }
            let written = self
                .raft
                .client_write(MetadataChange { records })
                .await
                .map_err(|_| CommandError::NotController)?;
            match written.data.rejected {
                None => return Ok(written.log_id.index),
                Some(why) => rejected = why,
            }
        }
        Err(MetadataError::Apply(ApplyError(rejected)).into())
    }

    /// The records of `sasl.scram.bootstrap.credentials` (checked when settings load).
    fn bootstrap_scram_records(&self) -> Result<Vec<MetadataRecord>, MetadataError> {
        let Some(text) = self.settings.sasl_scram_bootstrap_credentials.as_deref() else {
            return Ok(Vec::new());
        };
        let credentials = scram_credentials::parse_bootstrap(text)
            .map_err(|e| MetadataError::InvalidConfig(format!("sasl.scram.bootstrap.credentials: {e}")))?;
        credentials
            .iter()
            .map(|c| {
                c.record()
                    .ok_or_else(|| MetadataError::InvalidRequest("no randomness for a SCRAM salt".into()))
            })
            .collect()
    }

    /// Whether a topic may elect a replica outside its ISR (its config, else the broker's).
    pub(super) fn unclean_allowed(&self, topic: &crate::metadata::TopicImage) -> bool {
        topic_config::unclean_leader_election(&self.settings, &topic.configs)
    }

    /// Commits the ISR changes a leader asks for that pass Kafka's checks; the others get
    /// their error code. A broker that is not the registered incarnation is stale: all refused.
    async fn alter_partition(
        &self,
        broker_id: i32,
        incarnation_id: Uuid,
        changes: Vec<IsrChange>,
    ) -> Result<Reply, CommandError> {
        self.ensure_active()?;
        let mut results = Vec::new();
        let index = self
            .commit(false, |image| {
                let current = image
                    .broker(broker_id)
                    .is_some_and(|b| b.incarnation_id == incarnation_id);
                if !current {
                    results = vec![Err(kafka_protocol::ResponseError::StaleBrokerEpoch.code()); changes.len()];
                    return Ok(Vec::new());
                }
                let (records, codes) = elections::plan_alter_partition(image, broker_id, &changes);
                results = codes;
                Ok(records)
            })
            .await?;
        Ok(Reply::AlterPartition { results, index })
    }

    fn ensure_active(&self) -> Result<(), CommandError> {
        match self.raft.metrics().borrow().current_leader {
            Some(id) if id == self.node_id as u64 => Ok(()),
            _ => Err(CommandError::NotController),
        }
    }

    async fn register(&self, registration: Registration, learner: Option<String>) -> Result<Reply, CommandError> {
        self.ensure_active()?;
        let id = registration.broker_id;
        if let Some(addr) = learner {
            let known = self
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&(id as u64))
                .map(|n| n.addr.clone());
            let node = openraft::BasicNode::new(addr.clone());
            // Not blocking: the broker waits for its own image to catch up instead.
            let changed = match known {
                None => self.raft.add_learner(id as u64, node, false).await.map(|_| ()),
                // A learner back at another address: adding it again would keep the old one.
                Some(old) if old != addr => {
                    let nodes = ChangeMembers::SetNodes([(id as u64, node)].into());
                    self.raft.change_membership(nodes, true).await.map(|_| ())
                }
                Some(_) => Ok(()),
            };
            changed.map_err(|_| CommandError::NotController)?;
        }
        self.shutting_down.lock().expect("shutting down lock").remove(&id);
        let index = self
            .commit(false, |image| {
                Ok(brokers::plan_register(image, &registration, &|t| {
                    self.unclean_allowed(t)
                }))
            })
            .await?;
        self.liveness.lock().expect("liveness lock").insert(id, Instant::now());
        info!(broker = id, incarnation = %registration.incarnation_id, "broker registered");
        Ok(Reply::Committed { index })
    }

    /// A heartbeat keeps a broker unfenced. The broker sends its first one only once it has
    /// applied the log up to its own registration, so the first heartbeat of a fenced broker
    /// unfences it; one asking to shut down fences it at once (controlled shutdown).
    async fn heartbeat(
        &self,
        broker_id: i32,
        incarnation_id: Uuid,
        want_shutdown: bool,
    ) -> Result<Reply, CommandError> {
        self.ensure_active()?;
        let applied = self.applied.borrow().clone();
        let broker = match applied.image.broker(broker_id) {
            Some(b) if b.incarnation_id == incarnation_id => b.clone(),
            _ => {
                return Ok(Reply::Heartbeat {
                    registered: false,
                    fenced: true,
                    index: applied.index,
                })
            }
        };
        self.liveness
            .lock()
            .expect("liveness lock")
            .insert(broker_id, Instant::now());
        // A broker that asked to be fenced for shutdown stays fenced, even if a heartbeat sent
        // just before it stopped arrives after; its next start registers anew.
        let stopping = {
            let mut stopping = self.shutting_down.lock().expect("shutting down lock");
            if want_shutdown {
                stopping.insert(broker_id, incarnation_id);
            }
            stopping.get(&broker_id) == Some(&incarnation_id)
        };
        if stopping && !want_shutdown {
            return Ok(Reply::Heartbeat {
                registered: true,
                fenced: true,
                index: applied.index,
            });
        }
        let plan = match (want_shutdown, broker.fenced) {
            (true, false) => {
                info!(broker = broker_id, "broker shutting down: fencing it");
                brokers::plan_fence
            }
            (false, true) => {
                info!(broker = broker_id, "broker caught up: unfencing it");
                brokers::plan_unfence
            }
            _ => {
                return Ok(Reply::Heartbeat {
                    registered: true,
                    fenced: broker.fenced,
                    index: applied.index,
                })
            }
        };
        let index = self
            .commit(false, |image| Ok(plan(image, broker_id, &|t| self.unclean_allowed(t))))
            .await?;
        Ok(Reply::Heartbeat {
            registered: true,
            fenced: want_shutdown,
            index,
        })
    }

    fn quorum_state(&self) -> QuorumState {
        let m = self.raft.metrics().borrow().clone();
        let last = m.last_log_index.map_or(0, |i| i as i64 + 1);
        let matched = |id: u64| -> i64 {
            if id == self.node_id as u64 {
                return last;
            }
            m.replication
                .as_ref()
                .and_then(|r| r.get(&id))
                .map_or(-1, |l| l.map_or(0, |l| l.index as i64 + 1))
        };
        let membership = m.membership_config.membership();
        let now = now_ms();
        let progress = |id: u64| {
            // The leader's own: it is where the log is, now (as Kafka reports it).
            let c = match id == self.node_id as u64 {
                true => contacts::Contact {
                    last_fetch_ms: now,
                    last_caught_up_ms: now,
                },
                false => self.contacts.of(id),
            };
            ReplicaProgress {
                id: id as i32,
                log_end_offset: matched(id),
                last_fetch_ms: c.last_fetch_ms,
                last_caught_up_ms: c.last_caught_up_ms,
            }
        };
        let voters: Vec<u64> = membership.voter_ids().collect();
        QuorumState {
            leader_id: self.node_id,
            leader_epoch: m.current_term as i32,
            high_watermark: m.last_applied.map_or(0, |l| l.index as i64 + 1),
            voters: voters.iter().map(|&id| progress(id)).collect(),
            observers: membership
                .nodes()
                .map(|(id, _)| *id)
                .filter(|id| !voters.contains(id))
                .map(progress)
                .collect(),
        }
    }
}

/// Rotates the placement order by a random amount, so topics' first partitions do not all
/// land on the same broker (Kafka's random start index).
fn placement_start(mut order: Vec<i32>) -> Vec<i32> {
    if !order.is_empty() {
        let start = (Uuid::new_v4().as_u128() % order.len() as u128) as usize;
        order.rotate_left(start);
    }
    order
}
