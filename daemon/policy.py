"""Decide which scored events are anomalies; the scorer only scores.

Kept apart from scoring so that thresholds (and later cooldowns) change without touching the
model path, and so the rule is tested on plain arrays.
"""

from __future__ import annotations

import math

import numpy as np

from logwarden.model.contract import UNKNOWN_ID, ModelMetadata
from logwarden.model.count_gate import CountGate


class AlertPolicy:
    """An event is anomalous when its surprise exceeds the threshold or its template is unknown.

    A NaN score never exceeds the threshold: it signals a broken model, not an anomaly.  At a
    session's end the model's count gate, when it has one, may flag the session as a whole.
    """

    def __init__(self, threshold: float, count_gate: CountGate | None = None) -> None:
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number of nats, got {threshold!r}")
        self.threshold = float(threshold)
        self.count_gate = count_gate

    @classmethod
    def for_model(
        cls, metadata: ModelMetadata, override: float | None = None, *, count_gate: bool = True
    ) -> AlertPolicy:
        """The model's calibrated threshold unless the configuration overrides it, and its count gate
        unless the configuration turns it off (``model.count_gate: false``)."""
        threshold = metadata.threshold if override is None else override
        return cls(threshold, metadata.count_gate if count_gate else None)

    def decide(self, scores: np.ndarray, event_ids: np.ndarray) -> np.ndarray:
        """Boolean mask, same shape as ``scores``: which events raise an alert."""
        scores = np.asarray(scores)
        event_ids = np.asarray(event_ids)
        if scores.shape != event_ids.shape:
            raise ValueError(f"scores {scores.shape} and event_ids {event_ids.shape} differ in shape")
        return (scores > self.threshold) | (event_ids == UNKNOWN_ID)

    def decide_session_ends(
        self,
        end_scores: np.ndarray,
        session_scores: np.ndarray,
        count_profiles: np.ndarray,
        unknown_events: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(by END, by counts): boolean masks of the ended sessions that raise an alert, and why.

        A session alerts by END when ending where it did is itself surprising.  The count gate
        flags the others whose counts no training session had and whose largest surprise
        (``session_scores``, END included) exceeds the gate's threshold, unless an event of the
        session already alerted, by exceeding the model's threshold or by matching no template
        (``unknown_events``): one alert says enough.
        """
        end_scores = np.asarray(end_scores)
        by_end = end_scores > self.threshold
        if self.count_gate is None:
            return by_end, np.zeros_like(by_end)
        session_scores = np.asarray(session_scores)
        already = (session_scores > self.threshold) | (np.asarray(unknown_events) > 0)
        by_counts = self.count_gate.flags(count_profiles, session_scores) & ~by_end & ~already
        return by_end, by_counts
