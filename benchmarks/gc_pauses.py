"""Garbage-collector pauses of the daemon's loop: CPython's automatic young collections against the
loop's own collections between polls (``daemon/gc_tuning.py``).

    .venv/bin/python benchmarks/gc_pauses.py [--model DIR] [--jobs 20000] [--poll 2000 --poll 6700]

Runs ``DaemonService.handle_records`` and ``on_tick`` in process on the records of ``loop_cpu.py``
(the generated log over 3 partitions), ``--poll`` records a partition per poll, each record a fresh
object as a fetch makes it, and notes every collection with ``gc.callbacks``: whether a poll was in
hand when it started, and how long it held the loop.  Two settings, each after ``gc.freeze``:

  automatic      a young threshold of 50,000 (this daemon's setting before collections moved
                 between polls) and no collection of its own
  between polls  the daemon's current settings, ``collect_between_polls()`` before each poll

Polls of 6,700 records a partition are about the 20,000-record polls kafka-python hands over when
the loop is behind.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from loop_cpu import BATCH_MAX_EVENTS, ReadToTheEnd, build_service, load_or_train_model, partitioned_records

from logwarden.daemon.gc_tuning import collect_between_polls, tune_for_event_loop
from logwarden.daemon.poll_batches import split_polled
from logwarden.logs import configure_logging

BEFORE_YOUNG_THRESHOLD = 50_000
"""``gc_tuning.YOUNG_THRESHOLD`` before the loop collected between polls (middle 50, old 100)."""


class PauseLog:
    """How long each collection held the loop, and whether a poll was in hand."""

    def __init__(self) -> None:
        self.poll_in_hand = False
        self.pauses: list[tuple[bool, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks`` hook: note how long each collection took from start to stop."""
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((self.poll_in_hand, time.perf_counter() - self._started))


def fresh(record: ConsumerRecord) -> ConsumerRecord:
    """A new record object with its own headers list, as kafka-python's fetcher builds each one."""
    return record._replace(headers=[])


def one_run(
    service: Any,
    consumer: ReadToTheEnd,
    records: dict[TopicPartition, list[ConsumerRecord]],
    poll: int,
    mode: str,
) -> PauseLog:
    """Feed every record, ``poll`` a partition per poll, with GC set as ``mode`` says; return its pauses."""
    log = PauseLog()
    gc.collect()
    gc.freeze()
    if mode == "automatic":
        gc.set_threshold(BEFORE_YOUNG_THRESHOLD, 50, 100)
    else:
        tune_for_event_loop()
    gc.callbacks.append(log)
    try:
        read = consumer.read
        while any(read[tp] < len(partition) for tp, partition in records.items()):
            if mode == "between polls":
                collect_between_polls()
            polled = {}
            for tp, partition in records.items():
                chunk = partition[read[tp] : read[tp] + poll]
                if chunk:
                    polled[tp] = [fresh(record) for record in chunk]
                    read[tp] += len(chunk)
            log.poll_in_hand = True
            for batch in split_polled(polled, BATCH_MAX_EVENTS):
                service.handle_records(batch)
                service.on_tick()
            del polled, batch
            log.poll_in_hand = False
    finally:
        gc.callbacks.remove(log)
        gc.unfreeze()
    return log


def describe(pauses: list[tuple[bool, float]], in_hand: bool) -> str:
    """Count, total and longest of the pauses taken with a poll in hand (``in_hand``) or without."""
    chosen = sorted(seconds * 1000 for held, seconds in pauses if held == in_hand)
    if not chosen:
        return "none"
    return f"{len(chosen)}, total {sum(chosen):.1f} ms, longest {chosen[-1]:.1f} ms"


def main() -> None:
    """Print the collections of each poll size under both settings, then restore the GC thresholds."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="model directory (default: train a small one)")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--poll", type=int, action="append", help="records a partition per poll (repeatable)")
    args = parser.parse_args()
    polls = args.poll or [2000, 6700]
    configure_logging("warning", sys.stderr)
    bundle, model = load_or_train_model(args.model)
    records = partitioned_records(args.jobs)
    events = sum(len(partition) for partition in records.values())
    print(f"{events:,} records of {args.jobs:,} jobs over {len(records)} partitions")
    threshold = gc.get_threshold()
    try:
        for poll in polls:
            for mode in ("automatic", "between polls"):
                consumer = ReadToTheEnd(records)
                service = build_service(bundle, model, consumer, capacity=args.jobs + 100_000)
                log = one_run(service, consumer, records, poll, mode)
                print(
                    f"polls of {poll:,} a partition, {mode:>13}: collections with a poll in hand "
                    f"{describe(log.pauses, True)}; between polls {describe(log.pauses, False)}",
                    flush=True,
                )
    finally:
        gc.set_threshold(*threshold)


if __name__ == "__main__":
    main()
