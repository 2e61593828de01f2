"""structlog set-up: JSON lines on stdout, one per notable event; journald does the rest.

Libraries that log through the standard ``logging`` module (kafka-python) are forwarded into
the same JSON stream, so a broker outage shows up in the daemon's own log instead of vanishing
into the library's ``NullHandler``; repeats of one message are collapsed into a count.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Collection, Mapping
from typing import TextIO

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# While a broker is down kafka-python repeats the same few messages more than once a second.
REPEAT_WINDOW_S = 60.0
_MAX_TRACKED_MESSAGES = 1000


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Render every log record as one JSON object per line with an ISO timestamp.

    The daemon logs to stdout (journald); the offline commands pass stderr so that their
    stdout stays pure JSON results.
    """
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


class RepeatSuppressor:
    """Decides which occurrences of a repeating message to show: the first, then one per window.

    Pure (the clock is passed in).  ``admit`` returns None to drop an occurrence, or how many
    occurrences were dropped since the last one shown, so nothing is hidden without a count.
    """

    def __init__(self, window_s: float = REPEAT_WINDOW_S, max_tracked: int = _MAX_TRACKED_MESSAGES) -> None:
        self._window_s = window_s
        self._max_tracked = max_tracked
        self._shown_at: dict[object, float] = {}
        self._dropped: dict[object, int] = {}

    def admit(self, key: object, now: float) -> int | None:
        """None to drop this occurrence of ``key``, else how many were dropped since it was last shown."""
        shown_at = self._shown_at.get(key)
        if shown_at is not None and now - shown_at < self._window_s:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return None
        if shown_at is None and len(self._shown_at) >= self._max_tracked:
            self._forget_expired(now)
        self._shown_at[key] = now
        return self._dropped.pop(key, 0)

    def _forget_expired(self, now: float) -> None:
        # Keys whose window is over: their next occurrence is shown anyway, only the count of
        # drops in between is lost, which is better than unbounded memory.
        for key, shown_at in list(self._shown_at.items()):
            if now - shown_at >= self._window_s:
                del self._shown_at[key]
                self._dropped.pop(key, None)
        if len(self._shown_at) >= self._max_tracked:
            self._shown_at.clear()
            self._dropped.clear()


class StructlogForwarder(logging.Handler):
    """A ``logging`` handler that re-emits library records as structlog JSON events.

    Each becomes ``{"event": EVENT, "logger": ..., "message": ..., "level": ...}`` plus
    ``repeated`` (occurrences of the same message collapsed since it was last shown).  Records
    below ``level`` are dropped, except those whose message format is in ``always_warn``: they
    are written at warning level at least.
    """

    EVENT = "library_log"

    def __init__(self, level: int = logging.WARNING, always_warn: Collection[str] = ()) -> None:
        super().__init__(min(level, logging.INFO) if always_warn else level)
        self.threshold = level
        self._always_warn = frozenset(always_warn)
        self._suppressor = RepeatSuppressor()
        self._log = structlog.get_logger("logwarden.library")

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` as a structlog event unless it is below the threshold or a recent repeat."""
        # logging.Handler.handle holds self.lock around emit, so kafka-python's network thread
        # and the main thread never race on the suppressor.
        try:
            levelno = record.levelno
            if isinstance(record.msg, str) and record.msg in self._always_warn:
                levelno = max(levelno, logging.WARNING)
            elif levelno < self.threshold:
                return
            repeated = self._suppressor.admit(
                (record.name, record.levelno, str(record.msg)), time.monotonic()
            )
            if repeated is None:
                return
            fields: dict[str, object] = {"logger": record.name, "message": record.getMessage()}
            if repeated:
                fields["repeated"] = repeated
            if record.exc_info and record.exc_info[1] is not None:
                fields["error"] = repr(record.exc_info[1])
            getattr(self._log, _structlog_method(levelno))(self.EVENT, **fields)
        except Exception:  # a log line must never take the daemon down
            self.handleError(record)


def _structlog_method(levelno: int) -> str:
    """structlog's method for a stdlib level (CRITICAL is logged as error)."""
    for threshold, name in ((logging.ERROR, "error"), (logging.WARNING, "warning"), (logging.INFO, "info")):
        if levelno >= threshold:
            return name
    return "debug"


def forward_library_logs(
    logger_name: str, level: str = "warning", always_warn: Mapping[str, Collection[str]] | None = None
) -> StructlogForwarder:
    """Send ``logger_name``'s records at ``level`` and above into the JSON log; returns the handler.

    ``always_warn`` maps loggers under ``logger_name`` to message formats (the ``msg`` before
    ``%`` arguments) that are written as warnings whatever ``level`` says: a library may log at
    INFO what an operator must see.  Installed once per process (a second call replaces the
    first handler), not propagated to the root logger, so nothing is printed twice.
    """
    always_warn = always_warn or {}
    library_logger = logging.getLogger(logger_name)
    for handler in list(library_logger.handlers):
        if isinstance(handler, StructlogForwarder):
            library_logger.removeHandler(handler)
    threshold = _LEVELS.get(level, logging.WARNING)
    handler = StructlogForwarder(
        threshold, [message for messages in always_warn.values() for message in messages]
    )
    library_logger.addHandler(handler)
    library_logger.setLevel(threshold)
    library_logger.propagate = False
    for child in always_warn:
        # Only these loggers create their INFO records; the rest of the library stays at ``level``.
        logging.getLogger(child).setLevel(min(threshold, logging.INFO))
    return handler
