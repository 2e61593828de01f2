"""The durable StateStore: one SQLite file per daemon, state and offsets committed in one transaction.

SQLite's transaction is what makes a checkpoint atomic: a crash before ``COMMIT`` leaves the
previous checkpoint, a crash after leaves the new one.  State is stored as raw little-endian
float32 BLOBs whose shape comes from the header row, never pickled.

A new store is created under another name and renamed into place, so an existing file is never
legitimately empty or partial; an existing one is checked before use, and every row as it is read
back, by the rules of daemon/state/sqlite_format.py.  A file of an earlier format version is migrated
in the transaction that checks it, so it is either converted whole or left as it was.
"""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import structlog

from logwarden.daemon.state.sqlite_format import (
    FLOAT32_LE,
    MIGRATION_NOTES,
    MIGRATIONS,
    SCHEMA,
    accessible,
    check_file,
    check_schema,
    decode_rows,
    migrate,
    read_header,
    wal_of,
)
from logwarden.daemon.state.store import (
    DEFAULT_CHUNK_ROWS,
    START_EMPTY,
    STORE_FORMAT_VERSION,
    EntityRows,
    LoadedCheckpoint,
    StateChanges,
    StoreHeader,
    TopicPartition,
    check_header,
    check_offsets,
    check_rows_shape,
    check_saved_offsets,
    check_saved_rows,
)
from logwarden.errors import StateStoreError

log = structlog.get_logger("logwarden.daemon")

DB_FILE = "state.sqlite3"
LOCK_FILE = "lock"
"""Held (flock) by the process that has the store open: two daemons on one state.dir would each
overwrite the other's checkpoints, so the second is refused at start, naming the first's pid."""
WAL_SIZE_LIMIT_BYTES = 64 << 20
"""What the write-ahead log is cut back to once SQLite has copied it into the database and starts it
over.  Without a limit the -wal keeps the size of the largest save for as long as the daemon runs (a
save of 60,000 rows of 2x65 left 68 MiB after every later save of 500; a catch-up or shutdown save of
a million entities, about the size of the state file).  Routine saves (8 MiB of autocheckpoint plus
one save of tens of thousands of rows) stay under it, so they never pay for the cut."""

_ENTITY_COLUMNS = (
    "entity, kafka_partition, h, c, last_seen, events_applied, count_profile, max_surprise, unknown_events, "
    "topic"
)
_UPSERT_ENTITY = f"""INSERT INTO entities ({_ENTITY_COLUMNS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (entity) DO UPDATE SET kafka_partition = excluded.kafka_partition, h = excluded.h,
        c = excluded.c, last_seen = excluded.last_seen, events_applied = excluded.events_applied,
        count_profile = excluded.count_profile, max_surprise = excluded.max_surprise,
        unknown_events = excluded.unknown_events, topic = excluded.topic"""
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
        self._directory_fd: int | None = None
        self._file_id: tuple[int, int] | None = None

    def open(self, header: StoreHeader) -> None:
        """Create the directory and a new store if needed, or check an existing one against ``header``."""
        if self._conn is not None:
            raise StateStoreError(f"{self.path}: state store is already open")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateStoreError(f"{self.directory}: cannot create the state directory: {exc}") from exc
        if not accessible(self.directory, os.W_OK | os.X_OK):
            # Checked here because SQLite's own error for it ("unable to open database file") reads
            # like damage, and the advice for damage (move the store aside) would not help.
            raise StateStoreError(
                f"{self.directory}: the state directory is not writable by this process (a read-only "
                "file system, or owned by another user); the state in it is untouched"
            )
        self._lock_directory()
        try:
            if not os.path.lexists(self.path):
                self._create(header)
            self._open_database(header)
        except BaseException:
            self._unlock_directory()
            raise

    def _create(self, header: StoreHeader) -> None:
        """Build a new store under a temporary name, then rename it into place.

        So a ``state.sqlite3`` that exists was always created whole, and an empty or partial one is
        damage (a copy cut short, a full disk), never a first start that was interrupted.
        """
        refuse_orphan_wal(self.path)
        staging = self.path.with_name(self.path.name + ".new")
        try:
            for leftover in (staging, wal_of(staging), staging.with_name(staging.name + "-shm")):
                leftover.unlink(missing_ok=True)
            conn = sqlite3.connect(staging, isolation_level=None)
            try:
                # Rows are ~1 KB of BLOBs: 8 KiB pages halve checkpoint time against the 4 KiB
                # default.  The page size only takes effect before WAL is switched on.
                conn.execute("PRAGMA page_size=8192")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO header (id, format_version, model_sha256, num_layers, hidden_size)"
                    " VALUES (1, ?, ?, ?, ?)",
                    (header.format_version, header.model_sha256, header.num_layers, header.hidden_size),
                )
                conn.execute("COMMIT")
            finally:
                conn.close()  # the last close folds the WAL into the file and deletes it
            os.replace(staging, self.path)
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"{self.path}: cannot create the state store: {exc}") from exc

    def _open_database(self, header: StoreHeader) -> None:
        check_file(self.path)
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
            # The write lock is taken at once, so a program holding the file is found at start.
            conn.execute("BEGIN IMMEDIATE")
            stored = read_header(conn, self.path)
            # The same model and shape first: a file that is refused must be left as it was.
            migrated = check_stored_header(stored, header, self.path)
            if migrated:
                migrate(conn, self.path, stored.format_version)
            check_schema(conn, self.path)
            conn.execute("COMMIT")
            if migrated:
                log.info(
                    "state_store_migrated",
                    path=str(self.path),
                    from_format_version=stored.format_version,
                    format_version=STORE_FORMAT_VERSION,
                    note="; ".join(
                        MIGRATION_NOTES[v] for v in range(stored.format_version, STORE_FORMAT_VERSION)
                    ),
                )
            # Only now: switching a file to WAL writes to it, and a foreign file must stay untouched.
            conn.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL keeps every commit atomic; a power loss may drop the last checkpoint,
            # which only means replaying from the one before it.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-32768")
            conn.execute(f"PRAGMA journal_size_limit={int(WAL_SIZE_LIMIT_BYTES)}")
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise StateStoreError(describe_open_error(self.path, exc)) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._conn, self._header = conn, header
        self._file_id = _file_id(self.path)

    def load(self) -> LoadedCheckpoint:
        """Saved offsets now; rows lazily, ``chunk_rows`` at a time, each checked before it is handed out."""
        conn, header = self._require_open()
        try:
            stored = conn.execute("SELECT topic, kafka_partition, next_offset FROM offsets").fetchall()
            # Counted through the primary-key index (SQLite picks it as the narrower b-tree): 10 ms for
            # a million rows, against the table scan of the rows themselves.
            indexed_rows = conn.execute("SELECT count(*) FROM entities").fetchone()[0]
        except sqlite3.Error as exc:
            raise StateStoreError(
                f"{self.path}: cannot read the saved checkpoint: {exc}; {START_EMPTY}"
            ) from exc
        offsets = check_saved_offsets(stored, str(self.path))
        return LoadedCheckpoint(self._iter_rows(conn, header, indexed_rows), offsets)

    def evict_least_recently_seen(self, capacity: int) -> int:
        """Delete the saved entities a table of ``capacity`` cannot hold, least recently seen first
        (by ``last_seen``, then name, so every start picks the same); returns how many.

        Done at start, before the rows are loaded and before the daemon reports ready: queued for
        the first save instead, half a million deletes made that save take 13-24 s, and a stop
        waited for it.  The saved offsets stay as they are: a crash after this start drops nothing
        more, one before it drops the same entities again.
        """
        conn, _ = self._require_open()
        self._check_still_in_place()
        try:
            cursor = conn.execute(
                "DELETE FROM entities WHERE entity IN (SELECT entity FROM entities ORDER BY last_seen, "
                "entity LIMIT max(0, (SELECT count(*) FROM entities) - ?))",
                (capacity,),
            )
            return cursor.rowcount
        except sqlite3.Error as exc:
            raise StateStoreError(describe_save_error(self.path, exc)) from exc

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
        self._check_still_in_place()
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
                raise StateStoreError(describe_save_error(self.path, exc)) from exc
            raise

    def _check_still_in_place(self) -> None:
        """Refuse to save into a file that is no longer ``self.path``: deleted, moved aside or replaced.

        SQLite writes on through its open descriptors (in WAL mode it does not notice), so without
        this every later checkpoint would be reported as saved while the next start finds no state,
        or another file, at the path.
        """
        try:
            found = _file_id(self.path)
        except OSError as exc:
            found, problem = None, f"it is gone ({exc.strerror})"
        else:
            problem = "another file is there now"
        if found != self._file_id:
            raise StateStoreError(
                f"{self.path}: the state store was deleted, moved or replaced while the daemon ran "
                f"({problem}); checkpoints written to the file it had open would never be read again, so "
                "none is written. The next start begins from what is at that path then (nothing: empty "
                "state, resumed from the consumer group's offsets); see 'A damaged state store' in "
                "deploy/README.md"
            )

    def close(self) -> None:
        """Close the connection (SQLite folds the WAL into the main file on last close)."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._header = None
        self._file_id = None
        self._unlock_directory()

    def _lock_directory(self) -> None:
        # The directory itself is locked as well as the lock file: the file is easily taken for a stale
        # pid file and deleted, after which a second daemon could lock a new one and open the same store.
        try:
            directory_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise StateStoreError(f"{self.directory}: cannot open the state directory: {exc}") from exc
        try:
            self._lock_fd = self._lock_file(directory_fd)
        except BaseException:
            os.close(directory_fd)
            raise
        self._directory_fd = directory_fd

    def _lock_file(self, directory_fd: int) -> int:
        path = self.directory / LOCK_FILE
        try:
            fcntl.flock(directory_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = path.read_bytes()[:32].decode("ascii", "replace").strip() or "unknown"
            except OSError:
                holder = f"unknown: its lock file {LOCK_FILE} was deleted"
            raise StateStoreError(
                f"{self.directory}: in use by another logwarden process (pid {holder}); each instance "
                "needs its own state.dir"
            ) from None
        except OSError:
            pass  # a file system that cannot lock a directory (NFS emulates flock): the lock file still does
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
        return fd

    def _unlock_directory(self) -> None:
        # Closing a descriptor releases its flock.
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._directory_fd is not None:
            os.close(self._directory_fd)
            self._directory_fd = None

    def _require_open(self) -> tuple[sqlite3.Connection, StoreHeader]:
        if self._conn is None or self._header is None:
            raise StateStoreError(f"{self.path}: state store is not open (call open(header) first)")
        return self._conn, self._header

    def _iter_rows(
        self, conn: sqlite3.Connection, header: StoreHeader, indexed_rows: int
    ) -> Iterator[EntityRows]:
        read = 0
        try:
            cursor = conn.execute(f"SELECT {_ENTITY_COLUMNS} FROM entities")
            while batch := cursor.fetchmany(self._chunk_rows):
                rows = decode_rows(batch, header, str(self.path))
                check_saved_rows(rows, str(self.path))
                read += len(rows)
                yield rows
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot read saved state: {exc}; {START_EMPTY}") from exc
        if read != indexed_rows:
            # What a state.sqlite3-wal applied to a database it does not belong to (an older backup
            # put back beside it) typically leaves: the rows and their index come from different
            # checkpoints.
            raise StateStoreError(
                f"{self.path}: the entities table holds {read} rows but its index {indexed_rows}; the "
                f"file is damaged; {START_EMPTY}"
            )


def _file_id(path: Path) -> tuple[int, int]:
    """The device and inode of ``path``: which file it names."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _entity_params(
    rows: EntityRows, row_bytes: int
) -> list[tuple[str, int, bytes, bytes, float, int, int, float | None, int, str]]:
    h_bytes = np.ascontiguousarray(rows.h, FLOAT32_LE).tobytes()
    c_bytes = np.ascontiguousarray(rows.c, FLOAT32_LE).tobytes()
    partitions = rows.partition.tolist()
    last_seen = rows.last_seen.tolist()
    events = rows.events_applied.tolist()
    # SQLite's integers are signed 64-bit: the hash is stored as the int64 with the same bits.
    profiles = rows.count_profile.view(np.int64).tolist()
    surprises = [None if math.isnan(value) else value for value in rows.max_surprise.tolist()]
    unknown = rows.unknown_events.tolist()
    return [
        (
            entity,
            partitions[i],
            h_bytes[i * row_bytes : (i + 1) * row_bytes],
            c_bytes[i * row_bytes : (i + 1) * row_bytes],
            last_seen[i],
            events[i],
            profiles[i],
            surprises[i],
            unknown[i],
            rows.topic[i],
        )
        for i, entity in enumerate(rows.entities)
    ]


_LOCKED_ERRORS = ("SQLITE_BUSY", "SQLITE_LOCKED")
_CANNOT_WRITE_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")


def refuse_orphan_wal(path: Path) -> None:
    """StateStoreError for a write-ahead log left where ``path``, its database, is missing: a new store
    would be created beside it and SQLite would apply that log to it."""
    wal = wal_of(path)
    if os.path.lexists(wal):
        raise StateStoreError(
            f"{wal}: a write-ahead log without its database {path.name} (was the database "
            f"moved or deleted alone?); put the database back, or {START_EMPTY}"
        )


def check_stored_header(stored: StoreHeader, header: StoreHeader, path: Path) -> bool:
    """Refuse a store written for another model or shape; True when its format is one to migrate."""
    migrated = stored.format_version in MIGRATIONS and header.format_version == STORE_FORMAT_VERSION
    check_header(
        replace(stored, format_version=header.format_version) if migrated else stored, header, str(path)
    )
    return migrated


@dataclass(frozen=True)
class SavedState:
    """What a start would restore from a state directory (``inspect_saved_state``)."""

    path: Path
    entities: int | None
    """Entities saved, or None when there is no store yet (the first start creates it)."""


def inspect_saved_state(directory: str | Path, header: StoreHeader) -> SavedState:
    """The store in ``directory`` as a start would find it, read only: never created, written or locked,
    so ``run --check`` may read it while the daemon runs.  StateStoreError where a start would refuse
    it: written for another model or shape, or damaged."""
    path = Path(directory) / DB_FILE
    if not os.path.lexists(path):
        refuse_orphan_wal(path)  # as the start does
        return SavedState(path, None)
    check_file(path)
    # A read-only open of a closed store (no -wal) would create its -wal and -shm files, owned by
    # whoever runs the check: a daemon running as another user could then not open it.  Closed, the
    # whole state is in the file, which "immutable" reads creating nothing; open, its files exist.
    wal = wal_of(path)
    has_wal = os.path.lexists(wal)
    in_use = has_wal and os.path.lexists(path.with_name(path.name + "-shm"))
    if has_wal and not in_use and wal.stat().st_size > 0:
        # A -wal without its -shm (a copy of the directory that left the index out): "immutable"
        # would not read the log, which may hold the latest checkpoints a start replays, and "ro"
        # would create the -shm here.  Read a private copy of the two files instead.
        with tempfile.TemporaryDirectory(prefix="logwarden-check-") as scratch:
            copy = Path(scratch) / DB_FILE
            shutil.copyfile(path, copy)
            shutil.copyfile(wal, wal_of(copy))
            return SavedState(path, _count_saved(copy, "mode=ro", header, path))
    return SavedState(path, _count_saved(path, "mode=ro" if in_use else "immutable=1", header, path))


def _count_saved(database: Path, mode: str, header: StoreHeader, path: Path) -> int:
    """Entities saved in ``database`` (``path`` or a copy of it), opened with ``mode``, its header checked."""
    conn = None
    try:
        conn = sqlite3.connect(f"{database.resolve().as_uri()}?{mode}", uri=True, timeout=5.0)
        check_stored_header(read_header(conn, path), header, path)
        return int(conn.execute("SELECT count(*) FROM entities").fetchone()[0])
    except sqlite3.Error as exc:
        raise StateStoreError(describe_open_error(path, exc)) from exc
    finally:
        if conn is not None:
            conn.close()


def describe_save_error(path: Path, exc: sqlite3.Error) -> str:
    """Why a checkpoint was not saved; for a write the system refused, that the saved state is intact.

    SQLite reports a write cut by a file size limit (``LimitFSIZE=``, ``ulimit -f``) as a plain
    "disk I/O error", which reads like a failing disk or damage.
    """
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name.startswith(_CANNOT_WRITE_ERRORS):
        return (
            f"{path}: checkpoint not saved: {exc} ({name}): is the disk full, the file system read-only, "
            "or a file size limit (LimitFSIZE=, ulimit -f) reached? The last saved checkpoint is intact: "
            "fix that and start again, the daemon replays from it"
        )
    return f"{path}: checkpoint not saved: {exc} ({name or type(exc).__name__})"


def describe_open_error(path: Path, exc: sqlite3.Error) -> str:
    """Why an existing store could not be opened, with the advice that fits, by SQLite's error name.

    Why it matters: "move the state aside" throws away every entity's state and the saved offsets,
    right for a damaged file and wrong for a full disk or a ``-wal``/``-shm`` file left behind by
    another user (a root ``sqlite3`` shell), where the file is intact and freeing space or fixing
    the owner is the whole fix.  Only what SQLite does not name as one of those is taken for damage.
    """
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name.startswith(_LOCKED_ERRORS) or "locked" in str(exc):
        return (
            f"{path}: locked by another process ({exc}); close whatever holds it open "
            "(an sqlite3 shell, a backup tool) and start again; the state itself is intact"
        )
    if name.startswith(_CANNOT_WRITE_ERRORS):
        return (
            f"{path}: cannot be opened for writing ({exc}, {name}): is the disk full, or are its "
            f"{path.name}-wal and {path.name}-shm files beside it owned by another user? The state in "
            "it is untouched: free space or give the files back to the service user, and start again"
        )
    return f"{path}: not a readable logwarden state store ({exc}); {START_EMPTY}"
