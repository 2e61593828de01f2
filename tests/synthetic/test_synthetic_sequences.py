"""Seeded DeepLog-format sessions: determinism, labels, key alphabet and file round trips."""

from __future__ import annotations

from pathlib import Path

from logwarden.events.sequences import read_labelled_csv, read_sequences
from logwarden.synthetic import (
    ALL_KINDS,
    STEP_KEYS,
    generate_sequences,
    is_normal_lifecycle,
    write_labelled_csv,
    write_sequences,
)
from logwarden.synthetic.lifecycle import UNKNOWN_STEPS

_STEP_OF_KEY = {key: step for step, key in STEP_KEYS.items()}
_UNKNOWN_KEYS = {STEP_KEYS[step] for step in UNKNOWN_STEPS}


def test_generate_sequences_same_seed_identical() -> None:
    """The same seed gives the same sessions and kinds; another seed does not."""
    first = generate_sequences(seed=4, sessions=300, anomaly_fraction=0.1)
    assert first == generate_sequences(seed=4, sessions=300, anomaly_fraction=0.1)
    assert first.sessions != generate_sequences(seed=5, sessions=300, anomaly_fraction=0.1).sessions


def test_generate_sequences_labels_match_kinds() -> None:
    """round(n * fraction) sessions are labelled anomalous, each kind equally often."""
    data = generate_sequences(seed=1, sessions=500, anomaly_fraction=0.1)
    assert sum(data.labels) == 50
    assert sorted(kind for kind in data.kinds if kind) == sorted(ALL_KINDS * 10)


def test_generate_sequences_normal_sessions_follow_grammar() -> None:
    """Normal sessions decode to valid lifecycles and anomalous ones do not."""
    data = generate_sequences(seed=2, sessions=400, anomaly_fraction=0.2)
    for session, anomalous in zip(data.sessions, data.labels, strict=True):
        assert all(key.isdigit() for key in session)
        assert is_normal_lifecycle([_STEP_OF_KEY[key] for key in session]) != anomalous


def test_generate_sequences_unknown_keys_only_in_anomalies() -> None:
    """Keys of never-seen steps appear in unknown_template sessions and nowhere else."""
    data = generate_sequences(seed=3, sessions=400, anomaly_fraction=0.25)
    for session, kind in zip(data.sessions, data.kinds, strict=True):
        assert bool(_UNKNOWN_KEYS & set(session)) == (kind == "unknown_template")


def test_write_sequences_read_back_by_project_reader(tmp_path: Path) -> None:
    """write_sequences output is what read_sequences expects."""
    data = generate_sequences(seed=6, sessions=50, anomaly_fraction=0)
    path = tmp_path / "train"
    write_sequences(path, data.sessions)
    assert read_sequences(path) == data.sessions


def test_write_labelled_csv_read_back_by_project_reader(tmp_path: Path) -> None:
    """write_labelled_csv output is what read_labelled_csv expects, labels included."""
    data = generate_sequences(seed=7, sessions=60, anomaly_fraction=0.2)
    path = tmp_path / "dev.csv"
    write_labelled_csv(path, data.sessions, data.labels)
    rows = read_labelled_csv(path)
    assert [row.keys for row in rows] == data.sessions
    assert [row.anomalous for row in rows] == data.labels
