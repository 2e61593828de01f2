"""The daemon applies a model's transition rule, carried in each entity's state, as the rule itself says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_count_gate_in_daemon import run_through_daemon, stream

from logwarden.model.bundle import load_bundle
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.offline import LogScoringSummary, group_log_lines


def test_daemon_alerts_with_the_penalty_exactly_on_the_jobs_whose_transitions_training_lacks(
    synthetic_model: Path,
) -> None:
    """60 interleaved jobs, 30 % anomalous (missing, repeated and swapped steps, early ends), one event per
    message, all ended by a late record: the jobs the daemon alerts on with a score of at least the
    rule's penalty are exactly those with a transition (START and END included) that the model's rule
    lacks, computed from the rule's list alone; and every job without one stays below the penalty.  (The
    closing record's line fits no template: an unknown event, which alerts anyway.)"""
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    rule = model.metadata.transition_rule
    assert rule is not None, "the synthetic jobs repeat their transitions, so training learns the rule"
    lines = stream().lines
    sink = run_through_daemon(synthetic_model, lines)

    sessions = group_log_lines(model, lines, LogScoringSummary())
    expected = {entity for entity, ids in sessions.items() if rule.unseen(np.asarray(ids, np.int64))}
    penalised = {alert["entity"] for alert in sink.alerts if alert["score"] >= rule.penalty} - {"job_999999"}
    assert expected and len(expected) < len(sessions), "the stream must hold jobs on both sides"
    assert penalised == expected
