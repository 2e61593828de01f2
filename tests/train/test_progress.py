"""Progress lines of long training steps: one per interval, none in a short run."""

from __future__ import annotations

import pytest
import structlog
from manual_clock import ManualClock

from logwarden.train import mining
from logwarden.train.mining import mine_templates
from logwarden.train.progress import Progress


def test_progress_logs_once_per_interval_with_the_counts_given() -> None:
    """Ticks inside the interval log nothing; the first past it logs the counts and the time so far."""
    clock = ManualClock()
    progress = Progress("mining_progress", interval_seconds=30.0, clock=clock)
    with structlog.testing.capture_logs() as logs:
        clock.now = 29.9
        assert not progress.tick(lines=10)
        clock.now = 30.0
        assert progress.tick(lines=20)
        clock.now = 59.0
        assert not progress.tick(lines=30)
        clock.now = 61.5
        assert progress.tick(lines=40)
    assert [(log["event"], log["lines"], log["seconds"]) for log in logs] == [
        ("mining_progress", 20, 30.0),
        ("mining_progress", 40, 61.5),
    ]


def test_mining_reports_progress_on_a_long_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mining checks the clock every PROGRESS_CHECK_LINES lines and logs lines and templates so far."""
    clock = ManualClock()

    def slow_progress(event: str) -> Progress:
        return Progress(event, interval_seconds=1.0, clock=clock)

    def lines() -> object:
        for n in range(3 * 4096):
            clock.now = n * 0.001  # 4 s per 4,096 lines
            yield f"job <*> step {n % 3}" if n % 2 else "job <*> started"

    monkeypatch.setattr(mining, "Progress", slow_progress)
    with structlog.testing.capture_logs() as logs:
        mined = mine_templates(lines())  # type: ignore[arg-type]
    progress = [log for log in logs if log["event"] == "mining_progress"]
    assert [log["lines"] for log in progress] == [4096, 8192, 12288]
    assert progress[-1]["templates"] == len(mined.templates) == 2


def test_a_short_mining_run_logs_no_progress() -> None:
    """Thousands of lines mined in well under the interval add no line to the log."""
    with structlog.testing.capture_logs() as logs:
        mine_templates(f"job <*> step {n % 5}" for n in range(10_000))
    assert not [log for log in logs if log["event"] == "mining_progress"]
