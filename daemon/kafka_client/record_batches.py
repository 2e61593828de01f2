"""Kafka record batches (format v2) as a broker returns them, written with kafka-python's encoder.

Why here: the record reader (compiled_records.py) proves itself at start by decoding sample batches
both ways, and the tests and the benchmarks' load generator need batches of every kind a broker
can hand over, including what no kafka-python producer writes: transaction markers and
broker-stamped (log append time) timestamps.  kafka-python's encoder cannot set those flags, so
``encode_batch`` sets them and computes the CRC again.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

from logwarden.daemon.kafka_client.corrupt_batches import ATTRIBUTES_OFFSET, CRC_OFFSET

RecordFields = tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]
"""A record to encode: timestamp (ms, -1 for none), key, value, headers."""

CONTROL_COMMIT, CONTROL_ABORT = 1, 0
_CONTROL_FLAG = 0x20
_LOG_APPEND_TIME_FLAG = 0x08


def encode_batch(
    base_offset: int,
    records: Sequence[RecordFields],
    *,
    codec: int = DefaultRecordBatch.CODEC_NONE,
    producer_id: int = -1,
    transactional: bool = False,
    control: bool = False,
    log_append_time: bool = False,
) -> bytes:
    """One v2 record batch as a broker returns it, built with kafka-python's own encoder.

    ``control=True`` marks it a transaction marker batch (its records should be encoded markers,
    see ``control_marker``); ``log_append_time=True`` marks its timestamps as the broker's (every
    record then reads the batch's max timestamp).  kafka-python's encoder cannot set those flags,
    so they are set here and the CRC recomputed.
    """
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=transactional,
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for offset_delta, (timestamp, key, value, headers) in enumerate(records):
        builder.append(offset_delta, timestamp=timestamp, key=key, value=value, headers=headers)
    batch = bytearray(builder.build())
    struct.pack_into(">q", batch, 0, base_offset)
    flags = (_CONTROL_FLAG if control else 0) | (_LOG_APPEND_TIME_FLAG if log_append_time else 0)
    if flags:
        (attributes,) = struct.unpack_from(">h", batch, ATTRIBUTES_OFFSET)
        struct.pack_into(">h", batch, ATTRIBUTES_OFFSET, attributes | flags)
        struct.pack_into(">I", batch, CRC_OFFSET, calc_crc32c(bytes(batch[ATTRIBUTES_OFFSET:])))
    return bytes(batch)


def control_marker(kind: int, timestamp: int) -> RecordFields:
    """A transaction marker record: key = version 0 and ``kind`` (CONTROL_COMMIT or CONTROL_ABORT)."""
    return (timestamp, struct.pack(">hh", 0, kind), b"\0" * 6, [])


def sample_batches() -> bytes:
    """Batches that exercise every branch the compiled path takes: what the self-check decodes."""
    records: list[RecordFields] = [
        (1_700_000_000_000, b"blk_1", b"first line", []),
        (-1, None, b"", [("h\u00e9", b"v"), ("n", None)]),
        (1_700_000_000_002, b"", None, []),
    ]
    return b"".join(
        [
            encode_batch(0, records),
            encode_batch(3, records, codec=DefaultRecordBatch.CODEC_GZIP),
            encode_batch(
                6,
                [control_marker(CONTROL_COMMIT, 1_700_000_000_006)],
                producer_id=7,
                transactional=True,
                control=True,
            ),
        ]
    )
