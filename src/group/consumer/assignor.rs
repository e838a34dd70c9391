//! The server-side assignors of consumer groups, chosen by the members' `serverAssignor`
//! (`group.remote.assignor`) among `group.consumer.assignors`, the first being the default:
//! `uniform` (Kafka's UniformAssignor: balanced, sticky — a member keeps what it had as far as
//! balance allows) and `range` (Kafka's RangeAssignor: per topic, contiguous ranges of
//! partitions to the members subscribed to it in member id order, so co-partitioned topics
//! line up).
//!
//! Pure functions from the members' subscriptions, the topics and the previous target to the
//! new target. Every subscribed partition is given to exactly one subscribed member.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Assignment;

pub(crate) const UNIFORM: &str = "uniform";
pub(crate) const RANGE: &str = "range";

/// What an assignor sees of one member.
#[derive(Debug, Clone)]
pub(crate) struct MemberSpec<'a> {
    pub(crate) member_id: &'a str,
    /// Ids of the existing topics the member subscribes to.
    pub(crate) topics: BTreeSet<Uuid>,
    /// Its previous target assignment, for stickiness.
    pub(crate) previous: Option<&'a Assignment>,
}

/// The assignor's short name for a name or a Kafka class name in `group.consumer.assignors`
/// (`org.apache.kafka.coordinator.group.assignor.UniformAssignor` → `uniform`).
pub(crate) fn short_name(configured: &str) -> String {
    let last = configured.trim().rsplit('.').next().unwrap_or_default();
    let lower = last.to_ascii_lowercase();
    lower.strip_suffix("assignor").map(str::to_owned).unwrap_or(lower)
}

/// The short names of a `group.consumer.assignors` list.
pub(crate) fn configured(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(short_name)
        .collect()
}

/// Whether the core has an assignor of this name.
pub(crate) fn is_known(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// Runs assignor `name` (uniform unless `range`). `partitions`: topic id → partition count.
pub(crate) fn assign(
    name: &str,
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    if name == RANGE {
        range(members, partitions)
    } else {
        uniform(members, partitions)
    }
}

fn range(members: &[MemberSpec<'_>], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_owned(), Assignment::new()))
        .collect();
    for (topic, count) in partitions {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.member_id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_unstable();
        let n = subscribers.len() as i32;
        let (quota, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = quota + i32::from((i as i32) < extra);
            if take > 0 {
                let parts = out.entry((*member).to_owned()).or_default().entry(*topic).or_default();
                parts.extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

fn uniform(members: &[MemberSpec<'_>], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut owner: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut load = vec![0usize; members.len()];
    // Stickiness: keep what each member had, if it still subscribes and it still exists.
    for (i, m) in members.iter().enumerate() {
        for (topic, parts) in m.previous.into_iter().flatten() {
            let Some(&count) = partitions.get(topic).filter(|_| m.topics.contains(topic)) else {
                continue;
            };
            for &p in parts.iter().filter(|p| **p < count) {
                if let std::collections::btree_map::Entry::Vacant(e) = owner.entry((*topic, p)) {
                    e.insert(i);
                    load[i] += 1;
                }
            }
        }
    }
    let eligible = |topic: &Uuid| -> Vec<usize> {
        (0..members.len())
            .filter(|i| members[*i].topics.contains(topic))
            .collect()
    };
    let eligible_by_topic: BTreeMap<Uuid, Vec<usize>> = partitions.keys().map(|t| (*t, eligible(t))).collect();
    // The rest: each to the least loaded member that subscribes.
    for (topic, &count) in partitions {
        let candidates = &eligible_by_topic[topic];
        for p in 0..count {
            if owner.contains_key(&(*topic, p)) || candidates.is_empty() {
                continue;
            }
            if let Some(&i) = candidates.iter().min_by_key(|i| (load[**i], **i)) {
                owner.insert((*topic, p), i);
                load[i] += 1;
            }
        }
    }
    // Balance: move a partition from a member to an eligible one with at least two fewer, until
    // none can move. Every move lowers the sum of squared loads, so this ends; the cap is a guard.
    let mut moves_left = owner.len().saturating_mul(members.len()).max(1);
    while moves_left > 0 {
        let found = owner.iter().find_map(|(tp, &from)| {
            eligible_by_topic[&tp.0]
                .iter()
                .copied()
                .filter(|to| load[*to] + 1 < load[from])
                .min_by_key(|to| (load[*to], *to))
                .map(|to| (*tp, from, to))
        });
        let Some((tp, from, to)) = found else { break };
        owner.insert(tp, to);
        load[from] -= 1;
        load[to] += 1;
        moves_left -= 1;
    }
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_owned(), Assignment::new()))
        .collect();
    for ((topic, p), i) in owner {
        out.entry(members[i].member_id.to_owned())
            .or_default()
            .entry(topic)
            .or_default()
            .insert(p);
    }
    out
}
