"""The daemon runs on onnxruntime alone: a whole run never imports torch.

PyTorch is a training dependency only (gigabytes, and slow to import); hosts that run the daemon
need not install it.  The offline scorer has its own check in tests/test_cli.py.  Here the real
``logwarden run`` starts, scores a stream with alerts, checkpoints and stops on SIGTERM, with
Python's import profile on (``PYTHONPROFILEIMPORTTIME``), which lists every module the process
imported, however late, on stderr (the daemon's log file here).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from daemon_harness import DaemonProcess, keyed_records, live_config, produce_tracked

from logwarden.synthetic import generate_logs

_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|(?P<indent>\s+)(?P<module>\S+)$")


def imported_modules(log_text: str) -> set[str]:
    """Every module named by the import profile lines of ``log_text``."""
    return {m["module"] for line in log_text.splitlines() if (m := _IMPORT_LINE.match(line))}


def test_imported_modules_reads_pythons_import_profile() -> None:
    """Module names come from the profile lines only, nested imports included; log lines are ignored."""
    log = (
        '{"event": "daemon_started"}\n'
        "import time: self [us] | cumulative | imported package\n"
        "import time:       812 |       1204 |   onnxruntime.capi\n"
        "import time:        35 |         35 |     torch\n"
    )

    assert imported_modules(log) == {"onnxruntime.capi", "torch"}


def test_daemon_run_with_alerts_and_checkpoints_never_imports_torch(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    consumer_group: str,
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """A real run that scores, alerts, checkpoints and stops on SIGTERM imports no torch module."""
    log = generate_logs(seed=44, entities=40, anomaly_fraction=0.2, first_job_id=44_000)
    input_topic = topic_factory(partitions=2, prefix="in")
    config = live_config(
        kafka_bootstrap, topic_factory, consumer_group, synthetic_model, tmp_path, input_topic
    )
    daemon = DaemonProcess.start(tmp_path, config, env={"PYTHONPROFILEIMPORTTIME": "1"})
    records = keyed_records(log)
    produce_tracked(kafka_bootstrap, input_topic, records)

    daemon.wait_processed(len(records), timeout_s=90)
    final = daemon.last_checkpoint()
    assert daemon.terminate() == 0

    assert final is not None and final["alerts"] > 0, "the run must score and send alerts"
    modules = imported_modules(daemon.log_text())
    # The profile covers the whole run: start-up, the Kafka clients, scoring and the state store.
    assert {"onnxruntime", "kafka", "sqlite3", "logwarden.daemon.service"} <= modules
    assert sorted(m for m in modules if m == "torch" or m.startswith("torch.")) == []
