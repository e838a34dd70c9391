"""Admin APIs that Kafka 4's admin clients and tools call, against Sluice with real clients:
config sources of a broker started from the shipped config/sluice.toml (kafka-python),
IncrementalAlterConfigs APPEND/SUBTRACT on cleanup.policy (confluent-kafka)."""

import pytest
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
