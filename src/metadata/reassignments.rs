//! Planning partition reassignments (KIP-455; Kafka's `alterPartitionReassignments`,
//! `PartitionReassignmentReplicas` and `PartitionReassignmentRevert`) and listing those in
//! progress. Pure functions of the image, like `elections`, whose `ChangeBuilder` plans every
//! record, so that the rules of elections and of completing a reassignment hold here too.
//!
//! A reassignment of a partition from `current` to `target` replicas:
//! 1. writes the replicas as `target ++ removing`, with `adding = target - current` and
//!    `removing = current - target`; the leader and ISR stay;
//! 2. the brokers being added host the partition and fetch from the leader (they are replicas
//!    now), and the leader adds each to the ISR once caught up, through AlterPartition;
//! 3. completes in the first change whose ISR less `removing` holds every replica being added
//!    (at once for a reorder or a shrink): replicas become `target`, the removed leave the
//!    ISR, a removed leader is replaced, and the leader epoch goes up. Brokers no longer
//!    listed delete their copy when they apply that change.
//!
//! Cancelling reverts to `replicas - adding` with the ISR less `adding`. A new target for a
//! partition already being reassigned replaces the old one, counted from the replicas it has
//! now.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::elections::{ChangeBuilder, Election, UncleanAllowed};
use super::image::{MetadataImage, PartitionDelta, PartitionImage, TopicImage};
use super::records::MetadataRecord;

/// One partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reassignment {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// The target replicas, first the preferred leader; `None` cancels.
    pub(crate) target: Option<Vec<i32>>,
}

/// Why a partition's reassignment was refused. Mapped to Kafka codes in `crate::error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum ReassignmentError {
    #[error("the topic or partition does not exist")]
    UnknownTopicOrPartition,
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// The request did not allow a change of replication factor (KIP-860), and this is one.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("no reassignment is in progress for this partition")]
    NoReassignmentInProgress,
}

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ongoing {
    pub(crate) partition: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) adding: Vec<i32>,
    pub(crate) removing: Vec<i32>,
}

/// Plans each reassignment (or cancellation) against `image`; a partition named twice is
/// planned once. Returns the records and each request's result, in request order.
pub(crate) fn plan_reassignments(
    image: &MetadataImage,
    requests: &[Reassignment],
    allow_replication_factor_change: bool,
    unclean: UncleanAllowed<'_>,
) -> (Vec<MetadataRecord>, Vec<Result<(), ReassignmentError>>) {
    let mut records = Vec::new();
    let mut planned: HashMap<(&str, i32), Result<(), ReassignmentError>> = HashMap::new();
    let results = requests
        .iter()
        .map(|r| {
            planned
                .entry((r.topic.as_str(), r.partition))
                .or_insert_with(|| {
                    let topic = image
                        .topic(&r.topic)
                        .ok_or(ReassignmentError::UnknownTopicOrPartition)?;
                    let p = topic
                        .partitions
                        .get(&r.partition)
                        .ok_or(ReassignmentError::UnknownTopicOrPartition)?;
                    let delta = match &r.target {
                        Some(target) => reassign(image, topic, p, target, allow_replication_factor_change)?,
                        None => cancel(image, topic, r.partition, p, unclean)?,
                    };
                    let record = delta.map(|d| MetadataRecord::partition_change(topic.id, r.partition, d));
                    records.extend(record);
                    Ok(())
                })
                .clone()
        })
        .collect();
    (records, results)
}

/// Kafka's `validateManualPartitionAssignment`: not empty, registered brokers, none twice.
fn validate(image: &MetadataImage, target: &[i32]) -> Result<(), ReassignmentError> {
    let invalid = |why: String| Err(ReassignmentError::InvalidReplicaAssignment(why));
    if target.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    for (i, &b) in sorted.iter().enumerate() {
        if image.broker(b).is_none() {
            return invalid(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            ));
        }
        if i > 0 && sorted[i - 1] == b {
            return invalid(format!(
                "The manual partition assignment includes the broker {b} more than once."
            ));
        }
    }
    Ok(())
}

fn reassign(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &PartitionImage,
    target: &[i32],
    allow_replication_factor_change: bool,
) -> Result<Option<PartitionDelta>, ReassignmentError> {
    validate(image, target)?;
    let original = p.original_replicas();
    if !allow_replication_factor_change && target.len() != original.len() {
        return Err(ReassignmentError::InvalidReplicationFactor(format!(
            "The replication factor is changed from {} to {} but allowReplicationFactorChange is false.",
            original.len(),
            target.len()
        )));
    }
    let adding: Vec<i32> = target.iter().copied().filter(|r| !p.replicas.contains(r)).collect();
    let removing: Vec<i32> = p.replicas.iter().copied().filter(|r| !target.contains(r)).collect();
    let replicas: Vec<i32> = target.iter().chain(&removing).copied().collect();
    Ok(ChangeBuilder::new(image, topic, p)
        .assignment(replicas, adding, removing)
        .build())
}

fn cancel(
    image: &MetadataImage,
    topic: &TopicImage,
    partition: i32,
    p: &PartitionImage,
    unclean: UncleanAllowed<'_>,
) -> Result<Option<PartitionDelta>, ReassignmentError> {
    if !p.is_reassigning() {
        return Err(ReassignmentError::NoReassignmentInProgress);
    }
    let replicas = p.original_replicas();
    let mut isr: Vec<i32> = p.isr.iter().copied().filter(|r| !p.adding.contains(r)).collect();
    let mut election = Election::Online;
    if isr.is_empty() {
        // Only replicas being added are in sync: going back means an unclean election.
        if !unclean(topic) {
            return Err(ReassignmentError::InvalidReplicaAssignment(format!(
                "Unable to revert partition assignment for {}:{partition} because it would require an unclean leader election.",
                topic.name
            )));
        }
        isr = replicas.first().copied().into_iter().collect();
        election = Election::Unclean;
    }
    Ok(ChangeBuilder::new(image, topic, p)
        .isr(isr)
        .assignment(replicas, Vec::new(), Vec::new())
        .election(election)
        .build())
}

/// The reassignments in progress, of every partition or of those named (unknown ones are left
/// out, as Kafka leaves them); topics with none are left out.
pub(crate) fn list_reassignments(
    image: &MetadataImage,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Vec<(String, Vec<Ongoing>)> {
    let ongoing = |p: &PartitionImage, partition: i32| {
        p.is_reassigning().then(|| Ongoing {
            partition,
            replicas: p.replicas.clone(),
            adding: p.adding.clone(),
            removing: p.removing.clone(),
        })
    };
    let listed: Vec<(String, Vec<Ongoing>)> = match topics {
        None => image
            .topics()
            .map(|t| {
                let parts = t.partitions.iter().filter_map(|(&i, p)| ongoing(p, i)).collect();
                (t.name.clone(), parts)
            })
            .collect(),
        Some(named) => named
            .iter()
            .filter_map(|(name, indexes)| {
                let t = image.topic(name)?;
                let parts = indexes
                    .iter()
                    .filter_map(|i| ongoing(t.partitions.get(i)?, *i))
                    .collect();
                Some((name.clone(), parts))
            })
            .collect(),
    };
    listed.into_iter().filter(|(_, parts)| !parts.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::elections::tests::{cluster_of, fence, part};
    use crate::metadata::elections::{plan_alter_partition, IsrChange};
    use crate::metadata::testkit::apply;

    fn reassign(
        image: &MetadataImage,
        target: Option<Vec<i32>>,
    ) -> (Vec<MetadataRecord>, Result<(), ReassignmentError>) {
        let r = Reassignment {
            topic: "t".into(),
            partition: 0,
            target,
        };
        let (records, results) = plan_reassignments(image, &[r], true, &|_| false);
        (records, results[0].clone())
    }

    /// The leader's AlterPartition adding `replica` to the ISR.
    fn caught_up(image: &mut MetadataImage, replica: i32) {
        let p = part(image);
        let mut isr = p.isr.clone();
        isr.push(replica);
        let change = IsrChange {
            topic_id: image.topic("t").unwrap().id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr,
        };
        let (records, results) = plan_alter_partition(image, p.leader, &[change]);
        assert!(results[0].is_ok(), "{results:?}");
        apply(image, &records);
    }

    #[test]
    fn a_move_adds_first_and_removes_once_the_new_replica_is_in_sync() {
        let (mut image, _) = cluster_of(3, vec![1, 2]);
        let (records, result) = reassign(&image, Some(vec![2, 3]));
        assert_eq!(result, Ok(()));
        apply(&mut image, &records);
        let p = part(&image);
        assert_eq!(
            (
                p.replicas.clone(),
                p.adding.clone(),
                p.removing.clone(),
                p.isr.clone(),
                p.leader,
                p.leader_epoch
            ),
            (vec![2, 3, 1], vec![3], vec![1], vec![1, 2], 1, 0),
            "target ++ removing; the leader and its epoch stay"
        );
        assert_eq!(
            list_reassignments(&image, None),
            [(
                "t".to_string(),
                vec![Ongoing {
                    partition: 0,
                    replicas: vec![2, 3, 1],
                    adding: vec![3],
                    removing: vec![1]
                }]
            )]
        );
        // Broker 3 catches up: the same change completes the move, and the removed leader is
        // replaced by the first target replica in the ISR, at a new epoch.
        caught_up(&mut image, 3);
        let p = part(&image);
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch),
            (vec![2, 3], vec![2, 3], 2, 1)
        );
        assert!(!p.is_reassigning());
        assert!(list_reassignments(&image, None).is_empty());
    }

    #[test]
    fn removing_a_follower_bumps_the_leader_epoch_on_completion() {
        let (mut image, _) = cluster_of(4, vec![1, 2, 3]);
        let (records, _) = reassign(&image, Some(vec![1, 2, 4]));
        apply(&mut image, &records);
        caught_up(&mut image, 4);
        let p = part(&image);
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch),
            (vec![1, 2, 4], vec![1, 2, 4], 1, 1)
        );
    }

    #[test]
    fn a_reorder_or_a_shrink_completes_at_once() {
        let (image, _) = cluster_of(3, vec![1, 2, 3]);
        let (records, _) = reassign(&image, Some(vec![3, 2, 1]));
        let mut reordered = image.clone();
        apply(&mut reordered, &records);
        let p = part(&reordered);
        assert_eq!((p.replicas.clone(), p.leader, p.leader_epoch), (vec![3, 2, 1], 1, 0));
        assert!(!p.is_reassigning());
        let (records, _) = reassign(&image, Some(vec![2, 3]));
        let mut shrunk = image.clone();
        apply(&mut shrunk, &records);
        let p = part(&shrunk);
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch),
            (vec![2, 3], vec![2, 3], 2, 1)
        );
    }

    #[test]
    fn completion_waits_while_a_new_replica_is_down_and_follows_any_later_change() {
        let (mut image, _) = cluster_of(4, vec![1, 2, 3]);
        let (records, _) = reassign(&image, Some(vec![1, 2, 4]));
        apply(&mut image, &records);
        fence(&mut image, 3);
        let p = part(&image);
        assert_eq!(
            (p.isr.clone(), p.removing.clone()),
            (vec![1, 2], vec![3]),
            "still in progress"
        );
        caught_up(&mut image, 4);
        let p = part(&image);
        assert_eq!((p.replicas.clone(), p.isr.clone()), (vec![1, 2, 4], vec![1, 2, 4]));
    }

    #[test]
    fn cancel_goes_back_to_the_original_replicas() {
        let (mut image, _) = cluster_of(3, vec![1, 2]);
        let (records, _) = reassign(&image, Some(vec![2, 3]));
        apply(&mut image, &records);
        let (records, result) = reassign(&image, None);
        assert_eq!(result, Ok(()));
        apply(&mut image, &records);
        let p = part(&image);
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader),
            (vec![2, 1], vec![1, 2], 1)
        );
        assert!(!p.is_reassigning());
        let (records, result) = reassign(&image, None);
        assert!(records.is_empty());
        assert_eq!(result, Err(ReassignmentError::NoReassignmentInProgress));
    }

    #[test]
    fn invalid_targets_are_refused() {
        let (image, _) = cluster_of(3, vec![1, 2]);
        for target in [vec![], vec![1, 9], vec![2, 2]] {
            let (records, result) = reassign(&image, Some(target.clone()));
            assert!(records.is_empty());
            assert!(
                matches!(result, Err(ReassignmentError::InvalidReplicaAssignment(_))),
                "{target:?}: {result:?}"
            );
        }
        let unknown = Reassignment {
            topic: "t".into(),
            partition: 5,
            target: Some(vec![1]),
        };
        let (_, results) = plan_reassignments(&image, &[unknown], true, &|_| false);
        assert_eq!(results, [Err(ReassignmentError::UnknownTopicOrPartition)]);
        let shrink = Reassignment {
            topic: "t".into(),
            partition: 0,
            target: Some(vec![1]),
        };
        let (_, results) = plan_reassignments(&image, &[shrink], false, &|_| false);
        assert!(matches!(
            results[0],
            Err(ReassignmentError::InvalidReplicationFactor(_))
        ));
    }

    #[test]
    fn reassignment_state_survives_a_snapshot() {
        let (mut image, _) = cluster_of(3, vec![1, 2]);
        let (records, _) = reassign(&image, Some(vec![2, 3]));
        apply(&mut image, &records);
        let mut replayed = MetadataImage::default();
        for r in image.to_records() {
            replayed.apply(&r).unwrap();
        }
        assert_eq!(replayed, image);
    }

    #[test]
    fn records_written_before_reassignments_still_replay() {
        let id = uuid::Uuid::new_v4();
        let old = [
            format!(r#"{{"type":"Topic","name":"t","topic_id":"{id}","configs":{{}}}}"#),
            format!(
                r#"{{"type":"Partition","topic_id":"{id}","partition":0,"replicas":[1,2],"isr":[1,2],"leader":1,"leader_epoch":0,"partition_epoch":0}}"#
            ),
            format!(r#"{{"type":"PartitionChange","topic_id":"{id}","partition":0,"leader":2,"isr":[2]}}"#),
        ];
        let mut image = MetadataImage::default();
        for json in &old {
            let record: MetadataRecord = serde_json::from_str(json).unwrap();
            image.apply(&record).unwrap();
        }
        let p = part(&image);
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch),
            (vec![1, 2], vec![2], 2, 1)
        );
        assert!(!p.is_reassigning());
        // And a change without reassignment fields is written as before.
        let json = serde_json::to_string(&MetadataRecord::partition_change(id, 0, PartitionDelta::default())).unwrap();
        assert!(!json.contains("adding") && !json.contains("replicas"), "{json}");
    }
}
