//! A node's log directories at start and stop (`log.dirs`, several with JBOD): each one locked
//! against a second process, their `meta.properties` made to agree (one node, one cluster, a
//! distinct directory id each, KIP-858), the cluster id adopted from the metadata log, and the
//! clean-shutdown markers read from all of them.
//!
//! Owns: the `.lock` files and the start-time checks across directories. May call: `log`
//! (`meta_properties`, `clean_shutdown`), `metadata` (the image's cluster id), std. Must never:
//! open partition logs (`replica` does) or touch the metadata log inside the first directory.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::log::meta_properties::{self, MetaProperties};
use crate::log::{clean_shutdown, LogError};
use crate::metadata::MetadataImage;
use crate::server::StartError;

/// The metadata log's directory inside the first log dir (skipped when looking for logs).
const METADATA_DIR_PREFIX: &str = "__cluster_metadata";

/// The log directories of this node, locked, with their ids.
#[derive(Debug)]
pub(crate) struct DataDirs {
    /// `(path, directory id)` in `log.dirs` order; the first holds the metadata log.
    pub(crate) dirs: Vec<(PathBuf, Uuid)>,
    pub(crate) cluster_id: String,
    /// Whether the first directory had no meta.properties (a new node).
    pub(crate) fresh: bool,
    locks: Vec<File>,
}

impl DataDirs {
    /// Creates and locks every directory and reads (or writes) its meta.properties. They must
    /// name this node and one cluster; a directory without the file (new, or just added to
    /// `log.dirs`) gets one with the cluster's id and a new directory id, as does a file written
    /// before directory ids existed.
    pub(crate) fn open(paths: &[PathBuf], node_id: i32) -> Result<DataDirs, StartError> {
        if paths.is_empty() {
            return Err(StartError::MetaProperties("log.dirs names no directory".into()));
        }
        let distinct: HashSet<PathBuf> = paths
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or(p.clone()))
            .collect();
        if distinct.len() != paths.len() {
            return Err(StartError::MetaProperties("log.dirs names a directory twice".into()));
        }
        let locks = paths.iter().map(|p| lock(p)).collect::<Result<Vec<_>, _>>()?;
        let found = paths
            .iter()
            .map(|p| meta_properties::read(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(meta_error)?;
        let cluster_id = agreed_cluster(paths, &found, node_id)?;
        let mut ids = HashSet::new();
        let mut dirs = Vec::new();
        for (path, meta) in paths.iter().zip(&found) {
            let id = meta
                .as_ref()
                .and_then(|m| m.directory_id)
                .unwrap_or_else(meta_properties::new_directory_id);
            if !ids.insert(id) {
                return Err(StartError::MetaProperties(format!(
                    "{} has the directory.id of another log dir (copied?); give it a new one",
                    meta_properties::meta_path(path).display()
                )));
            }
            let wanted = MetaProperties {
                cluster_id: cluster_id.clone(),
                node_id,
                directory_id: Some(id),
            };
            if meta.as_ref() != Some(&wanted) {
                meta_properties::write(path, &wanted).map_err(meta_error)?;
            }
            dirs.push((path.clone(), id));
        }
        Ok(DataDirs {
            dirs,
            cluster_id,
            fresh: found[0].is_none(),
            locks,
        })
    }

    /// The `.lock` files, for the caller to hold as long as it uses the directories.
    pub(crate) fn take_locks(&mut self) -> Vec<File> {
        std::mem::take(&mut self.locks)
    }

    /// The directory of the metadata log (the first log dir).
    pub(crate) fn metadata_dir(&self) -> &Path {
        &self.dirs[0].0
    }

    /// The registration the last clean stop left, if every directory has its marker and they
    /// agree (Kafka trusts a stop only if all its log dirs were closed cleanly). Every marker
    /// is removed.
    pub(crate) fn take_clean_shutdown(&self) -> Option<String> {
        let tokens: Vec<Option<String>> = self.dirs.iter().map(|(p, _)| clean_shutdown::take(p)).collect();
        let first = tokens[0].clone()?;
        tokens.iter().all(|t| t.as_ref() == Some(&first)).then_some(first)
    }

    /// The cluster id is the metadata log's (the first controller's). A log directory that has
    /// partition logs of another cluster is refused: starting would delete them as unknown.
    /// Empty ones take the cluster's id.
    pub(crate) fn adopt_cluster_id(&mut self, image: &MetadataImage, node_id: i32) -> Result<(), StartError> {
        let Some(cluster) = image.cluster_id() else {
            return Ok(());
        };
        if cluster == self.cluster_id {
            return Ok(());
        }
        for (path, _) in &self.dirs {
            if has_logs(path)? {
                return Err(StartError::MetaProperties(format!(
                    "{} holds partition logs of cluster {}, but the controller quorum is cluster {cluster}",
                    path.display(),
                    self.cluster_id
                )));
            }
        }
        for (path, id) in &self.dirs {
            let meta = MetaProperties {
                cluster_id: cluster.to_string(),
                node_id,
                directory_id: Some(*id),
            };
            meta_properties::write(path, &meta).map_err(meta_error)?;
        }
        self.cluster_id = cluster.to_string();
        Ok(())
    }
}

/// The one cluster id the directories' files name (a new one when none has a file); every file
/// must name this node.
fn agreed_cluster(paths: &[PathBuf], found: &[Option<MetaProperties>], node_id: i32) -> Result<String, StartError> {
    let mut cluster: Option<&str> = None;
    for (path, meta) in paths.iter().zip(found) {
        let Some(meta) = meta else { continue };
        let file = meta_properties::meta_path(path);
        if meta.node_id != node_id {
            return Err(StartError::MetaProperties(format!(
                "{} says node.id={}, but this node is configured with node.id={node_id}",
                file.display(),
                meta.node_id
            )));
        }
        match cluster {
            Some(c) if c != meta.cluster_id => {
                return Err(StartError::MetaProperties(format!(
                    "{} says cluster.id={}, but another log dir says {c}",
                    file.display(),
                    meta.cluster_id
                )))
            }
            _ => cluster = Some(&meta.cluster_id),
        }
    }
    Ok(cluster.map_or_else(|| Uuid::new_v4().simple().to_string(), str::to_string))
}

fn has_logs(dir: &Path) -> Result<bool, StartError> {
    Ok(std::fs::read_dir(dir)
        .map_err(|source| StartError::DataDir {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(Result::ok)
        .any(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with(METADATA_DIR_PREFIX)))
}

fn meta_error(e: LogError) -> StartError {
    StartError::MetaProperties(e.to_string())
}

/// Creates the directory and takes an exclusive lock on it, as Kafka's `.lock` file does.
fn lock(dir: &Path) -> Result<File, StartError> {
    let io = |source| StartError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(io)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dirs: &[&tempfile::TempDir]) -> Vec<PathBuf> {
        dirs.iter().map(|d| d.path().join("logs")).collect()
    }

    #[test]
    fn every_log_dir_gets_meta_properties_with_one_cluster_and_its_own_id() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let all = paths(&[&a, &b, &c]);
        let opened = DataDirs::open(&all[..2], 7).unwrap();
        assert!(opened.fresh);
        let (cluster, ids) = (opened.cluster_id.clone(), opened.dirs.clone());
        assert_ne!(ids[0].1, ids[1].1);
        drop(opened);
        // Reopened with a third directory added: the same ids, the new one joins the cluster.
        let reopened = DataDirs::open(&all, 7).unwrap();
        assert!(!reopened.fresh);
        assert_eq!(reopened.cluster_id, cluster);
        assert_eq!(&reopened.dirs[..2], &ids[..]);
        let third = meta_properties::read(&all[2]).unwrap().unwrap();
        assert_eq!((third.cluster_id.as_str(), third.node_id), (cluster.as_str(), 7));
        assert_eq!(third.directory_id, Some(reopened.dirs[2].1));
    }

    #[test]
    fn log_dirs_of_another_node_or_cluster_or_a_copied_id_are_refused() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let all = paths(&[&a, &b]);
        drop(DataDirs::open(&all, 1).unwrap());
        assert!(matches!(DataDirs::open(&all, 2), Err(StartError::MetaProperties(_))));
        // A copied directory carries the same id.
        std::fs::copy(meta_properties::meta_path(&all[0]), meta_properties::meta_path(&all[1])).unwrap();
        assert!(matches!(DataDirs::open(&all, 1), Err(StartError::MetaProperties(m)) if m.contains("directory.id")));
        let other = MetaProperties {
            cluster_id: "other".into(),
            node_id: 1,
            directory_id: Some(meta_properties::new_directory_id()),
        };
        meta_properties::write(&all[1], &other).unwrap();
        assert!(matches!(DataDirs::open(&all, 1), Err(StartError::MetaProperties(m)) if m.contains("cluster.id")));
        assert!(matches!(
            DataDirs::open(&[all[0].clone(), all[0].clone()], 1),
            Err(StartError::MetaProperties(_))
        ));
    }

    #[test]
    fn a_stop_is_clean_only_if_every_log_dir_has_the_same_marker() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let all = paths(&[&a, &b]);
        let dirs = DataDirs::open(&all, 1).unwrap();
        clean_shutdown::mark(&all[0], "run1").unwrap();
        clean_shutdown::mark(&all[1], "run1").unwrap();
        assert_eq!(dirs.take_clean_shutdown().as_deref(), Some("run1"));
        assert_eq!(dirs.take_clean_shutdown(), None, "markers are taken");
        clean_shutdown::mark(&all[0], "run2").unwrap();
        assert_eq!(dirs.take_clean_shutdown(), None, "one dir without a marker: unclean");
    }
}
