//! Static membership (KIP-345): rejoin without rebalance, fencing of the old member id.

use kafka_protocol::ResponseError;

use super::super::api::{Event, JoinRequest};
use super::super::records::Record;
use super::super::state::GroupState;
use super::{protocol, Sim, GROUP, REBALANCE_MS};

fn static_join(sim: &mut Sim, member_id: &str, instance: &str, api_version: i16) -> JoinRequest {
    let mut r = sim.join_request(GROUP, member_id);
    r.group_instance_id = Some(instance.into());
    r.api_version = api_version;
    r
}

/// A Stable group of static members "i-0", "i-1", …: returns (leader, member ids, generation).
fn static_group(sim: &mut Sim, n: usize) -> (String, Vec<String>, i32) {
    let reqs: Vec<_> = (0..n)
        .map(|i| {
            let r = static_join(sim, "", &format!("i-{i}"), 5);
            sim.send_join(r)
        })
        .collect();
    sim.run_until_answered(&reqs);
    let responses: Vec<_> = reqs.iter().map(|r| sim.join_response(*r)).collect();
    let ids: Vec<String> = responses.iter().map(|r| r.member_id.clone()).collect();
    assert!(ids.iter().enumerate().all(|(i, id)| id.starts_with(&format!("i-{i}-"))));
    let leader = responses[0].leader.clone();
    sim.complete_sync(GROUP, &leader, &ids, 1);
    (leader, ids, 1)
}

#[test]
fn static_member_rejoining_with_unknown_id_takes_its_place_without_rebalance() {
    let mut sim = Sim::new();
    let (leader, ids, generation) = static_group(&mut sim, 3);
    let old = ids[1].clone();
    sim.auto_persist = false;
    let r = static_join(&mut sim, "", "i-1", 5);
    let req = sim.send_join(r);
    assert!(!sim.answered(req), "answered once the new member id is in the log");
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
    sim.persist_next(Ok(()));

    let response = sim.join_response(req);
    assert_eq!(response.error, None);
    assert_eq!(response.generation_id, generation, "no new generation");
    assert_ne!(response.member_id, old);
    assert_eq!(response.leader, leader);
    assert!(response.members.is_empty());
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
    // It gets its previous assignment back.
    let sync = sim.sync(GROUP, &response.member_id, generation, &[]);
    assert_eq!(sim.sync_response(sync).assignment, format!("a-{old}").into_bytes());
    // The log knows the new member id.
    let Some(Record::GroupMetadata { value: Some(v), .. }) = sim.log_records().pop() else {
        panic!("no record")
    };
    assert!(v.members.iter().any(|m| m.member_id == response.member_id));
    assert!(!v.members.iter().any(|m| m.member_id == old));
}

#[test]
fn old_member_id_of_a_replaced_static_member_is_fenced() {
    let mut sim = Sim::new();
    let (_, ids, generation) = static_group(&mut sim, 2);
    let old = ids[1].clone();
    let r = static_join(&mut sim, "", "i-1", 5);
    let req = sim.send_join(r);
    let new = sim.join_response(req).member_id;
    assert_eq!(
        sim.heartbeat_as(GROUP, &old, Some("i-1"), generation),
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(sim.heartbeat_as(GROUP, &new, Some("i-1"), generation), None);
    let mut commit = sim.commit_request(GROUP, &old, generation, &[("t1", 0, 5)]);
    commit.group_instance_id = Some("i-1".into());
    let commit_req = commit.req;
    sim.send(Event::CommitOffsets(commit));
    assert_eq!(sim.commit_error(commit_req), Some(ResponseError::FencedInstanceId));
    let r = static_join(&mut sim, &old, "i-1", 5);
    let join = sim.send_join(r);
    assert_eq!(sim.join_response(join).error, Some(ResponseError::FencedInstanceId));
}

#[test]
fn static_leader_rejoining_with_v9_learns_it_leads_but_skips_assignment() {
    let mut sim = Sim::new();
    let (leader, _, generation) = static_group(&mut sim, 2);
    let r = static_join(&mut sim, "", "i-0", 9);
    let req = sim.send_join(r);
    let response = sim.join_response(req);
    assert_ne!(response.member_id, leader);
    assert_eq!(response.leader, response.member_id, "the new id leads");
    assert!(response.skip_assignment);
    assert_eq!(response.members.len(), 2);
    assert_eq!(response.generation_id, generation);
    assert_eq!(sim.state_of(GROUP), GroupState::Stable);
}

#[test]
fn static_leader_rejoining_before_v9_is_told_the_old_leader_id() {
    let mut sim = Sim::new();
    let (leader, _, _) = static_group(&mut sim, 2);
    let r = static_join(&mut sim, "", "i-0", 5);
    let req = sim.send_join(r);
    let response = sim.join_response(req);
    assert_eq!(response.leader, leader, "so it does not run the assignor");
    assert!(!response.skip_assignment);
}

#[test]
fn static_member_rejoining_with_other_protocols_triggers_a_rebalance() {
    let mut sim = Sim::new();
    static_group(&mut sim, 1);
    let mut r = static_join(&mut sim, "", "i-0", 5);
    // Still supports "range" (else it would be inconsistent), but now prefers "roundrobin".
    r.protocols = vec![protocol("roundrobin", &["t1"]), protocol("range", &["t1"])];
    let req = sim.send_join(r);
    // It is the only member and it rejoined: the new generation starts at once.
    assert_eq!(sim.state_of(GROUP), GroupState::CompletingRebalance);
    assert_eq!(sim.join_response(req).protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(sim.join_response(req).generation_id, 2);
}

#[test]
fn static_member_that_does_not_rejoin_stays_through_the_rebalance() {
    let mut sim = Sim::new();
    let (leader, ids, _) = static_group(&mut sim, 2);
    let other = ids.iter().find(|id| **id != leader).unwrap().clone();
    let req = sim.join(GROUP, &leader);
    // The other keeps its session alive but never rejoins.
    for _ in 0..(REBALANCE_MS / 5_000) {
        sim.heartbeat_as(
            GROUP,
            &other,
            Some(&format!("i-{}", ids.iter().position(|i| *i == other).unwrap())),
            1,
        );
        sim.advance(5_000);
    }
    let response = sim.join_response(req);
    assert_eq!(response.generation_id, 2);
    assert!(
        sim.group(GROUP).members.contains_key(&other),
        "static members are not dropped by the join phase"
    );
    assert_eq!(response.members.len(), 2);
}

#[test]
fn static_member_can_be_removed_by_instance_id_alone() {
    let mut sim = Sim::new();
    let (_, ids, _) = static_group(&mut sim, 2);
    let response = sim.leave(GROUP, &[("", Some("i-1"))]);
    assert_eq!(response.members[0].error, None);
    assert!(!sim.group(GROUP).members.contains_key(&ids[1]));
    assert!(!sim.group(GROUP).static_members.contains_key("i-1"));
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
}

#[test]
fn failed_append_of_a_static_replacement_reverts_to_the_old_member_id() {
    let mut sim = Sim::new();
    let (_, ids, generation) = static_group(&mut sim, 2);
    let old = ids[1].clone();
    sim.auto_persist = false;
    let r = static_join(&mut sim, "", "i-1", 5);
    let req = sim.send_join(r);
    sim.persist_next(Err(ResponseError::NotEnoughReplicas));
    let response = sim.join_response(req);
    assert_eq!(response.error, Some(ResponseError::CoordinatorNotAvailable));
    assert_eq!(response.member_id, "");
    assert_eq!(sim.group(GROUP).static_members.get("i-1"), Some(&old));
    assert_eq!(
        sim.heartbeat_as(GROUP, &old, Some("i-1"), generation),
        None,
        "the old id works again"
    );
}

#[test]
fn parked_join_of_the_old_static_member_is_fenced_by_the_new_one() {
    let mut sim = Sim::new();
    let (leader, ids, _) = static_group(&mut sim, 3);
    let old = ids.iter().find(|id| **id != leader).unwrap().clone();
    let third = ids.iter().find(|id| **id != leader && **id != old).unwrap().clone();
    let instance = |id: &str| format!("i-{}", ids.iter().position(|i| i == id).unwrap());
    sim.join(GROUP, &leader); // a rebalance: JoinGroups park from here on
    let r = static_join(&mut sim, &old, &instance(&old), 5);
    let parked_old = sim.send_join(r);
    assert!(!sim.answered(parked_old));
    let r = static_join(&mut sim, "", &instance(&old), 5);
    let new_join = sim.send_join(r);
    let fenced = sim.join_response(parked_old);
    assert_eq!(
        (fenced.error, fenced.member_id.as_str()),
        (Some(ResponseError::FencedInstanceId), old.as_str())
    );
    assert!(
        !sim.answered(new_join),
        "the new id takes the old one's place in the join phase"
    );
    let r = static_join(&mut sim, &third, &instance(&third), 5);
    sim.send_join(r);
    let response = sim.join_response(new_join);
    assert_eq!((response.error, response.generation_id), (None, 2));
    assert_eq!(sim.group(GROUP).members.len(), 3);
}
