//! A partition leader's question to a transaction coordinator before a producer's first
//! transactional batch in one of its partitions (Kafka's `AddPartitionsToTxnManager`): for a
//! classic producer (KIP-890 part 1), is this partition in the producer's open transaction?
//! (AddPartitionsToTxn v4 `verify_only`); for a transactions-v2 producer (Produce v12+,
//! TxnOffsetCommit v5+, KIP-890 part 2), add it to the transaction, which the producer no
//! longer does itself (AddPartitionsToTxn v5, not verify-only). Asked of this broker's own
//! coordinator shard directly, of another broker's over a `peer` connection (one per broker,
//! shared, requests one at a time).
//!
//! The answer is mapped as Kafka maps it for Produce: a coordinator that cannot answer (moving,
//! loading, unreachable, or the transaction ending) is NOT_ENOUGH_REPLICAS, which producers
//! retry; a partition not in the transaction is INVALID_TXN_STATE; a fenced producer
//! INVALID_PRODUCER_EPOCH.
//!
//! May call: the transaction coordinator (a read of its state, or an add), `metadata` (where
//! it is), `peer`. Must never: append to a partition; the produce path appends once the answer
//! is in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::debug;

use super::api::{AddPartitionsRequest, Event, Response, TopicPartition};
use super::TRANSACTION_STATE_TOPIC;
use crate::broker::Broker;
use crate::peer::PeerClient;

/// AddPartitionsToTxn's brokers' form (batched, verify-only).
const VERIFY_VERSION: i16 = 4;
/// AddPartitionsToTxn's brokers' form that adds for a transactions-v2 producer.
const ADD_VERSION: i16 = 5;

/// What a partition leader asks of a transaction coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// Is the partition in the open transaction? (classic producers)
    Verify,
    /// Add the partition to the transaction (transactions-v2 producers).
    Add,
}

impl Ask {
    /// A produce request of `version` from a transactional producer: from v12 the producer
    /// speaks transactions v2 and leaves the adds to the leaders (Kafka's
    /// `produceRequestVersionToTransactionSupportedOperation`).
    pub(crate) fn for_produce(version: i16) -> Ask {
        if version >= 12 {
            Ask::Add
        } else {
            Ask::Verify
        }
    }
}
/// An AddPartitionsToTxn answer is small; this is plenty.
const RESPONSE_MAX_BYTES: usize = 1 << 20;

/// A connection to one broker, used by one request at a time.
type SharedClient = Arc<tokio::sync::Mutex<PeerClient>>;

/// One connection per other broker, shared by the transaction coordinator's markers and the
/// partition leaders' verifications. Bounded by the number of brokers.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    /// (broker id, address) → its connection.
    clients: Mutex<HashMap<(i32, String), SharedClient>>,
}

impl Peers {
    /// The connection to broker `broker` at `addr` (a broker that moved leaves its old one).
    pub(crate) fn client(&self, node_id: i32, broker: i32, addr: String) -> SharedClient {
        let mut clients = self.clients.lock().expect("peers lock");
        clients.retain(|(id, a), _| *id != broker || *a == addr);
        clients
            .entry((broker, addr.clone()))
            .or_insert_with(|| {
                let client_id = format!("broker-{node_id}-txn");
                Arc::new(tokio::sync::Mutex::new(PeerClient::new(
                    addr,
                    client_id,
                    RESPONSE_MAX_BYTES,
                )))
            })
            .clone()
    }
}

/// What the coordinator of `transactional_id` says of each partition, in order: `None` when it
/// is (or, asked to add, now is) in the producer's open transaction, else the error Produce
/// answers.
pub(crate) async fn verify(
    broker: &Broker,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
    ask: Ask,
) -> Vec<Option<ResponseError>> {
    let answer = match coordinator_of(broker, transactional_id) {
        Err(e) => Err(e),
        Ok(leader) if leader == broker.node_id => match ask {
            Ask::Verify => ask_local(broker, transactional_id, producer_id, producer_epoch, partitions),
            Ask::Add => add_local(broker, transactional_id, producer_id, producer_epoch, partitions).await,
        },
        Ok(leader) => {
            let txn = (transactional_id, producer_id, producer_epoch);
            ask_remote(broker, leader, txn, partitions, ask).await
        }
    };
    debug!(
        transactional_id,
        producer_id,
        producer_epoch,
        ?ask,
        ?answer,
        "transaction coordinator answered a leader"
    );
    let answers = answer.unwrap_or_else(|e| vec![Some(e); partitions.len()]);
    answers.into_iter().map(|e| e.map(for_produce)).collect()
}

/// The broker leading the transactional id's `__transaction_state` partition.
fn coordinator_of(broker: &Broker, transactional_id: &str) -> Result<i32, ResponseError> {
    let partition = crate::coordinator::partition_for(transactional_id, broker.txns.partitions);
    broker
        .metadata
        .image()
        .topic(TRANSACTION_STATE_TOPIC)
        .and_then(|t| t.partitions.get(&partition))
        .map(|p| p.leader)
        .filter(|leader| *leader >= 0)
        .ok_or(ResponseError::CoordinatorNotAvailable)
}

fn ask_local(
    broker: &Broker,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
) -> Result<Vec<Option<ResponseError>>, ResponseError> {
    let shard = broker.txns.shard(transactional_id).map_err(|u| u.error())?;
    shard
        .query(|s| s.verify(transactional_id, producer_id, producer_epoch, partitions))
        .unwrap_or(Err(ResponseError::NotCoordinator))
}

/// Adds the partitions through this broker's own coordinator shard, as a v5 AddPartitionsToTxn
/// from a leader would: answered once the transaction's new state is in the log.
async fn add_local(
    broker: &Broker,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
) -> Result<Vec<Option<ResponseError>>, ResponseError> {
    let shard = broker.txns.shard(transactional_id).map_err(|u| u.error())?;
    let rx = shard
        .request(|req| {
            Event::AddPartitions(AddPartitionsRequest {
                req,
                transactional_id: transactional_id.to_owned(),
                producer_id,
                producer_epoch,
                partitions: partitions.to_vec(),
                client_transaction_version: 2,
            })
        })
        .ok_or(ResponseError::NotCoordinator)?;
    match rx.await {
        Ok(Response::AddPartitions { error }) => Ok(vec![error; partitions.len()]),
        Ok(_) => Err(ResponseError::UnknownServerError),
        // The shard was unloaded with the request parked.
        Err(_) => Err(ResponseError::NotCoordinator),
    }
}

/// Asks another broker's coordinator with AddPartitionsToTxn (v4 verify-only, or v5 add).
async fn ask_remote(
    broker: &Broker,
    leader: i32,
    (transactional_id, producer_id, producer_epoch): (&str, i64, i16),
    partitions: &[TopicPartition],
    ask: Ask,
) -> Result<Vec<Option<ResponseError>>, ResponseError> {
    let addr = broker
        .metadata
        .image()
        .broker(leader)
        .map(|b| format!("{}:{}", b.host, b.port))
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, p) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(*p),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![*p]),
            ),
        }
    }
    let request =
        AddPartitionsToTxnRequest::default().with_transactions(vec![AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(transactional_id.to_owned())))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(ask == Ask::Verify)
            .with_topics(topics)]);
    let version = match ask {
        Ask::Verify => VERIFY_VERSION,
        Ask::Add => ADD_VERSION,
    };
    let timeout = Duration::from_millis(broker.settings.request_timeout_ms as u64);
    let client = broker.txn_peers.client(broker.node_id, leader, addr);
    let response = client
        .lock()
        .await
        .send(version, &request, timeout)
        .await
        .map_err(|e| {
            debug!(leader, error = %e, "transaction verification not answered");
            ResponseError::CoordinatorNotAvailable
        })?;
    if let Some(e) = ResponseError::try_from_code(response.error_code) {
        return Err(e);
    }
    let mut errors: HashMap<(String, i32), i16> = HashMap::new();
    for t in response.results_by_transaction.iter().flat_map(|r| &r.topic_results) {
        for p in &t.results_by_partition {
            errors.insert((t.name.to_string(), p.partition_index), p.partition_error_code);
        }
    }
    Ok(partitions
        .iter()
        .map(|tp| match errors.get(tp) {
            Some(0) => None,
            Some(code) => Some(ResponseError::try_from_code(*code).unwrap_or(ResponseError::UnknownServerError)),
            None => Some(ResponseError::UnknownServerError),
        })
        .collect())
}

/// Kafka's mapping of a verification's error to the Produce error.
fn for_produce(e: ResponseError) -> ResponseError {
    use ResponseError::*;
    match e {
        NotCoordinator
        | CoordinatorNotAvailable
        | CoordinatorLoadInProgress
        | ConcurrentTransactions
        | NetworkException
        | RequestTimedOut => NotEnoughReplicas,
        ProducerFenced => InvalidProducerEpoch,
        TransactionAbortable => InvalidTxnState,
        other => other,
    }
}
