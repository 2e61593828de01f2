"""A log line now and then while a long training step runs: mining millions of lines or one long epoch.

Without it, training a large log prints nothing between ``logs_mined``'s start and the first epoch's
line for many minutes, and an operator cannot tell a slow run from a stuck one.  A short run (every
test, the demo, HDFS) logs nothing extra: the first line comes only after ``interval_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

logger = structlog.get_logger(__name__)

PROGRESS_INTERVAL_SECONDS = 30.0


class Progress:
    """``tick`` logs ``event`` with the counts given, at most once per ``interval_seconds``."""

    def __init__(
        self,
        event: str,
        interval_seconds: float = PROGRESS_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._event = event
        self._interval = interval_seconds
        self._clock = clock
        self._started = clock()
        self._last = self._started

    def tick(self, **counts: object) -> bool:
        """Log the counts if ``interval_seconds`` passed since the last line; whether it did."""
        now = self._clock()
        if now - self._last < self._interval:
            return False
        self._last = now
        logger.info(self._event, seconds=round(now - self._started, 1), **counts)
        return True
