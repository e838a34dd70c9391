//! The target assignment of a consumer group: which assignor runs (the members' choice, else
//! `group.consumer.assignors`' first), running it for the group epoch, and the records of what
//! changed.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::assignor::{self, MemberSpec};
use super::records::ConsumerRecord;
use super::{Assignment, ConsumerGroup};
/// The records of a new target: each member's whose target changed, then the target's epoch.
pub(super) fn target_records(
    group_id: &str,
    cg: &ConsumerGroup,
    previous: &BTreeMap<String, Assignment>,
) -> Vec<ConsumerRecord> {
    let mut out: Vec<ConsumerRecord> = cg
        .targets
        .iter()
        .filter(|(m, a)| previous.get(*m) != Some(*a))
        .map(|(m, a)| ConsumerRecord::TargetMember {
            group: group_id.to_owned(),
            member_id: m.clone(),
            partitions: Some(a.clone()),
        })
        .collect();
    out.push(ConsumerRecord::TargetMetadata {
        group: group_id.to_owned(),
        assignment_epoch: Some(cg.assignment_epoch),
    });
    out
}

/// The assignor of the next target: the one most members ask for, else the configured default
/// (Kafka's `defaultConsumerGroupAssignor` / `preferredServerAssignor`).
pub(super) fn choose_assignor(cg: &ConsumerGroup, configured: &[String]) -> String {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for m in cg.members.values() {
        if let Some(a) = m.server_assignor.as_deref() {
            *votes.entry(a).or_default() += 1;
        }
    }
    let voted = votes
        .iter()
        .rev()
        .max_by_key(|(_, n)| **n)
        .map(|(a, _)| (*a).to_owned());
    voted
        .or_else(|| configured.first().cloned())
        .unwrap_or_else(|| assignor::UNIFORM.to_owned())
}

/// A new target assignment for the group epoch; returns the previous one.
pub(super) fn compute_target(cg: &mut ConsumerGroup, configured: &[String]) -> BTreeMap<String, Assignment> {
    let name = choose_assignor(cg, configured);
    let partitions: BTreeMap<Uuid, i32> = cg
        .subscription_metadata
        .values()
        .map(|t| (t.id, t.partitions))
        .collect();
    let specs: Vec<MemberSpec<'_>> = cg
        .members
        .values()
        .map(|m| MemberSpec {
            member_id: &m.member_id,
            topics: cg
                .subscription_metadata
                .iter()
                .filter(|(name, _)| m.subscribes(name, &cg.regexes))
                .map(|(_, t)| t.id)
                .collect(),
            previous: cg.targets.get(&m.member_id),
        })
        .collect();
    let targets = assignor::assign(&name, &specs, &partitions);
    cg.assignment_epoch = cg.group_epoch;
    cg.assignor = name;
    std::mem::replace(&mut cg.targets, targets)
}
