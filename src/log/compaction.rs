//! Log compaction of one log, Kafka's `Cleaner`: map the latest offset of every key in the
//! dirty part of the log, then rewrite the cleanable segments keeping only what
//! `cleaned_batch` keeps, each group of small segments into one, and swap each cleaned segment
//! in for its group.
//!
//! The partition's lock is taken three times per group, each time briefly: to look at the log
//! and take second handles on its sealed segments (`sources`), and to swap a cleaned segment
//! in (`replace_cleaned`: renames and directory fsyncs, see `swap`), then once to note how far
//! the cleaning got. Reading the segments, mapping keys, filtering batches and writing the
//! `.cleaned` segment (the bulk of the work) happen with no lock held, on the cleaner's own
//! thread; produce and fetch go on meanwhile. A swap first checks that the segments it read
//! are still those of the log (same segment objects, same sizes, not active): a truncation,
//! retention, DeleteRecords or deletion meanwhile abandons the cleaning (its files are
//! deleted) and the next round starts over.
//!
//! Offsets are preserved (a cleaned log has gaps), the active segment is never cleaned, and
//! no key is mapped at or past the partition's last stable offset (`upper_bound`): a leader's
//! uncommitted tail may still be truncated, and an open transaction may still abort. Records
//! of aborted transactions are never mapped and are removed (`txn_cleaning` walks the
//! aborted transactions of the `.txnindex` files alongside the batches), and each cleaned
//! segment's `.txnindex` lists only the aborted transactions whose markers it keeps. May call:
//! `segment`, `scan`, `swap`, `cleaned_batch`, `txn_cleaning`, `offset_map`, `throttle`,
//! `records`. Must never: hold a partition's lock while reading or writing segment data, or
//! swap in a segment built from segments the log no longer has.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::batch::BatchHeader;
use super::cleaned_batch::{clean_batch, marker_says, Kept, Retention};
use super::config::CompactionConfig;
use super::error::LogError;
use super::index::{INDEX_MAX_BYTES, OFFSET_ENTRY_BYTES};
use super::log::Log;
use super::offset_map::OffsetMap;
use super::records::{walk_records, Detail};
use super::scan::{BatchScanner, Scanned};
use super::segment::{segment_path, Segment, SegmentSource};
use super::swap::{self, Step, CLEANED};
use super::throttle::Throttle;
use super::txn_cleaning::TxnWalk;
use super::txn_index::{AbortedTxn, TXN_INDEX_SUFFIX};

/// A log the cleaner may clean: the partition layer hands its logs over through this, so the
/// cleaner takes their locks and learns their high watermarks without knowing partitions.
pub(crate) trait CleanTarget: Send + Sync {
    /// (topic, partition), for metrics, checkpoints and log lines.
    fn name(&self) -> (String, i32);
    /// Runs `f` on the log under its lock; false if the log is gone (deleted).
    fn lock_log(&self, f: &mut dyn FnMut(&mut Log)) -> bool;
    /// The offset key mapping stops before: the last stable offset (below it every
    /// transaction is decided and every record replicated).
    fn upper_bound(&self) -> i64;
}

/// Runs `f` on the target's log under its lock; None if the log is gone.
pub(crate) fn with_log<T>(target: &dyn CleanTarget, f: impl FnOnce(&mut Log) -> T) -> Option<T> {
    let mut f = Some(f);
    let mut out = None;
    target.lock_log(&mut |log| {
        if let Some(f) = f.take() {
            out = Some(f(log));
        }
    });
    out
}

/// How dirty a compacted log is (Kafka's `LogToClean`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dirtiness {
    pub(crate) first_dirty: i64,
    pub(crate) first_uncleanable: i64,
    /// Bytes of the segments already cleaned.
    pub(crate) clean_bytes: u64,
    /// Bytes of the dirty segments the cleaner may take now.
    pub(crate) cleanable_bytes: u64,
    /// A record waited longer than max.compaction.lag.ms.
    pub(crate) needs_now: bool,
    pub(crate) config: CompactionConfig,
}

impl Dirtiness {
    pub(crate) fn total_bytes(&self) -> u64 {
        self.clean_bytes + self.cleanable_bytes
    }

    /// The share of the log that is dirty and cleanable (min.cleanable.dirty.ratio's measure).
    pub(crate) fn ratio(&self) -> f64 {
        match self.total_bytes() {
            0 => 0.0,
            total => self.cleanable_bytes as f64 / total as f64,
        }
    }

    /// Kafka's rule: enough dirt, or dirt that waited too long.
    pub(crate) fn should_clean(&self) -> bool {
        self.total_bytes() > 0
            && ((self.needs_now && self.cleanable_bytes > 0) || self.ratio() > self.config.min_cleanable_ratio)
    }
}

/// What a cleaning did.
#[derive(Debug, Clone, Default)]
pub(crate) struct CleanStats {
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) records_read: u64,
    pub(crate) records_kept: u64,
    pub(crate) segments_before: usize,
    pub(crate) segments_after: usize,
    /// The first offset the next cleaning starts mapping from.
    pub(crate) end_offset: i64,
    pub(crate) map_utilization: f64,
    pub(crate) elapsed: Duration,
    /// Time the swaps held (or waited for) the partition's lock: what produce and fetch may
    /// have waited on.
    pub(crate) swap_locked: Duration,
}

/// Why a cleaning stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CleanError {
    /// The log changed under it, went away, or the cleaner is stopping: nothing was lost, the
    /// next round starts over.
    #[error("cleaning abandoned: {0}")]
    Abandoned(&'static str),
    #[error(transparent)]
    Failed(#[from] LogError),
}

/// What a cleaning needs besides the log.
#[derive(Debug)]
pub(crate) struct CleanerIo<'a> {
    pub(crate) map: &'a mut OffsetMap,
    pub(crate) throttle: &'a Throttle,
    pub(crate) stop: &'a AtomicBool,
    /// Bytes of cleaned output gathered before each write (log.cleaner.io.buffer.size).
    pub(crate) write_chunk_bytes: usize,
    /// Tests stop a swap half way, as a crash would (the log in memory is then left as it was).
    pub(crate) swap_until: Step,
}

/// How a swap went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swapped {
    Done,
    /// The segments read are not the log's any more; the cleaned files were deleted.
    LogChanged,
    /// A test's crash: the files are left as the swap left them, the log in memory unchanged.
    Stopped,
}

/// One cleanable segment as the cleaner saw it, and where it ends.
#[derive(Debug)]
struct Source {
    segment: SegmentSource,
    next_base: i64,
}

/// A snapshot of the log taken under its lock: what the rest of the cleaning works from.
#[derive(Debug)]
struct Sources {
    dir: PathBuf,
    segments: Vec<Source>,
    segment_bytes: u64,
    index_interval_bytes: u32,
    producers_last: HashMap<i64, i64>,
    delete_retention_ms: i64,
    /// The aborted transactions overlapping the segments (from every `.txnindex` that lists
    /// them, the active segment's included).
    aborted: Vec<AbortedTxn>,
}

impl Sources {
    /// The aborted transactions that overlap [from, to): what a walk over that range tracks.
    fn aborted_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }
}

impl Log {
    /// How dirty this log is, if it is compacted (`upper_bound`: the high watermark).
    pub(crate) fn dirtiness(&self, upper_bound: i64, now_ms: i64) -> Result<Option<Dirtiness>, LogError> {
        let Some(config) = self.config.compaction else {
            return Ok(None);
        };
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        let first_dirty = self
            .cleaning
            .first_dirty
            .filter(|d| (start..=end).contains(d))
            .unwrap_or(start);
        let active_base = self.active().base_offset();
        let mut uncleanable = upper_bound.min(active_base);
        let dirty = &self.segments[self.segment_for(first_dirty)..self.segments.len() - 1];
        if config.min_compaction_lag_ms > 0 {
            for segment in dirty {
                if segment.largest_timestamp_ms()? > now_ms.saturating_sub(config.min_compaction_lag_ms) {
                    uncleanable = uncleanable.min(segment.base_offset());
                    break;
                }
            }
        }
        let first_uncleanable = uncleanable.max(first_dirty);
        let uncleanable_base = self.segments[self.segment_for(first_uncleanable)]
            .base_offset()
            .min(active_base);
        let sizes = |range: &dyn Fn(&Segment, i64) -> bool| -> u64 {
            let nexts = self.segments.iter().skip(1).map(Segment::base_offset).chain([i64::MAX]);
            self.segments
                .iter()
                .zip(nexts)
                .filter(|(s, next)| range(s, *next))
                .map(|(s, _)| s.size_bytes())
                .sum()
        };
        let clean_bytes = sizes(&|s, _| s.base_offset() < first_dirty);
        let cleanable_bytes = sizes(&|s, next| next > first_dirty && s.base_offset() < uncleanable_base);
        let needs_now = config.max_compaction_lag_ms < i64::MAX && {
            let deadline = now_ms.saturating_sub(config.max_compaction_lag_ms);
            let mut late = false;
            for segment in dirty {
                if segment
                    .first_header()?
                    .is_some_and(|h| h.max_timestamp > 0 && h.max_timestamp < deadline)
                {
                    late = true;
                    break;
                }
            }
            late
        };
        Ok(Some(Dirtiness {
            first_dirty,
            first_uncleanable,
            clean_bytes,
            cleanable_bytes,
            needs_now,
            config,
        }))
    }

    /// Second handles on the sealed segments below `first_uncleanable`, and the facts the
    /// cleaning needs, taken under the lock.
    fn clean_sources(&self, first_uncleanable: i64) -> Result<Sources, LogError> {
        let config = self.config.compaction.unwrap_or_default();
        let mut segments = Vec::new();
        let last = self.segments.len() - 1;
        for (i, segment) in self.segments[..last].iter().enumerate() {
            if segment.base_offset() >= first_uncleanable {
                break;
            }
            segments.push(Source {
                segment: segment.source()?,
                next_base: self.segments[i + 1].base_offset(),
            });
        }
        let aborted = match (segments.first(), segments.last()) {
            (Some(first), Some(last)) => self.aborted_transactions(first.segment.base_offset, last.next_base),
            _ => Vec::new(),
        };
        Ok(Sources {
            dir: self.dir().to_path_buf(),
            segments,
            segment_bytes: self.config.segment_bytes.min(i32::MAX as u64),
            index_interval_bytes: self.config.index_interval_bytes,
            producers_last: self.producers.last_offsets(),
            delete_retention_ms: config.delete_retention_ms,
            aborted,
        })
    }

    /// Swaps the segment cleaned into `<base>.*.cleaned` in for the segments `group` names (ids
    /// and sizes as the cleaner read them), unless they are no longer exactly those, sealed,
    /// in a row: the log changed, and the cleaned files are deleted.
    fn replace_cleaned(&mut self, base: i64, group: &[(u64, u64)], until: Step) -> Result<Swapped, LogError> {
        let dir = self.dir().to_path_buf();
        let first = self.segments.iter().position(|s| s.id() == group[0].0);
        let unchanged = first.is_some_and(|first| {
            first + group.len() < self.segments.len()
                && group
                    .iter()
                    .zip(&self.segments[first..])
                    .all(|(&(id, size), s)| s.id() == id && s.size_bytes() == size)
        });
        let Some(first) = first.filter(|_| unchanged) else {
            swap::discard(&dir, base)?;
            return Ok(Swapped::LogChanged);
        };
        let replaced: Vec<i64> = self.segments[first + 1..first + group.len()]
            .iter()
            .map(Segment::base_offset)
            .collect();
        if let Err(e) = swap::install_until(&dir, base, &replaced, until) {
            let why = if e.committed {
                "failed after its commit point; the next start finishes it"
            } else {
                "failed and was undone"
            };
            tracing::error!(dir = %dir.display(), base, error = %e.error, "segment swap {why}");
            return Err(e.error);
        }
        if until != Step::Deleted {
            return Ok(Swapped::Stopped);
        }
        let next_base = self.segments[first + group.len()].base_offset();
        let mut cleaned = Segment::open(&dir, base)?;
        cleaned.set_next_offset(next_base);
        cleaned.seal()?;
        self.segments.splice(first..first + group.len(), [cleaned]);
        self.dir_dirty = true;
        Ok(Swapped::Done)
    }

    /// Whether every segment the cleaner read is still in the log as it read it.
    fn still_has(&self, sources: &Sources) -> bool {
        sources.segments.iter().all(|source| {
            self.segments
                .iter()
                .any(|s| s.id() == source.segment.id && s.size_bytes() == source.segment.size_bytes)
        })
    }

    /// A cleaning covered the log up to `end_offset`.
    fn cleaning_done(&mut self, end_offset: i64) {
        self.cleaning.cleaned(end_offset);
    }
}

/// Cleans the target's log once, from what `dirtiness` found.
pub(crate) fn clean(
    target: &dyn CleanTarget,
    dirtiness: &Dirtiness,
    io: &mut CleanerIo<'_>,
    now_ms: i64,
) -> Result<CleanStats, CleanError> {
    let started = Instant::now();
    let sources = with_log(target, |log| log.clean_sources(dirtiness.first_uncleanable))
        .ok_or(CleanError::Abandoned("the log is gone"))??;
    let mut stats = CleanStats {
        segments_before: sources.segments.len(),
        ..CleanStats::default()
    };
    let outcome = clean_sources(target, &sources, dirtiness, io, &mut stats, now_ms);
    io.map.clear();
    match outcome {
        // A read failing because the log changed under it (a follower's truncation shrinks a
        // segment in place) is not a broken log.
        Err(CleanError::Failed(e)) if !with_log(target, |log| log.still_has(&sources)).unwrap_or(false) => {
            tracing::debug!(error = %e, "cleaning read a segment that changed under it");
            Err(CleanError::Abandoned("the log changed during the cleaning"))
        }
        Err(e) => Err(e),
        Ok(()) => {
            stats.elapsed = started.elapsed();
            Ok(stats)
        }
    }
}

/// The cleaning proper, from the snapshot `sources`.
fn clean_sources(
    target: &dyn CleanTarget,
    sources: &Sources,
    dirtiness: &Dirtiness,
    io: &mut CleanerIo<'_>,
    stats: &mut CleanStats,
    now_ms: i64,
) -> Result<(), CleanError> {
    io.map.clear();
    // What lies below the dirty part was weighed by earlier cleanings: a record there without a
    // later one of its key stays, a tombstone there goes once it is due.
    io.map.update_latest_offset(dirtiness.first_dirty - 1);
    map_keys(sources, dirtiness, io, stats)?;
    let end_offset = (io.map.latest_offset() + 1).max(dirtiness.first_dirty);
    stats.end_offset = end_offset;
    stats.map_utilization = io.map.utilization();
    let retention = Retention {
        map: io.map,
        now_ms,
        delete_retention_ms: sources.delete_retention_ms,
        producers_last: &sources.producers_last,
        round_end: dirtiness.first_uncleanable,
    };
    let cleanable: Vec<&Source> = sources
        .segments
        .iter()
        .take_while(|s| s.segment.base_offset < end_offset)
        .collect();
    // One walk over the transactions of the whole round, as Kafka's: a transaction whose
    // batches lie in one group and whose marker in the next is seen whole.
    let mut txns = TxnWalk::new(match cleanable.last() {
        Some(last) => sources.aborted_in(sources.segments[0].segment.base_offset, last.next_base),
        None => Vec::new(),
    });
    for group in groups(&cleanable, sources.segment_bytes, dirtiness.first_uncleanable) {
        let base = write_cleaned(sources, &group, &retention, &mut txns, io, stats)?;
        let ids: Vec<(u64, u64)> = group.iter().map(|s| (s.segment.id, s.segment.size_bytes)).collect();
        let swap_started = Instant::now();
        let swapped = with_log(target, |log| log.replace_cleaned(base, &ids, io.swap_until));
        stats.swap_locked += swap_started.elapsed();
        match swapped {
            Some(Ok(Swapped::Done)) => stats.segments_after += 1,
            Some(Ok(Swapped::LogChanged)) => return Err(CleanError::Abandoned("the log changed during the cleaning")),
            Some(Ok(Swapped::Stopped)) => return Err(CleanError::Abandoned("stopped half way (a test's crash)")),
            Some(Err(e)) => return Err(e.into()),
            None => {
                discard_quietly(sources, base);
                return Err(CleanError::Abandoned("the log is gone"));
            }
        }
    }
    stats.segments_after += sources.segments.len() - cleanable.len();
    with_log(target, |log| log.cleaning_done(end_offset)).ok_or(CleanError::Abandoned("the log is gone"))
}

fn discard_quietly(sources: &Sources, base: i64) {
    if let Err(e) = swap::discard(&sources.dir, base) {
        tracing::warn!(dir = %sources.dir.display(), base, error = %e, "could not delete an abandoned cleaned segment");
    }
}

/// Kafka's `buildOffsetMap`: the latest offset of every key in [first dirty, first
/// uncleanable), segment by segment until the map is full; aborted transactions' keys and
/// markers are not mapped.
fn map_keys(
    sources: &Sources,
    d: &Dirtiness,
    io: &mut CleanerIo<'_>,
    stats: &mut CleanStats,
) -> Result<(), CleanError> {
    let (from, to) = (d.first_dirty, d.first_uncleanable);
    let mut txns = TxnWalk::new(sources.aborted_in(from, to));
    for source in sources.segments.iter().filter(|s| s.next_base > from) {
        let mut scanner = scanner(&source.segment);
        loop {
            check_stop(io)?;
            let (position, header) = match scanner.next_batch()? {
                Scanned::End => break,
                Scanned::Invalid { position, reason } => return Err(corrupt(&source.segment, position, reason).into()),
                Scanned::Batch { position, header } => (position, header),
            };
            if header.base_offset >= to {
                return Ok(());
            }
            let bytes = scanner.batch_bytes(position, &header)?;
            stats.bytes_read += bytes.len() as u64;
            throttle(io, bytes.len() as u64)?;
            if header.last_offset() < from {
                continue;
            }
            let mapped = if header.is_control() {
                txns.on_marker(&header, marker_says(&header, bytes).unwrap_or(None));
                true
            } else {
                txns.on_batch(&header) || map_batch(&header, bytes, from, to, io.map)
            };
            if !mapped {
                return Ok(());
            }
            io.map.update_latest_offset(header.last_offset().min(to - 1));
        }
        io.map.update_latest_offset(source.next_base.min(to) - 1);
    }
    Ok(())
}

/// Puts a batch's keys in the map; false once the map is full (mapping stops there). A batch
/// whose records do not read maps nothing: its records are kept as they are.
fn map_batch(header: &BatchHeader, bytes: &[u8], from: i64, to: i64, map: &mut OffsetMap) -> bool {
    let mut full = false;
    let walked = walk_records(header, bytes, Detail::Keys, |record| {
        let offset = header.base_offset + record.offset_delta;
        if let Some(key) = record.key.filter(|_| (from..to).contains(&offset)) {
            full = !map.put(key, offset);
        }
        !full
    });
    if let Err(e) = walked {
        tracing::warn!(base_offset = header.base_offset, error = %e, "records that do not read are not mapped");
    }
    !full
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose data fit `segment.bytes`, whose
/// index entries fit one index, and whose offsets fit one segment's relative offsets.
fn groups<'a>(segments: &[&'a Source], segment_bytes: u64, first_uncleanable: i64) -> Vec<Vec<&'a Source>> {
    let index_max = (INDEX_MAX_BYTES / OFFSET_ENTRY_BYTES) as u64;
    let mut out: Vec<Vec<&Source>> = Vec::new();
    let mut rest = segments;
    while let Some((first, tail)) = rest.split_first() {
        let mut group = vec![*first];
        let (mut bytes, mut entries) = (first.segment.size_bytes, first.segment.index_entries as u64);
        rest = tail;
        while let Some((next, tail)) = rest.split_first() {
            let last_offset = next.next_base.min(first_uncleanable) - 1;
            let fits = bytes + next.segment.size_bytes <= segment_bytes
                && entries + next.segment.index_entries as u64 <= index_max
                && (next.segment.size_bytes == 0 || last_offset - first.segment.base_offset <= i64::from(i32::MAX));
            if !fits {
                break;
            }
            bytes += next.segment.size_bytes;
            entries += next.segment.index_entries as u64;
            group.push(*next);
            rest = tail;
        }
        out.push(group);
    }
    out
}

/// Cleans a group into `<base>.*.cleaned` (sealed and fsync'd, with the group's last
/// modification time); returns its base offset.
fn write_cleaned(
    sources: &Sources,
    group: &[&Source],
    retention: &Retention<'_>,
    txns: &mut TxnWalk,
    io: &CleanerIo<'_>,
    stats: &mut CleanStats,
) -> Result<i64, CleanError> {
    let base = group[0].segment.base_offset;
    let mut cleaned = Segment::create_named(&sources.dir, base, CLEANED)?;
    let written = (|| {
        let mut out = Output::default();
        for source in group {
            let mut walk = SegmentWalk {
                cleaned: &mut cleaned,
                out: &mut out,
                txns,
            };
            clean_segment(source, retention, io, stats, &mut walk, sources.index_interval_bytes)?;
        }
        // Kafka's rule: an abort whose batches are all gone leaves the index with its marker's
        // first cleaning; one whose batches (or emptied headers) stay is listed by the group
        // that holds its marker.
        for aborted in txns.take_index() {
            cleaned.txn_index_mut().append(aborted)?;
        }
        if segment_path(&sources.dir, base, TXN_INDEX_SUFFIX).exists() {
            cleaned.txn_index_mut().materialize()?;
        }
        stats.bytes_written += out.write(&mut cleaned, sources.index_interval_bytes)?;
        cleaned.seal()?;
        cleaned.flush()?;
        if let Some(modified) = group.iter().rev().find_map(|s| s.segment.modified) {
            cleaned.set_modified(modified)?;
        }
        Ok::<(), CleanError>(())
    })();
    drop(cleaned);
    if let Err(e) = written {
        discard_quietly(sources, base);
        return Err(e);
    }
    Ok(base)
}

/// Cleaned batches gathered before one write.
#[derive(Debug, Default)]
struct Output {
    bytes: Vec<u8>,
    headers: Vec<BatchHeader>,
}

impl Output {
    fn push(&mut self, batch: &[u8], header: BatchHeader) {
        self.bytes.extend_from_slice(batch);
        self.headers.push(header);
    }

    fn write(&mut self, segment: &mut Segment, index_interval_bytes: u32) -> Result<u64, LogError> {
        if self.headers.is_empty() {
            return Ok(0);
        }
        let n = self.bytes.len() as u64;
        segment.append(&self.bytes, &self.headers, index_interval_bytes, 0)?;
        self.bytes.clear();
        self.headers.clear();
        Ok(n)
    }
}

/// Where one group's cleaning writes, and its walk over the group's transactions.
struct SegmentWalk<'a> {
    cleaned: &'a mut Segment,
    out: &'a mut Output,
    txns: &'a mut TxnWalk,
}

/// One source segment's batches, filtered into the cleaned segment.
fn clean_segment(
    source: &Source,
    retention: &Retention<'_>,
    io: &CleanerIo<'_>,
    stats: &mut CleanStats,
    walk: &mut SegmentWalk<'_>,
    index_interval_bytes: u32,
) -> Result<(), CleanError> {
    let SegmentWalk { cleaned, out, txns } = walk;
    let mut scanner = scanner(&source.segment);
    loop {
        check_stop(io)?;
        let (position, header) = match scanner.next_batch()? {
            Scanned::End => return Ok(()),
            Scanned::Invalid { position, reason } => return Err(corrupt(&source.segment, position, reason).into()),
            Scanned::Batch { position, header } => (position, header),
        };
        let bytes = scanner.batch_bytes(position, &header)?;
        stats.bytes_read += bytes.len() as u64;
        let batch = clean_batch(&header, bytes, retention, txns)?;
        stats.records_read += batch.records_read;
        stats.records_kept += batch.records_kept;
        match batch.kept {
            Kept::Whole => out.push(bytes, header),
            Kept::Nothing => {}
            Kept::Rebuilt(rebuilt) => {
                let header = BatchHeader::parse(&rebuilt)?;
                out.push(&rebuilt, header);
            }
        }
        throttle(io, bytes.len() as u64)?;
        if out.bytes.len() >= io.write_chunk_bytes {
            let written = out.write(cleaned, index_interval_bytes)?;
            stats.bytes_written += written;
            throttle(io, written)?;
        }
    }
}

fn scanner(source: &SegmentSource) -> BatchScanner<'_> {
    BatchScanner::new(&source.log, &source.log_path, 0, source.size_bytes, true)
}

fn corrupt(source: &SegmentSource, position: u64, reason: String) -> LogError {
    LogError::CorruptLog {
        path: source.log_path.clone(),
        position,
        reason,
    }
}

fn check_stop(io: &CleanerIo<'_>) -> Result<(), CleanError> {
    if io.stop.load(Ordering::Acquire) {
        return Err(CleanError::Abandoned("the cleaner is stopping"));
    }
    Ok(())
}

/// Sleeps as long as the throttle says, a second at a time so a stop is noticed.
fn throttle(io: &CleanerIo<'_>, bytes: u64) -> Result<(), CleanError> {
    let Some(mut sleep) = io.throttle.account(bytes) else {
        return Ok(());
    };
    while !sleep.is_zero() {
        check_stop(io)?;
        let step = sleep.min(Duration::from_secs(1));
        std::thread::sleep(step);
        sleep -= step;
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests/compaction.rs"]
mod tests;

#[cfg(test)]
#[path = "tests/compaction_txn.rs"]
mod txn_tests;
