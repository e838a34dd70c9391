//! What the log cleaner knows of transactions while it walks a range of the log, Kafka's
//! `CleanedTransactionMetadata`: which batches belong to an aborted transaction (their records
//! go, and the key map skips them), which markers may go (a marker whose transaction left no
//! batch in the range walked: its data was cleaned away by an earlier cleaning), and which
//! aborted transactions the cleaned segment's `.txnindex` must still list (those whose batches
//! are still there, even emptied, and whose ABORT marker therefore stays).
//!
//! Fed the aborted transactions overlapping the range (`Log::aborted_transactions`, from the
//! `.txnindex` files) and then every batch of the range in offset order. Everything below the
//! cleaner's upper bound (the last stable offset) is decided, so a transactional batch that
//! no aborted transaction claims was committed. Owns: that bookkeeping, one entry per
//! producer with a transaction open at the point of the walk (bounded by the producers the
//! log's producer state holds). May call: `txn_index` (the entry type), `batch`. Must never:
//! read files, or call a marker removable while a batch of its transaction remains.

use std::collections::{HashMap, HashSet, VecDeque};

use super::batch::BatchHeader;
use super::txn_index::AbortedTxn;

/// An aborted transaction the walk is inside of.
#[derive(Debug, Clone, Copy)]
struct OngoingAbort {
    txn: AbortedTxn,
    /// Whether the walk met a batch of it.
    saw_batch: bool,
}

#[derive(Debug, Default)]
pub(crate) struct TxnWalk {
    /// Aborted transactions not reached yet, by first offset.
    aborted: VecDeque<AbortedTxn>,
    ongoing_aborted: HashMap<i64, OngoingAbort>,
    /// Producers whose committed transaction's batches the walk met.
    ongoing_committed: HashSet<i64>,
    /// Aborted transactions whose marker stays, for the cleaned `.txnindex`, in marker order.
    kept_index: Vec<AbortedTxn>,
}

impl TxnWalk {
    /// A walk over a range that the aborted transactions `aborted` overlap.
    pub(crate) fn new(mut aborted: Vec<AbortedTxn>) -> TxnWalk {
        aborted.sort_by_key(|a| a.first_offset);
        TxnWalk {
            aborted: aborted.into(),
            ..TxnWalk::default()
        }
    }

    /// The aborted transactions that began at or before `offset` are now open in the walk.
    fn reach(&mut self, offset: i64) {
        while self.aborted.front().is_some_and(|a| a.first_offset <= offset) {
            if let Some(txn) = self.aborted.pop_front() {
                self.ongoing_aborted
                    .entry(txn.producer_id)
                    .or_insert(OngoingAbort { txn, saw_batch: false });
            }
        }
    }

    /// A data batch: true if it belongs to an aborted transaction (its records go).
    pub(crate) fn on_batch(&mut self, h: &BatchHeader) -> bool {
        self.reach(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&h.producer_id) {
            Some(abort) => {
                abort.saw_batch = true;
                true
            }
            None => {
                self.ongoing_committed.insert(h.producer_id);
                false
            }
        }
    }

    /// A control batch (`commit`: what its marker says; `None` when that is unknown — another
    /// control record, or one that does not read): true if no batch of its transaction is left
    /// in the range, so the marker may go once its delete horizon passed. A kept ABORT marker
    /// keeps its entry in the cleaned `.txnindex`. An unknown one stays and ends whatever the
    /// producer had open, keeping its entry: never a later transaction taken for aborted.
    pub(crate) fn on_marker(&mut self, h: &BatchHeader, commit: Option<bool>) -> bool {
        self.reach(h.last_offset());
        let committed = self.ongoing_committed.remove(&h.producer_id);
        let aborted = self.ongoing_aborted.remove(&h.producer_id);
        match commit {
            Some(false) => match aborted {
                Some(abort) if abort.saw_batch => {
                    self.kept_index.push(abort.txn);
                    false
                }
                _ => true,
            },
            Some(true) => !committed,
            None => {
                self.kept_index.extend(aborted.map(|a| a.txn));
                false
            }
        }
    }

    /// The aborted transactions the cleaned segment's `.txnindex` lists, in marker order.
    pub(crate) fn take_index(&mut self) -> Vec<AbortedTxn> {
        std::mem::take(&mut self.kept_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(offset: i64, producer_id: i64, transactional: bool, control: bool) -> BatchHeader {
        let attributes = if transactional { 1 << 4 } else { 0 } | if control { 1 << 5 } else { 0 };
        BatchHeader {
            base_offset: offset,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: 0,
            base_sequence: 0,
            records_count: 1,
        }
    }

    fn aborted(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset: last_offset + 1,
        }
    }

    #[test]
    fn an_aborted_transactions_batches_go_and_its_marker_stays_while_they_were_there() {
        // Producer 1 aborts [0, 3], producer 2 commits [1, 4], interleaved.
        let mut walk = TxnWalk::new(vec![aborted(1, 0, 3)]);
        assert!(walk.on_batch(&header(0, 1, true, false)));
        assert!(!walk.on_batch(&header(1, 2, true, false)));
        assert!(walk.on_batch(&header(2, 1, true, false)));
        assert!(!walk.on_marker(&header(3, 1, true, true), Some(false)));
        assert!(!walk.on_marker(&header(4, 2, true, true), Some(true)));
        assert_eq!(walk.take_index(), vec![aborted(1, 0, 3)]);
    }

    #[test]
    fn a_marker_whose_batches_are_gone_may_go_and_leaves_the_index() {
        // The same log after a cleaning: the aborted batches and the committed one are gone.
        let mut walk = TxnWalk::new(vec![aborted(1, 0, 3)]);
        assert!(walk.on_marker(&header(3, 1, true, true), Some(false)));
        assert!(walk.on_marker(&header(4, 2, true, true), Some(true)));
        assert!(walk.take_index().is_empty());
    }

    #[test]
    fn non_transactional_batches_and_other_control_records_are_never_touched() {
        let mut walk = TxnWalk::new(vec![aborted(1, 0, 3)]);
        assert!(!walk.on_batch(&header(0, 1, false, false)));
        assert!(!walk.on_marker(&header(1, 7, true, true), None));
        // An unknown control record ends the producer's transaction: its next one commits.
        assert!(walk.on_batch(&header(2, 1, true, false)));
        assert!(!walk.on_marker(&header(3, 1, true, true), None));
        assert!(!walk.on_batch(&header(4, 1, true, false)));
    }

    #[test]
    fn a_producers_later_transaction_after_an_abort_counts_as_committed() {
        let mut walk = TxnWalk::new(vec![aborted(1, 0, 1)]);
        assert!(walk.on_batch(&header(0, 1, true, false)));
        assert!(!walk.on_marker(&header(1, 1, true, true), Some(false)));
        assert!(!walk.on_batch(&header(2, 1, true, false)));
        assert!(!walk.on_marker(&header(3, 1, true, true), Some(true)));
    }
}
