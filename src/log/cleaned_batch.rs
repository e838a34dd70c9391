//! What the log cleaner keeps of one batch, Kafka's `MemoryRecords.filterTo` with the
//! cleaner's filter: a record stays if it is past what the offset map covers, or if it is the
//! latest of its key and either has a value or is a tombstone not yet due; a keyless record
//! goes (a compacted topic cannot hold one). A batch all of whose records stay is copied as it
//! is; one with none left goes, unless it is a producer's last batch (its sequence and epoch
//! must survive) or the last of the round (`RETAIN_EMPTY`: its header stays, no records);
//! otherwise it is rebuilt with its kept records.
//!
//! A rebuilt batch keeps the original's header (base and last offset, base timestamp,
//! producer id, epoch and base sequence, attributes), so each kept record's bytes, whose
//! offset and timestamp deltas are relative to those, are copied as stored: nothing is
//! re-encoded but the records section's compression (the batch's own codec, `compression`)
//! and the header's count, max timestamp and CRC (`batch::rebuilt_batch`). kafka-protocol's
//! record encoder is not used: its `Record` keeps headers in a map keyed by header name, so a
//! record with a repeated header key (which Kafka allows) would lose all but one, and its
//! decoder sizes that map from the count a record declares.
//!
//! Control batches and transactional batches are kept whole for now: until transactions exist
//! (issue 13) none can be produced. When they land: an aborted transaction's records go (the
//! cleaner must track aborted ranges and skip them when mapping keys), a marker stays until
//! its transaction's records are all gone and the delete horizon passed, and a batch of a
//! committed transaction is filtered like any other.
//!
//! May call: `records` (the streaming walk), `batch`, `compression`, `offset_map`. Must never:
//! drop a record the rules keep, or hold more than one batch's expansion in memory.

use std::collections::HashMap;
use std::io::Write;

use bytes::BytesMut;

use super::batch::{self, BatchHeader, HEADER_BYTES};
use super::compression;
use super::error::LogError;
use super::offset_map::OffsetMap;
use super::records::{walk_records, Detail};

/// What decides which records of a round stay.
#[derive(Debug)]
pub(crate) struct Retention<'a> {
    pub(crate) map: &'a OffsetMap,
    /// Tombstones below this offset have been kept long enough (`cleaning_progress`).
    pub(crate) tombstones_due_below: i64,
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

/// Decides and, if need be, rebuilds one stored batch (CRC already checked).
pub(crate) fn clean_batch(header: &BatchHeader, batch: &[u8], r: &Retention<'_>) -> Result<Cleaned, LogError> {
    let records_read = header.records_count.max(0) as u64;
    let whole = Cleaned {
        kept: Kept::Whole,
        records_read,
        records_kept: records_read,
    };
    if header.is_control() || header.is_transactional() || header.records_count <= 0 {
        return Ok(whole);
    }
    let Some(decision) = decide(header, batch, r) else {
        return Ok(whole);
    };
    let kept_count = decision.keep.iter().filter(|k| **k).count();
    let records_kept = kept_count as u64;
    let kept = if kept_count == decision.keep.len() {
        Kept::Whole
    } else if kept_count == 0 && !retains_empty(header, r) {
        Kept::Nothing
    } else if kept_count == 0 {
        Kept::Rebuilt(batch::empty_batch(header).0)
    } else {
        match rebuild(header, batch, &decision) {
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

/// Which records stay, and the largest timestamp among them.
struct Decision {
    keep: Vec<bool>,
    max_timestamp: i64,
}

/// The first walk: each record's fate. None if the records do not read (kept whole: the
/// cleaner never loses what it cannot read).
fn decide(header: &BatchHeader, batch: &[u8], r: &Retention<'_>) -> Option<Decision> {
    let mut decision = Decision {
        keep: Vec::new(),
        max_timestamp: -1,
    };
    let walked = walk_records(header, batch, Detail::Keys, |record| {
        let offset = header.base_offset + record.offset_delta;
        let keep = offset > r.map.latest_offset()
            || record.key.is_some_and(|key| {
                let latest = offset >= r.map.get(key);
                latest && (record.has_value || offset >= r.tombstones_due_below)
            });
        if keep {
            let ts = header.base_timestamp.wrapping_add(record.timestamp_delta);
            decision.max_timestamp = decision.max_timestamp.max(ts);
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

/// The second walk: the kept records' bytes, compressed with the batch's codec. None if that
/// fails or would pass twice the original's size (then the batch is kept whole).
fn rebuild(header: &BatchHeader, batch: &[u8], decision: &Decision) -> Option<Vec<u8>> {
    let codec = compression::codec(header.attributes & 0x7).ok()?;
    let cap = 2 * batch.len() + 1024;
    let mut section = BytesMut::new();
    let mut failed = None;
    let mut writer = compression::compressor(codec, &mut section, cap).ok()?;
    let walked = walk_records(header, batch, Detail::Raw, |record| {
        if decision.keep[record.index] {
            if let Err(e) = writer.write_all(record.raw) {
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
    Some(batch::rebuilt_batch(batch, kept, decision.max_timestamp, &section))
}
