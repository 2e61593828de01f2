"""Fixtures for the daemon tests: one small model trained on synthetic logs per session."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from logwarden.events.raw import parser_settings
from logwarden.synthetic import ENTITY_REGEX, generate_logs


@pytest.fixture(scope="session")
def synthetic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory trained on normal synthetic scheduler logs (small and quick, not tuned)."""
    from logwarden.train.fit import TrainingOptions
    from logwarden.train.pipeline import train_on_logs

    out = tmp_path_factory.mktemp("synthetic-model")
    training = generate_logs(seed=3, entities=400, anomaly_fraction=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_on_logs(
            training.lines,
            parser_settings(ENTITY_REGEX),
            TrainingOptions(epochs=4, hidden_size=32, embedding_dim=16, seed=3),
            out,
        )
    return out
