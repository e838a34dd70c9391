"""Admin APIs that Kafka 4's admin clients and tools call, against Sluice with real clients:
config sources of a broker started from the shipped config/sluice.toml (kafka-python)."""

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from conftest import REPO, Broker

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


def kafka_python_configs(bootstrap: str, resource: ConfigResource) -> dict:
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
        shipped_broker.bootstrap, ConfigResource(ConfigResourceType.TOPIC, "shipped-defaults")
    )
    for name in ("retention.bytes", "retention.ms", "segment.bytes", "cleanup.policy"):
        assert topic[name]["config_source"] == CONFIG_SOURCE_DEFAULT, (name, topic[name])
    broker = kafka_python_configs(shipped_broker.bootstrap, ConfigResource(ConfigResourceType.BROKER, "1"))
    assert broker["log.retention.bytes"]["config_source"] == CONFIG_SOURCE_DEFAULT
    assert broker["num.partitions"]["config_source"] == CONFIG_SOURCE_DEFAULT
    # The test's own --override settings are the operator's: static.
    assert broker["log.dirs"]["config_source"] == CONFIG_SOURCE_STATIC_BROKER
