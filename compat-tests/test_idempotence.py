"""Idempotent producers and compression with real clients.

Idempotence: confluent-kafka (`enable.idempotence=true`, acks=all) keeps producing while the
broker is `kill -9`ed and restarted twice, and every record ends up stored once, in order, per
partition; kafka-python's idempotent producer likewise; and duplicates, replays and gaps sent
with kafka-python's own protocol classes get Kafka's answers (original offsets for a duplicate,
OUT_OF_ORDER_SEQUENCE_NUMBER for a gap), also on a topic that recompresses.

Compression: every codec produced by one client and consumed by the other; topics with a
`compression.type` store producer batches in the topic's codec (read from the on-disk batch
headers) and both clients read them back intact; `max.message.bytes` is enforced on the batch
as received and as recompressed; kafka-python's describe_configs shows compression.type.
"""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from conftest import (
    StreamingProducer,
    assert_every_ack_is_in_the_log_once_in_order,
    batching_producer,
    consume_until_eof,
    consumer_config,
    create_topic,
    delivered_offsets,
    log_contents,
    produce_all,
    stored_batches,
)

TIMEOUT_S = 20
CONFIG_SOURCE_TOPIC = 1
CONFIG_SOURCE_DEFAULT = 5
CODECS = ["gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def assert_sequences_contiguous(batches: list[dict]) -> None:
    """Within each producer id and epoch, each batch's base sequence follows the previous one."""
    last: dict[tuple[int, int], dict] = {}
    for b in batches:
        key = (b["producer_id"], b["producer_epoch"])
        if key in last:
            prev = last[key]
            assert b["base_sequence"] == prev["base_sequence"] + prev["records"], f"sequence gap: {prev} then {b}"
        last[key] = b


# ---------------------------------------------------------------------------------------------
# confluent-kafka idempotent producer across two kill -9s


@pytest.mark.parametrize(
    "compression",
    [
        pytest.param({}, id="uncompressed"),
        pytest.param({"producer": {"compression.type": "gzip"}, "topic": {"compression.type": "zstd"}},
                     id="gzip_recompressed_to_zstd"),
    ],
)
def test_idempotent_producer_stores_each_record_once_in_order_across_two_kill9s(fresh_broker, topic, compression):
    broker = fresh_broker
    partitions = 3
    create_topic(broker, topic, partitions, compression.get("topic"))
    stream = StreamingProducer(broker.bootstrap, topic, idempotent=True, partitions=partitions,
                               extra=compression.get("producer"))
    stream.start()
    try:
        stream.wait_for_acks(3000)
        for _ in range(2):
            broker.kill9()
            acked_before_kill = len(stream.acked)
            broker.start()
            stream.wait_for_acks(acked_before_kill + 3000)  # the same producer carries on
    finally:
        stream.finish()

    assert stream.failed == [], f"{len(stream.failed)} idempotent produces failed: {stream.errors[:3]}"
    for p in range(partitions):
        log = log_contents(broker, topic, p)
        assert_every_ack_is_in_the_log_once_in_order(stream.acked_in[p], log)
        assert [v for _, v in log] == stream.sent_to(p), f"partition {p}: not every record once, in order"
        batches = stored_batches(broker, topic, p)
        assert all(b["producer_id"] >= 0 for b in batches), "a batch lost its producer id"
        assert_sequences_contiguous(batches)
        if "topic" in compression:
            assert {b["codec"] for b in batches} == {"zstd"}


# ---------------------------------------------------------------------------------------------
# kafka-python idempotent producer


def kp_producer(broker, **kw) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000, **kw)


def kp_consumer(broker) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                         request_timeout_ms=11000, fetch_max_wait_ms=100)


def kp_read_all(broker, topic: str, partition: int = 0) -> list:
    """Every record of the partition, read with kafka-python (assign + seek to beginning)."""
    c = kp_consumer(broker)
    try:
        tp = KpTopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while (not got or got[-1].offset < end - 1) and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=200).values():
                got.extend(records)
        assert len(got) == end, f"read {len(got)} of {end} records"
        return got
    finally:
        c.close()


def test_kafka_python_idempotent_producer_stores_each_record_once_in_order(broker, topic):
    create_topic(broker, topic, 2)
    p = kp_producer(broker, enable_idempotence=True, acks="all", linger_ms=5, compression_type="lz4")
    values = {part: [f"kp-idem-{part}-{i:05d}".encode() for i in range(1500)] for part in range(2)}
    try:
        futures = {part: [p.send(topic, value=v, partition=part) for v in vs] for part, vs in values.items()}
        p.flush(timeout=TIMEOUT_S)
        offsets = {part: [f.get(timeout=TIMEOUT_S).offset for f in fs] for part, fs in futures.items()}
    finally:
        p.close(timeout=TIMEOUT_S)

    for part in range(2):
        assert offsets[part] == list(range(1500))
        assert [(r.offset, r.value) for r in kp_read_all(broker, topic, part)] == list(enumerate(values[part]))
        batches = stored_batches(broker, topic, part)
        assert len({(b["producer_id"], b["producer_epoch"]) for b in batches}) == 1
        assert batches[0]["producer_id"] >= 0 and batches[0]["base_sequence"] == 0
        assert_sequences_contiguous(batches)


# ---------------------------------------------------------------------------------------------
# Deduplication, seen through kafka-python's protocol classes: the same batch sent again gets
# the offsets it was stored at the first time, and nothing is written twice.


class KpWire:
    """kafka-python's network client and protocol classes, for requests no public API sends."""

    def __init__(self, broker):
        from kafka.client_async import KafkaClient

        self.client = KafkaClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
        deadline = time.monotonic() + TIMEOUT_S
        while not self.client.ready(1):
            assert time.monotonic() < deadline, "kafka-python could not connect"
            self.client.poll(timeout_ms=100)

    def call(self, request):
        future = self.client.send(1, request)
        self.client.poll(future=future, timeout_ms=TIMEOUT_S * 1000)
        assert future.succeeded(), f"{request}: {future.exception}"
        return future.value

    def init_producer_id(self) -> tuple[int, int]:
        from kafka.protocol.init_producer_id import InitProducerIdRequest

        r = self.call(InitProducerIdRequest[1](transactional_id=None, transaction_timeout_ms=60000))
        assert r.error_code == 0, r
        return r.producer_id, r.producer_epoch

    def produce(self, topic: str, records: bytes) -> tuple[int, int]:
        """(error code, base offset) of a Produce (v7, acks=all) of one batch to partition 0."""
        from kafka.protocol.produce import ProduceRequest

        r = self.call(ProduceRequest[7](transactional_id=None, required_acks=-1, timeout=10000,
                                        topics=[(topic, [(0, records)])]))
        [(_, [(_, error_code, base_offset, *_)])] = r.topics
        return error_code, base_offset

    def close(self):
        self.client.close()


def idempotent_batch(producer: tuple[int, int], sequence: int, count: int, codec: str = "gzip") -> bytes:
    from kafka.record.memory_records import MemoryRecordsBuilder

    pid, epoch = producer
    b = MemoryRecordsBuilder(magic=2, compression_type=CODEC_IDS[codec], batch_size=1 << 20,
                             producer_id=pid, producer_epoch=epoch, base_sequence=sequence)
    for i in range(count):
        b.append(timestamp=None, key=None, value=f"seq-{sequence + i}".encode(), headers=[])
    b.close()
    return bytes(b.buffer())


@pytest.mark.parametrize("topic_codec", ["producer", "zstd"])
def test_duplicate_batches_get_their_original_offsets_and_gaps_are_refused(broker, topic, topic_codec):
    create_topic(broker, topic, 1, {"compression.type": topic_codec})
    wire = KpWire(broker)
    try:
        producer = wire.init_producer_id()
        first, second = idempotent_batch(producer, 0, 5), idempotent_batch(producer, 5, 5)

        assert wire.produce(topic, first) == (0, 0)
        assert wire.produce(topic, first) == (0, 0)  # the latest batch again
        assert wire.produce(topic, second) == (0, 5)
        assert wire.produce(topic, first) == (0, 0)  # an older one of the last five
        assert wire.produce(topic, second) == (0, 5)
        assert wire.produce(topic, idempotent_batch(producer, 20, 5))[0] == KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert wire.produce(topic, idempotent_batch(producer, 10, 5)) == (0, 10)
    finally:
        wire.close()

    log = log_contents(broker, topic)
    assert log == [(i, f"seq-{i}".encode()) for i in range(15)]
    batches = stored_batches(broker, topic)
    assert [(b["base_offset"], b["base_sequence"], b["records"]) for b in batches] == [(0, 0, 5), (5, 5, 5), (10, 10, 5)]
    assert {b["codec"] for b in batches} == {"gzip" if topic_codec == "producer" else topic_codec}
    assert {(b["producer_id"], b["producer_epoch"]) for b in batches} == {producer}


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_a_batch_resent_after_a_broker_restart_is_still_recognised_as_a_duplicate(fresh_broker, topic, how):
    broker = fresh_broker
    create_topic(broker, topic)
    wire = KpWire(broker)
    producer = wire.init_producer_id()
    batches = [idempotent_batch(producer, 5 * i, 5) for i in range(3)]
    try:
        assert [wire.produce(topic, b) for b in batches] == [(0, 0), (0, 5), (0, 10)]
    finally:
        wire.close()

    if how == "sigterm":
        broker.restart()
    else:
        broker.kill9()
        broker.start()

    wire = KpWire(broker)
    try:
        assert wire.produce(topic, batches[2]) == (0, 10)
        # An older batch: Kafka's producer snapshot (written at a clean shutdown) keeps only the
        # last batch of each producer, so after SIGTERM it is out of sequence; after kill -9 the
        # state is rebuilt from the log, which has the last five batches.
        older = wire.produce(topic, batches[1])
        assert older == ((KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, -1) if how == "sigterm" else (0, 5))
        assert wire.produce(topic, idempotent_batch(producer, 15, 5)) == (0, 15)
        assert wire.produce(topic, idempotent_batch(producer, 30, 5))[0] == KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER
    finally:
        wire.close()
    assert log_contents(broker, topic) == [(i, f"seq-{i}".encode()) for i in range(20)]


# ---------------------------------------------------------------------------------------------
# Every codec from one client to the other


def ck_consume_all(broker, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    return [(m.offset(), m.value(), m.key()) for m in consume_until_eof(broker.bootstrap, topic, timeout=TIMEOUT_S)]


def kp_consume_all(broker, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    return [(r.offset, r.value, r.key) for r in kp_read_all(broker, topic)]


def ck_produce(broker, topic: str, values: list[bytes], codec: str | None, key: bytes | None = None) -> None:
    p = batching_producer(broker.bootstrap, topic, **{"compression.type": codec or "none", "linger.ms": 100})
    assert delivered_offsets(produce_all(p, topic, values, key=key)) == list(range(len(values)))


def kp_produce(broker, topic: str, values: list[bytes], codec: str | None, key: bytes | None = None) -> None:
    p = kp_producer(broker, acks="all", compression_type=codec, linger_ms=100)
    try:
        futures = [p.send(topic, value=v, key=key, partition=0) for v in values]
        p.flush(timeout=TIMEOUT_S)
        assert [f.get(timeout=TIMEOUT_S).offset for f in futures] == list(range(len(values)))
    finally:
        p.close(timeout=TIMEOUT_S)


PRODUCE = {"confluent": ck_produce, "kafka_python": kp_produce}
CONSUME = {"confluent": ck_consume_all, "kafka_python": kp_consume_all}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer,consumer", [("confluent", "kafka_python"), ("kafka_python", "confluent")],
                         ids=["confluent_to_kafka_python", "kafka_python_to_confluent"])
def test_each_codec_produced_by_one_client_is_read_by_the_other(broker, topic, codec, producer, consumer):
    create_topic(broker, topic)
    values = [f"{codec}-{i:04d}-".encode() + b"x" * (i % 50) for i in range(300)]

    PRODUCE[producer](broker, topic, values, codec, key=b"k")

    assert {b["codec"] for b in stored_batches(broker, topic)} == {codec}
    assert CONSUME[consumer](broker, topic) == [(i, v, b"k") for i, v in enumerate(values)]


# ---------------------------------------------------------------------------------------------
# Topic compression.type


@pytest.mark.parametrize(
    "topic_codec,producer_codec,client",
    [
        ("zstd", None, "confluent"),
        ("zstd", None, "kafka_python"),
        ("zstd", "gzip", "confluent"),
        ("zstd", "gzip", "kafka_python"),
        ("lz4", None, "confluent"),
        ("lz4", None, "kafka_python"),
        ("lz4", "gzip", "confluent"),
        ("lz4", "gzip", "kafka_python"),
        ("gzip", "zstd", "confluent"),
        ("snappy", "lz4", "kafka_python"),
        ("uncompressed", "gzip", "confluent"),
        ("uncompressed", "snappy", "kafka_python"),
        ("producer", "snappy", "confluent"),
        ("producer", "zstd", "kafka_python"),
    ],
)
def test_topic_compression_type_decides_the_stored_codec_and_both_clients_read_it(
    broker, topic, topic_codec, producer_codec, client
):
    create_topic(broker, topic, 1, {"compression.type": topic_codec})
    values = [f"t-{i:04d}-".encode() + b"y" * (i % 40) for i in range(250)]

    PRODUCE[client](broker, topic, values, producer_codec, key=b"key")

    stored = {"producer": producer_codec or "none", "uncompressed": "none"}.get(topic_codec, topic_codec)
    batches = stored_batches(broker, topic)
    assert {b["codec"] for b in batches} == {stored}
    assert sum(b["records"] for b in batches) == len(values)
    expected = [(i, v, b"key") for i, v in enumerate(values)]
    assert ck_consume_all(broker, topic) == expected
    assert kp_consume_all(broker, topic) == expected


def test_recompressed_batch_keeps_keys_values_headers_timestamps_and_offsets(broker, topic):
    create_topic(broker, topic, 1, {"compression.type": "zstd"})
    p = batching_producer(broker.bootstrap, topic, **{"compression.type": "gzip", "linger.ms": 100})
    base = 1_700_000_000_000
    reports = []
    for i in range(20):
        p.produce(topic, value=f"v{i}".encode() if i != 7 else None, key=f"k{i}".encode() if i != 3 else None,
                  headers=[("h", f"x{i}".encode()), ("g", None)], timestamp=base + i * 10, partition=0,
                  on_delivery=lambda e, m: reports.append((e, m)))
    assert p.flush(TIMEOUT_S) == 0
    assert delivered_offsets(reports) == list(range(20))
    assert [b["codec"] for b in stored_batches(broker, topic)] == ["zstd"]

    got = consume_until_eof(broker.bootstrap, topic, timeout=TIMEOUT_S)
    assert [(m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in got] == [
        (i, f"k{i}".encode() if i != 3 else None, f"v{i}".encode() if i != 7 else None,
         [("h", f"x{i}".encode()), ("g", None)], base + i * 10)
        for i in range(20)
    ]
    c = Consumer(consumer_config(broker.bootstrap))
    try:  # the time index points into the recompressed batch
        [tp] = c.offsets_for_times([TopicPartition(topic, 0, base + 125)], timeout=TIMEOUT_S)
        assert tp.offset == 13
    finally:
        c.close()


REPEATED_HEADERS = [("trace", b"first"), ("trace", b"second"), ("other", b"1")]


@pytest.mark.parametrize(
    "topic_codec",
    [
        "producer",
        "zstd",
        "uncompressed",
    ],
)
def test_a_header_key_repeated_in_one_record_keeps_every_value(broker, topic, topic_codec):
    create_topic(broker, topic, 1, {"compression.type": topic_codec})
    p = batching_producer(broker.bootstrap, topic, **{"compression.type": "gzip", "linger.ms": 100})
    values = [f"repeated-header-{i}-".encode() * 10 for i in range(10)]  # compressible: sent as gzip
    assert delivered_offsets(produce_all(p, topic, values, headers=REPEATED_HEADERS)) == list(range(10))
    stored = {"producer": "gzip", "uncompressed": "none"}.get(topic_codec, topic_codec)
    assert {b["codec"] for b in stored_batches(broker, topic)} == {stored}

    got = consume_until_eof(broker.bootstrap, topic, timeout=TIMEOUT_S)

    assert [m.headers() for m in got] == [REPEATED_HEADERS] * 10


# ---------------------------------------------------------------------------------------------
# max.message.bytes against the batch as received and as stored


def ck_produce_one(broker, topic: str, value: bytes, codec: str):
    p = batching_producer(broker.bootstrap, topic, **{"compression.type": codec, "message.timeout.ms": 10000})
    [(err, msg)] = produce_all(p, topic, [value])
    return err, msg


def test_max_message_bytes_applies_to_the_recompressed_batch(broker, topic):
    # A gzip batch of ~200 bytes holding a 50 KB record: fine as received, 50 KB once stored
    # uncompressed. Kafka re-checks the size after recompression: MESSAGE_TOO_LARGE.
    create_topic(broker, topic, 1, {"compression.type": "uncompressed", "max.message.bytes": 10000})

    err, _ = ck_produce_one(broker, topic, b"a" * 50_000, "gzip")

    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    err, msg = ck_produce_one(broker, topic, b"a" * 5_000, "gzip")
    assert err is None and msg.offset() == 0, "the refused batch used an offset"
    assert [b["codec"] for b in stored_batches(broker, topic)] == ["none"]


def test_max_message_bytes_applies_to_the_batch_as_received(broker, topic):
    # A 20 KB uncompressed batch for a zstd topic would be stored in well under 10000 bytes;
    # Kafka checks the batch as received first (UnifiedLog.analyzeAndValidateRecords):
    # MESSAGE_TOO_LARGE, and nothing is stored.
    create_topic(broker, topic, 1, {"compression.type": "zstd", "max.message.bytes": 10000})

    err, _ = ck_produce_one(broker, topic, b"b" * 20_000, "none")

    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert stored_batches(broker, topic) == []


def test_max_message_bytes_accepts_a_batch_small_both_as_received_and_as_stored(broker, topic):
    create_topic(broker, topic, 1, {"compression.type": "zstd", "max.message.bytes": 10000})

    err, msg = ck_produce_one(broker, topic, b"c" * 50_000, "gzip")

    assert err is None and msg.offset() == 0
    [batch] = stored_batches(broker, topic)
    assert batch["codec"] == "zstd" and batch["size"] <= 10000
    [(offset, value)] = log_contents(broker, topic)
    assert (offset, value) == (0, b"c" * 50_000)


def test_kafka_python_gets_message_too_large_for_a_batch_too_large_once_recompressed(broker, topic):
    from kafka.errors import MessageSizeTooLargeError

    create_topic(broker, topic, 1, {"compression.type": "uncompressed", "max.message.bytes": 10000})
    p = kp_producer(broker, acks="all", compression_type="gzip", retries=0)
    try:
        future = p.send(topic, value=b"d" * 50_000, partition=0)
        with pytest.raises(MessageSizeTooLargeError):
            future.get(timeout=TIMEOUT_S)
        assert p.send(topic, value=b"small", partition=0).get(timeout=TIMEOUT_S).offset == 0
    finally:
        p.close(timeout=TIMEOUT_S)


# ---------------------------------------------------------------------------------------------
# Admin views of compression.type


def test_kafka_python_describe_configs_shows_compression_type(broker, topic):
    create_topic(broker, topic + "-zstd", 1, {"compression.type": "zstd"})
    create_topic(broker, topic + "-default", 1)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        def entry(name):
            [response] = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            [resource] = response.to_object()["resources"]
            assert resource["error_code"] == 0, resource
            [e] = [e for e in resource["config_entries"] if e["config_names"] == "compression.type"]
            return e["config_value"], e["config_source"]

        assert entry(topic + "-zstd") == ("zstd", CONFIG_SOURCE_TOPIC)
        assert entry(topic + "-default") == ("producer", CONFIG_SOURCE_DEFAULT)
    finally:
        admin.close()


def test_unknown_compression_type_is_refused_with_invalid_config(broker, topic):
    from confluent_kafka import KafkaException

    with pytest.raises(KafkaException) as refused:
        create_topic(broker, topic, 1, {"compression.type": "brotli"})
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG
