//! The records of `__transaction_state`, byte-compatible with Apache Kafka's schemas
//! (`TransactionLogKey` / `TransactionLogValue` in Kafka's
//! `transaction-coordinator/src/main/resources/common/message/`), so Kafka's tools read them.
//!
//! Layout: key = `int16 record type` (0) + the transactional id (classic string); value =
//! `int16 version` + producer id (int64), producer epoch (int16), transaction timeout (int32),
//! status (int8), the partitions (nullable array of topic + int32 partition ids, null when the
//! state is Empty), last update and start timestamps (int64); no value at all for a tombstone.
//! Version 0 is classic; version 1 (what Kafka writes from transaction.version 1) is flexible,
//! with the previous and next producer ids (tags 0 and 1) and the client's transaction version
//! (tag 2) as tagged fields. Both are read; unknown tags are skipped.
//!
//! Pure byte code: no I/O, no state.

use bytes::{BufMut, Bytes};

use crate::coordinator::codec::{CodecError, Reader, Writer, MAX_STRING_BYTES};

/// The key's record type (Kafka's `CoordinatorRecordType.TRANSACTION_LOG`).
const KEY_TYPE: i16 = 0;
/// The highest value version Kafka defines.
const MAX_VALUE_VERSION: i16 = 1;
const TAG_PREVIOUS_PRODUCER_ID: u64 = 0;
const TAG_NEXT_PRODUCER_ID: u64 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u64 = 2;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("unknown key type {0} (not a transaction log record)")]
    UnknownKeyType(i16),
    #[error("unsupported transaction log value version {0}")]
    UnsupportedVersion(i16),
    #[error("unknown transaction state {0}")]
    UnknownState(i8),
}

/// Kafka's transaction states, with their ids in the log and names in DescribeTransactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub(crate) fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub(crate) fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// States a transactional id may expire in (`transactional.id.expiration.ms`).
    pub(crate) fn may_expire(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// `TransactionLogValue`: a transactional id's state as last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnLogValue {
    pub(crate) producer_id: i64,
    /// The producer id before the last rotation (tagged, v1; -1 when none).
    pub(crate) previous_producer_id: i64,
    /// The producer id the next transaction moves to (tagged, v1; -1 when none).
    pub(crate) next_producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TxnState,
    /// (topic, partitions); empty (written as null) when the state is Empty.
    pub(crate) partitions: Vec<(String, Vec<i32>)>,
    pub(crate) last_update_ms: i64,
    pub(crate) start_ms: i64,
    /// The transaction version the client used (tagged, v1; 0 when absent).
    pub(crate) client_transaction_version: i16,
}

/// The key of a transactional id's record.
pub(crate) fn encode_key(transactional_id: &str) -> Bytes {
    let mut w = Writer::classic();
    w.buf.put_i16(KEY_TYPE);
    w.string(transactional_id);
    w.finish()
}

impl TxnLogValue {
    /// Encodes at `version` (0 or 1), with the version prefix.
    pub(crate) fn encode(&self, version: i16) -> Bytes {
        debug_assert!((0..=MAX_VALUE_VERSION).contains(&version));
        let mut w = Writer::new(version >= 1);
        w.buf.put_i16(version);
        w.buf.put_i64(self.producer_id);
        w.buf.put_i16(self.producer_epoch);
        w.buf.put_i32(self.timeout_ms);
        w.buf.put_i8(self.state.id());
        if self.state == TxnState::Empty {
            w.nullable_array_len(None);
        } else {
            w.nullable_array_len(Some(self.partitions.len()));
            for (topic, partitions) in &self.partitions {
                w.string(topic);
                w.array_len(partitions.len());
                partitions.iter().for_each(|p| w.buf.put_i32(*p));
                w.tagged_fields();
            }
        }
        w.buf.put_i64(self.last_update_ms);
        w.buf.put_i64(self.start_ms);
        if version >= 1 {
            // Tagged fields are written only when they differ from their defaults.
            let previous = self.previous_producer_id.to_be_bytes();
            let next = self.next_producer_id.to_be_bytes();
            let client = self.client_transaction_version.to_be_bytes();
            let mut tags: Vec<(u32, &[u8])> = Vec::new();
            if self.previous_producer_id != -1 {
                tags.push((TAG_PREVIOUS_PRODUCER_ID as u32, &previous));
            }
            if self.next_producer_id != -1 {
                tags.push((TAG_NEXT_PRODUCER_ID as u32, &next));
            }
            if self.client_transaction_version != 0 {
                tags.push((TAG_CLIENT_TRANSACTION_VERSION as u32, &client));
            }
            w.tagged_fields_with(&tags);
        }
        w.finish()
    }

    /// Decodes a value with its version prefix.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let version = Reader::new(bytes, false, "transaction log value").i16()?;
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordError::UnsupportedVersion(version));
        }
        let mut r = Reader::new(&bytes[2..], version >= 1, "transaction log value");
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let timeout_ms = r.i32()?;
        let status = r.i8()?;
        let state = TxnState::from_id(status).ok_or(RecordError::UnknownState(status))?;
        let mut partitions = Vec::new();
        if let Some(topics) = r.nullable_array_len()? {
            for _ in 0..topics {
                let topic = r.string()?;
                let count = r.array_len()?;
                let ids = (0..count).map(|_| r.i32()).collect::<Result<Vec<i32>, _>>()?;
                r.skip_tagged_fields()?;
                partitions.push((topic, ids));
            }
        }
        if state == TxnState::Empty {
            partitions.clear();
        }
        let last_update_ms = r.i64()?;
        let start_ms = r.i64()?;
        let (mut previous_producer_id, mut next_producer_id, mut client_transaction_version) = (-1, -1, 0);
        r.tagged_fields(|tag, v| {
            let mut field = Reader::new(v, false, "tagged field");
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => previous_producer_id = field.i64()?,
                TAG_NEXT_PRODUCER_ID => next_producer_id = field.i64()?,
                TAG_CLIENT_TRANSACTION_VERSION => client_transaction_version = field.i16()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(TxnLogValue {
            producer_id,
            previous_producer_id,
            next_producer_id,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
            client_transaction_version,
        })
    }
}

/// One record: the transactional id and its value, `None` for a tombstone.
pub(crate) fn decode(key: &[u8], value: Option<&[u8]>) -> Result<(String, Option<TxnLogValue>), RecordError> {
    let mut r = Reader::new(key, false, "key");
    let key_type = r.i16()?;
    if key_type != KEY_TYPE {
        return Err(RecordError::UnknownKeyType(key_type));
    }
    let transactional_id = r.string()?;
    let value = value.map(TxnLogValue::decode).transpose()?;
    Ok((transactional_id, value))
}

/// Whether a transactional id can be written in a key (a classic, int16-length string).
pub(crate) fn fits_in_key(transactional_id: &str) -> bool {
    transactional_id.len() <= MAX_STRING_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(state: TxnState) -> TxnLogValue {
        TxnLogValue {
            producer_id: 1000,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state,
            partitions: vec![("t".into(), vec![0, 2]), ("u".into(), vec![1])],
            last_update_ms: 1_700_000_000_100,
            start_ms: 1_700_000_000_000,
            client_transaction_version: 0,
        }
    }

    #[test]
    fn key_and_value_v0_are_byte_exact() {
        assert_eq!(&encode_key("tx")[..], &[0, 0, 0, 2, b't', b'x']);
        let bytes = value(TxnState::Ongoing).encode(0);
        let mut expected = vec![0, 0]; // version
        expected.extend(1000i64.to_be_bytes());
        expected.extend(3i16.to_be_bytes());
        expected.extend(60_000i32.to_be_bytes());
        expected.push(1); // Ongoing
        expected.extend(2i32.to_be_bytes()); // two topics
        expected.extend([0, 1, b't']);
        expected.extend(2i32.to_be_bytes());
        expected.extend(0i32.to_be_bytes());
        expected.extend(2i32.to_be_bytes());
        expected.extend([0, 1, b'u']);
        expected.extend(1i32.to_be_bytes());
        expected.extend(1i32.to_be_bytes());
        expected.extend(1_700_000_000_100i64.to_be_bytes());
        expected.extend(1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
    }

    #[test]
    fn an_empty_transaction_writes_a_null_partition_array() {
        let bytes = value(TxnState::Empty).encode(0);
        assert_eq!(&bytes[2 + 8 + 2 + 4 + 1..2 + 8 + 2 + 4 + 1 + 4], &(-1i32).to_be_bytes());
        let back = TxnLogValue::decode(&bytes).unwrap();
        assert!(back.partitions.is_empty());
    }

    #[test]
    fn both_versions_round_trip_with_v1s_tagged_fields() {
        let mut v = value(TxnState::PrepareCommit);
        assert_eq!(TxnLogValue::decode(&v.encode(0)).unwrap(), v);
        v.previous_producer_id = 7;
        v.next_producer_id = 1001;
        v.client_transaction_version = 2;
        assert_eq!(TxnLogValue::decode(&v.encode(1)).unwrap(), v);
        let (id, back) = decode(&encode_key("tx"), Some(&v.encode(1))).unwrap();
        assert_eq!((id.as_str(), back), ("tx", Some(v)));
        assert_eq!(decode(&encode_key("tx"), None).unwrap(), ("tx".into(), None));
    }

    #[test]
    fn damaged_or_foreign_records_are_refused() {
        let bytes = value(TxnState::Ongoing).encode(1);
        assert!(TxnLogValue::decode(&bytes[..bytes.len() - 3]).is_err());
        assert_eq!(decode(&[0, 5, 0, 0], None), Err(RecordError::UnknownKeyType(5)));
        let mut future = bytes.to_vec();
        future[1] = 9;
        assert_eq!(TxnLogValue::decode(&future), Err(RecordError::UnsupportedVersion(9)));
        let mut state = bytes.to_vec();
        state[2 + 8 + 2 + 4] = 42;
        assert_eq!(TxnLogValue::decode(&state), Err(RecordError::UnknownState(42)));
    }
}
