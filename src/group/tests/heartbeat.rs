//! Heartbeat and session expiry.

use kafka_protocol::ResponseError;

use super::super::records::Record;
use super::super::state::GroupState;
use super::{Sim, GROUP, SESSION_MS};

#[test]
fn heartbeats_keep_a_stable_member_alive_past_its_session_timeout() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    for _ in 0..20 {
        assert_eq!(sim.heartbeat(GROUP, &leader, generation), None);
        sim.advance(i64::from(SESSION_MS) / 2);
    }
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
}

#[test]
fn heartbeat_during_preparing_rebalance_asks_the_member_to_rejoin() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = sim.stable_group(GROUP, 2);
    sim.join(GROUP, &leader);
    let follower = ids.iter().find(|id| **id != leader).unwrap();
    assert_eq!(
        sim.heartbeat(GROUP, follower, generation),
        Some(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn heartbeat_during_completing_rebalance_is_accepted() {
    let mut sim = Sim::new();
    let id = sim.new_member_id(GROUP);
    let req = sim.join(GROUP, &id);
    sim.run_until_answered(&[req]);
    assert_eq!(sim.state_of(GROUP), GroupState::CompletingRebalance);
    assert_eq!(sim.heartbeat(GROUP, &id, 1), None);
}

#[test]
fn heartbeat_from_an_old_generation_is_illegal_generation() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = sim.stable_group(GROUP, 2);
    // Second generation: the leader rejoins, then the follower.
    let a = sim.join(GROUP, &leader);
    let follower = ids.iter().find(|id| **id != leader).unwrap().clone();
    let b = sim.join(GROUP, &follower);
    assert_eq!(sim.join_response(a).generation_id, generation + 1);
    assert!(sim.answered(b));
    assert_eq!(
        sim.heartbeat(GROUP, &follower, generation),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(sim.heartbeat(GROUP, &follower, generation + 1), None);
}

#[test]
fn heartbeat_from_an_unknown_member_or_group_is_unknown_member() {
    let mut sim = Sim::new();
    sim.stable_group(GROUP, 1);
    assert_eq!(sim.heartbeat(GROUP, "ghost", 1), Some(ResponseError::UnknownMemberId));
    assert_eq!(sim.heartbeat("nope", "ghost", 1), Some(ResponseError::UnknownMemberId));
    assert_eq!(sim.heartbeat("", "ghost", 1), Some(ResponseError::InvalidGroupId));
}

#[test]
fn session_expiry_of_one_member_among_three_rebalances_the_other_two() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = sim.stable_group(GROUP, 3);
    let silent = ids[2].clone();
    let alive: Vec<String> = ids.iter().filter(|id| **id != silent).cloned().collect();
    let mut rejoins = Vec::new();
    for _ in 0..6 {
        for id in &alive {
            if sim.heartbeat(GROUP, id, generation) == Some(ResponseError::RebalanceInProgress) {
                rejoins.push(sim.join(GROUP, id));
            }
        }
        sim.advance(2_000);
    }
    assert!(!sim.group(GROUP).members.contains_key(&silent), "its session expired");
    assert_eq!(rejoins.len(), 2, "both others were told to rejoin");
    for req in rejoins {
        let r = sim.join_response(req);
        assert_eq!((r.error, r.generation_id), (None, generation + 1));
        assert_ne!(r.leader, silent);
        assert!(silent == leader || r.leader == leader, "the leader keeps its role");
    }
    assert_eq!(sim.group(GROUP).members.len(), 2);
    assert_eq!(sim.state_of(GROUP), GroupState::CompletingRebalance);
}

#[test]
fn session_expiry_of_the_last_member_empties_the_group_and_records_it() {
    let mut sim = Sim::new();
    let (_, _, generation) = sim.stable_group(GROUP, 1);
    sim.advance(i64::from(SESSION_MS));
    assert_eq!(sim.state_of(GROUP), GroupState::Empty);
    assert_eq!(sim.group(GROUP).generation_id, generation + 1);
    let Some(Record::GroupMetadata { value: Some(v), .. }) = sim.log_records().pop() else {
        panic!("no record")
    };
    assert!(v.members.is_empty());
    assert_eq!(
        (v.generation, v.protocol, v.protocol_type.as_str()),
        (generation + 1, None, "consumer")
    );
}
