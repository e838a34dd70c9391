//! EndTxn, the markers, and the completion.

use kafka_protocol::ResponseError;

use super::super::records::TxnState;
use super::*;

#[test]
fn a_commit_is_prepared_answered_marked_and_completed() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0), tp("u", 2)]);
    assert_eq!(
        sim.end(TXN, pid, epoch, true),
        None,
        "answered once PrepareCommit is in the log"
    );
    assert_eq!(sim.logged_state(TXN), Some(TxnState::PrepareCommit));
    assert_eq!(sim.markers.len(), 1);
    let job = sim.markers[0].clone();
    assert_eq!((job.producer_id, job.producer_epoch, job.commit), (pid, epoch, true));
    assert_eq!(job.partitions, [tp("t", 0), tp("u", 2)]);
    // Markers come back in parts; the completion waits for the last.
    sim.markers.clear();
    sim.event(Event::MarkersWritten {
        transactional_id: TXN.into(),
        producer_id: pid,
        producer_epoch: epoch,
        partitions: vec![tp("u", 2)],
    });
    assert_eq!(sim.state_of(TXN), Some(TxnState::PrepareCommit));
    sim.event(Event::MarkersWritten {
        transactional_id: TXN.into(),
        producer_id: pid,
        producer_epoch: epoch,
        partitions: vec![tp("t", 0)],
    });
    assert_eq!(sim.logged_state(TXN), Some(TxnState::CompleteCommit));
    assert!(sim.state.txns[TXN].data.partitions.is_empty());
}

#[test]
fn end_answers_as_kafka_does_in_every_state() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    assert_eq!(
        sim.end(TXN, pid, epoch, true),
        Some(ResponseError::InvalidTxnState),
        "nothing open"
    );
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    assert_eq!(sim.end(TXN, pid, epoch + 1, true), Some(ResponseError::ProducerFenced));
    assert_eq!(sim.end(TXN, pid, epoch, true), None);
    assert_eq!(
        sim.end(TXN, pid, epoch, true),
        Some(ResponseError::ConcurrentTransactions),
        "markers pending"
    );
    assert_eq!(sim.end(TXN, pid, epoch, false), Some(ResponseError::InvalidTxnState));
    sim.write_markers();
    assert_eq!(sim.end(TXN, pid, epoch, true), None, "a retry of the commit");
    assert_eq!(sim.end(TXN, pid, epoch, false), Some(ResponseError::InvalidTxnState));
}

#[test]
fn a_completion_that_fails_to_be_written_is_retried() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    sim.end(TXN, pid, epoch, false);
    sim.auto_persist = false;
    sim.write_markers();
    sim.persist_next(Err(ResponseError::NotEnoughReplicas));
    assert_eq!(sim.state_of(TXN), Some(TxnState::PrepareAbort));
    assert!(sim.timers.keys().any(|k| matches!(k, TimerKey::RetryComplete { .. })));
    sim.auto_persist = true;
    sim.advance(1_000);
    assert_eq!(sim.state_of(TXN), Some(TxnState::CompleteAbort));
}

#[test]
fn markers_of_an_older_epoch_are_ignored() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    sim.end(TXN, pid, epoch, true);
    sim.event(Event::MarkersWritten {
        transactional_id: TXN.into(),
        producer_id: pid,
        producer_epoch: epoch - 1,
        partitions: vec![tp("t", 0)],
    });
    assert_eq!(sim.state_of(TXN), Some(TxnState::PrepareCommit));
}

#[test]
fn a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    sim.advance(i64::from(TIMEOUT_MS) + 10_000);
    assert_eq!(sim.logged_state(TXN), Some(TxnState::PrepareAbort));
    let jobs = sim.write_markers();
    assert_eq!((jobs[0].commit, jobs[0].producer_epoch), (false, epoch + 1));
    assert_eq!(sim.state_of(TXN), Some(TxnState::CompleteAbort));
    assert_eq!(
        sim.add(TXN, pid, epoch, &[tp("t", 1)]),
        Some(ResponseError::ProducerFenced)
    );
    assert_eq!(sim.end(TXN, pid, epoch, true), Some(ResponseError::ProducerFenced));
}
