//! The records of `__consumer_offsets`, byte-compatible with Apache Kafka's schemas
//! (`OffsetCommitKey`/`OffsetCommitValue`, `GroupMetadataKey`/`GroupMetadataValue` in Kafka's
//! `group-coordinator/src/main/resources/common/message/`).
//!
//! Layout: key = `int16 record type` + key fields, where type 0 or 1 is an offset commit and 2 is
//! group metadata; value = `int16 version` + value fields, or no value at all for a tombstone.
//! Versions 0-3 of the values are classic encodings (int16 string lengths, int32 byte and array
//! lengths, -1 for null); version 4 is "flexible" (unsigned-varint lengths plus one, tagged
//! fields after every struct). We write what current Kafka writes: key type 1 / 2, offset
//! values v3 (v1 when the commit carries an explicit expire timestamp), group values v3. We read
//! every version Kafka defines, so a log written by Kafka itself loads.
//!
//! Pure byte code: no I/O, no state. Strings longer than 32767 bytes cannot be written by the
//! classic encodings; the coordinator rejects requests carrying such strings before it builds a
//! record, and the encoder clamps rather than corrupt the layout should one slip through.

use bytes::{BufMut, Bytes};

use super::consumer::records::ConsumerRecord;
use crate::coordinator::codec::{CodecError, Reader, Writer};

/// Record type (key version) Kafka writes for offset commits; 0 is read too.
pub(crate) const OFFSET_COMMIT_KEY_TYPE: i16 = 1;
/// Record type (key version) of group metadata.
pub(crate) const GROUP_METADATA_KEY_TYPE: i16 = 2;
/// The offset commit value version written without an expire timestamp.
pub(crate) const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// The offset commit value version written with an expire timestamp (it is the only one with it).
pub(crate) const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
/// The group metadata value version written.
pub(crate) const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// The highest value version defined by Kafka for both value types.
const MAX_VALUE_VERSION: i16 = 4;
/// Longest string a classic (int16-length) encoding can carry.
pub(crate) use crate::coordinator::codec::MAX_STRING_BYTES;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("record {0} is truncated")]
    Truncated(&'static str),
    #[error("unknown record type {0} (not a classic group record)")]
    UnknownRecordType(i16),
    #[error("unsupported {what} value version {version}")]
    UnsupportedVersion { what: &'static str, version: i16 },
    #[error("invalid {0} in record")]
    Invalid(&'static str),
}

impl From<CodecError> for RecordError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Truncated(what) => RecordError::Truncated(what),
            CodecError::Invalid(what) => RecordError::Invalid(what),
        }
    }
}

/// One decoded `__consumer_offsets` record; `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    GroupMetadata {
        group: String,
        value: Option<GroupMetadataValue>,
    },
    /// A KIP-848 consumer group record (types 3-8), in `group::consumer::records`.
    Consumer(ConsumerRecord),
}

/// `OffsetCommitValue`: `leader_epoch` and `expire_timestamp_ms` are -1 when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetCommitValue {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp_ms: i64,
    pub(crate) expire_timestamp_ms: i64,
}

/// `GroupMetadataValue`: `current_state_timestamp_ms` is -1 when absent (values v0 and v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupMetadataValue {
    pub(crate) protocol_type: String,
    pub(crate) generation: i32,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) current_state_timestamp_ms: i64,
    pub(crate) members: Vec<MemberMetadataValue>,
}

/// One member inside `GroupMetadataValue`; `rebalance_timeout_ms` is -1 in v0 records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberMetadataValue {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) subscription: Bytes,
    pub(crate) assignment: Bytes,
}

impl Record {
    /// Encodes key and value the way current Kafka writes them.
    pub(crate) fn encode(&self) -> (Bytes, Option<Bytes>) {
        match self {
            Record::OffsetCommit {
                group,
                topic,
                partition,
                value,
            } => {
                let mut w = Writer::classic();
                w.buf.put_i16(OFFSET_COMMIT_KEY_TYPE);
                w.string(group);
                w.string(topic);
                w.buf.put_i32(*partition);
                let value = value.as_ref().map(|v| {
                    let version = if v.expire_timestamp_ms >= 0 {
                        OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY
                    } else {
                        OFFSET_COMMIT_VALUE_VERSION
                    };
                    v.encode(version)
                });
                (w.finish(), value)
            }
            Record::GroupMetadata { group, value } => {
                let mut w = Writer::classic();
                w.buf.put_i16(GROUP_METADATA_KEY_TYPE);
                w.string(group);
                (
                    w.finish(),
                    value.as_ref().map(|v| v.encode(GROUP_METADATA_VALUE_VERSION)),
                )
            }
            Record::Consumer(r) => r.encode(),
        }
    }

    /// Decodes one record. Types other than 0-8 (share groups, streams groups, KIP-848
    /// regexes) give [`RecordError::UnknownRecordType`], which a loader skips as Kafka does.
    pub(crate) fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record, RecordError> {
        let mut r = Reader::new(key, false, "key");
        let record_type = r.i16()?;
        match record_type {
            0 | 1 => {
                let group = r.string()?;
                let topic = r.string()?;
                let partition = r.i32()?;
                let value = value.map(OffsetCommitValue::decode).transpose()?;
                Ok(Record::OffsetCommit {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group = r.string()?;
                let value = value.map(GroupMetadataValue::decode).transpose()?;
                Ok(Record::GroupMetadata { group, value })
            }
            3..=8 => ConsumerRecord::decode(key, value).map(Record::Consumer),
            other => Err(RecordError::UnknownRecordType(other)),
        }
    }
}

impl OffsetCommitValue {
    /// Encodes at `version` (0-4), with the version prefix.
    pub(crate) fn encode(&self, version: i16) -> Bytes {
        debug_assert!((0..=MAX_VALUE_VERSION).contains(&version));
        let mut w = Writer::new(version >= 4);
        w.buf.put_i16(version);
        w.buf.put_i64(self.offset);
        if version >= 3 {
            w.buf.put_i32(self.leader_epoch);
        }
        w.string(&self.metadata);
        w.buf.put_i64(self.commit_timestamp_ms);
        if version == 1 {
            w.buf.put_i64(self.expire_timestamp_ms);
        }
        w.tagged_fields();
        w.finish()
    }

    /// Decodes a value with its version prefix.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let version = Reader::new(bytes, false, "offset commit value").i16()?;
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                what: "offset commit",
                version,
            });
        }
        let mut r = Reader::new(&bytes[2..], version >= 4, "offset commit value");
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = r.string()?;
        let commit_timestamp_ms = r.i64()?;
        let expire_timestamp_ms = if version == 1 { r.i64()? } else { -1 };
        r.skip_tagged_fields()?;
        Ok(Self {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
            expire_timestamp_ms,
        })
    }
}

impl GroupMetadataValue {
    /// Encodes at `version` (0-4), with the version prefix.
    pub(crate) fn encode(&self, version: i16) -> Bytes {
        debug_assert!((0..=MAX_VALUE_VERSION).contains(&version));
        let mut w = Writer::new(version >= 4);
        w.buf.put_i16(version);
        w.string(&self.protocol_type);
        w.buf.put_i32(self.generation);
        w.nullable_string(self.protocol.as_deref());
        w.nullable_string(self.leader.as_deref());
        if version >= 2 {
            w.buf.put_i64(self.current_state_timestamp_ms);
        }
        w.array_len(self.members.len());
        for m in &self.members {
            w.string(&m.member_id);
            if version >= 3 {
                w.nullable_string(m.group_instance_id.as_deref());
            }
            w.string(&m.client_id);
            w.string(&m.client_host);
            if version >= 1 {
                w.buf.put_i32(m.rebalance_timeout_ms);
            }
            w.buf.put_i32(m.session_timeout_ms);
            w.bytes(&m.subscription);
            w.bytes(&m.assignment);
            w.tagged_fields();
        }
        w.tagged_fields();
        w.finish()
    }

    /// Decodes a value with its version prefix.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let version = Reader::new(bytes, false, "group metadata value").i16()?;
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                what: "group metadata",
                version,
            });
        }
        let mut r = Reader::new(&bytes[2..], version >= 4, "group metadata value");
        let protocol_type = r.string()?;
        let generation = r.i32()?;
        let protocol = r.nullable_string()?;
        let leader = r.nullable_string()?;
        let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
        let count = r.array_len()?;
        let mut members = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let member_id = r.string()?;
            let group_instance_id = if version >= 3 { r.nullable_string()? } else { None };
            let client_id = r.string()?;
            let client_host = r.string()?;
            let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
            let session_timeout_ms = r.i32()?;
            let subscription = r.bytes()?;
            let assignment = r.bytes()?;
            r.skip_tagged_fields()?;
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        r.skip_tagged_fields()?;
        Ok(Self {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_value(expire: i64) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp_ms: 1_700_000_000_000,
            expire_timestamp_ms: expire,
        }
    }

    fn group_value() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("c-1".into()),
            current_state_timestamp_ms: 1234,
            members: vec![MemberMetadataValue {
                member_id: "c-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        }
    }

    #[test]
    fn offset_commit_key_and_value_v3_are_byte_exact() {
        let record = Record::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(offset_value(-1)),
        };
        let (key, value) = record.encode();
        // int16 type 1, string "g", string "t", int32 partition.
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        let mut expected = vec![0u8, 3];
        expected.extend_from_slice(&42i64.to_be_bytes()); // offset
        expected.extend_from_slice(&7i32.to_be_bytes()); // leaderEpoch (v3+)
        expected.extend_from_slice(&[0, 4, b'm', b'e', b't', b'a']); // metadata
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // commitTimestamp
        assert_eq!(&value.unwrap()[..], &expected[..]);
    }

    #[test]
    fn offset_commit_with_expire_timestamp_is_written_as_v1() {
        let (_, value) = Record::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(offset_value(99)),
        }
        .encode();
        let value = value.unwrap();
        let mut expected = vec![0u8, 1];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&[0, 4, b'm', b'e', b't', b'a']);
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        expected.extend_from_slice(&99i64.to_be_bytes()); // expireTimestamp (v1 only)
        assert_eq!(&value[..], &expected[..]);
    }

    #[test]
    fn group_metadata_key_is_byte_exact_and_tombstone_has_no_value() {
        let (key, value) = Record::GroupMetadata {
            group: "my-group".into(),
            value: None,
        }
        .encode();
        let mut expected = vec![0u8, 2, 0, 8];
        expected.extend_from_slice(b"my-group");
        assert_eq!(&key[..], &expected[..]);
        assert!(value.is_none());
        assert_eq!(
            Record::decode(&key, None).unwrap(),
            Record::GroupMetadata {
                group: "my-group".into(),
                value: None
            }
        );
    }

    #[test]
    fn group_metadata_value_v3_is_byte_exact() {
        let bytes = group_value().encode(3);
        let mut e = vec![0u8, 3];
        e.extend_from_slice(&[0, 8]);
        e.extend_from_slice(b"consumer");
        e.extend_from_slice(&5i32.to_be_bytes());
        e.extend_from_slice(&[0, 5]);
        e.extend_from_slice(b"range");
        e.extend_from_slice(&[0, 3]);
        e.extend_from_slice(b"c-1");
        e.extend_from_slice(&1234i64.to_be_bytes());
        e.extend_from_slice(&1i32.to_be_bytes()); // members
        e.extend_from_slice(&[0, 3]);
        e.extend_from_slice(b"c-1");
        e.extend_from_slice(&[0, 3]);
        e.extend_from_slice(b"i-1");
        e.extend_from_slice(&[0, 1, b'c']);
        e.extend_from_slice(&[0, 10]);
        e.extend_from_slice(b"/127.0.0.1");
        e.extend_from_slice(&300_000i32.to_be_bytes());
        e.extend_from_slice(&45_000i32.to_be_bytes());
        e.extend_from_slice(&[0, 0, 0, 3]);
        e.extend_from_slice(b"sub");
        e.extend_from_slice(&[0, 0, 0, 3]);
        e.extend_from_slice(b"asg");
        assert_eq!(&bytes[..], &e[..]);
    }

    #[test]
    fn offset_commit_values_round_trip_at_every_version() {
        for version in 0..=4 {
            let mut v = offset_value(if version == 1 { 5000 } else { -1 });
            if version < 3 {
                v.leader_epoch = -1;
            }
            let decoded = OffsetCommitValue::decode(&v.encode(version)).unwrap();
            assert_eq!(decoded, v, "version {version}");
        }
    }

    #[test]
    fn group_metadata_values_round_trip_at_every_version() {
        for version in 0..=4 {
            let mut v = group_value();
            if version < 2 {
                v.current_state_timestamp_ms = -1;
            }
            if version < 1 {
                v.members[0].rebalance_timeout_ms = -1;
            }
            if version < 3 {
                v.members[0].group_instance_id = None;
            }
            let decoded = GroupMetadataValue::decode(&v.encode(version)).unwrap();
            assert_eq!(decoded, v, "version {version}");
        }
    }

    #[test]
    fn flexible_value_skips_unknown_tagged_fields() {
        let v = offset_value(-1);
        let mut bytes = v.encode(4).to_vec();
        // Replace the empty tagged-field section with one unknown tag (7) of 2 bytes.
        assert_eq!(bytes.pop(), Some(0));
        bytes.extend_from_slice(&[1, 7, 2, 0xab, 0xcd]);
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), v);
    }

    #[test]
    fn key_type_zero_is_an_offset_commit() {
        let key = [0u8, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 9];
        let record = Record::decode(&key, None).unwrap();
        assert_eq!(
            record,
            Record::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 9,
                value: None
            }
        );
    }

    #[test]
    fn unknown_record_types_and_truncation_are_reported() {
        assert_eq!(
            Record::decode(&[3, 232, 0, 0], None),
            Err(RecordError::UnknownRecordType(1000))
        );
        assert_eq!(
            Record::decode(&[0, 2, 0, 5, b'a'], None),
            Err(RecordError::Truncated("key"))
        );
        let value = offset_value(-1).encode(3);
        assert!(matches!(
            OffsetCommitValue::decode(&value[..value.len() - 1]),
            Err(RecordError::Truncated(_))
        ));
        assert!(matches!(
            OffsetCommitValue::decode(&[0, 9, 0]),
            Err(RecordError::UnsupportedVersion { .. })
        ));
        // A member count far beyond the bytes left is rejected before anything is allocated.
        let mut bogus = vec![0u8, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        bogus.extend_from_slice(&0i64.to_be_bytes());
        bogus.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(GroupMetadataValue::decode(&bogus).is_err());
    }
}
