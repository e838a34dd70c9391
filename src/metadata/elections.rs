//! Planning leaders and ISRs (Kafka's `PartitionChangeBuilder` and the ISR side of its
//! `ReplicationControlManager`): who leads a partition when its broker is fenced or returns,
//! and whether a leader's AlterPartition (an ISR shrink or expansion) may be committed.
//!
//! Pure functions of the image, like `topics` and `brokers`; the controller commits the
//! records they return. The rules, as Kafka's controller applies them:
//! - A leader is chosen from the ISR in replica order (keeping the current one while it stays
//!   valid), among brokers that are registered and unfenced. With no such ISR member, a topic
//!   with `unclean.leader.election.enable` takes any live replica (its ISR becomes just that
//!   one: what only the others had is lost); otherwise the partition has no leader (-1).
//! - An ISR is never written empty: the last member stays, leaderless, as the one that holds
//!   the data.
//! - A fenced broker leaves every ISR; a returning one leads only partitions left leaderless
//!   and rejoins other ISRs through their leaders' AlterPartition.

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::image::{MetadataImage, PartitionImage, TopicImage};
use super::records::MetadataRecord;

/// A leader's proposed ISR for one partition, based on the epochs it knows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct IsrChange {
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    pub(crate) isr: Vec<i32>,
}

/// What the controller made of an accepted change: the partition's state once committed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct IsrCommitted {
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    pub(crate) isr: Vec<i32>,
}

/// Whether a topic allows unclean elections (its config, or the broker default).
pub(crate) type UncleanAllowed<'a> = &'a dyn Fn(&TopicImage) -> bool;

/// A registered, unfenced broker other than `excluded`.
fn acceptable(image: &MetadataImage, id: i32, excluded: Option<i32>) -> bool {
    Some(id) != excluded && image.broker(id).is_some_and(|b| !b.fenced)
}

/// The leader and ISR a partition should have once `removed` (if any) leaves its ISR and may
/// not lead; `None` when nothing changes.
fn elect(image: &MetadataImage, p: &PartitionImage, removed: Option<i32>, unclean: bool) -> Option<(i32, Vec<i32>)> {
    let mut isr: Vec<i32> = p.isr.iter().copied().filter(|&r| Some(r) != removed).collect();
    if isr.is_empty() {
        // The last member stays: it holds the data.
        isr = p.isr.clone();
    }
    let valid = |id: i32| isr.contains(&id) && acceptable(image, id, removed);
    let leader = if p.leader >= 0 && valid(p.leader) {
        p.leader
    } else if let Some(r) = p.replicas.iter().copied().find(|&r| valid(r)) {
        r
    } else if let Some(r) = p
        .replicas
        .iter()
        .copied()
        .find(|&r| unclean && acceptable(image, r, removed))
    {
        isr = vec![r];
        r
    } else {
        -1
    };
    (leader != p.leader || isr != p.isr).then_some((leader, isr))
}

fn change(topic_id: Uuid, partition: i32, (leader, isr): (i32, Vec<i32>)) -> MetadataRecord {
    MetadataRecord::PartitionChange {
        topic_id,
        partition,
        leader,
        isr,
    }
}

/// `broker_id` is fenced (or shutting down): it leaves every ISR, and partitions it led get a
/// new leader from the rest of their ISR.
pub(crate) fn plan_remove_broker(
    image: &MetadataImage,
    broker_id: i32,
    unclean: UncleanAllowed<'_>,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (&partition, p) in &topic.partitions {
            if !p.isr.contains(&broker_id) && p.leader != broker_id {
                continue;
            }
            if let Some(elected) = elect(image, p, Some(broker_id), unclean(topic)) {
                out.push(change(topic.id, partition, elected));
            }
        }
    }
    out
}

/// Partitions without a leader get one if a live ISR member (or, where allowed, a live
/// replica) can lead: after `broker_id` returned (pass it as live in `image`).
pub(crate) fn plan_leaderless(image: &MetadataImage, unclean: UncleanAllowed<'_>) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (&partition, p) in topic.partitions.iter().filter(|(_, p)| p.leader < 0) {
            if let Some(elected) = elect(image, p, None, unclean(topic)) {
                out.push(change(topic.id, partition, elected));
            }
        }
    }
    out
}

/// Kafka's AlterPartition validation, per change: the requester must lead the partition in the
/// epochs it names, and every member it adds must be a registered, unfenced broker (KIP-841).
/// Returns the records to commit and each change's result: the state it leaves the partition
/// in (the same as before when there was nothing to change), or its error code.
pub(crate) fn plan_alter_partition(
    image: &MetadataImage,
    broker_id: i32,
    changes: &[IsrChange],
) -> (Vec<MetadataRecord>, Vec<Result<IsrCommitted, i16>>) {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(changes.len());
    for c in changes {
        match check(image, broker_id, c) {
            Ok((record, committed)) => {
                records.extend(record);
                results.push(Ok(committed));
            }
            Err(e) => results.push(Err(e.code())),
        }
    }
    (records, results)
}

fn check(
    image: &MetadataImage,
    broker_id: i32,
    c: &IsrChange,
) -> Result<(Option<MetadataRecord>, IsrCommitted), ResponseError> {
    let p = image
        .topic_by_id(&c.topic_id)
        .and_then(|t| t.partitions.get(&c.partition))
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    if c.leader_epoch > p.leader_epoch || c.partition_epoch > p.partition_epoch {
        // The requester knows a newer state than this controller: we are the stale ones.
        return Err(ResponseError::NotController);
    }
    if c.leader_epoch < p.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if p.leader != broker_id {
        return Err(ResponseError::InvalidRequest);
    }
    if c.partition_epoch < p.partition_epoch {
        return Err(ResponseError::InvalidUpdateVersion);
    }
    let mut seen = std::collections::BTreeSet::new();
    if !c.isr.contains(&broker_id) || c.isr.iter().any(|r| !p.replicas.contains(r) || !seen.insert(*r)) {
        return Err(ResponseError::InvalidRequest);
    }
    if c.isr
        .iter()
        .any(|&r| !p.isr.contains(&r) && !acceptable(image, r, None))
    {
        return Err(ResponseError::IneligibleReplica);
    }
    if c.isr == p.isr {
        let unchanged = IsrCommitted {
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: p.isr.clone(),
        };
        return Ok((None, unchanged));
    }
    // The record bumps the partition epoch (not the leader epoch: the leader stays).
    let committed = IsrCommitted {
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch + 1,
        isr: c.isr.clone(),
    };
    Ok((
        Some(change(c.topic_id, c.partition, (p.leader, c.isr.clone()))),
        committed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::brokers::plan_unfence;
    use crate::metadata::testkit::{add_topic, apply, live_brokers};

    /// Brokers 1..=3 live, one partition with replicas [1, 2, 3], leader 1, ISR all three.
    fn cluster() -> (MetadataImage, Uuid) {
        let mut image = live_brokers(&[(1, None), (2, None), (3, None)]);
        let id = add_topic(&mut image, "t", &[vec![1, 2, 3]]);
        (image, id)
    }

    fn part(image: &MetadataImage) -> PartitionImage {
        image.topic("t").unwrap().partitions[&0].clone()
    }

    fn fence(image: &mut MetadataImage, id: i32) {
        let records = crate::metadata::brokers::plan_fence(image, id, &|_| false);
        apply(image, &records);
    }

    #[test]
    fn a_fenced_leader_is_replaced_by_the_next_isr_member_in_replica_order_and_leaves_the_isr() {
        let (mut image, _) = cluster();
        fence(&mut image, 1);
        let p = part(&image);
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (2, vec![2, 3], 1));
    }

    #[test]
    fn a_fenced_follower_only_leaves_the_isr() {
        let (mut image, _) = cluster();
        fence(&mut image, 3);
        let p = part(&image);
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (1, vec![1, 2], 0));
    }

    #[test]
    fn the_last_isr_member_stays_and_the_partition_waits_for_it_leaderless() {
        let (mut image, _) = cluster();
        fence(&mut image, 3);
        fence(&mut image, 2);
        fence(&mut image, 1);
        let p = part(&image);
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![1]));
        // Broker 2 returns: not in the ISR, so it may not lead (no unclean election)...
        let records = plan_unfence(&image, 2, &|_| false);
        apply(&mut image, &records);
        assert_eq!(part(&image).leader, -1);
        // ...and broker 1, which holds the data, does.
        let records = plan_unfence(&image, 1, &|_| false);
        apply(&mut image, &records);
        let p = part(&image);
        assert_eq!((p.leader, p.isr.clone()), (1, vec![1]));
    }

    #[test]
    fn unclean_election_takes_a_live_replica_outside_the_isr_when_allowed() {
        let (mut image, _) = cluster();
        fence(&mut image, 3);
        fence(&mut image, 2);
        fence(&mut image, 1);
        let records = plan_unfence(&image, 3, &|_| true);
        apply(&mut image, &records);
        let p = part(&image);
        assert_eq!((p.leader, p.isr.clone()), (3, vec![3]));
    }

    #[test]
    fn alter_partition_checks_the_leader_the_epochs_and_the_new_members() {
        let (mut image, id) = cluster();
        fence(&mut image, 3);
        let p = part(&image);
        let change = |leader_epoch, partition_epoch, isr: Vec<i32>| IsrChange {
            topic_id: id,
            partition: 0,
            leader_epoch,
            partition_epoch,
            isr,
        };
        let code = |from: i32, c: IsrChange| plan_alter_partition(&image, from, &[c]).1[0].clone().err().unwrap_or(0);
        let (le, pe) = (p.leader_epoch, p.partition_epoch);
        assert_eq!(
            code(2, change(le, pe, vec![1])),
            ResponseError::InvalidRequest.code(),
            "not the leader"
        );
        assert_eq!(
            code(1, change(le, pe - 1, vec![1])),
            ResponseError::InvalidUpdateVersion.code()
        );
        assert_eq!(
            code(1, change(le, pe + 1, vec![1])),
            ResponseError::NotController.code()
        );
        assert_eq!(
            code(1, change(le, pe, vec![2])),
            ResponseError::InvalidRequest.code(),
            "leader not in it"
        );
        assert_eq!(
            code(1, change(le, pe, vec![1, 2, 3])),
            ResponseError::IneligibleReplica.code(),
            "3 is fenced"
        );
        let (records, results) = plan_alter_partition(&image, 1, &[change(le, pe, vec![1])]);
        let committed = IsrCommitted {
            leader_epoch: le,
            partition_epoch: pe + 1,
            isr: vec![1],
        };
        assert_eq!(results, [Ok(committed)]);
        apply(&mut image, &records);
        let after = part(&image);
        assert_eq!(
            (after.isr.clone(), after.leader_epoch, after.partition_epoch),
            (vec![1], le, pe + 1)
        );
    }
}
