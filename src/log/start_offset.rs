//! The log start offset: the first offset readers may see. Retention moves it to the first
//! segment left; DeleteRecords (on a leader) and the leader's log start (on a follower) move it
//! anywhere up to the high watermark, inside a segment if need be. Segments wholly below it
//! are deleted at once; the one it falls into stays, and reads from below the start offset
//! are refused (OFFSET_OUT_OF_RANGE) even though its first batches are still on disk.
//!
//! Owns: moving the start offset forward and what hangs on it (segments below, producer state,
//! the epoch cache, snapshots, the recovery point). May call: `segment`, `retention`'s peers in
//! `Log`. Must never: move it backwards (only a truncation or a restart does that) or past
//! the limit its caller gives (the high watermark).

use super::error::LogError;
use super::log::Log;

impl Log {
    /// At open: the start offset `log-start-offset-checkpoint` kept for this log, clamped to
    /// the log (a checkpoint past a cut tail is capped at the log end).
    pub(crate) fn restore_log_start(&mut self, checkpointed: i64) -> Result<(), LogError> {
        let start = checkpointed.clamp(self.segments[0].base_offset(), self.log_end_offset());
        if start > self.log_start_offset {
            self.log_start_offset = start;
            self.delete_segments_below_start()?;
            self.log_start_moved()?;
        }
        Ok(())
    }

    /// Kafka's `maybeIncrementLogStartOffset`: moves the start offset up to `new_start`, which
    /// may not pass `limit` (the high watermark). Returns whether it moved.
    pub(crate) fn advance_log_start(&mut self, new_start: i64, limit: i64) -> Result<bool, LogError> {
        if new_start > limit {
            return Err(LogError::OffsetOutOfRange {
                offset: new_start,
                log_start: self.log_start_offset,
                log_end: limit,
            });
        }
        if new_start <= self.log_start_offset {
            return Ok(false);
        }
        self.log_start_offset = new_start;
        let deleted = self.delete_segments_below_start()?;
        self.log_start_moved()?;
        tracing::info!(dir = %self.dir().display(), log_start = new_start, segments_deleted = deleted, "log start offset moved");
        Ok(true)
    }

    /// Deletes the segments that end at or below the start offset (never the active one).
    fn delete_segments_below_start(&mut self) -> Result<usize, LogError> {
        let below = self
            .segments
            .windows(2)
            .take_while(|pair| pair[1].base_offset() <= self.log_start_offset)
            .count();
        if below > 0 {
            self.dir_dirty = true;
            for segment in self.segments.drain(..below).collect::<Vec<_>>() {
                segment.delete()?;
            }
        }
        Ok(below)
    }

    /// What follows a move of the start offset: nothing below it is replayed, recovered or
    /// offered to a follower again.
    pub(super) fn log_start_moved(&mut self) -> Result<(), LogError> {
        let start = self.log_start_offset;
        self.recovery_point = self.recovery_point.max(start);
        self.producers.forget_below(start);
        self.epochs_start_at(start)?;
        self.prune_snapshots()
    }

    /// Whether this log's start offset lies above its first segment's base: the logs
    /// `log-start-offset-checkpoint` lists (Kafka lists only those).
    pub(crate) fn log_start_inside_segment(&self) -> bool {
        self.log_start_offset > self.segments[0].base_offset()
    }
}

#[cfg(test)]
mod tests {
    use crate::log::testutil::{append, batch_of, config, read_all};
    use crate::log::{Log, LogConfig, LogError};

    /// Four segments of two 2-record batches each: offsets 0..16.
    fn log_of_four_segments(dir: &std::path::Path) -> Log {
        let size = batch_of(2, 0).len() as u64;
        let config = LogConfig {
            segment_bytes: 2 * size,
            ..config()
        };
        let mut log = Log::open(dir, config, 0).unwrap();
        for i in 0..8 {
            append(&mut log, batch_of(2, i), 0);
        }
        assert_eq!(log.segment_count(), 4);
        log
    }

    #[test]
    fn moving_the_start_deletes_whole_segments_below_and_refuses_reads_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_of_four_segments(dir.path());
        assert!(log.advance_log_start(9, 16).unwrap());
        // Segment 0..4 and 4..8 go; 8..12 holds the start and stays.
        assert_eq!((log.log_start_offset(), log.segment_count()), (9, 2));
        assert!(matches!(
            log.read(8, 1 << 20, i64::MAX, true),
            Err(LogError::OffsetOutOfRange { log_start: 9, .. })
        ));
        assert_eq!(read_all(&log), (9..16).collect::<Vec<_>>());
        assert!(!log.advance_log_start(5, 16).unwrap(), "never backwards");
        assert!(log.advance_log_start(17, 16).is_err(), "never past the limit");
        assert!(log.log_start_inside_segment());
    }

    #[test]
    fn a_checkpointed_start_is_restored_and_clamped_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_of_four_segments(dir.path());
        log.restore_log_start(6).unwrap();
        assert_eq!((log.log_start_offset(), log.segment_count()), (6, 3));
        log.restore_log_start(1_000).unwrap();
        assert_eq!(log.log_start_offset(), 16, "capped at the log end");
    }

    #[test]
    fn truncating_below_the_start_pulls_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_of_four_segments(dir.path());
        log.advance_log_start(10, 16).unwrap();
        log.truncate_to(9).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (8, 8));
    }
}
