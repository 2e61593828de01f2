"""Training sequences, batches and truncated-BPTT chunks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from logwarden.errors import TrainingError
from logwarden.model.contract import END_ID, START_ID, UNKNOWN_ID
from logwarden.train.dataset import (
    TrainingPiece,
    bptt_chunks,
    make_batches,
    split_holdout,
    swap_adjacent,
    training_pieces,
    training_sequence,
    validate_sessions,
)


def sessions_of(*lengths: int) -> list[TrainingPiece]:
    """Whole sessions of these lengths, ids counting up from FIRST_EVENT_ID (3): batch shapes are known."""
    return [TrainingPiece(np.arange(3, 3 + n, dtype=np.int64)) for n in lengths]


def test_training_sequence_session_wrapped_in_start_and_end() -> None:
    """A session e1..en is trained as START, e1..en, END, its targets from e1 on."""
    tokens, first_target = training_sequence(TrainingPiece(np.array([5, 4], np.int64)))
    assert tokens.tolist() == [START_ID, 5, 4, END_ID]
    assert first_target == 1


def test_training_pieces_short_sessions_stay_whole() -> None:
    """Sessions up to segment_length events are trained whole, as before segments existed."""
    sessions = [np.arange(3, 3 + n, dtype=np.int64) for n in (1, 5, 8)]
    pieces = training_pieces(sessions, segment_length=8, warmup=3)
    assert [p.events.tolist() for p in pieces] == [s.tolist() for s in sessions]
    assert all(p.opens and p.closes and p.warmup == 0 for p in pieces)


def test_training_pieces_long_session_every_event_a_target_once_after_its_warmup() -> None:
    """A long session's segments: START before the first, END after the last, each event counted once."""
    session = np.arange(3, 3 + 23, dtype=np.int64)
    pieces = training_pieces([session], segment_length=8, warmup=3)
    assert [(p.warmup, p.opens, p.closes, len(p.events)) for p in pieces] == [
        (0, True, False, 8),
        (3, False, False, 11),
        (3, False, True, 10),
    ]
    targets: list[int] = []
    for piece in pieces:
        tokens, first_target = training_sequence(piece)
        targets.extend(tokens[first_target:].tolist())
        fed = tokens[1:] if piece.opens else tokens
        assert fed[: len(piece.events)].tolist() == piece.events.tolist()
    assert targets == session.tolist() + [END_ID]
    assert START_ID not in targets


def test_training_pieces_warmup_is_the_events_just_before_the_segment() -> None:
    """The warm-up replays the events before a segment in its session: its state nears the whole run's."""
    session = np.arange(3, 3 + 20, dtype=np.int64)
    second = training_pieces([session], segment_length=10, warmup=4)[1]
    assert second.events[: second.warmup].tolist() == session[6:10].tolist()
    assert second.events[second.warmup :].tolist() == session[10:20].tolist()


def test_training_pieces_long_session_batched_side_by_side() -> None:
    """Segments of one long session share batches: its steps per epoch fall from its length to a segment's."""
    session = np.arange(3, 3 + 4000, dtype=np.int64) % 20 + 3
    pieces = training_pieces(
        [session] + [np.arange(3, 10, dtype=np.int64)] * 40, segment_length=256, warmup=32
    )
    batches = make_batches(pieces, batch_size=32, rng=np.random.default_rng(0))
    assert max(b.tokens.shape[0] for b in batches) == 32 + 256  # a middle segment: warm-up and segment
    assert sum(b.target_count for b in batches) == 4000 + 1 + 40 * 8


@pytest.mark.parametrize(("segment_length", "warmup"), [(0, 0), (5, -1)])
def test_training_pieces_invalid_sizes_refused(segment_length: int, warmup: int) -> None:
    """A segment length below 1 or a negative warm-up is a configuration error, named."""
    with pytest.raises(TrainingError, match="segment_"):
        training_pieces([np.arange(3, 9, dtype=np.int64)], segment_length=segment_length, warmup=warmup)


def test_make_batches_mask_covers_events_and_end_not_start_or_padding() -> None:
    """Every event and END is a target exactly once; START and padding never are."""
    sessions = sessions_of(1, 4, 2, 7, 3)
    batches = make_batches(sessions, batch_size=2, rng=np.random.default_rng(0))
    assert sum(b.target_count for b in batches) == sum(len(s.events) + 1 for s in sessions)
    for batch in batches:
        assert not batch.loss_mask[0].any()
        assert (batch.tokens[batch.loss_mask] != START_ID).all()
        assert (batch.tokens[batch.loss_mask] == END_ID).sum() == batch.tokens.shape[1]


def test_make_batches_similar_lengths_grouped() -> None:
    """Sessions are batched by sorted length, so short and long ones do not share a batch."""
    sessions = sessions_of(1, 30, 2, 31)
    widths = sorted(b.tokens.shape[0] for b in make_batches(sessions, 2, np.random.default_rng(0)))
    assert widths == [4, 33]


def test_bptt_chunks_cover_batch_in_order() -> None:
    """Chunks of at most bptt_length steps concatenate back to the whole batch."""
    batch = make_batches(sessions_of(9, 5), 2, np.random.default_rng(0))[0]
    chunks = list(bptt_chunks(batch, 4))
    assert all(c.tokens.shape[0] <= 4 for c in chunks)
    assert torch.equal(torch.cat([c.tokens for c in chunks]), batch.tokens)
    assert sum(c.target_count for c in chunks) == batch.target_count


def test_validate_sessions_unknown_id_raises_training_error() -> None:
    """UNKNOWN (or any reserved id) in training data is refused."""
    with pytest.raises(TrainingError, match="known events only"):
        validate_sessions([np.array([3, UNKNOWN_ID], np.int64)], vocab_size=5)


def test_split_holdout_same_seed_same_disjoint_split() -> None:
    """The split is reproducible for a seed and keeps every session exactly once."""
    sessions = [np.full(n, 3, np.int64) for n in range(1, 21)]
    training, holdout = split_holdout(sessions, 0.25, seed=3)
    again_training, again_holdout = split_holdout(sessions, 0.25, seed=3)
    assert len(holdout) == 5 and len(training) == 15
    assert [len(s) for s in holdout] == [len(s) for s in again_holdout]
    assert sorted(len(s) for s in training + holdout) == list(range(1, 21))
    assert [len(s) for s in training] == [len(s) for s in again_training]


def test_split_holdout_trains_on_every_session_holding_an_event_no_other_holds() -> None:
    """Held out, such a session would be scored on an event the network never learned, and its score,
    the held-out maximum, would set the threshold; in training it is learned like any other."""
    common = [np.array([3, 4, 5], np.int64) for _ in range(39)]
    rare = np.array([3, 9, 5], np.int64)
    held_out_somewhere = 0
    for seed in range(20):
        sessions = [*common[:seed], rare, *common[seed:]]
        training, holdout = split_holdout(sessions, 0.25, seed=seed)
        assert any(s is rare for s in training) and not any(s is rare for s in holdout)
        assert len(training) + len(holdout) == 40 and len(holdout) in (9, 10)
        held_out_somewhere += len(holdout) == 9
    assert held_out_somewhere, "some seeds draw the rare session into the holdout, and it moves"


def test_split_holdout_keeps_the_order_of_the_sessions_it_moves() -> None:
    """A moved session keeps its place among the training sessions: the split stays a pure function."""
    sessions = [np.array([3, 4], np.int64) for _ in range(9)] + [np.array([3, 4, 7], np.int64)]
    for seed in range(10):
        training, _ = split_holdout(sessions, 0.3, seed=seed)
        assert training[-1] is sessions[-1]


def test_swap_adjacent_zero_probability_returns_session_unchanged() -> None:
    """Without augmentation the session is used as it is."""
    session = np.arange(3, 13, dtype=np.int64)
    assert swap_adjacent(session, 0.0, np.random.default_rng(0)).tolist() == session.tolist()


def test_swap_adjacent_positive_probability_reorders_same_events() -> None:
    """Augmentation reorders events but neither adds nor drops any, and leaves the input intact."""
    session = np.arange(3, 203, dtype=np.int64)
    swapped = swap_adjacent(session, 0.3, np.random.default_rng(0))
    assert swapped.tolist() != session.tolist()
    assert sorted(swapped.tolist()) == session.tolist()
    assert session.tolist() == list(range(3, 203))


def test_make_batches_with_swaps_same_targets() -> None:
    """Augmented batches still target every event and END exactly once."""
    sessions = sessions_of(1, 4, 2, 7, 3)
    batches = make_batches(sessions, batch_size=2, rng=np.random.default_rng(0), swap_probability=0.5)
    assert sum(b.target_count for b in batches) == sum(len(s.events) + 1 for s in sessions)
    assert sorted(int(t) for b in batches for t in b.tokens[b.loss_mask]) == sorted(
        [int(e) for s in sessions for e in s.events] + [END_ID] * len(sessions)
    )
