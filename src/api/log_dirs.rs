//! DescribeLogDirs, what `kafka-log-dirs --describe` and the Admin's `describeLogDirs` ask:
//! for each of this broker's log directories (its absolute path, in `log.dirs` order), every
//! partition it holds there (or those the request names) with its size on disk and offset lag,
//! and, from v4, the total and usable bytes of the file system the directory is on.
//!
//! AlterReplicaLogDirs moves a replica to another of the broker's log dirs (`replica::
//! dir_moves` does the work); while it moves, DescribeLogDirs lists its future replica in the
//! target directory.
//!
//! As in Kafka 4.4 (`ReplicaManager.describeLogDirs`): the offset lag of a current replica is
//! how far its log end is behind the high watermark (0 for a leader), that of a future one how
//! far it is behind the current log's end; topics with no partition to report are left out,
//! and a directory whose file system cannot be read is reported with its error and nothing
//! else. The metadata log is not a partition and is not listed.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

use super::Ctx;
use crate::log::LogDir;
use crate::replica::{FutureReplica, Partition};

/// From v4 the response carries the file system's total and usable bytes.
const VOLUME_SPACE_FROM_VERSION: i16 = 4;

pub(super) fn describe_log_dirs(ctx: &Ctx, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let replicas = &ctx.broker.replicas;
    let mut by_dir: Vec<Vec<Entry>> = replicas
        .partitions_by_dir()
        .iter()
        .map(|ps| ps.iter().map(|p| current_entry(p)).collect())
        .collect();
    for f in replicas.future_replicas() {
        let current_end = replicas.get(&f.topic, f.partition).map(|p| p.log_end_offset());
        if let (Some(entries), Some(current_end)) = (by_dir.get_mut(f.dir), current_end) {
            entries.push(future_entry(&f, current_end));
        }
    }
    let results = replicas
        .log_dirs()
        .iter()
        .zip(by_dir)
        .map(|(dir, entries)| describe_dir(ctx, dir, entries, req.topics.as_deref()))
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

/// AlterReplicaLogDirs: each replica named starts moving to its directory in the background
/// (`kafka-log-dirs`/`kafka-reassign-partitions` watch it through DescribeLogDirs). A
/// directory that is not one of `log.dirs` fails all its replicas with LOG_DIR_NOT_FOUND.
pub(super) fn alter_replica_log_dirs(ctx: &Ctx, req: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse {
    let replicas = &ctx.broker.replicas;
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for dir in &req.dirs {
        for topic in &dir.topics {
            let partitions = topic
                .partitions
                .iter()
                .map(|&p| {
                    let code = match replicas.alter_log_dir(&topic.name.0, p, &dir.path) {
                        Ok(()) => 0,
                        Err(e) => ctx.code(&e),
                    };
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                })
                .collect();
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}

/// One replica in a log dir's listing: its topic, and what DescribeLogDirs says of it.
type Entry = (String, DescribeLogDirsPartition);

fn describe_dir(
    ctx: &Ctx,
    dir: &LogDir,
    entries: Vec<Entry>,
    wanted: Option<&[DescribableLogDirTopic]>,
) -> DescribeLogDirsResult {
    let result = DescribeLogDirsResult::default().with_log_dir(StrBytes::from_string(absolute(dir.path())));
    match dir.volume_space() {
        Ok(space) => {
            let result = result.with_topics(topics(entries, wanted));
            if ctx.version >= VOLUME_SPACE_FROM_VERSION {
                result
                    .with_total_bytes(bytes(space.total_bytes))
                    .with_usable_bytes(bytes(space.usable_bytes))
            } else {
                result
            }
        }
        Err(e) => {
            warn!(dir = %dir.path().display(), error = %e, "cannot describe the log directory");
            result.with_error_code(ctx.code(&e))
        }
    }
}

/// The directory as Kafka reports it: absolute, symlinks left as they are.
fn absolute(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// Kafka's `adjustForLargeFileSystems`: a size past i64 is reported as i64::MAX.
fn bytes(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The replicas to report, by topic (both in order, a current replica before a future one):
/// every one, or those `wanted` names (null asks for all; a topic with an empty partition
/// list asks for none of it).
fn topics(entries: Vec<Entry>, wanted: Option<&[DescribableLogDirTopic]>) -> Vec<DescribeLogDirsTopic> {
    let wanted: Option<HashSet<(&str, i32)>> = wanted.map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.as_str(), *p)))
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (topic, p) in entries {
        if wanted
            .as_ref()
            .is_none_or(|w| w.contains(&(topic.as_str(), p.partition_index)))
        {
            by_topic.entry(topic).or_default().push(p);
        }
    }
    by_topic
        .into_iter()
        .map(|(topic, mut ps)| {
            ps.sort_by_key(|p| (p.partition_index, p.is_future_key));
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(ps)
        })
        .collect()
}

/// A current replica: its lag is how far its log end is behind the high watermark.
fn current_entry(p: &Partition) -> Entry {
    let described = DescribeLogDirsPartition::default()
        .with_partition_index(p.index)
        .with_partition_size(bytes(p.size_bytes()))
        .with_offset_lag((p.high_watermark() - p.log_end_offset()).max(0))
        .with_is_future_key(false);
    (p.topic.clone(), described)
}

/// A future replica (a log dir move): its lag is how far it is behind the current log's end.
fn future_entry(f: &FutureReplica, current_end: i64) -> Entry {
    let described = DescribeLogDirsPartition::default()
        .with_partition_index(f.partition)
        .with_partition_size(bytes(f.size_bytes))
        .with_offset_lag((current_end - f.log_end_offset).max(0))
        .with_is_future_key(true);
    (f.topic.clone(), described)
}
