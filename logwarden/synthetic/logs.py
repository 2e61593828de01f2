"""Seeded raw scheduler logs: many jobs with interleaved lifecycles and labelled anomalies.

Used by ``make demo`` and by tests that must run on a fresh clone without ``../shared``.
Each entity ``job_<n>`` draws from its own random stream seeded by ``(seed, n)``, so the
normal jobs of a seed are the same whatever the anomaly fraction, and a run is reproducible
line for line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from logwarden.synthetic.lifecycle import (
    ALL_KINDS,
    AnomalyKind,
    Step,
    assign_kinds,
    inject_anomaly,
    plan_normal,
)
from logwarden.synthetic.messages import JobContext, render

ENTITY_REGEX = r"job_\d+"
DEFAULT_START = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
PROCESS = "scheduler"

_MEAN_GAP_MS: dict[str, float] = {
    "submit": 0.0,
    "queue": 40.0,
    "schedule": 2000.0,
    "stage_in": 400.0,
    "cache_hit": 60.0,
    "start": 1500.0,
    "progress": 4000.0,
    "checkpoint": 3000.0,
    "attempt_failed": 2500.0,
    "complete": 1200.0,
    "cleanup": 250.0,
    "oom_kill": 800.0,
    "segfault": 800.0,
    "quota_exceeded": 800.0,
}
_BURST_GAP_MS = (2, 40)
"""Gap between the copies of a step repeated in a burst (``repeated_event``)."""

_ASSIGNMENT_STREAM = 0
_ENTITY_STREAM = 1
_INJECTION_STREAM = 2
_CLUSTER_STREAM = 3


@dataclass(frozen=True)
class SyntheticLog:
    """Lines in time order with their ground truth: entity and step of each line, anomalous entities.

    ``anomalies`` maps each anomalous entity to its kind; every other entity in ``entities``
    followed the normal lifecycle grammar.
    """

    lines: list[str]
    entity_of_line: list[str]
    step_of_line: list[str]
    entities: list[str]
    anomalies: dict[str, AnomalyKind]

    def steps_of(self, entity: str) -> list[str]:
        """The steps ``entity`` logged, in order."""
        return [s for e, s in zip(self.entity_of_line, self.step_of_line, strict=True) if e == entity]

    @property
    def normal_entities(self) -> list[str]:
        """Entities with no injected anomaly, in creation order."""
        return [e for e in self.entities if e not in self.anomalies]


def generate_logs(
    seed: int,
    entities: int,
    anomaly_fraction: float = 0.05,
    kinds: Sequence[AnomalyKind] = ALL_KINDS,
    start_ts: datetime = DEFAULT_START,
    *,
    first_job_id: int = 1000,
    arrivals_per_s: float = 5.0,
    scheduler_hosts: int = 4,
) -> SyntheticLog:
    """Logs of ``entities`` jobs arriving at ``arrivals_per_s`` from ``start_ts``, fully set by ``seed``.

    ``round(entities * anomaly_fraction)`` jobs get an anomaly, kinds dealt round-robin over
    ``kinds``; ``anomaly_fraction=0`` gives a normal-only training set.
    """
    if entities < 0:
        raise ValueError(f"entities must be >= 0, got {entities}")
    if arrivals_per_s <= 0 or scheduler_hosts <= 0:
        raise ValueError("arrivals_per_s and scheduler_hosts must be positive")
    assignment_rng = np.random.default_rng([seed, _ASSIGNMENT_STREAM])
    kind_of_index = assign_kinds(assignment_rng, entities, anomaly_fraction, tuple(kinds))
    cluster_rng = np.random.default_rng([seed, _CLUSTER_STREAM])
    arrivals_ms = np.cumsum(cluster_rng.exponential(1000.0 / arrivals_per_s, size=entities))
    pids = cluster_rng.integers(200, 65536, size=scheduler_hosts)

    timed: list[tuple[int, int, int, str, str]] = []
    names: list[str] = []
    anomalies: dict[str, AnomalyKind] = {}
    for index in range(entities):
        job_number = first_job_id + index
        name = f"job_{job_number}"
        names.append(name)
        rng = np.random.default_rng([seed, _ENTITY_STREAM, job_number])
        steps = plan_normal(rng)
        kind = kind_of_index.get(index)
        if kind is not None:
            anomalies[name] = kind
            steps = inject_anomaly(kind, steps, np.random.default_rng([seed, _INJECTION_STREAM, job_number]))
        host = int(rng.integers(scheduler_hosts))
        header_tail = f" host-{host + 1} {PROCESS}[{int(pids[host])}]: "
        ctx = JobContext.new(name, rng)
        t_ms = int(arrivals_ms[index])
        previous: Step | None = None
        for position, step in enumerate(steps):
            if step == previous:
                t_ms += int(rng.integers(*_BURST_GAP_MS))
            else:
                t_ms += 1 + int(rng.exponential(_MEAN_GAP_MS[step])) if position else 0
            timed.append((t_ms, index, position, step, header_tail + render(step, ctx, rng)))
            previous = step
    timed.sort(key=lambda row: (row[0], row[1], row[2]))
    return SyntheticLog(
        lines=[_timestamp(start_ts, t_ms) + rest for t_ms, _, _, _, rest in timed],
        entity_of_line=[names[index] for _, index, _, _, _ in timed],
        step_of_line=[step for _, _, _, step, _ in timed],
        entities=names,
        anomalies=anomalies,
    )


def write_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Write one line per element, newline-terminated, UTF-8."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")


def _timestamp(start: datetime, offset_ms: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-21T10:00:00.123Z``."""
    moment = start.astimezone(UTC) + timedelta(milliseconds=offset_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
