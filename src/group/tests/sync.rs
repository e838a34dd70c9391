//! SyncGroup: the leader's assignment, persisted before anyone gets it.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::super::api::{Event, SyncRequest};
use super::super::records::Record;
use super::super::state::GroupState;
use super::{Sim, GROUP, REBALANCE_MS};

/// Two members through the join phase: (sim, leader, follower).
fn joined_pair() -> (Sim, String, String) {
    let mut sim = Sim::new();
    let ids: Vec<String> = (0..2).map(|_| sim.new_member_id(GROUP)).collect();
    let reqs: Vec<_> = ids.iter().map(|id| sim.join(GROUP, id)).collect();
    sim.run_until_answered(&reqs);
    let leader = sim.join_response(reqs[0]).leader;
    let follower = ids.into_iter().find(|id| *id != leader).unwrap();
    (sim, leader, follower)
}

#[test]
fn leader_assignment_is_persisted_before_any_member_gets_its_own() {
    let (mut sim, leader, follower) = joined_pair();
    sim.auto_persist = false;
    let follower_sync = sim.sync(GROUP, &follower, 1, &[]);
    assert!(!sim.answered(follower_sync), "followers wait for the leader");
    let leader_sync = sim.sync(
        GROUP,
        &leader,
        1,
        &[(&leader, "for-leader"), (&follower, "for-follower")],
    );
    assert!(
        !sim.answered(leader_sync) && !sim.answered(follower_sync),
        "nothing before the append"
    );
    assert_eq!(sim.state_of(GROUP), GroupState::CompletingRebalance);
    assert_eq!(sim.in_flight.len(), 1);

    sim.persist_next(Ok(()));
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
    let l = sim.sync_response(leader_sync);
    let f = sim.sync_response(follower_sync);
    assert_eq!((l.error, &l.assignment[..]), (None, &b"for-leader"[..]));
    assert_eq!((f.error, &f.assignment[..]), (None, &b"for-follower"[..]));
    assert_eq!(f.protocol_name.as_deref(), Some("range"));
    assert_eq!(f.protocol_type.as_deref(), Some("consumer"));

    // The log holds the group with both assignments.
    let Some(Record::GroupMetadata { value: Some(v), .. }) = sim.log_records().pop() else {
        panic!("no group record")
    };
    assert_eq!(v.generation, 1);
    assert_eq!(v.leader.as_deref(), Some(leader.as_str()));
    let assigned: Vec<&[u8]> = v.members.iter().map(|m| &m.assignment[..]).collect();
    assert!(assigned.contains(&&b"for-follower"[..]) && assigned.contains(&&b"for-leader"[..]));
}

#[test]
fn follower_syncing_after_the_group_is_stable_gets_its_assignment_at_once() {
    let (mut sim, leader, follower) = joined_pair();
    let leader_sync = sim.sync(GROUP, &leader, 1, &[(&follower, "x")]);
    assert_eq!(
        sim.sync_response(leader_sync).assignment,
        Bytes::new(),
        "the leader left itself out"
    );
    let follower_sync = sim.sync(GROUP, &follower, 1, &[]);
    assert_eq!(&sim.sync_response(follower_sync).assignment[..], b"x");
}

#[test]
fn sync_with_another_generation_is_illegal_generation() {
    let (mut sim, leader, _) = joined_pair();
    let req = sim.sync(GROUP, &leader, 7, &[]);
    assert_eq!(sim.sync_response(req).error, Some(ResponseError::IllegalGeneration));
}

#[test]
fn sync_from_an_unknown_member_or_group_is_unknown_member() {
    let (mut sim, _, _) = joined_pair();
    let req = sim.sync(GROUP, "nobody", 1, &[]);
    assert_eq!(sim.sync_response(req).error, Some(ResponseError::UnknownMemberId));
    let req = sim.sync("other", "nobody", 1, &[]);
    assert_eq!(sim.sync_response(req).error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn sync_during_preparing_rebalance_is_rebalance_in_progress() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = sim.stable_group(GROUP, 2);
    sim.join(GROUP, &leader);
    let follower = ids.iter().find(|id| **id != leader).unwrap();
    let req = sim.sync(GROUP, follower, generation, &[]);
    assert_eq!(sim.sync_response(req).error, Some(ResponseError::RebalanceInProgress));
}

#[test]
fn sync_v5_with_another_protocol_name_is_inconsistent() {
    let (mut sim, leader, _) = joined_pair();
    let req = sim.next_req();
    sim.send(Event::Sync(SyncRequest {
        req,
        group_id: GROUP.into(),
        generation_id: 1,
        member_id: leader,
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("roundrobin".into()),
        assignments: Vec::new(),
    }));
    assert_eq!(
        sim.sync_response(req).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn failed_assignment_append_fails_the_syncs_and_restarts_the_rebalance() {
    let (mut sim, leader, follower) = joined_pair();
    sim.auto_persist = false;
    let follower_sync = sim.sync(GROUP, &follower, 1, &[]);
    let leader_sync = sim.sync(GROUP, &leader, 1, &[(&follower, "x")]);
    sim.persist_next(Err(ResponseError::NotLeaderOrFollower));
    for req in [leader_sync, follower_sync] {
        let r = sim.sync_response(req);
        assert_eq!(r.error, Some(ResponseError::NotCoordinator));
        assert!(r.assignment.is_empty() && r.protocol_name.is_none());
    }
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
    assert!(sim.log.is_empty());
}

#[test]
fn assignment_persisted_after_a_new_rebalance_began_is_ignored() {
    let (mut sim, leader, follower) = joined_pair();
    sim.auto_persist = false;
    let leader_sync = sim.sync(GROUP, &leader, 1, &[(&follower, "x")]);
    // A member joins while the append is in flight.
    let newcomer_req = sim.join(GROUP, "");
    let newcomer = sim.join_response(newcomer_req).member_id;
    sim.join(GROUP, &newcomer);
    assert_eq!(
        sim.sync_response(leader_sync).error,
        Some(ResponseError::RebalanceInProgress)
    );
    sim.persist_next(Ok(()));
    assert_eq!(
        sim.state_of(GROUP),
        GroupState::PreparingRebalance,
        "the old assignment is not applied"
    );
    assert!(sim.group(GROUP).members.values().all(|m| m.assignment.is_empty()));
}

#[test]
fn member_that_never_syncs_is_removed_at_the_sync_deadline() {
    let (mut sim, leader, follower) = joined_pair();
    sim.sync(GROUP, &leader, 1, &[(&leader, "l"), (&follower, "f")]);
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
    for _ in 0..(REBALANCE_MS / 5_000) {
        sim.heartbeat(GROUP, &leader, 1);
        sim.heartbeat(GROUP, &follower, 1);
        sim.advance(5_000);
    }
    assert!(
        !sim.group(GROUP).members.contains_key(&follower),
        "no SyncGroup within the rebalance timeout"
    );
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
    assert_eq!(
        sim.heartbeat(GROUP, &leader, 1),
        Some(ResponseError::RebalanceInProgress)
    );
    let rejoin = sim.join(GROUP, &leader);
    assert_eq!(sim.join_response(rejoin).generation_id, 2);
}

#[test]
fn leader_left_out_members_get_an_empty_assignment() {
    let (mut sim, leader, follower) = joined_pair();
    let follower_sync = sim.sync(GROUP, &follower, 1, &[]);
    sim.sync(GROUP, &leader, 1, &[(&leader, "all")]);
    let r = sim.sync_response(follower_sync);
    assert_eq!((r.error, r.assignment), (None, Bytes::new()));
}
