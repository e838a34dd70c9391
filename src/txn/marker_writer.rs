//! Writing transaction markers on the partitions this broker leads: what WriteTxnMarkers asks
//! of a partition leader, from another broker's transaction coordinator or from this broker's.
//!
//! Each marker is a control batch appended by the leader with the broker's own coordinator
//! rights (`Partition::append_marker`: the producer and coordinator epochs are checked, the
//! producer's transaction in the partition ends, an abort is indexed), and counts as written
//! once the partition's ISR has it, as Kafka appends markers with acks=all. The appends of one
//! request run in order on one log writer lane, off the async workers.
//!
//! A marker in a `__consumer_offsets` partition is also told to that partition's group
//! coordinator, whose transactional offset commits it ends.
//!
//! May call: `replica` and the group coordinator (through the broker's services). Must never: decide what the
//! transaction's outcome is; the coordinator did, and this only writes it.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::error::KafkaCode;
use crate::group::api::Event as GroupEvent;
use crate::group::OFFSETS_TOPIC;
use crate::log::Marker;
use crate::replica::{Appended, Partition, ReplicaError};

/// One marker to write on some partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkerWrite {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) commit: bool,
    pub(crate) coordinator_epoch: i32,
    /// (topic, partition)
    pub(crate) partitions: Vec<(String, i32)>,
}

/// For each partition of a `MarkerWrite`, in its order: `None` once written, else why not.
pub(crate) type MarkerResults = Vec<((String, i32), Option<ResponseError>)>;

/// A partition's marker on its way: appended (to wait for) or failed.
type Outcome = Result<(Arc<Partition>, Appended), ResponseError>;

/// Writes every marker on its partitions and waits for them to be replicated, until `timeout`.
pub(crate) async fn write(
    broker: &Broker,
    writes: Vec<MarkerWrite>,
    lane: u64,
    timeout: Duration,
) -> Vec<MarkerResults> {
    let deadline = Instant::now() + timeout;
    let replicas = &broker.replicas;
    let targets: Vec<Vec<Result<Arc<Partition>, ResponseError>>> = writes
        .iter()
        .map(|w| {
            w.partitions
                .iter()
                .map(|(topic, index)| replicas.require(topic, *index).map_err(|e| e.kafka_error()))
                .collect()
        })
        .collect();
    let jobs = writes.clone();
    let appended = replicas
        .appender()
        .run(lane, move || append_all(&jobs, targets))
        .await
        .unwrap_or_default();
    let mut results = Vec::with_capacity(writes.len());
    for (w, outcomes) in writes.into_iter().zip(appended) {
        let mut done = Vec::with_capacity(outcomes.len());
        for (tp, outcome) in w.partitions.into_iter().zip(outcomes) {
            let error = match outcome {
                Ok((partition, appended)) => committed(&partition, &appended, deadline).await.err(),
                Err(e) => Some(e),
            };
            if error.is_none() && tp.0 == OFFSETS_TOPIC {
                offsets_marked(broker, tp.1, w.producer_id, w.commit);
            }
            done.push((tp, error));
        }
        results.push(done);
    }
    results
}

/// A marker is in a `__consumer_offsets` partition: its group coordinator applies or drops
/// the transaction's offsets (Kafka's `onTransactionCompleted`). Before the marker is reported
/// written, so the transaction completes only after its offsets are visible.
fn offsets_marked(broker: &Broker, partition: i32, producer_id: i64, commit: bool) {
    match broker.groups.shard_at(partition) {
        Ok(shard) => shard.notify(GroupEvent::TxnCompleted { producer_id, commit }),
        // A new leader's coordinator loads the marker with the rest of the log.
        Err(_) => tracing::debug!(partition, producer_id, "offsets marker with no group coordinator here"),
    }
}

/// Runs on a log writer thread: every marker's appends, in order.
fn append_all(writes: &[MarkerWrite], targets: Vec<Vec<Result<Arc<Partition>, ResponseError>>>) -> Vec<Vec<Outcome>> {
    writes
        .iter()
        .zip(targets)
        .map(|(w, partitions)| {
            let marker = Marker {
                commit: w.commit,
                coordinator_epoch: w.coordinator_epoch,
            };
            partitions
                .into_iter()
                .map(|p| {
                    let p = p?;
                    match p.append_marker(w.producer_id, w.producer_epoch, marker, now_ms()) {
                        Ok(appended) => Ok((p, appended)),
                        Err(e) => {
                            tracing::debug!(topic = %p.topic, partition = p.index, producer = w.producer_id, error = %e, "marker refused");
                            Err(e.kafka_error())
                        }
                    }
                })
                .collect()
        })
        .collect()
}

async fn committed(partition: &Partition, appended: &Appended, deadline: Instant) -> Result<(), ResponseError> {
    match partition.await_committed(appended, deadline).await {
        Ok(()) => Ok(()),
        Err(ReplicaError::Timeout) => Err(ResponseError::RequestTimedOut),
        Err(e) => Err(e.kafka_error()),
    }
}
