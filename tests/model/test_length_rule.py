"""The length rule: the shortest training session, when it is learned, its model.json form."""

from __future__ import annotations

import json

import numpy as np
import pytest
from model_metadata import model_metadata

from logwarden.model.contract import END_ID, START_ID, UNKNOWN_ID, ModelMetadata
from logwarden.model.count_gate import MAX_ALARM_SHARE
from logwarden.model.length_rule import LENGTH_PENALTY, MAX_MIN_EVENTS, LengthRule, learn_length_rule

A, B, C = 3, 4, 5  # event ids after the reserved START, END, UNKNOWN
LEAST_SESSIONS = round(1 / MAX_ALARM_SHARE) - 1
"""Fewest sessions whose bound 1 / (n + 1) is within MAX_ALARM_SHARE: 999."""


def metadata_raw(**changes: object) -> dict[str, object]:
    """A two-layer sequence model's model.json, parsed, with ``changes`` to its keys."""
    raw = json.loads(model_metadata(input_kind="sequences", parser=None, num_layers=2).to_json())
    raw.update(changes)
    return raw


def sessions_of_lengths(*shapes: tuple[int, int]) -> list[np.ndarray]:
    """``count`` sessions of each ``length`` (A B C A B C …), as int64 arrays."""
    return [
        np.resize(np.array([A, B, C], np.int64), length) for length, count in shapes for _ in range(count)
    ]


def test_rule_is_learned_at_the_shortest_training_session() -> None:
    """Sessions of 5 to 9 events: the rule alerts on sessions of fewer than 5, and records what it
    rests on (how many sessions are that short, the bound 1 / (n + 1))."""
    decision = learn_length_rule(sessions_of_lengths((5, 10), (7, 990), (9, 500)))
    assert decision.rule == LengthRule(5, LENGTH_PENALTY)
    assert decision.summary["shortest"] == 5
    assert decision.summary["sessions_at_shortest"] == 10
    assert decision.summary["estimated_false_alarm_share"] == pytest.approx(1 / 1501, abs=1e-6)


def test_rule_at_the_fewest_sessions_its_bound_allows_is_learned_and_one_fewer_is_declined() -> None:
    """999 sessions: a new one is the shortest with probability 1/1000, within 0.1 %; 998 are too few,
    and the summary says how many are needed."""
    assert learn_length_rule(sessions_of_lengths((4, LEAST_SESSIONS))).rule == LengthRule(4)
    decision = learn_length_rule(sessions_of_lengths((4, LEAST_SESSIONS - 1)))
    assert decision.rule is None
    assert f"{LEAST_SESSIONS} sessions are needed" in decision.summary["off"]


def test_rule_is_declined_when_a_training_session_holds_a_single_event() -> None:
    """Nothing ends shorter than one event: no rule, and the summary says why."""
    decision = learn_length_rule(sessions_of_lengths((1, 1), (6, 2000)))
    assert decision.rule is None
    assert "single event" in decision.summary["off"]


def test_empty_sessions_are_not_training_sessions() -> None:
    """Empty arrays (blank lines) neither count towards the bound nor set the shortest length."""
    decision = learn_length_rule([np.array([], np.int64), *sessions_of_lengths((3, 1500))])
    assert decision.rule == LengthRule(3)
    assert decision.summary["sessions"] == 1500


def test_a_shortest_session_beyond_what_the_graph_counts_gives_the_longest_countable_rule() -> None:
    """A float32 counts exactly to 2**24: a longer shortest session gives that weaker rule."""
    long_sessions = [np.broadcast_to(np.int64(A), (MAX_MIN_EVENTS + 5,))] * 1000
    assert learn_length_rule(long_sessions).rule == LengthRule(MAX_MIN_EVENTS)


def test_ends_early_counts_every_event_but_the_boundaries() -> None:
    """UNKNOWN events count (the log ran that long); START and END, if present, do not."""
    rule = LengthRule(3)
    assert rule.ends_early(np.array([A, B]))
    assert not rule.ends_early(np.array([A, UNKNOWN_ID, B]))
    assert rule.ends_early(np.array([START_ID, A, B, END_ID]))
    assert not rule.ends_early(np.array([A, B, C, A]))


def test_model_json_form_round_trips_through_the_metadata() -> None:
    """to_dict then from_dict gives the same rule, alone and inside model.json."""
    rule = LengthRule(13, 100.0)
    assert LengthRule.from_dict(rule.to_dict()) == rule
    assert ModelMetadata.from_dict(metadata_raw(length_rule=rule.to_dict())).length_rule == rule


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ([], "length_rule must be an object"),
        ({"penalty": float("nan"), "min_events": 13}, "length_rule.penalty"),
        ({"penalty": -1, "min_events": 13}, "length_rule.penalty must be positive"),
        ({"penalty": 100}, "length_rule.min_events"),
        ({"penalty": 100, "min_events": 1}, "length_rule.min_events"),
        ({"penalty": 100, "min_events": 13.0}, "length_rule.min_events"),
        ({"penalty": 100, "min_events": True}, "length_rule.min_events"),
        ({"penalty": 100, "min_events": "13"}, "length_rule.min_events"),
        ({"penalty": 100, "min_events": MAX_MIN_EVENTS + 1}, "length_rule.min_events"),
    ],
)
def test_damaged_model_json_rule_is_refused_naming_the_key(raw: object, names: str) -> None:
    """Each wrong value is a ValueError naming the key (the loader turns it into ModelLoadError)."""
    with pytest.raises(ValueError, match=names):
        LengthRule.from_dict(raw)


def test_model_json_length_rule_on_a_one_layer_model_is_refused_naming_num_layers() -> None:
    """The count travels in the second layer's state: a one-layer model.json with the rule is refused."""
    raw = metadata_raw(num_layers=1, length_rule=LengthRule(13).to_dict())
    with pytest.raises(ValueError, match="length_rule needs num_layers"):
        ModelMetadata.from_dict(raw)


def test_the_metadata_describes_each_rule_under_its_model_json_key_and_none_for_a_missing_one() -> None:
    """What ``run --check`` and the daemon's ``started`` line print: a model with the length rule alone."""
    metadata = ModelMetadata.from_dict(metadata_raw(length_rule=LengthRule(13).to_dict()))
    assert metadata.describe_rules() == {
        "transition_rule": None,
        "cooccurrence_rule": None,
        "length_rule": {"min_events": 13, "penalty": LENGTH_PENALTY},
    }
