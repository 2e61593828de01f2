"""Run the real daemon (``logwarden run``) as a subprocess against the test broker.

Tests drive it like an operator would: a YAML config, records produced into Kafka, JSON log
lines read back, SIGTERM or SIGKILL.  Waiting is always on a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from kafka import KafkaAdminClient, KafkaProducer
from kafka_broker import FAST_CONSUMER_SETTINGS

from logwarden.daemon.policy import AlertPolicy
from logwarden.daemon.state.sqlite_store import SqliteStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.model.bundle import load_bundle
from logwarden.model.runtime import OnnxStepModel
from logwarden.scoring.session import surprise_of
from logwarden.synthetic import ENTITY_REGEX, SyntheticLog

CHUNK = 50
PACE_S = 0.02  # about 2,000 records/s: a stream still flowing while the test acts, not one burst

# The daemon runs the graph one step at a time, the oracle over whole sequences: float32 rounding
# differs in the last bits, so scores agree to this many nats and the threshold keeps clear of them.
SCORE_TOLERANCE = 1e-4

DAEMON_CONSUMER_SETTINGS = {
    key: value
    for key, value in FAST_CONSUMER_SETTINGS.items()
    if key not in ("enable_auto_commit",)  # the daemon controls commits itself
}


def daemon_config(
    *,
    bootstrap: str,
    group: str,
    input_topic: str,
    alerts_topic: str,
    dead_letter_topic: str,
    model_dir: Path,
    state_dir: Path,
    input_section: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    processing: dict[str, Any] | None = None,
    kafka_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete daemon config for one test, as a plain mapping."""
    return {
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "group_id": group,
            "input_topics": [input_topic],
            "alerts_topic": alerts_topic,
            "dead_letter_topic": dead_letter_topic,
            "consumer": dict(DAEMON_CONSUMER_SETTINGS),
            **(kafka_extra or {}),
        },
        "input": input_section or {"format": "raw", "entity": {"regex": ENTITY_REGEX}},
        "model": {"path": str(model_dir)},
        "state": {"dir": str(state_dir), "checkpoint_interval_seconds": 0.5, **(state or {})},
        "processing": {**(processing or {})},
        "shutdown": {"timeout_seconds": 8.0},
        "logging": {"level": "info"},
    }


def live_config(
    bootstrap: str,
    topic_factory: Callable[..., str],
    group: str,
    model_dir: Path,
    tmp_path: Path,
    input_topic: str,
    **sections: Any,
) -> dict[str, Any]:
    """A config on the test broker reading ``input_topic``, with fresh alerts and dead-letter topics.

    ``sections`` (``state=``, ``processing=``, ...) go to ``daemon_config``.
    """
    return daemon_config(
        bootstrap=bootstrap,
        group=group,
        input_topic=input_topic,
        alerts_topic=topic_factory(prefix="alerts"),
        dead_letter_topic=topic_factory(prefix="dead"),
        model_dir=model_dir,
        state_dir=tmp_path / "state",
        **sections,
    )


@dataclass
class DaemonProcess:
    """One ``logwarden run`` subprocess with its JSON log captured to a file."""

    config_path: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log_offset: int = 0

    @classmethod
    def start(
        cls, workdir: Path, config: dict[str, Any], env: dict[str, str] | None = None, name: str = "daemon"
    ) -> DaemonProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        config_path = workdir / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        index = len(list(workdir.glob(f"{name}-*.log")))
        daemon = cls(config_path, workdir / f"{name}-{index}.log", dict(env or {}))
        log = daemon.log_path.open("wb")
        daemon.process = subprocess.Popen(
            [sys.executable, "-m", "logwarden.cli", "run", "--config", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **daemon.env},
        )
        log.close()
        return daemon

    def events(self) -> list[dict[str, Any]]:
        """Every JSON log line so far (non-JSON lines, e.g. a traceback, are returned as {"raw": ...})."""
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"raw": line})
        return out

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float, what: str
    ) -> None:
        """Wait until ``predicate(events)`` holds; fail with the log tail on deadline or daemon death."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.events()):
                return
            if self.process is not None and self.process.poll() is not None:
                if predicate(self.events()):
                    return
                raise AssertionError(
                    f"daemon exited ({self.process.returncode}) before {what}:\n{self.log_text()[-4000:]}"
                )
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}:\n{self.log_text()[-4000:]}")

    def wait_assigned(self, timeout_s: float = 30.0) -> None:
        self.wait_for(
            lambda events: any(
                e.get("event") == "partitions_assigned" and e.get("partitions") for e in events
            ),
            timeout_s,
            "partition assignment",
        )

    def last_checkpoint(self) -> dict[str, Any] | None:
        checkpoints = [e for e in self.events() if e.get("event") == "checkpoint"]
        return checkpoints[-1] if checkpoints else None

    def wait_processed(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until one checkpoint's counters cover ``count`` events plus dead letters."""
        self.wait_for(
            lambda events: any(
                e.get("event") == "checkpoint" and e.get("events", 0) + e.get("dead_letters", 0) >= count
                for e in events
            ),
            timeout_s,
            f"a checkpoint covering {count} records",
        )

    def terminate(self, timeout_s: float = 15.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=10)

    def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)


def keyed_records(log: SyntheticLog) -> list[tuple[bytes, bytes]]:
    """The log's lines as (entity key, line) records, in order: how a shipper keyed by entity sends them."""
    return [
        (entity.encode(), line.encode()) for entity, line in zip(log.entity_of_line, log.lines, strict=True)
    ]


def produce_tracked(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes | None]]
) -> list[tuple[int, int]]:
    """Produce (key, value) pairs in order; the (partition, offset) each landed at.

    Requests of up to 8 MiB, so a test can send records larger than the daemon accepts.
    """
    producer = KafkaProducer(
        bootstrap_servers=[bootstrap], acks="all", linger_ms=5, max_request_size=8 * 1024 * 1024
    )
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        producer.flush(timeout=60)
        metadata = [future.get(timeout=60) for future in futures]
    finally:
        producer.close()
    return [(m.partition, m.offset) for m in metadata]


def threshold_in_gap(scores: np.ndarray, quantile: float) -> float:
    """A threshold near ``quantile`` of ``scores`` in a gap wider than the tolerance: no coin flips."""
    finite = np.sort(scores[np.isfinite(scores)])
    start = int(np.searchsorted(finite, np.quantile(finite, quantile)))
    for low, high in zip(finite[start:-1], finite[start + 1 :], strict=True):
        if high - low > 4 * SCORE_TOLERANCE:
            return float((low + high) / 2)
    raise AssertionError("no gap between scores above the quantile to put a threshold in")


Scored = dict[str, tuple[np.ndarray, np.ndarray]]
"""Per entity: its event ids in order and the surprise of each."""


def fold_sessions(model: OnnxStepModel, sessions: Mapping[str, Sequence[int]]) -> Scored:
    """Each session's events scored by folding the model over them from a fresh state (the oracle)."""
    scored: Scored = {}
    for entity, id_list in sessions.items():
        ids = np.asarray(id_list, np.int64)
        out = model.run(ids[:, None], *model.initial_state(1))
        scored[entity] = (ids, surprise_of(out.log_probs[:, 0, :], ids))
    return scored


def expected_alerts(
    scored: Scored,
    policy: AlertPolicy,
    entity_of_line: Sequence[str],
    coordinates: Sequence[tuple[int, int]],
) -> dict[tuple[int, int], float]:
    """(partition, offset) -> score of every event ``policy`` flags; line i landed at ``coordinates[i]``."""
    coordinates_of: dict[str, list[tuple[int, int]]] = {}
    for entity, where in zip(entity_of_line, coordinates, strict=True):
        coordinates_of.setdefault(entity, []).append(where)
    expected: dict[tuple[int, int], float] = {}
    for entity, (ids, scores) in scored.items():
        for where, flag, score in zip(
            coordinates_of[entity], policy.decide(scores, ids), scores, strict=True
        ):
            if flag:
                expected[where] = float(score)
    return expected


def produce_records(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    timestamps_ms: Sequence[int] | None = None,
) -> int:
    """Produce (key, value) pairs in order and wait until every one is acknowledged."""
    producer = KafkaProducer(
        bootstrap_servers=[bootstrap], acks="all", linger_ms=5, max_request_size=4 * 1024 * 1024
    )
    count = 0
    try:
        for index, (key, value) in enumerate(records):
            stamp = timestamps_ms[index] if timestamps_ms is not None else None
            producer.send(topic, key=key, value=value, timestamp_ms=stamp)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The consumer group's committed offsets, as lag tools see them."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def stored_column(state_dir: Path, model_dir: Path, column: str) -> dict[str, Any]:
    """entity -> one column of its row (``events_applied``, ``last_seen``, ...) as a stopped daemon
    left them in its SQLite store."""
    metadata = load_bundle(model_dir).metadata
    store = SqliteStateStore(state_dir)
    store.open(StoreHeader(metadata.onnx_sha256, metadata.num_layers, metadata.state_size))
    try:
        rows, _ = store.load()
        return {
            e: value
            for chunk in rows
            for e, value in zip(chunk.entities, getattr(chunk, column).tolist(), strict=True)
        }
    finally:
        store.close()


def stored_events_applied(state_dir: Path, model_dir: Path) -> dict[str, int]:
    """entity -> events_applied as a stopped daemon left them in its SQLite store."""
    return stored_column(state_dir, model_dir, "events_applied")


class ThrottledProducer(threading.Thread):
    """Sends records in small flushed chunks at a steady pace, the last ones only once ``release`` is set.

    The pace keeps records arriving while the daemon works and the test stops it; the held-back
    ones guarantee that some arrive only after the stop.
    """

    def __init__(
        self, bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]], held_back: int
    ) -> None:
        super().__init__(daemon=True)
        self._servers = bootstrap
        self._topic = topic
        self._records = records
        self._held_back = held_back
        self.release = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=[self._servers], acks="all", linger_ms=5)
        try:
            free = len(self._records) - self._held_back
            for start in range(0, len(self._records), CHUNK):
                if start >= free and not self.release.wait(timeout=120):
                    raise TimeoutError("never released")
                for key, value in self._records[start : start + CHUNK]:
                    producer.send(self._topic, key=key, value=value)
                producer.flush(timeout=60)
                self.sent = min(start + CHUNK, len(self._records))
                time.sleep(PACE_S)
        except BaseException as exc:  # reported by the test thread
            self.error = exc
        finally:
            producer.close()
