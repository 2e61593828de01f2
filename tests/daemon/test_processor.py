"""BatchProcessor: a micro-batch across entities scores and advances exactly like one event at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from logwarden.daemon.processor import MODEL_CALL_COLUMNS, BatchProcessor, column_chunks, wave_indices
from logwarden.daemon.state.table import EntityStateTable
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import FIRST_EVENT_ID, UNKNOWN_ID
from logwarden.model.count_gate import count_profile, event_weights
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.session import score_sessions


def sequential_waves(slots: list[int]) -> list[list[int]]:
    """Reference: wave k lists, in input order, the positions holding the k-th event of their slot."""
    seen: dict[int, int] = {}
    waves: dict[int, list[int]] = {}
    for position, slot in enumerate(slots):
        occurrence = seen.get(slot, 0)
        seen[slot] = occurrence + 1
        waves.setdefault(occurrence, []).append(position)
    return [waves[k] for k in sorted(waves)]


@pytest.mark.parametrize("seed", range(5))
def test_waves_hold_each_slot_once_in_input_order(seed: int) -> None:
    """For 60 random slots of 7, wave k holds each slot's k-th event in input order, as the reference says."""
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, 7, size=60)
    assert [wave.tolist() for wave in wave_indices(slots)] == sequential_waves(slots.tolist())


def test_waves_of_distinct_slots_are_one_wave_and_empty_batch_one_empty_wave() -> None:
    """Three distinct slots make a single wave [0, 1, 2]; an empty batch gives one empty wave, not none."""
    assert [wave.tolist() for wave in wave_indices(np.array([4, 1, 9]))] == [[0, 1, 2]]
    assert [wave.tolist() for wave in wave_indices(np.array([], np.int64))] == [[]]


def test_column_chunks_cover_positions_in_order_with_at_most_the_given_columns() -> None:
    """10 positions in chunks of 4 are 4, 4, 2 in order; 10 or fewer stay whole; none is one empty chunk."""
    positions = np.arange(10, 0, -1)
    pieces = column_chunks(positions, 4)
    assert [piece.tolist() for piece in pieces] == [[10, 9, 8, 7], [6, 5, 4, 3], [2, 1]]
    assert [piece.tolist() for piece in column_chunks(positions, 10)] == [positions.tolist()]
    assert [piece.tolist() for piece in column_chunks(np.arange(0), 4)] == [[]]


def make_processor(
    model: OnnxStepModel, columns_per_call: int = MODEL_CALL_COLUMNS
) -> tuple[BatchProcessor, EntityStateTable]:
    """A BatchProcessor over a 64-entity table starting from the model's initial state, and that table."""
    h0, c0 = model.initial_state(1)
    table = EntityStateTable(model.num_layers, model.hidden_size, 64, h0[:, 0, :], c0[:, 0, :])
    return BatchProcessor(model, table, columns_per_call=columns_per_call), table


@pytest.mark.parametrize("columns_per_call", [MODEL_CALL_COLUMNS, 4])
def test_batch_with_repeated_entities_equals_one_event_at_a_time(
    synthetic_model: Path, columns_per_call: int
) -> None:
    """Scores and final states of an interleaved batch match folding each event alone, in order.

    With 4 columns a call, the waves of this batch (up to 30 entities) are scored in several calls.
    """
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    rng = np.random.default_rng(7)
    entities = [f"job_{n}" for n in rng.integers(0, 30, size=80)]
    event_ids = rng.integers(FIRST_EVENT_ID, FIRST_EVENT_ID + 5, size=80).astype(np.int64)
    partitions = np.zeros(80, np.int32)

    batched, batched_table = make_processor(model, columns_per_call)
    batch_scores = batched.process(entities, event_ids, partitions, now=1.0).scores

    single, single_table = make_processor(model)
    single_scores = [
        single.process([entity], event_ids[i : i + 1], partitions[i : i + 1], now=1.0).scores[0]
        for i, entity in enumerate(entities)
    ]

    np.testing.assert_allclose(batch_scores, single_scores, atol=1e-5)
    for entity in set(entities):
        batched_state = batched_table.snapshot(entity)
        single_state = single_table.snapshot(entity)
        assert batched_state.events_applied == single_state.events_applied == entities.count(entity)
        np.testing.assert_allclose(batched_state.h, single_state.h, atol=1e-5)
        np.testing.assert_allclose(batched_state.c, single_state.c, atol=1e-5)


def test_session_end_scores_in_several_calls_equal_one_entity_at_a_time(synthetic_model: Path) -> None:
    """11 session ends scored 4 per model call give the same scores and log-probs as each scored alone."""
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    rng = np.random.default_rng(3)
    entities = [f"job_{n}" for n in range(11)]
    event_ids = rng.integers(FIRST_EVENT_ID, FIRST_EVENT_ID + 5, size=11).astype(np.int64)
    processor, table = make_processor(model, columns_per_call=4)
    processor.process(entities, event_ids, np.zeros(11, np.int32), now=1.0)
    slots = np.asarray([table.get(entity) for entity in reversed(entities)], np.int64)

    together = processor.score_session_end(slots)
    alone = [processor.score_session_end(slots[i : i + 1]) for i in range(len(slots))]

    np.testing.assert_allclose(together.scores, [one.scores[0] for one in alone], atol=1e-6)
    np.testing.assert_allclose(together.log_probs, np.vstack([one.log_probs for one in alone]), atol=1e-6)
    assert together.log_probs.shape == (11, model.metadata.vocab_size)


def test_processor_rejects_fewer_than_one_column_per_call(synthetic_model: Path) -> None:
    """``columns_per_call=0`` is refused with a ValueError naming the setting."""
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    with pytest.raises(ValueError, match="columns_per_call"):
        make_processor(model, columns_per_call=0)


def test_processor_scores_each_event_against_the_state_before_it(synthetic_model: Path) -> None:
    """The daemon's score of each event equals the offline run of the whole session: the surprise of
    event i under the state after events 0..i-1 (the batched-vs-single test cannot see this rule,
    since both sides would break it alike)."""
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    processor, _ = make_processor(model)
    session = np.array([FIRST_EVENT_ID + k for k in (0, 1, 2, 1, 0)], np.int64)
    daemon = [
        processor.process(["a"], session[i : i + 1], np.zeros(1, np.int32), now=1.0).scores[0]
        for i in range(len(session))
    ]
    h, c = model.initial_state(1)
    log_probs = model.run(session[:, None], h, c).log_probs[:, 0, :]
    offline = -np.take_along_axis(log_probs, session[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(daemon, offline, atol=1e-5)


def test_processor_gap_of_exactly_the_ttl_continues_the_session(synthetic_model: Path) -> None:
    """A session ends when the gap is more than the TTL, as the idle sweep decides: not at equality."""
    processor, table = make_processor(OnnxStepModel.load(load_bundle(synthetic_model)))
    ids, parts = np.array([FIRST_EVENT_ID], np.int64), np.zeros(1, np.int32)
    processor.process(["a"], ids, parts, now=100.0, ttl_seconds=30.0)
    assert processor.process(["a"], ids, parts, now=130.0, ttl_seconds=30.0).ended.entities == []
    assert table.snapshot("a").events_applied == 2
    assert processor.process(["a"], ids, parts, now=160.5, ttl_seconds=30.0).ended.entities == ["a"]
    assert table.snapshot("a").events_applied == 1


def test_ended_session_carries_the_offline_score_and_count_profile(synthetic_model: Path) -> None:
    """Two interleaved sessions, ended by a late event: each ended session's largest surprise (END
    included), count hash and number of unknown events equal what offline scoring of the whole
    session computes, and the new session starts its counts afresh."""
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    processor, table = make_processor(model, columns_per_call=4)
    first = np.array(
        [FIRST_EVENT_ID, FIRST_EVENT_ID + 1, UNKNOWN_ID, FIRST_EVENT_ID + 1, UNKNOWN_ID], np.int64
    )
    second = np.array([FIRST_EVENT_ID + k for k in (0, 2, 2)], np.int64)
    entities = ["a"] * len(first) + ["b"] * len(second)
    ids = np.concatenate([first, second])
    order = np.array([0, 5, 1, 6, 2, 3, 7, 4])  # interleaved, each session's own order kept
    processor.process(
        [entities[i] for i in order], ids[order], np.zeros(8, np.int32), now=1.0, ttl_seconds=10
    )

    late = processor.process(["a", "b"], ids[:2], np.zeros(2, np.int32), now=100.0, ttl_seconds=10)

    weights = event_weights(model.metadata.vocab_size)
    offline = score_sessions(model, [first, second], threshold=1e9)
    assert late.ended.entities == ["a", "b"]
    assert late.ended.count_profile.tolist() == [
        count_profile(first, weights),
        count_profile(second, weights),
    ]
    np.testing.assert_allclose(late.ended.session_scores, [v.score for v in offline], atol=1e-5)
    assert late.ended.unknown_events.tolist() == [v.unknown_events for v in offline] == [2, 0]
    assert int(table.count_profile[table.get("a")]) == int(weights[first[0]])
    assert int(table.unknown_events[table.get("a")]) == 0


def test_idle_sessions_end_with_their_count_profile(synthetic_model: Path) -> None:
    """``end_sessions`` (the idle sweep's path) reports the same counts and largest surprise as the table."""
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    processor, table = make_processor(model)
    session = np.array([FIRST_EVENT_ID + k for k in (0, 1, 1)], np.int64)
    for event in session:
        processor.process(["a"], np.array([event]), np.zeros(1, np.int32), now=1.0)
    ended = processor.end_sessions(["a"], np.array([table.get("a")], np.int64))
    assert ended.count_profile.tolist() == [count_profile(session, event_weights(model.metadata.vocab_size))]
    [offline] = score_sessions(model, [session], threshold=1e9)
    np.testing.assert_allclose(ended.session_scores, [offline.score], atol=1e-5)
