//! Transactions, the producer's side: InitProducerId with a transactional id,
//! AddPartitionsToTxn (the clients' v0-v3 form, and the brokers' batched v4+ form with its
//! verify-only transactions of KIP-890 part 1, and from v5 the adds leaders make for
//! transactions-v2 producers), AddOffsetsToTxn and EndTxn (v5: the epoch bump of transactions
//! v2). Each becomes an event of the transactional id's coordinator shard (`txn::api`); a
//! verification is a read of its state. DescribeTransactions and ListTransactions, the admin's
//! side, are here too.

use std::collections::BTreeMap;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{self, TopicData};
use kafka_protocol::messages::list_transactions_response;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::ResponseError;

use super::coordinator::{call_shard, Answer};
use super::groups::text;
use super::{Ctx, Reply};
use crate::clock::now_ms;
use crate::group::OFFSETS_TOPIC;
use crate::txn::api::{self as core, Event, RequestId, Response, TopicPartition};
use crate::txn::query::ListFilter;
use crate::txn::records::TxnState;

/// From v4 AddPartitionsToTxn is the brokers' batched form.
const BATCHED_ADD_FROM_VERSION: i16 = 4;
/// From v5 a broker's (non verify-only) AddPartitionsToTxn adds partitions for a
/// transactions-v2 producer, and EndTxn bumps the epoch (KIP-890 part 2; Kafka's
/// `TransactionVersion.transactionVersionForAddPartitionsToTxn` / `ForEndTxn`).
const TRANSACTIONS_V2_FROM_VERSION: i16 = 5;

/// The client transaction version a request's version speaks (2 from v5, else 0).
fn client_transaction_version(version: i16) -> i16 {
    if version >= TRANSACTIONS_V2_FROM_VERSION {
        2
    } else {
        0
    }
}

/// PRODUCER_FENCED exists from these versions on; older ones get INVALID_PRODUCER_EPOCH, as
/// Kafka answers them.
fn fenced_for(version: i16, first_with_fenced: i16, e: Option<ResponseError>) -> Option<ResponseError> {
    match e {
        Some(ResponseError::ProducerFenced) if version < first_with_fenced => Some(ResponseError::InvalidProducerEpoch),
        e => e,
    }
}

/// Sends a request to the shard of `transactional_id`, answering with `answer` or `refuse`.
fn call<R: Send + 'static>(
    ctx: &Ctx,
    transactional_id: &str,
    build: impl FnOnce(RequestId) -> Event,
    answer: impl FnOnce(Response) -> Option<R> + Send + 'static,
    refuse: impl FnOnce(ResponseError) -> R + Send + 'static,
) -> Result<Answer<R>, R> {
    call_shard(&ctx.broker.txns, transactional_id, build, answer, refuse)
}

fn now_or_later<R: Send + 'static>(call: Result<Answer<R>, R>) -> Reply<R> {
    match call {
        Ok(later) => Reply::Later(later),
        Err(now) => Reply::Now(now),
    }
}

/// InitProducerId with a transactional id: a producer id is reserved first (the core hands it
/// out if the transactional id is new), then the shard decides.
pub(super) fn init_transactional(
    ctx: &Ctx,
    req: InitProducerIdRequest,
    transactional_id: String,
) -> Reply<InitProducerIdResponse> {
    let version = ctx.version;
    let respond = move |error: Option<ResponseError>, producer_id: i64, producer_epoch: i16| {
        InitProducerIdResponse::default()
            .with_error_code(fenced_for(version, 4, error).map_or(0, |e| e.code()))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
    };
    let expected = match (req.producer_id.0, req.producer_epoch) {
        (-1, -1) => None,
        (pid, epoch) if pid >= 0 && epoch >= 0 => Some((pid, epoch)),
        _ => return Reply::Now(respond(Some(ResponseError::InvalidRequest), -1, -1)),
    };
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let fresh_producer_id = match ctx.broker.producer_ids.next_id(&ctx.broker.controller).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reserve producer ids");
                let code = ctx.code(&e);
                return respond(ResponseError::try_from_code(code), -1, -1);
            }
        };
        let build = |id| {
            Event::InitProducerId(core::InitRequest {
                req: id,
                transactional_id: transactional_id.clone(),
                timeout_ms: req.transaction_timeout_ms,
                expected,
                fresh_producer_id,
            })
        };
        let answer = move |r| match r {
            Response::InitProducerId {
                error,
                producer_id,
                producer_epoch,
            } => Some(respond(error, producer_id, producer_epoch)),
            _ => None,
        };
        let refuse = move |e| respond(Some(e), -1, -1);
        let response = match call(&ctx, &transactional_id, build, answer, refuse) {
            Ok(later) => later.await,
            Err(now) => now,
        };
        if response.error_code != 0 {
            ctx.count(ResponseError::try_from_code(response.error_code).unwrap_or(ResponseError::UnknownServerError));
        }
        response
    }))
}

pub(super) fn add_partitions_to_txn(ctx: &Ctx, req: AddPartitionsToTxnRequest) -> Reply<AddPartitionsToTxnResponse> {
    if ctx.version < BATCHED_ADD_FROM_VERSION {
        let single = req.clone();
        let add = Transaction {
            transactional_id: single.v3_and_below_transactional_id.to_string(),
            producer_id: single.v3_and_below_producer_id.0,
            producer_epoch: single.v3_and_below_producer_epoch,
            verify_only: false,
            topics: single.v3_and_below_topics,
            client_transaction_version: 0,
        };
        let version = ctx.version;
        return match add_one(ctx, add) {
            Ok(later) => Reply::Later(Box::pin(async move {
                let result = later.await;
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(v3_errors(version, result))
            })),
            Err(now) => Reply::Now(
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(v3_errors(version, now)),
            ),
        };
    }
    let pending: Vec<Result<Answer<AddPartitionsToTxnResult>, AddPartitionsToTxnResult>> = req
        .transactions
        .into_iter()
        .map(|t| {
            let add = Transaction {
                transactional_id: t.transactional_id.to_string(),
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                verify_only: t.verify_only,
                topics: t.topics,
                client_transaction_version: client_transaction_version(ctx.version),
            };
            let id = add.transactional_id.clone();
            let result = |topics| {
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(TransactionalId(text(id)))
                    .with_topic_results(topics)
            };
            match add_one(ctx, add) {
                Ok(later) => Ok(Box::pin(async move { result(later.await) }) as Answer<_>),
                Err(now) => Err(result(now)),
            }
        })
        .collect();
    Reply::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(pending.len());
        for p in pending {
            results.push(match p {
                Ok(later) => later.await,
                Err(now) => now,
            });
        }
        AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
    }))
}

/// One transaction of an AddPartitionsToTxn.
struct Transaction {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
    client_transaction_version: i16,
}

type TopicResults = Vec<AddPartitionsToTxnTopicResult>;

/// Adds (or verifies) one transaction's partitions. As Kafka: partitions of topics that do not
/// exist are UNKNOWN_TOPIC_OR_PARTITION and then the others OPERATION_NOT_ATTEMPTED.
fn add_one(ctx: &Ctx, t: Transaction) -> Result<Answer<TopicResults>, TopicResults> {
    let partitions: Vec<TopicPartition> = t
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(|p| (topic.name.to_string(), *p)))
        .collect();
    let image = ctx.broker.metadata.image();
    let unknown: Vec<&TopicPartition> = partitions
        .iter()
        .filter(|(topic, p)| image.topic(topic).is_none_or(|t| !t.partitions.contains_key(p)))
        .collect();
    if !unknown.is_empty() {
        let errors = partitions
            .iter()
            .map(|tp| {
                let e = if unknown.contains(&tp) {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::OperationNotAttempted
                };
                (tp.clone(), Some(e))
            })
            .collect();
        return Err(topic_results(ctx, errors));
    }
    if t.verify_only {
        return Err(topic_results(
            ctx,
            verify(ctx, &t.transactional_id, t.producer_id, t.producer_epoch, &partitions),
        ));
    }
    if partitions.is_empty() {
        return Err(Vec::new());
    }
    let all =
        |e: Option<ResponseError>, partitions: &[TopicPartition]| partitions.iter().map(|tp| (tp.clone(), e)).collect();
    let (c, c2, p, p2) = (ctx.clone(), ctx.clone(), partitions.clone(), partitions.clone());
    let build = |id| {
        Event::AddPartitions(core::AddPartitionsRequest {
            req: id,
            transactional_id: t.transactional_id.clone(),
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            partitions,
            client_transaction_version: t.client_transaction_version,
        })
    };
    call(
        ctx,
        &t.transactional_id,
        build,
        move |r| match r {
            Response::AddPartitions { error } => Some(topic_results(&c, all(error, &p))),
            _ => None,
        },
        move |e| topic_results(&c2, all(Some(e), &p2)),
    )
}

/// The verify-only form: is each partition in the producer's open transaction?
fn verify(
    ctx: &Ctx,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
) -> Vec<(TopicPartition, Option<ResponseError>)> {
    let verified = match ctx.broker.txns.shard(transactional_id) {
        Err(u) => Err(u.error()),
        Ok(shard) => shard
            .query(|s| s.verify(transactional_id, producer_id, producer_epoch, partitions))
            .unwrap_or(Err(ResponseError::NotCoordinator)),
    };
    match verified {
        Ok(errors) => partitions.iter().cloned().zip(errors).collect(),
        Err(e) => partitions.iter().map(|tp| (tp.clone(), Some(e))).collect(),
    }
}

/// Per-partition results grouped by topic, in the order the topics came.
fn topic_results(ctx: &Ctx, errors: Vec<(TopicPartition, Option<ResponseError>)>) -> TopicResults {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), error) in errors {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(partition)
            .with_partition_error_code(error.map_or(0, |e| ctx.count(e)));
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.results_by_partition.push(result),
            None => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(text(topic)))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    topics
}

/// The v0-v3 answer: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
fn v3_errors(version: i16, mut topics: TopicResults) -> TopicResults {
    for p in topics.iter_mut().flat_map(|t| t.results_by_partition.iter_mut()) {
        let e = ResponseError::try_from_code(p.partition_error_code);
        p.partition_error_code = fenced_for(version, 2, e).map_or(0, |e| e.code());
    }
    topics
}

/// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction (its
/// TxnOffsetCommits then become visible with the transaction's commit).
pub(super) fn add_offsets_to_txn(ctx: &Ctx, req: AddOffsetsToTxnRequest) -> Reply<AddOffsetsToTxnResponse> {
    let version = ctx.version;
    let respond = move |e: Option<ResponseError>| {
        AddOffsetsToTxnResponse::default().with_error_code(fenced_for(version, 2, e).map_or(0, |e| e.code()))
    };
    let transactional_id = req.transactional_id.to_string();
    let partition = crate::coordinator::partition_for(&req.group_id, ctx.broker.groups.partitions);
    let build = |id| {
        Event::AddPartitions(core::AddPartitionsRequest {
            req: id,
            transactional_id: transactional_id.clone(),
            producer_id: req.producer_id.0,
            producer_epoch: req.producer_epoch,
            partitions: vec![(OFFSETS_TOPIC.to_string(), partition)],
            client_transaction_version: 0,
        })
    };
    now_or_later(call(
        ctx,
        &transactional_id,
        build,
        move |r| match r {
            Response::AddPartitions { error } => Some(respond(error)),
            _ => None,
        },
        move |e| respond(Some(e)),
    ))
}

/// EndTxn. From v5 (transactions v2) the coordinator bumps the epoch and answers the producer
/// id and epoch to continue with; a producer id is reserved first when the state says the
/// epochs are used up (the core cannot ask the controller for one itself).
pub(super) fn end_txn(ctx: &Ctx, req: EndTxnRequest) -> Reply<EndTxnResponse> {
    let version = ctx.version;
    let respond = move |e: Option<ResponseError>, producer_id: i64, producer_epoch: i16| {
        EndTxnResponse::default()
            .with_error_code(fenced_for(version, 2, e).map_or(0, |e| e.code()))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
    };
    let transactional_id = req.transactional_id.to_string();
    let client_tv = client_transaction_version(version);
    let needs_id = client_tv >= 2
        && ctx
            .broker
            .txns
            .shard(&transactional_id)
            .ok()
            .and_then(|s| s.query(|s| s.end_needs_producer_id(&transactional_id)))
            .unwrap_or(false);
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let fresh_producer_id = if needs_id {
            match ctx.broker.producer_ids.next_id(&ctx.broker.controller).await {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reserve producer ids");
                    let code = ctx.code(&e);
                    return respond(ResponseError::try_from_code(code), -1, -1);
                }
            }
        } else {
            None
        };
        let build = |id| {
            Event::EndTxn(core::EndTxnRequest {
                req: id,
                transactional_id: transactional_id.clone(),
                producer_id: req.producer_id.0,
                producer_epoch: req.producer_epoch,
                commit: req.committed,
                client_transaction_version: client_tv,
                fresh_producer_id,
            })
        };
        let answer = move |r| match r {
            Response::EndTxn {
                error,
                producer_id,
                producer_epoch,
            } => Some(respond(error, producer_id, producer_epoch)),
            _ => None,
        };
        match call(&ctx, &transactional_id, build, answer, move |e| {
            respond(Some(e), -1, -1)
        }) {
            Ok(later) => later.await,
            Err(now) => now,
        }
    }))
}

pub(super) fn describe_transactions(
    ctx: &Ctx,
    req: DescribeTransactionsRequest,
) -> Reply<DescribeTransactionsResponse> {
    let states = req.transactional_ids.iter().map(|id| describe_one(ctx, id)).collect();
    Reply::Now(DescribeTransactionsResponse::default().with_transaction_states(states))
}

fn describe_one(ctx: &Ctx, id: &TransactionalId) -> describe_transactions_response::TransactionState {
    let base = describe_transactions_response::TransactionState::default()
        .with_transactional_id(id.clone())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
        .with_transaction_start_time_ms(-1);
    if id.is_empty() {
        return base.with_error_code(ctx.count(ResponseError::InvalidRequest));
    }
    let described = match ctx.broker.txns.shard(id) {
        Err(u) => Err(u.error()),
        Ok(shard) => shard
            .query(|s| s.describe(id))
            .ok_or(ResponseError::NotCoordinator)
            .and_then(|d| d.ok_or(ResponseError::TransactionalIdNotFound)),
    };
    let d = match described {
        Ok(d) => d,
        Err(e) => return base.with_error_code(ctx.count(e)),
    };
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in d.partitions {
        topics.entry(topic).or_default().push(partition);
    }
    base.with_transaction_state(text(d.state))
        .with_transaction_timeout_ms(d.timeout_ms)
        .with_transaction_start_time_ms(d.start_ms)
        .with_producer_id(ProducerId(d.producer_id))
        .with_producer_epoch(d.producer_epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, partitions)| {
                    TopicData::default()
                        .with_topic(TopicName(text(t)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// ListTransactions: the transactions this broker coordinates (the admin asks every broker).
pub(super) fn list_transactions(ctx: &Ctx, req: ListTransactionsRequest) -> Reply<ListTransactionsResponse> {
    let mut unknown = Vec::new();
    let mut states = Vec::new();
    for name in &req.state_filters {
        match TxnState::from_name(name) {
            Some(s) => states.push(s),
            None => unknown.push(name.clone()),
        }
    }
    let filter = ListFilter {
        states,
        producer_ids: req.producer_id_filters.iter().map(|p| p.0).collect(),
        min_duration_ms: req.duration_filter,
    };
    if !req.state_filters.is_empty() && filter.states.is_empty() {
        // Only states that do not exist were asked for: no transaction is in one.
        return Reply::Now(ListTransactionsResponse::default().with_unknown_state_filters(unknown));
    }
    let now = now_ms();
    let mut listed: Vec<list_transactions_response::TransactionState> = ctx
        .broker
        .txns
        .shards()
        .iter()
        .filter_map(|s| s.query(|s| s.list(&filter, now)))
        .flatten()
        .map(|l| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(TransactionalId(text(l.transactional_id)))
                .with_producer_id(ProducerId(l.producer_id))
                .with_transaction_state(text(l.state))
        })
        .collect();
    listed.sort_by(|a, b| a.transactional_id.0.cmp(&b.transactional_id.0));
    Reply::Now(
        ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown)
            .with_transaction_states(listed),
    )
}
