"""The PyTorch network honours the contract: predictions come from the state before each event."""

from __future__ import annotations

import torch

from logwarden.train.network import NextEventLSTM


def make_network() -> NextEventLSTM:
    """A small two-layer network over 9 ids, seeded weights, in eval mode so every call is deterministic."""
    torch.manual_seed(0)
    return NextEventLSTM(vocab_size=9, embedding_dim=4, hidden_size=6, num_layers=2).eval()


def test_network_first_prediction_ignores_first_event() -> None:
    """log_probs[0] depends on h0 only, not on the event it predicts."""
    network = make_network()
    h, c = network.zero_state(1)
    with torch.no_grad():
        first = network(torch.tensor([[3], [4]]), h, c)[0][0]
        other = network(torch.tensor([[7], [4]]), h, c)[0][0]
    assert torch.equal(first, other)


def test_network_single_steps_match_one_sequence_call() -> None:
    """Feeding events one at a time, carrying (h, c), gives the same outputs as one call."""
    network = make_network()
    ids = torch.tensor([[0, 0], [3, 5], [4, 6], [8, 1]])
    h, c = network.zero_state(2)
    with torch.no_grad():
        whole, whole_h, whole_c = network(ids, h, c)
        for t in range(ids.shape[0]):
            step, h, c = network(ids[t : t + 1], h, c)
            torch.testing.assert_close(step[0], whole[t])
    torch.testing.assert_close(h, whole_h)
    torch.testing.assert_close(c, whole_c)


def test_network_outputs_are_log_probabilities() -> None:
    """Each row of log_probs exponentiates to a distribution over the vocabulary."""
    network = make_network()
    h, c = network.zero_state(3)
    with torch.no_grad():
        log_probs, _, _ = network(torch.randint(0, 9, (5, 3)), h, c)
    assert log_probs.shape == (5, 3, 9)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(5, 3))
