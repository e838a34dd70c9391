//! The records of `__share_group_state` in Kafka's own layout (share-coordinator's
//! ShareSnapshotKey/Value, ShareUpdateKey/Value): a key is its int16 version (0 snapshot, 1
//! update) then group id, topic id and partition, classic encoding; a value is its int16
//! version then the flexible-encoded fields. A snapshot replaces a share-partition's state; an
//! update changes the start offset (unless -1) and overlays its state batches.
//!
//! Pure byte code over `coordinator::codec`.

use bytes::{BufMut, Bytes};
use uuid::Uuid;

use crate::coordinator::codec::{CodecError, Reader, Writer};

const SNAPSHOT_KEY_VERSION: i16 = 0;
const UPDATE_KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 0;

/// Kafka's persisted delivery states (the in-memory acquired state persists as available).
pub(crate) const DELIVERY_AVAILABLE: i8 = 0;
pub(crate) const DELIVERY_ACKNOWLEDGED: i8 = 2;
pub(crate) const DELIVERY_ARCHIVED: i8 = 4;

/// Which share-partition a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct StateKey {
    pub(crate) group_id: String,
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
}

impl StateKey {
    /// Kafka's coordinator key (`SharePartitionKey.asCoordinatorKey`): which partition of
    /// `__share_group_state` holds it.
    pub(crate) fn coordinator_key(&self) -> String {
        format!("{}:{}:{}", self.group_id, kafka_uuid(&self.topic_id), self.partition)
    }
}

/// Kafka prints a Uuid in URL-safe base64 without padding (22 characters).
fn kafka_uuid(id: &Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A run of offsets in one persisted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateBatch {
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) delivery_state: i8,
    pub(crate) delivery_count: i16,
}

/// A share-partition's persisted state (a snapshot's value).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ShareState {
    pub(crate) snapshot_epoch: u16,
    pub(crate) state_epoch: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) start_offset: i64,
    pub(crate) batches: Vec<StateBatch>,
}

/// One record of `__share_group_state`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StateRecord {
    Snapshot(StateKey, Option<ShareState>),
    /// An update: start offset (-1: unchanged) and the batches it overlays.
    Update(StateKey, Option<(i64, Vec<StateBatch>)>),
}

pub(crate) fn encode_snapshot_key(key: &StateKey) -> Bytes {
    encode_key(SNAPSHOT_KEY_VERSION, key)
}

fn encode_key(version: i16, key: &StateKey) -> Bytes {
    let mut w = Writer::classic();
    w.buf.put_i16(version);
    w.string(&key.group_id);
    w.buf.put_slice(key.topic_id.as_bytes());
    w.buf.put_i32(key.partition);
    w.finish()
}

pub(crate) fn encode_snapshot_value(state: &ShareState) -> Bytes {
    let mut w = Writer::new(true);
    w.buf.put_i16(VALUE_VERSION);
    w.buf.put_u16(state.snapshot_epoch);
    w.buf.put_i32(state.state_epoch);
    w.buf.put_i32(state.leader_epoch);
    w.buf.put_i64(state.start_offset);
    write_batches(&mut w, &state.batches);
    w.tagged_fields();
    w.finish()
}

fn write_batches(w: &mut Writer, batches: &[StateBatch]) {
    w.array_len(batches.len());
    for b in batches {
        w.buf.put_i64(b.first_offset);
        w.buf.put_i64(b.last_offset);
        w.buf.put_i8(b.delivery_state);
        w.buf.put_i16(b.delivery_count);
        w.tagged_fields();
    }
}

fn read_batches(r: &mut Reader<'_>) -> Result<Vec<StateBatch>, CodecError> {
    let n = r.array_len()?;
    let mut out = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let b = StateBatch {
            first_offset: r.i64()?,
            last_offset: r.i64()?,
            delivery_state: r.i8()?,
            delivery_count: r.i16()?,
        };
        r.skip_tagged_fields()?;
        if b.last_offset < b.first_offset {
            return Err(CodecError::Invalid("state batch range"));
        }
        out.push(b);
    }
    Ok(out)
}

fn read_key(r: &mut Reader<'_>) -> Result<StateKey, CodecError> {
    let group_id = r.string()?;
    let hi = r.i64()? as u64;
    let lo = r.i64()? as u64;
    let partition = r.i32()?;
    Ok(StateKey {
        group_id,
        topic_id: Uuid::from_u64_pair(hi, lo),
        partition,
    })
}

/// Decodes one record; None for a key version that is not a share-state record.
pub(crate) fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<StateRecord>, CodecError> {
    let mut k = Reader::new(key, false, "share state key");
    let version = k.i16()?;
    if version != SNAPSHOT_KEY_VERSION && version != UPDATE_KEY_VERSION {
        return Ok(None);
    }
    let state_key = read_key(&mut k)?;
    let Some(value) = value else {
        return Ok(Some(match version {
            SNAPSHOT_KEY_VERSION => StateRecord::Snapshot(state_key, None),
            _ => StateRecord::Update(state_key, None),
        }));
    };
    let mut v = Reader::new(value, true, "share state value");
    let value_version = v.i16()?;
    if value_version != VALUE_VERSION {
        return Err(CodecError::Invalid("share state value version"));
    }
    let snapshot_epoch = v.i16()? as u16;
    if version == SNAPSHOT_KEY_VERSION {
        let state = ShareState {
            snapshot_epoch,
            state_epoch: v.i32()?,
            leader_epoch: v.i32()?,
            start_offset: v.i64()?,
            batches: read_batches(&mut v)?,
        };
        v.skip_tagged_fields()?;
        return Ok(Some(StateRecord::Snapshot(state_key, Some(state))));
    }
    let _leader_epoch = v.i32()?;
    let start_offset = v.i64()?;
    let batches = read_batches(&mut v)?;
    v.skip_tagged_fields()?;
    Ok(Some(StateRecord::Update(state_key, Some((start_offset, batches)))))
}

/// Lets the tests build update records as Kafka writes them.
#[cfg(test)]
pub(crate) fn encode_update(key: &StateKey, start_offset: i64, batches: &[StateBatch]) -> (Bytes, Bytes) {
    let mut w = Writer::new(true);
    w.buf.put_i16(VALUE_VERSION);
    w.buf.put_u16(0);
    w.buf.put_i32(0);
    w.buf.put_i64(start_offset);
    write_batches(&mut w, batches);
    w.tagged_fields();
    (encode_key(UPDATE_KEY_VERSION, key), w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StateKey {
        StateKey {
            group_id: "g".into(),
            topic_id: Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10),
            partition: 3,
        }
    }

    #[test]
    fn snapshot_round_trips_in_kafkas_layout() {
        let state = ShareState {
            snapshot_epoch: 2,
            state_epoch: 1,
            leader_epoch: 5,
            start_offset: 10,
            batches: vec![StateBatch {
                first_offset: 10,
                last_offset: 12,
                delivery_state: DELIVERY_ACKNOWLEDGED,
                delivery_count: 1,
            }],
        };
        let k = encode_snapshot_key(&key());
        // int16 version 0, int16-length "g", 16 uuid bytes, int32 partition.
        assert_eq!(&k[..5], &[0, 0, 0, 1, b'g']);
        assert_eq!(k.len(), 2 + 3 + 16 + 4);
        let v = encode_snapshot_value(&state);
        assert_eq!(
            decode(&k, Some(&v)).unwrap(),
            Some(StateRecord::Snapshot(key(), Some(state)))
        );
        assert_eq!(decode(&k, None).unwrap(), Some(StateRecord::Snapshot(key(), None)));
    }

    #[test]
    fn coordinator_key_names_the_topic_as_kafka_prints_its_id() {
        let k = StateKey {
            group_id: "g".into(),
            topic_id: Uuid::from_u128(0),
            partition: 0,
        };
        assert_eq!(k.coordinator_key(), "g:AAAAAAAAAAAAAAAAAAAAAA:0");
        let k = StateKey {
            topic_id: Uuid::from_u128(u128::MAX),
            ..k
        };
        assert_eq!(k.coordinator_key(), "g:_____________________w:0");
    }

    #[test]
    fn update_decodes_and_damage_is_an_error() {
        let b = StateBatch {
            first_offset: 1,
            last_offset: 1,
            delivery_state: DELIVERY_ARCHIVED,
            delivery_count: 3,
        };
        let (k, v) = encode_update(&key(), -1, &[b]);
        assert_eq!(
            decode(&k, Some(&v)).unwrap(),
            Some(StateRecord::Update(key(), Some((-1, vec![b]))))
        );
        assert!(decode(&k, Some(&v[..v.len() - 3])).is_err());
        assert_eq!(decode(&[0, 9], None).unwrap(), None, "another key version is not ours");
    }
}
