//! Control batches: what a transaction marker (Kafka's COMMIT or ABORT control record) says.
//!
//! A control batch holds one record whose key is `version (int16), type (int16)` — 0 ABORT,
//! 1 COMMIT, others (KRaft's leader-change and snapshot records) are not markers — and whose
//! value for a marker is `version (int16)` then `EndTxnMarker` (the coordinator epoch).
//!
//! Owns: writing a marker batch and reading a marker out of a control batch, with
//! kafka-protocol's record codec (a control batch is one small uncompressed record; data
//! batches are never decoded). May call: kafka-protocol. Must never: be called for a data batch
//! on the append path.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::EndTxnMarker;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::error::LogError;

/// The control record type of an ABORT marker.
const ABORT: i16 = 0;
/// The control record type of a COMMIT marker.
const COMMIT: i16 = 1;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) commit: bool,
    /// The epoch of the transaction coordinator that wrote it.
    pub(crate) coordinator_epoch: i32,
}

/// The control batch of a marker for producer `producer_id` at `producer_epoch` (offsets and
/// leader epoch are the log's to assign): transactional, control, no sequence.
pub(crate) fn encode_marker(producer_id: i64, producer_epoch: i16, marker: Marker, now_ms: i64) -> BytesMut {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(if marker.commit { COMMIT } else { ABORT });
    let end = EndTxnMarker::default().with_coordinator_epoch(marker.coordinator_epoch);
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    end.encode(&mut value, 0).expect("EndTxnMarker v0 encodes");
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, [&record], &options).expect("encoding into memory cannot fail");
    buf
}

/// What a control record's key says: `Some(true)` COMMIT, `Some(false)` ABORT, `None` for
/// another control record type or a key too short to say.
pub(crate) fn marker_type(key: &[u8]) -> Option<bool> {
    match key {
        [_, _, t0, t1, ..] => match i16::from_be_bytes([*t0, *t1]) {
            ABORT => Some(false),
            COMMIT => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// The marker in a control batch (the whole batch, as stored); `None` for a control batch
/// that is not a transaction marker, or one emptied by compaction.
pub(crate) fn read_marker(batch: &[u8]) -> Result<Option<Marker>, LogError> {
    let invalid = |what: &str| LogError::InvalidRecord(format!("control batch: {what}"));
    let mut bytes = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode(&mut bytes).map_err(|e| invalid(&e.to_string()))?;
    let Some(record) = set.records.into_iter().next() else {
        return Ok(None);
    };
    let key = record.key.ok_or_else(|| invalid("no key"))?;
    if key.len() < 4 {
        return Err(invalid("key shorter than 4 bytes"));
    }
    if i16::from_be_bytes([key[0], key[1]]) < 0 {
        return Err(invalid("negative key version"));
    }
    let Some(commit) = marker_type(&key) else {
        return Ok(None);
    };
    let mut value = record.value.ok_or_else(|| invalid("marker without a value"))?;
    if value.len() < 2 || i16::from_be_bytes([value[0], value[1]]) < 0 {
        return Err(invalid("marker value version"));
    }
    let mut body = value.split_off(2);
    let end = EndTxnMarker::decode(&mut body, 0).map_err(|e| invalid(&e.to_string()))?;
    Ok(Some(Marker {
        commit,
        coordinator_epoch: end.coordinator_epoch,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::validate_replicated;

    #[test]
    fn a_marker_batch_is_one_transactional_control_record_without_sequence() {
        let marker = Marker {
            commit: true,
            coordinator_epoch: 7,
        };
        let batch = encode_marker(42, 3, marker, 1_000);
        let headers = validate_replicated(&batch).unwrap();
        let h = headers[0];
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence, h.records_count),
            (42, 3, -1, 1)
        );
        assert_eq!(read_marker(&batch).unwrap(), Some(marker));
        let abort = Marker {
            commit: false,
            coordinator_epoch: 0,
        };
        assert_eq!(read_marker(&encode_marker(1, 0, abort, 0)).unwrap(), Some(abort));
    }
}
