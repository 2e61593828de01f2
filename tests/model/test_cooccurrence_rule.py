"""The co-occurrence rule: the pairs training shows together, when it is learned, its model.json form."""

from __future__ import annotations

import numpy as np
import pytest

from logwarden.model.contract import END_ID, START_ID, UNKNOWN_ID
from logwarden.model.cooccurrence_rule import (
    COOCCURRENCE_PENALTY,
    MAX_WATCHED_EVENTS,
    CooccurrenceRule,
    learn_cooccurrence_rule,
    session_pairs,
)
from logwarden.model.count_gate import MAX_ALARM_SHARE, MIN_SESSIONS

A, B, C, D = 3, 4, 5, 6  # event ids after the reserved START, END, UNKNOWN
VOCAB = 7
SESSIONS = 3000


def sessions(*shapes: tuple[list[int], int]) -> list[np.ndarray]:
    """``count`` copies of each session shape, as int64 arrays."""
    return [np.array(ids, np.int64) for ids, count in shapes for _ in range(count)]


def test_session_pairs_are_unordered_distinct_and_leave_out_reserved_ids() -> None:
    """B A B UNKNOWN C yields {A,B}, {A,C}, {B,C}, smaller id first; UNKNOWN meets nothing."""
    assert session_pairs([B, A, B, UNKNOWN_ID, C]) == {(A, B), (A, C), (B, C)}


def test_rule_is_learned_when_pairs_repeat_and_watches_the_events_that_never_met() -> None:
    """Two shapes, A B and C D: A and B never meet C or D, so all four are watched."""
    decision = learn_cooccurrence_rule(sessions(([A, B, A], 1500), ([C, D], 1500)), VOCAB)
    rule = decision.rule
    assert rule is not None, decision.summary
    assert rule.pairs == ((A, B), (C, D))
    assert rule.watched(VOCAB) == [A, B, C, D]
    assert decision.summary["sessions_with_a_unique_pair"] == 0
    assert decision.summary["penalty"] == COOCCURRENCE_PENALTY
    forbidden = rule.forbidden(VOCAB)
    assert forbidden[A, C] and forbidden[C, A] and not forbidden[A, B] and not forbidden[A, A]
    assert (
        not forbidden[UNKNOWN_ID].any() and not forbidden[:, END_ID].any() and not forbidden[START_ID].any()
    )


def test_rule_is_declined_when_too_many_sessions_hold_a_pair_of_their_own() -> None:
    """Over MAX_ALARM_SHARE of sessions with a pair no other has: no rule, and the summary says why."""
    unique = int(MAX_ALARM_SHARE * SESSIONS) + 1
    one_offs = [np.array([A, 10 + i], np.int64) for i in range(unique)]
    decision = learn_cooccurrence_rule(sessions(([A, B], SESSIONS - unique)) + one_offs, 10 + unique)
    assert decision.summary["sessions_with_a_unique_pair"] == unique
    assert decision.rule is None
    assert "pairs do not repeat" in decision.summary["off"]


def test_rule_at_the_share_limit_is_still_learned() -> None:
    """Exactly MAX_ALARM_SHARE of the sessions with a unique pair is within the limit."""
    unique = int(MAX_ALARM_SHARE * SESSIONS)
    one_offs = [np.array([A, 10 + i], np.int64) for i in range(unique)]
    decision = learn_cooccurrence_rule(sessions(([A, B], SESSIONS - unique)) + one_offs, 10 + unique)
    assert decision.rule is not None, decision.summary


def test_rule_needs_enough_sessions_to_judge() -> None:
    """Fewer than MIN_SESSIONS sessions: no rule, whatever they hold."""
    decision = learn_cooccurrence_rule(sessions(([A, B], MIN_SESSIONS - 2), ([C, D], 1)), VOCAB)
    assert decision.rule is None
    assert str(MIN_SESSIONS) in decision.summary["off"]


def test_rule_is_declined_when_every_pair_of_events_met() -> None:
    """Every session holds every event: the rule could never fire, so there is none."""
    decision = learn_cooccurrence_rule(sessions(([A, B, C, D], SESSIONS)), VOCAB)
    assert decision.rule is None
    assert "every pair" in decision.summary["off"]


def test_rule_is_declined_when_more_events_are_watched_than_the_state_holds() -> None:
    """Events that each come alone in their sessions never meet each other: past MAX_WATCHED_EVENTS of
    them, the graph's float cannot hold their set, so there is no rule."""
    events = MAX_WATCHED_EVENTS + 1
    shapes = [([A + i, A + i], SESSIONS // events) for i in range(events)]
    decision = learn_cooccurrence_rule(sessions(*shapes), A + events)
    assert decision.summary["watched_events"] == events
    assert decision.rule is None
    assert str(MAX_WATCHED_EVENTS) in decision.summary["off"]


def test_unseen_counts_each_event_that_arrives_after_one_it_never_met() -> None:
    """Rule of {A,B} and {C,D}: in A C B D, C (after A), B (after C) and D (after A, B) are counted;
    a repeat counts again; order within a pair does not matter; UNKNOWN neither counts nor is counted."""
    rule = CooccurrenceRule(((A, B), (C, D)))
    assert rule.unseen(np.array([A, B, A, B])) == 0
    assert rule.unseen(np.array([A, C, B, D])) == 3
    assert rule.unseen(np.array([C, A])) == rule.unseen(np.array([A, C])) == 1
    assert rule.unseen(np.array([A, C, C])) == 2
    assert rule.unseen(np.array([A, UNKNOWN_ID, B])) == 0


def test_model_json_form_round_trips() -> None:
    """to_dict then from_dict gives the same rule."""
    rule = CooccurrenceRule(((A, B), (C, D)), 100.0)
    assert CooccurrenceRule.from_dict(rule.to_dict(), VOCAB) == rule


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ([], "cooccurrence_rule must be an object"),
        ({"penalty": float("inf"), "pairs": [[3, 4]]}, "cooccurrence_rule.penalty"),
        ({"penalty": False, "pairs": [[3, 4]]}, "cooccurrence_rule.penalty"),
        ({"penalty": 0, "pairs": [[3, 4]]}, "cooccurrence_rule.penalty must be positive"),
        ({"penalty": 100}, "cooccurrence_rule.pairs must be a list"),
        ({"penalty": 100, "pairs": [[3, 4], [5]]}, r"cooccurrence_rule.pairs\[1\]"),
        ({"penalty": 100, "pairs": [[4, 3]]}, r"cooccurrence_rule.pairs\[0\]"),
        ({"penalty": 100, "pairs": [[3, 3]]}, r"cooccurrence_rule.pairs\[0\]"),
        ({"penalty": 100, "pairs": [[UNKNOWN_ID, 3]]}, r"cooccurrence_rule.pairs\[0\]"),
        ({"penalty": 100, "pairs": [[3, VOCAB]]}, r"cooccurrence_rule.pairs\[0\]"),
        ({"penalty": 100, "pairs": [[3, True]]}, r"cooccurrence_rule.pairs\[0\]"),
        ({"penalty": 100, "pairs": [["3", 4]]}, r"cooccurrence_rule.pairs\[0\]"),
    ],
)
def test_damaged_model_json_rule_is_refused_naming_the_key(raw: object, names: str) -> None:
    """Each wrong value is a ValueError naming the key (the loader turns it into ModelLoadError)."""
    with pytest.raises(ValueError, match=names):
        CooccurrenceRule.from_dict(raw, VOCAB)


def test_model_json_rule_watching_more_events_than_the_state_holds_is_refused() -> None:
    """A hand-edited pair list that leaves too many events apart is refused, naming the limit."""
    vocab = A + MAX_WATCHED_EVENTS + 1
    with pytest.raises(ValueError, match=f"at most {MAX_WATCHED_EVENTS}"):
        CooccurrenceRule.from_dict({"penalty": 100, "pairs": []}, vocab)


def test_learned_pairs_and_unique_count_match_counting_pair_by_pair_across_chunks() -> None:
    """9,000 random sessions (more than one block of the matrix products): the pairs and the number of
    sessions with a pair no other holds equal those counted from each session's pairs directly."""
    rng = np.random.default_rng(5)
    vocab = 200  # 19,701 possible pairs: some sessions hold one no other does
    drawn = [rng.choice(np.arange(A, vocab), size=int(rng.integers(1, 5))) for _ in range(9000)]
    drawn[17] = np.array([UNKNOWN_ID, A], np.int64)  # reserved ids meet nothing
    decision = learn_cooccurrence_rule(drawn, vocab)
    counted: dict[tuple[int, int], int] = {}
    for session in drawn:
        for pair in session_pairs(session):
            counted[pair] = counted.get(pair, 0) + 1
    once = sum(1 for s in drawn if any(counted[p] == 1 for p in session_pairs(s)))
    assert decision.summary["pairs"] == len(counted)
    assert decision.summary["sessions_with_a_unique_pair"] == once > 0
    assert decision.rule is None  # far more than 0.1 % of such sessions hold a pair of their own
