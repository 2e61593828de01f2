"""The graph with the novelty rules: parity with PyTorch, the penalties only where training lacks it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
from logwarden.model.cooccurrence_rule import MAX_WATCHED_EVENTS, CooccurrenceRule, session_pairs
from logwarden.model.length_rule import LengthRule
from logwarden.model.runtime import OnnxStepModel
from logwarden.model.transition_rule import TransitionRule, session_transitions
from logwarden.train.export import export_model
from logwarden.train.fit import FitResult, TrainingOptions, fit
from logwarden.train.network import NextEventLSTM, TorchStepModel
from logwarden.train.rules_graph import RulesLSTM


@pytest.fixture(scope="module")
def fitted(hdfs_sessions: list[np.ndarray], small_options: TrainingOptions) -> FitResult:
    """The small network trained on real HDFS sessions."""
    vocab_size = int(max(s.max() for s in hdfs_sessions)) + 1
    return fit(hdfs_sessions, vocab_size, small_options)


@pytest.fixture(scope="module")
def rule(hdfs_sessions: list[np.ndarray]) -> TransitionRule:
    """The transitions of the same sessions, both kinds checked (whatever training would choose)."""
    return TransitionRule(tuple(sorted(set().union(*(session_transitions(s) for s in hdfs_sessions)))))


@pytest.fixture(scope="module")
def pairs(hdfs_sessions: list[np.ndarray], fitted: FitResult) -> CooccurrenceRule:
    """The pairs of events of the same sessions (a sample of 400: whether training would learn the rule
    from so few is ``learn_cooccurrence_rule``'s business, tested on its own)."""
    rule = CooccurrenceRule(tuple(sorted(set().union(*(session_pairs(s) for s in hdfs_sessions)))))
    assert 0 < len(rule.watched(fitted.network.vocab_size)) <= MAX_WATCHED_EVENTS
    return rule


@pytest.fixture(scope="module")
def length(hdfs_sessions: list[np.ndarray]) -> LengthRule:
    """The shortest of the same sessions (whether training would learn the rule from so few is
    ``learn_length_rule``'s business, tested on its own)."""
    return LengthRule(min(len(s) for s in hdfs_sessions))


def export_with(
    fitted: FitResult,
    out_dir: Path,
    *,
    rule: TransitionRule | None = None,
    pairs: CooccurrenceRule | None = None,
    length: LengthRule | None = None,
) -> Path:
    """The fitted network exported with the given rules."""
    keys = [str(i) for i in range(fitted.network.vocab_size - FIRST_EVENT_ID)]
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
        cooccurrence_rule=pairs,
        length_rule=length,
    )
    return out_dir


@pytest.fixture(scope="module")
def rule_model_dir(
    fitted: FitResult,
    rule: TransitionRule,
    pairs: CooccurrenceRule,
    length: LengthRule,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The fitted network exported with all three rules."""
    return export_with(
        fitted, tmp_path_factory.mktemp("rules") / "model", rule=rule, pairs=pairs, length=length
    )


@pytest.fixture(scope="module")
def rule_model(rule_model_dir: Path) -> OnnxStepModel:
    """The exported model with all three rules, loaded through the daemon's loader."""
    return OnnxStepModel.load(load_bundle(rule_model_dir))


def loaded_with(fitted: FitResult, tmp_path_factory: pytest.TempPathFactory, **rules: Any) -> OnnxStepModel:
    """The fitted network exported with ``rules`` (``export_with``'s keywords) into a fresh directory,
    loaded through the daemon's loader."""
    directory = tmp_path_factory.mktemp("_".join(rules)) / "model"
    return OnnxStepModel.load(load_bundle(export_with(fitted, directory, **rules)))


@pytest.fixture(scope="module")
def pairs_model(
    fitted: FitResult, pairs: CooccurrenceRule, tmp_path_factory: pytest.TempPathFactory
) -> OnnxStepModel:
    """The fitted network exported with the co-occurrence rule alone."""
    return loaded_with(fitted, tmp_path_factory, pairs=pairs)


@pytest.fixture(scope="module")
def transition_model(
    fitted: FitResult, rule: TransitionRule, tmp_path_factory: pytest.TempPathFactory
) -> OnnxStepModel:
    """The fitted network exported with the transition rule alone."""
    return loaded_with(fitted, tmp_path_factory, rule=rule)


@pytest.fixture(scope="module")
def length_model(
    fitted: FitResult, length: LengthRule, tmp_path_factory: pytest.TempPathFactory
) -> OnnxStepModel:
    """The fitted network exported with the length rule alone."""
    return loaded_with(fitted, tmp_path_factory, length=length)


def unmet_partner(pairs: CooccurrenceRule, vocab_size: int, session: np.ndarray) -> int:
    """An event that never met some event of ``session`` in training."""
    forbidden = pairs.forbidden(vocab_size)
    return next(e for e in range(FIRST_EVENT_ID, vocab_size) if forbidden[e, np.unique(session)].any())


def penalised_positions(pairs: CooccurrenceRule, vocab_size: int, ids: np.ndarray) -> list[int]:
    """Positions of ``ids`` whose event never met an event before it (the rule's definition, by hand)."""
    forbidden = pairs.forbidden(vocab_size)
    return [t for t in range(len(ids)) if any(forbidden[ids[t], ids[s]] for s in range(t))]


def unseen_after(model: OnnxStepModel, previous: int) -> int:
    """An event id that never follows ``previous`` in training."""
    allowed = model.metadata.transition_rule.allowed(model.metadata.vocab_size)  # type: ignore[union-attr]
    return next(e for e in range(FIRST_EVENT_ID, model.metadata.vocab_size) if not allowed[previous, e])


def surprises(model: object, ids: np.ndarray) -> np.ndarray:
    """[T] surprise of each event of one column of ids, from the state after START (fresh entity)."""
    h, c = model.initial_state(1)  # type: ignore[attr-defined]
    log_probs = model.run(ids[:, None], h, c).log_probs[:, 0, :]  # type: ignore[attr-defined]
    return -log_probs[np.arange(len(ids)), ids]


def surprises_in_three_calls(model: OnnxStepModel, ids: np.ndarray) -> np.ndarray:
    """``surprises`` with ``ids`` fed in three calls, the state carried between them (as the daemon
    scores an entity's messages)."""
    h, c = model.initial_state(1)
    split: list[float] = []
    for part in np.array_split(ids, 3):
        step = model.run(part[:, None], h, c)
        split.extend(-step.log_probs[np.arange(len(part)), 0, part])
        h, c = step.h, step.c
    return np.array(split)


def test_rule_model_state_is_one_unit_wider_and_its_rules_are_in_model_json(
    rule_model: OnnxStepModel,
    pairs_model: OnnxStepModel,
    length_model: OnnxStepModel,
    rule: TransitionRule,
    pairs: CooccurrenceRule,
    length: LengthRule,
    fitted: FitResult,
) -> None:
    """The metadata keeps the LSTM's hidden size, reports a state one wider (with any rule or all),
    and round-trips the rules."""
    for model in (rule_model, pairs_model, length_model):
        metadata = model.metadata
        assert metadata.hidden_size == fitted.network.hidden_size
        assert metadata.state_size == fitted.network.hidden_size + 1
        assert model.initial_h.shape == (metadata.num_layers, metadata.state_size)
    assert rule_model.metadata.transition_rule == rule
    assert rule_model.metadata.cooccurrence_rule == pairs
    assert rule_model.metadata.length_rule == length
    assert pairs_model.metadata.transition_rule is None
    assert pairs_model.metadata.length_rule is None
    assert length_model.metadata.cooccurrence_rule is None


def test_rule_graph_whole_sessions_onnx_matches_torch(
    fitted: FitResult,
    rule: TransitionRule,
    pairs: CooccurrenceRule,
    length: LengthRule,
    rule_model: OnnxStepModel,
    hdfs_sessions: list[np.ndarray],
) -> None:
    """One call over whole real sessions, two of them given an event that never met an earlier one and
    two cut short by END: onnxruntime gives the wrapped network's log_probs, h and c (the seen-events
    bits and the event counts included)."""
    ids = session_batch(hdfs_sessions, 16)
    vocab = fitted.network.vocab_size
    for column in (0, 5):
        ids[-2, column] = unmet_partner(pairs, vocab, ids[:-2, column])
    for column in (7, 9):
        ids[3:, column] = END_ID
    h, c = rule_model.zero_state(ids.shape[1])
    expected = torch_run(RulesLSTM(fitted.network, rule, pairs, length), ids, h, c)  # type: ignore[arg-type]
    actual = rule_model.run(ids, h, c)
    np.testing.assert_allclose(actual.log_probs, expected[0], atol=TOLERANCE)
    np.testing.assert_allclose(actual.h, expected[1], atol=TOLERANCE)
    np.testing.assert_allclose(actual.c, expected[2], atol=TOLERANCE)


def test_rule_graph_single_steps_match_one_call(
    rule_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """Fed one event at a time, carrying state (as the daemon does), the graph gives its one-call scores,
    an unseen transition's and an unmet pair's included: the previous event and the events seen so far
    travel in the state."""
    ids = session_batch(hdfs_sessions, 4)
    ids[3, 0] = unseen_after(rule_model, int(ids[2, 0]))
    metadata = rule_model.metadata
    ids[-1, 1] = unmet_partner(metadata.cooccurrence_rule, metadata.vocab_size, ids[:-1, 1])  # type: ignore[arg-type]
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
    """Every transition and every pair of a training session is in the rules, so its events score as
    the plain network's."""
    plain = TorchStepModel(fitted.network)
    for session in sorted(hdfs_sessions, key=len)[-5:]:
        ids = np.append(session, END_ID).astype(np.int64)
        np.testing.assert_allclose(surprises(rule_model, ids), surprises(plain, ids), atol=TOLERANCE)


def test_unseen_transition_costs_exactly_the_penalty_and_nothing_else(
    fitted: FitResult, rule: TransitionRule, transition_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """A training session with one event replaced so that two transitions are unseen: those two events
    (the replaced one, and the one after it) score penalty nats more than in the plain network, the others
    the same.  An UNKNOWN event in its place: only the UNKNOWN event itself, never the event after it."""
    allowed = rule.allowed(transition_model.metadata.vocab_size)
    session = next(s for s in sorted(hdfs_sessions, key=len, reverse=True) if len(s) > 6)
    position = 3
    before, after = int(session[position - 1]), int(session[position + 1])
    replacement = next(
        e
        for e in range(FIRST_EVENT_ID, transition_model.metadata.vocab_size)
        if not allowed[before, e] and not allowed[e, after]
    )
    ids = np.append(session, END_ID).astype(np.int64)
    ids[position] = replacement
    plain = TorchStepModel(fitted.network)
    difference = surprises(transition_model, ids) - surprises(plain, ids)
    expected = np.zeros(len(ids))
    expected[[position, position + 1]] = rule.penalty
    np.testing.assert_allclose(difference, expected, atol=1e-3)

    ids[position] = UNKNOWN_ID
    difference = surprises(transition_model, ids) - surprises(plain, ids)
    expected = np.zeros(len(ids))
    expected[position] = rule.penalty  # no training session holds UNKNOWN, so nothing leads to it
    np.testing.assert_allclose(difference, expected, atol=1e-3)


def test_an_event_after_one_it_never_met_costs_exactly_the_penalty_in_one_call_or_many(
    fitted: FitResult, pairs: CooccurrenceRule, pairs_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """A training session with an event it never met inserted, and the session's first event repeated
    after it: exactly the events the rule's definition names score penalty nats more than in the plain
    network, the others the same, in one call and split over three calls (state carried, as the daemon
    scores an entity's messages).  An UNKNOWN event costs nothing more."""
    vocab = pairs_model.metadata.vocab_size
    forbidden = pairs.forbidden(vocab)
    session = next(s for s in sorted(hdfs_sessions, key=len, reverse=True) if forbidden[:, s].any())
    cut = int(np.flatnonzero(forbidden[:, session].any(axis=0))[0]) + 1  # just after a watched event
    stranger = unmet_partner(pairs, vocab, session[:cut])
    ids = np.concatenate([session[:cut], [stranger], session[cut:], [session[0]], [END_ID]]).astype(np.int64)
    positions = penalised_positions(pairs, vocab, ids)
    assert cut in positions
    assert len(positions) == pairs.unseen(ids[:-1])
    plain = surprises(TorchStepModel(fitted.network), ids)
    expected = np.zeros(len(ids))
    expected[positions] = pairs.penalty
    np.testing.assert_allclose(surprises(pairs_model, ids) - plain, expected, atol=1e-3)

    np.testing.assert_allclose(surprises_in_three_calls(pairs_model, ids) - plain, expected, atol=1e-3)

    ids[cut] = UNKNOWN_ID
    expected = np.zeros(len(ids))
    expected[penalised_positions(pairs, vocab, ids)] = pairs.penalty
    np.testing.assert_allclose(surprises(pairs_model, ids) - plain_with(fitted, ids), expected, atol=1e-3)


def plain_with(fitted: FitResult, ids: np.ndarray) -> np.ndarray:
    """Surprises of ``ids`` under the plain network."""
    return surprises(TorchStepModel(fitted.network), ids)


def test_model_json_without_its_rules_is_refused_naming_the_sizes(
    rule_model_dir: Path, tmp_path: Path
) -> None:
    """Dropping the rules from a rule model's model.json leaves a state one unit too narrow for the
    graph: refused at load, naming hidden_size, not at the first event scored."""
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("model.onnx", METADATA_FILE):
        (copy / name).write_bytes((rule_model_dir / name).read_bytes())
    raw = json.loads((copy / METADATA_FILE).read_text(encoding="utf-8"))
    raw["transition_rule"] = None
    raw["cooccurrence_rule"] = None
    raw["length_rule"] = None
    raw[METADATA_DIGEST_KEY] = metadata_digest(raw)
    (copy / METADATA_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="hidden_size"):
        OnnxStepModel.load(load_bundle(copy))


def test_a_session_ending_shorter_than_every_training_session_costs_the_penalty_at_its_end_only(
    fitted: FitResult, length: LengthRule, length_model: OnnxStepModel, hdfs_sessions: list[np.ndarray]
) -> None:
    """A training session cut to one event fewer than the shortest, then END: END alone scores penalty
    nats more than in the plain network, in one call and split over calls (the count travels in the
    state).  Cut to exactly the shortest length, or ended after more, END costs nothing more; an
    UNKNOWN event counts as an event."""
    session = next(s for s in sorted(hdfs_sessions, key=len, reverse=True))
    cut = length.min_events - 1
    ids = np.append(session[:cut], END_ID).astype(np.int64)
    expected = np.zeros(len(ids))
    expected[-1] = length.penalty
    np.testing.assert_allclose(surprises(length_model, ids) - plain_with(fitted, ids), expected, atol=1e-3)
    assert length.ends_early(ids[:-1])

    np.testing.assert_allclose(
        surprises_in_three_calls(length_model, ids) - plain_with(fitted, ids), expected, atol=1e-3
    )

    for ended in (np.append(session[: cut + 1], END_ID), np.append(session, END_ID)):
        ended = ended.astype(np.int64)
        np.testing.assert_allclose(surprises(length_model, ended), plain_with(fitted, ended), atol=TOLERANCE)
        assert not length.ends_early(ended[:-1])
    padded = np.concatenate([session[:cut], [UNKNOWN_ID], [END_ID]]).astype(np.int64)
    assert surprises(length_model, padded)[-1] == pytest.approx(plain_with(fitted, padded)[-1], abs=1e-3)


def test_the_length_rule_needs_a_second_layer_to_count_in(length: LengthRule) -> None:
    """A one-layer network has no spare unit for the count: refused when the graph is built."""
    with pytest.raises(ValueError, match="one layer"):
        RulesLSTM(NextEventLSTM(vocab_size=8, num_layers=1), length_rule=length)
