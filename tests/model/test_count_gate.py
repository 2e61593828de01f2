"""The count gate: its multiset hash, when training learns or declines it, and how model.json keeps it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from logwarden.model.count_gate import (
    GATE_MARGIN,
    MIN_SESSIONS,
    CountGate,
    count_profile,
    count_profiles,
    event_weights,
    learn_count_gate,
)

VOCAB = 8


def _ids(*events: int) -> np.ndarray:
    return np.array(events, np.int64)


def test_profile_depends_on_counts_not_order() -> None:
    """Reordered events give the same hash; one event more or one swapped for another does not."""
    weights = event_weights(VOCAB)
    base = count_profile(_ids(3, 4, 4, 5), weights)
    assert count_profile(_ids(5, 4, 3, 4), weights) == base
    assert count_profile(_ids(3, 4, 4, 5, 5), weights) != base
    assert count_profile(_ids(3, 4, 5, 5), weights) != base


def test_profile_can_be_built_one_event_at_a_time_with_wraparound() -> None:
    """The daemon adds one weight per event modulo 2**64; the sum of the whole session is the same,
    and adding past 2**64 neither warns nor fails."""
    weights = event_weights(VOCAB)
    session = _ids(*([7] * 50 + [3, 6, 6]))
    running = np.zeros(1, np.uint64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for event in session.tolist():
            running = np.add(running, weights[[event]])
    assert int(running[0]) == count_profile(session, weights)


def test_weights_of_a_smaller_vocabulary_are_a_prefix() -> None:
    """The offline scorer may size the weights by the largest id it sees; the daemon by the model."""
    assert event_weights(5).tolist() == event_weights(VOCAB)[:5].tolist()
    assert len(set(event_weights(VOCAB).tolist())) == VOCAB


def _gate(*sessions: np.ndarray, threshold: float = 5.0) -> CountGate:
    profiles = count_profiles(sessions, event_weights(VOCAB))
    return CountGate(threshold, tuple(sorted(int(p) for p in profiles)))


def test_gate_flags_unseen_counts_above_its_threshold_only() -> None:
    """Seen counts never flag; unseen ones flag above the threshold; a NaN surprise never flags."""
    gate = _gate(_ids(3, 4, 5))
    weights = event_weights(VOCAB)
    seen, unseen = count_profile(_ids(5, 4, 3), weights), count_profile(_ids(3, 4, 4, 5), weights)
    profiles = np.array([seen, unseen, unseen, unseen], np.uint64)
    surprise = np.array([9.0, 9.0, 4.0, np.nan])
    assert gate.flags(profiles, surprise).tolist() == [False, True, False, False]


def test_gate_survives_model_json_round_trip_with_64_bit_hashes() -> None:
    """Hashes above 2**63 come back exact (written as hex, not as JSON numbers)."""
    gate = CountGate(7.25, (1, 2**63 + 5, 2**64 - 1))
    raw = gate.to_dict()
    assert raw["profiles"][-1] == "ffffffffffffffff"
    assert CountGate.from_dict(raw) == gate


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("x", "count_gate must be an object"),
        ({"threshold": "1", "profiles": []}, "count_gate.threshold"),
        ({"threshold": float("nan"), "profiles": []}, "count_gate.threshold"),
        ({"threshold": True, "profiles": []}, "count_gate.threshold"),
        ({"threshold": 1.0, "profiles": "00"}, "count_gate.profiles must be a list"),
        ({"threshold": 1.0, "profiles": [17]}, r"count_gate.profiles\[0\]"),
        ({"threshold": 1.0, "profiles": ["abc"]}, r"count_gate.profiles\[0\]"),
        ({"threshold": 1.0, "profiles": ["0" * 15 + "g"]}, r"count_gate.profiles\[0\]"),
        ({"threshold": 1.0, "profiles": ["0x" + "0" * 14]}, r"count_gate.profiles\[0\]"),
        ({"threshold": 1.0, "profiles": ["+" + "0" * 15]}, r"count_gate.profiles\[0\]"),
        ({"threshold": 1.0, "profiles": ["0" * 15 + "A"]}, r"count_gate.profiles\[0\]"),
    ],
)
def test_bad_count_gate_is_refused_naming_the_key(raw: object, key: str) -> None:
    """A damaged ``count_gate`` is a ValueError naming the key, which the loader reports with the file."""
    with pytest.raises(ValueError, match=key):
        CountGate.from_dict(raw)


def _repeating_sessions(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Sessions drawn from three count combinations, shuffled: counts repeat, order varies."""
    shapes = [_ids(3, 4, 4, 5), _ids(3, 6, 5), _ids(3, 4, 6, 6, 5)]
    return [rng.permutation(shapes[i % 3]) for i in range(count)]


def test_gate_is_learned_when_training_counts_repeat() -> None:
    """300 sessions of three combinations and one of its own (1 in 301 unique, under 1 %): a gate at
    the held-out max + margin holding the combinations of fit and held-out sessions alike."""
    rng = np.random.default_rng(0)
    fit = _repeating_sessions(200, rng)
    holdout = [*_repeating_sessions(100, rng), _ids(3, 7, 5)]
    decision = learn_count_gate(fit, holdout, 4.0, VOCAB)
    assert decision.gate is not None
    assert decision.gate.threshold == pytest.approx(4.0 + GATE_MARGIN)
    assert len(decision.gate.profiles) == 4
    assert decision.summary["sessions_with_a_unique_profile"] == 1
    assert decision.summary["holdout_unseen_counts"] == 1


def test_gate_is_declined_when_more_than_one_percent_of_sessions_have_unique_counts() -> None:
    """Four unique combinations among 304 sessions (1.3 %): unseen counts would be ordinary, no gate.
    The same four among 404 (0.99 %) are few enough."""
    rng = np.random.default_rng(3)
    unique = [_ids(3, 7, 5), _ids(3, 7, 7, 5), _ids(3, 7, 7, 7, 5), _ids(3, 6, 6, 6, 5)]
    declined = learn_count_gate(_repeating_sessions(300, rng), unique, 4.0, VOCAB)
    assert declined.gate is None
    assert "counts do not repeat" in declined.summary["off"]
    assert learn_count_gate(_repeating_sessions(400, rng), unique, 4.0, VOCAB).gate is not None


def test_gate_is_declined_when_counts_never_repeat() -> None:
    """Sessions of random lengths and events (a host logging for days) leave the gate off, saying why."""
    rng = np.random.default_rng(1)
    sessions = [rng.integers(3, VOCAB, size=int(rng.integers(5, 40))) for _ in range(400)]
    decision = learn_count_gate(sessions[:300], sessions[300:], 4.0, VOCAB)
    assert decision.gate is None
    assert "counts do not repeat" in decision.summary["off"]


def test_gate_is_declined_with_too_few_sessions_or_no_holdout() -> None:
    """Below MIN_SESSIONS nothing shows that unseen counts are rare; without held-out sessions (a
    threshold chosen on a labelled set) there is no maximum to set the gate at."""
    rng = np.random.default_rng(2)
    few = learn_count_gate(
        _repeating_sessions(MIN_SESSIONS - 20, rng), _repeating_sessions(10, rng), 4.0, VOCAB
    )
    assert few.gate is None and "training sessions" in few.summary["off"]
    no_holdout = learn_count_gate(_repeating_sessions(400, rng), [], None, VOCAB)
    assert no_holdout.gate is None and "no held-out sessions" in no_holdout.summary["off"]


WRONG_VALUES = [None, True, -1, 1.5, "x", [], {}, 10**400, float("nan"), float("inf"), "x" * 100_000]


@pytest.mark.parametrize("key", ["threshold", "profiles"])
@pytest.mark.parametrize("value", [*WRONG_VALUES, "deleted"], ids=repr)
def test_each_count_gate_key_deleted_or_wrong_is_refused_naming_it(key: str, value: object) -> None:
    """Every key of ``count_gate`` deleted or set to a wrong value: a ValueError naming
    ``count_gate.<key>``, or, for a value that is a valid one, a gate that holds it."""
    raw: dict[str, object] = {"threshold": 2.5, "profiles": ["00000000000000ff"]}
    if value == "deleted":
        del raw[key]
    else:
        raw[key] = value
    if key == "threshold" and value in (-1, 1.5):
        assert CountGate.from_dict(raw).threshold == value
        return
    if key == "profiles" and value == []:
        assert CountGate.from_dict(raw).profiles == ()
        return
    with pytest.raises(ValueError, match=rf"count_gate\.{key}"):
        CountGate.from_dict(raw)
