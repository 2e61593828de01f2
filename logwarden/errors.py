"""One root exception with typed subclasses, so the CLI can map each to an exit code."""

from __future__ import annotations

import difflib
import reprlib


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


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 3
_SHORT_REPR.maxother = _SHORT_REPR.maxlong = 80
_SHORT_REPR.maxstring = 1_000  # longer than the cut below, so a long string keeps its start
_SHORT_REPR.maxlist = _SHORT_REPR.maxtuple = _SHORT_REPR.maxdict = _SHORT_REPR.maxset = 6


def shown(value: object) -> str:
    """``value`` as an error message quotes it: a repr of at most 80 characters.

    Why: values come from files (a config, ``model.json``, a state store) and may be of any size; the
    CLI prints one line per error, which a 100 kB value or a YAML alias expanding to billions of
    items (``[*a, *a]`` nested ten levels) would make unreadable or endless.  reprlib stops after a
    few items and levels.
    """
    try:
        text = _SHORT_REPR.repr(value)
    except ValueError:  # an integer of more digits than Python prints
        return "an integer too long to print"
    return text if len(text) <= 80 else text[:77] + "..."


def did_you_mean(name: str, known: list[str]) -> str:
    """``; did you mean "x"?`` for the closest known name (a shortened name counts as close), or "".

    Why: a misspelt key or option would otherwise be refused with only the list of valid names.
    """
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    close = close or [k for k in known if k.startswith(name) or name.startswith(k)][:1]
    return f'; did you mean "{close[0]}"?' if close else ""
