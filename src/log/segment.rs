//! One segment: a `.log` file of whole batches from `base_offset` on, with its `.index`,
//! `.timeindex` and, once a transaction aborted in it, `.txnindex`.
//!
//! Owns: the three files of one segment and the running facts derived from its batches (next
//! offset, max timestamp). May call: `batch`, `scan`, `index`, `time_index`, std; nothing
//! that reads records (a timestamp lookup hands its batch to `records`). Must never: decide
//! when to roll, flush or delete (that is `Log`'s job), or write anywhere but at its own end.

use super::batch::{BatchHeader, HEADER_BYTES};
use super::error::{IoContext, LogError};
use super::index::{OffsetIndex, INDEX_MAX_BYTES};
use super::read_map::ReadMap;
use super::records::BatchToSearch;
use super::scan::{BatchScanner, Scanned};
use super::time_index::TimeIndex;
use super::txn_index::{TxnIndex, TXN_INDEX_SUFFIX};
use bytes::{Bytes, BytesMut};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// `<dir>/<20-digit base offset><suffix>`, Kafka's naming.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// The bounds of one read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadLimits {
    pub(crate) max_bytes: usize,
    /// Exclusive: no batch whose last offset is >= this is returned.
    pub(crate) max_offset: i64,
    pub(crate) min_one: bool,
}

/// What a full scan found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) batches: u64,
    pub(crate) truncated: Option<Truncation>,
}

/// Where and why a scan cut the file.
#[derive(Debug)]
pub(crate) struct Truncation {
    pub(crate) position: u64,
    pub(crate) bytes: u64,
    pub(crate) reason: String,
}

/// The indexes and the running facts they are built from. Kept apart from the `.log` file so
/// a scan can borrow the file while these change.
#[derive(Debug)]
struct Tracker {
    base_offset: i64,
    index: OffsetIndex,
    time_index: TimeIndex,
    next_offset: i64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl Tracker {
    /// Kafka's per-batch rule: the running max timestamp first, then an index entry (and a time
    /// index entry if the max grew) when more than `index_interval_bytes` were written since
    /// the last indexed batch.
    fn observe(&mut self, position: u64, header: &BatchHeader, index_interval_bytes: u32) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        let last_indexed = self.index.last_entry().map_or(0, |(_, p)| p);
        if position - last_indexed > u64::from(index_interval_bytes) {
            self.index.append(header.last_offset(), position);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, false);
        }
        self.next_offset = header.next_offset();
    }

    /// A batch found on disk must start at or after the previous one's end and stay within
    /// what an index entry can express.
    fn check_follows(&self, header: &BatchHeader) -> Result<(), String> {
        if header.base_offset < self.next_offset {
            return Err(format!(
                "batch base offset {} is below the expected {}",
                header.base_offset, self.next_offset
            ));
        }
        if header.last_offset() - self.base_offset > i64::from(i32::MAX) {
            return Err(format!(
                "batch last offset {} is too far from the segment base",
                header.last_offset()
            ));
        }
        Ok(())
    }

    /// Starting facts from the indexes alone.
    fn load_from_indexes(&mut self) {
        self.next_offset = self.index.last_entry().map_or(self.base_offset, |(o, _)| o + 1);
        let (ts, offset) = self.time_index.last_entry().unwrap_or((-1, -1));
        self.max_timestamp = ts;
        self.offset_of_max_timestamp = offset;
    }

    fn clear(&mut self) {
        self.index.clear();
        self.time_index.clear();
        self.load_from_indexes();
    }
}

/// Every segment object gets its own id: the cleaner checks, before it swaps a cleaned segment
/// in, that the segments it read are still the very ones in the log.
static NEXT_SEGMENT_ID: AtomicU64 = AtomicU64::new(1);

/// What the log cleaner reads of a sealed segment, without the log's lock: a second handle on
/// its `.log` (which stays readable if the segment is deleted meanwhile) and its facts.
#[derive(Debug)]
pub(crate) struct SegmentSource {
    pub(crate) id: u64,
    pub(crate) base_offset: i64,
    pub(crate) size_bytes: u64,
    pub(crate) log: File,
    pub(crate) log_path: PathBuf,
    pub(crate) index_entries: usize,
    pub(crate) modified: Option<std::time::SystemTime>,
}

#[derive(Debug)]
pub(crate) struct Segment {
    id: u64,
    dir: PathBuf,
    base_offset: i64,
    log_path: PathBuf,
    log: File,
    size_bytes: u64,
    /// What fetches read through, without copying.
    read_map: ReadMap,
    tracker: Tracker,
    /// The transactions whose ABORT marker is in this segment.
    txn_index: TxnIndex,
    /// Wall clock of the first append into this segment (drives `segment_ms`).
    rolling_since_ms: Option<i64>,
    /// Written since the last fsync.
    dirty: bool,
    /// Indexes trimmed and final; set back to false by `activate`.
    sealed: bool,
}

impl Segment {
    /// Creates an empty active segment (emptying any leftover files of that name).
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        Self::create_named(dir, base_offset, "")
    }

    /// Creates an empty segment whose three files carry `extra` after their usual names (the
    /// cleaner's `.cleaned` segment, renamed into place by `swap`).
    pub(crate) fn create_named(dir: &Path, base_offset: i64, extra: &str) -> Result<Segment, LogError> {
        let named = |suffix: &str| segment_path(dir, base_offset, &format!("{suffix}{extra}"));
        let log_path = named(LOG_SUFFIX);
        let log = open_log(&log_path, true)?;
        let index = OffsetIndex::create(&named(INDEX_SUFFIX), base_offset, INDEX_MAX_BYTES)?;
        let time_index = TimeIndex::create(&named(TIME_INDEX_SUFFIX), base_offset, INDEX_MAX_BYTES)?;
        let txn_index = TxnIndex::create_named(dir, base_offset, extra)?;
        Ok(Self::assemble(
            dir,
            base_offset,
            log_path,
            log,
            0,
            (index, time_index, txn_index),
        ))
    }

    /// Opens an existing segment without reading its `.log`. Its facts come from the indexes
    /// and are only a starting point until `restore_tail` or `recover` has run.
    pub(crate) fn open(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
        let log = open_log(&log_path, false)?;
        let size_bytes = log.metadata().at("stat log", &log_path)?.len();
        let index = OffsetIndex::open(&segment_path(dir, base_offset, INDEX_SUFFIX), base_offset)?;
        let time_index = TimeIndex::open(&segment_path(dir, base_offset, TIME_INDEX_SUFFIX), base_offset)?;
        let txn_index = TxnIndex::open(dir, base_offset)?;
        let indexes = (index, time_index, txn_index);
        let mut segment = Self::assemble(dir, base_offset, log_path, log, size_bytes, indexes);
        segment.tracker.load_from_indexes();
        segment.dirty = false;
        Ok(segment)
    }

    fn assemble(
        dir: &Path,
        base_offset: i64,
        log_path: PathBuf,
        log: File,
        size_bytes: u64,
        (index, time_index, txn_index): (OffsetIndex, TimeIndex, TxnIndex),
    ) -> Segment {
        let tracker = Tracker {
            base_offset,
            index,
            time_index,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
        };
        Segment {
            id: NEXT_SEGMENT_ID.fetch_add(1, Ordering::Relaxed),
            dir: dir.to_path_buf(),
            base_offset,
            log_path,
            log,
            size_bytes,
            read_map: ReadMap::default(),
            tracker,
            txn_index,
            rolling_since_ms: None,
            dirty: true,
            sealed: false,
        }
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// A second handle on this (sealed) segment for the cleaner to read without the lock.
    pub(crate) fn source(&self) -> Result<SegmentSource, LogError> {
        let log = self.log.try_clone().at("dup log for the cleaner", &self.log_path)?;
        let modified = self.log.metadata().and_then(|m| m.modified()).ok();
        Ok(SegmentSource {
            id: self.id,
            base_offset: self.base_offset,
            size_bytes: self.size_bytes,
            log,
            log_path: self.log_path.clone(),
            index_entries: self.tracker.index.entries(),
            modified,
        })
    }

    /// Gives the `.log` this modification time (a cleaned segment keeps its sources' age).
    pub(crate) fn set_modified(&self, time: std::time::SystemTime) -> Result<(), LogError> {
        self.log.set_modified(time).at("set log mtime", &self.log_path)
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// One past the last offset held (the base offset when empty).
    pub(crate) fn next_offset(&self) -> i64 {
        self.tracker.next_offset
    }

    /// Largest batch `maxTimestamp` in the segment, -1 if none.
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.tracker.max_timestamp
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub(crate) fn rolling_since_ms(&self) -> Option<i64> {
        self.rolling_since_ms
    }

    /// Starts the `segment_ms` clock if it is not running (a reopened segment without usable
    /// timestamps starts it at the first timed call after open).
    pub(crate) fn start_rolling_clock(&mut self, now_ms: i64) {
        if !self.is_empty() {
            self.rolling_since_ms.get_or_insert(now_ms);
        }
    }

    /// True when an index has no room left: time to roll.
    pub(crate) fn index_full(&self) -> bool {
        self.tracker.index.is_full() || self.tracker.time_index.is_full()
    }

    /// For retention: the largest timestamp, or the file's modification time if the batches
    /// carry none (Kafka's rule).
    pub(crate) fn largest_timestamp_ms(&self) -> Result<i64, LogError> {
        if self.tracker.max_timestamp >= 0 {
            return Ok(self.tracker.max_timestamp);
        }
        let modified = self
            .log
            .metadata()
            .and_then(|m| m.modified())
            .at("stat log", &self.log_path)?;
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Ok(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// Appends already validated batches (offsets assigned) with one positional write.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        headers: &[BatchHeader],
        index_interval_bytes: u32,
        now_ms: i64,
    ) -> Result<(), LogError> {
        debug_assert!(!self.sealed, "append to a sealed segment");
        let start = self.size_bytes;
        if let Err(e) = self.log.write_all_at(bytes, start) {
            // Cut what part of the write landed, so nothing beyond our size can be misread.
            if let Err(cut) = self.log.set_len(start) {
                tracing::warn!(path = %self.log_path.display(), error = %cut, "could not cut a failed append");
            }
            return Err(e).at("append to log", &self.log_path);
        }
        let mut position = start;
        for header in headers {
            self.tracker.observe(position, header, index_interval_bytes);
            position += header.size_bytes() as u64;
        }
        debug_assert_eq!(position - start, bytes.len() as u64);
        self.size_bytes = position;
        self.rolling_since_ms.get_or_insert(now_ms);
        self.dirty = true;
        #[cfg(debug_assertions)]
        self.check_written(start, &headers[0]);
        Ok(())
    }

    /// Debug-build pair of the write: the header read back equals the header we wrote.
    #[cfg(debug_assertions)]
    fn check_written(&self, position: u64, expected: &BatchHeader) {
        let mut header = [0u8; HEADER_BYTES];
        self.log
            .read_exact_at(&mut header, position)
            .expect("read back appended batch");
        assert_eq!(BatchHeader::parse(&header).ok().as_ref(), Some(expected));
    }

    fn scanner(&self, from: u64, verify_crc: bool) -> BatchScanner<'_> {
        BatchScanner::new(&self.log, &self.log_path, from, self.size_bytes, verify_crc)
    }

    fn corrupt(&self, position: u64, reason: String) -> LogError {
        LogError::CorruptLog {
            path: self.log_path.clone(),
            position,
            reason,
        }
    }

    /// The first batch whose last offset is >= `offset`, with its position; None if the
    /// segment ends first. The index gives the start; headers are scanned from there.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let hint = self.tracker.index.lookup(offset);
        let mut scanner = self.scanner(hint.map_or(0, |(_, p)| p), false);
        let mut expected_last = hint.map(|(o, _)| o);
        loop {
            let (position, header) = match scanner.next_batch()? {
                Scanned::End => return Ok(None),
                Scanned::Invalid { position, reason } => return Err(self.corrupt(position, reason)),
                Scanned::Batch { position, header } => (position, header),
            };
            // Pair the index with the disk: the entry must point at a batch ending at its offset.
            if let Some(expected) = expected_last.take() {
                if header.last_offset() != expected {
                    let reason = format!(
                        "index entry says offset {expected}, batch ends at {}",
                        header.last_offset()
                    );
                    return Err(self.corrupt(position, reason));
                }
            }
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
        }
    }

    /// Calls `visit` with the header of every batch from the one holding `offset` to the end
    /// of the segment. Headers only: used to rebuild producer state on open.
    pub(crate) fn visit_headers(&self, offset: i64, mut visit: impl FnMut(&BatchHeader)) -> Result<(), LogError> {
        let Some((position, _)) = self.find_batch(offset)? else {
            return Ok(());
        };
        let mut scanner = self.scanner(position, false);
        loop {
            match scanner.next_batch()? {
                Scanned::End => return Ok(()),
                Scanned::Invalid { position, reason } => return Err(self.corrupt(position, reason)),
                Scanned::Batch { header, .. } => visit(&header),
            }
        }
    }

    /// Calls `visit` with the header of every batch from the one holding `offset` to the end of
    /// the segment, and for a control batch its bytes: the producer state replay, which must
    /// read what a transaction marker says. Data batches are never read past their header.
    pub(crate) fn visit_for_producers(
        &self,
        offset: i64,
        mut visit: impl FnMut(&BatchHeader, Option<&[u8]>),
    ) -> Result<(), LogError> {
        let Some((position, _)) = self.find_batch(offset)? else {
            return Ok(());
        };
        let mut scanner = self.scanner(position, false);
        loop {
            match scanner.next_batch()? {
                Scanned::End => return Ok(()),
                Scanned::Invalid { position, reason } => return Err(self.corrupt(position, reason)),
                Scanned::Batch { header, position } if header.is_control() => {
                    visit(&header, Some(&self.read_exact(position, header.size_bytes())?))
                }
                Scanned::Batch { header, .. } => visit(&header, None),
            }
        }
    }

    pub(crate) fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }

    pub(crate) fn txn_index_mut(&mut self) -> &mut TxnIndex {
        &mut self.txn_index
    }

    /// Whole batches from `position` (where `first` starts) within `limits`.
    pub(crate) fn read_batches(
        &self,
        position: u64,
        first: &BatchHeader,
        limits: &ReadLimits,
    ) -> Result<Bytes, LogError> {
        if first.last_offset() >= limits.max_offset {
            return Ok(Bytes::new());
        }
        if first.size_bytes() > limits.max_bytes {
            if limits.min_one {
                return self.read_mapped(position, first.size_bytes());
            }
            return Ok(Bytes::new());
        }
        let want = (limits.max_bytes as u64).min(self.size_bytes - position) as usize;
        let mut buf = self.read_mapped(position, want)?;
        let cut = self.whole_batches(&buf, position, limits.max_offset)?;
        debug_assert!(cut >= first.size_bytes(), "the first batch always fits here");
        buf.truncate(cut);
        #[cfg(debug_assertions)]
        check_crcs(&buf);
        Ok(buf)
    }

    /// `len` bytes from `position`, sliced from the read mapping (no copy).
    fn read_mapped(&self, position: u64, len: usize) -> Result<Bytes, LogError> {
        self.read_map
            .slice(&self.log, &self.log_path, position, len, self.size_bytes)
    }

    /// Length of the prefix of `buf` made of whole batches that end below `max_offset`.
    fn whole_batches(&self, buf: &[u8], position: u64, max_offset: i64) -> Result<usize, LogError> {
        let mut cut = 0;
        while buf.len() - cut >= HEADER_BYTES {
            let header =
                BatchHeader::parse(&buf[cut..]).map_err(|e| self.corrupt(position + cut as u64, e.to_string()))?;
            if cut + header.size_bytes() > buf.len() || header.last_offset() >= max_offset {
                break;
            }
            cut += header.size_bytes();
        }
        Ok(cut)
    }

    fn read_exact(&self, position: u64, len: usize) -> Result<BytesMut, LogError> {
        let mut buf = BytesMut::zeroed(len);
        self.log
            .read_exact_at(&mut buf, position)
            .at("read log", &self.log_path)?;
        Ok(buf)
    }

    /// The batch that holds the earliest record with timestamp >= `timestamp`: the time index
    /// and offset index give a start, headers find the first batch whose `maxTimestamp` reaches
    /// it. Its records are searched by `records::first_at_or_after`, outside the log's lock.
    pub(crate) fn batch_for_timestamp(&self, timestamp: i64) -> Result<Option<BatchToSearch>, LogError> {
        let mut scanner = self.scanner(self.position_for_timestamp(timestamp), false);
        loop {
            match scanner.next_batch()? {
                Scanned::End => return Ok(None),
                Scanned::Invalid { position, reason } => return Err(self.corrupt(position, reason)),
                Scanned::Batch { position, header } if header.max_timestamp >= timestamp => {
                    let batch = self.read_exact(position, header.size_bytes())?.freeze();
                    return Ok(Some(BatchToSearch { header, batch }));
                }
                Scanned::Batch { .. } => {}
            }
        }
    }

    fn position_for_timestamp(&self, timestamp: i64) -> u64 {
        let Some((_, offset)) = self.tracker.time_index.lookup(timestamp) else {
            return 0;
        };
        self.tracker.index.lookup(offset).map_or(0, |(_, p)| p)
    }

    /// Header of the first batch, if any (used to restart the `segment_ms` clock on open).
    pub(crate) fn first_header(&self) -> Result<Option<BatchHeader>, LogError> {
        match self.scanner(0, false).next_batch()? {
            Scanned::Batch { header, .. } => Ok(Some(header)),
            _ => Ok(None),
        }
    }

    /// Cuts the segment before the batch at `position`, whose base offset is `first_dropped`.
    #[allow(dead_code)] // Called by follower truncation, which the replication issue adds.
    pub(crate) fn truncate_from(
        &mut self,
        position: u64,
        first_dropped: i64,
        index_interval_bytes: u32,
    ) -> Result<(), LogError> {
        self.tracker.index.truncate_to(first_dropped);
        self.tracker.time_index.truncate_to(first_dropped);
        self.txn_index.truncate_from(first_dropped)?;
        // NOTE for the replication issue, the first caller: fetch responses may still hold
        // slices of the old mapping past `position`; shrinking the file under them would fault.
        // Before wiring this in, wait for in-flight reads of the segment (or truncate into a
        // copy of the kept prefix instead).
        self.read_map.reset();
        self.log.set_len(position).at("truncate log", &self.log_path)?;
        self.size_bytes = position;
        self.dirty = true;
        if self.is_empty() {
            self.rolling_since_ms = None;
        }
        match self.restore_tail(index_interval_bytes)? {
            Ok(_) => Ok(()),
            Err(reason) => Err(self.corrupt(position, reason)),
        }
    }

    /// Re-derives the facts (next offset, max timestamp) from the indexes plus a verified scan
    /// of the batches from the last index entry to the end: a bounded read of about
    /// `index_interval_bytes` plus one batch. `Ok(Err(reason))` if the tail does not agree
    /// with the index (the caller then rescans the whole segment).
    pub(crate) fn restore_tail(&mut self, index_interval_bytes: u32) -> Result<Result<u64, String>, LogError> {
        self.tracker.load_from_indexes();
        let hint = self.tracker.index.last_entry();
        // The batch at the entry is checked against it; only then do batches chain.
        self.tracker.next_offset = self.base_offset;
        let mut scanner = BatchScanner::new(
            &self.log,
            &self.log_path,
            hint.map_or(0, |(_, p)| p),
            self.size_bytes,
            true,
        );
        let mut batches = 0;
        loop {
            let (position, header) = match scanner.next_batch()? {
                Scanned::End => break,
                Scanned::Invalid { position, reason } => return Ok(Err(format!("at byte {position}: {reason}"))),
                Scanned::Batch { position, header } => (position, header),
            };
            if batches == 0 && hint.is_some_and(|(o, _)| o != header.last_offset()) {
                return Ok(Err(format!(
                    "last index entry does not match the batch at byte {position}"
                )));
            }
            if let Err(reason) = self.tracker.check_follows(&header) {
                return Ok(Err(reason));
            }
            self.tracker.observe(position, &header, index_interval_bytes);
            batches += 1;
        }
        if hint.is_some() && batches == 0 {
            return Ok(Err("last index entry points past the end of the log".into()));
        }
        if self.tracker.offset_of_max_timestamp >= self.tracker.next_offset {
            return Ok(Err("time index points past the end of the log".into()));
        }
        Ok(Ok(batches))
    }

    /// Rebuilds both indexes by scanning every batch (CRC checked) and cuts the file at the
    /// first bytes that are not a whole valid batch following the previous one.
    pub(crate) fn recover(&mut self, index_interval_bytes: u32) -> Result<Recovered, LogError> {
        self.activate()?;
        self.tracker.clear();
        let file_len = self.log.metadata().at("stat log", &self.log_path)?.len();
        let mut scanner = BatchScanner::new(&self.log, &self.log_path, 0, file_len, true);
        let mut batches = 0;
        let invalid = loop {
            match scanner.next_batch()? {
                Scanned::End => break None,
                Scanned::Invalid { position, reason } => break Some((position, reason)),
                Scanned::Batch { position, header } => {
                    if let Err(reason) = self.tracker.check_follows(&header) {
                        break Some((position, reason));
                    }
                    self.tracker.observe(position, &header, index_interval_bytes);
                    batches += 1;
                }
            }
        };
        let truncated = invalid.map(|(position, reason)| Truncation {
            position,
            bytes: file_len - position,
            reason,
        });
        self.size_bytes = truncated.as_ref().map_or(file_len, |t| t.position);
        if self.size_bytes < file_len {
            self.log.set_len(self.size_bytes).at("truncate log", &self.log_path)?;
        }
        self.dirty = true;
        Ok(Recovered { batches, truncated })
    }

    /// Cheap checks for a segment the recovery point says is durable; `Err` means rebuild.
    /// A missing or empty index where the data says there must be entries counts as broken:
    /// without it every read would scan the segment from the start.
    pub(crate) fn check_trusted(&self, next_base: i64, index_interval_bytes: u32) -> Result<(), String> {
        self.check_indexes_present(index_interval_bytes)?;
        if let Some((offset, position)) = self.tracker.index.last_entry() {
            if position >= self.size_bytes || offset >= next_base {
                return Err(format!("index entry {offset}@{position} lies outside the segment"));
            }
        }
        if let Some((_, offset)) = self.tracker.time_index.last_entry() {
            if offset >= next_base {
                return Err(format!("time index entry for offset {offset} lies outside the segment"));
            }
        }
        if self.size_bytes > 0 && self.size_bytes < HEADER_BYTES as u64 {
            return Err(format!("{} bytes cannot hold a batch", self.size_bytes));
        }
        Ok(())
    }

    /// Beyond `index_interval_bytes` there is an offset-index entry unless one batch fills
    /// the segment (rebuilding that costs one batch); a sealed non-empty segment has a
    /// time-index entry unless no batch carries a timestamp (rare: pre-0.10 clients).
    fn check_indexes_present(&self, index_interval_bytes: u32) -> Result<(), String> {
        if self.tracker.index.entries() == 0 && self.size_bytes > u64::from(index_interval_bytes) {
            return Err("offset index is empty".into());
        }
        if self.tracker.time_index.entries() == 0 && self.size_bytes > 0 {
            return Err("time index is empty".into());
        }
        Ok(())
    }

    /// Offset-index entries but no time-index entry: the time index was lost (or no batch
    /// up to the last entry carries a timestamp); its max timestamp cannot be trusted.
    pub(crate) fn time_index_lost(&self) -> bool {
        self.tracker.time_index.entries() == 0 && self.tracker.index.entries() > 0
    }

    /// For a trusted segment that is not the last: it ends where the next one begins.
    pub(crate) fn set_next_offset(&mut self, next_offset: i64) {
        self.tracker.next_offset = next_offset;
    }

    /// The segment stops being active (roll, close, load): the time index gets a final entry
    /// for the segment's max timestamp, both indexes are trimmed and made durable (small files),
    /// so a later open can trust them without reading the `.log`.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        if self.sealed {
            return Ok(());
        }
        let tracker = &mut self.tracker;
        tracker
            .time_index
            .maybe_append(tracker.max_timestamp, tracker.offset_of_max_timestamp, true);
        tracker.index.file().trim()?;
        tracker.time_index.file().trim()?;
        tracker.index.flush()?;
        tracker.time_index.flush()?;
        self.sealed = true;
        Ok(())
    }

    /// Makes the segment appendable again (after open or truncation): indexes back to capacity.
    pub(crate) fn activate(&mut self) -> Result<(), LogError> {
        self.tracker.index.file().resize(INDEX_MAX_BYTES)?;
        self.tracker.time_index.file().resize(INDEX_MAX_BYTES)?;
        self.sealed = false;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn tracker_index_entries(&self) -> usize {
        self.tracker.index.entries()
    }

    /// fsync of the log and both indexes, if anything changed since the last one.
    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        if !self.dirty {
            return Ok(());
        }
        self.log.sync_data().at("fsync log", &self.log_path)?;
        self.tracker.index.flush()?;
        self.tracker.time_index.flush()?;
        self.txn_index.flush()?;
        self.dirty = false;
        Ok(())
    }

    /// First half of a flush done without the log's lock: msyncs the indexes (small), marks the
    /// segment clean and hands back a second handle on the `.log` for the caller to fsync.
    pub(crate) fn detach_for_flush(&mut self) -> Result<Option<(PathBuf, File)>, LogError> {
        if !self.dirty {
            return Ok(None);
        }
        self.tracker.index.flush()?;
        self.tracker.time_index.flush()?;
        self.txn_index.flush()?;
        let file = self.log.try_clone().at("dup log for fsync", &self.log_path)?;
        self.dirty = false;
        Ok(Some((self.log_path.clone(), file)))
    }

    /// Drops this segment's read mapping; the next fetch maps it again. Mapped pages count in
    /// the broker's RSS while mapped, so letting go of maps periodically keeps RSS to what was
    /// read recently instead of everything ever read.
    pub(crate) fn release_read_map(&self) {
        self.read_map.reset();
    }

    /// Marks the segment as holding unflushed data again (its detached fsync failed).
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Removes the segment's files (unmapping first).
    pub(crate) fn delete(self) -> Result<(), LogError> {
        let (dir, base) = (self.dir.clone(), self.base_offset);
        drop(self);
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
            remove_if_exists(&segment_path(&dir, base, suffix))?;
        }
        Ok(())
    }
}

/// Debug-build pair of the read: what we hand out still carries valid CRCs.
#[cfg(debug_assertions)]
fn check_crcs(buf: &[u8]) {
    let mut at = 0;
    while at < buf.len() {
        let header = BatchHeader::parse(&buf[at..]).expect("read returns whole batches");
        let batch = &buf[at..at + header.size_bytes()];
        super::batch::check_crc(batch, &header).expect("read returns CRC-valid batches");
        at += header.size_bytes();
    }
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at("delete", path),
        _ => Ok(()),
    }
}

fn open_log(path: &Path, create: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
        .at(if create { "create log" } else { "open log" }, path)
}
