"""The exported graph with the transition rule: the LSTM plus the previous event, carried in its state.

The ONNX contract scores event t from the state after event t-1, and the daemon keeps nothing per
entity but that state, so the previous event id travels in one extra unit of ``h`` (layer 0; the
other layers' extra unit and ``c``'s stay 0): the state is ``hidden_size + 1`` wide.  A float32
holds every event id below 2**24 exactly.  The zero state says "after START", which is also where
the runtime's initial state (START fed to zero state) leaves it.  Training never sees this wrapper:
the penalty only ever lowers the log-probability of transitions absent from the training data.
"""

from __future__ import annotations

import torch
from torch import nn

from logwarden.model.transition_rule import TransitionRule

from .network import NextEventLSTM


class TransitionRuleLSTM(nn.Module):
    """``NextEventLSTM`` whose log-probabilities carry the transition rule's penalty; same call signature."""

    def __init__(self, network: NextEventLSTM, rule: TransitionRule) -> None:
        super().__init__()
        self.network = network
        allowed = torch.from_numpy(rule.allowed(network.vocab_size))
        self.penalty: torch.Tensor
        self.register_buffer("penalty", torch.where(allowed, 0.0, -rule.penalty).to(torch.float32))
        self.vocab_size = network.vocab_size
        self.embedding_dim = network.embedding_dim
        self.hidden_size = network.hidden_size + 1
        """The width of the state: the LSTM's hidden size and the previous event."""
        self.num_layers = network.num_layers

    def forward(
        self, event_ids: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As ``NextEventLSTM.forward`` on states one unit wider; unseen transitions lose ``penalty`` nats."""
        width = self.network.hidden_size
        log_probs, hn, cn = self.network(event_ids, h0[:, :, :width], c0[:, :, :width])
        previous_before = torch.round(h0[0:1, :, width]).to(torch.int64)  # [1, B]
        previous = torch.cat([previous_before, event_ids[:-1]], dim=0)  # [T, B]
        log_probs = log_probs + self.penalty[previous]
        last = event_ids[-1:].to(h0.dtype).unsqueeze(-1)  # [1, B, 1]
        carried = torch.cat([last, torch.zeros_like(hn[1:, :, :1])], dim=0)
        return (
            log_probs,
            torch.cat([hn, carried], dim=2),
            torch.cat([cn, torch.zeros_like(cn[:, :, :1])], dim=2),
        )

    def zero_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """All-zero (h, c) [L, batch, H + 1]: no event yet, the previous one START."""
        shape = (self.num_layers, batch, self.hidden_size)
        return torch.zeros(shape), torch.zeros(shape)
