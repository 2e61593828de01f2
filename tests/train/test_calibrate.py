"""Threshold selection: from held-out normal sessions, or by F1 on a labelled set."""

from __future__ import annotations

import numpy as np
import pytest

from logwarden.errors import TrainingError
from logwarden.train.calibrate import (
    METHOD_LABELLED_F1,
    LabelledSessions,
    calibrate,
    session_scores,
    threshold_from_normal,
    threshold_max_f1,
)
from logwarden.train.fit import TrainingOptions, fit
from logwarden.train.network import TorchStepModel

NORMAL = np.array([3, 4, 5, 6, 7], np.int64)


@pytest.fixture(scope="module")
def synthetic_model() -> TorchStepModel:
    """A tiny network that has learned one fixed five-event session."""
    options = TrainingOptions(
        epochs=20,
        seed=1,
        embedding_dim=8,
        hidden_size=16,
        num_layers=1,
        batch_size=8,
        learning_rate=0.02,
        final_learning_rate=0.005,
    )
    return TorchStepModel(fit([NORMAL.copy() for _ in range(64)], 8, options).network)


def test_calibrate_holdout_obvious_anomalies_above_threshold(synthetic_model: TorchStepModel) -> None:
    """Threshold from normal sessions lies above them and below reordered, truncated and looping sessions."""
    calibration = calibrate(synthetic_model, [NORMAL.copy() for _ in range(10)], margin=1.0)
    anomalies = [
        np.array(s, np.int64) for s in ([3, 5, 4, 6, 7], [3, 4], [3, 4, 5, 6, 7, 7, 7], [7, 6, 5, 4, 3])
    ]
    scores, _ = session_scores(synthetic_model, anomalies)
    normal_scores, _ = session_scores(synthetic_model, [NORMAL])
    assert normal_scores.max() < calibration.threshold < scores.min()
    assert calibration.method.startswith("holdout-normal")


def test_calibrate_labelled_set_uses_max_f1(synthetic_model: TorchStepModel) -> None:
    """Given labelled sessions, the chosen threshold classifies the obvious case perfectly."""
    sessions = [NORMAL.copy(), NORMAL.copy(), np.array([3, 4], np.int64), np.array([3, 5, 4, 6, 7], np.int64)]
    labelled = LabelledSessions(sessions, [False, False, True, True])
    calibration = calibrate(synthetic_model, [], labelled=labelled)
    assert calibration.method == METHOD_LABELLED_F1
    assert calibration.summary["labelled_metrics"]["f1"] == 1.0


def test_threshold_max_f1_separable_scores_threshold_between_classes() -> None:
    """Separable scores give a threshold between the highest normal and the lowest anomalous score."""
    scores = np.array([1.0, 2.0, 3.0, 8.0, 9.0])
    anomalous = np.array([False, False, False, True, True])
    threshold, metrics = threshold_max_f1(scores, anomalous, np.zeros(5, bool))
    assert 3.0 < threshold < 8.0 and metrics.f1 == 1.0


def test_threshold_max_f1_unknown_sessions_always_flagged() -> None:
    """A session with an UNKNOWN event counts as flagged whatever its score."""
    scores = np.array([1.0, 1.0, 9.0])
    _, metrics = threshold_max_f1(scores, np.array([False, True, True]), np.array([False, True, False]))
    assert metrics.true_positives == 2 and metrics.false_positives == 0


def test_threshold_from_normal_quantile_and_margin_added() -> None:
    """The rule is quantile of normal scores plus the margin; the default quantile is the maximum."""
    scores = np.arange(1.0, 101.0)
    assert threshold_from_normal(scores, margin=0.5) == 100.5
    assert threshold_from_normal(scores, quantile=0.5, margin=0.0) == pytest.approx(50.5)


def test_threshold_from_normal_no_sessions_raises_training_error() -> None:
    """Without held-out sessions there is nothing to calibrate on."""
    with pytest.raises(TrainingError, match="held-out"):
        threshold_from_normal(np.array([]))


def test_threshold_max_f1_ties_take_the_highest_threshold() -> None:
    """Candidates 3.0 and 6.0 both give F1 1.0; the higher one wins, so the model ships fewer alerts."""
    threshold, metrics = threshold_max_f1(
        np.array([1.0, 5.0]), np.array([False, True]), np.array([False, True])
    )
    assert metrics.f1 == 1.0 and threshold == 6.0
