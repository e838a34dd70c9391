//! Hands out producer ids from blocks reserved through the controller, as Kafka's brokers do:
//! one metadata-log write per block, none per id, and no id ever reused across restarts or
//! brokers (a block that was reserved but only partly used is simply skipped).

use std::ops::Range;

use crate::controller::{Command, Controller, Reply};
use crate::metadata::MetadataError;

/// Ids per reserved block (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE).
const BLOCK_SIZE: i64 = 1000;

#[derive(Debug, Default)]
pub(crate) struct ProducerIdManager {
    /// Async: reserving a block waits for the controller, and other callers wait for that block.
    block: tokio::sync::Mutex<Range<i64>>,
}

impl ProducerIdManager {
    /// The next unused producer id, reserving a new block when the current one is spent.
    pub(crate) async fn next_id(&self, controller: &Controller) -> Result<i64, MetadataError> {
        let mut block = self.block.lock().await;
        if block.is_empty() {
            let command = Command::AllocateProducerIds { count: BLOCK_SIZE };
            match controller.submit(command).await? {
                Reply::ProducerIds { end, .. } => *block = (end - BLOCK_SIZE)..end,
                other => {
                    return Err(MetadataError::UnexpectedReply(format!(
                        "controller answered a producer id request with {other:?}"
                    )))
                }
            }
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}
