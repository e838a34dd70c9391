//! The log manager: every partition log under one log directory, and the directory's
//! checkpoints: `recovery-point-offset-checkpoint`, `replication-offset-checkpoint` (high
//! watermarks), `log-start-offset-checkpoint` (start offsets moved into a segment),
//! `cleaner-offset-checkpoint` (where each compacted log's dirty part begins). An older
//! Sluice's `cleaner-delete-horizon-checkpoint` is deleted at open (see `cleaning_progress`).
//!
//! Owns: the mapping `<dir>/<topic>-<partition>` <-> (topic, partition), the checkpoint files,
//! opening logs at start (in parallel). May call: `log`, `checkpoint`, std, tracing. Must never:
//! keep the logs it opens (the partition layer owns them) or decide which partitions should
//! exist.

use super::checkpoint::{self, CheckpointEntry};
use super::cleaning_progress::CleaningProgress;
use super::error::{IoContext, LogError};
use super::log::{remove_deleted_dir, Log, LogConfig, DELETED_SUFFIX};
use super::volume::{volume_space, VolumeSpace};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread;

pub(crate) const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub(crate) const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";
pub(crate) const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub(crate) const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Where an older Sluice kept tombstones' delete horizons; now in the batches (KIP-534).
const OLD_CLEANER_HORIZON_CHECKPOINT: &str = "cleaner-delete-horizon-checkpoint";
/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME_BYTES: usize = 249;

#[derive(Debug)]
pub(crate) struct LogManager {
    dir: PathBuf,
    /// As read at open; only used to recover logs, so never updated.
    recovery_points: HashMap<(String, i32), i64>,
    /// Start offsets inside a segment, as read at open.
    log_starts: HashMap<(String, i32), i64>,
    /// The cleaner's progress per compacted log, as read at open.
    cleaning: HashMap<(String, i32), CleaningProgress>,
    /// Serialises checkpoint writers (they share the tmp file).
    checkpoint_lock: Mutex<()>,
}

type Opened = (String, i32, Result<Log, LogError>);

impl LogManager {
    /// Creates the directory if needed and reads its checkpoint. Opens no log.
    pub(crate) fn open(dir: &Path) -> Result<LogManager, LogError> {
        fs::create_dir_all(dir).at("create log dir", dir)?;
        let entries = checkpoint::read_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT))?;
        let recovery_points = entries.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
        let log_starts = checkpoint::read_checkpoint(&dir.join(LOG_START_CHECKPOINT))?
            .into_iter()
            .map(|(t, p, o)| ((t, p), o))
            .collect();
        Ok(LogManager {
            dir: dir.to_path_buf(),
            recovery_points,
            log_starts,
            cleaning: read_cleaning(dir)?,
            checkpoint_lock: Mutex::new(()),
        })
    }

    /// The log directory, as configured.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The total and usable bytes of the file system the log directory is on.
    pub(crate) fn volume_space(&self) -> Result<VolumeSpace, LogError> {
        volume_space(&self.dir)
    }

    /// Opens every partition directory on disk, each recovered from its checkpointed recovery
    /// point (0, i.e. a full scan, if it has none), on all cores. Directories whose name does
    /// not parse are skipped with a warning, and so are topics `config_for` answers `None`
    /// for (logs someone else owns, such as the metadata log). Sorted by (topic, partition).
    pub(crate) fn load_all(
        &self,
        config_for: impl Fn(&str) -> Option<LogConfig> + Sync,
    ) -> Result<Vec<(String, i32, Log)>, LogError> {
        let found = self.partition_dirs()?;
        let workers = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(found.len())
            .max(1);
        let queue = Mutex::new(found.into_iter());
        let opened: Mutex<Vec<Opened>> = Mutex::new(Vec::new());
        thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| self.open_from_queue(&queue, &opened, &config_for));
            }
        });
        let mut opened = opened.into_inner().unwrap_or_else(PoisonError::into_inner);
        opened.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        opened.into_iter().map(|(t, p, log)| Ok((t, p, log?))).collect()
    }

    fn open_from_queue(
        &self,
        queue: &Mutex<std::vec::IntoIter<(String, i32)>>,
        opened: &Mutex<Vec<Opened>>,
        config_for: &(impl Fn(&str) -> Option<LogConfig> + Sync),
    ) {
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((topic, partition)) = next else {
                return;
            };
            let Some(config) = config_for(&topic) else {
                continue;
            };
            let recovery_point = self
                .recovery_points
                .get(&(topic.clone(), partition))
                .copied()
                .unwrap_or(0);
            let key = (topic.clone(), partition);
            let log = Log::open(&self.partition_dir(&topic, partition), config, recovery_point).and_then(|mut log| {
                if let Some(&start) = self.log_starts.get(&key) {
                    log.restore_log_start(start)?;
                }
                if let Some(&progress) = self.cleaning.get(&key) {
                    log.restore_cleaning(progress);
                }
                Ok(log)
            });
            opened
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((topic, partition, log));
        }
    }

    /// (topic, partition) of every directory under the log dir whose name parses.
    fn partition_dirs(&self) -> Result<Vec<(String, i32)>, LogError> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).at("list log dir", &self.dir)? {
            let entry = entry.at("list log dir", &self.dir)?;
            if !entry.file_type().at("stat", &entry.path())?.is_dir() {
                continue;
            }
            if entry.file_name().to_string_lossy().ends_with(DELETED_SUFFIX) {
                // A deletion the last run did not finish.
                remove_deleted_dir(&entry.path());
                continue;
            }
            match entry.file_name().to_str().and_then(parse_partition_dir) {
                Some(tp) => found.push(tp),
                None => {
                    tracing::warn!(path = %entry.path().display(), "skipping directory that is not <topic>-<partition>")
                }
            }
        }
        Ok(found)
    }

    /// Creates a new, empty partition log. Fails if its directory already exists: an existing
    /// log is opened by `load_all`, never adopted silently.
    pub(crate) fn create(&self, topic: &str, partition: i32, config: LogConfig) -> Result<Log, LogError> {
        check_partition(topic, partition)?;
        let dir = self.partition_dir(topic, partition);
        match fs::create_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(LogError::AlreadyExists(dir)),
            other => other.at("create partition dir", &dir)?,
        }
        Log::open(&dir, config, 0)
    }

    pub(crate) fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.dir.join(format!("{topic}-{partition}"))
    }

    /// Atomically replaces the checkpoint with these (topic, partition, recovery point) entries.
    pub(crate) fn write_recovery_checkpoint(&self, points: &[CheckpointEntry]) -> Result<(), LogError> {
        let _guard = self.checkpoint_lock.lock().unwrap_or_else(PoisonError::into_inner);
        checkpoint::write_checkpoint(&self.dir.join(RECOVERY_POINT_CHECKPOINT), points)
    }

    /// The high watermarks of the last `write_high_watermarks` (none when never written).
    pub(crate) fn read_high_watermarks(&self) -> Result<Vec<CheckpointEntry>, LogError> {
        checkpoint::read_checkpoint(&self.dir.join(HIGH_WATERMARK_CHECKPOINT))
    }

    /// Atomically replaces `replication-offset-checkpoint` with these high watermarks.
    pub(crate) fn write_high_watermarks(&self, marks: &[CheckpointEntry]) -> Result<(), LogError> {
        let _guard = self.checkpoint_lock.lock().unwrap_or_else(PoisonError::into_inner);
        checkpoint::write_checkpoint(&self.dir.join(HIGH_WATERMARK_CHECKPOINT), marks)
    }

    /// Atomically replaces `log-start-offset-checkpoint` with these start offsets (Kafka
    /// lists only the logs whose start lies above their first segment's base).
    pub(crate) fn write_log_starts(&self, starts: &[CheckpointEntry]) -> Result<(), LogError> {
        let _guard = self.checkpoint_lock.lock().unwrap_or_else(PoisonError::into_inner);
        checkpoint::write_checkpoint(&self.dir.join(LOG_START_CHECKPOINT), starts)
    }

    /// Atomically replaces `cleaner-offset-checkpoint` (the first dirty offset of each
    /// compacted log the cleaner has been through).
    pub(crate) fn write_cleaning(&self, progress: &[(String, i32, CleaningProgress)]) -> Result<(), LogError> {
        let _guard = self.checkpoint_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let dirty: Vec<CheckpointEntry> = progress
            .iter()
            .filter_map(|(t, p, c)| c.first_dirty.map(|d| (t.clone(), *p, d)))
            .collect();
        checkpoint::write_checkpoint(&self.dir.join(CLEANER_CHECKPOINT), &dirty)
    }
}

/// The cleaner's checkpoint of a log dir, per log. The older horizon file goes: the horizons
/// now live in the batches, and a tombstone without one only waits longer (`cleaning_progress`).
fn read_cleaning(dir: &Path) -> Result<HashMap<(String, i32), CleaningProgress>, LogError> {
    let mut out: HashMap<(String, i32), CleaningProgress> = HashMap::new();
    for (t, p, offset) in checkpoint::read_checkpoint(&dir.join(CLEANER_CHECKPOINT))? {
        out.entry((t, p)).or_default().first_dirty = Some(offset);
    }
    let old = dir.join(OLD_CLEANER_HORIZON_CHECKPOINT);
    if old.exists() {
        fs::remove_file(&old).at("remove the old cleaner horizon checkpoint", &old)?;
    }
    Ok(out)
}

/// `<topic>-<partition>`, split at the last '-' (topics may contain '-').
pub(super) fn parse_partition_dir(name: &str) -> Option<(String, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    let partition: i32 = partition.parse().ok()?;
    check_partition(topic, partition).ok()?;
    Some((topic.to_string(), partition))
}

/// Kafka's legal topic names ([a-zA-Z0-9._-], at most 249 bytes, not "." or ".."); this is
/// also what keeps a name from escaping the log directory.
fn check_partition(topic: &str, partition: i32) -> Result<(), LogError> {
    let reason = if topic.is_empty() || topic.len() > MAX_TOPIC_NAME_BYTES {
        Some("topic name must be 1 to 249 characters")
    } else if topic == "." || topic == ".." {
        Some("topic name cannot be '.' or '..'")
    } else if !topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        Some("topic name may only contain ASCII letters, digits, '.', '_' and '-'")
    } else if partition < 0 {
        Some("partition must not be negative")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(LogError::InvalidPartition {
            topic: topic.to_string(),
            partition,
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{append, batch_of, config};

    #[test]
    fn leftover_of_an_unfinished_deletion_is_removed_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join("t-0.1a2b-delete");
        fs::create_dir(&leftover).unwrap();
        fs::write(leftover.join("00000000000000000000.log"), b"x").unwrap();
        let manager = LogManager::open(dir.path()).unwrap();
        assert!(manager.load_all(|_| Some(config())).unwrap().is_empty());
        assert!(!leftover.exists());
    }

    #[test]
    fn load_all_opens_dashed_topics_from_checkpoint_and_skips_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let manager = LogManager::open(dir.path()).unwrap();
        let mut points = Vec::new();
        for (topic, partition, records) in [("my-topic", 0, 3), ("my-topic", 12, 5), ("a", 2, 1)] {
            let mut log = manager.create(topic, partition, config()).unwrap();
            append(&mut log, batch_of(records, 0), 0);
            points.push((topic.to_string(), partition, log.log_end_offset()));
            log.close().unwrap();
        }
        manager.write_recovery_checkpoint(&points).unwrap();
        fs::create_dir(dir.path().join("not_a_partition")).unwrap();
        fs::create_dir(dir.path().join("bad-topic-x")).unwrap();
        fs::write(dir.path().join("stray-file-0"), b"x").unwrap();

        let manager = LogManager::open(dir.path()).unwrap();
        let loaded = manager.load_all(|_| Some(config())).unwrap();
        let summary: Vec<(String, i32, i64, usize)> = loaded
            .iter()
            .map(|(t, p, log)| {
                (
                    t.clone(),
                    *p,
                    log.log_end_offset(),
                    log.recovery_stats().segments_scanned,
                )
            })
            .collect();
        let expected = [("a", 2, 1), ("my-topic", 0, 3), ("my-topic", 12, 5)];
        let expected: Vec<_> = expected.iter().map(|&(t, p, e)| (t.to_string(), p, e, 0)).collect();
        assert_eq!(summary, expected);
    }

    #[test]
    fn create_refuses_existing_dirs_and_illegal_names() {
        let dir = tempfile::tempdir().unwrap();
        let manager = LogManager::open(dir.path()).unwrap();
        manager.create("t", 0, config()).unwrap();
        assert!(matches!(
            manager.create("t", 0, config()),
            Err(LogError::AlreadyExists(_))
        ));
        for (topic, partition) in [("../x", 0), ("", 0), ("..", 0), ("a b", 0), ("t", -1)] {
            let result = manager.create(topic, partition, config());
            assert!(matches!(result, Err(LogError::InvalidPartition { .. })), "{topic:?}");
        }
    }

    #[test]
    fn an_older_sluices_delete_horizon_file_goes_and_the_cleaner_checkpoint_stays() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(OLD_CLEANER_HORIZON_CHECKPOINT);
        fs::write(&old, "0\n1\nt 0 100 5 200\n").unwrap();
        checkpoint::write_checkpoint(&dir.path().join(CLEANER_CHECKPOINT), &[("t".to_string(), 0, 300)]).unwrap();
        let manager = LogManager::open(dir.path()).unwrap();
        assert!(!old.exists(), "horizons now live in the batches");
        assert_eq!(manager.cleaning[&("t".to_string(), 0)].first_dirty, Some(300));
    }

    #[test]
    fn partition_dir_name_splits_at_last_dash() {
        assert_eq!(parse_partition_dir("a-b-c-7"), Some(("a-b-c".to_string(), 7)));
        assert_eq!(
            parse_partition_dir("__consumer_offsets-49"),
            Some(("__consumer_offsets".to_string(), 49))
        );
        assert_eq!(parse_partition_dir("topic-x"), None);
        assert_eq!(parse_partition_dir("-3"), None);
        assert_eq!(parse_partition_dir("t-0.abc-delete"), None);
    }
}
