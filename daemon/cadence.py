"""When the daemon takes a checkpoint: by count, by time, and when the input runs dry.

Pure: the loop hands in the clock, the counts and whether the input was idle, so the rules are
tested without a broker or a sleeping test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

IDLE_CHECKPOINT_SECONDS = 1.0
"""Least time between two checkpoints taken because the input ran dry.

The first one after input flowed is not held back: the daemon has just caught up, so saving
costs no throughput, lag tools see it at once and a crash replays nothing.  Only the next ones
wait, so input that trickles in (a record, a quiet poll, a record) is saved once a second
rather than on every quiet poll."""

CheckpointReason = Literal["periodic", "caught_up", "rebalance", "shutdown"]


@dataclass
class CheckpointCadence:
    """Counts the work since the last checkpoint and says when the next one is due.

    ``every_events`` and ``interval_seconds`` come from ``state.checkpoint_every_events`` and
    ``state.checkpoint_interval_seconds``; ``now`` is any monotonic clock in seconds.
    """

    every_events: int
    interval_seconds: float
    last_taken: float
    idle_seconds: float = IDLE_CHECKPOINT_SECONDS
    events_since: int = 0
    dirty: bool = False
    last_was_caught_up: bool = False

    def record(self, records: int) -> None:
        """``records`` input records were processed (events and dead letters alike)."""
        self.events_since += records
        self.dirty = True

    def mark_dirty(self) -> None:
        """The state changed without input (sessions ended, partitions released)."""
        self.dirty = True

    def due(self, now: float, *, input_idle: bool, in_flight: bool) -> CheckpointReason | None:
        """Why a checkpoint is due now, or None.

        ``in_flight`` (a snapshot still being written) holds back only the caught-up checkpoint:
        the others wait for it, while an idle loop can simply look again on its next quiet poll.
        """
        if self.events_since >= self.every_events:
            return "periodic"
        if not self.dirty:
            return None
        since = now - self.last_taken
        if since >= self.interval_seconds:
            return "periodic"
        if not input_idle or in_flight:
            return None
        if not self.last_was_caught_up or since >= self.idle_seconds:
            return "caught_up"
        return None

    def taken(self, now: float, reason: CheckpointReason) -> None:
        """A checkpoint covering everything recorded so far was started at ``now``."""
        self.events_since = 0
        self.dirty = False
        self.last_taken = now
        self.last_was_caught_up = reason == "caught_up"
