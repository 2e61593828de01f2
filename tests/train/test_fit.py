"""Fitting: learns a simple process, reproducible for a seed, options validated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import structlog
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


def test_fit_logs_progress_inside_an_epoch_when_it_runs_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """With an interval every batch passes, each epoch logs its batches done so far, then its seconds."""
    from logwarden.train import fit as fit_module
    from logwarden.train.progress import Progress

    monkeypatch.setattr(fit_module, "Progress", lambda event: Progress(event, interval_seconds=0.0))
    with structlog.testing.capture_logs() as logs:
        result = fit(cyclic_sessions(), 7, dataclasses.replace(TINY, epochs=1))
    progress = [log for log in logs if log["event"] == "training_progress"]
    assert [log["batches_done"] for log in progress] == list(range(5))  # 40 sessions in batches of 8
    assert {log["batches"] for log in progress} == {5}
    epoch = [log for log in logs if log["event"] == "training_epoch"]
    assert epoch[0]["seconds"] == round(result.epoch_seconds[0], 2)


def test_fit_logs_how_long_sessions_were_cut_into_segments() -> None:
    """A session past segment_length is trained in segments, and the log says how many (200 / 16: 13)."""
    long = np.array([3, 4, 5, 6] * 50, np.int64)
    options = dataclasses.replace(TINY, epochs=1, segment_length=16, segment_warmup=4)
    with structlog.testing.capture_logs() as logs:
        result = fit([*cyclic_sessions(), long], 7, options)
    cut = [log for log in logs if log["event"] == "long_sessions_cut"]
    assert cut == [
        {
            "event": "long_sessions_cut",
            "log_level": "info",
            "sessions": 1,
            "longest": 200,
            "segments": 13,
            "segment_length": 16,
            "warmup": 4,
        }
    ]
    assert np.isfinite(result.final_loss)
