"""The transition rule: an event that never followed its predecessor in any training session alerts.

The LSTM gives such an event a probability learned by generalisation, and how low it comes out
depends on the training draw: on HDFS, three seeds in ten give blocks that stop early a surprise
below their own threshold.  The transitions themselves are a fact of the training data, the same
for every draw, so the rule makes detection stand on them: ``TRANSITION_PENALTY`` nats are added to
the surprise of every transition that no training session contains, which puts it far above any
threshold.

Transitions come in two kinds, each checked only where the training sessions show that it repeats
(Good and Turing's estimate, ``MAX_ALARM_SHARE``): *boundaries*, how a session starts and ends
(START → first event, last event → END), and *inner* transitions, one event → the next.  On HDFS
2 of 4,855 training sessions have a boundary no other has, 7 an inner transition no other has
(0.14 %, above the 0.1 % bound), so an HDFS model checks boundaries only: a block whose log stops
after an event no training block ended with alerts.

It lives in the ONNX graph, not beside it (``train/rules_graph.py``): the graph scores event t from
the state after event t-1 and never sees event t-1 itself, so the exported graph carries the
previous event id in one extra unit of its state.  The daemon and the offline scorer run it
unchanged and give the same verdicts.  Pure: numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from logwarden.errors import shown
from logwarden.model.count_gate import MAX_ALARM_SHARE, MIN_SESSIONS
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
    boundaries: bool = True
    """Whether START → first event and last event → END are checked."""
    inner: bool = True
    """Whether one event → the next is checked."""

    def checks(self, previous: int, following: int) -> bool:
        """Whether the rule judges the transition ``previous`` → ``following`` at all."""
        if previous == UNKNOWN_ID:
            return False
        return self.boundaries if (previous == START_ID or following == END_ID) else self.inner

    def allowed(self, vocab_size: int) -> np.ndarray:
        """bool [vocab_size, vocab_size]: ``allowed[a, b]`` when b may follow a without the penalty.

        Everything may follow UNKNOWN: an unknown event alerts on its own, and the event after it
        must be judged by the model, not flagged a second time for following it.  A kind of
        transition the rule does not check (``boundaries``, ``inner``) is allowed throughout.
        """
        allowed = np.zeros((vocab_size, vocab_size), bool)
        for previous, following in self.transitions:
            allowed[previous, following] = True
        allowed[UNKNOWN_ID, :] = True
        if not self.boundaries:
            allowed[START_ID, :] = True
            allowed[:, END_ID] = True
        if not self.inner:
            inner = np.ones((vocab_size, vocab_size), bool)
            inner[START_ID, :] = False
            inner[:, END_ID] = False
            allowed |= inner
        return allowed

    @cached_property
    def _known(self) -> frozenset[tuple[int, int]]:
        return frozenset(self.transitions)

    def unseen(self, session: np.ndarray, *, with_end: bool = True) -> int:
        """How many transitions of ``session`` (int event ids, START and END added) the rule penalises."""
        ids = [START_ID, *np.asarray(session, np.int64).tolist(), *([END_ID] if with_end else [])]
        known = self._known
        return sum(1 for pair in zip(ids, ids[1:], strict=False) if self.checks(*pair) and pair not in known)

    def describe(self) -> dict[str, Any]:
        """How many transitions the rule knows, what it checks and its penalty, as ``train``,
        ``run --check`` and the daemon's ``started`` line report it."""
        return {
            "transitions": len(self.transitions),
            "checks": [kind for kind, on in (("boundaries", self.boundaries), ("inner", self.inner)) if on],
            "penalty": self.penalty,
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``transition_rule`` object of ``model.json``."""
        return {
            "penalty": self.penalty,
            "transitions": [list(pair) for pair in self.transitions],
            "boundaries": self.boundaries,
            "inner": self.inner,
        }

    @classmethod
    def from_dict(cls, raw: object, vocab_size: int) -> TransitionRule:
        """Parse ``model.json``'s ``transition_rule``; ValueError naming the key of a bad value."""
        raw = rule_object(raw, "transition_rule")
        penalty = rule_penalty(raw, "transition_rule")
        pairs = raw.get("transitions")
        if not isinstance(pairs, list) or not pairs:
            raise ValueError(f"transition_rule.transitions must be a non-empty list, got {shown(pairs)}")
        transitions = []
        for index, pair in enumerate(pairs):
            if not is_id_pair(pair, 0, vocab_size):
                raise ValueError(
                    f"transition_rule.transitions[{index}] must be two event ids below {vocab_size}, "
                    f"got {shown(pair)}"
                )
            transitions.append((pair[0], pair[1]))
        checked = []
        for key in ("boundaries", "inner"):  # absent in format 3, whose rules checked both
            value = raw.get(key, True)
            if not isinstance(value, bool):
                raise ValueError(f"transition_rule.{key} must be true or false, got {shown(value)}")
            checked.append(value)
        if not any(checked):
            raise ValueError("transition_rule checks nothing: boundaries and inner are both false")
        return cls(tuple(transitions), penalty, boundaries=checked[0], inner=checked[1])


def rule_object(raw: object, name: str) -> Mapping[str, Any]:
    """``model.json``'s object of the rule ``name``; ValueError when it is not one."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{name} must be an object, got {shown(raw)}")
    return raw


def is_id_pair(value: object, low: int, high: int) -> bool:
    """Whether ``value`` (from ``model.json``) is a list of two int event ids in [low, high)."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) and low <= i < high for i in value)
    )


def rule_penalty(raw: Mapping[str, Any], name: str) -> float:
    """The positive, finite ``penalty`` of the rule ``name``; ValueError naming ``name.penalty``."""
    penalty = raw.get("penalty")
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not math.isfinite(penalty):
        raise ValueError(f"{name}.penalty must be a finite number, got {shown(penalty)}")
    if penalty <= 0:
        raise ValueError(f"{name}.penalty must be positive, got {shown(penalty)}")
    return float(penalty)


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

    Good and Turing, for each kind of transition: the share of training sessions containing a
    boundary (or an inner transition) that no other session contains estimates the share of new
    normal sessions that would contain an unseen one, and so what checking that kind would cost
    (HDFS: boundaries 2 of 4,855 sessions, inner transitions 7, 0.14 %).  A kind above
    ``MAX_ALARM_SHARE`` is not checked; with neither kind left there is no rule.
    """
    per_session = [session_transitions(s) for s in sessions if len(s)]
    occurrences: dict[tuple[int, int], int] = {}
    for transitions in per_session:
        for pair in transitions:
            occurrences[pair] = occurrences.get(pair, 0) + 1

    def is_boundary(pair: tuple[int, int]) -> bool:
        return pair[0] == START_ID or pair[1] == END_ID

    unique_boundary = sum(1 for ts in per_session if any(occurrences[p] == 1 and is_boundary(p) for p in ts))
    unique_inner = sum(1 for ts in per_session if any(occurrences[p] == 1 and not is_boundary(p) for p in ts))
    count = max(len(per_session), 1)
    summary: dict[str, Any] = {
        "sessions": len(per_session),
        "transitions": len(occurrences),
        "sessions_with_a_unique_boundary": unique_boundary,
        "sessions_with_a_unique_inner_transition": unique_inner,
        "estimated_unseen_share": {
            "boundaries": round(unique_boundary / count, 6),
            "inner": round(unique_inner / count, 6),
        },
    }
    if len(per_session) < MIN_SESSIONS:
        summary["off"] = f"fewer than {MIN_SESSIONS} training sessions to judge whether transitions repeat"
        return TransitionDecision(None, summary)
    limit = MAX_ALARM_SHARE * len(per_session)
    boundaries, inner = unique_boundary <= limit, unique_inner <= limit
    if not (boundaries or inner):
        summary["off"] = (
            f"{unique_boundary} of {len(per_session)} training sessions have a boundary and "
            f"{unique_inner} an inner transition no other has (more than {MAX_ALARM_SHARE:.1%}): "
            "transitions do not repeat"
        )
        return TransitionDecision(None, summary)
    summary["checks"] = [kind for kind, on in (("boundaries", boundaries), ("inner", inner)) if on]
    summary["penalty"] = TRANSITION_PENALTY
    return TransitionDecision(
        TransitionRule(tuple(sorted(occurrences)), boundaries=boundaries, inner=inner), summary
    )
