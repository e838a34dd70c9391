//! The broker's log directories (`log.dirs`, JBOD as in Kafka's KIP-858): one `LogManager`
//! per directory, each with its directory id from its `meta.properties`, and the choices
//! that span them: where a new partition goes (the directory with the fewest partitions, as
//! Kafka's `LogManager.nextLogDirs`), that no partition is in two directories at start, and
//! which directory's checkpoints an entry belongs in (each directory keeps its own, as Kafka's
//! do, so a directory can be moved or lost without the others' files naming its partitions).
//!
//! Owns: the list of directories and the placement rule. May call: `manager`, `log`. Must
//! never: keep logs (the partition layer owns them) or decide which partitions exist.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::checkpoint::CheckpointEntry;
use super::cleaning_progress::CleaningProgress;
use super::error::LogError;
use super::future::resolve_futures;
use super::log::{Log, LogConfig};
use super::manager::LogManager;
use super::volume::VolumeSpace;

/// One configured log directory.
#[derive(Debug)]
pub(crate) struct LogDir {
    /// KIP-858's directory id, from the directory's meta.properties.
    pub(crate) id: Uuid,
    manager: LogManager,
}

impl LogDir {
    pub(crate) fn path(&self) -> &Path {
        self.manager.dir()
    }

    pub(crate) fn volume_space(&self) -> Result<VolumeSpace, LogError> {
        self.manager.volume_space()
    }
}

#[derive(Debug)]
pub(crate) struct LogDirs {
    dirs: Vec<LogDir>,
}

impl LogDirs {
    /// Opens every directory (created if missing) and reads its checkpoints; `dirs` is in
    /// configuration order, which breaks placement ties. Opens no log.
    pub(crate) fn open(dirs: &[(PathBuf, Uuid)]) -> Result<LogDirs, LogError> {
        let dirs = dirs
            .iter()
            .map(|(path, id)| {
                Ok(LogDir {
                    id: *id,
                    manager: LogManager::open(path)?,
                })
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        for d in &dirs {
            tracing::info!(dir = %d.path().display(), directory_id = %super::meta_properties::directory_id_string(d.id), "log dir");
        }
        // Before any log opens: a log dir move a crash interrupted is finished or undone.
        let managers: Vec<&LogManager> = dirs.iter().map(|d| &d.manager).collect();
        resolve_futures(&managers)?;
        Ok(LogDirs { dirs })
    }

    pub(crate) fn dirs(&self) -> &[LogDir] {
        &self.dirs
    }

    /// Opens every partition log of every directory (see `LogManager::load_all`); a partition
    /// found in two directories stops the start, as in Kafka: which copy is right is not a
    /// guess to make.
    pub(crate) fn load_all(
        &self,
        config_for: impl Fn(&str) -> Option<LogConfig> + Sync,
    ) -> Result<Vec<(String, i32, Log)>, LogError> {
        let mut all = Vec::new();
        let mut seen: HashMap<(String, i32), PathBuf> = HashMap::new();
        for dir in &self.dirs {
            for (topic, partition, log) in dir.manager.load_all(&config_for)? {
                if let Some(first) = seen.insert((topic.clone(), partition), dir.path().to_path_buf()) {
                    return Err(LogError::DuplicateLog {
                        topic,
                        partition,
                        first,
                        second: dir.path().to_path_buf(),
                    });
                }
                all.push((topic, partition, log));
            }
        }
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Ok(all)
    }

    /// Creates a new, empty partition log in the directory `next_dir` picks given how many
    /// partitions each directory holds now (`counts`, in directory order).
    pub(crate) fn create(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
        counts: &[usize],
    ) -> Result<Log, LogError> {
        self.dirs[next_dir(counts, self.dirs.len())]
            .manager
            .create(topic, partition, config)
    }

    /// Creates a new, empty partition log in directory `dir` (AlterReplicaLogDirs named it).
    pub(crate) fn create_in(
        &self,
        dir: usize,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Log, LogError> {
        self.dirs[dir].manager.create(topic, partition, config)
    }

    /// Creates an empty future log of the partition in directory `dir` (AlterReplicaLogDirs).
    pub(crate) fn create_future(
        &self,
        dir: usize,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Log, LogError> {
        self.dirs[dir].manager.create_future(topic, partition, config)
    }

    /// The index of the directory a partition directory lies in (its parent), if it is one of
    /// ours.
    pub(crate) fn index_of(&self, partition_dir: &Path) -> Option<usize> {
        let parent = partition_dir.parent()?;
        self.dirs.iter().position(|d| d.path() == parent)
    }

    /// The high watermarks of every directory's last checkpoint.
    pub(crate) fn read_high_watermarks(&self) -> Result<Vec<CheckpointEntry>, LogError> {
        let mut all = Vec::new();
        for dir in &self.dirs {
            all.extend(dir.manager.read_high_watermarks()?);
        }
        Ok(all)
    }

    /// Writes each directory's `recovery-point-offset-checkpoint` from the entries whose log
    /// is in it (`(partition dir, entry)`); every directory is written, so one that lost its
    /// partitions gets an empty file rather than a stale one.
    pub(crate) fn write_recovery_checkpoints(&self, points: Vec<(PathBuf, CheckpointEntry)>) -> Result<(), LogError> {
        self.each_dir(points, |m, entries| m.write_recovery_checkpoint(entries))
    }

    /// Writes each directory's `replication-offset-checkpoint`.
    pub(crate) fn write_high_watermarks(&self, marks: Vec<(PathBuf, CheckpointEntry)>) -> Result<(), LogError> {
        self.each_dir(marks, |m, entries| m.write_high_watermarks(entries))
    }

    /// Writes each directory's `log-start-offset-checkpoint`.
    pub(crate) fn write_log_starts(&self, starts: Vec<(PathBuf, CheckpointEntry)>) -> Result<(), LogError> {
        self.each_dir(starts, |m, entries| m.write_log_starts(entries))
    }

    /// Writes each directory's cleaner checkpoints.
    pub(crate) fn write_cleaning(
        &self,
        progress: Vec<(PathBuf, (String, i32, CleaningProgress))>,
    ) -> Result<(), LogError> {
        self.each_dir(progress, |m, entries| m.write_cleaning(entries))
    }

    /// Splits `(partition dir, entry)` by directory and hands each directory its share. Every
    /// directory is tried even after one fails (a failed disk must not stop the others'
    /// checkpoints); the first failure is returned.
    fn each_dir<E>(
        &self,
        entries: Vec<(PathBuf, E)>,
        write: impl Fn(&LogManager, &[E]) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let mut per_dir: Vec<Vec<E>> = self.dirs.iter().map(|_| Vec::new()).collect();
        for (partition_dir, entry) in entries {
            match self.index_of(&partition_dir) {
                Some(i) => per_dir[i].push(entry),
                None => {
                    tracing::warn!(dir = %partition_dir.display(), "log outside every log dir left out of the checkpoint")
                }
            }
        }
        let mut first_failure = None;
        for (dir, entries) in self.dirs.iter().zip(per_dir) {
            if let Err(e) = write(&dir.manager, &entries) {
                tracing::warn!(dir = %dir.path().display(), error = %e, "checkpoint failed");
                first_failure.get_or_insert(e);
            }
        }
        first_failure.map_or(Ok(()), Err)
    }
}

/// Kafka's placement of a new replica: the directory holding the fewest partitions (counting
/// each directory `counts` has no entry for as empty); the first in configuration order on a
/// tie, so a fresh broker fills its directories round-robin.
pub(crate) fn next_dir(counts: &[usize], dirs: usize) -> usize {
    (0..dirs.max(1))
        .min_by_key(|&i| (counts.get(i).copied().unwrap_or(0), i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{append, batch_of, config};

    fn open(paths: &[&Path]) -> LogDirs {
        let dirs: Vec<(PathBuf, Uuid)> = paths.iter().map(|p| (p.to_path_buf(), Uuid::new_v4())).collect();
        LogDirs::open(&dirs).unwrap()
    }

    #[test]
    fn new_replicas_go_to_the_directory_with_fewest_partitions() {
        assert_eq!(next_dir(&[0, 0, 0], 3), 0);
        assert_eq!(next_dir(&[1, 0, 0], 3), 1);
        assert_eq!(next_dir(&[1, 1, 0], 3), 2);
        assert_eq!(next_dir(&[5, 2, 2], 3), 1);
        assert_eq!(next_dir(&[3], 3), 1, "a directory with no count holds nothing");
        assert_eq!(next_dir(&[], 1), 0);
        // Filled round-robin from empty.
        let mut counts = vec![0; 3];
        let mut order = Vec::new();
        for _ in 0..6 {
            let i = next_dir(&counts, 3);
            counts[i] += 1;
            order.push(i);
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn checkpoints_are_written_per_directory_and_read_back_across_all() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dirs = open(&[a.path(), b.path()]);
        let mut logs = Vec::new();
        for (topic, counts) in [("x", [0, 0]), ("y", [1, 0])] {
            let mut log = dirs.create(topic, 0, config(), &counts).unwrap();
            append(&mut log, batch_of(3, 0), 0);
            logs.push(log);
        }
        assert_eq!(dirs.index_of(logs[0].dir()), Some(0));
        assert_eq!(dirs.index_of(logs[1].dir()), Some(1));
        let marks = logs
            .iter()
            .zip(["x", "y"])
            .map(|(log, t)| (log.dir().to_path_buf(), (t.to_string(), 0, log.log_end_offset())))
            .collect();
        dirs.write_high_watermarks(marks).unwrap();
        let in_a = std::fs::read_to_string(a.path().join(super::super::manager::HIGH_WATERMARK_CHECKPOINT)).unwrap();
        let in_b = std::fs::read_to_string(b.path().join(super::super::manager::HIGH_WATERMARK_CHECKPOINT)).unwrap();
        assert_eq!((in_a.as_str(), in_b.as_str()), ("0\n1\nx 0 3\n", "0\n1\ny 0 3\n"));
        let mut all = dirs.read_high_watermarks().unwrap();
        all.sort();
        assert_eq!(all, [("x".to_string(), 0, 3), ("y".to_string(), 0, 3)]);
        // Nothing left in b: its file is emptied, not left stale.
        dirs.write_high_watermarks(vec![(logs[0].dir().to_path_buf(), ("x".into(), 0, 3))])
            .unwrap();
        let in_b = std::fs::read_to_string(b.path().join(super::super::manager::HIGH_WATERMARK_CHECKPOINT)).unwrap();
        assert_eq!(in_b, "0\n0\n");
    }

    #[test]
    fn logs_of_every_directory_load_and_a_partition_in_two_directories_is_refused() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dirs = open(&[a.path(), b.path()]);
        for (topic, counts) in [("x", [0, 0]), ("y", [1, 0]), ("z", [1, 1])] {
            let mut log = dirs.create(topic, 0, config(), &counts).unwrap();
            append(&mut log, batch_of(2, 0), 0);
            log.close().unwrap();
        }
        let dirs = open(&[a.path(), b.path()]);
        let loaded: Vec<(String, usize)> = dirs
            .load_all(|_| Some(config()))
            .unwrap()
            .into_iter()
            .map(|(t, _, log)| (t, dirs.index_of(log.dir()).unwrap()))
            .collect();
        assert_eq!(loaded, [("x".into(), 0), ("y".into(), 1), ("z".into(), 0)]);
        std::fs::create_dir(b.path().join("x-0")).unwrap();
        let dirs = open(&[a.path(), b.path()]);
        assert!(matches!(
            dirs.load_all(|_| Some(config())),
            Err(LogError::DuplicateLog { partition: 0, .. })
        ));
    }
}
