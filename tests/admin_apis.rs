//! The admin APIs of Kafka 4's admin clients and tools over the wire, with a raw client:
//! DescribeTopicPartitions (paging with the cursor), DescribeLogDirs, ListConfigResources, and
//! DescribeConfigs of groups and broker loggers.

mod common;

use common::*;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

fn describe_partitions(topics: &[&str], limit: i32, cursor: Option<(&str, i32)>) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| Cursor::default().with_topic_name(name(t)).with_partition_index(p)))
}

/// What Kafka 4.4 grants on a topic without an authorizer (READ … ALTER_CONFIGS).
const TOPIC_OPERATIONS: i32 = 3576;

#[tokio::test]
async fn describe_topic_partitions_reports_what_metadata_does_plus_ids_and_elr() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "two", 2, &[]).await, 0);
    let resp = c
        .send(
            0,
            &describe_partitions(&["two", "no-such-topic", "bad/name"], 2000, None),
        )
        .await;
    assert_eq!(resp.next_cursor, None);
    let [bad, missing, two] = &resp.topics[..] else {
        panic!("three topics in name order: {resp:?}");
    };
    assert_eq!(bad.error_code, ResponseError::InvalidTopicException.code());
    assert_eq!(missing.error_code, ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(missing.topic_id, uuid::Uuid::nil());
    assert!(missing.partitions.is_empty());
    assert_eq!(two.error_code, 0);
    assert_eq!(two.name.as_ref().map(|n| n.0.as_str()), Some("two"));
    assert_eq!(two.topic_authorized_operations, TOPIC_OPERATIONS);
    assert!(!two.is_internal);

    let meta = c
        .send(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(name("two")))
            ])),
        )
        .await;
    let expected = &meta.topics[0];
    assert_eq!(two.topic_id, expected.topic_id);
    assert_eq!(two.partitions.len(), 2);
    for (p, m) in two.partitions.iter().zip(&expected.partitions) {
        assert_eq!(
            (p.error_code, p.partition_index, p.leader_id, p.leader_epoch),
            (0, m.partition_index, m.leader_id, m.leader_epoch)
        );
        assert_eq!((&p.replica_nodes, &p.isr_nodes), (&m.replica_nodes, &m.isr_nodes));
        assert_eq!(p.leader_id, BrokerId(1));
        assert!(p.offline_replicas.is_empty());
        // As Kafka without ELR data: empty lists, not null.
        assert_eq!(p.eligible_leader_replicas, Some(vec![]));
        assert_eq!(p.last_known_elr, Some(vec![]));
    }
}

#[tokio::test]
async fn describe_topic_partitions_pages_every_topic_with_the_cursor() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    for (topic, partitions) in [("a", 3), ("b", 1), ("c", 2)] {
        assert_eq!(create_topic(&mut c, topic, partitions, &[]).await, 0);
    }
    // Every topic, two partitions a page, until the cursor runs out.
    let mut seen = Vec::new();
    let mut cursor: Option<(String, i32)> = None;
    for _ in 0..10 {
        let req = describe_partitions(&[], 2, cursor.as_ref().map(|(t, p)| (t.as_str(), *p)));
        let resp = c.send(0, &req).await;
        let partitions: usize = resp.topics.iter().map(|t| t.partitions.len()).sum();
        assert!(partitions <= 2, "{resp:?}");
        for t in &resp.topics {
            let topic = t.name.as_ref().unwrap().0.to_string();
            seen.extend(t.partitions.iter().map(|p| (topic.clone(), p.partition_index)));
        }
        cursor = resp
            .next_cursor
            .map(|n| (n.topic_name.0.to_string(), n.partition_index));
        if cursor.is_none() {
            break;
        }
    }
    let expected: Vec<(String, i32)> = [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("c", 0), ("c", 1)]
        .iter()
        .map(|(t, p)| (t.to_string(), *p))
        .collect();
    assert_eq!(seen, expected);

    // A cursor outside the named topics: every named topic gets INVALID_REQUEST, as in Kafka.
    let resp = c.send(0, &describe_partitions(&["a", "b"], 10, Some(("c", 0)))).await;
    assert_eq!(resp.topics.len(), 2);
    assert!(resp
        .topics
        .iter()
        .all(|t| t.error_code == ResponseError::InvalidRequest.code() && t.partitions.is_empty()));
}

fn describe_log_dirs(topics: Option<&[(&str, &[i32])]>) -> DescribeLogDirsRequest {
    DescribeLogDirsRequest::default().with_topics(topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(name(t))
                    .with_partitions(ps.to_vec())
            })
            .collect()
    }))
}

/// Bytes of a partition's segment files on disk, as Kafka counts a log's size.
fn segment_bytes(data: &std::path::Path, topic: &str, partition: i32) -> i64 {
    std::fs::read_dir(data.join(format!("{topic}-{partition}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len() as i64)
        .sum()
}

#[tokio::test]
async fn describe_log_dirs_reports_partition_sizes_and_the_volume() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "logs", 2, &[]).await, 0);
    assert_eq!(create_topic(&mut c, "other", 1, &[]).await, 0);
    let records = batch(
        &[b"one", b"two", b"three"],
        1000,
        kafka_protocol::records::Compression::None,
    );
    assert_eq!(produce(&mut c, "logs", 1, records).await.0, 0);

    let resp = c.send(4, &describe_log_dirs(None)).await;
    assert_eq!(resp.error_code, 0);
    let [dir] = &resp.results[..] else {
        panic!("one log dir: {resp:?}")
    };
    assert_eq!(dir.error_code, 0);
    assert_eq!(std::path::Path::new(dir.log_dir.as_str()), broker.data.as_path());
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes);
    let names: Vec<&str> = dir.topics.iter().map(|t| t.name.0.as_str()).collect();
    assert_eq!(names, ["logs", "other"], "the metadata log is not a partition");
    let logs = &dir.topics[0].partitions;
    assert_eq!(logs.iter().map(|p| p.partition_index).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(logs[0].partition_size, 0);
    assert!(logs[1].partition_size > 0);
    for p in logs {
        assert_eq!(p.partition_size, segment_bytes(&broker.data, "logs", p.partition_index));
        assert_eq!((p.offset_lag, p.is_future_key), (0, false));
    }

    // Only what is named; a topic named with no partitions, or not hosted, gives nothing.
    let wanted: &[(&str, &[i32])] = &[("logs", &[1]), ("other", &[]), ("missing", &[0])];
    let resp = c.send(4, &describe_log_dirs(Some(wanted))).await;
    let topics = &resp.results[0].topics;
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].name.0.as_str(), "logs");
    assert_eq!(topics[0].partitions.len(), 1);
    assert_eq!(topics[0].partitions[0].partition_index, 1);

    // Before v4 there are no volume sizes: the fields keep their "unknown" default.
    let resp = c.send(1, &describe_log_dirs(None)).await;
    assert_eq!((resp.results[0].total_bytes, resp.results[0].usable_bytes), (-1, -1));
    assert_eq!(resp.results[0].topics.len(), 2);
}

fn resources(resp: &ListConfigResourcesResponse) -> Vec<(i8, String)> {
    resp.config_resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect()
}

#[tokio::test]
async fn list_config_resources_lists_topics_and_brokers_by_type() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    for topic in ["b-topic", "a-topic"] {
        assert_eq!(create_topic(&mut c, topic, 1, &[]).await, 0);
    }
    let list = |types: &[i8]| ListConfigResourcesRequest::default().with_resource_types(types.to_vec());
    let resp = c.send(1, &list(&[])).await;
    assert_eq!(resp.error_code, 0);
    let expected: Vec<(i8, String)> = [(8, "1"), (4, "1"), (2, "a-topic"), (2, "b-topic")]
        .iter()
        .map(|(t, n)| (*t, n.to_string()))
        .collect();
    assert_eq!(
        resources(&resp),
        expected,
        "broker loggers, brokers, topics; no groups or metrics"
    );

    let resp = c.send(1, &list(&[2])).await;
    assert_eq!(resources(&resp), expected[2..]);
    // Groups exist only through their configs, which Sluice has none of.
    let resp = c.send(1, &list(&[32, 16])).await;
    assert_eq!((resp.error_code, resources(&resp)), (0, vec![]));

    let resp = c.send(1, &list(&[2, 7])).await;
    assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    assert!(resp.config_resources.is_empty());

    // v0 (ListClientMetricsResources) lists client metrics only.
    let resp = c.send(0, &ListConfigResourcesRequest::default()).await;
    assert_eq!((resp.error_code, resources(&resp)), (0, vec![]));
}

fn describe_configs(resource_type: i8, name: &str) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))])
}

/// Regression (issue 10): DescribeConfigs of a GROUP resource answered INVALID_REQUEST, so
/// `kafka-configs --describe --entity-type groups` failed once a group existed. Kafka 4.4 lists
/// the group configs (share groups' among them) at their defaults.
#[tokio::test]
async fn describe_configs_of_a_group_lists_the_group_configs_at_their_defaults() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let r = c.send(4, &describe_configs(32, "any-group")).await.results.remove(0);
    assert_eq!(r.error_code, 0);
    // Kafka 4 lists every group config of a group without overrides, at its default.
    let names: Vec<String> = r.configs.iter().map(|e| e.name.to_string()).collect();
    assert!(names.iter().any(|n| n == "share.auto.offset.reset"), "{names:?}");
    let r = c.send(4, &describe_configs(32, "")).await.results.remove(0);
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
    assert_eq!(r.error_message.as_deref(), Some("Group name must not be empty"));
}

/// Regression (issue 10): DescribeConfigs of BROKER_LOGGER answered INVALID_REQUEST; Kafka
/// lists its loggers and their levels. Sluice's are the directives of logging.level.
#[tokio::test]
async fn describe_configs_of_broker_loggers_lists_the_logging_levels() {
    let broker = TestBroker::start(&["logging.level=sluice::api=debug,warn"]).await;
    let mut c = broker.client().await;
    let r = c.send(4, &describe_configs(8, "1")).await.results.remove(0);
    assert_eq!(r.error_code, 0);
    let levels: Vec<(String, String, i8)> = r
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.value.as_deref().unwrap_or("").to_string(),
                e.config_source,
            )
        })
        .collect();
    let expected = [("root", "WARN"), ("sluice::api", "DEBUG"), ("openraft", "WARN")];
    // Kafka's source for a logger: DYNAMIC_BROKER_LOGGER_CONFIG (6).
    let expected: Vec<_> = expected
        .iter()
        .map(|(n, l)| (n.to_string(), l.to_string(), 6))
        .collect();
    assert_eq!(levels, expected);
    for (name, message) in [
        ("", "Broker id must not be empty"),
        ("2", "Unexpected broker id, expected 1 but received 2"),
    ] {
        let r = c.send(4, &describe_configs(8, name)).await.results.remove(0);
        assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
        assert_eq!(r.error_message.as_deref(), Some(message));
    }
}
