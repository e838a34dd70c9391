"""librdkafka (confluent-kafka) half of bench/tls/run.sh: creates a topic of 8 partitions,
produces N 1 KiB records (acks=1, linger.ms=5), then consumes them as one group; prints MB/s of
each. Usage: librdkafka_run.py BOOTSTRAP PLAINTEXT|SSL N (SSL_CA names the CA's PEM file)."""

import os
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

RECORD = b"x" * 1024


def main() -> None:
    bootstrap, protocol, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    common = {"bootstrap.servers": bootstrap, "security.protocol": protocol}
    if protocol == "SSL":
        common["ssl.ca.location"] = os.environ["SSL_CA"]
    topic = "rdk-" + uuid.uuid4().hex[:8]
    admin = AdminClient(common)
    admin.create_topics([NewTopic(topic, 8, 1)])[topic].result(30)

    producer = Producer(
        {**common, "acks": "1", "linger.ms": 5, "queue.buffering.max.messages": 1_000_000,
         "queue.buffering.max.kbytes": 1_048_576}
    )
    start = time.monotonic()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, RECORD)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        sys.exit("records left unacknowledged after 120 s")
    took = time.monotonic() - start
    print(f"{protocol} librdkafka produce {n * len(RECORD) / took / 1e6:.1f} MB/s", flush=True)

    consumer = Consumer(
        {**common, "group.id": topic, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    got, start, deadline = 0, None, time.monotonic() + 180
    while got < n and time.monotonic() < deadline:
        batch = consumer.consume(10_000, 1.0)
        if batch and start is None:
            start = time.monotonic()  # from the first record: the group join is not fetching
        got += sum(1 for m in batch if m.error() is None)
    consumer.close()
    if start is None or got < n:
        sys.exit(f"consumed {got} of {n} records in 180 s")
    took = time.monotonic() - start
    print(f"{protocol} librdkafka fetch {got * len(RECORD) / took / 1e6:.1f} MB/s", flush=True)
    admin.delete_topics([topic])


if __name__ == "__main__":
    main()
