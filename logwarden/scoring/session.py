"""Score whole sessions offline with any step model (onnxruntime in production, torch in tests).

A session's score is its largest per-event surprise ``-log P(event | events before it)``,
including the end-of-session token, so a session that stops early is scored too.  An event
the model has never seen (UNKNOWN) makes its session anomalous whatever the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from logwarden.model.contract import END_ID, UNKNOWN_ID


class StepOutputLike(Protocol):
    log_probs: np.ndarray
    h: np.ndarray
    c: np.ndarray


class StepModel(Protocol):
    """The port the scorer needs: a stateful step and the state of a fresh entity."""

    def run(self, event_ids: np.ndarray, h: np.ndarray, c: np.ndarray) -> StepOutputLike: ...

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class SessionScore:
    """Verdict on one session; ``worst_index == len(session)`` means the END token was worst."""

    score: float
    anomalous: bool
    worst_index: int
    unknown_events: int
    length: int


def surprise_of(log_probs: np.ndarray, event_ids: np.ndarray) -> np.ndarray:
    """``-log P`` of each event id under the distribution that precedes it; shapes [..., V] and [...]."""
    return -np.take_along_axis(log_probs, event_ids[..., None], axis=-1)[..., 0]


def score_sessions(
    model: StepModel,
    sessions: Sequence[np.ndarray],
    threshold: float,
    *,
    batch_size: int = 256,
    score_end: bool = True,
) -> list[SessionScore]:
    """Score every session (int64 event-id arrays), in input order.

    Sessions are batched by similar length to keep padding small; padding positions are
    fed END and never read.
    """
    results: list[SessionScore | None] = [None] * len(sessions)
    order = sorted(range(len(sessions)), key=lambda i: len(sessions[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        lengths = np.array([len(sessions[i]) + (1 if score_end else 0) for i in chunk])
        width = max(int(lengths.max()), 1)
        ids = np.full((width, len(chunk)), END_ID, np.int64)
        for column, index in enumerate(chunk):
            ids[: len(sessions[index]), column] = sessions[index]
        h, c = model.initial_state(len(chunk))
        surprise = surprise_of(model.run(ids, h, c).log_probs, ids)
        valid = np.arange(width)[:, None] < lengths[None, :]
        surprise = np.where(valid, surprise, -np.inf)
        for column, index in enumerate(chunk):
            n = int(lengths[column])
            if n == 0:
                results[index] = SessionScore(0.0, False, 0, 0, 0)
                continue
            column_scores = surprise[:n, column]
            worst = int(np.argmax(column_scores))
            unknown = int(np.count_nonzero(sessions[index] == UNKNOWN_ID))
            score = float(column_scores[worst])
            results[index] = SessionScore(
                score=score,
                anomalous=bool(score > threshold or unknown > 0),
                worst_index=worst,
                unknown_events=unknown,
                length=len(sessions[index]),
            )
    return [r for r in results if r is not None]
