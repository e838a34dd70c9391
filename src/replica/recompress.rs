//! Broker-side recompression for topics whose `compression.type` is not `producer`: the one
//! place the broker rewrites a producer's batch. Records are decoded and re-encoded with the
//! topic's codec, keeping every record field (offsets deltas, timestamps, keys, values,
//! headers) and the batch's producer id, epoch and sequences; the encoder computes the new
//! CRC. Batches already in the topic's codec pass through untouched.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

use crate::log::LogError;

/// Offset of the attributes field in a v2 batch header; its low three bits are the codec.
const ATTRIBUTES_AT: usize = 21;
const LENGTH_AT: usize = 8;
const LOG_OVERHEAD: usize = 12;

/// The codec named by a topic's `compression.type`; `None` means keep the producer's.
pub(crate) fn topic_codec(compression_type: &str) -> Option<Compression> {
    match compression_type {
        "uncompressed" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

fn codec_of(batch: &[u8]) -> Option<i16> {
    let attributes = batch.get(ATTRIBUTES_AT..ATTRIBUTES_AT + 2)?;
    Some(i16::from_be_bytes([attributes[0], attributes[1]]) & 0x7)
}

/// Re-encodes every batch of `batches` not already in `target`; `None` when nothing changes.
/// A batch that does not parse is left for the log's validation to refuse with its own error.
pub(crate) fn recompress(batches: &[u8], target: Compression) -> Result<Option<BytesMut>, LogError> {
    let mut position = 0;
    let mut out: Option<BytesMut> = None;
    while position + LOG_OVERHEAD <= batches.len() {
        let length = i32::from_be_bytes(
            batches[position + LENGTH_AT..position + LOG_OVERHEAD]
                .try_into()
                .expect("4 bytes"),
        );
        let end = position + LOG_OVERHEAD + length.max(0) as usize;
        let Some(batch) = batches.get(position..end) else {
            return Ok(None);
        };
        let keep = codec_of(batch) == Some(target as i16);
        if !keep {
            let buf = out.get_or_insert_with(|| BytesMut::from(&batches[..position]));
            let mut bytes = Bytes::copy_from_slice(batch);
            let set = RecordBatchDecoder::decode(&mut bytes)
                .map_err(|e| LogError::CorruptMessage(format!("cannot decompress batch to recompress it: {e}")))?;
            let options = RecordEncodeOptions {
                version: 2,
                compression: target,
            };
            RecordBatchEncoder::encode(buf, &set.records, &options)
                .map_err(|e| LogError::InvalidRecord(format!("cannot recompress batch: {e}")))?;
        } else if let Some(buf) = out.as_mut() {
            buf.extend_from_slice(batch);
        }
        position = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{Record, TimestampType};

    use super::*;

    fn batch(compression: Compression, producer_id: i64) -> BytesMut {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch: 2,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: 10 + i as i32,
                timestamp: 1000 + i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf
    }

    #[test]
    fn batch_in_another_codec_is_rewritten_with_every_record_kept() {
        let original = batch(Compression::None, 7);
        let out = recompress(&original, Compression::Zstd).unwrap().expect("rewritten");
        assert_eq!(codec_of(&out), Some(Compression::Zstd as i16));
        let before = RecordBatchDecoder::decode(&mut original.freeze()).unwrap().records;
        let after = RecordBatchDecoder::decode(&mut out.freeze()).unwrap().records;
        assert_eq!(before, after);
    }

    #[test]
    fn batch_already_in_the_topic_codec_is_untouched() {
        assert!(recompress(&batch(Compression::Lz4, -1), Compression::Lz4)
            .unwrap()
            .is_none());
    }
}
