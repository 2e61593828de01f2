"""A model trained on JSON events (``logwarden train --json``) served by the daemon on JSON records.

The events' messages do not name the job; only the field ``job.id`` does.  The daemon, reading
``input.entity.field: job.id``, must keep the sessions the trainer learned and alert on exactly
the events the offline scorer's JSON reader flags.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from daemon_harness import (
    SCORE_TOLERANCE,
    DaemonProcess,
    daemon_config,
    expected_alerts,
    fold_sessions,
    produce_tracked,
    threshold_in_gap,
)
from kafka_broker import read_all

from logwarden.daemon.policy import AlertPolicy
from logwarden.events.json_events import JsonFields
from logwarden.model.bundle import load_bundle
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.offline import LogScoringSummary, group_json_event_keys, group_json_lines
from logwarden.synthetic import generate_logs, generate_sequences
from logwarden.synthetic.json_events import (
    ENTITY_FIELD,
    EVENT_FIELD,
    USER_FIELD,
    as_json_events,
    sessions_as_keyed_events,
)

JSON_INPUT = {"format": "json", "entity": {"field": ENTITY_FIELD}, "json": {"timestamp_field": "@timestamp"}}


@dataclass(frozen=True)
class DaemonRun:
    """Where each produced line landed, what the oracle expected there, and the alerts the daemon sent."""

    coordinates: list[tuple[int, int]]
    expected: dict[tuple[int, int], float]
    alerts: dict[tuple[int, int], dict[str, Any]]


def run_against_the_oracle(
    broker: tuple[str, Callable[..., str], str],
    model_dir: Path,
    input_section: dict[str, Any],
    sessions: dict[str, list[int]],
    records: list[tuple[bytes, bytes]],
    entity_of_line: list[str],
    tmp_path: Path,
) -> DaemonRun:
    """Run the daemon over ``records`` with a threshold that makes surprise decide many alerts.

    ``sessions`` are the offline scorer's per-entity event ids for the same lines: folded, they say
    which events must alert.  Checks that the daemon alerted exactly there, with the oracle's
    scores and entities, with no dead letter, a clean stop and no warning that the input differs
    from the model's training.
    """
    bootstrap, topic_factory, group = broker
    input_topic = topic_factory(partitions=3, prefix="in")
    alerts_topic = topic_factory(partitions=3, prefix="alerts")
    model = OnnxStepModel.load(load_bundle(model_dir))
    scored = fold_sessions(model, sessions)
    policy = AlertPolicy(threshold_in_gap(np.concatenate([s for _, s in scored.values()]), quantile=0.97))
    config = daemon_config(
        bootstrap=bootstrap,
        group=group,
        input_topic=input_topic,
        alerts_topic=alerts_topic,
        dead_letter_topic=topic_factory(prefix="dead"),
        model_dir=model_dir,
        state_dir=tmp_path / "state",
        input_section=input_section,
    )
    config["model"]["threshold"] = policy.threshold
    daemon = DaemonProcess.start(tmp_path, config)
    coordinates = produce_tracked(bootstrap, input_topic, records)
    expected = expected_alerts(scored, policy, entity_of_line, coordinates)
    assert len(expected) > 20

    daemon.wait_processed(len(records), timeout_s=90)
    final = daemon.last_checkpoint()
    assert final is not None and final["dead_letters"] == 0
    alerts = [json.loads(r.value) for r in read_all(bootstrap, alerts_topic, final["alerts"], 30)]
    assert daemon.terminate() == 0
    assert not [e for e in daemon.events() if e.get("event") == "input_differs_from_training"]
    by_source = {(a["source"]["partition"], a["source"]["offset"]): a for a in alerts}
    assert len(by_source) == len(alerts), "one alert per anomalous event"
    assert set(by_source) == set(expected), "alerts exactly where the offline scorer's events flag"
    for where, alert in by_source.items():
        assert alert["entity"] == entity_of_line[coordinates.index(where)]
        assert alert["score"] == pytest.approx(expected[where], abs=SCORE_TOLERANCE)
    return DaemonRun(coordinates, expected, by_source)


def test_daemon_alerts_on_json_events_exactly_where_the_offline_json_scorer_does(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_json_model: Path,
    tmp_path: Path,
) -> None:
    """Jobs named only by ``job.id``: alerts exactly where the offline scorer flags, quoting the message.

    Every fifth event's ``@timestamp`` is as shippers get it wrong (missing, unreadable) or in another
    form (epoch milliseconds as a string): each is still scored, and only the unreadable ones alert
    with ``event_time`` null (they used to be dead-lettered, unscored)."""
    log = generate_logs(seed=22, entities=200, anomaly_fraction=0.1, first_job_id=80_000)
    events = as_json_events(log)
    untimed: set[int] = set()
    for index in range(0, len(events), 5):
        document = json.loads(events[index])
        stamp = document.pop("@timestamp")
        variant = (index // 5) % 3
        if variant == 1:
            document["@timestamp"] = "n/a"
        elif variant == 2:
            document["@timestamp"] = str(int(datetime.fromisoformat(stamp).timestamp() * 1000))
        if variant < 2:
            untimed.add(index)
        events[index] = json.dumps(document)
    model = OnnxStepModel.load(load_bundle(synthetic_json_model))
    summary = LogScoringSummary()
    sessions = group_json_lines(model, events, summary, JsonFields(entity=ENTITY_FIELD))
    assert summary.lines_without_entity == summary.invalid_lines == 0
    # Keyed so that each job stays on one partition (deploy/README.md), but not by the entity itself:
    # an alert naming the job can only have taken it from the field.
    records = [
        (f"shipper/{entity}".encode(), e.encode())
        for entity, e in zip(log.entity_of_line, events, strict=True)
    ]
    run = run_against_the_oracle(
        (kafka_bootstrap, topic_factory, consumer_group),
        synthetic_json_model,
        JSON_INPUT,
        sessions,
        records,
        log.entity_of_line,
        tmp_path,
    )
    for where, alert in run.alerts.items():
        index = run.coordinates.index(where)
        assert alert["event"] == json.loads(events[index])["message"]
        assert (alert["event_time"] is None) == (index in untimed), alert
    assert untimed & {run.coordinates.index(where) for where in run.alerts}, "no untimed event alerted"


def test_daemon_serves_a_model_of_event_keys_trained_on_json_events(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_keys_model: Path,
    tmp_path: Path,
) -> None:
    """Events classified upstream (``input.json.event_field``), per user: the daemon alerts exactly
    where the offline scorer of the same JSON lines flags, and names the unseen keys."""
    keyed = sessions_as_keyed_events(generate_sequences(seed=23, sessions=150, anomaly_fraction=0.2).sessions)
    model = OnnxStepModel.load(load_bundle(synthetic_keys_model))
    summary = LogScoringSummary()
    fields = JsonFields(entity=USER_FIELD, event=EVENT_FIELD)
    sessions = group_json_event_keys(model, keyed.lines, summary, fields)
    assert summary.lines_without_entity == summary.invalid_lines == 0
    assert summary.unknown_template_lines > 0, "the test sessions must hold keys the model never saw"
    records = [
        (user.encode(), line.encode()) for user, line in zip(keyed.entity_of_line, keyed.lines, strict=True)
    ]
    run = run_against_the_oracle(
        (kafka_bootstrap, topic_factory, consumer_group),
        synthetic_keys_model,
        {"format": "json", "entity": {"field": USER_FIELD}, "json": {"event_field": EVENT_FIELD}},
        sessions,
        records,
        keyed.entity_of_line,
        tmp_path,
    )
    vocabulary = set(model.metadata.vocabulary)
    for where, alert in run.alerts.items():
        key = json.loads(keyed.lines[run.coordinates.index(where)])["event"]["code"]
        assert alert["kind"] == ("event" if key in vocabulary else "unknown_template")


def test_run_check_names_an_entity_field_other_than_the_models(
    synthetic_json_model: Path, tmp_path: Path
) -> None:
    """``logwarden run --check`` needs no broker; it reports the field the model was not trained on."""
    config = daemon_config(
        bootstrap="127.0.0.1:9",
        group="g",
        input_topic="in",
        alerts_topic="alerts",
        dead_letter_topic="dead",
        model_dir=synthetic_json_model,
        state_dir=tmp_path / "state",
        input_section={**JSON_INPUT, "entity": {"field": "host.name"}},
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "logwarden.cli", "run", "--config", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["input_differs_from_training"] == [
        "input.entity.field is 'host.name'; the model's training grouped events by the field 'job.id'"
    ]
