"""The replication tests' workload and the views they check it through:

- `IdempotentProducer`: a confluent-kafka producer thread (idempotent, acks=all) sending unique
  values `<name>-<seq>` round robin over a topic's partitions at a steady rate, recording every
  record's fate as a `checker.Sent` (acknowledged with its offset, failed with its error, or no
  report) and the time of each acknowledgement;
- `GroupReader`: a consumer-group member thread reading the topic and committing synchronously
  every half second, recording what it read and every commit the coordinator acknowledged;
- `raw_produce` / `RawProduce`: one acks=all Produce request (v9) sent straight to a node of
  the test's choosing over a connection of its own, for the requests no client library can be
  made to send to a given node (a deposed, paused or isolated leader);
- cluster views: every partition's leader / replicas / ISR as each running node answers,
  `read_all` (a full read of every partition), `replica_batches` (the batch headers a replica
  holds on disk, to compare replicas), `group_resume_problems`.

Every wait is bounded; threads stop on `stop()` and are joined with a deadline.
"""

import logging
import socket
import struct
import threading
import time
from functools import partial

import crc32c
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

import kafka_wire
from checker import ACKED, FAILED, UNKNOWN, Sent
from cluster import Cluster, wait_for
from conftest import consume_until_eof, consumer_config, producer_config

# Kafka error codes
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20

PRODUCER_SETTINGS = {
    "enable.idempotence": True,  # acks=all, retries, at most 5 in flight, ordered
    "acks": "all",
    "linger.ms": 5,
    "message.timeout.ms": 120000,  # longer than any fault here: no delivery may fail
    "request.timeout.ms": 10000,  # a paused or isolated leader holds requests this long
    "retry.backoff.ms": 100,
    "retry.backoff.max.ms": 500,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "topic.metadata.refresh.interval.ms": 1000,  # learn new leaders within a second
}
CLIENT_LOG = logging.getLogger("librdkafka")  # librdkafka's log lines: captured by pytest, not printed
FLUSH_S = 60  # at the end, what is still queued gets this long to be delivered


class IdempotentProducer(threading.Thread):
    """Sends `<name>-<seq>` (seq from 0) to partition seq % partitions at `rate` records/s until
    `stop()`. `records[seq]` is each record's `Sent`; `ack_times[seq]` when it was
    acknowledged (time.monotonic()); `client_errors` what librdkafka's error callback said."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, name: str = "p0", rate: int = 1000,
                 extra: dict | None = None):
        super().__init__(daemon=True, name=f"producer {name}")
        self.topic, self.partitions, self.name, self.rate = topic, partitions, name, rate
        self.records: list[Sent] = []
        self.ack_times: dict[int, float] = {}
        self.send_times: list[float] = []
        self.acked_in = [0] * partitions  # acknowledgements per partition
        self.client_errors: list[tuple[str, str, bool]] = []  # (code name, text, fatal)
        self.undelivered: int | None = None
        self.stopping = threading.Event()
        self.abandoned = False  # stopped at a failed test's teardown: drop what is queued
        self.crashed: BaseException | None = None
        self.lock = threading.Lock()
        settings = {**PRODUCER_SETTINGS, **(extra or {}), "error_cb": self._on_error, "logger": CLIENT_LOG}
        self.producer = Producer(producer_config(bootstrap, **settings))

    def _on_error(self, err) -> None:
        self.client_errors.append((err.name(), err.str(), err.fatal()))

    def _on_delivery(self, seq: int, err, msg) -> None:
        s = self.records[seq]
        if err is None:
            s.status, s.offset = ACKED, msg.offset()
            self.ack_times[seq] = time.monotonic()
            self.acked_in[s.partition] += 1
        else:
            s.status, s.error = FAILED, f"{err.name()}: {err.str()}"

    def run(self) -> None:
        try:
            tick, started, owed = 0.01, time.monotonic(), 0.0
            while not self.stopping.is_set():
                owed = self.rate * (time.monotonic() - started) - len(self.records)
                for _ in range(int(owed)):
                    seq = len(self.records)
                    p = seq % self.partitions
                    value = f"{self.name}-{seq:07d}"
                    with self.lock:
                        self.records.append(Sent(value, p, self.name, seq))
                        self.send_times.append(time.monotonic())
                    try:
                        self.producer.produce(self.topic, value=value, partition=p,
                                              on_delivery=partial(self._on_delivery, seq))
                    except BufferError:  # queue full: the record was not taken; forget it
                        with self.lock:
                            self.records.pop()
                            self.send_times.pop()
                        break
                self.producer.poll(tick)
            if self.abandoned:
                self.producer.purge()
                self.producer.flush(1)
            else:
                self.undelivered = self.producer.flush(FLUSH_S)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.crashed = e
        finally:
            self.producer = None  # destroyed in this thread, now

    # -- observing it

    def acked(self) -> int:
        return sum(self.acked_in)

    def wait_for_progress(self, partitions: list[int] | None = None, more: int = 30, timeout: float = 30,
                          what: str = "") -> None:
        """Until each of `partitions` (default: all) has `more` acknowledgements than now."""
        partitions = list(range(self.partitions)) if partitions is None else partitions
        base = {p: self.acked_in[p] for p in partitions}

        def progressed():
            assert self.is_alive(), f"producer thread ended: {self.crashed!r}"
            fatal = [e for e in self.client_errors if e[2]]
            assert not fatal, f"the producer hit a fatal error: {fatal}"
            return all(self.acked_in[p] >= base[p] + more for p in partitions)

        wait_for(progressed, timeout,
                 f"{more} more acknowledgements on each of partitions {partitions}{' ' + what if what else ''} "
                 f"(acknowledged per partition now: {self.acked_in})")

    def acked_between(self, start: float, end: float) -> list[Sent]:
        """Records whose acknowledgement arrived within [start, end] (monotonic times)."""
        return [self.records[seq] for seq, t in list(self.ack_times.items()) if start <= t <= end]

    def sent_since(self, start: float) -> int:
        with self.lock:
            return sum(1 for t in self.send_times if t >= start)

    def stop(self) -> None:
        self.stopping.set()
        self.join(FLUSH_S + 15)
        assert not self.is_alive(), "the producer thread did not finish"
        assert self.crashed is None, f"the producer thread failed: {self.crashed!r}"

    def abandon(self) -> None:
        """At the teardown of a test that failed midway: stop without waiting for deliveries."""
        self.abandoned = True
        self.stopping.set()
        self.join(10)

    def history(self) -> list[Sent]:
        return list(self.records)


class GroupReader(threading.Thread):
    """One member of consumer group `group` reading `topic` from the earliest offset; every
    `commit_every_s` it commits what it has read, synchronously. `reads` holds (partition,
    offset, value) in read order; `committed` the last offset per partition the coordinator
    acknowledged; `commit_failures` the errors of the others."""

    def __init__(self, bootstrap: str, topic: str, group: str, commit_every_s: float = 0.5):
        super().__init__(daemon=True, name=f"group {group}")
        self.bootstrap, self.topic, self.group, self.commit_every_s = bootstrap, topic, group, commit_every_s
        self.reads: list[tuple[int, int, str]] = []
        self.committed: dict[int, int] = {}
        self.commits_acknowledged = 0
        self.commit_failures: list[str] = []
        self.consumer_errors: list[str] = []
        self.stopping = threading.Event()
        self.abandoned = False
        self.crashed: BaseException | None = None

    def run(self) -> None:
        try:
            c = Consumer(group_consumer_config(self.bootstrap, self.group))
            try:
                c.subscribe([self.topic])
                last_commit = time.monotonic()
                while not self.stopping.is_set():
                    m = c.poll(0.1)
                    if m is not None:
                        if m.error():
                            self.consumer_errors.append(str(m.error()))
                        else:
                            self.reads.append((m.partition(), m.offset(), m.value().decode()))
                    if time.monotonic() - last_commit >= self.commit_every_s:
                        self._commit(c)
                        last_commit = time.monotonic()
                if not self.abandoned:
                    self._commit(c)
            finally:
                c.close()
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.crashed = e

    def _commit(self, c: Consumer) -> None:
        try:
            result = c.commit(asynchronous=False)
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:  # nothing new to commit
                self.commit_failures.append(str(e.args[0]))
            return
        for tp in result or []:
            if tp.error is None and tp.offset >= 0:
                self.committed[tp.partition] = max(self.committed.get(tp.partition, -1), tp.offset)
            elif tp.error is not None:
                self.commit_failures.append(f"{tp.partition}: {tp.error}")
        self.commits_acknowledged += 1

    def abandon(self) -> None:
        """At the teardown of a test that failed midway: stop without a last commit."""
        self.abandoned = True
        self.stopping.set()
        self.join(15)

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)
        assert not self.is_alive(), "the group member did not finish"
        assert self.crashed is None, f"the group member failed: {self.crashed!r}"


def group_consumer_config(bootstrap: str, group: str, **extra) -> dict:
    return consumer_config(
        bootstrap,
        **{
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": True,  # commit() commits what poll() returned
            "enable.partition.eof": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "topic.metadata.refresh.interval.ms": 1000,
            "logger": CLIENT_LOG,
            **extra,
        },
    )


def group_resume_problems(bootstrap: str, topic: str, group: str, committed: dict[int, int],
                          log: dict[int, list[tuple[int, str]]], timeout: float = 30) -> list[str]:
    """A new member of `group` must find the group's committed offsets at or after `committed`
    (what the coordinator acknowledged) and read each partition from its committed offset
    exactly to the end of `log` (the full read). Returns what went wrong."""
    problems = []
    c = Consumer(group_consumer_config(bootstrap, group, **{"enable.partition.eof": True}))
    try:
        tps = c.committed([TopicPartition(topic, p) for p in log], timeout=timeout)
        found = {tp.partition: tp.offset for tp in tps}
        for p, offset in committed.items():
            if found.get(p, -1) < offset:
                problems.append(f"partition {p}: the group's committed offset is {found.get(p)}, "
                                f"below {offset}, which the coordinator acknowledged")
        c.subscribe([topic])
        got: dict[int, list[tuple[int, str]]] = {p: [] for p in log}
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_end) < len(log) and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                else:
                    problems.append(f"resumed member: {m.error()}")
                continue
            got[m.partition()].append((m.offset(), m.value().decode()))
        if len(at_end) < len(log):
            problems.append(f"the resumed member did not reach the end of partitions "
                            f"{sorted(set(log) - at_end)} in {timeout}s")
        for p, records in log.items():
            start = found.get(p, -1)
            want = [(o, v) for o, v in records if o >= max(start, 0)]
            if got[p] and got[p][0][0] < committed.get(p, 0):
                problems.append(f"partition {p}: the resumed member started at {got[p][0][0]}, "
                                f"before the acknowledged commit {committed[p]}")
            if got[p] != want:
                problems.append(f"partition {p}: from committed offset {start} the resumed member read "
                                f"{len(got[p])} records (first {got[p][:1]}), the log holds {len(want)} "
                                f"(first {want[:1]})")
    finally:
        c.close()
    return problems


# ---------------------------------------------------------------------------------------------
# One Produce request to one node


def record_batch(values: list[str]) -> bytes:
    """A v2 record batch, uncompressed, no producer id, offsets from 0."""
    now = int(time.time() * 1000)

    def varint(n: int) -> bytes:
        return kafka_wire.uvarint((n << 1) ^ (n >> 63))

    records = b""
    for i, v in enumerate(values):
        data = v.encode()
        body = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(len(data)) + data + varint(0)
        records += varint(len(body)) + body
    after_crc = (struct.pack(">hiqqqhi", 0, len(values) - 1, now, now, -1, -1, -1)
                 + struct.pack(">i", len(values)) + records)
    crc = crc32c.crc32c(after_crc)
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc  # partition leader epoch, magic, crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce_request(topic: str, partition: int, values: list[str], acks: int, timeout_ms: int) -> bytes:
    """Produce v9 (flexible): no transactional id, one topic, one partition."""
    batch = record_batch(values)
    part = kafka_wire.i32(partition) + kafka_wire.uvarint(len(batch) + 1) + batch + kafka_wire.TAGS
    topic_data = kafka_wire.compact_string(topic) + kafka_wire.compact_array([part]) + kafka_wire.TAGS
    body = (kafka_wire.compact_string(None) + kafka_wire.i16(acks) + kafka_wire.i32(timeout_ms)
            + kafka_wire.compact_array([topic_data]) + kafka_wire.TAGS)
    header = (struct.pack(">hhih", 0, 9, kafka_wire.CORRELATION_ID, len(kafka_wire.CLIENT_ID))
              + kafka_wire.CLIENT_ID + kafka_wire.TAGS)
    frame = header + body
    return kafka_wire.i32(len(frame)) + frame


def parse_produce_response(data: bytes) -> tuple[int, int]:
    """(error code, base offset) of the one partition of a Produce v9 response."""
    r = kafka_wire.Reader(data)
    assert r.int32() == kafka_wire.CORRELATION_ID, "response to another request"
    r.tags()

    def record_error(r):
        r.int32(), r.string()
        r.tags()

    def partition(r):
        res = (r.int32(), r.int16(), r.int64())
        r.int64(), r.int64()  # log append time, log start offset
        r.array(record_error)
        r.string()  # error message
        r.tags()
        return res

    def topic(r):
        t = (r.string(), r.array(partition))
        r.tags()
        return t

    [(_, [(_, code, base_offset)])] = r.array(topic)
    return code, base_offset


class RawProduce(threading.Thread):
    """One acks=all (by default) Produce of `values` to `host:port`, sent at `start()` on a
    connection of its own; `result` is ("answered", error code, base offset) or ("no answer",
    why) once the thread ends (within `wait_s`). Connecting and sending complete even to a
    SIGSTOPped broker (the kernel holds the connection and the bytes), so a paused leader sees
    the request the moment it is continued."""

    def __init__(self, host: str, port: int, topic: str, partition: int, values: list[str], acks: int = -1,
                 timeout_ms: int = 3000, wait_s: float = 20):
        super().__init__(daemon=True, name=f"raw produce to {host}")
        self.host, self.port, self.topic, self.partition, self.values = host, port, topic, partition, values
        self.acks, self.timeout_ms, self.wait_s = acks, timeout_ms, wait_s
        self.result: tuple | None = None
        self.sent = threading.Event()

    def run(self) -> None:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.wait_s) as sock:
                sock.sendall(produce_request(self.topic, self.partition, self.values, self.acks, self.timeout_ms))
                self.sent.set()
                size = struct.unpack(">i", kafka_wire.recv_exactly(sock, 4))[0]
                code, base = parse_produce_response(kafka_wire.recv_exactly(sock, size))
                self.result = ("answered", code, base)
        except (OSError, AssertionError) as e:
            self.result = ("no answer", repr(e))
        finally:
            self.sent.set()

    def outcome(self) -> tuple:
        self.join(self.wait_s + 5)
        assert self.result is not None, "raw produce thread did not finish"
        return self.result

    @property
    def acknowledged(self) -> bool:
        return self.outcome()[:2] == ("answered", 0)

    def as_sent(self, producer: str = "probe", first_seq: int = 0) -> list[Sent]:
        """The values as checker history: acknowledged (with offsets) only on error code 0."""
        r = self.outcome()
        seqs = enumerate(self.values, start=first_seq)
        if r[:2] == ("answered", 0):
            return [Sent(v, self.partition, producer, seq, ACKED, r[2] + seq - first_seq) for seq, v in seqs]
        status, error = (FAILED, f"error code {r[1]}") if r[0] == "answered" else (UNKNOWN, r[1])
        return [Sent(v, self.partition, producer, seq, status, error=error) for seq, v in seqs]


def raw_produce(host: str, port: int, topic: str, partition: int, values: list[str], **kw) -> tuple:
    p = RawProduce(host, port, topic, partition, values, **kw)
    p.start()
    return p.outcome()


# ---------------------------------------------------------------------------------------------
# One Metadata request to one node: exactly that node's view (a librdkafka client bootstrapped
# at one node may still ask another once it knows them)


class Metadata:
    """A node's Metadata v12 answer: `brokers` {id: (host, port)}, `controller_id`, and
    `partitions` {(topic, partition): Partition}."""

    class Partition:
        """`replicas`, `isr` and `offline` sorted (for comparisons as sets); `assignment` is the
        replica list as sent, whose first broker is the preferred leader."""

        def __init__(self, error, leader, epoch, assignment, isr, offline):
            self.error, self.leader, self.epoch = error, leader, epoch
            self.assignment = assignment
            self.replicas, self.isr, self.offline = sorted(assignment), isr, offline

        def __repr__(self) -> str:
            return (f"leader {self.leader} (epoch {self.epoch}), replicas {self.replicas}, ISR {self.isr}"
                    + (f", error {self.error}" if self.error else ""))

    def __init__(self, brokers, controller_id, partitions, topic_errors):
        self.brokers, self.controller_id = brokers, controller_id
        self.partitions, self.topic_errors = partitions, topic_errors

    def topic(self, name: str) -> dict[int, "Metadata.Partition"]:
        assert name in self.topic_errors, f"no topic {name}"
        assert self.topic_errors[name] == 0, f"topic {name}: error {self.topic_errors[name]}"
        return {p: part for (t, p), part in self.partitions.items() if t == name}


def metadata(host: str, port: int, timeout: float = 5) -> Metadata:
    """Metadata v12 for every topic, asked of `host:port` and answered by it alone."""
    body = kafka_wire.uvarint(0) + b"\x00\x00" + kafka_wire.TAGS  # all topics, no auto-creation, no ACL ops
    header = (struct.pack(">hhih", 3, 12, kafka_wire.CORRELATION_ID, len(kafka_wire.CLIENT_ID))
              + kafka_wire.CLIENT_ID + kafka_wire.TAGS)
    frame = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(kafka_wire.i32(len(frame)) + frame)
        size = struct.unpack(">i", kafka_wire.recv_exactly(sock, 4))[0]
        r = kafka_wire.Reader(kafka_wire.recv_exactly(sock, size))
    assert r.int32() == kafka_wire.CORRELATION_ID, "response to another request"
    r.tags()

    def in_order(r):
        return r.array(lambda r: r.int32()) or []

    def ints(r):
        return sorted(in_order(r))

    def broker(r):
        b = (r.int32(), r.string(), r.int32())
        r.string()  # rack
        r.tags()
        return b

    partitions, topic_errors = {}, {}

    def topic(r):
        error, name = r.int16(), r.string()
        r.take(16), r.boolean()  # topic id, internal

        def partition(r):
            error, index, leader, epoch = r.int16(), r.int32(), r.int32(), r.int32()
            partitions[(name, index)] = Metadata.Partition(error, leader, epoch, in_order(r), ints(r), ints(r))
            r.tags()

        r.array(partition)
        r.int32()  # authorized operations
        r.tags()
        topic_errors[name] = error

    r.int32()  # throttle time
    brokers = {b[0]: (b[1], b[2]) for b in r.array(broker)}
    r.string()  # cluster id
    controller = r.int32()
    r.array(topic)
    r.tags()
    return Metadata(brokers, controller, partitions, topic_errors)


def node_metadata(cluster: Cluster, node_id: int, timeout: float = 5) -> Metadata:
    n = cluster.node(node_id)
    return metadata(n.host, n.port, timeout)


# ---------------------------------------------------------------------------------------------
# What the cluster says and holds


def live_brokers(cluster: Cluster) -> list[int]:
    """Brokers running and not paused: those that can answer."""
    return [n.node_id for n in cluster.running_brokers() if not getattr(n, "paused", False)]


def full_isr_problems(cluster: Cluster, topics: list[str], rf: int) -> list[str]:
    """What keeps every partition of `topics` from having, on every live broker, the same live
    leader and an ISR of all `rf` replicas; empty when none."""
    live = live_brokers(cluster)
    views = {i: node_metadata(cluster, i) for i in live}
    problems = []
    for via, md in views.items():
        for t in topics:
            if md.topic_errors.get(t, -1) != 0:
                problems.append(f"node {via}: topic {t}: {md.topic_errors.get(t, 'missing')}")
    if problems:
        return problems
    first_via = live[0]
    for t in topics:
        for p, part in sorted(views[first_via].topic(t).items()):
            if part.leader not in live:
                problems.append(f"{t}[{p}]: {part}")
            elif len(part.replicas) != rf or part.isr != part.replicas:
                problems.append(f"{t}[{p}]: {part}")
            for via, md in views.items():
                other = md.topic(t).get(p)
                if other is None or other.leader != part.leader:
                    problems.append(f"{t}[{p}]: node {first_via} says leader {part.leader}, node {via}: {other}")
    return problems


def wait_for_full_isr(cluster: Cluster, topics: list[str], rf: int, timeout: float, what: str = "") -> None:
    last: list[str] = []

    def healthy():
        nonlocal last
        last = full_isr_problems(cluster, topics, rf)
        return not last

    try:
        wait_for(healthy, timeout, f"a live leader and a full ISR for every partition of {topics} {what}")
    except AssertionError as e:
        raise AssertionError(f"{e}\nstill: {last[:8]}{' …' if len(last) > 8 else ''}") from None


def leaders_seen_by(cluster: Cluster, node_id: int, topic: str) -> dict[int, int]:
    return {p: part.leader for p, part in node_metadata(cluster, node_id).topic(topic).items()}


def agreed_leaders(cluster: Cluster, topic: str, timeout: float = 15) -> dict[int, int]:
    """{partition: leader} once every live broker names the same leaders."""

    def agreed():
        views = [leaders_seen_by(cluster, i, topic) for i in live_brokers(cluster)]
        return views[0] if all(v == views[0] for v in views) else None

    return wait_for(agreed, timeout, f"every running broker to name the same leaders of {topic}")


def agreed_controller(cluster: Cluster, among: list[int], timeout: float = 15) -> int:
    """The controller id every node of `among` names, once they all name the same live voter."""

    def agreed():
        seen = {node_metadata(cluster, i).controller_id for i in among}
        return seen.pop() if len(seen) == 1 and seen <= set(cluster.voter_ids) else None

    return wait_for(agreed, timeout, f"nodes {among} to name one controller")


def read_all(bootstrap: str, topic: str, partitions: int, timeout: float = 60) -> dict[int, list[tuple[int, str]]]:
    """Every record of every partition, (offset, value) in offset order, up to the high watermark."""
    return {p: [(m.offset(), m.value().decode()) for m in consume_until_eof(bootstrap, topic, p, timeout=timeout)]
            for p in range(partitions)}


def replica_batches(node, topic: str, partition: int) -> list[tuple[int, int, int, int]]:
    """(base offset, last offset, partition leader epoch, CRC) of every record batch the node
    holds for the partition on disk, in order. Followers copy the leader's batches as they are,
    so replicas in sync hold the same list."""
    batches = []
    for seg in sorted((node.data_dir / f"{topic}-{partition}").glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            base, length, epoch, _magic, crc = struct.unpack(">qiibI", data[pos:pos + 21])
            if length <= 0:
                break  # preallocated or torn tail
            last_delta = struct.unpack(">i", data[pos + 23:pos + 27])[0]
            batches.append((base, base + last_delta, epoch, crc))
            pos += 12 + length
    return batches


def replica_divergence(cluster: Cluster, topic: str, replicas: dict[int, list[int]]) -> list[str]:
    """Partitions whose replicas (ids per partition) do not hold the same batches on disk."""
    problems = []
    for p, ids in sorted(replicas.items()):
        logs = {i: replica_batches(cluster.node(i), topic, p) for i in ids}
        first = logs[ids[0]]
        for i in ids[1:]:
            if logs[i] != first:
                common = next((k for k, (a, b) in enumerate(zip(first, logs[i])) if a != b),
                              min(len(first), len(logs[i])))
                problems.append(f"partition {p}: node {ids[0]} holds {len(first)} batches (to offset "
                                f"{first[-1][1] if first else None}), node {i} {len(logs[i])} (to "
                                f"{logs[i][-1][1] if logs[i] else None}); they differ from batch {common}")
    return problems
