"""Clusters whose nodes each run in a Linux network namespace of their own, so that a test can
cut the network between nodes while its clients (the test process, in the root namespace) still
reach every node. Needs root and iproute2 (`ip`); nothing else.

One `Network` per cluster, numbered R (1..250, unique among the live networks on the machine):

    bridge   slc<R>br       root namespace, 10.77.R.254/24: the clients' side
    netns    slc<R>-n<id>   one per node: eth0 = 10.77.R.<id>/24 (a veth pair whose other end,
                            slc<R>v<id>, is a port of the bridge), lo, and `sink`, an ifb device
                            that drops whatever is routed to it

Each node listens on, and advertises, its own address (Kafka on 9092, controller on 9093,
metrics on 9644: the same ports in every namespace), and `controller.quorum.voters` names those
addresses, so node-to-node traffic (Raft, heartbeats, replica fetches) crosses the bridge
between two namespaces while client traffic goes between a namespace and the root.

`partition(isolated)` adds, in each isolated node's namespace, a /32 route sending every other
node's address into `sink`, and the same the other way round. Packets between the two sides
vanish silently, as with a pulled cable: new connections and established ones time out, nothing
is refused, and the routes to 10.77.R.254 (the clients) are untouched. `heal()` deletes those
routes. On a kernel without ifb, blackhole routes do it instead (the sender then gets EINVAL at
once instead of a timeout); `Network.mode` says which.

Ownership and leftovers: /run/sluice-compat-netns/<R> holds the owning process's pid and start
time, written under a flock. Every new network first cleans up the networks whose owner is gone
(a pytest killed or crashed before its teardown): the processes in their namespaces are killed,
their veths, namespaces and bridge deleted. `destroy()` (the fixture's teardown, and an atexit
hook) does the same for its own network. By hand: `python netns.py cleanup` (dead owners' only)
or `python netns.py list`.
"""

import atexit
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from cluster import THREE_COMBINED, Cluster, ClusterFactory, ClusterNode

IP = shutil.which("ip") or "/usr/sbin/ip"
STATE_DIR = Path("/run/sluice-compat-netns")
PREFIX = "slc"
SUBNET = "10.77"
CLIENT_HOST = 254  # the bridge's address in each subnet: where the test's clients come from
KAFKA_PORT, CONTROLLER_PORT, METRICS_PORT = 9092, 9093, 9644
MAX_RUNS = 250

BRIDGE_RE = re.compile(rf"^{PREFIX}(\d+)br$")
VETH_RE = re.compile(rf"^{PREFIX}(\d+)v(\d+)$")
NETNS_RE = re.compile(rf"^{PREFIX}(\d+)-n(\d+)$")


class NetnsError(RuntimeError):
    pass


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    cmd = [IP, *(["-n", ns] if ns else []), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    if check and r.returncode != 0:
        raise NetnsError(f"`{' '.join(cmd)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def ip_batch(lines: list[str], ns: str | None = None) -> None:
    """Several `ip` commands in one process (`ip -batch`): stops at the first failure."""
    cmd = [IP, *(["-n", ns] if ns else []), "-batch", "-"]
    r = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=15)
    if r.returncode != 0:
        raise NetnsError(f"`{' '.join(cmd)}` failed ({r.returncode}) on {lines}: {r.stderr.strip()}")


# ---------------------------------------------------------------------------------------------
# Ownership of the networks on this machine


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat), None if there is no such process:
    with the pid it names one process, whatever pid reuse happens later."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(run: int) -> bool:
    try:
        pid, started = (STATE_DIR / str(run)).read_text().split()
    except (OSError, ValueError):
        return False
    return _start_time(int(pid)) == started


@contextmanager
def _locked():
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _present() -> dict[int, dict[str, list[str]]]:
    """Every network of ours that exists in some form: {R: {"bridge"/"veths"/"netns": names}},
    owner files included."""
    runs: dict[int, dict[str, list[str]]] = {}

    def entry(r: int) -> dict[str, list[str]]:
        return runs.setdefault(r, {"bridge": [], "veths": [], "netns": []})

    for link in json.loads(ip("-j", "link", "show") or "[]"):
        name = link.get("ifname", "")
        if m := BRIDGE_RE.match(name):
            entry(int(m[1]))["bridge"].append(name)
        elif m := VETH_RE.match(name):
            entry(int(m[1]))["veths"].append(name)
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if m := NETNS_RE.match(name):
            entry(int(m[1]))["netns"].append(name)
    if STATE_DIR.exists():
        for f in STATE_DIR.iterdir():
            if f.name.isdigit():
                entry(int(f.name))
    return runs


def _kill_namespace_processes(names: list[str], timeout: float = 5.0) -> list[int]:
    """SIGKILL every process in the named namespaces; waits (bounded) until they are gone."""
    killed = []
    for ns in names:
        for pid in ip("netns", "pids", ns, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
            except (ProcessLookupError, ValueError):
                pass
    deadline = time.monotonic() + timeout
    for pid in killed:
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                break
            if state in ("Z", "X"):  # dead, waiting for its parent to reap it
                break
            time.sleep(0.01)
    return killed


def _destroy(run: int, found: dict[str, list[str]]) -> None:
    """Removes network `run`: processes, veths (both ends go together), namespaces, bridge."""
    _kill_namespace_processes(found["netns"])
    for v in found["veths"]:
        ip("link", "del", v, check=False)
    for ns in found["netns"]:
        ip("netns", "del", ns, check=False)
    for b in found["bridge"]:
        ip("link", "del", b, check=False)
    (STATE_DIR / str(run)).unlink(missing_ok=True)


def cleanup_leftovers() -> list[int]:
    """Destroys every network whose owner process is gone; returns their numbers."""
    with _locked():
        return _cleanup_leftovers_locked()


def _cleanup_leftovers_locked() -> list[int]:
    gone = []
    for run, found in sorted(_present().items()):
        if not _owner_alive(run):
            _destroy(run, found)
            gone.append(run)
    return gone


# ---------------------------------------------------------------------------------------------
# One network


class Network:
    """A bridge in the root namespace and one namespace per node id, as the module docstring
    describes. Set up in well under a second; `destroy()` is idempotent and never raises."""

    def __init__(self, node_ids: list[int]):
        if os.geteuid() != 0:
            raise NetnsError("network namespaces need root (tests run as root here and in CI)")
        assert all(1 <= i < CLIENT_HOST for i in node_ids), f"node ids must be 1..{CLIENT_HOST - 1}: {node_ids}"
        self.node_ids = list(node_ids)
        self.cuts: set[tuple[int, int]] = set()  # (from, to): packets from node `from` to `to` vanish
        self.destroyed = False
        started = time.monotonic()
        with _locked():
            self.leftovers_cleaned = _cleanup_leftovers_locked()
            taken = set(_present())
            # The next number after the last one handed out, not the lowest free one: a client a
            # finished test left behind must not find the next test's node at the old address.
            try:
                last = int((STATE_DIR / "last").read_text())
            except (OSError, ValueError):
                last = 0
            free = [r for r in [*range(last + 1, MAX_RUNS + 1), *range(1, last + 1)] if r not in taken]
            if not free:
                raise NetnsError(f"all {MAX_RUNS} networks are in use by live processes")
            self.run = free[0]
            (STATE_DIR / str(self.run)).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
            (STATE_DIR / "last").write_text(f"{self.run}\n")
        atexit.register(self.destroy)
        try:
            self.mode = self._set_up()
        except BaseException:
            self.destroy()
            raise
        self.setup_s = time.monotonic() - started

    # -- names and addresses

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.run}br"

    def netns(self, node_id: int) -> str:
        return f"{PREFIX}{self.run}-n{node_id}"

    def veth(self, node_id: int) -> str:
        return f"{PREFIX}{self.run}v{node_id}"

    def address(self, node_id: int) -> str:
        return f"{SUBNET}.{self.run}.{node_id}"

    @property
    def client_address(self) -> str:
        return f"{SUBNET}.{self.run}.{CLIENT_HOST}"

    # -- set-up and tear-down

    def _set_up(self) -> str:
        root = [f"link add {self.bridge} type bridge"]
        for i in self.node_ids:
            root += [f"netns add {self.netns(i)}",
                     f"link add {self.veth(i)} type veth peer name eth0 netns {self.netns(i)}",
                     f"link set {self.veth(i)} master {self.bridge} up"]
        root += [f"link set {self.bridge} up", f"addr add {self.client_address}/24 dev {self.bridge}"]
        ip_batch(root)
        ip("link", "set", self.bridge, "alias", f"sluice compat-tests, pid {os.getpid()}", check=False)
        mode = "sink"
        for i in self.node_ids:
            ns = self.netns(i)
            ip_batch([f"addr add {self.address(i)}/24 dev eth0", "link set eth0 up", "link set lo up"], ns=ns)
            if mode == "sink":
                try:
                    ip_batch(["link add sink type ifb", "link set sink up"], ns=ns)
                except NetnsError:
                    mode = "blackhole"  # no ifb in this kernel
        return mode

    def destroy(self) -> None:
        if self.destroyed:
            return
        self.destroyed = True
        try:
            with _locked():
                _destroy(self.run, {"bridge": [self.bridge], "veths": [self.veth(i) for i in self.node_ids],
                                    "netns": [self.netns(i) for i in self.node_ids]})
        except Exception as e:  # noqa: BLE001 - teardown must go on; the next run cleans up
            print(f"netns: tearing down network {self.run} failed: {e}", file=sys.stderr)
        atexit.unregister(self.destroy)

    def exists(self) -> bool:
        """Whether anything of this network is left (bridge, veths, namespaces, owner file)."""
        found = _present().get(self.run)
        return bool(found and (any(found.values()) or (STATE_DIR / str(self.run)).exists()))

    # -- faults

    def _route(self, op: str, src: int, dst: int) -> str:
        target = f"{self.address(dst)}/32"
        if self.mode == "sink":
            return f"route {op} {target} dev sink"
        return f"route {op} blackhole {target}"

    def cut(self, a: int, b: int, both_ways: bool = True) -> None:
        """Packets from node `a` to node `b` (and from `b` to `a` unless one way) vanish."""
        pairs = [(a, b), (b, a)] if both_ways else [(a, b)]
        for src, dst in pairs:
            if (src, dst) not in self.cuts:
                ip_batch([self._route("add", src, dst)], ns=self.netns(src))
                self.cuts.add((src, dst))

    def partition(self, isolated: set[int] | list[int]) -> None:
        """Cuts the `isolated` nodes off from every other node, both ways; the clients still
        reach every node. Adds to cuts already made; `heal()` undoes them all."""
        isolated = set(isolated)
        assert isolated <= set(self.node_ids), f"unknown nodes {isolated - set(self.node_ids)}"
        by_ns: dict[int, list[str]] = {}
        for a in isolated:
            for b in set(self.node_ids) - isolated:
                for src, dst in ((a, b), (b, a)):
                    if (src, dst) not in self.cuts:
                        by_ns.setdefault(src, []).append(self._route("add", src, dst))
                        self.cuts.add((src, dst))
        for src, lines in by_ns.items():
            ip_batch(lines, ns=self.netns(src))

    def heal(self) -> None:
        """Undoes every cut."""
        by_ns: dict[int, list[str]] = {}
        for src, dst in sorted(self.cuts):
            by_ns.setdefault(src, []).append(self._route("del", src, dst))
        for src, lines in by_ns.items():
            ip_batch(lines, ns=self.netns(src))
        self.cuts.clear()

    def can_connect(self, src: int, dst: int, port: int = KAFKA_PORT, timeout: float = 1.0) -> bool:
        """Whether a TCP connection from node `src`'s namespace to node `dst`'s port opens
        within `timeout` s (a cut makes it time out, silently)."""
        code = (f"import socket; socket.create_connection(('{self.address(dst)}', {port}), timeout={timeout})")
        r = subprocess.run([IP, "netns", "exec", self.netns(src), sys.executable, "-c", code],
                           capture_output=True, timeout=timeout + 10)
        return r.returncode == 0

    def __repr__(self) -> str:
        return f"Network {self.run} ({SUBNET}.{self.run}.0/24, nodes {self.node_ids}, {self.mode})"


# ---------------------------------------------------------------------------------------------
# Clusters on a network


class NetnsNode(ClusterNode):
    """A ClusterNode run with `ip netns exec` in its namespace, on its own address; the pid the
    test holds is the broker's (`ip netns exec` execs it), so signals reach the broker itself."""

    def __init__(self, node_id, roles, data_dir, overrides, netns: str, host: str):
        super().__init__(node_id, roles, data_dir, overrides)
        self.netns = netns
        self.host = host
        self.port, self.controller_port, self.metrics_port = KAFKA_PORT, CONTROLLER_PORT, METRICS_PORT

    def base_settings(self) -> dict:
        settings = super().base_settings()
        if self.is_broker:
            settings["advertised.listeners"] = f"PLAINTEXT://{self.host}:{self.port}"
        return settings

    def command(self) -> list[str]:
        return [IP, "netns", "exec", self.netns, *super().command()]


class NetnsCluster(Cluster):
    """A `Cluster` whose nodes each live in a namespace of `self.network`: `partition(ids)`,
    `heal()` besides the lifecycle of `Cluster` (`stop`, `kill9`, `restart`, `pause`, `resume`).
    `destroy()` kills every node and removes the network."""

    def __init__(self, root: Path, layout: dict[int, tuple[str, ...]] | None = None, overrides: dict | None = None):
        layout = layout or THREE_COMBINED
        self.teardown_hooks: list = []  # called by destroy() first, e.g. to stop a workload
        self.network = Network(list(layout))
        try:
            super().__init__(root, layout, overrides)
        except BaseException:
            self.network.destroy()
            raise

    def new_node(self, node_id, roles, data_dir, overrides) -> NetnsNode:
        net = self.network
        return NetnsNode(node_id, roles, data_dir, overrides, net.netns(node_id), net.address(node_id))

    def partition(self, isolated: set[int] | list[int]) -> None:
        self.network.partition(isolated)

    def cut(self, a: int, b: int, both_ways: bool = True) -> None:
        self.network.cut(a, b, both_ways)

    def heal(self) -> None:
        self.network.heal()

    def destroy(self) -> None:
        try:
            for hook in self.teardown_hooks:
                try:
                    hook()
                except Exception as e:  # noqa: BLE001 - teardown goes on
                    print(f"netns: teardown hook {hook} failed: {e!r}", file=sys.stderr)
            self.kill_all()
        finally:
            self.network.destroy()


class NetnsClusterFactory(ClusterFactory):
    """The `make_netns_cluster` fixture: `make_netns_cluster(layout=..., overrides=..., start=True)`."""

    def __call__(self, layout=None, overrides=None, start: bool = True) -> NetnsCluster:
        c = NetnsCluster(self.root / f"cluster-{len(self.made)}", layout, overrides)
        self.made.append(c)
        return c.start() if start else c

    def destroy_all(self) -> None:
        for c in self.made:
            c.destroy()


@pytest.fixture
def make_netns_cluster(tmp_path):
    """Clusters of this test's own on network namespaces, destroyed (processes, namespaces,
    links) at teardown whatever happened; each node checked for panics first."""
    factory = NetnsClusterFactory(tmp_path)
    try:
        yield factory
        for c in factory.made:
            c.assert_healthy()
    finally:
        factory.destroy_all()


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "list"
    if what == "cleanup":
        print("destroyed networks:", cleanup_leftovers() or "none")
    elif what == "list":
        for run, found in sorted(_present().items()):
            print(run, "owner alive" if _owner_alive(run) else "owner gone", found)
    else:
        sys.exit("usage: netns.py [list|cleanup]")
