//! The sparse offset index (`.index`) and the memory-mapped file both indexes sit on.
//!
//! Owns: one `.index` file per segment; 8-byte entries (offset relative to the segment base,
//! u32 BE; position of a batch in the `.log`, u32 BE). As in Kafka, the offset is the *last*
//! offset of the batch that starts at the position, so Kafka's `kafka-dump-log.sh` agrees.
//! May call: memmap2, std. Must never: read the `.log` file; it is a hint the segment checks.
//!
//! The file is preallocated (sparse) to its capacity while its segment is active and trimmed to
//! its entries when the segment is sealed, so after a crash the untrimmed tail is zeros; the
//! valid entries are the strictly increasing prefix.

use super::error::{IoContext, LogError};
use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Capacity of an active segment's index file, as Kafka's `segment.index.bytes` default.
pub(crate) const INDEX_MAX_BYTES: usize = 10 * 1024 * 1024;
pub(crate) const OFFSET_ENTRY_BYTES: usize = 8;

/// A file of fixed-size entries, memory-mapped; knows nothing of what an entry means.
///
/// Holds no file descriptor once mapped (the mapping keeps the file alive), as Kafka does: a
/// partition then costs one descriptor per segment (its `.log`), not three, which is what lets
/// thousands of partitions live under an ordinary open-files limit.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    mmap: MmapMut,
    entry_bytes: usize,
    entries: usize,
}

impl IndexFile {
    /// Creates (or empties) the file and preallocates `capacity_bytes`.
    pub(crate) fn create(path: &Path, entry_bytes: usize, capacity_bytes: usize) -> Result<Self, LogError> {
        let file = open_rw(path, true)?;
        Self::with_file(path, file, entry_bytes, capacity_bytes)
    }

    /// Opens an existing file (creating an empty one if missing) at its current length.
    /// `entries` is 0 until the caller has decided how many are valid (`set_entries`).
    pub(crate) fn open(path: &Path, entry_bytes: usize) -> Result<Self, LogError> {
        let file = open_rw(path, false)?;
        let len = file.metadata().at("stat index", path)?.len() as usize;
        Self::with_file(path, file, entry_bytes, len)
    }

    fn with_file(path: &Path, file: File, entry_bytes: usize, capacity_bytes: usize) -> Result<Self, LogError> {
        let capacity_bytes = capacity_bytes - capacity_bytes % entry_bytes;
        file.set_len(capacity_bytes as u64).at("size index", path)?;
        let mmap = map_file(&file, path)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            mmap,
            entry_bytes,
            entries: 0,
        })
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Entries the mapped file can hold (all slots, not only valid ones).
    pub(crate) fn slots(&self) -> usize {
        self.mmap.len() / self.entry_bytes
    }

    pub(crate) fn slot(&self, i: usize) -> &[u8] {
        &self.mmap[i * self.entry_bytes..(i + 1) * self.entry_bytes]
    }

    /// Appends one entry; false when there is no room (the segment rolls soon; the index is a
    /// hint, so a missing entry only makes a lookup scan further).
    pub(crate) fn push(&mut self, entry: &[u8]) -> bool {
        debug_assert_eq!(entry.len(), self.entry_bytes);
        if self.entries == self.slots() {
            return false;
        }
        let at = self.entries * self.entry_bytes;
        self.mmap[at..at + self.entry_bytes].copy_from_slice(entry);
        self.entries += 1;
        true
    }

    /// Declares the first `n` slots valid after a reload (no zeroing: they hold data).
    pub(crate) fn set_entries_unchecked(&mut self, n: usize) {
        self.entries = n.min(self.slots());
    }

    /// Keeps the first `n` entries and zeroes the rest, so a reload after a crash cannot mistake
    /// dropped entries for valid ones.
    pub(crate) fn set_entries(&mut self, n: usize) {
        let n = n.min(self.slots());
        let from = n * self.entry_bytes;
        let to = self.entries.max(n) * self.entry_bytes;
        self.mmap[from..to].fill(0);
        self.entries = n;
    }

    /// Changes the file's length (trim on seal, grow back when the segment is active again).
    /// The old mapping is dropped before the file shrinks: touching a mapping past the end of
    /// its file would be SIGBUS.
    pub(crate) fn resize(&mut self, capacity_bytes: usize) -> Result<(), LogError> {
        let capacity_bytes = capacity_bytes - capacity_bytes % self.entry_bytes;
        let capacity_bytes = capacity_bytes.max(self.entries * self.entry_bytes);
        if capacity_bytes == self.mmap.len() {
            return Ok(());
        }
        self.mmap.flush().at("msync index", &self.path)?;
        self.mmap = MmapMut::map_anon(0).at("unmap index", &self.path)?;
        let file = open_rw(&self.path, false)?;
        file.set_len(capacity_bytes as u64).at("resize index", &self.path)?;
        // The new length must be durable with the entries: msync alone does not cover it.
        file.sync_all().at("fsync index", &self.path)?;
        self.mmap = map_file(&file, &self.path)?;
        Ok(())
    }

    /// Trims the file to its valid entries.
    pub(crate) fn trim(&mut self) -> Result<(), LogError> {
        self.resize(self.entries * self.entry_bytes)
    }

    /// Makes the entries durable (the length was made durable when it last changed).
    pub(crate) fn flush(&self) -> Result<(), LogError> {
        self.mmap.flush().at("msync index", &self.path)
    }
}

fn open_rw(path: &Path, truncate: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
        .at("open index", path)
}

#[allow(unsafe_code)]
fn map_file(file: &File, path: &Path) -> Result<MmapMut, LogError> {
    // SAFETY: a mapping is sound only while nobody changes the file behind it. The file lives in a
    // partition directory owned by exactly one `Log` in this process (the caller holds it behind
    // a lock, the directory is not shared with other processes), and the only length change is
    // `IndexFile::resize`, which drops this mapping before shrinking the file.
    let mmap = unsafe { MmapMut::map_mut(file) };
    mmap.at("mmap index", path)
}

/// The offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, capacity_bytes: usize) -> Result<Self, LogError> {
        let file = IndexFile::create(path, OFFSET_ENTRY_BYTES, capacity_bytes)?;
        Ok(OffsetIndex { file, base_offset })
    }

    /// Opens an existing index and keeps its valid prefix: entries strictly increasing in both
    /// offset and position. A real first entry never has position 0 (the first batch of a
    /// segment is never indexed), so zero fill ends the prefix.
    pub(crate) fn open(path: &Path, base_offset: i64) -> Result<Self, LogError> {
        let file = IndexFile::open(path, OFFSET_ENTRY_BYTES)?;
        let mut index = OffsetIndex { file, base_offset };
        let valid = index.valid_prefix();
        index.file.set_entries_unchecked(valid);
        Ok(index)
    }

    fn valid_prefix(&self) -> usize {
        let mut previous = (0u32, 0u32);
        for i in 0..self.file.slots() {
            let (relative, position) = self.raw(i);
            if relative <= previous.0 || position <= previous.1 {
                return i;
            }
            previous = (relative, position);
        }
        self.file.slots()
    }

    fn raw(&self, i: usize) -> (u32, u32) {
        let slot = self.file.slot(i);
        let relative = u32::from_be_bytes(slot[0..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(slot[4..8].try_into().expect("4 bytes"));
        (relative, position)
    }

    pub(crate) fn entries(&self) -> usize {
        self.file.entries()
    }

    /// (absolute offset, position) of entry `i`.
    pub(crate) fn entry(&self, i: usize) -> (i64, u64) {
        let (relative, position) = self.raw(i);
        (self.base_offset + i64::from(relative), u64::from(position))
    }

    pub(crate) fn last_entry(&self) -> Option<(i64, u64)> {
        self.entries().checked_sub(1).map(|i| self.entry(i))
    }

    /// True when one more entry would not fit.
    pub(crate) fn is_full(&self) -> bool {
        self.entries() >= self.file.slots()
    }

    /// Records that the batch starting at `position` ends at `last_offset`. Entries only grow;
    /// anything else is a bug upstream and is refused (the index stays a valid hint).
    pub(crate) fn append(&mut self, last_offset: i64, position: u64) -> bool {
        let relative = last_offset - self.base_offset;
        let in_range = (1..=i64::from(i32::MAX)).contains(&relative) && position <= u64::from(u32::MAX);
        let grows = self.last_entry().is_none_or(|(o, p)| last_offset > o && position > p);
        debug_assert!(in_range && grows, "index entry {last_offset}@{position} out of order");
        if !(in_range && grows) {
            return false;
        }
        let mut entry = [0u8; OFFSET_ENTRY_BYTES];
        entry[0..4].copy_from_slice(&(relative as u32).to_be_bytes());
        entry[4..8].copy_from_slice(&(position as u32).to_be_bytes());
        self.file.push(&entry)
    }

    /// The last entry whose offset is <= `target`: the batch at its position ends at or before
    /// `target`, so a scan for `target` may start there.
    pub(crate) fn lookup(&self, target: i64) -> Option<(i64, u64)> {
        let n = self.entries();
        let after = partition_point(n, |i| self.entry(i).0 <= target);
        after.checked_sub(1).map(|i| self.entry(i))
    }

    /// Drops entries whose offset is >= `offset`.
    #[allow(dead_code)] // Called by follower truncation, which the replication issue adds.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep = partition_point(self.entries(), |i| self.entry(i).0 < offset);
        self.file.set_entries(keep);
    }

    pub(crate) fn clear(&mut self) {
        self.file.set_entries(0);
    }

    pub(crate) fn file(&mut self) -> &mut IndexFile {
        &mut self.file
    }

    pub(crate) fn flush(&self) -> Result<(), LogError> {
        self.file.flush()
    }
}

/// First index in `0..n` for which `pred` is false, given `pred` is true then false.
pub(crate) fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_with(dir: &Path, entries: &[(i64, u64)]) -> OffsetIndex {
        let mut index = OffsetIndex::create(&dir.join("x.index"), 100, 4096).unwrap();
        for &(offset, position) in entries {
            assert!(index.append(offset, position));
        }
        index
    }

    #[test]
    fn lookup_returns_last_entry_at_or_below_target() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_with(dir.path(), &[(110, 500), (120, 1000), (130, 1500)]);
        assert_eq!(index.lookup(105), None);
        assert_eq!(index.lookup(110), Some((110, 500)));
        assert_eq!(index.lookup(119), Some((110, 500)));
        assert_eq!(index.lookup(125), Some((120, 1000)));
        assert_eq!(index.lookup(10_000), Some((130, 1500)));
    }

    #[test]
    fn reopen_untrimmed_index_keeps_only_written_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = index_with(dir.path(), &[(110, 500), (120, 1000), (130, 1500)]);
        index.truncate_to(121);
        index.flush().unwrap();
        drop(index);
        let index = OffsetIndex::open(&dir.path().join("x.index"), 100).unwrap();
        assert_eq!(index.entries(), 2);
        assert_eq!(index.last_entry(), Some((120, 1000)));
    }

    #[test]
    fn trim_leaves_eight_bytes_per_entry_and_resize_grows_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = index_with(dir.path(), &[(110, 500), (120, 1000)]);
        index.file().trim().unwrap();
        let path = dir.path().join("x.index");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        index.file().resize(4096).unwrap();
        assert!(index.append(130, 1500));
        assert_eq!(index.entries(), 3);
    }

    #[test]
    fn full_index_refuses_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::create(&dir.path().join("y.index"), 0, 16).unwrap();
        assert!(index.append(1, 10));
        assert!(!index.is_full());
        assert!(index.append(2, 20));
        assert!(index.is_full());
        assert!(!index.append(3, 30));
    }
}
