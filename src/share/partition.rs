//! One share-partition's delivery state (KIP-932's SharePartition): the share-partition start
//! offset (SPSO), the end of what has been handed out (SPEO), and between them every in-flight
//! record's state (available, acquired under a lock, acknowledged, archived) with its delivery
//! count.
//!
//! A pure state machine: every method takes the time it runs at and returns what changed; it
//! never reads a clock, touches a log or blocks. The shell (`share::service`) reads the log and
//! hands the core the offsets that exist; the core decides which of them a member acquires.
//!
//! Invariants (asserted by the unit tests and the seeded simulation in `share::sim`): a record
//! is acquired by at most one member at a time; an acknowledged (accepted) record is never
//! acquired again; no record is delivered more than `delivery_count_limit` times; the in-flight
//! window never holds more than `max_record_locks` records.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

/// KIP-932's acknowledgement types, as ShareFetch/ShareAcknowledge carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckType {
    /// A gap in the log (a compacted-away or control record): nothing to deliver.
    Gap,
    Accept,
    Release,
    Reject,
}

impl AckType {
    pub(crate) fn from_code(code: i8) -> Option<AckType> {
        match code {
            0 => Some(AckType::Gap),
            1 => Some(AckType::Accept),
            2 => Some(AckType::Release),
            3 => Some(AckType::Reject),
            _ => None,
        }
    }
}

/// An in-flight record's state (Kafka's RecordState).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordState {
    Available,
    Acquired {
        member: String,
        lock_until_ms: i64,
    },
    /// Accepted: done, never delivered again.
    Acknowledged,
    /// Rejected, a gap, or out of delivery attempts: done, never delivered again.
    Archived,
}

impl RecordState {
    fn is_terminal(&self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

/// A record's state as the durable share state keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersistedState {
    Available,
    Acknowledged,
    Archived,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InFlight {
    pub(crate) state: RecordState,
    pub(crate) delivery_count: i16,
}

/// Limits that bound what one share-partition holds and how often it redelivers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// `group.share.record.lock.duration.ms`.
    pub(crate) lock_duration_ms: i64,
    /// `group.share.delivery.count.limit`.
    pub(crate) delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks`: most records in flight (SPSO..SPEO).
    pub(crate) max_record_locks: usize,
}

/// A run of acquired offsets handed to one member, with the delivery count they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acquired {
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) delivery_count: i16,
}

/// Why an acknowledgement was refused (the whole batch is then left as it was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AckError {
    #[error("offset {0} is not acquired by this member")]
    NotAcquired(i64),
    #[error("acknowledgement batch {first}..={last} is malformed")]
    Malformed { first: i64, last: i64 },
}

impl AckError {
    pub(crate) fn kafka_error(&self) -> ResponseError {
        match self {
            AckError::NotAcquired(_) => ResponseError::InvalidRecordState,
            AckError::Malformed { .. } => ResponseError::InvalidRequest,
        }
    }
}

/// The delivery state of one (group, topic, partition).
#[derive(Debug, Clone)]
pub(crate) struct SharePartition {
    /// SPSO: every offset below it is done (acknowledged, archived, or never to be delivered).
    start_offset: i64,
    /// SPEO: the next offset never yet acquired.
    end_offset: i64,
    /// The records between SPSO and SPEO that exist in the log, by offset.
    in_flight: BTreeMap<i64, InFlight>,
    limits: Limits,
}

impl SharePartition {
    /// A share-partition starting at `start_offset` (by `share.auto.offset.reset`, or from
    /// the durable state).
    pub(crate) fn new(start_offset: i64, limits: Limits) -> SharePartition {
        SharePartition {
            start_offset,
            end_offset: start_offset,
            in_flight: BTreeMap::new(),
            limits,
        }
    }

    pub(crate) fn start_offset(&self) -> i64 {
        self.start_offset
    }

    #[cfg(test)]
    pub(crate) fn end_offset(&self) -> i64 {
        self.end_offset
    }

    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    #[cfg(test)]
    pub(crate) fn record(&self, offset: i64) -> Option<&InFlight> {
        self.in_flight.get(&offset)
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> impl Iterator<Item = (i64, &InFlight)> {
        self.in_flight.iter().map(|(o, r)| (*o, r))
    }

    /// Where the next read of the log should start (locks past their time released first):
    /// the first available in-flight record, else SPEO. None when nothing may be acquired
    /// (every lock in use and the window full).
    pub(crate) fn next_fetch_offset(&mut self, now_ms: i64) -> Option<i64> {
        self.expire_locks(now_ms);
        let redeliver = self
            .in_flight
            .iter()
            .find(|(_, r)| r.state == RecordState::Available)
            .map(|(o, _)| *o);
        match redeliver {
            Some(o) => Some(o),
            None if self.in_flight.len() < self.limits.max_record_locks => Some(self.end_offset),
            None => None,
        }
    }

    /// A share-partition as its durable state left it (`share::state`): the start offset and,
    /// per persisted run of offsets, the delivery state and count. A record that was acquired
    /// when the state was written is available again, as in Kafka.
    pub(crate) fn from_state(
        start_offset: i64,
        runs: impl IntoIterator<Item = (i64, i64, PersistedState, i16)>,
        limits: Limits,
    ) -> SharePartition {
        let mut sp = SharePartition::new(start_offset, limits);
        for (first, last, state, delivery_count) in runs {
            for offset in first.max(start_offset)..=last {
                if sp.in_flight.len() >= limits.max_record_locks {
                    break;
                }
                let state = match state {
                    PersistedState::Available => released(delivery_count, limits.delivery_count_limit),
                    PersistedState::Acknowledged => RecordState::Acknowledged,
                    PersistedState::Archived => RecordState::Archived,
                };
                sp.in_flight.insert(offset, InFlight { state, delivery_count });
                sp.end_offset = sp.end_offset.max(offset + 1);
            }
        }
        sp.advance_start();
        sp
    }

    /// What the durable state keeps: the start offset and runs of offsets with one state and
    /// delivery count (acquired records persist as available).
    pub(crate) fn to_state(&self) -> (i64, Vec<(i64, i64, PersistedState, i16)>) {
        let mut runs: Vec<(i64, i64, PersistedState, i16)> = Vec::new();
        for (&offset, r) in &self.in_flight {
            let state = match r.state {
                RecordState::Acknowledged => PersistedState::Acknowledged,
                RecordState::Archived => PersistedState::Archived,
                RecordState::Available | RecordState::Acquired { .. } => PersistedState::Available,
            };
            match runs.last_mut() {
                Some(run) if run.1 + 1 == offset && run.2 == state && run.3 == r.delivery_count => run.1 = offset,
                _ => runs.push((offset, offset, state, r.delivery_count)),
            }
        }
        (self.start_offset, runs)
    }

    /// The log's start moved past SPSO (retention, DeleteRecords): what lies below it can never
    /// be delivered, so it leaves the window.
    pub(crate) fn log_start_moved(&mut self, log_start_offset: i64) {
        if log_start_offset > self.start_offset {
            self.in_flight = self.in_flight.split_off(&log_start_offset);
            self.start_offset = log_start_offset;
            self.end_offset = self.end_offset.max(log_start_offset);
        }
    }

    /// Acquires for `member` up to `max_records` of the records at `offsets` (ascending offsets
    /// that exist in the log below its high watermark, read from `next_fetch_offset`): available
    /// in-flight records are redelivered, new ones beyond SPEO join the window. Each acquired
    /// record is locked until `now_ms + lock_duration_ms` and its delivery count goes up by one.
    pub(crate) fn acquire(
        &mut self,
        member: &str,
        offsets: impl IntoIterator<Item = i64>,
        max_records: usize,
        now_ms: i64,
    ) -> Vec<Acquired> {
        self.expire_locks(now_ms);
        let lock_until_ms = now_ms.saturating_add(self.limits.lock_duration_ms);
        let mut out: Vec<Acquired> = Vec::new();
        let mut count = 0usize;
        for offset in offsets {
            if count >= max_records {
                break;
            }
            if offset < self.start_offset {
                continue;
            }
            let delivery_count = if offset < self.end_offset {
                match self.in_flight.get_mut(&offset) {
                    Some(r) if r.state == RecordState::Available => {
                        r.delivery_count += 1;
                        r.state = RecordState::Acquired {
                            member: member.to_string(),
                            lock_until_ms,
                        };
                        r.delivery_count
                    }
                    _ => continue,
                }
            } else {
                if self.in_flight.len() >= self.limits.max_record_locks {
                    break;
                }
                // Offsets between SPEO and this one do not exist (compacted, control batches).
                self.in_flight.insert(
                    offset,
                    InFlight {
                        state: RecordState::Acquired {
                            member: member.to_string(),
                            lock_until_ms,
                        },
                        delivery_count: 1,
                    },
                );
                self.end_offset = offset + 1;
                1
            };
            count += 1;
            match out.last_mut() {
                Some(a) if a.last_offset + 1 == offset && a.delivery_count == delivery_count => a.last_offset = offset,
                _ => out.push(Acquired {
                    first_offset: offset,
                    last_offset: offset,
                    delivery_count,
                }),
            }
        }
        self.advance_start();
        out
    }

    /// Offsets from SPEO up to `end` hold nothing deliverable (a control batch, a gap):
    /// SPEO moves over them, so the window's end keeps up with the log.
    pub(crate) fn skip_to(&mut self, end: i64) {
        if end > self.end_offset && self.in_flight.len() < self.limits.max_record_locks {
            self.end_offset = end;
            self.advance_start();
        }
    }

    /// Applies one acknowledgement batch of `member`: `types` has one type for the whole
    /// batch, or one per offset. Checked whole before anything changes, as Kafka does.
    pub(crate) fn acknowledge(
        &mut self,
        member: &str,
        first_offset: i64,
        last_offset: i64,
        types: &[AckType],
        now_ms: i64,
    ) -> Result<(), AckError> {
        self.expire_locks(now_ms);
        let span = last_offset.checked_sub(first_offset).map(|d| d + 1);
        let malformed = AckError::Malformed {
            first: first_offset,
            last: last_offset,
        };
        let Some(span) = span.filter(|s| *s > 0) else {
            return Err(malformed);
        };
        if types.is_empty() || (types.len() != 1 && types.len() as i64 != span) {
            return Err(malformed);
        }
        let type_at = |offset: i64| {
            types[if types.len() == 1 {
                0
            } else {
                (offset - first_offset) as usize
            }]
        };
        // Outside the window nothing is acquired; inside it, an offset that is not a record
        // is a gap in the log. Only the records in range are visited: a client's range may be
        // wide, the window's records are bounded.
        if first_offset < self.start_offset {
            return Err(AckError::NotAcquired(first_offset));
        }
        if last_offset >= self.end_offset {
            return Err(AckError::NotAcquired(last_offset.max(self.end_offset)));
        }
        for (offset, r) in self.in_flight.range(first_offset..=last_offset) {
            match &r.state {
                RecordState::Acquired { member: m, .. } if m == member => {}
                _ => return Err(AckError::NotAcquired(*offset)),
            }
        }
        let limit = self.limits.delivery_count_limit;
        for (offset, r) in self.in_flight.range_mut(first_offset..=last_offset) {
            r.state = match type_at(*offset) {
                AckType::Accept => RecordState::Acknowledged,
                AckType::Reject | AckType::Gap => RecordState::Archived,
                AckType::Release => released(r.delivery_count, limit),
            };
        }
        self.advance_start();
        Ok(())
    }

    /// Every record `member` holds goes back (its session closed, it left or was fenced).
    pub(crate) fn release_member(&mut self, member: &str) -> usize {
        let limit = self.limits.delivery_count_limit;
        let mut n = 0;
        for r in self.in_flight.values_mut() {
            if matches!(&r.state, RecordState::Acquired { member: m, .. } if m == member) {
                r.state = released(r.delivery_count, limit);
                n += 1;
            }
        }
        self.advance_start();
        n
    }

    /// Locks past their time are released: the record is available again, or archived if it
    /// has been delivered `delivery_count_limit` times. Returns how many expired.
    pub(crate) fn expire_locks(&mut self, now_ms: i64) -> usize {
        let limit = self.limits.delivery_count_limit;
        let mut n = 0;
        for r in self.in_flight.values_mut() {
            if matches!(r.state, RecordState::Acquired { lock_until_ms, .. } if lock_until_ms <= now_ms) {
                r.state = released(r.delivery_count, limit);
                n += 1;
            }
        }
        if n > 0 {
            self.advance_start();
        }
        n
    }

    /// The earliest lock deadline, for the shell to wake up at.
    pub(crate) fn next_lock_deadline(&self) -> Option<i64> {
        self.in_flight
            .values()
            .filter_map(|r| match r.state {
                RecordState::Acquired { lock_until_ms, .. } => Some(lock_until_ms),
                _ => None,
            })
            .min()
    }

    /// Moves SPSO over every finished record at the front of the window.
    fn advance_start(&mut self) {
        while let Some((&offset, r)) = self.in_flight.first_key_value() {
            if !r.state.is_terminal() {
                self.start_offset = offset;
                return;
            }
            self.in_flight.pop_first();
        }
        self.start_offset = self.end_offset;
    }
}

/// A record given back: available for another delivery, or archived when it had its last.
fn released(delivery_count: i16, limit: i16) -> RecordState {
    if delivery_count >= limit {
        RecordState::Archived
    } else {
        RecordState::Available
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        lock_duration_ms: 1000,
        delivery_count_limit: 3,
        max_record_locks: 10,
    };

    fn acquired(first: i64, last: i64, count: i16) -> Acquired {
        Acquired {
            first_offset: first,
            last_offset: last,
            delivery_count: count,
        }
    }

    #[test]
    fn acquire_hands_out_new_records_and_moves_the_end() {
        let mut sp = SharePartition::new(0, LIMITS);
        assert_eq!(sp.acquire("a", 0..5, 100, 0), vec![acquired(0, 4, 1)]);
        assert_eq!((sp.start_offset(), sp.end_offset()), (0, 5));
        assert_eq!(sp.acquire("b", 0..5, 100, 0), vec![], "all five are locked by a");
        assert_eq!(sp.acquire("b", 5..8, 2, 0), vec![acquired(5, 6, 1)], "max records");
    }

    #[test]
    fn accepted_records_advance_the_start_and_are_never_acquired_again() {
        let mut sp = SharePartition::new(0, LIMITS);
        sp.acquire("a", 0..4, 100, 0);
        sp.acknowledge("a", 0, 3, &[AckType::Accept], 10).unwrap();
        assert_eq!((sp.start_offset(), sp.end_offset()), (4, 4));
        assert_eq!(sp.acquire("b", 0..4, 100, 5000), vec![]);
    }

    #[test]
    fn released_record_is_redelivered_with_a_higher_delivery_count() {
        let mut sp = SharePartition::new(0, LIMITS);
        sp.acquire("a", 0..3, 100, 0);
        sp.acknowledge("a", 0, 2, &[AckType::Accept, AckType::Release, AckType::Accept], 1)
            .unwrap();
        assert_eq!((sp.start_offset(), sp.end_offset()), (1, 3));
        assert_eq!(sp.next_fetch_offset(0), Some(1));
        assert_eq!(sp.acquire("b", 1..3, 100, 2), vec![acquired(1, 1, 2)]);
    }

    #[test]
    fn rejected_record_is_archived() {
        let mut sp = SharePartition::new(0, LIMITS);
        sp.acquire("a", 0..2, 100, 0);
        sp.acknowledge("a", 0, 0, &[AckType::Reject], 1).unwrap();
        assert_eq!(sp.start_offset(), 1);
        assert_eq!(sp.acquire("a", 0..2, 100, 2), vec![]);
    }

    #[test]
    fn expired_lock_makes_records_available_to_another_member() {
        let mut sp = SharePartition::new(0, LIMITS);
        sp.acquire("a", 0..2, 100, 0);
        assert_eq!(sp.acquire("b", 0..2, 100, 999), vec![]);
        assert_eq!(sp.acquire("b", 0..2, 100, 1000), vec![acquired(0, 1, 2)]);
        assert_eq!(
            sp.acknowledge("a", 0, 1, &[AckType::Accept], 1001),
            Err(AckError::NotAcquired(0)),
            "a's lock is gone"
        );
    }

    #[test]
    fn delivery_count_limit_archives_the_record() {
        let mut sp = SharePartition::new(0, LIMITS);
        for n in 1..=3 {
            assert_eq!(sp.acquire("a", 0..1, 100, 0), vec![acquired(0, 0, n)]);
            sp.acknowledge("a", 0, 0, &[AckType::Release], 0).unwrap();
        }
        assert_eq!(sp.record(0), None, "archived and left the window");
        assert_eq!(sp.start_offset(), 1);
        assert_eq!(sp.acquire("a", 0..1, 100, 0), vec![]);
    }

    #[test]
    fn acknowledging_anothers_record_is_refused_whole() {
        let mut sp = SharePartition::new(0, LIMITS);
        sp.acquire("a", 0..2, 100, 0);
        sp.acquire("b", 2..4, 100, 0);
        assert_eq!(
            sp.acknowledge("a", 0, 2, &[AckType::Accept], 1),
            Err(AckError::NotAcquired(2))
        );
        assert_eq!(sp.start_offset(), 0, "nothing applied");
        assert!(sp
            .acknowledge("a", 0, 2, &[AckType::Accept, AckType::Accept], 1)
            .is_err());
        assert!(sp.acknowledge("a", 3, 2, &[AckType::Accept], 1).is_err());
    }

    #[test]
    fn the_window_never_exceeds_max_record_locks() {
        let mut sp = SharePartition::new(0, LIMITS);
        assert_eq!(sp.acquire("a", 0..100, 100, 0), vec![acquired(0, 9, 1)]);
        assert_eq!(sp.next_fetch_offset(0), None);
        sp.acknowledge("a", 0, 1, &[AckType::Accept], 1).unwrap();
        assert_eq!(sp.next_fetch_offset(0), Some(10));
        assert_eq!(sp.acquire("b", 10..100, 100, 1), vec![acquired(10, 11, 1)]);
    }

    #[test]
    fn released_member_gives_back_its_records() {
        let mut sp = SharePartition::new(0, LIMITS);
        sp.acquire("a", 0..2, 100, 0);
        sp.acquire("b", 2..4, 100, 0);
        assert_eq!(sp.release_member("a"), 2);
        assert_eq!(sp.acquire("c", 0..4, 100, 1), vec![acquired(0, 1, 2)]);
    }

    #[test]
    fn state_round_trip_keeps_acknowledgements_and_gives_back_acquired_records() {
        let mut sp = SharePartition::new(0, LIMITS);
        sp.acquire("a", 0..6, 100, 0);
        sp.acknowledge("a", 0, 0, &[AckType::Accept], 1).unwrap();
        sp.acknowledge("a", 2, 2, &[AckType::Accept], 1).unwrap();
        sp.acknowledge("a", 3, 3, &[AckType::Reject], 1).unwrap();
        let (start, runs) = sp.to_state();
        assert_eq!(start, 1);
        let mut back = SharePartition::from_state(start, runs, LIMITS);
        assert_eq!((back.start_offset(), back.end_offset()), (1, 6));
        assert_eq!(back.record(2).map(|r| &r.state), Some(&RecordState::Acknowledged));
        assert_eq!(
            back.acquire("b", 0..8, 100, 2),
            vec![acquired(1, 1, 2), acquired(4, 5, 2), acquired(6, 7, 1)],
            "accepted and rejected records stay done; the acquired ones come back"
        );
    }

    #[test]
    fn gaps_and_log_start_move_the_window() {
        let mut sp = SharePartition::new(0, LIMITS);
        assert_eq!(
            sp.acquire("a", [0, 5], 100, 0),
            vec![acquired(0, 0, 1), acquired(5, 5, 1)]
        );
        sp.acknowledge("a", 0, 5, &[AckType::Accept], 1).unwrap();
        assert_eq!(sp.start_offset(), 6);
        sp.skip_to(9);
        assert_eq!((sp.start_offset(), sp.end_offset()), (9, 9));
        sp.log_start_moved(20);
        assert_eq!((sp.start_offset(), sp.end_offset()), (20, 20));
    }
}
