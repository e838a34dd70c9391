//! Loading a partition: a new coordinator finishes what the last one left half done.

use kafka_protocol::ResponseError;

use super::super::records::TxnState;
use super::*;

#[test]
fn a_new_coordinator_resends_the_markers_of_a_prepared_transaction_and_completes_it() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0), tp("t", 1)]);
    sim.end(TXN, pid, epoch, true);
    // The coordinator dies with the markers unwritten.
    let mut next = sim.reload();
    assert_eq!(next.state_of(TXN), Some(TxnState::PrepareCommit));
    assert_eq!(next.markers.len(), 1, "the markers go out again");
    assert!(next.markers[0].commit);
    next.write_markers();
    assert_eq!(next.logged_state(TXN), Some(TxnState::CompleteCommit));
    assert_eq!(next.end(TXN, pid, epoch, true), None, "the producer's retry succeeds");
}

#[test]
fn an_open_transaction_survives_a_move_and_still_times_out() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    let mut next = sim.reload();
    assert_eq!(next.state_of(TXN), Some(TxnState::Ongoing));
    assert!(next.markers.is_empty());
    next.advance(i64::from(TIMEOUT_MS) + 20_000);
    next.write_markers();
    assert_eq!(next.state_of(TXN), Some(TxnState::CompleteAbort));
}

#[test]
fn unloading_answers_every_waiting_request_not_coordinator() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.auto_persist = false;
    let req = sim.send_add(TXN, pid, epoch, &[tp("t", 0)]);
    let state = std::mem::replace(&mut sim.state, TxnCoordinatorState::new(TxnConfig::default()));
    let actions = replay::unload(state);
    sim.apply(actions);
    assert_eq!(
        sim.take_response(req),
        Response::AddPartitions {
            error: Some(ResponseError::NotCoordinator)
        }
    );
    assert!(sim.timers.is_empty());
}
