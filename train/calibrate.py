"""Choose the alert threshold (nats of surprise) from held-out normal sessions or a labelled set.

Default, from normal data only: the largest session score among held-out normal sessions
(never trained on) plus a margin.  A false-positive budget near 0.1% cannot be read from a
quantile of a few hundred sessions, so the maximum is the only order statistic that bounds
it (with n held-out sessions, a new normal session exceeds their maximum with probability
about 1/(n+1)); the margin absorbs normal sessions that are a little rarer than any held
out, since surprise grows only logarithmically with rarity (default ln 10: ten times rarer).
When labelled sessions are given, the threshold maximising F1 on them is used instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from logwarden.errors import TrainingError
from logwarden.scoring.metrics import DetectionMetrics, one_class_problem
from logwarden.scoring.session import StepModel, score_sessions

# Alert only on sessions at least ten times less likely than the least likely held-out normal one.
DEFAULT_THRESHOLD_MARGIN = math.log(10)

METHOD_HOLDOUT = "holdout-normal"
METHOD_LABELLED_F1 = "labelled-max-f1"

NO_HOLDOUT_MESSAGE = (
    "no held-out normal sessions to calibrate on; train on more sessions or give a labelled set"
)


@dataclass(frozen=True)
class LabelledSessions:
    """Sessions of event ids with their labels (True = anomalous)."""

    sessions: Sequence[np.ndarray]
    anomalous: Sequence[bool]

    def __post_init__(self) -> None:
        if len(self.sessions) != len(self.anomalous):
            raise TrainingError(f"{len(self.sessions)} labelled sessions but {len(self.anomalous)} labels")
        validate_labels(self.anomalous)


def validate_labels(anomalous: Sequence[bool], source: str = "the labelled set") -> None:
    """TrainingError unless ``anomalous`` holds both labels: F1 cannot rank thresholds on one class.

    With normal sessions only every threshold has F1 0, with anomalous ones only the lowest wins;
    either way the "best" threshold says nothing.  ``source`` names the set in the message.
    """
    if not anomalous:
        raise TrainingError(f"{source} holds no sessions")
    problem = one_class_problem(anomalous)
    if problem is not None:
        raise TrainingError(
            f"{source} {problem}; choosing a threshold by F1 needs both normal and anomalous ones"
        )


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold, how it was chosen, and figures that justify it."""

    threshold: float
    method: str
    summary: dict[str, Any]


def session_scores(model: StepModel, sessions: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, has_unknown) of each session, from the shared offline scorer."""
    results = score_sessions(model, sessions, threshold=float("inf"))
    scores = np.array([r.score for r in results], np.float64)
    has_unknown = np.array([r.unknown_events > 0 for r in results], bool)
    return scores, has_unknown


def threshold_from_normal(
    scores: np.ndarray, quantile: float = 1.0, margin: float = DEFAULT_THRESHOLD_MARGIN
) -> float:
    """``quantile`` of normal session scores plus ``margin`` nats (quantile 1.0 = maximum)."""
    if scores.size == 0:
        raise TrainingError(NO_HOLDOUT_MESSAGE)
    return float(np.quantile(scores, quantile)) + margin


def threshold_max_f1(
    scores: np.ndarray, anomalous: np.ndarray, has_unknown: np.ndarray
) -> tuple[float, DetectionMetrics]:
    """Threshold with the best F1 (ties: the highest, fewest alerts); sessions with UNKNOWN always alert.

    Candidates lie midway between consecutive distinct scores, plus one below all and one above all.
    """
    if scores.size == 0:
        raise TrainingError("labelled set is empty")
    distinct = np.unique(scores)
    candidates = np.concatenate(
        ([distinct[0] - 1.0], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1.0])
    )
    best_threshold, best_metrics = (
        float(candidates[0]),
        _metrics(anomalous, (scores > candidates[0]) | has_unknown),
    )
    for threshold in candidates:
        metrics = _metrics(anomalous, (scores > threshold) | has_unknown)
        if metrics.f1 >= best_metrics.f1:
            best_threshold, best_metrics = float(threshold), metrics
    return best_threshold, best_metrics


def calibrate(
    model: StepModel,
    holdout: Sequence[np.ndarray],
    *,
    quantile: float = 1.0,
    margin: float = DEFAULT_THRESHOLD_MARGIN,
    labelled: LabelledSessions | None = None,
) -> Calibration:
    """Pick the threshold: max F1 on ``labelled`` when given, else from the held-out normal sessions."""
    summary: dict[str, Any] = {"holdout_sessions": len(holdout)}
    if holdout:
        normal_scores, _ = session_scores(model, holdout)
        summary.update(
            holdout_max_score=float(normal_scores.max()),
            holdout_p99_score=float(np.quantile(normal_scores, 0.99)),
            holdout_median_score=float(np.median(normal_scores)),
        )
    if labelled is not None:
        scores, has_unknown = session_scores(model, labelled.sessions)
        threshold, metrics = threshold_max_f1(scores, np.asarray(labelled.anomalous, bool), has_unknown)
        summary.update(labelled_sessions=len(scores), labelled_metrics=metrics.as_dict())
        return Calibration(threshold, METHOD_LABELLED_F1, summary)
    if not holdout:
        raise TrainingError(NO_HOLDOUT_MESSAGE)
    threshold = threshold_from_normal(normal_scores, quantile, margin)
    summary.update(quantile=quantile, margin=margin)
    return Calibration(threshold, f"{METHOD_HOLDOUT}(q={quantile:g},margin={margin:g})", summary)


def _metrics(anomalous: np.ndarray, flagged: np.ndarray) -> DetectionMetrics:
    tp = int(np.count_nonzero(anomalous & flagged))
    fp = int(np.count_nonzero(~anomalous & flagged))
    fn = int(np.count_nonzero(anomalous & ~flagged))
    return DetectionMetrics(tp, fp, len(anomalous) - tp - fp - fn, fn)
