"""Cutting one poll into the loop's batches, and each record's event time."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from kafka import TopicPartition

from logwarden.daemon.poll_batches import event_times, split_polled

P0, P1, P2 = (TopicPartition("logs", n) for n in range(3))


def test_split_polled_batches_bounded_and_partition_order_kept() -> None:
    """A poll is cut into batches of at most the batch size; each partition keeps its order."""
    polled = {P0: list(range(7)), P1: [], P2: list(range(100, 112))}
    batches = list(split_polled(polled, 5))
    assert [sum(len(records) for records in batch.values()) for batch in batches] == [5, 5, 5, 4]
    for tp, records in polled.items():
        assert [r for batch in batches for r in batch.get(tp, [])] == records
    assert all(records for batch in batches for records in batch.values()), "no empty partition lists"


def test_split_polled_of_a_small_poll_is_the_poll_itself_and_of_nothing_is_nothing() -> None:
    """A poll within the size stays one batch; an empty poll gives no batch at all."""
    polled = {P0: [1, 2], P2: [3, 4, 5]}
    assert list(split_polled(polled, 8192)) == [polled]
    assert list(split_polled({}, 8192)) == []
    assert list(split_polled({P1: []}, 8192)) == []


def test_event_times_caps_far_future_stamps_and_fills_missing_and_implausible_ones() -> None:
    """A stamp in microseconds (years ahead) is held at the limit, so its entity's last_seen cannot
    be years in the future (it would never expire and look the most recent to eviction); a missing or
    negative stamp takes the fallback, and so does one before 1973 (0, or seconds sent as
    milliseconds), counted apart for the past_timestamps warning."""
    now = 1_800_000_000.0
    stamps = (1_700_000_000_000_000, -1, None, 5_000, 0, 1_799_999_999_000)
    times = event_times([SimpleNamespace(timestamp=t) for t in stamps], 7.0, now + 3600)
    assert times.seconds.dtype == np.float64
    np.testing.assert_array_equal(times.seconds, [now + 3600, 7.0, 7.0, 7.0, 7.0, 1_799_999_999.0])
    assert (times.past, times.ahead) == (2, 1)
    assert event_times([], 1.0, 2.0).seconds.shape == (0,)
