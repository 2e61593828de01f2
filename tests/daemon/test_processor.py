"""BatchProcessor: a micro-batch across entities scores and advances exactly like one event at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from logwarden.daemon.processor import BatchProcessor, wave_indices
from logwarden.daemon.state_table import EntityStateTable
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import FIRST_EVENT_ID
from logwarden.model.runtime import OnnxStepModel


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
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, 7, size=60)
    assert [wave.tolist() for wave in wave_indices(slots)] == sequential_waves(slots.tolist())


def test_waves_of_distinct_slots_are_one_wave_and_empty_batch_one_empty_wave() -> None:
    assert [wave.tolist() for wave in wave_indices(np.array([4, 1, 9]))] == [[0, 1, 2]]
    assert [wave.tolist() for wave in wave_indices(np.array([], np.int64))] == [[]]


def make_processor(model: OnnxStepModel) -> tuple[BatchProcessor, EntityStateTable]:
    h0, c0 = model.initial_state(1)
    table = EntityStateTable(model.num_layers, model.hidden_size, 64, h0[:, 0, :], c0[:, 0, :])
    return BatchProcessor(model, table), table


def test_batch_with_repeated_entities_equals_one_event_at_a_time(synthetic_model: Path) -> None:
    """Scores and final states of an interleaved batch match folding each event alone, in order."""
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    rng = np.random.default_rng(7)
    entities = [f"job_{n}" for n in rng.integers(0, 6, size=40)]
    event_ids = rng.integers(FIRST_EVENT_ID, FIRST_EVENT_ID + 5, size=40).astype(np.int64)
    partitions = np.zeros(40, np.int32)

    batched, batched_table = make_processor(model)
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
