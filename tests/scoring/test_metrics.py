"""Detection metrics against hand-computed figures, including F1 re-weighted to DeepLog's test ratio."""

from __future__ import annotations

import pytest

from logwarden.scoring.metrics import (
    DEEPLOG_TEST_RATIO,
    DetectionMetrics,
    confusion,
    f1_from,
    precision_at_ratio,
)

# 100 anomalous (80 caught), 1000 normal (10 flagged).
EXAMPLE = DetectionMetrics(true_positives=80, false_positives=10, true_negatives=990, false_negatives=20)


def test_detection_metrics_rates_match_hand_computation() -> None:
    """TPR 80/100, FPR 10/1000, precision 80/90, F1 = 2PR/(P+R)."""
    assert EXAMPLE.tpr == pytest.approx(0.8)
    assert EXAMPLE.recall == pytest.approx(0.8)
    assert EXAMPLE.fpr == pytest.approx(0.01)
    assert EXAMPLE.precision == pytest.approx(8 / 9)
    assert EXAMPLE.f1 == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8))  # = 0.842105...
    assert EXAMPLE.f1 == pytest.approx(16 / 19)


def test_detection_metrics_f1_at_deeplog_ratio_reweights_false_positives() -> None:
    """At 553366:16838, precision is 0.8*16838 / (0.8*16838 + 0.01*553366) = 13470.4 / 19004.06."""
    assert DEEPLOG_TEST_RATIO == (553_366, 16_838)
    precision = 13470.4 / 19004.06
    assert precision == pytest.approx(0.708817, abs=1e-6)
    expected_f1 = 2 * precision * 0.8 / (precision + 0.8)
    assert EXAMPLE.f1_at_ratio(*DEEPLOG_TEST_RATIO) == pytest.approx(expected_f1)
    assert EXAMPLE.f1_at_ratio(*DEEPLOG_TEST_RATIO) == pytest.approx(0.751653, abs=1e-6)


def test_detection_metrics_f1_at_own_ratio_equals_plain_f1() -> None:
    """Re-weighting to the set's own 1000:100 ratio changes nothing."""
    assert EXAMPLE.f1_at_ratio(1000, 100) == pytest.approx(EXAMPLE.f1)


def test_detection_metrics_empty_classes_give_zero_rates() -> None:
    """With no positives, negatives or flags, rates are 0 rather than a ZeroDivisionError."""
    empty = DetectionMetrics(0, 0, 0, 0)
    assert (empty.tpr, empty.fpr, empty.precision, empty.f1) == (0.0, 0.0, 0.0, 0.0)
    assert empty.f1_at_ratio(*DEEPLOG_TEST_RATIO) == 0.0


def test_precision_at_ratio_no_false_positives_is_one() -> None:
    """A detector with FPR 0 and TPR > 0 is perfectly precise at any ratio."""
    assert precision_at_ratio(0.3, 0.0, 553_366, 16_838) == 1.0


def test_f1_from_zero_precision_and_recall_is_zero() -> None:
    """F1 of nothing caught is 0."""
    assert f1_from(0.0, 0.0) == 0.0


def test_confusion_counts_each_outcome() -> None:
    """Labels and predictions (True = anomalous) are counted into the four cells."""
    labels = [True, True, True, False, False, False, False]
    predictions = [True, True, False, True, False, False, False]
    assert confusion(labels, predictions) == DetectionMetrics(
        true_positives=2, false_positives=1, true_negatives=3, false_negatives=1
    )


def test_confusion_length_mismatch_raises_value_error() -> None:
    """Labels and predictions of different lengths are an error, not a silent zip."""
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        confusion([True, False, True], [True, False])


def test_detection_metrics_as_dict_has_counts_and_rates() -> None:
    """as_dict carries the four counts and every derived rate the eval report prints."""
    report = EXAMPLE.as_dict()
    assert report["true_positives"] == 80
    assert report["false_negatives"] == 20
    assert {"tpr", "fpr", "precision", "recall", "f1"} <= report.keys()
    assert report["precision"] == pytest.approx(8 / 9)
