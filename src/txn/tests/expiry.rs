//! transactional.id.expiration.ms, and DescribeTransactions / ListTransactions.

use super::super::coordinator::TxnConfig;
use super::super::query::ListFilter;
use super::super::records::TxnState;
use super::*;

#[test]
fn an_idle_transactional_id_expires_with_a_tombstone_but_an_open_one_never() {
    let config = TxnConfig {
        id_expiration_ms: 60_000,
        remove_expired_interval_ms: 10_000,
        max_timeout_ms: 900_000,
        ..TxnConfig::default()
    };
    let mut sim = Sim::with_config(config);
    sim.init_ok("idle");
    let (pid, epoch) = sim.init_ok("busy");
    sim.add("busy", pid, epoch, &[tp("t", 0)]);
    sim.advance(70_000);
    assert_eq!(sim.state_of("idle"), None);
    assert!(sim.log.iter().any(|(_, v)| v.is_none()), "a tombstone");
    assert!(sim.state.describe("idle").is_none());
    assert!(
        sim.state_of("busy").is_some(),
        "Ongoing (aborted at its timeout meanwhile) is not expired"
    );
}

#[test]
fn describe_and_list_show_the_transactions_as_kafka_names_their_states() {
    let mut sim = Sim::new();
    let (pid, epoch) = sim.init_ok(TXN);
    sim.add(TXN, pid, epoch, &[tp("t", 1), tp("t", 0)]);
    sim.init_ok("other");
    let d = sim.state.describe(TXN).unwrap();
    assert_eq!((d.state, d.producer_id, d.producer_epoch), ("Ongoing", pid, epoch));
    assert_eq!(d.partitions, [tp("t", 0), tp("t", 1)]);
    let all = sim.state.list(&ListFilter::default(), sim.now);
    assert_eq!(all.len(), 2);
    let ongoing = ListFilter {
        states: vec![TxnState::Ongoing],
        min_duration_ms: -1,
        ..ListFilter::default()
    };
    let listed = sim.state.list(&ongoing, sim.now);
    assert_eq!(
        listed.iter().map(|l| l.transactional_id.as_str()).collect::<Vec<_>>(),
        [TXN]
    );
    let long = ListFilter {
        min_duration_ms: 1_000,
        ..ListFilter::default()
    };
    assert!(sim.state.list(&long, sim.now).iter().all(|l| l.transactional_id != TXN));
}
