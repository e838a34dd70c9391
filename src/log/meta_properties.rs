//! A log directory's `meta.properties`, in Kafka's KRaft format (version 1): which cluster and
//! node the directory belongs to and, since KIP-858, the directory's own id, a random UUID
//! written as Kafka writes UUIDs (22 characters of unpadded URL-safe base64).
//!
//! Owns: reading, checking and atomically writing that file. May call: std, `uuid`,
//! `checkpoint` (for the atomic write). Must never: pick the cluster id or decide whether a
//! directory may join a cluster (the server does, comparing every directory's file).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::checkpoint::write_atomically;
use super::error::{IoContext, LogError};

pub(crate) const META_PROPERTIES: &str = "meta.properties";
/// KRaft's meta.properties version; version 0 is ZooKeeper's and not accepted.
const VERSION: &str = "1";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaProperties {
    pub(crate) cluster_id: String,
    pub(crate) node_id: i32,
    /// `None` in a file written before directory ids existed; the caller then assigns one.
    pub(crate) directory_id: Option<Uuid>,
}

/// Reads `<dir>/meta.properties`; `None` when the directory has none yet.
pub(crate) fn read(dir: &Path) -> Result<Option<MetaProperties>, LogError> {
    let path = meta_path(dir);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text)
            .map(Some)
            .map_err(|reason| LogError::MetaProperties { path, reason }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("read meta.properties", &path),
    }
}

/// Replaces `<dir>/meta.properties` atomically.
pub(crate) fn write(dir: &Path, meta: &MetaProperties) -> Result<(), LogError> {
    let mut text = format!(
        "#Written by sluice\nversion={VERSION}\ncluster.id={}\nnode.id={}\n",
        meta.cluster_id, meta.node_id
    );
    if let Some(id) = meta.directory_id {
        text.push_str(&format!("directory.id={}\n", directory_id_string(id)));
    }
    write_atomically(&meta_path(dir), &text)
}

fn parse(text: &str) -> Result<MetaProperties, String> {
    let get = |key: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.trim_start().strip_prefix('=')))
            .map(str::trim)
    };
    match get("version") {
        Some(VERSION) => {}
        Some(v) => return Err(format!("version={v} is not KRaft's version 1")),
        None => return Err("no version".into()),
    }
    let cluster_id = get("cluster.id").ok_or("no cluster.id")?.to_string();
    let node_id = get("node.id")
        .and_then(|v| v.parse().ok())
        .ok_or("no node.id, or not a number")?;
    let directory_id = match get("directory.id") {
        None => None,
        Some(s) => Some(parse_directory_id(s).ok_or_else(|| format!("directory.id={s} is not a UUID"))?),
    };
    Ok(MetaProperties {
        cluster_id,
        node_id,
        directory_id,
    })
}

/// A new directory id. Kafka reserves the ids whose first 64 bits are zero and below 100 in
/// the rest (UNASSIGNED, LOST, MIGRATING, ...) and never hands out one whose text starts with
/// '-' (it would read as a command-line flag); a v4 UUID is never reserved, the dash is redrawn.
pub(crate) fn new_directory_id() -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if !directory_id_string(id).starts_with('-') {
            return id;
        }
    }
}

/// Kafka's text form of a UUID: its 16 bytes as URL-safe base64 without padding.
pub(crate) fn directory_id_string(id: Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(BASE64_URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The reverse of `directory_id_string`.
pub(crate) fn parse_directory_id(s: &str) -> Option<Uuid> {
    if s.len() != 22 {
        return None;
    }
    let digit = |c: u8| BASE64_URL.iter().position(|&b| b == c).map(|v| v as u128);
    let (head, last) = s.as_bytes().split_at(21);
    let mut bits: u128 = 0;
    for &c in head {
        bits = (bits << 6) | digit(c)?;
    }
    // 22 characters carry 132 bits: the last one's low 4 are padding and must be zero.
    let last = digit(last[0])?;
    (last & 0xF == 0).then(|| Uuid::from_u128((bits << 2) | (last >> 4)))
}

/// Where a directory's file lives.
pub(crate) fn meta_path(dir: &Path) -> PathBuf {
    dir.join(META_PROPERTIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_id_is_written_as_kafka_writes_uuids() {
        // Kafka's Uuid.toString of (msb 1, lsb 2): base64url of the 16 big-endian bytes.
        let id = Uuid::from_u64_pair(1, 2);
        assert_eq!(directory_id_string(id), "AAAAAAAAAAEAAAAAAAAAAg");
        assert_eq!(parse_directory_id("AAAAAAAAAAEAAAAAAAAAAg"), Some(id));
        for _ in 0..100 {
            let id = new_directory_id();
            let text = directory_id_string(id);
            assert_eq!(text.len(), 22);
            assert!(!text.starts_with('-'));
            assert_eq!(parse_directory_id(&text), Some(id));
        }
        assert_eq!(parse_directory_id("AAAAAAAAAAEAAAAAAAAAA"), None);
        assert_eq!(parse_directory_id("AAAAAAAAAAEAAAAAAAAA*g"), None);
    }

    #[test]
    fn meta_properties_round_trip_and_reads_kafkas_own_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let meta = MetaProperties {
            cluster_id: "MkU3OEVBNTcwNTJENDM2Qg".into(),
            node_id: 3,
            directory_id: Some(new_directory_id()),
        };
        write(dir.path(), &meta).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(meta));
        // As kafka-storage format writes it (java.util.Properties, any key order).
        let kafka = "#\n#Sat Dec 05 15:00:00 UTC 2026\nnode.id=1\ndirectory.id=AAAAAAAAAAEAAAAAAAAAAg\nversion=1\ncluster.id=abc\n";
        fs::write(meta_path(dir.path()), kafka).unwrap();
        let read_back = read(dir.path()).unwrap().unwrap();
        assert_eq!(read_back.node_id, 1);
        assert_eq!(read_back.cluster_id, "abc");
        assert_eq!(read_back.directory_id, Some(Uuid::from_u64_pair(1, 2)));
    }

    #[test]
    fn meta_properties_without_directory_id_or_of_zookeeper_days() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(meta_path(dir.path()), "version=1\ncluster.id=c\nnode.id=0\n").unwrap();
        assert_eq!(read(dir.path()).unwrap().unwrap().directory_id, None);
        fs::write(meta_path(dir.path()), "version=0\ncluster.id=c\nbroker.id=0\n").unwrap();
        assert!(matches!(read(dir.path()), Err(LogError::MetaProperties { .. })));
        fs::write(
            meta_path(dir.path()),
            "version=1\ncluster.id=c\nnode.id=0\ndirectory.id=zz\n",
        )
        .unwrap();
        assert!(matches!(read(dir.path()), Err(LogError::MetaProperties { .. })));
    }
}
