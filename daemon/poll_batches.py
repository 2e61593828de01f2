"""One poll's records as the loop's batches: cut to a size, each record's event time.

Why apart from the loop: a large poll (a backlog after a restart) is cut into batches so the loop
can tick (checkpoint cadence, watchdog) between them, and the cutting must keep each partition's
order, or an entity's events would be scored out of order.  Pure functions, tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from kafka import TopicPartition


def event_times(records: Sequence[Any], fallback: float | np.ndarray, limit: float) -> np.ndarray:
    """Each record's timestamp in seconds (float64), ``fallback`` (one, or one per record) where it
    has none, at most ``limit``."""
    # A legacy (magic 0) record carries None, which np.fromiter reads as NaN.
    stamps = np.fromiter((record.timestamp for record in records), np.float64, len(records))
    seconds = stamps / 1000.0
    missing = ~(stamps >= 0)  # NaN compares false
    seconds[missing] = np.broadcast_to(np.asarray(fallback, np.float64), seconds.shape)[missing]
    return np.minimum(seconds, limit)


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
