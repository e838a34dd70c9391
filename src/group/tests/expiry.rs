//! The periodic offset expiry (`offsets.retention.minutes`).

use super::super::api::Event;
use super::super::config::GroupConfig;
use super::super::records::Record;
use super::super::state::GroupState;
use super::{Sim, GROUP};

const RETENTION_MS: i64 = 3_600_000;
const CHECK_MS: i64 = 60_000;

fn sim() -> Sim {
    let config = GroupConfig {
        offsets_retention_ms: RETENTION_MS,
        offsets_retention_check_interval_ms: CHECK_MS,
        ..GroupConfig::default()
    };
    let mut sim = Sim::with_config(config);
    // What `load` does for a real coordinator: start the sweep.
    let loaded = super::super::replay::load(sim.state.config().clone(), 7, sim.now, Vec::new()).unwrap();
    sim.state = loaded.state;
    sim.apply(loaded.actions);
    sim
}

#[test]
fn offsets_of_an_empty_group_expire_retention_after_it_became_empty() {
    let mut sim = sim();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    sim.commit(GROUP, &leader, generation, &[("t1", 0, 5)]);
    // Stays a member for two retention periods: its subscribed offsets do not expire.
    for _ in 0..(2 * RETENTION_MS / 5_000) {
        sim.heartbeat(GROUP, &leader, generation);
        sim.advance(5_000);
    }
    assert!(sim.group(GROUP).has_offset_or_pending("t1", 0));
    sim.leave(GROUP, &[(&leader, None)]);
    let empty_since = sim.now;
    sim.advance(RETENTION_MS - CHECK_MS);
    assert!(
        sim.group(GROUP).has_offset_or_pending("t1", 0),
        "retention counts from when it became empty"
    );
    sim.advance(2 * CHECK_MS); // a sweep has run since the retention ended
    assert!(sim.now >= empty_since + RETENTION_MS + CHECK_MS);
    assert!(sim.state.group(GROUP).is_none(), "no offsets left: the group goes too");
    let records = sim.log_records();
    let tail = &records[records.len() - 2..];
    assert_eq!(
        tail[0],
        Record::OffsetCommit {
            group: GROUP.into(),
            topic: "t1".into(),
            partition: 0,
            value: None
        }
    );
    assert_eq!(
        tail[1],
        Record::GroupMetadata {
            group: GROUP.into(),
            value: None
        }
    );
}

#[test]
fn offsets_of_a_simple_group_expire_retention_after_their_commit() {
    let mut sim = sim();
    sim.commit("simple", "", -1, &[("t1", 0, 1)]);
    sim.advance(RETENTION_MS / 2);
    sim.commit("simple", "", -1, &[("t1", 1, 1)]);
    sim.advance(RETENTION_MS / 2 + CHECK_MS);
    let group = sim.group("simple");
    assert!(!group.has_offset_or_pending("t1", 0), "committed a retention ago");
    assert!(group.has_offset_or_pending("t1", 1), "committed half a retention ago");
    sim.advance(RETENTION_MS / 2);
    assert!(sim.state.group("simple").is_none());
}

#[test]
fn stable_consumer_group_expires_only_offsets_of_topics_it_no_longer_consumes() {
    let mut sim = sim();
    let (leader, _, generation) = sim.stable_group(GROUP, 1); // subscribed to t1
    sim.commit(GROUP, &leader, generation, &[("t1", 0, 5), ("gone", 0, 6)]);
    for _ in 0..(RETENTION_MS / 5_000 + 20) {
        sim.heartbeat(GROUP, &leader, generation);
        sim.advance(5_000);
    }
    let group = sim.group(GROUP);
    assert_eq!(group.state, GroupState::Stable);
    assert!(group.has_offset_or_pending("t1", 0));
    assert!(!group.has_offset_or_pending("gone", 0));
}

#[test]
fn explicit_retention_of_old_commit_versions_is_honoured() {
    let mut sim = sim();
    let mut r = sim.commit_request("simple", "", -1, &[("t1", 0, 1)]);
    r.api_version = 2;
    r.retention_time_ms = 120_000;
    sim.send(Event::CommitOffsets(r));
    sim.advance(120_000 + CHECK_MS);
    assert!(
        sim.state.group("simple").is_none(),
        "expired at its own deadline, long before the broker's retention"
    );
}

#[test]
fn empty_group_without_offsets_is_removed_by_the_sweep() {
    let mut sim = sim();
    let (leader, _, _) = sim.stable_group(GROUP, 1);
    sim.leave(GROUP, &[(&leader, None)]);
    assert_eq!(sim.state_of(GROUP), GroupState::Empty);
    sim.advance(CHECK_MS);
    assert!(sim.state.group(GROUP).is_none());
    assert_eq!(
        sim.log_records().pop(),
        Some(Record::GroupMetadata {
            group: GROUP.into(),
            value: None
        })
    );
}

#[test]
fn pending_commit_is_never_expired() {
    let mut sim = sim();
    sim.commit("simple", "", -1, &[("t1", 0, 1)]);
    sim.auto_persist = false;
    sim.advance(RETENTION_MS - 1_000);
    sim.commit("simple", "", -1, &[("t1", 0, 2)]); // in flight
    sim.advance(CHECK_MS + 1_000); // a sweep runs after the first commit's retention
    assert!(
        sim.state.group("simple").is_some(),
        "a commit in flight keeps the group"
    );
    while !sim.in_flight.is_empty() {
        sim.persist_next(Ok(()));
    }
    let topics = [("t1".to_owned(), vec![0])];
    assert_eq!(
        sim.state.fetch_offsets("simple", Some(&topics)).topics[0].partitions[0].offset,
        2
    );
}
