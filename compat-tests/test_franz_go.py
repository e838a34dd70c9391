"""franz-go (Go; kgo and kadm from the Go module proxy) against Sluice: every codec, the
idempotent producer, acks 0/1, a cooperative-sticky group that loses a member midway, and kadm's
topic, config, offset and group administration. What Sluice does not serve yet (transactions,
KIP-848 groups, ACLs) is written too, as strict xfails naming the issue.

Each test runs one scenario of the Go program in `go/` (built once per session when its
sources are newer than the binary; `make test-deps-go` builds it too) and checks the JSON it
prints. The program has its own hard timeout; the subprocess has another one on top. `go`
missing is a failure, not a skip. Every expected value here, the xfails' included, is what
Apache Kafka 4.4.0 answered to the same program.
"""

import base64
import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import Broker, broker_fixture, stored_batches

GO_DIR = Path(__file__).with_name("go")
BINARY = GO_DIR / "bin" / "franz-compat"
SCENARIO_TIMEOUT_S = 30  # inside the program
BUILD_TIMEOUT_S = 600
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def go_tool() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    assert go, "go is not on PATH nor in /usr/local/go/bin (the franz-go tests need Go; see compat-tests/README.md)"
    return go


@pytest.fixture(scope="session")
def franz_bin() -> Path:
    """The scenario binary, rebuilt when any of go/*.go, go.mod, go.sum is newer."""
    sources = [*GO_DIR.glob("*.go"), GO_DIR / "go.mod", GO_DIR / "go.sum"]
    newest = max(s.stat().st_mtime for s in sources)
    if not BINARY.exists() or BINARY.stat().st_mtime < newest:
        proc = subprocess.run(
            [go_tool(), "build", "-buildvcs=false", "-o", str(BINARY.relative_to(GO_DIR)), "."],
            cwd=GO_DIR,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        assert proc.returncode == 0, f"go build failed:\n{proc.stdout}\n{proc.stderr}"
        BINARY.touch()  # go leaves an up-to-date binary untouched; its mtime marks the build
    return BINARY


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-franz-go", {"group.initial.rebalance.delay.ms": 0})


def run_scenario(franz_bin, broker, name: str, *args: str, timeout: int = SCENARIO_TIMEOUT_S) -> dict:
    """Runs one scenario; returns its `result`, failing with its error (and what it had seen)."""
    cmd = [str(franz_bin), f"-timeout={timeout}s", broker.bootstrap, name, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 15)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"scenario {name} did not exit within {timeout + 15}s; stderr:\n{e.stderr}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"scenario {name} printed no JSON (exit {proc.returncode}); stderr:\n{proc.stderr[-4000:]}"
    out = json.loads(lines[-1])
    if proc.returncode != 0 or "error" in out:
        partial = json.dumps(out.get("partial"))[:3000]
        raise AssertionError(
            f"scenario {name} failed (exit {proc.returncode}): {out.get('error')}\n"
            f"seen so far: {partial}\nstderr:\n{proc.stderr[-3000:]}"
        )
    result = out["result"]
    result["_versions"] = out["versions"]
    return result


def b64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


def by_partition(records) -> dict[int, list]:
    out = defaultdict(list)
    for r in records:
        out[r["partition"]].append(r)
    return dict(out)


RECORD_FIELDS = ("offset", "key", "value", "headers", "timestamp")


def assert_read_back_exactly(sent, got):
    """Every partition reads back exactly what was sent: same records, same order, offsets
    contiguous from 0, keys / values / headers (null and empty kept apart) and timestamps."""
    sent_p, got_p = by_partition(sent), by_partition(got)
    assert sorted(got_p) == sorted(sent_p), f"partitions read {sorted(got_p)} != written {sorted(sent_p)}"
    for p, records in sent_p.items():
        read = got_p[p]
        assert [r["offset"] for r in records] == list(range(len(records))), f"partition {p}: acked offsets"
        assert len(read) == len(records), f"partition {p}: read {len(read)} records, wrote {len(records)}"
        for s, g in zip(records, read):
            for f in RECORD_FIELDS:
                assert g[f] == s[f], f"partition {p} offset {s['offset']}: {f} read {g[f]!r}, wrote {s[f]!r}"


# ---------------------------------------------------------------------------------------------
# Producing and consuming


@pytest.mark.parametrize("codec", list(CODECS))
def test_each_codec_round_trips_keys_headers_and_timestamps(franz_bin, broker, codec):
    """franz-go's default producer (idempotent, acks=all) with `ProducerBatchCompression`: one
    batch per partition of 30 records (null, empty and 100 KB values, null and empty keys,
    repeated / empty / null header values, explicit timestamps), read back exactly, stored with
    that codec, and reported with it to the consumer."""
    r = run_scenario(franz_bin, broker, "produce_consume", codec)
    assert_read_back_exactly(r["sent"], r["got"])
    some = r["got"][0]
    assert (some["key"] is not None, r["got"][3]["key"], r["got"][4]["key"]) == (True, None, ""), "keys: null / empty"
    assert (r["got"][5]["value"], r["got"][6]["value"]) == (None, ""), "values: null / empty"
    assert {"key": "null", "value": None} in some["headers"]
    assert len(b64(r["got"][29]["value"])) > 100_000
    assert {g["codec"] for g in r["got"]} == {CODECS[codec]}, "codec of the batches the consumer got"
    for p in range(3):
        batches = stored_batches(broker, r["topic"], p)
        assert [b["codec"] for b in batches] == [codec] * len(batches), f"partition {p}: stored {batches}"
        assert sum(b["records"] for b in batches) == 30


def test_idempotent_producer_acks_all(franz_bin, broker):
    """Three ProduceSync rounds onto 3 partitions: one producer id, sequences contiguous from 0
    in the stored batches, everything read back once; DescribeProducers shows the producer."""
    r = run_scenario(franz_bin, broker, "idempotent")
    assert r["_versions"].get("InitProducerID"), r["_versions"]
    assert_read_back_exactly(r["sent"], r["got"])
    pid, epoch = r["producer_id"], r["producer_epoch"]
    assert pid >= 0 and epoch >= 0, (pid, epoch)
    for p in range(3):
        batches = stored_batches(broker, r["topic"], p)
        assert {(b["producer_id"], b["producer_epoch"]) for b in batches} == {(pid, epoch)}, batches
        expected, nxt = [], 0
        for b in batches:
            expected.append(nxt)
            nxt += b["records"]
        assert [b["base_sequence"] for b in batches] == expected, f"partition {p}: sequences not contiguous from 0"
        assert nxt == 60
    described = sorted(r["describe_producers"], key=lambda d: d["partition"])
    assert [
        (d["partition"], d.get("error"), d["producer_id"], d["producer_epoch"], d["last_sequence"])
        for d in described
    ] == [(p, None, pid, epoch, 59) for p in range(3)], described
    assert all(d["current_txn_start_offset"] == -1 and d["coordinator_epoch"] == -1 for d in described), described


def test_acks_0_and_1(franz_bin, broker):
    """A non-idempotent producer with acks=0, then one with acks=1: all 20 records in order."""
    r = run_scenario(franz_bin, broker, "acks")
    assert r["offsets_acks_1"] == list(range(10, 20))
    got = r["got"]
    assert [g["offset"] for g in got] == list(range(20))
    assert [b64(g["value"]) for g in got] == [b64(s["value"]) for s in r["sent"]]


# ---------------------------------------------------------------------------------------------
# A cooperative-sticky consumer group


def replay_ownership(events, consumed):
    """Replays the members' assign / revoke / lost callbacks in the order they happened: no
    partition is ever assigned to a member while another owns it, and every record was read by
    a member that owned its partition at the time. Returns each member's ownership history."""
    owner: dict[int, int] = {}
    history = defaultdict(list)
    by_seq = sorted([("e", e["seq"], e) for e in events] + [("c", c["seq"], c) for c in consumed], key=lambda x: x[1])
    for kind, s, x in by_seq:
        if kind == "e":
            m, parts = x["member"], x["partitions"] or []
            for p in parts:
                if x["kind"] == "assigned":
                    assert p not in owner, (
                        f"partition {p} assigned to member {m} (event {s}) while member {owner[p]} still owns it"
                    )
                    owner[p] = m
                else:
                    assert owner.get(p) == m, f"member {m} {x['kind']} partition {p} it did not own (event {s})"
                    del owner[p]
            history[m].append((s, x["kind"], parts))
        else:
            assert owner.get(x["partition"]) == x["member"], (
                f"member {x['member']} read {x['partition']}@{x['offset']} (seq {s}) while the owner was "
                f"{owner.get(x['partition'])}"
            )
    return history


def test_cooperative_sticky_group_survives_a_member_leaving_midway(franz_bin, broker):
    """Three members (kgo's CooperativeStickyBalancer, manual commits after each poll,
    rebalances only between polls) on 6 partitions while a producer writes; member 2 leaves
    midway, the others take its partitions without giving up their own; every record is read
    exactly once; the group's commits end at the log ends; a new member resumes there."""
    r = run_scenario(franz_bin, broker, "group", timeout=60)
    assert not r["errors"], f"commit / fetch errors in members: {r['errors']}"
    assert not r["produce_errors"], r["produce_errors"]

    d3 = r["describe_three"]
    assert (d3["state"], d3["protocol_type"], d3["protocol"]) == ("Stable", "consumer", "cooperative-sticky")
    first = {m["client_id"]: m["assigned"] for m in d3["members"]}
    assert sorted(p for ps in first.values() for p in ps) == list(range(6)), d3
    assert all(len(ps) == 2 for ps in first.values()), d3

    d2 = r["describe_two"]
    assert (d2["state"], d2["protocol"]) == ("Stable", "cooperative-sticky")
    second = {m["client_id"]: m["assigned"] for m in d2["members"]}
    assert sorted(second) == ["sluice-compat-member-0", "sluice-compat-member-1"]
    assert sorted(p for ps in second.values() for p in ps) == list(range(6)), d2
    for client, parts in second.items():
        assert set(first[client]) <= set(parts), f"{client} lost partitions in the leave: {first[client]} -> {parts}"
        # cooperative members announce what they own in JoinGroup; the leader balanced from that
        owned_in_join = next(m["owned_in_join"] for m in d2["members"] if m["client_id"] == client)
        assert set(owned_in_join) == set(first[client]), (client, owned_in_join, first[client])

    history = replay_ownership(r["events"], r["consumed"])  # members 0-2, then the resuming member 3
    for m in (0, 1):
        revoked_between = [
            h for h in history[m] if r["stable_three_seq"] < h[0] < r["stable_two_seq"] and h[1] != "assigned" and h[2]
        ]
        assert not revoked_between, f"member {m} gave up partitions when member 2 left: {revoked_between}"
    assert not any(h[1] == "lost" and h[2] for hs in history.values() for h in hs), "partitions lost (session expiry?)"

    produced = {(p["partition"], p["offset"]): p["value"] for p in r["produced"]}
    assert len(produced) == len(r["produced"]) >= r["produced_at_leave"] + 300
    stream = [c for c in r["consumed"] if c["member"] != 3]
    seen = defaultdict(list)
    for c in stream:
        seen[(c["partition"], c["offset"])].append(c)
    missing = sorted(set(produced) - set(seen))
    assert not missing, f"{len(missing)} produced records never consumed, first {missing[:10]}"
    twice = {k: [c["member"] for c in v] for k, v in seen.items() if len(v) > 1}
    assert not twice, f"{len(twice)} records consumed more than once (commits lost?), first {list(twice.items())[:10]}"
    assert set(seen) == set(produced), "consumed records that were never produced"
    assert all(seen[k][0]["value"] == v for k, v in produced.items())
    by_member = defaultdict(int)
    for c in stream:
        by_member[c["member"]] += 1
    assert all(by_member[m] > 0 for m in range(3)), dict(by_member)

    ends = {int(p): o for p, o in r["end_offsets"].items()}
    committed = {int(p): o for p, o in r["committed"].items()}
    assert committed == ends, f"group commits {committed} != log ends {ends}"
    assert r["describe_after_leaves"]["state"] == "Empty"

    after = by_partition(r["produced_after"])
    resumed = by_partition(r["resumed"])
    assert sorted(resumed) == list(range(6))
    for p, recs in after.items():
        assert [c["offset"] for c in resumed[p]] == [a["offset"] for a in recs], (
            f"partition {p}: the new member read {[c['offset'] for c in resumed[p]]}, expected to resume at "
            f"the commit {ends[p]}"
        )
        assert recs[0]["offset"] == ends[p]
    assert {int(p): o for p, o in r["committed_final"].items()} == {p: ends[p] + 5 for p in ends}


# ---------------------------------------------------------------------------------------------
# kadm: topics, partitions, configs (one scenario run, checked by several tests)


@pytest.fixture(scope="module")
def admin_topics(franz_bin, broker):
    return run_scenario(franz_bin, broker, "admin_topics")


API_KEYS = {"Metadata": 3, "CreateTopics": 19, "DeleteTopics": 20, "DescribeConfigs": 32, "AlterConfigs": 33,
            "CreatePartitions": 37, "IncrementalAlterConfigs": 44}


def test_admin_cluster_and_api_versions(admin_topics, broker):
    """BrokerMetadata names this broker and the controller; kadm's ApiVersions lists the APIs,
    and every admin request franz-go sent was at a version the broker advertised."""
    r = admin_topics
    assert r["brokers"] == [{"node_id": 1, "host": "127.0.0.1", "port": broker.port}]
    assert r["controller"] == 1, r["controller"]
    assert r["cluster_id"], "no cluster id"
    apis = {int(k): tuple(v) for k, v in r["api_versions"].items()}
    assert {0, 1, 2, 3, 18} <= set(apis) and all(lo <= hi for lo, hi in apis.values()), apis
    for name, versions in r["_versions"].items():
        if name in API_KEYS:
            lo, hi = apis[API_KEYS[name]]
            assert all(lo <= v <= hi for v in versions), f"{name} sent at {versions}, advertised {lo}..{hi}"


def test_admin_create_topics(admin_topics):
    r = admin_topics
    c = r["create"]
    assert (c["error"], c["partitions"], c["rf"]) == ("", 3, 1), c
    assert c["id"] != "0" * 32, "CreateTopics gave no topic id"
    assert c["id"] == r["metadata"]["id"], "CreateTopics and Metadata disagree on the topic id"
    assert c["configs"]["retention.ms"] == {"value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG"}
    assert c["configs"]["max.message.bytes"] == {"value": "500000", "source": "DYNAMIC_TOPIC_CONFIG"}
    assert c["configs"]["cleanup.policy"] == {"value": "delete", "source": "DEFAULT_CONFIG"}
    assert r["create_again"] == "TOPIC_ALREADY_EXISTS"
    assert r["validate_only"] == {"error": "", "partitions": 2}
    assert r["listed_has_topic"] and not r["listed_has_validate_only"], "validate-only created the topic"
    assert r["create_rf3"] == "INVALID_REPLICATION_FACTOR"
    assert not r["listed_has_bad_rf"], "the refused RF=3 topic exists"
    assert r["create_bad_config"] == "INVALID_CONFIG"
    assert not r["listed_has_bad_config"], "the refused bad-config topic exists"
    assert r["create_defaults"] == {"error": "", "partitions": 1, "rf": 1}  # num.partitions, default.replication.factor
    assert not r["listed_has_consumer_offsets"], "ListTopics (internal topics excluded) lists __consumer_offsets"
    assert r["consumer_offsets"] == {"internal": True, "partitions": 50, "error": ""}
    parts = r["metadata"]["partitions"]
    assert parts == {str(p): {"leader": 1, "replicas": [1], "isr": [1], "error": ""} for p in range(3)}


def test_admin_create_partitions(admin_topics):
    r = admin_topics
    assert (r["grow"], r["validate_grow"]) == ("", "")
    assert r["shrink"] == "INVALID_PARTITIONS"
    assert sorted(r["metadata_after_grow"]["partitions"], key=int) == [str(p) for p in range(5)]


def value_source(configs, name):
    return configs[name]["value"], configs[name]["source"]


def test_admin_describe_topic_configs(admin_topics):
    r = admin_topics
    c = r["configs"]
    assert r["configs_error"] == ""
    assert value_source(c, "retention.ms") == ("3600000", "DYNAMIC_TOPIC_CONFIG")
    assert c["retention.ms"]["synonyms"][0] == "DYNAMIC_TOPIC_CONFIG:retention.ms=3600000"
    assert value_source(c, "cleanup.policy") == ("delete", "DEFAULT_CONFIG")
    assert value_source(c, "segment.bytes") == ("1073741824", "DEFAULT_CONFIG")
    assert r["configs_unknown_topic_error"] == "UNKNOWN_TOPIC_OR_PARTITION"


def test_admin_incremental_alter_configs_set_and_delete(admin_topics):
    r = admin_topics
    assert r["alter_incremental"] == [""]
    c = r["configs_after_incremental"]
    assert value_source(c, "retention.ms") == ("7200000", "DYNAMIC_TOPIC_CONFIG")
    assert value_source(c, "segment.ms") == ("86400000", "DYNAMIC_TOPIC_CONFIG")
    assert value_source(c, "max.message.bytes") == ("1048588", "DEFAULT_CONFIG"), "DELETE restores the default"


def test_admin_incremental_alter_configs_append_to_a_list_without_override(admin_topics):
    """APPEND `compact` to cleanup.policy, which has no override: Kafka appends to the
    config's default (`delete`), giving `delete,compact` (the KRaft controller's
    ConfigurationControlManager starts from the schema default when there is no value)."""
    c = admin_topics["configs_after_incremental"]
    assert value_source(c, "cleanup.policy") == ("delete,compact", "DYNAMIC_TOPIC_CONFIG")


def test_admin_incremental_alter_configs_subtract_validate_and_errors(admin_topics):
    r = admin_topics
    assert (r["alter_set_list"], r["alter_subtract"]) == ([""], [""])
    assert value_source(r["configs_after_subtract"], "cleanup.policy") == ("delete", "DYNAMIC_TOPIC_CONFIG")
    assert r["alter_append_non_list"] == ["INVALID_CONFIG"], "APPEND to a non-list config"
    assert r["alter_validate_only"] == [""]
    assert r["alter_bad_value"] == ["INVALID_CONFIG"]
    assert r["alter_unknown_name"] == ["INVALID_CONFIG"]
    assert r["alter_unknown_topic"] == ["UNKNOWN_TOPIC_OR_PARTITION"]
    after = r["configs_after_failed_alters"]
    assert value_source(after, "retention.ms") == ("7200000", "DYNAMIC_TOPIC_CONFIG"), (
        "validate-only or a failed alter changed it"
    )


def test_admin_alter_configs_replaces_every_override(admin_topics):
    r = admin_topics
    assert r["alter_state"] == [""]
    c = r["configs_after_state"]
    assert value_source(c, "segment.bytes") == ("10485760", "DYNAMIC_TOPIC_CONFIG")
    overrides = sorted(k for k, v in c.items() if v["source"] == "DYNAMIC_TOPIC_CONFIG")
    assert overrides == ["segment.bytes"], "legacy AlterConfigs keeps only the overrides it names"
    assert value_source(c, "retention.ms") == ("604800000", "DEFAULT_CONFIG")


def test_admin_describe_broker_configs(admin_topics):
    [b] = admin_topics["broker_configs"]
    assert (b["name"], b["error"]) == ("1", "")
    c = b["configs"]
    assert value_source(c, "num.partitions") == ("1", "DEFAULT_CONFIG")
    assert value_source(c, "group.initial.rebalance.delay.ms") == ("0", "STATIC_BROKER_CONFIG")


def test_admin_describe_cluster_wide_default_broker_configs(admin_topics):
    """DescribeConfigs of the BROKER resource named "" (what kadm's DescribeBrokerConfigs sends
    when no broker is named) lists only the cluster-wide dynamic defaults (`kafka-configs
    --entity-default`; Kafka 4.4's controller sets min.insync.replicas there), never the
    broker's static or default settings."""
    [b] = admin_topics["cluster_default_broker_configs"]
    assert (b["name"], b["error"]) == ("", "")
    others = sorted(k for k, v in b["configs"].items() if v["source"] != "DYNAMIC_DEFAULT_BROKER_CONFIG")
    assert not others, (
        f"{len(others)} entries that are not cluster-wide dynamic defaults, e.g. "
        f"{[(k, b['configs'][k]['source']) for k in others[:4]]}"
    )


def test_admin_delete_topics(admin_topics):
    r = admin_topics
    assert r["delete"] == ["", ""]
    assert r["delete_again"] == "UNKNOWN_TOPIC_OR_PARTITION"


# ---------------------------------------------------------------------------------------------
# kadm: offsets and groups


def test_admin_list_offsets(franz_bin, broker):
    """ListStartOffsets / ListEndOffsets / ListCommittedOffsets / ListMaxTimestampOffsets /
    ListOffsetsAfterMilli on a partition of 10 records a second apart (but #6, an hour ahead)
    and an empty one."""
    r = run_scenario(franz_bin, broker, "admin_offsets")
    base = r["base_ms"]

    def view(name):
        return {int(p): (o["offset"], o["timestamp"], o["error"]) for p, o in r[name].items()}

    assert {p: o[0] for p, o in view("start").items()} == {0: 0, 1: 0}
    assert {p: o[0] for p, o in view("end").items()} == {0: 10, 1: 0}
    assert {p: o[0] for p, o in view("committed").items()} == {0: 10, 1: 0}, "last stable offsets"
    assert view("max_timestamp") == {0: (6, base + 3_600_000, ""), 1: (-1, -1, "")}
    assert view("after_base")[0] == (0, base, "")
    assert view("after_3500")[0] == (4, base + 4000, "")
    assert view("after_20s")[0] == (6, base + 3_600_000, "")
    assert view("after_2h")[0][0] == 10, "after every record: kadm falls back to the end offset"
    assert all(view(n)[1][0] == 0 for n in ("after_base", "after_3500", "after_20s", "after_2h"))
    assert view("unknown_topic") == {-1: (0, 0, "UNKNOWN_TOPIC_OR_PARTITION")}


def test_admin_groups_offsets_lag_and_deletion(franz_bin, broker):
    """A member reads and commits; ListGroups (all, by state, by type) / DescribeGroups /
    FindGroupCoordinators / FetchOffsets / Lag while it is active; an admin CommitOffsets and
    DeleteGroups refused while it is; once it leaves: a reset (CommitOffsets with metadata),
    DeleteOffsets, a new member starting where the offsets say, DeleteGroups."""
    r = run_scenario(franz_bin, broker, "admin_groups")
    topic = r["topic"]
    assert r["member_read"] == 20
    for key in ("list_all", "list_stable", "list_classic"):
        expected = {"state": "Stable", "protocol_type": "consumer", "group_type": "classic", "coordinator": 1}
        assert r[key] == expected, key
    assert r["list_empty_filter"] is None, "a Stable group listed under the Empty filter"
    d = r["describe_active"]
    assert (d["state"], d["protocol_type"], d["protocol"]) == ("Stable", "consumer", "range")
    assert [(m["client_id"], m["assigned"]) for m in d["members"]] == [("sluice-compat-group-admin-member", [0, 1])]
    assert r["coordinator"] == {"node": 1, "error": ""}
    fetched = r["fetch_active"][topic]
    assert {p: (o["at"], o["error"]) for p, o in fetched.items()} == {"0": (10, ""), "1": (10, "")}
    lag = r["lag_active"]
    assert (lag["state"], lag["total"], lag["describe_error"], lag["fetch_error"]) == ("Stable", 0, "", "")
    assert {p: (v["commit"], v["end"], v["lag"], v["member"]) for p, v in lag["partitions"].items()} == {
        "0": (10, 10, 0, "sluice-compat-group-admin-member"),
        "1": (10, 10, 0, "sluice-compat-group-admin-member"),
    }
    refused = {p: o["error"] for p, o in r["commit_while_active"][topic].items()}
    assert refused == {"0": "UNKNOWN_MEMBER_ID", "1": "UNKNOWN_MEMBER_ID"}, "admin commit to an active group"
    assert r["delete_while_active"] == "NON_EMPTY_GROUP"

    assert (r["describe_empty"]["state"], r["describe_empty"]["members"]) == ("Empty", None)
    assert r["list_empty"]["state"] == "Empty"
    assert all(o["error"] == "" for o in r["commit_reset"][topic].values())
    reset = r["fetch_after_reset"][topic]
    assert {p: (o["at"], o["metadata"]) for p, o in reset.items()} == {"0": (5, "reset by kadm"), "1": (0, "")}
    lag = r["lag_after_reset"]
    assert (lag["state"], lag["total"]) == ("Empty", 15)
    lags = {p: (v["commit"], v["end"], v["lag"]) for p, v in lag["partitions"].items()}
    assert lags == {"0": (5, 10, 5), "1": (0, 10, 10)}
    assert r["delete_offsets"] == ""
    assert sorted(r["fetch_after_delete_offsets"][topic]) == ["0"], "OffsetDelete left partition 1's commit"
    assert r["resumed_first"] == {"0": 5, "1": 0} and r["resumed_count"] == 15

    assert r["delete"] == ""
    assert r["describe_deleted"]["state"] == "Dead"
    assert r["fetch_deleted"] == {}, "offsets left after DeleteGroups"
    assert "fetch_deleted_error" not in r, r.get("fetch_deleted_error")
    assert r["list_deleted"] is None
    assert r["delete_again"] == "GROUP_ID_NOT_FOUND"
    # DescribeGroups v6+ (Kafka 4.0+) says GROUP_ID_NOT_FOUND; up to v5, Dead and no error
    assert r["describe_unknown"]["state"] == "Dead", r["describe_unknown"]
    assert r["describe_unknown"].get("error", "") in ("", "GROUP_ID_NOT_FOUND"), r["describe_unknown"]


# ---------------------------------------------------------------------------------------------
# Not served yet: each xfail names the issue that brings it.


def test_transactions_and_group_transact_session(franz_bin, broker):
    """A transactional producer commits 5 records and aborts 3: read_committed reads the 5,
    read_uncommitted all 8, the LSO is the end; a GroupTransactSession moves the 5 to another
    topic with its offsets in the same transaction."""
    r = run_scenario(franz_bin, broker, "transactions")
    assert [b64(g["value"]) for g in r["read_committed"]] == [f"committed {i}".encode() for i in range(5)]
    assert len(r["read_uncommitted"]) == 8
    end = r["end_offsets"]["0"]["offset"]
    assert end == 10, "5 + commit marker + 3 + abort marker"
    assert r["last_stable_offsets"]["0"]["offset"] == end
    assert r["describe_transaction"] == {"state": "CompleteAbort", "error": ""}
    assert r["moved"] == 5
    assert [b64(g["value"]) for g in r["output"]] == [f"moved committed {i}".encode() for i in range(5)]
    # the session commits the position after the last record it read (5), or past the markers
    # and the aborted records after them (10)
    assert r["group_offsets"][r["input"]]["0"]["at"] in (5, 10), r["group_offsets"]


def test_kip848_consumer_group(franz_bin, broker):
    """Two members with kgo.ServerSideBalancer: a KIP-848 `consumer` group, server-side range
    assignor, both members sharing the 4 partitions."""
    r = run_scenario(franz_bin, broker, "kip848")
    hb = r["consumer_group_heartbeat"]
    assert hb["served"] and hb["max"] >= 1, f"ConsumerGroupHeartbeat v1 not advertised: {hb}"
    assert r["consumed"] == 20
    assert r.get("listed_as_consumer", {}).get("group_type") == "consumer", r
    d = r.get("described")
    assert d, f"ConsumerGroupDescribe failed: {r.get('describe_consumer_groups_error')}"
    described = (d["state"], d["assignor"], d["members"], d["assigned"], d["error"])
    assert described == ("Stable", "range", 2, [0, 1, 2, 3], "")


def test_delete_records(franz_bin, broker):
    r = run_scenario(franz_bin, broker, "delete_records")
    assert r["delete"] == {"low_watermark": 4, "error": ""}
    assert r["start_after"]["0"]["offset"] == 4
    assert [g["offset"] for g in r["read"]] == list(range(4, 10))
    assert r["delete_beyond_end"] == "OFFSET_OUT_OF_RANGE"


def test_acls(franz_bin, tmp_path):
    """CreateACLs / DescribeACLs / DeleteACLs on a broker configured as Kafka needs for them: an
    authorizer, and the PLAINTEXT listener's ANONYMOUS principal a super user."""
    own = Broker(
        tmp_path / "data",
        {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:ANONYMOUS",
        },
    )
    try:
        own.start()
        r = run_scenario(franz_bin, own, "acls")
        assert r["create"] == [""]
        assert r["described"] == [f"User:alice@* ALLOW READ TOPIC:{r['topic']}"]
        assert r["deleted"] == 1
        assert r["described_after_delete"] == []
        own.assert_healthy()
    finally:
        own.kill9()
