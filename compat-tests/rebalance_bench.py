"""Measures how long a consumer group takes to settle with the classic protocol and with
KIP-848's consumer protocol, with librdkafka (confluent-kafka):

    SLUICE_BIN=target/release/sluice compat-tests/.venv/bin/python compat-tests/rebalance_bench.py [RUNS, default 3]

Per protocol and run: 10 consumers subscribe at once to a fresh 20-partition topic ("join": from
the first subscribe until every partition is assigned, 2 per member), then one of them closes
("leave": from its close until the other 9 hold all 20 partitions). Each consumer polls in its
own thread and reports its assignment after every poll, so the figures are within one poll
(50 ms). The broker runs with `group.initial.rebalance.delay.ms=0` (the classic protocol would
otherwise wait 3 s for more members) and Kafka's default consumer heartbeat interval (5 s).
Not a test: it prints one table and exits 0.
"""

import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer

from conftest import Broker, create_topic

MEMBERS = 10
PARTITIONS = 20
TIMEOUT_S = 120


class Member(threading.Thread):
    def __init__(self, bootstrap: str, group: str, topic: str, protocol: str):
        super().__init__(daemon=True)
        conf = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": protocol,
                "log.connection.close": False}
        if protocol == "classic":
            conf["partition.assignment.strategy"] = "cooperative-sticky"
        self.consumer = Consumer(conf)
        self.topic = topic
        self.assigned: set = set()
        self.stop = threading.Event()

    def run(self):
        self.consumer.subscribe([self.topic])
        while not self.stop.is_set():
            self.consumer.poll(0.05)
            self.assigned = {tp.partition for tp in self.consumer.assignment()}
        self.consumer.close()


def wait(cond, what: str) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > TIMEOUT_S:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)
    return time.monotonic()


def settled(members, per_member: set) -> bool:
    counts = sorted(len(m.assigned) for m in members)
    owned = [p for m in members for p in m.assigned]
    return len(owned) == PARTITIONS == len(set(owned)) and set(counts) <= per_member


def one_run(broker: Broker, protocol: str) -> tuple[float, float]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic, PARTITIONS)
    group = f"bench-{protocol}-{uuid.uuid4().hex[:8]}"
    members = [Member(broker.bootstrap, group, topic, protocol) for _ in range(MEMBERS)]
    start = time.monotonic()
    for m in members:
        m.start()
    joined = wait(lambda: settled(members, {2}), "the join") - start
    leaver = members.pop()
    left_at = time.monotonic()
    leaver.stop.set()
    left = wait(lambda: settled(members, {2, 3}), "the leave") - left_at
    for m in members:
        m.stop.set()
    for m in members + [leaver]:
        m.join(30)
    return joined, left


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "data", {"group.initial.rebalance.delay.ms": 0})
        broker.start()
        try:
            print(f"{MEMBERS} members, {PARTITIONS} partitions, {runs} runs: min / median / max seconds")
            for protocol in ("classic", "consumer"):
                figures = [one_run(broker, protocol) for _ in range(runs)]
                for name, i in (("join", 0), ("leave", 1)):
                    xs = [f[i] for f in figures]
                    print(f"{protocol:9} {name:6} {min(xs):6.2f} {statistics.median(xs):6.2f} {max(xs):6.2f}")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
