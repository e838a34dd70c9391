//! Planning leaders, ISRs and replica assignments (Kafka's `PartitionChangeBuilder` and the
//! election side of its `ReplicationControlManager`): who leads a partition when its broker is
//! fenced or returns, whether a leader's AlterPartition (an ISR shrink or expansion) may be
//! committed, preferred and unclean elections (ElectLeaders, auto leader rebalance), and when
//! a reassignment completes.
//!
//! Pure functions of the image, like `topics` and `brokers`; the controller commits the
//! records they return. Every change of a partition goes through [`ChangeBuilder`], as every
//! change in Kafka goes through its builder, so the rules hold whatever caused the change:
//! - A reassignment in progress (`adding`/`removing` set, see `reassignments`) completes in the
//!   first change whose ISR, less the replicas being removed, is not empty and holds every
//!   replica being added: the replicas become the target, the removed ones leave the ISR, and
//!   the leader epoch goes up (the image bumps it whenever a replica leaves the replica set).
//! - A leader is chosen from the ISR in replica order (keeping the current one while it stays
//!   valid), among brokers that are registered and unfenced. With no such ISR member, a topic
//!   with `unclean.leader.election.enable` (or an UNCLEAN ElectLeaders) takes any live replica
//!   (its ISR becomes just that one: what only the others had is lost); otherwise the
//!   partition has no leader (-1).
//! - A preferred election makes the first replica the leader if it is a valid one; otherwise
//!   it keeps a valid leader. It never elects uncleanly.
//! - Eligible leader replicas (KIP-966, as Kafka 4.1+ keeps them by default): while the ISR
//!   is below the topic's `min.insync.replicas` (capped by the replication factor), members
//!   leaving it become eligible leader replicas (ELR), since the high watermark could not
//!   advance without them; at or above min ISR the ELR is empty. The ISR may become empty;
//!   then a live ELR member, in replica order, leads and becomes the ISR. A broker that
//!   restarts without a clean shutdown (`Registration::previous_incarnation`) leaves every
//!   ELR: it may have lost unflushed records. When nobody is in sync or eligible, the leader
//!   of when the ISR emptied (the last known ELR) may lead again once live, as an unclean
//!   election. A change of `min.insync.replicas` clears the ELRs it counted against.
//! - A fenced broker leaves every ISR; a returning one leads only partitions left leaderless
//!   and rejoins other ISRs through their leaders' AlterPartition.

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::image::{MetadataImage, PartitionDelta, PartitionImage, TopicImage};
use super::records::MetadataRecord;

/// A leader's proposed ISR for one partition, based on the epochs it knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IsrChange {
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    pub(crate) isr: Vec<i32>,
}

/// What the controller made of an accepted change: the partition's state once committed.
/// When the change completed a reassignment the leader epoch may be a new one, which the
/// requesting leader does not take as an answer: it waits for the metadata instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IsrCommitted {
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    pub(crate) isr: Vec<i32>,
}

/// Whether a topic allows unclean elections (its config, or the broker default).
pub(crate) type UncleanAllowed<'a> = &'a dyn Fn(&TopicImage) -> bool;

/// The leader an election looks for (Kafka's `PartitionChangeBuilder.Election`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Election {
    /// Keep a valid leader, else the first valid ISR member in replica order.
    Online,
    /// As `Online`, else the first live replica, whose ISR becomes just itself.
    Unclean,
    /// The first replica if it is a valid leader, else as `Online` (never unclean).
    Preferred,
}

impl Election {
    fn for_topic(topic: &TopicImage, unclean: UncleanAllowed<'_>) -> Election {
        if unclean(topic) {
            Election::Unclean
        } else {
            Election::Online
        }
    }
}

/// The election an ElectLeaders request asks for (its `ElectionType`: 0 preferred, 1 unclean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ElectionType {
    Preferred,
    Unclean,
}

/// Why ElectLeaders elected no new leader for a partition. Mapped to Kafka codes in
/// `crate::error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum ElectionError {
    #[error("the topic or partition does not exist")]
    UnknownTopicOrPartition,
    /// Preferred: the first replica already leads; unclean: the partition has a leader.
    #[error("the partition already has the leader this election would give it")]
    ElectionNotNeeded,
    #[error("the preferred replica is not in the ISR or not a live broker")]
    PreferredLeaderNotAvailable,
    #[error("no live replica can lead the partition")]
    EligibleLeadersNotAvailable,
}

/// ElectLeaders' answer for one topic: each partition's outcome.
pub(crate) type TopicElections = (String, Vec<(i32, Result<(), ElectionError>)>);

/// A registered, unfenced broker other than `excluded`.
fn acceptable(image: &MetadataImage, id: i32, excluded: Option<i32>) -> bool {
    Some(id) != excluded && image.broker(id).is_some_and(|b| !b.fenced)
}

/// One partition's change, planned as Kafka's `PartitionChangeBuilder` plans it: a target ISR
/// and replica assignment, and an election for when the leader is not a valid one (or, for a
/// preferred election, not the first replica). `build` completes a reassignment the target ISR
/// allows, tracks the eligible leader replicas, elects, and returns the record's fields if
/// anything changed.
#[derive(Debug)]
pub(super) struct ChangeBuilder<'a> {
    image: &'a MetadataImage,
    p: &'a PartitionImage,
    /// The topic's `min.insync.replicas`, capped by its replication factor.
    min_isr: usize,
    /// A broker being fenced: out of the target ISR, and never an acceptable leader.
    excluded: Option<i32>,
    /// A broker that restarted without a clean shutdown: it may have lost unflushed records,
    /// so it leaves the ELR too.
    unclean_shutdown: Option<i32>,
    election: Election,
    isr: Vec<i32>,
    replicas: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
    elr: Vec<i32>,
}

impl<'a> ChangeBuilder<'a> {
    pub(super) fn new(image: &'a MetadataImage, topic: &TopicImage, p: &'a PartitionImage) -> ChangeBuilder<'a> {
        ChangeBuilder {
            image,
            p,
            min_isr: image.min_isr(topic, p.replicas.len() - p.removing.len()),
            excluded: None,
            unclean_shutdown: None,
            election: Election::Online,
            isr: p.isr.clone(),
            replicas: p.replicas.clone(),
            adding: p.adding.clone(),
            removing: p.removing.clone(),
            elr: p.elr.clone(),
        }
    }

    pub(super) fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// `broker` leaves the ISR and may not lead.
    pub(super) fn excluding(mut self, broker: i32) -> Self {
        self.excluded = Some(broker);
        self.isr.retain(|&r| r != broker);
        self
    }

    /// `broker` restarted uncleanly: it leaves the ISR and the ELR.
    pub(super) fn unclean_shutdown(mut self, broker: i32) -> Self {
        self.unclean_shutdown = Some(broker);
        self.excluding(broker)
    }

    pub(super) fn isr(mut self, isr: Vec<i32>) -> Self {
        self.isr = isr;
        self
    }

    pub(super) fn assignment(mut self, replicas: Vec<i32>, adding: Vec<i32>, removing: Vec<i32>) -> Self {
        self.replicas = replicas;
        self.adding = adding;
        self.removing = removing;
        self
    }

    /// The change, or `None` when the partition would stay as it is.
    pub(super) fn build(mut self) -> Option<PartitionDelta> {
        self.complete_reassignment();
        self.populate_elr();
        let (leader, unclean) = self.elect();
        let p = self.p;
        let mut last_known_elr = p.last_known_elr.clone();
        if unclean {
            // What the others had beyond the new leader is gone: nobody else is eligible.
            self.elr.clear();
            last_known_elr.clear();
        }
        if self.isr.is_empty() && !p.isr.is_empty() {
            // Kafka's `maybeUpdateLastKnownLeader`: remember who led when the ISR emptied.
            let last = if p.leader >= 0 {
                Some(p.leader)
            } else {
                p.isr.first().copied()
            };
            last_known_elr = last.into_iter().collect();
        } else if leader >= 0 {
            last_known_elr.clear();
        }
        let target = PartitionImage {
            replicas: self.replicas,
            isr: self.isr,
            leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            adding: self.adding,
            removing: self.removing,
            elr: self.elr,
            last_known_elr,
        };
        (target != *p).then(|| p.delta_to(&target))
    }

    /// Kafka's `maybeCompleteReassignment`: once the ISR less the replicas being removed is not
    /// empty and holds every replica being added, the target assignment takes over.
    fn complete_reassignment(&mut self) {
        if self.adding.is_empty() && self.removing.is_empty() {
            return;
        }
        let removing = &self.removing;
        let isr: Vec<i32> = self.isr.iter().copied().filter(|r| !removing.contains(r)).collect();
        if isr.is_empty() || !self.adding.iter().all(|r| isr.contains(r)) {
            return;
        }
        self.replicas.retain(|r| !removing.contains(r));
        self.elr.retain(|r| !removing.contains(r));
        self.isr = isr;
        self.adding.clear();
        self.removing.clear();
    }

    /// Kafka's `maybePopulateTargetElr`: an ISR at or above min ISR needs no eligible leaders;
    /// below it, the members leaving the ISR (and the eligible ones still out of it) are
    /// eligible, because the high watermark could not move without them: each holds every
    /// committed record. One that restarted uncleanly is not.
    fn populate_elr(&mut self) {
        if self.isr.len() >= self.min_isr {
            self.elr.clear();
            return;
        }
        let mut elr = self.elr.clone();
        for &r in &self.p.isr {
            if !elr.contains(&r) {
                elr.push(r);
            }
        }
        elr.retain(|r| !self.isr.contains(r) && Some(*r) != self.unclean_shutdown && self.replicas.contains(r));
        self.elr = elr;
    }

    /// Kafka's `isValidNewLeader`: in the target ISR, or in the ELR when the ISR is empty; and
    /// a registered, unfenced broker.
    fn valid(&self, id: i32) -> bool {
        let in_sync = self.isr.contains(&id) || (self.isr.is_empty() && self.elr.contains(&id));
        in_sync && acceptable(self.image, id, self.excluded)
    }

    /// The leader after the change, and whether it was elected uncleanly. An eligible leader
    /// replica elected from an empty ISR becomes the ISR; an unclean one, too.
    fn elect(&mut self) -> (i32, bool) {
        let leader = self.choose();
        match leader {
            Chosen::Clean(r) if !self.isr.contains(&r) => {
                self.isr = vec![r];
                self.elr.retain(|&e| e != r);
                (r, false)
            }
            Chosen::Clean(r) => (r, false),
            Chosen::Unclean(r) => {
                self.isr = vec![r];
                (r, true)
            }
            Chosen::None => (-1, false),
        }
    }

    fn choose(&self) -> Chosen {
        let current = self.p.leader;
        let first = self.replicas.first().copied();
        let keep = current >= 0 && self.valid(current);
        if keep && (self.election != Election::Preferred || first == Some(current)) {
            return Chosen::Clean(current);
        }
        if self.election == Election::Preferred {
            if let Some(r) = first.filter(|&r| self.valid(r)) {
                return Chosen::Clean(r);
            }
        }
        if keep {
            return Chosen::Clean(current);
        }
        if let Some(r) = self.replicas.iter().copied().find(|&r| self.valid(r)) {
            return Chosen::Clean(r);
        }
        if self.election == Election::Preferred {
            return Chosen::None;
        }
        // Kafka's `canElectLastKnownLeader`: nobody in sync or eligible is left; the leader of
        // when the ISR emptied, back and live, takes over (an unclean election: it may have
        // lost unflushed records, but it is the best copy there is).
        if let [last] = self.p.last_known_elr[..] {
            if self.isr.is_empty() && self.elr.is_empty() && acceptable(self.image, last, self.excluded) {
                return Chosen::Unclean(last);
            }
        }
        if self.election == Election::Unclean {
            let live = self
                .replicas
                .iter()
                .copied()
                .find(|&r| acceptable(self.image, r, self.excluded));
            if let Some(r) = live {
                return Chosen::Unclean(r);
            }
        }
        Chosen::None
    }
}

/// An election's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chosen {
    Clean(i32),
    Unclean(i32),
    None,
}

fn change(topic_id: Uuid, partition: i32, delta: PartitionDelta) -> MetadataRecord {
    MetadataRecord::partition_change(topic_id, partition, delta)
}

/// `broker_id` is fenced (or shutting down): it leaves every ISR, and partitions it led get a
/// new leader from the rest of their ISR. After an unclean shutdown (a restart that may have
/// lost unflushed records) it leaves every ELR too.
pub(crate) fn plan_remove_broker(
    image: &MetadataImage,
    broker_id: i32,
    unclean: UncleanAllowed<'_>,
    unclean_shutdown: bool,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (&partition, p) in &topic.partitions {
            let in_elr = unclean_shutdown && (p.elr.contains(&broker_id) || p.last_known_elr.contains(&broker_id));
            if !p.isr.contains(&broker_id) && p.leader != broker_id && !in_elr {
                continue;
            }
            let builder = ChangeBuilder::new(image, topic, p);
            let builder = if unclean_shutdown {
                builder.unclean_shutdown(broker_id)
            } else {
                builder.excluding(broker_id)
            };
            let planned = builder.election(Election::for_topic(topic, unclean)).build();
            out.extend(planned.map(|d| change(topic.id, partition, d)));
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
            let planned = ChangeBuilder::new(image, topic, p)
                .election(Election::for_topic(topic, unclean))
                .build();
            out.extend(planned.map(|d| change(topic.id, partition, d)));
        }
    }
    out
}

/// Kafka's `electLeader` for one partition: the record, or why there is none.
fn elect_one(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &PartitionImage,
    kind: ElectionType,
) -> Result<PartitionDelta, ElectionError> {
    let (needed, election, unavailable) = match kind {
        ElectionType::Preferred => (
            p.replicas.first() != Some(&p.leader),
            Election::Preferred,
            ElectionError::PreferredLeaderNotAvailable,
        ),
        ElectionType::Unclean => (
            p.leader < 0,
            Election::Unclean,
            ElectionError::EligibleLeadersNotAvailable,
        ),
    };
    if !needed {
        return Err(ElectionError::ElectionNotNeeded);
    }
    ChangeBuilder::new(image, topic, p)
        .election(election)
        .build()
        .ok_or(unavailable)
}

/// ElectLeaders (KIP-460): a preferred or unclean election on the partitions named, or on every
/// partition when `partitions` is `None` (whose answer then leaves out the partitions that
/// needed none, as Kafka's does). A partition named twice is planned once.
pub(crate) fn plan_elect_leaders(
    image: &MetadataImage,
    kind: ElectionType,
    partitions: Option<&[(String, Vec<i32>)]>,
) -> (Vec<MetadataRecord>, Vec<TopicElections>) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let Some(requested) = partitions else {
        for topic in image.topics() {
            let mut outcomes = Vec::new();
            for (&partition, p) in &topic.partitions {
                match elect_one(image, topic, p, kind) {
                    Ok(delta) => {
                        records.push(change(topic.id, partition, delta));
                        outcomes.push((partition, Ok(())));
                    }
                    Err(ElectionError::ElectionNotNeeded) => {}
                    Err(e) => outcomes.push((partition, Err(e))),
                }
            }
            results.push((topic.name.clone(), outcomes));
        }
        return (records, results);
    };
    let mut planned: HashMap<(&str, i32), Result<(), ElectionError>> = HashMap::new();
    for (name, indexes) in requested {
        let topic = image.topic(name);
        let mut outcomes = Vec::new();
        for &partition in indexes {
            let outcome = planned.entry((name.as_str(), partition)).or_insert_with(|| {
                let (topic, p) = topic
                    .and_then(|t| Some((t, t.partitions.get(&partition)?)))
                    .ok_or(ElectionError::UnknownTopicOrPartition)?;
                let delta = elect_one(image, topic, p, kind)?;
                records.push(change(topic.id, partition, delta));
                Ok(())
            });
            outcomes.push((partition, outcome.clone()));
        }
        results.push((name.clone(), outcomes));
    }
    (records, results)
}

/// Kafka's auto leader rebalance (`maybeBalancePartitionLeaders`): a preferred election on
/// each partition whose leader is not its first replica, at most `max` elections a run.
/// Returns the records and whether the cap was hit (run again at once, as Kafka does).
pub(crate) fn plan_preferred_leaders(image: &MetadataImage, max: usize) -> (Vec<MetadataRecord>, bool) {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (&partition, p) in &topic.partitions {
            if p.replicas.first() == Some(&p.leader) {
                continue;
            }
            if out.len() >= max {
                return (out, true);
            }
            let planned = ChangeBuilder::new(image, topic, p)
                .election(Election::Preferred)
                .build();
            out.extend(planned.map(|d| change(topic.id, partition, d)));
        }
    }
    (out, false)
}

/// Kafka's AlterPartition validation, per change: the requester must lead the partition in the
/// epochs it names, and every member it adds must be a registered, unfenced broker (KIP-841).
/// Returns the records to commit and each change's result: the state it leaves the partition
/// in (the same as before when there was nothing to change), or its error code. A change may
/// complete a reassignment in progress (see the module doc).
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
    let (topic, p) = image
        .topic_by_id(&c.topic_id)
        .and_then(|t| Some((t, t.partitions.get(&c.partition)?)))
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
    // The partition epoch goes up; the leader epoch only if a completed reassignment removed
    // replicas or the leader.
    let planned = ChangeBuilder::new(image, topic, p).isr(c.isr.clone()).build();
    let after = planned.as_ref().map_or_else(|| p.clone(), |d| p.changed(d));
    let committed = IsrCommitted {
        leader_epoch: after.leader_epoch,
        partition_epoch: after.partition_epoch,
        isr: after.isr,
    };
    Ok((planned.map(|d| change(c.topic_id, c.partition, d)), committed))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::metadata::brokers::plan_unfence;
    use crate::metadata::testkit::{add_topic, apply, live_brokers};

    /// Brokers 1..=`brokers` live, and topic "t" with one partition: `replicas`, all in the
    /// ISR, led by the first.
    pub(in crate::metadata) fn cluster_of(brokers: i32, replicas: Vec<i32>) -> (MetadataImage, Uuid) {
        let ids: Vec<(i32, Option<&str>)> = (1..=brokers).map(|id| (id, None)).collect();
        let mut image = live_brokers(&ids);
        let id = add_topic(&mut image, "t", &[replicas]);
        (image, id)
    }

    /// Brokers 1..=3 live, one partition with replicas [1, 2, 3], leader 1, ISR all three.
    fn cluster() -> (MetadataImage, Uuid) {
        cluster_of(3, vec![1, 2, 3])
    }

    pub(in crate::metadata) fn part(image: &MetadataImage) -> PartitionImage {
        image.topic("t").unwrap().partitions[&0].clone()
    }

    pub(in crate::metadata) fn fence(image: &mut MetadataImage, id: i32) {
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
    fn the_last_isr_member_becomes_an_eligible_leader_and_the_partition_waits_for_it() {
        let (mut image, _) = cluster();
        fence(&mut image, 3);
        fence(&mut image, 2);
        fence(&mut image, 1);
        let p = part(&image);
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![]));
        assert_eq!((p.elr.clone(), p.last_known_elr.clone()), (vec![1], vec![1]));
        // Broker 2 returns: neither in the ISR nor eligible, so it may not lead...
        let records = plan_unfence(&image, 2, &|_| false);
        apply(&mut image, &records);
        assert_eq!(part(&image).leader, -1);
        // ...and broker 1, which holds the data, does.
        let records = plan_unfence(&image, 1, &|_| false);
        apply(&mut image, &records);
        let p = part(&image);
        assert_eq!((p.leader, p.isr.clone(), p.elr.clone()), (1, vec![1], vec![]));
        assert!(p.last_known_elr.is_empty());
    }

    /// Brokers 1..=3, "t" with replicas [1, 2, 3] and the cluster's min.insync.replicas 2.
    fn min_isr_two() -> MetadataImage {
        let (mut image, _) = cluster();
        let min_isr = MetadataRecord::ClusterConfig {
            name: "min.insync.replicas".into(),
            value: Some("2".into()),
        };
        apply(&mut image, &[min_isr]);
        image
    }

    fn state(image: &MetadataImage) -> (i32, Vec<i32>, Vec<i32>, Vec<i32>) {
        let p = part(image);
        (p.leader, p.isr, p.elr, p.last_known_elr)
    }

    fn register(image: &mut MetadataImage, id: i32, clean: bool) {
        let mut r = crate::metadata::testkit::registration(id, None);
        r.previous_incarnation = clean.then(|| image.broker(id).unwrap().incarnation_id);
        let records = crate::metadata::brokers::plan_register(image, &r, &|_| false);
        apply(image, &records);
    }

    #[test]
    fn members_leaving_an_isr_below_min_isr_become_eligible_leaders() {
        let mut image = min_isr_two();
        fence(&mut image, 3);
        assert_eq!(
            state(&image),
            (1, vec![1, 2], vec![], vec![]),
            "at min ISR: nobody eligible"
        );
        fence(&mut image, 2);
        assert_eq!(state(&image), (1, vec![1], vec![2], vec![]));
        fence(&mut image, 1);
        assert_eq!(state(&image), (-1, vec![], vec![2, 1], vec![1]));
        // Broker 3 left while the ISR was at min ISR: it may lack committed records.
        unfence(&mut image, 3);
        assert_eq!(state(&image).0, -1);
        // A clean eligible replica leads and is the ISR; the other stays eligible.
        unfence(&mut image, 2);
        assert_eq!(state(&image), (2, vec![2], vec![1], vec![]));
        // Back at min ISR: the ELR is cleared.
        let p = part(&image);
        let id = image.topic("t").unwrap().id;
        let grow = IsrChange {
            topic_id: id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: vec![2, 3],
        };
        let (records, results) = plan_alter_partition(&image, 2, &[grow]);
        assert!(results[0].is_ok());
        apply(&mut image, &records);
        assert_eq!(state(&image), (2, vec![2, 3], vec![], vec![]));
    }

    #[test]
    fn an_unclean_restart_leaves_the_elr_and_the_last_known_leader_recovers_the_partition() {
        let mut image = min_isr_two();
        for id in [3, 2, 1] {
            fence(&mut image, id);
        }
        assert_eq!(state(&image), (-1, vec![], vec![2, 1], vec![1]));
        // Broker 2 restarts without its clean-shutdown marker: no longer eligible.
        register(&mut image, 2, false);
        unfence(&mut image, 2);
        assert_eq!(state(&image), (-1, vec![], vec![1], vec![1]));
        // Broker 1 too: nobody in sync or eligible; the last leader takes over, uncleanly.
        register(&mut image, 1, false);
        assert_eq!(state(&image), (-1, vec![], vec![], vec![1]));
        unfence(&mut image, 1);
        assert_eq!(state(&image), (1, vec![1], vec![], vec![]));
    }

    #[test]
    fn a_clean_restart_keeps_the_broker_eligible() {
        let mut image = min_isr_two();
        for id in [3, 2, 1] {
            fence(&mut image, id);
        }
        register(&mut image, 2, true);
        assert_eq!(state(&image), (-1, vec![], vec![2, 1], vec![1]));
        unfence(&mut image, 2);
        assert_eq!(state(&image), (2, vec![2], vec![1], vec![]));
    }

    #[test]
    fn a_min_isr_change_clears_the_eligible_replicas() {
        let mut image = min_isr_two();
        fence(&mut image, 3);
        fence(&mut image, 2);
        let before = part(&image).partition_epoch;
        apply(&mut image, &[MetadataRecord::ClearElr { topic_id: None }]);
        let p = part(&image);
        assert_eq!((p.elr.clone(), p.partition_epoch), (vec![], before + 1));
        // Nothing to clear: the partition epoch stays.
        apply(&mut image, &[MetadataRecord::ClearElr { topic_id: None }]);
        assert_eq!(part(&image).partition_epoch, before + 1);
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

    fn unfence(image: &mut MetadataImage, id: i32) {
        let records = plan_unfence(image, id, &|_| false);
        apply(image, &records);
    }

    fn elect(
        image: &MetadataImage,
        kind: ElectionType,
        partitions: &[i32],
    ) -> (Vec<MetadataRecord>, Vec<TopicElections>) {
        let named = [("t".to_string(), partitions.to_vec())];
        plan_elect_leaders(image, kind, Some(&named))
    }

    fn outcome(results: &[TopicElections]) -> Result<(), ElectionError> {
        results[0].1[0].1.clone()
    }

    #[test]
    fn preferred_election_after_a_failover_gives_leadership_back_to_the_first_replica() {
        let (mut image, _) = cluster();
        fence(&mut image, 1);
        unfence(&mut image, 1);
        assert_eq!(
            part(&image).leader,
            2,
            "a returning broker does not take its leadership back by itself"
        );
        // Back in the ISR through the leader's AlterPartition.
        let p = part(&image);
        let rejoin = IsrChange {
            topic_id: image.topic("t").unwrap().id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: vec![2, 3, 1],
        };
        let (records, _) = plan_alter_partition(&image, 2, &[rejoin]);
        apply(&mut image, &records);
        let (records, results) = elect(&image, ElectionType::Preferred, &[0]);
        assert_eq!(outcome(&results), Ok(()));
        apply(&mut image, &records);
        let p = part(&image);
        assert_eq!((p.leader, p.leader_epoch, p.isr), (1, 2, vec![2, 3, 1]));
        // Done: a second election is not needed.
        let (records, results) = elect(&image, ElectionType::Preferred, &[0]);
        assert!(records.is_empty());
        assert_eq!(outcome(&results), Err(ElectionError::ElectionNotNeeded));
    }

    #[test]
    fn preferred_election_refused_while_the_first_replica_is_out_of_the_isr() {
        let (mut image, _) = cluster();
        fence(&mut image, 1);
        unfence(&mut image, 1);
        let (records, results) = elect(&image, ElectionType::Preferred, &[0]);
        assert!(records.is_empty());
        assert_eq!(outcome(&results), Err(ElectionError::PreferredLeaderNotAvailable));
        fence(&mut image, 1);
        let (_, results) = elect(&image, ElectionType::Preferred, &[0]);
        assert_eq!(
            outcome(&results),
            Err(ElectionError::PreferredLeaderNotAvailable),
            "fenced"
        );
    }

    #[test]
    fn unclean_election_needs_a_leaderless_partition_and_a_live_replica() {
        let (mut image, _) = cluster();
        let (_, results) = elect(&image, ElectionType::Unclean, &[0]);
        assert_eq!(
            outcome(&results),
            Err(ElectionError::ElectionNotNeeded),
            "it has a leader"
        );
        fence(&mut image, 3);
        fence(&mut image, 2);
        fence(&mut image, 1);
        let (_, results) = elect(&image, ElectionType::Unclean, &[0]);
        assert_eq!(
            outcome(&results),
            Err(ElectionError::EligibleLeadersNotAvailable),
            "no live replica"
        );
        // Broker 3 returns; the topic does not allow unclean elections, so it stays leaderless...
        unfence(&mut image, 3);
        assert_eq!(part(&image).leader, -1);
        // ...until an operator asks for one: broker 3 leads, alone in the ISR.
        let (records, results) = elect(&image, ElectionType::Unclean, &[0]);
        assert_eq!(outcome(&results), Ok(()));
        apply(&mut image, &records);
        let p = part(&image);
        assert_eq!((p.leader, p.isr), (3, vec![3]));
    }

    #[test]
    fn election_of_an_unknown_partition_or_topic_is_refused() {
        let (image, _) = cluster();
        let (_, results) = elect(&image, ElectionType::Preferred, &[7]);
        assert_eq!(outcome(&results), Err(ElectionError::UnknownTopicOrPartition));
        let named = [("nope".to_string(), vec![0])];
        let (_, results) = plan_elect_leaders(&image, ElectionType::Preferred, Some(&named));
        assert_eq!(outcome(&results), Err(ElectionError::UnknownTopicOrPartition));
    }

    #[test]
    fn election_of_all_partitions_leaves_out_those_that_need_none() {
        let (mut image, id) = cluster();
        let second = MetadataRecord::Partition {
            topic_id: id,
            partition: 1,
            replicas: vec![2, 3],
            isr: vec![3],
            leader: 3,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
            elr: Vec::new(),
            last_known_elr: Vec::new(),
        };
        apply(&mut image, &[second]);
        let (records, results) = plan_elect_leaders(&image, ElectionType::Preferred, None);
        assert!(records.is_empty());
        assert_eq!(
            results,
            [(
                "t".to_string(),
                vec![(1, Err(ElectionError::PreferredLeaderNotAvailable))]
            )],
            "partition 0 is led by its first replica: not listed"
        );
    }

    #[test]
    fn a_partition_named_twice_is_elected_once() {
        let (mut image, _) = cluster();
        fence(&mut image, 1);
        unfence(&mut image, 1);
        let p = part(&image);
        let rejoin = IsrChange {
            topic_id: image.topic("t").unwrap().id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: vec![2, 3, 1],
        };
        let (records, _) = plan_alter_partition(&image, 2, &[rejoin]);
        apply(&mut image, &records);
        let (records, results) = elect(&image, ElectionType::Preferred, &[0, 0]);
        assert_eq!(records.len(), 1);
        assert_eq!(results[0].1, [(0, Ok(())), (0, Ok(()))]);
    }

    #[test]
    fn auto_rebalance_elects_preferred_replicas_up_to_the_cap() {
        let (mut image, id) = cluster_of(3, vec![1, 2]);
        for p in 1..3 {
            let r = MetadataRecord::Partition {
                topic_id: id,
                partition: p,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 2,
                leader_epoch: 0,
                partition_epoch: 0,
                adding: Vec::new(),
                removing: Vec::new(),
                elr: Vec::new(),
                last_known_elr: Vec::new(),
            };
            apply(&mut image, &[r]);
        }
        let (records, more) = plan_preferred_leaders(&image, 1);
        assert_eq!((records.len(), more), (1, true));
        apply(&mut image, &records);
        let (records, more) = plan_preferred_leaders(&image, 1);
        assert_eq!((records.len(), more), (1, false));
        apply(&mut image, &records);
        let leaders: Vec<i32> = image
            .topic("t")
            .unwrap()
            .partitions
            .values()
            .map(|p| p.leader)
            .collect();
        assert_eq!(leaders, [1, 1, 1]);
        assert_eq!(plan_preferred_leaders(&image, 1000), (Vec::new(), false));
        // A first replica outside the ISR is not elected.
        fence(&mut image, 1);
        unfence(&mut image, 1);
        assert_eq!(plan_preferred_leaders(&image, 1000), (Vec::new(), false));
    }

    #[test]
    fn preferred_election_keeps_a_valid_leader_when_the_first_replica_cannot_lead() {
        let (mut image, _) = cluster();
        fence(&mut image, 1);
        let p = part(&image);
        let change = ChangeBuilder::new(&image, image.topic("t").unwrap(), &p)
            .election(Election::Preferred)
            .build();
        assert_eq!(change, None, "leader 2 stays");
    }
}
