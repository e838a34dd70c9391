//! The producer state of a log on disk: `<20-digit offset>.snapshot` files in the partition
//! directory (Kafka's name and format), written when a segment rolls and on flush, and the
//! rebuild on open from the newest usable snapshot plus the batch headers after it.
//!
//! Owns: snapshot files. May call: `producer_state`, `segment` (headers only). Must never:
//! fail an open because a snapshot is damaged; the log itself is the truth and is replayed.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{IoContext, LogError};
use super::log::Log;
use super::producer_state::ProducerState;

const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Snapshots kept besides the newest: one older, in case the newest is torn by a crash.
const SNAPSHOTS_KEPT: usize = 2;

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

/// Offsets of the snapshot files in `dir`, ascending.
fn list_snapshots(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir).at("list partition dir", dir)? {
        let name = entry.at("list partition dir", dir)?.file_name();
        let name = name.to_string_lossy();
        if let Some(offset) = name.strip_suffix(SNAPSHOT_SUFFIX).and_then(|n| n.parse::<i64>().ok()) {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

impl Log {
    /// Rebuilds producer state: the newest snapshot at or below the log end that decodes,
    /// then every batch header after it (and what each marker says), rebuilding the
    /// transaction indexes from there. Snapshots past the log end (a cut tail) are removed.
    pub(super) fn load_producer_state(&mut self) -> Result<(), LogError> {
        let end = self.log_end_offset();
        let mut state = ProducerState::default();
        let mut from = self.log_start_offset();
        for offset in list_snapshots(&self.dir)?.into_iter().rev() {
            let path = snapshot_path(&self.dir, offset);
            if offset > end {
                fs::remove_file(&path).at("remove stale snapshot", &path)?;
                continue;
            }
            if offset < from {
                break;
            }
            let bytes = fs::read(&path).at("read snapshot", &path)?;
            match ProducerState::decode_snapshot(&bytes) {
                Ok(s) => {
                    state = s;
                    from = offset;
                    break;
                }
                Err(reason) => tracing::warn!(snapshot = %path.display(), reason, "ignoring damaged producer snapshot"),
            }
        }
        let mut state = self.replay_producers(state, from)?;
        state.forget_below(self.log_start_offset());
        self.producers = state;
        Ok(())
    }

    /// Writes `<log end>.snapshot` if the state changed since the last one, and prunes old ones.
    pub(super) fn snapshot_producers(&mut self) -> Result<(), LogError> {
        if !self.producers.is_dirty() {
            return Ok(());
        }
        let offset = self.log_end_offset();
        let path = snapshot_path(&self.dir, offset);
        let tmp = path.with_extension("snapshot.tmp");
        fs::write(&tmp, self.producers.encode_snapshot()).at("write snapshot", &tmp)?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .at("fsync snapshot", &tmp)?;
        fs::rename(&tmp, &path).at("rename snapshot", &path)?;
        self.producers.mark_snapshotted();
        self.dir_dirty = true;
        self.prune_snapshots()
    }

    /// Keeps the newest snapshots and drops those below the log start.
    pub(super) fn prune_snapshots(&mut self) -> Result<(), LogError> {
        let offsets = list_snapshots(&self.dir)?;
        let keep_from = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
        for (i, offset) in offsets.iter().enumerate() {
            if i < keep_from || *offset < self.log_start_offset() {
                let path = snapshot_path(&self.dir, *offset);
                fs::remove_file(&path).at("remove old snapshot", &path)?;
            }
        }
        Ok(())
    }
}
