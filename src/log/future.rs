//! Future logs (AlterReplicaLogDirs, as Kafka's): the copy of a partition's log that is built
//! in another log directory of the same broker, under `<topic>-<partition>.<unique>-future`,
//! caught up from the current log, then swapped in for it.
//!
//! The swap is ordered so that a crash at any point leaves one whole log: (1) the future log
//! is flushed and closed; (2) the current directory is renamed to `...-delete` (and the rename
//! made durable); (3) the future directory is renamed to `<topic>-<partition>`. At start,
//! `resolve_futures` finishes or undoes what a crash interrupted: a future log whose partition
//! still has a current log was not swapped in and is discarded (the move is asked again); one
//! whose partition has no current log passed step (2) and so is complete: it becomes the log.
//!
//! Owns: the future directory names, the catch-up rule (`next_step`, pure) and the swap. May
//! call: `log`, `manager`, std. Must never: swap in a future log that is not at the current
//! log's end (the caller holds the partition lock across the last copy and the swap).

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::error::{IoContext, LogError};
use super::log::{remove_deleted_dir, unique_suffix, Log, LogConfig, DELETED_SUFFIX};
use super::manager::{parse_partition_dir, LogManager};

pub(crate) const FUTURE_SUFFIX: &str = "-future";

/// `<topic>-<partition>.<unique>-future` -> (topic, partition).
pub(crate) fn parse_future_dir(name: &str) -> Option<(String, i32)> {
    let stem = name.strip_suffix(FUTURE_SUFFIX)?;
    let (partition_dir, unique) = stem.rsplit_once('.')?;
    if unique.is_empty() || !unique.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    parse_partition_dir(partition_dir)
}

impl LogManager {
    /// Creates an empty future log for the partition in this directory.
    pub(crate) fn create_future(&self, topic: &str, partition: i32, config: LogConfig) -> Result<Log, LogError> {
        let current = self.partition_dir(topic, partition);
        let name = current.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let dir = current.with_file_name(format!("{name}.{}{FUTURE_SUFFIX}", unique_suffix()));
        fs::create_dir(&dir).at("create future log dir", &dir)?;
        Log::open(&dir, config, 0)
    }

    /// The future log directories in this directory.
    fn future_dirs(&self) -> Result<Vec<(String, i32, PathBuf)>, LogError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.dir()).at("list log dir", self.dir())? {
            let entry = entry.at("list log dir", self.dir())?;
            if let Some((t, p)) = entry.file_name().to_str().and_then(parse_future_dir) {
                out.push((t, p, entry.path()));
            }
        }
        Ok(out)
    }

    /// (topic, partition) of every current partition directory here.
    fn current_partitions(&self) -> Result<HashSet<(String, i32)>, LogError> {
        let mut out = HashSet::new();
        for entry in fs::read_dir(self.dir()).at("list log dir", self.dir())? {
            let entry = entry.at("list log dir", self.dir())?;
            if let Some(tp) = entry.file_name().to_str().and_then(parse_partition_dir) {
                out.insert(tp);
            }
        }
        Ok(out)
    }
}

/// At start, before any log is opened: every future log is discarded if its partition has a
/// current log in one of `managers`, or else becomes the partition's log (see the module doc).
/// Returns how many were promoted.
pub(crate) fn resolve_futures(managers: &[&LogManager]) -> Result<usize, LogError> {
    let mut current = HashSet::new();
    for m in managers {
        current.extend(m.current_partitions()?);
    }
    let mut promoted = 0;
    for m in managers {
        for (topic, partition, dir) in m.future_dirs()? {
            if current.contains(&(topic.clone(), partition)) {
                tracing::info!(dir = %dir.display(), "discarding a future log whose move did not finish");
                discard(&dir)?;
                continue;
            }
            let target = m.partition_dir(&topic, partition);
            tracing::info!(from = %dir.display(), to = %target.display(), "finishing an interrupted log dir move");
            rename_durably(&dir, &target)?;
            current.insert((topic, partition));
            promoted += 1;
        }
    }
    Ok(promoted)
}

/// Renames `dir` out of the way (`-delete`, durably) and removes it: a crash half way leaves a
/// `-delete` directory, which the next start removes.
fn discard(dir: &Path) -> Result<(), LogError> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let doomed = dir.with_file_name(format!("{name}.{}{DELETED_SUFFIX}", unique_suffix()));
    rename_durably(dir, &doomed)?;
    remove_deleted_dir(&doomed);
    Ok(())
}

/// `rename` then fsync of the parent directory (or directories), so the rename survives a crash
/// before anything that depends on it is done.
fn rename_durably(from: &Path, to: &Path) -> Result<(), LogError> {
    fs::rename(from, to).at("rename log dir", from)?;
    for parent in [from.parent(), to.parent()].into_iter().flatten() {
        File::open(parent).and_then(|d| d.sync_all()).at("fsync dir", parent)?;
    }
    Ok(())
}

/// What the copier does next, from where the current and the future log stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CatchUp {
    /// The current log no longer has where the future one ends (retention, DeleteRecords):
    /// empty the future log and restart it at this offset.
    Restart(i64),
    /// The current log was cut below (or diverged from) the future one's end: cut the future
    /// log here.
    Truncate(i64),
    /// Copy the current log's batches from this offset.
    Copy(i64),
    /// Both end at the same offset: ready to swap (under the partition lock).
    CaughtUp,
}

/// Where each log stands, for `next_step`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ends {
    pub(crate) current_start: i64,
    pub(crate) current_end: i64,
    pub(crate) future_end: i64,
    /// Where the current log's history stops agreeing with the future log's: the current
    /// log's end of the future log's latest epoch (Kafka's OffsetForLeaderEpoch between the
    /// two); `None` while the future log is empty.
    pub(crate) agreed_until: Option<i64>,
}

/// The catch-up rule, as Kafka's alter-log-dirs fetcher applies it to its future replica.
pub(crate) fn next_step(e: Ends) -> CatchUp {
    if e.future_end < e.current_start {
        return CatchUp::Restart(e.current_start);
    }
    let keep = e.agreed_until.unwrap_or(e.future_end).min(e.current_end);
    if keep < e.future_end {
        return CatchUp::Truncate(keep);
    }
    if e.future_end == e.current_end {
        CatchUp::CaughtUp
    } else {
        CatchUp::Copy(e.future_end)
    }
}

/// The `Ends` of a current and a future log.
pub(crate) fn ends(current: &Log, future: &Log) -> Ends {
    Ends {
        current_start: current.log_start_offset(),
        current_end: current.log_end_offset(),
        future_end: future.log_end_offset(),
        agreed_until: future.latest_epoch().map(|e| {
            let (epoch, end) = current.end_offset_for_epoch(e);
            // The current log does not know the epoch at all: nothing of it is shared.
            if epoch < 0 {
                current.log_start_offset()
            } else {
                end
            }
        }),
    }
}

/// One catch-up step, planned under the current log's lock (`plan`, which reads at most
/// `max_bytes`) and applied to the future log after it is released (`apply`): the partition
/// lock is never held across a write to the future log, except in the final step before the
/// swap.
#[derive(Debug)]
pub(crate) enum Step {
    Restart(i64),
    Truncate(i64),
    Copy(Bytes),
    CaughtUp,
}

/// Under the current log's lock: the next step of `future`'s catch-up.
pub(crate) fn plan(current: &Log, future: &Log, max_bytes: usize) -> Result<Step, LogError> {
    Ok(match next_step(ends(current, future)) {
        CatchUp::Restart(offset) => Step::Restart(offset),
        CatchUp::Truncate(offset) => Step::Truncate(offset),
        CatchUp::Copy(offset) => Step::Copy(current.read(offset, max_bytes, i64::MAX, true)?),
        CatchUp::CaughtUp => Step::CaughtUp,
    })
}

/// Applies a step to the future log; returns the bytes it copied.
pub(crate) fn apply(future: &mut Log, step: &Step, now_ms: i64) -> Result<usize, LogError> {
    match step {
        Step::Restart(offset) => future.restart_from(*offset)?,
        Step::Truncate(offset) => future.truncate_diverged(*offset)?,
        Step::Copy(batches) if !batches.is_empty() => {
            future.append_as_follower(batches, now_ms)?;
            return Ok(batches.len());
        }
        Step::Copy(_) | Step::CaughtUp => {}
    }
    Ok(0)
}

/// `plan` then `apply`, for a caller that holds the current log throughout (the final step).
/// Returns whether the future log is caught up.
pub(crate) fn catch_up_once(current: &Log, future: &mut Log, max_bytes: usize, now_ms: i64) -> Result<bool, LogError> {
    let step = plan(current, future, max_bytes)?;
    apply(future, &step, now_ms)?;
    Ok(matches!(step, Step::CaughtUp))
}

/// Replaces `current` by `future`, which must be caught up (same log end): the log start,
/// epochs with no batches, and the cleaner's progress carry over; then the swap of the module
/// doc. Returns the log the partition keeps (the swapped-in one, in `future`'s directory under
/// the partition's name; or, if the swap did not happen, the current one, reopened if it had to
/// be closed; none if even that failed) and whether the swap happened. The old directory is
/// removed in the background.
pub(crate) fn swap(current: Log, future: Log) -> (Option<Log>, Result<(), LogError>) {
    if future.log_end_offset() != current.log_end_offset() {
        let error = LogError::InvalidRecord(format!(
            "future log ends at {}, current at {}",
            future.log_end_offset(),
            current.log_end_offset()
        ));
        return (Some(current), Err(error));
    }
    let (config, progress) = (current.config().clone(), current.cleaning_progress());
    let (log_start, end) = (current.log_start_offset(), current.log_end_offset());
    let epochs: Vec<(i32, i64)> = current
        .epoch_entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect();
    let future_dir = future.dir().to_path_buf();
    if let Err(e) = future.close() {
        return (Some(current), Err(e));
    }
    let current_dir = current.dir().to_path_buf();
    let recovery_point = current.recovery_point();
    drop(current);
    let name = current_dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let doomed = current_dir.with_file_name(format!("{name}.{}{DELETED_SUFFIX}", unique_suffix()));
    if let Err(e) = rename_durably(&current_dir, &doomed) {
        // Nothing moved: the current log stays, the future one goes at the next start.
        return (Log::open(&current_dir, config, recovery_point).ok(), Err(e));
    }
    let target = future_dir.with_file_name(&name);
    let opened_at = match rename_durably(&future_dir, &target) {
        Ok(()) => target,
        Err(e) => {
            // The future log is whole: use it where it is; the next start renames it.
            tracing::warn!(dir = %future_dir.display(), error = %e, "future log not renamed; serving it as is");
            future_dir
        }
    };
    let mut log = match Log::open(&opened_at, config, end) {
        Ok(log) => log,
        Err(error) => return (None, Err(error)),
    };
    log.restore_cleaning(progress);
    if let Err(e) = carry_over(&mut log, log_start, &epochs) {
        // The data is all there; only the start offset or an empty epoch may be off.
        tracing::warn!(dir = %opened_at.display(), error = %e, "moved log: log start or epochs not carried over");
    }
    std::thread::Builder::new()
        .name("log-delete".into())
        .spawn(move || remove_deleted_dir(&doomed))
        .map_err(|e| tracing::warn!(error = %e, "old log dir left for the next start to remove"))
        .ok();
    (Some(log), Ok(()))
}

/// What the copy of batches does not bring, applied to the swapped-in log: a log start inside
/// a segment, and the leader epochs of the old log that have no batch (a leader that appended
/// nothing: its epoch starts at the log end).
fn carry_over(log: &mut Log, log_start: i64, epochs: &[(i32, i64)]) -> Result<(), LogError> {
    log.restore_log_start(log_start)?;
    let latest = log.latest_epoch().unwrap_or(-1);
    for &(epoch, start) in epochs.iter().filter(|(e, _)| *e > latest) {
        log.assign_epoch(epoch, start)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::dirs::LogDirs;
    use crate::log::testutil::{append, batch_of, config, read_all};

    fn open(a: &Path, b: &Path) -> LogDirs {
        let ids = [
            (a.to_path_buf(), uuid::Uuid::from_u128(1)),
            (b.to_path_buf(), uuid::Uuid::from_u128(2)),
        ];
        LogDirs::open(&ids).unwrap()
    }

    fn copy_all(current: &Log, future: &mut Log) {
        // Small reads: several copy steps, as under a producer.
        while !catch_up_once(current, future, 200, 0).unwrap() {}
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("t-"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_crash_at_any_step_of_a_move_leaves_the_old_log_or_the_new_one_whole() {
        // 0: future created, 1: caught up, 2: current renamed away, 3: swapped.
        for crash_at in 0..4 {
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let dirs = open(a.path(), b.path());
            let mut current = dirs.create("t", 0, config(), &[0, 0]).unwrap();
            for i in 0..5 {
                append(&mut current, batch_of(3, i), 0);
            }
            current.assign_epoch(7, current.log_end_offset()).unwrap();
            let expected = read_all(&current);
            let mut future = dirs.create_future(1, "t", 0, config()).unwrap();
            match crash_at {
                0 => {}
                1 => copy_all(&current, &mut future),
                2 => {
                    copy_all(&current, &mut future);
                    future.close().unwrap();
                    let doomed = current.dir().with_file_name("t-0.abc-delete");
                    rename_durably(current.dir(), &doomed).unwrap();
                    drop(current);
                }
                _ => {
                    copy_all(&current, &mut future);
                    let (swapped, done) = swap(current, future);
                    done.unwrap();
                    let swapped = swapped.unwrap();
                    assert_eq!(read_all(&swapped), expected);
                    assert_eq!(dirs.index_of(swapped.dir()), Some(1));
                    assert_eq!(swapped.latest_epoch(), Some(7), "an epoch without batches carries over");
                    swapped.close().unwrap();
                }
            }
            drop(dirs);
            let dirs = open(a.path(), b.path());
            let loaded = dirs.load_all(|_| Some(config())).unwrap();
            assert_eq!(loaded.len(), 1, "crash at {crash_at}");
            let (_, _, log) = &loaded[0];
            let moved = crash_at >= 2;
            assert_eq!(
                dirs.index_of(log.dir()),
                Some(usize::from(moved)),
                "crash at {crash_at}"
            );
            assert_eq!(read_all(log), expected, "crash at {crash_at}");
            let (kept, other) = if moved {
                (b.path(), a.path())
            } else {
                (a.path(), b.path())
            };
            assert_eq!(names(kept), ["t-0"], "crash at {crash_at}");
            if crash_at < 3 {
                assert!(names(other).is_empty(), "crash at {crash_at}: {:?}", names(other));
            }
        }
    }

    #[test]
    fn a_future_log_follows_retention_and_truncation_of_the_current_one() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dirs = open(a.path(), b.path());
        let mut current = dirs.create("t", 0, config(), &[0, 0]).unwrap();
        for i in 0..4 {
            append(&mut current, batch_of(2, i), 0);
        }
        let mut future = dirs.create_future(1, "t", 0, config()).unwrap();
        copy_all(&current, &mut future);
        // The current log is cut (a follower truncating), then grows again.
        current.truncate_diverged(4).unwrap();
        current.append(&mut batch_of(5, 9), 1, 0).unwrap();
        assert!(matches!(plan(&current, &future, 1 << 20).unwrap(), Step::Truncate(4)));
        copy_all(&current, &mut future);
        assert_eq!(read_all(&future), read_all(&current));
        // DeleteRecords past the future's end: it restarts there.
        let mut fresh = dirs.create_future(1, "t", 0, config()).unwrap();
        current.roll().unwrap();
        current.append(&mut batch_of(1, 10), 1, 0).unwrap();
        current.advance_log_start(9, current.log_end_offset()).unwrap();
        assert!(matches!(plan(&current, &fresh, 1 << 20).unwrap(), Step::Restart(9)));
        copy_all(&current, &mut fresh);
        assert_eq!(fresh.log_start_offset(), 9);
        assert_eq!(read_all(&fresh), read_all(&current));
        let swapped = swap(current, fresh).0.unwrap();
        assert_eq!(swapped.log_start_offset(), 9);
    }

    fn ends(current_start: i64, current_end: i64, future_end: i64, agreed_until: Option<i64>) -> Ends {
        Ends {
            current_start,
            current_end,
            future_end,
            agreed_until,
        }
    }

    #[test]
    fn catch_up_copies_restarts_truncates_then_is_done() {
        assert_eq!(next_step(ends(0, 10, 0, None)), CatchUp::Copy(0));
        assert_eq!(next_step(ends(0, 10, 4, Some(10))), CatchUp::Copy(4));
        assert_eq!(next_step(ends(0, 10, 10, Some(10))), CatchUp::CaughtUp);
        // Retention went past the future log's end.
        assert_eq!(next_step(ends(6, 10, 4, Some(10))), CatchUp::Restart(6));
        assert_eq!(next_step(ends(5, 5, 0, None)), CatchUp::Restart(5));
        // The current log was cut (a follower truncating), or diverged at an epoch change.
        assert_eq!(next_step(ends(0, 7, 9, Some(9))), CatchUp::Truncate(7));
        assert_eq!(next_step(ends(0, 12, 9, Some(8))), CatchUp::Truncate(8));
        assert_eq!(next_step(ends(0, 12, 9, Some(12))), CatchUp::Copy(9));
    }

    #[test]
    fn future_dir_names_parse_back_to_their_partition() {
        assert_eq!(parse_future_dir("a-b-3.1f2e9c-future"), Some(("a-b".into(), 3)));
        assert_eq!(parse_future_dir("a-b-3"), None);
        assert_eq!(parse_future_dir("a-b-3.1f2e-delete"), None);
        assert_eq!(parse_future_dir("a-b-3.-future"), None);
    }
}
