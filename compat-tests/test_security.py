"""Listener security (issue 15, first slice): one broker with PLAINTEXT, SSL, SASL_PLAINTEXT and
SASL_SSL listeners at once, driven by confluent-kafka (librdkafka) and Apache Kafka's console
tools with their usual client settings.

The certificates are made here with the `openssl` CLI (a throwaway CA, and a server certificate
for 127.0.0.1 and localhost). SASL users come from `sasl.plain.users`. Checked: produce and
consume over each secured listener, Metadata naming the port of the listener asked, a wrong
password refused with SASL_AUTHENTICATION_FAILED while other clients carry on, a plaintext
client on the TLS port closed cleanly, and Kafka's answers to SASL requests out of order
(raw frames: ILLEGAL_SASL_STATE, UNSUPPORTED_SASL_MECHANISM, closing before authentication), and
the mTLS principal: a client certificate's DN through ssl.principal.mapping.rules.
"""

import re
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from kafka_tools import console_round_trip, tool_ok
from conftest import Broker, consume_range, delivered_offsets, free_port, produce_all, producer_config, unique_topic

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
WAIT_S = 20.0


def make_certificates(d: Path) -> dict:
    """A CA and a server certificate signed by it (SAN 127.0.0.1, localhost), as PEM files."""

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=sluice-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
    )
    # Kafka's PEM keystore file: the private key and the certificate chain together.
    keystore = d / "keystore.pem"
    keystore.write_text((d / "server.key").read_text() + (d / "server.pem").read_text())
    return {"ca": d / "ca.pem", "keystore": keystore}


class SecureBroker(Broker):
    """A broker with a listener of each protocol; PLAINTEXT (`port`) is the inter-broker one."""

    def __init__(self, data_dir: Path, certs: dict):
        self.ports = {"SSL": free_port(), "SASL_PLAINTEXT": free_port(), "SASL_SSL": free_port()}
        users = ",".join(f"{u}:{p}" for u, p in USERS.items())
        super().__init__(
            data_dir,
            {
                "ssl.keystore.location": str(certs["keystore"]),
                "sasl.plain.users": users,
            },
        )

    def base_settings(self) -> dict:
        settings = super().base_settings()
        listeners = [settings["listeners"]] + [f"{name}://{self.host}:{port}" for name, port in self.ports.items()]
        settings["listeners"] = ",".join(listeners)
        return settings

    def bootstrap_of(self, name: str) -> str:
        return f"{self.host}:{self.ports[name]}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory, certs):
    b = SecureBroker(tmp_path_factory.mktemp("sluice-secure") / "data", certs).start()
    try:
        yield b
        b.assert_healthy()
    finally:
        b.kill9()


def client_settings(broker: SecureBroker, certs: dict, protocol: str, user: str = "alice", password: str | None = None) -> dict:
    settings = {"security.protocol": protocol}
    if "SSL" in protocol:
        settings["ssl.ca.location"] = str(certs["ca"])
    if "SASL" in protocol:
        settings.update(
            {
                "sasl.mechanism": "PLAIN",
                "sasl.username": user,
                "sasl.password": USERS.get(user, "") if password is None else password,
            }
        )
    return settings


@pytest.mark.parametrize("protocol", ["SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_produce_and_consume_over_a_secured_listener(secure_broker, certs, protocol):
    bootstrap = secure_broker.bootstrap_of(protocol)
    settings = client_settings(secure_broker, certs, protocol)
    topic = unique_topic(f"secure-{protocol}")
    p = Producer(producer_config(bootstrap, **settings))
    values = [f"{protocol}-{i}".encode() for i in range(200)]
    offsets = delivered_offsets(produce_all(p, topic, values))
    assert offsets == list(range(200))
    # Metadata names this node at the port of the listener the client asked on.
    brokers = p.list_topics(timeout=10).brokers
    assert [b.port for b in brokers.values()] == [secure_broker.ports[protocol]]
    got = consume_range(bootstrap, topic, 0, 0, 200, **settings)
    assert [m.value() for m in got] == values


def test_wrong_password_is_refused_while_others_are_served(secure_broker, certs):
    bootstrap = secure_broker.bootstrap_of("SASL_PLAINTEXT")
    errors = []
    bad = Producer(
        producer_config(
            bootstrap,
            **client_settings(secure_broker, certs, "SASL_PLAINTEXT", password="wrong"),
            error_cb=lambda e: errors.append(e),
        )
    )
    deadline = time.monotonic() + WAIT_S
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        bad.poll(0.1)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert any("Invalid username or password" in e.str() for e in errors), errors
    # An unknown user the same, and meanwhile bob produces.
    good = Producer(producer_config(bootstrap, **client_settings(secure_broker, certs, "SASL_PLAINTEXT", user="bob")))
    topic = unique_topic("after-refusal")
    assert delivered_offsets(produce_all(good, topic, [b"still-served"])) == [0]
    assert secure_broker.wait_for_log("SASL authentication failed", timeout=5)
    assert secure_broker.running()


def test_plaintext_client_on_the_tls_port_is_closed(secure_broker):
    with socket.create_connection((secure_broker.host, secure_broker.ports["SSL"]), timeout=WAIT_S) as s:
        s.sendall(api_versions_v0(1))
        got = read_until_closed(s)
        # No Kafka answer: at most a TLS alert record (content type 21), then the close.
        assert got == b"" or (got[:1] == b"\x15" and len(got) <= 16), got
    assert secure_broker.wait_for_log("TLS handshake failed", timeout=5)


def test_request_before_authentication_closes_the_connection(secure_broker):
    with socket.create_connection((secure_broker.host, secure_broker.ports["SASL_PLAINTEXT"]), timeout=WAIT_S) as s:
        s.sendall(frame(3, 0, 7, struct.pack(">i", 0)))  # Metadata v0, every topic
        assert read_until_closed(s) == b""


def test_unsupported_mechanism_is_answered_then_closed(secure_broker):
    with socket.create_connection((secure_broker.host, secure_broker.ports["SASL_PLAINTEXT"]), timeout=WAIT_S) as s:
        s.sendall(sasl_handshake_v1(9, "SCRAM-SHA-256"))
        correlation, error, mechanisms = parse_handshake_response(read_frame(s))
        assert (correlation, error, mechanisms) == (9, 33, ["PLAIN"])  # UNSUPPORTED_SASL_MECHANISM
        assert read_until_closed(s) == b""


def test_sasl_handshake_on_a_plaintext_listener_is_an_illegal_state(secure_broker):
    with socket.create_connection((secure_broker.host, secure_broker.port), timeout=WAIT_S) as s:
        s.sendall(sasl_handshake_v1(5, "PLAIN"))
        correlation, error, _ = parse_handshake_response(read_frame(s))
        assert (correlation, error) == (5, 34)  # ILLEGAL_SASL_STATE
        # The connection still serves.
        s.sendall(api_versions_v0(6))
        assert struct.unpack(">i", read_frame(s)[:4])[0] == 6


def test_console_tools_over_sasl_ssl(secure_broker, certs, tmp_path):
    props = tmp_path / "client.properties"
    props.write_text(
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=PLAIN\n"
        'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={certs['ca']}\n"
    )
    bootstrap = secure_broker.bootstrap_of("SASL_SSL")
    topic = unique_topic("console-sasl-ssl")
    tool_ok(
        "kafka-topics", "--bootstrap-server", bootstrap, "--command-config", str(props),
        "--create", "--topic", topic, "--partitions", "1",
    )
    console_round_trip(bootstrap, props, topic)


# mTLS: the principal of a client certificate


def make_client_certificate(d: Path, subject: str, name: str) -> dict:
    """A client certificate signed by the test CA (made by make_certificates in `d`)."""

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
    (d / f"{name}.cnf").write_text("extendedKeyUsage=clientAuth\n")
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.cnf",
    )
    return {"ssl.certificate.location": str(d / f"{name}.pem"), "ssl.key.location": str(d / f"{name}.key")}


class MtlsBroker(Broker):
    """A broker whose SSL listener checks client certificates against the test CA."""

    def __init__(self, data_dir: Path, certs: dict, client_auth: str, rules: str):
        self.ssl_port = free_port()
        super().__init__(
            data_dir,
            {
                "ssl.keystore.location": str(certs["keystore"]),
                "ssl.truststore.location": str(certs["ca"]),
                "ssl.client.auth": client_auth,
                "ssl.principal.mapping.rules": rules,
                # The principal is logged at debug when the connection authenticates.
                "logging.level": "info,sluice::net=debug",
            },
        )

    def base_settings(self) -> dict:
        settings = super().base_settings()
        settings["listeners"] += f",SSL://{self.host}:{self.ssl_port}"
        return settings

    @property
    def ssl_bootstrap(self) -> str:
        return f"{self.host}:{self.ssl_port}"


def authenticated_as(broker: Broker, principal: str, timeout: float = 5.0) -> bool:
    """True once the broker logs a TLS connection authenticated as `principal`."""
    line = re.compile(rf"authenticated over TLS .*principal={re.escape(principal)}$", re.M)
    deadline = time.monotonic() + timeout
    while not line.search(broker.all_logs()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("client_auth", ["required", "requested"])
def test_client_certificate_subject_is_the_mapped_principal(tmp_path_factory, certs, client_auth):
    """CN=alice,O=Acme through RULE:^CN=([^,]+),.*$/$1/L is User:alice, as on Kafka."""
    d = certs["ca"].parent
    alice = make_client_certificate(d, "/O=Acme/CN=alice", f"alice-{client_auth}")
    broker = MtlsBroker(
        tmp_path_factory.mktemp(f"sluice-mtls-{client_auth}") / "data", certs, client_auth, "RULE:^CN=([^,]+),.*$/$1/L,DEFAULT"
    ).start()
    try:
        settings = {"security.protocol": "SSL", "ssl.ca.location": str(certs["ca"]), **alice}
        topic = unique_topic(f"mtls-{client_auth}")
        p = Producer(producer_config(broker.ssl_bootstrap, **settings))
        values = [f"mtls-{i}".encode() for i in range(50)]
        assert delivered_offsets(produce_all(p, topic, values)) == list(range(50))
        got = consume_range(broker.ssl_bootstrap, topic, 0, 0, 50, **settings)
        assert [m.value() for m in got] == values
        assert authenticated_as(broker, "User:alice"), broker.log_text()[-2000:]
        if client_auth == "requested":
            # No certificate at all: served, as User:ANONYMOUS.
            anonymous = {"security.protocol": "SSL", "ssl.ca.location": str(certs["ca"])}
            p = Producer(producer_config(broker.ssl_bootstrap, **anonymous))
            assert delivered_offsets(produce_all(p, topic, [b"anonymous"])) == [50]
            assert authenticated_as(broker, "User:ANONYMOUS"), broker.log_text()[-2000:]
        else:
            # Required: a client without a certificate fails the handshake.
            errors = []
            p = Producer(
                producer_config(
                    broker.ssl_bootstrap,
                    **{"security.protocol": "SSL", "ssl.ca.location": str(certs["ca"])},
                    error_cb=lambda e: errors.append(e),
                )
            )
            p.produce(topic, b"refused")
            deadline = time.monotonic() + WAIT_S
            while not broker.wait_for_log("TLS handshake failed", timeout=0.1) and time.monotonic() < deadline:
                p.poll(0.1)
            assert broker.wait_for_log("TLS handshake failed", timeout=1)
        broker.assert_healthy()
    finally:
        broker.kill9()


# Raw frames


def frame(api_key: int, version: int, correlation: int, body: bytes, client_id: bytes = b"sluice-test") -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def api_versions_v0(correlation: int) -> bytes:
    return frame(18, 0, correlation, b"")


def sasl_handshake_v1(correlation: int, mechanism: str) -> bytes:
    m = mechanism.encode()
    return frame(17, 1, correlation, struct.pack(">h", len(m)) + m)


def parse_handshake_response(body: bytes):
    correlation, error, count = struct.unpack(">ihi", body[:10])
    mechanisms, at = [], 10
    for _ in range(count):
        (n,) = struct.unpack(">h", body[at : at + 2])
        mechanisms.append(body[at + 2 : at + 2 + n].decode())
        at += 2 + n
    return correlation, error, mechanisms


def read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, f"connection closed after {len(buf)} of {n} bytes"
        buf += chunk
    return buf


def read_frame(s: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", read_exact(s, 4))
    return read_exact(s, size)


def read_until_closed(s: socket.socket) -> bytes:
    """What arrives until the broker closes (the socket's timeout bounds the wait)."""
    got = b""
    try:
        while chunk := s.recv(4096):
            got += chunk
    except ConnectionResetError:
        pass
    return got
