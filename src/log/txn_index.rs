//! The transaction index of one segment: `<base>.txnindex`, Kafka's format, one 34-byte entry
//! per aborted transaction whose ABORT marker lies in the segment — version (int16, 0), producer
//! id, first offset, last offset (the marker's), and the last stable offset when it was written
//! (int64 each, big-endian). `kafka-dump-log` reads it.
//!
//! A read_committed fetch asks which aborted transactions overlap what it returns; the consumer
//! then drops those producers' records in that range. The file exists only once a transaction
//! aborted in the segment (Kafka creates it lazily too), and the entries are kept in memory:
//! aborts are rare next to records, and every fetch of read_committed consumers asks.
//!
//! Owns: the `.txnindex` file. Must never: decide what is aborted (that is `producer_state`'s
//! replay of markers), or be trusted past the point the producer state rebuilds it from.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{IoContext, LogError};
use super::segment::remove_if_exists;

pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
const ENTRY_BYTES: usize = 34;
const VERSION: i16 = 0;
/// Bound on entries read from one file: a segment of at most 2 GiB holds fewer markers.
const ENTRIES_MAX: usize = (i32::MAX as usize) / 61;

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// The offset of its ABORT marker.
    pub(crate) last_offset: i64,
    /// The partition's last stable offset once this transaction was aborted: the first offset
    /// of the earliest transaction still open then, or the marker's next offset. A fetch below
    /// it has seen every abort it could overlap.
    pub(crate) last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[0..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(c: &[u8]) -> Result<AbortedTxn, String> {
        let i64_at = |at: usize| i64::from_be_bytes(c[at..at + 8].try_into().expect("8 bytes"));
        let version = i16::from_be_bytes([c[0], c[1]]);
        if version != VERSION {
            return Err(format!("entry version {version} is not {VERSION}"));
        }
        Ok(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// The aborted transactions of one segment, in marker order, and their file.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// Open once the first entry is written (or the file existed).
    file: Option<File>,
    /// Written since the last fsync.
    dirty: bool,
}

impl TxnIndex {
    /// A segment's new, empty index; a leftover file of that name goes. Its name carries
    /// `extra` after the usual one (the cleaner's `.cleaned` segment, renamed into place by
    /// `swap`), or nothing.
    pub(crate) fn create_named(dir: &Path, base_offset: i64, extra: &str) -> Result<TxnIndex, LogError> {
        let mut path = path(dir, base_offset);
        path.as_mut_os_string().push(extra);
        remove_if_exists(&path)?;
        Ok(TxnIndex {
            path,
            entries: Vec::new(),
            file: None,
            dirty: false,
        })
    }

    /// An existing segment's index. A torn last entry is cut; an entry that does not decode
    /// ends the usable part (the producer state replay rebuilds what follows the snapshot).
    pub(crate) fn open(dir: &Path, base_offset: i64) -> Result<TxnIndex, LogError> {
        let path = path(dir, base_offset);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TxnIndex {
                    path,
                    entries: Vec::new(),
                    file: None,
                    dirty: false,
                })
            }
            Err(e) => return Err(e).at("read txn index", &path),
        };
        let mut entries = Vec::new();
        for chunk in bytes.chunks_exact(ENTRY_BYTES).take(ENTRIES_MAX) {
            match AbortedTxn::decode(chunk) {
                Ok(e) => entries.push(e),
                Err(reason) => {
                    tracing::warn!(index = %path.display(), reason, "txn index entry does not decode; cut there");
                    break;
                }
            }
        }
        let mut index = TxnIndex {
            file: Some(open_file(&path)?),
            path,
            entries,
            dirty: false,
        };
        if bytes.len() != index.entries.len() * ENTRY_BYTES {
            index.rewrite()?;
        }
        Ok(index)
    }

    /// Makes the file exist even with no entries: a cleaned segment whose name an older
    /// segment with a `.txnindex` had must replace that file, not leave it behind (`swap`
    /// renames only the files there are).
    pub(crate) fn materialize(&mut self) -> Result<(), LogError> {
        if self.file.is_none() {
            self.file = Some(open_file(&self.path)?);
            self.dirty = true;
        }
        Ok(())
    }

    pub(crate) fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    pub(crate) fn append(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        if self.file.is_none() {
            self.file = Some(open_file(&self.path)?);
        }
        let position = (self.entries.len() * ENTRY_BYTES) as u64;
        if let Some(file) = &self.file {
            file.write_all_at(&entry.encode(), position)
                .at("append to txn index", &self.path)?;
        }
        self.entries.push(entry);
        self.dirty = true;
        Ok(())
    }

    /// Drops the entries whose marker is at or past `offset` (a truncation, or a producer
    /// state replay from `offset` that writes them again).
    pub(crate) fn truncate_from(&mut self, offset: i64) -> Result<(), LogError> {
        let keep = self.entries.iter().take_while(|e| e.last_offset < offset).count();
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        self.rewrite()
    }

    fn rewrite(&mut self) -> Result<(), LogError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let len = (self.entries.len() * ENTRY_BYTES) as u64;
        file.set_len(len).at("truncate txn index", &self.path)?;
        self.dirty = true;
        Ok(())
    }

    /// fsync, if anything was written since the last one.
    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        if let (true, Some(file)) = (self.dirty, &self.file) {
            file.sync_data().at("fsync txn index", &self.path)?;
        }
        self.dirty = false;
        Ok(())
    }
}

fn path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}{TXN_INDEX_SUFFIX}"))
}

fn open_file(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at("open txn index", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_are_written_in_kafkas_34_byte_layout_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TxnIndex::create_named(dir.path(), 100, "").unwrap();
        assert!(
            !dir.path().join("00000000000000000100.txnindex").exists(),
            "created lazily"
        );
        index.append(entry(7, 100, 105)).unwrap();
        index.append(entry(9, 103, 110)).unwrap();
        index.flush().unwrap();
        let bytes = std::fs::read(dir.path().join("00000000000000000100.txnindex")).unwrap();
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[0..2], &[0, 0], "version 0");
        assert_eq!(i64::from_be_bytes(bytes[2..10].try_into().unwrap()), 7);
        assert_eq!(i64::from_be_bytes(bytes[26..34].try_into().unwrap()), 106);
        drop(index);
        let index = TxnIndex::open(dir.path(), 100).unwrap();
        assert_eq!(index.entries(), &[entry(7, 100, 105), entry(9, 103, 110)]);
    }

    #[test]
    fn a_torn_entry_is_cut_and_truncation_drops_later_markers() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TxnIndex::create_named(dir.path(), 0, "").unwrap();
        for i in 0..3 {
            index.append(entry(i, i * 10, i * 10 + 5)).unwrap();
        }
        drop(index);
        let file = dir.path().join("00000000000000000000.txnindex");
        let len = std::fs::metadata(&file).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut index = TxnIndex::open(dir.path(), 0).unwrap();
        assert_eq!(index.entries().len(), 2);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 68);
        index.truncate_from(15).unwrap();
        assert_eq!(index.entries(), &[entry(0, 0, 5)]);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 34);
    }
}
