//! Hands out producer ids from blocks reserved in the metadata log, as Kafka's controller
//! does: one durable metadata write per block, none per id, and no id ever reused across
//! restarts (a block that was reserved but only partly used is simply skipped).

use std::ops::Range;
use std::sync::Mutex;

use crate::clock::now_ms;
use crate::metadata::{Metadata, MetadataError, MetadataRecord};

/// Ids per reserved block (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE).
const BLOCK_SIZE: i64 = 1000;

#[derive(Debug, Default)]
pub(crate) struct ProducerIdManager {
    block: Mutex<Range<i64>>,
}

impl ProducerIdManager {
    /// The next unused producer id, reserving a new block when the current one is spent.
    pub(crate) fn next_id(&self, metadata: &Metadata) -> Result<i64, MetadataError> {
        let mut block = self.block.lock().expect("producer id block lock");
        if block.is_empty() {
            let image = metadata.commit(
                |image| {
                    let next_producer_id = image.next_producer_id() + BLOCK_SIZE;
                    Ok(vec![MetadataRecord::ProducerIds { next_producer_id }])
                },
                now_ms(),
            )?;
            let end = image.next_producer_id();
            *block = (end - BLOCK_SIZE)..end;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::LocalMetadataLog;

    #[test]
    fn ids_are_unique_across_blocks_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let open = || Metadata::open(Box::new(LocalMetadataLog::open(dir.path()).unwrap())).unwrap();
        let metadata = open();
        let ids = ProducerIdManager::default();
        let first: Vec<i64> = (0..BLOCK_SIZE + 5).map(|_| ids.next_id(&metadata).unwrap()).collect();
        assert_eq!(first[..3], [0, 1, 2]);
        assert_eq!(*first.last().unwrap(), BLOCK_SIZE + 4);
        drop(metadata);
        // After a restart the partly used block is skipped, never handed out again.
        let metadata = open();
        let after = ProducerIdManager::default().next_id(&metadata).unwrap();
        assert_eq!(after, 2 * BLOCK_SIZE);
    }
}
