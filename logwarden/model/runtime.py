"""The onnxruntime adapter: one stateful step over event ids.  Never imports torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from logwarden.errors import ModelLoadError
from logwarden.model.bundle import ModelBundle
from logwarden.model.contract import (
    INPUT_C,
    INPUT_EVENT_IDS,
    INPUT_H,
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
        self.hidden_size = metadata.hidden_size
        self._initial_h, self._initial_c = self._compute_initial_state()

    @classmethod
    def load(cls, bundle: ModelBundle, intra_op_threads: int = 1) -> OnnxStepModel:
        """Open an inference session on a verified bundle; ModelLoadError if onnxruntime rejects it."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(bundle.onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped exceptions for bad graphs
            raise ModelLoadError(f"{bundle.directory}: onnxruntime cannot load the graph: {exc}") from exc
        names = {i.name for i in session.get_inputs()}
        expected = {INPUT_EVENT_IDS, INPUT_H, INPUT_C}
        if names != expected:
            raise ModelLoadError(
                f"{bundle.directory}: graph inputs {sorted(names)} differ from {sorted(expected)}"
            )
        try:
            model = cls(session, bundle.metadata)
            probe = model.run(np.full((1, 1), START_ID, np.int64), *model.zero_state(1))
        except Exception as exc:  # a state shape the graph rejects surfaces as an onnxruntime error
            raise ModelLoadError(
                f"{bundle.directory}: the graph does not run with the layers and hidden size "
                f"in the metadata: {exc}"
            ) from exc
        metadata = bundle.metadata
        expected_shapes = {
            OUTPUT_LOG_PROBS: (1, 1, metadata.vocab_size),
            OUTPUT_H: (metadata.num_layers, 1, metadata.hidden_size),
            OUTPUT_C: (metadata.num_layers, 1, metadata.hidden_size),
        }
        for name, actual in ((OUTPUT_LOG_PROBS, probe.log_probs), (OUTPUT_H, probe.h), (OUTPUT_C, probe.c)):
            if actual.shape != expected_shapes[name]:
                raise ModelLoadError(
                    f"{bundle.directory}: graph output {name} has shape {actual.shape}, the metadata implies "
                    f"{expected_shapes[name]}; model.json and model.onnx describe different models"
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
