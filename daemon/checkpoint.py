"""The checkpoint order, written down in one place.

A checkpoint makes everything the daemon did for input offsets below ``next_offsets`` durable:

1. ``flush_producer`` — wait until the broker acknowledged every alert, dead letter and
   score produced so far.  Alerts are therefore at-least-once: a crash before step 2 replays
   the events from the previous checkpoint and produces the same alerts again, with the same
   ``alert_id`` (derived from topic/partition/offset), so consumers can de-duplicate.
2. ``snapshot`` — write the changed entity states *and* the next input offsets to the local
   store in ONE transaction.  This is the authoritative checkpoint: on start the daemon seeks
   every partition to the offsets stored here, so each input event's effect on the state is
   applied exactly once (a crash mid-transaction leaves the previous checkpoint whole).
3. ``commit_group`` — commit the same offsets to the Kafka consumer group.  Only for progress
   tools (consumer lag) and for a partition first seen by an instance without local state;
   a crash between 2 and 3 leaves the group behind, never ahead, of the local state.

Scale-out builds on this order the way Quix Streams does: a state changelog topic,
co-partitioned with the input and each record carrying the input offset it reflects, is
produced before step 1 and flushed with it; recovery then replays changelog records below
the committed offset.  Step names are also the crash points the tests kill the daemon at.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.state_store import StateStore
from logwarden.daemon.state_table import EntityStateTable

Offsets = dict[tuple[str, int], int]

CHECKPOINT_STEPS = ("before_flush", "after_flush", "mid_snapshot", "after_snapshot", "after_commit")


@dataclass(frozen=True)
class CheckpointResult:
    """What one checkpoint wrote, for the log line."""

    upserts: int
    deletes: int
    partitions: int
    seconds: float


class Checkpointer:
    """Runs the three steps in order; any failure leaves the previous checkpoint in force."""

    def __init__(
        self,
        *,
        flush_producer: Callable[[float], None],
        store: StateStore,
        table: EntityStateTable,
        commit_group: Callable[[Offsets], None],
        crash_points: CrashPoints,
    ) -> None:
        self._flush_producer = flush_producer
        self._store = store
        self._table = table
        self._commit_group = commit_group
        self._crash = crash_points

    def commit(
        self, next_offsets: Offsets, flush_timeout_seconds: float, released: Collection[tuple[str, int]] = ()
    ) -> CheckpointResult:
        """Make all work for offsets below ``next_offsets`` durable (see the module docstring).

        ``flush_timeout_seconds`` bounds step 1: generous while running (a slow broker is not
        an error), the remaining shutdown budget when stopping.
        """
        started = time.monotonic()
        self._crash.reach("before_flush")
        self._flush_producer(flush_timeout_seconds)
        self._crash.reach("after_flush")
        changes = self._table.take_changes()
        try:
            self._store.save_checkpoint(
                changes,
                dict(next_offsets),
                released=released,
                midway=lambda: self._crash.reach("mid_snapshot"),
            )
        except BaseException:
            self._table.restore_changes(changes)
            raise
        self._crash.reach("after_snapshot")
        self._commit_group(dict(next_offsets))
        self._crash.reach("after_commit")
        return CheckpointResult(
            upserts=changes.upsert_count,
            deletes=len(changes.deletes),
            partitions=len(next_offsets),
            seconds=time.monotonic() - started,
        )
