"""How far each input partition has been applied: the offsets the next checkpoint saves.

Why the daemon keeps its own instead of reading the consumer's positions: those count records
*polled*, while the loop applies a poll in batches with ticks (and so checkpoints) between them. A
checkpoint that saved the consumer's position would cover records not yet applied, and a crash
after it would lose them. A batch the record reader skipped as corrupt is passed over only once the
records before it are applied, for the same reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Protocol

from kafka import TopicPartition

from logwarden.daemon.checkpoint import Offsets
from logwarden.daemon.kafka_client.clients import input_position_required
from logwarden.daemon.kafka_client.fetch_times import FetchTimes

PartitionKey = tuple[str, int]


class ConsumerPositions(Protocol):
    """What this module asks of kafka-python's KafkaConsumer."""

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned to this member now."""
        ...

    def highwater(self, partition: TopicPartition) -> int | None:
        """The high watermark the last fetch response carried, or None before any."""
        ...

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """The offset of the next record the consumer will hand over."""
        ...

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` on."""
        ...


class InputPositions:
    """For each input partition this instance has applied records of, the offset after the last one."""

    def __init__(
        self,
        stored: Mapping[PartitionKey, int],
        consumer: ConsumerPositions,
        group_id: str,
        fetch_times: FetchTimes | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``stored``: the offsets of the last checkpoint; ``group_id`` names the group in config errors.

        ``fetch_times``: when each partition's last fetch answer came (``watch_fetches``), the
        moment its high watermark is known as of.  None: a consumer whose fetches cannot be
        watched, whose high watermark is taken as of now.
        """
        self._offsets: Offsets = dict(stored)
        self._consumer = consumer
        self._group_id = group_id
        self._fetch_times = fetch_times
        self._monotonic = monotonic

    @property
    def offsets(self) -> Offsets:
        """The next offset to read of each partition; the checkpoint copies it."""
        return self._offsets

    def applied(self, key: PartitionKey, next_offset: int) -> None:
        """Records of ``key`` below ``next_offset`` are applied (decoded, scored or dead-lettered)."""
        self._offsets[key] = next_offset

    def pass_skipped(self, resumed: Mapping[PartitionKey, int]) -> None:
        """Move past batches the record reader skipped, so a restart does not read them again.

        Called once the records polled before them are applied. A partition no longer assigned
        keeps its offset: its new owner meets the batch and dead-letters it too.
        """
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        for key, offset in resumed.items():
            if key in assigned and offset > self._offsets.get(key, -1):
                self._offsets[key] = offset

    def caught_up(self, *, records_in_hand: bool = False) -> dict[PartitionKey, float]:
        """Assigned partitions applied up to their high watermark, each with the monotonic time of the
        fetch answer that carried it: nothing was unread in them then; later is not known yet.

        The high watermark is the one kafka-python last saw in a fetch answer (no request is
        made); a partition it has not fetched yet counts as not caught up. A transactional
        producer's commit or abort marker takes an offset but is never handed over as a record, so
        when a transaction was the last write, the high watermark lies one past the offset after
        its last record; the consumer's position, which moves past markers, shows it was read.
        The position is asked only with no polled records waiting (``records_in_hand``), as it
        counts polled records, not applied ones.
        """
        caught_up: dict[PartitionKey, float] = {}
        now = self._monotonic()
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            key = (tp.topic, tp.partition)
            fetched_at = now if self._fetch_times is None else self._fetch_times.fetched_at(key)
            if fetched_at is None:
                continue
            read_to = self._offsets.get(key, 0)
            if read_to < highwater and not records_in_hand:
                with input_position_required(self._group_id):
                    read_to = max(read_to, self._consumer.position(tp, timeout_ms=0) or 0)
            if read_to >= highwater:
                caught_up[key] = fetched_at
        return caught_up

    def not_owned(self, owned: Collection[PartitionKey]) -> list[PartitionKey]:
        """Partitions with a saved offset that are not in ``owned``: another instance has them now."""
        return sorted(key for key in self._offsets if key not in owned)

    def forget(self, keys: Iterable[PartitionKey]) -> None:
        """Drop the offsets of released partitions: their next owner here resumes from the group's."""
        for key in keys:
            del self._offsets[key]

    def resume(self, assigned: Iterable[TopicPartition]) -> dict[str, int]:
        """Seek each newly assigned partition to its saved offset; returns ``topic/partition`` → offset.

        The local checkpoint is authoritative over the group's committed offsets: it was saved
        together with the state, so the two never disagree. A partition with no saved offset
        starts where the group (or ``auto_offset_reset``) says.
        """
        resumed = {}
        for tp in assigned:
            offset = self._offsets.get((tp.topic, tp.partition))
            if offset is not None:
                self._consumer.seek(tp, offset)
                resumed[f"{tp.topic}/{tp.partition}"] = offset
        return resumed
