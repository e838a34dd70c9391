//! The contract every variant of the segment log keeps, run against each: a plain log, and a
//! log the cleaner compacts between writes. What holds for both: appends take consecutive
//! offsets from the log end; a read at any offset returns whole, CRC-valid batches starting at
//! or before it, offsets only going up; the latest value of every key is readable at the
//! offset it was written at; a reopened log reads the same; a truncation is where appends go
//! on; a timestamp lookup finds a record at or after the time asked.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::batch::validate_replicated;
use super::compaction::{clean, with_log, CleanTarget, CleanerIo};
use super::config::{CompactionConfig, LogConfig};
use super::offset_map::OffsetMap;
use super::swap::Step;
use super::testutil::{config, keyed_batch, read_records};
use super::throttle::Throttle;
use super::Log;

/// How a variant treats its log between writes.
type Churn = fn(&mut Log, i64);

struct Locked<'a>(Mutex<&'a mut Log>);

impl CleanTarget for Locked<'_> {
    fn name(&self) -> (String, i32) {
        ("contract".into(), 0)
    }
    fn lock_log(&self, f: &mut dyn FnMut(&mut Log)) -> bool {
        f(&mut self.0.lock().unwrap());
        true
    }
    fn upper_bound(&self) -> i64 {
        i64::MAX
    }
}

/// The compacted variant's churn: one cleaning of everything cleanable.
fn compact(log: &mut Log, now_ms: i64) {
    let target = Locked(Mutex::new(log));
    if let Some(d) = with_log(&target, |log| log.dirtiness(i64::MAX, now_ms).unwrap()).flatten() {
        let (mut map, throttle, stop) = (
            OffsetMap::new(1 << 20, 0.9),
            Throttle::new(f64::MAX),
            AtomicBool::new(false),
        );
        let mut io = CleanerIo {
            map: &mut map,
            throttle: &throttle,
            stop: &stop,
            write_chunk_bytes: 8192,
            swap_until: Step::Deleted,
        };
        clean(&target, &d, &mut io, now_ms).unwrap();
    }
}

fn plain(_: &mut Log, _: i64) {}

fn variants() -> [(&'static str, LogConfig, Churn); 2] {
    let small = LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 300,
        ..config()
    };
    let compacted = LogConfig {
        compaction: Some(CompactionConfig {
            min_cleanable_ratio: 0.0,
            ..CompactionConfig::default()
        }),
        ..small.clone()
    };
    [("plain", small, plain), ("compacted", compacted, compact)]
}

/// Writes rounds over a few keys, churning between rounds; returns key -> (offset, value).
fn write(log: &mut Log, churn: Churn) -> BTreeMap<Bytes, (i64, Bytes)> {
    let mut latest = BTreeMap::new();
    for round in 0..12i64 {
        for k in 0..8 {
            let key = format!("k{k}");
            let value = format!("round {round} key {k} {}", "x".repeat(40));
            let batch = keyed_batch(
                &[(Some(key.as_str()), Some(value.as_str()))],
                1_000 * round + k,
                -1,
                0,
                Compression::Gzip,
            );
            let end = log.log_end_offset();
            let info = log.append(&mut batch.clone(), 0, 0).unwrap();
            assert_eq!(info.base_offset, end, "appends take the log end");
            latest.insert(Bytes::from(key), (info.base_offset, Bytes::from(value)));
        }
        churn(log, 0);
    }
    latest
}

fn check_reads(log: &Log, latest: &BTreeMap<Bytes, (i64, Bytes)>) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    for offset in start..end {
        let bytes = log.read(offset, 700, i64::MAX, true).unwrap();
        let headers = validate_replicated(&bytes).unwrap();
        assert!(headers[0].last_offset() >= offset, "read at {offset}");
        assert!(headers.windows(2).all(|w| w[1].base_offset > w[0].last_offset()));
    }
    let mut seen = BTreeMap::new();
    let mut last = -1;
    for (offset, key, value) in read_records(log) {
        assert!(offset > last && offset < end);
        last = offset;
        seen.insert(key.unwrap(), (offset, value.unwrap()));
    }
    assert_eq!(&seen, latest);
}

#[test]
fn every_segment_log_variant_keeps_the_contract() {
    for (name, config, churn) in variants() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let mut log = Log::open(&path, config.clone(), 0).unwrap();
        let latest = write(&mut log, churn);
        check_reads(&log, &latest);
        // Timestamps: the record found is at or after the time asked.
        for ts in [0, 2_500, 7_003, 11_007] {
            let (offset, found) = log.offset_for_timestamp(ts).unwrap().unwrap_or((-1, -1));
            assert!(found >= ts && offset >= 0, "{name}: {ts} -> {offset}@{found}");
        }
        let end = log.log_end_offset();
        log.close().unwrap();
        let mut log = Log::open(&path, config.clone(), end).unwrap();
        check_reads(&log, &latest);
        // Truncation: the end moves back to a batch boundary at or below, appends go on there.
        log.truncate_to(end - 3).unwrap();
        let cut = log.log_end_offset();
        assert!(cut <= end - 3, "{name}");
        let info = log
            .append(
                &mut keyed_batch(&[(Some("z"), Some("z"))], 1, -1, 0, Compression::None),
                0,
                0,
            )
            .unwrap();
        assert_eq!(info.base_offset, cut, "{name}");
        churn(&mut log, 0);
        let last = read_records(&log).last().cloned().unwrap();
        assert_eq!(last.0, cut, "{name}");
    }
}
