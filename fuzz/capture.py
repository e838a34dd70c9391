"""Seeds the fuzz corpora from real client traffic.

Starts a release `sluice` whose advertised listener is a recording proxy, so every connection
of every client goes through it; runs kcat, confluent-kafka, kafka-python and Kafka's own Java
tools against it (produce with every codec, consume, groups, admin); and writes

- every distinct request frame the clients sent (size prefix removed)  -> seeds/request/
- every record batch the broker stored, and its records section with a codec byte in front
                                                                     -> seeds/record_batches/,
                                                                        seeds/decompress/
- every `__consumer_offsets` record as [key length u16][key][value]     -> seeds/group_blobs/

Run from the repository root after `make build test-deps`:
    compat-tests/.venv/bin/python fuzz/capture.py
"""

import hashlib
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "fuzz" / "seeds"
MAX_SEED_BYTES = 64 * 1024  # libFuzzer's default -max_len is 4 KiB; keep seeds small anyway
TOOL = REPO / "compat-tests" / "kafka-tool"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save(target: str, data: bytes) -> None:
    if not data or len(data) > MAX_SEED_BYTES:
        return
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


class Proxy:
    """Forwards 127.0.0.1:port to the broker, cutting the client's stream into frames."""

    def __init__(self, port: int, upstream: int):
        self.port, self.upstream = port, upstream
        self.server = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.server.accept()
            broker = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self.client_to_broker, args=(client, broker), daemon=True).start()
            threading.Thread(target=self.pipe, args=(broker, client), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def client_to_broker(self, client, broker):
        pending = b""
        try:
            while data := client.recv(65536):
                broker.sendall(data)
                pending += data
                while len(pending) >= 4:
                    (size,) = struct.unpack(">i", pending[:4])
                    if len(pending) < 4 + size:
                        break
                    save("request", pending[4 : 4 + size])
                    pending = pending[4 + size :]
        except OSError:
            pass


def run(*cmd, input=None, timeout=60):
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        print(f"warning: {' '.join(map(str, cmd[:3]))} exited {r.returncode}: {r.stderr[-300:]!r}", file=sys.stderr)
    return r


def drive_clients(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(f"seed-{c}", 2, 1) for c in ("none", "gzip", "snappy", "lz4", "zstd")]
    for f in admin.create_topics(topics).values():
        f.result(10)
    for f in admin.describe_configs([ConfigResource("topic", "seed-none")]).values():
        f.result(10)
    for f in admin.create_partitions([NewPartitions("seed-none", 3)]).values():
        f.result(10)
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "enable.idempotence": True, "linger.ms": 5})
        for i in range(200):
            p.produce(f"seed-{codec}", key=f"k{i}", value=f"value-{i}" * (i % 7 + 1), headers=[("h", b"v")])
        p.flush(10)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seed-group", "auto.offset.reset": "earliest"})
    c.subscribe([f"seed-{codec}" for codec in ("none", "gzip")])
    deadline = time.monotonic() + 15
    seen = 0
    while seen < 400 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen += 1
    c.commit(asynchronous=False)
    c.close()
    run("kcat", "-b", bootstrap, "-L")
    run("kcat", "-b", bootstrap, "-t", "seed-kcat", "-P", "-K:", input=b"a:1\nb:2\n")
    run("kcat", "-b", bootstrap, "-t", "seed-kcat", "-C", "-e", "-o", "beginning")
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    kp = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", acks="all")
    for i in range(50):
        kp.send("seed-kafka-python", key=b"k", value=b"v%d" % i)
    kp.flush()
    kc = KafkaConsumer("seed-kafka-python", bootstrap_servers=bootstrap, group_id="seed-kp", auto_offset_reset="earliest", consumer_timeout_ms=3000)
    for _ in kc:
        pass
    kc.close()
    ka = KafkaAdminClient(bootstrap_servers=bootstrap)
    ka.list_consumer_groups()
    ka.describe_consumer_groups(["seed-kp"])
    ka.close()
    if TOOL.exists():
        b = ["--bootstrap-server", bootstrap]
        run(TOOL, "kafka-topics", *b, "--describe")
        run(TOOL, "kafka-console-producer", *b, "--topic", "seed-java", input=b"one\ntwo\n")
        run(TOOL, "kafka-console-consumer", *b, "--topic", "seed-java", "--from-beginning", "--max-messages", "2", "--group", "seed-java")
        run(TOOL, "kafka-consumer-groups", *b, "--describe", "--all-groups")
        run(TOOL, "kafka-configs", *b, "--describe", "--entity-type", "brokers", "--entity-name", "1")
        run(TOOL, "kafka-get-offsets", *b, "--topic", "seed-java")


def stored_seeds(data_dir: Path) -> None:
    for log in data_dir.glob("*/*.log"):
        blob = log.read_bytes()
        pos = 0
        while pos + 61 <= len(blob):
            (length,) = struct.unpack(">i", blob[pos + 8 : pos + 12])
            batch = blob[pos : pos + 12 + length]
            if log.parent.name.startswith("__consumer_offsets"):
                save_offsets_records(batch)
            else:
                save("record_batches", batch)
                (attributes,) = struct.unpack(">h", batch[21:23])
                save("decompress", bytes([attributes & 7]) + batch[61:])
            pos += 12 + length


def save_offsets_records(batch: bytes) -> None:
    # Uncompressed batches of the broker's own: walk the records' varints.
    def varint(b, i):
        shift = result = 0
        while True:
            byte = b[i]
            i += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1), i
            shift += 7

    i, end = 61, len(batch)
    while i < end:
        length, i = varint(batch, i)
        record_end = i + length
        i += 1  # attributes
        _, i = varint(batch, i)  # timestamp delta
        _, i = varint(batch, i)  # offset delta
        klen, i = varint(batch, i)
        key = batch[i : i + max(klen, 0)]
        i += max(klen, 0)
        vlen, i = varint(batch, i)
        value = batch[i : i + max(vlen, 0)]
        save("group_blobs", struct.pack(">H", len(key)) + key + value)
        i = record_end


def main() -> None:
    binary = REPO / "target" / "release" / "sluice"
    with tempfile.TemporaryDirectory() as tmp:
        port, proxy_port, metrics = free_port(), free_port(), free_port()
        Proxy(proxy_port, port)
        proc = subprocess.Popen(
            [str(binary), "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
             "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}",
             "--override", f"metrics.listener=127.0.0.1:{metrics}", "--override", f"log.dirs={tmp}",
             "--override", "group.initial.rebalance.delay.ms=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            drive_clients(f"127.0.0.1:{proxy_port}")
        finally:
            proc.terminate()
            proc.wait(10)
        stored_seeds(Path(tmp))
    for target in sorted(CORPUS.iterdir()):
        print(f"{target.name}: {len(list(target.iterdir()))} seeds")


if __name__ == "__main__":
    main()
