"""Fold a micro-batch of decoded events into the per-entity state table, scoring each event.

Events of many entities are scored together.  When an entity has several events in the batch
they must be applied in order, so the batch is cut into *waves*: wave k holds the k-th event of
every entity that has one.  A wave goes through onnxruntime in one call per piece of at most
``MODEL_CALL_COLUMNS`` (1,024) entities.  Each event is scored against the state before it, then
that state is advanced.  This module decides nothing about alerts (see policy.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from logwarden.daemon.state.table import EntityStateTable
from logwarden.model.contract import END_ID, UNKNOWN_ID
from logwarden.model.count_gate import event_weights
from logwarden.scoring.session import StepModel, surprise_of


@dataclass
class EndedSessions:
    """Sessions that ended because their entity's next event came more than the TTL after its last.

    Each is scored like an idle-expired session (the END token against the state it reached) and
    identified by the entity and the time of its last event, which a replay finds again whatever
    the batches.
    """

    entities: list[str]
    scores: np.ndarray  # float32 [E]
    log_probs: np.ndarray  # float32 [E, V]
    events_applied: np.ndarray  # int64 [E]: events of the ended session
    last_seen: np.ndarray  # float64 [E]: time of its last event
    count_profile: np.ndarray  # uint64 [E]: multiset hash of the session's events (count_gate.py)
    max_surprise: np.ndarray  # float32 [E]: largest surprise of its events; NaN if not tracked
    unknown_events: np.ndarray  # int64 [E]: its events that matched no template (each alerted already)

    @property
    def session_scores(self) -> np.ndarray:
        """Each session's score as offline scoring gives it: the largest surprise, END included.

        NaN (counts not tracked: state restored from a store that lacked them) stays NaN.
        """
        return np.maximum(self.max_surprise, self.scores)


def no_ended_sessions() -> EndedSessions:
    """An empty ``EndedSessions``: the default for a batch in which no session ended."""
    return EndedSessions(
        [],
        np.empty(0, np.float32),
        np.empty((0, 0), np.float32),
        np.empty(0, np.int64),
        np.empty(0),
        np.empty(0, np.uint64),
        np.empty(0, np.float32),
        np.empty(0, np.int64),
    )


@dataclass
class ScoredBatch:
    """Per-event scores in input order, and the log-probability rows of the events a caller asked to keep."""

    scores: np.ndarray  # float32 [N]
    log_probs: np.ndarray  # float32 [N, V]: the distribution each event was scored against
    ended: EndedSessions = field(default_factory=no_ended_sessions)


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
        self._weights = np.empty(0, np.uint64)

    def process(
        self,
        entities: Sequence[str],
        event_ids: np.ndarray,
        partitions: np.ndarray,
        now: float | np.ndarray,
        ttl_seconds: float | None = None,
        topic_ids: int | np.ndarray = 0,
    ) -> ScoredBatch:
        """Score and apply ``event_ids`` (int64 [N]) for ``entities``; ``now`` is each event's time.

        ``partitions`` and ``topic_ids`` (the table's ``topic_id_of``) say where each event came from.

        Slots are looked up (and new entities given one) once for the whole batch, so no
        entity of the batch can be evicted to make room for another.  With ``ttl_seconds``, an
        event that comes more than the TTL after its entity's previous one first ends that
        session (``ScoredBatch.ended``) and opens a new one, event by event, so where a
        poll was cut and when the idle sweep ran do not change any entity's state.
        """
        count = len(entities)
        scores = np.empty(count, np.float32)
        log_probs: np.ndarray | None = None
        times = np.broadcast_to(np.asarray(now, np.float64), (count,))
        all_slots = self._table.slots_for(entities, times, partitions, topic_ids)
        ended: list[tuple[np.ndarray, EndedSessions]] = []
        for wave in wave_indices(all_slots):
            # A wave holds each slot once, so its pieces are independent of one another.
            for piece in column_chunks(wave, self._columns):
                if len(piece) == 0:
                    continue
                slots = all_slots[piece]
                if ttl_seconds is not None:
                    self._end_stale_sessions(piece, slots, times[piece], ttl_seconds, ended)
                ids = event_ids[piece]
                out = self._model.run(ids[None, :], self._table.h[:, slots, :], self._table.c[:, slots, :])
                step_log_probs = out.log_probs[0]
                if log_probs is None:
                    log_probs = np.empty((count, step_log_probs.shape[1]), np.float32)
                log_probs[piece] = step_log_probs
                scores[piece] = surprise_of(step_log_probs, ids)
                self._table.write(
                    slots,
                    out.h,
                    out.c,
                    times[piece],
                    count_weights=self._count_weights(step_log_probs.shape[1])[ids],
                    surprise=scores[piece],
                    unknown=ids == UNKNOWN_ID,
                )
        if log_probs is None:
            log_probs = np.empty((0, 0), np.float32)
        return ScoredBatch(scores, log_probs, self._gather_ended(entities, ended))

    def _count_weights(self, vocab_size: int) -> np.ndarray:
        """The count gate's weight of each event id, computed once for the model's vocabulary size."""
        if len(self._weights) != vocab_size:
            self._weights = event_weights(vocab_size)
        return self._weights

    def end_sessions(self, entities: list[str], slots: np.ndarray) -> EndedSessions:
        """Score the end of the sessions in ``slots`` (idle past the TTL) with what the gate needs.

        The state is left as it is; the caller removes the entities.
        """
        end = self.score_session_end(slots)
        table = self._table
        return EndedSessions(
            entities=entities,
            scores=end.scores,
            log_probs=end.log_probs,
            events_applied=table.events_applied[slots].copy(),
            last_seen=table.last_seen[slots].copy(),
            count_profile=table.count_profile[slots].copy(),
            max_surprise=table.max_surprise[slots].copy(),
            unknown_events=table.unknown_events[slots].copy(),
        )

    def _end_stale_sessions(
        self,
        piece: np.ndarray,
        slots: np.ndarray,
        times: np.ndarray,
        ttl_seconds: float,
        ended: list[tuple[np.ndarray, EndedSessions]],
    ) -> None:
        stale = np.flatnonzero(
            (self._table.events_applied[slots] > 0) & (times - self._table.last_seen[slots] > ttl_seconds)
        )
        if stale.size == 0:
            return
        stale_slots = slots[stale]
        ended.append((piece[stale], self.end_sessions([], stale_slots)))
        self._table.restart_sessions(stale_slots)

    @staticmethod
    def _gather_ended(
        entities: Sequence[str], ended: list[tuple[np.ndarray, EndedSessions]]
    ) -> EndedSessions:
        if not ended:
            return no_ended_sessions()
        sessions = [session for _, session in ended]
        return EndedSessions(
            entities=[entities[i] for positions, _ in ended for i in positions.tolist()],
            scores=np.concatenate([s.scores for s in sessions]),
            log_probs=np.concatenate([s.log_probs for s in sessions]),
            events_applied=np.concatenate([s.events_applied for s in sessions]),
            last_seen=np.concatenate([s.last_seen for s in sessions]),
            count_profile=np.concatenate([s.count_profile for s in sessions]),
            max_surprise=np.concatenate([s.max_surprise for s in sessions]),
            unknown_events=np.concatenate([s.unknown_events for s in sessions]),
        )

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
