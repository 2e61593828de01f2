"""Training time with one very long session among short ones: whole against cut into segments.

    .venv/bin/python benchmarks/long_sessions.py [--long-events 200000] [--sessions 4000] [--epochs 2]
        [--sequences ../shared/data/hdfs-deeplog/hdfs_train]

A host or a user that logs all day is one session of hundreds of thousands of events.  Trained
whole, its batch runs its steps one after another, so every epoch waits for it however few the
other sessions are.  This script trains the same data (short sessions, generated and seeded job
lifecycles or those of ``--sequences``, and one long session of them back to back), twice in one
run: with
``segment_length`` past the long session (whole) and with the default (segments side by side),
and prints each run's seconds per epoch (the first epoch apart: it pays torch's one-time set-up)
and the mean surprise, in nats, of an unseen long session scored with its state carried all the
way, as the daemon carries it.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from logwarden.events.sequences import read_sequences
from logwarden.events.vocabulary import Vocabulary
from logwarden.model.contract import START_ID
from logwarden.synthetic import generate_sequences
from logwarden.train.fit import TrainingOptions, fit
from logwarden.train.pipeline import vocabulary_size


def long_session(short: list[np.ndarray], events: int, rng: np.random.Generator) -> np.ndarray:
    """Short sessions drawn at random and put back to back until ``events`` events."""
    parts: list[np.ndarray] = []
    total = 0
    while total < events:
        parts.append(short[int(rng.integers(len(short)))])
        total += len(parts[-1])
    return np.concatenate(parts)[:events]


def mean_surprise(network: torch.nn.Module, events: np.ndarray) -> float:
    """Mean -log p of each event of ``events`` given all before it, from START with a zero state."""
    network.eval()
    with torch.no_grad():
        h, c = network.zero_state(1)
        tokens = torch.from_numpy(np.concatenate(([START_ID], events)).astype(np.int64).reshape(-1, 1))
        log_probs, _, _ = network(tokens, h, c)
    steps = torch.arange(1, len(tokens))
    return float(-log_probs[steps, 0, tokens[1:, 0]].mean())


def main() -> None:
    """Train whole and in segments on the same data; print epoch times and an unseen session's surprise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-events", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=4000, help="short sessions beside the long one")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--sequences", help="short sessions from this DeepLog-style file instead of generated ones"
    )
    args = parser.parse_args()
    if args.sequences:
        keys = [session for session in read_sequences(args.sequences) if session]
    else:
        keys = generate_sequences(seed=11, sessions=args.sessions, anomaly_fraction=0.0).sessions
    vocabulary = Vocabulary.from_sessions(keys)
    short = [vocabulary.encode(session) for session in keys]
    rng = np.random.default_rng(11)
    sessions = [*short, long_session(short, args.long_events, rng)]
    unseen = long_session(short, min(args.long_events, 20_000), rng)
    print(
        f"{len(short):,} short sessions ({sum(len(s) for s in short):,} events) and one of "
        f"{args.long_events:,} events; {args.epochs} epochs; {torch.get_num_threads()} torch threads"
    )
    default = TrainingOptions(epochs=args.epochs, seed=0)
    for name, options in (
        ("whole", dataclasses.replace(default, segment_length=args.long_events)),
        (f"segments of {default.segment_length:,}", default),
    ):
        result = fit(sessions, vocabulary_size(vocabulary), options)
        first, rest = result.epoch_seconds[0], result.epoch_seconds[1:]
        later = f"{np.mean(rest):.1f} s each after it" if rest else "no later epoch"
        print(
            f"{name:22s} first epoch {first:.1f} s, {later}; final loss {result.final_loss:.4f}; "
            f"unseen long session: mean surprise {mean_surprise(result.network, unseen):.4f} nats"
        )


if __name__ == "__main__":
    main()
