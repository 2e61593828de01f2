"""The state store port: checkpoints of per-entity LSTM state and input offsets, saved together.

A checkpoint pairs the state of every entity with the Kafka offsets of the events folded into
it, so a restart resumes from a consistent cut: either the old checkpoint or the new one,
never state from one and offsets from the other.  Rows travel as arrays with a header
(format version, model sha256, shape), never pickled.

This module holds the port's data types, the ``StateStore`` Protocol and the checks every adapter
applies; ``sqlite_store`` is the durable adapter, ``memory_store`` the one for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Protocol, overload, runtime_checkable

import numpy as np

from logwarden.errors import StateStoreError, shown

STORE_FORMAT_VERSION = 3
"""2 added each entity's ``count_profile`` and ``max_surprise``, 3 its ``unknown_events`` and the
``topic`` of its last event; files of an earlier version are migrated on open."""
DEFAULT_CHUNK_ROWS = 4096
MAX_PARTITION = 2**31 - 1
"""Kafka partition numbers are int32."""

START_EMPTY = (
    "move the state directory aside (or delete it) to start from empty state; "
    "see 'A damaged state store' in deploy/README.md"
)
"""The operator's way out of a damaged store, ending every message that reports damage."""

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class StoreHeader:
    """What a store's rows belong to; a store opened with a different header is refused."""

    model_sha256: str
    num_layers: int
    hidden_size: int
    format_version: int = STORE_FORMAT_VERSION

    @property
    def row_bytes(self) -> int:
        """Bytes of one entity's h (or c): ``num_layers * hidden_size`` float32."""
        return self.num_layers * self.hidden_size * 4


def check_header(stored: StoreHeader, expected: StoreHeader, where: str) -> None:
    """Raise StateStoreError naming the first field where ``stored`` differs from ``expected``."""
    for spec in fields(StoreHeader):
        was, wanted = getattr(stored, spec.name), getattr(expected, spec.name)
        if was != wanted and spec.name == "format_version":
            raise StateStoreError(
                f"{where}: saved state has format_version={was!r} "
                f"but the daemon runs with format_version={wanted!r}; "
                "this logwarden cannot read a state store of that format (written by another version of "
                "logwarden?). Delete or move the state directory to start from empty state, or run the "
                "logwarden version that wrote it"
            )
        if was != wanted:
            raise StateStoreError(
                f"{where}: saved state has {spec.name}={was!r} "
                f"but the daemon runs with {spec.name}={wanted!r}; "
                "the saved LSTM state cannot be used with this model. Delete or move the state directory to "
                "start from empty state, or run the daemon with the model that wrote it"
            )


class TopicNames(Sequence[str]):
    """Topic names of rows, kept as ids into a list of names (the state table's ``topics``).

    Why: the table hands a checkpoint's rows out on the event loop, where a Python string per row
    cost 1.5-2 ms per 50,000 rows; the names are looked up when a store writes the rows.
    ``names`` must only grow while the rows are in use (the table's list only ever appends).
    """

    def __init__(self, ids: np.ndarray, names: Sequence[str]) -> None:
        self._ids = ids
        self._names = names

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> TopicNames: ...
    def __getitem__(self, index: int | slice) -> str | TopicNames:
        if isinstance(index, slice):
            return TopicNames(self._ids[index], self._names)
        return self._names[int(self._ids[index])]


@dataclass(frozen=True)
class EntityRows:
    """A batch of entity states in storage layout: row ``i`` describes ``entities[i]``.

    ``h`` and ``c`` are ``[N, L, H]`` float32: row ``i`` is the BLOB a store writes for entity
    ``i``.  They may be transposed views of ``[L, N, H]`` copies (how the state table hands rows
    out), so a store that needs each row's bytes contiguous makes them so (``np.ascontiguousarray``).
    ``count_profile`` and ``max_surprise`` are what the count gate judges at the session's end; a NaN
    ``max_surprise`` marks a session whose counts are not tracked (restored from a version 1 store).
    ``unknown_events`` counts the session's events that matched no template: each alerted when it
    came, so the session's end does not alert again for its counts.  ``topic`` and ``partition`` say
    where the entity's last event came from.
    """

    entities: Sequence[str]
    partition: np.ndarray  # int32 [N]
    h: np.ndarray  # float32 [N, L, H]
    c: np.ndarray  # float32 [N, L, H]
    last_seen: np.ndarray  # float64 [N]
    events_applied: np.ndarray  # int64 [N]
    count_profile: np.ndarray  # uint64 [N]
    max_surprise: np.ndarray  # float32 [N], NaN = not tracked
    unknown_events: np.ndarray  # int64 [N]
    topic: Sequence[str]

    def __post_init__(self) -> None:
        n = len(self.entities)
        if self.h.ndim != 3 or self.h.shape != self.c.shape:
            raise ValueError(f"h and c must both be [N, L, H], got {self.h.shape} and {self.c.shape}")
        lengths = {
            n,
            len(self.partition),
            self.h.shape[0],
            len(self.last_seen),
            len(self.events_applied),
            len(self.count_profile),
            len(self.max_surprise),
            len(self.unknown_events),
            len(self.topic),
        }
        if len(lengths) != 1:
            raise ValueError(f"EntityRows columns differ in length: {sorted(lengths)}")
        # The hash uses all 64 bits: a signed or float array would change it on its way to a store.
        if self.count_profile.dtype != np.uint64:
            raise ValueError(f"count_profile must be uint64, got {self.count_profile.dtype}")
        if self.max_surprise.dtype.kind != "f":
            raise ValueError(
                f"max_surprise must be floating point (NaN = not tracked), got {self.max_surprise.dtype}"
            )

    def __len__(self) -> int:
        return len(self.entities)

    def chunks(self, rows: int) -> Iterator[EntityRows]:
        """Consecutive slices of at most ``rows`` rows (views, no copy)."""
        for start in range(0, len(self), rows):
            end = start + rows
            yield EntityRows(
                entities=self.entities[start:end],
                partition=self.partition[start:end],
                h=self.h[start:end],
                c=self.c[start:end],
                last_seen=self.last_seen[start:end],
                events_applied=self.events_applied[start:end],
                count_profile=self.count_profile[start:end],
                max_surprise=self.max_surprise[start:end],
                unknown_events=self.unknown_events[start:end],
                topic=self.topic[start:end],
            )

    @classmethod
    def empty(cls, num_layers: int, hidden_size: int) -> EntityRows:
        """No rows, with the right trailing shape."""
        return cls.concat([], num_layers, hidden_size)

    @classmethod
    def concat(cls, parts: Sequence[EntityRows], num_layers: int, hidden_size: int) -> EntityRows:
        """One batch holding every row of ``parts`` in order (copies)."""
        shape = (0, num_layers, hidden_size)
        return cls(
            entities=[entity for part in parts for entity in part.entities],
            partition=np.concatenate([np.zeros(0, np.int32)] + [p.partition for p in parts]).astype(
                np.int32, copy=False
            ),
            h=np.concatenate([np.zeros(shape, np.float32)] + [p.h for p in parts]).astype(
                np.float32, copy=False
            ),
            c=np.concatenate([np.zeros(shape, np.float32)] + [p.c for p in parts]).astype(
                np.float32, copy=False
            ),
            last_seen=np.concatenate([np.zeros(0)] + [p.last_seen for p in parts]).astype(
                np.float64, copy=False
            ),
            events_applied=np.concatenate([np.zeros(0, np.int64)] + [p.events_applied for p in parts]).astype(
                np.int64, copy=False
            ),
            count_profile=np.concatenate([np.zeros(0, np.uint64)] + [p.count_profile for p in parts]),
            max_surprise=np.concatenate([np.zeros(0, np.float32)] + [p.max_surprise for p in parts]).astype(
                np.float32, copy=False
            ),
            unknown_events=np.concatenate([np.zeros(0, np.int64)] + [p.unknown_events for p in parts]).astype(
                np.int64, copy=False
            ),
            topic=[topic for part in parts for topic in part.topic],
        )


class RowBuffer:
    """Memory for one detached copy of changed rows, kept and reused from checkpoint to checkpoint.

    A copy into fresh arrays pays a page fault for every 4 KiB it writes (arrays this large are
    mapped anew by the allocator each time): 10.5 ms for 16,500 rows where the same gather into
    memory already mapped takes 2.9 ms (one core, idle machine).  The copy runs on the event loop,
    so the difference is time every queued event waits.  A copy made into the buffer is valid until
    the next one; the Checkpointer makes the next only after the previous checkpoint finished.
    The memory stays with the process, sized by the largest copy so far plus a quarter, and never
    more than ``max_rows`` rows unless a copy asks for more (51 MB of h and c at 50,000 rows of
    2x64, the Checkpointer's bound; a fresh copy of that size was as large, only shorter-lived).
    """

    def __init__(self, max_rows: int) -> None:
        self._max_rows = max_rows
        self._h = np.zeros(0, np.float32)
        self._c = np.zeros(0, np.float32)

    def arrays(self, rows: int, num_layers: int, hidden_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Two C-contiguous ``[L, rows, H]`` float32 arrays (h and c) in the buffer's memory."""
        row_size = num_layers * hidden_size
        size = rows * row_size
        if size > self._h.size:
            # A quarter more than asked for, so the next checkpoint, a little larger, still fits.
            capacity = max(rows, min(rows + rows // 4, self._max_rows)) * row_size
            self._h = np.zeros(capacity, np.float32)
            self._c = np.zeros(capacity, np.float32)
        shape = (num_layers, rows, hidden_size)
        return self._h[:size].reshape(shape), self._c[:size].reshape(shape)


class RowSource(Protocol):
    """Rows to upsert, read chunk by chunk so a checkpoint of a million entities is never copied whole."""

    @property
    def entities(self) -> Sequence[str]:
        """Entity of each row, in the order ``chunks`` yields the rows."""

    def __len__(self) -> int: ...

    def chunks(self, rows: int) -> Iterator[EntityRows]:
        """The rows in order, at most ``rows`` at a time."""


@runtime_checkable
class CopyableRows(Protocol):
    """A RowSource that reads a live state table and can copy all its rows at once (into a RowBuffer)."""

    def copy_all(self, buffer: RowBuffer | None) -> EntityRows:
        """Every row in one copy, into ``buffer``'s memory when given (valid until its next use)."""


@dataclass(frozen=True)
class StateChanges:
    """Everything that changed since the previous checkpoint: rows to upsert, entities to delete.

    A store applies ``deletes`` before ``upserts``, so an entity in both ends up upserted.
    """

    upserts: RowSource
    deletes: Sequence[str]

    @property
    def upsert_count(self) -> int:
        """Number of rows to upsert."""
        return len(self.upserts)

    def detached(self, buffer: RowBuffer | None = None) -> StateChanges:
        """A copy that no longer reads from the state table (e.g. to save from another thread).

        With ``buffer``, the rows go into its memory (valid until its next use, see RowBuffer).
        The copy runs on the event loop's thread, which stalls for as long as it takes.
        """
        if not isinstance(self.upserts, CopyableRows):
            raise TypeError(
                f"{type(self.upserts).__name__} rows do not come from a state table: nothing to detach"
            )
        return StateChanges(upserts=self.upserts.copy_all(buffer), deletes=tuple(self.deletes))


class LoadedCheckpoint(NamedTuple):
    """The last saved checkpoint: rows to restore (read lazily, in chunks) and next offsets to consume.

    Consume ``rows`` before saving to the store again.
    """

    rows: Iterator[EntityRows]
    offsets: dict[TopicPartition, int]


class StateStore(Protocol):
    """Where checkpoints live.  ``save_checkpoint`` is atomic: all of it or none of it."""

    def open(self, header: StoreHeader) -> None:
        """Create the store or open an existing one; StateStoreError if its header differs."""
        ...

    def load(self) -> LoadedCheckpoint:
        """The last saved checkpoint (empty rows and offsets for a new store)."""
        ...

    def evict_least_recently_seen(self, capacity: int) -> int:
        """Delete the saved entities a table of ``capacity`` cannot hold: the least recently seen
        ones, by ``last_seen`` and then name (so every start picks the same); returns how many."""
        ...

    def save_checkpoint(
        self,
        changes: StateChanges,
        offsets: Mapping[TopicPartition, int],
        *,
        released: Collection[TopicPartition] = (),
        midway: Callable[[], None] | None = None,
    ) -> None:
        """Apply ``changes`` and record ``offsets`` (merged over saved ones) in one transaction.

        ``released`` partitions lose their saved offsets (this instance no longer owns them).
        ``midway`` is called inside the transaction, after the state rows and before the offsets,
        so crash tests can kill the process at the worst moment.
        """
        ...

    def close(self) -> None:
        """Release the store; a later ``open`` sees everything saved."""
        ...


def check_rows_shape(rows: EntityRows, header: StoreHeader) -> None:
    """Refuse rows whose state shape differs from the header (a caller bug, not a data problem)."""
    expected = (header.num_layers, header.hidden_size)
    if tuple(rows.h.shape[1:]) != expected:
        raise ValueError(f"rows have state shape {tuple(rows.h.shape[1:])}, the store expects {expected}")


def check_saved_rows(rows: EntityRows, where: str) -> None:
    """StateStoreError naming ``where`` and the first entity whose saved row no daemon could have written.

    Restored rows are the state every later event of the entity is scored from, so damage must stop
    the start instead of being loaded: a NaN or infinity in ``h`` or ``c`` makes every later score of
    the entity NaN, an infinite ``last_seen`` becomes its partition's stream clock and ends (or never
    ends) every session of that partition, an infinite ``max_surprise`` would make the count gate
    alert at the session's end whatever happens, and an empty name, a negative partition, a negative
    event count, a negative ``max_surprise`` (it starts at 0 and only grows) or more unknown events
    than events describe nothing the daemon does.  A NaN ``max_surprise`` is valid: that session's
    counts are not tracked.  The min/max reductions are the fast path: NaN and infinities propagate
    into them, and only a damaged chunk pays for the per-row search.
    """
    if not len(rows):
        return
    checks = (
        ("NaN or infinity in h (the LSTM hidden state)", rows.h),
        ("NaN or infinity in c (the LSTM cell state)", rows.c),
        ("a NaN or infinite last_seen", rows.last_seen),
    )
    for what, values in checks:
        if not (np.isfinite(values.min()) and np.isfinite(values.max())):
            finite = np.isfinite(values).reshape(len(rows), -1).all(axis=1)
            raise damaged_row(where, rows.entities[int(np.argmin(finite))], what)
    for what, bad in (
        ("a negative kafka_partition", rows.partition < 0),
        ("a negative events_applied", rows.events_applied < 0),
        ("a negative or infinite max_surprise", (rows.max_surprise < 0) | np.isinf(rows.max_surprise)),
        (
            "an unknown_events below 0 or above events_applied",
            (rows.unknown_events < 0) | (rows.unknown_events > rows.events_applied),
        ),
    ):
        if bad.any():
            raise damaged_row(where, rows.entities[int(np.argmax(bad))], what)
    if min(map(len, rows.entities)) == 0:
        raise damaged_row(where, "", "an empty name")


def check_saved_offsets(stored: Iterable[tuple[Any, Any, Any]], where: str) -> dict[TopicPartition, int]:
    """Saved (topic, partition, next offset) rows as offsets; StateStoreError naming ``where`` if damaged.

    The daemon seeks to these offsets: a negative or fractional one would fail deep in the Kafka
    client, or re-read (or skip) records the saved state already holds (or lacks).
    """
    offsets: dict[TopicPartition, int] = {}
    for topic, partition, next_offset in stored:
        if type(topic) is not str or not topic:
            problem = f"topic {topic!r} is not a topic name"
        elif type(partition) is not int or not 0 <= partition <= MAX_PARTITION:
            problem = f"kafka_partition {partition!r} is not a partition number"
        elif type(next_offset) is not int or next_offset < 0:
            problem = f"next_offset {next_offset!r} is not an offset (a whole number >= 0)"
        else:
            offsets[(topic, partition)] = next_offset
            continue
        raise StateStoreError(f"{where}: a saved input offset is damaged: {problem}; {START_EMPTY}")
    return offsets


def damaged_row(where: str, entity: object, what: str) -> StateStoreError:
    """The error for a saved row that cannot be restored: names the file, the entity and what is wrong."""
    return StateStoreError(
        f"{where}: the saved row of entity {shown(entity)} has {what}; the file is damaged; {START_EMPTY}"
    )


def check_offsets(offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Offsets as a plain dict of ints; ValueError on a negative offset."""
    checked: dict[TopicPartition, int] = {}
    for (topic, partition), next_offset in offsets.items():
        if next_offset < 0:
            raise ValueError(f"next offset of {topic}[{partition}] is negative: {next_offset}")
        checked[(str(topic), int(partition))] = int(next_offset)
    return checked
