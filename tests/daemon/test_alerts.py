"""Alert and dead-letter records: stable ids, every documented field, strict JSON."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest
from alert_contract import ALERT_FIELDS, TRUNCATED_EVENT_FIELDS
from model_metadata import model_metadata

from logwarden.daemon.alerts import (
    MAX_ALERT_EVENT_BYTES,
    MAX_ALERT_RECORD_BYTES,
    MAX_ALERT_TEMPLATE_CHARS,
    TOP_K_MAXIMUM,
    alert_id,
    build_alert,
    dead_letter_headers,
    encode_alert,
    expected_events,
    iso_utc,
    session_end_alert_id,
)
from logwarden.model.contract import END_ID, FIRST_EVENT_ID, UNKNOWN_ID, metadata_digest

METADATA = model_metadata(
    vocabulary=("T0", "T1", "T2"),
    templates=("open <*>", "read <*> bytes", "close <*>"),
    threshold=4.5,
    onnx_sha256="0123456789abcdef" * 4,
)
# log P over [<START>, <END>, <UNKNOWN>, T0, T1, T2]
PROBS = np.array([0.0, 0.15, 0.0, 0.2, 0.6, 0.05])
LOG_PROBS = np.log(np.clip(PROBS, 1e-12, None)).astype(np.float32)


def alert(**changes: Any) -> dict[str, Any]:
    """An alert for a surprising T2 event with defaults for every argument (helper)."""
    arguments: dict[str, Any] = {
        "alert_id": alert_id("logs", 3, 1234),
        "entity": "blk_1",
        "event_id": FIRST_EVENT_ID + 2,
        "score": 7.25,
        "threshold": 4.5,
        "event_text": "close blk_1",
        "log_probs": LOG_PROBS,
        "top_k": 2,
        "metadata": METADATA,
        "source": ("logs", 3, 1234),
        "event_time_ms": 1_700_000_000_123,
        "detected_ms": 1_700_000_001_000,
    }
    arguments.update(changes)
    return build_alert(**arguments)


def test_alert_id_same_record_same_id() -> None:
    """A replayed record gets the id it got the first time (consumers de-duplicate on it)."""
    assert alert_id("logs", 3, 1234) == alert_id("logs", 3, 1234)
    assert uuid.UUID(alert_id("logs", 3, 1234)).version == 5


@pytest.mark.parametrize(
    "other", [("logs", 3, 1235), ("logs", 4, 1234), ("logs2", 3, 1234), ("logs/3", 1, 234)]
)
def test_alert_id_other_record_other_id(other: tuple[str, int, int]) -> None:
    """Records at different topic/partition/offset never share an id."""
    assert alert_id(*other) != alert_id("logs", 3, 1234)


def test_session_end_alert_id_stable_and_distinct() -> None:
    """Session-end ids depend on the entity and its last event's time, and differ from event alert ids."""
    t = 1_700_000_000_000
    assert session_end_alert_id("blk_1", t) == session_end_alert_id("blk_1", t)
    assert session_end_alert_id("blk_1", t) != session_end_alert_id("blk_2", t)
    assert session_end_alert_id("blk_1", t) != alert_id("blk_1", 0, t)
    # A later session of the same entity is another session, another id.
    assert session_end_alert_id("blk_1", t) != session_end_alert_id("blk_1", t + 60_000)


def test_build_alert_has_every_documented_field() -> None:
    """An event alert carries the documented fields with the values it was built from."""
    built = alert()
    assert set(built) == ALERT_FIELDS
    assert built["alert_id"] == alert_id("logs", 3, 1234)
    assert (built["kind"], built["entity"], built["score"], built["threshold"]) == (
        "event",
        "blk_1",
        7.25,
        4.5,
    )
    assert (built["template"], built["event"]) == ("close <*>", "close blk_1")
    assert built["model"] == {
        "version": METADATA.model_version,
        "sha256": METADATA.onnx_sha256,
        "metadata_sha256": metadata_digest(json.loads(METADATA.to_json())),
    }
    assert built["source"] == {"topic": "logs", "partition": 3, "offset": 1234}
    assert built["event_time"] == "2023-11-14T22:13:20.123Z"
    assert built["detected_at"] == "2023-11-14T22:13:21.000Z"


@pytest.mark.parametrize(
    ("event_id", "kind", "template"),
    [
        (UNKNOWN_ID, "unknown_template", "<UNKNOWN>"),
        (END_ID, "session_end", "<END>"),
        (FIRST_EVENT_ID, "event", "open <*>"),
    ],
)
def test_build_alert_kind_follows_event_id(event_id: int, kind: str, template: str) -> None:
    """The kind and template name what triggered the alert."""
    built = alert(event_id=event_id)
    assert (built["kind"], built["template"]) == (kind, template)


def test_build_alert_session_end_has_no_source() -> None:
    """A session-end alert is triggered by a timeout, not a record, so its source is null."""
    built = alert(
        event_id=END_ID,
        source=None,
        event_text=None,
        alert_id=session_end_alert_id("blk_1", 1_700_000_000_000),
    )
    assert (built["source"], built["event"], built["kind"]) == (None, None, "session_end")


def test_expected_events_top_k_most_likely_first() -> None:
    """expected lists the top-k next events by probability, with key, template and probability."""
    expected = expected_events(LOG_PROBS, METADATA, 3)
    assert [e["event"] for e in expected] == ["T1", "T0", "<END>"]
    assert expected[0] == {
        "event": "T1",
        "template": "read <*> bytes",
        "probability": pytest.approx(0.6, abs=1e-6),
    }
    assert expected[2]["template"] == "<END>"


@pytest.mark.parametrize(("top_k", "length"), [(0, 0), (2, 2), (100, 6)])
def test_expected_events_length_is_min_of_k_and_vocabulary(top_k: int, length: int) -> None:
    """top_k 0 lists nothing; a top_k above the vocabulary lists every class."""
    assert len(expected_events(LOG_PROBS, METADATA, top_k)) == length


def test_encode_alert_compact_json_round_trip() -> None:
    """encode_alert writes compact JSON that decodes to the same alert."""
    built = alert()
    encoded = encode_alert(built)
    assert encoded == json.dumps(built, separators=(",", ":")).encode()
    assert json.loads(encoded) == built


def test_build_alert_infinite_score_encoded_as_null() -> None:
    """An infinite surprise (probability 0) is written as null, never as the non-JSON Infinity."""
    built = alert(score=float("inf"))
    assert built["score"] is None
    assert json.loads(encode_alert(built))["score"] is None


def test_encode_alert_nan_refused() -> None:
    """encode_alert refuses NaN rather than writing invalid JSON."""
    with pytest.raises(ValueError):
        encode_alert({"score": float("nan")})


@pytest.mark.parametrize(
    ("epoch_ms", "expected"),
    [
        (10**11, "1973-03-03T09:46:40.000Z"),
        (0, None),
        (1_700_000_000, None),
        (-1, None),
        (None, None),
        (10**18, None),
    ],
)
def test_iso_utc_edges(epoch_ms: int | None, expected: str | None) -> None:
    """iso_utc gives UTC with a Z suffix, and None for "no timestamp" (-1 or None) or absurd values:
    past the year 9999, or before 1973 (0, or seconds sent as milliseconds)."""
    assert iso_utc(epoch_ms) == expected


def test_dead_letter_headers_name_reason_and_source() -> None:
    """Dead-letter headers carry reason, detail and the record's origin as bytes."""
    headers = dead_letter_headers("invalid_json", "line 1 column 5: Expecting value", "logs", 2, 99)
    assert headers == [
        ("logwarden.reason", b"invalid_json"),
        ("logwarden.detail", b"line 1 column 5: Expecting value"),
        ("logwarden.source.topic", b"logs"),
        ("logwarden.source.partition", b"2"),
        ("logwarden.source.offset", b"99"),
    ]


def test_dead_letter_headers_long_detail_truncated() -> None:
    """A huge detail is cut to 1 KiB of valid UTF-8 so a header never bloats the record."""
    detail = dict(dead_letter_headers("invalid_json", "é" * 5000, "logs", 0, 0))["logwarden.detail"]
    assert len(detail) <= 1024 and detail.endswith(b"...")
    detail.decode("utf-8")


# -- long events ---------------------------------------------------------------------------

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
"""The broker's and a new topic's default ``message.max.bytes``: an alert above it is refused."""


def test_build_alert_event_at_the_limit_kept_whole() -> None:
    """An event of exactly MAX_ALERT_EVENT_BYTES is not cut and adds no truncation fields."""
    text = "x" * (MAX_ALERT_EVENT_BYTES - 2) + "\u00e9"
    built = alert(event_text=text)
    assert built["event"] == text and set(built) == ALERT_FIELDS


@pytest.mark.parametrize("ascii_prefix", range(4))
@pytest.mark.parametrize("char", ["x", "\u00e9", "\u20ac", "\U0001f600", "\x01", "\ud800"])
def test_build_alert_long_event_cut_on_a_character_boundary(char: str, ascii_prefix: int) -> None:
    """A longer event keeps its start, at most MAX_ALERT_EVENT_BYTES of whole characters, and says so."""
    text = "a" * ascii_prefix + char * (MAX_ALERT_EVENT_BYTES + 7)
    original_bytes = len(text.encode("utf-8", "surrogatepass"))
    built = alert(event_text=text)
    event = built["event"]
    kept_bytes = len(event.encode("utf-8"))
    assert text.replace("\ud800", "\ufffd").startswith(event)
    assert MAX_ALERT_EVENT_BYTES - 4 < kept_bytes <= MAX_ALERT_EVENT_BYTES
    assert set(built) == ALERT_FIELDS | TRUNCATED_EVENT_FIELDS
    assert (built["event_truncated"], built["event_bytes"]) == (True, original_bytes)
    assert json.loads(encode_alert(built))["event"] == event


@pytest.mark.parametrize("char", ["\x01", "\u00e9", "\U0001f600", '"'])
def test_encode_alert_of_the_largest_input_line_fits_kafkas_default_limit(char: str) -> None:
    """A 1 MiB line of characters JSON escapes (up to 6 bytes per UTF-8 byte) makes an alert Kafka takes."""
    text = char * (1024 * 1024 // len(char.encode()))
    encoded = encode_alert(alert(event_text=text))
    assert len(encoded) < KAFKA_DEFAULT_MAX_MESSAGE_BYTES


@pytest.mark.parametrize("char", ["x", "\U0001f600"])
def test_encode_alert_of_a_model_with_huge_templates_fits_kafkas_default_limit(char: str) -> None:
    """Templates mined from lines of a million characters, the event's and every expected one's, at the
    largest top_k and with the largest event: each template is cut to its first characters, and the
    alert stays deliverable."""
    vocabulary = tuple(f"T{n}" for n in range(TOP_K_MAXIMUM + 1))
    huge = model_metadata(
        vocabulary=vocabulary,
        templates=tuple(f"{n} " + char * 1_100_000 for n in range(len(vocabulary))),
        threshold=4.5,
        onnx_sha256="0123456789abcdef" * 4,
    )
    # Every template event equally likely; the reserved tokens (no template of their own) never.
    log_probs = np.full(FIRST_EVENT_ID + len(vocabulary), -np.log(len(vocabulary)))
    log_probs[:FIRST_EVENT_ID] = -50.0
    built = alert(
        metadata=huge,
        log_probs=log_probs.astype(np.float32),
        top_k=TOP_K_MAXIMUM,
        event_text=char * (1024 * 1024 // len(char.encode())),
    )
    assert len(built["expected"]) == TOP_K_MAXIMUM
    templates = [built["template"], *(expected["template"] for expected in built["expected"])]
    assert all(len(t) == MAX_ALERT_TEMPLATE_CHARS and t.endswith(char * 3 + "...") for t in templates)
    assert len(encode_alert(built)) < KAFKA_DEFAULT_MAX_MESSAGE_BYTES


def test_build_alert_template_at_the_limit_kept_whole() -> None:
    """A template of exactly MAX_ALERT_TEMPLATE_CHARS characters is not cut."""
    template = "t" * MAX_ALERT_TEMPLATE_CHARS
    metadata = model_metadata(
        vocabulary=("T0",), templates=(template,), threshold=4.5, onnx_sha256="0123456789abcdef" * 4
    )
    built = alert(metadata=metadata, event_id=FIRST_EVENT_ID, log_probs=LOG_PROBS[:4], top_k=1)
    assert built["template"] == template and built["expected"][0]["template"] == template


def test_build_alert_session_end_without_event_has_no_truncation_fields() -> None:
    """A session end carries no event text (None or empty) and nothing about truncation."""
    for text in (None, ""):
        built = alert(event_id=END_ID, source=None, event_text=text)
        assert built["event"] == text and set(built) == ALERT_FIELDS


# -- records without a Kafka timestamp ------------------------------------------------------


def test_build_alert_without_event_time_writes_null() -> None:
    """A record with no Kafka timestamp (None from a legacy record, or -1) gives event_time null."""
    assert alert(event_time_ms=None)["event_time"] is None
    assert alert(event_time_ms=-1)["event_time"] is None


def test_build_alert_event_under_the_limit_in_characters_but_over_it_in_bytes_is_cut() -> None:
    """The limit is in UTF-8 bytes: 8 Ki two-byte characters are 16 KiB and more, and get cut."""
    text = "\u00e9" * (MAX_ALERT_EVENT_BYTES // 2 + 10)
    built = alert(event_text=text)
    assert len(built["event"].encode()) <= MAX_ALERT_EVENT_BYTES
    assert (built["event_truncated"], built["event_bytes"]) == (True, len(text.encode()))


def test_build_alert_lone_surrogate_in_event_becomes_replacement_character() -> None:
    """JSON input can hold a lone surrogate in its message; the alert must stay valid Unicode (jq, UTF-8)."""
    built = alert(event_text="login failed \ud800 for \udfffroot \U0001f600")
    assert built["event"] == "login failed \ufffd for \ufffdroot \U0001f600"
    encoded = encode_alert(built)
    assert b"\\ud800" not in encoded and b"\\udfff" not in encoded
    json.loads(encoded)["event"].encode("utf-8")


def test_the_largest_alert_record_fits_the_bound_the_config_enforces() -> None:
    """Every part at its cap, each character escaped at its longest: a 1,024-character entity and
    templates of characters outside the BMP (12 bytes each in JSON), an event of control characters
    (6 bytes each), 20 expected events; the record (key and value) stays under MAX_ALERT_RECORD_BYTES."""
    astral = "\U0001f600"
    templates = tuple(astral * 5000 + str(i) for i in range(TOP_K_MAXIMUM + 1))
    vocabulary = tuple(f"T{i}" for i in range(len(templates)))
    metadata = model_metadata(
        vocabulary=vocabulary, templates=templates, threshold=4.5, onnx_sha256="ab" * 32
    )
    entity = astral * 1024
    log_probs = np.full(len(vocabulary) + FIRST_EVENT_ID, -3.0, np.float32)
    built = alert(
        entity=entity,
        event_id=FIRST_EVENT_ID,
        event_text="\x01" * 1_000_000,
        log_probs=log_probs,
        top_k=TOP_K_MAXIMUM,
        metadata=metadata,
        source=("t" * 249, 2**31 - 1, 2**63 - 1),
        kind="unseen_counts",
        session_events=2**63 - 1,
        score=-1e300,
        threshold=-1e300,
    )
    assert len(built["expected"]) == TOP_K_MAXIMUM
    record_bytes = len(encode_alert(built)) + len(entity.encode("utf-8"))
    assert 300 * 1024 < record_bytes < MAX_ALERT_RECORD_BYTES
