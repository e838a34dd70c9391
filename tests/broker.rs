//! End-to-end behaviour of one in-process broker over real sockets, with a raw client.

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

/// A DescribeConfigs resource: resource type 2 is a topic, 4 a broker.
fn config_resource(resource_type: i8, name: &str) -> describe_configs_request::DescribeConfigsResource {
    describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
}

/// The entry `name` of a DescribeConfigs result.
fn config_entry<'a>(
    result: &'a describe_configs_response::DescribeConfigsResult,
    name: &str,
) -> &'a describe_configs_response::DescribeConfigsResourceResult {
    result
        .configs
        .iter()
        .find(|e| e.name.as_str() == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// An IncrementalAlterConfigs of one config (op 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT) of one
/// resource (type 2 a topic, 4 a broker).
fn incremental_alter(
    resource_type: i8,
    resource: &str,
    key: &str,
    op: i8,
    value: Option<&str>,
) -> IncrementalAlterConfigsRequest {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(resource.to_string()))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_string(key.to_string()))
            .with_config_operation(op)
            .with_value(value.map(|v| StrBytes::from_string(v.to_string())))])])
}

#[tokio::test]
async fn api_versions_lists_ranges_and_answers_unknown_versions_as_v0() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let resp = c.send(3, &ApiVersionsRequest::default()).await;
    assert_eq!(resp.error_code, 0);
    let produce = resp.api_keys.iter().find(|k| k.api_key == 0).unwrap();
    assert_eq!((produce.min_version, produce.max_version), (3, 13));

    // KIP-511: a version from the future gets UNSUPPORTED_VERSION in a v0 body with our ranges.
    let mut frame = c.frame(3, &ApiVersionsRequest::default());
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    c.send_raw(&frame).await;
    let (_, resp) = Client::decode::<ApiVersionsRequest>(0, c.read_frame().await.unwrap());
    assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    assert!(resp.api_keys.iter().any(|k| k.api_key == 1));
}

/// Regression (issue 10): ApiVersions listed no features, so `kafka-features describe` printed
/// nothing. Sluice reports the metadata.version whose semantics it follows (3.3-IV3, level 7),
/// finalized at the metadata log's index, and the features it does not have at level 0.
#[tokio::test]
async fn api_versions_reports_the_features_sluice_implements() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let resp = c.send(4, &ApiVersionsRequest::default()).await;
    let supported: Vec<(String, i16, i16)> = resp
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    assert!(supported.contains(&("metadata.version".into(), 7, 7)), "{supported:?}");
    assert!(supported.contains(&("kraft.version".into(), 0, 0)), "{supported:?}");
    assert!(
        supported.contains(&("transaction.version".into(), 0, 2)),
        "{supported:?}"
    );
    for on in ["eligible.leader.replicas.version", "group.version", "share.version"] {
        assert!(supported.contains(&(on.into(), 0, 1)), "{on}: {supported:?}");
    }
    let finalized: Vec<(String, i16, i16)> = resp
        .finalized_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
        .collect();
    assert_eq!(
        finalized,
        [
            ("eligible.leader.replicas.version".to_string(), 1, 1),
            ("group.version".to_string(), 1, 1),
            ("metadata.version".to_string(), 7, 7),
            ("share.version".to_string(), 1, 1),
            ("transaction.version".to_string(), 2, 2)
        ]
    );
    assert!(resp.finalized_features_epoch > 0);
    // Below v4, Kafka leaves out features whose lowest level is 0; below v3 there are none.
    let v3 = c.send(3, &ApiVersionsRequest::default()).await;
    assert_eq!(v3.supported_features.len(), 1);
    let v2 = c.send(2, &ApiVersionsRequest::default()).await;
    assert!(v2.supported_features.is_empty() && v2.finalized_features.is_empty());
}

#[tokio::test]
async fn produce_then_fetch_returns_the_records_at_their_offsets() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "orders", 2, &[]).await, 0);
    assert_eq!(
        produce(&mut c, "orders", 1, batch(&[b"a", b"b"], 1000, Compression::None)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, "orders", 1, batch(&[b"c"], 2000, Compression::Lz4)).await,
        (0, 2)
    );
    let p = fetch(&mut c, "orders", 1, 0).await;
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 3);
    let got = values(p.records.as_ref().unwrap());
    assert_eq!(got, vec![(0, b"a".to_vec()), (1, b"b".to_vec()), (2, b"c".to_vec())]);
}

#[tokio::test]
async fn fetch_inside_a_batch_returns_the_whole_batch() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    produce(&mut c, "t", 0, batch(&[b"a", b"b", b"c"], 1000, Compression::Gzip)).await;
    let p = fetch(&mut c, "t", 0, 1).await;
    assert_eq!(values(p.records.as_ref().unwrap()).first().unwrap().0, 0);
}

#[tokio::test]
async fn fetch_with_nothing_to_return_has_empty_not_null_records() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let p = fetch(&mut c, "t", 0, 0).await;
    assert_eq!(p.error_code, 0);
    assert_eq!(p.records, Some(Bytes::new()));
}

#[tokio::test]
async fn fetch_out_of_range_is_offset_out_of_range() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let p = fetch(&mut c, "t", 0, 5).await;
    assert_eq!(p.error_code, ResponseError::OffsetOutOfRange.code());
}

#[tokio::test]
async fn long_poll_fetch_is_woken_by_a_produce() {
    let broker = TestBroker::start(&[]).await;
    let mut admin = broker.client().await;
    create_topic(&mut admin, "t", 1, &[]).await;
    let mut consumer = broker.client().await;
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        let resp = consumer.send(11, &fetch_request("t", 0, 0, 10_000)).await;
        (resp, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    produce(&mut admin, "t", 0, batch(&[b"x"], 1, Compression::None)).await;
    let (resp, waited) = waiting.await.unwrap();
    assert_eq!(
        values(resp.responses[0].partitions[0].records.as_ref().unwrap()).len(),
        1
    );
    // Woken by the append, not by the 10 s timeout.
    assert!(waited < Duration::from_secs(8), "waited {waited:?}");
}

#[tokio::test]
async fn long_poll_fetch_times_out_empty() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let resp = c.send(11, &fetch_request("t", 0, 0, 300)).await;
    assert_eq!(resp.responses[0].partitions[0].records, Some(Bytes::new()));
}

#[tokio::test]
async fn corrupt_batch_is_corrupt_message_and_the_broker_keeps_serving() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let mut bad = BytesMut::from(&batch(&[b"hello"], 1, Compression::None)[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert_eq!(
        produce(&mut c, "t", 0, bad.freeze()).await.0,
        ResponseError::CorruptMessage.code()
    );
    assert_eq!(
        produce(&mut c, "t", 0, batch(&[b"ok"], 1, Compression::None)).await,
        (0, 0)
    );
}

#[tokio::test]
async fn produce_to_unknown_topic_or_partition_is_refused() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let code = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(
        produce(&mut c, "nope", 0, batch(&[b"x"], 1, Compression::None)).await.0,
        code
    );
    create_topic(&mut c, "t", 1, &[]).await;
    assert_eq!(
        produce(&mut c, "t", 7, batch(&[b"x"], 1, Compression::None)).await.0,
        code
    );
}

#[tokio::test]
async fn batch_over_max_message_bytes_is_message_too_large() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[("max.message.bytes", "1000")]).await;
    let big = vec![7u8; 2000];
    let code = produce(&mut c, "t", 0, batch(&[&big], 1, Compression::None)).await.0;
    assert_eq!(code, ResponseError::MessageTooLarge.code());
}

#[tokio::test]
async fn unknown_api_key_closes_only_that_connection() {
    let broker = TestBroker::start(&[]).await;
    let mut bad = broker.client().await;
    let mut frame = bad.frame(3, &ApiVersionsRequest::default());
    frame[4..6].copy_from_slice(&999i16.to_be_bytes());
    bad.send_raw(&frame).await;
    assert!(bad.is_closed().await);
    let mut good = broker.client().await;
    assert_eq!(good.send(3, &ApiVersionsRequest::default()).await.error_code, 0);
}

#[tokio::test]
async fn garbage_and_oversized_frames_close_the_connection() {
    let broker = TestBroker::start(&["socket.request.max.bytes=1000"]).await;
    let mut c = broker.client().await;
    c.send_raw(&[0, 0, 0, 12, 0, 3, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff])
        .await;
    assert!(c.is_closed().await);
    let mut c = broker.client().await;
    c.send_raw(&100_000i32.to_be_bytes()).await;
    assert!(c.is_closed().await);
    let mut c = broker.client().await;
    c.send_raw(&(-5i32).to_be_bytes()).await;
    assert!(c.is_closed().await);
    assert_eq!(
        broker
            .client()
            .await
            .send(3, &ApiVersionsRequest::default())
            .await
            .error_code,
        0
    );
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    // A long-poll fetch first, then quick requests behind it on the same connection.
    let mut frames = BytesMut::new();
    frames.extend_from_slice(&c.frame(11, &fetch_request("t", 0, 0, 500)));
    for _ in 0..5 {
        frames.extend_from_slice(&c.frame(3, &ApiVersionsRequest::default()));
    }
    c.send_raw(&frames).await;
    let (first, _) = Client::decode::<FetchRequest>(11, c.read_frame().await.unwrap());
    let mut ids = vec![first];
    for _ in 0..5 {
        ids.push(Client::decode::<ApiVersionsRequest>(3, c.read_frame().await.unwrap()).0);
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    produce(&mut c, "t", 0, batch(&[b"a", b"b"], 1000, Compression::None)).await;
    produce(&mut c, "t", 0, batch(&[b"c", b"d", b"e"], 5000, Compression::Zstd)).await;
    assert_eq!(list_offset(&mut c, "t", 0, -2).await.1, 0);
    // Latest is the log end offset, not the last batch's base offset + 1.
    assert_eq!(list_offset(&mut c, "t", 0, -1).await.1, 5);
    assert_eq!(list_offset(&mut c, "t", 0, 5001).await, (0, 3, 5001));
    assert_eq!(list_offset(&mut c, "t", 0, 0).await, (0, 0, 1000));
    assert_eq!(list_offset(&mut c, "t", 0, 9999).await, (0, -1, -1));
    assert_eq!(list_offset(&mut c, "t", 0, -3).await, (0, 4, 5002));
}

/// Regression (issue 10, found by the Java client's listOffsets): an offset not found (-1)
/// came with the partition's leader epoch; Kafka sends none (-1) then, and the epoch with a
/// found one.
#[tokio::test]
async fn list_offsets_gives_a_leader_epoch_only_with_an_offset() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    produce(&mut c, "t", 0, batch(&[b"a"], 1000, Compression::None)).await;
    let mut epoch_at = async |timestamp: i64| {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default().with_name(name("t")).with_partitions(
                vec![ListOffsetsPartition::default().with_timestamp(timestamp)],
            )]);
        let p = c.send(10, &req).await.topics.remove(0).partitions.remove(0);
        (p.offset, p.leader_epoch)
    };
    assert_eq!(epoch_at(-2).await, (0, 0));
    assert_eq!(epoch_at(1000).await, (0, 0));
    assert_eq!(epoch_at(9999).await, (-1, -1));
    assert_eq!(epoch_at(-5).await, (-1, -1));
}

#[tokio::test]
async fn metadata_auto_creates_topics_and_rejects_bad_names() {
    let broker = TestBroker::start(&["num.partitions=3"]).await;
    let mut c = broker.client().await;
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("fresh"))),
            MetadataRequestTopic::default().with_name(Some(name("bad name"))),
        ]));
    let resp = c.send(12, &req).await;
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].partitions.len(), 3);
    assert_eq!(resp.topics[1].error_code, ResponseError::InvalidTopicException.code());
    assert_eq!(resp.brokers.len(), 1);
    assert_eq!(resp.brokers[0].port, broker.addr.port() as i32);
}

#[tokio::test]
async fn metadata_without_auto_create_is_unknown_topic() {
    let broker = TestBroker::start(&["auto.create.topics.enable=false"]).await;
    let mut c = broker.client().await;
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("x")))]));
    let resp = c.send(12, &req).await;
    assert_eq!(resp.topics[0].error_code, ResponseError::UnknownTopicOrPartition.code());
}

/// Regression (issue 10): the Java Admin's `describeTopics(TopicCollection.ofTopicIds(..))`
/// names each topic by id with the name `""`; Sluice looked up "" and answered
/// INVALID_TOPIC_EXCEPTION with a zero id. As in Kafka, a non-zero id wins.
#[tokio::test]
async fn metadata_by_topic_id_with_an_empty_name_describes_that_topic() {
    let broker = TestBroker::start(&["auto.create.topics.enable=true"]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "by-id", 2, &[]).await, 0);
    let by_name = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name("by-id")))
    ]));
    let id = c.send(12, &by_name).await.topics[0].topic_id;
    assert!(!id.is_nil());
    let unknown = uuid::Uuid::from_u128(42);
    let by_id = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_topic_id(id)
                .with_name(Some(name(""))),
            MetadataRequestTopic::default().with_topic_id(unknown).with_name(None),
        ]));
    let resp = c.send(12, &by_id).await;
    let (found, missing) = (&resp.topics[0], &resp.topics[1]);
    assert_eq!(found.error_code, 0);
    assert_eq!(
        (found.name.as_ref().map(|n| n.as_str()), found.topic_id),
        (Some("by-id"), id)
    );
    assert_eq!(found.partitions.len(), 2);
    assert_eq!(missing.error_code, ResponseError::UnknownTopicId.code());
    assert_eq!((missing.name.as_ref(), missing.topic_id), (None, unknown));
    // Nothing named "" was created on the way.
    let all = c.send(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(all.topics.len(), 1);
    // Versions 10 and 11 have the field but may not use it: Kafka refuses the request.
    let resp = c.send(11, &by_id).await;
    assert!(resp
        .topics
        .iter()
        .all(|t| t.error_code == ResponseError::InvalidRequest.code()));
}

#[tokio::test]
async fn create_topic_errors_use_kafka_codes() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "t", 1, &[]).await, 0);
    assert_eq!(
        create_topic(&mut c, "t", 1, &[]).await,
        ResponseError::TopicAlreadyExists.code()
    );
    assert_eq!(
        create_topic(&mut c, "u", 0, &[]).await,
        ResponseError::InvalidPartitions.code()
    );
    assert_eq!(
        create_topic(&mut c, "a/b", 1, &[]).await,
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create_topic(&mut c, "v", 1, &[("retention.ms", "x")]).await,
        ResponseError::InvalidConfig.code()
    );
}

#[tokio::test]
async fn deleted_topic_is_gone_and_can_be_recreated_empty() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    produce(&mut c, "t", 0, batch(&[b"old"], 1, Compression::None)).await;
    let resp = c
        .send(4, &DeleteTopicsRequest::default().with_topic_names(vec![name("t")]))
        .await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert!(!broker.data.join("t-0").exists());
    let resp = c
        .send(4, &DeleteTopicsRequest::default().with_topic_names(vec![name("t")]))
        .await;
    assert_eq!(
        resp.responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    create_topic(&mut c, "t", 1, &[]).await;
    assert_eq!(list_offset(&mut c, "t", 0, -1).await.1, 0);
}

#[tokio::test]
async fn create_partitions_adds_usable_partitions() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let req = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(name("t"))
            .with_count(3),
    ]);
    let resp = c.send(3, &req).await;
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(
        produce(&mut c, "t", 2, batch(&[b"x"], 1, Compression::None)).await,
        (0, 0)
    );
    let resp = c.send(3, &req).await;
    assert_eq!(resp.results[0].error_code, ResponseError::InvalidPartitions.code());
}

#[tokio::test]
async fn describe_configs_returns_every_topic_config_with_sources() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    // Configs Sluice does not act on yet are taken and reported, as Kafka 4.4 takes them.
    let overrides = [
        ("retention.ms", "1234"),
        ("min.compaction.lag.ms", "1000"),
        ("preallocate", "true"),
        ("leader.replication.throttled.replicas", "*"),
    ];
    assert_eq!(create_topic(&mut c, "t", 1, &overrides).await, 0);
    let req = DescribeConfigsRequest::default().with_resources(vec![config_resource(2, "t"), config_resource(4, "1")]);
    let resp = c.send(4, &req).await;
    let topic = &resp.results[0];
    assert_eq!(topic.error_code, 0);
    // Kafka 4.4 lists 37 topic configs.
    assert_eq!(topic.configs.len(), 37);
    for (name, value) in overrides {
        let e = config_entry(topic, name);
        assert_eq!((e.value.as_deref(), e.config_source), (Some(value), 1), "{name}");
    }
    assert_eq!(
        create_topic(&mut c, "tiered", 1, &[("remote.storage.enable", "true")]).await,
        ResponseError::InvalidConfig.code()
    );
    let retention = config_entry(topic, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("1234"));
    assert_eq!(retention.config_source, 1);
    assert_eq!(config_entry(topic, "segment.bytes").config_source, 5);
    assert!(resp.results[1]
        .configs
        .iter()
        .any(|e| e.name.as_str() == "log.segment.bytes"));
}

/// Regression (issue 10): a successful CreateTopics answered `error_message: ""` where Kafka
/// sends null, and aiokafka's admin took the empty string for an error. Each response here
/// carries what Apache Kafka 4.4 sends on success: null, except DescribeConfigs (Kafka: "").
#[tokio::test]
async fn successful_admin_responses_carry_kafkas_null_error_messages() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    for validate_only in [true, false] {
        let req = CreateTopicsRequest::default()
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(name("t"))
                .with_num_partitions(1)
                .with_replication_factor(1)])
            .with_validate_only(validate_only)
            .with_timeout_ms(5000);
        for version in [5, 7] {
            if version == 5 && !validate_only {
                continue;
            }
            let resp = c.send(version, &req).await;
            assert_eq!(resp.topics[0].error_code, 0);
            assert_eq!(
                resp.topics[0].error_message, None,
                "v{version} validate_only={validate_only}"
            );
        }
    }
    let resp = c
        .send(1, &incremental_alter(2, "t", "retention.ms", 0, Some("1000")))
        .await;
    assert_eq!(
        (resp.responses[0].error_code, &resp.responses[0].error_message),
        (0, &None)
    );
    let legacy =
        AlterConfigsRequest::default().with_resources(vec![alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("2000")))])]);
    let resp = c.send(2, &legacy).await;
    assert_eq!(
        (resp.responses[0].error_code, &resp.responses[0].error_message),
        (0, &None)
    );
    let resp = c
        .send(
            3,
            &CreatePartitionsRequest::default().with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(name("t"))
                    .with_count(2),
            ]),
        )
        .await;
    assert_eq!((resp.results[0].error_code, &resp.results[0].error_message), (0, &None));
    let describe = DescribeConfigsRequest::default().with_resources(vec![config_resource(2, "t")]);
    let resp = c.send(4, &describe).await;
    assert_eq!(resp.results[0].error_message.as_deref(), Some(""));
    let resp = c
        .send(
            6,
            &DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_name(Some(name("t")))
            ]),
        )
        .await;
    assert_eq!(
        (resp.responses[0].error_code, &resp.responses[0].error_message),
        (0, &None)
    );
}

/// Regression (issue 10): started from the shipped config/sluice.toml, a broker reported
/// every setting as STATIC_BROKER_CONFIG; kafka-python's admin expects `retention.bytes` to be
/// DEFAULT_CONFIG on a broker that never set it. Set by the operator, it is static.
#[tokio::test]
async fn describe_configs_says_static_only_for_settings_the_operator_set() {
    let shipped = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/sluice.toml"));
    let describe = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![config_resource(2, "t"), config_resource(4, "1")]);
    // (topic retention.bytes, its broker synonym, broker log.retention.bytes) sources.
    let sources = |resp: &DescribeConfigsResponse| {
        let topic = config_entry(&resp.results[0], "retention.bytes");
        let synonym = topic
            .synonyms
            .iter()
            .find(|s| s.name.as_str() == "log.retention.bytes")
            .unwrap();
        (
            topic.config_source,
            synonym.source,
            config_entry(&resp.results[1], "log.retention.bytes").config_source,
        )
    };
    const STATIC: i8 = 4;
    const DEFAULT: i8 = 5;
    for (extra, expected) in [
        (&[][..], (DEFAULT, DEFAULT, DEFAULT)),
        (&["log.retention.bytes=-1"][..], (STATIC, STATIC, STATIC)),
    ] {
        let broker = TestBroker::start_with_file(Some(shipped), extra).await;
        let mut c = broker.client().await;
        create_topic(&mut c, "t", 1, &[]).await;
        let resp = c.send(4, &describe).await;
        assert_eq!(sources(&resp), expected, "{extra:?}");
        assert_eq!(config_entry(&resp.results[1], "node.id").config_source, DEFAULT);
    }
}

/// Regression (issue 10): every broker setting was reported as a STRING, a setting given at
/// start-up listed only its static value, and `log.retention.ms` showed 7 days where Kafka
/// shows null (its default comes from `log.retention.hours`). Now as Kafka 4.4 answers.
#[tokio::test]
async fn broker_configs_have_kafkas_types_and_synonyms() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[("retention.ms", "1234")]).await;
    let describe = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![config_resource(4, "1"), config_resource(2, "t")]);
    let resp = c.send(4, &describe).await;
    // (value, source, type, synonyms as "SOURCE:name=value")
    let entry = |r: usize, n: &str| {
        let e = config_entry(&resp.results[r], n);
        let synonyms: Vec<String> = e
            .synonyms
            .iter()
            .map(|y| {
                format!(
                    "{}:{}={}",
                    y.source,
                    y.name.as_str(),
                    y.value.as_deref().unwrap_or("null")
                )
            })
            .collect();
        (
            e.value.as_ref().map(|v| v.to_string()),
            e.config_source,
            e.config_type,
            synonyms,
        )
    };
    let some = |v: &str| Some(v.to_string());
    const STATIC: i8 = 4;
    const DEFAULT: i8 = 5;
    const TOPIC: i8 = 1;
    let (boolean, int, short, long, list): (i8, i8, i8, i8, i8) = (1, 3, 4, 5, 7);
    assert_eq!(
        entry(0, "group.initial.rebalance.delay.ms"),
        (
            some("0"),
            STATIC,
            int,
            vec![
                "4:group.initial.rebalance.delay.ms=0".into(),
                "5:group.initial.rebalance.delay.ms=3000".into()
            ]
        )
    );
    let data = broker.data.display().to_string();
    assert_eq!(
        entry(0, "log.dirs"),
        (Some(data.clone()), STATIC, list, vec![format!("4:log.dirs={data}")])
    );
    assert_eq!(entry(0, "log.retention.ms"), (None, DEFAULT, long, vec![]));
    assert_eq!(
        entry(0, "log.retention.hours"),
        (some("168"), DEFAULT, int, vec!["5:log.retention.hours=168".into()])
    );
    assert_eq!(entry(0, "log.segment.bytes").2, int);
    assert_eq!(entry(0, "auto.create.topics.enable").2, boolean);
    assert_eq!(entry(0, "offsets.topic.replication.factor").2, short);
    assert_eq!(entry(0, "process.roles").2, list);
    assert_eq!(entry(0, "broker.rack"), (None, DEFAULT, 2, vec![]));
    // Topic configs: the override, then the broker settings with a value behind the default;
    // retention.ms has none while only log.retention.hours has one.
    assert_eq!(
        entry(1, "retention.ms"),
        (some("1234"), TOPIC, long, vec!["1:retention.ms=1234".into()])
    );
    assert_eq!(entry(1, "segment.ms"), (some("604800000"), DEFAULT, long, vec![]));
    assert_eq!(
        entry(1, "flush.ms"),
        (some("9223372036854775807"), DEFAULT, long, vec![])
    );
    assert_eq!(
        entry(1, "segment.bytes"),
        (
            some("1073741824"),
            DEFAULT,
            int,
            vec!["5:log.segment.bytes=1073741824".into()]
        )
    );
}

/// Regression (issue 10): DescribeConfigs of the BROKER resource "" (the cluster-wide default
/// entity: `kafka-configs --entity-default`, kadm's DescribeBrokerConfigs with no broker)
/// answered with this node's whole static config. Kafka lists only cluster-wide dynamic
/// defaults there: with eligible leader replicas, the `min.insync.replicas` the controller
/// writes at bootstrap (issue 12). Another broker's id is refused in Kafka's words.
#[tokio::test]
async fn the_cluster_wide_default_broker_entity_lists_only_dynamic_defaults() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0", "min.insync.replicas=2"]).await;
    let mut c = broker.client().await;
    let describe = |name: &str| DescribeConfigsRequest::default().with_resources(vec![config_resource(4, name)]);
    let r = c.send(4, &describe("")).await.results.remove(0);
    let listed: Vec<(String, Option<String>, i8)> = r
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()),
                c.config_source,
            )
        })
        .collect();
    assert_eq!(r.error_code, 0);
    assert_eq!(listed, [("min.insync.replicas".into(), Some("2".into()), 3)]);
    let r = c.send(4, &describe("1")).await.results.remove(0);
    assert!(r.error_code == 0 && !r.configs.is_empty());
    for (name, message) in [
        ("2", "Unexpected broker id, expected 1 or empty string, but received 2"),
        ("abc", "Broker id must be an integer, but it is: abc"),
    ] {
        let r = c.send(4, &describe(name)).await.results.remove(0);
        assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
        assert_eq!(r.error_message.as_deref(), Some(message));
    }
}

/// Regression (issue 10): with IncludeDocumentation every entry's documentation was null;
/// Kafka fills it in (and leaves it null when not asked).
#[tokio::test]
async fn describe_configs_documents_each_entry_when_asked() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let describe = |docs: bool| {
        DescribeConfigsRequest::default()
            .with_include_documentation(docs)
            .with_resources(vec![config_resource(2, "t"), config_resource(4, "1")])
    };
    let resp = c.send(4, &describe(true)).await;
    for r in &resp.results {
        for e in &r.configs {
            let doc = e.documentation.as_deref().unwrap_or("");
            assert!(doc.len() > 10 && !doc.starts_with(' '), "{}: {doc:?}", e.name.as_str());
        }
    }
    let retention = config_entry(&resp.results[0], "retention.ms");
    assert!(retention.documentation.as_deref().unwrap().contains("older than"));
    let resp = c.send(4, &describe(false)).await;
    assert!(resp
        .results
        .iter()
        .flat_map(|r| &r.configs)
        .all(|e| e.documentation.is_none()));
}

/// Regression (issue 10): every voter's LastFetchTimestamp and LastCaughtUpTimestamp were -1;
/// Kafka reports epoch milliseconds, the leader's own being now.
#[tokio::test]
async fn describe_quorum_reports_when_the_leader_last_fetched_and_caught_up() {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(name("__cluster_metadata"))
        .with_partitions(vec![PartitionData::default()])]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let resp = c.send(2, &req).await;
    let p = &resp.topics[0].partitions[0];
    let leader = p.current_voters.iter().find(|v| v.replica_id == p.leader_id).unwrap();
    for t in [leader.last_fetch_timestamp, leader.last_caught_up_timestamp] {
        assert!((before..before + 60_000).contains(&t), "{t} vs {before}");
    }
}

#[tokio::test]
async fn describe_cluster_names_this_broker_as_controller() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let resp = c.send(1, &DescribeClusterRequest::default()).await;
    assert_eq!(resp.controller_id, BrokerId(1));
    assert_eq!(resp.brokers.len(), 1);
    assert!(!resp.cluster_id.is_empty());
}

#[tokio::test]
async fn data_and_topics_survive_a_restart() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "keep", 2, &[]).await;
    produce(&mut c, "keep", 1, batch(&[b"a", b"b"], 1, Compression::Snappy)).await;
    drop(c);
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(
        create_topic(&mut c, "keep", 2, &[]).await,
        ResponseError::TopicAlreadyExists.code()
    );
    assert_eq!(
        produce(&mut c, "keep", 1, batch(&[b"c"], 1, Compression::None)).await,
        (0, 2)
    );
    assert_eq!(
        fetch_all(&mut c, "keep", 1).await,
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

#[tokio::test]
async fn metrics_endpoint_reports_requests_and_partitions() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "m", 1, &[]).await;
    produce(&mut c, "m", 0, batch(&[b"a"], 1, Compression::None)).await;
    let body = broker.scrape().await;
    assert!(
        body.contains("sluice_requests_total{api=\"Produce\",version=\"9\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("\nsluice_log_end_offset{partition=\"0\",topic=\"m\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("sluice_messages_in_total 1"));
    assert!(body.contains("sluice_request_duration_seconds_bucket"));
    assert!(
        body.contains("sluice_controller_active 1"),
        "a quorum of one leads itself"
    );
    assert!(body.contains("sluice_brokers_live 1"));
}

#[tokio::test]
async fn shutdown_answers_parked_long_polls_instead_of_waiting_them_out() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let parked = tokio::spawn(async move { c.send(11, &fetch_request("t", 0, 0, 30_000)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    broker.server.take().unwrap().shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    let resp = parked.await.unwrap();
    assert_eq!(resp.responses[0].partitions[0].records, Some(Bytes::new()));
}

#[tokio::test]
async fn topic_compression_type_recompresses_batches_on_append() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "z", 1, &[("compression.type", "zstd")]).await, 0);
    produce(&mut c, "z", 0, batch(&[b"a", b"b"], 1, Compression::Gzip)).await;
    let p = fetch(&mut c, "z", 0, 0).await;
    let records = p.records.unwrap();
    // Attributes (offset 21) carry the codec in their low three bits: 4 is zstd.
    assert_eq!(i16::from_be_bytes([records[21], records[22]]) & 7, 4);
    assert_eq!(values(&records), vec![(0, b"a".to_vec()), (1, b"b".to_vec())]);
}

#[tokio::test]
async fn large_fetch_responses_arrive_intact() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "big", 1, &[]).await;
    let values: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 200_000]).collect();
    for v in &values {
        assert_eq!(produce(&mut c, "big", 0, batch(&[v], 1, Compression::None)).await.0, 0);
    }
    // One fetch carries several batches read straight from the segment.
    assert_eq!(fetch_all(&mut c, "big", 0).await, values);
}

#[tokio::test]
async fn incremental_alter_configs_changes_a_topic_live_and_refuses_broker_settings() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let resp = c
        .send(1, &incremental_alter(2, "t", "max.message.bytes", 0, Some("1000")))
        .await;
    assert_eq!(resp.responses[0].error_code, 0);
    // The new limit applies to the next produce at once.
    let big = vec![1u8; 2000];
    assert_eq!(
        produce(&mut c, "t", 0, batch(&[&big], 1, Compression::None)).await.0,
        ResponseError::MessageTooLarge.code()
    );
    let resp = c
        .send(1, &incremental_alter(2, "t", "max.message.bytes", 1, None))
        .await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(produce(&mut c, "t", 0, batch(&[&big], 1, Compression::None)).await.0, 0);
    let resp = c
        .send(1, &incremental_alter(2, "t", "no.such.config", 0, Some("1")))
        .await;
    assert_eq!(resp.responses[0].error_code, ResponseError::InvalidConfig.code());
    let resp = c
        .send(1, &incremental_alter(4, "1", "log.retention.ms", 0, Some("1")))
        .await;
    assert_eq!(resp.responses[0].error_code, ResponseError::InvalidRequest.code());
    let resp = c
        .send(1, &incremental_alter(2, "missing", "retention.ms", 0, Some("1")))
        .await;
    assert_eq!(
        resp.responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

/// Regression (issue 10): kafka-configs and the Admin print the broker's error messages, and
/// Sluice's were its own words; these are Kafka 4.4's.
#[tokio::test]
async fn config_and_partition_refusals_carry_kafkas_messages() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 2, &[]).await;
    let mut alter = async |topic: &str, key: &str, op: i8, value: Option<&str>| {
        let req = incremental_alter(2, topic, key, op, value);
        let r = c.send(1, &req).await.responses.remove(0);
        (r.error_code, r.error_message.map(|m| m.to_string()))
    };
    let refused = |e: ResponseError, message: &str| (e.code(), Some(message.to_string()));
    let cases = [
        (
            alter("t", "retention.ms", 0, Some("abc")).await,
            refused(
                ResponseError::InvalidConfig,
                "Invalid value abc for configuration retention.ms: Not a number of type LONG",
            ),
        ),
        (
            alter("t", "no.such.config", 0, Some("1")).await,
            refused(
                ResponseError::InvalidConfig,
                "Unknown topic config name: no.such.config",
            ),
        ),
        (
            alter("missing", "retention.ms", 0, Some("1")).await,
            refused(
                ResponseError::UnknownTopicOrPartition,
                "The topic 'missing' does not exist.",
            ),
        ),
        (
            alter("", "retention.ms", 0, Some("1")).await,
            refused(
                ResponseError::InvalidRequest,
                "Default topic resources are not allowed.",
            ),
        ),
        (
            alter("t", "retention.ms", 0, None).await,
            refused(
                ResponseError::InvalidRequest,
                "Null value not supported for : retention.ms",
            ),
        ),
        (
            alter("t", "retention.ms", 2, Some("5")).await,
            refused(
                ResponseError::InvalidConfig,
                "Can't APPEND to key retention.ms because its type is not LIST.",
            ),
        ),
        // Deleting what is not there, even under an unknown name, does nothing, as in Kafka.
        (alter("t", "no.such.config", 1, None).await, (0, None)),
    ];
    for (got, kafka) in cases {
        assert_eq!(got, kafka);
    }
    // Unknown topics in CreatePartitions and DescribeConfigs: Kafka sends no message.
    let grow = CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
        .with_name(name("missing"))
        .with_count(3)]);
    let r = &c.send(3, &grow).await.results[0];
    assert_eq!(
        (r.error_code, r.error_message.clone()),
        (ResponseError::UnknownTopicOrPartition.code(), None)
    );
    let describe = DescribeConfigsRequest::default().with_resources(vec![config_resource(2, "missing")]);
    let r = &c.send(4, &describe).await.results[0];
    assert_eq!(
        (r.error_code, r.error_message.clone()),
        (ResponseError::UnknownTopicOrPartition.code(), None)
    );
}

/// Regression (issue 10): APPEND and SUBTRACT start from the effective value, the default
/// included, and SUBTRACT may leave cleanup.policy empty (Kafka 4: infinite retention).
#[tokio::test]
async fn incremental_append_and_subtract_start_from_the_default_policy() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "kept", 1, &[]).await;
    create_topic(&mut c, "both", 1, &[]).await;
    let alter = |topic: &str, op: i8, value: &str| incremental_alter(2, topic, "cleanup.policy", op, Some(value));
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;
    let resp = c.send(1, &alter("kept", SUBTRACT, "delete")).await;
    assert_eq!(
        (resp.responses[0].error_code, &resp.responses[0].error_message),
        (0, &None)
    );
    let resp = c.send(1, &alter("both", APPEND, "compact")).await;
    assert_eq!(resp.responses[0].error_code, 0);
    for (topic, expected) in [("kept", ""), ("both", "delete,compact")] {
        let req = DescribeConfigsRequest::default()
            .with_resources(vec![config_resource(2, topic)
                .with_configuration_keys(Some(vec![StrBytes::from_static_str("cleanup.policy")]))]);
        let resp = c.send(4, &req).await;
        let entry = &resp.results[0].configs[0];
        assert_eq!(entry.value.as_deref(), Some(expected), "{topic}");
        assert_eq!(entry.config_source, 1, "{topic}: a topic override");
    }
}

#[tokio::test]
async fn a_large_create_topics_does_not_hold_up_other_clients() {
    let broker = TestBroker::start(&[]).await;
    let mut admin = broker.client().await;
    let creating = tokio::spawn(async move { create_topic(&mut admin, "wide", 2000, &[]).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut other = broker.client().await;
    assert_eq!(other.send(3, &ApiVersionsRequest::default()).await.error_code, 0);
    // Answered while the 2000 partitions were still being created, not after.
    assert!(
        !creating.is_finished(),
        "CreateTopics finished first; make the topic wider"
    );
    assert_eq!(creating.await.unwrap(), 0);
}

/// Over a thousand metadata changes: the metadata log is snapshotted and purged (every 1000
/// entries) and a restart rebuilds the same metadata from snapshot plus the rest of the log.
#[tokio::test]
async fn metadata_survives_snapshot_and_purge_of_its_log() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    for round in 0..550 {
        assert_eq!(create_topic(&mut c, "churn", 1, &[]).await, 0, "round {round}");
        let delete = DeleteTopicsRequest::default()
            .with_topic_names(vec![name("churn")])
            .with_timeout_ms(5000);
        assert_eq!(c.send(4, &delete).await.responses[0].error_code, 0);
    }
    create_topic(&mut c, "kept", 3, &[("retention.ms", "12345")]).await;
    drop(c);
    let dir = broker.data.join("__cluster_metadata-0");
    assert!(dir.join("snapshot.json").exists(), "no snapshot was taken");
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    let meta = c.send(12, &MetadataRequest::default().with_topics(None)).await;
    let names: Vec<String> = meta
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert_eq!(names, ["kept"]);
    assert_eq!(meta.topics[0].partitions.len(), 3);
}
