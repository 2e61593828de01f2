"""A ``StateStore`` in process memory, for tests and benchmarks; the daemon always uses SQLite.

It keeps the port's promises that tests rely on (a checkpoint replaces the last one whole, the
header is checked on re-open, rows come back in chunks) without a file, so a test of the
checkpoint order or of a failing write runs in microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import NamedTuple

import numpy as np

from logwarden.daemon.state.store import (
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


class _StoredRow(NamedTuple):
    partition: int
    h: np.ndarray  # [L, H]
    c: np.ndarray
    last_seen: float
    events_applied: int
    count_profile: int
    max_surprise: float
    unknown_events: int
    topic: str


class MemoryStateStore:
    """A StateStore in process memory, for tests and benchmarks.

    The data outlives ``close`` so a test can close and re-open it like a file.
    """

    def __init__(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._chunk_rows = chunk_rows
        self._stored_header: StoreHeader | None = None
        self._header: StoreHeader | None = None
        self._rows: dict[str, _StoredRow] = {}
        self._offsets: dict[TopicPartition, int] = {}

    def open(self, header: StoreHeader) -> None:
        """Adopt ``header`` for a new store, or check it against the one saved first."""
        if self._stored_header is None:
            self._stored_header = header
        else:
            check_header(self._stored_header, header, "memory state store")
        self._header = header

    def load(self) -> LoadedCheckpoint:
        """Rows in insertion order, ``chunk_rows`` at a time, and the saved offsets."""
        self._require_open()
        return LoadedCheckpoint(self._iter_rows(dict(self._rows)), dict(self._offsets))

    def evict_least_recently_seen(self, capacity: int) -> int:
        """Delete the saved entities a table of ``capacity`` cannot hold, least recently seen first."""
        self._require_open()
        by_age = sorted(self._rows, key=lambda entity: (self._rows[entity].last_seen, entity))
        evicted = by_age[: max(0, len(by_age) - capacity)]
        for entity in evicted:
            del self._rows[entity]
        return len(evicted)

    def save_checkpoint(
        self,
        changes: StateChanges,
        offsets: Mapping[TopicPartition, int],
        *,
        released: Collection[TopicPartition] = (),
        midway: Callable[[], None] | None = None,
    ) -> None:
        """Build the next checkpoint aside and swap it in only when every row was read."""
        header = self._require_open()
        kept = {key: offset for key, offset in self._offsets.items() if key not in set(released)}
        new_offsets = {**kept, **check_offsets(offsets)}
        rows = dict(self._rows)
        for entity in changes.deletes:
            rows.pop(entity, None)
        for chunk in changes.upserts.chunks(self._chunk_rows):
            check_rows_shape(chunk, header)
            for i, entity in enumerate(chunk.entities):
                rows[entity] = _StoredRow(
                    int(chunk.partition[i]),
                    chunk.h[i].copy(),
                    chunk.c[i].copy(),
                    float(chunk.last_seen[i]),
                    int(chunk.events_applied[i]),
                    int(chunk.count_profile[i]),
                    float(chunk.max_surprise[i]),
                    int(chunk.unknown_events[i]),
                    chunk.topic[i],
                )
        if midway is not None:
            midway()
        self._rows, self._offsets = rows, new_offsets

    def close(self) -> None:
        """Forget the open header; saved data stays."""
        self._header = None

    def _require_open(self) -> StoreHeader:
        if self._header is None:
            raise StateStoreError("memory state store: not open (call open(header) first)")
        return self._header

    def _iter_rows(self, rows: dict[str, _StoredRow]) -> Iterator[EntityRows]:
        items = list(rows.items())
        for start in range(0, len(items), self._chunk_rows):
            chunk = items[start : start + self._chunk_rows]
            yield EntityRows(
                entities=[entity for entity, _ in chunk],
                partition=np.array([row.partition for _, row in chunk], np.int32),
                h=np.stack([row.h for _, row in chunk]).astype(np.float32, copy=False),
                c=np.stack([row.c for _, row in chunk]).astype(np.float32, copy=False),
                last_seen=np.array([row.last_seen for _, row in chunk], np.float64),
                events_applied=np.array([row.events_applied for _, row in chunk], np.int64),
                count_profile=np.array([row.count_profile for _, row in chunk], np.uint64),
                max_surprise=np.array([row.max_surprise for _, row in chunk], np.float32),
                unknown_events=np.array([row.unknown_events for _, row in chunk], np.int64),
                topic=[row.topic for _, row in chunk],
            )
