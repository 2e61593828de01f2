"""Stream time follows record timestamps per partition, never backwards, never far past this host's
clock, and runs on with wall time only where nothing is left to read."""

from __future__ import annotations

from logwarden.daemon.clock import MAX_AHEAD_OF_WALL_SECONDS, StreamClock

WALL = 1_700_000_000.0
A0, A1, B0 = ("a", 0), ("a", 1), ("b", 0)


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stream_time_follows_the_newest_record_of_each_partition_and_never_goes_back() -> None:
    """An older record after a newer one leaves partition 0 at the newer time; partition 1 keeps its own."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL - 100)
    clock.observe(A0, WALL - 200)
    clock.observe(A1, WALL - 500)
    assert clock.by_partition == {0: WALL - 100, 1: WALL - 500}
    assert clock.now == WALL - 100 and clock.clamped == 0


def test_a_partition_number_is_as_late_as_its_latest_topic() -> None:
    """Topic b read ahead of topic a must not end sessions whose next events are unread in a."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL - 300)
    clock.observe(B0, WALL - 10)
    assert clock.by_partition == {0: WALL - 300}


def test_a_timestamp_in_microseconds_does_not_move_stream_time_years_ahead() -> None:
    """A record stamped 1,000 times too large would make every entity look idle past any TTL."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL - 10)
    clock.observe(A0, WALL * 1000)
    assert clock.now == WALL + MAX_AHEAD_OF_WALL_SECONDS
    assert clock.clamped == 1


def test_historical_records_keep_their_own_time() -> None:
    """Replaying last year's logs expires entities by their gaps, not by today's date."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL - 365 * 86_400)
    assert clock.now == WALL - 365 * 86_400


def test_wall_time_passes_only_on_partitions_read_to_their_end() -> None:
    """After a restart the restored times wait for records; a partition with nothing unread runs on."""
    ticks = Ticks()
    clock = StreamClock({A0: 1000.0, A1: 2000.0}, wall_time=lambda: WALL, monotonic=ticks)
    ticks.now += 45.0  # e.g. the group join after a restart: no partition known to be caught up
    clock.advance([])
    assert clock.by_partition == {0: 1000.0, 1: 2000.0}
    ticks.now += 30.0
    clock.advance([A1])
    assert clock.by_partition == {0: 1000.0, 1: 2030.0}, "only the 30 s while A1 had nothing to read"


def test_a_caught_up_partition_does_not_take_another_partitions_skew() -> None:
    """A partition whose producers stamp an hour ahead does not drag the others with it."""
    ticks = Ticks()
    clock = StreamClock(wall_time=lambda: WALL, monotonic=ticks)
    clock.observe(A0, WALL)
    clock.observe(A1, WALL + 3000)
    ticks.now += 5.0
    clock.advance([A0, A1])
    assert clock.by_partition == {0: WALL + 5.0, 1: WALL + 3005.0}


def test_a_released_partition_starts_again_from_its_records() -> None:
    """A forgotten partition gains no wall time and starts again from its next record, even an earlier one."""
    ticks = Ticks()
    clock = StreamClock({A0: 1000.0}, wall_time=lambda: WALL, monotonic=ticks)
    clock.forget([A0])
    ticks.now += 300.0
    clock.advance([A0])
    assert clock.by_partition == {}
    clock.observe(A0, 900.0)
    assert clock.by_partition == {0: 900.0}
