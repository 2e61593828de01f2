"""A paced background checkpoint writes exactly what an unpaced one writes, in small chunks."""

from __future__ import annotations

import numpy as np

from logwarden.daemon.checkpoint import Checkpointer, PacedRows
from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.state_store import EntityRows, MemoryStateStore, StoreHeader
from logwarden.daemon.state_table import EntityStateTable

L, H = 2, 4
ENTITIES = [f"job_{n}" for n in range(2_500)]


def filled_table() -> EntityStateTable:
    table = EntityStateTable(L, H, 5_000, np.zeros((L, H), np.float32), np.zeros((L, H), np.float32))
    slots = table.slots_for(ENTITIES, 1.0, 0)
    values = np.arange(L * len(ENTITIES) * H, dtype=np.float32).reshape(L, len(ENTITIES), H)
    table.write(slots, values, -values, 2.0)
    return table


def saved_state(store: MemoryStateStore) -> dict[str, tuple[list[float], list[float]]]:
    rows, _ = store.load()
    everything = EntityRows.concat(list(rows), L, H)
    return {
        entity: (everything.h[i].ravel().tolist(), everything.c[i].ravel().tolist())
        for i, entity in enumerate(everything.entities)
    }


def checkpoint_once(paced: bool) -> tuple[dict[str, tuple[list[float], list[float]]], list[dict]]:
    table = filled_table()
    store = MemoryStateStore()
    store.open(StoreHeader("sha", L, H))
    commits: list[dict] = []
    checkpointer = Checkpointer(
        flush_producer=lambda timeout: None,
        store=store,
        table=table,
        commit_group=commits.append,
        crash_points=CrashPoints(None),
        background=True,
    )
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


def test_paced_rows_hand_out_every_row_in_order_in_chunks_of_at_most_the_limit() -> None:
    """A store asking for 4,096 rows at a time gets them 1,000 at a time, all of them, in order."""
    table = filled_table()
    source = table.take_changes().detached(L, H).upserts
    paced = PacedRows(source, chunk_rows=1_000, pause_seconds=0.0)
    chunks = list(paced.chunks(4_096))
    assert [len(chunk.entities) for chunk in chunks] == [1_000, 1_000, 500]
    assert [e for chunk in chunks for e in chunk.entities] == list(source.entities) == list(paced.entities)
    assert len(paced) == len(ENTITIES)
