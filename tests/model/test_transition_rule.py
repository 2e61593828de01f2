"""The transition rule: which transitions training shows, when it is learned, and its model.json form."""

from __future__ import annotations

import numpy as np
import pytest

from logwarden.model import contract
from logwarden.model.count_gate import MAX_UNSEEN_SHARE, MIN_SESSIONS
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
    assert decision.summary["sessions_with_a_unique_transition"] == 0
    assert decision.summary["penalty"] == TRANSITION_PENALTY


def test_rule_is_declined_when_too_many_sessions_bring_a_transition_of_their_own() -> None:
    """Over MAX_UNSEEN_SHARE of sessions with a transition no other has: no rule, and the summary says why."""
    unique = int(MAX_UNSEEN_SHARE * 300) + 1
    one_offs = [np.array([A, 10 + i], np.int64) for i in range(unique)]  # A→10+i: no other session has it
    decision = learn_transition_rule(sessions(([A, B, C], 300 - unique)) + one_offs)
    assert decision.summary["sessions_with_a_unique_transition"] == unique
    assert decision.rule is None
    assert "transitions do not repeat" in decision.summary["off"]


def test_rule_at_the_share_limit_is_still_learned() -> None:
    """Exactly MAX_UNSEEN_SHARE of the sessions with a unique transition is within the limit."""
    unique = int(MAX_UNSEEN_SHARE * 300)
    one_offs = [np.array([A, 10 + i], np.int64) for i in range(unique)]
    decision = learn_transition_rule(sessions(([A, B, C], 300 - unique)) + one_offs)
    assert decision.summary["sessions_with_a_unique_transition"] == unique
    assert decision.rule is not None


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


def test_model_json_form_round_trips() -> None:
    """to_dict then from_dict gives the same rule."""
    rule = TransitionRule(((0, A), (A, B), (B, 1)), 100.0)
    assert TransitionRule.from_dict(rule.to_dict(), VOCAB) == rule


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
    ],
)
def test_damaged_model_json_rule_is_refused_naming_the_key(raw: object, names: str) -> None:
    """Each wrong value is a ValueError naming the key (the loader turns it into ModelLoadError)."""
    with pytest.raises(ValueError, match=names):
        TransitionRule.from_dict(raw, VOCAB)
