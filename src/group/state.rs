//! The data of one classic group and the rules that touch only that data: membership, protocol
//! selection, state transitions, member validation. Nothing here schedules timers, answers
//! requests or builds records; `membership` and `offsets` do that around it.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;

use super::api::{JoinMember, Protocol, RequestId};

/// The protocol type of Kafka consumers, whose member metadata we can parse.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum GroupState {
    /// No members; lingers while it has offsets (also every "simple" commit-only group).
    Empty,
    /// Collecting JoinGroup requests of the members for the next generation.
    PreparingRebalance,
    /// Join phase done; waiting for the leader's assignment in SyncGroup.
    CompletingRebalance,
    /// The assignment is known and handed out.
    Stable,
    /// Removed. Groups are dropped from the coordinator when they die, so this is what
    /// DescribeGroups reports for an unknown group.
    Dead,
}

impl GroupState {
    /// Kafka's name, as ListGroups and DescribeGroups show it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a group may come from to enter `self` (Kafka's `validPreviousStates`).
    pub(crate) fn valid_previous_states(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

/// A committed offset as kept in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: Option<i32>,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp_ms: i64,
    /// Only commits that asked for a retention (OffsetCommit v2-v4) have one.
    pub(crate) expire_timestamp_ms: Option<i64>,
}

/// One member of a classic group.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) assignment: Bytes,
    /// The parked JoinGroup of this member.
    pub(crate) awaiting_join: Option<RequestId>,
    /// The parked SyncGroup of this member.
    pub(crate) awaiting_sync: Option<RequestId>,
    /// Joined but not yet through a completed join phase: its session timer is the
    /// new-member join timeout and it can expire even while parked.
    pub(crate) is_new: bool,
}

impl Member {
    /// This member's metadata for `protocol` (empty if it does not support it).
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Same protocols, same order, same metadata.
    pub(crate) fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// Whether a session-timer expiry should be ignored: members parked in a join or sync
    /// are waiting on the group, not dead — unless they are new.
    pub(crate) fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }
}

/// One classic group with its committed offsets.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) group_id: String,
    pub(crate) state: GroupState,
    pub(crate) previous_state: GroupState,
    /// When the group entered its current state (None only for groups loaded from v0/v1 records).
    pub(crate) state_timestamp_ms: Option<i64>,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader_id: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// group.instance.id → member id.
    pub(crate) static_members: BTreeMap<String, String>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pub(crate) pending_members: BTreeSet<String>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub(crate) pending_sync_members: BTreeSet<String>,
    /// A member joined during the initial (delayed) rebalance: extend the delay.
    pub(crate) new_member_added: bool,
    /// Topics the consumer members subscribe to; None if unknown (not "consumer", unparsable).
    pub(crate) subscribed_topics: Option<BTreeSet<String>>,
    /// topic → partition → offset, only what the log holds.
    pub(crate) offsets: BTreeMap<String, BTreeMap<i32, CommittedOffset>>,
    /// (topic, partition) → tokens of offset commits appended but not yet confirmed.
    pub(crate) pending_offset_commits: BTreeMap<(String, i32), BTreeSet<u64>>,
    /// producer id → the offsets its open transaction committed (TxnOffsetCommit, in the log),
    /// applied when its COMMIT marker comes, dropped at its ABORT.
    pub(crate) pending_txn_offsets: BTreeMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
    /// Set when this is a KIP-848 consumer group (`consumer`); the classic part then has no
    /// members and stays Empty, and only holds the offsets.
    pub(crate) consumer: Option<Box<super::consumer::ConsumerGroup>>,
}

impl Group {
    pub(crate) fn new(group_id: &str, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_owned(),
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            state_timestamp_ms: Some(now_ms),
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeSet::new(),
            pending_sync_members: BTreeSet::new(),
            new_member_added: false,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            pending_offset_commits: BTreeMap::new(),
            pending_txn_offsets: BTreeMap::new(),
            consumer: None,
        }
    }

    /// Whether the group has no members of either protocol (it may be deleted, its offsets expire).
    pub(crate) fn has_no_members(&self) -> bool {
        self.members.is_empty() && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }

    pub(crate) fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub(crate) fn leader_or_empty(&self) -> String {
        self.leader_id.clone().unwrap_or_default()
    }

    pub(crate) fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    pub(crate) fn num_awaiting_join(&self) -> usize {
        self.members.values().filter(|m| m.awaiting_join.is_some()).count()
    }

    /// Every member rejoined and no KIP-394 member is still expected.
    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.members.values().all(|m| m.awaiting_join.is_some()) && self.pending_members.is_empty()
    }

    /// The largest rebalance timeout of the members (0 without members).
    pub(crate) fn rebalance_timeout_ms(&self) -> i32 {
        self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0)
    }

    pub(crate) fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance
            .valid_previous_states()
            .contains(&self.state)
    }

    pub(crate) fn transition_to(&mut self, target: GroupState, now_ms: i64) {
        let valid = target.valid_previous_states().contains(&self.state);
        debug_assert!(
            valid,
            "group {}: invalid transition {:?} -> {:?}",
            self.group_id, self.state, target
        );
        if !valid {
            tracing::error!(group = %self.group_id, from = ?self.state, to = ?target, "invalid group state transition");
        }
        self.previous_state = self.state;
        self.state = target;
        self.state_timestamp_ms = Some(now_ms);
    }

    /// Adds a member; the first member of a group sets its protocol type, the first member
    /// without a leader becomes it. Callers check `supports_protocols` first.
    pub(crate) fn add_member(&mut self, mut member: Member, awaiting_join: Option<RequestId>) {
        if let Some(instance_id) = &member.group_instance_id {
            let previous = self
                .static_members
                .insert(instance_id.clone(), member.member_id.clone());
            debug_assert!(previous.is_none(), "static member {instance_id} added twice");
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.pending_members.remove(&member.member_id);
        member.awaiting_join = awaiting_join;
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member (or a pending member id) and returns it, so that the caller can answer
    /// its parked requests. A removed leader is replaced by the first remaining member.
    pub(crate) fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id);
        if let Some(instance_id) = removed.as_ref().and_then(|m| m.group_instance_id.as_ref()) {
            self.static_members.remove(instance_id);
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
        removed
    }

    /// Gives a static member a new member id, keeping everything else. Returns the member's
    /// parked (join, sync) requests, which the caller fences.
    pub(crate) fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) -> (Option<RequestId>, Option<RequestId>) {
        let Some(mut member) = self.members.remove(old_member_id) else {
            return (None, None);
        };
        let parked = (member.awaiting_join.take(), member.awaiting_sync.take());
        member.member_id = new_member_id.to_owned();
        self.members.insert(new_member_id.to_owned(), member);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_owned());
        }
        if self.pending_sync_members.remove(old_member_id) {
            self.pending_sync_members.insert(new_member_id.to_owned());
        }
        self.static_members
            .insert(instance_id.to_owned(), new_member_id.to_owned());
        parked
    }

    /// How many members support each protocol.
    fn protocol_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for member in self.members.values() {
            for p in &member.protocols {
                *counts.entry(p.name.as_str()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Whether a member of `protocol_type` with these protocols may be in the group: any
    /// non-empty type and list for an Empty group; otherwise the same type and at least one
    /// protocol every current member supports (Kafka's `supportsProtocols`).
    pub(crate) fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.is(GroupState::Empty) {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let counts = self.protocol_counts();
        let all = self.members.len();
        protocols
            .iter()
            .any(|p| counts.get(p.name.as_str()).copied().unwrap_or(0) == all)
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports, each member votes
    /// for its most preferred one and the most voted wins. Kafka breaks a tie by hash-map
    /// order; we break it by name, to be deterministic.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let all = self.members.len();
        let counts = self.protocol_counts();
        let candidates: BTreeSet<&str> = counts
            .iter()
            .filter(|(_, n)| **n == all)
            .map(|(name, _)| *name)
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(choice) = member.vote(&candidates) {
                *votes.entry(choice).or_insert(0) += 1;
            }
        }
        // max_by_key keeps the last maximum; iterate in reverse name order to keep the first.
        votes
            .iter()
            .rev()
            .max_by_key(|(_, n)| **n)
            .map(|(name, _)| (*name).to_owned())
    }

    /// Kafka's `maybeElectNewJoinedLeader`: keep a leader that rejoined, else pick a member that
    /// did; false if there is no leader or nobody rejoined.
    pub(crate) fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        if self.members.get(&leader).is_some_and(|m| m.awaiting_join.is_some()) {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join.is_some()) {
            Some(joined) => {
                tracing::info!(group = %self.group_id, old = %leader, new = %joined.member_id,
                    "group leader did not rejoin; elected a new leader");
                self.leader_id = Some(joined.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Starts the next generation: CompletingRebalance with a selected protocol, or Empty.
    pub(crate) fn init_next_generation(&mut self, now_ms: i64) {
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::CompletingRebalance, now_ms);
        }
        self.pending_sync_members.clear();
    }

    /// The members' metadata for the selected protocol, as the leader's JoinGroup response
    /// carries it.
    pub(crate) fn join_members(&self) -> Vec<JoinMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// Kafka's `validateMember`: a given instance id must map to this member id; the member
    /// must exist.
    pub(crate) fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), ResponseError> {
        if let Some(instance_id) = instance_id {
            match self.static_members.get(instance_id) {
                None => return Err(ResponseError::UnknownMemberId),
                Some(current) if current != member_id => {
                    tracing::info!(group = %self.group_id, member_id, instance_id, current = %current,
                        "static member fenced");
                    return Err(ResponseError::FencedInstanceId);
                }
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ResponseError::UnknownMemberId)
        }
    }

    /// Kafka's `ClassicGroup.validateOffsetCommit` (non-transactional).
    pub(crate) fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if self.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.is(GroupState::Empty) {
            // Admin client or a consumer without group management: allowed on an empty group.
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if !self.is(GroupState::Empty) {
            // No member id and no generation (OffsetCommit v0): only for an empty group.
            return Err(ResponseError::UnknownMemberId);
        }
        if self.is(GroupState::CompletingRebalance) {
            // A valid member of the new generation that has not synced yet: let it finish first.
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Kafka's `computeSubscribedTopics`: the union of the consumer members' subscriptions,
    /// parsed with version 0 of the consumer protocol (a prefix of every later version).
    pub(crate) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            match parse_subscription_topics(member.metadata(protocol)) {
                Some(t) => topics.extend(t),
                None => {
                    tracing::warn!(group = %self.group_id, protocol, "unparsable consumer protocol metadata");
                    return None;
                }
            }
        }
        Some(topics)
    }

    /// Whether the group consumes `topic`; when unknown, a consumer group is assumed to.
    pub(crate) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        if let Some(consumer) = &self.consumer {
            return consumer.subscription_metadata.contains_key(topic);
        }
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    /// Every partition with a committed or a pending offset.
    pub(crate) fn offset_partitions(&self) -> BTreeSet<(String, i32)> {
        let committed = self
            .offsets
            .iter()
            .flat_map(|(t, ps)| ps.keys().map(move |p| (t.clone(), *p)));
        committed.chain(self.pending_offset_commits.keys().cloned()).collect()
    }

    /// Forgets the offset of a partition, pending commits included (they will not materialise).
    pub(crate) fn remove_offset(&mut self, topic: &str, partition: i32) {
        if let Some(parts) = self.offsets.get_mut(topic) {
            parts.remove(&partition);
            if parts.is_empty() {
                self.offsets.remove(topic);
            }
        }
        let key = (topic.to_owned(), partition);
        self.pending_offset_commits.remove(&key);
        for offsets in self.pending_txn_offsets.values_mut() {
            offsets.remove(&key);
        }
    }

    /// Whether a transaction not yet ended holds an offset of the partition (OffsetFetch with
    /// require_stable answers UNSTABLE_OFFSET_COMMIT then).
    pub(crate) fn has_pending_txn_offset(&self, topic: &str, partition: i32) -> bool {
        let key = (topic.to_owned(), partition);
        self.pending_txn_offsets.values().any(|o| o.contains_key(&key))
    }

    pub(crate) fn has_offset_or_pending(&self, topic: &str, partition: i32) -> bool {
        self.offsets.get(topic).is_some_and(|ps| ps.contains_key(&partition))
            || self.pending_offset_commits.contains_key(&(topic.to_owned(), partition))
    }

    pub(crate) fn put_offset(&mut self, topic: &str, partition: i32, offset: CommittedOffset) {
        self.offsets
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, offset);
    }
}

/// Topics of a consumer protocol subscription (`int16 version` + `ConsumerProtocolSubscription`
/// read at v0). None when it does not parse. The topic count is checked against the bytes left
/// before the crate's decoder preallocates for it.
pub(crate) fn parse_subscription_topics(mut metadata: Bytes) -> Option<Vec<String>> {
    if metadata.remaining() < 6 {
        return None;
    }
    let version = metadata.get_i16();
    if version < 0 {
        return None;
    }
    let count = i32::from_be_bytes([metadata[0], metadata[1], metadata[2], metadata[3]]);
    if count < 0 || count as usize > (metadata.remaining() - 4) / 2 {
        return None;
    }
    let subscription = ConsumerProtocolSubscription::decode(&mut metadata, 0).ok()?;
    Some(subscription.topics.into_iter().map(|t| t.to_string()).collect())
}
