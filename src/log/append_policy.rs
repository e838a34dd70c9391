//! What a leader checks inside a producer's batches for its topic's policy, before it appends
//! them: a compacted topic takes only keyed records (Kafka's INVALID_RECORD "Compacted topic
//! cannot accept message without key"), and a CreateTime topic only timestamps within
//! `message.timestamp.before.max.ms` / `after.max.ms` of the leader's clock (KIP-937,
//! INVALID_TIMESTAMP). Each refused record is reported with its index in its batch, as
//! Kafka's record errors are.
//!
//! Owns: those checks. May call: `records` (the streaming walk), `batch` (headers). Must
//! never: look inside a batch when the topic's policy cannot refuse it: a topic that is not
//! compacted, with the default `before.max.ms`, whose batch headers' max timestamp is in
//! bounds (the common case) costs one comparison per batch and no decoding. Kafka checks
//! every record; the header's max timestamp is the largest record timestamp, so the `after`
//! bound is exact for it, and `before` (unbounded by default) walks the records when set.

use std::path::Path;

use super::batch::BatchHeader;
use super::config::LogConfig;
use super::error::{LogError, RecordError};
use super::records::{walk_records, Detail};

/// Kafka's `RecordBatch.NO_TIMESTAMP`: a record without a timestamp is never refused for it.
const NO_TIMESTAMP: i64 = -1;
/// Record errors reported per append at most (Kafka reports all; a batch may hold millions).
const RECORD_ERRORS_MAX: usize = 100;

/// The checks one append needs, from the topic's config and the leader's clock.
struct Policy<'a> {
    /// The partition's directory, `<topic>-<partition>`: how Kafka names it in its messages.
    dir: &'a Path,
    keys_required: bool,
    /// CreateTime bounds, inclusive; None for LogAppendTime.
    bounds: Option<(i64, i64)>,
}

/// Checks every batch of a producer's append (already framed and CRC-checked).
pub(super) fn check(
    batches: &[u8],
    headers: &[BatchHeader],
    config: &LogConfig,
    dir: &Path,
    now_ms: i64,
) -> Result<(), LogError> {
    let t = &config.timestamps;
    let policy = Policy {
        dir,
        keys_required: config.compaction.is_some(),
        bounds: (!t.log_append_time).then(|| {
            (
                now_ms.saturating_sub(t.before_max_ms),
                now_ms.saturating_add(t.after_max_ms),
            )
        }),
    };
    let mut errors = Vec::new();
    let mut invalid_timestamp = false;
    let mut position = 0;
    for header in headers {
        let batch = &batches[position..position + header.size_bytes()];
        position += header.size_bytes();
        if policy.must_walk(header, t.before_max_ms) {
            invalid_timestamp |= policy.walk(header, batch, &mut errors)?;
        }
        if errors.len() >= RECORD_ERRORS_MAX {
            break;
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(rejected(errors, invalid_timestamp))
}

impl Policy<'_> {
    /// Whether the batch's records must be looked at: keys on a compacted topic, timestamps
    /// when a bound is set below its maximum or the header's max timestamp is out of bounds.
    fn must_walk(&self, header: &BatchHeader, before_max_ms: i64) -> bool {
        let Some((low, high)) = self.bounds else {
            return self.keys_required;
        };
        self.keys_required || before_max_ms != i64::MAX || header.max_timestamp > high || header.max_timestamp < low
    }

    /// Walks one batch, adding its refused records to `errors`. Returns whether a timestamp
    /// was refused.
    fn walk(&self, header: &BatchHeader, batch: &[u8], errors: &mut Vec<RecordError>) -> Result<bool, LogError> {
        let mut invalid_timestamp = false;
        walk_records(header, batch, Detail::Fields, |record| {
            let message = if self.keys_required && !record.has_key {
                let partition = self.dir.file_name().unwrap_or_default().to_string_lossy();
                Some(format!(
                    "Compacted topic cannot accept message without key in topic partition {partition}"
                ))
            } else {
                self.timestamp_error(header, record.timestamp_delta, record.offset_delta)
                    .inspect(|_| invalid_timestamp = true)
            };
            if let Some(message) = message {
                errors.push(RecordError {
                    index: record.index as i32,
                    message,
                });
            }
            errors.len() < RECORD_ERRORS_MAX
        })
        .map_err(|e| LogError::CorruptMessage(format!("records of batch at offset {}: {e}", header.base_offset)))?;
        Ok(invalid_timestamp)
    }

    fn timestamp_error(&self, header: &BatchHeader, timestamp_delta: i64, offset_delta: i64) -> Option<String> {
        let (low, high) = self.bounds?;
        let timestamp = header.base_timestamp.wrapping_add(timestamp_delta);
        if timestamp == NO_TIMESTAMP || (low..=high).contains(&timestamp) {
            return None;
        }
        Some(format!(
            "Timestamp {timestamp} of message with offset {} is out of range. The timestamp should be within [{low}, {high}]",
            header.base_offset + offset_delta
        ))
    }
}

/// Kafka's `processRecordErrors`: INVALID_TIMESTAMP if any timestamp was refused, else
/// INVALID_RECORD, with its summary message.
fn rejected(records: Vec<RecordError>, invalid_timestamp: bool) -> LogError {
    let message = if invalid_timestamp {
        "One or more records have been rejected due to invalid timestamp".to_string()
    } else {
        let shown: Vec<String> = records
            .iter()
            .take(3)
            .map(|r| format!("RecordError(batchIndex={}, message='{}')", r.index, r.message))
            .collect();
        format!(
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            records.len(),
            shown.join(", ")
        )
    };
    LogError::RecordsRejected {
        invalid_timestamp,
        message,
        records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::validate_batches;
    use crate::log::config::{CompactionConfig, TimestampPolicy};
    use crate::log::testutil::{config, encode, records};
    use kafka_protocol::records::Compression;

    fn run(batch: &[u8], config: &LogConfig, now_ms: i64) -> Result<(), LogError> {
        let headers = validate_batches(batch, u32::MAX).unwrap();
        check(batch, &headers, config, Path::new("/data/t-0"), now_ms)
    }

    fn compacted() -> LogConfig {
        LogConfig {
            compaction: Some(CompactionConfig::default()),
            ..config()
        }
    }

    #[test]
    fn a_compacted_topic_refuses_each_keyless_record_by_its_index() {
        let mut recs = records(3, 1_000, 4);
        recs[1].key = None;
        let batch = encode(&recs, Compression::Lz4);
        match run(&batch, &compacted(), 1_000) {
            Err(LogError::RecordsRejected {
                invalid_timestamp: false,
                records,
                message,
            }) => {
                assert_eq!(records.len(), 1);
                assert_eq!(records[0].index, 1);
                assert_eq!(
                    records[0].message,
                    "Compacted topic cannot accept message without key in topic partition t-0"
                );
                assert!(message.contains("1 record errors in total"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(run(&batch, &config(), 1_000).is_ok(), "only compacted topics need keys");
    }

    #[test]
    fn create_time_out_of_bounds_is_invalid_timestamp() {
        let policy = LogConfig {
            timestamps: TimestampPolicy {
                log_append_time: false,
                before_max_ms: 1_000,
                after_max_ms: 500,
            },
            ..config()
        };
        let now = 10_000;
        // Records at 9_000 .. 9_002: within [9_000, 10_500].
        assert!(run(&encode(&records(3, 9_000, 1), Compression::None), &policy, now).is_ok());
        // One second too old, then too far ahead.
        for ts in [8_999, 10_501] {
            let err = run(&encode(&records(1, ts, 1), Compression::None), &policy, now).unwrap_err();
            assert!(
                matches!(
                    err,
                    LogError::RecordsRejected {
                        invalid_timestamp: true,
                        ..
                    }
                ),
                "{ts}: {err}"
            );
        }
        // LogAppendTime ignores the producer's timestamps.
        let append_time = LogConfig {
            timestamps: TimestampPolicy {
                log_append_time: true,
                ..policy.timestamps
            },
            ..config()
        };
        assert!(run(&encode(&records(1, 0, 1), Compression::None), &append_time, now).is_ok());
    }
}
