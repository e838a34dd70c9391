//! DeleteGroups, OffsetDelete, deleted partitions.

use kafka_protocol::ResponseError;

use super::super::api::{DeleteGroupsRequest, Event, OffsetDeleteRequest, OffsetDeleteResponse, Response};
use super::super::records::Record;
use super::super::state::GroupState;
use super::{protocol, Sim, GROUP};

fn delete_groups(sim: &mut Sim, ids: &[&str]) -> Vec<(String, Option<ResponseError>)> {
    let req = sim.next_req();
    sim.send(Event::DeleteGroups(DeleteGroupsRequest {
        req,
        group_ids: ids.iter().map(|s| (*s).into()).collect(),
    }));
    match sim.responses.get(&req) {
        Some(Response::DeleteGroups(r)) => r.results.clone(),
        other => panic!("expected a DeleteGroups response, got {other:?}"),
    }
}

fn delete_offsets(sim: &mut Sim, group: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteResponse {
    let req = sim.next_req();
    let topics = topics.iter().map(|(t, ps)| ((*t).to_owned(), ps.to_vec())).collect();
    sim.send(Event::OffsetDelete(OffsetDeleteRequest {
        req,
        group_id: group.into(),
        topics,
    }));
    match sim.responses.get(&req) {
        Some(Response::OffsetDelete(r)) => r.clone(),
        other => panic!("expected an OffsetDelete response, got {other:?}"),
    }
}

#[test]
fn delete_groups_refuses_a_group_with_members() {
    let mut sim = Sim::new();
    sim.stable_group(GROUP, 1);
    assert_eq!(
        delete_groups(&mut sim, &[GROUP]),
        vec![(GROUP.to_owned(), Some(ResponseError::NonEmptyGroup))]
    );
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
}

#[test]
fn delete_groups_of_an_empty_group_tombstones_its_offsets_then_the_group() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    sim.commit(GROUP, &leader, generation, &[("t1", 0, 5), ("t2", 1, 6)]);
    sim.leave(GROUP, &[(&leader, None)]);
    let before = sim.log.len();
    sim.auto_persist = false;
    let req = sim.next_req();
    sim.send(Event::DeleteGroups(DeleteGroupsRequest {
        req,
        group_ids: vec![GROUP.into(), "missing".into()],
    }));
    assert!(!sim.answered(req), "answered once the tombstones are in the log");
    assert!(sim.state.group(GROUP).is_none());
    sim.persist_next(Ok(()));
    let Some(Response::DeleteGroups(r)) = sim.responses.get(&req) else {
        panic!()
    };
    assert_eq!(
        r.results,
        vec![
            (GROUP.to_owned(), None),
            ("missing".to_owned(), Some(ResponseError::GroupIdNotFound))
        ]
    );
    let tombstones: Vec<Record> = sim.log_records().split_off(before);
    assert_eq!(
        tombstones,
        vec![
            Record::OffsetCommit {
                group: GROUP.into(),
                topic: "t1".into(),
                partition: 0,
                value: None
            },
            Record::OffsetCommit {
                group: GROUP.into(),
                topic: "t2".into(),
                partition: 1,
                value: None
            },
            Record::GroupMetadata {
                group: GROUP.into(),
                value: None
            },
        ]
    );
    assert_eq!(sim.state.describe_group(GROUP).state, "Dead");
}

#[test]
fn offset_commit_in_flight_during_delete_does_not_come_back() {
    let mut sim = Sim::new();
    sim.auto_persist = false;
    let commit = sim.commit("simple", "", -1, &[("t1", 0, 5)]);
    let req = sim.next_req();
    sim.send(Event::DeleteGroups(DeleteGroupsRequest {
        req,
        group_ids: vec!["simple".into()],
    }));
    sim.persist_next(Ok(())); // the commit
    sim.persist_next(Ok(())); // the tombstones, which cover the pending commit too
    assert_eq!(sim.commit_error(commit), None);
    assert!(sim.state.group("simple").is_none());
    let last_two: Vec<Record> = sim.log_records().split_off(1);
    assert_eq!(
        last_two[0],
        Record::OffsetCommit {
            group: "simple".into(),
            topic: "t1".into(),
            partition: 0,
            value: None
        }
    );
}

#[test]
fn offset_delete_refuses_topics_the_group_consumes() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1); // subscribes to t1
    sim.commit(GROUP, &leader, generation, &[("t1", 0, 5), ("old", 0, 6)]);
    let response = delete_offsets(&mut sim, GROUP, &[("t1", &[0]), ("old", &[0, 1])]);
    assert_eq!(response.error, None);
    assert_eq!(
        response.topics[0].partitions,
        vec![(0, Some(ResponseError::GroupSubscribedToTopic))]
    );
    assert_eq!(response.topics[1].partitions, vec![(0, None), (1, None)]);
    let offsets = &sim.group(GROUP).offsets;
    assert!(offsets.contains_key("t1") && !offsets.contains_key("old"));
    let Some(Record::OffsetCommit { topic, value: None, .. }) = sim.log_records().pop() else {
        panic!()
    };
    assert_eq!(topic, "old");
}

#[test]
fn offset_delete_on_a_non_consumer_group_with_members_is_non_empty_group() {
    let mut sim = Sim::new();
    let mut r = sim.join_request("connect", "");
    r.api_version = 3;
    r.protocol_type = "connect".into();
    r.protocols = vec![protocol("default", &[])];
    let req = sim.send_join(r);
    sim.run_until_answered(&[req]);
    let response = delete_offsets(&mut sim, "connect", &[("t1", &[0])]);
    assert_eq!(response.error, Some(ResponseError::NonEmptyGroup));
    assert_eq!(
        delete_offsets(&mut sim, "unknown", &[("t1", &[0])]).error,
        Some(ResponseError::GroupIdNotFound)
    );
}

#[test]
fn deleted_partitions_lose_their_offsets_in_every_group() {
    let mut sim = Sim::new();
    sim.commit("a", "", -1, &[("t1", 0, 1), ("t1", 1, 1)]);
    sim.commit("b", "", -1, &[("t1", 0, 2)]);
    sim.send(Event::PartitionsDeleted {
        partitions: vec![("t1".into(), 0)],
    });
    assert!(!sim.group("a").has_offset_or_pending("t1", 0));
    assert!(sim.group("a").has_offset_or_pending("t1", 1));
    assert!(!sim.group("b").has_offset_or_pending("t1", 0));
    let tombstones = sim
        .log_records()
        .into_iter()
        .filter(|r| matches!(r, Record::OffsetCommit { value: None, .. }))
        .count();
    assert_eq!(tombstones, 2);
}
