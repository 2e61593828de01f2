"""Decide which scored events are anomalies; the scorer only scores.

Kept apart from scoring so that thresholds (and later cooldowns) change without touching the
model path, and so the rule is tested on plain arrays.
"""

from __future__ import annotations

import math

import numpy as np

from logwarden.model.contract import UNKNOWN_ID, ModelMetadata


class AlertPolicy:
    """An event is anomalous when its surprise exceeds the threshold or its template is unknown.

    A NaN score never exceeds the threshold: it signals a broken model, not an anomaly.
    """

    def __init__(self, threshold: float) -> None:
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number of nats, got {threshold!r}")
        self.threshold = float(threshold)

    @classmethod
    def for_model(cls, metadata: ModelMetadata, override: float | None = None) -> AlertPolicy:
        """The model's calibrated threshold unless the configuration overrides it."""
        return cls(metadata.threshold if override is None else override)

    def decide(self, scores: np.ndarray, event_ids: np.ndarray) -> np.ndarray:
        """Boolean mask, same shape as ``scores``: which events raise an alert."""
        scores = np.asarray(scores)
        event_ids = np.asarray(event_ids)
        if scores.shape != event_ids.shape:
            raise ValueError(f"scores {scores.shape} and event_ids {event_ids.shape} differ in shape")
        return (scores > self.threshold) | (event_ids == UNKNOWN_ID)
