"""Record batches the consumer cannot read: where reading goes on, and what the dead letter says.

Why: a record batch whose CRC fails (damage on the broker's disk after the write) or whose records
are malformed (a faulty client that bypassed the broker's checks) cannot be split into records, and
one whose length field is damaged hides where the next batch starts.
kafka-python raises ``CorruptRecordError`` for it on every poll and never moves past it, so a
daemon that stops on it meets it again after each restart.  The daemon's record reader
(compiled_records.py) skips such a batch instead and reports it here; the service dead-letters
the batch's raw bytes with these coordinates before any checkpoint can cover the offsets past it
(daemon/service.py), so nothing is dropped without a trace.

Pure: no Kafka client here, so the rules are tested on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

UNREAD_OFFSET_HEADER = "logwarden.source.unread_offset"
"""Dead-letter header of a corrupt batch: its records from this offset on were not read."""
RESUME_OFFSET_HEADER = "logwarden.source.resume_offset"
"""Dead-letter header of a corrupt batch: where reading the partition went on."""


@dataclass(frozen=True)
class CorruptBatch:
    """One batch the reader skipped, with everything the dead letter and the log line need."""

    topic: str
    partition: int
    base_offset: int
    claimed_last_offset: int | None
    """The last offset the batch's header claims (None for a legacy batch); unchecked when the CRC failed."""
    unread_offset: int
    """Records of the batch below this offset were delivered before it broke (its base offset if none)."""
    resume_offset: int
    error: str
    raw: bytes
    """The batch as fetched, header included."""

    def detail(self) -> str:
        """The error, then which offsets were read and where reading went on."""
        claimed = (
            "" if self.claimed_last_offset is None else f", its header claims {self.claimed_last_offset}"
        )
        delivered = (
            f"records {self.base_offset}..{self.unread_offset - 1} were read before it broke; "
            if self.unread_offset > self.base_offset
            else ""
        )
        return (
            f"{self.error} (the batch starts at offset {self.base_offset}{claimed}); "
            f"{delivered}reading resumed at offset {self.resume_offset}"
        )

    def headers(self) -> list[tuple[str, bytes]]:
        """The corrupt-batch headers, beside the usual reason, detail and source headers."""
        return [
            (UNREAD_OFFSET_HEADER, str(self.unread_offset).encode("ascii")),
            (RESUME_OFFSET_HEADER, str(self.resume_offset).encode("ascii")),
        ]


def resume_offset(
    base_offset: int,
    claimed_next_offset: int | None,
    fetch_offset: int,
    *,
    following_base_offset: int | None = None,
) -> int:
    """Where reading goes on after a corrupt batch.

    The next batch of the same fetch (``following_base_offset``, given only when that batch's own
    CRC holds) is where reading goes on.  Without one, the batch's header says where it ends, but
    when its CRC failed that header may be damaged too.  So the answer is always at least one
    past both the batch's base offset and the offset the fetch started at: a broker answers a
    fetch with the batch holding the fetch offset, so anything lower would return the same batch
    forever.
    """
    if following_base_offset is not None and following_base_offset > base_offset:
        target = following_base_offset
    elif claimed_next_offset is not None:
        target = claimed_next_offset
    else:
        target = base_offset + 1
    return max(target, base_offset + 1, fetch_offset + 1)


# Record batch format v2: where a batch's fields sit, counted from its first byte (also what
# compiled_records.py reads and writes headers with).  The CRC-32C covers the batch from its
# attributes to its end.
_LENGTH_AT, _MAGIC_AT, CRC_OFFSET, ATTRIBUTES_OFFSET, _LAST_OFFSET_DELTA_AT = 8, 16, 17, 21, 23
_V2_HEADER_SIZE = 61
_LENGTH_FIELD_END = 12  # base offset and length: the bytes a batch's length does not count


def claimed_next_offset(data: bytes | memoryview) -> int | None:
    """One past the last offset a v2 batch header at the start of ``data`` claims; None if unreadable."""
    if len(data) < _V2_HEADER_SIZE or data[_MAGIC_AT] != 2:
        return None
    base = int.from_bytes(data[:8], "big", signed=True)
    delta = int.from_bytes(data[_LAST_OFFSET_DELTA_AT : _LAST_OFFSET_DELTA_AT + 4], "big", signed=True)
    return base + delta + 1


def next_intact_batch(data: bytes | memoryview, crc32c: Callable[[bytes | memoryview], int]) -> int | None:
    """The base offset of the first whole v2 batch whose CRC holds, after the start of ``data``.

    Why: a damaged length field hides where a batch ends, so the fetch cannot be split there; a
    batch further on that passes its CRC (magic byte 2, a length inside the data, and a CRC-32C
    over the rest) is intact with near certainty, and says where reading can go on.  A scan byte
    by byte: it runs only on a fetch that already failed.
    """
    view = memoryview(data)
    for start in range(1, len(view) - _V2_HEADER_SIZE + 1):
        if view[start + _MAGIC_AT] != 2:
            continue
        length = int.from_bytes(view[start + _LENGTH_AT : start + _LENGTH_AT + 4], "big", signed=True)
        end = start + _LENGTH_FIELD_END + length
        if length < _V2_HEADER_SIZE - _LENGTH_FIELD_END or end > len(view):
            continue
        stored = int.from_bytes(view[start + CRC_OFFSET : start + CRC_OFFSET + 4], "big")
        if crc32c(view[start + ATTRIBUTES_OFFSET : end]) == stored:
            return int.from_bytes(view[start : start + 8], "big", signed=True)
    return None


@dataclass
class CorruptBatchReports:
    """Corrupt batches the reader skipped since the service last took them.

    The reader adds while ``poll`` iterates fetched data; the service takes them after each poll,
    on the same thread.
    """

    _pending: list[CorruptBatch] = field(default_factory=list)

    def add(self, batch: CorruptBatch) -> None:
        """Note a batch the reader skipped."""
        self._pending.append(batch)

    def take_all(self) -> list[CorruptBatch]:
        """The batches noted since the last call, in order; they are no longer held."""
        taken, self._pending = self._pending, []
        return taken
