//! WriteTxnMarkers: a transaction coordinator (this broker's or another's) asks the leaders of
//! a transaction's partitions to write its COMMIT or ABORT marker (`txn::marker_writer`), and
//! hears back per partition. `kafka-transactions abort` sends it too, for a hanging transaction.

use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::groups::text;
use super::{Ctx, Reply};
use crate::txn::marker_writer::{self, MarkerResults, MarkerWrite};

pub(super) fn write_txn_markers(ctx: &Ctx, req: WriteTxnMarkersRequest) -> Reply<WriteTxnMarkersResponse> {
    let writes: Vec<MarkerWrite> = req
        .markers
        .iter()
        .map(|m| MarkerWrite {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
            partitions: m
                .topics
                .iter()
                .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                .collect(),
        })
        .collect();
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let timeout = Duration::from_millis(ctx.broker.settings.request_timeout_ms as u64);
        let producers: Vec<i64> = writes.iter().map(|w| w.producer_id).collect();
        let results = marker_writer::write(&ctx.broker, writes, ctx.lane(), timeout).await;
        let markers = producers
            .into_iter()
            .zip(results)
            .map(|(producer_id, results)| marker_result(&ctx, producer_id, results))
            .collect();
        WriteTxnMarkersResponse::default().with_markers(markers)
    }))
}

/// One marker's results, grouped by topic in the order the topics came.
fn marker_result(ctx: &Ctx, producer_id: i64, results: MarkerResults) -> WritableTxnMarkerResult {
    let mut topics: Vec<WritableTxnMarkerTopicResult> = Vec::new();
    for ((topic, partition), error) in results {
        let result = WritableTxnMarkerPartitionResult::default()
            .with_partition_index(partition)
            .with_error_code(error.map_or(0, |e| ctx.count(e)));
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(result),
            None => topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(vec![result]),
            ),
        }
    }
    WritableTxnMarkerResult::default()
        .with_producer_id(kafka_protocol::messages::ProducerId(producer_id))
        .with_topics(topics)
}
