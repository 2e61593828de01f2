"""The next-event LSTM in PyTorch, shaped exactly like the ONNX contract so export is a plain trace.

``log_probs[t]`` is computed from the state *before* event ``t`` is consumed, so one call
over a whole session yields every event's surprise and a T=1 call is the streaming step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from logwarden.model.contract import START_ID


class NextEventLSTM(nn.Module):
    """Embedding → multi-layer LSTM → linear head → log-softmax over the next event id."""

    def __init__(
        self, vocab_size: int, embedding_dim: int = 32, hidden_size: int = 64, num_layers: int = 2
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=num_layers)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(
        self, event_ids: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Consume ``event_ids`` [T, B] from (h0, c0) [L, B, H]; return (log_probs [T, B, V], hn, cn)."""
        outputs, (hn, cn) = self.lstm(self.embedding(event_ids), (h0, c0))
        # The prediction for event t uses the top layer's output after event t-1 (h0 for t=0).
        preceding = torch.cat([h0[-1:], outputs[:-1]], dim=0)
        return torch.log_softmax(self.head(preceding), dim=-1), hn, cn

    def zero_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """All-zero (h, c) [L, batch, H]."""
        shape = (self.num_layers, batch, self.hidden_size)
        return torch.zeros(shape), torch.zeros(shape)


class TorchStepOutput:
    """numpy view of one forward call, matching the scorer's StepOutputLike port."""

    def __init__(self, log_probs: np.ndarray, h: np.ndarray, c: np.ndarray) -> None:
        self.log_probs = log_probs
        self.h = h
        self.c = c


class TorchStepModel:
    """The scorer's StepModel port backed by the PyTorch network (calibration and parity tests).

    Fresh entities start from the state after START, as OnnxStepModel does.
    """

    def __init__(self, network: NextEventLSTM) -> None:
        self.network = network.eval()
        h, c = network.zero_state(1)
        out = self.run(np.full((1, 1), START_ID, np.int64), h.numpy(), c.numpy())
        self._initial_h = out.h[:, 0, :].copy()
        self._initial_c = out.c[:, 0, :].copy()

    def run(self, event_ids: np.ndarray, h: np.ndarray, c: np.ndarray) -> TorchStepOutput:
        """Feed ``event_ids`` [T, B] from state (h, c); numpy in, numpy out."""
        with torch.inference_mode():
            log_probs, hn, cn = self.network(
                torch.from_numpy(np.ascontiguousarray(event_ids, dtype=np.int64)),
                torch.from_numpy(np.ascontiguousarray(h, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)),
            )
        return TorchStepOutput(log_probs.numpy(), hn.numpy(), cn.numpy())

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(h, c) [L, batch, H] for ``batch`` fresh entities."""
        h = np.repeat(self._initial_h[:, None, :], batch, axis=1)
        c = np.repeat(self._initial_c[:, None, :], batch, axis=1)
        return np.ascontiguousarray(h), np.ascontiguousarray(c)
