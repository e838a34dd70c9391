"""Retention as clients see it: topic-level retention.ms / retention.bytes (set at creation)
delete old segments, the log start offset moves, and every client agrees on where the
partition now begins. The broker runs retention every 200 ms here."""

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from conftest import (
    admin_config,
    broker_fixture,
    consume_range,
    consume_until_eof,
    consumer_config,
    delivered_offsets,
    produce_all,
    producer_config,
)

TIMEOUT_S = 15
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-retention", {"log.retention.check.interval.ms": 200})


def create(broker, topic: str, **config) -> None:
    configs = {k.replace("_", "."): str(v) for k, v in config.items()}  # retention_ms -> retention.ms
    admin = AdminClient(admin_config(broker.bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=1, config=configs)])[topic].result(timeout=TIMEOUT_S)


def watermarks(broker, topic: str) -> tuple[int, int]:
    c = Consumer(consumer_config(broker.bootstrap))
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S, cached=False)
    finally:
        c.close()


def wait_for_log_start(broker, topic: str, done, timeout: float = TIMEOUT_S) -> tuple[int, int]:
    """Polls the watermarks until `done(low, high)` or `timeout`; returns the last seen."""
    deadline = time.monotonic() + timeout
    while True:
        low, high = watermarks(broker, topic)
        if done(low, high) or time.monotonic() > deadline:
            return low, high
        time.sleep(0.2)


def produce_one_batch_each(broker, topic: str, values, timestamp_ms: int) -> list[int]:
    p = Producer(producer_config(broker.bootstrap, **{"linger.ms": 0}))
    offsets = []
    for v in values:  # a flush per value: one batch each, so segments fill record by record
        offsets += delivered_offsets(produce_all(p, topic, [v], timestamp=timestamp_ms))
    return offsets


def now_ms() -> int:
    return int(time.time() * 1000)


def test_time_retention_deletes_expired_segments_and_every_client_sees_the_new_log_start(broker, topic):
    create(broker, topic, retention_ms=2000, segment_bytes=1024)
    old = [f"old-{i:03d}-".encode() + b"o" * 100 for i in range(40)]
    new = [f"new-{i:03d}-".encode() + b"n" * 100 for i in range(10)]
    produce_one_batch_each(broker, topic, old, now_ms() - HOUR_MS)
    produce_one_batch_each(broker, topic, new, now_ms())

    low, high = wait_for_log_start(broker, topic, lambda lo, hi: lo > 0)

    assert 0 < low <= len(old) and high == len(old) + len(new), (low, high)
    everything = old + new
    assert [(m.offset(), m.value()) for m in consume_until_eof(broker.bootstrap, topic)] == [
        (o, everything[o]) for o in range(low, high)
    ]
    # A consumer asking for a deleted offset is reset to the new start.
    [m] = consume_range(broker.bootstrap, topic, 0, 0, 1, **{"auto.offset.reset": "earliest"})
    assert m.offset() == low
    kp = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, request_timeout_ms=11000)
    try:
        tp = KpTopicPartition(topic, 0)
        assert kp.beginning_offsets([tp]) == {tp: low}
        assert kp.offsets_for_times({tp: 0})[tp].offset == low
    finally:
        kp.close()


def test_size_retention_keeps_the_partition_near_retention_bytes(broker, topic):
    create(broker, topic, retention_bytes=3000, segment_bytes=1024)
    values = [f"v-{i:03d}-".encode() + b"s" * 100 for i in range(60)]  # about 10 KB
    produce_one_batch_each(broker, topic, values, now_ms())

    low, high = wait_for_log_start(broker, topic, lambda lo, hi: lo > 0)

    assert high == len(values)
    kept_bytes = sum(f.stat().st_size for f in (broker.data_dir / f"{topic}-0").glob("*.log"))
    assert 3000 <= kept_bytes <= 3000 + 1024 + 200, kept_bytes  # at most one segment over
    assert [m.offset() for m in consume_until_eof(broker.bootstrap, topic)] == list(range(low, high))


def test_retention_does_not_touch_topics_without_limits(broker, topic):
    create(broker, topic, segment_bytes=1024)  # default retention.ms is 7 days
    produce_one_batch_each(broker, topic, [b"x" * 200] * 20, now_ms() - HOUR_MS)
    time.sleep(0.6)  # three retention runs

    assert watermarks(broker, topic) == (0, 20)


def test_idle_partition_whose_records_all_expired_becomes_empty(broker, topic):
    create(broker, topic, retention_ms=1000)
    produce_one_batch_each(broker, topic, [b"a", b"b", b"c"], now_ms() - HOUR_MS)

    low, high = wait_for_log_start(broker, topic, lambda lo, hi: lo == hi, timeout=3)  # 15 retention runs

    assert (low, high) == (3, 3)
    p = Producer(producer_config(broker.bootstrap))
    assert delivered_offsets(produce_all(p, topic, [b"d"])) == [3]
    assert [m.value() for m in consume_range(broker.bootstrap, topic, 0, OFFSET_BEGINNING, 1)] == [b"d"]
