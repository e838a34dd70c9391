//! The KRaft-style controller: the metadata log replicated with openraft, the state machine
//! that turns it into the metadata image on every node, and the active controller's duties
//! (planning changes, broker registration, heartbeats and fencing).
//!
//! Roles, as in KRaft: voters (`process.roles` includes `controller`) form the Raft quorum
//! named by `controller.quorum.voters`; broker-only nodes follow the log as Raft learners (the
//! counterpart of KRaft's observers) and are added by the active controller when they
//! register. Every node's state machine publishes the image it has applied; brokers serve
//! Metadata and place partitions from it. With no voters configured the node is a quorum of
//! one, which is what `make run` starts.
//!
//! May call: `metadata` (records, image, planning). Never the replica or API layers.

pub(crate) mod commands;
mod contacts;
pub(crate) mod lifecycle;
pub(crate) mod log_store;
mod network;
mod quorum;
mod state_machine;

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::{BasicNode, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use uuid::Uuid;

pub(crate) use commands::{Command, CommandError, QuorumState, ReplicaProgress, Reply};
#[cfg(feature = "fuzzing")]
pub(crate) use network::decode_request;
pub(crate) use quorum::Quorum;

use crate::config::Settings;
use crate::metadata::{brokers, elections, Applied, MetadataError, MetadataRecord};

/// One metadata change: the records are applied together or not at all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct MetadataChange {
    pub(crate) records: Vec<MetadataRecord>,
}

/// What applying a change did; `rejected` says why it did not fit the image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ChangeOutcome {
    pub(crate) rejected: Option<String>,
}

openraft::declare_raft_types!(
    /// Sluice's Raft types: metadata changes in, outcomes out, nodes addressed by their
    /// controller listener.
    pub(crate) TypeConfig:
        D = MetadataChange,
        R = ChangeOutcome,
);

type Raft = openraft::Raft<TypeConfig>;

/// Where the metadata log lives under `log.dirs` (KRaft's name for it).
pub(crate) const METADATA_DIR: &str = "__cluster_metadata-0";
/// Most preferred elections in one change of the auto leader rebalance (Kafka's
/// `MAX_ELECTIONS_PER_IMBALANCE`); another change follows at once while there are more.
const MAX_ELECTIONS_PER_REBALANCE: usize = 1000;
/// How often the active controller looks for brokers whose session expired.
const LIVENESS_CHECK: Duration = Duration::from_millis(250);
/// Pause between attempts to find the active controller.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

pub(crate) struct Controller {
    node_id: i32,
    raft: Raft,
    applied: watch::Receiver<Applied>,
    settings: Arc<Settings>,
    quorum: Quorum,
    /// Used by the first change of a new cluster: this node's meta.properties cluster id.
    proposed_cluster_id: String,
    /// When each replica last answered this node's appends (for DescribeQuorum).
    contacts: Arc<contacts::Contacts>,
    /// Connections for commands forwarded to the active controller.
    peers: quorum::Pool,
    /// Serialises plan → commit on the active controller.
    serial: tokio::sync::Mutex<()>,
    /// Last heartbeat per broker, kept by the active controller only.
    liveness: Mutex<HashMap<i32, Instant>>,
    /// The active controller that last answered a command forwarded from here, and when.
    last_answer: Mutex<Option<(u64, Instant)>>,
    /// Brokers (and the incarnation) that asked to be fenced for shutdown.
    shutting_down: Mutex<HashMap<i32, Uuid>>,
    /// The controller's own: it must keep serving Raft while the broker part stops.
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Controller {
    // openraft's handle has no Debug; the node id and quorum say which controller this is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.node_id)
            .field("quorum", &self.quorum)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ControllerStatus {
    pub(crate) active: bool,
    pub(crate) term: u64,
    pub(crate) last_log_index: u64,
    pub(crate) applied_index: u64,
    pub(crate) live_brokers: usize,
    pub(crate) fenced_brokers: usize,
    /// Partitions without a leader, counted by the active controller only (0 elsewhere, so a
    /// sum over the cluster counts each once, as Kafka's OfflinePartitionsCount).
    pub(crate) offline_partitions: usize,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ControllerStartError {
    #[error("metadata log in {path}: {source}")]
    Storage { path: String, source: std::io::Error },
    #[error("raft: {0}")]
    Raft(String),
    #[error("{0} holds a metadata log from a Sluice without the Raft controller; move the data directory aside or start an older Sluice on it")]
    OldFormat(String),
}

impl Controller {
    /// Opens the metadata log and state machine, starts Raft (initialising the quorum on first
    /// start of a voter), and serves the controller listener when there is one.
    pub(crate) async fn start(
        settings: Arc<Settings>,
        data_dir: &Path,
        quorum: Quorum,
        listener: Option<TcpListener>,
        proposed_cluster_id: String,
        fresh_data_dir: bool,
    ) -> Result<Arc<Controller>, ControllerStartError> {
        let dir = data_dir.join(METADATA_DIR);
        let storage = |source| ControllerStartError::Storage {
            path: dir.display().to_string(),
            source,
        };
        // Sluice before the controller kept the metadata log as Kafka segments here; starting
        // on that with an empty Raft log would find no topics and delete every partition.
        if dir.join("00000000000000000000.log").exists() {
            return Err(ControllerStartError::OldFormat(dir.display().to_string()));
        }
        let log_store = log_store::FileLogStore::open(&dir).map_err(storage)?;
        let (state_machine, applied) = state_machine::StateMachine::open(&dir).map_err(storage)?;
        let election = settings.controller_quorum_election_timeout_ms as u64;
        let config = openraft::Config {
            cluster_name: "sluice".into(),
            heartbeat_interval: (election / 10).max(20),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(1000),
            max_in_snapshot_log_to_keep: 100,
            // A chunk is JSON (about 3.5 bytes per byte); the last one also rebuilds the image
            // and fsyncs it on the follower. openraft's 200 ms would fail a large snapshot.
            snapshot_max_chunk_size: 1024 * 1024,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ControllerStartError::Raft(e.to_string()))?;
        let node_id = settings.node_id;
        let network = network::Network::default();
        let contacts = network.contacts.clone();
        let raft = Raft::new(node_id as u64, Arc::new(config), network, log_store, state_machine)
            .await
            .map_err(|e| ControllerStartError::Raft(e.to_string()))?;
        contacts.watch(raft.metrics());
        let controller = Arc::new(Controller {
            node_id,
            raft,
            applied,
            settings,
            quorum,
            proposed_cluster_id,
            contacts,
            peers: Default::default(),
            serial: Default::default(),
            liveness: Default::default(),
            last_answer: Default::default(),
            shutting_down: Default::default(),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let shutdown = controller.stop.clone();
        if let Some(l) = listener {
            controller
                .tasks
                .spawn(network::serve(l, controller.clone(), shutdown.clone()));
        }
        if controller.quorum.is_voter(node_id) {
            controller.initialize(fresh_data_dir).await?;
            controller
                .tasks
                .spawn(liveness_loop(controller.clone(), shutdown.clone()));
            if controller.settings.auto_leader_rebalance_enable {
                controller.tasks.spawn(rebalance_loop(controller.clone(), shutdown));
            }
        }
        Ok(controller)
    }

    /// Initialises the quorum on the first start of a voter. A voter of a larger quorum whose
    /// data directory is not new has lost its metadata log: it must not found a quorum of its
    /// own, and rejoins as a follower that the leader sends the log to.
    async fn initialize(&self, fresh_data_dir: bool) -> Result<(), ControllerStartError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| ControllerStartError::Raft(e.to_string()))?;
        let voters: BTreeMap<u64, BasicNode> = self
            .quorum
            .voters()
            .iter()
            .map(|(id, addr)| (*id as u64, BasicNode::new(addr.clone())))
            .collect();
        if !initialized && voters.len() > 1 && !fresh_data_dir {
            warn!("this voter's metadata log is gone but its data directory is not new: not initialising, waiting for the leader to send the log");
        } else if !initialized {
            // Every voter initialises with the same membership: Raft makes that one log entry,
            // whichever node's copy wins the first election.
            info!(voters = ?voters.keys().collect::<Vec<_>>(), "initialising the controller quorum");
            if let Err(e) = self.raft.initialize(voters.clone()).await {
                warn!(error = %e, "quorum initialisation skipped");
            }
        }
        if voters.len() == 1 {
            // A quorum of one need not wait out an election timeout after a restart.
            let _ = self.raft.trigger().elect().await;
        }
        Ok(())
    }

    /// The voters and their controller-listener addresses, from the current membership.
    pub(crate) fn voter_addresses(&self) -> Vec<(i32, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|n| (id as i32, n.addr.clone())))
            .collect()
    }

    /// What the metrics endpoint reports about the quorum and the brokers.
    pub(crate) fn status(&self) -> ControllerStatus {
        let m = self.raft.metrics().borrow().clone();
        let applied = self.applied.borrow().clone();
        let fenced = applied.image.brokers_fenced();
        let active = m.current_leader == Some(self.node_id as u64);
        let offline = if active {
            applied
                .image
                .topics()
                .flat_map(|t| t.partitions.values())
                .filter(|p| p.leader < 0)
                .count()
        } else {
            0
        };
        ControllerStatus {
            active,
            offline_partitions: offline,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: applied.index,
            live_brokers: applied.image.live_brokers().count(),
            fenced_brokers: fenced,
        }
    }

    /// The image this node has applied, and the index it is at.
    pub(crate) fn applied(&self) -> watch::Receiver<Applied> {
        self.applied.clone()
    }

    /// The active controller, if it is this node or answered a command from here within
    /// `max_age` (the broker's heartbeats go every heartbeat interval): a controller that died
    /// is no longer named to clients once its answers stop, even before the quorum elects
    /// another and long before its broker is fenced.
    pub(crate) fn active_and_answering(&self, max_age: Duration) -> Option<i32> {
        let leader = self.raft.metrics().borrow().current_leader?;
        if leader == self.node_id as u64 {
            return Some(leader as i32);
        }
        let last = *self.last_answer.lock().expect("last answer lock");
        last.filter(|(id, at)| *id == leader && at.elapsed() <= max_age)
            .map(|(id, _)| id as i32)
    }

    /// Waits until this node's image includes the entry at `index`.
    pub(crate) async fn caught_up(&self, index: u64) -> Result<(), MetadataError> {
        let mut applied = self.applied.clone();
        // Err: the state machine is gone, Raft stopped (shutdown, or a storage failure).
        let reached = applied.wait_for(|a| a.index >= index).await.is_ok();
        reached.then_some(()).ok_or(MetadataError::MetadataLogStopped)
    }

    /// Sends `command` to the active controller, wherever it is, trying again while there is
    /// none (an election) until `controller.request.timeout.ms` runs out.
    pub(crate) async fn submit(&self, command: Command) -> Result<Reply, MetadataError> {
        let timeout = Duration::from_millis(self.settings.controller_request_timeout_ms as u64);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut voter_turn = 0;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = match self.leader_address(&mut voter_turn) {
                None => Err(CommandError::NotController),
                Some(None) => match tokio::time::timeout(left, self.execute(command.clone())).await {
                    Ok(r) => r,
                    Err(_) => Err(CommandError::NotController),
                },
                Some(Some(addr)) => {
                    let mut metrics = self.raft.metrics();
                    let leader = metrics.borrow_and_update().current_leader;
                    // A leader that went silent (paused, cut off) never answers: once this node
                    // hears of another leader, go there instead of waiting out the deadline.
                    let answer = tokio::select! {
                        a = self.peers.forward(&addr, &command, left) => a,
                        _ = metrics.wait_for(|m| m.current_leader != leader) => Err(CommandError::NotController),
                    };
                    if let (true, Some(id)) = (answer.is_ok(), leader) {
                        *self.last_answer.lock().expect("last answer lock") = Some((id, Instant::now()));
                    }
                    answer
                }
            };
            let why = match attempt {
                Ok(reply) => return Ok(reply),
                Err(CommandError::Refused { code, message }) => return Err(MetadataError::Remote { code, message }),
                Err(e @ (CommandError::NotController | CommandError::NoQuorum)) => e,
            };
            if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                return Err(MetadataError::ControllerUnavailable(format!(
                    "no metadata change possible within {} ms: {why}",
                    timeout.as_millis()
                )));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Where to send a command: `Some(None)` means this node leads; `Some(Some(addr))` a peer;
    /// a node that knows no leader (a broker before it is a learner) tries the voters in turn.
    fn leader_address(&self, voter_turn: &mut usize) -> Option<Option<String>> {
        let metrics = self.raft.metrics().borrow().clone();
        if let Some(leader) = metrics.current_leader {
            if leader == self.node_id as u64 {
                return Some(None);
            }
            if let Some(node) = metrics.membership_config.membership().get_node(&leader) {
                return Some(Some(node.addr.clone()));
            }
        }
        let voters = self.quorum.voters();
        let (id, addr) = voters.get(*voter_turn % voters.len().max(1))?;
        *voter_turn += 1;
        if *id == self.node_id {
            return None;
        }
        Some(Some(addr.clone()))
    }

    pub(crate) async fn shutdown(&self) {
        self.stop.cancel();
        if let Err(e) = self.raft.shutdown().await {
            warn!(error = %e, "raft did not stop cleanly");
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// On the active controller: fence every live broker whose last heartbeat is older than
/// `broker.session.timeout.ms`. A newly elected controller gives every broker a full session
/// from its election, as Kafka's does, since it has seen no heartbeats yet.
async fn liveness_loop(controller: Arc<Controller>, shutdown: CancellationToken) {
    let session = Duration::from_millis(controller.settings.broker_session_timeout_ms as u64);
    let mut led_term = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(LIVENESS_CHECK) => {}
        }
        let (leader, term) = {
            let m = controller.raft.metrics().borrow().clone();
            (m.current_leader, m.current_term)
        };
        if leader != Some(controller.node_id as u64) {
            led_term = None;
            continue;
        }
        if led_term != Some(term) {
            led_term = Some(term);
            controller.liveness.lock().expect("liveness lock").clear();
        }
        let image = controller.applied.borrow().image.clone();
        let now = Instant::now();
        let expired: Vec<i32> = {
            let mut seen = controller.liveness.lock().expect("liveness lock");
            image
                .live_brokers()
                .filter(|b| now.duration_since(*seen.entry(b.id).or_insert(now)) > session)
                .map(|b| b.id)
                .collect()
        };
        for id in expired {
            warn!(
                broker = id,
                session_ms = session.as_millis() as u64,
                "broker session expired: fencing it"
            );
            if let Err(e) = controller
                .commit(false, |image| {
                    Ok(brokers::plan_fence(image, id, &|t| controller.unclean_allowed(t)))
                })
                .await
            {
                warn!(broker = id, error = %e, "could not fence broker");
            }
        }
    }
}

/// On the active controller: Kafka's auto leader rebalance. Every
/// `leader.imbalance.check.interval.seconds`, a preferred election on each partition whose
/// leader is not its first replica (it moves only where that replica is a live ISR member),
/// in changes of at most `MAX_ELECTIONS_PER_REBALANCE` elections.
async fn rebalance_loop(controller: Arc<Controller>, shutdown: CancellationToken) {
    let interval = Duration::from_secs(controller.settings.leader_imbalance_check_interval_seconds as u64);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if controller.raft.metrics().borrow().current_leader != Some(controller.node_id as u64) {
            continue;
        }
        loop {
            let mut more = false;
            let mut moved = 0;
            let done = controller
                .commit(false, |image| {
                    let (records, capped) = elections::plan_preferred_leaders(image, MAX_ELECTIONS_PER_REBALANCE);
                    (more, moved) = (capped, records.len());
                    Ok(records)
                })
                .await;
            match done {
                Ok(_) if moved > 0 => info!(partitions = moved, "leader rebalance: preferred replicas elected"),
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "leader rebalance failed");
                    break;
                }
            }
            if !more {
                break;
            }
        }
    }
}
