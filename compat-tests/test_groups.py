"""Consumer groups with real clients: the classic rebalance protocol (eager and cooperative),
committed offsets, static membership, session timeouts, and the admin views of groups.

Group members that a test kills run as their own processes (`group_member.py`); the others
are in-process consumers. The brokers here start with `group.initial.rebalance.delay.ms=0`
so the first rebalance of a group does not wait 3 s for more members.
"""

import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from conftest import Broker, admin_config, broker_fixture, create_topic, poll_messages, producer_config

TIMEOUT_S = 20
SESSION_TIMEOUT_MS = 6000  # the broker's group.min.session.timeout.ms
HEARTBEAT_MS = 500
MEMBER_SCRIPT = Path(__file__).with_name("group_member.py")
GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": 0, "group.max.session.timeout.ms": 60000}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-groups", GROUP_SETTINGS)


@pytest.fixture
def fresh_broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-groups-own", GROUP_SETTINGS)


@pytest.fixture
def group(request) -> str:
    return f"g-{request.node.name[:60]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin(broker):
    return AdminClient(admin_config(broker.bootstrap))


def produce_values(broker, topic: str, values_by_partition: dict[int, list[str]]) -> None:
    """Produces each partition's values (acks=all) and waits until every one is acknowledged."""
    p = Producer(producer_config(broker.bootstrap, acks="all", **{"linger.ms": 5}))
    failed = []
    for partition, values in values_by_partition.items():
        for v in values:
            p.produce(topic, value=v.encode(), partition=partition, on_delivery=lambda e, m: e and failed.append(e))
        p.poll(0)
    assert p.flush(TIMEOUT_S) == 0 and not failed, f"produce failed: {failed[:3]}"


def spread(prefix: str, partitions: int, per_partition: int) -> dict[int, list[str]]:
    return {p: [f"{prefix}-p{p}-{i:05d}" for i in range(per_partition)] for p in range(partitions)}


def wait_until(condition, timeout: float = TIMEOUT_S, what: str = "condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def group_consumer(broker, group: str, **extra) -> Consumer:
    """An in-process confluent-kafka group member (subscribe() it yourself)."""
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
            "socket.timeout.ms": 10000,
            "log.connection.close": False,
            **extra,
        }
    )


def poll_values(consumer: Consumer, count: int, timeout: float = TIMEOUT_S) -> list:
    """The next `count` records (as messages) from a subscribed or assigned consumer."""
    return poll_messages(consumer, count, timeout)


def poll_until_assigned(consumer: Consumer, timeout: float = TIMEOUT_S) -> list:
    def assigned():
        consumer.poll(0.1)
        return consumer.assignment()

    return wait_until(assigned, timeout, "an assignment")


def committed_offsets(admin, group: str) -> dict[tuple[str, int], int]:
    request = ConsumerGroupTopicPartitions(group)
    result = admin.list_consumer_group_offsets([request])[group].result(timeout=TIMEOUT_S)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


# ---------------------------------------------------------------------------------------------
# Group members as processes


class Member:
    """A `group_member.py` process; its JSON events are collected by a reader thread."""

    def __init__(self, broker, group: str, topics: list[str], name: str, log_dir: Path, config: dict | None = None,
                 commit_every: int = 1, process_ms: int = 0):
        self.name = name
        settings = {"bootstrap": broker.bootstrap, "group": group, "topics": topics, "config": config or {},
                    "commit_every": commit_every, "process_ms": process_ms}
        self.stderr_path = log_dir / f"member-{name}.log"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(MEMBER_SCRIPT), json.dumps(settings)],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        self.events: list[dict] = []
        self.killed_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def of(self, ev: str) -> list[dict]:
        return [e for e in list(self.events) if e["ev"] == ev]

    @property
    def assignment(self) -> set[int]:
        changes = [e for e in list(self.events) if e["ev"] in ("assigned", "revoked", "lost")]
        return set(changes[-1]["all"]) if changes else set()

    def records(self) -> list[tuple[int, int, str]]:
        return [(e["p"], e["o"], e["v"]) for e in self.of("rec")]

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.killed_at = time.monotonic()

    def stop(self, timeout: float = 15):
        """SIGTERM: the member closes its consumer (leaving the group) and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError(f"member {self.name} did not close within {timeout}s")
        self._reader.join(5)
        assert self.of("closed"), f"member {self.name} exited without closing: {self.events[-3:]}"

    def assert_no_errors(self):
        errors = self.of("error") + self.of("commit_failed")
        assert not errors, f"member {self.name}: {errors[:3]}"


@pytest.fixture
def members(broker, tmp_path):
    """A factory of member processes, all killed at teardown."""
    started: list[Member] = []

    def start(group: str, topics: list[str], name: str, commit_every: int = 1, process_ms: int = 0,
              **config) -> Member:
        settings = {
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
            **{k.replace("_", "."): v for k, v in config.items()},
        }
        m = Member(broker, group, topics, name, tmp_path, settings, commit_every, process_ms)
        started.append(m)
        return m

    yield start
    for m in started:
        if m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait(timeout=10)


def partitioned_exactly_once(group: list[Member], partitions: int) -> bool:
    """Every partition owned by exactly one of `group` (their latest assignments), and every
    member owning some."""
    owned = [p for m in group for p in m.assignment]
    return sorted(owned) == list(range(partitions)) and all(m.assignment for m in group)


def assert_no_partition_owned_twice_at_once(group: list[Member]) -> None:
    """From the members' assign/revoke callbacks (one monotonic clock for all processes): no
    partition is ever owned by two live members at the same time. A killed member owns
    nothing after it was killed."""
    intervals: dict[int, list[tuple[float, float, str]]] = {}
    for m in group:
        owned_since: dict[int, float] = {}
        for e in list(m.events):
            if e["ev"] == "assigned":
                for p in e["parts"]:
                    owned_since[p] = e["t"]
            elif e["ev"] in ("revoked", "lost"):
                for p in e["parts"]:
                    intervals.setdefault(p, []).append((owned_since.pop(p), e["t"], m.name))
        end = m.killed_at or time.monotonic()
        for p, since in owned_since.items():
            intervals.setdefault(p, []).append((since, end, m.name))
    for p, spans in intervals.items():
        spans.sort()
        for (s1, e1, n1), (s2, e2, n2) in zip(spans, spans[1:]):
            assert s2 >= e1, f"partition {p} owned by {n1} until {e1:.3f} and by {n2} from {s2:.3f}"


# ---------------------------------------------------------------------------------------------
# Rebalancing, failover and at-least-once delivery


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_three_members_share_six_partitions_and_survivors_take_over_a_killed_member(
    broker, admin, members, topic, group, strategy
):
    """Members commit after processing: every 10 records, when caught up, and before giving
    partitions up. Then no record is lost, and the only records processed twice are ones the
    killed member processed after the last acknowledged commit of their partition: the
    survivors resume each of its partitions at an offset between that commit and one past the
    last record the killed member processed. No partition is owned by two live members at once."""
    partitions = 6
    create_topic(broker, topic, partitions)
    first = spread("a", partitions, 100)
    produce_values(broker, topic, first)

    group_members = [  # the first one, to be killed, is slow: it will be killed in the middle of its records
        members(group, [topic], f"m{i}", commit_every=10, process_ms=5 if i == 0 else 0,
                partition_assignment_strategy=strategy)
        for i in range(3)
    ]
    wait_until(lambda: partitioned_exactly_once(group_members, partitions), what="all six partitions assigned once")
    consumed = lambda: {v for m in group_members for _, _, v in m.records()}  # noqa: E731
    wait_until(lambda: consumed() >= {v for vs in first.values() for v in vs}, what="the first records consumed")
    assert [len(m.assignment) for m in group_members] == [2, 2, 2], [sorted(m.assignment) for m in group_members]

    victim, survivors = group_members[0], group_members[1:]
    victim_parts = set(victim.assignment)
    second = spread("b", partitions, 200)
    produce_values(broker, topic, second)
    wait_until(lambda: sum(v.startswith("b-") for _, _, v in victim.records()) >= 25, what="the victim to read on")
    victim.kill9()

    wait_until(lambda: partitioned_exactly_once(survivors, partitions), timeout=SESSION_TIMEOUT_MS / 1000 + 10,
               what="the survivors to own all six partitions")
    takeover_s = time.monotonic() - victim.killed_at
    third = spread("c", partitions, 50)
    produce_values(broker, topic, third)
    everything = {v for batch in (first, second, third) for vs in batch.values() for v in vs}
    wait_until(lambda: consumed() >= everything, what="every record consumed")
    ends = {(topic, p): len(first[p]) + len(second[p]) + len(third[p]) for p in range(partitions)}
    wait_until(lambda: committed_offsets(admin, group) == ends, what="the group's commits to reach the log ends")

    for m in survivors:
        m.assert_no_errors()
    assert_no_partition_owned_twice_at_once(group_members)
    # Kafka: the dead member is removed a session timeout after its last heartbeat; the others
    # learn of the rebalance from their next heartbeat.
    session_s, heartbeat_s = SESSION_TIMEOUT_MS / 1000, HEARTBEAT_MS / 1000
    assert session_s - heartbeat_s - 0.5 <= takeover_s <= session_s + 3, f"taken over after {takeover_s:.1f}s"
    assert consumed() == everything  # nothing foreign

    readers: dict[tuple[int, int], list[str]] = {}
    for m in group_members:
        for p, o, v in m.records():
            readers.setdefault((p, o), []).append(m.name)
            assert v == (first[p] + second[p] + third[p])[o], f"{p}@{o} read as {v}"
    committed_before_kill = {
        p: max((e["o"] for m in group_members for e in m.of("committed") if e["p"] == p and e["t"] < victim.killed_at),
               default=0)
        for p in range(partitions)
    }
    twice = {po: names for po, names in readers.items() if len(names) > 1}
    for (p, o), names in twice.items():
        assert len(names) == 2 and names.count(victim.name) == 1, f"{p}@{o} read by {names}"
        assert p in victim_parts and o >= committed_before_kill[p], (
            f"{p}@{o} read by {names} although offset {committed_before_kill[p]} was committed before the kill")
    for p in victim_parts:
        last_read = max((o for vp, o, _ in victim.records() if vp == p), default=-1)
        resumed = min(e["o"] for m in survivors for e in m.of("rec") if e["p"] == p and e["t"] > victim.killed_at)
        low, high = committed_before_kill[p], max(committed_before_kill[p], last_read + 1)
        assert low <= resumed <= high, f"partition {p}: resumed at {resumed}, not in {low}..{high}"
    for m in survivors:
        m.stop()


def test_committed_offsets_are_where_the_next_member_starts_also_after_a_broker_kill9(fresh_broker, topic, group):
    broker = fresh_broker
    create_topic(broker, topic, 2)
    values = spread("r", 2, 100)
    produce_values(broker, topic, values)

    c = group_consumer(broker, group)
    c.subscribe([topic])
    got = poll_values(c, 60)
    c.commit(asynchronous=False)  # the position of each partition it read from
    tps = [TopicPartition(topic, p) for p in range(2)]
    positions = {tp.partition: tp.offset for tp in c.position(tps) if tp.offset >= 0}
    assert {tp.partition: tp.offset for tp in c.committed(tps, timeout=TIMEOUT_S) if tp.offset >= 0} == positions
    c.close()

    c = group_consumer(broker, group)
    c.subscribe([topic])
    starts = {}
    for m in poll_values(c, 200 - len(got)):
        starts.setdefault(m.partition(), m.offset())
        assert m.value().decode() == values[m.partition()][m.offset()]
    expected = {p: positions.get(p, 0) for p in range(2) if positions.get(p, 0) < 100}
    assert starts == expected, "did not resume at the committed offsets"
    c.commit(offsets=[TopicPartition(topic, 0, 70), TopicPartition(topic, 1, 30)], asynchronous=False)
    c.close()

    broker.kill9()
    broker.start()

    c = group_consumer(broker, group)
    try:
        c.subscribe([topic])
        resumed = poll_values(c, 30 + 70)
        starts = {}
        for m in resumed:
            starts.setdefault(m.partition(), m.offset())
        assert starts == {0: 70, 1: 30}
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=TIMEOUT_S)
        assert [(tp.partition, tp.offset) for tp in committed] == [(0, 70), (1, 30)]
    finally:
        c.close()


def test_a_live_member_carries_on_across_a_broker_kill9(fresh_broker, topic, group):
    broker = fresh_broker
    create_topic(broker, topic, 2)
    produce_values(broker, topic, spread("before", 2, 50))
    c = group_consumer(broker, group, **{"reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    try:
        c.subscribe([topic])
        assert len(poll_values(c, 100)) == 100
        c.commit(asynchronous=False)

        broker.kill9()
        broker.start()
        after = spread("after", 2, 50)
        produce_values(broker, topic, after)

        got = poll_values(c, 100, timeout=30)
        assert sorted(m.value().decode() for m in got) == sorted(after[0] + after[1]), "lost or re-read records"
        wait_until(lambda: commit_quietly(c), what="a commit after the restart")
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=TIMEOUT_S)
        assert [(tp.partition, tp.offset) for tp in committed] == [(0, 100), (1, 100)]
    finally:
        c.close()


def commit_quietly(consumer: Consumer) -> bool:
    """True once a synchronous commit succeeds (a coordinator just restarted may refuse one)."""
    try:
        consumer.commit(asynchronous=False)
        return True
    except KafkaException as e:
        if e.args[0].code() == KafkaError._NO_OFFSET:
            return True
        consumer.poll(0.2)
        return False


def test_a_member_over_group_max_size_is_refused_with_group_max_size_reached(tmp_path_factory, topic, group):
    broker = Broker(tmp_path_factory.mktemp("sluice-max-size") / "data", {**GROUP_SETTINGS, "group.max.size": 2})
    broker.start()
    consumers = []
    try:
        create_topic(broker, topic, 4)
        for _ in range(2):
            c = group_consumer(broker, group)
            c.subscribe([topic])
            consumers.append(c)
        wait_until(lambda: [c.poll(0.05) for c in consumers] and all(c.assignment() for c in consumers),
                   what="two members assigned")
        third = group_consumer(broker, group)
        consumers.append(third)
        third.subscribe([topic])
        errors = []

        def refused():
            for c in consumers:
                m = c.poll(0.05)
                if c is third and m is not None and m.error():
                    errors.append(m.error())
            return any(e.code() == KafkaError.GROUP_MAX_SIZE_REACHED for e in errors)

        wait_until(refused, what=f"GROUP_MAX_SIZE_REACHED (errors so far: {errors})")
        assert third.assignment() == []
        assert sorted(tp.partition for c in consumers[:2] for tp in c.assignment()) == [0, 1, 2, 3]
        broker.assert_healthy()
    finally:
        for c in consumers:
            c.close()
        broker.kill9()


def test_two_groups_on_one_topic_each_read_everything_and_keep_their_own_offsets(broker, admin, topic, group):
    create_topic(broker, topic, 3)
    values = spread("two", 3, 100)
    produce_values(broker, topic, values)
    everything = sorted(v for vs in values.values() for v in vs)

    readers = {}
    for name in ("A", "B"):
        c = group_consumer(broker, group + name)
        c.subscribe([topic])
        readers[name] = c
    try:
        for name, c in readers.items():
            got = poll_values(c, len(everything))
            assert sorted(m.value().decode() for m in got) == everything, name
            c.commit(asynchronous=False)
        produce_values(broker, topic, {0: ["late"]})
        [late] = poll_values(readers["A"], 1)
        assert late.value() == b"late"
        readers["A"].commit(asynchronous=False)
    finally:
        for c in readers.values():
            c.close()

    assert committed_offsets(admin, group + "A") == {(topic, 0): 101, (topic, 1): 100, (topic, 2): 100}
    assert committed_offsets(admin, group + "B") == {(topic, 0): 100, (topic, 1): 100, (topic, 2): 100}


# ---------------------------------------------------------------------------------------------
# Static membership


def group_log(broker, group: str, message: str) -> list[str]:
    """The broker's log lines with `message` about `group`."""
    return [line for line in broker.all_logs().splitlines() if message in line and f"group={group} " in line + " "]


def join_generations(member: Member) -> list[int]:
    """GenerationIds of the JoinGroup responses in a member's librdkafka `cgrp` debug log."""
    return [int(g) for g in re.findall(r"JoinGroup response: GenerationId (-?\d+)", member.log())]


@pytest.mark.parametrize("how", ["close", "kill9"])
def test_static_member_that_restarts_quickly_gets_its_partitions_back_without_a_rebalance(
    broker, members, topic, group, how
):
    create_topic(broker, topic, 4)
    static_cfg = {"group_instance_id": "static-1", "debug": "cgrp", "session_timeout_ms": 10000}
    static = members(group, [topic], "static", **static_cfg)
    other = members(group, [topic], "other", debug="cgrp")
    wait_until(lambda: partitioned_exactly_once([static, other], 4), what="both members assigned")
    wait_until(lambda: group_log(broker, group, "group is stable") and join_generations(static), what="a stable group")
    time.sleep(1)  # settle: no rebalance under way
    generation = join_generations(static)[-1]
    before = static.assignment
    other_events = len(other.events)
    rebalances_before = group_log(broker, group, "preparing to rebalance")

    if how == "close":
        static.stop()
    else:
        static.kill9()
    again = members(group, [topic], "static-again", **static_cfg)
    wait_until(lambda: again.assignment, what="the restarted static member's assignment")
    produce_values(broker, topic, {p: [f"after-{p}"] for p in range(4)})
    wait_until(lambda: len(again.records()) + len(other.records()) >= 4, what="the new records consumed")

    assert again.assignment == before
    assert join_generations(again) == [generation], "the static member's rejoin started a new generation"
    changes = [e for e in other.events[other_events:] if e["ev"] in ("assigned", "revoked", "lost")]
    assert changes == [], f"the other member saw a rebalance: {changes}"
    assert group_log(broker, group, "preparing to rebalance") == rebalances_before


# ---------------------------------------------------------------------------------------------
# Session timeout bounds


@pytest.mark.parametrize("session_timeout_ms", [1000, 120000], ids=["below_min", "above_max"])
def test_session_timeout_outside_the_broker_bounds_fails_with_invalid_session_timeout(
    broker, topic, group, session_timeout_ms
):
    create_topic(broker, topic)
    c = group_consumer(broker, group, **{"session.timeout.ms": session_timeout_ms, "heartbeat.interval.ms": 300})
    try:
        c.subscribe([topic])
        errors = []

        def failed():
            m = c.poll(0.1)
            if m is not None and m.error():
                errors.append(m.error())
            return any(e.code() == KafkaError.INVALID_SESSION_TIMEOUT for e in errors)

        wait_until(failed, 10, "INVALID_SESSION_TIMEOUT")
        assert c.assignment() == []
    finally:
        c.close()


def test_kafka_python_session_timeout_below_min_raises_invalid_session_timeout(broker, topic, group):
    from kafka import KafkaConsumer
    from kafka.errors import InvalidSessionTimeoutError

    create_topic(broker, topic)
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, session_timeout_ms=1000,
                      heartbeat_interval_ms=300, request_timeout_ms=11000)
    try:
        with pytest.raises(InvalidSessionTimeoutError):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                c.poll(timeout_ms=200)
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# kafka-python group member with auto-commit, and its admin views


def test_kafka_python_auto_commit_group_and_admin_views(broker, topic, group):
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition

    create_topic(broker, topic, 2)
    values = spread("kp", 2, 50)
    produce_values(broker, topic, values)
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=True,
                      auto_commit_interval_ms=100, auto_offset_reset="earliest", session_timeout_ms=SESSION_TIMEOUT_MS,
                      heartbeat_interval_ms=HEARTBEAT_MS, fetch_max_wait_ms=100, request_timeout_ms=11000)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < 100 and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=200).values():
                got.extend(records)
        assert sorted(r.value.decode() for r in got) == sorted(values[0] + values[1])
        ends = {KpTopicPartition(topic, 0): 50, KpTopicPartition(topic, 1): 50}

        def auto_committed():
            c.poll(timeout_ms=100)
            return {tp: o.offset for tp, o in admin.list_consumer_group_offsets(group).items()} == ends

        wait_until(auto_committed, what="auto-commit of the log ends")

        assert (group, "consumer") in admin.list_consumer_groups()
        [described] = admin.describe_consumer_groups([group])
        assert (described.error_code, described.group, described.state) == (0, group, "Stable")
        assert (described.protocol_type, described.protocol) == ("consumer", "range")
        [member] = described.members
        assert member.client_id == c.config["client_id"]
        assert member.member_metadata.topics == [topic]
        assert sorted(member.member_assignment.assignment) == [(topic, [0, 1])]
    finally:
        c.close()  # commits (nothing new) and leaves the group
    try:
        [described] = admin.describe_consumer_groups([group])
        assert (described.state, described.members) == ("Empty", [])
        assert {tp: o.offset for tp, o in admin.list_consumer_group_offsets(group).items()} == ends
    finally:
        admin.close()


# ---------------------------------------------------------------------------------------------
# confluent-kafka AdminClient group calls


def test_admin_lists_describes_and_deletes_groups(broker, admin, topic, group):
    create_topic(broker, topic, 2)
    produce_values(broker, topic, spread("adm", 2, 10))
    c = group_consumer(broker, group, **{"partition.assignment.strategy": "roundrobin", "client.id": "adm-client"})
    closed = False
    try:
        c.subscribe([topic])
        poll_values(c, 20)
        c.commit(asynchronous=False)

        listed = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
        assert listed.errors == []
        [mine] = [g for g in listed.valid if g.group_id == group]
        assert (mine.state, mine.is_simple_consumer_group) == (ConsumerGroupState.STABLE, False)
        stable_only = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(timeout=TIMEOUT_S)
        assert group in {g.group_id for g in stable_only.valid}
        empty_only = admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(timeout=TIMEOUT_S)
        assert group not in {g.group_id for g in empty_only.valid}

        d = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
        assert (d.group_id, d.state, d.partition_assignor, d.is_simple_consumer_group) == (
            group, ConsumerGroupState.STABLE, "roundrobin", False)
        assert d.coordinator.id == 1 and d.coordinator.port == broker.port
        [member] = d.members
        assert member.client_id == "adm-client"
        assert sorted((tp.topic, tp.partition) for tp in member.assignment.topic_partitions) == [(topic, 0), (topic, 1)]

        assert committed_offsets(admin, group) == {(topic, 0): 10, (topic, 1): 10}

        with pytest.raises(KafkaException) as refused:
            admin.delete_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
        assert refused.value.args[0].code() == KafkaError.NON_EMPTY_GROUP

        c.close()
        closed = True
        d = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
        assert (d.state, d.members) == (ConsumerGroupState.EMPTY, [])
        admin.delete_consumer_groups([group])[group].result(timeout=TIMEOUT_S)

        listed = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
        assert group not in {g.group_id for g in listed.valid}
        d = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
        assert (d.state, d.members) == (ConsumerGroupState.DEAD, [])
        assert committed_offsets(admin, group) == {}
        with pytest.raises(KafkaException) as missing:
            admin.delete_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
        assert missing.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND
    finally:
        if not closed:
            c.close()


def test_admin_alters_offsets_of_an_empty_group_only(broker, admin, topic, group):
    create_topic(broker, topic, 1)
    produce_values(broker, topic, {0: [f"alt-{i}" for i in range(10)]})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 3)])
    c = group_consumer(broker, group)
    try:
        c.subscribe([topic])
        poll_values(c, 10)
        c.commit(asynchronous=False)
        # Kafka: altering the offsets of a group with active members fails with UNKNOWN_MEMBER_ID.
        with pytest.raises(KafkaException) as refused:
            result = admin.alter_consumer_group_offsets([request])[group].result(timeout=TIMEOUT_S)
            for tp in result.topic_partitions:
                if tp.error:
                    raise KafkaException(tp.error)
        assert refused.value.args[0].code() == KafkaError.UNKNOWN_MEMBER_ID
        assert committed_offsets(admin, group) == {(topic, 0): 10}
    finally:
        c.close()

    result = admin.alter_consumer_group_offsets([request])[group].result(timeout=TIMEOUT_S)
    assert [(tp.partition, tp.offset, tp.error) for tp in result.topic_partitions] == [(0, 3, None)]
    c = group_consumer(broker, group)
    try:
        c.subscribe([topic])
        assert [m.offset() for m in poll_values(c, 7)] == list(range(3, 10))
    finally:
        c.close()


def test_offsets_committed_without_joining_make_a_simple_group(broker, admin, topic, group):
    create_topic(broker, topic)
    produce_values(broker, topic, {0: ["s0", "s1", "s2"]})
    c = group_consumer(broker, group)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        poll_values(c, 3)
        c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    finally:
        c.close()

    [listing] = [g for g in admin.list_consumer_groups().result(timeout=TIMEOUT_S).valid if g.group_id == group]
    assert (listing.is_simple_consumer_group, listing.state) == (True, ConsumerGroupState.EMPTY)
    assert committed_offsets(admin, group) == {(topic, 0): 2}
