//! The file system a log directory lives on: its total and usable bytes (DescribeLogDirs).
//!
//! Owns: the statvfs call, through rustix's safe wrapper. May call: rustix, std. Must never
//! cache the answer: free space changes with every append and every deleted segment.

use std::io;
use std::path::Path;

use super::error::{IoContext, LogError};

/// The size of the file system holding a directory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VolumeSpace {
    pub(crate) total_bytes: u64,
    /// What an unprivileged process can still write (the root-only reserve left out).
    pub(crate) usable_bytes: u64,
}

/// The space of the file system `dir` is on, counted as Java's `FileStore` (which Kafka
/// reports) counts it: blocks times the fragment size, usable being the blocks available to
/// unprivileged users.
pub(crate) fn volume_space(dir: &Path) -> Result<VolumeSpace, LogError> {
    let st = rustix::fs::statvfs(dir).map_err(io::Error::from).at("statvfs", dir)?;
    Ok(VolumeSpace {
        total_bytes: st.f_blocks.saturating_mul(st.f_frsize),
        usable_bytes: st.f_bavail.saturating_mul(st.f_frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_has_a_volume_with_some_usable_space() {
        let dir = tempfile::tempdir().unwrap();
        let space = volume_space(dir.path()).unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.usable_bytes <= space.total_bytes);
    }

    #[test]
    fn a_missing_directory_is_a_storage_failure_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err = volume_space(&gone).unwrap_err();
        assert!(err.is_storage_failure());
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
