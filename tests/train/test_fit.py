"""Fitting: learns a simple process, reproducible for a seed, options validated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from logwarden.errors import TrainingError
from logwarden.train.fit import TrainingOptions, fit

TINY = TrainingOptions(
    epochs=4, seed=5, embedding_dim=4, hidden_size=8, num_layers=1, batch_size=8, bptt_length=3
)


def cyclic_sessions() -> list[np.ndarray]:
    """40 sessions repeating 3, 4, 5, 6 one to three times (seeded): a process the network can learn."""
    rng = np.random.default_rng(0)
    return [np.array([3, 4, 5, 6] * int(rng.integers(1, 4)), np.int64) for _ in range(40)]


def test_fit_deterministic_process_loss_decreases() -> None:
    """Training on a fixed cycle lowers the next-event loss, also with chunks shorter than sessions."""
    result = fit(cyclic_sessions(), 7, TINY)
    assert result.final_loss < result.epoch_losses[0]


def test_fit_same_seed_identical_weights() -> None:
    """Two runs with the same seed and data produce identical parameters."""
    first = fit(cyclic_sessions(), 7, TINY).network.state_dict()
    second = fit(cyclic_sessions(), 7, TINY).network.state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_fit_invalid_option_raises_training_error() -> None:
    """A non-positive option is refused with its name."""
    with pytest.raises(TrainingError, match="hidden_size"):
        fit(cyclic_sessions(), 7, dataclasses.replace(TINY, hidden_size=0))


def test_fit_swap_probability_out_of_range_raises_training_error() -> None:
    """A swap probability of 1 (every pair swapped: a shifted, not a reordered, session) is refused."""
    with pytest.raises(TrainingError, match="swap_probability"):
        fit(cyclic_sessions(), 7, dataclasses.replace(TINY, swap_probability=1.0))


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_options_seed_outside_unsigned_32_bits_raises_training_error(seed: int) -> None:
    """numpy seeds take 0 <= seed < 2**32; anything else is refused by validate(), before training."""
    with pytest.raises(TrainingError, match=rf"seed must be in \[0, 2\*\*32\), got {seed}"):
        dataclasses.replace(TINY, seed=seed).validate()
