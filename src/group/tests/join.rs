//! JoinGroup: member ids, protocol checks, the join phase and its timers.

use kafka_protocol::ResponseError;

use super::super::api::{Event, TimerKey};
use super::super::config::GroupConfig;
use super::super::state::GroupState;
use super::{protocol, Sim, GROUP, REBALANCE_MS, SESSION_MS};

#[test]
fn member_id_required_round_trip_admits_the_rejoin() {
    let mut sim = Sim::new();
    let req = sim.join(GROUP, "");
    let first = sim.join_response(req);
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    assert!(first.member_id.starts_with("client-"), "{}", first.member_id);
    assert_eq!(first.generation_id, -1);
    assert!(sim.group(GROUP).pending_members.contains(&first.member_id));

    let rejoin = sim.join(GROUP, &first.member_id);
    sim.run_until_answered(&[rejoin]);
    let joined = sim.join_response(rejoin);
    assert_eq!(joined.error, None);
    assert_eq!(joined.member_id, first.member_id);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, first.member_id);
    assert!(sim.group(GROUP).pending_members.is_empty());
}

#[test]
fn pending_member_id_expires_with_its_session_timeout() {
    let mut sim = Sim::new();
    let id = sim.new_member_id(GROUP);
    sim.advance(i64::from(SESSION_MS));
    assert!(!sim.group(GROUP).pending_members.contains(&id));
    let late = sim.join(GROUP, &id);
    assert_eq!(sim.join_response(late).error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn join_below_v4_is_admitted_without_member_id_round_trip() {
    let mut sim = Sim::new();
    let mut r = sim.join_request(GROUP, "");
    r.api_version = 3;
    let req = sim.send_join(r);
    assert!(!sim.answered(req), "parked in the initial rebalance");
    sim.run_until_answered(&[req]);
    let response = sim.join_response(req);
    assert_eq!(response.error, None);
    assert_eq!(response.generation_id, 1);
}

#[test]
fn initial_rebalance_delay_collects_three_joins_into_one_generation() {
    let mut sim = Sim::new();
    let ids: Vec<String> = (0..3).map(|_| sim.new_member_id(GROUP)).collect();
    let a = sim.join(GROUP, &ids[0]);
    sim.advance(1_000);
    let b = sim.join(GROUP, &ids[1]);
    sim.advance(1_500);
    let c = sim.join(GROUP, &ids[2]);
    // All three are in, but the initial rebalance never completes early.
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
    assert!(!sim.answered(a) && !sim.answered(b) && !sim.answered(c));
    sim.run_until_answered(&[a, b, c]);
    let responses: Vec<_> = [a, b, c].iter().map(|r| sim.join_response(*r)).collect();
    assert!(responses
        .iter()
        .all(|r| r.error.is_none() && r.generation_id == 1 && r.leader == ids[0]));
    assert_eq!(responses[0].members.len(), 3, "the leader sees every member");
    assert!(
        responses[1].members.is_empty() && responses[2].members.is_empty(),
        "followers see none"
    );
    assert_eq!(responses[0].protocol_name.as_deref(), Some("range"));
    assert_eq!(responses[0].protocol_type.as_deref(), Some("consumer"));
    assert_eq!(sim.state_of(GROUP), GroupState::CompletingRebalance);
}

#[test]
fn initial_rebalance_delay_is_extended_by_joins_but_bounded_by_rebalance_timeout() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..GroupConfig::default()
    };
    let mut sim = Sim::with_config(config);
    let start = sim.now;
    let mut r = sim.join_request(GROUP, "");
    r.api_version = 3;
    r.rebalance_timeout_ms = 10_000;
    let first = sim.send_join(r);
    // A new member every second, forever: the join phase still ends at the rebalance timeout.
    while !sim.answered(first) {
        sim.advance(1_000);
        let mut r = sim.join_request(GROUP, "");
        r.api_version = 3;
        r.rebalance_timeout_ms = 10_000;
        sim.send_join(r);
        assert!(sim.now - start <= 10_000, "initial delay not bounded");
    }
    assert_eq!(sim.now - start, 10_000);
    assert_eq!(sim.join_response(first).generation_id, 1);
}

#[test]
fn session_timeout_outside_the_bounds_is_rejected() {
    let mut sim = Sim::new();
    for timeout in [5_999, 1_800_001] {
        let mut r = sim.join_request(GROUP, "");
        r.session_timeout_ms = timeout;
        let req = sim.send_join(r);
        assert_eq!(sim.join_response(req).error, Some(ResponseError::InvalidSessionTimeout));
    }
    assert!(sim.state.group(GROUP).is_none(), "no group created");
}

#[test]
fn join_with_a_member_id_to_an_unknown_group_is_unknown_member() {
    let mut sim = Sim::new();
    let req = sim.join(GROUP, "someone");
    assert_eq!(sim.join_response(req).error, Some(ResponseError::UnknownMemberId));
    assert!(sim.state.group(GROUP).is_none());
}

#[test]
fn empty_group_id_is_invalid() {
    let mut sim = Sim::new();
    let req = sim.join("", "");
    assert_eq!(sim.join_response(req).error, Some(ResponseError::InvalidGroupId));
}

#[test]
fn mismatched_protocol_type_or_no_common_protocol_is_inconsistent() {
    let mut sim = Sim::new();
    let (_, _, _) = sim.stable_group(GROUP, 2);
    let mut other_type = sim.join_request(GROUP, "");
    other_type.protocol_type = "connect".into();
    let req = sim.send_join(other_type);
    assert_eq!(
        sim.join_response(req).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );

    let mut other_protocol = sim.join_request(GROUP, "");
    other_protocol.protocols = vec![protocol("sticky", &["t1"])];
    let req = sim.send_join(other_protocol);
    assert_eq!(
        sim.join_response(req).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );

    let mut empty = sim.join_request("fresh", "");
    empty.protocols.clear();
    let req = sim.send_join(empty);
    assert_eq!(
        sim.join_response(req).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(
        sim.state_of(GROUP),
        GroupState::Stable,
        "rejections do not disturb the group"
    );
}

#[test]
fn protocol_selection_takes_the_most_voted_protocol_all_members_support() {
    let mut sim = Sim::new();
    let ids: Vec<String> = (0..3).map(|_| sim.new_member_id(GROUP)).collect();
    let prefs = [
        ["range", "roundrobin"],
        ["roundrobin", "range"],
        ["roundrobin", "sticky"],
    ];
    let mut reqs = Vec::new();
    for (id, pref) in ids.iter().zip(prefs) {
        let mut r = sim.join_request(GROUP, id);
        r.protocols = pref.iter().map(|p| protocol(p, &["t1"])).collect();
        reqs.push(sim.send_join(r));
    }
    sim.run_until_answered(&reqs);
    // "range" is not supported by the third member; of what all support, "roundrobin" wins.
    assert_eq!(sim.join_response(reqs[0]).protocol_name.as_deref(), Some("roundrobin"));

    let mut sim = Sim::new();
    let ids: Vec<String> = (0..3).map(|_| sim.new_member_id(GROUP)).collect();
    let prefs = [
        ["range", "roundrobin"],
        ["range", "roundrobin"],
        ["roundrobin", "range"],
    ];
    let mut reqs = Vec::new();
    for (id, pref) in ids.iter().zip(prefs) {
        let mut r = sim.join_request(GROUP, id);
        r.protocols = pref.iter().map(|p| protocol(p, &["t1"])).collect();
        reqs.push(sim.send_join(r));
    }
    sim.run_until_answered(&reqs);
    assert_eq!(
        sim.join_response(reqs[0]).protocol_name.as_deref(),
        Some("range"),
        "two votes to one"
    );
}

#[test]
fn group_max_size_turns_away_an_extra_member() {
    let config = GroupConfig {
        max_size: 2,
        ..GroupConfig::default()
    };
    let mut sim = Sim::with_config(config);
    sim.stable_group(GROUP, 2);
    let req = sim.join(GROUP, "");
    let response = sim.join_response(req);
    assert_eq!(response.error, Some(ResponseError::GroupMaxSizeReached));
    assert_eq!(response.member_id, "");
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
}

#[test]
fn new_member_joining_during_completing_rebalance_restarts_the_rebalance() {
    let mut sim = Sim::new();
    let ids: Vec<String> = (0..2).map(|_| sim.new_member_id(GROUP)).collect();
    let reqs: Vec<_> = ids.iter().map(|id| sim.join(GROUP, id)).collect();
    sim.run_until_answered(&reqs);
    let leader = sim.join_response(reqs[0]).leader;
    let follower = ids.iter().find(|id| **id != leader).unwrap().clone();
    let parked_sync = sim.sync(GROUP, &follower, 1, &[]);
    assert!(!sim.answered(parked_sync), "a follower waits for the leader");

    let newcomer = sim.new_member_id(GROUP);
    let newcomer_join = sim.join(GROUP, &newcomer);
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
    assert_eq!(
        sim.sync_response(parked_sync).error,
        Some(ResponseError::RebalanceInProgress)
    );

    // The old members rejoin (their heartbeat says so); the join phase ends without delay.
    assert_eq!(
        sim.heartbeat(GROUP, &follower, 1),
        Some(ResponseError::RebalanceInProgress)
    );
    let a = sim.join(GROUP, &ids[0]);
    let b = sim.join(GROUP, &ids[1]);
    for req in [a, b, newcomer_join] {
        assert_eq!(sim.join_response(req).generation_id, 2);
    }
}

#[test]
fn rejoin_with_same_metadata_during_completing_rebalance_gets_the_current_generation() {
    let mut sim = Sim::new();
    let ids: Vec<String> = (0..2).map(|_| sim.new_member_id(GROUP)).collect();
    let reqs: Vec<_> = ids.iter().map(|id| sim.join(GROUP, id)).collect();
    sim.run_until_answered(&reqs);
    let leader = sim.join_response(reqs[0]).leader;
    let again = sim.join(GROUP, &leader);
    let response = sim.join_response(again);
    assert_eq!((response.error, response.generation_id), (None, 1));
    assert_eq!(response.members.len(), 2, "the leader gets the members again");
    assert_eq!(sim.state_of(GROUP), GroupState::CompletingRebalance);
}

#[test]
fn unchanged_follower_rejoining_a_stable_group_gets_the_current_generation() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = sim.stable_group(GROUP, 3);
    let follower = ids.iter().find(|id| **id != leader).unwrap();
    let req = sim.join(GROUP, follower);
    let response = sim.join_response(req);
    assert_eq!(response.error, None);
    assert_eq!(response.generation_id, generation);
    assert_eq!(response.leader, leader);
    assert!(response.members.is_empty());
    assert_eq!(sim.state_of(GROUP), GroupState::Stable, "no rebalance");
}

#[test]
fn leader_rejoining_a_stable_group_triggers_a_rebalance() {
    let mut sim = Sim::new();
    let (leader, _, _) = sim.stable_group(GROUP, 3);
    let req = sim.join(GROUP, &leader);
    assert!(!sim.answered(req));
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
}

#[test]
fn follower_with_changed_metadata_triggers_a_rebalance() {
    let mut sim = Sim::new();
    let (leader, ids, _) = sim.stable_group(GROUP, 2);
    let follower = ids.iter().find(|id| **id != leader).unwrap().clone();
    let mut r = sim.join_request(GROUP, &follower);
    r.protocols = vec![protocol("range", &["t1", "t2"])];
    let req = sim.send_join(r);
    assert!(!sim.answered(req));
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
    let leader_join = sim.join(GROUP, &leader);
    assert_eq!(
        sim.join_response(leader_join).generation_id,
        2,
        "completes once all rejoined"
    );
    assert_eq!(sim.group(GROUP).subscribed_topics.as_ref().unwrap().len(), 2);
}

#[test]
fn rebalance_timeout_removes_a_member_that_did_not_rejoin() {
    let mut sim = Sim::new();
    let (leader, ids, _) = sim.stable_group(GROUP, 3);
    let others: Vec<String> = ids.iter().filter(|id| **id != leader).cloned().collect();
    let silent = others[0].clone();
    // The leader's rejoin starts the rebalance; the other follower rejoins too.
    let reqs = vec![sim.join(GROUP, &leader), sim.join(GROUP, &others[1])];
    // The silent member keeps heartbeating, but never rejoins.
    for _ in 0..(REBALANCE_MS / 5_000) {
        assert!(!sim.answered(reqs[0]));
        sim.heartbeat(GROUP, &silent, 1);
        sim.advance(5_000);
    }
    for req in &reqs {
        let r = sim.join_response(*req);
        assert_eq!((r.error, r.generation_id), (None, 2));
    }
    assert!(!sim.group(GROUP).members.contains_key(&silent));
    assert_eq!(sim.group(GROUP).members.len(), 2);
    assert_eq!(sim.heartbeat(GROUP, &silent, 1), Some(ResponseError::UnknownMemberId));
}

#[test]
fn new_member_parked_longer_than_the_join_timeout_is_dropped() {
    let mut sim = Sim::new();
    let ids: Vec<String> = (0..2).map(|_| sim.new_member_id(GROUP)).collect();
    let mut reqs = Vec::new();
    for id in &ids {
        let mut r = sim.join_request(GROUP, id);
        r.rebalance_timeout_ms = 900_000;
        reqs.push(sim.send_join(r));
    }
    sim.run_until_answered(&reqs);
    let leader = sim.join_response(reqs[0]).leader;
    sim.complete_sync(GROUP, &leader, &ids, 1);
    // A newcomer starts a rebalance that the old members never join (they keep heartbeating).
    let newcomer = sim.new_member_id(GROUP);
    let parked = sim.join(GROUP, &newcomer);
    for _ in 0..(5 * 60 / 5) {
        for id in &ids {
            sim.heartbeat(GROUP, id, 1);
        }
        sim.advance(5_000);
    }
    let response = sim.join_response(parked);
    assert_eq!(response.error, Some(ResponseError::UnknownMemberId));
    assert!(!sim.group(GROUP).members.contains_key(&newcomer));
}

#[test]
fn duplicate_join_from_a_parked_member_answers_the_replaced_request() {
    let mut sim = Sim::new();
    let (leader, _, _) = sim.stable_group(GROUP, 2);
    let first = sim.join(GROUP, &leader);
    let second = sim.join(GROUP, &leader);
    assert_eq!(sim.join_response(first).error, Some(ResponseError::RebalanceInProgress));
    assert!(!sim.answered(second), "the retry stays parked");
}

#[test]
fn early_timer_fire_is_re_armed_not_acted_upon() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    let key = TimerKey::Heartbeat {
        group_id: GROUP.into(),
        member_id: leader.clone(),
    };
    let deadline = sim.timers[&key];
    // The shell fires early (an old deadline, or its clock ahead of ours): the member stays and
    // the timer is asked for again at its real deadline.
    sim.timers.remove(&key);
    sim.send(Event::TimerFired { key: key.clone() });
    assert_eq!(sim.timers.get(&key), Some(&deadline));
    assert_eq!(sim.heartbeat(GROUP, &leader, generation), None);
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
    // A fire for a timer the core no longer has does nothing at all.
    let gone = TimerKey::Sync { group_id: GROUP.into() };
    sim.send(Event::TimerFired { key: gone.clone() });
    assert!(!sim.timers.contains_key(&gone));
}
