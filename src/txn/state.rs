//! The data of one transactional id and the rules that touch only that data (Kafka's
//! `TransactionMetadata`): the transitions a request may make, prepared as a new `TxnData`
//! that becomes the state once it is in the log. Nothing here answers requests or appends.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use super::api::TopicPartition;
use super::records::{TxnLogValue, TxnState};

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub(crate) const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub(crate) const NO_PRODUCER_EPOCH: i16 = -1;

/// A transactional id's state as written in `__transaction_state` (plus the last epoch, which
/// Kafka keeps in memory only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnData {
    pub(crate) producer_id: i64,
    pub(crate) previous_producer_id: i64,
    pub(crate) next_producer_id: i64,
    pub(crate) producer_epoch: i16,
    /// The epoch before the last bump: a retried InitProducerId that names it gets the current
    /// epoch again instead of PRODUCER_FENCED.
    pub(crate) last_producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TxnState,
    pub(crate) partitions: BTreeSet<TopicPartition>,
    /// When the open transaction started (its first partition added); -1 when none.
    pub(crate) start_ms: i64,
    pub(crate) last_update_ms: i64,
    pub(crate) client_transaction_version: i16,
}

/// One transactional id: its state, and what is being done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnMetadata {
    pub(crate) transactional_id: String,
    pub(crate) data: TxnData,
    /// The state a transition being written moves to: other requests wait
    /// (CONCURRENT_TRANSACTIONS) until it is in the log, or failed.
    pub(crate) pending: Option<TxnState>,
    /// An epoch fence whose write failed: the next fence reuses the epoch it bumped to.
    pub(crate) has_failed_epoch_fence: bool,
}

impl TxnData {
    /// A new transactional id's state: `producer_id`, no epoch yet, Empty.
    pub(crate) fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnData {
        TxnData {
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            client_transaction_version: 0,
        }
    }

    /// The record value of this state.
    pub(crate) fn to_value(&self) -> TxnLogValue {
        let mut partitions: Vec<(String, Vec<i32>)> = Vec::new();
        for (topic, partition) in &self.partitions {
            match partitions.last_mut() {
                Some((t, ids)) if t == topic => ids.push(*partition),
                _ => partitions.push((topic.clone(), vec![*partition])),
            }
        }
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
            client_transaction_version: self.client_transaction_version,
        }
    }

    /// The state a record value says (the last epoch is not in the log).
    pub(crate) fn from_value(v: TxnLogValue) -> TxnData {
        TxnData {
            producer_id: v.producer_id,
            previous_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: v.timeout_ms,
            state: v.state,
            partitions: v
                .partitions
                .into_iter()
                .flat_map(|(t, ids)| ids.into_iter().map(move |p| (t.clone(), p)))
                .collect(),
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
            client_transaction_version: v.client_transaction_version,
        }
    }
}

/// Kafka's `isEpochExhausted`: no epoch left to bump to.
pub(crate) fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TxnMetadata {
    pub(crate) fn new(transactional_id: &str, data: TxnData) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            data,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    /// InitProducerId from Empty or a completed transaction: the next epoch (Kafka's
    /// `prepareIncrementProducerEpoch`), or the current one again for a retry that names the
    /// previous epoch.
    pub(crate) fn prepare_increment_epoch(
        &self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<TxnData, ResponseError> {
        let d = &self.data;
        let bumped = d.producer_epoch.wrapping_add(1);
        let (epoch, last) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(e) if d.producer_epoch == NO_PRODUCER_EPOCH || e == d.producer_epoch => (bumped, d.producer_epoch),
            Some(e) if e == d.last_producer_epoch => (d.producer_epoch, d.last_producer_epoch),
            Some(_) => return Err(ResponseError::ProducerFenced),
        };
        Ok(TxnData {
            producer_epoch: epoch,
            last_producer_epoch: last,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            ..d.clone()
        })
    }

    /// InitProducerId once the epochs of the producer id are used up: a new producer id at
    /// epoch 0 (Kafka's `prepareProducerIdRotation`).
    pub(crate) fn prepare_rotation(
        &self,
        producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
        record_last: bool,
    ) -> TxnData {
        let d = &self.data;
        TxnData {
            previous_producer_id: d.producer_id,
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: if record_last {
                d.producer_epoch
            } else {
                NO_PRODUCER_EPOCH
            },
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            ..d.clone()
        }
    }

    /// The open transaction is aborted by the coordinator (a new producer with the same
    /// transactional id, or the transaction's timeout): the epoch is bumped so the old producer
    /// is fenced, unless a fence before failed to be written (then it was never handed out).
    /// A transactions-v2 abort bumps once more, as each of its ends does (Kafka fences, then
    /// ends): the fenced producer's EndTxn then cannot pass for a retry of this end.
    pub(crate) fn prepare_fence_abort(&self, now_ms: i64) -> TxnData {
        let d = &self.data;
        let fenced = if self.has_failed_epoch_fence {
            d.producer_epoch
        } else {
            d.producer_epoch.saturating_add(1)
        };
        let epoch = if d.client_transaction_version >= 2 {
            fenced.saturating_add(1)
        } else {
            fenced
        };
        TxnData {
            producer_epoch: epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            state: TxnState::PrepareAbort,
            last_update_ms: now_ms,
            ..d.clone()
        }
    }

    /// Partitions join the transaction (Kafka's `prepareAddPartitions`): it starts now if none
    /// was open. `client_transaction_version` is 2 when a partition leader adds them for a
    /// transactions-v2 producer (KIP-890 part 2), which then ends with an epoch bump.
    pub(crate) fn prepare_add_partitions(
        &self,
        partitions: &[TopicPartition],
        client_transaction_version: i16,
        now_ms: i64,
    ) -> TxnData {
        let d = &self.data;
        let starts = matches!(
            d.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        );
        let mut all = d.partitions.clone();
        all.extend(partitions.iter().cloned());
        TxnData {
            state: TxnState::Ongoing,
            partitions: all,
            start_ms: if starts { now_ms } else { d.start_ms },
            last_update_ms: now_ms,
            client_transaction_version,
            ..d.clone()
        }
    }

    /// EndTxn: PrepareCommit or PrepareAbort (Kafka's `prepareAbortOrCommit`). Transactions v0
    /// and v1 keep the epoch. Transactions v2 (`client_transaction_version` 2) bump it, so the
    /// markers carry an epoch above every batch of the transaction and a zombie's late batch is
    /// fenced; when the epochs are used up, `next_producer_id` is the id the producer moves to
    /// once the markers are written. An abort with no partition (v2 allows it) starts now.
    pub(crate) fn prepare_end(
        &self,
        commit: bool,
        client_transaction_version: i16,
        next_producer_id: i64,
        now_ms: i64,
    ) -> TxnData {
        let d = &self.data;
        let bumps = client_transaction_version >= 2;
        TxnData {
            state: if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            },
            producer_epoch: if bumps { d.producer_epoch + 1 } else { d.producer_epoch },
            last_producer_epoch: if bumps { d.producer_epoch } else { d.last_producer_epoch },
            next_producer_id: if bumps { next_producer_id } else { NO_PRODUCER_ID },
            start_ms: if d.partitions.is_empty() { now_ms } else { d.start_ms },
            last_update_ms: now_ms,
            client_transaction_version: if bumps {
                client_transaction_version
            } else {
                d.client_transaction_version
            },
            ..d.clone()
        }
    }

    /// The producer id and epoch a transactions-v2 producer continues with once this prepared
    /// transaction is written: the next producer id at epoch 0 when the epochs ran out.
    pub(crate) fn continues_as(data: &TxnData) -> (i64, i16) {
        if data.next_producer_id != NO_PRODUCER_ID {
            (data.next_producer_id, 0)
        } else {
            (data.producer_id, data.producer_epoch)
        }
    }

    /// Every marker is written: CompleteCommit or CompleteAbort, no partitions left. A
    /// transactions-v2 end whose epochs ran out moves to its next producer id at epoch 0 now
    /// that the markers (at the last epoch of the old id) are in.
    pub(crate) fn prepare_complete(&self, now_ms: i64) -> TxnData {
        let d = &self.data;
        let (producer_id, producer_epoch) = TxnMetadata::continues_as(d);
        let previous_producer_id = if producer_id != d.producer_id {
            d.producer_id
        } else {
            d.previous_producer_id
        };
        TxnData {
            producer_id,
            producer_epoch,
            previous_producer_id,
            state: if d.state == TxnState::PrepareCommit {
                TxnState::CompleteCommit
            } else {
                TxnState::CompleteAbort
            },
            next_producer_id: NO_PRODUCER_ID,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms,
            ..d.clone()
        }
    }

    /// Whether a producer's epoch is the one in use.
    pub(crate) fn is_current(&self, producer_id: i64, producer_epoch: i16) -> Result<(), ResponseError> {
        if self.data.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if self.data.producer_epoch != producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(())
    }
}
