"""The offline oracle of the crash-consistency tests: what an uninterrupted daemon must end with.

It folds the daemon's own model over the input read back from the broker, one entity at a
time in partition-offset order, with the daemon's own decoder and alert policy.  A daemon
killed any number of times must end with exactly these per-entity event counts, these
states (within float tolerance) and at least these alert ids.  It also reads a daemon's
SQLite checkpoint back and lists every difference, so a failing test says what diverged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from logwarden.daemon.alerts import alert_id
from logwarden.daemon.config import DaemonConfig
from logwarden.daemon.decode import MessageDecoder
from logwarden.daemon.policy import AlertPolicy
from logwarden.daemon.state.sqlite_store import SqliteStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.errors import DecodeError
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import UNKNOWN_ID
from logwarden.model.count_gate import count_profile, event_weights
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.session import surprise_of

STATE_TOLERANCE = 1e-5
SCORE_TOLERANCE = 1e-4
"""Scores of one-step and batched onnxruntime calls differ in the last float32 bits."""
BORDERLINE_NATS = 1e-4
"""Scores this close to the threshold may flip between batched and sequential onnxruntime calls."""

Offsets = dict[tuple[str, int], int]


@dataclass(frozen=True)
class EntityState:
    """One entity's LSTM state and how many events were folded into it."""

    h: np.ndarray  # float32 [L, H]
    c: np.ndarray  # float32 [L, H]
    events_applied: int
    count_profile: int
    """The count gate's multiset hash of the events applied: exact, whatever the crashes."""
    max_surprise: float
    """The largest surprise among them (within float tolerance)."""
    unknown_events: int
    """How many of them matched no template: exact."""


@dataclass(frozen=True)
class OracleResult:
    """What any run of the daemon over the same input must end with."""

    entities: dict[str, EntityState]
    alert_ids: frozenset[str]
    """Alerts every run must produce: score above threshold + BORDERLINE_NATS, or an unknown template."""
    borderline_alert_ids: frozenset[str]
    """Alerts a run may or may not produce: score within BORDERLINE_NATS of the threshold."""
    next_offsets: Offsets
    dead_letters: int


def fold_records(records: Iterable[Any], config: DaemonConfig) -> OracleResult:
    """Fold the model of ``config`` over ``records`` per entity, in partition-offset order."""
    bundle = load_bundle(config.model.path)
    metadata = bundle.metadata
    model = OnnxStepModel.load(bundle)
    decoder = MessageDecoder.build(config.input, metadata)
    threshold = metadata.threshold if config.model.threshold is None else config.model.threshold
    policy = AlertPolicy(threshold)
    weights = event_weights(metadata.vocab_size)

    ordered = sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
    next_offsets: Offsets = {}
    events_of: dict[str, list[tuple[int, str]]] = defaultdict(list)
    dead_letters = 0
    for record in ordered:
        next_offsets[(record.topic, record.partition)] = record.offset + 1
        try:
            event = decoder.decode_one(record.value, record.key, record.timestamp)
        except DecodeError:
            dead_letters += 1
            continue
        events_of[event.entity].append(
            (event.event_id, alert_id(record.topic, record.partition, record.offset))
        )

    entities: dict[str, EntityState] = {}
    expected: set[str] = set()
    borderline: set[str] = set()
    for entity, events in events_of.items():
        ids = np.array([event_id for event_id, _ in events], np.int64)
        h, c = model.initial_state(1)
        # One event per call, the way the daemon applies them.
        scores = np.empty(len(ids), np.float32)
        for step, event_id in enumerate(ids):
            out = model.run(ids[step : step + 1, None], h, c)
            scores[step] = surprise_of(out.log_probs[0, 0], event_id)
            h, c = out.h, out.c
        flagged = policy.decide(scores, ids)
        for (_, record_alert_id), score, is_flagged in zip(events, scores, flagged, strict=True):
            if abs(float(score) - threshold) <= BORDERLINE_NATS:
                borderline.add(record_alert_id)
            elif is_flagged:
                expected.add(record_alert_id)
        entities[entity] = EntityState(
            h=h[:, 0, :].copy(),
            c=c[:, 0, :].copy(),
            events_applied=len(ids),
            count_profile=count_profile(ids, weights),
            max_surprise=float(scores.max()),
            unknown_events=int(np.count_nonzero(ids == UNKNOWN_ID)),
        )
    return OracleResult(
        entities=entities,
        alert_ids=frozenset(expected),
        borderline_alert_ids=frozenset(borderline),
        next_offsets=next_offsets,
        dead_letters=dead_letters,
    )


def load_checkpoint(state_dir: Path, config: DaemonConfig) -> tuple[dict[str, EntityState], Offsets]:
    """The entity states and offsets of the daemon's SQLite checkpoint in ``state_dir`` (daemon stopped)."""
    metadata = load_bundle(config.model.path).metadata
    store = SqliteStateStore(state_dir)
    store.open(StoreHeader(metadata.onnx_sha256, metadata.num_layers, metadata.state_size))
    try:
        rows, offsets = store.load()
        states = {
            entity: EntityState(
                h=chunk.h[i].copy(),
                c=chunk.c[i].copy(),
                events_applied=int(chunk.events_applied[i]),
                count_profile=int(chunk.count_profile[i]),
                max_surprise=float(chunk.max_surprise[i]),
                unknown_events=int(chunk.unknown_events[i]),
            )
            for chunk in rows
            for i, entity in enumerate(chunk.entities)
        }
    finally:
        store.close()
    return states, dict(offsets)


def state_differences(
    saved: dict[str, EntityState], oracle: OracleResult, tolerance: float = STATE_TOLERANCE, limit: int = 20
) -> list[str]:
    """Human-readable differences between a checkpoint and the oracle (empty when they agree)."""
    problems: list[str] = []
    missing = sorted(set(oracle.entities) - set(saved))
    extra = sorted(set(saved) - set(oracle.entities))
    if missing:
        problems.append(f"{len(missing)} entities missing from the checkpoint, e.g. {missing[:5]}")
    if extra:
        problems.append(f"{len(extra)} entities in the checkpoint the input never had, e.g. {extra[:5]}")
    for entity in sorted(set(saved) & set(oracle.entities)):
        got, want = saved[entity], oracle.entities[entity]
        if got.events_applied != want.events_applied:
            problems.append(f"{entity}: events_applied {got.events_applied}, oracle {want.events_applied}")
            continue
        error = max(float(np.abs(got.h - want.h).max()), float(np.abs(got.c - want.c).max()))
        if not error <= tolerance:
            problems.append(f"{entity}: state differs by {error:.3g} (tolerance {tolerance:g})")
        if got.count_profile != want.count_profile:
            problems.append(
                f"{entity}: count_profile {got.count_profile:016x}, oracle {want.count_profile:016x}"
            )
        if not abs(got.max_surprise - want.max_surprise) <= SCORE_TOLERANCE:
            problems.append(f"{entity}: max_surprise {got.max_surprise:.6f}, oracle {want.max_surprise:.6f}")
        if got.unknown_events != want.unknown_events:
            problems.append(f"{entity}: unknown_events {got.unknown_events}, oracle {want.unknown_events}")
    if len(problems) > limit:
        problems = problems[:limit] + [f"... and {len(problems) - limit} more"]
    return problems
