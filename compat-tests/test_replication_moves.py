"""Leader balance and replica moves (issue 12), on network-namespace clusters (netns.py) with
the workload and checker of test_replication.py: an idempotent acks=all producer and a
committing group member run throughout, and at the end the checker must find nothing lost,
duplicated, reordered or moved, and the replicas the same batches.

- `kafka-leader-election --election-type preferred` after a failover gives each partition back
  to its first replica (timed);
- with `leader.imbalance.check.interval.seconds` short, the active controller does it by itself
  (auto.leader.rebalance.enable);
- a reassignment under load moves a partition's replicas (3 nodes, RF 2, {1,2} -> {2,3}; and 4
  nodes, RF 3, {1,2,3} -> {1,2,4}) with Kafka's kafka-reassign-partitions (--generate,
  --execute, --verify), and the removed broker deletes its copy;
- `kafka-reassign-partitions --list` shows a reassignment held in progress (the new replica is
  cut off from the leader), `kafka-topics --describe` its adding and removing replicas, and
  `--cancel` takes it back.

Every wait is a condition with a deadline.
"""

import json
import re
import time

import pytest

from cluster import BROKER, COMBINED, wait_for
from kafka_tools import tool_ok
from netns import make_netns_cluster  # noqa: F401 - the fixture
from test_replication import (
    CREATE_S,
    HEAL_S,
    NODE_SETTINGS,
    PARTITIONS,
    PROGRESS_S,
    Scenario,
    create_topic,
)
from workload import GroupReader, IdempotentProducer, live_brokers, node_metadata, wait_for_full_isr

REBALANCE_INTERVAL_S = 2
BALANCE_S = 20  # leadership back on the first replicas, once they are in the ISR
MOVE_S = 60  # a reassignment under load completes, and the removed broker deletes its copy
FOUR_NODES = {1: COMBINED, 2: COMBINED, 3: COMBINED, 4: BROKER}


def settings(**extra) -> dict:
    return {**NODE_SETTINGS, "auto.leader.rebalance.enable": "false", **extra}


def first_replicas_lead(c, topic: str) -> bool:
    """Every live broker names, for every partition of `topic`, its first replica as leader."""
    for i in live_brokers(c):
        view = node_metadata(c, i).topic(topic)
        if len(view) < PARTITIONS or any(p.leader != p.assignment[0] for p in view.values()):
            return False
    return True


class MoveScenario(Scenario):
    """Scenario with a placement of its own (replication factor `len(assignment[0])`)."""

    def __init__(self, cluster, topic: str, assignment: list[list[int]]):
        super().__init__(cluster, topic, assignment)
        self.rf = len(assignment[0])

    def start(self) -> "MoveScenario":
        create_topic(self.bootstrap, self.topic, self.assignment)
        wait_for_full_isr(self.c, [self.topic], self.rf, CREATE_S, "after creation")
        self.producer = IdempotentProducer(self.bootstrap, self.topic, PARTITIONS, rate=1000)
        self.producer.start()
        self.reader = GroupReader(self.bootstrap, self.topic, self.group)
        self.reader.start()
        self.producer.wait_for_progress(more=30, timeout=PROGRESS_S, what="at the start")
        wait_for(lambda: self.reader.committed, PROGRESS_S, "a first commit of the group")
        return self


def fail_over_and_back(s: Scenario) -> tuple[int, list[int]]:
    """kill -9 of a leader that is not the controller, its partitions re-led, then its restart
    and a full ISR again; it leads nothing until a preferred election."""
    victim, led = s.pick_leader(controller=False)
    s.note(f"kill -9 of node {victim}, leader of {led}")
    s.c.kill9(victim)
    s.wait_for_failover(victim, led)
    s.c.start(victim)
    s.wait_until_healed(f"after node {victim} restarted")
    return victim, led


# ---------------------------------------------------------------------------------------------
# Preferred elections


def test_preferred_election_tool_gives_leadership_back_after_a_failover(make_netns_cluster, topic):  # noqa: F811
    c = make_netns_cluster(overrides=settings())
    s = Scenario(c, topic).start()
    victim, led = fail_over_and_back(s)
    assert not first_replicas_lead(c, topic), "leadership went back without an election"
    started = time.monotonic()
    r = tool_ok("kafka-leader-election", "--bootstrap-server", c.bootstrap, "--election-type", "preferred",
                "--all-topic-partitions")
    elected = re.search(r"Successfully completed leader election \(PREFERRED\) for partitions (.*)", r.stdout)
    assert elected, r
    assert {f"{topic}-{p}" for p in led} <= set(elected[1].split(", ")), r
    wait_for(lambda: first_replicas_lead(c, topic), BALANCE_S, "every partition led by its first replica")
    s.note(f"preferred election: node {victim} leads {led} again {time.monotonic() - started:.1f}s after "
           f"kafka-leader-election started (JVM start included)")
    # Nothing left to do: the same election on one partition is not needed any more.
    r = tool_ok("kafka-leader-election", "--bootstrap-server", c.bootstrap, "--election-type", "preferred",
                "--topic", topic, "--partition", led[0])
    assert r.stdout.strip() == f"Valid replica already elected for partitions {topic}-{led[0]}", r
    s.wait_for_progress(what="after the preferred election")
    s.finish()


def test_auto_leader_rebalance_gives_leadership_back_by_itself(make_netns_cluster, topic):  # noqa: F811
    c = make_netns_cluster(overrides=settings(**{"auto.leader.rebalance.enable": "true",
                                                 "leader.imbalance.check.interval.seconds": REBALANCE_INTERVAL_S}))
    s = Scenario(c, topic).start()
    victim, led = fail_over_and_back(s)
    healed = time.monotonic()
    wait_for(lambda: first_replicas_lead(c, topic), BALANCE_S, "the controller to rebalance leadership")
    s.note(f"auto rebalance (every {REBALANCE_INTERVAL_S}s): node {victim} leads {led} again "
           f"{time.monotonic() - healed:.1f}s after the ISR was full")
    s.wait_for_progress(what="after the rebalance")
    s.finish()


def test_unclean_election_tool_needs_a_leaderless_partition(make_netns_cluster, topic):  # noqa: F811
    c = make_netns_cluster(overrides=settings())
    create_topic(c.bootstrap, topic)
    wait_for_full_isr(c, [topic], 3, CREATE_S, "after creation")
    r = tool_ok("kafka-leader-election", "--bootstrap-server", c.bootstrap, "--election-type", "unclean",
                "--topic", topic, "--partition", 0)
    assert r.stdout.strip() == f"Valid replica already elected for partitions {topic}-0", r


# ---------------------------------------------------------------------------------------------
# Reassignments


def write_json(tmp_path, name: str, value) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


def started_for(r) -> set[str]:
    """The partitions kafka-reassign-partitions --execute says it started moving."""
    m = re.search(r"Successfully started partition reassignments? for (.*)", r.stdout)
    return set(m[1].split(",")) if m else set()


def replicas_seen(c, topic: str, partition: int) -> list[list[int]]:
    return [node_metadata(c, i).topic(topic)[partition].assignment for i in live_brokers(c)]


def holds(c, node: int, topic: str, partition: int) -> bool:
    return (c.node(node).data_dir / f"{topic}-{partition}").exists()


@pytest.mark.parametrize("layout,before,after", [
    pytest.param(None, [1, 2], [2, 3], id="3-nodes-rf2"),
    pytest.param(FOUR_NODES, [1, 2, 3], [1, 2, 4], id="4-nodes-rf3"),
])
def test_reassignment_under_load_moves_replicas_and_loses_nothing(make_netns_cluster, topic, tmp_path,  # noqa: F811
                                                                   layout, before, after):
    c = make_netns_cluster(layout=layout, overrides=settings())
    brokers = c.broker_ids
    # Partitions 0 and 3 are moved; the others are placed on the brokers they keep.
    others = [b for b in brokers if b in after][:len(before)]
    assignment = [before if p % 3 == 0 else others[p % len(others):] + others[:p % len(others)]
                  for p in range(PARTITIONS)]
    s = MoveScenario(c, topic, assignment).start()
    moved = [0, 3]
    removed = [b for b in before if b not in after]

    # --generate proposes a placement on the brokers given (printed, not used).
    to_move = write_json(tmp_path, "topics.json", {"topics": [{"topic": topic}], "version": 1})
    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--generate",
                "--topics-to-move-json-file", to_move, "--broker-list", ",".join(map(str, after)))
    proposed = json.loads(r.stdout.split("Proposed partition reassignment configuration")[1].strip())
    assert all(set(p["replicas"]) <= set(after) for p in proposed["partitions"]), r

    plan = write_json(tmp_path, "plan.json", {"version": 1, "partitions": [
        {"topic": topic, "partition": p, "replicas": after} for p in moved]})
    started = time.monotonic()
    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--execute",
                "--reassignment-json-file", plan)
    assert started_for(r) == {f"{topic}-{p}" for p in moved}, r

    def done():
        return all(v == after for p in moved for v in replicas_seen(c, topic, p)) and \
            not any(holds(c, b, topic, p) for b in removed for p in moved)

    wait_for(done, MOVE_S, f"partitions {moved} moved to {after} and gone from {removed}")
    s.note(f"{before} -> {after} under load: done, removed copies deleted, "
           f"{time.monotonic() - started:.1f}s after --execute started (JVM start included)")
    assert all(holds(c, b, topic, p) for b in after for p in moved)
    wait_for_full_isr(c, [topic], len(after), HEAL_S, "after the move")
    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--verify",
                "--reassignment-json-file", plan)
    for p in moved:
        assert f"Reassignment of partition {topic}-{p} is completed." in r.stdout, r
    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--list")
    assert "No partition reassignments found." in r.stdout, r
    s.wait_for_progress(what="after the move")
    s.finish()


def test_reassignment_in_progress_is_listed_and_cancelled(make_netns_cluster, topic, tmp_path):  # noqa: F811
    """The new replica is cut off from the partition's leader (not from the controller), so
    it cannot catch up and the reassignment stays in progress until cancelled."""
    c = make_netns_cluster(overrides=settings())
    controller = c.active_controller()
    leader, new = [i for i in c.broker_ids if i != controller]
    create_topic(c.bootstrap, topic, [[leader, controller]] * PARTITIONS)
    wait_for_full_isr(c, [topic], 2, CREATE_S, "after creation")
    c.cut(new, leader)
    target = [controller, new]
    plan = write_json(tmp_path, "plan.json", {"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": target}]})
    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--execute",
                "--reassignment-json-file", plan)
    assert started_for(r) == {f"{topic}-0"}, r
    wait_for(lambda: holds(c, new, topic, 0), CREATE_S, f"node {new} to host {topic}-0")

    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--list")
    line = f"{topic}-0: replicas: {controller},{new},{leader}. adding: {new}. removing: {leader}."
    assert "Current partition reassignments:" in r.stdout and line in r.stdout, r
    # Metadata lists every replica, target first, while it lasts; describe shows the move.
    assert replicas_seen(c, topic, 0) == [[controller, new, leader]] * len(c.broker_ids)
    r = tool_ok("kafka-topics", "--bootstrap-server", c.bootstrap, "--describe", "--topic", topic)
    row = next(line for line in r.lines if f"Topic: {topic}\t" in line and "\tPartition: 0\t" in line)
    assert f"Adding Replicas: {new}" in row and f"Removing Replicas: {leader}" in row, r
    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--verify",
                "--preserve-throttles", "--reassignment-json-file", plan)
    assert f"Reassignment of partition {topic}-0 is still in progress." in r.stdout, r

    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--cancel",
                "--reassignment-json-file", plan)
    assert f"Successfully cancelled partition reassignment for: {topic}-0" in r.stdout, r
    # Kafka's revert keeps the original replicas in the order the reassignment wrote them.
    wait_for(lambda: replicas_seen(c, topic, 0) == [[controller, leader]] * len(c.broker_ids), CREATE_S,
             "the original replicas back")
    wait_for(lambda: not holds(c, new, topic, 0), CREATE_S, f"node {new} to delete its copy of {topic}-0")
    r = tool_ok("kafka-reassign-partitions", "--bootstrap-server", c.bootstrap, "--list")
    assert "No partition reassignments found." in r.stdout, r
    c.heal()
    wait_for_full_isr(c, [topic], 2, HEAL_S, "after the cancel")
