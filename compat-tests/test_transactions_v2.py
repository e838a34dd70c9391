"""Transactions v2 (KIP-890 part 2) against Sluice, with Kafka 4.4's Java client and tools.

A new Sluice cluster finalizes `transaction.version` 2, as Kafka 4's `kafka-storage format`
does, and the Java client then speaks transactions v2: no AddPartitionsToTxn or
AddOffsetsToTxn of its own (the partition leaders and the group coordinator add the
partitions: Produce v12+, TxnOffsetCommit v5), EndTxn v5, whose answer is the epoch the
coordinator bumped at that end. The proof is in what the broker served (its request metrics)
and in the epochs: DescribeTransactions and DescribeProducers (the markers' epoch on each
partition) advance by one per transaction. `kafka-features downgrade` to 0 puts the same client
back on the classic protocol (epochs stay put) and `upgrade` to 2 brings v2 back.

librdkafka and franz-go stay on the classic protocol with v2 finalized: test_transactions.py
and test_franz_go.py run against the same kind of new cluster.
"""

import re
import uuid

import pytest

from conftest import broker_fixture
from kafka_tools import run_tool, tool_ok
from test_cluster import make_cluster  # noqa: F401 - the fixture of clusters of a test's own
from test_java_client import requests_served, run_scenario
from test_transactions import CLUSTER_SETTINGS, coordinator_partition

OVERRIDES = {"group.initial.rebalance.delay.ms": 0}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-txn-v2", OVERRIDES)


@pytest.fixture
def own_broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-txn-v2-own", OVERRIDES)


def transaction_version(broker) -> str:
    r = tool_ok("kafka-features", "--bootstrap-server", broker.bootstrap, "describe")
    line = re.search(r"^Feature: transaction\.version\s+(.*)$", r.stdout, re.M)
    assert line, f"kafka-features describe lists no transaction.version:\n{r}"
    return line.group(1)


def served(r: dict, api: str) -> dict[int, int]:
    """How many requests of `api` the broker served during the scenario, by version."""
    out = {}
    for key, n in r["_apis"].items():
        name, version = key.rsplit(" v", 1)
        if name == api:
            out[int(version)] = n
    return out


def check_v2_epochs(r: dict):
    after = r["after"]
    assert [a["step"] for a in after] == ["init", "commit", "abort", "commit"]
    first = after[0]["epoch"]
    assert after[0]["partitionEpochs"] == {"0": -1, "1": -1}, "nothing written yet"
    for i, a in enumerate(after[1:], start=1):
        assert a["producerId"] == after[0]["producerId"]
        assert a["epoch"] == first + i, f"EndTxn v5 bumps the epoch at every end: {after}"
        assert a["partitionEpochs"] == {"0": first + i, "1": first + i}, f"markers at the bumped epoch: {after}"
    assert [a["state"] for a in after[1:]] == ["COMPLETE_COMMIT", "COMPLETE_ABORT", "COMPLETE_COMMIT"]


def check_classic_epochs(r: dict):
    after = r["after"]
    first = after[0]["epoch"]
    assert [a["epoch"] for a in after] == [first] * 4, f"the classic protocol keeps the epoch: {after}"
    assert [a["partitionEpochs"] for a in after[1:]] == [{"0": first, "1": first}] * 3, after


def check_read_back(r: dict):
    assert r["readCommitted"] == ["tx0-p0", "tx2-p0"]
    assert r["groupOffset"] == 7, "the offsets committed with the last transaction"


def test_a_new_cluster_finalizes_transaction_version_2(broker):
    assert re.search(r"SupportedMinVersion: 0\s+SupportedMaxVersion: 2\s+FinalizedVersionLevel: 2\b",
                     transaction_version(broker))


def test_java_producer_speaks_transactions_v2_and_every_end_bumps_the_epoch(broker):
    r = run_scenario(broker, "transaction_epochs")
    assert served(r, "EndTxn") == {5: 3}, r["_apis"]
    assert served(r, "AddPartitionsToTxn") == {} and served(r, "AddOffsetsToTxn") == {}, (
        f"a v2 client adds no partitions itself: {r['_apis']}")
    assert served(r, "TxnOffsetCommit") == {5: 1}, r["_apis"]
    assert all(v >= 12 for v in served(r, "Produce")), r["_apis"]
    check_v2_epochs(r)
    check_read_back(r)


def test_a_zombie_is_fenced_under_transactions_v2(broker):
    r = run_scenario(broker, "transaction_zombie")
    # The zombie's open transaction is aborted at epoch+2 (fence, then the v2 end's own bump),
    # and the new instance's InitProducerId then gets epoch+3 (a fresh, Empty transaction).
    fence = r["afterFence"]
    assert (fence["state"], fence["epoch"]) == ("EMPTY", 3), fence
    assert fence["partitionEpochs"]["0"] == 2, f"the abort marker at the fenced end's epoch: {fence}"
    fenced = {"ProducerFencedException", "InvalidProducerEpochException"}
    assert r["zombieSend"].get("error") in fenced | {"KafkaException"}, r["zombieSend"]
    assert r["zombieCommit"].get("error") in fenced | {"KafkaException", "IllegalStateException"}, r["zombieCommit"]
    assert r["readCommitted"] == ["fresh"], "nothing of the zombie's"


def test_downgrade_puts_the_client_on_the_classic_protocol_and_upgrade_brings_v2_back(own_broker):
    tool_ok("kafka-features", "--bootstrap-server", own_broker.bootstrap, "downgrade",
            "--feature", "transaction.version=0")
    assert "FinalizedVersionLevel: 0" in transaction_version(own_broker) or \
        "FinalizedVersionLevel: -" in transaction_version(own_broker)
    classic = run_scenario(own_broker, "transaction_epochs")
    assert served(classic, "EndTxn") and max(served(classic, "EndTxn")) <= 4, classic["_apis"]
    assert served(classic, "AddPartitionsToTxn") and served(classic, "AddOffsetsToTxn"), classic["_apis"]
    check_classic_epochs(classic)
    check_read_back(classic)

    tool_ok("kafka-features", "--bootstrap-server", own_broker.bootstrap, "upgrade",
            "--feature", "transaction.version=2")
    assert "FinalizedVersionLevel: 2" in transaction_version(own_broker)
    v2 = run_scenario(own_broker, "transaction_epochs")
    assert served(v2, "EndTxn") == {5: 3}, v2["_apis"]
    check_v2_epochs(v2)
    check_read_back(v2)


def test_features_refuses_a_level_sluice_does_not_support(broker):
    r = run_tool("kafka-features", "--bootstrap-server", broker.bootstrap, "upgrade",
                 "--feature", "transaction.version=3")
    assert r.rc != 0 and "Invalid update version 3 for feature transaction.version" in r.stdout + r.stderr, r


def test_three_nodes_leaders_add_partitions_through_another_brokers_coordinator(make_cluster):  # noqa: F811
    """The partitions' leaders and the group's coordinator are mostly not the transaction's
    coordinator: they add the partitions with AddPartitionsToTxn v5 over the network."""
    c = make_cluster(overrides=CLUSTER_SETTINGS)
    prefix = f"java-txv-cluster-{uuid.uuid4().hex[:8]}"
    before = {n.node_id: requests_served(n) for n in c.running_brokers()}
    r = run_scenario(c.node(1), "transaction_epochs", prefix=prefix, rf=3)
    check_v2_epochs(r)
    check_read_back(r)
    coordinator = c.leaders("__transaction_state", via=1)[coordinator_partition(f"{prefix}-txv-id", CLUSTER_SETTINGS["transaction.state.log.num.partitions"])]
    leaders = set(c.leaders(f"{prefix}-txv", via=1).values())
    adds = sum((requests_served(n) - before[n.node_id])[("AddPartitionsToTxn", 5)] for n in c.running_brokers())
    if leaders - {coordinator}:
        assert adds > 0, f"leaders {leaders}, coordinator {coordinator}: no AddPartitionsToTxn v5 served"
    legacy = sum((requests_served(n) - before[n.node_id])[("AddPartitionsToTxn", v)] for n in c.running_brokers()
                 for v in range(5))
    assert legacy == 0, "the client added no partition itself"


def test_perf_producer_commits_every_100_ms_under_load_with_transactions_v2(broker):
    """Kafka's perf tool flat out with a commit every 100 ms: pipelined batches of each new
    transaction reach the leaders while the last one's markers are still being written, and
    must wait for their coordinator's add and land in sequence (a regression: the first
    batch of an epoch after a marker's bump must be sequence 0)."""
    topic = f"txv-perf-{uuid.uuid4().hex[:8]}"
    tool_ok("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", topic, "--partitions", 8)
    r = tool_ok("kafka-producer-perf-test", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                "--num-records", 60000, "--record-size", 1024, "--throughput", -1,
                "--transactional-id", f"{topic}-id", "--transaction-duration-ms", 100,
                "--command-property", "acks=all", "linger.ms=5", timeout=150)
    assert re.search(r"^60000 records sent", r.stdout, re.M), r
    ends = tool_ok("kafka-transactions", "--bootstrap-server", broker.bootstrap, "describe",
                   "--transactional-id", f"{topic}-id")
    assert "CompleteCommit" in ends.stdout, ends
