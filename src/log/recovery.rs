//! Opening a partition directory: find the segments, trust what the recovery point says is
//! durable, scan the rest, cut a torn or corrupt tail.
//!
//! Owns: the decision which segments to trust and which to scan, and deleting what follows a
//! cut. May call: `segment`, `swap` (a cleaner's swap cut short is settled first), std,
//! tracing. Must never: assign offsets or write batches; after a
//! cut, offsets continue at the end of the last whole valid batch (no gap, no reuse).

use super::error::{IoContext, LogError};
use super::segment::{remove_if_exists, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::swap;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Bound on segments in one partition directory; a directory holding more is refused rather
/// than opened (with the default 1 GiB segments this is a petabyte).
const MAX_SEGMENTS: usize = 1_000_000;

/// What opening a log had to do, for the log line and for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryStats {
    /// Segments whose every batch was read and CRC-checked.
    pub(crate) segments_scanned: usize,
    /// Batches read during open (full scans plus the bounded tail check).
    pub(crate) batches_scanned: u64,
    pub(crate) bytes_truncated: u64,
    pub(crate) segments_deleted: usize,
}

#[derive(Debug)]
pub(crate) struct Loaded {
    /// Sorted by base offset, never empty; the last one is active, the others sealed.
    pub(crate) segments: Vec<Segment>,
    pub(crate) stats: RecoveryStats,
}

/// Opens (creating if needed) the partition directory and recovers its segments.
pub(crate) fn load_segments(dir: &Path, recovery_point: i64, index_interval_bytes: u32) -> Result<Loaded, LogError> {
    fs::create_dir_all(dir).at("create partition dir", dir)?;
    swap::recover(dir)?;
    let bases = list_segment_bases(dir)?;
    let mut stats = RecoveryStats::default();
    if bases.is_empty() {
        if recovery_point > 0 {
            tracing::warn!(dir = %dir.display(), recovery_point, "no segments found; starting an empty log at 0");
        }
        let segments = vec![Segment::create(dir, 0)?];
        return Ok(Loaded { segments, stats });
    }
    let mut segments = bases
        .iter()
        .map(|&b| Segment::open(dir, b))
        .collect::<Result<Vec<_>, _>>()?;
    let first_unflushed = first_unflushed(&segments, recovery_point);
    trust_prefix(&mut segments, first_unflushed, index_interval_bytes, &mut stats)?;
    recover_suffix(
        dir,
        &mut segments,
        first_unflushed,
        recovery_point,
        index_interval_bytes,
        &mut stats,
    )?;
    finish(&mut segments)?;
    Ok(Loaded { segments, stats })
}

/// Index of the first segment that may hold offsets at or above the recovery point.
fn first_unflushed(segments: &[Segment], recovery_point: i64) -> usize {
    let end_bound = |i: usize| segments.get(i + 1).map_or(i64::MAX, Segment::base_offset);
    (0..segments.len())
        .find(|&i| end_bound(i) > recovery_point)
        .unwrap_or(segments.len() - 1)
}

/// Segments wholly below the recovery point: sanity-check their indexes; rebuild only if
/// they look broken. A cut here (data the recovery point said was durable) keeps the later
/// segments: they were durable too.
fn trust_prefix(
    segments: &mut [Segment],
    end: usize,
    interval: u32,
    stats: &mut RecoveryStats,
) -> Result<(), LogError> {
    for i in 0..end {
        let next_base = segments[i + 1].base_offset();
        let segment = &mut segments[i];
        segment.set_next_offset(next_base);
        if let Err(reason) = segment.check_trusted(next_base, interval) {
            tracing::warn!(segment = %segment.log_path().display(), reason, "index looks broken; rebuilding it");
            let recovered = segment.recover(interval)?;
            stats.segments_scanned += 1;
            stats.batches_scanned += recovered.batches;
            if let Some(cut) = recovered.truncated {
                stats.bytes_truncated += cut.bytes;
                tracing::error!(
                    segment = %segment.log_path().display(),
                    position = cut.position,
                    bytes = cut.bytes,
                    reason = cut.reason,
                    "corrupt data below the recovery point: cut it, kept the later segments"
                );
            }
        }
        segment.seal()?;
    }
    Ok(())
}

/// From the first unflushed segment on: scan each; at the first cut, delete every later
/// segment (their order relative to the lost bytes is unknown) and say so in one warn line.
fn recover_suffix(
    dir: &Path,
    segments: &mut Vec<Segment>,
    from: usize,
    recovery_point: i64,
    interval: u32,
    stats: &mut RecoveryStats,
) -> Result<(), LogError> {
    let last = segments.len() - 1;
    if from == last && try_trust_active(&mut segments[last], recovery_point, interval, stats)? {
        return Ok(());
    }
    for i in from..segments.len() {
        let recovered = segments[i].recover(interval)?;
        stats.segments_scanned += 1;
        stats.batches_scanned += recovered.batches;
        let Some(cut) = recovered.truncated else {
            continue;
        };
        let dropped: Vec<Segment> = segments.drain(i + 1..).collect();
        stats.segments_deleted = dropped.len();
        stats.bytes_truncated = cut.bytes + dropped.iter().map(Segment::size_bytes).sum::<u64>();
        for segment in dropped.into_iter().rev() {
            segment.delete()?;
        }
        tracing::warn!(dir = %dir.display(), segment = %segments[i].log_path().display(),
            position = cut.position, bytes_truncated = stats.bytes_truncated,
            segments_deleted = stats.segments_deleted, reason = cut.reason,
            "truncated torn or corrupt log tail");
        break;
    }
    Ok(())
}

/// The last segment, when the recovery point lies inside it: if a verified scan from its last
/// index entry ends at or below the recovery point, everything in it was durable (the common
/// case after a clean close) and no full scan is needed.
fn try_trust_active(
    segment: &mut Segment,
    recovery_point: i64,
    interval: u32,
    stats: &mut RecoveryStats,
) -> Result<bool, LogError> {
    if segment.base_offset() > recovery_point || segment.time_index_lost() {
        return Ok(false);
    }
    segment.activate()?;
    match segment.restore_tail(interval)? {
        Ok(batches) if segment.next_offset() <= recovery_point => {
            stats.batches_scanned += batches;
            if segment.next_offset() < recovery_point {
                tracing::warn!(segment = %segment.log_path().display(), recovery_point,
                    log_end = segment.next_offset(), "recovery point is beyond the log end");
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// All but the last segment sealed; the last one active with its `segment_ms` clock restarted
/// from its first batch's timestamp (Kafka's rule), if it has one.
fn finish(segments: &mut [Segment]) -> Result<(), LogError> {
    let (last, rest) = segments.split_last_mut().expect("at least one segment");
    for segment in rest {
        segment.seal()?;
    }
    last.activate()?;
    if let Some(first) = last.first_header()? {
        if first.max_timestamp >= 0 {
            last.start_rolling_clock(first.max_timestamp);
        }
    }
    Ok(())
}

/// Base offsets of the `.log` files in `dir`, sorted. Index files without a `.log` are
/// leftovers of an interrupted delete and are removed, so a new segment of that name cannot
/// pick up stale entries.
fn list_segment_bases(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = BTreeSet::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).at("list partition dir", dir)? {
        let name = entry.at("list partition dir", dir)?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_base(name, LOG_SUFFIX) {
            logs.insert(base);
        } else if let Some(base) = parse_base(name, INDEX_SUFFIX).or_else(|| parse_base(name, TIME_INDEX_SUFFIX)) {
            indexes.push((base, dir.join(name)));
        }
        if logs.len() > MAX_SEGMENTS {
            return Err(LogError::CorruptLog {
                path: dir.to_path_buf(),
                position: 0,
                reason: format!("more than {MAX_SEGMENTS} segments"),
            });
        }
    }
    for (base, path) in indexes {
        if !logs.contains(&base) {
            tracing::warn!(path = %path.display(), "removing index file without a log segment");
            remove_if_exists(&path)?;
        }
    }
    Ok(logs.into_iter().collect())
}

/// `00000000000000000042.log` -> 42.
fn parse_base(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[cfg(test)]
mod tests {
    use crate::log::batch::{BatchHeader, HEADER_BYTES};
    use crate::log::testutil::{append, batch_of, config, decode_offsets, files_with_suffix, read_all};
    use crate::log::{Log, LogConfig};
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    use std::path::Path;

    /// Five batches of 4 records, three segments (0, 8, 16), closed cleanly.
    fn closed_log(dir: &Path) -> (LogConfig, i64) {
        let size = batch_of(4, 0).len() as u64;
        let config = LogConfig {
            segment_bytes: 2 * size,
            index_interval_bytes: 1,
            ..config()
        };
        let mut log = Log::open(dir, config.clone(), 0).unwrap();
        for i in 0..5 {
            append(&mut log, batch_of(4, 1_000 * i), 0);
        }
        let end = log.log_end_offset();
        log.close().unwrap();
        (config, end)
    }

    fn last_log_file(dir: &Path) -> std::path::PathBuf {
        files_with_suffix(dir, ".log").pop().unwrap()
    }

    #[test]
    fn reopen_after_clean_close_keeps_everything_without_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let (config, end) = closed_log(dir.path());
        let mut log = Log::open(dir.path(), config, end).unwrap();
        let stats = log.recovery_stats();
        assert_eq!((stats.segments_scanned, stats.bytes_truncated), (0, 0));
        assert!(
            stats.batches_scanned <= 1,
            "only the tail after the last index entry: {stats:?}"
        );
        assert_eq!(
            (log.log_end_offset(), log.segment_count(), log.recovery_point()),
            (20, 3, 20)
        );
        assert_eq!(log.offset_for_timestamp(2_001).unwrap(), Some((9, 2_001)));
        assert_eq!(log.max_timestamp().unwrap(), Some((19, 4_003)));
        assert_eq!(append(&mut log, batch_of(1, 0), 0).base_offset, 20);
        assert_eq!(read_all(&log), (0..21).collect::<Vec<_>>());
    }

    #[test]
    fn closed_segments_have_trimmed_kafka_format_indexes() {
        let dir = tempfile::tempdir().unwrap();
        closed_log(dir.path());
        for path in files_with_suffix(dir.path(), ".index") {
            let index = fs::read(&path).unwrap();
            assert_eq!(index.len() % 8, 0, "{}", path.display());
            let log = fs::read(path.with_extension("log")).unwrap();
            let base: i64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            // Each entry: relative last offset of the batch starting at the position.
            for entry in index.chunks(8) {
                let relative = u32::from_be_bytes(entry[0..4].try_into().unwrap());
                let position = u32::from_be_bytes(entry[4..8].try_into().unwrap()) as usize;
                let header = BatchHeader::parse(&log[position..position + HEADER_BYTES]).unwrap();
                assert_eq!(header.last_offset(), base + i64::from(relative));
            }
        }
        for path in files_with_suffix(dir.path(), ".timeindex") {
            let len = fs::metadata(&path).unwrap().len();
            assert!(len > 0 && len % 12 == 0, "{}: {len}", path.display());
        }
    }

    #[test]
    fn torn_tail_is_cut_at_last_whole_batch_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let (config, end) = closed_log(dir.path());
        let path = last_log_file(dir.path());
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        let mut log = Log::open(dir.path(), config, end).unwrap();
        assert_eq!(log.log_end_offset(), 16);
        assert_eq!(log.recovery_stats().bytes_truncated, len - 10);
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(append(&mut log, batch_of(2, 0), 0).base_offset, 16);
        assert_eq!(read_all(&log), (0..18).collect::<Vec<_>>());
    }

    #[test]
    fn garbage_after_last_batch_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (config, end) = closed_log(dir.path());
        let path = last_log_file(dir.path());
        let len = fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[0xAB; 100]).unwrap();
        let log = Log::open(dir.path(), config, end).unwrap();
        assert_eq!(log.log_end_offset(), 20);
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
        assert_eq!(log.recovery_stats().bytes_truncated, 100);
    }

    #[test]
    fn corrupt_crc_in_middle_of_last_segment_truncates_from_there() {
        let dir = tempfile::tempdir().unwrap();
        let size = batch_of(4, 0).len() as u64;
        let config = LogConfig {
            index_interval_bytes: 1,
            ..config()
        };
        let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
        for i in 0..6 {
            append(&mut log, batch_of(4, i), 0);
        }
        // Crash without close: nothing was flushed, the recovery point is 0.
        let recovery_point = log.recovery_point();
        drop(log);
        let path = last_log_file(dir.path());
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xFF], 3 * size + 40).unwrap();
        let mut log = Log::open(dir.path(), config, recovery_point).unwrap();
        assert_eq!(log.log_end_offset(), 12);
        assert_eq!(log.recovery_stats().segments_scanned, 1);
        assert_eq!(fs::metadata(&path).unwrap().len(), 3 * size);
        assert_eq!(append(&mut log, batch_of(1, 0), 0).base_offset, 12);
    }

    #[test]
    fn corruption_in_unflushed_segment_deletes_later_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = closed_log(dir.path());
        let first = &files_with_suffix(dir.path(), ".log")[1];
        let file = OpenOptions::new().write(true).open(first).unwrap();
        file.write_all_at(&[0xFF], 70).unwrap();
        // Recovery point inside segment 8..16: it and everything after is scanned.
        let log = Log::open(dir.path(), config, 10).unwrap();
        assert_eq!((log.log_end_offset(), log.segment_count()), (8, 2));
        assert_eq!(log.recovery_stats().segments_deleted, 1);
        assert_eq!(files_with_suffix(dir.path(), ".log").len(), 2);
        assert_eq!(files_with_suffix(dir.path(), ".index").len(), 2);
    }

    #[test]
    fn missing_recovery_point_rescans_all_and_rebuilds_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = closed_log(dir.path());
        for path in files_with_suffix(dir.path(), ".index") {
            fs::remove_file(path).unwrap();
        }
        let log = Log::open(dir.path(), config, 0).unwrap();
        assert_eq!(log.recovery_stats().segments_scanned, 3);
        assert_eq!(log.recovery_stats().batches_scanned, 5);
        assert_eq!(log.log_end_offset(), 20);
        assert_eq!(
            decode_offsets(&log.read(13, 1 << 20, i64::MAX, false).unwrap()),
            (12..16).collect::<Vec<_>>()
        );
    }

    #[test]
    fn broken_index_below_recovery_point_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let (config, end) = closed_log(dir.path());
        let index = &files_with_suffix(dir.path(), ".index")[0];
        // An entry pointing past the end of its segment.
        let mut entry = 7u32.to_be_bytes().to_vec();
        entry.extend(1_000_000u32.to_be_bytes());
        fs::write(index, entry).unwrap();
        let log = Log::open(dir.path(), config, end).unwrap();
        assert_eq!(log.recovery_stats().segments_scanned, 1);
        assert_eq!(
            decode_offsets(&log.read(5, 1 << 20, i64::MAX, false).unwrap()),
            (4..8).collect::<Vec<_>>()
        );
    }

    #[test]
    fn orphan_index_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("00000000000000000042.index"), [1u8; 16]).unwrap();
        let log = Log::open(dir.path(), config(), 0).unwrap();
        assert_eq!(log.log_end_offset(), 0);
        assert!(!dir.path().join("00000000000000000042.index").exists());
    }

    #[test]
    fn lost_indexes_below_recovery_point_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let (config, end) = closed_log(dir.path());
        for suffix in [".index", ".timeindex"] {
            for path in files_with_suffix(dir.path(), suffix) {
                fs::remove_file(path).unwrap();
            }
        }
        let log = Log::open(dir.path(), config, end).unwrap();
        // The two sealed segments are rebuilt; the active one holds a single batch, so its tail
        // check already reads all of it.
        assert_eq!(log.recovery_stats().segments_scanned, 2);
        assert_eq!(log.offset_for_timestamp(3_002).unwrap(), Some((14, 3_002)));
        assert_eq!(log.max_timestamp().unwrap(), Some((19, 4_003)));
        assert_eq!(read_all(&log), (0..20).collect::<Vec<_>>());
    }
}
