"""One confluent-kafka group consumer, run as its own process by test_groups.py so a test can
`kill -9` it. Not a test module.

    python group_member.py '<json settings>'

settings: bootstrap, group, topics, and optionally config (extra librdkafka settings) and
commit_every (default 1): after every that many records it printed, when it has caught up
(a poll returned nothing), and before it gives partitions up (on_revoke), the member commits
its positions synchronously. 0: never commits. process_ms (default 0): time it spends on each
record after printing it.

It subscribes, and writes one JSON line per event to stdout (flushed at once):
  {"ev": "assigned", "parts": [...], "all": [...]}   on_assign (all = the assignment after it)
  {"ev": "revoked" | "lost", "parts": [...], "all": [...]}
  {"ev": "rec", "p": partition, "o": offset, "v": value}   a record, before it is committed
  {"ev": "committed", "p": partition, "o": next offset}     the broker acknowledged the commit
  {"ev": "commit_failed", "err": "..."}
  {"ev": "error", "code": "...", "str": "...", "fatal": bool} a consumer error from poll()
  {"ev": "closed"}                                          after close() on SIGTERM
librdkafka's own log (debug contexts from `config`) goes to stderr.
"""

import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException


def emit(**event) -> None:
    event["t"] = time.monotonic()
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main() -> None:
    settings = json.loads(sys.argv[1])
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    current: set[int] = set()
    uncommitted = []  # records printed since the last commit

    def commit(consumer):
        """Commits the positions after every record polled so far (all printed by now)."""
        try:
            for tp in consumer.commit(asynchronous=False):
                if tp.error:
                    emit(ev="commit_failed", err=f"{tp.partition}: {tp.error}")
                else:
                    emit(ev="committed", p=tp.partition, o=tp.offset)
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:
                emit(ev="commit_failed", err=str(e.args[0]))
        uncommitted.clear()

    def parts(tps):
        return sorted(tp.partition for tp in tps)

    def on_assign(consumer, tps):
        current.update(parts(tps))
        emit(ev="assigned", parts=parts(tps), all=sorted(current))

    def on_revoke(consumer, tps):
        if uncommitted:
            commit(consumer)
        current.difference_update(parts(tps))
        emit(ev="revoked", parts=parts(tps), all=sorted(current))

    def on_lost(consumer, tps):
        current.difference_update(parts(tps))
        emit(ev="lost", parts=parts(tps), all=sorted(current))

    config = {
        "bootstrap.servers": settings["bootstrap"],
        "group.id": settings["group"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10000,
        "log.connection.close": False,
        **settings.get("config", {}),
    }
    c = Consumer(config)
    c.subscribe(settings["topics"], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    commit_every = settings.get("commit_every", 1)
    process_ms = settings.get("process_ms", 0)
    while not stopping:
        m = c.poll(0.1)
        if m is None:
            if uncommitted:  # caught up: commit what was processed
                commit(c)
            continue
        if m.error():
            e = m.error()
            if e.code() != KafkaError._PARTITION_EOF:
                emit(ev="error", code=e.name(), str=e.str(), fatal=e.fatal())
            continue
        emit(ev="rec", p=m.partition(), o=m.offset(), v=m.value().decode())
        uncommitted.append(m)
        time.sleep(process_ms / 1000)
        if commit_every and len(uncommitted) >= commit_every:
            commit(c)
    c.close()
    emit(ev="closed")


if __name__ == "__main__":
    main()
