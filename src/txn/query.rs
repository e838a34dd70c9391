//! Read-only views for DescribeTransactions, ListTransactions and the partition leaders'
//! verification (AddPartitionsToTxn's verify-only form, KIP-890). They change nothing, so they
//! are plain methods rather than events.

use kafka_protocol::ResponseError;

use super::api::TopicPartition;
use super::coordinator::TxnCoordinatorState;
use super::records::TxnState;

/// One DescribeTransactions entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnDescription {
    pub(crate) state: &'static str,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) start_ms: i64,
    pub(crate) partitions: Vec<TopicPartition>,
}

/// One ListTransactions entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnListing {
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) state: &'static str,
}

/// What ListTransactions filters on (an empty filter matches everything).
#[derive(Debug, Clone)]
pub(crate) struct ListFilter {
    pub(crate) states: Vec<TxnState>,
    pub(crate) producer_ids: Vec<i64>,
    /// Only transactions open longer than this (ms); negative: no filter.
    pub(crate) min_duration_ms: i64,
}

impl Default for ListFilter {
    /// Everything: no state, producer or duration filter.
    fn default() -> Self {
        ListFilter {
            states: Vec::new(),
            producer_ids: Vec::new(),
            min_duration_ms: -1,
        }
    }
}

impl TxnCoordinatorState {
    /// Whether a transactions-v2 EndTxn of `transactional_id` would use up its producer's
    /// epochs and move it to a new producer id (the shell then reserves one for the request).
    pub(crate) fn end_needs_producer_id(&self, transactional_id: &str) -> bool {
        self.txns
            .get(transactional_id)
            .is_some_and(|m| super::state::epoch_exhausted(m.data.producer_epoch))
    }

    /// DescribeTransactions of one transactional id; `None` if unknown here (or expiring).
    pub(crate) fn describe(&self, transactional_id: &str) -> Option<TxnDescription> {
        let meta = self.txns.get(transactional_id)?;
        if meta.data.state == TxnState::Dead || meta.pending == Some(TxnState::Dead) {
            return None;
        }
        let d = &meta.data;
        Some(TxnDescription {
            state: d.state.name(),
            producer_id: d.producer_id,
            producer_epoch: d.producer_epoch,
            timeout_ms: d.timeout_ms,
            start_ms: d.start_ms,
            partitions: d.partitions.iter().cloned().collect(),
        })
    }

    /// ListTransactions: the transactional ids here that pass `filter`, at `now_ms`.
    pub(crate) fn list(&self, filter: &ListFilter, now_ms: i64) -> Vec<TxnListing> {
        self.txns
            .values()
            .filter(|m| m.data.state != TxnState::Dead && m.pending != Some(TxnState::Dead))
            .filter(|m| filter.producer_ids.is_empty() || filter.producer_ids.contains(&m.data.producer_id))
            .filter(|m| filter.states.is_empty() || filter.states.contains(&m.data.state))
            .filter(|m| filter.min_duration_ms < 0 || now_ms.saturating_sub(m.data.start_ms) > filter.min_duration_ms)
            .map(|m| TxnListing {
                transactional_id: m.transactional_id.clone(),
                producer_id: m.data.producer_id,
                state: m.data.state.name(),
            })
            .collect()
    }

    /// Kafka's `handleVerifyPartitionsInTransaction`: for each partition, whether it is in the
    /// producer's open transaction (TRANSACTION_ABORTABLE if not); an error for all when the
    /// producer is not this transactional id's current one or its transaction is ending.
    pub(crate) fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let meta = self
            .txns
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        meta.is_current(producer_id, producer_epoch)?;
        if matches!(meta.data.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|p| (!meta.data.partitions.contains(p)).then_some(ResponseError::TransactionAbortable))
            .collect())
    }
}
