//! The Raft state machine: committed metadata changes applied to the metadata image, which is
//! published to the rest of the node through a watch channel.
//!
//! The image itself is not written on every apply: the Raft log is the durable record, and on
//! start openraft replays what came after the last snapshot. Snapshots are the image dumped as
//! the records that rebuild it (`MetadataImage::to_records`), written atomically to
//! `snapshot.json` so a restart (or a follower that fell behind the purged log) starts from it.

use std::fs;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use super::log_store::write_atomically;
use super::{ChangeOutcome, TypeConfig};
use crate::metadata::{Applied, MetadataImage, MetadataRecord};

type NodeId = u64;

/// The snapshot file: Raft's metadata plus the records that rebuild the image.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    records: Vec<MetadataRecord>,
}

/// The latest snapshot, shared by the state machine and its builders.
#[derive(Debug, Clone)]
struct Stored {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// What a snapshot is made of; a builder takes a copy, so the image it dumps cannot change
/// under it while the state machine goes on applying.
#[derive(Debug, Clone)]
struct State {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// The latest snapshot, shared with every builder.
    current: Arc<Mutex<Option<Stored>>>,
}

#[derive(Debug)]
pub(crate) struct StateMachine {
    state: State,
    publish: watch::Sender<Applied>,
}

const SNAPSHOT_FILE: &str = "snapshot.json";

fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()
}

impl StateMachine {
    /// Opens the state machine in `dir`, starting from the snapshot there if any.
    pub(crate) fn open(dir: &Path) -> Result<(StateMachine, watch::Receiver<Applied>), io::Error> {
        fs::create_dir_all(dir)?;
        let (publish, applied) = watch::channel(Applied::default());
        let mut sm = StateMachine {
            state: State {
                dir: dir.to_path_buf(),
                image: Arc::default(),
                last_applied: None,
                membership: StoredMembership::default(),
                current: Arc::default(),
            },
            publish,
        };
        let path = dir.join(SNAPSHOT_FILE);
        match fs::read(&path) {
            Ok(data) => {
                let file: SnapshotFile = serde_json::from_slice(&data)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
                sm.load(&file)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                info!(last_applied = ?sm.state.last_applied, "metadata snapshot loaded");
                // Followers are sent the records alone; the meta travels beside them.
                let data = serde_json::to_vec(&file.records)?;
                *sm.state.current.lock().expect("snapshot lock") = Some(Stored { meta: file.meta, data });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok((sm, applied))
    }

    fn load(&mut self, file: &SnapshotFile) -> Result<(), String> {
        let mut image = MetadataImage::default();
        for r in &file.records {
            image.apply(r).map_err(|e| e.to_string())?;
        }
        self.state.image = Arc::new(image);
        self.state.last_applied = file.meta.last_log_id;
        self.state.membership = file.meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        let applied = Applied {
            index: self.state.last_applied.map_or(0, |l| l.index),
            image: self.state.image.clone(),
        };
        self.publish.send_replace(applied);
    }

    /// Applies one change whole or not at all. A change that does not fit the image (planned
    /// against an image that was stale by the time it committed) is rejected the same way on
    /// every node, so all images stay identical.
    fn apply_change(&mut self, records: &[MetadataRecord]) -> ChangeOutcome {
        let mut next = MetadataImage::clone(&self.state.image);
        for r in records {
            if let Err(e) = next.apply(r) {
                warn!(error = %e, "metadata change rejected");
                return ChangeOutcome {
                    rejected: Some(e.to_string()),
                };
            }
        }
        self.state.image = Arc::new(next);
        ChangeOutcome { rejected: None }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ChangeOutcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            let outcome = match &entry.payload {
                EntryPayload::Blank => ChangeOutcome::default(),
                EntryPayload::Normal(change) => self.apply_change(&change.records),
                EntryPayload::Membership(m) => {
                    self.state.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    ChangeOutcome::default()
                }
            };
            self.state.last_applied = Some(entry.log_id);
            out.push(outcome);
        }
        self.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder(self.state.clone())
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let records: Vec<MetadataRecord> =
            serde_json::from_slice(&data).map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
        let file = SnapshotFile {
            meta: meta.clone(),
            records,
        };
        self.load(&file).map_err(|e| {
            io_error(
                subject.clone(),
                ErrorVerb::Read,
                io::Error::new(io::ErrorKind::InvalidData, e),
            )
        })?;
        store(&self.state.dir, &self.state.current, file, data)?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self.state.current.lock().expect("snapshot lock").clone();
        Ok(current.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Builds a snapshot of the image as it was when the builder was made.
#[derive(Debug)]
pub(crate) struct SnapshotBuilder(State);

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let snapshot_id = match self.0.last_applied {
            Some(l) => format!("{}-{}", l.leader_id.term, l.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: self.0.last_applied,
            last_membership: self.0.membership.clone(),
            snapshot_id,
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            records: self.0.image.to_records(),
        };
        // What goes over the wire to a follower is the records alone; the meta travels beside.
        let data = serde_json::to_vec(&file.records)
            .map_err(|e| io_error(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e))?;
        let stored = store(&self.0.dir, &self.0.current, file, data)?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

/// Writes `file` as the snapshot and makes it current, unless a snapshot at least as new
/// already is: openraft builds snapshots in a task of their own, which can finish after a
/// newer snapshot from the leader was installed, and must not replace it. Returns what is
/// current afterwards.
#[allow(clippy::result_large_err)] // openraft's StorageError is what the trait methods return.
fn store(
    dir: &Path,
    current: &Mutex<Option<Stored>>,
    file: SnapshotFile,
    data: Vec<u8>,
) -> Result<Stored, StorageError<NodeId>> {
    let mut current = current.lock().expect("snapshot lock");
    if let Some(c) = current.as_ref().filter(|c| c.meta.last_log_id >= file.meta.last_log_id) {
        return Ok(c.clone());
    }
    let subject = ErrorSubject::Snapshot(Some(file.meta.signature()));
    let bytes = serde_json::to_vec(&file).map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
    write_atomically(dir, SNAPSHOT_FILE, &bytes).map_err(|e| io_error(subject, ErrorVerb::Write, e))?;
    let stored = Stored { meta: file.meta, data };
    *current = Some(stored.clone());
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, EntryPayload};
    use tempfile::TempDir;
    use uuid::Uuid;

    use super::super::log_store::FileLogStore;
    use super::super::MetadataChange;
    use super::*;

    struct Builder;

    impl StoreBuilder<TypeConfig, FileLogStore<TypeConfig>, StateMachine, TempDir> for Builder {
        async fn build(&self) -> Result<(TempDir, FileLogStore<TypeConfig>, StateMachine), StorageError<NodeId>> {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = FileLogStore::open(dir.path()).expect("log store");
            let (sm, _) = StateMachine::open(dir.path()).expect("state machine");
            Ok((dir, log, sm))
        }
    }

    /// openraft's storage contract, against the log store and state machine the broker runs.
    #[test]
    fn passes_openraft_storage_suite() {
        Suite::<TypeConfig, FileLogStore<TypeConfig>, StateMachine, Builder, TempDir>::test_all(Builder).unwrap();
    }

    fn entry(index: u64, records: Vec<MetadataRecord>) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(MetadataChange { records }),
        }
    }

    fn topic(name: &str, id: Uuid) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: id,
            configs: Default::default(),
        }
    }

    #[tokio::test]
    async fn changes_apply_whole_or_not_at_all_and_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, applied) = StateMachine::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        let outcomes = sm
            .apply([
                entry(1, vec![topic("a", id)]),
                // The second record cannot apply (a second topic "a"): nothing of it may land.
                entry(2, vec![topic("b", Uuid::new_v4()), topic("a", Uuid::new_v4())]),
            ])
            .await
            .unwrap();
        assert!(outcomes[0].rejected.is_none());
        assert!(outcomes[1].rejected.is_some());
        let seen = applied.borrow().clone();
        assert_eq!(seen.index, 2);
        assert!(seen.image.topic("a").is_some() && seen.image.topic("b").is_none());
    }

    #[tokio::test]
    async fn a_snapshot_rebuilds_the_image_on_reopen_and_on_another_node() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, _) = StateMachine::open(dir.path()).unwrap();
        sm.apply([entry(1, vec![topic("a", Uuid::new_v4())])]).await.unwrap();
        let snapshot = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        let image = applied_image(&sm);

        let (reopened, applied) = StateMachine::open(dir.path()).unwrap();
        assert_eq!(*applied.borrow().image, *image);
        assert_eq!(reopened.state.last_applied, snapshot.meta.last_log_id);

        let other = tempfile::tempdir().unwrap();
        let (mut follower, applied) = StateMachine::open(other.path()).unwrap();
        follower
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(*applied.borrow().image, *image);
        let (_, applied) = StateMachine::open(other.path()).unwrap();
        assert_eq!(
            *applied.borrow().image,
            *image,
            "an installed snapshot survives a restart"
        );
    }

    fn applied_image(sm: &StateMachine) -> Arc<MetadataImage> {
        sm.state.image.clone()
    }
}
