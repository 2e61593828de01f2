"""The onnxruntime adapter: one stateful step over event ids.  Never imports torch."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

# onnxruntime 1.32 keeps a device id and a queue of usage events under $HOME/.cache/Microsoft (for
# the service, beside its state) and, where $HOME is not writable, prints a coloured warning line
# among the daemon's JSON logs.  An operator who wants it can set ORT_DISABLE_TELEMETRY=0.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort  # noqa: E402 - after the telemetry setting it reads

from logwarden.errors import ModelLoadError
from logwarden.model.bundle import ModelBundle
from logwarden.model.contract import (
    INPUT_C,
    INPUT_EVENT_IDS,
    INPUT_H,
    METADATA_FILE,
    ONNX_FILE,
    OUTPUT_C,
    OUTPUT_H,
    OUTPUT_LOG_PROBS,
    START_ID,
    ModelMetadata,
)


@dataclass
class StepOutput:
    """Result of one call: log-probabilities before each event, and the state after the last."""

    log_probs: np.ndarray  # [T, B, V] float32
    h: np.ndarray  # [L, B, H] float32
    c: np.ndarray  # [L, B, H] float32


class OnnxStepModel:
    """Runs the exported graph; pure function of its inputs, holds no per-entity state."""

    def __init__(self, session: ort.InferenceSession, metadata: ModelMetadata) -> None:
        self._session = session
        self.metadata = metadata
        self.num_layers = metadata.num_layers
        self.hidden_size = metadata.state_size
        """Width of ``h`` and ``c``: the metadata's ``state_size``."""
        self._initial_h, self._initial_c = self._compute_initial_state()

    @classmethod
    def load(cls, bundle: ModelBundle, intra_op_threads: int = 1) -> OnnxStepModel:
        """Open an inference session on a verified bundle and check the graph against the metadata.

        ModelLoadError, naming the file and the field, if onnxruntime rejects the graph or its
        inputs, outputs, types or sizes differ from what ``model.json`` describes: caught here,
        not at the first event scored.
        """
        onnx_path = bundle.directory / ONNX_FILE
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(bundle.onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped exceptions for bad graphs
            raise ModelLoadError(f"{onnx_path}: onnxruntime cannot load the graph: {_one_line(exc)}") from exc
        problem = _signature_problem(session, bundle)
        if problem is not None:
            raise ModelLoadError(problem)
        metadata = bundle.metadata
        try:
            model = cls(session, metadata)
            probe = model.run(np.full((1, 1), START_ID, np.int64), *model.zero_state(1))
        except Exception as exc:  # a state shape the graph rejects surfaces as an onnxruntime error
            raise ModelLoadError(
                f"{onnx_path}: the graph does not run with num_layers {metadata.num_layers} and "
                f"{_describe('state_size', metadata)} of {METADATA_FILE}: {_one_line(exc)}"
            ) from exc
        for name, actual in ((OUTPUT_LOG_PROBS, probe.log_probs), (OUTPUT_H, probe.h), (OUTPUT_C, probe.c)):
            expected = _probe_shape(name, metadata)
            if actual.shape != expected:
                raise ModelLoadError(
                    f"{bundle.directory / METADATA_FILE}: {_fields_of(name)} imply {name} of shape "
                    f"{expected}, {onnx_path} gives {actual.shape}; the two files describe different models"
                )
        return model

    def run(self, event_ids: np.ndarray, h: np.ndarray, c: np.ndarray) -> StepOutput:
        """Feed ``event_ids`` [T, B] from state (h, c); inputs are not modified."""
        log_probs, h_out, c_out = self._session.run(
            [OUTPUT_LOG_PROBS, OUTPUT_H, OUTPUT_C],
            {INPUT_EVENT_IDS: event_ids, INPUT_H: h, INPUT_C: c},
        )
        return StepOutput(log_probs, h_out, c_out)

    def zero_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """All-zero (h, c) for ``batch`` rows."""
        shape = (self.num_layers, batch, self.hidden_size)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def _compute_initial_state(self) -> tuple[np.ndarray, np.ndarray]:
        h, c = self.zero_state(1)
        out = self.run(np.full((1, 1), START_ID, np.int64), h, c)
        return out.h[:, 0, :].copy(), out.c[:, 0, :].copy()

    @property
    def initial_h(self) -> np.ndarray:
        """[L, H] hidden state of an entity that has seen no event yet (after START)."""
        return self._initial_h

    @property
    def initial_c(self) -> np.ndarray:
        """[L, H] cell state of an entity that has seen no event yet (after START)."""
        return self._initial_c

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(h, c) [L, batch, H] for ``batch`` fresh entities."""
        h = np.repeat(self._initial_h[:, None, :], batch, axis=1)
        c = np.repeat(self._initial_c[:, None, :], batch, axis=1)
        return np.ascontiguousarray(h), np.ascontiguousarray(c)


_FLOAT = "tensor(float)"
_STATE = (_FLOAT, ("num_layers", None, "state_size"), "(layers, batch, hidden size)")
_SIGNATURE: dict[str, tuple[str, tuple[str | None, ...], str]] = {
    INPUT_EVENT_IDS: ("tensor(int64)", (None, None), "(events, batch)"),
    INPUT_H: _STATE,
    INPUT_C: _STATE,
    OUTPUT_LOG_PROBS: (_FLOAT, (None, None, "vocabulary"), "(events, batch, output classes)"),
    OUTPUT_H: _STATE,
    OUTPUT_C: _STATE,
}
"""Each graph value of the contract: its element type, per dimension the metadata field fixing it (None:
free), and what the dimensions are, as an error explains a shape."""


def _signature_problem(session: ort.InferenceSession, bundle: ModelBundle) -> str | None:
    """Why the graph's declared inputs and outputs do not fit the contract and the metadata, or None.

    Read from the graph's declarations, before any state is allocated: a metadata hidden_size of
    10**9 is a clear error here, not a 60 GiB allocation.  Symbolic dimensions are left to the probe.
    """
    onnx_path = bundle.directory / ONNX_FILE
    declared = {arg.name: arg for arg in [*session.get_inputs(), *session.get_outputs()]}
    for kind, args, expected_names in (
        ("inputs", session.get_inputs(), {INPUT_EVENT_IDS, INPUT_H, INPUT_C}),
        ("outputs", session.get_outputs(), {OUTPUT_LOG_PROBS, OUTPUT_H, OUTPUT_C}),
    ):
        names = {arg.name for arg in args}
        if names != expected_names:
            return (
                f"{onnx_path}: graph {kind} {sorted(names)} differ from {sorted(expected_names)}; "
                "not a graph exported by logwarden"
            )
    for name, (element_type, dims, axes) in _SIGNATURE.items():
        arg = declared[name]
        if arg.type != element_type:
            return f"{onnx_path}: graph value {name} is {arg.type}, the contract has {element_type}"
        shape = list(arg.shape or [])
        if shape and len(shape) != len(dims):
            return f"{onnx_path}: graph value {name} has shape {shape}, the contract has {axes}"
        for size, field in zip(shape, dims, strict=False):
            if field is None or not isinstance(size, int):
                continue
            wanted = _dimension_of(field, bundle.metadata)
            if size != wanted:
                return (
                    f"{bundle.directory / METADATA_FILE}: {_describe(field, bundle.metadata)} disagrees "
                    f"with {onnx_path}, whose {name} has shape {shape} {axes}; the two files describe "
                    "different models"
                )
    return None


def _dimension_of(field: str, metadata: ModelMetadata) -> int:
    if field == "vocabulary":
        return metadata.vocab_size
    return int(getattr(metadata, field))


def _describe(field: str, metadata: ModelMetadata) -> str:
    """A metadata field and its value as an error names them."""
    if field == "vocabulary":
        return (
            f"vocabulary ({len(metadata.vocabulary)} event keys, {metadata.vocab_size} output classes with "
            "the reserved tokens)"
        )
    if field == "state_size" and metadata.has_rules:
        return f"hidden_size {metadata.hidden_size} (a state of {metadata.state_size} with the novelty rules)"
    if field == "state_size":
        return f"hidden_size {metadata.hidden_size}"
    return f"{field} {getattr(metadata, field)}"


def _probe_shape(name: str, metadata: ModelMetadata) -> tuple[int, ...]:
    """Shape of output ``name`` for one event of one entity, as the metadata implies it."""
    if name == OUTPUT_LOG_PROBS:
        return (1, 1, metadata.vocab_size)
    return (metadata.num_layers, 1, metadata.state_size)


def _fields_of(name: str) -> str:
    return "vocabulary and templates" if name == OUTPUT_LOG_PROBS else "num_layers and hidden_size"


def _one_line(exc: BaseException) -> str:
    """An onnxruntime or numpy error as one line of at most 300 characters (the CLI prints a line each)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
