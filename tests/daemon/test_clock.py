"""Stream time follows record timestamps per partition, never backwards, never past this host's clock,
and runs on with wall time only where nothing is left to read."""

from __future__ import annotations

from manual_clock import ManualClock

from logwarden.daemon.clock import StreamClock

WALL = 1_700_000_000.0
A0, A1, B0 = ("a", 0), ("a", 1), ("b", 0)


def test_stream_time_follows_the_newest_record_of_each_partition_and_never_goes_back() -> None:
    """An older record after a newer one leaves partition 0 at the newer time; partition 1 keeps its own."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL - 100)
    clock.observe(A0, WALL - 200)
    clock.observe(A1, WALL - 500)
    assert clock.by_source == {A0: WALL - 100, A1: WALL - 500}
    assert clock.now == WALL - 100


def test_each_topic_of_a_partition_number_keeps_its_own_time() -> None:
    """Topic b read ahead of topic a moves only b/0's time: an entity of a/0 is judged by a/0's."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL - 300)
    clock.observe(B0, WALL - 10)
    assert clock.by_source == {A0: WALL - 300, B0: WALL - 10}


def test_a_timestamp_in_microseconds_does_not_move_stream_time_past_the_wall() -> None:
    """A record stamped 1,000 times too large would make every entity look idle past any TTL."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL - 10)
    clock.observe(A0, WALL * 1000)
    assert clock.now == WALL


def test_a_record_ahead_of_the_wall_by_less_than_the_limit_stops_at_the_wall() -> None:
    """Clock skew of minutes is no fault of the record; stream time still waits for the wall."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL + 600)
    assert clock.now == WALL


def test_a_time_restored_ahead_of_the_wall_starts_at_the_wall() -> None:
    """After a restart a partition resumes at its entities' latest event time, which may be ahead."""
    clock = StreamClock({A0: WALL + 3000, A1: WALL - 50}, wall_time=lambda: WALL)
    assert clock.by_source == {A0: WALL, A1: WALL - 50}


def test_historical_records_keep_their_own_time() -> None:
    """Replaying last year's logs expires entities by their gaps, not by today's date."""
    clock = StreamClock(wall_time=lambda: WALL)
    clock.observe(A0, WALL - 365 * 86_400)
    assert clock.now == WALL - 365 * 86_400


def test_wall_time_passes_only_on_partitions_read_to_their_end() -> None:
    """After a restart the restored times wait for records; a partition with nothing unread runs on."""
    ticks = ManualClock(100.0)
    clock = StreamClock({A0: 1000.0, A1: 2000.0}, wall_time=lambda: WALL, monotonic=ticks)
    ticks.now += 45.0  # e.g. the group join after a restart: no partition known to be caught up
    clock.advance({})
    assert clock.by_source == {A0: 1000.0, A1: 2000.0}
    ticks.now += 30.0
    clock.advance({A1: ticks.now})
    # The stop's length is unknown (a backfill's last record may be stamped years back): only the
    # time since the start passes.
    assert clock.by_source == {A0: 1000.0, A1: 2030.0}, "only the 30 s while A1 had nothing to read"


class Wall:
    """This host's clock, moved by the test together with a ``ManualClock``."""

    def __init__(self, ticks: ManualClock) -> None:
        self._ticks = ticks

    def __call__(self) -> float:
        return WALL + self._ticks.now


def test_a_caught_up_partition_runs_on_with_the_wall_but_never_past_it() -> None:
    """A partition behind the wall gains the wall time that passes; one whose producers stamp ahead waits."""
    ticks = ManualClock(100.0)
    wall = Wall(ticks)
    clock = StreamClock(wall_time=wall, monotonic=ticks)
    clock.observe(A0, wall() - 10)
    clock.observe(A1, wall() + 3000)
    assert clock.by_source == {A0: wall() - 10, A1: wall()}
    ticks.now += 5.0
    clock.advance({A0: ticks.now, A1: ticks.now})
    assert clock.by_source == {A0: wall() - 10, A1: wall()}
    clock.observe(A0, wall() - 20)  # an older record moves nothing
    ticks.now += 60.0
    clock.advance({A0: ticks.now, A1: ticks.now})
    assert clock.by_source == {A0: wall() - 10, A1: wall()}


def test_a_released_partition_starts_again_from_its_records() -> None:
    """A forgotten partition gains no wall time and starts again from its next record, even an earlier one."""
    ticks = ManualClock(100.0)
    clock = StreamClock({A0: 1000.0}, wall_time=lambda: WALL, monotonic=ticks)
    clock.forget([A0])
    ticks.now += 300.0
    clock.advance({A0: ticks.now})
    assert clock.by_source == {}
    clock.observe(A0, 900.0)
    assert clock.by_source == {A0: 900.0}


def test_a_caught_up_partition_gains_time_only_up_to_its_last_answered_fetch() -> None:
    """Read to its end as of a fetch answered at 130: time after it is not known to be quiet yet."""
    ticks = ManualClock(100.0)
    clock = StreamClock(wall_time=lambda: WALL, monotonic=ticks)
    clock.observe(A0, WALL - 100)
    ticks.now = 160.0
    clock.advance({A0: 130.0})
    assert clock.by_source == {A0: WALL - 70}
    ticks.now = 170.0
    clock.advance({A0: 130.0})
    assert clock.by_source == {A0: WALL - 70}, "no later answer, no more time"
    clock.advance({A0: 169.0})
    assert clock.by_source == {A0: WALL - 31}


def test_time_while_a_partition_had_records_unread_is_never_passed_on() -> None:
    """Records came during a minute (the answers showed a higher watermark): that minute's time comes
    from their timestamps, so once read to its end again only the time after the last sweep passes."""
    ticks = ManualClock(100.0)
    clock = StreamClock(wall_time=lambda: WALL, monotonic=ticks)
    clock.observe(A0, WALL - 100)
    ticks.now = 101.0
    clock.advance({A0: 101.0})
    for second in range(102, 162):
        ticks.now = float(second)
        clock.advance({})
    ticks.now = 162.5
    clock.advance({A0: 162.0})
    assert clock.by_source == {A0: WALL - 100 + 1 + 1}


def test_time_after_a_stale_answer_passes_once_a_later_answer_shows_nothing_was_written() -> None:
    """Brokers out of reach (or the loop busy) for a minute, the partition read to its end as of 101:
    no time passes meanwhile; an answer at 162 with the same watermark shows the minute was quiet."""
    ticks = ManualClock(100.0)
    clock = StreamClock(wall_time=lambda: WALL, monotonic=ticks)
    clock.observe(A0, WALL - 100)
    for second in range(101, 162):
        ticks.now = float(second)
        clock.advance({A0: 101.0})
        assert clock.by_source == {A0: WALL - 99}
    ticks.now = 162.5
    clock.advance({A0: 162.0})
    assert clock.by_source == {A0: WALL - 100 + 62}


def test_records_after_the_host_clock_is_stepped_back_keep_their_own_time() -> None:
    """A wall clock stepped back by hours must not cut honest records back to it: their entities would
    look idle past the TTL against the stream time reached before the step, and every session would end."""
    wall = ManualClock(WALL)
    clock = StreamClock(wall_time=wall)
    clock.observe(A0, WALL - 1)
    wall.now = WALL - 3 * 3600  # NTP or an operator steps the host clock back three hours
    assert clock.limit() >= WALL, "a record stamped just after the stream time is no future timestamp"
    clock.observe(A0, WALL + 5)
    assert clock.clamped == 0
    assert clock.now == WALL - 1, "stream time neither goes back nor runs ahead of a record it was shown"
