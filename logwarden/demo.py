"""``make demo``: the whole product end to end on seeded synthetic data, in a few minutes.

Starts a local broker, generates a normal training log and a test stream with injected
anomalies of known kinds, trains and exports a model, runs the daemon as a subprocess,
replays the stream into Kafka, then prints the alerts and how many anomalies were caught.
With ``--json`` the same jobs travel as JSON events whose job id is only in the field ``job.id``
(what a log shipper sends): the model is trained with ``train --json`` and the daemon reads
``input.format: json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from datetime import datetime
from pathlib import Path

import yaml

from logwarden.devbroker import LocalBroker
from logwarden.synthetic import ENTITY_REGEX, SyntheticLog, generate_logs, write_lines
from logwarden.synthetic.json_events import ENTITY_FIELD, TIMESTAMP_FIELD, as_json_events

INPUT_TOPIC = "demo.logs"
ALERTS_TOPIC = "demo.alerts"
DEAD_LETTER_TOPIC = "demo.dead-letter"
GROUP = "logwarden-demo"
TTL_SECONDS = 60.0
"""Longer than any quiet spell inside a normal generated job (the longest of the demo's 1,900 normal
jobs is 32.9 s): a shorter TTL ends such a job's session in the middle, as it would live."""
# The local broker holds a group join for about half the session timeout: a short session joins fast.
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 10000}


def say(message: str) -> None:
    """Print one progress line, prefixed ``[demo]`` and flushed at once."""
    print(f"[demo] {message}", flush=True)


def train_model(lines: list[str], out: Path, epochs: int, seed: int, json_events: bool) -> dict[str, object]:
    """Train on ``lines`` and export the model to ``out``; return its threshold, templates and method."""
    from logwarden.events.json_events import JsonFields
    from logwarden.events.raw import parser_settings
    from logwarden.logs import configure_logging
    from logwarden.train.fit import TrainingOptions
    from logwarden.train.pipeline import train_on_logs

    configure_logging("warning", sys.stderr)
    # The exporter warns about LSTM batch sizes unless h0/c0 are graph inputs; ours are.
    warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
    metadata = train_on_logs(
        lines,
        parser_settings(None if json_events else ENTITY_REGEX),
        TrainingOptions(epochs=epochs, seed=seed),
        out,
        json_fields=JsonFields(entity=ENTITY_FIELD) if json_events else None,
    )
    return {
        "threshold": round(metadata.threshold, 3),
        "templates": len(metadata.templates),
        "method": metadata.threshold_method,
    }


def write_config(path: Path, bootstrap: str, model_dir: Path, state_dir: Path, json_events: bool) -> None:
    """Write the daemon's config: demo topics, raw or JSON input, a short session timeout for fast joins."""
    json_input = {"entity": {"field": ENTITY_FIELD}, "json": {"timestamp_field": TIMESTAMP_FIELD}}
    config = {
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "group_id": GROUP,
            "input_topics": [INPUT_TOPIC],
            "alerts_topic": ALERTS_TOPIC,
            "dead_letter_topic": DEAD_LETTER_TOPIC,
            "consumer": FAST_GROUP,
        },
        "input": {"format": "json", **json_input}
        if json_events
        else {"format": "raw", "entity": {"regex": ENTITY_REGEX}},
        # Absolute: the daemon reads relative paths from the config file's directory.
        "model": {"path": str(model_dir.absolute())},
        "state": {
            "dir": str(state_dir.absolute()),
            "ttl_seconds": TTL_SECONDS,
            "checkpoint_interval_seconds": 2.0,
        },
        "logging": {"level": "info"},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def produce(bootstrap: str, stream: SyntheticLog, values: list[str]) -> int:
    """Send every value keyed by its entity, with its line's own time as the record timestamp."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=[bootstrap], linger_ms=5, acks="all")
    for line, value, entity in zip(stream.lines, values, stream.entity_of_line, strict=True):
        stamp = datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))
        producer.send(
            INPUT_TOPIC, key=entity.encode(), value=value.encode(), timestamp_ms=int(stamp.timestamp() * 1000)
        )
    producer.flush()
    producer.close()
    return len(values)


def committed_total(bootstrap: str) -> int:
    """Input records the daemon's group has committed, summed over partitions (0 before any commit)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({GROUP: None}).get(GROUP, {})
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == INPUT_TOPIC and meta.offset > 0)


def read_alerts(bootstrap: str) -> list[dict[str, object]]:
    """Every alert on the alerts topic, decoded, read from the beginning until 3 s pass without one."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=[bootstrap], enable_auto_commit=False, consumer_timeout_ms=3000
    )
    partition = TopicPartition(ALERTS_TOPIC, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    alerts = [json.loads(record.value) for record in consumer]
    consumer.close()
    return alerts


def report(stream: SyntheticLog, alerts: list[dict[str, object]]) -> dict[str, object]:
    """Which injected anomalies were caught, by kind, and how many normal entities alerted."""
    alerted = {str(alert["entity"]) for alert in alerts}
    by_kind: dict[str, list[int]] = {}
    for entity, kind in stream.anomalies.items():
        caught, total = by_kind.setdefault(kind, [0, 0])
        by_kind[kind] = [caught + (entity in alerted), total + 1]
    normal = [e for e in stream.entities if e not in stream.anomalies]
    false_alarms = sum(1 for e in normal if e in alerted)
    caught = sum(c for c, _ in by_kind.values())
    return {
        "alerts": len(alerts),
        "alert_kinds": dict(Counter(str(a["kind"]) for a in alerts)),
        "anomalies_caught": f"{caught}/{len(stream.anomalies)}",
        "by_kind": {kind: f"{c}/{t}" for kind, (c, t) in sorted(by_kind.items())},
        "normal_entities_alerted": f"{false_alarms}/{len(normal)}",
    }


def main(argv: list[str] | None = None) -> int:
    """Run the demo end to end and print what it caught; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="working directory (recreated)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-entities", type=int, default=1000)
    parser.add_argument("--stream-entities", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--json", action="store_true", help="send the jobs as JSON events, the job id in the field job.id"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    out: Path = args.out
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    out.mkdir(parents=True)

    training = generate_logs(args.seed, args.train_entities, anomaly_fraction=0.0)
    stream = generate_logs(args.seed + 1, args.stream_entities, anomaly_fraction=0.05, first_job_id=100_000)
    training_lines = as_json_events(training) if args.json else training.lines
    stream_values = as_json_events(stream) if args.json else stream.lines
    suffix = "jsonl" if args.json else "log"
    write_lines(out / f"train.{suffix}", training_lines)
    write_lines(out / f"stream.{suffix}", stream_values)
    say(
        f"generated {len(training_lines)} training {'JSON events' if args.json else 'lines'} and a stream "
        f"of {len(stream_values)} ({len(stream.anomalies)} anomalous of {len(stream.entities)} jobs)"
    )
    summary = train_model(training_lines, out / "model", args.epochs, args.seed, args.json)
    say(f"trained and exported {out / 'model'}: {summary}")

    with LocalBroker(out / "broker.log") as broker:
        broker.create_topics([INPUT_TOPIC], partitions=3)
        broker.create_topics([ALERTS_TOPIC, DEAD_LETTER_TOPIC], partitions=1)
        config_path = out / "config.yaml"
        write_config(config_path, broker.bootstrap, out / "model", out / "state", args.json)
        daemon_log = (out / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "logwarden.cli", "run", "--config", str(config_path)],
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            say(
                f"daemon started (pid {daemon.pid}, log {out / 'daemon.log'}); "
                "replaying the stream into Kafka"
            )
            produced = produce(broker.bootstrap, stream, stream_values)
            deadline = time.monotonic() + 90
            while committed_total(broker.bootstrap) < produced and time.monotonic() < deadline:
                if daemon.poll() is not None:
                    raise SystemExit(f"daemon exited with {daemon.returncode}; see {out / 'daemon.log'}")
                time.sleep(0.5)
            say(
                f"daemon committed all {produced} events; "
                f"waiting {TTL_SECONDS:.0f}s of idle time so the last sessions end"
            )
            time.sleep(TTL_SECONDS + 4)
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=15)
            say(f"daemon stopped with exit code {code}")
        finally:
            if daemon.poll() is None:
                daemon.kill()
            daemon_log.close()
        alerts = read_alerts(broker.bootstrap)

    for alert in alerts[:3]:
        say("example alert: " + json.dumps(alert)[:400])
    result = report(stream, alerts)
    say(json.dumps(result, indent=2))
    say(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
