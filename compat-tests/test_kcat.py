"""kcat (librdkafka's command-line client) against Sluice: metadata listing, producing with
keys and headers, consuming with exact formatted output, and topic auto-creation."""

import time

from confluent_kafka.admin import AdminClient, NewTopic

import pytest

from conftest import admin_config, create_topic, kcat, kcat_metadata, stored_batches


def metadata_json(broker, *args) -> dict:
    return kcat_metadata(broker.bootstrap, *args)


def produce_lines(broker, topic: str, lines: list[str], *args: str) -> None:
    kcat(broker.bootstrap, "-P", "-t", topic, *args, input=("\n".join(lines) + "\n").encode())


def test_list_shows_the_broker_as_controller_at_its_listener(broker):
    md = metadata_json(broker)
    assert md["controllerid"] == 1
    assert md["brokers"] == [{"id": 1, "name": broker.bootstrap}]


def test_list_shows_created_topic_with_every_partition_led_by_the_broker(broker, topic):
    admin = AdminClient(admin_config(broker.bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=3)])[topic].result(timeout=10)

    md = metadata_json(broker, "-t", topic)

    [t] = md["topics"]
    assert t["topic"] == topic
    assert "error" not in t
    parts = sorted(t["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == 1
        assert p["replicas"] == [{"id": 1}]
        assert p["isrs"] == [{"id": 1}]


def test_list_of_all_topics_includes_produced_topics(broker, topic):
    produce_lines(broker, topic, ["x"])
    names = {t["topic"] for t in metadata_json(broker)["topics"]}
    assert topic in names


def test_keys_and_headers_round_trip_with_offsets(broker, topic):
    produce_lines(broker, topic, ["k1:v1", "k2:v2", "k3:hello world"], "-K:", "-H", "h1=a", "-H", "h2=b")

    out = kcat(broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%k %s %h %o\n").stdout

    assert out.decode() == "k1 v1 h1=a,h2=b 0\nk2 v2 h1=a,h2=b 1\nk3 hello world h1=a,h2=b 2\n"


def test_consume_from_beginning_exits_at_end_of_partition_with_every_message(broker, topic):
    values = [f"message-{i}" for i in range(50)]
    produce_lines(broker, topic, values)

    out = kcat(broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q").stdout

    assert out.decode().splitlines() == values


def test_consume_from_absolute_and_relative_offsets(broker, topic):
    produce_lines(broker, topic, [f"m{i}" for i in range(10)])

    from_7 = kcat(broker.bootstrap, "-C", "-t", topic, "-o", "7", "-e", "-q", "-f", "%o:%s\n").stdout
    last_2 = kcat(broker.bootstrap, "-C", "-t", topic, "-o", "-2", "-e", "-q", "-f", "%o:%s\n").stdout
    count_3 = kcat(broker.bootstrap, "-C", "-t", topic, "-o", "2", "-c", "3", "-q", "-f", "%o:%s\n").stdout

    assert from_7.decode() == "7:m7\n8:m8\n9:m9\n"
    assert last_2.decode() == "8:m8\n9:m9\n"
    assert count_3.decode() == "2:m2\n3:m3\n4:m4\n"


def test_produce_to_missing_topic_auto_creates_it_with_default_partitions(broker, topic):
    before = {t["topic"] for t in metadata_json(broker)["topics"]}
    assert topic not in before

    produce_lines(broker, topic, ["first"])

    [t] = metadata_json(broker, "-t", topic)["topics"]
    assert "error" not in t
    assert [p["partition"] for p in t["partitions"]] == [0]  # num.partitions defaults to 1
    out = kcat(broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q").stdout
    assert out == b"first\n"


# Debian's kcat 1.7.1 is built on librdkafka 2.0.2, which compresses with gzip, snappy or lz4
# only if the broker's Produce range includes v0 (librdkafka#4956, fixed in 2.11.1). Sluice
# advertises Produce 3..13, as Apache Kafka 4.0 does after KIP-896, so those batches go out
# uncompressed; Kafka 3.x (Produce 0..N) would get them compressed.
OLD_LIBRDKAFKA = (
    "BROKER/CLIENT GAP (README, 'Known broker issues'): librdkafka < 2.11.1 needs Produce v0 "
    "in ApiVersions to use gzip/snappy/lz4; Sluice advertises Produce 3..13 (as Kafka 4.0 does)"
)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_produce_is_consumed_back_in_order(broker, topic, codec):
    values = [f"{codec}-{i}" for i in range(200)]
    produce_lines(broker, topic, values, "-z", codec)

    out = kcat(broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o %s\n").stdout

    assert out.decode() == "".join(f"{i} {v}\n" for i, v in enumerate(values))


@pytest.mark.parametrize(
    "codec",
    [
        pytest.param("gzip", marks=pytest.mark.xfail(strict=True, reason=OLD_LIBRDKAFKA)),
        pytest.param("snappy", marks=pytest.mark.xfail(strict=True, reason=OLD_LIBRDKAFKA)),
        pytest.param("lz4", marks=pytest.mark.xfail(strict=True, reason=OLD_LIBRDKAFKA)),
        "zstd",
    ],
)
def test_compressed_produce_is_stored_with_the_requested_codec(broker, topic, codec):
    # Created first: a produce that auto-creates its topic can send its first record alone, and
    # librdkafka sends a batch uncompressed when compressing would not make it smaller.
    create_topic(broker, topic)
    produce_lines(broker, topic, [f"{codec}-{i}" for i in range(200)], "-z", codec, "-X", "linger.ms=100")

    assert {b["codec"] for b in stored_batches(broker, topic)} == {codec}


def test_query_offset_by_timestamp_finds_first_message_at_or_after_it(broker, topic):
    # kcat cannot set timestamps: produce twice, read the create times back, query them.
    produce_lines(broker, topic, ["a"])
    time.sleep(0.01)
    produce_lines(broker, topic, ["b"])
    out = kcat(broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o %T\n").stdout
    (o0, t0), (o1, t1) = [map(int, line.split()) for line in out.decode().splitlines()]
    assert (o0, o1) == (0, 1) and t1 > t0

    def query(ts: int) -> str:
        return kcat(broker.bootstrap, "-Q", "-t", f"{topic}:0:{ts}").stdout.decode().strip()

    assert query(t0) == f"{topic} [0] offset 0"
    assert query(t0 + 1) == f"{topic} [0] offset 1"
    assert query(t1 + 1) == f"{topic} [0] offset -1"  # nothing that late: end
