//! Log compaction through the broker: a compacted topic read back as the latest value per key
//! at its original offsets once the cleaner ran, and `__consumer_offsets` kept small under many commits with its group still loading after a
//! restart, the tombstones of a deleted group gone in the end.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// A cleaner that looks for work every 50 ms and cleans any dirt at all.
const FAST_CLEANER: &[&str] = &[
    "log.cleaner.backoff.ms=50",
    "log.cleaner.min.cleanable.ratio=0.01",
    "group.initial.rebalance.delay.ms=0",
    "offsets.topic.num.partitions=1",
];

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_compacted_topic_reads_back_the_latest_value_per_key_at_its_original_offset() {
    let broker = TestBroker::start(FAST_CLEANER).await;
    let mut c = broker.client().await;
    let configs = [("cleanup.policy", "compact"), ("segment.bytes", "4096")];
    assert_eq!(create_topic(&mut c, "t", 1, &configs).await, 0);
    let mut latest: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    for round in 0..20 {
        for chunk in (0..200).collect::<Vec<u32>>().chunks(20) {
            let kvs: Vec<(Vec<u8>, Option<Vec<u8>>)> = chunk
                .iter()
                .map(|k| {
                    let tombstone = round == 19 && k % 10 == 0;
                    let value = (!tombstone).then(|| format!("r{round}-{k}").into_bytes());
                    (format!("key-{k}").into_bytes(), value)
                })
                .collect();
            let refs: Vec<KeyValue<'_>> = kvs.iter().map(|(k, v)| (Some(k.as_slice()), v.as_deref())).collect();
            let (code, base) = produce(&mut c, "t", 0, keyed_batch(&refs, 1_000)).await;
            assert_eq!(code, 0);
            for (i, (k, v)) in kvs.into_iter().enumerate() {
                latest.insert(k, (base + i as i64, v));
            }
        }
    }
    // One more batch to leave the last round's segment behind the active one.
    produce(
        &mut c,
        "t",
        0,
        keyed_batch(&[(Some(b"roll"), Some(&[0u8; 4000][..]))], 1_000),
    )
    .await;
    produce(&mut c, "t", 0, keyed_batch(&[(Some(b"roll"), Some(b"x"))], 1_000)).await;
    let mut expected: Vec<StoredRecord> = latest
        .iter()
        .map(|(k, (o, v))| (*o, Some(Bytes::from(k.clone())), v.clone().map(Bytes::from)))
        .collect();
    expected.sort_by_key(|r| r.0);
    wait_for("the cleaner", Duration::from_secs(30), async || {
        let records = fetch_records(&mut c, "t", 0, 0).await;
        records
            .iter()
            .filter(|r| r.1.as_deref() != Some(b"roll"))
            .cloned()
            .collect::<Vec<_>>()
            == expected
    })
    .await;
    let text = broker.scrape().await;
    assert!(metric(&text, "sluice_log_cleaner_runs_total") >= 1.0, "{text}");
    assert!(metric(&text, "sluice_log_cleaner_bytes_read_total") > 0.0);
    assert!(
        text.contains("sluice_log_cleaner_dirty_ratio{partition=\"0\",topic=\"t\"}"),
        "{text}"
    );
}

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

fn commit_request(g: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group(g))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name("t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])])
}

/// `n` commits of `g`, pipelined a hundred at a time; every one must succeed.
async fn commit_many(c: &mut Client, g: &str, n: i64) {
    for start in (0..n).step_by(100) {
        let end = (start + 100).min(n);
        let mut frames = Vec::new();
        for offset in start..end {
            frames.extend_from_slice(&c.frame(8, &commit_request(g, offset)));
        }
        c.send_raw(&frames).await;
        for _ in start..end {
            let frame = c.read_frame().await.unwrap();
            let (_, resp) = Client::decode::<OffsetCommitRequest>(8, frame);
            assert_eq!(resp.topics[0].partitions[0].error_code, 0);
        }
    }
}

async fn committed(c: &mut Client, g: &str) -> i64 {
    let req = OffsetFetchRequest::default()
        .with_group_id(group(g))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name("t"))
            .with_partition_indexes(vec![0])]));
    c.send(7, &req).await.topics[0].partitions[0].committed_offset
}

fn offsets_log_bytes(data: &std::path::Path) -> (u64, Vec<u8>) {
    let mut size = 0;
    let mut all = Vec::new();
    for entry in std::fs::read_dir(data.join("__consumer_offsets-0")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            let bytes = std::fs::read(&path).unwrap();
            size += bytes.len() as u64;
            all.extend(bytes);
        }
    }
    (size, all)
}

#[tokio::test]
async fn consumer_offsets_stays_small_under_100k_commits_and_its_groups_load_after_a_restart() {
    let mut settings = FAST_CLEANER.to_vec();
    settings.extend(["offsets.topic.segment.bytes=65536", "log.cleaner.delete.retention.ms=0"]);
    let mut broker = TestBroker::start(&settings).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("busy"));
    assert_eq!(c.send(3, &find).await.error_code, 0);
    // A group that is deleted: its records must end up gone from the log.
    commit_many(&mut c, "doomed-group", 10).await;
    let deleted = c
        .send(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![group("doomed-group")]),
        )
        .await;
    assert_eq!(deleted.results[0].error_code, 0);
    commit_many(&mut c, "busy", 100_000).await;
    let raw = 100_000 * 60;
    wait_for(
        "the offsets partition to be compacted",
        Duration::from_secs(60),
        async || {
            let (size, all) = offsets_log_bytes(&broker.data);
            size < 300_000 && !all.windows(12).any(|w| w == b"doomed-group")
        },
    )
    .await;
    let (size, _) = offsets_log_bytes(&broker.data);
    assert!(size < raw / 20, "{size} bytes after {raw} bytes of commits");
    broker.restart(&settings).await;
    let mut c = broker.client().await;
    assert_eq!(c.send(3, &find).await.error_code, 0);
    let mut loaded = 0;
    wait_for("the group to load", Duration::from_secs(10), async || {
        loaded = committed(&mut c, "busy").await;
        loaded == 99_999
    })
    .await;
    assert_eq!(committed(&mut c, "doomed-group").await, -1);
}
