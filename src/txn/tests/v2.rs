//! Transactions v2 (KIP-890 part 2): partitions added by their leaders, EndTxn v5 bumping the
//! epoch at every end (a new producer id when the epochs run out), and its retries.

use kafka_protocol::ResponseError;

use super::super::records::TxnState;
use super::*;

fn v2_sim() -> Sim {
    let mut sim = Sim::new();
    sim.client_tv = 2;
    sim
}

#[test]
fn every_end_bumps_the_epoch_and_the_markers_carry_the_bumped_epoch() {
    let mut sim = v2_sim();
    let (pid, epoch) = sim.init_ok(TXN);
    assert_eq!(sim.add(TXN, pid, epoch, &[tp("t", 0)]), None);
    assert_eq!(sim.state.txns[TXN].data.client_transaction_version, 2);
    assert_eq!(sim.end_v2(TXN, pid, epoch, true), (None, pid, epoch + 1));
    let job = sim.markers[0].clone();
    assert_eq!(
        (job.producer_id, job.producer_epoch, job.commit),
        (pid, epoch + 1, true)
    );
    sim.write_markers();
    assert_eq!(sim.logged_state(TXN), Some(TxnState::CompleteCommit));
    // The next transaction runs at the bumped epoch, and ends one higher again.
    assert_eq!(
        sim.add(TXN, pid, epoch, &[tp("t", 0)]),
        Some(ResponseError::ProducerFenced),
        "the old epoch is fenced"
    );
    assert_eq!(sim.add(TXN, pid, epoch + 1, &[tp("t", 1)]), None);
    assert_eq!(sim.end_v2(TXN, pid, epoch + 1, false), (None, pid, epoch + 2));
    sim.write_markers();
    assert_eq!(sim.logged_state(TXN), Some(TxnState::CompleteAbort));
}

#[test]
fn a_retried_end_with_the_old_epoch_gets_the_new_one_and_other_epochs_are_fenced() {
    let mut sim = v2_sim();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    assert_eq!(sim.end_v2(TXN, pid, epoch, true), (None, pid, epoch + 1));
    assert_eq!(
        sim.end(TXN, pid, epoch, true),
        Some(ResponseError::ConcurrentTransactions),
        "a retry while the markers are written"
    );
    assert_eq!(sim.end(TXN, pid, epoch + 1, true), Some(ResponseError::ProducerFenced));
    sim.write_markers();
    assert_eq!(
        sim.end_v2(TXN, pid, epoch, true),
        (None, pid, epoch + 1),
        "a retry once complete"
    );
    assert_eq!(sim.end(TXN, pid, epoch, false), Some(ResponseError::InvalidTxnState));
    assert_eq!(
        sim.end(TXN, pid, epoch + 1, true),
        Some(ResponseError::InvalidTxnState),
        "the new epoch committing nothing"
    );
    assert_eq!(sim.end(TXN, pid, epoch - 1, true), Some(ResponseError::ProducerFenced));
    assert_eq!(
        sim.end(TXN, pid + 1, epoch + 1, true),
        Some(ResponseError::InvalidProducerIdMapping)
    );
}

#[test]
fn an_abort_with_nothing_added_bumps_the_epoch_without_markers() {
    let mut sim = v2_sim();
    let (pid, epoch) = sim.init_ok(TXN);
    assert_eq!(sim.end_v2(TXN, pid, epoch, false), (None, pid, epoch + 1));
    assert!(sim.markers.is_empty());
    assert_eq!(sim.logged_state(TXN), Some(TxnState::CompleteAbort));
    // A classic producer may not.
    sim.client_tv = 0;
    let (pid, epoch) = sim.init_ok(TXN);
    assert_eq!(sim.end(TXN, pid, epoch, false), Some(ResponseError::InvalidTxnState));
}

#[test]
fn the_end_that_uses_up_the_epochs_moves_the_producer_to_a_new_id() {
    let mut sim = v2_sim();
    let (pid, _) = sim.init_ok(TXN);
    let last = i16::MAX - 1;
    sim.state.txns.get_mut(TXN).unwrap().data.producer_epoch = last;
    sim.add(TXN, pid, last, &[tp("t", 0)]);
    let (error, new_pid, new_epoch) = sim.end_v2(TXN, pid, last, true);
    assert_eq!(error, None);
    assert_ne!(new_pid, pid);
    assert_eq!(new_epoch, 0);
    let job = sim.markers[0].clone();
    assert_eq!(
        (job.producer_id, job.producer_epoch),
        (pid, i16::MAX),
        "the markers close the old id at its last epoch"
    );
    sim.write_markers();
    let d = &sim.state.txns[TXN].data;
    assert_eq!(
        (d.producer_id, d.producer_epoch, d.previous_producer_id),
        (new_pid, 0, pid)
    );
    assert_eq!(
        sim.end_v2(TXN, pid, last, true),
        (None, new_pid, 0),
        "a retry names the old id and epoch"
    );
    // The new id carries on, and survives a reload from the log.
    let mut sim = sim.reload();
    sim.client_tv = 2;
    assert_eq!(sim.add(TXN, new_pid, 0, &[tp("t", 0)]), None);
    assert_eq!(sim.end_v2(TXN, new_pid, 0, false), (None, new_pid, 1));
}

#[test]
fn a_fence_of_a_v2_transaction_bumps_past_a_retry_and_the_old_producer_is_fenced() {
    let mut sim = v2_sim();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 0)]);
    // A new instance of the producer: the open transaction is aborted, fenced and ended.
    assert_eq!(sim.init(TXN).0, Some(ResponseError::ConcurrentTransactions));
    assert_eq!(sim.markers[0].producer_epoch, epoch + 2);
    sim.write_markers();
    for commit in [true, false] {
        assert_eq!(
            sim.end(TXN, pid, epoch, commit),
            Some(ResponseError::ProducerFenced),
            "the zombie's end is no retry"
        );
    }
    assert_eq!(sim.init_ok(TXN), (pid, epoch + 3));
}
