//! KIP-848 consumer groups (`group.protocol=consumer`): the state of one group and its members
//! as Kafka 4's group coordinator keeps it — a group epoch bumped by every change of membership,
//! subscription or subscribed topics; a target assignment computed by a server-side assignor
//! (`assignor`) for an assignment epoch; and each member's current assignment, reconciled
//! towards its target one step per heartbeat (`reconcile`), revoking before assigning so that
//! no partition is ever owned by two members.
//!
//! May call: its own modules, the classic group's `Outbox` (answers, timers) and the
//! kafka-protocol crate's types. Must never do I/O or read a clock: the shell passes time and
//! a snapshot of the topics with each heartbeat. `heartbeat` joins and heartbeats, `leave`
//! leaving and expiries, `target` the target assignment, `records` and `replay` the records in
//! `__consumer_offsets`, `describe` the read-only views (ConsumerGroupDescribe, offset checks).

pub(crate) mod assignor;
pub(crate) mod describe;
pub(crate) mod heartbeat;
pub(crate) mod leave;
mod reconcile;
pub(crate) mod records;
pub(crate) mod replay;
mod subscription;
mod target;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use uuid::Uuid;

/// Partitions by topic id: an assignment, current or target.
pub(crate) type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// What the core knows of a topic: taken from the metadata image by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicInfo {
    pub(crate) id: Uuid,
    pub(crate) partitions: i32,
}

/// The non-internal topics of the cluster by name, as the shell saw them at the heartbeat.
pub(crate) type Topics = Arc<BTreeMap<String, TopicInfo>>;

/// Kafka's member epoch of a member leaving for good (`LEAVE_GROUP_MEMBER_EPOCH`).
pub(crate) const LEAVE_EPOCH: i32 = -1;
/// Kafka's member epoch of a static member leaving for now (`LEAVE_GROUP_STATIC_MEMBER_EPOCH`):
/// it keeps its assignment until it comes back or its session expires.
pub(crate) const LEAVE_STATIC_EPOCH: i32 = -2;

/// Kafka's `MemberState` of the reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// At its target assignment of its epoch.
    Stable,
    /// Must give up partitions (`revoking`) before it may move to the next epoch.
    UnrevokedPartitions,
    /// At the target epoch but waiting for partitions other members still own.
    UnreleasedPartitions,
}

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerMember {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) member_epoch: i32,
    pub(crate) previous_member_epoch: i32,
    pub(crate) state: MemberState,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) server_assignor: Option<String>,
    /// Partitions the member owns and keeps.
    pub(crate) assigned: Assignment,
    /// Partitions the member owns but must give up (state UnrevokedPartitions).
    pub(crate) revoking: Assignment,
}

impl ConsumerMember {
    pub(crate) fn new(member_id: String) -> Self {
        Self {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
        }
    }

    /// Whether the member subscribes to `topic`, by name or by its resolved regex.
    pub(crate) fn subscribes(&self, topic: &str, regexes: &subscription::RegexCache) -> bool {
        self.subscribed_topic_names.iter().any(|t| t == topic)
            || self
                .subscribed_topic_regex
                .as_deref()
                .is_some_and(|r| regexes.matches(r, topic))
    }
}

/// Kafka's `ConsumerGroup.ConsumerGroupState`, derived from the epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumerGroupState {
    Empty,
    /// The group epoch moved past the target assignment's.
    Assigning,
    /// Some member is not at the target assignment yet.
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    /// Kafka's name, as ListGroups and ConsumerGroupDescribe show it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// The KIP-848 part of a group (its offsets stay with the classic `Group` that holds this).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerGroup {
    pub(crate) group_epoch: i32,
    /// The epoch of `targets`.
    pub(crate) assignment_epoch: i32,
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    /// group.instance.id → member id.
    pub(crate) static_members: BTreeMap<String, String>,
    /// member id → its target assignment.
    pub(crate) targets: BTreeMap<String, Assignment>,
    /// The subscribed topics the target was computed for: name → (id, partitions). A change
    /// (topic created, deleted, grown) bumps the group epoch.
    pub(crate) subscription_metadata: BTreeMap<String, TopicInfo>,
    /// The assignor of the last target assignment.
    pub(crate) assignor: String,
    /// Compiled subscription regexes of the members.
    pub(crate) regexes: subscription::RegexCache,
}

impl ConsumerGroup {
    pub(crate) fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The partitions owned now (assigned or still revoking) by members other than `except`.
    pub(crate) fn owned_by_others(&self, except: &str) -> BTreeSet<(Uuid, i32)> {
        let mut owners = BTreeSet::new();
        for m in self.members.values().filter(|m| m.member_id != except) {
            for assignment in [&m.assigned, &m.revoking] {
                for (topic, parts) in assignment {
                    for p in parts {
                        owners.insert((*topic, *p));
                    }
                }
            }
        }
        owners
    }

    /// Removes a member with its target; the caller bumps the group epoch.
    pub(crate) fn remove_member(&mut self, member_id: &str) -> Option<ConsumerMember> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.targets.remove(member_id);
        Some(member)
    }
}
