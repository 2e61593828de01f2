"""Check a parsed config file key by key and build the typed model from it.

Every problem is a line of one ConfigError naming the file and the dotted key, all invalid keys
at once, so an operator can fix the file in one pass without reading code.  The checks across
sections (topics that clash, limits that contradict each other) run once every key is valid.
What each single value may be is in ``value_checks.py``; this module maps keys to those checks.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from logwarden.daemon.alerts import MAX_ALERT_RECORD_BYTES, TOP_K_MAXIMUM
from logwarden.daemon.config.kafka_options import security_problem
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
from logwarden.daemon.config.value_checks import (
    ONNX_THREADS_MAXIMUM,
    SHUTDOWN_TIMEOUT_MAXIMUM,
    Check,
    boolean,
    bootstrap_servers,
    file_path,
    header_regex,
    integer_at_least,
    integer_from_to,
    kafka_options,
    non_empty_string,
    non_negative_number,
    number,
    one_of,
    regex,
    setting_string,
    topic_list,
    topic_name,
)
from logwarden.errors import ConfigError, did_you_mean, shown


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


def _check_security(reader: _Reader, kafka: KafkaConfig) -> None:
    for role, own, options in (
        ("consumer", kafka.consumer, kafka.consumer_options()),
        ("producer", kafka.producer, kafka.producer_options()),
    ):
        found = security_problem(role, own, options)
        if found is not None:
            raise reader.error(*found)


DEAD_LETTER_HEADROOM_BYTES = 64 * 1024
"""Room for a cut dead letter's key and headers above ``kafka.dead_letter_max_bytes`` of value."""


def _check_request_size(reader: _Reader, kafka: KafkaConfig) -> None:
    """A producer that cannot send the largest alert, or a cut dead letter, stops the daemon on it,
    and again on the same record after every restart: refuse such a ``max_request_size`` here."""
    size = kafka.producer_options().get("max_request_size")
    if not isinstance(size, int) or isinstance(size, bool):
        return  # the default, or a type kafka_options already refused
    section = "producer" if "max_request_size" in kafka.producer else "common"
    key = f"kafka.{section}.max_request_size"
    if size < MAX_ALERT_RECORD_BYTES:
        raise reader.error(
            key,
            f"{size:,} bytes is below {MAX_ALERT_RECORD_BYTES:,}, what the largest alert may need "
            "(a long line, entity and templates escaped in JSON)",
        )
    needed = kafka.dead_letter_max_bytes + DEAD_LETTER_HEADROOM_BYTES
    if size < needed:
        raise reader.error(
            key,
            f"{size:,} bytes cannot carry a dead letter cut to kafka.dead_letter_max_bytes "
            f"({kafka.dead_letter_max_bytes:,}) with its key and headers: raise it to {needed:,} or lower "
            "kafka.dead_letter_max_bytes",
        )


def _check_kafka(reader: _Reader, kafka: KafkaConfig) -> None:
    _check_request_size(reader, kafka)
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
        "bootstrap_servers": bootstrap_servers,
        "group_id": setting_string,
        "input_topics": topic_list,
        "alerts_topic": topic_name,
        "dead_letter_topic": topic_name,
        "dead_letter_max_bytes": integer_at_least(1024),
        "scores_topic": topic_name,
        "compiled_record_decoder": boolean,
        "common": kafka_options("common"),
        "consumer": kafka_options("consumer"),
        "producer": kafka_options("producer"),
    },
    InputConfig: {
        "format": one_of(INPUT_FORMATS),
        "entity": EntityConfig,
        "json": JsonInputConfig,
        "max_message_bytes": integer_at_least(1),
        "header_regex": header_regex,
    },
    EntityConfig: {"regex": regex, "field": non_empty_string, "key": boolean},
    JsonInputConfig: {
        "message_field": non_empty_string,
        "timestamp_field": non_empty_string,
        "event_field": non_empty_string,
    },
    ModelConfig: {
        "path": file_path,
        "threshold": number(positive=False),
        "top_k": integer_from_to(0, TOP_K_MAXIMUM),
        "count_gate": boolean,
    },
    StateConfig: {
        "dir": file_path,
        "ttl_seconds": number(positive=True),
        "allowed_lateness_seconds": non_negative_number,
        "max_entities": integer_at_least(1),
        "checkpoint_every_events": integer_at_least(1),
        "checkpoint_interval_seconds": number(positive=True),
    },
    ProcessingConfig: {
        "batch_max_events": integer_at_least(1),
        "poll_timeout_ms": integer_at_least(0),
        "onnx_threads": integer_from_to(1, ONNX_THREADS_MAXIMUM),
    },
    ShutdownConfig: {"timeout_seconds": number(positive=True, maximum=SHUTDOWN_TIMEOUT_MAXIMUM)},
    LoggingConfig: {"level": one_of(LOG_LEVELS), "kafka_level": one_of(LOG_LEVELS)},
}
