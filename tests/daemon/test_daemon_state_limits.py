"""State limits through a real broker: idle entities expire on stream time, the table keeps its bound."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_runner import run_cli
from daemon_harness import (
    DaemonProcess,
    daemon_config,
    keyed_records,
    live_config,
    produce_records,
    stored_column,
    stored_events_applied,
)
from kafka.partitioner.default import murmur2
from kafka_broker import read_all

from logwarden.daemon.alerts import session_end_alert_id
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import END_ID
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.offline import LogScoringSummary, group_log_lines
from logwarden.scoring.session import surprise_of
from logwarden.synthetic import ENTITY_REGEX, generate_logs

TTL_SECONDS = 600.0
IDLE_JUMP_MS = 3_600_000
SCORE_TOLERANCE = 1e-4
PROCESS_DEADLINE_S = 60.0


def late_job_per_partition(partitions: int) -> dict[str, str]:
    """entity -> first line of one generated job for each partition the default partitioner picks."""
    log = generate_logs(seed=14, entities=40, anomaly_fraction=0.0, first_job_id=99_000)
    chosen: dict[int, tuple[str, str]] = {}
    for entity, line in zip(log.entity_of_line, log.lines, strict=True):
        chosen.setdefault((murmur2(entity.encode()) & 0x7FFFFFFF) % partitions, (entity, line))
    assert len(chosen) == partitions
    return dict(chosen.values())


def line_time_ms(line: str) -> int:
    """Epoch milliseconds of a synthetic line's ISO-8601 header."""
    return int(datetime.fromisoformat(line.split(" ", 1)[0]).timestamp() * 1000)


def end_scores(model: OnnxStepModel, lines: Sequence[str]) -> dict[str, tuple[int, float]]:
    """Per entity: how many events it logged and the surprise of END after them (the offline oracle)."""
    sessions = group_log_lines(model, lines, LogScoringSummary(), ENTITY_REGEX)
    scores = {}
    for entity, id_list in sessions.items():
        ids = np.asarray([*id_list, END_ID], np.int64)
        out = model.run(ids[:, None], *model.initial_state(1))
        scores[entity] = (len(id_list), float(surprise_of(out.log_probs[:, 0, :], ids)[-1]))
    return scores


def separating_threshold(normal: Sequence[float], truncated: Sequence[float]) -> float:
    """Middle of the widest gap between END scores with a normal session below, a truncated one above."""
    ordered = sorted([*normal, *truncated])
    low, high = min(normal), max(truncated)
    gaps = [
        (b - a, (a + b) / 2) for a, b in zip(ordered[:-1], ordered[1:], strict=True) if low <= a and b <= high
    ]
    width, middle = max(gaps, default=(0.0, 0.0))
    assert width > 4 * SCORE_TOLERANCE, "the oracle separates no truncated session from the normal ones"
    return middle


def test_daemon_idle_entities_past_ttl_expire_and_score_end(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """Past the TTL in stream time, idle sessions end: END scored as the oracle says, their rows deleted."""
    log = generate_logs(
        seed=13, entities=40, anomaly_fraction=0.25, kinds=("truncated",), first_job_id=95_000
    )
    late = late_job_per_partition(partitions=2)
    model = OnnxStepModel.load(load_bundle(synthetic_model))
    oracle = end_scores(model, log.lines)
    threshold = separating_threshold(
        [score for e, (_, score) in oracle.items() if e not in log.anomalies],
        [score for e, (_, score) in oracle.items() if e in log.anomalies],
    )
    ending = {e for e, (_, score) in oracle.items() if score > threshold}
    input_topic = topic_factory(partitions=2, prefix="in")
    alerts_topic = topic_factory(prefix="alerts")
    config = daemon_config(
        bootstrap=kafka_bootstrap,
        group=consumer_group,
        input_topic=input_topic,
        alerts_topic=alerts_topic,
        dead_letter_topic=topic_factory(prefix="dead"),
        model_dir=synthetic_model,
        state_dir=tmp_path / "state",
        state={"ttl_seconds": TTL_SECONDS},
    )
    config["model"]["threshold"] = threshold
    daemon = DaemonProcess.start(tmp_path, config)
    times = [line_time_ms(line) for line in log.lines]
    produce_records(
        kafka_bootstrap,
        input_topic,
        keyed_records(log),
        times,
    )
    daemon.wait_processed(len(log.lines), timeout_s=PROCESS_DEADLINE_S)
    assert not any(e.get("event") == "sessions_expired" for e in daemon.events())
    # One record an hour of stream time later in each partition moves its time past every other
    # entity's TTL (stream time is kept per partition).
    produce_records(
        kafka_bootstrap,
        input_topic,
        [(entity.encode(), line.encode()) for entity, line in late.items()],
        [max(times) + IDLE_JUMP_MS] * len(late),
    )
    daemon.wait_for(
        lambda events: (
            sum(e.get("entities", 0) for e in events if e.get("event") == "sessions_expired") >= len(oracle)
        ),
        PROCESS_DEADLINE_S,
        "every early entity to expire",
    )
    daemon.wait_processed(len(log.lines) + len(late), timeout_s=PROCESS_DEADLINE_S)
    assert daemon.terminate() == 0
    final = daemon.last_checkpoint()
    assert final is not None and final["session_ends"] == len(oracle)
    alerts = [
        json.loads(r.value) for r in read_all(kafka_bootstrap, alerts_topic, final["alerts"], timeout_s=30)
    ]
    assert len(alerts) == final["alerts"]

    session_ends = {a["entity"]: a for a in alerts if a["kind"] == "session_end"}
    assert set(session_ends) == ending
    assert ending & set(log.anomalies), "a truncated lifecycle ends in an alert"
    assert set(oracle) - ending - set(log.anomalies), "a complete normal lifecycle ends quietly"
    last_event_ms: dict[str, int] = {}
    for entity, moment in zip(log.entity_of_line, times, strict=True):
        last_event_ms[entity] = max(moment, last_event_ms.get(entity, moment))
    for entity, alert in session_ends.items():
        _, score = oracle[entity]
        assert alert["source"] is None and alert["event"] == ""
        assert alert["alert_id"] == session_end_alert_id(entity, last_event_ms[entity])
        assert alert["score"] == pytest.approx(score, abs=SCORE_TOLERANCE)
    assert stored_events_applied(tmp_path / "state", synthetic_model) == dict.fromkeys(late, 1)


def test_daemon_more_entities_than_max_entities_evicts_and_stays_bounded(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """Beyond state.max_entities the least recently seen are evicted and logged; the table stays bounded."""
    max_entities = 50
    log = generate_logs(seed=17, entities=200, anomaly_fraction=0.0, first_job_id=96_000)
    distinct = len(set(log.entity_of_line))
    input_topic = topic_factory(partitions=2, prefix="in")
    config = live_config(
        kafka_bootstrap,
        topic_factory,
        consumer_group,
        synthetic_model,
        tmp_path,
        input_topic,
        state={"max_entities": max_entities, "checkpoint_every_events": 200},
        processing={"batch_max_events": 32},
    )
    daemon = DaemonProcess.start(tmp_path, config)
    produce_records(
        kafka_bootstrap,
        input_topic,
        keyed_records(log),
    )
    daemon.wait_processed(len(log.lines), timeout_s=PROCESS_DEADLINE_S)
    assert daemon.terminate() == 0

    events = daemon.events()
    checkpoints = [e for e in events if e.get("event") == "checkpoint"]
    evictions = [e for e in events if e.get("event") == "entities_evicted"]
    assert checkpoints[-1]["events"] == len(log.lines)
    assert len(checkpoints) > 2
    assert max(c["entities"] for c in checkpoints) <= max_entities
    assert evictions and all(e["max_entities"] == max_entities for e in evictions)
    assert sum(e["evicted"] for e in evictions) >= distinct - max_entities
    assert len(stored_events_applied(tmp_path / "state", synthetic_model)) <= max_entities


def test_daemon_restarted_with_max_entities_below_the_saved_count_keeps_the_most_recently_seen(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """Lowering state.max_entities is how an operator gives the daemon less memory: the start drops the
    least recently seen saved entities, as the running table would (it used to refuse to start, exit 6),
    ``run --check`` says how many it will drop, and the start deletes them from the store."""
    log = generate_logs(seed=18, entities=40, anomaly_fraction=0.0, first_job_id=95_000)
    input_topic = topic_factory(partitions=2, prefix="in")
    config = live_config(
        kafka_bootstrap,
        topic_factory,
        consumer_group,
        synthetic_model,
        tmp_path,
        input_topic,
        state={"ttl_seconds": 1e9},
    )
    first = DaemonProcess.start(tmp_path, config, name="first")
    try:
        produce_records(kafka_bootstrap, input_topic, keyed_records(log))
        first.wait_processed(len(log.lines), timeout_s=PROCESS_DEADLINE_S)
        assert first.terminate() == 0
    finally:
        first.kill()
    saved = stored_column(tmp_path / "state", synthetic_model, "last_seen")
    by_age = sorted(saved, key=lambda entity: (saved[entity], entity))
    # A cut between two different times near the middle, so that age and not name decides.
    kept_count = next(
        k for k in range(len(saved) // 2, len(saved)) if saved[by_age[-k - 1]] < saved[by_age[-k]]
    )
    assert sorted(by_age[-kept_count:]) != sorted(saved)[-kept_count:], "the names alone would pick these"

    config["state"]["max_entities"] = kept_count
    config["processing"]["batch_max_events"] = kept_count
    config_path = tmp_path / "lowered.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    check = run_cli("run", "--config", str(config_path), "--check")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["state"]["entities_to_evict"] == len(saved) - kept_count

    second = DaemonProcess.start(tmp_path, config, name="second")
    try:
        second.wait_for(
            lambda events: any(e.get("event") == "started" for e in events), PROCESS_DEADLINE_S, "the start"
        )
        assert second.terminate() == 0, second.log_text()[-4000:]
    finally:
        second.kill()
    evictions = [e for e in second.events() if e.get("event") == "entities_evicted"]
    assert [(e["evicted"], e["max_entities"], e["at"]) for e in evictions] == [
        (len(saved) - kept_count, kept_count, "start")
    ]
    after = stored_column(tmp_path / "state", synthetic_model, "last_seen")
    assert sorted(after) == sorted(by_age[-kept_count:])
    assert all(after[entity] == saved[entity] for entity in after)
