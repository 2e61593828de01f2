"""Detection metrics, including F1 re-weighted to another class ratio (DeepLog's test split)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

DEEPLOG_TEST_RATIO = (553_366, 16_838)


@dataclass(frozen=True)
class DetectionMetrics:
    """Confusion counts and the rates derived from them."""

    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    @property
    def tpr(self) -> float:
        """Share of anomalous sessions flagged (true-positive rate); 0 when there are none."""
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else 0.0

    @property
    def fpr(self) -> float:
        """Share of normal sessions flagged (false-positive rate); 0 when there are none."""
        negatives = self.false_positives + self.true_negatives
        return self.false_positives / negatives if negatives else 0.0

    @property
    def precision(self) -> float:
        """Share of flagged sessions that are anomalous; 0 when none was flagged."""
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        """The true-positive rate, under the name precision/recall reports use."""
        return self.tpr

    @property
    def f1(self) -> float:
        """Harmonic mean of ``precision`` and ``recall`` on this set's own class ratio."""
        return f1_from(self.precision, self.recall)

    def f1_at_ratio(self, normal: int, anomalous: int) -> float:
        """F1 expected on a set with ``normal:anomalous`` sessions, from this set's TPR and FPR."""
        return f1_from(precision_at_ratio(self.tpr, self.fpr, normal, anomalous), self.tpr)

    def as_dict(self) -> dict[str, float | int]:
        """Counts and derived rates in one flat mapping, as the CLI and training summaries print them."""
        out: dict[str, float | int] = dict(asdict(self))
        out.update(tpr=self.tpr, fpr=self.fpr, precision=self.precision, recall=self.recall, f1=self.f1)
        return out


def f1_from(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall (0 when both are 0)."""
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def precision_at_ratio(tpr: float, fpr: float, normal: int, anomalous: int) -> float:
    """Precision TPR·A / (TPR·A + FPR·N) on a set of N normal and A anomalous sessions.

    Computed from the class shares A/(N+A) and N/(N+A), which Python divides exactly for integers
    of any size: the products TPR·A and FPR·N raise OverflowError past about 1e308 sessions.
    """
    if normal < 0 or anomalous < 0 or normal + anomalous == 0:
        raise ValueError(f"class counts must be non-negative and not both 0, got {normal}:{anomalous}")
    total = normal + anomalous
    flagged_anomalous = tpr * (anomalous / total)
    flagged = flagged_anomalous + fpr * (normal / total)
    return flagged_anomalous / flagged if flagged else 0.0


def one_class_problem(anomalous: Sequence[bool]) -> str | None:
    """Why ``anomalous`` (True = anomalous) cannot rank a detector, or None when it holds both classes.

    With one class only, TPR, precision and F1 are undefined (reported as 0, they would look like a
    detector that finds nothing), and so is the F1 re-weighted to another ratio.
    """
    flagged = sum(bool(label) for label in anomalous)
    if not anomalous or 0 < flagged < len(anomalous):
        return None
    kind = "normal (label 0)" if flagged == 0 else "anomalous (label 1)"
    return f"holds only {kind} sessions ({len(anomalous)})"


def confusion(labels: Sequence[bool], predictions: Sequence[bool]) -> DetectionMetrics:
    """Count outcomes; ``labels`` True means anomalous."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    tp = sum(1 for y, p in zip(labels, predictions, strict=True) if y and p)
    fp = sum(1 for y, p in zip(labels, predictions, strict=True) if not y and p)
    fn = sum(1 for y, p in zip(labels, predictions, strict=True) if y and not p)
    tn = len(labels) - tp - fp - fn
    return DetectionMetrics(tp, fp, tn, fn)
