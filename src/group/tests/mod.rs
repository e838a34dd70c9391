//! Tests of the coordinator core, one file per handler, driven through `Sim`: a tiny shell that
//! does what the real one must (runs timers, appends records in order and reports them back,
//! delivers responses) and checks the core's promises on the way — every request is answered
//! exactly once, no timer is scheduled in the past.

mod delete;
mod expiry;
mod heartbeat;
mod join;
mod leave;
mod load;
mod offsets;
mod query;
mod simulation;
mod static_member;
mod sync;
mod transactions;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;

use super::api::{
    Action, CommitPartition, CommitRequest, CommitTopic, Event, HeartbeatRequest, JoinRequest, JoinResponse,
    LeaveRequest, LeaveResponse, LeavingMember, OffsetCommitResponse, Protocol, RawRecord, RequestId, Response,
    SyncRequest, SyncResponse, TimerKey,
};
use super::config::GroupConfig;
use super::coordinator::{handle, GroupCoordinatorState};
use super::records::Record;
use super::state::{Group, GroupState};
use crate::coordinator::runtime::Write;

pub(super) const GROUP: &str = "g";
pub(super) const SESSION_MS: i32 = 10_000;
pub(super) const REBALANCE_MS: i32 = 30_000;

#[derive(Debug)]
pub(super) struct Sim {
    pub(super) state: GroupCoordinatorState,
    pub(super) now: i64,
    next_req: RequestId,
    pub(super) issued: BTreeSet<RequestId>,
    pub(super) responses: BTreeMap<RequestId, Response>,
    pub(super) timers: BTreeMap<TimerKey, i64>,
    /// Appends asked for and not yet reported.
    pub(super) in_flight: VecDeque<(u64, Vec<RawRecord>)>,
    /// Everything appended, in order: the partition's log.
    pub(super) log: Vec<RawRecord>,
    /// Report appends as done right after each event (else tests call `persist_next`).
    pub(super) auto_persist: bool,
}

impl Sim {
    pub(super) fn new() -> Self {
        Self::with_config(GroupConfig::default())
    }

    pub(super) fn with_config(config: GroupConfig) -> Self {
        Self::from_state(GroupCoordinatorState::new(config, 42), 1_000_000)
    }

    pub(super) fn from_state(state: GroupCoordinatorState, now: i64) -> Self {
        Self {
            state,
            now,
            next_req: 1,
            issued: BTreeSet::new(),
            responses: BTreeMap::new(),
            timers: BTreeMap::new(),
            in_flight: VecDeque::new(),
            log: Vec::new(),
            auto_persist: true,
        }
    }

    pub(super) fn next_req(&mut self) -> RequestId {
        let req = self.next_req;
        self.next_req += 1;
        self.issued.insert(req);
        req
    }

    pub(super) fn send(&mut self, event: Event) {
        let actions = handle(&mut self.state, self.now, event);
        self.apply(actions);
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
                Action::Effect(never) => match never {},
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

    /// Moves time forward by `ms`, firing due timers in deadline order.
    pub(super) fn advance(&mut self, ms: i64) {
        let target = self.now + ms;
        loop {
            let due = self
                .timers
                .iter()
                .filter(|(_, at)| **at <= target)
                .min_by_key(|(_, at)| **at);
            let Some((key, at)) = due.map(|(k, at)| (k.clone(), *at)) else {
                break;
            };
            self.timers.remove(&key);
            self.now = self.now.max(at);
            self.send(Event::TimerFired { key });
        }
        self.now = target;
    }

    pub(super) fn group(&self, group_id: &str) -> &Group {
        self.state.group(group_id).expect("group exists")
    }

    pub(super) fn state_of(&self, group_id: &str) -> GroupState {
        self.state.group(group_id).map_or(GroupState::Dead, |g| g.state)
    }

    pub(super) fn answered(&self, req: RequestId) -> bool {
        self.responses.contains_key(&req)
    }

    pub(super) fn join_response(&self, req: RequestId) -> JoinResponse {
        match self.responses.get(&req) {
            Some(Response::Join(r)) => r.clone(),
            other => panic!("request {req}: expected a JoinGroup response, got {other:?}"),
        }
    }

    pub(super) fn sync_response(&self, req: RequestId) -> SyncResponse {
        match self.responses.get(&req) {
            Some(Response::Sync(r)) => r.clone(),
            other => panic!("request {req}: expected a SyncGroup response, got {other:?}"),
        }
    }

    pub(super) fn commit_response(&self, req: RequestId) -> OffsetCommitResponse {
        match self.responses.get(&req) {
            Some(Response::OffsetCommit(r)) => r.clone(),
            other => panic!("request {req}: expected an OffsetCommit response, got {other:?}"),
        }
    }

    /// A JoinGroup (v5) for `member_id` ("" for a new member) with default settings.
    pub(super) fn join_request(&mut self, group: &str, member_id: &str) -> JoinRequest {
        JoinRequest {
            req: self.next_req(),
            api_version: 5,
            group_id: group.into(),
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![protocol("range", &["t1"])],
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            reason: None,
        }
    }

    pub(super) fn send_join(&mut self, r: JoinRequest) -> RequestId {
        let req = r.req;
        self.send(Event::Join(r));
        req
    }

    pub(super) fn join(&mut self, group: &str, member_id: &str) -> RequestId {
        let r = self.join_request(group, member_id);
        self.send_join(r)
    }

    /// KIP-394 round trip: a JoinGroup without id gets MEMBER_ID_REQUIRED and an id.
    pub(super) fn new_member_id(&mut self, group: &str) -> String {
        let req = self.join(group, "");
        let response = self.join_response(req);
        assert_eq!(response.error, Some(ResponseError::MemberIdRequired));
        assert!(!response.member_id.is_empty());
        response.member_id
    }

    pub(super) fn sync(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: &[(&str, &str)],
    ) -> RequestId {
        let req = self.next_req();
        self.send(Event::Sync(SyncRequest {
            req,
            group_id: group.into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignments: assignments
                .iter()
                .map(|(m, a)| ((*m).to_owned(), Bytes::copy_from_slice(a.as_bytes())))
                .collect(),
        }));
        req
    }

    pub(super) fn heartbeat_as(
        &mut self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        let req = self.next_req();
        self.send(Event::Heartbeat(HeartbeatRequest {
            req,
            group_id: group.into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: instance_id.map(Into::into),
        }));
        match self.responses.get(&req) {
            Some(Response::Heartbeat(r)) => r.error,
            other => panic!("expected a Heartbeat response, got {other:?}"),
        }
    }

    pub(super) fn heartbeat(&mut self, group: &str, member_id: &str, generation: i32) -> Option<ResponseError> {
        self.heartbeat_as(group, member_id, None, generation)
    }

    pub(super) fn leave(&mut self, group: &str, members: &[(&str, Option<&str>)]) -> LeaveResponse {
        let req = self.next_req();
        self.send(Event::Leave(LeaveRequest {
            req,
            group_id: group.into(),
            members: members
                .iter()
                .map(|(m, i)| LeavingMember {
                    member_id: (*m).into(),
                    group_instance_id: i.map(Into::into),
                    reason: None,
                })
                .collect(),
        }));
        match self.responses.get(&req) {
            Some(Response::Leave(r)) => r.clone(),
            other => panic!("expected a LeaveGroup response, got {other:?}"),
        }
    }

    pub(super) fn commit_request(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(&str, i32, i64)],
    ) -> CommitRequest {
        let mut topics: Vec<CommitTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let p = CommitPartition {
                partition: *partition,
                offset: *offset,
                leader_epoch: 3,
                metadata: Some("m".into()),
                commit_timestamp_ms: -1,
            };
            match topics.iter_mut().find(|t| t.name == *topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(CommitTopic {
                    name: (*topic).into(),
                    partitions: vec![p],
                }),
            }
        }
        CommitRequest {
            req: self.next_req(),
            api_version: 8,
            group_id: group.into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics,
            transaction: None,
        }
    }

    pub(super) fn commit(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(&str, i32, i64)],
    ) -> RequestId {
        let r = self.commit_request(group, member_id, generation, offsets);
        let req = r.req;
        self.send(Event::CommitOffsets(r));
        req
    }

    /// The error of every partition of a commit response (all must agree).
    pub(super) fn commit_error(&self, req: RequestId) -> Option<ResponseError> {
        let response = self.commit_response(req);
        let mut errors = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|(_, e)| *e));
        let first = errors.next().expect("a partition");
        assert!(errors.all(|e| e == first), "partitions disagree: {response:?}");
        first
    }

    /// A Stable group of `n` dynamic members, built the way a client does it (KIP-394, the
    /// initial delay, leader assignment). Returns (leader, members in join order, generation).
    pub(super) fn stable_group(&mut self, group: &str, n: usize) -> (String, Vec<String>, i32) {
        let ids: Vec<String> = (0..n).map(|_| self.new_member_id(group)).collect();
        let reqs: Vec<RequestId> = ids.iter().map(|id| self.join(group, id)).collect();
        self.run_until_answered(&reqs);
        let responses: Vec<JoinResponse> = reqs.iter().map(|r| self.join_response(*r)).collect();
        let generation = responses[0].generation_id;
        let leader = responses[0].leader.clone();
        assert!(responses
            .iter()
            .all(|r| r.error.is_none() && r.generation_id == generation));
        self.complete_sync(group, &leader, &ids, generation);
        assert_eq!(self.state_of(group), GroupState::Stable);
        (leader, ids, generation)
    }

    /// Every member syncs (the leader last, with assignment "a-<member>").
    pub(super) fn complete_sync(&mut self, group: &str, leader: &str, ids: &[String], generation: i32) {
        let mut reqs = Vec::new();
        for id in ids.iter().filter(|id| *id != leader) {
            reqs.push(self.sync(group, id, generation, &[]));
        }
        let assignments: Vec<(String, String)> = ids.iter().map(|id| (id.clone(), format!("a-{id}"))).collect();
        let assignments: Vec<(&str, &str)> = assignments.iter().map(|(m, a)| (m.as_str(), a.as_str())).collect();
        reqs.push(self.sync(group, leader, generation, &assignments));
        for req in reqs {
            let r = self.sync_response(req);
            assert_eq!(r.error, None);
        }
    }

    /// Advances time in small steps until all `reqs` are answered (at most 10 minutes).
    pub(super) fn run_until_answered(&mut self, reqs: &[RequestId]) {
        for _ in 0..600 {
            if reqs.iter().all(|r| self.answered(*r)) {
                return;
            }
            self.advance(1_000);
        }
        panic!("requests {reqs:?} never answered");
    }

    /// The records appended so far, decoded.
    pub(super) fn log_records(&self) -> Vec<Record> {
        self.log
            .iter()
            .map(|(k, v)| Record::decode(k, v.as_deref()).expect("decodable record"))
            .collect()
    }
}

/// Consumer protocol subscription metadata (version 0: topics, null user data).
pub(super) fn subscription(topics: &[&str]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(topics.len() as i32);
    for t in topics {
        b.put_i16(t.len() as i16);
        b.put_slice(t.as_bytes());
    }
    b.put_i32(-1);
    b.freeze()
}

pub(super) fn protocol(name: &str, topics: &[&str]) -> Protocol {
    Protocol {
        name: name.into(),
        metadata: subscription(topics),
    }
}
