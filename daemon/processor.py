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


MODEL_CALL_COLUMNS = 1024
"""Most entities in one onnxruntime call.  With 8,192 entities in a wave, the gathered (h, c), the
graph's working buffers and the (h, c) it returns are 4 MiB apiece and no longer fit in the cache;
in calls of 1,024 they do.  ``benchmarks/processor_speed.py`` (2 layers, hidden 64, 50,000
entities, batches of 8,192): median 6.9 µs an event in one call per wave, 4.9 in calls of 1,024."""


def column_chunks(positions: np.ndarray, columns: int) -> list[np.ndarray]:
    """``positions`` cut into consecutive pieces of at most ``columns``; one empty piece if empty."""
    if len(positions) <= columns:
        return [positions]
    return [positions[start : start + columns] for start in range(0, len(positions), columns)]


class BatchProcessor:
    """Scores events against per-entity state and advances it; one model call per wave (or piece of one)."""

    def __init__(
        self, model: StepModel, table: EntityStateTable, *, columns_per_call: int = MODEL_CALL_COLUMNS
    ) -> None:
        if columns_per_call < 1:
            raise ValueError(f"columns_per_call must be at least 1, got {columns_per_call}")
        self._model = model
        self._table = table
        self._columns = columns_per_call

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
            # A wave holds each slot once, so its pieces are independent of one another.
            for piece in column_chunks(wave, self._columns):
                if len(piece) == 0:
                    continue
                slots = all_slots[piece]
                ids = event_ids[piece]
                out = self._model.run(ids[None, :], self._table.h[:, slots, :], self._table.c[:, slots, :])
                step_log_probs = out.log_probs[0]
                if log_probs is None:
                    log_probs = np.empty((count, step_log_probs.shape[1]), np.float32)
                log_probs[piece] = step_log_probs
                scores[piece] = surprise_of(step_log_probs, ids)
                self._table.write(slots, out.h, out.c, now)
        if log_probs is None:
            log_probs = np.empty((0, 0), np.float32)
        return ScoredBatch(scores, log_probs)

    def score_session_end(self, slots: np.ndarray) -> ScoredBatch:
        """Score the END token for entities whose session is over; their state is not advanced."""
        scores = np.empty(len(slots), np.float32)
        log_probs: np.ndarray | None = None
        for piece in column_chunks(np.arange(len(slots)), self._columns):
            if len(piece) == 0:
                continue
            ids = np.full(len(piece), END_ID, np.int64)
            piece_slots = slots[piece]
            out = self._model.run(
                ids[None, :], self._table.h[:, piece_slots, :], self._table.c[:, piece_slots, :]
            )
            step_log_probs = out.log_probs[0]
            if log_probs is None:
                log_probs = np.empty((len(slots), step_log_probs.shape[1]), np.float32)
            log_probs[piece] = step_log_probs
            scores[piece] = surprise_of(step_log_probs, ids)
        if log_probs is None:
            log_probs = np.empty((0, 0), np.float32)
        return ScoredBatch(scores, log_probs)
