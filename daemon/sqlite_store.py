"""The durable StateStore: one SQLite file per daemon, state and offsets committed in one transaction.

SQLite's transaction is what makes a checkpoint atomic: a crash before ``COMMIT`` leaves the
previous checkpoint, a crash after leaves the new one.  State is stored as raw little-endian
float32 BLOBs whose shape comes from the header row, never pickled.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path

import numpy as np

from logwarden.daemon.state_store import (
    DEFAULT_CHUNK_ROWS,
    EntityRows,
    LoadedCheckpoint,
    StateChanges,
    StoreHeader,
    TopicPartition,
    check_header,
    check_offsets,
    check_rows_shape,
)
from logwarden.errors import StateStoreError

DB_FILE = "state.sqlite3"
LOCK_FILE = "lock"
"""Held (flock) by the process that has the store open: two daemons on one state.dir would each
overwrite the other's checkpoints, so the second is refused at start, naming the first's pid."""
_FLOAT32_LE = np.dtype("<f4")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS header (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        format_version INTEGER NOT NULL,
        model_sha256 TEXT NOT NULL,
        num_layers INTEGER NOT NULL,
        hidden_size INTEGER NOT NULL
    )""",
    # A rowid table, not WITHOUT ROWID: rows carry ~1 KB of BLOBs, too large for a clustered key.
    """CREATE TABLE IF NOT EXISTS entities (
        entity TEXT PRIMARY KEY,
        kafka_partition INTEGER NOT NULL,
        h BLOB NOT NULL,
        c BLOB NOT NULL,
        last_seen REAL NOT NULL,
        events_applied INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS offsets (
        topic TEXT NOT NULL,
        kafka_partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, kafka_partition)
    )""",
)
_UPSERT_ENTITY = """INSERT INTO entities (entity, kafka_partition, h, c, last_seen, events_applied)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (entity) DO UPDATE SET kafka_partition = excluded.kafka_partition, h = excluded.h,
        c = excluded.c, last_seen = excluded.last_seen, events_applied = excluded.events_applied"""
_UPSERT_OFFSET = """INSERT INTO offsets (topic, kafka_partition, next_offset) VALUES (?, ?, ?)
    ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset"""


class SqliteStateStore:
    """StateStore in ``<directory>/state.sqlite3`` (WAL journal)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        busy_timeout_seconds: float = 5.0,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_FILE
        self._chunk_rows = chunk_rows
        self._busy_timeout_seconds = busy_timeout_seconds
        self._conn: sqlite3.Connection | None = None
        self._header: StoreHeader | None = None
        self._lock_fd: int | None = None

    def open(self, header: StoreHeader) -> None:
        """Create the directory and file if needed, or check the saved header against ``header``."""
        if self._conn is not None:
            raise StateStoreError(f"{self.path}: state store is already open")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateStoreError(f"{self.directory}: cannot create the state directory: {exc}") from exc
        self._lock_directory()
        try:
            self._open_database(header)
        except BaseException:
            self._unlock_directory()
            raise

    def _open_database(self, header: StoreHeader) -> None:
        conn = None
        try:
            # isolation_level=None: transactions are begun and ended explicitly in save_checkpoint.
            # check_same_thread=False: checkpoints are written by the daemon's snapshot thread,
            # one at a time (the Checkpointer never overlaps them), while open/load/close run on
            # the main thread.
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout_seconds,
            )
            # Rows are ~1 KB of BLOBs: 8 KiB pages halve checkpoint time against the 4 KiB default.
            # Only takes effect on a new file, before WAL is switched on.
            conn.execute("PRAGMA page_size=8192")
            conn.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL keeps every commit atomic; a power loss may drop the last checkpoint,
            # which only means replaying from the one before it.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-32768")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            stored = conn.execute(
                "SELECT model_sha256, num_layers, hidden_size, format_version FROM header WHERE id = 1"
            ).fetchone()
            if stored is None:
                conn.execute(
                    "INSERT INTO header (id, format_version, model_sha256, num_layers, hidden_size)"
                    " VALUES (1, ?, ?, ?, ?)",
                    (header.format_version, header.model_sha256, header.num_layers, header.hidden_size),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StateStoreError(
                    f"{self.path}: locked by another process ({exc}); close whatever holds it open "
                    "(an sqlite3 shell, a backup tool) and start again; the state itself is intact"
                ) from exc
            raise StateStoreError(
                f"{self.path}: not a readable logwarden state store ({exc}); "
                "move or delete it to start from empty state"
            ) from exc
        if stored is not None:
            try:
                check_header(StoreHeader(*stored), header, str(self.path))
            except StateStoreError:
                conn.close()
                raise
        self._conn, self._header = conn, header

    def load(self) -> LoadedCheckpoint:
        """Saved offsets now; rows lazily, ``chunk_rows`` at a time."""
        conn, header = self._require_open()
        try:
            offsets = {
                (topic, partition): next_offset
                for topic, partition, next_offset in conn.execute(
                    "SELECT topic, kafka_partition, next_offset FROM offsets"
                )
            }
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot read offsets: {exc}") from exc
        return LoadedCheckpoint(self._iter_rows(conn, header), offsets)

    def save_checkpoint(
        self,
        changes: StateChanges,
        offsets: Mapping[TopicPartition, int],
        *,
        released: Collection[TopicPartition] = (),
        midway: Callable[[], None] | None = None,
    ) -> None:
        """Deletes, upserts, ``midway()``, offsets: one ``BEGIN IMMEDIATE … COMMIT``, rolled back on error."""
        conn, header = self._require_open()
        checked_offsets = check_offsets(offsets)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM entities WHERE entity = ?", ((e,) for e in changes.deletes))
            for chunk in changes.upserts.chunks(self._chunk_rows):
                check_rows_shape(chunk, header)
                conn.executemany(_UPSERT_ENTITY, _entity_params(chunk, header.row_bytes))
            if midway is not None:
                midway()
            conn.executemany(
                "DELETE FROM offsets WHERE topic = ? AND kafka_partition = ?",
                ((topic, partition) for topic, partition in released),
            )
            conn.executemany(
                _UPSERT_OFFSET, ((topic, partition, o) for (topic, partition), o in checked_offsets.items())
            )
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StateStoreError(f"{self.path}: checkpoint not saved: {exc}") from exc
            raise

    def close(self) -> None:
        """Close the connection (SQLite folds the WAL into the main file on last close)."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._header = None
        self._unlock_directory()

    def _lock_directory(self) -> None:
        path = self.directory / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateStoreError(f"{path}: cannot create the state directory's lock file: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateStoreError(
                f"{self.directory}: in use by another logwarden process (pid {holder}); each instance "
                "needs its own state.dir"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StateStoreError(f"{path}: cannot lock the state directory: {exc}") from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError as exc:
            os.close(fd)  # also releases the lock
            raise StateStoreError(f"{path}: cannot write the lock file: {exc}") from exc
        self._lock_fd = fd

    def _unlock_directory(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _require_open(self) -> tuple[sqlite3.Connection, StoreHeader]:
        if self._conn is None or self._header is None:
            raise StateStoreError(f"{self.path}: state store is not open (call open(header) first)")
        return self._conn, self._header

    def _iter_rows(self, conn: sqlite3.Connection, header: StoreHeader) -> Iterator[EntityRows]:
        row_bytes = header.row_bytes
        shape = (-1, header.num_layers, header.hidden_size)
        try:
            cursor = conn.execute(
                "SELECT entity, kafka_partition, h, c, last_seen, events_applied FROM entities"
            )
            while batch := cursor.fetchmany(self._chunk_rows):
                entities, partitions, hs, cs, last_seen, events = zip(*batch, strict=True)
                if any(len(b) != row_bytes for b in hs) or any(len(b) != row_bytes for b in cs):
                    raise StateStoreError(
                        f"{self.path}: a state BLOB is not {row_bytes} bytes "
                        f"({header.num_layers}x{header.hidden_size} float32); the file is damaged"
                    )
                yield EntityRows(
                    entities=list(entities),
                    partition=np.array(partitions, np.int32),
                    h=np.frombuffer(b"".join(hs), _FLOAT32_LE).reshape(shape).astype(np.float32),
                    c=np.frombuffer(b"".join(cs), _FLOAT32_LE).reshape(shape).astype(np.float32),
                    last_seen=np.array(last_seen, np.float64),
                    events_applied=np.array(events, np.int64),
                )
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot read saved state: {exc}") from exc


def _entity_params(rows: EntityRows, row_bytes: int) -> list[tuple[str, int, bytes, bytes, float, int]]:
    h_bytes = np.ascontiguousarray(rows.h, _FLOAT32_LE).tobytes()
    c_bytes = np.ascontiguousarray(rows.c, _FLOAT32_LE).tobytes()
    partitions = rows.partition.tolist()
    last_seen = rows.last_seen.tolist()
    events = rows.events_applied.tolist()
    return [
        (
            entity,
            partitions[i],
            h_bytes[i * row_bytes : (i + 1) * row_bytes],
            c_bytes[i * row_bytes : (i + 1) * row_bytes],
            last_seen[i],
            events[i],
        )
        for i, entity in enumerate(rows.entities)
    ]
