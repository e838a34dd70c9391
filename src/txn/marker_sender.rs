//! Writes the markers a transaction coordinator core asks for (Kafka's
//! `TransactionMarkerChannelManager`): each transaction's COMMIT or ABORT marker on every one of
//! its partitions, through each partition's current leader — this broker's own partitions
//! directly (`marker_writer`), other brokers' with WriteTxnMarkers over the broker-to-broker
//! client (`peer`) — and reports the partitions done back to the shard that asked
//! (`Event::MarkersWritten`), which then writes the transaction's completion.
//!
//! A partition whose leader is unknown, moving, or not answering is tried again with a backoff
//! until it is written; one whose topic was deleted counts as done (Kafka's rule). The work of
//! a shard that was unloaded, or reloaded in a newer leader epoch, stops: the new coordinator
//! sends the markers again from its log. A refusal as stale (an older producer or coordinator
//! epoch than the partition has seen) stops it too: a newer coordinator owns the transaction.
//!
//! Bounds: one task per transaction being completed (each transactional id has at most one),
//! one connection per destination broker (`verification::Peers`), requests to it one at a time.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::api::{Effect, Event, MarkerJob, TopicPartition};
use super::marker_writer::{self, MarkerResults, MarkerWrite};
use crate::broker::Broker;
use crate::coordinator::runtime::ShardEffect;

/// WriteTxnMarkers as Kafka 4 sends it (v0 is gone).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Runs until the broker stops: every effect of the transaction coordinator's shards.
pub(crate) async fn run(broker: Arc<Broker>, mut effects: mpsc::UnboundedReceiver<ShardEffect<Effect>>) {
    loop {
        let next = tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            next = effects.recv() => next,
        };
        let Some(ShardEffect {
            partition,
            coordinator_epoch,
            effect: Effect::SendMarkers(job),
        }) = next
        else {
            return;
        };
        let shard = ShardId {
            partition,
            coordinator_epoch,
        };
        tokio::spawn(deliver(broker.clone(), shard, job));
    }
}

/// The shard a marker job belongs to.
#[derive(Debug, Clone, Copy)]
struct ShardId {
    partition: i32,
    coordinator_epoch: i32,
}

/// Where each remaining partition's marker goes now.
#[derive(Debug, Default)]
struct Routes {
    /// Leader → partitions.
    by_leader: BTreeMap<i32, Vec<TopicPartition>>,
    /// Topic or partition gone: done, as Kafka counts them.
    gone: Vec<TopicPartition>,
    /// No leader right now.
    waiting: Vec<TopicPartition>,
}

/// Writes one transaction's markers until every partition is done, or the job is moot.
async fn deliver(broker: Arc<Broker>, shard: ShardId, job: MarkerJob) {
    let mut remaining = job.partitions.clone();
    let mut backoff = BACKOFF_FIRST;
    while !remaining.is_empty() {
        if broker.shutdown.is_cancelled() || !still_coordinating(&broker, shard) {
            debug!(transactional_id = %job.transactional_id, "marker job dropped: the coordinator moved on");
            return;
        }
        let routes = route(&broker, remaining);
        let mut done = routes.gone;
        let mut retry = routes.waiting;
        for (leader, partitions) in routes.by_leader {
            let results = if leader == broker.node_id {
                write_local(&broker, &job, shard, partitions).await
            } else {
                write_remote(&broker, leader, &job, shard, partitions).await
            };
            for (tp, error) in results {
                match error {
                    None => done.push(tp),
                    Some(ResponseError::InvalidProducerEpoch | ResponseError::TransactionCoordinatorFenced) => {
                        warn!(transactional_id = %job.transactional_id, topic = %tp.0, partition = tp.1, "marker refused as stale; a newer coordinator owns the transaction");
                        return;
                    }
                    Some(e) => {
                        debug!(transactional_id = %job.transactional_id, topic = %tp.0, partition = tp.1, error = %e, "marker not written yet");
                        retry.push(tp);
                    }
                }
            }
        }
        if !done.is_empty() {
            report(&broker, shard, &job, done);
        }
        remaining = retry;
        if !remaining.is_empty() {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

/// Whether the shard that asked is still loaded, in the leader epoch it asked in.
fn still_coordinating(broker: &Broker, shard: ShardId) -> bool {
    broker
        .txns
        .shard_at(shard.partition)
        .is_ok_and(|s| s.coordinator_epoch() == shard.coordinator_epoch)
}

fn route(broker: &Broker, partitions: Vec<TopicPartition>) -> Routes {
    let image = broker.metadata.image();
    let mut routes = Routes::default();
    for tp in partitions {
        match image.topic(&tp.0).and_then(|t| t.partitions.get(&tp.1)) {
            None => routes.gone.push(tp),
            Some(p) if p.leader < 0 => routes.waiting.push(tp),
            Some(p) => routes.by_leader.entry(p.leader).or_default().push(tp),
        }
    }
    routes
}

fn marker_write(job: &MarkerJob, shard: ShardId, partitions: Vec<TopicPartition>) -> MarkerWrite {
    MarkerWrite {
        producer_id: job.producer_id,
        producer_epoch: job.producer_epoch,
        commit: job.commit,
        coordinator_epoch: shard.coordinator_epoch,
        partitions,
    }
}

/// This broker's own partitions: written here, on the transactional id's log writer lane.
async fn write_local(
    broker: &Broker,
    job: &MarkerJob,
    shard: ShardId,
    partitions: Vec<TopicPartition>,
) -> MarkerResults {
    let mut lane = std::collections::hash_map::DefaultHasher::new();
    job.transactional_id.hash(&mut lane);
    let timeout = Duration::from_millis(broker.settings.request_timeout_ms as u64);
    let write = marker_write(job, shard, partitions);
    marker_writer::write(broker, vec![write], lane.finish(), timeout)
        .await
        .pop()
        .unwrap_or_default()
}

/// Another broker's partitions: WriteTxnMarkers to it; an unanswered request leaves them all
/// to retry.
async fn write_remote(
    broker: &Broker,
    leader: i32,
    job: &MarkerJob,
    shard: ShardId,
    partitions: Vec<TopicPartition>,
) -> MarkerResults {
    let retry_all = |partitions: Vec<TopicPartition>, e| partitions.into_iter().map(|tp| (tp, Some(e))).collect();
    let Some(addr) = broker
        .metadata
        .image()
        .broker(leader)
        .map(|b| format!("{}:{}", b.host, b.port))
    else {
        return retry_all(partitions, ResponseError::BrokerNotAvailable);
    };
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (topic, p) in &partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partition_indexes.push(*p),
            None => topics.push(
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partition_indexes(vec![*p]),
            ),
        }
    }
    let request = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(job.producer_id))
        .with_producer_epoch(job.producer_epoch)
        .with_transaction_result(job.commit)
        .with_coordinator_epoch(shard.coordinator_epoch)
        .with_topics(topics)]);
    // The leader waits up to request.timeout.ms for its ISR; give it that and some.
    let timeout = Duration::from_millis(broker.settings.request_timeout_ms as u64) + Duration::from_secs(5);
    let client = broker.txn_peers.client(broker.node_id, leader, addr);
    let answer = client
        .lock()
        .await
        .send(WRITE_TXN_MARKERS_VERSION, &request, timeout)
        .await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            info!(leader, error = %e, "WriteTxnMarkers not answered; retrying");
            return retry_all(partitions, ResponseError::NetworkException);
        }
    };
    let mut errors: HashMap<(String, i32), i16> = HashMap::new();
    for marker in response.markers.iter().filter(|m| m.producer_id.0 == job.producer_id) {
        for t in &marker.topics {
            for p in &t.partitions {
                errors.insert((t.name.to_string(), p.partition_index), p.error_code);
            }
        }
    }
    partitions
        .into_iter()
        .map(|tp| {
            let error = match errors.get(&tp) {
                Some(0) => None,
                Some(code) => Some(ResponseError::try_from_code(*code).unwrap_or(ResponseError::UnknownServerError)),
                None => Some(ResponseError::UnknownServerError),
            };
            (tp, error)
        })
        .collect()
}

fn report(broker: &Broker, shard: ShardId, job: &MarkerJob, partitions: Vec<TopicPartition>) {
    if let Ok(s) = broker.txns.shard_at(shard.partition) {
        if s.coordinator_epoch() == shard.coordinator_epoch {
            s.notify(Event::MarkersWritten {
                transactional_id: job.transactional_id.clone(),
                producer_id: job.producer_id,
                producer_epoch: job.producer_epoch,
                partitions,
            });
        }
    }
}
