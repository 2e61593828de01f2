"""Fold a micro-batch of decoded events into the per-entity state table, scoring each event.

Events of many entities go through one onnxruntime call.  When an entity has several events
in the batch they must be applied in order, so the batch is cut into *waves*: wave k holds the
k-th event of every entity that has one.  Each event is scored against the state before it,
then that state is advanced.  This module decides nothing about alerts (see policy.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from logwarden.daemon.state_table import EntityStateTable
from logwarden.model.contract import END_ID
from logwarden.scoring.session import StepModel, surprise_of


@dataclass
class ScoredBatch:
    """Per-event scores in input order, and the log-probability rows of the events a caller asked to keep."""

    scores: np.ndarray  # float32 [N]
    log_probs: np.ndarray  # float32 [N, V]: the distribution each event was scored against


def wave_indices(slots: np.ndarray) -> list[np.ndarray]:
    """Split event positions into waves so that no slot appears twice in a wave, order kept.

    Wave k holds the k-th event of every slot that has one; computed with numpy (a stable sort
    by slot numbers each event within its slot) rather than a Python loop over the events.
    """
    count = len(slots)
    if count == 0:
        return [np.arange(0)]
    by_slot = np.argsort(slots, kind="stable")
    sorted_slots = slots[by_slot]
    starts = np.flatnonzero(np.r_[True, sorted_slots[1:] != sorted_slots[:-1]])
    if len(starts) == count:
        return [np.arange(count)]
    run_lengths = np.diff(np.r_[starts, count])
    occurrence = np.empty(count, np.int64)
    occurrence[by_slot] = np.arange(count) - np.repeat(starts, run_lengths)
    order = np.argsort(occurrence, kind="stable")
    boundaries = np.searchsorted(occurrence[order], np.arange(1, int(run_lengths.max())))
    return np.split(order, boundaries)


class BatchProcessor:
    """Scores events against per-entity state and advances it; one model call per wave."""

    def __init__(self, model: StepModel, table: EntityStateTable) -> None:
        self._model = model
        self._table = table

    def process(
        self, entities: Sequence[str], event_ids: np.ndarray, partitions: np.ndarray, now: float
    ) -> ScoredBatch:
        """Score and apply ``event_ids`` (int64 [N]) for ``entities`` at stream time ``now``.

        Slots are looked up (and new entities given one) once for the whole batch, so no
        entity of the batch can be evicted to make room for another.
        """
        count = len(entities)
        scores = np.empty(count, np.float32)
        log_probs: np.ndarray | None = None
        all_slots = self._table.slots_for(entities, now, partitions)
        for wave in wave_indices(all_slots):
            if len(wave) == 0:
                continue
            slots = all_slots[wave]
            ids = event_ids[wave]
            out = self._model.run(ids[None, :], self._table.h[:, slots, :], self._table.c[:, slots, :])
            step_log_probs = out.log_probs[0]
            if log_probs is None:
                log_probs = np.empty((count, step_log_probs.shape[1]), np.float32)
            log_probs[wave] = step_log_probs
            scores[wave] = surprise_of(step_log_probs, ids)
            self._table.write(slots, out.h, out.c, now)
        if log_probs is None:
            log_probs = np.empty((0, 0), np.float32)
        return ScoredBatch(scores, log_probs)

    def score_session_end(self, slots: np.ndarray) -> ScoredBatch:
        """Score the END token for entities whose session is over; their state is not advanced."""
        ids = np.full(len(slots), END_ID, np.int64)
        out = self._model.run(ids[None, :], self._table.h[:, slots, :], self._table.c[:, slots, :])
        return ScoredBatch(surprise_of(out.log_probs[0], ids), out.log_probs[0])
