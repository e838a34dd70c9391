//! InitProducerId with a transactional id: new ids, epoch bumps, KIP-360 retries, fencing.

use kafka_protocol::ResponseError;

use super::super::records::TxnState;
use super::*;

#[test]
fn a_new_transactional_id_gets_a_fresh_producer_id_at_epoch_zero_then_bumps() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    assert_eq!(epoch, 0);
    assert_eq!(sim.logged_state(TXN), Some(TxnState::Empty));
    let (again, epoch) = sim.init_ok(TXN);
    assert_eq!((again, epoch), (pid, 1), "same producer id, next epoch");
}

#[test]
fn bad_ids_and_timeouts_are_refused() {
    let mut sim = Sim::new();
    assert_eq!(sim.init("").0, Some(ResponseError::InvalidRequest));
    let req = sim.send_init(TXN, 900_001, None);
    assert_eq!(
        sim.take_response(req),
        Response::init_error(ResponseError::InvalidTransactionTimeout)
    );
    let req = sim.send_init(TXN, 0, None);
    assert_eq!(
        sim.take_response(req),
        Response::init_error(ResponseError::InvalidTransactionTimeout)
    );
}

#[test]
fn a_second_init_while_the_first_is_written_is_concurrent() {
    let mut sim = Sim::new();
    sim.auto_persist = false;
    let first = sim.send_init(TXN, TIMEOUT_MS, None);
    let second = sim.send_init(TXN, TIMEOUT_MS, None);
    assert_eq!(
        sim.take_response(second),
        Response::init_error(ResponseError::ConcurrentTransactions)
    );
    sim.persist_next(Ok(()));
    assert!(matches!(
        sim.take_response(first),
        Response::InitProducerId { error: None, .. }
    ));
}

#[test]
fn kip_360_a_retry_naming_the_previous_epoch_gets_the_current_one_and_a_stale_one_is_fenced() {
    let mut sim = Sim::new();
    let (pid, _) = sim.init_ok(TXN);
    let req = sim.send_init(TXN, TIMEOUT_MS, Some((pid, 0)));
    assert!(matches!(
        sim.take_response(req),
        Response::InitProducerId {
            producer_epoch: 1,
            error: None,
            ..
        }
    ));
    // A retry of that request (the answer was lost) names epoch 0 again: epoch 1 again.
    let req = sim.send_init(TXN, TIMEOUT_MS, Some((pid, 0)));
    assert!(matches!(
        sim.take_response(req),
        Response::InitProducerId {
            producer_epoch: 1,
            error: None,
            ..
        }
    ));
    let req = sim.send_init(TXN, TIMEOUT_MS, Some((pid + 999, 1)));
    assert_eq!(
        sim.take_response(req),
        Response::init_error(ResponseError::ProducerFenced)
    );
    sim.init_ok(TXN); // epoch 2, and the last epoch forgotten
    let req = sim.send_init(TXN, TIMEOUT_MS, Some((pid, 0)));
    assert_eq!(
        sim.take_response(req),
        Response::init_error(ResponseError::ProducerFenced)
    );
}

#[test]
fn an_init_during_an_open_transaction_aborts_it_fencing_the_old_producer() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    assert_eq!(sim.add(TXN, pid, epoch, &[tp("t", 0)]), None);
    assert_eq!(sim.init(TXN).0, Some(ResponseError::ConcurrentTransactions));
    assert_eq!(sim.state_of(TXN), Some(TxnState::PrepareAbort));
    let jobs = sim.write_markers();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].commit, jobs[0].producer_epoch),
        (false, epoch + 1),
        "abort at the fencing epoch"
    );
    assert_eq!(sim.state_of(TXN), Some(TxnState::CompleteAbort));
    assert_eq!(sim.end(TXN, pid, epoch, true), Some(ResponseError::ProducerFenced));
    let (again, new_epoch) = sim.init_ok(TXN);
    assert_eq!((again, new_epoch), (pid, epoch + 2));
}

#[test]
fn when_epochs_run_out_the_producer_id_rotates() {
    let mut sim = Sim::new();
    let (pid, _) = sim.init_ok(TXN);
    sim.state.txns.get_mut(TXN).unwrap().data.producer_epoch = i16::MAX - 1;
    let (next, epoch) = sim.init_ok(TXN);
    assert_ne!(next, pid);
    assert_eq!(epoch, 0);
    assert_eq!(sim.state.txns[TXN].data.previous_producer_id, pid);
}

#[test]
fn a_failed_write_changes_nothing_and_says_why() {
    let mut sim = Sim::new();
    let (pid, _) = sim.init_ok(TXN);
    sim.auto_persist = false;
    let req = sim.send_init(TXN, TIMEOUT_MS, None);
    sim.persist_next(Err(ResponseError::NotLeaderOrFollower));
    assert_eq!(
        sim.take_response(req),
        Response::init_error(ResponseError::NotCoordinator)
    );
    let req = sim.send_init(TXN, TIMEOUT_MS, None);
    sim.persist_next(Err(ResponseError::RequestTimedOut));
    assert_eq!(
        sim.take_response(req),
        Response::init_error(ResponseError::CoordinatorNotAvailable)
    );
    assert_eq!(sim.state.txns[TXN].data.producer_epoch, 0);
    assert_eq!(sim.state.txns[TXN].data.producer_id, pid);
}
