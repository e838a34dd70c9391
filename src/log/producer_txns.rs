//! Transactions in one partition's producer state (KIP-98, and KIP-890's verification): which
//! producers have a transaction open here and where it starts, which transactions ended but
//! whose marker is not yet below the high watermark, and from these the first unstable offset
//! that bounds the last stable offset (LSO) read_committed consumers read up to.
//!
//! A producer's first transactional batch here opens its transaction; its COMMIT or ABORT
//! marker closes it ([`ProducerState::record_marker`], which says which transaction ended, so
//! the log can index an abort). Kafka's rules for markers: an older producer epoch is
//! INVALID_PRODUCER_EPOCH, an older coordinator epoch TRANSACTION_COORDINATOR_FENCED.
//!
//! Verification (KIP-890 part 1): before a producer's first transactional batch here is
//! appended, its coordinator must confirm the partition is in the transaction. The guard
//! handed out when that starts must still be in place when the batch is appended: a marker in
//! between (the transaction ended meanwhile) removes it, so a late batch cannot start a
//! transaction nobody will ever end.
//!
//! Owns: nothing on disk beyond what the snapshot carries (each producer's open transaction and
//! coordinator epoch). Must never: decide what a consumer reads (the log and replica layers do,
//! from the offsets computed here).

use super::batch::BatchHeader;
use super::control::Marker;
use super::error::LogError;
use super::producer_state::{ProducerEntry, ProducerState};

/// A transaction that ended in this partition: its marker was just appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// The marker's offset.
    pub(crate) last_offset: i64,
    pub(crate) aborted: bool,
    /// The first offset of the earliest transaction of another producer still open, or the
    /// marker's next offset: Kafka's last stable offset for this transaction's index entry.
    pub(crate) last_stable_offset: i64,
}

/// A verification of a producer's transaction in progress (Kafka's `VerificationStateEntry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verification {
    pub(crate) epoch: i16,
    pub(crate) guard: u64,
    pub(crate) started_ms: i64,
}

impl ProducerState {
    /// A transactional data batch is being recorded: it opens the producer's transaction here
    /// unless one is open already (the verification that let it in is then spent).
    pub(super) fn record_transactional(&mut self, h: &BatchHeader) {
        let entry = self.producers.entry(h.producer_id).or_insert_with(ProducerEntry::new);
        if entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(h.base_offset);
            self.ongoing.insert(h.base_offset, h.producer_id);
            self.verifying.remove(&h.producer_id);
        }
    }

    /// A verification of `producer_id`'s transaction begins (or goes on, at the same epoch):
    /// its guard. A marker removes it, so a batch verified before a transaction ended cannot
    /// open one after.
    pub(super) fn start_verification(&mut self, producer_id: i64, producer_epoch: i16, now_ms: i64) -> u64 {
        if let Some(v) = self.verifying.get(&producer_id).filter(|v| v.epoch == producer_epoch) {
            return v.guard;
        }
        self.next_guard += 1;
        let guard = self.next_guard;
        let started_ms = now_ms;
        self.verifying.insert(
            producer_id,
            Verification {
                epoch: producer_epoch,
                guard,
                started_ms,
            },
        );
        guard
    }

    /// Whether the verification `guard` of `producer_id` still holds.
    pub(super) fn verification_holds(&self, producer_id: i64, guard: u64) -> bool {
        self.verifying.get(&producer_id).is_some_and(|v| v.guard == guard)
    }

    /// Whether `producer_id` has a transaction open in this partition.
    #[cfg(test)]
    pub(crate) fn has_ongoing_txn(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// Whether `producer_id` has a transaction open here at `producer_epoch` (Kafka's
    /// `hasOngoingTransaction(producerId, producerEpoch)`): a transactions-v2 producer starts
    /// its next transaction at the epoch its EndTxn bumped to, possibly before that end's
    /// marker is here, and that batch must wait for its coordinator rather than join the
    /// transaction being ended.
    pub(crate) fn has_ongoing_txn_at(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some() && e.epoch == producer_epoch)
    }

    /// Kafka's epoch check for batches the broker's own coordinators write (no sequences).
    pub(crate) fn check_epoch(&self, h: &BatchHeader) -> Result<(), LogError> {
        match self.producers.get(&h.producer_id) {
            Some(entry) if h.producer_epoch < entry.epoch => Err(LogError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            }),
            _ => Ok(()),
        }
    }

    /// A marker from a coordinator: not from an older producer epoch, nor from a coordinator
    /// older than the one that wrote this producer's last marker.
    pub(crate) fn check_marker(&self, h: &BatchHeader, marker: &Marker) -> Result<(), LogError> {
        self.check_epoch(h)?;
        match self.producers.get(&h.producer_id) {
            Some(entry) if marker.coordinator_epoch < entry.coordinator_epoch => {
                Err(LogError::TransactionCoordinatorFenced {
                    producer_id: h.producer_id,
                    coordinator_epoch: marker.coordinator_epoch,
                    current: entry.coordinator_epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a marker now in the log: the producer's transaction here (if any) ends, and
    /// stays unstable until the high watermark passes the marker.
    pub(crate) fn record_marker(&mut self, h: &BatchHeader, marker: &Marker) -> Option<CompletedTxn> {
        let producer_id = h.producer_id;
        let entry = self.producers.entry(producer_id).or_insert_with(ProducerEntry::new);
        entry.set_epoch(h.producer_epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
        let first_offset = entry.current_txn_first_offset.take();
        self.verifying.remove(&producer_id);
        self.dirty = true;
        let first_offset = first_offset?;
        let last_offset = h.base_offset;
        let last_stable_offset = self
            .ongoing
            .iter()
            .find(|(_, p)| **p != producer_id)
            .map_or(last_offset + 1, |(first, _)| *first);
        self.ongoing.remove(&first_offset);
        self.unreplicated.insert(first_offset, (producer_id, last_offset));
        Some(CompletedTxn {
            producer_id,
            first_offset,
            last_offset,
            aborted: !marker.commit,
            last_stable_offset,
        })
    }

    /// The earliest offset whose transaction is undecided, or decided by a marker the high
    /// watermark has not passed yet; `None` when every transaction here is stable.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The high watermark moved: transactions whose marker is below it are stable.
    pub(crate) fn on_high_watermark(&mut self, high_watermark: i64) {
        self.unreplicated.retain(|_, (_, marker)| *marker >= high_watermark);
    }
}

#[cfg(test)]
mod tests {
    use super::super::producer_state::tests::{appended, header};
    use super::*;

    fn txn(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        let mut h = header(pid, epoch, seq, count, offset);
        h.attributes |= 1 << 4;
        h
    }

    fn marker_at(pid: i64, epoch: i16, offset: i64) -> BatchHeader {
        let mut h = header(pid, epoch, -1, 1, offset);
        h.attributes |= (1 << 4) | (1 << 5);
        h
    }

    const COMMIT: Marker = Marker {
        commit: true,
        coordinator_epoch: 3,
    };
    const ABORT: Marker = Marker {
        commit: false,
        coordinator_epoch: 3,
    };

    #[test]
    fn a_transaction_holds_the_first_unstable_offset_until_its_marker_is_replicated() {
        let mut s = ProducerState::default();
        appended(&mut s, header(1, 0, 0, 5, 0)); // not transactional: stable at once
        assert_eq!(s.first_unstable_offset(), None);
        appended(&mut s, txn(7, 0, 0, 2, 5));
        appended(&mut s, txn(7, 0, 2, 2, 7));
        assert_eq!(s.first_unstable_offset(), Some(5));
        assert!(s.has_ongoing_txn(7));
        let done = s.record_marker(&marker_at(7, 0, 9), &COMMIT).unwrap();
        assert_eq!((done.first_offset, done.last_offset, done.aborted), (5, 9, false));
        assert_eq!(done.last_stable_offset, 10);
        assert_eq!(
            s.first_unstable_offset(),
            Some(5),
            "until the high watermark passes the marker"
        );
        s.on_high_watermark(9);
        assert_eq!(s.first_unstable_offset(), Some(5));
        s.on_high_watermark(10);
        assert_eq!(s.first_unstable_offset(), None);
        assert!(!s.has_ongoing_txn(7));
    }

    #[test]
    fn an_abort_index_entry_stops_at_the_next_open_transaction_of_another_producer() {
        let mut s = ProducerState::default();
        appended(&mut s, txn(7, 0, 0, 2, 0));
        appended(&mut s, txn(8, 0, 0, 2, 2));
        let done = s.record_marker(&marker_at(7, 0, 4), &ABORT).unwrap();
        assert!(done.aborted);
        assert_eq!(done.last_stable_offset, 2, "producer 8's transaction is still open");
        assert_eq!(s.first_unstable_offset(), Some(0));
    }

    #[test]
    fn after_a_marker_bumps_the_epoch_the_epochs_first_batch_must_start_at_zero() {
        let mut s = ProducerState::default();
        appended(&mut s, txn(7, 0, 0, 30, 0));
        s.record_marker(&marker_at(7, 1, 30), &COMMIT).unwrap();
        // Transactions v2: the next transaction runs at the marker's epoch, from sequence 0.
        assert!(matches!(
            s.check(&txn(7, 1, 10, 10, 31)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert_eq!(
            s.check(&txn(7, 1, 0, 10, 31)).unwrap(),
            super::super::producer_state::Verdict::Append
        );
    }

    #[test]
    fn a_marker_without_data_here_ends_nothing_but_moves_the_epochs() {
        let mut s = ProducerState::default();
        assert_eq!(s.record_marker(&marker_at(7, 2, 0), &COMMIT), None);
        assert_eq!(s.get(7).unwrap().epoch, 2);
        assert!(matches!(
            s.check_marker(&marker_at(7, 1, 1), &COMMIT),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        let older_coordinator = Marker {
            commit: true,
            coordinator_epoch: 2,
        };
        assert!(matches!(
            s.check_marker(&marker_at(7, 2, 1), &older_coordinator),
            Err(LogError::TransactionCoordinatorFenced { .. })
        ));
        assert!(s.check_marker(&marker_at(7, 3, 1), &COMMIT).is_ok());
    }

    #[test]
    fn writing_outside_an_open_transaction_is_invalid_txn_state() {
        let mut s = ProducerState::default();
        appended(&mut s, txn(7, 0, 0, 1, 0));
        assert!(matches!(
            s.check(&header(7, 0, 1, 1, 1)),
            Err(LogError::InvalidTxnState(_))
        ));
        assert!(s.check(&txn(7, 0, 1, 1, 1)).is_ok());
    }

    #[test]
    fn open_transactions_survive_a_snapshot_and_never_expire() {
        let mut s = ProducerState::default();
        appended(&mut s, txn(7, 0, 0, 2, 10));
        s.record_marker(&marker_at(9, 4, 12), &COMMIT);
        let back = ProducerState::decode_snapshot(&s.encode_snapshot()).unwrap();
        assert_eq!(back.first_unstable_offset(), Some(10));
        assert_eq!(back.get(7).unwrap().current_txn_first_offset, Some(10));
        assert_eq!(back.get(9).unwrap().coordinator_epoch, 3);
        let mut back = back;
        assert_eq!(
            back.expire(i64::MAX, 1),
            1,
            "only the producer without an open transaction"
        );
        assert!(back.has_ongoing_txn(7));
    }
}
