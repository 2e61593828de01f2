"""The rule breakdown ``eval`` reports: which rule flags how many normal and anomalous sessions."""

from __future__ import annotations

import pytest

from logwarden.scoring.rule_breakdown import rule_breakdown


def record(anomalous: bool, **fields: object) -> dict[str, object]:
    """A session record as ``score`` writes it, with a model that has the transition and length rules."""
    return {
        "anomalous": anomalous,
        "unknown_events": 0,
        "unseen_transitions": 0,
        "ended_early": False,
        **fields,
    }


def test_each_rule_counts_the_sessions_it_flags_by_label_and_a_session_may_break_several() -> None:
    """Five sessions: an unknown key and a short end (anomalous), an unseen transition (normal), one
    flagged by the threshold alone (normal), one passed (anomalous, a miss)."""
    records = [
        record(True, unknown_events=2, ended_early=True),
        record(True, unseen_transitions=1),
        record(True),
        record(False),
        record(False),
    ]
    labels = [True, False, False, True, False]
    assert rule_breakdown(records, labels) == {
        "unseen_key": {"normal": 0, "anomalous": 1},
        "transition": {"normal": 1, "anomalous": 0},
        "length": {"normal": 0, "anomalous": 1},
        "any_rule": {"normal": 1, "anomalous": 1},
        "threshold_alone": {"normal": 1, "anomalous": 0},
    }


def test_a_rule_the_model_lacks_is_left_out_and_the_unknown_key_rule_is_always_there() -> None:
    """Records of a model with no rules hold only ``unknown_events``: the report names no other rule."""
    report = rule_breakdown([{"anomalous": False, "unknown_events": 0}], [False])
    assert list(report) == ["unseen_key", "any_rule", "threshold_alone"]


def test_records_and_labels_of_different_lengths_are_refused() -> None:
    """A label per record, or the counts would belong to the wrong sessions."""
    with pytest.raises(ValueError, match="2 records but 1 labels"):
        rule_breakdown([record(False), record(False)], [False])
