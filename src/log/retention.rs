//! Retention: deletes whole old segments by time (`retention_ms`), then by size
//! (`retention_bytes`), oldest first, never the active one (a log whose every record expired
//! is rolled first, so its last segment can go too).
//!
//! Owns: the choice of segments to delete (a pure function) and the deletion. May call:
//! `log`, `segment`, tracing. Must never: cut a segment in part or touch the active segment.

use super::error::LogError;
use super::log::Log;

/// What retention looks at for one non-active segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentStat {
    pub(crate) size_bytes: u64,
    pub(crate) largest_timestamp_ms: i64,
}

/// How many of the oldest non-active segments (`stats`, oldest first) to delete. Kafka's rules:
/// by time while `now - largest timestamp > retention_ms`; then by size while the log without
/// the next segment would still be at or above `retention_bytes`.
pub(crate) fn deletable_prefix(
    stats: &[SegmentStat],
    total_bytes: u64,
    now_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
) -> usize {
    let mut n = 0;
    if retention_ms >= 0 {
        n = stats
            .iter()
            .take_while(|s| now_ms.saturating_sub(s.largest_timestamp_ms) > retention_ms)
            .count();
    }
    if retention_bytes < 0 {
        return n;
    }
    let limit = retention_bytes as u64;
    let mut remaining = total_bytes - stats[..n].iter().map(|s| s.size_bytes).sum::<u64>();
    while n < stats.len() && remaining >= limit + stats[n].size_bytes {
        remaining -= stats[n].size_bytes;
        n += 1;
    }
    n
}

impl Log {
    /// Deletes whole non-active segments past retention (time, then size) and advances the
    /// log start. Returns how many were deleted.
    pub(crate) fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.observe_clock(now_ms);
        if self.config.retention_ms < 0 && self.config.retention_bytes < 0 {
            return Ok(0);
        }
        self.roll_if_all_expired(now_ms)?;
        let candidates = &self.segments[..self.segments.len() - 1];
        let stats = candidates
            .iter()
            .map(|s| {
                Ok(SegmentStat {
                    size_bytes: s.size_bytes(),
                    largest_timestamp_ms: s.largest_timestamp_ms()?,
                })
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        let (retention_ms, retention_bytes) = (self.config.retention_ms, self.config.retention_bytes);
        let n = deletable_prefix(&stats, self.size_bytes(), now_ms, retention_ms, retention_bytes);
        self.delete_oldest(n)?;
        Ok(n)
    }

    /// When every record of the log, the active segment's included, is past `retention_ms`,
    /// rolls so the whole log can go (Kafka does the same): otherwise an idle partition would
    /// keep its expired records until `segment.ms` rolled it, days later.
    fn roll_if_all_expired(&mut self, now_ms: i64) -> Result<(), LogError> {
        let retention_ms = self.config.retention_ms;
        if retention_ms < 0 || self.active().is_empty() {
            return Ok(());
        }
        for segment in &self.segments {
            if now_ms.saturating_sub(segment.largest_timestamp_ms()?) <= retention_ms {
                return Ok(());
            }
        }
        self.roll()
    }

    fn delete_oldest(&mut self, n: usize) -> Result<(), LogError> {
        if n == 0 {
            return Ok(());
        }
        self.dir_dirty = true;
        for segment in self.segments.drain(..n).collect::<Vec<_>>() {
            segment.delete()?;
        }
        self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset());
        self.log_start_moved()?;
        let log_start = self.log_start_offset();
        tracing::info!(dir = %self.dir().display(), segments = n, log_start, "retention deleted segments");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(size_bytes: u64, largest_timestamp_ms: i64) -> SegmentStat {
        SegmentStat {
            size_bytes,
            largest_timestamp_ms,
        }
    }

    #[test]
    fn time_retention_stops_at_first_young_segment() {
        let stats = [stat(10, 100), stat(10, 900), stat(10, 200)];
        assert_eq!(deletable_prefix(&stats, 40, 1_000, 500, -1), 1);
        assert_eq!(deletable_prefix(&stats, 40, 1_000, -1, -1), 0);
    }

    #[test]
    fn size_retention_keeps_log_at_or_above_limit() {
        let stats = [stat(10, 0), stat(10, 0), stat(10, 0)];
        // total 40 (10 active): deleting one leaves 30 >= 25, two leave 20 < 25.
        assert_eq!(deletable_prefix(&stats, 40, 0, -1, 25), 1);
        assert_eq!(deletable_prefix(&stats, 40, 0, -1, 20), 2);
        assert_eq!(deletable_prefix(&stats, 40, 0, -1, 0), 3);
    }
}

#[cfg(test)]
mod log_tests {
    use crate::log::testutil::{append, batch_of, config, files_with_suffix};
    use crate::log::{Log, LogConfig, LogError};

    /// One batch of 2 records per segment, timestamps 1000, 2000, ... (5 segments).
    fn log_with_segments(dir: &std::path::Path, config: LogConfig) -> Log {
        let size = batch_of(2, 0).len() as u64;
        let mut log = Log::open(
            dir,
            LogConfig {
                segment_bytes: size,
                ..config
            },
            0,
        )
        .unwrap();
        for i in 1..=5 {
            append(&mut log, batch_of(2, i * 1_000), 0);
        }
        assert_eq!(log.segment_count(), 5);
        log
    }

    #[test]
    fn time_retention_deletes_only_old_whole_segments_and_advances_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_with_segments(
            dir.path(),
            LogConfig {
                retention_ms: 2_500,
                ..config()
            },
        );
        // Segment max timestamps 1001, 2001, 3001, 4001, 5001; now - 2500 = 2600.
        assert_eq!(log.enforce_retention(5_100).unwrap(), 2);
        assert_eq!((log.log_start_offset(), log.segment_count()), (4, 3));
        assert_eq!(files_with_suffix(dir.path(), ".log").len(), 3);
        assert!(matches!(
            log.read(0, 100, i64::MAX, true),
            Err(LogError::OffsetOutOfRange { log_start: 4, .. })
        ));
        // Once every record expired, the active segment is rolled and goes too (Kafka's rule),
        // leaving an empty log whose offsets continue where they were.
        assert_eq!(log.enforce_retention(1_000_000).unwrap(), 3);
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset(), log.segment_count()),
            (10, 10, 1)
        );
        assert_eq!(log.recovery_point(), 10);
    }

    #[test]
    fn size_retention_deletes_oldest_whole_segments() {
        let dir = tempfile::tempdir().unwrap();
        let size = batch_of(2, 0).len() as i64;
        let mut log = log_with_segments(
            dir.path(),
            LogConfig {
                retention_bytes: 2 * size + 1,
                ..config()
            },
        );
        assert_eq!(log.enforce_retention(0).unwrap(), 2);
        assert_eq!(log.size_bytes(), 3 * size as u64);
        assert_eq!(log.log_start_offset(), 4);
        assert_eq!(log.enforce_retention(0).unwrap(), 0);
    }
}
