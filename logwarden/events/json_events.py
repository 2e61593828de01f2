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
from dataclasses import field as dataclass_field
from typing import Any

from logwarden.errors import DecodeError
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
    """Where a JSON event keeps its message and its entity; ``entity`` None: a regex over the message."""

    message: str = DEFAULT_MESSAGE_FIELD
    entity: str | None = None


def trained_json_fields(metadata: ModelMetadata) -> JsonFields | None:
    """The fields a model was trained on (``training.input`` of ``model.json``); None unless JSON events."""
    source = metadata.training.get("input")
    if not isinstance(source, dict) or source.get("format") != "json":
        return None
    message, entity = source.get("message_field"), source.get("entity_field")
    return JsonFields(
        message if isinstance(message, str) and message else DEFAULT_MESSAGE_FIELD,
        entity if isinstance(entity, str) and entity else None,
    )


class JsonEventReader:
    """(entity from the entity field, message) of one JSON line, as the daemon reads a JSON record."""

    def __init__(self, fields: JsonFields) -> None:
        self.fields = fields
        self._message = field_getter(fields.message)
        self._entity = field_getter(fields.entity) if fields.entity is not None else None

    def read(self, text: str) -> tuple[str | None, str]:
        """The entity field's value (None when missing or unusable, or with no entity field) and the message.

        DecodeError for text that is no JSON object, and ``missing_message`` when the message field
        holds no text: such a line has no event at all, where one without an entity has an event
        that belongs to no session.
        """
        document = decode_object(text)
        message = self._message(document)
        if not is_message(message):
            raise DecodeError("missing_message", field_problem(self.fields.message, message))
        entity = entity_of_field(self._entity(document)) if self._entity is not None else None
        return entity, message.rstrip("\r\n")


@dataclass
class JsonLineTally:
    """Lines of a JSON-lines file that yield no event, counted, never dropped in silence.

    ``first_invalid`` quotes the first line that is not a usable event, with its number (from 1)
    and the reason, so a wrong ``--message-field`` or a raw log given as JSON is named at once.
    """

    lines: int = 0
    blank_lines: int = 0
    invalid_lines: int = 0
    invalid_reasons: dict[str, int] = dataclass_field(default_factory=dict)
    first_invalid: str | None = None

    def count_invalid(self, line_number: int, error: DecodeError) -> None:
        self.invalid_lines += 1
        self.invalid_reasons[error.reason] = self.invalid_reasons.get(error.reason, 0) + 1
        if self.first_invalid is None:
            self.first_invalid = f"line {line_number}: {error}"


def read_json_lines(
    lines: Iterable[str], reader: JsonEventReader, tally: JsonLineTally
) -> Iterator[tuple[str | None, str]]:
    """(entity field's value or None, message) of each line that holds an event, in order.

    Blank lines are counted apart and not as lines, as the raw-log readers count them.
    """
    for line_number, raw_line in enumerate(lines, 1):
        line = raw_line.rstrip("\r\n")
        if not line.strip():
            tally.blank_lines += 1
            continue
        tally.lines += 1
        try:
            yield reader.read(line)
        except DecodeError as exc:
            tally.count_invalid(line_number, exc)
