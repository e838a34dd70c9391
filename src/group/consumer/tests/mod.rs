//! Tests of KIP-848 consumer groups through the coordinator core (the classic tests' `Sim`):
//! one per behaviour of the heartbeat handler, the assignors, and a seeded simulation of
//! members joining, leaving, crashing and topics changing, which checks after every step that
//! no partition is owned by two live members and, once churn stops, that every partition is
//! assigned exactly once and the group is Stable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::assignor::{self, MemberSpec};
use super::heartbeat::{ConsumerHeartbeatRequest, ConsumerHeartbeatResponse};
use super::records::{ConsumerRecord, CurrentAssignment, MemberMetadata};
use super::{Assignment, ConsumerGroupState, TopicInfo, Topics, LEAVE_EPOCH, LEAVE_STATIC_EPOCH};
use crate::group::api::{Event, Response, TimerKey};
use crate::group::config::GroupConfig;
use crate::group::replay::load;
use crate::group::tests::{Sim, GROUP};

const REBALANCE_MS: i32 = 60_000;

fn topic_id(name: &str) -> Uuid {
    Uuid::from_u128(
        name.bytes()
            .fold(7u128, |h, b| h.wrapping_mul(31).wrapping_add(u128::from(b))),
    )
}

fn topics(list: &[(&str, i32)]) -> Topics {
    Arc::new(
        list.iter()
            .map(|(n, p)| {
                (
                    (*n).to_owned(),
                    TopicInfo {
                        id: topic_id(n),
                        partitions: *p,
                    },
                )
            })
            .collect(),
    )
}

fn request(sim: &mut Sim, member_id: &str, epoch: i32, topics: &Topics) -> ConsumerHeartbeatRequest {
    ConsumerHeartbeatRequest {
        req: sim.next_req(),
        api_version: 1,
        group_id: GROUP.into(),
        member_id: member_id.into(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: if epoch == 0 { REBALANCE_MS } else { -1 },
        subscribed_topic_names: (epoch == 0).then(|| vec!["t1".to_owned()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: (epoch == 0).then(Assignment::new),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        topics: topics.clone(),
    }
}

fn send(sim: &mut Sim, r: ConsumerHeartbeatRequest) -> ConsumerHeartbeatResponse {
    let req = r.req;
    sim.send(Event::ConsumerHeartbeat(r));
    match sim.responses.remove(&req) {
        Some(Response::ConsumerHeartbeat(h)) => h,
        other => panic!("expected a ConsumerGroupHeartbeat response, got {other:?}"),
    }
}

fn join(sim: &mut Sim, member_id: &str, topics: &Topics) -> ConsumerHeartbeatResponse {
    let r = request(sim, member_id, 0, topics);
    send(sim, r)
}

/// A heartbeat reporting `owned`.
fn beat(sim: &mut Sim, member_id: &str, epoch: i32, owned: &Assignment, topics: &Topics) -> ConsumerHeartbeatResponse {
    let mut r = request(sim, member_id, epoch, topics);
    r.owned = Some(owned.clone());
    send(sim, r)
}

fn parts(a: &Assignment) -> Vec<i32> {
    a.values().flatten().copied().collect()
}

fn t1(ps: &[i32]) -> Assignment {
    Assignment::from([(topic_id("t1"), ps.iter().copied().collect())])
}

fn member_ids(sim: &Sim) -> Vec<String> {
    sim.group(GROUP)
        .consumer
        .as_ref()
        .unwrap()
        .members
        .keys()
        .cloned()
        .collect()
}

fn group_state(sim: &Sim) -> ConsumerGroupState {
    sim.group(GROUP).consumer.as_ref().expect("a consumer group").state()
}

#[test]
fn first_member_joins_at_epoch_one_with_every_partition() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 4)]);
    let r = join(&mut sim, "m1", &ts);
    assert_eq!((r.error, r.member_epoch, r.member_id.as_deref()), (None, 1, Some("m1")));
    assert_eq!(parts(&r.assignment.expect("an assignment")), [0, 1, 2, 3]);
    assert_eq!(r.heartbeat_interval_ms, 5_000);
    assert_eq!(group_state(&sim), ConsumerGroupState::Stable);
}

#[test]
fn a_partition_is_revoked_before_it_is_assigned_to_a_new_member() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 4)]);
    join(&mut sim, "m1", &ts);
    let r2 = join(&mut sim, "m2", &ts);
    // m2 is at the new epoch but its partitions are still m1's: unreleased, none given yet.
    assert_eq!(
        (r2.member_epoch, parts(&r2.assignment.unwrap_or_default())),
        (2, vec![])
    );
    assert_eq!(group_state(&sim), ConsumerGroupState::Reconciling);
    // m1 is told to keep two, at its old epoch.
    let r1 = beat(&mut sim, "m1", 1, &t1(&[0, 1, 2, 3]), &ts);
    let kept = r1.assignment.expect("m1's reduced assignment");
    assert_eq!((r1.member_epoch, parts(&kept).len()), (1, 2));
    // Until m1 says it gave them up, m2 still gets nothing.
    let r2 = beat(&mut sim, "m2", 2, &Assignment::new(), &ts);
    assert!(r2.assignment.is_none_or(|a| a.is_empty()));
    let r1 = beat(&mut sim, "m1", 1, &kept, &ts);
    assert_eq!(r1.member_epoch, 2);
    let r2 = beat(&mut sim, "m2", 2, &Assignment::new(), &ts);
    let given = r2.assignment.expect("the released partitions");
    assert_eq!(parts(&given).len(), 2);
    assert!(parts(&given).iter().all(|p| !parts(&kept).contains(p)));
    assert_eq!(group_state(&sim), ConsumerGroupState::Stable);
}

#[test]
fn an_epoch_ahead_is_fenced_and_an_unknown_member_is_refused() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 2)]);
    join(&mut sim, "m1", &ts);
    let ahead = beat(&mut sim, "m1", 5, &Assignment::new(), &ts);
    assert_eq!(ahead.error, Some(ResponseError::FencedMemberEpoch));
    let unknown = beat(&mut sim, "nobody", 1, &Assignment::new(), &ts);
    assert_eq!(unknown.error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn the_previous_epoch_is_accepted_with_a_subset_of_the_assignment() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 2)]);
    join(&mut sim, "m1", &ts);
    // The topic grows: m1 moves to epoch 2 and the response may be lost.
    let grown = topics(&[("t1", 3)]);
    let r = beat(&mut sim, "m1", 1, &t1(&[0, 1]), &grown);
    assert_eq!(r.member_epoch, 2);
    let again = beat(&mut sim, "m1", 1, &t1(&[0, 1]), &grown);
    assert_eq!((again.error, again.member_epoch), (None, 2));
    let not_subset = beat(&mut sim, "m1", 1, &t1(&[0, 1, 7]), &grown);
    assert_eq!(not_subset.error, Some(ResponseError::FencedMemberEpoch));
}

#[test]
fn leaving_gives_the_partitions_to_the_others() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 4)]);
    join(&mut sim, "m1", &ts);
    join(&mut sim, "m2", &ts);
    let r1 = beat(&mut sim, "m1", 1, &t1(&[0, 1, 2, 3]), &ts);
    let kept = r1.assignment.unwrap_or_default();
    beat(&mut sim, "m1", 1, &kept, &ts);
    let r = beat(&mut sim, "m2", 2, &Assignment::new(), &ts);
    let m2_owned = r.assignment.unwrap_or_default();
    let mut leave = request(&mut sim, "m2", LEAVE_EPOCH, &ts);
    leave.owned = None;
    let left = send(&mut sim, leave);
    assert_eq!((left.error, left.member_epoch), (None, LEAVE_EPOCH));
    let r1 = beat(&mut sim, "m1", 2, &kept, &ts);
    assert_eq!(parts(&r1.assignment.expect("everything")), [0, 1, 2, 3]);
    assert_eq!(r1.member_epoch, 3);
    assert_eq!(parts(&m2_owned).len(), 2);
}

#[test]
fn a_silent_member_is_fenced_at_its_session_timeout() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 2)]);
    join(&mut sim, "m1", &ts);
    assert!(sim.timers.keys().any(|k| matches!(k, TimerKey::ConsumerSession { .. })));
    sim.advance(45_001);
    assert_eq!(group_state(&sim), ConsumerGroupState::Empty);
    let r = beat(&mut sim, "m1", 1, &Assignment::new(), &ts);
    assert_eq!(r.error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn a_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 2)]);
    join(&mut sim, "m1", &ts);
    join(&mut sim, "m2", &ts);
    beat(&mut sim, "m1", 1, &t1(&[0, 1]), &ts); // told to revoke one
                                                // m2 keeps heartbeating; m1 never acknowledges the revocation.
    for _ in 0..20 {
        sim.advance(4_000);
        beat(&mut sim, "m2", 2, &Assignment::new(), &ts);
        let mut r = request(&mut sim, "m1", 1, &ts);
        r.owned = None;
        if send(&mut sim, r).error.is_some() {
            break;
        }
    }
    assert_eq!(member_ids(&sim), ["m2"]);
    let m2 = &sim.group(GROUP).consumer.as_ref().unwrap().members["m2"];
    assert_eq!(parts(&m2.assigned), [0, 1], "m2 got both partitions");
}

#[test]
fn a_static_member_rejoins_after_a_temporary_leave_with_its_assignment_and_no_rebalance() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 2)]);
    let mut r = request(&mut sim, "a", 0, &ts);
    r.instance_id = Some("i1".into());
    let joined = send(&mut sim, r);
    assert_eq!(joined.member_epoch, 1);
    let mut again = request(&mut sim, "b", 0, &ts);
    again.instance_id = Some("i1".into());
    assert_eq!(send(&mut sim, again).error, Some(ResponseError::UnreleasedInstanceId));
    let mut leave = request(&mut sim, "a", LEAVE_STATIC_EPOCH, &ts);
    leave.instance_id = Some("i1".into());
    leave.owned = None;
    assert_eq!(send(&mut sim, leave).member_epoch, LEAVE_STATIC_EPOCH);
    let epoch = sim.group(GROUP).consumer.as_ref().unwrap().group_epoch;
    let mut back = request(&mut sim, "b", 0, &ts);
    back.instance_id = Some("i1".into());
    let back = send(&mut sim, back);
    assert_eq!((back.error, back.member_epoch), (None, 1));
    assert_eq!(parts(&back.assignment.expect("its partitions")), [0, 1]);
    assert_eq!(
        sim.group(GROUP).consumer.as_ref().unwrap().group_epoch,
        epoch,
        "no new epoch"
    );
}

#[test]
fn a_regex_subscription_picks_up_a_topic_created_later() {
    let mut sim = Sim::new();
    let before = topics(&[("orders-eu", 1), ("other", 1)]);
    let mut r = request(&mut sim, "m1", 0, &before);
    r.subscribed_topic_names = None;
    r.subscribed_topic_regex = Some("orders-.*".into());
    let joined = send(&mut sim, r);
    assert_eq!(
        joined.assignment.unwrap().keys().copied().collect::<Vec<_>>(),
        [topic_id("orders-eu")]
    );
    let after = topics(&[("orders-eu", 1), ("orders-us", 1), ("other", 1)]);
    let owned = Assignment::from([(topic_id("orders-eu"), BTreeSet::from([0]))]);
    let r = beat(&mut sim, "m1", 1, &owned, &after);
    let ids: BTreeSet<Uuid> = r.assignment.expect("the new topic").keys().copied().collect();
    assert_eq!(ids, BTreeSet::from([topic_id("orders-eu"), topic_id("orders-us")]));
}

#[test]
fn an_invalid_regex_and_an_unknown_assignor_are_refused() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 1)]);
    let mut r = request(&mut sim, "m1", 0, &ts);
    r.subscribed_topic_regex = Some("(".into());
    assert_eq!(send(&mut sim, r).error, Some(ResponseError::InvalidRegularExpression));
    let mut r = request(&mut sim, "m1", 0, &ts);
    r.server_assignor = Some("sticky".into());
    assert_eq!(send(&mut sim, r).error, Some(ResponseError::UnsupportedAssignor));
    let mut r = request(&mut sim, "m1", 0, &ts);
    r.owned = None;
    assert_eq!(send(&mut sim, r).error, Some(ResponseError::InvalidRequest));
}

#[test]
fn the_group_refuses_members_beyond_its_max_size() {
    let mut config = GroupConfig::default();
    config.consumer.max_size = 1;
    let mut sim = Sim::with_config(config);
    let ts = topics(&[("t1", 1)]);
    join(&mut sim, "m1", &ts);
    assert_eq!(
        join(&mut sim, "m2", &ts).error,
        Some(ResponseError::GroupMaxSizeReached)
    );
}

#[test]
fn a_heartbeat_to_a_classic_group_with_members_is_group_id_not_found() {
    let mut sim = Sim::new();
    sim.stable_group(GROUP, 1);
    let r = join(&mut sim, "m1", &topics(&[("t1", 1)]));
    assert_eq!(r.error, Some(ResponseError::GroupIdNotFound));
}

#[test]
fn a_classic_join_to_a_consumer_group_with_members_is_inconsistent_group_protocol() {
    let mut sim = Sim::new();
    join(&mut sim, "m1", &topics(&[("t1", 1)]));
    let req = sim.join(GROUP, "");
    assert_eq!(
        sim.join_response(req).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn offset_commits_need_the_members_current_epoch() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 1)]);
    join(&mut sim, "m1", &ts);
    let mut stale = sim.commit_request(GROUP, "m1", 0, &[("t1", 0, 5)]);
    stale.api_version = 9;
    let req = stale.req;
    sim.send(Event::CommitOffsets(stale));
    assert_eq!(sim.commit_error(req), Some(ResponseError::StaleMemberEpoch));
    let mut current = sim.commit_request(GROUP, "m1", 1, &[("t1", 0, 5)]);
    current.api_version = 9;
    let req = current.req;
    sim.send(Event::CommitOffsets(current));
    assert_eq!(sim.commit_error(req), None);
    let mut old_version = sim.commit_request(GROUP, "m1", 1, &[("t1", 0, 6)]);
    old_version.api_version = 8;
    let req = old_version.req;
    sim.send(Event::CommitOffsets(old_version));
    assert_eq!(sim.commit_error(req), Some(ResponseError::UnsupportedVersion));
}

#[test]
fn range_gives_contiguous_ranges_in_member_order() {
    let t = topic_id("t");
    let specs: Vec<MemberSpec<'_>> = ["a", "b", "c"]
        .iter()
        .map(|m| MemberSpec {
            member_id: m,
            topics: BTreeSet::from([t]),
            previous: None,
        })
        .collect();
    let out = assignor::assign(assignor::RANGE, &specs, &BTreeMap::from([(t, 7)]));
    let got: Vec<Vec<i32>> = out.values().map(parts).collect();
    assert_eq!(got, [vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
}

#[test]
fn uniform_is_balanced_and_sticky() {
    let t = topic_id("t");
    let previous = Assignment::from([(t, (0..6).collect())]);
    let specs = vec![
        MemberSpec {
            member_id: "a",
            topics: BTreeSet::from([t]),
            previous: Some(&previous),
        },
        MemberSpec {
            member_id: "b",
            topics: BTreeSet::from([t]),
            previous: None,
        },
        MemberSpec {
            member_id: "c",
            topics: BTreeSet::from([t]),
            previous: None,
        },
    ];
    let out = assignor::assign(assignor::UNIFORM, &specs, &BTreeMap::from([(t, 6)]));
    let counts: Vec<usize> = out.values().map(|a| parts(a).len()).collect();
    assert_eq!(counts, [2, 2, 2]);
    assert!(parts(&out["a"]).iter().all(|p| *p < 6));
    let all: BTreeSet<i32> = out.values().flat_map(parts).collect();
    assert_eq!(all.len(), 6);
}

#[test]
fn assignor_names_accept_kafkas_class_names() {
    assert_eq!(
        assignor::configured("org.apache.kafka.coordinator.group.assignor.UniformAssignor, range"),
        ["uniform", "range"]
    );
}

/// A seeded pseudo-random stream (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A client as the simulation models it: what it believes it owns, its epoch.
#[derive(Debug, Clone)]
struct Client {
    epoch: i32,
    owned: Assignment,
}

/// The coordinator as a new leader would load it from the records appended so far.
fn failover(sim: &mut Sim) {
    let loaded = load(GroupConfig::default(), 7, sim.now, sim.log.clone()).expect("the log loads");
    let log = std::mem::take(&mut sim.log);
    let mut next = Sim::from_state(loaded.state, sim.now);
    next.log = log;
    next.apply(loaded.actions);
    // Request ids stay unique across the two.
    for _ in 0..sim.issued.len() {
        next.next_req();
    }
    *sim = next;
}

fn assert_same_group(a: &Sim, b: &Sim) {
    let (x, y) = (
        a.group(GROUP).consumer.as_ref().unwrap(),
        b.group(GROUP).consumer.as_ref().unwrap(),
    );
    assert_eq!((x.group_epoch, x.assignment_epoch), (y.group_epoch, y.assignment_epoch));
    assert_eq!(x.members, y.members);
    assert_eq!(x.static_members, y.static_members);
    assert_eq!(x.targets, y.targets);
    assert_eq!(x.subscription_metadata, y.subscription_metadata);
    assert_eq!(x.assignor, y.assignor);
}

#[test]
fn a_reloaded_coordinator_has_the_same_groups_and_members_carry_on() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 4)]);
    join(&mut sim, "m1", &ts);
    let mut r = request(&mut sim, "m2", 0, &ts);
    r.instance_id = Some("i2".into());
    send(&mut sim, r);
    let kept = beat(&mut sim, "m1", 1, &t1(&[0, 1, 2, 3]), &ts).assignment.unwrap();
    let before = Sim::from_state(
        load(GroupConfig::default(), 1, sim.now, sim.log.clone()).unwrap().state,
        sim.now,
    );
    assert_same_group(&sim, &before);
    failover(&mut sim);
    assert_same_group(&sim, &before);
    // m1 is still revoking at epoch 1 after the failover; it finishes, m2 gets the rest.
    assert_eq!(beat(&mut sim, "m1", 1, &kept, &ts).member_epoch, 2);
    let mut r = request(&mut sim, "m2", 2, &ts);
    r.instance_id = Some("i2".into());
    r.owned = Some(Assignment::new());
    let got = send(&mut sim, r).assignment.expect("the released partitions");
    assert_eq!(parts(&got).len(), 2);
    // A leave is in the log too: after another failover m2 is gone.
    let mut leave = request(&mut sim, "m1", LEAVE_EPOCH, &ts);
    leave.owned = None;
    send(&mut sim, leave);
    failover(&mut sim);
    assert_eq!(member_ids(&sim), ["m2"]);
}

#[test]
fn records_round_trip_through_kafkas_byte_layout() {
    let group = "g".to_owned();
    let records = vec![
        ConsumerRecord::GroupMetadata {
            group: group.clone(),
            epoch: Some(7),
        },
        ConsumerRecord::PartitionMetadata {
            group: group.clone(),
            topics: Some(vec![(topic_id("t"), "t".into(), 3)]),
        },
        ConsumerRecord::MemberMetadata {
            group: group.clone(),
            member_id: "m".into(),
            value: Some(MemberMetadata {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "c".into(),
                client_host: "/1.2.3.4".into(),
                subscribed_topic_names: vec!["t".into()],
                subscribed_topic_regex: Some("t.*".into()),
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("range".into()),
            }),
        },
        ConsumerRecord::TargetMetadata {
            group: group.clone(),
            assignment_epoch: Some(7),
        },
        ConsumerRecord::TargetMember {
            group: group.clone(),
            member_id: "m".into(),
            partitions: Some(t1(&[0, 2])),
        },
        ConsumerRecord::CurrentAssignment {
            group: group.clone(),
            member_id: "m".into(),
            value: Some(CurrentAssignment {
                member_epoch: 7,
                previous_member_epoch: 6,
                state: super::MemberState::UnrevokedPartitions,
                assigned: t1(&[0]),
                revoking: t1(&[1]),
            }),
        },
        ConsumerRecord::CurrentAssignment {
            group,
            member_id: "m".into(),
            value: None,
        },
    ];
    for record in records {
        let (key, value) = record.encode();
        assert_eq!(ConsumerRecord::decode(&key, value.as_deref()).unwrap(), record);
    }
    // ConsumerGroupMetadataKey v3 "g", ConsumerGroupMetadataValue v0 epoch 7, no tagged fields.
    let (key, value) = ConsumerRecord::GroupMetadata {
        group: "g".into(),
        epoch: Some(7),
    }
    .encode();
    assert_eq!(&key[..], [0, 3, 0, 1, b'g']);
    assert_eq!(value.as_deref(), Some(&[0, 0, 0, 0, 0, 7, 0][..]));
}

fn simulate(seed: u64) {
    let mut rng = Rng(seed);
    let mut sim = Sim::new();
    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    let mut topic_list: Vec<(String, i32)> = vec![("t1".into(), 6)];
    let mut next_id = 0;
    let snapshot = |list: &[(String, i32)]| -> Topics {
        Arc::new(
            list.iter()
                .map(|(n, p)| {
                    (
                        n.clone(),
                        TopicInfo {
                            id: topic_id(n),
                            partitions: *p,
                        },
                    )
                })
                .collect(),
        )
    };
    for step in 0..400 {
        let churn = step < 300;
        let ts = snapshot(&topic_list);
        match rng.below(10) {
            0 | 1 if churn && clients.len() < 6 => {
                next_id += 1;
                let id = format!("m{next_id}");
                let mut r = request(&mut sim, &id, 0, &ts);
                r.subscribed_topic_names = None;
                r.subscribed_topic_regex = Some("t.*".into());
                let resp = send(&mut sim, r);
                assert_eq!(resp.error, None);
                clients.insert(
                    id,
                    Client {
                        epoch: resp.member_epoch,
                        owned: resp.assignment.unwrap_or_default(),
                    },
                );
            }
            2 if churn && !clients.is_empty() => {
                let id = clients
                    .keys()
                    .nth(rng.below(clients.len() as u64) as usize)
                    .cloned()
                    .unwrap();
                let mut r = request(&mut sim, &id, LEAVE_EPOCH, &ts);
                r.owned = None;
                send(&mut sim, r);
                clients.remove(&id);
            }
            // A crash: the client vanishes; its session expires later.
            3 if churn && !clients.is_empty() && rng.below(3) == 0 => {
                let id = clients
                    .keys()
                    .nth(rng.below(clients.len() as u64) as usize)
                    .cloned()
                    .unwrap();
                clients.remove(&id);
            }
            4 if churn && rng.below(4) == 0 => {
                if topic_list.len() < 3 && rng.below(2) == 0 {
                    topic_list.push((format!("t{}", topic_list.len() + 1), 1 + rng.below(4) as i32));
                } else if let Some(t) = topic_list.last_mut() {
                    t.1 += 1;
                }
            }
            _ => {}
        }
        // Every live client heartbeats, reporting what it owns.
        let ts = snapshot(&topic_list);
        for (id, client) in clients.clone() {
            let resp = beat(&mut sim, &id, client.epoch, &client.owned, &ts);
            if resp.error.is_some() {
                // Fenced (e.g. a lost race with a timeout): it gives up everything and rejoins.
                let mut r = request(&mut sim, &id, 0, &ts);
                r.subscribed_topic_names = None;
                r.subscribed_topic_regex = Some("t.*".into());
                let rejoined = send(&mut sim, r);
                clients.insert(
                    id.clone(),
                    Client {
                        epoch: rejoined.member_epoch,
                        owned: rejoined.assignment.unwrap_or_default(),
                    },
                );
                continue;
            }
            let c = clients.get_mut(&id).unwrap();
            c.epoch = resp.member_epoch;
            if let Some(a) = resp.assignment {
                c.owned = a;
            }
        }
        check_no_partition_owned_twice(&clients, step, seed);
        sim.advance(1_000 + rng.below(2_000) as i64);
        if rng.below(40) == 0 {
            failover(&mut sim);
        }
    }
    // Quiet: every partition of every topic is assigned exactly once and the group is Stable.
    let ts = snapshot(&topic_list);
    let total: i32 = topic_list.iter().map(|t| t.1).sum();
    let owned_total: usize = clients.values().map(|c| parts(&c.owned).len()).sum();
    if !clients.is_empty() {
        assert_eq!(
            owned_total, total as usize,
            "seed {seed}: every partition owned once when stable"
        );
        assert_eq!(group_state(&sim), ConsumerGroupState::Stable, "seed {seed}");
        let counts: Vec<usize> = clients.values().map(|c| parts(&c.owned).len()).collect();
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(hi - lo <= 1, "seed {seed}: uniform is balanced: {counts:?}");
    }
    let _ = ts;
}

fn check_no_partition_owned_twice(clients: &BTreeMap<String, Client>, step: usize, seed: u64) {
    let mut seen: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    for (id, c) in clients {
        for (t, ps) in &c.owned {
            for p in ps {
                if let Some(other) = seen.insert((*t, *p), id) {
                    panic!("seed {seed} step {step}: partition {t}/{p} owned by {other} and {id}");
                }
            }
        }
    }
}

#[test]
fn simulation_never_gives_a_partition_to_two_members_and_settles() {
    for seed in 0..40 {
        simulate(seed);
    }
}

fn delete_group(sim: &mut Sim) -> Option<ResponseError> {
    let req = sim.next_req();
    sim.send(Event::DeleteGroups(crate::group::api::DeleteGroupsRequest {
        req,
        group_ids: vec![GROUP.into()],
    }));
    match sim.responses.remove(&req) {
        Some(Response::DeleteGroups(d)) => d.results[0].1,
        other => panic!("expected a DeleteGroups response, got {other:?}"),
    }
}

#[test]
fn delete_groups_refuses_a_consumer_group_with_members_and_tombstones_an_empty_one() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 1)]);
    join(&mut sim, "m1", &ts);
    assert_eq!(delete_group(&mut sim), Some(ResponseError::NonEmptyGroup));
    let mut leave = request(&mut sim, "m1", LEAVE_EPOCH, &ts);
    leave.owned = None;
    send(&mut sim, leave);
    assert_eq!(delete_group(&mut sim), None);
    assert!(sim.state.group(GROUP).is_none());
    // The log says so too: a reload finds no group.
    failover(&mut sim);
    assert!(sim.state.group(GROUP).is_none());
}

#[test]
fn list_groups_filters_by_type_and_shows_the_consumer_groups_state() {
    let mut sim = Sim::new();
    join(&mut sim, "m1", &topics(&[("t1", 1)]));
    sim.stable_group("classic-group", 1);
    let listed = |types: &[&str]| -> Vec<(String, &'static str, &'static str)> {
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        sim.state
            .list_groups(&[], &types)
            .into_iter()
            .map(|g| (g.group_id, g.group_type, g.state))
            .collect()
    };
    assert_eq!(listed(&["consumer"]), [(GROUP.to_owned(), "consumer", "Stable")]);
    assert_eq!(
        listed(&["Classic"]),
        [("classic-group".to_owned(), "classic", "Stable")]
    );
    assert_eq!(listed(&[]).len(), 2);
    let described = sim.state.describe_group(GROUP);
    assert_eq!(
        described.state, "Dead",
        "DescribeGroups describes classic groups only, as Kafka"
    );
    let d = sim.state.describe_consumer_group(GROUP);
    assert_eq!((d.state, d.group_epoch, d.members.len()), ("Stable", 1, 1));
    let not_consumer = sim.state.describe_consumer_group("classic-group");
    assert_eq!(not_consumer.error.map(|e| e.0), Some(ResponseError::GroupIdNotFound));
}

#[test]
fn offset_fetch_with_a_member_needs_its_current_epoch() {
    let mut sim = Sim::new();
    join(&mut sim, "m1", &topics(&[("t1", 1)]));
    let check = |member: Option<&str>, epoch| sim.state.validate_consumer_offset_fetch(GROUP, member, epoch);
    assert_eq!(check(None, -1), Ok(()));
    assert_eq!(check(Some("m1"), 1), Ok(()));
    assert_eq!(check(Some("m1"), 0), Err(ResponseError::StaleMemberEpoch));
    assert_eq!(check(Some("other"), 1), Err(ResponseError::UnknownMemberId));
}

#[test]
fn without_consumer_in_the_rebalance_protocols_heartbeats_are_unsupported() {
    let mut config = GroupConfig::default();
    config.consumer.enabled = false;
    let mut sim = Sim::with_config(config);
    let r = join(&mut sim, "m1", &topics(&[("t1", 1)]));
    assert_eq!(r.error, Some(ResponseError::UnsupportedVersion));
}

#[test]
fn a_refused_join_leaves_no_group_behind() {
    let mut sim = Sim::new();
    let mut r = request(&mut sim, "m1", 0, &topics(&[("t1", 1)]));
    r.subscribed_topic_regex = Some("(".into());
    assert_eq!(send(&mut sim, r).error, Some(ResponseError::InvalidRegularExpression));
    assert!(sim.state.group(GROUP).is_none());
    let mut r = request(&mut sim, &"m".repeat(40_000), 0, &topics(&[("t1", 1)]));
    r.api_version = 1;
    assert_eq!(send(&mut sim, r).error, Some(ResponseError::InvalidRequest));
}

#[test]
fn offset_delete_refuses_the_topics_a_consumer_group_subscribes_to() {
    let mut sim = Sim::new();
    let ts = topics(&[("t1", 1), ("old", 1)]);
    join(&mut sim, "m1", &ts);
    let mut commit = sim.commit_request(GROUP, "m1", 1, &[("t1", 0, 5), ("old", 0, 3)]);
    commit.api_version = 9;
    sim.send(Event::CommitOffsets(commit));
    let req = sim.next_req();
    sim.send(Event::OffsetDelete(crate::group::api::OffsetDeleteRequest {
        req,
        group_id: GROUP.into(),
        topics: vec![("t1".into(), vec![0]), ("old".into(), vec![0])],
    }));
    match sim.responses.remove(&req) {
        Some(Response::OffsetDelete(d)) => {
            assert_eq!(
                d.topics[0].partitions,
                [(0, Some(ResponseError::GroupSubscribedToTopic))]
            );
            assert_eq!(d.topics[1].partitions, [(0, None)]);
        }
        other => panic!("expected an OffsetDelete response, got {other:?}"),
    }
}
