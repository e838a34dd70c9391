"""KIP-848 consumer groups (`group.protocol=consumer`) with librdkafka (confluent-kafka 2.16):
the server-side assignment spread over the members, a member leaving and its partitions going
to the others, every record read once, a regex subscription that picks up a new topic, and the
admin views (ListGroups by type, ConsumerGroupDescribe, `kafka-consumer-groups --describe`).

The broker heartbeats members every second (`group.consumer.heartbeat.interval.ms`) so that a
reassignment takes a few heartbeats, not a few times five seconds.
"""

import re
import time
import uuid

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from conftest import Broker, admin_config, broker_fixture, create_topic, producer_config
from kafka_tools import tool_ok

TIMEOUT_S = 30
SETTINGS = {"group.consumer.heartbeat.interval.ms": 1000}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-consumer-protocol", SETTINGS)


@pytest.fixture
def group(request) -> str:
    return f"g848-{request.node.name[:50]}-{uuid.uuid4().hex[:8]}"


def new_topic(broker, partitions: int, prefix: str = "t848") -> str:
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic, partitions)
    return topic


def consumer(broker, group: str, **extra) -> Consumer:
    return Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
        "log.connection.close": False,
        **extra,
    })


def produce(broker, topic: str, partitions: int, per_partition: int, tag: str) -> set:
    p = Producer(producer_config(broker.bootstrap))
    sent = set()
    for part in range(partitions):
        for i in range(per_partition):
            value = f"{tag}-{part}-{i}"
            p.produce(topic, value.encode(), partition=part)
            sent.add(value)
    assert p.flush(20) == 0
    return sent


def assignments(consumers) -> list:
    return [sorted(tp.partition for tp in c.assignment()) for c in consumers]


def poll_until(consumers, cond, what: str, got: dict | None = None, timeout: float = TIMEOUT_S):
    """Polls every consumer in turn (recording what they read in `got`: consumer index → values)
    until `cond()` holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, c in enumerate(consumers):
            m = c.poll(0.05)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                continue
            if got is not None:
                got.setdefault(i, []).append(m.value().decode())
        if cond():
            return
    raise AssertionError(f"timed out waiting for {what}: assignments {assignments(consumers)}")


def read_all(consumers, expected: set, got: dict):
    def everything():
        return sum(len(v) for v in got.values()) >= len(expected)
    poll_until(consumers, everything, f"{len(expected)} records", got)
    read = [v for vs in got.values() for v in vs]
    assert sorted(read) == sorted(expected), "every record read exactly once by the group"


def test_three_members_get_two_partitions_each_and_share_a_leavers(broker, group):
    topic = new_topic(broker, 6)
    members = [consumer(broker, group) for _ in range(3)]
    try:
        for c in members:
            c.subscribe([topic])
        # Records come once the group is settled: partitions that moved while members joined
        # would otherwise be read again from the start, as nobody had committed yet.
        poll_until(members, lambda: sorted(map(len, assignments(members))) == [2, 2, 2], "2/2/2")
        everyone = sorted(p for a in assignments(members) for p in a)
        assert everyone == list(range(6)), "each partition to exactly one member"
        first = produce(broker, topic, 6, 10, "first")
        got = {}
        read_all(members, first, got)
        for c in members:
            c.commit(asynchronous=False)

        described = groups_tool(broker, group, "--describe", "--members")
        rows = [line.split() for line in described.lines if line.startswith(group)]
        assert len(rows) == 3, described
        assert sorted(int(r[-1]) for r in rows) == [2, 2, 2], described

        leaver = members.pop()
        leaver.close()
        poll_until(members, lambda: sorted(map(len, assignments(members))) == [3, 3], "3/3 after one left")
        assert sorted(p for a in assignments(members) for p in a) == list(range(6))
        second = produce(broker, topic, 6, 10, "second")
        got = {}
        read_all(members, second, got)
    finally:
        for c in members:
            c.close()


def test_regex_subscription_picks_up_a_new_topic(broker, group):
    prefix = f"rx{uuid.uuid4().hex[:6]}"
    a = new_topic(broker, 2, prefix)
    c = consumer(broker, group)
    try:
        c.subscribe([f"^{prefix}-.*"])
        topics = lambda: {tp.topic for tp in c.assignment()}  # noqa: E731
        poll_until([c], lambda: topics() == {a}, "the regex's first topic")
        b = new_topic(broker, 2, prefix)
        poll_until([c], lambda: topics() == {a, b}, "the topic created after subscribing")
        got = {}
        expected = produce(broker, b, 2, 5, "rx")
        read_all([c], expected, got)
    finally:
        c.close()


def test_admin_lists_consumer_groups_by_type_and_describes_them(broker, group):
    topic = new_topic(broker, 4)
    members = [consumer(broker, group, **{"group.remote.assignor": "range"}) for _ in range(2)]
    admin = AdminClient(admin_config(broker.bootstrap))
    try:
        for c in members:
            c.subscribe([topic])
        poll_until(members, lambda: sorted(map(len, assignments(members))) == [2, 2], "2/2")
        listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(20)
        assert group in [g.group_id for g in listed.valid]
        classic = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(20)
        assert group not in [g.group_id for g in classic.valid]
        d = admin.describe_consumer_groups([group])[group].result(20)
        assert d.type == ConsumerGroupType.CONSUMER
        assert d.partition_assignor == "range"
        assert len(d.members) == 2
        owned = sorted(tp.partition for m in d.members for tp in m.assignment.topic_partitions)
        assert owned == [0, 1, 2, 3]
    finally:
        for c in members:
            c.close()
    r = groups_tool(broker, group, "--describe", "--state")
    assert re.search(rf"^{re.escape(group)}\s+.*\s+Empty\s+0\s*$", r.stdout, re.M), r


def groups_tool(broker, group: str, *args):
    return tool_ok("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--group", group, *args)


def test_a_broker_kill9_mid_group_resumes_the_members_without_a_rebalance(tmp_path):
    """The group's state is in __consumer_offsets: after kill -9 and a restart the members go on
    heartbeating at their epochs (no new group epoch) and read what is produced next, once."""
    own = Broker(tmp_path / "data", SETTINGS)
    members = []
    try:
        own.start()
        topic = new_topic(own, 4)
        group = f"g848-restart-{uuid.uuid4().hex[:8]}"
        members = [consumer(own, group) for _ in range(2)]
        for c in members:
            c.subscribe([topic])
        poll_until(members, lambda: sorted(map(len, assignments(members))) == [2, 2], "2/2")
        before = assignments(members)
        own.kill9()
        own.start()
        expected = produce(own, topic, 4, 10, "after-restart")
        got = {}
        read_all(members, expected, got)
        assert assignments(members) == before, "nobody lost or gained a partition"
        assert "bumped consumer group epoch" not in own.log_text(), "no rebalance after the restart"
    finally:
        for c in members:
            c.close()
        own.kill9()
