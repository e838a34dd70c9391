"""kafkajs (Node.js, npm) against Sluice: admin calls, a consumer group reading keyed records
with headers, the idempotent producer, gzip, two members sharing a topic, and committed offsets
resumed by the next member.

Each test runs one scenario of `kafkajs/scenario.js` with `node` (kafkajs installed there by
`make test-deps`, `npm ci`) and checks the JSON it prints. The script has its own hard
timeout; the subprocess has another one on top. `node` missing is a failure, not a skip.
"""

import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import broker_fixture, stored_batches

KAFKAJS_DIR = Path(__file__).with_name("kafkajs")
SCRIPT = KAFKAJS_DIR / "scenario.js"
SCRIPT_TIMEOUT_S = 25  # inside the script
PROCESS_TIMEOUT_S = SCRIPT_TIMEOUT_S + 10


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-kafkajs", {"group.initial.rebalance.delay.ms": 0})


def run_scenario(broker, name: str) -> dict:
    node = shutil.which("node")
    assert node, "node is not on PATH (kafkajs tests need Node.js; see compat-tests/README.md)"
    assert (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir(), "kafkajs not installed: run `make test-deps`"
    env = {**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"}
    try:
        proc = subprocess.run(
            [node, str(SCRIPT), broker.bootstrap, name, str(SCRIPT_TIMEOUT_S)],
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT_S,
            env=env,
            cwd=KAFKAJS_DIR,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"scenario {name} did not exit within {PROCESS_TIMEOUT_S}s; stderr:\n{e.stderr}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"scenario {name} printed no JSON (exit {proc.returncode}); stderr:\n{proc.stderr[-4000:]}"
    out = json.loads(lines[-1])
    assert proc.returncode == 0 and "error" not in out, (
        f"scenario {name} failed (exit {proc.returncode}): {out.get('error')}\n"
        f"{out.get('stack', '')}\nstderr:\n{proc.stderr[-4000:]}"
    )
    return out


def by_partition(records) -> dict[int, list]:
    out = defaultdict(list)
    for r in records:
        out[r["partition"]].append(r)
    return dict(out)


def assert_each_partition_reads_back_in_order(sent, got, fields=("value",)):
    """Every sent record arrives exactly once, in the order sent within its partition, at
    contiguous offsets from 0."""
    sent_p, got_p = by_partition(sent), by_partition(got)
    assert sorted(got_p) == sorted(sent_p)
    for p, records in sent_p.items():
        read = got_p[p]
        assert [r["offset"] for r in read] == list(range(len(records))), f"partition {p}: offsets"
        for f in fields:
            assert [r[f] for r in read] == [r[f] for r in records], f"partition {p}: {f}"


def test_admin_topics_configs_partitions_groups(broker):
    """createTopics / fetchTopicMetadata / describeConfigs / createPartitions / listGroups /
    describeGroups / fetchOffsets / deleteGroups / deleteTopics."""
    out = run_scenario(broker, "admin")
    r = out["result"]
    assert r["created"] is True
    assert r["createdAgain"] is False  # TOPIC_ALREADY_EXISTS, which kafkajs reports as false
    [meta] = r["metadata"]
    assert [p["partitionId"] for p in meta["partitions"]] == [0, 1]
    assert all(p["leader"] == 1 and p["replicas"] == [1] and p["isr"] == [1] for p in meta["partitions"]), meta
    assert r["listTopicsHas"] is True

    [cfg] = r["configs"]
    assert cfg["errorCode"] == 0
    e = cfg["entries"]
    assert e["retention.ms"] == {"value": "3600000", "isDefault": False, "configSource": 1}  # TOPIC_CONFIG
    assert e["max.message.bytes"] == {"value": "500000", "isDefault": False, "configSource": 1}
    assert e["cleanup.policy"]["value"] == "delete" and e["cleanup.policy"]["isDefault"] is True
    assert e["cleanup.policy"]["configSource"] == 5  # DEFAULT_CONFIG

    assert r["retentionAfterAlter"] == "7200000", "alterConfigs replaced the override"
    assert r["partitionsAfterGrow"] == 4
    assert r["shrink"] == "INVALID_PARTITIONS"

    assert r["listGroupsWhileStable"] == [
        {"groupId": r["describeWhileStable"]["groupId"], "protocolType": "consumer"}
    ]
    d = r["describeWhileStable"]
    assert d["errorCode"] == 0 and d["state"] == "Stable" and d["members"] == 1
    assert d["protocolType"] == "consumer" and d["protocol"] == "RoundRobinAssigner"
    assert d["memberClientId"] == "sluice-compat-admin"
    assert r["describeOnceEmpty"] == {"state": "Empty", "members": 0, "errorCode": 0}
    [offs] = r["fetchOffsets"]
    assert offs["partitions"] == [
        {"partition": 0, "offset": "3"},
        {"partition": 1, "offset": "3"},
        {"partition": 2, "offset": "-1"},
        {"partition": 3, "offset": "-1"},
    ]
    assert r["deleteGroups"] == [{"groupId": d["groupId"], "errorCode": 0}]
    assert r["describeAfterDelete"] == {"state": "Dead", "members": 0}
    assert r["fetchOffsetsAfterDelete"] == ["-1", "-1", "-1", "-1"]
    assert r["topicOffsets"] == [
        {"partition": 0, "low": "0", "high": "3"},
        {"partition": 1, "low": "0", "high": "3"},
        {"partition": 2, "low": "0", "high": "0"},
        {"partition": 3, "low": "0", "high": "0"},
    ]
    assert r["listTopicsHasAfterDelete"] is False
    # kafkajs retries UNKNOWN_TOPIC_OR_PARTITION, then gives up
    assert r["deleteAgain"] == "UNKNOWN_TOPIC_OR_PARTITION"


def test_group_member_reads_every_keyed_record_with_headers_once_in_order(broker):
    r = run_scenario(broker, "produce_consume")["result"]
    assert len(r["got"]) == len(r["sent"]) == 3 * 31 + 1
    assert_each_partition_reads_back_in_order(r["sent"], r["got"], fields=("key", "value", "headers"))
    assert [a["baseOffset"] for a in r["lastAck"]] == ["30"]  # partition 1: 30 records before it


def test_idempotent_producer(broker):
    out = run_scenario(broker, "idempotent")
    assert out["versions"].get("InitProducerId"), out["versions"]
    r = out["result"]
    assert_each_partition_reads_back_in_order(r["sent"], r["got"])
    batches = [b for p in (0, 1) for b in stored_batches(broker, r["topic"], p)]
    assert batches and {b["producer_id"] for b in batches} != {-1}
    assert len({b["producer_id"] for b in batches}) == 1, batches
    for p in (0, 1):
        seqs = [(b["base_sequence"], b["records"]) for b in stored_batches(broker, r["topic"], p)]
        expected, nxt = [], 0
        for _, n in seqs:
            expected.append((nxt, n))
            nxt += n
        assert seqs == expected, f"partition {p}: sequences not contiguous from 0: {seqs}"


def test_gzip_batches_are_stored_gzip_and_read_back(broker):
    r = run_scenario(broker, "gzip")["result"]
    got = [dict(g, partition=0) for g in r["got"]]
    sent = [dict(s, partition=0) for s in r["sent"]]
    assert_each_partition_reads_back_in_order(sent, got, fields=("key", "value", "headers"))
    batches = stored_batches(broker, r["topic"])
    assert [b["codec"] for b in batches] == ["gzip"] * 3, batches
    assert [b["records"] for b in batches] == [50, 50, 50]


def test_two_members_share_four_partitions(broker):
    r = run_scenario(broker, "two_members")["result"]
    topic = r["topic"]
    final = [m["joins"][-1] for m in r["members"]]
    assert final[0]["leaderId"] == final[1]["leaderId"] in {m["joins"][-1]["memberId"] for m in r["members"]}
    owned = [sorted(j["assignment"].get(topic, [])) for j in final]
    assert owned[0] and owned[1], owned
    assert sorted(owned[0] + owned[1]) == [0, 1, 2, 3], owned  # each partition owned by exactly one
    assert sum(j["isLeader"] for j in final) == 1
    for m, mine in zip(r["members"], owned):
        assert {g["partition"] for g in m["got"]} <= set(mine)
    got = [g for m in r["members"] for g in m["got"]]
    assert_each_partition_reads_back_in_order(r["sent"], sorted(got, key=lambda g: (g["partition"], g["offset"])))
    assert r["describe"] == {"state": "Stable", "members": 2, "protocol": "RoundRobinAssigner"}


def test_next_member_resumes_at_committed_offsets(broker):
    r = run_scenario(broker, "resume")["result"]
    assert_each_partition_reads_back_in_order(r["first"], r["gotFirst"])
    assert r["committed"] == [{"partition": 0, "offset": "10"}, {"partition": 1, "offset": "10"}]
    second = by_partition(r["gotSecond"])
    assert sorted(second) == [0, 1]
    for p, read in second.items():
        assert [g["offset"] for g in read] == list(range(10, 15)), f"partition {p}"
        assert [g["value"] for g in read] == [s["value"] for s in r["second"] if s["partition"] == p]
    assert r["committedAfter"] == [{"partition": 0, "offset": "15"}, {"partition": 1, "offset": "15"}]
