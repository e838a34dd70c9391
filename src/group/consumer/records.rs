//! The KIP-848 records of `__consumer_offsets`, byte-compatible with Kafka 4's schemas in
//! `group-coordinator/src/main/resources/common/message/`: ConsumerGroupMetadata (record type 3),
//! ConsumerGroupPartitionMetadata (4), ConsumerGroupMemberMetadata (5),
//! ConsumerGroupTargetAssignmentMetadata (6), ConsumerGroupTargetAssignmentMember (7) and
//! ConsumerGroupCurrentMemberAssignment (8).
//!
//! Keys: `int16 record type` + the key fields in the classic encoding (Kafka's keys are not
//! flexible). Values: `int16 version` (0) + the fields in the flexible encoding (compact
//! lengths, tagged fields after every struct); no value is a tombstone. A member's
//! `ClassicMemberMetadata` (tag 0, for classic members of mixed groups) is never written and
//! skipped when read.

use bytes::{BufMut, Bytes};
use uuid::Uuid;

use super::{Assignment, MemberState};
use crate::coordinator::codec::{Reader, Writer};
use crate::group::records::RecordError;

pub(crate) const GROUP_METADATA_TYPE: i16 = 3;
pub(crate) const PARTITION_METADATA_TYPE: i16 = 4;
pub(crate) const MEMBER_METADATA_TYPE: i16 = 5;
pub(crate) const TARGET_METADATA_TYPE: i16 = 6;
pub(crate) const TARGET_MEMBER_TYPE: i16 = 7;
pub(crate) const CURRENT_ASSIGNMENT_TYPE: i16 = 8;
/// The only value version Kafka defines for each of them.
const VALUE_VERSION: i16 = 0;

/// `ConsumerGroupMemberMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberMetadata {
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) server_assignor: Option<String>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CurrentAssignment {
    pub(crate) member_epoch: i32,
    pub(crate) previous_member_epoch: i32,
    pub(crate) state: MemberState,
    pub(crate) assigned: Assignment,
    pub(crate) revoking: Assignment,
}

/// One KIP-848 record; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConsumerRecord {
    GroupMetadata {
        group: String,
        epoch: Option<i32>,
    },
    /// (topic id, name, partitions) of every subscribed topic.
    PartitionMetadata {
        group: String,
        topics: Option<Vec<(Uuid, String, i32)>>,
    },
    MemberMetadata {
        group: String,
        member_id: String,
        value: Option<MemberMetadata>,
    },
    TargetMetadata {
        group: String,
        assignment_epoch: Option<i32>,
    },
    TargetMember {
        group: String,
        member_id: String,
        partitions: Option<Assignment>,
    },
    CurrentAssignment {
        group: String,
        member_id: String,
        value: Option<CurrentAssignment>,
    },
}

impl ConsumerRecord {
    pub(crate) fn group(&self) -> &str {
        match self {
            ConsumerRecord::GroupMetadata { group, .. }
            | ConsumerRecord::PartitionMetadata { group, .. }
            | ConsumerRecord::MemberMetadata { group, .. }
            | ConsumerRecord::TargetMetadata { group, .. }
            | ConsumerRecord::TargetMember { group, .. }
            | ConsumerRecord::CurrentAssignment { group, .. } => group,
        }
    }

    pub(crate) fn encode(&self) -> (Bytes, Option<Bytes>) {
        let key = |record_type: i16, member: Option<&str>| {
            let mut w = Writer::classic();
            w.buf.put_i16(record_type);
            w.string(self.group());
            if let Some(m) = member {
                w.string(m);
            }
            w.finish()
        };
        let value = |write: &dyn Fn(&mut Writer)| {
            let mut w = Writer::new(true);
            w.buf.put_i16(VALUE_VERSION);
            write(&mut w);
            w.tagged_fields();
            w.finish()
        };
        match self {
            ConsumerRecord::GroupMetadata { epoch, .. } => (
                key(GROUP_METADATA_TYPE, None),
                epoch.map(|e| value(&|w| w.buf.put_i32(e))),
            ),
            ConsumerRecord::PartitionMetadata { topics, .. } => (
                key(PARTITION_METADATA_TYPE, None),
                topics.as_ref().map(|ts| {
                    value(&|w| {
                        w.array_len(ts.len());
                        for (id, name, partitions) in ts {
                            w.buf.put_slice(id.as_bytes());
                            w.string(name);
                            w.buf.put_i32(*partitions);
                            w.array_len(0); // PartitionMetadata: racks, unused since Kafka 4.0
                            w.tagged_fields();
                        }
                    })
                }),
            ),
            ConsumerRecord::MemberMetadata {
                member_id, value: v, ..
            } => (
                key(MEMBER_METADATA_TYPE, Some(member_id)),
                v.as_ref().map(|m| {
                    value(&|w| {
                        w.nullable_string(m.instance_id.as_deref());
                        w.nullable_string(m.rack_id.as_deref());
                        w.string(&m.client_id);
                        w.string(&m.client_host);
                        w.array_len(m.subscribed_topic_names.len());
                        for t in &m.subscribed_topic_names {
                            w.string(t);
                        }
                        w.nullable_string(m.subscribed_topic_regex.as_deref());
                        w.buf.put_i32(m.rebalance_timeout_ms);
                        w.nullable_string(m.server_assignor.as_deref());
                    })
                }),
            ),
            ConsumerRecord::TargetMetadata { assignment_epoch, .. } => (
                key(TARGET_METADATA_TYPE, None),
                assignment_epoch.map(|e| value(&|w| w.buf.put_i32(e))),
            ),
            ConsumerRecord::TargetMember {
                member_id, partitions, ..
            } => (
                key(TARGET_MEMBER_TYPE, Some(member_id)),
                partitions.as_ref().map(|a| value(&|w| write_assignment(w, a))),
            ),
            ConsumerRecord::CurrentAssignment {
                member_id, value: v, ..
            } => (
                key(CURRENT_ASSIGNMENT_TYPE, Some(member_id)),
                v.as_ref().map(|c| {
                    value(&|w| {
                        w.buf.put_i32(c.member_epoch);
                        w.buf.put_i32(c.previous_member_epoch);
                        w.buf.put_i8(state_code(c.state));
                        write_assignment(w, &c.assigned);
                        write_assignment(w, &c.revoking);
                    })
                }),
            ),
        }
    }

    /// Decodes a record of type 3 to 8 (the caller has read nothing; `key` starts with the type).
    pub(crate) fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, RecordError> {
        let mut k = Reader::new(key, false, "consumer group key");
        let record_type = k.i16()?;
        let group = k.string()?;
        let mut member = || k.string();
        let record = match record_type {
            GROUP_METADATA_TYPE => ConsumerRecord::GroupMetadata {
                group,
                epoch: read_value(value, |r| Ok(r.i32()?))?,
            },
            PARTITION_METADATA_TYPE => ConsumerRecord::PartitionMetadata {
                group,
                topics: read_value(value, read_topics)?,
            },
            MEMBER_METADATA_TYPE => ConsumerRecord::MemberMetadata {
                member_id: member()?,
                group,
                value: read_value(value, read_member)?,
            },
            TARGET_METADATA_TYPE => ConsumerRecord::TargetMetadata {
                group,
                assignment_epoch: read_value(value, |r| Ok(r.i32()?))?,
            },
            TARGET_MEMBER_TYPE => ConsumerRecord::TargetMember {
                member_id: member()?,
                group,
                partitions: read_value(value, read_assignment)?,
            },
            CURRENT_ASSIGNMENT_TYPE => ConsumerRecord::CurrentAssignment {
                member_id: member()?,
                group,
                value: read_value(value, |r| {
                    Ok(CurrentAssignment {
                        member_epoch: r.i32()?,
                        previous_member_epoch: r.i32()?,
                        state: state_from_code(r.i8()?),
                        assigned: read_assignment(r)?,
                        revoking: read_assignment(r)?,
                    })
                })?,
            },
            other => return Err(RecordError::UnknownRecordType(other)),
        };
        Ok(record)
    }
}

/// Kafka's `MemberState` byte; UNKNOWN (127) is read as Stable, which the next heartbeat fixes.
fn state_code(state: MemberState) -> i8 {
    match state {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

fn state_from_code(code: i8) -> MemberState {
    match code {
        1 => MemberState::UnrevokedPartitions,
        2 => MemberState::UnreleasedPartitions,
        _ => MemberState::Stable,
    }
}

fn write_assignment(w: &mut Writer, a: &Assignment) {
    w.array_len(a.len());
    for (topic, partitions) in a {
        w.buf.put_slice(topic.as_bytes());
        w.array_len(partitions.len());
        for p in partitions {
            w.buf.put_i32(*p);
        }
        w.tagged_fields();
    }
}

/// A value's version prefix and body (`None` for a tombstone); unknown versions are refused.
fn read_value<T>(
    value: Option<&[u8]>,
    body: impl FnOnce(&mut Reader<'_>) -> Result<T, RecordError>,
) -> Result<Option<T>, RecordError> {
    let Some(bytes) = value else { return Ok(None) };
    let version = Reader::new(bytes, false, "consumer group value").i16()?;
    if version != VALUE_VERSION {
        return Err(RecordError::UnsupportedVersion {
            what: "consumer group",
            version,
        });
    }
    let mut r = Reader::new(&bytes[2..], true, "consumer group value");
    let v = body(&mut r)?;
    r.skip_tagged_fields()?;
    Ok(Some(v))
}

fn read_uuid(r: &mut Reader<'_>) -> Result<Uuid, RecordError> {
    let hi = r.i64()? as u64;
    let lo = r.i64()? as u64;
    Ok(Uuid::from_u64_pair(hi, lo))
}

fn read_assignment(r: &mut Reader<'_>) -> Result<Assignment, RecordError> {
    let mut a = Assignment::new();
    for _ in 0..r.array_len()? {
        let topic = read_uuid(r)?;
        let partitions = a.entry(topic).or_default();
        for _ in 0..r.array_len()? {
            partitions.insert(r.i32()?);
        }
        r.skip_tagged_fields()?;
    }
    a.retain(|_, ps| !ps.is_empty());
    Ok(a)
}

fn read_topics(r: &mut Reader<'_>) -> Result<Vec<(Uuid, String, i32)>, RecordError> {
    let n = r.array_len()?;
    let mut topics = Vec::new();
    for _ in 0..n {
        let id = read_uuid(r)?;
        let name = r.string()?;
        let partitions = r.i32()?;
        for _ in 0..r.array_len()? {
            r.i32()?; // partition
            for _ in 0..r.array_len()? {
                r.string()?; // rack
            }
            r.skip_tagged_fields()?;
        }
        r.skip_tagged_fields()?;
        topics.push((id, name, partitions));
    }
    Ok(topics)
}

fn read_member(r: &mut Reader<'_>) -> Result<MemberMetadata, RecordError> {
    let instance_id = r.nullable_string()?;
    let rack_id = r.nullable_string()?;
    let client_id = r.string()?;
    let client_host = r.string()?;
    let mut subscribed_topic_names = Vec::new();
    for _ in 0..r.array_len()? {
        subscribed_topic_names.push(r.string()?);
    }
    Ok(MemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex: r.nullable_string()?,
        rebalance_timeout_ms: r.i32()?,
        server_assignor: r.nullable_string()?,
    })
}

/// The records that say who `m` is and what it subscribes to.
pub(crate) fn member_metadata(group: &str, m: &super::ConsumerMember) -> ConsumerRecord {
    ConsumerRecord::MemberMetadata {
        group: group.to_owned(),
        member_id: m.member_id.clone(),
        value: Some(MemberMetadata {
            instance_id: m.instance_id.clone(),
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            subscribed_topic_names: m.subscribed_topic_names.clone(),
            subscribed_topic_regex: m.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            server_assignor: m.server_assignor.clone(),
        }),
    }
}

/// `m`'s epochs, reconciliation state and owned partitions.
pub(crate) fn current_assignment(group: &str, m: &super::ConsumerMember) -> ConsumerRecord {
    ConsumerRecord::CurrentAssignment {
        group: group.to_owned(),
        member_id: m.member_id.clone(),
        value: Some(CurrentAssignment {
            member_epoch: m.member_epoch,
            previous_member_epoch: m.previous_member_epoch,
            state: m.state,
            assigned: m.assigned.clone(),
            revoking: m.revoking.clone(),
        }),
    }
}

/// Removes a member, in Kafka's order: current assignment, target, metadata.
pub(crate) fn member_tombstones(group: &str, member_id: &str) -> [ConsumerRecord; 3] {
    let (group, member_id) = (group.to_owned(), member_id.to_owned());
    [
        ConsumerRecord::CurrentAssignment {
            group: group.clone(),
            member_id: member_id.clone(),
            value: None,
        },
        ConsumerRecord::TargetMember {
            group: group.clone(),
            member_id: member_id.clone(),
            partitions: None,
        },
        ConsumerRecord::MemberMetadata {
            group,
            member_id,
            value: None,
        },
    ]
}

/// Removes a whole consumer group: its members, then its target, topics and epoch.
pub(crate) fn group_tombstones(group: &str, cg: &super::ConsumerGroup) -> Vec<ConsumerRecord> {
    let mut records: Vec<ConsumerRecord> = cg.members.keys().flat_map(|m| member_tombstones(group, m)).collect();
    records.push(ConsumerRecord::TargetMetadata {
        group: group.to_owned(),
        assignment_epoch: None,
    });
    records.push(ConsumerRecord::PartitionMetadata {
        group: group.to_owned(),
        topics: None,
    });
    records.push(ConsumerRecord::GroupMetadata {
        group: group.to_owned(),
        epoch: None,
    });
    records
}

/// The subscribed topics' metadata of `cg`.
pub(crate) fn partition_metadata(group: &str, cg: &super::ConsumerGroup) -> ConsumerRecord {
    ConsumerRecord::PartitionMetadata {
        group: group.to_owned(),
        topics: Some(
            cg.subscription_metadata
                .iter()
                .map(|(name, t)| (t.id, name.clone(), t.partitions))
                .collect(),
        ),
    }
}
