//! A seeded simulation: transactional producers (initialising, adding partitions, committing,
//! aborting, vanishing) against one coordinator whose appends sometimes fail and which crashes
//! at random points — between PrepareCommit and its markers too — and is reloaded from its log,
//! with appends in flight either lost or written unacknowledged.
//!
//! Half the producers speak transactions v2 (KIP-890 part 2): their partitions are added as a
//! leader adds them, every EndTxn bumps their epoch (markers at the bumped epoch) and they
//! continue with the epoch it answers; they also abort transactions with nothing added.
//!
//! The oracle is the partitions: every marker written lands in `written`, and a transaction
//! (producer id, epoch) must never be committed on one partition and aborted on another. A
//! producer told its commit succeeded must see only COMMIT markers for it. After the safety
//! phase, the liveness phase stops the faults: every transaction must complete and every
//! request must have been answered.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::super::records::TxnState;
use super::{tp, Response, Sim, TIMEOUT_MS};
use crate::testing::Rng;

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Needs InitProducerId.
    Fresh,
    /// InitProducerId `req` sent.
    Initing { req: u64 },
    /// Has an id and epoch; `open` when it added partitions.
    Ready { open: bool },
    /// AddPartitionsToTxn `req` sent.
    Adding { req: u64 },
    /// EndTxn `req` sent.
    Ending { req: u64, commit: bool },
}

#[derive(Debug)]
struct Producer {
    id: String,
    pid: i64,
    epoch: i16,
    phase: Phase,
    /// Speaks transactions v2.
    v2: bool,
}

/// Transactional id → (producer id, epoch, commit?) of a transaction with markers on some
/// partitions and not yet complete.
type Written = BTreeMap<String, (i64, i16, bool)>;

/// The decision the coordinator holds for `id`: (producer id, epoch, commit?) while it
/// prepares or has completed a transaction.
fn decision(sim: &Sim, id: &str) -> Option<(i64, i16, bool, bool)> {
    let d = &sim.state.txns.get(id)?.data;
    let (commit, complete) = match d.state {
        TxnState::PrepareCommit => (true, false),
        TxnState::PrepareAbort => (false, false),
        TxnState::CompleteCommit => (true, true),
        TxnState::CompleteAbort => (false, true),
        _ => return None,
    };
    Some((d.producer_id, d.producer_epoch, commit, complete))
}

/// Forgets the transactions whose completion is in the log, checking it says what the markers did.
fn forget_completed(sim: &Sim, written: &mut Written) {
    written.retain(|id, &mut (pid, epoch, commit)| match decision(sim, id) {
        Some((p, e, c, true)) if (p, e) == (pid, epoch) => {
            assert_eq!(c, commit, "{id}: completed otherwise than its markers");
            false
        }
        _ => true,
    });
}

fn write_some_markers(sim: &mut Sim, rng: &mut Rng, written: &mut Written, report: bool) {
    forget_completed(sim, written);
    if sim.markers.is_empty() {
        return;
    }
    let i = rng.below(sim.markers.len() as u64) as usize;
    let job = sim.markers.remove(i);
    let id = job.transactional_id.clone();
    let held = decision(sim, &id);
    assert_eq!(
        held,
        Some((job.producer_id, job.producer_epoch, job.commit, false)),
        "{id}: markers sent for a decision the coordinator does not hold"
    );
    let previous = written.insert(id.clone(), (job.producer_id, job.producer_epoch, job.commit));
    assert!(
        previous.is_none_or(|(p, e, c)| (p, e) != (job.producer_id, job.producer_epoch) || c == job.commit),
        "{id}: transaction {}/{} both committed and aborted",
        job.producer_id,
        job.producer_epoch
    );
    if report {
        sim.event(super::Event::MarkersWritten {
            transactional_id: job.transactional_id,
            producer_id: job.producer_id,
            producer_epoch: job.producer_epoch,
            partitions: job.partitions,
        });
    }
}

fn step(sim: &mut Sim, rng: &mut Rng, producers: &mut [Producer], written: &mut Written, faults: bool) {
    // Only a producer moves a completed transaction on: forget it first.
    forget_completed(sim, written);
    let i = rng.below(producers.len() as u64) as usize;
    let p = &mut producers[i];
    sim.client_tv = if p.v2 { 2 } else { 0 };
    match p.phase.clone() {
        Phase::Fresh => {
            p.phase = Phase::Initing {
                req: sim.send_init(&p.id, TIMEOUT_MS, None),
            }
        }
        Phase::Initing { req } => match sim.responses.remove(&req) {
            None => {}
            Some(Response::InitProducerId {
                error: None,
                producer_id,
                producer_epoch,
            }) => (p.pid, p.epoch, p.phase) = (producer_id, producer_epoch, Phase::Ready { open: false }),
            Some(Response::InitProducerId { .. }) => p.phase = Phase::Fresh,
            Some(other) => panic!("InitProducerId answered with {other:?}"),
        },
        Phase::Ready { open } => match rng.below(10) {
            0 if faults => p.phase = Phase::Fresh, // vanished; a new instance starts over
            1..=4 => {
                let parts = [tp("t", rng.below(3) as i32), tp("u", rng.below(2) as i32)];
                let req = sim.send_add(&p.id, p.pid, p.epoch, &parts[..1 + rng.below(2) as usize]);
                p.phase = Phase::Adding { req };
            }
            _ if open || p.v2 => {
                let commit = open && rng.chance(60);
                let req = sim.send_end(&p.id, p.pid, p.epoch, commit);
                p.phase = Phase::Ending { req, commit };
            }
            _ => {}
        },
        Phase::Adding { req } => match sim.responses.remove(&req) {
            None => {}
            Some(Response::AddPartitions { error: None }) => p.phase = Phase::Ready { open: true },
            // Whatever was added may be in the transaction: it must still end.
            Some(Response::AddPartitions {
                error: Some(ResponseError::ConcurrentTransactions | ResponseError::NotCoordinator),
            }) => p.phase = Phase::Ready { open: true },
            Some(Response::AddPartitions { .. }) => p.phase = Phase::Fresh,
            Some(other) => panic!("AddPartitions answered with {other:?}"),
        },
        Phase::Ending { req, commit } => match sim.responses.remove(&req) {
            None => {}
            Some(Response::EndTxn {
                error: None,
                producer_id,
                producer_epoch,
            }) => {
                let held = decision(sim, &p.id).map(|(pid, epoch, c, _)| (pid, epoch, c));
                // v2: the decision (and its markers) is at the bumped epoch, which the
                // producer continues with.
                let decided_epoch = if p.v2 { p.epoch + 1 } else { p.epoch };
                assert_eq!(
                    held,
                    Some((p.pid, decided_epoch, commit)),
                    "{}: EndTxn acknowledged, not decided",
                    p.id
                );
                if p.v2 {
                    assert_eq!((producer_id, producer_epoch), (p.pid, decided_epoch));
                    (p.pid, p.epoch) = (producer_id, producer_epoch);
                }
                p.phase = Phase::Ready { open: false };
            }
            // Retry: the same EndTxn again (a retry of a finished one is answered OK).
            Some(Response::EndTxn {
                error: Some(ResponseError::ConcurrentTransactions | ResponseError::NotCoordinator),
                ..
            }) => {
                let req = sim.send_end(&p.id, p.pid, p.epoch, commit);
                p.phase = Phase::Ending { req, commit };
            }
            // INVALID_TXN_STATE: nothing was open after all (the add never got in).
            Some(Response::EndTxn {
                error: Some(ResponseError::InvalidTxnState),
                ..
            }) => p.phase = Phase::Ready { open: false },
            Some(Response::EndTxn { .. }) => p.phase = Phase::Fresh,
            Some(other) => panic!("EndTxn answered with {other:?}"),
        },
    }
}

fn fault(sim: &mut Sim, rng: &mut Rng, written: &mut Written) {
    match rng.below(40) {
        0 => {
            // A crash: some markers reached their partitions unreported, appends in flight
            // are lost or written without an answer.
            for _ in 0..rng.below(3) {
                write_some_markers(sim, rng, written, false);
            }
            let keep = rng.chance(50);
            *sim = sim.crash(keep);
            // What reached the partitions is still what the reloaded coordinator decides.
            for (id, &(pid, epoch, commit)) in written.iter() {
                let held = decision(sim, id).map(|(p, e, c, _)| (p, e, c));
                assert_eq!(
                    held,
                    Some((pid, epoch, commit)),
                    "{id}: the decision changed across a crash: {:?}",
                    sim.state.txns.get(id)
                );
            }
        }
        1..=3 if !sim.in_flight.is_empty() => sim.persist_next(Err(ResponseError::NotEnoughReplicas)),
        _ => {}
    }
}

fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    let mut sim = Sim::new();
    sim.auto_persist = false;
    let mut written = Written::new();
    let mut producers: Vec<Producer> = (0..4)
        .map(|i| Producer {
            id: format!("txn-{i}"),
            pid: -1,
            epoch: -1,
            phase: Phase::Fresh,
            v2: i % 2 == 1,
        })
        .collect();
    // Safety phase: faults.
    for _ in 0..400 {
        step(&mut sim, &mut rng, &mut producers, &mut written, true);
        fault(&mut sim, &mut rng, &mut written);
        if !sim.in_flight.is_empty() && rng.chance(70) {
            sim.persist_next(Ok(()));
        }
        if rng.chance(30) {
            write_some_markers(&mut sim, &mut rng, &mut written, true);
        }
        sim.advance(rng.below(2_000) as i64);
    }
    // Liveness phase: no faults; everything must complete.
    sim.auto_persist = true;
    while !sim.in_flight.is_empty() {
        sim.persist_next(Ok(()));
    }
    for _ in 0..200 {
        step(&mut sim, &mut rng, &mut producers, &mut written, false);
        while !sim.markers.is_empty() {
            write_some_markers(&mut sim, &mut rng, &mut written, true);
        }
    }
    // Producers gone: every open transaction times out, every marker is written.
    sim.advance(i64::from(TIMEOUT_MS) * 2 + 20_000);
    while !sim.markers.is_empty() {
        write_some_markers(&mut sim, &mut rng, &mut written, true);
        sim.advance(1_000);
    }
    for (id, meta) in &sim.state.txns {
        assert!(
            matches!(
                meta.data.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            ),
            "seed {seed}: {id} left in {:?}",
            meta.data.state
        );
        assert!(meta.pending.is_none(), "seed {seed}: {id} still writing");
    }
    assert!(
        sim.state.out.pending_writes.is_empty(),
        "seed {seed}: writes never reported"
    );
    for p in &producers {
        if let Phase::Initing { req } | Phase::Adding { req } | Phase::Ending { req, .. } = p.phase {
            assert!(
                sim.responses.contains_key(&req),
                "seed {seed}: request {req} never answered"
            );
        }
    }
}

#[test]
fn coordinator_crashes_never_split_a_transaction_and_every_transaction_completes() {
    for seed in 0..64 {
        run(seed);
    }
}
