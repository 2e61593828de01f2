"""The checkpoint order, written down in one place.

A checkpoint makes everything the daemon did for input offsets below ``next_offsets`` durable:

1. ``flush_producer`` — wait until the broker acknowledged every alert, dead letter and
   score produced so far.  Alerts are therefore at-least-once: a crash before step 2 replays
   the events from the previous checkpoint and produces the same alerts again, with the same
   ``alert_id`` (derived from topic/partition/offset, or for a session end from the entity and
   its last event's time), so consumers can de-duplicate.
2. ``snapshot`` — write the changed entity states *and* the next input offsets to the local
   store in ONE transaction.  This is the authoritative checkpoint: on start the daemon seeks
   every partition to the offsets stored here, so each input event's effect on the state is
   applied exactly once (a crash mid-transaction leaves the previous checkpoint whole).
3. ``commit_group`` — commit the same offsets to the Kafka consumer group.  Only for progress
   tools (consumer lag) and for a partition first seen by an instance without local state;
   a crash between 2 and 3 leaves the group behind, never ahead, of the local state, and a
   commit the group refuses (it is rebalancing) or does not answer in time is logged and
   retried by the next checkpoint (daemon/kafka_client/group_commit.py).  At a rebalance the commit is
   awaited before the partitions move on (daemon/kafka_client/rebalance.py).

A failure in step 1 or 2 ends checkpointing for the process (``Checkpointer.failed``): it exits
and the next start replays from the last saved checkpoint.

Scale-out builds on this order the way Quix Streams does: a state changelog topic,
co-partitioned with the input and each record carrying the input offset it reflects, is
produced before step 1 and flushed with it; recovery then replays changelog records below
the committed offset.  The tests kill the daemon at the crash points of ``CHECKPOINT_STEPS``,
placed around the steps: before and after step 1, inside and after step 2's transaction, and
after step 3.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.state.store import EntityRows, RowBuffer, RowSource, StateChanges, StateStore
from logwarden.daemon.state.table import EntityStateTable
from logwarden.daemon.thread_priority import lower_current_thread_priority

Offsets = dict[tuple[str, int], int]

CHECKPOINT_STEPS = ("before_flush", "after_flush", "mid_snapshot", "after_snapshot", "after_commit")

PACED_CHUNK_ROWS = 1_000
"""Rows per write of a paced background snapshot."""

PACED_PAUSE_SECONDS = 0.005
"""Pause before each chunk of a paced background snapshot after the first.

While input flows, the snapshot thread and the event loop compete for the same cores, and the
loop's batches pile up behind a snapshot (benchmarks/throughput.py: the worst alerts of a run sat in
the batches right after one).  Writing 1,000 rows at a time with 5 ms pauses between the writes
gave a lower event -> alert p99 at 30,000 events/s in 7 of 9 alternating pairs of runs (median
155 -> 117 ms; the machine's noise is of the same size, so this is a lean, not a proof).  It
lengthens a 10,000-row snapshot by about 45 ms and a 50,000-row one by about 250 ms."""

SNAPSHOT_THREAD_NICENESS = 10
"""How much lower than the event loop the snapshot thread runs (added to its nice value, Linux).

A snapshot has seconds to finish (until the next checkpoint is due); an event waiting for the loop
has milliseconds.  On two cores shared by the daemon, the broker and the load generator
(benchmarks/throughput.py, 31,000 events/s, 5 ms producer ticks), event -> alert p99 was 62.7-88.6 ms
in 6 runs with the snapshot thread at +10, against 86.3-229.4 ms in 6 alternating runs at the
loop's priority (3 of them over 100 ms).  The rate phase was unchanged: 63,399-68,347 events/s
against 63,649-69,225 (3 runs each).  When the cores are saturated the snapshot takes longer, and
only a checkpoint that falls due while it is still in flight waits for it."""


@dataclass(frozen=True)
class CheckpointResult:
    """What one checkpoint wrote, for the log line."""

    upserts: int
    deletes: int
    partitions: int
    seconds: float
    group_commit_error: str | None = None
    """Why the consumer group refused step 3, if it did; the checkpoint stands regardless."""


@dataclass
class _Pending:
    """A checkpoint whose snapshot is being written by the writer thread."""

    future: Future[None]
    next_offsets: Offsets
    upserts: int
    deletes: int
    started: float
    budget_seconds: float


class PacedRows:
    """A RowSource that hands out at most ``chunk_rows`` rows at a time, pausing before each later chunk.

    The pause lets the event loop have the cores while a background snapshot is written; see
    ``PACED_PAUSE_SECONDS``.
    """

    def __init__(self, rows: RowSource, chunk_rows: int, pause_seconds: float) -> None:
        self._rows = rows
        self._chunk_rows = chunk_rows
        self._pause_seconds = pause_seconds

    @property
    def entities(self) -> Sequence[str]:
        """Entity of each row, in the wrapped source's order."""
        return self._rows.entities

    def __len__(self) -> int:
        return len(self._rows)

    def chunks(self, rows: int) -> Iterator[EntityRows]:
        """The wrapped rows in chunks of at most ``chunk_rows``, pausing before each chunk but the first."""
        for index, chunk in enumerate(self._rows.chunks(min(rows, self._chunk_rows))):
            if index:
                time.sleep(self._pause_seconds)
            yield chunk


class Checkpointer:
    """Runs the three steps in order; any failure leaves the previous checkpoint in force.

    Step 2 may run on a writer thread so the event loop keeps scoring while SQLite writes:
    the changed rows are copied at ``start`` (the state exactly at ``next_offsets``) and step 3
    follows on the loop's thread (kafka-python's consumer is not thread-safe) once the write is
    durable, in ``poll_completed`` or ``wait``.  At most one checkpoint is in flight; one with
    more than ``max_background_rows`` changed rows is written in place, so the copy stays small.
    The writer thread runs at a lower CPU priority (``SNAPSHOT_THREAD_NICENESS``).
    """

    def __init__(
        self,
        *,
        flush_producer: Callable[[float], None],
        store: StateStore,
        table: EntityStateTable,
        commit_group: Callable[[Offsets, float], str | None],
        crash_points: CrashPoints,
        background: bool = False,
        max_background_rows: int = 50_000,
    ) -> None:
        self._flush_producer = flush_producer
        self._store = store
        self._table = table
        self._commit_group = commit_group
        self._crash = crash_points
        self._max_background_rows = max_background_rows
        self._writer = (
            ThreadPoolExecutor(
                1,
                thread_name_prefix="logwarden-snapshot",
                initializer=functools.partial(lower_current_thread_priority, SNAPSHOT_THREAD_NICENESS),
            )
            if background
            else None
        )
        self._pending: _Pending | None = None
        self._failure: str | None = None
        # Reused by every background checkpoint: one is in flight at a time, and its rows are
        # written before the next one copies (see RowBuffer).
        self._row_buffer = RowBuffer(max_background_rows)

    def start(
        self,
        next_offsets: Offsets,
        flush_timeout_seconds: float,
        released: Collection[tuple[str, int]] = (),
        *,
        paced: bool = False,
    ) -> CheckpointResult | None:
        """Make all work for offsets below ``next_offsets`` durable (see the module docstring).

        Returns the result when the checkpoint completed here, or None when its snapshot is
        being written in the background.  ``flush_timeout_seconds`` bounds step 1: generous
        while running, the remaining shutdown budget when stopping; step 3 gets what is left of
        it, and at most its own limit (``GROUP_COMMIT_TIMEOUT_SECONDS``).  ``paced`` writes a
        background snapshot in small chunks with pauses (``PACED_PAUSE_SECONDS``): for
        checkpoints taken while input is flowing, not for those someone waits on.
        """
        if self._pending is not None:
            raise RuntimeError("a checkpoint is in flight: finish it (poll_completed or wait) first")
        if self._failure is not None:
            raise RuntimeError(
                f"an earlier checkpoint failed ({self._failure}); only a restart, which replays from the "
                "last saved checkpoint, can save this state"
            )
        with self._failing_stops_checkpoints():
            return self._start(next_offsets, flush_timeout_seconds, released, paced)

    def _start(
        self,
        next_offsets: Offsets,
        flush_timeout_seconds: float,
        released: Collection[tuple[str, int]],
        paced: bool,
    ) -> CheckpointResult | None:
        started = time.monotonic()
        offsets = dict(next_offsets)
        self._crash.reach("before_flush")
        self._flush_producer(flush_timeout_seconds)
        self._crash.reach("after_flush")
        changes = self._table.take_changes()
        upserts, deletes = changes.upsert_count, len(changes.deletes)
        if self._writer is not None and upserts <= self._max_background_rows:
            detached = changes.detached(self._row_buffer)
            if paced:
                detached = StateChanges(
                    upserts=PacedRows(detached.upserts, PACED_CHUNK_ROWS, PACED_PAUSE_SECONDS),
                    deletes=detached.deletes,
                )
            future = self._writer.submit(self._snapshot, detached, offsets, tuple(released))
            self._pending = _Pending(future, offsets, upserts, deletes, started, flush_timeout_seconds)
            return None
        try:
            self._snapshot(changes, offsets, tuple(released))
        except BaseException:
            self._table.restore_changes(changes)
            raise
        return self._commit_group_step(offsets, upserts, deletes, started, flush_timeout_seconds)

    @contextlib.contextmanager
    def _failing_stops_checkpoints(self) -> Iterator[None]:
        """Any failure of steps 1-2 ends checkpointing for this process.

        After a failed flush some alerts were never delivered; after a failed background
        snapshot the rows it took are no longer marked dirty.  A later checkpoint would save
        offsets past work that is not durable, so the only way on is to exit and replay from
        the last saved checkpoint.  kafka-python calls the rebalance listener from
        ``consumer.close()`` too, so this also guards the shutdown of a failed loop.
        """
        try:
            yield
        except BaseException as exc:
            self._failure = f"{type(exc).__name__}: {exc}"
            raise

    @property
    def failed(self) -> bool:
        """Whether a checkpoint failed; no further one will be taken by this process."""
        return self._failure is not None

    def poll_completed(self) -> CheckpointResult | None:
        """Finish the background checkpoint if its snapshot is written; re-raise if it failed."""
        if self._pending is None or not self._pending.future.done():
            return None
        return self._finish(self._pending)

    def wait(self) -> CheckpointResult | None:
        """Finish the background checkpoint, if any, blocking until its snapshot is written."""
        return self._finish(self._pending) if self._pending is not None else None

    @property
    def in_flight(self) -> bool:
        """Whether a snapshot is being written."""
        return self._pending is not None

    def close(self) -> None:
        """Stop the writer thread (after ``wait``)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def _snapshot(
        self, changes: StateChanges, offsets: Offsets, released: tuple[tuple[str, int], ...]
    ) -> None:
        self._store.save_checkpoint(
            changes, offsets, released=released, midway=lambda: self._crash.reach("mid_snapshot")
        )
        self._crash.reach("after_snapshot")

    def _finish(self, pending: _Pending) -> CheckpointResult:
        self._pending = None
        # A failed snapshot propagates: the caller exits and the next start replays from the
        # previous checkpoint (the rows it took are no longer marked dirty in the table).
        with self._failing_stops_checkpoints():
            pending.future.result()
        return self._commit_group_step(
            pending.next_offsets, pending.upserts, pending.deletes, pending.started, pending.budget_seconds
        )

    def _commit_group_step(
        self, offsets: Offsets, upserts: int, deletes: int, started: float, budget_seconds: float
    ) -> CheckpointResult:
        refused = self._commit_group(offsets, budget_seconds - (time.monotonic() - started))
        self._crash.reach("after_commit")
        return CheckpointResult(
            upserts=upserts,
            deletes=deletes,
            partitions=len(offsets),
            seconds=time.monotonic() - started,
            group_commit_error=refused,
        )
