"""Daemon throughput, latency and memory, measured in one run on local brokers (one per measurement).

Phases (all by default):
  rate     the raw kafka-python consume rate of the input topic (the ceiling), the same with the
           compiled record decoder the daemon uses, then the daemon's end-to-end rate from input to
           committed checkpoint, on the same messages (~180-byte raw lines, 50k entities, alerts well
           under 1 % of events); and the daemon's rate with kafka-python's own decoder
           (``--no-compare-decoders`` skips it)
  latency  p50/p99 event-to-alert latency with the input produced at half the measured daemon rate,
           after the same input read by a bare consumer (the floor no daemon can beat on this broker;
           the test broker's fetches slow down as a topic fills, so a longer run reads higher).
           The load comes from ``lean_producer.py`` (0.1 of a core at 30,000 records/s), or with
           ``--generator kafka-python`` from KafkaProducer (0.8 of a core); CPU shares are printed.
  memory   peak RSS of the daemon tracking 1,000,000 entities

The raw and daemon rates share one broker and input; the latency floor, the daemon latency and the
memory phase each get a fresh broker: the test broker's memory storage slows down as it
holds more records, which Apache Kafka's fetches do not.

Usage: python benchmarks/throughput.py [--phases rate,latency,memory] [--model DIR]
       [--generator lean|kafka-python]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from lean_producer import LeanProducer, batches_by_partition, partition_for
from synthetic_model import train_synthetic_model

from logwarden.daemon.kafka_client import reader_install
from logwarden.daemon.kafka_client.corrupt_batches import CorruptBatchReports
from logwarden.devbroker import LocalBroker
from logwarden.synthetic import ENTITY_REGEX, SyntheticLog, generate_logs

FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 30000}


def say(text: str) -> None:
    """Print a result line at once, so a long run shows each figure as it comes."""
    print(text, flush=True)


def record_time_ms(line: str) -> int:
    """The ISO time that starts a generated line, in epoch ms."""
    return int(datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp() * 1000)


def produce(bootstrap: str, topic: str, lines: list[str], keys: list[str], timestamps: bool = True) -> float:
    """Send ``lines`` keyed by ``keys`` as fast as KafkaProducer goes; returns records/s.

    Each record is stamped with its line's time or, with ``timestamps`` False, its send time.
    """
    producer = KafkaProducer(bootstrap_servers=[bootstrap], linger_ms=20, batch_size=512 * 1024, acks=1)
    started = time.monotonic()
    for line, key in zip(lines, keys, strict=True):
        producer.send(
            topic,
            key=key.encode(),
            value=line.encode(),
            timestamp_ms=record_time_ms(line) if timestamps else None,
        )
    producer.flush()
    producer.close()
    return len(lines) / (time.monotonic() - started)


def raw_consume_rate(
    bootstrap: str, topic: str, partitions: int, expected: int, compiled: bool = False
) -> float:
    """Records/s of a bare kafka-python consumer reading the topic from the beginning (values untouched).

    ``compiled``: records read by the compiled decoder the daemon uses
    (daemon/kafka_client/compiled_records.py).
    """
    consumer = KafkaConsumer(
        bootstrap_servers=[bootstrap],
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_wait_ms=100,
    )
    if compiled:
        installed = reader_install.install(consumer, CorruptBatchReports())
        if not installed.compiled:
            raise RuntimeError(f"compiled record decoder unavailable: {installed.reason}")
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    count = 0
    started = None
    while count < expected:
        polled = consumer.poll(timeout_ms=1000, max_records=2048)
        if polled and started is None:
            started = time.monotonic()
        for batch in polled.values():
            count += len(batch)
    elapsed = time.monotonic() - (started or time.monotonic())
    consumer.close()
    return count / elapsed


class Daemon:
    """``logwarden run`` as a subprocess, its JSON log parsed on demand."""

    def __init__(self, workdir: Path, config: dict) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "daemon.log"
        self.state_dir = Path(config["state"]["dir"])
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "logwarden.cli", "run", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()

    def events(self) -> list[dict]:
        """The daemon's log lines so far, parsed; one that is not JSON comes as ``{"raw": line}``."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"raw": line})
        return out

    def wait(self, predicate, timeout_s: float, what: str) -> dict:
        """Poll the log for an event ``predicate`` accepts; SystemExit naming ``what`` on exit or timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            if self.process.poll() is not None:
                raise SystemExit(
                    f"daemon exited ({self.process.returncode}) before {what}; see {self.log_path}"
                )
            time.sleep(0.2)
        self.process.kill()  # its broker stops with the run: left alone, it would retry forever
        raise SystemExit(f"timed out waiting for {what}; see {self.log_path}")

    def peak_rss_mb(self) -> float:
        """The daemon's peak resident memory so far (VmHWM), in MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> int:
        """SIGTERM, wait for the exit, and delete the state store: a measurement never reuses one,
        and the memory phase's holds 1.2 GB (its log stays beside the config, for a look later)."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return code


def iso_seconds(text: str) -> float:
    """An ISO 8601 time (``Z`` allowed) in epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def stamp(event: dict) -> float:
    """When the daemon wrote log event ``event``, in epoch seconds."""
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def daemon_config(
    bootstrap: str,
    group: str,
    topic: str,
    model: Path,
    state: Path,
    compiled_decoder: bool = True,
    **state_extra,
) -> dict:
    """Daemon config for one measurement: raw input, fast group joins, ``state_extra`` under ``state``."""
    return {
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "group_id": group,
            "input_topics": [topic],
            "alerts_topic": f"{topic}.alerts",
            "dead_letter_topic": f"{topic}.dlq",
            "compiled_record_decoder": compiled_decoder,
            "consumer": FAST_GROUP,
        },
        "input": {"format": "raw", "entity": {"regex": ENTITY_REGEX}},
        # Absolute: the daemon reads relative paths from the config file's directory (the work dir).
        "model": {"path": str(model.absolute())},
        "state": {"dir": str(state.absolute()), **state_extra},
        "logging": {"level": "info"},
    }


def set_dotted(config: dict, dotted: str, value: Any) -> None:
    """Set ``config["a"]["b"]`` for ``dotted`` "a.b", creating maps on the way."""
    *path, last = dotted.split(".")
    for key in path:
        config = config.setdefault(key, {})
    config[last] = value


def option_pair(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line; the value is read as YAML (numbers, booleans, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, yaml.safe_load(value)


def processed(event: dict, count: int) -> bool:
    """Whether ``event`` is a checkpoint covering ``count`` or more records (scored or dead-lettered)."""
    return (
        event.get("event") == "checkpoint" and event.get("events", 0) + event.get("dead_letters", 0) >= count
    )


def daemon_rate(
    broker: LocalBroker, model: Path, work: Path, topic: str, n: int, compiled_decoder: bool
) -> tuple[float, dict]:
    """Events/s from partition assignment to the checkpoint covering all ``n`` input records."""
    name = "rate-compiled" if compiled_decoder else "rate-kafka-python"
    config = daemon_config(
        broker.bootstrap,
        f"bench-{name}",
        topic,
        model,
        work / name / "state",
        compiled_decoder=compiled_decoder,
        checkpoint_interval_seconds=5.0,
    )
    daemon = Daemon(work / name, config)
    started = daemon.wait(
        lambda e: e.get("event") == "partitions_assigned" and e.get("partitions"), 60, "assignment"
    )
    done = daemon.wait(lambda e: processed(e, n), 300, f"checkpoint of {n} records")
    decoder = daemon.wait(lambda e: e.get("event") == "record_decoder", 1, "record_decoder log line")
    daemon.stop()
    wanted = "compiled" if compiled_decoder else "kafka-python"
    if decoder.get("decoder") != wanted:
        raise RuntimeError(
            f"the daemon read with the {decoder.get('decoder')} decoder, not {wanted}: {decoder}"
        )
    return n / (stamp(done) - stamp(started)), done


def phase_rate(broker: LocalBroker, model: Path, work: Path, entities: int, compare_decoders: bool) -> float:
    """Print the raw consume rates and the daemon's end-to-end rate on one input; return the latter."""
    stream = generate_logs(seed=5, entities=entities, anomaly_fraction=0.004, first_job_id=1_000_000)
    n = len(stream.lines)
    topic = "bench.rate"
    broker.create_topics([topic], partitions=3)
    broker.create_topics([f"{topic}.alerts", f"{topic}.dlq"], partitions=1)
    produce_rate = produce(broker.bootstrap, topic, stream.lines, stream.entity_of_line)
    say(
        f"input: {n} records, {np.mean([len(line) for line in stream.lines]):.0f} bytes avg, "
        f"{len(set(stream.entity_of_line))} entities (produced at {produce_rate:,.0f}/s)"
    )
    raw = raw_consume_rate(broker.bootstrap, topic, 3, n)
    say(f"raw kafka-python consume rate (ceiling): {raw:,.0f} records/s")
    raw_compiled = raw_consume_rate(broker.bootstrap, topic, 3, n, compiled=True)
    say(f"raw consume rate, records read by the compiled decoder: {raw_compiled:,.0f} records/s")
    rate, done = daemon_rate(broker, model, work, topic, n, compiled_decoder=True)
    alerts = done.get("alerts", 0)
    say(
        f"daemon end-to-end (input -> committed checkpoint): {rate:,.0f} events/s = {rate / raw:.0%} of raw "
        f"kafka-python, {rate / raw_compiled:.0%} of raw compiled; "
        f"alerts {alerts} ({alerts / n:.2%} of events), checkpoints {done.get('checkpoints')}"
    )
    if compare_decoders:
        slower, _ = daemon_rate(broker, model, work, topic, n, compiled_decoder=False)
        say(
            f"daemon with kafka-python's own record decoder: {slower:,.0f} events/s"
            f" = {slower / raw:.0%} of raw; the compiled decoder makes it {rate / slower:.2f}x as fast"
        )
    return rate


def pace(
    total: int, rate: float, seconds: float, tick_s: float, send: Callable[[int, int], None]
) -> tuple[float, float]:
    """Call ``send(first, end)`` every ``tick_s`` with the records due since the last tick.

    Sending what is due each tick keeps the pace even: sleeping before every record would
    oversleep by more than the gap between two records and then catch up in bursts.  Returns the
    rate achieved and the CPU this process used meanwhile, in cores.
    """
    started = time.monotonic()
    cpu_started = time.process_time()
    count = 0
    while count < total:
        elapsed = time.monotonic() - started
        if elapsed > seconds:
            break
        due = min(total, int(elapsed * rate) + 1)
        if due > count:
            send(count, due)
            count = due
        time.sleep(tick_s)
    wall = time.monotonic() - started
    return count / wall, (time.process_time() - cpu_started) / wall


LEAN_TICK_S = 0.005
"""How long the lean generator gathers records into one request: the ``linger.ms`` default of
Apache Kafka's Java producer since 4.0.  The test broker's cost grows with the number of batches
it holds, not only with records: 2 ms ticks (2.5 times the batches) made its fetches stall for
seconds within 20 s at 30,000 records/s, where 5 ms ticks kept the bare consumer's p99 at 30-73 ms."""


@dataclass(frozen=True)
class PacedLoad:
    """What a paced load generator sends: ``lines`` keyed by ``keys``, at ``rate`` for ``seconds``."""

    bootstrap: str
    topic: str
    partitions: int
    lines: list[str]
    keys: list[str]
    rate: float
    seconds: float
    tick_s: float = LEAN_TICK_S  # the lean generator's gathering time (KafkaProducer's linger is 1 ms)


def produce_paced(load: PacedLoad, results: Any) -> None:
    """Send at ``rate`` records/s for ``seconds`` with KafkaProducer, in 1 ms ticks.

    Each record's timestamp is its send time (kafka-python stamps it in ``send``) and latency is
    measured from it, so the producer needs no per-record callback.
    """
    producer = KafkaProducer(bootstrap_servers=[load.bootstrap], linger_ms=1, acks=1)
    producer.partitions_for(load.topic)  # the metadata fetch, before the clock starts

    def send(first: int, end: int) -> None:
        for index in range(first, end):
            producer.send(load.topic, key=load.keys[index].encode(), value=load.lines[index].encode())

    achieved, cpu = pace(min(len(load.lines), len(load.keys)), load.rate, load.seconds, 0.001, send)
    producer.flush()
    producer.close()
    results.put((achieved, cpu))


def produce_paced_lean(load: PacedLoad, results: Any) -> None:
    """``produce_paced`` with ``LeanProducer``: one Produce request per ``load.tick_s`` tick.

    Each tick's records are grouped by partition (murmur2 of the key, as KafkaProducer does) into
    one batch per partition.  Every record is stamped with the time it was due, not the time its
    batch left, so the wait for the next tick counts as latency, as a producer's linger does.
    """
    total = min(len(load.lines), len(load.keys))
    encoded_keys = [key.encode() for key in load.keys[:total]]
    values = [line.encode() for line in load.lines[:total]]
    partition_of = [partition_for(key, load.partitions) for key in encoded_keys]
    producer = LeanProducer(load.bootstrap, load.topic, load.partitions)
    wall_started = time.time()

    def send(first: int, end: int) -> None:
        due_ms = [int((wall_started + i / load.rate) * 1000) for i in range(first, end)]
        producer.send(
            batches_by_partition(partition_of[first:end], encoded_keys[first:end], values[first:end], due_ms)
        )

    achieved, cpu = pace(total, load.rate, load.seconds, load.tick_s, send)
    producer.flush()
    producer.close()
    results.put((achieved, cpu))


GENERATORS = ("lean", "kafka-python")


def paced_run(load: PacedLoad, generator: str = "lean") -> tuple[float, float]:
    """Run the paced load generator in its own process; returns the rate achieved and its CPU (cores).

    In this process the producer would compete for the GIL with the reader that measures, and its
    delays would show up as latency of what is measured.  ``generator`` is ``lean``
    (``LeanProducer``, about 4 µs of CPU a record) or ``kafka-python`` (``KafkaProducer``, about
    28 µs: at 30,000 records/s it takes 0.8 of the two cores the daemon is measured on).
    """
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()
    target = produce_paced_lean if generator == "lean" else produce_paced
    producer = context.Process(target=target, args=(load, results))
    producer.start()
    achieved, cpu = results.get(timeout=load.seconds + 120)
    producer.join()
    return achieved, cpu


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far, from /proc (0 when unknown)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuShares:
    """CPU used by each process of a measurement while it runs, in cores (1.0 = one core busy).

    The broker, the load generator and the daemon share this machine's cores; the shares show how
    much of them the measured side had.
    """

    def __init__(self, **pids: int | None) -> None:
        self._pids = pids
        self._started_wall = time.monotonic()
        self._started = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def shares(self) -> dict[str, float]:
        """Cores each process used since construction (1.0 = one core busy)."""
        wall = time.monotonic() - self._started_wall
        return {name: (cpu_seconds(pid) - self._started[name]) / wall for name, pid in self._pids.items()}


def describe_cpu(shares: dict[str, float]) -> str:
    """The shares as ``name 0.42, ...``, for a result line."""
    return ", ".join(f"{name} {share:.2f}" for name, share in shares.items())


class Reader(threading.Thread):
    """A kafka-python consumer that notes, for every record it receives, its timestamp and the wall clock.

    It keeps only numbers (and, when asked, the values as bytes), never the records: objects that
    the garbage collector has to trace would make its full collections, which grow with what is
    held, stall this thread for hundreds of milliseconds, and those stalls would be measured as
    broker latency (600,000 held records took the floor's p99 from about 110 ms to about 370 ms).
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int, keep_values: bool = False) -> None:
        super().__init__(daemon=True)
        self.sent_at = array("d")  # record timestamps (the producer's send time), in seconds
        self.received_at = array("d")  # wall clock when the record was handed to us, in seconds
        self.values: list[bytes] = []
        self._keep_values = keep_values
        self._servers = bootstrap
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self._stop_reading = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        """Read from the beginning until ``stop``, noting each record's timestamp and arrival time."""
        consumer = KafkaConsumer(
            bootstrap_servers=[self._servers], enable_auto_commit=False, fetch_max_wait_ms=5
        )
        consumer.assign(self._partitions)
        consumer.seek_to_beginning(*self._partitions)
        for partition in self._partitions:
            consumer.position(partition)  # resolves the start offsets, so reading starts at once
        self.ready.set()
        while not self._stop_reading.is_set():
            for batch in consumer.poll(timeout_ms=50).values():
                now = time.time()
                self.sent_at.extend(record.timestamp / 1000 for record in batch)
                self.received_at.extend(now for _ in batch)
                if self._keep_values:
                    self.values.extend(record.value for record in batch)
        consumer.close()

    def stop(self) -> None:
        """Stop reading and wait until the consumer is closed."""
        self._stop_reading.set()
        self.join()

    def latencies_ms(self) -> np.ndarray:
        """Arrival minus timestamp of every record received, in ms."""
        return (np.frombuffer(self.received_at) - np.frombuffer(self.sent_at)) * 1000


def percentiles(latencies_ms: np.ndarray) -> str:
    """p50, p99 and max of ``latencies_ms``, for a result line."""
    return (
        f"p50 {np.percentile(latencies_ms, 50):.1f} ms, p99 {np.percentile(latencies_ms, 99):.1f} ms, "
        f"max {latencies_ms.max():.1f} ms"
    )


def p99_by_window(sent_at: np.ndarray, latencies_ms: np.ndarray, window_s: float = 5.0) -> str:
    """p99 per ``window_s`` of sending time: shows whether latency grows as the topic fills."""
    offset = sent_at - sent_at.min()
    windows = []
    for start in np.arange(0.0, offset.max() + 1e-9, window_s):
        in_window = latencies_ms[(offset >= start) & (offset < start + window_s)]
        if len(in_window):
            windows.append(f"{np.percentile(in_window, 99):.0f}")
    return f"p99 by {window_s:.0f} s of sending: {' / '.join(windows)} ms"


def latency_stream(rate: float, seconds: float) -> SyntheticLog:
    """The input of both latency measurements: enough entities for ``rate`` x ``seconds`` lines."""
    return generate_logs(
        seed=6, entities=int(rate * seconds / 13) + 1000, anomaly_fraction=0.01, first_job_id=5_000_000
    )


def offer_load(
    broker: LocalBroker,
    topic: str,
    stream: SyntheticLog,
    rate: float,
    seconds: float,
    generator: str,
    tick_s: float,
    **measured: int | None,
) -> tuple[float, dict[str, float]]:
    """Send ``stream`` to the 3 partitions of ``topic`` at ``rate`` for ``seconds``.

    Returns the rate achieved and the CPU shares (in cores) of the broker, the ``measured``
    processes (name=pid) and the load generator over the sending time.
    """
    cpu = CpuShares(broker=broker.pid, **measured)
    load = PacedLoad(broker.bootstrap, topic, 3, stream.lines, stream.entity_of_line, rate, seconds, tick_s)
    achieved, generator_cpu = paced_run(load, generator)
    return achieved, {**cpu.shares(), "load generator": generator_cpu}


def phase_latency_floor(
    broker: LocalBroker, rate: float, seconds: float, generator: str, tick_s: float = LEAN_TICK_S
) -> None:
    """The same paced producer read by a bare kafka-python consumer: the latency no daemon can beat here.

    It is one hop (producer -> broker -> consumer) where the daemon's figure is two (input ->
    daemon -> alert -> reader), on the same broker, producer and machine.
    """
    topic = "bench.floor"
    broker.create_topics([topic], partitions=3)
    stream = latency_stream(rate, seconds)
    reader = Reader(broker.bootstrap, topic, 3)
    reader.start()
    reader.ready.wait(30)
    achieved, shares = offer_load(broker, topic, stream, rate, seconds, generator, tick_s)
    time.sleep(3)
    reader.stop()
    latencies = reader.latencies_ms()
    say(
        f"latency floor at {achieved:,.0f} events/s offered, no daemon (producer send -> bare consumer "
        f"received, {len(latencies)} records): {percentiles(latencies)}; "
        f"{p99_by_window(np.frombuffer(reader.sent_at), latencies)}; "
        f"CPU in cores: {describe_cpu(shares)}"
    )


def phase_latency(
    broker: LocalBroker,
    model: Path,
    work: Path,
    target: float,
    seconds: float,
    generator: str,
    tick_s: float = LEAN_TICK_S,
    compiled_decoder: bool = True,
    daemon_options: dict[str, Any] | None = None,
) -> None:
    """Event -> alert latency with input offered at ``target`` records/s (half the daemon's rate).

    ``daemon_options`` (dotted config keys) change the daemon's config, for A/B runs of a setting.
    """
    topic = "bench.latency"
    broker.create_topics([topic], partitions=3)
    broker.create_topics([f"{topic}.alerts", f"{topic}.dlq"], partitions=1)
    stream = latency_stream(target, seconds)
    config = daemon_config(
        broker.bootstrap,
        "bench-latency",
        topic,
        model,
        work / "latency" / "state",
        compiled_decoder=compiled_decoder,
    )
    for dotted, value in (daemon_options or {}).items():
        set_dotted(config, dotted, value)
    daemon = Daemon(work / "latency", config)
    daemon.wait(lambda e: e.get("event") == "partitions_assigned" and e.get("partitions"), 60, "assignment")
    reader = Reader(broker.bootstrap, f"{topic}.alerts", 1, keep_values=True)
    reader.start()
    reader.ready.wait(30)
    achieved, shares = offer_load(
        broker, topic, stream, target, seconds, generator, tick_s, daemon=daemon.process.pid
    )
    time.sleep(3)
    reader.stop()
    daemon.stop()
    latencies: list[float] = []
    in_daemon: list[float] = []
    way_out: list[float] = []
    sent_at: list[float] = []
    for value, at in zip(reader.values, reader.received_at, strict=True):
        alert = json.loads(value)
        if alert["source"]:  # end-of-session alerts come from the TTL, not from an input record
            sent = iso_seconds(alert["event_time"])  # the input record's timestamp: its send time
            sent_at.append(sent)
            latencies.append(at - sent)
            detected = iso_seconds(alert["detected_at"])
            in_daemon.append(detected - sent)
            way_out.append(at - detected)
    latencies_ms = np.array(latencies) * 1000
    options = "".join(f"{key}={value}, " for key, value in (daemon_options or {}).items())
    say(
        f"latency at {achieved:,.0f} events/s offered (target {target:,.0f}), "
        f"{'compiled' if compiled_decoder else 'kafka-python'} record decoder, "
        f"{options}{len(latencies)} alerts: "
        f"producer send -> alert received {percentiles(latencies_ms)}; "
        f"{p99_by_window(np.array(sent_at), latencies_ms)}; "
        f"record timestamp -> detected_at inside the daemon {percentiles(np.array(in_daemon) * 1000)}; "
        f"detected_at -> alert received (producer, broker, reader) {percentiles(np.array(way_out) * 1000)}; "
        f"CPU in cores: {describe_cpu(shares)}"
    )


def phase_memory(broker: LocalBroker, model: Path, work: Path, entities: int) -> None:
    """Print the daemon's peak RSS once it has checkpointed ``entities`` new entities, one event each."""
    topic = "bench.memory"
    broker.create_topics([topic], partitions=3)
    broker.create_topics([f"{topic}.alerts", f"{topic}.dlq"], partitions=1)
    sample = generate_logs(seed=7, entities=1, anomaly_fraction=0.0, first_job_id=1).lines[0]
    prefix, rest = sample.split("job_1 ", 1)
    lines = [f"{prefix}job_{n} {rest}" for n in range(10_000_000, 10_000_000 + entities)]
    keys = [f"job_{n}" for n in range(10_000_000, 10_000_000 + entities)]
    produce(broker.bootstrap, topic, lines, keys, timestamps=False)
    daemon = Daemon(
        work / "memory",
        daemon_config(
            broker.bootstrap,
            "bench-memory",
            topic,
            model,
            work / "memory" / "state",
            max_entities=entities + 100_000,
            checkpoint_interval_seconds=10.0,
        ),
    )
    done = daemon.wait(lambda e: processed(e, entities), 900, f"checkpoint of {entities} entities")
    rss = daemon.peak_rss_mb()
    daemon.stop()
    say(f"memory: {done.get('entities'):,} entities tracked, daemon peak RSS {rss:,.0f} MB")


def main() -> int:
    """Run the chosen phases, each on a fresh local broker; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default="rate,latency,memory")
    parser.add_argument("--model", type=Path, help="model directory (default: train one on synthetic logs)")
    parser.add_argument("--entities", type=int, default=50_000, help="entities in the rate phase")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="how long input is produced")
    parser.add_argument("--memory-entities", type=int, default=1_000_000)
    parser.add_argument(
        "--generator",
        choices=GENERATORS,
        default="lean",
        help="latency phase's load generator (default lean: a fraction of KafkaProducer's CPU)",
    )
    parser.add_argument(
        "--rate", type=float, help="skip the rate phase's measurement and use this rate for latency"
    )
    parser.add_argument(
        "--tick-ms",
        type=float,
        default=LEAN_TICK_S * 1000,
        help="lean generator: one Produce request per this many ms (its linger; default %(default)g)",
    )
    parser.add_argument(
        "--compare-decoders",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="rate phase: also run the daemon with kafka-python's own record decoder (about 50 s)",
    )
    parser.add_argument(
        "--latency-decoder",
        choices=("compiled", "kafka-python"),
        default="compiled",
        help="record decoder of the daemon in the latency phase (kafka-python: for comparison)",
    )
    parser.add_argument(
        "--daemon-option",
        type=option_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="latency phase: set a daemon config key (dotted, e.g. kafka.producer.linger_ms=0); repeatable",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="latency phase: skip the bare consumer's floor (for A/B runs)"
    )
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    work = Path(tempfile.mkdtemp(prefix="logwarden-bench-"))
    model = args.model or train_synthetic_model(work / "model")
    say(f"model: {model}  work dir: {work}  cores: {os.cpu_count()}")
    # Each measurement gets a fresh broker: the test broker's memory storage slows down as it holds
    # more records (Apache Kafka's fetches do not), so a phase would otherwise pay for the ones before.
    rate = args.rate or 0.0
    if "rate" in phases:
        with LocalBroker(work / "broker-rate.log") as broker:
            rate = phase_rate(broker, model, work, args.entities, args.compare_decoders)
    if "latency" in phases:
        target = (rate or 60_000.0) / 2
        if not args.no_floor:
            with LocalBroker(work / "broker-floor.log") as broker:
                phase_latency_floor(broker, target, args.latency_seconds, args.generator, args.tick_ms / 1000)
        with LocalBroker(work / "broker-latency.log") as broker:
            phase_latency(
                broker,
                model,
                work,
                target,
                args.latency_seconds,
                args.generator,
                args.tick_ms / 1000,
                compiled_decoder=args.latency_decoder == "compiled",
                daemon_options=dict(args.daemon_option),
            )
    if "memory" in phases:
        with LocalBroker(work / "broker-memory.log") as broker:
            phase_memory(broker, model, work, args.memory_entities)
    return 0


if __name__ == "__main__":
    sys.exit(main())
