//! The controller's Raft log on local disk: the entries, the vote, and the committed and purged
//! log ids, in one directory.
//!
//! Owns the files in that directory:
//! - `entries`: records `[u32 BE payload length][u32 BE crc32c of payload][payload]`, the payload
//!   being one serde_json-encoded entry. Appends go at the end, truncation cuts the end, and
//!   purging leaves a dead prefix that is rewritten away once it is large; past that prefix,
//!   indexes strictly increase along the file.
//! - `vote.json`, `committed.json`, `purged.json`: each replaced atomically (tmp, fsync, rename,
//!   fsync dir).
//!
//! May call: std fs, on tokio's blocking pool. Must never: report an append as flushed before it
//! is fsync'd, or read a damaged vote/committed/purged file as "absent".
//!
//! Every live entry is also held in memory (the metadata log is small, and purged behind
//! snapshots), so reads never touch the disk.

// `StorageError` is openraft's and every trait method returns it; boxing it internally only to
// unbox it at the trait boundary buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, DefensiveError, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig,
    StorageError, StorageIOError, Violation, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;

const ENTRIES_FILE: &str = "entries";
const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";
const PURGED_FILE: &str = "purged.json";

/// Length and checksum, each a big-endian u32.
const HEADER_LEN: u64 = 8;

/// Below this many dead bytes a rewrite costs more than the space it gives back.
const COMPACT_MIN_DEAD_BYTES: u64 = 1024 * 1024;

/// A durable Raft log in one directory. See the module docs for the files.
///
/// Entries must be `Clone` because reads hand out copies of the in-memory log.
pub(crate) struct FileLogStore<C: RaftTypeConfig> {
    dir: PathBuf,
    inner: Arc<Mutex<Inner<C>>>,
}

impl<C: RaftTypeConfig> Debug for FileLogStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLogStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A clone shares the log: it is the reader openraft's replication tasks get.
impl<C: RaftTypeConfig> Clone for FileLogStore<C> {
    fn clone(&self) -> Self {
        FileLogStore {
            dir: self.dir.clone(),
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Stored<E> {
    entry: E,
    /// Where the entry's record starts in `entries`.
    offset: u64,
}

/// Entries by index.
type Entries<E> = BTreeMap<u64, Stored<E>>;

struct Inner<C: RaftTypeConfig> {
    dir: PathBuf,
    /// `entries`, read-write; every write seeks to `entries_len` first.
    file: File,
    /// Bytes of whole records in `entries`.
    entries_len: u64,
    /// Entries after the last purged one.
    entries: Entries<C::Entry>,
    last_purged: Option<LogId<C::NodeId>>,
    /// Why writes are refused: a write failed or panicked, so the files and the memory may
    /// disagree. Openraft shuts the node down on any storage error; this only keeps a caller that
    /// carries on from making it worse.
    failed: Option<String>,
}

impl<C> FileLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    /// Opens (creating if need be) the log in `dir` and loads its entries into memory.
    ///
    /// A torn record at the end of `entries` (a crash during an append) is cut off. A damaged
    /// `purged.json`, or a record whose checksum holds but which does not decode, is an error.
    pub(crate) fn open(dir: &Path) -> Result<FileLogStore<C>, io::Error> {
        let inner = Inner::<C>::open(dir)?;
        Ok(FileLogStore {
            dir: dir.to_path_buf(),
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// Runs a write on the blocking pool (they fsync) with the state locked, so that writes are
    /// serialized with each other and with readers.
    async fn write<T, F>(
        &self,
        subject: ErrorSubject<C::NodeId>,
        verb: ErrorVerb,
        op: F,
    ) -> Result<T, StorageError<C::NodeId>>
    where
        F: FnOnce(&mut Inner<C>) -> Result<T, StorageError<C::NodeId>> + Send + 'static,
        T: Send + 'static,
    {
        let mut inner = Arc::clone(&self.inner).lock_owned().await;
        if let Some(reason) = &inner.failed {
            let reason = format!("an earlier write to the Raft log failed, so writes are refused: {reason}");
            return Err(StorageIOError::new(subject, verb, AnyError::error(reason)).into());
        }
        let joined = tokio::task::spawn_blocking(move || {
            // Stays set if `op` panics: the unwind drops the guard with the state half-changed.
            inner.failed = Some("a write did not complete".to_string());
            let result = op(&mut inner);
            inner.failed = result.as_ref().err().map(ToString::to_string);
            result
        })
        .await;
        joined.map_err(|e| StorageIOError::new(subject, verb, AnyError::new(&e)))?
    }

    /// Runs a read of a small file on the blocking pool, ordered after any write in progress.
    async fn read_file<T, F>(&self, subject: ErrorSubject<C::NodeId>, op: F) -> Result<T, StorageError<C::NodeId>>
    where
        F: FnOnce(&Inner<C>) -> Result<T, StorageError<C::NodeId>> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner).lock_owned().await;
        let joined = tokio::task::spawn_blocking(move || op(&inner)).await;
        joined.map_err(|e| StorageIOError::new(subject, ErrorVerb::Read, AnyError::new(&e)))?
    }
}

impl<C> Inner<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    fn open(dir: &Path) -> io::Result<Self> {
        let dir_existed = dir.try_exists().map_err(|e| at(e, "look for", dir))?;
        fs::create_dir_all(dir).map_err(|e| at(e, "create", dir))?;
        if !dir_existed {
            // Otherwise a crash could lose the new directory, and every entry fsync'd inside it.
            sync_dir(parent_dir(dir))?;
        }

        let last_purged: Option<LogId<C::NodeId>> = read_json(&dir.join(PURGED_FILE))?;

        let path = dir.join(ENTRIES_FILE);
        let file_existed = path.try_exists().map_err(|e| at(e, "look for", &path))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| at(e, "open", &path))?;
        if !file_existed {
            sync_dir(dir)?;
        }
        let (entries, entries_len) = replay::<C>(&mut file, &path, last_purged.as_ref())?;

        Ok(Inner {
            dir: dir.to_path_buf(),
            file,
            entries_len,
            entries,
            last_purged,
            failed: None,
        })
    }

    fn entries_path(&self) -> PathBuf {
        self.dir.join(ENTRIES_FILE)
    }

    fn last_log_id(&self) -> Option<LogId<C::NodeId>> {
        match self.entries.values().next_back() {
            Some(last) => Some(last.entry.get_log_id().clone()),
            None => self.last_purged.clone(),
        }
    }

    fn read_range<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<C::Entry> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => match s.checked_add(1) {
                Some(s) => s,
                None => return Vec::new(),
            },
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => None,
        };
        // `BTreeMap::range` panics on an inverted range; openraft treats it as empty.
        let found = match end {
            Some(end) if end <= start => return Vec::new(),
            Some(end) => self.entries.range(start..end),
            None => self.entries.range(start..),
        };
        found.map(|(_, stored)| stored.entry.clone()).collect()
    }

    fn append(&mut self, entries: Vec<C::Entry>) -> Result<(), StorageError<C::NodeId>> {
        // Gaps are allowed, and so is appending at or below the purge point: openraft's storage
        // suite does both. Going back behind a present entry is not, since truncation and replay
        // rely on the live entries' indexes increasing along the file.
        let mut prev = self.entries.values().next_back().map(|s| s.entry.get_log_id().clone());
        let mut records = Vec::new();
        let mut staged = Vec::with_capacity(entries.len());
        for entry in entries {
            let log_id = entry.get_log_id().clone();
            if prev.as_ref().is_some_and(|p| log_id.index <= p.index) {
                let violation = Violation::LogsNonConsecutive {
                    prev,
                    next: log_id.clone(),
                };
                return Err(DefensiveError::new(ErrorSubject::Log(log_id), violation).into());
            }
            let payload = serde_json::to_vec(&entry)
                .map_err(|e| StorageIOError::write_log_entry(log_id.clone(), AnyError::new(&e)))?;
            let len = u32::try_from(payload.len()).map_err(|_| {
                let reason = format!("entry of {} bytes does not fit a record", payload.len());
                StorageIOError::write_log_entry(log_id.clone(), AnyError::error(reason))
            })?;
            let offset = self.entries_len + records.len() as u64;
            records.extend_from_slice(&len.to_be_bytes());
            records.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
            records.extend_from_slice(&payload);
            staged.push(Stored { entry, offset });
            prev = Some(log_id);
        }
        if staged.is_empty() {
            return Ok(());
        }

        let path = self.entries_path();
        self.file
            .seek(SeekFrom::Start(self.entries_len))
            .and_then(|_| self.file.write_all(&records))
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                StorageError::from_io_error(ErrorSubject::Logs, ErrorVerb::Write, at(e, "append to", &path))
            })?;

        self.entries_len += records.len() as u64;
        for stored in staged {
            self.entries.insert(stored.entry.get_log_id().index, stored);
        }
        Ok(())
    }

    fn truncate(&mut self, since: &LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let Some(cut) = self.entries.range(since.index..).next().map(|(_, s)| s.offset) else {
            return Ok(());
        };
        let path = self.entries_path();
        self.file
            .set_len(cut)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                StorageError::from_io_error(ErrorSubject::Logs, ErrorVerb::Delete, at(e, "truncate", &path))
            })?;
        self.entries_len = cut;
        self.entries.split_off(&since.index);
        Ok(())
    }

    fn purge(&mut self, upto: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // Openraft only moves the purge point forward; a stale call must not move it back.
        if self.last_purged.as_ref().is_some_and(|p| p.index >= upto.index) {
            return Ok(());
        }
        // Recorded first: replay skips what it covers, so a crash after this point loses nothing
        // that is still needed, whatever else has happened to `entries`.
        write_json_atomically(&self.dir, PURGED_FILE, &upto)
            .map_err(|e| StorageError::from_io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.entries = match upto.index.checked_add(1) {
            Some(first_kept) => self.entries.split_off(&first_kept),
            None => BTreeMap::new(),
        };
        self.last_purged = Some(upto);
        self.compact_if_worthwhile()
            .map_err(|e| StorageError::from_io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    /// Rewrites `entries` without its dead prefix once that prefix is large and most of the file.
    fn compact_if_worthwhile(&mut self) -> io::Result<()> {
        let dead = self.entries.values().next().map_or(self.entries_len, |s| s.offset);
        if dead <= COMPACT_MIN_DEAD_BYTES || dead.saturating_mul(2) <= self.entries_len {
            return Ok(());
        }
        let path = self.entries_path();
        let tmp = tmp_path(&path);
        let live = self.entries_len - dead;
        let copy = || -> io::Result<File> {
            let mut src = File::open(&path).map_err(|e| at(e, "open", &path))?;
            src.seek(SeekFrom::Start(dead)).map_err(|e| at(e, "seek in", &path))?;
            // Read-write, because after the rename this handle is the log's.
            let mut dst = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| at(e, "create", &tmp))?;
            let copied = io::copy(&mut src.take(live), &mut dst).map_err(|e| at(e, "copy into", &tmp))?;
            if copied != live {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, format!("copied {copied} of {live} bytes"));
                return Err(at(e, "copy into", &tmp));
            }
            dst.sync_all().map_err(|e| at(e, "fsync", &tmp))?;
            fs::rename(&tmp, &path).map_err(|e| at(e, "rename onto", &path))?;
            Ok(dst)
        };
        let file = match copy() {
            Ok(file) => file,
            Err(e) => {
                // Best effort: the old file is intact, and a leftover tmp is overwritten next time.
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        self.file = file;
        self.entries_len = live;
        for stored in self.entries.values_mut() {
            stored.offset -= dead;
        }
        tracing::debug!(path = %path.display(), dropped_bytes = dead, kept_bytes = live, "compacted the Raft log");
        sync_dir(&self.dir)
    }
}

/// Reads `entries` from the start, cutting it at the first torn record. Returns the entries after
/// `purged` and the length of the whole records.
fn replay<C>(file: &mut File, path: &Path, purged: Option<&LogId<C::NodeId>>) -> io::Result<(Entries<C::Entry>, u64)>
where
    C: RaftTypeConfig,
    C::Entry: DeserializeOwned,
{
    let file_len = file.metadata().map_err(|e| at(e, "stat", path))?.len();
    file.seek(SeekFrom::Start(0)).map_err(|e| at(e, "seek in", path))?;
    let mut reader = BufReader::new(&mut *file);
    let mut entries = BTreeMap::new();
    let mut prev_index: Option<u64> = None;
    let mut offset = 0u64;
    let torn = loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            break None;
        }
        if remaining < HEADER_LEN {
            break Some("a partial record header");
        }
        let mut header = [0u8; HEADER_LEN as usize];
        reader.read_exact(&mut header).map_err(|e| at(e, "read", path))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        // No entry encodes to nothing, and a zero-filled tail (the size got to disk, the data
        // did not) would otherwise pass as a record with an empty payload and a zero checksum.
        if len == 0 {
            break Some("a zero-length record");
        }
        if u64::from(len) > remaining - HEADER_LEN {
            break Some("a record running past the end of the file");
        }
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload).map_err(|e| at(e, "read", path))?;
        if crc32c::crc32c(&payload) != crc {
            break Some("a record whose checksum does not match");
        }
        let entry: C::Entry = serde_json::from_slice(&payload).map_err(|e| {
            let reason = format!("record at offset {offset} has a good checksum but does not decode: {e}");
            at(io::Error::new(io::ErrorKind::InvalidData, reason), "replay", path)
        })?;
        // Purged records are skipped unchecked: the order of dead records does not matter.
        let index = entry.get_log_id().index;
        if purged.is_none_or(|p| index > p.index) {
            if let Some(prev) = prev_index.filter(|&prev| index <= prev) {
                let reason = format!("record at offset {offset} has index {index}, not after {prev}");
                return Err(at(io::Error::new(io::ErrorKind::InvalidData, reason), "replay", path));
            }
            prev_index = Some(index);
            entries.insert(index, Stored { entry, offset });
        }
        offset += HEADER_LEN + u64::from(len);
    };
    drop(reader);

    if let Some(reason) = torn {
        tracing::warn!(
            path = %path.display(),
            offset,
            dropped_bytes = file_len - offset,
            "cutting {reason} off the end of the Raft log, left by a write torn by a crash"
        );
        // Durably, before anything is appended after the cut.
        file.set_len(offset)
            .and_then(|()| file.sync_data())
            .map_err(|e| at(e, "truncate", path))?;
    }
    Ok((entries, offset))
}

impl<C> RaftLogReader<C> for FileLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        Ok(self.inner.lock().await.read_range(range))
    }
}

impl<C> RaftLogStorage<C> for FileLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let inner = self.inner.lock().await;
        Ok(LogState {
            last_purged_log_id: inner.last_purged.clone(),
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let vote = vote.clone();
        self.write(ErrorSubject::Vote, ErrorVerb::Write, move |inner| {
            write_json_atomically(&inner.dir, VOTE_FILE, &vote)
                .map_err(|e| StorageError::from_io_error(ErrorSubject::Vote, ErrorVerb::Write, e))
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.read_file(ErrorSubject::Vote, |inner| {
            read_json(&inner.dir.join(VOTE_FILE))
                .map_err(|e| StorageError::from_io_error(ErrorSubject::Vote, ErrorVerb::Read, e))
        })
        .await
    }

    async fn save_committed(&mut self, committed: Option<LogId<C::NodeId>>) -> Result<(), StorageError<C::NodeId>> {
        self.write(ErrorSubject::Store, ErrorVerb::Write, move |inner| {
            write_json_atomically(&inner.dir, COMMITTED_FILE, &committed)
                .map_err(|e| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, e))
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        self.read_file(ErrorSubject::Store, |inner| {
            // The file holds an `Option`: openraft may save "nothing committed".
            let saved: Option<Option<LogId<C::NodeId>>> = read_json(&inner.dir.join(COMMITTED_FILE))
                .map_err(|e| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
            Ok(saved.flatten())
        })
        .await
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<C::Entry> = entries.into_iter().collect();
        self.write(ErrorSubject::Logs, ErrorVerb::Write, move |inner| inner.append(entries))
            .await?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.write(ErrorSubject::Logs, ErrorVerb::Delete, move |inner| {
            inner.truncate(&log_id)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.write(ErrorSubject::Logs, ErrorVerb::Delete, move |inner| inner.purge(log_id))
            .await
    }
}

/// Names the action and the file in an io error, which by itself says neither.
fn at(e: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{action} {}: {e}", path.display()))
}

/// Reads a JSON file; a missing file is `None`, an unreadable or unparseable one an error.
fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(e, "read", path)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| at(io::Error::new(io::ErrorKind::InvalidData, e), "parse", path))
}

/// Replaces `dir/name` so that a reader, or a crash, sees the old contents or the new, never a mix.
fn write_json_atomically<T: Serialize>(dir: &Path, name: &str, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| at(io::Error::new(io::ErrorKind::InvalidData, e), "encode", &dir.join(name)))?;
    write_atomically(dir, name, &bytes)
}

/// Replaces `dir/name` with `bytes` atomically and durably (tmp file, fsync, rename, dir fsync).
pub(super) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let path = dir.join(name);
    let tmp = tmp_path(&path);
    let mut file = File::create(&tmp).map_err(|e| at(e, "create", &tmp))?;
    file.write_all(bytes).map_err(|e| at(e, "write", &tmp))?;
    file.sync_all().map_err(|e| at(e, "fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| at(e, "rename onto", &path))?;
    sync_dir(dir)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Makes creations and renames in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| at(e, "fsync", dir))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use openraft::storage::RaftLogStorageExt;
    use openraft::{Entry, EntryPayload};

    use super::*;

    openraft::declare_raft_types!(TestConfig: D = String, R = String);

    type Store = FileLogStore<TestConfig>;

    fn lid(term: u64, index: u64) -> LogId<u64> {
        openraft::testing::log_id(term, 0, index)
    }

    fn ent(term: u64, index: u64) -> Entry<TestConfig> {
        Entry {
            log_id: lid(term, index),
            payload: EntryPayload::Normal(format!("entry {index} of term {term}")),
        }
    }

    fn big_ent(index: u64, bytes: usize) -> Entry<TestConfig> {
        Entry {
            log_id: lid(1, index),
            payload: EntryPayload::Normal("x".repeat(bytes)),
        }
    }

    async fn all(store: &mut Store) -> Vec<Entry<TestConfig>> {
        store.try_get_log_entries(..).await.unwrap()
    }

    fn log_ids(entries: &[Entry<TestConfig>]) -> Vec<LogId<u64>> {
        entries.iter().map(|e| e.log_id).collect()
    }

    fn entries_len(dir: &Path) -> u64 {
        fs::metadata(dir.join(ENTRIES_FILE)).unwrap().len()
    }

    fn append_bytes(dir: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new().append(true).open(dir.join(ENTRIES_FILE)).unwrap();
        file.write_all(bytes).unwrap();
    }

    #[tokio::test]
    async fn reopen_restores_entries_vote_and_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((1..=5).map(|i| ent(1, i))).await.unwrap();
        store.save_vote(&Vote::new_committed(3, 7)).await.unwrap();
        store.save_committed(Some(lid(1, 4))).await.unwrap();
        let before = all(&mut store).await;
        drop(store);

        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(all(&mut store).await, before);
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new_committed(3, 7)));
        assert_eq!(store.read_committed().await.unwrap(), Some(lid(1, 4)));
        let state = store.get_log_state().await.unwrap();
        assert_eq!((state.last_purged_log_id, state.last_log_id), (None, Some(lid(1, 5))));
    }

    #[tokio::test]
    async fn fresh_store_has_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("new/raft")).unwrap();
        assert_eq!(store.read_vote().await.unwrap(), None);
        assert_eq!(store.read_committed().await.unwrap(), None);
        assert!(all(&mut store).await.is_empty());
        store.save_committed(None).await.unwrap();
        assert_eq!(store.read_committed().await.unwrap(), None);
    }

    #[tokio::test]
    async fn reopen_after_truncate_keeps_the_prefix_and_what_came_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((1..=10).map(|i| ent(1, i))).await.unwrap();
        store.truncate(lid(1, 6)).await.unwrap();
        assert_eq!(
            log_ids(&all(&mut store).await),
            (1..=5).map(|i| lid(1, i)).collect::<Vec<_>>()
        );
        store.blocking_append([ent(2, 6), ent(2, 7)]).await.unwrap();
        drop(store);

        let mut store = Store::open(dir.path()).unwrap();
        let mut want: Vec<_> = (1..=5).map(|i| lid(1, i)).collect();
        want.extend([lid(2, 6), lid(2, 7)]);
        assert_eq!(log_ids(&all(&mut store).await), want);
        assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(lid(2, 7)));

        // Truncating past the end changes nothing.
        store.truncate(lid(2, 8)).await.unwrap();
        assert_eq!(all(&mut store).await.len(), 7);
    }

    #[tokio::test]
    async fn reopen_after_purge_restores_the_purge_point() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((1..=10).map(|i| ent(1, i))).await.unwrap();
        store.purge(lid(1, 4)).await.unwrap();
        drop(store);

        let mut store = Store::open(dir.path()).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(lid(1, 4)), Some(lid(1, 10)))
        );
        assert_eq!(
            log_ids(&all(&mut store).await),
            (5..=10).map(|i| lid(1, i)).collect::<Vec<_>>()
        );

        // Past the last entry, as openraft does after installing a snapshot.
        store.purge(lid(2, 15)).await.unwrap();
        drop(store);
        let mut store = Store::open(dir.path()).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(lid(2, 15)), Some(lid(2, 15)))
        );
        assert!(all(&mut store).await.is_empty());

        // An older purge point does not move it back.
        store.purge(lid(1, 9)).await.unwrap();
        store.blocking_append([ent(2, 16)]).await.unwrap();
        drop(store);
        let mut store = Store::open(dir.path()).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(lid(2, 15)), Some(lid(2, 16)))
        );
        assert_eq!(log_ids(&all(&mut store).await), vec![lid(2, 16)]);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((1..=3).map(|i| ent(1, i))).await.unwrap();
        drop(store);
        let whole = entries_len(dir.path());

        // Garbage after the last record, then a zero-filled tail.
        for tail in [&[0xde, 0xad, 0xbe, 0xef, 0x01][..], &[0u8; 4096][..]] {
            append_bytes(dir.path(), tail);
            let mut store = Store::open(dir.path()).unwrap();
            assert_eq!(all(&mut store).await.len(), 3);
            assert_eq!(entries_len(dir.path()), whole);
        }

        // The last record cut short.
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(ENTRIES_FILE))
            .unwrap();
        file.set_len(whole - 3).unwrap();
        drop(file);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(log_ids(&all(&mut store).await), vec![lid(1, 1), lid(1, 2)]);
        let two = entries_len(dir.path());
        assert!(two < whole - 3);

        // Appends after the cut land where the torn record was.
        store.blocking_append([ent(3, 3)]).await.unwrap();
        drop(store);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(log_ids(&all(&mut store).await), vec![lid(1, 1), lid(1, 2), lid(3, 3)]);
        drop(store);

        // A flipped byte in the last record's payload.
        let mut bytes = fs::read(dir.path().join(ENTRIES_FILE)).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        fs::write(dir.path().join(ENTRIES_FILE), &bytes).unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(log_ids(&all(&mut store).await), vec![lid(1, 1), lid(1, 2)]);
        assert_eq!(entries_len(dir.path()), two);
    }

    #[tokio::test]
    async fn record_that_checks_out_but_does_not_decode_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append([ent(1, 1)]).await.unwrap();
        drop(store);
        let payload = b"not an entry";
        let mut record = (payload.len() as u32).to_be_bytes().to_vec();
        record.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
        record.extend_from_slice(payload);
        append_bytes(dir.path(), &record);
        let err = Store::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn damaged_vote_committed_or_purged_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        fs::write(dir.path().join(VOTE_FILE), b"{\"leader_id\":").unwrap();
        assert!(store.read_vote().await.is_err());
        fs::write(dir.path().join(COMMITTED_FILE), b"").unwrap();
        assert!(store.read_committed().await.is_err());
        drop(store);
        fs::write(dir.path().join(PURGED_FILE), b"garbage").unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn purge_rewrites_a_large_dead_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store
            .blocking_append((1..=30).map(|i| big_ent(i, 100_000)))
            .await
            .unwrap();
        let full = entries_len(dir.path());

        // A dead prefix under half of the file stays.
        store.purge(lid(1, 12)).await.unwrap();
        assert_eq!(entries_len(dir.path()), full);

        store.purge(lid(1, 20)).await.unwrap();
        assert!(entries_len(dir.path()) < full / 2, "file was not rewritten");
        assert!(!dir.path().join("entries.tmp").exists());
        let got = all(&mut store).await;
        assert_eq!(got, (21..=30).map(|i| big_ent(i, 100_000)).collect::<Vec<_>>());

        // Offsets follow the rewrite: truncation cuts at the right place.
        store.blocking_append([big_ent(31, 10)]).await.unwrap();
        store.truncate(lid(1, 28)).await.unwrap();
        store.blocking_append([ent(2, 28)]).await.unwrap();
        drop(store);

        let mut store = Store::open(dir.path()).unwrap();
        let mut want: Vec<_> = (21..=27).map(|i| lid(1, i)).collect();
        want.push(lid(2, 28));
        assert_eq!(log_ids(&all(&mut store).await), want);
        assert_eq!(
            store.get_log_state().await.unwrap().last_purged_log_id,
            Some(lid(1, 20))
        );
    }

    #[tokio::test]
    async fn reader_sees_appends_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut reader = store.get_log_reader().await;
        store.blocking_append((1..=4).map(|i| ent(1, i))).await.unwrap();
        assert_eq!(
            log_ids(&reader.try_get_log_entries(2..4).await.unwrap()),
            vec![lid(1, 2), lid(1, 3)]
        );
        assert_eq!(reader.try_get_log_entries(3..=3).await.unwrap().len(), 1);
        let (start, end) = (4, 2);
        assert!(reader.try_get_log_entries(start..end).await.unwrap().is_empty());
        store.truncate(lid(1, 3)).await.unwrap();
        assert_eq!(
            log_ids(&reader.try_get_log_entries(..).await.unwrap()),
            vec![lid(1, 1), lid(1, 2)]
        );
    }

    #[tokio::test]
    async fn append_that_does_not_move_forward_is_refused_and_stops_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((1..=3).map(|i| ent(1, i))).await.unwrap();
        let err = store.blocking_append([ent(2, 3)]).await.unwrap_err();
        assert!(matches!(err, StorageError::Defensive { .. }), "{err}");
        assert!(store.save_vote(&Vote::new(5, 1)).await.is_err());
        // Reads still work, and the log is as it was.
        assert_eq!(all(&mut store).await.len(), 3);
        drop(store);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(all(&mut store).await.len(), 3);
    }
}
