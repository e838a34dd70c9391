//! A partition's side of transactions: the last stable offset and read_committed reads, the
//! appends of the broker's coordinators (transactional offset commits, transaction markers),
//! and the verification guard a producer's first transactional batch here must present.
//!
//! Owns: nothing; these are `Partition` methods over its log, under the same lock and with the
//! same waiters as every other append and read.

use std::sync::atomic::Ordering;

use super::{wake, Appended, Partition, ReadResult};
use crate::log::{encode_marker, AbortedTxn, Marker, Origin};
use crate::replica::ReplicaError;

impl Partition {
    /// The last stable offset: read_committed consumers read below it. The high watermark, or
    /// the first offset of a transaction not yet decided (or decided by a marker the high
    /// watermark has not passed), whichever is lower.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        high_watermark.min(self.first_unstable_offset.load(Ordering::Acquire))
    }

    /// A read_committed consumer's read: batches below the last stable offset from `offset`,
    /// and the aborted transactions whose records they overlap (the consumer drops those).
    pub(crate) fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(ReadResult, Vec<AbortedTxn>), ReplicaError> {
        let high_watermark = self.high_watermark();
        let (records, aborted) = self.with_log(|log| {
            let stable = high_watermark.min(log.first_unstable_offset().unwrap_or(i64::MAX));
            let records = log.read(offset, max_bytes, stable, min_one)?;
            let aborted = match last_offset(&records) {
                Some(last) => log.aborted_transactions(offset, last + 1),
                None => Vec::new(),
            };
            Ok((records, aborted))
        })?;
        let result = ReadResult {
            records,
            high_watermark,
            log_start_offset: self.log_start_offset(),
        };
        Ok((result, aborted))
    }

    /// Appends what a coordinator of this broker writes (group records, transactional offset
    /// commits, markers) as the leader: no recompression, no min-ISR refusal up front (the
    /// coordinator waits for the high watermark, `await_committed`).
    pub(crate) fn append_for_coordinator(&self, batches: &mut [u8], now_ms: i64) -> Result<Appended, ReplicaError> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let epoch = self.leader_epoch();
        let info =
            self.with_log_then_core(|log| Ok(log.append_from(batches, epoch, now_ms, Origin::Coordinator)?))?;
        wake(&self.end_waiters);
        Ok(Appended {
            end_offset: info.last_offset + 1,
            leader_epoch: epoch,
            info,
        })
    }

    /// Starts verifying `producer_id`'s transaction here (KIP-890): the guard its first
    /// transactional batch must present once its coordinator confirmed it, or `None` when it
    /// has a transaction open here already.
    pub(crate) fn start_verification(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        now_ms: i64,
    ) -> Result<Option<u64>, ReplicaError> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        self.with_log(|log| Ok(log.start_verification(producer_id, producer_epoch, now_ms)))
    }

    /// Writes a transaction marker for `producer_id` at `producer_epoch` (WriteTxnMarkers).
    pub(crate) fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        now_ms: i64,
    ) -> Result<Appended, ReplicaError> {
        let mut batch = encode_marker(producer_id, producer_epoch, marker, now_ms);
        self.append_for_coordinator(&mut batch, now_ms)
    }
}

/// The last offset of the last whole batch in `records`.
fn last_offset(records: &[u8]) -> Option<i64> {
    let mut at = 0;
    let mut last = None;
    while at < records.len() {
        let header = crate::log::BatchHeader::parse(&records[at..]).ok()?;
        last = Some(header.last_offset());
        at += header.size_bytes();
    }
    last
}
