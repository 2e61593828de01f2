"""Garbage collection for the event loop: between polls, never in the middle of one.

Every consumed record leaves a few container objects (kafka-python's ConsumerRecord, its headers
list, the decoded event) alive until its poll is handled; reference counting frees them right
after.  CPython's collector starts a young collection whenever the net count of container
objects allocated since the last one passes a threshold, wherever the loop happens to be, so it
starts them in the middle of large polls and scans every record in hand.  With the young
threshold at 50,000 (this module's setting before the loop collected for itself) a poll of about
20,000 records set one off; it scanned 48,000 objects and held the loop 25-50 ms, and large polls
come exactly when the loop is already behind (``benchmarks/gc_pauses.py``; benchmarks/README.md,
2026-11-22, late evening).

So the loop collects between polls, when nothing it polled is in hand (``collect_between_polls``):
the young generation then holds only what outlived its poll, a few objects per poll.  The older
generations follow CPython's cascade: every ``MIDDLE_THRESHOLD``-th collection also takes the
middle generation, and every ``OLD_THRESHOLD``-th of those is a full collection.  The automatic
collector stays on, with a young threshold no poll reaches (``AUTOMATIC_YOUNG_THRESHOLD``), for
whatever runs while the loop does not (a long rebalance, shutdown).  ``gc.freeze`` moves what
startup built (the model, the Kafka clients, restored state) out of every later scan.  Raising the
young threshold above CPython's 700 took ``benchmarks/throughput.py`` from 51,000-52,000 to
57,000-59,000 events/s (alternating runs).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net container allocations that make a young collection due at the next gap between polls.

Counted when nothing polled is in hand, so this is what outlived the polls since the last
collection (garbage cycles, kafka-python's futures): a young collection scans about as many."""

MIDDLE_THRESHOLD = 10
"""Every this many collections, one is of the middle generation too (CPython's default)."""

OLD_THRESHOLD = 10
"""Every this many middle collections, one is a full collection (CPython's default)."""

AUTOMATIC_YOUNG_THRESHOLD = 500_000
"""CPython's own trigger while the loop runs: above what any poll allocates (kafka-python hands over
at most ``max_poll_records``, 20,000 by default, about 3 containers each)."""


def tune_for_event_loop() -> None:
    """Freeze what startup allocated and leave collections to the loop; call once, just before it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(AUTOMATIC_YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def generation_due(counts: tuple[int, int, int]) -> int | None:
    """The oldest generation to collect now, given ``gc.get_count()``; None when none is due.

    ``counts`` are the net allocations since the last young collection, the young collections
    since the last middle one, and the middle collections since the last full one.
    """
    young, middle, old = counts
    if young < YOUNG_THRESHOLD:
        return None
    if middle + 1 < MIDDLE_THRESHOLD:
        return 0
    if old + 1 < OLD_THRESHOLD:
        return 1
    return 2


def collect_between_polls() -> int | None:
    """Run the collection that is due, if any; the generation collected.  Call with no records in hand."""
    generation = generation_due(gc.get_count())
    if generation is not None:
        gc.collect(generation)
    return generation
