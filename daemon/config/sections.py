"""The daemon's configuration as one frozen, typed model: a dataclass per section, with its defaults.

Each default here is the one ``config.example.yaml`` spells out (a test keeps the two equal).  The
model is built only by ``checks.parse_config``, so every instance holds valid values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

from logwarden.daemon.config.kafka_options import MASK, is_secret

InputFormat = Literal["raw", "json"]
EntitySource = Literal["regex", "field", "key"]
LogLevel = Literal["debug", "info", "warning", "error"]

INPUT_FORMATS: tuple[InputFormat, ...] = ("raw", "json")
LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")


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
    """The model directory; ``threshold`` None means the model's calibrated threshold; ``count_gate``
    False ignores the model's count gate (``logwarden/model/count_gate.py``) without retraining."""

    path: Path
    threshold: float | None = None
    top_k: int = 3
    count_gate: bool = True


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
        return {k: (MASK if v is not None and is_secret(k) else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value
