"""score_sessions: order, UNKNOWN handling, END scoring and independence from batching."""

from __future__ import annotations

import numpy as np
import pytest

from logwarden.events.vocabulary import Vocabulary
from logwarden.model.contract import END_ID, FIRST_EVENT_ID, UNKNOWN_ID
from logwarden.model.count_gate import CountGate, count_profile, event_weights
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.session import SessionScore, score_sessions, surprise_of


class FixedSurpriseModel:
    """A stateless step model whose next-event distribution is the same at every step.

    The surprise of each id is then known by hand: ``surprise[id]`` nats.
    """

    def __init__(self, surprise: list[float]) -> None:
        probabilities = np.exp(-np.asarray(surprise, np.float64))
        self.log_probs = np.log(probabilities / probabilities.sum()).astype(np.float32)
        self.surprise = -self.log_probs

    def run(self, event_ids: np.ndarray, h: np.ndarray, c: np.ndarray) -> _Output:
        log_probs = np.broadcast_to(self.log_probs, (*event_ids.shape, len(self.log_probs))).copy()
        return _Output(log_probs, h, c)

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((1, batch, 1), np.float32), np.zeros((1, batch, 1), np.float32)


class _Output:
    def __init__(self, log_probs: np.ndarray, h: np.ndarray, c: np.ndarray) -> None:
        self.log_probs, self.h, self.c = log_probs, h, c


def _ids(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def test_surprise_of_picks_negative_log_prob_of_each_event() -> None:
    """surprise_of reads -log P of the given id from each row."""
    log_probs = np.log(np.array([[[0.5, 0.25, 0.25]], [[0.1, 0.1, 0.8]]], np.float64))
    np.testing.assert_allclose(
        surprise_of(log_probs, _ids(1, 2).reshape(2, 1)), [[np.log(4)], [-np.log(0.8)]]
    )


def test_score_sessions_fixed_model_score_is_largest_event_surprise() -> None:
    """With known per-id surprises the score is their maximum over events and END, at the right index."""
    model = FixedSurpriseModel([9.0, 1.0, 9.0, 2.0, 5.0, 3.0])
    e = model.surprise
    [verdict] = score_sessions(model, [_ids(3, 4, 5)], threshold=100.0)
    assert verdict.score == pytest.approx(float(e[4]))
    assert verdict.worst_index == 1
    assert verdict.length == 3
    assert not verdict.anomalous


def test_score_sessions_fixed_model_end_worst_reports_index_len() -> None:
    """When END is the most surprising step, worst_index equals the session length."""
    model = FixedSurpriseModel([9.0, 6.0, 9.0, 2.0, 3.0])
    [verdict] = score_sessions(model, [_ids(3, 4)], threshold=100.0)
    assert verdict.worst_index == 2
    assert verdict.score == pytest.approx(float(model.surprise[END_ID]))


def test_score_sessions_score_end_false_ignores_end() -> None:
    """With score_end=False only the events themselves count."""
    model = FixedSurpriseModel([9.0, 6.0, 9.0, 2.0, 3.0])
    [verdict] = score_sessions(model, [_ids(3, 4)], threshold=100.0, score_end=False)
    assert verdict.worst_index == 1
    assert verdict.score == pytest.approx(float(model.surprise[4]))


def test_score_sessions_equal_surprises_report_earliest_index() -> None:
    """Ties keep the first position, also across windows."""
    model = FixedSurpriseModel([9.0, 2.0, 9.0, 2.0])
    for window in (1, 2, 512):
        [verdict] = score_sessions(model, [_ids(3, 3, 3)], threshold=100.0, window=window)
        assert verdict.worst_index == 0


def test_score_sessions_empty_session_without_end_is_normal_zero() -> None:
    """An empty session with END not scored has nothing to score: score 0, not anomalous."""
    model = FixedSurpriseModel([9.0, 2.0, 9.0, 2.0])
    [verdict] = score_sessions(model, [_ids()], threshold=1.0, score_end=False)
    assert verdict == SessionScore(score=0.0, anomalous=False, worst_index=0, unknown_events=0, length=0)


def test_score_sessions_threshold_is_strict() -> None:
    """A score equal to the threshold is not anomalous; just above it is."""
    model = FixedSurpriseModel([9.0, 2.0, 9.0, 2.0])
    score = score_sessions(model, [_ids(3)], threshold=100.0)[0].score
    assert not score_sessions(model, [_ids(3)], threshold=score)[0].anomalous
    assert score_sessions(model, [_ids(3)], threshold=np.nextafter(score, -np.inf))[0].anomalous


def test_score_sessions_invalid_batch_size_raises_value_error() -> None:
    """A batch size below 1 is a caller error."""
    with pytest.raises(ValueError, match="batch_size"):
        score_sessions(FixedSurpriseModel([1.0, 1.0, 1.0]), [_ids(1)], 1.0, batch_size=0)


def test_score_sessions_mixed_lengths_keep_input_order(
    trained_model: OnnxStepModel, vocabulary: Vocabulary, normal_test_keys: list[list[str]]
) -> None:
    """Sessions sorted into length batches come back in input order, each as if scored alone."""
    cuts = [3, 12, 1, 7, 20, 5, 2, 9]
    sessions = [
        vocabulary.encode(keys[:cut]) for keys, cut in zip(normal_test_keys[: len(cuts)], cuts, strict=True)
    ]
    batched = score_sessions(trained_model, sessions, threshold=5.0, batch_size=3)
    alone = [score_sessions(trained_model, [s], threshold=5.0)[0] for s in sessions]
    assert [v.length for v in batched] == [len(s) for s in sessions]
    for together, single in zip(batched, alone, strict=True):
        assert together.score == pytest.approx(single.score, abs=1e-5)
        assert together.worst_index == single.worst_index


def test_score_sessions_unknown_event_forces_anomalous(
    trained_model: OnnxStepModel, vocabulary: Vocabulary, normal_test_keys: list[list[str]]
) -> None:
    """A session with an UNKNOWN event is anomalous even under an infinite threshold."""
    ids = vocabulary.encode(normal_test_keys[0])
    ids[2] = UNKNOWN_ID
    clean, unknown = score_sessions(
        trained_model, [vocabulary.encode(normal_test_keys[0]), ids], threshold=float("inf")
    )
    assert not clean.anomalous
    assert unknown.anomalous
    assert unknown.unknown_events == 1


def test_score_sessions_truncated_session_scores_above_complete(
    trained_model: OnnxStepModel, vocabulary: Vocabulary, normal_test_keys: list[list[str]]
) -> None:
    """A session cut in half is caught by its END surprise: it scores higher than the complete session."""
    for keys in normal_test_keys[:10]:
        complete = vocabulary.encode(keys)
        truncated = complete[: len(complete) // 2]
        full_score, cut_score = score_sessions(trained_model, [complete, truncated], threshold=float("inf"))
        assert cut_score.score > full_score.score
        assert cut_score.worst_index == len(truncated)


def test_score_sessions_batch_size_one_matches_batch_size_256(
    trained_model: OnnxStepModel, vocabulary: Vocabulary, normal_test_keys: list[list[str]]
) -> None:
    """Scores do not depend on how sessions are grouped into batches."""
    sessions = [vocabulary.encode(keys) for keys in normal_test_keys]
    sessions[5] = np.append(sessions[5], [FIRST_EVENT_ID, FIRST_EVENT_ID])
    one = score_sessions(trained_model, sessions, threshold=5.0, batch_size=1)
    many = score_sessions(trained_model, sessions, threshold=5.0, batch_size=256)
    np.testing.assert_allclose([v.score for v in one], [v.score for v in many], atol=1e-5)
    assert [v.worst_index for v in one] == [v.worst_index for v in many]


def test_score_sessions_small_window_matches_whole_session_run(
    trained_model: OnnxStepModel, vocabulary: Vocabulary, normal_test_keys: list[list[str]]
) -> None:
    """Running a batch a few steps at a time with state carried over gives the same verdicts."""
    sessions = [vocabulary.encode(keys) for keys in normal_test_keys]
    whole = score_sessions(trained_model, sessions, threshold=5.0)
    windowed = score_sessions(trained_model, sessions, threshold=5.0, window=3)
    np.testing.assert_allclose([v.score for v in whole], [v.score for v in windowed], atol=1e-5)
    assert [v.worst_index for v in whole] == [v.worst_index for v in windowed]


def test_score_sessions_padding_of_a_shorter_session_never_counts() -> None:
    """Scored beside a longer session, a short one is padded; those steps must not score it (with a
    stateful model its score would depend on which sessions share its batch)."""
    surprise = [1.0] * (FIRST_EVENT_ID + 3)
    surprise[END_ID] = 9.0
    short, _ = score_sessions(
        FixedSurpriseModel(surprise),
        [_ids(FIRST_EVENT_ID), _ids(FIRST_EVENT_ID, FIRST_EVENT_ID + 1, FIRST_EVENT_ID)],
        threshold=100.0,
        score_end=False,
    )
    assert short.score < 9.0 - 1e-3 and short.worst_index == 0


def _gate_of(threshold: float, *sessions: np.ndarray) -> CountGate:
    weights = event_weights(8)
    return CountGate(threshold, tuple(sorted(count_profile(s, weights) for s in sessions)))


def test_score_sessions_count_gate_lowers_the_bar_for_unseen_counts_only() -> None:
    """Two sessions with the same score between the gate's and the model's threshold: the one with
    counts no training session had is anomalous, the one with familiar counts is not."""
    model = FixedSurpriseModel([9.0, 1.0, 9.0, 2.0, 5.0, 3.0])
    score = float(model.surprise[4])
    gate = _gate_of(score - 0.5, _ids(3, 4, 5))
    familiar, unseen = score_sessions(
        model, [_ids(5, 4, 3), _ids(3, 4, 4, 5)], threshold=score + 1.0, count_gate=gate
    )
    assert familiar.score == unseen.score == pytest.approx(score)
    assert (familiar.unseen_counts, familiar.anomalous) == (False, False)
    assert (unseen.unseen_counts, unseen.anomalous) == (True, True)


def test_score_sessions_count_gate_needs_the_score_above_its_threshold() -> None:
    """Unseen counts alone are not an alert: the session must also exceed the gate's threshold."""
    model = FixedSurpriseModel([9.0, 1.0, 9.0, 2.0, 5.0, 3.0])
    score = float(model.surprise[4])
    [verdict] = score_sessions(
        model, [_ids(3, 4, 4, 5)], threshold=score + 1.0, count_gate=_gate_of(score + 0.5, _ids(3, 4, 5))
    )
    assert verdict.unseen_counts is True
    assert not verdict.anomalous


def test_score_sessions_without_a_gate_reports_no_count_verdict() -> None:
    """A model without a count gate leaves ``unseen_counts`` None (the JSON output omits it)."""
    model = FixedSurpriseModel([9.0, 1.0, 9.0, 2.0, 5.0, 3.0])
    [verdict] = score_sessions(model, [_ids(3, 4, 5)], threshold=100.0)
    assert verdict.unseen_counts is None
