"""The compiled record decoder yields exactly what kafka-python's own fetcher yields, or stays out."""

from __future__ import annotations

import random
import struct
from collections import namedtuple
from typing import Any

import pytest
from kafka.consumer.fetcher import Fetcher, IsolationLevel
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition

from logwarden.daemon.kafka_client import compiled_records
from logwarden.daemon.kafka_client.corrupt_batches import CorruptBatchReports
from logwarden.daemon.kafka_client.record_batches import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    RecordFields,
    control_marker,
    encode_batch,
)

AbortedTransaction = namedtuple("AbortedTransaction", ["producer_id", "first_offset"])
"""What kafka-python's fetch response gives the fetcher for each aborted transaction."""


def decode(
    partition_records_class: type, data: bytes, *, fetch_offset: int = 0, **options: Any
) -> tuple[list[Any], int]:
    """The records a reader class yields for one fetch of ``data`` from partition t-2, and its next offset."""
    records = partition_records_class(fetch_offset, TopicPartition("t", 2), MemoryRecords(data), **options)
    return list(records.record_iterator or []), records.next_fetch_offset


def random_records(rng: random.Random, count: int) -> list[RecordFields]:
    """``count`` records with timestamps -1, 0 or recent, keys and values at times None, 0-2 headers each."""

    def maybe_bytes(limit: int) -> bytes | None:
        return None if rng.random() < 0.1 else rng.randbytes(rng.randrange(limit))

    return [
        (
            rng.choice([-1, 0, 1_700_000_000_000 + rng.randrange(10**6)]),
            maybe_bytes(40),
            maybe_bytes(600),
            [
                (rng.choice(["a", "trace-id", "\u00e9t\u00e9"]), maybe_bytes(20))
                for _ in range(rng.randrange(3))
            ],
        )
        for _ in range(count)
    ]


def random_log(rng: random.Random) -> bytes:
    """Batches as a fetch returns them: plain and gzip data batches, commit markers, a cut-off tail."""
    batches, offset = [], 0
    for _ in range(rng.randrange(1, 12)):
        if batches and rng.random() < 0.15:
            batch = encode_batch(
                offset, [control_marker(CONTROL_COMMIT, 0)], producer_id=3, transactional=True, control=True
            )
            offset += 1
        else:
            count = rng.randrange(1, 60)
            codec = rng.choice([DefaultRecordBatch.CODEC_NONE, DefaultRecordBatch.CODEC_GZIP])
            batch = encode_batch(
                offset, random_records(rng, count), codec=codec, log_append_time=rng.random() < 0.2
            )
            offset += count
        batches.append(batch)
    data = b"".join(batches)
    # A fetch stops at its byte limit, usually inside a batch, which both must leave for the next fetch.
    return data + batches[0][: rng.randrange(len(batches[0]))]


@pytest.mark.parametrize("seed", range(40))
def test_random_fetches_decode_to_identical_consumer_records(either_class: type, seed: int) -> None:
    """40 seeded fetches (gzip, commit markers, a cut-off tail) give exactly kafka-python's records."""
    rng = random.Random(seed)
    data = random_log(rng)
    expected = decode(Fetcher.PartitionRecords, data)
    assert expected[0], "the sample must hold records"
    assert decode(either_class, data) == expected


def test_every_data_batch_is_read_by_the_compiled_decoder() -> None:
    """A plain and a gzip batch go through the compiled decoder (10 records); the control batch does not."""
    batch_class, error_class, _ = compiled_records.compiled_batch_class()
    read: list[int] = []

    def counting_batch(buffer: bytes) -> Any:
        read.append(len(buffer))
        return batch_class(buffer)  # type: ignore[misc]

    spied = compiled_records.make_partition_records_class(counting_batch, error_class)  # type: ignore[arg-type]
    rng = random.Random(4)
    data = b"".join(
        [
            encode_batch(0, random_records(rng, 5)),
            encode_batch(5, random_records(rng, 5), codec=DefaultRecordBatch.CODEC_GZIP),
            encode_batch(
                10, [control_marker(CONTROL_COMMIT, 0)], producer_id=1, transactional=True, control=True
            ),
        ]
    )
    records, _ = decode(spied, data)
    assert len(records) == 10 and len(read) == 2


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_batches_are_left_to_kafka_python(either_class: type, magic: int) -> None:
    """A magic 0 or 1 batch before a v2 one is read as kafka-python reads it: offsets 0-6, next offset 7."""
    legacy = LegacyRecordBatchBuilder(magic=magic, compression_type=0, batch_size=1 << 20)
    for offset in range(3):
        legacy.append(
            offset, timestamp=None if magic == 0 else 1_700_000_000_000, key=b"k", value=b"v%d" % offset
        )
    data = bytes(legacy.build()) + encode_batch(3, random_records(random.Random(5), 4))
    records, next_offset = decode(either_class, data)
    assert [r.offset for r in records] == list(range(7)) and next_offset == 7
    assert (records, next_offset) == decode(Fetcher.PartitionRecords, data)


def test_fetch_from_inside_a_batch_skips_the_records_before_it(either_class: type) -> None:
    """A fetch at 107 of a batch from 100 yields 107-119 only, as kafka-python does, and goes on at 120."""
    data = encode_batch(100, random_records(random.Random(1), 20))
    records, next_offset = decode(either_class, data, fetch_offset=107)
    assert [r.offset for r in records] == list(range(107, 120)) and next_offset == 120
    assert (records, next_offset) == decode(Fetcher.PartitionRecords, data, fetch_offset=107)


def test_read_committed_drops_aborted_transactions_like_kafka_python(either_class: type) -> None:
    """Under read_committed the aborted producer's records go, committed and plain ones stay: 3-6, next 9."""
    rng = random.Random(2)
    data = b"".join(
        [
            encode_batch(0, random_records(rng, 3), producer_id=5, transactional=True),  # aborted below
            encode_batch(3, random_records(rng, 2), producer_id=6, transactional=True),  # committed
            encode_batch(5, random_records(rng, 2)),  # not transactional
            encode_batch(
                7, [control_marker(CONTROL_ABORT, 0)], producer_id=5, transactional=True, control=True
            ),
            encode_batch(
                8, [control_marker(CONTROL_COMMIT, 0)], producer_id=6, transactional=True, control=True
            ),
        ]
    )
    options = {
        "isolation_level": IsolationLevel.READ_COMMITTED,
        "aborted_transactions": [AbortedTransaction(producer_id=5, first_offset=0)],
    }
    records, next_offset = decode(either_class, data, **options)
    assert [r.offset for r in records] == [3, 4, 5, 6] and next_offset == 9
    assert (records, next_offset) == decode(Fetcher.PartitionRecords, data, **options)


def test_without_reports_a_batch_failing_its_crc_raises_kafka_pythons_error(compiled_class: type) -> None:
    """Without reports, a flipped CRC byte raises CorruptRecordError with kafka-python's own message."""
    data = bytearray(encode_batch(0, random_records(random.Random(3), 5)))
    data[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="partition t-2 at offset 0 failed crc check"):
        decode(compiled_class, bytes(data))


def test_without_reports_a_malformed_record_raises_kafka_pythons_error_naming_the_partition(
    compiled_class: type,
) -> None:
    """A batch claiming two records but holding one raises CorruptRecordError naming t-2 and offset 40."""
    data = bytearray(encode_batch(40, [(0, b"k", b"value", [])]))
    struct.pack_into(">i", data, compiled_records.HEADER_SIZE - 4, 2)  # claims two records, holds one
    with pytest.raises(CorruptRecordError, match="partition t-2 at offset 40 is malformed"):
        decode(compiled_class, bytes(data), check_crcs=False)


def header_key_not_utf8_batch() -> bytes:
    """A CRC-valid batch at offset 40 whose one record has the header key b"\\xffb"."""
    data = bytearray(encode_batch(40, [(0, b"k", b"value", [("ab", b"v")])]))
    data[data.index(b"ab", compiled_records.HEADER_SIZE)] = 0xFF
    attributes = compiled_records.ATTRIBUTES_OFFSET
    struct.pack_into(">I", data, attributes - 4, calc_crc32c(bytes(data[attributes:])))  # CRC, just before
    return bytes(data)


def test_without_reports_a_header_key_not_utf8_raises_kafka_pythons_error_naming_the_partition(
    compiled_class: type,
) -> None:
    """A CRC-valid batch with a header key that is not UTF-8 raises CorruptRecordError on both paths."""
    data = header_key_not_utf8_batch()
    with pytest.raises(CorruptRecordError, match="invalid record structure"):
        decode(Fetcher.PartitionRecords, data)
    with pytest.raises(CorruptRecordError, match="partition t-2 at offset 40 is malformed.*0xff"):
        decode(compiled_class, data)


@pytest.fixture(params=["compiled", "kafka-python"])
def reporting(request: pytest.FixtureRequest) -> tuple[type, CorruptBatchReports]:
    """A reader class that skips and reports corrupt batches, with either record decoder, and its reports."""
    reports = CorruptBatchReports()
    if request.param == "compiled":
        batch_class, error_class, reason = compiled_records.compiled_batch_class()
        assert batch_class is not None, reason
        return compiled_records.make_partition_records_class(batch_class, error_class, reports), reports
    return compiled_records.make_partition_records_class(None, None, reports), reports


LAST_OFFSET_DELTA_OFFSET = compiled_records.ATTRIBUTES_OFFSET + 2


def with_broken_crc(batch: bytes) -> bytes:
    """The batch with its last byte flipped, so its CRC no longer matches."""
    damaged = bytearray(batch)
    damaged[-1] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize("codec", [DefaultRecordBatch.CODEC_NONE, DefaultRecordBatch.CODEC_GZIP])
def test_a_batch_failing_its_crc_is_skipped_and_reported_with_its_raw_bytes(
    reporting: tuple[type, CorruptBatchReports], codec: int
) -> None:
    """A plain or gzip batch failing its CRC mid-fetch yields no record and one report holding its bytes."""
    reader, reports = reporting
    rng = random.Random(6)
    corrupt = with_broken_crc(encode_batch(5, random_records(rng, 5), codec=codec))
    data = encode_batch(0, random_records(rng, 5)) + corrupt + encode_batch(10, random_records(rng, 5))
    records, next_offset = decode(reader, data)
    assert [r.offset for r in records] == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14] and next_offset == 15
    (report,) = reports.take_all()
    assert (report.topic, report.partition, report.base_offset, report.claimed_last_offset) == ("t", 2, 5, 9)
    assert (report.unread_offset, report.resume_offset, report.raw) == (5, 10, corrupt)
    assert report.error == "Record batch for partition t-2 at offset 5 failed crc check"
    assert reports.take_all() == []


def test_a_corrupt_last_batch_moves_the_position_past_it(reporting: tuple[type, CorruptBatchReports]) -> None:
    """Nothing after it in the fetch: the next fetch must start after it, or it comes back forever."""
    reader, reports = reporting
    rng = random.Random(7)
    data = encode_batch(0, random_records(rng, 3)) + with_broken_crc(encode_batch(3, random_records(rng, 4)))
    records, next_offset = decode(reader, data)
    assert [r.offset for r in records] == [0, 1, 2] and next_offset == 7
    assert [r.resume_offset for r in reports.take_all()] == [7]


def test_a_damaged_end_offset_is_corrected_by_the_next_batch_of_the_fetch(
    reporting: tuple[type, CorruptBatchReports],
) -> None:
    """A CRC failure may sit in the header field that says where the batch ends."""
    reader, reports = reporting
    rng = random.Random(9)
    corrupt = bytearray(encode_batch(5, random_records(rng, 5)))
    struct.pack_into(">i", corrupt, LAST_OFFSET_DELTA_OFFSET, 1_000_000)  # CRC-covered: now it fails
    data = encode_batch(0, random_records(rng, 5)) + bytes(corrupt) + encode_batch(10, random_records(rng, 5))
    records, next_offset = decode(reader, data)
    assert [r.offset for r in records] == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14] and next_offset == 15
    (report,) = reports.take_all()
    assert (report.claimed_last_offset, report.resume_offset) == (1_000_005, 10)


def test_a_next_batch_failing_its_own_crc_does_not_say_where_the_previous_ends(
    reporting: tuple[type, CorruptBatchReports],
) -> None:
    """Its base offset is not covered by any CRC: trusted, a damaged one could skip good records."""
    reader, reports = reporting
    rng = random.Random(10)
    data = with_broken_crc(encode_batch(5, random_records(rng, 5))) + with_broken_crc(
        encode_batch(500, random_records(rng, 3))
    )
    records, next_offset = decode(reader, data, fetch_offset=5)
    assert records == [] and next_offset == 503
    assert [(r.base_offset, r.resume_offset) for r in reports.take_all()] == [(5, 10), (500, 503)]


def test_a_batch_that_breaks_midway_reports_which_records_were_read(
    reporting: tuple[type, CorruptBatchReports],
) -> None:
    """A batch claiming four records but holding three delivers 40-42, reports 43 unread, resumes at 43."""
    reader, reports = reporting
    rng = random.Random(8)
    broken = bytearray(encode_batch(40, random_records(rng, 3)))
    struct.pack_into(">i", broken, compiled_records.HEADER_SIZE - 4, 4)  # claims four records, holds three
    data = bytes(broken) + encode_batch(43, random_records(rng, 2))
    records, next_offset = decode(reader, data, fetch_offset=40, check_crcs=False)
    assert [r.offset for r in records] == [40, 41, 42, 43, 44] and next_offset == 45
    (report,) = reports.take_all()
    assert (report.base_offset, report.unread_offset, report.resume_offset) == (40, 43, 43)
    assert "partition t-2 at offset 40 is malformed" in report.error
    assert "records 40..42 were read before it broke" in report.detail()


def test_a_header_key_not_utf8_is_reported_as_malformed(reporting: tuple[type, CorruptBatchReports]) -> None:
    """A CRC-valid batch with a header key that is not UTF-8 is skipped and reported whole, not raised."""
    reader, reports = reporting
    data = header_key_not_utf8_batch()
    records, next_offset = decode(reader, data, fetch_offset=40)
    assert records == [] and next_offset == 41
    (report,) = reports.take_all()
    assert "partition t-2 at offset 40 is malformed" in report.error and report.raw == data


LENGTH_FIELD_OFFSET = 8  # after the base offset


def with_damaged_length(batch: bytes, length: int = 3) -> bytes:
    """The batch with a length field too small for any batch: where it ends can no longer be read."""
    damaged = bytearray(batch)
    struct.pack_into(">i", damaged, LENGTH_FIELD_OFFSET, length)
    return bytes(damaged)


@pytest.mark.parametrize(
    "length",
    [3, 40, -100],
    ids=["shorter-than-a-record", "shorter-than-a-v2-header", "negative"],
)
def test_a_damaged_length_field_is_reported_with_the_rest_and_reading_resumes_at_the_next_intact_batch(
    reporting: tuple[type, CorruptBatchReports], length: int
) -> None:
    """kafka-python cannot split the fetch past such a batch and raises at every poll; the reader reports
    the bytes from it to the end and finds the next intact batch by its CRC."""
    reader, reports = reporting
    rng = random.Random(11)
    damaged = with_damaged_length(encode_batch(5, random_records(rng, 5)), length)
    rest = damaged + encode_batch(10, random_records(rng, 5))
    records, next_offset = decode(reader, encode_batch(0, random_records(rng, 5)) + rest)
    assert [r.offset for r in records] == [0, 1, 2, 3, 4] and next_offset == 10
    (report,) = reports.take_all()
    assert (report.base_offset, report.claimed_last_offset, report.unread_offset) == (5, 9, 5)
    assert (report.resume_offset, report.raw) == (10, rest)
    assert report.error.startswith(
        "Record batch for partition t-2 at offset 5 cannot be split from the fetch"
    )


def test_a_damaged_length_field_in_the_last_batch_resumes_where_its_header_claims_to_end(
    reporting: tuple[type, CorruptBatchReports],
) -> None:
    """With no intact batch after it, reading resumes where the damaged batch's header claims it ends, 9."""
    reader, reports = reporting
    rng = random.Random(12)
    data = with_damaged_length(encode_batch(5, random_records(rng, 4)))
    records, next_offset = decode(reader, data, fetch_offset=5)
    assert records == [] and next_offset == 9
    assert [(r.base_offset, r.resume_offset) for r in reports.take_all()] == [(5, 9)]


def test_a_damaged_length_after_a_crc_failure_is_one_report_resuming_at_the_next_intact_batch(
    reporting: tuple[type, CorruptBatchReports],
) -> None:
    """The batch after a CRC failure cannot be split either: everything unread goes in one dead letter."""
    reader, reports = reporting
    rng = random.Random(13)
    unread = (
        with_broken_crc(encode_batch(5, random_records(rng, 5)))
        + with_damaged_length(encode_batch(10, random_records(rng, 5)))
        + encode_batch(15, random_records(rng, 5))
    )
    records, next_offset = decode(reader, encode_batch(0, random_records(rng, 5)) + unread)
    assert [r.offset for r in records] == [0, 1, 2, 3, 4] and next_offset == 15
    (report,) = reports.take_all()
    assert (report.base_offset, report.resume_offset, report.raw) == (5, 15, unread)


def test_without_reports_a_damaged_length_field_raises_naming_the_partition_and_offset(
    either_class: type,
) -> None:
    """Without reports, a damaged length field raises naming t-2 and offset 2, with either decoder."""
    rng = random.Random(14)
    data = encode_batch(0, random_records(rng, 2)) + with_damaged_length(
        encode_batch(2, random_records(rng, 2))
    )
    with pytest.raises(CorruptRecordError, match="partition t-2 at offset 2 cannot be split from the fetch"):
        decode(either_class, data)


@pytest.mark.parametrize(
    "codec",
    [
        DefaultRecordBatch.CODEC_GZIP,
        DefaultRecordBatch.CODEC_SNAPPY,
        DefaultRecordBatch.CODEC_LZ4,
        DefaultRecordBatch.CODEC_ZSTD,
    ],
    ids=["gzip", "snappy", "lz4", "zstd"],
)
def test_every_codec_a_producer_may_use_is_read(
    reporting: tuple[type, CorruptBatchReports], codec: int
) -> None:
    """Batches compressed with each codec Kafka producers offer (Java's and librdkafka's lz4, snappy and
    zstd too, or a topic's own ``compression.type``) are read, not a poll error that stops the daemon."""
    reader, reports = reporting
    rng = random.Random(codec)
    data = encode_batch(0, random_records(rng, 7), codec=codec) + encode_batch(7, random_records(rng, 3))
    expected = decode(Fetcher.PartitionRecords, data)
    assert [record.offset for record in expected[0]] == list(range(10))
    assert decode(reader, data) == expected
    assert reports.take_all() == []


def test_a_batch_whose_crc_holds_but_payload_does_not_decompress_is_reported(
    compiled_class: type,
) -> None:
    """A gzip batch cut short, its CRC recomputed (a faulty client, a broker that does not decompress to
    check): reported and skipped, the next batch read, instead of an EOFError out of every poll."""
    reports = CorruptBatchReports()
    batch_class, error_class, _ = compiled_records.compiled_batch_class()
    reader = compiled_records.make_partition_records_class(batch_class, error_class, reports)
    lines: list[RecordFields] = [(1_700_000_000_000, None, b"hello " * 20, [])] * 4
    damaged = bytearray(encode_batch(0, lines, codec=DefaultRecordBatch.CODEC_GZIP))[:-10]
    struct.pack_into(">i", damaged, 8, len(damaged) - 12)
    attributes_at = compiled_records.ATTRIBUTES_OFFSET
    struct.pack_into(">I", damaged, attributes_at - 4, calc_crc32c(bytes(damaged[attributes_at:])))
    data = bytes(damaged) + encode_batch(4, random_records(random.Random(9), 2))
    records, next_offset = decode(reader, data, check_crcs=True)
    assert [record.offset for record in records] == [4, 5] and next_offset == 6
    [report] = reports.take_all()
    assert (report.base_offset, report.resume_offset) == (0, 4)
    assert "cannot be decompressed (EOFError" in report.error
