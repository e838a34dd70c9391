//! The one error type of the storage engine.
//!
//! Owns: `LogError` and the helper that attaches an operation and a path to an I/O error.
//! May call: std only. Must never: know Kafka error codes; the api layer maps variants to codes
//! (see `LogError::is_storage_failure` for the split between "the caller's fault" and "ours").

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub(crate) enum LogError {
    /// The producer's bytes are damaged: CRC mismatch, a length that is too small or runs past
    /// the buffer, a truncated batch.
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    /// The bytes are intact but not acceptable: wrong magic, bad record count or offset delta.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("record batch of {size} bytes is larger than the maximum of {max} bytes")]
    MessageTooLarge { size: usize, max: u32 },
    /// Recompressing into the topic's codec stopped once the batch passed the limit.
    #[error("record batch recompressed into the topic's compression.type would pass the maximum of {max} bytes")]
    RecompressedTooLarge { max: u32 },
    #[error("offset {offset} is out of range: the log holds [{log_start}, {log_end})")]
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    #[error("log storage I/O failed: {0}")]
    Io(#[from] io::Error),
    /// An I/O error with what we were doing and on which file.
    #[error("{op} {}: {source}", path.display())]
    IoAt {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Data already on our disk is inconsistent (found after open, e.g. by a read).
    #[error("corrupt log file {} at byte {position}: {reason}", path.display())]
    CorruptLog {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("corrupt checkpoint file {} (line {line}): {reason}", path.display())]
    CorruptCheckpoint { path: PathBuf, line: usize, reason: String },
    #[error("invalid partition name {topic:?} / {partition}: {reason}")]
    InvalidPartition {
        topic: String,
        partition: i32,
        reason: &'static str,
    },
    /// A log directory's `meta.properties` that cannot be trusted: unparseable, or naming
    /// another node, cluster or directory than the others.
    #[error("{}: {reason}", path.display())]
    MetaProperties { path: PathBuf, reason: String },
    /// A partition found in two log directories at start (Kafka refuses this too).
    #[error("partition {topic}-{partition} is in two log directories: {} and {}", first.display(), second.display())]
    DuplicateLog {
        topic: String,
        partition: i32,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("partition directory {} already exists", .0.display())]
    AlreadyExists(PathBuf),
    #[error("producer {producer_id} epoch {epoch} is older than its current epoch {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("producer {producer_id} sent sequence {sequence} after {last:?}")]
    OutOfOrderSequence {
        producer_id: i64,
        sequence: i32,
        last: Option<i32>,
    },
    #[error("producer {producer_id} is unknown here and its batch starts at sequence {sequence}, not 0")]
    UnknownProducerId { producer_id: i64, sequence: i32 },
    /// Records the topic's policy refuses (a keyless record on a compacted topic, a CreateTime
    /// out of bounds), each with its index in its batch: Kafka's record errors.
    #[error("{message}")]
    RecordsRejected {
        invalid_timestamp: bool,
        message: String,
        records: Vec<RecordError>,
    },
    /// A transactional write outside a transaction the coordinator knows of, or the reverse.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    #[error("marker of producer {producer_id} from coordinator epoch {coordinator_epoch}, older than {current}")]
    TransactionCoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current: i32,
    },
}

/// One record refused on append, as a Produce response reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordError {
    /// Its position in its batch.
    pub(crate) index: i32,
    pub(crate) message: String,
}

impl LogError {
    /// True when the broker's storage failed (disk error, on-disk corruption), false when the
    /// caller's input was refused. The first maps to KAFKA_STORAGE_ERROR and should take the
    /// log offline; the second to a per-request error code.
    pub(crate) fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            LogError::Io(_) | LogError::IoAt { .. } | LogError::CorruptLog { .. } | LogError::CorruptCheckpoint { .. }
        )
    }
}

/// Attaches "what we were doing, to which file" to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T, LogError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T, LogError> {
        self.map_err(|source| LogError::IoAt {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_told_apart_from_refused_input() {
        let io = io::Error::other("disk on fire");
        assert!(Err::<(), _>(io)
            .at("fsync log", Path::new("/x/0.log"))
            .unwrap_err()
            .is_storage_failure());
        let corrupt = LogError::CorruptLog {
            path: "/x".into(),
            position: 3,
            reason: "bad".into(),
        };
        assert!(corrupt.is_storage_failure());
        assert!(!LogError::CorruptMessage("crc".into()).is_storage_failure());
        assert!(!LogError::MessageTooLarge { size: 2, max: 1 }.is_storage_failure());
        let out = LogError::OffsetOutOfRange {
            offset: 9,
            log_start: 0,
            log_end: 3,
        };
        assert!(!out.is_storage_failure());
        assert_eq!(out.to_string(), "offset 9 is out of range: the log holds [0, 3)");
    }
}
