"""The network-namespace harness of netns.py, against today's binary (no replication needed):
set-up time, a partition cutting node-to-node traffic both ways while the clients reach every
node, the heal, teardown leaving nothing behind, the clean-up of a crashed run's leftovers, and
a real cluster seeing a cut-off node as it sees a dead one: the majority fences it after the
session timeout (and replaces it as controller if it was), while clients still reach it; healed,
it is unfenced. SIGSTOP / SIGCONT the same way.
"""

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cluster import wait_for
from conftest import sluice_bin
from netns import IP, Network, _present, make_netns_cluster  # noqa: F401 - the fixture
from workload import agreed_controller, node_metadata

SESSION_TIMEOUT_MS = 3000
FAST_FENCING = {"broker.session.timeout.ms": SESSION_TIMEOUT_MS, "broker.heartbeat.interval.ms": 500}
FENCE_S = SESSION_TIMEOUT_MS / 1000 + 7
REJOIN_S = 15


def listeners(net: Network) -> list[subprocess.Popen]:
    """A TCP listener on port 9092 of every node's address, inside its namespace."""
    code = "import socket, sys, time; s = socket.socket(); s.bind((sys.argv[1], 9092)); s.listen(); time.sleep(120)"
    procs = [subprocess.Popen([IP, "netns", "exec", net.netns(i), sys.executable, "-c", code, net.address(i)])
             for i in net.node_ids]
    for i in net.node_ids:
        wait_for(lambda i=i: client_reaches(net.address(i)), 5, f"the listener of node {i}", interval=0.02)
    return procs


def client_reaches(host: str, port: int = 9092) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def reach_matrix(net: Network) -> dict[tuple[int, int], bool]:
    return {(a, b): net.can_connect(a, b, timeout=0.5) for a in net.node_ids for b in net.node_ids if a != b}


def test_set_up_under_a_second_partition_cuts_only_node_to_node_and_teardown_leaves_nothing():
    net = Network([1, 2, 3])
    try:
        assert net.setup_s < 1.0, f"set-up took {net.setup_s:.2f}s"
        procs = listeners(net)
        assert all(reach_matrix(net).values())

        started = time.monotonic()
        net.partition({1})
        assert time.monotonic() - started < 0.5

        cut = {(1, 2), (2, 1), (1, 3), (3, 1)}
        assert reach_matrix(net) == {pair: pair not in cut for pair in reach_matrix(net)}
        assert all(client_reaches(net.address(i)) for i in net.node_ids), "the clients must reach every node"

        net.heal()
        assert all(reach_matrix(net).values())
        net.cut(2, 3, both_ways=False)
        assert (net.can_connect(2, 3, timeout=0.5), net.can_connect(3, 1, timeout=0.5)) == (False, True)
        net.heal()
    finally:
        net.destroy()
    assert not net.exists(), f"left behind: {_present().get(net.run)}"
    for p in procs:
        assert p.wait(5) == -signal.SIGKILL, "a process in a namespace outlived the network"


def test_a_partition_is_silent_an_established_connection_just_stops():
    """Like a pulled cable, not a refusal: what is cut times out, nothing gets a reset."""
    net = Network([1, 2])
    try:
        listeners(net)
        code = textwrap.dedent(f"""
            import socket, sys, time
            s = socket.create_connection(("{net.address(2)}", 9092), timeout=5)
            print("connected", flush=True)
            sys.stdin.readline()  # the test cuts the network meanwhile
            s.settimeout(1)
            try:
                s.sendall(b"x"); s.recv(1)
                print("answered")
            except socket.timeout:
                print("timed out")
            except OSError as e:
                print("error", e)
        """)
        p = subprocess.Popen([IP, "netns", "exec", net.netns(1), sys.executable, "-c", code],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "connected"
        net.partition({1})
        out, _ = p.communicate("go\n", timeout=10)
        assert out.strip() == "timed out"
        started = time.monotonic()
        assert not net.can_connect(1, 2, timeout=1.0)
        assert time.monotonic() - started >= 0.9, "a new connection was refused, not left unanswered"
    finally:
        net.destroy()


def test_leftovers_of_a_killed_run_are_cleaned_up_by_the_next():
    """A process sets up a network, starts a process in a namespace and dies by SIGKILL (no
    teardown, no atexit): the next Network removes all of it."""
    here = Path(__file__).resolve().parent
    code = textwrap.dedent(f"""
        import os, signal, subprocess, sys
        sys.path.insert(0, {str(here)!r})
        from netns import IP, Network
        net = Network([1, 2])
        subprocess.Popen([IP, "netns", "exec", net.netns(1), "sleep", "300"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(net.run, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    crashed = int(r.stdout.split()[0])
    leftover_ns = f"slc{crashed}-n1"
    pids = subprocess.run([IP, "netns", "pids", leftover_ns], capture_output=True, text=True).stdout.split()
    assert pids, f"the crashed run left no process behind to clean up: {r.stderr}"

    net = Network([1])
    try:
        assert crashed in net.leftovers_cleaned
        assert crashed not in _present() or crashed == net.run
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    finally:
        net.destroy()


def isolate_and_heal(c, victim: int, was_controller: bool) -> None:
    """Cuts `victim` off: the majority fences it after the session timeout (and, if it was the
    controller, first elects another), the clients still reach it; healed, it is unfenced."""
    majority = [i for i in c.broker_ids if i != victim]
    c.partition({victim})
    cut_at = time.monotonic()
    if was_controller:
        # The majority elects a new controller among themselves; the cut-off node cannot know.
        wait_for(lambda: {node_metadata(c, i).controller_id for i in majority} in ({majority[0]}, {majority[1]}),
                 FENCE_S, f"the majority to name one controller among {majority}")
    wait_for(lambda: all(sorted(node_metadata(c, i).brokers) == majority for i in majority), FENCE_S,
             f"the majority {majority} to fence node {victim} (and only it)")
    fenced_s = time.monotonic() - cut_at
    assert fenced_s >= SESSION_TIMEOUT_MS / 1000 - 0.5, f"fenced after {fenced_s:.1f}s, before the session timeout"
    # The clients (this process) still reach the cut-off node, and it still answers.
    assert victim in node_metadata(c, victim).brokers

    c.heal()
    wait_for(lambda: all(sorted(node_metadata(c, i).brokers) == [1, 2, 3] for i in c.broker_ids), REJOIN_S,
             f"node {victim} unfenced on every node after the heal")
    agreed_controller(c, c.broker_ids, REJOIN_S)


def test_a_cut_off_broker_is_fenced_by_the_majority_while_its_clients_still_reach_it(make_netns_cluster):
    c = make_netns_cluster(overrides=FAST_FENCING)
    assert c.network.setup_s < 1.0
    assert sorted(node_metadata(c, 1).brokers) == [1, 2, 3]
    assert {host for host, _ in node_metadata(c, 2).brokers.values()} == {c.network.address(i) for i in (1, 2, 3)}
    controller = agreed_controller(c, c.broker_ids)

    isolate_and_heal(c, next(i for i in c.broker_ids if i != controller), was_controller=False)


def test_a_cut_off_controller_is_replaced_and_only_it_is_fenced(make_netns_cluster):
    c = make_netns_cluster(overrides=FAST_FENCING)

    isolate_and_heal(c, agreed_controller(c, c.broker_ids), was_controller=True)


def test_a_paused_node_is_fenced_and_comes_back_when_continued(make_netns_cluster):
    c = make_netns_cluster(overrides=FAST_FENCING)
    victim = next(i for i in c.broker_ids if i != agreed_controller(c, c.broker_ids))
    majority = [i for i in c.broker_ids if i != victim]
    pid = c.node(victim).proc.pid
    assert Path(f"/proc/{pid}/exe").resolve() == sluice_bin().resolve(), "the signal would go to `ip`, not the broker"

    c.pause(victim)
    assert c.node(victim).process_state() == "T"
    wait_for(lambda: all(sorted(node_metadata(c, i).brokers) == majority for i in majority), FENCE_S,
             f"the majority to fence paused node {victim}")
    c.resume(victim)
    wait_for(lambda: all(sorted(node_metadata(c, i).brokers) == [1, 2, 3] for i in c.broker_ids), REJOIN_S,
             f"node {victim} unfenced once continued")
