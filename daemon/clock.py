"""Stream time: the daemon's notion of "now" for idle TTLs and least-recently-seen eviction."""

from __future__ import annotations

import time


class StreamClock:
    """Newest record timestamp seen, advanced by wall time while the input is idle.

    Using record time rather than wall time makes a replay after a restart see the same
    idle gaps as the first run, and lets historical data expire entities as it did live.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._last_wall = time.monotonic()

    def observe(self, record_time: float) -> None:
        """Move forward to a record's timestamp (seconds); never backwards."""
        self._last_wall = time.monotonic()
        if record_time > self.now:
            self.now = record_time

    def idle(self) -> None:
        """No records arrived: let wall time pass so quiet entities still expire."""
        wall = time.monotonic()
        self.now += wall - self._last_wall
        self._last_wall = wall
