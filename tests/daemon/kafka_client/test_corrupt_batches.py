"""Where reading goes on after a corrupt batch, and what its dead letter says."""

from __future__ import annotations

from kafka.record.util import calc_crc32c

from logwarden.daemon.kafka_client.corrupt_batches import (
    RESUME_OFFSET_HEADER,
    UNREAD_OFFSET_HEADER,
    CorruptBatch,
    CorruptBatchReports,
    claimed_next_offset,
    next_intact_batch,
    resume_offset,
)
from logwarden.daemon.kafka_client.record_batches import encode_batch


def test_reading_resumes_after_the_last_offset_the_batch_claims() -> None:
    """A batch at 100 whose header says the next offset is 150 resumes reading at 150."""
    assert resume_offset(100, 150, fetch_offset=100) == 150


def test_a_damaged_claim_never_sends_reading_back_to_the_same_batch() -> None:
    """A broker answers a fetch with the batch that holds the fetch offset: resuming at or before
    it would fetch the corrupt batch again, forever."""
    assert resume_offset(100, 90, fetch_offset=100) == 101
    assert resume_offset(100, 101, fetch_offset=120) == 121


def test_the_next_batch_of_the_fetch_overrules_a_damaged_claim() -> None:
    """An intact next batch at 150 is where reading goes on, whether the claim is far too high or too low."""
    assert resume_offset(100, 9_000_000, fetch_offset=100, following_base_offset=150) == 150
    assert resume_offset(100, 90, fetch_offset=100, following_base_offset=150) == 150


def test_a_following_batch_that_does_not_come_after_is_ignored() -> None:
    """A following base offset not above the corrupt batch's own is no guide; the header's claim decides."""
    assert resume_offset(100, 150, fetch_offset=100, following_base_offset=100) == 150


def test_a_legacy_batch_without_a_claim_resumes_at_the_next_offset() -> None:
    """A legacy batch has no claimed end: reading resumes one past its own offset, at 8 after 7."""
    assert resume_offset(7, None, fetch_offset=3) == 8


def corrupt(unread_offset: int) -> CorruptBatch:
    """A CRC-failed batch at logs-2 offsets 40-49, resumed at 50, its records below ``unread_offset`` read."""
    return CorruptBatch(
        topic="logs",
        partition=2,
        base_offset=40,
        claimed_last_offset=49,
        unread_offset=unread_offset,
        resume_offset=50,
        error="Record batch for partition logs-2 at offset 40 failed crc check",
        raw=b"\x00" * 80,
    )


def test_the_detail_names_the_error_the_claim_and_the_resume_offset() -> None:
    """Nothing read: the detail is the error, the batch's start and claimed end, and the offset resumed at."""
    assert corrupt(40).detail() == (
        "Record batch for partition logs-2 at offset 40 failed crc check"
        " (the batch starts at offset 40, its header claims 49); reading resumed at offset 50"
    )


def test_the_detail_says_which_records_were_read_before_the_batch_broke() -> None:
    """Broken at offset 45, the detail names records 40..44 as read before it, then where reading resumed."""
    assert "records 40..44 were read before it broke; reading resumed at offset 50" in corrupt(45).detail()


def test_headers_carry_the_unread_and_resume_offsets() -> None:
    """The dead letter's headers give the unread and the resume offset as ASCII decimals, b"45" and b"50"."""
    assert corrupt(45).headers() == [(UNREAD_OFFSET_HEADER, b"45"), (RESUME_OFFSET_HEADER, b"50")]


def test_reports_are_taken_once() -> None:
    """take_all returns the reports in the order added, then none: no batch is dead-lettered twice."""
    reports = CorruptBatchReports()
    reports.add(corrupt(40))
    reports.add(corrupt(45))
    assert [r.unread_offset for r in reports.take_all()] == [40, 45]
    assert reports.take_all() == []


def test_the_next_intact_batch_is_found_by_its_crc_after_damaged_bytes() -> None:
    """After 97 damaged bytes the scan finds the intact batch behind them and returns its base offset, 42."""
    good = encode_batch(42, [(1, b"k", b"v", [])])
    assert next_intact_batch(b"\x00" * 7 + b"\x02" * 90 + good, calc_crc32c) == 42


def test_the_batch_at_the_start_is_never_the_next_one() -> None:
    """The damaged batch itself starts there; only a batch after it says where reading goes on."""
    assert next_intact_batch(encode_batch(7, [(1, None, b"v", [])]), calc_crc32c) is None


def test_a_batch_whose_crc_fails_or_that_is_cut_off_is_not_intact() -> None:
    """A batch with a flipped last byte, or cut short by one byte, is never taken as where reading goes on."""
    good = encode_batch(42, [(1, b"k", b"value", [])])
    broken = good[:-1] + bytes([good[-1] ^ 0xFF])
    assert next_intact_batch(b"\x01" + broken, calc_crc32c) is None
    assert next_intact_batch(b"\x01" + good[:-1], calc_crc32c) is None


def test_the_claimed_end_is_read_from_a_v2_header_only() -> None:
    """A v2 header claims one past its last offset (102); fewer bytes than a header, or magic not 2: None."""
    batch = encode_batch(100, [(1, None, b"a", []), (2, None, b"b", [])])
    assert claimed_next_offset(batch) == 102
    assert claimed_next_offset(batch[:60]) is None  # shorter than a header
    assert claimed_next_offset(batch[:16] + b"\x01" + batch[17:]) is None  # not format v2
