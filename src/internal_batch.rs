//! Record batches the broker writes for itself (metadata log, `__consumer_offsets`): plain v2
//! batches of key/value records, one batch per call, built with kafka-protocol's encoder.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// One uncompressed batch holding `records` (key, value; `None` value = tombstone).
pub(crate) fn encode<'a>(
    records: impl IntoIterator<Item = (Option<&'a Bytes>, Option<&'a Bytes>)>,
    now_ms: i64,
) -> BytesMut {
    encode_for(None, records, now_ms)
}

/// One uncompressed transactional batch of `producer_id` at `producer_epoch` holding `records`,
/// without sequences (as Kafka's coordinators write transactional offset commits).
pub(crate) fn encode_transactional<'a>(
    producer_id: i64,
    producer_epoch: i16,
    records: impl IntoIterator<Item = (Option<&'a Bytes>, Option<&'a Bytes>)>,
    now_ms: i64,
) -> BytesMut {
    encode_for(Some((producer_id, producer_epoch)), records, now_ms)
}

fn encode_for<'a>(
    producer: Option<(i64, i16)>,
    records: impl IntoIterator<Item = (Option<&'a Bytes>, Option<&'a Bytes>)>,
    now_ms: i64,
) -> BytesMut {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes; keeping them in
            // step makes one call exactly one batch, recovered whole or not at all after a crash.
            sequence: i as i32,
            timestamp: now_ms,
            key: key.cloned(),
            value: value.cloned(),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encoding into memory cannot fail");
    buf
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;

    #[test]
    fn several_records_make_exactly_one_batch() {
        let (k, v) = (Bytes::from_static(b"k"), Bytes::from_static(b"v"));
        let batch = encode([(Some(&k), Some(&v)), (Some(&k), None), (None, Some(&v))], 5).freeze();
        assert_eq!(
            RecordBatchDecoder::decode_batch_info(&mut batch.clone()).unwrap().len(),
            1
        );
        let records = RecordBatchDecoder::decode(&mut batch.clone()).unwrap().records;
        assert_eq!(records[1].value, None);
        assert_eq!(records[2].key, None);
    }
}
