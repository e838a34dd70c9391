//! Zero-copy reads of a segment's `.log`: a read-only memory map that fetches slice into
//! `Bytes`, instead of copying the file into a fresh (zeroed) buffer on every fetch.
//!
//! Owns: the mapping of one `.log`. The map is made larger than the file (twice its size, at
//! least 64 MiB) so a growing active segment is remapped only O(log n) times; only the written
//! prefix is ever sliced. A `Bytes` handed out keeps its mapping alive (an `Arc`), so deleting
//! or rolling the segment under a response in flight is safe.

use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};

use super::error::{IoContext, LogError};

/// Smallest mapping made: a fresh segment is remapped only after its first 64 MiB.
const MIN_MAP_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct ReadMap {
    map: Mutex<Option<Arc<Mmap>>>,
}

/// A range of a mapping, owned by the `Bytes` built on it.
struct MapSlice {
    map: Arc<Mmap>,
    range: Range<usize>,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

impl ReadMap {
    /// Bytes `[position, position + len)` of the file, which must lie within what has been
    /// written (`written` is the segment's size: the mapping is sized from it).
    pub(crate) fn slice(
        &self,
        file: &File,
        path: &Path,
        position: u64,
        len: usize,
        written: u64,
    ) -> Result<Bytes, LogError> {
        let end = position + len as u64;
        debug_assert!(end <= written, "a read past the written bytes of a segment");
        let map = self.covering(file, path, end, written)?;
        let range = position as usize..end as usize;
        Ok(Bytes::from_owner(MapSlice { map, range }))
    }

    /// A mapping at least `end` bytes long, remapping (twice the written size) when too short.
    fn covering(&self, file: &File, path: &Path, end: u64, written: u64) -> Result<Arc<Mmap>, LogError> {
        let mut current = self.map.lock().expect("read map lock");
        if let Some(map) = current.as_ref().filter(|m| m.len() as u64 >= end) {
            return Ok(map.clone());
        }
        let len = written.saturating_mul(2).max(MIN_MAP_BYTES).max(end);
        let map = Arc::new(map_read_only(file, path, len)?);
        *current = Some(map.clone());
        Ok(map)
    }
}

#[allow(unsafe_code)]
fn map_read_only(file: &File, path: &Path, len: u64) -> Result<Mmap, LogError> {
    let len = usize::try_from(len).map_err(|_| LogError::InvalidRecord("segment too large to map".into()))?;
    // SAFETY: the mapping may extend past the end of the file; only bytes already written (below
    // the segment's size, which never shrinks while the segment serves reads) are ever sliced,
    // so no access touches a page beyond EOF. Those bytes are never rewritten in place: a `.log`
    // is append-only. Recovery cuts a torn tail before any read, and follower truncation (the
    // replication issue) must drop this mapping (`ReadMap::reset`) before it shrinks the file.
    let map = unsafe { MmapOptions::new().len(len).map(file) };
    map.at("mmap log for reads", path)
}

impl ReadMap {
    /// Forgets the mapping (the next read maps the file again). Readers holding slices keep
    /// theirs alive. Also called every checkpoint, to bound the RSS of mapped pages.
    pub(crate) fn reset(&self) {
        *self.map.lock().expect("read map lock") = None;
    }
}
