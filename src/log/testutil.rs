//! Test helpers: real v2 batches from kafka-protocol's encoder, decoding back, small configs.
//!
//! Owns nothing outside tests. May call: kafka-protocol, tempfile. Must never: be compiled into
//! the broker (the module is `cfg(test)`).

use super::config::{LogConfig, TimestampPolicy};
use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// `n` records with timestamps `ts, ts+1, ...` and `value_bytes`-byte values.
pub(crate) fn records(n: usize, ts: i64, value_bytes: usize) -> Vec<Record> {
    let value = vec![b'v'; value_bytes];
    (0..n as i64)
        .map(|i| {
            let key = format!("key-{i}");
            let mut r = record(i, ts + i, Some(key.as_bytes()), Some(&value), &[]);
            // Same offset-sequence distance for all, so the encoder makes one batch.
            r.sequence = i as i32;
            r
        })
        .collect()
}

/// Encodes `records` as one batch (they must share producer fields).
pub(crate) fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).expect("encode");
    buf.to_vec()
}

/// One batch of `n` records of producer `pid` at `epoch` from sequence `seq`, transactional or not.
pub(crate) fn producer_batch(n: usize, pid: i64, epoch: i16, seq: i32, transactional: bool) -> Vec<u8> {
    let records: Vec<Record> = records(n, 1_000, 8)
        .into_iter()
        .map(|r| Record {
            transactional,
            producer_id: pid,
            producer_epoch: epoch,
            sequence: seq + r.offset as i32,
            ..r
        })
        .collect();
    encode(&records, Compression::None)
}

/// One uncompressed batch of `n` small records starting at timestamp `ts`.
pub(crate) fn batch_of(n: usize, ts: i64) -> Vec<u8> {
    encode(&records(n, ts, 16), Compression::None)
}

/// Offsets of every record in `buf` (whole batches), decoded by kafka-protocol.
pub(crate) fn decode_offsets(buf: &[u8]) -> Vec<i64> {
    let mut bytes = Bytes::copy_from_slice(buf);
    RecordBatchDecoder::decode_all(&mut bytes)
        .expect("decode")
        .into_iter()
        .flat_map(|set| set.records.into_iter().map(|r| r.offset))
        .collect()
}

/// A config that never rolls, flushes or deletes on its own.
pub(crate) fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 30,
        segment_ms: i64::MAX,
        retention_ms: -1,
        retention_bytes: -1,
        index_interval_bytes: 4096,
        flush_interval_messages: u64::MAX,
        flush_interval_ms: i64::MAX,
        max_message_bytes: 1 << 20,
        delete_policy: true,
        compaction: None,
        // No time check: tests write records stamped near the epoch.
        timestamps: TimestampPolicy {
            log_append_time: false,
            before_max_ms: i64::MAX,
            after_max_ms: i64::MAX,
        },
    }
}

/// Appends one payload (one or more batches) with leader epoch 0.
pub(crate) fn append(log: &mut super::Log, mut payload: Vec<u8>, now_ms: i64) -> super::AppendInfo {
    log.append(&mut payload, 0, now_ms).expect("append")
}

/// Paths in `dir` ending with `suffix`, sorted by name (= by base offset).
pub(crate) fn files_with_suffix(dir: &std::path::Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    paths.sort();
    paths
}

/// Every offset in the log, read front to back the way a consumer does.
pub(crate) fn read_all(log: &super::Log) -> Vec<i64> {
    let mut all = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, i64::MAX, true).expect("read");
        let offsets = decode_offsets(&bytes);
        offset = offsets.last().expect("progress") + 1;
        all.extend(offsets.into_iter().filter(|&o| o >= log.log_start_offset()));
    }
    all
}

/// One record of `keyed_batch`: a key (None: keyless) and a value (None: a tombstone).
pub(crate) type KeyValue<'a> = (Option<&'a str>, Option<&'a str>);

/// One batch of keyed records, timestamps `ts, ts+1, ...`, from producer `producer_id`
/// (-1: none) starting at sequence `sequence`.
pub(crate) fn keyed_batch(
    kvs: &[KeyValue<'_>],
    ts: i64,
    producer_id: i64,
    sequence: i32,
    codec: Compression,
) -> Vec<u8> {
    let records: Vec<Record> = kvs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let offset = i as i64;
            let mut r = record(offset, ts + offset, k.map(str::as_bytes), v.map(str::as_bytes), &[]);
            if producer_id >= 0 {
                (r.producer_id, r.producer_epoch, r.sequence) = (producer_id, 0, sequence + i as i32);
            }
            r
        })
        .collect();
    encode(&records, codec)
}

/// A record without a producer at `offset` of its batch (sequence `offset - 1`: offset minus
/// sequence must not change for the encoder to make one batch, and a batch without a producer
/// starts at sequence -1, as Kafka's do).
pub(crate) fn record(
    offset: i64,
    ts: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: offset as i32 - 1,
        timestamp: ts,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    StrBytes::from_string(k.to_string()),
                    Some(Bytes::copy_from_slice(v.as_bytes())),
                )
            })
            .collect(),
    }
}

/// Every record of the log as (offset, key, value), read front to back through whole batches
/// (compacted logs have gaps and may hold batches without records).
pub(crate) fn read_records(log: &super::Log) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
    let mut all = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, i64::MAX, true).expect("read");
        let headers = super::batch::validate_replicated(&bytes).expect("whole valid batches");
        offset = headers.last().expect("progress").next_offset();
        let mut buf = bytes.clone();
        for set in RecordBatchDecoder::decode_all(&mut buf).expect("decode") {
            for r in set.records.into_iter().filter(|r| r.offset >= log.log_start_offset()) {
                all.push((r.offset, r.key, r.value));
            }
        }
    }
    all
}

/// Every aborted transaction the log's `.txnindex` files list, as (producer, first, last offset).
pub(crate) fn txn_index_entries(log: &super::Log) -> Vec<(i64, i64, i64)> {
    log.segments
        .iter()
        .flat_map(|s| {
            s.txn_index()
                .entries()
                .iter()
                .map(|e| (e.producer_id, e.first_offset, e.last_offset))
        })
        .collect()
}
