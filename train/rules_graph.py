"""The exported graph with the novelty rules: the LSTM plus what the rules need, carried in its state.

The ONNX contract scores event t from the state after event t-1, and the daemon keeps nothing per
entity but that state, so the rules' memory travels in one extra unit of the state, which is then
``hidden_size + 1`` wide:

- ``h[0, :, H]``: the previous event id, for the transition rule (``transition_rule.py``);
- ``c[0, :, H]``: the set of watched events the session has had so far, as the bits of a whole
  number, for the co-occurrence rule (``cooccurrence_rule.py``);
- ``h[1, :, H]``: how many events the session has had, capped at the rule's ``min_events``, for the
  length rule (``length_rule.py``), which therefore needs two layers.

A float32 holds whole numbers below 2**24 exactly, and halving or doubling one is exact, so the
bits are read with divisions by powers of two and ``floor``.  The other extra units stay 0.  The
zero state says "after START, nothing seen, nothing counted", which is also where the runtime's
initial state (START fed to zero state) leaves it.  Training never sees this wrapper: the penalties only
ever lower the log-probability of what the training sessions never showed.
"""

from __future__ import annotations

import torch
from torch import nn

from logwarden.model.cooccurrence_rule import CooccurrenceRule
from logwarden.model.length_rule import LengthRule
from logwarden.model.tokens import END_ID, START_ID
from logwarden.model.transition_rule import TransitionRule

from .network import NextEventLSTM


class RulesLSTM(nn.Module):
    """``NextEventLSTM`` whose log-probabilities carry the rules' penalties; same call signature."""

    def __init__(
        self,
        network: NextEventLSTM,
        transition_rule: TransitionRule | None = None,
        cooccurrence_rule: CooccurrenceRule | None = None,
        length_rule: LengthRule | None = None,
    ) -> None:
        super().__init__()
        if transition_rule is None and cooccurrence_rule is None and length_rule is None:
            raise ValueError("RulesLSTM needs at least one rule; export the bare network otherwise")
        if length_rule is not None and network.num_layers < 2:
            raise ValueError(
                "the length rule counts events in the second layer's extra unit; this network has one layer"
            )
        self.network = network
        vocab = network.vocab_size
        self.transition_penalty: torch.Tensor
        self.register_buffer(
            "transition_penalty",
            torch.zeros(vocab, vocab)
            if transition_rule is None
            else torch.where(
                torch.from_numpy(transition_rule.allowed(vocab)), 0.0, -transition_rule.penalty
            ).to(torch.float32),
        )
        watched = [] if cooccurrence_rule is None else cooccurrence_rule.watched(vocab)
        bit_of = torch.zeros(vocab, len(watched))
        forbidden_with = torch.zeros(len(watched), vocab)
        if cooccurrence_rule is not None:
            forbidden = torch.from_numpy(cooccurrence_rule.forbidden(vocab))
            for bit, event in enumerate(watched):
                bit_of[event, bit] = 1.0
                forbidden_with[bit] = forbidden[event].to(torch.float32)
        self.bit_of: torch.Tensor
        """float [V, W]: the one-hot bit of each watched event (a row of zeros for the others)."""
        self.forbidden_with: torch.Tensor
        """float [W, V]: 1 where the watched event of the row never met the event of the column."""
        self.powers: torch.Tensor
        self.register_buffer("bit_of", bit_of)
        self.register_buffer("forbidden_with", forbidden_with)
        self.register_buffer("powers", 2.0 ** torch.arange(len(watched), dtype=torch.float32))
        self.cooccurrence_penalty = 0.0 if cooccurrence_rule is None else cooccurrence_rule.penalty
        self.min_events = 0.0 if length_rule is None else float(length_rule.min_events)
        self.length_penalty: torch.Tensor
        """float [V]: the length rule's penalty on END, 0 for every other event."""
        length_penalty = torch.zeros(vocab)
        if length_rule is not None:
            length_penalty[END_ID] = length_rule.penalty
        self.register_buffer("length_penalty", length_penalty)
        self.checks_transitions = transition_rule is not None
        self.checks_pairs = cooccurrence_rule is not None
        self.checks_length = length_rule is not None
        """Which rules the graph applies: the export traces only their operations."""
        self.vocab_size = vocab
        self.embedding_dim = network.embedding_dim
        self.hidden_size = network.hidden_size + 1
        """The width of the state: the LSTM's hidden size and the rules' unit."""
        self.num_layers = network.num_layers

    def forward(
        self, event_ids: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As ``NextEventLSTM.forward`` on states one unit wider, with the rules' penalties."""
        width = self.network.hidden_size
        log_probs, hn, cn = self.network(event_ids, h0[:, :, :width], c0[:, :, :width])
        h_units = list(torch.zeros_like(hn[:, :, :1]).unbind(0))  # per layer, [B, 1]
        c_units = list(torch.zeros_like(cn[:, :, :1]).unbind(0))
        if self.checks_transitions:
            # The previous event of step t is event t-1, or the carried one at t = 0.
            previous_before = torch.round(h0[0:1, :, width]).to(torch.int64)  # [1, B]
            previous = torch.cat([previous_before, event_ids[:-1]], dim=0)  # [T, B]
            log_probs = log_probs + self.transition_penalty[previous]
            h_units[0] = event_ids[-1].to(h0.dtype).unsqueeze(-1)  # [B, 1]
        if self.checks_pairs:
            # The watched events seen before step t, then the candidates they never met.
            carried = c0[0, :, width].unsqueeze(-1)  # [B, 1], a whole number below 2**W
            seen_carried = torch.floor(carried / self.powers) - 2.0 * torch.floor(
                carried / (2.0 * self.powers)
            )
            arriving = self.bit_of[event_ids]  # [T, B, W]
            so_far = torch.cumsum(arriving, dim=0)
            seen_before = torch.clamp(seen_carried.unsqueeze(0) + so_far - arriving, max=1.0)  # [T, B, W]
            conflicts = torch.matmul(seen_before, self.forbidden_with)  # [T, B, V]
            log_probs = log_probs - self.cooccurrence_penalty * (conflicts > 0.5).to(log_probs.dtype)
            seen_after = torch.clamp(seen_carried + so_far[-1], max=1.0)  # [B, W]
            c_units[0] = (seen_after * self.powers).sum(dim=-1, keepdim=True)  # [B, 1]
        if self.checks_length:
            # Events before step t (START and END are not events of the session), capped at min_events.
            carried_count = h0[1, :, width]  # [B]
            counted = ((event_ids != START_ID) & (event_ids != END_ID)).to(h0.dtype)  # [T, B]
            count_so_far = torch.cumsum(counted, dim=0)
            count_before = carried_count.unsqueeze(0) + count_so_far - counted  # [T, B]
            early = (count_before < self.min_events).to(log_probs.dtype).unsqueeze(-1)  # [T, B, 1]
            log_probs = log_probs - early * self.length_penalty
            h_units[1] = torch.clamp(carried_count + count_so_far[-1], max=self.min_events).unsqueeze(-1)
        h_unit = torch.stack(h_units, dim=0)  # [L, B, 1]
        c_unit = torch.stack(c_units, dim=0)
        return log_probs, torch.cat([hn, h_unit], dim=2), torch.cat([cn, c_unit], dim=2)

    def zero_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """All-zero (h, c) [L, batch, H + 1]: the previous event START, nothing seen, nothing counted."""
        shape = (self.num_layers, batch, self.hidden_size)
        return torch.zeros(shape), torch.zeros(shape)
