"""A seeded sweep of the SQLite state store as accidents leave it on disk.

A full disk, a copy cut short or taken from another host, a backup put back by half, an edit in an
``sqlite3`` shell, bit rot: each is done to a copy of a real store of a few hundred entities, and the
daemon's start (open with the model's header, load, restore into a state table) must then restore
exactly a checkpoint that was saved, or raise StateStoreError naming the file and what is wrong.
Never another exception, never a state that no checkpoint held.  Each damage is checked to have
happened (a cut below the file's size, a byte that really changed) before its outcome is judged, and
nothing is skipped: run as root, the permission cases drop to the ``nobody`` user.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from privileges import give_to_nobody, running_as_root, unprivileged, world_reachable_dir

from logwarden.daemon.state.sqlite_store import DB_FILE, SqliteStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.daemon.state.table import EntityStateTable
from logwarden.errors import StateStoreError

SEED = 20_241_206
L, H = 2, 8
PAGE = 8192
PARTITIONS = 4
SOURCES = [("logs", partition) for partition in range(PARTITIONS)]
"""Where the entities of ``advance`` come from."""
HEADER = StoreHeader(model_sha256="ab" * 32, num_layers=L, hidden_size=H)
WAL = DB_FILE + "-wal"
SHM = DB_FILE + "-shm"

EntityState = tuple[int, bytes, bytes, float, int, int, float]
Offsets = dict[tuple[str, int], int]


@dataclass(frozen=True)
class Saved:
    """One checkpoint as the daemon restores it: every entity's state and the next offsets."""

    entities: dict[str, EntityState]
    offsets: Offsets


@dataclass(frozen=True)
class History:
    """Copies of one store taken at moments of a daemon's life, and the checkpoints it had saved.

    ``backup``: closed after checkpoint 1.  ``crashed``: checkpoint 2 in the file and checkpoint 3
    still in the write-ahead log, as a crash (or a copy of a running daemon's directory) leaves it.
    ``clean``: closed after checkpoint 3, the log folded into the file.
    """

    root: Path
    first: Saved
    second: Saved
    third: Saved

    def copy(self, name: str, to: Path) -> Path:
        """A fresh copy of the store directory ``name`` at ``to``."""
        shutil.copytree(self.root / name, to)
        return to


def new_table() -> EntityStateTable:
    """An empty table for 1,000 entities, as the daemon builds before restoring a checkpoint into it."""
    initial = np.full((L, H), 0.25, np.float32)
    return EntityStateTable(L, H, 1000, initial, -initial)


def state_of(table: EntityStateTable, offsets: Offsets) -> Saved:
    """Every entity of the table with ``offsets``: a checkpoint in the form restores are compared in."""
    entities: dict[str, EntityState] = {}
    for entity in table.entities_in(SOURCES):
        row = table.snapshot(entity)
        entities[entity] = (
            row.topic,
            row.partition,
            row.h.tobytes(),
            row.c.tobytes(),
            row.last_seen,
            row.events_applied,
            row.count_profile,
            row.max_surprise,  # never NaN here: NaN would not compare equal to itself
            row.unknown_events,
        )
    return Saved(entities, dict(offsets))


def advance(table: EntityStateTable, rng: np.random.Generator, names: Sequence[str], now: float) -> None:
    """One event for each of ``names``, with random states, partitions, count weights and surprises;
    one in ten is an unknown event."""
    slots = table.slots_for(
        list(names),
        now=now,
        partitions=rng.integers(0, PARTITIONS, len(names)),
        topic_ids=table.topic_id_of("logs"),
    )
    h = rng.normal(size=(L, len(names), H)).astype(np.float32)
    counts = np.random.default_rng([SEED, int(now)])  # apart, so ``rng`` draws the states it always did
    table.write(
        slots,
        h,
        rng.normal(size=(L, len(names), H)).astype(np.float32),
        now=now + rng.random(),
        count_weights=counts.integers(0, 2**64 - 1, len(names), dtype=np.uint64, endpoint=True),
        surprise=counts.exponential(2.0, len(names)),
        unknown=counts.random(len(names)) < 0.1,
    )


def checkpoint(store: SqliteStateStore, table: EntityStateTable, saved: Offsets, offsets: Offsets) -> Saved:
    """Save the table's changes and ``offsets``; ``saved`` gains them, as the store merges them."""
    store.save_checkpoint(table.take_changes(), offsets)
    saved.update(offsets)
    return state_of(table, saved)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """Three checkpoints of a few hundred entities (names like HDFS block ids), with deletes between."""
    root = tmp_path_factory.mktemp("history")
    rng = np.random.default_rng(SEED)
    table = new_table()
    live = root / "live"
    offsets: Offsets = {}
    names = [f"blk_{value}" for value in rng.integers(-(2**62), 2**62, size=420).tolist()]

    store = SqliteStateStore(live)
    store.open(HEADER)
    advance(table, rng, names[:240], 1_000.0)
    first = checkpoint(store, table, offsets, {("logs", 0): 1_200, ("logs", 1): 1_300, ("audit", 3): 0})
    store.close()
    shutil.copytree(live, root / "backup")

    store = SqliteStateStore(live)
    store.open(HEADER)
    advance(table, rng, names[120:330], 2_000.0)
    table.remove(names[:40])
    second = checkpoint(store, table, offsets, {("logs", 0): 2_500, ("logs", 1): 2_600})
    store.close()

    store = SqliteStateStore(live)
    store.open(HEADER)
    advance(table, rng, names[300:420], 3_000.0)
    table.remove(names[40:90])
    third = checkpoint(store, table, offsets, {("logs", 0): 3_700, ("audit", 3): 12})
    (root / "crashed").mkdir()
    for name in (DB_FILE, WAL):  # while the store is open: what a crash leaves
        shutil.copy(live / name, root / "crashed" / name)
    store.close()
    shutil.copytree(live, root / "clean")

    assert not (root / "clean" / WAL).exists(), "a clean close folds the log into the file"
    # The log's cuts and flips below all fall in its first ten frames (WAL_FRAMES), checkpoint 3's.
    assert (root / "crashed" / WAL).stat().st_size >= 32 + 10 * (24 + PAGE), "checkpoint 3 is in the log"
    assert (root / "clean" / DB_FILE).stat().st_size >= 12 * PAGE, "the page sweeps below need 12 pages"
    assert len({len(first.entities), len(second.entities), len(third.entities)}) == 3
    return History(root, first, second, third)


def restore(directory: Path) -> Saved:
    """What the daemon's start restores from ``directory`` (daemon/app.py: open, load, load_rows)."""
    store = SqliteStateStore(directory, chunk_rows=64, busy_timeout_seconds=0.1)
    store.open(HEADER)
    try:
        rows, offsets = store.load()
        table = new_table()
        table.load_rows(rows)
        return state_of(table, offsets)
    finally:
        store.close()


def outcome(directory: Path) -> Saved | StateStoreError:
    """The restored checkpoint, or the StateStoreError refusing it; any other exception propagates."""
    try:
        return restore(directory)
    except StateStoreError as exc:
        return exc


def assert_refused(result: Saved | StateStoreError, names: Path, *problem: str) -> None:
    """A one-line StateStoreError naming ``names`` (a file or directory) and each of ``problem``."""
    assert isinstance(result, StateStoreError), f"damaged store restored {len(result.entities)} entities"
    message = str(result)
    assert str(names) in message and "\n" not in message, message
    for words in problem:
        assert words in message, message


def assert_restored(result: Saved | StateStoreError, expected: Saved) -> None:
    """Exactly ``expected``, offsets as Python ints (1.0 == 1 would hide a REAL offset)."""
    assert not isinstance(result, StateStoreError), f"refused an intact checkpoint: {result}"
    assert result.offsets == expected.offsets
    assert all(type(offset) is int for offset in result.offsets.values())
    assert result.entities == expected.entities


def flip_byte(path: Path, offset: int, mask: int) -> None:
    """XOR one byte with a non-zero mask, so the byte surely changes."""
    with open(path, "r+b") as file:
        file.seek(offset)
        value = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([value ^ mask]))


def edit(path: Path, *statements: str | tuple[str, tuple[object, ...]]) -> None:
    """Run SQL on the store as an operator in an sqlite3 shell would, and commit."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, ())
            conn.execute(sql, params)
    finally:
        conn.close()


def save_everything_again(store: Path, rng: np.random.Generator) -> Saved | StateStoreError:
    """Restore, give every entity a new state, add as many new ones, save: the next checkpoint, or its error.

    The new entities need new pages, so the save allocates from the free list.
    """
    opened = SqliteStateStore(store)
    opened.open(HEADER)
    try:
        table = new_table()
        rows, offsets = opened.load()
        table.load_rows(rows)
        known = table.entities_in(SOURCES)
        advance(table, rng, [*known, *(f"new_{i}" for i in range(len(known)))], 4_000.0)
        saved = {**offsets, ("logs", 0): 4_000}
        try:
            opened.save_checkpoint(table.take_changes(), saved)
        except StateStoreError as exc:
            return exc
        return state_of(table, saved)
    finally:
        opened.close()


def assert_next_save_sound(store: Path) -> None:
    """The checkpoint after a start on a damaged file is refused, or saved and restored exactly."""
    after = save_everything_again(store, np.random.default_rng(SEED + 7))
    if isinstance(after, StateStoreError):
        assert_refused(after, store / DB_FILE, "checkpoint not saved")
        return
    again = outcome(store)
    if isinstance(again, StateStoreError):
        assert_refused(again, store / DB_FILE)
    else:
        assert_restored(again, after)


def test_sqlite_store_untouched_copies_restore_their_last_checkpoint(
    history: History, tmp_path: Path
) -> None:
    """Clean copies restore their last checkpoint; a crashed one restores checkpoint 3 from its log."""
    assert_restored(outcome(history.copy("clean", tmp_path / "clean")), history.third)
    assert_restored(outcome(history.copy("crashed", tmp_path / "crashed")), history.third)
    assert_restored(outcome(history.copy("backup", tmp_path / "backup")), history.first)


# --- The database file cut short: a copy interrupted, a full disk. --------------------------------

_CUT_RNG = np.random.default_rng(SEED + 1)
CUTS = sorted(
    {0, 1, 15, 16, 50, 99, 100, 101, 512, 4096, PAGE - 1, PAGE, PAGE + 1}
    | {page * PAGE for page in range(2, 12)}
    | {page * PAGE - 8 for page in range(2, 12)}
    | set(_CUT_RNG.integers(PAGE, 12 * PAGE, size=12).tolist())
)


@pytest.mark.parametrize("cut", CUTS)
def test_sqlite_store_database_cut_short_is_refused(history: History, tmp_path: Path, cut: int) -> None:
    """Any cut is refused: SQLite would read the missing end as zeros, so the size is checked first."""
    store = history.copy("clean", tmp_path / "s")
    assert cut < (store / DB_FILE).stat().st_size
    os.truncate(store / DB_FILE, cut)
    result = outcome(store)
    assert_refused(result, store / DB_FILE)


def test_sqlite_store_database_cut_inside_last_page_is_refused(history: History, tmp_path: Path) -> None:
    """The last page's end holds the first rows written there; cutting 1 to 64 bytes is still refused."""
    for cut_bytes in (1, 2, 3, 8, 9, 17, 64):
        store = history.copy("clean", tmp_path / f"s{cut_bytes}")
        os.truncate(store / DB_FILE, (store / DB_FILE).stat().st_size - cut_bytes)
        assert_refused(outcome(store), store / DB_FILE, "cut short")


@pytest.mark.parametrize("offset", range(100))
def test_sqlite_store_database_header_byte_flipped_is_refused_or_harmless(
    history: History, tmp_path: Path, offset: int
) -> None:
    """Each byte of SQLite's 100-byte file header, changed: refused, or checkpoint 3 and a sound next save.

    Many header fields do not describe what a start reads (the change counter, the schema cookie,
    the free-page list of a file without free pages, user_version, the SQLite version that last
    wrote the file): changing one touches no state.  The save after such a start, which allocates
    pages, must then succeed and load back exactly, or be refused.
    """
    store = history.copy("clean", tmp_path / "s")
    flip_byte(store / DB_FILE, offset, int(np.random.default_rng([SEED, offset]).integers(1, 256)))
    result = outcome(store)
    if isinstance(result, StateStoreError):
        assert_refused(result, store / DB_FILE)
        return
    assert_restored(result, history.third)
    assert_next_save_sound(store)


def test_sqlite_store_zero_length_database_is_refused_not_started_empty(
    history: History, tmp_path: Path
) -> None:
    """An empty state.sqlite3 is damage (new stores are renamed into place whole), not a new store."""
    store = history.copy("clean", tmp_path / "s")
    os.truncate(store / DB_FILE, 0)
    assert_refused(outcome(store), store / DB_FILE, "empty file")
    assert (store / DB_FILE).stat().st_size == 0, "a refused store is left as it was found"


# --- Pages overwritten with random bytes: bit rot, a bad sector. ----------------------------------


def page_owners(database: Path) -> dict[int, str]:
    """The b-tree each page belongs to (SQLite's dbstat), page numbers from 1."""
    conn = sqlite3.connect(database)
    try:
        return dict(conn.execute("SELECT pageno, name FROM dbstat").fetchall())
    finally:
        conn.close()


READ_AT_START = {"sqlite_schema", "header", "entities", "offsets", "sqlite_autoindex_entities_1"}
"""The b-trees a start reads: the rows, their count through the entities index, the schema."""


@pytest.mark.parametrize("page", range(1, 13))
def test_sqlite_store_page_of_random_bytes_is_refused_or_caught_by_the_next_save(
    history: History, tmp_path: Path, page: int
) -> None:
    """A page the start reads is refused; the offsets index, read first by the next save, fails that save.

    Only ``sqlite_autoindex_offsets_1`` is not read at start: the restored state is then exactly
    checkpoint 3 (the index holds no state), and the checkpoint after it is refused instead.
    """
    store = history.copy("clean", tmp_path / "s")
    owner = page_owners(store / DB_FILE)[page]
    noise = np.random.default_rng([SEED, page]).bytes(PAGE)
    with open(store / DB_FILE, "r+b") as file:
        file.seek((page - 1) * PAGE)
        file.write(noise)
    result = outcome(store)
    if owner in READ_AT_START:
        assert_refused(result, store / DB_FILE)
        return
    assert owner == "sqlite_autoindex_offsets_1", owner
    assert_restored(result, history.third)
    opened = SqliteStateStore(store)
    opened.open(HEADER)
    try:
        table = new_table()
        table.load_rows(opened.load().rows)
        with pytest.raises(StateStoreError, match=f"{store / DB_FILE}: checkpoint not saved"):
            opened.save_checkpoint(table.take_changes(), {("logs", 0): 4_000})
    finally:
        opened.close()


@pytest.mark.parametrize("which", ["trunk", "leaf"])
def test_sqlite_store_free_page_of_random_bytes_is_harmless_or_caught_by_the_next_save(
    history: History, tmp_path: Path, which: str
) -> None:
    """Free pages hold no state: checkpoint 3 is restored; a save reusing them succeeds or is refused.

    A free-list trunk page lists other free pages, so garbage there can only fail the save that
    allocates from it; a free leaf page is overwritten whole when it is reused.
    """
    store = history.copy("clean", tmp_path / "s")
    edit(store / DB_FILE, "CREATE TABLE scratch AS SELECT * FROM entities", "DROP TABLE scratch")
    with open(store / DB_FILE, "rb") as file:
        trunk = int.from_bytes(file.read(100)[32:36], "big")
        file.seek((trunk - 1) * PAGE + 8)
        first_leaf = int.from_bytes(file.read(4), "big")
    assert trunk and first_leaf, "the dropped table left free pages"
    page = trunk if which == "trunk" else first_leaf
    with open(store / DB_FILE, "r+b") as file:
        file.seek((page - 1) * PAGE)
        file.write(np.random.default_rng([SEED, page]).bytes(PAGE))
    assert_restored(outcome(store), history.third)
    assert_next_save_sound(store)


# --- The write-ahead log: lost, cut, damaged, or from another copy. -------------------------------


def test_sqlite_store_deleted_log_restores_the_checkpoint_before_it(history: History, tmp_path: Path) -> None:
    """Without its log a crashed store is checkpoint 2, whole: state and offsets of the same cut."""
    store = history.copy("crashed", tmp_path / "s")
    (store / WAL).unlink()
    assert_restored(outcome(store), history.second)


_WAL_RNG = np.random.default_rng(SEED + 2)
WAL_FRAMES = 32 + 10 * (24 + PAGE)
"""The first ten frames of the log (after its 32-byte header), all of them checkpoint 3's."""
WAL_CUTS = [
    0,
    1,
    31,
    32,
    33,
    32 + 24,
    32 + 24 + PAGE - 1,
    *_WAL_RNG.integers(64, WAL_FRAMES, size=8).tolist(),
]


@pytest.mark.parametrize("cut", WAL_CUTS)
def test_sqlite_store_log_cut_short_restores_the_checkpoint_before_it(
    history: History, tmp_path: Path, cut: int
) -> None:
    """A log cut before its commit frame holds no complete transaction: checkpoint 2 is restored."""
    store = history.copy("crashed", tmp_path / "s")
    assert cut < (store / WAL).stat().st_size
    os.truncate(store / WAL, cut)
    assert_restored(outcome(store), history.second)
    assert_next_save_sound(store)


WAL_FLIPS = [*range(0, 32, 4), 32, 36, 40, 48, *_WAL_RNG.integers(56, WAL_FRAMES, size=10).tolist()]


@pytest.mark.parametrize("offset", WAL_FLIPS)
def test_sqlite_store_log_byte_damaged_restores_the_checkpoint_before_it(
    history: History, tmp_path: Path, offset: int
) -> None:
    """Log header and frames carry checksums: a changed byte drops checkpoint 3's frames, whole."""
    store = history.copy("crashed", tmp_path / "s")
    flip_byte(store / WAL, offset, int(np.random.default_rng([SEED, offset]).integers(1, 256)))
    assert_restored(outcome(store), history.second)
    assert_next_save_sound(store)


def test_sqlite_store_log_of_random_bytes_restores_the_checkpoint_before_it(
    history: History, tmp_path: Path
) -> None:
    """A log without SQLite's magic number is ignored: checkpoint 2."""
    store = history.copy("crashed", tmp_path / "s")
    size = (store / WAL).stat().st_size
    (store / WAL).write_bytes(np.random.default_rng(SEED + 3).bytes(size))
    assert_restored(outcome(store), history.second)
    assert_next_save_sound(store)


def test_sqlite_store_stale_shared_memory_file_is_ignored(history: History, tmp_path: Path) -> None:
    """A -shm of random bytes copied along is rebuilt by the first connection: checkpoint 3."""
    store = history.copy("crashed", tmp_path / "s")
    (store / SHM).write_bytes(np.random.default_rng(SEED + 4).bytes(32768))
    assert_restored(outcome(store), history.third)


def test_sqlite_store_log_that_is_a_directory_is_refused(history: History, tmp_path: Path) -> None:
    """A directory where the log belongs cannot be read or written: refused, naming the database."""
    store = history.copy("clean", tmp_path / "s")
    (store / WAL).mkdir()
    assert_refused(outcome(store), store / DB_FILE)


def test_sqlite_store_log_beside_an_older_backup_is_refused(history: History, tmp_path: Path) -> None:
    """Checkpoint 3's log over checkpoint 1's file (a backup put back, the log left) mixes two cuts.

    The log's pages replace only the pages checkpoint 3 changed, so the rows mix checkpoints 1 and
    3 under checkpoint 3's offsets.  Which check notices depends on where the rows fall in the pages:
    SQLite finds a b-tree malformed, or the entities table and its index hold different row counts,
    which the load compares (the next test).  (A mix that keeps both sound cannot be told from a
    saved state; deploy/README.md says to put a backup back with its own log, or none.)
    """
    store = history.copy("crashed", tmp_path / "s")
    shutil.copy(history.root / "backup" / DB_FILE, store / DB_FILE)
    result = outcome(store)
    assert_refused(result, store / DB_FILE)
    assert any(words in str(result) for words in ("its index", "malformed")), result


def test_sqlite_store_entities_index_of_other_rows_is_refused(history: History, tmp_path: Path) -> None:
    """Rows and an index from different checkpoints are refused when their row counts differ.

    The entities index is pointed at the offsets index's b-tree, a sound b-tree of another length:
    the mismatch a log applied over a backup can leave, without depending on where rows fall.
    """
    store = history.copy("clean", tmp_path / "s")
    edit(
        store / DB_FILE,
        "PRAGMA writable_schema = ON",
        "UPDATE sqlite_schema SET rootpage = (SELECT rootpage FROM sqlite_schema"
        " WHERE name = 'sqlite_autoindex_offsets_1') WHERE name = 'sqlite_autoindex_entities_1'",
    )
    rows = len(history.third.entities)
    assert_refused(
        outcome(store), store / DB_FILE, f"holds {rows} rows but its index {len(history.third.offsets)}"
    )


def test_sqlite_store_log_without_its_database_is_refused(history: History, tmp_path: Path) -> None:
    """A database deleted alone leaves its log: refused naming the log, not a new store under it."""
    store = history.copy("crashed", tmp_path / "s")
    (store / DB_FILE).unlink()
    assert_refused(outcome(store), store / WAL, "without its database")
    assert not (store / DB_FILE).exists()


# --- Tables and columns dropped, renamed or rebuilt. ----------------------------------------------

ENTITY_VALUE_COLUMNS = [
    "kafka_partition",
    "h",
    "c",
    "last_seen",
    "events_applied",
    "count_profile",
    "max_surprise",
    "unknown_events",
    "topic",
]
"""Every column of ``entities`` but its key."""

SCHEMA_EDITS = {
    "drop header": ["DROP TABLE header"],
    "drop entities": ["DROP TABLE entities"],
    "drop offsets": ["DROP TABLE offsets"],
    "rename entities": ["ALTER TABLE entities RENAME TO entities_old"],
    "rename offsets": ["ALTER TABLE offsets RENAME TO offsets_old"],
    "rename header": ["ALTER TABLE header RENAME TO header_old"],
    **{
        f"drop {table}.{column}": [f"ALTER TABLE {table} DROP COLUMN {column}"]
        for table, columns in {
            "header": ["format_version", "model_sha256", "num_layers", "hidden_size"],
            "entities": ENTITY_VALUE_COLUMNS,
            "offsets": ["next_offset"],
        }.items()
        for column in columns
    },
    **{
        f"rename {table}.{column}": [f"ALTER TABLE {table} RENAME COLUMN {column} TO {column}_old"]
        for table, columns in {
            "header": ["id", "format_version", "model_sha256", "num_layers", "hidden_size"],
            "entities": ["entity", *ENTITY_VALUE_COLUMNS],
            "offsets": ["topic", "kafka_partition", "next_offset"],
        }.items()
        for column in columns
    },
    "add a column": ["ALTER TABLE entities ADD COLUMN note TEXT"],
    "entities rebuilt without keys, with a duplicate and a NULL": [
        "CREATE TABLE copy AS SELECT * FROM entities",
        "DROP TABLE entities",
        "ALTER TABLE copy RENAME TO entities",
        "INSERT INTO entities SELECT * FROM entities LIMIT 1",
        "UPDATE entities SET h = NULL WHERE rowid = 2",
    ],
    "offsets rebuilt with a duplicate partition": [
        "CREATE TABLE copy AS SELECT * FROM offsets",
        "DROP TABLE offsets",
        "ALTER TABLE copy RENAME TO offsets",
        "INSERT INTO offsets SELECT topic, kafka_partition, 0 FROM offsets",
    ],
}


@pytest.mark.parametrize("statements", SCHEMA_EDITS.values(), ids=SCHEMA_EDITS.keys())
def test_sqlite_store_changed_schema_is_refused_at_open(
    history: History, tmp_path: Path, statements: list[str]
) -> None:
    """A table missing, renamed or rebuilt, or a column dropped, renamed or added: refused at open.

    A dropped table must not be created again empty: the state would be restored without its
    offsets (or the offsets without their state), or, without the header, adopted for any model.
    """
    store = history.copy("clean", tmp_path / "s")
    edit(store / DB_FILE, *statements)
    result = outcome(store)
    assert_refused(result, store / DB_FILE)
    assert any(word in str(result) for word in ("table", "no such column")), result


def test_sqlite_store_header_row_deleted_is_refused(history: History, tmp_path: Path) -> None:
    """Without its header row a store could be any model's: refused, not adopted for this one."""
    store = history.copy("clean", tmp_path / "s")
    edit(store / DB_FILE, "DELETE FROM header")
    assert_refused(outcome(store), store / DB_FILE, "header row is missing")


def test_sqlite_store_foreign_sqlite_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    """Another program's SQLite file is refused, and logwarden's tables are not added to it."""
    store = tmp_path / "s"
    store.mkdir()
    edit(
        store / DB_FILE, "CREATE TABLE metrics (name TEXT, value REAL)", "INSERT INTO metrics VALUES ('x', 1)"
    )
    before = (store / DB_FILE).read_bytes()
    assert_refused(outcome(store), store / DB_FILE, "not a logwarden state store")
    assert (store / DB_FILE).read_bytes() == before


def test_sqlite_store_sqlite_database_without_tables_is_refused(tmp_path: Path) -> None:
    """A valid SQLite file with no table (an sqlite3 shell opened on the path) is not a new store."""
    store = tmp_path / "s"
    store.mkdir()
    edit(store / DB_FILE, "PRAGMA user_version = 1")
    assert (store / DB_FILE).stat().st_size > 0
    assert_refused(outcome(store), store / DB_FILE, "not a logwarden state store")


# --- Values edited through SQL: SQLite keeps any type in any column. -------------------------------

NAN_AT = int(np.random.default_rng(SEED + 5).integers(0, L * H))


def state_blob(value: float, at: int = NAN_AT) -> bytes:
    """A state BLOB of the right length with ``value`` at one position among ordinary numbers."""
    row = np.linspace(-0.5, 0.5, L * H).astype("<f4")
    row[at] = value
    return row.tobytes()


ROW_EDITS: dict[str, tuple[str, object, str]] = {
    "h as text of the right length": ("h", "x" * (L * H * 4), "text in h"),
    "h as an integer": ("h", 0, "an integer in h"),
    "h empty": ("h", b"", "of 0 bytes"),
    "c too long": ("c", bytes(L * H * 4 + 4), "of 68 bytes"),
    "h with NaN": ("h", state_blob(float("nan")), "NaN or infinity in h"),
    "h with +inf": ("h", state_blob(float("inf")), "NaN or infinity in h"),
    "c with -inf": ("c", state_blob(float("-inf"), at=0), "NaN or infinity in c"),
    "c with NaN last": ("c", state_blob(float("nan"), at=L * H - 1), "NaN or infinity in c"),
    "last_seen as text": ("last_seen", "yesterday", "text in last_seen"),
    "last_seen infinite": ("last_seen", float("inf"), "NaN or infinite last_seen"),
    "last_seen -infinite": ("last_seen", float("-inf"), "NaN or infinite last_seen"),
    "last_seen as a blob": ("last_seen", b"\x01", "a blob in last_seen"),
    "events_applied negative": ("events_applied", -1, "negative events_applied"),
    "events_applied as text": ("events_applied", "many", "text in events_applied"),
    "events_applied fractional": ("events_applied", 1.5, "a real in events_applied"),
    "events_applied beyond int64": ("events_applied", 1e19, "a real in events_applied"),
    "kafka_partition negative": ("kafka_partition", -1, "kafka_partition outside"),
    "kafka_partition beyond int32": ("kafka_partition", 2**31, "kafka_partition outside"),
    "kafka_partition far below int32": ("kafka_partition", -(2**40), "kafka_partition outside"),
    "kafka_partition as text": ("kafka_partition", "p1", "text in kafka_partition"),
    "kafka_partition fractional": ("kafka_partition", 0.5, "a real in kafka_partition"),
    "count_profile as text": ("count_profile", "abc", "text in count_profile"),
    "count_profile fractional": ("count_profile", 0.5, "a real in count_profile"),
    "count_profile beyond int64": ("count_profile", 2.0**64, "a real in count_profile"),
    "count_profile as a blob": ("count_profile", b"\x01" * 8, "a blob in count_profile"),
    "max_surprise as text": ("max_surprise", "high", "text in max_surprise"),
    "max_surprise as a blob": ("max_surprise", b"\x01", "a blob in max_surprise"),
    "max_surprise negative": ("max_surprise", -0.5, "negative or infinite max_surprise"),
    "max_surprise infinite": ("max_surprise", float("inf"), "negative or infinite max_surprise"),
    "max_surprise beyond float32": ("max_surprise", 1e300, "negative or infinite max_surprise"),
    "unknown_events as text": ("unknown_events", "none", "text in unknown_events"),
    "topic as a blob": ("topic", b"logs", "a blob in topic"),
    "unknown_events fractional": ("unknown_events", 0.5, "a real in unknown_events"),
    "unknown_events negative": ("unknown_events", -1, "unknown_events below 0 or above events_applied"),
    "unknown_events above events_applied": (
        "unknown_events",
        2**40,
        "unknown_events below 0 or above events_applied",
    ),
    "entity empty": ("entity", "", "an empty name"),
    "entity NULL": ("entity", None, "NULL in entity"),
    "entity as a blob": ("entity", b"\x00\xff", "a blob in entity"),
}


@pytest.mark.parametrize(("column", "value", "problem"), ROW_EDITS.values(), ids=ROW_EDITS.keys())
def test_sqlite_store_edited_entity_row_is_refused_naming_column(
    history: History, tmp_path: Path, column: str, value: object, problem: str
) -> None:
    """A row value no daemon writes is refused when the rows are restored, naming the file and column."""
    store = history.copy("clean", tmp_path / "s")
    entity = sorted(history.third.entities)[int(np.random.default_rng(SEED + 6).integers(0, 100))]
    edit(store / DB_FILE, (f"UPDATE entities SET {column} = ? WHERE entity = ?", (value, entity)))
    assert_refused(outcome(store), store / DB_FILE, problem)


def test_sqlite_store_duplicate_null_entities_are_refused(history: History, tmp_path: Path) -> None:
    """A TEXT PRIMARY KEY lets SQLite keep several NULL entities; they are refused, not merged."""
    store = history.copy("clean", tmp_path / "s")
    edit(
        store / DB_FILE,
        "UPDATE entities SET entity = NULL WHERE rowid IN (SELECT rowid FROM entities LIMIT 2)",
    )
    assert_refused(outcome(store), store / DB_FILE, "NULL in entity")


OFFSET_EDITS: dict[str, tuple[str, object, str]] = {
    "next_offset negative": ("next_offset", -1, "next_offset -1"),
    "next_offset as text": ("next_offset", "latest", "next_offset 'latest'"),
    "next_offset fractional": ("next_offset", 1.5, "next_offset 1.5"),
    "next_offset beyond int64": ("next_offset", 1e30, "next_offset 1e+30"),
    "next_offset as a blob": ("next_offset", b"\x01", "next_offset b'\\x01'"),
    "kafka_partition negative": ("kafka_partition", -1, "kafka_partition -1"),
    "kafka_partition beyond int32": ("kafka_partition", 2**31, "kafka_partition 2147483648"),
    "kafka_partition as text": ("kafka_partition", "zero", "kafka_partition 'zero'"),
    "topic empty": ("topic", "", "topic ''"),
    "topic as a blob": ("topic", b"logs", "topic b'logs'"),
}


@pytest.mark.parametrize(("column", "value", "problem"), OFFSET_EDITS.values(), ids=OFFSET_EDITS.keys())
def test_sqlite_store_edited_offset_is_refused_naming_it(
    history: History, tmp_path: Path, column: str, value: object, problem: str
) -> None:
    """An offset the daemon could not seek to is refused at load instead of reaching the consumer."""
    store = history.copy("clean", tmp_path / "s")
    edit(store / DB_FILE, (f"UPDATE offsets SET {column} = ? WHERE topic = 'audit'", (value,)))
    assert_refused(outcome(store), store / DB_FILE, "saved input offset is damaged", problem)


HEADER_EDITS: dict[str, tuple[str, object, str]] = {
    "another model": ("model_sha256", "cd" * 32, "model_sha256='cdcd"),
    "sha256 empty": ("model_sha256", "", "model_sha256=''"),
    "sha256 as a blob": ("model_sha256", bytes.fromhex("ab" * 32), "model_sha256 holds a blob"),
    "sha256 as an integer": ("model_sha256", 12, "model_sha256='12'"),
    "more layers": ("num_layers", L + 1, f"num_layers={L + 1}"),
    "no layers": ("num_layers", 0, "num_layers=0"),
    "layers negative": ("num_layers", -L, f"num_layers={-L}"),
    "layers as text": ("num_layers", "two", "num_layers holds text 'two'"),
    "layers fractional": ("num_layers", L + 0.5, "num_layers holds a real"),
    "hidden size doubled": ("hidden_size", 2 * H, f"hidden_size={2 * H}"),
    "hidden size as a blob": ("hidden_size", b"\x08", "hidden_size holds a blob"),
    "format version 4": ("format_version", 4, "format_version=4"),
    "format version 1 over version 3 tables": (
        "format_version",
        1,
        "table entities is not as logwarden creates it for format_version 1",
    ),
    "format version 2 over version 3 tables": (
        "format_version",
        2,
        "table entities is not as logwarden creates it for format_version 2",
    ),
    "format version 0": ("format_version", 0, "format_version=0"),
    "format version as text": ("format_version", "one", "format_version holds text"),
    "format version fractional": ("format_version", 1.5, "format_version holds a real"),
}


@pytest.mark.parametrize(("column", "value", "problem"), HEADER_EDITS.values(), ids=HEADER_EDITS.keys())
def test_sqlite_store_edited_header_field_is_refused_naming_it(
    history: History, tmp_path: Path, column: str, value: object, problem: str
) -> None:
    """A header of another model, shape or version, or of a wrong type, is refused naming the field."""
    store = history.copy("clean", tmp_path / "s")
    edit(store / DB_FILE, (f"UPDATE header SET {column} = ?", (value,)))
    assert_refused(outcome(store), store / DB_FILE, problem)


def test_sqlite_store_header_number_written_as_text_is_the_same_header(
    history: History, tmp_path: Path
) -> None:
    """``SET num_layers = '2'`` stores the integer 2 (INTEGER affinity): nothing changed, checkpoint 3."""
    store = history.copy("clean", tmp_path / "s")
    edit(store / DB_FILE, ("UPDATE header SET num_layers = ?, format_version = ?", (str(L), "3")))
    assert_restored(outcome(store), history.third)


# --- The file system: wrong kinds of files, missing permissions. ----------------------------------


def test_sqlite_store_database_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    """A directory named state.sqlite3 is refused naming it, before SQLite's "unable to open"."""
    store = tmp_path / "s"
    (store / DB_FILE).mkdir(parents=True)
    assert_refused(outcome(store), store / DB_FILE, "not a regular file")


def test_sqlite_store_state_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """A file where state.dir should be is refused naming it."""
    (tmp_path / "s").write_text("not a directory")
    assert_refused(outcome(tmp_path / "s"), tmp_path / "s", "cannot create the state directory")


@contextmanager
def world_reachable_copy(history: History) -> Iterator[Path]:
    """A copy of the clean store, owned by ``nobody``, in a directory every user may enter."""
    with world_reachable_dir() as parent:
        store = history.copy("clean", parent / "s")
        give_to_nobody(store)
        yield store


def test_sqlite_store_read_only_state_dir_is_refused_without_advising_deletion(history: History) -> None:
    """A directory the daemon may not write is a permission problem: named, and the state left alone."""
    with world_reachable_copy(history) as store:
        before = (store / DB_FILE).read_bytes()
        store.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        with unprivileged():
            result = outcome(store)
        assert_refused(result, store, "not writable")
        assert "delete" not in str(result)
        assert (store / DB_FILE).read_bytes() == before


def test_sqlite_store_database_owned_by_another_user_is_refused(history: History) -> None:
    """A database the daemon's user may only read (restored as root) is named as such, not as damage."""
    with world_reachable_copy(history) as store:
        (store / DB_FILE).chmod(0o444)
        if running_as_root():
            os.chown(store / DB_FILE, 0, 0)
        with unprivileged():
            result = outcome(store)
        assert_refused(result, store / DB_FILE, "not readable and writable")
        assert "delete" not in str(result)


@pytest.mark.parametrize("leftover", ["-wal", "-shm"])
def test_sqlite_store_wal_or_shm_file_of_another_user_is_refused_without_advising_deletion(
    history: History, leftover: str
) -> None:
    """A root sqlite3 shell, or a killed ``sudo logwarden run``, leaves root-owned files beside the
    database; SQLite then cannot write it, which is no damage: the advice must not be to move it aside."""
    with world_reachable_copy(history) as store:
        before = (store / DB_FILE).read_bytes()
        beside = store / f"{DB_FILE}{leftover}"
        beside.write_bytes(b"")
        beside.chmod(0o600)
        if running_as_root():
            os.chown(beside, 0, 0)
        else:
            beside.chmod(0o400)
        with unprivileged():
            result = outcome(store)
        assert_refused(result, beside, "not readable and writable", "untouched")
        assert "delete" not in str(result) and "aside" not in str(result)
        assert (store / DB_FILE).read_bytes() == before
