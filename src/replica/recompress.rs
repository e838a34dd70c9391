//! Broker-side recompression for topics whose `compression.type` is not `producer`: the one
//! place the broker rewrites a producer's batch. Only the records section changes codec: it is
//! decompressed and compressed again as a whole, byte for byte, so every record (keys, values,
//! repeated header keys, timestamps, offset deltas) is kept exactly; no record is parsed. The
//! header keeps its producer id, epoch, sequences and counts; the codec bits, the batch length
//! and the CRC-32C are written anew. Batches already in the topic's codec pass through.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codecs, Compressor, Decompressor};
use kafka_protocol::records::Compression;

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

fn codec(code: i16) -> Result<Compression, LogError> {
    Ok(match code {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        other => return Err(LogError::InvalidRecord(format!("unknown compression codec {other}"))),
    })
}

fn attributes(batch: &[u8]) -> i16 {
    i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]])
}

/// Re-encodes every batch of `batches` not already in `target`; `None` when nothing changes.
/// The caller has validated `batches` (lengths, CRCs) already.
pub(crate) fn recompress(batches: &[u8], target: Compression) -> Result<Option<BytesMut>, LogError> {
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
            rewrite(batch, target, buf)?;
        }
        position = end;
    }
    Ok(out)
}

/// Appends `batch` with its records section in `target` to `out`.
fn rewrite(batch: &[u8], target: Compression, out: &mut BytesMut) -> Result<(), LogError> {
    let source = codec(attributes(batch) & CODEC_MASK)?;
    let raw = decompress(Bytes::copy_from_slice(&batch[HEADER_BYTES..]), source)
        .map_err(|e| LogError::CorruptMessage(format!("cannot decompress a batch to recompress it: {e}")))?;
    let start = out.len();
    out.extend_from_slice(&batch[..HEADER_BYTES]);
    compress(&raw, target, out).map_err(|e| LogError::InvalidRecord(format!("cannot recompress a batch: {e}")))?;
    let written = &mut out[start..];
    let length = (written.len() - LOG_OVERHEAD) as i32;
    written[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (attributes(written) & !CODEC_MASK) | target as i16;
    written[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&written[ATTRIBUTES_AT..]);
    written[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

fn take_all(b: &mut Bytes) -> anyhow::Result<Bytes> {
    Ok(b.copy_to_bytes(b.remaining()))
}

fn decompress(mut section: Bytes, source: Compression) -> anyhow::Result<Bytes> {
    match source {
        Compression::None => Ok(section),
        Compression::Gzip => codecs::Gzip::decompress(&mut section, take_all),
        Compression::Snappy => codecs::Snappy::decompress(&mut section, take_all),
        Compression::Lz4 => codecs::Lz4::decompress(&mut section, take_all),
        Compression::Zstd => codecs::Zstd::decompress(&mut section, take_all),
    }
}

fn compress(raw: &[u8], target: Compression, out: &mut BytesMut) -> anyhow::Result<()> {
    let put = |b: &mut BytesMut| {
        b.put_slice(raw);
        Ok(())
    };
    match target {
        Compression::None => put(out),
        Compression::Gzip => codecs::Gzip::compress(out, put),
        Compression::Snappy => codecs::Snappy::compress(out, put),
        Compression::Lz4 => codecs::Lz4::compress(out, put),
        Compression::Zstd => codecs::Zstd::compress(out, put),
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

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
    fn every_codec_pair_keeps_every_record_and_a_valid_crc() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for from in codecs {
            for to in codecs.iter().copied().filter(|c| *c != from) {
                let original = batch(from, 7);
                let out = recompress(&original, to).unwrap().expect("rewritten");
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
        let out = recompress(&original, Compression::Zstd).unwrap().unwrap();
        let back = recompress(&out, Compression::None).unwrap().unwrap();
        assert_eq!(back[HEADER_BYTES..], original[HEADER_BYTES..]);
    }

    #[test]
    fn batch_already_in_the_topic_codec_is_untouched() {
        assert!(recompress(&batch(Compression::Lz4, -1), Compression::Lz4)
            .unwrap()
            .is_none());
    }
}
