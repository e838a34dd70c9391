//! Several log directories on one broker (JBOD) over the wire: partitions placed on the
//! directory with the fewest, DescribeLogDirs listing each directory, AlterReplicaLogDirs moving
//! a replica (and refusing a directory that is not a log dir), the data readable after the move
//! and after a restart.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

fn alter(dir: &Path, topic: &str, partitions: &[i32]) -> AlterReplicaLogDirsRequest {
    AlterReplicaLogDirsRequest::default().with_dirs(vec![AlterReplicaLogDir::default()
        .with_path(StrBytes::from_string(dir.display().to_string()))
        .with_topics(vec![AlterReplicaLogDirTopic::default()
            .with_name(name(topic))
            .with_partitions(partitions.to_vec())])])
}

/// (log dir, [(topic, partition, is future)]) of every directory DescribeLogDirs reports.
async fn where_is(c: &mut Client) -> Vec<(PathBuf, Vec<(String, i32, bool)>)> {
    let resp = c.send(4, &DescribeLogDirsRequest::default().with_topics(None)).await;
    resp.results
        .iter()
        .map(|d| {
            assert_eq!(d.error_code, 0);
            assert!(d.total_bytes > 0 && d.usable_bytes > 0);
            let replicas = d
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.name.0.to_string(), p.partition_index, p.is_future_key))
                })
                .collect();
            (PathBuf::from(d.log_dir.as_str()), replicas)
        })
        .collect()
}

#[tokio::test]
async fn replicas_spread_over_log_dirs_and_move_between_them() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let dirs = format!("log.dirs={},{}", a.display(), b.display());
    let mut broker = TestBroker::start_in(&a, &[&dirs]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "moving", 1, &[]).await, 0);
    assert_eq!(create_topic(&mut c, "staying", 1, &[]).await, 0);
    let mut sent = Vec::new();
    for i in 0..200 {
        let value = format!("value-{i}");
        sent.push(value.clone().into_bytes());
        assert_eq!(
            produce(&mut c, "moving", 0, batch(&[value.as_bytes()], i, Compression::None))
                .await
                .0,
            0
        );
    }
    let placed = where_is(&mut c).await;
    assert_eq!(
        placed,
        [
            (a.clone(), vec![("moving".to_string(), 0, false)]),
            (b.clone(), vec![("staying".to_string(), 0, false)])
        ],
        "the second partition goes to the emptier dir"
    );

    // A directory that is not a log dir, and a partition that does not exist.
    let refused = c.send(2, &alter(&root.path().join("elsewhere"), "moving", &[0])).await;
    assert_eq!(
        refused.results[0].partitions[0].error_code,
        ResponseError::LogDirNotFound.code()
    );
    let unknown = c.send(2, &alter(&b, "moving", &[7])).await;
    assert_eq!(
        unknown.results[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    let resp = c.send(2, &alter(&b, "moving", &[0])).await;
    assert_eq!(resp.results[0].partitions[0].error_code, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = where_is(&mut c).await;
        if now[0].1.is_empty() && now[1].1.len() == 2 && now[1].1.iter().all(|r| !r.2) {
            break;
        }
        assert!(Instant::now() < deadline, "not moved: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fetch_all(&mut c, "moving", 0).await, sent);
    // Still takes writes where it is now.
    assert_eq!(
        produce(&mut c, "moving", 0, batch(&[b"after"], 999, Compression::None))
            .await
            .0,
        0
    );
    sent.push(b"after".to_vec());
    assert!(b.join("moving-0").is_dir());

    broker.restart(&[&dirs]).await;
    let mut c = broker.client().await;
    assert_eq!(fetch_all(&mut c, "moving", 0).await, sent);
    assert!(!a.join("moving-0").exists());
    let again = where_is(&mut c).await;
    assert!(again[1].1.contains(&("moving".to_string(), 0, false)), "{again:?}");
}
