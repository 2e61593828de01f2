"""Fixtures for trainer tests: real HDFS sessions and one small model trained and exported per run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from logwarden.events.sequences import read_sequences
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.contract import ModelMetadata
from logwarden.train.fit import TrainingOptions
from logwarden.train.pipeline import train_on_sequences

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Small enough to train in a few seconds, large enough to learn HDFS's block lifecycle.
SMALL_OPTIONS = TrainingOptions(
    epochs=3, seed=7, embedding_dim=8, hidden_size=16, num_layers=2, batch_size=32, holdout_fraction=0.2
)
SMALL_SESSION_COUNT = 400


def hdfs_train_path() -> Path:
    """``hdfs-deeplog/hdfs_train`` under LOGWARDEN_DATA; fails the test clearly when it is absent."""
    data = Path(os.environ.get("LOGWARDEN_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    path = data / "hdfs-deeplog" / "hdfs_train"
    if not path.is_file():
        pytest.fail(
            f"{path} not found: set LOGWARDEN_DATA to the shared data folder (default ../shared/data)"
        )
    return path


@pytest.fixture(scope="session")
def small_options() -> TrainingOptions:
    """Options of the small test models."""
    return SMALL_OPTIONS


@pytest.fixture(scope="session")
def hdfs_train_file() -> Path:
    """Path of the HDFS training file (the test fails if it is missing)."""
    return hdfs_train_path()


@pytest.fixture(scope="session")
def hdfs_keys() -> list[list[str]]:
    """The first sessions of DeepLog's HDFS training set, as event keys."""
    return [s for s in read_sequences(hdfs_train_path()) if s][:SMALL_SESSION_COUNT]


@pytest.fixture(scope="session")
def trained_model(
    tmp_path_factory: pytest.TempPathFactory, hdfs_keys: list[list[str]]
) -> tuple[Path, ModelMetadata]:
    """A small model trained on real HDFS sessions and exported: (directory, metadata)."""
    out_dir = tmp_path_factory.mktemp("model")
    metadata = train_on_sequences(hdfs_keys, SMALL_OPTIONS, out_dir, data_file=hdfs_train_path())
    return out_dir, metadata


@pytest.fixture(scope="session")
def hdfs_sessions(hdfs_keys: list[list[str]]) -> list[np.ndarray]:
    """The same sessions encoded with the training vocabulary."""
    vocabulary = Vocabulary.from_sessions(hdfs_keys)
    return [vocabulary.encode(s) for s in hdfs_keys]
