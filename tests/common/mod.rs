//! Test support: a broker started in-process on free ports with its own temp data dir, and a
//! minimal raw Kafka client built on the kafka-protocol crate.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A node running in this process.
pub struct TestBroker {
    pub server: Option<sluice::Server>,
    pub addr: SocketAddr,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

pub fn settings(data: &Path, extra: &[&str]) -> sluice::Settings {
    settings_with_file(None, data, extra)
}

/// `file` (if any) as `--config`, with the test's ports and data dir as overrides.
pub fn settings_with_file(file: Option<&Path>, data: &Path, extra: &[&str]) -> sluice::Settings {
    let mut overrides = vec![
        "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
        "metrics.listener=127.0.0.1:0".to_string(),
        format!("log.dirs={}", data.display()),
    ];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    sluice::config::load(file, &overrides).expect("test settings are valid")
}

impl TestBroker {
    pub async fn start(extra: &[&str]) -> TestBroker {
        TestBroker::start_with_file(None, extra).await
    }

    /// A broker started with `--config file` (plus the test's ports and data dir).
    pub async fn start_with_file(file: Option<&Path>, extra: &[&str]) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let mut b = TestBroker::start_settings(&data, settings_with_file(file, &data, extra)).await;
        b._dir = Some(dir);
        b
    }

    pub async fn start_in(data: &Path, extra: &[&str]) -> TestBroker {
        TestBroker::start_settings(data, settings(data, extra)).await
    }

    async fn start_settings(data: &Path, settings: sluice::Settings) -> TestBroker {
        let server = sluice::Server::start(settings).await.expect("broker starts");
        TestBroker {
            addr: server.kafka_addrs[0],
            server: Some(server),
            data: data.to_path_buf(),
            _dir: None,
        }
    }

    /// Clean shutdown, then a new start on the same data dir.
    pub async fn restart(&mut self, extra: &[&str]) {
        self.server.take().unwrap().shutdown().await;
        let next = TestBroker::start_in(&self.data, extra).await;
        self.addr = next.addr;
        self.server = next.server;
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().metrics_addr
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.metrics_addr()).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").await.unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        body
    }
}

/// A raw Kafka client: one connection, requests encoded with kafka-protocol.
pub struct Client {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            correlation_id: 0,
        }
    }

    /// Encodes a request frame (size prefix included).
    pub fn frame<R: Request>(&mut self, version: i16, req: &R) -> BytesMut {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-test")));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version)).unwrap();
        req.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        frame
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response frame; None when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let size = match self.stream.read_i32().await {
            Ok(s) => s as usize,
            Err(_) => return None,
        };
        let mut buf = vec![0u8; size];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    pub fn decode<R: Request>(version: i16, mut frame: Bytes) -> (i32, R::Response) {
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
        let resp = R::Response::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "response has trailing bytes");
        (header.correlation_id, resp)
    }

    pub async fn send<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let frame = self.frame(version, req);
        self.send_raw(&frame).await;
        let expected = self.correlation_id;
        let resp = self.read_frame().await.expect("broker answered");
        let (correlation_id, resp) = Client::decode::<R>(version, resp);
        assert_eq!(correlation_id, expected);
        resp
    }

    /// True if the broker closed the connection (read returns EOF within a second).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// One v2 record batch holding `values` (keys "k<i>"), timestamps from `ts`.
pub fn batch(values: &[&[u8]], ts: i64, compression: Compression) -> Bytes {
    producer_batch(numbered(values), ts, compression, -1, -1, -1, false)
}

/// One idempotent batch: producer id and epoch, first sequence `seq`.
pub fn idempotent_batch(values: &[&[u8]], producer_id: i64, epoch: i16, seq: i32) -> Bytes {
    producer_batch(
        numbered(values),
        1000,
        Compression::None,
        producer_id,
        epoch,
        seq,
        false,
    )
}

/// One batch of a producer's transaction: producer id and epoch, first sequence `seq`.
pub fn transactional_batch(values: &[&[u8]], producer_id: i64, epoch: i16, seq: i32) -> Bytes {
    producer_batch(numbered(values), 1000, Compression::None, producer_id, epoch, seq, true)
}

/// A record's key (None: none) and value (None: a tombstone).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// One v2 batch of keyed records, timestamps from `ts`.
pub fn keyed_batch(kvs: &[KeyValue<'_>], ts: i64) -> Bytes {
    let owned = kvs
        .iter()
        .map(|(k, v)| (k.map(Bytes::copy_from_slice), v.map(Bytes::copy_from_slice)))
        .collect();
    producer_batch(owned, ts, Compression::None, -1, -1, -1, false)
}

/// `values` with keys "k0", "k1", ...
fn numbered(values: &[&[u8]]) -> Vec<(Option<Bytes>, Option<Bytes>)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (Some(Bytes::from(format!("k{i}"))), Some(Bytes::copy_from_slice(v))))
        .collect()
}

fn producer_batch(
    kvs: Vec<(Option<Bytes>, Option<Bytes>)>,
    ts: i64,
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    first_seq: i32,
    transactional: bool,
) -> Bytes {
    let records: Vec<Record> = kvs
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| {
            Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch whenever offset - sequence changes.
                sequence: if first_seq < 0 { i as i32 } else { first_seq + i as i32 },
                timestamp: ts + i as i64,
                key,
                value,
                headers: IndexMap::new(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

// Request helpers shared by the integration tests.

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub async fn create_topic(c: &mut Client, topic: &str, partitions: i32, configs: &[(&str, &str)]) -> i16 {
    let t = CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        );
    let resp = c
        .send(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![t])
                .with_timeout_ms(5000),
        )
        .await;
    resp.topics[0].error_code
}

pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// InitProducerId without a transactional id, as an idempotent producer asks:
/// (producer id, epoch).
pub async fn init_producer_id(c: &mut Client) -> (i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let resp = c.send(4, &req).await;
    assert_eq!(resp.error_code, 0);
    (resp.producer_id.0, resp.producer_epoch)
}

/// (error code, base offset)
pub async fn produce(c: &mut Client, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let resp = c.send(9, &produce_request(topic, partition, records, -1)).await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(
            vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)],
        )])
}

pub async fn fetch(c: &mut Client, topic: &str, partition: i32, offset: i64) -> fetch_response::PartitionData {
    let resp = c.send(11, &fetch_request(topic, partition, offset, 0)).await;
    resp.responses[0].partitions[0].clone()
}

/// Every (offset, value) in a fetched record set.
pub fn values(records: &Bytes) -> Vec<(i64, Vec<u8>)> {
    let mut buf = records.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.records)
        .map(|r| (r.offset, r.value.unwrap().to_vec()))
        .collect()
}

/// Every value in a partition, fetching segment by segment up to the high watermark.
pub async fn fetch_all(c: &mut Client, topic: &str, partition: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let p = fetch(c, topic, partition, offset).await;
        assert_eq!(p.error_code, 0);
        let got = values(p.records.as_ref().unwrap());
        if got.is_empty() {
            assert_eq!(offset, p.high_watermark);
            return out;
        }
        let start = offset;
        offset = got.last().unwrap().0 + 1;
        // A fetch inside a batch returns the whole batch: skip what came before `start`.
        out.extend(got.into_iter().filter(|(o, _)| *o >= start).map(|(_, v)| v));
    }
}

pub async fn list_offset(c: &mut Client, topic: &str, partition: i32, timestamp: i64) -> (i16, i64, i64) {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let resp = c.send(7, &req).await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

/// (offset, key, value) of a record read back.
pub type StoredRecord = (i64, Option<Bytes>, Option<Bytes>);

/// Every record of a partition as (offset, key, value), fetched batch by batch up to the high
/// watermark from `from` (a compacted log has gaps and batches with no record).
pub async fn fetch_records(
    c: &mut Client,
    topic: &str,
    partition: i32,
    from: i64,
) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let p = fetch(c, topic, partition, offset).await;
        assert_eq!(p.error_code, 0, "fetch at {offset}");
        let records = p.records.unwrap_or_default();
        if records.is_empty() {
            return out;
        }
        let mut buf = records.clone();
        let mut next = offset;
        while buf.has_remaining() {
            let base = i64::from_be_bytes(buf[0..8].try_into().unwrap());
            let length = i32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
            let last_delta = i32::from_be_bytes(buf[23..27].try_into().unwrap()) as i64;
            next = next.max(base + last_delta + 1);
            buf.advance(12 + length);
        }
        let mut buf = records.clone();
        for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
            out.extend(
                set.records
                    .into_iter()
                    .filter(|r| r.offset >= offset)
                    .map(|r| (r.offset, r.key, r.value)),
            );
        }
        offset = next;
    }
}
