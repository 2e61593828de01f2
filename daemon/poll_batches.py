"""One poll's records as the loop's batches: cut to a size, each record's event time.

Why apart from the loop: a large poll (a backlog after a restart) is cut into batches so the loop
can tick (checkpoint cadence, watchdog) between them, and the cutting must keep each partition's
order, or an entity's events would be scored out of order.  Pure functions, tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from kafka import TopicPartition

PLAUSIBLE_TIMESTAMP_MS = 1e11
"""Record timestamps before this (March 1973: 0, or epoch seconds sent as milliseconds) are taken as
none.  Stamped so far back, every record of a partition read to its end would fall more than the
TTL behind the partition's time (which gains the wall's), and the sweep would end its entities'
sessions again every second, each end under one alert id.  The JSON timestamp reader draws the
line between seconds and milliseconds at the same value."""


class EventTimes(NamedTuple):
    """Each event's time, and how many records' own stamps were not used."""

    seconds: np.ndarray
    past: int
    """Records stamped before ``PLAUSIBLE_TIMESTAMP_MS``, given the fallback as if unstamped."""
    ahead: int
    """Records stamped past the limit (far ahead of this host's clock), cut back to it."""


def event_times(records: Sequence[Any], fallback: float | np.ndarray, limit: float) -> EventTimes:
    """Each record's timestamp in seconds (float64), ``fallback`` (one, or one per record) where it
    has none or one before ``PLAUSIBLE_TIMESTAMP_MS``, at most ``limit``."""
    # A legacy (magic 0) record carries None, which np.fromiter reads as NaN.
    stamps = np.fromiter((record.timestamp for record in records), np.float64, len(records))
    seconds = stamps / 1000.0
    missing = ~(stamps >= PLAUSIBLE_TIMESTAMP_MS)  # NaN compares false
    past = int(np.count_nonzero(missing & (stamps >= 0)))
    seconds[missing] = np.broadcast_to(np.asarray(fallback, np.float64), seconds.shape)[missing]
    ahead = int(np.count_nonzero(seconds > limit))
    return EventTimes(np.minimum(seconds, limit), past, ahead)


def split_polled(
    polled: dict[TopicPartition, list[Any]], size: int
) -> Iterator[dict[TopicPartition, list[Any]]]:
    """Cut one poll's records into batches of at most ``size``, each partition's order kept."""
    batch: dict[TopicPartition, list[Any]] = {}
    count = 0
    for tp, records in polled.items():
        start = 0
        while start < len(records):
            take = min(size - count, len(records) - start)
            batch[tp] = records[start : start + take]
            start += take
            count += take
            if count == size:
                yield batch
                batch, count = {}, 0
    if batch:
        yield batch
