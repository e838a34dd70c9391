"""Admin APIs that Kafka 4's admin clients and tools call, against Sluice with real clients:
config sources of a broker started from the shipped config/sluice.toml (kafka-python),
IncrementalAlterConfigs APPEND/SUBTRACT on cleanup.policy (confluent-kafka), and Apache Kafka
4.4's own tools through `kafka-tool` (Java 17+; `KAFKA_TOOL` names another copy of it):
`kafka-topics --describe` (DescribeTopicPartitions, paged), `kafka-log-dirs --describe`
(DescribeLogDirs), `kafka-configs --describe --entity-type client-metrics|groups`
(ListConfigResources)."""

import json

import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Producer, TopicCollection
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)
from confluent_kafka.admin import NewTopic as CkNewTopic
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType, NewTopic

from conftest import REPO, Broker

TIMEOUT_S = 15
TOOL_TIMEOUT_S = 120
KAFKA_TOOL = Path(os.environ.get("KAFKA_TOOL", REPO / "compat-tests" / "kafka-tool"))
CONFIG_SOURCE_STATIC_BROKER = 4
CONFIG_SOURCE_DEFAULT = 5


class ShippedConfigBroker(Broker):
    """A broker started as `make run` starts it: `--config config/sluice.toml`, plus this
    test's ports and data dir as overrides."""

    def command(self) -> list[str]:
        cmd = super().command()
        return cmd[:1] + ["--config", str(REPO / "config" / "sluice.toml")] + cmd[1:]


@pytest.fixture(scope="module")
def shipped_broker(tmp_path_factory):
    b = ShippedConfigBroker(tmp_path_factory.mktemp("shipped") / "data").start()
    try:
        yield b
        b.assert_healthy()
    finally:
        b.kill9()


def kafka_python_configs(bootstrap: str, resource: KpConfigResource) -> dict:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        [response] = admin.describe_configs([resource])
    finally:
        admin.close()
    [found] = response.to_object()["resources"]
    assert found["error_code"] == 0, found
    return {e["config_names"]: e for e in found["config_entries"]}


def test_shipped_config_leaves_every_setting_default_for_kafka_python(shipped_broker):
    admin = KafkaAdminClient(bootstrap_servers=shipped_broker.bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic("shipped-defaults", num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    topic = kafka_python_configs(
        shipped_broker.bootstrap, KpConfigResource(ConfigResourceType.TOPIC, "shipped-defaults")
    )
    for name in ("retention.bytes", "retention.ms", "segment.bytes", "cleanup.policy"):
        assert topic[name]["config_source"] == CONFIG_SOURCE_DEFAULT, (name, topic[name])
    broker = kafka_python_configs(shipped_broker.bootstrap, KpConfigResource(ConfigResourceType.BROKER, "1"))
    assert broker["log.retention.bytes"]["config_source"] == CONFIG_SOURCE_DEFAULT
    assert broker["num.partitions"]["config_source"] == CONFIG_SOURCE_DEFAULT
    # The test's own --override settings are the operator's: static.
    assert broker["log.dirs"]["config_source"] == CONFIG_SOURCE_STATIC_BROKER


def test_confluent_kafka_subtract_and_append_cleanup_policy(broker):
    """SUBTRACT of the last policy leaves an empty cleanup.policy (Kafka 4 accepts it and
    confluent-kafka's admin relies on it); APPEND to a topic on the default starts from it."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([CkNewTopic(t, 1, 1) for t in ("policy-none", "policy-both")])
    for f in futures.values():
        f.result(TIMEOUT_S)

    def alter(topic: str, op: AlterConfigOpType, value: str) -> None:
        entry = ConfigEntry("cleanup.policy", value, incremental_operation=op)
        resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
        for f in admin.incremental_alter_configs([resource]).values():
            f.result(TIMEOUT_S)

    alter("policy-none", AlterConfigOpType.SUBTRACT, "delete")
    alter("policy-both", AlterConfigOpType.APPEND, "compact")
    for topic, expected in (("policy-none", ""), ("policy-both", "delete,compact")):
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
        [configs] = [f.result(TIMEOUT_S) for f in described.values()]
        assert configs["cleanup.policy"].value == expected, topic
        assert configs["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, topic


def kafka_tool(*args: str) -> str:
    """Runs one of Kafka's tools; its stdout. A failing tool fails the test with its stderr."""
    r = subprocess.run([str(KAFKA_TOOL), *args], capture_output=True, timeout=TOOL_TIMEOUT_S)
    assert r.returncode == 0, f"kafka-tool {' '.join(args)} exited {r.returncode}:\n{r.stderr.decode()[-3000:]}"
    return r.stdout.decode()


def requests_served(broker, api: str) -> int:
    """How many `api` requests the broker has answered, from its Prometheus metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=TIMEOUT_S) as r:
        text = r.read().decode()
    pattern = rf'^sluice_requests_total{{api="{api}",version="\d+"}} (\d+)$'
    return sum(int(n) for n in re.findall(pattern, text, re.MULTILINE))


def test_kafka_topics_describe_pages_through_describe_topic_partitions(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([CkNewTopic("described", 3, 1)]).values():
        f.result(TIMEOUT_S)
    described = admin.describe_topics(TopicCollection(["described"]))
    [description] = [f.result(TIMEOUT_S) for f in described.values()]

    before = requests_served(broker, "DescribeTopicPartitions")
    out = kafka_tool(
        "kafka-topics", "--bootstrap-server", broker.bootstrap, "--describe", "--topic", "described",
        "--partition-size-limit-per-response", "1",
    )
    # One partition a response: the Java Admin follows the cursor three times.
    assert requests_served(broker, "DescribeTopicPartitions") - before == 3
    header, *partitions = out.strip().splitlines()
    # Java prints topic ids in URL-safe base64, librdkafka in the standard alphabet.
    topic_id = str(description.topic_id).translate(str.maketrans("+/", "-_")).rstrip("=")
    expected = f"Topic: described\tTopicId: {topic_id}\tPartitionCount: 3\tReplicationFactor: 1\t"
    assert header.startswith(expected), out
    for i, line in enumerate(partitions):
        fields = dict(f.split(": ", 1) if ": " in f else (f.rstrip(":"), "") for f in line.strip().split("\t"))
        assert fields == {
            "Topic": "described", "Partition": str(i), "Leader": "1", "Replicas": "1", "Isr": "1",
            "Elr": "", "LastKnownElr": "",
        }, line
    assert len(partitions) == 3, out

    everything = kafka_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--describe")
    assert "Topic: described\tPartition: 2\t" in everything


def segment_bytes(partition_dir: Path) -> int:
    """A partition's size as Kafka counts it: the bytes of its segment files."""
    return sum(p.stat().st_size for p in partition_dir.glob("*.log"))


def test_kafka_log_dirs_describe_reports_sizes_from_disk(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([CkNewTopic(t, n, 1) for t, n in (("dirs-a", 2), ("dirs-b", 1))]).values():
        f.result(TIMEOUT_S)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        producer.produce("dirs-a", value=b"x" * 100, key=str(i).encode(), partition=1)
    assert producer.flush(TIMEOUT_S) == 0

    out = kafka_tool("kafka-log-dirs", "--bootstrap-server", broker.bootstrap, "--describe")
    report = json.loads(out.strip().splitlines()[-1])
    [node] = report["brokers"]
    assert node["broker"] == 1
    [log_dir] = node["logDirs"]
    assert log_dir["error"] is None
    assert Path(log_dir["logDir"]) == broker.data_dir.resolve()
    sizes = {p["partition"]: p for p in log_dir["partitions"]}
    for name in ("dirs-a-0", "dirs-a-1", "dirs-b-0"):
        assert sizes[name]["size"] == segment_bytes(broker.data_dir / name), name
        assert (sizes[name]["offsetLag"], sizes[name]["isFuture"]) == (0, False), name
    assert sizes["dirs-a-1"]["size"] > 100 * 100
    assert not any(p.startswith("__cluster_metadata") for p in sizes)

    only = kafka_tool(
        "kafka-log-dirs", "--bootstrap-server", broker.bootstrap, "--describe", "--topic-list", "dirs-b"
    )
    [only_dir] = json.loads(only.strip().splitlines()[-1])["brokers"][0]["logDirs"]
    assert [p["partition"] for p in only_dir["partitions"]] == ["dirs-b-0"]


def test_kafka_configs_lists_client_metrics_and_group_resources(broker):
    """kafka-configs lists these entity types with ListConfigResources: Sluice has no
    client-metrics subscriptions and no group config overrides (nor, in this module, groups),
    so both list nothing, as a Kafka 4.4 without them does."""
    before = requests_served(broker, "ListConfigResources")
    for entity_type in ("client-metrics", "groups"):
        out = kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, "--describe",
                         "--entity-type", entity_type)
        assert out.strip() == "", out
    assert requests_served(broker, "ListConfigResources") - before == 2
