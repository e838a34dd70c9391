//! Transactions in a log: who may append what (a producer's sequences and KIP-890 verification,
//! the broker's own coordinators' records and markers), what a marker changes (the producer
//! state, and the segment's transaction index when it aborts), and what read_committed
//! consumers need: the first unstable offset and the aborted transactions in a range.
//!
//! Owns: nothing new on disk; these are `Log` methods that keep the producer state and the
//! transaction indexes consistent with the batches. May call: `producer_state`, `control`,
//! `txn_index`, `segment`. Must never: look inside a data batch past its header.

use super::batch::{self, BatchHeader};
use super::control::{self, Marker};
use super::error::LogError;
use super::log::{AppendInfo, Log};
use super::producer_state::{ProducerState, Verdict, NO_PRODUCER_ID};
use super::producer_txns::CompletedTxn;
use super::txn_index::AbortedTxn;

/// Who is appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A producer, through Produce. Its transactional batches may start a transaction here
    /// only as `TxnVerification` allows.
    Client(TxnVerification),
    /// The broker's own coordinators: group records, transactional offset commits (no
    /// sequences; only the producer epoch is checked) and transaction markers.
    Coordinator,
}

/// How a producer's first transactional batch in this partition was checked with its
/// transaction coordinator (KIP-890 part 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnVerification {
    /// `transaction.partition.verification.enable=false`: any transactional batch may start one.
    Off,
    /// Verification is on and none was done for this append (the producer had a transaction
    /// open here when the produce path looked): its batch may continue that transaction only.
    Unverified,
    /// The coordinator confirmed the partition is in the transaction; `guard` (from
    /// `Log::start_verification`) must still be in place, no marker having come in between.
    Verified { guard: u64 },
}

impl Origin {
    pub(super) fn validate(self, batches: &[u8], max_message_bytes: u32) -> Result<Vec<BatchHeader>, LogError> {
        match self {
            Origin::Client(_) => batch::validate_batches(batches, max_message_bytes),
            Origin::Coordinator => batch::validate_coordinator(batches, max_message_bytes),
        }
    }
}

/// What the producer checks decided about an append.
#[derive(Debug)]
pub(super) enum Checked {
    /// A retry of a batch already in the log: answer with its offsets, write nothing.
    Duplicate(AppendInfo),
    /// Append, and record these markers (index of the batch, what it says).
    Append(Vec<(usize, Marker)>),
}

impl Log {
    /// Kafka's producer checks for an append from `origin`, before anything is written.
    pub(super) fn producer_checks(
        &self,
        batches: &[u8],
        headers: &[BatchHeader],
        origin: Origin,
    ) -> Result<Checked, LogError> {
        if headers.iter().all(|h| h.producer_id == NO_PRODUCER_ID) {
            return Ok(Checked::Append(Vec::new()));
        }
        match origin {
            Origin::Client(verification) => self.client_checks(headers, verification),
            Origin::Coordinator => self.coordinator_checks(batches, headers),
        }
    }

    fn client_checks(&self, headers: &[BatchHeader], verification: TxnVerification) -> Result<Checked, LogError> {
        if headers.len() > 1 {
            // As Kafka: sequence checks and deduplication work on whole requests of one batch.
            return Err(LogError::InvalidRecord(
                "an idempotent produce carries exactly one record batch per partition".into(),
            ));
        }
        let h = &headers[0];
        if let Verdict::Duplicate(meta) = self.producers.check(h)? {
            return Ok(Checked::Duplicate(AppendInfo {
                base_offset: meta.first_offset,
                last_offset: meta.last_offset,
                max_timestamp: meta.timestamp,
                offset_of_max_timestamp: meta.last_offset,
                record_count: 0,
                batch_count: 0,
                bytes: 0,
                duplicate: true,
                log_append_time_ms: -1,
            }));
        }
        if h.is_transactional() && !self.producers.has_ongoing_txn_at(h.producer_id, h.producer_epoch) {
            let admitted = match verification {
                TxnVerification::Off => true,
                TxnVerification::Unverified => false,
                TxnVerification::Verified { guard } => self.producers.verification_holds(h.producer_id, guard),
            };
            if !admitted {
                return Err(LogError::InvalidTxnState(
                    "record was not part of an ongoing transaction".into(),
                ));
            }
        }
        Ok(Checked::Append(Vec::new()))
    }

    /// Before a producer's first transactional batch here is appended, its coordinator is
    /// asked whether the partition is in its transaction (KIP-890): the guard that append must
    /// present, or `None` when the producer has a transaction open here already.
    pub(crate) fn start_verification(&mut self, producer_id: i64, producer_epoch: i16, now_ms: i64) -> Option<u64> {
        if self.producers.has_ongoing_txn_at(producer_id, producer_epoch) {
            return None;
        }
        Some(self.producers.start_verification(producer_id, producer_epoch, now_ms))
    }

    fn coordinator_checks(&self, batches: &[u8], headers: &[BatchHeader]) -> Result<Checked, LogError> {
        let mut markers = Vec::new();
        let mut position = 0;
        for (i, h) in headers.iter().enumerate() {
            let bytes = &batches[position..position + h.size_bytes()];
            position += h.size_bytes();
            if h.producer_id == NO_PRODUCER_ID {
                continue;
            }
            if !h.is_control() {
                self.producers.check_epoch(h)?;
            } else if let Some(marker) = control::read_marker(bytes)? {
                self.producers.check_marker(h, &marker)?;
                markers.push((i, marker));
            }
        }
        Ok(Checked::Append(markers))
    }

    /// Records appended batches (offsets assigned) in the producer state; an aborted
    /// transaction goes into the active segment's transaction index.
    pub(super) fn record_producers(
        &mut self,
        headers: &[BatchHeader],
        markers: &[(usize, Marker)],
    ) -> Result<(), LogError> {
        let mut markers = markers.iter().peekable();
        for (i, h) in headers.iter().enumerate() {
            match markers.next_if(|(at, _)| *at == i) {
                Some((_, marker)) => {
                    if let Some(done) = self.producers.record_marker(h, marker) {
                        self.index_completed(done)?;
                    }
                }
                None if !h.is_control() => self.producers.record(h),
                None => {}
            }
        }
        Ok(())
    }

    /// Records a leader's batches as a follower appended them: no checks, markers read from
    /// the control batches.
    pub(super) fn record_replicated(&mut self, batches: &[u8], headers: &[BatchHeader]) -> Result<(), LogError> {
        let mut position = 0;
        for h in headers {
            let bytes = &batches[position..position + h.size_bytes()];
            position += h.size_bytes();
            if !h.is_control() {
                self.producers.record(h);
            } else if h.producer_id != NO_PRODUCER_ID {
                if let Some(done) = control::read_marker(bytes)?.and_then(|m| self.producers.record_marker(h, &m)) {
                    self.index_completed(done)?;
                }
            }
        }
        Ok(())
    }

    fn index_completed(&mut self, done: CompletedTxn) -> Result<(), LogError> {
        if done.aborted {
            self.active_mut().txn_index_mut().append(aborted_txn(done))?;
        }
        Ok(())
    }

    /// Rebuilds the producer state from `state` (a snapshot's, at `from`) and the batches after
    /// `from`, and with it the transaction indexes of what it replays.
    pub(super) fn replay_producers(&mut self, mut state: ProducerState, from: i64) -> Result<ProducerState, LogError> {
        let first = self.segment_for(from);
        for segment in &mut self.segments[first..] {
            segment.txn_index_mut().truncate_from(from)?;
        }
        for i in first..self.segments.len() {
            let segment = &self.segments[i];
            let mut aborted = Vec::new();
            let mut unreadable = None;
            segment.visit_for_producers(from.max(segment.base_offset()), |h, control| match control {
                None => state.record(h),
                Some(_) if h.producer_id == NO_PRODUCER_ID => {}
                Some(bytes) => match control::read_marker(bytes) {
                    Ok(marker) => {
                        let done = marker.and_then(|m| state.record_marker(h, &m));
                        aborted.extend(done.filter(|d| d.aborted));
                    }
                    Err(e) => unreadable = Some((h.base_offset, e)),
                },
            })?;
            if let Some((offset, error)) = unreadable {
                tracing::warn!(dir = %self.dir().display(), offset, %error, "skipped a control batch that does not decode");
            }
            for done in aborted {
                self.segments[i].txn_index_mut().append(aborted_txn(done))?;
            }
        }
        Ok(state)
    }

    /// The aborted transactions a read_committed fetch returning `[start, upper)` must be told
    /// of (Kafka's `collectAbortedTransactions`): those whose records overlap the range. The
    /// search stops at an entry written when no transaction starting below `upper` was open.
    pub(crate) fn aborted_transactions(&self, start: i64, upper: i64) -> Vec<AbortedTxn> {
        let mut found = Vec::new();
        for segment in &self.segments[self.segment_for(start)..] {
            for e in segment.txn_index().entries() {
                if e.last_offset >= start && e.first_offset < upper {
                    found.push(*e);
                }
                if e.last_stable_offset >= upper {
                    return found;
                }
            }
        }
        found
    }

    /// The earliest offset whose transaction is not decided and replicated (see
    /// `ProducerState::first_unstable_offset`); `None` when all is stable.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.first_unstable_offset()
    }

    /// The replica's high watermark moved (transactions decided below it are now stable).
    pub(crate) fn on_high_watermark(&mut self, high_watermark: i64) {
        self.producers.on_high_watermark(high_watermark);
    }
}

fn aborted_txn(done: CompletedTxn) -> AbortedTxn {
    AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.last_offset,
        last_stable_offset: done.last_stable_offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::control::encode_marker;
    use crate::log::testutil::{
        batch_of, config, decode_offsets, producer_batch, read_all, txn_index_entries as entries,
    };
    use std::path::Path;

    fn open(dir: &Path) -> Log {
        Log::open(dir, config(), 0).unwrap()
    }

    fn txn(log: &mut Log, pid: i64, seq: i32, n: usize) -> i64 {
        let mut batch = producer_batch(n, pid, 0, seq, true);
        let origin = Origin::Client(TxnVerification::Off);
        log.append_from(&mut batch, 0, 0, origin).unwrap().base_offset
    }

    fn end(log: &mut Log, pid: i64, commit: bool) -> Result<i64, LogError> {
        let marker = Marker {
            commit,
            coordinator_epoch: 1,
        };
        let mut batch = encode_marker(pid, 0, marker, 0);
        Ok(log.append_from(&mut batch, 0, 0, Origin::Coordinator)?.base_offset)
    }

    fn txn_as(log: &mut Log, pid: i64, seq: i32, verification: TxnVerification) -> Result<i64, LogError> {
        let mut batch = producer_batch(1, pid, 0, seq, true);
        Ok(log
            .append_from(&mut batch, 0, 0, Origin::Client(verification))?
            .base_offset)
    }

    #[test]
    fn kip_890_a_transaction_starts_here_only_with_a_verification_still_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        let unverified = txn_as(&mut log, 7, 0, TxnVerification::Unverified);
        assert!(matches!(unverified, Err(LogError::InvalidTxnState(_))));
        let guard = log.start_verification(7, 0, 0).expect("no transaction open yet");
        assert_eq!(
            log.start_verification(7, 0, 0),
            Some(guard),
            "the same verification goes on"
        );
        assert_eq!(txn_as(&mut log, 7, 0, TxnVerification::Verified { guard }).unwrap(), 0);
        assert_eq!(log.start_verification(7, 0, 0), None, "open: nothing to verify");
        assert_eq!(
            txn_as(&mut log, 7, 1, TxnVerification::Unverified).unwrap(),
            1,
            "the open one goes on"
        );
        end(&mut log, 7, true).unwrap();
        // Verified, then the transaction ended before the batch came: it opens nothing.
        let late = log.start_verification(7, 0, 0).unwrap();
        end(&mut log, 7, false).unwrap();
        let refused = txn_as(&mut log, 7, 2, TxnVerification::Verified { guard: late });
        assert!(matches!(refused, Err(LogError::InvalidTxnState(_))));
    }

    #[test]
    fn an_abort_is_indexed_and_found_by_a_fetch_that_overlaps_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        assert_eq!(txn(&mut log, 7, 0, 3), 0);
        assert_eq!(log.first_unstable_offset(), Some(0));
        assert_eq!(end(&mut log, 7, true).unwrap(), 3);
        assert_eq!(txn(&mut log, 7, 3, 2), 4);
        assert_eq!(end(&mut log, 7, false).unwrap(), 6);
        assert_eq!(entries(&log), [(7, 4, 6)], "only the abort is indexed");
        assert!(dir.path().join("00000000000000000000.txnindex").exists());
        log.on_high_watermark(7);
        assert_eq!(log.first_unstable_offset(), None);
        let aborted = log.aborted_transactions(0, 7);
        assert_eq!(aborted.len(), 1);
        assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (7, 4));
        assert!(log.aborted_transactions(0, 4).is_empty(), "the range ends before it");
        assert!(
            log.aborted_transactions(7, 8).is_empty(),
            "the range starts after its marker"
        );
    }

    #[test]
    fn a_client_cannot_write_a_marker_and_a_fenced_coordinator_cannot_either() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        let marker = Marker {
            commit: true,
            coordinator_epoch: 5,
        };
        let mut batch = encode_marker(7, 0, marker, 0);
        assert!(log.append(&mut batch.clone(), 0, 0).is_err());
        log.append_from(&mut batch, 0, 0, Origin::Coordinator).unwrap();
        let older = Marker {
            commit: true,
            coordinator_epoch: 4,
        };
        let fenced = log.append_from(&mut encode_marker(7, 0, older, 0), 0, 0, Origin::Coordinator);
        assert!(matches!(fenced, Err(LogError::TransactionCoordinatorFenced { .. })));
    }

    #[test]
    fn open_transactions_and_the_index_survive_a_restart_with_or_without_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        txn(&mut log, 7, 0, 2);
        end(&mut log, 7, false).unwrap();
        log.flush().unwrap(); // snapshot at 3
        txn(&mut log, 8, 0, 2); // 3..5, open
        txn(&mut log, 9, 0, 1); // 5, open
        end(&mut log, 9, false).unwrap(); // 6
        let before = entries(&log);
        drop(log);
        let log = open(dir.path());
        assert_eq!(entries(&log), before);
        assert_eq!(log.first_unstable_offset(), Some(3));
        assert!(log.producers().has_ongoing_txn(8));
        drop(log);
        for snapshot in crate::log::testutil::files_with_suffix(dir.path(), ".snapshot") {
            std::fs::remove_file(snapshot).unwrap();
        }
        std::fs::remove_file(dir.path().join("00000000000000000000.txnindex")).unwrap();
        let log = open(dir.path());
        assert_eq!(entries(&log), before, "rebuilt from the markers");
        assert_eq!(
            log.aborted_transactions(5, 7)[0].last_stable_offset,
            3,
            "8's transaction was open"
        );
    }

    #[test]
    fn a_follower_indexes_what_its_leader_did_and_truncation_takes_it_back() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut leader = open(a.path());
        leader.append(&mut batch_of(2, 0), 0, 0).unwrap();
        txn(&mut leader, 7, 0, 2);
        end(&mut leader, 7, false).unwrap();
        let bytes = leader.read(0, 1 << 20, i64::MAX, true).unwrap();
        let mut follower = open(b.path());
        follower.append_as_follower(&bytes, 0).unwrap();
        assert_eq!(entries(&follower), entries(&leader));
        assert_eq!(read_all(&follower), decode_offsets(&bytes));
        follower.truncate_diverged(4).unwrap();
        assert!(entries(&follower).is_empty());
        assert_eq!(
            follower.first_unstable_offset(),
            Some(2),
            "open again without its marker"
        );
    }
}
