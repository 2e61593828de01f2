"""Fixtures for model-contract tests: a small untrained network exported once, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from logwarden.model.contract import ModelMetadata
from logwarden.train.export import export_model
from logwarden.train.network import NextEventLSTM

VOCABULARY = ("1", "2", "3", "4")


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelMetadata]:
    """A seeded, untrained two-layer network exported as a model directory: (directory, metadata).

    Weights need not be trained for the contract: loading, checksums and state handling
    behave the same for any weights.
    """
    torch.manual_seed(3)
    network = NextEventLSTM(vocab_size=3 + len(VOCABULARY), embedding_dim=4, hidden_size=8, num_layers=2)
    out_dir = tmp_path_factory.mktemp("exported")
    metadata = export_model(
        network,
        out_dir,
        input_kind="sequences",
        vocabulary=VOCABULARY,
        templates=tuple(f"event {key}" for key in VOCABULARY),
        threshold=5.0,
        threshold_method="fixed",
        training={},
    )
    return out_dir, metadata


@pytest.fixture
def model_dir(exported_model: tuple[Path, ModelMetadata], tmp_path: Path) -> Path:
    """A private copy of the exported model directory that a test may corrupt."""
    copy = tmp_path / "model"
    shutil.copytree(exported_model[0], copy)
    return copy
