"""The count gate: a session-level check of *how many* of each event a session holds, beside the order.

The LSTM scores order: each event against the events before it.  Some anomalies are in the
counts instead (an HDFS block replicated and deleted once too often), a shape whose every step
looks ordinary.  When the training sessions repeat a small set of event-count combinations
(HDFS: 62 among 4,855 sessions), a session whose combination none of them had is itself
evidence: for such a session the gate lowers the bar from the model's threshold (held-out
maximum + ln 10) to ``threshold`` (held-out maximum + ``GATE_MARGIN``).  A session with
familiar counts is judged by the model's threshold alone, so the gate only ever adds alerts.

A session's counts are kept as a 64-bit multiset hash, the sum modulo 2**64 of a fixed pseudo-
random weight per event id: it is updated one event at a time (the daemon keeps 8 bytes per
entity, never the events), equal count combinations give equal hashes, and two different ones
collide with probability about 2**-64.  The gate is learned only when the training sessions show
that counts repeat (``MAX_UNSEEN_SHARE``); for entities whose sessions never repeat their counts
(a host logging for days) it stays off, since every session would look new.  Pure: numpy only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from logwarden.errors import shown

GATE_MARGIN = 0.5
"""Nats above the held-out maximum that a session with unseen counts must reach (1.6 times rarer).

Not zero: on HDFS six normal dev sessions score the held-out maximum to six digits (the same
surprise at the same step), so a gate at the maximum itself is one rounding from an alert."""

MAX_UNSEEN_SHARE = 0.01
"""The gate is learned only if at most this share of training sessions has a combination of counts
no other training session has (HDFS: 21 of 4,855, 0.43 %; the synthetic job logs: 4-16 %)."""

MAX_ALARM_SHARE = 0.001
"""The same condition for a rule that alerts outright (``transition_rule.py``, ``cooccurrence_rule.py``):
at most this share of training sessions may hold a feature no other training session has (Good and
Turing's estimate of the share of new normal sessions the rule would flag).  0.1 %, the false-
positive rate logwarden is evaluated at, where the gate, which only lowers a threshold, may have 1 %.

On HDFS the transition rule's estimate for transitions inside a session is 0.14 % (7 of 4,855
sessions), and on the 1,000 normal sessions of DeepLog's dev set those transitions flag 2 (0.2 %):
the estimate predicts what a rule costs."""

MIN_SESSIONS = 200
"""Fewer training sessions cannot show that unseen counts are rare."""

MAX_PROFILES = 100_000
"""Most distinct count combinations a model stores; more means the counts do not repeat."""

_MASK64 = (1 << 64) - 1
_HASH_HEX = re.compile(r"[0-9a-f]{16}")
"""How ``to_dict`` writes a hash; ``int(x, 16)`` alone would also take "0x…", signs and underscores."""


def event_weights(vocab_size: int) -> np.ndarray:
    """The multiset hash's weight of each event id (uint64 [vocab_size]): splitmix64 of id + 1.

    A fixed function, not stored in the model: the trainer, the offline scorer and the daemon
    compute the same weights from the vocabulary size alone.
    """
    weights = np.empty(vocab_size, np.uint64)
    for event_id in range(vocab_size):
        z = (event_id + 1) * 0x9E3779B97F4A7C15 & _MASK64
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK64
        weights[event_id] = z ^ (z >> 31)
    return weights


def count_profile(session: np.ndarray, weights: np.ndarray) -> int:
    """The multiset hash of one session's event ids: the sum of their weights modulo 2**64."""
    return int(np.add.reduce(weights[np.asarray(session, np.int64)], dtype=np.uint64))


def count_profiles(sessions: Iterable[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """``count_profile`` of each session, as uint64 [N]."""
    return np.fromiter((count_profile(s, weights) for s in sessions), np.uint64)


@dataclass(frozen=True)
class CountGate:
    """The learned gate: the count combinations of the training sessions and the lowered threshold."""

    threshold: float
    """Nats: a session with unseen counts alerts when its largest surprise exceeds this."""
    profiles: tuple[int, ...]
    """Sorted multiset hashes of every training session (fit and held-out)."""

    @cached_property
    def _known(self) -> np.ndarray:
        return np.array(self.profiles, np.uint64)

    def unseen(self, profiles: np.ndarray) -> np.ndarray:
        """Which of ``profiles`` (uint64 [N]) no training session had."""
        return ~np.isin(np.asarray(profiles, np.uint64), self._known)

    def flags(self, profiles: np.ndarray, max_surprise: np.ndarray) -> np.ndarray:
        """Which sessions the gate alerts on: unseen counts and a largest surprise above ``threshold``.

        A NaN surprise (a session whose counts were not tracked, see the daemon's state table)
        never exceeds the threshold, so such a session is left to the model's threshold.
        """
        return self.unseen(profiles) & (np.asarray(max_surprise, np.float64) > self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """The ``count_gate`` object of ``model.json``; hashes as 16 hex digits (JSON numbers beyond
        2**53 lose precision in many readers)."""
        return {"threshold": self.threshold, "profiles": [f"{p:016x}" for p in self.profiles]}

    @classmethod
    def from_dict(cls, raw: object) -> CountGate:
        """Parse ``model.json``'s ``count_gate``; ValueError naming the key of a bad value."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"count_gate must be an object, got {shown(raw)}")
        threshold = raw.get("threshold")
        if not _is_finite_number(threshold):
            raise ValueError(f"count_gate.threshold must be a finite number, got {shown(threshold)}")
        assert isinstance(threshold, (int, float))
        hexes = raw.get("profiles")
        if not isinstance(hexes, list):
            raise ValueError(f"count_gate.profiles must be a list of hex strings, got {shown(hexes)}")
        profiles: list[int] = []
        for i, value in enumerate(hexes):
            if not isinstance(value, str) or not _HASH_HEX.fullmatch(value):
                raise ValueError(
                    f"count_gate.profiles[{i}] must be 16 lowercase hex digits, got {shown(value)}"
                )
            profiles.append(int(value, 16))
        return cls(float(threshold), tuple(sorted(set(profiles))))


def _is_finite_number(value: object) -> bool:
    """A JSON number that is finite as a float (an integer of 400 digits is not: it overflows)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


@dataclass(frozen=True)
class GateDecision:
    """The learned gate, or None and why not (``summary["off"]``), with the figures either way; the
    summary goes to ``model.json``'s ``training.count_gate``."""

    gate: CountGate | None
    summary: dict[str, Any]


def learn_count_gate(
    fit_sessions: Sequence[np.ndarray],
    holdout_sessions: Sequence[np.ndarray],
    holdout_max_score: float | None,
    vocab_size: int,
    *,
    margin: float = GATE_MARGIN,
) -> GateDecision:
    """Learn the gate from the training data alone, or decline it when counts do not repeat.

    How often would a new normal session bring a combination of counts no training session had?
    Good and Turing's estimate is the share of training sessions whose combination occurs once
    only.  Above ``MAX_UNSEEN_SHARE`` unseen counts are ordinary, and the gate would lower the
    threshold for everyday traffic.  The estimate uses every training session, so it does not
    depend on which ones the seed held out (the held-out sessions' own share, about 2.4 of 486 on
    HDFS, would swing around the limit from seed to seed); that share is reported beside it.
    """
    weights = event_weights(vocab_size)
    fit = count_profiles(fit_sessions, weights)
    held = count_profiles(holdout_sessions, weights)
    everyone = np.concatenate([fit, held])
    known, occurrences = np.unique(everyone, return_counts=True)
    once = int(np.count_nonzero(occurrences == 1))
    summary: dict[str, Any] = {
        "sessions": int(everyone.size),
        "distinct_profiles": int(known.size),
        "sessions_with_a_unique_profile": once,
        "estimated_unseen_share": round(once / max(everyone.size, 1), 6),
        "holdout_sessions": int(held.size),
        "holdout_unseen_counts": int(np.count_nonzero(~np.isin(held, fit))),
    }
    if everyone.size < MIN_SESSIONS:
        summary["off"] = f"fewer than {MIN_SESSIONS} training sessions to judge whether counts repeat"
        return GateDecision(None, summary)
    if holdout_max_score is None:
        summary["off"] = "no held-out sessions to set the gate's threshold on"
        return GateDecision(None, summary)
    if once > MAX_UNSEEN_SHARE * everyone.size:
        summary["off"] = (
            f"{once} of {everyone.size} training sessions have a combination of event counts no other "
            f"has (more than {MAX_UNSEEN_SHARE:.0%}): counts do not repeat"
        )
        return GateDecision(None, summary)
    if known.size > MAX_PROFILES:
        summary["off"] = f"{known.size} distinct count combinations, more than {MAX_PROFILES}"
        return GateDecision(None, summary)
    summary.update(margin=margin, holdout_max_score=holdout_max_score)
    gate = CountGate(float(holdout_max_score + margin), tuple(int(p) for p in known.tolist()))
    return GateDecision(gate, summary)
