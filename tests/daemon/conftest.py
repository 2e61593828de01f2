"""Fixtures for the daemon tests: small models trained on synthetic logs, once per session."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from small_models import train_small_model

from logwarden.events.json_events import JsonFields
from logwarden.synthetic import ENTITY_REGEX, generate_logs, generate_sequences
from logwarden.synthetic.json_events import (
    ENTITY_FIELD,
    EVENT_FIELD,
    USER_FIELD,
    as_json_events,
    sessions_as_keyed_events,
)


@pytest.fixture(scope="session")
def synthetic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on normal synthetic scheduler logs, raw lines grouped by the job regex."""
    training = generate_logs(seed=3, entities=400, anomaly_fraction=0.0)
    return train_small_model(tmp_path_factory.mktemp("synthetic-model"), training.lines, ENTITY_REGEX, None)


@pytest.fixture(scope="session")
def synthetic_model_without_rule(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model trained without the transition rule, so every session is judged by its scores."""
    training = generate_logs(seed=3, entities=400, anomaly_fraction=0.0)
    out = tmp_path_factory.mktemp("synthetic-model-without-rule")
    return train_small_model(out, training.lines, ENTITY_REGEX, None, transition_rule=False)


@pytest.fixture(scope="session")
def synthetic_keys_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model of event keys trained on JSON events of users (``train --json --event-field``)."""
    from logwarden.train.fit import TrainingOptions
    from logwarden.train.pipeline import train_on_json_event_keys

    out = tmp_path_factory.mktemp("synthetic-keys-model")
    training = sessions_as_keyed_events(
        generate_sequences(seed=3, sessions=400, anomaly_fraction=0.0).sessions
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_on_json_event_keys(
            training.lines,
            JsonFields(entity=USER_FIELD, event=EVENT_FIELD),
            None,
            TrainingOptions(epochs=4, hidden_size=32, embedding_dim=16, seed=3),
            out,
        )
    return out


@pytest.fixture(scope="session")
def synthetic_json_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same jobs as JSON events (``logwarden train --json``), grouped by the field ``job.id``."""
    training = as_json_events(generate_logs(seed=3, entities=400, anomaly_fraction=0.0))
    return train_small_model(
        tmp_path_factory.mktemp("synthetic-json-model"), training, None, JsonFields(entity=ENTITY_FIELD)
    )
