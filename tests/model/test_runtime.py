"""OnnxStepModel: the exported graph behaves as the contract says, and a mismatched bundle is refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from logwarden.errors import ModelLoadError
from logwarden.model.bundle import ModelBundle, load_bundle
from logwarden.model.contract import (
    END_ID,
    FIRST_EVENT_ID,
    METADATA_DIGEST_KEY,
    METADATA_FILE,
    START_ID,
    metadata_digest,
)
from logwarden.model.runtime import OnnxStepModel


@pytest.fixture
def step_model(model_dir: Path) -> OnnxStepModel:
    """The exported test model opened with onnxruntime."""
    return OnnxStepModel.load(load_bundle(model_dir))


def test_onnx_step_model_initial_state_equals_start_from_zero_state(step_model: OnnxStepModel) -> None:
    """A fresh entity's state is exactly the state after feeding START to all-zero state."""
    h0, c0 = step_model.zero_state(1)
    after_start = step_model.run(np.full((1, 1), START_ID, np.int64), h0, c0)
    h, c = step_model.initial_state(3)
    assert h.shape == c.shape == (step_model.num_layers, 3, step_model.hidden_size)
    for column in range(3):
        np.testing.assert_array_equal(h[:, column, :], after_start.h[:, 0, :])
        np.testing.assert_array_equal(c[:, column, :], after_start.c[:, 0, :])
    assert not np.allclose(h, 0.0)


def test_onnx_step_model_single_steps_match_whole_sequence_run(step_model: OnnxStepModel) -> None:
    """Feeding events one at a time (T=1, the daemon) gives the same log-probs and state as one T>1 call."""
    ids = np.array([[FIRST_EVENT_ID], [FIRST_EVENT_ID + 2], [FIRST_EVENT_ID + 1], [END_ID]], np.int64)
    h, c = step_model.initial_state(1)
    whole = step_model.run(ids, h, c)
    for t in range(ids.shape[0]):
        step = step_model.run(ids[t : t + 1], h, c)
        np.testing.assert_allclose(step.log_probs[0], whole.log_probs[t], atol=1e-5)
        h, c = step.h, step.c
    np.testing.assert_allclose(h, whole.h, atol=1e-5)
    np.testing.assert_allclose(c, whole.c, atol=1e-5)


def test_onnx_step_model_log_probs_are_normalised_distributions(step_model: OnnxStepModel) -> None:
    """Every output row is a log-distribution over the metadata's vocabulary size."""
    h, c = step_model.initial_state(2)
    out = step_model.run(np.full((3, 2), FIRST_EVENT_ID, np.int64), h, c)
    assert out.log_probs.shape == (3, 2, step_model.metadata.vocab_size)
    np.testing.assert_allclose(np.exp(out.log_probs).sum(axis=-1), 1.0, atol=1e-5)


def test_onnx_step_model_run_leaves_inputs_unchanged(step_model: OnnxStepModel) -> None:
    """run is a pure function: the caller's state arrays are not modified."""
    h, c = step_model.initial_state(1)
    h_before, c_before = h.copy(), c.copy()
    step_model.run(np.full((2, 1), FIRST_EVENT_ID, np.int64), h, c)
    np.testing.assert_array_equal(h, h_before)
    np.testing.assert_array_equal(c, c_before)


def test_onnx_step_model_load_vocabulary_mismatch_raises_model_load_error(model_dir: Path) -> None:
    """A model.json whose vocabulary no longer fits the graph's output size is refused at load."""
    path = model_dir / METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["vocabulary"].append("99")
    raw["templates"].append("event 99")
    raw[METADATA_DIGEST_KEY] = metadata_digest(raw)  # a consistent file, for another graph
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="log_probs has shape"):
        OnnxStepModel.load(load_bundle(model_dir))


def test_onnx_step_model_load_hidden_size_mismatch_raises_model_load_error(model_dir: Path) -> None:
    """Metadata claiming another hidden size fails at load with ModelLoadError, not later in scoring."""
    bundle = load_bundle(model_dir)
    wrong = dataclasses.replace(bundle.metadata, hidden_size=bundle.metadata.hidden_size + 1)
    with pytest.raises(ModelLoadError, match="hidden size"):
        OnnxStepModel.load(ModelBundle(bundle.directory, wrong, bundle.onnx_bytes))


def test_onnx_step_model_load_garbage_graph_raises_model_load_error(model_dir: Path) -> None:
    """Bytes that are not an ONNX graph are a ModelLoadError naming the directory."""
    bundle = load_bundle(model_dir)
    with pytest.raises(ModelLoadError, match="onnxruntime cannot load the graph"):
        OnnxStepModel.load(ModelBundle(bundle.directory, bundle.metadata, b"not a graph"))
