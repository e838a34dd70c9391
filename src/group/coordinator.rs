//! The coordinator state of one `__consumer_offsets` partition and the single entry point,
//! [`handle`], that applies an event and returns the actions for the shell.
//!
//! `Outbox` is the part of the state the handlers share besides the groups: the actions being
//! produced, the timers the shell runs for us (with their deadlines, so that stale fires are
//! ignored), the appends in flight and what to do when they finish, and the member id source.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use crate::coordinator::runtime::Write;

use super::api::{Action, Event, OffsetCommitResponse, Protocol, RequestId, Response, TimerKey};
use super::config::GroupConfig;
use super::records::Record;
use super::state::{CommittedOffset, Group, Member};
use super::{consumer, membership, offsets};

/// All groups of one `__consumer_offsets` partition (one coordinator "shard", as in Kafka):
/// the shell keeps one per partition it leads, built by [`super::load`] and dropped after
/// [`super::unload`].
#[derive(Debug)]
pub(crate) struct GroupCoordinatorState {
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) out: Outbox,
}

/// What a handler needs besides the groups.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) config: GroupConfig,
    /// The time of the event being handled.
    pub(crate) now_ms: i64,
    actions: Vec<Action>,
    /// Live timers: key → (deadline, what it means).
    pub(crate) timers: BTreeMap<TimerKey, (i64, TimerPayload)>,
    /// Appends in flight whose completion someone waits for.
    pub(crate) pending_writes: BTreeMap<u64, PendingWrite>,
    next_token: u64,
    ids: IdSource,
}

/// What a timer means when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerPayload {
    Heartbeat,
    /// The initial (delayed) join of an empty group: Kafka's `InitialDelayedJoin`.
    InitialJoin {
        delay_ms: i32,
        remaining_ms: i32,
    },
    /// The rebalance timeout of a join phase: Kafka's `DelayedJoin`.
    Join,
    /// The sync deadline of `generation`: Kafka's `DelayedSync`.
    Sync {
        generation: i32,
    },
    OffsetExpiration,
}

/// An append whose completion must be acted upon.
#[derive(Debug, Clone)]
pub(crate) enum PendingWrite {
    /// The leader's assignment of `generation`: on success the group becomes Stable and every
    /// parked SyncGroup is answered.
    SyncAssignment {
        group_id: String,
        generation: i32,
        assignment: BTreeMap<String, Bytes>,
    },
    /// A static member rejoined a Stable group under a new member id without a rebalance: on
    /// success its JoinGroup is answered, on failure the replacement is undone.
    StaticReplace(StaticReplace),
    /// Offsets to materialise once in the log, then the OffsetCommit response.
    OffsetCommit(PendingCommit),
    /// A response (DeleteGroups, OffsetDelete) sent once its tombstones are in the log.
    Reply { req: RequestId, response: Response },
}

#[derive(Debug, Clone)]
pub(crate) struct PendingCommit {
    pub(crate) group_id: String,
    pub(crate) req: RequestId,
    /// The response to send: per-partition errors already set for partitions not written.
    pub(crate) response: OffsetCommitResponse,
    /// (topic, partition, offset) in request order.
    pub(crate) written: Vec<(String, i32, CommittedOffset)>,
    /// TxnOffsetCommit: the producer whose transaction holds the offsets until its marker.
    pub(crate) producer_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct StaticReplace {
    pub(crate) group_id: String,
    pub(crate) req: RequestId,
    pub(crate) instance_id: String,
    pub(crate) old_member_id: String,
    pub(crate) new_member_id: String,
    pub(crate) old_protocols: Vec<Protocol>,
    pub(crate) old_rebalance_timeout_ms: i32,
    pub(crate) old_session_timeout_ms: i32,
    pub(crate) leader_before: String,
    pub(crate) supports_skip_assignment: bool,
}

impl GroupCoordinatorState {
    /// An empty coordinator without its timers; the shell should use [`super::replay::load`]
    /// (with no records for a new partition), which also starts the offset expiry sweep.
    /// `member_id_seed` must differ at every load (e.g. random), so that new member ids never
    /// repeat ids already in the log.
    pub(crate) fn new(config: GroupConfig, member_id_seed: u64) -> Self {
        Self {
            groups: BTreeMap::new(),
            out: Outbox::new(config, member_id_seed),
        }
    }

    #[cfg(test)]
    pub(crate) fn config(&self) -> &GroupConfig {
        &self.out.config
    }

    /// One group, for inspection.
    #[cfg(test)]
    pub(crate) fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }
}

/// Applies one event at time `now_ms` and returns what the shell must do, in order.
pub(crate) fn handle(state: &mut GroupCoordinatorState, now_ms: i64, event: Event) -> Vec<Action> {
    let GroupCoordinatorState { groups, out } = state;
    out.now_ms = now_ms;
    match event {
        Event::Join(r) => {
            if consumer::leave::refuse_classic_join(groups, out, &r) {
                return out.take_actions();
            }
            membership::join(groups, out, r)
        }
        Event::ConsumerHeartbeat(r) => consumer::heartbeat::heartbeat(groups, out, r),
        Event::Sync(r) => membership::sync(groups, out, r),
        Event::Heartbeat(r) => membership::heartbeat(groups, out, r),
        Event::Leave(r) => membership::leave(groups, out, r),
        Event::CommitOffsets(r) => offsets::commit(groups, out, r),
        Event::DeleteGroups(r) => offsets::delete_groups(groups, out, r),
        Event::OffsetDelete(r) => offsets::delete_offsets(groups, out, r),
        Event::TxnCompleted { producer_id, commit } => offsets::txn_completed(groups, producer_id, commit),
        Event::PartitionsDeleted { partitions } => offsets::partitions_deleted(groups, out, &partitions),
        Event::TimerFired { key } => timer_fired(groups, out, key),
        Event::Persisted { token, result } => persisted(groups, out, token, result),
    }
    out.take_actions()
}

fn timer_fired(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, key: TimerKey) {
    let Some(&(at_ms, payload)) = out.timers.get(&key) else {
        return; // cancelled, or already fired
    };
    if out.now_ms < at_ms {
        // Early: a stale fire of a rescheduled timer, or the shell's timer clock ran ahead of
        // the wall clock it passes in. Ask for it again rather than lose it.
        out.actions.push(Action::ScheduleTimer { key, at_ms });
        return;
    }
    out.timers.remove(&key);
    match (key, payload) {
        (TimerKey::Heartbeat { group_id, member_id }, _) => {
            membership::heartbeat_expired(groups, out, &group_id, &member_id)
        }
        (TimerKey::Join { group_id }, TimerPayload::InitialJoin { delay_ms, remaining_ms }) => {
            membership::initial_join_expired(groups, out, &group_id, delay_ms, remaining_ms)
        }
        (TimerKey::Join { group_id }, _) => membership::join_expired(groups, out, &group_id),
        (TimerKey::Sync { group_id }, TimerPayload::Sync { generation }) => {
            membership::sync_expired(groups, out, &group_id, generation)
        }
        (TimerKey::Sync { .. }, _) => {}
        (TimerKey::OffsetExpiration, _) => offsets::expire_offsets(groups, out),
        (TimerKey::ConsumerSession { group_id, member_id }, _) => {
            consumer::leave::session_expired(groups, out, &group_id, &member_id)
        }
        (TimerKey::ConsumerRevocation { group_id, member_id }, _) => {
            consumer::leave::revocation_expired(groups, out, &group_id, &member_id)
        }
    }
}

fn persisted(groups: &mut BTreeMap<String, Group>, out: &mut Outbox, token: u64, result: Result<(), ResponseError>) {
    let Some(write) = out.pending_writes.remove(&token) else {
        if let Err(e) = result {
            tracing::warn!(token, error = %e, "append of group records failed");
        }
        return;
    };
    match write {
        PendingWrite::SyncAssignment {
            group_id,
            generation,
            assignment,
        } => membership::assignment_persisted(groups, out, &group_id, generation, assignment, result),
        PendingWrite::StaticReplace(replace) => membership::static_replace_persisted(groups, out, replace, result),
        PendingWrite::OffsetCommit(commit) => offsets::commit_persisted(groups, out, token, commit, result),
        PendingWrite::Reply { req, response } => offsets::reply_persisted(out, req, response, result),
    }
}

impl Outbox {
    pub(crate) fn new(config: GroupConfig, member_id_seed: u64) -> Self {
        Self {
            config,
            now_ms: 0,
            actions: Vec::new(),
            timers: BTreeMap::new(),
            pending_writes: BTreeMap::new(),
            next_token: 1,
            ids: IdSource { state: member_id_seed },
        }
    }

    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    pub(crate) fn respond(&mut self, req: RequestId, response: Response) {
        self.actions.push(Action::Respond { req, response });
    }

    /// (Re)schedules `key` to fire `delay_ms` from now.
    pub(crate) fn schedule(&mut self, key: TimerKey, delay_ms: i64, payload: TimerPayload) {
        let at_ms = self.now_ms.saturating_add(delay_ms.max(0));
        self.timers.insert(key.clone(), (at_ms, payload));
        self.actions.push(Action::ScheduleTimer { key, at_ms });
    }

    pub(crate) fn cancel(&mut self, key: TimerKey) {
        if self.timers.remove(&key).is_some() {
            self.actions.push(Action::CancelTimer { key });
        }
    }

    /// (Re)starts a member's session timer.
    pub(crate) fn reschedule_heartbeat(&mut self, group_id: &str, member: &Member) {
        self.schedule_heartbeat(group_id, &member.member_id, i64::from(member.session_timeout_ms));
    }

    pub(crate) fn schedule_heartbeat(&mut self, group_id: &str, member_id: &str, delay_ms: i64) {
        let key = TimerKey::Heartbeat {
            group_id: group_id.to_owned(),
            member_id: member_id.to_owned(),
        };
        self.schedule(key, delay_ms, TimerPayload::Heartbeat);
    }

    pub(crate) fn cancel_heartbeat(&mut self, group_id: &str, member_id: &str) {
        self.cancel(TimerKey::Heartbeat {
            group_id: group_id.to_owned(),
            member_id: member_id.to_owned(),
        });
    }

    /// Asks the shell to append `records`; `then` says what to do when it is done.
    pub(crate) fn persist(&mut self, records: Vec<Record>, then: Option<PendingWrite>) -> u64 {
        let records = records.iter().map(Record::encode).collect();
        self.persist_write(Write::Records(records), then)
    }

    /// Asks the shell to append `records` as part of a producer's transaction; `then` says
    /// what to do when it is done.
    pub(crate) fn persist_transactional(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<Record>,
        then: PendingWrite,
    ) {
        let records = records.iter().map(Record::encode).collect();
        let write = Write::Transactional {
            producer_id,
            producer_epoch,
            records,
        };
        self.persist_write(write, Some(then));
    }

    fn persist_write(&mut self, write: Write, then: Option<PendingWrite>) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        if let Some(then) = then {
            self.pending_writes.insert(token, then);
        }
        self.actions.push(Action::Persist { token, write });
        token
    }

    /// A fresh UUID (KIP-848 member ids of ConsumerGroupHeartbeat v0).
    pub(crate) fn new_uuid(&mut self) -> String {
        self.ids.uuid()
    }

    /// A fresh member id: `prefix` (client id or group.instance.id) + "-" + a UUID, as Kafka.
    pub(crate) fn new_member_id(&mut self, prefix: &str, group: &Group) -> String {
        loop {
            let id = format!("{prefix}-{}", self.ids.uuid());
            if !group.members.contains_key(&id) && !group.pending_members.contains(&id) {
                return id;
            }
        }
    }
}

/// A deterministic UUID-v4-shaped id stream (splitmix64), so the core stays pure and its tests
/// reproducible; the seed is what makes ids unique across loads.
#[derive(Debug)]
struct IdSource {
    state: u64,
}

impl IdSource {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uuid(&mut self) -> String {
        let hi = (self.next_u64() & !0xF000) | 0x4000; // version 4
        let lo = (self.next_u64() & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}
