"""The daemon's configuration: one frozen, typed model, read from YAML and validated once at start.

Every problem is a line of one ConfigError naming the file and the dotted key, all invalid keys
at once, so an operator can fix the file in one pass without reading code.  ``kafka.consumer``,
``kafka.producer`` and ``kafka.common`` are passed verbatim to kafka-python, except for the
options the daemon sets itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

import yaml

from logwarden.errors import ConfigError, shown
from logwarden.events.header import CONTENT_GROUP

InputFormat = Literal["raw", "json"]
EntitySource = Literal["regex", "field", "key"]
LogLevel = Literal["debug", "info", "warning", "error"]

INPUT_FORMATS: tuple[InputFormat, ...] = ("raw", "json")
LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")

# Options the daemon sets itself, with the reason quoted when a file tries to override one.
_BYTES_REASON = "records are handled as raw bytes so a dead-lettered record keeps its original value and key"
CONTROLLED_OPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "bootstrap_servers": "set kafka.bootstrap_servers instead",
        "group_id": "set kafka.group_id instead",
        "enable_auto_commit": "offsets are committed by logwarden only after alerts are flushed",
        "allow_auto_create_topics": "logwarden never creates topics; create them before it starts "
        "(deploy/README.md, section 5)",
        "transactional_id": "logwarden sets none; its outputs are at-least-once, outside transactions, "
        "with alert ids stable across replays (deploy/README.md)",
        "key_deserializer": _BYTES_REASON,
        "value_deserializer": _BYTES_REASON,
        "key_serializer": _BYTES_REASON,
        "value_serializer": _BYTES_REASON,
    }
)
# Options that take a live Python object (callable, SSLContext, class) and cannot come from YAML.
PYTHON_OBJECT_OPTIONS = frozenset(
    {
        "default_offset_commit_callback",
        "kafka_client",
        "metric_reporters",
        "partition_assignment_strategy",
        "partitioner",
        "sasl_oauth_token_provider",
        "selector",
        "ssl_context",
    }
)
# Passthrough options the daemon also reads itself: they bound its wait for a client to start.
TIMEOUT_OPTIONS = frozenset({"bootstrap_timeout_ms", "request_timeout_ms"})
SECRET_MARKERS = ("password", "secret", "token", "ssl_key", "credential")
MASK = "***"

_TOPIC_RE = re.compile(r"[A-Za-z0-9._-]{1,249}")
_YAML_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class KafkaConfig:
    """Where to read and write, plus kafka-python options passed through verbatim."""

    bootstrap_servers: tuple[str, ...]
    group_id: str
    input_topics: tuple[str, ...]
    alerts_topic: str
    dead_letter_topic: str = "logwarden.dead-letter"
    dead_letter_max_bytes: int = 900_000
    scores_topic: str | None = None
    compiled_record_decoder: bool = True
    common: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    consumer: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    producer: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def output_topics(self) -> dict[str, str]:
        """The topics the daemon writes to, by config key; ``scores_topic`` only when set."""
        outputs = {"alerts_topic": self.alerts_topic, "dead_letter_topic": self.dead_letter_topic}
        if self.scores_topic is not None:
            outputs["scores_topic"] = self.scores_topic
        return outputs

    def consumer_options(self) -> dict[str, Any]:
        """kafka-python KafkaConsumer kwargs from the file: ``common`` overlaid by ``consumer``."""
        return {**self.common, **self.consumer}

    def producer_options(self) -> dict[str, Any]:
        """kafka-python KafkaProducer kwargs from the file: ``common`` overlaid by ``producer``."""
        return {**self.common, **self.producer}


@dataclass(frozen=True)
class EntityConfig:
    """Which entity (session) an event belongs to: exactly one of a regex, a JSON field or the record key."""

    regex: str | None = None
    field: str | None = None
    key: bool = False

    @property
    def source(self) -> EntitySource:
        """The one source that is set."""
        if self.regex is not None:
            return "regex"
        if self.field is not None:
            return "field"
        return "key"


@dataclass(frozen=True)
class JsonInputConfig:
    """Field names of JSON input; ``event_field`` holds an event key already parsed upstream."""

    message_field: str = "message"
    timestamp_field: str | None = None
    event_field: str | None = None


@dataclass(frozen=True)
class InputConfig:
    """How a Kafka record value becomes an event; ``header_regex`` None means the model's."""

    format: InputFormat
    entity: EntityConfig
    json: JsonInputConfig = field(default_factory=JsonInputConfig)
    max_message_bytes: int = 1024 * 1024
    header_regex: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The model directory; ``threshold`` None means the model's calibrated threshold."""

    path: Path
    threshold: float | None = None
    top_k: int = 3


@dataclass(frozen=True)
class StateConfig:
    """Per-entity LSTM state: where it is checkpointed, how long idle entities live, how many."""

    dir: Path
    ttl_seconds: float = 3600.0
    allowed_lateness_seconds: float = 0.0
    max_entities: int = 1_000_000
    checkpoint_every_events: int = 500_000
    checkpoint_interval_seconds: float = 5.0


@dataclass(frozen=True)
class ProcessingConfig:
    """Batching of the poll -> score loop."""

    batch_max_events: int = 8192
    poll_timeout_ms: int = 100
    onnx_threads: int = 1


@dataclass(frozen=True)
class ShutdownConfig:
    """Bound on a graceful stop, kept below systemd's TimeoutStopSec."""

    timeout_seconds: float = 8.0


@dataclass(frozen=True)
class LoggingConfig:
    """Log levels of the JSON lines written to stdout: the daemon's own, and kafka-python's.

    kafka-python's messages (connection refused, coordinator lost, ...) are the only sign of a
    broker outage, so warnings and errors are forwarded by default; repeats are collapsed.
    """

    level: LogLevel = "info"
    kafka_level: LogLevel = "warning"


@dataclass(frozen=True)
class DaemonConfig:
    """Everything the daemon reads from its YAML file."""

    kafka: KafkaConfig
    input: InputConfig
    model: ModelConfig
    state: StateConfig
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    shutdown: ShutdownConfig = field(default_factory=ShutdownConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: str = field(default="<config>", compare=False)

    def as_loggable(self) -> dict[str, Any]:
        """Plain nested dict for the start-up log line, with every secret-looking value masked."""
        loggable = _plain(self)
        loggable.pop("source", None)
        return cast(dict[str, Any], _mask(loggable))


def load_config(path: str | Path) -> DaemonConfig:
    """Read, parse and validate a YAML config file; ConfigError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, expected a YAML config file") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: config file is not readable (permission denied)") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text at byte {exc.start}") from exc
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {exc.problem or exc.context}") from exc
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{path}: invalid YAML{_reader_error_place(text, exc)}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from exc
    if raw is None:
        raise ConfigError(f"{path}: config file is empty")
    return parse_config(raw, source=str(path))


def _reader_error_place(text: str, exc: yaml.reader.ReaderError) -> str:
    """`` at line L, column C: unacceptable character #x0007: ...`` for a character YAML refuses.

    PyYAML reports it by offset in a second line naming "<unicode string>", which the CLI would
    print as a line of its own; an operator looks for a line number.
    """
    before = text[: exc.position]
    line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
    return f" at line {line}, column {column}: unacceptable character #x{exc.character:04x}: {exc.reason}"


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


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping instead of keeping the last.

    Merge keys (``<<: *anchor``) are allowed, and a mapping's own keys override merged ones as
    YAML specifies.  Keys are compared on the composed document, before any mapping is built:
    SafeLoader flattens a merged mapping in place, so a merge source built after its first use
    would otherwise show the keys it overrides as written twice.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        _reject_duplicate_keys(node)
        return super().construct_document(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:  # a scalar Python refuses: a date of month 13, an int of 5000 digits
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from exc


def _reject_duplicate_keys(root: yaml.Node) -> None:
    """ConstructorError at the second occurrence of a string key in any mapping under ``root``."""
    pending: list[yaml.Node] = [root]
    visited: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) in visited:  # an alias: the anchored node was checked where it was written
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _YAML_STR_TAG:
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"duplicate key {key_node.value!r}",
                            key_node.start_mark,
                        )
                    seen.add(key_node.value)
            pending.extend(child for pair in reversed(node.value) for child in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(reversed(node.value))


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
    return f"unknown key{_suggestion(name, known)} (known keys: {', '.join(known)})"


def _suggestion(name: str, known: list[str]) -> str:
    """``; did you mean "x"?`` for the closest known name (a shortened name counts as close), or ""."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    close = close or [k for k in known if k.startswith(name) or name.startswith(k)][:1]
    return f'; did you mean "{close[0]}"?' if close else ""


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


INTEGER_MAXIMUM = 2**31 - 1
"""Largest value of any integer key: Kafka's own bound for sizes and milliseconds.  Larger is a typo,
and would fail far from the config (a 400-digit ``poll_timeout_ms`` overflows in the poll loop)."""


def _integer(minimum: int) -> Check:
    def check(reader: _Reader, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= INTEGER_MAXIMUM:
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


def _timeout_ms(reader: _Reader, key: str, value: Any) -> None:
    # Whole milliseconds: kafka-python sends request_timeout_ms in Produce requests as an Int32.
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not whole or not 0 <= value <= INTEGER_MAXIMUM:
        raise reader.error(
            key, f"expected a whole number of milliseconds from 0 to {INTEGER_MAXIMUM:,}, got {shown(value)}"
        )


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


def _kafka_options(role: Literal["common", "consumer", "producer"]) -> Check:
    def check(reader: _Reader, key: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise reader.error(key, f"expected a mapping of kafka-python {role} options, got {shown(value)}")
        problems: list[str] = []
        for name, option_value in value.items():
            try:
                _check_kafka_option(reader, key, role, name, option_value)
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:  # every bad option of the section, one line each
            raise ConfigError("\n".join(problems))
        options = dict(value)
        if isinstance(options.get("api_version"), list):
            options["api_version"] = tuple(options["api_version"])  # kafka-python takes a tuple only
        return MappingProxyType(options)

    return check


def _check_kafka_option(
    reader: _Reader, section: str, role: Literal["common", "consumer", "producer"], name: Any, value: Any
) -> None:
    """One passthrough option: a name kafka-python knows and logwarden leaves open, a usable value."""
    dotted = f"{section}.{name}"
    if not isinstance(name, str):
        raise reader.error(dotted, f"option names must be strings, got {shown(name)}")
    if name in CONTROLLED_OPTIONS:
        raise reader.error(dotted, f"is set by logwarden itself: {CONTROLLED_OPTIONS[name]}")
    if name in PYTHON_OBJECT_OPTIONS:
        raise reader.error(dotted, "needs a Python object and cannot be set from a config file")
    allowed = _kafka_option_names(role)
    if name not in allowed:
        hint = _suggestion(name, sorted(allowed))
        both = " (common options must be valid for both consumer and producer)" if role == "common" else ""
        raise reader.error(dotted, f"not a kafka-python {role} option{hint}{both}")
    if _expands_beyond(value, PASSTHROUGH_ITEMS_MAXIMUM):
        raise reader.error(
            dotted,
            f"holds more than {PASSTHROUGH_ITEMS_MAXIMUM:,} items, or itself, once YAML aliases are expanded",
        )
    if name in TIMEOUT_OPTIONS:
        _timeout_ms(reader, dotted, value)
    _check_option_type(reader, dotted, role, name, value)


PASSTHROUGH_ITEMS_MAXIMUM = 10_000
"""Most items in one passthrough value (``socket_options`` takes any list).  The start-up log and
``--check`` expand YAML aliases, so a list that contains itself would never end, and aliases nested
a few levels deep (``[*a, *a]`` of ``[*b, *b]`` ...) would take hours."""


def _expands_beyond(value: Any, limit: int) -> bool:
    """Whether ``value`` holds more than ``limit`` lists, mappings and scalars once aliases are expanded."""
    pending, count = [value], 0
    while pending:
        count += 1
        if count > limit:
            return True
        item = pending.pop()
        if isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _kafka_defaults(role: Literal["common", "consumer", "producer"]) -> list[Mapping[str, Any]]:
    # Imported here: reading a config needs kafka-python for its option names and defaults only.
    from kafka import KafkaConsumer, KafkaProducer

    consumer, producer = KafkaConsumer.DEFAULT_CONFIG, KafkaProducer.DEFAULT_CONFIG
    return {"common": [consumer, producer], "consumer": [consumer], "producer": [producer]}[role]


def _kafka_option_names(role: Literal["common", "consumer", "producer"]) -> frozenset[str]:
    return frozenset.intersection(*(frozenset(defaults) for defaults in _kafka_defaults(role)))


# Passthrough options whose kafka-python default (None, or one of several accepted forms) does not
# show what a file must give.  The others are checked against their default's type.
_OPTION_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "acks": "acks",
        "api_version": "version",
        "socket_options": "socket_options",
        "receive_buffer_bytes": "integer",
        "send_buffer_bytes": "integer",
        **{
            name: "string"
            for name in (
                "client_id",
                "compression_type",
                "group_instance_id",
                "proxy_url",
                "sasl_kerberos_domain_name",
                "sasl_kerberos_name",
                "sasl_mechanism",
                "sasl_plain_password",
                "sasl_plain_username",
                "socks5_proxy",
                "ssl_cafile",
                "ssl_certfile",
                "ssl_ciphers",
                "ssl_crlfile",
                "ssl_keyfile",
                "ssl_password",
            )
        },
    }
)
_KIND_RULES: Mapping[str, tuple[Callable[[Any], bool], str]] = MappingProxyType(
    {
        "boolean": (lambda v: isinstance(v, bool), "true or false"),
        "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
        "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
        "string": (lambda v: isinstance(v, str), "a string"),
        "list": (lambda v: isinstance(v, list), "a list"),
        # acks 0 is refused: the producer then never hears of a lost alert, and the daemon commits
        # offsets past it as delivered (the checkpoint order waits for acknowledged writes).
        "acks": (
            lambda v: v in ("all",) or (type(v) is int and v in (-1, 1)),
            "1, -1 or all (0 would let alerts be lost)",
        ),
        # Each entry is passed to socket.setsockopt when a connection opens; a malformed one fails
        # there, which the daemon reports as "no broker answered" (exit 8) and systemd retries forever.
        "socket_options": (
            lambda v: (
                isinstance(v, list)
                and all(
                    isinstance(entry, list)
                    and len(entry) == 3
                    and all(type(part) is int for part in entry[:2])
                    and (type(entry[2]) is int or isinstance(entry[2], bytes))
                    for entry in v
                )
            ),
            "a list of [level, option, value] integers, e.g. [[6, 1, 1]] "
            "(TCP_NODELAY, kafka-python's default)",
        ),
        "version": (
            lambda v: _broker_version(v) is not None,
            'a broker version such as "3.6" or [3, 6], not older than kafka-python knows',
        ),
    }
)


def _broker_version(value: Any) -> tuple[int, ...] | None:
    """``value`` as the version tuple kafka-python takes, or None when it cannot use it.

    kafka-python parses a version string only when a client starts (a ValueError then), and raises
    UnrecognizedBrokerVersion, an error no config check names, for one older than it knows.
    """
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9}){0,3}", value):
        version = tuple(int(part) for part in value.split("."))
    elif isinstance(value, list) and value and all(type(part) is int and part >= 0 for part in value):
        version = tuple(value)
    else:
        return None
    oldest = _oldest_broker_version()
    # kafka-python pads a short version with a zero: [0, 8] means 0.8.0.
    return version if oldest is None or version + (0,) >= oldest else None


def _oldest_broker_version() -> tuple[int, ...] | None:
    """The oldest broker version this kafka-python knows (None when its table cannot be read)."""
    try:
        from kafka.protocol.broker_version_data import BROKER_API_VERSIONS
    except ImportError:  # another kafka-python layout: kafka-python checks the version when starting
        return None
    return min(BROKER_API_VERSIONS)


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# Where kafka-python takes any value of the right type and misreads it (an unknown reset policy
# silently means none, an unknown security_protocol silently means PLAINTEXT, no TLS), or refuses it
# only when a client is built, after start-up (the others).
# Each: (choices, whether kafka-python compares them case-insensitively).
_OPTION_CHOICES: Mapping[str, tuple[tuple[str, ...], bool]] = MappingProxyType(
    {
        "auto_offset_reset": (("earliest", "latest", "none"), True),
        "security_protocol": (SECURITY_PROTOCOLS, False),
        "isolation_level": (("read_uncommitted", "read_committed"), True),
        "client_dns_lookup": (("use_all_dns_ips", "resolve_canonical_bootstrap_servers_only"), False),
        "compression_type": (("gzip", "snappy", "lz4", "zstd"), False),
    }
)
_POSITIVE_OPTIONS = frozenset(
    {
        "fetch_max_bytes",
        "max_in_flight_requests_per_connection",
        "max_partition_fetch_bytes",
        "max_poll_records",
        "max_request_size",
        "metrics_num_samples",
    }
)


def _kafka_option_kind(role: Literal["common", "consumer", "producer"], name: str) -> str | None:
    """What ``name`` takes, or None when neither the table nor kafka-python's default tells."""
    if name in _OPTION_KINDS:
        return _OPTION_KINDS[name]
    kinds = {_kind_of(defaults[name]) for defaults in _kafka_defaults(role)}
    return kinds.pop() if len(kinds) == 1 else None


def _kind_of(default: Any) -> str | None:
    for python_type, kind in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(default, python_type):
            return kind
    return "list" if isinstance(default, (list, tuple)) else None


def _check_option_type(
    reader: _Reader, key: str, role: Literal["common", "consumer", "producer"], name: str, value: Any
) -> None:
    """A value of the wrong type fails here, not deep inside kafka-python after the daemon started.

    kafka-python checks few option types when a client is built; a string where it expects a number
    raises a TypeError only when the option is first used (``max_poll_interval_ms`` at the group
    join), which exits 1 and restarts in a loop instead of exit 3.  null is kafka-python's default
    only where that default is None.
    """
    kind = _kafka_option_kind(role, name)
    if value is None:
        if all(defaults[name] is None for defaults in _kafka_defaults(role)):
            return
        expected = _KIND_RULES[kind][1] if kind is not None else "a value"
        raise reader.error(
            key, f"expected {expected}, got null (leave the option out for kafka-python's default)"
        )
    if kind is None:
        return
    accepts, expected = _KIND_RULES[kind]
    if not accepts(value):
        raise reader.error(key, f"expected {expected}, got {shown(value)}")
    if kind == "integer":
        # Sizes, counts and milliseconds; most travel in requests as a Kafka Int32.
        _integer(1 if name in _POSITIVE_OPTIONS else 0)(reader, key, value)
    choices, case_insensitive = _OPTION_CHOICES.get(name, (None, False))
    if name == "sasl_mechanism":
        choices = _sasl_mechanisms()
    if choices is not None and (value.lower() if case_insensitive else value) not in choices:
        raise reader.error(key, f"expected one of {', '.join(choices)}; got {shown(value)}")
    if name == "compression_type" and not _codec_available(value):
        package = _CODEC_PACKAGES.get(value, value)
        raise reader.error(
            key, f"{value} needs its compression library, which is not installed (pip install {package})"
        )


_CODEC_PACKAGES = MappingProxyType({"snappy": "python-snappy", "zstd": "zstandard", "lz4": "lz4"})


def _codec_available(codec: str) -> bool:
    """Whether kafka-python finds the library of ``codec``: it checks only when the producer is built."""
    try:
        from kafka import codec as codecs
    except ImportError:  # another kafka-python layout: the producer checks it at start
        return True
    checker = getattr(codecs, f"has_{codec}", None)
    return True if checker is None else bool(checker())


def _sasl_mechanisms() -> tuple[str, ...] | None:
    """The SASL mechanisms this kafka-python can use (None when its registry cannot be read)."""
    try:
        from kafka.net.sasl import SASL_MECHANISMS
    except ImportError:  # another kafka-python layout: kafka-python checks the name when connecting
        return None
    return tuple(sorted(SASL_MECHANISMS))


# Security options with a non-None kafka-python default, harmless under any protocol.
_ALWAYS_SET_SECURITY = frozenset({"ssl_check_hostname", "sasl_kerberos_service_name"})
# The protocols under which kafka-python reads sasl_* and ssl_* options.
_PROTOCOLS_USING: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"sasl_": ("SASL_PLAINTEXT", "SASL_SSL"), "ssl_": ("SSL", "SASL_SSL")}
)


def _check_security(reader: _Reader, kafka: KafkaConfig) -> None:
    """TLS and SASL options only act under a protocol that uses them; kafka-python ignores them
    otherwise, so ``ssl_cafile`` without ``security_protocol: SSL`` would connect in plain text."""
    for role, own, options in (
        ("consumer", kafka.consumer, kafka.consumer_options()),
        ("producer", kafka.producer, kafka.producer_options()),
    ):
        protocol = options.get("security_protocol", "PLAINTEXT")

        def key(name: str, own: Mapping[str, Any] = own, role: str = role) -> str:
            """The dotted key that set ``name`` for this role: its own section wins over common."""
            return f"kafka.{role if name in own else 'common'}.{name}"

        if protocol in _PROTOCOLS_USING["sasl_"] and options.get("sasl_mechanism") is None:
            raise reader.error(
                key("security_protocol"), f"{protocol} needs sasl_mechanism (e.g. SCRAM-SHA-512)"
            )
        for name, value in options.items():
            prefix = next((p for p in _PROTOCOLS_USING if name.startswith(p)), None)
            if prefix is None or value is None or name in _ALWAYS_SET_SECURITY:
                continue
            if protocol not in _PROTOCOLS_USING[prefix]:
                needed = " or ".join(_PROTOCOLS_USING[prefix])
                raise reader.error(
                    key(name),
                    f"has no effect with security_protocol {protocol} (the {role}'s): set "
                    f"security_protocol to {needed} (kafka.common), or remove it",
                )


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


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if v is not None and _is_secret(k) else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)
