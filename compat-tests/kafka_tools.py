"""Runs Apache Kafka's own command-line tools (`compat-tests/kafka-tool`, jars from Maven Central)
against a broker, each with a hard timeout: `run_tool("kafka-topics", "--bootstrap-server", b,
"--list")` returns a `ToolResult` (stdout, stderr, rc); `tool_ok(...)` also fails the test unless
the tool exited 0. `ToolProcess` is a tool left running in the background (a console consumer
in a group) that a test reads from and stops.

Every process started here is killed when its timeout is spent (or when the test stops it), so
no JVM outlives the test that started it.

Start-up: a JVM tool spends most of its second loading classes. The first run of a tool
family (the admin-client tools, the producer/consumer tools, kafka-dump-log) writes the classes
it loaded to a dynamic class-data-sharing archive (`.kafka/cds/<key>/<family>.jsa`, keyed by the
JVM and the resolved jars) and later runs of the family map it, which halves their start. The
JVM checks an archive itself and silently runs without one that does not match;
`KAFKA_TOOLS_CDS=0` turns this off.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
KAFKA_TOOL = HERE / "kafka-tool"
TOOL_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass
class ToolResult:
    cmd: list[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """stdout's non-empty lines."""
        return [line for line in self.stdout.splitlines() if line.strip()]

    def __str__(self) -> str:
        return f"$ {' '.join(self.cmd)}\n(exit {self.rc})\n--- stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}"


def _env(jvm_opts: str = "") -> dict:
    # One small heap and the launcher's quick-start JVM flags; logs at WARN to stderr.
    env = {**os.environ, "KAFKA_HEAP_OPTS": os.environ.get("KAFKA_HEAP_OPTS", "-Xmx256M")}
    if jvm_opts:
        env["KAFKA_OPTS"] = f"{os.environ.get('KAFKA_OPTS', '')} {jvm_opts}".strip()
    return env


# ---------------------------------------------------------------------------------------------
# Class-data-sharing archives, one per tool

_CDS_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"  # a mismatched archive is skipped without a word
_cds_lock = threading.Lock()
_cds_dumping: set[Path] = set()  # archives a run of this process is writing


def _cds_dir() -> Path | None:
    if os.environ.get("KAFKA_TOOLS_CDS", "1") == "0":
        return None
    java = shutil.which("java")
    stamps = sorted(HERE.glob(".kafka/*/lib/.resolved"))
    if not java or not stamps:
        return None
    java = os.path.realpath(java)
    key = f"{java}:{os.stat(java).st_mtime_ns}:" + ",".join(f"{p}:{p.stat().st_mtime_ns}" for p in stamps)
    return HERE / ".kafka" / "cds" / hashlib.sha256(key.encode()).hexdigest()[:16]


# Tools loading mostly the same classes share an archive; the rest use the admin client's.
_CDS_FAMILY = {
    "kafka-console-producer": "clients",
    "kafka-console-consumer": "clients",
    "kafka-producer-perf-test": "clients",
    "kafka-consumer-perf-test": "clients",
    "kafka-dump-log": "dump-log",
}


def _cds_archive(tool: str) -> Path | None:
    d = _cds_dir()
    return d / f"{_CDS_FAMILY.get(tool, 'admin')}.jsa" if d else None


def _cds_options(archive: Path | None) -> tuple[str, Path | None]:
    """(JVM options, the archive file being written if this run writes it): map the archive if
    it is there, else write it unless another run of this process already is."""
    if archive is None:
        return "", None
    if archive.exists():
        return f"-XX:SharedArchiveFile={archive} {_CDS_QUIET}", None
    with _cds_lock:
        if archive in _cds_dumping:
            return "", None
        _cds_dumping.add(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(f"{archive.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    return f"-XX:ArchiveClassesAtExit={tmp} {_CDS_QUIET}", tmp


def _cds_done(archive: Path | None, tmp: Path | None, exited_normally: bool) -> None:
    if tmp is None:
        return
    try:
        if exited_normally and tmp.exists():
            os.replace(tmp, archive)  # atomic: a concurrent run maps the old file or the new
        else:
            tmp.unlink(missing_ok=True)
    finally:
        with _cds_lock:
            _cds_dumping.discard(archive)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_tool(name: str, *args, input: str | bytes | None = None, timeout: float = TOOL_TIMEOUT_S) -> ToolResult:
    """Runs one of Kafka's tools (`kafka-tool --list` names them) to completion; kills it and
    fails the test if it is still running after `timeout` seconds."""
    cmd = [str(KAFKA_TOOL), name, *map(str, args)]
    data = input.encode() if isinstance(input, str) else input
    archive = _cds_archive(name)
    cds, tmp = _cds_options(archive)
    exited_normally = False
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(cds),
            start_new_session=True,  # its own process group: a timeout kills the JVM and all
        )
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
            raise AssertionError(
                f"{' '.join(cmd)} still running after {timeout}s, killed\n--- stdout:\n{out.decode(errors='replace')}"
                f"\n--- stderr:\n{err.decode(errors='replace')}"
            ) from None
        exited_normally = proc.returncode >= 0
    finally:
        _cds_done(archive, tmp, exited_normally)
    return ToolResult(cmd, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def tool_ok(name: str, *args, input: str | bytes | None = None, timeout: float = TOOL_TIMEOUT_S) -> ToolResult:
    """`run_tool`, failing the test unless the tool exits 0."""
    r = run_tool(name, *args, input=input, timeout=timeout)
    assert r.rc == 0, f"tool failed:\n{r}"
    return r


def console_round_trip(bootstrap: str, command_config, topic: str) -> None:
    """Three lines through `kafka-console-producer`, read back by `kafka-console-consumer`, both
    with the client settings of `command_config` (a properties file)."""
    tool_ok(
        "kafka-console-producer", "--bootstrap-server", bootstrap, "--command-config", str(command_config),
        "--topic", topic, input=b"one\ntwo\nthree\n",
    )
    out = tool_ok(
        "kafka-console-consumer", "--bootstrap-server", bootstrap, "--command-config", str(command_config),
        "--topic", topic, "--from-beginning", "--max-messages", "3", "--timeout-ms", "20000",
    )
    assert out.stdout.split()[-3:] == ["one", "two", "three"], out


def run_tools(*calls: tuple) -> list[ToolResult]:
    """Runs independent tool invocations two at a time (JVM start-up is most of their cost):
    each call is (name, arg, ...); results in the order given."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda c: run_tool(*c), calls))


class ToolProcess:
    """A tool running in the background; its stdout is collected line by line as it comes."""

    def __init__(self, name: str, *args, timeout: float = TOOL_TIMEOUT_S):
        self.cmd = [str(KAFKA_TOOL), name, *map(str, args)]
        archive = _cds_archive(name)
        cds = f"-XX:SharedArchiveFile={archive} {_CDS_QUIET}" if archive and archive.exists() else ""
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(cds),
            start_new_session=True,
        )
        self.out_lines: list[str] = []
        self.err_text = ""
        self._readers = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self._readers:
            t.start()
        # Whatever happens to the test, the process dies after `timeout` seconds.
        self._killer = threading.Timer(timeout, _kill_group, (self.proc,))
        self._killer.daemon = True
        self._killer.start()

    def _read_out(self):
        for raw in self.proc.stdout:
            self.out_lines.append(raw.decode(errors="replace").rstrip("\n"))

    def _read_err(self):
        self.err_text = self.proc.stderr.read().decode(errors="replace")

    def wait_for_lines(self, count: int, timeout: float) -> list[str]:
        """The first `count` lines of stdout, failing if they have not come within `timeout` s."""
        deadline = time.monotonic() + timeout
        while len(self.out_lines) < count:
            assert self.proc.poll() is None or len(self.out_lines) >= count, f"{self.cmd} exited early:\n{self}"
            assert time.monotonic() < deadline, f"only {len(self.out_lines)} of {count} lines in {timeout}s:\n{self}"
            time.sleep(0.05)
        return self.out_lines[:count]

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (the JVM runs its shutdown hooks: a consumer leaves its group and commits) and
        waits for the exit; SIGKILL and fail if it does not come within `timeout` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.cmd} did not exit within {timeout}s of SIGTERM:\n{self}") from None
        finally:
            self._killer.cancel()
        for t in self._readers:
            t.join(STOP_TIMEOUT_S)
        return self.proc.returncode

    def kill(self) -> None:
        self._killer.cancel()
        _kill_group(self.proc)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def __str__(self) -> str:
        return f"$ {' '.join(self.cmd)}\n--- stdout:\n" + "\n".join(self.out_lines) + f"\n--- stderr:\n{self.err_text}"
