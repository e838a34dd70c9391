//! Read-only views for ListGroups, DescribeGroups and OffsetFetch. They change nothing, so they
//! are plain methods rather than events.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::consumer::describe::ConsumerGroupDescription;
use super::coordinator::GroupCoordinatorState;
use super::state::GroupState;

/// Kafka's group type of every classic group, as ListGroups v5+ reports it.
pub(crate) const CLASSIC_GROUP_TYPE: &str = "classic";
/// Kafka's group type of KIP-848 consumer groups.
pub(crate) const CONSUMER_GROUP_TYPE: &str = "consumer";

/// One ListGroups entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupListing {
    pub(crate) group_id: String,
    pub(crate) protocol_type: String,
    pub(crate) state: &'static str,
    pub(crate) group_type: &'static str,
}

/// One DescribeGroups entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupDescription {
    pub(crate) group_id: String,
    pub(crate) error: Option<ResponseError>,
    pub(crate) state: &'static str,
    pub(crate) protocol_type: String,
    /// The selected protocol, only when Stable.
    pub(crate) protocol_data: String,
    pub(crate) members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberDescription {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    /// The member's metadata for the selected protocol; empty unless the group is Stable.
    pub(crate) metadata: Bytes,
    pub(crate) assignment: Bytes,
}

/// OffsetFetch of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchedOffsets {
    pub(crate) error: Option<ResponseError>,
    pub(crate) topics: Vec<FetchedTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchedTopic {
    pub(crate) name: String,
    pub(crate) partitions: Vec<FetchedPartition>,
}

/// `offset` -1, `leader_epoch` -1 and empty metadata when nothing is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchedPartition {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: String,
    pub(crate) error: Option<ResponseError>,
}

impl GroupCoordinatorState {
    /// ListGroups: groups whose state is in `states` and type in `types` (case-insensitive;
    /// an empty filter matches everything).
    pub(crate) fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let states: Vec<String> = states.iter().map(|s| s.to_lowercase()).collect();
        self.groups
            .values()
            .map(|g| match &g.consumer {
                // A consumer group's protocol type is "consumer", as Kafka lists it.
                Some(c) => GroupListing {
                    group_id: g.group_id.clone(),
                    protocol_type: super::state::CONSUMER_PROTOCOL_TYPE.to_owned(),
                    state: c.state().as_str(),
                    group_type: CONSUMER_GROUP_TYPE,
                },
                None => GroupListing {
                    group_id: g.group_id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state.as_str(),
                    group_type: CLASSIC_GROUP_TYPE,
                },
            })
            .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
            .filter(|g| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(g.group_type)))
            .collect()
    }

    /// DescribeGroups of one group; an unknown group is reported Dead, without error.
    pub(crate) fn describe_group(&self, group_id: &str) -> GroupDescription {
        // Kafka describes only classic groups here: any other is Dead (ConsumerGroupDescribe
        // describes consumer groups).
        let Some(group) = self.groups.get(group_id).filter(|g| g.consumer.is_none()) else {
            return GroupDescription {
                group_id: group_id.to_owned(),
                error: None,
                state: GroupState::Dead.as_str(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
            };
        };
        let protocol = group.protocol_name.clone().filter(|_| group.is(GroupState::Stable));
        let members = group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: protocol.as_deref().map(|p| m.metadata(p)).unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect();
        GroupDescription {
            group_id: group_id.to_owned(),
            error: None,
            state: group.state.as_str(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_data: protocol.unwrap_or_default(),
            members,
        }
    }

    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND unless it is a consumer group.
    pub(crate) fn describe_consumer_group(&self, group_id: &str) -> ConsumerGroupDescription {
        match self.groups.get(group_id) {
            None => {
                ConsumerGroupDescription::error(ResponseError::GroupIdNotFound, format!("Group {group_id} not found."))
            }
            Some(g) => match &g.consumer {
                Some(c) => c.describe(),
                None => ConsumerGroupDescription::error(
                    ResponseError::GroupIdNotFound,
                    format!("Group {group_id} is not a consumer group."),
                ),
            },
        }
    }

    /// OffsetFetch v9+ from a member of a consumer group: its member epoch must be current.
    pub(crate) fn validate_consumer_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        match self.groups.get(group_id).and_then(|g| g.consumer.as_deref()) {
            Some(c) => c.validate_offset_fetch(member_id, member_epoch),
            None => Ok(()),
        }
    }

    /// OffsetFetch: the committed offsets of `topics` (topic → partitions), or of every
    /// partition with an offset when `topics` is None. Commits not yet in the log are not seen.
    pub(crate) fn fetch_offsets(&self, group_id: &str, topics: Option<&[(String, Vec<i32>)]>) -> FetchedOffsets {
        let group = self.groups.get(group_id).filter(|g| !g.is(GroupState::Dead));
        let offsets = group.map(|g| &g.offsets);
        let topics = match topics {
            None => offsets
                .into_iter()
                .flatten()
                .map(|(name, parts)| FetchedTopic {
                    name: name.clone(),
                    partitions: parts.iter().map(|(p, o)| fetched(*p, Some(o))).collect(),
                })
                .collect(),
            Some(requested) => requested
                .iter()
                .map(|(name, parts)| {
                    let committed = offsets.and_then(|o| o.get(name));
                    FetchedTopic {
                        name: name.clone(),
                        partitions: parts
                            .iter()
                            .map(|p| fetched(*p, committed.and_then(|c| c.get(p))))
                            .collect(),
                    }
                })
                .collect(),
        };
        FetchedOffsets { error: None, topics }
    }

    /// OffsetFetch with require_stable (KIP-447): a partition whose offset an open
    /// transaction holds is UNSTABLE_OFFSET_COMMIT, with no offset, until the transaction ends.
    pub(crate) fn mark_unstable(&self, group_id: &str, offsets: &mut FetchedOffsets) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        for topic in &mut offsets.topics {
            for p in &mut topic.partitions {
                if group.has_pending_txn_offset(&topic.name, p.partition) {
                    *p = FetchedPartition {
                        error: Some(ResponseError::UnstableOffsetCommit),
                        ..fetched(p.partition, None)
                    };
                }
            }
        }
    }
}

fn fetched(partition: i32, offset: Option<&super::state::CommittedOffset>) -> FetchedPartition {
    match offset {
        Some(o) => FetchedPartition {
            partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch.unwrap_or(-1),
            metadata: o.metadata.clone(),
            error: None,
        },
        None => FetchedPartition {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: None,
        },
    }
}
