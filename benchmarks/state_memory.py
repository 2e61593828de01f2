"""Memory and speed of the daemon's state at scale: 1,000,000 entities, L=2, H=64, checkpointed to SQLite.

    .venv/bin/python benchmarks/state_memory.py [--entities 1000000] [--dir DIR]

Prints JSON lines: resident memory (VmRSS, peak VmHWM from /proc/self/status) after each
stage, and timings of table operations, a full checkpoint, a steady-state checkpoint of
20,000 dirty entities, and restoring every row into a fresh table.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from logwarden.daemon.state.sqlite_store import DB_FILE, SqliteStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.daemon.state.table import EntityStateTable

NUM_LAYERS, HIDDEN = 2, 64
BATCH = 4096
STEADY_DIRTY = 20_000


def memory_mb() -> dict[str, float]:
    """VmRSS and VmHWM of this process in MiB."""
    fields: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def report(stage: str, **figures: object) -> None:
    """Print one JSON line: the stage, its figures and this process's memory now."""
    print(json.dumps({"stage": stage, **figures, **memory_mb()}), flush=True)


def block_ids(count: int, seed: int) -> list[str]:
    """HDFS-like block ids such as ``blk_-1608999687919862906``."""
    raw = np.random.default_rng(seed).integers(-(2**63), 2**63 - 1, size=count, dtype=np.int64)
    return [f"blk_{value}" for value in raw.tolist()]


def new_table(capacity: int) -> EntityStateTable:
    """An empty table for ``capacity`` entities, with a constant non-zero initial state."""
    initial = np.full((NUM_LAYERS, HIDDEN), 0.01, np.float32)
    return EntityStateTable(NUM_LAYERS, HIDDEN, capacity, initial, -initial)


def fill(table: EntityStateTable, entities: list[str], rng: np.random.Generator) -> float:
    """slots_for + write for every entity in batches of BATCH; returns events per second."""
    started = time.perf_counter()
    h = rng.normal(size=(NUM_LAYERS, BATCH, HIDDEN)).astype(np.float32)
    for start in range(0, len(entities), BATCH):
        batch = entities[start : start + BATCH]
        slots = table.slots_for(batch, now=float(start), partitions=start % 12)
        table.write(slots, h[:, : len(batch)], h[:, : len(batch)], now=float(start))
    return len(entities) / (time.perf_counter() - started)


def main() -> None:
    """Run every stage in ``--dir``, or in a temporary directory deleted at the end."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="state directory (default: a temporary one)")
    args = parser.parse_args()
    report("start")
    with tempfile.TemporaryDirectory(prefix="logwarden-state-") as scratch:
        directory = args.dir or Path(scratch)
        run(args.entities, directory)


def run(count: int, directory: Path) -> None:
    """Fill, scan, checkpoint, evict and restore ``count`` entities in ``directory``; a JSON line each."""
    rng = np.random.default_rng(0)
    entities = block_ids(count, seed=1)
    report("ids_built", entities=count)

    table = new_table(count)
    report("table_allocated", capacity=count)
    rate = fill(table, entities, rng)
    report("table_filled", entities=len(table), table_events_per_s=round(rate))

    # A second pass over known entities: the steady-state cost of slots_for + write per event.
    rate = fill(table, entities[: 50 * BATCH], rng)
    report("known_entities", table_events_per_s=round(rate))

    started = time.perf_counter()
    idle = table.expire_idle(now=float(count), ttl_seconds=float(count) / 2)
    report("expire_idle_scan", seconds=round(time.perf_counter() - started, 4), idle=len(idle))

    header = StoreHeader(model_sha256="0" * 64, num_layers=NUM_LAYERS, hidden_size=HIDDEN)
    store = SqliteStateStore(directory)
    store.open(header)
    started = time.perf_counter()
    store.save_checkpoint(table.take_changes(), {("events", p): count for p in range(12)})
    report(
        "full_checkpoint",
        rows=count,
        seconds=round(time.perf_counter() - started, 2),
        file_mb=round((directory / DB_FILE).stat().st_size / 2**20),
    )

    for _ in range(3):
        dirty = [entities[i] for i in rng.choice(count, size=STEADY_DIRTY, replace=False).tolist()]
        fill(table, dirty, rng)
        changes = table.take_changes()
        started = time.perf_counter()
        store.save_checkpoint(changes, {("events", p): count + 1 for p in range(12)})
        report(
            "steady_checkpoint", rows=changes.upsert_count, seconds=round(time.perf_counter() - started, 3)
        )

    # Evictions: a stream of brand-new entities into the full table.
    newcomers = block_ids(20 * BATCH, seed=2)
    started = time.perf_counter()
    fill(table, newcomers, rng)
    report(
        "evicting_inserts",
        entities=len(newcomers),
        evicted=table.evicted_total,
        table_events_per_s=round(len(newcomers) / (time.perf_counter() - started)),
    )
    store.save_checkpoint(table.take_changes(), {})
    store.close()

    del table, entities, dirty, newcomers, changes
    gc.collect()
    report("table_dropped")

    store = SqliteStateStore(directory)
    store.open(header)
    restored = new_table(count)
    started = time.perf_counter()
    rows, offsets = store.load()
    loaded = restored.load_rows(rows)
    report("restored", rows=loaded, partitions=len(offsets), seconds=round(time.perf_counter() - started, 2))
    store.close()


if __name__ == "__main__":
    main()
