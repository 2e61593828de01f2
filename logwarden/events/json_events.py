"""JSON events: one object per line of a file or per Kafka record, read one way everywhere.

The trainer, the offline scorer and the daemon all take the message and the entity from the
same fields by these functions, so a model trained on a JSON history groups events into the
sessions the daemon later keeps state for.  Pure: nothing here touches a file or a socket.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from logwarden.errors import DecodeError
from logwarden.events.entity import MAX_ENTITY_CHARS, RegexEntityExtractor, entity_refusal
from logwarden.events.line_tally import LineTally
from logwarden.events.log_files import not_utf8
from logwarden.model.contract import ModelMetadata

ABSENT: Any = object()
"""What a field getter returns for a missing or null field."""

DEFAULT_MESSAGE_FIELD = "message"

FieldGetter = Callable[[dict[str, Any]], Any]


class _NonFiniteNumber(ValueError):
    """Raised from inside the JSON parser when a number is NaN, +-Infinity or overflows."""


def _reject_constant(name: str) -> float:
    raise _NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NonFiniteNumber(text if len(text) <= 40 else text[:37] + "...")
    return value


# NaN and Infinity are not JSON, but Python's parser accepts them, and 1e999 overflows to an
# infinity: either would reach a score or a timestamp as a number that compares false to everything.
_JSON = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def decode_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; else DecodeError invalid_json, non_finite_number or not_an_object."""
    try:
        document = _JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise DecodeError("invalid_json", f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except _NonFiniteNumber as exc:
        raise DecodeError("non_finite_number", f"{exc} is not a finite number") from None
    except RecursionError:
        raise DecodeError("invalid_json", "nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's int digit limit
        raise DecodeError("invalid_json", str(exc)) from None
    if type(document) is not dict:
        raise DecodeError("not_an_object", f"top-level JSON value is a {json_type(document)}, not an object")
    return document


def field_getter(name: str) -> FieldGetter:
    """Reads ``name`` from a JSON object; a dotted name also reaches into nested objects.

    A literal key wins over the nested path, so ``{"host.name": ...}`` and
    ``{"host": {"name": ...}}`` both work for ``host.name``.  Missing and null read as ABSENT.
    """
    if "." not in name:

        def get_flat(document: dict[str, Any]) -> Any:
            value = document.get(name)
            return ABSENT if value is None else value

        return get_flat
    path = name.split(".")

    def get_nested(document: dict[str, Any]) -> Any:
        value = document.get(name)
        if value is not None:
            return value
        node: Any = document
        for part in path:
            if type(node) is not dict:
                return ABSENT
            node = node.get(part)
        return ABSENT if node is None else node

    return get_nested


def entity_of_field(value: Any) -> str | None:
    """A field's value as an entity: a non-empty string, or an integer (a uid, a session number)."""
    if type(value) is str:
        return value or None
    if type(value) is int:
        return str(value)
    return None


def is_message(value: Any) -> bool:
    """Whether a message field's value is text to match against templates."""
    return type(value) is str and bool(value) and not value.isspace()


def field_problem(field_name: str, value: Any) -> str:
    """Why a field's value is not usable: missing, empty, or of the wrong JSON type."""
    if value is ABSENT:
        return f"field {field_name!r} is missing or null"
    if type(value) is str:
        return f"field {field_name!r} is empty"
    return f"field {field_name!r} is a {json_type(value)}"


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null")


@dataclass(frozen=True)
class JsonFields:
    """Where a JSON event keeps its message, its entity and, when parsed upstream, its event key.

    ``entity`` None: the entity regex finds the entity in the message.  ``event`` set: the event is
    the key in that field (a model trained on event keys), and the message is optional.
    """

    message: str = DEFAULT_MESSAGE_FIELD
    entity: str | None = None
    event: str | None = None


def trained_json_fields(metadata: ModelMetadata) -> JsonFields | None:
    """The fields a model was trained on (``training.input`` of ``model.json``); None unless JSON events."""
    source = metadata.training.get("input")
    if not isinstance(source, dict) or source.get("format") != "json":
        return None

    def named(key: str) -> str | None:
        value = source.get(key)
        return value if isinstance(value, str) and value else None

    return JsonFields(
        named("message_field") or DEFAULT_MESSAGE_FIELD, named("entity_field"), named("event_field")
    )


def trained_entity_regex(metadata: ModelMetadata) -> str | None:
    """The entity regex a model trained on JSON events without an entity field found entities with.

    A model of mined templates keeps it in its parser settings too; a model trained on event keys
    (``--event-field``) has no parser, so this record is where ``score --json`` finds it.
    """
    source = metadata.training.get("input")
    if not isinstance(source, dict) or source.get("format") != "json":
        return None
    regex = source.get("entity_regex")
    return regex if isinstance(regex, str) and regex else None


def describe_fields(fields: JsonFields, entity_regex: str | None) -> dict[str, str | None]:
    """What a model records of the JSON input it was trained on (``training.input``)."""
    return {
        "format": "json",
        "message_field": fields.message,
        "entity_field": fields.entity,
        "entity_regex": entity_regex if fields.entity is None else None,
        "event_field": fields.event,
    }


class JsonEvent(NamedTuple):
    """One event of a JSON line: its entity, its text and, with an event field, its event key."""

    entity: str | None
    text: str
    """The message; with an event field and no message, the event key (what an alert shows)."""
    event_key: str | None


class JsonEventReader:
    """Reads one JSON event as the daemon reads a JSON record with the same fields.

    The entity is the entity field's value (a string or an integer), or with no entity field the
    first match of ``entity_regex`` in the event's text; with neither (the daemon's
    ``input.entity.key: true``) it is left to the caller, as None.
    """

    def __init__(self, fields: JsonFields, entity_regex: str | None = None) -> None:
        self.fields = fields
        self._message = field_getter(fields.message)
        self._entity_field = field_getter(fields.entity) if fields.entity is not None else None
        self._entity_regex = (
            RegexEntityExtractor(entity_regex) if fields.entity is None and entity_regex else None
        )
        self._event = field_getter(fields.event) if fields.event is not None else None

    @property
    def names_entities(self) -> bool:
        """Whether events read get an entity from here (a field or a regex), not from the caller."""
        return self._entity_field is not None or self._entity_regex is not None

    def read(self, text: str) -> JsonEvent:
        """The event in one JSON text: ``read_document`` after decoding it (``decode_object``)."""
        return self.read_document(decode_object(text))

    def read_document(self, document: dict[str, Any]) -> JsonEvent:
        """The event in a decoded JSON object; its entity is None when the object names none.

        DecodeError ``missing_message`` when the message field holds no text, ``missing_event``
        when the event field holds no key: such an object has no event at all, where one without
        an entity has an event that belongs to no session.  DecodeError ``oversize`` or
        ``invalid_utf8`` for an entity the daemon could not key a record or a state row by
        (``entity_refusal``), so the trainer, the scorer and the daemon keep the same events.
        """
        message = self._message(document)
        event_key = None
        if self._event is not None:
            event_key = self._event(document)
            if type(event_key) is int:
                event_key = str(event_key)
            elif type(event_key) is not str or not event_key or event_key.isspace():
                raise DecodeError("missing_event", field_problem(self.fields.event or "", event_key))
            line = message if type(message) is str and message else event_key
        elif is_message(message):
            line = message.rstrip("\r\n")
        else:
            raise DecodeError("missing_message", field_problem(self.fields.message, message))
        if self._entity_field is not None:
            entity = entity_of_field(self._entity_field(document))
        else:
            entity = self._entity_regex.entity_of(line) if self._entity_regex is not None else None
        if entity is not None and not (entity.isascii() and len(entity) <= MAX_ENTITY_CHARS):
            # Checked in full, and its field named, only where it can fail: this runs for every record.
            refusal = entity_refusal(entity, f"field {self.entity_source_field(document)!r}")
            if refusal is not None:
                raise refusal
        return JsonEvent(entity, line, event_key)

    def entity_problem(self, document: dict[str, Any]) -> str:
        """Why ``document`` names no entity, for its dead letter."""
        if self._entity_field is not None:
            return field_problem(self.fields.entity or "", self._entity_field(document))
        return "the entity regex does not match"

    def entity_source_field(self, document: dict[str, Any]) -> str:
        """The field an entity read from ``document`` came from: its own, or the one the regex searched."""
        if self.fields.entity is not None:
            return self.fields.entity
        if self.fields.event is not None:
            message = self._message(document)
            if not (type(message) is str and message):
                return self.fields.event
        return self.fields.message


def read_json_lines(
    lines: Iterable[str], reader: JsonEventReader, tally: LineTally
) -> Iterator[tuple[str, JsonEvent]]:
    """(entity, event) of each line whose event belongs to an entity, in order; other lines counted.

    Blank lines are counted apart and not as lines, as the raw-log readers count them.  The
    reader must name entities itself (an entity field or regex): a file has no record keys.
    """
    if not reader.names_entities:
        raise ValueError("JSON lines need an entity field or an entity regex")
    return _events_of(lines, reader, tally)


def _events_of(
    lines: Iterable[str], reader: JsonEventReader, tally: LineTally
) -> Iterator[tuple[str, JsonEvent]]:
    for line_number, raw_line in enumerate(lines, 1):
        line = raw_line.rstrip("\r\n")
        if not line.strip():
            tally.blank_lines += 1
            continue
        tally.lines += 1
        undecodable = not_utf8(line)  # the daemon dead-letters such a record before reading its JSON
        if undecodable is not None:
            tally.count_invalid(line_number, undecodable)
            continue
        try:
            event = reader.read(line)
        except DecodeError as exc:
            tally.count_invalid(line_number, exc)
            continue
        if event.entity is None:
            tally.lines_without_entity += 1
            continue
        yield event.entity, event
