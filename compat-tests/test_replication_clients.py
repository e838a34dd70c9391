"""Replication under failures as other clients see it (issue 12): the failure tests of
test_replication.py drive confluent-kafka; these drive kafka-python, Apache Kafka's console
tools, franz-go and Kafka Streams through a leader failover, on the same three broker+controller nodes in
network namespaces (netns.py) with the same settings (`NODE_SETTINGS`: session timeout 3 s,
replica.lag.time.max.ms 5 s), topics of replication factor 3 and min.insync.replicas=2.

- kafka-python: an idempotent acks=all producer (`enable_idempotence=True`) streams unique
  values over 6 partitions while a kafka-python group member reads and commits every half
  second; the node coordinating the group, which also leads partitions of the topic, is
  `kill -9`ed and restarted. A full read with kafka-python's consumer, checked by checker.py
  against the history built from the producer's futures (record metadata or exception): 0 lost /
  duplicated / reordered / moved, no failed delivery. A new member of the group finds the
  committed offsets at or after the ones the coordinator acknowledged and reads exactly the rest.
- Kafka's console tools: `kafka-console-producer` with its defaults (idempotent, acks=all) fed a
  known sequence of lines on stdin at a steady rate while the leader of the topic's only
  partition gets a SIGTERM bounce (controlled shutdown) and later, whoever leads it then, a
  `kill -9`. `kafka-topics --describe --unavailable-partitions` names exactly the partition of
  an RF 1 topic on the node that is down, `--under-replicated-partitions` the topic's partition
  (ISR 2 of 3) and that RF 1 partition (its ISR empty, as in Kafka 4.1+ with eligible leader
  replicas), and it prints nothing once the node is back and caught up. The producer exits 0
  without an error on stderr; `kafka-console-consumer --from-beginning` reads every line
  exactly once, in order, and the log holds nothing else.
- franz-go: the `produce_stream` scenario of go/ (kgo's default producer: idempotent, acks=all)
  streams over 6 partitions while the active controller, a leader too, is `kill -9`ed and
  restarted, and prints every record's value, partition, offset and error; `consume_all` reads
  every partition; the checker finds no anomaly.
- Kafka Streams (Java): the word count of java/ (scenario `streams_word_count_failover`:
  at_least_once, `replication.factor=3` for its internal topics) fed lines by an idempotent
  producer keeps exact counts while its group's coordinator, a leader of its input topic too,
  is `kill -9`ed and restarted.

The Go program and the Java jar are built by `make test-deps-go` / `make test-deps-java`
(the Go one also here, when a source is newer than the binary, as test_franz_go.py does).

The time each client was without acknowledgements on the dead leader's partitions is printed
(`-s`) and recorded as the junit property `failover`. Every wait is a condition with a deadline.
"""

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from checker import ACKED, FAILED, UNKNOWN, Sent, check
from cluster import wait_for
from kafka_tools import KAFKA_TOOL, _cds_archive, _CDS_QUIET, _env, _kill_group, run_tools, tool_ok
from netns import make_netns_cluster  # noqa: F401 - the fixture
from test_replication import (
    CREATE_S,
    FAILOVER_S,
    HEAL_S,
    NODE_SETTINGS,
    OFFSETS,
    PROGRESS_S,
    SELFTEST,
    Scenario,
    assert_replicas_agree,
    create_topic,
)
from workload import agreed_controller, agreed_leaders, live_brokers, wait_for_full_isr

pytestmark = pytest.mark.skipif(SELFTEST, reason="needs replication (REPLICATION_SELFTEST=1 is for test_replication.py)")

RF, MIN_ISR, PARTITIONS = 3, 2, 6  # create_topic (test_replication.py) makes topics of this shape
FLUSH_S = 60  # what a producer still holds at the end gets this long to be delivered
ACKS_AFTER_FAULT = 20  # acknowledgements (or appended records) that show a partition is writable again


def note(notes: list[str], line: str) -> None:
    print(line)
    notes.append(line)


def first_ack_after(ack_times: dict[int, float], partition_of, partitions: list[int], after: float) -> dict[int, float]:
    """Per partition, seconds from `after` to its first acknowledgement after it."""
    first: dict[int, float] = {}
    for seq, t in ack_times.items():
        p = partition_of(seq)
        if p in partitions and t > after:
            first[p] = min(first.get(p, float("inf")), t - after)
    return first


def stalls_line(client: str, stalls: dict[int, float]) -> str:
    """The failover as `client` saw it, from first_ack_after."""
    return (f"{client}: first acknowledgement on each of the dead leader's partitions "
            f"{', '.join(f'{p}: {t:.1f}s' for p, t in sorted(stalls.items()))} after the kill")


def wait_for_failover(c, topic: str, victim: int, led: list[int], timeout: float = FAILOVER_S) -> float:
    """Until every live broker names, for each of `led`, a leader other than `victim`; the
    seconds it took."""
    started = time.monotonic()
    Scenario(c, topic).wait_for_failover(victim, led, timeout)
    return time.monotonic() - started


class AckProgress:
    """wait_for_progress for a producer that keeps `acked_in`, its acknowledgements so far per
    partition; `client` names it, `assert_running` fails once it has ended."""

    client: str
    partitions: int
    acked_in: list[int]

    def assert_running(self) -> None:
        raise NotImplementedError

    def wait_for_progress(self, partitions: list[int] | None = None, more: int = ACKS_AFTER_FAULT,
                          timeout: float = PROGRESS_S, what: str = "") -> None:
        partitions = list(range(self.partitions)) if partitions is None else partitions
        base = {p: self.acked_in[p] for p in partitions}

        def progressed():
            self.assert_running()
            return all(self.acked_in[p] >= base[p] + more for p in partitions)

        wait_for(progressed, timeout, f"{more} more {self.client} acknowledgements on partitions {partitions} {what} "
                                      f"(per partition now: {self.acked_in})")


class Background:
    """A program in the background, in a session of its own (killed with its process group):
    threads read its output as it comes, and a timer kills it `kill_after` s after its start
    whatever happens. A subclass sets up its own state, then calls `_launch`."""

    def _launch(self, cmd: list[str], kill_after: float, readers, **popen) -> None:
        """Starts cmd with pipes for stdin, stdout and stderr; `readers` read stdout (and feed
        stdin), stderr goes to `err`."""
        self.cmd = cmd
        self.err = b""
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True, **popen)
        self._threads = [threading.Thread(target=f, daemon=True) for f in (*readers, self._read_err)]
        for t in self._threads:
            t.start()
        self._killer = threading.Timer(kill_after, _kill_group, (self.proc,))
        self._killer.daemon = True
        self._killer.start()

    def _read_err(self) -> None:
        self.err = self.proc.stderr.read()

    def _wait_for_exit(self, timeout: float, still_running: str) -> None:
        """Until the program has exited and its output is read; killed, and `still_running` the
        failure, if it runs on for `timeout` s."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{still_running}:\n{self}") from None
        self._killer.cancel()
        for t in self._threads:
            t.join(10)

    def kill(self) -> None:
        self._killer.cancel()
        _kill_group(self.proc)
        self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# kafka-python


def kp_bootstrap(c) -> list[str]:
    return c.bootstrap.split(",")


class KafkaPythonWorker(threading.Thread):
    """A kafka-python client working on a thread of its own (`work`) until `stop()`, which
    fails if it crashed or has not finished within `stop_within` s, or, at the teardown of a
    test that failed midway, `abandon()`."""

    def __init__(self, name: str, what: str, stop_within: float):
        super().__init__(daemon=True, name=name)
        self.what, self.stop_within = what, stop_within
        self.stopping = threading.Event()
        self.abandoned = False
        self.crashed: BaseException | None = None

    def work(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            self.work()
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.crashed = e

    def stop(self) -> None:
        self.stopping.set()
        self.join(self.stop_within)
        assert not self.is_alive(), f"{self.what} did not finish"
        assert self.crashed is None, f"{self.what} failed: {self.crashed!r}"

    def abandon(self) -> None:
        self.abandoned = True
        self.stopping.set()
        self.join(15)


class KafkaPythonProducer(KafkaPythonWorker, AckProgress):
    """kafka-python's idempotent producer (acks=all, retries unbounded within
    delivery.timeout.ms 120 s, one request in flight per connection as idempotence makes it)
    sending `<name>-<seq>` to partition seq % partitions at `rate` records/s until `stop()`.
    Each record's fate comes from its future: the RecordMetadata's offset, or the exception."""

    client = "kafka-python"

    def __init__(self, bootstrap: list[str], topic: str, partitions: int, name: str = "kp", rate: int = 300):
        super().__init__(f"kafka-python producer {name}", "the kafka-python producer", stop_within=FLUSH_S + 20)
        self.topic, self.partitions, self.name, self.rate = topic, partitions, name, rate
        self.records: list[Sent] = []
        self.ack_times: dict[int, float] = {}
        self.acked_in = [0] * partitions
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=f"sluice-compat-{name}",
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=10000,
            delivery_timeout_ms=120000,
            retry_backoff_ms=100,
            reconnect_backoff_max_ms=1000,
        )

    def _on_ack(self, seq: int, md) -> None:
        s = self.records[seq]
        s.status, s.offset = ACKED, md.offset
        self.ack_times[seq] = time.monotonic()
        self.acked_in[s.partition] += 1

    def _on_error(self, seq: int, exc) -> None:
        s = self.records[seq]
        s.status, s.error = FAILED, repr(exc)

    def work(self) -> None:
        started = time.monotonic()
        while not self.stopping.is_set():
            owed = int(self.rate * (time.monotonic() - started)) - len(self.records)
            for _ in range(owed):
                seq = len(self.records)
                value, p = f"{self.name}-{seq}", seq % self.partitions
                self.records.append(Sent(value, p, self.name, seq))
                f = self.producer.send(self.topic, value=value.encode(), partition=p)
                f.add_callback(self._on_ack, seq)
                f.add_errback(self._on_error, seq)
            self.stopping.wait(0.01)
        if not self.abandoned:
            self.producer.flush(timeout=FLUSH_S)
        self.producer.close(timeout=0 if self.abandoned else 10)

    def assert_running(self) -> None:
        assert self.is_alive(), f"producer thread ended: {self.crashed!r}"


class KafkaPythonGroupReader(KafkaPythonWorker):
    """A kafka-python member of `group` reading `topic` from the earliest offset and committing
    what it has read synchronously every `commit_every_s` (explicit offsets: `committed` holds,
    per partition, the highest offset a commit that returned without an error carried)."""

    def __init__(self, bootstrap: list[str], topic: str, group: str, commit_every_s: float = 0.5):
        super().__init__(f"kafka-python group {group}", "the kafka-python group member", stop_within=60)
        self.topic, self.group, self.commit_every_s = topic, group, commit_every_s
        self.reads: list[tuple[int, int, str]] = []
        self.next: dict[int, int] = {}  # partition -> offset after the last record read
        self.committed: dict[int, int] = {}
        self.commit_failures: list[str] = []
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="sluice-compat-kp-group",
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=100,
            request_timeout_ms=15000,
            retry_backoff_ms=100,
            reconnect_backoff_max_ms=1000,
        )

    def coordinator(self) -> int | None:
        """The node id kafka-python's FindCoordinator answer named (None before it knows)."""
        cid = self.consumer._coordinator.coordinator_id  # noqa: SLF001 - no public accessor
        return None if cid is None else int(str(cid).rsplit("-", 1)[-1])  # "coordinator-<node id>"

    def work(self) -> None:
        c = self.consumer
        try:
            c.subscribe([self.topic])
            last_commit = time.monotonic()
            while not self.stopping.is_set():
                for tp, msgs in c.poll(timeout_ms=100).items():
                    for m in msgs:
                        self.reads.append((m.partition, m.offset, m.value.decode()))
                        self.next[m.partition] = m.offset + 1
                if time.monotonic() - last_commit >= self.commit_every_s:
                    self._commit()
                    last_commit = time.monotonic()
            if not self.abandoned:
                self._commit()
        finally:
            c.close(autocommit=False)

    def _commit(self) -> None:
        todo = {p: o for p, o in self.next.items() if o > self.committed.get(p, -1)}
        if not todo:
            return
        offsets = {TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in todo.items()}
        try:
            self.consumer.commit(offsets, timeout_ms=5000)
        except Exception as e:  # noqa: BLE001 - during a failover a commit may fail; the next one retries
            self.commit_failures.append(repr(e))
            return
        for p, o in todo.items():
            self.committed[p] = max(self.committed.get(p, -1), o)


def kp_read_all(bootstrap: list[str], topic: str, partitions: int, timeout: float = 60) -> dict[int, list]:
    """Every record of every partition up to its end offset, (offset, value) in offset order,
    read by a groupless kafka-python consumer."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sluice-compat-kp-read-all", group_id=None,
                      enable_auto_commit=False, fetch_max_wait_ms=100, request_timeout_ms=15000)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        log: dict[int, list] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + timeout
        while any(c.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, (
                f"kafka-python read {[c.position(tp) for tp in tps]} of end offsets {[ends[tp] for tp in tps]} "
                f"in {timeout}s")
            for tp, msgs in c.poll(timeout_ms=200).items():
                log[tp.partition].extend((m.offset, m.value.decode()) for m in msgs if m.offset < ends[tp])
        return log
    finally:
        c.close(autocommit=False)


def kp_group_resume_problems(bootstrap: list[str], topic: str, group: str, committed: dict[int, int],
                             log: dict[int, list], timeout: float = 30) -> list[str]:
    """A new kafka-python member of `group` must find the committed offsets at or after
    `committed` and read each partition from there exactly to the end of `log`."""
    problems = []
    c = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sluice-compat-kp-resume", group_id=group,
                      enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100,
                      session_timeout_ms=10000, heartbeat_interval_ms=1000, request_timeout_ms=15000)
    try:
        found = {}
        for p in log:
            found[p] = c.committed(TopicPartition(topic, p), timeout_ms=int(timeout * 1000))
            if committed.get(p) is not None and (found[p] is None or found[p] < committed[p]):
                problems.append(f"partition {p}: the group's committed offset is {found[p]}, below {committed[p]}, "
                                f"which the coordinator acknowledged")
        c.subscribe([topic])
        got: dict[int, list] = {p: [] for p in log}
        ends = {p: (records[-1][0] + 1 if records else 0) for p, records in log.items()}
        deadline = time.monotonic() + timeout

        def at_end() -> bool:
            assigned = c.assignment()
            return len(assigned) == len(log) and all(c.position(tp) >= ends[tp.partition] for tp in assigned)

        while not at_end():
            if time.monotonic() > deadline:
                problems.append(f"the resumed member did not reach the end of every partition in {timeout}s "
                                f"(assigned {sorted(tp.partition for tp in c.assignment())})")
                break
            for tp, msgs in c.poll(timeout_ms=200).items():
                got[tp.partition].extend((m.offset, m.value.decode()) for m in msgs)
        for p, records in log.items():
            start = found.get(p) or 0
            want = [(o, v) for o, v in records if o >= start]
            if got[p] != want:
                problems.append(f"partition {p}: from committed offset {found.get(p)} the resumed member read "
                                f"{len(got[p])} records (first {got[p][:1]}), the log holds {len(want)} (first {want[:1]})")
    finally:
        c.close(autocommit=False)
    return problems


def test_kafka_python_idempotent_producer_and_group_across_a_coordinator_kill9(make_netns_cluster, topic,  # noqa: F811
                                                                               record_property):
    c = make_netns_cluster(overrides=NODE_SETTINGS)
    notes: list[str] = []
    group = f"{topic}-group"
    create_topic(c.bootstrap, topic)
    wait_for_full_isr(c, [topic], RF, CREATE_S, "after creation")
    boot = kp_bootstrap(c)
    producer = KafkaPythonProducer(boot, topic, PARTITIONS)
    reader = KafkaPythonGroupReader(boot, topic, group)
    c.teardown_hooks += [producer.abandon, reader.abandon]
    producer.start()
    reader.start()
    producer.wait_for_progress(what="at the start")
    wait_for(lambda: reader.committed and reader.coordinator() is not None, PROGRESS_S, "a first commit of the group")
    wait_for_full_isr(c, [topic, OFFSETS], RF, CREATE_S, "with the group's offsets topic")

    # The victim coordinates the group and leads partitions of the topic: both the produce
    # stream and the group's commits fail over.
    victim = reader.coordinator()
    leaders = agreed_leaders(c, topic)
    led = sorted(p for p, leader in leaders.items() if leader == victim)
    assert led, f"coordinator {victim} leads no partition of {topic}: {leaders}"
    committed_before = dict(reader.committed)
    controller = agreed_controller(c, live_brokers(c))
    note(notes, f"kafka-python: kill -9 of node {victim} (group coordinator{', active controller' if victim == controller else ''}, "
                f"leader of {led})")
    c.kill9(victim)
    killed_at = time.monotonic()
    note(notes, f"kafka-python: partitions {led} re-led {wait_for_failover(c, topic, victim, led):.1f}s after the kill")
    producer.wait_for_progress(led, what=f"while node {victim} is down")
    wait_for(lambda: any(reader.committed.get(p, -1) > committed_before.get(p, -1) for p in range(PARTITIONS))
             and reader.coordinator() not in (None, victim), PROGRESS_S,
             f"a commit acknowledged by a new coordinator while node {victim} is down")
    c.start(victim)
    wait_for_full_isr(c, [topic, OFFSETS], RF, HEAL_S, f"after node {victim} restarted")
    producer.wait_for_progress(what=f"after node {victim} restarted")

    reader.stop()
    producer.wait_for_progress(what="after the group member stopped")
    producer.stop()
    stalls = first_ack_after(producer.ack_times, lambda s: producer.records[s].partition, led, killed_at)
    failover = (f"{stalls_line('kafka-python', stalls)}; {len(reader.commit_failures)} commits failed meanwhile ({sorted(set(e.split('(')[0] for e in reader.commit_failures))})")
    note(notes, failover)
    record_property("failover", failover)

    log = kp_read_all(boot, topic, PARTITIONS)
    report = check(producer.records, log, reader.reads)
    note(notes, f"kafka-python: {report.sent} records sent, {report.acked} acknowledged, {report.read} read")
    print(f"\n{report}")
    assert report.ok, f"checker:\n{report}"
    undelivered = [s.value for s in producer.records if s.status == UNKNOWN]
    assert not undelivered, f"{len(undelivered)} records never got an answer, e.g. {undelivered[:5]}"
    assert all(stalls.get(p) is not None for p in led), f"no acknowledgement after the kill on {led}: {stalls}"

    assert_replicas_agree(c, topic)
    resume = kp_group_resume_problems(boot, topic, group, reader.committed, log)
    assert not resume, "the kafka-python group did not resume at its committed offsets:\n" + "\n".join(resume)


# ---------------------------------------------------------------------------------------------
# Kafka's console tools


class ConsoleProducer(Background):
    """`kafka-console-producer` with its defaults (idempotent, acks=all, linger 1 s, 3 retries,
    request timeout 1.5 s) reading from a pipe that a thread feeds `line-<n>` at `rate` lines/s
    until `finish()` closes it; then the tool flushes and exits. Killed at `timeout` whatever
    happens."""

    def __init__(self, bootstrap: str, topic: str, rate: int = 100, timeout: float = 240):
        archive = _cds_archive("kafka-console-producer")
        cds = f"-XX:SharedArchiveFile={archive} {_CDS_QUIET}" if archive and archive.exists() else ""
        self.rate = rate
        self.lines: list[str] = []
        self.stopping = threading.Event()
        self.out = b""
        self._launch([str(KAFKA_TOOL), "kafka-console-producer", "--bootstrap-server", bootstrap, "--topic", topic],
                     timeout, (self._feed, self._read_out), env=_env(cds))

    def _feed(self) -> None:
        started = time.monotonic()
        try:
            while not self.stopping.is_set():
                owed = int(self.rate * (time.monotonic() - started)) - len(self.lines)
                chunk = []
                for _ in range(owed):
                    line = f"line-{len(self.lines):06d}"
                    self.lines.append(line)
                    chunk.append(line + "\n")
                if chunk:
                    self.proc.stdin.write("".join(chunk).encode())
                    self.proc.stdin.flush()
                self.stopping.wait(0.01)
        except BrokenPipeError:
            pass
        finally:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def _read_out(self) -> None:
        self.out = self.proc.stdout.read()

    def finish(self, timeout: float = FLUSH_S) -> int:
        """Closes stdin; the tool's exit code once it has flushed and exited."""
        self.stopping.set()
        self._wait_for_exit(timeout, f"kafka-console-producer still running {timeout}s after its input ended")
        return self.proc.returncode

    def kill(self) -> None:
        self.stopping.set()
        super().kill()

    @property
    def stderr(self) -> str:
        return self.err.decode(errors="replace")

    def __str__(self) -> str:
        return f"$ {' '.join(self.cmd)} ({len(self.lines)} lines fed)\n--- stderr:\n{self.stderr[-6000:]}"


def end_offset(c, topic: str, partition: int = 0) -> int:
    """The partition's high watermark, as a kafka-python consumer gets it from the leader."""
    k = KafkaConsumer(bootstrap_servers=kp_bootstrap(c), group_id=None, request_timeout_ms=5000,
                      api_version_auto_timeout_ms=5000)
    try:
        tp = TopicPartition(topic, partition)
        return k.end_offsets([tp])[tp]
    finally:
        k.close(autocommit=False)


def partition_report(c, option: str, *topics: str) -> list[tuple[str, str]]:
    """(topic, partition) of each line `kafka-topics --describe <option>` prints for `topics`."""
    r = tool_ok("kafka-topics", "--bootstrap-server", c.bootstrap, "--describe", "--topic", ",".join(topics), option)
    return sorted(report_lines(r))


def report_lines(r) -> list[tuple[str, str]]:
    out = []
    for line in r.lines:
        f = dict(x.split(": ", 1) for x in line.strip().split("\t") if ": " in x)
        assert "Topic" in f and "Partition" in f, f"not a partition line: {line!r}\n{r}"
        out.append((f["Topic"], f["Partition"]))
    return out


def reports(c, *topics: str) -> dict[str, list[tuple[str, str]]]:
    """--unavailable-partitions and --under-replicated-partitions of `topics`, run side by side."""
    opts = ["--unavailable-partitions", "--under-replicated-partitions"]
    results = run_tools(*[("kafka-topics", "--bootstrap-server", c.bootstrap, "--describe", "--topic",
                           ",".join(topics), o) for o in opts])
    for r in results:
        assert r.rc == 0, f"tool failed:\n{r}"
    return {o: sorted(report_lines(r)) for o, r in zip(opts, results)}


def test_console_producer_and_consumer_across_a_sigterm_bounce_and_a_kill9(make_netns_cluster, topic,  # noqa: F811
                                                                           record_property):
    c = make_netns_cluster(overrides=NODE_SETTINGS)
    notes: list[str] = []
    topic = topic.replace("_", "-")  # kafka-topics warns about '_' in names (metric name collisions)
    pinned = f"{topic}-rf1"  # one partition on each node, RF 1: unavailable while its node is down
    run_tools(
        ("kafka-topics", "--bootstrap-server", c.bootstrap, "--create", "--topic", topic, "--partitions", 1,
         "--replication-factor", RF, "--config", f"min.insync.replicas={MIN_ISR}"),
        ("kafka-topics", "--bootstrap-server", c.bootstrap, "--create", "--topic", pinned,
         "--replica-assignment", ",".join(str(i) for i in c.broker_ids)),
    )
    wait_for_full_isr(c, [topic], RF, CREATE_S, "after creation")
    wait_for_full_isr(c, [pinned], 1, CREATE_S, "after creation")
    node_of_pinned = {i: str(k) for k, i in enumerate(c.broker_ids)}  # node id -> its partition of `pinned`
    assert reports(c, topic, pinned) == {"--unavailable-partitions": [], "--under-replicated-partitions": []}

    producer = ConsoleProducer(c.bootstrap, topic)
    c.teardown_hooks.append(producer.kill)
    wait_for(lambda: end_offset(c, topic) >= 200, PROGRESS_S, "the console producer's first 200 records")

    def outage(victim: int, how: str) -> None:
        led = [0]
        note(notes, f"console tools: {how} of node {victim}, leader of {topic}[0]")
        at_fault = end_offset(c, topic)
        fault_at = time.monotonic()
        if how == "SIGTERM":
            c.stop(victim)  # controlled shutdown: leadership moves before the process ends
            wait_for_failover(c, topic, victim, led, timeout=5)
        else:
            c.kill9(victim)
            wait_for_failover(c, topic, victim, led)
        moved = time.monotonic() - fault_at
        wait_for(lambda: end_offset(c, topic) >= at_fault + ACKS_AFTER_FAULT, PROGRESS_S,
                 f"the console producer's records appended again while node {victim} is down")
        resumed = time.monotonic() - fault_at
        note(notes, f"console tools: {topic}[0] re-led {moved:.1f}s after the {how}, appending again after "
                    f"{resumed:.1f}s (end offset {at_fault} at the fault)")
        # While the node is down: its RF 1 partition is unavailable, and under-replicated too
        # (its ISR is empty, the node its eligible leader, as in Kafka 4.1+ with ELR), and the
        # topic's partition has a leader but an ISR of 2 (the node is out of the ISR from its
        # fencing or shutdown on).
        want = {"--unavailable-partitions": [(pinned, node_of_pinned[victim])],
                "--under-replicated-partitions": sorted([(topic, "0"), (pinned, node_of_pinned[victim])])}
        seen = {}

        def reported():
            nonlocal seen
            seen = reports(c, topic, pinned)
            return seen == want

        wait_for(reported, FAILOVER_S, f"kafka-topics to report {want} while node {victim} is down (last: {seen})",
                 interval=0.5)
        c.start(victim)
        started = time.monotonic()
        wait_for(lambda: partition_report(c, "--under-replicated-partitions", topic, pinned) == [], HEAL_S,
                 f"kafka-topics --under-replicated-partitions to print nothing after node {victim} restarted",
                 interval=0.5)
        assert reports(c, topic, pinned) == {"--unavailable-partitions": [], "--under-replicated-partitions": []}
        note(notes, f"console tools: ISR full again {time.monotonic() - started:.1f}s after node {victim} restarted")
        at_restart = end_offset(c, topic)
        wait_for(lambda: end_offset(c, topic) >= at_restart + ACKS_AFTER_FAULT, PROGRESS_S,
                 f"the console producer's records appended after node {victim} restarted")

    outage(agreed_leaders(c, topic)[0], "SIGTERM")
    outage(agreed_leaders(c, topic)[0], "kill -9")

    rc = producer.finish()
    sent = list(producer.lines)
    assert rc == 0, f"kafka-console-producer exited {rc}:\n{producer}"
    errors = [line for line in producer.stderr.splitlines() if " ERROR " in line or "Error when sending" in line]
    assert not errors, f"kafka-console-producer reported errors:\n" + "\n".join(errors[:20]) + f"\n{producer}"
    warnings = [line for line in producer.stderr.splitlines() if " WARN " in line]
    note(notes, f"console tools: {len(sent)} lines produced; the producer logged {len(warnings)} warnings")
    for line in warnings:
        print(f"    {line}")

    end = end_offset(c, topic)
    read = tool_ok("kafka-console-consumer", "--bootstrap-server", c.bootstrap, "--topic", topic, "--from-beginning",
                   "--max-messages", len(sent), "--timeout-ms", 20000, timeout=90)
    got = read.stdout.splitlines()
    missing = sorted(set(sent) - set(got))
    dupes = sorted(v for v in set(got) if got.count(v) > 1) if len(set(got)) != len(got) else []
    assert got == sent, (f"the console consumer read {len(got)} lines, {len(sent)} were produced: "
                         f"missing {missing[:10]} ({len(missing)}), duplicated {dupes[:10]} ({len(dupes)}), "
                         f"first difference at line {next((i for i, (a, b) in enumerate(zip(got, sent)) if a != b), None)}")
    assert end == len(sent), f"the log holds {end} records, {len(sent)} lines were produced"
    record_property("failover", "; ".join(n for n in notes if "re-led" in n))


# ---------------------------------------------------------------------------------------------
# franz-go

GO_DIR = Path(__file__).with_name("go")
FRANZ = GO_DIR / "bin" / "franz-compat"


@pytest.fixture(scope="module")
def franz_bin() -> Path:
    """The franz-go scenario program, rebuilt when a source is newer (as test_franz_go.py does)."""
    sources = [*GO_DIR.glob("*.go"), GO_DIR / "go.mod", GO_DIR / "go.sum"]
    if not FRANZ.exists() or FRANZ.stat().st_mtime < max(s.stat().st_mtime for s in sources):
        go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
        assert go, "go is not on PATH nor in /usr/local/go/bin (see compat-tests/README.md)"
        r = subprocess.run([go, "build", "-buildvcs=false", "-o", "bin/franz-compat", "."], cwd=GO_DIR,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"go build failed:\n{r.stdout}\n{r.stderr}"
        FRANZ.touch()
    return FRANZ


class FranzStream(Background, AckProgress):
    """`franz-compat produce_stream` in the background: its progress events as they come, its
    result once its stdin is closed and it has flushed."""

    client = "franz-go"

    def __init__(self, franz: Path, bootstrap: str, topic: str, partitions: int, rate: int, max_s: int = 150):
        self.partitions = partitions
        self.acked_in = [0] * partitions
        self.started_at: float | None = None  # time.monotonic() of the program's ms 0, from its events
        self.last: dict | None = None
        self._launch([str(franz), f"-timeout={max_s + 80}s", bootstrap, "produce_stream", topic, str(partitions),
                      str(max_s), str(rate), "stdin"], max_s + 100, (self._read_out,))

    def _read_out(self) -> None:
        for raw in self.proc.stdout:
            now = time.monotonic()
            if not raw.startswith(b"{"):
                continue
            line = json.loads(raw)
            if line.get("event") == "progress":
                self.acked_in = line["acked"]
                at = now - line["ms"] / 1000
                self.started_at = at if self.started_at is None else min(self.started_at, at)
            else:
                self.last = line

    def assert_running(self) -> None:
        assert self.proc.poll() is None, f"produce_stream exited early:\n{self}"

    def finish(self, timeout: float = FLUSH_S + 20) -> dict:
        self.proc.stdin.close()
        self._wait_for_exit(timeout, f"produce_stream still running {timeout}s after its stdin closed")
        assert self.last is not None, f"produce_stream printed no result:\n{self}"
        assert self.proc.returncode == 0 and "result" in self.last, f"produce_stream failed:\n{self}"
        return self.last["result"]

    def __str__(self) -> str:
        last = json.dumps(self.last)[:3000] if self.last else None
        return (f"$ {' '.join(self.cmd)}\n(exit {self.proc.poll()}) last line: {last}\n"
                f"--- stderr:\n{self.err.decode(errors='replace')[-4000:]}")


def franz_read_all(franz: Path, bootstrap: str, topic: str) -> dict[int, list]:
    cmd = [str(franz), "-timeout=90s", bootstrap, "consume_all", topic]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert lines, f"consume_all printed nothing (exit {r.returncode}):\n{r.stderr[-4000:]}"
    out = json.loads(lines[-1])
    assert r.returncode == 0 and "result" in out, f"consume_all failed: {out.get('error')}\n{r.stderr[-4000:]}"
    log: dict[int, list] = defaultdict(list)
    for rec in out["result"]["records"]:
        log[rec["partition"]].append((rec["offset"], rec["value"]))
    return dict(log)


def test_franz_go_idempotent_stream_across_a_controller_kill9(make_netns_cluster, franz_bin, topic,  # noqa: F811
                                                              record_property):
    c = make_netns_cluster(overrides=NODE_SETTINGS)
    notes: list[str] = []
    create_topic(c.bootstrap, topic)
    wait_for_full_isr(c, [topic], RF, CREATE_S, "after creation")
    stream = FranzStream(franz_bin, c.bootstrap, topic, PARTITIONS, rate=500)
    c.teardown_hooks.append(stream.kill)
    stream.wait_for_progress(what="at the start")

    victim = agreed_controller(c, live_brokers(c))
    led = sorted(p for p, leader in agreed_leaders(c, topic).items() if leader == victim)
    assert led, f"the controller {victim} leads no partition of {topic}"
    note(notes, f"franz-go: kill -9 of node {victim} (the active controller, leader of {led})")
    c.kill9(victim)
    killed_at = time.monotonic()
    note(notes, f"franz-go: partitions {led} re-led {wait_for_failover(c, topic, victim, led):.1f}s after the kill")
    stream.wait_for_progress(led, what=f"while node {victim} is down")
    c.start(victim)
    wait_for_full_isr(c, [topic], RF, HEAL_S, f"after node {victim} restarted")
    stream.wait_for_progress(what=f"after node {victim} restarted")
    result = stream.finish()

    history = [Sent(r["value"], r["partition"], "franz", seq,
                    ACKED if r["done"] and not r["err"] else FAILED if r["done"] else UNKNOWN,
                    r["offset"] if r["done"] and not r["err"] else None, r["err"] or None)
               for seq, r in enumerate(result["records"])]
    ack_times = {seq: stream.started_at + r["ack_ms"] / 1000
                 for seq, r in enumerate(result["records"]) if r["done"] and not r["err"]}
    stalls = first_ack_after(ack_times, lambda seq: result["records"][seq]["partition"], led, killed_at)
    failover = stalls_line("franz-go", stalls)
    note(notes, failover)
    record_property("failover", failover)

    log = franz_read_all(franz_bin, c.bootstrap, topic)
    report = check(history, log)
    note(notes, f"franz-go: {report.sent} records sent, {report.acked} acknowledged, {report.read} read")
    print(f"\n{report}")
    assert report.ok, f"checker:\n{report}"
    assert report.unknown == 0, f"{report.unknown} records without an answer"
    assert_replicas_agree(c, topic)


# ---------------------------------------------------------------------------------------------
# Kafka Streams (Java)

JAVA_DIR = Path(__file__).with_name("java")
JAR = JAVA_DIR / "target" / "java-compat.jar"
JVM_OPTIONS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]


class JavaScenario(Background):
    """A scenario of java/ in the background that runs until it reads "stop" on stdin: its
    latest progress event as it comes, its result once it has finished."""

    def __init__(self, bootstrap: str, name: str, timeout: float, **params):
        java = shutil.which("java")
        assert java, "java is not on PATH (`make test-deps-java`)"
        assert JAR.is_file(), f"{JAR} is missing: run `make test-deps-java`"
        self.progress: dict = {}
        self.last: dict | None = None
        self._launch([java, *JVM_OPTIONS, "-jar", str(JAR), bootstrap, name, str(timeout),
                      *[f"{k}={v}" for k, v in params.items()]], timeout + 15, (self._read_out,), cwd=JAVA_DIR)

    def _read_out(self) -> None:
        for raw in self.proc.stdout:
            if not raw.startswith(b"{"):
                continue
            line = json.loads(raw)
            event = line.get("event")
            if isinstance(event, dict) and "progress" in event:
                self.progress = event["progress"]
            elif event is None:
                self.last = line

    def alive(self) -> bool:
        assert self.proc.poll() is None, f"the Java scenario exited early:\n{self}"
        return True

    def finish(self, timeout: float = 120) -> dict:
        try:
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self._wait_for_exit(timeout, f"the Java scenario still running {timeout}s after stop")
        assert self.last is not None and self.proc.returncode == 0 and "result" in self.last, f"the scenario failed:\n{self}"
        return self.last["result"]

    def __str__(self) -> str:
        last = self.last or {}
        return (f"$ {' '.join(self.cmd)}\n(exit {self.proc.poll()}) error: {last.get('error')}\n"
                f"{str(last.get('stack', ''))[:4000]}\nprogress: {self.progress}\n"
                f"--- stderr (tail):\n{self.err.decode(errors='replace')[-4000:]}")


def group_coordinator(c, group: str) -> int:
    from confluent_kafka.admin import AdminClient

    from conftest import admin_config
    from workload import CLIENT_LOG

    admin = AdminClient({**admin_config(c.bootstrap), "logger": CLIENT_LOG})
    return admin.describe_consumer_groups([group])[group].result(timeout=15).coordinator.id


def test_streams_word_count_keeps_exact_counts_across_a_coordinator_kill9(make_netns_cluster, tmp_path,  # noqa: F811
                                                                          record_property):
    c = make_netns_cluster(overrides=NODE_SETTINGS)
    notes: list[str] = []
    prefix = f"java-wc-failover-{uuid.uuid4().hex[:8]}"
    app_id, source = f"{prefix}-wc", f"{prefix}-lines"
    topics = [source, f"{prefix}-counts", f"{app_id}-counts-changelog", f"{app_id}-words-repartition"]
    app = JavaScenario(c.bootstrap, "streams_word_count_failover", 200, prefix=prefix, stateDir=tmp_path / "state",
                       partitions=PARTITIONS, rf=RF, minIsr=MIN_ISR, rate=50)
    c.teardown_hooks.append(app.kill)

    def output_grows(by: int, what: str, timeout: float = PROGRESS_S) -> None:
        base = app.progress.get("outputRecords", 0)
        wait_for(lambda: app.alive() and app.progress.get("state") == "RUNNING"
                 and app.progress.get("outputRecords", 0) >= base + by, timeout,
                 f"{by} more word counts in the output {what} (progress: {app.progress})")

    output_grows(300, "at the start", timeout=90)
    wait_for_full_isr(c, topics + [OFFSETS], RF, CREATE_S, "with the application's internal topics")

    victim = group_coordinator(c, app_id)
    led = sorted(p for p, leader in agreed_leaders(c, source).items() if leader == victim)
    note(notes, f"streams: kill -9 of node {victim} (the application's group coordinator, leader of {source} {led})")
    sent_at_kill = app.progress["sent"]
    c.kill9(victim)
    killed_at, killed_wall = time.monotonic(), time.time()
    wait_for_failover(c, source, victim, led)
    wait_for(lambda: app.alive() and app.progress["acked"] >= sent_at_kill, PROGRESS_S,
             f"every line sent before the kill ({sent_at_kill}) acknowledged (progress: {app.progress})", interval=0.05)
    failover = f"streams: every line sent before the kill acknowledged {time.monotonic() - killed_at:.1f}s after it"
    note(notes, failover)
    record_property("failover", failover)
    output_grows(100, f"while node {victim} is down")
    c.start(victim)
    wait_for_full_isr(c, topics + [OFFSETS], RF, HEAL_S, f"after node {victim} restarted")
    output_grows(100, f"after node {victim} restarted")

    r = app.finish()
    states = [state for state, _ in r["states"]]
    note(notes, f"streams: {r['linesSent']} lines, {r['words']} words, {r['outputRecordsRead']} output records read; "
                f"RUNNING after {r['msToRunning']} ms; closed cleanly: {r['closedCleanly']}; states (seconds from the kill): "
                + ", ".join(f"{state} {ms / 1000 - killed_wall:+.1f}" for state, ms in r["states"]))
    assert {t: v["replicationFactor"] for t, v in r["internalTopics"].items()} == {t: RF for t in topics[2:]}, r["internalTopics"]
    assert r["failure"] is None and "ERROR" not in states, f"stream thread failed: {r['failure']}, states {states}"
    assert not r["sendErrors"], r["sendErrors"][:5]
    assert r["converged"] and r["counts"] == r["expected"], (
        f"counts {r['counts']} != expected {r['expected']} ({r['outputRecordsRead']} output records for {r['words']} words)")
