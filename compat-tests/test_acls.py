"""Authorization (issue 15): a broker with Kafka's StandardAuthorizer, a SASL_PLAINTEXT listener
with PLAIN users alice (a super user) and bob, and ACLs managed with `kafka-acls`.

Checked with confluent-kafka (librdkafka) and Kafka's Java console tools: bob is refused
produce and consume (TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED) until alice grants
WRITE/READ on a topic prefix and READ on a group; a DENY wins over those ALLOWs; bob's Metadata
lists only the topics he may describe; bob may not manage ACLs, SCRAM credentials or client
quotas; a transactional producer needs WRITE on its id; the Java clients raise
TopicAuthorizationException and GroupAuthorizationException; refusals are counted. And a
3-node cluster whose brokers (User:ANONYMOUS on the PLAINTEXT inter-broker listener) replicate
only once granted CLUSTER_ACTION from their host.
"""

import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import Cluster
from conftest import Broker, admin_config, free_port
from kafka_tools import run_tool, tool_ok

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
WAIT_S = 20.0


class AclBroker(Broker):
    """PLAINTEXT (`port`, where ANONYMOUS may do nothing) and SASL_PLAINTEXT (`sasl_port`)."""

    def __init__(self, data_dir: Path):
        self.sasl_port = free_port()
        super().__init__(
            data_dir,
            {
                "sasl.plain.users": ",".join(f"{u}:{p}" for u, p in USERS.items()),
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:alice",
            },
        )

    def base_settings(self) -> dict:
        settings = super().base_settings()
        settings["listeners"] += f",SASL_PLAINTEXT://{self.host}:{self.sasl_port}"
        return settings

    @property
    def sasl_bootstrap(self) -> str:
        return f"{self.host}:{self.sasl_port}"


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory):
    b = AclBroker(tmp_path_factory.mktemp("sluice-acls") / "data").start()
    try:
        yield b
        b.assert_healthy()
    finally:
        b.kill9()


@pytest.fixture
def names():
    """A prefix of this test's own: every topic and group it names starts with it."""
    return f"acl-{uuid.uuid4().hex[:8]}"


def client(broker: AclBroker, user: str, **extra) -> dict:
    return {
        "bootstrap.servers": broker.sasl_bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": USERS[user],
        "log.connection.close": False,
        **extra,
    }


def properties(tmp_path: Path, user: str) -> str:
    p = tmp_path / f"{user}.properties"
    p.write_text(
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{user}" password="{USERS[user]}";\n'
    )
    return str(p)


def acls(broker: AclBroker, tmp_path: Path, *args, user: str = "alice"):
    return tool_ok("kafka-acls", "--bootstrap-server", broker.sasl_bootstrap,
                   "--command-config", properties(tmp_path, user), *args)


def create_topics(broker: AclBroker, *topics: str) -> None:
    admin = AdminClient(client(broker, "alice"))
    for f in admin.create_topics([NewTopic(t, num_partitions=1) for t in topics]).values():
        f.result(timeout=WAIT_S)


def produce_error(broker: AclBroker, user: str, topic: str, value: bytes = b"v"):
    """Produces one record as `user`; the delivery error (None when delivered)."""
    p = Producer(client(broker, user, **{"message.timeout.ms": 10000, "enable.idempotence": False}))
    errors = []
    p.produce(topic, value, on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(WAIT_S) == 0, "delivery report within the deadline"
    return errors[0]


def consume(broker: AclBroker, user: str, topic: str, group: str, count: int):
    """Consumes `count` records in `group`; (values, the first error seen)."""
    c = Consumer(client(broker, user, **{"group.id": group, "auto.offset.reset": "earliest"}))
    got, error = [], None
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + WAIT_S
        while len(got) < count and error is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                error = m.error()
            else:
                got.append(m.value())
    finally:
        c.close()
    return got, error


def metric(broker: AclBroker, name: str) -> float:
    text = urllib.request.urlopen(f"http://{broker.host}:{broker.metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_bob_is_refused_until_granted_and_a_deny_wins(acl_broker, names, tmp_path):
    orders, frozen, secret, group = f"{names}-orders", f"{names}-frozen", f"secret-{names}", f"{names}-app"
    create_topics(acl_broker, orders, frozen, secret)
    denials_before = metric(acl_broker, "sluice_authorization_denials_total")

    assert produce_error(acl_broker, "bob", orders).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_error(acl_broker, "alice", orders) is None, "alice is a super user"

    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Write",
         "--operation", "Read", "--topic", names, "--resource-pattern-type", "prefixed")
    assert produce_error(acl_broker, "bob", orders, b"from-bob") is None

    got, error = consume(acl_broker, "bob", orders, group, 2)
    assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, (got, error)
    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--group", group)
    got, error = consume(acl_broker, "bob", orders, group, 2)
    assert error is None and got == [b"v", b"from-bob"], (got, error)

    acls(acl_broker, tmp_path, "--add", "--deny-principal", "User:bob", "--operation", "Write", "--topic", frozen)
    assert produce_error(acl_broker, "bob", frozen).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_error(acl_broker, "bob", orders) is None, "the DENY is on the other topic only"

    listed = AdminClient(client(acl_broker, "bob")).list_topics(timeout=WAIT_S).topics
    mine = {t for t in listed if names in t}
    assert mine == {orders, frozen}, f"{secret} is not described to bob: {sorted(listed)}"
    assert listed[frozen].error is None, "a DENY of WRITE leaves the DESCRIBE that READ implies"

    assert metric(acl_broker, "sluice_authorization_denials_total") >= denials_before + 3


def test_bob_may_not_manage_acls_and_alice_lists_and_removes_them(acl_broker, names, tmp_path):
    r = run_tool("kafka-acls", "--bootstrap-server", acl_broker.sasl_bootstrap,
                 "--command-config", properties(tmp_path, "bob"), "--add", "--allow-principal", "User:bob",
                 "--operation", "All", "--cluster")
    assert "ClusterAuthorizationException" in r.stdout + r.stderr, r
    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Describe",
         "--topic", f"{names}-t")
    listed = acls(acl_broker, tmp_path, "--list", "--topic", f"{names}-t")
    assert "(principal=User:bob, host=*, operation=DESCRIBE, permissionType=ALLOW)" in listed.stdout, listed
    acls(acl_broker, tmp_path, "--remove", "--force", "--topic", f"{names}-t")
    listed = acls(acl_broker, tmp_path, "--list", "--topic", f"{names}-t")
    assert "User:bob" not in listed.stdout, listed


def test_java_clients_raise_authorization_exceptions(acl_broker, names, tmp_path):
    topic, group = f"{names}-java", f"{names}-java-group"
    create_topics(acl_broker, topic)
    bob = properties(tmp_path, "bob")
    r = run_tool("kafka-console-producer", "--bootstrap-server", acl_broker.sasl_bootstrap,
                 "--command-config", bob, "--topic", topic, input=b"x\n")
    assert "TopicAuthorizationException" in r.stdout + r.stderr, r

    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Read",
         "--operation", "Write", "--topic", topic)
    tool_ok("kafka-console-producer", "--bootstrap-server", acl_broker.sasl_bootstrap,
            "--command-config", bob, "--topic", topic, input=b"x\n")
    r = run_tool("kafka-console-consumer", "--bootstrap-server", acl_broker.sasl_bootstrap,
                 "--command-config", bob, "--topic", topic, "--group", group, "--from-beginning",
                 "--max-messages", "1", "--timeout-ms", "20000")
    assert "GroupAuthorizationException" in r.stdout + r.stderr, r


def test_cluster_followers_replicate_only_with_cluster_action_from_their_host(tmp_path):
    c = Cluster(tmp_path / "cluster", overrides={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # Clients here are ANONYMOUS too: they may do what no ACL covers (topics), not more.
        "allow.everyone.if.no.acl.found": "true",
    }).start()
    try:
        add = ("kafka-acls", "--bootstrap-server", c.bootstrap, "--add", "--allow-principal", "User:ANONYMOUS")
        # Once the cluster has an ACL, only ACLs say who may alter it (and so manage ACLs).
        tool_ok(*add, "--operation", "Alter", "--cluster", "--allow-host", "127.0.0.1")
        acl = (*add, "--operation", "ClusterAction", "--cluster")
        # Granted from another host only: the brokers' own fetches (from 127.0.0.1) are refused.
        tool_ok(*acl, "--allow-host", "10.9.9.9")
        topic = f"acl-replicated-{uuid.uuid4().hex[:8]}"
        admin = AdminClient(admin_config(c.bootstrap))
        new = NewTopic(topic, num_partitions=1, replication_factor=3, config={"min.insync.replicas": "3"})
        admin.create_topics([new])[topic].result(timeout=WAIT_S)

        def produce_all_acks() -> object:
            p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "message.timeout.ms": 8000,
                          "enable.idempotence": False})
            errors = []
            p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
            assert p.flush(WAIT_S) == 0
            return errors[0]

        assert produce_all_acks() is not None, "no follower may fetch, so acks=all cannot complete"
        refusals = [line for n in c.brokers for line in n.all_logs().splitlines() if "authorization denied" in line]
        assert any("CLUSTER_ACTION" in line and "api=\"Fetch\"" in line for line in refusals), refusals[-5:]
        tool_ok(*acl, "--allow-host", "127.0.0.1")
        assert produce_all_acks() is None, "followers fetch once granted from their host"
        c.assert_healthy()
    finally:
        c.kill_all()


def test_transactional_producer_needs_write_on_its_transactional_id(acl_broker, names, tmp_path):
    topic, txn = f"{names}-txn", f"{names}-producer"
    create_topics(acl_broker, topic)
    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Write", "--topic", topic)

    def init():
        p = Producer(client(acl_broker, "bob", **{"transactional.id": txn, "transaction.timeout.ms": 10000}))
        p.init_transactions(WAIT_S)
        return p

    with pytest.raises(KafkaException) as refused:
        init()
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, refused.value
    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Write",
         "--transactional-id", txn)
    p = init()
    p.begin_transaction()
    p.produce(topic, b"in-txn")
    p.commit_transaction(WAIT_S)
    got, error = consume(acl_broker, "alice", topic, f"{names}-reader", 1)
    assert (got, error) == ([b"in-txn"], None)


def test_bob_may_not_alter_scram_credentials_or_client_quotas(acl_broker, tmp_path):
    configs = ("kafka-configs", "--bootstrap-server", acl_broker.sasl_bootstrap)
    scram = ("--alter", "--add-config", "SCRAM-SHA-256=[iterations=8192,password=pw]", "--entity-type", "users",
             "--entity-name", "carol")
    quota = ("--alter", "--add-config", "producer_byte_rate=1024", "--entity-type", "users", "--entity-name", "carol")
    for change in (scram, quota):
        r = run_tool(*configs, "--command-config", properties(tmp_path, "bob"), *change)
        assert "ClusterAuthorizationException" in r.stdout + r.stderr, r
        tool_ok(*configs, "--command-config", properties(tmp_path, "alice"), *change)


# ---------------------------------------------------------------------------------------------
# Share groups (KIP-932): READ on the group to be a member, DESCRIBE on the subscribed topics,
# READ on the topics fetched, as Kafka's KafkaApis checks them.


def share_group_earliest(broker: AclBroker, group: str) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
    admin = AdminClient(client(broker, "alice"))  # held: its futures fail once it is freed
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(timeout=WAIT_S)


def share_poll(broker: AclBroker, user: str, topic: str, group: str, count: int):
    """Reads `count` records in share group `group` as `user` (librdkafka's ShareConsumer),
    accepting each; (values, the first error seen)."""
    from confluent_kafka import AcknowledgeType, ShareConsumer
    c = ShareConsumer(client(broker, user, **{"group.id": group, "share.acknowledgement.mode": "explicit"}))
    got, error = [], None
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + WAIT_S
        while len(got) < count and error is None and time.monotonic() < deadline:
            try:
                messages = c.poll(0.5)
            except KafkaException as e:
                error = e.args[0]
                break
            for m in messages:
                if m.error():
                    error = error or m.error()
                else:
                    got.append(m.value())
                    c.acknowledge(m, AcknowledgeType.ACCEPT)
            if messages:
                c.commit_sync()
    finally:
        c.close()
    return got, error


def test_share_consumer_needs_read_on_group_and_topic(acl_broker, names, tmp_path):
    topic, group = f"{names}-share", f"{names}-share-group"
    create_topics(acl_broker, topic)
    for i in range(3):
        assert produce_error(acl_broker, "alice", topic, f"s{i}".encode()) is None
    share_group_earliest(acl_broker, group)

    got, error = share_poll(acl_broker, "bob", topic, group, 3)
    assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, (got, error)
    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--group", group)
    got, error = share_poll(acl_broker, "bob", topic, group, 3)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (got, error)
    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--topic", topic)
    got, error = share_poll(acl_broker, "bob", topic, group, 3)
    assert error is None and sorted(got) == [b"s0", b"s1", b"s2"], (got, error)


def test_java_share_consumer_raises_authorization_exceptions(acl_broker, names, tmp_path):
    topic, group = f"{names}-jshare", f"{names}-jshare-group"
    create_topics(acl_broker, topic)
    assert produce_error(acl_broker, "alice", topic, b"j0") is None
    share_group_earliest(acl_broker, group)
    bob = properties(tmp_path, "bob")

    def share_consume():
        return run_tool("kafka-console-share-consumer", "--bootstrap-server", acl_broker.sasl_bootstrap,
                        "--command-config", bob, "--topic", topic, "--group", group,
                        "--max-messages", "1", "--timeout-ms", "20000")

    r = share_consume()
    assert "GroupAuthorizationException" in r.stdout + r.stderr, r
    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--group", group)
    r = share_consume()
    assert "TopicAuthorizationException" in r.stdout + r.stderr, r
    acls(acl_broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--topic", topic)
    r = share_consume()
    assert r.rc == 0 and r.lines == ["j0"], r
