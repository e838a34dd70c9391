//! Loading a partition's groups from its records, and unloading them.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::super::api::{Action, DeleteGroupsRequest, Event, OffsetDeleteRequest, Response};
use super::super::config::GroupConfig;
use super::super::records::{GroupMetadataValue, MemberMetadataValue, OffsetCommitValue, Record, RecordError};
use super::super::replay::{load, unload};
use super::super::state::GroupState;
use super::{subscription, Sim, GROUP, SESSION_MS};

/// A log with a stable group, a simple group with one offset deleted, and a deleted group.
fn scenario() -> Sim {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 2);
    sim.commit(GROUP, &leader, generation, &[("t1", 0, 10), ("t1", 1, 11)]);
    sim.commit("simple", "", -1, &[("a", 0, 1), ("b", 0, 2)]);
    let req = sim.next_req();
    sim.send(Event::OffsetDelete(OffsetDeleteRequest {
        req,
        group_id: "simple".into(),
        topics: vec![("a".into(), vec![0])],
    }));
    sim.commit("doomed", "", -1, &[("x", 0, 1)]);
    let req = sim.next_req();
    sim.send(Event::DeleteGroups(DeleteGroupsRequest {
        req,
        group_ids: vec!["doomed".into()],
    }));
    sim
}

#[test]
fn load_rebuilds_groups_and_offsets_from_records_with_tombstones() {
    let sim = scenario();
    let loaded = load(GroupConfig::default(), 1, sim.now, sim.log.clone()).unwrap();
    let state = loaded.state;
    let names: Vec<&str> = state.groups.keys().map(String::as_str).collect();
    assert_eq!(names, vec![GROUP, "simple"]);

    let (before, after) = (sim.group(GROUP), state.group(GROUP).unwrap());
    assert_eq!(after.state, GroupState::Stable);
    assert_eq!(after.generation_id, before.generation_id);
    assert_eq!(after.leader_id, before.leader_id);
    assert_eq!(after.protocol_type, before.protocol_type);
    assert_eq!(after.protocol_name, before.protocol_name);
    assert_eq!(after.subscribed_topics, before.subscribed_topics);
    assert_eq!(after.offsets, before.offsets);
    for (id, m) in &before.members {
        let loaded = &after.members[id];
        assert_eq!(
            (&loaded.assignment, loaded.session_timeout_ms),
            (&m.assignment, m.session_timeout_ms)
        );
        assert_eq!(loaded.metadata("range"), m.metadata("range"));
    }
    assert_eq!(state.group("simple").unwrap().offsets, sim.group("simple").offsets);
    assert!(!state.group("simple").unwrap().has_offset_or_pending("a", 0));
    assert_eq!(state.describe_group(GROUP), sim.state.describe_group(GROUP));
    assert_eq!(state.fetch_offsets(GROUP, None), sim.state.fetch_offsets(GROUP, None));
}

#[test]
fn loaded_members_resume_their_sessions() {
    let sim = scenario();
    let loaded = load(GroupConfig::default(), 1, sim.now, sim.log.clone()).unwrap();
    let session_timers = loaded
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::ScheduleTimer {
                    key: super::super::api::TimerKey::Heartbeat { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(session_timers, 2);
    let mut restarted = Sim::from_state(loaded.state, sim.now);
    restarted.apply(loaded.actions);
    let ids: Vec<String> = restarted.group(GROUP).members.keys().cloned().collect();
    let generation = restarted.group(GROUP).generation_id;
    for _ in 0..2 {
        assert_eq!(restarted.heartbeat(GROUP, &ids[0], generation), None);
        restarted.advance(i64::from(SESSION_MS) / 2);
    }
    assert!(
        !restarted.group(GROUP).members.contains_key(&ids[1]),
        "the silent one expired"
    );
    assert_eq!(restarted.state_of(GROUP), GroupState::PreparingRebalance);
    assert_eq!(
        restarted.heartbeat(GROUP, &ids[0], generation),
        Some(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn load_skips_unknown_record_types_and_fails_on_corrupt_ones() {
    // A record type this coordinator does not know (1000).
    let unknown_record = (
        Bytes::from_static(&[3, 232, 0, 1, b'x']),
        Some(Bytes::from_static(&[0, 0])),
    );
    let loaded = load(GroupConfig::default(), 1, 0, vec![unknown_record]).unwrap();
    assert_eq!(loaded.skipped_records, 1);
    assert!(loaded.state.groups.is_empty());

    let truncated = (Bytes::from_static(&[0, 1, 0, 5, b'a']), None);
    assert_eq!(
        load(GroupConfig::default(), 1, 0, vec![truncated]).err(),
        Some(RecordError::Truncated("key"))
    );
}

#[test]
fn old_record_versions_load() {
    // A v0 group record (no rebalance timeout, no state timestamp) and a type-0 offset key.
    let value = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        current_state_timestamp_ms: -1,
        members: vec![MemberMetadataValue {
            member_id: "m-1".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/10.0.0.1".into(),
            rebalance_timeout_ms: -1,
            session_timeout_ms: 12_000,
            subscription: subscription(&["t1"]),
            assignment: Bytes::from_static(b"a"),
        }],
    };
    let group_record = Record::GroupMetadata {
        group: "old".into(),
        value: None,
    }
    .encode()
    .0;
    let offset_key = Bytes::from_static(&[0, 0, 0, 3, b'o', b'l', b'd', 0, 2, b't', b'1', 0, 0, 0, 0]);
    let offset_value = OffsetCommitValue {
        offset: 9,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 1,
        expire_timestamp_ms: -1,
    }
    .encode(0);
    let records = vec![(group_record, Some(value.encode(0))), (offset_key, Some(offset_value))];
    let state = load(GroupConfig::default(), 1, 0, records).unwrap().state;
    let group = state.group("old").unwrap();
    assert_eq!(
        (group.state, group.generation_id, group.state_timestamp_ms),
        (GroupState::Stable, 4, None)
    );
    assert_eq!(
        group.members["m-1"].rebalance_timeout_ms, 12_000,
        "the session timeout stands in"
    );
    assert_eq!(group.offsets["t1"][&0].offset, 9);
    assert_eq!(group.offsets["t1"][&0].leader_epoch, None);
}

#[test]
fn loaded_group_over_the_size_limit_rebalances() {
    let sim = scenario();
    let config = GroupConfig {
        max_size: 1,
        ..GroupConfig::default()
    };
    let loaded = load(config, 1, sim.now, sim.log.clone()).unwrap();
    assert_eq!(loaded.state.group(GROUP).unwrap().state, GroupState::PreparingRebalance);
}

#[test]
fn unload_answers_every_waiting_request_with_not_coordinator() {
    let mut sim = Sim::new();
    let ids: Vec<String> = (0..2).map(|_| sim.new_member_id(GROUP)).collect();
    let reqs: Vec<_> = ids.iter().map(|id| sim.join(GROUP, id)).collect();
    sim.run_until_answered(&reqs);
    let leader = sim.join_response(reqs[0]).leader;
    let follower = ids.iter().find(|id| **id != leader).unwrap().clone();
    let parked_sync = sim.sync(GROUP, &follower, 1, &[]);
    sim.auto_persist = false;
    let commit = sim.commit("simple", "", -1, &[("t1", 0, 1)]);
    let parked_join = sim.join("other", "");
    let parked_join = sim.join_response(parked_join).member_id;
    let parked_join = sim.join("other", &parked_join);

    let state = std::mem::replace(
        &mut sim.state,
        super::super::coordinator::GroupCoordinatorState::new(GroupConfig::default(), 0),
    );
    let actions = unload(state);
    sim.apply(actions);
    assert_eq!(
        sim.sync_response(parked_sync).error,
        Some(ResponseError::NotCoordinator)
    );
    assert_eq!(
        sim.join_response(parked_join).error,
        Some(ResponseError::NotCoordinator)
    );
    assert_eq!(sim.commit_error(commit), Some(ResponseError::NotCoordinator));
    assert!(sim.timers.is_empty(), "every timer cancelled");
    assert!(matches!(sim.responses.get(&commit), Some(Response::OffsetCommit(_))));
}
