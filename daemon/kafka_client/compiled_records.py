"""Read fetched Kafka records with aiokafka's compiled decoder, and skip batches that cannot be read.

Why: kafka-python 3.0 decodes every record's varints in pure Python.  Through its fetcher a
200-byte record costs 5.1 µs, 3.0 µs of it in that decoding; the daemon's whole per-event budget
at 60,000 events/s is 16 µs.  aiokafka (aio-libs) ships a decoder for the same record format,
derived from kafka-python's own and compiled with Cython, which reads the same record in 0.24 µs.

How: kafka-python wraps each fetched partition's data in ``fetcher.PartitionRecords`` and reads
records from its ``_unpack_records`` generator.  ``reader_install.install`` sets a subclass on ONE
consumer's fetcher (other consumers in the process are untouched).  The subclass's generator follows
kafka-python 3.0.12's step for step (CRC check, leader epoch, read_committed bookkeeping,
control batches, the next fetch offset, drain) on kafka-python's own batch objects; only the
records of an ordinary data batch (format v2, not a control batch) are read by the compiled
decoder.  Compressed batches are decompressed with kafka-python's codecs first, so both decoders
need the same compression libraries.  Where kafka-python raises ``CorruptRecordError`` and stays
on the batch forever, the subclass reports the batch (corrupt_batches.py) and reads on past it;
this part is installed even when the compiled decoder is off or unavailable.

reader_install.py installs the class, only after checking it against kafka-python's own reader.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from kafka import codec as kafka_codec
from kafka.consumer.fetcher import ConsumerRecord, Fetcher, IsolationLevel
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition

from logwarden.daemon.kafka_client.corrupt_batches import (
    ATTRIBUTES_OFFSET,
    CorruptBatch,
    CorruptBatchReports,
    claimed_next_offset,
    next_intact_batch,
    resume_offset,
)

HEADER_SIZE = DefaultRecordBatch.HEADER_STRUCT.size  # 61 bytes, up to and including the record count
CODEC_MASK = DefaultRecordBatch.CODEC_MASK

# kafka-python's own decompressors, by the codec bits of a batch's attributes, with their checks.
_DECOMPRESSORS: dict[int, tuple[Callable[[], bool], Callable[[Any], bytes]]] = {
    DefaultRecordBatch.CODEC_GZIP: (kafka_codec.has_gzip, kafka_codec.gzip_decode),
    DefaultRecordBatch.CODEC_SNAPPY: (kafka_codec.has_snappy, kafka_codec.snappy_decode),
    DefaultRecordBatch.CODEC_LZ4: (kafka_codec.has_lz4, kafka_codec.lz4_decode),
    DefaultRecordBatch.CODEC_ZSTD: (kafka_codec.has_zstd, kafka_codec.zstd_decode),
}


def compiled_batch_class() -> tuple[type | None, type[Exception] | None, str]:
    """aiokafka's compiled batch class and its corruption error, or None and the reason it is unusable."""
    try:
        from aiokafka.errors import CorruptRecordException
        from aiokafka.record.default_records import DefaultRecordBatch as AiokafkaBatch
    except ImportError as error:
        return None, None, f"aiokafka is not installed ({error})"
    if "_crecords" not in AiokafkaBatch.__module__:
        # aiokafka falls back to a pure-Python decoder (no wheel for this platform, or
        # AIOKAFKA_NO_EXTENSIONS set): no faster than kafka-python's.
        return None, None, f"aiokafka's compiled extension is not loaded ({AiokafkaBatch.__module__})"
    return AiokafkaBatch, CorruptRecordException, ""


def uncompressed_batch(batch: DefaultRecordBatch) -> bytes | bytearray | None:
    """The batch as the compiled decoder reads it: header plus uncompressed records.

    None when kafka-python lacks the codec; iterating kafka-python's own batch then raises its
    UnsupportedCodecError, as it would without this module.
    """
    raw = batch._buffer  # kafka-python keeps the whole batch here until it is iterated
    codec = batch.compression_type
    if codec == DefaultRecordBatch.CODEC_NONE:
        return raw  # read in place: nothing resizes it while the compiled batch holds it
    available, decompress = _DECOMPRESSORS.get(codec, (lambda: False, bytes))
    if not available():
        return None
    payload = memoryview(raw)[HEADER_SIZE:]
    try:
        records = decompress(payload if codec == DefaultRecordBatch.CODEC_GZIP else payload.tobytes())
    except Exception as error:  # noqa: BLE001 - each codec library raises its own types
        # The CRC holds (it covers the compressed bytes), yet the payload is no stream of its codec:
        # a malformed batch like any other, not an error that stops every poll.
        raise CorruptRecordError(f"cannot be decompressed ({type(error).__name__}: {error})") from error
    header = bytearray(raw[:HEADER_SIZE])
    (attributes,) = struct.unpack_from(">h", header, ATTRIBUTES_OFFSET)
    # The CRC was checked on the compressed bytes; the compiled decoder does not re-check it
    # while iterating, and it reads the records from the buffer's end, not the batch length.
    struct.pack_into(">h", header, ATTRIBUTES_OFFSET, attributes & ~CODEC_MASK)
    return bytes(header) + records


def unframed_error(tp: TopicPartition, rest: memoryview, error: Exception) -> str:
    """The error of fetched bytes that cannot be split into batches, naming where they start."""
    base_offset = int.from_bytes(rest[:8], "big", signed=True)
    return (
        f"Record batch for partition {tp.topic}-{tp.partition} at offset {base_offset} "
        f"cannot be split from the fetch: {error}"
    )


def make_partition_records_class(
    compiled_batch: Callable[[Any], Any] | None,
    compiled_error: type[Exception] | None,
    reports: CorruptBatchReports | None = None,
) -> type:
    """A ``Fetcher.PartitionRecords`` whose data batches are read by ``compiled_batch``.

    ``compiled_batch`` None: kafka-python's own batch objects read the records.  ``reports``: a
    batch that cannot be read is skipped and reported there (corrupt_batches.py); without it,
    ``CorruptRecordError`` is raised as kafka-python raises it.
    """
    corrupt_errors: tuple[type[Exception], ...] = (CorruptRecordError, UnicodeDecodeError)
    if compiled_error is not None:
        corrupt_errors += (compiled_error,)

    class CompiledPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc, name-defined]
        """kafka-python 3.0.12's ``PartitionRecords._unpack_records``, with compiled record decoding."""

        _unframed: tuple[memoryview, Exception] | None = None
        """The fetch's bytes from a batch whose length field cannot be right to the end, and the error."""
        _framed_bytes = 0
        """Bytes of the fetch split into batches so far: where the next batch starts."""

        def _unpack_records(
            self, tp: TopicPartition, records: MemoryRecords, key_deserializer: Any, value_deserializer: Any
        ) -> Iterator[ConsumerRecord]:
            try:
                batch = self._next_framed_batch(tp, records)
                last_batch = None
                while batch is not None:
                    last_batch = batch
                    # The batch as fetched: kafka-python's decoder replaces ``_buffer`` when it
                    # decompresses, the compiled path never touches it.
                    raw = batch._buffer
                    if self.check_crcs and not batch.validate_crc():
                        batch = self._skip_corrupt_batch(tp, records, batch, raw, "failed crc check")
                        last_batch = None
                        continue
                    try:
                        source = self._records_source(batch)
                        if source is not None:
                            yield from self._consumer_records(
                                tp, batch, source, key_deserializer, value_deserializer
                            )
                    except corrupt_errors as error:
                        # Raised only while reading the batch's records (a control batch's too;
                        # ``next_batch`` is never called in here).  aiokafka lets a header
                        # key that is not UTF-8 escape as a bare UnicodeDecodeError, which
                        # kafka-python's decoder reports as CorruptRecordError, as it must be here.
                        # A deserializer's UnicodeDecodeError is treated so too: the daemon's config
                        # refuses deserializers, and keeping the two apart would need a generator
                        # around each batch's records, 27 ns a record.
                        problem = f"is malformed: {error}"
                        batch = self._skip_corrupt_batch(tp, records, batch, raw, problem, error)
                        last_batch = None
                        continue
                    batch = self._next_framed_batch(tp, records)
                else:
                    if self._unframed is not None:
                        self._skip_unframed(tp)
                    elif last_batch and last_batch.magic == 2:
                        self.next_fetch_offset = last_batch.next_offset
                    self.drain()
            except StopIteration as error:
                raise RuntimeError("StopIteration raised unpacking messageset") from error

        def _records_source(self, batch: Any) -> Any:
            """What reads the batch's records (the compiled decoder, or the batch itself), or None
            for a batch that holds none to deliver: an aborted transaction's, or a control batch."""
            if batch.magic != 2:
                return batch
            self.leader_epoch = batch.leader_epoch
            if self.isolation_level == IsolationLevel.READ_COMMITTED and batch.has_producer_id():
                self._consume_aborted_transactions_up_to(batch.last_offset)
                producer_id = batch.producer_id
                if self._contains_abort_marker(batch):
                    self.aborted_producer_ids.discard(producer_id)
                elif self._is_batch_aborted(batch):
                    self.next_fetch_offset = batch.next_offset
                    return None
            if batch.is_control_batch:
                self.next_fetch_offset = batch.next_offset
                return None
            if compiled_batch is not None:
                readable = uncompressed_batch(batch)
                if readable is not None:
                    source = compiled_batch(readable)
                    self.bytes_read += len(readable) - HEADER_SIZE
                    return source
            return batch

        def _skip_corrupt_batch(
            self,
            tp: TopicPartition,
            records: MemoryRecords,
            batch: Any,
            raw: Any,
            problem: str,
            cause: Exception | None = None,
        ) -> Any:
            """Report the batch, move past it and return the next one; without ``reports``, raise as
            kafka-python does.

            The next batch of the fetch, when its own CRC holds, says where this one ends better
            than this one's header, which a CRC failure may have damaged.
            """
            where = f"partition {tp.topic}-{tp.partition} at offset {batch.base_offset}"
            message = f"Record batch for {where} {problem}"
            if reports is None:
                raise CorruptRecordError(message) from cause
            following = self._next_framed_batch(tp, records)
            if self._unframed is not None:
                # Nothing after this batch can be split into batches: report all of it in one, and
                # look for an intact batch from just after this one's start, as its length may be
                # what is damaged.
                raw = bytes(raw) + bytes(self._unframed[0])
                self._unframed = None
                following_base = next_intact_batch(raw, calc_crc32c)
            elif following is not None and (not self.check_crcs or following.validate_crc()):
                following_base = following.base_offset
            else:
                following_base = None
            claimed_next = batch.next_offset if batch.magic == 2 else None
            self._report_and_move_past(
                tp, batch.base_offset, claimed_next, following_base, self.fetch_offset, message, raw
            )
            return following

        def _report_and_move_past(
            self,
            tp: TopicPartition,
            base_offset: int,
            claimed_next: int | None,
            following_base: int | None,
            fetch_floor: int,
            error: str,
            raw: Any,
        ) -> None:
            """Report unreadable bytes of the fetch and set where reading goes on (``resume_offset``)."""
            assert reports is not None
            resume = resume_offset(
                base_offset, claimed_next, fetch_floor, following_base_offset=following_base
            )
            reports.add(
                CorruptBatch(
                    topic=tp.topic,
                    partition=tp.partition,
                    base_offset=base_offset,
                    claimed_last_offset=None if claimed_next is None else claimed_next - 1,
                    unread_offset=max(self.next_fetch_offset, base_offset),
                    resume_offset=resume,
                    error=error,
                    raw=bytes(raw),
                )
            )
            self.next_fetch_offset = resume

        def _next_framed_batch(self, tp: TopicPartition, records: MemoryRecords) -> Any:
            """The fetch's next batch; None at its end, or where it cannot be split any further.

            A batch's length field says where the next batch starts.  Damaged to less than a batch
            can hold, kafka-python raises ``CorruptRecordError`` (shorter than a record), a
            ``struct.error`` (shorter than a v2 header) or an ``AssertionError`` (a legacy
            message's own checks), and nothing after it can be split into batches.  The bytes from
            there to the end of the fetch are kept in ``_unframed`` for a report; without
            ``reports``, the error is raised as ``CorruptRecordError`` naming partition and offset.
            """
            try:
                batch = records.next_batch()
            except (CorruptRecordError, struct.error, AssertionError) as error:
                # Counted here, not read off MemoryRecords: its read position has moved past the
                # damaged batch by the damaged length, which may even be negative.
                rest = memoryview(records._buffer)[self._framed_bytes :]
                if reports is None:
                    raise CorruptRecordError(unframed_error(tp, rest, error)) from error
                self._unframed = (rest, error)
                return None
            if batch is not None:
                self._framed_bytes += len(batch._buffer)  # before any decoding replaces the buffer
            return batch

        def _skip_unframed(self, tp: TopicPartition) -> None:
            """Report the bytes that could not be split into batches, and move the position past them.

            Reading goes on at the first intact batch in them (found by its CRC), else where the
            damaged batch's header claims to end, and always at least one offset past the first
            unread one, so the next fetch cannot return the same bytes forever.
            """
            assert self._unframed is not None
            rest, error = self._unframed
            self._unframed = None
            self._report_and_move_past(
                tp,
                int.from_bytes(rest[:8], "big", signed=True),
                claimed_next_offset(rest),
                next_intact_batch(rest, calc_crc32c),
                max(self.fetch_offset, self.next_fetch_offset),
                unframed_error(tp, rest, error),
                rest,
            )

        def _consumer_records(
            self,
            tp: TopicPartition,
            batch: Any,
            source: Any,
            key_deserializer: Any,
            value_deserializer: Any,
        ) -> Iterator[ConsumerRecord]:
            """The ConsumerRecords kafka-python would build from one batch's records."""
            compiled = source is not batch
            topic, partition = tp.topic, tp.partition
            for record in source:
                if not compiled:
                    if self.check_crcs and not record.validate_crc():
                        raise CorruptRecordError(
                            f"Record for partition {self.topic_partition} at offset {record.offset}"
                            " failed crc check"
                        )
                    self.bytes_read += record.size_in_bytes
                timestamp = record.timestamp
                timestamp_type = record.timestamp_type
                if compiled and timestamp is None:
                    # aiokafka reports a v2 timestamp of -1 as None; kafka-python keeps -1.  (A
                    # legacy v0 record's None stays None, as kafka-python reports it.)
                    timestamp, timestamp_type = -1, batch.timestamp_type
                raw_key, raw_value, headers = record.key, record.value, record.headers
                key = (
                    raw_key
                    if key_deserializer is None
                    else self._deserialize(key_deserializer, topic, headers, raw_key)
                )
                value = (
                    raw_value
                    if value_deserializer is None
                    else self._deserialize(value_deserializer, topic, headers, raw_value)
                )
                header_size = (
                    sum(
                        len(h_key.encode("utf-8")) + (len(h_val) if h_val is not None else 0)
                        for h_key, h_val in headers
                    )
                    if headers
                    else -1
                )
                self.records_read += 1
                self.next_fetch_offset = record.offset + 1
                yield ConsumerRecord(
                    topic,
                    partition,
                    self.leader_epoch,
                    record.offset,
                    timestamp,
                    timestamp_type,
                    key,
                    value,
                    headers,
                    record.checksum,
                    len(raw_key) if raw_key is not None else -1,
                    len(raw_value) if raw_value is not None else -1,
                    header_size,
                )

    return CompiledPartitionRecords
