//! Authorization end to end, in-process: a broker with Kafka's StandardAuthorizer, a SASL
//! listener with alice (a super user) and bob; ACLs created, described and deleted over the
//! wire, kept in the metadata log across a restart, and applied to requests.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

const AUTHORIZER: &str = "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const SETTINGS: &[&str] = &[
    "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
    "sasl.plain.users=alice:alice-secret,bob:bob-secret",
    AUTHORIZER,
    "super.users=User:alice",
];

// Kafka's codes: resource TOPIC 2, CLUSTER 4; pattern ANY 1, LITERAL 3, PREFIXED 4;
// operation ANY 1, READ 3, WRITE 4, DESCRIBE 8; permission ANY 1, DENY 2, ALLOW 3.
const TOPIC: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const WRITE: i8 = 4;
const ALLOW: i8 = 3;
const DENY: i8 = 2;

/// A client of the SASL listener, authenticated as `user` (password `<user>-secret`).
async fn login(broker: &TestBroker, user: &str) -> Client {
    let addr = broker.server.as_ref().unwrap().kafka_addrs[1];
    let mut c = Client::connect(addr).await;
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    assert_eq!(c.send(1, &hs).await.error_code, 0);
    let token = format!("\0{user}\0{user}-secret");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token.into_bytes()));
    assert_eq!(c.send(2, &auth).await.error_code, 0);
    c
}

fn acl(name: &str, pattern: i8, operation: i8, permission: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(StrBytes::from_string(name.into()))
        .with_resource_pattern_type(pattern)
        .with_principal(StrBytes::from_static_str("User:bob"))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

async fn create_acls(c: &mut Client, acls: Vec<AclCreation>) -> Vec<i16> {
    let resp = c.send(3, &CreateAclsRequest::default().with_creations(acls)).await;
    resp.results.iter().map(|r| r.error_code).collect()
}

fn describe_all() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

/// (topic, partition error) of each topic of a produce of one batch to each of `topics`.
async fn produce_each(c: &mut Client, topics: &[&str]) -> Vec<(String, i16)> {
    let mut req = produce_request(topics[0], 0, batch(&[b"v"], 1, Compression::None), -1);
    for t in &topics[1..] {
        let more = produce_request(t, 0, batch(&[b"v"], 1, Compression::None), -1);
        req.topic_data.extend(more.topic_data);
    }
    let resp = c.send(9, &req).await;
    let mut out: Vec<(String, i16)> = resp
        .responses
        .iter()
        .map(|t| (t.name.0.to_string(), t.partition_responses[0].error_code))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn produce_is_refused_per_topic_until_an_acl_allows_it_and_a_deny_wins() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut alice = login(&broker, "alice").await;
    for t in ["orders-1", "orders-2", "audit"] {
        assert_eq!(create_topic(&mut alice, t, 1, &[]).await, 0);
    }
    let mut bob = login(&broker, "bob").await;
    let refused = ResponseError::TopicAuthorizationFailed.code();
    assert_eq!(
        produce_each(&mut bob, &["orders-1", "audit"]).await,
        vec![("audit".into(), refused), ("orders-1".into(), refused)]
    );
    let created = create_acls(
        &mut alice,
        vec![
            acl("orders-", PREFIXED, WRITE, ALLOW),
            acl("orders-2", LITERAL, WRITE, DENY),
        ],
    )
    .await;
    assert_eq!(created, vec![0, 0]);
    assert_eq!(
        produce_each(&mut bob, &["orders-1", "orders-2", "audit"]).await,
        vec![
            ("audit".into(), refused),
            ("orders-1".into(), 0),
            ("orders-2".into(), refused)
        ],
        "the allowed topic is written in the same request as the refused ones"
    );
    // bob may not manage ACLs: ALTER on the cluster.
    let denied = create_acls(&mut bob, vec![acl("audit", LITERAL, WRITE, ALLOW)]).await;
    assert_eq!(denied, vec![ResponseError::ClusterAuthorizationFailed.code()]);
    assert!(broker
        .scrape()
        .await
        .contains("sluice_authorization_denials_total{api=\"Produce\""));
}

#[tokio::test]
async fn metadata_lists_only_describable_topics_with_their_authorized_operations() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut alice = login(&broker, "alice").await;
    for t in ["shared", "hidden"] {
        assert_eq!(create_topic(&mut alice, t, 1, &[]).await, 0);
    }
    assert_eq!(
        create_acls(&mut alice, vec![acl("shared", LITERAL, WRITE, ALLOW)]).await,
        vec![0]
    );
    let mut bob = login(&broker, "bob").await;
    let all = MetadataRequest::default()
        .with_topics(None)
        .with_include_topic_authorized_operations(true);
    let md = bob.send(12, &all).await;
    let listed: Vec<(String, i32)> = md
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.topic_authorized_operations))
        .collect();
    assert_eq!(
        listed,
        vec![("shared".to_string(), (1 << 4) | (1 << 8))],
        "WRITE and the DESCRIBE it implies"
    );
    let asked = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name("hidden")))
    ]));
    let md = bob.send(12, &asked).await;
    assert_eq!(md.topics[0].error_code, ResponseError::TopicAuthorizationFailed.code());
    assert!(md.topics[0].partitions.is_empty());
}

#[tokio::test]
async fn acls_are_kept_in_the_metadata_log_across_a_restart_and_deleted_by_filter() {
    let mut broker = TestBroker::start(SETTINGS).await;
    let mut alice = login(&broker, "alice").await;
    let created = create_acls(
        &mut alice,
        vec![
            acl("t", LITERAL, WRITE, ALLOW),
            acl("t", LITERAL, WRITE, ALLOW),
            acl("p-", PREFIXED, WRITE, DENY),
        ],
    )
    .await;
    assert_eq!(created, vec![0, 0, 0], "an ACL created twice is one ACL");
    let before = alice.send(3, &describe_all()).await;
    assert_eq!(before.resources.len(), 2, "{before:?}");
    broker.restart(SETTINGS).await;
    let mut alice = login(&broker, "alice").await;
    let described = alice.send(3, &describe_all()).await;
    assert_eq!(described.error_code, 0);
    let mut patterns: Vec<(String, i8, usize)> = described
        .resources
        .iter()
        .map(|r| (r.resource_name.to_string(), r.pattern_type, r.acls.len()))
        .collect();
    patterns.sort();
    assert_eq!(patterns, vec![("p-".into(), PREFIXED, 1), ("t".into(), LITERAL, 1)]);
    // MATCH on the name "p-x" selects the prefixed ACL that covers it.
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(StrBytes::from_static_str("p-x")))
        .with_pattern_type_filter(2)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let deleted = alice
        .send(3, &DeleteAclsRequest::default().with_filters(vec![filter]))
        .await;
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    assert_eq!(deleted.filter_results[0].matching_acls[0].resource_name.as_str(), "p-");
    let left = alice.send(3, &describe_all()).await;
    assert_eq!(left.resources.len(), 1);
}

#[tokio::test]
async fn acl_apis_answer_security_disabled_without_an_authorizer() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let created = create_acls(&mut c, vec![acl("t", LITERAL, WRITE, ALLOW)]).await;
    assert_eq!(created, vec![ResponseError::SecurityDisabled.code()]);
    let described = c.send(3, &describe_all()).await;
    assert_eq!(described.error_code, ResponseError::SecurityDisabled.code());
}

#[tokio::test]
async fn group_heartbeats_need_read_on_the_group_and_describe_on_topics_and_state_rpcs_cluster_action() {
    use kafka_protocol::messages::read_share_group_state_request::{PartitionData, ReadStateData};
    const GROUP: i8 = 3;
    const READ: i8 = 3;
    let broker = TestBroker::start(SETTINGS).await;
    let mut alice = login(&broker, "alice").await;
    assert_eq!(create_topic(&mut alice, "jobs", 1, &[]).await, 0);
    let mut bob = login(&broker, "bob").await;
    let heartbeat = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("workers")))
        .with_member_id(StrBytes::from_static_str("AAAAAAAAAAAAAAAAAAAAAA"))
        .with_subscribed_topic_names(Some(vec![name("jobs")]));
    let refused_group = ResponseError::GroupAuthorizationFailed.code();
    assert_eq!(bob.send(1, &heartbeat).await.error_code, refused_group);

    let group_read = acl("workers", LITERAL, READ, ALLOW).with_resource_type(GROUP);
    assert_eq!(create_acls(&mut alice, vec![group_read]).await, vec![0]);
    assert_eq!(
        bob.send(1, &heartbeat).await.error_code,
        ResponseError::TopicAuthorizationFailed.code(),
        "READ on the group, but no DESCRIBE on the subscribed topic"
    );

    let consumer = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("workers")))
        .with_member_id(StrBytes::from_static_str("AAAAAAAAAAAAAAAAAAAAAA"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30000)
        .with_subscribed_topic_names(Some(vec![name("jobs")]));
    assert_eq!(
        bob.send(1, &consumer).await.error_code,
        ResponseError::TopicAuthorizationFailed.code(),
        "a KIP-848 heartbeat needs DESCRIBE on its subscribed topics too"
    );

    let describe = ShareGroupDescribeRequest::default().with_group_ids(vec![
        GroupId(StrBytes::from_static_str("workers")),
        GroupId(StrBytes::from_static_str("others")),
    ]);
    let described = bob.send(1, &describe).await;
    let codes: Vec<(&str, i16)> = described
        .groups
        .iter()
        .map(|g| (g.group_id.0.as_str(), g.error_code))
        .collect();
    assert_eq!(codes[0], ("others", refused_group), "refused groups come first");
    // READ implies DESCRIBE: "workers" gets past the check (to the coordinator's answer).
    assert!(codes[1].0 == "workers" && codes[1].1 != refused_group, "{codes:?}");

    let state = ReadShareGroupStateRequest::default()
        .with_group_id(StrBytes::from_static_str("workers"))
        .with_topics(vec![ReadStateData::default()
            .with_topic_id(uuid::Uuid::new_v4())
            .with_partitions(vec![PartitionData::default().with_partition(0)])]);
    let read = bob.send(0, &state).await;
    assert_eq!(
        read.results[0].partitions[0].error_code,
        ResponseError::ClusterAuthorizationFailed.code(),
        "the share-state RPCs are for brokers"
    );
}
