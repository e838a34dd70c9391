"""Eligible leader replicas (KIP-966, issue 12), judged by Kafka's own `kafka-topics --describe`
(its `Elr:` and `LastKnownElr:` columns, from DescribeTopicPartitions) and `kafka-configs`.

On one controller and four brokers, a topic with replicas {2, 3, 4} and min.insync.replicas 2
loses its replicas one at a time, while a fourth broker (5) stays up for the tools:
- 4 stops (SIGTERM): the ISR is {2, 3}, at min ISR, so nobody is an eligible leader;
- 3 stops: the ISR is {2}, below min ISR: 3 left it while the high watermark could not move
  without it, so it holds every committed record and is eligible;
- 2 is killed (kill -9) and fenced: the ISR is empty, the ELR {3, 2}, the last known leader 2;
- 2 restarts without a clean shutdown: it may have lost unflushed records, so it leaves the
  ELR and may not lead; neither may 4, which was never eligible;
- 3 restarts cleanly: it leads, the ISR is {3}, and every acknowledged record is there;
  4 and 2 catch up, the ISR is back to three and the ELR is empty.
Then the cluster-level `min.insync.replicas` (a dynamic default, as in Kafka 4.1+ with ELR):
`kafka-configs --entity-default` lists it with its source, changes it, refuses to delete it,
and refuses a broker-level value, in Kafka's words.
"""

import re

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import BROKER, CONTROLLER, ClusterFactory, wait_for
from conftest import admin_config, consume_until_eof, delivered_offsets, produce_all, producer_config
from kafka_tools import run_tool, tool_ok

SESSION_TIMEOUT_MS = 3000
LAYOUT = {1: CONTROLLER, 2: BROKER, 3: BROKER, 4: BROKER, 5: BROKER}
OVERRIDES = {
    "min.insync.replicas": 2,
    "broker.session.timeout.ms": SESSION_TIMEOUT_MS,
    "broker.heartbeat.interval.ms": 500,
    "replica.lag.time.max.ms": 5000,
}
CHANGE_S = 30  # a fencing (session timeout), an election or an ISR change, seen by the tools
RECORDS = 300


@pytest.fixture
def make_cluster(tmp_path):
    factory = ClusterFactory(tmp_path)
    try:
        yield factory
        for c in factory.made:
            c.assert_healthy()
    finally:
        for c in factory.made:
            c.kill_all()


def describe(bootstrap: str, topic: str) -> dict:
    """Partition 0 as `kafka-topics --describe` prints it: leader, ISR, ELR, last known ELR."""
    r = tool_ok("kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
    line = next(l for l in r.stdout.splitlines() if "Partition: 0" in l)
    field = lambda name: re.search(rf"\t{name}: ([^\t]*)", line).group(1).strip()  # noqa: E731
    ids = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    return {
        "leader": field("Leader"),
        "isr": ids(field("Isr")),
        "elr": ids(field("Elr")),
        "last_known_elr": ids(field("LastKnownElr")),
    }


def wait_for_state(bootstrap: str, topic: str, what: str, **want) -> dict:
    """Waits until partition 0 shows `want` (ISR and ELR compared as sets)."""

    def matches():
        got = describe(bootstrap, topic)
        for k, v in want.items():
            if (sorted(got[k]) if isinstance(v, list) else got[k]) != (sorted(v) if isinstance(v, list) else v):
                return None
        return got

    return wait_for(matches, CHANGE_S, what)


def test_an_eligible_replica_leads_once_the_isr_is_empty_and_an_unclean_restart_is_not_eligible(make_cluster):
    c = make_cluster(layout=LAYOUT, overrides=OVERRIDES).start()
    tools = c.node(5).bootstrap
    topic = "elr"
    admin = AdminClient(admin_config(c.bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[2, 3, 4]])])[topic].result(timeout=20)
    wait_for_state(tools, topic, "the whole ISR", leader="2", isr=[2, 3, 4], elr=[])
    values = [f"v{i:04d}".encode() for i in range(RECORDS)]
    producer = Producer(producer_config(c.bootstrap, acks="all"))
    assert delivered_offsets(produce_all(producer, topic, values, partition=0)) == list(range(RECORDS))

    c.stop(4)
    wait_for_state(tools, topic, "ISR {2, 3} at min ISR, nobody eligible", leader="2", isr=[2, 3], elr=[])
    c.stop(3)
    wait_for_state(tools, topic, "ISR {2} below min ISR, 3 eligible", leader="2", isr=[2], elr=[3])
    c.kill9(2)
    wait_for_state(tools, topic, "2 fenced: ISR empty, ELR {3, 2}, last known leader 2",
                   leader="none", isr=[], elr=[2, 3], last_known_elr=[2])

    c.start(2)  # no clean-shutdown marker: 2 may have lost unflushed records
    wait_for_state(tools, topic, "2 out of the ELR after its unclean restart",
                   leader="none", isr=[], elr=[3], last_known_elr=[2])
    c.start(4)  # live, but never eligible: it left while the ISR was at min ISR
    assert describe(tools, topic)["leader"] == "none"

    c.start(3)  # clean: still eligible
    wait_for_state(tools, topic, "3 leads from the ELR", leader="3")
    got = consume_until_eof(c.bootstrap, topic, 0, timeout=20)
    assert [m.value() for m in got] == values, "an acknowledged record is missing after the ELR election"
    wait_for_state(tools, topic, "the ISR whole again and the ELR empty",
                   leader="3", isr=[2, 3, 4], elr=[], last_known_elr=[])


def test_the_cluster_min_insync_replicas_is_a_dynamic_default(make_cluster):
    c = make_cluster(layout={1: CONTROLLER, 2: BROKER}, overrides={"min.insync.replicas": 2}).start()
    b = c.node(2).bootstrap

    def cluster_default() -> str:
        r = tool_ok("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "brokers",
                    "--entity-default")
        return r.stdout

    shown = cluster_default()
    assert re.search(r"min\.insync\.replicas=2 .*DYNAMIC_DEFAULT_BROKER_CONFIG:min\.insync\.replicas=2", shown), shown

    tool_ok("kafka-configs", "--bootstrap-server", b, "--alter", "--entity-type", "brokers", "--entity-default",
            "--add-config", "min.insync.replicas=1")
    wait_for(lambda: "min.insync.replicas=1 " in cluster_default(), CHANGE_S, "the new cluster default listed")
    r = tool_ok("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "brokers",
                "--entity-name", "2", "--all")
    assert re.search(r"min\.insync\.replicas=1 .*DYNAMIC_DEFAULT_BROKER_CONFIG:min\.insync\.replicas=1", r.stdout), r

    refused = run_tool("kafka-configs", "--bootstrap-server", b, "--alter", "--entity-type", "brokers",
                       "--entity-default", "--delete-config", "min.insync.replicas")
    assert refused.rc != 0
    assert "Cluster-level min.insync.replicas cannot be removed while ELR is enabled." in refused.stdout + refused.stderr, refused
    refused = run_tool("kafka-configs", "--bootstrap-server", b, "--alter", "--entity-type", "brokers",
                       "--entity-name", "2", "--add-config", "min.insync.replicas=3")
    assert refused.rc != 0
    assert "Broker-level min.insync.replicas cannot be altered while ELR is enabled." in refused.stdout + refused.stderr, refused
