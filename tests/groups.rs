//! Consumer groups over the wire with a raw client: coordinator lookup, one member's
//! join/sync/heartbeat, committed offsets (also across a restart), and the admin views.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

const SETTINGS: &[&str] = &["group.initial.rebalance.delay.ms=0", "offsets.topic.num.partitions=4"];

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

async fn find_coordinator(c: &mut Client, g: &str) -> FindCoordinatorResponse {
    c.send(
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_string(g.to_string())),
    )
    .await
}

/// Joins as a new member (KIP-394 round trip), syncs as leader; returns (member id, generation).
async fn join_and_sync(c: &mut Client, g: &str) -> (StrBytes, i32) {
    let join = |member: StrBytes| {
        JoinGroupRequest::default()
            .with_group_id(group(g))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(member)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"m"))])
    };
    let first = c.send(5, &join(StrBytes::default())).await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let joined = c.send(5, &join(first.member_id.clone())).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    let sync = SyncGroupRequest::default()
        .with_group_id(group(g))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(joined.member_id.clone())
            .with_assignment(Bytes::from_static(b"assigned"))]);
    let synced = c.send(3, &sync).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"assigned");
    (joined.member_id, joined.generation_id)
}

async fn commit(c: &mut Client, g: &str, member: &StrBytes, generation: i32, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(group(g))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member.clone())
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name("t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(StrBytes::from_static_str("meta")))])]);
    c.send(8, &req).await.topics[0].partitions[0].error_code
}

async fn fetch_committed(c: &mut Client, g: &str) -> (i64, Option<String>) {
    let req = OffsetFetchRequest::default()
        .with_group_id(group(g))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name("t"))
            .with_partition_indexes(vec![0])]));
    let resp = c.send(7, &req).await;
    let p = &resp.topics[0].partitions[0];
    (p.committed_offset, p.metadata.as_ref().map(|m| m.to_string()))
}

#[tokio::test]
async fn find_coordinator_creates_the_offsets_topic_and_names_this_broker() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    let resp = find_coordinator(&mut c, "g").await;
    assert_eq!(resp.error_code, 0);
    assert_eq!((resp.node_id.0, resp.port), (1, broker.addr.port() as i32));
    let meta = c.send(12, &MetadataRequest::default().with_topics(None)).await;
    let offsets = meta
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "__consumer_offsets"))
        .unwrap();
    assert!(offsets.is_internal);
    assert_eq!(offsets.partitions.len(), 4);
}

#[tokio::test]
async fn group_requests_before_the_offsets_topic_exists_say_coordinator_not_available() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    let hb = HeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(1)
        .with_member_id(StrBytes::from_static_str("m"));
    assert_eq!(
        c.send(4, &hb).await.error_code,
        ResponseError::CoordinatorNotAvailable.code()
    );
}

#[tokio::test]
async fn single_member_joins_syncs_and_heartbeats() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    find_coordinator(&mut c, "g").await;
    let (member, generation) = join_and_sync(&mut c, "g").await;
    let hb = HeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(generation)
        .with_member_id(member.clone());
    assert_eq!(c.send(4, &hb).await.error_code, 0);
    let stale = hb.clone().with_generation_id(generation - 1);
    assert_eq!(
        c.send(4, &stale).await.error_code,
        ResponseError::IllegalGeneration.code()
    );
    let described = c
        .send(5, &DescribeGroupsRequest::default().with_groups(vec![group("g")]))
        .await;
    let g = &described.groups[0];
    assert_eq!((g.group_state.as_str(), g.members.len()), ("Stable", 1));
    assert_eq!(g.authorized_operations, i32::MIN);
    let listed = c.send(4, &ListGroupsRequest::default()).await;
    assert_eq!(listed.groups.len(), 1);
}

#[tokio::test]
async fn committed_offsets_and_metadata_survive_a_restart() {
    let mut broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    find_coordinator(&mut c, "g").await;
    let (member, generation) = join_and_sync(&mut c, "g").await;
    assert_eq!(commit(&mut c, "g", &member, generation, 42).await, 0);
    assert_eq!(
        commit(&mut c, "g", &member, generation + 7, 43).await,
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(fetch_committed(&mut c, "g").await, (42, Some("meta".into())));
    drop(c);
    broker.restart(SETTINGS).await;
    let mut c = broker.client().await;
    assert_eq!(fetch_committed(&mut c, "g").await, (42, Some("meta".into())));
}

#[tokio::test]
async fn simple_consumer_commits_without_membership() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    find_coordinator(&mut c, "simple").await;
    assert_eq!(commit(&mut c, "simple", &StrBytes::default(), -1, 7).await, 0);
    assert_eq!(fetch_committed(&mut c, "simple").await.0, 7);
}

#[tokio::test]
async fn a_groups_lag_behind_the_high_watermark_is_a_metric() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    produce(
        &mut c,
        "t",
        0,
        batch(&[b"a", b"b", b"c", b"d", b"e"], 1, Compression::None),
    )
    .await;
    find_coordinator(&mut c, "lagging").await;
    assert_eq!(commit(&mut c, "lagging", &StrBytes::default(), -1, 2).await, 0);
    let body = broker.scrape().await;
    assert!(
        body.contains("sluice_consumer_group_lag{group=\"lagging\",partition=\"0\",topic=\"t\"} 3"),
        "{body}"
    );
}

#[tokio::test]
async fn commit_to_a_missing_partition_is_unknown_topic_or_partition() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    find_coordinator(&mut c, "simple").await;
    let code = commit(&mut c, "simple", &StrBytes::default(), -1, 7).await;
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
}

#[tokio::test]
async fn delete_groups_refuses_a_live_group_and_deletes_an_empty_one() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    find_coordinator(&mut c, "live").await;
    join_and_sync(&mut c, "live").await;
    commit(&mut c, "empty", &StrBytes::default(), -1, 1).await;
    let resp = c
        .send(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![group("live"), group("empty")]),
        )
        .await;
    assert_eq!(resp.results[0].error_code, ResponseError::NonEmptyGroup.code());
    assert_eq!(resp.results[1].error_code, 0);
    assert_eq!(fetch_committed(&mut c, "empty").await.0, -1);
}

#[tokio::test]
async fn clients_cannot_produce_to_the_offsets_topic() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    find_coordinator(&mut c, "g").await;
    let (code, _) = produce(
        &mut c,
        "__consumer_offsets",
        0,
        batch(&[b"x"], 1, kafka_protocol::records::Compression::None),
    )
    .await;
    assert_eq!(code, ResponseError::InvalidTopicException.code());
}

/// Kafka's JoinGroup v7+ says "no protocol" with null, never "": a join refused before the
/// coordinator exists (COORDINATOR_NOT_AVAILABLE) must not carry an empty protocol name.
#[tokio::test]
async fn refused_join_group_has_a_null_protocol_name_from_v7() {
    let broker = TestBroker::start(SETTINGS).await;
    let mut c = broker.client().await;
    let join = JoinGroupRequest::default()
        .with_group_id(group("g"))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"m"))]);
    let resp = c.send(9, &join).await;
    assert_eq!(resp.error_code, ResponseError::CoordinatorNotAvailable.code());
    assert_eq!(resp.protocol_name, None);
    let resp = c.send(6, &join).await;
    assert_eq!(resp.protocol_name.as_deref(), Some(""), "not nullable before v7");
}
