"""What the daemon reports with each checkpoint: the ``checkpoint`` line, the warnings due, systemd's status.

Why with the checkpoint: conditions that arise per record (a dead letter, an evicted entity, a
timestamp far in the future) are counted as they happen and logged once per save, so a flood of bad
input costs one line per checkpoint interval, never one per record.  A save completes after the
loop has moved on (its snapshot is written in the background), so the totals it reports are the
ones taken when it started.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

import structlog

from logwarden.daemon.cadence import CheckpointReason
from logwarden.daemon.checkpoint import CheckpointResult
from logwarden.daemon.clock import MAX_AHEAD_OF_WALL_SECONDS, StreamClock
from logwarden.daemon.decode import MessageDecoder
from logwarden.daemon.state.table import EntityStateTable
from logwarden.daemon.systemd import SystemdNotifier, checkpoint_status

log = structlog.get_logger("logwarden.daemon")


class CheckpointLog:
    """Counts what is to be reported and reports it when a checkpoint completes."""

    def __init__(
        self,
        table: EntityStateTable,
        clock: StreamClock,
        notifier: SystemdNotifier,
        dead_letter_topic: str,
        totals: Mapping[str, int],
        decoder: MessageDecoder | None = None,
    ) -> None:
        """``table``, ``clock`` and ``decoder`` are read for their running counts of evictions, clamped
        batches and unreadable event times."""
        self._table = table
        self._clock = clock
        self._decoder = decoder
        self._unreadable_times_logged = 0
        self._notifier = notifier
        self._dead_letter_topic = dead_letter_topic
        self._evicted_logged = 0
        self._clamped_logged = 0
        self._past_logged = 0
        self._bad_unlogged: Counter[str] = Counter()
        self._reason: CheckpointReason = "periodic"
        self._totals = dict(totals)

    def bad_input(self, dead_letters_by_reason: Mapping[str, int]) -> None:
        """Count dead letters by reason, for the next ``bad_input`` warning."""
        self._bad_unlogged.update(dead_letters_by_reason)

    def started(self, reason: CheckpointReason, totals: Mapping[str, int]) -> None:
        """A checkpoint began, covering ``totals``: what its line will report once it completes."""
        self._reason = reason
        self._totals = dict(totals)

    def finished(self, result: CheckpointResult, checkpoints: int) -> None:
        """Log the ``checkpoints``-th completed checkpoint and the warnings due since the last one.

        Also updates systemd's status line.
        """
        if result.group_commit_error is not None:
            log.warning(
                "group_commit_refused",
                error=result.group_commit_error,
                note="the local checkpoint stands; the next save or a retry commits it again",
            )
        if self._clock.clamped > self._clamped_logged:
            log.warning(
                "future_timestamps",
                batches=self._clock.clamped - self._clamped_logged,
                max_ahead_seconds=MAX_AHEAD_OF_WALL_SECONDS,
                note="record timestamps far ahead of this host's clock did not move stream time past it",
            )
            self._clamped_logged = self._clock.clamped
        if self._clock.stamped_in_the_past > self._past_logged:
            log.warning(
                "past_timestamps",
                batches=self._clock.stamped_in_the_past - self._past_logged,
                note="record timestamps before 1973 (0, or seconds sent as milliseconds) were taken as "
                "none: those events took their partition's time",
            )
            self._past_logged = self._clock.stamped_in_the_past
        self._log_unreadable_event_times()
        evicted = self._table.evicted_total
        if evicted > self._evicted_logged:
            log.warning(
                "entities_evicted", evicted=evicted - self._evicted_logged, max_entities=self._table.capacity
            )
            self._evicted_logged = evicted
        if self._bad_unlogged:
            log.warning(
                "bad_input",
                dead_letters=dict(self._bad_unlogged),
                dead_letter_topic=self._dead_letter_topic,
            )
            self._bad_unlogged.clear()
        log.info(
            "checkpoint",
            reason=self._reason,
            upserts=result.upserts,
            deletes=result.deletes,
            partitions=result.partitions,
            seconds=round(result.seconds, 4),
            entities=len(self._table),
            # The totals this checkpoint covers, as they were when it was taken.
            **{**self._totals, "checkpoints": checkpoints},
        )
        self._notifier.status(
            checkpoint_status(
                entities=len(self._table),
                totals=self._totals,
                saved_at=time.strftime("%H:%M:%S"),
                reason=self._reason,
            )
        )

    def _log_unreadable_event_times(self) -> None:
        decoder = self._decoder
        if decoder is None or decoder.unreadable_event_times <= self._unreadable_times_logged:
            return
        log.warning(
            "unreadable_event_times",
            events=decoder.unreadable_event_times - self._unreadable_times_logged,
            latest=decoder.last_unreadable_event_time,
            note="input.json.timestamp_field was missing or unreadable: those events were scored, and "
            "their alerts carry event_time null",
        )
        self._unreadable_times_logged = decoder.unreadable_event_times
