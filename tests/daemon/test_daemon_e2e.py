"""End to end through a real broker: synthetic logs in, exactly the alerts the offline oracle predicts out."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import kafka
import numpy as np
import pytest
from alert_contract import ALERT_FIELDS
from daemon_harness import (
    SCORE_TOLERANCE,
    DaemonProcess,
    committed_offsets,
    daemon_config,
    expected_alerts,
    fold_sessions,
    keyed_records,
    produce_tracked,
    threshold_in_gap,
)
from kafka_broker import read_all

from logwarden import __version__
from logwarden.daemon.policy import AlertPolicy
from logwarden.model.bundle import load_bundle
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.offline import LogScoringSummary, group_log_lines
from logwarden.synthetic import ENTITY_REGEX, generate_logs
from logwarden.synthetic.lifecycle import UNKNOWN_STEPS

PARTITIONS = 3
ENTITIES = 300
PROCESS_DEADLINE_S = 90.0


def test_daemon_synthetic_stream_alerts_match_offline_oracle(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """Every event the offline oracle flags, and no other, yields one complete alert keyed by its entity."""
    log = generate_logs(seed=21, entities=ENTITIES, anomaly_fraction=0.1, first_job_id=70_000)
    input_topic = topic_factory(partitions=PARTITIONS, prefix="in")
    alerts_topic = topic_factory(partitions=PARTITIONS, prefix="alerts")
    dead_topic = topic_factory(prefix="dead")
    bundle = load_bundle(synthetic_model)
    model = OnnxStepModel.load(bundle)
    scored = fold_sessions(model, group_log_lines(model, log.lines, LogScoringSummary(), ENTITY_REGEX))
    # Below the calibrated threshold, so that surprise (not only unknown templates) decides many alerts.
    policy = AlertPolicy(threshold_in_gap(np.concatenate([s for ids, s in scored.values()]), quantile=0.97))
    config = daemon_config(
        bootstrap=kafka_bootstrap,
        group=consumer_group,
        input_topic=input_topic,
        alerts_topic=alerts_topic,
        dead_letter_topic=dead_topic,
        model_dir=synthetic_model,
        state_dir=tmp_path / "state",
        processing={"batch_max_events": 256},
    )
    config["model"]["threshold"] = policy.threshold
    daemon = DaemonProcess.start(tmp_path, config)
    records = keyed_records(log)
    coordinates = produce_tracked(kafka_bootstrap, input_topic, records)

    expected = {
        (input_topic, *where): score
        for where, score in expected_alerts(scored, policy, log.entity_of_line, coordinates).items()
    }
    unknown_sources = {
        (input_topic, *where)
        for step, where in zip(log.step_of_line, coordinates, strict=True)
        if step in UNKNOWN_STEPS
    }
    assert unknown_sources, "the synthetic stream must contain unknown-template events"
    assert len(expected) > 2 * len(unknown_sources), (
        "most alerts must come from surprise, not unknown templates"
    )

    daemon.wait_processed(len(records), timeout_s=PROCESS_DEADLINE_S)
    final = daemon.last_checkpoint()
    assert final is not None
    alerts_sent = final["alerts"]
    alert_records = read_all(kafka_bootstrap, alerts_topic, expected_count=alerts_sent, timeout_s=30)
    group_offsets = committed_offsets(kafka_bootstrap, consumer_group)
    assert daemon.terminate() == 0

    assert final["events"] == len(records) and final["dead_letters"] == 0
    startup = next(e for e in daemon.events() if e.get("event") == "config")
    assert startup["software"]["logwarden"] == __version__, "the start-up line says what runs"
    assert startup["software"]["kafka-python"] == kafka.__version__
    decoders = [e for e in daemon.events() if e.get("event") == "record_decoder"]
    assert [e["decoder"] for e in decoders] == ["compiled"], "the input must be read by the compiled decoder"
    assert decoders[0]["corrupt_batches"] == "dead_lettered"
    assert len(alert_records) == alerts_sent
    alerts = [json.loads(r.value) for r in alert_records]
    sources = [(a["source"]["topic"], a["source"]["partition"], a["source"]["offset"]) for a in alerts]
    assert len(set(sources)) == len(sources), "one alert per anomalous event"
    assert set(sources) == set(expected)
    assert unknown_sources <= set(sources)

    metadata = bundle.metadata
    line_of = {where: index for index, where in enumerate(coordinates)}
    for record, alert, source in zip(alert_records, alerts, sources, strict=True):
        assert set(alert) >= ALERT_FIELDS, alert
        assert record.key == alert["entity"].encode()
        line = line_of[source[1:]]
        assert alert["entity"] == log.entity_of_line[line]
        assert alert["event"] == log.lines[line]
        assert alert["model"] == {
            "version": metadata.model_version,
            "sha256": metadata.onnx_sha256,
            "metadata_sha256": json.loads((synthetic_model / "model.json").read_text())["metadata_sha256"],
        }
        assert alert["threshold"] == round(policy.threshold, 6)
        assert alert["kind"] == ("unknown_template" if source in unknown_sources else "event")
        assert alert["score"] == pytest.approx(expected[source], abs=SCORE_TOLERANCE)
        assert len(alert["expected"]) == 3
        assert all({"event", "template", "probability"} <= set(e) for e in alert["expected"])
        assert alert["event_time"].endswith("Z") and alert["detected_at"].endswith("Z")

    produced_per_partition = Counter(partition for partition, _ in coordinates)
    assert group_offsets == {(input_topic, p): n for p, n in produced_per_partition.items()}
