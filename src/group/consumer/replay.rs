//! Rebuilding KIP-848 consumer groups from their `__consumer_offsets` records when a
//! coordinator loads its partition, so that a restart or failover resumes every group where it
//! was: epochs, members, target and current assignments. After the load each member's session
//! timer starts afresh (and a revocation deadline for members still revoking), as Kafka does.

use std::collections::BTreeMap;

use super::records::ConsumerRecord;
use super::{ConsumerMember, MemberState, TopicInfo};
use crate::group::api::TimerKey;
use crate::group::coordinator::{Outbox, TimerPayload};
use crate::group::state::Group;

/// Applies one record to the groups being loaded.
pub(crate) fn replay(groups: &mut BTreeMap<String, Group>, record: ConsumerRecord, now_ms: i64) {
    let group_id = record.group().to_owned();
    let tombstone_of_unknown = groups.get(&group_id).is_none_or(|g| g.consumer.is_none())
        && matches!(
            record,
            ConsumerRecord::GroupMetadata { epoch: None, .. }
                | ConsumerRecord::PartitionMetadata { topics: None, .. }
                | ConsumerRecord::MemberMetadata { value: None, .. }
                | ConsumerRecord::TargetMetadata {
                    assignment_epoch: None,
                    ..
                }
                | ConsumerRecord::TargetMember { partitions: None, .. }
                | ConsumerRecord::CurrentAssignment { value: None, .. }
        );
    if tombstone_of_unknown {
        return;
    }
    let group = groups
        .entry(group_id.clone())
        .or_insert_with(|| Group::new(&group_id, now_ms));
    let cg = group.consumer.get_or_insert_with(Box::default);
    match record {
        ConsumerRecord::GroupMetadata { epoch: Some(e), .. } => cg.group_epoch = e,
        ConsumerRecord::GroupMetadata { epoch: None, .. } => {
            group.consumer = None;
            if group.offsets.is_empty() && group.members.is_empty() {
                groups.remove(&group_id);
            }
        }
        ConsumerRecord::PartitionMetadata { topics, .. } => {
            cg.subscription_metadata = topics
                .unwrap_or_default()
                .into_iter()
                .map(|(id, name, partitions)| (name, TopicInfo { id, partitions }))
                .collect();
        }
        ConsumerRecord::MemberMetadata {
            member_id,
            value: Some(v),
            ..
        } => {
            let m = cg
                .members
                .entry(member_id.clone())
                .or_insert_with(|| ConsumerMember::new(member_id.clone()));
            if let Some(instance) = &v.instance_id {
                cg.static_members.insert(instance.clone(), member_id);
            }
            if let Some(regex) = &v.subscribed_topic_regex {
                if let Err(e) = cg.regexes.compile(regex) {
                    tracing::warn!(regex, error = %e, "a loaded member's regex does not compile");
                }
            }
            m.instance_id = v.instance_id;
            m.rack_id = v.rack_id;
            m.client_id = v.client_id;
            m.client_host = v.client_host;
            m.subscribed_topic_names = v.subscribed_topic_names;
            m.subscribed_topic_regex = v.subscribed_topic_regex;
            m.rebalance_timeout_ms = v.rebalance_timeout_ms;
            m.server_assignor = v.server_assignor;
        }
        ConsumerRecord::MemberMetadata {
            member_id, value: None, ..
        } => {
            cg.remove_member(&member_id);
        }
        ConsumerRecord::TargetMetadata { assignment_epoch, .. } => {
            cg.assignment_epoch = assignment_epoch.unwrap_or(0);
        }
        ConsumerRecord::TargetMember {
            member_id,
            partitions: Some(a),
            ..
        } => {
            cg.targets.insert(member_id, a);
        }
        ConsumerRecord::TargetMember {
            member_id,
            partitions: None,
            ..
        } => {
            cg.targets.remove(&member_id);
        }
        ConsumerRecord::CurrentAssignment {
            member_id,
            value: Some(v),
            ..
        } => {
            let m = cg
                .members
                .entry(member_id.clone())
                .or_insert_with(|| ConsumerMember::new(member_id));
            m.member_epoch = v.member_epoch;
            m.previous_member_epoch = v.previous_member_epoch;
            m.state = v.state;
            m.assigned = v.assigned;
            m.revoking = v.revoking;
        }
        // The member's metadata tombstone that follows removes it.
        ConsumerRecord::CurrentAssignment { value: None, .. } => {}
    }
}

/// After the load: timers of every member, the assignor name of the target.
pub(crate) fn loaded(group: &mut Group, out: &mut Outbox) {
    let Some(cg) = group.consumer.as_deref_mut() else {
        return;
    };
    cg.assignor = super::target::choose_assignor(cg, &out.config.consumer.assignors);
    let session_ms = i64::from(out.config.consumer.session_timeout_ms);
    for m in cg.members.values() {
        let (group_id, member_id) = (group.group_id.clone(), m.member_id.clone());
        if m.state == MemberState::UnrevokedPartitions {
            let key = TimerKey::ConsumerRevocation {
                group_id: group_id.clone(),
                member_id: member_id.clone(),
            };
            out.schedule(key, i64::from(m.rebalance_timeout_ms), TimerPayload::Heartbeat);
        }
        out.schedule(
            TimerKey::ConsumerSession { group_id, member_id },
            session_ms,
            TimerPayload::Heartbeat,
        );
    }
}
