"""kafka-python's poll waits instead of spinning while no broker answers (kafka_client/poll_spin.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kafka.util
from kafka_broker import FAST_CONSUMER_SETTINGS, LocalBroker

from logwarden.daemon.kafka_client.clients import POLL_SLICE_MS, build_consumer, poll_in_slices
from logwarden.daemon.kafka_client.poll_spin import floor_time_to_next_poll, round_timer_up, stop_poll_spins

FREEZE_S = 4.0


def _timer_class() -> type:
    """A subclass of kafka-python's Timer to change, leaving the process's own as the daemon sets it."""

    class Timer(kafka.util.Timer):  # type: ignore[misc]
        __slots__ = ()

    return Timer


def test_timer_with_less_than_a_millisecond_left_reports_one_not_zero() -> None:
    """kafka-python's Timer rounds the time left down: 0 ms while not expired, a wait of 0 ms, a spin."""
    timer_class = _timer_class()
    almost_over = timer_class(1, start_at=time.monotonic() - 0.0004)
    assert almost_over.timeout_ms == 0 and not almost_over.expired
    assert round_timer_up(timer_class) == ""
    assert almost_over.timeout_ms == 1
    assert timer_class(0, start_at=time.monotonic() - 1).timeout_ms == 0
    assert timer_class(None).timeout_ms is None
    assert 1_000 <= timer_class(1_000).timeout_ms <= 1_001


def test_rounding_the_timer_twice_changes_it_once() -> None:
    """The daemon may build several consumers; the process-wide change is made once."""
    timer_class = _timer_class()
    assert round_timer_up(timer_class) == "" and round_timer_up(timer_class) == ""
    assert timer_class(1, start_at=time.monotonic() - 0.0004).timeout_ms == 1


def test_a_timer_class_without_the_expected_fields_is_left_alone_with_a_reason() -> None:
    """Another kafka-python keeps its own timer; the daemon logs why."""

    class OtherTimer:
        @property
        def timeout_ms(self) -> int:
            return 0

    assert "Timer" in round_timer_up(OtherTimer)
    assert OtherTimer().timeout_ms == 0


def test_time_to_next_poll_never_below_the_floor_and_unchanged_above_it() -> None:
    """An overdue heartbeat (0 s to the next poll) no longer caps poll's waits at 0 ms."""
    left = {"seconds": 0.0}
    consumer = SimpleNamespace(_coordinator=SimpleNamespace(time_to_next_poll=lambda: left["seconds"]))
    assert floor_time_to_next_poll(consumer, 0.02) == ""
    assert consumer._coordinator.time_to_next_poll() == 0.02
    left["seconds"] = 2.5
    assert consumer._coordinator.time_to_next_poll() == 2.5


def test_a_consumer_without_a_coordinator_is_left_alone_with_a_reason() -> None:
    """Another kafka-python keeps its own poll; the daemon logs why."""
    assert "time_to_next_poll" in floor_time_to_next_poll(SimpleNamespace(), 0.02)


def test_a_consumer_polled_through_a_frozen_broker_waits_instead_of_spinning(tmp_path: Path) -> None:
    """With its broker frozen, a group member's heartbeat goes unanswered and kafka-python 3.0.12 capped
    every wait of ``poll`` at 0 ms: about 1,200 fetch waits a second on a core, each leaving a callback
    on the fetch in flight for 30 s (a consumer grew by 430 MB in 47 s).  Now each poll slice waits:
    at most a few fetch waits a slice, whatever the machine's speed."""
    broker = LocalBroker(tmp_path / "broker.log").start()
    consumer: Any = None
    try:
        broker.create_topics(["in"], partitions=2)
        settings = {
            key: value for key, value in FAST_CONSUMER_SETTINGS.items() if key != "enable_auto_commit"
        }
        consumer = build_consumer([broker.bootstrap], "g-spin", settings)
        assert stop_poll_spins(consumer, POLL_SLICE_MS) == ""
        consumer.subscribe(["in"])
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            poll_in_slices(consumer, 100)
        assert consumer.assignment(), "no assignment"
        fetch_records = consumer._fetcher.fetch_records
        waits = {"count": 0}

        def counted(*args: Any, **kwargs: Any) -> Any:
            waits["count"] += 1
            return fetch_records(*args, **kwargs)

        consumer._fetcher.fetch_records = counted
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            while time.monotonic() - started < FREEZE_S:
                poll_in_slices(consumer, 100)
            frozen_s = time.monotonic() - started
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        slices = frozen_s * 1000 / POLL_SLICE_MS
        assert waits["count"] <= 3 * slices, f"{waits['count']} fetch waits in {slices:.0f} poll slices"
    finally:
        if consumer is not None:
            consumer.close(autocommit=False, timeout_ms=2000)
        broker.stop()
