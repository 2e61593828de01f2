"""Library log forwarding: kafka-python's messages reach the JSON log, repeats collapse into counts."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from logwarden.logs import RepeatSuppressor, configure_logging, forward_library_logs

WINDOW_S = 60.0
LIBRARY = "logwarden-test-library"


def test_repeat_suppressor_shows_first_occurrence_with_nothing_dropped() -> None:
    """A message's first occurrence is admitted with a dropped count of 0, not None (which means drop it)."""
    assert RepeatSuppressor(WINDOW_S).admit("refused", now=0.0) == 0


def test_repeat_suppressor_drops_repeats_inside_the_window() -> None:
    """Repeats 1 s, 30 s and 59.9 s after the shown occurrence, inside the 60 s window, are dropped."""
    suppressor = RepeatSuppressor(WINDOW_S)
    suppressor.admit("refused", now=0.0)
    assert [suppressor.admit("refused", now=t) for t in (1.0, 30.0, 59.9)] == [None, None, None]


def test_repeat_suppressor_shows_again_after_the_window_with_the_dropped_count() -> None:
    """The repeat at 60 s is shown with the 3 drops before it; the count then restarts for the next window."""
    suppressor = RepeatSuppressor(WINDOW_S)
    suppressor.admit("refused", now=0.0)
    for t in (1.0, 2.0, 3.0):
        suppressor.admit("refused", now=t)
    assert suppressor.admit("refused", now=60.0) == 3
    assert suppressor.admit("refused", now=61.0) is None
    assert suppressor.admit("refused", now=120.0) == 1


def test_repeat_suppressor_tracks_each_message_separately() -> None:
    """Another message inside the window is shown at once: each message has its own window."""
    suppressor = RepeatSuppressor(WINDOW_S)
    assert suppressor.admit("refused", now=0.0) == 0
    assert suppressor.admit("coordinator dead", now=1.0) == 0
    assert suppressor.admit("refused", now=2.0) is None


def test_repeat_suppressor_memory_is_bounded_by_max_tracked() -> None:
    """1000 distinct messages inside one window are all shown, yet at most ``max_tracked`` (10) are kept."""
    suppressor = RepeatSuppressor(WINDOW_S, max_tracked=10)
    for n in range(1000):
        assert suppressor.admit(f"message {n}", now=float(n) / 1000) == 0
    assert len(suppressor._shown_at) <= 10


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Logs written as JSON into a fresh buffer; the test library's logger and structlog are reset after."""
    stream = io.StringIO()
    configure_logging("debug", stream)
    yield stream
    library_logger = logging.getLogger(LIBRARY)
    for handler in list(library_logger.handlers):
        library_logger.removeHandler(handler)
    library_logger.propagate = True
    library_logger.setLevel(logging.NOTSET)
    structlog.reset_defaults()


def lines_of(stream: io.StringIO) -> list[dict[str, object]]:
    """The JSON objects written to ``stream``, one per line, so tests can assert on their fields."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_forwarded_library_error_is_one_json_line_naming_logger_and_message(json_log: io.StringIO) -> None:
    """A child logger's ERROR is one ``library_log`` line: level, logger, formatted message, no count."""
    forward_library_logs(LIBRARY, "warning")
    logging.getLogger(f"{LIBRARY}.net").error("Connection failed: %s", "111 ECONNREFUSED")
    [line] = lines_of(json_log)
    assert line["event"] == "library_log" and line["level"] == "error"
    assert line["logger"] == f"{LIBRARY}.net"
    assert line["message"] == "Connection failed: 111 ECONNREFUSED"
    assert "repeated" not in line


def test_forwarded_library_logs_below_the_level_are_not_written(json_log: io.StringIO) -> None:
    """INFO and DEBUG records, below the forwarding level ``warning``, write nothing."""
    forward_library_logs(LIBRARY, "warning")
    logging.getLogger(LIBRARY).info("Initializing connection")
    logging.getLogger(LIBRARY).debug("sending request")
    assert lines_of(json_log) == []


def test_forwarded_repeats_of_one_message_are_written_once(json_log: io.StringIO) -> None:
    """50 warnings of one format string with different arguments write only the first; another still shows."""
    forward_library_logs(LIBRARY, "warning")
    for port in range(50):  # the same format string with different arguments is one message
        logging.getLogger(LIBRARY).warning("Bootstrap %s not ready", port)
    logging.getLogger(LIBRARY).warning("Marking the coordinator dead")
    assert [line["message"] for line in lines_of(json_log)] == [
        "Bootstrap 0 not ready",
        "Marking the coordinator dead",
    ]


def test_forwarding_twice_installs_one_handler_and_does_not_propagate(json_log: io.StringIO) -> None:
    """Forwarding again at ``error`` keeps one handler, no propagation (no duplicates), and the new level."""
    forward_library_logs(LIBRARY, "warning")
    forward_library_logs(LIBRARY, "error")
    library_logger = logging.getLogger(LIBRARY)
    assert len(library_logger.handlers) == 1 and not library_logger.propagate
    library_logger.warning("below error now")
    library_logger.error("shown")
    assert [line["message"] for line in lines_of(json_log)] == ["shown"]


def test_a_message_marked_always_warn_is_written_as_a_warning_below_the_level(json_log: io.StringIO) -> None:
    """An INFO message an operator must see is a warning; other INFO messages stay hidden."""
    child = f"{LIBRARY}.consumer.fetcher"
    always = "Fetch offset %s is out of range for topic-partition %s"
    try:
        forward_library_logs(LIBRARY, "warning", {child: (always,)})
        logging.getLogger(child).info(always, 5000, "logs-0")
        logging.getLogger(child).info("Resetting offset for partition %s to offset %s.", "logs-0", 0)
        logging.getLogger(LIBRARY).info(always, 1, "other logger, same text")
        [line] = lines_of(json_log)
    finally:
        logging.getLogger(child).setLevel(logging.NOTSET)
    assert line["level"] == "warning" and line["logger"] == child
    assert line["message"] == "Fetch offset 5000 is out of range for topic-partition logs-0"
