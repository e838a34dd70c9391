//! Tests of the transaction coordinator core, one file per concern, driven through `Sim`: a
//! tiny shell that does what the real one must (appends records in order and reports them
//! back, runs timers, writes markers when told to) and checks the core's promises on the way —
//! every request is answered exactly once, no timer is scheduled in the past.

mod end;
mod expiry;
mod init;
mod load;
mod partitions;
mod simulation;
mod v2;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kafka_protocol::ResponseError;

use super::api::{
    Action, AddPartitionsRequest, Effect, EndTxnRequest, Event, InitRequest, MarkerJob, RequestId, Response, TimerKey,
    TopicPartition,
};
use super::coordinator::{handle, TxnConfig, TxnCoordinatorState};
use super::records::{decode, TxnState};
use super::replay;
use crate::coordinator::runtime::{RawRecord, Write};

pub(super) const TXN: &str = "tx";
pub(super) const TIMEOUT_MS: i32 = 60_000;

pub(super) fn tp(topic: &str, partition: i32) -> TopicPartition {
    (topic.to_owned(), partition)
}

#[derive(Debug)]
pub(super) struct Sim {
    pub(super) state: TxnCoordinatorState,
    pub(super) now: i64,
    next_req: RequestId,
    issued: BTreeSet<RequestId>,
    pub(super) responses: BTreeMap<RequestId, Response>,
    pub(super) timers: BTreeMap<TimerKey, i64>,
    /// Appends asked for and not yet reported.
    pub(super) in_flight: VecDeque<(u64, Vec<RawRecord>)>,
    /// Everything appended, in order: the partition's log.
    pub(super) log: Vec<RawRecord>,
    /// Marker jobs asked for and not yet written.
    pub(super) markers: Vec<MarkerJob>,
    /// Report appends as done right after each event (else tests call `persist_next`).
    pub(super) auto_persist: bool,
    next_producer_id: i64,
    /// The transaction version the simulated producers speak: 2 makes their adds the
    /// leaders' v5 form and their EndTxn v5 (epoch bumps).
    pub(super) client_tv: i16,
}

impl Sim {
    pub(super) fn new() -> Self {
        Self::with_config(TxnConfig::default())
    }

    pub(super) fn with_config(config: TxnConfig) -> Self {
        let (state, actions) = replay::load(config, 1_000_000, Vec::new()).expect("empty load");
        let mut sim = Self::from_state(state, 1_000_000);
        sim.apply(actions);
        sim
    }

    fn from_state(state: TxnCoordinatorState, now: i64) -> Self {
        Self {
            state,
            now,
            next_req: 1,
            issued: BTreeSet::new(),
            responses: BTreeMap::new(),
            timers: BTreeMap::new(),
            in_flight: VecDeque::new(),
            log: Vec::new(),
            markers: Vec::new(),
            auto_persist: true,
            next_producer_id: 1000,
            client_tv: 0,
        }
    }

    /// A coordinator that takes over from this one: loads this one's log, nothing else.
    pub(super) fn reload(&self) -> Sim {
        let config = self.state.out.config.clone();
        let (state, actions) = replay::load(config, self.now, self.log.clone()).expect("log loads");
        let mut sim = Self::from_state(state, self.now);
        sim.log = self.log.clone();
        sim.next_producer_id = self.next_producer_id;
        sim.client_tv = self.client_tv;
        sim.apply(actions);
        sim.settle();
        sim
    }

    /// The coordinator crashes and a new one loads its log: appends in flight are written
    /// (unacknowledged) when `keep_in_flight`, else lost; requests waiting on them are
    /// answered NOT_COORDINATOR (as the runtime's unload does); markers asked for are dropped.
    pub(super) fn crash(&mut self, keep_in_flight: bool) -> Sim {
        if keep_in_flight {
            for (_, records) in self.in_flight.drain(..) {
                self.log.extend(records);
            }
        }
        self.in_flight.clear();
        let config = self.state.out.config.clone();
        let old = std::mem::replace(&mut self.state, TxnCoordinatorState::new(config.clone()));
        let answers = replay::unload(old)
            .into_iter()
            .filter(|a| matches!(a, Action::Respond { .. }))
            .collect();
        self.apply(answers);
        let (state, actions) = replay::load(config, self.now, self.log.clone()).expect("log loads");
        let mut sim = Self::from_state(state, self.now);
        sim.log = std::mem::take(&mut self.log);
        sim.next_producer_id = self.next_producer_id;
        sim.next_req = self.next_req;
        sim.issued = std::mem::take(&mut self.issued);
        sim.responses = std::mem::take(&mut self.responses);
        sim.auto_persist = self.auto_persist;
        sim.client_tv = self.client_tv;
        sim.apply(actions);
        sim.settle();
        sim
    }

    pub(super) fn next_req(&mut self) -> RequestId {
        let req = self.next_req;
        self.next_req += 1;
        self.issued.insert(req);
        req
    }

    pub(super) fn event(&mut self, event: Event) {
        let actions = handle(&mut self.state, self.now, event);
        self.apply(actions);
        self.settle();
    }

    fn settle(&mut self) {
        while self.auto_persist && !self.in_flight.is_empty() {
            self.persist_next(Ok(()));
        }
    }

    pub(super) fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Respond { req, response } => {
                    assert!(self.issued.contains(&req), "response to a request never sent: {req}");
                    let previous = self.responses.insert(req, response);
                    assert!(previous.is_none(), "request {req} answered twice");
                }
                Action::Persist {
                    token,
                    write: Write::Records(records) | Write::Transactional { records, .. },
                } => self.in_flight.push_back((token, records)),
                Action::ScheduleTimer { key, at_ms } => {
                    assert!(at_ms >= self.now, "timer {key:?} scheduled in the past");
                    self.timers.insert(key, at_ms);
                }
                Action::CancelTimer { key } => {
                    self.timers.remove(&key);
                }
                Action::Effect(Effect::SendMarkers(job)) => self.markers.push(job),
            }
        }
    }

    /// Completes the oldest append with `result` (appending its records on success).
    pub(super) fn persist_next(&mut self, result: Result<(), ResponseError>) {
        let (token, records) = self.in_flight.pop_front().expect("no append in flight");
        if result.is_ok() {
            self.log.extend(records);
        }
        let actions = handle(&mut self.state, self.now, Event::Persisted { token, result });
        self.apply(actions);
    }

    /// Writes every marker asked for and reports them.
    pub(super) fn write_markers(&mut self) -> Vec<MarkerJob> {
        let jobs = std::mem::take(&mut self.markers);
        for job in &jobs {
            self.event(Event::MarkersWritten {
                transactional_id: job.transactional_id.clone(),
                producer_id: job.producer_id,
                producer_epoch: job.producer_epoch,
                partitions: job.partitions.clone(),
            });
        }
        jobs
    }

    /// Moves the clock and fires every timer due by then, in deadline order.
    pub(super) fn advance(&mut self, ms: i64) {
        let until = self.now + ms;
        loop {
            let due = self
                .timers
                .iter()
                .filter(|(_, at)| **at <= until)
                .min_by_key(|(_, at)| **at)
                .map(|(k, at)| (k.clone(), *at));
            let Some((key, at)) = due else { break };
            self.timers.remove(&key);
            self.now = self.now.max(at);
            self.event(Event::TimerFired { key });
        }
        self.now = until;
    }

    pub(super) fn take_response(&mut self, req: RequestId) -> Response {
        self.responses
            .remove(&req)
            .unwrap_or_else(|| panic!("request {req} not answered"))
    }

    pub(super) fn send_init(&mut self, id: &str, timeout_ms: i32, expected: Option<(i64, i16)>) -> RequestId {
        let req = self.next_req();
        self.next_producer_id += 1;
        let fresh_producer_id = self.next_producer_id;
        self.event(Event::InitProducerId(InitRequest {
            req,
            transactional_id: id.to_owned(),
            timeout_ms,
            expected,
            fresh_producer_id,
        }));
        req
    }

    /// InitProducerId: (error, producer id, epoch).
    pub(super) fn init(&mut self, id: &str) -> (Option<ResponseError>, i64, i16) {
        let req = self.send_init(id, TIMEOUT_MS, None);
        match self.take_response(req) {
            Response::InitProducerId {
                error,
                producer_id,
                producer_epoch,
            } => (error, producer_id, producer_epoch),
            other => panic!("not an InitProducerId answer: {other:?}"),
        }
    }

    /// InitProducerId that must succeed: (producer id, epoch).
    pub(super) fn init_ok(&mut self, id: &str) -> (i64, i16) {
        let (error, pid, epoch) = self.init(id);
        assert_eq!(error, None);
        (pid, epoch)
    }

    pub(super) fn send_add(&mut self, id: &str, pid: i64, epoch: i16, partitions: &[TopicPartition]) -> RequestId {
        let req = self.next_req();
        self.event(Event::AddPartitions(AddPartitionsRequest {
            req,
            transactional_id: id.to_owned(),
            producer_id: pid,
            producer_epoch: epoch,
            partitions: partitions.to_vec(),
            client_transaction_version: self.client_tv,
        }));
        req
    }

    pub(super) fn add(
        &mut self,
        id: &str,
        pid: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Option<ResponseError> {
        let req = self.send_add(id, pid, epoch, partitions);
        match self.take_response(req) {
            Response::AddPartitions { error } => error,
            other => panic!("not an AddPartitions answer: {other:?}"),
        }
    }

    pub(super) fn send_end(&mut self, id: &str, pid: i64, epoch: i16, commit: bool) -> RequestId {
        let req = self.next_req();
        // As the shell: a producer id is reserved only when the state read says the epochs
        // are used up.
        let exhausted = self
            .state
            .txns
            .get(id)
            .is_some_and(|m| crate::txn::state::epoch_exhausted(m.data.producer_epoch));
        let fresh_producer_id = (self.client_tv >= 2 && exhausted).then(|| {
            self.next_producer_id += 1;
            self.next_producer_id
        });
        self.event(Event::EndTxn(EndTxnRequest {
            req,
            transactional_id: id.to_owned(),
            producer_id: pid,
            producer_epoch: epoch,
            commit,
            client_transaction_version: self.client_tv,
            fresh_producer_id,
        }));
        req
    }

    pub(super) fn end(&mut self, id: &str, pid: i64, epoch: i16, commit: bool) -> Option<ResponseError> {
        self.end_v2(id, pid, epoch, commit).0
    }

    /// EndTxn: (error, producer id, epoch the producer continues with).
    pub(super) fn end_v2(&mut self, id: &str, pid: i64, epoch: i16, commit: bool) -> (Option<ResponseError>, i64, i16) {
        let req = self.send_end(id, pid, epoch, commit);
        match self.take_response(req) {
            Response::EndTxn {
                error,
                producer_id,
                producer_epoch,
            } => (error, producer_id, producer_epoch),
            other => panic!("not an EndTxn answer: {other:?}"),
        }
    }

    pub(super) fn state_of(&self, id: &str) -> Option<TxnState> {
        self.state.txns.get(id).map(|m| m.data.state)
    }

    /// The last value of `id` in the log (None for a tombstone or nothing written).
    pub(super) fn logged_state(&self, id: &str) -> Option<TxnState> {
        self.log
            .iter()
            .filter_map(|(k, v)| decode(k, v.as_deref()).ok())
            .filter(|(key, _)| key == id)
            .last()
            .and_then(|(_, v)| v.map(|v| v.state))
    }
}
