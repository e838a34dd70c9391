//! The leader epoch cache of one partition: which leader epoch started at which offset, kept
//! in Kafka's `leader-epoch-checkpoint` file (version 0, a count, `<epoch> <start offset>`
//! lines) in the partition directory.
//!
//! Owns: the (epoch, start offset) entries and their file. It answers "where does epoch E end
//! in this log?" (`end_offset_for`), which is how a follower finds where its log diverges from
//! a new leader's (KIP-101/279) and how clients validate their position after a leader change
//! (KIP-320, OffsetForLeaderEpoch). Entries are strictly increasing in both epoch and offset.
//! The file is rewritten on every change: changes come with leader changes and truncations,
//! never with ordinary appends.

use std::path::{Path, PathBuf};

use super::checkpoint::{read_entries, write_entries};
use super::error::LogError;

pub(crate) const FILE_NAME: &str = "leader-epoch-checkpoint";
/// Kafka's "no epoch" / "no offset" answer.
pub(crate) const UNDEFINED: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEntry {
    pub(crate) epoch: i32,
    pub(crate) start_offset: i64,
}

#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

fn parse_line(line: &str) -> Option<EpochEntry> {
    let mut fields = line.split_whitespace();
    let epoch = fields.next()?.parse().ok()?;
    let start_offset = fields.next()?.parse().ok()?;
    fields.next().is_none().then_some(EpochEntry { epoch, start_offset })
}

impl LeaderEpochCache {
    /// Loads the partition's file; `None` when it does not exist (a log written before this
    /// file was kept, or a fresh one), so the caller can rebuild the entries from its batches.
    pub(crate) fn load(dir: &Path) -> Result<Option<LeaderEpochCache>, LogError> {
        let path = dir.join(FILE_NAME);
        let Some(mut entries) = read_entries(&path, parse_line)? else {
            return Ok(None);
        };
        // A file that breaks the ordering rule cannot be trusted as a whole; keep the
        // consistent prefix (the rest is rebuilt by the next assignments).
        let good = entries
            .windows(2)
            .position(|w| w[1].epoch <= w[0].epoch || w[1].start_offset < w[0].start_offset)
            .map_or(entries.len(), |i| i + 1);
        entries.truncate(good);
        Ok(Some(LeaderEpochCache { path, entries }))
    }

    /// An empty cache for `dir`, written on its first change.
    pub(crate) fn empty(dir: &Path) -> LeaderEpochCache {
        LeaderEpochCache {
            path: dir.join(FILE_NAME),
            entries: Vec::new(),
        }
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. A newer epoch is appended; an entry it
    /// contradicts (same or newer epoch, or starting at or after it) is dropped first, as after
    /// a truncation. Returns whether anything changed (the caller then persists it).
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        if let Some(last) = self.entries.last() {
            if epoch == last.epoch && start_offset >= last.start_offset {
                return false;
            }
            if epoch < last.epoch && start_offset >= last.start_offset {
                // An older epoch after a newer one: a stale batch; the newer entry stands.
                return false;
            }
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// Kafka's `endOffsetFor`: (the largest epoch <= `epoch` this log has, the offset where it
    /// ends: the start of the next epoch, or `log_end` for the latest). `(UNDEFINED, UNDEFINED)`
    /// when `epoch` is undefined, newer than every entry, or the cache is empty.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end: i64) -> (i32, i64) {
        let undefined = (UNDEFINED as i32, UNDEFINED);
        let Some(last) = self.entries.last() else {
            return undefined;
        };
        if epoch < 0 {
            return undefined;
        }
        if epoch == last.epoch {
            return (epoch, log_end);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > epoch) else {
            return undefined;
        };
        match self.entries.iter().rev().find(|e| e.epoch <= epoch) {
            Some(floor) => (floor.epoch, higher.start_offset),
            // Older than everything we have: it ended where our first epoch starts.
            None => (epoch, higher.start_offset),
        }
    }

    /// Drops the entries of epochs that start at or after `end_offset` (the log was cut
    /// there). Returns whether anything changed.
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// The log now starts at `start_offset`: entries that end before it go, and the epoch
    /// holding it starts there. Returns whether anything changed.
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let holding = self.entries.iter().rposition(|e| e.start_offset <= start_offset);
        match holding {
            Some(i) if i > 0 || self.entries[i].start_offset < start_offset => {
                self.entries.drain(..i);
                self.entries[0].start_offset = start_offset;
                true
            }
            _ => false,
        }
    }

    /// Writes the file (atomically; small and rare).
    pub(crate) fn persist(&self) -> Result<(), LogError> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        write_entries(&self.path, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::empty(Path::new("/nonexistent"));
        for &(epoch, start) in entries {
            assert!(c.assign(epoch, start));
        }
        c
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries.iter().map(|e| (e.epoch, e.start_offset)).collect()
    }

    #[test]
    fn assign_appends_newer_epochs_and_ignores_repeats_and_stale_ones() {
        let mut c = cache(&[(0, 0), (2, 10)]);
        assert!(!c.assign(2, 15), "same epoch, later offset: nothing new");
        assert!(!c.assign(1, 20), "an older epoch after a newer one");
        assert!(c.assign(3, 20));
        assert_eq!(pairs(&c), [(0, 0), (2, 10), (3, 20)]);
    }

    #[test]
    fn assign_before_the_latest_start_replaces_what_it_contradicts() {
        // After a truncation to 12 a new leader's epoch 4 starts at 12.
        let mut c = cache(&[(0, 0), (2, 10), (3, 20)]);
        assert!(c.assign(4, 12));
        assert_eq!(pairs(&c), [(0, 0), (2, 10), (4, 12)]);
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert_eq!(c.end_offset_for(5, 30), (5, 30), "latest epoch ends at the log end");
        assert_eq!(c.end_offset_for(3, 30), (3, 20));
        assert_eq!(
            c.end_offset_for(4, 30),
            (3, 20),
            "an epoch this log never had: its floor"
        );
        assert_eq!(c.end_offset_for(0, 30), (0, 0), "older than the first entry");
        assert_eq!(c.end_offset_for(6, 30), (-1, -1), "newer than any entry");
        assert_eq!(c.end_offset_for(-1, 30), (-1, -1));
        assert_eq!(cache(&[]).end_offset_for(0, 30), (-1, -1));
    }

    #[test]
    fn truncation_from_either_end() {
        let mut c = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert!(c.truncate_from_end(20));
        assert_eq!(pairs(&c), [(1, 0), (3, 10)]);
        assert!(!c.truncate_from_end(25));
        assert!(c.truncate_from_start(15));
        assert_eq!(pairs(&c), [(3, 15)]);
        assert!(!c.truncate_from_start(15));
        assert!(!c.truncate_from_start(5), "already past it");
    }

    #[test]
    fn file_round_trip_in_kafka_format_and_a_broken_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LeaderEpochCache::load(dir.path()).unwrap().is_none());
        let mut c = LeaderEpochCache::empty(dir.path());
        c.assign(0, 0);
        c.assign(4, 17);
        c.persist().unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n4 17\n");
        assert_eq!(
            pairs(&LeaderEpochCache::load(dir.path()).unwrap().unwrap()),
            [(0, 0), (4, 17)]
        );
        std::fs::write(dir.path().join(FILE_NAME), "0\n3\n0 0\n4 17\n2 20\n").unwrap();
        assert_eq!(
            pairs(&LeaderEpochCache::load(dir.path()).unwrap().unwrap()),
            [(0, 0), (4, 17)]
        );
    }
}
