"""A checkpoint that fails stops all further checkpoints of the process; a refused group commit does not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from logwarden.daemon.checkpoint import Checkpointer
from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.state.memory_store import MemoryStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.daemon.state.table import EntityStateTable
from logwarden.errors import DeliveryError, StateStoreError

L, H = 2, 4


class DiskFullOnce(MemoryStateStore):
    """A store whose first save fails, as SQLite does when the disk is full; later saves pass."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    def save_checkpoint(self, *args: Any, **kwargs: Any) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise StateStoreError("checkpoint not saved: database or disk is full")
        super().save_checkpoint(*args, **kwargs)


def table_with(entities: list[str]) -> EntityStateTable:
    """A table holding ``entities``, one event applied to each, so a checkpoint has rows to save."""
    table = EntityStateTable(L, H, 100, np.zeros((L, H), np.float32), np.zeros((L, H), np.float32))
    slots = table.slots_for(entities, 1.0, 0)
    table.write(
        slots, np.ones((L, len(entities), H), np.float32), np.ones((L, len(entities), H), np.float32), 1.0
    )
    return table


def checkpointer(
    table: EntityStateTable,
    store: MemoryStateStore,
    *,
    flush: Any = None,
    commit: Any = None,
    background: bool,
) -> Checkpointer:
    """A Checkpointer over ``table`` and ``store`` whose flush and group commit succeed unless given."""
    return Checkpointer(
        flush_producer=flush or (lambda timeout: None),
        store=store,
        table=table,
        commit_group=commit or (lambda offsets, budget: None),
        crash_points=CrashPoints(None),
        background=background,
    )


def open_store(store: MemoryStateStore) -> MemoryStateStore:
    """``store`` opened with this module's model header, ready for a checkpoint."""
    store.open(StoreHeader("sha", L, H))
    return store


def test_failed_background_snapshot_refuses_every_later_checkpoint() -> None:
    """The rows a failed snapshot took are no longer dirty: a later save would skip them, so none is taken."""
    table = table_with(["job_1", "job_2"])
    store = open_store(DiskFullOnce())
    saver = checkpointer(table, store, background=True)
    assert saver.start({("in", 0): 2}, 5.0) is None
    with pytest.raises(StateStoreError, match="disk is full"):
        saver.wait()
    assert saver.failed
    table.write(
        table.slots_for(["job_3"], 2.0, 0),
        np.ones((L, 1, H), np.float32),
        np.ones((L, 1, H), np.float32),
        2.0,
    )
    with pytest.raises(RuntimeError, match="an earlier checkpoint failed"):
        saver.start({("in", 0): 3}, 5.0)
    saver.close()
    assert store.load()[1] == {}, "nothing was saved: the next start replays from the last checkpoint"


def test_failed_flush_refuses_a_later_checkpoint_even_when_the_producer_recovers() -> None:
    """Alerts of a failed flush may be lost: the next checkpoint is refused without flushing, none saved."""
    flushes: list[float] = []

    def flush(timeout: float) -> None:
        flushes.append(timeout)
        if len(flushes) == 1:
            raise DeliveryError("1 records were not delivered")

    table = table_with(["job_1"])
    store = open_store(MemoryStateStore())
    saver = checkpointer(table, store, flush=flush, background=False)
    with pytest.raises(DeliveryError):
        saver.start({("in", 0): 1}, 5.0)
    with pytest.raises(RuntimeError, match="DeliveryError"):
        saver.start({("in", 0): 1}, 5.0)
    assert len(flushes) == 1 and store.load()[1] == {}


def test_group_commit_refused_is_reported_and_the_checkpoint_stands() -> None:
    """A group refusing step 3 is reported in the result; the local save stands and the next one is taken."""
    table = table_with(["job_1"])
    store = open_store(MemoryStateStore())
    saver = checkpointer(
        table, store, commit=lambda offsets, budget: "RebalanceInProgressError: [Error 27]", background=False
    )
    result = saver.start({("in", 0): 1}, 5.0)
    assert result is not None and result.group_commit_error == "RebalanceInProgressError: [Error 27]"
    assert not saver.failed and store.load()[1] == {("in", 0): 1}
    assert saver.start({("in", 0): 1}, 5.0) is not None, "the next checkpoint is taken as usual"
