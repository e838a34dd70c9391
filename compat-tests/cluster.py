"""A multi-process Sluice cluster for the tests: `ClusterNode`s (a conftest `Broker` with a
node id, roles and a CONTROLLER listener) that name each other as quorum voters, started
together, stopped, killed and restarted one by one; plus `wait_for` and the per-node views
(metadata, controller) the cluster tests compare.

Every port is chosen before any node starts, since each node's `controller.quorum.voters`
names the others' controller listeners. Nodes start concurrently: a broker opens its Kafka
listener only once it is registered with a quorum, so a node started alone would never be
ready. Every wait is bounded; `kill_all` at teardown leaves no process behind.
"""

import signal
import time
from pathlib import Path

from conftest import STOP_TIMEOUT_S, Broker, BrokerError, admin_config, free_port

COMBINED = ("broker", "controller")
BROKER = ("broker",)
CONTROLLER = ("controller",)

THREE_COMBINED = {1: COMBINED, 2: COMBINED, 3: COMBINED}
NODE_START_TIMEOUT_S = 30.0  # a node waits for a quorum, and on 2 cores for its peers' start
CLIENT_TIMEOUT_S = 10


class ClusterNode(Broker):
    """One node: its Kafka port (`port`, unused if controller-only), controller port, metrics
    port and data dir stay the same across restarts."""

    start_timeout_s = NODE_START_TIMEOUT_S

    def __init__(self, node_id: int, roles: tuple[str, ...], data_dir: Path, overrides: dict | None = None):
        super().__init__(data_dir, overrides)
        self.node_id = node_id
        self.roles = roles
        self.controller_port = free_port()
        self.voters = ""  # set by the Cluster once every voter's port is known

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles

    @property
    def ready_port(self) -> int:
        # A controller-only node has no Kafka listener; its controller listener is all there is.
        return self.port if self.is_broker else self.controller_port

    def base_settings(self) -> dict:
        listeners = [f"CONTROLLER://{self.host}:{self.controller_port}"]
        if self.is_broker:
            listeners.insert(0, f"PLAINTEXT://{self.host}:{self.port}")
        return {
            **super().base_settings(),
            "node.id": self.node_id,
            "process.roles": ",".join(self.roles),
            "listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": self.voters,
        }

    paused = False  # SIGSTOPped and not since continued

    def pause(self) -> None:
        """SIGSTOP, and returns once the process is stopped (state T)."""
        assert self.running(), f"{self} is not running"
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True
        deadline = time.monotonic() + 5
        while self.process_state() != "T":
            assert time.monotonic() < deadline, f"{self} not stopped 5 s after SIGSTOP ({self.process_state()})"
            time.sleep(0.005)

    def process_state(self) -> str | None:
        """The process's state letter in /proc (R, S, T for stopped, Z…), None once reaped."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        self.resume()  # a stopped process would only handle SIGTERM once continued
        return super().stop(timeout)

    def kill9(self) -> None:
        super().kill9()  # SIGKILL ends a stopped process too
        self.paused = False

    def wait_for_log_this_run(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline or not self.running():
                return False
            time.sleep(0.05)
        return True

    def __repr__(self) -> str:
        return f"node {self.node_id} ({'+'.join(self.roles)})"


class Cluster:
    """Nodes by id, from `layout` ({node id: roles}); `overrides` go to every node."""

    def __init__(self, root: Path, layout: dict[int, tuple[str, ...]] | None = None, overrides: dict | None = None):
        layout = layout or THREE_COMBINED
        self.nodes = {i: self.new_node(i, roles, Path(root) / f"node-{i}", overrides) for i, roles in layout.items()}
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes.values() if n.is_controller)
        assert voters, "a cluster needs at least one controller"
        for n in self.nodes.values():
            n.voters = voters

    def new_node(self, node_id: int, roles: tuple[str, ...], data_dir: Path, overrides: dict | None) -> ClusterNode:
        """One node of the layout (a subclass may place it elsewhere, as netns.py does)."""
        return ClusterNode(node_id, roles, data_dir, overrides)

    # -- nodes

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id]

    @property
    def brokers(self) -> list[ClusterNode]:
        return [n for n in self.nodes.values() if n.is_broker]

    @property
    def broker_ids(self) -> list[int]:
        return [n.node_id for n in self.brokers]

    @property
    def voter_ids(self) -> list[int]:
        return [n.node_id for n in self.nodes.values() if n.is_controller]

    def running_brokers(self, but: int | None = None) -> list[ClusterNode]:
        return [n for n in self.brokers if n.running() and n.node_id != but]

    @property
    def bootstrap(self) -> str:
        """Every broker's Kafka listener; clients skip the ones that are down."""
        return ",".join(n.bootstrap for n in self.brokers)

    def broker_listing(self) -> list[tuple[int, str]]:
        """(id, host:port) of every broker, as metadata should list them when all are up."""
        return [(n.node_id, n.bootstrap) for n in self.brokers]

    # -- lifecycle

    def start(self, *node_ids: int) -> "Cluster":
        """Starts the given nodes (default: every node not running) all at once, then waits
        until each is ready (Kafka listener open, or controller listener for a controller-only
        node). On a failure every node of the cluster is killed and the error carries each
        node's log tail."""
        nodes = [self.nodes[i] for i in node_ids] if node_ids else [n for n in self.nodes.values() if not n.running()]
        try:
            for n in nodes:
                n.spawn()
            for n in nodes:
                n.wait_until_ready()
                # The port is bound before the broker is registered and unfenced (as in Kafka,
                # requests wait until then); its "started" line says it serves.
                if n.is_broker and not n.wait_for_log_this_run("sluice started", n.start_timeout_s):
                    raise BrokerError(f"{n} did not finish starting:\n{n.log_tail()}")
        except BrokerError as e:
            tails = "\n".join(f"--- {name}:\n{tail}" for name, tail in self.log_tails().items())
            self.kill_all()
            raise BrokerError(f"{e}\n\nevery node's log tail:\n{tails}") from None
        if any(n.is_broker for n in nodes):
            self.wait_until_brokers_agree()
        return self

    def wait_until_brokers_agree(self, timeout: float = 15) -> None:
        """Every running broker lists exactly the running brokers: each has applied the others'
        registrations (metadata reaches each node a moment apart)."""
        want = sorted(n.node_id for n in self.running_brokers())

        def agreed():
            return all(sorted(self.metadata(n.node_id).brokers) == want for n in self.running_brokers())

        wait_for(agreed, timeout, f"every running broker to list brokers {want}")

    def stop(self, node_id: int) -> None:
        """SIGTERM (controlled shutdown) and a clean exit within the stop timeout."""
        code = self.nodes[node_id].stop()
        assert code == 0, f"node {node_id} exited with {code} on SIGTERM:\n{self.nodes[node_id].log_tail()}"

    def kill9(self, node_id: int) -> None:
        self.nodes[node_id].kill9()

    def pause(self, node_id: int) -> None:
        """SIGSTOP: the process is frozen (sockets open, nothing answered) until `resume`."""
        self.nodes[node_id].pause()

    def resume(self, node_id: int) -> None:
        """SIGCONT after `pause`."""
        self.nodes[node_id].resume()

    def restart(self, node_id: int) -> None:
        self.stop(node_id)
        self.start(node_id)

    def kill_all(self) -> None:
        for n in self.nodes.values():
            n.kill9()

    def assert_healthy(self) -> None:
        for n in self.nodes.values():
            n.assert_healthy()

    def log_tails(self) -> dict[str, str]:
        return {repr(n): n.log_tail() for n in self.nodes.values() if n.runs}

    # -- what the nodes say

    def metadata(self, via: int):
        """confluent-kafka ClusterMetadata (every topic) as node `via` answers it. A fresh client
        with only that node as bootstrap asks that node: librdkafka connects to other brokers
        only when it needs them. Every topic, never one by name: an AdminClient asking for a
        missing topic by name would have the broker auto-create it."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(admin_config(self.nodes[via].bootstrap))
        return admin.list_topics(timeout=CLIENT_TIMEOUT_S)

    def leaders(self, topic: str, via: int) -> dict[int, int]:
        """{partition: leader id} of `topic` as node `via` sees it (-1: no leader)."""
        md = self.metadata(via).topics[topic]
        assert md.error is None, f"{topic} via node {via}: {md.error}"
        return {p.id: p.leader for p in md.partitions.values()}

    def controller_seen_by(self, via: int) -> int:
        """The controller id in node `via`'s Metadata answer (-1: none known). Not librdkafka's
        describe_cluster: that asks the controller itself (it reads the id from the controller's
        own Metadata answer), so it cannot tell what each node says."""
        return self.metadata(via).controller_id

    def active_controller(self, timeout: float = 15, other_than: int | None = None) -> int:
        """The voter every running broker names as controller, once they all name the same one
        (and not `other_than`, a controller known to be gone); fails after `timeout` s.
        Meant for layouts whose voters are brokers too."""

        def agreed():
            seen = {self.controller_seen_by(n.node_id) for n in self.running_brokers()}
            if len(seen) == 1 and seen <= set(self.voter_ids) - {other_than}:
                return seen.pop()
            return None

        return wait_for(agreed, timeout, f"the running brokers to name one voter (not {other_than}) as controller")


class ClusterFactory:
    """The clusters one test makes (its `make_cluster` fixture), all killed at its teardown."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.made: list[Cluster] = []

    def __call__(self, layout: dict[int, tuple[str, ...]] | None = None, overrides: dict | None = None) -> Cluster:
        c = Cluster(self.root / f"cluster-{len(self.made)}", layout, overrides)
        self.made.append(c)
        return c.start()

    def log_tails(self) -> dict[str, str]:
        return {f"cluster {i}, {node}": tail for i, c in enumerate(self.made) for node, tail in c.log_tails().items()}


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Calls `predicate` until it returns something truthy and returns that; fails after
    `timeout` seconds naming `what` and the last value or exception seen. An exception from
    `predicate` counts as "not yet": mid-failover a client call may fail before it succeeds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - reported below if it never succeeds
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}; last: {last!r}")
        time.sleep(interval)
