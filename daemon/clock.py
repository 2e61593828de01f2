"""Stream time: the daemon's notion of "now" for idle TTLs and least-recently-seen eviction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

MAX_AHEAD_OF_WALL_SECONDS = 3600.0
"""How far ahead of this host's clock a record timestamp may move stream time.

One record stamped in microseconds where milliseconds were meant (or by a producer whose clock is
decades off) would otherwise move stream time years ahead: every tracked entity would look idle
past its TTL and be ended at once, and since stream time never goes back, expiry would stay
broken until real time caught up.  An hour covers any honest clock skew."""


class StreamClock:
    """Per partition number, the newest record timestamp seen, advanced by wall time while idle.

    Record time rather than wall time makes a replay after a restart see the same idle gaps as
    the first run, and lets historical data expire entities as it did live.  One clock per
    partition because partitions are read unevenly (a backlog of one is read ahead of another):
    with a single clock, how far one partition had been read would decide whether an entity of
    another had been idle, and a replay that reads them in another order would end other sessions.
    """

    def __init__(
        self, start: Mapping[int, float] | None = None, wall_time: Callable[[], float] = time.time
    ) -> None:
        self.by_partition: dict[int, float] = dict(start or {})
        self._last_wall = time.monotonic()
        self._wall_time = wall_time
        self.clamped = 0
        """How many observed times were cut back to ``MAX_AHEAD_OF_WALL_SECONDS`` past the wall clock."""

    @property
    def now(self) -> float:
        """The newest time of any partition (0.0 before any record): for records that carry none."""
        return max(self.by_partition.values(), default=0.0)

    def limit(self) -> float:
        """The latest time a record may claim: ``MAX_AHEAD_OF_WALL_SECONDS`` past the wall clock."""
        return self._wall_time() + MAX_AHEAD_OF_WALL_SECONDS

    def observe(self, partition: int, record_time: float) -> None:
        """Move ``partition`` forward to a record's timestamp (seconds); never back, never far ahead."""
        self._last_wall = time.monotonic()
        limit = self.limit()
        if record_time > limit:
            self.clamped += 1
            record_time = limit
        if record_time > self.by_partition.get(partition, float("-inf")):
            self.by_partition[partition] = record_time

    def follow(self, caught_up: Iterable[int]) -> None:
        """Bring partitions that have no unread records up to the newest time of any partition.

        A partition read to its end can only receive records produced from now on, stamped about
        now; without this, the entities of a partition whose producers went quiet would never
        expire while the other partitions flow.
        """
        newest = self.now
        for partition in caught_up:
            if newest > self.by_partition.get(partition, float("-inf")):
                self.by_partition[partition] = newest

    def idle(self) -> None:
        """No records arrived: let wall time pass on every partition so quiet entities still expire."""
        wall = time.monotonic()
        elapsed = wall - self._last_wall
        self._last_wall = wall
        for partition in self.by_partition:
            self.by_partition[partition] += elapsed
