//! Produce: append each partition's record batches to its leader log; with acks=all, answer
//! once the ISR has them (the high watermark passed them), as Kafka's DelayedProduce does.
//!
//! The batches are copied once out of the request frame (their offsets are rewritten in place)
//! and appended as they came; records are never decoded. The appends run on the connection's
//! log writer lane (`replica::Appender`), in request order, never on the async workers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{Ctx, Reply};
use crate::clock::now_ms;
use crate::log::{BatchHeader, LogError, RecordError, TxnVerification};
use crate::replica::{Appended, Partition, ReplicaError};
use crate::txn::verification::{self as txn_verification, Ask};

/// Produce from version 13 names topics by id only.
const TOPIC_IDS_FROM_VERSION: i16 = 13;

/// Hands the request's appends to this connection's log writer lane (in request order, off
/// the async workers) and answers once they are done (and, for acks=all, committed). A
/// transactional producer's first batch in a partition waits for its coordinator: to confirm
/// the partition is in its transaction (KIP-890 part 1), unless verification is turned off;
/// or, from Produce v12 (transactions v2, KIP-890 part 2), to add it to the transaction —
/// always, the producer no longer adds partitions itself.
pub(super) fn handle(ctx: &Ctx, req: ProduceRequest) -> Reply<ProduceResponse> {
    let transactional_id = req
        .transactional_id
        .as_ref()
        .map(|t| t.to_string())
        .filter(|t| !t.is_empty());
    let ctx = ctx.clone();
    let ask = Ask::for_produce(ctx.version);
    let verifying = ctx.broker.settings.transaction_partition_verification_enable || ask == Ask::Add;
    let verifications = match transactional_id {
        Some(id) if verifying => Some((id, to_verify(&ctx, &req))),
        _ => None,
    };
    // In line now, in request order: a produce that waits for a coordinator below must not
    // let the connection's next one reach the log first.
    let (turn, handed_over) = ctx.append_order.enter();
    Reply::Decided(Box::pin(async move {
        let verifications = match verifications {
            None => Verifications::off(),
            Some((id, needed)) => verify(&ctx, &id, needed, ask).await,
        };
        if let Some(turn) = turn {
            // Err: the one before was dropped (its connection is closing); nothing to wait for.
            let _ = turn.await;
        }
        let job_ctx = ctx.clone();
        let appended = ctx
            .broker
            .replicas
            .appender()
            .run(ctx.lane(), move || append_request(&job_ctx, req, &verifications));
        drop(handed_over);
        match appended.await {
            Ok(done) => answer(&ctx, done).await,
            Err(_) => Reply::Close("the log writer threads have stopped".into()),
        }
    }))
}

/// How each partition's append may start a transaction (KIP-890).
#[derive(Debug)]
struct Verifications {
    enabled: bool,
    /// (topic, partition) → the guard its coordinator's confirmation earned, or why not.
    by_partition: HashMap<(String, i32), Result<u64, ResponseError>>,
}

impl Verifications {
    fn off() -> Verifications {
        Verifications {
            enabled: false,
            by_partition: HashMap::new(),
        }
    }

    fn of(&self, topic: &str, partition: i32) -> Result<TxnVerification, ResponseError> {
        if !self.enabled {
            return Ok(TxnVerification::Off);
        }
        match self.by_partition.get(&(topic.to_owned(), partition)) {
            Some(Ok(guard)) => Ok(TxnVerification::Verified { guard: *guard }),
            Some(Err(e)) => Err(*e),
            None => Ok(TxnVerification::Unverified),
        }
    }
}

/// A partition whose transactional batch would open its producer's transaction there.
struct ToVerify {
    partition: (String, i32),
    producer_id: i64,
    producer_epoch: i16,
    guard: u64,
}

/// The partitions of a request whose producer has no transaction open there yet, each with
/// the guard its verification starts with.
fn to_verify(ctx: &Ctx, req: &ProduceRequest) -> Vec<ToVerify> {
    let mut out = Vec::new();
    for topic in &req.topic_data {
        let Some(name) = topic_name(ctx, topic) else { continue };
        for p in &topic.partition_data {
            let Some(header) = p.records.as_ref().and_then(|r| BatchHeader::parse(r).ok()) else {
                continue;
            };
            if !header.is_transactional() || header.is_control() {
                continue;
            }
            let guard = ctx
                .broker
                .replicas
                .require(&name, p.index)
                .and_then(|part| part.start_verification(header.producer_id, header.producer_epoch, now_ms()));
            if let Ok(Some(guard)) = guard {
                out.push(ToVerify {
                    partition: (name.clone(), p.index),
                    producer_id: header.producer_id,
                    producer_epoch: header.producer_epoch,
                    guard,
                });
            }
        }
    }
    out
}

/// Asks the transaction's coordinator about (or to add) every partition to verify.
async fn verify(ctx: &Ctx, transactional_id: &str, needed: Vec<ToVerify>, ask: Ask) -> Verifications {
    let mut by_partition = HashMap::new();
    let mut producers: Vec<(i64, i16)> = needed.iter().map(|v| (v.producer_id, v.producer_epoch)).collect();
    producers.dedup();
    for (producer_id, producer_epoch) in producers {
        let mine: Vec<&ToVerify> = needed
            .iter()
            .filter(|v| (v.producer_id, v.producer_epoch) == (producer_id, producer_epoch))
            .collect();
        let partitions: Vec<(String, i32)> = mine.iter().map(|v| v.partition.clone()).collect();
        let answers = txn_verification::verify(
            &ctx.broker,
            transactional_id,
            producer_id,
            producer_epoch,
            &partitions,
            ask,
        )
        .await;
        for (v, answer) in mine.into_iter().zip(answers) {
            let result = match answer {
                None => Ok(v.guard),
                Some(e) => Err(e),
            };
            by_partition.insert(v.partition.clone(), result);
        }
    }
    Verifications {
        enabled: true,
        by_partition,
    }
}

/// A produce request once its appends ran: what to answer, and what acks=all waits for.
struct Appends {
    acks: i16,
    timeout: Duration,
    responses: Vec<TopicProduceResponse>,
    failed: bool,
    waits: Vec<Waiting>,
}

/// Runs on a log writer thread.
fn append_request(ctx: &Ctx, req: ProduceRequest, verifications: &Verifications) -> Appends {
    let acks = req.acks;
    let mut failed = false;
    let mut waits = Vec::new();
    let responses: Vec<TopicProduceResponse> = req
        .topic_data
        .into_iter()
        .enumerate()
        .map(|(t, topic)| {
            let r = produce_topic(ctx, topic, acks, t, &mut waits, verifications);
            failed |= r.partition_responses.iter().any(|p| p.error_code != 0);
            r
        })
        .collect();
    Appends {
        acks,
        timeout: Duration::from_millis(req.timeout_ms.max(0) as u64),
        responses,
        failed,
        waits,
    }
}

async fn answer(ctx: &Ctx, done: Appends) -> Reply<ProduceResponse> {
    let Appends {
        acks,
        timeout,
        responses,
        failed,
        waits,
    } = done;
    if acks == 0 {
        // Kafka closes the connection when an acks=0 produce fails: the client has no other way
        // to learn about it, and reconnecting makes it refresh its metadata.
        return if failed {
            Reply::Close("acks=0 produce failed".into())
        } else {
            Reply::Silent
        };
    }
    let response = ProduceResponse::default().with_responses(responses);
    if waits.is_empty() {
        return Reply::Now(response);
    }
    // acks=all: answer once the ISR has every partition's batches (Kafka's DelayedProduce),
    // or with the error each partition ran into, within the request's timeout.
    Reply::Now(complete(ctx, response, waits, timeout).await)
}

/// A partition of an acks=all produce that was appended and waits to be committed.
struct Waiting {
    topic: usize,
    partition: usize,
    replica: Arc<Partition>,
    appended: Appended,
}

async fn complete(ctx: &Ctx, mut response: ProduceResponse, waits: Vec<Waiting>, timeout: Duration) -> ProduceResponse {
    let purgatory = &ctx.broker.metrics.produce_purgatory;
    purgatory.add(waits.len() as i64);
    let deadline = tokio::time::Instant::now() + timeout;
    for w in &waits {
        // One deadline for all: waiting on them in turn takes as long as the slowest.
        if let Err(e) = w.replica.await_committed(&w.appended, deadline).await {
            let code = ctx.code(&e);
            let p = &mut response.responses[w.topic].partition_responses[w.partition];
            *p = partition_response(p.index, Err(code.into()), ctx.version);
        }
    }
    purgatory.sub(waits.len() as i64);
    response
}

fn produce_topic(
    ctx: &Ctx,
    topic: TopicProduceData,
    acks: i16,
    t: usize,
    waits: &mut Vec<Waiting>,
    verifications: &Verifications,
) -> TopicProduceResponse {
    let image = ctx.broker.metadata.image();
    let name = topic_name(ctx, &topic);
    let unknown_id = if ctx.version >= TOPIC_IDS_FROM_VERSION {
        ResponseError::UnknownTopicId
    } else {
        ResponseError::UnknownTopicOrPartition
    };
    let internal = name
        .as_deref()
        .and_then(|n| image.topic(n))
        .is_some_and(|t| t.is_internal());
    let partitions = topic
        .partition_data
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let result = match (&name, p.records) {
                _ if !(-1..=1).contains(&acks) => Err(ctx.count(ResponseError::InvalidRequiredAcks).into()),
                // As Kafka: clients cannot write to internal topics; only the broker's own
                // coordinators do, through the replica layer directly.
                (Some(n), _) if internal => {
                    warn!(topic = %n, client = ?ctx, "produce to an internal topic refused");
                    Err(ctx.count(ResponseError::InvalidTopicException).into())
                }
                (None, _) => Err(ctx.count(unknown_id).into()),
                (Some(_), None) => Err(ctx.count(ResponseError::InvalidRecord).into()),
                (Some(name), Some(records)) => match verifications.of(name, p.index) {
                    Err(e) => Err(ctx.count(e).into()),
                    Ok(verification) => append(ctx, name, p.index, &records, acks, verification),
                }
                .map(|(offsets, wait)| {
                    if let Some((replica, appended)) = wait {
                        waits.push(Waiting {
                            topic: t,
                            partition: i,
                            replica,
                            appended,
                        });
                    }
                    offsets
                }),
            };
            partition_response(p.index, result, ctx.version)
        })
        .collect();
    TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_string(name.unwrap_or_default())))
        .with_topic_id(topic.topic_id)
        .with_partition_responses(partitions)
}

/// Where a partition's append landed: its base offset, the log start offset, and the log
/// append time stamped into it (-1 unless the topic uses LogAppendTime).
#[derive(Debug, Clone, Copy)]
struct Landed {
    base_offset: i64,
    log_start_offset: i64,
    log_append_time_ms: i64,
}

/// Why a partition's append was refused: the Kafka error code and, for records the topic's
/// policy refused, Kafka's record errors and summary message (Produce v8+).
#[derive(Debug, Default)]
struct Refused {
    code: i16,
    message: Option<String>,
    records: Vec<RecordError>,
}

impl From<i16> for Refused {
    fn from(code: i16) -> Refused {
        Refused {
            code,
            ..Refused::default()
        }
    }
}

/// Produce from version 8 carries record errors and an error message.
const RECORD_ERRORS_FROM_VERSION: i16 = 8;

/// What one partition's append gives, and for acks=all the append to wait on.
type Outcome = Result<(Landed, Option<(Arc<Partition>, Appended)>), Refused>;

/// The name of a request's topic (from version 13 by id), if it exists.
fn topic_name(ctx: &Ctx, topic: &TopicProduceData) -> Option<String> {
    if ctx.version >= TOPIC_IDS_FROM_VERSION {
        ctx.broker
            .metadata
            .image()
            .topic_by_id(&topic.topic_id)
            .map(|t| t.name.clone())
    } else {
        Some(topic.name.0.to_string())
    }
}

fn append(ctx: &Ctx, topic: &str, index: i32, records: &[u8], acks: i16, verification: TxnVerification) -> Outcome {
    let broker = &ctx.broker;
    let partition = broker.replicas.require(topic, index).map_err(|e| ctx.code(&e))?;
    let mut batches = BytesMut::from(records);
    match partition.append_from_client(&mut batches, acks == -1, now_ms(), verification) {
        Ok(appended) => {
            // A duplicate (a producer's retry) wrote nothing and reports 0 records.
            broker.metrics.messages_in.inc_by(appended.info.record_count);
            let landed = Landed {
                base_offset: appended.info.base_offset,
                log_start_offset: partition.log_start_offset(),
                log_append_time_ms: appended.info.log_append_time_ms,
            };
            let wait = (acks == -1).then(|| (partition.clone(), appended));
            Ok((landed, wait))
        }
        Err(e) => {
            if matches!(e, ReplicaError::Log(_)) {
                warn!(topic, partition = index, client = ?ctx, error = %e, "produce rejected");
            }
            let code = ctx.code(&e);
            Err(match e {
                ReplicaError::Log(LogError::RecordsRejected { message, records, .. }) => Refused {
                    code,
                    message: Some(message),
                    records,
                },
                _ => code.into(),
            })
        }
    }
}

fn partition_response(index: i32, result: Result<Landed, Refused>, version: i16) -> PartitionProduceResponse {
    let r = PartitionProduceResponse::default()
        .with_index(index)
        .with_log_append_time_ms(-1);
    match result {
        Ok(landed) => r
            .with_base_offset(landed.base_offset)
            .with_log_start_offset(landed.log_start_offset)
            .with_log_append_time_ms(landed.log_append_time_ms),
        Err(refused) => {
            let r = r
                .with_error_code(refused.code)
                .with_base_offset(-1)
                .with_log_start_offset(-1);
            if version < RECORD_ERRORS_FROM_VERSION {
                return r;
            }
            let records = refused
                .records
                .into_iter()
                .map(|e| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(e.index)
                        .with_batch_index_error_message(Some(StrBytes::from_string(e.message)))
                })
                .collect();
            r.with_record_errors(records)
                .with_error_message(refused.message.map(StrBytes::from_string))
        }
    }
}
