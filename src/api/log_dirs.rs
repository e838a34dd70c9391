//! DescribeLogDirs, what `kafka-log-dirs --describe` and the Admin's `describeLogDirs` ask:
//! for each of this broker's log directories (its absolute path, in `log.dirs` order), every
//! partition it holds there (or those the request names) with its size on disk and offset lag,
//! and, from v4, the total and usable bytes of the file system the directory is on.
//!
//! As in Kafka 4.4 (`ReplicaManager.describeLogDirs`): the offset lag is how far the log end
//! is behind the high watermark (0 for a leader, and so for every partition here while Sluice
//! has no followers), no log is a future one, topics with no partition to report are left out,
//! and a directory whose file system cannot be read is reported with its error and nothing
//! else. The metadata log is not a partition and is not listed.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

use super::Ctx;
use crate::log::LogDir;
use crate::replica::Partition;

/// From v4 the response carries the file system's total and usable bytes.
const VOLUME_SPACE_FROM_VERSION: i16 = 4;

pub(super) fn describe_log_dirs(ctx: &Ctx, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let replicas = &ctx.broker.replicas;
    let by_dir = replicas.partitions_by_dir();
    let results = replicas
        .log_dirs()
        .iter()
        .zip(by_dir)
        .map(|(dir, partitions)| describe_dir(ctx, dir, &partitions, req.topics.as_deref()))
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

fn describe_dir(
    ctx: &Ctx,
    dir: &LogDir,
    partitions: &[Arc<Partition>],
    wanted: Option<&[DescribableLogDirTopic]>,
) -> DescribeLogDirsResult {
    let result = DescribeLogDirsResult::default().with_log_dir(StrBytes::from_string(absolute(dir.path())));
    match dir.volume_space() {
        Ok(space) => {
            let result = result.with_topics(topics(partitions, wanted));
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

/// The partitions to report, by topic (both in order): every one, or those `wanted` names
/// (null asks for all; a topic with an empty partition list asks for none of it).
fn topics(
    partitions: &[Arc<Partition>],
    wanted: Option<&[DescribableLogDirTopic]>,
) -> Vec<DescribeLogDirsTopic> {
    let wanted: Option<HashSet<(&str, i32)>> = wanted.map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.as_str(), *p)))
            .collect()
    });
    let mut by_topic: BTreeMap<&str, Vec<&Partition>> = BTreeMap::new();
    for p in partitions {
        if wanted.as_ref().is_none_or(|w| w.contains(&(p.topic.as_str(), p.index))) {
            by_topic.entry(p.topic.as_str()).or_default().push(p);
        }
    }
    by_topic
        .into_iter()
        .map(|(topic, mut ps)| {
            ps.sort_by_key(|p| p.index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(ps.into_iter().map(partition).collect())
        })
        .collect()
}

fn partition(p: &Partition) -> DescribeLogDirsPartition {
    DescribeLogDirsPartition::default()
        .with_partition_index(p.index)
        .with_partition_size(bytes(p.size_bytes()))
        .with_offset_lag((p.high_watermark() - p.log_end_offset()).max(0))
        .with_is_future_key(false)
}
