"""The transition rule: an event that never followed its predecessor in any training session alerts.

The LSTM gives such an event a probability learned by generalisation, and how low it comes out
depends on the training draw: on HDFS, three seeds in ten give the replication-then-deletion
anomalies a surprise below their own threshold and catch little beyond unknown keys.  The
transitions themselves are a fact of the training data, the same for every draw, so the rule
makes detection stand on them: ``TRANSITION_PENALTY`` nats are added to the surprise of every
transition (START → first event, one event → the next, last event → END) that no training session
contains, which puts it far above any threshold.

It lives in the ONNX graph, not beside it (``train/transition_graph.py``): the graph scores event
t from the state after event t-1 and never sees event t-1 itself, so the exported graph carries
the previous event id in one extra unit of its state.  The daemon and the offline scorer run it
unchanged and give the same verdicts.  The rule is learned only when the training sessions show
that transitions repeat (the count gate's Good–Turing condition, ``MAX_UNSEEN_SHARE``): where
most sessions bring a transition no other has, it would flag ordinary sessions.  Pure: numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from logwarden.errors import shown
from logwarden.model.count_gate import MAX_UNSEEN_SHARE, MIN_SESSIONS
from logwarden.model.tokens import END_ID, START_ID, UNKNOWN_ID

TRANSITION_PENALTY = 100.0
"""Nats added to the surprise of a transition no training session contains.

Far above any calibrated threshold (HDFS: 11–16 nats), so such an event alerts, and a score of 100 or
more reads as "unseen transition" in an alert; finite, so scores stay valid JSON."""


@dataclass(frozen=True)
class TransitionRule:
    """The transitions the training sessions contain, as (previous id, next id) pairs."""

    transitions: tuple[tuple[int, int], ...]
    penalty: float = TRANSITION_PENALTY

    def allowed(self, vocab_size: int) -> np.ndarray:
        """bool [vocab_size, vocab_size]: ``allowed[a, b]`` when b may follow a without the penalty.

        Everything may follow UNKNOWN: an unknown event alerts on its own, and the event after it
        must be judged by the model, not flagged a second time for following it.
        """
        allowed = np.zeros((vocab_size, vocab_size), bool)
        for previous, following in self.transitions:
            allowed[previous, following] = True
        allowed[UNKNOWN_ID, :] = True
        return allowed

    @cached_property
    def _known(self) -> frozenset[tuple[int, int]]:
        return frozenset(self.transitions)

    def unseen(self, session: np.ndarray, *, with_end: bool = True) -> int:
        """How many transitions of ``session`` (int event ids, START and END added) the rule penalises."""
        ids = [START_ID, *np.asarray(session, np.int64).tolist(), *([END_ID] if with_end else [])]
        known = self._known
        return sum(
            1 for pair in zip(ids, ids[1:], strict=False) if pair[0] != UNKNOWN_ID and pair not in known
        )

    def describe(self) -> dict[str, float | int]:
        """How many transitions the rule knows and its penalty, as ``train``, ``run --check`` and the
        daemon's ``started`` line report it: a score of 100 or more in an alert reads as this rule."""
        return {"transitions": len(self.transitions), "penalty": self.penalty}

    def to_dict(self) -> dict[str, Any]:
        """The ``transition_rule`` object of ``model.json``."""
        return {"penalty": self.penalty, "transitions": [list(pair) for pair in self.transitions]}

    @classmethod
    def from_dict(cls, raw: object, vocab_size: int) -> TransitionRule:
        """Parse ``model.json``'s ``transition_rule``; ValueError naming the key of a bad value."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"transition_rule must be an object, got {shown(raw)}")
        penalty = raw.get("penalty")
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not math.isfinite(penalty):
            raise ValueError(f"transition_rule.penalty must be a finite number, got {shown(penalty)}")
        if penalty <= 0:
            raise ValueError(f"transition_rule.penalty must be positive, got {shown(penalty)}")
        pairs = raw.get("transitions")
        if not isinstance(pairs, list) or not pairs:
            raise ValueError(f"transition_rule.transitions must be a non-empty list, got {shown(pairs)}")
        transitions = []
        for index, pair in enumerate(pairs):
            ok = (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab_size for i in pair)
            )
            if not ok:
                raise ValueError(
                    f"transition_rule.transitions[{index}] must be two event ids below {vocab_size}, "
                    f"got {shown(pair)}"
                )
            transitions.append((pair[0], pair[1]))
        return cls(tuple(transitions), float(penalty))


@dataclass(frozen=True)
class TransitionDecision:
    """The learned rule, or None, and the summary ``model.json`` records either way."""

    rule: TransitionRule | None
    summary: dict[str, Any]


def session_transitions(session: np.ndarray) -> set[tuple[int, int]]:
    """The (previous, next) id pairs of one session, START before it and END after it."""
    ids = [START_ID, *np.asarray(session, np.int64).tolist(), END_ID]
    return set(zip(ids, ids[1:], strict=False))


def learn_transition_rule(sessions: Sequence[np.ndarray]) -> TransitionDecision:
    """The rule over all training sessions (fit and held out), or why training declines it.

    Good and Turing: the share of training sessions containing a transition no other session
    contains estimates the share of new normal sessions that would contain an unseen one, and so
    the rule's false-alarm rate (HDFS: 9 of 4,855 sessions, 0.19 %).  Above ``MAX_UNSEEN_SHARE`` it
    stays off.
    """
    per_session = [session_transitions(s) for s in sessions if len(s)]
    occurrences: dict[tuple[int, int], int] = {}
    for transitions in per_session:
        for pair in transitions:
            occurrences[pair] = occurrences.get(pair, 0) + 1
    once = sum(1 for transitions in per_session if any(occurrences[p] == 1 for p in transitions))
    summary: dict[str, Any] = {
        "sessions": len(per_session),
        "transitions": len(occurrences),
        "sessions_with_a_unique_transition": once,
        "estimated_unseen_share": round(once / max(len(per_session), 1), 6),
    }
    if len(per_session) < MIN_SESSIONS:
        summary["off"] = f"fewer than {MIN_SESSIONS} training sessions to judge whether transitions repeat"
        return TransitionDecision(None, summary)
    if once > MAX_UNSEEN_SHARE * len(per_session):
        summary["off"] = (
            f"{once} of {len(per_session)} training sessions contain a transition no other has "
            f"(more than {MAX_UNSEEN_SHARE:.0%}): transitions do not repeat"
        )
        return TransitionDecision(None, summary)
    summary["penalty"] = TRANSITION_PENALTY
    return TransitionDecision(TransitionRule(tuple(sorted(occurrences))), summary)
