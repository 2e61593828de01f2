"""The daemon as an operator runs it: SIGTERM under load and a restart, bad configs, ``run --check``,
and what it tells systemd (sd_notify)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime
import pytest
import yaml
from daemon_harness import (
    DaemonProcess,
    ThrottledProducer,
    daemon_config,
    keyed_records,
    live_config,
    produce_records,
    stored_events_applied,
)
from kafka_broker import read_all

from logwarden import __version__
from logwarden.daemon.state.sqlite_store import SqliteStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.model.bundle import load_bundle
from logwarden.synthetic import generate_logs

EXIT_CONFIG = 3
EXIT_MODEL = 4
EXIT_STATE = 6
EXIT_BROKER = 8
EXIT_DELIVERY = 1
MISSING_TOPIC_DEADLINE_S = 30.0  # kafka-python's producer waits max_block_ms, 60 s, for a missing topic
STOP_DEADLINE_S = 10.0
PROCESS_DEADLINE_S = 90.0
CLI_DEADLINE_S = 60.0
UNUSED_BOOTSTRAP = "127.0.0.1:9"
SECRET = "hunter2-do-not-log"
BUSY_EVENTS = 1500


def final_counters(daemon: DaemonProcess) -> dict[str, Any]:
    """The counters of the daemon's last checkpoint (its shutdown checkpoint once it has stopped)."""
    checkpoint = daemon.last_checkpoint()
    assert checkpoint is not None, daemon.log_text()[-4000:]
    return checkpoint


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``logwarden ARGS`` in a subprocess, as systemd would start it."""
    return subprocess.run(
        [sys.executable, "-m", "logwarden.cli", *args],
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE_S,
        check=False,
    )


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """``config`` written to ``path`` as YAML for the CLI to read; returns ``path``."""
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def offline_config(model_dir: Path, state_dir: Path) -> dict[str, Any]:
    """A valid config pointing at a port nobody listens on: for checks that must not need a broker."""
    return daemon_config(
        bootstrap=UNUSED_BOOTSTRAP,
        group="g-offline",
        input_topic="logs",
        alerts_topic="alerts",
        dead_letter_topic="dead",
        model_dir=model_dir,
        state_dir=state_dir,
    )


def test_daemon_sigterm_under_load_exits_0_and_restart_resumes_without_replay(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """SIGTERM mid-stream stops cleanly; a restart processes exactly the rest, state and alert ids go on;
    the restart's ``started`` line reports the state restored and the model's rules."""
    log = generate_logs(seed=9, entities=500, anomaly_fraction=0.05, first_job_id=90_000)
    records = keyed_records(log)
    input_topic = topic_factory(partitions=3, prefix="in")
    alerts_topic = topic_factory(partitions=3, prefix="alerts")
    config = daemon_config(
        bootstrap=kafka_bootstrap,
        group=consumer_group,
        input_topic=input_topic,
        alerts_topic=alerts_topic,
        dead_letter_topic=topic_factory(prefix="dead"),
        model_dir=synthetic_model,
        state_dir=tmp_path / "state",
        processing={"batch_max_events": 128},
    )
    config["model"]["threshold"] = 3.0  # many alerts, so that a replay would show as repeated ids
    first = DaemonProcess.start(tmp_path, config)
    first.wait_assigned()
    producer = ThrottledProducer(kafka_bootstrap, input_topic, records, held_back=len(records) // 4)
    producer.start()
    try:
        first.wait_for(
            lambda events: any(e.get("event") == "checkpoint" and e["events"] >= BUSY_EVENTS for e in events),
            PROCESS_DEADLINE_S,
            f"a checkpoint covering {BUSY_EVENTS} events",
        )
        assert producer.is_alive() and producer.sent < len(records)
        assert first.terminate(timeout_s=STOP_DEADLINE_S) == 0
    finally:
        producer.release.set()
        first.kill()
    producer.join(timeout=PROCESS_DEADLINE_S)
    assert producer.error is None and producer.sent == len(records)
    assert any(e.get("event") == "shutdown" for e in first.events())
    stopped = final_counters(first)
    assert stopped["reason"] == "shutdown" and 0 < stopped["events"] < len(records)

    second = DaemonProcess.start(tmp_path, config)
    try:
        second.wait_processed(len(records) - stopped["events"], timeout_s=PROCESS_DEADLINE_S)
        assert second.terminate(timeout_s=STOP_DEADLINE_S) == 0
    finally:
        second.kill()
    resumed = final_counters(second)
    assert stopped["events"] + resumed["events"] == len(records)
    assert stopped["dead_letters"] == resumed["dead_letters"] == 0
    started = next(e for e in second.events() if e.get("event") == "started")
    assert started["entities_restored"] > 0
    metadata = load_bundle(synthetic_model).metadata
    rules = metadata.describe_rules()
    assert {name: started[name] for name in rules} == rules  # as run --check prints them
    assert started["model"] == metadata.identity()

    total_alerts = stopped["alerts"] + resumed["alerts"]
    alerts = read_all(kafka_bootstrap, alerts_topic, expected_count=total_alerts, timeout_s=30)
    ids = [json.loads(r.value)["alert_id"] for r in alerts]
    assert len(ids) == total_alerts > 0
    assert len(set(ids)) == len(ids), "no alert was produced twice"
    assert stored_events_applied(tmp_path / "state", synthetic_model) == Counter(log.entity_of_line)


@pytest.mark.parametrize(
    ("section", "key", "value", "named"),
    [
        ("state", "ttl_seconds", -5, "state.ttl_seconds"),
        ("kafka", "grup_id", "typo", "kafka.grup_id"),
        ("state", "max_entities", 10, "state.max_entities"),
        ("state", "max_entities", 2_147_483_647, "state.max_entities"),
        ("kafka", "consumer", {"enable_auto_commit": True}, "kafka.consumer.enable_auto_commit"),
    ],
)
def test_daemon_run_invalid_config_exits_3_naming_key(
    synthetic_model: Path, tmp_path: Path, section: str, key: str, value: object, named: str
) -> None:
    """``logwarden run`` with an invalid key exits 3 (no restart loop) and names the key on stderr."""
    config = offline_config(synthetic_model, tmp_path / "state")
    config[section][key] = value
    result = run_cli("run", "--config", str(write_config(tmp_path / "bad.yaml", config)))
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert named in result.stderr


def test_daemon_run_missing_required_key_exits_3_naming_key(synthetic_model: Path, tmp_path: Path) -> None:
    """A config without model.path exits 3 and says model.path is required."""
    config = offline_config(synthetic_model, tmp_path / "state")
    del config["model"]["path"]
    result = run_cli("run", "--config", str(write_config(tmp_path / "bad.yaml", config)))
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "model.path" in result.stderr and "missing" in result.stderr


def test_daemon_run_config_with_several_errors_names_each_on_its_own_stderr_line(
    synthetic_model: Path, tmp_path: Path
) -> None:
    """Every invalid key is listed at once, each line prefixed like a single error, so one edit fixes all."""
    config = offline_config(synthetic_model, tmp_path / "state")
    config["state"]["ttl_seconds"] = -5
    config["kafka"]["grup_id"] = "typo"
    result = run_cli("run", "--config", str(write_config(tmp_path / "bad.yaml", config)), "--check")
    assert result.returncode == EXIT_CONFIG, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("logwarden run: error: ") for line in lines)
    assert "kafka.grup_id" in result.stderr and "state.ttl_seconds" in result.stderr


def test_daemon_run_missing_model_dir_exits_4(tmp_path: Path) -> None:
    """A model directory that does not exist exits 4 and names it, before any Kafka connection."""
    missing = tmp_path / "no-such-model"
    config = offline_config(missing, tmp_path / "state")
    result = run_cli("run", "--config", str(write_config(tmp_path / "daemon.yaml", config)))
    assert result.returncode == EXIT_MODEL, result.stderr
    assert str(missing) in result.stderr


def test_daemon_run_without_reachable_broker_exits_8_naming_servers_and_cause(
    synthetic_model: Path, tmp_path: Path
) -> None:
    """No broker at start: exit 8 (restartable) naming kafka.bootstrap_servers, the refusal in the log."""
    config = offline_config(synthetic_model, tmp_path / "state")
    config["kafka"]["common"] = {"bootstrap_timeout_ms": 1500}
    result = run_cli("run", "--config", str(write_config(tmp_path / "daemon.yaml", config)))
    assert result.returncode == EXIT_BROKER, result.stderr
    assert f"kafka.bootstrap_servers ['{UNUSED_BOOTSTRAP}']" in result.stderr
    assert "Traceback" not in result.stderr
    library_lines = [
        line for line in map(json.loads, result.stdout.splitlines()) if line["event"] == "library_log"
    ]
    assert any("ECONNREFUSED" in line["message"] for line in library_lines), result.stdout
    assert len(library_lines) < 20, "repeated connection failures are collapsed"


def test_daemon_run_tls_to_silent_endpoint_exits_8_instead_of_hanging(
    synthetic_model: Path, tmp_path: Path
) -> None:
    """An endpoint that accepts TCP and never answers stalls the TLS handshake; the start deadline ends it."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever reads
        config = offline_config(synthetic_model, tmp_path / "state")
        config["kafka"]["bootstrap_servers"] = [f"127.0.0.1:{silent.getsockname()[1]}"]
        config["kafka"]["common"] = {
            "security_protocol": "SSL",
            "bootstrap_timeout_ms": 1000,
            "request_timeout_ms": 1500,
        }
        started = time.monotonic()
        result = run_cli("run", "--config", str(write_config(tmp_path / "daemon.yaml", config)))
    assert result.returncode == EXIT_BROKER, result.stderr
    assert "still connecting after 2.5 s" in result.stderr
    assert time.monotonic() - started < CLI_DEADLINE_S / 2


def test_daemon_run_setting_kafka_python_rejects_exits_3_naming_section(
    kafka_bootstrap: str, synthetic_model: Path, tmp_path: Path
) -> None:
    """A passthrough value kafka-python refuses once connected is a config error (exit 3), not a crash."""
    config = offline_config(synthetic_model, tmp_path / "state")
    config["kafka"]["bootstrap_servers"] = [kafka_bootstrap]
    config["kafka"]["consumer"] = {"isolation_level": "bogus"}
    result = run_cli("run", "--config", str(write_config(tmp_path / "daemon.yaml", config)))
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "kafka.consumer" in result.stderr and "isolation_level" in result.stderr
    assert "Traceback" not in result.stderr


def test_daemon_run_reset_none_without_saved_offsets_exits_3_naming_setting(
    kafka_bootstrap: str, topic_factory: Callable[..., str], synthetic_model: Path, tmp_path: Path
) -> None:
    """``auto_offset_reset: none`` on a group with no offsets stops with what to do, not a traceback."""
    config = offline_config(synthetic_model, tmp_path / "state")
    config["kafka"].update(
        bootstrap_servers=[kafka_bootstrap],
        input_topics=[topic_factory(partitions=1)],
        alerts_topic=topic_factory(partitions=1),
        dead_letter_topic=topic_factory(partitions=1),
    )
    config["kafka"]["consumer"] = {
        "auto_offset_reset": "none",
        "max_poll_interval_ms": 5000,
        "session_timeout_ms": 3000,
        "heartbeat_interval_ms": 500,
    }
    result = run_cli("run", "--config", str(write_config(tmp_path / "daemon.yaml", config)))
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "kafka.consumer.auto_offset_reset: none" in result.stderr and "--reset-offsets" in result.stderr
    assert "Traceback" not in result.stderr


def test_daemon_run_missing_output_topic_exits_1_at_once_naming_it(
    kafka_bootstrap: str, topic_factory: Callable[..., str], synthetic_model: Path, tmp_path: Path
) -> None:
    """A missing dead-letter topic stops the start with its name, instead of a 60 s metadata wait."""
    missing = f"dead-{uuid.uuid4().hex}"
    config = offline_config(synthetic_model, tmp_path / "state")
    config["kafka"].update(
        bootstrap_servers=[kafka_bootstrap],
        input_topics=[topic_factory(partitions=1)],
        alerts_topic=topic_factory(partitions=1),
        dead_letter_topic=missing,
    )
    started = time.monotonic()
    result = run_cli("run", "--config", str(write_config(tmp_path / "daemon.yaml", config)))
    assert result.returncode == EXIT_DELIVERY, result.stderr
    assert f"output topic '{missing}' does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < MISSING_TOPIC_DEADLINE_S, "waited for metadata that never comes"


def test_daemon_missing_input_topic_is_a_warning_naming_it_and_the_daemon_runs(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """A consumer group may wait for a topic, so the daemon runs on, but says which topic it lacks."""
    missing = f"in-{uuid.uuid4().hex}"
    config = live_config(kafka_bootstrap, topic_factory, consumer_group, synthetic_model, tmp_path, missing)
    daemon = DaemonProcess.start(tmp_path, config)
    try:
        # Signal handlers are installed once started: a SIGTERM before that ends the process as is.
        daemon.wait_for(
            lambda events: any(e.get("event") == "started" for e in events), PROCESS_DEADLINE_S, "start"
        )
        warnings = [e for e in daemon.events() if e.get("event") == "input_topics_missing"]
        assert [(w["topics"], w["level"]) for w in warnings] == [([missing], "warning")]
        assert daemon.terminate(timeout_s=STOP_DEADLINE_S) == 0
    finally:
        daemon.kill()


def test_daemon_run_check_prints_config_with_secrets_masked(synthetic_model: Path, tmp_path: Path) -> None:
    """``run --check`` validates config and model, prints the effective config (and the model's transition
    rule) and never the SASL password."""
    config = offline_config(synthetic_model, tmp_path / "state")
    sasl = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}
    config["kafka"]["common"] = {**sasl, "sasl_plain_username": "logwarden", "sasl_plain_password": SECRET}
    result = run_cli("run", "--config", str(write_config(tmp_path / "daemon.yaml", config)), "--check")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    printed = json.loads(result.stdout)
    common = printed["config"]["kafka"]["common"]
    assert common == {**sasl, "sasl_plain_username": "logwarden", "sasl_plain_password": "***"}
    assert printed["config"]["model"]["path"] == str(synthetic_model)
    metadata = load_bundle(synthetic_model).metadata
    assert printed["model"] == metadata.model_version
    assert metadata.transition_rule is not None  # the generated jobs repeat their transitions
    assert printed["transition_rule"] == {
        "transitions": len(metadata.transition_rule.transitions),
        "checks": ["boundaries", "inner"],
        "penalty": 100.0,
    }
    assert metadata.cooccurrence_rule is None  # every pair of the generated jobs' events meets
    assert printed["cooccurrence_rule"] is None
    assert metadata.length_rule is None  # 400 training jobs are too few for the rule's bound
    assert printed["length_rule"] is None
    assert printed["software"]["logwarden"] == __version__
    assert printed["software"]["onnxruntime"] == onnxruntime.__version__
    assert printed["state"] == {
        "path": str(tmp_path / "state" / "state.sqlite3"),
        "entities_saved": 0,
        "entities_to_evict": 0,
    }
    assert not (tmp_path / "state").exists(), "a check touches no state"


def test_daemon_run_check_refuses_the_state_of_another_model_as_the_start_would(
    synthetic_model: Path, tmp_path: Path
) -> None:
    """A new model deployed onto the old model's state: the start exits 6, and ``--check`` says so first."""
    metadata = load_bundle(synthetic_model).metadata
    old_model = StoreHeader(
        model_sha256="cd" * 32, num_layers=metadata.num_layers, hidden_size=metadata.state_size
    )
    store = SqliteStateStore(tmp_path / "state")
    store.open(old_model)
    store.close()
    config = write_config(tmp_path / "daemon.yaml", offline_config(synthetic_model, tmp_path / "state"))
    result = run_cli("run", "--config", str(config), "--check")
    assert result.returncode == EXIT_STATE, result.stderr
    assert "state.sqlite3: saved state has model_sha256='cdcd" in result.stderr


def test_daemon_tells_systemd_ready_then_pings_the_watchdog_then_stopping(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """The units' ``Type=notify`` and ``WatchdogSec=60`` need, from the main process: READY=1 once it has
    started, WATCHDOG=1 while it runs (idle input included), STOPPING=1 at SIGTERM; each save updates
    the STATUS line ``systemctl status`` shows."""
    address = str(tmp_path / "notify.sock")
    received: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(0.1)
        done = threading.Event()

        def collect() -> None:
            while not done.is_set():
                try:
                    received.append(listener.recv(4096).decode())
                except TimeoutError:
                    continue

        collector = threading.Thread(target=collect, daemon=True)
        collector.start()
        input_topic = topic_factory(prefix="in")
        config = live_config(
            kafka_bootstrap, topic_factory, consumer_group, synthetic_model, tmp_path, input_topic
        )
        daemon = DaemonProcess.start(tmp_path, config, env={"NOTIFY_SOCKET": address})
        try:
            daemon.wait_assigned(timeout_s=PROCESS_DEADLINE_S)
            log = generate_logs(seed=4, entities=20, anomaly_fraction=0.0, first_job_id=40_000)
            produce_records(kafka_bootstrap, input_topic, keyed_records(log))
            daemon.wait_for(
                lambda events: any(e.get("event") == "checkpoint" and e.get("events") for e in events),
                PROCESS_DEADLINE_S,
                "a save covering the input",
            )
            deadline = time.monotonic() + PROCESS_DEADLINE_S
            while received.count("WATCHDOG=1") < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert daemon.terminate(timeout_s=STOP_DEADLINE_S) == 0
            time.sleep(0.3)  # the last datagrams
        finally:
            daemon.kill()
            done.set()
            collector.join(timeout=5)
    assert received[0] == "READY=1", received[:5]
    assert received.count("READY=1") == 1
    assert received.count("WATCHDOG=1") >= 3
    assert received.count("STOPPING=1") == 1
    last_ping = max(i for i, message in enumerate(received) if message == "WATCHDOG=1")
    assert received.index("STOPPING=1") > last_ping, "no watchdog ping once a stop has begun"
    saves = [m for m in received if m.startswith("STATUS=") and "last save" in m]
    assert saves, received
    assert f"since start {len(log.lines):,} events" in saves[-1], saves[-1]
