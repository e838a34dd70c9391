//! Putting a cleaned segment in place of the segments it was cleaned from, so that a crash
//! (`kill -9`, power loss) at any point leaves either the old segments or the new one, never a
//! mix and never a loss; and finishing or undoing, when a log opens, a swap a crash cut short.
//!
//! Owns: the temporary file names and their order. Kafka's sequence, with one step added so
//! recovery knows which old segments a swap replaces (Kafka infers them from the swapped
//! segment's offsets, which misses an old segment whose every record was cleaned away):
//!
//! 0. the cleaner writes `<base>.{log,index,timeindex}.cleaned` (and `.txnindex.cleaned` when
//!    it keeps an aborted transaction's marker, or when the segment at `<base>` has a
//!    `.txnindex` it must replace, possibly by an empty one) and fsyncs them (no lock);
//! 1. every old segment but the first (whose names the new one takes) is renamed
//!    `*.replaced`; directory fsync;
//! 2. the `.cleaned` files are renamed `.swap`, the `.log` first; directory fsync. The last
//!    of these renames is the commit point;
//! 3. the `.swap` files are renamed over the final names (replacing the first old segment's);
//!    directory fsync;
//! 4. the `.replaced` files are deleted.
//!
//! On open (`recover`): any `.cleaned` file means the commit point was not reached: the
//! `.cleaned` and `.swap` files go and every `.replaced` file gets its name back. Otherwise
//! `.swap` files are renamed into place and `.replaced` files deleted. May call: std,
//! `segment` (names). Must never: rename anything out of this order; every step's renames are
//! made durable before the next step starts.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{IoContext, LogError};
use super::segment::{remove_if_exists, segment_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::txn_index::TXN_INDEX_SUFFIX;

pub(crate) const CLEANED: &str = ".cleaned";
const SWAP: &str = ".swap";
const REPLACED: &str = ".replaced";
/// A segment's files, `.log` first (the order step 2 renames them in). The `.txnindex` exists
/// only once a transaction aborted in the segment.
const FILES: [&str; 4] = [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX];

/// The steps of a swap (tests stop one half way, as a crash would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Replaced,
    Swapped,
    Installed,
    Deleted,
}

fn named(dir: &Path, base: i64, file: &str, extra: &str) -> PathBuf {
    segment_path(dir, base, &format!("{file}{extra}"))
}

fn rename(from: &Path, to: &Path) -> Result<(), LogError> {
    fs::rename(from, to).at("rename segment file", from)
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).at("fsync dir", dir)
}

/// A swap that failed (an I/O error under the lock).
#[derive(Debug)]
pub(crate) struct InstallError {
    pub(crate) error: LogError,
    /// Whether it failed past its commit point: the files say "new segment" and a restart
    /// finishes the swap; otherwise it was undone and the files are the old segments again.
    pub(crate) committed: bool,
}

/// Steps 1 to 4: the cleaned segment at `base` replaces the segment at `base` and those at
/// `replaced`, through step `last` (all of them but in tests, which stop one half way as a
/// crash would: the files are left as they are). The caller holds the log's lock and swaps
/// its in-memory segments afterwards.
pub(crate) fn install_until(dir: &Path, base: i64, replaced: &[i64], last: Step) -> Result<(), InstallError> {
    let uncommitted = |error: LogError| {
        let undone = abandon(dir, base, replaced);
        if let Err(e) = &undone {
            tracing::error!(dir = %dir.display(), error = %e, "could not undo a failed segment swap; the next start will");
        }
        InstallError {
            error,
            committed: false,
        }
    };
    let committed = |error: LogError| InstallError { error, committed: true };
    rename_segments(dir, replaced, "", REPLACED).map_err(uncommitted)?;
    if last == Step::Replaced {
        return Ok(());
    }
    rename_segments(dir, &[base], CLEANED, SWAP).map_err(uncommitted)?;
    if last == Step::Swapped {
        return Ok(());
    }
    rename_segments(dir, &[base], SWAP, "").map_err(committed)?;
    if last == Step::Installed {
        return Ok(());
    }
    remove_segments(dir, replaced, REPLACED).map_err(committed)
}

/// Renames the files of the segments at `bases` from `<name><from>` to `<name><to>`, the
/// `.log` first, then makes the renames durable.
fn rename_segments(dir: &Path, bases: &[i64], from: &str, to: &str) -> Result<(), LogError> {
    for &base in bases {
        for file in FILES {
            let source = named(dir, base, file, from);
            if file == TXN_INDEX_SUFFIX && !source.exists() {
                continue;
            }
            rename(&source, &named(dir, base, file, to))?;
        }
    }
    sync_dir(dir)
}

/// Deletes the `.cleaned` files of an abandoned cleaning (nothing was renamed yet).
pub(crate) fn discard(dir: &Path, base: i64) -> Result<(), LogError> {
    remove_segments(dir, &[base], CLEANED)
}

/// Deletes the files `<name><extra>` of the segments at `bases`, if they are there.
fn remove_segments(dir: &Path, bases: &[i64], extra: &str) -> Result<(), LogError> {
    for &base in bases {
        for file in FILES {
            remove_if_exists(&named(dir, base, file, extra))?;
        }
    }
    Ok(())
}

/// Undoes steps 1 and 2 (before the commit point): the new files go, the old segments get
/// their names back, so the log on disk is the log in memory again.
fn abandon(dir: &Path, base: i64, replaced: &[i64]) -> Result<(), LogError> {
    remove_segments(dir, &[base], SWAP)?;
    discard(dir, base)?;
    for &old in replaced {
        for file in FILES {
            let from = named(dir, old, file, REPLACED);
            if from.exists() {
                rename(&from, &named(dir, old, file, ""))?;
            }
        }
    }
    sync_dir(dir)
}

/// What a partition directory holds of swaps.
#[derive(Debug, Default)]
struct Leftovers {
    cleaned: Vec<(i64, PathBuf)>,
    swap: Vec<(i64, PathBuf)>,
    replaced: Vec<PathBuf>,
}

/// Before a log's segments are listed: finishes a swap a crash interrupted after its commit
/// point, or undoes one interrupted before it. Returns whether it found anything.
pub(crate) fn recover(dir: &Path) -> Result<bool, LogError> {
    let found = leftovers(dir)?;
    if found.cleaned.is_empty() && found.swap.is_empty() && found.replaced.is_empty() {
        return Ok(false);
    }
    if let Some(min_cleaned) = found.cleaned.iter().map(|(b, _)| *b).min() {
        tracing::warn!(dir = %dir.display(), base = min_cleaned, "undoing a segment swap a crash cut short");
        for (_, path) in &found.cleaned {
            remove_if_exists(path)?;
        }
        for (base, path) in &found.swap {
            if *base >= min_cleaned {
                remove_if_exists(path)?;
            }
        }
        for path in &found.replaced {
            let original = strip(path, REPLACED);
            rename(path, &original)?;
        }
        for (base, path) in found.swap.iter().filter(|(b, _)| *b < min_cleaned) {
            rename(path, &strip(path, SWAP))?;
            tracing::warn!(dir = %dir.display(), base, "finished an older segment swap");
        }
    } else {
        tracing::warn!(dir = %dir.display(), "finishing a segment swap a crash cut short");
        for (_, path) in &found.swap {
            rename(path, &strip(path, SWAP))?;
        }
        for path in &found.replaced {
            remove_if_exists(path)?;
        }
    }
    sync_dir(dir)?;
    Ok(true)
}

fn leftovers(dir: &Path) -> Result<Leftovers, LogError> {
    let mut found = Leftovers::default();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in fs::read_dir(dir).at("list partition dir", dir)? {
        let path = entry.at("list partition dir", dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let base = name.get(..20).and_then(|b| b.parse::<i64>().ok());
        match base {
            Some(base) if name.ends_with(CLEANED) => found.cleaned.push((base, path)),
            Some(base) if name.ends_with(SWAP) => found.swap.push((base, path)),
            Some(_) if name.ends_with(REPLACED) => found.replaced.push(path),
            _ => {}
        }
    }
    Ok(found)
}

fn strip(path: &Path, extra: &str) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    path.with_file_name(name.strip_suffix(extra).unwrap_or(name))
}
