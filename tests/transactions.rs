//! Transactions over the wire: markers written by partition leaders (WriteTxnMarkers), the
//! last stable offset, read_committed fetches with their aborted transactions, ListOffsets
//! under read_committed.

mod common;

use common::*;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

/// WriteTxnMarkers for one partition; the partition's error code.
async fn marker(c: &mut Client, topic: &str, pid: i64, epoch: i16, commit: bool, coordinator_epoch: i32) -> i16 {
    let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_transaction_result(commit)
        .with_coordinator_epoch(coordinator_epoch)
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(name(topic))
            .with_partition_indexes(vec![0])])]);
    let resp = c.send(1, &req).await;
    resp.markers[0].topics[0].partitions[0].error_code
}

async fn fetch_isolated(
    c: &mut Client,
    topic: &str,
    offset: i64,
    read_committed: bool,
) -> fetch_response::PartitionData {
    let req = fetch_request(topic, 0, offset, 0).with_isolation_level(i8::from(read_committed));
    c.send(11, &req).await.responses[0].partitions[0].clone()
}

/// Offsets of the data records (not the markers) in a fetched record set.
fn data_offsets(records: &bytes::Bytes) -> Vec<i64> {
    let mut buf = records.clone();
    kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.records)
        .filter(|r| !r.control)
        .map(|r| r.offset)
        .collect()
}

async fn latest(c: &mut Client, topic: &str, read_committed: bool) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(i8::from(read_committed))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let resp = c.send(7, &req).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    resp.topics[0].partitions[0].offset
}

#[tokio::test]
async fn read_committed_sees_a_transaction_only_once_its_commit_marker_is_written() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "tx", 1, &[]).await, 0);
    let pid = init_producer_id(&mut c).await.0;
    assert_eq!(
        produce(
            &mut c,
            "tx",
            0,
            batch(&[b"plain"], 1000, kafka_protocol::records::Compression::None)
        )
        .await,
        (0, 0)
    );
    let txn = transactional_batch(&[b"a", b"b", b"c"], pid, 0, 0);
    assert_eq!(produce(&mut c, "tx", 0, txn).await, (0, 1));
    assert_eq!(
        (latest(&mut c, "tx", false).await, latest(&mut c, "tx", true).await),
        (4, 1)
    );
    let uncommitted = fetch_isolated(&mut c, "tx", 0, false).await;
    assert_eq!(values(uncommitted.records.as_ref().unwrap()).len(), 4);
    assert_eq!(uncommitted.last_stable_offset, 1);
    let committed = fetch_isolated(&mut c, "tx", 0, true).await;
    assert_eq!(values(committed.records.as_ref().unwrap()), [(0, b"plain".to_vec())]);

    assert_eq!(marker(&mut c, "tx", pid, 0, true, 0).await, 0);
    assert_eq!(
        (latest(&mut c, "tx", false).await, latest(&mut c, "tx", true).await),
        (5, 5)
    );
    let committed = fetch_isolated(&mut c, "tx", 0, true).await;
    assert_eq!(
        data_offsets(committed.records.as_ref().unwrap()),
        [0, 1, 2, 3],
        "the marker at 4 is a control record"
    );
    assert_eq!(committed.aborted_transactions, Some(vec![]));
}

#[tokio::test]
async fn an_aborted_transaction_is_reported_to_read_committed_fetches_that_overlap_it() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "tx", 1, &[]).await, 0);
    let pid = init_producer_id(&mut c).await.0;
    assert_eq!(
        produce(&mut c, "tx", 0, transactional_batch(&[b"x", b"y"], pid, 0, 0)).await,
        (0, 0)
    );
    assert_eq!(marker(&mut c, "tx", pid, 0, false, 0).await, 0);
    assert_eq!(
        produce(&mut c, "tx", 0, transactional_batch(&[b"z"], pid, 0, 2)).await,
        (0, 3)
    );
    assert_eq!(marker(&mut c, "tx", pid, 0, true, 0).await, 0);
    let p = fetch_isolated(&mut c, "tx", 0, true).await;
    let aborted = p.aborted_transactions.unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id.0, aborted[0].first_offset), (pid, 0));
    assert_eq!(p.last_stable_offset, 5);
    let after = fetch_isolated(&mut c, "tx", 3, true).await;
    assert_eq!(after.aborted_transactions, Some(vec![]), "nothing aborted from 3 on");
}

#[tokio::test]
async fn markers_from_an_older_producer_or_coordinator_epoch_are_refused() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "tx", 1, &[]).await, 0);
    let pid = init_producer_id(&mut c).await.0;
    assert_eq!(
        produce(&mut c, "tx", 0, transactional_batch(&[b"a"], pid, 3, 0)).await,
        (0, 0)
    );
    assert_eq!(marker(&mut c, "tx", pid, 3, false, 5).await, 0);
    let fenced = marker(&mut c, "tx", pid, 3, true, 4).await;
    assert_eq!(fenced, ResponseError::TransactionCoordinatorFenced.code());
    let old_epoch = marker(&mut c, "tx", pid, 2, true, 5).await;
    assert_eq!(old_epoch, ResponseError::InvalidProducerEpoch.code());
    let unknown = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(pid))
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(name("nope"))
            .with_partition_indexes(vec![0])])]);
    let resp = c.send(1, &unknown).await;
    assert_eq!(
        resp.markers[0].topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn an_open_transaction_and_its_abort_index_survive_a_restart() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "tx", 1, &[]).await, 0);
    let pid = init_producer_id(&mut c).await.0;
    assert_eq!(
        produce(&mut c, "tx", 0, transactional_batch(&[b"a"], pid, 0, 0)).await,
        (0, 0)
    );
    assert_eq!(marker(&mut c, "tx", pid, 0, false, 0).await, 0);
    assert_eq!(
        produce(&mut c, "tx", 0, transactional_batch(&[b"b"], pid, 0, 1)).await,
        (0, 2)
    );
    drop(c);
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(
        latest(&mut c, "tx", true).await,
        2,
        "the open transaction at 2 holds it"
    );
    assert!(broker.data.join("tx-0/00000000000000000000.txnindex").exists());
    let p = fetch_isolated(&mut c, "tx", 0, true).await;
    assert_eq!(p.aborted_transactions.unwrap().len(), 1);
}

/// InitProducerId with transactional id `id`, once its coordinator is loaded (FindCoordinator
/// creates `__transaction_state`; its partitions load as the broker leads them).
async fn init_transactional(c: &mut Client, id: &str) -> (i64, i16) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_key(kafka_protocol::protocol::StrBytes::from_string(id.to_string()));
    loop {
        let found = c.send(3, &find).await;
        let init = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(id.to_string().into())))
            .with_transaction_timeout_ms(60_000);
        let resp = c.send(4, &init).await;
        if found.error_code == 0 && resp.error_code == 0 {
            return (resp.producer_id.0, resp.producer_epoch);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no transaction coordinator for {id}"
        );
        tokio::task::yield_now().await;
    }
}

/// A transactional produce of one record for `id`'s producer; the partition's error code.
async fn produce_in(c: &mut Client, id: &str, topic: &str, pid: i64, epoch: i16, seq: i32) -> i16 {
    let req = produce_request(topic, 0, transactional_batch(&[b"x"], pid, epoch, seq), -1)
        .with_transactional_id(Some(TransactionalId(id.to_string().into())));
    c.send(9, &req).await.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn kip_890_a_transactional_batch_for_a_partition_outside_the_transaction_is_refused() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "verified", 1, &[]).await, 0);
    let (pid, epoch) = init_transactional(&mut c, "tx-v").await;
    assert_eq!(
        produce_in(&mut c, "tx-v", "verified", pid, epoch, 0).await,
        ResponseError::InvalidTxnState.code(),
        "never added to the transaction"
    );
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId("tx-v".to_string().into()))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
            .with_name(name("verified"))
            .with_partitions(vec![0])]);
    let added = c.send(3, &add).await;
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(
        produce_in(&mut c, "tx-v", "verified", pid, epoch, 0).await,
        0,
        "verified"
    );
}
