"""ONNX export: onnxruntime reproduces the PyTorch network on real HDFS sessions, step by step and whole."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from logwarden.errors import TrainingError
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import END_ID, FIRST_EVENT_ID, START_ID, ModelMetadata
from logwarden.model.runtime import OnnxStepModel
from logwarden.train.export import export_model
from logwarden.train.fit import FitResult, TrainingOptions, fit
from logwarden.train.network import NextEventLSTM

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fitted(hdfs_sessions: list[np.ndarray], small_options: TrainingOptions) -> FitResult:
    """The small network trained on real HDFS sessions."""
    vocab_size = int(max(s.max() for s in hdfs_sessions)) + 1
    return fit(hdfs_sessions, vocab_size, small_options)


def export_sequences_model(
    network: NextEventLSTM, out_dir: Path, keys: list[str], threshold: float = 1.0
) -> ModelMetadata:
    """Export ``network`` as a sequences model whose keys are their own templates, with a fixed threshold."""
    return export_model(
        network,
        out_dir,
        input_kind="sequences",
        vocabulary=keys,
        templates=keys,
        threshold=threshold,
        threshold_method="fixed",
        training={},
    )


@pytest.fixture(scope="module")
def onnx_model(fitted: FitResult, tmp_path_factory: pytest.TempPathFactory) -> OnnxStepModel:
    """The fitted network exported and loaded back through the daemon's loader."""
    network = fitted.network
    out_dir = tmp_path_factory.mktemp("parity")
    export_sequences_model(
        network, out_dir, [str(i) for i in range(network.vocab_size - FIRST_EVENT_ID)], 10.0
    )
    return OnnxStepModel.load(load_bundle(out_dir))


def torch_run(
    network: NextEventLSTM, ids: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The PyTorch network's (log_probs, h, c) for ``ids`` from (h, c), as numpy: what ONNX must match."""
    with torch.inference_mode():
        out = network(torch.from_numpy(ids), torch.from_numpy(h), torch.from_numpy(c))
    return tuple(t.numpy() for t in out)


def session_batch(sessions: list[np.ndarray], count: int) -> np.ndarray:
    """[T, B] ids: START, the session, END, padded with END; the longest sessions first."""
    chosen = sorted(sessions, key=len, reverse=True)[:count]
    width = max(len(s) for s in chosen) + 2
    ids = np.full((width, len(chosen)), END_ID, np.int64)
    for column, session in enumerate(chosen):
        ids[0, column] = START_ID
        ids[1 : len(session) + 1, column] = session
    return ids


def test_export_whole_sessions_onnx_matches_torch(
    fitted: FitResult, onnx_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """One call over whole real sessions gives the same log_probs and (h, c) in onnxruntime and torch."""
    ids = session_batch(hdfs_sessions, 16)
    h, c = onnx_model.zero_state(ids.shape[1])
    expected = torch_run(fitted.network, ids, h, c)
    actual = onnx_model.run(ids, h, c)
    np.testing.assert_allclose(actual.log_probs, expected[0], atol=TOLERANCE)
    np.testing.assert_allclose(actual.h, expected[1], atol=TOLERANCE)
    np.testing.assert_allclose(actual.c, expected[2], atol=TOLERANCE)


def test_export_single_steps_onnx_matches_torch_sequence(
    fitted: FitResult, onnx_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """Real sessions fed one event at a time through onnxruntime, carrying state, match torch's one call."""
    ids = session_batch(hdfs_sessions, 4)
    h, c = onnx_model.zero_state(ids.shape[1])
    expected_log_probs, expected_h, expected_c = torch_run(fitted.network, ids, h, c)
    for t in range(ids.shape[0]):
        step = onnx_model.run(ids[t : t + 1], h, c)
        np.testing.assert_allclose(step.log_probs[0], expected_log_probs[t], atol=TOLERANCE)
        h, c = step.h, step.c
    np.testing.assert_allclose(h, expected_h, atol=TOLERANCE)
    np.testing.assert_allclose(c, expected_c, atol=TOLERANCE)


def test_export_initial_state_is_state_after_start(fitted: FitResult, onnx_model: OnnxStepModel) -> None:
    """The runtime's fresh-entity state equals torch's state after feeding START to zero state."""
    h, c = onnx_model.zero_state(1)
    _, expected_h, expected_c = torch_run(fitted.network, np.full((1, 1), START_ID, np.int64), h, c)
    np.testing.assert_allclose(onnx_model.initial_h, expected_h[:, 0], atol=TOLERANCE)
    np.testing.assert_allclose(onnx_model.initial_c, expected_c[:, 0], atol=TOLERANCE)


def test_export_same_network_twice_identical_bytes(fitted: FitResult, tmp_path: Path) -> None:
    """Exporting one network twice writes byte-identical graphs, so the sha identifies the weights."""
    first, second = (export_sequences_model(fitted.network, tmp_path / name, ["a"]) for name in ("a", "b"))
    assert first.onnx_sha256 == second.onnx_sha256
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "b" / "model.onnx").read_bytes()


@pytest.mark.parametrize("blocker", ["out_dir_is_a_file", "graph_path_is_a_directory"])
def test_export_unwritable_destination_raises_training_error(tmp_path: Path, blocker: str) -> None:
    """A write that fails (here a file or directory in the way) is a TrainingError naming the path."""
    network = NextEventLSTM(vocab_size=6, embedding_dim=2, hidden_size=3, num_layers=1)
    out_dir = tmp_path / "model"
    if blocker == "out_dir_is_a_file":
        out_dir.write_text("", encoding="utf-8")
    else:
        (out_dir / "model.onnx").mkdir(parents=True)
    with pytest.raises(TrainingError, match=rf"cannot write the model to {re.escape(str(out_dir))}"):
        export_sequences_model(network, out_dir, ["a", "b", "c"])


def test_export_a_full_scratch_directory_raises_training_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exporter writes a scratch file under $TMPDIR: a full one is exit 7 with the reason, not a
    traceback (exit 1)."""
    from logwarden.train import export as export_module

    def full(*args: object, **kwargs: object) -> bytes:
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/logwarden-export-x/model.onnx")

    monkeypatch.setattr(export_module, "onnx_bytes", full)
    network = NextEventLSTM(vocab_size=6, embedding_dim=2, hidden_size=3, num_layers=1)
    with pytest.raises(
        TrainingError, match=r"cannot export the ONNX graph \(/tmp/.*\): No space left on device"
    ):
        export_sequences_model(network, tmp_path / "model", ["a", "b", "c"])
    assert not (tmp_path / "model").exists()
