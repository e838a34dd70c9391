//! The log's side of replication: the leader epoch cache kept in step with the batches,
//! appends of a leader's batches as they are (a follower's log), and truncation to where a
//! follower's log diverges from its leader's.
//!
//! Owns: nothing new; these are `Log` methods that keep the epoch cache, the producer state and
//! the segments consistent with each other. Must never: assign offsets or epochs to a
//! follower's batches (they are the leader's, byte for byte), or recompute a CRC.

use super::batch;
use super::error::LogError;
use super::leader_epoch::{EpochEntry, LeaderEpochCache};
use super::log::{AppendInfo, Log};

impl Log {
    /// Loads `leader-epoch-checkpoint`, or rebuilds it from the batch headers when it is missing
    /// (a log written before the file was kept); then makes it agree with the recovered log.
    pub(super) fn load_epochs(&mut self) -> Result<(), LogError> {
        let (mut cache, loaded) = match LeaderEpochCache::load(&self.dir)? {
            Some(c) => (c, true),
            None => (LeaderEpochCache::empty(&self.dir), false),
        };
        let mut changed = !loaded && self.log_end_offset() > self.log_start_offset();
        if !loaded {
            for segment in &self.segments {
                segment.visit_headers(segment.base_offset(), |h| {
                    cache.assign(h.partition_leader_epoch, h.base_offset);
                })?;
            }
        }
        changed |= cache.truncate_from_end(self.log_end_offset());
        changed |= cache.truncate_from_start(self.log_start_offset());
        self.epochs = cache;
        if changed {
            self.epochs.persist()?;
        }
        Ok(())
    }

    /// Notes that `epoch` starts at `start_offset` (a leader's first append in a new epoch, or a
    /// new leader's log end when it takes over), persisting the cache if that changed it.
    pub(crate) fn assign_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if self.epochs.assign(epoch, start_offset) {
            self.epochs.persist()?;
        }
        Ok(())
    }

    /// The latest leader epoch of this log's batches (or of its newest leader), if any.
    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Kafka's `endOffsetFor`: (largest epoch <= `epoch` this log has, where it ends).
    pub(crate) fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    pub(crate) fn epoch_entries(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    /// Appends a leader's batches as they are: offsets, epochs, producer fields and control
    /// batches untouched. Each batch is checked (framing, CRC) but not held to this broker's
    /// size limit (the leader's config decided that). The first batch may not start below the
    /// log end: the fetch that read it asked from there.
    pub(crate) fn append_as_follower(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.observe_clock(now_ms);
        let headers = batch::validate_replicated(batches)?;
        let first = headers[0].base_offset;
        let log_end = self.log_end_offset();
        if first < log_end {
            return Err(LogError::InvalidRecord(format!(
                "replicated batch at offset {first} is below the log end {log_end}"
            )));
        }
        if headers.windows(2).any(|w| w[1].base_offset <= w[0].last_offset()) {
            return Err(LogError::InvalidRecord("replicated batches out of order".into()));
        }
        let last = headers[headers.len() - 1].last_offset();
        if self.should_roll(batches.len() as u64, last + 1 - log_end, now_ms) || self.needs_gap_roll(first) {
            self.roll_at(first)?;
        }
        for h in &headers {
            if self.epochs.assign(h.partition_leader_epoch, h.base_offset) {
                self.epochs.persist()?;
            }
        }
        let interval = self.config.index_interval_bytes;
        self.active_mut().append(batches, &headers, interval, now_ms)?;
        self.record_replicated(batches, &headers)?;
        let info = AppendInfo::summarize(&headers, batches.len());
        self.unflushed_records = self.unflushed_records.saturating_add(info.record_count);
        if self.unflushed_records >= self.config.flush_interval_messages {
            self.flush()?;
        }
        Ok(info)
    }

    /// A batch far past the active segment's relative offsets (a compacted leader's gap) needs a
    /// segment of its own.
    fn needs_gap_roll(&self, first: i64) -> bool {
        let active = self.active();
        !active.is_empty() && first - active.base_offset() > i64::from(i32::MAX)
    }

    /// Cuts the log at `offset` (everything at or above it goes: where this follower's log
    /// diverged from its leader's) and brings the epoch cache and producer state in line.
    /// With nothing to cut, an epoch starting at the log end still goes (Kafka's `truncateTo`):
    /// this replica led it but appended nothing before another leader took over, and left in
    /// place it would be the last fetched epoch of every fetch, diverging again each time.
    pub(crate) fn truncate_diverged(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset() {
            if self.epochs.truncate_from_end(self.log_end_offset()) {
                self.epochs.persist()?;
            }
            return Ok(());
        }
        self.truncate_to(offset)?;
        if self.epochs.truncate_from_end(self.log_end_offset()) {
            self.epochs.persist()?;
        }
        self.load_producer_state()
    }

    /// Empties the log and restarts it at `offset` (a follower so far behind that its leader no
    /// longer has where it stands).
    pub(crate) fn restart_from(&mut self, offset: i64) -> Result<(), LogError> {
        self.restart_at(offset)?;
        self.epochs = LeaderEpochCache::empty(&self.dir);
        self.epochs.persist()?;
        self.load_producer_state()
    }

    /// The log start moved up (retention): epochs before it are forgotten.
    pub(super) fn epochs_start_at(&mut self, log_start: i64) -> Result<(), LogError> {
        if self.epochs.truncate_from_start(log_start) {
            self.epochs.persist()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{batch_of, config, decode_offsets};

    fn leader_log(dir: &std::path::Path) -> Log {
        Log::open(dir, config(), 0).unwrap()
    }

    #[test]
    fn a_follower_keeps_the_leaders_offsets_and_epochs_byte_for_byte() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut leader = leader_log(a.path());
        leader.append(&mut batch_of(3, 0), 2, 0).unwrap();
        leader.append(&mut batch_of(2, 0), 5, 0).unwrap();
        let bytes = leader.read(0, 1 << 20, i64::MAX, true).unwrap();
        let mut follower = leader_log(b.path());
        follower.append_as_follower(&bytes, 0).unwrap();
        assert_eq!(follower.log_end_offset(), 5);
        assert_eq!(follower.read(0, 1 << 20, i64::MAX, true).unwrap(), bytes);
        let pairs: Vec<_> = follower
            .epoch_entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect();
        assert_eq!(pairs, [(2, 0), (5, 3)]);
        assert_eq!(follower.end_offset_for_epoch(2), (2, 3));
        assert!(follower.append_as_follower(&bytes, 0).is_err(), "below the log end");
    }

    #[test]
    fn truncation_to_a_divergence_point_drops_batches_and_their_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = leader_log(dir.path());
        log.append(&mut batch_of(3, 0), 1, 0).unwrap();
        log.append(&mut batch_of(3, 0), 2, 0).unwrap();
        log.truncate_diverged(3).unwrap();
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.latest_epoch(), Some(1));
        assert_eq!(
            decode_offsets(&log.read(0, 1 << 20, i64::MAX, true).unwrap()),
            [0, 1, 2]
        );
        drop(log);
        let log = leader_log(dir.path());
        assert_eq!(log.latest_epoch(), Some(1), "the file says so after a restart too");
    }

    #[test]
    fn an_empty_epoch_this_replica_led_goes_when_its_new_leader_says_the_log_diverged_at_its_end() {
        // Led epoch 1 from offset 3 but appended nothing before the leadership moved back (a
        // preferred election): the new leader knows no epoch 1, and answers epoch 0 ends at 3.
        let dir = tempfile::tempdir().unwrap();
        let mut log = leader_log(dir.path());
        log.append(&mut batch_of(3, 0), 0, 0).unwrap();
        log.assign_epoch(1, 3).unwrap();
        assert_eq!(log.latest_epoch(), Some(1));
        log.truncate_diverged(3).unwrap();
        assert_eq!((log.log_end_offset(), log.latest_epoch()), (3, Some(0)));
        drop(log);
        let log = leader_log(dir.path());
        assert_eq!(log.latest_epoch(), Some(0), "persisted");
    }

    #[test]
    fn a_missing_epoch_file_is_rebuilt_from_the_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = leader_log(dir.path());
        log.append(&mut batch_of(2, 0), 3, 0).unwrap();
        log.append(&mut batch_of(2, 0), 7, 0).unwrap();
        log.close().unwrap();
        std::fs::remove_file(dir.path().join(crate::log::leader_epoch::FILE_NAME)).unwrap();
        let log = leader_log(dir.path());
        let pairs: Vec<_> = log.epoch_entries().iter().map(|e| (e.epoch, e.start_offset)).collect();
        assert_eq!(pairs, [(3, 0), (7, 2)]);
    }

    #[test]
    fn control_batches_from_a_leader_are_accepted() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut leader = leader_log(a.path());
        leader.append(&mut batch_of(1, 0), 0, 0).unwrap();
        let mut bytes = bytes::BytesMut::from(&leader.read(0, 1 << 20, i64::MAX, true).unwrap()[..]);
        // Set the control bit (attributes bit 5) and fix the CRC, as a marker would carry.
        bytes[22] |= 1 << 5;
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut follower = leader_log(b.path());
        follower.append_as_follower(&bytes, 0).unwrap();
        assert_eq!(follower.log_end_offset(), 1);
    }
}
