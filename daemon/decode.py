"""Turn one Kafka record into an event, or into the reason it goes to the dead-letter topic.

Pure: no Kafka import, so every rejection is tested without a broker.  ``decode_one`` runs once
per consumed record; everything that can be prepared (regexes, field lookups, the template
matcher) is prepared in ``MessageDecoder.build`` and the happy path raises nothing.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, get_args

from logwarden.daemon.config import InputConfig
from logwarden.errors import ConfigError, DecodeError
from logwarden.events.entity import entity_refusal
from logwarden.events.header import HeaderStripper
from logwarden.events.json_events import (
    FieldGetter,
    JsonEventReader,
    JsonFields,
    decode_object,
    field_getter,
    field_problem,
)
from logwarden.events.raw import RawLineParser
from logwarden.events.templates import TemplateMatcher
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.contract import FIRST_EVENT_ID, UNKNOWN_ID, ModelMetadata, ParserSettings

DecodeReason = Literal[
    "null_value",
    "oversize",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "non_finite_number",
    "missing_entity",
    "missing_message",
    "missing_event",
]
DECODE_REASONS: tuple[DecodeReason, ...] = get_args(DecodeReason)

# Numeric timestamps below this are epoch seconds, above it epoch milliseconds (1e11 s is the
# year 5138, 1e11 ms is 1973), so both common encodings are read without a setting.
_SECONDS_LIMIT = 1e11
# Likewise milliseconds below 1e14 (the year 5138), microseconds below 1e17 (journald's
# __REALTIME_TIMESTAMP, Go's UnixMicro) and nanoseconds below 1e19 (the year 2286; Go's UnixNano).
_MILLISECONDS_LIMIT = 1e14
_MICROSECONDS_LIMIT = 1e17
_NANOSECONDS_LIMIT = 1e19
_EPOCH_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
NO_EVENT_TIME = -1
"""The event time of an event with none: an alert reports it as ``event_time: null``."""
_MAX_TIMESTAMP_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


BYTE_ORDER_MARK = "\ufeff"
"""Dropped from the start of a record's value, as the trainer and the scorer drop it from the start
of a file: some producers (.NET's default UTF-8 encoder) write one, and a JSON record starting with it
would otherwise be ``invalid_json`` at column 1 with nothing saying why."""


class DecodedEvent(NamedTuple):
    """One event ready for scoring; a NamedTuple because one is built per consumed record."""

    entity: str
    event_id: int
    text: str
    event_time_ms: int


Classifier = Callable[[str], "tuple[str | None, int]"]
EventMatcher = Callable[[str], int]


class MessageDecoder:
    """Decodes record values of one configured format for one model; build it with ``build``."""

    def __init__(
        self,
        *,
        json_input: bool,
        max_message_bytes: int,
        classify: Classifier | None,
        match_event: EventMatcher | None,
        json_reader: JsonEventReader | None,
        entity_from_key: bool,
        timestamp_field: FieldGetter | None,
        timestamp_field_name: str,
        vocabulary: Vocabulary | None,
    ) -> None:
        self.json_input = json_input
        self.max_message_bytes = max_message_bytes
        self._classify = classify
        self._match_event = match_event
        self._json_reader = json_reader
        self._entity_from_key = entity_from_key
        self._timestamp_field = timestamp_field
        self._timestamp_field_name = timestamp_field_name
        self._vocabulary = vocabulary
        # Events whose timestamp field was missing or unreadable (scored with no event time), and
        # why the latest one was, for the ``unreadable_event_times`` warning.
        self.unreadable_event_times = 0
        self.last_unreadable_event_time: str | None = None

    @classmethod
    def build(cls, config: InputConfig, metadata: ModelMetadata) -> MessageDecoder:
        """A decoder for ``config`` and ``metadata``; ConfigError if the two cannot work together.

        Events come either from the event key in ``input.json.event_field`` (looked up in the
        model's vocabulary) or from matching the message against the model's templates,
        which needs a model trained on raw logs or on JSON messages.  A JSON record is read by
        the trainer's own reader (``JsonEventReader``), so both see the same events and sessions.
        """
        json_input = config.format == "json"
        event_field_name = config.json.event_field if json_input else None
        json_reader = None
        if json_input:
            fields = JsonFields(config.json.message_field, config.entity.field, event_field_name)
            json_reader = JsonEventReader(fields, config.entity.regex)
        classify: Classifier | None = None
        match_event: EventMatcher | None = None
        vocabulary: Vocabulary | None = None
        if event_field_name is not None:
            vocabulary = Vocabulary(metadata.vocabulary)
        elif metadata.parser is None:
            raise ConfigError(
                "input: the model was trained on pre-parsed event sequences and has no log templates; "
                "send JSON with the event key in a field (input.format: json, input.json.event_field: ...)"
            )
        elif json_input:
            match_event = _template_matcher(config, metadata.parser, metadata.templates)
        else:
            classify = _template_classifier(config, metadata.parser, metadata.templates)
        return cls(
            json_input=json_input,
            max_message_bytes=config.max_message_bytes,
            classify=classify,
            match_event=match_event,
            json_reader=json_reader,
            entity_from_key=config.entity.key,
            timestamp_field=(
                field_getter(config.json.timestamp_field) if config.json.timestamp_field is not None else None
            ),
            timestamp_field_name=config.json.timestamp_field or "",
            vocabulary=vocabulary,
        )

    def decode_one(self, value: bytes | None, key: bytes | None, timestamp_ms: int | None) -> DecodedEvent:
        """The event in one record, or DecodeError(reason, detail) saying why there is none.

        ``timestamp_ms`` is the record's Kafka timestamp: -1 when a v2 record has none, None for a
        legacy (magic 0) record, which the event carries as -1 too.
        """
        if timestamp_ms is None:
            timestamp_ms = -1
        if value is None:
            raise DecodeError("null_value", "record has no value (tombstone)")
        if len(value) > self.max_message_bytes:
            raise DecodeError(
                "oversize", f"{len(value)} bytes > input.max_message_bytes {self.max_message_bytes}"
            )
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("invalid_utf8", f"value is not UTF-8 at byte offset {exc.start}") from None
        if text.startswith(BYTE_ORDER_MARK):  # as at the start of a file: not part of the event
            text = text[1:]
        if self.json_input:
            return self._decode_json(text, key, timestamp_ms)
        line = text.rstrip("\r\n")
        if not line or line.isspace():
            raise DecodeError("missing_message", "empty line")
        entity, event_id = self._classify(line)  # type: ignore[misc]
        if self._entity_from_key:
            entity = _entity_of_key(key)
        if entity is None:
            raise DecodeError("missing_entity", _NO_KEY if self._entity_from_key else _NO_REGEX_MATCH)
        refusal = entity_refusal(entity, "record key" if self._entity_from_key else "entity regex")
        if refusal is not None:
            raise refusal
        return DecodedEvent(entity, event_id, line, timestamp_ms)

    def _decode_json(self, text: str, key: bytes | None, timestamp_ms: int) -> DecodedEvent:
        reader: JsonEventReader = self._json_reader  # type: ignore[assignment]
        document = decode_object(text)
        event = reader.read_document(document)
        if event.event_key is not None:
            event_id = self._vocabulary.id_of(event.event_key)  # type: ignore[union-attr]
        else:
            event_id = self._match_event(event.text)  # type: ignore[misc]
        if self._entity_from_key:
            entity = _entity_of_key(key)
            if entity is None:
                raise DecodeError("missing_entity", _NO_KEY)
            refusal = entity_refusal(entity, "record key")
            if refusal is not None:
                raise refusal
        elif event.entity is None:
            raise DecodeError("missing_entity", reader.entity_problem(document))
        else:
            entity = event.entity  # the reader has refused the entities that cannot be one
        if self._timestamp_field is not None:
            try:
                timestamp_ms = _timestamp_ms(self._timestamp_field(document), self._timestamp_field_name)
            except DecodeError as problem:
                # The field only says what the alert reports as event_time (idle time runs on the
                # record timestamp): an event is still an event without it.  Dead-lettering it would
                # let whoever writes the logs keep any event from being scored.
                self.unreadable_event_times += 1
                self.last_unreadable_event_time = problem.detail
                timestamp_ms = NO_EVENT_TIME
        return DecodedEvent(entity, event_id, event.text, timestamp_ms)


_NO_KEY = "record has no key (input.entity.key: true)"
_NO_REGEX_MATCH = "the entity regex does not match"


def _parser_settings(config: InputConfig, parser_settings: ParserSettings) -> ParserSettings:
    """The model's parser with the config's header and entity regexes where it sets them."""
    return dataclasses.replace(
        parser_settings,
        header_regex=config.header_regex or parser_settings.header_regex,
        entity_regex=config.entity.regex or parser_settings.entity_regex,
    )


def _template_matcher(
    config: InputConfig, parser_settings: ParserSettings, templates: Sequence[str]
) -> EventMatcher:
    """The model event id of a message: its header stripped, then matched against the templates."""
    settings = _parser_settings(config, parser_settings)
    content_of = HeaderStripper(settings.header_regex).content_of
    match_one = TemplateMatcher(templates, settings.masking, settings.collapse_repeated_masks).match_one

    def match(line: str) -> int:
        index = match_one(content_of(line))
        return FIRST_EVENT_ID + index if index >= 0 else UNKNOWN_ID

    return match


def _template_classifier(
    config: InputConfig, parser_settings: ParserSettings, templates: Sequence[str]
) -> Classifier:
    """(entity from the regex or None, model event id) of a raw line, via the model's own parser."""
    if config.entity.regex is None:  # the record key names the entity
        match = _template_matcher(config, parser_settings, templates)
        return lambda line: (None, match(line))
    classify_one = RawLineParser(_parser_settings(config, parser_settings), templates).classify_one

    def classify_with_entity(line: str) -> tuple[str | None, int]:
        entity, index = classify_one(line)
        return entity, (FIRST_EVENT_ID + index if index >= 0 else UNKNOWN_ID)

    return classify_with_entity


def _entity_of_key(key: bytes | None) -> str | None:
    if not key:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid_utf8", f"record key is not UTF-8 at byte offset {exc.start}") from None


def _timestamp_ms(value: Any, field_name: str) -> int:
    """Epoch milliseconds of a number (seconds, milliseconds, microseconds or nanoseconds, told
    apart by size), the same number as a string (as shippers often send it), or an ISO-8601 string
    (UTC if naive)."""
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            if _EPOCH_TEXT.fullmatch(value) is None:
                detail = f"field {field_name!r}: {value[:64]!r} is not ISO-8601 or an epoch number"
                raise DecodeError("invalid_timestamp", detail) from None
            value = float(value) if "." in value or len(value) > 18 else int(value)
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return _in_range((moment - _EPOCH) // _ONE_MS, value, field_name)
    if type(value) in (int, float):
        if type(value) is float and not math.isfinite(value):  # a string of 310 digits or more
            return _in_range(math.inf, value, field_name)
        magnitude = abs(value)
        if magnitude < _SECONDS_LIMIT:
            millis = value * 1000
        elif magnitude < _MILLISECONDS_LIMIT:
            millis = value
        elif magnitude < _MICROSECONDS_LIMIT:
            millis = value / 1000
        elif magnitude < _NANOSECONDS_LIMIT:
            millis = value / 1_000_000
        else:
            millis = value
        return _in_range(millis, value, field_name)
    raise DecodeError("invalid_timestamp", field_problem(field_name, value))


def _in_range(millis: float, value: Any, field_name: str) -> int:
    if not 0 <= millis < _MAX_TIMESTAMP_MS:
        raise DecodeError("invalid_timestamp", f"field {field_name!r}: {str(value)[:64]!r} is out of range")
    return int(millis)
