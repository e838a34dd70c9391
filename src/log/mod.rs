//! The storage engine: one segmented, append-only log per partition in Apache Kafka's own
//! on-disk format (`<base>.log` / `.index` / `.timeindex`, 20-digit base offsets), and the
//! manager that owns a log directory and its `recovery-point-offset-checkpoint`.
//!
//! Owns: every file under the log directory. May call: std, `bytes`, `memmap2`, `crc32c`,
//! `thiserror`, `tracing`, `rustix` (statvfs of the log directory's file system), and
//! kafka-protocol's record decoder (only to find a record by timestamp). Must never: depend on any other module of this crate (it is the bottom layer),
//! decode or re-encode records on the append or fetch path, recompute a producer's CRC, or know
//! about replication, topic metadata or the network. A `Log` does blocking file I/O and is not
//! synchronised: callers hold each one behind a lock and keep it off async worker threads
//! (`spawn_blocking`) when the I/O may be slow.

mod batch;
mod checkpoint;
pub(crate) mod clean_shutdown;
pub(crate) mod compression;
mod error;
mod index;
pub(crate) mod leader_epoch;
#[allow(clippy::module_inception)]
mod log;
mod manager;
mod producer_snapshots;
mod producer_state;
mod read_map;
pub(crate) mod records;
mod recovery;
mod replication;
mod retention;
mod scan;
mod segment;
mod time_index;
mod volume;

#[cfg(test)]
mod testutil;

// The partition and api layers use these; nothing inside the module does, hence the allow.
#[allow(unused_imports)]
pub(crate) use self::{
    batch::{validate_batches, BatchHeader},
    error::LogError,
    log::{search as search_batch, AppendInfo, Log, LogConfig, PendingFlush},
    manager::LogManager,
    recovery::RecoveryStats,
    volume::VolumeSpace,
};
