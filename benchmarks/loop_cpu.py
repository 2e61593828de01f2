"""CPU per event of the daemon's loop without a broker: decode, parse, score, state, alerts, periodic work.

    .venv/bin/python benchmarks/loop_cpu.py [--model DIR] [--jobs 20000] [--poll 2700] [--rounds 5]

The throughput benchmark measures the daemon against a local broker on a shared machine, where the
broker's own slowdowns and the machine's drift make two runs of the same code differ by 10-15 %.
This script runs ``DaemonService.handle_records`` and ``on_tick`` in process on the records the
throughput benchmark uses (the generated log, keyed by job over 3 partitions, each record stamped
with its line's time), ``--poll`` records a partition at a time, and prints the process CPU time
per event of each round.  Checkpoints go to memory and outputs nowhere, so what it measures is the
loop's own work; compare two versions of the code by running it alternately on each.  Without
``--model`` it trains a small model on the generated log first (a few seconds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from synthetic_model import train_synthetic_model

from logwarden.daemon.checkpoint import Checkpointer
from logwarden.daemon.config import EntityConfig, InputConfig
from logwarden.daemon.decode import MessageDecoder
from logwarden.daemon.faults import CrashPoints
from logwarden.daemon.policy import AlertPolicy
from logwarden.daemon.poll_batches import split_polled
from logwarden.daemon.processor import BatchProcessor
from logwarden.daemon.service import DaemonService, LoopSettings
from logwarden.daemon.state.memory_store import MemoryStateStore
from logwarden.daemon.state.store import StoreHeader
from logwarden.daemon.state.table import EntityStateTable
from logwarden.daemon.systemd import SystemdNotifier
from logwarden.logs import configure_logging
from logwarden.model.bundle import ModelBundle, load_bundle
from logwarden.model.runtime import OnnxStepModel
from logwarden.synthetic import ENTITY_REGEX, generate_logs

PARTITIONS = 3
BATCH_MAX_EVENTS = 8192
"""The daemon's defaults: ``processing.batch_max_events`` and a one-hour ``state.ttl_seconds``."""
TTL_SECONDS = 3600.0


def record_time_ms(line: str) -> int:
    """The ISO time that starts a generated line, in epoch ms: its record's timestamp."""
    return int(datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp() * 1000)


def partitioned_records(jobs: int) -> dict[TopicPartition, list[ConsumerRecord]]:
    """The throughput benchmark's generated log, keyed by job over ``PARTITIONS`` partitions."""
    log = generate_logs(seed=5, entities=jobs, anomaly_fraction=0.004, first_job_id=1_000_000)
    partitions = [TopicPartition("bench", p) for p in range(PARTITIONS)]
    records: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in partitions}
    for line, entity in zip(log.lines, log.entity_of_line, strict=True):
        tp = partitions[zlib.crc32(entity.encode()) % PARTITIONS]
        value, key = line.encode(), entity.encode()
        offset = len(records[tp])
        records[tp].append(
            ConsumerRecord(
                tp.topic,
                tp.partition,
                -1,
                offset,
                record_time_ms(line),
                0,
                key,
                value,
                [],
                None,
                len(key),
                len(value),
                -1,
            )
        )
    return records


class ReadToTheEnd:
    """The consumer calls the loop makes outside ``poll``: the assignment, high watermarks and positions.

    The feeding loop advances ``read`` (the next offset of each partition) as it hands records over.
    """

    def __init__(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        self._records = records
        self.read = dict.fromkeys(records, 0)

    def assignment(self) -> set[TopicPartition]:
        """Every partition of the records."""
        return set(self._records)

    def highwater(self, partition: TopicPartition) -> int:
        """One past the last record of ``partition``, as if all of it had been fetched."""
        return len(self._records[partition])

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        """The next offset the feeding loop hands over for ``partition``."""
        return self.read[partition]


class NoOutput:
    """An output sink that sends nothing."""

    alerts_topic = "bench.alerts"
    dead_letter_topic = "bench.dlq"
    scores_topic = None

    def send_alert(self, entity: str, payload: bytes) -> None:
        """Drop the alert."""
        pass

    def send_dead_letter(self, *letter: Any) -> None:
        """Drop the dead letter."""
        pass

    def flush(self, timeout_seconds: float | None = None) -> None:
        """Return at once: nothing was sent."""
        pass


def build_service(
    bundle: ModelBundle, model: OnnxStepModel, consumer: ReadToTheEnd, capacity: int
) -> DaemonService:
    """A service over ``consumer`` with the daemon's loop defaults, an in-memory store and no outputs."""
    metadata = bundle.metadata
    store = MemoryStateStore()
    store.open(StoreHeader(metadata.onnx_sha256, metadata.num_layers, metadata.state_size))
    table = EntityStateTable(
        metadata.num_layers, metadata.state_size, capacity, model.initial_h, model.initial_c
    )
    return DaemonService(
        settings=LoopSettings(("bench",), 100, BATCH_MAX_EVENTS, 500_000, 5.0, TTL_SECONDS, 3, 5.0),
        consumer=consumer,  # type: ignore[arg-type]
        sink=NoOutput(),  # type: ignore[arg-type]
        decoder=MessageDecoder.build(
            InputConfig(format="raw", entity=EntityConfig(regex=ENTITY_REGEX)), metadata
        ),
        processor=BatchProcessor(model, table),
        policy=AlertPolicy(metadata.threshold),
        table=table,
        checkpointer=Checkpointer(
            flush_producer=lambda timeout: None,
            store=store,
            table=table,
            commit_group=lambda offsets, budget: None,
            crash_points=CrashPoints(None),
        ),
        stored_offsets={},
        metadata=metadata,
        threshold=metadata.threshold,
        crash_points=CrashPoints(None),
        notifier=SystemdNotifier(address=""),
    )


def load_or_train_model(model_dir: Path | None) -> tuple[ModelBundle, OnnxStepModel]:
    """The model in ``model_dir``, or without one a small model trained on the generated log (seconds)."""
    with tempfile.TemporaryDirectory(prefix="logwarden-loop-") as work:
        bundle = load_bundle(model_dir or train_synthetic_model(Path(work) / "model", jobs=300, epochs=2))
        return bundle, OnnxStepModel.load(bundle)


def one_round(
    service: DaemonService,
    consumer: ReadToTheEnd,
    records: dict[TopicPartition, list[ConsumerRecord]],
    poll: int,
) -> float:
    """Feed every record, ``poll`` a partition at a time; CPU µs an event."""
    read = consumer.read
    events = 0
    started = time.process_time()
    while any(read[tp] < len(partition) for tp, partition in records.items()):
        polled = {}
        for tp, partition in records.items():
            chunk = partition[read[tp] : read[tp] + poll]
            if chunk:
                polled[tp] = chunk
                read[tp] += len(chunk)
                events += len(chunk)
        for batch in split_polled(polled, BATCH_MAX_EVENTS):
            service.handle_records(batch)
            service.on_tick()
    return (time.process_time() - started) / events * 1e6


def main() -> None:
    """Print the CPU per event of each round (a fresh service each) and the median."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="model directory (default: train a small one)")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--poll", type=int, default=2700, help="records a partition per poll")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    configure_logging("warning", sys.stderr)  # the loop's info lines (sessions_expired) are not figures
    bundle, model = load_or_train_model(args.model)
    records = partitioned_records(args.jobs)
    events = sum(len(partition) for partition in records.values())
    print(
        f"{events:,} records of {args.jobs:,} jobs over {PARTITIONS} partitions, "
        f"polls of {args.poll} a partition"
    )
    figures = []
    for round_number in range(args.rounds):
        consumer = ReadToTheEnd(records)
        service = build_service(bundle, model, consumer, capacity=args.jobs + 100_000)
        figures.append(one_round(service, consumer, records, args.poll))
        print(f"round {round_number + 1}: {figures[-1]:.2f} µs CPU an event", flush=True)
    print(
        f"median {statistics.median(figures):.2f} µs CPU an event "
        f"(min {min(figures):.2f}, max {max(figures):.2f})"
    )


if __name__ == "__main__":
    main()
