//! Where the metadata log lives. [`MetadataLog`] is the small interface the rest of the broker
//! sees; [`LocalMetadataLog`] keeps it in `<log.dirs>/__cluster_metadata-0` with the same
//! segment log as any partition. The controller issue replaces it with an openraft-replicated
//! log behind the same interface.
//!
//! Each append is one Kafka record batch (all records of one change), so a crash leaves a
//! change either wholly in the log or not at all; every append is fsync'd before it returns.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;

use super::records::MetadataRecord;
use crate::internal_batch;
use crate::log::{Log, LogConfig, LogError};

/// The metadata log's topic name and directory under `log.dirs`, as in KRaft.
pub(crate) const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_DIR: &str = "__cluster_metadata-0";

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("metadata log: {0}")]
    Log(#[from] LogError),
    #[error("metadata log record {offset} cannot be decoded: {reason}")]
    Decode { offset: i64, reason: String },
}

/// The durable, ordered log of metadata records.
pub(crate) trait MetadataLog: Send + Sync + Debug {
    /// Appends the records of one change durably; returns the offset of the last one.
    fn append(&self, records: &[MetadataRecord], now_ms: i64) -> Result<i64, StoreError>;
    /// Every record from the start of the log, in order.
    fn read_all(&self) -> Result<Vec<MetadataRecord>, StoreError>;
}

#[derive(Debug)]
pub(crate) struct LocalMetadataLog {
    log: Mutex<Log>,
}

impl LocalMetadataLog {
    pub(crate) fn open(log_dir: &Path) -> Result<LocalMetadataLog, StoreError> {
        let config = LogConfig {
            segment_bytes: 64 * 1024 * 1024,
            segment_ms: i64::MAX,
            retention_ms: -1,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            flush_interval_messages: 1,
            flush_interval_ms: 0,
            max_message_bytes: i32::MAX as u32,
        };
        // Recovery point 0: the metadata log is small and scanning it whole on start is cheap.
        let log = Log::open(&log_dir.join(METADATA_DIR), config, 0)?;
        Ok(LocalMetadataLog { log: Mutex::new(log) })
    }
}

fn encode(records: &[MetadataRecord], now_ms: i64) -> BytesMut {
    let values: Vec<Bytes> = records
        .iter()
        .map(|r| Bytes::from(serde_json::to_vec(r).expect("records serialize")))
        .collect();
    internal_batch::encode(values.iter().map(|v| (None, Some(v))), now_ms)
}

impl MetadataLog for LocalMetadataLog {
    fn append(&self, records: &[MetadataRecord], now_ms: i64) -> Result<i64, StoreError> {
        let mut batch = encode(records, now_ms);
        let mut log = self.log.lock().expect("metadata log lock");
        let info = log.append(&mut batch, 0, now_ms)?;
        log.flush()?;
        Ok(info.last_offset)
    }

    fn read_all(&self) -> Result<Vec<MetadataRecord>, StoreError> {
        let log = self.log.lock().expect("metadata log lock");
        let (mut offset, end) = (log.log_start_offset(), log.log_end_offset());
        let mut out = Vec::new();
        while offset < end {
            let mut bytes = log.read(offset, 1 << 20, end, true)?;
            let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| StoreError::Decode {
                offset,
                reason: e.to_string(),
            })?;
            for record in sets.into_iter().flat_map(|s| s.records) {
                let value = record.value.unwrap_or_default();
                let parsed = serde_json::from_slice(&value).map_err(|e| StoreError::Decode {
                    offset: record.offset,
                    reason: e.to_string(),
                })?;
                out.push(parsed);
                offset = record.offset + 1;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn records_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let id = uuid::Uuid::new_v4();
        let change = vec![
            MetadataRecord::Topic {
                name: "a".into(),
                topic_id: id,
                configs: BTreeMap::new(),
            },
            MetadataRecord::RemoveTopic { topic_id: id },
        ];
        {
            let log = LocalMetadataLog::open(dir.path()).unwrap();
            assert_eq!(log.append(&change[..1], 1).unwrap(), 0);
            assert_eq!(log.append(&change[1..], 2).unwrap(), 1);
        }
        let log = LocalMetadataLog::open(dir.path()).unwrap();
        assert_eq!(log.read_all().unwrap(), change);
    }
}
