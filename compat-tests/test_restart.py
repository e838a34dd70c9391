"""Durability across restarts, and robustness against bad input.

Restarts: every record a confluent-kafka producer saw acknowledged (acks=all) is there after a
clean SIGTERM restart and after a `kill -9` in the middle of a produce stream: once, in order,
at the offset its acknowledgement named, with offsets continuing without a gap afterwards.

Bad input: raw sockets sending garbage, huge or negative size prefixes, unknown APIs or
versions get their own connection closed; real clients on other connections keep working.
"""

import socket
import struct
import time

import pytest
from confluent_kafka import OFFSET_END, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import (
    Broker,
    StreamingProducer,
    admin_config,
    assert_every_ack_is_in_the_log_once_in_order,
    consume_range,
    consumer_config,
    create_topic,
    delivered_offsets,
    kcat,
    log_contents,
    produce_all,
    producer_config,
    watermarks,
)
from kafka_wire import recv_exactly

TIMEOUT_S = 20


def test_acknowledged_records_survive_a_clean_restart(fresh_broker, topic):
    broker = fresh_broker
    create_topic(broker, topic)
    values = [f"clean-{i:05d}".encode() for i in range(3000)]
    reports = produce_all(Producer(producer_config(broker.bootstrap, acks="all", **{"linger.ms": 5})), topic, values)
    assert delivered_offsets(reports) == list(range(len(values)))

    broker.restart()

    assert log_contents(broker, topic) == list(enumerate(values))
    assert watermarks(broker, topic) == (0, len(values))
    after = produce_all(Producer(producer_config(broker.bootstrap, acks="all")), topic, [b"after-restart"])
    assert delivered_offsets(after) == [len(values)]
    assert "panicked" not in broker.all_logs()


def stream_across_an_outage(broker, topic: str, outage, after: int, **producer) -> tuple["StreamingProducer", int]:
    """A producer streaming into a new topic while `outage(broker)` takes the broker down; the
    broker is started again and the same producer carries on for `after` more acks. Returns
    the finished stream and how many records were acknowledged before the outage."""
    create_topic(broker, topic)
    stream = StreamingProducer(broker.bootstrap, topic, **producer)
    stream.start()
    try:
        stream.wait_for_acks(5000)
        outage(broker)
        acked_before = len(stream.acked)
        broker.start()
        stream.wait_for_acks(acked_before + after)
    finally:
        stream.finish()
    return stream, acked_before


def stop_cleanly(broker) -> None:
    assert broker.stop(timeout=5) == 0


def test_acknowledged_records_survive_kill9_mid_stream_and_offsets_continue(fresh_broker, topic):
    broker = fresh_broker
    stream, acked_before_kill = stream_across_an_outage(broker, topic, lambda b: b.kill9(), after=5000)

    log = log_contents(broker, topic)
    assert_every_ack_is_in_the_log_once_in_order(stream.acked, log)
    assert max(o for o, _ in stream.acked) > acked_before_kill, "nothing was acknowledged after the restart"

    # An idle kill -9: the high watermark comes back as the log end, and the next produce
    # lands exactly there.
    broker.kill9()
    broker.start()
    assert watermarks(broker, topic) == (0, len(log))
    after = produce_all(Producer(producer_config(broker.bootstrap, acks="all")), topic, [b"after-kill"])
    assert delivered_offsets(after) == [len(log)]
    assert log_contents(broker, topic) == log + [(len(log), b"after-kill")]


def test_sigterm_during_a_produce_stream_keeps_every_acknowledged_record(fresh_broker, topic):
    broker = fresh_broker
    stream, _ = stream_across_an_outage(broker, topic, stop_cleanly, after=2000)

    assert_every_ack_is_in_the_log_once_in_order(stream.acked, log_contents(broker, topic))


def test_idempotent_producer_writes_every_record_exactly_once_across_kill9(fresh_broker, topic):
    broker = fresh_broker
    stream, _ = stream_across_an_outage(broker, topic, lambda b: b.kill9(), after=5000, idempotent=True)

    log = log_contents(broker, topic)
    assert stream.failed == [], f"{len(stream.failed)} idempotent produces failed"
    assert_every_ack_is_in_the_log_once_in_order(stream.acked, log)
    assert [v for _, v in log] == [f"seq-{n:07d}".encode() for n in range(stream.sent)], "not every record once"


def test_restart_keeps_topics_partitions_and_configs(fresh_broker, topic):
    broker = fresh_broker
    admin = AdminClient(admin_config(broker.bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=3, config={"retention.ms": "123456"})])[topic].result(
        timeout=TIMEOUT_S
    )
    doomed = topic + "-deleted"
    create_topic(broker, doomed)
    admin.delete_topics([doomed])[doomed].result(timeout=TIMEOUT_S)

    broker.kill9()
    broker.start()

    from confluent_kafka.admin import ConfigResource, ResourceType

    admin = AdminClient(admin_config(broker.bootstrap))
    topics = admin.list_topics(timeout=TIMEOUT_S).topics
    assert sorted(topics[topic].partitions) == [0, 1, 2]
    assert doomed not in topics
    res = ConfigResource(ResourceType.TOPIC, topic)
    assert admin.describe_configs([res])[res].result(timeout=TIMEOUT_S)["retention.ms"].value == "123456"


def test_records_across_many_small_segments_survive_kill9_and_read_from_any_offset(tmp_path, topic):
    broker = Broker(tmp_path / "data", {"log.segment.bytes": 16384, "log.index.interval.bytes": 512}).start()
    try:
        create_topic(broker, topic)
        values = [f"seg-{i:05d}-".encode() + b"x" * 100 for i in range(2000)]
        base = 1_700_000_000_000
        p = Producer(producer_config(broker.bootstrap, acks="all", **{"linger.ms": 5, "batch.size": 4096}))
        reports = []
        for i, v in enumerate(values):  # timestamps base, base+10, ...: offset i at base+10*i
            p.produce(topic, value=v, partition=0, timestamp=base + 10 * i,
                      on_delivery=lambda e, m: reports.append((e, m)))
            p.poll(0)
        assert p.flush(TIMEOUT_S) == 0
        assert delivered_offsets(reports) == list(range(len(values)))
        segments = list((broker.data_dir / f"{topic}-0").glob("*.log"))
        assert len(segments) > 10, f"expected many segments, got {len(segments)}"

        broker.kill9()
        broker.start()

        assert log_contents(broker, topic) == list(enumerate(values))
        for start in [0, 1, 999, 1337, 1999]:
            [m] = consume_range(broker.bootstrap, topic, 0, start, 1)
            assert (m.offset(), m.value()) == (start, values[start])
        assert watermarks(broker, topic) == (0, len(values))
        c = Consumer(consumer_config(broker.bootstrap))
        try:  # the time index was rebuilt or reloaded too
            for i in [0, 1, 777, 1334, 1999]:
                [tp] = c.offsets_for_times([TopicPartition(topic, 0, base + 10 * i - 5)], timeout=TIMEOUT_S)
                assert tp.offset == i
        finally:
            c.close()
        broker.assert_healthy()
    finally:
        broker.kill9()


def test_sigterm_exits_promptly_while_a_consumer_long_polls(fresh_broker, topic):
    broker = fresh_broker
    produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"x"])
    c = Consumer(consumer_config(broker.bootstrap, **{"fetch.wait.max.ms": 10000}))
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_END)])
        # Regression: shutdown used to wait for every parked long poll to time out (up to 60 s).
        parked_until = time.monotonic() + 1.0  # a fetch at the end is now parked for 10 s
        while time.monotonic() < parked_until:
            c.poll(0.1)
        started = time.monotonic()

        assert broker.stop(timeout=3) == 0

        assert time.monotonic() - started < 3
    finally:
        c.close()


def test_create_topics_success_means_every_partition_is_writable_and_survives_restart(tmp_path, topic):
    # 256 open files: Kafka keeps ~1 descriptor per segment (indexes are mmapped and closed), so
    # 100 partitions fit; whatever Sluice needs, it must either refuse the topic or serve it.
    broker = Broker(tmp_path / "data", max_open_files=256).start()
    try:
        admin = AdminClient(admin_config(broker.bootstrap))
        refused = None
        try:
            admin.create_topics([NewTopic(topic, num_partitions=100)])[topic].result(timeout=TIMEOUT_S)
        except KafkaException as e:
            refused = e.args[0]
        if refused is None:
            p = Producer(producer_config(broker.bootstrap, **{"message.timeout.ms": 5000}))
            reports = []
            for part in range(100):
                p.produce(topic, value=b"x", partition=part,
                          on_delivery=lambda e, m: reports.append((m.partition(), e)))
            p.flush(10)
            failed = sorted(part for part, e in reports if e is not None)
            assert failed == [], f"created partitions that cannot be written: {failed[:5]}...({len(failed)})"
        else:  # refusing is a fine answer, as long as nothing of the topic is left behind
            assert topic not in admin.list_topics(timeout=TIMEOUT_S).topics, f"refused ({refused}) yet listed"

        broker.restart()
        broker.assert_healthy()
    finally:
        broker.kill9()


# ---------------------------------------------------------------------------------------------
# Bad input


def request_frame(api_key: int, api_version: int, correlation_id: int, body: bytes = b"") -> bytes:
    client_id = b"raw"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def closed_by_broker(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the broker closes the connection (EOF or reset) within `timeout` seconds,
    discarding anything it sends first."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if sock.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def raw_connection(broker) -> socket.socket:
    return socket.create_connection(("127.0.0.1", broker.port), timeout=5)


BAD_INPUTS = {
    "size_prefix_of_2_GiB": struct.pack(">I", 0x7FFFFFFF),
    "size_prefix_just_over_request_max_bytes": struct.pack(">i", 104857600 + 1),
    "negative_size_prefix": struct.pack(">i", -1),
    "frame_too_short_for_a_header": struct.pack(">i", 3) + b"abc",
    "unknown_api_key": request_frame(12345, 0, 1),
    "unsupported_produce_version": request_frame(0, 99, 1, b"\x00" * 40),
    "truncated_metadata_body": request_frame(3, 1, 1, b"\x00\x00\x00\x05\x00"),
    "random_bytes": bytes.fromhex("00000010") + bytes(range(200, 216)),
    "http_request": b"GET / HTTP/1.1\r\nHost: sluice\r\n\r\n",
}


@pytest.mark.parametrize("payload", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_closes_only_that_connection(broker, payload):
    with raw_connection(broker) as sock:
        sock.sendall(payload)
        assert closed_by_broker(sock), "the broker kept a connection that sent bad input open"
    broker.assert_healthy()


def api_versions_v0(broker, version: int = 0) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """(correlation id, error code, {api key: (min, max)}) from a raw ApiVersions request."""
    with raw_connection(broker) as sock:
        sock.sendall(request_frame(18, version, 7))
        size = struct.unpack(">i", recv_exactly(sock, 4))[0]
        body = recv_exactly(sock, size)
    correlation_id, error_code, count = struct.unpack(">ihi", body[:10])
    ranges = [struct.unpack(">hhh", body[10 + 6 * i : 16 + 6 * i]) for i in range(count)]
    return correlation_id, error_code, {key: (lo, hi) for key, lo, hi in ranges}


def test_unsupported_api_versions_version_gets_a_v0_answer_listing_what_is_supported(broker):
    correlation_id, error_code, apis = api_versions_v0(broker, version=99)

    assert (correlation_id, error_code) == (7, 35)  # UNSUPPORTED_VERSION
    assert {0, 1, 2, 3, 18} <= set(apis)


def test_request_for_a_kafka_api_the_broker_does_not_advertise_closes_the_connection(broker):
    _, _, apis = api_versions_v0(broker)
    unserved = min(set(range(0, 75)) - set(apis))  # a real Kafka API key Sluice does not serve

    with raw_connection(broker) as sock:
        sock.sendall(request_frame(unserved, 0, 1, b"\x00" * 40))
        assert closed_by_broker(sock), f"API key {unserved} was not advertised, yet the connection stayed open"


def test_request_for_an_unsupported_version_of_a_served_api_closes_the_connection(broker):
    _, _, apis = api_versions_v0(broker)
    produce_max = apis[0][1]

    with raw_connection(broker) as sock:
        sock.sendall(request_frame(0, produce_max + 1, 1, b"\x00" * 40))
        assert closed_by_broker(sock)


def test_connection_closed_mid_frame_leaves_the_broker_serving(broker, topic):
    with raw_connection(broker) as sock:
        sock.sendall(struct.pack(">i", 50 * 1024 * 1024) + b"\x00" * 1000)  # promises 50 MiB, sends 1 KB
    kcat(broker.bootstrap, "-P", "-t", topic, input=b"still-here\n")
    assert kcat(broker.bootstrap, "-C", "-t", topic, "-e", "-q").stdout == b"still-here\n"


def test_clients_keep_working_while_other_connections_send_garbage(broker, topic):
    create_topic(broker, topic)
    stream = StreamingProducer(broker.bootstrap, topic)
    stream.start()
    try:
        stream.wait_for_acks(100)
        for round_ in range(5):
            for payload in BAD_INPUTS.values():
                with raw_connection(broker) as sock:
                    sock.sendall(payload)
                    assert closed_by_broker(sock)
            kcat(broker.bootstrap, "-P", "-t", topic + "-kcat", input=f"kcat-{round_}\n".encode())
        acked_during_garbage = len(stream.acked)
        stream.wait_for_acks(acked_during_garbage + 100)
    finally:
        stream.finish()

    assert stream.failed == [], f"{len(stream.failed)} produces failed while garbage was sent"
    assert_every_ack_is_in_the_log_once_in_order(stream.acked, log_contents(broker, topic))
    out = kcat(broker.bootstrap, "-C", "-t", topic + "-kcat", "-e", "-q").stdout
    assert out.decode().splitlines() == [f"kcat-{i}" for i in range(5)]
    broker.assert_healthy()
