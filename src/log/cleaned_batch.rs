//! What the log cleaner keeps of one batch, Kafka's `MemoryRecords.filterTo` with the
//! cleaner's filter: a record stays if it is past what the offset map covers, or if it is the
//! latest of its key and either has a value or is a tombstone whose batch's delete horizon
//! has not passed; a keyless record goes (a compacted topic cannot hold one). A batch all of
//! whose records stay is copied as it is; one with none left goes, unless it is a producer's
//! last batch (its sequence and epoch must survive) or the last of the round (`RETAIN_EMPTY`:
//! its header stays, no records); otherwise it is rebuilt with its kept records.
//!
//! Transactions (`txn_cleaning` says which batch is what): a batch of an aborted transaction
//! loses all its records (its header may stay, as above); a committed transaction's batch is
//! filtered like any other; a marker stays until no batch of its transaction is left and its
//! delete horizon has passed.
//!
//! KIP-534's delete horizon lives in the batches, as in Kafka: the first cleaning that keeps
//! a tombstone of a batch, or a marker whose transaction's batches are all gone, rewrites the
//! batch with the delete-horizon attribute set and its base timestamp = now +
//! `delete.retention.ms`; a later cleaning past that time drops them. So the horizon survives
//! restarts and replication with the batch. Each kept record's timestamp delta is then
//! re-encoded against the new base (`records::write_rebased`), so every record keeps its
//! timestamp.
//!
//! A rebuilt batch otherwise keeps the original's header (base and last offset, producer id,
//! epoch and base sequence, attributes), so each kept record's bytes, whose offset deltas are
//! relative to those, are copied as stored: nothing is re-encoded but the records section's
//! compression (the batch's own codec, `compression`), the timestamp deltas when the base
//! moves, and the header's count, max timestamp and CRC (`batch::rebuilt_batch`).
//! kafka-protocol's record encoder is not used: its `Record` keeps headers in a map keyed by
//! header name, so a record with a repeated header key (which Kafka allows) would lose all
//! but one, and its decoder sizes that map from the count a record declares.
//!
//! May call: `records` (the streaming walk), `batch`, `compression`, `offset_map`, `control`,
//! `txn_cleaning`. Must never: drop a record the rules keep, or hold more than one batch's
//! expansion in memory.

use std::collections::HashMap;
use std::io::Write;

use bytes::BytesMut;

use super::batch::{self, BatchHeader, HEADER_BYTES};
use super::compression;
use super::control::marker_type;
use super::error::LogError;
use super::offset_map::OffsetMap;
use super::records::{walk_records, write_rebased, Detail};
use super::txn_cleaning::TxnWalk;

/// What decides which records of a round stay.
#[derive(Debug)]
pub(crate) struct Retention<'a> {
    pub(crate) map: &'a OffsetMap,
    /// The cleaning's clock: delete horizons at or before it have passed.
    pub(crate) now_ms: i64,
    /// `delete.retention.ms`: how long after the first cleaning that kept them tombstones and
    /// emptied markers stay.
    pub(crate) delete_retention_ms: i64,
    /// Each live producer's last offset: the batch ending there keeps its producer state.
    pub(crate) producers_last: &'a HashMap<i64, i64>,
    /// Where the round ends: the batch ending just before it keeps its offsets.
    pub(crate) round_end: i64,
}

/// What becomes of one batch.
#[derive(Debug)]
pub(crate) enum Kept {
    /// Every record stays: the batch's bytes are copied as they are.
    Whole,
    /// Nothing of it stays.
    Nothing,
    /// A new batch: some of its records, or only its header.
    Rebuilt(Vec<u8>),
}

/// A batch's fate and its counts.
#[derive(Debug)]
pub(crate) struct Cleaned {
    pub(crate) kept: Kept,
    pub(crate) records_read: u64,
    pub(crate) records_kept: u64,
}

/// Decides and, if need be, rebuilds one stored batch (CRC already checked); `txns` is the
/// walk over the transactions of the range this batch is part of.
pub(crate) fn clean_batch(
    header: &BatchHeader,
    batch: &[u8],
    r: &Retention<'_>,
    txns: &mut TxnWalk,
) -> Result<Cleaned, LogError> {
    let records_read = header.records_count.max(0) as u64;
    let whole = Cleaned {
        kept: Kept::Whole,
        records_read,
        records_kept: records_read,
    };
    let nothing = |kept| Cleaned {
        kept,
        records_read,
        records_kept: 0,
    };
    if header.is_control() {
        return Ok(clean_marker(header, batch, r, txns).map_or(whole, nothing));
    }
    let aborted = txns.on_batch(header);
    if header.records_count <= 0 {
        return Ok(whole);
    }
    if aborted {
        return Ok(nothing(emptied(header, r)));
    }
    let Some(decision) = decide(header, batch, r) else {
        return Ok(whole);
    };
    let kept_count = decision.keep.iter().filter(|k| **k).count();
    let records_kept = kept_count as u64;
    let horizon = (decision.kept_tombstone && header.delete_horizon_ms().is_none()).then(|| new_horizon(r));
    let kept = if kept_count == decision.keep.len() && horizon.is_none() {
        Kept::Whole
    } else if kept_count == 0 {
        emptied(header, r)
    } else {
        match rebuild(header, batch, &decision, horizon) {
            Some(rebuilt) => Kept::Rebuilt(rebuilt),
            None => return Ok(whole),
        }
    };
    Ok(Cleaned {
        kept,
        records_read,
        records_kept,
    })
}

/// A control batch's fate: `None` to keep it as it is, else what replaces it. A marker whose
/// transaction left no batch goes once its delete horizon passed; until then it is stamped
/// with one (once).
fn clean_marker(header: &BatchHeader, batch: &[u8], r: &Retention<'_>, txns: &mut TxnWalk) -> Option<Kept> {
    let commit = match marker_says(header, batch) {
        Ok(commit) => commit,
        Err(e) => {
            tracing::warn!(base_offset = header.base_offset, error = %e, "control batch that does not read kept");
            txns.on_marker(header, None);
            return None;
        }
    };
    if !txns.on_marker(header, commit) {
        return None;
    }
    match header.delete_horizon_ms() {
        Some(horizon) if horizon <= r.now_ms => Some(Kept::Nothing),
        Some(_) => None,
        None => {
            let decision = Decision {
                keep: vec![true; header.records_count.max(0) as usize],
                max_timestamp: header.max_timestamp,
                kept_tombstone: false,
            };
            rebuild(header, batch, &decision, Some(new_horizon(r))).map(Kept::Rebuilt)
        }
    }
}

/// What the marker in a control batch says: `Some(true)` COMMIT, `Some(false)` ABORT, `None`
/// for another control record or an emptied batch.
pub(crate) fn marker_says(header: &BatchHeader, batch: &[u8]) -> std::io::Result<Option<bool>> {
    let mut commit = None;
    walk_records(header, batch, Detail::Keys, |record| {
        commit = record.key.and_then(marker_type);
        false
    })?;
    Ok(commit)
}

fn new_horizon(r: &Retention<'_>) -> i64 {
    r.now_ms.saturating_add(r.delete_retention_ms)
}

/// A batch none of whose records stay: gone, or its header alone (`RETAIN_EMPTY`).
fn emptied(header: &BatchHeader, r: &Retention<'_>) -> Kept {
    if retains_empty(header, r) {
        Kept::Rebuilt(batch::empty_batch(header).0)
    } else {
        Kept::Nothing
    }
}

/// Which records stay, the largest timestamp among them, and whether a tombstone stays.
struct Decision {
    keep: Vec<bool>,
    max_timestamp: i64,
    kept_tombstone: bool,
}

/// The first walk: each record's fate. None if the records do not read (kept whole: the
/// cleaner never loses what it cannot read).
fn decide(header: &BatchHeader, batch: &[u8], r: &Retention<'_>) -> Option<Decision> {
    let mut decision = Decision {
        keep: Vec::new(),
        max_timestamp: -1,
        kept_tombstone: false,
    };
    let tombstones_stay = header.delete_horizon_ms().is_none_or(|h| r.now_ms < h);
    let walked = walk_records(header, batch, Detail::Keys, |record| {
        let offset = header.base_offset + record.offset_delta;
        let keep = offset > r.map.latest_offset()
            || record.key.is_some_and(|key| {
                let latest = offset >= r.map.get(key);
                latest && (record.has_value || tombstones_stay)
            });
        if keep {
            let ts = header.base_timestamp.wrapping_add(record.timestamp_delta);
            decision.max_timestamp = decision.max_timestamp.max(ts);
            decision.kept_tombstone |= !record.has_value;
        }
        decision.keep.push(keep);
        true
    });
    match walked {
        Ok(()) if decision.keep.len() == header.records_count as usize => Some(decision),
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(base_offset = header.base_offset, error = %e, "unreadable records kept as they are");
            None
        }
    }
}

/// Kafka's `RETAIN_EMPTY`: a producer's last batch, or the round's last, keeps its header.
fn retains_empty(header: &BatchHeader, r: &Retention<'_>) -> bool {
    let producers_last =
        header.producer_id >= 0 && r.producers_last.get(&header.producer_id) == Some(&header.last_offset());
    producers_last || header.next_offset() == r.round_end
}

/// The second walk: the kept records' bytes, compressed with the batch's codec, their
/// timestamp deltas moved to `horizon` when the batch gets one. None if that fails or would
/// pass twice the original's size (then the batch is kept whole).
fn rebuild(header: &BatchHeader, batch: &[u8], decision: &Decision, horizon: Option<i64>) -> Option<Vec<u8>> {
    let codec = compression::codec(header.attributes & 0x7).ok()?;
    let cap = 2 * batch.len() + 1024;
    let mut section = BytesMut::new();
    let mut failed = None;
    let mut writer = compression::compressor(codec, &mut section, cap).ok()?;
    let walked = walk_records(header, batch, Detail::Raw, |record| {
        if decision.keep[record.index] {
            let written = match horizon {
                None => writer.write_all(record.raw),
                Some(h) => write_rebased(record.raw, header.base_timestamp.wrapping_sub(h), &mut writer),
            };
            if let Err(e) = written {
                failed = Some(e);
                return false;
            }
        }
        true
    });
    let finished = writer.finish();
    if let Some(e) = failed.or(walked.err()).or(finished.err()) {
        tracing::warn!(base_offset = header.base_offset, error = %e, "batch kept whole: its records could not be rebuilt");
        return None;
    }
    let kept = decision.keep.iter().filter(|k| **k).count() as i32;
    debug_assert!(batch.len() >= HEADER_BYTES);
    Some(batch::rebuilt_batch(
        batch,
        kept,
        decision.max_timestamp,
        &section,
        horizon,
    ))
}
