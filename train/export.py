"""Write a model directory: ``model.onnx`` (legacy TorchScript exporter) and ``model.json``.

The legacy exporter is used because it needs nothing beyond torch and gives one plain
graph (Gather → LSTM → Gemm → LogSoftmax) with dynamic T and B.  Both files are written into a
new directory beside the model directory, which is then renamed into its place: a reader never
sees a graph without its metadata, and a failed or interrupted export leaves a model trained
before untouched rather than half replaced.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Mapping, Sequence
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
from logwarden.model.cooccurrence_rule import CooccurrenceRule
from logwarden.model.count_gate import CountGate
from logwarden.model.length_rule import LengthRule
from logwarden.model.transition_rule import TransitionRule

from .network import NextEventLSTM
from .rules_graph import RulesLSTM

ONNX_OPSET = 17
MODEL_FILES = (ONNX_FILE, METADATA_FILE)


def onnx_bytes(network: NextEventLSTM | RulesLSTM) -> bytes:
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
    network: NextEventLSTM | RulesLSTM,
    example_ids: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    path: Path,
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
    count_gate: CountGate | None = None,
    transition_rule: TransitionRule | None = None,
    cooccurrence_rule: CooccurrenceRule | None = None,
    length_rule: LengthRule | None = None,
) -> ModelMetadata:
    """Write ``model.onnx`` and ``model.json`` as ``out_dir`` (``publish_model_dir``); return the metadata.

    With any of ``transition_rule``, ``cooccurrence_rule`` and ``length_rule`` the graph is
    ``RulesLSTM`` around ``network``.  A write that fails (no space, no permission, a file in the way) raises
    TrainingError naming the path.
    """
    out_dir = Path(out_dir)
    rules = transition_rule is not None or cooccurrence_rule is not None or length_rule is not None
    try:
        # The exporter writes a scratch file under $TMPDIR: a full or size-limited /tmp is a write
        # failure like any other (exit 7 naming the path), not a traceback.
        graph = onnx_bytes(
            RulesLSTM(network, transition_rule, cooccurrence_rule, length_rule) if rules else network
        )
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise TrainingError(f"cannot export the ONNX graph{where}: {exc.strerror or exc}") from exc
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
        count_gate=count_gate,
        transition_rule=transition_rule,
        cooccurrence_rule=cooccurrence_rule,
        length_rule=length_rule,
    )
    try:
        publish_model_dir(out_dir, {ONNX_FILE: graph, METADATA_FILE: (metadata.to_json() + "\n").encode()})
    except OSError as exc:
        culprit = exc.filename2 or exc.filename
        where = f" ({culprit})" if culprit else ""
        raise TrainingError(f"cannot write the model to {out_dir}{where}: {exc.strerror or exc}") from exc
    return metadata


def out_dir_problem(out_dir: str | Path) -> str | None:
    """Why ``out_dir`` cannot become a model directory, or None; checked before training so it fails fast.

    The path must not exist yet, or be a directory that is empty or holds only a model's files
    (which the new model replaces), and the directory it is created in must be one this process
    may create entries in: the model is written beside it and renamed into place.
    """
    target = _real_path(out_dir)
    if target.exists():
        problem = _existing_out_dir_problem(target)
        if problem is not None:
            return problem
        return None if os.access(target.parent, os.W_OK | os.X_OK) else f"{target.parent} is not writable"
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    return None if os.access(ancestor, os.W_OK | os.X_OK) else f"{ancestor} is not writable"


def publish_model_dir(out_dir: str | Path, files: Mapping[str, bytes]) -> None:
    """Make ``out_dir`` a directory holding exactly ``files`` (name -> content), all of them or none.

    The files are written and synced in a new sibling directory, which is then renamed to
    ``out_dir``: in one step when ``out_dir`` is new or empty; over an earlier model, by moving
    that aside first and deleting it only once the new one is in place (a crash between the two
    renames leaves both complete, under hidden names beside ``out_dir``).  A directory holding
    anything but a model is refused rather than replaced.  A symbolic link is followed, so the
    link keeps pointing at the model; the directory keeps its permission bits.  OSError on failure.
    """
    target = _real_path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    existed = target.exists()
    if existed:
        problem = _existing_out_dir_problem(target)
        if problem is not None:
            raise OSError(errno.EEXIST, problem)
    tag = uuid.uuid4().hex[:12]
    staging = target.with_name(f".{target.name}.new-{tag}")
    staging.mkdir()
    try:
        if existed:
            shutil.copymode(target, staging)
        for name, data in files.items():
            _write_synced(staging / name, data)
        _sync_directory(staging)
        _rename_into_place(staging, target, target.with_name(f".{target.name}.old-{tag}"))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _sync_directory(target.parent)


def _rename_into_place(staging: Path, target: Path, aside: Path) -> None:
    """Rename ``staging`` to ``target``; a non-empty ``target`` moves to ``aside`` first, back on failure."""
    try:
        os.rename(staging, target)  # replaces a missing or empty directory in one step
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _existing_out_dir_problem(path: Path) -> str | None:
    """Why the existing ``path`` may not be replaced by a model directory, or None."""
    if not path.is_dir():
        return "exists and is not a directory"
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        return f"cannot list the directory: {exc.strerror or exc}"
    for name in MODEL_FILES:
        if (path / name).is_dir():
            return f"{name} in it is a directory"
    foreign = [name for name in names if name not in MODEL_FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        return (
            f"holds files that are not a model's ({shown}); give a new or empty directory, or a model "
            "directory to replace"
        )
    return None


def _real_path(out_dir: str | Path) -> Path:
    """``out_dir`` absolute, its symbolic links resolved: the directory a rename must replace."""
    return Path(os.path.realpath(out_dir))


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to disk before the rename that publishes it, which could otherwise land first."""
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_directory(path: Path) -> None:
    """Make renames in ``path`` durable; skipped where a file system cannot sync a directory."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
