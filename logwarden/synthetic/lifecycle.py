"""The job lifecycle grammar and the anomalies injected into it, as pure lists of step names.

Both the raw-log generator and the DeepLog-style sequence generator plan steps here, so the
ground truth of "normal" is one regular language (``is_normal_lifecycle``) that tests check
every normal entity against, and every anomalous one fails.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

NormalStep = Literal[
    "submit",
    "queue",
    "schedule",
    "stage_in",
    "cache_hit",
    "start",
    "progress",
    "checkpoint",
    "attempt_failed",
    "complete",
    "cleanup",
]
UnknownStep = Literal["oom_kill", "segfault", "quota_exceeded"]
Step = Literal[NormalStep, UnknownStep]
AnomalyKind = Literal["unknown_template", "out_of_order", "repeated_event", "missing_step", "truncated"]

ALL_KINDS: tuple[AnomalyKind, ...] = get_args(AnomalyKind)
NORMAL_STEPS: tuple[Step, ...] = get_args(NormalStep)
UNKNOWN_STEPS: tuple[Step, ...] = get_args(UnknownStep)
"""Steps that never occur in normal traffic: their templates are unknown to a trained model."""

_CODE: dict[str, str] = {
    "submit": "S",
    "queue": "Q",
    "schedule": "H",
    "stage_in": "I",
    "cache_hit": "C",
    "start": "B",
    "progress": "P",
    "checkpoint": "K",
    "attempt_failed": "F",
    "complete": "D",
    "cleanup": "E",
    "oom_kill": "x",
    "segfault": "y",
    "quota_exceeded": "z",
}
# submit, queue, then up to two failed attempts, the successful attempt, complete, cleanup;
# each attempt is schedule, stage (copy or cache hit), start, then work (progress/checkpoint).
_NORMAL = re.compile(r"SQ(?:H[IC]B[PK]+F){0,2}H[IC]B[PK]+DE")

_REPEATABLE: tuple[Step, ...] = ("queue", "schedule", "start")
"""Steps a repeated_event burst copies: each occurs once per attempt in normal traffic."""
_DROPPABLE: tuple[Step, ...] = ("queue", "schedule", "start", "complete")
"""Mandatory steps a missing_step anomaly skips."""

_RETRY_PROBABILITIES = (0.85, 0.12, 0.03)
"""P(0, 1, 2 failed attempts before the one that succeeds)."""


def is_normal_lifecycle(steps: Sequence[str]) -> bool:
    """Whether ``steps`` is a word of the normal lifecycle grammar."""
    try:
        word = "".join(_CODE[step] for step in steps)
    except KeyError:
        return False
    return _NORMAL.fullmatch(word) is not None


def plan_normal(rng: np.random.Generator) -> list[Step]:
    """One normal lifecycle: its branch (retries, staging variant) and work length drawn from ``rng``."""
    steps: list[Step] = ["submit", "queue"]
    failed_attempts = int(rng.choice(len(_RETRY_PROBABILITIES), p=_RETRY_PROBABILITIES))
    for attempt in range(failed_attempts + 1):
        steps.append("schedule")
        steps.append("cache_hit" if rng.random() < 0.3 else "stage_in")
        steps.append("start")
        is_last = attempt == failed_attempts
        work = int(rng.integers(2, 9)) if is_last else int(rng.integers(1, 4))
        steps.extend("checkpoint" if rng.random() < 0.3 else "progress" for _ in range(work))
        if not is_last:
            steps.append("attempt_failed")
    steps.extend(("complete", "cleanup"))
    return steps


def inject_anomaly(kind: AnomalyKind, normal: Sequence[Step], rng: np.random.Generator) -> list[Step]:
    """A copy of the normal lifecycle ``normal`` damaged in the way ``kind`` names.

    Every result fails ``is_normal_lifecycle``; ``truncated`` only by lacking its end, so
    only end-of-session scoring can see it.
    """
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}; expected one of {ALL_KINDS}")
    steps = list(normal)
    first_start = steps.index("start")
    complete = steps.index("complete")
    if kind == "unknown_template":
        at = int(rng.integers(first_start + 1, complete + 1))
        steps.insert(at, UNKNOWN_STEPS[int(rng.integers(len(UNKNOWN_STEPS)))])
    elif kind == "out_of_order":
        pairs: tuple[tuple[Step, Step], ...] = (
            ("submit", "queue"),
            ("queue", "schedule"),
            ("schedule", "start"),
            ("complete", "cleanup"),
        )
        first, second = pairs[int(rng.integers(len(pairs)))]
        i, j = steps.index(first), steps.index(second)
        steps[i], steps[j] = steps[j], steps[i]
    elif kind == "repeated_event":
        step: Step = _REPEATABLE[int(rng.integers(len(_REPEATABLE)))]
        at = steps.index(step)
        steps[at:at] = [step] * int(rng.integers(8, 17))
    elif kind == "missing_step":
        dropped: Step = _DROPPABLE[int(rng.integers(len(_DROPPABLE)))]
        del steps[steps.index(dropped)]
    else:
        steps = steps[: int(rng.integers(first_start + 1, complete + 1))]
    return steps


def assign_kinds(
    rng: np.random.Generator, count: int, anomaly_fraction: float, kinds: Sequence[AnomalyKind]
) -> dict[int, AnomalyKind]:
    """Which of ``count`` entities are anomalous, and how: kinds dealt round-robin so each appears.

    ``round(count * anomaly_fraction)`` entities are chosen; with at least as many as kinds,
    every kind is present.
    """
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ValueError(f"anomaly_fraction must be in [0, 1], got {anomaly_fraction}")
    for kind in kinds:
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown anomaly kind {kind!r}; expected some of {ALL_KINDS}")
    chosen_count = round(count * anomaly_fraction) if kinds else 0
    if chosen_count == 0:
        return {}
    chosen = np.sort(rng.choice(count, size=chosen_count, replace=False))
    order = rng.permutation(len(chosen))
    return {int(chosen[i]): kinds[rank % len(kinds)] for rank, i in enumerate(order)}
