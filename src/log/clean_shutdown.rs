//! The clean-shutdown marker of a log directory: proof that the last process to own it flushed
//! and closed every log before it stopped (Kafka's `.kafka_cleanshutdown`, which holds the
//! broker epoch the stop happened in).
//!
//! Owns: the marker file `.sluice_cleanshutdown` in a log directory. It holds one opaque token
//! (the broker's registration: the layers above compare it, this one never reads meaning into
//! it) in the checkpoint format. May call: std and `checkpoint`. Must never: let a marker
//! outlive the start that read it. The marker is removed as it is read, before any log is
//! opened for writing, so a crash anywhere after that start leaves no marker and the next
//! start is known to be unclean; a marker that cannot be read counts as none.

use std::fs;
use std::io;
use std::path::Path;

use tracing::warn;

use super::checkpoint;
use super::error::{IoContext, LogError};

pub(crate) const CLEAN_SHUTDOWN_MARKER: &str = ".sluice_cleanshutdown";

/// The token the last clean stop left in `dir`, if it left one; the marker is gone afterwards.
/// A marker that cannot be parsed or removed yields `None`: the stop is then taken as unclean,
/// which costs at most an election the broker could have won.
pub(crate) fn take(dir: &Path) -> Option<String> {
    let path = dir.join(CLEAN_SHUTDOWN_MARKER);
    let token = match checkpoint::read_entries(&path, parse_token) {
        Ok(Some(mut tokens)) if tokens.len() == 1 => tokens.pop(),
        Ok(None) => return None,
        Ok(Some(_)) | Err(_) => {
            warn!(path = %path.display(), "unreadable clean-shutdown marker: treating the last stop as unclean");
            None
        }
    };
    match fs::remove_file(&path) {
        Ok(()) => token,
        Err(e) if e.kind() == io::ErrorKind::NotFound => token,
        Err(e) => {
            // A marker that stays would vouch for a later crash: refuse to trust this one.
            warn!(path = %path.display(), error = %e, "cannot remove the clean-shutdown marker");
            None
        }
    }
}

/// Leaves `token` in `dir` as proof that every log there is flushed and closed. Call only
/// after they are.
pub(crate) fn mark(dir: &Path, token: &str) -> Result<(), LogError> {
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "clean-shutdown token must be one word",
        ))
        .at("write clean-shutdown marker", dir);
    }
    checkpoint::write_entries(&dir.join(CLEAN_SHUTDOWN_MARKER), &[token.to_string()])
}

fn parse_token(line: &str) -> Option<String> {
    let token = line.trim();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(take(dir.path()), None);
        mark(dir.path(), "3f1c").unwrap();
        assert_eq!(take(dir.path()), Some("3f1c".to_string()));
        assert_eq!(take(dir.path()), None, "a crash after this start must not look clean");
    }

    #[test]
    fn a_damaged_marker_counts_as_none_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CLEAN_SHUTDOWN_MARKER), "0\n2\na\nb\n").unwrap();
        assert_eq!(take(dir.path()), None);
        fs::write(dir.path().join(CLEAN_SHUTDOWN_MARKER), "garbage").unwrap();
        assert_eq!(take(dir.path()), None);
        assert!(!dir.path().join(CLEAN_SHUTDOWN_MARKER).exists());
    }

    #[test]
    fn a_token_is_one_word() {
        let dir = tempfile::tempdir().unwrap();
        assert!(mark(dir.path(), "two words").is_err());
        assert!(mark(dir.path(), "").is_err());
    }
}
