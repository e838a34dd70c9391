//! The cleaner over generated logs with interleaved committed and aborted transactions:
//! aborted records go, committed ones compact like any other, markers stay until their
//! batches are gone and their delete horizon (KIP-534, in the batch) passed, the `.txnindex`
//! follows, producer state survives a restart; tombstones carry their horizon in the batch.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use super::tests::{clean_at, compacted, key, Target, DAY};
use super::*;
use crate::log::batch::validate_replicated;
use crate::log::control::{encode_marker, Marker};
use crate::log::testutil::{encode, keyed_batch, record, txn_index_entries as index_entries};
use crate::log::{Origin, TxnVerification};

type Latest = BTreeMap<String, (i64, String)>;

/// What a reader of the whole log sees: data records (offset, key, value, timestamp) and
/// every batch header, control batches included.
struct Seen {
    records: Vec<(i64, String, Option<String>, i64)>,
    headers: Vec<BatchHeader>,
}

fn seen(log: &Log) -> Seen {
    let mut out = Seen {
        records: Vec::new(),
        headers: Vec::new(),
    };
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let headers = validate_replicated(&bytes).unwrap();
        offset = headers.last().unwrap().next_offset();
        out.headers
            .extend(headers.iter().filter(|h| h.base_offset >= log.log_start_offset()));
        let mut buf = bytes.clone();
        for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
            for r in set.records.into_iter().filter(|r| !r.control) {
                let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                out.records
                    .push((r.offset, text(r.key).unwrap(), text(r.value), r.timestamp));
            }
        }
    }
    out
}

fn latest_of(seen: &Seen) -> Latest {
    let mut out = BTreeMap::new();
    for (offset, k, v, _) in &seen.records {
        let v = v.clone().expect("no tombstones here");
        assert!(out.insert(k.clone(), (*offset, v)).is_none(), "{k} twice");
    }
    out
}

fn markers(seen: &Seen) -> Vec<BatchHeader> {
    seen.headers.iter().filter(|h| h.is_control()).copied().collect()
}

fn txn_batch(pid: i64, seq: i32, kvs: &[(String, String)], ts: i64) -> Vec<u8> {
    let records: Vec<Record> = kvs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let mut r = record(i as i64, ts + i as i64, Some(k.as_bytes()), Some(v.as_bytes()), &[]);
            (r.transactional, r.producer_id, r.producer_epoch, r.sequence) = (true, pid, 0, seq + i as i32);
            r
        })
        .collect();
    encode(&records, Compression::Lz4)
}

fn end_txn(log: &mut Log, pid: i64, commit: bool) -> i64 {
    let marker = Marker {
        commit,
        coordinator_epoch: 1,
    };
    let mut batch = encode_marker(pid, 0, marker, 5);
    log.append_from(&mut batch, 0, 0, Origin::Coordinator)
        .unwrap()
        .base_offset
}

const PIDS: [i64; 3] = [100, 101, 102];

/// The log a transactional producer pipeline leaves: 15 rounds in which three producers each
/// write two interleaved batches over 20 keys, plain records land in between, and each
/// producer then commits or aborts (a third of the transactions abort).
struct Written {
    log: Log,
    /// What read_committed must see once compacted: the latest committed or plain value.
    latest: Latest,
    aborted_offsets: HashSet<i64>,
    aborted: usize,
    sequences: HashMap<i64, i32>,
}

fn write_transactions(dir: &std::path::Path) -> Written {
    let mut log = Log::open(dir, compacted(1024), 0).unwrap();
    let origin = Origin::Client(TxnVerification::Off);
    let mut latest: Latest = BTreeMap::new();
    let apply = |latest: &mut Latest, offset: i64, k: &str, v: &str| {
        if latest.get(k).is_none_or(|(o, _)| *o < offset) {
            latest.insert(k.to_string(), (offset, v.to_string()));
        }
    };
    let (mut aborted_offsets, mut aborted) = (HashSet::new(), 0);
    let mut sequences: HashMap<i64, i32> = PIDS.iter().map(|p| (*p, 0)).collect();
    for round in 0..15usize {
        let mut pending: HashMap<i64, Vec<(i64, String, String)>> = HashMap::new();
        for part in 0..2usize {
            for pid in PIDS {
                let kvs: Vec<(String, String)> = (0..5)
                    .map(|i| {
                        (
                            key((round * 7 + pid as usize + part * 3 + i) % 20),
                            format!("r{round}-p{pid}-{part}-{i}"),
                        )
                    })
                    .collect();
                let seq = sequences[&pid];
                let mut batch = txn_batch(pid, seq, &kvs, 1_000 + round as i64);
                let base = log.append_from(&mut batch, 0, 0, origin).unwrap().base_offset;
                *sequences.get_mut(&pid).unwrap() += kvs.len() as i32;
                let entries = pending.entry(pid).or_default();
                entries.extend(kvs.into_iter().enumerate().map(|(i, (k, v))| (base + i as i64, k, v)));
            }
            let (k, v) = (key((round * 3 + part) % 20), format!("plain-{round}-{part}"));
            let mut batch = keyed_batch(&[(Some(&k), Some(&v))], 1_000, -1, 0, Compression::None);
            let offset = log.append(&mut batch, 0, 0).unwrap().base_offset;
            apply(&mut latest, offset, &k, &v);
        }
        for pid in PIDS {
            let commit = !(round + pid as usize).is_multiple_of(3);
            end_txn(&mut log, pid, commit);
            for (offset, k, v) in pending.remove(&pid).unwrap() {
                if commit {
                    apply(&mut latest, offset, &k, &v);
                } else {
                    aborted_offsets.insert(offset);
                }
            }
            aborted += usize::from(!commit);
        }
    }
    log.roll().unwrap();
    let end = log.log_end_offset();
    log.on_high_watermark(end);
    Written {
        log,
        latest,
        aborted_offsets,
        aborted,
        sequences,
    }
}

#[test]
fn aborted_records_go_committed_ones_compact_and_markers_wait_for_their_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_transactions(dir.path());
    let (end, transactions) = (w.log.log_end_offset(), 15 * PIDS.len());
    assert_eq!(index_entries(&w.log).len(), w.aborted);
    let target = Target::new(w.log);

    // First cleaning: every aborted record goes, committed ones compact; every marker stays,
    // since each had batches of its transaction in the range, and so does each abort's entry.
    let t0 = 1_000_000;
    clean_at(&target, t0);
    let first = target.log(|log| seen(log));
    assert_eq!(latest_of(&first), w.latest);
    assert!(first.records.iter().all(|r| !w.aborted_offsets.contains(&r.0)));
    assert_eq!(markers(&first).len(), transactions);
    assert!(markers(&first).iter().all(|m| m.delete_horizon_ms().is_none()));
    assert_eq!(target.log(|log| index_entries(log)).len(), w.aborted);

    // Second: the markers whose batches are gone get their delete horizon, written into the
    // batch; the entries of aborts that left no batch leave the index.
    clean_at(&target, t0 + 1);
    let second = target.log(|log| seen(log));
    assert_eq!(latest_of(&second), w.latest);
    let stamped: Vec<BatchHeader> = markers(&second)
        .into_iter()
        .filter(|m| m.delete_horizon_ms().is_some())
        .collect();
    assert!(!stamped.is_empty());
    assert!(stamped.iter().all(|m| m.delete_horizon_ms() == Some(t0 + 1 + DAY)));
    let entries = target.log(|log| index_entries(log));
    assert!(entries.len() < w.aborted, "{entries:?}");
    // An entry stays exactly while a batch of its transaction does (an emptied header).
    for (pid, first_offset, last_offset) in &entries {
        assert!(second.headers.iter().any(|h| !h.is_control()
            && h.producer_id == *pid
            && (*first_offset..*last_offset).contains(&h.base_offset)));
    }

    // Just before the horizon nothing more goes; at it, the stamped markers do.
    clean_at(&target, t0 + DAY);
    assert_eq!(markers(&target.log(|log| seen(log))).len(), transactions);
    clean_at(&target, t0 + 1 + DAY);
    let third = target.log(|log| seen(log));
    assert_eq!(latest_of(&third), w.latest);
    assert_eq!(markers(&third).len(), transactions - stamped.len());
    assert!(markers(&third).iter().all(|m| m.delete_horizon_ms().is_none()));

    // A restart rebuilds the same view: nothing open, the same aborts listed, and each
    // producer's sequence goes on where it was.
    let log = target.into_log();
    let entries = index_entries(&log);
    log.close().unwrap();
    let mut log = Log::open(dir.path(), compacted(1024), 0).unwrap();
    log.on_high_watermark(end);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(index_entries(&log), entries);
    assert_eq!(latest_of(&seen(&log)), w.latest);
    let origin = Origin::Client(TxnVerification::Off);
    for pid in PIDS {
        let kvs = [("late".to_string(), pid.to_string())];
        let mut batch = txn_batch(pid, w.sequences[&pid], &kvs, 9_000);
        let appended = log.append_from(&mut batch, 0, 0, origin).unwrap();
        assert!(appended.base_offset >= end, "{pid}: not taken for a duplicate");
        let mut stale = txn_batch(pid, w.sequences[&pid] + 5, &kvs, 9_000);
        assert!(
            log.append_from(&mut stale, 0, 0, origin).is_err(),
            "{pid}: a sequence gap is refused"
        );
        end_txn(&mut log, pid, true);
    }
}

#[test]
fn nothing_at_or_past_the_upper_bound_is_mapped_so_an_open_transaction_keeps_its_keys() {
    struct Bounded(Target, i64);
    impl CleanTarget for Bounded {
        fn name(&self) -> (String, i32) {
            self.0.name()
        }
        fn lock_log(&self, f: &mut dyn FnMut(&mut Log)) -> bool {
            self.0.lock_log(f)
        }
        fn upper_bound(&self) -> i64 {
            self.1
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(256), 0).unwrap();
    let kv = |v: &str| keyed_batch(&[(Some("k"), Some(v))], 1, -1, 0, Compression::None);
    log.append(&mut kv("committed"), 0, 0).unwrap();
    log.roll().unwrap();
    // Producer 7's transaction is open: its record may still abort.
    let origin = Origin::Client(TxnVerification::Off);
    let open = log
        .append_from(&mut txn_batch(7, 0, &[("k".into(), "open".into())], 1), 0, 0, origin)
        .unwrap()
        .base_offset;
    log.roll().unwrap();
    log.append(&mut kv("tail"), 0, 0).unwrap();
    let target = Bounded(Target::new(log), open);
    let d = with_log(&target, |log| log.dirtiness(target.upper_bound(), 0).unwrap().unwrap()).unwrap();
    assert_eq!(d.first_uncleanable, open);
    let (mut map, throttle, stop) = (
        crate::log::offset_map::OffsetMap::new(1 << 20, 0.9),
        Throttle::new(f64::MAX),
        std::sync::atomic::AtomicBool::new(false),
    );
    let mut io = CleanerIo {
        map: &mut map,
        throttle: &throttle,
        stop: &stop,
        write_chunk_bytes: 4096,
        swap_until: Step::Deleted,
    };
    clean(&target, &d, &mut io, 0).unwrap();
    // The committed value stays: the open transaction's record was not mapped over it.
    let values: Vec<Option<String>> = target.0.log(|log| seen(log)).records.into_iter().map(|r| r.2).collect();
    assert_eq!(
        values,
        [Some("committed".into()), Some("open".into()), Some("tail".into())]
    );
}

#[test]
fn a_kept_tombstones_batch_carries_its_delete_horizon_across_a_restart_and_keeps_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(1 << 20), 0).unwrap();
    let mut batch = keyed_batch(
        &[(Some("a"), Some("1")), (Some("b"), None), (Some("c"), Some("3"))],
        50_000,
        -1,
        0,
        Compression::Snappy,
    );
    log.append(&mut batch, 0, 0).unwrap();
    log.append(
        &mut keyed_batch(&[(Some("a"), Some("2"))], 60_000, -1, 0, Compression::None),
        0,
        0,
    )
    .unwrap();
    log.roll().unwrap();
    let before = seen(&log);
    let target = Target::new(log);
    let t0 = 7_000_000;
    clean_at(&target, t0);
    let after = target.log(|log| seen(log));
    let tombstones = after.headers.iter().find(|h| h.base_offset == 0).unwrap();
    assert_eq!(
        tombstones.delete_horizon_ms(),
        Some(t0 + DAY),
        "kafka-dump-log's deleteHorizonMs"
    );
    assert_eq!(
        tombstones.records_count, 2,
        "a went (overwritten), b's tombstone and c stay"
    );
    let stamp = |s: &Seen| s.records.iter().map(|r| (r.0, r.3)).collect::<HashMap<i64, i64>>();
    let (was, now) = (stamp(&before), stamp(&after));
    assert!(
        now.iter().all(|(o, ts)| was[o] == *ts),
        "timestamps kept: {was:?} {now:?}"
    );
    // A restart keeps the horizon (no side file): the tombstone goes at it, not before.
    target.into_log().close().unwrap();
    let log = Log::open(dir.path(), compacted(1 << 20), 0).unwrap();
    let target = Target::new(log);
    clean_at(&target, t0 + DAY - 1);
    assert!(target.log(|log| seen(log)).records.iter().any(|r| r.1 == "b"));
    clean_at(&target, t0 + DAY);
    let keys: Vec<String> = target.log(|log| seen(log)).records.into_iter().map(|r| r.1).collect();
    assert_eq!(keys, ["c", "a"]);
}
