"""The length rule: a session that ends with fewer events than any training session alerts.

A session that stops early (an HDFS block whose log ends after its allocation) is what the end-of-
session event is for, but how surprised the LSTM is by END after two events is pure extrapolation:
no training session is that short, and the cross-entropy never pushes an already tiny probability
further down.  On DeepLog's HDFS data the shortest of 4,855 training sessions holds 13 events, 362 of
the 1,000 anomalous dev sessions hold 2, 3 or 11 (no normal one fewer than 13), and the LSTM alone
gives END after ``5 22`` a surprise of 15.1 nats in one training draw and 10.1 in another, below that
draw's threshold: three seeds in ten missed 158 such blocks.  The length itself is a fact of the
training data, the same for every draw, so ``LENGTH_PENALTY`` nats are added to the surprise of END
when the session holds fewer than ``min_events`` events.

What it costs, from the training data alone: if new normal sessions are drawn like the n training
sessions, the chance that one is shorter than all of them is at most 1 / (n + 1) (its rank among the
n + 1 is uniform).  The rule is learned only when that is at most ``MAX_ALARM_SHARE``, so from 999
training sessions.  It assumes the daemon's sessions (ended by ``state.ttl_seconds``) are cut like
the training sessions; ``train --no-length-rule`` turns it off where they are not.

It lives in the ONNX graph, as the other rules do (``train/rules_graph.py``): the graph carries the
number of events so far, capped at ``min_events``, in the second layer's extra state unit, so a
one-layer model has no room for it and training declines it.  Pure: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from logwarden.errors import shown
from logwarden.model.count_gate import MAX_ALARM_SHARE
from logwarden.model.tokens import END_ID, START_ID
from logwarden.model.transition_rule import rule_object, rule_penalty

LENGTH_PENALTY = 100.0
"""Nats added to the surprise of END in a session shorter than every training session (the other
rules' penalty: a score of 100 or more in an alert reads as a rule)."""

MAX_MIN_EVENTS = 2**24
"""Largest ``min_events`` the graph can count to: a float32 holds whole numbers up to 2**24 exactly.
A longer shortest session gives a rule at this length, weaker and still within its bound."""


@dataclass(frozen=True)
class LengthRule:
    """A session ending with fewer than ``min_events`` events (START and END not counted) alerts."""

    min_events: int
    penalty: float = LENGTH_PENALTY

    def ends_early(self, session: np.ndarray) -> bool:
        """Whether ``session`` (int event ids, without START and END) ends shorter than the rule allows.

        Every event counts, UNKNOWN ones included: the rule is about how long the entity's log ran,
        not about what it said.
        """
        ids = np.asarray(session, np.int64)
        return int(np.count_nonzero((ids != START_ID) & (ids != END_ID))) < self.min_events

    def describe(self) -> dict[str, float | int]:
        """The rule's length and penalty, as ``train``, ``run --check`` and the daemon's ``started``
        line report it."""
        return {"min_events": self.min_events, "penalty": self.penalty}

    def to_dict(self) -> dict[str, Any]:
        """The ``length_rule`` object of ``model.json``."""
        return {"penalty": self.penalty, "min_events": self.min_events}

    @classmethod
    def from_dict(cls, raw: object) -> LengthRule:
        """Parse ``model.json``'s ``length_rule``; ValueError naming the key of a bad value."""
        raw = rule_object(raw, "length_rule")
        penalty = rule_penalty(raw, "length_rule")
        min_events = raw.get("min_events")
        if (
            isinstance(min_events, bool)
            or not isinstance(min_events, int)
            or not 2 <= min_events <= MAX_MIN_EVENTS
        ):
            raise ValueError(
                f"length_rule.min_events must be a whole number from 2 to {MAX_MIN_EVENTS}, "
                f"got {shown(min_events)}"
            )
        return cls(min_events, penalty)


@dataclass(frozen=True)
class LengthDecision:
    """The learned rule, or None, and the summary ``model.json`` records either way."""

    rule: LengthRule | None
    summary: dict[str, Any]


def learn_length_rule(sessions: Sequence[np.ndarray]) -> LengthDecision:
    """The rule over all training sessions (fit and held out), or why training declines it.

    Declined when there are too few sessions for the bound 1 / (n + 1) to be within
    ``MAX_ALARM_SHARE``, and when the shortest session holds a single event (nothing is shorter).
    """
    lengths = np.fromiter((len(s) for s in sessions if len(s)), np.int64)
    count = len(lengths)
    shortest = int(lengths.min()) if count else 0
    share = 1.0 / (count + 1)
    summary: dict[str, Any] = {
        "sessions": count,
        "shortest": shortest,
        "sessions_at_shortest": int(np.count_nonzero(lengths == shortest)) if count else 0,
        "estimated_false_alarm_share": round(share, 6),
    }
    if share > MAX_ALARM_SHARE:
        needed = int(np.ceil(1.0 / MAX_ALARM_SHARE)) - 1
        summary["off"] = (
            f"{count} training sessions: a new normal session is shorter than all of them with "
            f"probability up to 1/{count + 1} ({share:.2%}), more than {MAX_ALARM_SHARE:.1%}; "
            f"{needed} sessions are needed"
        )
        return LengthDecision(None, summary)
    if shortest < 2:
        summary["off"] = "the shortest training session holds a single event: no session ends shorter"
        return LengthDecision(None, summary)
    rule = LengthRule(min(shortest, MAX_MIN_EVENTS))
    summary["min_events"] = rule.min_events
    summary["penalty"] = LENGTH_PENALTY
    return LengthDecision(rule, summary)
