"""Not a benchmark: trains the model the benchmarks run when not given one (``--model``).

A model of the generated log (``logwarden.synthetic``), trained on normal jobs only, so that the
benchmarks need no data beside the project.  Imports torch, so only the trainer's side calls it.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from logwarden.synthetic import ENTITY_REGEX, generate_logs


def train_synthetic_model(out: Path, *, jobs: int = 1500, epochs: int = 12, seed: int = 11) -> Path:
    """Train on ``jobs`` normal generated jobs into ``out``; returns ``out``."""
    from logwarden.events.raw import parser_settings
    from logwarden.logs import configure_logging
    from logwarden.train.fit import TrainingOptions
    from logwarden.train.pipeline import train_on_logs

    configure_logging("warning", sys.stderr)
    warnings.filterwarnings("ignore")
    lines = generate_logs(seed=seed, entities=jobs, anomaly_fraction=0.0).lines
    train_on_logs(lines, parser_settings(ENTITY_REGEX), TrainingOptions(epochs=epochs, seed=seed), out)
    return out
