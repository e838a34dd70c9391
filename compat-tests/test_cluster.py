"""Sluice as a cluster of processes: three nodes that are each broker and controller (one
quorum of three voters), and three controllers apart from two brokers. Driven with kcat,
confluent-kafka and, for what no client here sends to a node of the test's choosing, the raw
protocol client in `kafka_wire.py`.

Metadata: every broker lists every live broker, and leaders of a 9-partition topic spread 3 per
broker. Admin requests sent to a node that is not the controller are forwarded (raw: librdkafka
always sends them to the controller named in Metadata). DescribeCluster and DescribeQuorum
agree on the active controller. Failures: a killed controller is replaced within 10 s and
rejoins; without a quorum topic creation times out and nothing committed is lost; a silent
broker is fenced after its session timeout and its partitions have no leader until it is
back; a rolling SIGTERM restart under a retrying producer loses no acknowledged record and
fails no delivery.

The read-mostly tests share one module cluster (each with its own topics); tests that kill,
stop or reconfigure nodes make their own. Every wait is bounded.
"""

import time
from collections import Counter
from functools import partial

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

import kafka_wire
from cluster import BROKER, CONTROLLER, Cluster, ClusterFactory, wait_for
from conftest import (
    StreamingProducer,
    admin_config,
    assert_every_ack_is_in_the_log,
    consume_until_eof,
    consumer_config,
    create_topic,
    delivered_offsets,
    kcat_metadata,
    poll_messages,
    produce_all,
    producer_config,
)

TIMEOUT_S = 20
PROPAGATION_S = 10  # what the controller committed reaches every running broker within this
FAILOVER_S = 10  # a new controller is elected and known to every running broker within this
REJOIN_S = 15  # a restarted node has caught up with the metadata log within this
MAX_VOTER_LAG = 5  # metadata records a voter of an idle quorum may trail the high watermark by

SESSION_TIMEOUT_MS = 3000
FAST_FENCING = {"broker.session.timeout.ms": SESSION_TIMEOUT_MS, "broker.heartbeat.interval.ms": 500}
FENCE_S = SESSION_TIMEOUT_MS / 1000 + 7  # session timeout, then the news reaching every broker

# How long a broker tries to reach an active controller for a metadata change before it answers
# REQUEST_TIMED_OUT (Sluice's setting; 15 s by default, shortened to keep the test quick).
CONTROLLER_REQUEST_TIMEOUT_MS = 5000
QUICK_CONTROLLER_TIMEOUT = {"controller.request.timeout.ms": CONTROLLER_REQUEST_TIMEOUT_MS}

SPLIT_ROLES = {1: CONTROLLER, 2: CONTROLLER, 3: CONTROLLER, 4: BROKER, 5: BROKER}

# acks=1 with librdkafka's own retry settings (StreamingProducer turns retries off unless told):
# every error a restart causes must be retriable, so no delivery may fail within the 60 s.
RETRYING_ACKS_1 = {"acks": "1", "retries": 2147483647, "message.timeout.ms": 60000}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three combined nodes for the tests that only read and create; each uses its own topics."""
    c = Cluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield c
        c.assert_healthy()
    finally:
        c.kill_all()


@pytest.fixture
def make_cluster(tmp_path):
    """Makes clusters of this test's own: `make_cluster(layout=..., overrides=...)`."""
    factory = ClusterFactory(tmp_path)
    try:
        yield factory
        for c in factory.made:
            c.assert_healthy()
    finally:
        for c in factory.made:
            c.kill_all()


# ---------------------------------------------------------------------------------------------
# Helpers


def wait_until_visible(cluster: Cluster, topic: str, partitions: int) -> None:
    """Until every running broker lists `topic` with `partitions` partitions."""

    def visible():
        for n in cluster.running_brokers():
            md = cluster.metadata(n.node_id).topics.get(topic)
            if md is None or md.error is not None or len(md.partitions) != partitions:
                return False
        return True

    wait_for(visible, PROPAGATION_S, f"{topic} with {partitions} partitions on every running broker")


def wait_until_gone(cluster: Cluster, topic: str) -> None:
    def gone():
        return all(topic not in cluster.metadata(n.node_id).topics for n in cluster.running_brokers())

    wait_for(gone, PROPAGATION_S, f"{topic} to disappear from every running broker")


def kcat_topics(node) -> set[str]:
    return {t["topic"] for t in kcat_metadata(node.bootstrap)["topics"]}


def produce_to_every_partition(bootstrap: str, topic: str, partitions: int, acks: str = "all",
                               count: int = 20) -> dict[int, list[bytes]]:
    """`count` values to each partition (of a fresh topic: offsets from 0), each acknowledged."""
    producer = Producer(producer_config(bootstrap, acks=acks))
    sent = {p: [f"{topic}-p{p}-{i:03d}".encode() for i in range(count)] for p in range(partitions)}
    for p, values in sent.items():
        assert delivered_offsets(produce_all(producer, topic, values, partition=p)) == list(range(count))
    return sent


def assert_partitions_hold(bootstrap: str, topic: str, sent: dict[int, list[bytes]]) -> None:
    for p, values in sent.items():
        got = consume_until_eof(bootstrap, topic, p, timeout=TIMEOUT_S)
        assert [m.value() for m in got] == values, f"{topic}[{p}] read through {bootstrap}"


def expect_ok(result: tuple[int, str | None], what: str) -> None:
    code, message = result
    assert code == kafka_wire.NONE, f"{what}: error {code} ({message})"


# ---------------------------------------------------------------------------------------------
# Metadata from every node


def test_kcat_on_every_node_lists_all_three_brokers(cluster):
    for n in cluster.brokers:
        md = kcat_metadata(n.bootstrap)

        assert sorted((b["id"], b["name"]) for b in md["brokers"]) == cluster.broker_listing(), f"via {n}"
        assert md["controllerid"] in cluster.voter_ids, f"via {n}"


def test_confluent_kafka_sees_all_three_brokers_through_any_bootstrap(cluster):
    for n in cluster.brokers:
        md = cluster.metadata(n.node_id)
        assert sorted((b.id, f"{b.host}:{b.port}") for b in md.brokers.values()) == cluster.broker_listing()

    md = AdminClient(admin_config(cluster.bootstrap)).list_topics(timeout=TIMEOUT_S)
    assert sorted(md.brokers) == cluster.broker_ids


@pytest.mark.parametrize("acks", ["all", "1"])
def test_nine_partitions_spread_three_leaders_per_broker_and_round_trip_through_other_nodes(cluster, topic, acks):
    create_topic(cluster.node(1), topic, partitions=9)
    wait_until_visible(cluster, topic, 9)

    views = {n.node_id: cluster.metadata(n.node_id).topics[topic].partitions for n in cluster.brokers}
    leaders = {p: md.leader for p, md in views[1].items()}
    for via, partitions in views.items():
        assert {p: md.leader for p, md in partitions.items()} == leaders, f"node {via} sees other leaders"
        # No replication yet: RF=1, so the replicas and the ISR are the leader alone.
        assert all(md.replicas == md.isrs == [md.leader] for md in partitions.values()), f"via node {via}"
    assert Counter(leaders.values()) == {1: 3, 2: 3, 3: 3}

    # librdkafka sends each partition's records to its leader, whichever node it bootstrapped from.
    sent = produce_to_every_partition(cluster.node(2).bootstrap, topic, 9, acks=acks)
    assert_partitions_hold(cluster.node(3).bootstrap, topic, sent)


def test_topic_deleted_through_node_3_disappears_from_every_node(cluster, topic):
    create_topic(cluster.node(1), topic, partitions=3)
    wait_until_visible(cluster, topic, 3)

    admin = AdminClient(admin_config(cluster.node(3).bootstrap))
    admin.delete_topics([topic])[topic].result(timeout=TIMEOUT_S)

    wait_until_gone(cluster, topic)
    for n in cluster.brokers:
        assert topic not in kcat_topics(n), f"{n} still lists {topic}"


# ---------------------------------------------------------------------------------------------
# Admin requests through a node that is not the controller


def test_admin_requests_sent_to_a_node_that_is_not_the_controller_are_forwarded(cluster, topic):
    controller = cluster.active_controller()
    via, other = cluster.running_brokers(but=controller)

    expect_ok(kafka_wire.create_topic(via.port, topic, 3), f"CreateTopics via {via}")
    wait_until_visible(cluster, topic, 3)

    expect_ok(kafka_wire.create_partitions(via.port, topic, 6), f"CreatePartitions via {via}")
    wait_until_visible(cluster, topic, 6)
    assert set(cluster.leaders(topic, via=other.node_id).values()) <= set(cluster.broker_ids)

    expect_ok(
        kafka_wire.incremental_alter_topic_configs(via.port, topic, {"retention.ms": "123456"}),
        f"IncrementalAlterConfigs via {via}",
    )
    # Each broker answers DescribeConfigs from its own copy of the metadata.
    wait_for(
        lambda: all(kafka_wire.describe_topic_configs(n.port, topic).get("retention.ms") == "123456"
                    for n in cluster.brokers),
        PROPAGATION_S,
        "retention.ms=123456 in every broker's DescribeConfigs",
    )
    res = ConfigResource(ResourceType.TOPIC, topic)
    admin = AdminClient(admin_config(other.bootstrap))  # kept alive until its future resolves
    configs = admin.describe_configs([res])[res].result(timeout=TIMEOUT_S)
    assert configs["retention.ms"].value == "123456"

    expect_ok(kafka_wire.delete_topic(other.port, topic), f"DeleteTopics via {other}")
    wait_until_gone(cluster, topic)


# ---------------------------------------------------------------------------------------------
# The controller and the quorum


def test_every_node_names_the_same_voter_as_controller_in_metadata_and_describe_cluster(cluster):
    controller = cluster.active_controller()  # each node's Metadata answer, through librdkafka

    answers = [kafka_wire.describe_cluster(n.port) for n in cluster.brokers]
    admin = AdminClient(admin_config(cluster.bootstrap))  # kept alive until its future resolves
    described = admin.describe_cluster(request_timeout=TIMEOUT_S)

    expected_brokers = [(n.node_id, "127.0.0.1", n.port) for n in cluster.brokers]
    for n, d in zip(cluster.brokers, answers):
        assert (d["error_code"], d["controller_id"], d["brokers"]) == (0, controller, expected_brokers), f"via {n}"
    assert len({d["cluster_id"] for d in answers}) == 1, "nodes name different cluster ids"
    assert described.result(timeout=TIMEOUT_S).controller.id == controller  # librdkafka asks the controller


def quorum_caught_up(port: int) -> dict | None:
    """DescribeQuorum through `port`, if every voter is within MAX_VOTER_LAG of the high watermark."""
    q = kafka_wire.describe_quorum(port)
    lags = [abs(q["high_watermark"] - leo) for _, leo in q["voters"]]
    return q if max(lags) <= MAX_VOTER_LAG else None


def test_describe_quorum_shows_three_caught_up_voters_led_by_the_active_controller(cluster):
    controller = cluster.active_controller()

    for n in cluster.brokers:
        q = wait_for(partial(quorum_caught_up, n.port), PROPAGATION_S, f"every voter caught up, per {n}")

        assert (q["error_code"], q["leader_id"]) == (0, controller), f"via {n}"
        assert q["leader_epoch"] > 0 and q["high_watermark"] > 0, f"via {n}: nothing elected or committed? {q}"
        assert sorted(v for v, _ in q["voters"]) == cluster.voter_ids, f"via {n}"


def test_killed_active_controller_is_replaced_within_10s_and_catches_up_when_back(make_cluster, topic):
    c = make_cluster()
    old = c.active_controller()

    c.kill9(old)
    killed_at = time.monotonic()
    new = c.active_controller(timeout=FAILOVER_S, other_than=old)
    elected_s = time.monotonic() - killed_at

    assert elected_s < FAILOVER_S
    survivor = c.running_brokers()[0]
    create_topic(survivor, topic, partitions=3)  # librdkafka sends it to the new controller
    wait_until_visible(c, topic, 3)

    c.start(old)
    wait_for(lambda: topic in kcat_topics(c.node(old)), REJOIN_S, f"node {old} to list {topic} after its restart")
    md = kcat_metadata(c.node(old).bootstrap)
    assert sorted((b["id"], b["name"]) for b in md["brokers"]) == c.broker_listing()
    assert c.active_controller() in c.voter_ids, f"no agreed controller after node {old} rejoined (was {new})"


def test_without_a_quorum_topic_creation_times_out_and_recovers_with_nothing_lost(make_cluster, topic):
    c = make_cluster(overrides=QUICK_CONTROLLER_TIMEOUT)
    before = [f"{topic}-before-{i}" for i in range(3)]
    for t in before:
        create_topic(c.node(1), t)
    controller = c.active_controller()
    survivor = next(i for i in c.broker_ids if i != controller)
    down = [i for i in c.broker_ids if i != survivor]  # the controller and one more voter
    for i in down:
        c.kill9(i)

    # Sent to the survivor itself, CreateTopics must come back REQUEST_TIMED_OUT once the
    # survivor has given up reaching a controller: there is none, nor a majority to elect one.
    started = time.monotonic()
    code, message = kafka_wire.create_topic(c.node(survivor).port, f"{topic}-raw", 1, timeout_ms=5000, timeout=15)
    assert code == kafka_wire.REQUEST_TIMED_OUT, f"CreateTopics without a quorum: error {code} ({message})"
    assert time.monotonic() - started < CONTROLLER_REQUEST_TIMEOUT_MS / 1000 + 5

    # confluent-kafka fails within its request timeout too. It sends CreateTopics to the
    # controller Metadata names; with none alive it may time out waiting for one (_TIMED_OUT)
    # rather than get the broker's REQUEST_TIMED_OUT: either is a timeout, neither a success.
    admin = AdminClient(admin_config(c.node(survivor).bootstrap))
    started = time.monotonic()
    with pytest.raises(KafkaException) as failed:
        futures = admin.create_topics([NewTopic(f"{topic}-client", 1)], request_timeout=8, operation_timeout=5)
        futures[f"{topic}-client"].result(timeout=15)
    assert failed.value.args[0].code() in (KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT), failed.value
    assert time.monotonic() - started < 11

    c.start(down[0])  # its Kafka listener opens once it is registered: a quorum again
    c.active_controller(other_than=down[1])
    after = f"{topic}-after"
    create_topic(c.node(survivor), after)
    for t in [*before, after]:
        wait_until_visible(c, t, 1)


# ---------------------------------------------------------------------------------------------
# Brokers leaving and coming back


def test_silent_broker_is_fenced_its_partitions_leaderless_until_it_returns(make_cluster, topic):
    c = make_cluster(overrides=FAST_FENCING)
    create_topic(c.node(1), topic, partitions=9)
    wait_until_visible(c, topic, 9)
    sent = produce_to_every_partition(c.bootstrap, topic, 9)
    controller = c.active_controller()
    victim = next(i for i in c.broker_ids if i != controller)
    leaders = c.leaders(topic, via=controller)
    theirs = sorted(p for p, leader in leaders.items() if leader == victim)
    assert theirs, f"node {victim} leads nothing: {leaders}"

    c.kill9(victim)

    seen_leaders = set()  # of the victim's partitions, at every look: only it or nobody, ever

    def fenced_everywhere():
        views = {n.node_id: c.metadata(n.node_id) for n in c.running_brokers()}
        for md in views.values():
            seen_leaders.update(md.topics[topic].partitions[p].leader for p in theirs)
        fenced = all(
            victim not in md.brokers and all(md.topics[topic].partitions[p].leader == -1 for p in theirs)
            for md in views.values()
        )
        return views if fenced else None

    views = wait_for(fenced_everywhere, FENCE_S, f"node {victim} out of every broker list, its partitions leaderless")

    assert seen_leaders <= {victim, -1}, f"partitions of node {victim} were given to {seen_leaders - {victim}}"
    others = {p: leader for p, leader in leaders.items() if p not in theirs}
    for via, md in views.items():
        parts = md.topics[topic].partitions
        errors = [parts[p].error.code() if parts[p].error else None for p in theirs]
        assert errors == [KafkaError.LEADER_NOT_AVAILABLE] * len(theirs), f"via node {via}"
        assert {p: parts[p].leader for p in others} == others, f"via node {via}: other partitions changed leader"

    c.start(victim)
    wait_for(
        lambda: all(c.leaders(topic, via=n.node_id) == leaders for n in c.running_brokers()),
        REJOIN_S,
        f"node {victim} leading {theirs} again on every broker",
    )
    assert_partitions_hold(c.bootstrap, topic, sent)


def test_rolling_sigterm_restart_keeps_every_acked_record_and_fails_no_delivery(make_cluster, topic):
    c = make_cluster()
    create_topic(c.node(1), topic, partitions=9)
    wait_until_visible(c, topic, 9)
    leaders = c.leaders(topic, via=1)
    # ~1,000 records/s: steady, and little enough to read back whole on two cores.
    stream = StreamingProducer(c.bootstrap, topic, partitions=9, extra=RETRYING_ACKS_1, burst_interval_s=0.05)
    stream.start()
    try:
        stream.wait_for_acks(500)
        for node_id in c.broker_ids:
            c.restart(node_id)  # SIGTERM: fenced at once by a controlled shutdown, then back
            wait_for(
                lambda: all(c.leaders(topic, via=n.node_id) == leaders for n in c.running_brokers()),
                REJOIN_S,
                f"node {node_id} leading its partitions again",
            )
            wait_for_acks_on(stream, [p for p, leader in leaders.items() if leader == node_id])
    finally:
        stream.finish()

    assert stream.failed == [], (
        f"{len(stream.failed)} deliveries failed; errors (code, retriable): "
        f"{sorted({(e.code(), e.retriable()) for e in stream.errors})}"
    )
    for p in range(9):
        log = [(m.offset(), m.value()) for m in consume_until_eof(c.bootstrap, topic, p, timeout=TIMEOUT_S)]
        assert_every_ack_is_in_the_log(stream.acked_in[p], log)


def wait_for_acks_on(stream: StreamingProducer, partitions: list[int], more: int = 20) -> None:
    """Until each of `partitions` has `more` acknowledgements than now: writable again."""
    base = {p: len(stream.acked_in[p]) for p in partitions}
    wait_for(
        lambda: all(len(stream.acked_in[p]) >= base[p] + more for p in partitions),
        TIMEOUT_S,
        f"{more} more acks on each of partitions {partitions}",
    )


# ---------------------------------------------------------------------------------------------
# Controllers and brokers on separate nodes


def test_controller_only_and_broker_only_nodes(make_cluster, topic):
    c = make_cluster(layout=SPLIT_ROLES)

    for n in c.brokers:
        md = kcat_metadata(n.bootstrap)
        assert sorted((b["id"], b["name"]) for b in md["brokers"]) == c.broker_listing(), f"via {n}"
        # librdkafka sends admin requests to the broker Metadata names as controller and waits
        # for it to appear in the broker list: a controller-only id would stall every admin
        # call (Kafka's KRaft brokers name a live broker here for that reason).
        assert md["controllerid"] in c.broker_ids, f"via {n}: controller {md['controllerid']} is no broker"
    q = kafka_wire.describe_quorum(c.node(4).port)
    assert sorted(v for v, _ in q["voters"]) == [1, 2, 3]
    assert q["leader_id"] in (1, 2, 3)

    create_topic(c.node(4), topic, partitions=4)
    wait_until_visible(c, topic, 4)
    assert Counter(c.leaders(topic, via=5).values()) == {4: 2, 5: 2}
    sent = produce_to_every_partition(c.node(4).bootstrap, topic, 4)
    assert_partitions_hold(c.node(5).bootstrap, topic, sent)


def group_consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        consumer_config(
            bootstrap,
            **{
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "enable.auto.offset.store": True,  # what was polled is what commit() commits
            },
        )
    )


def test_consumer_group_keeps_its_offsets_when_its_coordinator_restarts(make_cluster, topic):
    """A group over a topic led by all three brokers, coordinated by whichever broker leads its
    __consumer_offsets partition: it commits, that broker restarts (SIGTERM), and the group
    resumes after the committed offsets: nothing read twice, nothing skipped."""
    c = make_cluster()
    admin = AdminClient(admin_config(c.bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=9)])[topic].result(timeout=TIMEOUT_S)
    wait_until_visible(c, topic, 9)
    first = produce_to_every_partition(c.bootstrap, topic, 9, count=10)
    group = f"{topic}-group"
    consumer = group_consumer(c.bootstrap, group)
    consumer.subscribe([topic])
    got = poll_messages(consumer, 90, TIMEOUT_S)
    assert sorted(m.value() for m in got) == sorted(v for vs in first.values() for v in vs)
    consumer.commit(asynchronous=False)
    consumer.close()

    coordinator = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S).coordinator.id
    c.restart(coordinator)
    later = {p: [f"{topic}-later-p{p}".encode()] for p in range(9)}
    producer = Producer(producer_config(c.bootstrap, acks="all"))
    for p, values in later.items():
        delivered_offsets(produce_all(producer, topic, values, partition=p))
    consumer = group_consumer(c.bootstrap, group)
    consumer.subscribe([topic])
    resumed = poll_messages(consumer, 9, TIMEOUT_S)
    consumer.close()
    assert sorted(m.value() for m in resumed) == sorted(v for vs in later.values() for v in vs)
