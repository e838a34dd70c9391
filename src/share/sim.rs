//! Seeded simulation of one share-partition: consumers fetch, acknowledge (accept, release,
//! reject), crash and come back under new member ids, time jumps past locks, the log grows
//! with gaps (control batches). Invariants checked after every step: a record is never
//! acquired while another member's lock on it is live; an accepted record is never acquired
//! again; no record is delivered more than the delivery count limit; the window never holds
//! more than `max_record_locks` records; everything below the start offset is finished. Then a
//! liveness phase without crashes must finish every record.

use std::collections::{BTreeMap, BTreeSet};

use super::partition::{AckType, Acquired, Limits, RecordState, SharePartition};
use crate::testing::Rng;

const LIMITS: Limits = Limits {
    lock_duration_ms: 1000,
    delivery_count_limit: 4,
    max_record_locks: 50,
};

struct Consumer {
    member: String,
    held: BTreeSet<i64>,
}

struct Sim {
    rng: Rng,
    sp: SharePartition,
    now_ms: i64,
    /// The log: offsets that hold records (others are control records).
    records: BTreeSet<i64>,
    log_end: i64,
    consumers: Vec<Consumer>,
    next_member: u64,
    deliveries: BTreeMap<i64, i16>,
    accepted: BTreeSet<i64>,
    rejected: BTreeSet<i64>,
    /// Records below this were checked finished already (the start offset never goes back).
    checked_below: i64,
}

impl Sim {
    fn new(seed: u64, consumers: usize) -> Sim {
        let mut sim = Sim {
            rng: Rng::new(seed),
            sp: SharePartition::new(0, LIMITS),
            now_ms: 0,
            records: BTreeSet::new(),
            log_end: 0,
            consumers: Vec::new(),
            next_member: 0,
            deliveries: BTreeMap::new(),
            accepted: BTreeSet::new(),
            rejected: BTreeSet::new(),
            checked_below: 0,
        };
        for _ in 0..consumers {
            let c = sim.new_consumer();
            sim.consumers.push(c);
        }
        sim
    }

    fn new_consumer(&mut self) -> Consumer {
        self.next_member += 1;
        Consumer {
            member: format!("m{}", self.next_member),
            held: BTreeSet::new(),
        }
    }

    fn produce(&mut self) {
        let n = 1 + self.rng.below(20) as i64;
        for o in self.log_end..self.log_end + n {
            self.records.insert(o);
        }
        self.log_end += n;
        if self.rng.chance(20) {
            self.log_end += 1; // a control record: an offset with nothing to deliver
        }
    }

    fn fetch(&mut self, c: usize) {
        let Some(from) = self.sp.next_fetch_offset(self.now_ms) else {
            return;
        };
        let read_end = (from + 1 + self.rng.below(40) as i64).min(self.log_end);
        let offsets: Vec<i64> = self.records.range(from..read_end).copied().collect();
        let before: BTreeMap<i64, Option<RecordState>> = offsets
            .iter()
            .map(|o| (*o, self.sp.record(*o).map(|r| r.state.clone())))
            .collect();
        let end_before = self.sp.end_offset();
        let max = 1 + self.rng.below(15) as usize;
        let member = self.consumers[c].member.clone();
        let got = self.sp.acquire(&member, offsets.iter().copied(), max, self.now_ms);
        let n: i64 = got.iter().map(|a| a.last_offset - a.first_offset + 1).sum();
        assert!(n as usize <= max, "max records");
        if got.is_empty() && offsets.is_empty() {
            self.sp.skip_to(read_end);
        }
        for Acquired {
            first_offset,
            last_offset,
            delivery_count,
        } in got
        {
            for o in first_offset..=last_offset {
                assert!(self.records.contains(&o), "acquired {o}, which is not a record");
                assert!(!self.accepted.contains(&o), "accepted record {o} acquired again");
                assert!(!self.rejected.contains(&o), "rejected record {o} acquired again");
                match &before[&o] {
                    None => assert!(o >= end_before, "{o} below the old end and not in flight"),
                    Some(RecordState::Available) => {}
                    Some(RecordState::Acquired {
                        lock_until_ms,
                        member: m,
                    }) => assert!(
                        *lock_until_ms <= self.now_ms,
                        "{o} acquired by {member} while {m}'s lock is live"
                    ),
                    Some(s) => panic!("{o} acquired from state {s:?}"),
                }
                let d = self.deliveries.entry(o).or_default();
                *d += 1;
                assert_eq!(*d, delivery_count, "delivery count of {o}");
                assert!(*d <= LIMITS.delivery_count_limit, "{o} delivered {d} times");
                // Another consumer's stale claim on it is gone (its lock expired).
                for other in self.consumers.iter_mut() {
                    other.held.remove(&o);
                }
                self.consumers[c].held.insert(o);
            }
        }
    }

    fn acknowledge(&mut self, c: usize) {
        let held: Vec<i64> = self.consumers[c].held.iter().copied().collect();
        if held.is_empty() {
            return;
        }
        let first = held[self.rng.below(held.len() as u64) as usize];
        let run: Vec<i64> = held
            .iter()
            .copied()
            .filter(|o| *o >= first)
            .take(1 + self.rng.below(5) as usize)
            .collect();
        let last = *run.last().expect("non-empty");
        let types: Vec<AckType> = (first..=last)
            .map(|o| match (run.contains(&o), self.rng.below(10)) {
                (false, _) => AckType::Gap,
                (true, 0..=5) => AckType::Accept,
                (true, 6..=7) => AckType::Release,
                _ => AckType::Reject,
            })
            .collect();
        let member = self.consumers[c].member.clone();
        // Kafka's rule: the whole batch succeeds when every record in its range is acquired by
        // this member (under a live lock), else nothing changes.
        let ours = |sim: &Sim, o: i64| {
            matches!(sim.sp.record(o).map(|r| &r.state),
                Some(RecordState::Acquired { member: m, lock_until_ms }) if *m == member && *lock_until_ms > sim.now_ms)
        };
        let expect_ok =
            (first..=last).all(|o| ours(self, o) || self.sp.record(o).is_none()) && run.iter().all(|o| ours(self, *o));
        let acquired_in_range: Vec<i64> = (first..=last).filter(|o| ours(self, *o)).collect();
        let result = self.sp.acknowledge(&member, first, last, &types, self.now_ms);
        if !expect_ok {
            assert!(result.is_err(), "ack of records not ours succeeded: {first}..={last}");
            let still: BTreeSet<i64> = self.consumers[c]
                .held
                .iter()
                .copied()
                .filter(|o| ours(self, *o))
                .collect();
            self.consumers[c].held = still;
            return;
        }
        result.expect("ack of records we hold");
        for o in acquired_in_range {
            self.consumers[c].held.remove(&o);
            match types[(o - first) as usize] {
                AckType::Accept => assert!(self.accepted.insert(o), "{o} accepted twice"),
                AckType::Reject | AckType::Gap => {
                    self.rejected.insert(o);
                }
                AckType::Release => {}
            }
        }
    }

    fn crash(&mut self, c: usize) {
        let fresh = self.new_consumer();
        self.consumers[c] = fresh;
    }

    fn check(&mut self) {
        assert!(
            self.sp.in_flight().count() <= LIMITS.max_record_locks,
            "window too large"
        );
        let start = self.sp.start_offset();
        assert!(start >= self.checked_below, "the start offset went back");
        let newly_below = self.checked_below..start;
        self.checked_below = start;
        for o in self.records.range(newly_below) {
            let finished = self.accepted.contains(o)
                || self.rejected.contains(o)
                || self.deliveries.get(o) == Some(&LIMITS.delivery_count_limit);
            assert!(finished, "{o} below the start offset {start} is not finished");
        }
        for (o, r) in self.sp.in_flight() {
            assert!(o >= start && o < self.sp.end_offset());
            if let RecordState::Acquired { member, .. } = &r.state {
                let holders = self.consumers.iter().filter(|c| c.member == *member).count();
                assert!(holders <= 1);
            }
        }
    }

    fn step(&mut self, crashes: bool) {
        let c = self.rng.below(self.consumers.len() as u64) as usize;
        match self.rng.below(100) {
            0..=14 => self.produce(),
            15..=54 => self.fetch(c),
            55..=89 => self.acknowledge(c),
            90..=95 => self.now_ms += self.rng.below(700) as i64,
            _ if crashes => self.crash(c),
            _ => {}
        }
        self.check();
    }
}

fn run(seed: u64) {
    let mut sim = Sim::new(seed, 1 + (seed % 4) as usize);
    for _ in 0..3000 {
        sim.step(true);
    }
    // Liveness: no more crashes or new records; consumers fetch and accept all they hold.
    for _ in 0..20_000 {
        if sim.sp.start_offset() >= sim.log_end {
            break;
        }
        let c = sim.rng.below(sim.consumers.len() as u64) as usize;
        sim.fetch(c);
        let member = sim.consumers[c].member.clone();
        for o in std::mem::take(&mut sim.consumers[c].held) {
            if sim
                .sp
                .acknowledge(&member, o, o, &[AckType::Accept], sim.now_ms)
                .is_ok()
            {
                assert!(sim.accepted.insert(o), "{o} accepted twice");
            }
        }
        sim.now_ms += 50;
        sim.check();
    }
    let next_fetch = sim.sp.next_fetch_offset(sim.now_ms);
    assert!(
        sim.sp.start_offset() >= sim.log_end,
        "seed {seed}: stuck at {} of {} (end {}, first in flight {:?}, next fetch {:?})",
        sim.sp.start_offset(),
        sim.log_end,
        sim.sp.end_offset(),
        sim.sp.in_flight().next(),
        next_fetch,
    );
    for o in &sim.records {
        let done = sim.accepted.contains(o)
            || sim.rejected.contains(o)
            || sim.deliveries.get(o) == Some(&LIMITS.delivery_count_limit);
        assert!(done, "seed {seed}: {o} never finished");
    }
}

#[test]
fn share_partition_simulation_keeps_its_invariants() {
    for seed in 0..64 {
        run(seed);
    }
}
