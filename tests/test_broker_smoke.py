"""The test broker behaves as the suite relies on: keyed produce, group consume, commit, resume."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka_broker import read_all

RECORDS = 2000
PARTITIONS = 3
DEADLINE_S = 60.0


def _produce_keyed(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for i in range(count):
            producer.send(topic, key=f"job_{i % 97}".encode(), value=f"record-{i}".encode())
        producer.flush(timeout=30)
    finally:
        producer.close()


def _consume_until(consumer: KafkaConsumer, count: int, deadline_s: float) -> list[Any]:
    """Poll until ``count`` records arrived or the deadline passed."""
    records: list[Any] = []
    deadline = time.monotonic() + deadline_s
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    return records


def test_broker_group_consume_commit_then_new_member_resumes(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    fast_consumer_settings: dict[str, Any],
) -> None:
    """A group reads 2,000 keyed records on 3 partitions once; after a commit a new member re-reads none."""
    topic = topic_factory(partitions=PARTITIONS)
    _produce_keyed(kafka_bootstrap, topic, RECORDS)

    group_kwargs = dict(fast_consumer_settings, bootstrap_servers=kafka_bootstrap, group_id=consumer_group)
    first = KafkaConsumer(topic, **group_kwargs)
    try:
        records = _consume_until(first, RECORDS, DEADLINE_S)
        first.commit()
        assignment = first.assignment()
        committed = {tp.partition: first.committed(tp) for tp in assignment}
    finally:
        first.close()

    assert len(records) == RECORDS
    assert len({(r.partition, r.offset) for r in records}) == RECORDS
    assert {tp.partition for tp in assignment} == set(range(PARTITIONS))
    per_partition = Counter(r.partition for r in records)
    assert committed == dict(per_partition)
    # Keyed records stay on one partition per key, as the daemon's per-entity state needs.
    partitions_of_key: dict[bytes, set[int]] = {}
    for r in records:
        partitions_of_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in partitions_of_key.values())

    second = KafkaConsumer(topic, **group_kwargs)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(second.assignment()) < PARTITIONS and time.monotonic() < deadline:
            second.poll(timeout_ms=200)
        positions = {tp.partition: second.position(tp) for tp in second.assignment()}
        reread = _consume_until(second, 1, deadline_s=1.5)
    finally:
        second.close()
    assert positions == dict(per_partition)
    assert reread == []


def test_broker_read_all_reads_every_record_without_group(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    """read_all returns every record of every partition from the beginning, in offset order per partition."""
    topic = topic_factory(partitions=2)
    _produce_keyed(kafka_bootstrap, topic, 300)
    records = read_all(kafka_bootstrap, topic, expected_count=300, timeout_s=30)
    assert len(records) == 300
    for partition in (0, 1):
        offsets = [r.offset for r in records if r.partition == partition]
        assert offsets == list(range(len(offsets)))


def test_broker_read_all_missing_records_returns_what_exists(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    """Asked for more records than exist, read_all gives up at its deadline with the ones there are."""
    topic = topic_factory()
    _produce_keyed(kafka_bootstrap, topic, 5)
    assert len(read_all(kafka_bootstrap, topic, expected_count=6, timeout_s=2)) == 5


def test_broker_topic_factory_creates_requested_partitions(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    """topic_factory makes a fresh topic with the number of partitions asked for."""
    topic = topic_factory(partitions=4, prefix="parts")
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        assert topic.startswith("parts-")
        assert consumer.partitions_for_topic(topic) == {0, 1, 2, 3}
        assert TopicPartition(topic, 0) not in consumer.assignment()
    finally:
        consumer.close()
