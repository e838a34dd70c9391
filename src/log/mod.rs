//! The storage engine: one segmented, append-only log per partition in Apache Kafka's own
//! on-disk format (`<base>.log` / `.index` / `.timeindex`, 20-digit base offsets), the
//! manager that owns a log directory and its checkpoints, and the log cleaner that compacts
//! the logs whose cleanup.policy includes `compact` (`cleaner`, `compaction`).
//!
//! Owns: every file under the log directory, and the cleaner's threads. May call: std,
//! `bytes`, `memmap2`, `crc32c`, `thiserror`, `tracing`, `rustix` (statvfs of the log
//! directory's file system), the codec libraries (`compression`), and kafka-protocol's
//! `Compression` type and record codec (only to find a record by timestamp, and to write and
//! read transaction markers, `control`). Must never: depend on any other module of this crate
//! (it is the bottom layer; the partitions reach the cleaner through `CleanTarget`), decode
//! records on the append or fetch path except where a topic's policy requires it
//! (`append_policy`: keys on a compacted topic, timestamp bounds) and then only by streaming,
//! recompute a producer's CRC except where Kafka does (a LogAppendTime stamp, a batch the
//! cleaner rebuilt), or know
//! about replication, topic metadata or the network. A `Log` does blocking file I/O and is not
//! synchronised: callers hold each one behind a lock and keep it off async worker threads
//! (`spawn_blocking`) when the I/O may be slow.

mod append_policy;
mod batch;
mod checkpoint;
pub(crate) mod clean_shutdown;
mod cleaned_batch;
mod cleaner;
mod cleaning_progress;
pub(crate) mod compaction;
pub(crate) mod compression;
mod config;
mod control;
mod dirs;
mod error;
mod future;
mod index;
pub(crate) mod leader_epoch;
#[allow(clippy::module_inception)]
mod log;
mod manager;
pub(crate) mod meta_properties;
mod offset_map;
mod producer_snapshots;
mod producer_state;
mod producer_txns;
mod read_map;
pub(crate) mod records;
mod recovery;
mod replication;
mod retention;
mod scan;
mod segment;
mod start_offset;
mod swap;
mod throttle;
mod time_index;
mod transactions;
mod txn_cleaning;
mod txn_index;
mod volume;

#[cfg(test)]
#[path = "tests/contract.rs"]
mod contract_tests;
#[cfg(test)]
pub(crate) mod testutil;

// The partition and api layers use these; nothing inside the module does, hence the allow.
#[allow(unused_imports)]
pub(crate) use self::{
    batch::{validate_batches, BatchHeader},
    cleaner::{CleanerConfig, CleanerStats, LogCleaner, Targets as CleanerTargets},
    compaction::CleanTarget,
    config::{CompactionConfig, TimestampPolicy},
    control::{encode_marker, marker_type, Marker},
    dirs::{LogDir, LogDirs},
    error::{LogError, RecordError},
    future::{
        apply as apply_future_step, catch_up_once, plan as plan_future_step, swap as swap_future, Step as FutureStep,
    },
    log::{search as search_batch, AppendInfo, Log, LogConfig, PendingFlush},
    recovery::RecoveryStats,
    throttle::Throttle,
    transactions::{Origin, TxnVerification},
    txn_index::AbortedTxn,
    volume::VolumeSpace,
};
