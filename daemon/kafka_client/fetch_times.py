"""When each input partition's last fetch answer came: the moment its high watermark is known as of.

Why: a partition read to its high watermark has nothing unread, so its stream time runs on with the
wall clock and its idle entities expire (``StreamClock.advance``).  But kafka-python keeps the high
watermark of the last fetch that was answered: while the brokers cannot be reached (a network cut, a
frozen broker), producers elsewhere may write on, the watermark goes stale, and the daemon took its
partitions for quiet: a 30 s cut ended all 30 sessions in progress of a test (30 false session-end
alerts), and the held-back events, read afterwards, alerted again as new sessions.  A partition is
known to be read to its end only as of its last fetch answer; time after that passes once a later
answer shows the same (nothing was written meanwhile), and never if records came meanwhile: those
records' own timestamps move its time instead.

How: ``watch_fetches`` wraps the parsing of fetch answers of one consumer's fetcher (a kafka-python
internal, like the record reader's) and notes, for each error-free answer for a partition, when its
request was sent (its high watermark is at least the broker's then; the parse itself may come
seconds later, after a busy loop or a rebalance).  The consumer fetches without incremental fetch
sessions (``build_consumer``), in which a broker leaves partitions that did not change out of its
answers.  Where the fetcher cannot be watched (another kafka-python), the caller falls back to the
high watermark alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

PartitionKey = tuple[str, int]


class FetchTimes:
    """The monotonic time of the last error-free fetch response of each partition."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._at: dict[PartitionKey, float] = {}

    def record(self, key: PartitionKey, sent_at: float | None = None) -> None:
        """An error-free fetch answer for ``key``, to a request sent at ``sent_at`` (monotonic; now
        when unknown): the high watermark it carries was reached no earlier than then."""
        self._at[key] = self._monotonic() if sent_at is None else sent_at

    def fetched_at(self, key: PartitionKey) -> float | None:
        """When the last such response for ``key`` came, or None before any."""
        return self._at.get(key)


def watch_fetches(consumer: Any, times: FetchTimes) -> str:
    """Note in ``times`` each error-free fetch response ``consumer`` parses; '' or why it cannot."""
    fetcher: Any = getattr(consumer, "_fetcher", None)
    parse = getattr(fetcher, "_parse_fetched_data", None)
    if fetcher is None or parse is None:
        return "this kafka-python consumer has no fetcher._parse_fetched_data to watch"
    # An answer is parsed only at a later poll, seconds later behind a busy loop or a rebalance, and
    # its high watermark is the broker's when it answered: the request's send time, which
    # kafka-python hands to its response handler (looked up on the instance at each send), is the
    # time it is known as of.  Written on the network thread before the answer is queued for parsing.
    sent_at: dict[Any, float] = {}
    handle = getattr(fetcher, "_handle_fetch_response", None)
    if handle is not None:

        def handle_noting_send_time(node_id: Any, fetch_offsets: Any, send_time: float, response: Any) -> Any:
            for tp in fetch_offsets:
                sent_at[tp] = send_time
            return handle(node_id, fetch_offsets, send_time, response)

        fetcher._handle_fetch_response = handle_noting_send_time

    def parse_and_note(completed_fetch: Any) -> Any:
        parsed = parse(completed_fetch)
        if parsed is not None and getattr(completed_fetch.partition_data, "error_code", None) == 0:
            tp = completed_fetch.topic_partition
            times.record((tp.topic, tp.partition), sent_at.get(tp))
        return parsed

    fetcher._parse_fetched_data = parse_and_note
    return ""
