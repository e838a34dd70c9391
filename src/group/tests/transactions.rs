//! TxnOffsetCommit: offsets a transaction commits become visible only with its COMMIT marker,
//! are dropped at its ABORT, and a load replays markers the same way.

use kafka_protocol::ResponseError;

use super::super::api::Event;
use super::super::replay::load_log;
use super::{Sim, GROUP};
use crate::coordinator::runtime::LogRecord;

const PRODUCER: i64 = 77;

fn fetched(sim: &Sim, topic: &str, partition: i32, require_stable: bool) -> (i64, Option<ResponseError>) {
    let topics = [(topic.to_owned(), vec![partition])];
    let mut f = sim.state.fetch_offsets(GROUP, Some(&topics));
    if require_stable {
        sim.state.mark_unstable(GROUP, &mut f);
    }
    let p = &f.topics[0].partitions[0];
    (p.offset, p.error)
}

/// A TxnOffsetCommit of `offset` for t1-0 by the group's member, appended and answered.
fn txn_commit(sim: &mut Sim, member: &str, generation: i32, offset: i64) {
    let mut r = sim.commit_request(GROUP, member, generation, &[("t1", 0, offset)]);
    r.transaction = Some((PRODUCER, 0));
    let req = r.req;
    sim.send(Event::CommitOffsets(r));
    assert_eq!(sim.commit_error(req), None);
}

#[test]
fn transactional_offsets_are_visible_only_after_the_commit_marker() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    txn_commit(&mut sim, &leader, generation, 40);
    assert_eq!(fetched(&sim, "t1", 0, false), (-1, None), "pending in the transaction");
    assert_eq!(
        fetched(&sim, "t1", 0, true),
        (-1, Some(ResponseError::UnstableOffsetCommit)),
        "require_stable waits for the transaction"
    );
    sim.send(Event::TxnCompleted {
        producer_id: PRODUCER,
        commit: true,
    });
    assert_eq!(fetched(&sim, "t1", 0, true), (40, None));
}

#[test]
fn transactional_offsets_are_dropped_at_the_abort_marker() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    sim.commit(GROUP, &leader, generation, &[("t1", 0, 10)]);
    txn_commit(&mut sim, &leader, generation, 40);
    sim.send(Event::TxnCompleted {
        producer_id: PRODUCER,
        commit: false,
    });
    assert_eq!(fetched(&sim, "t1", 0, true), (10, None));
    sim.send(Event::TxnCompleted {
        producer_id: PRODUCER,
        commit: true,
    });
    assert_eq!(
        fetched(&sim, "t1", 0, true),
        (10, None),
        "a marker with nothing pending changes nothing"
    );
}

#[test]
fn a_transactional_commit_from_a_stale_generation_is_refused() {
    let mut sim = Sim::new();
    let (leader, _, generation) = sim.stable_group(GROUP, 1);
    let mut r = sim.commit_request(GROUP, &leader, generation + 1, &[("t1", 0, 5)]);
    r.transaction = Some((PRODUCER, 0));
    let req = r.req;
    sim.send(Event::CommitOffsets(r));
    assert_eq!(sim.commit_error(req), Some(ResponseError::IllegalGeneration));
}

#[test]
fn loading_applies_committed_transactions_drops_aborted_ones_and_keeps_open_ones_pending() {
    let mut sim = Sim::new();
    sim.commit(GROUP, "", -1, &[("t1", 0, 1), ("t1", 1, 1), ("t1", 2, 1)]);
    let plain = sim.log.clone();
    let offset = |partition: i32, offset: i64| {
        let mut s = Sim::new();
        s.commit(GROUP, "", -1, &[("t1", partition, offset)]);
        s.log.last().cloned().expect("one record")
    };
    let txn = |(key, value): crate::coordinator::runtime::RawRecord, producer_id: i64| LogRecord::Data {
        key,
        value,
        producer_id: Some(producer_id),
    };
    let mut records: Vec<LogRecord> = plain
        .into_iter()
        .map(|(key, value)| LogRecord::Data {
            key,
            value,
            producer_id: None,
        })
        .collect();
    records.push(txn(offset(0, 50), 1));
    records.push(txn(offset(1, 60), 2));
    records.push(txn(offset(2, 70), 3));
    records.push(LogRecord::Marker {
        producer_id: 1,
        commit: true,
    });
    records.push(LogRecord::Marker {
        producer_id: 2,
        commit: false,
    });
    let loaded = load_log(sim.state.config().clone(), 1, sim.now, records).expect("loads");
    let mut next = Sim::from_state(loaded.state, sim.now);
    assert_eq!(fetched(&next, "t1", 0, true), (50, None), "committed");
    assert_eq!(fetched(&next, "t1", 1, true), (1, None), "aborted");
    assert_eq!(fetched(&next, "t1", 2, false), (1, None), "still open");
    next.send(Event::TxnCompleted {
        producer_id: 3,
        commit: true,
    });
    assert_eq!(
        fetched(&next, "t1", 2, true),
        (70, None),
        "the open one commits after the load"
    );
}
