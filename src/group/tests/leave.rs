//! LeaveGroup.

use kafka_protocol::ResponseError;

use super::super::records::Record;
use super::super::state::GroupState;
use super::{Sim, GROUP};

#[test]
fn member_leaving_a_stable_group_triggers_a_rebalance_of_the_rest() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = sim.stable_group(GROUP, 3);
    let response = sim.leave(GROUP, &[(&ids[1], None)]);
    assert_eq!(response.error, None);
    assert_eq!(response.members[0].error, None);
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
    let a = sim.join(GROUP, &leader);
    let other = ids.iter().find(|id| **id != leader && **id != ids[1]).unwrap().clone();
    let b = sim.join(GROUP, &other);
    assert_eq!(sim.join_response(a).generation_id, generation + 1);
    assert_eq!(sim.join_response(b).generation_id, generation + 1);
    assert_eq!(sim.join_response(a).members.len(), 2);
}

#[test]
fn batched_leave_reports_an_error_per_member() {
    let mut sim = Sim::new();
    let (_, ids, _) = sim.stable_group(GROUP, 2);
    let response = sim.leave(
        GROUP,
        &[(&ids[0], None), ("ghost", None), ("", Some("no-such-instance"))],
    );
    let errors: Vec<_> = response
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), m.error))
        .collect();
    assert_eq!(
        errors,
        vec![
            (ids[0].as_str(), None),
            ("ghost", Some(ResponseError::UnknownMemberId)),
            ("", Some(ResponseError::UnknownMemberId))
        ]
    );
    assert!(!sim.group(GROUP).members.contains_key(&ids[0]));
}

#[test]
fn leave_from_an_unknown_group_is_unknown_member_for_each() {
    let mut sim = Sim::new();
    let response = sim.leave("nope", &[("a", None), ("b", None)]);
    assert_eq!(response.error, None);
    assert!(response
        .members
        .iter()
        .all(|m| m.error == Some(ResponseError::UnknownMemberId)));
}

#[test]
fn leader_leaving_before_sync_group_restarts_the_rebalance_with_a_new_leader() {
    let mut sim = Sim::new();
    let ids: Vec<String> = (0..3).map(|_| sim.new_member_id(GROUP)).collect();
    let reqs: Vec<_> = ids.iter().map(|id| sim.join(GROUP, id)).collect();
    sim.run_until_answered(&reqs);
    let leader = sim.join_response(reqs[0]).leader;
    let followers: Vec<String> = ids.iter().filter(|id| **id != leader).cloned().collect();
    let parked: Vec<_> = followers.iter().map(|f| sim.sync(GROUP, f, 1, &[])).collect();

    sim.leave(GROUP, &[(&leader, None)]);
    for req in parked {
        assert_eq!(sim.sync_response(req).error, Some(ResponseError::RebalanceInProgress));
    }
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
    let rejoins: Vec<_> = followers.iter().map(|f| sim.join(GROUP, f)).collect();
    let new_leader = sim.join_response(rejoins[0]).leader;
    assert!(followers.contains(&new_leader));
    for (req, follower) in rejoins.iter().zip(&followers) {
        let r = sim.join_response(*req);
        assert_eq!(r.generation_id, 2);
        assert_eq!(r.members.len(), if *follower == new_leader { 2 } else { 0 });
    }
}

#[test]
fn last_member_leaving_empties_the_group_and_records_it() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    sim.leave(GROUP, &[(&leader, None)]);
    assert_eq!(sim.state_of(GROUP), GroupState::Empty);
    assert_eq!(sim.group(GROUP).generation_id, generation + 1);
    assert!(sim.group(GROUP).leader_id.is_none());
    let Some(Record::GroupMetadata { value: Some(v), .. }) = sim.log_records().pop() else {
        panic!("no record")
    };
    assert!(v.members.is_empty() && v.leader.is_none());
}

#[test]
fn pending_member_can_leave() {
    let mut sim = Sim::new();
    let id = sim.new_member_id(GROUP);
    let response = sim.leave(GROUP, &[(&id, None)]);
    assert_eq!(response.members[0].error, None);
    assert!(sim.group(GROUP).pending_members.is_empty());
}

#[test]
fn member_leaving_while_parked_in_a_join_gets_its_join_answered() {
    let mut sim = Sim::new();
    let (leader, ids, _) = sim.stable_group(GROUP, 2);
    let parked = sim.join(GROUP, &leader);
    let follower = ids.iter().find(|id| **id != leader).unwrap().clone();
    sim.leave(GROUP, &[(&leader, None)]);
    let r = sim.join_response(parked);
    assert_eq!(
        (r.error, r.member_id.as_str()),
        (Some(ResponseError::UnknownMemberId), "")
    );
    // The follower alone completes the rebalance.
    let join = sim.join(GROUP, &follower);
    assert_eq!(sim.join_response(join).leader, follower);
}
