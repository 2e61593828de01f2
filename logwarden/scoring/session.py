"""Score whole sessions offline with any step model (onnxruntime in production, torch in tests).

A session's score is its largest per-event surprise ``-log P(event | events before it)``,
including the end-of-session token, so a session that stops early is scored too.  An event
the model has never seen (UNKNOWN) makes its session anomalous whatever the score.  With the
model's count gate (``logwarden/model/count_gate.py``), a session whose event counts no training
session had is anomalous above the gate's lower threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from logwarden.model.contract import END_ID, UNKNOWN_ID
from logwarden.model.count_gate import CountGate, count_profiles, event_weights


class StepOutputLike(Protocol):
    """Result of a step: log-probabilities [T, B, V] before each event and the state (h, c) after the last."""

    log_probs: np.ndarray
    h: np.ndarray
    c: np.ndarray


class StepModel(Protocol):
    """The port the scorer needs: a stateful step and the state of a fresh entity."""

    def run(self, event_ids: np.ndarray, h: np.ndarray, c: np.ndarray) -> StepOutputLike:
        """Feed ``event_ids`` [T, B] from state (h, c) [L, B, H]."""

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(h, c) [L, batch, H] of ``batch`` entities that have seen no event yet."""


@dataclass(frozen=True)
class SessionScore:
    """Verdict on one session; ``worst_index == len(session)`` means the END token was worst."""

    score: float
    anomalous: bool
    worst_index: int
    unknown_events: int
    length: int
    unseen_counts: bool | None = None
    """Whether no training session had this session's event counts; None without a count gate."""


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
    window: int = 512,
    count_gate: CountGate | None = None,
) -> list[SessionScore]:
    """Score every session (int64 event-id arrays), in input order.

    Sessions are batched by similar length to keep padding small; padding positions are
    fed END and never read.  Each batch runs ``window`` steps at a time with the state
    carried over, so memory stays bounded by ``window x batch_size x V`` however long a
    session is (an entity in raw logs can log for days).
    """
    if batch_size < 1 or window < 1:
        raise ValueError(f"batch_size and window must be at least 1, got {batch_size} and {window}")
    arrays = [np.asarray(session, dtype=np.int64) for session in sessions]
    unseen: np.ndarray | None = None
    if count_gate is not None:
        vocab_size = int(max((a.max() for a in arrays if a.size), default=END_ID)) + 1
        unseen = count_gate.unseen(count_profiles(arrays, event_weights(vocab_size)))
    results: list[SessionScore | None] = [None] * len(arrays)
    order = sorted(range(len(arrays)), key=lambda i: len(arrays[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        lengths = np.array([len(arrays[i]) + (1 if score_end else 0) for i in chunk])
        width = max(int(lengths.max()), 1)
        ids = np.full((width, len(chunk)), END_ID, np.int64)
        for column, index in enumerate(chunk):
            ids[: len(arrays[index]), column] = arrays[index]
        best, worst = _max_surprise(model, ids, lengths, window)
        for column, index in enumerate(chunk):
            if lengths[column] == 0:
                results[index] = SessionScore(0.0, False, 0, 0, 0)
                continue
            unknown = int(np.count_nonzero(arrays[index] == UNKNOWN_ID))
            score = float(best[column])
            unseen_counts = None if unseen is None else bool(unseen[index])
            gated = bool(unseen_counts and count_gate is not None and score > count_gate.threshold)
            results[index] = SessionScore(
                score=score,
                anomalous=bool(score > threshold or unknown > 0 or gated),
                worst_index=int(worst[column]),
                unknown_events=unknown,
                length=len(arrays[index]),
                unseen_counts=unseen_counts,
            )
    return [r for r in results if r is not None]


def _max_surprise(
    model: StepModel, ids: np.ndarray, lengths: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``ids`` [T, B]: the largest surprise among its first ``lengths`` steps and where it is.

    Ties keep the earliest position, as ``np.argmax`` over the whole column would.
    """
    batch = ids.shape[1]
    best = np.full(batch, -np.inf)
    worst = np.zeros(batch, np.int64)
    h, c = model.initial_state(batch)
    for offset in range(0, ids.shape[0], window):
        window_ids = ids[offset : offset + window]
        out = model.run(window_ids, h, c)
        h, c = out.h, out.c
        positions = offset + np.arange(window_ids.shape[0])
        valid = positions[:, None] < lengths[None, :]
        surprise = np.where(valid, surprise_of(out.log_probs, window_ids), -np.inf)
        window_worst = np.argmax(surprise, axis=0)
        window_best = surprise[window_worst, np.arange(batch)]
        improved = window_best > best
        best = np.where(improved, window_best, best)
        worst = np.where(improved, offset + window_worst, worst)
    return best, worst
