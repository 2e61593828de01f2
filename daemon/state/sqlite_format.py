"""What a logwarden state file holds, and the checks that a file found on disk is one, undamaged.

A file found on disk may have met a full disk, a copy cut short, a manual edit or bit rot, so
nothing in it is trusted: it must hold the header row and exactly the schema below, and every value
read back is checked for its SQLite type and range.  Anything else is a StateStoreError naming the
file, never a state loaded wrong.  The store itself (daemon/state/sqlite_store.py) creates, writes and
reads the file; these are the rules it applies.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from logwarden.daemon.state.store import MAX_PARTITION, START_EMPTY, EntityRows, StoreHeader, damaged_row
from logwarden.errors import StateStoreError

FLOAT32_LE = np.dtype("<f4")
"""State BLOBs are raw little-endian float32, whatever the machine's byte order."""

# An existing file must hold these tables exactly (whitespace aside): changing them needs a new
# STORE_FORMAT_VERSION.
SCHEMA = (
    """CREATE TABLE header (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        format_version INTEGER NOT NULL,
        model_sha256 TEXT NOT NULL,
        num_layers INTEGER NOT NULL,
        hidden_size INTEGER NOT NULL
    )""",
    # A rowid table, not WITHOUT ROWID: rows carry ~1 KB of BLOBs, too large for a clustered key.
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
STORAGE_CLASS = {type(None): "NULL", int: "an integer", float: "a real", str: "text", bytes: "a blob"}


def check_file(path: Path) -> None:
    """Refuse, before SQLite reads it, a path that is no database file or a file cut short.

    SQLite reads the missing end of a short file as zeros, so a copy cut inside the last page
    would load its last rows with zeros for their last bytes.  The header's page count is only
    compared when no write-ahead log holds pages the file does not have yet.
    """
    if not path.is_file():
        raise StateStoreError(f"{path}: not a regular file (a directory?); {START_EMPTY}")
    if not accessible(path, os.R_OK | os.W_OK):
        raise StateStoreError(
            f"{path}: not readable and writable by this process (owned by another user?); "
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


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file whose tables differ from the ones ``SCHEMA`` creates.

    A dropped table would otherwise load as empty (state without its offsets replays events
    into it twice), and a table rebuilt without its keys or NOT NULLs lets NULLs and duplicate
    rows in.  Column edits (ALTER TABLE) rewrite the SQL SQLite keeps, so they show here too.
    """
    found = dict(conn.execute("SELECT name, sql FROM sqlite_schema WHERE type = 'table'").fetchall())
    for statement in SCHEMA:
        table = statement.split()[2]
        if table not in found:
            problem = f"table {table} is missing"
        elif " ".join(str(found[table]).split()) != " ".join(statement.split()):
            problem = f"table {table} is not as logwarden creates it: {' '.join(str(found[table]).split())}"
        else:
            continue
        raise StateStoreError(
            f"{path}: {problem}; the file is damaged, edited or not a logwarden state store; " + START_EMPTY
        )


def decode_rows(batch: list[Any], header: StoreHeader, where: str) -> EntityRows:
    """A batch of ``entities`` rows as arrays, refusing a value of the wrong SQLite type or size.

    SQLite keeps whatever type a value was written with, whatever the column says, so an edited
    row may hold text where a BLOB or a number belongs.
    """
    entities, partitions, hs, cs, last_seen, events = zip(*batch, strict=True)
    for column, values, kind in (
        ("entity", entities, str),
        ("kafka_partition", partitions, int),
        ("h", hs, bytes),
        ("c", cs, bytes),
        ("last_seen", last_seen, float),
        ("events_applied", events, int),
    ):
        if set(map(type, values)) != {kind}:
            i = next(i for i, value in enumerate(values) if type(value) is not kind)
            found = STORAGE_CLASS[type(values[i])]
            raise damaged_row(
                where, entities[i], f"{found} in {column}, where logwarden writes {STORAGE_CLASS[kind]}"
            )
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
    return EntityRows(
        entities=list(entities),
        partition=partition.astype(np.int32),
        h=np.frombuffer(b"".join(hs), FLOAT32_LE).reshape(shape).astype(np.float32),
        c=np.frombuffer(b"".join(cs), FLOAT32_LE).reshape(shape).astype(np.float32),
        last_seen=np.array(last_seen, np.float64),
        events_applied=np.array(events, np.int64),
    )


def wal_of(path: Path) -> Path:
    """The write-ahead log SQLite keeps beside ``path`` in WAL mode."""
    return path.with_name(path.name + "-wal")


def accessible(path: Path, mode: int) -> bool:
    """``os.access`` for the effective user: SQLite's writes run as it (it differs only under seteuid)."""
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)
