//! DeleteRecords over the wire: the log start offset moves (and the segments below it go),
//! fetch and ListOffsets honour it, it survives a restart, and Kafka's errors.

mod common;

use common::*;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

const EARLIEST: i64 = -2;

/// (error code, low watermark)
async fn delete_records(c: &mut Client, topic: &str, offset: i64) -> (i16, i64) {
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(offset)])]);
    let resp = c.send(2, &req).await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

fn segments(data: &std::path::Path, topic: &str) -> usize {
    std::fs::read_dir(data.join(format!("{topic}-0")))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count()
}

#[tokio::test]
async fn delete_records_moves_the_log_start_and_fetch_and_list_offsets_honour_it() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "t", 1, &[("segment.bytes", "200")]).await, 0);
    for i in 0..10u8 {
        let (code, _) = produce(&mut c, "t", 0, batch(&[&[b'a' + i; 40]], 1_000, Compression::None)).await;
        assert_eq!(code, 0);
    }
    let before = segments(&broker.data, "t");
    assert!(before > 3, "{before} segments");
    assert_eq!(delete_records(&mut c, "t", 4).await, (0, 4));
    assert!(
        segments(&broker.data, "t") < before,
        "segments below the start are deleted"
    );
    assert_eq!(list_offset(&mut c, "t", 0, EARLIEST).await.1, 4);
    let below = fetch(&mut c, "t", 0, 3).await;
    assert_eq!(below.error_code, ResponseError::OffsetOutOfRange.code());
    let at = fetch(&mut c, "t", 0, 4).await;
    assert_eq!((at.error_code, at.log_start_offset), (0, 4));
    assert_eq!(values(at.records.as_ref().unwrap())[0].0, 4);
    // Kafka's errors: past the high watermark, and nothing moves backwards.
    assert_eq!(
        delete_records(&mut c, "t", 11).await.0,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(delete_records(&mut c, "t", 2).await, (0, 4));
    // The start offset is checkpointed: a restart does not bring records back.
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(list_offset(&mut c, "t", 0, EARLIEST).await.1, 4);
    // -1: up to the high watermark.
    assert_eq!(delete_records(&mut c, "t", -1).await, (0, 10));
    assert_eq!(list_offset(&mut c, "t", 0, EARLIEST).await.1, 10);
    assert_eq!(
        produce(&mut c, "t", 0, batch(&[b"x"], 1_000, Compression::None)).await,
        (0, 10)
    );
}

#[tokio::test]
async fn delete_records_needs_the_delete_policy_and_a_known_partition() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    assert_eq!(
        delete_records(&mut c, "compacted", 0).await,
        (ResponseError::PolicyViolation.code(), -1)
    );
    assert_eq!(
        delete_records(&mut c, "missing", 0).await.0,
        ResponseError::UnknownTopicOrPartition.code()
    );
}
