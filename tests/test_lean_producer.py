"""The benchmark's lean load generator delivers what KafkaProducer would: same records, partitions, order."""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka_broker import read_all

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from lean_producer import (  # noqa: E402
    LeanProducer,
    batches_by_partition,
    build_batch,
    partition_for,
    produce_errors,
)

PARTITIONS = 3


def test_lean_producer_records_arrive_with_their_keys_timestamps_and_kafka_producers_partitions(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    """Two requests of per-partition batches: every record is read back once, in order within its key."""
    topic = topic_factory(partitions=PARTITIONS)
    keys = [f"job_{i % 37}".encode() for i in range(300)]
    values = [f"line {i} of job_{i % 37}".encode() for i in range(300)]
    timestamps = [1_700_000_000_000 + i for i in range(300)]
    producer = LeanProducer(kafka_bootstrap, topic, PARTITIONS)
    try:
        for start, end in ((0, 120), (120, 300)):
            partitions = [partition_for(key, PARTITIONS) for key in keys[start:end]]
            producer.send(
                batches_by_partition(partitions, keys[start:end], values[start:end], timestamps[start:end])
            )
        producer.flush(timeout_s=30)
    finally:
        producer.close()

    records = read_all(kafka_bootstrap, topic, 300)
    assert sorted((r.key, r.value, r.timestamp) for r in records) == sorted(
        zip(keys, values, timestamps, strict=True)
    )
    by_key: dict[bytes, list[bytes]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(record.value)
    assert by_key == {key: [v for k, v in zip(keys, values, strict=True) if k == key] for key in set(keys)}

    reference = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        sent = {
            key: reference.send(topic, key=key, value=b"reference").get(timeout=30).partition
            for key in set(keys)
        }
    finally:
        reference.close()
    assert {r.key: r.partition for r in records} == sent


def test_produce_errors_names_each_failed_partition() -> None:
    """A Produce v3 response with one good and one refused partition yields the refused one only."""
    topic = b"logs"
    response = (
        struct.pack(">ii", 7, 1)  # correlation id, one topic
        + struct.pack(">h", len(topic))
        + topic
        + struct.pack(">i", 2)
        + struct.pack(">ihqq", 0, 0, 10, -1)
        + struct.pack(">ihqq", 1, 3, -1, -1)  # UNKNOWN_TOPIC_OR_PARTITION
        + struct.pack(">i", 0)  # throttle time
    )
    assert produce_errors(response) == [("logs", 1, 3)]


def test_lean_producer_flush_fails_when_the_broker_hangs_up() -> None:
    """A connection closed with requests unanswered fails the flush instead of waiting forever."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept_read_and_hang_up() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.close()

    server = threading.Thread(target=accept_read_and_hang_up, daemon=True)
    server.start()
    producer = LeanProducer(f"127.0.0.1:{port}", "logs", 1)
    try:
        producer.send({0: build_batch([b"k"], [b"v"], [1_700_000_000_000])})
        with pytest.raises(RuntimeError, match="connection lost with requests unanswered"):
            producer.flush(timeout_s=10)
    finally:
        producer.close()
        server.join(5)
        listener.close()
