//! A seeded simulation: clients behaving like Kafka consumers (joining, syncing, heartbeating,
//! committing, leaving, crashing, some static) against one coordinator whose appends sometimes
//! fail. After every step the core's invariants are checked; at the end, with every client
//! gone, every request must have been answered and the group must wind down.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use super::super::api::{Event, JoinResponse, RequestId, Response, TimerKey};
use super::super::config::GroupConfig;
use super::super::replay::load;
use super::super::state::GroupState;
use super::{Sim, GROUP};
use crate::testing::Rng;

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    Joining(RequestId),
    Syncing(RequestId),
    Stable,
    Crashed,
}

#[derive(Debug)]
struct Client {
    member_id: String,
    instance_id: Option<String>,
    generation: i32,
    phase: Phase,
}

fn step(sim: &mut Sim, rng: &mut Rng, clients: &mut [Client]) {
    let i = rng.below(clients.len() as u64) as usize;
    let c = &mut clients[i];
    match c.phase.clone() {
        Phase::Crashed => {}
        Phase::Idle => {
            let mut r = sim.join_request(GROUP, &c.member_id);
            r.group_instance_id = c.instance_id.clone();
            r.api_version = if rng.chance(50) { 5 } else { 9 };
            c.phase = Phase::Joining(sim.send_join(r));
        }
        Phase::Joining(req) => {
            let Some(Response::Join(r)) = sim.responses.get(&req).cloned() else {
                return;
            };
            on_join(sim, c, r);
        }
        Phase::Syncing(req) => {
            let Some(Response::Sync(r)) = sim.responses.get(&req).cloned() else {
                return;
            };
            match r.error {
                None => c.phase = Phase::Stable,
                Some(ResponseError::RebalanceInProgress) => c.phase = Phase::Idle,
                Some(_) => reset(c),
            }
        }
        Phase::Stable => match rng.below(20) {
            0 => {
                sim.leave(GROUP, &[(&c.member_id, c.instance_id.as_deref())]);
                reset(c);
            }
            1 => c.phase = Phase::Crashed,
            2..=4 => {
                let offset = rng.below(1000) as i64;
                let mut r = sim.commit_request(GROUP, &c.member_id, c.generation, &[("t1", 0, offset)]);
                r.group_instance_id = c.instance_id.clone();
                sim.send(Event::CommitOffsets(r));
            }
            _ => match sim.heartbeat_as(GROUP, &c.member_id, c.instance_id.as_deref(), c.generation) {
                None => {}
                Some(ResponseError::RebalanceInProgress) => c.phase = Phase::Idle,
                Some(_) => reset(c),
            },
        },
    }
}

fn on_join(sim: &mut Sim, c: &mut Client, r: JoinResponse) {
    match r.error {
        None => {
            c.member_id = r.member_id.clone();
            c.generation = r.generation_id;
            let assignments: Vec<(String, String)> = r
                .members
                .iter()
                .map(|m| (m.member_id.clone(), format!("gen{}", r.generation_id)))
                .collect();
            let assignments: Vec<(&str, &str)> = assignments.iter().map(|(m, a)| (m.as_str(), a.as_str())).collect();
            let assign = if r.leader == r.member_id && !r.skip_assignment {
                assignments
            } else {
                Vec::new()
            };
            c.phase = Phase::Syncing(sim.sync(GROUP, &c.member_id, c.generation, &assign));
        }
        Some(ResponseError::MemberIdRequired) => {
            c.member_id = r.member_id;
            c.phase = Phase::Idle;
        }
        Some(_) => reset(c),
    }
}

fn reset(c: &mut Client) {
    c.member_id.clear();
    c.generation = -1;
    c.phase = Phase::Idle;
}

/// What must hold after every event.
fn check_invariants(sim: &Sim) {
    let Some(group) = sim.state.group(GROUP) else { return };
    let answered: BTreeSet<RequestId> = sim.responses.keys().copied().collect();
    let mut parked = BTreeSet::new();
    for (id, m) in &group.members {
        assert_eq!(&m.member_id, id);
        for req in [m.awaiting_join, m.awaiting_sync].into_iter().flatten() {
            assert!(!answered.contains(&req), "parked request {req} was already answered");
            assert!(parked.insert(req), "request {req} parked twice");
        }
        let timer = TimerKey::Heartbeat {
            group_id: GROUP.into(),
            member_id: id.clone(),
        };
        assert!(
            m.awaiting_join.is_some() || m.awaiting_sync.is_some() || sim.state.out.timers.contains_key(&timer),
            "member {id} can never expire: not parked and no session timer"
        );
        if let Some(instance) = &m.group_instance_id {
            assert_eq!(group.static_members.get(instance), Some(id));
        }
    }
    assert_eq!(
        group.static_members.len(),
        group.members.values().filter(|m| m.group_instance_id.is_some()).count()
    );
    for id in &group.pending_members {
        assert!(!group.members.contains_key(id));
        let timer = TimerKey::Heartbeat {
            group_id: GROUP.into(),
            member_id: id.clone(),
        };
        assert!(
            sim.state.out.timers.contains_key(&timer),
            "pending member {id} never expires"
        );
    }
    assert!(group
        .pending_sync_members
        .iter()
        .all(|id| group.members.contains_key(id)));
    match &group.leader_id {
        Some(leader) => assert!(group.members.contains_key(leader), "leader is not a member"),
        None => assert!(group.members.is_empty()),
    }
    match group.state {
        GroupState::Empty => assert!(group.members.is_empty()),
        GroupState::PreparingRebalance => {
            assert!(
                sim.state
                    .out
                    .timers
                    .contains_key(&TimerKey::Join { group_id: GROUP.into() }),
                "stuck rebalance"
            )
        }
        GroupState::CompletingRebalance => {
            assert!(group.protocol_name.is_some() && !group.members.is_empty());
            assert!(
                group.members.values().all(|m| m.awaiting_join.is_none()),
                "joins are answered by now"
            );
        }
        GroupState::Stable => assert!(group.protocol_name.is_some() && !group.members.is_empty()),
        GroupState::Dead => panic!("dead groups are removed"),
    }
    for (key, (at, _)) in &sim.state.out.timers {
        assert_eq!(
            sim.timers.get(key),
            Some(at),
            "the shell runs every timer the core counts on"
        );
    }
}

/// What a restart would load equals what the clients were told: the committed offsets, and
/// for a Stable group its generation, members and assignments.
fn check_log_matches_state(sim: &Sim, seed: u64) {
    let loaded = load(GroupConfig::default(), 1, sim.now, sim.log.clone()).expect("the log loads");
    let (Some(live), Some(restored)) = (sim.state.group(GROUP), loaded.state.group(GROUP)) else {
        panic!("seed {seed}: group missing live or after load");
    };
    assert_eq!(restored.offsets, live.offsets, "seed {seed}: offsets differ after load");
    if live.state == GroupState::Stable {
        assert_eq!(restored.generation_id, live.generation_id, "seed {seed}");
        let assignments = |g: &super::super::state::Group| -> Vec<(String, bytes::Bytes)> {
            g.members
                .values()
                .map(|m| (m.member_id.clone(), m.assignment.clone()))
                .collect()
        };
        assert_eq!(
            assignments(restored),
            assignments(live),
            "seed {seed}: members differ after load"
        );
    }
}

fn run(seed: u64) {
    let mut rng = Rng::from_raw(seed);
    let mut sim = Sim::new();
    sim.auto_persist = false;
    let mut clients: Vec<Client> = (0..6)
        .map(|i| Client {
            member_id: String::new(),
            instance_id: (i % 3 == 0).then(|| format!("instance-{i}")),
            generation: -1,
            phase: Phase::Idle,
        })
        .collect();
    for _ in 0..3_000 {
        match rng.below(10) {
            0..=1 => sim.advance(rng.below(4_000) as i64),
            2..=3 if !sim.in_flight.is_empty() => {
                let result = if rng.chance(5) {
                    Err(ResponseError::NotEnoughReplicas)
                } else {
                    Ok(())
                };
                sim.persist_next(result);
            }
            _ => step(&mut sim, &mut rng, &mut clients),
        }
        check_invariants(&sim);
        if rng.chance(1) {
            // A crashed client comes back as a new process (same instance id if static).
            if let Some(c) = clients.iter_mut().find(|c| c.phase == Phase::Crashed) {
                reset(c);
            }
        }
    }
    // Everyone goes away; appends complete.
    sim.auto_persist = true;
    while !sim.in_flight.is_empty() {
        sim.persist_next(Ok(()));
    }
    check_log_matches_state(&sim, seed);
    // Time passes.
    for _ in 0..120 {
        sim.advance(60_000);
        check_invariants(&sim);
    }
    let unanswered: Vec<_> = sim.issued.iter().filter(|r| !sim.responses.contains_key(r)).collect();
    assert!(
        unanswered.is_empty(),
        "seed {seed}: requests never answered: {unanswered:?}"
    );
    assert!(
        matches!(sim.state_of(GROUP), GroupState::Empty | GroupState::Dead),
        "seed {seed}: group did not wind down: {:?}",
        sim.state_of(GROUP)
    );
}

#[test]
fn random_consumers_never_break_the_invariants_and_every_request_is_answered() {
    for seed in 1..=12 {
        run(seed * 0x9E37_79B9);
    }
}
