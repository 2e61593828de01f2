"""The StateStore contract, run against every implementation, plus SQLite-only failure modes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest
from snapshots import assert_same_entity
from structlog.testing import capture_logs

from logwarden.daemon.state import sqlite_store
from logwarden.daemon.state.memory_store import MemoryStateStore
from logwarden.daemon.state.sqlite_store import (
    DB_FILE,
    SqliteStateStore,
    describe_open_error,
    inspect_saved_state,
)
from logwarden.daemon.state.store import (
    EntityRows,
    StateChanges,
    StateStore,
    StoreHeader,
)
from logwarden.daemon.state.table import EntityStateTable
from logwarden.errors import StateStoreError

L, H = 2, 3
HEADER = StoreHeader(model_sha256="ab" * 32, num_layers=L, hidden_size=H)
Reopen = Callable[[], StateStore]


def make_rows(entities: Sequence[str], value: float = 0.0) -> EntityRows:
    """Rows for ``entities``: partitions 0, 1, ..., distinct float32 states, counts shifted by ``value``.

    Count profiles use the top bit (>= 2**63, beyond SQLite's signed integers), every third
    ``max_surprise`` is NaN (not tracked), every second row holds one unknown event and comes from
    topic "audit", the others from "logs".
    """
    n = len(entities)
    h = (np.arange(n * L * H, dtype=np.float32).reshape(n, L, H) + value) / 7.0
    index = np.arange(n)
    return EntityRows(
        entities=list(entities),
        partition=np.arange(n, dtype=np.int32),
        h=h,
        c=-h,
        last_seen=np.arange(n, dtype=np.float64) + value,
        events_applied=np.arange(n, dtype=np.int64) + int(value),
        count_profile=np.array([(2**63 + 977 * i + int(value)) % 2**64 for i in range(n)], np.uint64),
        max_surprise=np.where(index % 3 == 1, np.nan, index * 1.25 + value).astype(np.float32),
        unknown_events=(index % 2).astype(np.int64),
        topic=["audit" if i % 2 else "logs" for i in range(n)],
    )


def changes_of(rows: EntityRows, deletes: Sequence[str] = ()) -> StateChanges:
    """A checkpoint's changes: ``rows`` upserted and ``deletes`` removed."""
    return StateChanges(upserts=rows, deletes=tuple(deletes))


def load_all(store: StateStore) -> tuple[EntityRows, dict[tuple[str, int], int]]:
    """Everything the store loads, its row chunks joined into one, and the saved offsets."""
    rows, offsets = store.load()
    return EntityRows.concat(list(rows), L, H), offsets


def surprise_of(value: float) -> float | None:
    """``max_surprise`` in a form that compares equal to itself: None for NaN (not tracked)."""
    return None if np.isnan(value) else float(value)


def as_dict(rows: EntityRows) -> dict[str, tuple]:
    """Each entity's partition, state, last_seen, counts, surprise and unknown events: rows compared
    exactly, in any order."""
    return {
        entity: (
            int(rows.partition[i]),
            rows.h[i].tobytes(),
            rows.c[i].tobytes(),
            float(rows.last_seen[i]),
            int(rows.events_applied[i]),
            int(rows.count_profile[i]),
            surprise_of(rows.max_surprise[i]),
            int(rows.unknown_events[i]),
            rows.topic[i],
        )
        for i, entity in enumerate(rows.entities)
    }


class FailingRows:
    """Upserts that yield one chunk and then fail, as a crash in the middle of a save would."""

    def __init__(self, rows: EntityRows) -> None:
        self._rows = rows
        self.entities = rows.entities

    def __len__(self) -> int:
        return len(self._rows) * 2

    def chunks(self, rows: int) -> Iterator[EntityRows]:
        yield self._rows
        raise OSError("injected failure mid-save")


@pytest.fixture(params=["memory", "sqlite"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reopen]:
    """A factory returning a closed store over the same data each time it is called."""
    opened: list[StateStore] = []
    memory = MemoryStateStore(chunk_rows=2)

    def factory() -> StateStore:
        store: StateStore = (
            memory if request.param == "memory" else SqliteStateStore(tmp_path / "s", chunk_rows=2)
        )
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(reopen: Reopen) -> StateStore:
    """An open, empty store."""
    opened = reopen()
    opened.open(HEADER)
    return opened


def test_store_new_store_loads_empty(store: StateStore) -> None:
    """A new store has no rows and no offsets."""
    rows, offsets = load_all(store)
    assert len(rows) == 0 and offsets == {}


def test_store_round_trip_restores_rows_and_offsets(store: StateStore, reopen: Reopen) -> None:
    """Saved rows and offsets come back bit for bit after close and re-open."""
    saved = make_rows(["blk_1", "blk_-2", "host-ä", "x"], value=0.5)
    store.save_checkpoint(changes_of(saved), {("events", 0): 10, ("events", 1): 7})
    store.close()
    again = reopen()
    again.open(HEADER)
    rows, offsets = load_all(again)
    assert as_dict(rows) == as_dict(saved)
    assert offsets == {("events", 0): 10, ("events", 1): 7}
    assert rows.h.dtype == np.float32 and rows.partition.dtype == np.int32
    assert rows.count_profile.dtype == np.uint64 and rows.max_surprise.dtype == np.float32


def test_store_load_yields_chunks_covering_all_rows(store: StateStore) -> None:
    """load reads rows in bounded chunks (here 2) that together hold every row."""
    store.save_checkpoint(changes_of(make_rows(["a", "b", "c", "d", "e"])), {})
    chunks = list(store.load().rows)
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    assert sorted(e for chunk in chunks for e in chunk.entities) == ["a", "b", "c", "d", "e"]


def test_store_evict_least_recently_seen_deletes_the_oldest_that_do_not_fit(
    store: StateStore, reopen: Reopen
) -> None:
    """The saved entities a smaller table cannot hold go, oldest ``last_seen`` first and ties by name
    (so every start drops the same ones), for good; the offsets stay; nothing goes when all fit."""
    rows = make_rows(["e", "d", "c", "b", "a"])
    rows.last_seen[:] = [3.0, 1.0, 2.0, 1.0, 9.0]
    store.save_checkpoint(changes_of(rows), {("events", 0): 5})
    assert store.evict_least_recently_seen(5) == 0
    assert store.evict_least_recently_seen(4) == 1
    assert sorted(load_all(store)[0].entities) == ["a", "c", "d", "e"]
    assert store.evict_least_recently_seen(2) == 2
    store.close()
    again = reopen()
    again.open(HEADER)
    kept, offsets = load_all(again)
    assert sorted(kept.entities) == ["a", "e"] and offsets == {("events", 0): 5}


def test_store_upsert_replaces_existing_row(store: StateStore) -> None:
    """Saving an entity again replaces its row."""
    store.save_checkpoint(changes_of(make_rows(["a", "b"], value=1.0)), {})
    newer = make_rows(["b"], value=9.0)
    store.save_checkpoint(changes_of(newer), {})
    rows, _ = load_all(store)
    assert as_dict(rows)["b"] == as_dict(newer)["b"]
    assert len(rows) == 2


def test_store_deletes_applied_before_upserts(store: StateStore) -> None:
    """Deleted entities are gone; an entity both deleted and upserted in one checkpoint is kept."""
    store.save_checkpoint(changes_of(make_rows(["a", "b", "c"])), {})
    store.save_checkpoint(changes_of(make_rows(["c"], value=3.0), deletes=["a", "c", "never-saved"]), {})
    rows, _ = load_all(store)
    assert sorted(rows.entities) == ["b", "c"]
    assert as_dict(rows)["c"] == as_dict(make_rows(["c"], value=3.0))["c"]


def test_store_offsets_merge_over_saved_ones(store: StateStore) -> None:
    """Offsets of partitions absent from a checkpoint keep their saved value."""
    store.save_checkpoint(changes_of(make_rows([])), {("t", 0): 5, ("t", 1): 6})
    store.save_checkpoint(changes_of(make_rows([])), {("t", 1): 9, ("u", 0): 1})
    assert store.load().offsets == {("t", 0): 5, ("t", 1): 9, ("u", 0): 1}


def test_store_failure_mid_save_keeps_previous_checkpoint(store: StateStore) -> None:
    """An exception in the middle of a save leaves the previous checkpoint whole, and the store usable."""
    first = make_rows(["a", "b", "c"], value=1.0)
    store.save_checkpoint(changes_of(first), {("t", 0): 100})
    partial = StateChanges(upserts=FailingRows(make_rows(["a", "z"], value=5.0)), deletes=("b",))
    with pytest.raises(OSError, match="injected"):
        store.save_checkpoint(partial, {("t", 0): 200})
    rows, offsets = load_all(store)
    assert as_dict(rows) == as_dict(first)
    assert offsets == {("t", 0): 100}
    store.save_checkpoint(changes_of(make_rows(["z"])), {("t", 0): 300})
    assert store.load().offsets == {("t", 0): 300}


def test_store_failure_at_midway_hook_keeps_previous_checkpoint(store: StateStore) -> None:
    """midway runs inside the transaction: a failure there discards the rows already written."""
    first = make_rows(["a"], value=1.0)
    store.save_checkpoint(changes_of(first), {("t", 0): 1})
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.save_checkpoint(
            changes_of(make_rows(["a", "b"], value=2.0), deletes=["a"]), {("t", 0): 2}, midway=fail
        )
    rows, offsets = load_all(store)
    assert calls == [1]
    assert as_dict(rows) == as_dict(first)
    assert offsets == {("t", 0): 1}


def test_store_rows_of_wrong_shape_are_refused_and_nothing_saved(store: StateStore) -> None:
    """Rows whose state shape differs from the header raise ValueError and leave the store unchanged."""
    wrong = EntityRows(
        entities=["a"],
        partition=np.zeros(1, np.int32),
        h=np.zeros((1, L, H + 1), np.float32),
        c=np.zeros((1, L, H + 1), np.float32),
        last_seen=np.zeros(1),
        events_applied=np.zeros(1, np.int64),
        count_profile=np.zeros(1, np.uint64),
        max_surprise=np.zeros(1, np.float32),
        unknown_events=np.zeros(1, np.int64),
        topic=["t"],
    )
    with pytest.raises(ValueError, match="state shape"):
        store.save_checkpoint(changes_of(wrong), {("t", 0): 1})
    rows, offsets = load_all(store)
    assert len(rows) == 0 and offsets == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [("model_sha256", "cd" * 32), ("num_layers", L + 1), ("hidden_size", H + 1), ("format_version", 99)],
)
def test_store_header_mismatch_is_refused_naming_the_field(
    store: StateStore, reopen: Reopen, field: str, value: object
) -> None:
    """Re-opening with another model sha, shape or format version raises StateStoreError naming the field."""
    store.save_checkpoint(changes_of(make_rows(["a"])), {("t", 0): 1})
    store.close()
    with pytest.raises(StateStoreError, match=f"{field}=.*Delete or move the state directory"):
        reopen().open(replace(HEADER, **{field: value}))
    again = reopen()
    again.open(HEADER)
    assert again.load().offsets == {("t", 0): 1}


def test_store_use_before_open_raises(reopen: Reopen) -> None:
    """load and save on a store that is not open raise StateStoreError."""
    closed = reopen()
    with pytest.raises(StateStoreError, match="not open"):
        closed.load()
    with pytest.raises(StateStoreError, match="not open"):
        closed.save_checkpoint(changes_of(make_rows([])), {})


def test_store_negative_offset_is_refused(store: StateStore) -> None:
    """A negative next offset is a caller bug and raises ValueError."""
    with pytest.raises(ValueError, match="negative"):
        store.save_checkpoint(changes_of(make_rows([])), {("t", 0): -1})


def test_store_round_trip_of_state_table_checkpoint(store: StateStore) -> None:
    """Table -> take_changes -> save -> load -> new table reproduces every entity's state and count."""
    initial = np.ones((L, H), np.float32)
    table = EntityStateTable(L, H, 8, initial, -initial)
    slots = table.slots_for(["a", "b", "c"], now=1.0, partitions=[0, 1, 1])
    step_h = np.random.default_rng(0).normal(size=(L, 3, H)).astype(np.float32)
    weights = np.array([2**63 + 5, 7, 2**64 - 1], np.uint64)
    table.write(
        slots, step_h, -step_h, now=2.0, count_weights=weights, surprise=np.array([1.5, np.nan, 0.25])
    )
    table.write(
        slots[:1],
        step_h[:, :1] * 2,
        -step_h[:, :1],
        now=3.0,
        count_weights=weights[:1],
        surprise=np.array([4.0]),
    )
    store.save_checkpoint(table.take_changes(), {("t", 0): 42})
    table.remove(["b"])
    store.save_checkpoint(table.take_changes(), {("t", 0): 43})
    rows, offsets = store.load()
    restored = EntityStateTable(L, H, 8, initial, -initial)
    assert restored.load_rows(rows) == 2
    assert offsets == {("t", 0): 43}
    assert "b" not in restored
    for entity in ("a", "c"):
        assert_same_entity(restored.snapshot(entity), table.snapshot(entity))
    assert restored.snapshot("a").count_profile == 10  # (2**63 + 5) * 2 modulo 2**64
    assert (restored.snapshot("a").max_surprise, restored.snapshot("c").max_surprise) == (4.0, 0.25)


def test_sqlite_store_creates_directory_with_wal_journal(tmp_path: Path) -> None:
    """open creates missing directories and the database uses the WAL journal."""
    store = SqliteStateStore(tmp_path / "a" / "b")
    store.open(HEADER)
    store.close()
    with sqlite3.connect(tmp_path / "a" / "b" / DB_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_store_wal_shrinks_after_a_large_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The -wal is cut back once a large save has been folded into the database; without a size limit it
    kept the size of the largest save for as long as the store stayed open."""
    monkeypatch.setattr(sqlite_store, "WAL_SIZE_LIMIT_BYTES", 1 << 20, raising=False)
    header = StoreHeader(model_sha256="ab" * 32, num_layers=2, hidden_size=256)
    n = 3000  # 4 KiB of h and c a row: past SQLite's 1,000-page autocheckpoint in one save
    h = np.ones((n, 2, 256), np.float32)
    big = EntityRows(
        entities=[f"e{i}" for i in range(n)],
        partition=np.zeros(n, np.int32),
        h=h,
        c=h,
        last_seen=np.arange(n, dtype=np.float64),
        events_applied=np.ones(n, np.int64),
        count_profile=np.zeros(n, np.uint64),
        max_surprise=np.zeros(n, np.float32),
        unknown_events=np.zeros(n, np.int64),
        topic=["logs"] * n,
    )
    store = SqliteStateStore(tmp_path)
    store.open(header)
    wal = tmp_path / f"{DB_FILE}-wal"
    try:
        store.save_checkpoint(changes_of(big), {("logs", 0): 1})
        largest = wal.stat().st_size
        assert largest > 8 << 20
        one_row = next(big.chunks(1))
        for offset in range(2, 5):
            store.save_checkpoint(changes_of(one_row), {("logs", 0): offset})
        assert wal.stat().st_size <= 1 << 20, f"the -wal stayed at {wal.stat().st_size:,} bytes"
    finally:
        store.close()


def test_sqlite_store_non_sqlite_file_raises_naming_path(tmp_path: Path) -> None:
    """A state file that is not SQLite raises StateStoreError naming the file."""
    (tmp_path / DB_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateStoreError, match=f"{tmp_path / DB_FILE}.*not a readable"):
        SqliteStateStore(tmp_path).open(HEADER)


def _open_in_another_process(directory: Path) -> subprocess.CompletedProcess[str]:
    """Open the store in ``directory`` from a second process, as a second daemon would: exit 6 and the
    error on stdout when refused."""
    script = (
        "import sys\n"
        "from logwarden.daemon.state.sqlite_store import SqliteStateStore\n"
        "from logwarden.daemon.state.store import StoreHeader\n"
        "from logwarden.errors import StateStoreError\n"
        "try:\n"
        f"    SqliteStateStore(sys.argv[1]).open(StoreHeader({HEADER.model_sha256!r}, {L}, {H}))\n"
        "except StateStoreError as exc:\n"
        "    print(exc); sys.exit(6)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sqlite_store_second_process_on_the_same_directory_refused_naming_the_first(tmp_path: Path) -> None:
    """Two daemons on one state.dir would overwrite each other's checkpoints; the second may not open it."""
    first = SqliteStateStore(tmp_path)
    first.open(HEADER)
    refused = _open_in_another_process(tmp_path)
    assert refused.returncode == 6, refused.stdout + refused.stderr
    assert f"in use by another logwarden process (pid {os.getpid()})" in refused.stdout
    first.close()
    again = SqliteStateStore(tmp_path)
    again.open(HEADER)  # closed stores release the directory
    again.close()


def test_sqlite_store_locked_database_says_so_without_advising_deletion(tmp_path: Path) -> None:
    """A lock held by another program (an sqlite3 shell) is not damage: the message must not say delete it."""
    store = SqliteStateStore(tmp_path)
    store.open(HEADER)
    store.close()
    holder = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StateStoreError, match="locked by another process") as raised:
            SqliteStateStore(tmp_path, busy_timeout_seconds=0.1).open(HEADER)
        assert "delete" not in str(raised.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_sqlite_store_blob_of_wrong_length_raises_on_load(tmp_path: Path) -> None:
    """A state BLOB whose length disagrees with the header is reported as damage, not reshaped."""
    store = SqliteStateStore(tmp_path)
    store.open(HEADER)
    store.save_checkpoint(changes_of(make_rows(["a"])), {})
    with sqlite3.connect(tmp_path / DB_FILE) as conn:
        conn.execute("UPDATE entities SET h = ?", (b"\x00" * 5,))
    with pytest.raises(StateStoreError, match="damaged"):
        list(store.load().rows)
    store.close()


CRASHING_SAVE = """
import os, sys
import numpy as np
from logwarden.daemon.state.sqlite_store import SqliteStateStore
from logwarden.daemon.state.store import EntityRows, StateChanges, StoreHeader

L, H = {L}, {H}
header = StoreHeader(model_sha256={sha!r}, num_layers=L, hidden_size=H)

def rows(names, value):
    n = len(names)
    h = np.full((n, L, H), value, np.float32)
    return EntityRows(
        list(names), np.zeros(n, np.int32), h, h, np.zeros(n), np.full(n, int(value), np.int64),
        np.zeros(n, np.uint64), np.zeros(n, np.float32), np.zeros(n, np.int64), ["t"] * n,
    )

store = SqliteStateStore(sys.argv[1], chunk_rows=2)
store.open(header)
store.save_checkpoint(StateChanges(rows(["a", "b", "x"], 1.0), ()), {{("t", 0): 10}})
store.save_checkpoint(
    StateChanges(rows(["a", "b", "c", "d"], 2.0), ("x",)), {{("t", 0): 20}}, midway=lambda: os._exit(17)
)
"""


def test_sqlite_store_process_killed_mid_save_keeps_previous_checkpoint(tmp_path: Path) -> None:
    """A process that dies between two writes of one checkpoint leaves the previous checkpoint on disk."""
    script = textwrap.dedent(CRASHING_SAVE.format(L=L, H=H, sha=HEADER.model_sha256))
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, timeout=60)
    assert result.returncode == 17, result.stderr.decode()
    store = SqliteStateStore(tmp_path)
    store.open(HEADER)
    rows, offsets = load_all(store)
    store.close()
    assert offsets == {("t", 0): 10}
    assert sorted(rows.entities) == ["a", "b", "x"]
    assert rows.events_applied.tolist() == [1, 1, 1]


def test_store_released_partition_offsets_forgotten(store: StateStore, reopen: Reopen) -> None:
    """A released partition loses its saved offset in the same transaction; others keep theirs."""
    store.save_checkpoint(changes_of(make_rows(["a"])), {("events", 0): 10, ("events", 1): 7})
    store.save_checkpoint(changes_of(make_rows(["b"])), {("events", 0): 12}, released=[("events", 1)])
    store.close()
    again = reopen()
    again.open(HEADER)
    _, offsets = load_all(again)
    assert offsets == {("events", 0): 12}


def test_store_round_trip_keeps_every_count_profile_bit_and_a_nan_surprise(
    store: StateStore, reopen: Reopen
) -> None:
    """count_profile comes back bit for bit over all of uint64 (SQLite's integers are signed), NaN as NaN."""
    saved = make_rows(["zero", "top-bit", "max", "one"])
    saved.count_profile[:] = [0, 2**63, 2**64 - 1, 1]
    saved.max_surprise[:] = [0.0, np.nan, np.finfo(np.float32).max, 1e-30]
    store.save_checkpoint(changes_of(saved), {})
    store.close()
    again = reopen()
    again.open(HEADER)
    rows, _ = load_all(again)
    assert as_dict(rows) == as_dict(saved)
    by_entity = dict(zip(rows.entities, rows.count_profile.tolist(), strict=True))
    assert by_entity == {"zero": 0, "top-bit": 2**63, "max": 2**64 - 1, "one": 1}
    assert np.isnan(rows.max_surprise[rows.entities.index("top-bit")])


def test_sqlite_store_writes_a_nan_surprise_as_null(tmp_path: Path) -> None:
    """A session whose counts are not tracked is stored as NULL, the value a migrated row holds."""
    store = SqliteStateStore(tmp_path)
    store.open(HEADER)
    store.save_checkpoint(changes_of(make_rows(["a", "b"])), {})
    store.close()
    with sqlite3.connect(tmp_path / DB_FILE) as conn:
        stored = dict(conn.execute("SELECT entity, typeof(max_surprise) FROM entities").fetchall())
    assert stored == {"a": "real", "b": "null"}


# What every state file written by logwarden before the count gate holds (format version 1).
V1_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE header (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        format_version INTEGER NOT NULL,
        model_sha256 TEXT NOT NULL,
        num_layers INTEGER NOT NULL,
        hidden_size INTEGER NOT NULL
    )""",
    """CREATE TABLE entities (
        entity TEXT PRIMARY KEY,
        kafka_partition INTEGER NOT NULL,
        h BLOB NOT NULL,
        c BLOB NOT NULL,
        last_seen REAL NOT NULL,
        events_applied INTEGER NOT NULL
    )""",
    """CREATE TABLE offsets (
        topic TEXT NOT NULL,
        kafka_partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, kafka_partition)
    )""",
)
# What a state file written by logwarden with the count gate and before unknown events were counted
# holds (format version 2).
V2_SCHEMA = (
    V1_SCHEMA[0],
    """CREATE TABLE entities (
        entity TEXT PRIMARY KEY,
        kafka_partition INTEGER NOT NULL,
        h BLOB NOT NULL,
        c BLOB NOT NULL,
        last_seen REAL NOT NULL,
        events_applied INTEGER NOT NULL,
        count_profile INTEGER NOT NULL,
        max_surprise REAL
    )""",
    V1_SCHEMA[2],
)
V1_OFFSETS = {("events", 0): 10, ("events", 3): 7}


def write_old_store(
    directory: Path,
    rows: EntityRows,
    version: int,
    model_sha256: str = HEADER.model_sha256,
    offsets: Mapping[tuple[str, int], int] = V1_OFFSETS,
) -> Path:
    """A state file of format ``version`` (1 or 2) holding ``rows`` and ``V1_OFFSETS``, as the logwarden
    of that format wrote it: version 1 before the count gate, version 2 before unknown events were counted."""
    directory.mkdir()
    conn = sqlite3.connect(directory / DB_FILE, isolation_level=None)
    try:
        conn.execute("PRAGMA page_size=8192")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in {1: V1_SCHEMA, 2: V2_SCHEMA}[version]:
            conn.execute(statement)
        conn.execute("INSERT INTO header VALUES (1, ?, ?, ?, ?)", (version, model_sha256, L, H))
        values = [
            (
                entity,
                int(rows.partition[i]),
                rows.h[i].astype("<f4").tobytes(),
                rows.c[i].astype("<f4").tobytes(),
                float(rows.last_seen[i]),
                int(rows.events_applied[i]),
                int(rows.count_profile[i].view(np.int64)),
                None if np.isnan(rows.max_surprise[i]) else float(rows.max_surprise[i]),
            )[: 6 if version == 1 else 8]
            for i, entity in enumerate(rows.entities)
        ]
        placeholders = ", ".join("?" * len(values[0]))
        conn.executemany(f"INSERT INTO entities VALUES ({placeholders})", values)
        conn.executemany("INSERT INTO offsets VALUES (?, ?, ?)", [(*key, o) for key, o in offsets.items()])
        conn.execute("COMMIT")
    finally:
        conn.close()
    return directory / DB_FILE


def file_contents(database: Path) -> tuple[list, list, list]:
    """The header row, the tables' SQL and the entity rows of a state file, to tell whether it changed."""
    with sqlite3.connect(database) as conn:
        return (
            conn.execute("SELECT * FROM header").fetchall(),
            conn.execute("SELECT name, sql FROM sqlite_schema ORDER BY name").fetchall(),
            conn.execute("SELECT * FROM entities ORDER BY entity").fetchall(),
        )


def test_sqlite_store_version_1_file_is_migrated_keeping_every_entity_and_offset(tmp_path: Path) -> None:
    """A version 1 file opens: rows and offsets kept, counts untracked, and it reopens as version 3."""
    saved = make_rows(["blk_1", "blk_-2", "host-ä"], value=0.5)
    database = write_old_store(tmp_path / "s", saved, version=1)
    store = SqliteStateStore(tmp_path / "s", chunk_rows=2)
    with capture_logs() as logs:
        store.open(HEADER)
    assert [entry for entry in logs if entry["event"] == "state_store_migrated"] == [
        {
            "event": "state_store_migrated",
            "log_level": "info",
            "path": str(database),
            "from_format_version": 1,
            "format_version": 3,
            "note": ANY,
        }
    ]
    rows, offsets = load_all(store)
    store.close()
    assert offsets == V1_OFFSETS
    assert rows.count_profile.tolist() == [0, 0, 0]
    assert np.isnan(rows.max_surprise).all()
    assert rows.unknown_events.tolist() == [0, 0, 0]
    kept = {entity: state[:5] for entity, state in as_dict(rows).items()}
    assert kept == {entity: state[:5] for entity, state in as_dict(saved).items()}
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT format_version FROM header").fetchone() == (3,)

    again = SqliteStateStore(tmp_path / "s", chunk_rows=2)
    with capture_logs() as logs:
        again.open(HEADER)
    assert not [entry for entry in logs if entry["event"] == "state_store_migrated"]
    newer = make_rows(["blk_1"], value=3.0)
    again.save_checkpoint(changes_of(newer), {("events", 0): 11})
    again.close()
    third = SqliteStateStore(tmp_path / "s", chunk_rows=2)
    third.open(HEADER)
    rows, offsets = load_all(third)
    third.close()
    assert as_dict(rows)["blk_1"] == as_dict(newer)["blk_1"]
    assert as_dict(rows)["host-ä"][:5] == as_dict(saved)["host-ä"][:5]
    assert offsets == {**V1_OFFSETS, ("events", 0): 11}


def test_sqlite_store_version_2_file_is_migrated_keeping_counts_and_surprise(tmp_path: Path) -> None:
    """A version 2 file opens with every value it held and no unknown event counted; it reopens as
    version 3."""
    saved = make_rows(["blk_1", "blk_-2", "host-ä", "job_4"], value=0.5)
    database = write_old_store(tmp_path / "s", saved, version=2)
    store = SqliteStateStore(tmp_path / "s", chunk_rows=3)
    with capture_logs() as logs:
        store.open(HEADER)
    migrated = [entry for entry in logs if entry["event"] == "state_store_migrated"]
    assert [(e["from_format_version"], e["format_version"]) for e in migrated] == [(2, 3)]
    assert "unknown event" in migrated[0]["note"]
    rows, offsets = load_all(store)
    store.close()
    assert offsets == V1_OFFSETS
    assert rows.unknown_events.tolist() == [0, 0, 0, 0]
    assert rows.topic == ["events"] * 4, "the one topic of the saved offsets"
    kept = {entity: state[:7] for entity, state in as_dict(rows).items()}
    assert kept == {entity: state[:7] for entity, state in as_dict(saved).items()}
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT format_version FROM header").fetchone() == (3,)
    again = SqliteStateStore(tmp_path / "s")
    again.open(HEADER)
    again.save_checkpoint(changes_of(saved), {})
    again.close()
    third = SqliteStateStore(tmp_path / "s")
    third.open(HEADER)
    rows, _ = load_all(third)
    third.close()
    assert as_dict(rows) == as_dict(saved)


def test_sqlite_store_version_1_file_of_another_model_is_refused_and_left_unmigrated(tmp_path: Path) -> None:
    """The model and shape are checked before the migration: a refused version 1 file is left as it was."""
    database = write_old_store(tmp_path / "s", make_rows(["a", "b"]), version=1, model_sha256="cd" * 32)
    before = file_contents(database)
    with pytest.raises(StateStoreError, match="model_sha256='cdcd"):
        SqliteStateStore(tmp_path / "s").open(HEADER)
    assert file_contents(database) == before


def test_sqlite_store_version_1_file_with_an_edited_table_is_refused_and_left_unmigrated(
    tmp_path: Path,
) -> None:
    """Only an exact version 1 schema is migrated; a column added by hand is refused, the file unchanged."""
    database = write_old_store(tmp_path / "s", make_rows(["a"]), version=1)
    with sqlite3.connect(database) as conn:
        conn.execute("ALTER TABLE entities ADD COLUMN count_profile INTEGER NOT NULL DEFAULT 0")
    before = file_contents(database)
    with pytest.raises(StateStoreError, match=f"{database}: table entities is not as logwarden creates it"):
        SqliteStateStore(tmp_path / "s").open(HEADER)
    assert file_contents(database) == before


def test_sqlite_store_newer_format_version_is_refused_naming_it(tmp_path: Path) -> None:
    """A file of a format this logwarden does not know (a newer one) is refused, not migrated or read."""
    store = SqliteStateStore(tmp_path)
    store.open(HEADER)
    store.close()
    with sqlite3.connect(tmp_path / DB_FILE) as conn:
        conn.execute("UPDATE header SET format_version = 4")
    with pytest.raises(StateStoreError, match="format_version=4 but the daemon runs with format_version=3"):
        SqliteStateStore(tmp_path).open(HEADER)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("count_profile", "many", "text in count_profile, where logwarden writes an integer"),
        ("count_profile", 1.5, "a real in count_profile, where logwarden writes an integer"),
        ("max_surprise", "high", "text in max_surprise, where logwarden writes NULL or a real"),
        ("max_surprise", -1.0, "a negative or infinite max_surprise"),
        ("unknown_events", "one", "text in unknown_events, where logwarden writes an integer"),
        ("unknown_events", -1, "an unknown_events below 0 or above events_applied"),
        ("unknown_events", 1_000, "an unknown_events below 0 or above events_applied"),
    ],
)
def test_sqlite_store_damaged_value_in_a_migrated_column_is_refused_naming_it(
    tmp_path: Path, column: str, value: object, problem: str
) -> None:
    """The columns a migration adds are checked like the others once the file is version 3."""
    database = write_old_store(tmp_path / "s", make_rows(["a", "b"]), version=1)
    store = SqliteStateStore(tmp_path / "s")
    store.open(HEADER)
    store.close()
    with sqlite3.connect(database) as conn:
        conn.execute(f"UPDATE entities SET {column} = ? WHERE entity = 'b'", (value,))
    again = SqliteStateStore(tmp_path / "s")
    again.open(HEADER)
    try:
        with pytest.raises(StateStoreError, match=f"{database}: the saved row of entity 'b' has {problem}"):
            list(again.load().rows)
    finally:
        again.close()


def sqlite_error(message: str, name: str) -> sqlite3.Error:
    """An error as SQLite raises it, with its extended error name."""
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = name  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    "error",
    [
        sqlite_error("disk I/O error", "SQLITE_IOERR_SHMSIZE"),
        sqlite_error("database or disk is full", "SQLITE_FULL"),
        sqlite_error("attempt to write a readonly database", "SQLITE_READONLY"),
        sqlite_error("unable to open database file", "SQLITE_CANTOPEN"),
    ],
)
def test_sqlite_store_full_disk_or_unwritable_file_is_no_damage(error: sqlite3.Error) -> None:
    """The state in the file is intact: the advice is to free space or fix the owner, not to move it aside."""
    message = describe_open_error(Path("/var/lib/logwarden/state/state.sqlite3"), error)
    assert "untouched" in message and "disk full" in message
    assert "aside" not in message and "delete" not in message


@pytest.mark.parametrize(
    "error",
    [
        sqlite_error("database disk image is malformed", "SQLITE_CORRUPT"),
        sqlite_error("file is not a database", "SQLITE_NOTADB"),
    ],
)
def test_sqlite_store_damaged_file_is_advised_to_be_moved_aside(error: sqlite3.Error) -> None:
    """What SQLite calls corrupt or no database is damage: the one case for starting from empty state."""
    message = describe_open_error(Path("/var/lib/logwarden/state/state.sqlite3"), error)
    assert "not a readable logwarden state store" in message and "aside" in message


def test_sqlite_store_version_2_rows_get_their_topic_once_from_the_saved_offsets(tmp_path: Path) -> None:
    """A version 2 row knew its partition number only: it takes the first topic (by name) of the saved
    offsets with that number, else the first topic of all, set in the migration, so offsets saved
    later (a topic first assigned after the upgrade) never move it."""
    offsets = {("logs", 0): 5, ("audit", 0): 6, ("logs", 3): 7}
    write_old_store(tmp_path / "s", make_rows(["p0", "p1", "p2", "p3"]), version=2, offsets=offsets)
    store = SqliteStateStore(tmp_path / "s")
    store.open(HEADER)
    rows, _ = load_all(store)
    expected = {"p0": "audit", "p1": "audit", "p2": "audit", "p3": "logs"}
    assert dict(zip(rows.entities, rows.topic, strict=True)) == expected
    store.save_checkpoint(changes_of(make_rows(["other"])), {("aaa", 1): 1, ("aaa", 3): 2})
    store.close()
    again = SqliteStateStore(tmp_path / "s")
    again.open(HEADER)
    rows, _ = load_all(again)
    again.close()
    assert {e: t for e, t in zip(rows.entities, rows.topic, strict=True) if e != "other"} == expected


def _files_of(directory: Path, *, shm: bool = True) -> dict[str, bytes]:
    """The bytes of the store's files; without ``shm`` its -shm, the index SQLite's readers update."""
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if shm or not path.name.endswith("-shm")
    }


def test_inspect_saved_state_without_a_store_finds_none_and_creates_nothing(tmp_path: Path) -> None:
    """``run --check`` before the first start: no store yet, and the check makes none."""
    saved = inspect_saved_state(tmp_path / "state", HEADER)
    assert saved.entities is None and saved.path == tmp_path / "state" / DB_FILE
    assert not (tmp_path / "state").exists()


def test_inspect_saved_state_refuses_a_wal_without_its_database_as_a_start_would(tmp_path: Path) -> None:
    """A start refuses a ``state.sqlite3-wal`` left without ``state.sqlite3`` (exit 6); ``run --check``
    must say so before the restart instead of passing it."""
    (tmp_path / (DB_FILE + "-wal")).write_bytes(b"")
    with pytest.raises(StateStoreError, match="a write-ahead log without its database"):
        inspect_saved_state(tmp_path, HEADER)
    with pytest.raises(StateStoreError, match="a write-ahead log without its database"):
        SqliteStateStore(tmp_path).open(HEADER)


def test_inspect_saved_state_counts_entities_while_the_daemon_holds_the_store(tmp_path: Path) -> None:
    """Read only and without the lock, so it answers beside a running daemon and changes no byte."""
    store = SqliteStateStore(tmp_path)
    store.open(HEADER)
    try:
        store.save_checkpoint(changes_of(make_rows(["a", "b", "c"])), {("events", 0): 3})
        before = _files_of(tmp_path, shm=False)
        assert inspect_saved_state(tmp_path, HEADER).entities == 3
        assert _files_of(tmp_path, shm=False) == before
    finally:
        store.close()


@pytest.mark.parametrize("how", ["deleted", "moved_aside", "replaced"])
def test_sqlite_store_state_dir_gone_while_open_refuses_the_next_checkpoint(tmp_path: Path, how: str) -> None:
    """SQLite writes on into a file no longer at its path: each checkpoint would be logged as saved
    while the next start restores nothing.  The save is refused instead, naming the file."""
    import shutil

    state = tmp_path / "state"
    store = SqliteStateStore(state)
    store.open(HEADER)
    store.save_checkpoint(changes_of(make_rows(["a"])), {("events", 0): 1})
    if how == "deleted":
        shutil.rmtree(state)
    elif how == "moved_aside":
        state.rename(tmp_path / "state.old")
    else:
        (state / DB_FILE).rename(state / "old.sqlite3")
        (state / DB_FILE).write_bytes(b"")
    try:
        with pytest.raises(StateStoreError, match=f"{state / DB_FILE}: the state store was deleted, moved"):
            store.save_checkpoint(changes_of(make_rows(["b"])), {("events", 0): 2})
    finally:
        store.close()


def test_inspect_saved_state_of_another_model_refuses_as_a_start_would(tmp_path: Path) -> None:
    """The most common upgrade mistake, a new model on the old state, found before the restart."""
    store = SqliteStateStore(tmp_path)
    store.open(HEADER)
    store.close()
    before = _files_of(tmp_path)
    assert set(before) == {DB_FILE, "lock"}, "a closed store is one file (and the lock)"
    other_model = replace(HEADER, model_sha256="cd" * 32)
    with pytest.raises(StateStoreError, match=r"state\.sqlite3: saved state has model_sha256="):
        inspect_saved_state(tmp_path, other_model)
    assert inspect_saved_state(tmp_path, HEADER).entities == 0
    assert _files_of(tmp_path) == before, "the check created or changed a file (a -wal of root's)"


def test_sqlite_store_lock_file_deleted_while_open_still_refuses_a_second_store(tmp_path: Path) -> None:
    """The lock file names a pid and reads like a stale pid file: deleting it must not let a second
    daemon open the store (it would release the first one's partitions and delete their rows)."""
    first = SqliteStateStore(tmp_path)
    first.open(HEADER)
    try:
        (tmp_path / "lock").unlink()
        done = _open_in_another_process(tmp_path)
        assert done.returncode == 6, done.stdout + done.stderr
        assert "in use by another logwarden process" in done.stdout
    finally:
        first.close()


def test_sqlite_store_foreign_rollback_journal_is_refused_leaving_the_state_as_it_was(tmp_path: Path) -> None:
    """SQLite plays a hot ``-journal`` back into the file before it reads the header, whatever database
    it came from: a stale one from elsewhere would overwrite the state with that database's pages."""
    state = tmp_path / "state"
    store = SqliteStateStore(state)
    store.open(HEADER)
    store.save_checkpoint(changes_of(make_rows(["a", "b"])), {("events", 0): 2})
    store.close()
    other = tmp_path / "other.db"
    script = textwrap.dedent(
        f"""
        import os, signal, sqlite3
        conn = sqlite3.connect({str(other)!r}, isolation_level=None)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA cache_size=5")
        conn.execute("CREATE TABLE t (a)")
        conn.executemany("INSERT INTO t VALUES (randomblob(3000))", [()] * 200)
        conn.execute("BEGIN")
        conn.execute("UPDATE t SET a = randomblob(3000)")
        os.kill(os.getpid(), signal.SIGKILL)  # leaves other.db-journal hot
        """
    )
    subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    journal = Path(f"{other}-journal")
    assert journal.stat().st_size > 0
    (state / f"{DB_FILE}-journal").write_bytes(journal.read_bytes())
    before = (state / DB_FILE).read_bytes()
    again = SqliteStateStore(state)
    with pytest.raises(StateStoreError, match=f"{state / DB_FILE}-journal: a rollback journal beside"):
        again.open(HEADER)
    assert (state / DB_FILE).read_bytes() == before
    (state / f"{DB_FILE}-journal").unlink()
    again.open(HEADER)
    try:
        rows, offsets = load_all(again)
        assert sorted(rows.entities) == ["a", "b"] and offsets == {("events", 0): 2}
    finally:
        again.close()


def test_inspect_saved_state_reads_a_wal_left_without_its_shm_as_a_start_would(tmp_path: Path) -> None:
    """After a crash the latest checkpoints may be only in the -wal; a copy of the directory without the
    -shm (an index SQLite rebuilds) still holds them.  "immutable" would skip the log and count the
    entities of an older checkpoint, so --check could pass a store the start refuses (max_entities)."""
    import shutil

    crashed = tmp_path / "crashed"
    store = SqliteStateStore(crashed)
    store.open(HEADER)
    store.save_checkpoint(changes_of(make_rows(["a", "b"])), {("events", 0): 2})
    store.close()
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path[:0] = {[str(Path(__file__).parent), str(Path(__file__).parents[2])]!r}
        from test_state_store import HEADER, changes_of, make_rows
        from logwarden.daemon.state.sqlite_store import SqliteStateStore
        store = SqliteStateStore({str(crashed)!r})
        store.open(HEADER)
        store.save_checkpoint(changes_of(make_rows([f"e{{i}}" for i in range(50)])), {{("events", 0): 50}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in (DB_FILE, f"{DB_FILE}-wal"):
        shutil.copyfile(crashed / name, copied / name)
    before = _files_of(copied)
    assert inspect_saved_state(copied, HEADER).entities == 52
    assert _files_of(copied) == before, "the check created or changed a file"
    again = SqliteStateStore(copied)
    again.open(HEADER)
    try:
        assert len(load_all(again)[0].entities) == 52
    finally:
        again.close()
