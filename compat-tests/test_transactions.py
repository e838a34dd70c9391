"""Transactions (KIP-98) with confluent-kafka (librdkafka) against Sluice: a transactional
producer's interleaved commits and aborts read back exactly by a read_committed consumer (and
everything by read_uncommitted), an open transaction hidden until its commit, a
consume-transform-produce loop with `send_offsets_to_transaction` (the group's offsets move
only with a commit), zombie fencing, an abandoned transaction aborted by its timeout, and a
broker `kill -9` in the middle of a transaction.

The module's broker sweeps for timed-out transactions every 500 ms (Kafka: 10 s), so the
timeout test waits seconds, not minutes."""

import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from conftest import (
    admin_config,
    broker_fixture,
    consumer_config,
    create_topic,
    producer_config,
    watermarks,
)
from test_cluster import make_cluster  # noqa: F401 - the fixture of clusters of a test's own

TIMEOUT_S = 30
OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": 500}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-txn", OVERRIDES)


@pytest.fixture
def fresh_broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-txn-own", OVERRIDES)


def txn_id() -> str:
    return f"txn-{uuid.uuid4().hex[:8]}"


def transactional_producer(bootstrap: str, transactional_id: str, **extra) -> Producer:
    settings = {"transactional.id": transactional_id, "enable.idempotence": True, "linger.ms": 5, **extra}
    p = Producer(producer_config(bootstrap, **settings))
    p.init_transactions(TIMEOUT_S)
    return p


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str, timeout: float = TIMEOUT_S) -> list:
    """Every record of `topic` up to each partition's end for `isolation` (the LSO for
    read_committed), as (partition, offset, value)."""
    c = Consumer(consumer_config(bootstrap, **{"isolation.level": isolation}))
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got, at_end = [], set()
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"{topic}: not at the end of every partition in {timeout}s"
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            at_end.discard(m.partition())
            got.append((m.partition(), m.offset(), m.value().decode()))
        return sorted(got)
    finally:
        c.close()


def values(records) -> list[str]:
    return [v for _, _, v in records]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


def test_interleaved_commits_and_aborts_read_back_exactly(broker):
    topic = f"txn-mixed-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic, partitions=2)
    p = transactional_producer(broker.bootstrap, txn_id())
    committed, everything = [], []
    for round in range(6):
        p.begin_transaction()
        batch = [f"r{round}-{i}" for i in range(5)]
        for i, v in enumerate(batch):
            p.produce(topic, value=v, partition=i % 2)
        everything += batch
        if round % 2 == 0:
            p.commit_transaction(TIMEOUT_S)
            committed += batch
        else:
            p.flush(TIMEOUT_S)  # in the log before the abort (else librdkafka drops them unsent)
            p.abort_transaction(TIMEOUT_S)
    got = read_all(broker.bootstrap, topic, 2, "read_committed")
    assert sorted(values(got)) == sorted(committed)
    for part in range(2):
        mine = [v for pt, _, v in got if pt == part]
        assert mine == [v for i, v in enumerate(committed) if i % 5 % 2 == part], "in order per partition"
    assert sorted(values(read_all(broker.bootstrap, topic, 2, "read_uncommitted"))) == sorted(everything)
    # Every transaction ended with a marker in each partition: 6 after the 18 / 12 records.
    assert [watermarks(broker, topic, part)[1] for part in range(2)] == [18 + 6, 12 + 6]


def test_an_open_transaction_is_hidden_from_read_committed_until_its_commit(broker):
    topic = f"txn-open-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic)
    p = transactional_producer(broker.bootstrap, txn_id())
    p.begin_transaction()
    p.produce(topic, value="first", partition=0)
    p.flush(TIMEOUT_S)
    assert values(read_all(broker.bootstrap, topic, 1, "read_uncommitted")) == ["first"]
    assert read_all(broker.bootstrap, topic, 1, "read_committed") == [], "the LSO stays before the open transaction"
    p.commit_transaction(TIMEOUT_S)
    assert read_all(broker.bootstrap, topic, 1, "read_committed") == [(0, 0, "first")]


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    c = Consumer(consumer_config(bootstrap, **{"group.id": group}))
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=TIMEOUT_S)
        return [tp.offset for tp in tps]
    finally:
        c.close()


def test_consume_transform_produce_moves_offsets_only_with_a_commit(broker):
    source, sink = f"ctp-in-{uuid.uuid4().hex[:8]}", f"ctp-out-{uuid.uuid4().hex[:8]}"
    group = f"ctp-{uuid.uuid4().hex[:8]}"
    create_topic(broker, source, partitions=2)
    create_topic(broker, sink)
    feeder = Producer(producer_config(broker.bootstrap))
    inputs = [f"in-{i}" for i in range(40)]
    for i, v in enumerate(inputs):
        feeder.produce(source, value=v, partition=i % 2)
    assert feeder.flush(TIMEOUT_S) == 0

    consumer = Consumer(
        consumer_config(
            broker.bootstrap,
            **{
                "group.id": group,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "session.timeout.ms": 6000,
            },
        )
    )
    producer = transactional_producer(broker.bootstrap, txn_id())
    consumer.subscribe([source])
    try:
        # One round aborted: its output vanishes and the group's offsets stay where they were.
        rounds, aborted_once, outputs = 0, False, []
        deadline = time.monotonic() + TIMEOUT_S * 2
        while len(outputs) < len(inputs):
            assert time.monotonic() < deadline, f"only {len(outputs)} of {len(inputs)} transformed"
            msgs = consumer.consume(10, 0.5)
            msgs = [m for m in msgs if not m.error()]
            if not msgs:
                continue
            producer.begin_transaction()
            for m in msgs:
                producer.produce(sink, value=m.value().decode().replace("in-", "out-"), partition=0)
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), TIMEOUT_S)
            rounds += 1
            if not aborted_once and rounds == 2:
                producer.abort_transaction(TIMEOUT_S)
                aborted_once = True
                # Rewind to what the group committed, as an application does after an abort.
                committed = consumer.committed(consumer.assignment(), timeout=TIMEOUT_S)
                for tp in committed:
                    consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
                continue
            producer.commit_transaction(TIMEOUT_S)
            outputs += [m.value().decode() for m in msgs]
        assert aborted_once
    finally:
        consumer.close()
    assert sorted(outputs) == sorted(inputs), "every input once"
    assert sorted(values(read_all(broker.bootstrap, sink, 1, "read_committed"))) == sorted(
        v.replace("in-", "out-") for v in inputs
    ), "exactly once in the output"
    assert committed_offsets(broker.bootstrap, group, source, 2) == [20, 20], "the group's offsets are the input's end"


def test_a_second_producer_with_the_same_id_fences_the_first(broker):
    topic = f"txn-zombie-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic)
    tid = txn_id()
    zombie = transactional_producer(broker.bootstrap, tid)
    zombie.begin_transaction()
    zombie.produce(topic, value="zombie", partition=0)
    zombie.flush(TIMEOUT_S)
    successor = transactional_producer(broker.bootstrap, tid)  # aborts the zombie's transaction
    successor.begin_transaction()
    successor.produce(topic, value="successor", partition=0)
    successor.commit_transaction(TIMEOUT_S)
    with pytest.raises(KafkaException) as e:
        zombie.produce(topic, value="late", partition=0)
        zombie.commit_transaction(TIMEOUT_S)
    assert e.value.args[0].fatal() or e.value.args[0].code() in (
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    ), e.value
    assert values(read_all(broker.bootstrap, topic, 1, "read_committed")) == ["successor"]


def test_an_abandoned_transaction_is_aborted_at_its_timeout(broker):
    topic = f"txn-abandoned-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic)
    timeouts = {"transaction.timeout.ms": 2000, "socket.timeout.ms": 2000, "message.timeout.ms": 2000}
    p = transactional_producer(broker.bootstrap, txn_id(), **timeouts)
    p.begin_transaction()
    p.produce(topic, value="never committed", partition=0)
    p.flush(TIMEOUT_S)
    started = time.monotonic()
    # The coordinator aborts it: an ABORT marker follows the record and the LSO passes both.
    wait_for(lambda: watermarks(broker, topic)[1] == 2, 15, "the abort marker")
    assert time.monotonic() - started < 10
    assert read_all(broker.bootstrap, topic, 1, "read_committed") == []
    with pytest.raises(KafkaException):
        p.commit_transaction(TIMEOUT_S)


def test_a_broker_killed_mid_transaction_shows_none_of_it(fresh_broker):
    broker = fresh_broker
    topic = f"txn-kill9-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic)
    tid = txn_id()
    p = transactional_producer(broker.bootstrap, tid)
    p.begin_transaction()
    p.produce(topic, value="before commit", partition=0)
    p.flush(TIMEOUT_S)
    broker.kill9()
    broker.start()
    assert read_all(broker.bootstrap, topic, 1, "read_committed") == []
    # The next instance of the producer aborts what its predecessor left open, then commits.
    nxt = transactional_producer(broker.bootstrap, tid)
    nxt.begin_transaction()
    nxt.produce(topic, value="after restart", partition=0)
    nxt.commit_transaction(TIMEOUT_S)
    assert values(read_all(broker.bootstrap, topic, 1, "read_committed")) == ["after restart"]
    assert values(read_all(broker.bootstrap, topic, 1, "read_uncommitted")) == ["before commit", "after restart"]


# ---------------------------------------------------------------------------------------------
# Three nodes: markers to other brokers' partitions, and a coordinator failover.

CLUSTER_SETTINGS = {
    "broker.session.timeout.ms": 3000,
    "broker.heartbeat.interval.ms": 500,
    "replica.lag.time.max.ms": 5000,
    "default.replication.factor": 3,
    "min.insync.replicas": 2,
    "offsets.topic.replication.factor": 3,
    "offsets.topic.num.partitions": 6,
    "transaction.state.log.replication.factor": 3,
    "transaction.state.log.num.partitions": 6,
    "transaction.state.log.min.isr": 2,
    **OVERRIDES,
}


def coordinator_partition(transactional_id: str, partitions: int) -> int:
    """Kafka's `abs(transactionalId.hashCode()) % partitions` (Java's String.hashCode)."""
    units = transactional_id.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def commit_until_done(p: Producer, timeout: float) -> None:
    """commit_transaction, again while librdkafka calls the failure retriable (a coordinator or
    leader moving)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return p.commit_transaction(10)
        except KafkaException as e:
            if not e.args[0].retriable() or time.monotonic() > deadline:
                raise


def test_three_nodes_markers_to_every_leader_and_the_coordinator_killed_mid_transaction(make_cluster):  # noqa: F811
    c = make_cluster(overrides=CLUSTER_SETTINGS)
    topic = f"txn-cluster-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(admin_config(c.bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=6)])[topic].result(timeout=TIMEOUT_S)
    wait_for(lambda: len(set(c.leaders(topic, via=1).values()) - {-1}) == 3, 15, "leaders on all three nodes")
    tid = txn_id()
    p = transactional_producer(c.bootstrap, tid, **{"message.timeout.ms": 60000})
    committed, everything = [], []
    for round, commit in enumerate([True, False]):
        p.begin_transaction()
        batch = [f"r{round}-{i}" for i in range(12)]
        for i, v in enumerate(batch):
            p.produce(topic, value=v, partition=i % 6)
        p.flush(TIMEOUT_S)
        everything += batch
        if commit:
            p.commit_transaction(TIMEOUT_S)
            committed += batch
        else:
            p.abort_transaction(TIMEOUT_S)
    wait_for(lambda: sorted(values(read_all(c.bootstrap, topic, 6, "read_committed"))) == sorted(committed), 30,
             "read_committed to see the first transaction (its markers are written after EndTxn answers)")

    # Mid-transaction, the coordinator's node dies; the commit goes through its successor.
    p.begin_transaction()
    batch = [f"r2-{i}" for i in range(12)]
    for i, v in enumerate(batch):
        p.produce(topic, value=v, partition=i % 6)
    p.flush(TIMEOUT_S)
    state = coordinator_partition(tid, 6)
    victim = wait_for(lambda: c.leaders("__transaction_state", via=1).get(state, -1) + 1, 15, "a coordinator") - 1
    c.kill9(victim)
    commit_until_done(p, 60)
    committed += batch
    everything += batch
    survivor = next(n for n in c.broker_ids if n != victim)
    bootstrap = c.node(survivor).bootstrap
    # EndTxn answers once PrepareCommit is written; the markers follow (through a new leader
    # for the partitions the dead node led), so the records become visible a moment later.
    seen = []

    def all_committed_visible():
        seen[:] = sorted(values(read_all(bootstrap, topic, 6, "read_committed", timeout=20)))
        return seen == sorted(committed)

    wait_for(all_committed_visible, 60, f"read_committed to see every committed record (last: {len(seen)})")
    assert sorted(values(read_all(bootstrap, topic, 6, "read_uncommitted", timeout=60))) == sorted(everything)
    c.start(victim)


def test_kafka_python_transactional_producer_commit_and_abort(broker):
    from kafka import KafkaProducer

    topic = f"txn-kp-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=txn_id(), request_timeout_ms=TIMEOUT_S * 1000)
    try:
        p.init_transactions()
        for value, commit in [(b"kp-1", True), (b"kp-2", False), (b"kp-3", True)]:
            p.begin_transaction()
            p.send(topic, value, partition=0).get(timeout=TIMEOUT_S)
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
    finally:
        p.close(timeout=5)
    assert values(read_all(broker.bootstrap, topic, 1, "read_committed")) == ["kp-1", "kp-3"]
    assert values(read_all(broker.bootstrap, topic, 1, "read_uncommitted")) == ["kp-1", "kp-2", "kp-3"]


def test_kafka_transactions_finds_and_aborts_a_hanging_transaction(broker):
    from kafka_tools import tool_ok

    topic = f"txn-hanging-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic)
    p = transactional_producer(broker.bootstrap, txn_id())
    p.begin_transaction()
    p.produce(topic, value="hanging", partition=0)
    p.flush(TIMEOUT_S)
    described = tool_ok("kafka-transactions", "--bootstrap-server", broker.bootstrap, "describe-producers",
                        "--topic", topic, "--partition", 0)
    assert described.stdout.split("\n")[1].split()[-1] == "0", described  # CurrentTransactionStartOffset
    tool_ok("kafka-transactions", "--bootstrap-server", broker.bootstrap, "abort", "--topic", topic,
            "--partition", 0, "--start-offset", 0)
    assert watermarks(broker, topic)[1] == 2, "the ABORT marker is written"
    assert read_all(broker.bootstrap, topic, 1, "read_committed") == []
    # __transaction_state on one broker: its min ISR is capped at its replication factor.
    under = tool_ok("kafka-topics", "--bootstrap-server", broker.bootstrap, "--describe", "--under-min-isr-partitions")
    assert under.stdout.strip() == "", under
