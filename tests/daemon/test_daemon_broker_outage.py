"""The daemon through a broker that stops answering mid-stream, as in a network partition or a stalled broker.

The broker process is frozen (SIGSTOP) rather than restarted: the test broker keeps its records in
memory only, and a freeze is what a client sees of a partition anyway: connections that stay open
and answer nothing.  The daemon must ride it out: keep running, lose nothing, apply nothing twice.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import (
    DaemonProcess,
    daemon_config,
    keyed_records,
    produce_records,
    stored_events_applied,
)
from kafka_broker import LocalBroker, read_all

from logwarden.synthetic import generate_logs

FREEZE_S = 12.0
"""Longer than the group session (2 s), the group commit's wait (5 s) and several checkpoint intervals."""
BACKLOG_ENTITIES = 2000
"""About 13,000 records up front: seconds of work, so the freeze comes while the daemon sends."""
STOP_DEADLINE_S = 10.0
PROCESS_DEADLINE_S = 120.0


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own: freezing the suite's shared one would stall other tests."""
    broker = LocalBroker(tmp_path / "broker.log").start()
    try:
        yield broker
    finally:
        if broker.pid is not None:
            os.kill(broker.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        broker.stop()


def test_daemon_rides_out_a_frozen_broker_and_applies_every_event_exactly_once(
    private_broker: LocalBroker, synthetic_model: Path, tmp_path: Path
) -> None:
    """The broker freezes while the daemon works through a backlog, with scores and alerts in flight:
    sends, saves and the group commit wait; afterwards the daemon goes on by itself, applies every
    event once, and sends every score and every alert once."""
    bootstrap = private_broker.bootstrap
    input_topic, alerts_topic, scores_topic, dead_topic = "in", "alerts", "scores", "dead"
    private_broker.create_topics([input_topic], partitions=3)
    private_broker.create_topics([alerts_topic, scores_topic, dead_topic], partitions=1)
    log = generate_logs(seed=21, entities=BACKLOG_ENTITIES, anomaly_fraction=0.05, first_job_id=70_000)
    records = keyed_records(log)
    backlog, rest = records[: len(records) // 2], records[len(records) // 2 :]
    produce_records(bootstrap, input_topic, backlog)
    config = daemon_config(
        bootstrap=bootstrap,
        group="g-outage",
        input_topic=input_topic,
        alerts_topic=alerts_topic,
        dead_letter_topic=dead_topic,
        model_dir=synthetic_model,
        state_dir=tmp_path / "state",
        processing={"batch_max_events": 128},
        kafka_extra={"scores_topic": scores_topic},
    )
    daemon = DaemonProcess.start(tmp_path, config)
    try:
        daemon.wait_for(
            lambda events: any(e.get("event") == "checkpoint" and e["events"] > 0 for e in events),
            PROCESS_DEADLINE_S,
            "a first checkpoint with events",
        )
        assert private_broker.pid is not None
        os.kill(private_broker.pid, signal.SIGSTOP)
        try:
            time.sleep(FREEZE_S)
            assert daemon.process is not None and daemon.process.poll() is None, daemon.log_text()[-4000:]
        finally:
            os.kill(private_broker.pid, signal.SIGCONT)
        saved = daemon.last_checkpoint()
        assert saved is not None and saved["events"] < len(backlog), "the freeze came after the backlog"
        produce_records(bootstrap, input_topic, rest)
        daemon.wait_processed(len(records), timeout_s=PROCESS_DEADLINE_S)
        assert daemon.terminate(timeout_s=STOP_DEADLINE_S) == 0, daemon.log_text()[-4000:]
    finally:
        daemon.kill()

    final = daemon.last_checkpoint()
    assert final is not None and final["reason"] == "shutdown"
    assert final["events"] == len(records) and final["dead_letters"] == 0
    assert stored_events_applied(tmp_path / "state", synthetic_model) == Counter(log.entity_of_line)
    # One more than expected, so that a copy sent twice would be read: the read then ends at its deadline.
    scores = read_all(bootstrap, scores_topic, expected_count=len(records) + 1, timeout_s=8)
    sources = Counter(json.dumps(json.loads(record.value)["source"], sort_keys=True) for record in scores)
    assert len(sources) == len(records) and set(sources.values()) == {1}, "a score was lost or sent twice"
    alerts = read_all(bootstrap, alerts_topic, expected_count=final["alerts"] + 1, timeout_s=4)
    ids = [json.loads(record.value)["alert_id"] for record in alerts]
    assert len(ids) == final["alerts"] > 0
    assert len(set(ids)) == len(ids), "an alert was sent twice"
