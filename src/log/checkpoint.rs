//! Kafka's checkpoint files: text, version 0, an entry count, then one line per entry. The
//! offset checkpoints of a log dir (`recovery-point-offset-checkpoint`,
//! `replication-offset-checkpoint`) have `<topic> <partition> <offset>` lines; a partition's
//! `leader-epoch-checkpoint` has `<epoch> <start offset>` lines (see `leader_epoch`).
//!
//! Owns: reading and atomically writing one such file (tmp, fsync, rename, fsync dir).
//! May call: std. Must never: be read half-written; a missing file means "no entries".

use super::error::{IoContext, LogError};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const VERSION: &str = "0";
/// Bound on entries read from one file (a broker with more partitions than this has other
/// problems first).
const MAX_ENTRIES: usize = 10_000_000;

pub(crate) type CheckpointEntry = (String, i32, i64);

/// Reads an offset checkpoint file; a missing file is an empty checkpoint.
pub(crate) fn read_checkpoint(path: &Path) -> Result<Vec<CheckpointEntry>, LogError> {
    Ok(read_entries(path, parse_entry)?.unwrap_or_default())
}

/// Reads a checkpoint file whose entry lines `parse_entry` reads; `None` when it is missing.
pub(crate) fn read_entries<T>(path: &Path, parse_entry: fn(&str) -> Option<T>) -> Result<Option<Vec<T>>, LogError> {
    match fs::read_to_string(path) {
        Ok(text) => parse(&text, path, parse_entry).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("read checkpoint", path),
    }
}

fn parse<T>(text: &str, path: &Path, parse_entry: fn(&str) -> Option<T>) -> Result<Vec<T>, LogError> {
    let bad = |line: usize, reason: String| LogError::CorruptCheckpoint {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().trim();
    if version != VERSION {
        return Err(bad(1, format!("unsupported version {version:?}")));
    }
    let count_line = lines.next().unwrap_or_default().trim();
    let count: usize = count_line
        .parse()
        .map_err(|_| bad(2, format!("bad entry count {count_line:?}")))?;
    if count > MAX_ENTRIES {
        return Err(bad(2, format!("{count} entries is more than {MAX_ENTRIES}")));
    }
    let mut entries = Vec::with_capacity(count);
    for (i, line) in lines.by_ref().take(count).enumerate() {
        entries.push(parse_entry(line).ok_or_else(|| bad(i + 3, format!("bad entry {line:?}")))?);
    }
    if entries.len() != count {
        return Err(bad(
            entries.len() + 3,
            format!("expected {count} entries, found {}", entries.len()),
        ));
    }
    if let Some(extra) = lines.find(|l| !l.trim().is_empty()) {
        return Err(bad(
            count + 3,
            format!("unexpected line {extra:?} after {count} entries"),
        ));
    }
    Ok(entries)
}

fn parse_entry(line: &str) -> Option<CheckpointEntry> {
    let mut fields = line.split_whitespace();
    let topic = fields.next()?.to_string();
    let partition = fields.next()?.parse().ok()?;
    let offset = fields.next()?.parse().ok()?;
    fields.next().is_none().then_some((topic, partition, offset))
}

/// Writes an offset checkpoint atomically: a reader (or a crash) sees the old file or the new one.
pub(crate) fn write_checkpoint(path: &Path, entries: &[CheckpointEntry]) -> Result<(), LogError> {
    let lines: Vec<String> = entries.iter().map(|(t, p, o)| format!("{t} {p} {o}")).collect();
    write_entries(path, &lines)
}

/// Writes a checkpoint of these entry lines atomically.
pub(crate) fn write_entries(path: &Path, lines: &[String]) -> Result<(), LogError> {
    write_atomically(path, &render(lines))
}

/// Replaces `path` with `text` so that a crash leaves the old file or the new one, never a mix:
/// tmp file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), LogError> {
    let tmp = tmp_path(path);
    let mut file = File::create(&tmp).at("create checkpoint", &tmp)?;
    file.write_all(text.as_bytes()).at("write checkpoint", &tmp)?;
    file.sync_all().at("fsync checkpoint", &tmp)?;
    drop(file);
    fs::rename(&tmp, path).at("rename checkpoint", path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).at("fsync dir", dir)
}

fn render(lines: &[String]) -> String {
    let mut text = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        assert!(read_checkpoint(&path).unwrap().is_empty());
        let entries = vec![("orders".to_string(), 0, 42), ("my-topic".to_string(), 3, 0)];
        write_checkpoint(&path, &entries).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n2\norders 0 42\nmy-topic 3 0\n");
        assert_eq!(read_checkpoint(&path).unwrap(), entries);
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn malformed_checkpoint_is_refused_with_its_line() {
        let path = Path::new("cp");
        for (text, line) in [
            ("1\n0\n", 1),
            ("0\n2\na 0 1\n", 4),
            ("0\n1\na x 1\n", 3),
            ("0\n0\nz 1 2\n", 3),
        ] {
            match parse(text, path, parse_entry) {
                Err(LogError::CorruptCheckpoint { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
