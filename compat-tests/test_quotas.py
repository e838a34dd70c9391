"""Client quotas (issue 15): `kafka-configs --entity-type clients/users` setting and showing
producer_byte_rate and consumer_byte_rate (AlterClientQuotas / DescribeClientQuotas, kept in
the metadata log), and their enforcement as Kafka's ClientQuotaManager does it: a producer
over its quota gets throttle_time_ms and a muted connection, so its rate converges near the
quota, while a producer without a quota on the same broker is not slowed.

The broker measures rates over 3 windows of 1 s (quota.window.num=3) so a test of a few
seconds sees the converged rate; the figures are printed (run with -s), the assertions are
loose on purpose.
"""

import json
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kafka_tools import tool_ok
from conftest import broker_fixture, consumer_config, create_topic, produce_all, producer_config, unique_topic

QUOTA_BPS = 200_000
RUN_S = 8.0
VALUE = b"x" * 1000


@pytest.fixture(scope="module")
def quota_broker(tmp_path_factory):
    yield from broker_fixture(tmp_path_factory, "sluice-quotas", {"quota.window.num": 3})


def kafka_configs(broker, *args: str):
    return tool_ok("kafka-configs", "--bootstrap-server", broker.bootstrap, *args)


def produce_for(bootstrap: str, topic: str, client_id: str, seconds: float, out: dict) -> None:
    """Produces as fast as the broker lets it for `seconds`; records bytes acked and the
    largest throttle time the client reported."""
    acked = [0]
    throttles = []

    def on_delivery(err, msg):
        if err is None:
            acked[0] += len(msg.value())

    def on_stats(raw):
        for b in json.loads(raw).get("brokers", {}).values():
            throttles.append(b.get("throttle", {}).get("max", 0))

    p = Producer(
        producer_config(
            bootstrap,
            **{
                "client.id": client_id,
                "batch.size": 16384,
                "linger.ms": 5,
                "statistics.interval.ms": 1000,
                "stats_cb": on_stats,
            },
        )
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            p.produce(topic, VALUE, on_delivery=on_delivery)
        except BufferError:
            p.poll(0.05)
            continue
        p.poll(0)
    out["acked"] = acked[0]
    out["max_throttle_ms"] = max(throttles, default=0)
    p.purge()
    p.flush(10)


def test_kafka_configs_sets_and_describes_client_and_user_quotas(quota_broker):
    out = kafka_configs(
        quota_broker, "--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048",
        "--entity-type", "clients", "--entity-name", "described",
    )
    assert "Completed updating config for client described." in out.stdout, out
    kafka_configs(quota_broker, "--alter", "--add-config", "request_percentage=50", "--entity-type", "users", "--entity-default")
    shown = kafka_configs(quota_broker, "--describe", "--entity-type", "clients", "--entity-name", "described")
    assert "Quota configs for client-id 'described' are" in shown.stdout, shown
    assert "producer_byte_rate=1024.0" in shown.stdout and "consumer_byte_rate=2048.0" in shown.stdout, shown
    users = kafka_configs(quota_broker, "--describe", "--entity-type", "users", "--entity-default")
    assert "Quota configs for the default user-principal are request_percentage=50.0" in users.stdout, users
    kafka_configs(
        quota_broker, "--alter", "--delete-config", "producer_byte_rate,consumer_byte_rate",
        "--entity-type", "clients", "--entity-name", "described",
    )
    gone = kafka_configs(quota_broker, "--describe", "--entity-type", "clients", "--entity-name", "described")
    assert "described" not in gone.stdout, gone
    # Quotas are in the metadata log: a restart keeps them.
    quota_broker.restart()
    again = kafka_configs(quota_broker, "--describe", "--entity-type", "users", "--entity-default")
    assert "request_percentage=50.0" in again.stdout, again
    kafka_configs(quota_broker, "--alter", "--delete-config", "request_percentage", "--entity-type", "users", "--entity-default")


def test_throttled_producer_converges_near_its_quota_and_others_are_not_slowed(quota_broker):
    kafka_configs(
        quota_broker, "--alter", "--add-config", f"producer_byte_rate={QUOTA_BPS}",
        "--entity-type", "clients", "--entity-name", "throttled",
    )
    topic = unique_topic("quota-produce")
    create_topic(quota_broker, topic, partitions=2)
    results = {"throttled": {}, "free": {}}
    threads = [
        threading.Thread(target=produce_for, args=(quota_broker.bootstrap, topic, name, RUN_S, results[name]))
        for name in results
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_S + 30)
    throttled_bps = results["throttled"]["acked"] / RUN_S
    free_bps = results["free"]["acked"] / RUN_S
    print(
        f"\nquota {QUOTA_BPS} B/s: throttled producer {throttled_bps:.0f} B/s "
        f"(max throttle_time_ms {results['throttled']['max_throttle_ms']}), "
        f"unthrottled producer {free_bps:.0f} B/s"
    )
    assert results["throttled"]["max_throttle_ms"] > 0, results
    assert throttled_bps < 2.5 * QUOTA_BPS, results
    assert throttled_bps > 0.3 * QUOTA_BPS, results
    assert free_bps > 2 * throttled_bps, results
    kafka_configs(
        quota_broker, "--alter", "--delete-config", "producer_byte_rate", "--entity-type", "clients", "--entity-name", "throttled",
    )


def test_throttled_consumer_converges_near_its_quota(quota_broker):
    topic = unique_topic("quota-fetch")
    create_topic(quota_broker, topic)
    total = 3_000
    # Small batches: a throttled fetch is answered without data, so no one batch may be
    # larger than the quota allows in the windows.
    small = producer_config(quota_broker.bootstrap, **{"linger.ms": 20, "batch.size": 16384})
    produce_all(Producer(small), topic, [VALUE] * total)
    kafka_configs(
        quota_broker, "--alter", "--add-config", f"consumer_byte_rate={QUOTA_BPS}",
        "--entity-type", "clients", "--entity-name", "slow-consumer",
    )

    def consumed_bytes(client_id: str, seconds: float) -> int:
        c = Consumer(consumer_config(quota_broker.bootstrap, **{"client.id": client_id, "max.partition.fetch.bytes": 65536}))
        c.assign([TopicPartition(topic, 0, 0)])
        got = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and got < total * len(VALUE):
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                got += len(m.value())
        c.close()
        return got

    slow_bps = consumed_bytes("slow-consumer", 5.0) / 5.0
    started = time.monotonic()
    free = consumed_bytes("fast-consumer", 30.0)
    free_s = time.monotonic() - started
    print(f"\nquota {QUOTA_BPS} B/s: throttled consumer {slow_bps:.0f} B/s; unthrottled read {free} B in {free_s:.2f} s")
    assert slow_bps < 2.5 * QUOTA_BPS, slow_bps
    assert slow_bps > 0.3 * QUOTA_BPS, slow_bps
    assert free == total * len(VALUE)
    kafka_configs(
        quota_broker, "--alter", "--delete-config", "consumer_byte_rate", "--entity-type", "clients", "--entity-name", "slow-consumer",
    )
