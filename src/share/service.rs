//! The shell around the share-group cores: one per broker, holding the share groups this
//! broker coordinates (membership), the share-partitions of the partitions it leads (delivery
//! state) and the share sessions clients opened with it, behind one mutex that is held only for
//! in-memory work (log reads happen outside it, in the API layer).
//!
//! May call: the cores in this module and the config settings. Must never read logs, block on
//! I/O or hold its lock across an await.
//!
//! Bounds: at most `group.share.max.groups` groups, `group.share.max.size` members per group,
//! `group.share.max.share.sessions` sessions, `group.share.partition.max.record.locks` records
//! in flight per share-partition; share-partitions exist only for groups this broker knows
//! of and partitions that exist, so their number is bounded by groups x partitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::membership::{GroupLimits, Heartbeat, HeartbeatReply, MembershipError, ShareGroup};
use super::partition::{AckError, AckType, Acquired, Limits, PersistedState, SharePartition};
use super::sessions::{Outcome, SessionCache, SessionError, SessionPartition};
use crate::config::Settings;
use crate::metadata::group_configs::{
    SHARE_AUTO_OFFSET_RESET, SHARE_DELIVERY_COUNT_LIMIT, SHARE_HEARTBEAT_INTERVAL_MS, SHARE_RECORD_LOCK_DURATION_MS,
    SHARE_SESSION_TIMEOUT_MS,
};

/// A share-partition: (group id, topic id, partition).
pub(crate) type PartitionKey = (String, Uuid, i32);

/// The broker's share-group settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShareSettings {
    pub(crate) lock_duration_ms: i64,
    pub(crate) delivery_count_limit: i16,
    pub(crate) max_record_locks: usize,
    pub(crate) max_members: usize,
    pub(crate) max_groups: usize,
    pub(crate) max_sessions: usize,
    pub(crate) session_timeout_ms: i64,
    pub(crate) heartbeat_interval_ms: i32,
}

impl ShareSettings {
    pub(crate) fn from_settings(s: &Settings) -> ShareSettings {
        ShareSettings {
            lock_duration_ms: i64::from(s.group_share_record_lock_duration_ms),
            delivery_count_limit: s.group_share_delivery_count_limit.clamp(2, 10) as i16,
            max_record_locks: s.group_share_partition_max_record_locks.max(1) as usize,
            max_members: s.group_share_max_size.max(1) as usize,
            max_groups: s.group_share_max_groups.max(1) as usize,
            max_sessions: s.group_share_max_share_sessions.max(1) as usize,
            session_timeout_ms: i64::from(s.group_share_session_timeout_ms),
            heartbeat_interval_ms: s.group_share_heartbeat_interval_ms,
        }
    }
}

/// Where a share group starts on a partition it has no state for (`share.auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AutoReset {
    Earliest,
    Latest,
}

/// A group's config overrides (from the metadata image) over the broker's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupSettings {
    pub(crate) auto_reset: AutoReset,
    pub(crate) partition: Limits,
    pub(crate) group: GroupLimits,
}

impl ShareSettings {
    pub(crate) fn for_group(&self, overrides: Option<&BTreeMap<String, String>>) -> GroupSettings {
        let get = |name: &str| overrides.and_then(|o| o.get(name));
        let int = |name: &str, default: i64| get(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(default);
        GroupSettings {
            auto_reset: match get(SHARE_AUTO_OFFSET_RESET).map(String::as_str) {
                Some("earliest") => AutoReset::Earliest,
                _ => AutoReset::Latest,
            },
            partition: Limits {
                lock_duration_ms: int(SHARE_RECORD_LOCK_DURATION_MS, self.lock_duration_ms),
                delivery_count_limit: int(SHARE_DELIVERY_COUNT_LIMIT, i64::from(self.delivery_count_limit)).clamp(2, 10)
                    as i16,
                max_record_locks: self.max_record_locks,
            },
            group: GroupLimits {
                max_members: self.max_members,
                session_timeout_ms: int(SHARE_SESSION_TIMEOUT_MS, self.session_timeout_ms),
                heartbeat_interval_ms: int(SHARE_HEARTBEAT_INTERVAL_MS, i64::from(self.heartbeat_interval_ms))
                    .clamp(1, i64::from(i32::MAX)) as i32,
            },
        }
    }
}

/// Why a heartbeat was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ShareError {
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error("this broker already coordinates its maximum of {0} share groups")]
    TooManyGroups(usize),
}

impl ShareError {
    pub(crate) fn kafka_error(&self) -> ResponseError {
        match self {
            ShareError::Membership(e) => e.kafka_error(),
            ShareError::TooManyGroups(_) => ResponseError::GroupMaxSizeReached,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<String, ShareGroup>,
    partitions: HashMap<PartitionKey, SharePartition>,
    sessions: SessionCache,
    /// Share-partitions created here (by `share.auto.offset.reset`) whose state is not yet
    /// durable; bounded by `partitions`.
    created: std::collections::HashSet<PartitionKey>,
}

impl State {
    /// Gives back every record `member` of `group` holds on this broker and drops its session.
    fn release_member(&mut self, group: &str, member: &str) {
        self.sessions.remove(group, member);
        for ((g, _, _), sp) in self.partitions.iter_mut() {
            if g == group {
                sp.release_member(member);
            }
        }
    }
}

/// The share groups, share-partitions and share sessions of this broker.
#[derive(Debug)]
pub(crate) struct ShareService {
    settings: ShareSettings,
    state: Mutex<State>,
}

impl ShareService {
    pub(crate) fn new(settings: ShareSettings) -> ShareService {
        ShareService {
            settings,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn settings(&self) -> &ShareSettings {
        &self.settings
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding it left plain data behind; carry on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// ShareGroupHeartbeat on the group's coordinator. Members that left or expired give back
    /// what they held here.
    pub(crate) fn heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
        now_ms: i64,
        limits: &GroupLimits,
        partitions: impl Fn(&str) -> Option<i32>,
    ) -> Result<HeartbeatReply, ShareError> {
        let mut state = self.lock();
        if !state.groups.contains_key(group_id) && state.groups.len() >= self.settings.max_groups {
            return Err(ShareError::TooManyGroups(self.settings.max_groups));
        }
        // A member leaving on its own still closes its share sessions itself, with its last
        // acknowledgements (clients send the leave heartbeat first): its records and sessions
        // stay until then, or until its locks run out. Expired members' go now.
        let leaving = (hb.member_epoch == super::membership::LEAVE_EPOCH).then(|| hb.member_id.clone());
        let group = state.groups.entry(group_id.to_string()).or_default();
        let (result, removed) = group.heartbeat(hb, now_ms, limits, partitions);
        for member in removed.iter().filter(|m| Some(*m) != leaving.as_ref()) {
            state.release_member(group_id, member);
        }
        Ok(result?)
    }

    /// The group as it is now (members past their session timeout expired first).
    pub(crate) fn describe(&self, group_id: &str, now_ms: i64, limits: &GroupLimits) -> Option<ShareGroup> {
        let mut state = self.lock();
        let group = state.groups.get_mut(group_id)?;
        let removed = group.expire(now_ms, limits);
        let out = group.clone();
        for member in removed {
            state.release_member(group_id, &member);
        }
        Some(out)
    }

    /// Every share group this broker coordinates, with its state.
    pub(crate) fn groups(&self) -> Vec<(String, &'static str)> {
        let state = self.lock();
        let mut out: Vec<_> = state.groups.iter().map(|(id, g)| (id.clone(), g.state())).collect();
        out.sort();
        out
    }

    /// Applies a ShareFetch's or ShareAcknowledge's session epoch. A closed or replaced session
    /// gives back the member's records.
    pub(crate) fn session(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        added: &[SessionPartition],
        forgotten: &[SessionPartition],
    ) -> Result<Outcome, SessionError> {
        let mut state = self.lock();
        let outcome = state
            .sessions
            .apply(group, member, epoch, added, forgotten, self.settings.max_sessions)?;
        if matches!(outcome, Outcome::Opened { replaced: true }) {
            for ((g, _, _), sp) in state.partitions.iter_mut() {
                if g == group {
                    sp.release_member(member);
                }
            }
        }
        Ok(outcome)
    }

    /// Closes a session after its last request's acknowledgements were applied.
    pub(crate) fn close_session(&self, group: &str, member: &str) {
        self.lock().release_member(group, member);
    }

    /// The partitions of a member's session.
    pub(crate) fn session_partitions(&self, group: &str, member: &str) -> Vec<SessionPartition> {
        let state = self.lock();
        state
            .sessions
            .get(group, member)
            .map(|s| s.partitions.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Applies acknowledgement batches of one member on one share-partition; each batch whole
    /// or not at all. The first refusal is the partition's answer.
    pub(crate) fn acknowledge(
        &self,
        key: &PartitionKey,
        member: &str,
        batches: &[(i64, i64, Vec<AckType>)],
        limits: Limits,
        now_ms: i64,
    ) -> Result<(), AckError> {
        let mut state = self.lock();
        let Some(sp) = state.partitions.get_mut(key) else {
            return match batches.first() {
                Some((first, _, _)) => Err(AckError::NotAcquired(*first)),
                None => Ok(()),
            };
        };
        sp.set_limits(limits);
        let mut result = Ok(());
        for (first, last, types) in batches {
            if let Err(e) = sp.acknowledge(member, *first, *last, types, now_ms) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// Where the next log read for this share-partition starts, creating its state at
    /// `initial_offset()` if it has none; None when nothing may be acquired now.
    pub(crate) fn fetch_offset(
        &self,
        key: &PartitionKey,
        limits: Limits,
        log_start_offset: i64,
        now_ms: i64,
        initial_offset: impl FnOnce() -> i64,
    ) -> Option<i64> {
        let mut state = self.lock();
        if !state.partitions.contains_key(key) {
            state.created.insert(key.clone());
        }
        let sp = state
            .partitions
            .entry(key.clone())
            .or_insert_with(|| SharePartition::new(initial_offset(), limits));
        sp.set_limits(limits);
        sp.log_start_moved(log_start_offset);
        sp.next_fetch_offset(now_ms)
    }

    /// Acquires for `member` records at `offsets` (read from the log), at most `max_records`;
    /// `skip_to` moves the share-partition's end over offsets that hold nothing deliverable.
    pub(crate) fn acquire(
        &self,
        key: &PartitionKey,
        member: &str,
        offsets: impl IntoIterator<Item = i64>,
        max_records: usize,
        skip_to: Option<i64>,
        now_ms: i64,
    ) -> Vec<Acquired> {
        let mut state = self.lock();
        let Some(sp) = state.partitions.get_mut(key) else {
            return Vec::new();
        };
        let acquired = sp.acquire(member, offsets, max_records, now_ms);
        if let (true, Some(end)) = (acquired.is_empty(), skip_to) {
            sp.skip_to(end);
        }
        acquired
    }

    /// The earliest lock deadline among `keys`: a long poll wakes then, as records come back.
    pub(crate) fn next_lock_deadline(&self, keys: &[PartitionKey]) -> Option<i64> {
        let state = self.lock();
        keys.iter()
            .filter_map(|k| state.partitions.get(k).and_then(SharePartition::next_lock_deadline))
            .min()
    }

    /// Whether this broker holds the share-partition's state in memory.
    pub(crate) fn has_partition(&self, key: &PartitionKey) -> bool {
        self.lock().partitions.contains_key(key)
    }

    /// Installs a share-partition read back from its durable state, unless one is here already.
    pub(crate) fn install(&self, key: &PartitionKey, sp: SharePartition) {
        self.lock().partitions.entry(key.clone()).or_insert(sp);
    }

    /// Hands the durable form of a share-partition's state now (`SharePartition::to_state`)
    /// to `write`, under the lock: writes of one share-partition are queued in the order of
    /// the states they carry, so an older state never lands after a newer one.
    pub(crate) fn snapshot_then<T>(
        &self,
        key: &PartitionKey,
        write: impl FnOnce(i64, Vec<(i64, i64, PersistedState, i16)>) -> T,
    ) -> Option<T> {
        let state = self.lock();
        let (start, runs) = state.partitions.get(key)?.to_state();
        Some(write(start, runs))
    }

    /// The share-partitions created since the last call, whose state must be made durable.
    pub(crate) fn take_created(&self) -> Vec<PartitionKey> {
        self.lock().created.drain().collect()
    }

    /// The start offsets of a group's share-partitions on this broker, by (topic id,
    /// partition); None when the group is unknown here.
    pub(crate) fn start_offsets(&self, group: &str) -> Option<BTreeMap<(Uuid, i32), i64>> {
        let state = self.lock();
        let known = state.groups.contains_key(group);
        let offsets: BTreeMap<(Uuid, i32), i64> = state
            .partitions
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), sp)| ((*t, *p), sp.start_offset()))
            .collect();
        (known || !offsets.is_empty()).then_some(offsets)
    }

    /// AlterShareGroupOffsets: each named share-partition starts afresh at its new start
    /// offset. Only while the group has no members, as in Kafka.
    pub(crate) fn alter_offsets(
        &self,
        group: &str,
        offsets: &[(Uuid, i32, i64)],
        limits: Limits,
    ) -> Result<(), AdminError> {
        let mut state = self.lock();
        Self::check_empty(&state, group)?;
        if !state.groups.contains_key(group) && state.groups.len() >= self.settings.max_groups {
            return Err(AdminError::TooManyGroups(self.settings.max_groups));
        }
        state.groups.entry(group.to_string()).or_default();
        for (topic, partition, offset) in offsets {
            let key = (group.to_string(), *topic, *partition);
            state.partitions.insert(key, SharePartition::new(*offset, limits));
        }
        Ok(())
    }

    /// DeleteShareGroupOffsets: the group forgets its state on these topics. Only while it has
    /// no members.
    pub(crate) fn delete_offsets(&self, group: &str, topics: &[Uuid]) -> Result<Vec<PartitionKey>, AdminError> {
        let mut state = self.lock();
        if !state.groups.contains_key(group) {
            return Err(AdminError::UnknownGroup);
        }
        Self::check_empty(&state, group)?;
        let gone: Vec<PartitionKey> = state
            .partitions
            .keys()
            .filter(|(g, t, _)| g == group && topics.contains(t))
            .cloned()
            .collect();
        for k in &gone {
            state.partitions.remove(k);
        }
        Ok(gone)
    }

    /// DeleteGroups of a share group: its membership, share-partitions and sessions go; the
    /// share-partitions it had are returned (their durable state goes too). None when `group`
    /// is not a share group here.
    pub(crate) fn delete_group(&self, group: &str) -> Option<Result<Vec<PartitionKey>, AdminError>> {
        let mut state = self.lock();
        state.groups.get(group)?;
        if let Err(e) = Self::check_empty(&state, group) {
            return Some(Err(e));
        }
        state.groups.remove(group);
        let gone: Vec<PartitionKey> = state
            .partitions
            .keys()
            .filter(|(g, _, _)| g == group)
            .cloned()
            .collect();
        for k in &gone {
            state.partitions.remove(k);
        }
        state.created.retain(|(g, _, _)| g != group);
        state.sessions.remove_group(group);
        Some(Ok(gone))
    }

    fn check_empty(state: &State, group: &str) -> Result<(), AdminError> {
        match state.groups.get(group) {
            Some(g) if !g.members.is_empty() => Err(AdminError::NotEmpty),
            _ => Ok(()),
        }
    }
}

/// Why an administrative change of a share group was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AdminError {
    #[error("the share group has members: it must be empty")]
    NotEmpty,
    #[error("the share group does not exist")]
    UnknownGroup,
    #[error("this broker already coordinates its maximum of {0} share groups")]
    TooManyGroups(usize),
}

impl AdminError {
    pub(crate) fn kafka_error(&self) -> ResponseError {
        match self {
            AdminError::NotEmpty => ResponseError::NonEmptyGroup,
            AdminError::UnknownGroup => ResponseError::GroupIdNotFound,
            AdminError::TooManyGroups(_) => ResponseError::GroupMaxSizeReached,
        }
    }
}
