//! OffsetCommit and OffsetFetch.

use kafka_protocol::ResponseError;

use super::super::api::Event;
use super::super::records::{OffsetCommitValue, Record};
use super::super::state::GroupState;
use super::{Sim, GROUP};

fn fetched(sim: &Sim, group: &str, topic: &str, partition: i32) -> i64 {
    let topics = [(topic.to_owned(), vec![partition])];
    sim.state.fetch_offsets(group, Some(&topics)).topics[0].partitions[0].offset
}

#[test]
fn commit_from_the_current_generation_is_answered_after_its_append() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    sim.auto_persist = false;
    let req = sim.commit(GROUP, &leader, generation, &[("t1", 0, 100), ("t1", 1, 200)]);
    assert!(!sim.answered(req));
    assert_eq!(fetched(&sim, GROUP, "t1", 0), -1, "not visible before it is in the log");
    sim.persist_next(Ok(()));
    assert_eq!(sim.commit_error(req), None);
    assert_eq!(fetched(&sim, GROUP, "t1", 0), 100);
    assert_eq!(fetched(&sim, GROUP, "t1", 1), 200);
    let records = sim.log_records();
    let Some(Record::OffsetCommit {
        group,
        topic,
        partition,
        value: Some(v),
    }) = records.last()
    else {
        panic!()
    };
    assert_eq!((group.as_str(), topic.as_str(), *partition), (GROUP, "t1", 1));
    assert_eq!(
        (v.offset, v.leader_epoch, v.metadata.as_str(), v.expire_timestamp_ms),
        (200, 3, "m", -1)
    );
    assert_eq!(v.commit_timestamp_ms, sim.now);
}

#[test]
fn commit_from_a_stale_generation_is_fenced() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = sim.stable_group(GROUP, 2);
    let a = sim.join(GROUP, &leader);
    let follower = ids.iter().find(|id| **id != leader).unwrap().clone();
    sim.join(GROUP, &follower);
    assert_eq!(sim.join_response(a).generation_id, generation + 1);
    let req = sim.commit(GROUP, &follower, generation, &[("t1", 0, 5)]);
    assert_eq!(sim.commit_error(req), Some(ResponseError::IllegalGeneration));
    assert_eq!(fetched(&sim, GROUP, "t1", 0), -1);
}

#[test]
fn commit_during_completing_rebalance_is_rebalance_in_progress() {
    let mut sim = Sim::new();
    let id = sim.new_member_id(GROUP);
    let req = sim.join(GROUP, &id);
    sim.run_until_answered(&[req]);
    let req = sim.commit(GROUP, &id, 1, &[("t1", 0, 5)]);
    assert_eq!(sim.commit_error(req), Some(ResponseError::RebalanceInProgress));
}

#[test]
fn commit_during_preparing_rebalance_from_the_old_generation_is_accepted() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = sim.stable_group(GROUP, 2);
    sim.join(GROUP, &leader);
    let follower = ids.iter().find(|id| **id != leader).unwrap();
    let req = sim.commit(GROUP, follower, generation, &[("t1", 0, 5)]);
    assert_eq!(sim.commit_error(req), None);
}

#[test]
fn simple_consumer_commit_creates_an_empty_group_and_is_accepted() {
    let mut sim = Sim::new();
    let req = sim.commit("simple", "", -1, &[("t1", 0, 42)]);
    assert_eq!(sim.commit_error(req), None);
    let group = sim.group("simple");
    assert_eq!((group.state, group.protocol_type.as_deref()), (GroupState::Empty, None));
    assert_eq!(fetched(&sim, "simple", "t1", 0), 42);
}

#[test]
fn simple_commit_to_a_group_with_members_is_unknown_member() {
    let mut sim = Sim::new();
    sim.stable_group(GROUP, 1);
    let req = sim.commit(GROUP, "", -1, &[("t1", 0, 1)]);
    assert_eq!(sim.commit_error(req), Some(ResponseError::UnknownMemberId));
}

#[test]
fn commit_with_a_generation_to_an_unknown_group_is_rejected_by_version() {
    let mut sim = Sim::new();
    let req = sim.commit("nope", "m", 3, &[("t1", 0, 1)]);
    assert_eq!(sim.commit_error(req), Some(ResponseError::IllegalGeneration));
    let mut r = sim.commit_request("nope", "m", 3, &[("t1", 0, 1)]);
    r.api_version = 9;
    let req = r.req;
    sim.send(Event::CommitOffsets(r));
    assert_eq!(sim.commit_error(req), Some(ResponseError::GroupIdNotFound));
    assert!(sim.state.group("nope").is_none());
}

#[test]
fn oversized_metadata_fails_only_its_partition() {
    let mut sim = Sim::new();
    let mut r = sim.commit_request("simple", "", -1, &[("t1", 0, 1), ("t1", 1, 2)]);
    r.topics[0].partitions[1].metadata = Some("x".repeat(4_097));
    let req = r.req;
    sim.send(Event::CommitOffsets(r));
    let response = sim.commit_response(req);
    assert_eq!(
        response.topics[0].partitions,
        vec![(0, None), (1, Some(ResponseError::OffsetMetadataTooLarge))]
    );
    assert_eq!(fetched(&sim, "simple", "t1", 0), 1);
    assert_eq!(fetched(&sim, "simple", "t1", 1), -1);
}

#[test]
fn failed_commit_append_is_not_coordinator_and_not_materialised() {
    let mut sim = Sim::new();
    sim.auto_persist = false;
    let req = sim.commit("simple", "", -1, &[("t1", 0, 9)]);
    sim.persist_next(Err(ResponseError::NotLeaderOrFollower));
    assert_eq!(sim.commit_error(req), Some(ResponseError::NotCoordinator));
    assert_eq!(fetched(&sim, "simple", "t1", 0), -1);
    assert!(sim.group("simple").pending_offset_commits.is_empty());
}

#[test]
fn commit_with_retention_is_written_with_an_expire_timestamp() {
    let mut sim = Sim::new();
    let mut r = sim.commit_request("simple", "", -1, &[("t1", 0, 1)]);
    r.api_version = 2;
    r.retention_time_ms = 60_000;
    sim.send(Event::CommitOffsets(r));
    let (_, value) = sim.log.last().unwrap();
    let value = value.as_ref().unwrap();
    assert_eq!(&value[..2], &[0, 1], "written as OffsetCommitValue v1");
    let decoded = OffsetCommitValue::decode(value).unwrap();
    assert_eq!(decoded.expire_timestamp_ms, sim.now + 60_000);
}

#[test]
fn offset_fetch_without_topics_returns_every_committed_partition() {
    let mut sim = Sim::new();
    let req = sim.commit("simple", "", -1, &[("t1", 0, 1), ("t1", 2, 3), ("t2", 0, 7)]);
    assert_eq!(sim.commit_error(req), None);
    let all = sim.state.fetch_offsets("simple", None);
    let seen: Vec<(String, i32, i64)> = all
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.clone(), p.partition, p.offset))
        })
        .collect();
    assert_eq!(
        seen,
        vec![("t1".into(), 0, 1), ("t1".into(), 2, 3), ("t2".into(), 0, 7)]
    );
    assert!(all
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .all(|p| p.leader_epoch == 3 && p.metadata == "m"));
    assert!(sim.state.fetch_offsets("unknown", None).topics.is_empty());
}

#[test]
fn offset_fetch_of_uncommitted_partitions_gives_minus_one() {
    let mut sim = Sim::new();
    sim.commit("simple", "", -1, &[("t1", 0, 1)]);
    let topics = [("t1".to_owned(), vec![0, 1]), ("t9".to_owned(), vec![0])];
    let fetched = sim.state.fetch_offsets("simple", Some(&topics));
    assert_eq!(fetched.topics[0].partitions[0].offset, 1);
    assert_eq!(fetched.topics[0].partitions[1].offset, -1);
    assert_eq!(fetched.topics[0].partitions[1].leader_epoch, -1);
    assert_eq!(fetched.topics[1].partitions[0].offset, -1);
    let unknown = sim.state.fetch_offsets("unknown", Some(&topics));
    assert_eq!(unknown.error, None);
    assert_eq!(unknown.topics[1].partitions[0].offset, -1);
}

#[test]
fn commit_keeps_the_member_session_alive() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    for _ in 0..10 {
        sim.advance(6_000);
        let req = sim.commit(GROUP, &leader, generation, &[("t1", 0, 1)]);
        assert_eq!(sim.commit_error(req), None);
    }
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
}

#[test]
fn partition_given_twice_in_one_commit_ends_with_the_last_offset() {
    let mut sim = Sim::new();
    let req = sim.commit("simple", "", -1, &[("t1", 0, 1), ("t1", 0, 2)]);
    assert_eq!(sim.commit_error(req), None);
    assert_eq!(
        fetched(&sim, "simple", "t1", 0),
        2,
        "as the log, where the last record wins"
    );
    assert!(sim.group("simple").pending_offset_commits.is_empty());
}
