//! Producer state of one partition: for each producer id, its epoch, the metadata of its last
//! five batches (so a retried batch is recognised and answered with its original offsets
//! instead of being written twice), and its open transaction here, if any (`producer_txns`).
//!
//! Owns: the sequence and epoch rules (Kafka's `ProducerAppendInfo`), and the
//! `<offset>.snapshot` file format (Kafka's version 1: a CRC-32C over a flat array of the last
//! batch of each producer, its coordinator epoch and the first offset of its open transaction).
//! May call: `batch` (headers only). Must never: decode records; all it needs is in the 61-byte
//! batch header (a transaction marker's type comes to it already read, `control`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::batch::BatchHeader;
use super::error::LogError;
use super::producer_txns::Verification;

/// How many recent batches per producer are kept for deduplication (Kafka's
/// `NUM_BATCHES_TO_RETAIN`, matching the client's max.in.flight of 5).
const BATCHES_RETAINED: usize = 5;
/// A batch without a producer (non-idempotent) carries this id.
pub(crate) const NO_PRODUCER_ID: i64 = -1;
pub(super) const NO_EPOCH: i16 = -1;
/// No marker written for the producer yet.
pub(super) const NO_COORDINATOR_EPOCH: i32 = -1;
const SNAPSHOT_VERSION: i16 = 1;
/// Bytes of one snapshot entry: id, epoch, last seq, last offset, offset delta, timestamp,
/// coordinator epoch, current transaction first offset.
const SNAPSHOT_ENTRY_BYTES: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
const SNAPSHOT_HEADER_BYTES: usize = 2 + 4 + 4;
/// No partition has more live producers than this in a snapshot we accept.
const SNAPSHOT_ENTRIES_MAX: usize = 10_000_000;

/// Offsets and sequences of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    /// Oldest first, at most `BATCHES_RETAINED`.
    pub(crate) batches: VecDeque<BatchMeta>,
    pub(crate) last_timestamp: i64,
    /// The epoch of the transaction coordinator that wrote this producer's last marker here.
    pub(crate) coordinator_epoch: i32,
    /// Where this producer's open transaction in this partition starts.
    pub(crate) current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    pub(super) fn new() -> ProducerEntry {
        ProducerEntry {
            epoch: NO_EPOCH,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: NO_COORDINATOR_EPOCH,
            current_txn_first_offset: None,
        }
    }

    /// A new epoch forgets the old epoch's batches (their sequences start over).
    pub(super) fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }

    pub(crate) fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// What to do with a producer's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New and in sequence (or not idempotent): append it.
    Append,
    /// Already in the log: answer with these offsets and write nothing.
    Duplicate(BatchMeta),
}

/// The sequence number `delta` records after `base`, wrapping at i32::MAX as Kafka's do.
pub(crate) fn sequence_after(base: i32, delta: i32) -> i32 {
    if base > i32::MAX - delta {
        delta - (i32::MAX - base) - 1
    } else {
        base + delta
    }
}

/// The sequence number `delta` records before `last` (the inverse of `sequence_after`).
fn sequence_before(last: i32, delta: i32) -> i32 {
    if last >= delta {
        last - delta
    } else {
        i32::MAX - (delta - last) + 1
    }
}

fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerState {
    pub(super) producers: HashMap<i64, ProducerEntry>,
    /// Changed since the last snapshot was taken.
    pub(super) dirty: bool,
    /// Open transactions: first offset → producer id.
    pub(super) ongoing: BTreeMap<i64, i64>,
    /// Transactions whose marker is written but not yet below the high watermark: first
    /// offset → (producer id, marker offset). They still hold the last stable offset back.
    pub(super) unreplicated: BTreeMap<i64, (i64, i64)>,
    /// KIP-890 verifications in progress, by producer id (never snapshotted).
    pub(super) verifying: HashMap<i64, Verification>,
    pub(super) next_guard: u64,
}

impl ProducerState {
    #[cfg(test)]
    pub(crate) fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub(crate) fn mark_snapshotted(&mut self) {
        self.dirty = false;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.producers.iter()
    }

    /// Kafka's checks for a client's batch, in Kafka's order: a retry of a recent batch is a
    /// duplicate; an older epoch is fenced; a new epoch must start at sequence 0; otherwise the
    /// batch must follow the last one. An unknown producer must start at 0.
    pub(crate) fn check(&self, h: &BatchHeader) -> Result<Verdict, LogError> {
        if h.producer_id == NO_PRODUCER_ID {
            return Ok(Verdict::Append);
        }
        let last_seq = sequence_after(h.base_sequence, h.last_offset_delta);
        let Some(entry) = self.producers.get(&h.producer_id) else {
            if h.base_sequence != 0 {
                return Err(LogError::UnknownProducerId {
                    producer_id: h.producer_id,
                    sequence: h.base_sequence,
                });
            }
            return Ok(Verdict::Append);
        };
        if h.producer_epoch == entry.epoch {
            let retry = entry
                .batches
                .iter()
                .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq);
            if let Some(b) = retry {
                return Ok(Verdict::Duplicate(*b));
            }
        }
        if h.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        let expected_ok = if h.producer_epoch > entry.epoch {
            h.base_sequence == 0
        } else {
            match entry.last_seq() {
                Some(last) => in_sequence(last, h.base_sequence),
                // No batch at this epoch yet: a marker moved the producer to it (transactions
                // v2 bump the epoch at every end), and the epoch's first batch starts at 0 — a
                // later one first would let the retry of the first be refused as out of order
                // (Kafka's inSequence(NO_SEQUENCE, seq)). Only a producer with no epoch at all
                // may start anywhere.
                None => entry.epoch == NO_EPOCH || h.base_sequence == 0,
            }
        };
        if !expected_ok {
            return Err(LogError::OutOfOrderSequence {
                producer_id: h.producer_id,
                sequence: h.base_sequence,
                last: if h.producer_epoch > entry.epoch {
                    None
                } else {
                    entry.last_seq()
                },
            });
        }
        if entry.current_txn_first_offset.is_some() && !h.is_transactional() {
            return Err(LogError::InvalidTxnState(format!(
                "producer {} wrote outside the transaction it has open here",
                h.producer_id
            )));
        }
        Ok(Verdict::Append)
    }

    /// Records a data batch that is now in the log (its header carries its assigned offsets):
    /// client and coordinator appends after their checks, a follower's, the replay on open. A
    /// transactional batch of a producer without an open transaction here opens one.
    pub(crate) fn record(&mut self, h: &BatchHeader) {
        if h.producer_id == NO_PRODUCER_ID {
            return;
        }
        if h.is_transactional() {
            self.record_transactional(h);
        }
        let meta = BatchMeta {
            first_seq: h.base_sequence,
            last_seq: sequence_after(h.base_sequence, h.last_offset_delta),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        };
        let entry = self.producers.entry(h.producer_id).or_insert_with(ProducerEntry::new);
        entry.set_epoch(h.producer_epoch);
        if entry.batches.len() == BATCHES_RETAINED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(meta);
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
        self.dirty = true;
    }

    /// Forgets producers idle for longer than `max_idle_ms` (producer.id.expiration.ms), unless
    /// they have a transaction open here, and verifications that lingered as long.
    pub(crate) fn expire(&mut self, now_ms: i64, max_idle_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) <= max_idle_ms
        });
        self.verifying
            .retain(|_, v| now_ms.saturating_sub(v.started_ms) < max_idle_ms);
        let removed = before - self.producers.len();
        self.dirty |= removed > 0;
        removed
    }

    /// Each producer's last offset in the log: the log cleaner keeps the batch ending there
    /// (with its sequence and epoch) even when all its records are cleaned away.
    pub(crate) fn last_offsets(&self) -> std::collections::HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset)))
            .collect()
    }

    /// Forgets producers whose last batch is below `log_start` (its records were deleted),
    /// unless a transaction of theirs is still open here, and completed transactions below it.
    pub(crate) fn forget_below(&mut self, log_start: i64) {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            // A producer known only by its markers (no batch) stays until it expires.
            e.current_txn_first_offset.is_some() || e.batches.back().is_none_or(|b| b.last_offset >= log_start)
        });
        self.unreplicated.retain(|_, (_, last)| *last >= log_start);
        self.dirty |= self.producers.len() != before;
    }

    /// Kafka's snapshot file body: version, CRC-32C of the rest, then one entry per producer
    /// holding its last batch. Sorted by producer id so equal states give equal files.
    pub(crate) fn encode_snapshot(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        let mut body = Vec::with_capacity(4 + ids.len() * SNAPSHOT_ENTRY_BYTES);
        body.extend_from_slice(&(ids.len() as i32).to_be_bytes());
        for id in ids {
            let e = &self.producers[id];
            let last = e.batches.back().copied().unwrap_or(BatchMeta {
                first_seq: -1,
                last_seq: -1,
                first_offset: -1,
                last_offset: -1,
                timestamp: e.last_timestamp,
            });
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&last.last_seq.to_be_bytes());
            body.extend_from_slice(&last.last_offset.to_be_bytes());
            body.extend_from_slice(&((last.last_offset - last.first_offset) as i32).to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses a snapshot file; a wrong version, a bad CRC or a short file is an error (the
    /// caller then rebuilds the state from the log instead).
    pub(crate) fn decode_snapshot(bytes: &[u8]) -> Result<ProducerState, String> {
        if bytes.len() < SNAPSHOT_HEADER_BYTES {
            return Err(format!("{} bytes is too short for a snapshot", bytes.len()));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != SNAPSHOT_VERSION {
            return Err(format!("snapshot version {version} is not {SNAPSHOT_VERSION}"));
        }
        let crc = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        let body = &bytes[6..];
        if crc32c::crc32c(body) != crc {
            return Err("snapshot CRC mismatch".into());
        }
        let count = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let count = usize::try_from(count).map_err(|_| format!("negative entry count {count}"))?;
        if count > SNAPSHOT_ENTRIES_MAX || body.len() != 4 + count * SNAPSHOT_ENTRY_BYTES {
            return Err(format!("{count} entries do not fit {} bytes", body.len()));
        }
        let mut state = ProducerState::default();
        for chunk in body[4..].chunks_exact(SNAPSHOT_ENTRY_BYTES) {
            let (id, entry) = decode_entry(chunk);
            if let Some(first) = entry.current_txn_first_offset {
                state.ongoing.insert(first, id);
            }
            state.producers.insert(id, entry);
        }
        Ok(state)
    }
}

fn decode_entry(c: &[u8]) -> (i64, ProducerEntry) {
    let i64_at = |at: usize| i64::from_be_bytes(c[at..at + 8].try_into().expect("8 bytes"));
    let i32_at = |at: usize| i32::from_be_bytes(c[at..at + 4].try_into().expect("4 bytes"));
    let (id, epoch) = (i64_at(0), i16::from_be_bytes([c[8], c[9]]));
    let (last_seq, last_offset, delta, timestamp) = (i32_at(10), i64_at(14), i32_at(22), i64_at(26));
    let (coordinator_epoch, txn_first_offset) = (i32_at(34), i64_at(38));
    let mut batches = VecDeque::new();
    if last_offset >= 0 {
        batches.push_back(BatchMeta {
            first_seq: sequence_before(last_seq, delta),
            last_seq,
            first_offset: last_offset - i64::from(delta),
            last_offset,
            timestamp,
        });
    }
    let entry = ProducerEntry {
        epoch,
        batches,
        last_timestamp: timestamp,
        coordinator_epoch,
        current_txn_first_offset: (txn_first_offset >= 0).then_some(txn_first_offset),
    };
    (id, entry)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::log) fn header(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1000,
            max_timestamp: 1000 + offset,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    pub(in crate::log) fn appended(state: &mut ProducerState, h: BatchHeader) {
        assert_eq!(state.check(&h).unwrap(), Verdict::Append);
        state.record(&h);
    }

    #[test]
    fn retried_batch_is_a_duplicate_with_its_original_offsets() {
        let mut s = ProducerState::default();
        appended(&mut s, header(7, 0, 0, 3, 10));
        appended(&mut s, header(7, 0, 3, 2, 13));
        let Verdict::Duplicate(meta) = s.check(&header(7, 0, 0, 3, 99)).unwrap() else {
            panic!("not a duplicate")
        };
        assert_eq!((meta.first_offset, meta.last_offset), (10, 12));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerState::default();
        for i in 0..6 {
            appended(&mut s, header(7, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(
            s.check(&header(7, 0, 0, 1, 50)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(s.check(&header(7, 0, 1, 1, 50)), Ok(Verdict::Duplicate(_))));
    }

    #[test]
    fn gap_in_sequence_is_out_of_order() {
        let mut s = ProducerState::default();
        appended(&mut s, header(7, 0, 0, 1, 0));
        assert!(matches!(
            s.check(&header(7, 0, 2, 1, 1)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn older_epoch_is_fenced_and_new_epoch_starts_at_zero() {
        let mut s = ProducerState::default();
        appended(&mut s, header(7, 1, 0, 1, 0));
        assert!(matches!(
            s.check(&header(7, 0, 1, 1, 1)),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(
            s.check(&header(7, 2, 5, 1, 1)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        appended(&mut s, header(7, 2, 0, 1, 1));
    }

    #[test]
    fn unknown_producer_must_start_at_sequence_zero() {
        let s = ProducerState::default();
        assert!(matches!(
            s.check(&header(7, 0, 4, 1, 0)),
            Err(LogError::UnknownProducerId { .. })
        ));
        assert_eq!(s.check(&header(7, 0, 0, 1, 0)).unwrap(), Verdict::Append);
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(sequence_after(i32::MAX - 1, 3), 1);
        assert_eq!(sequence_before(1, 3), i32::MAX - 1);
        let mut s = ProducerState::default();
        appended(&mut s, header(7, 0, 0, 1, 0));
        s.producers.get_mut(&7).unwrap().batches.back_mut().unwrap().last_seq = i32::MAX;
        appended(&mut s, header(7, 0, 0, 2, 1));
        assert_eq!(s.get(7).unwrap().last_seq(), Some(1));
    }

    #[test]
    fn non_idempotent_batches_are_not_tracked() {
        let mut s = ProducerState::default();
        appended(&mut s, header(NO_PRODUCER_ID, -1, -1, 4, 0));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn snapshot_round_trips_the_last_batch_of_each_producer() {
        let mut s = ProducerState::default();
        appended(&mut s, header(7, 0, 0, 3, 10));
        appended(&mut s, header(7, 0, 3, 2, 13));
        appended(&mut s, header(9, 4, 0, 1, 15));
        let bytes = s.encode_snapshot();
        assert_eq!(bytes.len(), SNAPSHOT_HEADER_BYTES + 2 * SNAPSHOT_ENTRY_BYTES);
        let back = ProducerState::decode_snapshot(&bytes).unwrap();
        assert_eq!(back.get(7).unwrap().batches.back(), s.get(7).unwrap().batches.back());
        assert_eq!(back.get(9).unwrap().epoch, 4);
        assert!(matches!(back.check(&header(7, 0, 3, 2, 99)), Ok(Verdict::Duplicate(_))));
        assert_eq!(back.check(&header(7, 0, 5, 1, 99)).unwrap(), Verdict::Append);
    }

    #[test]
    fn damaged_snapshot_is_refused() {
        let mut s = ProducerState::default();
        appended(&mut s, header(7, 0, 0, 1, 0));
        let mut bytes = s.encode_snapshot();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(ProducerState::decode_snapshot(&bytes).is_err());
        assert!(ProducerState::decode_snapshot(&bytes[..5]).is_err());
    }

    #[test]
    fn idle_producers_expire() {
        let mut s = ProducerState::default();
        appended(&mut s, header(7, 0, 0, 1, 0));
        assert_eq!(s.expire(1000 + 10, 100), 0);
        assert_eq!(s.expire(1000 + 500, 100), 1);
        assert_eq!(s.len(), 0);
    }
}
