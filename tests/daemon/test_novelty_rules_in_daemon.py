"""The daemon applies a model's novelty rules, carried in each entity's state, as the rules say."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from small_models import train_small_model
from test_count_gate_in_daemon import run_through_daemon, stream

from logwarden.model.bundle import load_bundle
from logwarden.model.cooccurrence_rule import CooccurrenceDecision, CooccurrenceRule, session_pairs
from logwarden.model.length_rule import LengthDecision, LengthRule
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.offline import LogScoringSummary, group_log_lines
from logwarden.synthetic import ENTITY_REGEX, generate_logs
from logwarden.train import pipeline


def rule_without_a_common_pair(sessions: Sequence[np.ndarray], vocab_size: int) -> CooccurrenceDecision:
    """The pairs of the training jobs, less the pair found together in the fewest jobs among those in at
    least a tenth of them (training declines a rule on these jobs, whose events all meet: the test
    needs one, and a pair common enough that the stream holds jobs on both sides of it)."""
    counts: dict[tuple[int, int], int] = {}
    for session in sessions:
        for pair in session_pairs(session):
            counts[pair] = counts.get(pair, 0) + 1
    common = [pair for pair, count in counts.items() if count >= len(sessions) / 10]
    dropped = min(common, key=lambda pair: (counts[pair], pair))
    rule = CooccurrenceRule(tuple(sorted(pair for pair in counts if pair != dropped)))
    return CooccurrenceDecision(rule, {"by_hand": f"pair {dropped} left out"})


def rule_at_a_common_length(sessions: Sequence[np.ndarray]) -> LengthDecision:
    """A length rule at the length a fifth of the training jobs fall short of (training declines the rule
    for 400 jobs, too few for its bound, and no normal job is shorter than the shortest: the test needs
    normal jobs on both sides of the length)."""
    length = int(np.quantile([len(s) for s in sessions], 0.2))
    return LengthDecision(LengthRule(length), {"by_hand": f"a fifth of the jobs are shorter than {length}"})


@pytest.fixture(scope="module")
def rules_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic model trained with those hand-made co-occurrence and length rules beside its
    transition rule."""
    training = generate_logs(seed=3, entities=400, anomaly_fraction=0.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "learn_cooccurrence_rule", rule_without_a_common_pair)
        patch.setattr(pipeline, "learn_length_rule", rule_at_a_common_length)
        return train_small_model(tmp_path_factory.mktemp("rules-model"), training.lines, ENTITY_REGEX, None)


def test_daemon_alerts_with_the_penalty_exactly_on_the_jobs_the_rules_flag(rules_model: Path) -> None:
    """60 interleaved jobs, 30 % anomalous, one event per message, all ended by a late record: the jobs
    the daemon alerts on with a score of at least the penalty are exactly those in which an event
    arrives after one it never met, or with a transition the transition rule lacks, or that end with
    fewer events than the length rule's, computed from the rules' lists alone; some are flagged by the
    co-occurrence rule alone, some by the length rule alone, and some jobs by none."""
    model = OnnxStepModel.load(load_bundle(rules_model))
    metadata = model.metadata
    pairs, transitions, length = metadata.cooccurrence_rule, metadata.transition_rule, metadata.length_rule
    assert pairs is not None and transitions is not None and length is not None
    lines = stream().lines
    sink = run_through_daemon(rules_model, lines)

    sessions = {
        e: np.asarray(ids, np.int64) for e, ids in group_log_lines(model, lines, LogScoringSummary()).items()
    }
    by_pairs = {entity for entity, ids in sessions.items() if pairs.unseen(ids)}
    by_transitions = {entity for entity, ids in sessions.items() if transitions.unseen(ids)}
    by_length = {entity for entity, ids in sessions.items() if length.ends_early(ids)}
    penalised = {alert["entity"] for alert in sink.alerts if alert["score"] >= pairs.penalty} - {"job_999999"}
    assert by_pairs - by_transitions - by_length, (
        "the stream must hold jobs only the co-occurrence rule flags"
    )
    assert by_length - by_transitions - by_pairs, "and jobs only the length rule flags"
    assert len(by_pairs | by_transitions | by_length) < len(sessions), "and jobs no rule flags"
    assert penalised == by_pairs | by_transitions | by_length
    ended = {alert["entity"]: alert for alert in sink.alerts if alert["template"] == "<END>"}
    assert by_length - by_transitions <= set(ended), "the length rule's alerts are at the session's end"
    for entity, alert in ended.items():
        assert alert["session_events"] == len(sessions[entity]), "and say how many events it held"
