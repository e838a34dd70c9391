"""Measures the log cleaner against the release binary: its throughput (MB of dirty log cleaned
per second, from the broker's `log cleaned` lines) and the produce latency of another topic
while it runs, against the same broker and data with the cleaner off.

    SLUICE_BIN=target/release/sluice compat-tests/.venv/bin/python compat-tests/cleaner_bench.py \
        [DIRTY_MB, default 1000] [log.cleaner.io.max.bytes.per.second in MB/s, default none]

Steps: a broker with the cleaner off gets a compacted topic of DIRTY_MB of 1 KiB records over
10 000 keys (32 MiB segments); a latency probe (confluent-kafka, acks=all, linger 0, one
record every 1 ms to a second topic) runs for PROBE_S seconds: the baseline. The broker is
restarted with the cleaner on and the probe runs again from the start; the samples taken while
a cleaning ran (from the `log cleaned` line's time and elapsed_ms) are the "cleaner running"
figures. Not a test: it prints one table and exits 0.
"""

import json
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from confluent_kafka import Producer

from conftest import Broker, create_topic, producer_config

KEYS = 10_000
RECORD_BYTES = 1024
PROBE_S = 20
PROBE_INTERVAL_S = 0.001


def fill(broker: Broker, topic: str, dirty_mb: int) -> None:
    p = Producer(producer_config(broker.bootstrap, **{"linger.ms": 20, "batch.size": 1 << 20, "acks": "1",
                                                      "queue.buffering.max.kbytes": 1 << 20}))
    value = b"v" * (RECORD_BYTES - 16)
    for i in range(dirty_mb * 1024 * 1024 // RECORD_BYTES):
        while True:
            try:
                p.produce(topic, key=f"key-{i % KEYS:05d}".encode(), value=value, partition=0)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(120) == 0


def probe(broker: Broker, topic: str, seconds: float) -> list[tuple[float, float]]:
    """(wall-clock send time, latency ms) of each acks=all record, one sent every
    PROBE_INTERVAL_S; the latency is librdkafka's, from produce() to the broker's answer."""
    p = Producer(producer_config(broker.bootstrap, **{"linger.ms": 0, "acks": "all"}))
    samples, errors = [], []

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            samples.append((time.time() - msg.latency(), msg.latency() * 1000))

    end = time.monotonic() + seconds
    next_send = time.monotonic()
    while time.monotonic() < end:
        p.produce(topic, value=b"p" * 100, partition=0, on_delivery=done)
        next_send += PROBE_INTERVAL_S
        while (wait := next_send - time.monotonic()) > 0:
            p.poll(wait)
    assert p.flush(30) == 0 and not errors, errors[:3]
    return samples


def cleanings(log_text: str) -> list[dict]:
    """Each `log cleaned` line: its wall-clock window and figures."""
    out = []
    for line in log_text.splitlines():
        if "log cleaned" not in line:
            continue
        stamp = datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
        fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
        elapsed = float(fields["elapsed_ms"]) / 1000
        out.append({"start": stamp - elapsed, "end": stamp, "mb_read": float(fields["mb_read"]),
                    "mb_written": float(fields["mb_written"]), "elapsed_s": elapsed})
    return out


def percentiles(latencies: list[float]) -> dict:
    if len(latencies) < 100:
        return {"n": len(latencies)}
    q = statistics.quantiles(latencies, n=1000)
    return {"n": len(latencies), "p50_ms": round(q[499], 2), "p99_ms": round(q[989], 2),
            "p999_ms": round(q[998], 2), "max_ms": round(max(latencies), 2)}


def main() -> None:
    dirty_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    throttle_mb = float(sys.argv[2]) if len(sys.argv) > 2 else None
    data = Path(tempfile.mkdtemp(prefix="sluice-cleaner-bench-")) / "data"
    common = {"log.cleaner.backoff.ms": 200}
    b = Broker(data, {**common, "log.cleaner.enable": "false"}).start()
    try:
        create_topic(b, "dirty", config={"cleanup.policy": "compact", "segment.bytes": 32 << 20})
        create_topic(b, "probe")
        t0 = time.monotonic()
        fill(b, "dirty", dirty_mb)
        fill_s = time.monotonic() - t0
        os.sync()  # the fill's page-cache writeback would otherwise land in the baseline probe
        baseline = probe(b, "probe", PROBE_S)
        b.stop()
        b.overrides = {**common, "log.cleaner.enable": "true"}
        if throttle_mb:
            b.overrides["log.cleaner.io.max.bytes.per.second"] = throttle_mb * 1e6
        b.start()
        running = probe(b, "probe", PROBE_S)
        deadline = time.monotonic() + 120
        while not cleanings(b.log_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        done = cleanings(b.log_text())
    finally:
        b.kill9()
    during = [lat for at, lat in running if any(c["start"] <= at <= c["end"] for c in done)]
    # Each cleaning reads the dirty section twice (the key map, then the rewrite).
    mb_cleaned = sum(c["mb_read"] for c in done) / 2
    seconds = sum(c["elapsed_s"] for c in done)
    print(json.dumps({
        "dirty_mb_written": dirty_mb, "fill_s": round(fill_s, 1), "cleaner_io_max_mb_per_s": throttle_mb,
        "cleanings": [{k: round(v, 3) for k, v in c.items() if k not in ("start", "end")} for c in done],
        "cleaner_dirty_mb_per_s": round(mb_cleaned / seconds, 1) if seconds else None,
        "probe_cleaner_off": percentiles([lat for _, lat in baseline]),
        "probe_while_cleaning": percentiles(during),
        "probe_cleaner_on_whole_run": percentiles([lat for _, lat in running]),
    }, indent=2))


if __name__ == "__main__":
    main()
