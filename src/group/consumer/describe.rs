//! Read-only views of consumer groups: ConsumerGroupDescribe, and the checks OffsetCommit and
//! OffsetFetch make against member epochs (Kafka's `ConsumerGroup.validateOffsetCommit` /
//! `validateOffsetFetch`).

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{Assignment, ConsumerGroup};

/// One ConsumerGroupDescribe entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerGroupDescription {
    pub(crate) error: Option<(ResponseError, String)>,
    pub(crate) state: &'static str,
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) assignor: String,
    pub(crate) members: Vec<ConsumerMemberDescription>,
}

/// (topic id, topic name, partitions)
pub(crate) type DescribedPartitions = Vec<(Uuid, String, Vec<i32>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerMemberDescription {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) member_epoch: i32,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) assignment: DescribedPartitions,
    pub(crate) target_assignment: DescribedPartitions,
}

impl ConsumerGroupDescription {
    pub(crate) fn error(error: ResponseError, message: String) -> Self {
        Self {
            error: Some((error, message)),
            state: "Dead",
            group_epoch: 0,
            assignment_epoch: 0,
            assignor: String::new(),
            members: Vec::new(),
        }
    }
}

impl ConsumerGroup {
    pub(crate) fn describe(&self) -> ConsumerGroupDescription {
        let name_of = |id: &Uuid| {
            self.subscription_metadata
                .iter()
                .find(|(_, t)| t.id == *id)
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        };
        let described = |a: &Assignment| -> DescribedPartitions {
            a.iter()
                .map(|(t, ps)| (*t, name_of(t), ps.iter().copied().collect()))
                .collect()
        };
        let members = self
            .members
            .values()
            .map(|m| ConsumerMemberDescription {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.member_epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed_topic_names.clone(),
                subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                assignment: described(&m.assigned),
                target_assignment: described(self.targets.get(&m.member_id).unwrap_or(&Assignment::new())),
            })
            .collect();
        ConsumerGroupDescription {
            error: None,
            state: self.state().as_str(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor.clone(),
            members,
        }
    }

    /// Whether an OffsetCommit may commit: without a member (epoch < 0) only to an empty group;
    /// from a member of the consumer protocol only with OffsetCommit v9+ and its current epoch.
    pub(crate) fn validate_offset_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        api_version: i16,
        transactional: bool,
    ) -> Result<(), ResponseError> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let Some(member) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if !transactional && api_version < 9 {
            return Err(ResponseError::UnsupportedVersion);
        }
        check_member_epoch(member_epoch, member.member_epoch)
    }

    /// Whether an OffsetFetch naming a member (v9+) may read: its epoch must be current.
    pub(crate) fn validate_offset_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        if member_id.is_none() && member_epoch < 0 {
            return Ok(());
        }
        let Some(member) = member_id.and_then(|id| self.members.get(id)) else {
            return Err(ResponseError::UnknownMemberId);
        };
        check_member_epoch(member_epoch, member.member_epoch)
    }
}

/// Kafka's `validateMemberEpoch` for a member of the consumer protocol: any other epoch is stale.
fn check_member_epoch(received: i32, expected: i32) -> Result<(), ResponseError> {
    if received != expected {
        return Err(ResponseError::StaleMemberEpoch);
    }
    Ok(())
}
