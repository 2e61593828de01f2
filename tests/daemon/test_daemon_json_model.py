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
from pathlib import Path

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
from logwarden.scoring.offline import LogScoringSummary, group_json_lines
from logwarden.synthetic import generate_logs
from logwarden.synthetic.json_events import ENTITY_FIELD, as_json_events

JSON_INPUT = {"format": "json", "entity": {"field": ENTITY_FIELD}, "json": {"timestamp_field": "@timestamp"}}


def test_daemon_alerts_on_json_events_exactly_where_the_offline_json_scorer_does(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_json_model: Path,
    tmp_path: Path,
) -> None:
    log = generate_logs(seed=22, entities=200, anomaly_fraction=0.1, first_job_id=80_000)
    events = as_json_events(log)
    input_topic = topic_factory(partitions=3, prefix="in")
    alerts_topic = topic_factory(partitions=3, prefix="alerts")
    dead_topic = topic_factory(prefix="dead")
    model = OnnxStepModel.load(load_bundle(synthetic_json_model))
    summary = LogScoringSummary()
    sessions = group_json_lines(model, events, summary, JsonFields(entity=ENTITY_FIELD))
    assert summary.lines_without_entity == summary.invalid_lines == 0
    scored = fold_sessions(model, sessions)
    policy = AlertPolicy(threshold_in_gap(np.concatenate([s for _, s in scored.values()]), quantile=0.97))
    config = daemon_config(
        bootstrap=kafka_bootstrap,
        group=consumer_group,
        input_topic=input_topic,
        alerts_topic=alerts_topic,
        dead_letter_topic=dead_topic,
        model_dir=synthetic_json_model,
        state_dir=tmp_path / "state",
        input_section=JSON_INPUT,
    )
    config["model"]["threshold"] = policy.threshold
    daemon = DaemonProcess.start(tmp_path, config)
    # Keyed so that each job stays on one partition (deploy/README.md), but not by the entity itself:
    # an alert naming the job can only have taken it from the field.
    records = [
        (f"shipper/{entity}".encode(), e.encode())
        for entity, e in zip(log.entity_of_line, events, strict=True)
    ]
    coordinates = produce_tracked(kafka_bootstrap, input_topic, records)

    expected = expected_alerts(scored, policy, log.entity_of_line, coordinates)
    assert len(expected) > 20

    daemon.wait_processed(len(events), timeout_s=90)
    final = daemon.last_checkpoint()
    assert final is not None and final["dead_letters"] == 0
    alerts = [json.loads(r.value) for r in read_all(kafka_bootstrap, alerts_topic, final["alerts"], 30)]
    assert daemon.terminate() == 0
    assert not [e for e in daemon.events() if e.get("event") == "input_differs_from_training"]

    message_of = {
        where: json.loads(event)["message"] for where, event in zip(coordinates, events, strict=True)
    }
    entity_at = dict(zip(coordinates, log.entity_of_line, strict=True))
    got = {(a["source"]["partition"], a["source"]["offset"]): a for a in alerts}
    assert len(got) == len(alerts) and set(got) == set(expected)
    for where, alert in got.items():
        assert alert["entity"] == entity_at[where]
        assert alert["event"] == message_of[where]
        assert alert["score"] == pytest.approx(expected[where], abs=SCORE_TOLERANCE)


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
