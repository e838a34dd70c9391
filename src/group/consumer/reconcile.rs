//! One member's step towards its target assignment (Kafka's `CurrentAssignmentBuilder`):
//! partitions it must give up are revoked first, at its current epoch; only once the member
//! says it no longer owns them does it move to the target epoch and get new partitions, and
//! then only those no other member owns (the rest stay pending: UnreleasedPartitions). So a
//! partition is never owned by two members at once.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{Assignment, ConsumerMember, MemberState};

/// Moves `member` one step towards `target` of `target_epoch`. `owned` is what the member said
/// it owns in this heartbeat (None: not sent, unchanged); `owners` who else owns what.
pub(super) fn reconcile(
    member: &mut ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owners: &BTreeSet<(Uuid, i32)>,
    owned: Option<&Assignment>,
) {
    match member.state {
        MemberState::Stable if member.member_epoch == target_epoch => {}
        MemberState::UnrevokedPartitions => {
            let still_owned = owned.is_none_or(|owned| intersects(owned, &member.revoking));
            if !still_owned {
                member.revoking.clear();
                next_assignment(member, target_epoch, target, owners);
            }
        }
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            next_assignment(member, target_epoch, target, owners)
        }
    }
}

fn next_assignment(
    member: &mut ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owners: &BTreeSet<(Uuid, i32)>,
) {
    let kept = intersection(&member.assigned, target);
    let revoke = difference(&member.assigned, target);
    if !revoke.is_empty() {
        member.assigned = kept;
        member.revoking = revoke;
        member.state = MemberState::UnrevokedPartitions;
        return;
    }
    let mut assigned = kept;
    let mut unreleased = false;
    for (topic, parts) in difference(target, &member.assigned) {
        for p in parts {
            if owners.contains(&(topic, p)) {
                unreleased = true;
            } else {
                assigned.entry(topic).or_default().insert(p);
            }
        }
    }
    member.assigned = assigned;
    member.revoking.clear();
    if member.member_epoch != target_epoch {
        member.previous_member_epoch = member.member_epoch;
        member.member_epoch = target_epoch;
    }
    member.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .any(|(t, ps)| b.get(t).is_some_and(|other| ps.iter().any(|p| other.contains(p))))
}

pub(super) fn intersection(a: &Assignment, b: &Assignment) -> Assignment {
    a.iter()
        .filter_map(|(t, ps)| {
            let other = b.get(t)?;
            let both: std::collections::BTreeSet<i32> = ps.intersection(other).copied().collect();
            (!both.is_empty()).then_some((*t, both))
        })
        .collect()
}

pub(super) fn difference(a: &Assignment, b: &Assignment) -> Assignment {
    a.iter()
        .filter_map(|(t, ps)| {
            let rest: std::collections::BTreeSet<i32> = match b.get(t) {
                Some(other) => ps.difference(other).copied().collect(),
                None => ps.clone(),
            };
            (!rest.is_empty()).then_some((*t, rest))
        })
        .collect()
}

/// Whether every partition of `a` is in `b`.
pub(super) fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    difference(a, b).is_empty()
}
