"""Stream time follows record timestamps per partition, never backwards, never far past this host's clock."""

from __future__ import annotations

from logwarden.daemon.clock import MAX_AHEAD_OF_WALL_SECONDS, StreamClock

WALL = 1_700_000_000.0


def test_stream_time_follows_the_newest_record_of_each_partition_and_never_goes_back() -> None:
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(0, WALL - 100)
    clock.observe(0, WALL - 200)
    clock.observe(1, WALL - 500)
    assert clock.by_partition == {0: WALL - 100, 1: WALL - 500}
    assert clock.now == WALL - 100 and clock.clamped == 0


def test_a_timestamp_in_microseconds_does_not_move_stream_time_years_ahead() -> None:
    """A record stamped 1,000 times too large would make every entity look idle past any TTL."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(0, WALL - 10)
    clock.observe(0, WALL * 1000)
    assert clock.now == WALL + MAX_AHEAD_OF_WALL_SECONDS
    assert clock.clamped == 1


def test_historical_records_keep_their_own_time() -> None:
    """Replaying last year's logs expires entities by their gaps, not by today's date."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(3, WALL - 365 * 86_400)
    assert clock.now == WALL - 365 * 86_400


def test_restored_clocks_resume_where_they_were_and_idle_time_moves_every_partition() -> None:
    clock = StreamClock({0: 100.0, 2: 50.0}, wall_time=lambda: WALL)
    clock._last_wall -= 5.0  # five seconds without records
    clock.idle()
    assert abs(clock.by_partition[0] - 105.0) < 0.5 and abs(clock.by_partition[2] - 55.0) < 0.5
