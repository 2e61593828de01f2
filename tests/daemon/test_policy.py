"""The alert policy: score above threshold or unknown template, nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from logwarden.daemon.policy import AlertPolicy
from logwarden.model.contract import END_ID, FIRST_EVENT_ID, UNKNOWN_ID, ModelMetadata
from logwarden.model.count_gate import CountGate


def test_decide_score_above_threshold_anomalous() -> None:
    """Only scores strictly above the threshold are anomalous for known events."""
    decided = AlertPolicy(5.0).decide(np.array([4.9, 5.0, 5.1, 50.0]), np.full(4, FIRST_EVENT_ID))
    assert decided.tolist() == [False, False, True, True]


def test_decide_unknown_event_anomalous_whatever_score() -> None:
    """An UNKNOWN event is anomalous even with a score of zero."""
    decided = AlertPolicy(5.0).decide(np.array([0.0, 0.0]), np.array([UNKNOWN_ID, END_ID]))
    assert decided.tolist() == [True, False]


def test_decide_nan_score_not_anomalous() -> None:
    """A NaN score (a broken model) never counts as exceeding the threshold."""
    assert AlertPolicy(1.0).decide(np.array([np.nan]), np.array([FIRST_EVENT_ID])).tolist() == [False]


def test_decide_returns_boolean_mask_of_input_shape() -> None:
    """The verdict is a bool array shaped like the scores."""
    decided = AlertPolicy(1.0).decide(np.zeros((2, 3), np.float32), np.full((2, 3), FIRST_EVENT_ID, np.int64))
    assert decided.dtype == np.bool_ and decided.shape == (2, 3)


def test_decide_shape_mismatch_rejected() -> None:
    """Scores and event ids of different shapes are a programming error, reported as such."""
    with pytest.raises(ValueError, match="differ in shape"):
        AlertPolicy(1.0).decide(np.zeros(3), np.zeros(2, np.int64))


@pytest.mark.parametrize("threshold", [float("nan"), float("inf")])
def test_alert_policy_non_finite_threshold_rejected(threshold: float) -> None:
    """A NaN or infinite threshold would silence or flood alerts, so it is refused."""
    with pytest.raises(ValueError, match="finite"):
        AlertPolicy(threshold)


@pytest.mark.parametrize(("override", "expected"), [(None, 3.5), (9.0, 9.0)])
def test_for_model_override_wins_over_calibrated(override: float | None, expected: float) -> None:
    """The configured threshold overrides the model's calibrated one; null keeps the model's."""
    metadata = ModelMetadata(1, "sequences", ("1",), ("E1",), 4, 4, 1, 3.5, "test", "00" * 32)
    assert AlertPolicy.for_model(metadata, override).threshold == expected


def test_for_model_keeps_the_models_count_gate_unless_configured_off() -> None:
    """``model.count_gate: false`` drops the gate; by default the model's own gate is applied."""
    gate = CountGate(2.0, (7,))
    metadata = ModelMetadata(
        2, "sequences", ("1",), ("E1",), 4, 4, 1, 3.5, "test", "00" * 32, count_gate=gate
    )
    assert AlertPolicy.for_model(metadata).count_gate == gate
    assert AlertPolicy.for_model(metadata, count_gate=False).count_gate is None


def test_session_end_by_counts_only_when_no_event_or_end_alerted() -> None:
    """Of five ended sessions with unseen counts: a quiet END and a largest surprise between the two
    thresholds alerts by counts; an END above the threshold alerts by END only; a session whose
    event already passed the threshold, whose unknown event alerted when it came, or whose largest
    surprise stays under the gate, does not."""
    policy = AlertPolicy(5.0, CountGate(2.0, (7,)))
    by_end, by_counts = policy.decide_session_ends(
        np.array([1.0, 6.0, 1.0, 1.0, 1.0]),
        np.array([3.0, 6.0, 5.5, 1.5, 3.0]),
        np.full(5, 9, np.uint64),
        np.array([0, 0, 0, 0, 1]),
    )
    assert by_end.tolist() == [False, True, False, False, False]
    assert by_counts.tolist() == [True, False, False, False, False]


def test_session_end_without_a_gate_alerts_by_end_only() -> None:
    """With no count gate the session-end verdict is the END token's alone."""
    by_end, by_counts = AlertPolicy(5.0).decide_session_ends(
        np.array([6.0, 1.0]), np.array([6.0, 4.0]), np.zeros(2, np.uint64), np.zeros(2, np.int64)
    )
    assert by_end.tolist() == [True, False] and not by_counts.any()
