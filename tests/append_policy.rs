//! What a leader checks and stamps on append, over the wire: a LogAppendTime topic's leader
//! stamps each batch with its clock (the producer's timestamps are kept inside, the batch says
//! LogAppendTime), a CreateTime topic refuses timestamps outside
//! `message.timestamp.*.max.ms` (KIP-937), and a compacted topic refuses keyless records, each
//! refusal with Kafka's record errors.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

const MAX_TIMESTAMP: i64 = -3;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// (attributes, max timestamp) of the first stored batch.
fn header_of(records: &Bytes) -> (i16, i64) {
    (
        i16::from_be_bytes(records[21..23].try_into().unwrap()),
        i64::from_be_bytes(records[35..43].try_into().unwrap()),
    )
}

#[tokio::test]
async fn a_log_append_time_topic_stamps_each_batch_with_the_leaders_clock() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(
        create_topic(&mut c, "lat", 1, &[("message.timestamp.type", "LogAppendTime")]).await,
        0
    );
    let before = now_ms();
    let resp = c
        .send(
            9,
            &produce_request("lat", 0, batch(&[b"a", b"b"], 1_000, Compression::Lz4), -1),
        )
        .await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0);
    let stamped = p.log_append_time_ms;
    assert!(stamped >= before && stamped <= now_ms(), "{stamped}");
    let fetched = fetch(&mut c, "lat", 0, 0).await;
    let (attributes, max_timestamp) = header_of(fetched.records.as_ref().unwrap());
    assert_eq!(attributes & (1 << 3), 1 << 3, "timestamp type LogAppendTime");
    assert_eq!(max_timestamp, stamped);
    assert_eq!(
        values(fetched.records.as_ref().unwrap()).len(),
        2,
        "CRC valid, records intact"
    );
    assert_eq!(list_offset(&mut c, "lat", 0, MAX_TIMESTAMP).await, (0, 0, stamped));
    // A CreateTime topic keeps the producer's timestamps and answers -1.
    create_topic(&mut c, "ct", 1, &[]).await;
    let ts = now_ms();
    let resp = c
        .send(9, &produce_request("ct", 0, batch(&[b"a"], ts, Compression::None), -1))
        .await;
    assert_eq!(resp.responses[0].partition_responses[0].log_append_time_ms, -1);
    let (attributes, max_timestamp) = header_of(fetch(&mut c, "ct", 0, 0).await.records.as_ref().unwrap());
    assert_eq!((attributes & (1 << 3), max_timestamp), (0, ts));
}

#[tokio::test]
async fn create_time_out_of_bounds_is_invalid_timestamp_with_record_errors() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[("message.timestamp.before.max.ms", "60000")]).await;
    let now = now_ms();
    // Kafka 4's default message.timestamp.after.max.ms is an hour.
    for ts in [now + 2 * 3_600_000, now - 120_000] {
        let resp = c
            .send(9, &produce_request("t", 0, batch(&[b"x"], ts, Compression::None), -1))
            .await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, ResponseError::InvalidTimestamp.code(), "{ts}");
        assert_eq!(p.record_errors.len(), 1);
        assert_eq!(p.record_errors[0].batch_index, 0);
        let message = p.record_errors[0]
            .batch_index_error_message
            .as_ref()
            .unwrap()
            .to_string();
        assert!(
            message.starts_with(&format!("Timestamp {ts} of message with offset 0 is out of range")),
            "{message}"
        );
    }
    assert_eq!(
        produce(&mut c, "t", 0, batch(&[b"x"], now, Compression::None)).await,
        (0, 0)
    );
}

#[tokio::test]
async fn a_compacted_topic_refuses_a_record_without_a_key() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[("cleanup.policy", "compact")]).await;
    let keyless = keyed_batch(&[(Some(b"k"), Some(b"v")), (None, Some(b"no key"))], 1_000);
    let resp = c.send(9, &produce_request("t", 0, keyless, -1)).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::InvalidRecord.code());
    assert_eq!(p.record_errors.len(), 1);
    assert_eq!(p.record_errors[0].batch_index, 1);
    assert_eq!(
        p.record_errors[0].batch_index_error_message.as_ref().unwrap().as_str(),
        "Compacted topic cannot accept message without key in topic partition t-0"
    );
    assert!(p.error_message.as_ref().unwrap().contains("1 record errors"));
    assert_eq!(list_offset(&mut c, "t", 0, -1).await.1, 0, "nothing written");
    // A topic that is not compacted takes it.
    create_topic(&mut c, "plain", 1, &[]).await;
    assert_eq!(
        produce(&mut c, "plain", 0, keyed_batch(&[(None, Some(b"v"))], 1_000))
            .await
            .0,
        0
    );
}
