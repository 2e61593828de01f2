"""The daemon through a broker that stops answering mid-stream, as in a network partition or a stalled broker.

The broker process is frozen (SIGSTOP) rather than restarted: the test broker keeps its records in
memory only, and a freeze is what a client sees of a partition anyway: connections that stay open
and answer nothing.  The daemon must ride it out: keep running, lose nothing, apply nothing twice;
and a stop during a freeze must end within its budget and still lose nothing.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import (
    DaemonProcess,
    daemon_config,
    keyed_records,
    produce_records,
    stored_events_applied,
)
from kafka_broker import LocalBroker, read_all

from logwarden.synthetic import SyntheticLog, generate_logs

FREEZE_S = 12.0
"""Longer than the group session (2 s), the group commit's wait (5 s) and several checkpoint intervals."""
INPUT, ALERTS, SCORES, DEAD = "in", "alerts", "scores", "dead"
BACKLOG_ENTITIES = 2000
"""About 26,000 records, three quarters of them up front: seconds of work (about 5,000 records are
handled by the time the freeze comes here), so the freeze comes while the daemon sends."""
FROZEN_BEFORE_STOP_S = 1.0
"""Long enough for the daemon to have sends waiting on the frozen broker when SIGTERM comes."""
EXIT_FINAL_SAVE_NOT_CONFIRMED = 1
STOP_BUDGET_S = 4.0
"""``shutdown.timeout_seconds`` in the stop test: how long the final save may wait for the broker."""
CLOSE_ALLOWANCE_S = 3.0
"""What the stop may take beyond its budget: 0.5 s each to close the consumer and the producer, and
the process's exit."""
STOP_DEADLINE_S = 10.0
PROCESS_DEADLINE_S = 120.0


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


@dataclass
class Outage:
    """A frozen-broker scenario: the broker, its topics, the generated log split in two, the config."""

    broker: LocalBroker
    log: SyntheticLog
    backlog: list[tuple[bytes, bytes]]
    rest: list[tuple[bytes, bytes]]
    config: dict[str, Any]

    @property
    def records(self) -> int:
        return len(self.backlog) + len(self.rest)

    def start_in_backlog(self, workdir: Path) -> DaemonProcess:
        """A daemon working through the backlog, past its first checkpoint with events."""
        daemon = DaemonProcess.start(workdir, self.config)
        daemon.wait_for(
            lambda events: any(e.get("event") == "checkpoint" and e["events"] > 0 for e in events),
            PROCESS_DEADLINE_S,
            "a first checkpoint with events",
        )
        return daemon

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The broker process stopped (SIGSTOP) for the ``with`` block, resumed whatever happens."""
        assert self.broker.pid is not None
        os.kill(self.broker.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.broker.pid, signal.SIGCONT)

    def scored_sources(self, *, at_most: int) -> Counter[str]:
        """How often each input record was scored on the scores topic, reading up to ``at_most``
        records (more than expected, so that a copy sent twice is seen: the read then ends at its
        deadline)."""
        scores = read_all(self.broker.bootstrap, SCORES, expected_count=at_most, timeout_s=8)
        return Counter(json.dumps(json.loads(record.value)["source"], sort_keys=True) for record in scores)


def outage_config(
    broker: LocalBroker, group: str, model_dir: Path, tmp_path: Path, **extra: Any
) -> dict[str, Any]:
    """The daemon config of these tests: the private broker's INPUT, ALERTS and DEAD topics, and extra."""
    return daemon_config(
        bootstrap=broker.bootstrap,
        group=group,
        input_topic=INPUT,
        alerts_topic=ALERTS,
        dead_letter_topic=DEAD,
        model_dir=model_dir,
        state_dir=tmp_path / "state",
        **extra,
    )


@pytest.fixture
def outage(private_broker: LocalBroker, synthetic_model: Path, tmp_path: Path) -> Outage:
    """Three quarters of the generated log already in the input topic; every event's score goes to a
    scores topic, so that sends are in flight whenever the daemon works."""
    private_broker.create_topics([INPUT], partitions=3)
    private_broker.create_topics([ALERTS, SCORES, DEAD], partitions=1)
    log = generate_logs(seed=21, entities=BACKLOG_ENTITIES, anomaly_fraction=0.05, first_job_id=70_000)
    records = keyed_records(log)
    split = 3 * len(records) // 4
    backlog, rest = records[:split], records[split:]
    produce_records(private_broker.bootstrap, INPUT, backlog)
    config = outage_config(
        private_broker,
        "g-outage",
        synthetic_model,
        tmp_path,
        processing={"batch_max_events": 32},
        kafka_extra={"scores_topic": SCORES},
    )
    return Outage(private_broker, log, backlog, rest, config)


def test_daemon_rides_out_a_frozen_broker_and_applies_every_event_exactly_once(
    outage: Outage, synthetic_model: Path, tmp_path: Path
) -> None:
    """The broker freezes while the daemon works through a backlog, with scores and alerts in flight:
    sends, saves and the group commit wait; afterwards the daemon goes on by itself, applies every
    event once, and sends every score and every alert once."""
    daemon = outage.start_in_backlog(tmp_path)
    try:
        with outage.frozen():
            time.sleep(FREEZE_S)
            assert daemon.process is not None and daemon.process.poll() is None, daemon.log_text()[-4000:]
        saved = daemon.last_checkpoint()
        assert saved is not None and saved["events"] < len(outage.backlog), (
            "the freeze came after the backlog"
        )
        produce_records(outage.broker.bootstrap, INPUT, outage.rest)
        daemon.wait_processed(outage.records, timeout_s=PROCESS_DEADLINE_S)
        assert daemon.terminate(timeout_s=STOP_DEADLINE_S) == 0, daemon.log_text()[-4000:]
    finally:
        daemon.kill()

    final = daemon.last_checkpoint()
    assert final is not None and final["reason"] == "shutdown"
    assert final["events"] == outage.records and final["dead_letters"] == 0
    assert stored_events_applied(tmp_path / "state", synthetic_model) == Counter(outage.log.entity_of_line)
    sources = outage.scored_sources(at_most=outage.records + 1)
    assert len(sources) == outage.records and set(sources.values()) == {1}, "a score was lost or sent twice"
    alerts = read_all(outage.broker.bootstrap, ALERTS, expected_count=final["alerts"] + 1, timeout_s=4)
    ids = [json.loads(record.value)["alert_id"] for record in alerts]
    assert len(ids) == final["alerts"] > 0
    assert len(set(ids)) == len(ids), "an alert was sent twice"


def test_daemon_sigterm_while_the_broker_is_frozen_stops_in_time_and_a_restart_loses_nothing(
    outage: Outage, synthetic_model: Path, tmp_path: Path
) -> None:
    """SIGTERM with the broker frozen and sends in flight: the stop ends within its deadline without
    a save the broker did not confirm; the next start replays from the last save, so every event is
    applied exactly once and every one is scored (some twice: outputs are at-least-once)."""
    outage.config["shutdown"]["timeout_seconds"] = STOP_BUDGET_S
    first = outage.start_in_backlog(tmp_path)
    try:
        with outage.frozen():
            time.sleep(FROZEN_BEFORE_STOP_S)
            stop_requested = time.monotonic()
            code = first.terminate(timeout_s=STOP_DEADLINE_S)
            stop_seconds = time.monotonic() - stop_requested
    finally:
        first.kill()
    assert code == EXIT_FINAL_SAVE_NOT_CONFIRMED, first.log_text()[-4000:]
    # The budget bounds the wait for the broker; closing the clients and the process exit come after.
    assert STOP_BUDGET_S <= stop_seconds < STOP_BUDGET_S + CLOSE_ALLOWANCE_S
    saved = first.last_checkpoint()
    assert saved is not None and saved["reason"] != "shutdown"

    produce_records(outage.broker.bootstrap, INPUT, outage.rest)
    second = DaemonProcess.start(tmp_path, outage.config)
    try:
        second.wait_processed(outage.records - saved["events"], timeout_s=PROCESS_DEADLINE_S)
        assert second.terminate(timeout_s=STOP_DEADLINE_S) == 0, second.log_text()[-4000:]
    finally:
        second.kill()
    resumed = second.last_checkpoint()
    assert resumed is not None and saved["events"] + resumed["events"] == outage.records
    assert stored_events_applied(tmp_path / "state", synthetic_model) == Counter(outage.log.entity_of_line)
    # Replayed events are scored again, so the topic holds more than one score per event.
    assert len(outage.scored_sources(at_most=2 * outage.records)) == outage.records, (
        "an event was never scored"
    )


FREEZE_PAST_TTL_S = 10.0
TTL_S = 6.0
"""Idle time of the sessions in the freeze test: shorter than the freeze, longer than producing and
reading them takes."""


def test_a_frozen_broker_ends_no_session_however_long_the_freeze(
    private_broker: LocalBroker, synthetic_model: Path, tmp_path: Path
) -> None:
    """While no fetch is answered, records may be waiting on the broker (producers elsewhere reach it):
    the partitions are not known to be quiet, so their stream time stands still and no session ends,
    even past the TTL.  Its high watermark, kafka-python's from the last answered fetch, made them look
    read to their end: a 30 s network cut ended all 30 sessions in progress of a review's test."""
    private_broker.create_topics([INPUT], partitions=3)
    private_broker.create_topics([ALERTS, DEAD], partitions=1)
    log = generate_logs(seed=23, entities=30, anomaly_fraction=0.0, first_job_id=71_000)
    config = outage_config(
        private_broker, "g-freeze-ttl", synthetic_model, tmp_path, state={"ttl_seconds": TTL_S}
    )
    daemon = DaemonProcess.start(tmp_path, config)
    outage = Outage(private_broker, log, [], [], config)
    try:
        daemon.wait_assigned()
        now_ms = int(time.time() * 1000)
        produce_records(private_broker.bootstrap, INPUT, keyed_records(log), [now_ms] * len(log.lines))
        daemon.wait_processed(len(log.lines), timeout_s=PROCESS_DEADLINE_S)
        assert not [e for e in daemon.events() if e.get("event") == "sessions_expired"]
        assert daemon.process is not None
        with outage.frozen():
            cpu_before = process_cpu_seconds(daemon.process.pid)
            time.sleep(FREEZE_PAST_TTL_S)
            cpu_frozen = process_cpu_seconds(daemon.process.pid) - cpu_before
            ended = [e for e in daemon.events() if e.get("event") == "sessions_expired"]
            assert not ended, f"sessions ended while no fetch was answered: {ended}"
        # kafka-python's poll spun on a core while its heartbeat went unanswered (poll_spin.py).
        assert cpu_frozen < FREEZE_PAST_TTL_S / 2, (
            f"{cpu_frozen:.1f} s of CPU in a {FREEZE_PAST_TTL_S:g} s freeze"
        )
        # Answered again, the partitions are quiet: their time runs on and the idle sessions end.
        daemon.wait_for(
            lambda events: (
                sum(e.get("entities", 0) for e in events if e.get("event") == "sessions_expired")
                == len(set(log.entity_of_line))
            ),
            PROCESS_DEADLINE_S,
            "every session to end once fetches are answered",
        )
        assert daemon.terminate(timeout_s=STOP_DEADLINE_S) == 0, daemon.log_text()[-4000:]
    finally:
        daemon.kill()


SYSTEMD_LIKE_STOP_LIMIT_S = 10.0
"""The stop the issue asks for: exit 0 within 10 s of SIGTERM, with the default 8 s budget."""


def test_sigterm_while_the_broker_is_frozen_with_nothing_in_flight_exits_0_within_10_s(
    private_broker: LocalBroker, synthetic_model: Path, tmp_path: Path
) -> None:
    """Caught up, nothing sent and unacknowledged: the final save is local and succeeds, so the stop
    is a clean one (exit 0) even though the group never answers.  Its group commits and kafka-python's
    LeaveGroup must share what is left of the budget: each waiting the remainder made the stop take
    about 11 s with the default 8 s."""
    private_broker.create_topics([INPUT], partitions=3)
    private_broker.create_topics([ALERTS, DEAD], partitions=1)
    log = generate_logs(seed=24, entities=30, anomaly_fraction=0.0, first_job_id=72_000)
    config = outage_config(private_broker, "g-freeze-stop", synthetic_model, tmp_path)
    assert config["shutdown"]["timeout_seconds"] == 8.0
    daemon = DaemonProcess.start(tmp_path, config)
    outage = Outage(private_broker, log, [], [], config)
    try:
        daemon.wait_assigned()
        produce_records(private_broker.bootstrap, INPUT, keyed_records(log))
        daemon.wait_processed(len(log.lines), timeout_s=PROCESS_DEADLINE_S)
        with outage.frozen():
            time.sleep(FROZEN_BEFORE_STOP_S)
            stop_requested = time.monotonic()
            code = daemon.terminate(timeout_s=3 * SYSTEMD_LIKE_STOP_LIMIT_S)
            stop_seconds = time.monotonic() - stop_requested
    finally:
        daemon.kill()
    assert code == 0, daemon.log_text()[-4000:]
    assert stop_seconds < SYSTEMD_LIKE_STOP_LIMIT_S, f"the stop took {stop_seconds:.1f} s"
    saved = daemon.last_checkpoint()
    assert saved is not None and saved["reason"] == "shutdown"
