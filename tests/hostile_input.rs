//! Hostile input (issue 11): requests whose declared counts and lengths promise far more than
//! the frame holds. Each gets its connection closed (or a Kafka error), never a crash, and the
//! broker keeps serving; the memory it takes stays proportional to the bytes it received.

mod common;

use bytes::{BufMut, BytesMut};
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// `[size][api key][version][correlation id][client id "x"]` and then `body`, as request header
/// v1 lays it out; flexible versions (header v2) add an empty tagged-field section first.
fn raw_request(api: i16, version: i16, flexible: bool, body: &[u8]) -> BytesMut {
    let mut frame = BytesMut::new();
    frame.put_i16(api);
    frame.put_i16(version);
    frame.put_i32(7);
    frame.put_i16(1);
    frame.put_u8(b'x');
    if flexible {
        frame.put_u8(0);
    }
    frame.put_slice(body);
    let mut out = BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.extend_from_slice(&frame);
    out
}

/// Resident set size of this process (the in-process broker's), from /proc.
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 4096
}

async fn still_serving(broker: &TestBroker) {
    let mut c = broker.client().await;
    let versions = c.send(3, &ApiVersionsRequest::default()).await;
    assert_eq!(versions.error_code, 0, "the broker still answers a new client");
}

#[tokio::test]
async fn a_metadata_request_declaring_2_pow_31_minus_1_topics_gets_its_connection_closed() {
    let broker = TestBroker::start(&[]).await;
    let before = rss_bytes();
    let mut c = broker.client().await;
    // Metadata v0: the topics array declares i32::MAX entries, and nothing follows.
    c.send_raw(&raw_request(3, 0, false, &i32::MAX.to_be_bytes())).await;
    assert!(c.is_closed().await);
    still_serving(&broker).await;
    assert!(
        rss_bytes() < before + (512 << 20),
        "no memory kept for the declared topics"
    );
}

/// The shapes of a lying body: a huge i32 count first, a huge unsigned-varint (compact) count
/// first, both after a few plausible fields, and -1 / all-ones everywhere.
fn lying_bodies() -> Vec<Vec<u8>> {
    let max_i32 = i32::MAX.to_be_bytes().to_vec();
    let max_varint = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut bodies = vec![max_i32.clone(), max_varint.clone(), vec![0xff; 40]];
    for prefix_len in [2usize, 4, 6, 8, 12, 16] {
        for tail in [&max_i32, &max_varint] {
            let mut b = vec![0u8; prefix_len];
            b.extend_from_slice(tail);
            bodies.push(b);
            let mut b = vec![0x01u8; prefix_len];
            b.extend_from_slice(tail);
            b.extend_from_slice(tail);
            bodies.push(b);
        }
    }
    bodies
}

#[tokio::test]
async fn every_advertised_api_and_version_survives_declared_counts_it_cannot_hold() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let versions = c.send(3, &ApiVersionsRequest::default()).await;
    let before = rss_bytes();
    let mut sent = 0;
    for range in &versions.api_keys {
        let Ok(key) = ApiKey::try_from(range.api_key) else {
            continue;
        };
        // All bodies of an API at once: a body that happens to decode may be parked (a long
        // poll, a join), and only the broker's survival is in question here.
        let mut clients = tokio::task::JoinSet::new();
        for version in range.min_version..=range.max_version {
            let flexible = key.request_header_version(version) >= 2;
            for body in lying_bodies() {
                let frame = raw_request(range.api_key, version, flexible, &body);
                let addr = broker.addr;
                clients.spawn(async move {
                    let mut c = Client::connect(addr).await;
                    c.send_raw(&frame).await;
                    // A close, or an answer with an error: either is fine.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), c.read_frame()).await;
                });
                sent += 1;
            }
        }
        while clients.join_next().await.is_some() {}
        still_serving(&broker).await;
    }
    assert!(sent > 1000, "{sent} hostile requests sent");
    assert!(
        rss_bytes() < before + (256 << 20),
        "RSS grew by {} MiB",
        (rss_bytes() - before) >> 20
    );
}

#[tokio::test]
async fn a_join_group_with_a_lying_consumer_protocol_blob_is_refused_and_the_group_still_works() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]).await;
    let mut c = broker.client().await;
    // A subscription whose topic array declares i32::MAX names, inside the protocol metadata.
    let mut blob = BytesMut::new();
    blob.put_i16(0);
    blob.put_i32(i32::MAX);
    let join = |metadata: bytes::Bytes| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(metadata)])
    };
    let resp = c.send(5, &join(blob.freeze())).await;
    // Kafka hands the blob to members as it came; whatever the code, the broker lives on.
    let _ = resp.error_code;
    still_serving(&broker).await;
}
