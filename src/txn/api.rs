//! What goes in and out of the pure transaction coordinator: events (requests, markers
//! written, timer expiries, finished appends) in, actions (responses, appends, timers, markers
//! to send) out. Plain data, no behaviour.
//!
//! Error fields use `kafka_protocol::ResponseError`, `None` meaning no error. The API layer
//! converts between these and the versioned kafka-protocol messages.

use kafka_protocol::ResponseError;

use crate::coordinator::runtime;
pub(crate) use crate::coordinator::runtime::RequestId;

/// (topic, partition)
pub(crate) type TopicPartition = (String, i32);

/// InitProducerId with a transactional id.
#[derive(Debug, Clone)]
pub(crate) struct InitRequest {
    pub(crate) req: RequestId,
    pub(crate) transactional_id: String,
    pub(crate) timeout_ms: i32,
    /// v3+: the producer id and epoch the producer has (KIP-360), when it has one.
    pub(crate) expected: Option<(i64, i16)>,
    /// A producer id reserved for this request, used if the transactional id is new or its
    /// epochs are exhausted (the core cannot ask the controller for one itself).
    pub(crate) fresh_producer_id: i64,
}

/// AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is the group's offsets partition).
#[derive(Debug, Clone)]
pub(crate) struct AddPartitionsRequest {
    pub(crate) req: RequestId,
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) partitions: Vec<TopicPartition>,
    /// 2 when a partition leader adds them for a transactions-v2 producer (AddPartitionsToTxn
    /// v5, KIP-890 part 2); 0 for a client's AddPartitionsToTxn and AddOffsetsToTxn.
    pub(crate) client_transaction_version: i16,
}

/// EndTxn.
#[derive(Debug, Clone)]
pub(crate) struct EndTxnRequest {
    pub(crate) req: RequestId,
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) commit: bool,
    /// 2 for EndTxn v5+ (transactions v2: the epoch is bumped), else 0.
    pub(crate) client_transaction_version: i16,
    /// A producer id reserved for this request, for a transactions-v2 end whose epochs are used
    /// up (the shell reserves one when the state it read says so); `None` otherwise.
    pub(crate) fresh_producer_id: Option<i64>,
}

/// Timers the core asks the shell to run (the periodic sweeps).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKey {
    /// Abort transactions open past their timeout
    /// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`).
    AbortTimedOut,
    /// Remove transactional ids idle past `transactional.id.expiration.ms`
    /// (`transaction.remove.expired.transaction.cleanup.interval.ms`).
    ExpireIds,
    /// Retry writing the completion of a transaction whose markers are all written.
    RetryComplete { transactional_id: String },
}

/// Everything that can happen to a transaction coordinator.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    InitProducerId(InitRequest),
    AddPartitions(AddPartitionsRequest),
    EndTxn(EndTxnRequest),
    /// The markers of `transactional_id`'s transaction (producer id and epoch as sent) are
    /// written on `partitions` (or those partitions are gone).
    MarkersWritten {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
    },
    TimerFired {
        key: TimerKey,
    },
    /// The append of `Action::Persist { token }` finished.
    Persisted {
        token: u64,
        result: Result<(), ResponseError>,
    },
}

/// Work only the transaction coordinator's shell does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Write this transaction's COMMIT or ABORT marker on every partition (through their
    /// leaders), then report `Event::MarkersWritten` (partitions may be reported in parts).
    SendMarkers(MarkerJob),
}

/// A transaction's markers to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkerJob {
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) commit: bool,
    pub(crate) partitions: Vec<TopicPartition>,
}

/// What the shell must do, in order: the shared coordinator runtime's actions.
pub(crate) type Action = runtime::Action<Response, TimerKey, Effect>;

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    /// InitProducerId: the producer id and epoch (-1, -1 with an error).
    InitProducerId {
        error: Option<ResponseError>,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// AddPartitionsToTxn / AddOffsetsToTxn: one error for every partition asked.
    AddPartitions { error: Option<ResponseError> },
    /// EndTxn, with the producer id and epoch the producer continues with (transactions v2;
    /// -1, -1 with an error).
    EndTxn {
        error: Option<ResponseError>,
        producer_id: i64,
        producer_epoch: i16,
    },
}

impl Response {
    pub(crate) fn end_error(error: ResponseError) -> Response {
        Response::EndTxn {
            error: Some(error),
            producer_id: -1,
            producer_epoch: -1,
        }
    }

    pub(crate) fn init_error(error: ResponseError) -> Response {
        Response::InitProducerId {
            error: Some(error),
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}
