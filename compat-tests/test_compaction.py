"""Log compaction, DeleteRecords and LogAppendTime as real clients see them (issue 14).

A compacted topic written with 20 rounds over a few hundred keys (the last round deleting some
with tombstones) reads back, once the cleaner ran, as the latest value of each key at the
offset it was written at, through confluent-kafka, kafka-python and Kafka's console consumer;
Kafka's own `kafka-dump-log` reads the cleaned segments (valid CRCs, the kept records, the
indexes sane). Rounds each ended by a `kill -9` while the cleaner runs lose and mix nothing. A
keyless record to a compacted topic is refused with INVALID_RECORD. DeleteRecords through
confluent-kafka's AdminClient moves the log start (the `kafka-delete-records` tool is in
test_kafka_tools.py). A LogAppendTime topic hands out the broker's clock, not the producer's.
`__consumer_offsets` stays small under thousands of commits, and the group's offsets survive a
restart.

The module broker's cleaner looks for work every 100 ms and cleans any dirt at all; every
wait is on a condition with a deadline."""

import re
import time
import urllib.request

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from conftest import (
    Broker,
    admin_config,
    broker_fixture,
    consume_until_eof,
    consumer_config,
    create_topic,
    delivered_offsets,
    produce_all,
    producer_config,
    watermarks,
)
from kafka_tools import run_tool, tool_ok
from test_kafka_tools import check_indexes, consume_console, dump_records

TIMEOUT_S = 30
KEYS = 300
ROUNDS = 20
SEGMENT_MS = 1500


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(
        tmp_path_factory,
        "sluice-compaction",
        {"log.cleaner.backoff.ms": 100, "log.cleaner.min.cleanable.ratio": 0.01,
         "offsets.topic.num.partitions": 1, "offsets.topic.segment.bytes": 16384,
         "group.initial.rebalance.delay.ms": 0},
    )


def metric(broker, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=TIMEOUT_S) as r:
        text = r.read().decode()
    m = re.search(rf"^sluice_{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def wait_for(what: str, done, timeout: float = TIMEOUT_S):
    """Polls `done()` until it returns a truthy value or `timeout` passes; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        if got := done():
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.2)


def log_bytes(broker, topic: str) -> int:
    return sum(f.stat().st_size for f in (broker.data_dir / f"{topic}-0").glob("*.log"))


def produce_keyed(producer, topic: str, pairs: list[tuple[bytes, bytes | None]]) -> list[int]:
    """Produces each (key, value) to partition 0; their offsets once all are acknowledged."""
    reports = []
    for key, value in pairs:
        producer.produce(topic, key=key, value=value, partition=0, on_delivery=lambda e, m: reports.append((e, m)))
        producer.poll(0)
    assert producer.flush(TIMEOUT_S) == 0
    return delivered_offsets(reports)


def write_rounds(broker, topic: str) -> dict[bytes, tuple[int, bytes | None]]:
    """ROUNDS rounds over KEYS keys, every tenth key deleted (a tombstone) in the last round;
    then, once the active segment is older than segment.ms, one record that rolls it, so every
    round lies in segments the cleaner may clean. Returns each key's latest (offset, value)."""
    p = Producer(producer_config(broker.bootstrap, **{"linger.ms": 5, "batch.size": 16384}))
    latest = {}
    for rnd in range(ROUNDS):
        keys = [f"key-{k:03d}".encode() for k in range(KEYS)]
        values = [None if rnd == ROUNDS - 1 and k % 10 == 0 else f"r{rnd:02d}-k{k:03d}-".encode() + b"v" * 40
                  for k in range(KEYS)]
        for key, value, offset in zip(keys, values, produce_keyed(p, topic, list(zip(keys, values)))):
            latest[key] = (offset, value)
    time.sleep(SEGMENT_MS / 1000)  # segment.ms must pass before an append can roll the segment
    [(err, msg)] = produce_all(p, topic, [b"rolled"], key=b"roll")
    assert err is None, err
    latest[b"roll"] = (msg.offset(), b"rolled")
    return latest


def compacted_topic(broker, topic: str, **config) -> dict[bytes, tuple[int, bytes | None]]:
    create_topic(broker, topic, config={"cleanup.policy": "compact", "segment.bytes": 64 * 1024,
                                        "segment.ms": SEGMENT_MS, **config})
    return write_rounds(broker, topic)


def read_back(broker, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    return [(m.offset(), m.key(), m.value()) for m in consume_until_eof(broker.bootstrap, topic, timeout=TIMEOUT_S)]


def expected_log(latest) -> list[tuple[int, bytes, bytes | None]]:
    return sorted((offset, key, value) for key, (offset, value) in latest.items())


def test_a_compacted_topic_reads_back_the_latest_value_per_key_at_its_original_offset(broker, topic):
    latest = compacted_topic(broker, topic)
    written = KEYS * ROUNDS + 1
    expected = expected_log(latest)

    # The tombstones stay (delete.retention.ms is a day): a reader sees each deleted key's delete.
    got = wait_for("the cleaner to leave one record per key", lambda: (r := read_back(broker, topic)) == expected and r)

    assert len(got) == KEYS + 1 and got[-1][0] == written - 1
    assert watermarks(broker, topic) == (0, written), "the log start and end stay where they were"
    # Each record written holds at least 56 bytes of key and value: a tenth of that is left.
    assert log_bytes(broker, topic) < KEYS * ROUNDS * 56 / 10, log_bytes(broker, topic)
    assert metric(broker, "log_cleaner_runs_total") >= 1
    # kafka-python reads the same log, gaps and all.
    kp = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, request_timeout_ms=11000,
                       consumer_timeout_ms=5000, auto_offset_reset="earliest")
    try:
        tp = KpTopicPartition(topic, 0)
        kp.assign([tp])
        kp.seek_to_beginning(tp)
        read = []
        wait_for("kafka-python to read the log", lambda: read.extend(kp.poll(timeout_ms=500).get(tp, [])) or
                 (read and read[-1].offset == written - 1))
        assert [(r.offset, r.key, r.value) for r in read] == expected
    finally:
        kp.close()


def test_kafka_dump_log_reads_the_cleaned_segments(broker, topic):
    latest = compacted_topic(broker, topic)
    expected = expected_log(latest)
    wait_for("the cleaner", lambda: read_back(broker, topic) == expected)

    segments = sorted((broker.data_dir / f"{topic}-0").glob("*.log"))
    _, batches = dump_records(segments, gaps=True)
    dumped = tool_ok("kafka-dump-log", "--print-data-log", "--files", ",".join(map(str, segments))).stdout

    # A tombstone's line has no payload.
    records = [(int(o), k.encode(), v.encode() if v is not None else None)
               for o, k, v in re.findall(r"^\| offset: (\d+) .*? key: (\S+)(?: payload: (.*))?$", dumped, re.M)]
    assert [(o, k, v or None) for o, k, v in records] == expected
    assert batches and all(valid == "true" for *_, valid in batches), batches
    # The batches holding the last round's tombstones carry KIP-534's delete horizon, about a
    # day (delete.retention.ms) past their first cleaning.
    horizons = [int(h) for h in re.findall(r"deleteHorizonMs: OptionalLong\[(\d+)\]", dumped)]
    assert horizons and all(h > time.time() * 1000 + 23 * 3600 * 1000 for h in horizons), horizons
    # Kafka's console consumer reads the same log, a tombstone printed as null.
    lines = consume_console(broker, topic, len(expected), "--from-beginning",
                            formatter=["print.offset=true", "print.key=true"])
    assert lines == [f"Offset:{o}\t{k.decode()}\t{'null' if v is None else v.decode()}" for o, k, v in expected]
    # The cleaned segments, all but the active one (whose indexes are not trimmed yet).
    cleaned = [s.with_suffix("") for s in segments[:-1]]
    assert cleaned, segments
    check_indexes([s.with_suffix(x) for s in cleaned for x in (".index", ".timeindex")])
    assert not list((broker.data_dir / f"{topic}-0").glob("*.cleaned")) + \
        list((broker.data_dir / f"{topic}-0").glob("*.swap")), "no swap files left behind"


def test_tombstones_go_once_delete_retention_passed(broker, topic):
    latest = compacted_topic(broker, topic, **{"delete.retention.ms": 500})
    live = {k: v for k, v in latest.items() if v[1] is not None}
    # A tombstone goes in the first cleaning that starts delete.retention.ms after the cleaning
    # that first kept it (Kafka's rule): more dirt is needed for that second cleaning.
    p = Producer(producer_config(broker.bootstrap))

    def cleaned_of_tombstones():
        produce_all(p, topic, [b"again"] * 50, key=b"dirt")
        return [r for r in read_back(broker, topic) if r[1] != b"dirt"] == expected_log(live)

    wait_for("the tombstones to go", cleaned_of_tombstones)


def test_a_compacted_topic_refuses_a_record_without_key(broker, topic):
    create_topic(broker, topic, config={"cleanup.policy": "compact"})
    p = Producer(producer_config(broker.bootstrap, **{"retries": 0}))

    [(err, _)] = produce_all(p, topic, [b"no key"])
    [(ok, _)] = produce_all(p, topic, [b"keyed"], key=b"k")

    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    assert ok is None
    assert watermarks(broker, topic) == (0, 1)


def test_delete_records_through_the_admin_client_moves_the_log_start(broker, topic):
    create_topic(broker, topic)
    p = Producer(producer_config(broker.bootstrap))
    delivered_offsets(produce_all(p, topic, [f"v{i}".encode() for i in range(10)]))
    admin = AdminClient(admin_config(broker.bootstrap))

    [result] = admin.delete_records([TopicPartition(topic, 0, 4)]).values()
    assert result.result(timeout=TIMEOUT_S).low_watermark == 4

    assert watermarks(broker, topic) == (4, 10)
    assert [m.offset() for m in consume_until_eof(broker.bootstrap, topic)] == list(range(4, 10))
    # Past the end: OFFSET_OUT_OF_RANGE, as Kafka.
    [beyond] = admin.delete_records([TopicPartition(topic, 0, 11)]).values()
    with pytest.raises(KafkaException) as e:
        beyond.result(timeout=TIMEOUT_S)
    assert e.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE


def test_delete_records_on_a_compacted_topic_is_a_policy_violation(broker, topic):
    create_topic(broker, topic, config={"cleanup.policy": "compact"})
    p = Producer(producer_config(broker.bootstrap))
    delivered_offsets(produce_all(p, topic, [b"a", b"b"], key=b"k"))
    admin = AdminClient(admin_config(broker.bootstrap))

    [result] = admin.delete_records([TopicPartition(topic, 0, 1)]).values()
    with pytest.raises(KafkaException) as e:
        result.result(timeout=TIMEOUT_S)

    assert e.value.args[0].code() == KafkaError.POLICY_VIOLATION
    assert watermarks(broker, topic) == (0, 2)


def test_log_append_time_topic_hands_out_the_brokers_clock(broker, topic):
    create_topic(broker, topic, config={"message.timestamp.type": "LogAppendTime"})
    p = Producer(producer_config(broker.bootstrap))
    before = int(time.time() * 1000)
    [(err, msg)] = produce_all(p, topic, [b"stamped"], timestamp=1_000)
    after = int(time.time() * 1000)

    assert err is None
    kind, stamp = msg.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= stamp <= after + 1000, msg.timestamp()
    [m] = consume_until_eof(broker.bootstrap, topic)
    assert m.timestamp() == (TIMESTAMP_LOG_APPEND_TIME, stamp)


def committed(broker, group: str, topic: str) -> int:
    c = Consumer(consumer_config(broker.bootstrap, **{"group.id": group}))
    try:
        [tp] = c.committed([TopicPartition(topic, 0)], timeout=TIMEOUT_S)
        return tp.offset
    finally:
        c.close()


def test_consumer_offsets_stays_small_under_many_commits_and_loads_after_a_restart(broker, topic):
    group = f"group-{topic}"
    create_topic(broker, topic)
    delivered_offsets(produce_all(Producer(producer_config(broker.bootstrap)), topic, [b"x"]))
    commits = 3000
    c = Consumer(consumer_config(broker.bootstrap, **{"group.id": group}))
    try:
        for i in range(commits):
            c.commit(offsets=[TopicPartition(topic, 0, i + 1)], asynchronous=False)
    finally:
        c.close()
    offsets_dir = broker.data_dir / "__consumer_offsets-0"
    # Each commit is a record of over 100 bytes: the log is cleaned down to a few segments
    # (the active one is never cleaned).
    assert sum(f.stat().st_size for f in offsets_dir.glob("*.log")) > 0
    wait_for("__consumer_offsets to be cleaned",
             lambda: sum(f.stat().st_size for f in offsets_dir.glob("*.log")) < 4 * 16384)

    broker.stop()
    broker.start()

    assert committed(broker, group, topic) == commits


def test_kill9_while_the_cleaner_runs_loses_nothing_and_mixes_nothing(tmp_path):
    """Rounds of updates over small segments, each followed by a `kill -9` a few ms in (the
    cleaner, looking every 20 ms, is likely mid-cleaning or mid-swap) and a restart: every
    record read is one that was written at that offset, each key's last record read is its
    latest write, and no temporary swap file is left."""
    b = Broker(tmp_path / "data", {"log.cleaner.backoff.ms": 20, "log.cleaner.min.cleanable.ratio": 0.01}).start()
    try:
        topic = "killed"
        create_topic(b, topic, config={"cleanup.policy": "compact", "segment.bytes": 8192, "segment.ms": 200})
        written, latest = {}, {}
        for rnd in range(6):
            p = Producer(producer_config(b.bootstrap, **{"linger.ms": 2, "acks": "all"}))
            keys = [f"k{k:03d}".encode() for k in range(200)]
            values = [f"r{rnd}-{k.decode()}-".encode() + b"x" * 30 for k in keys]
            for k, v, o in zip(keys, values, produce_keyed(p, topic, list(zip(keys, values)))):
                written[o] = (k, v)
                latest[k] = (o, v)
            time.sleep(0.005 * rnd)  # a different point of the cleaning each round
            b.kill9()
            b.start()
            got = read_back(b, topic)
            assert all(written.get(o) == (k, v) for o, k, v in got), "a record read that was not written there"
            last_read = {k: (o, v) for o, k, v in got}
            assert last_read == latest, f"round {rnd}: a key's latest write is missing or stale"
            part = b.data_dir / f"{topic}-0"
            assert not [f for f in part.iterdir() if f.suffix in (".cleaned", ".swap", ".replaced")], \
                sorted(f.name for f in part.iterdir())
        assert "log cleaned" in b.all_logs()
        b.assert_healthy()
    finally:
        b.kill9()


def read_isolated(broker, topic: str, isolation: str) -> list[tuple[int, bytes, bytes | None]]:
    """Every record to the end of partition 0 for `isolation` (the LSO for read_committed)."""
    return [(m.offset(), m.key(), m.value())
            for m in consume_until_eof(broker.bootstrap, topic, timeout=TIMEOUT_S, **{"isolation.level": isolation})]


def test_transactions_on_a_compacted_topic_leave_the_latest_committed_value_per_key(broker, topic):
    """Two transactional producers write interleaved transactions over overlapping keys, a
    third of them aborted; once the cleaner ran, read_uncommitted and read_committed readers
    both see exactly the latest committed value of each key at its offset, and kafka-dump-log
    finds no aborted record left, but still every marker (delete.retention.ms is a day)."""
    create_topic(broker, topic, config={"cleanup.policy": "compact", "segment.bytes": 16 * 1024,
                                        "segment.ms": SEGMENT_MS})
    producers = {
        name: Producer(producer_config(broker.bootstrap, **{"transactional.id": f"{topic}-{name}", "enable.idempotence": True, "linger.ms": 5}))
        for name in ("a", "b")
    }
    for p in producers.values():
        p.init_transactions(TIMEOUT_S)
    key_ranges = {"a": range(0, 60), "b": range(30, 90)}
    latest, transactions = {}, 0
    for rnd in range(12):
        fates = {"a": rnd % 3 != 2, "b": rnd % 3 != 0}
        written = {}
        for p in producers.values():
            p.begin_transaction()
        # Both transactions are open at once, their batches interleaved in the log.
        for half in (0, 1):
            for name, p in producers.items():
                keys = [k for k in key_ranges[name] if k % 2 == half]
                tag = "kept" if fates[name] else "doomed"
                pairs = [(f"key-{k:03d}".encode(), f"{name}-r{rnd:02d}-{tag}-".encode() + b"v" * 30) for k in keys]
                written.setdefault(name, []).extend(zip(pairs, produce_keyed(p, topic, pairs)))
        for name, p in producers.items():
            if fates[name]:
                p.commit_transaction(TIMEOUT_S)
                for (key, value), offset in written[name]:
                    if key not in latest or latest[key][0] < offset:
                        latest[key] = (offset, value)
            else:
                p.abort_transaction(TIMEOUT_S)
            transactions += 1
    time.sleep(SEGMENT_MS / 1000)  # so the next append rolls the segment: all of it is cleanable
    roller = Producer(producer_config(broker.bootstrap))
    [(err, msg)] = produce_all(roller, topic, [b"rolled"], key=b"roll")
    assert err is None, err
    latest[b"roll"] = (msg.offset(), b"rolled")
    expected = expected_log(latest)

    # Before the cleaning read_uncommitted sees the aborted records too; after it, they are gone.
    wait_for("the cleaner to remove the aborted records",
             lambda: read_isolated(broker, topic, "read_uncommitted") == expected)
    assert read_isolated(broker, topic, "read_committed") == expected

    # The cleaner may still merge segments (a later round regroups the small cleaned ones):
    # dump a listing it has not changed under the tool.
    def dump_settled():
        segments = sorted((broker.data_dir / f"{topic}-0").glob("*.log"))
        r = run_tool("kafka-dump-log", "--print-data-log", "--files", ",".join(map(str, segments)))
        return r.rc == 0 and (segments, r.stdout)

    _, dumped = wait_for("kafka-dump-log over a settled listing", dump_settled)
    assert "doomed" not in dumped
    markers = re.findall(r"endTxnMarker: (COMMIT|ABORT)", dumped)
    assert len(markers) == transactions, markers
    valid = re.findall(r"^baseOffset: .* isvalid: (\w+)$", dumped, re.M)
    assert valid and set(valid) == {"true"}, valid
