"""Unreadable records through a real broker: each dead-lettered intact, the state as if it never came."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from daemon_harness import DaemonProcess, daemon_config, produce_tracked
from kafka_broker import read_all

from logwarden.daemon.alerts import (
    DETAIL_HEADER,
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    TOPIC_HEADER,
)
from logwarden.daemon.state.sqlite_store import SqliteStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.model.bundle import load_bundle
from logwarden.synthetic import generate_logs

PARTITIONS = 3
OVERSIZE_BYTES = 2 * 1024 * 1024
STATE_TOLERANCE = 1e-6
PROCESS_DEADLINE_S = 90.0
JSON_INPUT = {"format": "json", "entity": {"field": "job"}}

Record = tuple[bytes | None, bytes | None]


def bad_records(line: str) -> list[tuple[str, Record]]:
    """(expected dead-letter reason, record) for every kind of unreadable input the brief names."""
    return [
        ("invalid_utf8", (b"bad-utf8", b'{"message": "caf\xe9", "job": "job_1"}')),
        ("invalid_json", (None, b'{"message": "unterminated", "job": ')),
        ("missing_entity", (b"bad-entity", json.dumps({"message": line}).encode())),
        ("oversize", (b"bad-size", b'{"message": "' + b"a" * OVERSIZE_BYTES + b'", "job": "job_2"}')),
        ("non_finite_number", (b"bad-nan", b'{"message": "x", "job": "job_3", "cpu": NaN}')),
        ("non_finite_number", (b"bad-inf", b'{"message": "x", "job": "job_4", "cpu": -Infinity}')),
        ("null_value", (b"bad-null", None)),
    ]


def stored_state(state_dir: Path, model_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """entity -> (h, c, events_applied) as the stopped daemon left them in its SQLite store."""
    metadata = load_bundle(model_dir).metadata
    store = SqliteStateStore(state_dir)
    store.open(StoreHeader(metadata.onnx_sha256, metadata.num_layers, metadata.state_size))
    try:
        rows, _ = store.load()
        state = {}
        for chunk in rows:
            for i, entity in enumerate(chunk.entities):
                state[entity] = (chunk.h[i].copy(), chunk.c[i].copy(), int(chunk.events_applied[i]))
    finally:
        store.close()
    return state


def test_daemon_bad_records_interleaved_dead_lettered_and_state_unchanged(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    synthetic_model: Path,
    tmp_path: Path,
) -> None:
    """Each unreadable record is dead-lettered intact with its coordinates; valid ones fold as if alone."""
    log = generate_logs(seed=5, entities=60, anomaly_fraction=0.1, first_job_id=80_000)
    valid: list[Record] = [
        (entity.encode(), json.dumps({"message": line, "job": entity}).encode())
        for entity, line in zip(log.entity_of_line, log.lines, strict=True)
    ]
    bad = bad_records(log.lines[0])
    mixed: list[Record] = list(valid)
    stride = len(valid) // (len(bad) + 1)
    for rank, (_, record) in reversed(list(enumerate(bad, start=1))):
        mixed.insert(rank * stride, record)

    runs = {}
    for name, records in (("mixed", mixed), ("valid", valid)):
        input_topic = topic_factory(partitions=PARTITIONS, prefix=f"in-{name}")
        dead_topic = topic_factory(prefix=f"dead-{name}")
        config = daemon_config(
            bootstrap=kafka_bootstrap,
            group=f"g-{input_topic}",
            input_topic=input_topic,
            alerts_topic=topic_factory(prefix=f"alerts-{name}"),
            dead_letter_topic=dead_topic,
            model_dir=synthetic_model,
            state_dir=tmp_path / name / "state",
            input_section=JSON_INPUT,
            processing={"batch_max_events": 64},
        )
        daemon = DaemonProcess.start(tmp_path / name, config)
        runs[name] = (daemon, input_topic, dead_topic, produce_tracked(kafka_bootstrap, input_topic, records))

    mixed_daemon, mixed_topic, dead_topic, coordinates = runs["mixed"]
    valid_daemon = runs["valid"][0]
    mixed_daemon.wait_processed(len(mixed), timeout_s=PROCESS_DEADLINE_S)
    valid_daemon.wait_processed(len(valid), timeout_s=PROCESS_DEADLINE_S)
    dead_letters = read_all(kafka_bootstrap, dead_topic, expected_count=len(bad), timeout_s=30)
    assert mixed_daemon.process is not None and mixed_daemon.process.poll() is None, (
        "the daemon keeps running"
    )
    assert mixed_daemon.terminate() == 0
    assert valid_daemon.terminate() == 0

    where_of = {where: record for where, record in zip(coordinates, mixed, strict=True)}
    bad_at = {coordinates[mixed.index(record)]: (reason, record) for reason, record in bad}
    assert len(dead_letters) == len(bad)
    seen = set()
    for letter in dead_letters:
        headers = {name: value.decode() for name, value in letter.headers}
        assert headers[TOPIC_HEADER] == mixed_topic
        where = (int(headers[PARTITION_HEADER]), int(headers[OFFSET_HEADER]))
        reason, record = bad_at[where]
        assert where_of[where] == record
        assert (letter.key, letter.value) == record, f"{reason}: original key and value kept"
        assert headers[REASON_HEADER] == reason
        assert headers[DETAIL_HEADER]
        seen.add(where)
    assert seen == set(bad_at)

    final = mixed_daemon.last_checkpoint()
    assert final is not None
    assert (final["dead_letters"], final["events"]) == (len(bad), len(valid))
    logged: Counter[str] = Counter()
    for event in mixed_daemon.events():
        if event.get("event") == "bad_input":
            logged.update(event["dead_letters"])
    assert logged == Counter(reason for reason, _ in bad)

    with_bad = stored_state(tmp_path / "mixed" / "state", synthetic_model)
    without_bad = stored_state(tmp_path / "valid" / "state", synthetic_model)
    assert sorted(with_bad) == sorted(without_bad) == sorted(set(log.entity_of_line))
    for entity, (h, c, applied) in without_bad.items():
        h_bad, c_bad, applied_bad = with_bad[entity]
        assert applied_bad == applied == log.entity_of_line.count(entity)
        np.testing.assert_allclose(h_bad, h, rtol=0, atol=STATE_TOLERANCE)
        np.testing.assert_allclose(c_bad, c, rtol=0, atol=STATE_TOLERANCE)
