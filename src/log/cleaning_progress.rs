//! What the log cleaner has done to one log and may do next: where the dirty (never cleaned)
//! part begins, and below which offset tombstones have been kept long enough to drop.
//!
//! Owns: the two facts and how a truncation cuts them back. They are checkpointed by the log
//! manager (`cleaner-offset-checkpoint` in Kafka's format, and `cleaner-delete-horizon`) and
//! restored when the log opens. May call: nothing. Must never: let a tombstone go before
//! `delete.retention.ms` has passed since a cleaning first covered it; losing these facts
//! (a missing file) only delays compaction, it never loses a record.
//!
//! The tombstone rule is Kafka's (KIP-534: a tombstone is kept for delete.retention.ms after
//! the cleaning that first saw it), kept here rather than in the batches: Kafka writes the
//! horizon into a rewritten batch's base timestamp (with the delete-horizon attribute bit),
//! which would mean re-encoding every kept record's timestamp delta, where the cleaner copies
//! kept records byte for byte (`cleaned_batch`); so `kafka-dump-log` shows no
//! `deleteHorizonMs` on Sluice's cleaned batches. Instead each log remembers one pending
//! (time, end offset) pair of a finished cleaning: once `delete_retention_ms` has passed
//! since that cleaning, tombstones below its end offset may go. A cleaning that ends while a
//! pair is pending is not recorded, so a tombstone waits at least delete.retention.ms after
//! it was first cleaned and at most about twice that.

/// A cleaning that finished and whose tombstones are not yet due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingHorizon {
    pub(crate) cleaned_at_ms: i64,
    pub(crate) end_offset: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CleaningProgress {
    /// The first offset not yet cleaned (Kafka's cleaner checkpoint); `None`: never cleaned.
    pub(crate) first_dirty: Option<i64>,
    /// Tombstones below this offset were covered by a cleaning long enough ago to be dropped.
    pub(crate) tombstones_due_below: i64,
    pub(crate) pending: Option<PendingHorizon>,
}

impl CleaningProgress {
    /// The offset below which tombstones may be dropped by a cleaning at `now_ms`.
    pub(crate) fn tombstone_horizon(&self, now_ms: i64, delete_retention_ms: i64) -> i64 {
        match self.pending {
            Some(p) if now_ms.saturating_sub(p.cleaned_at_ms) >= delete_retention_ms => {
                self.tombstones_due_below.max(p.end_offset)
            }
            _ => self.tombstones_due_below,
        }
    }

    /// A cleaning at `now_ms` covered the log up to `end_offset`.
    pub(crate) fn cleaned(&mut self, end_offset: i64, now_ms: i64, delete_retention_ms: i64) {
        self.tombstones_due_below = self.tombstone_horizon(now_ms, delete_retention_ms);
        if self
            .pending
            .is_some_and(|p| now_ms.saturating_sub(p.cleaned_at_ms) >= delete_retention_ms)
        {
            self.pending = None;
        }
        if self.pending.is_none() {
            self.pending = Some(PendingHorizon {
                cleaned_at_ms: now_ms,
                end_offset,
            });
        }
        self.first_dirty = Some(end_offset);
    }

    /// The log was cut back to `log_end`: nothing at or past it has been cleaned, and a
    /// tombstone written there later must wait its full time.
    pub(crate) fn truncated_to(&mut self, log_end: i64) {
        self.first_dirty = self.first_dirty.map(|d| d.min(log_end));
        self.tombstones_due_below = self.tombstones_due_below.min(log_end);
        if let Some(p) = self.pending.as_mut() {
            p.end_offset = p.end_offset.min(log_end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn tombstones_become_due_a_retention_after_the_cleaning_that_covered_them() {
        let mut p = CleaningProgress::default();
        assert_eq!(p.tombstone_horizon(0, DAY), 0);
        p.cleaned(100, 1_000, DAY);
        assert_eq!(p.tombstone_horizon(1_000 + DAY - 1, DAY), 0);
        assert_eq!(p.tombstone_horizon(1_000 + DAY, DAY), 100);
        // A cleaning while one is pending does not move the pending one.
        p.cleaned(200, 5_000, DAY);
        assert_eq!(p.tombstone_horizon(1_000 + DAY, DAY), 100);
        // Once due, the next cleaning records itself.
        p.cleaned(300, 2 * DAY, DAY);
        assert_eq!(p.tombstones_due_below, 100);
        assert_eq!(p.tombstone_horizon(3 * DAY - 1, DAY), 100);
        assert_eq!(p.tombstone_horizon(3 * DAY, DAY), 300);
        assert_eq!(p.first_dirty, Some(300));
    }

    #[test]
    fn a_truncation_cuts_every_fact_back() {
        let mut p = CleaningProgress::default();
        p.cleaned(100, 0, 0);
        p.cleaned(300, 10, 0);
        p.truncated_to(50);
        assert_eq!(p.first_dirty, Some(50));
        assert_eq!(p.tombstone_horizon(i64::MAX, 0), 50);
    }
}
