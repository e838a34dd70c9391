//! Idempotent producers over the wire: InitProducerId, exact deduplication of retried
//! batches, Kafka's sequence and epoch errors, and producer state surviving a restart.

mod common;

use common::*;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

async fn setup(broker: &TestBroker) -> (Client, i64) {
    let mut c = broker.client().await;
    assert_eq!(create_topic(&mut c, "idem", 1, &[]).await, 0);
    let (pid, epoch) = init_producer_id(&mut c).await;
    assert_eq!(epoch, 0);
    (c, pid)
}

#[tokio::test]
async fn init_producer_id_hands_out_distinct_ids_at_epoch_zero() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let a = init_producer_id(&mut c).await;
    let b = init_producer_id(&mut c).await;
    assert_ne!(a.0, b.0);
    assert_eq!((a.1, b.1), (0, 0));
}

/// Ids come in blocks reserved through the metadata log: a restart skips the rest of a block,
/// never hands out an id again.
#[tokio::test]
async fn producer_ids_are_never_reused_across_blocks_and_restarts() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1005 {
        assert!(
            seen.insert(init_producer_id(&mut c).await.0),
            "an id was handed out twice"
        );
    }
    drop(c);
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    let after = init_producer_id(&mut c).await.0;
    assert!(
        after >= 2000,
        "after a restart the next block starts past every reserved one: {after}"
    );
}

#[tokio::test]
async fn an_empty_transactional_id_is_an_invalid_request_as_in_kafka() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(String::new().into())))
        .with_transaction_timeout_ms(60_000);
    assert_eq!(c.send(4, &req).await.error_code, ResponseError::InvalidRequest.code());
}

#[tokio::test]
async fn retried_batch_gets_its_original_offset_and_is_stored_once() {
    let broker = TestBroker::start(&[]).await;
    let (mut c, pid) = setup(&broker).await;
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(&[b"a", b"b"], pid, 0, 0)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(&[b"c"], pid, 0, 2)).await,
        (0, 2)
    );
    // The first batch again, as a producer retries after a lost response.
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(&[b"a", b"b"], pid, 0, 0)).await,
        (0, 0)
    );
    assert_eq!(
        fetch_all(&mut c, "idem", 0).await,
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

#[tokio::test]
async fn sequence_gap_is_out_of_order_sequence() {
    let broker = TestBroker::start(&[]).await;
    let (mut c, pid) = setup(&broker).await;
    produce(&mut c, "idem", 0, idempotent_batch(&[b"a"], pid, 0, 0)).await;
    let (code, _) = produce(&mut c, "idem", 0, idempotent_batch(&[b"x"], pid, 0, 5)).await;
    assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(fetch_all(&mut c, "idem", 0).await.len(), 1);
}

#[tokio::test]
async fn older_epoch_is_invalid_producer_epoch() {
    let broker = TestBroker::start(&[]).await;
    let (mut c, pid) = setup(&broker).await;
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(&[b"a"], pid, 3, 0)).await.0,
        0
    );
    let (code, _) = produce(&mut c, "idem", 0, idempotent_batch(&[b"b"], pid, 2, 1)).await;
    assert_eq!(code, ResponseError::InvalidProducerEpoch.code());
    // A bumped epoch restarts at sequence 0.
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(&[b"c"], pid, 4, 0)).await,
        (0, 1)
    );
}

#[tokio::test]
async fn unknown_producer_with_nonzero_sequence_is_unknown_producer_id() {
    let broker = TestBroker::start(&[]).await;
    let (mut c, pid) = setup(&broker).await;
    let (code, _) = produce(&mut c, "idem", 0, idempotent_batch(&[b"a"], pid, 0, 7)).await;
    assert_eq!(code, ResponseError::UnknownProducerId.code());
}

#[tokio::test]
async fn deduplication_survives_a_restart() {
    let mut broker = TestBroker::start(&[]).await;
    let (mut c, pid) = setup(&broker).await;
    produce(&mut c, "idem", 0, idempotent_batch(&[b"a"], pid, 0, 0)).await;
    produce(&mut c, "idem", 0, idempotent_batch(&[b"b"], pid, 0, 1)).await;
    drop(c);
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(&[b"b"], pid, 0, 1)).await,
        (0, 1)
    );
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(&[b"c"], pid, 0, 2)).await,
        (0, 2)
    );
    assert_eq!(fetch_all(&mut c, "idem", 0).await.len(), 3);
    // Ids handed out before the restart are never handed out again.
    assert!(init_producer_id(&mut c).await.0 > pid);
}

#[tokio::test]
async fn describe_producers_shows_each_producer_state() {
    let broker = TestBroker::start(&[]).await;
    let (mut c, pid) = setup(&broker).await;
    produce(&mut c, "idem", 0, idempotent_batch(&[b"a", b"b", b"c"], pid, 0, 0)).await;
    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(name("idem"))
        .with_partition_indexes(vec![0])]);
    let resp = c.send(0, &req).await;
    let producers = &resp.topics[0].partitions[0].active_producers;
    assert_eq!(producers.len(), 1);
    assert_eq!((producers[0].producer_id.0, producers[0].last_sequence), (pid, 2));
}
