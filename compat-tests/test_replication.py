"""Replication under failures (issue 12): three broker+controller nodes, each in a network
namespace of its own (netns.py), a topic of 6 partitions with replication factor 3 and
min.insync.replicas=2 (every node leads two), and throughout each test an idempotent acks=all
producer (confluent-kafka, unique values `p0-<seq>`, about 1,000 records/s) and a consumer group
member committing every half second. A fault is applied, once or more, while they run; then
everything is healed, every partition must get a live leader and a full ISR again, the
producer is stopped and every partition read whole. The checker (checker.py) must find nothing
lost, duplicated, reordered or moved and no failed delivery; the replicas must hold the same
batches on disk; the group must resume at or after the offsets it was told were committed.

The faults, as Jepsen and Kafka's own system tests apply them:
- kill -9 of a partition leader, then a restart (a non-controller, then the active controller);
- SIGSTOP of a leader for longer than broker.session.timeout.ms, then SIGCONT: the zombie must
  acknowledge nothing, neither the producer's requests in flight when it froze nor a request sent
  straight to it while frozen;
- a clean SIGTERM bounce of a leader (twice);
- a follower killed and restarted (on a topic it leads no partition of): it truncates and
  catches up;
- a network partition cutting a leader off from the two other nodes but not from the clients:
  the majority elects new leaders and keeps serving, the isolated leader acknowledges no acks=all
  write sent straight to it, and after the heal it rejoins as a follower (what it appended alone
  is gone);
- two of the three brokers down (two extra controller-only voters keep the metadata quorum, so
  that the ISR can shrink): acks=all answers NOT_ENOUGH_REPLICAS, the producer retries,
  nothing is acknowledged meanwhile, and nothing acknowledged is lost once they are back;
- and how long after a dead leader's fencing its partitions have new leaders (printed).

These tests define replication as done (no xfail); compat-tests/README.md says where they stand.

REPLICATION_SELFTEST=1 runs the same scenarios on replication factor 1 / min ISR 1 without the
settings a broker without replication refuses, and without the expectations only replication can
meet (failover while the fault lasts, zombie and NOT_ENOUGH_REPLICAS probes): a check of the
harness, the network partitions, the workload and the checker against today's binary.
"""

import os
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from checker import check
from cluster import COMBINED, CONTROLLER, wait_for
from conftest import admin_config
from netns import make_netns_cluster  # noqa: F401 - the fixture
from workload import (
    CLIENT_LOG,
    NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    GroupReader,
    IdempotentProducer,
    RawProduce,
    agreed_leaders,
    group_resume_problems,
    agreed_controller,
    leaders_seen_by,
    live_brokers,
    node_metadata,
    read_all,
    replica_divergence,
    wait_for_full_isr,
)

SELFTEST = os.environ.get("REPLICATION_SELFTEST") == "1"
REPLICATED = not SELFTEST
RF, MIN_ISR = (1, 1) if SELFTEST else (3, 2)
PARTITIONS = 6
RATE = 1000  # records/s from the producer
OFFSETS = "__consumer_offsets"

SESSION_TIMEOUT_MS = 3000
# Every node's settings, in one place: short timeouts so that each fault plays out in seconds.
# A broker refuses to start on a setting it does not know, naming it: adjust here if a name
# differs. replica.lag.time.max.ms comes with replication (issue 12).
NODE_SETTINGS = {
    "broker.session.timeout.ms": SESSION_TIMEOUT_MS,
    "broker.heartbeat.interval.ms": 500,
    "replica.lag.time.max.ms": 5000,
    "default.replication.factor": RF,
    "min.insync.replicas": MIN_ISR,  # the cluster default: __consumer_offsets gets it too
    "offsets.topic.replication.factor": RF,
    "offsets.topic.num.partitions": 6,
    "group.initial.rebalance.delay.ms": 0,
}
NEW_WITH_REPLICATION = {"replica.lag.time.max.ms"}  # left out by REPLICATION_SELFTEST
if SELFTEST:
    NODE_SETTINGS = {k: v for k, v in NODE_SETTINGS.items() if k not in NEW_WITH_REPLICATION}

# Deadlines (each a bound on a wait for a condition, never a sleep).
# A silent broker fenced (after a new controller is elected, if it was the controller), and
# every survivor knowing it.
FENCE_S = SESSION_TIMEOUT_MS / 1000 + 7
FAILOVER_S = FENCE_S + 5  # its partitions led by survivors, as every survivor says
ELECTION_AFTER_FENCING_S = 3.0  # new leaders named this soon after the fencing is seen
CREATE_S = 15  # a new topic: a leader and a full ISR for every partition (replicas start in sync)
HEAL_S = 45  # after the fault ends: a live leader and a full ISR for every partition
PROGRESS_S = 40  # the producer's acknowledgements resume on the partitions named
NER_S = FENCE_S + 10  # two brokers down: NOT_ENOUGH_REPLICAS from the survivor
FAULT_ROUNDS = 2

# Layout of the two-brokers-down test: three combined nodes as everywhere, and two
# controller-only voters so that with two brokers down the metadata quorum (3 of 5) still
# stands and the controller can shrink the ISR (without one, Kafka too would time out
# acks=all instead of answering NOT_ENOUGH_REPLICAS).
FIVE_VOTERS = {1: COMBINED, 2: COMBINED, 3: COMBINED, 4: CONTROLLER, 5: CONTROLLER}


def create_topic(bootstrap: str, topic: str, assignment: list[list[int]] | None = None) -> None:
    """PARTITIONS partitions of RF replicas (or as `assignment` places them), min ISR MIN_ISR.
    The admin client ends with this call: one kept alive by a failed test's traceback would go
    on connecting to the addresses of a cluster long gone."""
    admin = AdminClient({**admin_config(bootstrap), "logger": CLIENT_LOG})
    config = {"min.insync.replicas": str(MIN_ISR)}
    if assignment:
        new = NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment, config=config)
    else:
        new = NewTopic(topic, num_partitions=PARTITIONS, replication_factor=RF, config=config)
    admin.create_topics([new])[topic].result(timeout=20)


def assert_replicas_agree(c, topic: str, timeout: float = 20) -> None:
    """Every replica of every partition holds the same batches on disk (offsets, epochs, CRCs)."""
    replicas = {p: part.replicas for p, part in node_metadata(c, c.broker_ids[0]).topic(topic).items()}
    problems: list[str] = []

    def same_batches():
        nonlocal problems
        problems = replica_divergence(c, topic, replicas)
        return not problems

    try:
        wait_for(same_batches, timeout, "every replica to hold the same batches")
    except AssertionError as e:
        raise AssertionError(f"{e}: {problems}") from None


# ---------------------------------------------------------------------------------------------
# One scenario: a cluster, its topic, the workload, the checks at the end


class Scenario:
    def __init__(self, cluster, topic: str, assignment: list[list[int]] | None = None):
        self.c = cluster
        self.topic = topic
        self.group = f"{topic}-group"
        self.assignment = assignment
        self.probes: list[RawProduce] = []  # raw acks=all requests that must never be acknowledged
        self.must_vanish: list[RawProduce] = []  # ... and whose values must not be in the final log
        self.notes: list[str] = []  # timings and facts, printed with the result
        self.producer: IdempotentProducer | None = None
        self.reader: GroupReader | None = None
        cluster.teardown_hooks.append(self.abandon)  # whatever happens, nothing outlives the test

    @property
    def bootstrap(self) -> str:
        return self.c.bootstrap

    def start(self) -> "Scenario":
        create_topic(self.bootstrap, self.topic, self.assignment)
        wait_for_full_isr(self.c, [self.topic], RF, CREATE_S, "after creation")
        self.producer = IdempotentProducer(self.bootstrap, self.topic, PARTITIONS, rate=RATE)
        self.producer.start()
        self.reader = GroupReader(self.bootstrap, self.topic, self.group)
        self.reader.start()
        self.producer.wait_for_progress(more=30, timeout=PROGRESS_S, what="at the start")
        wait_for(lambda: self.reader.committed, PROGRESS_S, "a first commit of the group")
        return self

    def note(self, line: str) -> None:
        """A timing or fact: printed as it happens (pytest shows it with a failure) and again
        with the checker's report."""
        print(line)
        self.notes.append(line)

    # -- who leads what

    def leaders(self) -> dict[int, int]:
        return agreed_leaders(self.c, self.topic)

    def pick_leader(self, controller: bool) -> tuple[int, list[int]]:
        """A node leading partitions of the topic: the active controller, or one that is not it;
        with the partitions it leads."""
        leaders = self.leaders()
        if set(self.c.voter_ids) <= set(self.c.broker_ids):
            active = agreed_controller(self.c, live_brokers(self.c))
        else:  # the active controller is a controller-only node: every broker is a plain one
            assert not controller, "the controller leads no partition in this layout"
            active = None
        candidates = [active] if controller else [i for i in self.c.broker_ids if i != active]
        for node in candidates:
            led = sorted(p for p, leader in leaders.items() if leader == node)
            if led:
                return node, led
        raise AssertionError(f"no {'controller' if controller else 'non-controller'} leader: leaders {leaders}, "
                             f"controller {active}")

    def wait_for_failover(self, gone: int, partitions: list[int], timeout: float = FAILOVER_S) -> dict[int, int]:
        """Until every live broker but `gone` names, for each of `partitions`, a leader other
        than `gone` (and not -1). Only with replication: with RF 1 they have no other replica."""
        if not REPLICATED:
            return {}
        survivors = [i for i in live_brokers(self.c) if i != gone]

        def moved():
            views = [leaders_seen_by(self.c, i, self.topic) for i in survivors]
            ok = all(v[p] not in (gone, -1) for v in views for p in partitions)
            return views[0] if ok else None

        started = time.monotonic()
        leaders = wait_for(moved, timeout, f"partitions {partitions} of node {gone} led by another node "
                                           f"on every survivor {survivors}")
        self.note(f"partitions {partitions} of node {gone} re-led after {time.monotonic() - started:.1f}s")
        return leaders

    def wait_for_progress(self, partitions: list[int] | None = None, what: str = "") -> None:
        self.producer.wait_for_progress(partitions, more=30, timeout=PROGRESS_S, what=what)

    def wait_for_failover_and_progress(self, gone: int, partitions: list[int], what: str,
                                       timeout: float = FAILOVER_S) -> None:
        """wait_for_failover, then the producer's acknowledgements going on on `partitions`
        (only with replication, as for wait_for_failover)."""
        self.wait_for_failover(gone, partitions, timeout)
        if REPLICATED:
            self.wait_for_progress(partitions, what)

    def wait_until_healed(self, what: str) -> None:
        """A live leader and a full ISR for every partition (the group's offsets' too), then
        the producer's acknowledgements going on on every partition."""
        started = time.monotonic()
        wait_for_full_isr(self.c, [self.topic, OFFSETS], RF, HEAL_S, what)
        self.note(f"full ISR {time.monotonic() - started:.1f}s {what}")
        self.wait_for_progress(what=what)

    def leader_rounds(self, fault: str):
        """FAULT_ROUNDS rounds of a fault on a node leading partitions of the topic: a plain
        broker, then the active controller. Notes the round ("round 1: <fault> node 2, leader of
        [0, 3]") and yields (node, the partitions it leads)."""
        for round_ in range(FAULT_ROUNDS):
            victim, led = self.pick_leader(controller=round_ == 1)
            self.note(f"round {round_ + 1}: {fault} node {victim}{' (the controller)' if round_ else ''}, leader of {led}")
            yield victim, led

    # -- probes: acks=all requests straight to one node, which must not be acknowledged

    def probe(self, node: int, partition: int, label: str, must_vanish: bool = False, **kw) -> RawProduce:
        """One acks=all record sent straight to `node`. `must_vanish`: only that node can have
        appended it (it is deposed, paused or cut off), so it must not survive in the log."""
        n = self.c.node(node)
        value = f"probe-{label}-{len(self.probes)}"
        p = RawProduce(n.host, n.port, self.topic, partition, [value], **kw)
        p.start()
        self.probes.append(p)
        if must_vanish:
            self.must_vanish.append(p)
        return p

    # -- the end

    def abandon(self) -> None:
        """At teardown: stops the producer and the group member if still running (a test that
        failed midway), without waiting for their deliveries or commits."""
        for worker in (self.producer, self.reader):
            if worker is not None and worker.is_alive():
                worker.abandon()

    def finish(self) -> None:
        """Stops the group member, lets the producer run on a little (records after the last
        commit), stops it, reads everything, and checks it all."""
        self.reader.stop()
        self.wait_for_progress(what="after the group member stopped")
        self.producer.stop()
        history = self.producer.history()
        seq = 0
        for p in self.probes:
            history += p.as_sent("probe", seq)
            seq += len(p.values)
        log = read_all(self.bootstrap, self.topic, PARTITIONS)
        # Probes are refused by design: only the producer's failed deliveries count.
        report = check(history, log, self.reader.reads, failures_allowed=True)
        failed = [s for s in report.failed if s.producer != "probe"]
        print(f"\n{report}")

        assert report.ok, f"checker:\n{report}"
        assert not failed, (f"{len(failed)} deliveries of the producer failed, e.g. "
                            f"{[(s.value, s.partition, s.error) for s in failed[:5]]}\nchecker:\n{report}")
        assert self.producer.undelivered == 0, f"{self.producer.undelivered} records never got a delivery report"
        fatal = [e for e in self.producer.client_errors if e[2]]
        assert not fatal, f"the producer hit a fatal error: {fatal}"
        if REPLICATED:
            acked_probes = [(p.values, p.outcome()) for p in self.probes if p.acknowledged]
            assert not acked_probes, f"a deposed, paused or isolated leader acknowledged acks=all: {acked_probes}"
            in_log = {v for records in log.values() for _, v in records}
            kept = [v for p in self.must_vanish for v in p.values if v in in_log]
            assert not kept, f"writes only a deposed or isolated leader appended are in the log: {kept}"

        assert_replicas_agree(self.c, self.topic)
        resume = group_resume_problems(self.bootstrap, self.topic, self.group, self.reader.committed, log)
        assert not resume, "the group did not resume at its committed offsets:\n" + "\n".join(resume)


@pytest.fixture
def three_nodes(make_netns_cluster):  # noqa: F811 - the fixture imported above
    return make_netns_cluster(overrides=NODE_SETTINGS)


# ---------------------------------------------------------------------------------------------
# The faults


def test_kill9_of_a_leader_then_restart_loses_nothing(three_nodes, topic):
    c = three_nodes
    s = Scenario(c, topic).start()
    for victim, led in s.leader_rounds("kill -9 of"):
        c.kill9(victim)
        s.wait_for_failover_and_progress(victim, led, f"while node {victim} is down")
        c.start(victim)
        s.wait_until_healed(f"after node {victim} restarted")
    s.finish()


def test_paused_leader_is_a_zombie_that_acknowledges_nothing(three_nodes, topic):
    c = three_nodes
    s = Scenario(c, topic).start()
    for victim, led in s.leader_rounds("SIGSTOP of"):
        c.pause(victim)
        paused_at = time.monotonic()
        # The producer's requests in flight to it stay there; and one more, sent straight to
        # it while it is frozen, waits in its socket for the moment it runs again.
        frozen = s.probe(victim, led[0], "frozen", must_vanish=True, timeout_ms=5000, wait_s=30)
        s.wait_for_failover(victim, led)
        wait_for(lambda: time.monotonic() - paused_at > SESSION_TIMEOUT_MS / 1000 + 0.5, FENCE_S,
                 "the pause to outlast the session timeout")  # usually met by the failover already
        c.resume(victim)
        outcome = frozen.outcome()
        s.note(f"paused node {victim} for {time.monotonic() - paused_at:.1f}s; the request sent to it "
                       f"while frozen: {outcome}")
        s.wait_until_healed(f"after node {victim} was continued")
    s.finish()


def test_sigterm_bounce_of_a_leader_loses_nothing(three_nodes, topic):
    c = three_nodes
    s = Scenario(c, topic).start()
    for victim, led in s.leader_rounds("SIGTERM of"):
        stopping = time.monotonic()
        c.stop(victim)  # controlled shutdown: it hands its leaderships over first
        s.note(f"node {victim} stopped in {time.monotonic() - stopping:.1f}s")
        # A controlled shutdown moves leaderships before the process ends: no fencing wait.
        s.wait_for_failover_and_progress(victim, led, f"while node {victim} is stopped", timeout=5)
        c.start(victim)
        s.wait_until_healed(f"after node {victim} restarted")
    s.finish()


def test_killed_follower_truncates_and_catches_up(three_nodes, topic):
    """Node 3 follows every partition of this topic and leads none (the replicas are assigned
    so), so killing it takes no leader away; the producer goes on with the two others (min ISR
    2), and once back it catches up until the ISR is full and its batches are the leaders'."""
    c = three_nodes
    if REPLICATED:
        assignment = [[1, 2, 3], [2, 3, 1], [1, 3, 2], [2, 1, 3], [1, 2, 3], [2, 3, 1]]
    else:
        assignment = [[1], [2], [1], [2], [1], [2]]
    s = Scenario(c, topic, assignment).start()
    assert 3 not in s.leaders().values()
    c.kill9(3)
    wait_for(lambda: 3 not in node_metadata(c, 1).brokers, FENCE_S, "node 3 fenced")
    s.wait_for_progress(what="with node 3 down")
    if REPLICATED:
        wait_for(lambda: all(3 not in part.isr for part in node_metadata(c, 1).topic(topic).values()),
                 FENCE_S, "node 3 out of every ISR")
    c.start(3)
    s.wait_until_healed("after node 3 restarted")
    s.finish()


def test_network_partition_isolating_a_leader(three_nodes, topic):
    c = three_nodes
    s = Scenario(c, topic).start()
    for victim, led in s.leader_rounds("a network partition cutting off"):
        c.partition({victim})
        cut_at = time.monotonic()
        # Straight to the isolated leader: at once (it is still the leader, but no follower can
        # fetch) and once the majority has replaced it. Neither may be acknowledged.
        s.probe(victim, led[0], "isolated", must_vanish=True, timeout_ms=3000)
        survivors = [i for i in c.broker_ids if i != victim]
        wait_for(lambda: all(victim not in node_metadata(c, i).brokers for i in survivors), FENCE_S,
                 f"the majority {survivors} to fence isolated node {victim}")
        s.note(f"node {victim} fenced by the majority {time.monotonic() - cut_at:.1f}s after the cut")
        s.wait_for_failover(victim, led)
        if REPLICATED:
            s.probe(victim, led[-1], "deposed", must_vanish=True, timeout_ms=3000)
            s.wait_for_progress(led, f"while node {victim} is cut off")
        # The isolated node still serves its clients: the test process reaches it.
        assert node_metadata(c, victim).brokers, f"the clients lost node {victim}"
        c.heal()
        s.wait_until_healed(f"after the partition of node {victim} healed")
    s.finish()


def test_two_brokers_down_not_enough_replicas_then_nothing_lost(make_netns_cluster, topic):  # noqa: F811
    c = make_netns_cluster(layout=FIVE_VOTERS, overrides=NODE_SETTINGS)
    s = Scenario(c, topic).start()
    survivor = s.pick_leader(controller=False)[0]
    down = [i for i in c.broker_ids if i != survivor]
    for i in down:
        c.kill9(i)
    wait_for(lambda: sorted(node_metadata(c, survivor).brokers) == [survivor], FENCE_S, f"nodes {down} fenced")
    if REPLICATED:
        # Every partition ends up led by the survivor, its ISR below min.insync.replicas:
        # acks=all must be refused with NOT_ENOUGH_REPLICAS, and never acknowledged.
        refusals = (("answered", NOT_ENOUGH_REPLICAS), ("answered", NOT_ENOUGH_REPLICAS_AFTER_APPEND))
        try:
            for p in range(PARTITIONS):
                wait_for(lambda p=p: s.probe(survivor, p, f"ner-p{p}", timeout_ms=2000).outcome()[:2] in refusals,
                         NER_S, f"NOT_ENOUGH_REPLICAS for partition {p} from node {survivor}")
        finally:
            acked = [(p.partition, p.outcome()) for p in s.probes if p.acknowledged]
            assert not acked, f"acks=all acknowledged with one broker up: {acked}"
        refused_at = time.monotonic()
        # Let the producer try for a while (a condition, not a sleep): 1,000 records sent into
        # the outage, none of them acknowledgeable.
        wait_for(lambda: s.producer.sent_since(refused_at) >= 1000, 10, "1,000 records sent during the outage")
        during = s.producer.acked_between(refused_at + 0.5, time.monotonic())
        assert not during, f"{len(during)} acks=all records acknowledged with one broker up, e.g. {during[:3]}"
    c.start(*down)
    s.wait_until_healed(f"after nodes {down} restarted")
    s.finish()


def test_dead_leaders_partitions_get_new_leaders_within_seconds_of_its_fencing(three_nodes, topic, record_property):
    """Measured, not only bounded: kill -9 of a leader that is not the controller, then how long
    until every survivor has fenced it, and how much longer until every survivor names new
    leaders for its partitions (Kafka elects them in the same metadata change as the fencing)."""
    c = three_nodes
    create_topic(c.bootstrap, topic)
    wait_for_full_isr(c, [topic], RF, CREATE_S, "after creation")
    s = Scenario(c, topic)
    victim, led = s.pick_leader(controller=False)
    survivors = [i for i in c.broker_ids if i != victim]
    fenced_at: dict[int, float] = {}
    elected_at: dict[int, float] = {}

    c.kill9(victim)
    killed_at = time.monotonic()

    def all_seen():
        for i in survivors:
            md = node_metadata(c, i)
            now = time.monotonic()
            if victim not in md.brokers:
                fenced_at.setdefault(i, now)
            if not REPLICATED or all(md.topic(topic)[p].leader not in (victim, -1) for p in led):
                elected_at.setdefault(i, now)  # (with RF 1 there is no one to elect: fencing only)
        return len(fenced_at) == len(elected_at) == len(survivors)

    try:
        wait_for(all_seen, FAILOVER_S + 10, f"node {victim} fenced and its partitions {led} re-led on {survivors}",
                 interval=0.05)
    finally:
        fenced = max(fenced_at.values()) - killed_at if len(fenced_at) == len(survivors) else None
        elected = max(elected_at.values()) - killed_at if len(elected_at) == len(survivors) else None
        line = (f"kill -9 of node {victim} (leader of {led}, session timeout {SESSION_TIMEOUT_MS} ms): fenced on "
                f"every survivor after {fenced if fenced is None else round(fenced, 2)} s, new leaders on every "
                f"survivor after {elected if elected is None else round(elected, 2)} s")
        print("\n" + line)
        record_property("failover", line)
    assert elected - fenced <= ELECTION_AFTER_FENCING_S, line
    c.start(victim)
    wait_for_full_isr(c, [topic], RF, HEAL_S, f"after node {victim} restarted")
