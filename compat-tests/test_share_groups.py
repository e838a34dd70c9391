"""Share groups (KIP-932, issue 16) with Apache Kafka's Java KafkaShareConsumer 4.4.0: two
consumers on one partition share its records, each record is delivered once when all are
accepted, a released record comes back with a higher delivery count, and the records a killed
consumer held come back once their acquisition locks run out.

The scenarios are in the Java program (`java/.../ShareScenarios.java`); the broker runs with a
short `group.share.record.lock.duration.ms` so lock expiry is quick to see.
"""

import json
import struct
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import broker_fixture, create_topic
from test_java_client import JAR, JAVA_DIR, JVM_OPTIONS, run_scenario

LOCK_MS = 2000


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-share", {
        "group.initial.rebalance.delay.ms": 0,
        "group.share.record.lock.duration.ms": LOCK_MS,
        # A killed member leaves the group soon (the client heartbeats every second).
        "group.share.session.timeout.ms": 6000,
        "group.share.heartbeat.interval.ms": 1000,
    })


def names(hint: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"share-{hint}-{suffix}", f"share-{hint}-group-{suffix}"


def test_two_share_consumers_on_one_partition_both_receive_and_each_record_once(broker):
    r = run_scenario(broker, "share_two_consumers", count=60)
    assert r["distinct"] == 60
    assert set(r["perConsumer"]) == {"a", "b"}, f"both consumers receive records: {r['perConsumer']}"
    assert sum(r["perConsumer"].values()) == 60, "each record delivered once"
    assert r["deliveredTwice"] == [] and r["redelivered"] == []
    assert r["extraAfterAll"] == 0, "accepted records never come back"
    assert r["membersWhileReading"] == 2


def test_released_record_is_redelivered_with_a_higher_delivery_count(broker):
    r = run_scenario(broker, "share_release")
    assert r["first"] == [{"offset": i, "value": f"v{i}", "deliveryCount": 1} for i in range(5)]
    assert r["second"] == [{"offset": 0, "value": "v0", "deliveryCount": 2}], "only the released record, once"


def start_holder(broker, **params) -> tuple[subprocess.Popen, list]:
    """Runs the `share_hold` scenario until it reports the records it holds (unacknowledged)."""
    cmd = [shutil.which("java"), *JVM_OPTIONS, "-jar", str(JAR), broker.bootstrap, "share_hold", "60",
           *[f"{k}={v}" for k, v in params.items()]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=JAVA_DIR,
                            start_new_session=True)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            msg = json.loads(line)
            if "error" in msg:
                break
            if msg.get("event", {}).get("held"):
                return proc, msg["event"]["held"]
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"share_hold never reported records; stderr:\n{proc.stderr.read()[-3000:]}")


def test_records_of_a_killed_consumer_are_redelivered_after_the_lock_expires(broker):
    topic, group = names("crash")
    holder, held = start_holder(broker, topic=topic, group=group, setup="true", count=20, max=5)
    held_at = time.monotonic()
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait(10)
    assert held and all(h["deliveryCount"] == 1 for h in held)
    r = run_scenario(broker, "share_consume", topic=topic, group=group, count=20)
    got = r["got"]
    by_offset = {}
    for g in got:
        by_offset.setdefault(g["offset"], []).append(g["deliveryCount"])
    assert sorted(by_offset) == list(range(20)), "every record delivered"
    assert all(len(v) == 1 for v in by_offset.values()), f"each once to the survivor: {by_offset}"
    for h in held:
        assert by_offset[h["offset"]] == [2], f"held record {h['offset']} comes back as its second delivery"
    assert time.monotonic() - held_at >= LOCK_MS / 1000, "not before the lock ran out"


def share_groups(broker, *args):
    from kafka_tools import run_tool
    return run_tool("kafka-share-groups", "--bootstrap-server", broker.bootstrap, *args)


def rows(stdout: str, first_column: str) -> list[dict]:
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:1] == [first_column]:
            header = line.split()
            return [dict(zip(header, row.split())) for row in lines[i + 1:] if row.strip()]
    raise AssertionError(f"no table headed {first_column}:\n{stdout}")


def test_kafka_share_groups_list_describe_reset_and_delete(broker):
    """kafka-share-groups: --list, --describe (offsets, members, state) with a member holding
    records, --delete refused while it is there; once it is gone --reset-offsets --to-earliest
    makes every record deliverable again; --delete-offsets and --delete."""
    topic, group = names("tools")
    holder, held = start_holder(broker, topic=topic, group=group, setup="true", count=10, max=10)
    try:
        listed = share_groups(broker, "--list")
        assert listed.rc == 0 and group in listed.lines, listed
        members = share_groups(broker, "--describe", "--group", group, "--members")
        assert members.rc == 0, members
        [m] = rows(members.stdout, "GROUP")
        assert (m["GROUP"], m["ASSIGNMENT"]) == (group, f"{topic}:0"), members
        state = share_groups(broker, "--describe", "--group", group, "--state")
        assert [(r["STATE"], r["#MEMBERS"]) for r in rows(state.stdout, "GROUP")] == [("Stable", "1")], state
        refused = share_groups(broker, "--delete", "--group", group)
        assert "NON_EMPTY_GROUP" in refused.stdout + refused.stderr or "not empty" in (refused.stdout + refused.stderr).lower(), refused
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)
    # The killed member's records come back after their lock; read and accept them all.
    r = run_scenario(broker, "share_consume", topic=topic, group=group, count=10, quietMs=300)
    assert sorted({g["offset"] for g in r["got"]}) == list(range(10))
    described = share_groups(broker, "--describe", "--group", group)
    assert [(x["TOPIC"], x["PARTITION"], x["START-OFFSET"]) for x in rows(described.stdout, "GROUP")] == [(topic, "0", "10")], described
    # The killed member leaves once its session times out; then the group is Empty and may be
    # reset and deleted (Kafka refuses both while it has members).
    deadline = time.monotonic() + 30
    while True:
        state = share_groups(broker, "--describe", "--group", group, "--state")
        if [r["STATE"] for r in rows(state.stdout, "GROUP")] == ["Empty"]:
            break
        assert time.monotonic() < deadline, f"the killed member never timed out: {state}"
        time.sleep(0.5)
    reset = share_groups(broker, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    assert [(x["TOPIC"], x["PARTITION"], x["NEW-OFFSET"]) for x in rows(reset.stdout, "GROUP")] == [(topic, "0", "0")], reset
    again = run_scenario(broker, "share_consume", topic=topic, group=group, count=10, quietMs=300)
    assert sorted(g["offset"] for g in again["got"]) == list(range(10)), "every record once more"
    assert all(g["deliveryCount"] == 1 for g in again["got"]), "a reset starts the records afresh"
    wait_empty = time.monotonic() + 30
    while [r["STATE"] for r in rows(share_groups(broker, "--describe", "--group", group, "--state").stdout, "GROUP")] != ["Empty"]:
        assert time.monotonic() < wait_empty
        time.sleep(0.5)
    deleted_offsets = share_groups(broker, "--delete-offsets", "--group", group, "--topic", topic)
    assert deleted_offsets.rc == 0 and rows(deleted_offsets.stdout, "TOPIC") == [{"TOPIC": topic, "STATUS": "Successful"}], deleted_offsets
    described = share_groups(broker, "--describe", "--group", group)
    assert f"Share group '{group}' has no offset information." in described.stdout, described
    deleted = share_groups(broker, "--delete", "--group", group)
    assert deleted.rc == 0 and f"Deletion of requested share groups ('{group}') was successful." in deleted.stdout, deleted
    assert group not in share_groups(broker, "--list").lines


# ---------------------------------------------------------------------------------------------
# librdkafka 2.16's share consumer (confluent-kafka's ShareConsumer)


def set_earliest(broker, group: str) -> None:
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(timeout=20)


def share_consumer(broker, group: str, topic: str):
    from confluent_kafka import ShareConsumer
    c = ShareConsumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                       "share.acknowledgement.mode": "explicit", "max.poll.records": 5})
    c.subscribe([topic])
    return c


def test_librdkafka_share_consumers_share_a_partition_and_a_released_record_comes_back(broker):
    from confluent_kafka import AcknowledgeType, Producer
    topic, group = names("rdkafka")
    create_topic(broker, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(40):
        p.produce(topic, value=f"v{i}".encode(), partition=0)
    assert p.flush(20) == 0
    set_earliest(broker, group)
    a, b = share_consumer(broker, group, topic), share_consumer(broker, group, topic)
    deliveries, by_consumer, released = {}, {"a": 0, "b": 0}, None
    try:
        deadline = time.monotonic() + 60
        while len([o for o, n in deliveries.items() if n[-1] != "released"]) < 40 or min(by_consumer.values()) == 0:
            assert time.monotonic() < deadline, f"read {len(deliveries)} of 40, by {by_consumer}"
            for name, c in (("a", a), ("b", b)):
                for m in c.poll(0.3):
                    assert m.error() is None, m.error()
                    by_consumer[name] += 1
                    entry = deliveries.setdefault(m.offset(), [])
                    entry.append(m.delivery_count())
                    if released is None and name == "a":
                        released = m.offset()
                        c.acknowledge(m, AcknowledgeType.RELEASE)
                        entry.append("released")
                    else:
                        c.acknowledge(m, AcknowledgeType.ACCEPT)
                c.commit_sync()
    finally:
        a.close()
        b.close()
    assert min(by_consumer.values()) > 0, f"both consumers receive records: {by_consumer}"
    assert sorted(deliveries) == list(range(40))
    for offset, counts in deliveries.items():
        expected = [1, "released", 2] if offset == released else [1]
        assert counts == expected, f"offset {offset}: {counts}"


def test_kafka_console_share_consumer_reads_every_record(broker):
    from confluent_kafka import Producer
    from kafka_tools import run_tool
    topic, group = names("console")
    create_topic(broker, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(5):
        p.produce(topic, value=f"line-{i}".encode(), partition=0)
    assert p.flush(20) == 0
    set_earliest(broker, group)
    r = run_tool("kafka-console-share-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                 "--group", group, "--max-messages", "5", "--timeout-ms", "20000")
    assert r.rc == 0, r
    assert sorted(r.lines) == [f"line-{i}" for i in range(5)], r
    described = share_groups(broker, "--describe", "--group", group)
    assert [x["START-OFFSET"] for x in rows(described.stdout, "GROUP")] == ["5"], "the records were accepted"


def test_accepted_records_stay_accepted_across_a_broker_restart(tmp_path):
    from confluent_kafka import AcknowledgeType, Producer
    from conftest import Broker
    own = Broker(tmp_path / "data", {"group.share.record.lock.duration.ms": LOCK_MS}).start()
    try:
        topic, group = names("restart")
        create_topic(own, topic)
        p = Producer({"bootstrap.servers": own.bootstrap})
        for i in range(10):
            p.produce(topic, value=f"v{i}".encode(), partition=0)
        assert p.flush(20) == 0
        set_earliest(own, group)

        def read(count: int) -> list[int]:
            c = share_consumer(own, group, topic)
            got = []
            try:
                deadline = time.monotonic() + 30
                while len(got) < count and time.monotonic() < deadline:
                    for m in c.poll(0.3):
                        if len(got) < count:
                            got.append(m.offset())
                            c.acknowledge(m, AcknowledgeType.ACCEPT)
                        else:
                            c.acknowledge(m, AcknowledgeType.RELEASE)
                    c.commit_sync()
            finally:
                c.close()
            return got

        first = read(5)
        assert len(first) == 5
        own.restart()
        second = read(5)
        assert sorted(first + second) == list(range(10)), "no accepted record delivered again"
    finally:
        own.kill9()


# ---------------------------------------------------------------------------------------------
# The share coordinator's persister RPCs, on the wire (Kafka's brokers send them to each other)


def _state_request(group: str, topic_id: bytes, partition: int, partition_fields: bytes) -> bytes:
    from kafka_wire import TAGS, compact_array, compact_string, i32
    p = i32(partition) + partition_fields + TAGS
    return compact_string(group) + compact_array([topic_id + compact_array([p]) + TAGS]) + TAGS


def _first_partition(r):
    """results[0].partitions[0] of a share-state response, its fields left to read."""
    n_topics = r.uvarint() - 1
    assert n_topics == 1
    r.take(16)
    assert r.uvarint() - 1 == 1
    return r


def test_share_state_rpcs_write_read_and_delete(broker):
    """WriteShareGroupState then ReadShareGroupState and ReadShareGroupStateSummary of a
    share-partition, then DeleteShareGroupState: what Kafka's brokers send their share
    coordinator, served by Sluice's from `__share_group_state`."""
    import kafka_wire as w
    group, topic_id = f"rpc-{uuid.uuid4().hex[:8]}", uuid.uuid4().bytes
    # FindCoordinator(SHARE) creates __share_group_state, as Kafka's does.
    find = w.call(broker.port, 10, 4, w.i8(2) + w.compact_array([w.compact_string(f"{group}:x:0")]) + w.TAGS)
    find.int32()
    [coordinator] = find.array(lambda r: (r.string(), r.int32(), r.string(), r.int32(), r.int16(), r.string(), r.tags()))
    assert coordinator[4] == 0, coordinator

    batch = struct.pack(">qqbh", 10, 12, 2, 1) + w.TAGS  # offsets 10-12 acknowledged, delivered once
    write_fields = struct.pack(">iiq", 3, 0, 10) + w.compact_array([batch])  # state epoch, leader epoch, start
    deadline = time.monotonic() + 20
    while True:  # the new topic's shard loads a moment after it is created
        r = _first_partition(w.call(broker.port, 85, 0, _state_request(group, topic_id, 0, write_fields)))
        partition, code = r.int32(), r.int16()
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (partition, code) == (0, 0)

    r = _first_partition(w.call(broker.port, 84, 0, _state_request(group, topic_id, 0, w.i32(0))))
    assert (r.int32(), r.int16(), r.string(), r.int32(), r.int64()) == (0, 0, None, 3, 10)
    assert r.array(lambda x: (x.int64(), x.int64(), x.int8(), x.int16(), x.tags())[:4]) == [(10, 12, 2, 1)]

    r = _first_partition(w.call(broker.port, 87, 0, _state_request(group, topic_id, 0, w.i32(0))))
    assert (r.int32(), r.int16(), r.string(), r.int32(), r.int32(), r.int64()) == (0, 0, None, 3, 0, 10)

    r = _first_partition(w.call(broker.port, 86, 0, _state_request(group, topic_id, 0, b"")))
    assert (r.int32(), r.int16()) == (0, 0)
    r = _first_partition(w.call(broker.port, 84, 0, _state_request(group, topic_id, 0, w.i32(0))))
    assert (r.int32(), r.int16(), r.string(), r.int32(), r.int64()) == (0, 0, None, 0, -1), "deleted: no state"
