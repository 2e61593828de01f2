"""JSON events read one way by trainer, scorer and daemon: fields, bad lines and the model's record."""

from __future__ import annotations

import json

import pytest
from model_metadata import model_metadata

from logwarden.errors import DecodeError
from logwarden.events.json_events import (
    ABSENT,
    JsonEvent,
    JsonEventReader,
    JsonFields,
    decode_object,
    field_getter,
    read_json_lines,
    trained_json_fields,
)
from logwarden.events.line_tally import LineTally
from logwarden.events.raw import parser_settings
from logwarden.model.contract import ModelMetadata


def test_a_dotted_field_reaches_nested_objects_and_a_literal_key_wins() -> None:
    """``host.name`` finds the nested value, a literal ``host.name`` key wins; a string or null is ABSENT."""
    get = field_getter("host.name")
    assert get({"host": {"name": "web-1"}}) == "web-1"
    assert get({"host.name": "literal", "host": {"name": "nested"}}) == "literal"
    assert get({"host": "web-1"}) is ABSENT
    assert get({"host": {"name": None}}) is ABSENT


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid_json"),
        ("[1]", "not_an_object"),
        ('{"x": NaN}', "non_finite_number"),
        ('{"x": 1e999}', "non_finite_number"),
        ("[" * 100_000, "invalid_json"),
    ],
)
def test_text_that_is_no_finite_json_object_is_refused_with_its_reason(text: str, reason: str) -> None:
    """Non-JSON, a non-object, NaN, 1e999 and 100,000 open brackets raise DecodeError naming the reason."""
    with pytest.raises(DecodeError) as caught:
        decode_object(text)
    assert caught.value.reason == reason


def test_reader_takes_entity_from_its_field_and_message_without_newline() -> None:
    """The entity field's value is text (501 gives ``"501"``, empty gives None); the message loses CRLF."""
    reader = JsonEventReader(JsonFields(message="log.text", entity="user.id"))
    event = reader.read('{"user": {"id": 501}, "log": {"text": "login ok\\r\\n"}}')
    assert event == JsonEvent("501", "login ok", None)
    assert reader.read('{"user": {"id": ""}, "log": {"text": "login ok"}}').entity is None


def test_reader_with_an_entity_regex_finds_the_entity_in_the_message() -> None:
    """With an entity regex the entity is its group in the message, not the ``user`` field; else None."""
    reader = JsonEventReader(JsonFields(), entity_regex=r"user (\w+)")
    assert reader.read('{"message": "login by user bob", "user": "x"}') == JsonEvent(
        "bob", "login by user bob", None
    )
    assert reader.read('{"message": "disk full"}').entity is None


def test_reader_with_an_event_field_takes_the_key_and_needs_no_message() -> None:
    """As the daemon reads ``input.json.event_field``: an integer key is its digits, the text is the
    message when there is one, else the key."""
    reader = JsonEventReader(JsonFields(entity="user", event="event.code"))
    assert reader.read('{"user": "bob", "event": {"code": 4625}}') == JsonEvent("bob", "4625", "4625")
    with_message = reader.read('{"user": "bob", "event": {"code": "4624"}, "message": "logon"}')
    assert with_message == JsonEvent("bob", "logon", "4624")
    for missing in ('{"user": "bob"}', '{"user": "bob", "event": {"code": ""}}', '{"event": {"code": true}}'):
        with pytest.raises(DecodeError, match="field 'event.code'") as caught:
            reader.read(missing)
        assert caught.value.reason == "missing_event"


def test_json_lines_need_an_entity_field_or_regex() -> None:
    """A file has no record keys: reading one without an entity rule is refused at once."""
    reader = JsonEventReader(JsonFields())
    assert reader.read('{"message": "m"}') == JsonEvent(None, "m", None)
    with pytest.raises(ValueError, match="entity field or an entity regex"):
        read_json_lines([], reader, LineTally())


@pytest.mark.parametrize("message", ['""', '"  "', "42", "null", '{"a": 1}'])
def test_a_line_without_message_text_has_no_event(message: str) -> None:
    """An empty, blank, numeric, null or object message is a DecodeError with reason ``missing_message``."""
    with pytest.raises(DecodeError, match="field 'message'") as caught:
        JsonEventReader(JsonFields(entity="user")).read(f'{{"user": "u", "message": {message}}}')
    assert caught.value.reason == "missing_message"


def test_read_json_lines_counts_blank_and_bad_lines_and_quotes_the_first_bad_one() -> None:
    """Blank, invalid and entity-less lines are counted apart, reasons tallied, the first bad line quoted."""
    lines = ['{"message": "a", "u": "x"}\n', "\n", "oops\n", "   \n", "[]\n", '{"message": "b"}\n']
    tally = LineTally()
    events = list(read_json_lines(lines, JsonEventReader(JsonFields(entity="u")), tally))
    assert events == [("x", JsonEvent("x", "a", None))]
    assert (tally.lines, tally.blank_lines, tally.invalid_lines, tally.lines_without_entity) == (4, 2, 2, 1)
    assert tally.invalid_reasons == {"invalid_json": 1, "not_an_object": 1}
    assert tally.first_invalid is not None and tally.first_invalid.startswith("line 3: invalid_json:")


def test_trained_json_fields_come_from_the_models_training_record() -> None:
    """JSON fields come from a JSON model's ``training.input``; a raw, absent or non-object record is None."""
    json_input = {"format": "json", "message_field": "msg", "entity_field": "host.name"}
    assert trained_json_fields(model_metadata(training={"input": json_input})) == JsonFields(
        "msg", "host.name"
    )
    by_regex = {**json_input, "entity_field": None}
    assert trained_json_fields(model_metadata(training={"input": by_regex})) == JsonFields("msg", None)
    keys = {**json_input, "event_field": "event.code"}
    assert trained_json_fields(model_metadata(training={"input": keys})) == JsonFields(
        "msg", "host.name", "event.code"
    )
    assert trained_json_fields(model_metadata(training={"input": {"format": "raw"}})) is None
    assert trained_json_fields(model_metadata(training={})) is None
    assert trained_json_fields(model_metadata(training={"input": "json"})) is None


def test_a_model_without_entity_regex_round_trips_through_model_json() -> None:
    """A model grouped by a field writes ``"entity_regex": null`` and reads it back as None."""
    metadata = model_metadata(parser=parser_settings(None))
    written = json.loads(metadata.to_json())
    assert written["parser"]["entity_regex"] is None
    assert ModelMetadata.from_dict(written).parser == metadata.parser
