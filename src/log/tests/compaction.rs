//! The cleaner over generated logs: latest value per key at its original offset, tombstone
//! lifetime, grouping, producers' last batches, rebuilt batches that keep their records'
//! bytes, a log that changes under the cleaner, and a crash at each step of the swap.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use kafka_protocol::records::Compression;

use super::*;
use crate::log::config::{CompactionConfig, LogConfig};
use crate::log::records::{walk_records, Detail};
use crate::log::testutil::{config, files_with_suffix, keyed_batch, read_records, KeyValue};

pub(super) const DAY: i64 = 86_400_000;

/// What a test does to the log at its n-th locking.
type BeforeLock = Box<dyn Fn(usize, &mut Log) + Send + Sync>;

/// A log behind a lock, as a partition holds it; `before_lock` runs on each locking.
pub(super) struct Target {
    log: Mutex<Option<Log>>,
    locks: AtomicUsize,
    before_lock: BeforeLock,
}

impl Target {
    pub(super) fn new(log: Log) -> Target {
        Target {
            log: Mutex::new(Some(log)),
            locks: AtomicUsize::new(0),
            before_lock: Box::new(|_, _| {}),
        }
    }

    pub(super) fn log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        f(self.log.lock().unwrap().as_mut().unwrap())
    }

    pub(super) fn into_log(self) -> Log {
        self.log.into_inner().unwrap().unwrap()
    }
}

impl CleanTarget for Target {
    fn name(&self) -> (String, i32) {
        ("t".into(), 0)
    }

    fn lock_log(&self, f: &mut dyn FnMut(&mut Log)) -> bool {
        let n = self.locks.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.log.lock().unwrap();
        let Some(log) = guard.as_mut() else { return false };
        (self.before_lock)(n, log);
        f(log);
        true
    }

    fn upper_bound(&self) -> i64 {
        i64::MAX
    }
}

pub(super) fn compacted(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        compaction: Some(CompactionConfig {
            delete_retention_ms: DAY,
            min_cleanable_ratio: 0.0,
            ..CompactionConfig::default()
        }),
        ..config()
    }
}

pub(super) fn key(i: usize) -> String {
    format!("key-{i:03}")
}

/// `rounds` rounds over `keys` keys, one batch of 10 records at a time; in round 5 every
/// fourth key is deleted (a tombstone) and never written again. Returns
/// what a reader must see once compacted: key -> (offset, value or tombstone).
fn write_rounds(
    log: &mut Log,
    rounds: usize,
    keys: usize,
    codec: Compression,
) -> BTreeMap<String, (i64, Option<String>)> {
    let mut latest = BTreeMap::new();
    for round in 0..rounds {
        for chunk in (0..keys).collect::<Vec<_>>().chunks(10) {
            let kvs: Vec<(String, Option<String>)> = chunk
                .iter()
                .filter(|&&k| !(round > 5 && k % 4 == 0))
                .map(|&k| {
                    let value = (!(round == 5 && k % 4 == 0)).then(|| format!("v{round}-{k}"));
                    (key(k), value)
                })
                .collect();
            if kvs.is_empty() {
                continue;
            }
            let refs: Vec<KeyValue<'_>> = kvs.iter().map(|(k, v)| (Some(k.as_str()), v.as_deref())).collect();
            let info = log
                .append(&mut keyed_batch(&refs, 1_000 + round as i64, -1, 0, codec), 0, 0)
                .unwrap();
            for (i, (k, v)) in kvs.into_iter().enumerate() {
                latest.insert(k, (info.base_offset + i as i64, v));
            }
        }
    }
    latest
}

/// Every record of the log as key -> (offset, value); fails on a key seen twice.
fn contents(log: &Log) -> BTreeMap<String, (i64, Option<String>)> {
    let mut out = BTreeMap::new();
    let mut last = -1;
    for (offset, key, value) in read_records(log) {
        assert!(offset > last, "offsets go up: {offset} after {last}");
        last = offset;
        let key = String::from_utf8(key.expect("keyed").to_vec()).unwrap();
        let value = value.map(|v| String::from_utf8(v.to_vec()).unwrap());
        assert!(out.insert(key.clone(), (offset, value)).is_none(), "{key} twice");
    }
    out
}

struct Io {
    map: OffsetMap,
    throttle: Throttle,
    stop: AtomicBool,
}

impl Io {
    fn new() -> Io {
        Io {
            map: OffsetMap::new(1 << 20, 0.9),
            throttle: Throttle::new(f64::MAX),
            stop: AtomicBool::new(false),
        }
    }

    fn run(&mut self, target: &dyn CleanTarget, now_ms: i64, until: Step) -> Result<CleanStats, CleanError> {
        let d = with_log(target, |log| log.dirtiness(i64::MAX, now_ms).unwrap().unwrap()).unwrap();
        let mut io = CleanerIo {
            map: &mut self.map,
            throttle: &self.throttle,
            stop: &self.stop,
            write_chunk_bytes: 4096,
            swap_until: until,
        };
        clean(target, &d, &mut io, now_ms)
    }
}

pub(super) fn clean_at(target: &Target, now_ms: i64) -> CleanStats {
    Io::new().run(target, now_ms, Step::Deleted).unwrap()
}

/// A log of 20 rounds over 50 keys in small segments, with an active segment of its own.
fn written_log(dir: &Path, codec: Compression) -> (Log, BTreeMap<String, (i64, Option<String>)>) {
    let mut log = Log::open(dir, compacted(4096), 0).unwrap();
    let latest = write_rounds(&mut log, 20, 50, codec);
    log.roll().unwrap();
    (log, latest)
}

#[test]
fn the_latest_value_of_every_key_stays_at_its_original_offset() {
    for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        let (log, latest) = written_log(dir.path(), codec);
        let (end, segments) = (log.log_end_offset(), log.segment_count());
        let target = Target::new(log);
        let stats = clean_at(&target, 0);
        assert_eq!(target.log(|log| contents(log)), latest, "{codec:?}");
        assert!(stats.bytes_written < stats.bytes_read / 5, "{codec:?}: {stats:?}");
        assert_eq!(stats.end_offset, end, "mapped up to the active segment");
        // Groups are made of what the segments held before: the next cleaning merges the
        // small cleaned ones, as Kafka's does.
        clean_at(&target, 0);
        let log = target.into_log();
        assert_eq!(contents(&log), latest, "{codec:?}");
        assert_eq!(log.log_end_offset(), end);
        assert!(log.segment_count() <= 3, "{} of {segments}", log.segment_count());
        // Tombstones stay until they are due.
        assert!(latest.values().any(|(_, v)| v.is_none()));
        // Reads from any offset start at or before it and never run backwards.
        for offset in (0..end).step_by(37) {
            let bytes = log.read(offset, 1 << 16, i64::MAX, true).unwrap();
            let first = crate::log::batch::validate_replicated(&bytes).unwrap()[0];
            assert!(first.last_offset() >= offset, "read at {offset}");
        }
    }
}

#[test]
fn cleaned_segments_survive_a_restart_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let (log, latest) = written_log(dir.path(), Compression::Gzip);
    let target = Target::new(log);
    clean_at(&target, 0);
    let log = target.into_log();
    let (end, segments) = (log.log_end_offset(), log.segment_count());
    log.close().unwrap();
    let mut log = Log::open(dir.path(), compacted(4096), end).unwrap();
    assert_eq!(log.recovery_stats().segments_scanned, 0, "cleaned segments are trusted");
    assert_eq!((log.log_end_offset(), log.segment_count()), (end, segments));
    assert_eq!(contents(&log), latest);
    assert!(files_with_suffix(dir.path(), ".cleaned").is_empty());
    assert!(files_with_suffix(dir.path(), ".swap").is_empty());
    // Appends go on where the log ended.
    let info = log
        .append(
            &mut keyed_batch(&[(Some("k"), Some("v"))], 5, -1, 0, Compression::None),
            0,
            0,
        )
        .unwrap();
    assert_eq!(info.base_offset, end);
}

#[test]
fn tombstones_go_once_delete_retention_passed_since_the_cleaning_that_kept_them() {
    let dir = tempfile::tempdir().unwrap();
    let (log, latest) = written_log(dir.path(), Compression::None);
    let target = Target::new(log);
    let t0 = 1_000_000;
    clean_at(&target, t0);
    assert_eq!(target.log(|log| contents(log)), latest);
    // A day later, less a millisecond: still there.
    clean_at(&target, t0 + DAY - 1);
    assert_eq!(target.log(|log| contents(log)), latest);
    clean_at(&target, t0 + DAY);
    let expected: BTreeMap<_, _> = latest.into_iter().filter(|(_, (_, v))| v.is_some()).collect();
    assert_eq!(target.log(|log| contents(log)), expected);
}

#[test]
fn a_tombstone_written_after_a_cleaning_waits_its_own_full_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(512), 0).unwrap();
    let kv = |k: &'static str, v: Option<&'static str>| keyed_batch(&[(Some(k), v)], 1, -1, 0, Compression::None);
    log.append(&mut kv("a", Some("1")), 0, 0).unwrap();
    log.roll().unwrap();
    let target = Target::new(log);
    clean_at(&target, 0);
    target.log(|log| {
        log.append(&mut kv("a", None), 0, 0).unwrap();
        log.roll().unwrap();
    });
    // The first cleaning is a day old; the tombstone's own first cleaning is now.
    clean_at(&target, DAY);
    assert_eq!(target.log(|log| read_records(log).len()), 1, "the tombstone stays");
    clean_at(&target, 2 * DAY);
    assert!(target.log(|log| read_records(log)).is_empty());
}

#[test]
fn keyless_records_written_before_compaction_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(), 0).unwrap();
    let batch = keyed_batch(
        &[(None, Some("x")), (Some("k"), Some("y"))],
        1,
        -1,
        0,
        Compression::None,
    );
    log.append(&mut batch.clone(), 0, 0).unwrap();
    log.roll().unwrap();
    log.update_config(compacted(1 << 20));
    let target = Target::new(log);
    clean_at(&target, 0);
    let records = target.log(|log| read_records(log));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, 1);
}

#[test]
fn a_producers_last_batch_stays_as_an_empty_header_and_its_sequence_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(1 << 20), 0).unwrap();
    // Producer 7 writes a and b (sequences 0, 1); a plain producer then overwrites both.
    log.append(
        &mut keyed_batch(
            &[(Some("a"), Some("1")), (Some("b"), Some("1"))],
            1,
            7,
            0,
            Compression::None,
        ),
        0,
        0,
    )
    .unwrap();
    log.append(
        &mut keyed_batch(
            &[(Some("a"), Some("2")), (Some("b"), Some("2"))],
            2,
            -1,
            0,
            Compression::None,
        ),
        0,
        0,
    )
    .unwrap();
    log.roll().unwrap();
    let target = Target::new(log);
    clean_at(&target, 0);
    let log = target.into_log();
    let bytes = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    let headers = crate::log::batch::validate_replicated(&bytes).unwrap();
    assert_eq!(headers.len(), 2);
    assert_eq!(
        (
            headers[0].producer_id,
            headers[0].records_count,
            headers[0].last_offset()
        ),
        (7, 0, 1)
    );
    assert_eq!(read_records(&log).iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3]);
    log.close().unwrap();
    // Reloaded from the log alone, producer 7 still expects sequence 2.
    for snapshot in files_with_suffix(dir.path(), ".snapshot") {
        std::fs::remove_file(snapshot).unwrap();
    }
    let log = Log::open(dir.path(), compacted(1 << 20), 0).unwrap();
    assert_eq!(log.producers().get(7).and_then(|p| p.last_seq()), Some(1));
}

#[test]
fn a_rebuilt_batch_copies_its_kept_records_byte_for_byte_repeated_headers_included() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(1 << 20), 0).unwrap();
    let record = |offset: i64, key: &str, headers: &[(&str, &str)]| {
        crate::log::testutil::record(offset, 1 + offset, Some(key.as_bytes()), Some(b"v"), headers)
    };
    let records = [record(0, "gone", &[]), record(1, "kept", &[("h1", "a"), ("h2", "b")])];
    let mut batch = crate::log::testutil::encode(&records, Compression::None);
    // Kafka allows a header key twice; kafka-protocol's Record cannot hold that, so rename h2.
    let at = batch.windows(2).position(|w| w == b"h2").unwrap();
    batch[at + 1] = b'1';
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let original = raw_records(&batch);
    log.append(&mut batch, 0, 0).unwrap();
    log.append(
        &mut keyed_batch(&[(Some("gone"), Some("3"))], 2, -1, 0, Compression::None),
        0,
        0,
    )
    .unwrap();
    log.roll().unwrap();
    let target = Target::new(log);
    clean_at(&target, 0);
    let bytes = target.log(|log| log.read(0, 1 << 20, i64::MAX, true).unwrap());
    let first = crate::log::batch::validate_replicated(&bytes).unwrap()[0];
    assert_eq!((first.base_offset, first.last_offset(), first.records_count), (0, 1, 1));
    let rebuilt = raw_records(&bytes[..first.size_bytes()]);
    assert_eq!(rebuilt, vec![original[1].clone()]);
    assert_eq!(rebuilt[0].windows(2).filter(|w| *w == b"h1").count(), 2);
}

/// Each record's stored bytes.
fn raw_records(batch: &[u8]) -> Vec<Vec<u8>> {
    let header = crate::log::batch::BatchHeader::parse(batch).unwrap();
    let mut out = Vec::new();
    walk_records(&header, batch, Detail::Raw, |r| {
        out.push(r.raw.to_vec());
        true
    })
    .unwrap();
    out
}

#[test]
fn small_segments_are_grouped_up_to_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(300), 0).unwrap();
    // One record per segment: 40 segments of distinct keys, nothing to remove.
    for i in 0..40 {
        let k = key(i);
        log.append(
            &mut keyed_batch(&[(Some(k.as_str()), Some("v"))], 1, -1, 0, Compression::None),
            0,
            0,
        )
        .unwrap();
        log.roll().unwrap();
    }
    let size = target_size(&log);
    log.update_config(compacted(4 * size));
    let target = Target::new(log);
    clean_at(&target, 0);
    let log = target.into_log();
    assert_eq!(
        log.segment_count(),
        11,
        "40 one-batch segments in groups of 4, plus the active one"
    );
    assert_eq!(read_records(&log).len(), 40);
}

fn target_size(log: &Log) -> u64 {
    log.segments[0].size_bytes()
}

#[test]
fn a_log_that_changes_under_the_cleaner_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = written_log(dir.path(), Compression::None);
    let before = read_records(&log);
    // Inside the first segment, which the first swap replaces.
    let cut = before[5].0;
    let mut target = Target::new(log);
    // Lockings: how dirty, the sources, then the first swap: truncate just before it.
    target.before_lock = Box::new(move |n, log| {
        if n == 2 {
            log.truncate_to(cut).unwrap();
        }
    });
    let outcome = Io::new().run(&target, 0, Step::Deleted);
    assert!(matches!(outcome, Err(CleanError::Abandoned(_))), "{outcome:?}");
    let log = target.into_log();
    let expected: Vec<_> = before.into_iter().filter(|r| r.0 < log.log_end_offset()).collect();
    assert_eq!(read_records(&log), expected);
    assert!(files_with_suffix(dir.path(), ".cleaned").is_empty());
}

#[test]
fn a_crash_at_any_step_of_the_swap_leaves_the_old_segments_or_the_new_never_a_mix() {
    for (step, finished) in [(Step::Replaced, false), (Step::Swapped, true), (Step::Installed, true)] {
        let dir = tempfile::tempdir().unwrap();
        let (log, latest) = written_log(dir.path(), Compression::Snappy);
        let (before, end) = (read_records(&log), log.log_end_offset());
        let target = Target::new(log);
        let outcome = Io::new().run(&target, 0, step);
        assert!(
            matches!(outcome, Err(CleanError::Abandoned(_))),
            "{step:?}: {outcome:?}"
        );
        // kill -9: the log is dropped as it is, and opened again (recovery point 0: all scanned).
        drop(target.into_log());
        let log = Log::open(dir.path(), compacted(4096), 0).unwrap();
        assert_eq!(log.log_end_offset(), end, "{step:?}");
        let after = read_records(&log);
        if finished {
            // The first group was swapped in, the rest of the log is as it was: fewer records,
            // each one as it was, every key's latest among them.
            assert!(after.len() < before.len(), "{step:?}");
            assert!(after.iter().all(|r| before.contains(r)), "{step:?}");
            for (offset, _) in latest.values() {
                assert!(after.iter().any(|r| r.0 == *offset), "{step:?}: {offset} lost");
            }
        } else {
            assert_eq!(after, before, "{step:?}");
        }
        for suffix in [".cleaned", ".swap", ".replaced"] {
            assert!(
                files_with_suffix(dir.path(), suffix).is_empty(),
                "{step:?} left {suffix}"
            );
        }
        // Cleaning again from there gives the fully compacted log.
        let target = Target::new(log);
        clean_at(&target, 0);
        assert_eq!(target.log(|log| contents(log)), latest, "{step:?}");
    }
}

#[test]
fn a_crash_half_way_through_renaming_the_cleaned_files_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = written_log(dir.path(), Compression::None);
    let before = read_records(&log);
    let target = Target::new(log);
    let _ = Io::new().run(&target, 0, Step::Replaced);
    drop(target.into_log());
    // Step 2 cut short: the .log renamed to .swap, the indexes still .cleaned.
    let cleaned = files_with_suffix(dir.path(), ".log.cleaned").pop().unwrap();
    let swap = cleaned.with_file_name(
        cleaned
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".cleaned", ".swap"),
    );
    std::fs::rename(&cleaned, &swap).unwrap();
    let log = Log::open(dir.path(), compacted(4096), 0).unwrap();
    assert_eq!(read_records(&log), before);
    assert!(files_with_suffix(dir.path(), ".swap").is_empty());
}

#[test]
fn dirtiness_stops_at_the_high_watermark_the_active_segment_and_the_compaction_lag() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(200), 0).unwrap();
    for i in 0..6 {
        log.append(
            &mut keyed_batch(&[(Some("k"), Some("v"))], 1_000 * i, -1, 0, Compression::None),
            0,
            0,
        )
        .unwrap();
        log.roll().unwrap();
    }
    let d = log.dirtiness(i64::MAX, 10_000).unwrap().unwrap();
    assert_eq!((d.first_dirty, d.first_uncleanable), (0, 6));
    assert!(d.should_clean());
    assert_eq!(log.dirtiness(3, 10_000).unwrap().unwrap().first_uncleanable, 3);
    let mut lagged = compacted(200);
    lagged.compaction.as_mut().unwrap().min_compaction_lag_ms = 7_500;
    log.update_config(lagged);
    // Segments with records younger than 10_000 - 7_500 = 2_500: from the one at 3_000.
    assert_eq!(log.dirtiness(i64::MAX, 10_000).unwrap().unwrap().first_uncleanable, 3);
    log.update_config(config());
    assert!(log.dirtiness(i64::MAX, 10_000).unwrap().is_none(), "not compacted");
}

#[test]
fn max_compaction_lag_makes_a_log_due_whatever_its_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(200), 0).unwrap();
    log.append(
        &mut keyed_batch(&[(Some("k"), Some("v"))], 1_000, -1, 0, Compression::None),
        0,
        0,
    )
    .unwrap();
    log.roll().unwrap();
    let mut cfg = compacted(200);
    let c = cfg.compaction.as_mut().unwrap();
    c.min_cleanable_ratio = 1.0;
    c.max_compaction_lag_ms = 5_000;
    log.update_config(cfg);
    assert!(!log.dirtiness(i64::MAX, 5_999).unwrap().unwrap().should_clean());
    assert!(log.dirtiness(i64::MAX, 6_001).unwrap().unwrap().should_clean());
}

#[test]
fn an_empty_cleanup_policy_is_never_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(
        dir.path(),
        LogConfig {
            compaction: None,
            delete_policy: false,
            ..config()
        },
        0,
    )
    .unwrap();
    log.append(
        &mut keyed_batch(&[(Some("k"), Some("v"))], 1, -1, 0, Compression::None),
        0,
        0,
    )
    .unwrap();
    log.roll().unwrap();
    assert!(log.dirtiness(i64::MAX, 0).unwrap().is_none());
}

/// An aborted transaction whose batch is its producer's last keeps that batch as an empty
/// header, so its ABORT marker and its `.txnindex` entry stay with the segment that replaces
/// the sources, on disk too.
#[test]
fn an_aborted_transaction_stays_listed_in_the_txn_index_of_the_cleaned_segment() {
    use crate::log::control::{encode_marker, Marker};
    use crate::log::testutil::producer_batch;
    use crate::log::{Origin, TxnVerification};

    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(4096), 0).unwrap();
    write_rounds(&mut log, 3, 50, Compression::None);
    let origin = Origin::Client(TxnVerification::Off);
    let first = log
        .append_from(&mut producer_batch(3, 9, 0, 0, true), 0, 0, origin)
        .unwrap()
        .base_offset;
    let abort = Marker {
        commit: false,
        coordinator_epoch: 1,
    };
    let last = log
        .append_from(&mut encode_marker(9, 0, abort, 0), 0, 0, Origin::Coordinator)
        .unwrap()
        .base_offset;
    write_rounds(&mut log, 3, 50, Compression::None);
    log.roll().unwrap();
    let aborted = crate::log::testutil::txn_index_entries;
    assert_eq!(aborted(&log), [(9, first, last)]);
    let target = Target::new(log);
    let stats = clean_at(&target, 0);
    assert!(stats.bytes_written < stats.bytes_read, "cleaned: {stats:?}");
    let log = target.into_log();
    assert_eq!(aborted(&log), [(9, first, last)]);
    drop(log);
    let log = Log::open(dir.path(), compacted(4096), 0).unwrap();
    assert_eq!(aborted(&log), [(9, first, last)], "after a restart");
    assert!(files_with_suffix(dir.path(), ".txnindex.cleaned").is_empty());
}
