"""confluent-kafka (librdkafka) against Sluice: the AdminClient topic and config calls, the
Producer with every codec and acks setting, and the Consumer with assign(), watermarks,
offsets_for_times, large messages and seeks into compressed batches."""

import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from conftest import (
    admin_config,
    batching_producer,
    consume_range,
    consume_until_eof,
    consumer_config,
    delivered_offsets,
    produce_all,
    producer_config,
    stored_batches,
)

TIMEOUT_S = 15


@pytest.fixture(scope="module")
def admin(broker):
    return AdminClient(admin_config(broker.bootstrap))


def create(admin, topic: str, partitions: int = 1, config: dict | None = None) -> None:
    admin.create_topics([NewTopic(topic, num_partitions=partitions, config=config or {})])[topic].result(
        timeout=TIMEOUT_S
    )


def create_error(admin, new_topic: NewTopic, **kw) -> KafkaError:
    with pytest.raises(KafkaException) as e:
        admin.create_topics([new_topic], **kw)[new_topic.topic].result(timeout=TIMEOUT_S)
    return e.value.args[0]


def topic_configs(admin, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res])[res].result(timeout=TIMEOUT_S)


# ---------------------------------------------------------------------------------------------
# AdminClient: topics


def test_create_topics_makes_every_partition_visible_in_metadata(admin, broker, topic):
    create(admin, topic, partitions=3)

    md = admin.list_topics(topic, timeout=TIMEOUT_S).topics[topic]

    assert md.error is None
    assert sorted(md.partitions) == [0, 1, 2]
    for p in md.partitions.values():
        assert (p.leader, p.replicas, p.isrs, p.error) == (1, [1], [1], None)


def test_create_existing_topic_fails_with_topic_already_exists(admin, topic):
    create(admin, topic)

    err = create_error(admin, NewTopic(topic, num_partitions=1))

    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_create_topic_with_zero_partitions_fails_with_invalid_partitions(admin, topic):
    err = create_error(admin, NewTopic(topic, num_partitions=0))

    assert err.code() == KafkaError.INVALID_PARTITIONS
    assert topic not in admin.list_topics(timeout=TIMEOUT_S).topics


def test_create_topic_with_replication_factor_above_broker_count_fails(admin, topic):
    err = create_error(admin, NewTopic(topic, num_partitions=1, replication_factor=3))

    assert err.code() == KafkaError.INVALID_REPLICATION_FACTOR


def test_create_topic_with_invalid_config_value_fails_with_invalid_config(admin, topic):
    err = create_error(admin, NewTopic(topic, num_partitions=1, config={"retention.ms": "soon"}))

    assert err.code() == KafkaError.INVALID_CONFIG


def test_create_topic_with_illegal_name_fails_with_invalid_topic(admin):
    err = create_error(admin, NewTopic("bad/name", num_partitions=1))

    assert err.code() == KafkaError.TOPIC_EXCEPTION


def test_create_topic_colliding_with_existing_name_by_dot_or_underscore_fails_with_invalid_topic(admin, topic):
    create(admin, topic + ".x")

    err = create_error(admin, NewTopic(topic + "_x", num_partitions=1))

    assert err.code() == KafkaError.TOPIC_EXCEPTION


def test_validate_only_create_does_not_create_the_topic(admin, topic):
    admin.create_topics([NewTopic(topic, num_partitions=2)], validate_only=True)[topic].result(timeout=TIMEOUT_S)

    assert topic not in admin.list_topics(timeout=TIMEOUT_S).topics


def test_delete_topics_removes_topic_from_metadata(admin, broker, topic):
    create(admin, topic)
    produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"x"])

    admin.delete_topics([topic], operation_timeout=10)[topic].result(timeout=TIMEOUT_S)

    assert topic not in admin.list_topics(timeout=TIMEOUT_S).topics


def test_delete_missing_topic_fails_with_unknown_topic(admin, topic):
    with pytest.raises(KafkaException) as e:
        admin.delete_topics([topic])[topic].result(timeout=TIMEOUT_S)

    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_recreated_topic_starts_empty_at_offset_zero(admin, broker, topic):
    create(admin, topic)
    produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"old-1", b"old-2"])
    admin.delete_topics([topic])[topic].result(timeout=TIMEOUT_S)

    create(admin, topic)
    reports = produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"new"])

    assert delivered_offsets(reports) == [0]
    assert [m.value() for m in consume_until_eof(broker.bootstrap, topic)] == [b"new"]


def test_create_partitions_grows_topic_and_new_partition_takes_writes(admin, broker, topic):
    create(admin, topic, partitions=1)

    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=TIMEOUT_S)

    md = admin.list_topics(topic, timeout=TIMEOUT_S).topics[topic]
    assert sorted(md.partitions) == [0, 1, 2]
    reports = produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"in-2"], partition=2)
    assert delivered_offsets(reports) == [0]
    assert [m.value() for m in consume_range(broker.bootstrap, topic, 2, OFFSET_BEGINNING, 1)] == [b"in-2"]


def test_create_partitions_cannot_shrink_a_topic(admin, topic):
    create(admin, topic, partitions=2)

    with pytest.raises(KafkaException) as e:
        admin.create_partitions([NewPartitions(topic, 1)])[topic].result(timeout=TIMEOUT_S)

    assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS


# ---------------------------------------------------------------------------------------------
# AdminClient: configs and cluster


def test_describe_configs_reports_every_topic_config_with_its_default(admin, topic):
    create(admin, topic)

    configs = topic_configs(admin, topic)

    expected_defaults = {
        "retention.ms": "604800000",
        "retention.bytes": "-1",
        "segment.bytes": "1073741824",
        "cleanup.policy": "delete",
        "max.message.bytes": "1048588",
        "compression.type": "producer",
        "message.timestamp.type": "CreateTime",
    }
    for name, value in expected_defaults.items():
        assert name in configs, f"{name} missing from {sorted(configs)}"
        entry = configs[name]
        assert entry.value == value, name
        assert entry.is_default, name
        assert entry.source == ConfigSource.DEFAULT_CONFIG.value, name
        assert not entry.is_sensitive, name
    # As in Kafka 4.1+ with eligible leader replicas: the controller writes the cluster-wide
    # min.insync.replicas at bootstrap, so a topic inherits a dynamic cluster default.
    entry = configs["min.insync.replicas"]
    assert (entry.value, entry.is_default) == ("1", False)
    assert entry.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value


def test_describe_configs_shows_a_value_set_at_creation_as_a_topic_config(admin, topic):
    create(admin, topic, config={"retention.ms": "3600000", "cleanup.policy": "compact"})

    configs = topic_configs(admin, topic)

    for name, value in {"retention.ms": "3600000", "cleanup.policy": "compact"}.items():
        assert configs[name].value == value
        assert not configs[name].is_default
        assert configs[name].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].value == "1073741824"


def test_describe_configs_of_missing_topic_fails_with_unknown_topic(admin, topic):
    with pytest.raises(KafkaException) as e:
        topic_configs(admin, topic)

    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs_lists_its_settings(admin):
    res = ConfigResource(ResourceType.BROKER, "1")

    configs = admin.describe_configs([res])[res].result(timeout=TIMEOUT_S)

    assert configs["message.max.bytes"].value == "1048588"
    assert configs["num.partitions"].value == "1"


def test_list_topics_reports_cluster_id_controller_and_the_one_broker(admin, broker):
    md = admin.list_topics(timeout=TIMEOUT_S)

    assert md.cluster_id
    assert md.controller_id == 1
    assert list(md.brokers) == [1]
    b = md.brokers[1]
    assert (b.host, b.port) == ("127.0.0.1", broker.port)


def test_describe_cluster_names_the_broker_as_controller(admin, broker):
    cluster = admin.describe_cluster(request_timeout=TIMEOUT_S).result(timeout=TIMEOUT_S)

    assert cluster.cluster_id == admin.list_topics(timeout=TIMEOUT_S).cluster_id
    assert cluster.controller.id == 1
    assert [(n.id, n.host, n.port) for n in cluster.nodes] == [(1, "127.0.0.1", broker.port)]


# ---------------------------------------------------------------------------------------------
# Producer and Consumer

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_round_trips_every_value_in_order(broker, topic, codec):
    values = [f"{codec}-value-{i:04d}".encode() * 4 for i in range(300)]
    p = Producer(producer_config(broker.bootstrap, **{"compression.type": codec, "linger.ms": 50}))

    offsets = delivered_offsets(produce_all(p, topic, values))

    assert offsets == list(range(len(values)))
    got = consume_range(broker.bootstrap, topic, 0, OFFSET_BEGINNING, len(values))
    assert [m.value() for m in got] == values
    assert [m.offset() for m in got] == offsets


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_is_stored_with_that_codec(broker, topic, codec):
    p = Producer(producer_config(broker.bootstrap, **{"compression.type": codec, "linger.ms": 50}))

    produce_all(p, topic, [f"{codec}-value-{i:04d}".encode() * 4 for i in range(300)])

    assert {b["codec"] for b in stored_batches(broker, topic)} == {codec}


def test_keyed_messages_land_on_one_partition_each_and_keep_their_order(admin, broker, topic):
    create(admin, topic, partitions=3)
    p = Producer(producer_config(broker.bootstrap))
    reports = []
    for i in range(60):
        p.produce(topic, key=f"key-{i % 3}", value=f"{i}", on_delivery=lambda e, m: reports.append((e, m)))
    assert p.flush(TIMEOUT_S) == 0
    assert [e for e, _ in reports if e] == []

    by_key = {}
    for _, m in reports:
        by_key.setdefault(m.key(), set()).add(m.partition())
    assert all(len(parts) == 1 for parts in by_key.values()), by_key
    for partition in range(3):
        sent = [m.value() for _, m in reports if m.partition() == partition]
        got = consume_until_eof(broker.bootstrap, topic, partition)
        assert [m.value() for m in got] == sent
        assert [m.offset() for m in got] == list(range(len(sent)))


def test_keys_headers_and_timestamps_round_trip(broker, topic):
    p = Producer(producer_config(broker.bootstrap))
    produce_all(p, topic, [b"v"], key=b"k", headers=[("h1", b"a"), ("h2", None)], timestamp=1_600_000_000_123)

    [m] = consume_range(broker.bootstrap, topic, 0, OFFSET_BEGINNING, 1)

    assert (m.key(), m.value(), m.headers()) == (b"k", b"v", [("h1", b"a"), ("h2", None)])
    assert m.timestamp() == (1, 1_600_000_000_123)  # TIMESTAMP_CREATE_TIME


def test_null_key_and_null_value_round_trip(broker, topic):
    produce_all(Producer(producer_config(broker.bootstrap)), topic, [None])

    [m] = consume_range(broker.bootstrap, topic, 0, OFFSET_BEGINNING, 1)

    assert (m.key(), m.value()) == (None, None)


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_every_acks_setting_delivers_every_message(broker, topic, acks):
    values = [f"acks-{acks}-{i}".encode() for i in range(20)]
    p = Producer(producer_config(broker.bootstrap, acks=acks))

    reports = produce_all(p, topic, values)

    assert [e for e, _ in reports if e] == []
    if acks != "0":  # acks=0 gets no response, so no offsets
        assert [m.offset() for _, m in reports] == list(range(len(values)))
    assert [m.value() for m in consume_range(broker.bootstrap, topic, 0, OFFSET_BEGINNING, len(values))] == values


def test_watermark_offsets_follow_produced_messages(broker, topic):
    c = Consumer(consumer_config(broker.bootstrap))
    try:
        produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"a"])  # creates it
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S, cached=False) == (0, 1)

        produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"b", b"c", b"d"])

        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S, cached=False) == (0, 4)
    finally:
        c.close()


def test_offsets_for_times_finds_first_message_at_or_after_each_timestamp(broker, topic):
    p = Producer(producer_config(broker.bootstrap))
    base = 1_700_000_000_000
    for i in range(10):  # one batch per timestamp: flush between them
        produce_all(p, topic, [f"t{i}".encode()], timestamp=base + 1000 * i)

    c = Consumer(consumer_config(broker.bootstrap))
    try:
        queries = {base - 1: 0, base: 0, base + 2500: 3, base + 9000: 9, base + 9001: -1}
        for ts, expected in queries.items():
            [tp] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=TIMEOUT_S)
            assert tp.error is None
            assert tp.offset == expected, f"timestamp {ts - base:+}: {tp.offset} != {expected}"
    finally:
        c.close()


def test_offsets_for_times_looks_inside_a_compressed_batch(broker, topic):
    p = batching_producer(broker.bootstrap, topic, **{"linger.ms": 200, "compression.type": "gzip"})
    base = 1_700_000_000_000
    for i in range(10):
        p.produce(topic, value=f"t{i}".encode(), partition=0, timestamp=base + 1000 * i)
    assert p.flush(TIMEOUT_S) == 0
    assert len(stored_batches(broker, topic)) == 1, "the ten records should share one batch"

    c = Consumer(consumer_config(broker.bootstrap))
    try:
        [tp] = c.offsets_for_times([TopicPartition(topic, 0, base + 4500)], timeout=TIMEOUT_S)
    finally:
        c.close()

    assert tp.offset == 5


def test_900kb_message_is_produced_and_consumed_whole(broker, topic):
    value = bytes(range(256)) * (900 * 1024 // 256)
    p = Producer(producer_config(broker.bootstrap, **{"message.max.bytes": 1_000_000}))

    reports = produce_all(p, topic, [value])

    assert delivered_offsets(reports) == [0]
    [m] = consume_range(broker.bootstrap, topic, 0, OFFSET_BEGINNING, 1, **{"fetch.message.max.bytes": 1_048_576})
    assert m.value() == value


def test_message_over_broker_max_fails_with_msg_size_too_large_and_uses_no_offset(broker, topic):
    p = Producer(producer_config(broker.bootstrap, **{"message.max.bytes": 3_000_000}))
    produce_all(p, topic, [b"before"])

    [(err, _)] = produce_all(p, topic, [b"x" * 2_000_000])

    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert delivered_offsets(produce_all(p, topic, [b"after"])) == [1]
    assert [m.value() for m in consume_until_eof(broker.bootstrap, topic)] == [b"before", b"after"]


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_seek_into_middle_of_compressed_batch_starts_at_that_offset(broker, topic, codec):
    n = 100
    p = batching_producer(broker.bootstrap, topic, **{"compression.type": codec, "linger.ms": 500})
    produce_all(p, topic, [f"r{i}".encode() for i in range(n)])
    [batch] = stored_batches(broker, topic)
    assert (batch["base_offset"], batch["last_offset"], batch["codec"]) == (0, n - 1, codec)

    got = consume_range(broker.bootstrap, topic, 0, n // 2, n - n // 2)

    assert [m.offset() for m in got] == list(range(n // 2, n))
    assert [m.value() for m in got] == [f"r{i}".encode() for i in range(n // 2, n)]


def test_consumer_at_end_receives_message_produced_while_it_waits(broker, topic):
    produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"old"])
    c = Consumer(consumer_config(broker.bootstrap, **{"fetch.wait.max.ms": 5000}))
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_END)])
        deadline = time.monotonic() + TIMEOUT_S
        parked_until = time.monotonic() + 1.0  # by then a fetch at offset 1 is parked at the broker
        while time.monotonic() < parked_until:
            m = c.poll(0.1)
            assert m is None or m.error(), f"unexpected message at offset {m.offset()}"

        sent_at = time.monotonic()
        produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"new"])
        m = None
        while time.monotonic() < deadline and (m is None or m.error()):
            m = c.poll(0.1)
        latency_s = time.monotonic() - sent_at
    finally:
        c.close()

    assert m is not None and not m.error() and (m.offset(), m.value()) == (1, b"new")
    assert latency_s < 2.0, f"long poll was not woken by the append ({latency_s:.2f}s)"


def test_out_of_range_offset_resets_to_earliest_when_asked(broker, topic):
    produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"a", b"b"])

    got = consume_range(broker.bootstrap, topic, 0, 1000, 2, **{"auto.offset.reset": "earliest"})

    assert [(m.offset(), m.value()) for m in got] == [(0, b"a"), (1, b"b")]


def test_out_of_range_offset_is_reported_when_reset_is_error(broker, topic):
    produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"a"])
    c = Consumer(consumer_config(broker.bootstrap, **{"auto.offset.reset": "error"}))
    try:
        c.assign([TopicPartition(topic, 0, 1000)])
        deadline = time.monotonic() + TIMEOUT_S
        err = None
        while err is None and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                err = m.error()
    finally:
        c.close()

    assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err


def test_failed_acks0_produce_closes_the_connection_and_the_producer_recovers(broker, topic):
    p = Producer(producer_config(broker.bootstrap, acks="0", **{"message.max.bytes": 3_000_000}))
    produce_all(p, topic, [b"before"])

    produce_all(p, topic, [b"x" * 2_000_000])  # acks=0: the client cannot learn it failed...

    # ...but Kafka closes the connection, so the client reconnects (and refreshes metadata).
    assert broker.wait_for_log("acks=0 produce failed")
    time.sleep(0.5)  # let the client see the close: acks=0 sent into a closing socket is lost
    produce_all(p, topic, [b"after"])
    assert [m.value() for m in consume_range(broker.bootstrap, topic, 0, OFFSET_BEGINNING, 2)] == [b"before", b"after"]


def test_one_consumer_reads_several_partitions_through_a_small_fetch_budget(admin, broker, topic):
    create(admin, topic, partitions=3)
    p = Producer(producer_config(broker.bootstrap))
    sent = {part: [f"p{part}-{i}".encode() * 20 for i in range(100)] for part in range(3)}
    for part, values in sent.items():
        produce_all(p, topic, values, partition=part)
    c = Consumer(consumer_config(broker.bootstrap, **{"fetch.max.bytes": 4096, "message.max.bytes": 4096,
                                                       "fetch.message.max.bytes": 1024}))
    got = {0: [], 1: [], 2: []}
    try:
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in range(3)])
        deadline = time.monotonic() + TIMEOUT_S
        while sum(map(len, got.values())) < 300 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got[m.partition()].append((m.offset(), m.value()))
    finally:
        c.close()

    for part, values in sent.items():
        assert got[part] == list(enumerate(values)), f"partition {part}"


def test_admin_list_offsets_answers_earliest_latest_max_timestamp_and_by_timestamp(admin, broker, topic):
    from confluent_kafka.admin import OffsetSpec

    base = 1_700_000_000_000
    p = batching_producer(broker.bootstrap, topic, **{"linger.ms": 200, "compression.type": "zstd"})
    for delta in [1, 5, 3, 2, 4]:  # one batch; the largest timestamp is the second record's
        p.produce(topic, value=b"v", partition=0, timestamp=base + delta)
    assert p.flush(TIMEOUT_S) == 0
    produce_all(p, topic, [b"late-but-older"], timestamp=base + 2)
    tp = TopicPartition(topic, 0)

    def lookup(spec):
        r = admin.list_offsets({tp: spec})[tp].result(timeout=TIMEOUT_S)
        return r.offset, r.timestamp

    assert lookup(OffsetSpec.earliest())[0] == 0
    assert lookup(OffsetSpec.latest())[0] == 6
    assert lookup(OffsetSpec.max_timestamp()) == (1, base + 5)
    assert lookup(OffsetSpec.for_timestamp(base + 3)) == (1, base + 5)
    assert lookup(OffsetSpec.for_timestamp(base + 6))[0] == -1


def test_admin_describe_topics_reports_topic_id_partitions_and_authorized_operations(admin, topic):
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation

    create(admin, topic, partitions=2)

    d = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True)[topic].result(
        timeout=TIMEOUT_S
    )

    assert d.name == topic and not d.is_internal
    assert str(d.topic_id) not in ("", "AAAAAAAAAAAAAAAAAAAAAA")  # not the nil uuid
    assert [(p.id, p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr]) for p in d.partitions] == [
        (0, 1, [1], [1]),
        (1, 1, [1], [1]),
    ]
    assert {AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE} <= set(d.authorized_operations)
