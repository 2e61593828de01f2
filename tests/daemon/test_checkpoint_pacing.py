"""A background checkpoint leaves the cores to the event loop (small paced chunks, a lower-priority
thread) and writes exactly what a plain one writes."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from logwarden.daemon.checkpoint import SNAPSHOT_THREAD_NICENESS, Checkpointer, PacedRows
from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.state.memory_store import MemoryStateStore
from logwarden.daemon.state.sqlite_store import SqliteStateStore
from logwarden.daemon.state.store import EntityRows, StateStore, StoreHeader
from logwarden.daemon.state.table import EntityStateTable
from logwarden.daemon.thread_priority import MAX_NICE

L, H = 2, 4
ENTITIES = [f"job_{n}" for n in range(2_500)]


def filled_table() -> EntityStateTable:
    """A table of 2,500 entities with distinct states: enough rows for several paced chunks."""
    table = EntityStateTable(L, H, 5_000, np.zeros((L, H), np.float32), np.zeros((L, H), np.float32))
    slots = table.slots_for(ENTITIES, 1.0, 0)
    values = np.arange(L * len(ENTITIES) * H, dtype=np.float32).reshape(L, len(ENTITIES), H)
    table.write(slots, values, -values, 2.0)
    return table


def background_checkpointer(
    table: EntityStateTable,
    store: StateStore,
    commit_group: Callable[[dict, float], None] = lambda offsets, budget: None,
) -> Checkpointer:
    """A Checkpointer writing snapshots on its writer thread, with nothing to flush."""
    return Checkpointer(
        flush_producer=lambda timeout: None,
        store=store,
        table=table,
        commit_group=commit_group,
        crash_points=CrashPoints(None),
        background=True,
    )


def saved_state(store: StateStore) -> dict[str, tuple[list[float], list[float]]]:
    """Each saved entity's h and c as lists, to compare what two checkpoints wrote."""
    rows, _ = store.load()
    everything = EntityRows.concat(list(rows), L, H)
    return {
        entity: (everything.h[i].ravel().tolist(), everything.c[i].ravel().tolist())
        for i, entity in enumerate(everything.entities)
    }


def checkpoint_once(
    paced: bool, store: MemoryStateStore | None = None
) -> tuple[dict[str, tuple[list[float], list[float]]], list[dict]]:
    """One background checkpoint of a filled table into ``store`` (a fresh one by default)."""
    table = filled_table()
    if store is None:
        store = MemoryStateStore()
        store.open(StoreHeader("sha", L, H))
    commits: list[dict] = []
    checkpointer = background_checkpointer(table, store, lambda offsets, budget: commits.append(offsets))
    assert checkpointer.start({("in", 0): 2_500}, 5.0, paced=paced) is None  # written in the background
    result = checkpointer.wait()
    checkpointer.close()
    assert result is not None and result.upserts == len(ENTITIES)
    return saved_state(store), commits


def test_paced_background_checkpoint_saves_the_same_rows_and_commits_the_same_offsets() -> None:
    """Pacing changes when rows are written, never which rows or which offsets."""
    paced_rows, paced_commits = checkpoint_once(paced=True)
    plain_rows, plain_commits = checkpoint_once(paced=False)
    assert paced_rows == plain_rows and len(paced_rows) == len(ENTITIES)
    assert paced_commits == plain_commits == [{("in", 0): 2_500}]


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_consecutive_background_checkpoints_each_save_the_state_at_their_offsets(
    store_kind: str, tmp_path: Path
) -> None:
    """The second checkpoint reuses the first one's copy buffer; each saves the state it was taken at."""
    table = filled_table()
    store: StateStore = MemoryStateStore() if store_kind == "memory" else SqliteStateStore(tmp_path)
    store.open(StoreHeader("sha", L, H))
    checkpointer = background_checkpointer(table, store)
    first_h = table.h[:, table.slots_for(ENTITIES, 2.0, 0)].copy()
    assert checkpointer.start({("in", 0): 2_500}, 5.0, paced=True) is None
    # The loop moves on while the first snapshot is written: a third of the entities change.
    changed = ENTITIES[::3]
    slots = table.slots_for(changed, 3.0, 0)
    table.write(
        slots, np.full((L, len(changed), H), 7.0, np.float32), np.zeros((L, len(changed), H), np.float32), 3.0
    )
    assert checkpointer.wait() is not None
    after_first = saved_state(store)
    assert after_first["job_0"][0] == first_h[:, 0].ravel().tolist()
    assert checkpointer.start({("in", 0): 3_000}, 5.0, paced=True) is None
    assert checkpointer.wait() is not None
    after_second = saved_state(store)
    checkpointer.close()
    assert after_second["job_0"][0] == [7.0] * (L * H)
    assert after_second["job_1"] == after_first["job_1"]  # unchanged since the first checkpoint
    assert store.load().offsets == {("in", 0): 3_000}
    store.close()


def test_paced_rows_hand_out_every_row_in_order_in_chunks_of_at_most_the_limit() -> None:
    """A store asking for 4,096 rows at a time gets them 1,000 at a time, all of them, in order."""
    table = filled_table()
    source = table.take_changes().detached().upserts
    paced = PacedRows(source, chunk_rows=1_000, pause_seconds=0.0)
    chunks = list(paced.chunks(4_096))
    assert [len(chunk.entities) for chunk in chunks] == [1_000, 1_000, 500]
    assert [e for chunk in chunks for e in chunk.entities] == list(source.entities) == list(paced.entities)
    assert len(paced) == len(ENTITIES)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_background_snapshot_runs_at_lower_priority_than_the_event_loop() -> None:
    """The snapshot has seconds to finish, the events waiting for the loop milliseconds."""
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    store = MemoryStateStore()
    store.open(StoreHeader("sha", L, H))
    saved_at_nice: list[int] = []
    save = store.save_checkpoint

    def save_recording_the_thread_nice_value(*args: Any, **kwargs: Any) -> None:
        saved_at_nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        save(*args, **kwargs)

    store.save_checkpoint = save_recording_the_thread_nice_value  # type: ignore[method-assign]
    checkpoint_once(paced=False, store=store)
    assert saved_at_nice == [min(loop_nice + SNAPSHOT_THREAD_NICENESS, MAX_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice
