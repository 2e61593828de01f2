"""What a logwarden state file holds, and the checks that a file found on disk is one, undamaged.

A file found on disk may have met a full disk, a copy cut short, a manual edit or bit rot, so
nothing in it is trusted: it must hold the header row and exactly the schema below, and every value
read back is checked for its SQLite type and range.  Anything else is a StateStoreError naming the
file, never a state loaded wrong.  The store itself (daemon/state/sqlite_store.py) creates, writes and
reads the file; these are the rules it applies.

The daemon's state outlives upgrades, so a file of an earlier format version is migrated in place
(``migrate``) rather than refused: the schema of each version is kept here, exactly.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from logwarden.daemon.state.store import (
    MAX_PARTITION,
    START_EMPTY,
    STORE_FORMAT_VERSION,
    EntityRows,
    StoreHeader,
    damaged_row,
)
from logwarden.errors import StateStoreError

FLOAT32_LE = np.dtype("<f4")
"""State BLOBs are raw little-endian float32, whatever the machine's byte order."""

_HEADER_TABLE = """CREATE TABLE header (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        format_version INTEGER NOT NULL,
        model_sha256 TEXT NOT NULL,
        num_layers INTEGER NOT NULL,
        hidden_size INTEGER NOT NULL
    )"""
# A rowid table, not WITHOUT ROWID: rows carry ~1 KB of BLOBs, too large for a clustered key.
_ENTITIES_V1 = """CREATE TABLE entities (
        entity TEXT PRIMARY KEY,
        kafka_partition INTEGER NOT NULL,
        h BLOB NOT NULL,
        c BLOB NOT NULL,
        last_seen REAL NOT NULL,
        events_applied INTEGER NOT NULL
    )"""
# max_surprise may be NULL: SQLite stores NaN ("not tracked") as NULL.
_ENTITIES_V2 = """CREATE TABLE entities (
        entity TEXT PRIMARY KEY,
        kafka_partition INTEGER NOT NULL,
        h BLOB NOT NULL,
        c BLOB NOT NULL,
        last_seen REAL NOT NULL,
        events_applied INTEGER NOT NULL,
        count_profile INTEGER NOT NULL,
        max_surprise REAL
    )"""
_ENTITIES_V3 = """CREATE TABLE entities (
        entity TEXT PRIMARY KEY,
        kafka_partition INTEGER NOT NULL,
        h BLOB NOT NULL,
        c BLOB NOT NULL,
        last_seen REAL NOT NULL,
        events_applied INTEGER NOT NULL,
        count_profile INTEGER NOT NULL,
        max_surprise REAL,
        unknown_events INTEGER NOT NULL,
        topic TEXT NOT NULL
    )"""
_OFFSETS_TABLE = """CREATE TABLE offsets (
        topic TEXT NOT NULL,
        kafka_partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, kafka_partition)
    )"""

SCHEMA = (_HEADER_TABLE, _ENTITIES_V3, _OFFSETS_TABLE)
"""What a new file is created with (STORE_FORMAT_VERSION)."""

_ADDED_IN_V2 = ("count_profile INTEGER NOT NULL DEFAULT 0", "max_surprise REAL")
"""Columns a version 1 file gains: every saved session gets count_profile 0 and max_surprise NULL
(NaN, not tracked), so the count gate ignores it until it ends.  ADD COLUMN changes no row."""

_ADDED_IN_V3 = ("unknown_events INTEGER NOT NULL DEFAULT 0", "topic TEXT NOT NULL DEFAULT ''")
"""The columns a version 2 file gains.  A saved session counts no unknown event, as before version 3,
so one that held some may still get the count gate's alert at its end besides theirs.  Its topic is
set once, by ``_TOPIC_OF_MIGRATED_ROWS``."""

_TOPIC_OF_MIGRATED_ROWS = """UPDATE entities SET topic = COALESCE(
        (SELECT MIN(topic) FROM offsets WHERE offsets.kafka_partition = entities.kafka_partition),
        (SELECT MIN(topic) FROM offsets),
        '')"""
"""A version 2 row knew its partition number only: its topic is the first (by name) of the saved
offsets' topics with that number, else the first of all; with one input topic, the usual case, the
right one.  Set in the migration, once, so it never changes with the offsets saved later (it
rewrites every row: seconds for a million entities, once)."""

MIGRATIONS = {
    1: (
        *(f"ALTER TABLE entities ADD COLUMN {column}" for column in _ADDED_IN_V2),
        "UPDATE header SET format_version = 2 WHERE id = 1",
    ),
    2: (
        *(f"ALTER TABLE entities ADD COLUMN {column}" for column in _ADDED_IN_V3),
        _TOPIC_OF_MIGRATED_ROWS,
        "UPDATE header SET format_version = 3 WHERE id = 1",
    ),
}
"""The statements that bring a file of format version N to version N + 1."""

MIGRATION_NOTES = {
    1: "sessions in progress are left to the model's threshold (their event counts were not kept) "
    "until they end",
    2: "sessions in progress count no unknown event from before the upgrade: one that held one may get an "
    "unseen_counts alert at its end besides its unknown_template alert; with several input topics, an "
    "entity is taken to come from the first topic (by name) with its partition number",
}
"""What migrating from format version N means for the sessions in progress, for the log."""


def _with_added_columns(create: str, columns: tuple[str, ...]) -> str:
    """The SQL SQLite keeps for ``create`` after ``ALTER TABLE ... ADD COLUMN`` of each of ``columns``.

    SQLite splices ``", <column definition>"`` in before the closing parenthesis (the table has no
    table constraint for it to go before), so a migrated table's SQL differs from a new one's.
    """
    for column in columns:
        end = create.rindex(")")
        create = f"{create[:end]}, {column}{create[end:]}"
    return create


def _normalized(sql: str) -> str:
    return " ".join(sql.split())


def _tables(*statements: str) -> dict[str, frozenset[str]]:
    tables: dict[str, set[str]] = {}
    for statement in statements:
        tables.setdefault(statement.split()[2], set()).add(_normalized(statement))
    return {table: frozenset(texts) for table, texts in tables.items()}


# An existing file must hold these tables exactly (whitespace aside): changing them needs a new
# STORE_FORMAT_VERSION and a migration.
_ACCEPTED_TABLES = {
    1: _tables(_HEADER_TABLE, _ENTITIES_V1, _OFFSETS_TABLE),
    2: _tables(_HEADER_TABLE, _ENTITIES_V2, _OFFSETS_TABLE, _with_added_columns(_ENTITIES_V1, _ADDED_IN_V2)),
    3: _tables(
        *SCHEMA,
        _with_added_columns(_ENTITIES_V2, _ADDED_IN_V3),
        _with_added_columns(_ENTITIES_V1, _ADDED_IN_V2 + _ADDED_IN_V3),
    ),
}

STORAGE_CLASS = {type(None): "NULL", int: "an integer", float: "a real", str: "text", bytes: "a blob"}


def check_file(path: Path) -> None:
    """Refuse, before SQLite reads it, a path that is no database file or a file cut short.

    SQLite reads the missing end of a short file as zeros, so a copy cut inside the last page
    would load its last rows with zeros for their last bytes.  The header's page count is only
    compared when no write-ahead log holds pages the file does not have yet.
    """
    if not path.is_file():
        raise StateStoreError(f"{path}: not a regular file (a directory?); {START_EMPTY}")
    for beside in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        if (beside == path or beside.exists()) and not accessible(beside, os.R_OK | os.W_OK):
            raise StateStoreError(
                f"{beside}: not readable and writable by this process (owned by another user?); "
                "the state in it is untouched"
            )
    with open(path, "rb") as file:
        head = file.read(100)
        size = os.fstat(file.fileno()).st_size
    if size == 0:
        raise StateStoreError(f"{path}: empty file (a copy cut short, or a full disk); {START_EMPTY}")
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        raise StateStoreError(
            f"{path}: not a readable logwarden state store (no SQLite header); {START_EMPTY}"
        )
    journal = path.with_name(f"{path.name}-journal")
    if head[18:20] == b"\x02\x02" and journal.is_file() and journal.stat().st_size > 0:
        # SQLite checks for a hot journal before it looks at the WAL and plays it back into the
        # file whichever database it came from, then deletes it: the state would be overwritten.
        raise StateStoreError(
            f"{journal}: a rollback journal beside a database in WAL mode, which never writes one (copied "
            f"from another database?); opening the store would play it back into {path.name}. Move "
            f"{journal.name} out of the directory, and start again; the state itself is untouched"
        )
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big") if head[24:28] == head[92:96] else 0
    wal = wal_of(path)
    if page_size < 512 or (wal.is_file() and wal.stat().st_size > 32):
        return  # SQLite judges these: a bad page size, or pages still in the log
    if size % page_size or size < pages * page_size:
        raise StateStoreError(
            f"{path}: {size} bytes where its header counts {pages} pages of {page_size} bytes; "
            f"the file was cut short (a copy interrupted, a full disk); {START_EMPTY}"
        )


def read_header(conn: sqlite3.Connection, path: Path) -> StoreHeader:
    """The saved header, refusing a file without one or with a field of the wrong type."""
    try:
        stored = conn.execute(
            "SELECT model_sha256, num_layers, hidden_size, format_version FROM header WHERE id = 1"
        ).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such" not in str(exc):
            raise
        raise StateStoreError(
            f"{path}: not a logwarden state store, or a damaged one ({exc}); {START_EMPTY}"
        ) from exc
    if stored is None:
        raise StateStoreError(f"{path}: the header row is missing; the file is damaged; {START_EMPTY}")
    for name, value, kind in zip(
        ("model_sha256", "num_layers", "hidden_size", "format_version"),
        stored,
        (str, int, int, int),
        strict=True,
    ):
        if type(value) is not kind:
            raise StateStoreError(
                f"{path}: header field {name} holds {STORAGE_CLASS[type(value)]} "
                f"{value!r}, not {STORAGE_CLASS[kind]}; the file is damaged; {START_EMPTY}"
            )
    return StoreHeader(*stored)


def check_schema(conn: sqlite3.Connection, path: Path, version: int = STORE_FORMAT_VERSION) -> None:
    """Refuse a file whose tables differ from the ones logwarden creates (or migrates to) for ``version``.

    A dropped table would otherwise load as empty (state without its offsets replays events
    into it twice), and a table rebuilt without its keys or NOT NULLs lets NULLs and duplicate
    rows in.  Column edits (ALTER TABLE) rewrite the SQL SQLite keeps, so they show here too;
    the only ones accepted are exactly those ``MIGRATIONS`` make.
    """
    found = dict(conn.execute("SELECT name, sql FROM sqlite_schema WHERE type = 'table'").fetchall())
    for table, accepted in _ACCEPTED_TABLES[version].items():
        if table not in found:
            problem = f"table {table} is missing"
        elif _normalized(str(found[table])) not in accepted:
            problem = (
                f"table {table} is not as logwarden creates it for format_version {version}: "
                f"{_normalized(str(found[table]))}"
            )
        else:
            continue
        raise StateStoreError(
            f"{path}: {problem}; the file is damaged, edited or not a logwarden state store; " + START_EMPTY
        )


def migrate(conn: sqlite3.Connection, path: Path, version: int) -> None:
    """Bring a file of format ``version`` to STORE_FORMAT_VERSION, inside the caller's transaction.

    Its tables are checked to be exactly those of ``version`` first, so an edited or foreign file is
    refused as it was found (the caller rolls back), never half converted.
    """
    check_schema(conn, path, version)
    for step in range(version, STORE_FORMAT_VERSION):
        for statement in MIGRATIONS[step]:
            conn.execute(statement)


def decode_rows(batch: list[Any], header: StoreHeader, where: str) -> EntityRows:
    """A batch of ``entities`` rows as arrays, refusing a value of the wrong SQLite type or size.

    SQLite keeps whatever type a value was written with, whatever the column says, so an edited
    row may hold text where a BLOB or a number belongs.
    """
    entities, partitions, hs, cs, last_seen, events, profiles, surprises, unknown, topics = zip(
        *batch, strict=True
    )
    columns: tuple[tuple[str, tuple[Any, ...], set[type]], ...] = (
        ("entity", entities, {str}),
        ("kafka_partition", partitions, {int}),
        ("h", hs, {bytes}),
        ("c", cs, {bytes}),
        ("last_seen", last_seen, {float}),
        ("events_applied", events, {int}),
        ("count_profile", profiles, {int}),
        ("max_surprise", surprises, {float, type(None)}),
        ("unknown_events", unknown, {int}),
        ("topic", topics, {str}),
    )
    for column, values, kinds in columns:
        if not set(map(type, values)) <= kinds:
            i = next(i for i, value in enumerate(values) if type(value) not in kinds)
            found = STORAGE_CLASS[type(values[i])]
            written = " or ".join(sorted(STORAGE_CLASS[kind] for kind in kinds))
            raise damaged_row(where, entities[i], f"{found} in {column}, where logwarden writes {written}")
    row_bytes = header.row_bytes
    for column, blobs in (("h", hs), ("c", cs)):
        if set(map(len, blobs)) != {row_bytes}:
            i = next(i for i, blob in enumerate(blobs) if len(blob) != row_bytes)
            raise damaged_row(
                where,
                entities[i],
                f"a state BLOB {column} of {len(blobs[i])} bytes, not {row_bytes} "
                f"({header.num_layers}x{header.hidden_size} float32)",
            )
    partition = np.array(partitions, np.int64)
    outside = (partition < 0) | (partition > MAX_PARTITION)  # before the int32 cast could wrap them
    if outside.any():
        raise damaged_row(where, entities[int(np.argmax(outside))], "a kafka_partition outside 0..2**31-1")
    shape = (-1, header.num_layers, header.hidden_size)
    surprise = np.array([np.nan if value is None else value for value in surprises], np.float64)
    with np.errstate(over="ignore"):  # beyond float32 becomes infinity, which check_saved_rows refuses
        max_surprise = surprise.astype(np.float32)
    return EntityRows(
        entities=list(entities),
        partition=partition.astype(np.int32),
        h=np.frombuffer(b"".join(hs), FLOAT32_LE).reshape(shape).astype(np.float32),
        c=np.frombuffer(b"".join(cs), FLOAT32_LE).reshape(shape).astype(np.float32),
        last_seen=np.array(last_seen, np.float64),
        events_applied=np.array(events, np.int64),
        # Written as the int64 with the same bits (SQLite's integers are signed 64-bit).
        count_profile=np.array(profiles, np.int64).view(np.uint64),
        max_surprise=max_surprise,
        unknown_events=np.array(unknown, np.int64),
        topic=list(topics),
    )


def wal_of(path: Path) -> Path:
    """The write-ahead log SQLite keeps beside ``path`` in WAL mode."""
    return path.with_name(path.name + "-wal")


def accessible(path: Path, mode: int) -> bool:
    """``os.access`` for the effective user: SQLite's writes run as it (it differs only under seteuid)."""
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)
