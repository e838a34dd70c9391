//! One partition's log: an ordered list of segments, the last one active.
//!
//! Owns: the partition directory, offset assignment, rolling, flushing and the recovery point.
//! May call: `batch`, `segment`, `recovery`, `retention`, std, tracing. Must never: decode
//! records on append or read, block on anything but its own files, or be used without a lock
//! (it is `Send`, not internally synchronised; callers hold it behind a `Mutex`).

use super::append_policy;
use super::batch::{self, BatchHeader};
pub(crate) use super::cleaning_progress::CleaningProgress;
pub(crate) use super::config::LogConfig;
use super::error::{IoContext, LogError};
use super::leader_epoch::LeaderEpochCache;
use super::producer_state::ProducerState;
use super::records::{self, BatchToSearch};
use super::recovery::{self, RecoveryStats};
use super::segment::{ReadLimits, Segment};
use super::transactions::{Checked, Origin};
use bytes::Bytes;
use std::fs::File;
use std::path::{Path, PathBuf};

/// What one `append` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppendInfo {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    /// Largest batch `maxTimestamp`, -1 if none.
    pub(crate) max_timestamp: i64,
    /// Last offset of the first batch holding `max_timestamp` (records are not decoded), -1 if
    /// none: Kafka's "shallow" offset of max timestamp.
    pub(crate) offset_of_max_timestamp: i64,
    pub(crate) record_count: u64,
    pub(crate) batch_count: u32,
    pub(crate) bytes: u64,
    /// A retry of a batch already in the log: nothing was written, the offsets are the original's.
    pub(crate) duplicate: bool,
    /// The leader's clock stamped into the batches of a LogAppendTime topic; -1 otherwise.
    pub(crate) log_append_time_ms: i64,
}

impl AppendInfo {
    pub(super) fn summarize(headers: &[BatchHeader], bytes: usize) -> AppendInfo {
        let mut info = AppendInfo {
            base_offset: headers[0].base_offset,
            last_offset: headers[headers.len() - 1].last_offset(),
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            record_count: 0,
            batch_count: headers.len() as u32,
            bytes: bytes as u64,
            duplicate: false,
            log_append_time_ms: -1,
        };
        for header in headers {
            if header.max_timestamp > info.max_timestamp {
                info.max_timestamp = header.max_timestamp;
                info.offset_of_max_timestamp = header.last_offset();
            }
            info.record_count += header.records_count as u64;
        }
        info
    }
}

/// Suffix of a partition directory that is being deleted.
pub(crate) const DELETED_SUFFIX: &str = "-delete";
/// A partition directory set aside rather than deleted (Kafka's stray logs): never loaded,
/// never removed by the broker.
pub(crate) const STRAY_SUFFIX: &str = "-stray";

/// Removes a directory renamed for deletion, logging (not failing) if it cannot.
pub(crate) fn remove_deleted_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove deleted partition directory");
    }
}

pub(super) fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}{:x}", std::process::id())
}

/// The fsyncs of a flush, to run without the log's lock (see `Log::begin_flush`).
#[derive(Debug)]
pub(crate) struct PendingFlush {
    files: Vec<(PathBuf, File)>,
    /// Everything below this offset is durable once the files are synced.
    pub(crate) upto: i64,
}

impl PendingFlush {
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        for (path, file) in &self.files {
            file.sync_data().at("fsync log", path)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct Log {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    /// Sorted by base offset, never empty; the last one is active.
    pub(super) segments: Vec<Segment>,
    /// Every offset below this is fsync'd.
    pub(super) recovery_point: i64,
    pub(super) unflushed_records: u64,
    /// None until the first timed call starts the flush clock.
    pub(super) last_flush_ms: Option<i64>,
    /// Latest wall clock a caller gave us (for `flush`, which takes none).
    pub(super) clock_ms: Option<i64>,
    /// A segment file was created or deleted since the last directory fsync.
    pub(super) dir_dirty: bool,
    pub(super) recovery_stats: RecoveryStats,
    /// Idempotent producers' recent batches, for deduplication and sequence checks.
    pub(super) producers: ProducerState,
    /// Which leader epoch started where (`leader-epoch-checkpoint`).
    pub(super) epochs: LeaderEpochCache,
    /// The first offset readers may see: the first segment's base, or above it once
    /// DeleteRecords (or a leader's) moved it into that segment (`log-start-offset-checkpoint`).
    pub(super) log_start_offset: i64,
    /// How far the log cleaner got and which tombstones it may drop (compacted logs only).
    pub(super) cleaning: CleaningProgress,
}

impl Log {
    /// Opens (creating if missing) the partition directory and recovers it; see `recovery`.
    pub(crate) fn open(dir: &Path, config: LogConfig, recovery_point: i64) -> Result<Log, LogError> {
        let loaded = recovery::load_segments(dir, recovery_point, config.index_interval_bytes)?;
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments: loaded.segments,
            recovery_point: 0,
            unflushed_records: 0,
            last_flush_ms: None,
            clock_ms: None,
            dir_dirty: loaded.stats.segments_deleted > 0,
            recovery_stats: loaded.stats,
            producers: ProducerState::default(),
            epochs: LeaderEpochCache::empty(dir),
            log_start_offset: 0,
            cleaning: CleaningProgress::default(),
        };
        log.log_start_offset = log.segments[0].base_offset();
        log.recovery_point = recovery_point.clamp(log.log_start_offset(), log.log_end_offset());
        log.load_producer_state()?;
        log.load_epochs()?;
        // One line per partition would flood the log at start; the replica manager sums them up.
        if loaded.stats.segments_scanned > 0 {
            let stats = loaded.stats;
            tracing::debug!(
                dir = %dir.display(),
                log_start = log.log_start_offset(),
                log_end = log.log_end_offset(),
                segments_scanned = stats.segments_scanned,
                batches = stats.batches_scanned,
                "log recovered"
            );
        }
        Ok(log)
    }

    /// Validates every batch, then assigns offsets from the log end, rolls if needed and
    /// writes them all with one write. See `batch::validate_batches` for what is checked.
    /// A producer's batches whose transaction need not be verified (tests).
    #[cfg(test)]
    pub(crate) fn append(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_from(
            batches,
            leader_epoch,
            now_ms,
            Origin::Client(super::TxnVerification::Off),
        )
    }

    /// `append` of batches from `origin`: a producer's (sequences, epochs, and a transaction
    /// started here only as its verification allows), or the broker's own coordinators'
    /// (records without sequences, and transaction markers).
    pub(crate) fn append_from(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: Origin,
    ) -> Result<AppendInfo, LogError> {
        self.observe_clock(now_ms);
        let mut headers = origin.validate(batches, self.config.max_message_bytes)?;
        append_policy::check(batches, &headers, &self.config, &self.dir, now_ms)?;
        let markers = match self.producer_checks(batches, &headers, origin)? {
            Checked::Duplicate(info) => return Ok(info),
            Checked::Append(markers) => markers,
        };
        let log_append_time = self.config.timestamps.log_append_time;
        if log_append_time {
            batch::stamp_log_append_time(batches, &mut headers, now_ms);
        }
        let offsets = offset_span(&headers)?;
        if batches.len() > i32::MAX as usize {
            return Err(LogError::MessageTooLarge {
                size: batches.len(),
                max: i32::MAX as u32,
            });
        }
        if self.should_roll(batches.len() as u64, offsets, now_ms) {
            self.roll()?;
        }
        let base_offset = self.log_end_offset();
        self.assign_epoch(leader_epoch, base_offset)?;
        let next_offset = batch::assign_offsets(batches, &mut headers, base_offset, leader_epoch);
        let interval = self.config.index_interval_bytes;
        self.active_mut().append(batches, &headers, interval, now_ms)?;
        debug_assert_eq!(self.log_end_offset(), next_offset);
        self.record_producers(&headers, &markers)?;
        let mut info = AppendInfo::summarize(&headers, batches.len());
        if log_append_time {
            info.log_append_time_ms = now_ms;
        }
        self.unflushed_records = self.unflushed_records.saturating_add(info.record_count);
        if self.unflushed_records >= self.config.flush_interval_messages || self.flush_timer_due(now_ms) {
            self.flush()?;
        }
        Ok(info)
    }

    /// Whole batches from the one holding `offset`, within `max_bytes` (but at least one batch
    /// if `min_one`), none whose last offset is >= `max_offset`. Data comes from one segment.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> Result<Bytes, LogError> {
        self.check_in_range(offset)?;
        if offset == self.log_end_offset() || offset >= max_offset {
            return Ok(Bytes::new());
        }
        let limits = ReadLimits {
            max_bytes,
            max_offset,
            min_one,
        };
        // More than one segment only across an empty segment or a gap.
        for segment in &self.segments[self.segment_for(offset)..] {
            if let Some((position, header)) = segment.find_batch(offset)? {
                return segment.read_batches(position, &header, &limits);
            }
        }
        Ok(Bytes::new())
    }

    fn check_in_range(&self, offset: i64) -> Result<(), LogError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            });
        }
        Ok(())
    }

    /// Index of the segment whose range holds `offset` (the first one if below all).
    pub(super) fn segment_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    pub(crate) fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub(crate) fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size_bytes).sum()
    }

    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub(crate) fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Where the cleaner stands on this log (for its checkpoints).
    pub(crate) fn cleaning_progress(&self) -> CleaningProgress {
        self.cleaning
    }

    /// At open: the cleaner's checkpointed progress, cut back to the recovered log.
    pub(crate) fn restore_cleaning(&mut self, mut progress: CleaningProgress) {
        progress.truncated_to(self.log_end_offset());
        self.cleaning = progress;
    }

    /// What the last `open` had to scan and cut.
    pub(crate) fn recovery_stats(&self) -> RecoveryStats {
        self.recovery_stats
    }

    /// The batch holding the earliest record with timestamp >= `timestamp` (searched with
    /// `records::first_at_or_after`, which needs no lock on the log).
    pub(crate) fn batch_for_timestamp(&self, timestamp: i64) -> Result<Option<(BatchToSearch, i64)>, LogError> {
        for segment in &self.segments {
            if segment.is_empty() || segment.max_timestamp() < timestamp {
                continue;
            }
            if let Some(found) = segment.batch_for_timestamp(timestamp)? {
                return Ok(Some((found, timestamp)));
            }
        }
        Ok(None)
    }

    /// The batch holding the first record with the log's largest timestamp (and that timestamp).
    pub(crate) fn batch_for_max_timestamp(&self) -> Result<Option<(BatchToSearch, i64)>, LogError> {
        let mut best: Option<&Segment> = None;
        for segment in self.segments.iter().filter(|s| !s.is_empty()) {
            if best.is_none_or(|b| segment.max_timestamp() > b.max_timestamp()) {
                best = Some(segment);
            }
        }
        match best {
            Some(segment) => Ok(segment
                .batch_for_timestamp(segment.max_timestamp())?
                .map(|found| (found, segment.max_timestamp()))),
            None => Ok(None),
        }
    }

    /// The earliest (offset, timestamp) of a record with timestamp >= `timestamp`.
    #[cfg(test)]
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        search(self.batch_for_timestamp(timestamp)?)
    }

    /// (offset, timestamp) of the first record holding the log's largest timestamp.
    #[cfg(test)]
    pub(crate) fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        search(self.batch_for_max_timestamp()?)
    }

    /// fsync of every segment written since the last flush (and the directory if segments
    /// came or went); the recovery point moves to the log end.
    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        self.snapshot_producers()?;
        for segment in &mut self.segments {
            segment.flush()?;
        }
        if self.dir_dirty {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .at("fsync dir", &self.dir)?;
            self.dir_dirty = false;
        }
        self.recovery_point = self.log_end_offset();
        self.unflushed_records = 0;
        self.last_flush_ms = self.clock_ms.or(self.last_flush_ms);
        Ok(())
    }

    /// Starts a flush whose slow part, fsyncing segment data, runs without this log's lock:
    /// producer snapshot, indexes and directory are made durable here (small writes), the
    /// segment files are handed back. `None` when there is nothing to flush.
    pub(crate) fn begin_flush(&mut self) -> Result<Option<PendingFlush>, LogError> {
        if self.recovery_point == self.log_end_offset() && !self.dir_dirty {
            return Ok(None);
        }
        self.snapshot_producers()?;
        let mut files = Vec::new();
        for segment in &mut self.segments {
            if let Some(f) = segment.detach_for_flush()? {
                files.push(f);
            }
        }
        if self.dir_dirty {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .at("fsync dir", &self.dir)?;
            self.dir_dirty = false;
        }
        Ok(Some(PendingFlush {
            files,
            upto: self.log_end_offset(),
        }))
    }

    /// Lets go of every segment's read mapping (see `Segment::release_read_map`).
    pub(crate) fn release_read_maps(&self) {
        self.segments.iter().for_each(Segment::release_read_map);
    }

    /// Ends a flush begun with `begin_flush`: after its fsyncs succeeded, everything below
    /// `upto` is durable; after they failed, the segments are marked to be flushed again.
    pub(crate) fn end_flush(&mut self, upto: i64, synced: bool) {
        if synced {
            self.recovery_point = self.recovery_point.max(upto);
            self.unflushed_records = 0;
            self.last_flush_ms = self.clock_ms.or(self.last_flush_ms);
        } else {
            self.segments.iter_mut().for_each(Segment::mark_dirty);
        }
    }

    /// Flushes if `flush_interval_ms` has passed since the last flush and there is anything
    /// to flush. Returns whether it flushed.
    pub(crate) fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        self.observe_clock(now_ms);
        if !self.flush_timer_due(now_ms) {
            return Ok(false);
        }
        if self.recovery_point == self.log_end_offset() && !self.dir_dirty {
            self.last_flush_ms = Some(now_ms);
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    fn flush_timer_due(&mut self, now_ms: i64) -> bool {
        let last = *self.last_flush_ms.get_or_insert(now_ms);
        now_ms.saturating_sub(last) >= self.config.flush_interval_ms
    }

    /// Rolls an idle, non-empty active segment once `segment_ms` has passed since its first
    /// append. Returns whether it rolled.
    pub(crate) fn roll_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        self.observe_clock(now_ms);
        self.active_mut().start_rolling_clock(now_ms);
        if self.active().is_empty() || !self.segment_ms_passed(now_ms) {
            return Ok(false);
        }
        self.roll()?;
        Ok(true)
    }

    pub(super) fn should_roll(&self, append_bytes: u64, offsets: i64, now_ms: i64) -> bool {
        let active = self.active();
        if active.is_empty() {
            // A new segment would have the same base offset; an oversized append goes in whole.
            return false;
        }
        let segment_bytes = self.config.segment_bytes.min(i32::MAX as u64);
        let relative_last = self.log_end_offset() + offsets - 1 - active.base_offset();
        active.size_bytes() + append_bytes > segment_bytes
            || self.segment_ms_passed(now_ms)
            || active.index_full()
            || relative_last > i64::from(i32::MAX)
    }

    fn segment_ms_passed(&self, now_ms: i64) -> bool {
        let since = self.active().rolling_since_ms();
        since.is_some_and(|t| now_ms.saturating_sub(t) > self.config.segment_ms)
    }

    /// Seals the active segment and starts a new one at the log end.
    pub(super) fn roll(&mut self) -> Result<(), LogError> {
        self.roll_at(self.log_end_offset())
    }

    /// Seals the active segment and starts a new one at `base_offset` (the log end, or past it
    /// for a leader's batch after a gap).
    pub(super) fn roll_at(&mut self, base_offset: i64) -> Result<(), LogError> {
        self.active_mut().seal()?;
        let segment = Segment::create(&self.dir, base_offset)?;
        self.segments.push(segment);
        self.dir_dirty = true;
        // Kafka snapshots producer state at every roll, bounding the replay after a crash.
        self.snapshot_producers()?;
        tracing::debug!(dir = %self.dir.display(), base_offset, "rolled new segment");
        Ok(())
    }

    /// Checks batches as `append` would (framing, size limit, CRC) without writing them; returns the `max.message.bytes` that
    /// applies, which a batch rewritten before its append must still respect.
    pub(crate) fn validate(&self, batches: &[u8]) -> Result<u32, LogError> {
        batch::validate_batches(batches, self.config.max_message_bytes).map(|_| self.config.max_message_bytes)
    }

    /// Forgets producers idle longer than `max_idle_ms`; returns how many.
    pub(crate) fn expire_producers(&mut self, now_ms: i64, max_idle_ms: i64) -> usize {
        self.producers.expire(now_ms, max_idle_ms)
    }

    /// The producer state, for DescribeProducers.
    pub(crate) fn producers(&self) -> &ProducerState {
        &self.producers
    }

    pub(crate) fn config(&self) -> &LogConfig {
        &self.config
    }

    pub(crate) fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Drops every batch holding an offset >= `offset`. Batches are never split: if `offset`
    /// falls inside a batch, that whole batch goes and the log end becomes its base offset.
    /// Below the first segment, the log is emptied and restarts at `offset`.
    #[allow(dead_code)] // Called by follower truncation, which the replication issue adds.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            });
        }
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset < self.segments[0].base_offset() {
            return self.restart_at(offset);
        }
        let keep = self.segment_for(offset);
        self.delete_segments_after(keep)?;
        let interval = self.config.index_interval_bytes;
        let segment = &mut self.segments[keep];
        segment.activate()?;
        if let Some((position, header)) = segment.find_batch(offset)? {
            segment.truncate_from(position, header.base_offset, interval)?;
        }
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
        // Whole batches go: the end may land below `offset`, and the start never passes it.
        self.log_start_offset = self.log_start_offset.min(self.log_end_offset());
        self.cleaning.truncated_to(self.log_end_offset());
        tracing::info!(dir = %self.dir.display(), offset, log_end = self.log_end_offset(), "log truncated");
        Ok(())
    }

    pub(super) fn restart_at(&mut self, offset: i64) -> Result<(), LogError> {
        self.delete_segments_after(0)?;
        let old = self.segments.pop().expect("one segment left");
        old.delete()?;
        self.segments.push(Segment::create(&self.dir, offset)?);
        self.dir_dirty = true;
        self.recovery_point = offset;
        self.log_start_offset = offset;
        self.cleaning.truncated_to(offset);
        Ok(())
    }

    /// Deletes segments after index `keep`, newest first.
    fn delete_segments_after(&mut self, keep: usize) -> Result<(), LogError> {
        while self.segments.len() > keep + 1 {
            let segment = self.segments.pop().expect("len > keep + 1");
            self.dir_dirty = true;
            segment.delete()?;
        }
        Ok(())
    }

    /// Flushes, seals the active segment (final time index entry, trimmed indexes). After it
    /// succeeds the recovery point to checkpoint is the log end offset read before the call.
    pub(crate) fn close(mut self) -> Result<(), LogError> {
        self.active_mut().seal()?;
        self.flush()
    }

    /// Removes the partition directory and everything in it.
    ///
    /// As Kafka does, the directory is first renamed to `<name>.<unique>-delete` (instant, and
    /// it no longer looks like a partition), then removed on a background thread: removing
    /// gigabytes of segments takes seconds that no request should wait for. A leftover of a
    /// crash during removal is cleaned up by `LogManager` at the next start.
    pub(crate) fn delete(self) -> Result<(), LogError> {
        let (dir, doomed) = self.close_and_rename(DELETED_SUFFIX)?;
        std::thread::Builder::new()
            .name("log-delete".into())
            .spawn(move || remove_deleted_dir(&doomed))
            .at("start deletion thread", &dir)?;
        Ok(())
    }

    /// Sets the log aside under a `-stray` name (not loaded again, not deleted); returns it.
    pub(crate) fn set_aside(self) -> Result<PathBuf, LogError> {
        Ok(self.close_and_rename(STRAY_SUFFIX)?.1)
    }

    /// Closes the log and renames its directory to `<name>.<unique><suffix>`, which no longer
    /// parses as a partition; returns (old, new) paths.
    fn close_and_rename(self, suffix: &str) -> Result<(PathBuf, PathBuf), LogError> {
        let dir = self.dir.clone();
        drop(self);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let renamed = dir.with_file_name(format!("{name}.{}{suffix}", unique_suffix()));
        std::fs::rename(&dir, &renamed).at("rename partition dir", &dir)?;
        Ok((dir, renamed))
    }

    pub(super) fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    pub(super) fn active_mut(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log always has a segment")
    }

    pub(super) fn observe_clock(&mut self, now_ms: i64) {
        self.clock_ms = Some(self.clock_ms.map_or(now_ms, |c| c.max(now_ms)));
    }

    /// The partition directory (`<log dir>/<topic>-<partition>`).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Looks into a batch found by `batch_for_timestamp` / `batch_for_max_timestamp`.
pub(crate) fn search(found: Option<(BatchToSearch, i64)>) -> Result<Option<(i64, i64)>, LogError> {
    match found {
        Some((batch, timestamp)) => records::first_at_or_after(&batch, timestamp),
        None => Ok(None),
    }
}

/// Offsets the batches will take; their sum must fit the relative offsets of one segment.
fn offset_span(headers: &[BatchHeader]) -> Result<i64, LogError> {
    let span: i64 = headers.iter().map(|h| i64::from(h.last_offset_delta) + 1).sum();
    if span > i64::from(i32::MAX) {
        return Err(LogError::InvalidRecord(format!(
            "{span} offsets in one append is too many"
        )));
    }
    Ok(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::validate_batches;
    use crate::log::testutil::{append, batch_of, config, decode_offsets, encode, files_with_suffix, records};
    use kafka_protocol::records::Compression;

    fn open(dir: &Path, config: LogConfig) -> Log {
        Log::open(dir, config, 0).unwrap()
    }

    #[test]
    fn append_assigns_consecutive_offsets_across_batches_and_crc_still_validates() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        let mut payload = batch_of(3, 100);
        payload.extend(batch_of(2, 200));
        payload.extend(encode(&records(4, 300, 10), Compression::Lz4));
        let info = log.append(&mut payload, 5, 0).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (0, 8));
        assert_eq!(
            (info.record_count, info.batch_count, info.bytes),
            (9, 3, payload.len() as u64)
        );
        assert_eq!((info.max_timestamp, info.offset_of_max_timestamp), (303, 8));
        assert_eq!(append(&mut log, batch_of(1, 400), 0).base_offset, 9);
        assert_eq!(log.log_end_offset(), 10);

        let bytes = log.read(0, 1 << 20, i64::MAX, false).unwrap();
        let headers = validate_batches(&bytes, u32::MAX).unwrap();
        assert!(headers
            .iter()
            .all(|h| h.partition_leader_epoch == 5 || h.base_offset == 9));
        assert_eq!(decode_offsets(&bytes), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn refused_append_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        let mut payload = batch_of(2, 1);
        let mut bad = batch_of(2, 1);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        payload.extend(bad);
        assert!(matches!(
            log.append(&mut payload, 0, 0),
            Err(LogError::CorruptMessage(_))
        ));
        assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));
    }

    #[test]
    fn fetch_inside_batch_returns_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        for i in 0..3 {
            append(&mut log, batch_of(5, i * 10), 0);
        }
        let bytes = log.read(7, 1 << 20, i64::MAX, false).unwrap();
        assert_eq!(decode_offsets(&bytes), (5..15).collect::<Vec<_>>());
    }

    #[test]
    fn read_respects_max_bytes_and_min_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        let size = batch_of(4, 0).len();
        for _ in 0..4 {
            append(&mut log, batch_of(4, 0), 0);
        }
        let two = log.read(0, 2 * size + size / 2, i64::MAX, false).unwrap();
        assert_eq!(decode_offsets(&two), (0..8).collect::<Vec<_>>());
        let one = log.read(4, size - 1, i64::MAX, true).unwrap();
        assert_eq!(decode_offsets(&one), (4..8).collect::<Vec<_>>());
        assert!(log.read(4, size - 1, i64::MAX, false).unwrap().is_empty());
        assert!(log.read(0, 0, i64::MAX, false).unwrap().is_empty());
    }

    #[test]
    fn read_never_returns_a_batch_reaching_max_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        append(&mut log, batch_of(5, 0), 0);
        append(&mut log, batch_of(5, 0), 0);
        let bytes = log.read(0, 1 << 20, 7, true).unwrap();
        assert_eq!(decode_offsets(&bytes), (0..5).collect::<Vec<_>>());
        assert!(log.read(5, 1 << 20, 7, true).unwrap().is_empty());
        assert!(log.read(7, 1 << 20, 7, true).unwrap().is_empty());
        assert_eq!(decode_offsets(&log.read(0, 1 << 20, 10, false).unwrap()).len(), 10);
    }

    #[test]
    fn read_beyond_end_is_out_of_range_and_at_end_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        assert!(log.read(0, 100, i64::MAX, true).unwrap().is_empty());
        append(&mut log, batch_of(3, 0), 0);
        assert!(log.read(3, 100, i64::MAX, true).unwrap().is_empty());
        for offset in [4, -1] {
            let err = log.read(offset, 100, i64::MAX, true).unwrap_err();
            assert!(
                matches!(
                    err,
                    LogError::OffsetOutOfRange {
                        log_start: 0,
                        log_end: 3,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn segment_rolls_by_bytes_and_reads_span_segments() {
        let dir = tempfile::tempdir().unwrap();
        let size = batch_of(2, 0).len() as u64;
        let mut log = open(
            dir.path(),
            LogConfig {
                segment_bytes: 3 * size,
                ..config()
            },
        );
        for i in 0..10 {
            append(&mut log, batch_of(2, i), 0);
        }
        assert_eq!(log.segment_count(), 4);
        assert_eq!(log.size_bytes(), 10 * size);
        let names: Vec<String> = files_with_suffix(dir.path(), ".log")
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = [0, 6, 12, 18].iter().map(|b| format!("{b:020}.log")).collect();
        assert_eq!(names, expected);
        assert_eq!(names[1], "00000000000000000006.log");
        for offset in 0..20 {
            let bytes = log.read(offset, 1 << 20, i64::MAX, false).unwrap();
            let offsets = decode_offsets(&bytes);
            // From the batch holding `offset` to the end of its segment, never across.
            let segment_end = if offset < 18 { (offset / 6 + 1) * 6 } else { 20 };
            assert_eq!(offsets[0], offset - offset % 2, "read at {offset}");
            assert_eq!(offsets.last(), Some(&(segment_end - 1)), "read at {offset}");
        }
    }

    #[test]
    fn index_lookup_finds_batch_among_many() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(
            dir.path(),
            LogConfig {
                index_interval_bytes: 150,
                ..config()
            },
        );
        for i in 0..300 {
            append(&mut log, batch_of(1 + i % 3, i as i64), 0);
        }
        let end = log.log_end_offset();
        assert!(log.active().tracker_index_entries() > 50);
        for offset in 0..end {
            let bytes = log.read(offset, 1, i64::MAX, true).unwrap();
            let offsets = decode_offsets(&bytes);
            assert!(offsets.contains(&offset), "read at {offset} gave {offsets:?}");
        }
    }

    #[test]
    fn offset_for_timestamp_and_max_timestamp_decode_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let size = batch_of(5, 0).len() as u64;
        let config = LogConfig {
            segment_bytes: 2 * size,
            index_interval_bytes: 1,
            ..config()
        };
        let mut log = open(dir.path(), config);
        assert_eq!(log.max_timestamp().unwrap(), None);
        append(&mut log, batch_of(5, 1_000), 0); // 0..5 ts 1000..1004
        append(&mut log, encode(&records(5, 2_000, 50), Compression::Gzip), 0); // 5..10
        append(&mut log, encode(&records(3, 3_000, 50), Compression::Lz4), 0); // 10..13
        append(&mut log, batch_of(2, 500), 0); // 13..15, older timestamps
        append(&mut log, batch_of(1, 3_002), 0); // 15, ties the max
        let cases = [
            (0, Some((0, 1_000))),
            (1_002, Some((2, 1_002))),
            (1_005, Some((5, 2_000))),
            (2_003, Some((8, 2_003))),
            (3_002, Some((12, 3_002))),
            (3_003, None),
        ];
        for (ts, expected) in cases {
            assert_eq!(log.offset_for_timestamp(ts).unwrap(), expected, "ts {ts}");
        }
        assert_eq!(log.max_timestamp().unwrap(), Some((12, 3_002)));
    }

    #[test]
    fn delete_takes_the_directory_away_at_once_and_removes_it_in_the_background() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("t-0");
        let mut log = open(&dir, config());
        append(&mut log, batch_of(3, 100), 0);
        log.delete().unwrap();
        assert!(!dir.exists());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_dir(parent.path()).unwrap().next().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "renamed directory was not removed"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn unlocked_flush_advances_the_recovery_point_only_to_what_it_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        append(&mut log, batch_of(3, 100), 0);
        let pending = log.begin_flush().unwrap().expect("something to flush");
        assert_eq!(pending.upto, 3);
        // Appends while the fsync runs are not covered by it.
        append(&mut log, batch_of(2, 200), 0);
        pending.sync().unwrap();
        log.end_flush(pending.upto, true);
        assert_eq!(log.recovery_point(), 3);
        let pending = log.begin_flush().unwrap().unwrap();
        log.end_flush(pending.upto, false);
        assert_eq!(log.recovery_point(), 3, "a failed sync moves nothing");
        let pending = log.begin_flush().unwrap().unwrap();
        assert_eq!(
            pending.files.len(),
            1,
            "the failed flush left the segment to sync again"
        );
        pending.sync().unwrap();
        log.end_flush(pending.upto, true);
        assert_eq!(log.recovery_point(), 5);
        assert!(log.begin_flush().unwrap().is_none());
    }

    #[test]
    fn truncate_to_drops_whole_batches_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let size = batch_of(5, 0).len() as u64;
        let mut log = open(
            dir.path(),
            LogConfig {
                segment_bytes: 2 * size,
                index_interval_bytes: 1,
                ..config()
            },
        );
        for i in 0..5 {
            append(&mut log, batch_of(5, i * 100), 0);
        }
        log.flush().unwrap();
        assert_eq!((log.segment_count(), log.log_end_offset()), (3, 25));
        log.truncate_to(12).unwrap(); // inside batch 10..15: it goes whole
        assert_eq!(
            (log.segment_count(), log.log_end_offset(), log.recovery_point()),
            (2, 10, 10)
        );
        assert_eq!(files_with_suffix(dir.path(), ".log").len(), 2);
        assert_eq!(log.max_timestamp().unwrap(), Some((9, 104)));
        assert_eq!(append(&mut log, batch_of(2, 7), 0).base_offset, 10);
        assert_eq!(
            decode_offsets(&log.read(10, 1 << 20, i64::MAX, false).unwrap()),
            vec![10, 11]
        );
        log.truncate_to(5).unwrap();
        assert_eq!(log.log_end_offset(), 5);
        log.truncate_to(100).unwrap();
        assert_eq!(log.log_end_offset(), 5);
        log.truncate_to(0).unwrap();
        assert_eq!((log.log_end_offset(), log.size_bytes(), log.segment_count()), (0, 0, 1));
        assert_eq!(append(&mut log, batch_of(1, 7), 0).base_offset, 0);
    }

    #[test]
    fn roll_if_due_rolls_idle_segment_after_segment_ms() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(
            dir.path(),
            LogConfig {
                segment_ms: 1_000,
                ..config()
            },
        );
        assert!(!log.roll_if_due(5_000).unwrap(), "an empty segment never rolls");
        append(&mut log, batch_of(1, 0), 10_000);
        assert!(!log.roll_if_due(11_000).unwrap());
        assert!(log.roll_if_due(11_001).unwrap());
        assert_eq!(log.segment_count(), 2);
        assert!(!log.roll_if_due(20_000).unwrap());
        // On append too: the next batch goes to a new segment once the first is too old.
        append(&mut log, batch_of(1, 0), 30_000);
        append(&mut log, batch_of(1, 0), 31_001);
        assert_eq!(log.segment_count(), 3);
    }

    #[test]
    fn flush_by_count_and_time_advances_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            flush_interval_messages: 5,
            flush_interval_ms: 1_000,
            ..config()
        };
        let mut log = open(dir.path(), config);
        append(&mut log, batch_of(3, 0), 0);
        assert_eq!(log.recovery_point(), 0);
        append(&mut log, batch_of(3, 0), 10);
        assert_eq!(log.recovery_point(), 6);
        append(&mut log, batch_of(1, 0), 20);
        assert!(!log.flush_if_due(500).unwrap());
        assert!(log.flush_if_due(1_020).unwrap());
        assert_eq!(log.recovery_point(), 7);
        assert!(!log.flush_if_due(5_000).unwrap(), "nothing left to flush");
    }

    #[test]
    fn update_config_applies_to_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        let payload = batch_of(3, 0);
        append(&mut log, payload.clone(), 0);
        log.update_config(LogConfig {
            max_message_bytes: payload.len() as u32 - 1,
            ..config()
        });
        let err = log.append(&mut payload.clone(), 0, 0).unwrap_err();
        assert!(matches!(err, LogError::MessageTooLarge { .. }), "{err}");
        assert_eq!(log.log_end_offset(), 3);
    }

    #[test]
    fn delete_removes_the_partition_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let mut log = open(&path, config());
        append(&mut log, batch_of(3, 0), 0);
        log.delete().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn log_can_move_between_threads_behind_a_mutex() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Log>();
    }
}
