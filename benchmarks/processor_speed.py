"""CPU per event of the daemon's scoring step (``BatchProcessor.process``) against columns per model call.

    .venv/bin/python benchmarks/processor_speed.py [--model DIR] [--entities 50000] [--batch 8192]
        [--columns 256,512,1024,2048,8192] [--rounds 5]

The daemon scores a poll in batches of up to ``processing.batch_max_events`` events; a batch's
first wave holds one event of each of its entities, so with many entities one wave is nearly the
whole batch.  ``BatchProcessor`` cuts each wave into onnxruntime calls of at most
``columns_per_call`` entities (``MODEL_CALL_COLUMNS``).  This script feeds the same batches of
random events over ``--entities`` entities (the throughput benchmark's 50,000 by default) through
processors that differ only in that setting, alternating the settings within each round so that
the shared machine's drift falls on all of them alike, and prints µs per event (state lookup,
gather, model call, surprise, state write).  Without ``--model`` it trains a small model on the
generated log (a few seconds); the cost depends on the model's shape, not on what it learned.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from synthetic_model import train_synthetic_model

from logwarden.daemon.processor import MODEL_CALL_COLUMNS, BatchProcessor
from logwarden.daemon.state.table import EntityStateTable
from logwarden.model.bundle import load_bundle
from logwarden.model.contract import FIRST_EVENT_ID
from logwarden.model.runtime import OnnxStepModel

WARM_UP_BATCHES = 5
"""Batches before the clock starts: every entity has a slot and the arrays' pages are mapped."""


def make_batches(
    entities: int, batch: int, count: int, vocab_size: int, seed: int
) -> list[tuple[list[str], np.ndarray, np.ndarray]]:
    """``count`` batches of ``batch`` random events of entities drawn from ``entities``, on partition 0."""
    rng = np.random.default_rng(seed)
    names = [f"job_{n}" for n in range(entities)]
    batches = []
    for _ in range(count):
        picked = rng.integers(0, entities, batch)
        event_ids = rng.integers(FIRST_EVENT_ID, vocab_size, batch).astype(np.int64)
        batches.append(([names[i] for i in picked.tolist()], event_ids, np.zeros(batch, np.int32)))
    return batches


def microseconds_per_event(
    model: OnnxStepModel, columns: int, batches: list[tuple[list[str], np.ndarray, np.ndarray]], capacity: int
) -> float:
    """Process every batch with a fresh table; time all but the warm-up batches."""
    table = EntityStateTable(model.num_layers, model.hidden_size, capacity, model.initial_h, model.initial_c)
    processor = BatchProcessor(model, table, columns_per_call=columns)
    for entities, event_ids, partitions in batches[:WARM_UP_BATCHES]:
        processor.process(entities, event_ids, partitions, now=0.0)
    timed = batches[WARM_UP_BATCHES:]
    started = time.perf_counter()
    for entities, event_ids, partitions in timed:
        processor.process(entities, event_ids, partitions, now=1.0)
    elapsed = time.perf_counter() - started
    return elapsed / sum(len(entities) for entities, _, _ in timed) * 1e6


def main() -> None:
    """Print µs per event for each ``--columns`` value, round by round in alternating order, then medians."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="model directory (default: train a small one)")
    parser.add_argument("--entities", type=int, default=50_000)
    parser.add_argument(
        "--batch", type=int, default=8192, help="events per process() call (batch_max_events)"
    )
    parser.add_argument("--batches", type=int, default=30, help="timed batches per measurement")
    parser.add_argument(
        "--columns", default="256,512,1024,2048,8192", help="columns_per_call values to compare"
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    columns = [int(value) for value in args.columns.split(",")]

    with tempfile.TemporaryDirectory(prefix="logwarden-processor-") as work:
        model_dir = args.model or train_synthetic_model(Path(work) / "model", jobs=300, epochs=2)
        model = OnnxStepModel.load(load_bundle(model_dir))
    vocab = model.metadata.vocab_size
    batches = make_batches(args.entities, args.batch, WARM_UP_BATCHES + args.batches, vocab, seed=1)
    capacity = args.entities + 100_000  # as the throughput benchmark sizes the daemon's table
    print(
        f"model: layers {model.num_layers}, hidden {model.hidden_size}, vocabulary {vocab}; "
        f"{args.entities:,} entities, batches of {args.batch:,}, default columns {MODEL_CALL_COLUMNS}"
    )
    results: dict[int, list[float]] = {value: [] for value in columns}
    for round_number in range(args.rounds):
        order = columns if round_number % 2 == 0 else list(reversed(columns))
        for value in order:
            results[value].append(microseconds_per_event(model, value, batches, capacity))
        print(
            f"round {round_number + 1}: "
            + "  ".join(f"{value}: {results[value][-1]:.2f}" for value in columns)
            + " µs/event",
            flush=True,
        )
    for value in columns:
        figures = results[value]
        print(
            f"columns per call {value:>5}: median {statistics.median(figures):.2f} µs/event "
            f"(min {min(figures):.2f}, max {max(figures):.2f})"
        )


if __name__ == "__main__":
    main()
