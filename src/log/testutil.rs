//! Test helpers: real v2 batches from kafka-protocol's encoder, decoding back, small configs.
//!
//! Owns nothing outside tests. May call: kafka-protocol, tempfile. Must never: be compiled into
//! the broker (the module is `cfg(test)`).

use super::log::LogConfig;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// `n` records with timestamps `ts, ts+1, ...` and `value_bytes`-byte values.
pub(crate) fn records(n: usize, ts: i64, value_bytes: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Same offset-sequence distance for all, so the encoder makes one batch.
            sequence: i as i32,
            timestamp: ts + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
            headers: Default::default(),
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
