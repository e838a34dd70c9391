"""Several log directories on one broker (JBOD, Kafka's KIP-858), with Kafka's own tools.

- a broker with three `log.dirs` spreads a topic's partitions over them (the directory with the
  fewest partitions gets the next one), each directory has a meta.properties with its own
  `directory.id`, and `kafka-log-dirs --describe` shows all three with their partitions;
- `kafka-reassign-partitions --execute` with `log_dirs` in its JSON moves a replica to another
  directory while a producer keeps writing (AlterReplicaLogDirs: a future log caught up in the
  background, then swapped in): every acknowledged record is readable after the move, the old
  directory's copy is gone, and all of it survives a kill -9 and restart;
- a kill -9 while the move is copying leaves the old log whole and serving, the future log gone.
"""

import json

import pytest

from cluster import wait_for
from conftest import (
    Broker,
    StreamingProducer,
    assert_every_ack_is_in_the_log,
    create_topic,
    log_contents,
)
from kafka_tools import run_tool, tool_ok

MOVE_S = 60
MOVE_BYTES_PER_S = 500_000


@pytest.fixture
def jbod_broker(tmp_path_factory):
    root = tmp_path_factory.mktemp("jbod")
    dirs = [root / f"disk{i}" for i in range(3)]
    overrides = {
        "log.dirs": ",".join(str(d) for d in dirs),
        # Slow enough that a move of a few MB is seen in flight, as a future replica.
        "replica.alter.log.dirs.io.max.bytes.per.second": str(MOVE_BYTES_PER_S),
    }
    b = Broker(dirs[0], overrides).start()
    b.log_dirs = dirs
    try:
        yield b
        b.assert_healthy()
    finally:
        b.kill9()


def describe(broker: Broker, topic: str) -> dict:
    """kafka-log-dirs --describe: {log dir: {(partition, is future): size}} of `topic`."""
    r = tool_ok("kafka-log-dirs", "--bootstrap-server", broker.bootstrap, "--describe", "--topic-list", topic)
    (b,) = json.loads(r.lines[-1])["brokers"]
    out = {}
    for d in b["logDirs"]:
        assert d["error"] is None, d
        out[d["logDir"]] = {(p["partition"].rsplit("-", 1)[1], p["isFuture"]): p["size"] for p in d["partitions"]}
    return out


def filled_and_planned(broker: Broker, topic: str, tmp_path):
    """A one-partition topic written with 150k records (a few MB, a move of several seconds at
    the throttle), and the reassignment JSON that moves it to another log dir. Returns the
    source dir, the target dir, the fill's acks and the JSON file."""
    create_topic(broker, topic)
    (source,) = [d for d in broker.log_dirs if (d / f"{topic}-0").exists()]
    target = next(d for d in broker.log_dirs if d != source)
    fill = StreamingProducer(broker.bootstrap, topic)
    fill.start()
    try:
        fill.wait_for_acks(150_000)
    finally:
        fill.finish()
    spec = tmp_path / "move.json"
    spec.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [1], "log_dirs": [str(target)]}]}))
    return source, target, fill.acked, spec


def test_three_log_dirs_share_the_partitions_and_kafka_log_dirs_shows_each(jbod_broker, topic):
    create_topic(jbod_broker, topic, partitions=6)
    shown = describe(jbod_broker, topic)
    # The tool prints the dirs in its map's order, not the broker's.
    assert sorted(shown) == sorted(str(d) for d in jbod_broker.log_dirs), shown
    per_dir = [sorted(p for p, _ in shown[str(d)]) for d in jbod_broker.log_dirs]
    assert sorted(len(p) for p in per_dir) == [2, 2, 2], shown
    assert sorted(sum(per_dir, [])) == [str(i) for i in range(6)], shown
    for d, parts in zip(jbod_broker.log_dirs, per_dir):
        assert sorted(p.name.rsplit("-", 1)[1] for p in d.glob(f"{topic}-*")) == parts
    ids = set()
    for d in jbod_broker.log_dirs:
        props = dict(line.split("=", 1) for line in (d / "meta.properties").read_text().splitlines()
                     if "=" in line and not line.startswith("#"))
        assert props["version"] == "1" and props["node.id"] == "1", props
        assert len(props["directory.id"]) == 22, props
        ids.add(props["directory.id"])
    assert len(ids) == 3, "each log dir has its own directory.id"


def test_reassign_moves_a_replica_between_log_dirs_under_load_and_survives_kill9(jbod_broker, topic, tmp_path):
    source, target, filled, spec = filled_and_planned(jbod_broker, topic, tmp_path)
    # Paced below the move's throttle, so the copy catches up while the writes go on.
    producer = StreamingProducer(jbod_broker.bootstrap, topic, burst_interval_s=0.05)
    producer.start()
    try:
        producer.wait_for_acks(1_000)
        r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", jbod_broker.bootstrap,
                    "--reassignment-json-file", spec, "--execute")
        assert "Successfully started" in r.stdout, r
        in_flight = wait_for(lambda: describe(jbod_broker, topic)[str(target)].get(("0", True)) is not None,
                             MOVE_S, "the future replica in the target log dir")
        assert in_flight

        def moved():
            shown = describe(jbod_broker, topic)
            return shown[str(target)].keys() == {("0", False)} and not shown[str(source)]

        wait_for(moved, MOVE_S, "the replica in the target log dir")
        acked_at_move = len(producer.acked)
        producer.wait_for_acks(acked_at_move + 2_000)  # and it keeps taking writes there
    finally:
        producer.finish()
    assert not producer.failed, producer.errors[:3]
    acked = filled + producer.acked
    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", jbod_broker.bootstrap,
                "--reassignment-json-file", spec, "--verify")
    assert f"Reassignment of replica {topic}-0-1 completed successfully" in r.stdout, r
    wait_for(lambda: not list(source.glob(f"{topic}-0*")), MOVE_S, "the old copy removed")
    check_log(acked, log_contents(jbod_broker, topic))

    jbod_broker.kill9()
    jbod_broker.start()
    assert (target / f"{topic}-0").is_dir() and not (source / f"{topic}-0").exists()
    check_log(acked, log_contents(jbod_broker, topic))
    assert list(describe(jbod_broker, topic)[str(target)]) == [("0", False)]


def test_a_kill9_in_the_middle_of_a_move_leaves_the_partition_whole(jbod_broker, topic, tmp_path):
    source, target, filled, spec = filled_and_planned(jbod_broker, topic, tmp_path)
    tool_ok("kafka-reassign-partitions", "--bootstrap-server", jbod_broker.bootstrap,
            "--reassignment-json-file", spec, "--execute")
    wait_for(lambda: list(target.glob(f"{topic}-0.*-future")), MOVE_S, "a future log in the target dir")
    jbod_broker.kill9()
    jbod_broker.start()
    # The move had not swapped: the old log serves, the future one is gone.
    assert (source / f"{topic}-0").is_dir()
    assert not list(target.glob(f"{topic}-0*"))
    check_log(filled, log_contents(jbod_broker, topic))
    assert list(describe(jbod_broker, topic)[str(source)]) == [("0", False)]


def check_log(acked, log):
    """Offsets contiguous from 0, each acknowledged record at its offset (two producers wrote
    the same `seq-n` values, so order and uniqueness of values are not checked)."""
    assert [o for o, _ in log] == list(range(len(log)))
    assert_every_ack_is_in_the_log(acked, log)


def test_a_move_to_a_directory_that_is_not_a_log_dir_is_refused(jbod_broker, topic, tmp_path):
    create_topic(jbod_broker, topic)
    spec = tmp_path / "move.json"
    spec.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [1], "log_dirs": [str(tmp_path / "elsewhere")]}]}))
    r = run_tool("kafka-reassign-partitions", "--bootstrap-server", jbod_broker.bootstrap,
                 "--reassignment-json-file", spec, "--execute")
    assert "LogDirNotFoundException" in r.stdout + r.stderr, r
    assert not (tmp_path / "elsewhere").exists()
