"""Turn sessions of event ids into padded, length-sorted training batches and truncated-BPTT chunks.

A session ``e1..en`` is trained as ``[START, e1..en, END]``: the network learns to predict
every event and the end of the session (so sessions that stop early become surprising), never
START itself.  Sessions are batched by similar length; a batch is cut into chunks of
``bptt_length`` steps that carry the (detached) LSTM state from one to the next.

A session longer than ``segment_length`` events (a chatty host's whole day) is cut into
segments trained side by side in one batch, each but the first fed the ``warmup`` events before
it first, uncounted, to bring the state near where the whole session would have it.  Whole, one
session of 200,000 events made its batch 200,000 steps one after another every epoch, its shorter
neighbours padded all the way: 33 s an epoch beside HDFS's 4,855 sessions, 2.6 s cut
(``benchmarks/long_sessions.py``).  Gradients never reach back
further than ``bptt_length`` steps anyway, so what a segment loses is only state older than its
warm-up.
"""

from __future__ import annotations

import dataclasses
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


@dataclass(frozen=True)
class TrainingPiece:
    """A session, or a segment of a long one, as the network is trained on it.

    ``events`` are fed in order; the first ``warmup`` of them only set the state (their
    predictions do not count).  ``opens``: the piece starts its session, so START comes first;
    ``closes``: it ends its session, so END comes last and is predicted.
    """

    events: np.ndarray
    warmup: int = 0
    opens: bool = True
    closes: bool = True


DEFAULT_SEGMENT_LENGTH = 2048
"""Sessions of more events are cut: HDFS's longest is 42 events, a job's a few hundred."""


def training_pieces(
    sessions: Sequence[np.ndarray], segment_length: int = DEFAULT_SEGMENT_LENGTH, warmup: int = 0
) -> list[TrainingPiece]:
    """Each session whole, or, when longer than ``segment_length``, cut into consecutive segments.

    Segment k holds events ``[k * segment_length, (k + 1) * segment_length)``, preceded by up to
    ``warmup`` earlier events; every event is counted exactly once over the segments.
    """
    if segment_length < 1:
        raise TrainingError(f"segment_length must be at least 1, got {segment_length}")
    if warmup < 0:
        raise TrainingError(f"segment_warmup must be non-negative, got {warmup}")
    pieces: list[TrainingPiece] = []
    for session in sessions:
        if len(session) <= segment_length:
            pieces.append(TrainingPiece(session))
            continue
        for start in range(0, len(session), segment_length):
            fed_from = max(0, start - warmup)
            pieces.append(
                TrainingPiece(
                    session[fed_from : start + segment_length],
                    warmup=start - fed_from,
                    opens=start == 0,
                    closes=start + segment_length >= len(session),
                )
            )
    return pieces


def training_sequence(piece: TrainingPiece) -> tuple[np.ndarray, int]:
    """The piece's tokens as int64 (``[START, e1..en, END]`` when whole) and where its targets begin."""
    head = [START_ID] if piece.opens else []
    tail = [END_ID] if piece.closes else []
    tokens = np.concatenate((head, piece.events.astype(np.int64, copy=False), tail)).astype(np.int64)
    return tokens, len(head) + piece.warmup


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
    pieces: Sequence[TrainingPiece],
    batch_size: int,
    rng: np.random.Generator,
    swap_probability: float = 0.0,
) -> list[SequenceBatch]:
    """Batches of pieces with similar length, in a random order drawn from ``rng``.

    Ties in length are broken randomly too, so batches differ from epoch to epoch; with
    ``swap_probability`` > 0 each piece is also reordered locally (``swap_adjacent``).
    """
    shuffled = rng.permutation(len(pieces))
    order = sorted(shuffled.tolist(), key=lambda i: len(pieces[i].events))
    batches = [
        _pad(
            [
                training_sequence(
                    dataclasses.replace(
                        pieces[i], events=swap_adjacent(pieces[i].events, swap_probability, rng)
                    )
                )
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


def _pad(sequences: list[tuple[np.ndarray, int]]) -> SequenceBatch:
    """Tokens side by side, padded with END; the mask covers each sequence from its first target on."""
    width = max(len(tokens) for tokens, _ in sequences)
    tokens_out = np.full((width, len(sequences)), END_ID, np.int64)
    mask = np.zeros((width, len(sequences)), bool)
    for column, (tokens, first_target) in enumerate(sequences):
        tokens_out[: len(tokens), column] = tokens
        mask[first_target : len(tokens), column] = True
    return SequenceBatch(torch.from_numpy(tokens_out), torch.from_numpy(mask))
