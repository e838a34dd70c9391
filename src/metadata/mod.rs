//! Cluster metadata: the typed records of the metadata log, the image they replay into, and
//! the service that plans, commits and publishes changes.
//!
//! May call: the metadata log store (and through it `log`). Must never call the replica layer
//! or the API layer: the broker wires the image into them after a commit.

pub(crate) mod image;
pub(crate) mod records;
pub(crate) mod store;
pub(crate) mod topic_config;
pub(crate) mod topics;

use std::sync::{Arc, Mutex, RwLock};

pub(crate) use image::{MetadataImage, TopicImage};
pub(crate) use records::MetadataRecord;
pub(crate) use store::{LocalMetadataLog, MetadataLog, StoreError};

/// Why a metadata change was refused or failed. Mapped to Kafka codes in `crate::error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MetadataError {
    #[error("{0}")]
    InvalidTopic(String),
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Apply(#[from] image::ApplyError),
    /// The change is committed, but this broker could not create its partitions of it.
    #[error("committed, but local partitions could not be created: {0}")]
    LocalStorage(String),
}

/// Holds the current image and commits changes through the metadata log.
#[derive(Debug)]
pub(crate) struct Metadata {
    image: RwLock<Arc<MetadataImage>>,
    log: Box<dyn MetadataLog>,
    /// Serialises plan → append → publish, so each plan sees the image the previous one left.
    changes: Mutex<()>,
}

impl Metadata {
    /// Replays the whole log into a fresh image.
    pub(crate) fn open(log: Box<dyn MetadataLog>) -> Result<Metadata, MetadataError> {
        let mut image = MetadataImage::default();
        for record in log.read_all()? {
            image.apply(&record)?;
        }
        Ok(Metadata {
            image: RwLock::new(Arc::new(image)),
            log,
            changes: Mutex::new(()),
        })
    }

    /// The current image: a snapshot that never changes under the caller.
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.image.read().expect("image lock").clone()
    }

    /// Plans a change against the current image, makes it durable, then publishes the new
    /// image. Returns the image after the change (unchanged when the plan is empty).
    pub(crate) fn commit<F>(&self, plan: F, now_ms: i64) -> Result<Arc<MetadataImage>, MetadataError>
    where
        F: FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, MetadataError>,
    {
        let _serial = self.changes.lock().expect("metadata change lock");
        let current = self.image();
        let records = plan(&current)?;
        if records.is_empty() {
            return Ok(current);
        }
        // Apply to a copy first: a plan that does not apply must never reach the log.
        let mut next = MetadataImage::clone(&current);
        for r in &records {
            next.apply(r)?;
        }
        self.log.append(&records, now_ms)?;
        let next = Arc::new(next);
        *self.image.write().expect("image lock") = next.clone();
        Ok(next)
    }
}
