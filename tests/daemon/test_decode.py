"""Record -> event decoding: the happy paths and every dead-letter reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from model_metadata import HDFS_BLOCK, hdfs_metadata

from logwarden.daemon.config import EntityConfig, InputConfig, JsonInputConfig
from logwarden.daemon.decode import DECODE_REASONS, NO_EVENT_TIME, DecodedEvent, MessageDecoder
from logwarden.errors import ConfigError, DecodeError
from logwarden.events.entity import MAX_ENTITY_CHARS
from logwarden.model.contract import FIRST_EVENT_ID, UNKNOWN_ID

RECEIVING = (
    "081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_-1608999687919862906 "
    "src: /10.250.19.102:54106 dest: /10.250.19.102:50010"
)
TERMINATING = (
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_3886 terminating"
)
UNSEEN = "081109 203615 148 INFO dfs.DataNode$PacketResponder: Deleting block blk_3886 file /tmp/x"
TS = 1_700_000_000_123


def decoder(
    fmt: str = "raw",
    *,
    entity: EntityConfig | None = None,
    json_input: JsonInputConfig | None = None,
    kind: str = "logs",
    **input_options: Any,
) -> MessageDecoder:
    """A decoder for the given input settings (helper)."""
    config = InputConfig(
        format=fmt,  # type: ignore[arg-type]
        entity=entity or EntityConfig(regex=HDFS_BLOCK),
        json=json_input or JsonInputConfig(),
        **input_options,
    )
    return MessageDecoder.build(config, hdfs_metadata(kind))


def reason_of(decoder_: MessageDecoder, value: bytes | None, key: bytes | None = None) -> DecodeError:
    """The DecodeError for one record (helper)."""
    with pytest.raises(DecodeError) as caught:
        decoder_.decode_one(value, key, TS)
    return caught.value


def as_json(document: Any) -> bytes:
    """UTF-8 JSON of ``document`` (helper)."""
    return json.dumps(document).encode()


# -- raw lines ------------------------------------------------------------------------------


def test_decode_one_raw_line_gives_entity_template_id_and_time() -> None:
    """A known raw line yields its entity, FIRST_EVENT_ID + template index, the line and the record time."""
    event = decoder().decode_one(TERMINATING.encode(), None, TS)
    assert event == DecodedEvent("blk_3886", FIRST_EVENT_ID + 1, TERMINATING, TS)


def test_decode_one_raw_list_of_any_length_fits_its_collapsed_template() -> None:
    """The daemon matches as the trainer mined: a model with runs collapsed fits a list of blocks of
    a length it never saw."""
    blocks = " ".join(f"blk_{n}" for n in range(7))
    line = f"081109 203615 148 INFO dfs.FSNamesystem: BLOCK* ask 10.0.0.1:50010 to delete {blocks}"
    assert decoder().decode_one(line.encode(), None, TS).event_id == FIRST_EVENT_ID + 2


def test_decode_one_raw_line_trailing_newline_ignored() -> None:
    """A trailing CRLF is not part of the event text and does not change the template."""
    event = decoder().decode_one(RECEIVING.encode() + b"\r\n", None, TS)
    assert (event.entity, event.event_id, event.text) == (
        "blk_-1608999687919862906",
        FIRST_EVENT_ID,
        RECEIVING,
    )


def test_decode_one_raw_unseen_template_is_unknown_not_error() -> None:
    """A line of no known template is an UNKNOWN event (an anomaly), not a dead letter."""
    assert decoder().decode_one(UNSEEN.encode(), None, TS).event_id == UNKNOWN_ID


def test_decode_one_raw_entity_from_record_key() -> None:
    """With entity key: true the record key is the entity, whatever the line says."""
    event = decoder(entity=EntityConfig(key=True)).decode_one(TERMINATING.encode(), b"host-7", TS)
    assert (event.entity, event.event_id) == ("host-7", FIRST_EVENT_ID + 1)


def test_decode_one_header_regex_override_used() -> None:
    """input.header_regex replaces the model's header regex."""
    custom = decoder(header_regex=r"\[(?P<content>.*)\]$")
    event = custom.decode_one(b"[PacketResponder 2 for block blk_9 terminating]", None, TS)
    assert event.event_id == FIRST_EVENT_ID + 1


@pytest.mark.parametrize(
    ("value", "key", "reason", "detail"),
    [
        (None, None, "null_value", "tombstone"),
        (b"\xff" * 10, None, "oversize", "input.max_message_bytes 8"),
        (b"blk_1 ok \xc3\x28", None, "invalid_utf8", "byte offset 9"),
        (b"\r\n", None, "missing_message", "empty line"),
        (TERMINATING.replace("blk_3886", "nothing").encode(), None, "missing_entity", "entity regex"),
    ],
)
def test_decode_one_raw_bad_record_reason(
    value: bytes | None, key: bytes | None, reason: str, detail: str
) -> None:
    """Each unreadable raw record is rejected with its machine-readable reason and a useful detail."""
    error = reason_of(decoder(max_message_bytes=8 if reason == "oversize" else 1024), value, key)
    assert error.reason == reason
    assert detail in error.detail


def test_decode_one_two_mib_value_oversize() -> None:
    """A 2 MiB value exceeds the default 1 MiB limit and is rejected before decoding."""
    error = reason_of(decoder(), b"x" * (2 * 1024 * 1024))
    assert error.reason == "oversize" and str(2 * 1024 * 1024) in error.detail


def test_decode_one_entity_longer_than_an_identifier_is_oversize() -> None:
    """A megabyte-long entity would key alerts Kafka refuses: dead-lettered; the longest allowed is kept."""
    line = TERMINATING.replace("blk_3886", "blk_" + "7" * (MAX_ENTITY_CHARS - 4))
    assert len(decoder().decode_one(line.encode(), None, TS).entity) == MAX_ENTITY_CHARS
    error = reason_of(decoder(), line.replace("blk_", "blk_7").encode())
    assert error.reason == "oversize" and f"{MAX_ENTITY_CHARS + 1} characters" in error.detail
    document = {"host": "h" * 5000, "message": TERMINATING}
    assert reason_of(decoder("json", **JSON_FIELD_ENTITY), as_json(document)).reason == "oversize"


def test_decode_one_json_entity_of_exactly_the_limit_is_kept() -> None:
    """The JSON path has its own length check: the longest allowed entity is kept, one more is not."""
    document = {"host": "h" * MAX_ENTITY_CHARS, "message": TERMINATING}
    assert (
        decoder("json", **JSON_FIELD_ENTITY).decode_one(as_json(document), None, TS).entity
        == document["host"]
    )
    document["host"] += "h"
    assert reason_of(decoder("json", **JSON_FIELD_ENTITY), as_json(document)).reason == "oversize"


@pytest.mark.parametrize("fmt", ["raw", "json"])
def test_decode_one_byte_order_mark_at_the_start_of_a_record_is_dropped(fmt: str) -> None:
    """A record starting with a UTF-8 BOM is the same event as without it, as a file's first line is."""
    value = as_json({"host": "h-1", "message": TERMINATING}) if fmt == "json" else TERMINATING.encode()
    options = JSON_FIELD_ENTITY if fmt == "json" else {}
    plain = decoder(fmt, **options).decode_one(value, None, TS)
    assert decoder(fmt, **options).decode_one(b"\xef\xbb\xbf" + value, None, TS) == plain


def test_decode_one_byte_order_mark_inside_a_line_stays_in_it() -> None:
    """Only a leading BOM goes: one inside the line is part of what was logged."""
    inside = TERMINATING.replace(" ", " \ufeff", 1)
    assert decoder().decode_one(inside.encode(), None, TS).text == inside


def test_decode_one_value_at_limit_accepted() -> None:
    """A value of exactly max_message_bytes is accepted (the limit is inclusive)."""
    line = TERMINATING.encode()
    assert decoder(max_message_bytes=len(line)).decode_one(line, None, TS).entity == "blk_3886"


@pytest.mark.parametrize(
    ("key", "reason"), [(None, "missing_entity"), (b"", "missing_entity"), (b"h\xffx", "invalid_utf8")]
)
def test_decode_one_key_entity_bad_key_reason(key: bytes | None, reason: str) -> None:
    """With key: true a missing, empty or non-UTF-8 key is a dead letter."""
    error = reason_of(decoder(entity=EntityConfig(key=True)), TERMINATING.encode(), key)
    assert error.reason == reason


# -- JSON -----------------------------------------------------------------------------------

JSON_FIELD_ENTITY = {"entity": EntityConfig(field="host")}


def test_decode_one_json_message_entity_field() -> None:
    """JSON input: the message field is matched against templates, the entity read from its field."""
    value = as_json({"host": "dn-3", "message": TERMINATING})
    event = decoder("json", **JSON_FIELD_ENTITY).decode_one(value, None, TS)
    assert event == DecodedEvent("dn-3", FIRST_EVENT_ID + 1, TERMINATING, TS)


def test_decode_one_json_entity_regex_over_message() -> None:
    """JSON input with an entity regex searches the message."""
    event = decoder("json").decode_one(as_json({"message": TERMINATING}), None, TS)
    assert event.entity == "blk_3886"


def test_decode_one_json_dotted_field_reaches_nested_object() -> None:
    """A dotted field name reads a nested object; an integer entity becomes its decimal string."""
    dec = decoder(
        "json", entity=EntityConfig(field="host.id"), json_input=JsonInputConfig(message_field="log.msg")
    )
    event = dec.decode_one(as_json({"host": {"id": 42}, "log": {"msg": TERMINATING}}), None, TS)
    assert (event.entity, event.event_id) == ("42", FIRST_EVENT_ID + 1)


def test_decode_one_json_literal_dotted_key_preferred() -> None:
    """A key literally named ``host.id`` wins over the nested path."""
    dec = decoder("json", entity=EntityConfig(field="host.id"))
    event = dec.decode_one(
        as_json({"host.id": "flat", "host": {"id": "nested"}, "message": TERMINATING}), None, TS
    )
    assert event.entity == "flat"


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        (b'{"host": "a", "message": ', "invalid_json", "line 1 column 26"),
        (b'{"host": "a",\n "message": x}', "invalid_json", "line 2 column 13"),
        (b"[1, 2]", "not_an_object", "array"),
        (b'"just a string"', "not_an_object", "string"),
        (b"null", "not_an_object", "null"),
        (b'{"host": "a", "message": "m", "x": NaN}', "non_finite_number", "NaN"),
        (b'{"host": "a", "message": "m", "x": {"y": [Infinity]}}', "non_finite_number", "Infinity"),
        (b'{"host": "a", "message": "m", "x": -Infinity}', "non_finite_number", "-Infinity"),
        (b'{"host": "a", "message": "m", "x": 1e999}', "non_finite_number", "1e999"),
        (b'{"host": "a", "message": "m", "x": -2.5E+400}', "non_finite_number", "-2.5E+400"),
        (b'{"host": "a"}', "missing_message", "'message' is missing"),
        (b'{"host": "a", "message": null}', "missing_message", "'message' is missing"),
        (b'{"host": "a", "message": 12}', "missing_message", "'message' is a number"),
        (b'{"host": "a", "message": "  "}', "missing_message", "'message' is empty"),
        (('{"message": "' + TERMINATING + '"}').encode(), "missing_entity", "'host' is missing"),
        (
            ('{"host": true, "message": "' + TERMINATING + '"}').encode(),
            "missing_entity",
            "'host' is a boolean",
        ),
        (('{"host": "", "message": "' + TERMINATING + '"}').encode(), "missing_entity", "'host' is empty"),
        (b"[" * 100_000, "invalid_json", "nested too deeply"),
        (b'{"x": 1' + b"0" * 5000 + b"}", "invalid_json", "digits"),
    ],
)
def test_decode_one_json_bad_record_reason(value: bytes, reason: str, detail: str) -> None:
    """Each unreadable JSON record is rejected with its reason and a detail locating the problem."""
    error = reason_of(decoder("json", **JSON_FIELD_ENTITY), value)
    assert (error.reason, detail in error.detail) == (reason, True), error.detail


def test_decode_one_json_invalid_utf8_offset() -> None:
    """Invalid UTF-8 in a JSON value is reported with the byte offset, before JSON parsing."""
    error = reason_of(decoder("json", **JSON_FIELD_ENTITY), b'{"host": "\xe2\x82"}')
    assert (error.reason, error.detail) == ("invalid_utf8", "value is not UTF-8 at byte offset 10")


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        (1_700_000_000, 1_700_000_000_000),
        (1_700_000_000.5, 1_700_000_000_500),
        (1_700_000_000_250, 1_700_000_000_250),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T23:13:20.125+01:00", 1_700_000_000_125),
        ("2023-11-14T22:13:20", 1_700_000_000_000),
        # as shippers write them: epoch numbers as strings, microseconds, nanoseconds
        ("1700000000", 1_700_000_000_000),
        ("1700000000.5", 1_700_000_000_500),
        ("1700000000250", 1_700_000_000_250),
        (1_700_000_000_250_000, 1_700_000_000_250),
        ("1700000000250000", 1_700_000_000_250),
        (1_700_000_000_250_000_000, 1_700_000_000_250),
    ],
)
def test_decode_one_json_timestamp_field_parsed(ts: Any, expected_ms: int) -> None:
    """timestamp_field takes epoch seconds or milliseconds, or ISO-8601 (naive is UTC)."""
    dec = decoder("json", **JSON_FIELD_ENTITY, json_input=JsonInputConfig(timestamp_field="ts"))
    event = dec.decode_one(as_json({"host": "a", "message": TERMINATING, "ts": ts}), None, TS)
    assert event.event_time_ms == expected_ms


@pytest.mark.parametrize(
    ("ts", "detail"),
    [
        (None, "'ts' is missing"),
        (True, "'ts' is a boolean"),
        ("yesterday", "not ISO-8601 or an epoch number"),
        (-5, "out of range"),
        (10**20, "out of range"),
        ({"s": 1}, "'ts' is a object"),
    ],
)
def test_decode_one_json_unreadable_timestamp_scores_the_event_without_time_and_counts_it(
    ts: Any, detail: str
) -> None:
    """A configured timestamp field that is missing, of the wrong type or out of range only says what
    the alert reports as event_time: the event is still decoded (dead-lettering it would let whoever
    writes the logs keep any event unscored), without a time, counted with the latest reason."""
    dec = decoder("json", **JSON_FIELD_ENTITY, json_input=JsonInputConfig(timestamp_field="ts"))
    document = {"host": "a", "message": TERMINATING}
    if ts is not None:
        document["ts"] = ts
    event = dec.decode_one(as_json(document), None, TS)
    assert (event.entity, event.event_time_ms) == ("a", NO_EVENT_TIME)
    assert dec.unreadable_event_times == 1
    assert dec.last_unreadable_event_time is not None and detail in dec.last_unreadable_event_time


# -- pre-parsed event keys ------------------------------------------------------------------

SEQUENCE_JSON = {"kind": "sequences", "json_input": JsonInputConfig(event_field="event"), **JSON_FIELD_ENTITY}


@pytest.mark.parametrize(
    ("event", "expected"), [("22", FIRST_EVENT_ID + 1), (11, FIRST_EVENT_ID + 2), ("99", UNKNOWN_ID)]
)
def test_decode_one_event_field_looked_up_in_vocabulary(event: Any, expected: int) -> None:
    """For sequence models the event key is mapped through the vocabulary; an unseen key is UNKNOWN."""
    event_ = decoder("json", **SEQUENCE_JSON).decode_one(as_json({"host": "a", "event": event}), None, TS)
    assert (event_.entity, event_.event_id, event_.text) == ("a", expected, str(event))


def test_decode_one_event_field_text_is_message_when_present() -> None:
    """With event_field the alert text is the message when the record has one."""
    event = decoder("json", **SEQUENCE_JSON).decode_one(
        as_json({"host": "a", "event": "5", "message": "hi"}), None, TS
    )
    assert (event.event_id, event.text) == (FIRST_EVENT_ID, "hi")


@pytest.mark.parametrize(
    "document",
    [{"host": "a"}, {"host": "a", "event": ""}, {"host": "a", "event": " \t"}, {"host": "a", "event": [5]}],
)
def test_decode_one_event_field_missing_rejected(document: dict[str, Any]) -> None:
    """A record without a usable event key is a dead letter with reason missing_event."""
    assert reason_of(decoder("json", **SEQUENCE_JSON), as_json(document)).reason == "missing_event"


def test_decode_one_event_field_on_log_model_uses_template_keys() -> None:
    """A raw-log model also accepts pre-parsed keys (T<i>) through event_field."""
    dec = decoder("json", json_input=JsonInputConfig(event_field="event"), **JSON_FIELD_ENTITY)
    assert dec.decode_one(as_json({"host": "a", "event": "T1"}), None, TS).event_id == FIRST_EVENT_ID + 1


@pytest.mark.parametrize("fmt", ["raw", "json"])
def test_build_sequence_model_without_event_field_rejected(fmt: str) -> None:
    """A sequence model has no templates, so raw lines or messages cannot be decoded for it."""
    entity = EntityConfig(regex=HDFS_BLOCK)
    with pytest.raises(ConfigError, match="input.json.event_field"):
        decoder(fmt, entity=entity, kind="sequences")


def test_decode_reasons_all_exercised_by_tests() -> None:
    """Every documented dead-letter reason is produced by at least one record."""
    records: list[tuple[MessageDecoder, bytes | None, bytes | None]] = [
        (decoder(), None, None),
        (decoder(max_message_bytes=4), b"12345", None),
        (decoder(), b"\xff", None),
        (decoder("json"), b"{", None),
        (decoder("json"), b"[]", None),
        (decoder("json"), b'{"a": NaN}', None),
        (decoder(), b"no entity here", None),
        (decoder("json"), b"{}", None),
        (decoder("json", **SEQUENCE_JSON), b'{"host": "a"}', None),
    ]
    reasons = {reason_of(dec, value, key).reason for dec, value, key in records}
    assert reasons == set(DECODE_REASONS)


# -- text that UTF-8 cannot encode -----------------------------------------------------------

HOST_REGEX = EntityConfig(regex=r"host=(\S+)")
EVENT_KEYS = {"kind": "sequences", "json_input": JsonInputConfig(event_field="event")}


@pytest.mark.parametrize(
    ("decoder_", "document", "field"),
    [
        pytest.param(
            decoder("json", **JSON_FIELD_ENTITY),
            {"host": "dn-\ud800", "message": TERMINATING},
            "host",
            id="entity field",
        ),
        pytest.param(
            decoder("json", entity=HOST_REGEX),
            {"message": "host=dn-\udfff " + TERMINATING},
            "message",
            id="regex over the message",
        ),
        pytest.param(
            decoder("json", entity=HOST_REGEX, **EVENT_KEYS),
            {"event": "5", "message": "host=dn-\ud800"},
            "message",
            id="regex over the message, event field",
        ),
        pytest.param(
            decoder("json", entity=HOST_REGEX, **EVENT_KEYS),
            {"event": "host=dn-\ud800"},
            "event",
            id="regex over the event key",
        ),
    ],
)
def test_decode_one_json_entity_with_lone_surrogate_invalid_utf8(
    decoder_: MessageDecoder, document: dict[str, Any], field: str
) -> None:
    """A lone UTF-16 surrogate is valid JSON but not UTF-8: an entity (a Kafka key) holding one is refused."""
    error = reason_of(decoder_, as_json(document))
    assert error.reason == "invalid_utf8"
    assert f"field {field!r}" in error.detail and "surrogate" in error.detail, error.detail


def test_decode_one_json_entity_outside_the_bmp_accepted() -> None:
    """A surrogate pair in JSON is one valid character, so the entity is kept."""
    value = b'{"host": "dn-\\ud83d\\ude00-\\u00e9", "message": "' + TERMINATING.encode() + b'"}'
    event = decoder("json", **JSON_FIELD_ENTITY).decode_one(value, None, TS)
    assert event.entity == "dn-\U0001f600-\u00e9"


def test_decode_one_json_message_with_lone_surrogate_kept_as_event_text() -> None:
    """Event text only reaches alerts, which escape it to ASCII, so a lone surrogate in it is accepted."""
    message = TERMINATING + " \ud800"
    event = decoder("json", **JSON_FIELD_ENTITY).decode_one(
        as_json({"host": "a", "message": message}), None, TS
    )
    assert (event.entity, event.text) == ("a", message)


# -- records without a Kafka timestamp --------------------------------------------------------


@pytest.mark.parametrize(
    ("decoder_", "value"),
    [
        (decoder(), TERMINATING.encode()),
        (decoder("json", **JSON_FIELD_ENTITY), as_json({"host": "a", "message": "x"})),
    ],
    ids=["raw", "json"],
)
def test_decode_one_record_without_timestamp_has_no_event_time(
    decoder_: MessageDecoder, value: bytes
) -> None:
    """A legacy (magic 0) record's timestamp None becomes -1, Kafka's own "no timestamp"."""
    assert decoder_.decode_one(value, None, None).event_time_ms == -1


def test_decode_one_timestamp_field_used_when_record_has_no_timestamp() -> None:
    """The configured timestamp field still gives the event time of a record without one."""
    dec = decoder("json", **JSON_FIELD_ENTITY, json_input=JsonInputConfig(timestamp_field="ts"))
    event = dec.decode_one(as_json({"host": "a", "message": "x", "ts": 1_700_000_000}), None, None)
    assert event.event_time_ms == 1_700_000_000_000
