"""Write a model directory: ``model.onnx`` (legacy TorchScript exporter) and ``model.json``.

The legacy exporter is used because it needs nothing beyond torch and gives one plain
graph (Gather → LSTM → Gemm → LogSoftmax) with dynamic T and B; files are written beside
their final names and renamed, so a reader never sees a graph without its metadata.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from logwarden.errors import TrainingError
from logwarden.model.bundle import sha256_hex
from logwarden.model.contract import (
    FORMAT_VERSION,
    INPUT_C,
    INPUT_EVENT_IDS,
    INPUT_H,
    METADATA_FILE,
    ONNX_FILE,
    OUTPUT_C,
    OUTPUT_H,
    OUTPUT_LOG_PROBS,
    START_ID,
    InputKind,
    ModelMetadata,
    ParserSettings,
)

from .network import NextEventLSTM

ONNX_OPSET = 17


def onnx_bytes(network: NextEventLSTM) -> bytes:
    """Serialise ``network`` to ONNX with dynamic sequence length and batch size."""
    network.eval()
    example_ids = torch.full((3, 2), START_ID, dtype=torch.int64)
    h0, c0 = network.zero_state(2)
    with tempfile.TemporaryDirectory(prefix="logwarden-export-") as scratch, warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (see module docstring); its deprecation notice is noise.
        warnings.filterwarnings(
            "ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        # Warns that LSTM state baked into a graph breaks other batch sizes; h0/c0 are graph inputs here.
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*LSTM", category=UserWarning)
        path = Path(scratch) / ONNX_FILE
        _export(network, example_ids, h0, c0, path)
        return path.read_bytes()


def _export(
    network: NextEventLSTM, example_ids: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, path: Path
) -> None:
    time_batch = {0: "T", 1: "B"}
    state_batch = {1: "B"}
    torch.onnx.export(
        network,
        (example_ids, h0, c0),
        path,
        dynamo=False,
        opset_version=ONNX_OPSET,
        input_names=[INPUT_EVENT_IDS, INPUT_H, INPUT_C],
        output_names=[OUTPUT_LOG_PROBS, OUTPUT_H, OUTPUT_C],
        dynamic_axes={
            INPUT_EVENT_IDS: time_batch,
            INPUT_H: state_batch,
            INPUT_C: state_batch,
            OUTPUT_LOG_PROBS: time_batch,
            OUTPUT_H: state_batch,
            OUTPUT_C: state_batch,
        },
    )


def export_model(
    network: NextEventLSTM,
    out_dir: str | Path,
    *,
    input_kind: InputKind,
    vocabulary: Sequence[str],
    templates: Sequence[str],
    threshold: float,
    threshold_method: str,
    training: dict[str, Any],
    parser: ParserSettings | None = None,
) -> ModelMetadata:
    """Write ``model.onnx`` and ``model.json`` into ``out_dir`` (created if needed); return the metadata.

    A write that fails (no space, no permission, a file in the way) raises TrainingError naming the path.
    """
    out_dir = Path(out_dir)
    graph = onnx_bytes(network)
    metadata = ModelMetadata(
        format_version=FORMAT_VERSION,
        input_kind=input_kind,
        vocabulary=tuple(vocabulary),
        templates=tuple(templates),
        embedding_dim=network.embedding_dim,
        hidden_size=network.hidden_size,
        num_layers=network.num_layers,
        threshold=float(threshold),
        threshold_method=threshold_method,
        onnx_sha256=sha256_hex(graph),
        parser=parser,
        training=dict(training),
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(out_dir / ONNX_FILE, graph)
        _write_atomically(out_dir / METADATA_FILE, (metadata.to_json() + "\n").encode("utf-8"))
    except OSError as exc:
        culprit = exc.filename2 or exc.filename
        where = f" ({culprit})" if culprit else ""
        raise TrainingError(f"cannot write the model to {out_dir}{where}: {exc.strerror or exc}") from exc
    return metadata


def out_dir_problem(out_dir: str | Path) -> str | None:
    """Why ``out_dir`` cannot become a model directory, or None; checked before training so it fails fast.

    The path must be a directory or not exist yet, the model files in it must not be directories,
    and the nearest existing ancestor must be a directory this process may create entries in.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            return "exists and is not a directory"
        for name in (ONNX_FILE, METADATA_FILE):
            if (out_dir / name).is_dir():
                return f"{name} in it is a directory"
        return None if os.access(out_dir, os.W_OK | os.X_OK) else "directory is not writable"
    ancestor = out_dir.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    return None if os.access(ancestor, os.W_OK | os.X_OK) else f"{ancestor} is not writable"


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
