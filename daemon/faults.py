"""Crash instrumentation for the crash-consistency tests: SIGKILL at a named point.

Off unless ``LOGWARDEN_CRASH_AT=point:n`` is set, in which case the process kills itself
(SIGKILL, nothing flushed, like a power cut of the process) the n-th time it reaches
``point``.  The points are the steps of the checkpoint order (see checkpoint.py) and
``batch`` (after a batch is scored, before any checkpoint).
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "LOGWARDEN_CRASH_AT"


class CrashPoints:
    """Counts visits to named points and kills the process at the configured one."""

    def __init__(self, spec: str | None) -> None:
        self._point: str | None = None
        self._remaining = 0
        if spec:
            point, _, count = spec.partition(":")
            self._point = point
            self._remaining = int(count or "1")

    @classmethod
    def from_environment(cls) -> CrashPoints:
        """Crash points as ``LOGWARDEN_CRASH_AT`` sets them; none when it is unset."""
        return cls(os.environ.get(CRASH_ENV))

    def reach(self, point: str) -> None:
        """Mark a visit to ``point``; kill the process if this is the configured visit."""
        if point != self._point:
            return
        self._remaining -= 1
        if self._remaining <= 0:
            os.kill(os.getpid(), signal.SIGKILL)
