"""When checkpoints fall due: by count, by time, and once the input runs dry."""

from __future__ import annotations

from logwarden.daemon.cadence import IDLE_CHECKPOINT_SECONDS, CheckpointCadence


def cadence(every_events: int = 1_000, interval_seconds: float = 5.0) -> CheckpointCadence:
    """A cadence whose last checkpoint was taken at 100.0 s, the time the tests count from."""
    return CheckpointCadence(every_events, interval_seconds, last_taken=100.0)


def test_cadence_nothing_processed_nothing_due() -> None:
    """Without new work no checkpoint is due, however long the wait and whether or not input flows."""
    plan = cadence()
    assert plan.due(1_000.0, input_idle=True, in_flight=False) is None
    assert plan.due(1_000.0, input_idle=False, in_flight=False) is None


def test_cadence_count_reached_due_at_once() -> None:
    """``every_events`` records since the last checkpoint make one due, even mid-flow and 0 s later."""
    plan = cadence(every_events=1_000)
    plan.record(999)
    assert plan.due(100.0, input_idle=False, in_flight=False) is None
    plan.record(1)
    assert plan.due(100.0, input_idle=False, in_flight=True) == "periodic"


def test_cadence_interval_elapsed_with_work_due_while_input_flows() -> None:
    """With input flowing, a checkpoint falls due once ``interval_seconds`` have passed."""
    plan = cadence(interval_seconds=5.0)
    plan.record(10)
    assert plan.due(104.9, input_idle=False, in_flight=False) is None
    assert plan.due(105.0, input_idle=False, in_flight=False) == "periodic"


def test_cadence_input_runs_dry_after_flow_caught_up_at_once() -> None:
    """The first quiet poll after input flowed saves at once, however recent the last checkpoint."""
    plan = cadence()
    plan.record(10)
    plan.taken(100.0, "periodic")
    plan.record(5)
    assert plan.due(100.01, input_idle=True, in_flight=False) == "caught_up"


def test_cadence_trickling_input_caught_up_at_most_once_a_second() -> None:
    """After a caught-up checkpoint, the next one for trickling input waits ``IDLE_CHECKPOINT_SECONDS``."""
    plan = cadence()
    plan.record(1)
    plan.taken(100.0, "caught_up")
    plan.record(1)
    assert plan.due(100.0 + IDLE_CHECKPOINT_SECONDS / 2, input_idle=True, in_flight=False) is None
    assert plan.due(100.0 + IDLE_CHECKPOINT_SECONDS, input_idle=True, in_flight=False) == "caught_up"


def test_cadence_short_interval_bounds_caught_up_wait() -> None:
    """An interval shorter than ``IDLE_CHECKPOINT_SECONDS`` bounds the wait after a caught-up save too."""
    plan = cadence(interval_seconds=0.2)
    plan.record(1)
    plan.taken(100.0, "caught_up")
    plan.record(1)
    assert plan.due(100.2, input_idle=True, in_flight=False) == "periodic"


def test_cadence_snapshot_in_flight_holds_back_caught_up_only() -> None:
    """A snapshot still being written delays the caught-up checkpoint, not one due by time."""
    plan = cadence(interval_seconds=5.0)
    plan.record(10)
    plan.taken(100.0, "periodic")
    plan.record(5)
    assert plan.due(100.5, input_idle=True, in_flight=True) is None
    assert plan.due(100.5, input_idle=True, in_flight=False) == "caught_up"
    assert plan.due(105.0, input_idle=True, in_flight=True) == "periodic"


def test_cadence_taken_resets_count_and_work() -> None:
    """A started checkpoint covers everything recorded so far: nothing is due until new work comes."""
    plan = cadence(every_events=10)
    plan.record(10)
    plan.taken(100.0, "periodic")
    assert plan.due(200.0, input_idle=True, in_flight=False) is None
    plan.mark_dirty()
    assert plan.due(100.0, input_idle=True, in_flight=False) == "caught_up"
