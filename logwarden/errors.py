"""One root exception with typed subclasses, so the CLI can map each to an exit code."""

from __future__ import annotations


class LogwardenError(Exception):
    """Root of every error logwarden raises on purpose."""


class ConfigError(LogwardenError):
    """A configuration file or option is missing or invalid; the message names the key."""


class ModelLoadError(LogwardenError):
    """A model directory is missing, corrupt, of another format version, or fails its checksum."""


class InputFormatError(LogwardenError):
    """An input file (sequences, labelled CSV, raw logs) cannot be read; names the file and line."""


class DecodeError(LogwardenError):
    """One message cannot be turned into an event; carries a short machine-readable reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TrainingError(LogwardenError):
    """Training cannot proceed (no sessions, a vocabulary of one event, ...)."""


class StateStoreError(LogwardenError):
    """The daemon's local state store is unreadable or belongs to another model."""


class BrokerUnavailableError(LogwardenError):
    """No Kafka broker answered at start (address, listener, TLS or SASL); a restart may succeed."""


class DeliveryError(LogwardenError):
    """The broker did not acknowledge records the daemon produced; the checkpoint must not advance."""
