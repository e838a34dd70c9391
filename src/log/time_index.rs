//! The time index (`.timeindex`): 12-byte entries (timestamp i64 BE, offset relative to the
//! segment base u32 BE), Kafka's layout and rule.
//!
//! Owns: one `.timeindex` file per segment. An entry (T, O) says: the largest batch
//! `maxTimestamp` up to offset O is T, and O is the last offset of the first batch reaching T.
//! Entries are added where offset-index entries are (and once more when the segment is sealed),
//! only when the timestamp grew, so timestamps strictly increase.
//! May call: `index::IndexFile`. Must never: read the `.log` file.

use super::error::LogError;
use super::index::{partition_point, IndexFile};
use std::path::Path;

pub(crate) const TIME_ENTRY_BYTES: usize = 12;

#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, capacity_bytes: usize) -> Result<Self, LogError> {
        let file = IndexFile::create(path, TIME_ENTRY_BYTES, capacity_bytes)?;
        Ok(TimeIndex { file, base_offset })
    }

    /// Opens an existing time index and keeps its valid prefix: timestamps strictly increasing
    /// from >= 0, offsets not decreasing. Zero fill after real entries ends the prefix.
    pub(crate) fn open(path: &Path, base_offset: i64) -> Result<Self, LogError> {
        let file = IndexFile::open(path, TIME_ENTRY_BYTES)?;
        let mut index = TimeIndex { file, base_offset };
        let valid = index.valid_prefix();
        index.file.set_entries_unchecked(valid);
        Ok(index)
    }

    fn valid_prefix(&self) -> usize {
        let mut previous = (-1i64, 0u32);
        for i in 0..self.file.slots() {
            let (timestamp, relative) = self.raw(i);
            if timestamp <= previous.0 || relative < previous.1 {
                return i;
            }
            previous = (timestamp, relative);
        }
        self.file.slots()
    }

    fn raw(&self, i: usize) -> (i64, u32) {
        let slot = self.file.slot(i);
        let timestamp = i64::from_be_bytes(slot[0..8].try_into().expect("8 bytes"));
        let relative = u32::from_be_bytes(slot[8..12].try_into().expect("4 bytes"));
        (timestamp, relative)
    }

    pub(crate) fn entries(&self) -> usize {
        self.file.entries()
    }

    /// (timestamp, absolute offset) of entry `i`.
    pub(crate) fn entry(&self, i: usize) -> (i64, i64) {
        let (timestamp, relative) = self.raw(i);
        (timestamp, self.base_offset + i64::from(relative))
    }

    pub(crate) fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries().checked_sub(1).map(|i| self.entry(i))
    }

    /// True when fewer than two slots are left: one is kept for the entry added on seal.
    pub(crate) fn is_full(&self) -> bool {
        self.entries() + 1 >= self.file.slots()
    }

    /// Adds (timestamp, offset) if the timestamp grew past the last entry (Kafka's rule).
    /// `for_seal` may use the last reserved slot.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64, for_seal: bool) -> bool {
        let last = self.last_entry().unwrap_or((-1, self.base_offset));
        let relative = offset - self.base_offset;
        if timestamp <= last.0 || offset < last.1 || !(0..=i64::from(i32::MAX)).contains(&relative) {
            return false;
        }
        if self.is_full() && !for_seal {
            return false;
        }
        let mut entry = [0u8; TIME_ENTRY_BYTES];
        entry[0..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..12].copy_from_slice(&(relative as u32).to_be_bytes());
        self.file.push(&entry)
    }

    /// The last entry whose timestamp is <= `timestamp`. Every batch before the one ending at
    /// its offset has a smaller `maxTimestamp`, so a search for `timestamp` may start there.
    pub(crate) fn lookup(&self, timestamp: i64) -> Option<(i64, i64)> {
        let after = partition_point(self.entries(), |i| self.entry(i).0 <= timestamp);
        after.checked_sub(1).map(|i| self.entry(i))
    }

    /// Drops entries whose offset is >= `offset`.
    #[allow(dead_code)] // Called by follower truncation, which the replication issue adds.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep = partition_point(self.entries(), |i| self.entry(i).1 < offset);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_only_when_timestamp_grows_and_looks_up_floor() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::create(&dir.path().join("x.timeindex"), 50, 1200).unwrap();
        assert!(index.maybe_append(1_000, 52, false));
        assert!(!index.maybe_append(1_000, 55, false));
        assert!(!index.maybe_append(900, 56, false));
        assert!(index.maybe_append(2_000, 60, false));
        assert_eq!(index.entries(), 2);
        assert_eq!(index.lookup(999), None);
        assert_eq!(index.lookup(1_500), Some((1_000, 52)));
        assert_eq!(index.lookup(2_000), Some((2_000, 60)));
    }

    #[test]
    fn reopen_and_trim_keep_twelve_byte_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.timeindex");
        let mut index = TimeIndex::create(&path, 0, 1200).unwrap();
        index.maybe_append(10, 1, false);
        index.maybe_append(20, 5, false);
        index.maybe_append(30, 9, false);
        index.truncate_to(9);
        index.flush().unwrap();
        drop(index);
        let mut index = TimeIndex::open(&path, 0).unwrap();
        assert_eq!(index.last_entry(), Some((20, 5)));
        index.file().trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
    }
}
