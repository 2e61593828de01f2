"""What one config key's value may be: each check returns the value as the typed model holds it.

A check gets the key's dotted name and raises the error that names it (``KeyErrors.error``), so
``checks.py`` can collect every bad key of a file in one pass.  The rules that relate several keys
(topics that clash, limits that contradict each other) live in ``checks.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, cast

from logwarden.daemon.config.kafka_options import (
    KAFKA_INT32_MAXIMUM,
    Role,
    as_passed,
    is_kafka_int,
    option_problem,
)
from logwarden.daemon.config.placeholders import placeholder_problem
from logwarden.errors import ConfigError, shown
from logwarden.events.header import CONTENT_GROUP

TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class KeyErrors(Protocol):
    """Where a check gets the error for a bad value: it names the config file and the dotted key."""

    def error(self, key: str, message: str) -> ConfigError:
        """The ConfigError for ``key``, to raise."""
        ...


Check = Callable[[KeyErrors, str, Any], Any]
"""A value check: (errors, dotted key, value) -> the value as the typed model holds it."""


def non_empty_string(reader: KeyErrors, key: str, value: Any) -> str:
    """A non-empty string that can be written as UTF-8.

    A YAML escape such as ``"\\ud800"`` gives a lone surrogate, which Python keeps in a str but no
    file name, Kafka request or log line can encode: it would fail far from the config.
    """
    if not isinstance(value, str) or not value.strip():
        raise reader.error(key, f"expected a non-empty string, got {shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise reader.error(
            key, f"contains {value[exc.start]!r}, a lone surrogate that cannot be encoded as UTF-8"
        ) from exc
    return value


def setting_string(reader: KeyErrors, key: str, value: Any) -> str:
    """A non-empty string that names something (a group), so no unexpanded ``${VARIABLE}`` in it."""
    text = non_empty_string(reader, key, value)
    problem = placeholder_problem(text)
    if problem is not None:
        raise reader.error(key, problem)
    return text


def file_path(reader: KeyErrors, key: str, value: Any) -> Path:
    """A file system path; a NUL (YAML ``"\\0"``) would make every file call raise ValueError at start."""
    text = setting_string(reader, key, value)
    if "\0" in text:
        raise reader.error(key, f"a path cannot contain a NUL character, got {shown(text)}")
    return Path(text)


def topic_name(reader: KeyErrors, key: str, value: Any) -> str:
    """A name Kafka accepts for a topic: 1-249 of ``A-Z a-z 0-9 . _ -``, not ``.`` or ``..``."""
    if not isinstance(value, str) or not TOPIC_NAME.fullmatch(value) or value in (".", ".."):
        raise reader.error(
            key, f"expected a Kafka topic name (1-249 characters of A-Z a-z 0-9 . _ -), got {shown(value)}"
        )
    return value


def topic_list(reader: KeyErrors, key: str, value: Any) -> tuple[str, ...]:
    """A non-empty list of topic names, none twice (each would be read twice), each named by index."""
    if not isinstance(value, list) or not value:
        raise reader.error(key, f"expected a non-empty list of topic names, got {shown(value)}")
    topics = tuple(topic_name(reader, f"{key}[{i}]", item) for i, item in enumerate(value))
    duplicates = sorted({t for t in topics if topics.count(t) > 1})
    if duplicates:
        raise reader.error(key, f"topic listed more than once: {', '.join(duplicates)}")
    return topics


def bootstrap_servers(reader: KeyErrors, key: str, value: Any) -> tuple[str, ...]:
    """A non-empty list of ``host:port`` strings with a port from 1 to 65535, each named by index."""
    expected = 'expected a non-empty list of "host:port" strings'
    if not isinstance(value, list) or not value:
        raise reader.error(key, f"{expected}, got {shown(value)}")
    for i, item in enumerate(value):
        host, _, port = item.rpartition(":") if isinstance(item, str) else ("", "", "")
        is_port = port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536
        if not host.strip() or not is_port:
            raise reader.error(f"{key}[{i}]", f"{expected}, got {shown(item)}")
    return tuple(value)


INTEGER_MAXIMUM = KAFKA_INT32_MAXIMUM
"""Largest value of any integer key: Kafka's own bound for sizes and milliseconds.  Larger is a typo,
and would fail far from the config (a 400-digit ``poll_timeout_ms`` overflows in the poll loop)."""


def integer_at_least(minimum: int) -> Check:
    """The check for a whole number from ``minimum`` to ``INTEGER_MAXIMUM`` (a bool is not one)."""
    return integer_from_to(minimum, INTEGER_MAXIMUM)


def integer_from_to(minimum: int, maximum: int) -> Check:
    """The check for a whole number from ``minimum`` to ``maximum`` (a bool is not one)."""

    def check(reader: KeyErrors, key: str, value: Any) -> int:
        if not is_kafka_int(value, minimum) or value > maximum:
            raise reader.error(key, f"expected an integer from {minimum} to {maximum:,}, got {shown(value)}")
        return value

    return check


ONNX_THREADS_MAXIMUM = 64
"""onnxruntime starts every intra-op thread when the graph is loaded: 100,000 took minutes, then
failed with a bad_alloc blamed on model.onnx (exit 4).  More threads than cores only slows a call
(one is the default and the measured best, benchmarks/README.md), so 64 is far past any use."""


def number(*, positive: bool, maximum: float | None = None) -> Check:
    """The check for a finite number, above 0 when ``positive``, at most ``maximum`` when given."""

    def check(reader: KeyErrors, key: str, value: Any) -> float:
        checked = finite_float(value)
        if checked is None or (positive and checked <= 0) or (maximum is not None and checked > maximum):
            expected = "number > 0" if positive else "finite number"
            bound = "" if maximum is None else f" and at most {maximum:,g}"
            raise reader.error(key, f"expected a {expected}{bound}, got {shown(value)}")
        return checked

    return check


SHUTDOWN_TIMEOUT_MAXIMUM = 3600.0
"""An hour: a stop bound beyond it is a typo (systemd's TimeoutStopSec is 20 s in the unit), and past
about 292 years kafka-python's close raises on its millisecond timeout."""


def non_negative_number(reader: KeyErrors, key: str, value: Any) -> float:
    """A finite number >= 0 (a lateness of 0 means none is allowed)."""
    checked = finite_float(value)
    if checked is None or checked < 0:
        raise reader.error(key, f"expected a number >= 0, got {shown(value)}")
    return checked


def finite_float(value: Any) -> float | None:
    """``value`` as a float when it is an int or float (not a bool) that is finite as a float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the range of a float
        return None
    return number if math.isfinite(number) else None


def boolean(reader: KeyErrors, key: str, value: Any) -> bool:
    """A YAML boolean only: ``1`` or ``"true"`` is refused, as it may be a value meant for another key."""
    if not isinstance(value, bool):
        raise reader.error(key, f"expected true or false, got {shown(value)}")
    return value


def one_of(options: tuple[str, ...]) -> Check:
    """The check for one of ``options``, listed in the error."""

    def check(reader: KeyErrors, key: str, value: Any) -> str:
        if value not in options:
            raise reader.error(key, f"expected one of {', '.join(options)}; got {shown(value)}")
        return cast(str, value)

    return check


def regex(reader: KeyErrors, key: str, value: Any) -> str:
    """A pattern that compiles, checked at start rather than on the first record that needs it."""
    pattern = non_empty_string(reader, key, value)
    try:
        re.compile(pattern)
    except (re.error, OverflowError) as exc:  # OverflowError: a repeat count such as {4294967296}
        raise reader.error(key, f"invalid regular expression {shown(pattern)}: {exc}") from exc
    except RecursionError as exc:
        raise reader.error(key, f"invalid regular expression {shown(pattern)}: nested too deeply") from exc
    return pattern


def header_regex(reader: KeyErrors, key: str, value: Any) -> str:
    """A regex with the named group that holds the message after a raw line's header."""
    pattern = regex(reader, key, value)
    if CONTENT_GROUP not in re.compile(pattern).groupindex:
        raise reader.error(
            key, f"needs a named group (?P<{CONTENT_GROUP}>...) for the message after the header"
        )
    return pattern


def kafka_options(role: Role) -> Check:
    """The check for a ``kafka.<role>`` passthrough map: every bad option of it named, one line each."""

    def check(reader: KeyErrors, key: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise reader.error(key, f"expected a mapping of kafka-python {role} options, got {shown(value)}")
        problems = [
            str(reader.error(f"{key}.{name}", problem))
            for name, option_value in value.items()
            if (problem := option_problem(role, name, option_value)) is not None
        ]
        if problems:  # every bad option of the section, one line each
            raise ConfigError("\n".join(problems))
        return as_passed(value)

    return check
