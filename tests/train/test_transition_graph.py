"""The graph with the transition rule: parity with PyTorch, the penalty only where training lacks it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_export import TOLERANCE, session_batch, torch_run

from logwarden.errors import ModelLoadError
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import (
    END_ID,
    FIRST_EVENT_ID,
    METADATA_DIGEST_KEY,
    METADATA_FILE,
    UNKNOWN_ID,
    metadata_digest,
)
from logwarden.model.runtime import OnnxStepModel
from logwarden.model.transition_rule import TransitionRule, learn_transition_rule
from logwarden.train.export import export_model
from logwarden.train.fit import FitResult, TrainingOptions, fit
from logwarden.train.network import TorchStepModel
from logwarden.train.transition_graph import TransitionRuleLSTM


@pytest.fixture(scope="module")
def fitted(hdfs_sessions: list[np.ndarray], small_options: TrainingOptions) -> FitResult:
    """The small network trained on real HDFS sessions."""
    vocab_size = int(max(s.max() for s in hdfs_sessions)) + 1
    return fit(hdfs_sessions, vocab_size, small_options)


@pytest.fixture(scope="module")
def rule(hdfs_sessions: list[np.ndarray]) -> TransitionRule:
    """The rule learned from the same sessions (HDFS: transitions repeat, so it is learned)."""
    decision = learn_transition_rule(hdfs_sessions)
    assert decision.rule is not None, decision.summary
    return decision.rule


@pytest.fixture(scope="module")
def rule_model_dir(fitted: FitResult, rule: TransitionRule, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fitted network exported with the rule."""
    keys = [str(i) for i in range(fitted.network.vocab_size - FIRST_EVENT_ID)]
    out_dir = tmp_path_factory.mktemp("rule") / "model"
    export_model(
        fitted.network,
        out_dir,
        input_kind="sequences",
        vocabulary=keys,
        templates=keys,
        threshold=10.0,
        threshold_method="fixed",
        training={},
        transition_rule=rule,
    )
    return out_dir


@pytest.fixture(scope="module")
def rule_model(rule_model_dir: Path) -> OnnxStepModel:
    """The exported rule model, loaded through the daemon's loader."""
    return OnnxStepModel.load(load_bundle(rule_model_dir))


def unseen_after(model: OnnxStepModel, previous: int) -> int:
    """An event id that never follows ``previous`` in training."""
    allowed = model.metadata.transition_rule.allowed(model.metadata.vocab_size)  # type: ignore[union-attr]
    return next(e for e in range(FIRST_EVENT_ID, model.metadata.vocab_size) if not allowed[previous, e])


def surprises(model: object, ids: np.ndarray) -> np.ndarray:
    """[T] surprise of each event of one column of ids, from the state after START (fresh entity)."""
    h, c = model.initial_state(1)  # type: ignore[attr-defined]
    log_probs = model.run(ids[:, None], h, c).log_probs[:, 0, :]  # type: ignore[attr-defined]
    return -log_probs[np.arange(len(ids)), ids]


def test_rule_model_state_is_one_unit_wider_and_its_rule_is_in_model_json(
    rule_model: OnnxStepModel, rule: TransitionRule, fitted: FitResult
) -> None:
    """The metadata keeps the LSTM's hidden size, reports a state one wider, and round-trips the rule."""
    metadata = rule_model.metadata
    assert metadata.hidden_size == fitted.network.hidden_size
    assert metadata.state_size == fitted.network.hidden_size + 1
    assert rule_model.initial_h.shape == (metadata.num_layers, metadata.state_size)
    assert metadata.transition_rule == rule


def test_rule_graph_whole_sessions_onnx_matches_torch(
    fitted: FitResult, rule: TransitionRule, rule_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """One call over whole real sessions: onnxruntime gives the wrapped network's log_probs, h and c."""
    ids = session_batch(hdfs_sessions, 16)
    h, c = rule_model.zero_state(ids.shape[1])
    expected = torch_run(TransitionRuleLSTM(fitted.network, rule), ids, h, c)  # type: ignore[arg-type]
    actual = rule_model.run(ids, h, c)
    np.testing.assert_allclose(actual.log_probs, expected[0], atol=TOLERANCE)
    np.testing.assert_allclose(actual.h, expected[1], atol=TOLERANCE)
    np.testing.assert_allclose(actual.c, expected[2], atol=TOLERANCE)


def test_rule_graph_single_steps_match_one_call(
    rule_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """Fed one event at a time, carrying state (as the daemon does), the graph gives its one-call scores,
    an unseen transition's included: the previous event travels in the state."""
    ids = session_batch(hdfs_sessions, 4)
    ids[3, 0] = unseen_after(rule_model, int(ids[2, 0]))
    h, c = rule_model.zero_state(ids.shape[1])
    whole = rule_model.run(ids, h, c)
    for t in range(ids.shape[0]):
        step = rule_model.run(ids[t : t + 1], h, c)
        np.testing.assert_allclose(step.log_probs[0], whole.log_probs[t], atol=TOLERANCE)
        h, c = step.h, step.c
    np.testing.assert_allclose(h, whole.h, atol=TOLERANCE)


def test_rule_changes_no_score_of_a_training_session(
    fitted: FitResult, rule_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """Every transition of a training session is in the rule, so its events score as the plain network's."""
    plain = TorchStepModel(fitted.network)
    for session in sorted(hdfs_sessions, key=len)[-5:]:
        ids = np.append(session, END_ID).astype(np.int64)
        np.testing.assert_allclose(surprises(rule_model, ids), surprises(plain, ids), atol=TOLERANCE)


def test_unseen_transition_costs_exactly_the_penalty_and_nothing_else(
    fitted: FitResult, rule: TransitionRule, rule_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """A training session with one event replaced so that two transitions are unseen: those two events
    (the replaced one, and the one after it) score penalty nats more than in the plain network, the others
    the same.  An UNKNOWN event in its place: only the UNKNOWN event itself, never the event after it."""
    allowed = rule.allowed(rule_model.metadata.vocab_size)
    session = next(s for s in sorted(hdfs_sessions, key=len, reverse=True) if len(s) > 6)
    position = 3
    before, after = int(session[position - 1]), int(session[position + 1])
    replacement = next(
        e
        for e in range(FIRST_EVENT_ID, rule_model.metadata.vocab_size)
        if not allowed[before, e] and not allowed[e, after]
    )
    ids = np.append(session, END_ID).astype(np.int64)
    ids[position] = replacement
    plain = TorchStepModel(fitted.network)
    difference = surprises(rule_model, ids) - surprises(plain, ids)
    expected = np.zeros(len(ids))
    expected[[position, position + 1]] = rule.penalty
    np.testing.assert_allclose(difference, expected, atol=1e-3)

    ids[position] = UNKNOWN_ID
    difference = surprises(rule_model, ids) - surprises(plain, ids)
    expected = np.zeros(len(ids))
    expected[position] = rule.penalty  # no training session holds UNKNOWN, so nothing leads to it
    np.testing.assert_allclose(difference, expected, atol=1e-3)


def test_model_json_without_its_rule_is_refused_naming_the_sizes(
    rule_model_dir: Path, tmp_path: Path
) -> None:
    """Dropping transition_rule from a rule model's model.json leaves a state one unit too narrow for the
    graph: refused at load, naming hidden_size, not at the first event scored."""
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("model.onnx", METADATA_FILE):
        (copy / name).write_bytes((rule_model_dir / name).read_bytes())
    raw = json.loads((copy / METADATA_FILE).read_text(encoding="utf-8"))
    raw["transition_rule"] = None
    raw[METADATA_DIGEST_KEY] = metadata_digest(raw)
    (copy / METADATA_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="hidden_size"):
        OnnxStepModel.load(load_bundle(copy))
