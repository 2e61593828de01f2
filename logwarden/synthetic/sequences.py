"""Seeded DeepLog-format sessions (integer event keys) with labelled anomalies, for small trainer tests.

The sessions follow the same lifecycle grammar as the raw-log generator, each step written
as its integer key, so a model trained here learns the same structure in seconds.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from logwarden.synthetic.lifecycle import (
    ALL_KINDS,
    NORMAL_STEPS,
    UNKNOWN_STEPS,
    AnomalyKind,
    assign_kinds,
    inject_anomaly,
    plan_normal,
)

STEP_KEYS: dict[str, str] = {step: str(i + 1) for i, step in enumerate(NORMAL_STEPS + UNKNOWN_STEPS)}
"""Event key of each step: normal steps 1-11, steps never seen in normal traffic 12-14."""

_ASSIGNMENT_STREAM = 10
_SESSION_STREAM = 11
_INJECTION_STREAM = 12


@dataclass(frozen=True)
class SyntheticSequences:
    """Sessions of event keys and, per session, its anomaly kind (None when normal)."""

    sessions: list[list[str]]
    kinds: list[AnomalyKind | None]

    @property
    def labels(self) -> list[bool]:
        """Whether each session is anomalous."""
        return [kind is not None for kind in self.kinds]


def generate_sequences(
    seed: int,
    sessions: int,
    anomaly_fraction: float = 0.05,
    kinds: Sequence[AnomalyKind] = ALL_KINDS,
) -> SyntheticSequences:
    """``sessions`` lifecycles as key lists, ``round(sessions * anomaly_fraction)`` of them anomalous."""
    if sessions < 0:
        raise ValueError(f"sessions must be >= 0, got {sessions}")
    kind_of_index = assign_kinds(
        np.random.default_rng([seed, _ASSIGNMENT_STREAM]), sessions, anomaly_fraction, tuple(kinds)
    )
    keyed: list[list[str]] = []
    session_kinds: list[AnomalyKind | None] = []
    for index in range(sessions):
        steps = plan_normal(np.random.default_rng([seed, _SESSION_STREAM, index]))
        kind = kind_of_index.get(index)
        if kind is not None:
            steps = inject_anomaly(kind, steps, np.random.default_rng([seed, _INJECTION_STREAM, index]))
        keyed.append([STEP_KEYS[step] for step in steps])
        session_kinds.append(kind)
    return SyntheticSequences(sessions=keyed, kinds=session_kinds)


def write_sequences(path: str | Path, sessions: Sequence[Sequence[str]]) -> None:
    """One session per line, keys separated by spaces (the format ``read_sequences`` reads)."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for session in sessions:
            handle.write(" ".join(session) + "\n")


def write_labelled_csv(path: str | Path, sessions: Sequence[Sequence[str]], labels: Sequence[bool]) -> None:
    """``Sequence,label`` rows, label 1 for anomalous (the format ``read_labelled_csv`` reads)."""
    if len(sessions) != len(labels):
        raise ValueError(f"{len(sessions)} sessions but {len(labels)} labels")
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["Sequence", "label"])
        for session, label in zip(sessions, labels, strict=True):
            writer.writerow([" ".join(session), int(label)])
