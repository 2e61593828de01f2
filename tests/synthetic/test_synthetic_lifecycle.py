"""The lifecycle grammar, its normal plans and the anomalies injected into them."""

from __future__ import annotations

import numpy as np
import pytest

from logwarden.synthetic.lifecycle import (
    ALL_KINDS,
    UNKNOWN_STEPS,
    assign_kinds,
    inject_anomaly,
    is_normal_lifecycle,
    plan_normal,
)

SEEDS = range(300)


def test_plan_normal_many_seeds_every_plan_is_valid() -> None:
    """Every planned normal lifecycle is a word of the normal grammar."""
    for seed in SEEDS:
        steps = plan_normal(np.random.default_rng(seed))
        assert is_normal_lifecycle(steps), steps


def test_plan_normal_many_seeds_every_branch_occurs() -> None:
    """Retries and both staging variants all appear, so the model has branches to learn."""
    seen: set[str] = set()
    for seed in SEEDS:
        seen.update(plan_normal(np.random.default_rng(seed)))
    assert {"attempt_failed", "stage_in", "cache_hit", "checkpoint", "progress"} <= seen


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_inject_anomaly_each_kind_breaks_the_grammar(kind: str) -> None:
    """Whatever the normal plan, an injected anomaly of any kind leaves a non-normal lifecycle."""
    for seed in SEEDS:
        normal = plan_normal(np.random.default_rng(seed))
        damaged = inject_anomaly(kind, normal, np.random.default_rng(seed + 10_000))  # type: ignore[arg-type]
        assert not is_normal_lifecycle(damaged), (kind, damaged)


def test_inject_anomaly_truncated_is_a_prefix_without_end() -> None:
    """A truncated lifecycle is a prefix of its normal plan that started work and never completed."""
    for seed in SEEDS:
        normal = plan_normal(np.random.default_rng(seed))
        cut = inject_anomaly("truncated", normal, np.random.default_rng(seed))
        assert cut == normal[: len(cut)]
        assert "start" in cut and "complete" not in cut and "cleanup" not in cut


def test_inject_anomaly_unknown_template_adds_one_unknown_step() -> None:
    """unknown_template inserts exactly one step that normal traffic never has."""
    for seed in SEEDS:
        normal = plan_normal(np.random.default_rng(seed))
        damaged = inject_anomaly("unknown_template", normal, np.random.default_rng(seed))
        unknown = [step for step in damaged if step in UNKNOWN_STEPS]
        assert len(unknown) == 1
        assert [step for step in damaged if step not in UNKNOWN_STEPS] == normal


def test_inject_anomaly_unknown_kind_raises() -> None:
    """A misspelt kind is refused instead of silently producing a normal entity."""
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        inject_anomaly("typo", plan_normal(np.random.default_rng(0)), np.random.default_rng(0))  # type: ignore[arg-type]


def test_assign_kinds_enough_anomalies_every_kind_present_equally() -> None:
    """With 5 x kinds anomalies, each kind is dealt exactly 5 times."""
    chosen = assign_kinds(np.random.default_rng(3), 1000, 0.025, ALL_KINDS)
    assert len(chosen) == 25
    assert sorted(chosen.values()) == sorted(ALL_KINDS * 5)
    assert all(0 <= index < 1000 for index in chosen)


def test_assign_kinds_zero_fraction_chooses_none() -> None:
    """anomaly_fraction=0 yields a normal-only set."""
    assert assign_kinds(np.random.default_rng(0), 500, 0.0, ALL_KINDS) == {}


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_assign_kinds_fraction_out_of_range_raises(fraction: float) -> None:
    """A fraction outside [0, 1] is a caller error, not a clamp."""
    with pytest.raises(ValueError, match="anomaly_fraction"):
        assign_kinds(np.random.default_rng(0), 10, fraction, ALL_KINDS)


def test_is_normal_lifecycle_unknown_step_is_not_normal() -> None:
    """A step outside the grammar's alphabet makes the lifecycle abnormal rather than raising."""
    normal = plan_normal(np.random.default_rng(1))
    assert not is_normal_lifecycle([*normal[:3], "reboot", *normal[3:]])
