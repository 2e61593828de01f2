"""Cutting one poll into the loop's batches, and each record's event time."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from kafka import TopicPartition

from logwarden.daemon.poll_batches import event_times, split_polled

P0, P1, P2 = (TopicPartition("logs", n) for n in range(3))


def records(partition: int, count: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(partition=partition, offset=offset) for offset in range(count)]


def test_split_polled_keeps_every_record_once_in_partition_order_within_the_size() -> None:
    """Batches hold at most ``size`` records; joined again, each partition's records are as polled."""
    polled = {P0: records(0, 7), P1: records(1, 0), P2: records(2, 12)}
    batches = list(split_polled(polled, 5))
    assert [sum(len(part) for part in batch.values()) for batch in batches] == [5, 5, 5, 4]
    for tp, polled_records in polled.items():
        joined = [record for batch in batches for record in batch.get(tp, [])]
        assert joined == polled_records
    assert all(part for batch in batches for part in batch.values())  # no empty partition lists


def test_split_polled_of_a_small_poll_is_the_poll_itself_and_of_nothing_is_nothing() -> None:
    """A poll within the size stays one batch; an empty poll gives no batch at all."""
    polled = {P0: records(0, 2), P2: records(2, 3)}
    assert list(split_polled(polled, 8192)) == [polled]
    assert list(split_polled({}, 8192)) == []
    assert list(split_polled({P1: []}, 8192)) == []


def test_event_times_are_seconds_with_the_fallback_for_missing_stamps_and_never_past_the_limit() -> None:
    """Milliseconds become seconds; None (legacy records) and -1 take the fallback; all are capped."""
    stamped = [SimpleNamespace(timestamp=stamp) for stamp in (1_500, None, -1, 9_000_000, 0)]
    times = event_times(stamped, fallback=42.0, limit=1_000.0)
    assert times.dtype == np.float64
    assert times.tolist() == [1.5, 42.0, 42.0, 1_000.0, 0.0]
    assert all(math.isfinite(value) for value in times)
    assert event_times([], fallback=1.0, limit=2.0).shape == (0,)
