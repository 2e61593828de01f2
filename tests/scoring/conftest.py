"""Fixtures for scoring tests: one small model trained on synthetic lifecycles, once per run."""

from __future__ import annotations

import pytest

from logwarden.events.vocabulary import Vocabulary
from logwarden.model.bundle import ModelBundle, load_bundle
from logwarden.model.runtime import OnnxStepModel
from logwarden.synthetic import generate_sequences
from logwarden.train.fit import TrainingOptions
from logwarden.train.pipeline import train_on_sequences

# A high learning rate and small batches so four epochs learn the lifecycle grammar (loss ~0.6 nats).
TRAINED_OPTIONS = TrainingOptions(
    epochs=4,
    seed=1,
    embedding_dim=8,
    hidden_size=16,
    num_layers=1,
    batch_size=16,
    learning_rate=0.03,
    final_learning_rate=0.01,
    holdout_fraction=0.2,
)


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    """A model trained on 300 normal synthetic sessions and exported, as a verified bundle."""
    sessions = generate_sequences(seed=3, sessions=300, anomaly_fraction=0.0).sessions
    out_dir = tmp_path_factory.mktemp("scoring-model")
    train_on_sequences(sessions, TRAINED_OPTIONS, out_dir)
    return load_bundle(out_dir)


@pytest.fixture(scope="session")
def trained_model(trained_bundle: ModelBundle) -> OnnxStepModel:
    """The trained bundle opened with onnxruntime."""
    return OnnxStepModel.load(trained_bundle)


@pytest.fixture(scope="session")
def vocabulary(trained_model: OnnxStepModel) -> Vocabulary:
    """The trained model's vocabulary."""
    return Vocabulary(trained_model.metadata.vocabulary)


@pytest.fixture(scope="session")
def normal_test_keys() -> list[list[str]]:
    """Normal sessions the model never saw (another seed)."""
    return generate_sequences(seed=4, sessions=40, anomaly_fraction=0.0).sessions
