"""Give a consumer the compiled record reader (compiled_records.py), only where it is known to be right.

Why a gate: the reader reaches into kafka-python internals (``PartitionRecords``, a batch's
buffer), so ``install`` only acts on the kafka-python minor version it was written against, and
first decodes sample batches (plain, with headers and null fields, gzip, a control batch) both
ways; any difference or error leaves the consumer on kafka-python's reader and says why.  It also
makes a broker's own CORRUPT_MESSAGE answer name the partition and offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kafka
from kafka.consumer.fetcher import ConsumerRecord, Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.memory_records import MemoryRecords
from kafka.structs import TopicPartition

from logwarden.daemon.kafka_client.compiled_records import compiled_batch_class, make_partition_records_class
from logwarden.daemon.kafka_client.corrupt_batches import CorruptBatchReports
from logwarden.daemon.kafka_client.record_batches import sample_batches

VERIFIED_KAFKA_PYTHON = "3.0."
"""The kafka-python releases whose fetcher this module's generator mirrors (3.0.12 read)."""


def decode_all(partition_records_class: type, data: bytes) -> tuple[list[ConsumerRecord], int]:
    """Every ConsumerRecord and the next fetch offset a partition-records class yields for ``data``."""
    records = partition_records_class(
        0, TopicPartition("self-check", 0), MemoryRecords(data), check_crcs=True
    )
    decoded = list(records.record_iterator or [])
    return decoded, records.next_fetch_offset


def self_check(partition_records_class: type) -> str:
    """'' when the class decodes the sample batches exactly as kafka-python does, else what differs."""
    data = sample_batches()
    try:
        expected = decode_all(Fetcher.PartitionRecords, data)
        actual = decode_all(partition_records_class, data)
    except Exception as error:  # noqa: BLE001 - any failure means: do not use it
        return f"decoding sample batches failed: {error!r}"
    if actual != expected:
        return f"sample batches decode differently: {actual!r} != {expected!r}"
    return ""


def name_broker_corruption(fetcher: Any) -> None:
    """Make a broker's CORRUPT_MESSAGE answer to a fetch name the partition and offset.

    Why: a broker that cannot read its own log at the fetch offset answers CORRUPT_MESSAGE, and
    kafka-python 3.0 raises ``CorruptRecordError('Unexpected error while fetching data')`` naming
    neither, at every poll.  The daemon cannot read past it (the bytes never come), so it stops;
    the operator then needs the partition and offset to move its saved offset past the damage
    (deploy/README.md, "A corrupt record batch").  Wraps ``_parse_fetched_data`` of this one
    fetcher; the error is kafka-python's, re-raised with the place.
    """
    parse = fetcher._parse_fetched_data

    def parse_naming_the_place(completed_fetch: Any) -> Any:
        try:
            return parse(completed_fetch)
        except CorruptRecordError as error:
            if getattr(completed_fetch.partition_data, "error_code", None) != CorruptRecordError.errno:
                raise
            tp = completed_fetch.topic_partition
            raise CorruptRecordError(
                f"the broker cannot read partition {tp.topic}-{tp.partition} at offset "
                f"{completed_fetch.fetched_offset}: it answered the fetch with CORRUPT_MESSAGE "
                "(see 'A corrupt record batch' in deploy/README.md)"
            ) from error

    fetcher._parse_fetched_data = parse_naming_the_place


@dataclass(frozen=True)
class InstalledReader:
    """What reads a consumer's fetched records after ``install``."""

    compiled: bool
    """aiokafka's compiled decoder reads the records of data batches."""
    skips_corrupt_batches: bool
    """A batch that cannot be read is skipped and reported; when False, polls raise CorruptRecordError."""
    reason: str
    """Why the compiled decoder is not used, or why nothing was installed ('' when compiled)."""


def install(consumer: Any, reports: CorruptBatchReports, *, compiled: bool = True) -> InstalledReader:
    """Give ``consumer`` this module's record reader: corrupt batches reported, records decoded compiled.

    ``compiled`` False, or no usable compiled decoder: kafka-python's batch objects read the
    records, and corrupt batches are still skipped and reported.  The consumer is usable in every
    case; on a kafka-python release this does not mirror, or when the self-check fails, it keeps
    kafka-python's own reader, which raises on a corrupt batch.
    """
    if not kafka.__version__.startswith(VERIFIED_KAFKA_PYTHON):
        reason = (
            f"kafka-python {kafka.__version__} is not {VERIFIED_KAFKA_PYTHON}x, whose fetcher this mirrors"
        )
        return InstalledReader(compiled=False, skips_corrupt_batches=False, reason=reason)
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not isinstance(getattr(fetcher, "PartitionRecords", None), type):
        reason = "this kafka-python consumer has no fetcher.PartitionRecords to replace"
        return InstalledReader(compiled=False, skips_corrupt_batches=False, reason=reason)
    reason = "kafka.compiled_record_decoder is false"
    if compiled:
        compiled_batch, compiled_error, reason = compiled_batch_class()
        if compiled_batch is not None:
            partition_records_class = make_partition_records_class(compiled_batch, compiled_error, reports)
            reason = self_check(partition_records_class)
            if not reason:
                fetcher.PartitionRecords = partition_records_class
                name_broker_corruption(fetcher)
                return InstalledReader(compiled=True, skips_corrupt_batches=True, reason="")
    partition_records_class = make_partition_records_class(None, None, reports)
    difference = self_check(partition_records_class)
    if difference:
        return InstalledReader(compiled=False, skips_corrupt_batches=False, reason=f"{reason}; {difference}")
    fetcher.PartitionRecords = partition_records_class
    name_broker_corruption(fetcher)
    return InstalledReader(compiled=False, skips_corrupt_batches=True, reason=reason)
