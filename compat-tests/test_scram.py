"""SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (issue 15): one broker with a SASL_PLAINTEXT listener
that enables only the SCRAM mechanisms, its first admin credentials from
`sasl.scram.bootstrap.credentials` (Kafka's `kafka-storage format --add-scram`), driven by
confluent-kafka (librdkafka), kafka-python and Apache Kafka's own tools with a ScramLoginModule
JAAS config.

Checked: produce and consume with each mechanism; `kafka-configs --alter --add-config
'SCRAM-SHA-256=[iterations=8192,password=...]' --entity-type users` creating a user who then
authenticates, `--describe` listing the credential, a wrong password refused with
SASL_AUTHENTICATION_FAILED, deleting the credential refusing later logins, credentials
surviving a restart (they are in the metadata log), and, on a 3-node cluster, a credential made
through one node authenticating at every node (the records are replayed everywhere).
"""

import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from cluster import Cluster, ClusterNode, wait_for
from kafka_tools import console_round_trip, tool_ok
from conftest import Broker, consume_range, delivered_offsets, free_port, produce_all, producer_config, unique_topic

ADMIN = ("admin", "admin-secret")
WAIT_S = 20.0


SCRAM_SETTINGS = {
    "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
    "sasl.scram.bootstrap.credentials": (
        f"SCRAM-SHA-256=[name={ADMIN[0]},password={ADMIN[1]}];"
        f"SCRAM-SHA-512=[name={ADMIN[0]},iterations=8192,password={ADMIN[1]}]"
    ),
}


class SaslListener:
    """Mixed into a broker: a SASL_PLAINTEXT listener besides its PLAINTEXT (inter-broker) one."""

    def __init__(self, *args, **kwargs):
        self.sasl_port = free_port()
        super().__init__(*args, **kwargs)

    def base_settings(self) -> dict:
        settings = super().base_settings()
        settings["listeners"] += f",SASL_PLAINTEXT://{self.host}:{self.sasl_port}"
        return settings

    @property
    def sasl_bootstrap(self) -> str:
        return f"{self.host}:{self.sasl_port}"


class ScramBroker(SaslListener, Broker):
    """PLAINTEXT (`port`) and a SASL_PLAINTEXT listener with SCRAM only."""

    def __init__(self, data_dir: Path):
        super().__init__(data_dir, SCRAM_SETTINGS)


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory):
    b = ScramBroker(tmp_path_factory.mktemp("sluice-scram") / "data").start()
    try:
        yield b
        b.assert_healthy()
    finally:
        b.kill9()


def scram(mechanism: str, user: str, password: str) -> dict:
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def java_properties(d: Path, mechanism: str, user: str, password: str) -> Path:
    props = d / f"{user}-{mechanism}.properties"
    props.write_text(
        "security.protocol=SASL_PLAINTEXT\n"
        f"sasl.mechanism={mechanism}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";\n'
    )
    return props


def kafka_configs(broker: ScramBroker, props: Path, *args: str):
    return tool_ok(
        "kafka-configs", "--bootstrap-server", broker.sasl_bootstrap, "--command-config", str(props), *args
    )


def produce_one(broker: ScramBroker, settings: dict, value: bytes) -> list[int]:
    topic = unique_topic("scram")
    return delivered_offsets(produce_all(Producer(producer_config(broker.sasl_bootstrap, **settings)), topic, [value]))


def authentication_errors(broker: ScramBroker, settings: dict) -> list:
    """The errors a producer with `settings` reports until one is an authentication failure."""
    errors = []
    p = Producer(producer_config(broker.sasl_bootstrap, **settings, error_cb=lambda e: errors.append(e)))
    deadline = time.monotonic() + WAIT_S
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        p.poll(0.1)
    return errors


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_bootstrap_admin_produces_and_consumes_with_each_mechanism(scram_broker, mechanism):
    settings = scram(mechanism, *ADMIN)
    topic = unique_topic(f"scram-{mechanism}")
    p = Producer(producer_config(scram_broker.sasl_bootstrap, **settings))
    values = [f"{mechanism}-{i}".encode() for i in range(100)]
    assert delivered_offsets(produce_all(p, topic, values)) == list(range(100))
    got = consume_range(scram_broker.sasl_bootstrap, topic, 0, 0, 100, **settings)
    assert [m.value() for m in got] == values


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_python_authenticates_with_its_own_scram(scram_broker, mechanism):
    # kafka-python computes SCRAM in Python: a second client implementation of the exchange.
    from kafka import KafkaProducer

    p = KafkaProducer(
        bootstrap_servers=scram_broker.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=ADMIN[0],
        sasl_plain_password=ADMIN[1],
        request_timeout_ms=10000,
    )
    try:
        meta = p.send(unique_topic("kafka-python-scram"), b"hello").get(timeout=20)
        assert meta.offset == 0
    finally:
        p.close()


def test_kafka_configs_creates_a_user_who_then_authenticates(scram_broker, tmp_path):
    admin = java_properties(tmp_path, "SCRAM-SHA-512", *ADMIN)
    out = kafka_configs(
        scram_broker, admin, "--alter", "--add-config", "SCRAM-SHA-256=[iterations=8192,password=alice-secret]",
        "--entity-type", "users", "--entity-name", "alice",
    )
    assert "Completed updating config for user alice." in out.stdout, out
    # Answered once this broker has the credential: alice authenticates at once.
    assert produce_one(scram_broker, scram("SCRAM-SHA-256", "alice", "alice-secret"), b"hello") == [0]
    described = kafka_configs(scram_broker, admin, "--describe", "--entity-type", "users", "--entity-name", "alice")
    assert "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192" in described.stdout
    every = kafka_configs(scram_broker, admin, "--describe", "--entity-type", "users")
    assert "user-principal 'admin' are SCRAM-SHA-256=iterations=4096, SCRAM-SHA-512=iterations=8192" in every.stdout
    # alice has no SCRAM-SHA-512 credential.
    errors = authentication_errors(scram_broker, scram("SCRAM-SHA-512", "alice", "alice-secret"))
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


def test_wrong_password_is_sasl_authentication_failed(scram_broker):
    errors = authentication_errors(scram_broker, scram("SCRAM-SHA-256", ADMIN[0], "not-the-password"))
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert any("invalid credentials with SASL mechanism SCRAM-SHA-256" in e.str() for e in errors), errors
    assert scram_broker.running()


def test_deleted_credential_refuses_later_logins(scram_broker, tmp_path):
    admin = java_properties(tmp_path, "SCRAM-SHA-256", *ADMIN)
    kafka_configs(
        scram_broker, admin, "--alter", "--add-config", "SCRAM-SHA-512=[password=carol-secret]",
        "--entity-type", "users", "--entity-name", "carol",
    )
    carol = scram("SCRAM-SHA-512", "carol", "carol-secret")
    assert produce_one(scram_broker, carol, b"before") == [0]
    kafka_configs(
        scram_broker, admin, "--alter", "--delete-config", "SCRAM-SHA-512", "--entity-type", "users", "--entity-name", "carol",
    )
    errors = authentication_errors(scram_broker, carol)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


def test_console_tools_with_a_scram_login_module(scram_broker, tmp_path):
    props = java_properties(tmp_path, "SCRAM-SHA-512", *ADMIN)
    topic = unique_topic("console-scram")
    console_round_trip(scram_broker.sasl_bootstrap, props, topic)


def test_credentials_survive_a_restart(scram_broker, tmp_path):
    admin = java_properties(tmp_path, "SCRAM-SHA-256", *ADMIN)
    kafka_configs(
        scram_broker, admin, "--alter", "--add-config", "SCRAM-SHA-256=[password=dan-secret]",
        "--entity-type", "users", "--entity-name", "dan",
    )
    scram_broker.restart()
    assert produce_one(scram_broker, scram("SCRAM-SHA-256", "dan", "dan-secret"), b"after restart") == [0]


class ScramClusterNode(SaslListener, ClusterNode):
    """A cluster node with a SCRAM listener besides its PLAINTEXT (inter-broker) one."""


class ScramCluster(Cluster):
    def new_node(self, node_id, roles, data_dir, overrides):
        return ScramClusterNode(node_id, roles, data_dir, overrides)


def authenticates_at(node: ScramClusterNode, user: str, password: str) -> bool:
    """Whether `user` logs in at this node alone (a Metadata request over SCRAM-SHA-256)."""
    admin = AdminClient({"bootstrap.servers": node.sasl_bootstrap, **scram("SCRAM-SHA-256", user, password)})
    try:
        admin.list_topics(timeout=5)
        return True
    except KafkaException:
        return False


def test_a_credential_made_through_one_node_authenticates_at_every_node(tmp_path):
    cluster = ScramCluster(tmp_path / "cluster", overrides=SCRAM_SETTINGS).start()
    try:
        # Through node 1's PLAINTEXT listener (test_listeners.py has SASL clients reaching
        # every node through one).
        tool_ok(
            "kafka-configs", "--bootstrap-server", cluster.node(1).bootstrap, "--alter",
            "--add-config", "SCRAM-SHA-256=[password=erin-secret]", "--entity-type", "users", "--entity-name", "erin",
        )
        for node in cluster.nodes.values():
            wait_for(lambda: authenticates_at(node, "erin", "erin-secret"), 20, f"erin logging in at node {node.node_id}")
            assert not authenticates_at(node, "erin", "wrong-secret")
        cluster.assert_healthy()
    finally:
        cluster.kill_all()
