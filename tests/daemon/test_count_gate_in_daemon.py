"""The daemon applies a model's count gate at each session's end exactly as offline scoring does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from in_process_service import build_in_process_service
from test_session_ends import P0, AlertSink, TwoPartitionConsumer, record

from logwarden.model.bundle import load_bundle
from logwarden.model.contract import METADATA_DIGEST_KEY, METADATA_FILE, metadata_digest
from logwarden.model.count_gate import CountGate, count_profiles, event_weights
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.offline import LogScoringSummary, group_log_lines, score_log_lines
from logwarden.synthetic import SyntheticLog, generate_logs

TTL_SECONDS = 1e6
"""Longer than any gap inside the stream: only the final far-future record ends sessions."""


def add_count_gate(model_dir: Path, threshold: float) -> None:
    """Give the synthetic model in ``model_dir`` a count gate by hand: the counts of its training
    sessions and ``threshold``.  (Training declines a gate on this data: its counts vary too much.)"""
    model = OnnxStepModel.load(load_bundle(model_dir))
    training = generate_logs(seed=3, entities=400, anomaly_fraction=0.0)
    sessions = group_log_lines(model, training.lines, LogScoringSummary())
    weights = event_weights(model.metadata.vocab_size)
    profiles = count_profiles((np.asarray(ids, np.int64) for ids in sessions.values()), weights)
    gate = CountGate(threshold, tuple(sorted(set(int(p) for p in profiles))))
    path = model_dir / METADATA_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["count_gate"] = gate.to_dict()
    raw[METADATA_DIGEST_KEY] = metadata_digest(raw)
    path.write_text(json.dumps(raw), encoding="utf-8")


@pytest.fixture(scope="module")
def gated_model(synthetic_model_without_rule: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic model with a count gate whose threshold splits the test stream's sessions with
    unseen counts in two by score, so both sides of it are exercised.  Without the transition rule,
    which would lift most anomalous sessions far above both thresholds."""
    model_dir = tmp_path_factory.mktemp("gated-model") / "model"
    shutil.copytree(synthetic_model_without_rule, model_dir)
    add_count_gate(model_dir, 0.0)
    model = OnnxStepModel.load(load_bundle(model_dir))
    offline = list(score_log_lines(model, stream().lines, LogScoringSummary()))
    # Midway between two distinct scores: several sessions share a score, and the daemon's one-step
    # calls round it in the last float32 bits, so a threshold on a score would split them at random.
    scores = np.unique([r["score"] for r in offline if r["unseen_counts"]])
    middle = len(scores) // 2
    add_count_gate(model_dir, float(scores[middle - 1] + scores[middle]) / 2)
    return model_dir


def run_through_daemon(model_dir: Path, lines: list[str]) -> AlertSink:
    """Every line as one record of partition 0, then a far-future record (entity ``job_999999``, a line
    no template fits) that ends every session; returns what the in-process daemon sent."""
    records = [record(P0, offset, 1000.0 + offset, line) for offset, line in enumerate(lines)]
    closing = f"{lines[0].split(' job_')[0]} job_999999 closes the stream"
    records.append(record(P0, len(records), 1e8, closing))
    sink = AlertSink()
    service, _, _ = build_in_process_service(
        model_dir, consumer=TwoPartitionConsumer(), sink=sink, offsets={}, ttl_seconds=TTL_SECONDS
    )
    service.handle_records({P0: records})
    service.expire_idle_entities()
    return sink


def stream() -> SyntheticLog:
    """60 jobs, 30 % of them anomalous: many sessions with counts the training jobs never had."""
    return generate_logs(seed=11, entities=60, anomaly_fraction=0.3)


def test_daemon_alerts_on_unseen_counts_for_the_sessions_offline_scoring_flags(gated_model: Path) -> None:
    """A stream of normal and anomalous jobs, all ended by one late record: the jobs the daemon alerts
    on as ``unseen_counts`` are exactly those that offline scoring of the same lines finds with unseen
    counts and a score within the gate's band (above its threshold, not above the model's), and no
    unknown event (which alerted when it came)."""
    lines = stream().lines
    sink = run_through_daemon(gated_model, lines)

    model = OnnxStepModel.load(load_bundle(gated_model))
    gate = model.metadata.count_gate
    assert gate is not None
    offline = list(score_log_lines(model, lines, LogScoringSummary()))
    expected = {
        r["entity"]
        for r in offline
        if r["unseen_counts"]
        and gate.threshold < r["score"] <= model.metadata.threshold
        and r["unknown_events"] == 0
    }
    gated = {alert["entity"] for alert in sink.alerts if alert["kind"] == "unseen_counts"}
    below = [r for r in offline if r["unseen_counts"] and r["score"] <= gate.threshold]
    assert expected and below, "the gate must split the sessions with unseen counts to mean anything"
    assert gated == expected
    unknown_in_band = {
        r["entity"]
        for r in offline
        if r["unseen_counts"]
        and gate.threshold < r["score"] <= model.metadata.threshold
        and r["unknown_events"]
    }
    assert unknown_in_band, "the stream must hold sessions that only their unknown events flag"
    alerted_unknown = {a["entity"] for a in sink.alerts if a["kind"] == "unknown_template"}
    assert unknown_in_band <= alerted_unknown
    assert all(r["anomalous"] for r in offline if r["entity"] in gated)
    assert {a["threshold"] for a in sink.alerts if a["kind"] == "unseen_counts"} == {round(gate.threshold, 6)}
