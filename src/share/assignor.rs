//! The share-group assignor KIP-932 names `simple`: many members may share a partition. Rules,
//! as Kafka's SimpleAssignor applies them: (1) each member is placed on one of its subscribed
//! partitions by the hash of its member id; (2) partitions that got nobody in (1) and had
//! nobody before are dealt round-robin to the members subscribed to their topic; (3) the
//! previous assignment is kept where its member is still subscribed, and (1)-(2) are added.
//!
//! Pure: no clock, no I/O; deterministic for a given input (members and topics are ordered).

use std::collections::{BTreeMap, BTreeSet};

use crate::coordinator::java_string_hash as java_hash;

/// A topic partition, named by topic name (ids are resolved by the caller).
pub(crate) type TopicPartition = (String, i32);

/// Member id -> the partitions it is assigned.
pub(crate) type Assignment = BTreeMap<String, BTreeSet<TopicPartition>>;

/// Computes the new target assignment. `subscriptions`: member -> topics; `partitions`:
/// topic -> partition count (topics missing there do not exist and get nobody); `current`:
/// the previous target assignment.
pub(crate) fn assign(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    partitions: &BTreeMap<String, i32>,
    current: &Assignment,
) -> Assignment {
    let targets = |topics: &BTreeSet<String>| -> Vec<TopicPartition> {
        topics
            .iter()
            .filter_map(|t| partitions.get(t).map(|n| (t, *n)))
            .flat_map(|(t, n)| (0..n).map(move |p| (t.clone(), p)))
            .collect()
    };
    let mut fresh: BTreeMap<TopicPartition, Vec<String>> = BTreeMap::new();
    // (1) hash each member onto one of its partitions.
    for (member, topics) in subscriptions {
        let mine = targets(topics);
        if !mine.is_empty() {
            let i = (java_hash(member) % mine.len() as i32).unsigned_abs() as usize;
            fresh.entry(mine[i].clone()).or_default().push(member.clone());
        }
    }
    // (2) partitions nobody holds, round-robin over the topic's subscribers.
    // Only members still in the group hold anything.
    let held: BTreeSet<&TopicPartition> = current
        .iter()
        .filter(|(m, _)| subscriptions.contains_key(*m))
        .flat_map(|(_, tps)| tps)
        .collect();
    let all: BTreeSet<TopicPartition> = subscriptions.values().flat_map(&targets).collect();
    let mut by_topic: BTreeMap<&str, Vec<&TopicPartition>> = BTreeMap::new();
    for tp in all.iter().filter(|tp| !fresh.contains_key(*tp) && !held.contains(tp)) {
        by_topic.entry(tp.0.as_str()).or_default().push(tp);
    }
    for (topic, tps) in by_topic {
        let subscribers: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        for (i, tp) in tps.into_iter().enumerate() {
            fresh
                .entry(tp.clone())
                .or_default()
                .push(subscribers[i % subscribers.len()].clone());
        }
    }
    // (3) keep what members still subscribed to still have, add the fresh placements.
    let mut out: Assignment = subscriptions.keys().map(|m| (m.clone(), BTreeSet::new())).collect();
    for (member, tps) in current {
        let Some(topics) = subscriptions.get(member) else {
            continue;
        };
        let kept = tps
            .iter()
            .filter(|(t, p)| topics.contains(t) && partitions.get(t).is_some_and(|n| p < n));
        out.entry(member.clone()).or_default().extend(kept.cloned());
    }
    for (tp, members) in fresh {
        for m in members {
            out.entry(m).or_default().insert(tp.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        members
            .iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn topics(ts: &[(&str, i32)]) -> BTreeMap<String, i32> {
        ts.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn more_members_than_partitions_share_them() {
        let s = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let out = assign(&s, &topics(&[("t", 1)]), &Assignment::new());
        for m in ["a", "b", "c"] {
            assert_eq!(out[m], BTreeSet::from([("t".to_string(), 0)]), "{m}");
        }
    }

    #[test]
    fn every_partition_gets_a_member() {
        let s = subs(&[("a", &["t"]), ("b", &["t"])]);
        let out = assign(&s, &topics(&[("t", 6)]), &Assignment::new());
        let covered: BTreeSet<_> = out.values().flatten().cloned().collect();
        assert_eq!(covered.len(), 6);
    }

    #[test]
    fn a_member_that_left_loses_its_partitions_to_the_others_and_missing_topics_get_nobody() {
        let s = subs(&[("a", &["t", "gone"]), ("b", &["t"])]);
        let first = assign(&s, &topics(&[("t", 4)]), &Assignment::new());
        let s2 = subs(&[("b", &["t"])]);
        let second = assign(&s2, &topics(&[("t", 4)]), &first);
        assert_eq!(second.len(), 1);
        assert!(second["b"].iter().all(|(t, _)| t == "t"));
        assert_eq!(second["b"].len(), 4, "a's partitions go to b");
    }
}
