"""Shared machinery for the compatibility tests: a `Broker` that runs the real `sluice` binary
on free ports with its own data directory, fixtures handing one out, and small client helpers
every test file uses (consume a range with confluent-kafka, run kcat with a timeout, a
producer streaming across restarts and the check of what it left in the log).

Every wait here is bounded; every process started here is stopped at teardown.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sluice_bin() -> Path:
    return Path(os.environ.get("SLUICE_BIN", REPO / "target" / "release" / "sluice"))


_ports_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before in this run: a broker keeps its ports across
    restarts, and a cluster names every node's ports before any node binds them, so two
    handed-out ports must never be the same one."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port
    raise BrokerError("no fresh free port in 100 tries")


class BrokerError(AssertionError):
    pass


class Broker:
    """One `sluice` process. Ports and data dir stay the same across stop/kill9/start, so a
    restart is the same broker to its clients.

    `start()` is `spawn()` then `wait_until_ready()`; a cluster spawns all its nodes first,
    since each waits for the others before it opens its Kafka listener."""

    start_timeout_s = START_TIMEOUT_S
    host = "127.0.0.1"  # the address it listens on and clients reach it at (netns.py gives each node its own)

    def __init__(self, data_dir: Path, overrides: dict | None = None, max_open_files: int | None = None):
        self.data_dir = Path(data_dir)
        self.max_open_files = max_open_files  # RLIMIT_NOFILE for the broker process, if set
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.metrics_port = free_port()
        self.overrides = dict(overrides or {})
        self.proc: subprocess.Popen | None = None
        self.runs = 0  # how many times this broker was started; each run logs to its own file
        self.meant_to_run = False  # started and not since stopped or killed on purpose

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def log_path(self, run: int | None = None) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.sluice-{run or self.runs}.log"

    def log_text(self, run: int | None = None) -> str:
        p = self.log_path(run)
        return ANSI.sub("", p.read_text(errors="replace")) if p.exists() else ""

    def all_logs(self) -> str:
        return "".join(self.log_text(r) for r in range(1, self.runs + 1))

    def wait_for_log(self, text: str, timeout: float = 5.0) -> bool:
        """True once `text` appears in this broker's logs (any run) within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.all_logs():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def base_settings(self) -> dict:
        """What every run of this broker is given; `overrides` are laid on top."""
        return {
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "metrics.listener": f"{self.host}:{self.metrics_port}",
            "log.dirs": str(self.data_dir),
        }

    @property
    def ready_port(self) -> int:
        """The port that accepts connections once this process is ready for its clients."""
        return self.port

    def command(self) -> list[str]:
        cmd = [str(sluice_bin())]
        for k, v in {**self.base_settings(), **self.overrides}.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    def start(self) -> "Broker":
        self.spawn()
        return self.wait_until_ready()

    def spawn(self) -> None:
        """Starts the process without waiting for it to listen."""
        assert not self.running(), "broker already running"
        if not sluice_bin().exists():
            raise BrokerError(f"sluice binary not found at {sluice_bin()} (set SLUICE_BIN)")
        self.runs += 1
        log = open(self.log_path(), "wb")
        env = {**os.environ, "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            preexec_fn=self._limit_open_files if self.max_open_files else None,
        )
        log.close()
        self.meant_to_run = True

    def wait_until_ready(self) -> "Broker":
        """Waits up to `start_timeout_s` for `ready_port` to accept; kills the process and
        fails if it does not, or if the process exits first."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"sluice exited with {self.proc.returncode} at start:\n{self.log_text()}")
            try:
                socket.create_connection((self.host, self.ready_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.kill9()
        raise BrokerError(
            f"sluice did not accept connections on {self.ready_port} within {self.start_timeout_s}s:\n"
            f"{self.log_text()}"
        )

    def _limit_open_files(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_open_files, self.max_open_files))

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then wait up to `timeout` s for a clean exit (else kill -9 and fail);
        returns the exit code."""
        assert self.proc is not None
        self.meant_to_run = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
                raise BrokerError(f"sluice did not exit within {timeout}s of SIGTERM:\n{self.log_text()[-3000:]}")
        return self.proc.returncode

    def kill9(self) -> None:
        self.meant_to_run = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def restart(self) -> "Broker":
        code = self.stop()
        assert code == 0, f"sluice exited with {code} on SIGTERM:\n{self.log_text()}"
        return self.start()

    def assert_healthy(self) -> None:
        """The broker never panicked, and is up unless a test stopped it."""
        logs = self.all_logs()
        assert "panicked" not in logs, f"sluice panicked:\n{logs[-5000:]}"
        if self.meant_to_run:
            assert self.running(), f"sluice died (exit {self.proc.returncode}):\n{self.log_text()[-5000:]}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.all_logs().splitlines()[-lines:])


def broker_fixture(tmp_path_factory, name: str, overrides: dict | None = None):
    b = Broker(tmp_path_factory.mktemp(name) / "data", overrides).start()
    try:
        yield b
        b.assert_healthy()
    finally:
        b.kill9()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, the tail of each broker's log goes into the report: a `Broker` fixture's,
    and every node's of a fixture with `log_tails()` (the clusters of `cluster.py`)."""
    report = yield
    if report.failed and hasattr(item, "funcargs"):
        for name, value in item.funcargs.items():
            if isinstance(value, Broker):
                report.sections.append((f"sluice log ({name}, tail)", value.log_tail()))
            elif hasattr(value, "log_tails"):
                for node, tail in value.log_tails().items():
                    report.sections.append((f"sluice log ({name}, {node}, tail)", tail))
    return report


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """One broker per test module; tests in a module use distinct topic names."""
    yield from broker_fixture(tmp_path_factory, "sluice")


@pytest.fixture
def fresh_broker(tmp_path_factory):
    """A broker of this test's own, for tests that stop, kill or restart it."""
    yield from broker_fixture(tmp_path_factory, "sluice-own")


@pytest.fixture
def topic(request) -> str:
    """A topic name unique to this test (and to this run)."""
    return unique_topic(request.node.name)


def unique_topic(hint: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", hint)[:80]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------
# kcat


def kcat(bootstrap: str, *args: str, input: bytes | None = None, timeout: float = 20.0) -> subprocess.CompletedProcess:
    """Runs kcat against the broker; fails the test on a non-zero exit or a timeout."""
    cmd = ["kcat", "-b", bootstrap, *args]
    try:
        r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(cmd)} timed out after {timeout}s; stderr:\n{e.stderr!r}") from e
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}; stderr:\n{r.stderr.decode(errors='replace')}"
    return r


def kcat_metadata(bootstrap: str, *args: str) -> dict:
    """`kcat -L -J`: brokers, controller id, topics with their partitions, leaders and ISRs."""
    return json.loads(kcat(bootstrap, "-L", "-J", *args).stdout)


# ---------------------------------------------------------------------------------------------
# confluent-kafka


def admin_config(bootstrap: str) -> dict:
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, "log.connection.close": False}


def producer_config(bootstrap: str, **extra) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": False,  # the default; tests that want it turn it on
        "socket.timeout.ms": 10000,
        "log.connection.close": False,  # a broker stopped by a test is not news
        "message.timeout.ms": 20000,
        **extra,
    }


def consumer_config(bootstrap: str, **extra) -> dict:
    # librdkafka insists on a group.id even for assign(); with assign() only, auto-commit and
    # offset store off, and an explicit start offset, it never joins, fetches or commits
    # offsets for the group.
    return {
        "bootstrap.servers": bootstrap,
        "group.id": "sluice-compat-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 100,  # end of partition is seen after one empty long poll
        "socket.timeout.ms": 10000,
        "log.connection.close": False,
        **extra,
    }


def batching_producer(bootstrap: str, topic: str, **extra):
    """A Producer that already knows `topic`'s partitions (creating the topic if need be), so
    records produced together within linger.ms go out as one batch: librdkafka otherwise
    parks the first ones while it looks the topic up and may send them as a batch of their own."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(admin_config(bootstrap))
    if topic not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(timeout=10)
    p = Producer(producer_config(bootstrap, **extra))
    p.list_topics(topic, timeout=10)
    return p


def produce_all(producer, topic: str, values, partition: int = 0, timeout: float = 20.0, **kw) -> list:
    """Produces every value and waits for all delivery reports; returns [(err, msg)] in order."""
    reports = []

    def on_delivery(err, msg):
        reports.append((err, msg))

    for v in values:
        producer.produce(topic, value=v, partition=partition, on_delivery=on_delivery, **kw)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout}s"
    return reports


def delivered_offsets(reports) -> list[int]:
    errors = [err for err, _ in reports if err is not None]
    assert not errors, f"delivery failed: {errors[:3]}"
    return [m.offset() for _, m in reports]


def poll_messages(consumer, count: int, timeout: float) -> list:
    """The next `count` messages of a subscribed or assigned consumer (end-of-partition events
    skipped), failing if they have not all arrived within `timeout` seconds."""
    from confluent_kafka import KafkaError

    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        m = consumer.poll(0.1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError(f"consumer error: {m.error()}")
        got.append(m)
    assert len(got) == count, f"got {len(got)} of {count} messages in {timeout}s"
    return got


def consume_range(
    bootstrap: str, topic: str, partition: int, start, count: int, timeout: float = 20.0, **extra
) -> list:
    """Assigns one partition at `start` (an offset or OFFSET_BEGINNING) and returns the first
    `count` messages, failing if they have not all arrived within `timeout` seconds."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(consumer_config(bootstrap, **extra))
    try:
        c.assign([TopicPartition(topic, partition, start)])
        return poll_messages(c, count, timeout)
    finally:
        c.close()


def consume_until_eof(bootstrap: str, topic: str, partition: int = 0, start=None, timeout: float = 20.0,
                      **config) -> list:
    """Everything from `start` (default: beginning) up to the end of the partition (for
    read_committed, `**{"isolation.level": "read_committed"}`: up to the last stable offset)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    c = Consumer(consumer_config(bootstrap, **config))
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING if start is None else start)])
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    return got
                raise AssertionError(f"consumer error: {m.error()}")
            got.append(m)
        raise AssertionError(f"no end of partition {topic}[{partition}] within {timeout}s ({len(got)} read)")
    finally:
        c.close()


CLIENT_TIMEOUT_S = 20


def create_topic(broker: Broker, topic: str, partitions: int = 1, config: dict | None = None) -> None:
    """Creates `topic` with confluent-kafka's AdminClient (topic configs by Kafka name)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(admin_config(broker.bootstrap))
    new = NewTopic(topic, num_partitions=partitions, config={k: str(v) for k, v in (config or {}).items()})
    admin.create_topics([new])[topic].result(timeout=CLIENT_TIMEOUT_S)


def watermarks(broker: Broker, topic: str, partition: int = 0) -> tuple[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(consumer_config(broker.bootstrap))
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=CLIENT_TIMEOUT_S, cached=False)
    finally:
        c.close()


def log_contents(broker: Broker, topic: str, partition: int = 0) -> list[tuple[int, bytes]]:
    """(offset, value) of every record in the partition, read with confluent-kafka."""
    got = consume_until_eof(broker.bootstrap, topic, partition, timeout=CLIENT_TIMEOUT_S)
    return [(m.offset(), m.value()) for m in got]


class StreamingProducer(threading.Thread):
    """A confluent-kafka producer (acks=all) sending `seq-<n>` values until stopped, value n to
    partition n % `partitions`, recording each delivery report. `extra` producer settings win
    over these; `burst_interval_s` paces it (a burst of BURST every that many seconds) where a
    test wants a steady stream rather than all the machine can do.

    Idempotent: librdkafka retries whatever was in flight when a connection broke, and the
    broker must drop the copies it already has. Otherwise no retries: a request that fails (the
    broker died under it) is reported failed rather than re-sent, so any duplicate in the log
    would be the broker's doing, not the client's."""

    BURST = 50

    def __init__(self, bootstrap: str, topic: str, idempotent: bool = False, partitions: int = 1,
                 extra: dict | None = None, burst_interval_s: float = 0.0):
        from confluent_kafka import Producer

        super().__init__(daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.burst_interval_s = burst_interval_s
        reliability = {"enable.idempotence": True} if idempotent else {"retries": 0}
        settings = {
            "acks": "all",
            **reliability,
            "linger.ms": 2,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 200,
            **(extra or {}),
        }
        self.producer = Producer(producer_config(bootstrap, **settings))
        self.acked: list[tuple[int, bytes]] = []  # (offset, value), in report order
        self.acked_in: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}  # per partition
        self.failed: list[bytes] = []
        self.errors: list = []
        self.sent = 0
        self.stopping = threading.Event()
        self.undelivered = None

    def on_delivery(self, err, msg):
        if err is None:
            self.acked.append((msg.offset(), msg.value()))
            self.acked_in[msg.partition()].append((msg.offset(), msg.value()))
        else:
            self.failed.append(msg.value())
            self.errors.append(err)

    def sent_to(self, partition: int) -> list[bytes]:
        """Every value sent to `partition`, in the order sent."""
        return [f"seq-{n:07d}".encode() for n in range(partition, self.sent, self.partitions)]

    def run(self):
        while not self.stopping.is_set():
            try:
                for _ in range(self.BURST):  # bursts keep several produce requests in flight
                    value = f"seq-{self.sent:07d}".encode()
                    self.producer.produce(
                        self.topic, value=value, partition=self.sent % self.partitions, on_delivery=self.on_delivery
                    )
                    self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0.002)
            if self.burst_interval_s:
                self.stopping.wait(self.burst_interval_s)
        self.undelivered = self.producer.flush(CLIENT_TIMEOUT_S)
        self.producer = None  # destroyed here, not whenever the garbage collector gets to it

    def wait_for_acks(self, count: int) -> None:
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {count} acks in {CLIENT_TIMEOUT_S}s"
            assert self.is_alive(), "producer thread died"
            time.sleep(0.01)

    def finish(self) -> None:
        self.stopping.set()
        self.join(CLIENT_TIMEOUT_S + 5)
        assert not self.is_alive(), "producer thread did not finish"
        assert self.undelivered == 0, f"{self.undelivered} messages neither delivered nor failed"


def assert_every_ack_is_in_the_log_once_in_order(acked, log) -> None:
    """`log` (one partition's (offset, value)s) has contiguous offsets from 0, no value twice,
    values in the order sent, and every acknowledged (offset, value) of `acked`."""
    offsets = [o for o, _ in log]
    values = [v for _, v in log]
    assert offsets == list(range(len(log))), "offsets in the log have gaps or repeats"
    assert len(set(values)) == len(values), "the log holds a record twice"
    assert values == sorted(values), "the log holds records out of the order they were sent"
    assert_every_ack_is_in_the_log(acked, log)


def assert_every_ack_is_in_the_log(acked, log) -> None:
    """Every acknowledged (offset, value) of `acked` is in `log` (one partition's (offset,
    value)s) at that offset."""
    at = dict(log)
    wrong = [(o, v, at.get(o)) for o, v in acked if at.get(o) != v]
    assert not wrong, f"{len(wrong)} acknowledged records are missing or elsewhere, e.g. {wrong[:3]}"


# ---------------------------------------------------------------------------------------------
# What the broker stored: Kafka's on-disk layout, <log.dirs>/<topic>-<partition>/*.log, each a
# sequence of v2 record batches. Lets a test check how the client batched and compressed.

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def stored_batches(broker: Broker, topic: str, partition: int = 0) -> list[dict]:
    """Every batch header in the partition's segments, oldest first: offsets, codec, record
    count, size on disk (bytes, with the 12-byte offset and length prefix) and the producer id,
    epoch and base sequence (-1, -1, -1 unless written by an idempotent producer)."""
    batches = []
    for seg in sorted((broker.data_dir / f"{topic}-{partition}").glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            base_offset = int.from_bytes(data[pos : pos + 8], "big", signed=True)
            length = int.from_bytes(data[pos + 8 : pos + 12], "big", signed=True)
            if length <= 0:
                break  # preallocated or torn tail
            attributes = int.from_bytes(data[pos + 21 : pos + 23], "big")
            last_delta = int.from_bytes(data[pos + 23 : pos + 27], "big", signed=True)
            count = int.from_bytes(data[pos + 57 : pos + 61], "big", signed=True)
            batches.append(
                {
                    "base_offset": base_offset,
                    "last_offset": base_offset + last_delta,
                    "codec": CODECS.get(attributes & 7, attributes & 7),
                    "records": count,
                    "size": 12 + length,
                    "producer_id": int.from_bytes(data[pos + 43 : pos + 51], "big", signed=True),
                    "producer_epoch": int.from_bytes(data[pos + 51 : pos + 53], "big", signed=True),
                    "base_sequence": int.from_bytes(data[pos + 53 : pos + 57], "big", signed=True),
                }
            )
            pos += 12 + length
    return batches
