"""Readers for pre-parsed inputs: DeepLog-style sequence files and labelled CSVs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from logwarden.errors import InputFormatError
from logwarden.events.csv_input import describe_utf8_error, read_csv_rows


def read_sequences(path: str | Path) -> list[list[str]]:
    """One session per line, whitespace-separated event keys; a blank line yields ``[]``.

    Line numbers are kept (a blank line holds no session, and each caller says what it does with
    one) so output can be matched to input.  Only
    ``\n`` ends a line: a stray ``\r`` inside one is whitespace, as is the ``\r`` of ``\r\n``.  A
    UTF-8 byte order mark is not part of the first key.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="\n") as handle:
            return [line.split() for line in handle]
    except FileNotFoundError as exc:
        raise InputFormatError(f"{path}: sequences file not found") from exc
    except UnicodeDecodeError as exc:
        raise InputFormatError(describe_utf8_error(path)) from exc
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read sequences file: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class LabelledSession:
    """One row of a labelled CSV: the session's keys and whether it is anomalous."""

    keys: list[str]
    anomalous: bool


def read_labelled_csv(path: str | Path) -> list[LabelledSession]:
    """Read ``Sequence,label`` rows (label 0 normal, 1 anomalous), as in dev_labelled.csv."""
    path = Path(path)
    sessions = []
    for line_number, row in read_csv_rows(path, ("Sequence", "label"), "labelled CSV"):
        label = (row["label"] or "").strip()
        if label not in ("0", "1"):
            raise InputFormatError(f"{path}:{line_number}: label must be 0 or 1, got {label!r}")
        keys = (row["Sequence"] or "").split()
        if not keys:
            # Scored, an empty session alerts (it ends before any training session did); skipped, it
            # would drop a labelled row from the counts in silence.  Neither is what the row meant.
            raise InputFormatError(
                f"{path}:{line_number}: the Sequence is empty; a labelled session needs an event key"
            )
        sessions.append(LabelledSession(keys, label == "1"))
    return sessions


def keys_a_sequence_cannot_name(keys: Iterable[str]) -> list[str]:
    """The event keys holding whitespace: a sequences file or a labelled CSV, split on whitespace, can
    never name them (``user login`` reads as ``user`` and ``login``, both UNKNOWN).

    JSON events may carry such keys (``--event-field`` with an action name), so a model may hold them;
    what reads sessions of keys from text refuses such a model instead of scoring every event UNKNOWN.
    """
    return [key for key in keys if key.split() != [key]]
