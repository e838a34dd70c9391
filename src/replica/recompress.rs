//! Broker-side recompression for topics whose `compression.type` is not `producer`: the one
//! place the broker rewrites a producer's batch. Only the records section changes codec: it is
//! decompressed and compressed again as a whole, byte for byte, so every record (keys, values,
//! repeated header keys, timestamps, offset deltas) is kept exactly; no record is parsed. The
//! header keeps its producer id, epoch, sequences and counts; the codec bits, the batch length
//! and the CRC-32C are written anew. Batches already in the topic's codec pass through.

use std::io;

use bytes::BytesMut;
use kafka_protocol::records::Compression;

use crate::log::compression::{self, EXPANSION_MAX};
use crate::log::LogError;

const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
/// Attributes (the low three bits are the codec); the CRC covers everything from here.
const ATTRIBUTES_AT: usize = 21;
const HEADER_BYTES: usize = 61;
/// The offset and length fields before what `batchLength` counts.
const LOG_OVERHEAD: usize = 12;
const CODEC_MASK: i16 = 0x7;

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

fn attributes(batch: &[u8]) -> i16 {
    i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]])
}

/// Re-encodes every batch of `batches` not already in `target`; `None` when nothing changes.
/// The caller has validated `batches` (lengths, CRCs) already. A rewritten batch may not
/// pass `max_message_bytes` (MESSAGE_TOO_LARGE, as Kafka checks the batch it will store), and
/// its records may not expand past [`EXPANSION_MAX`] times that on the way.
pub(crate) fn recompress(
    batches: &[u8],
    target: Compression,
    max_message_bytes: u32,
) -> Result<Option<BytesMut>, LogError> {
    let mut position = 0;
    let mut out: Option<BytesMut> = None;
    while position + HEADER_BYTES <= batches.len() {
        let length = i32::from_be_bytes(
            batches[position + LENGTH_AT..position + LOG_OVERHEAD]
                .try_into()
                .expect("4 bytes"),
        );
        let end = position + LOG_OVERHEAD + length.max(0) as usize;
        let Some(batch) = batches.get(position..end) else {
            return Err(LogError::CorruptMessage(
                "batch runs past the end of the request".into(),
            ));
        };
        if attributes(batch) & CODEC_MASK == target as i16 {
            if let Some(buf) = out.as_mut() {
                buf.extend_from_slice(batch);
            }
        } else {
            let buf = out.get_or_insert_with(|| BytesMut::from(&batches[..position]));
            rewrite(batch, target, max_message_bytes as usize, buf)?;
        }
        position = end;
    }
    Ok(out)
}

/// Appends `batch` with its records section in `target` to `out`, streaming from one codec
/// into the other: neither the expanded records nor an oversized result are ever held.
fn rewrite(batch: &[u8], target: Compression, max_batch_bytes: usize, out: &mut BytesMut) -> Result<(), LogError> {
    let source =
        compression::codec(attributes(batch) & CODEC_MASK).map_err(|e| LogError::InvalidRecord(e.to_string()))?;
    let start = out.len();
    out.extend_from_slice(&batch[..HEADER_BYTES]);
    let expand_max = max_batch_bytes.saturating_mul(EXPANSION_MAX);
    let copied = (|| {
        let mut records = compression::decompressor(source, &batch[HEADER_BYTES..], expand_max)?;
        let mut packed = compression::compressor(target, out, start + max_batch_bytes)?;
        io::copy(&mut records, &mut packed)?;
        packed.finish()
    })();
    if let Err(e) = copied {
        return Err(match e.kind() {
            io::ErrorKind::WriteZero => LogError::RecompressedTooLarge {
                max: max_batch_bytes as u32,
            },
            _ => LogError::CorruptMessage(format!("cannot recompress a batch: {e}")),
        });
    }
    let written = &mut out[start..];
    let length = (written.len() - LOG_OVERHEAD) as i32;
    written[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (attributes(written) & !CODEC_MASK) | target as i16;
    written[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&written[ATTRIBUTES_AT..]);
    written[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    use super::*;
    use bytes::Bytes;

    fn batch(compression: Compression, producer_id: i64) -> BytesMut {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                producer_id,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                ..batch_record(i)
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

    fn batch_record(i: i64) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: 2,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: 10 + i as i32,
            timestamp: 1000 + i,
            key: None,
            value: None,
            headers: IndexMap::new(),
        }
    }

    #[test]
    fn every_codec_pair_keeps_every_record_and_a_valid_crc() {
        let codecs = crate::log::compression::ALL_CODECS;
        for from in codecs {
            for to in codecs.iter().copied().filter(|c| *c != from) {
                let original = batch(from, 7);
                let out = recompress(&original, to, 1 << 20).unwrap().expect("rewritten");
                assert_eq!(attributes(&out) & CODEC_MASK, to as i16);
                assert_eq!(
                    u32::from_be_bytes(out[CRC_AT..CRC_AT + 4].try_into().unwrap()),
                    crc32c::crc32c(&out[ATTRIBUTES_AT..])
                );
                assert_eq!(out[..LENGTH_AT], original[..LENGTH_AT], "base offset kept");
                assert_eq!(
                    out[LOG_OVERHEAD..CRC_AT],
                    original[LOG_OVERHEAD..CRC_AT],
                    "leader epoch, magic kept"
                );
                assert_eq!(
                    out[ATTRIBUTES_AT + 2..HEADER_BYTES],
                    original[ATTRIBUTES_AT + 2..HEADER_BYTES],
                    "ids, sequences, counts kept"
                );
                let before = RecordBatchDecoder::decode(&mut original.freeze()).unwrap().records;
                let after = RecordBatchDecoder::decode(&mut out.freeze()).unwrap().records;
                assert_eq!(before, after, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn records_section_survives_a_round_trip_byte_for_byte() {
        // Nothing inside the records is parsed, so a repeated header key (which a map-based
        // record type would collapse) is kept: the raw sections are equal after a round trip.
        let original = batch(Compression::None, -1);
        let out = recompress(&original, Compression::Zstd, 1 << 20).unwrap().unwrap();
        let back = recompress(&out, Compression::None, 1 << 20).unwrap().unwrap();
        assert_eq!(back[HEADER_BYTES..], original[HEADER_BYTES..]);
    }

    #[test]
    fn a_gzip_bomb_for_an_uncompressed_topic_is_message_too_large_not_memory() {
        // 1 KiB of a repeated byte per record, 4096 records: 4 MiB expanded, a few KiB packed.
        let records: Vec<Record> = (0..4096)
            .map(|i| Record {
                value: Some(Bytes::from(vec![0u8; 1024])),
                ..batch_record(i)
            })
            .collect();
        let mut bomb = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut bomb,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::Gzip,
            },
        )
        .unwrap();
        assert!(bomb.len() < 64 * 1024);
        let err = recompress(&bomb, Compression::None, 1 << 20).unwrap_err();
        assert!(matches!(err, LogError::RecompressedTooLarge { .. }), "{err}");
        // Into a codec that packs it small again it is fine, under the expansion bound...
        assert!(recompress(&bomb, Compression::Zstd, 1 << 20).unwrap().is_some());
        // ...and refused past it, without expanding the rest.
        let err = recompress(&bomb, Compression::Zstd, 32 * 1024).unwrap_err();
        assert!(matches!(err, LogError::CorruptMessage(_)), "{err}");
    }

    #[test]
    fn batch_already_in_the_topic_codec_is_untouched() {
        assert!(recompress(&batch(Compression::Lz4, -1), Compression::Lz4, 1 << 20)
            .unwrap()
            .is_none());
    }
}
