//! What the log cleaner has done to one log: where the dirty (never cleaned) part begins.
//!
//! Owns: that fact and how a truncation cuts it back. It is checkpointed by the log manager
//! (`cleaner-offset-checkpoint`, Kafka's format) and restored when the log opens. May call:
//! nothing. Losing it (a missing file) only makes the next cleaning map more, it never loses
//! a record.
//!
//! When tombstones and emptied transaction markers may go is not kept here: it is KIP-534's
//! delete horizon, written into the batches themselves by the cleaning that first kept them
//! (`cleaned_batch`), so it survives restarts and replication with the log. Logs cleaned by
//! an older Sluice also have a `cleaner-delete-horizon-checkpoint` file; it is not read and is
//! deleted (`manager`): their cleaned tombstones carry no horizon yet, so the next cleaning
//! stamps one a full `delete.retention.ms` ahead — a tombstone may stay longer than it had
//! to, never go sooner.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CleaningProgress {
    /// The first offset not yet cleaned (Kafka's cleaner checkpoint); `None`: never cleaned.
    pub(crate) first_dirty: Option<i64>,
}

impl CleaningProgress {
    /// A cleaning covered the log up to `end_offset`.
    pub(crate) fn cleaned(&mut self, end_offset: i64) {
        self.first_dirty = Some(end_offset);
    }

    /// The log was cut back to `log_end`: nothing at or past it has been cleaned.
    pub(crate) fn truncated_to(&mut self, log_end: i64) {
        self.first_dirty = self.first_dirty.map(|d| d.min(log_end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncation_cuts_the_dirty_start_back() {
        let mut p = CleaningProgress::default();
        p.cleaned(100);
        p.cleaned(300);
        p.truncated_to(50);
        assert_eq!(p.first_dirty, Some(50));
        p.truncated_to(500);
        assert_eq!(p.first_dirty, Some(50));
    }
}
