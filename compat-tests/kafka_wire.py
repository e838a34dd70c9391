"""A tiny Kafka-protocol client, for requests no client library here can send to a node of the
test's choosing: DescribeQuorum (no Python client has it), DescribeCluster (librdkafka answers
`describe_cluster` from Metadata), and the admin requests librdkafka always sends to the
controller named in Metadata (CreateTopics, CreatePartitions, IncrementalAlterConfigs,
DeleteTopics, DescribeConfigs), which a test sends to another node to see it forward them or
answer from its own metadata.

Flexible versions only: request header v2 (the client id keeps its classic int16 length, then
tagged fields), response header v1 (correlation id, tagged fields), compact strings and arrays
(unsigned varint of length + 1, 0 for null), a tagged-field section closing every struct; this
client sends none and skips whatever it gets. Field lists follow apache/kafka's
clients/src/main/resources/common/message/<Name>{Request,Response}.json at the versions used.

One connection per call, a socket timeout on every read; nothing here retries.
"""

import socket
import struct

# Kafka error codes the tests name.
NONE = 0
LEADER_NOT_AVAILABLE = 5
REQUEST_TIMED_OUT = 7

RESOURCE_TOPIC = 2  # ConfigResource type
OP_SET = 0  # IncrementalAlterConfigs operation

CLIENT_ID = b"sluice-compat-wire"
CORRELATION_ID = 4242
TAGS = b"\x00"  # an empty tagged-field section
CALL_TIMEOUT_S = 20.0


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "connection closed early"
        buf += chunk
    return buf


# ---------------------------------------------------------------------------------------------
# Encoding


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_array(items: list[bytes] | None) -> bytes:
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(items)


def i8(n: int) -> bytes:
    return struct.pack(">b", n)


def i16(n: int) -> bytes:
    return struct.pack(">h", n)


def i32(n: int) -> bytes:
    return struct.pack(">i", n)


# ---------------------------------------------------------------------------------------------
# Decoding


class Reader:
    """Reads a response body front to back; every read checks it stays inside the body."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        assert self.pos + n <= len(self.data), f"response ends at {len(self.data)}, wanted {self.pos + n}"
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def int8(self) -> int:
        return self.unpack(">b")

    def int16(self) -> int:
        return self.unpack(">h")

    def int32(self) -> int:
        return self.unpack(">i")

    def int64(self) -> int:
        return self.unpack(">q")

    def boolean(self) -> bool:
        return self.unpack(">?")

    def uvarint(self) -> int:
        n, shift = 0, 0
        for _ in range(5):  # an int32 takes at most 5 bytes
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7
        raise AssertionError("unsigned varint longer than 5 bytes")

    def string(self) -> str | None:
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def array(self, read_item) -> list | None:
        n = self.uvarint()
        return None if n == 0 else [read_item(self) for _ in range(n - 1)]

    def tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())

    def end(self) -> None:
        assert self.pos == len(self.data), f"{len(self.data) - self.pos} bytes left after the response"


def call(port: int, api_key: int, version: int, body: bytes, timeout: float = CALL_TIMEOUT_S) -> Reader:
    """Sends one request to 127.0.0.1:`port` and returns a Reader past the response header."""
    header = struct.pack(">hhih", api_key, version, CORRELATION_ID, len(CLIENT_ID)) + CLIENT_ID + TAGS
    frame = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(i32(len(frame)) + frame)
        size = struct.unpack(">i", recv_exactly(sock, 4))[0]
        r = Reader(recv_exactly(sock, size))
    assert r.int32() == CORRELATION_ID, "response to another request"
    r.tags()
    return r


# ---------------------------------------------------------------------------------------------
# Requests. Each returns what the tests look at; admin calls on one resource return its
# (error code, error message).


def describe_quorum(port: int) -> dict:
    """DescribeQuorum v0 for __cluster_metadata-0: error codes, leader id and epoch, high
    watermark, and each voter's and observer's (replica id, log end offset)."""
    partitions = compact_array([i32(0) + TAGS])
    r = call(port, 55, 0, compact_array([compact_string("__cluster_metadata") + partitions + TAGS]) + TAGS)

    def replica(r):
        state = (r.int32(), r.int64())
        r.tags()
        return state

    def partition(r):
        p = {
            "partition_index": r.int32(),
            "error_code": r.int16(),
            "leader_id": r.int32(),
            "leader_epoch": r.int32(),
            "high_watermark": r.int64(),
            "voters": r.array(replica),
            "observers": r.array(replica),
        }
        r.tags()
        return p

    def topic(r):
        t = (r.string(), r.array(partition))
        r.tags()
        return t

    error_code = r.int16()
    topics = r.array(topic)
    r.tags()
    r.end()
    assert error_code == NONE, f"DescribeQuorum error {error_code}"
    [(name, [p])] = topics
    assert name == "__cluster_metadata"
    return p


def describe_cluster(port: int) -> dict:
    """DescribeCluster v0: error code, cluster id, controller id, brokers as (id, host, port)."""
    r = call(port, 60, 0, b"\x00" + TAGS)  # include_cluster_authorized_operations = false

    def broker(r):
        b = (r.int32(), r.string(), r.int32())
        r.string()  # rack
        r.tags()
        return b

    r.int32()  # throttle_time_ms
    d = {"error_code": r.int16(), "error_message": r.string(), "cluster_id": r.string(),
         "controller_id": r.int32(), "brokers": sorted(r.array(broker))}
    r.int32()  # cluster_authorized_operations
    r.tags()
    r.end()
    return d


def create_topic(port: int, name: str, partitions: int, timeout_ms: int = 10000,
                 timeout: float = CALL_TIMEOUT_S) -> tuple[int, str | None]:
    """CreateTopics v5, replication factor 1, no assignments or configs; `timeout_ms` is how
    long the broker may take, `timeout` how long this client waits for its answer."""
    topic = compact_string(name) + i32(partitions) + i16(1) + compact_array([]) + compact_array([]) + TAGS
    r = call(port, 19, 5, compact_array([topic]) + i32(timeout_ms) + b"\x00" + TAGS, timeout=timeout)

    def config(r):
        r.string(), r.string(), r.boolean(), r.int8(), r.boolean()  # name, value, read only, source, sensitive
        r.tags()

    def result(r):
        res = (r.string(), r.int16(), r.string())
        r.int32(), r.int16()  # num_partitions, replication_factor
        r.array(config)
        r.tags()
        return res

    got, code, message = _only_result(r, result)
    assert got == name
    return code, message


def create_partitions(port: int, name: str, count: int, timeout_ms: int = 10000) -> tuple[int, str | None]:
    """CreatePartitions v2: grow `name` to `count` partitions, the broker choosing replicas."""
    topic = compact_string(name) + i32(count) + compact_array(None) + TAGS
    r = call(port, 37, 2, compact_array([topic]) + i32(timeout_ms) + b"\x00" + TAGS)

    def result(r):
        res = (r.string(), r.int16(), r.string())
        r.tags()
        return res

    got, code, message = _only_result(r, result)
    assert got == name
    return code, message


def incremental_alter_topic_configs(port: int, name: str, configs: dict[str, str]) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v1: SET each of `configs` on topic `name`."""
    entries = [compact_string(k) + i8(OP_SET) + compact_string(v) + TAGS for k, v in configs.items()]
    resource = i8(RESOURCE_TOPIC) + compact_string(name) + compact_array(entries) + TAGS
    r = call(port, 44, 1, compact_array([resource]) + b"\x00" + TAGS)

    def result(r):
        res = (r.int16(), r.string(), r.int8(), r.string())
        r.tags()
        return res

    code, message, _, got = _only_result(r, result)
    assert got == name
    return code, message


def delete_topic(port: int, name: str, timeout_ms: int = 10000) -> tuple[int, str | None]:
    """DeleteTopics v4, by name (v4 results carry no error message)."""
    r = call(port, 20, 4, compact_array([compact_string(name)]) + i32(timeout_ms) + TAGS)

    def result(r):
        res = (r.string(), r.int16())
        r.tags()
        return res

    got, code = _only_result(r, result)
    assert got == name
    return code, None


def describe_topic_configs(port: int, name: str) -> dict[str, str | None]:
    """DescribeConfigs v4 of topic `name`, as this node sees it: {config name: value}."""
    resource = i8(RESOURCE_TOPIC) + compact_string(name) + compact_array(None) + TAGS
    r = call(port, 32, 4, compact_array([resource]) + b"\x00\x00" + TAGS)  # no synonyms, no documentation

    def synonym(r):
        r.string(), r.string(), r.int8()
        r.tags()

    def config(r):
        entry = (r.string(), r.string())
        r.boolean(), r.int8(), r.boolean()  # read only, source, sensitive
        r.array(synonym)
        r.int8(), r.string()  # config type, documentation
        r.tags()
        return entry

    def result(r):
        res = (r.int16(), r.string(), r.int8(), r.string(), r.array(config))
        r.tags()
        return res

    code, message, _, got, configs = _only_result(r, result)
    assert (code, got) == (NONE, name), f"DescribeConfigs of {name}: error {code} ({message})"
    return dict(configs)


def _only_result(r: Reader, read_result):
    """The rest of an admin response about one resource: throttle time, a one-element results
    array, tagged fields; returns that element."""
    r.int32()  # throttle_time_ms
    [result] = r.array(read_result)
    r.tags()
    r.end()
    return result
