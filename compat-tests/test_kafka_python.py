"""kafka-python (a pure-Python client, its own protocol code) against Sluice: KafkaAdminClient
topic and config calls, KafkaProducer with acks=all and each codec, KafkaConsumer with
assign()/seek and the offset lookups."""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import (
    InvalidPartitionsError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from conftest import stored_batches

TIMEOUT_S = 15
CONFIG_SOURCE_TOPIC = 1
CONFIG_SOURCE_DEFAULT = 5


@pytest.fixture(scope="module")
def admin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    yield a
    a.close()


def new_producer(broker, **kw) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000, **kw)


def new_consumer(broker, **kw) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,  # no consumer groups: assign() only, no commits
        enable_auto_commit=False,
        request_timeout_ms=11000,
        fetch_max_wait_ms=100,
        **kw,
    )


def send_all(producer: KafkaProducer, topic: str, values, **kw) -> list:
    """Sends every value to partition 0 and waits for each ack; returns the record metadata."""
    futures = [producer.send(topic, value=v, partition=0, **kw) for v in values]
    producer.flush(timeout=TIMEOUT_S)
    return [f.get(timeout=TIMEOUT_S) for f in futures]


def read(consumer: KafkaConsumer, count: int) -> list:
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            got.extend(records)
    assert len(got) == count, f"read {len(got)} of {count} records in {TIMEOUT_S}s"
    return got


def read_from_beginning(broker, topic: str, count: int, partition: int = 0) -> list:
    c = new_consumer(broker)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        return read(c, count)
    finally:
        c.close()


def topic_configs(admin, topic: str) -> dict:
    [response] = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    [resource] = response.to_object()["resources"]
    assert resource["error_code"] == 0, resource
    return {e["config_names"]: e for e in resource["config_entries"]}


# ---------------------------------------------------------------------------------------------
# KafkaAdminClient


def test_admin_create_topics_makes_partitions_visible(admin, topic):
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])

    [described] = admin.describe_topics([topic])

    assert described["error_code"] == 0
    parts = sorted(described["partitions"], key=lambda p: p["partition"])
    assert [(p["partition"], p["leader"], p["replicas"], p["isr"]) for p in parts] == [
        (0, 1, [1], [1]),
        (1, 1, [1], [1]),
    ]
    assert topic in admin.list_topics()


def test_admin_create_existing_topic_raises_topic_already_exists(admin, topic):
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])


def test_admin_delete_topics_removes_it_from_list_topics(admin, topic):
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

    response = admin.delete_topics([topic])

    assert [e for _, e in response.topic_error_codes] == [0]
    assert topic not in admin.list_topics()


def test_admin_delete_missing_topic_raises_unknown_topic(admin, topic):
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics([topic])


def test_admin_describe_configs_reports_defaults_and_values_set_at_creation(admin, topic):
    admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, topic_configs={"retention.ms": "3600000"})]
    )

    configs = topic_configs(admin, topic)

    assert configs["retention.ms"]["config_value"] == "3600000"
    assert configs["retention.ms"]["config_source"] == CONFIG_SOURCE_TOPIC
    for name, value in {"segment.bytes": "1073741824", "cleanup.policy": "delete", "retention.bytes": "-1"}.items():
        assert configs[name]["config_value"] == value
        assert configs[name]["config_source"] == CONFIG_SOURCE_DEFAULT


def test_admin_create_partitions_grows_the_topic(admin, topic):
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

    admin.create_partitions({topic: NewPartitions(total_count=4)})

    [described] = admin.describe_topics([topic])
    assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2, 3]
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({topic: NewPartitions(total_count=2)})


def test_admin_describe_cluster_names_the_one_broker_as_controller(admin, broker):
    cluster = admin.describe_cluster()

    assert cluster["controller_id"] == 1
    assert cluster["cluster_id"]
    assert [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [(1, "127.0.0.1", broker.port)]


# ---------------------------------------------------------------------------------------------
# KafkaProducer and KafkaConsumer


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_acks_all_produce_with_each_codec_is_stored_compressed_and_read_back(broker, topic, codec):
    p = new_producer(broker, acks="all", compression_type=codec, linger_ms=50)
    values = [f"kp-{codec}-{i:04d}".encode() * 3 for i in range(200)]
    try:
        metadata = send_all(p, topic, values)
    finally:
        p.close(timeout=TIMEOUT_S)

    assert [m.offset for m in metadata] == list(range(len(values)))
    got = read_from_beginning(broker, topic, len(values))
    assert [(r.offset, r.value) for r in got] == list(enumerate(values))
    assert {b["codec"] for b in stored_batches(broker, topic)} == {codec or "none"}


def test_keys_headers_and_timestamps_round_trip(broker, topic):
    p = new_producer(broker, acks="all")
    try:
        send_all(p, topic, [b"v1", b"v2"], key=b"k", headers=[("h", b"x")], timestamp_ms=1_650_000_000_000)
    finally:
        p.close(timeout=TIMEOUT_S)

    got = read_from_beginning(broker, topic, 2)

    assert [(r.key, r.value, r.headers, r.timestamp) for r in got] == [
        (b"k", b"v1", [("h", b"x")], 1_650_000_000_000),
        (b"k", b"v2", [("h", b"x")], 1_650_000_000_000),
    ]


def test_seek_into_middle_of_compressed_batch_starts_at_that_offset(broker, topic):
    p = new_producer(broker, acks="all", compression_type="gzip", linger_ms=500)
    try:
        send_all(p, topic, [f"r{i}".encode() for i in range(40)])
    finally:
        p.close(timeout=TIMEOUT_S)
    assert len(stored_batches(broker, topic)) == 1

    c = new_consumer(broker)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 25)
        got = read(c, 15)
    finally:
        c.close()

    assert [(r.offset, r.value) for r in got] == [(i, f"r{i}".encode()) for i in range(25, 40)]


def test_beginning_and_end_offsets_bound_the_partition(broker, topic):
    p = new_producer(broker, acks="all")
    try:
        send_all(p, topic, [b"a", b"b", b"c"])
    finally:
        p.close(timeout=TIMEOUT_S)
    tp = TopicPartition(topic, 0)
    c = new_consumer(broker)
    try:
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: 3}
    finally:
        c.close()


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_offsets_for_times_finds_first_record_at_or_after_timestamp_inside_batches(broker, topic, codec):
    base = 1_700_000_000_000
    p = new_producer(broker, acks="all", compression_type=codec, linger_ms=100)
    try:
        for batch in range(2):  # two batches of five records, timestamps 0s..9s
            futures = [
                p.send(topic, value=f"t{n}".encode(), partition=0, timestamp_ms=base + 1000 * n)
                for n in range(5 * batch, 5 * batch + 5)
            ]
            p.flush(timeout=TIMEOUT_S)
            for f in futures:
                f.get(timeout=TIMEOUT_S)
    finally:
        p.close(timeout=TIMEOUT_S)
    assert [b["records"] for b in stored_batches(broker, topic)] == [5, 5]
    tp = TopicPartition(topic, 0)
    c = new_consumer(broker)
    try:
        queries = [base - 5, base + 1500, base + 4000, base + 5000, base + 7001, base + 9000, base + 9001]
        found = {ts: c.offsets_for_times({tp: ts})[tp] for ts in queries}
    finally:
        c.close()

    def hit(ts):
        return None if found[ts] is None else (found[ts].offset, found[ts].timestamp)

    assert hit(base - 5) == (0, base)
    assert hit(base + 1500) == (2, base + 2000)
    assert hit(base + 4000) == (4, base + 4000)
    assert hit(base + 5000) == (5, base + 5000)
    assert hit(base + 7001) == (8, base + 8000)
    assert hit(base + 9000) == (9, base + 9000)
    assert hit(base + 9001) is None
