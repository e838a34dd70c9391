"""Per-listener broker endpoints (issue 15): every broker registers all its listeners, and each
client is told the other brokers' endpoints on the listener it connected on, as Kafka does.

A 3-node cluster where each node has a PLAINTEXT inter-broker listener and a SASL_PLAINTEXT
client listener (SCRAM). A confluent-kafka client bootstrapped on node 1's SASL listener alone
produces to and consumes from partitions led by each of the three nodes, and joins a group
(FindCoordinator names the coordinator at its SASL port); Metadata and DescribeCluster through
the SASL listener list every broker at its SASL port, through PLAINTEXT at its PLAINTEXT port.
A node without the SASL listener is left out of SASL clients' answers, and a partition it leads
has no leader for them (LISTENER_NOT_FOUND), as in Kafka.
"""

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import ClusterNode, wait_for
from conftest import consume_range, consumer_config, delivered_offsets, poll_messages, produce_all, producer_config, unique_topic
from test_scram import ADMIN, SCRAM_SETTINGS, ScramCluster, scram

SASL = scram("SCRAM-SHA-256", *ADMIN)
WAIT_S = 20.0


def test_a_sasl_client_bootstrapped_on_one_node_reaches_every_node_on_its_listener(tmp_path):
    cluster = ScramCluster(tmp_path / "cluster", overrides=SCRAM_SETTINGS).start()
    try:
        node1 = cluster.node(1)
        sasl_ports = {n.node_id: n.sasl_port for n in cluster.brokers}
        admin = AdminClient({"bootstrap.servers": node1.sasl_bootstrap, **SASL})

        # Metadata and DescribeCluster through the SASL listener: every broker at its SASL port.
        md = admin.list_topics(timeout=10)
        assert {b.id: b.port for b in md.brokers.values()} == sasl_ports
        described = admin.describe_cluster(request_timeout=10).result(timeout=10)
        assert {n.id: n.port for n in described.nodes} == sasl_ports
        # Through the PLAINTEXT listener: the PLAINTEXT ports, as before.
        plain = cluster.metadata(1)
        assert {b.id: b.port for b in plain.brokers.values()} == {n.node_id: n.port for n in cluster.brokers}

        # One partition led by each node (the first replica of an assignment leads it).
        topic = unique_topic("per-listener")
        assignment = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
        admin.create_topics([NewTopic(topic, num_partitions=3, replica_assignment=assignment)])[topic].result(timeout=10)

        def leaders():
            t = admin.list_topics(topic, timeout=10).topics[topic]
            return {p.id: p.leader for p in t.partitions.values()}

        wait_for(lambda: leaders() == {0: 1, 1: 2, 2: 3}, WAIT_S, "each node leading its partition")

        producer = Producer(producer_config(node1.sasl_bootstrap, **SASL))
        for partition in range(3):
            values = [f"p{partition}-{i}".encode() for i in range(5)]
            offsets = delivered_offsets(produce_all(producer, topic, values, partition=partition))
            assert offsets == list(range(5)), f"partition {partition} (led by node {partition + 1})"
            got = consume_range(node1.sasl_bootstrap, topic, partition, 0, 5, **SASL)
            assert [m.value() for m in got] == values

        # A group member: FindCoordinator names the coordinator on the SASL listener, the
        # member joins, is assigned every partition, fetches from all three leaders, commits.
        group = unique_topic("per-listener-group")
        consumer = Consumer(
            consumer_config(
                node1.sasl_bootstrap,
                **SASL,
                **{"group.id": group, "auto.offset.reset": "earliest", "enable.partition.eof": False, "enable.auto.offset.store": True},
            )
        )
        try:
            consumer.subscribe([topic])
            got = poll_messages(consumer, 15, WAIT_S)
            assert sorted(m.partition() for m in got) == sorted([0, 1, 2] * 5)
            committed = consumer.commit(asynchronous=False)
            assert sorted((tp.partition, tp.offset) for tp in committed) == [(0, 5), (1, 5), (2, 5)]
        finally:
            consumer.close()
        cluster.assert_healthy()
    finally:
        cluster.kill_all()


class NoSaslOnNode3(ScramCluster):
    """Nodes 1 and 2 have the SASL listener, node 3 only PLAINTEXT."""

    def new_node(self, node_id, roles, data_dir, overrides):
        if node_id == 3:
            return ClusterNode(node_id, roles, data_dir, overrides)
        return super().new_node(node_id, roles, data_dir, overrides)


def test_a_broker_without_the_clients_listener_is_left_out_and_leads_nothing_for_it(tmp_path):
    cluster = NoSaslOnNode3(tmp_path / "cluster", overrides=SCRAM_SETTINGS).start()
    try:
        node1 = cluster.node(1)
        admin = AdminClient({"bootstrap.servers": node1.sasl_bootstrap, **SASL})
        topic = unique_topic("no-listener")
        admin.create_topics([NewTopic(topic, num_partitions=2, replica_assignment=[[1, 3], [3, 1]])])[topic].result(
            timeout=10
        )

        def partitions():
            t = admin.list_topics(topic, timeout=10).topics[topic]
            return {p.id: (p.leader, p.error and p.error.code(), sorted(p.replicas)) for p in t.partitions.values()}

        listener_not_found = 72
        wait_for(
            lambda: partitions() == {0: (1, None, [1, 3]), 1: (-1, listener_not_found, [1, 3])},
            WAIT_S,
            "partition 1 (led by node 3) without a leader for SASL clients",
        )
        md = admin.list_topics(timeout=10)
        assert {b.id: b.port for b in md.brokers.values()} == {1: node1.sasl_port, 2: cluster.node(2).sasl_port}
        # PLAINTEXT clients still see all three, node 3 leading partition 1.
        assert cluster.leaders(topic, via=1) == {0: 1, 1: 3}
        assert sorted(cluster.metadata(1).brokers) == [1, 2, 3]
        cluster.assert_healthy()
    finally:
        cluster.kill_all()
