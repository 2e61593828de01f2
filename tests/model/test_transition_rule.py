"""The transition rule: which transitions training shows, when it is learned, and its model.json form."""

from __future__ import annotations

import numpy as np
import pytest

from logwarden.model import contract
from logwarden.model.count_gate import MAX_ALARM_SHARE, MIN_SESSIONS
from logwarden.model.transition_rule import (
    TRANSITION_PENALTY,
    TransitionRule,
    learn_transition_rule,
    session_transitions,
)

A, B, C, D = 3, 4, 5, 6  # event ids after the reserved START, END, UNKNOWN
VOCAB = 7


def sessions(*shapes: tuple[list[int], int]) -> list[np.ndarray]:
    """``count`` copies of each session shape, as int64 arrays."""
    return [np.array(ids, np.int64) for ids, count in shapes for _ in range(count)]


def test_session_transitions_include_the_start_and_the_end() -> None:
    """A session A B yields START→A, A→B and B→END."""
    assert session_transitions(np.array([A, B])) == {(0, A), (A, B), (B, 1)}


def test_rule_is_learned_when_transitions_repeat_over_enough_sessions() -> None:
    """300 sessions of two shapes: every transition repeats, the rule lists them all."""
    decision = learn_transition_rule(sessions(([A, B, C], 150), ([A, C], 150)))
    assert decision.rule is not None
    assert set(decision.rule.transitions) == {(0, A), (A, B), (B, C), (C, 1), (A, C)}
    assert decision.summary["sessions_with_a_unique_boundary"] == 0
    assert decision.summary["sessions_with_a_unique_inner_transition"] == 0
    assert decision.summary["checks"] == ["boundaries", "inner"]
    assert decision.summary["penalty"] == TRANSITION_PENALTY
    assert decision.rule.boundaries and decision.rule.inner


SESSIONS = 3000
"""Enough sessions that MAX_ALARM_SHARE of them is a few (0.1 % of 3,000: 3)."""


def one_off_inner_transitions(count: int) -> list[np.ndarray]:
    """Sessions A X B with X = 10, 11, …: A→X and X→B no other session has, start and end ordinary."""
    return [np.array([A, 10 + i, B], np.int64) for i in range(count)]


def one_off_endings(count: int) -> list[np.ndarray]:
    """Sessions A X with X = 10, 11, …: the ending X→END (and A→X) no other session has."""
    return [np.array([A, 10 + i], np.int64) for i in range(count)]


def test_inner_transitions_are_not_checked_when_too_many_sessions_bring_one_of_their_own() -> None:
    """Over MAX_ALARM_SHARE of sessions with an inner transition no other has, boundaries all shared:
    the rule checks boundaries only, and lets any inner transition pass."""
    unique = int(MAX_ALARM_SHARE * SESSIONS) + 1
    decision = learn_transition_rule(
        sessions(([A, B], SESSIONS - unique)) + one_off_inner_transitions(unique)
    )
    assert decision.summary["sessions_with_a_unique_inner_transition"] == unique
    assert decision.summary["sessions_with_a_unique_boundary"] == 0
    assert decision.rule is not None
    assert decision.summary["checks"] == ["boundaries"]
    assert decision.rule.boundaries and not decision.rule.inner
    assert decision.rule.unseen(np.array([B, A, A, B])) == 1  # START→B only; B→A and A→A pass
    allowed = decision.rule.allowed(30)
    assert allowed[B, A] and allowed[A, A] and allowed[B, 1] and not allowed[0, B]


def test_rule_is_declined_when_neither_kind_of_transition_repeats() -> None:
    """Over MAX_ALARM_SHARE of sessions with a unique ending, and as many with a unique inner
    transition: no rule, and the summary says why."""
    unique = int(MAX_ALARM_SHARE * SESSIONS) + 1
    decision = learn_transition_rule(sessions(([A, B], SESSIONS - 2 * unique)) + one_off_endings(2 * unique))
    assert decision.summary["sessions_with_a_unique_boundary"] == 2 * unique
    assert decision.rule is None
    assert "transitions do not repeat" in decision.summary["off"]


def test_rule_at_the_share_limit_is_still_learned() -> None:
    """Exactly MAX_ALARM_SHARE of the sessions with a unique transition of each kind is within the limit."""
    unique = int(MAX_ALARM_SHARE * SESSIONS)
    decision = learn_transition_rule(
        sessions(([A, B], SESSIONS - unique)) + one_off_inner_transitions(unique)
    )
    assert decision.summary["sessions_with_a_unique_inner_transition"] == unique
    assert decision.rule is not None and decision.rule.inner


def test_rule_needs_enough_sessions_to_judge() -> None:
    """Fewer than MIN_SESSIONS sessions: no rule, whatever they hold."""
    decision = learn_transition_rule(sessions(([A, B], MIN_SESSIONS - 1)))
    assert decision.rule is None
    assert str(MIN_SESSIONS) in decision.summary["off"]


def test_everything_may_follow_an_unknown_event() -> None:
    """The event after UNKNOWN is never penalised: the unknown event alerts on its own."""
    rule = TransitionRule(((0, A), (A, 1)))
    allowed = rule.allowed(VOCAB)
    assert allowed[contract.UNKNOWN_ID].all()
    assert allowed[0, A] and allowed[A, 1] and not allowed[A, B]


def test_unseen_counts_the_penalised_transitions_of_a_session() -> None:
    """A B after a rule of START→A, A→END: A→B and B→END are unseen; without the end only A→B."""
    rule = TransitionRule(((0, A), (A, 1)))
    assert rule.unseen(np.array([A, B])) == 2
    assert rule.unseen(np.array([A, B]), with_end=False) == 1
    assert rule.unseen(np.array([A])) == 0


def test_unseen_skips_what_follows_an_unknown_event_as_the_graph_does() -> None:
    """A → UNKNOWN is unseen, UNKNOWN → B is not judged, B → END is unseen; and the count matches the
    allowed matrix the exported graph is built from."""
    rule = TransitionRule(((0, A), (A, B)))
    session = np.array([A, contract.UNKNOWN_ID, B])
    assert rule.unseen(session) == 2
    allowed = rule.allowed(VOCAB)
    ids = [0, A, contract.UNKNOWN_ID, B, 1]
    assert rule.unseen(session) == sum(not allowed[a, b] for a, b in zip(ids, ids[1:], strict=False))


def test_a_rule_checking_boundaries_only_allows_every_inner_transition() -> None:
    """boundaries only: START→B and B→END are judged against the list, A→C and C→A never."""
    rule = TransitionRule(((0, A), (A, 1)), boundaries=True, inner=False)
    allowed = rule.allowed(VOCAB)
    assert allowed[A, C] and allowed[C, A] and allowed[0, A] and allowed[A, 1]
    assert not allowed[0, B] and not allowed[B, 1]
    assert rule.unseen(np.array([A, C, A])) == 0
    assert rule.unseen(np.array([B, C])) == 2
    assert rule.describe()["checks"] == ["boundaries"]


@pytest.mark.parametrize(("boundaries", "inner"), [(True, True), (True, False), (False, True)])
def test_model_json_form_round_trips(boundaries: bool, inner: bool) -> None:
    """to_dict then from_dict gives the same rule, the kinds it checks included."""
    rule = TransitionRule(((0, A), (A, B), (B, 1)), 100.0, boundaries=boundaries, inner=inner)
    assert TransitionRule.from_dict(rule.to_dict(), VOCAB) == rule


def test_a_format_3_rule_without_its_kinds_checks_both() -> None:
    """model.json of format 3 had no boundaries/inner keys: its rules checked every transition."""
    rule = TransitionRule.from_dict({"penalty": 100, "transitions": [[0, A], [A, 1]]}, VOCAB)
    assert rule.boundaries and rule.inner


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ([], "transition_rule must be an object"),
        ({"penalty": float("nan"), "transitions": [[0, 3]]}, "transition_rule.penalty"),
        ({"penalty": True, "transitions": [[0, 3]]}, "transition_rule.penalty"),
        ({"penalty": -1, "transitions": [[0, 3]]}, "transition_rule.penalty must be positive"),
        ({"penalty": 100, "transitions": []}, "transition_rule.transitions must be a non-empty list"),
        ({"penalty": 100}, "transition_rule.transitions"),
        ({"penalty": 100, "transitions": [[0, 3], [3]]}, r"transition_rule.transitions\[1\]"),
        ({"penalty": 100, "transitions": [[0, VOCAB]]}, r"transition_rule.transitions\[0\]"),
        ({"penalty": 100, "transitions": [[0, -1]]}, r"transition_rule.transitions\[0\]"),
        ({"penalty": 100, "transitions": [[False, 3]]}, r"transition_rule.transitions\[0\]"),
        ({"penalty": 100, "transitions": [["0", 3]]}, r"transition_rule.transitions\[0\]"),
        ({"penalty": 100, "transitions": [[0, 3]], "inner": "yes"}, "transition_rule.inner"),
        ({"penalty": 100, "transitions": [[0, 3]], "boundaries": 1}, "transition_rule.boundaries"),
        (
            {"penalty": 100, "transitions": [[0, 3]], "boundaries": False, "inner": False},
            "transition_rule checks nothing",
        ),
    ],
)
def test_damaged_model_json_rule_is_refused_naming_the_key(raw: object, names: str) -> None:
    """Each wrong value is a ValueError naming the key (the loader turns it into ModelLoadError)."""
    with pytest.raises(ValueError, match=names):
        TransitionRule.from_dict(raw, VOCAB)
