//! AddPartitionsToTxn / AddOffsetsToTxn and the leaders' verification.

use kafka_protocol::ResponseError;

use super::super::records::TxnState;
use super::*;

#[test]
fn adding_partitions_opens_the_transaction_and_a_repeat_writes_nothing() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.now += 5;
    assert_eq!(sim.add(TXN, pid, epoch, &[tp("t", 0), tp("t", 1)]), None);
    assert_eq!(sim.state_of(TXN), Some(TxnState::Ongoing));
    let start = sim.state.txns[TXN].data.start_ms;
    assert_eq!(start, sim.now);
    let logged = sim.log.len();
    sim.now += 5;
    assert_eq!(sim.add(TXN, pid, epoch, &[tp("t", 1)]), None);
    assert_eq!(sim.log.len(), logged, "already in: answered at once");
    assert_eq!(sim.add(TXN, pid, epoch, &[tp("u", 0)]), None);
    assert_eq!(
        sim.state.txns[TXN].data.start_ms, start,
        "the transaction started with its first add"
    );
    assert_eq!(sim.state.txns[TXN].data.partitions.len(), 3);
}

#[test]
fn only_the_current_producer_may_add() {
    let mut sim = Sim::new();
    assert_eq!(
        sim.add(TXN, 1, 0, &[tp("t", 0)]),
        Some(ResponseError::InvalidProducerIdMapping)
    );
    let (pid, epoch) = sim.init_ok(TXN);
    assert_eq!(
        sim.add(TXN, pid + 1, epoch, &[tp("t", 0)]),
        Some(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(
        sim.add(TXN, pid, epoch + 1, &[tp("t", 0)]),
        Some(ResponseError::ProducerFenced)
    );
}

#[test]
fn adding_while_the_transaction_ends_is_concurrent() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    assert_eq!(sim.end(TXN, pid, epoch, true), None);
    assert_eq!(
        sim.add(TXN, pid, epoch, &[tp("t", 1)]),
        Some(ResponseError::ConcurrentTransactions)
    );
    sim.write_markers();
    assert_eq!(sim.add(TXN, pid, epoch, &[tp("t", 1)]), None, "the next transaction");
}

#[test]
fn verification_says_which_partitions_are_in_the_open_transaction() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    let verdict = sim.state.verify(TXN, pid, epoch, &[tp("t", 0), tp("t", 1)]).unwrap();
    assert_eq!(verdict, [None, Some(ResponseError::TransactionAbortable)]);
    assert_eq!(
        sim.state.verify(TXN, pid, epoch + 1, &[tp("t", 0)]),
        Err(ResponseError::ProducerFenced)
    );
    assert_eq!(
        sim.state.verify("other", pid, epoch, &[tp("t", 0)]),
        Err(ResponseError::InvalidProducerIdMapping)
    );
    sim.end(TXN, pid, epoch, false);
    assert_eq!(
        sim.state.verify(TXN, pid, epoch, &[tp("t", 0)]),
        Err(ResponseError::ConcurrentTransactions)
    );
}
