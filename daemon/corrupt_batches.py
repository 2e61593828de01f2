"""Record batches the consumer cannot read: where reading goes on, and what the dead letter says.

Why: a record batch whose CRC fails (damage on the broker's disk after the write) or whose records
are malformed (a faulty client that bypassed the broker's checks) cannot be split into records.
kafka-python raises ``CorruptRecordError`` for it on every poll and never moves past it, so a
daemon that stops on it meets it again after each restart.  The daemon's record reader
(compiled_records.py) skips such a batch instead and reports it here; the service dead-letters
the batch's raw bytes with these coordinates before any checkpoint can cover the offsets past it
(daemon/service.py), so nothing is dropped without a trace.

Pure: no Kafka client here, so the rules are tested on their own.
"""

from __future__ import annotations

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


@dataclass
class CorruptBatchReports:
    """Corrupt batches the reader skipped since the service last took them.

    The reader adds while ``poll`` iterates fetched data; the service takes them after each poll,
    on the same thread.
    """

    _pending: list[CorruptBatch] = field(default_factory=list)

    def add(self, batch: CorruptBatch) -> None:
        self._pending.append(batch)

    def take_all(self) -> list[CorruptBatch]:
        taken, self._pending = self._pending, []
        return taken
