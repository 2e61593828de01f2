"""Check a parsed config file key by key and build the typed model from it.

Every problem is a line of one ConfigError naming the file and the dotted key, all invalid keys
at once, so an operator can fix the file in one pass without reading code.  The checks across
sections (topics that clash, limits that contradict each other) run once every key is valid.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from logwarden.daemon.config.kafka_options import (
    KAFKA_INT32_MAXIMUM,
    Role,
    as_passed,
    is_kafka_int,
    option_problem,
    security_problem,
)
from logwarden.daemon.config.sections import (
    INPUT_FORMATS,
    LOG_LEVELS,
    DaemonConfig,
    EntityConfig,
    InputConfig,
    JsonInputConfig,
    KafkaConfig,
    LoggingConfig,
    ModelConfig,
    ProcessingConfig,
    ShutdownConfig,
    StateConfig,
)
from logwarden.errors import ConfigError, did_you_mean, shown
from logwarden.events.header import CONTENT_GROUP

_TOPIC_RE = re.compile(r"[A-Za-z0-9._-]{1,249}")


def parse_config(raw: object, source: str = "<config>") -> DaemonConfig:
    """Validate an already-parsed mapping (e.g. from YAML) into a DaemonConfig.

    Every invalid key is reported, one line each, in one ConfigError: an operator fixing a file
    by hand should not need a restart per mistake.  The checks across sections (topics that
    clash, limits that contradict each other) need valid values, so they run only when every key
    is valid on its own.
    """
    reader = _Reader(source)
    config = reader.build(raw, "", DaemonConfig)
    if config is not None:
        valid = config
        reader.collect(lambda: _check_kafka(reader, valid.kafka))
        reader.collect(lambda: _check_security(reader, valid.kafka))
        reader.collect(lambda: _check_input(reader, valid.input))
        reader.collect(lambda: _check_state(reader, valid.state, valid.processing))
    if reader.errors or config is None:
        raise ConfigError("\n".join(str(error) for error in reader.errors))
    return dataclasses.replace(config, source=source)


T = TypeVar("T")
Check = Callable[["_Reader", str, Any], Any]


class _Reader:
    """Builds dataclasses from mappings, collecting every failure as a ConfigError naming source and key."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[ConfigError] = []

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {message}" if key else f"{self.source}: {message}")

    def collect(self, step: Callable[[], T]) -> tuple[T | None, bool]:
        """Run ``step``; a ConfigError it raises is kept in ``errors``.  Returns (result, succeeded)."""
        try:
            return step(), True
        except ConfigError as exc:
            self.errors.append(exc)
            return None, False

    def build(self, raw: object, key: str, cls: type[T]) -> T | None:
        """``cls`` from a mapping of its field names, checked by ``_CHECKS``; None is an empty section.

        Returns None when any key under ``key`` is invalid; every such error is in ``errors``.
        """
        checks = _CHECKS[cls]
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.errors.append(self.error(key, f"expected a mapping, got {shown(raw)}"))
            return None
        valid = True
        for name in raw:
            if not isinstance(name, str):
                self.errors.append(
                    self.error(_join(key, str(name)), f"keys must be strings, got {shown(name)}")
                )
                valid = False
            elif name not in checks:
                self.errors.append(self.error(_join(key, name), _unknown_key_message(name, list(checks))))
                valid = False
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
            if spec.name not in checks:
                continue
            dotted, value, check = _join(key, spec.name), raw.get(spec.name), checks[spec.name]
            if isinstance(check, type):
                section = self.build(value, dotted, check)
                if section is None:
                    valid = False
                else:
                    values[spec.name] = section
            elif value is not None:
                checked, ok = self.collect(functools.partial(check, self, dotted, value))
                if ok:
                    values[spec.name] = checked
                else:
                    valid = False
            elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                missing = (
                    "required key has no value (null)" if spec.name in raw else "required key is missing"
                )
                self.errors.append(self.error(dotted, missing))
                valid = False
            elif spec.name in raw and spec.default is not None and spec.default is not dataclasses.MISSING:
                # `dead_letter_topic: null` or `max_message_bytes: null` reads as "off" or "no limit",
                # as `scores_topic: null` does, but would silently mean the default instead.
                default = _as_yaml(spec.default)
                message = f"null is not a value of this key; leave it out for its default, {default}"
                self.errors.append(self.error(dotted, message))
                valid = False
        return cls(**values) if valid else None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _as_yaml(value: object) -> str:
    """A default as it is written in the file: ``true`` rather than Python's ``True``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return shown(value)


def _unknown_key_message(name: str, known: list[str]) -> str:
    return f"unknown key{did_you_mean(name, known)} (known keys: {', '.join(known)})"


def _string(reader: _Reader, key: str, value: Any) -> str:
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


def _path(reader: _Reader, key: str, value: Any) -> Path:
    """A file system path; a NUL (YAML ``"\\0"``) would make every file call raise ValueError at start."""
    text = _string(reader, key, value)
    if "\0" in text:
        raise reader.error(key, f"a path cannot contain a NUL character, got {shown(text)}")
    return Path(text)


def _topic(reader: _Reader, key: str, value: Any) -> str:
    if not isinstance(value, str) or not _TOPIC_RE.fullmatch(value) or value in (".", ".."):
        raise reader.error(
            key, f"expected a Kafka topic name (1-249 characters of A-Z a-z 0-9 . _ -), got {shown(value)}"
        )
    return value


def _topic_list(reader: _Reader, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise reader.error(key, f"expected a non-empty list of topic names, got {shown(value)}")
    topics = tuple(_topic(reader, f"{key}[{i}]", item) for i, item in enumerate(value))
    duplicates = sorted({t for t in topics if topics.count(t) > 1})
    if duplicates:
        raise reader.error(key, f"topic listed more than once: {', '.join(duplicates)}")
    return topics


def _servers(reader: _Reader, key: str, value: Any) -> tuple[str, ...]:
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


def _integer(minimum: int) -> Check:
    def check(reader: _Reader, key: str, value: Any) -> int:
        if not is_kafka_int(value, minimum):
            raise reader.error(
                key, f"expected an integer from {minimum} to {INTEGER_MAXIMUM:,}, got {shown(value)}"
            )
        return value

    return check


def _number(*, positive: bool, maximum: float | None = None) -> Check:
    def check(reader: _Reader, key: str, value: Any) -> float:
        number = _finite_float(value)
        if number is None or (positive and number <= 0) or (maximum is not None and number > maximum):
            expected = "number > 0" if positive else "finite number"
            bound = "" if maximum is None else f" and at most {maximum:,g}"
            raise reader.error(key, f"expected a {expected}{bound}, got {shown(value)}")
        return number

    return check


SHUTDOWN_TIMEOUT_MAXIMUM = 3600.0
"""An hour: a stop bound beyond it is a typo (systemd's TimeoutStopSec is 20 s in the unit), and past
about 292 years kafka-python's close raises on its millisecond timeout."""


def _non_negative_number(reader: _Reader, key: str, value: Any) -> float:
    number = _finite_float(value)
    if number is None or number < 0:
        raise reader.error(key, f"expected a number >= 0, got {shown(value)}")
    return number


def _finite_float(value: Any) -> float | None:
    """``value`` as a float when it is an int or float (not a bool) that is finite as a float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the range of a float
        return None
    return number if math.isfinite(number) else None


def _boolean(reader: _Reader, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise reader.error(key, f"expected true or false, got {shown(value)}")
    return value


def _choice(options: tuple[str, ...]) -> Check:
    def check(reader: _Reader, key: str, value: Any) -> str:
        if value not in options:
            raise reader.error(key, f"expected one of {', '.join(options)}; got {shown(value)}")
        return cast(str, value)

    return check


def _regex(reader: _Reader, key: str, value: Any) -> str:
    pattern = _string(reader, key, value)
    try:
        re.compile(pattern)
    except (re.error, OverflowError) as exc:  # OverflowError: a repeat count such as {4294967296}
        raise reader.error(key, f"invalid regular expression {shown(pattern)}: {exc}") from exc
    except RecursionError as exc:
        raise reader.error(key, f"invalid regular expression {shown(pattern)}: nested too deeply") from exc
    return pattern


def _header_regex(reader: _Reader, key: str, value: Any) -> str:
    pattern = _regex(reader, key, value)
    if CONTENT_GROUP not in re.compile(pattern).groupindex:
        raise reader.error(
            key, f"needs a named group (?P<{CONTENT_GROUP}>...) for the message after the header"
        )
    return pattern


def _kafka_options(role: Role) -> Check:
    def check(reader: _Reader, key: str, value: Any) -> Mapping[str, Any]:
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


def _check_security(reader: _Reader, kafka: KafkaConfig) -> None:
    for role, own, options in (
        ("consumer", kafka.consumer, kafka.consumer_options()),
        ("producer", kafka.producer, kafka.producer_options()),
    ):
        found = security_problem(role, own, options)
        if found is not None:
            raise reader.error(*found)


def _check_kafka(reader: _Reader, kafka: KafkaConfig) -> None:
    seen: dict[str, str] = {}
    for name, topic in kafka.output_topics().items():
        if topic in kafka.input_topics:
            raise reader.error(
                f"kafka.{name}",
                f"{topic!r} is also in kafka.input_topics; the daemon would read its own output",
            )
        if topic in seen:
            raise reader.error(
                f"kafka.{name}", f"{topic!r} is already kafka.{seen[topic]}; each output needs its own topic"
            )
        seen[topic] = name


def _check_input(reader: _Reader, config: InputConfig) -> None:
    entity = config.entity
    sources = [
        name
        for name, is_set in (
            ("regex", entity.regex is not None),
            ("field", entity.field is not None),
            ("key", entity.key),
        )
        if is_set
    ]
    if len(sources) != 1:
        found = ", ".join(sources) if sources else "none"
        raise reader.error("input.entity", f"expected exactly one of regex, field or key: true; got {found}")
    if entity.field is not None and config.format != "json":
        raise reader.error("input.entity.field", "needs input.format: json (raw lines have no fields)")
    if config.format != "json" and config.json != JsonInputConfig():
        defaults = JsonInputConfig()
        changed = [
            f"input.json.{spec.name}"
            for spec in dataclasses.fields(JsonInputConfig)
            if getattr(config.json, spec.name) != getattr(defaults, spec.name)
        ]
        raise reader.error(
            "input.json",
            f"only applies with input.format: json, not {config.format}; "
            f"remove {' and '.join(changed)} or set input.format: json",
        )


def _check_state(reader: _Reader, state: StateConfig, processing: ProcessingConfig) -> None:
    # Every distinct entity of one batch needs a slot at once; a smaller table fails on the batch
    # and, as the batch is replayed after a restart, again on every start.
    if state.max_entities < processing.batch_max_events:
        raise reader.error(
            "state.max_entities",
            f"{state.max_entities} is below processing.batch_max_events {processing.batch_max_events}: "
            "one batch can hold that many distinct entities and all of them must fit",
        )


_CHECKS: dict[type, dict[str, Check | type]] = {
    DaemonConfig: {
        "kafka": KafkaConfig,
        "input": InputConfig,
        "model": ModelConfig,
        "state": StateConfig,
        "processing": ProcessingConfig,
        "shutdown": ShutdownConfig,
        "logging": LoggingConfig,
    },
    KafkaConfig: {
        "bootstrap_servers": _servers,
        "group_id": _string,
        "input_topics": _topic_list,
        "alerts_topic": _topic,
        "dead_letter_topic": _topic,
        "dead_letter_max_bytes": _integer(1024),
        "scores_topic": _topic,
        "compiled_record_decoder": _boolean,
        "common": _kafka_options("common"),
        "consumer": _kafka_options("consumer"),
        "producer": _kafka_options("producer"),
    },
    InputConfig: {
        "format": _choice(INPUT_FORMATS),
        "entity": EntityConfig,
        "json": JsonInputConfig,
        "max_message_bytes": _integer(1),
        "header_regex": _header_regex,
    },
    EntityConfig: {"regex": _regex, "field": _string, "key": _boolean},
    JsonInputConfig: {"message_field": _string, "timestamp_field": _string, "event_field": _string},
    ModelConfig: {"path": _path, "threshold": _number(positive=False), "top_k": _integer(0)},
    StateConfig: {
        "dir": _path,
        "ttl_seconds": _number(positive=True),
        "allowed_lateness_seconds": _non_negative_number,
        "max_entities": _integer(1),
        "checkpoint_every_events": _integer(1),
        "checkpoint_interval_seconds": _number(positive=True),
    },
    ProcessingConfig: {
        "batch_max_events": _integer(1),
        "poll_timeout_ms": _integer(0),
        "onnx_threads": _integer(1),
    },
    ShutdownConfig: {"timeout_seconds": _number(positive=True, maximum=SHUTDOWN_TIMEOUT_MAXIMUM)},
    LoggingConfig: {"level": _choice(LOG_LEVELS), "kafka_level": _choice(LOG_LEVELS)},
}
