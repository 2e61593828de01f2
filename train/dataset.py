"""Turn sessions of event ids into padded, length-sorted training batches and truncated-BPTT chunks.

A session ``e1..en`` is trained as ``[START, e1..en, END]``: the network learns to predict
every event and the end of the session (so sessions that stop early become surprising), never
START itself.  Sessions are kept whole and batched by similar length; a long session is cut
into chunks of ``bptt_length`` steps that carry the (detached) LSTM state from one to the next.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from logwarden.errors import TrainingError
from logwarden.model.contract import END_ID, FIRST_EVENT_ID, START_ID


@dataclass(frozen=True)
class SequenceBatch:
    """Sessions of similar length, time-major.

    ``tokens[t, b]`` is fed at step t and is also the target predicted at step t (the
    network predicts each token from the state before it); ``loss_mask`` marks the
    positions that count: every event and END, not START and not padding.
    """

    tokens: torch.Tensor  # [T, B] int64, padded with END
    loss_mask: torch.Tensor  # [T, B] bool

    @property
    def target_count(self) -> int:
        """Number of predictions the loss covers."""
        return int(self.loss_mask.sum())


def validate_sessions(sessions: Sequence[np.ndarray], vocab_size: int) -> None:
    """Reject reserved or out-of-vocabulary ids: training data must hold known events only."""
    if not sessions:
        raise TrainingError("no training sessions")
    for index, session in enumerate(sessions):
        if session.size and (int(session.min()) < FIRST_EVENT_ID or int(session.max()) >= vocab_size):
            raise TrainingError(
                f"session {index} holds an id outside [{FIRST_EVENT_ID}, {vocab_size}); "
                "training sessions must contain known events only (no START/END/UNKNOWN)"
            )


def training_sequence(session: np.ndarray) -> np.ndarray:
    """``[START, e1..en, END]`` as int64."""
    return np.concatenate(([START_ID], session.astype(np.int64, copy=False), [END_ID])).astype(np.int64)


def split_holdout(
    sessions: Sequence[np.ndarray], fraction: float, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Seeded split into (training, held-out) sessions; the held-out part is never trained on.

    A held-out session holding an event that no training session holds goes to training instead:
    the network would never learn that event, would score it as it scores events never seen, and
    that score, the held-out maximum, would set the threshold, for a session the training data
    calls normal (one rare session landing in the holdout or not made the threshold swing 2.5x
    between seeds).  Each session stays in its place, so the split is as deterministic as before.
    """
    if not 0.0 <= fraction < 1.0:
        raise TrainingError(f"holdout_fraction must be in [0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(sessions))
    held = holdout_size(len(sessions), fraction)
    held_set = set(order[:held].tolist())
    trained_events: set[int] = set()
    for index, session in enumerate(sessions):
        if index not in held_set:
            trained_events.update(session.tolist())
    for index in sorted(held_set):
        events = set(sessions[index].tolist())
        if not events <= trained_events:
            held_set.discard(index)
            trained_events |= events
    training = [s for i, s in enumerate(sessions) if i not in held_set]
    holdout = [s for i, s in enumerate(sessions) if i in held_set]
    if not training:
        raise TrainingError("holdout_fraction leaves no training sessions")
    return training, holdout


def holdout_size(session_count: int, fraction: float) -> int:
    """How many of ``session_count`` sessions ``split_holdout`` holds out."""
    return int(round(session_count * fraction))


def sessions_needed_for_holdout(fraction: float) -> int:
    """The fewest sessions of which ``fraction`` (in (0, 1)) holds out at least one."""
    if not 0.0 < fraction < 1.0:
        raise TrainingError(f"holdout_fraction must be in (0, 1) to hold any session out, got {fraction}")
    count = max(1, math.floor(0.5 / fraction))  # never above the answer: round() needs count*fraction >= 0.5
    while holdout_size(count, fraction) < 1:
        count += 1
    return count


def swap_adjacent(session: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``session`` where each adjacent pair is swapped with ``probability`` (left to right).

    Events of one entity logged by concurrent workers (HDFS's three datanodes) reach the log in
    an order that varies from run to run; swapping neighbours teaches the network that such
    reorderings are normal instead of leaving them to sit at the threshold.
    """
    if probability <= 0.0 or session.size < 2:
        return session
    out = session.copy()
    swaps = rng.random(out.size - 1) < probability
    for i in np.flatnonzero(swaps):
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def make_batches(
    sessions: Sequence[np.ndarray],
    batch_size: int,
    rng: np.random.Generator,
    swap_probability: float = 0.0,
) -> list[SequenceBatch]:
    """Batches of sessions with similar length, in a random order drawn from ``rng``.

    Ties in length are broken randomly too, so batches differ from epoch to epoch; with
    ``swap_probability`` > 0 each session is also reordered locally (``swap_adjacent``).
    """
    shuffled = rng.permutation(len(sessions))
    order = sorted(shuffled.tolist(), key=lambda i: len(sessions[i]))
    batches = [
        _pad(
            [
                training_sequence(swap_adjacent(sessions[i], swap_probability, rng))
                for i in order[start : start + batch_size]
            ]
        )
        for start in range(0, len(order), batch_size)
    ]
    return [batches[i] for i in rng.permutation(len(batches))]


def bptt_chunks(batch: SequenceBatch, bptt_length: int) -> Iterator[SequenceBatch]:
    """Consecutive time slices of at most ``bptt_length`` steps; a slice may hold no target (START alone)."""
    if bptt_length < 1:
        raise TrainingError(f"bptt_length must be at least 1, got {bptt_length}")
    for start in range(0, batch.tokens.shape[0], bptt_length):
        yield SequenceBatch(
            batch.tokens[start : start + bptt_length], batch.loss_mask[start : start + bptt_length]
        )


def _pad(sequences: list[np.ndarray]) -> SequenceBatch:
    width = max(len(s) for s in sequences)
    tokens = np.full((width, len(sequences)), END_ID, np.int64)
    mask = np.zeros((width, len(sequences)), bool)
    for column, sequence in enumerate(sequences):
        tokens[: len(sequence), column] = sequence
        mask[1 : len(sequence), column] = True
    return SequenceBatch(torch.from_numpy(tokens), torch.from_numpy(mask))
