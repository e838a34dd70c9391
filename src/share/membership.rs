//! A share group's membership (KIP-932's ShareGroupHeartbeat): members join with epoch 0 and
//! a client-chosen member id, heartbeat with their epoch, leave with epoch -1, and expire after
//! `group.share.session.timeout.ms` without a heartbeat. A change of members, subscriptions or
//! the subscribed topics' partition counts bumps the group epoch and recomputes the target
//! assignment (`assignor`); as nothing is ever owned exclusively in a share group there is no
//! revocation: a member's epoch and assignment jump to the target on its next heartbeat.
//!
//! Pure: time comes in with each call; no I/O. The shell releases what a removed member held.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

use super::assignor::{self, Assignment, TopicPartition};

/// Kafka's epoch that asks to join, and the one that asks to leave.
pub(crate) const JOIN_EPOCH: i32 = 0;
pub(crate) const LEAVE_EPOCH: i32 = -1;

/// Bounds and timings of share groups (broker settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupLimits {
    /// `group.share.max.size`.
    pub(crate) max_members: usize,
    /// `group.share.session.timeout.ms`.
    pub(crate) session_timeout_ms: i64,
    /// `group.share.heartbeat.interval.ms`.
    pub(crate) heartbeat_interval_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) subscribed: BTreeSet<String>,
    pub(crate) assignment: BTreeSet<TopicPartition>,
    last_heartbeat_ms: i64,
}

/// One heartbeat, as the API layer decoded it.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    pub(crate) rack_id: Option<String>,
    /// None: unchanged since the last heartbeat.
    pub(crate) subscribed: Option<Vec<String>>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
}

/// A heartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeartbeatReply {
    pub(crate) member_epoch: i32,
    pub(crate) heartbeat_interval_ms: i32,
    /// The member's new assignment, when it changed (always on joining).
    pub(crate) assignment: Option<BTreeSet<TopicPartition>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MembershipError {
    #[error("the member id must not be empty")]
    EmptyMemberId,
    #[error("a joining member must subscribe to at least one topic")]
    NoSubscription,
    #[error("member {0} is not in the group")]
    UnknownMember(String),
    #[error("member epoch {received} is not the member's epoch {expected}")]
    FencedEpoch { received: i32, expected: i32 },
    #[error("the group has reached its maximum of {0} members")]
    GroupFull(usize),
}

impl MembershipError {
    pub(crate) fn kafka_error(&self) -> ResponseError {
        match self {
            MembershipError::EmptyMemberId | MembershipError::NoSubscription => ResponseError::InvalidRequest,
            MembershipError::UnknownMember(_) => ResponseError::UnknownMemberId,
            MembershipError::FencedEpoch { .. } => ResponseError::FencedMemberEpoch,
            MembershipError::GroupFull(_) => ResponseError::GroupMaxSizeReached,
        }
    }
}

/// A share group's members and assignment.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShareGroup {
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: BTreeMap<String, Member>,
    /// Partition counts of the subscribed topics the target assignment was computed from.
    topology: BTreeMap<String, i32>,
    target: Assignment,
}

impl ShareGroup {
    /// Kafka's share group states: Empty (no members) or Stable.
    pub(crate) fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// Removes members silent for longer than the session timeout; returns their ids.
    pub(crate) fn expire(&mut self, now_ms: i64, limits: &GroupLimits) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| now_ms - m.last_heartbeat_ms >= limits.session_timeout_ms)
            .map(|m| m.member_id.clone())
            .collect();
        for id in &gone {
            self.members.remove(id);
        }
        if !gone.is_empty() {
            self.group_epoch += 1;
        }
        gone
    }

    /// Handles one heartbeat. `partitions` gives the partition count of each existing topic
    /// (the metadata image). Returns the reply and the ids of members that left or expired,
    /// whose records the shell must release.
    pub(crate) fn heartbeat(
        &mut self,
        hb: Heartbeat,
        now_ms: i64,
        limits: &GroupLimits,
        partitions: impl Fn(&str) -> Option<i32>,
    ) -> (Result<HeartbeatReply, MembershipError>, Vec<String>) {
        let mut removed = self.expire(now_ms, limits);
        let result = self.apply(hb, now_ms, limits, &partitions, &mut removed);
        (result, removed)
    }

    fn apply(
        &mut self,
        hb: Heartbeat,
        now_ms: i64,
        limits: &GroupLimits,
        partitions: &impl Fn(&str) -> Option<i32>,
        removed: &mut Vec<String>,
    ) -> Result<HeartbeatReply, MembershipError> {
        if hb.member_id.is_empty() {
            return Err(MembershipError::EmptyMemberId);
        }
        let id = hb.member_id.clone();
        match hb.member_epoch {
            LEAVE_EPOCH => {
                if self.members.remove(&id).is_none() {
                    return Err(MembershipError::UnknownMember(id));
                }
                removed.push(id);
                self.group_epoch += 1;
                self.reassign(partitions);
                return Ok(HeartbeatReply {
                    member_epoch: LEAVE_EPOCH,
                    heartbeat_interval_ms: 0,
                    assignment: None,
                });
            }
            JOIN_EPOCH => {
                let subscribed = hb.subscribed.clone().filter(|s| !s.is_empty());
                let Some(subscribed) = subscribed else {
                    return Err(MembershipError::NoSubscription);
                };
                if !self.members.contains_key(&id) && self.members.len() >= limits.max_members {
                    return Err(MembershipError::GroupFull(limits.max_members));
                }
                self.members.insert(
                    id.clone(),
                    Member {
                        member_id: id.clone(),
                        member_epoch: JOIN_EPOCH,
                        rack_id: hb.rack_id,
                        client_id: hb.client_id,
                        client_host: hb.client_host,
                        subscribed: subscribed.into_iter().collect(),
                        assignment: BTreeSet::new(),
                        last_heartbeat_ms: now_ms,
                    },
                );
                self.group_epoch += 1;
            }
            received => {
                let member = self
                    .members
                    .get_mut(&id)
                    .ok_or_else(|| MembershipError::UnknownMember(id.clone()))?;
                if received != member.member_epoch {
                    return Err(MembershipError::FencedEpoch {
                        received,
                        expected: member.member_epoch,
                    });
                }
                member.last_heartbeat_ms = now_ms;
                if let Some(s) = hb.subscribed {
                    let s: BTreeSet<String> = s.into_iter().collect();
                    if s != member.subscribed {
                        member.subscribed = s;
                        self.group_epoch += 1;
                    }
                }
                if hb.rack_id.is_some() {
                    member.rack_id = hb.rack_id;
                }
            }
        }
        self.reassign(partitions);
        let member = self
            .members
            .get_mut(&id)
            .ok_or_else(|| MembershipError::UnknownMember(id.clone()))?;
        let target = self.target.get(&id).cloned().unwrap_or_default();
        let changed = member.member_epoch == JOIN_EPOCH || member.assignment != target;
        member.member_epoch = self.group_epoch;
        member.assignment = target;
        Ok(HeartbeatReply {
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: limits.heartbeat_interval_ms,
            assignment: changed.then(|| member.assignment.clone()),
        })
    }

    /// Recomputes the target assignment when the group epoch moved past it or the subscribed
    /// topics changed shape (created, deleted, more partitions).
    fn reassign(&mut self, partitions: &impl Fn(&str) -> Option<i32>) {
        let topics: BTreeSet<&String> = self.members.values().flat_map(|m| &m.subscribed).collect();
        let topology: BTreeMap<String, i32> = topics
            .into_iter()
            .filter_map(|t| partitions(t).map(|n| (t.clone(), n)))
            .collect();
        if topology != self.topology {
            self.topology = topology;
            self.group_epoch += 1;
        }
        if self.assignment_epoch == self.group_epoch {
            return;
        }
        let subscriptions = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.subscribed.clone()))
            .collect();
        self.target = assignor::assign(&subscriptions, &self.topology, &self.target);
        self.assignment_epoch = self.group_epoch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: GroupLimits = GroupLimits {
        max_members: 3,
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 5000,
    };

    fn join(id: &str) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: JOIN_EPOCH,
            rack_id: None,
            subscribed: Some(vec!["t".into()]),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn beat(id: &str, epoch: i32) -> Heartbeat {
        Heartbeat {
            member_epoch: epoch,
            subscribed: None,
            ..join(id)
        }
    }

    fn one_partition(t: &str) -> Option<i32> {
        (t == "t").then_some(1)
    }

    #[test]
    fn joining_members_share_the_partition_and_get_the_group_epoch() {
        let mut g = ShareGroup::default();
        let (a, _) = g.heartbeat(join("a"), 0, &LIMITS, one_partition);
        let a = a.unwrap();
        assert_eq!(a.assignment, Some(BTreeSet::from([("t".to_string(), 0)])));
        let (b, _) = g.heartbeat(join("b"), 1, &LIMITS, one_partition);
        let b = b.unwrap();
        assert_eq!(b.assignment, Some(BTreeSet::from([("t".to_string(), 0)])));
        assert!(b.member_epoch > a.member_epoch);
        let (again, _) = g.heartbeat(beat("a", a.member_epoch), 2, &LIMITS, one_partition);
        let again = again.unwrap();
        assert_eq!(again.member_epoch, b.member_epoch, "a catches up with the group epoch");
        assert_eq!(again.assignment, None, "unchanged");
        assert_eq!(g.state(), "Stable");
    }

    #[test]
    fn wrong_epoch_is_fenced_and_unknown_member_refused() {
        let mut g = ShareGroup::default();
        let e = g
            .heartbeat(join("a"), 0, &LIMITS, one_partition)
            .0
            .unwrap()
            .member_epoch;
        let (r, _) = g.heartbeat(beat("a", e + 5), 1, &LIMITS, one_partition);
        assert_eq!(r.unwrap_err().kafka_error(), ResponseError::FencedMemberEpoch);
        let (r, _) = g.heartbeat(beat("x", 3), 1, &LIMITS, one_partition);
        assert_eq!(r.unwrap_err().kafka_error(), ResponseError::UnknownMemberId);
        let (r, _) = g.heartbeat(beat("", 3), 1, &LIMITS, one_partition);
        assert_eq!(r.unwrap_err().kafka_error(), ResponseError::InvalidRequest);
    }

    #[test]
    fn group_is_bounded_by_max_members() {
        let mut g = ShareGroup::default();
        for m in ["a", "b", "c"] {
            g.heartbeat(join(m), 0, &LIMITS, one_partition).0.unwrap();
        }
        let (r, _) = g.heartbeat(join("d"), 0, &LIMITS, one_partition);
        assert_eq!(r.unwrap_err().kafka_error(), ResponseError::GroupMaxSizeReached);
    }

    #[test]
    fn leaving_and_expiring_remove_members() {
        let mut g = ShareGroup::default();
        g.heartbeat(join("a"), 0, &LIMITS, one_partition).0.unwrap();
        let eb = g
            .heartbeat(join("b"), 10_000, &LIMITS, one_partition)
            .0
            .unwrap()
            .member_epoch;
        let (r, removed) = g.heartbeat(beat("b", eb), 45_000, &LIMITS, one_partition);
        assert_eq!(removed, vec!["a".to_string()], "a never heartbeat again");
        assert!(r.is_ok());
        let e = g.members["b"].member_epoch;
        let (r, removed) = g.heartbeat(
            beat("b", e).clone_with_epoch(LEAVE_EPOCH),
            45_001,
            &LIMITS,
            one_partition,
        );
        assert_eq!(r.unwrap().member_epoch, LEAVE_EPOCH);
        assert_eq!(removed, vec!["b".to_string()]);
        assert_eq!(g.state(), "Empty");
    }

    impl Heartbeat {
        fn clone_with_epoch(&self, epoch: i32) -> Heartbeat {
            Heartbeat {
                member_epoch: epoch,
                ..self.clone()
            }
        }
    }

    #[test]
    fn new_partitions_bump_the_epoch_and_reach_members() {
        let mut g = ShareGroup::default();
        let e = g
            .heartbeat(join("a"), 0, &LIMITS, one_partition)
            .0
            .unwrap()
            .member_epoch;
        let (r, _) = g.heartbeat(beat("a", e), 1, &LIMITS, |t| (t == "t").then_some(3));
        let r = r.unwrap();
        assert!(r.member_epoch > e);
        assert_eq!(r.assignment.map(|a| a.len()), Some(3));
    }
}
